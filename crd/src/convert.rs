//! CRD types ⇄ domain types. Parsing happens here, once; errors name the field and the rule.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use bgpintent_api::{
    Advertisements, Asn, Confederation, Family, FieldError, FieldErrors, GracefulRestart, NextHops,
    NodeIntent, PasswordRef, PathAttributes, PeerIntent, PeerKey, PolicyRef, PolicySettings, Requirement,
    RouterId, Selector, ServiceIpType, SessionState, Source, TtlMode, parse_ip,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

mod prefixes;

use prefixes::parse_prefix_groups_with;
pub use prefixes::{
    PrefixTable, Sources, as_path_prepend_spec, parse_as_path_prepend, parse_path_attributes,
    parse_prefix_groups, parse_prefix_groups_without_sources, path_attributes_spec, prefix_groups,
};

use crate::{
    common::{self, PolicyReference, SourceKind, SourceRef},
    node_intent::{self, BGPNodeIntentSpec, FamilyName, GracefulRestartSpec, PeerSpec, SessionStateName},
    policy::{self, BGPPeer, BGPPolicySpec},
};

/// The rule that peers of one list have distinct addresses (two sessions to one address
/// cannot both exist): the first entry of an address is kept, a later one is an error
/// naming both. Shared by the policy's `bgpPeers` and the Node's peers annotation.
#[derive(Debug, Default)]
pub struct UniqueAddresses(BTreeMap<IpAddr, usize>);

impl UniqueAddresses {
    /// Records entry `i` of `list` (its path) at `address`.
    pub fn check(&mut self, list: &str, i: usize, address: IpAddr) -> Result<(), FieldError> {
        match self.0.insert(address, i) {
            Some(first) => Err(FieldError::new(
                format!("{list}[{i}].address"),
                format!("must be unique: {list}[{first}] has the same address"),
            )
            .with_value(address)),
            None => Ok(()),
        }
    }
}

/// Reads an integer field that must fit `lo..=hi`.
fn ranged<T: TryFrom<i64>>(field: &str, value: i64, lo: i64, hi: i64) -> Result<T, FieldError> {
    if value < lo || value > hi {
        return Err(FieldError::new(field, format!("must be between {lo} and {hi}")).with_value(value));
    }
    T::try_from(value).map_err(|_| FieldError::new(field, format!("must be between {lo} and {hi}")))
}

fn ip_type(t: policy::ServiceIpType) -> ServiceIpType {
    match t {
        policy::ServiceIpType::ClusterIP => ServiceIpType::ClusterIP,
        policy::ServiceIpType::ExternalIP => ServiceIpType::ExternalIP,
        policy::ServiceIpType::LoadBalancerIP => ServiceIpType::LoadBalancerIP,
    }
}

fn ip_type_crd(t: ServiceIpType) -> policy::ServiceIpType {
    match t {
        ServiceIpType::ClusterIP => policy::ServiceIpType::ClusterIP,
        ServiceIpType::ExternalIP => policy::ServiceIpType::ExternalIP,
        ServiceIpType::LoadBalancerIP => policy::ServiceIpType::LoadBalancerIP,
    }
}

/// Parses a `nodeSelector`, naming `field` in errors.
pub fn selector(field: &str, selector: &LabelSelector) -> Result<Selector, FieldErrors> {
    let mut errors = FieldErrors::default();
    let expressions = selector
        .match_expressions
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, e)| {
            let path = format!("{field}.matchExpressions[{i}]");
            errors.collect(Requirement::parse(
                &path,
                &e.key,
                &e.operator,
                e.values.as_deref().unwrap_or(&[]),
            ))
        })
        .collect();
    let match_labels = selector.match_labels.clone().unwrap_or_default();
    errors.finish(|| Selector {
        match_labels,
        expressions,
    })
}

fn confederation(field: &str, c: &common::Confederation) -> Result<Confederation, FieldErrors> {
    let mut errors = FieldErrors::default();
    let identifier = errors.collect(Asn::from_field(&format!("{field}.identifier"), c.identifier));
    let member_asns = c
        .member_asns
        .iter()
        .enumerate()
        .filter_map(|(i, a)| errors.collect(Asn::from_field(&format!("{field}.memberASNs[{i}]"), *a)))
        .collect();
    errors.finish(|| Confederation {
        identifier: identifier.expect("checked"),
        member_asns,
    })
}

