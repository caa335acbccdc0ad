//! The `fake-apiserver` binary as a process: real `kubectl` 1.35 against it (discovery, short
//! names, categories, server-side Table output from our CRDs' printer columns), and every
//! part of its admin API (stop/start, each fault kind, `/writes`, `/compact`) over plain HTTP.
//!
//! kubectl comes from `scripts/k8s-tools` (pinned, verified, cached in `target/tools/bin`).
//! Without it the kubectl test is skipped, or fails when `CI` is set.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running `fake-apiserver` process, killed on drop.
struct Proc {
    child: Child,
    api: String,
    admin: String,
    dir: tempfile::TempDir,
}

impl Proc {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready.json");
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
            .arg("--crds")
            .arg(repo().join("crd"))
            .arg("--ready-file")
            .arg(&ready)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start fake-apiserver");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("fake-apiserver printed its addresses in time");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        // The same JSON, atomically written.
        assert_eq!(std::fs::read_to_string(&ready).unwrap(), line);
        assert!(line.starts_with(r#"{"api":"http://127.0.0.1:"#), "{line}");
        Self {
            child,
            api: v["api"].as_str().unwrap().to_owned(),
            admin: v["admin"].as_str().unwrap().to_owned(),
            dir,
        }
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = request(
            &self.admin,
            method,
            path,
            &[],
            body.map(|b| b.to_string()).as_deref(),
        );
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
        serde_json::from_slice(&r.body).unwrap()
    }

    fn fault(&self, rule: Value) -> u64 {
        self.admin("POST", "/faults", Some(rule))["id"].as_u64().unwrap()
    }

    fn api(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Resp {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("Content-Type", "application/json")];
        if !token.is_empty() {
            headers.push(("Authorization", auth.as_str()));
        }
        request(
            &self.api,
            method,
            path,
            &headers,
            body.map(Value::to_string).as_deref(),
        )
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 answer; `complete` is false when the connection ended before the body did
/// (a cut watch: no final chunk).
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    complete: bool,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Watch events, one JSON object per line.
    fn events(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn host_port(url: &str) -> &str {
    url.strip_prefix("http://").unwrap()
}

fn send(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> TcpStream {
    let mut s = TcpStream::connect(host_port(url)).expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        host_port(url)
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    s
}

/// Reads an answer until the connection closes (at most 20 s).
fn read_response(mut s: TcpStream) -> Resp {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let (body, complete) = if chunked {
        let mut body = Vec::new();
        let mut at = 0;
        let mut complete = false;
        while let Some(eol) = rest[at..].windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&rest[at..at + eol]).trim(), 16).unwrap();
            at += eol + 2;
            if size == 0 {
                complete = true;
                break;
            }
            if at + size > rest.len() {
                body.extend_from_slice(&rest[at..]);
                break;
            }
            body.extend_from_slice(&rest[at..at + size]);
            at += size + 2;
        }
        (body, complete)
    } else {
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse::<usize>().unwrap());
        (rest.to_vec(), len.is_none_or(|l| l == rest.len()))
    };
    Resp {
        status,
        headers,
        body,
        complete,
    }
}

fn request(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Resp {
    read_response(send(url, method, path, headers, body))
}

fn node(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"bgp": "on"}}})
}

fn lease(name: &str, holder: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
           "metadata": {"name": name, "namespace": "bgp-system"},
           "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}})
}

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/bgp-system/leases";

// ---------------------------------------------------------------------------------------------
// kubectl

/// The pinned kubectl, installed by `scripts/k8s-tools`; `None` (skip) outside CI when it
/// cannot be had.
fn kubectl() -> Option<PathBuf> {
    let out = Command::new(repo().join("scripts/k8s-tools"))
        .current_dir(repo())
        .output()
        .expect("run scripts/k8s-tools");
    let path = repo().join("target/tools/bin/kubectl");
    if out.status.success() && path.is_file() {
        return Some(path);
    }
    let why = format!(
        "scripts/k8s-tools failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set and kubectl is missing: {why}"
    );
    eprintln!("SKIP: no kubectl: {why}");
    None
}

struct Kubectl<'a> {
    bin: PathBuf,
    server: &'a Proc,
}

