//! The exact HTTP requests of the controller's writes, checked against a mock service
//! (kube-rs's "ApiServerVerifier" pattern): path, query, content type and body.

use bgpintent_controller::{
    metrics::Metrics,
    reconcile::{PassReport, Writer},
};
use bgpintent_crd::{BGPNodeIntent, BGPPolicyStatus};
use http::{Request, Response};
use kube::{Client, client::Body, runtime::events::Reporter};
use serde_json::{Value, json};
use tokio::sync::watch;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn writer() -> (Writer, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let reporter = Reporter {
        controller: "bgp-intent-controller".into(),
        instance: None,
    };
    (Writer::new(client, reporter, watch::channel(true).1), handle)
}

/// Answers the next request with `reply` and returns what was asked.
async fn next_request(handle: &mut Handle, reply: Value) -> (String, String, Value) {
    let (request, send) = handle.next_request().await.expect("a request");
    let method = request.method().to_string();
    let uri = request.uri().to_string();
    let content_type = request
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    send.send_response(
        Response::builder()
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
    (format!("{method} {uri}"), content_type, body)
}

fn intent() -> BGPNodeIntent {
    serde_json::from_value(json!({
        "apiVersion": "bgpintent.io/v1alpha1", "kind": "BGPNodeIntent",
        "metadata": {"name": "node-a", "labels": {"app.kubernetes.io/managed-by": "bgp-intent-controller"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node-a", "uid": "u-1", "controller": true}]},
        "spec": {"policy": {"name": "p", "uid": "pu", "generation": 2}, "routerID": "192.0.2.10",
            "localASN": 64512, "listenPort": 179, "nextHops": {"ipv4": "192.0.2.10"}}
    }))
    .unwrap()
}

#[tokio::test]
async fn intent_is_server_side_applied_under_one_forced_field_manager() {
    let (writer, mut handle) = writer();
    let desired = intent();
    let reply = serde_json::to_value(&desired).unwrap();
    let metrics = Metrics::register(&mut Default::default());
    let server = tokio::spawn(async move { next_request(&mut handle, reply).await });
    let mut report = PassReport::default();
    writer
        .apply(&desired, "BGPNodeIntent", &metrics, &mut report)
        .await;
    let (line, content_type, body) = server.await.unwrap();
    assert_eq!(
        line,
        "PATCH /apis/bgpintent.io/v1alpha1/bgpnodeintents/node-a?&force=true&fieldManager=bgp-intent-controller"
    );
    assert_eq!(content_type, "application/apply-patch+yaml");
    assert_eq!(body["apiVersion"], "bgpintent.io/v1alpha1");
    assert_eq!(body["kind"], "BGPNodeIntent");
    assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "u-1");
    assert_eq!(body["spec"]["routerID"], "192.0.2.10");
    assert!(
        body["metadata"].get("resourceVersion").is_none(),
        "apply bodies carry no resourceVersion"
    );
    assert!(
        body.get("status").is_none(),
        "the controller never writes an intent's status"
    );
    assert_eq!(report.applied, 1);
}

#[tokio::test]
async fn policy_status_goes_to_the_status_subresource() {
    let (writer, mut handle) = writer();
    let status: BGPPolicyStatus = serde_json::from_value(json!({"observedGeneration": 3, "selectedNodes": 2,
        "effectiveNodes": 1, "peers": {"established": 1, "total": 2}}))
    .unwrap();
    let reply = json!({"apiVersion": "bgpintent.io/v1alpha1", "kind": "BGPPolicy", "metadata": {"name": "p"},
        "spec": {"nodeSelector": {}, "localASN": 64512}});
    let server = tokio::spawn(async move { next_request(&mut handle, reply).await });
    writer.write_policy_status("p", &status).await.unwrap();
    let (line, content_type, body) = server.await.unwrap();
    assert_eq!(
        line,
        "PATCH /apis/bgpintent.io/v1alpha1/bgppolicies/p/status?&force=true&fieldManager=bgp-intent-controller"
    );
    assert_eq!(content_type, "application/apply-patch+yaml");
    assert_eq!(
        body,
        json!({"apiVersion": "bgpintent.io/v1alpha1", "kind": "BGPPolicy", "metadata": {"name": "p"},
        "status": {"observedGeneration": 3, "selectedNodes": 2, "effectiveNodes": 1,
                   "peers": {"established": 1, "total": 2}}})
    );
}

#[tokio::test]
async fn router_id_annotation_is_a_minimal_apply_on_the_node() {
    let (writer, mut handle) = writer();
    let reply = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}});
    let server = tokio::spawn(async move { next_request(&mut handle, reply).await });
    let mut report = PassReport::default();
    writer
        .annotate_node(
            "node-a",
            "192.0.2.10"
                .parse::<std::net::Ipv4Addr>()
                .unwrap()
                .try_into()
                .unwrap(),
            &mut report,
        )
        .await;
    let (line, content_type, body) = server.await.unwrap();
    assert_eq!(
        line,
        "PATCH /api/v1/nodes/node-a?&force=true&fieldManager=bgp-intent-controller"
    );
    assert_eq!(content_type, "application/apply-patch+yaml");
    assert_eq!(
        body,
        json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-a", "annotations": {"bgpintent.io/router-id": "192.0.2.10"}}})
    );
}

