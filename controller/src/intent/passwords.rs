//! Peer passwords: which Secret key belongs to which peer, and a revision that changes when
//! the value does — without the value ever leaving this module.
//!
//! # Threat model of `revision`
//!
//! Intents are readable by far more principals than the Secret (every speaker, anyone with
//! `get bgpnodeintents`, backups, `kubectl get -o yaml` pasted into tickets). MD5 passwords
//! are often short and human-chosen, so a plain hash of the value would allow an offline
//! dictionary attack from the intent alone. The revision is therefore
//! `HMAC-SHA256(key = Secret.metadata.uid, msg = secret key name || 0x00 || value)`,
//! truncated to 128 bits (32 hex digits):
//!
//! * it changes whenever the value changes (collision probability 2^-128);
//! * guessing the value from it requires the HMAC key; the uid is 122 random bits that
//!   only principals able to read the Secret's metadata (i.e. `get`/`list` on Secrets in
//!   the controller's namespace, the same permission that reveals the value) can see;
//! * the key name is in the message, so two peers with the same password get different
//!   revisions and the intents do not reveal that passwords are shared;
//! * re-creating the Secret (new uid) changes every revision, which resets authenticated
//!   sessions once: a deliberate, visible consequence of replacing the Secret.
//!
//! The uid is not a secret in the cryptographic sense (it appears in audit logs of Secret
//! reads); an attacker with audit-log access and an intent can still run a dictionary
//! attack. That is accepted: such an attacker is already highly privileged. A Secret
//! without a uid (offline `render` of a manifest) gets an empty HMAC key.
//!
//! No type here stores the password: values are digested while the Secret is read and
//! dropped; [`PasswordBook`] holds only key names and revisions.

use std::{collections::BTreeMap, net::IpAddr};

use bgpintent_api::{Asn, PasswordRef, PeerKey};
use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use sha2::Sha256;

use super::report::Problem;

/// Hex digits of the revision (128 bits).
const REVISION_HEX: usize = 32;

/// The passwords Secret, reduced to references: canonical peer → where its password is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordBook {
    entries: BTreeMap<(IpAddr, Asn), PasswordRef>,
}

impl PasswordBook {
    /// Reads the Secret. Keys that are not `<address>-<asn>` are reported and skipped; two
    /// keys naming the same peer in different spellings (`2001:0db8::1-65000` and
    /// `2001:db8::1-65000`) are reported and the canonical spelling, else the smallest,
    /// wins. `stringData` overrides `data` for the same key, as the API server does when it
    /// merges them on write.
    pub fn read(secret: &Secret, problems: &mut Vec<Problem>) -> Self {
        let secret_name = secret.metadata.name.clone().unwrap_or_default();
        let object = format!(
            "Secret {}/{}",
            secret.metadata.namespace.as_deref().unwrap_or_default(),
            secret_name
        );
        let hmac_key = secret.metadata.uid.as_deref().unwrap_or_default().as_bytes();
        let mut values: BTreeMap<&str, &[u8]> = BTreeMap::new();
        for (k, v) in secret.data.iter().flatten() {
            values.insert(k, &v.0);
        }
        for (k, v) in secret.string_data.iter().flatten() {
            values.insert(k, v.as_bytes());
        }
        let mut entries: BTreeMap<(IpAddr, Asn), PasswordRef> = BTreeMap::new();
        for (key, value) in values {
            let Some(peer) = parse_key(key) else {
                problems.push(Problem::new(
                    &object,
                    format!("data[{key:?}]"),
                    "key is not <peer address>-<peer ASN>; ignored",
                ));
                continue;
            };
            let reference = PasswordRef {
                secret_name: secret_name.clone(),
                key: key.to_owned(),
                revision: revision(hmac_key, key, value),
            };
            let canonical = PeerKey {
                address: peer.0,
                asn: peer.1,
            }
            .password_key();
            match entries.get(&peer) {
                None => {
                    entries.insert(peer, reference);
                }
                Some(existing) => {
                    let keep_new = key == canonical && existing.key != canonical;
                    problems.push(Problem::new(
                        &object,
                        format!("data[{key:?}]"),
                        format!(
                            "names the same peer as key {:?}; using {:?}",
                            existing.key,
                            if keep_new { key } else { existing.key.as_str() }
                        ),
                    ));
                    if keep_new {
                        entries.insert(peer, reference);
                    }
                }
            }
        }
        Self { entries }
    }

