//! The header grammar of snapd's assertions: parsing and formatting.
//!
//! Values are strings, lists or maps only. A string that holds a newline is
//! written as `name:` followed by its lines indented four spaces deeper; a
//! list is `name:` followed by `  - item` lines; a map is `name:` followed by
//! `  key: value` lines in key order. Nested values indent two spaces per
//! level. Empty lists and maps are omitted when formatting.

use std::collections::BTreeMap;

use crate::error::DecodeError;

/// One header value: a string, a list, or a map of values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// A text value (may span several lines).
    String(String),
    /// An ordered list of values.
    List(Vec<HeaderValue>),
    /// A map from header-like names to values, kept in key order.
    Map(BTreeMap<String, HeaderValue>),
}

impl HeaderValue {
    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a list, if it is one.
    pub fn as_list(&self) -> Option<&[HeaderValue]> {
        match self {
            HeaderValue::List(l) => Some(l),
            _ => None,
        }
    }

    /// The value as a map, if it is one.
    pub fn as_map(&self) -> Option<&BTreeMap<String, HeaderValue>> {
        match self {
            HeaderValue::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Whether formatting would omit this value (an empty list or map).
    pub(crate) fn is_omitted(&self) -> bool {
        match self {
            HeaderValue::String(_) => false,
            HeaderValue::List(l) => l.is_empty(),
            HeaderValue::Map(m) => m.is_empty(),
        }
    }
}

impl From<&str> for HeaderValue {
    fn from(s: &str) -> Self {
        HeaderValue::String(s.to_owned())
    }
}

impl From<String> for HeaderValue {
    fn from(s: String) -> Self {
        HeaderValue::String(s)
    }
}

/// Headers in the order they appeared (parsing) or will be written (formatting).
pub type Headers = Vec<(String, HeaderValue)>;

/// Whether `name` is a valid header or map key name: `^[a-z](?:-?[a-z0-9])*$`.
pub fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    let Some(first) = b.first() else {
        return false;
    };
    if !first.is_ascii_lowercase() {
        return false;
    }
    let mut prev_dash = false;
    for &c in &b[1..] {
        match c {
            b'-' if prev_dash => return false,
            b'-' => prev_dash = true,
            b'a'..=b'z' | b'0'..=b'9' => prev_dash = false,
            _ => return false,
        }
    }
    !prev_dash
}

const COMMON_PREFIX: usize = 2;
const MULTILINE_PREFIX: usize = 4;
/// Deep nesting would let a small input recurse without bound.
const MAX_DEPTH: usize = 32;

/// Parses a header block (the bytes before the first blank line).
pub(crate) fn parse(head: &[u8]) -> Result<Headers, DecodeError> {
    let text = std::str::from_utf8(head).map_err(|_| DecodeError::HeadersNotUtf8)?;
    let lines: Vec<&str> = text.split('\n').collect();
    let mut headers: Headers = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let entry = lines[i];
        let split = entry
            .find(':')
            .ok_or_else(|| DecodeError::MissingColon(entry.to_owned()))?;
        let name = &entry[..split];
        if !is_valid_name(name) {
            return Err(DecodeError::InvalidHeaderName(name.to_owned()));
        }
        let (value, next) = parse_entry(split + 1, i, &lines, 0, 0)?;
        if headers.iter().any(|(n, _)| n == name) {
            return Err(DecodeError::RepeatedHeader(name.to_owned()));
        }
        headers.push((name.to_owned(), value));
        i = next;
    }
    Ok(headers)
}

fn spaces_then(line: &str, indent: usize) -> Option<&str> {
    let b = line.as_bytes();
    if b.len() >= indent && b[..indent].iter().all(|&c| c == b' ') {
        Some(&line[indent..])
    } else {
        None
    }
}

