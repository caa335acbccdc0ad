//! HTTP front: routes `/api/v1/...` and `/apis/{group}/{version}/...` onto the store.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::{Query, State},
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::{
    Shared, WriteRecord,
    selector::{FieldSelector, LabelSelector},
    store::{ApiError, PatchKind},
};

struct Target {
    ty: usize,
    namespace: String,
    name: Option<String>,
    status: bool,
}

fn parse_path(shared: &Shared, path: &str) -> Result<Target, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => {
            return Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (ns.to_string(), rest),
        _ => (String::new(), rest),
    };
    let (plural, name, status) = match rest {
        [plural] => (*plural, None, false),
        [plural, name] => (*plural, Some(name.to_string()), false),
        [plural, name, "status"] => (*plural, Some(name.to_string()), true),
        _ => {
            return Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
    };
    let store = shared.store.lock().expect("store lock");
    let ty = store.find_type(group, version, plural).ok_or_else(|| {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    })?;
    if status && !store.types[ty].status_subresource {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    Ok(Target {
        ty,
        namespace,
        name,
        status,
    })
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(e: &ApiError) -> Response {
    json_response(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.status(),
    )
}

fn parse_body(bytes: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .or_else(|_| serde_saphyr::from_slice(bytes))
        .map_err(|e| ApiError::new(400, "BadRequest", format!("cannot decode body: {e}")))
}

/// The one handler: everything is routed by hand, like the prototype in k8s-tooling.md.
pub async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match route(&shared, &method, &uri, &query, &headers, &body).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn route(
    shared: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let target = parse_path(shared, uri.path())?;
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
    let record = |persisted: bool| {
        shared.writes.lock().expect("writes lock").push(WriteRecord {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or_default().to_owned(),
            content_type: headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .into(),
            body: body.to_vec(),
            persisted,
            client: headers
                .get(crate::CLIENT_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .into(),
        });
    };
    let ns = target.namespace.as_str();
    match (method.clone(), target.name.as_deref()) {
        (Method::GET, None) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            watch(shared, &target, query)
        }
        (Method::GET, None) => {
            let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
                .map_err(|e| ApiError::new(400, "BadRequest", e))?;
            let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
                .map_err(|e| ApiError::new(400, "BadRequest", e))?;
            let store = shared.store.lock().expect("store lock");
            let scope = (!ns.is_empty()).then_some(ns);
            let (items, rv) = store.list(target.ty, scope, &labels, &fields);
            let t = &store.types[target.ty];
            Ok(json_response(
                StatusCode::OK,
                &json!({"apiVersion": t.api_version(), "kind": format!("{}List", t.kind),
                        "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
            ))
        }
        (Method::GET, Some(name)) => {
            let store = shared.store.lock().expect("store lock");
            Ok(json_response(StatusCode::OK, &store.get(target.ty, ns, name)?))
        }
        (Method::POST, None) => {
            let object = parse_body(body)?;
            let result = shared
                .store
                .lock()
                .expect("store lock")
                .create(target.ty, ns, object, dry_run);
            record(result.is_ok() && !dry_run);
            Ok(json_response(StatusCode::CREATED, &result?))
        }
        (Method::PUT, Some(name)) => {
            let object = parse_body(body)?;
            let result = shared.store.lock().expect("store lock").replace(
                target.ty,
                ns,
                name,
                object,
                target.status,
                dry_run,
            );
            record(result.as_ref().is_ok_and(|(_, persisted)| *persisted));
            Ok(json_response(StatusCode::OK, &result?.0))
        }
        (Method::PATCH, Some(name)) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let kind = match content_type.split(';').next().unwrap_or("") {
                "application/merge-patch+json" => PatchKind::Merge,
                "application/json-patch+json" => PatchKind::Json,
                "application/strategic-merge-patch+json" => PatchKind::Strategic,
                "application/apply-patch+yaml" | "application/apply-patch+cbor" => PatchKind::Apply {
                    force: query.get("force").is_some_and(|f| f == "true"),
                },
                other => {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        format!("unsupported patch type {other:?}"),
                    ));
                }
            };
            let patch = parse_body(body)?;
            let manager = query.get("fieldManager").map(String::as_str);
            let result = shared.store.lock().expect("store lock").patch(
                target.ty,
                ns,
                name,
                kind,
                patch,
                manager,
                target.status,
                dry_run,
            );
            record(result.as_ref().is_ok_and(|(_, persisted)| *persisted));
            Ok(json_response(StatusCode::OK, &result?.0))
        }
        (Method::DELETE, Some(name)) => {
            let result = shared
                .store
                .lock()
                .expect("store lock")
                .delete(target.ty, ns, name);
            record(result.is_ok());
            Ok(json_response(StatusCode::OK, &result?))
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported here"),
        )),
    }
}

