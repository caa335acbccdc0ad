//! Readable builders for the objects the engine reads, for tests, benchmarks and examples.
//!
//! ```
//! use bgpintent_controller::fixtures::*;
//! let n = node("n1").label("bgp", "on").ipv4("10.0.0.1").pod_cidr("10.244.1.0/24").build();
//! let p = policy("default").select("bgp", "on").asn(64512).ip_types(&["ClusterIP"]).build();
//! # let _ = (n, p);
//! ```

use std::collections::BTreeMap;

use bgpintent_crd::{
    BGPPolicy, BGPPolicySpec,
    common::PathAttributesSpec,
    policy::{
        Advertisements, BGPPeer, EgressAdvertisement, PodAdvertisement, ServiceAdvertisement, ServiceIpType,
    },
};
use k8s_openapi::{
    ByteString,
    api::{
        core::v1::{
            LoadBalancerIngress, LoadBalancerStatus, Node, NodeAddress, NodeSpec, NodeStatus, Pod,
            PodCondition, PodIP, PodSpec, PodStatus, Secret, Service, ServiceSpec, ServiceStatus,
        },
        discovery::v1::{Endpoint, EndpointConditions, EndpointSlice},
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta, Time},
    jiff::Timestamp,
};

pub use crate::intent::Egress;

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        uid: Some(format!("uid-{name}")),
        ..ObjectMeta::default()
    }
}

/// A Node under construction.
#[derive(Debug, Clone)]
pub struct NodeBuilder(Node);

pub fn node(name: &str) -> NodeBuilder {
    NodeBuilder(Node {
        metadata: meta(name),
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus::default()),
    })
}

impl NodeBuilder {
    pub fn label(mut self, k: &str, v: &str) -> Self {
        set(&mut self.0.metadata.labels, k, v);
        self
    }
    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        set(&mut self.0.metadata.annotations, k, v);
        self
    }
    fn address(mut self, type_: &str, ip: &str) -> Self {
        let status = self.0.status.get_or_insert_default();
        status.addresses.get_or_insert_default().push(NodeAddress {
            type_: type_.into(),
            address: ip.into(),
        });
        self
    }
    /// Adds an InternalIP (IPv4 or IPv6).
    pub fn ipv4(self, ip: &str) -> Self {
        self.address("InternalIP", ip)
    }
    pub fn ipv6(self, ip: &str) -> Self {
        self.address("InternalIP", ip)
    }
    pub fn external_ip(self, ip: &str) -> Self {
        self.address("ExternalIP", ip)
    }
    pub fn pod_cidr(mut self, cidr: &str) -> Self {
        let spec = self.0.spec.get_or_insert_default();
        spec.pod_cidrs.get_or_insert_default().push(cidr.into());
        if spec.pod_cidr.is_none() {
            spec.pod_cidr = Some(cidr.into());
        }
        self
    }
    pub fn build(self) -> Node {
        self.0
    }
}

/// A BGPPolicy under construction.
#[derive(Debug, Clone)]
pub struct PolicyBuilder(BGPPolicy);

pub fn policy(name: &str) -> PolicyBuilder {
    let mut p = BGPPolicy::new(
        name,
        BGPPolicySpec {
            node_selector: LabelSelector::default(),
            local_asn: 64512,
            listen_port: None,
            confederation: None,
            advertisements: Advertisements::default(),
            bgp_peers: vec![],
            path_attributes: None,
        },
    );
    p.metadata = meta(name);
    p.metadata.generation = Some(1);
    PolicyBuilder(p)
}

