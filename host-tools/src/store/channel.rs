//! Channels: `[track/]risk[/branch]`, as snapd parses them, and the risk fallback.

use std::fmt;

/// Risks from most to least stable.
pub const RISKS: [&str; 4] = ["stable", "candidate", "beta", "edge"];

/// The track used when a channel names none.
pub const DEFAULT_TRACK: &str = "latest";

/// A parsed channel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Channel {
    /// The track (`latest` unless given).
    pub track: String,
    /// One of [`RISKS`].
    pub risk: String,
    /// An optional branch.
    pub branch: Option<String>,
}

/// Why a channel string is not a channel.
#[derive(thiserror::Error, Debug, PartialEq, Eq)]
#[error("invalid channel {channel:?}: {reason} (channels look like [track/]risk[/branch], risks: stable, candidate, beta, edge)")]
pub struct ChannelError {
    /// The text given.
    pub channel: String,
    /// What is wrong.
    pub reason: String,
}

fn is_risk(s: &str) -> bool {
    RISKS.contains(&s)
}

/// Track and branch names: letters, digits and `-_.`, not starting with `-` or `.`.
fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with(['-', '.'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Channel {
    /// Parses `risk`, `track` (meaning track/stable), `risk/branch`, `track/risk` or
    /// `track/risk/branch`, as snapd does.
    pub fn parse(s: &str) -> Result<Channel, ChannelError> {
        let err = |reason: &str| ChannelError {
            channel: s.to_owned(),
            reason: reason.to_owned(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        let (track, risk, branch) = match parts.as_slice() {
            [one] if is_risk(one) => (DEFAULT_TRACK, *one, None),
            [one] => (*one, "stable", None),
            [risk, branch] if is_risk(risk) => (DEFAULT_TRACK, *risk, Some(*branch)),
            [track, risk] => (*track, *risk, None),
            [track, risk, branch] => (*track, *risk, Some(*branch)),
            _ => return Err(err("too many '/'")),
        };
        if !valid_part(track) {
            return Err(err(&format!("invalid track {track:?}")));
        }
        if is_risk(track) {
            return Err(err(&format!("{track:?} is a risk, not a track")));
        }
        if !is_risk(risk) {
            return Err(err(&format!("unknown risk {risk:?}")));
        }
        if let Some(b) = branch {
            if !valid_part(b) {
                return Err(err(&format!("invalid branch {b:?}")));
            }
        }
        Ok(Channel {
            track: track.to_owned(),
            risk: risk.to_owned(),
            branch: branch.map(str::to_owned),
        })
    }

    /// The channels to look in, in order: this one, then (for a channel without a
    /// branch) each more stable risk of the same track, down to stable. A branch
    /// never falls back: it is closed when nothing is released to it.
    pub fn fallback(&self) -> Vec<Channel> {
        if self.branch.is_some() {
            return vec![self.clone()];
        }
        let pos = RISKS.iter().position(|r| *r == self.risk).unwrap_or(0);
        RISKS[..=pos]
            .iter()
            .rev()
            .map(|risk| Channel {
                track: self.track.clone(),
                risk: (*risk).to_owned(),
                branch: None,
            })
            .collect()
    }
}

impl fmt::Display for Channel {
    /// The full form, `track/risk[/branch]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.track, self.risk)?;
        if let Some(b) = &self.branch {
            write!(f, "/{b}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Channel::parse(s).unwrap().to_string()
    }

    #[test]
    fn parses_like_snapd() {
        assert_eq!(full("stable"), "latest/stable");
        assert_eq!(full("edge"), "latest/edge");
        assert_eq!(full("beta/fix-1"), "latest/beta/fix-1");
        // A risk first means risk/branch, as in snapd.
        assert_eq!(full("stable/edge"), "latest/stable/edge");
        assert_eq!(full("22"), "22/stable");
        assert_eq!(full("22/candidate"), "22/candidate");
        assert_eq!(full("latest/beta"), "latest/beta");
        assert_eq!(full("2.x/edge/hotfix_2"), "2.x/edge/hotfix_2");
        let c = Channel::parse("22/beta/b").unwrap();
        assert_eq!(
            (c.track.as_str(), c.risk.as_str(), c.branch.as_deref()),
            ("22", "beta", Some("b"))
        );
    }

    #[test]
    fn rejects_bad_channels() {
        for (bad, why) in [
            ("", "invalid track"),
            ("latest/gamma", "unknown risk \"gamma\""),
            ("a/b/c/d", "too many"),
            ("stable/beta/x", "is a risk"),
            ("latest/stable/", "invalid branch"),
            ("/stable", "invalid track"),
            ("la test", "invalid track"),
            ("-x/stable", "invalid track"),
        ] {
            let e = Channel::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn falls_back_to_more_stable_risks() {
        let order = |s: &str| -> Vec<String> {
            Channel::parse(s)
                .unwrap()
                .fallback()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            order("edge"),
            [
                "latest/edge",
                "latest/beta",
                "latest/candidate",
                "latest/stable"
            ]
        );
        assert_eq!(order("22/beta"), ["22/beta", "22/candidate", "22/stable"]);
        assert_eq!(order("candidate"), ["latest/candidate", "latest/stable"]);
        assert_eq!(order("stable"), ["latest/stable"]);
        assert_eq!(order("beta/fix"), ["latest/beta/fix"]);
    }
}
