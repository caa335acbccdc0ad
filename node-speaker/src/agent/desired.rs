//! What the speaker should be doing: the intent, the prefixes of the sets it names, and the
//! passwords its peers reference. Built by a source (Kubernetes or files); the agent diffs
//! one `Desired` against the next.

use std::{collections::BTreeMap, sync::Arc};

use bgpintent_api::{NodeIntent, PasswordRef};
use bgpintent_crd::convert::PrefixTable;

use crate::session::{Announce, Routes};

/// A password value, resolved from its reference. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub Vec<u8>);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Everything the agent acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub intent: NodeIntent,
    /// `metadata.generation` of the BGPNodeIntent (reported back as `observedGeneration`).
    pub generation: Option<i64>,
    /// Prefixes (with their attributes) of the sets the intent names, by set name (those
    /// found; a missing set is reported).
    pub set_prefixes: BTreeMap<String, PrefixTable>,
    /// Passwords by reference; a reference whose value could not be read is absent.
    pub passwords: BTreeMap<PasswordRef, Password>,
}

impl Desired {
    /// Every prefix this Node announces: its own and those of its sets.
    pub fn routes(&self) -> Routes {
        let announce = Arc::new(Announce::default());
        self.intent
            .prefixes
            .keys()
            .chain(self.set_prefixes.values().flat_map(|s| s.prefixes.keys()))
            .map(|p| (*p, announce.clone()))
            .collect()
    }

    /// Sets the intent names that the source has not (yet) found.
    pub fn missing_sets(&self) -> Vec<&str> {
        self.intent
            .sets
            .iter()
            .filter(|s| !self.set_prefixes.contains_key(*s))
            .map(String::as_str)
            .collect()
    }

    pub fn password(&self, reference: Option<&PasswordRef>) -> Option<&[u8]> {
        reference
            .and_then(|r| self.passwords.get(r))
            .map(|p| p.0.as_slice())
    }
}
