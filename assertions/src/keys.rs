//! Signing keys and signatures in snapd's encodings.
//!
//! A public key is `0x01` followed by an OpenPGP v4 public-key packet created at
//! 2016-01-01T00:00:00Z; its id is the unpadded base64url SHA3-384 of those bytes.
//! A signature is `0x01` followed by an OpenPGP v4 signature packet over a binary
//! document. RSA keys sign with PKCS#1 v1.5 (what snapd verifies); coreforge's own
//! keys may also be Ed25519 (OpenPGP EdDSA, which signs the hash digest).

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, Pkcs1v15Sign, RsaPrivateKey};
use sha2::{Digest, Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

use crate::openpgp::{self, KeyMaterial, Malformed};

/// The fixed creation time snapd writes in every public-key packet (2016-01-01T00:00:00Z).
const KEY_CREATION_TIME: u32 = 1_451_606_400;
/// The version octet in front of every encoded key and signature.
const FORMAT_V1: u8 = 0x01;
/// snapd wraps base64 key and signature text at 76 columns.
const LINE_WIDTH: usize = 76;
/// Largest RSA modulus accepted (the real Canonical root is 8192 bits).
const MAX_RSA_BITS: usize = 16384;

/// Why a key could not be decoded or used.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum KeyError {
    /// The key text is not base64.
    #[error("public key is not valid base64: {0}")]
    Base64(String),
    /// There were no bytes at all.
    #[error("public key is empty")]
    Empty,
    /// The leading format octet is not 0x01.
    #[error("unsupported public key format version {0} (snapd's format is version 1)")]
    UnsupportedFormat(u8),
    /// The packet is some other OpenPGP packet.
    #[error("expected an OpenPGP public-key packet (tag 6), got packet tag {0}")]
    NotAPublicKey(u8),
    /// The packet is damaged or uses something this code does not read.
    #[error("malformed public key: {0}")]
    Malformed(String),
    /// The packet's creation time is not snapd's fixed one, so its id would differ from snapd's.
    #[error("public key creation time is {0}, but snapd's encoding fixes it at 2016-01-01T00:00:00Z (1451606400)")]
    CreationTime(u32),
    /// The bytes parse but are not the one encoding snapd would write for this key.
    #[error("public key is not in snapd's canonical encoding (old-format packet header or non-minimal numbers); re-export it with snapd or coreforge")]
    NonCanonical,
    /// The RSA numbers are not a usable key.
    #[error("invalid RSA public key: {0}")]
    InvalidRsa(String),
    /// The 32 bytes are not an Ed25519 point.
    #[error("invalid Ed25519 public key: not a valid curve point")]
    InvalidEd25519,
    /// `from_secret_bytes` was given something that is not a serialized private key.
    #[error("invalid private key bytes: {0}")]
    InvalidSecret(String),
    /// A new key could not be made.
    #[error("cannot generate a {bits}-bit RSA key: {reason}")]
    Generate {
        /// The size asked for.
        bits: usize,
        /// Why.
        reason: String,
    },
}

/// Why a signature could not be parsed, made, or verified.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum SignatureError {
    /// There were no bytes at all.
    #[error("signature is empty")]
    Empty,
    /// The leading format octet is not 0x01.
    #[error("unsupported signature format version {0} (snapd's format is version 1)")]
    UnsupportedFormat(u8),
    /// The packet is some other OpenPGP packet.
    #[error("expected an OpenPGP signature packet (tag 2), got packet tag {0}")]
    NotASignature(u8),
    /// The packet is damaged or uses something this code does not read.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// Not a signature over a binary document.
    #[error("signature type 0x{0:02x} is not a binary-document signature (0x00)")]
    UnsupportedType(u8),
    /// A hash other than SHA-256/384/512.
    #[error("unsupported signature hash algorithm {0} (supported: SHA-256, SHA-384, SHA-512)")]
    UnsupportedHash(u8),
    /// The key and the signature use different algorithms.
    #[error("signature was made with an {signature} key but the key is {key}")]
    WrongKeyType {
        /// The key's algorithm.
        key: &'static str,
        /// The signature's algorithm.
        signature: &'static str,
    },
    /// The signature is well formed but was not made over this content by this key.
    #[error("signature does not match content")]
    Invalid,
    /// The private-key operation failed.
    #[error("cannot sign: {0}")]
    Signing(String),
}

