//! `explain`: why a prefix is, or is not, announced from a Node.
//!
//! Answers in the order an operator debugs: does the Node exist, which policy owns it (or
//! why none does), can it announce that family at all, and then every object that has this
//! IP and the rule that kept or dropped it. The answer is built from the same values as the
//! intents, so it cannot disagree with `render`.

use std::fmt;

use bgpintent_api::{Family, Prefix, Source};
use k8s_openapi::api::discovery::v1::Endpoint;

use super::{
    PodKey, Resolution, Scope, ServiceKey, Snapshot, attributes, nodes::NodeFacts, pod_route, pods::pod_ips,
    services::slices_by_service,
};

/// The verdict and the reasoning, one step per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub announced: bool,
    pub lines: Vec<String>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// Explains `prefix` on `node`, given the snapshot and its resolution.
pub fn explain(snapshot: &Snapshot, res: &Resolution, node: &str, prefix: Prefix) -> Explanation {
    let mut lines = Vec::new();
    let verdict = |announced: bool, mut lines: Vec<String>| {
        let head = if announced {
            format!("{prefix} IS announced from Node {node}.")
        } else {
            format!("{prefix} is NOT announced from Node {node}.")
        };
        lines.insert(0, head);
        Explanation { announced, lines }
    };
    let Some(facts) = snapshot
        .nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(node))
        .map(|n| NodeFacts::read(n, &mut Vec::new()))
    else {
        lines.push(format!("There is no Node named {node:?} in the input."));
        return verdict(false, lines);
    };
    if let Some(invalid) = res
        .held
        .get(node)
        .and_then(|p| res.policies.get(p))
        .and_then(|p| p.invalid_overrides.get(node).map(|i| (p, i)))
    {
        let (policy, invalid) = invalid;
        let errors: Vec<String> = invalid
            .errors
            .values()
            .flatten()
            .map(ToString::to_string)
            .collect();
        lines.push(format!(
            "Node {node} is owned by BGPPolicy {}, but its override annotations are invalid ({}); the \
             controller keeps the intent already written for this Node (if any) and computes nothing new \
             until they are fixed.",
            policy.name,
            errors.join("; ")
        ));
        return verdict(false, lines);
    }
    if let Some(policy) = res.held.get(node) {
        let errors = res
            .policies
            .get(policy)
            .map(|p| p.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>());
        lines.push(format!(
            "Node {node} is owned by BGPPolicy {policy}, which is invalid ({}); the controller keeps the \
             intent already written for this Node and computes nothing new.",
            errors.unwrap_or_default().join("; ")
        ));
        return verdict(false, lines);
    }
    let Some(nr) = res.nodes.get(node) else {
        lines.push(format!(
            "No BGPPolicy selects Node {node}: no nodeSelector matches its labels {:?}, so it has no intent.",
            facts.labels
        ));
        for pod in pods_with(snapshot, prefix) {
            if let Ok(route) = pod_route(pod, &mut Vec::new())
                && route.scope == Scope::Local
                && route.node == node
            {
                lines.push(format!(
                    "{prefix} is the IP of Pod {} (advertise=local) on this Node: a local Pod is announced \
                     only by its own Node, so it is announced nowhere.",
                    PodKey::of(pod)
                ));
            }
        }
        return verdict(false, lines);
    };
    let policy_name = &nr.intent.policy.name;
    let policy = &res.policies[policy_name];
    lines.push(format!(
        "Node {node} is owned by BGPPolicy {policy_name} (the oldest policy whose nodeSelector matches it)."
    ));
    let others: Vec<&str> = res
        .policies
        .values()
        .filter(|p| p.conflicts.contains_key(node))
        .map(|p| p.name.as_str())
        .collect();
    if !others.is_empty() {
        lines.push(format!(
            "Also selected by newer policies, ignored for this Node: {}.",
            others.join(", ")
        ));
    }
    for o in &nr.report.overrides {
        lines.push(format!("Node override: {o}."));
    }
    let family = prefix.family();
    let has_family = nr.intent.next_hops.for_family(family).is_some();
    if !has_family {
        lines.push(format!(
            "Node {node} has no {family} InternalIP, so it has no {family} next hop and announces no {family} prefix."
        ));
    }
    let intent = res.logical_intent(node).expect("node has an intent");
    if let Some(sources) = intent.prefixes.get(&prefix) {
        for source in sources {
            lines.push(format!("Source: {source}{}", scope_note(res, source)));
        }
        // The Node's AS-path prepend, if any, is one of the "Node override" lines above: it
        // applies to every announcement of the Node, so it is not repeated per prefix.
        let attrs = intent.attributes.get(&prefix).cloned().unwrap_or_default();
        lines.push(format!("Sent with {}.", attributes::describe(&attrs)));
        for from in attributes::attribute_sources(res, policy_name, prefix) {
            lines.push(format!("  from {from}"));
        }
        return verdict(true, lines);
    }

    // Not announced: look for every object that has this IP and say which rule dropped it.
    let mut found = false;
    if facts.pod_cidrs.contains(&prefix) {
        found = true;
        lines.push(format!(
            "{prefix} is a PodCIDR of Node {node}, but {policy_name} does not set advertisements.pod."
        ));
    }
    for egress in &snapshot.egresses {
        let Some(status) = &egress.status else { continue };
        let ip = status
            .egress_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Prefix>().ok());
        if ip != Some(prefix) {
            continue;
        }
        found = true;
        let holder = status.egress_node.as_deref().unwrap_or("");
        if holder != node {
            lines.push(format!(
                "{prefix} is the IP of Egress {}, assigned to Node {holder:?}, not {node}.",
                egress.name()
            ));
        } else {
            lines.push(format!(
                "{prefix} is the IP of Egress {} on this Node, but {policy_name} does not set advertisements.egress.",
                egress.name()
            ));
        }
    }
    let slices = slices_by_service(&snapshot.endpoint_slices);
    for (key, routes) in &res.services {
        for route in routes.routes.iter().filter(|r| r.prefix == prefix) {
            found = true;
            let what = format!("{prefix} is the {} of Service {key}", route.ip_type);
            if !policy.service_ip_types.contains(&route.ip_type) {
                lines.push(format!(
                    "{what}, but {policy_name} does not list {} in advertisements.service.ipTypes.",
                    route.ip_type
                ));
            } else if route.scope == Scope::Local && !routes.is_local_on(family, node) {
                let field = if route.ip_type == bgpintent_api::ServiceIpType::ClusterIP {
                    "internalTrafficPolicy"
                } else {
                    "externalTrafficPolicy"
                };
                lines.push(format!(
                    "{what} with {field}: Local, and Node {node} has no usable {family} endpoint of it: {}.",
                    endpoint_detail(
                        slices.get(key).map(Vec::as_slice).unwrap_or_default(),
                        family,
                        node
                    )
                ));
            } else if !has_family {
                lines.push(format!(
                    "{what}; not announced for lack of a {family} next hop (above)."
                ));
            }
        }
    }
    for pod in pods_with(snapshot, prefix) {
        found = true;
        let key = PodKey::of(pod);
        let route = match pod_route(pod, &mut Vec::new()) {
            Ok(route) => route,
            Err(skip) => {
                lines.push(format!(
                    "{prefix} is the IP of Pod {key}, which is not announced: {skip}."
                ));
                continue;
            }
        };
        let what = match route.scope {
            Scope::Cluster => format!("{prefix} is the IP of Pod {key} (advertise=cluster)"),
            Scope::Local => format!(
                "{prefix} is the IP of Pod {key} (advertise=local, on Node {})",
                route.node
            ),
        };
        if !policy.pods {
            lines.push(format!(
                "{what}, but {policy_name} does not set advertisements.pod."
            ));
        } else if route.scope == Scope::Local && route.node != node {
            let there = match res.nodes.get(&route.node) {
                None => format!(
                    "no valid policy owns Node {}, so the Pod is announced nowhere",
                    route.node
                ),
                Some(nr) if !res.policies[&nr.intent.policy.name].pods => format!(
                    "its owner {} does not set advertisements.pod, so the Pod is announced nowhere",
                    nr.intent.policy.name
                ),
                Some(_) => format!("only Node {} announces it", route.node),
            };
            lines.push(format!(
                "{what}: a local Pod is announced only by its own Node; {there}."
            ));
        } else if !has_family {
            lines.push(format!(
                "{what}; not announced for lack of a {family} next hop (above)."
            ));
        }
    }
    if !found {
        lines.push(format!(
            "No source: no Service IP of the advertised types, PodCIDR, Egress IP or Pod IP is {prefix}."
        ));
    }
    verdict(false, lines)
}

