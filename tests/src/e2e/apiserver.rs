//! The fake API server binary (`fake-apiserver`, crate `tests/fake-apiserver`) as a process
//! in the control-plane namespace, driven over HTTP only: objects through its API address
//! (as the test's own client, token [`TEST_CLIENT`]), outages, faults and the write log
//! through its admin address.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::http::{self, Response};
use crate::lab::{LabError, Netns, Process, Result};

/// The identity (bearer token) of the test's own requests in the write log.
pub const TEST_CLIENT: &str = "e2e-test";
/// Field manager of the test's server-side applies.
const MANAGER: &str = "e2e-test";
const TIMEOUT: Duration = Duration::from_secs(10);

/// A running `fake-apiserver`.
#[derive(Debug)]
pub struct ApiServer {
    ns: String,
    pub api: SocketAddr,
    pub admin: SocketAddr,
    process: Arc<Process>,
}

/// Where a kind is served: `(group/version path prefix, plural, namespaced)`.
pub fn resource_of(api_version: &str, kind: &str) -> Result<(String, &'static str, bool)> {
    let (plural, namespaced) = match kind {
        "Node" => ("nodes", false),
        "Namespace" => ("namespaces", false),
        "Service" => ("services", true),
        "Secret" => ("secrets", true),
        "Pod" => ("pods", true),
        "Event" => ("events", true),
        "EndpointSlice" => ("endpointslices", true),
        "Lease" => ("leases", true),
        "BGPPolicy" => ("bgppolicies", false),
        "BGPNodeIntent" => ("bgpnodeintents", false),
        "BGPAdvertisementSet" => ("bgpadvertisementsets", false),
        other => return Err(LabError::new(format!("kind {other} is not mapped"))),
    };
    let prefix = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    Ok((prefix, plural, namespaced))
}

/// The URL path of one object (`name` empty: the collection).
pub fn path_of(api_version: &str, kind: &str, namespace: &str, name: &str) -> Result<String> {
    let (prefix, plural, namespaced) = resource_of(api_version, kind)?;
    let mut p = prefix;
    if namespaced {
        p.push_str(&format!("/namespaces/{namespace}"));
    }
    p.push_str(&format!("/{plural}"));
    if !name.is_empty() {
        p.push_str(&format!("/{name}"));
    }
    Ok(p)
}

