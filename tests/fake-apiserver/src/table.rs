//! Server-side printing: the `meta.k8s.io/v1` `Table` kubectl asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, built like the apiserver's CRD
//! table convertor (`apiextensions-apiserver/.../tableconvertor`): a `Name` column, then the
//! `additionalPrinterColumns` (or `Age` when there are none). Of a JSONPath with several
//! results only the first is printed; `date` columns become a human duration; a value of the
//! wrong type for an `integer`/`number`/`boolean` column, or a missing one, is `null` (kubectl
//! prints `<none>`). Columns with `priority > 0` are in the Table; kubectl shows them only with
//! `-o wide`.

use serde_json::{Value, json};

use crate::store::{PrinterColumn, ResourceType};

/// Whether the request asks for a Table (the first acceptable type that is a Table, or any).
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
    })
}

fn age_column() -> PrinterColumn {
    PrinterColumn {
        name: "Age".into(),
        type_: "date".into(),
        format: String::new(),
        description: String::new(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".into(),
    }
}

/// `includeObject`: `None`, `Metadata` (the default) or `Object`.
pub fn table(ty: &ResourceType, objects: &[Value], resource_version: Option<String>, include: &str) -> Value {
    let columns = if ty.columns.is_empty() {
        vec![age_column()]
    } else {
        ty.columns.clone()
    };
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"}),
    ];
    for c in &columns {
        let description = if c.description.is_empty() {
            format!(
                "Custom resource definition column (in JSONPath format): {}",
                c.json_path
            )
        } else {
            c.description.clone()
        };
        defs.push(json!({"name": c.name, "type": c.type_, "format": c.format,
                         "description": description, "priority": c.priority}));
    }
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for c in &columns {
                cells.push(cell(c, o, now));
            }
            let mut row = json!({"cells": cells});
            match include {
                "None" => {}
                "Object" => row["object"] = o.clone(),
                _ => {
                    row["object"] = json!({"kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]});
                }
            }
            row
        })
        .collect();
    let mut metadata = json!({});
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = json!(rv);
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
           "columnDefinitions": defs, "rows": rows})
}

fn cell(c: &PrinterColumn, object: &Value, now: jiff::Timestamp) -> Value {
    let Ok(path) = JsonPath::parse(&c.json_path) else {
        return Value::Null;
    };
    let Some(value) = path.find(object).into_iter().next() else {
        return Value::Null;
    };
    match c.type_.as_str() {
        "string" => json!(text(value)),
        "integer" => match value {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map_or(Value::Null, |i| json!(i)),
            _ => Value::Null,
        },
        "number" => match value {
            Value::Number(n) => n.as_f64().map_or(Value::Null, |f| json!(f)),
            _ => Value::Null,
        },
        "boolean" => match value {
            Value::Bool(b) => json!(b),
            _ => Value::Null,
        },
        "date" => match value {
            Value::String(s) => match s.parse::<jiff::Timestamp>() {
                Ok(t) => json!(human_duration(now.duration_since(t).as_secs())),
                Err(_) => json!("<invalid>"),
            },
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

/// How the apiserver's JSONPath printer writes one value: strings raw, scalars as text,
/// objects and lists as compact JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{d}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The JSONPath subset printer columns use: `.a.b`, `['a.b']`, `[*]`, `[n]`, and filters
/// `[?(@.x.y=="v")]` / `!=` / `[?(@.x)]` (existence).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath(Vec<Step>);

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    All,
    Index(i64),
    Filter {
        path: Vec<String>,
        test: Option<(bool, Value)>,
    },
}

impl JsonPath {
    pub fn parse(src: &str) -> Result<Self, String> {
        let src = src.trim();
        let src = src
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or(src);
        let src = src.strip_prefix('$').unwrap_or(src);
        let chars: Vec<char> = src.chars().collect();
        let mut steps = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    let start = i + 1;
                    i = start;
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        i += 1;
                    }
                    let name: String = chars[start..i].iter().collect();
                    if name.is_empty() {
                        return Err(format!("empty field name in {src:?}"));
                    }
                    steps.push(if name == "*" { Step::All } else { Step::Field(name) });
                }
                '[' => {
                    let close = find_close(&chars, i).ok_or_else(|| format!("unclosed [ in {src:?}"))?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    steps.push(bracket(inner.trim())?);
                    i = close + 1;
                }
                c => return Err(format!("unexpected {c:?} in {src:?}")),
            }
        }
        Ok(Self(steps))
    }

    /// Every match, in document order (what the apiserver's `FindResults` returns for one
    /// template node).
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![root];
        for step in &self.0 {
            let mut next = Vec::new();
            for v in current {
                match step {
                    Step::Field(name) => {
                        if let Some(child) = v.get(name.as_str()) {
                            next.push(child);
                        }
                    }
                    Step::All => match v {
                        Value::Array(a) => next.extend(a.iter()),
                        Value::Object(m) => next.extend(m.values()),
                        _ => {}
                    },
                    Step::Index(n) => {
                        if let Value::Array(a) = v {
                            let i = if *n < 0 { a.len() as i64 + n } else { *n };
                            if let Some(child) = usize::try_from(i).ok().and_then(|i| a.get(i)) {
                                next.push(child);
                            }
                        }
                    }
                    Step::Filter { path, test } => {
                        if let Value::Array(a) = v {
                            next.extend(a.iter().filter(|item| {
                                let mut x = Some(*item);
                                for p in path {
                                    x = x.and_then(|x| x.get(p.as_str()));
                                }
                                match (x, test) {
                                    (None, _) => false,
                                    (Some(_), None) => true,
                                    (Some(x), Some((equal, want))) => (x == want) == *equal,
                                }
                            }));
                        }
                    }
                }
            }
            current = next;
        }
        current
    }
}

