//! Finds the seed's model assertion and reads just enough of its headers to say what it is.
//!
//! This is a deliberately tiny, bounded reader for the boot report: it reads the header
//! block only (up to the first blank line, at most 128 KiB as in snapd) and checks the
//! shape of top-level header lines. Verification is the job of `coreforge-assertions`.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// snapd's limit for the header block of an assertion.
pub const MAX_HEADERS: usize = 128 * 1024;

/// What the report prints about a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSummary {
    /// The brand's account id (`brand-id`).
    pub brand_id: String,
    /// The model name (`model`).
    pub model: String,
}

/// Why a model assertion's headers could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// The file could not be read.
    Io(String),
    /// No blank line ends the headers within the limit.
    NoHeaderEnd,
    /// The header block is not UTF-8.
    NotUtf8,
    /// A line is not `name: value`, `name:` or an indented continuation.
    BadLine(usize),
    /// A header name appears twice.
    Duplicate(String),
    /// The `type` header is not `model`.
    WrongType(String),
    /// A required header is absent.
    Missing(&'static str),
    /// A header's value is not a plain identifier we can show.
    BadValue(&'static str),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Io(e) => write!(f, "cannot read it: {e}"),
            ModelError::NoHeaderEnd => write!(
                f,
                "no blank line ends its headers in the first {} KiB",
                MAX_HEADERS / 1024
            ),
            ModelError::NotUtf8 => write!(f, "its headers are not UTF-8 text"),
            ModelError::BadLine(n) => write!(f, "header line {n} is not `name: value`"),
            ModelError::Duplicate(name) => write!(f, "header {name} appears twice"),
            ModelError::WrongType(t) => write!(f, "its type is {t:?}, not \"model\""),
            ModelError::Missing(name) => write!(f, "header {name} is missing"),
            ModelError::BadValue(name) => write!(f, "header {name} is not a plain identifier"),
        }
    }
}

/// The first `systems/<label>/model` under `seed`, by label in byte order.
pub fn find(seed: &Path) -> io::Result<Option<PathBuf>> {
    let systems = seed.join("systems");
    let mut labels: Vec<_> = match fs::read_dir(&systems) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    labels.sort();
    Ok(labels
        .into_iter()
        .map(|label| systems.join(label).join("model"))
        .find(|p| p.is_file()))
}

/// Reads the model file at `path`, looking at no more than its header block.
pub fn read(path: &Path) -> Result<ModelSummary, ModelError> {
    let mut head = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_HEADERS as u64 + 2).read_to_end(&mut head))
        .map_err(|e| ModelError::Io(e.to_string()))?;
    summarize(&head)
}

/// Reads `type`, `brand-id` and `model` from the headers at the start of `bytes`.
pub fn summarize(bytes: &[u8]) -> Result<ModelSummary, ModelError> {
    let end = bytes
        .windows(2)
        .take(MAX_HEADERS + 1)
        .position(|w| w == b"\n\n")
        .ok_or(ModelError::NoHeaderEnd)?;
    let text = std::str::from_utf8(&bytes[..end]).map_err(|_| ModelError::NotUtf8)?;
    let mut names: Vec<&str> = Vec::new();
    let (mut kind, mut brand_id, mut model) = (None, None, None);
    for (i, line) in text.split('\n').enumerate() {
        if line.starts_with(' ') {
            // Continuation of a multi-line, list or map header: must follow a header.
            if names.is_empty() {
                return Err(ModelError::BadLine(i + 1));
            }
            continue;
        }
        let (name, value) = line.split_once(':').ok_or(ModelError::BadLine(i + 1))?;
        if !valid_name(name) {
            return Err(ModelError::BadLine(i + 1));
        }
        if names.contains(&name) {
            return Err(ModelError::Duplicate(name.to_owned()));
        }
        names.push(name);
        let value = match value {
            "" => None,
            v => Some(v.strip_prefix(' ').ok_or(ModelError::BadLine(i + 1))?),
        };
        match name {
            "type" => kind = value,
            "brand-id" => brand_id = Some(value.ok_or(ModelError::BadValue("brand-id"))?),
            "model" => model = Some(value.ok_or(ModelError::BadValue("model"))?),
            _ => {}
        }
    }
    match kind {
        Some("model") => {}
        Some(other) => return Err(ModelError::WrongType(other.to_owned())),
        None => return Err(ModelError::Missing("type")),
    }
    let brand_id = brand_id.ok_or(ModelError::Missing("brand-id"))?;
    let model = model.ok_or(ModelError::Missing("model"))?;
    for (name, value) in [("brand-id", brand_id), ("model", model)] {
        if !valid_id(value) {
            return Err(ModelError::BadValue(name));
        }
    }
    Ok(ModelSummary {
        brand_id: brand_id.to_owned(),
        model: model.to_owned(),
    })
}

/// snapd's header name rule: `^[a-z](?:-?[a-z0-9])*$`.
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.first().is_some_and(u8::is_ascii_lowercase)
        && !name.ends_with('-')
        && !name.contains("--")
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Account ids and model names are short runs of letters, digits and dashes; anything else
/// is refused rather than printed to the console.
fn valid_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "type: model
authority-id: acme
series: 16
brand-id: acme
model: pi3-kiosk
architecture: arm64
base: core22
grade: signed
snaps:
  -
    name: pi
    type: gadget
timestamp: 2024-01-01T00:00:00Z
sign-key-sha3-384: abc

