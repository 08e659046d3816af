//! GnuPG's secret-key export: the primary secret-key packet (tag 5) of an RSA key,
//! unprotected or protected with S2K usage 254 (SHA-1 check) or 255 (sum check).

use cfb_mode::cipher::KeyIvInit;
use coreforge_assertions::PrivateKey;
use rsa::{BigUint, RsaPrivateKey};
use sha1::{Digest, Sha1};
use zeroize::Zeroizing;

use super::{armor, ImportError};

const TAG_SECRET_KEY: u8 = 5;

fn bad(m: impl Into<String>) -> ImportError {
    ImportError::Malformed(m.into())
}

/// A bounded reader over packet bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ImportError> {
        if self.0.len() < n {
            return Err(bad(format!("truncated {what}")));
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Ok(h)
    }
    fn u8(&mut self, what: &str) -> Result<u8, ImportError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, ImportError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, ImportError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn mpi(&mut self, what: &str) -> Result<BigUint, ImportError> {
        let bits = usize::from(self.u16(what)?);
        Ok(BigUint::from_bytes_be(self.take(bits.div_ceil(8), what)?))
    }
}

/// Splits the next packet off `r`: (tag, body).
fn next_packet<'a>(r: &mut Reader<'a>) -> Result<(u8, &'a [u8]), ImportError> {
    let h = r.u8("packet header")?;
    if h & 0x80 == 0 {
        return Err(bad("not OpenPGP data (bad packet header)"));
    }
    let (tag, len) = if h & 0x40 != 0 {
        let o = r.u8("packet length")?;
        let len = match o {
            0..=191 => usize::from(o),
            192..=223 => ((usize::from(o) - 192) << 8) + usize::from(r.u8("packet length")?) + 192,
            255 => r.u32("packet length")? as usize,
            _ => {
                return Err(bad(
                    "partial-length packets are not supported in key exports",
                ))
            }
        };
        (h & 0x3f, len)
    } else {
        let len = match h & 3 {
            0 => usize::from(r.u8("packet length")?),
            1 => usize::from(r.u16("packet length")?),
            2 => r.u32("packet length")? as usize,
            _ => return Err(bad("indeterminate-length packets are not supported")),
        };
        ((h >> 2) & 0x0f, len)
    };
    Ok((tag, r.take(len, "packet body")?))
}

/// Imports the primary RSA secret key of an armored `gpg --export-secret-keys --armor`.
pub fn import_openpgp_armored(
    text: &str,
    passphrase: Option<&str>,
) -> Result<PrivateKey, ImportError> {
    let data = armor::dearmor(text, "PGP PRIVATE KEY BLOCK")?;
    let mut r = Reader(&data);
    while !r.0.is_empty() {
        let (tag, body) = next_packet(&mut r)?;
        if tag == TAG_SECRET_KEY {
            return parse_secret_key(body, passphrase);
        }
    }
    Err(ImportError::NoSecretKey)
}

fn algorithm_name(id: u8) -> String {
    match id {
        16 => "Elgamal".into(),
        17 => "DSA".into(),
        18 => "ECDH".into(),
        19 => "ECDSA".into(),
        22 => "EdDSA".into(),
        other => format!("algorithm {other}"),
    }
}

