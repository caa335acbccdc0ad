//! Router IDs: annotation, else IPv4 InternalIP, else a hash of the Node name.
//!
//! The chosen value is written back to the annotation once and never changed, so a router
//! ID does not move when a Node's address does. Collisions within one ASN are reported;
//! only hashed IDs (which nobody chose) are moved, to a salted hash, deterministically:
//! Nodes are visited by name and the first keeps the plain (Antrea-compatible) hash.

use std::collections::{BTreeMap, BTreeSet};

use bgpintent_api::{Asn, RouterId, fnv1a32};

use super::{
    nodes::{NodeFacts, ROUTER_ID_ANNOTATION},
    report::{RouterIdCollision, RouterIdSource},
};

/// Salted attempts before giving up on finding an unused hashed ID (never reached in
/// practice: 2^32 IDs, at most a few thousand Nodes per ASN).
const MAX_ATTEMPTS: u32 = 64;

#[derive(Debug, Clone)]
pub(crate) struct Chosen {
    pub id: RouterId,
    pub source: RouterIdSource,
    /// Set when the annotation is missing: the value to write.
    pub write: bool,
    pub note: Option<String>,
}

/// Salted FNV-1a-32: attempt 0 is Antrea's plain hash of the name.
fn hashed(name: &str, attempt: u32) -> RouterId {
    if attempt == 0 {
        return RouterId::from_name_hash(name);
    }
    let salted = format!("{name}#{attempt}");
    RouterId::try_from(std::net::Ipv4Addr::from(fnv1a32(salted.as_bytes()).max(1)))
        .expect("non-zero by construction")
}

/// Chooses the router ID of each Node (with its policy's ASN); returns the choices and the
/// collisions among IDs that could not be moved.
pub(crate) fn choose(nodes: &[(&NodeFacts, Asn)]) -> (BTreeMap<String, Chosen>, Vec<RouterIdCollision>) {
    let mut chosen = BTreeMap::new();
    let mut used: BTreeMap<(Asn, RouterId), BTreeSet<String>> = BTreeMap::new();
    let mut pending: Vec<(&NodeFacts, Asn, Option<String>)> = Vec::new();
    for (node, asn) in nodes {
        let (annotation, note) = match &node.router_id_annotation {
            Some(v) => match RouterId::from_field(ROUTER_ID_ANNOTATION, v) {
                Ok(id) => (Some(id), None),
                Err(_) => (
                    None,
                    Some(format!(
                        "annotation {ROUTER_ID_ANNOTATION}={v:?} is not a valid router ID (non-zero IPv4); \
                         it is left as is and a fallback is used"
                    )),
                ),
            },
            None => (None, None),
        };
        let write = node.router_id_annotation.is_none();
        let fixed = match (annotation, node.ipv4().and_then(|a| RouterId::try_from(a).ok())) {
            (Some(id), _) => Some((id, RouterIdSource::Annotation)),
            (None, Some(id)) => Some((id, RouterIdSource::InternalIp)),
            (None, None) => None,
        };
        match fixed {
            Some((id, source)) => {
                used.entry((*asn, id)).or_default().insert(node.name.clone());
                chosen.insert(
                    node.name.clone(),
                    Chosen {
                        id,
                        source,
                        write,
                        note,
                    },
                );
            }
            None => pending.push((node, *asn, note)),
        }
    }
    pending.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    for (node, asn, note) in pending {
        let mut attempt = 0;
        let mut id = hashed(&node.name, 0);
        while used.contains_key(&(asn, id)) && attempt < MAX_ATTEMPTS {
            attempt += 1;
            id = hashed(&node.name, attempt);
        }
        used.entry((asn, id)).or_default().insert(node.name.clone());
        chosen.insert(
            node.name.clone(),
            Chosen {
                id,
                source: RouterIdSource::NameHash { attempt },
                write: node.router_id_annotation.is_none(),
                note,
            },
        );
    }
    let collisions = used
        .into_iter()
        .filter(|(_, nodes)| nodes.len() > 1)
        .map(|((asn, router_id), nodes)| RouterIdCollision {
            asn,
            router_id,
            nodes,
        })
        .collect();
    (chosen, collisions)
}
