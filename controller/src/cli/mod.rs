//! Subcommands of `bgp-intent-controller` that work offline, from manifests:
//!
//! * `render [PATHS...]`: the objects the controller would write, as YAML (stdout), and
//!   what it would report on the policies (stderr). No paths: the embedded sample cluster.
//! * `explain --node N --prefix P [PATHS...]`: why P is or is not announced from N.
//!
//! `run` (the controller itself) is in [`crate::app`].
//!
//! Both run the same pure functions as the controller ([`crate::intent::resolve`],
//! [`crate::materialize::materialize`]), so what they print is what would be written.

pub mod manifests;

use std::{io::Write, path::PathBuf};

use bgpintent_api::Prefix;
use clap::{Args, Parser, Subcommand};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::{
    intent::{self, ROUTER_ID_ANNOTATION, Resolution, Snapshot},
    materialize::{self, Layout, Materialized},
};

/// bgp-intent controller.
#[derive(Debug, Parser)]
#[command(name = "bgp-intent-controller", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the objects the controller would write (BGPNodeIntents, BGPAdvertisementSets,
    /// Node annotation patches) for a cluster given as manifests; with no PATHS, for the
    /// built-in sample cluster.
    Render(Input),
    /// Explain why a prefix is or is not announced from a Node.
    Explain(ExplainArgs),
    /// Run the controller against the cluster (in-cluster config or KUBECONFIG).
    Run(crate::app::RunArgs),
}

/// Where the cluster comes from.
#[derive(Debug, Args)]
pub struct Input {
    /// Manifest files or folders (YAML, multi-document, or JSON). None: the sample cluster.
    pub paths: Vec<PathBuf>,
    /// Name of the Secret holding peer passwords; other Secrets are ignored.
    #[arg(long, default_value = "bgp-passwords")]
    pub passwords_secret: String,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Node name.
    #[arg(long)]
    pub node: String,
    /// A prefix (10.96.0.10/32) or an address (10.96.0.10, a host prefix).
    #[arg(long)]
    pub prefix: String,
    #[command(flatten)]
    pub input: Input,
}

/// A failure of an offline command, printed as `error: ...`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Load(#[from] manifests::LoadError),
    #[error("--prefix: {0}")]
    Prefix(String),
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Run(String),
}

fn load(input: &Input, err: &mut dyn Write) -> Result<Snapshot, CliError> {
    let files = if input.paths.is_empty() {
        manifests::sample()
    } else {
        manifests::read_paths(&input.paths)?
    };
    let mut notes = Vec::new();
    let options = manifests::ParseOptions {
        passwords_secret: input.passwords_secret.clone(),
    };
    let snapshot = manifests::parse(&files, &options, &mut notes)?;
    for note in notes {
        writeln!(err, "note: {note}")?;
    }
    Ok(snapshot)
}

/// Runs a parsed command line, writing results to `out` and diagnostics to `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Command::Render(input) => {
            let snapshot = load(&input, err)?;
            let res = intent::resolve(&snapshot);
            let mat = materialize::materialize(&res, &Layout::default());
            out.write_all(render_yaml(&mat).as_bytes())?;
            write_report(&res, &mat, err)?;
        }
        Command::Explain(args) => {
            let prefix: Prefix = args.prefix.parse().map_err(CliError::Prefix)?;
            let snapshot = load(&args.input, err)?;
            let res = intent::resolve(&snapshot);
            write!(
                out,
                "{}",
                intent::explain::explain(&snapshot, &res, &args.node, prefix)
            )?;
        }
        Command::Run(args) => crate::app::run_blocking(args).map_err(CliError::Run)?,
    }
    Ok(())
}

