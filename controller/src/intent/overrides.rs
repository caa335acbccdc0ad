//! Per-Node overrides, set by Node annotations: the local ASN, extra or replacement peers,
//! and AS-path prepending.
//!
//! ```text
//!  metadata.annotations ──read()──▶ (NodeOverrides, AnnotationErrors)
//!    bgpintent.io/local-asn          │ no errors: applied on top of the policy
//!    bgpintent.io/peers              │            (local ASN, merged peers, prepend)
//!    bgpintent.io/as-path-prepend    └ errors:    the Node is held (its last intent kept)
//! ```
//!
//! The peers annotation is parsed exactly like the policy's `bgpPeers[]`: the same CRD type
//! ([`BGPPeer`]), its fields checked against the same schema the apiserver applies to the
//! policy (so an unknown or misspelled field is refused, not silently dropped), then the
//! same conversion ([`BGPPeer::parse`]), so defaults and password lookup are identical.
//!
//! An invalid annotation does not fall back to the policy's value: a Node whose override
//! breaks a rule is *held*, like the Nodes of an invalid policy (see `selection`), so a typo
//! neither resets its sessions with a different ASN nor drops a peer the operator meant to
//! keep. Values the operator might treat as sensitive never reach an error message: unknown
//! fields are named, not echoed.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::LazyLock,
};

use bgpintent_api::{AsPathPrepend, Asn, FieldError, PeerIntent, PeerKey, PolicySettings};
use bgpintent_crd::{BGPPolicy, convert::UniqueAddresses, policy::BGPPeer};
use kube::CustomResourceExt;
use serde::Deserialize;
use serde_json::Value;

use super::{nodes::NodeFacts, report::InvalidOverrides, selection::ParsedPolicy};

/// Overrides the policy's `localASN` on this Node (decimal, same rules as `localASN`).
pub const LOCAL_ASN_ANNOTATION: &str = "bgpintent.io/local-asn";
/// A JSON array of `bgpPeers[]` entries: an entry with the address of a policy peer
/// replaces it on this Node, the others are added.
pub const PEERS_ANNOTATION: &str = "bgpintent.io/peers";
/// `{"asn": N, "repeat": R}`: prepend N (default: the Node's local ASN) R times (1–10) to
/// every announcement of this Node, so routers prefer other Nodes.
pub const AS_PATH_PREPEND_ANNOTATION: &str = "bgpintent.io/as-path-prepend";

/// Every annotation read here, in the order they are applied.
pub const OVERRIDE_ANNOTATIONS: [&str; 3] =
    [LOCAL_ASN_ANNOTATION, PEERS_ANNOTATION, AS_PATH_PREPEND_ANNOTATION];

/// Errors of one Node's overrides, by annotation name; each error's field is the full path
/// (`metadata.annotations[bgpintent.io/peers][1].asn`).
pub type AnnotationErrors = BTreeMap<String, Vec<FieldError>>;

/// The path of an annotation, as error fields spell it.
pub fn annotation_field(annotation: &str) -> String {
    format!("metadata.annotations[{annotation}]")
}

/// `bgpintent.io/as-path-prepend`, parsed; the ASN is resolved against the Node's local
/// ASN when the intent is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PrependRequest {
    pub asn: Option<Asn>,
    pub repeat: u8,
}

/// The valid overrides of one Node. Empty (`Default`) when it has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeOverrides {
    pub local_asn: Option<Asn>,
    /// In annotation order; addresses are unique.
    pub peers: Vec<(PeerKey, PeerIntent)>,
    pub prepend: Option<PrependRequest>,
    /// Valid fields not acted on (an enabled `bfd`), as for a policy.
    pub ignored: Vec<FieldError>,
}

