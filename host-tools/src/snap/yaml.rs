//! `meta/snap.yaml`: the fields coreforge needs, checked with snapd's rules.

use coreforge_assertions::valid_snap_name;
use coreforge_snap::SnapYaml;
use serde::Deserialize;

use super::{SnapError, SnapInfo};

/// Architectures a snap may name (Debian's names, as snapd uses them), plus `all`.
pub const ARCHITECTURES: &[&str] = &[
    "all", "amd64", "arm64", "armhf", "i386", "ppc64el", "riscv64", "s390x",
];

/// Snap types as `snap.yaml` may write them; `os` and `application` are snapd's spellings.
const TYPES: &[&str] = &[
    "app",
    "application",
    "gadget",
    "kernel",
    "base",
    "core",
    "os",
    "snapd",
];

/// The part of snap.yaml read here; `apps` is read by coreforge-snap, and every other
/// field (summary, plugs, ...) is ignored.
#[derive(Deserialize)]
struct Raw {
    name: Option<String>,
    version: Option<String>,
    #[serde(rename = "type")]
    snap_type: Option<String>,
    architectures: Option<Vec<String>>,
}

/// Parses and validates snap.yaml; `origin` names the file in messages.
#[cfg(test)]
pub fn parse(bytes: &[u8], origin: &str) -> Result<SnapInfo, SnapError> {
    parse_with_apps(bytes, origin).map(|(info, _)| info)
}

/// Parses and validates snap.yaml, its `apps:` too (snapd's rules, the field named in the
/// error), and returns them for the checks that need the snap's files.
pub fn parse_with_apps(bytes: &[u8], origin: &str) -> Result<(SnapInfo, SnapYaml), SnapError> {
    let bad = |reason: String| SnapError::BadSnapYaml {
        origin: origin.to_owned(),
        reason,
    };
    // An empty document is YAML's null, which serde cannot read as a struct.
    let raw: Raw = if bytes.iter().all(u8::is_ascii_whitespace) {
        Raw {
            name: None,
            version: None,
            snap_type: None,
            architectures: None,
        }
    } else {
        serde_norway::from_slice(bytes).map_err(|e| bad(e.to_string()))?
    };
    let name = raw.name.ok_or_else(|| bad("missing \"name\"".into()))?;
    if !valid_snap_name(&name) {
        return Err(bad(format!(
            "invalid snap name {name:?}: use 2-40 characters of a-z, 0-9 and '-', \
             with at least one letter, no leading, trailing or double '-'"
        )));
    }
    let version = raw
        .version
        .ok_or_else(|| bad("missing \"version\"".into()))?;
    if !valid_version(&version) {
        return Err(bad(format!(
            "invalid version {version:?}: use 1-32 characters of letters, digits and \
             ':.+~-', starting with a letter or digit and not ending in ':', '.' or '-'"
        )));
    }
    let snap_type = match raw.snap_type.as_deref() {
        None | Some("app" | "application") => "app".to_owned(),
        // snapd's snap.yaml calls the core snap's type `os`; models call it `core`.
        Some("os" | "core") => "core".to_owned(),
        Some(t) if TYPES.contains(&t) => t.to_owned(),
        Some(t) => {
            return Err(bad(format!(
                "unknown type {t:?}: use one of app, gadget, kernel, base, core, snapd"
            )))
        }
    };
    let architectures = raw.architectures.unwrap_or_else(|| vec!["all".into()]);
    check_architectures(&architectures).map_err(bad)?;
    let apps = SnapYaml::parse(bytes).map_err(|e| bad(e.to_string()))?;
    let info = SnapInfo {
        name,
        version,
        snap_type,
        architectures,
    };
    Ok((info, apps))
}

fn check_architectures(archs: &[String]) -> Result<(), String> {
    if archs.is_empty() {
        return Err(
            "\"architectures\" is empty: list at least one, or leave it out for all".into(),
        );
    }
    for (i, a) in archs.iter().enumerate() {
        if !ARCHITECTURES.contains(&a.as_str()) {
            return Err(format!(
                "unknown architecture {a:?}: use {}",
                ARCHITECTURES.join(", ")
            ));
        }
        if archs[..i].contains(a) {
            return Err(format!("architecture {a:?} is listed twice"));
        }
    }
    if archs.len() > 1 && archs.iter().any(|a| a == "all") {
        return Err("architecture \"all\" cannot be combined with others".into());
    }
    Ok(())
}