    /// The password reference for a peer, if the Secret has one.
    pub fn lookup(&self, peer: &PeerKey) -> Option<&PasswordRef> {
        self.entries.get(&(peer.address, peer.asn))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `<address>-<asn>` with the address in any textual form. The ASN is after the last `-`
/// (IPv6 addresses contain no `-`, so the split is unambiguous).
///
/// Secret keys may only contain letters, digits, `-`, `_` and `.` (the apiserver refuses
/// anything else), so an IPv6 address may be written with `_` in place of every `:`
/// (`2001_db8__1-65000`). Antrea's documented `2001:db8::1-65000` is accepted too, for
/// Secrets that reach us by other means (`render` reads manifests without an apiserver).
fn parse_key(key: &str) -> Option<(IpAddr, Asn)> {
    let (addr, asn) = key.rsplit_once('-')?;
    let addr: IpAddr = addr.replace('_', ":").parse().ok()?;
    let asn: Asn = asn.parse().ok()?;
    Some((addr, asn))
}

/// The keyed digest described in the module documentation.
fn revision(hmac_key: &[u8], key: &str, value: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(hmac_key).expect("HMAC accepts keys of any length");
    mac.update(key.as_bytes());
    mac.update(&[0]);
    mac.update(value);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(REVISION_HEX);
    for b in digest.iter().take(REVISION_HEX / 2) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::{ByteString, apimachinery::pkg::apis::meta::v1::ObjectMeta};

    fn secret(uid: &str, data: &[(&str, &str)], string_data: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("bgp-passwords".into()),
                namespace: Some("bgp-intent".into()),
                uid: Some(uid.into()),
                ..ObjectMeta::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            string_data: Some(
                string_data
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    fn peer(addr: &str, asn: u32) -> PeerKey {
        PeerKey {
            address: addr.parse().unwrap(),
            asn: Asn::try_from(asn).unwrap(),
        }
    }

    #[test]
    fn ipv6_keys_may_use_underscores_because_secret_keys_cannot_hold_colons() {
        let mut problems = vec![];
        let book = PasswordBook::read(&secret("u1", &[], &[("2001_db8__1-65000", "pw")]), &mut problems);
        let r = book.lookup(&peer("2001:db8::1", 65000)).unwrap();
        assert_eq!(r.key, "2001_db8__1-65000");
        assert!(problems.is_empty());
    }

    #[test]
    fn addresses_are_compared_canonically_and_the_actual_key_is_kept() {
        let mut problems = vec![];
        let book = PasswordBook::read(
            &secret("u1", &[("2001:0db8::0001-65000", "pw")], &[]),
            &mut problems,
        );
        let r = book.lookup(&peer("2001:db8::1", 65000)).unwrap();
        assert_eq!(r.key, "2001:0db8::0001-65000");
        assert_eq!(r.secret_name, "bgp-passwords");
        assert_eq!(r.revision.len(), REVISION_HEX);
        assert!(book.lookup(&peer("2001:db8::1", 65001)).is_none());
        assert!(problems.is_empty());
    }

    #[test]
    fn revision_changes_with_value_uid_and_key_only() {
        let rev = |uid, k, v| {
            let book = PasswordBook::read(&secret(uid, &[(k, v)], &[]), &mut vec![]);
            book.lookup(&peer("192.0.2.1", 65000)).unwrap().revision.clone()
        };
        let base = rev("u1", "192.0.2.1-65000", "secret");
        assert_eq!(base, rev("u1", "192.0.2.1-65000", "secret"));
        assert_ne!(base, rev("u1", "192.0.2.1-65000", "secret2"));
        assert_ne!(base, rev("u2", "192.0.2.1-65000", "secret"));
        // The key name is in the message: another spelling of the same peer, same value,
        // gives another revision (equal passwords are not revealed as equal).
        let v6 = |k| {
            let book = PasswordBook::read(&secret("u1", &[(k, "secret")], &[]), &mut vec![]);
            book.lookup(&peer("2001:db8::1", 65000)).unwrap().revision.clone()
        };
        assert_ne!(v6("2001:db8::1-65000"), v6("2001:0db8::1-65000"));
        // Not a plain (unkeyed) digest of the value.
        assert!(!base.contains(&revision(b"", "", b"secret")[..8]));
    }

    #[test]
    fn string_data_overrides_data() {
        let both = PasswordBook::read(
            &secret("u", &[("192.0.2.1-65000", "old")], &[("192.0.2.1-65000", "new")]),
            &mut vec![],
        );
        let only_new = PasswordBook::read(&secret("u", &[("192.0.2.1-65000", "new")], &[]), &mut vec![]);
        assert_eq!(
            both.lookup(&peer("192.0.2.1", 65000)),
            only_new.lookup(&peer("192.0.2.1", 65000))
        );
    }

    #[test]
    fn bad_and_duplicate_keys_are_reported_without_values() {
        let mut problems = vec![];
        let book = PasswordBook::read(
            &secret(
                "u",
                &[
                    ("router-a", "hunter2"),
                    ("2001:0db8::1-65000", "hunter3"),
                    ("2001:db8::1-65000", "hunter4"),
                ],
                &[],
            ),
            &mut problems,
        );
        assert_eq!(book.len(), 1);
        assert_eq!(
            book.lookup(&peer("2001:db8::1", 65000)).unwrap().key,
            "2001:db8::1-65000"
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        let text = format!("{problems:?} {book:?}");
        assert!(!text.contains("hunter"), "{text}");
        assert!(text.contains("router-a"));
    }
}