AcLBXAQAAQoABgUCZ
";

    fn ok(brand: &str, model: &str) -> Result<ModelSummary, ModelError> {
        Ok(ModelSummary {
            brand_id: brand.into(),
            model: model.into(),
        })
    }

    #[test]
    fn reads_brand_and_model() {
        assert_eq!(summarize(MODEL.as_bytes()), ok("acme", "pi3-kiosk"));
    }

    #[test]
    fn snapd_vector_models() {
        // snapd's own signed models, read in place; each names brand developer1 and the
        // model given in its JSON source (when there is one).
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/snapd/models");
        let mut seen = 0;
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("model") {
                continue;
            }
            seen += 1;
            let summary = read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(summary.brand_id, "developer1", "{}", path.display());
            if let Ok(json) = fs::read_to_string(path.with_extension("json")) {
                let want = format!("\"model\": \"{}\"", summary.model);
                assert!(json.contains(&want), "{}: {want}", path.display());
            }
        }
        assert!(
            seen >= 4,
            "expected the snapd model vectors in {}",
            dir.display()
        );
    }

    #[test]
    fn headers_only_signature_ignored() {
        let text = "type: model\nbrand-id: b\nmodel: m\n\n!!!not base64 but ignored";
        assert_eq!(summarize(text.as_bytes()), ok("b", "m"));
    }

    #[test]
    fn body_and_signature_after_headers_ignored() {
        let text = "type: model\nbrand-id: b\nmodel: m\nbody-length: 3\n\nx\ny\n\nsig";
        assert_eq!(summarize(text.as_bytes()), ok("b", "m"));
    }

    #[test]
    fn missing_blank_line() {
        assert_eq!(
            summarize(b"type: model\nbrand-id: b\nmodel: m\n"),
            Err(ModelError::NoHeaderEnd)
        );
        assert_eq!(summarize(b""), Err(ModelError::NoHeaderEnd));
    }

    #[test]
    fn header_block_over_the_limit() {
        let mut text = b"type: model\nbrand-id: b\nmodel: m\ndescription:\n".to_vec();
        while text.len() < MAX_HEADERS + 10 {
            text.extend_from_slice(b"    padding line\n");
        }
        text.extend_from_slice(b"\nsig");
        assert_eq!(summarize(&text), Err(ModelError::NoHeaderEnd));
    }

    #[test]
    fn wrong_type_and_missing_headers() {
        assert_eq!(
            summarize(b"type: serial\nbrand-id: b\nmodel: m\n\ns"),
            Err(ModelError::WrongType("serial".into()))
        );
        assert_eq!(
            summarize(b"brand-id: b\nmodel: m\n\ns"),
            Err(ModelError::Missing("type"))
        );
        assert_eq!(
            summarize(b"type: model\nmodel: m\n\ns"),
            Err(ModelError::Missing("brand-id"))
        );
        assert_eq!(
            summarize(b"type: model\nbrand-id: b\n\ns"),
            Err(ModelError::Missing("model"))
        );
    }

    #[test]
    fn duplicate_header() {
        assert_eq!(
            summarize(b"type: model\nbrand-id: b\nbrand-id: c\nmodel: m\n\ns"),
            Err(ModelError::Duplicate("brand-id".into()))
        );
    }

    #[test]
    fn malformed_lines() {
        for (text, line) in [
            ("type: model\nno colon here\n\ns", 2),
            ("Type: model\n\ns", 1),
            ("type:model\n\ns", 1),
            ("  - leading continuation\ntype: model\n\ns", 1),
            ("type: model\nbad--name: x\n\ns", 2),
            ("type: model\nbad-: x\n\ns", 2),
            ("type: model\n: x\n\ns", 2),
        ] {
            assert_eq!(
                summarize(text.as_bytes()),
                Err(ModelError::BadLine(line)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn values_that_are_not_identifiers() {
        assert_eq!(
            summarize(b"type: model\nbrand-id: a b\nmodel: m\n\ns"),
            Err(ModelError::BadValue("brand-id"))
        );
        assert_eq!(
            summarize(b"type: model\nbrand-id: b\nmodel: \x1b[2J\n\ns"),
            Err(ModelError::BadValue("model"))
        );
        assert_eq!(
            summarize(b"type: model\nbrand-id: b\nmodel:\n  - x\n\ns"),
            Err(ModelError::BadValue("model"))
        );
    }

    #[test]
    fn not_utf8() {
        assert_eq!(
            summarize(b"type: model\nbrand-id: \xff\nmodel: m\n\ns"),
            Err(ModelError::NotUtf8)
        );
    }

    #[test]
    fn find_picks_first_label_with_a_model() {
        let dir = std::env::temp_dir().join(format!("cf-agent-model-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(find(&dir).ok().flatten(), None);
        for label in ["20240102", "20240101", "20230101"] {
            fs::create_dir_all(dir.join("systems").join(label)).unwrap();
        }
        assert_eq!(find(&dir).ok().flatten(), None);
        fs::write(dir.join("systems/20240102/model"), MODEL).unwrap();
        fs::write(dir.join("systems/20240101/model"), MODEL).unwrap();
        assert_eq!(
            find(&dir).ok().flatten(),
            Some(dir.join("systems/20240101/model"))
        );
        let read_back = read(&dir.join("systems/20240101/model"));
        assert_eq!(read_back, ok("acme", "pi3-kiosk"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..600 {
            let mut bytes = MODEL.as_bytes().to_vec();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % bytes.len();
                bytes[at] = (seed >> 40) as u8;
            }
            bytes.truncate(len % (bytes.len() + 1));
            let _ = summarize(&bytes);
        }
    }
}