fn parse_entry(
    consumed: usize,
    first: usize,
    lines: &[&str],
    base_indent: usize,
    depth: usize,
) -> Result<(HeaderValue, usize), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let entry = lines[first];
    let i = first + 1;
    if consumed == entry.len() {
        if let Some(rest) = lines
            .get(i)
            .and_then(|l| spaces_then(l, base_indent + COMMON_PREFIX))
        {
            if rest.starts_with('-') {
                return parse_list(i, lines, base_indent, depth);
            }
            if rest.as_bytes().first().is_some_and(|&c| c != b' ') {
                return parse_map(i, lines, base_indent, depth);
            }
        }
        return parse_multiline(i, lines, base_indent);
    }
    if entry.as_bytes()[consumed] != b' ' {
        return Err(DecodeError::MissingSpace(entry.to_owned()));
    }
    Ok((HeaderValue::String(entry[consumed + 1..].to_owned()), i))
}

fn parse_multiline(
    first: usize,
    lines: &[&str],
    base_indent: usize,
) -> Result<(HeaderValue, usize), DecodeError> {
    let indent = base_indent + MULTILINE_PREFIX;
    let mut j = first;
    let mut parts = Vec::new();
    while let Some(rest) = lines.get(j).and_then(|l| spaces_then(l, indent)) {
        parts.push(rest);
        j += 1;
    }
    if parts.is_empty() {
        return Err(DecodeError::ExpectedIndent {
            intro: lines[first - 1].to_owned(),
            indent,
        });
    }
    Ok((HeaderValue::String(parts.join("\n")), j))
}

fn parse_list(
    first: usize,
    lines: &[&str],
    base_indent: usize,
    depth: usize,
) -> Result<(HeaderValue, usize), DecodeError> {
    let mut items = Vec::new();
    let mut j = first;
    let prefix = base_indent + COMMON_PREFIX;
    while j < lines.len() {
        match spaces_then(lines[j], prefix) {
            Some(rest) if rest.starts_with('-') => {}
            _ => break,
        }
        let (v, next) = parse_entry(prefix + 1, j, lines, base_indent + COMMON_PREFIX, depth + 1)?;
        items.push(v);
        j = next;
    }
    Ok((HeaderValue::List(items), j))
}

fn parse_map(
    first: usize,
    lines: &[&str],
    base_indent: usize,
    depth: usize,
) -> Result<(HeaderValue, usize), DecodeError> {
    let mut map = BTreeMap::new();
    let mut j = first;
    let prefix = base_indent + COMMON_PREFIX;
    while j < lines.len() {
        let Some(entry) = spaces_then(lines[j], prefix) else {
            break;
        };
        let split = entry
            .find(':')
            .ok_or_else(|| DecodeError::MissingColon(entry.to_owned()))?;
        let key = &entry[..split];
        if !is_valid_name(key) {
            return Err(DecodeError::InvalidMapKey(key.to_owned()));
        }
        let (v, next) = parse_entry(prefix + split + 1, j, lines, prefix, depth + 1)?;
        if map.insert(key.to_owned(), v).is_some() {
            return Err(DecodeError::RepeatedMapKey(key.to_owned()));
        }
        j = next;
    }
    Ok((HeaderValue::Map(map), j))
}

