//! Offline checks of our CRDs, standing in for the apiserver (none can run in CI).
//!
//! * [`structural_problems`]: the rules an apiserver applies before it accepts a CRD
//!   (structural schema, list-map keys, defaults valid, formats it knows, CEL rules that
//!   compile and stay within the cost budget).
//! * [`validate`]: what admission does to a custom object: apply schema defaults, then check
//!   types, enums, ranges, lengths, patterns, required and unknown fields, then the CEL
//!   rules (evaluated by `kube-cel`, which implements the Kubernetes CEL libraries including
//!   `isIP`/`isCIDR`). Messages follow the apiserver's `path: Invalid value: ...` form.
//!
//! Fidelity gaps: CEL cost is estimated by kube-cel's
//! heuristic, not the apiserver's cost model; transition rules (`oldSelf`) are not exercised
//! (we have none); `metadata` is only checked for presence of a name.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Map, Value};

/// Formats the apiserver validates or at least knows (k8s.io/kube-openapi strfmt).
const KNOWN_FORMATS: &[&str] = &[
    "int32",
    "int64",
    "float",
    "double",
    "byte",
    "binary",
    "date",
    "date-time",
    "duration",
    "password",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uri",
    "email",
    "hostname",
];

/// Keys that may not appear inside `allOf`/`anyOf`/`oneOf`/`not` of a structural schema.
const FORBIDDEN_IN_JUNCTORS: &[&str] = &[
    "type",
    "description",
    "title",
    "default",
    "additionalProperties",
    "nullable",
];

/// The `openAPIV3Schema` of the CRD's only version, as JSON.
pub fn schema_of(crd: &CustomResourceDefinition) -> Value {
    let version = &crd.spec.versions[0];
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    serde_json::to_value(schema).expect("schema serializes")
}

/// Every reason a real apiserver would refuse (or warn about) this CRD.
pub fn structural_problems(crd: &CustomResourceDefinition) -> Vec<String> {
    let mut problems = Vec::new();
    if crd.spec.versions.len() != 1 {
        problems.push("expected exactly one version".to_owned());
    }
    problems.extend(schema_problems(&schema_of(crd)));
    problems
}

/// The structural-schema rules, list-map rules, default validity, known formats and CEL
/// compilation and cost, applied to one `openAPIV3Schema`.
pub fn schema_problems(schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        problems.push("openAPIV3Schema: root type must be object".to_owned());
    }
    walk_structural(schema, "openAPIV3Schema", false, &mut problems);
    if let Some(Value::Object(meta)) = schema.pointer("/properties/metadata/properties") {
        for key in meta.keys().filter(|k| *k != "name" && *k != "generateName") {
            problems.push(format!(
                "metadata.{key}: only name and generateName may be restricted"
            ));
        }
    }
    let compiled = kube_cel::compile_schema(schema);
    for error in compiled_errors(&compiled) {
        problems.push(format!("CEL rule does not compile: {error}"));
    }
    for (path, rule) in cel_rules(schema, "openAPIV3Schema") {
        for warning in kube_cel::estimate_rule_cost(&rule, &compiled) {
            problems.push(format!("{path}: CEL rule {rule:?}: {}", warning.message));
        }
    }
    problems
}

fn compiled_errors(compiled: &kube_cel::CompiledSchema) -> Vec<String> {
    let mut out: Vec<String> = compiled
        .compilation_errors()
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    for child in compiled.properties.values() {
        out.extend(compiled_errors(child));
    }
    if let Some(items) = &compiled.items {
        out.extend(compiled_errors(items));
    }
    out
}

fn cel_rules(schema: &Value, path: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(Value::Array(rules)) = schema.get("x-kubernetes-validations") {
        for rule in rules {
            if let Some(r) = rule.get("rule").and_then(Value::as_str) {
                out.push((path.to_owned(), r.to_owned()));
            }
        }
    }
    for (key, child) in children(schema) {
        out.extend(cel_rules(child, &format!("{path}.{key}")));
    }
    out
}

/// Sub-schemas with the path segment that leads to them.
fn children(schema: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    if let Some(Value::Object(props)) = schema.get("properties") {
        out.extend(props.iter().map(|(k, v)| (format!("properties[{k}]"), v)));
    }
    if let Some(items) = schema.get("items") {
        out.push(("items".to_owned(), items));
    }
    if let Some(additional @ Value::Object(_)) = schema.get("additionalProperties") {
        out.push(("additionalProperties".to_owned(), additional));
    }
    out
}

