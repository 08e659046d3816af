//! Imports of real exports: snapd's test keys, and keys made here by gpg and ssh-keygen.

use super::*;
use coreforge_assertions::PublicKey;
use std::path::{Path, PathBuf};
use std::process::Command;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/snapd")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// The `public-key-sha3-384` header of an account-key file.
fn account_key_id(p: &Path) -> String {
    read(p)
        .lines()
        .find_map(|l| l.strip_prefix("public-key-sha3-384: "))
        .unwrap()
        .to_string()
}

#[test]
fn snapd_test_keys_import_with_their_ids() {
    let dev =
        import_private_key(&read(&vectors().join("keys/developer1.private.asc")), None).unwrap();
    assert_eq!(
        dev.public_key().id(),
        "EAD4DbLxK_kn0gzNCXOs3kd6DeMU3f-L6BEsSEuJGBqCORR0gXkdDxMbOm11mRFu"
    );
    assert_eq!(
        dev.public_key().id(),
        account_key_id(&vectors().join("developer1.account-key"))
    );
    let root = import_private_key(
        &read(&vectors().join("keys/testrootorg-root.private.asc")),
        None,
    )
    .unwrap();
    assert_eq!(
        root.public_key().id(),
        account_key_id(&vectors().join("roots/testrootorg-root.account-key"))
    );
}

/// An imported RSA key signs what snapd's key (from the vectors) verifies.
#[test]
fn imported_rsa_key_signs_verifiably() {
    let dev =
        import_private_key(&read(&vectors().join("keys/developer1.private.asc")), None).unwrap();
    let account_key = read(&vectors().join("developer1.account-key"));
    let body = account_key.split("\n\n").nth(1).unwrap();
    let snapd_public = PublicKey::decode(body.as_bytes()).unwrap();
    let content = b"type: model\nauthority-id: developer1\n";
    let sig = dev.sign(content, 1_700_000_000).unwrap();
    snapd_public.verify(content, &sig).unwrap();
    assert!(snapd_public.verify(b"other", &sig).is_err());
}

struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        Gpg {
            home: tempfile::tempdir().unwrap(),
        }
    }
    fn run(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--batch", "--pinentry-mode", "loopback"])
            .args(args)
            .output()
            .expect("gpg is needed for this test (install gnupg)");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

/// The n and e of the primary key in a binary `gpg --export`.
fn gpg_public_numbers(export: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let body = &pgp::packet_bodies(export)[0];
    // v4, time, algo 1, MPI n, MPI e
    assert_eq!((body[0], body[5]), (4, 1));
    let mpi = |at: usize| {
        let bits = usize::from(u16::from_be_bytes([body[at], body[at + 1]]));
        (
            body[at + 2..at + 2 + bits.div_ceil(8)].to_vec(),
            at + 2 + bits.div_ceil(8),
        )
    };
    let (n, next) = mpi(6);
    let (e, _) = mpi(next);
    (n, e)
}

#[test]
fn gpg_passphrase_protected_rsa_export_imports() {
    let gpg = Gpg::new();
    gpg.run(&[
        "--passphrase",
        "pw",
        "--quick-gen-key",
        "T <t@e>",
        "rsa2048",
        "sign",
        "never",
    ]);
    let armored =
        String::from_utf8(gpg.run(&["--passphrase", "pw", "--export-secret-keys", "--armor"]))
            .unwrap();
    let (n, e) = gpg_public_numbers(&gpg.run(&["--export"]));

    assert!(matches!(
        import_private_key(&armored, None),
        Err(ImportError::PassphraseRequired)
    ));
    assert!(import_private_key(&armored, None)
        .unwrap_err()
        .needs_passphrase());
    let err = import_private_key(&armored, Some("wrong")).unwrap_err();
    assert!(matches!(err, ImportError::WrongPassphrase), "{err}");
    assert_eq!(err.to_string(), "wrong passphrase for the imported key");

    let key = import_private_key(&armored, Some("pw")).unwrap();
    let PublicKey::Rsa(public) = key.public_key() else {
        panic!("not RSA")
    };
    assert_eq!(public.n().to_vec(), n);
    assert_eq!(public.e().to_vec(), e);
    let sig = key.sign(b"x", 1).unwrap();
    key.public_key().verify(b"x", &sig).unwrap();
}

#[test]
fn gpg_unprotected_export_and_non_rsa_keys() {
    let gpg = Gpg::new();
    gpg.run(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        "E <e@e>",
        "ed25519",
        "sign",
        "never",
    ]);
    let armored =
        String::from_utf8(gpg.run(&["--passphrase", "", "--export-secret-keys", "--armor"]))
            .unwrap();
    let err = import_private_key(&armored, None).unwrap_err();
    assert!(matches!(err, ImportError::UnsupportedAlgorithm(_)), "{err}");
    assert!(err.to_string().contains("only RSA OpenPGP keys"), "{err}");

    let public = String::from_utf8(gpg.run(&["--export", "--armor"])).unwrap();
    assert!(matches!(
        import_private_key(&public, None),
        Err(ImportError::PublicKeyOnly)
    ));
}

