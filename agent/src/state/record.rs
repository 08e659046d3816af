//! The commit's record, `var/lib/coreforge/console-conf.json`: who was created, where the keys
//! came from and when. Written last inside the staging directory; read back on later boots to
//! show the login details again.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// What a completed first-boot configuration created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Record {
    /// The account's login name.
    pub user: String,
    /// Its uid (and the gid of its own group).
    pub uid: u32,
    /// Where its SSH keys came from, e.g. `store account alice@example.com`.
    pub source: String,
    /// When the commit happened, RFC 3339 UTC (1970 on a board with no clock set).
    pub time: String,
    /// The SSH host key's fingerprint, `SHA256:...`.
    pub host_key: String,
}

impl Record {
    /// The record as written: pretty JSON with a final newline, for people reading it too.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parses a record file. Its text is printed on the consoles on every later boot, and
    /// `writable` can be written by whoever holds the card: every control character (ESC
    /// and the terminal sequences it starts, CR, BS, the C1 set with its one-byte CSI) and
    /// every character that reorders or hides text (bidi overrides, line separators) comes
    /// back escaped as `\u{..}`, so a record can never move the cursor, recolour, retitle
    /// or blank a console.
    pub fn from_json(bytes: &[u8]) -> Result<Record, serde_json::Error> {
        let record: Record = serde_json::from_slice(bytes)?;
        Ok(Record {
            user: printable(&record.user),
            uid: record.uid,
            source: printable(&record.source),
            time: printable(&record.time),
            host_key: printable(&record.host_key),
        })
    }
}

/// `text` with every character a terminal would act on rather than show replaced by its
/// `\u{..}` escape (a backslash is doubled, so an escape cannot be forged either).
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if acts_on_terminal(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// C0, DEL and C1 controls, and the format characters that reorder or hide text.
fn acts_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width and direction marks
            | '\u{2028}'..='\u{202E}' // line/paragraph separators, bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}' // invisible operators, bidi isolates
            | '\u{FEFF}' // zero-width no-break space
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
        )
}

/// Seconds since 1970 now (0 if the clock is before 1970).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Days since 1970 for shadow's "last change", or `None` when the clock is clearly not set
/// (before 2024: boards without a real-time clock start at 1970).
pub fn days_if_clock_set(secs: u64) -> Option<u64> {
    const JAN_1_2024: u64 = 1_704_067_200;
    (secs >= JAN_1_2024).then_some(secs / 86_400)
}

/// `secs` since 1970 as RFC 3339 UTC, e.g. `2026-11-25T20:30:00Z`.
pub fn rfc3339(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month, day of a day count since 1970 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_638_600), "2026-11-25T20:30:00Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn shadow_days_only_with_a_set_clock() {
        assert_eq!(days_if_clock_set(60), None);
        assert_eq!(days_if_clock_set(1_795_638_600), Some(20_782));
    }

    #[test]
    fn round_trips_as_kebab_case_json() {
        let record = Record {
            user: "alice".into(),
            uid: 1000,
            source: "store account \"alice\"@example.com".into(),
            time: rfc3339(0),
            host_key: "SHA256:abc".into(),
        };
        let json = record.to_json();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.contains("\"host-key\": \"SHA256:abc\""), "{text}");
        assert!(text.ends_with("}\n"));
        assert_eq!(Record::from_json(&json).unwrap(), record);
        assert!(Record::from_json(b"{\"user\": \"alice\"}").is_err());
    }

    /// A record written by someone holding the card, with terminal sequences in every text
    /// field: none reaches the console as a control character.
    #[test]
    fn control_characters_in_a_record_come_back_escaped() {
        let json = br#"{"user": "alice\u001b[2J\u001b]0;pwned\u0007",
            "uid": 1000,
            "source": "store account\r\u001b[1Aalice@example.com\u009b31m\u202e",
            "time": "2026-11-25T20:30:00Z\u0008\u0008",
            "host-key": "SHA256:abc\n\u2028x\\u{1b}"}"#;
        let record = Record::from_json(json).unwrap();
        for text in [&record.user, &record.source, &record.time, &record.host_key] {
            assert!(
                !text.chars().any(acts_on_terminal),
                "{text:?} still has a control character"
            );
        }
        assert_eq!(record.user, "alice\\u{1b}[2J\\u{1b}]0;pwned\\u{7}");
        assert_eq!(
            record.source,
            "store account\\u{d}\\u{1b}[1Aalice@example.com\\u{9b}31m\\u{202e}"
        );
        assert_eq!(record.time, "2026-11-25T20:30:00Z\\u{8}\\u{8}");
        // A backslash in the file cannot pass for an escape.
        assert_eq!(record.host_key, "SHA256:abc\\u{a}\\u{2028}x\\\\u{1b}");
        // The line init.rs prints on every later boot.
        let line = format!(
            "configured already: account {} (keys from {})",
            record.user, record.source
        );
        assert!(!line.contains('\u{1b}') && !line.contains('\r'), "{line:?}");
        // Plain text, including non-ASCII, is left alone.
        assert_eq!(printable("Zoë alice@example.com"), "Zoë alice@example.com");
    }
}