fn walk_structural(schema: &Value, path: &str, in_junctor: bool, problems: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        problems.push(format!("{path}: must be an object"));
        return;
    };
    if obj.contains_key("$ref") {
        problems.push(format!("{path}.$ref: Forbidden: $ref is not allowed"));
    }
    if obj.get("uniqueItems") == Some(&Value::Bool(true)) {
        problems.push(format!(
            "{path}.uniqueItems: Forbidden: uniqueItems cannot be true"
        ));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        problems.push(format!(
            "{path}: properties and additionalProperties are mutually exclusive"
        ));
    }
    let escapes = [
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
    ]
    .iter()
    .any(|k| obj.get(*k) == Some(&Value::Bool(true)));
    if in_junctor {
        for key in FORBIDDEN_IN_JUNCTORS {
            if obj.contains_key(*key) {
                problems.push(format!("{path}.{key}: Forbidden: must be empty to be structural"));
            }
        }
        for key in obj
            .keys()
            .filter(|k| k.starts_with("x-kubernetes-") && *k != "x-kubernetes-validations")
        {
            problems.push(format!("{path}.{key}: Forbidden: must be empty to be structural"));
        }
    } else if !escapes && obj.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
        problems.push(format!(
            "{path}.type: Required value: must not be empty for specified object fields"
        ));
    }
    if let Some(format) = obj.get("format").and_then(Value::as_str)
        && !KNOWN_FORMATS.contains(&format)
    {
        problems.push(format!(
            "{path}.format: {format:?} is not a format the apiserver recognises"
        ));
    }
    if obj.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
        check_list_map(obj, path, problems);
    }
    if let Some(default) = obj.get("default")
        && let Err(errors) = validate_value(schema, default, path)
    {
        problems.push(format!("{path}.default: invalid default: {}", errors.join("; ")));
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = obj.get(junctor) {
            for (i, branch) in branches.iter().enumerate() {
                walk_structural(branch, &format!("{path}.{junctor}[{i}]"), true, problems);
            }
        }
    }
    if let Some(not) = obj.get("not") {
        walk_structural(not, &format!("{path}.not"), true, problems);
    }
    for (key, child) in children(schema) {
        walk_structural(child, &format!("{path}.{key}"), in_junctor, problems);
    }
}

fn check_list_map(obj: &Map<String, Value>, path: &str, problems: &mut Vec<String>) {
    let keys: Vec<&str> = obj
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if keys.is_empty() {
        problems.push(format!(
            "{path}: x-kubernetes-list-type map needs x-kubernetes-list-map-keys"
        ));
    }
    let items = obj.get("items").cloned().unwrap_or(Value::Null);
    let required: Vec<&str> = items
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for key in keys {
        let has_default = items.pointer(&format!("/properties/{key}/default")).is_some();
        if !required.contains(&key) && !has_default {
            problems.push(format!(
                "{path}: list map key {key:?} must be required or defaulted"
            ));
        }
    }
}

/// Admission of one custom object: defaults, then schema, then CEL. Returns the defaulted
/// object, or every error with the path of the field at fault.
pub fn validate(crd: &CustomResourceDefinition, object: &Value) -> Result<Value, Vec<String>> {
    let schema = schema_of(crd);
    let defaulted = kube_cel::apply_defaults(&schema, object);
    let mut errors = match validate_value(&schema, &defaulted, "") {
        Ok(()) => Vec::new(),
        Err(errors) => errors,
    };
    if errors.is_empty()
        && let Err(cel) = kube_cel::validate(&schema, &defaulted, None)
    {
        errors.extend(
            cel.iter()
                .map(|e| format!("{}: Invalid value: {}", e.field_path, e.message)),
        );
    }
    if errors.is_empty() {
        Ok(defaulted)
    } else {
        Err(errors)
    }
}

fn validate_value(schema: &Value, value: &Value, path: &str) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    check_value(schema, value, path, &mut errors);
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn check_value(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let here = if path.is_empty() { "<root>" } else { path };
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            errors.push(format!("{here}: Invalid value: null: must not be null"));
        }
        return;
    }
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            errors.push(format!(
                "{here}: Invalid value: {value}: must be an integer or a string"
            ));
        }
        return;
    }
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
    let type_ok = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        errors.push(format!("{here}: Invalid value: {value}: must be of type {ty}"));
        return;
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        errors.push(format!(
            "{here}: Unsupported value: {value}: supported values: {}",
            list.join(", ")
        ));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            errors.push(format!(
                "{here}: Invalid value: {value}: should be greater than or equal to {min}"
            ));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            errors.push(format!(
                "{here}: Invalid value: {value}: should be less than or equal to {max}"
            ));
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            errors.push(format!("{here}: Too long: may not be more than {max} bytes"));
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            errors.push(format!(
                "{here}: Invalid value: {value}: should be at least {min} chars long"
            ));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            match regex::Regex::new(pattern) {
                Ok(re) if !re.is_match(s) => errors.push(format!(
                    "{here}: Invalid value: {value}: should match '{pattern}'"
                )),
                Ok(_) => {}
                Err(e) => errors.push(format!(
                    "{here}: schema pattern {pattern:?} does not compile: {e}"
                )),
            }
        }
    }
    if let Some(items) = value.as_array() {
        let n = items.len() as u64;
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && n > max
        {
            errors.push(format!("{here}: Too many: {n}: must have at most {max} items"));
        }
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && n < min
        {
            errors.push(format!(
                "{here}: Invalid value: {n}: must have at least {min} items"
            ));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                check_value(item_schema, item, &format!("{path}[{i}]"), errors);
            }
        }
    }
    if let Some(fields) = value.as_object() {
        if let Some(Value::Array(required)) = schema.get("required") {
            for key in required.iter().filter_map(Value::as_str) {
                if !fields.contains_key(key) {
                    errors.push(format!("{}: Required value", join(path, key)));
                }
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        for (key, field) in fields {
            let child = join(path, key);
            if let Some(prop) = props.and_then(|p| p.get(key)) {
                // `metadata` is the apiserver's, not ours: only its presence matters here.
                if !(path.is_empty() && key == "metadata") {
                    check_value(prop, field, &child, errors);
                }
            } else if let Some(extra @ Value::Object(_)) = additional {
                check_value(extra, field, &child, errors);
            } else if path.is_empty() && (key == "apiVersion" || key == "kind" || key == "metadata") {
            } else if !preserve && additional != Some(&Value::Bool(true)) {
                errors.push(format!("{child}: unknown field {key:?}"));
            }
        }
    }
}