struct SshKey {
    dir: tempfile::TempDir,
}

impl SshKey {
    fn generate(args: &[&str]) -> SshKey {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("ssh-keygen")
            .args(args)
            .args(["-q", "-C", "test", "-f"])
            .arg(dir.path().join("id"))
            .output()
            .expect("ssh-keygen is needed for this test (install openssh-client)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        SshKey { dir }
    }
    fn private(&self) -> String {
        read(&self.dir.path().join("id"))
    }
    /// The raw 32-byte public key from the `.pub` file.
    fn public_raw(&self) -> Vec<u8> {
        use base64::Engine as _;
        let line = read(&self.dir.path().join("id.pub"));
        let blob = base64::engine::general_purpose::STANDARD
            .decode(line.split_whitespace().nth(1).unwrap())
            .unwrap();
        // string "ssh-ed25519", string key
        blob[blob.len() - 32..].to_vec()
    }
}

fn ed25519_raw(key: &coreforge_assertions::PrivateKey) -> Vec<u8> {
    match key.public_key() {
        PublicKey::Ed25519(k) => k.to_bytes().to_vec(),
        other => panic!("not Ed25519: {other:?}"),
    }
}

#[test]
fn openssh_ed25519_imports_plain_and_protected() {
    let plain = SshKey::generate(&["-t", "ed25519", "-N", ""]);
    let key = import_private_key(&plain.private(), None).unwrap();
    assert_eq!(ed25519_raw(&key), plain.public_raw());

    let protected = SshKey::generate(&["-t", "ed25519", "-N", "pw"]);
    let text = protected.private();
    assert!(matches!(
        import_private_key(&text, None),
        Err(ImportError::PassphraseRequired)
    ));
    let err = import_private_key(&text, Some("nope")).unwrap_err();
    assert!(matches!(err, ImportError::WrongPassphrase), "{err}");
    let key = import_private_key(&text, Some("pw")).unwrap();
    assert_eq!(ed25519_raw(&key), protected.public_raw());
}

#[test]
fn openssh_rsa_is_refused_clearly() {
    let rsa = SshKey::generate(&["-t", "rsa", "-b", "2048", "-N", ""]);
    let err = import_private_key(&rsa.private(), None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("only Ed25519 OpenSSH keys are supported"),
        "{err}"
    );
}

#[test]
fn other_text_is_refused_clearly() {
    assert!(matches!(
        import_private_key("hello", None),
        Err(ImportError::Unrecognized)
    ));
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    let err = import_private_key(pem, None).unwrap_err();
    assert!(err.to_string().contains("PEM/PKCS#8"), "{err}");
    assert!(matches!(
        import_private_key("ssh-ed25519 AAAA test", None),
        Err(ImportError::PublicKeyOnly)
    ));
}

/// Protections GnuPG 2.x no longer writes (CAST5, AES-192/256, SHA-2 S2K, sum check),
/// from fixtures made with gpg1 (see testdata/README.md).
#[test]
fn gpg1_fixtures_with_other_ciphers_import() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/keystore/import/testdata");
    for name in [
        "cast5-sha1-checksum-sha1",
        "aes256-sha256-checksum-sha1",
        "aes192-sha512-checksum-sum16",
    ] {
        let text = read(&dir.join(format!("{name}.asc")));
        let (n, e) =
            gpg_public_numbers(&std::fs::read(dir.join(format!("{name}.pub.gpg"))).unwrap());
        assert!(matches!(
            import_private_key(&text, None),
            Err(ImportError::PassphraseRequired)
        ));
        let err = import_private_key(&text, Some("wrong")).unwrap_err();
        assert!(matches!(err, ImportError::WrongPassphrase), "{name}: {err}");
        let key = import_private_key(&text, Some("pw")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let PublicKey::Rsa(public) = key.public_key() else {
            panic!("not RSA")
        };
        assert_eq!(public.n().to_vec(), n, "{name}");
        assert_eq!(public.e().to_vec(), e, "{name}");
    }
}
