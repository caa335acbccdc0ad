//! Writes: server-side applies, deletes, status and Events, each only while leading.

use std::{collections::BTreeSet, sync::Mutex};

use bgpintent_api::RouterId;
use bgpintent_crd::{BGPPolicy, BGPPolicyStatus};
use k8s_openapi::{
    api::core::v1::{Node, ObjectReference},
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
    runtime::{
        events::{Event, EventType, Recorder, Reporter},
        reflector::ObjectRef,
    },
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{PassReport, Stores};
use crate::{
    intent::{InvalidOverrides, ROUTER_ID_ANNOTATION, Resolution, ServiceKey},
    metrics::{KindLabel, Metrics},
    status::policy_status,
};

/// The one field manager of every controller write.
pub const FIELD_MANAGER: &str = "bgp-intent-controller";

/// Whether the cluster's object already is what we would apply: same spec, our labels and
/// owner references present. Status, resourceVersion and other managers' fields are
/// ignored.
pub fn same<K: Resource + Serialize>(current: Option<&K>, desired: &K) -> bool {
    let Some(current) = current else { return false };
    let spec = |o: &K| {
        serde_json::to_value(o)
            .ok()
            .map(|v| v.get("spec").cloned().unwrap_or(Value::Null))
    };
    let labels_ok = desired
        .meta()
        .labels
        .iter()
        .flatten()
        .all(|(k, v)| current.labels().get(k) == Some(v));
    labels_ok
        && spec(current) == spec(desired)
        && current.meta().owner_references == desired.meta().owner_references
}

/// Carries out writes for the reconciler.
pub struct Writer {
    client: Client,
    recorder: Recorder,
    leader: watch::Receiver<bool>,
    /// Events already published and still true: (object uid, reason, message).
    emitted: Mutex<BTreeSet<(String, String, String)>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    pub fn new(client: Client, reporter: Reporter, leader: watch::Receiver<bool>) -> Self {
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            client,
            recorder,
            leader,
            emitted: Mutex::new(BTreeSet::new()),
        }
    }

    fn leading(&self) -> bool {
        *self.leader.borrow()
    }

    pub async fn apply<K>(&self, desired: &K, kind: &'static str, metrics: &Metrics, report: &mut PassReport)
    where
        K: Resource<Scope = kube::core::ClusterResourceScope>
            + Clone
            + Serialize
            + DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        if !self.leading() {
            return;
        }
        let name = desired.name_any();
        let api: Api<K> = Api::all(self.client.clone());
        match api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(desired),
            )
            .await
        {
            Ok(_) => {
                report.applied += 1;
                metrics.objects_written.get_or_create(&KindLabel { kind }).inc();
                tracing::debug!(%kind, %name, "applied");
            }
            Err(e) => report.failures.push(format!("apply: {kind} {name}: {e}")),
        }
    }

    pub async fn delete<K>(&self, name: &str, kind: &'static str, metrics: &Metrics, report: &mut PassReport)
    where
        K: Resource<Scope = kube::core::ClusterResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
        K::DynamicType: Default,
    {
        if !self.leading() {
            return;
        }
        let api: Api<K> = Api::all(self.client.clone());
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                report.deleted += 1;
                metrics.objects_deleted.get_or_create(&KindLabel { kind }).inc();
                tracing::info!(%kind, %name, "deleted");
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => report.failures.push(format!("delete: {kind} {name}: {e}")),
        }
    }

    /// Adds the router-ID annotation; the engine asks only for Nodes without one, and a
    /// stored value is never changed.
    pub async fn annotate_node(&self, node: &str, router_id: RouterId, report: &mut PassReport) {
        if !self.leading() {
            return;
        }
        let api: Api<Node> = Api::all(self.client.clone());
        let body = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node, "annotations": {ROUTER_ID_ANNOTATION: router_id.to_string()}}});
        match api
            .patch(
                node,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(_) => report.applied += 1,
            Err(e) => report.failures.push(format!("annotate: Node {node}: {e}")),
        }
    }

    /// Writes each policy's status when it differs from the stored one.
    pub async fn policy_statuses(&self, res: &Resolution, stores: &Stores, report: &mut PassReport) {
        if !self.leading() {
            return;
        }
        let now = Time(
            jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        );
        let intents = stores.intents.state();
        for policy in stores.policies.state() {
            let name = policy.name_any();
            let Some(policy_report) = res.policies.get(&name) else {
                continue;
            };
            // Sorted: cache order is arbitrary, and the status must not change with it.
            let mut owned: Vec<_> = intents
                .iter()
                .filter(|i| i.spec.policy.name == name && policy_report.effective.contains(&i.name_any()))
                .map(|i| &**i)
                .collect();
            owned.sort_by_key(|i| i.name_any());
            let status = policy_status(policy_report, &owned, policy.status.as_ref(), now.clone());
            if policy.status.as_ref() == Some(&status) {
                continue;
            }
            match self.write_policy_status(&name, &status).await {
                Ok(()) => report.statuses += 1,
                Err(e) => report.failures.push(format!("status: BGPPolicy {name}: {e}")),
            }
        }
    }

    /// Server-side apply of a policy's status subresource.
    pub async fn write_policy_status(&self, name: &str, status: &BGPPolicyStatus) -> Result<(), kube::Error> {
        let api: Api<BGPPolicy> = Api::all(self.client.clone());
        let body = json!({"apiVersion": BGPPolicy::api_version(&()), "kind": BGPPolicy::kind(&()),
                          "metadata": {"name": name}, "status": status});
        api.patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map(|_| ())
    }

    /// Publishes an Event for every policy problem, on the Service for every invalid
    /// `bgpintent.io/*` annotation, and on the Node for every invalid override annotation,
    /// that is new since the last pass (once per distinct problem while it lasts).
    pub async fn events(&self, res: &Resolution, stores: &Stores) {
        if !self.leading() {
            return;
        }
        let mut candidates: Vec<(ObjectReference, EventType, &'static str, String)> = Vec::new();
        for (name, p) in &res.policies {
            let reference = ObjectReference {
                api_version: Some(BGPPolicy::api_version(&()).into_owned()),
                kind: Some(BGPPolicy::kind(&()).into_owned()),
                name: Some(name.clone()),
                uid: Some(p.uid.clone()),
                ..Default::default()
            };
            for (type_, reason, note) in policy_events(p) {
                candidates.push((reference.clone(), type_, reason, note));
            }
            for (node, invalid) in &p.invalid_overrides {
                let reference = ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Node".into()),
                    name: Some(node.clone()),
                    uid: Some(invalid.uid.clone()),
                    ..Default::default()
                };
                for note in node_override_notes(node, invalid) {
                    candidates.push((reference.clone(), EventType::Warning, INVALID_ANNOTATION, note));
                }
            }
        }
        for (key, type_, reason, note) in service_events(res) {
            let uid = stores
                .services
                .get(&ObjectRef::new(&key.name).within(&key.namespace))
                .and_then(|s| s.metadata.uid.clone());
            let reference = ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Service".into()),
                namespace: Some(key.namespace.clone()),
                name: Some(key.name.clone()),
                uid,
                ..Default::default()
            };
            candidates.push((reference, type_, reason, note));
        }
        let mut active = BTreeSet::new();
        let mut to_publish = Vec::new();
        for (reference, type_, reason, note) in candidates {
            let id = reference
                .uid
                .clone()
                .unwrap_or_else(|| format!("{:?}/{:?}", reference.namespace, reference.name));
            let key = (id, reason.to_owned(), note.clone());
            if !self.emitted.lock().expect("lock").contains(&key) {
                to_publish.push((reference, type_, reason, note));
            }
            active.insert(key);
        }
        for (reference, type_, reason, note) in to_publish {
            let event = Event {
                type_,
                reason: reason.to_owned(),
                note: Some(note),
                action: "Reconcile".into(),
                secondary: None,
            };
            if let Err(error) = self.recorder.publish(&event, &reference).await {
                tracing::warn!(
                    kind = reference.kind.as_deref().unwrap_or_default(),
                    name = reference.name.as_deref().unwrap_or_default(),
                    %error,
                    "could not publish an Event"
                );
            }
        }
        *self.emitted.lock().expect("lock") = active;
    }
}

