//! Fault injection: rules matched against each API request (method, a substring of the path,
//! watch or not, client identity), each with an action and an optional number of uses.

use serde_json::{Value, json};

/// What a matching request gets instead of (or before) its normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// A `Status` failure like the apiserver's, with `Retry-After` when given.
    Status {
        code: u16,
        retry_after_seconds: Option<u64>,
    },
    /// The normal answer, `ms` later.
    Delay { ms: u64 },
    /// Read the request, never answer; the connection is closed when the rule is cleared or
    /// the API is stopped.
    Silent,
    /// Watch only: send this many events, then cut the connection.
    CutAfterEvents(u64),
    /// Watch only: an `ERROR` event with a 410 `Expired` Status.
    Gone,
}

impl FaultAction {
    /// Actions that only make sense on a watch never match other requests.
    pub fn watch_only(&self) -> bool {
        matches!(self, Self::CutAfterEvents(_) | Self::Gone)
    }
}

/// One rule. `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub method: Option<String>,
    pub path: Option<String>,
    pub watch: Option<bool>,
    pub client: Option<String>,
    /// Uses left; `None` = until cleared.
    pub times: Option<u64>,
    pub action: FaultAction,
}

impl Fault {
    /// A rule for every request, until cleared.
    pub fn any(action: FaultAction) -> Self {
        Self {
            method: None,
            path: None,
            watch: None,
            client: None,
            times: None,
            action,
        }
    }

    /// Parses the admin API's JSON form.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let opt_str = |key: &str| -> Result<Option<String>, String> {
            match &v[key] {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                other => Err(format!("{key}: expected a string or null, got {other}")),
            }
        };
        let method = opt_str("method")?.map(|m| m.to_uppercase());
        if let Some(m) = &method
            && !["GET", "PUT", "PATCH", "POST", "DELETE"].contains(&m.as_str())
        {
            return Err(format!("method: {m} is not one of GET, PUT, PATCH, POST, DELETE"));
        }
        let watch = match &v["watch"] {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            other => return Err(format!("watch: expected a boolean or null, got {other}")),
        };
        let times = match &v["times"] {
            Value::Null => None,
            other => Some(
                other
                    .as_u64()
                    .ok_or_else(|| format!("times: expected a count or null, got {other}"))?,
            ),
        };
        let a = &v["action"];
        let count = |key: &str| {
            a[key]
                .as_u64()
                .ok_or_else(|| format!("action.{key}: expected a non-negative integer"))
        };
        let action = if !a["status"].is_null() {
            let code = count("status")?;
            let code = u16::try_from(code)
                .ok()
                .filter(|c| (400..600).contains(c))
                .ok_or_else(|| format!("action.status: {code} is not an HTTP error code"))?;
            let retry_after_seconds = match &a["retryAfterSeconds"] {
                Value::Null => None,
                _ => Some(count("retryAfterSeconds")?),
            };
            FaultAction::Status {
                code,
                retry_after_seconds,
            }
        } else if !a["delayMs"].is_null() {
            FaultAction::Delay {
                ms: count("delayMs")?,
            }
        } else if a["silent"] == true {
            FaultAction::Silent
        } else if !a["cutAfterEvents"].is_null() {
            FaultAction::CutAfterEvents(count("cutAfterEvents")?)
        } else if a["gone"] == true {
            FaultAction::Gone
        } else {
            return Err(format!(
                "action: expected one of status, delayMs, silent, cutAfterEvents, gone; got {a}"
            ));
        };
        Ok(Self {
            method,
            path: opt_str("path")?,
            watch,
            client: opt_str("client")?,
            times,
            action,
        })
    }

    pub fn to_json(&self) -> Value {
        let action = match &self.action {
            FaultAction::Status {
                code,
                retry_after_seconds,
            } => {
                let mut a = json!({"status": code});
                if let Some(s) = retry_after_seconds {
                    a["retryAfterSeconds"] = json!(s);
                }
                a
            }
            FaultAction::Delay { ms } => json!({"delayMs": ms}),
            FaultAction::Silent => json!({"silent": true}),
            FaultAction::CutAfterEvents(n) => json!({"cutAfterEvents": n}),
            FaultAction::Gone => json!({"gone": true}),
        };
        json!({"method": self.method, "path": self.path, "watch": self.watch,
               "client": self.client, "times": self.times, "action": action})
    }

    fn matches(&self, method: &str, path: &str, watch: bool, client: &str) -> bool {
        self.times != Some(0)
            && self.method.as_deref().is_none_or(|m| m == method)
            && self.path.as_deref().is_none_or(|p| path.contains(p))
            && self.watch.is_none_or(|w| w == watch)
            && self.client.as_deref().is_none_or(|c| c == client)
            && (watch || !self.action.watch_only())
    }
}

