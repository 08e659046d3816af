//! Login names: the rules for the account console-conf creates, and the names the OS already has.

use super::IdentityError;

/// Longest login name accepted (as `useradd`'s default limit).
pub const MAX_USERNAME: usize = 32;

/// Names the new account must not take: the base snap's users and groups, and `root`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemNames {
    names: Vec<String>,
}

impl SystemNames {
    /// Collects the names from the base's `/etc/passwd` and `/etc/group` (first field of each line).
    pub fn parse(passwd: &str, group: &str) -> Self {
        let mut names: Vec<String> = passwd
            .lines()
            .chain(group.lines())
            .filter_map(|line| line.split(':').next())
            .map(str::trim)
            .filter(|name| !name.is_empty() && !name.starts_with('#'))
            .map(str::to_owned)
            .collect();
        // An empty or unreadable base must still never hand out root.
        names.push("root".to_owned());
        names.sort();
        names.dedup();
        Self { names }
    }

    /// Whether the OS already has a user or group with this name.
    pub fn contains(&self, name: &str) -> bool {
        self.names
            .binary_search_by(|n| n.as_str().cmp(name))
            .is_ok()
    }
}

/// Checks a login name: lower-case letters, digits, `-`, `_`, starting with a letter, at most
/// 32 characters, and not a name the OS already uses.
pub fn validate_username(name: &str, system: &SystemNames) -> Result<(), IdentityError> {
    let bad = |reason: &'static str| IdentityError::BadUsername {
        name: name.to_owned(),
        reason,
    };
    let first = name.chars().next().ok_or_else(|| bad("it is empty"))?;
    if name.len() > MAX_USERNAME {
        return Err(bad("it is longer than 32 characters"));
    }
    if !first.is_ascii_lowercase() {
        return Err(bad("it must start with a lower-case letter"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(bad(
            "it may hold only lower-case letters, digits, `-` and `_`",
        ));
    }
    if system.contains(name) {
        return Err(IdentityError::SystemUsername {
            name: name.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SystemNames {
        SystemNames::parse(
            "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n",
            "root:x:0:\nsudo:x:27:\n",
        )
    }

    #[test]
    fn accepts_ordinary_names() {
        for name in [
            "alice",
            "a",
            "bob-2",
            "c_d",
            "x23456789012345678901234567890ab",
        ] {
            assert!(validate_username(name, &base()).is_ok(), "{name}");
        }
    }

    #[test]
    fn refuses_malformed_names_with_the_rule_broken() {
        let cases = [
            ("", "empty"),
            ("Alice", "start with a lower-case letter"),
            ("1alice", "start with a lower-case letter"),
            ("-alice", "start with a lower-case letter"),
            ("al.ice", "only lower-case letters"),
            ("al ice", "only lower-case letters"),
            ("alicé", "only lower-case letters"),
            ("x234567890123456789012345678901ab", "longer than 32"),
        ];
        for (name, why) in cases {
            let err = validate_username(name, &base()).unwrap_err().to_string();
            assert!(err.contains(why), "{name:?}: {err}");
        }
    }

    #[test]
    fn refuses_names_the_base_uses() {
        for name in ["root", "daemon", "sudo"] {
            let err = validate_username(name, &base()).unwrap_err();
            assert!(
                matches!(err, IdentityError::SystemUsername { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("choose another"), "{err}");
        }
    }

    #[test]
    fn root_is_refused_even_with_an_empty_base() {
        let none = SystemNames::parse("", "");
        assert!(validate_username("root", &none).is_err());
        assert!(validate_username("alice", &none).is_ok());
    }
}
