//! The one error type every conversion into the domain returns.
//!
//! A [`FieldError`] names the field (a JSON path such as `spec.bgpPeers[1].asn`), the rule
//! that was broken, and the offending value when it is safe to show. Values of secret fields
//! are never stored here: callers pass `None` for them.

use std::fmt;

/// A value that broke a rule, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    /// JSON path of the field, e.g. `spec.bgpPeers[0].asn`.
    pub field: String,
    /// The rule, phrased so that "field: rule" reads as a sentence.
    pub rule: String,
    /// The rejected value, rendered for humans (never a secret).
    pub value: Option<String>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
            value: None,
        }
    }

    pub fn with_value(mut self, value: impl fmt::Display) -> Self {
        self.value = Some(value.to_string());
        self
    }

    /// Re-roots an error produced for a sub-object: `asn` under `spec.bgpPeers[2]`.
    pub fn under(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)?;
        if let Some(value) = &self.value {
            write!(f, " (got {value})")?;
        }
        Ok(())
    }
}

/// Several field errors at once, so a user sees every problem of a manifest in one pass.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Runs `f`, keeping its value on success and recording its error otherwise.
    pub fn collect<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.0.push(error);
                None
            }
        }
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, FieldErrors> {
        if self.0.is_empty() { Ok(value()) } else { Err(self) }
    }
}

impl From<FieldError> for FieldErrors {
    fn from(error: FieldError) -> Self {
        Self(vec![error])
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_field_rule_and_value() {
        let e = FieldError::new("asn", "must not be 0")
            .with_value(0)
            .under("spec.bgpPeers[1]");
        assert_eq!(e.to_string(), "spec.bgpPeers[1].asn: must not be 0 (got 0)");
    }

    #[test]
    fn under_index() {
        let e = FieldError::new("[3]", "bad").under("spec.bgpPeers");
        assert_eq!(e.field, "spec.bgpPeers[3]");
    }
}