#[tokio::test]
async fn a_follower_sends_nothing() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let reporter = Reporter {
        controller: "bgp-intent-controller".into(),
        instance: None,
    };
    let writer = Writer::new(client, reporter, watch::channel(false).1);
    let metrics = Metrics::register(&mut Default::default());
    let mut report = PassReport::default();
    writer
        .apply(&intent(), "BGPNodeIntent", &metrics, &mut report)
        .await;
    writer
        .annotate_node(
            "node-a",
            "192.0.2.10"
                .parse::<std::net::Ipv4Addr>()
                .unwrap()
                .try_into()
                .unwrap(),
            &mut report,
        )
        .await;
    assert_eq!(report, PassReport::default());
    handle.allow(0);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(100), handle.next_request())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn labelled_pods_are_listed_and_watched_cluster_wide_with_the_label_selector() {
    use std::{sync::Arc, time::Duration};

    use bgpintent_controller::{intent::POD_SELECTOR, reconcile::start_informers};

    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let (_stores, informers) = start_informers(
        client,
        "bgp-intent",
        "bgp-passwords",
        Arc::new(tokio::sync::Notify::new()),
    );
    let informers = tokio::spawn(informers);
    // Every reflector lists at once; answer the Pod requests, leave the others pending.
    let mut pending = Vec::new();
    let mut pod_requests = Vec::new();
    while pod_requests.len() < 2 {
        let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
            .await
            .expect("requests in time")
            .expect("a request");
        let uri = request.uri().to_string();
        if !uri.starts_with("/api/v1/pods?") {
            pending.push(send);
            continue;
        }
        let body = if uri.contains("watch=true") {
            // An empty watch stream; the request is what matters.
            Vec::new()
        } else {
            serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "PodList",
                "metadata": {"resourceVersion": "7"}, "items": []}))
            .unwrap()
        };
        send.send_response(Response::builder().body(Body::from(body)).unwrap());
        pod_requests.push(uri);
    }
    informers.abort();
    // `bgpintent.io/advertise in (cluster,local)`, form-encoded.
    let selector = "labelSelector=bgpintent.io%2Fadvertise+in+%28cluster%2Clocal%29";
    assert_eq!(POD_SELECTOR, "bgpintent.io/advertise in (cluster,local)");
    let (list, watch) = (&pod_requests[0], &pod_requests[1]);
    assert!(
        list.contains(selector) && !list.contains("watch="),
        "list: {list}"
    );
    assert!(
        watch.contains(selector) && watch.contains("watch=true") && watch.contains("resourceVersion=7"),
        "watch: {watch}"
    );
    // Cluster-wide: no namespace in the path, and no field selector narrowing it.
    assert!(!list.contains("fieldSelector") && !watch.contains("fieldSelector"));
}
