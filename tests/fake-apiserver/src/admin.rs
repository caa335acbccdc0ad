//! The admin HTTP API of the `fake-apiserver` binary (JSON in and out), for tests that run
//! the server as a separate process:
//!
//! | request | effect |
//! |---|---|
//! | `GET /healthz` | 200 |
//! | `POST /api/stop` | close the API listener and cut every open API connection (the store is kept) |
//! | `POST /api/start` | listen again on the same address |
//! | `POST /faults` | add a rule ([`crate::Fault::from_json`]); answers `{"id": N}` |
//! | `GET /faults` | `{"faults": [{"id", "remaining", ...rule}]}` |
//! | `DELETE /faults/{id}`, `DELETE /faults` | clear one or all rules |
//! | `GET /writes?since=N` | `{"next": M, "writes": [...]}` ([`crate::WriteRecord::to_json`]) |
//! | `POST /compact` | expire the watch history (older watches get 410) |

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{FakeApiServer, Fault};

type Server = Arc<Mutex<FakeApiServer>>;

fn bad_request(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message.into()}))).into_response()
}

/// The admin routes over a shared server.
pub fn router(server: Server) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"ok": true})) }))
        .route("/api/stop", post(stop))
        .route("/api/start", post(start))
        .route("/faults", get(list_faults).post(add_fault).delete(clear_faults))
        .route("/faults/{id}", delete(clear_fault))
        .route("/writes", get(writes))
        .route("/compact", post(compact))
        .with_state(server)
}

async fn stop(State(server): State<Server>) -> Json<Value> {
    let mut s = server.lock().await;
    s.stop().await;
    eprintln!("fake-apiserver: API stopped (every connection cut)");
    Json(json!({"serving": false}))
}

async fn start(State(server): State<Server>) -> Response {
    let mut s = server.lock().await;
    match s.try_restart().await {
        Ok(()) => {
            eprintln!("fake-apiserver: API serving again on {}", s.addr());
            Json(json!({"serving": true})).into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": format!("cannot listen on {}: {e}", s.addr())})),
        )
            .into_response(),
    }
}

async fn add_fault(State(server): State<Server>, body: Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("body is not JSON: {e}")),
    };
    match Fault::from_json(&v) {
        Ok(f) => {
            let id = server.lock().await.add_fault(f.clone());
            eprintln!("fake-apiserver: fault {id} added: {}", f.to_json());
            Json(json!({"id": id})).into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn list_faults(State(server): State<Server>) -> Json<Value> {
    let faults: Vec<Value> = server
        .lock()
        .await
        .faults()
        .into_iter()
        .map(|(id, f)| {
            let mut v = f.to_json();
            v["id"] = json!(id);
            v["remaining"] = json!(f.times);
            v
        })
        .collect();
    Json(json!({"faults": faults}))
}

async fn clear_fault(State(server): State<Server>, Path(id): Path<u64>) -> Response {
    if server.lock().await.clear_fault(id) {
        Json(json!({"cleared": [id]})).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no fault {id}")})),
        )
            .into_response()
    }
}

async fn clear_faults(State(server): State<Server>) -> Json<Value> {
    let s = server.lock().await;
    let ids: Vec<u64> = s.faults().into_iter().map(|(id, _)| id).collect();
    s.clear_faults();
    Json(json!({"cleared": ids}))
}

async fn writes(State(server): State<Server>, Query(q): Query<HashMap<String, String>>) -> Response {
    let since = match q.get("since").map(|s| s.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad_request("since must be a non-negative integer"),
    };
    let (list, next) = server.lock().await.writes_since(since);
    let writes: Vec<Value> = list.iter().map(crate::WriteRecord::to_json).collect();
    Json(json!({"next": next, "writes": writes})).into_response()
}

async fn compact(State(server): State<Server>) -> Json<Value> {
    server.lock().await.compact();
    Json(json!({"compacted": true}))
}
