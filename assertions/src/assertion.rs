//! One assertion: `HEADERS "\n\n" [BODY "\n\n"] SIGNATURE`, kept as the
//! exact bytes it arrived as, so that verification checks what was received.

use base64::Engine;

use crate::error::{DecodeError, HeaderError, SignError};
use crate::headers::{self, HeaderValue, Headers};
use crate::keys::PrivateKey;
use crate::kinds::{self, AssertionType};
use crate::time::Timestamp;
use crate::typed;

/// Largest body snapd accepts.
pub const MAX_BODY_SIZE: usize = 2 * 1024 * 1024;
/// Largest header block snapd accepts.
pub const MAX_HEADERS_SIZE: usize = 128 * 1024;
/// Largest signature block snapd accepts.
pub const MAX_SIGNATURE_SIZE: usize = 128 * 1024;

const NLNL: &[u8] = b"\n\n";

/// A decoded, well-formed, not yet verified assertion.
#[derive(Clone, Debug)]
pub struct Assertion {
    kind: &'static AssertionType,
    headers: Headers,
    /// The whole assertion as received: content, a blank line, the signature.
    raw: Vec<u8>,
    content_len: usize,
    body_start: Option<usize>,
}

impl Assertion {
    /// Decodes exactly one assertion, as snapd's `asserts.Decode` does: the
    /// signature is everything after the last blank line.
    pub fn decode(bytes: &[u8]) -> Result<Assertion, DecodeError> {
        let split = rfind(bytes, NLNL).ok_or(DecodeError::MissingSignatureSeparator)?;
        let content = &bytes[..split];
        let (head, body_start) = match find(content, NLNL) {
            Some(i) => (&content[..i], Some(i + 2)),
            None => (content, None),
        };
        if head.len() > MAX_HEADERS_SIZE {
            return Err(DecodeError::TooLarge {
                part: "headers",
                size: head.len(),
                max: MAX_HEADERS_SIZE,
            });
        }
        let signature_len = bytes.len() - split - 2;
        if signature_len > MAX_SIGNATURE_SIZE {
            return Err(DecodeError::TooLarge {
                part: "signature",
                size: signature_len,
                max: MAX_SIGNATURE_SIZE,
            });
        }
        let headers = headers::parse(head)?;
        Self::assemble(headers, bytes.to_vec(), split, body_start)
    }

    /// Decodes every assertion in a stream: assertions separated by blank
    /// lines, extra newlines allowed between them and at the end, as snapd's
    /// `asserts.Decoder` reads files.
    pub fn decode_all(mut bytes: &[u8]) -> Result<Vec<Assertion>, DecodeError> {
        let mut out = Vec::new();
        loop {
            let skip = bytes.iter().take_while(|&&c| c == b'\n').count();
            bytes = &bytes[skip..];
            if bytes.is_empty() {
                return Ok(out);
            }
            let (one, rest) = split_one(bytes)?;
            out.push(Assertion::decode(one)?);
            bytes = rest;
        }
    }