impl From<Malformed> for SignatureError {
    fn from(m: Malformed) -> Self {
        SignatureError::Malformed(m.0)
    }
}

impl From<Malformed> for KeyError {
    fn from(m: Malformed) -> Self {
        KeyError::Malformed(m.0)
    }
}

/// The public-key algorithm a signature was made with.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// RSA, PKCS#1 v1.5 (OpenPGP algorithm 1).
    Rsa,
    /// EdDSA over Ed25519 (OpenPGP algorithm 22).
    Ed25519,
}

impl SignatureAlgorithm {
    /// The short name used in messages ("rsa", "ed25519").
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlgorithm::Rsa => "rsa",
            SignatureAlgorithm::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a signature block says about itself, before any verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureInfo {
    /// The algorithm of the key that made it.
    pub algorithm: SignatureAlgorithm,
    /// Creation time, Unix seconds (from the hashed area, so covered by the signature).
    pub created: u32,
    /// The OpenPGP issuer key id, if any; informational only (snapd's does not match the key).
    pub issuer: Option<[u8; 8]>,
}

/// A public key as snapd encodes it (0x01 + OpenPGP v4 public-key packet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// An Ed25519 key (OpenPGP EdDSA); coreforge's own keys.
    Ed25519(VerifyingKey),
    /// An RSA key; what snapd makes and verifies.
    Rsa(RsaPublicKey),
}

