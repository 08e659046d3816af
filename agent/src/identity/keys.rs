//! SSH public keys: each one parsed with `ssh-key`, refused with a reason, and written back in
//! the canonical `authorized_keys` form (`algorithm base64 comment`).

use ssh_key::public::KeyData;
use ssh_key::PublicKey;

/// Longest key line accepted (an RSA-16384 key is about 2,800 characters).
pub const MAX_KEY_LINE: usize = 8 * 1024;

/// Smallest RSA modulus accepted, in bits (OpenSSH's and NIST's floor).
pub const MIN_RSA_BITS: usize = 2048;

/// Why one key line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Nothing but spaces.
    #[error("the line is empty: paste a public key such as `ssh-ed25519 AAAA... you@host`")]
    Empty,
    /// Longer than [`MAX_KEY_LINE`].
    #[error("the line is {0} characters long, more than any public key: paste one key per line")]
    TooLong(usize),
    /// `authorized_keys` options before the key (`from=...`, `command=...`).
    #[error(
        "the line starts with options (`{0}`): paste only the public key, as in the `.pub` file"
    )]
    Options(String),
    /// A private key was pasted.
    #[error("this is a private key: never paste it anywhere; paste the `.pub` file instead")]
    PrivateKey,
    /// `ssh-key` could not parse it.
    #[error("not an OpenSSH public key ({0}): paste the whole line of the `.pub` file")]
    Malformed(String),
    /// DSA, unknown or other algorithms the OS's SSH server does not take.
    #[error("{0} keys are not accepted: use an Ed25519 key (`ssh-keygen -t ed25519`)")]
    Unsupported(String),
    /// An RSA key below [`MIN_RSA_BITS`].
    #[error(
        "the RSA key has only {0} bits, at least 2048 are needed: use `ssh-keygen -t ed25519`"
    )]
    WeakRsa(usize),
}

/// A key line that was refused, with its line number (1-based) in what was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedKey {
    /// Line (or list entry) number, counted from 1.
    pub line: usize,
    /// Why.
    pub reason: KeyError,
}

impl std::fmt::Display for RejectedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key {}: {}", self.line, self.reason)
    }
}

/// Parses one public key line and returns it in canonical `authorized_keys` form.
pub fn parse_key(line: &str) -> Result<String, KeyError> {
    let line = line.trim();
    if line.is_empty() {
        return Err(KeyError::Empty);
    }
    if line.len() > MAX_KEY_LINE {
        return Err(KeyError::TooLong(line.len()));
    }
    if line.starts_with("-----BEGIN") && line.contains("PRIVATE KEY") {
        return Err(KeyError::PrivateKey);
    }
    let first = line.split_whitespace().next().unwrap_or_default();
    if first.contains('=') || first.contains(',') {
        return Err(KeyError::Options(first.chars().take(40).collect()));
    }
    // OpenSSH takes any run of spaces or tabs between the fields; ssh-key wants one space.
    let mut fields = line.split_whitespace();
    let mut single = String::with_capacity(line.len());
    single.push_str(fields.next().unwrap_or_default());
    for field in fields {
        single.push(' ');
        single.push_str(field);
    }
    let key = PublicKey::from_openssh(&single).map_err(|e| KeyError::Malformed(e.to_string()))?;
    check_algorithm(key.key_data())?;
    key.to_openssh()
        .map_err(|e| KeyError::Malformed(e.to_string()))
}

/// Accepts what the OS's SSH server (dropbear) takes and is not weak.
fn check_algorithm(data: &KeyData) -> Result<(), KeyError> {
    match data {
        KeyData::Ed25519(_)
        | KeyData::Ecdsa(_)
        | KeyData::SkEd25519(_)
        | KeyData::SkEcdsaSha2NistP256(_) => Ok(()),
        KeyData::Rsa(rsa) => {
            let bits = significant_bits(rsa.n.as_positive_bytes().unwrap_or_default());
            if bits < MIN_RSA_BITS {
                Err(KeyError::WeakRsa(bits))
            } else {
                Ok(())
            }
        }
        KeyData::Dsa(_) => Err(KeyError::Unsupported("ssh-dss (DSA)".to_owned())),
        other => Err(KeyError::Unsupported(other.algorithm().to_string())),
    }
}

