//! Identity for the first-boot account: what the person typed (or the preseed file said),
//! looked up over HTTPS where needed, turned into a [`setup::Account`](crate::setup::Account)
//! whose user name is valid and whose every key was parsed by `ssh-key`.
//!
//! Sources: a store account e-mail (`<sso-url>/api/v2/keys/<e-mail>`), `gh:USER`
//! (`https://github.com/USER.keys`), `lp:USER` (`https://launchpad.net/~USER/+sshkeys`), or a
//! pasted public key with a user name. Keys fetched from a server are a list the person cannot
//! edit from the console: the good ones are kept and each refused one is reported with its
//! line and reason ([`Identity::rejected`]); none good is an error. Pasted keys are the
//! person's own input: any bad one refuses the whole input, naming it.
//!
//! Host names are resolved by glibc's `getaddrinfo`: in the static agent its `files` and `dns`
//! back-ends are built in (glibc 2.34 and later), so /etc/resolv.conf is all it needs (checked
//! under qemu-aarch64 with no shared libraries at all; see agent/README.md).

mod https;
mod keys;
mod lookup;
mod source;
mod tls;
mod username;

#[cfg(test)]
mod testserver;

pub use https::FetchError;
pub use keys::RejectedKey;
pub use lookup::{pasted, Lookup, SSO_URL_PATH, TLS_ROOTS_PATH};
pub use source::Source;
pub use tls::RootsError;
pub use username::SystemNames;

/// Why no account came out of the identity given; each message says what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The login name breaks the rules.
    #[error("`{name}` cannot be a login name: {reason}")]
    BadUsername {
        /// The name.
        name: String,
        /// The rule broken.
        reason: &'static str,
    },
    /// The OS already has this user or group.
    #[error("`{name}` is a system account of the OS: choose another login name")]
    SystemUsername {
        /// The name.
        name: String,
    },
    /// A name from a server (store, GitHub) that is not a valid login name.
    #[error("{source_name} cannot be used as the login name ({inner}): paste a key and choose a login name instead")]
    UnusableRemoteName {
        /// e.g. "the store account alice@example.com".
        source_name: String,
        /// Why not.
        inner: Box<IdentityError>,
    },
    /// The store, GitHub or Launchpad has no such account (404).
    #[error(
        "{0} does not exist (the server answered 404): check the spelling, or use another source"
    )]
    NoSuchAccount(String),
    /// The account has no keys.
    #[error("{0} has no SSH keys registered: add one there (or paste a key) and try again")]
    NoKeys(String),
    /// Keys were there, none usable.
    #[error("none of the SSH keys of {source_name} can be used: {reasons}; add an Ed25519 key there (or paste a key)")]
    NoUsableKeys {
        /// e.g. "GitHub user alice".
        source_name: String,
        /// Every refusal, `key N: why`, joined.
        reasons: String,
    },
    /// A pasted key is bad.
    #[error("{0}")]
    BadPastedKey(RejectedKey),
    /// A pasted identity with no keys.
    #[error("no SSH public key was given: paste one (`ssh-ed25519 AAAA... you@host`)")]
    NoPastedKeys,
    /// The server answered, but not what the API answers.
    #[error("{url} answered {what}, not {expected}: check the address (/etc/coreforge/sso-url for the store)")]
    BadAnswer {
        /// The URL asked.
        url: String,
        /// What came back.
        what: String,
        /// What the API answers.
        expected: &'static str,
    },
    /// The server answered an unexpected HTTP status.
    #[error("{url} answered HTTP {status}: try again later, or use another source")]
    Status {
        /// The URL asked.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The HTTPS request failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The image's TLS roots are missing or damaged.
    #[error(transparent)]
    Roots(#[from] RootsError),
    /// A configuration file in the initramfs cannot be read.
    #[error("cannot read {path}: {detail}: rebuild the image with `coreforge build-image`")]
    Config {
        /// The file.
        path: String,
        /// The system's words.
        detail: String,
    },
}
