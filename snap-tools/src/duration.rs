//! snapd's timeouts (`stop-timeout: 30s`): Go's `time.ParseDuration` format, which snapd's
//! `timeout.Timeout` reads: decimal numbers with a unit each (`ns`, `us`, `µs`, `ms`, `s`,
//! `m`, `h`), several in a row (`1h30m`, `1.5s`); a bare `0` is the only number without one.

use std::fmt;

/// A parsed duration in nanoseconds (never negative: snapd refuses negative timeouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration {
    nanos: u64,
}

const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

impl Duration {
    /// Parses Go's duration syntax; a sign is refused (a timeout cannot be negative).
    pub fn parse(text: &str) -> Result<Duration, String> {
        let bad = || {
            format!(
                "invalid duration {text:?}: use a number with a unit, such as 30s, 1m or 1m30s \
                 (units: ns, us, ms, s, m, h)"
            )
        };
        if text.starts_with('-') {
            return Err(format!("invalid duration {text:?}: it cannot be negative"));
        }
        let s = text.strip_prefix('+').unwrap_or(text);
        if s == "0" {
            return Ok(Duration::default());
        }
        if s.is_empty() {
            return Err(bad());
        }
        let mut rest = s;
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (int, after) = rest.split_at(int_len);
            let (frac, after) = match after.strip_prefix('.') {
                Some(a) => {
                    let n = a.bytes().take_while(u8::is_ascii_digit).count();
                    a.split_at(n)
                }
                None => ("", after),
            };
            if int.is_empty() && frac.is_empty() {
                return Err(bad());
            }
            let unit_len = after
                .char_indices()
                .find(|(_, c)| c.is_ascii_digit() || *c == '.')
                .map_or(after.len(), |(i, _)| i);
            let (unit, after) = after.split_at(unit_len);
            let scale = UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, n)| u128::from(*n))
                .ok_or_else(bad)?;
            let whole: u128 = if int.is_empty() {
                0
            } else {
                int.parse().map_err(|_| bad())?
            };
            let mut part = whole.checked_mul(scale).ok_or_else(bad)?;
            // Digits past the 20th cannot change a nanosecond count of u64 range.
            let mut place = scale;
            for d in frac.bytes().take(20) {
                place /= 10;
                part += u128::from(d - b'0') * place;
            }
            total = total.checked_add(part).ok_or_else(bad)?;
            if total > u128::from(i64::MAX as u64) {
                return Err(bad());
            }
            rest = after;
        }
        Ok(Duration {
            nanos: total as u64,
        })
    }

    /// Whether it is zero (snapd treats a zero timeout as not set).
    pub fn is_zero(self) -> bool {
        self.nanos == 0
    }

    /// The number of seconds as systemd's `TimeoutStopSec=` takes it, formatted as snapd's
    /// template prints Go's `Duration.Seconds()`: `30`, `1.5`, `0.25`.
    pub fn seconds(self) -> String {
        let secs = (self.nanos / 1_000_000_000) as f64 + (self.nanos % 1_000_000_000) as f64 / 1e9;
        format!("{secs}")
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.seconds())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> String {
        Duration::parse(s).unwrap().seconds()
    }

    #[test]
    fn go_durations() {
        assert_eq!(secs("30s"), "30");
        assert_eq!(secs("1m"), "60");
        assert_eq!(secs("1m30s"), "90");
        assert_eq!(secs("1.5s"), "1.5");
        assert_eq!(secs(".5s"), "0.5");
        assert_eq!(secs("1.s"), "1");
        assert_eq!(secs("250ms"), "0.25");
        assert_eq!(secs("1h"), "3600");
        assert_eq!(secs("2us"), "0.000002");
        assert_eq!(secs("2µs"), "0.000002");
        assert_eq!(secs("0"), "0");
        assert_eq!(secs("+5s"), "5");
        assert!(Duration::parse("0").unwrap().is_zero());
        assert!(!Duration::parse("1ns").unwrap().is_zero());
    }

    #[test]
    fn refused_like_go() {
        for bad in [
            "", "30", "1", "s", ".s", "1x", "1 s", "1s ", "abc", "1.2.3s", "3000000h", "+",
        ] {
            let e = Duration::parse(bad).unwrap_err();
            assert!(e.contains("invalid duration"), "{bad}: {e}");
        }
        assert!(Duration::parse("-1s").unwrap_err().contains("negative"));
    }
}