/// Appends `\n` + the entry introduced by `intro` (e.g. `name:`), snapd style.
pub(crate) fn append_entry(out: &mut String, intro: &str, value: &HeaderValue, base_indent: usize) {
    match value {
        HeaderValue::String(s) => {
            out.push('\n');
            out.push_str(intro);
            if s.contains('\n') {
                let pfx = " ".repeat(base_indent + MULTILINE_PREFIX);
                out.push('\n');
                out.push_str(&pfx);
                out.push_str(&s.replace('\n', &format!("\n{pfx}")));
            } else {
                out.push(' ');
                out.push_str(s);
            }
        }
        HeaderValue::List(items) => {
            if items.is_empty() {
                return;
            }
            out.push('\n');
            out.push_str(intro);
            let pfx = format!("{}-", " ".repeat(base_indent + COMMON_PREFIX));
            for item in items {
                append_entry(out, &pfx, item, base_indent + COMMON_PREFIX);
            }
        }
        HeaderValue::Map(map) => {
            if map.is_empty() {
                return;
            }
            out.push('\n');
            out.push_str(intro);
            let pfx = " ".repeat(base_indent + COMMON_PREFIX);
            for (k, v) in map {
                append_entry(out, &format!("{pfx}{k}:"), v, pfx.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> HeaderValue {
        HeaderValue::String(v.into())
    }

    fn roundtrip(text: &str) -> Headers {
        let h = parse(text.as_bytes()).unwrap();
        let mut out = String::new();
        for (n, v) in &h {
            append_entry(&mut out, &format!("{n}:"), v, 0);
        }
        assert_eq!(&out[1..], text, "format(parse(x)) != x");
        h
    }

    #[test]
    fn names() {
        for ok in ["a", "type", "sign-key-sha3-384", "a1-b2"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "A", "1a", "a--b", "a-", "-a", "a_b", "é"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn simple_and_multiline() {
        let h = roundtrip("type: model\ntext:\n    line one\n    \n    line three\nempty: ");
        assert_eq!(h[0], ("type".into(), s("model")));
        assert_eq!(h[1].1, s("line one\n\nline three"));
        assert_eq!(h[2].1, s(""));
    }

    #[test]
    fn lists_maps_and_lists_of_maps() {
        let h = roundtrip(
            "l:\n  - a\n  - b\nm:\n  k1: v1\n  k2:\n    - x\nlm:\n  -\n    id: 1\n    name: pc\n  -\n    name: k\n    sub:\n      deep: v\nml:\n  -\n    - nested",
        );
        assert_eq!(h[0].1, HeaderValue::List(vec![s("a"), s("b")]));
        let m = h[1].1.as_map().unwrap();
        assert_eq!(m["k2"], HeaderValue::List(vec![s("x")]));
        let lm = h[2].1.as_list().unwrap();
        assert_eq!(
            lm[1].as_map().unwrap()["sub"].as_map().unwrap()["deep"],
            s("v")
        );
        assert_eq!(
            h[3].1,
            HeaderValue::List(vec![HeaderValue::List(vec![s("nested")])])
        );
    }

    #[test]
    fn multiline_inside_list() {
        roundtrip("l:\n  -\n      two\n      lines\n  - one");
    }

    #[test]
    fn errors() {
        type Check = fn(&DecodeError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("type model", |e| matches!(e, DecodeError::MissingColon(_))),
            ("Type: x", |e| {
                matches!(e, DecodeError::InvalidHeaderName(_))
            }),
            ("a:b", |e| matches!(e, DecodeError::MissingSpace(_))),
            ("a: 1\na: 2", |e| {
                matches!(e, DecodeError::RepeatedHeader(_))
            }),
            ("a:", |e| matches!(e, DecodeError::ExpectedIndent { .. })),
            ("a:\n  k: 1\n  k: 2", |e| {
                matches!(e, DecodeError::RepeatedMapKey(_))
            }),
            ("a:\n  K: 1", |e| matches!(e, DecodeError::InvalidMapKey(_))),
        ];
        for (text, check) in cases {
            let err = parse(text.as_bytes()).unwrap_err();
            assert!(check(&err), "{text:?} gave {err:?}");
        }
        assert!(matches!(
            parse(b"a: \xff").unwrap_err(),
            DecodeError::HeadersNotUtf8
        ));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut text = String::from("a:");
        for level in 0..40 {
            text.push('\n');
            text.push_str(&" ".repeat(2 + 2 * level));
            text.push('-');
        }
        text.push_str(" x");
        assert!(matches!(
            parse(text.as_bytes()).unwrap_err(),
            DecodeError::TooDeep
        ));
    }
}
