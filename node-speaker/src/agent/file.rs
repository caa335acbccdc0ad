//! Standalone source: the intent from files, for bare metal, the demo and the tests.
//!
//! `--intent-file` holds one `BGPNodeIntent` and any number of `BGPAdvertisementSet`s
//! (multi-document YAML); `--passwords-file` holds a Secret manifest or a plain `key: value`
//! map. Both are re-read when they change (polled every 250 ms). A file that cannot be read
//! or parsed is reported and the last good state is kept (fail static); a missing intent
//! file means "no intent": every route is withdrawn and every session closed.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use bgpintent_crd::{
    BGPAdvertisementSet, BGPNodeIntent,
    convert::{parse_node_intent_without_sources, parse_prefix_groups_without_sources},
};
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

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
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
        let mut sets = BTreeMap::new();
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            match doc["kind"].as_str() {
                Some("BGPNodeIntent") => {
                    let o: BGPNodeIntent =
                        serde_json::from_value(doc).map_err(|e| format!("{file}: BGPNodeIntent: {e}"))?;
                    let name = o.metadata.name.clone().unwrap_or_default();
                    if name == self.node || intent.is_none() {
                        intent = Some(o);
                    }
                }
                Some("BGPAdvertisementSet") => {
                    let o: BGPAdvertisementSet = serde_json::from_value(doc)
                        .map_err(|e| format!("{file}: BGPAdvertisementSet: {e}"))?;
                    let name = o.metadata.name.clone().unwrap_or_default();
                    let prefixes = parse_prefix_groups_without_sources("spec.prefixes", &o.spec.prefixes)
                        .map_err(|e| format!("{file}: BGPAdvertisementSet {name}: {e}"))?;
                    sets.insert(name, prefixes);
                }
                other => return Err(format!("{file}: unexpected kind {other:?}")),
            }
        }
        let Some(object) = intent else {
            return Err(format!("{file}: no BGPNodeIntent"));
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
            let mut stamps = (
                modified(&self.intent_file),
                self.passwords_file.as_deref().and_then(modified),
            );
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let now = (
                    modified(&self.intent_file),
                    self.passwords_file.as_deref().and_then(modified),
                );
                if now == stamps {
                    continue;
                }
                stamps = now;
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
                if tx.is_closed() {
                    return;
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