/// snapd's version rule: `^[a-zA-Z0-9](?:[a-zA-Z0-9:.+~-]{0,30}[a-zA-Z0-9+~])?$`.
fn valid_version(v: &str) -> bool {
    let b = v.as_bytes();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || b":.+~-".contains(c);
    let last = |c: &u8| c.is_ascii_alphanumeric() || b"+~".contains(c);
    match b {
        [] => false,
        [first] => first.is_ascii_alphanumeric(),
        [first, mid @ .., end] => {
            b.len() <= 32 && first.is_ascii_alphanumeric() && mid.iter().all(inner) && last(end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text.as_bytes(), "t").unwrap_err().to_string()
    }

    #[test]
    fn defaults_and_spellings() {
        let i = parse(
            b"name: hello\nversion: 1.10\napps: {x: {command: bin/x}}\n",
            "t",
        )
        .unwrap();
        assert_eq!(i.version, "1.10", "plain scalars keep their text");
        assert_eq!(i.snap_type, "app");
        assert_eq!(i.architectures, ["all"]);
        let i = parse(b"name: core\nversion: '16'\ntype: os\n", "t").unwrap();
        assert_eq!(i.snap_type, "core");
        let i = parse(
            b"name: pi2-kernel\nversion: 6.1-1\ntype: kernel\narchitectures: [arm64, armhf]\n",
            "t",
        )
        .unwrap();
        assert_eq!(i.architectures, ["arm64", "armhf"]);
        assert_eq!(i.snap_type, "kernel");
    }

    #[test]
    fn clear_errors() {
        assert!(err("version: 1\n").contains("missing \"name\""));
        assert!(err("").contains("missing \"name\""));
        assert!(err("name: xy\n").contains("missing \"version\""));
        assert!(err("name: Hello\nversion: 1\n").contains("invalid snap name \"Hello\""));
        assert!(err("name: ab\nversion: 1\ntype: daemon\n").contains("unknown type \"daemon\""));
        assert!(err("name: ab\nversion: 1\narchitectures: [arm65]\n")
            .contains("unknown architecture \"arm65\""));
        assert!(err("name: ab\nversion: 1\narchitectures: arm64\n").contains("expected a sequence"));
        assert!(err("name: ab\nversion: 1\narchitectures: [all, arm64]\n").contains("\"all\""));
        assert!(err("name: ab\nversion: 1\narchitectures: []\n").contains("empty"));
        assert!(err("name: ab\nversion: 1\narchitectures: [armhf, armhf]\n").contains("twice"));
        assert!(err("name: ab\nversion: '1.'\n").contains("invalid version"));
        assert!(err("name: ab\nversion: [1]\n").contains("version"));
        assert!(err("name: ab\nversion: 1\n\tbad").starts_with("t: "));
        assert_eq!(
            err("name: ab\nversion: 1\napps:\n  web:\n    command: bin/web\n    daemon: sometimes\n"),
            "t: apps.web.daemon: unknown daemon type \"sometimes\": use simple, forking, oneshot or notify"
        );
    }

    #[test]
    fn snap_names_follow_snapd() {
        for good in ["ab", "a1", "1a", "pi2-kernel", "a-b-c", &"a".repeat(40)] {
            assert!(valid_snap_name(good), "{good}");
        }
        for bad in [
            "a",
            "12",
            "-ab",
            "ab-",
            "a--b",
            "aB",
            "a_b",
            "a.b",
            "",
            &"a".repeat(41),
        ] {
            assert!(!valid_snap_name(bad), "{bad}");
        }
    }

    #[test]
    fn versions_follow_snapd() {
        for good in [
            "1",
            "1.0",
            "6.1.0-10-arm64",
            "1+git~x",
            "v1:2",
            &"1".repeat(32),
        ] {
            assert!(valid_version(good), "{good}");
        }
        for bad in ["", ".1", "1.", "1-", "1:", "1 2", "ü", &"1".repeat(33)] {
            assert!(!valid_version(bad), "{bad}");
        }
    }
}
