//! The generated CRDs: committed files current, structural, and enforcing the documented
//! rules on real manifests (docs/examples), valid and invalid.

use std::path::{Path, PathBuf};

use bgpintent_crd::{BGPPolicy, check};
use kube::CustomResourceExt;
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    files
}

#[test]
fn committed_crds_match_the_generator() {
    let mut stale = Vec::new();
    for (file, crd) in bgpintent_crd::crds() {
        let path = repo().join("crd").join(file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != bgpintent_crd::to_yaml(&crd) {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from the types: run `cargo run -p bgpintent-crd --bin crdgen`"
    );
}

#[test]
fn crds_are_structural_and_their_rules_compile() {
    for (file, crd) in bgpintent_crd::crds() {
        let problems = check::structural_problems(&crd);
        assert!(problems.is_empty(), "{file}:\n{}", problems.join("\n"));
    }
}

#[test]
fn crds_have_the_documented_shape() {
    for (_, crd) in bgpintent_crd::crds() {
        assert_eq!(crd.spec.group, "bgpintent.io");
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(crd.spec.versions[0].name, "v1alpha1");
    }
    let intent = bgpintent_crd::BGPNodeIntent::crd();
    assert_eq!(
        intent.spec.names.short_names.as_deref(),
        Some(&["bni".to_string()][..])
    );
    let columns: Vec<String> = intent.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(
        columns,
        [
            "Policy",
            "RouterID",
            "ASN",
            "Peers",
            "Established",
            "Prefixes",
            "Ready",
            "IPv4 Next Hop",
            "IPv6 Next Hop",
            "Age"
        ]
    );
    // The apiserver prints only the first value of a printer column's JSONPath: a column
    // over a list would show one element of it.
    for (file, crd) in bgpintent_crd::crds() {
        for c in crd.spec.versions[0].additional_printer_columns.iter().flatten() {
            assert!(
                !c.json_path.contains("[*]") && !c.json_path.contains(".."),
                "{file}: column {} prints only the first of {}",
                c.name,
                c.json_path
            );
        }
    }
    assert!(
        intent.spec.versions[0]
            .subresources
            .as_ref()
            .is_some_and(|s| s.status.is_some())
    );
    assert!(
        BGPPolicy::crd().spec.versions[0]
            .subresources
            .as_ref()
            .is_some_and(|s| s.status.is_some())
    );
}

/// The checker must be able to fail: ipnet's derived schema (no `type` on items, `title`
/// inside `oneOf`) is what a real apiserver rejects.
#[test]
fn checker_rejects_non_structural_schemas() {
    let bad = json!({
        "type": "object",
        "properties": {
            "cidrs": {"type": "array", "items": {"oneOf": [
                {"title": "v4", "type": "string", "pattern": "x"},
                {"title": "v6", "type": "string"}
            ]}},
            "port": {"type": "integer", "format": "uint16", "default": 99999, "maximum": 65535},
            "list": {"type": "array", "uniqueItems": true, "items": {"type": "string"}},
            "rule": {"type": "string", "x-kubernetes-validations": [{"rule": "self.("}]}
        }
    });
    let problems = check::schema_problems(&bad).join("\n");
    for needle in [
        "properties[cidrs].items.type: Required value",
        "items.oneOf[0].title: Forbidden",
        "items.oneOf[0].type: Forbidden",
        "\"uint16\" is not a format",
        "properties[port].default: invalid default",
        "uniqueItems: Forbidden",
        "CEL rule does not compile",
    ] {
        assert!(problems.contains(needle), "missing {needle:?} in:\n{problems}");
    }
}

fn crd_for(
    object: &Value,
) -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    let kind = object["kind"].as_str().unwrap();
    bgpintent_crd::crds()
        .into_iter()
        .map(|(_, c)| c)
        .find(|c| c.spec.names.kind == kind)
        .unwrap()
}

#[test]
fn every_example_is_accepted_and_parses() {
    let mut checked = 0;
    for path in yaml_files(&repo().join("docs/examples")) {
        let object = read_yaml(&path);
        match object["kind"].as_str() {
            Some("BGPPolicy") => {
                let defaulted = check::validate(&crd_for(&object), &object)
                    .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.join("\n")));
                let policy: BGPPolicy = serde_json::from_value(defaulted).unwrap();
                policy
                    .spec
                    .settings()
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                checked += 1;
            }
            Some("Secret") => {
                let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(object).unwrap();
                let keys: Vec<&String> = secret.string_data.iter().flat_map(|d| d.keys()).collect();
                // The apiserver's rule for Secret keys (IsConfigMapKey).
                let invalid: Vec<&&String> = keys
                    .iter()
                    .filter(|k| !k.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
                    .collect();
                if path.ends_with("antrea-bgp-passwords.yaml") {
                    // Kept unchanged from Antrea's docs, whose IPv6 key a real apiserver refuses.
                    assert_eq!(invalid, [&&"2001:db8::1-65000".to_string()]);
                } else {
                    assert!(
                        invalid.is_empty(),
                        "{}: invalid Secret keys {invalid:?}",
                        path.display()
                    );
                }
            }
            other => panic!("{}: unexpected kind {other:?}", path.display()),
        }
    }
    assert!(checked >= 7, "only {checked} policies checked");
}

