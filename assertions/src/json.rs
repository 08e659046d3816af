//! Assertion headers from JSON, with the rules of `snap sign`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::SignError;
use crate::headers::{HeaderValue, Headers};
use crate::kinds;

/// Headers and optional body read from a JSON object, as `snap sign` reads its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStatement {
    /// The headers, in the JSON's order.
    pub headers: Headers,
    /// The `body` member, if given.
    pub body: Option<Vec<u8>>,
}

impl JsonStatement {
    /// Parses JSON: an object whose scalars are all strings, with a known `type`.
    pub fn parse(input: &[u8]) -> Result<Self, SignError> {
        let value: Value = serde_json::from_slice(input).map_err(|e| {
            SignError::Json(format!("cannot parse the assertion input as JSON: {e}"))
        })?;
        let Value::Object(obj) = value else {
            return Err(SignError::Json(
                "cannot parse the assertion input as JSON: expected an object of headers".into(),
            ));
        };
        match obj.get("type") {
            None => return Err(SignError::Json("missing assertion type header".into())),
            Some(Value::String(t)) if kinds::lookup(t).is_none() => {
                return Err(SignError::Json(format!("invalid assertion type: {t}")))
            }
            Some(Value::String(_)) => {}
            Some(other) => {
                return Err(SignError::Json(format!(
                    "assertion type must be a string, not: {other}"
                )))
            }
        }
        let mut headers = Vec::with_capacity(obj.len());
        let mut body = None;
        for (name, v) in obj {
            if name == "body" {
                match v {
                    Value::String(s) => body = Some(s.into_bytes()),
                    _ => return Err(SignError::Json("body if specified must be a string".into())),
                }
                continue;
            }
            let value = to_header(&v).map_err(|bad| {
                SignError::Json(format!(
                    "header {name:?}: header values must be strings or nested lists or maps with strings as the only scalars: {bad}"
                ))
            })?;
            headers.push((name, value));
        }
        Ok(JsonStatement { headers, body })
    }

    /// Sets a header unless it is already present.
    pub fn set_default(&mut self, name: &str, value: &str) {
        if !self.headers.iter().any(|(n, _)| n == name) {
            self.headers.push((name.to_owned(), value.into()));
        }
    }

    /// Sets a header, replacing any value it had.
    pub fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.to_owned(), value.into()));
    }
}

fn to_header(v: &Value) -> Result<HeaderValue, String> {
    match v {
        Value::String(s) => Ok(HeaderValue::String(s.clone())),
        Value::Array(items) => items
            .iter()
            .map(to_header)
            .collect::<Result<_, _>>()
            .map(HeaderValue::List),
        Value::Object(obj) => {
            let mut m = BTreeMap::new();
            for (k, v) in obj {
                m.insert(k.clone(), to_header(v)?);
            }
            Ok(HeaderValue::Map(m))
        }
        other => Err(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> String {
        JsonStatement::parse(input.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn keeps_order_and_body() {
        let s =
            JsonStatement::parse(br#"{"type":"model","b":"1","a":["x",{"k":"v"}],"body":"hi"}"#)
                .unwrap();
        let names: Vec<_> = s.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["type", "b", "a"]);
        assert_eq!(s.body.as_deref(), Some(&b"hi"[..]));
    }

    #[test]
    fn snap_sign_rules() {
        assert!(err(r#"{"type":"model","series":16}"#)
            .contains("header \"series\": header values must be strings"));
        assert!(err(r#"{"type":"model","x":[true]}"#).contains("true"));
        assert!(err(r#"{"type":"model","x":null}"#).contains("null"));
        assert_eq!(err(r#"{"series":"16"}"#), "missing assertion type header");
        assert_eq!(err(r#"{"type":"modle"}"#), "invalid assertion type: modle");
        assert!(err(r#"{"type":1}"#).contains("must be a string"));
        assert!(err(r#"{"type":"model","body":{}}"#).contains("body if specified"));
        assert!(err("[1]").contains("expected an object"));
        assert!(err("{").contains("cannot parse"));
    }
}