impl Kubectl<'_> {
    fn new(bin: PathBuf, server: &Proc) -> Kubectl<'_> {
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{}\"}}\n\
             users:\n- name: tester\n  user: {{token: kubectl-tester}}\ncontexts:\n\
             - name: fake\n  context: {{cluster: fake, user: tester}}\ncurrent-context: fake\n",
            server.api
        );
        std::fs::write(server.dir.path().join("kubeconfig"), kubeconfig).unwrap();
        Kubectl { bin, server }
    }

    /// A long-running kubectl (`get -w`), its stdout lines sent to a channel.
    fn spawn(&self, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
        let dir = self.server.dir.path();
        let mut child = Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(dir.join("kubeconfig"))
            .arg("--cache-dir")
            .arg(dir.join("kube-cache"))
            .args(args)
            .env("HOME", dir)
            .env_remove("KUBECONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    }

    fn run(&self, args: &[&str]) -> String {
        let dir = self.server.dir.path();
        let out = Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(dir.join("kubeconfig"))
            .arg("--cache-dir")
            .arg(dir.join("kube-cache"))
            .args(args)
            .env("HOME", dir)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "kubectl {}: {}\nstdout: {stdout}\nstderr: {stderr}\nserver log: {}",
            args.join(" "),
            out.status,
            self.server.stderr()
        );
        // Anything on stderr (warnings, a fallback) is a fidelity problem worth seeing.
        assert_eq!(stderr, "", "kubectl {} wrote to stderr", args.join(" "));
        eprintln!("$ kubectl {}\n{stdout}", args.join(" "));
        stdout
    }
}

/// kubectl's table as cells: columns start where their header starts.
fn cells(out: &str) -> Vec<Vec<String>> {
    let mut lines = out.lines();
    let header = lines.next().expect("a header line");
    let mut starts = vec![0];
    let b = header.as_bytes();
    for i in 1..b.len() {
        if b[i] != b' ' && b[i - 1] == b' ' && i >= 3 && &b[i - 3..i] == b"   " {
            starts.push(i);
        }
    }
    std::iter::once(header)
        .chain(lines)
        .map(|l| {
            starts
                .iter()
                .enumerate()
                .map(|(n, &s)| {
                    let e = starts.get(n + 1).copied().unwrap_or(l.len()).min(l.len());
                    l.get(s.min(l.len())..e).unwrap_or("").trim().to_owned()
                })
                .collect()
        })
        .collect()
}

/// The AGE cell of a just-created object.
fn young(age: &str) -> bool {
    age.strip_suffix('s')
        .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n < 120))
}

fn assert_table(out: &str, header: &[&str], rows: &[&[&str]]) {
    let got = cells(out);
    assert_eq!(got[0], header, "header of\n{out}");
    assert_eq!(got.len() - 1, rows.len(), "rows of\n{out}");
    for (g, want) in got[1..].iter().zip(rows) {
        let (age, rest) = g.split_last().unwrap();
        assert_eq!(rest, &want[..want.len() - 1], "row of\n{out}");
        assert!(young(age), "AGE {age:?} in\n{out}");
    }
}

#[test]
fn kubectl_gets_our_resources_as_the_apiserver_prints_them() {
    let Some(bin) = kubectl() else { return };
    let server = Proc::start(&[]);
    let k = Kubectl::new(bin, &server);

    // Every policy of docs/examples, server-side applied.
    let mut policies = Vec::new();
    for e in std::fs::read_dir(repo().join("docs/examples")).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if path.extension().is_some_and(|x| x == "yaml") && text.contains("\nkind: BGPPolicy") {
            let out = k.run(&["apply", "--server-side", "-f", path.to_str().unwrap()]);
            assert!(out.contains("serverside-applied"), "{out}");
            let v: Value = serde_saphyr::from_str(&text).unwrap();
            policies.push((
                v["metadata"]["name"].as_str().unwrap().to_owned(),
                v["spec"]["localASN"].to_string(),
            ));
        }
    }
    policies.sort();
    assert!(policies.len() >= 6, "{policies:?}");

    // The controller's status on one policy, and an intent with its speaker's status.
    let dir = server.dir.path();
    std::fs::write(
        dir.join("policy-status.yaml"),
        r#"apiVersion: bgpintent.io/v1alpha1
kind: BGPPolicy
metadata: {name: example-bgp-policy}
status:
  observedGeneration: 1
  selectedNodes: 3
  effectiveNodes: 2
  peers: {established: 3, total: 4}
  conditions:
  - {type: Accepted, status: "True", reason: Valid, message: ok, lastTransitionTime: "2026-01-01T00:00:00Z"}
  - {type: Conflicted, status: "True", reason: NodesOwnedByOlderPolicy, message: "Node c", lastTransitionTime: "2026-01-01T00:00:00Z"}
  - {type: Ready, status: "False", reason: SessionsNotEstablished, message: "3 of 4", lastTransitionTime: "2026-01-01T00:00:00Z"}
"#,
    )
    .unwrap();
    k.run(&[
        "apply",
        "--server-side",
        "--subresource=status",
        "--field-manager=bgp-controller",
        "-f",
        dir.join("policy-status.yaml").to_str().unwrap(),
    ]);
    let intent = r#"apiVersion: bgpintent.io/v1alpha1
