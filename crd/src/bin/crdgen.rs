//! Writes the CRD YAML files of bgp-intent.
//!
//! `crdgen` writes into `crd/` (next to this crate's manifest), the chart's `crds/`, and the API
//! reference into `docs/api-reference.md`; `crdgen DIR` writes into DIR and DIR/../docs;
//! `crdgen -` prints all of them to stdout as one multi-document stream.

use std::{io::Write, path::PathBuf};

fn main() -> std::io::Result<()> {
    let target = std::env::args().nth(1);
    if target.as_deref() == Some("-") {
        let mut out = std::io::stdout().lock();
        for (_, crd) in bgpintent_crd::crds() {
            writeln!(out, "---\n{}", bgpintent_crd::to_yaml(&crd))?;
        }
        return Ok(());
    }
    let dir = target
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let chart = dir.join("../charts/bgp-intent/crds");
    for (file, crd) in bgpintent_crd::crds() {
        let yaml = bgpintent_crd::to_yaml(&crd);
        for path in [dir.join(file), chart.join(file)] {
            std::fs::write(&path, &yaml)?;
            eprintln!("wrote {}", path.display());
        }
    }
    let reference = dir.join("../docs/api-reference.md");
    std::fs::write(&reference, bgpintent_crd::reference::api_reference())?;
    eprintln!("wrote {}", reference.display());
    Ok(())
}
