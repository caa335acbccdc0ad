//! Reading a cluster from manifest files: YAML (multi-document) or JSON, files or folders.
//!
//! Each document is read as generic data first, dispatched on `kind`, then deserialized
//! into its type with the path of the failing field recorded, so an error says which file,
//! which object and which field ("cluster/nodes.yaml: Node worker-1: status.addresses[0]:
//! missing field `type`").

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use bgpintent_crd::BGPPolicy;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::intent::{EGRESS_API_VERSION, Egress, Snapshot};

/// The sample cluster compiled into the binary (`render` with no paths).
pub const SAMPLE: &[(&str, &str)] = &[
    (
        "policies.yaml",
        include_str!("../../../docs/examples/cluster/policies.yaml"),
    ),
    (
        "nodes.yaml",
        include_str!("../../../docs/examples/cluster/nodes.yaml"),
    ),
    (
        "services.yaml",
        include_str!("../../../docs/examples/cluster/services.yaml"),
    ),
    (
        "endpointslices.yaml",
        include_str!("../../../docs/examples/cluster/endpointslices.yaml"),
    ),
    (
        "egresses.yaml",
        include_str!("../../../docs/examples/cluster/egresses.yaml"),
    ),
    (
        "passwords.yaml",
        include_str!("../../../docs/examples/cluster/passwords.yaml"),
    ),
    (
        "pods.yaml",
        include_str!("../../../docs/examples/cluster/pods.yaml"),
    ),
];

/// One manifest's text and where it came from.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub source: String,
    pub text: String,
}

/// A manifest that cannot be read or is not valid for its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    pub file: String,
    /// `Kind namespace/name`, when the document got that far.
    pub object: Option<String>,
    /// JSON path of the offending field.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(o) = &self.object {
            write!(f, ": {o}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

fn err(file: &str, object: Option<String>, field: Option<String>, message: impl Into<String>) -> LoadError {
    LoadError {
        file: file.to_owned(),
        object,
        field,
        message: message.into(),
    }
}

/// The embedded sample cluster.
pub fn sample() -> Vec<Manifest> {
    SAMPLE
        .iter()
        .map(|(name, text)| Manifest {
            source: format!("<sample>/{name}"),
            text: (*text).to_owned(),
        })
        .collect()
}

/// Reads files and folders (non-recursive in folders: `*.yaml`, `*.yml`, `*.json`, sorted).
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<Manifest>, LoadError> {
    let mut out = Vec::new();
    for path in paths {
        let display = path.display().to_string();
        let meta =
            std::fs::metadata(path).map_err(|e| err(&display, None, None, format!("cannot read: {e}")))?;
        if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| err(&display, None, None, format!("cannot list folder: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .and_then(|e| e.to_str())
                            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
                })
                .collect();
            files.sort();
            for f in files {
                out.push(read_file(&f)?);
            }
        } else {
            out.push(read_file(path)?);
        }
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<Manifest, LoadError> {
    let source = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| err(&source, None, None, format!("cannot read: {e}")))?;
    Ok(Manifest { source, text })
}

/// Options of [`parse`].
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Name of the passwords Secret; other Secrets are ignored.
    pub passwords_secret: String,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            passwords_secret: "bgp-passwords".into(),
        }
    }
}

fn typed<T: DeserializeOwned>(file: &str, object: &str, doc: Value) -> Result<T, LoadError> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        // A base64 error names the offending byte and offset: never show it for a Secret.
        let message = if object.starts_with("Secret ") {
            "invalid value (not shown: Secret data)".to_owned()
        } else {
            e.into_inner().to_string()
        };
        err(file, Some(object.to_owned()), field, message)
    })
}

