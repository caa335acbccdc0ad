//! Prefix groups (`spec.prefixes` of intents and sets) and path attributes, both ways.
//!
//! ```text
//!  prefix → {sources}     ──prefix_groups──▶  [{source, prefixes, attributes}]
//!  prefix → attributes    ◀─parse_prefix_groups─  (one group per (source, attributes))
//! ```
//!
//! Attributes belong to a prefix, not to a source: they are merged over every source of
//! the prefix before they get here. Groups repeat them so a reader sees what each prefix
//! is sent with next to why; the parser checks every group holding a prefix agrees.

use std::collections::{BTreeMap, BTreeSet};

use bgpintent_api::{
    AsPathPrepend, Asn, Community, FieldError, FieldErrors, LargeCommunity, PathAttributes, Prefix, Source,
};

use super::{parse_source, ranged, source_ref};
use crate::common::{AsPathPrependSpec, PathAttributesSpec, PrefixGroup};

/// What a list of prefix groups holds: every prefix with its sources, and the attributes of
/// those that carry any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixTable {
    pub prefixes: BTreeMap<Prefix, BTreeSet<Source>>,
    /// Only non-empty attributes; every key is a key of `prefixes`.
    pub attributes: BTreeMap<Prefix, PathAttributes>,
}

/// Parses a `pathAttributes` (or a group's `attributes`) object; `field` is its path.
pub fn parse_path_attributes(field: &str, spec: &PathAttributesSpec) -> Result<PathAttributes, FieldErrors> {
    let mut errors = FieldErrors::default();
    let communities = spec
        .communities
        .iter()
        .enumerate()
        .filter_map(|(i, c)| errors.collect(Community::from_field(&format!("{field}.communities[{i}]"), c)))
        .collect();
    let large_communities = spec
        .large_communities
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            errors.collect(LargeCommunity::from_field(
                &format!("{field}.largeCommunities[{i}]"),
                c,
            ))
        })
        .collect();
    let max = i64::from(u32::MAX);
    let local_pref = spec
        .local_pref
        .and_then(|v| errors.collect(ranged::<u32>(&format!("{field}.localPref"), v, 0, max)));
    let med = spec
        .med
        .and_then(|v| errors.collect(ranged::<u32>(&format!("{field}.med"), v, 0, max)));
    let bound = crate::MAX_COMMUNITIES as usize;
    for (name, len) in [
        ("communities", spec.communities.len()),
        ("largeCommunities", spec.large_communities.len()),
    ] {
        if len > bound {
            errors.push(
                FieldError::new(
                    format!("{field}.{name}"),
                    format!("must have at most {bound} items"),
                )
                .with_value(len),
            );
        }
    }
    errors.finish(|| PathAttributes {
        communities,
        large_communities,
        local_pref,
        med,
    })
}

/// The API form of attributes: communities in canonical text (well-known names where one
/// exists), sorted by value.
pub fn path_attributes_spec(attributes: &PathAttributes) -> PathAttributesSpec {
    PathAttributesSpec {
        communities: attributes.communities.iter().map(ToString::to_string).collect(),
        large_communities: attributes
            .large_communities
            .iter()
            .map(ToString::to_string)
            .collect(),
        local_pref: attributes.local_pref.map(i64::from),
        med: attributes.med.map(i64::from),
    }
}

/// Parses `spec.asPathPrepend` of an intent.
pub fn parse_as_path_prepend(field: &str, spec: &AsPathPrependSpec) -> Result<AsPathPrepend, FieldErrors> {
    let mut errors = FieldErrors::default();
    let asn = errors.collect(Asn::from_field(&format!("{field}.asn"), spec.asn));
    let repeat = errors.collect(ranged::<u8>(
        &format!("{field}.repeat"),
        i64::from(spec.repeat),
        1,
        i64::from(AsPathPrepend::MAX_REPEAT),
    ));
    errors.finish(|| AsPathPrepend {
        asn: asn.expect("checked"),
        repeat: repeat.expect("checked"),
    })
}

pub fn as_path_prepend_spec(prepend: &AsPathPrepend) -> AsPathPrependSpec {
    AsPathPrependSpec {
        asn: i64::from(prepend.asn.get()),
        repeat: i32::from(prepend.repeat),
    }
}