kind: BGPNodeIntent
metadata: {name: worker-1}
spec:
  policy: {name: example-bgp-policy, uid: 00000000-0000-4000-8000-000000000001, generation: 1}
  routerID: 192.0.2.11
  localASN: 64512
  listenPort: 179
  nextHops: {ipv4: 192.0.2.11, ipv6: "2001:db8::11"}
  peers:
  - {address: 192.0.2.1, asn: 65000}
  - {address: 192.0.2.2, asn: 65000}
  - {address: "2001:db8::1", asn: 65000}
"#;
    std::fs::write(dir.join("intent.yaml"), intent).unwrap();
    let out = k.run(&["create", "-f", dir.join("intent.yaml").to_str().unwrap()]);
    assert_eq!(out, "bgpnodeintent.bgpintent.io/worker-1 created\n");
    // A second intent whose speaker has not reported yet.
    std::fs::write(
        dir.join("intent2.yaml"),
        intent
            .replace("worker-1", "worker-2")
            .replace("192.0.2.11", "192.0.2.12")
            .replace("2001:db8::11", "2001:db8::12"),
    )
    .unwrap();
    k.run(&[
        "apply",
        "--server-side",
        "-f",
        dir.join("intent2.yaml").to_str().unwrap(),
    ]);
    std::fs::write(
        dir.join("intent-status.yaml"),
        r#"apiVersion: bgpintent.io/v1alpha1
kind: BGPNodeIntent
metadata: {name: worker-1}
status:
  observedGeneration: 1
  peersTotal: 3
  established: 2
  prefixes: 12
  peers:
  - {address: 192.0.2.1, asn: 65000, state: Established}
  - {address: 192.0.2.2, asn: 65000, state: Established}
  - {address: "2001:db8::1", asn: 65000, state: Active}
  conditions:
  - {type: Ready, status: "False", reason: SessionsNotEstablished, message: 2 of 3 sessions Established, lastTransitionTime: "2026-01-01T00:00:00Z"}
"#,
    )
    .unwrap();
    k.run(&[
        "apply",
        "--server-side",
        "--subresource=status",
        "--field-manager=bgp-speaker",
        "-f",
        dir.join("intent-status.yaml").to_str().unwrap(),
    ]);

    // kubectl get bgppolicies: one row per policy, the columns of crd/bgppolicies.yaml.
    let out = k.run(&["get", "bgppolicies"]);
    let header = [
        "NAME",
        "LOCAL ASN",
        "SELECTED",
        "EFFECTIVE",
        "ACCEPTED",
        "CONFLICTED",
        "READY",
        "AGE",
    ];
    let rows: Vec<Vec<String>> = policies
        .iter()
        .map(|(name, asn)| {
            if name == "example-bgp-policy" {
                [name, asn, "3", "2", "True", "True", "False", "0s"]
                    .map(|s| s.to_owned())
                    .to_vec()
            } else {
                [name, asn, "", "", "", "", "", "0s"]
                    .map(|s| s.to_owned())
                    .to_vec()
            }
        })
        .collect();
    let row_refs: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.iter().map(String::as_str).collect())
        .collect();
    let row_slices: Vec<&[&str]> = row_refs.iter().map(Vec::as_slice).collect();
    assert_table(&out, &header, &row_slices);
    // The short name and -o wide: the priority-1 session counts appear.
    let wide = k.run(&["get", "bgpp", "example-bgp-policy", "-o", "wide"]);
    assert_table(
        &wide,
        &[
            "NAME",
            "LOCAL ASN",
            "SELECTED",
            "EFFECTIVE",
            "ACCEPTED",
            "CONFLICTED",
            "READY",
            "PEERS",
            "ESTABLISHED",
            "AGE",
        ],
        &[&[
            "example-bgp-policy",
            "64512",
            "3",
            "2",
            "True",
            "True",
            "False",
            "4",
            "3",
            "0s",
        ]],
    );

    // kubectl get bni: Peers is a count (a printer column shows one value of a list).
    let bni_header = [
        "NAME",
        "POLICY",
        "ROUTERID",
        "ASN",
        "PEERS",
        "ESTABLISHED",
        "PREFIXES",
        "AGE",
    ];
    let out = k.run(&["get", "bni"]);
    assert_table(
        &out,
        &bni_header,
        &[
            &[
                "worker-1",
                "example-bgp-policy",
                "192.0.2.11",
                "64512",
                "3",
                "2",
                "12",
                "0s",
            ],
            &[
                "worker-2",
                "example-bgp-policy",
                "192.0.2.12",
                "64512",
                "",
                "",
                "",
                "0s",
            ],
        ],
    );
    let out = k.run(&["get", "bni", "-o", "wide"]);
    assert_table(
        &out,
        &[
            "NAME",
            "POLICY",
            "ROUTERID",
            "ASN",
            "PEERS",
            "ESTABLISHED",
            "PREFIXES",
            "READY",
            "IPV4 NEXT HOP",
            "IPV6 NEXT HOP",
            "AGE",
        ],
        &[
            &[
                "worker-1",
                "example-bgp-policy",
                "192.0.2.11",
                "64512",
                "3",
                "2",
                "12",
                "False",
                "192.0.2.11",
                "2001:db8::11",
                "0s",
            ],
            &[
                "worker-2",
                "example-bgp-policy",
                "192.0.2.12",
                "64512",
                "",
                "",
                "",
                "",
                "192.0.2.12",
                "2001:db8::12",
                "0s",
            ],
        ],
    );
    // One object by name.
    let out = k.run(&["get", "bgpnodeintent", "worker-2"]);
    assert_eq!(cells(&out).len(), 2, "{out}");

    // -o yaml is the stored objects, as a List.
    let out = k.run(&["get", "bgpnodeintents", "-o", "yaml"]);
    let list: Value = serde_saphyr::from_str(&out).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let w1 = &list["items"][0];
    assert_eq!(w1["metadata"]["name"], "worker-1");
    assert_eq!(w1["spec"]["peers"][2]["address"], "2001:db8::1");
    assert_eq!(w1["status"]["peersTotal"], 3);
    assert_eq!(w1["status"]["peers"][2]["state"], "Active");
    assert!(list["items"][1].get("status").is_none(), "{out}");

    // The category: both kinds, names prefixed with their resource.
    let out = k.run(&["get", "bgp-intent"]);
    let blocks: Vec<&str> = out.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{out}");
    let policies_block = cells(blocks[0]);
    assert_eq!(policies_block[0], header);
    assert_eq!(
        policies_block[1][0],
        format!("bgppolicy.bgpintent.io/{}", policies[0].0)
    );
    let intents_block = cells(blocks[1]);
    assert_eq!(intents_block[0], bni_header);
    assert_eq!(intents_block[1][0], "bgpnodeintent.bgpintent.io/worker-1");
    assert_eq!(intents_block.len(), 3);

    // Client-side apply (a merge patch with the last-applied annotation) works too.
    let example = std::fs::read_to_string(repo().join("docs/examples/antrea-example-bgp-policy.yaml"))
        .unwrap()
        .replace("name: example-bgp-policy", "name: client-side");
    let file = dir.join("client-side.yaml");
    std::fs::write(&file, &example).unwrap();
    let out = k.run(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(out, "bgppolicy.bgpintent.io/client-side created\n");
    std::fs::write(&file, example.replace("localASN: 64512", "localASN: 64999")).unwrap();
    let out = k.run(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(out, "bgppolicy.bgpintent.io/client-side configured\n");
    let out = k.run(&["get", "bgpp", "client-side"]);
    assert_eq!(cells(&out)[1][1], "64999", "{out}");

    // Built-in kinds print NAME and AGE.
    server.api("POST", "/api/v1/nodes", "", Some(&node("worker-1")));
    let out = k.run(&["get", "nodes"]);
    assert_table(&out, &["NAME", "AGE"], &[&["worker-1", "0s"]]);

    // kubectl get -w: the list, then one row per change (Tables in the watch events too).
    let (mut watch, lines) = k.spawn(&["get", "bni", "worker-1", "-w"]);
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a line from kubectl get -w")
    };
    let mut header = next();
    header.push('\n');
    let first = next();
    assert_eq!(
        cells(&format!("{header}{first}"))[1][..7],
        [
            "worker-1",
            "example-bgp-policy",
            "192.0.2.11",
            "64512",
            "3",
            "2",
            "12"
        ]
    );
    std::fs::write(
        dir.join("intent-status.yaml"),
        std::fs::read_to_string(dir.join("intent-status.yaml"))
            .unwrap()
            .replace("established: 2", "established: 3"),
    )
    .unwrap();
    k.run(&[
        "apply",
        "--server-side",
        "--subresource=status",
        "--field-manager=bgp-speaker",
        "-f",
        dir.join("intent-status.yaml").to_str().unwrap(),
    ]);
    let changed = next();
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(cells(&format!("{header}{changed}"))[1][5], "3", "{changed}");

    // Delete (kubectl waits until it is gone).
    let out = k.run(&["delete", "bni", "worker-2"]);
    assert_eq!(out, "bgpnodeintent.bgpintent.io \"worker-2\" deleted\n");
    assert_eq!(cells(&k.run(&["get", "bni"])).len(), 2);

    // What kubectl wrote. client-go sends no bearer token over plain http, so kubectl's
    // writes have no client identity (kube-rs does send it: see the test below).
    let writes = server.admin("GET", "/writes", None);
    let w = writes["writes"].as_array().unwrap();
    assert!(w.iter().all(|w| w["client"] == ""), "{writes}");
    assert!(w.iter().any(|w| w["method"] == "PATCH"
        && w["contentType"] == "application/apply-patch+yaml"
        && w["path"] == "/apis/bgpintent.io/v1alpha1/bgpnodeintents/worker-1/status"));
}