/// Pods (labelled or not) that have `prefix` as one of their IPs.
fn pods_with(snapshot: &Snapshot, prefix: Prefix) -> impl Iterator<Item = &k8s_openapi::api::core::v1::Pod> {
    snapshot.pods.iter().filter(move |pod| {
        prefix.is_host()
            && pod_ips(pod)
                .iter()
                .any(|(_, ip)| ip.parse::<std::net::IpAddr>().ok() == Some(prefix.addr()))
    })
}

fn scope_note(res: &Resolution, source: &Source) -> String {
    if let Source::Pod { namespace, name } = source {
        return match res.pods.get(&PodKey::new(namespace, name)).map(|r| r.scope) {
            Some(Scope::Local) => " — advertise=local: the Pod runs on this Node".to_owned(),
            Some(Scope::Cluster) => " — advertise=cluster: announced by every Node of the policy".to_owned(),
            None => String::new(),
        };
    }
    let Source::Service {
        namespace,
        name,
        ip_type,
    } = source
    else {
        return String::new();
    };
    let Some(routes) = res.services.get(&ServiceKey::new(namespace, name)) else {
        return String::new();
    };
    let local = routes
        .routes
        .iter()
        .any(|r| r.ip_type == *ip_type && r.scope == Scope::Local);
    if local {
        " — traffic policy Local, and this Node has a usable local endpoint".to_owned()
    } else {
        " — traffic policy Cluster: announced by every Node of the policy".to_owned()
    }
}

fn endpoint_detail(
    slices: &[&k8s_openapi::api::discovery::v1::EndpointSlice],
    family: Family,
    node: &str,
) -> String {
    let fam = family.as_str();
    let all: Vec<&Endpoint> = slices
        .iter()
        .filter(|s| s.address_type == fam)
        .flat_map(|s| s.endpoints.iter())
        .collect();
    let ready = |e: &Endpoint| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
    let any_ready = all.iter().any(|e| ready(e));
    let here: Vec<String> = all
        .iter()
        .filter(|e| e.node_name.as_deref() == Some(node))
        .map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            format!(
                "{} (ready={:?}, serving={:?}, terminating={:?})",
                e.addresses.join(","),
                c.ready,
                c.serving,
                c.terminating
            )
        })
        .collect();
    if here.is_empty() {
        return format!("no {fam} EndpointSlice endpoint has nodeName {node}");
    }
    format!(
        "its endpoints here are {}; the Service {} ready endpoints elsewhere, so {}",
        here.join(", "),
        if any_ready { "has" } else { "has no" },
        if any_ready {
            "only ready endpoints count"
        } else {
            "serving-and-terminating endpoints would count, and none is"
        }
    )
}