impl PolicyBuilder {
    /// creationTimestamp, in seconds after 2026-01-01.
    pub fn created(mut self, secs: i64) -> Self {
        let t = Timestamp::from_second(1_767_225_600 + secs).expect("in range");
        self.0.metadata.creation_timestamp = Some(Time(t));
        self
    }
    pub fn select(mut self, k: &str, v: &str) -> Self {
        self.0
            .spec
            .node_selector
            .match_labels
            .get_or_insert_default()
            .insert(k.into(), v.into());
        self
    }
    pub fn expr(mut self, key: &str, operator: &str, values: &[&str]) -> Self {
        self.0
            .spec
            .node_selector
            .match_expressions
            .get_or_insert_default()
            .push(LabelSelectorRequirement {
                key: key.into(),
                operator: operator.into(),
                values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
            });
        self
    }
    pub fn asn(mut self, asn: i64) -> Self {
        self.0.spec.local_asn = asn;
        self
    }
    /// `advertisements.service.ipTypes` by name (ClusterIP, ExternalIP, LoadBalancerIP).
    pub fn ip_types(mut self, types: &[&str]) -> Self {
        let types = types
            .iter()
            .map(|t| match *t {
                "ClusterIP" => ServiceIpType::ClusterIP,
                "ExternalIP" => ServiceIpType::ExternalIP,
                "LoadBalancerIP" => ServiceIpType::LoadBalancerIP,
                other => panic!("unknown ipType {other}"),
            })
            .collect();
        self.0.spec.advertisements.service = Some(ServiceAdvertisement { ip_types: types });
        self
    }
    pub fn pod(mut self) -> Self {
        self.0.spec.advertisements.pod = Some(PodAdvertisement {});
        self
    }
    pub fn egress(mut self) -> Self {
        self.0.spec.advertisements.egress = Some(EgressAdvertisement {});
        self
    }
    pub fn peer(mut self, address: &str, asn: i64) -> Self {
        self.0.spec.bgp_peers.push(BGPPeer::new(address, asn));
        self
    }
    fn path_attributes(&mut self) -> &mut PathAttributesSpec {
        self.0.spec.path_attributes.get_or_insert_default()
    }
    /// `pathAttributes.communities`.
    pub fn communities(mut self, communities: &[&str]) -> Self {
        self.path_attributes().communities = communities.iter().map(|c| c.to_string()).collect();
        self
    }
    /// `pathAttributes.largeCommunities`.
    pub fn large_communities(mut self, communities: &[&str]) -> Self {
        self.path_attributes().large_communities = communities.iter().map(|c| c.to_string()).collect();
        self
    }
    /// `pathAttributes.localPref`.
    pub fn local_pref(mut self, value: i64) -> Self {
        self.path_attributes().local_pref = Some(value);
        self
    }
    /// `pathAttributes.med`.
    pub fn med(mut self, value: i64) -> Self {
        self.path_attributes().med = Some(value);
        self
    }
    pub fn build(self) -> BGPPolicy {
        self.0
    }
}

/// A Service under construction (type ClusterIP, no IPs).
#[derive(Debug, Clone)]
pub struct ServiceBuilder(Service);

pub fn service(namespace: &str, name: &str) -> ServiceBuilder {
    let mut metadata = meta(name);
    metadata.namespace = Some(namespace.into());
    ServiceBuilder(Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

impl ServiceBuilder {
    fn spec(&mut self) -> &mut ServiceSpec {
        self.0.spec.get_or_insert_default()
    }
    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        set(&mut self.0.metadata.annotations, k, v);
        self
    }
    /// `spec.clusterIPs` (and `spec.clusterIP` = the first).
    pub fn cluster_ips(mut self, ips: &[&str]) -> Self {
        let spec = self.spec();
        spec.cluster_ip = ips.first().map(|s| s.to_string());
        spec.cluster_ips = Some(ips.iter().map(|s| s.to_string()).collect());
        self
    }
    pub fn headless(self) -> Self {
        self.cluster_ips(&["None"])
    }
    pub fn type_(mut self, t: &str) -> Self {
        self.spec().type_ = Some(t.into());
        self
    }
    pub fn external_ips(mut self, ips: &[&str]) -> Self {
        self.spec().external_ips = Some(ips.iter().map(|s| s.to_string()).collect());
        self
    }
    pub fn lb_ips(mut self, ips: &[&str]) -> Self {
        self.spec().type_ = Some("LoadBalancer".into());
        self.0.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(
                    ips.iter()
                        .map(|ip| LoadBalancerIngress {
                            ip: Some(ip.to_string()),
                            ..LoadBalancerIngress::default()
                        })
                        .collect(),
                ),
            }),
            ..ServiceStatus::default()
        });
        self
    }
    pub fn itp_local(mut self) -> Self {
        self.spec().internal_traffic_policy = Some("Local".into());
        self
    }
    pub fn etp_local(mut self) -> Self {
        self.spec().external_traffic_policy = Some("Local".into());
        self
    }
    pub fn build(self) -> Service {
        self.0
    }
}

/// An EndpointSlice of a Service under construction.
#[derive(Debug, Clone)]
pub struct SliceBuilder(EndpointSlice);

/// A slice of `service` in `namespace`; `family` is "IPv4" or "IPv6".
pub fn slice(namespace: &str, service: &str, name: &str, family: &str) -> SliceBuilder {
    let mut metadata = meta(name);
    metadata.namespace = Some(namespace.into());
    metadata.labels = Some(BTreeMap::from([(
        crate::intent::SERVICE_NAME_LABEL.to_owned(),
        service.to_owned(),
    )]));
    SliceBuilder(EndpointSlice {
        address_type: family.into(),
        endpoints: vec![],
        metadata,
        ports: None,
    })
}

