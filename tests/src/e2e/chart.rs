//! How the chart runs both binaries, read from `helm template` output: each container's
//! `args`, `env`, metrics port and probes. The suite starts the processes from this and
//! nothing else, so a flag, variable or probe path that drifts between the chart and the
//! binaries fails here.
//!
//! What a kubelet adds is emulated: the downward API (`fieldRef` to `metadata.name`,
//! `metadata.namespace`, `spec.nodeName`), `$(VAR)` expansion in `args` (with `$$` as an
//! escaped `$` and unknown references left as they are, like the kubelet), and named probe
//! ports resolved through the container's `ports`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use serde_json::Value;

use crate::lab::{LabError, Result, run};

/// Release name and namespace of the rendering (what `helm install` would be given).
pub const RELEASE: &str = "bgp-intent";
pub const NAMESPACE: &str = "bgp-system";

/// An HTTP probe of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub path: String,
    pub port: u16,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
}

/// One container of a rendered workload, as a kubelet would run it.
#[derive(Debug, Clone)]
pub struct Container {
    /// `Deployment/<name>` or `DaemonSet/<name>`.
    pub workload: String,
    pub args: Vec<String>,
    /// `env` entries: a literal value, or a downward-API field path.
    pub env: Vec<(String, EnvSource)>,
    /// `containerPort` of the port named `metrics`.
    pub metrics_port: u16,
    pub liveness: Probe,
    pub readiness: Probe,
    /// Pod `spec.hostNetwork`.
    pub host_network: bool,
    /// `spec.replicas` (Deployments).
    pub replicas: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource {
    Value(String),
    FieldRef(String),
}

/// Resolved environment variables, in order.
pub type Env = Vec<(String, String)>;

/// What the downward API resolves for one Pod.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub name: String,
    pub namespace: String,
    pub node_name: String,
}

impl Container {
    /// The environment and arguments of the container in `pod`: env in order (a later
    /// variable may refer to an earlier one), then `$(VAR)` in args expanded.
    pub fn resolve(&self, pod: &PodInfo) -> Result<(Vec<String>, Env)> {
        let mut env: Vec<(String, String)> = Vec::new();
        for (name, source) in &self.env {
            let value = match source {
                EnvSource::Value(v) => expand(v, &env),
                EnvSource::FieldRef(path) => match path.as_str() {
                    "metadata.name" => pod.name.clone(),
                    "metadata.namespace" => pod.namespace.clone(),
                    "spec.nodeName" => pod.node_name.clone(),
                    other => {
                        return Err(LabError::new(format!(
                            "{}: env {name}: fieldRef {other} is not emulated",
                            self.workload
                        )));
                    }
                },
            };
            env.push((name.clone(), value));
        }
        let args = self.args.iter().map(|a| expand(a, &env)).collect();
        Ok((args, env))
    }

    /// The value following `flag` in `args` (e.g. `--lease-duration`).
    pub fn flag(&self, flag: &str) -> Option<&str> {
        self.args
            .iter()
            .position(|a| a == flag)
            .and_then(|i| self.args.get(i + 1))
            .map(String::as_str)
    }
}

