//! Reads, writes, signs and verifies snapd's assertions.
//!
//! Decoding keeps each assertion's bytes exactly as received, so
//! verification checks what arrived, not a re-serialization; only
//! [`TrustDb::verify`] makes a [`Verified`].
//!
//! ```
//! use coreforge_assertions::{sign, Assertion, HeaderValue, PrivateKey, Timestamp, TrustDb};
//!
//! let key = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
//! let headers: Vec<(String, HeaderValue)> = vec![
//!     ("type".into(), "account".into()),
//!     ("authority-id".into(), "brand".into()),
//!     ("account-id".into(), "brand".into()),
//!     ("display-name".into(), "Brand".into()),
//!     ("validation".into(), "unproven".into()),
//!     ("timestamp".into(), "2026-01-01T00:00:00Z".into()),
//! ];
//! let account = sign(&headers, None, &key, Timestamp::now()).unwrap();
//! let again = Assertion::decode(account.encode()).unwrap();
//! assert_eq!(again.header_str("display-name"), Some("Brand"));
//! // Nothing is trusted yet, so it does not verify.
//! assert!(TrustDb::new().verify(&again).is_err());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod assertion;
mod error;
mod headers;
#[cfg(feature = "json")]
mod json;
mod kinds;
mod pin;
mod time;
mod trust;
mod typed;

pub use assertion::{
    format_content, sign, Assertion, MAX_BODY_SIZE, MAX_HEADERS_SIZE, MAX_SIGNATURE_SIZE,
};
pub use error::{DecodeError, HeaderError, Rule, SignError, VerifyError};
pub use headers::{HeaderValue, Headers};
#[cfg(feature = "json")]
pub use json::JsonStatement;
pub use kinds::{lookup as lookup_type, AssertionType, TYPES};
pub use pin::{sha3_384, DevicePin, PinError, MAX_PIN_SIZE};
pub use time::Timestamp;
pub use trust::{TrustDb, Verified, MAX_CHAIN};
pub use typed::valid_snap_name;
pub use typed::{
    Account, AccountKey, AccountKeyRequest, Authorities, Model, ModelSnap, RevisionAuthority,
    Serial, SnapDeclaration, SnapRevision, Store, SystemUser, DEFAULT_PROVENANCE,
};

mod keys;
mod openpgp;
pub use keys::{
    parse_signature, KeyError, PrivateKey, PublicKey, RsaPublicKey, SignatureAlgorithm,
    SignatureError, SignatureInfo,
};