/// Every object to write, as one multi-document YAML stream in apply order: Node
/// annotation patches, sets, intents.
pub fn render_yaml(mat: &Materialized) -> String {
    let mut docs: Vec<String> = Vec::new();
    for (node, id) in &mat.annotations {
        let patch = k8s_openapi::api::core::v1::Node {
            metadata: ObjectMeta {
                name: Some(node.clone()),
                annotations: Some([(ROUTER_ID_ANNOTATION.to_owned(), id.to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Default::default()
        };
        docs.push(yaml(&NodePatch::from(patch)));
    }
    for (name, set) in &mat.sets {
        docs.push(yaml(&set.to_object(name)));
    }
    for intent in mat.intents.values() {
        docs.push(yaml(&intent.to_object()));
    }
    let mut text = String::new();
    for doc in docs {
        text.push_str("---\n");
        text.push_str(&doc);
    }
    text
}

/// A Node patch with `apiVersion`/`kind`, as `kubectl apply --server-side` wants it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct NodePatch {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
}

impl From<k8s_openapi::api::core::v1::Node> for NodePatch {
    fn from(n: k8s_openapi::api::core::v1::Node) -> Self {
        Self {
            api_version: "v1",
            kind: "Node",
            metadata: n.metadata,
        }
    }
}

fn yaml<T: serde::Serialize>(value: &T) -> String {
    serde_saphyr::to_string(value).expect("generated objects always serialize")
}

/// What the controller would put in policy status, for humans.
fn write_report(res: &Resolution, mat: &Materialized, err: &mut dyn Write) -> std::io::Result<()> {
    for p in res.policies.values() {
        writeln!(
            err,
            "BGPPolicy {}: {}; selected {}, effective {}{}",
            p.name,
            if p.accepted { "Accepted" } else { "NOT accepted" },
            p.selected.len(),
            p.effective.len(),
            if p.held.is_empty() {
                String::new()
            } else {
                format!(", holding {} (intents kept as written)", p.held.len())
            }
        )?;
        for e in &p.errors {
            writeln!(err, "  error: {e}")?;
        }
        for e in &p.ignored {
            writeln!(err, "  ignored: {e}")?;
        }
        for (node, owner) in &p.conflicts {
            writeln!(err, "  conflict: Node {node} is owned by older BGPPolicy {owner}")?;
        }
        for c in &p.router_id_collisions {
            let nodes: Vec<&str> = c.nodes.iter().map(String::as_str).collect();
            writeln!(
                err,
                "  router ID {} used by {} in AS {}",
                c.router_id,
                nodes.join(", "),
                c.asn
            )?;
        }
        for peer in &p.unauthenticated_peers {
            writeln!(err, "  peer {peer}: no password in the Secret (unauthenticated)")?;
        }
        for (node, invalid) in &p.invalid_overrides {
            for e in invalid.errors.values().flatten() {
                writeln!(
                    err,
                    "  Node {node}: invalid annotation, intent kept as written: {e}"
                )?;
            }
        }
    }
    for (node, n) in &res.nodes {
        for o in &n.report.overrides {
            writeln!(err, "Node {node}: override: {o}")?;
        }
        for note in &n.report.notes {
            writeln!(err, "Node {node}: {note}")?;
        }
    }
    for p in &res.problems {
        writeln!(err, "problem: {p}")?;
    }
    for o in &mat.oversized {
        writeln!(err, "too large: {o}")?;
    }
    writeln!(
        err,
        "{} BGPNodeIntents, {} BGPAdvertisementSets, {} annotations; largest object {} bytes",
        mat.intents.len(),
        mat.sets.len(),
        mat.annotations.len(),
        mat.largest_object()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> (Result<(), CliError>, String, String) {
        let cli = Cli::try_parse_from(std::iter::once("bgp-intent-controller").chain(args.iter().copied()))
            .expect("arguments parse");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let r = run(cli, &mut out, &mut err);
        (
            r,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn render_without_paths_renders_the_sample_cluster() {
        let (r, out, err) = run_args(&["render"]);
        r.unwrap();
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&out).unwrap();
        let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
        assert!(
            kinds.contains(&"BGPNodeIntent")
                && kinds.contains(&"BGPAdvertisementSet")
                && kinds.contains(&"Node")
        );
        assert!(
            err.contains("conflict: Node edge-1 is owned by older BGPPolicy default"),
            "{err}"
        );
        // The sample's passwords are example values; they must not be printed.
        assert!(!out.contains("example-only") && !err.contains("example-only"));
        assert!(out.contains("revision:"));
    }

    /// The sample's policy `default` has pathAttributes and Service shop/ingress annotations:
    /// render shows the merged attributes in the intents, explain says where they come from.
    #[test]
    fn the_sample_shows_path_attributes() {
        let (r, out, _) = run_args(&["render"]);
        r.unwrap();
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&out).unwrap();
        let worker2 = docs
            .iter()
            .find(|d| d["kind"] == "BGPNodeIntent" && d["metadata"]["name"] == "worker-2")
            .unwrap();
        let ingress = worker2["spec"]["prefixes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["source"]["name"] == "ingress" && g["source"]["ipType"] == "LoadBalancerIP")
            .unwrap();
        assert_eq!(
            ingress["attributes"],
            serde_json::json!({"communities": ["64512:100", "64512:443", "no-export"], "med": 10})
        );
        let (r, out, _) = run_args(&["explain", "--node", "worker-2", "--prefix", "203.0.113.10"]);
        r.unwrap();
        assert!(
            out.contains("Sent with communities 64512:100, 64512:443, no-export; MED 10.\n")
                && out.contains("  from Service shop/ingress: communities 64512:443, no-export; MED 10\n")
                && out.contains(
                    "  from BGPPolicy default spec.pathAttributes: communities 64512:100; MED 50\n"
                ),
            "{out}"
        );
    }

    #[test]
    fn the_node_overrides_example_renders_with_its_overrides() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/examples/node-overrides");
        let (r, out, err) = run_args(&["render", dir]);
        r.unwrap();
        assert!(!err.contains("invalid annotation"), "{err}");
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&out).unwrap();
        let intent = |node: &str| {
            docs.iter()
                .find(|d| d["kind"] == "BGPNodeIntent" && d["metadata"]["name"] == node)
                .unwrap_or_else(|| panic!("no intent for {node}"))
                .clone()
        };
        let peers = |node: &str| -> Vec<(String, i64, i64)> {
            intent(node)["spec"]["peers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["address"].as_str().unwrap().to_owned(),
                        p["asn"].as_i64().unwrap(),
                        p["holdTimeSeconds"].as_i64().unwrap(),
                    )
                })
                .collect()
        };
        assert_eq!(intent("rack-a-1")["spec"]["localASN"], 64512);
        assert_eq!(intent("rack-b-1")["spec"]["localASN"], 4_200_000_001_i64);
        assert_eq!(
            peers("rack-b-1"),
            [
                ("192.0.2.1".to_owned(), 65001, 90),
                ("192.0.2.2".to_owned(), 65002, 30),
                ("192.0.2.10".to_owned(), 65010, 90)
            ]
        );
        assert_eq!(peers("rack-a-1").len(), 2);
        assert!(
            err.contains("Node rack-b-2: override: AS path prepended with 64512 × 3 on every announcement"),
            "{err}"
        );
        let (r, out, _) = run_args(&[
            "explain",
            "--node",
            "rack-b-2",
            "--prefix",
            "203.0.113.128/26",
            dir,
        ]);
        r.unwrap();
        assert!(
            out.contains("Node override: AS path prepended with 64512 × 3 on every announcement"),
            "{out}"
        );
        assert_eq!(out.matches("prepended").count(), 1, "{out}");
        // The intent carries it for the speaker (spec.asPathPrepend).
        assert_eq!(
            intent("rack-b-2")["spec"]["asPathPrepend"],
            serde_json::json!({"asn": 64512, "repeat": 3})
        );
    }

    #[test]
    fn explain_and_errors() {
        let (r, out, _) = run_args(&["explain", "--node", "worker-1", "--prefix", "10.96.20.20"]);
        r.unwrap();
        assert!(
            out.starts_with("10.96.20.20/32 IS announced from Node worker-1."),
            "{out}"
        );
        let (r, _, _) = run_args(&["explain", "--node", "worker-1", "--prefix", "10.0.0.1/8"]);
        assert!(r.unwrap_err().to_string().contains("host bits"));
        let (r, _, _) = run_args(&["render", "/nonexistent/cluster.yaml"]);
        assert!(
            r.unwrap_err()
                .to_string()
                .starts_with("/nonexistent/cluster.yaml: cannot read")
        );
    }
}