impl BGPPolicySpec {
    /// Parses everything but the node selector into [`PolicySettings`]; every error is
    /// reported, not only the first.
    pub fn settings(&self) -> Result<PolicySettings, FieldErrors> {
        let mut errors = FieldErrors::default();
        let local_asn = errors.collect(Asn::from_field("spec.localASN", self.local_asn));
        let listen_port = errors.collect(ranged::<u16>(
            "spec.listenPort",
            i64::from(self.listen_port.unwrap_or(179)),
            1,
            65535,
        ));
        let confederation = match &self.confederation {
            Some(c) => match confederation("spec.confederation", c) {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.0.extend(e.0);
                    None
                }
            },
            None => None,
        };
        let path_attributes = match &self.path_attributes {
            Some(a) => match parse_path_attributes("spec.pathAttributes", a) {
                Ok(a) => a,
                Err(e) => {
                    errors.0.extend(e.0);
                    PathAttributes::default()
                }
            },
            None => PathAttributes::default(),
        };
        let advertisements = Advertisements {
            service_ip_types: self
                .advertisements
                .service
                .iter()
                .flat_map(|s| s.ip_types.iter().copied().map(ip_type))
                .collect(),
            pod: self.advertisements.pod.is_some(),
            egress: self.advertisements.egress.is_some(),
        };
        let mut peers = BTreeMap::new();
        let mut seen = UniqueAddresses::default();
        let mut ignored = Vec::new();
        if self.confederation.is_some() {
            ignored.push(FieldError::new(
                "spec.confederation",
                "confederations are not implemented by the speaker yet; sessions use localASN as a plain AS",
            ));
        }
        for (i, peer) in self.bgp_peers.iter().enumerate() {
            let path = format!("spec.bgpPeers[{i}]");
            match peer.parse(&path) {
                Ok((key, intent)) => match seen.check("spec.bgpPeers", i, key.address) {
                    Ok(()) => {
                        peers.insert(key, intent);
                    }
                    Err(e) => errors.push(e),
                },
                Err(e) => errors.0.extend(e.0),
            }
            if peer.bfd.as_ref().is_some_and(|b| b.enabled) {
                ignored.push(FieldError::new(
                    format!("{path}.bfd.enabled"),
                    "BFD is not supported; ignored",
                ));
            }
        }
        errors.finish(|| PolicySettings {
            local_asn: local_asn.expect("checked"),
            listen_port: listen_port.expect("checked"),
            confederation,
            advertisements,
            peers,
            path_attributes,
            ignored,
        })
    }
}

impl BGPPeer {
    /// Parses one peer with every default applied; `path` is where it sits in the object.
    pub fn parse(&self, path: &str) -> Result<(PeerKey, PeerIntent), FieldErrors> {
        let mut errors = FieldErrors::default();
        let f = |name: &str| format!("{path}.{name}");
        let address = errors.collect(parse_ip(&f("address"), &self.address));
        let asn = errors.collect(Asn::from_field(&f("asn"), self.asn));
        let port = errors.collect(ranged::<u16>(
            &f("port"),
            i64::from(self.port.unwrap_or(179)),
            1,
            65535,
        ));
        let ttl = errors.collect(ranged::<u8>(
            &f("multihopTTL"),
            self.multihop_ttl
                .map_or(i64::from(PeerIntent::DEFAULT_MULTIHOP_TTL), i64::from),
            1,
            255,
        ));
        let restart = errors.collect(ranged::<u16>(
            &f("gracefulRestartTimeSeconds"),
            self.graceful_restart_time_seconds
                .map_or(i64::from(PeerIntent::DEFAULT_RESTART_TIME), i64::from),
            1,
            3600,
        ));
        let deferral = errors.collect(ranged::<u16>(
            &f("gracefulRestartDeferralSeconds"),
            self.graceful_restart_deferral_seconds
                .map_or(i64::from(PeerIntent::DEFAULT_DEFERRAL_TIME), i64::from),
            1,
            3600,
        ));
        let hold = self
            .hold_time_seconds
            .map_or(i64::from(PeerIntent::DEFAULT_HOLD_TIME), i64::from);
        let hold: Option<u16> = if hold == 1 || hold == 2 {
            errors.push(
                FieldError::new(
                    f("holdTimeSeconds"),
                    "must be 0 (no keepalives) or between 3 and 65535",
                )
                .with_value(hold),
            );
            None
        } else {
            errors.collect(ranged(&f("holdTimeSeconds"), hold, 0, 65535))
        };
        let keepalive = match (self.keepalive_time_seconds, hold) {
            (_, None) => None,
            (None, Some(hold)) => Some(PeerIntent::default_keepalive(hold)),
            (Some(k), Some(0)) => errors.collect(ranged(&f("keepaliveTimeSeconds"), i64::from(k), 1, 65535)),
            (Some(k), Some(hold)) => errors.collect(
                ranged(&f("keepaliveTimeSeconds"), i64::from(k), 1, i64::from(hold) - 1).map_err(|e| {
                    FieldError {
                        rule: format!("must be less than holdTimeSeconds ({hold})"),
                        ..e
                    }
                }),
            ),
        };
        let connect_retry = errors.collect(ranged::<u16>(
            &f("connectRetrySeconds"),
            self.connect_retry_seconds
                .map_or(i64::from(PeerIntent::DEFAULT_CONNECT_RETRY), i64::from),
            1,
            65535,
        ));
        errors.finish(|| {
            let ttl = ttl.expect("checked");
            let intent = PeerIntent {
                port: port.expect("checked"),
                local_address: None,
                ttl: if self.ttl_security == Some(true) {
                    TtlMode::Gtsm { hops: ttl }
                } else {
                    TtlMode::Multihop { ttl }
                },
                passive: self.passive.unwrap_or(false),
                hold_time_secs: hold.expect("checked"),
                keepalive_time_secs: keepalive.expect("checked"),
                connect_retry_secs: connect_retry.expect("checked"),
                graceful_restart: GracefulRestart {
                    enabled: self.graceful_restart.unwrap_or(true),
                    restart_time_secs: restart.expect("checked"),
                    deferral_time_secs: deferral.expect("checked"),
                    ..GracefulRestart::default()
                },
                families: Family::ALL.to_vec(),
                password: None,
            };
            (
                PeerKey {
                    address: address.expect("checked"),
                    asn: asn.expect("checked"),
                },
                intent,
            )
        })
    }
}

