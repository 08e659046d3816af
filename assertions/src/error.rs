//! Errors, split by whose fault they are: malformed input, content that
//! breaks a type's rules, untrusted content, and misuse when signing.

use thiserror::Error;

/// The bytes are not a well-formed assertion (bad input).
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// No blank line separates the content from the signature.
    #[error("assertion content/signature separator (a blank line) not found: the input is truncated or not an assertion")]
    MissingSignatureSeparator,
    /// The signature part is empty.
    #[error("empty assertion signature")]
    EmptySignature,
    /// The headers contain bytes that are not UTF-8.
    #[error("assertion headers are not valid UTF-8")]
    HeadersNotUtf8,
    /// The body contains bytes that are not UTF-8.
    #[error("assertion body is not valid UTF-8")]
    BodyNotUtf8,
    /// A header line has no `:`.
    #[error("header entry missing ':' separator: {0:?}")]
    MissingColon(String),
    /// A header name breaks `^[a-z](?:-?[a-z0-9])*$`.
    #[error("invalid header name: {0:?}")]
    InvalidHeaderName(String),
    /// A map key breaks the header name rule.
    #[error("invalid map entry key: {0:?}")]
    InvalidMapKey(String),
    /// A one-line value does not start with a space.
    #[error("header entry should have a space or newline (for multiline) before value: {0:?}")]
    MissingSpace(String),
    /// A header appears twice.
    #[error("repeated header: {0:?}")]
    RepeatedHeader(String),
    /// A map key appears twice.
    #[error("repeated map entry: {0:?}")]
    RepeatedMapKey(String),
    /// A multi-line value is not indented as it must be.
    #[error("expected {indent} chars nesting prefix after multiline introduction {intro:?}")]
    ExpectedIndent {
        /// The line introducing the value.
        intro: String,
        /// The indentation expected.
        indent: usize,
    },
    /// Lists and maps nest deeper than any real assertion does.
    #[error("header values nest too deeply")]
    TooDeep,
    /// The declared `body-length` differs from the body's length.
    #[error("assertion body length and declared body-length don't match: {actual} != {declared}")]
    BodyLengthMismatch {
        /// The body's real length.
        actual: usize,
        /// What `body-length` says.
        declared: usize,
    },
    /// Part of the assertion exceeds snapd's size limits.
    #[error("assertion {part} is {size} bytes, more than the maximum of {max}")]
    TooLarge {
        /// Which part: headers, body or signature.
        part: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The input ends in the middle of an assertion.
    #[error("unexpected end of input inside an assertion ({0}): the file is truncated")]
    Truncated(&'static str),
    /// The body is not followed by the blank line that ends it.
    #[error("missing content/signature separator after the body")]
    MissingBodySeparator,
    /// A required header is missing or has the wrong shape.
    #[error(transparent)]
    Header(#[from] HeaderError),
}

/// A header is missing, of the wrong shape, or breaks the rules of its type.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// A required header is absent.
    #[error("\"{0}\" header is mandatory")]
    Missing(String),
    /// A header that must be a non-empty string is empty.
    #[error("\"{0}\" header should not be empty")]
    Empty(String),
    /// A header has the wrong kind of value.
    #[error("\"{name}\" header must be {expected}")]
    WrongKind {
        /// The header.
        name: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A header's value is not acceptable.
    #[error("\"{name}\" header is invalid: {reason}")]
    Invalid {
        /// The header.
        name: String,
        /// Why.
        reason: String,
    },
    /// The assertion type is not one snapd knows.
    #[error("unknown assertion type: {0:?}")]
    UnknownType(String),
    /// The assertion type requires no authority but one is set (or the reverse).
    #[error("{0}")]
    Authority(String),
}

impl HeaderError {
    pub(crate) fn invalid(name: &str, reason: impl Into<String>) -> Self {
        HeaderError::Invalid {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Verification failed: the assertion is not trusted (or not intact).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No account-key with the signing key id is known.
    #[error("no matching public key {key_id:?} for signature by {authority:?}: add the account-key assertion that holds it (e.g. with --trusted or as another input)")]
    UnknownKey {
        /// The `sign-key-sha3-384` of the assertion.
        key_id: String,
        /// The assertion's authority.
        authority: String,
    },
    /// The signing key belongs to another account than the authority.
    #[error("signing key {key_id:?} belongs to account {owner:?}, not to the assertion's authority {authority:?}")]
    KeyNotOwnedByAuthority {
        /// The signing key.
        key_id: String,
        /// Who owns it.
        owner: String,
        /// Who the assertion says signed it.
        authority: String,
    },
    /// The signing key was not valid at the assertion's time.
    #[error("assertion is signed with public key {key_id:?} from {authority:?} which is not valid at {at} (valid from {since} until {until})")]
    KeyNotValidAtTime {
        /// The signing key.
        key_id: String,
        /// The assertion's authority.
        authority: String,
        /// The assertion's time (RFC 3339).
        at: String,
        /// Start of the key's validity.
        since: String,
        /// End of the key's validity, or "forever".
        until: String,
    },
    /// The signature does not match the content.
    #[error("failed signature verification: {0}")]
    BadSignature(String),
    /// The chain of signing keys does not reach a trusted root.
    #[error("cannot chain {what} to a trusted root: {source}")]
    Chain {
        /// The link that failed.
        what: String,
        /// Why.
        #[source]
        source: Box<VerifyError>,
    },
    /// The chain of account-keys loops or is absurdly long.
    #[error("account-key chain is longer than {0} links or loops")]
    ChainTooLong(usize),
    /// A model is not signed by its brand.
    #[error("authority-id and brand-id must match, model assertions are expected to be signed by the brand: {authority:?} != {brand:?}")]
    BrandMismatch {
        /// The model's authority-id.
        authority: String,
        /// The model's brand-id.
        brand: String,
    },
    /// An account the assertion refers to is missing.
    #[error(
        "{what} refers to account {account:?} but no account assertion for it is known: add it"
    )]
    MissingAccount {
        /// The assertion referring to the account.
        what: String,
        /// The missing account.
        account: String,
    },
    /// The signer is not an account the type's authority rule allows.
    #[error(
        "{what} is signed by {authority:?}, which breaks the rule: {rule} (allowed: {allowed})"
    )]
    NotAuthorized {
        /// The assertion (type and primary key, or what it is about).
        what: String,
        /// Who signed it (`authority-id`).
        authority: String,
        /// The rule broken, as a sentence.
        rule: Rule,
        /// The accounts the rule allows here.
        allowed: String,
    },
    /// coreforge has no authority rule for this type, so it accepts none of it.
    #[error("{0} assertions are not accepted: coreforge has no authority rule for this type")]
    NoRule(String),
    /// The signing key has expired (or is not valid yet) at the database's current time.
    #[error("assertion is signed with expired public key {key_id:?} from {authority:?}: {when} but the key is valid {validity}")]
    KeyExpired {
        /// The signing key.
        key_id: String,
        /// The assertion's authority.
        authority: String,
        /// `current time is ...` or `the time is at least ...`.
        when: String,
        /// `from X` or `during [X, Y)`.
        validity: String,
    },
    /// An assertion the checked one depends on is missing.
    #[error("{what} needs {needed}, which is not known: add it")]
    Missing {
        /// The assertion that needs it.
        what: String,
        /// What is missing.
        needed: String,
    },
    /// The assertion breaks the rules of its type.
    #[error(transparent)]
    Header(#[from] HeaderError),
}

/// The authority rules of snapd's `asserts` package: who may sign each type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// `account`, `account-key`, `snap-declaration`, `store`: only a directly trusted
    /// authority (an account of the trusted roots: the store).
    TrustedAuthority,
    /// `snap-revision`: a trusted authority, or for a provenance other than
    /// `global-upload`, an account the snap's declaration names in `revision-authority`.
    RevisionAuthority,
    /// `model`: its brand.
    Brand,
    /// `serial`: the brand, or an account of the model's `serial-authority`.
    SerialAuthority,
    /// `system-user`: the brand, or an account of the model's `system-user-authority`.
    SystemUserAuthority,
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rule::TrustedAuthority => {
                "accounts, account-keys, snap-declarations and stores are signed by a directly trusted authority (the store), never by an ordinary account"
            }
            Rule::RevisionAuthority => {
                "snap-revisions are signed by a trusted authority, or, with a provenance other than global-upload, by a revision-authority of the snap's declaration"
            }
            Rule::Brand => "models are signed by their brand",
            Rule::SerialAuthority => {
                "serials are signed by the brand or an account of the model's serial-authority"
            }
            Rule::SystemUserAuthority => {
                "system-users are signed by the brand or an account of the model's system-user-authority"
            }
        })
    }
}

/// Signing could not produce an assertion (misuse or bad input headers).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SignError {
    /// The headers are not acceptable for the type.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The input was not acceptable JSON for an assertion.
    #[error("{0}")]
    Json(String),
    /// The key could not sign.
    #[error("cannot sign: {0}")]
    Key(String),
    /// The assertion we produced did not decode again (a bug).
    #[error("signed assertion does not decode: {0}")]
    Decode(#[from] DecodeError),
}
