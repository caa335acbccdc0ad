//! The cluster objects the suite applies, as JSON (what `kubectl apply` would send).

use std::net::{Ipv4Addr, Ipv6Addr};

use k8s_openapi::ByteString;
use serde_json::{Value, json};

use super::{
    chart::NAMESPACE,
    cluster::{BIRD_AS, BIRD_PASSWORD, BIRD_V4, BIRD_V6, FRR_AS, FRR_V4, FRR_V6},
};

pub const CRD_API: &str = "bgpintent.io/v1alpha1";

/// A BGPPolicy peering with BIRD and FRR over IPv4 and IPv6 (1 s connect retry: lab routers
/// start quickly).
pub fn policy(name: &str, selector: Value, asn: u32, ip_types: &[&str], pods: bool) -> Value {
    let peer = |address: String, asn: u32| json!({"address": address, "asn": asn, "connectRetrySeconds": 1});
    let mut advertisements = json!({"service": {"ipTypes": ip_types}});
    if pods {
        advertisements["pod"] = json!({});
    }
    json!({
        "apiVersion": CRD_API,
        "kind": "BGPPolicy",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": selector,
            "localASN": asn,
            "advertisements": advertisements,
            "bgpPeers": [
                peer(BIRD_V4.to_string(), BIRD_AS),
                peer(BIRD_V6.to_string(), BIRD_AS),
                peer(FRR_V4.to_string(), FRR_AS),
                peer(FRR_V6.to_string(), FRR_AS),
            ],
        },
    })
}

/// A Node with its InternalIPs, PodCIDRs and labels.
pub fn node(name: &str, v4: Ipv4Addr, v6: Ipv6Addr, pod_cidrs: &[&str], labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"podCIDRs": pod_cidrs},
        "status": {"addresses": [
            {"type": "InternalIP", "address": v4.to_string()},
            {"type": "InternalIP", "address": v6.to_string()},
            {"type": "Hostname", "address": name},
        ]},
    })
}

/// A Service in namespace `shop`: `cluster_ips`, type, and externalTrafficPolicy.
pub fn service(name: &str, type_: &str, cluster_ips: &[&str], external_policy: Option<&str>) -> Value {
    let mut spec = json!({
        "type": type_,
        "clusterIP": cluster_ips[0],
        "clusterIPs": cluster_ips,
        "ports": [{"port": 80}],
    });
    if cluster_ips.len() > 1 {
        spec["ipFamilyPolicy"] = json!("PreferDualStack");
    }
    if let Some(p) = external_policy {
        spec["externalTrafficPolicy"] = json!(p);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    })
}

/// The `status` of a LoadBalancer Service with these ingress IPs (for the `/status` write).
pub fn lb_status(name: &str, ingress: &[&str]) -> Value {
    let ingress: Vec<Value> = ingress.iter().map(|ip| json!({"ip": ip})).collect();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "status": {"loadBalancer": {"ingress": ingress}},
    })
}

/// An EndpointSlice of Service `service` with one ready endpoint per `(address, node)`.
pub fn endpoint_slice(name: &str, service: &str, family: &str, endpoints: &[(&str, &str)]) -> Value {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(address, node)| json!({"addresses": [address], "nodeName": node, "conditions": {"ready": true}}))
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": family,
        "endpoints": endpoints,
        "ports": [{"port": 80}],
    })
}

/// The passwords Secret: the Nodes' IPv4 sessions with BIRD (`<peer>-<asn>`).
pub fn passwords() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bgp-passwords", "namespace": NAMESPACE},
        "type": "Opaque",
        // `data`, base64 (k8s-openapi's ByteString), as the apiserver stores `stringData`.
        "data": {format!("{BIRD_V4}-{BIRD_AS}"): ByteString(BIRD_PASSWORD.as_bytes().to_vec())},
    })
}

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}