/// Reason of the Warning Event on a Service or Node whose `bgpintent.io/*` annotation is
/// invalid.
pub const INVALID_ANNOTATION: &str = "InvalidAnnotation";

/// Longest Event note we send (the API server refuses notes over 1 KiB).
const MAX_NOTE: usize = 1024;

/// Events Services call for: (Service, type, reason, note). Only invalid `bgpintent.io/*`
/// annotations so far; the note names each annotation and rule.
fn service_events(res: &Resolution) -> Vec<(&ServiceKey, EventType, &'static str, String)> {
    res.services
        .iter()
        .filter(|(_, r)| !r.invalid_annotations.is_empty())
        .map(|(key, r)| {
            let errors: Vec<String> = r.invalid_annotations.iter().map(ToString::to_string).collect();
            (
                key,
                EventType::Warning,
                INVALID_ANNOTATION,
                bounded(format!(
                    "{}; the Service's own path attributes are ignored, its IPs are announced with the policy's",
                    errors.join("; ")
                )),
            )
        })
        .collect()
}

/// One note per invalid annotation of a Node: the Node, the annotation, every rule broken,
/// and the consequence. Values are those the engine chose to show (never a secret).
pub(crate) fn node_override_notes(node: &str, invalid: &InvalidOverrides) -> Vec<String> {
    invalid
        .errors
        .iter()
        .map(|(annotation, errors)| {
            let rules: Vec<String> = errors.iter().map(ToString::to_string).collect();
            bounded(format!(
                "Node {node}: annotation {annotation} is invalid, so the Node keeps its last valid intent: {}",
                rules.join("; ")
            ))
        })
        .collect()
}

