//! What a device is: the model and seed label an image was built for, written by
//! `coreforge build-image` into the initramfs and read by the agent, which then opens
//! only that label of the seed and accepts only that model.
//!
//! The file is a few `name: value` lines:
//!
//! ```text
//! brand-id: acme
//! model: pi3
//! grade: signed
//! model-sha3-384: <unpadded base64url SHA3-384 of the seed's model file>
//! seed-label: 20261202
//! build-time: 2026-12-02T18:00:00Z
//! preseed-sha3-384: <SHA3-384 of the console-conf.json given to build-image>
//! ```
//!
//! `grade` is absent for a series-16 model without one, `preseed-sha3-384` when the image
//! was built without `--preseed`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha3::{Digest as _, Sha3_384};

use crate::time::Timestamp;

/// Largest pin file read (it is a few hundred bytes).
pub const MAX_PIN_SIZE: usize = 4096;

/// SHA3-384 of `bytes` as snapd writes digests: unpadded base64url (64 characters).
pub fn sha3_384(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha3_384::digest(bytes))
}

/// The model and seed an image was built for (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePin {
    /// The model's brand.
    pub brand_id: String,
    /// The model's name.
    pub model: String,
    /// The model's grade, if it has one.
    pub grade: Option<String>,
    /// SHA3-384 of the model file `systems/<label>/model`, as [`sha3_384`] writes it.
    pub model_sha3_384: String,
    /// The seed label `build-image` wrote (`systems/<label>`).
    pub seed_label: String,
    /// When the image was built: the device's clock never counts as earlier.
    pub build_time: Timestamp,
    /// SHA3-384 of the preseed file given to `build-image`, if any.
    pub preseed_sha3_384: Option<String>,
}

/// Why a pin file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PinError {
    /// The file is larger than [`MAX_PIN_SIZE`].
    #[error("the device pin is {0} bytes, more than {MAX_PIN_SIZE}")]
    TooLarge(usize),
    /// A line is not `name: value` of printable ASCII.
    #[error("device pin line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A required entry is absent.
    #[error("the device pin has no {0:?}")]
    Missing(&'static str),
}

const NAMES: [&str; 7] = [
    "brand-id",
    "model",
    "grade",
    "model-sha3-384",
    "seed-label",
    "build-time",
    "preseed-sha3-384",
];

impl DevicePin {
    /// The file's text.
    pub fn encode(&self) -> String {
        let mut out = String::from(
            "# What this device is, written by `coreforge build-image`: the agent boots this model only.\n",
        );
        let mut line = |name: &str, value: &str| {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push('\n');
        };
        line("brand-id", &self.brand_id);
        line("model", &self.model);
        if let Some(g) = &self.grade {
            line("grade", g);
        }
        line("model-sha3-384", &self.model_sha3_384);
        line("seed-label", &self.seed_label);
        line("build-time", &self.build_time.to_string());
        if let Some(p) = &self.preseed_sha3_384 {
            line("preseed-sha3-384", p);
        }
        out
    }

    /// Reads a pin file: every entry once, no unknown ones, values checked.
    pub fn parse(bytes: &[u8]) -> Result<DevicePin, PinError> {
        if bytes.len() > MAX_PIN_SIZE {
            return Err(PinError::TooLarge(bytes.len()));
        }
        let mut values: [Option<String>; NAMES.len()] = Default::default();
        for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            let line = i + 1;
            let bad = |reason: String| PinError::Line { line, reason };
            if raw.is_empty() || raw.starts_with(b"#") {
                continue;
            }
            if !raw.iter().all(|b| (0x20..0x7f).contains(b)) {
                return Err(bad("not printable ASCII".into()));
            }
            // Checked ASCII above, so this cannot fail.
            let text = std::str::from_utf8(raw).map_err(|e| bad(e.to_string()))?;
            let Some((name, value)) = text.split_once(": ") else {
                return Err(bad("not \"name: value\"".into()));
            };
            let Some(slot) = NAMES.iter().position(|n| *n == name) else {
                return Err(bad(format!("unknown entry {name:?}")));
            };
            if values[slot].is_some() {
                return Err(bad(format!("{name:?} appears twice")));
            }
            check_value(name, value).map_err(bad)?;
            values[slot] = Some(value.to_owned());
        }
        let [brand_id, model, grade, model_sha3_384, seed_label, build_time, preseed_sha3_384] =
            values;
        let build_time = build_time.ok_or(PinError::Missing("build-time"))?;
        Ok(DevicePin {
            brand_id: brand_id.ok_or(PinError::Missing("brand-id"))?,
            model: model.ok_or(PinError::Missing("model"))?,
            grade,
            model_sha3_384: model_sha3_384.ok_or(PinError::Missing("model-sha3-384"))?,
            seed_label: seed_label.ok_or(PinError::Missing("seed-label"))?,
            // check_value parsed it already.
            build_time: Timestamp::parse(&build_time).ok_or(PinError::Missing("build-time"))?,
            preseed_sha3_384,
        })
    }
}

fn check_value(name: &str, value: &str) -> Result<(), String> {
    let ok = match name {
        "model-sha3-384" | "preseed-sha3-384" => {
            value.len() == 64
                && value
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        }
        "build-time" => Timestamp::parse(value).is_some(),
        "seed-label" => is_valid_label(value),
        _ => !value.is_empty() && !value.contains(char::is_whitespace),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{name}: {value:?} is not valid"))
    }
}

/// snapd's seed label rule: `^[a-zA-Z0-9](?:-?[a-zA-Z0-9])+$`.
pub(crate) fn is_valid_label(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && !s.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin() -> DevicePin {
        DevicePin {
            brand_id: "acme".into(),
            model: "pi3".into(),
            grade: Some("signed".into()),
            model_sha3_384: sha3_384(b"model"),
            seed_label: "20261202".into(),
            build_time: Timestamp::parse("2026-12-02T18:00:00Z").unwrap(),
            preseed_sha3_384: None,
        }
    }

    #[test]
    fn round_trips() {
        let p = pin();
        assert_eq!(DevicePin::parse(p.encode().as_bytes()).unwrap(), p);
        let with = DevicePin {
            preseed_sha3_384: Some(sha3_384(b"{}")),
            grade: None,
            ..pin()
        };
        assert_eq!(DevicePin::parse(with.encode().as_bytes()).unwrap(), with);
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        let text = pin().encode();
        let cases = [
            (format!("{text}model: other\n"), "appears twice"),
            (format!("{text}shell: $(reboot)\n"), "unknown entry"),
            (
                text.replace("seed-label: 20261202", "seed-label: ../x"),
                "not valid",
            ),
            (
                text.replace("brand-id: acme", "brand-id: a\u{1b}[2J"),
                "printable",
            ),
            (
                text.replace("build-time: ", "build-time: yesterday "),
                "not valid",
            ),
        ];
        for (bad, want) in cases {
            let e = DevicePin::parse(bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
        let missing = text.replace("model-sha3-384", "# model-sha3-384");
        assert_eq!(
            DevicePin::parse(missing.as_bytes()),
            Err(PinError::Missing("model-sha3-384"))
        );
        assert!(matches!(
            DevicePin::parse(&vec![b'#'; MAX_PIN_SIZE + 1]),
            Err(PinError::TooLarge(_))
        ));
    }
}