fn watch(
    shared: &Arc<Shared>,
    target: &Target,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::new(400, "BadRequest", e))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::new(400, "BadRequest", e))?;
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .unwrap_or(300u64);
    let ns = target.namespace.clone();
    let ty = target.ty;
    let store = shared.store.lock().expect("store lock");
    let mut rx = store.events.subscribe();
    // A watch from "" or "0" starts with the current state as ADDED events.
    let start = query
        .get("resourceVersion")
        .and_then(|rv| rv.parse::<u64>().ok())
        .filter(|rv| *rv > 0);
    let wanted = {
        let ns = ns.clone();
        let (labels, fields) = (labels.clone(), fields.clone());
        move |o: &Value| {
            (ns.is_empty() || o["metadata"]["namespace"].as_str() == Some(ns.as_str()))
                && labels.matches(o)
                && fields.matches(o)
        }
    };
    let backlog: Vec<(String, Value)> = match start {
        Some(rv) => match store.since(ty, rv) {
            Ok(events) => events
                .iter()
                .filter_map(|e| e.as_seen_by(&wanted))
                .map(|(kind, object)| (kind.to_owned(), object))
                .collect(),
            // The apiserver reports an expired resourceVersion as an ERROR event with a
            // Status, on a 200 response; kube-runtime's watcher relists on code 410.
            Err(gone) => vec![("ERROR".to_owned(), gone.status())],
        },
        None => {
            let scope = (!ns.is_empty()).then_some(ns.as_str());
            store
                .list(ty, scope, &labels, &fields)
                .0
                .into_iter()
                .map(|o| ("ADDED".to_owned(), o))
                .collect()
        }
    };
    let last = start
        .unwrap_or(store.resource_version())
        .max(store.resource_version());
    drop(store);
    let gone = backlog.first().is_some_and(|(k, _)| k == "ERROR");
    let line =
        |kind: &str, object: &Value| Bytes::from(format!("{}\n", json!({"type": kind, "object": object})));
    // The backlog is already filtered: the initial list by the selectors, history events by
    // `as_seen_by`.
    let first: Vec<Bytes> = backlog.iter().map(|(kind, object)| line(kind, object)).collect();
    let mut stopped = shared.stopped.subscribe();
    let deadline = tokio::time::sleep(Duration::from_secs(timeout));
    let live = async_stream(move |tx| async move {
        tokio::pin!(deadline);
        if gone {
            return;
        }
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = async { stopped.wait_for(|s| *s).await.map(|_| ()) } => return,
                event = rx.recv() => {
                    // Lagging behind the broadcast ends the watch; the client re-watches.
                    let Ok(e) = event else { return };
                    if e.resource != ty || e.rv <= last {
                        continue;
                    }
                    if let Some((kind, object)) = e.as_seen_by(&wanted)
                        && tx.send(line(kind, &object)).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    let stream = futures::stream::iter(first)
        .chain(live)
        .map(Ok::<_, std::convert::Infallible>);
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .expect("response"))
}

/// A stream fed by a spawned task through a small channel.
fn async_stream<F, Fut>(f: F) -> impl futures::Stream<Item = Bytes>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
}
