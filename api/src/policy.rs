//! A BGPPolicy, parsed: what the engine works from.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{Asn, Confederation, FieldError, PathAttributes, PeerIntent, PeerKey, ServiceIpType};

/// What a policy announces.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Advertisements {
    pub service_ip_types: BTreeSet<ServiceIpType>,
    pub pod: bool,
    pub egress: bool,
}

/// The node-independent part of a BGPPolicy, every field parsed and defaulted. Passwords and
/// local addresses are Node- and Secret-specific and are filled in by the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySettings {
    pub local_asn: Asn,
    pub listen_port: u16,
    pub confederation: Option<Confederation>,
    pub advertisements: Advertisements,
    pub peers: BTreeMap<PeerKey, PeerIntent>,
    /// `spec.pathAttributes`: attributes of every prefix the policy announces, after those
    /// of more specific sources (Services) in [`PathAttributes::merge`].
    pub path_attributes: PathAttributes,
    /// Fields that are valid but that bgp-intent does not act on (for example `bfd`); the
    /// controller reports them on the policy instead of failing it.
    pub ignored: Vec<FieldError>,
}

/// A label selector (`matchLabels` and `matchExpressions`), parsed.
///
/// An empty selector matches every Node, as in Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Selector {
    pub match_labels: BTreeMap<String, String>,
    pub expressions: Vec<Requirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Requirement {
    In { key: String, values: BTreeSet<String> },
    NotIn { key: String, values: BTreeSet<String> },
    Exists { key: String },
    DoesNotExist { key: String },
}

impl Requirement {
    /// Builds a requirement from the API's `{key, operator, values}`, naming `field`.
    pub fn parse(field: &str, key: &str, operator: &str, values: &[String]) -> Result<Self, FieldError> {
        let key = key.to_owned();
        let set = || values.iter().cloned().collect::<BTreeSet<_>>();
        let req = match operator {
            "In" | "NotIn" if values.is_empty() => {
                return Err(FieldError::new(
                    format!("{field}.values"),
                    format!("must be non-empty when operator is {operator}"),
                ));
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(FieldError::new(
                    format!("{field}.values"),
                    format!("must be empty when operator is {operator}"),
                ));
            }
            "In" => Requirement::In { key, values: set() },
            "NotIn" => Requirement::NotIn { key, values: set() },
            "Exists" => Requirement::Exists { key },
            "DoesNotExist" => Requirement::DoesNotExist { key },
            other => {
                return Err(FieldError::new(
                    format!("{field}.operator"),
                    "must be one of In, NotIn, Exists, DoesNotExist",
                )
                .with_value(format!("{other:?}")));
            }
        };
        Ok(req)
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::In { key, values } => labels.get(key).is_some_and(|v| values.contains(v)),
            Requirement::NotIn { key, values } => labels.get(key).is_none_or(|v| !values.contains(v)),
            Requirement::Exists { key } => labels.contains_key(key),
            Requirement::DoesNotExist { key } => !labels.contains_key(key),
        }
    }
}

impl Selector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|r| r.matches(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(Selector::default().matches(&labels(&[])));
    }

    #[test]
    fn match_labels_and_expressions() {
        let sel = Selector {
            match_labels: labels(&[("bgp", "enabled")]),
            expressions: vec![
                Requirement::parse("e", "zone", "In", &["a".into(), "b".into()]).unwrap(),
                Requirement::parse("e", "drain", "DoesNotExist", &[]).unwrap(),
                Requirement::parse("e", "tier", "NotIn", &["edge".into()]).unwrap(),
            ],
        };
        assert!(sel.matches(&labels(&[("bgp", "enabled"), ("zone", "a")])));
        assert!(!sel.matches(&labels(&[("bgp", "enabled"), ("zone", "c")])));
        assert!(!sel.matches(&labels(&[("bgp", "enabled"), ("zone", "a"), ("drain", "")])));
        assert!(!sel.matches(&labels(&[("bgp", "enabled"), ("zone", "a"), ("tier", "edge")])));
        assert!(!sel.matches(&labels(&[("zone", "a")])));
    }

    #[test]
    fn bad_requirements_name_the_field() {
        let e = Requirement::parse("spec.nodeSelector.matchExpressions[0]", "k", "In", &[]).unwrap_err();
        assert_eq!(e.field, "spec.nodeSelector.matchExpressions[0].values");
        let e = Requirement::parse("x", "k", "Gt", &[]).unwrap_err();
        assert_eq!(e.field, "x.operator");
    }
}