/// Bit length of a big-endian unsigned number.
fn significant_bits(bytes: &[u8]) -> usize {
    let bytes = match bytes.iter().position(|&b| b != 0) {
        Some(first) => &bytes[first..],
        None => return 0,
    };
    let lead = bytes.first().map_or(0, |b| 8 - b.leading_zeros() as usize);
    (bytes.len() - 1) * 8 + lead
}

/// Parses a list of keys (a `.keys` file, a store answer): the good ones in canonical form,
/// and each refused one with its position. Blank lines and `#` comments are skipped.
pub fn parse_key_list<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> (Vec<String>, Vec<RejectedKey>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (index, line) in lines.into_iter().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match parse_key(trimmed) {
            Ok(key) => good.push(key),
            Err(reason) => bad.push(RejectedKey {
                line: index + 1,
                reason,
            }),
        }
    }
    (good, bad)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // Generated with `ssh-keygen` (OpenSSH 9.2) for these tests only.
    pub const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILO5agsk09SE2oqgjiWAk5iRAYJy+Z0spYUBsYvmc3zH alice@laptop";
    pub const ECDSA_P256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBGNt25u0sXEWO6iB9hF2tT1dItj+9daM3YIRMVkwod23DKXHGfztXhbseNZewZ04IcM+XW3B8NVr/X45ui+zQYU= alice@phone";

    #[test]
    fn ed25519_and_ecdsa_parse_and_come_back_canonical() {
        assert_eq!(parse_key(ED25519).unwrap(), ED25519);
        assert_eq!(parse_key(ECDSA_P256).unwrap(), ECDSA_P256);
        // Extra spaces and a trailing CR (a file saved on Windows) are normalised away.
        let messy = ED25519.replace(' ', "   ") + "\r";
        assert_eq!(parse_key(&messy).unwrap(), ED25519);
    }

    #[test]
    fn rsa_keys_are_accepted_from_2048_bits_and_refused_below() {
        let rsa = include_str!("testdata/rsa2048.pub").trim();
        assert_eq!(parse_key(rsa).unwrap(), rsa);
        let weak = include_str!("testdata/rsa1024.pub").trim();
        assert_eq!(parse_key(weak), Err(KeyError::WeakRsa(1024)));
    }

    #[test]
    fn dsa_and_unknown_algorithms_are_refused_by_name() {
        let dsa = include_str!("testdata/dsa.pub").trim();
        assert!(matches!(parse_key(dsa), Err(KeyError::Unsupported(a)) if a.contains("DSA")));
    }

    #[test]
    fn damaged_keys_are_refused_with_a_reason() {
        let truncated = &ED25519[..60];
        assert!(matches!(parse_key(truncated), Err(KeyError::Malformed(_))));
        // The algorithm name and the key inside the base64 disagree.
        let swapped = ED25519.replace("ssh-ed25519", "ecdsa-sha2-nistp256");
        assert!(matches!(parse_key(&swapped), Err(KeyError::Malformed(_))));
        assert!(matches!(
            parse_key("hello world"),
            Err(KeyError::Malformed(_))
        ));
        assert_eq!(parse_key("   "), Err(KeyError::Empty));
        let long = format!("ssh-ed25519 {}", "A".repeat(MAX_KEY_LINE));
        assert!(matches!(parse_key(&long), Err(KeyError::TooLong(_))));
        let opts = format!("from=\"10.0.0.1\" {ED25519}");
        assert!(matches!(parse_key(&opts), Err(KeyError::Options(_))));
        let private = "-----BEGIN OPENSSH PRIVATE KEY-----";
        assert_eq!(parse_key(private), Err(KeyError::PrivateKey));
    }

    #[test]
    fn a_list_keeps_the_good_keys_and_names_the_bad_lines() {
        let text = format!("{ED25519}\n\n# a comment\nssh-rsa AAAAnotbase64!\n{ECDSA_P256}\n");
        let (good, bad) = parse_key_list(text.lines());
        assert_eq!(good, vec![ED25519.to_owned(), ECDSA_P256.to_owned()]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 4);
        assert!(bad[0]
            .to_string()
            .starts_with("key 4: not an OpenSSH public key"));
    }

    #[test]
    fn bit_length_counts_from_the_first_set_bit() {
        assert_eq!(significant_bits(&[]), 0);
        assert_eq!(significant_bits(&[0, 0]), 0);
        assert_eq!(significant_bits(&[0, 1]), 1);
        assert_eq!(significant_bits(&[0x80, 0]), 16);
        assert_eq!(significant_bits(&[0, 0x7f, 0xff]), 15);
    }
}