/// Endpoint conditions: `None` leaves a condition unset (API defaults apply).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cond {
    pub ready: Option<bool>,
    pub serving: Option<bool>,
    pub terminating: Option<bool>,
}

pub const READY: Cond = Cond {
    ready: Some(true),
    serving: Some(true),
    terminating: Some(false),
};
pub const NOT_READY: Cond = Cond {
    ready: Some(false),
    serving: Some(false),
    terminating: Some(false),
};
pub const TERMINATING_SERVING: Cond = Cond {
    ready: Some(false),
    serving: Some(true),
    terminating: Some(true),
};
pub const TERMINATING_NOT_SERVING: Cond = Cond {
    ready: Some(false),
    serving: Some(false),
    terminating: Some(true),
};
pub const UNSET: Cond = Cond {
    ready: None,
    serving: None,
    terminating: None,
};

impl SliceBuilder {
    pub fn endpoint(mut self, address: &str, node: Option<&str>, c: Cond) -> Self {
        self.0.endpoints.push(Endpoint {
            addresses: vec![address.into()],
            conditions: Some(EndpointConditions {
                ready: c.ready,
                serving: c.serving,
                terminating: c.terminating,
            }),
            node_name: node.map(Into::into),
            ..Endpoint::default()
        });
        self
    }
    pub fn build(self) -> EndpointSlice {
        self.0
    }
}

/// A Pod under construction: labelled `bgpintent.io/advertise=<scope>`, Running, Ready, on
/// no Node and without IPs until [`PodBuilder::on`] and [`PodBuilder::ips`] say otherwise.
#[derive(Debug, Clone)]
pub struct PodBuilder(Pod);

/// A healthy labelled Pod; `scope` is the label value (`cluster`, `local`, or anything else
/// to test how other values are treated).
pub fn pod(namespace: &str, name: &str, scope: &str) -> PodBuilder {
    let mut metadata = meta(name);
    metadata.namespace = Some(namespace.into());
    metadata.labels = Some(BTreeMap::from([(
        crate::intent::ADVERTISE_LABEL.to_owned(),
        scope.to_owned(),
    )]));
    PodBuilder(Pod {
        metadata,
        spec: Some(PodSpec::default()),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        }),
    })
}

impl PodBuilder {
    /// `spec.nodeName`.
    pub fn on(mut self, node: &str) -> Self {
        self.0.spec.get_or_insert_default().node_name = Some(node.into());
        self
    }
    /// `status.podIPs` (and `status.podIP` = the first), as the kubelet writes them.
    pub fn ips(mut self, ips: &[&str]) -> Self {
        let status = self.0.status.get_or_insert_default();
        status.pod_ip = ips.first().map(|s| s.to_string());
        status.pod_ips = Some(ips.iter().map(|ip| PodIP { ip: ip.to_string() }).collect());
        self
    }
    pub fn phase(mut self, phase: &str) -> Self {
        self.0.status.get_or_insert_default().phase = Some(phase.into());
        self
    }
    /// The `Ready` condition's status (`"True"`, `"False"`, `"Unknown"`).
    pub fn ready(mut self, status: &str) -> Self {
        let conditions = self
            .0
            .status
            .get_or_insert_default()
            .conditions
            .get_or_insert_default();
        conditions.retain(|c| c.type_ != "Ready");
        conditions.push(PodCondition {
            type_: "Ready".into(),
            status: status.into(),
            ..PodCondition::default()
        });
        self
    }
    pub fn host_network(mut self) -> Self {
        self.0.spec.get_or_insert_default().host_network = Some(true);
        self
    }
    /// Sets `metadata.deletionTimestamp`, as a graceful delete does.
    pub fn terminating(mut self) -> Self {
        let t = Timestamp::from_second(1_767_225_600).expect("in range");
        self.0.metadata.deletion_timestamp = Some(Time(t));
        self
    }
    pub fn build(self) -> Pod {
        self.0
    }
}

/// A passwords Secret with `data` entries.
pub fn secret(name: &str, uid: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("bgp-intent".into()),
            uid: Some(uid.into()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

// ===== Synthetic clusters for benchmarks =====

/// Deterministic pseudo-random numbers (no dependency, same cluster every run).
#[derive(Debug)]
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n
    }
}