// ---------------------------------------------------------------------------------------------
// The admin API

#[test]
fn injected_errors_are_apiserver_statuses() {
    let server = Proc::start(&[]);
    let created = server.api("POST", LEASES, "a", Some(&lease("l", "a")));
    assert_eq!(created.status, 201, "{}", created.text());
    let path = format!("{LEASES}/l");

    for (code, reason) in [
        (409, "Conflict"),
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
    ] {
        let id = server.fault(json!({"method": "PUT", "path": "/leases/", "times": 1,
                                     "action": {"status": code}}));
        let r = server.api("PUT", &path, "a", Some(&lease("l", "b")));
        assert_eq!(r.status, code);
        let s = r.json();
        assert_eq!(
            (
                s["kind"].as_str(),
                s["status"].as_str(),
                s["reason"].as_str(),
                s["code"].as_u64()
            ),
            (
                Some("Status"),
                Some("Failure"),
                Some(reason),
                Some(u64::from(code))
            )
        );
        assert_eq!(r.header("Retry-After"), None);
        let listed = server.admin("GET", "/faults", None);
        assert_eq!(listed["faults"][0]["id"], id);
        assert_eq!(listed["faults"][0]["remaining"], 0);
        server.admin("DELETE", &format!("/faults/{id}"), None);
    }
    // Used up: the next PUT is answered by the store (it was never changed by the faulted ones).
    let got = server.api("GET", &path, "a", None).json();
    assert_eq!(got["spec"]["holderIdentity"], "a");

    // 429 with Retry-After, only for client "b" (its bearer token), until cleared.
    let id = server.fault(json!({"client": "b", "action": {"status": 429, "retryAfterSeconds": 3}}));
    for _ in 0..2 {
        let r = server.api("GET", &path, "b", None);
        assert_eq!(r.status, 429);
        assert_eq!(r.header("Retry-After"), Some("3"));
        let s = r.json();
        assert_eq!(s["reason"], "TooManyRequests");
        assert_eq!(s["details"]["retryAfterSeconds"], 3);
    }
    assert_eq!(server.api("GET", &path, "a", None).status, 200);
    // The x-fake-client header wins over the token.
    let r = request(
        &server.api,
        "GET",
        &path,
        &[("Authorization", "Bearer a"), ("x-fake-client", "b")],
        None,
    );
    assert_eq!(r.status, 429);
    server.admin("DELETE", &format!("/faults/{id}"), None);
    assert_eq!(server.api("GET", &path, "b", None).status, 200);

    // A bad rule is refused.
    let r = request(
        &server.admin,
        "POST",
        "/faults",
        &[],
        Some(r#"{"action": {"status": 200}}"#),
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn writes_are_recorded_with_client_fault_and_time() {
    let server = Proc::start(&[]);
    let r0 = server.admin("GET", "/writes", None);
    assert_eq!(r0, json!({"next": 0, "writes": []}));
    server.api("POST", LEASES, "ctl-0", Some(&lease("l", "ctl-0")));
    let id = server.fault(json!({"method": "PUT", "times": 1, "action": {"status": 409}}));
    server.api("PUT", &format!("{LEASES}/l"), "ctl-1", Some(&lease("l", "ctl-1")));
    server.api("GET", &format!("{LEASES}/l"), "ctl-1", None);
    // Unchanged: a no-op write is recorded, not persisted.
    let same = server.api("GET", &format!("{LEASES}/l"), "", None).json();
    server.api("PUT", &format!("{LEASES}/l"), "ctl-0", Some(&same));
    let all = server.admin("GET", "/writes", None);
    assert_eq!(all["next"], 3);
    let w = all["writes"].as_array().unwrap();
    let summary: Vec<_> = w
        .iter()
        .map(|w| {
            (
                w["index"].clone(),
                w["method"].clone(),
                w["client"].clone(),
                w["persisted"].clone(),
                w["fault"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!(0), json!("POST"), json!("ctl-0"), json!(true), Value::Null),
            (json!(1), json!("PUT"), json!("ctl-1"), json!(false), json!(id)),
            (json!(2), json!("PUT"), json!("ctl-0"), json!(false), Value::Null),
        ]
    );
    assert_eq!(w[0]["path"], LEASES);
    assert_eq!(w[0]["contentType"], "application/json");
    assert!(
        w[0]["body"]
            .as_str()
            .unwrap()
            .contains("\"holderIdentity\":\"ctl-0\"")
    );
    assert!(w[0]["atMs"].as_u64().unwrap() <= w[2]["atMs"].as_u64().unwrap());
    let since = server.admin("GET", "/writes?since=2", None);
    assert_eq!(since["next"], 3);
    assert_eq!(since["writes"].as_array().unwrap().len(), 1);
    assert_eq!(since["writes"][0]["index"], 2);
    assert_eq!(server.admin("GET", "/writes?since=3", None)["writes"], json!([]));
}

#[test]
fn delayed_answers_come_late_and_whole() {
    let server = Proc::start(&[]);
    server.fault(json!({"method": "GET", "path": "/nodes", "times": 1, "action": {"delayMs": 2000}}));
    let t = Instant::now();
    let r = server.api("GET", "/api/v1/nodes", "", None);
    let slow = t.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["kind"], "NodeList");
    assert!(slow >= Duration::from_millis(2000), "{slow:?}");
    let t = Instant::now();
    assert_eq!(server.api("GET", "/api/v1/nodes", "", None).status, 200);
    // Used once: the next answer is immediate (a wide margin for a loaded CI machine).
    assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
}

#[test]
fn silent_requests_are_held_then_cut() {
    let server = Proc::start(&[]);
    let id = server.fault(json!({"method": "POST", "action": {"silent": true}}));
    let mut s = send(
        &server.api,
        "POST",
        "/api/v1/nodes",
        &[("Content-Type", "application/json")],
        Some(&node("n1").to_string()),
    );
    s.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    let mut buf = [0u8; 64];
    let e = s.read(&mut buf).expect_err("no answer while the fault holds");
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{e:?}"
    );
    // Other requests are answered meanwhile; the node was not created.
    let nodes = server.api("GET", "/api/v1/nodes", "", None);
    assert_eq!(nodes.json()["items"], json!([]));
    // Clearing the rule closes the held connection without a byte.
    server.admin("DELETE", &format!("/faults/{id}"), None);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let n = s.read_to_end(&mut rest);
    assert!(
        matches!(n, Ok(0))
            || n.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{n:?} {rest:?}"
    );
    // The write attempt is recorded, not persisted.
    let writes = server.admin("GET", "/writes", None);
    assert_eq!(writes["writes"][0]["fault"], id);
    assert_eq!(writes["writes"][0]["persisted"], false);

    // A silent request is also cut when the API stops.
    server.fault(json!({"method": "GET", "path": "/nodes/x", "action": {"silent": true}}));
    let s = send(&server.api, "GET", "/api/v1/nodes/x", &[], None);
    std::thread::sleep(Duration::from_millis(300));
    server.admin("POST", "/api/stop", None);
    let mut s = s;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let n = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{n:?} {rest:?}");
    assert!(n.is_ok() || n.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset));
}

#[test]
fn watches_are_cut_mid_stream_or_told_410() {
    let server = Proc::start(&[]);
    for n in ["a", "b", "c"] {
        assert_eq!(
            server.api("POST", "/api/v1/nodes", "", Some(&node(n))).status,
            201
        );
    }
    // A normal watch ends cleanly at its timeout, with the final chunk: the check below can
    // tell the two apart.
    let r = server.api("GET", "/api/v1/nodes?watch=true&timeoutSeconds=1", "", None);
    assert!(r.complete);
    assert_eq!(r.events().len(), 3);

    server.fault(json!({"watch": true, "path": "/nodes", "times": 1, "action": {"cutAfterEvents": 2}}));
    let t = Instant::now();
    let r = server.api("GET", "/api/v1/nodes?watch=true&timeoutSeconds=30", "", None);
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(r.status, 200);
    assert!(!r.complete, "a cut watch has no final chunk");
    let events = r.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[1]["object"]["metadata"]["name"], "b");
    // Lists are not watches: the rule does not apply to them.
    server.fault(json!({"watch": null, "action": {"cutAfterEvents": 0}}));
    assert_eq!(server.api("GET", "/api/v1/nodes", "", None).status, 200);
    server.admin("DELETE", "/faults", None);
    assert_eq!(server.admin("GET", "/faults", None)["faults"], json!([]));

    // An injected 410.
    server.fault(json!({"watch": true, "times": 1, "action": {"gone": true}}));
    let rv = server.api("GET", "/api/v1/nodes", "", None).json()["metadata"]["resourceVersion"].clone();
    let r = server.api(
        "GET",
        &format!(
            "/api/v1/nodes?watch=true&resourceVersion={}",
            rv.as_str().unwrap()
        ),
        "",
        None,
    );
    let events = r.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");

    // A real one: after /compact, a watch from an older resourceVersion is expired.
    server.api("POST", "/api/v1/nodes", "", Some(&node("d")));
    server.admin("POST", "/compact", None);
    let r = server.api(
        "GET",
        &format!(
            "/api/v1/nodes?watch=true&timeoutSeconds=1&resourceVersion={}",
            rv.as_str().unwrap()
        ),
        "",
        None,
    );
    let events = r.events();
    assert_eq!(events[0]["type"], "ERROR", "{events:?}");
    assert_eq!(events[0]["object"]["code"], 410);
}