/// Reads the override annotations of a Node (`annotations` may hold others; they are
/// ignored). Returns what is valid and every error; the Node is held when there is any
/// error.
pub(crate) fn read(annotations: &BTreeMap<String, String>) -> (NodeOverrides, AnnotationErrors) {
    let mut out = NodeOverrides::default();
    let mut errors = AnnotationErrors::new();
    let mut fail = |annotation: &str, e: Vec<FieldError>| {
        if !e.is_empty() {
            errors.entry(annotation.to_owned()).or_default().extend(e);
        }
    };
    if let Some(v) = annotations.get(LOCAL_ASN_ANNOTATION) {
        match local_asn(v) {
            Ok(asn) => out.local_asn = Some(asn),
            Err(e) => fail(LOCAL_ASN_ANNOTATION, vec![e]),
        }
    }
    if let Some(v) = annotations.get(PEERS_ANNOTATION) {
        match peers(v) {
            Ok((peers, ignored)) => {
                out.peers = peers;
                out.ignored = ignored;
            }
            Err(e) => fail(PEERS_ANNOTATION, e),
        }
    }
    if let Some(v) = annotations.get(AS_PATH_PREPEND_ANNOTATION) {
        match prepend(v) {
            Ok(p) => out.prepend = Some(p),
            Err(e) => fail(AS_PATH_PREPEND_ANNOTATION, e),
        }
    }
    (out, errors)
}

fn local_asn(value: &str) -> Result<Asn, FieldError> {
    let field = annotation_field(LOCAL_ASN_ANNOTATION);
    let bad = || FieldError::new(&field, Asn::RULE).with_value(format!("{value:?}"));
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: i64 = value.parse().map_err(|_| bad())?;
    Asn::from_field(&field, n)
}

/// The JSON of an annotation, or an error naming it (serde_json's syntax errors carry a
/// position, never the text).
fn json(annotation: &str, value: &str, want: &str) -> Result<Value, FieldError> {
    serde_json::from_str(value).map_err(|e| {
        FieldError::new(
            annotation_field(annotation),
            format!("must be {want} in JSON: {e}"),
        )
    })
}

/// A serde error for a field whose schema is known (so the value in the message is an
/// address, a number or a flag, never a secret), rooted at `parent`.
fn serde_error(parent: &str, e: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    FieldError::new(path, e.inner().to_string()).under(parent)
}

/// The schema of a policy's `bgpPeers[]` entry and the list bound, as the apiserver has them.
static PEER_SCHEMA: LazyLock<(Value, usize)> = LazyLock::new(|| {
    let schema = bgpintent_crd::check::schema_of(&BGPPolicy::crd());
    let list = schema
        .pointer("/properties/spec/properties/bgpPeers")
        .cloned()
        .unwrap_or(Value::Null);
    let max = list
        .get("maxItems")
        .and_then(Value::as_u64)
        .and_then(|m| usize::try_from(m).ok())
        .unwrap_or(64);
    (list.get("items").cloned().unwrap_or(Value::Null), max)
});