pub fn ip4(i: usize, base: u8) -> String {
    format!("{base}.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// One Service and its slice: every 10th has internalTrafficPolicy Local, every 20th is
/// a LoadBalancer with externalTrafficPolicy Local, a third are dual-stack.
pub fn make_service(
    i: usize,
    nodes: usize,
    per_service: usize,
    rng: &mut Lcg,
) -> (
    k8s_openapi::api::core::v1::Service,
    k8s_openapi::api::discovery::v1::EndpointSlice,
) {
    let ns = format!("ns-{}", i % 100);
    let name = format!("svc-{i}");
    let v4 = ip4(i, 10);
    let v6 = format!("fd00:96::{i:x}");
    let mut b = service(&ns, &name);
    b = if i.is_multiple_of(3) {
        b.cluster_ips(&[&v4, &v6])
    } else {
        b.cluster_ips(&[&v4])
    };
    if i.is_multiple_of(10) {
        b = b.itp_local();
    }
    if i % 20 == 5 {
        b = b.lb_ips(&[&ip4(i, 100)]).etp_local();
    }
    let mut s = slice(&ns, &name, &format!("{name}-abcde"), "IPv4");
    for e in 0..per_service {
        let node = format!("node-{}", rng.next(nodes));
        s = s.endpoint(&ip4(i * per_service + e, 11), Some(&node), READY);
    }
    (b.build(), s.build())
}

/// Labelled Pod `pod-i` on `node`: every other one `cluster`, the rest `local`; a third
/// dual-stack. IPs from 100.64.0.0/10 and fd00:64::/64, outside the synthetic podCIDRs.
pub fn make_pod(i: usize, node: &str) -> Pod {
    let scope = if i.is_multiple_of(2) { "cluster" } else { "local" };
    let v4 = format!("100.{}.{}.{}", 64 + ((i >> 16) & 63), (i >> 8) & 255, i & 255);
    let v6 = format!("fd00:64::{i:x}");
    let ips: Vec<&str> = if i.is_multiple_of(3) {
        vec![&v4, &v6]
    } else {
        vec![&v4]
    };
    pod(&format!("ns-{}", i % 100), &format!("pod-{i}"), scope)
        .on(node)
        .ips(&ips)
        .build()
}

/// A synthetic cluster for benchmarks: `nodes` dual-stack Nodes labelled `bgp=on`, two
/// policies (one announcing every Service IP type, Pod CIDRs and Egress IPs to two peers;
/// one selecting a rack and conflicting), `services` Services with `endpoints` endpoints in
/// all (see [`make_service`]), 100 Egresses, and one labelled Pod per 10 Nodes (see
/// [`make_pod`]). Deterministic: same input, same cluster.
pub fn synthetic_cluster(nodes: usize, services: usize, endpoints: usize) -> crate::intent::Snapshot {
    use crate::intent::Snapshot;
    let per_service = (endpoints / services.max(1)).max(1);
    let mut rng = Lcg(42);
    let mut snap = Snapshot {
        policies: vec![
            policy("default")
                .created(0)
                .select("bgp", "on")
                .ip_types(&["ClusterIP", "ExternalIP", "LoadBalancerIP"])
                .pod()
                .egress()
                .peer("192.0.2.1", 65000)
                .peer("2001:db8::1", 65000)
                .build(),
            policy("rack-1").created(10).select("rack", "r1").build(),
        ],
        passwords: Some(secret("bgp-passwords", "uid", &[("192.0.2.1-65000", "x")])),
        ..Snapshot::default()
    };
    for n in 0..nodes {
        snap.nodes.push(
            node(&format!("node-{n}"))
                .label("bgp", "on")
                .label("rack", &format!("r{}", n % 50))
                .ipv4(&ip4(n, 172))
                .ipv6(&format!("fd00::{n:x}"))
                .pod_cidr(&format!("10.{}.{}.0/24", 128 + n / 256, n % 256))
                .build(),
        );
    }
    for i in 0..services {
        let (svc, sl) = make_service(i, nodes, per_service, &mut rng);
        snap.services.push(svc);
        snap.endpoint_slices.push(sl);
    }
    for i in 0..nodes / 10 {
        snap.pods.push(make_pod(i, &format!("node-{}", rng.next(nodes))));
    }
    for i in 0..100 {
        snap.egresses.push(Egress::assigned(
            &format!("eg-{i}"),
            &format!("node-{}", i * 7 % nodes),
            &ip4(i, 192),
        ));
    }
    snap
}

/// Sets `k: v` in a label or annotation map, creating it when absent.
fn set(map: &mut Option<BTreeMap<String, String>>, k: &str, v: &str) {
    map.get_or_insert_default().insert(k.into(), v.into());
}