    fn assemble(
        headers: Headers,
        raw: Vec<u8>,
        content_len: usize,
        body_start: Option<usize>,
    ) -> Result<Assertion, DecodeError> {
        let body_len = body_start.map_or(0, |s| content_len - s);
        let declared = match find_header(&headers, "body-length") {
            None => 0,
            Some(v) => parse_int("body-length", v)? as usize,
        };
        if declared != body_len {
            return Err(DecodeError::BodyLengthMismatch {
                actual: body_len,
                declared,
            });
        }
        if body_len > MAX_BODY_SIZE {
            return Err(DecodeError::TooLarge {
                part: "body",
                size: body_len,
                max: MAX_BODY_SIZE,
            });
        }
        if let Some(s) = body_start {
            if std::str::from_utf8(&raw[s..content_len]).is_err() {
                return Err(DecodeError::BodyNotUtf8);
            }
        }
        if raw.len() == content_len + 2 {
            return Err(DecodeError::EmptySignature);
        }
        let sign_key = not_empty_string(&headers, "sign-key-sha3-384")?;
        check_key_id("sign-key-sha3-384", sign_key)?;
        let type_name = not_empty_string(&headers, "type")?;
        let kind = kinds::lookup(type_name)
            .ok_or_else(|| HeaderError::UnknownType(type_name.to_owned()))?;
        if kind.has_authority {
            not_empty_string(&headers, "authority-id")?;
        } else if find_header(&headers, "authority-id").is_some() {
            return Err(HeaderError::Authority(format!(
                "{:?} assertion cannot have authority-id set",
                kind.name
            ))
            .into());
        }
        if let Some(v) = find_header(&headers, "format") {
            parse_int("format", v)?;
        }
        if let Some(v) = find_header(&headers, "revision") {
            parse_int("revision", v)?;
        }
        for key in kind.primary_key {
            let v = not_empty_string(&headers, key)?;
            if v.contains('/') {
                return Err(
                    HeaderError::invalid(key, "primary key header cannot contain '/'").into(),
                );
            }
        }
        let a = Assertion {
            kind,
            headers,
            raw,
            content_len,
            body_start,
        };
        typed::check(&a)?;
        Ok(a)
    }

    /// The assertion's type.
    pub fn kind(&self) -> &'static AssertionType {
        self.kind
    }

    /// The `type` header.
    pub fn type_name(&self) -> &'static str {
        self.kind.name
    }

    /// All headers, in the order they appear.
    pub fn headers(&self) -> &[(String, HeaderValue)] {
        &self.headers
    }

    /// One header's value.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        find_header(&self.headers, name)
    }

    /// One header's value if it is a string.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }

    /// The signer's account (`authority-id`); empty for self-signed requests.
    pub fn authority_id(&self) -> &str {
        self.header_str("authority-id").unwrap_or("")
    }

    /// The id of the key that signed this (`sign-key-sha3-384`).
    pub fn sign_key_id(&self) -> &str {
        self.header_str("sign-key-sha3-384").unwrap_or("")
    }

    /// The `revision` header (0 when absent).
    pub fn revision(&self) -> u64 {
        self.header_str("revision")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    }

    /// The values of the primary-key headers, in their declared order.
    pub fn primary_key(&self) -> Vec<&str> {
        self.kind
            .primary_key
            .iter()
            .map(|k| self.header_str(k).unwrap_or(""))
            .collect()
    }

    /// The body (empty when there is none).
    pub fn body(&self) -> &[u8] {
        match self.body_start {
            Some(s) => &self.raw[s..self.content_len],
            None => &[],
        }
    }

    /// The signed bytes exactly as received: everything before the final blank line.
    pub fn signed_content(&self) -> &[u8] {
        &self.raw[..self.content_len]
    }

    /// The signature block as received (base64 text).
    pub fn signature_text(&self) -> &[u8] {
        &self.raw[self.content_len + 2..]
    }

    /// The signature block decoded from base64.
    pub fn signature_bytes(&self) -> Result<Vec<u8>, DecodeError> {
        let compact: Vec<u8> = self
            .signature_text()
            .iter()
            .copied()
            .filter(|c| !matches!(c, b'\n' | b'\r'))
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|_| DecodeError::Header(HeaderError::invalid("signature", "not valid base64")))
    }

    /// The time the assertion speaks for: `timestamp`, else `since`.
    pub fn time(&self) -> Option<Timestamp> {
        self.header_str("timestamp")
            .or_else(|| self.header_str("since"))
            .and_then(Timestamp::parse)
    }

    /// The assertion's bytes; for a decoded assertion, exactly those decoded.
    pub fn encode(&self) -> &[u8] {
        &self.raw
    }
}