fn path_of_object(object: &Value) -> Result<String> {
    path_of(
        object["apiVersion"].as_str().unwrap_or_default(),
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["namespace"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default(),
    )
}

impl ApiServer {
    /// Starts `binary` in `ns`, the API on `api`, admin on `admin`, serving the CRDs in
    /// `crds`; waits for its ready file.
    pub fn start(
        binary: &Path,
        ns: &Netns,
        api: SocketAddr,
        admin: SocketAddr,
        crds: &Path,
        dir: &Path,
    ) -> Result<Self> {
        let ready = dir.join("fake-apiserver.ready.json");
        let mut cmd = ns.command(binary.to_str().expect("utf-8 path"));
        cmd.args(["--listen", &api.to_string(), "--admin", &admin.to_string()])
            .arg("--crds")
            .arg(crds)
            .arg("--ready-file")
            .arg(&ready)
            .env("RUST_LOG", "info");
        let process = Process::spawn("fake-apiserver", cmd, &dir.join("fake-apiserver.log"))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let line = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                break text;
            }
            if !process.is_running() || Instant::now() > deadline {
                return Err(
                    LabError::new("fake-apiserver did not become ready").context(process.log_tail(30))
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let v: Value =
            serde_json::from_str(&line).map_err(|e| LabError::new(format!("ready file {line:?}: {e}")))?;
        let got_api = http::addr_of(v["api"].as_str().unwrap_or_default())?;
        let got_admin = http::addr_of(v["admin"].as_str().unwrap_or_default())?;
        Ok(Self {
            ns: ns.name().to_owned(),
            api: got_api,
            admin: got_admin,
            process,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.api)
    }

    pub fn process(&self) -> &Process {
        &self.process
    }

    fn call(&self, method: &str, path: &str, content_type: &str, body: Option<&str>) -> Result<Response> {
        let auth = format!("Bearer {TEST_CLIENT}");
        let mut headers = vec![("Authorization", auth.as_str()), ("Accept", "application/json")];
        if body.is_some() {
            headers.push(("Content-Type", content_type));
        }
        http::request(&self.ns, self.api, method, path, &headers, body, TIMEOUT)
    }

    fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Response> {
        let body = body.map(Value::to_string);
        http::request(
            &self.ns,
            self.admin,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_deref(),
            TIMEOUT,
        )?
        .ok()
    }

    /// Server-side apply of `object` (create or update) through the API; the stored object.
    pub fn apply(&self, object: &Value) -> Result<Value> {
        let path = format!("{}?fieldManager={MANAGER}&force=true", path_of_object(object)?);
        self.call(
            "PATCH",
            &path,
            "application/apply-patch+yaml",
            Some(&object.to_string()),
        )?
        .ok()
        .map_err(|e| e.context(format!("applying {path}")))?
        .json()
    }

    /// [`ApiServer::apply`], then, if `object` has a `status`, [`ApiServer::apply_status`]:
    /// a write to the main resource does not change the status of kinds that have the
    /// subresource (Nodes, Services), as in the apiserver.
    pub fn apply_with_status(&self, object: &Value) -> Result<Value> {
        let stored = self.apply(object)?;
        if object.get("status").is_some() {
            return self.apply_status(object);
        }
        Ok(stored)
    }

    /// Server-side apply to the `/status` subresource (e.g. a LoadBalancer's ingress).
    pub fn apply_status(&self, object: &Value) -> Result<Value> {
        let base = path_of_object(object)?;
        let path = format!("{base}/status?fieldManager={MANAGER}&force=true");
        self.call(
            "PATCH",
            &path,
            "application/apply-patch+yaml",
            Some(&object.to_string()),
        )?
        .ok()
        .map_err(|e| e.context(format!("applying {path}")))?
        .json()
    }

    /// `PUT` (replace) of `object`, with whatever `resourceVersion` it carries.
    pub fn replace(&self, object: &Value) -> Result<Response> {
        self.call(
            "PUT",
            &path_of_object(object)?,
            "application/json",
            Some(&object.to_string()),
        )
    }

    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Result<Option<Value>> {
        let r = self.call("GET", &path_of(api_version, kind, namespace, name)?, "", None)?;
        match r.status {
            404 => Ok(None),
            _ => r.ok()?.json().map(Some),
        }
    }

    /// Every object of a kind (all namespaces for namespaced kinds).
    pub fn list(&self, api_version: &str, kind: &str) -> Result<Vec<Value>> {
        let (prefix, plural, _) = resource_of(api_version, kind)?;
        let v = self
            .call("GET", &format!("{prefix}/{plural}"), "", None)?
            .ok()?
            .json()?;
        Ok(v["items"].as_array().cloned().unwrap_or_default())
    }

    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Result<()> {
        self.call("DELETE", &path_of(api_version, kind, namespace, name)?, "", None)?
            .ok()
            .map(drop)
    }

    /// Admin: close the API listener and every open connection (the store is kept).
    pub fn stop(&self) -> Result<()> {
        self.admin("POST", "/api/stop", None).map(drop)
    }

    /// Admin: serve the API again on the same address.
    pub fn start_api(&self) -> Result<()> {
        self.admin("POST", "/api/start", None).map(drop)
    }

    /// Admin: installs a fault; its id.
    pub fn fault(&self, fault: &Value) -> Result<u64> {
        let v = self.admin("POST", "/faults", Some(fault))?.json()?;
        v["id"]
            .as_u64()
            .ok_or_else(|| LabError::new(format!("no fault id in {v}")))
    }

    /// Admin: the faults with their remaining counts.
    pub fn faults(&self) -> Result<Value> {
        self.admin("GET", "/faults", None)?.json()
    }

    pub fn clear_fault(&self, id: u64) -> Result<()> {
        self.admin("DELETE", &format!("/faults/{id}"), None).map(drop)
    }

    pub fn clear_faults(&self) -> Result<()> {
        self.admin("DELETE", "/faults", None).map(drop)
    }

    /// Admin: expire the watch history (watches from an older resourceVersion get 410).
    pub fn compact(&self) -> Result<()> {
        self.admin("POST", "/compact", None).map(drop)
    }

    /// Admin: write records from index `since` on, and the index to ask from next.
    pub fn writes(&self, since: u64) -> Result<(u64, Vec<Write>)> {
        let v = self
            .admin("GET", &format!("/writes?since={since}"), None)?
            .json()?;
        let next = v["next"].as_u64().unwrap_or(since);
        let writes = v["writes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| Write {
                index: w["index"].as_u64().unwrap_or_default(),
                method: w["method"].as_str().unwrap_or_default().to_owned(),
                path: w["path"].as_str().unwrap_or_default().to_owned(),
                persisted: w["persisted"].as_bool().unwrap_or(false),
                client: w["client"].as_str().unwrap_or_default().to_owned(),
                at_ms: w["atMs"].as_u64().unwrap_or_default(),
            })
            .collect();
        Ok((next, writes))
    }

    /// Writes the kubeconfig of one process: this server, plain HTTP, bearer token
    /// `identity` (how the write log tells processes apart), namespace `namespace`.
    pub fn kubeconfig(&self, path: &Path, identity: &str, namespace: &str) -> Result<PathBuf> {
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             users:\n- name: {identity}\n  user:\n    token: {identity}\ncontexts:\n- name: fake\n  \
             context:\n    cluster: fake\n    user: {identity}\n    namespace: {namespace}\n\
             current-context: fake\n",
            self.url()
        );
        std::fs::write(path, config).map_err(|e| LabError::new(format!("{}: {e}", path.display())))?;
        Ok(path.to_owned())
    }
}

/// One write request in the server's log.
#[derive(Debug, Clone)]
pub struct Write {
    pub index: u64,
    pub method: String,
    pub path: String,
    pub persisted: bool,
    pub client: String,
    pub at_ms: u64,
}

/// A fault for [`ApiServer::fault`]: `None` fields match anything.
pub fn fault(
    method: Option<&str>,
    path: Option<&str>,
    watch: Option<bool>,
    client: Option<&str>,
    times: Option<u32>,
    action: Value,
) -> Value {
    json!({"method": method, "path": path, "watch": watch, "client": client, "times": times, "action": action})
}