fn bounded(note: String) -> String {
    if note.len() <= MAX_NOTE {
        return note;
    }
    let suffix = "… (truncated)";
    let mut cut = MAX_NOTE - suffix.len();
    while !note.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &note[..cut])
}

/// Events a policy's report calls for: (type, reason, note). Notes never carry a password.
fn policy_events(p: &crate::intent::PolicyReport) -> Vec<(EventType, &'static str, String)> {
    let mut out = Vec::new();
    if !p.accepted {
        let errors: Vec<String> = p.errors.iter().map(ToString::to_string).collect();
        out.push((EventType::Warning, "InvalidSpec", errors.join("; ")));
    }
    for (node, owner) in &p.conflicts {
        out.push((
            EventType::Warning,
            "Conflicted",
            format!("Node {node} is owned by older BGPPolicy {owner}"),
        ));
    }
    for c in &p.router_id_collisions {
        let nodes: Vec<&str> = c.nodes.iter().map(String::as_str).collect();
        out.push((
            EventType::Warning,
            "RouterIDCollision",
            format!(
                "Nodes {} share router ID {} in AS {}",
                nodes.join(", "),
                c.router_id,
                c.asn
            ),
        ));
    }
    for peer in &p.unauthenticated_peers {
        out.push((
            EventType::Normal,
            "PasswordKeyMissing",
            format!(
                "no key {} in the passwords Secret: the session to {peer} is unauthenticated",
                peer.password_key()
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use bgpintent_api::FieldError;

    use super::*;

    fn invalid(errors: &[(&str, Vec<FieldError>)]) -> InvalidOverrides {
        InvalidOverrides {
            uid: "uid-n1".into(),
            families: Default::default(),
            errors: errors.iter().map(|(a, e)| ((*a).to_owned(), e.clone())).collect(),
        }
    }

    #[test]
    fn one_note_per_invalid_annotation_naming_node_annotation_and_rules() {
        let peers = "bgpintent.io/peers";
        let notes = node_override_notes(
            "n1",
            &invalid(&[
                (
                    "bgpintent.io/local-asn",
                    vec![FieldError::new(
                        "metadata.annotations[bgpintent.io/local-asn]",
                        "must be an AS number",
                    )],
                ),
                (
                    peers,
                    vec![
                        FieldError::new("metadata.annotations[bgpintent.io/peers][0].asn", "bad")
                            .with_value(0),
                        FieldError::new("metadata.annotations[bgpintent.io/peers][1].port", "bad"),
                    ],
                ),
            ]),
        );
        assert_eq!(
            notes,
            [
                "Node n1: annotation bgpintent.io/local-asn is invalid, so the Node keeps its last valid \
                 intent: metadata.annotations[bgpintent.io/local-asn]: must be an AS number",
                "Node n1: annotation bgpintent.io/peers is invalid, so the Node keeps its last valid intent: \
                 metadata.annotations[bgpintent.io/peers][0].asn: bad (got 0); \
                 metadata.annotations[bgpintent.io/peers][1].port: bad",
            ]
        );
    }

    #[test]
    fn notes_fit_an_event() {
        let many: Vec<FieldError> = (0..100)
            .map(|i| {
                FieldError::new(
                    format!("metadata.annotations[bgpintent.io/peers][{i}].asn"),
                    "bad",
                )
            })
            .collect();
        let notes = node_override_notes("n1", &invalid(&[("bgpintent.io/peers", many)]));
        assert!(notes[0].len() <= MAX_NOTE, "{}", notes[0].len());
        assert!(notes[0].ends_with("… (truncated)"));
    }
}
