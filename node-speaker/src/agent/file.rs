//! Standalone source: the intent from files, for bare metal, the demo and the tests.
//!
//! `--intent-file` holds the `BGPNodeIntent` named after this Node and the
//! `BGPAdvertisementSet`s it names (multi-document YAML); `--passwords-file` holds a Secret
//! manifest or a plain `key: value` map. Both are polled every 250 ms and read only when
//! complete and valid:
//!
//! * a change is read once the files have stayed unchanged for one poll (a writer still
//!   writing is not read half-way; write the file elsewhere and rename it to be safe);
//! * every document is admitted as the apiserver would admit it (`bgpintent_crd::check`:
//!   schema defaults, types, ranges, unknown fields, CEL rules), so a typo such as `pasword:`
//!   is refused with its field path instead of being ignored;
//! * the intent must be named after this Node, and every set it names must be in the file;
//! * anything else is reported (log, `/readyz`, `intent_load_errors_total`) and the last good
//!   state is kept (fail static);
//! * a missing intent file means "no intent" (every route withdrawn, every session closed),
//!   but only once it has been absent for [`ABSENT_FOR`]: an editor that replaces the file by
//!   deleting and renaming leaves it missing for a moment.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use bgpintent_crd::{
    BGPAdvertisementSet, BGPNodeIntent,
    convert::{parse_node_intent_without_sources, parse_prefix_groups_without_sources},
};
use kube::CustomResourceExt;
use serde_json::Value;
use tokio::sync::watch;

use super::{Desired, IntentState, Password, readiness::publish};

/// Files to follow.
#[derive(Debug, Clone)]
pub struct FileSource {
    pub node: String,
    pub intent_file: PathBuf,
    pub passwords_file: Option<PathBuf>,
}

/// How long the intent file must be seen absent before everything is withdrawn: more than
/// one poll (an editor's delete-and-rename takes a moment), little enough that a deleted
/// file is withdrawn within about 750 ms.
pub const ABSENT_FOR: Duration = Duration::from_millis(400);

/// How often the files are looked at.
const POLL: Duration = Duration::from_millis(250);

/// What identifies a version of a file: modification time and length.
type Stamp = Option<(SystemTime, u64)>;

fn modified(path: &Path) -> Stamp {
    std::fs::metadata(path)
        .and_then(|m| Ok((m.modified()?, m.len())))
        .ok()
}

/// Admits one document as the apiserver would, then deserializes it.
fn admit<K: CustomResourceExt + serde::de::DeserializeOwned>(
    file: &std::path::Display<'_>,
    kind: &str,
    doc: &Value,
) -> Result<K, String> {
    let name = doc["metadata"]["name"].as_str().unwrap_or("<no name>");
    let defaulted = bgpintent_crd::check::validate(&K::crd(), doc)
        .map_err(|errors| format!("{file}: {kind} {name}: {}", errors.join("; ")))?;
    serde_json::from_value(defaulted).map_err(|e| format!("{file}: {kind} {name}: {e}"))
}