#[test]
fn stop_cuts_every_connection_and_start_serves_the_same_store() {
    let server = Proc::start(&[]);
    server.api("POST", "/api/v1/nodes", "", Some(&node("a")));
    let watch = send(&server.api, "GET", "/api/v1/nodes?watch=true", &[], None);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    server.admin("POST", "/api/stop", None);
    let r = read_response(watch);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(r.status, 200);
    assert_eq!(r.events().len(), 1);
    assert!(!r.complete, "a stopped server ends watches abruptly");
    assert!(
        TcpStream::connect(host_port(&server.api)).is_err(),
        "refused while stopped"
    );
    server.admin("POST", "/api/start", None);
    // An idle keep-alive connection is cut too (a pooled client connection of a crash).
    let mut idle = TcpStream::connect(host_port(&server.api)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: fake\r\n\r\n")
        .unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).ends_with("\r\n\r\nok"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let t = Instant::now();
    server.admin("POST", "/api/stop", None);
    let after = idle.read(&mut buf);
    assert!(
        matches!(after, Ok(0))
            || after
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{after:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(3));
    // Idempotent start; the store survived.
    server.admin("POST", "/api/start", None);
    server.admin("POST", "/api/start", None);
    let nodes = server.api("GET", "/api/v1/nodes", "", None).json();
    assert_eq!(nodes["items"][0]["metadata"]["name"], "a");
    // Discovery of our CRDs, as kubectl reads it.
    let list = server.api("GET", "/apis/bgpintent.io/v1alpha1", "", None).json();
    let bni = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "bgpnodeintents")
        .unwrap()
        .clone();
    assert_eq!(bni["shortNames"], json!(["bni"]));
    assert_eq!(bni["categories"], json!(["bgp-intent"]));
    assert_eq!(bni["namespaced"], false);
    assert!(
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "bgpnodeintents/status")
    );
    assert_eq!(server.admin("GET", "/healthz", None), json!({"ok": true}));
}

