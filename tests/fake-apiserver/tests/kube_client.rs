//! The fake served to real kube clients and kube-runtime watchers.

use std::time::Duration;

use fake_apiserver::FakeApiServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;

fn node(name: &str) -> Node {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"bgp": "enabled"}}}))
    .unwrap()
}

fn intent(name: &str, asn: i64) -> serde_json::Value {
    json!({"apiVersion": "bgpintent.io/v1alpha1", "kind": "BGPNodeIntent", "metadata": {"name": name},
           "spec": {"policy": {"name": "p", "uid": "u", "generation": 1}, "routerID": "192.0.2.1",
                    "localASN": asn, "listenPort": 179, "nextHops": {}}})
}

async fn next<S: futures::Stream + Unpin>(s: &mut S) -> S::Item {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("stream item in time")
        .expect("stream open")
}

#[tokio::test]
async fn create_get_conflicts_and_delete() {
    let server = FakeApiServer::start().await;
    let nodes: Api<Node> = Api::all(server.client());
    let created = nodes.create(&PostParams::default(), &node("n1")).await.unwrap();
    assert!(created.uid().is_some());
    let again = nodes
        .create(&PostParams::default(), &node("n1"))
        .await
        .unwrap_err();
    assert!(
        matches!(again, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{again:?}"
    );

    let mut stale = created.clone();
    stale.labels_mut().insert("x".into(), "1".into());
    nodes.replace("n1", &PostParams::default(), &stale).await.unwrap();
    // Same resourceVersion again: now stale.
    let conflict = nodes
        .replace("n1", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{conflict:?}"
    );

    nodes.delete("n1", &Default::default()).await.unwrap();
    let gone = nodes.get("n1").await.unwrap_err();
    assert!(
        matches!(gone, kube::Error::Api(ref s) if s.code == 404),
        "{gone:?}"
    );
}

#[tokio::test]
async fn field_selector_watch_sees_only_its_own_object() {
    let server = FakeApiServer::start().await;
    server.put(intent("node-a", 64512));
    server.put(intent("node-b", 64512));
    let api: Api<bgpintent_crd::BGPNodeIntent> = Api::all(server.client());
    let cfg = watcher::Config::default().fields("metadata.name=node-a");
    let mut stream = watcher(api, cfg).applied_objects().boxed();
    assert_eq!(next(&mut stream).await.unwrap().name_any(), "node-a");
    server.put(intent("node-b", 64513));
    server.put(intent("node-a", 64513));
    let updated = next(&mut stream).await.unwrap();
    assert_eq!(
        (updated.name_any().as_str(), updated.spec.local_asn),
        ("node-a", 64513)
    );
}

#[tokio::test]
async fn label_selector_watch_sees_objects_enter_and_leave_the_selection() {
    let server = FakeApiServer::start().await;
    let pod = |name: &str, label: Option<&str>| {
        let labels = label
            .map(|v| json!({"bgpintent.io/advertise": v}))
            .unwrap_or(json!({}));
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": "ns", "labels": labels},
               "spec": {"containers": []}})
    };
    server.put(pod("a", Some("local")));
    server.put(pod("b", None));
    let api: Api<k8s_openapi::api::core::v1::Pod> = Api::all(server.client());
    let params = kube::api::WatchParams::default().labels("bgpintent.io/advertise in (cluster,local)");
    let mut raw = api.watch(&params, "0").await.unwrap().boxed();
    let seen = |e: kube::api::WatchEvent<k8s_openapi::api::core::v1::Pod>| match e {
        kube::api::WatchEvent::Added(p) => format!("ADDED {}", p.name_any()),
        kube::api::WatchEvent::Modified(p) => format!("MODIFIED {}", p.name_any()),
        kube::api::WatchEvent::Deleted(p) => format!(
            "DELETED {} {:?}",
            p.name_any(),
            p.labels().get("bgpintent.io/advertise")
        ),
        other => format!("{other:?}"),
    };
    assert_eq!(seen(next(&mut raw).await.unwrap()), "ADDED a");
    // b starts matching: ADDED; a stops matching: DELETED with its last matching labels;
    // b changes label value within the selection: MODIFIED; an unselected Pod: nothing.
    server.put(pod("b", Some("cluster")));
    server.put(pod("a", Some("never")));
    server.put(pod("c", None));
    server.put(pod("b", Some("local")));
    server.delete("v1", "Pod", "ns", "a");
    server.delete("v1", "Pod", "ns", "b");
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(seen(next(&mut raw).await.unwrap()));
    }
    assert_eq!(
        got,
        [
            "ADDED b",
            "DELETED a Some(\"local\")",
            "MODIFIED b",
            "DELETED b Some(\"local\")"
        ]
    );
}

