//! Where an account's keys are looked up: the store, GitHub or Launchpad. What was typed (or
//! given in the preseed file) is parsed and checked once, by `coreforge_preseed::Identity`.

use coreforge_preseed::Identity;

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
}

impl Source {
    /// The look-up for a typed or preseeded identity; `None` for keys given directly.
    pub fn of(identity: &Identity) -> Option<Source> {
        match identity {
            Identity::Store(email) => Some(Source::Store {
                email: email.clone(),
            }),
            Identity::GitHub(user) => Some(Source::GitHub { user: user.clone() }),
            Identity::Launchpad(user) => Some(Source::Launchpad { user: user.clone() }),
            Identity::Keys { .. } => None,
        }
    }

    /// For the login details and the record: `store account alice@example.com`,
    /// `GitHub user alice`, `Launchpad user alice`.
    pub fn describe(&self) -> String {
        match self {
            Self::Store { email } => format!("store account {email}"),
            Self::GitHub { user } => format!("GitHub user {user}"),
            Self::Launchpad { user } => format!("Launchpad user {user}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_each_source_for_the_login_details() {
        let cases = [
            ("alice@example.com", "store account alice@example.com"),
            ("gh:alice", "GitHub user alice"),
            ("lp:alice", "Launchpad user alice"),
        ];
        for (input, want) in cases {
            let identity: Identity = input.parse().unwrap();
            assert_eq!(Source::of(&identity).unwrap().describe(), want);
        }
        let keys = Identity::Keys {
            username: "pat".into(),
            ssh_keys: vec![],
        };
        assert_eq!(Source::of(&keys), None);
    }
}