pub fn source_ref(source: &Source) -> SourceRef {
    let (kind, namespace, name, ip_type) = match source {
        Source::Service {
            namespace,
            name,
            ip_type,
        } => (
            SourceKind::Service,
            Some(namespace.clone()),
            Some(name.clone()),
            Some(ip_type_crd(*ip_type)),
        ),
        Source::PodCidr => (SourceKind::PodCidr, None, None, None),
        Source::Egress { name } => (SourceKind::Egress, None, Some(name.clone()), None),
        Source::Pod { namespace, name } => {
            (SourceKind::Pod, Some(namespace.clone()), Some(name.clone()), None)
        }
    };
    SourceRef {
        kind,
        namespace,
        name,
        ip_type,
    }
}

pub fn parse_source(field: &str, source: &SourceRef) -> Result<Source, FieldError> {
    let need = |v: &Option<String>, what: &str| {
        v.clone().ok_or_else(|| {
            FieldError::new(
                format!("{field}.{what}"),
                format!("is required for kind {:?}", source.kind),
            )
        })
    };
    Ok(match source.kind {
        SourceKind::Service => {
            Source::Service {
                namespace: need(&source.namespace, "namespace")?,
                name: need(&source.name, "name")?,
                ip_type: ip_type(source.ip_type.ok_or_else(|| {
                    FieldError::new(format!("{field}.ipType"), "is required for kind Service")
                })?),
            }
        }
        SourceKind::PodCidr => Source::PodCidr,
        SourceKind::Egress => Source::Egress {
            name: need(&source.name, "name")?,
        },
        SourceKind::Pod => Source::Pod {
            namespace: need(&source.namespace, "namespace")?,
            name: need(&source.name, "name")?,
        },
    })
}

fn family_name(f: Family) -> FamilyName {
    match f {
        Family::Ipv4 => FamilyName::IPv4,
        Family::Ipv6 => FamilyName::IPv6,
    }
}

fn confederation_spec(c: &Confederation) -> common::Confederation {
    common::Confederation {
        identifier: i64::from(c.identifier.get()),
        member_asns: c.member_asns.iter().map(|a| i64::from(a.get())).collect(),
    }
}

impl From<&NodeIntent> for BGPNodeIntentSpec {
    fn from(intent: &NodeIntent) -> Self {
        BGPNodeIntentSpec {
            policy: PolicyReference {
                name: intent.policy.name.clone(),
                uid: intent.policy.uid.clone(),
                generation: intent.policy.generation,
            },
            router_id: intent.router_id.to_string(),
            local_asn: i64::from(intent.local_asn.get()),
            listen_port: i32::from(intent.listen_port),
            confederation: intent.confederation.as_ref().map(confederation_spec),
            next_hops: node_intent::NextHops {
                ipv4: intent.next_hops.ipv4.map(|a| a.to_string()),
                ipv6: intent.next_hops.ipv6.map(|a| a.to_string()),
            },
            peers: intent
                .peers
                .iter()
                .map(|(key, peer)| peer_spec(key, peer))
                .collect(),
            prefixes: prefix_groups(&intent.prefixes, &intent.attributes),
            sets: intent.sets.iter().cloned().collect(),
            as_path_prepend: intent.as_path_prepend.as_ref().map(as_path_prepend_spec),
        }
    }
}

