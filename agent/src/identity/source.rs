//! What was typed at the identity screen (or given in the preseed file): which source it is.

use super::IdentityError;

/// Where the account's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A store (Ubuntu One) account, by e-mail.
    Store {
        /// The e-mail address, as typed.
        email: String,
    },
    /// `gh:USER`.
    GitHub {
        /// The GitHub user name, as typed.
        user: String,
    },
    /// `lp:USER`.
    Launchpad {
        /// The Launchpad user name.
        user: String,
    },
    /// A public key pasted on the console; the login name is asked separately.
    Key(String),
}

impl Source {
    /// Recognises an e-mail, `gh:USER`, `lp:USER` or a public key line (surrounding spaces ignored).
    pub fn parse(input: &str) -> Result<Self, IdentityError> {
        let input = input.trim();
        if let Some(user) = strip_prefix_ci(input, "gh:") {
            let user = user.trim();
            check_github_name(user)?;
            return Ok(Self::GitHub {
                user: user.to_owned(),
            });
        }
        if let Some(user) = strip_prefix_ci(input, "lp:") {
            let user = user.trim();
            check_launchpad_name(user)?;
            return Ok(Self::Launchpad {
                user: user.to_owned(),
            });
        }
        if looks_like_key(input) {
            return Ok(Self::Key(input.to_owned()));
        }
        if input.contains('@') {
            check_email(input)?;
            return Ok(Self::Store {
                email: input.to_owned(),
            });
        }
        Err(IdentityError::Unrecognised(
            input.chars().take(60).collect::<String>(),
        ))
    }

    /// For the login details and the record: `store account alice@example.com`,
    /// `GitHub user alice`, `Launchpad user alice`, `pasted key`.
    pub fn describe(&self) -> String {
        match self {
            Self::Store { email } => format!("store account {email}"),
            Self::GitHub { user } => format!("GitHub user {user}"),
            Self::Launchpad { user } => format!("Launchpad user {user}"),
            Self::Key(_) => "pasted key".to_owned(),
        }
    }
}

fn strip_prefix_ci<'a>(input: &'a str, prefix: &str) -> Option<&'a str> {
    let head = input.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| input.get(prefix.len()..))
        .flatten()
}

/// An OpenSSH public key line starts with its algorithm name.
fn looks_like_key(input: &str) -> bool {
    ["ssh-", "ecdsa-sha2-", "sk-", "-----BEGIN"]
        .iter()
        .any(|p| input.starts_with(p))
}

fn bad(what: &'static str, value: &str, reason: &'static str) -> IdentityError {
    IdentityError::BadName {
        what,
        value: value.to_owned(),
        reason,
    }
}

/// GitHub's rules: 1-39 letters, digits and single inner hyphens.
fn check_github_name(user: &str) -> Result<(), IdentityError> {
    const WHAT: &str = "GitHub user name";
    if user.is_empty() || user.len() > 39 {
        return Err(bad(WHAT, user, "it must be 1 to 39 characters"));
    }
    if !user.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(bad(WHAT, user, "only letters, digits and `-` are allowed"));
    }
    if user.starts_with('-') || user.ends_with('-') || user.contains("--") {
        return Err(bad(
            WHAT,
            user,
            "`-` may only stand between letters or digits",
        ));
    }
    Ok(())
}

/// Launchpad's rules: lower-case letters, digits, `+`, `-`, `.`, starting with a letter or digit.
fn check_launchpad_name(user: &str) -> Result<(), IdentityError> {
    const WHAT: &str = "Launchpad user name";
    if user.is_empty() || user.len() > 64 {
        return Err(bad(WHAT, user, "it must be 1 to 64 characters"));
    }
    let ok_first = user
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok_rest = user
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !ok_first || !ok_rest {
        return Err(bad(
            WHAT,
            user,
            "only lower-case letters, digits, `+`, `-` and `.`, starting with a letter or digit",
        ));
    }
    Ok(())
}

/// A plausible address: `local@domain.tld`, printable ASCII, within RFC 5321's lengths.
fn check_email(email: &str) -> Result<(), IdentityError> {
    const WHAT: &str = "e-mail address";
    if email.len() > 254 {
        return Err(bad(WHAT, email, "it is longer than 254 characters"));
    }
    if !email.chars().all(|c| c.is_ascii_graphic()) {
        return Err(bad(
            WHAT,
            email,
            "it holds spaces or characters other than ASCII",
        ));
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(bad(WHAT, email, "it has no `@`"));
    };
    if local.is_empty() || local.len() > 64 || local.contains('@') {
        return Err(bad(
            WHAT,
            email,
            "the part before `@` is empty, too long or holds another `@`",
        ));
    }
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !domain.contains('.') || !labels_ok {
        return Err(bad(WHAT, email, "the part after `@` is not a domain name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::keys::tests::ED25519;

    #[test]
    fn recognises_each_source() {
        assert_eq!(
            Source::parse(" alice@example.com ").unwrap(),
            Source::Store {
                email: "alice@example.com".into()
            }
        );
        assert_eq!(
            Source::parse("gh:Alice-B").unwrap(),
            Source::GitHub {
                user: "Alice-B".into()
            }
        );
        assert_eq!(
            Source::parse("LP:alice.b+x").unwrap(),
            Source::Launchpad {
                user: "alice.b+x".into()
            }
        );
        assert_eq!(Source::parse(ED25519).unwrap(), Source::Key(ED25519.into()));
    }

    #[test]
    fn describes_each_source_for_the_login_details() {
        let cases = [
            ("alice@example.com", "store account alice@example.com"),
            ("gh:alice", "GitHub user alice"),
            ("lp:alice", "Launchpad user alice"),
            (ED25519, "pasted key"),
        ];
        for (input, want) in cases {
            assert_eq!(Source::parse(input).unwrap().describe(), want);
        }
    }

    #[test]
    fn refuses_what_is_none_of_them() {
        for input in ["", "alice", "http://example.com"] {
            assert!(
                matches!(Source::parse(input), Err(IdentityError::Unrecognised(_))),
                "{input:?}"
            );
        }
    }

    #[test]
    fn refuses_bad_names_and_addresses_with_the_rule() {
        let cases = [
            ("gh:", "1 to 39"),
            ("gh:-alice", "between letters"),
            ("gh:al--ice", "between letters"),
            ("gh:al/ice", "only letters"),
            ("gh:../../etc", "only letters"),
            ("lp:Alice", "only lower-case"),
            ("lp:~alice", "only lower-case"),
            ("@example.com", "before `@`"),
            ("alice@", "not a domain"),
            ("alice@localhost", "not a domain"),
            ("alice@exa mple.com", "spaces"),
            ("alice@ex_ample.com", "not a domain"),
            ("a@b@example.com", "before `@`"),
        ];
        for (input, why) in cases {
            let err = Source::parse(input).unwrap_err().to_string();
            assert!(err.contains(why), "{input:?}: {err}");
        }
    }
}