#[tokio::test]
async fn expired_history_makes_watchers_relist() {
    let server = FakeApiServer::start().await;
    server.put(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}));
    let api: Api<Node> = Api::all(server.client());
    // A watch from a resourceVersion the server no longer has.
    server.compact();
    let params = kube::api::WatchParams::default();
    let mut raw = api.watch(&params, "100").await.unwrap().boxed();
    match next(&mut raw).await.unwrap() {
        kube::api::WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
    // And a kube-runtime watcher recovers by relisting.
    let mut events = watcher(api, watcher::Config::default()).boxed();
    assert!(matches!(next(&mut events).await.unwrap(), watcher::Event::Init));
    assert!(matches!(
        next(&mut events).await.unwrap(),
        watcher::Event::InitApply(_)
    ));
    assert!(matches!(
        next(&mut events).await.unwrap(),
        watcher::Event::InitDone
    ));
}

#[tokio::test]
async fn server_side_apply_upserts_drops_unsent_fields_and_skips_no_ops() {
    let server = FakeApiServer::start().await;
    let api: Api<bgpintent_crd::BGPNodeIntent> = Api::all(server.client());
    let pp = PatchParams::apply("bgp-controller").force();
    let mut body = intent("node-a", 64512);
    body["spec"]["nextHops"] = json!({"ipv4": "192.0.2.10", "ipv6": "2001:db8::10"});
    let first = api.patch("node-a", &pp, &Patch::Apply(&body)).await.unwrap();
    assert_eq!(first.metadata.generation, Some(1));
    body["spec"]["nextHops"] = json!({"ipv4": "192.0.2.10"});
    let second = api.patch("node-a", &pp, &Patch::Apply(&body)).await.unwrap();
    assert_eq!(
        second.spec.next_hops.ipv6, None,
        "a field the manager stopped sending is removed"
    );
    assert_eq!(second.metadata.generation, Some(2));
    let third = api.patch("node-a", &pp, &Patch::Apply(&body)).await.unwrap();
    assert_eq!(
        third.resource_version(),
        second.resource_version(),
        "no-op apply is not persisted"
    );
    let persisted: Vec<bool> = server.writes().iter().map(|w| w.persisted).collect();
    assert_eq!(persisted, [true, true, false]);
    assert!(
        server
            .writes()
            .iter()
            .all(|w| w.content_type == "application/apply-patch+yaml")
    );
}

#[tokio::test]
async fn status_subresource_is_separate() {
    let server = FakeApiServer::start().await;
    server.put(intent("node-a", 64512));
    let api: Api<bgpintent_crd::BGPNodeIntent> = Api::all(server.client());
    let status = json!({"status": {"established": 2, "observedGeneration": 1}});
    let after = api
        .patch_status("node-a", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(after.status.as_ref().unwrap().established, 2);
    assert_eq!(
        after.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );
    // A status sent to the main resource is ignored.
    let main = json!({"status": {"established": 0}, "spec": {"localASN": 64513}});
    let after = api
        .patch("node-a", &PatchParams::default(), &Patch::Merge(&main))
        .await
        .unwrap();
    assert_eq!(after.status.unwrap().established, 2);
    assert_eq!(
        (after.spec.local_asn, after.metadata.generation),
        (64513, Some(2))
    );
}

#[tokio::test]
async fn deleting_an_owner_collects_its_dependents() {
    let server = FakeApiServer::start().await;
    let owner = server.put(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}}));
    let mut dependent = intent("node-a", 64512);
    dependent["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Node", "name": "node-a",
        "uid": owner["metadata"]["uid"]}]);
    server.put(dependent);
    let nodes: Api<Node> = Api::all(server.client());
    nodes.delete("node-a", &Default::default()).await.unwrap();
    assert!(
        server
            .get("bgpintent.io/v1alpha1", "BGPNodeIntent", "", "node-a")
            .is_none()
    );
}

#[tokio::test]
async fn outage_and_recovery() {
    let mut server = FakeApiServer::start().await;
    server.put(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}));
    let api: Api<Node> = Api::all(server.client());
    let mut stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    assert_eq!(next(&mut stream).await.unwrap().name_any(), "n1");
    server.stop().await;
    assert!(
        api.get("n1").await.is_err(),
        "requests fail while the server is down"
    );
    server.put(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}}));
    server.restart().await;
    assert_eq!(
        api.get("n2").await.unwrap().name_any(),
        "n2",
        "serving again after restart"
    );
    // The watcher reconnects (relist or resume) and sees the change made during the outage.
    let mut seen = Vec::new();
    while !seen.contains(&"n2".to_string()) {
        let item = tokio::time::timeout(Duration::from_secs(15), stream.try_next()).await;
        seen.push(
            item.expect("watcher recovers")
                .ok()
                .flatten()
                .map(|n| n.name_any())
                .unwrap_or_default(),
        );
    }
}
