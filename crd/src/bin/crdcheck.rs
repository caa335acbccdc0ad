//! Checks manifests against the bgp-intent CRDs offline, as an apiserver would at admission:
//! schema defaults, types, ranges, enums, unknown fields and the CEL rules.
//!
//! `crdcheck FILE...` prints `FILE: Kind/name: OK` or every error; exits 1 on any error.
//! Documents of other kinds are skipped.

use std::process::ExitCode;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: crdcheck FILE.yaml...");
        return ExitCode::from(2);
    }
    let crds = bgpintent_crd::crds();
    let mut failed = false;
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{file}: {e}");
                failed = true;
                continue;
            }
        };
        let docs: Vec<serde_json::Value> = match serde_saphyr::from_multiple(&text) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{file}: not YAML: {e}");
                failed = true;
                continue;
            }
        };
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let kind = doc["kind"].as_str().unwrap_or("?");
            let name = doc["metadata"]["name"].as_str().unwrap_or("?");
            let Some((_, crd)) = crds.iter().find(|(_, c)| c.spec.names.kind == kind) else {
                println!("{file}: {kind}/{name}: skipped (not a bgp-intent kind)");
                continue;
            };
            match bgpintent_crd::check::validate(crd, &doc) {
                Ok(_) => println!("{file}: {kind}/{name}: OK"),
                Err(errors) => {
                    failed = true;
                    for e in errors {
                        println!("{file}: {kind}/{name}: {e}");
                    }
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
