//! Importing private keys made elsewhere: GnuPG's armored secret-key export (RSA) and
//! OpenSSH Ed25519 private keys.

mod armor;
mod pgp;
mod ssh;

use coreforge_assertions::PrivateKey;

pub use pgp::import_openpgp_armored;
pub use ssh::import_openssh;

/// Why a key could not be imported.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum ImportError {
    /// Not a format this code knows.
    #[error("not a recognised private key: expected an OpenPGP secret key (`gpg --export-secret-keys --armor KEY`) or an OpenSSH Ed25519 private key")]
    Unrecognized,
    /// A public key was given.
    #[error("this is a public key; import the private key instead (GnuPG: `gpg --export-secret-keys --armor KEY`; OpenSSH: the file without `.pub`)")]
    PublicKeyOnly,
    /// A recognised but unsupported format.
    #[error("{0}")]
    UnsupportedFormat(String),
    /// The ASCII armor is broken.
    #[error("bad OpenPGP armor: {0}")]
    Armor(String),
    /// The OpenPGP data is damaged.
    #[error("malformed OpenPGP secret key: {0}")]
    Malformed(String),
    /// No secret-key packet in the data.
    #[error(
        "no OpenPGP secret-key packet found; export with `gpg --export-secret-keys --armor KEY`"
    )]
    NoSecretKey,
    /// The key is not RSA (OpenPGP) or not Ed25519 (OpenSSH).
    #[error("{0}")]
    UnsupportedAlgorithm(String),
    /// The key is protected and no passphrase was given.
    #[error("the key is protected by a passphrase; give its passphrase to import it")]
    PassphraseRequired,
    /// The passphrase does not decrypt the key.
    #[error("wrong passphrase for the imported key")]
    WrongPassphrase,
    /// The key is protected in a way this code does not read.
    #[error("unsupported key protection: {0}")]
    UnsupportedProtection(String),
    /// The numbers do not make a valid key.
    #[error("the key's numbers do not form a valid key: {0}")]
    InvalidKey(String),
    /// ssh-key could not read the OpenSSH key.
    #[error("cannot read OpenSSH private key: {0}")]
    OpenSsh(String),
}

impl ImportError {
    /// Whether asking for a passphrase and trying again could succeed.
    pub fn needs_passphrase(&self) -> bool {
        matches!(self, ImportError::PassphraseRequired)
    }
}

/// Imports `text`, choosing the format from its armor line.
pub fn import_private_key(text: &str, passphrase: Option<&str>) -> Result<PrivateKey, ImportError> {
    let has = |line: &str| text.lines().any(|l| l.trim() == line);
    if has("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
        import_openpgp_armored(text, passphrase)
    } else if has("-----BEGIN OPENSSH PRIVATE KEY-----") {
        import_openssh(text, passphrase)
    } else if has("-----BEGIN PGP PUBLIC KEY BLOCK-----") || text.trim_start().starts_with("ssh-") {
        Err(ImportError::PublicKeyOnly)
    } else if text
        .lines()
        .any(|l| l.starts_with("-----BEGIN ") && l.contains("PRIVATE KEY") && !l.contains("PGP"))
    {
        Err(ImportError::UnsupportedFormat(
            "PEM/PKCS#8 private keys are not supported; import the key from GnuPG (`gpg --export-secret-keys --armor`) or use an OpenSSH Ed25519 key".into(),
        ))
    } else {
        Err(ImportError::Unrecognized)
    }
}

#[cfg(test)]
mod tests;