fn parse_secret_key(body: &[u8], passphrase: Option<&str>) -> Result<PrivateKey, ImportError> {
    let mut r = Reader(body);
    let version = r.u8("key version")?;
    if version != 4 {
        return Err(ImportError::UnsupportedFormat(format!(
            "OpenPGP v{version} keys are not supported (GnuPG makes v4 keys by default)"
        )));
    }
    let _created = r.u32("creation time")?;
    let algo = r.u8("key algorithm")?;
    if !matches!(algo, 1..=3) {
        return Err(ImportError::UnsupportedAlgorithm(format!(
            "only RSA OpenPGP keys can be imported; this key is {}. Create an RSA key (gpg --quick-gen-key NAME rsa4096 sign) or use `coreforge create-key`",
            algorithm_name(algo)
        )));
    }
    let n = r.mpi("RSA modulus")?;
    let e = r.mpi("RSA exponent")?;
    let usage = r.u8("S2K usage")?;
    let plain: Zeroizing<Vec<u8>> = match usage {
        0 => {
            let rest = r.0;
            check_sum16(rest)?;
            Zeroizing::new(rest[..rest.len() - 2].to_vec())
        }
        254 | 255 => {
            let cipher = r.u8("cipher algorithm")?;
            let s2k = S2k::read(&mut r)?;
            let Some(passphrase) = passphrase else {
                return Err(ImportError::PassphraseRequired);
            };
            let (key_len, block) = cipher_sizes(cipher)?;
            let iv = r.take(block, "IV")?;
            let key = s2k.derive(passphrase.as_bytes(), key_len)?;
            let mut data = Zeroizing::new(r.0.to_vec());
            cfb_decrypt(cipher, &key, iv, &mut data)?;
            if usage == 254 {
                check_sha1(&data)?;
                let len = data.len();
                data.truncate(len - 20);
            } else {
                check_sum16(&data)?;
                let len = data.len();
                data.truncate(len - 2);
            }
            data
        }
        253 => {
            return Err(ImportError::UnsupportedProtection(
                "AEAD-protected keys; export with a passphrase from GnuPG 2.2 or unprotected".into(),
            ))
        }
        _ => {
            return Err(ImportError::UnsupportedProtection(
                "legacy S2K (usage byte is a cipher id, MD5 key derivation); re-export with a current GnuPG".into(),
            ))
        }
    };
    let mut s = Reader(&plain);
    let d = s.mpi("RSA private exponent")?;
    let p = s.mpi("RSA prime p")?;
    let q = s.mpi("RSA prime q")?;
    let _u = s.mpi("RSA coefficient")?;
    if !s.0.is_empty() {
        return Err(bad("unexpected bytes after the RSA secret numbers"));
    }
    let key = RsaPrivateKey::from_components(n, e, d, vec![p, q])
        .map_err(|e| ImportError::InvalidKey(e.to_string()))?;
    Ok(PrivateKey::Rsa(Box::new(key)))
}

/// The two-octet sum check of unprotected (0) and usage-255 keys.
fn check_sum16(data: &[u8]) -> Result<(), ImportError> {
    if data.len() < 2 {
        return Err(bad("secret key material is too short"));
    }
    let (body, sum) = data.split_at(data.len() - 2);
    let want = u16::from_be_bytes([sum[0], sum[1]]);
    let got = body.iter().fold(0u16, |a, &b| a.wrapping_add(u16::from(b)));
    if got == want {
        Ok(())
    } else {
        Err(ImportError::WrongPassphrase)
    }
}

/// The SHA-1 check of usage-254 keys.
fn check_sha1(data: &[u8]) -> Result<(), ImportError> {
    if data.len() < 20 {
        return Err(ImportError::WrongPassphrase);
    }
    let (body, hash) = data.split_at(data.len() - 20);
    if Sha1::digest(body).as_slice() == hash {
        Ok(())
    } else {
        Err(ImportError::WrongPassphrase)
    }
}

const CAST5: u8 = 3;
const AES128: u8 = 7;
const AES192: u8 = 8;
const AES256: u8 = 9;

/// Key and block sizes of the supported ciphers.
fn cipher_sizes(cipher: u8) -> Result<(usize, usize), ImportError> {
    match cipher {
        CAST5 => Ok((16, 8)),
        AES128 => Ok((16, 16)),
        AES192 => Ok((24, 16)),
        AES256 => Ok((32, 16)),
        other => Err(ImportError::UnsupportedProtection(format!(
            "cipher {other} (supported: CAST5, AES-128, AES-192, AES-256)"
        ))),
    }
}

