//! The device's SSH host key: generated here so console-conf can show its fingerprint before
//! the OS's SSH server ever starts, and written in the format of that server: OpenSSH's
//! `sshd` (the Debian base) or dropbear (the busybox test base).
//!
//! Dropbear's Ed25519 private key file (what `dropbearkey -t ed25519` writes) is two SSH wire
//! strings: `"ssh-ed25519"`, then 64 bytes: the 32-byte seed followed by the 32-byte public key.
//! OpenSSH's (what `ssh-keygen -t ed25519 -N ''` writes) is the unencrypted
//! `openssh-key-v1` container of PROTOCOL.key, in PEM armour.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use ssh_key::private::Ed25519Keypair;
use ssh_key::public::{Ed25519PublicKey, KeyData};
use ssh_key::HashAlg;
use zeroize::Zeroizing;

/// The key type name dropbear writes first.
const KEY_TYPE: &[u8] = b"ssh-ed25519";
/// Seed and public key, 32 bytes each.
const KEYPAIR_LEN: usize = 64;

/// Why a host key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    /// The kernel's random number generator failed.
    #[error("cannot generate the SSH host key: the kernel's random number generator failed ({0}); reboot and try again")]
    Random(String),
    /// A file is not a dropbear Ed25519 private key.
    #[cfg(test)]
    #[error("not a dropbear Ed25519 host key: {0}; delete it so a new one is generated")]
    Format(&'static str),
}

/// An Ed25519 SSH host key.
pub struct HostKey {
    keypair: Ed25519Keypair,
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private half.
        f.debug_struct("HostKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl HostKey {
    /// A new key from the kernel's random number generator (`getrandom`).
    pub fn generate() -> Result<HostKey, HostKeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(seed.as_mut())
            .map_err(|e| HostKeyError::Random(e.to_string()))?;
        Ok(HostKey::from_seed(&seed))
    }

    /// The key whose Ed25519 seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> HostKey {
        HostKey {
            keypair: Ed25519Keypair::from_seed(seed),
        }
    }

    /// The private key file as `dropbearkey -t ed25519` writes it.
    pub fn to_dropbear(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(4 + KEY_TYPE.len() + 4 + KEYPAIR_LEN));
        put_string(&mut out, KEY_TYPE);
        put_string(&mut out, self.keypair.to_bytes().as_ref());
        out
    }

    /// The private key file as `ssh-keygen -t ed25519 -N ''` writes it (unencrypted
    /// `openssh-key-v1`), with `comment`.
    pub fn to_openssh(&self, comment: &str) -> Zeroizing<Vec<u8>> {
        let public = self.public_blob();
        let mut private = Zeroizing::new(Vec::with_capacity(160));
        // The two equal check integers that tell a right passphrase; any value does unencrypted.
        let check = &public[public.len() - 4..];
        private.extend_from_slice(check);
        private.extend_from_slice(check);
        put_string(&mut private, KEY_TYPE);
        put_string(&mut private, self.keypair.public.as_ref());
        put_string(&mut private, self.keypair.to_bytes().as_ref());
        put_string(&mut private, comment.as_bytes());
        // Padded with 1, 2, 3, ... to the cipher's block size (8 for "none").
        let mut pad = 1u8;
        while private.len() % 8 != 0 {
            private.push(pad);
            pad += 1;
        }
        let mut body = Zeroizing::new(Vec::with_capacity(300));
        body.extend_from_slice(b"openssh-key-v1\0");
        put_string(&mut body, b"none"); // cipher
        put_string(&mut body, b"none"); // kdf
        put_string(&mut body, b""); // kdf options
        body.extend_from_slice(&1u32.to_be_bytes()); // one key
        put_string(&mut body, &public);
        put_string(&mut body, &private);
        let text = Zeroizing::new(STANDARD.encode(body.as_slice()));
        let mut out = Zeroizing::new(Vec::with_capacity(text.len() + 80));
        out.extend_from_slice(b"-----BEGIN OPENSSH PRIVATE KEY-----\n");
        for line in text.as_bytes().chunks(70) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.extend_from_slice(b"-----END OPENSSH PRIVATE KEY-----\n");
        out
    }

    /// The public key file beside it: `ssh-ed25519 AAAA... comment`.
    pub fn public_openssh_file(&self, comment: &str) -> String {
        format!("{} {comment}\n", self.public_openssh())
    }

    /// The public key's SSH wire form: `string "ssh-ed25519"`, `string key`.
    fn public_blob(&self) -> Vec<u8> {
        let mut blob = Vec::with_capacity(51);
        put_string(&mut blob, KEY_TYPE);
        put_string(&mut blob, self.keypair.public.as_ref());
        blob
    }

    /// Reads a dropbear Ed25519 private key file (the tests check our files with it), checking the public half matches the seed.
    #[cfg(test)]
    pub fn from_dropbear(bytes: &[u8]) -> Result<HostKey, HostKeyError> {
        let mut rest = bytes;
        let kind = take_string(&mut rest).ok_or(HostKeyError::Format("truncated key type"))?;
        if kind != KEY_TYPE {
            return Err(HostKeyError::Format("the key type is not ssh-ed25519"));
        }
        let pair = take_string(&mut rest).ok_or(HostKeyError::Format("truncated key"))?;
        let pair: Zeroizing<[u8; KEYPAIR_LEN]> = Zeroizing::new(
            pair.try_into()
                .map_err(|_| HostKeyError::Format("the key is not 64 bytes long"))?,
        );
        if !rest.is_empty() {
            return Err(HostKeyError::Format("bytes after the key"));
        }
        let keypair = Ed25519Keypair::from_bytes(&pair)
            .map_err(|_| HostKeyError::Format("the public key does not match the private key"))?;
        Ok(HostKey { keypair })
    }

    /// The public key in `authorized_keys` / `known_hosts` form: `ssh-ed25519 AAAA...`.
    pub fn public_openssh(&self) -> String {
        format!("ssh-ed25519 {}", STANDARD.encode(self.public_blob()))
    }

    /// The fingerprint users compare, as `ssh-keygen -l` and `ssh` print it: `SHA256:...`.
    pub fn fingerprint(&self) -> String {
        KeyData::Ed25519(self.public())
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }

    fn public(&self) -> Ed25519PublicKey {
        self.keypair.public
    }
}