fn peer_spec(key: &PeerKey, peer: &PeerIntent) -> PeerSpec {
    let (ttl, gtsm) = match peer.ttl {
        TtlMode::Multihop { ttl } => (ttl, false),
        TtlMode::Gtsm { hops } => (hops, true),
    };
    PeerSpec {
        address: key.address.to_string(),
        asn: i64::from(key.asn.get()),
        port: i32::from(peer.port),
        local_address: peer.local_address.map(|a| a.to_string()),
        multihop_ttl: i32::from(ttl),
        ttl_security: gtsm,
        passive: peer.passive,
        hold_time_seconds: i32::from(peer.hold_time_secs),
        keepalive_time_seconds: i32::from(peer.keepalive_time_secs),
        connect_retry_seconds: i32::from(peer.connect_retry_secs),
        graceful_restart: GracefulRestartSpec {
            enabled: peer.graceful_restart.enabled,
            restart_time_seconds: i32::from(peer.graceful_restart.restart_time_secs),
            deferral_time_seconds: i32::from(peer.graceful_restart.deferral_time_secs),
            notification: peer.graceful_restart.notification,
        },
        families: peer.families.iter().copied().map(family_name).collect(),
        password: peer.password.as_ref().map(|p| node_intent::PasswordRef {
            secret_name: p.secret_name.clone(),
            key: p.key.clone(),
            revision: p.revision.clone(),
        }),
    }
}

/// Parses the spec of the intent named `node` (the Node's name).
pub fn parse_node_intent(node: &str, spec: &BGPNodeIntentSpec) -> Result<NodeIntent, FieldErrors> {
    parse_node_intent_with(node, spec, Sources::Keep)
}

/// [`parse_node_intent`] with the prefixes' sources dropped (each prefix maps to an empty
/// set, which allocates nothing): what the speaker runs. It never shows sources, and a
/// one-element `BTreeSet<Source>` costs about 600 bytes per prefix.
pub fn parse_node_intent_without_sources(
    node: &str,
    spec: &BGPNodeIntentSpec,
) -> Result<NodeIntent, FieldErrors> {
    parse_node_intent_with(node, spec, Sources::Drop)
}

fn parse_node_intent_with(
    node: &str,
    spec: &BGPNodeIntentSpec,
    sources: Sources,
) -> Result<NodeIntent, FieldErrors> {
    let mut errors = FieldErrors::default();
    let router_id = errors.collect(RouterId::from_field("spec.routerID", &spec.router_id));
    let local_asn = errors.collect(Asn::from_field("spec.localASN", spec.local_asn));
    let listen_port = errors.collect(ranged::<u16>(
        "spec.listenPort",
        i64::from(spec.listen_port),
        1,
        65535,
    ));
    let confederation =
        spec.confederation
            .as_ref()
            .and_then(|c| match confederation("spec.confederation", c) {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.0.extend(e.0);
                    None
                }
            });
    let mut next_hops = NextHops::default();
    if let Some(v4) = &spec.next_hops.ipv4 {
        next_hops.ipv4 = errors.collect(v4.parse().map_err(|_| {
            FieldError::new("spec.nextHops.ipv4", "must be an IPv4 address").with_value(format!("{v4:?}"))
        }));
    }
    if let Some(v6) = &spec.next_hops.ipv6 {
        next_hops.ipv6 = errors.collect(v6.parse().map_err(|_| {
            FieldError::new("spec.nextHops.ipv6", "must be an IPv6 address").with_value(format!("{v6:?}"))
        }));
    }
    let mut peers = BTreeMap::new();
    for (i, p) in spec.peers.iter().enumerate() {
        match parse_peer_spec(&format!("spec.peers[{i}]"), p) {
            Ok((key, peer)) => {
                if peers.insert(key, peer).is_some() {
                    errors
                        .push(FieldError::new(format!("spec.peers[{i}]"), "duplicate peer").with_value(key));
                }
            }
            Err(e) => errors.0.extend(e.0),
        }
    }
    let table = match parse_prefix_groups_with("spec.prefixes", &spec.prefixes, sources) {
        Ok(p) => p,
        Err(e) => {
            errors.0.extend(e.0);
            PrefixTable::default()
        }
    };
    let as_path_prepend =
        spec.as_path_prepend
            .as_ref()
            .and_then(|p| match parse_as_path_prepend("spec.asPathPrepend", p) {
                Ok(p) => Some(p),
                Err(e) => {
                    errors.0.extend(e.0);
                    None
                }
            });
    errors.finish(|| NodeIntent {
        node: node.to_owned(),
        policy: PolicyRef {
            name: spec.policy.name.clone(),
            uid: spec.policy.uid.clone(),
            generation: spec.policy.generation,
        },
        router_id: router_id.expect("checked"),
        local_asn: local_asn.expect("checked"),
        listen_port: listen_port.expect("checked"),
        confederation,
        next_hops,
        peers,
        prefixes: table.prefixes,
        sets: spec.sets.iter().cloned().collect(),
        attributes: table.attributes,
        as_path_prepend,
    })
}