/// Signs `headers` (and `body`) as an assertion of their `type`, with snapd's
/// header order (see [`format_content`]).
pub fn sign(
    headers: &[(String, HeaderValue)],
    body: Option<&[u8]>,
    key: &PrivateKey,
    created: Timestamp,
) -> Result<Assertion, SignError> {
    let content = format_content(headers, body, &key.public_key().id())?;
    let created = u32::try_from(created.unix())
        .map_err(|_| SignError::Key("signature time out of OpenPGP's range".into()))?;
    let signature = key
        .sign(&content, created)
        .map_err(|e| SignError::Key(e.to_string()))?;
    let mut raw = content;
    raw.extend_from_slice(NLNL);
    raw.extend_from_slice(base64_wrapped(&signature).as_bytes());
    Ok(Assertion::decode(&raw)?)
}

/// The bytes to sign for `headers` and `body` with key `key_id`, in snapd's
/// order: `type`, `format` (if > 0), `authority-id`, `revision` (if > 0),
/// primary keys, the rest sorted by name, `body-length` (if there is a body),
/// `sign-key-sha3-384`; empty lists and maps omitted.
pub fn format_content(
    headers: &[(String, HeaderValue)],
    body: Option<&[u8]>,
    key_id: &str,
) -> Result<Vec<u8>, HeaderError> {
    for (i, (name, _)) in headers.iter().enumerate() {
        if !headers::is_valid_name(name) {
            return Err(HeaderError::invalid(name, "not a valid header name"));
        }
        if headers[..i].iter().any(|(n, _)| n == name) {
            return Err(HeaderError::invalid(name, "given twice"));
        }
    }
    let type_name = not_empty_string(headers, "type")?;
    let kind =
        kinds::lookup(type_name).ok_or_else(|| HeaderError::UnknownType(type_name.to_owned()))?;
    let body = body.filter(|b| !b.is_empty());

    let mut out = format!("type: {}", kind.name);
    let format = match find_header(headers, "format") {
        Some(v) => parse_int("format", v)?,
        None => 0,
    };
    if format > 0 {
        out.push_str(&format!("\nformat: {format}"));
    }
    if kind.has_authority {
        let authority = not_empty_string(headers, "authority-id")?;
        headers::append_entry(&mut out, "authority-id:", &authority.into(), 0);
    } else if find_header(headers, "authority-id").is_some() {
        return Err(HeaderError::Authority(format!(
            "{:?} assertion cannot have authority-id set",
            kind.name
        )));
    }
    let revision = match find_header(headers, "revision") {
        Some(v) => parse_int("revision", v)?,
        None => 0,
    };
    if revision > 0 {
        out.push_str(&format!("\nrevision: {revision}"));
    }
    for pk in kind.primary_key {
        let v = find_header(headers, pk).ok_or_else(|| HeaderError::Missing((*pk).to_owned()))?;
        headers::append_entry(&mut out, &format!("{pk}:"), v, 0);
    }
    const FIXED: &[&str] = &[
        "type",
        "format",
        "authority-id",
        "revision",
        "body-length",
        "sign-key-sha3-384",
    ];
    let mut rest: Vec<&(String, HeaderValue)> = headers
        .iter()
        .filter(|(n, _)| !FIXED.contains(&n.as_str()) && !kind.primary_key.contains(&n.as_str()))
        .collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in rest {
        if !value.is_omitted() {
            headers::append_entry(&mut out, &format!("{name}:"), value, 0);
        }
    }
    if let Some(b) = body {
        out.push_str(&format!("\nbody-length: {}", b.len()));
    }
    out.push_str("\nsign-key-sha3-384: ");
    out.push_str(key_id);
    let mut content = out.into_bytes();
    if let Some(b) = body {
        content.extend_from_slice(NLNL);
        content.extend_from_slice(b);
    }
    Ok(content)
}

/// Base64 in 76-column lines joined by `\n`, no trailing newline, as snapd writes keys and signatures.
pub(crate) fn base64_wrapped(bytes: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(text.len() + text.len() / 76);
    for (i, chunk) in text.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
    out
}

