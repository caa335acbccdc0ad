//! HTTP front: discovery, then `/api/v1/...` and `/apis/{group}/{version}/...` onto the
//! store, with the fault rules applied first.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Query, State},
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::{
    Shared, WriteRecord,
    conn::Conn,
    discovery,
    faults::{self, FaultAction},
    selector::{FieldSelector, LabelSelector},
    store::{ApiError, PatchKind},
    table,
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

/// The media type of a Table answer, as the apiserver labels it.
const TABLE_JSON: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

fn table_response(body: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, TABLE_JSON)],
        body.to_string(),
    )
        .into_response()
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

/// Who sent a request: the `x-fake-client` header, else the bearer token, else "".
pub fn client_identity(headers: &HeaderMap) -> String {
    if let Some(c) = headers.get(crate::CLIENT_HEADER).and_then(|v| v.to_str().ok()) {
        return c.to_owned();
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .unwrap_or_default()
}

fn is_watch(query: &HashMap<String, String>) -> bool {
    query.get("watch").is_some_and(|w| w == "true" || w == "1")
}

fn is_write(method: &Method) -> bool {
    [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(method)
}

/// The one handler: everything is routed by hand, like the prototype in k8s-tooling.md.
pub async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let client = client_identity(&headers);
    let watch = is_watch(&query);
    let fault = shared
        .faults
        .lock()
        .expect("faults lock")
        .take(method.as_str(), uri.path(), watch, &client);
    let mut cut_after = None;
    if let Some((id, action)) = fault {
        tracing::info!(fault = id, %method, path = uri.path(), client, ?action, "fault injected");
        let record_fault = || {
            if is_write(&method) {
                record(&shared, &method, &uri, &headers, &body, false, Some(id));
            }
        };
        match action {
            FaultAction::Status {
                code,
                retry_after_seconds,
            } => {
                record_fault();
                let mut r = json_response(
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    &faults::status(code, retry_after_seconds),
                );
                if let Some(s) = retry_after_seconds {
                    r.headers_mut().insert(
                        header::RETRY_AFTER,
                        header::HeaderValue::from_str(&s.to_string()).expect("digits"),
                    );
                }
                return r;
            }
            FaultAction::Delay { ms } => {
                let mut stopped = shared.stopped.subscribe();
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                    _ = stopped.wait_for(|s| *s) => {
                        conn.kill();
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                }
            }
            FaultAction::Silent => {
                record_fault();
                let mut stopped = shared.stopped.subscribe();
                let mut cleared = shared.faults_cleared.subscribe();
                loop {
                    if !shared.faults.lock().expect("faults lock").contains(id) {
                        break;
                    }
                    tokio::select! {
                        _ = stopped.wait_for(|s| *s) => break,
                        r = cleared.changed() => if r.is_err() { break },
                    }
                }
                // Never answered: the connection is closed before the response is written.
                conn.kill();
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            FaultAction::CutAfterEvents(n) => cut_after = Some(n),
            FaultAction::Gone => {
                let gone = ApiError::new(410, "Expired", "too old resource version (injected)");
                let line = format!("{}\n", json!({"type": "ERROR", "object": gone.status()}));
                return Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(line))
                    .expect("response");
            }
        }
    }
    match route(&shared, &method, &uri, &query, &headers, &body, cut_after).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn record(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    persisted: bool,
    fault: Option<u64>,
) {
    let at_ms = u64::try_from(shared.started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut w = shared.writes.lock().expect("writes lock");
    let index = w.first + w.list.len();
    w.list.push(WriteRecord {
        index,
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
        client: client_identity(headers),
        at_ms,
        fault,
    });
}

/// Discovery and the other non-resource paths kubectl reads; `None` for resource paths.
fn non_resource(shared: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    if *method != Method::GET {
        return None;
    }
    let path = uri.path().trim_end_matches('/');
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let store = shared.store.lock().expect("store lock");
    let types = &store.types;
    let found = |v: Option<Value>| {
        Some(match v {
            Some(v) => json_response(StatusCode::OK, &v),
            None => error_response(&ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )),
        })
    };
    match segs.as_slice() {
        ["healthz" | "livez" | "readyz"] => Some((StatusCode::OK, "ok").into_response()),
        ["version"] => found(Some(discovery::version())),
        ["api"] => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            found(Some(discovery::api_versions(host)))
        }
        ["api", v] => found(discovery::resource_list(types, "", v)),
        ["apis"] => found(Some(discovery::api_group_list(types))),
        ["apis", g] => found(discovery::group(types, g)),
        ["apis", g, v] => found(discovery::resource_list(types, g, v)),
        ["openapi", "v3"] => found(Some(discovery::openapi_root(types))),
        ["openapi", "v3", "api", v] => found(discovery::openapi_group_version(types, "", v)),
        ["openapi", "v3", "apis", g, v] => found(discovery::openapi_group_version(types, g, v)),
        ["openapi", ..] => found(None),
        _ => None,
    }
}

async fn route(
    shared: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
    cut_after: Option<u64>,
) -> Result<Response, ApiError> {
    if let Some(r) = non_resource(shared, method, uri, headers) {
        return Ok(r);
    }
    let target = parse_path(shared, uri.path())?;
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
    let record = |persisted: bool| record(shared, method, uri, headers, body, persisted, None);
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let as_table = table::wants_table(accept);
    let include = query.get("includeObject").map_or("Metadata", String::as_str);
    let ns = target.namespace.as_str();
    match (method.clone(), target.name.as_deref()) {
        (Method::GET, None) if is_watch(query) => {
            let table = as_table.then(|| include.to_owned());
            watch(shared, &target, query, cut_after, table)
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
            if as_table {
                return Ok(table_response(&table::table(
                    t,
                    &items,
                    Some(rv.to_string()),
                    include,
                )));
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({"apiVersion": t.api_version(), "kind": format!("{}List", t.kind),
                        "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
            ))
        }
        (Method::GET, Some(name)) => {
            let store = shared.store.lock().expect("store lock");
            let object = store.get(target.ty, ns, name)?;
            if as_table && !target.status {
                let rv = object["metadata"]["resourceVersion"].as_str().map(str::to_owned);
                return Ok(table_response(&table::table(
                    &store.types[target.ty],
                    &[object],
                    rv,
                    include,
                )));
            }
            Ok(json_response(StatusCode::OK, &object))
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

/// A watch: newline-delimited events. It ends cleanly at `timeoutSeconds`; when the server
/// is stopped, or after `cut_after` events, the stream fails, so hyper cuts the connection
/// without the final chunk (a client sees an aborted body, as from a crashed apiserver).
fn watch(
    shared: &Arc<Shared>,
    target: &Target,
    query: &HashMap<String, String>,
    cut_after: Option<u64>,
    table: Option<String>,
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
    let ty_def = store.types[ty].clone();
    drop(store);
    let content_type = if table.is_some() {
        TABLE_JSON
    } else {
        "application/json"
    };
    let gone = backlog.first().is_some_and(|(k, _)| k == "ERROR");
    // With a Table requested (`kubectl get -w`), each event carries a one-row Table.
    let line = move |kind: &str, object: &Value| {
        let object = match &table {
            Some(include) if kind != "ERROR" => {
                let rv = object["metadata"]["resourceVersion"].as_str().map(str::to_owned);
                table::table(&ty_def, std::slice::from_ref(object), rv, include)
            }
            _ => object.clone(),
        };
        Bytes::from(format!("{}\n", json!({"type": kind, "object": object})))
    };
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
                _ = async { stopped.wait_for(|s| *s).await.map(|_| ()) } => {
                    let _ = tx.send(Err(())).await;
                    return;
                }
                event = rx.recv() => {
                    // Lagging behind the broadcast ends the watch; the client re-watches.
                    let Ok(e) = event else { return };
                    if e.resource != ty || e.rv <= last {
                        continue;
                    }
                    if let Some((kind, object)) = e.as_seen_by(&wanted)
                        && tx.send(Ok(line(kind, &object))).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    let events = futures::stream::iter(first.into_iter().map(Ok)).chain(live);
    let limit = cut_after.unwrap_or(u64::MAX);
    let stream = events
        .scan(0u64, move |sent, item| {
            let out = match item {
                Ok(_) if *sent >= limit => Some(Err(())),
                Ok(b) => {
                    *sent += 1;
                    Some(Ok(b))
                }
                Err(()) => Some(Err(())),
            };
            std::future::ready(out)
        })
        // Stop after the first error: hyper aborts the connection on it.
        .scan(false, |failed, item| {
            if *failed {
                return std::future::ready(None);
            }
            *failed = item.is_err();
            std::future::ready(Some(item))
        })
        .then(|item| async move {
            if item.is_err() {
                // Let hyper flush the events already sent: it drops unflushed bytes when the
                // body fails.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            item.map_err(|()| std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "watch cut"))
        });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(stream))
        .expect("response"))
}

/// A stream fed by a spawned task through a small channel.
fn async_stream<F, Fut>(f: F) -> impl futures::Stream<Item = Result<Bytes, ()>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Bytes, ()>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
}