fn parse_peer_spec(path: &str, p: &PeerSpec) -> Result<(PeerKey, PeerIntent), FieldErrors> {
    let mut errors = FieldErrors::default();
    let f = |name: &str| format!("{path}.{name}");
    let address = errors.collect(parse_ip(&f("address"), &p.address));
    let asn = errors.collect(Asn::from_field(&f("asn"), p.asn));
    let port = errors.collect(ranged::<u16>(&f("port"), i64::from(p.port), 1, 65535));
    let local_address = match &p.local_address {
        Some(a) => errors.collect(parse_ip(&f("localAddress"), a)),
        None => None,
    };
    let ttl = errors.collect(ranged::<u8>(&f("multihopTTL"), i64::from(p.multihop_ttl), 1, 255));
    let hold = if p.hold_time_seconds == 1 || p.hold_time_seconds == 2 {
        errors.push(
            FieldError::new(
                f("holdTimeSeconds"),
                "must be 0 (no keepalives) or between 3 and 65535",
            )
            .with_value(p.hold_time_seconds),
        );
        None
    } else {
        errors.collect(ranged::<u16>(
            &f("holdTimeSeconds"),
            i64::from(p.hold_time_seconds),
            0,
            65535,
        ))
    };
    let keepalive = errors.collect(ranged::<u16>(
        &f("keepaliveTimeSeconds"),
        i64::from(p.keepalive_time_seconds),
        0,
        65535,
    ));
    let retry = errors.collect(ranged::<u16>(
        &f("connectRetrySeconds"),
        i64::from(p.connect_retry_seconds),
        1,
        65535,
    ));
    let gr = &p.graceful_restart;
    let restart = errors.collect(ranged::<u16>(
        &f("gracefulRestart.restartTimeSeconds"),
        i64::from(gr.restart_time_seconds),
        1,
        3600,
    ));
    let deferral = errors.collect(ranged::<u16>(
        &f("gracefulRestart.deferralTimeSeconds"),
        i64::from(gr.deferral_time_seconds),
        1,
        3600,
    ));
    let families: Vec<Family> = p
        .families
        .iter()
        .map(|f| match f {
            FamilyName::IPv4 => Family::Ipv4,
            FamilyName::IPv6 => Family::Ipv6,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if families.is_empty() {
        errors.push(FieldError::new(
            f("families"),
            "must name at least one address family",
        ));
    }
    errors.finish(|| {
        let ttl = ttl.expect("checked");
        (
            PeerKey {
                address: address.expect("checked"),
                asn: asn.expect("checked"),
            },
            PeerIntent {
                port: port.expect("checked"),
                local_address,
                ttl: if p.ttl_security {
                    TtlMode::Gtsm { hops: ttl }
                } else {
                    TtlMode::Multihop { ttl }
                },
                passive: p.passive,
                hold_time_secs: hold.expect("checked"),
                keepalive_time_secs: keepalive.expect("checked"),
                connect_retry_secs: retry.expect("checked"),
                graceful_restart: GracefulRestart {
                    enabled: gr.enabled,
                    restart_time_secs: restart.expect("checked"),
                    deferral_time_secs: deferral.expect("checked"),
                    notification: gr.notification,
                },
                families,
                password: p.password.as_ref().map(|r| PasswordRef {
                    secret_name: r.secret_name.clone(),
                    key: r.key.clone(),
                    revision: r.revision.clone(),
                }),
            },
        )
    })
}

/// The API spelling of a session state.
pub fn session_state_name(state: SessionState) -> SessionStateName {
    match state {
        SessionState::Idle => SessionStateName::Idle,
        SessionState::Connect => SessionStateName::Connect,
        SessionState::Active => SessionStateName::Active,
        SessionState::OpenSent => SessionStateName::OpenSent,
        SessionState::OpenConfirm => SessionStateName::OpenConfirm,
        SessionState::Established => SessionStateName::Established,
    }
}

#[cfg(test)]
mod tests;