/// An RSA public key: modulus and exponent, big-endian without leading zeros. Verification
/// is `ring`'s (which the agent links for TLS already), at native speed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl RsaPublicKey {
    /// Checks the numbers: a modulus of 1024 to [`MAX_RSA_BITS`] bits, odd, and an odd
    /// exponent from 3 to 2^33 - 1 (what `ring` verifies with).
    pub fn new(n: &[u8], e: &[u8]) -> Result<RsaPublicKey, KeyError> {
        let (n, e) = (strip_zeros(n), strip_zeros(e));
        let bits = bit_length(n);
        if !(1024..=MAX_RSA_BITS).contains(&bits) {
            return Err(KeyError::InvalidRsa(format!(
                "the modulus has {bits} bits; 1024 to {MAX_RSA_BITS} are accepted"
            )));
        }
        if n.last().is_some_and(|b| b & 1 == 0) {
            return Err(KeyError::InvalidRsa("the modulus is even".into()));
        }
        let e_bits = bit_length(e);
        if !(2..=33).contains(&e_bits) || e.last().is_some_and(|b| b & 1 == 0) {
            return Err(KeyError::InvalidRsa(
                "the public exponent must be odd, from 3 to 2^33 - 1".into(),
            ));
        }
        Ok(RsaPublicKey {
            n: n.to_vec(),
            e: e.to_vec(),
        })
    }

    /// The modulus, big-endian, no leading zeros.
    pub fn n(&self) -> &[u8] {
        &self.n
    }

    /// The public exponent, big-endian, no leading zeros.
    pub fn e(&self) -> &[u8] {
        &self.e
    }

    /// The modulus's width in bits.
    pub fn bits(&self) -> usize {
        bit_length(&self.n)
    }

    /// The modulus's width in bytes (what a PKCS#1 signature is padded to).
    pub fn size(&self) -> usize {
        self.n.len()
    }

    /// Verifies a PKCS#1 v1.5 signature `s` (as wide as the modulus) over `message`,
    /// hashed with the OpenPGP hash algorithm `hash_algo`.
    fn verify(&self, hash_algo: u8, message: &[u8], s: &[u8]) -> Result<(), SignatureError> {
        use ring::signature as sig;
        let wide = self.bits() >= 2048;
        let params: &sig::RsaParameters = match (hash_algo, wide) {
            (openpgp::HASH_SHA256, true) => &sig::RSA_PKCS1_2048_8192_SHA256,
            (openpgp::HASH_SHA256, false) => &sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            (openpgp::HASH_SHA384, true) => &sig::RSA_PKCS1_2048_8192_SHA384,
            (openpgp::HASH_SHA512, true) => &sig::RSA_PKCS1_2048_8192_SHA512,
            (openpgp::HASH_SHA512, false) => &sig::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
            (other, _) => return Err(SignatureError::UnsupportedHash(other)),
        };
        sig::RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(params, message, s)
        .map_err(|_| SignatureError::Invalid)
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

fn bit_length(b: &[u8]) -> usize {
    let b = strip_zeros(b);
    match b.first() {
        None => 0,
        Some(top) => (b.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

impl PublicKey {
    /// Decodes base64 text as in an account-key body (newlines allowed anywhere).
    pub fn decode(base64_text: &[u8]) -> Result<PublicKey, KeyError> {
        let flat: Vec<u8> = base64_text
            .iter()
            .copied()
            .filter(|&b| b != b'\n' && b != b'\r')
            .collect();
        let bytes = STANDARD
            .decode(flat)
            .map_err(|e| KeyError::Base64(e.to_string()))?;
        Self::from_packet(&bytes)
    }

    /// Decodes the binary form (0x01 + packet); only snapd's canonical encoding is accepted,
    /// so that the id computed here is the id of the bytes received.
    pub fn from_packet(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let packet = match bytes.split_first() {
            None => return Err(KeyError::Empty),
            Some((&FORMAT_V1, rest)) => rest,
            Some((&v, _)) => return Err(KeyError::UnsupportedFormat(v)),
        };
        let (tag, body) = openpgp::read_packet(packet)?;
        if tag != openpgp::TAG_PUBLIC_KEY {
            return Err(KeyError::NotAPublicKey(tag));
        }
        let parsed = openpgp::parse_public_key(body)?;
        if parsed.created != KEY_CREATION_TIME {
            return Err(KeyError::CreationTime(parsed.created));
        }
        let key = match parsed.material {
            KeyMaterial::Rsa { n, e } => PublicKey::Rsa(RsaPublicKey::new(n, e)?),
            KeyMaterial::Ed25519(k) => PublicKey::Ed25519(
                VerifyingKey::from_bytes(&k).map_err(|_| KeyError::InvalidEd25519)?,
            ),
        };
        if key.to_packet() != bytes {
            return Err(KeyError::NonCanonical);
        }
        Ok(key)
    }

    /// The OpenPGP public-key packet body (no header).
    fn packet_body(&self) -> Vec<u8> {
        match self {
            PublicKey::Rsa(k) => {
                openpgp::write_public_key(KEY_CREATION_TIME, &KeyMaterial::Rsa { n: &k.n, e: &k.e })
            }
            PublicKey::Ed25519(k) => {
                openpgp::write_public_key(KEY_CREATION_TIME, &KeyMaterial::Ed25519(k.to_bytes()))
            }
        }
    }

    /// The binary form: 0x01 + OpenPGP v4 public-key packet.
    pub fn to_packet(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_V1];
        out.extend(openpgp::write_packet(
            openpgp::TAG_PUBLIC_KEY,
            &self.packet_body(),
        ));
        out
    }

    /// base64 of `to_packet()` wrapped at 76 columns, no trailing newline (an account-key body).
    pub fn encode(&self) -> String {
        wrap_base64(&self.to_packet())
    }

    /// snapd's key id: unpadded base64url of SHA3-384 over `to_packet()` (64 characters).
    pub fn id(&self) -> String {
        use sha3::{Digest as _, Sha3_384};
        URL_SAFE_NO_PAD.encode(Sha3_384::digest(self.to_packet()))
    }

    /// The algorithm for display: "ed25519", "rsa-4096", ...
    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "ed25519",
            PublicKey::Rsa(k) => match k.bits() {
                1024 => "rsa-1024",
                2048 => "rsa-2048",
                3072 => "rsa-3072",
                4096 => "rsa-4096",
                8192 => "rsa-8192",
                _ => "rsa",
            },
        }
    }

    fn signature_algorithm(&self) -> SignatureAlgorithm {
        match self {
            PublicKey::Ed25519(_) => SignatureAlgorithm::Ed25519,
            PublicKey::Rsa(_) => SignatureAlgorithm::Rsa,
        }
    }

    /// Checks that `signature` (0x01 + signature packet) was made over `content` by this key.
    /// The issuer subpacket is not checked: snapd's does not name the key.
    pub fn verify(&self, content: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        let body = signature_packet_body(signature)?;
        let sig = openpgp::parse_signature(body)?;
        if sig.sig_type != openpgp::SIG_BINARY {
            return Err(SignatureError::UnsupportedType(sig.sig_type));
        }
        let sig_algo = algorithm_of(sig.pubkey_algo)?;
        if sig_algo != self.signature_algorithm() {
            return Err(SignatureError::WrongKeyType {
                key: self.signature_algorithm().as_str(),
                signature: sig_algo.as_str(),
            });
        }
        let digest = signature_digest(sig.hash_algo, content, sig.hashed_part)?;
        // A cheap early reject that OpenPGP puts there for this purpose.
        if digest[..2] != sig.hash_prefix {
            return Err(SignatureError::Invalid);
        }
        match self {
            PublicKey::Rsa(key) => {
                // Go and GnuPG may strip leading zero octets; PKCS#1 wants the key's width.
                let s =
                    openpgp::left_pad(sig.mpis[0], key.size()).ok_or(SignatureError::Invalid)?;
                // ring hashes the message itself: the same bytes the digest was made from.
                let trailer = openpgp::signature_trailer(sig.hashed_part);
                let mut message =
                    Vec::with_capacity(content.len() + sig.hashed_part.len() + trailer.len());
                message.extend_from_slice(content);
                message.extend_from_slice(sig.hashed_part);
                message.extend_from_slice(&trailer);
                key.verify(sig.hash_algo, &message, &s)
            }
            PublicKey::Ed25519(key) => {
                let r = openpgp::left_pad(sig.mpis[0], 32).ok_or(SignatureError::Invalid)?;
                let s = openpgp::left_pad(sig.mpis[1], 32).ok_or(SignatureError::Invalid)?;
                let mut rs = [0u8; 64];
                rs[..32].copy_from_slice(&r);
                rs[32..].copy_from_slice(&s);
                let sig = ed25519_dalek::Signature::from_bytes(&rs);
                key.verify_strict(&digest, &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
        }
    }
}

/// Reads what a signature block (0x01 + signature packet) says, without verifying it.
pub fn parse_signature(signature: &[u8]) -> Result<SignatureInfo, SignatureError> {
    let body = signature_packet_body(signature)?;
    let sig = openpgp::parse_signature(body)?;
    Ok(SignatureInfo {
        algorithm: algorithm_of(sig.pubkey_algo)?,
        created: sig.created,
        issuer: sig.issuer,
    })
}

fn signature_packet_body(signature: &[u8]) -> Result<&[u8], SignatureError> {
    let packet = match signature.split_first() {
        None => return Err(SignatureError::Empty),
        Some((&FORMAT_V1, rest)) => rest,
        Some((&v, _)) => return Err(SignatureError::UnsupportedFormat(v)),
    };
    let (tag, body) = openpgp::read_packet(packet)?;
    if tag != openpgp::TAG_SIGNATURE {
        return Err(SignatureError::NotASignature(tag));
    }
    Ok(body)
}

fn algorithm_of(pubkey_algo: u8) -> Result<SignatureAlgorithm, SignatureError> {
    match pubkey_algo {
        openpgp::ALGO_RSA => Ok(SignatureAlgorithm::Rsa),
        openpgp::ALGO_EDDSA => Ok(SignatureAlgorithm::Ed25519),
        other => Err(SignatureError::Malformed(format!(
            "unsupported public-key algorithm {other}"
        ))),
    }
}

/// The OpenPGP v4 signature hash: content, then the hashed part, then the trailer.
fn signature_digest(
    hash_algo: u8,
    content: &[u8],
    hashed_part: &[u8],
) -> Result<Vec<u8>, SignatureError> {
    fn run<D: Digest>(content: &[u8], hashed_part: &[u8]) -> Vec<u8> {
        let mut h = D::new();
        h.update(content);
        h.update(hashed_part);
        h.update(openpgp::signature_trailer(hashed_part));
        h.finalize().to_vec()
    }
    match hash_algo {
        openpgp::HASH_SHA256 => Ok(run::<Sha256>(content, hashed_part)),
        openpgp::HASH_SHA384 => Ok(run::<Sha384>(content, hashed_part)),
        openpgp::HASH_SHA512 => Ok(run::<Sha512>(content, hashed_part)),
        other => Err(SignatureError::UnsupportedHash(other)),
    }
}

fn wrap_base64(bytes: &[u8]) -> String {
    let flat = STANDARD.encode(bytes);
    let mut out = String::with_capacity(flat.len() + flat.len() / LINE_WIDTH);
    for (i, chunk) in flat.as_bytes().chunks(LINE_WIDTH).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        // base64 output is ASCII, so any byte boundary is a char boundary.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
    out
}

/// A private signing key (Ed25519 for coreforge's own keys, RSA when imported from GnuPG).
// Unboxed SigningKey is the agreed API; a handful of keys live at once, size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum PrivateKey {
    /// An Ed25519 key.
    Ed25519(SigningKey),
    /// An RSA key (boxed: it is large).
    Rsa(Box<RsaPrivateKey>),
}

impl fmt::Debug for PrivateKey {
    // Never print secret numbers (RsaPrivateKey's own Debug would).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let public = self.public_key();
        f.debug_struct("PrivateKey")
            .field("algorithm", &public.algorithm())
            .field("id", &public.id())
            .finish_non_exhaustive()
    }
}

/// Magic at the start of `to_secret_bytes` output.
const SECRET_MAGIC: &[u8; 8] = b"CFSECKEY";
const SECRET_VERSION: u8 = 1;
const SECRET_ED25519: u8 = 1;
const SECRET_RSA: u8 = 2;

impl PrivateKey {
    /// Generates a new Ed25519 key.
    pub fn generate_ed25519(rng: &mut impl rand_core::CryptoRngCore) -> PrivateKey {
        PrivateKey::Ed25519(SigningKey::generate(rng))
    }

    /// Generates a new RSA key of `bits` bits (snapd's keys have 4096), exponent 65537.
    pub fn generate_rsa(
        rng: &mut impl rand_core::CryptoRngCore,
        bits: usize,
    ) -> Result<PrivateKey, KeyError> {
        RsaPrivateKey::new(rng, bits)
            .map(|k| PrivateKey::Rsa(Box::new(k)))
            .map_err(|e| KeyError::Generate {
                bits,
                reason: e.to_string(),
            })
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
            PrivateKey::Rsa(k) => PublicKey::Rsa(RsaPublicKey {
                n: k.n().to_bytes_be(),
                e: k.e().to_bytes_be(),
            }),
        }
    }

    /// Signs `content`, returning 0x01 + an OpenPGP v4 signature packet (binary document,
    /// SHA-512, creation time hashed, issuer key id unhashed), as snapd writes them.
    pub fn sign(&self, content: &[u8], created_unix: u32) -> Result<Vec<u8>, SignatureError> {
        let public = self.public_key();
        let issuer = openpgp::key_id(&public.packet_body());
        let pubkey_algo = match self {
            PrivateKey::Ed25519(_) => openpgp::ALGO_EDDSA,
            PrivateKey::Rsa(_) => openpgp::ALGO_RSA,
        };
        let hashed =
            openpgp::signature_hashed_part(pubkey_algo, openpgp::HASH_SHA512, created_unix);
        let digest = signature_digest(openpgp::HASH_SHA512, content, &hashed)?;
        let mut mpis = Vec::new();
        match self {
            PrivateKey::Rsa(key) => {
                let s = key
                    .sign_with_rng(
                        &mut rand_core::OsRng,
                        Pkcs1v15Sign::new::<Sha512>(),
                        &digest,
                    )
                    .map_err(|e| SignatureError::Signing(e.to_string()))?;
                // Go writes the full modulus width with bit count 8 * len; so do we.
                openpgp::write_mpi_full_width(&mut mpis, &s);
            }
            PrivateKey::Ed25519(key) => {
                // OpenPGP EdDSA signs the hash digest, not the content itself.
                let sig = key.sign(&digest);
                openpgp::write_mpi(&mut mpis, sig.r_bytes());
                openpgp::write_mpi(&mut mpis, sig.s_bytes());
            }
        }
        let body = openpgp::write_signature(&hashed, issuer, [digest[0], digest[1]], &mpis);
        let mut out = vec![FORMAT_V1];
        out.extend(openpgp::write_packet(openpgp::TAG_SIGNATURE, &body));
        Ok(out)
    }

    /// A self-describing serialization for the host key store (magic, version, algorithm,
    /// then the Ed25519 seed or the RSA numbers n, e, d, primes as length-prefixed fields).
    pub fn to_secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::new());
        out.extend_from_slice(SECRET_MAGIC);
        out.push(SECRET_VERSION);
        match self {
            PrivateKey::Ed25519(k) => {
                out.push(SECRET_ED25519);
                out.extend_from_slice(k.as_bytes());
            }
            PrivateKey::Rsa(k) => {
                out.push(SECRET_RSA);
                let mut fields: Vec<Zeroizing<Vec<u8>>> = vec![
                    Zeroizing::new(k.n().to_bytes_be()),
                    Zeroizing::new(k.e().to_bytes_be()),
                    Zeroizing::new(k.d().to_bytes_be()),
                ];
                fields.extend(k.primes().iter().map(|p| Zeroizing::new(p.to_bytes_be())));
                out.push(fields.len() as u8);
                for f in &fields {
                    out.extend_from_slice(&(f.len() as u32).to_be_bytes());
                    out.extend_from_slice(f);
                }
            }
        }
        out
    }

    /// Reads what `to_secret_bytes` wrote.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<PrivateKey, KeyError> {
        let bad = |m: &str| KeyError::InvalidSecret(m.to_string());
        let mut r = openpgp::Reader::new(bytes);
        let magic = r
            .take(SECRET_MAGIC.len(), "magic")
            .map_err(|_| bad("too short"))?;
        if magic != SECRET_MAGIC {
            return Err(bad("not a coreforge private key (wrong magic)"));
        }
        let version = r.u8("version").map_err(|_| bad("too short"))?;
        if version != SECRET_VERSION {
            return Err(KeyError::InvalidSecret(format!(
                "unsupported version {version} (this build reads version {SECRET_VERSION})"
            )));
        }
        let key = match r.u8("algorithm").map_err(|_| bad("too short"))? {
            SECRET_ED25519 => {
                let seed = r
                    .take(32, "seed")
                    .map_err(|_| bad("truncated Ed25519 seed"))?;
                let mut s = Zeroizing::new([0u8; 32]);
                s.copy_from_slice(seed);
                PrivateKey::Ed25519(SigningKey::from_bytes(&s))
            }
            SECRET_RSA => {
                let count = r.u8("count").map_err(|_| bad("too short"))?;
                if !(5..=16).contains(&count) {
                    return Err(bad("RSA key needs n, e, d and at least two primes"));
                }
                let mut fields = Vec::with_capacity(usize::from(count));
                for _ in 0..count {
                    let len = r.u32("length").map_err(|_| bad("truncated RSA field"))?;
                    let field = r
                        .take(len as usize, "field")
                        .map_err(|_| bad("truncated RSA field"))?;
                    fields.push(BigUint::from_bytes_be(field));
                }
                let primes = fields.split_off(3);
                let d = fields.pop().ok_or_else(|| bad("missing d"))?;
                let e = fields.pop().ok_or_else(|| bad("missing e"))?;
                let n = fields.pop().ok_or_else(|| bad("missing n"))?;
                let key = RsaPrivateKey::from_components(n, e, d, primes).map_err(|e| {
                    KeyError::InvalidSecret(format!("RSA key does not check out: {e}"))
                })?;
                PrivateKey::Rsa(Box::new(key))
            }
            other => {
                return Err(KeyError::InvalidSecret(format!(
                    "unknown algorithm {other}"
                )));
            }
        };
        r.finish("the key")
            .map_err(|_| bad("trailing bytes after the key"))?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests;
