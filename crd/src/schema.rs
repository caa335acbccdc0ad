//! Schemas for fields whose Rust type says too little (IP addresses, CIDRs).
//!
//! Every function returns a structural schema (`type` set, no `oneOf` with types inside)
//! with a bounded `maxLength` so the apiserver's CEL cost estimate stays small, and an
//! `isIP`/`isCIDR` rule (Kubernetes >= 1.31) so bad values are refused at admission with a
//! message that says what was expected. ipnet's own `JsonSchema` is deliberately not used:
//! it emits `oneOf` items without `type`, which a real apiserver rejects.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// Longest textual IPv6 address (`ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`).
const IP_MAX_LEN: u32 = 45;
/// Longest textual CIDR: an IPv6 address plus `/128`.
const CIDR_MAX_LEN: u32 = 49;
/// Longest community: the longest well-known name (`no-export-subconfed`) or
/// `65535:65535`.
const COMMUNITY_MAX_LEN: u32 = 19;

/// An IPv4 or IPv6 address.
pub fn ip(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": IP_MAX_LEN,
        "x-kubernetes-validations": [
            {"rule": "isIP(self)", "message": "must be an IPv4 or IPv6 address"}
        ]
    })
}

/// An IPv4 address (router IDs, IPv4 next hops).
pub fn ipv4(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": 15,
        "x-kubernetes-validations": [
            {"rule": "isIP(self) && ip(self).family() == 4", "message": "must be an IPv4 address"}
        ]
    })
}

/// An IPv6 address (IPv6 next hops).
pub fn ipv6(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": IP_MAX_LEN,
        "x-kubernetes-validations": [
            {"rule": "isIP(self) && ip(self).family() == 6", "message": "must be an IPv6 address"}
        ]
    })
}

/// A list of prefixes in CIDR notation (host prefixes are `/32` and `/128`).
pub fn cidr_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": crate::MAX_PREFIXES_PER_GROUP,
        "items": {
            "type": "string",
            "maxLength": CIDR_MAX_LEN,
            "x-kubernetes-validations": [
                {"rule": "isCIDR(self)", "message": "must be a prefix in CIDR notation"}
            ]
        }
    })
}

/// Standard communities: `<0-65535>:<0-65535>` or a well-known name, checked at admission
/// with the same rule as [`bgpintent_api::Community`]'s parser (lower-case names only: the
/// parser also accepts other cases, the stored form is canonical).
pub fn community_list(_: &mut SchemaGenerator) -> Schema {
    let names: Vec<&str> = bgpintent_api::Community::WELL_KNOWN
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    let rule = format!(
        "self.matches('^[0-9]{{1,5}}:[0-9]{{1,5}}$') ? self.split(':').all(p, int(p) <= 65535) : self in [{}]",
        quoted.join(", ")
    );
    let message = bgpintent_api::Community::rule();
    json_schema!({
        "type": "array",
        "maxItems": crate::MAX_COMMUNITIES,
        "items": {
            "type": "string",
            "maxLength": COMMUNITY_MAX_LEN,
            "x-kubernetes-validations": [{"rule": rule, "message": message}]
        }
    })
}

/// Large communities (RFC 8092): `<uint32>:<uint32>:<uint32>`.
pub fn large_community_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": crate::MAX_COMMUNITIES,
        "items": {
            "type": "string",
            "maxLength": 32,
            "x-kubernetes-validations": [{
                "rule": "self.matches('^[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$') && self.split(':').all(p, int(p) <= 4294967295)",
                "message": bgpintent_api::LargeCommunity::RULE
            }]
        }
    })
}

/// Schema of `T` with the apiserver's `x-kubernetes-list-type: map` keyed by `type`, the
/// shape every `conditions` list in Kubernetes has.
pub fn conditions(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = Vec::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>::json_schema(generator);
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    schema.insert("maxItems".into(), 16.into());
    schema
}