fn find_close(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, &c) in chars.iter().enumerate().skip(open) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '(') => depth += 1,
            (None, ']' | ')') => {
                depth -= 1;
                if depth == 0 && c == ']' {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn bracket(inner: &str) -> Result<Step, String> {
    if inner == "*" {
        return Ok(Step::All);
    }
    if let Ok(n) = inner.parse::<i64>() {
        return Ok(Step::Index(n));
    }
    if let Some(quoted) = unquote(inner) {
        return Ok(Step::Field(quoted));
    }
    let Some(expr) = inner
        .strip_prefix("?(")
        .and_then(|s| s.strip_suffix(')'))
        .map(str::trim)
    else {
        return Err(format!("unsupported [{inner}]"));
    };
    let (lhs, test) = if let Some((l, r)) = expr.split_once("==") {
        (l.trim(), Some((true, literal(r.trim())?)))
    } else if let Some((l, r)) = expr.split_once("!=") {
        (l.trim(), Some((false, literal(r.trim())?)))
    } else {
        (expr, None)
    };
    let path = lhs
        .strip_prefix("@.")
        .ok_or_else(|| format!("filter must test @.field: {inner}"))?
        .split('.')
        .map(str::to_owned)
        .collect();
    Ok(Step::Filter { path, test })
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return Some(s[1..s.len() - 1].to_owned());
        }
    }
    None
}

fn literal(s: &str) -> Result<Value, String> {
    if let Some(text) = unquote(s) {
        return Ok(json!(text));
    }
    serde_json::from_str(s).map_err(|_| format!("unsupported literal {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(path: &str, v: &Value) -> Option<Value> {
        JsonPath::parse(path)
            .unwrap()
            .find(v)
            .first()
            .map(|v| (*v).clone())
    }

    #[test]
    fn jsonpath_forms_of_our_crds() {
        let o = json!({"spec": {"peers": [{"address": "192.0.2.1"}, {"address": "192.0.2.2"}],
                                "policy": {"name": "p"}},
                       "status": {"conditions": [{"type": "Accepted", "status": "True"},
                                                 {"type": "Ready", "status": "False"}]}});
        assert_eq!(first(".spec.policy.name", &o), Some(json!("p")));
        assert_eq!(
            JsonPath::parse(".spec.peers[*].address").unwrap().find(&o),
            vec![&json!("192.0.2.1"), &json!("192.0.2.2")]
        );
        assert_eq!(first(".spec.peers[1].address", &o), Some(json!("192.0.2.2")));
        assert_eq!(first(".spec.peers[-1].address", &o), Some(json!("192.0.2.2")));
        assert_eq!(
            first(r#".status.conditions[?(@.type=="Ready")].status"#, &o),
            Some(json!("False"))
        );
        assert_eq!(
            first(r#".status.conditions[?(@.type!="Accepted")].type"#, &o),
            Some(json!("Ready"))
        );
        assert_eq!(first(r#".status.conditions[?(@.type=="Gone")].status"#, &o), None);
        assert_eq!(
            first(".metadata['name']", &json!({"metadata": {"name": "n"}})),
            Some(json!("n"))
        );
        assert_eq!(first(".spec.missing.deeper", &o), None);
        assert!(JsonPath::parse(".spec.peers[").is_err());
    }

    #[test]
    fn cells_follow_the_column_type() {
        let col = |t: &str, p: &str| PrinterColumn {
            name: "C".into(),
            type_: t.into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            json_path: p.into(),
        };
        let o = json!({"a": 3, "s": "x", "l": [1, 2], "m": {"k": true}, "t": "2020-01-01T00:00:00Z"});
        let now: jiff::Timestamp = "2020-01-01T00:03:30Z".parse().unwrap();
        assert_eq!(cell(&col("integer", ".a"), &o, now), json!(3));
        assert_eq!(cell(&col("integer", ".s"), &o, now), Value::Null);
        assert_eq!(cell(&col("string", ".a"), &o, now), json!("3"));
        assert_eq!(cell(&col("string", ".l"), &o, now), json!("[1,2]"));
        assert_eq!(cell(&col("string", ".l[*]"), &o, now), json!("1"));
        assert_eq!(cell(&col("boolean", ".m.k"), &o, now), json!(true));
        assert_eq!(cell(&col("date", ".t"), &o, now), json!("3m30s"));
        assert_eq!(cell(&col("string", ".nope"), &o, now), Value::Null);
    }

    #[test]
    fn human_durations_match_the_apiserver() {
        for (s, want) in [
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (10 * 3600, "10h"),
            (50 * 3600, "2d2h"),
            (10 * 86400, "10d"),
            (3 * 365 * 86400, "3y"),
        ] {
            assert_eq!(human_duration(s), want, "{s}");
        }
    }

    #[test]
    fn table_accept_header() {
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json, */*"));
    }
}
