//! OpenSSH Ed25519 private keys (`ssh-keygen -t ed25519`), plain or passphrase-protected.

use coreforge_assertions::PrivateKey;
use ssh_key::private::KeypairData;
use zeroize::Zeroizing;

use super::ImportError;

/// Imports an OpenSSH Ed25519 private key.
pub fn import_openssh(text: &str, passphrase: Option<&str>) -> Result<PrivateKey, ImportError> {
    let key = ssh_key::PrivateKey::from_openssh(text.trim())
        .map_err(|e| ImportError::OpenSsh(e.to_string()))?;
    let algorithm = key.algorithm();
    if algorithm != ssh_key::Algorithm::Ed25519 {
        return Err(ImportError::UnsupportedAlgorithm(format!(
            "only Ed25519 OpenSSH keys are supported; this is an {algorithm} key. Make one with `ssh-keygen -t ed25519`"
        )));
    }
    let key = if key.is_encrypted() {
        let Some(passphrase) = passphrase else {
            return Err(ImportError::PassphraseRequired);
        };
        key.decrypt(passphrase).map_err(|e| match e {
            ssh_key::Error::Crypto | ssh_key::Error::Decrypted => ImportError::WrongPassphrase,
            other => ImportError::OpenSsh(other.to_string()),
        })?
    } else {
        key
    };
    let KeypairData::Ed25519(pair) = key.key_data() else {
        return Err(ImportError::OpenSsh("key data is not Ed25519".into()));
    };
    let seed = Zeroizing::new(pair.private.to_bytes());
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    if signing.verifying_key().to_bytes() != pair.public.0 {
        return Err(ImportError::InvalidKey(
            "the Ed25519 private key does not match its public key".into(),
        ));
    }
    Ok(PrivateKey::Ed25519(signing))
}