/// The rules in force, in the order they were added. A rule whose uses ran out stays listed
/// (with `times: 0`) until cleared, so a silent request it caught stays silent until then.
#[derive(Debug, Default)]
pub struct Faults {
    next_id: u64,
    rules: Vec<(u64, Fault)>,
}

impl Faults {
    pub fn add(&mut self, fault: Fault) -> u64 {
        self.next_id += 1;
        self.rules.push((self.next_id, fault));
        self.next_id
    }

    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.rules.len();
        self.rules.retain(|(i, _)| *i != id);
        self.rules.len() != before
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn contains(&self, id: u64) -> bool {
        self.rules.iter().any(|(i, _)| *i == id)
    }

    pub fn list(&self) -> Vec<(u64, Fault)> {
        self.rules.clone()
    }

    /// The first rule matching the request, with one use taken.
    pub fn take(
        &mut self,
        method: &str,
        path: &str,
        watch: bool,
        client: &str,
    ) -> Option<(u64, FaultAction)> {
        let (id, rule) = self
            .rules
            .iter_mut()
            .find(|(_, r)| r.matches(method, path, watch, client))?;
        if let Some(t) = rule.times.as_mut() {
            *t -= 1;
        }
        Some((*id, rule.action.clone()))
    }
}

/// The apiserver's reason for an error code.
pub fn reason(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Gone",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}

/// The Status body of an injected error.
pub fn status(code: u16, retry_after_seconds: Option<u64>) -> Value {
    let message = match code {
        409 => "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again (injected)".to_owned(),
        429 => "the server has received too many requests and has asked us to try again later (injected)".to_owned(),
        500 => "an error on the server has prevented the request from succeeding (injected)".to_owned(),
        503 => "the server is currently unable to handle the request (injected)".to_owned(),
        _ => format!("injected failure {code}"),
    };
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": message, "reason": reason(code), "code": code});
    if let Some(secs) = retry_after_seconds {
        s["details"] = json!({"retryAfterSeconds": secs});
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_count_down_and_stay_listed() {
        let mut faults = Faults::default();
        let id = faults.add(
            Fault::from_json(&json!({"method": "patch", "path": "/bgpnodeintents/", "times": 2,
                                     "action": {"status": 429, "retryAfterSeconds": 3}}))
            .unwrap(),
        );
        assert_eq!(faults.take("GET", "/apis/x/bgpnodeintents/a", false, ""), None);
        let hit = Some((
            id,
            FaultAction::Status {
                code: 429,
                retry_after_seconds: Some(3),
            },
        ));
        assert_eq!(faults.take("PATCH", "/apis/x/bgpnodeintents/a", false, ""), hit);
        assert_eq!(faults.take("PATCH", "/apis/x/bgpnodeintents/b", false, "c"), hit);
        assert_eq!(faults.take("PATCH", "/apis/x/bgpnodeintents/a", false, ""), None);
        assert!(faults.contains(id));
        assert_eq!(faults.list()[0].1.times, Some(0));
        assert!(faults.remove(id));
        assert!(!faults.contains(id));
    }

    #[test]
    fn watch_only_actions_skip_other_requests() {
        let mut faults = Faults::default();
        let id = faults.add(Fault::any(FaultAction::Gone));
        assert_eq!(faults.take("GET", "/api/v1/nodes", false, ""), None);
        assert_eq!(
            faults.take("GET", "/api/v1/nodes", true, ""),
            Some((id, FaultAction::Gone))
        );
        let only_b = Fault {
            client: Some("b".into()),
            ..Fault::any(FaultAction::Silent)
        };
        let id = faults.add(only_b);
        assert_eq!(faults.take("POST", "/api/v1/nodes", false, "a"), None);
        assert_eq!(
            faults.take("POST", "/api/v1/nodes", false, "b"),
            Some((id, FaultAction::Silent))
        );
    }

    #[test]
    fn the_json_form_round_trips_and_is_checked() {
        for v in [
            json!({"method": "PUT", "path": "/leases/", "watch": false, "client": "a", "times": 1,
                   "action": {"status": 503}}),
            json!({"method": null, "path": null, "watch": true, "client": null, "times": null,
                   "action": {"cutAfterEvents": 2}}),
            json!({"method": null, "path": null, "watch": null, "client": null, "times": null,
                   "action": {"delayMs": 1500}}),
        ] {
            assert_eq!(Fault::from_json(&v).unwrap().to_json(), v);
        }
        assert!(Fault::from_json(&json!({"action": {"status": 200}})).is_err());
        assert!(Fault::from_json(&json!({"action": {}})).is_err());
        assert!(Fault::from_json(&json!({"method": "BREW", "action": {"silent": true}})).is_err());
        let s = status(429, Some(7));
        assert_eq!(s["reason"], "TooManyRequests");
        assert_eq!(s["details"]["retryAfterSeconds"], 7);
    }
}