/// Sources of a prefix map, inverted into groups: one per (source, attributes), sorted by
/// source, then attributes (none first), prefixes sorted within, and split into groups of at
/// most [`crate::MAX_PREFIXES_PER_GROUP`] (the CRD's bound: an apiserver, and the
/// standalone speaker, refuse longer ones). `attributes` holds the merged attributes of
/// prefixes that carry any.
pub fn prefix_groups(
    prefixes: &BTreeMap<Prefix, BTreeSet<Source>>,
    attributes: &BTreeMap<Prefix, PathAttributes>,
) -> Vec<PrefixGroup> {
    let mut groups: BTreeMap<(&Source, Option<&PathAttributes>), Vec<Prefix>> = BTreeMap::new();
    for (prefix, sources) in prefixes {
        let attrs = attributes.get(prefix).filter(|a| !a.is_empty());
        for source in sources {
            groups.entry((source, attrs)).or_default().push(*prefix);
        }
    }
    groups
        .into_iter()
        .flat_map(|((source, attrs), prefixes)| {
            prefixes
                .chunks(crate::MAX_PREFIXES_PER_GROUP as usize)
                .map(|chunk| PrefixGroup {
                    source: source_ref(source),
                    prefixes: chunk.iter().map(Prefix::to_string).collect(),
                    attributes: attrs.map(path_attributes_spec),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether parsed prefix groups keep each prefix's sources (for readers: render, explain,
/// the controller) or drop them (the speaker, which only announces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sources {
    Keep,
    Drop,
}

/// Groups back into prefixes and attributes; `field` is the path of the group list. A
/// prefix held by groups with different attributes is an error naming both groups.
pub fn parse_prefix_groups(field: &str, groups: &[PrefixGroup]) -> Result<PrefixTable, FieldErrors> {
    parse_prefix_groups_with(field, groups, Sources::Keep)
}

/// [`parse_prefix_groups`] with every prefix's source set left empty (see [`Sources`]).
pub fn parse_prefix_groups_without_sources(
    field: &str,
    groups: &[PrefixGroup],
) -> Result<PrefixTable, FieldErrors> {
    parse_prefix_groups_with(field, groups, Sources::Drop)
}

pub(super) fn parse_prefix_groups_with(
    field: &str,
    groups: &[PrefixGroup],
    sources: Sources,
) -> Result<PrefixTable, FieldErrors> {
    let mut errors = FieldErrors::default();
    let mut out = PrefixTable::default();
    // Attributes of each group (`None`: the group did not parse).
    let mut group_attrs: Vec<Option<PathAttributes>> = Vec::with_capacity(groups.len());
    // Prefix → index of the first group holding it.
    let mut first: BTreeMap<Prefix, usize> = BTreeMap::new();
    // Pairs of disagreeing groups already reported (once per pair, not per prefix).
    let mut reported: BTreeSet<(usize, usize)> = BTreeSet::new();
    for (i, group) in groups.iter().enumerate() {
        let path = format!("{field}[{i}]");
        let source = errors.collect(parse_source(&format!("{path}.source"), &group.source));
        let attrs = match &group.attributes {
            Some(a) => match parse_path_attributes(&format!("{path}.attributes"), a) {
                Ok(a) => Some(a),
                Err(e) => {
                    errors.0.extend(e.0);
                    None
                }
            },
            None => Some(PathAttributes::default()),
        };
        group_attrs.push(attrs.clone());
        let (Some(source), Some(attrs)) = (source, attrs) else {
            continue;
        };
        for (j, p) in group.prefixes.iter().enumerate() {
            let Some(prefix) = errors.collect(Prefix::from_field(&format!("{path}.prefixes[{j}]"), p)) else {
                continue;
            };
            match first.get(&prefix) {
                Some(&k) if group_attrs[k].as_ref() != Some(&attrs) => {
                    if reported.insert((k, i)) {
                        errors.push(FieldError::new(
                            format!("{path}.attributes"),
                            format!("must equal the attributes of {field}[{k}], which also holds {prefix}"),
                        ));
                    }
                }
                Some(_) => {}
                None => {
                    first.insert(prefix, i);
                    if !attrs.is_empty() {
                        out.attributes.insert(prefix, attrs.clone());
                    }
                }
            }
            let entry = out.prefixes.entry(prefix).or_default();
            if sources == Sources::Keep {
                entry.insert(source.clone());
            }
        }
    }
    errors.finish(|| out)
}