/// Appends an SSH wire string: a big-endian u32 length, then the bytes.
fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    // Both strings here are short constants or 64 bytes: the length always fits.
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Takes one SSH wire string off the front of `rest`.
#[cfg(test)]
fn take_string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, tail) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    if tail.len() < len {
        return None;
    }
    let (s, tail) = tail.split_at(len);
    *rest = tail;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A key `dropbearkey -t ed25519` wrote (Debian bookworm's dropbear-bin 2022.83), with the
    /// public key and fingerprint `dropbearkey -y` printed for it.
    const DROPBEAR_FILE_HEX: &str = "0000000b7373682d65643235353139000000\
        40a741fea23de886ce130d985b15b5a5e33b29549d04b3a3715797e4aa1a6bf658d30f66c75221ffda9bd1179e0b\
        b06493d23132bfa46d7a352f98b2f0d55f9b14";
    const DROPBEAR_PUBLIC: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINMPZsdSIf/am9EXnguwZJPSMTK/pG16NS+YsvDVX5sU";
    const DROPBEAR_FINGERPRINT: &str = "SHA256:Ssbd2HO0kwLMqxFI3gTEmDsSsXKgWXCbhSCLNCm//Zc";

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn reads_a_key_dropbearkey_wrote_and_agrees_on_public_key_and_fingerprint() {
        let file = unhex(DROPBEAR_FILE_HEX);
        let key = HostKey::from_dropbear(&file).unwrap();
        assert_eq!(key.public_openssh(), DROPBEAR_PUBLIC);
        assert_eq!(key.fingerprint(), DROPBEAR_FINGERPRINT);
        // And writes the very same bytes back.
        assert_eq!(key.to_dropbear().as_slice(), file.as_slice());
    }

    #[test]
    fn generated_keys_differ_and_round_trip() {
        let a = HostKey::generate().unwrap();
        let b = HostKey::generate().unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        let file = a.to_dropbear();
        assert_eq!(file.len(), 4 + 11 + 4 + 64);
        let again = HostKey::from_dropbear(&file).unwrap();
        assert_eq!(again.fingerprint(), a.fingerprint());
        assert!(a.fingerprint().starts_with("SHA256:"));
        assert_eq!(a.fingerprint().len(), "SHA256:".len() + 43);
    }

    #[test]
    fn refuses_damaged_files() {
        let good = HostKey::from_seed(&[7; 32]).to_dropbear().to_vec();
        let mut wrong_type = good.clone();
        wrong_type[4..15].copy_from_slice(b"ssh-ed25518");
        let mut wrong_public = good.clone();
        let last = wrong_public.len() - 1;
        wrong_public[last] ^= 1;
        let mut trailing = good.clone();
        trailing.push(0);
        let cases: [(&[u8], &str); 5] = [
            (&good[..10], "truncated key type"),
            (&good[..40], "truncated key"),
            (&wrong_type, "not ssh-ed25519"),
            (&wrong_public, "does not match"),
            (&trailing, "bytes after"),
        ];
        for (bytes, want) in cases {
            let err = HostKey::from_dropbear(bytes).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn debug_output_hides_the_private_key() {
        let key = HostKey::from_seed(&[0x41; 32]);
        let text = format!("{key:?}");
        assert!(text.contains("SHA256:"), "{text}");
        assert!(!text.contains("65, 65"), "{text}");
    }

    /// OpenSSH's own tools read our private key file: `ssh-keygen -y` prints its public key
    /// and `ssh-keygen -l` its fingerprint, the ones console-conf shows. Needs `ssh-keygen`
    /// (Debian's openssh-client, installed by cross/setup.sh).
    #[test]
    fn ssh_keygen_reads_our_openssh_file() {
        let key = HostKey::generate().unwrap();
        let dir = std::env::temp_dir().join(format!("cf-agent-openssh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ssh_host_ed25519_key");
        std::fs::write(&path, key.to_openssh("root@coreforge")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        std::fs::write(
            dir.join("ssh_host_ed25519_key.pub"),
            key.public_openssh_file("root@coreforge"),
        )
        .unwrap();
        let keygen = |args: &[&str]| {
            let out = Command::new("ssh-keygen")
                .args(args)
                .arg(&path)
                .output()
                .expect("ssh-keygen is missing: run cross/setup.sh (it installs openssh-client)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let public = keygen(&["-y", "-f"]);
        assert_eq!(
            public.trim(),
            format!("{} root@coreforge", key.public_openssh())
        );
        let listed = keygen(&["-l", "-E", "sha256", "-f"]);
        assert!(listed.contains(&key.fingerprint()), "{listed}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn public_key_text_matches_ssh_key() {
        let key = HostKey::from_seed(&[9; 32]);
        let data = KeyData::Ed25519(key.public());
        let theirs = ssh_key::PublicKey::new(data, "").to_openssh().unwrap();
        assert_eq!(key.public_openssh(), theirs);
    }

    /// The real dropbear tools read our files and agree on the key. Needs `dropbearkey`
    /// (Debian's dropbear-bin, installed by cross/setup.sh).
    #[test]
    fn dropbearkey_reads_our_file() {
        assert!(
            Command::new("dropbearkey").arg("-h").output().is_ok(),
            "dropbearkey is missing: run cross/setup.sh (it installs dropbear-bin)"
        );
        let key = HostKey::generate().unwrap();
        let path = std::env::temp_dir().join(format!("cf-agent-hostkey-{}", std::process::id()));
        std::fs::write(&path, key.to_dropbear()).unwrap();
        let out = Command::new("dropbearkey")
            .arg("-y")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        let public = text
            .lines()
            .find(|l| l.starts_with("ssh-ed25519 "))
            .unwrap();
        // dropbearkey appends a comment (user@host).
        assert_eq!(
            public.rsplit_once(' ').unwrap().0,
            key.public_openssh(),
            "{text}"
        );
        assert!(
            text.contains(&format!("Fingerprint: {}", key.fingerprint())),
            "{text}"
        );
    }
}