/// Splits the first assertion off a stream (no leading newlines), the way
/// snapd's stream decoder finds its end: headers to a blank line, the body by
/// `body-length`, the signature to the next blank line or the end.
fn split_one(bytes: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let head_end = match find(bytes, NLNL) {
        Some(i) => i,
        None if bytes.len() > MAX_HEADERS_SIZE => {
            return Err(DecodeError::TooLarge {
                part: "headers",
                size: bytes.len(),
                max: MAX_HEADERS_SIZE,
            })
        }
        None => return Err(DecodeError::Truncated("headers")),
    };
    if head_end > MAX_HEADERS_SIZE {
        return Err(DecodeError::TooLarge {
            part: "headers",
            size: head_end,
            max: MAX_HEADERS_SIZE,
        });
    }
    let headers = headers::parse(&bytes[..head_end])?;
    let body_len = match find_header(&headers, "body-length") {
        None => 0,
        Some(v) => parse_int("body-length", v)? as usize,
    };
    if body_len > MAX_BODY_SIZE {
        return Err(DecodeError::TooLarge {
            part: "body",
            size: body_len,
            max: MAX_BODY_SIZE,
        });
    }
    let mut sig_start = head_end + 2;
    if body_len > 0 {
        let body_end = sig_start + body_len;
        if bytes.len() < body_end + 2 {
            return Err(DecodeError::Truncated("body"));
        }
        if &bytes[body_end..body_end + 2] != NLNL {
            return Err(DecodeError::MissingBodySeparator);
        }
        sig_start = body_end + 2;
    }
    let sig_end = find(&bytes[sig_start..], NLNL).map_or(bytes.len(), |i| sig_start + i);
    let mut end = sig_end;
    while end > sig_start && bytes[end - 1] == b'\n' {
        end -= 1;
    }
    if end == sig_start {
        return Err(DecodeError::Truncated("signature"));
    }
    if end - sig_start > MAX_SIGNATURE_SIZE {
        return Err(DecodeError::TooLarge {
            part: "signature",
            size: end - sig_start,
            max: MAX_SIGNATURE_SIZE,
        });
    }
    Ok((&bytes[..end], &bytes[sig_end..]))
}

pub(crate) fn find_header<'a>(
    headers: &'a [(String, HeaderValue)],
    name: &str,
) -> Option<&'a HeaderValue> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

pub(crate) fn not_empty_string<'a>(
    headers: &'a [(String, HeaderValue)],
    name: &str,
) -> Result<&'a str, HeaderError> {
    match find_header(headers, name) {
        None => Err(HeaderError::Missing(name.to_owned())),
        Some(HeaderValue::String(s)) if s.is_empty() => Err(HeaderError::Empty(name.to_owned())),
        Some(HeaderValue::String(s)) => Ok(s),
        Some(_) => Err(HeaderError::WrongKind {
            name: name.to_owned(),
            expected: "a string",
        }),
    }
}

/// snapd's integer rule: decimal, no sign, no leading zeros.
pub(crate) fn parse_int(name: &str, v: &HeaderValue) -> Result<u64, HeaderError> {
    let s = v.as_str().ok_or_else(|| HeaderError::WrongKind {
        name: name.to_owned(),
        expected: "an integer",
    })?;
    let ok =
        !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !ok {
        return Err(HeaderError::invalid(
            name,
            format!("{s:?} is not an integer"),
        ));
    }
    s.parse()
        .map_err(|_| HeaderError::invalid(name, format!("{s:?} is out of range")))
}

/// Checks a key id or digest: unpadded base64url of a SHA3-384 (48 bytes).
pub(crate) fn check_key_id(name: &str, v: &str) -> Result<(), HeaderError> {
    match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v) {
        Ok(d) if d.len() == 48 => Ok(()),
        Ok(_) => Err(HeaderError::invalid(
            name,
            "not a SHA3-384 digest (wrong length)",
        )),
        Err(_) => Err(HeaderError::invalid(name, "not unpadded base64url")),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}