#[test]
fn antrea_defaults_are_applied_by_the_schema() {
    let object = read_yaml(&repo().join("docs/examples/antrea-advertise-all-egress-ips.yaml"));
    let defaulted = check::validate(&crd_for(&object), &object).unwrap();
    let peer = &defaulted["spec"]["bgpPeers"][0];
    assert_eq!(peer["gracefulRestartTimeSeconds"], 120);
    assert_eq!(peer["multihopTTL"], 2);
    let minimal = json!({"apiVersion": "bgpintent.io/v1alpha1", "kind": "BGPPolicy", "metadata": {"name": "m"},
        "spec": {"nodeSelector": {}, "localASN": 64512, "bgpPeers": [{"address": "192.0.2.1", "asn": 65001}]}});
    let defaulted = check::validate(&crd_for(&minimal), &minimal).unwrap();
    assert_eq!(defaulted["spec"]["listenPort"], 179);
    assert_eq!(defaulted["spec"]["bgpPeers"][0]["port"], 179);
    assert_eq!(defaulted["spec"]["bgpPeers"][0]["multihopTTL"], 1);
}

/// Each invalid manifest names the field it breaks in its first line (`# expect: FIELD`); both
/// the schema (what the apiserver does) and the controller's own parsing must reject it with
/// a message naming that field.
#[test]
fn every_invalid_example_is_rejected_naming_the_field() {
    for path in yaml_files(&repo().join("docs/examples/invalid")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("expect line");
        let object = read_yaml(&path);
        let errors = check::validate(&crd_for(&object), &object)
            .err()
            .unwrap_or_else(|| panic!("{}: schema accepted it", path.display()));
        assert!(
            errors.iter().any(|e| e.starts_with(expect)),
            "{}: no schema error names {expect}: {errors:?}",
            path.display()
        );
        // The controller's parser: unknown fields and enum values are refused by the typed
        // decoding already; everything else by `settings()`.
        match serde_json::from_value::<BGPPolicy>(object) {
            Ok(policy) if !expect.ends_with("pasive") => {
                let e = policy.spec.settings().expect_err("controller accepted it");
                assert!(e.0.iter().any(|e| e.field == expect), "{}: {e}", path.display());
            }
            Ok(_) => {}
            Err(e) => assert!(expect.contains("ipTypes"), "{}: {e}", path.display()),
        }
    }
}

/// The admission rules for communities agree with the controller's parser on every value
/// (upper-case well-known names aside: the parser accepts them, the schema wants the
/// canonical lower case).
#[test]
fn community_rules_agree_with_the_parser() {
    let policy = |communities: Value, large: Value| {
        json!({"apiVersion": "bgpintent.io/v1alpha1", "kind": "BGPPolicy", "metadata": {"name": "c"},
            "spec": {"nodeSelector": {}, "localASN": 64512,
                     "pathAttributes": {"communities": communities, "largeCommunities": large}}})
    };
    for value in [
        "0:0",
        "65535:65535",
        "64512:100",
        "65536:1",
        "1:65536",
        "99999:1",
        "no-export",
        "no-peer",
        "blackhole",
        "graceful-shutdown",
        "no_export",
        "NO-EXPORT",
        "1",
        "1:2:3",
        ":1",
        "a:b",
        "",
    ] {
        let object = policy(json!([value]), json!([]));
        let schema_ok = check::validate(&crd_for(&object), &object).is_ok();
        let parser_ok = value.parse::<bgpintent_api::Community>().is_ok();
        if value == "NO-EXPORT" {
            assert!(!schema_ok && parser_ok);
        } else {
            assert_eq!(schema_ok, parser_ok, "community {value:?}");
        }
    }
    for value in [
        "0:0:0",
        "4294967295:4294967295:4294967295",
        "4294967296:1:1",
        "1:2",
        "1:2:3:4",
        "a:1:1",
        "-1:1:1",
        "",
    ] {
        let object = policy(json!([]), json!([value]));
        let schema_ok = check::validate(&crd_for(&object), &object).is_ok();
        let parser_ok = value.parse::<bgpintent_api::LargeCommunity>().is_ok();
        assert_eq!(schema_ok, parser_ok, "large community {value:?}");
    }
    let too_many: Vec<String> = (0..33).map(|i| format!("1:{i}")).collect();
    let object = policy(json!(too_many), json!([]));
    let errors = check::validate(&crd_for(&object), &object).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("spec.pathAttributes.communities: Too many")),
        "{errors:?}"
    );
}

/// `gracefulRestart` defaults to true per peer; `localPref`/`med` are bounded to uint32.
#[test]
fn graceful_restart_defaults_on_and_attribute_integers_are_bounded() {
    let object = json!({"apiVersion": "bgpintent.io/v1alpha1", "kind": "BGPPolicy", "metadata": {"name": "g"},
        "spec": {"nodeSelector": {}, "localASN": 64512, "bgpPeers": [{"address": "192.0.2.1", "asn": 65001}],
                 "pathAttributes": {"localPref": 4294967295_u64, "med": 0}}});
    let defaulted = check::validate(&crd_for(&object), &object).unwrap();
    assert_eq!(defaulted["spec"]["bgpPeers"][0]["gracefulRestart"], true);
    let mut bad = object.clone();
    bad["spec"]["pathAttributes"]["localPref"] = json!(4294967296_u64);
    bad["spec"]["pathAttributes"]["med"] = json!(-1);
    let errors = check::validate(&crd_for(&bad), &bad).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("spec.pathAttributes.localPref: Invalid value"),
        "{errors:?}"
    );
}
