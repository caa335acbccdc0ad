//! The Helm chart ships the CRDs in `charts/bgp-intent/crds/`. Helm installs them from there,
//! so they must be exactly the generated files in `crd/` (which `schemas.rs` checks against the
//! types): same bytes, same set of files.

use std::path::{Path, PathBuf};

const FIX: &str = "cargo run -p bgpintent-crd --bin crdgen";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn chart_crds() -> PathBuf {
    repo().join("charts/bgp-intent/crds")
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let mut differ = Vec::new();
    for (file, _) in bgpintent_crd::crds() {
        let generated =
            std::fs::read(repo().join("crd").join(file)).unwrap_or_else(|e| panic!("crd/{file}: {e}"));
        match std::fs::read(chart_crds().join(file)) {
            Ok(shipped) if shipped == generated => {}
            Ok(_) => differ.push(format!("{file} differs")),
            Err(e) => differ.push(format!("{file}: {e}")),
        }
    }
    assert!(
        differ.is_empty(),
        "charts/bgp-intent/crds/ is not a copy of crd/ ({}): run `{FIX}`",
        differ.join(", ")
    );
}

#[test]
fn chart_ships_no_other_crds() {
    let expected: Vec<&str> = bgpintent_crd::crds().into_iter().map(|(file, _)| file).collect();
    let mut extra: Vec<String> = std::fs::read_dir(chart_crds())
        .unwrap_or_else(|e| panic!("{}: {e}", chart_crds().display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !expected.contains(&name.as_str()))
        .collect();
    extra.sort();
    assert!(
        extra.is_empty(),
        "charts/bgp-intent/crds/ has files that crd/ does not generate: {extra:?}; remove them \
         (Helm would install them as CRDs)"
    );
}