/// Fields of `value` the structural `schema` does not declare, with their paths. The names
/// are reported, never the values.
fn unknown_fields(value: &Value, schema: &Value, path: &str, out: &mut Vec<FieldError>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (key, v) in map {
                let field = format!("{path}.{key}");
                match properties.get(key) {
                    Some(s) => unknown_fields(v, s, &field, out),
                    None => out.push(FieldError::new(
                        field,
                        "is an unknown field (entries take exactly the fields of spec.bgpPeers[])",
                    )),
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    unknown_fields(v, s, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

type Peers = Vec<(PeerKey, PeerIntent)>;

fn peers(value: &str) -> Result<(Peers, Vec<FieldError>), Vec<FieldError>> {
    let base = annotation_field(PEERS_ANNOTATION);
    let (schema, max) = &*PEER_SCHEMA;
    let json = json(PEERS_ANNOTATION, value, "an array of bgpPeers entries").map_err(|e| vec![e])?;
    let Value::Array(items) = json else {
        return Err(vec![FieldError::new(
            base,
            "must be a JSON array of bgpPeers entries",
        )]);
    };
    let mut errors = Vec::new();
    if items.len() > *max {
        errors
            .push(FieldError::new(&base, format!("must have at most {max} entries")).with_value(items.len()));
    }
    let mut peers = Vec::new();
    let mut ignored = Vec::new();
    let mut seen = UniqueAddresses::default();
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("{base}[{i}]");
        if !item.is_object() {
            // Not echoed: whatever it is, it is not a peer.
            errors.push(FieldError::new(path, "must be a JSON object (a bgpPeers entry)"));
            continue;
        }
        let mut unknown = Vec::new();
        unknown_fields(&item, schema, &path, &mut unknown);
        if !unknown.is_empty() {
            errors.extend(unknown);
            continue;
        }
        let peer: BGPPeer = match serde_path_to_error::deserialize(item) {
            Ok(p) => p,
            Err(e) => {
                errors.push(serde_error(&path, &e));
                continue;
            }
        };
        match peer.parse(&path) {
            Ok((key, intent)) => match seen.check(&base, i, key.address) {
                Ok(()) => peers.push((key, intent)),
                Err(e) => errors.push(e),
            },
            Err(e) => errors.extend(e.0),
        }
        if peer.bfd.as_ref().is_some_and(|b| b.enabled) {
            ignored.push(FieldError::new(
                format!("{path}.bfd.enabled"),
                "BFD is not supported; ignored",
            ));
        }
    }
    if errors.is_empty() {
        Ok((peers, ignored))
    } else {
        Err(errors)
    }
}

/// The JSON form of `bgpintent.io/as-path-prepend`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrependJson {
    #[serde(default)]
    asn: Option<i64>,
    repeat: i64,
}

fn prepend(value: &str) -> Result<PrependRequest, Vec<FieldError>> {
    let base = annotation_field(AS_PATH_PREPEND_ANNOTATION);
    let json = json(
        AS_PATH_PREPEND_ANNOTATION,
        value,
        r#"an object {"asn": N, "repeat": R}"#,
    )
    .map_err(|e| vec![e])?;
    if !json.is_object() {
        return Err(vec![FieldError::new(
            base,
            r#"must be a JSON object {"asn": N, "repeat": R}"#,
        )]);
    }
    let raw: PrependJson =
        serde_path_to_error::deserialize(json).map_err(|e| vec![serde_error(&base, &e)])?;
    let mut errors = Vec::new();
    let asn = match raw.asn {
        Some(a) => match Asn::from_field(&format!("{base}.asn"), a) {
            Ok(a) => Some(a),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => None,
    };
    let max = AsPathPrepend::MAX_REPEAT;
    let repeat = u8::try_from(raw.repeat).ok().filter(|r| (1..=max).contains(r));
    if repeat.is_none() {
        errors.push(
            FieldError::new(format!("{base}.repeat"), format!("must be between 1 and {max}"))
                .with_value(raw.repeat),
        );
    }
    match repeat {
        Some(repeat) if errors.is_empty() => Ok(PrependRequest { asn, repeat }),
        _ => Err(errors),
    }
}

impl NodeOverrides {
    /// The Node's local ASN.
    pub fn local_asn(&self, policy: Asn) -> Asn {
        self.local_asn.unwrap_or(policy)
    }

    /// The policy's peers with this Node's peers merged in: an annotation peer replaces
    /// every policy peer with its address (whatever their ASNs), the others are added.
    pub fn peers(&self, policy: &BTreeMap<PeerKey, PeerIntent>) -> BTreeMap<PeerKey, PeerIntent> {
        let addresses: BTreeSet<IpAddr> = self.peers.iter().map(|(k, _)| k.address).collect();
        let mut out: BTreeMap<PeerKey, PeerIntent> = policy
            .iter()
            .filter(|(k, _)| !addresses.contains(&k.address))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        out.extend(self.peers.iter().cloned());
        out
    }

    /// The prepend of every announcement, its ASN defaulted to the Node's local ASN.
    pub fn as_path_prepend(&self, local_asn: Asn) -> Option<AsPathPrepend> {
        self.prepend.map(|p| AsPathPrepend {
            asn: p.asn.unwrap_or(local_asn),
            repeat: p.repeat,
        })
    }

    /// What the overrides change, one line each, for `render` and `explain`.
    pub fn describe(
        &self,
        policy_name: &str,
        policy_asn: Asn,
        policy_peers: &BTreeMap<PeerKey, PeerIntent>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(asn) = self.local_asn {
            out.push(format!(
                "local ASN {asn} from annotation {LOCAL_ASN_ANNOTATION} (BGPPolicy {policy_name} says {policy_asn})"
            ));
        }
        for (key, _) in &self.peers {
            let replaced: Vec<String> = policy_peers
                .keys()
                .filter(|k| k.address == key.address)
                .map(ToString::to_string)
                .collect();
            if replaced.is_empty() {
                out.push(format!("peer {key} added by annotation {PEERS_ANNOTATION}"));
            } else {
                out.push(format!(
                    "peer {key} from annotation {PEERS_ANNOTATION} replaces the peer {} of BGPPolicy {policy_name}",
                    replaced.join(", ")
                ));
            }
        }
        if let Some(p) = self.as_path_prepend(self.local_asn(policy_asn)) {
            out.push(format!(
                "AS path prepended with {} × {} on every announcement (annotation {AS_PATH_PREPEND_ANNOTATION})",
                p.asn, p.repeat
            ));
        }
        for e in &self.ignored {
            out.push(format!("ignored: {e}"));
        }
        out
    }
}

/// The override annotations among a Node's annotations.
pub(crate) fn of(annotations: Option<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
    annotations
        .into_iter()
        .flatten()
        .filter(|(k, _)| OVERRIDE_ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Overrides of every Node owned by a valid policy, by Node name.
pub(crate) type ByNode = BTreeMap<String, (NodeOverrides, AnnotationErrors)>;

pub(crate) fn read_all(effective: &[(&NodeFacts, &ParsedPolicy)]) -> ByNode {
    effective
        .iter()
        .map(|(n, _)| (n.name.clone(), read(&n.override_annotations)))
        .collect()
}

/// Peers a policy's Nodes use: the policy's own and those its Nodes' valid annotations add,
/// sorted and unique.
pub(crate) fn peers_in_use<'a>(
    settings: &'a PolicySettings,
    nodes: &'a BTreeSet<String>,
    by_node: &'a ByNode,
) -> impl Iterator<Item = PeerKey> + 'a {
    let extra = nodes
        .iter()
        .filter_map(|n| by_node.get(n))
        .filter(|(_, errors)| errors.is_empty())
        .flat_map(|(o, _)| o.peers.iter().map(|(k, _)| *k));
    settings
        .peers
        .keys()
        .copied()
        .chain(extra)
        .collect::<BTreeSet<_>>()
        .into_iter()
}

/// The Nodes among `nodes` whose overrides are invalid, with what the report needs.
pub(crate) fn invalid(
    facts: &[NodeFacts],
    nodes: &BTreeSet<String>,
    by_node: &ByNode,
) -> BTreeMap<String, InvalidOverrides> {
    nodes
        .iter()
        .filter_map(|name| {
            let (_, errors) = by_node.get(name)?;
            if errors.is_empty() {
                return None;
            }
            let node = facts
                .binary_search_by(|f| f.name.as_str().cmp(name))
                .ok()
                .map(|i| &facts[i])?;
            Some((
                name.clone(),
                InvalidOverrides {
                    uid: node.uid.clone(),
                    families: node.next_hops.families().collect(),
                    errors: errors.clone(),
                },
            ))
        })
        .collect()
}