impl FileSource {
    /// Reads once: `Ok(None)` when the intent file does not exist.
    pub fn read(&self) -> Result<Option<Desired>, String> {
        let text = match std::fs::read_to_string(&self.intent_file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", self.intent_file.display())),
        };
        let file = self.intent_file.display();
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&text).map_err(|e| format!("{file}: not YAML: {e}"))?;
        let mut intent = None;
        let mut others = Vec::new();
        let mut sets = BTreeMap::new();
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            match doc["kind"].as_str() {
                Some("BGPNodeIntent") => {
                    let o: BGPNodeIntent = admit(&file, "BGPNodeIntent", &doc)?;
                    let name = o.metadata.name.clone().unwrap_or_default();
                    if name != self.node {
                        others.push(name);
                    } else if intent.replace(o).is_some() {
                        return Err(format!("{file}: two BGPNodeIntents named {}", self.node));
                    }
                }
                Some("BGPAdvertisementSet") => {
                    let o: BGPAdvertisementSet = admit(&file, "BGPAdvertisementSet", &doc)?;
                    let name = o.metadata.name.clone().unwrap_or_default();
                    let prefixes = parse_prefix_groups_without_sources("spec.prefixes", &o.spec.prefixes)
                        .map_err(|e| format!("{file}: BGPAdvertisementSet {name}: {e}"))?;
                    sets.insert(name, prefixes);
                }
                other => return Err(format!("{file}: unexpected kind {other:?}")),
            }
        }
        let Some(object) = intent else {
            return Err(if others.is_empty() {
                format!("{file}: no BGPNodeIntent")
            } else {
                format!(
                    "{file}: no BGPNodeIntent named {} (this Node); found {}",
                    self.node,
                    others.join(", ")
                )
            });
        };
        let parsed = parse_node_intent_without_sources(&self.node, &object.spec)
            .map_err(|e| format!("{file}: BGPNodeIntent: {e}"))?;
        let passwords = match &self.passwords_file {
            Some(p) => read_passwords(p)?,
            None => BTreeMap::new(),
        };
        let passwords = parsed
            .peers
            .values()
            .filter_map(|peer| peer.password.as_ref())
            .filter_map(|r| passwords.get(&r.key).map(|v| (r.clone(), v.clone())))
            .collect();
        if let Some(missing) = parsed.sets.iter().find(|n| !sets.contains_key(*n)) {
            return Err(format!(
                "{file}: BGPNodeIntent {}: spec.sets names BGPAdvertisementSet {missing}, which is not in the file",
                self.node
            ));
        }
        let set_prefixes = sets
            .into_iter()
            .filter(|(n, _)| parsed.sets.contains(n))
            .collect();
        Ok(Some(Desired {
            intent: parsed,
            generation: object.metadata.generation,
            set_prefixes,
            passwords,
        }))
    }

    /// Follows the files; the receiver holds `None` until the first successful read.
    /// `state` says whether the intent is loaded, missing or invalid.
    pub fn follow(self, state: watch::Sender<IntentState>) -> watch::Receiver<Option<Desired>> {
        let first = self.read_reporting(&state).flatten();
        let (tx, rx) = watch::channel(first);
        tokio::spawn(async move {
            let stamps = |s: &Self| {
                (
                    modified(&s.intent_file),
                    s.passwords_file.as_deref().and_then(modified),
                )
            };
            let mut read = stamps(&self);
            // A change seen at the last poll, read once it held still for a whole poll.
            let mut settling: Option<(Stamp, Stamp)> = None;
            let mut absent_since: Option<tokio::time::Instant> = None;
            loop {
                tokio::time::sleep(POLL).await;
                if tx.is_closed() {
                    return;
                }
                let now = stamps(&self);
                if now == read {
                    settling = None;
                    absent_since = None;
                    continue;
                }
                if now.0.is_none() {
                    // Gone: only an absence that lasts counts (not an editor's rename).
                    let since = *absent_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() < ABSENT_FOR {
                        continue;
                    }
                } else {
                    absent_since = None;
                    // Changed: read once it held still for a whole poll.
                    if settling != Some(now) {
                        settling = Some(now);
                        continue;
                    }
                }
                absent_since = None;
                settling = None;
                read = now;
                if let Some(d) = self.read_reporting(&state) {
                    tx.send_if_modified(|old| {
                        if *old == d {
                            false
                        } else {
                            *old = d;
                            true
                        }
                    });
                }
            }
        });
        rx
    }

    /// [`Self::read`], with the outcome published and an error logged; `None` when the last
    /// good state must be kept.
    fn read_reporting(&self, state: &watch::Sender<IntentState>) -> Option<Option<Desired>> {
        match self.read() {
            Ok(Some(d)) => {
                publish(state, IntentState::Loaded);
                Some(Some(d))
            }
            Ok(None) => {
                let what = format!("the intent file {} does not exist", self.intent_file.display());
                tracing::warn!(file = %self.intent_file.display(), "no intent file: announcing nothing");
                publish(state, IntentState::Missing { what });
                Some(None)
            }
            Err(error) => {
                tracing::error!(%error, "cannot load the intent; keeping the last good one");
                publish(state, IntentState::Invalid { error });
                None
            }
        }
    }
}

/// A Secret manifest (`data` base64, `stringData` plain) or a plain map of key to password.
fn read_passwords(path: &Path) -> Result<BTreeMap<String, Password>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let doc: Value = serde_saphyr::from_str(&text).map_err(|_| format!("{shown}: not YAML"))?;
    let mut out = BTreeMap::new();
    if doc["kind"] == "Secret" {
        let secret: k8s_openapi::api::core::v1::Secret =
            serde_json::from_value(doc).map_err(|_| format!("{shown}: not a valid Secret"))?;
        for (k, v) in secret.data.unwrap_or_default() {
            out.insert(k, Password(v.0));
        }
        for (k, v) in secret.string_data.unwrap_or_default() {
            out.insert(k, Password(v.into_bytes()));
        }
    } else if let Some(map) = doc.as_object() {
        for (k, v) in map {
            let v = v
                .as_str()
                .ok_or_else(|| format!("{shown}: the value of {k} is not a string"))?;
            out.insert(k.clone(), Password(v.as_bytes().to_vec()));
        }
    } else {
        return Err(format!("{shown}: expected a Secret or a map of key to password"));
    }
    Ok(out)
}