/// Builds a snapshot from manifests. Documents of other kinds are skipped with a note.
pub fn parse(
    manifests: &[Manifest],
    options: &ParseOptions,
    notes: &mut Vec<String>,
) -> Result<Snapshot, LoadError> {
    let mut snapshot = Snapshot::default();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for m in manifests {
        let docs: Vec<Value> = serde_saphyr::from_multiple(&m.text)
            .map_err(|e| err(&m.source, None, None, format!("not valid YAML: {e}")))?;
        for (i, doc) in docs.into_iter().enumerate() {
            if doc.is_null() {
                continue;
            }
            let at = format!("{} (document {})", m.source, i + 1);
            let Some(obj) = doc.as_object() else {
                return Err(err(&at, None, None, "document is not a mapping"));
            };
            let kind = obj
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let api_version = obj
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let meta = obj.get("metadata");
            let name = meta
                .and_then(|v| v.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let namespace = meta.and_then(|v| v.get("namespace")).and_then(Value::as_str);
            let object = match namespace {
                Some(ns) => format!("{kind} {ns}/{name}"),
                None => format!("{kind} {name}"),
            };
            if kind.is_empty() {
                return Err(err(&at, None, Some("kind".into()), "missing"));
            }
            if name.is_empty() {
                return Err(err(&at, Some(object), Some("metadata.name".into()), "missing"));
            }
            let file = m.source.as_str();
            let key = format!("{api_version}/{object}");
            match (api_version.as_str(), kind.as_str()) {
                ("v1", "Node") => snapshot.nodes.push(typed(file, &object, doc)?),
                ("v1", "Service") => snapshot.services.push(typed(file, &object, doc)?),
                ("v1", "Pod") => snapshot.pods.push(typed(file, &object, doc)?),
                ("discovery.k8s.io/v1", "EndpointSlice") => {
                    snapshot.endpoint_slices.push(typed(file, &object, doc)?)
                }
                ("bgpintent.io/v1alpha1", "BGPPolicy") => {
                    snapshot.policies.push(typed::<BGPPolicy>(file, &object, doc)?)
                }
                (EGRESS_API_VERSION, "Egress") => {
                    snapshot.egresses.push(typed::<Egress>(file, &object, doc)?)
                }
                ("v1", "Secret") if name == options.passwords_secret => {
                    if snapshot.passwords.is_some() {
                        return Err(err(file, Some(object), None, "a second passwords Secret"));
                    }
                    snapshot.passwords = Some(typed(file, &object, doc)?);
                }
                _ => {
                    notes.push(format!(
                        "{at}: {api_version} {object} ignored (not an input of the engine)"
                    ));
                    continue;
                }
            }
            if let Some(first) = seen.insert(key, file.to_owned()) {
                return Err(err(
                    file,
                    Some(object),
                    None,
                    format!("defined twice (also in {first})"),
                ));
            }
        }
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<Snapshot, LoadError> {
        parse(
            &[Manifest {
                source: "f.yaml".into(),
                text: text.into(),
            }],
            &ParseOptions::default(),
            &mut vec![],
        )
    }

    #[test]
    fn sample_parses() {
        let mut notes = vec![];
        let s = parse(&sample(), &ParseOptions::default(), &mut notes).unwrap();
        assert!(s.nodes.len() >= 4 && s.policies.len() >= 2, "{s:?}");
        assert!(s.passwords.is_some() && !s.egresses.is_empty() && !s.endpoint_slices.is_empty());
        assert!(s.pods.len() >= 2, "{s:?}");
    }

    #[test]
    fn errors_name_file_object_and_field() {
        let e = one("apiVersion: v1\nkind: Node\nmetadata: {name: w1}\nstatus:\n  addresses:\n  - {address: 10.0.0.1, type: [1]}\n")
            .unwrap_err();
        assert_eq!(e.file, "f.yaml");
        assert_eq!(e.object.as_deref(), Some("Node w1"));
        assert_eq!(e.field.as_deref(), Some("status.addresses[0].type"));
        assert!(e.to_string().contains("invalid type"), "{e}");
        let e =
            one("apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: ns}\nspec: {clusterIPs: 5}\n")
                .unwrap_err();
        assert_eq!(
            e.to_string().split(": ").take(3).collect::<Vec<_>>(),
            ["f.yaml", "Service ns/s", "spec.clusterIPs"]
        );
        let e = one("kind: [").unwrap_err();
        assert!(e.to_string().starts_with("f.yaml: not valid YAML"), "{e}");
    }

    #[test]
    fn duplicates_and_other_kinds() {
        let e = one("apiVersion: v1\nkind: Node\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: a}\n")
            .unwrap_err();
        assert!(e.message.contains("defined twice"), "{e}");
        let mut notes = vec![];
        let s = parse(
            &[Manifest {
                source: "f.yaml".into(),
                text: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n".into(),
            }],
            &ParseOptions::default(),
            &mut notes,
        )
        .unwrap();
        assert!(s.nodes.is_empty());
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("Deployment d ignored"));
    }

    #[test]
    fn secret_values_never_reach_errors() {
        let e = one("apiVersion: v1\nkind: Secret\nmetadata: {name: bgp-passwords}\ndata: {\"192.0.2.1-65000\": \"!!hunter2!!\"}\n")
            .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(e.field.as_deref(), Some("data.192.0.2.1-65000"), "{e}");
    }
}
