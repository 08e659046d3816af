//! systemd's unit-name escaping (`systemd-escape`, `systemd-escape --path`), for the units
//! and drop-ins the agent writes for the OS.

use std::fmt::Write as _;

/// A name inside a unit name: letters, digits, `:`, `_` and a `.` that does not lead stay;
/// anything else (`-` among them) becomes `\xNN`.
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b':' || (b == b'.' && i > 0) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// A path as a mount unit's name stem: its components escaped, joined by `-` (`/` is `-`).
pub fn escape_path(path: &str) -> String {
    let parts: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .map(escape)
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_escape_as_systemd_escape_does() {
        assert_eq!(escape("wlan0"), "wlan0");
        assert_eq!(escape("wl-p1s0"), "wl\\x2dp1s0");
        assert_eq!(escape("br.1"), "br.1");
        assert_eq!(escape(".x"), "\\x2ex");
        assert_eq!(escape("a:b c"), "a:b\\x20c");
    }

    #[test]
    fn paths_escape_as_systemd_escape_path_does() {
        assert_eq!(
            escape_path("/run/mnt/ubuntu-seed"),
            "run-mnt-ubuntu\\x2dseed"
        );
        assert_eq!(escape_path("/usr/lib/modules/"), "usr-lib-modules");
        assert_eq!(escape_path("/"), "-");
    }
}