#[test]
fn sigterm_ends_the_process_promptly_with_connections_open() {
    let mut server = Proc::start(&["--with-egress"]);
    // Egress is served with the flag.
    let r = server.api("GET", "/apis/crd.antrea.io/v1beta1/egresses", "", None);
    assert_eq!(r.status, 200);
    server.fault(json!({"path": "/nodes/held", "action": {"silent": true}}));
    let _held = send(&server.api, "GET", "/api/v1/nodes/held", &[], None);
    let _watch = send(&server.api, "GET", "/api/v1/nodes?watch=true", &[], None);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}: {}", server.stderr());
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.stderr().contains("SIGTERM"), "{}", server.stderr());
}

/// What the controller and speaker do: a kubeconfig with a token per process.
#[tokio::test]
async fn a_kube_client_is_told_apart_by_its_kubeconfig_token() {
    let server = Proc::start(&[]);
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{}\"}}\n\
         users:\n- name: r\n  user: {{token: controller-1}}\ncontexts:\n\
         - name: fake\n  context: {{cluster: fake, user: r, namespace: bgp-system}}\ncurrent-context: fake\n",
        server.api
    );
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> = kube::Api::default_namespaced(client);
    let lease = serde_json::from_value(lease("bgp-intent-controller", "controller-1")).unwrap();
    leases.create(&Default::default(), &lease).await.unwrap();
    // kube 5 retries 429/503/504 itself and honours Retry-After: a 429 aimed at this
    // identity costs one second, not an error.
    let id = server.fault(json!({"client": "controller-1", "times": 1,
                                 "action": {"status": 429, "retryAfterSeconds": 1}}));
    let t = Instant::now();
    assert!(leases.get("bgp-intent-controller").await.is_ok());
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(server.admin("GET", "/faults", None)["faults"][0]["remaining"], 0);
    server.admin("DELETE", &format!("/faults/{id}"), None);
    // A 500 is not retried: it reaches kube as an API error with the Status.
    server.fault(json!({"client": "controller-1", "times": 1, "action": {"status": 500}}));
    let e = leases.get("bgp-intent-controller").await.unwrap_err();
    assert!(
        matches!(&e, kube::Error::Api(s) if s.code == 500 && s.reason == "InternalError"),
        "{e:?}"
    );
    // Another identity is not affected.
    server.fault(json!({"client": "controller-2", "action": {"status": 500}}));
    assert!(leases.get("bgp-intent-controller").await.is_ok());
    let writes = server.admin("GET", "/writes", None);
    assert_eq!(writes["writes"][0]["client"], "controller-1");
}

#[test]
fn bad_arguments_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args(["--crds", "/nonexistent/crds.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/crds.yaml"));
    let out = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
