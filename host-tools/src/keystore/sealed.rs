//! The on-disk key file: public key in clear, private key sealed with a passphrase
//! (argon2id derives a key; XChaCha20-Poly1305 encrypts, bound to name and public key).

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The only key file version this build reads and writes.
pub(super) const FILE_VERSION: u32 = 1;
/// What the `format` field says, so a stray JSON file is not taken for a key.
const FILE_FORMAT: &str = "coreforge-key";

/// Argon2id cost parameters, recorded in every key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 2 passes, 1 lane: about 0.2 s (measured 0.18-0.24 s on the 2-core EPYC build machine).
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// Argon2id's minimum, for keys created with an empty passphrase: such a key is not
    /// protected at rest anyway (gpg's `%no-protection`), so the KDF need not cost anything.
    pub const UNPROTECTED: KdfParams = KdfParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    /// Refuses costs a damaged or hostile file could use to exhaust the machine.
    fn check(&self) -> Result<(), String> {
        if self.memory_kib > 4 * 1024 * 1024 || self.iterations > 64 || self.parallelism > 16 {
            return Err(format!(
                "argon2id parameters out of range (memory {} KiB, {} iterations, {} lanes)",
                self.memory_kib, self.iterations, self.parallelism
            ));
        }
        Ok(())
    }

    fn derive(&self, passphrase: &str, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, String> {
        self.check()?;
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| format!("bad argon2id parameters: {e}"))?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
            .map_err(|e| format!("argon2id failed: {e}"))?;
        Ok(key)
    }
}

/// The `kdf` object of a key file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Kdf {
    algorithm: String,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

/// The `cipher` object of a key file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Cipher {
    algorithm: String,
    nonce: String,
}

/// A key file (`<name>.key`), as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct KeyFile {
    format: String,
    pub(super) version: u32,
    pub(super) name: String,
    /// snapd's encoding (as in an account-key body).
    pub(super) public_key: String,
    /// Its id, for people reading the file; checked against `public_key` on load.
    pub(super) public_key_sha3_384: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) account_id: Option<String>,
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

/// Why a key file could not be opened with a passphrase.
#[derive(Debug)]
pub(super) enum OpenError {
    /// The AEAD tag did not match: wrong passphrase (or a modified file).
    WrongPassphrase,
    /// The file itself is unusable.
    Corrupt(String),
}

const AEAD_NAME: &str = "xchacha20poly1305";
const KDF_NAME: &str = "argon2id";

/// Associated data: binds the ciphertext to the key's name and public key.
fn aad(name: &str, public_key: &str) -> Vec<u8> {
    format!("{FILE_FORMAT}/{FILE_VERSION}\0{name}\0{public_key}").into_bytes()
}

impl KeyFile {
    /// Seals `secret` under `passphrase`.
    pub(super) fn seal(
        name: &str,
        public_key: &coreforge_assertions::PublicKey,
        secret: &[u8],
        passphrase: &str,
        params: KdfParams,
    ) -> Result<KeyFile, String> {
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let key = params.derive(passphrase, &salt)?;
        let encoded = public_key.encode();
        let ciphertext = XChaCha20Poly1305::new(key.as_ref().into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: &aad(name, &encoded),
                },
            )
            .map_err(|_| "encryption failed".to_string())?;
        Ok(KeyFile {
            format: FILE_FORMAT.into(),
            version: FILE_VERSION,
            name: name.into(),
            public_key_sha3_384: public_key.id(),
            public_key: encoded,
            account_id: None,
            kdf: Kdf {
                algorithm: KDF_NAME.into(),
                params,
                salt: STANDARD.encode(salt),
            },
            cipher: Cipher {
                algorithm: AEAD_NAME.into(),
                nonce: STANDARD.encode(nonce),
            },
            ciphertext: STANDARD.encode(ciphertext),
        })
    }

    /// Parses a key file and checks everything that can be checked without the passphrase.
    pub(super) fn parse(
        bytes: &[u8],
    ) -> Result<(KeyFile, coreforge_assertions::PublicKey), String> {
        let file: KeyFile =
            serde_json::from_slice(bytes).map_err(|e| format!("not a key file: {e}"))?;
        if file.format != FILE_FORMAT {
            return Err(format!("format is {:?}, not {FILE_FORMAT:?}", file.format));
        }
        if file.version != FILE_VERSION {
            return Err(format!(
                "key file version {} is not supported (this build reads version {FILE_VERSION}); use a newer coreforge",
                file.version
            ));
        }
        let public = coreforge_assertions::PublicKey::decode(file.public_key.as_bytes())
            .map_err(|e| e.to_string())?;
        if public.id() != file.public_key_sha3_384 {
            return Err("public-key-sha3-384 does not match public-key".into());
        }
        Ok((file, public))
    }

    /// Decrypts the sealed secret with `passphrase`.
    pub(super) fn open(&self, passphrase: &str) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let corrupt = |m: &str| OpenError::Corrupt(m.to_string());
        if self.kdf.algorithm != KDF_NAME || self.cipher.algorithm != AEAD_NAME {
            return Err(OpenError::Corrupt(format!(
                "unsupported protection {}/{} (want {KDF_NAME}/{AEAD_NAME})",
                self.kdf.algorithm, self.cipher.algorithm
            )));
        }
        let salt = STANDARD
            .decode(&self.kdf.salt)
            .map_err(|_| corrupt("bad salt"))?;
        let nonce = STANDARD
            .decode(&self.cipher.nonce)
            .map_err(|_| corrupt("bad nonce"))?;
        if nonce.len() != 24 {
            return Err(corrupt("nonce is not 24 bytes"));
        }
        let ciphertext = STANDARD
            .decode(&self.ciphertext)
            .map_err(|_| corrupt("bad ciphertext"))?;
        let key = self
            .kdf
            .params
            .derive(passphrase, &salt)
            .map_err(OpenError::Corrupt)?;
        XChaCha20Poly1305::new(key.as_ref().into())
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad(&self.name, &self.public_key),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError::WrongPassphrase)
    }
}