/// OpenPGP secret keys use plain CFB with the stored IV (no resync).
fn cfb_decrypt(cipher: u8, key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), ImportError> {
    fn run<C>(key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), ImportError>
    where
        C: cfb_mode::cipher::BlockEncryptMut
            + cfb_mode::cipher::BlockCipher
            + cfb_mode::cipher::KeyInit,
    {
        cfb_mode::BufDecryptor::<C>::new_from_slices(key, iv)
            .map_err(|_| bad("bad cipher key or IV length"))?
            .decrypt(data);
        Ok(())
    }
    match cipher {
        CAST5 => run::<cast5::Cast5>(key, iv, data),
        AES128 => run::<aes::Aes128>(key, iv, data),
        AES192 => run::<aes::Aes192>(key, iv, data),
        AES256 => run::<aes::Aes256>(key, iv, data),
        other => cipher_sizes(other).map(|_| ()),
    }
}

/// A string-to-key specifier (RFC 4880 3.7).
#[derive(Debug)]
struct S2k {
    hash: u8,
    salt: Option<[u8; 8]>,
    /// Bytes to hash for iterated S2K.
    count: Option<usize>,
}

impl S2k {
    fn read(r: &mut Reader<'_>) -> Result<S2k, ImportError> {
        let kind = r.u8("S2K type")?;
        if kind == 101 {
            return Err(ImportError::UnsupportedProtection(
                "the export holds no secret key (GnuPG stub: the key is on a smartcard or was exported without its secret part)".into(),
            ));
        }
        let hash = r.u8("S2K hash")?;
        let salt = |r: &mut Reader<'_>| -> Result<[u8; 8], ImportError> {
            let mut s = [0u8; 8];
            s.copy_from_slice(r.take(8, "S2K salt")?);
            Ok(s)
        };
        match kind {
            0 => Ok(S2k {
                hash,
                salt: None,
                count: None,
            }),
            1 => Ok(S2k {
                hash,
                salt: Some(salt(r)?),
                count: None,
            }),
            3 => {
                let salt = salt(r)?;
                let c = usize::from(r.u8("S2K count")?);
                let count = (16 + (c & 15)) << ((c >> 4) + 6);
                Ok(S2k {
                    hash,
                    salt: Some(salt),
                    count: Some(count),
                })
            }
            other => Err(ImportError::UnsupportedProtection(format!(
                "S2K type {other}"
            ))),
        }
    }

    fn derive(&self, passphrase: &[u8], key_len: usize) -> Result<Zeroizing<Vec<u8>>, ImportError> {
        match self.hash {
            2 => Ok(self.run::<Sha1>(passphrase, key_len)),
            8 => Ok(self.run::<sha2::Sha256>(passphrase, key_len)),
            9 => Ok(self.run::<sha2::Sha384>(passphrase, key_len)),
            10 => Ok(self.run::<sha2::Sha512>(passphrase, key_len)),
            11 => Ok(self.run::<sha2::Sha224>(passphrase, key_len)),
            other => Err(ImportError::UnsupportedProtection(format!(
                "S2K hash algorithm {other} (supported: SHA-1, SHA-2)"
            ))),
        }
    }

    fn run<D: Digest>(&self, passphrase: &[u8], key_len: usize) -> Zeroizing<Vec<u8>> {
        let mut data = Zeroizing::new(Vec::new());
        data.extend_from_slice(self.salt.as_ref().map_or(&[][..], |s| &s[..]));
        data.extend_from_slice(passphrase);
        let mut out = Zeroizing::new(Vec::with_capacity(key_len + 64));
        let mut preload = 0;
        while out.len() < key_len {
            let mut h = D::new();
            // Each further hash context starts with one more zero octet.
            h.update(vec![0u8; preload]);
            // Iterated S2K hashes `count` octets of salt||passphrase, at least all of it once.
            let mut left = self.count.unwrap_or(0).max(data.len());
            while left > 0 {
                let n = left.min(data.len());
                h.update(&data[..n]);
                left -= n;
            }
            out.extend_from_slice(&h.finalize());
            preload += 1;
        }
        out.truncate(key_len);
        out
    }
}

#[cfg(test)]
/// Packet bodies of a binary OpenPGP stream, for tests that read gpg's exports.
pub(super) fn packet_bodies(data: &[u8]) -> Vec<Vec<u8>> {
    let mut r = Reader(data);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        out.push(next_packet(&mut r).unwrap().1.to_vec());
    }
    out
}