/// `$(VAR)` expansion as the kubelet does it (`third_party/forked/golang/expansion`):
/// `$$` is a literal `$`, a reference to an undefined variable stays as written.
pub fn expand(input: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('(')
            && let Some(end) = body.find(')')
        {
            let name = &body[..end];
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The chart's two workloads.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub controller: Container,
    pub speaker: Container,
    /// Every rendered object.
    pub objects: Vec<Value>,
}

/// The repository root (tests/ is one level down).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

/// `helm template bgp-intent charts/bgp-intent --namespace bgp-system` with `helm`, parsed.
pub fn render(helm: &Path) -> Result<Rendered> {
    let root = repo_root();
    let home = root.join("target/tools/helm-home");
    let yaml = run(Command::new(helm)
        .args(["template", RELEASE])
        .arg(root.join("charts/bgp-intent"))
        .args(["--namespace", NAMESPACE])
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data")))?;
    parse(&yaml)
}

/// Parses rendered manifests (multi-document YAML).
pub fn parse(yaml: &str) -> Result<Rendered> {
    let objects: Vec<Value> = serde_saphyr::from_multiple(yaml)
        .map_err(|e| LabError::new(format!("helm template output is not YAML: {e}")))?;
    let objects: Vec<Value> = objects.into_iter().filter(|o| !o.is_null()).collect();
    let find = |kind: &str, container: &str| -> Result<Container> {
        let object = objects
            .iter()
            .find(|o| {
                o["kind"] == kind
                    && o["spec"]["template"]["spec"]["containers"]
                        .as_array()
                        .is_some_and(|cs| cs.iter().any(|c| c["name"] == container))
            })
            .ok_or_else(|| LabError::new(format!("no {kind} with a container {container} rendered")))?;
        container_of(object, container)
    };
    Ok(Rendered {
        controller: find("Deployment", "controller")?,
        speaker: find("DaemonSet", "speaker")?,
        objects: objects.clone(),
    })
}

fn container_of(object: &Value, name: &str) -> Result<Container> {
    let workload = format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or("?"),
        object["metadata"]["name"].as_str().unwrap_or("?")
    );
    let err = |what: &str| LabError::new(format!("{workload}: {what}"));
    let pod = &object["spec"]["template"]["spec"];
    let c = pod["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .ok_or_else(|| err("container missing"))?;
    let args = c["args"]
        .as_array()
        .ok_or_else(|| err("no args"))?
        .iter()
        .map(|a| match a {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    let mut env = Vec::new();
    for e in c["env"].as_array().into_iter().flatten() {
        let var = e["name"]
            .as_str()
            .ok_or_else(|| err("env without name"))?
            .to_owned();
        let source = if let Some(v) = e.get("value") {
            EnvSource::Value(v.as_str().unwrap_or_default().to_owned())
        } else if let Some(path) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            EnvSource::FieldRef(path.to_owned())
        } else {
            return Err(err(&format!("env {var}: only value and fieldRef are emulated")));
        };
        env.push((var, source));
    }
    let ports: BTreeMap<String, u16> = c["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p["name"].as_str()?.to_owned(),
                p["containerPort"].as_u64()? as u16,
            ))
        })
        .collect();
    let metrics_port = *ports.get("metrics").ok_or_else(|| err("no port named metrics"))?;
    let probe = |key: &str| -> Result<Probe> {
        let p = &c[key];
        let get = &p["httpGet"];
        let port = match &get["port"] {
            Value::Number(n) => n.as_u64().map(|n| n as u16),
            Value::String(s) => ports.get(s).copied().or_else(|| s.parse().ok()),
            _ => None,
        }
        .ok_or_else(|| err(&format!("{key}: no httpGet port")))?;
        let secs = |field: &str, default: u64| Duration::from_secs(p[field].as_u64().unwrap_or(default));
        Ok(Probe {
            path: get["path"]
                .as_str()
                .ok_or_else(|| err(&format!("{key}: no httpGet path")))?
                .to_owned(),
            port,
            // Kubernetes defaults: 0, 10 s, 1 s, 3.
            initial_delay: secs("initialDelaySeconds", 0),
            period: secs("periodSeconds", 10),
            timeout: secs("timeoutSeconds", 1),
            failure_threshold: p["failureThreshold"].as_u64().unwrap_or(3) as u32,
        })
    };
    Ok(Container {
        workload: workload.clone(),
        args,
        env,
        metrics_port,
        liveness: probe("livenessProbe")?,
        readiness: probe("readinessProbe")?,
        host_network: pod["hostNetwork"].as_bool().unwrap_or(false),
        replicas: object["spec"]["replicas"].as_u64().map(|r| r as u32),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_the_kubelet() {
        let env = vec![("A".to_owned(), "x".to_owned()), ("B".to_owned(), "y".to_owned())];
        assert_eq!(expand("$(A)-$(B)", &env), "x-y");
        assert_eq!(expand("$$(A)", &env), "$(A)");
        assert_eq!(expand("$(C)", &env), "$(C)");
        assert_eq!(expand("a$b", &env), "a$b");
        assert_eq!(expand("$(A", &env), "$(A");
    }

    #[test]
    fn a_container_is_read_with_its_probes() {
        let yaml = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: r-speaker}
spec:
  template:
    spec:
      hostNetwork: true
      containers:
        - name: speaker
          args: [run, --node-name, $(NODE_NAME), --metrics-addr, "0.0.0.0:9473"]
          env:
            - name: NODE_NAME
              valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
            - {name: RUST_LOG, value: debug}
          ports: [{name: metrics, containerPort: 9473}]
          livenessProbe: {httpGet: {path: /healthz, port: metrics}, periodSeconds: 10}
          readinessProbe: {httpGet: {path: /readyz, port: 9473}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: r-controller}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: controller
          args: [run]
          ports: [{name: metrics, containerPort: 8080}]
          livenessProbe: {httpGet: {path: /healthz, port: metrics}}
          readinessProbe: {httpGet: {path: /readyz, port: metrics}}
"#;
        let r = parse(yaml).unwrap();
        assert!(r.speaker.host_network);
        assert_eq!(r.controller.replicas, Some(2));
        assert_eq!(r.speaker.liveness.port, 9473);
        assert_eq!(r.speaker.readiness.timeout, Duration::from_secs(1));
        let pod = PodInfo {
            name: "p".into(),
            namespace: "ns".into(),
            node_name: "node-1".into(),
        };
        let (args, env) = r.speaker.resolve(&pod).unwrap();
        assert_eq!(args[2], "node-1");
        assert_eq!(env[1], ("RUST_LOG".to_owned(), "debug".to_owned()));
    }
}
