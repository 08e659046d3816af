//! The few OpenPGP (RFC 4880) packet pieces snapd's key and signature encodings use.
//!
//! Only what `keys.rs` needs: packet framing, MPIs, v4 public-key packets (RSA and
//! EdDSA/Ed25519) and v4 signature packets. Writers produce exactly what Go's
//! `golang.org/x/crypto/openpgp` writes for snapd, so encodings match byte for byte.

use std::fmt;

/// Packet tag of a signature packet.
pub(crate) const TAG_SIGNATURE: u8 = 2;
/// Packet tag of a public-key packet.
pub(crate) const TAG_PUBLIC_KEY: u8 = 6;

/// Public-key algorithm: RSA (encrypt or sign).
pub(crate) const ALGO_RSA: u8 = 1;
/// Public-key algorithm: EdDSA (RFC 4880bis, as GnuPG writes it).
pub(crate) const ALGO_EDDSA: u8 = 22;

/// Hash algorithm ids (RFC 4880 9.4).
pub(crate) const HASH_SHA256: u8 = 8;
pub(crate) const HASH_SHA384: u8 = 9;
pub(crate) const HASH_SHA512: u8 = 10;

/// Signature type of a signature over a binary document.
pub(crate) const SIG_BINARY: u8 = 0x00;

/// OID of the Ed25519 curve for EdDSA keys (1.3.6.1.4.1.11591.15.1), DER body without tag/length.
pub(crate) const ED25519_OID: [u8; 9] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01];

/// Prefix octet of a native (compressed) EdDSA point in an MPI.
pub(crate) const EDDSA_POINT_PREFIX: u8 = 0x40;

const SUBPACKET_CREATION_TIME: u8 = 2;
const SUBPACKET_EXPIRATION_TIME: u8 = 3;
const SUBPACKET_ISSUER: u8 = 16;

/// Largest MPI accepted: 16384 bits is far beyond any key snapd or GnuPG make.
const MAX_MPI_BITS: usize = 16384;

/// Why a packet could not be parsed; turned into the public error types by `keys.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn malformed(what: impl Into<String>) -> Malformed {
    Malformed(what.into())
}

/// A reader that cannot read past its input: every read names what it was reading.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Malformed> {
        if self.rest.len() < n {
            return Err(malformed(format!("truncated {what}")));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, Malformed> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, Malformed> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, Malformed> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads an MPI and returns its magnitude bytes as stored (length from the bit count,
    /// like Go and GnuPG: the declared bit count is not required to be minimal).
    pub(crate) fn mpi(&mut self, what: &str) -> Result<&'a [u8], Malformed> {
        let bits = usize::from(self.u16(what)?);
        if bits > MAX_MPI_BITS {
            return Err(malformed(format!("{what} is too large ({bits} bits)")));
        }
        self.take(bits.div_ceil(8), what)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn finish(self, what: &str) -> Result<(), Malformed> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(malformed(format!(
                "{} unexpected trailing bytes after {what}",
                self.rest.len()
            )))
        }
    }
}

/// Splits `bytes` into exactly one packet: returns its tag and body. Accepts old- and
/// new-format headers (Go's reader does); rejects partial lengths and trailing data.
pub(crate) fn read_packet(bytes: &[u8]) -> Result<(u8, &[u8]), Malformed> {
    let mut r = Reader::new(bytes);
    let first = r.u8("packet header")?;
    if first & 0x80 == 0 {
        return Err(malformed(
            "not an OpenPGP packet (bit 7 of the header is clear)",
        ));
    }
    let (tag, len) = if first & 0x40 != 0 {
        let tag = first & 0x3f;
        let o1 = r.u8("packet length")?;
        let len = match o1 {
            0..=191 => usize::from(o1),
            192..=223 => ((usize::from(o1) - 192) << 8) + usize::from(r.u8("packet length")?) + 192,
            255 => r.u32("packet length")? as usize,
            _ => return Err(malformed("partial-length packets are not supported")),
        };
        (tag, len)
    } else {
        let tag = (first >> 2) & 0x0f;
        let len = match first & 0x03 {
            0 => usize::from(r.u8("packet length")?),
            1 => usize::from(r.u16("packet length")?),
            2 => r.u32("packet length")? as usize,
            _ => return Err(malformed("indeterminate-length packets are not supported")),
        };
        (tag, len)
    };
    let body = r.take(len, "packet body")?;
    r.finish("the packet")?;
    Ok((tag, body))
}

/// Frames `body` as a packet with a new-format header, as Go's `serializeHeader` does.
pub(crate) fn write_packet(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 6);
    out.push(0xc0 | tag);
    let len = body.len();
    if len < 192 {
        out.push(len as u8);
    } else if len < 8384 {
        let l = len - 192;
        out.push(192 + (l >> 8) as u8);
        out.push(l as u8);
    } else {
        out.push(255);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(body);
    out
}

/// Writes `magnitude` as a canonical MPI: leading zero octets stripped, exact bit count.
pub(crate) fn write_mpi(out: &mut Vec<u8>, magnitude: &[u8]) {
    let start = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let m = &magnitude[start..];
    let bits = match m.first() {
        Some(&top) => (m.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        None => 0,
    };
    out.extend_from_slice(&(bits as u16).to_be_bytes());
    out.extend_from_slice(m);
}

/// Writes `bytes` as an MPI whose bit count is `8 * len`, as Go writes RSA signatures.
pub(crate) fn write_mpi_full_width(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&((bytes.len() * 8) as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Strips leading zero octets: MPIs carry magnitudes, comparisons need one form.
pub(crate) fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Left-pads `bytes` with zeros to `width` octets; `None` when it does not fit.
pub(crate) fn left_pad(bytes: &[u8], width: usize) -> Option<Vec<u8>> {
    let m = strip_zeros(bytes);
    if m.len() > width {
        return None;
    }
    let mut out = vec![0u8; width - m.len()];
    out.extend_from_slice(m);
    Some(out)
}

/// The key material of a v4 public-key packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyMaterial<'a> {
    /// RSA modulus and exponent magnitudes.
    Rsa { n: &'a [u8], e: &'a [u8] },
    /// A 32-byte Ed25519 public key.
    Ed25519([u8; 32]),
}

/// A parsed v4 public-key packet body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicKeyPacket<'a> {
    pub(crate) created: u32,
    pub(crate) material: KeyMaterial<'a>,
}

/// Parses the body of a public-key packet (tag 6).
pub(crate) fn parse_public_key(body: &[u8]) -> Result<PublicKeyPacket<'_>, Malformed> {
    let mut r = Reader::new(body);
    let version = r.u8("key version")?;
    if version != 4 {
        return Err(malformed(format!(
            "unsupported public-key packet version {version} (want 4)"
        )));
    }
    let created = r.u32("key creation time")?;
    let algo = r.u8("key algorithm")?;
    let material = match algo {
        ALGO_RSA => {
            let n = r.mpi("RSA modulus")?;
            let e = r.mpi("RSA exponent")?;
            KeyMaterial::Rsa { n, e }
        }
        ALGO_EDDSA => {
            let oid_len = usize::from(r.u8("curve OID length")?);
            let oid = r.take(oid_len, "curve OID")?;
            if oid != ED25519_OID {
                return Err(malformed("EdDSA key on a curve other than Ed25519"));
            }
            let point = r.mpi("EdDSA point")?;
            match point.split_first() {
                Some((&EDDSA_POINT_PREFIX, rest)) if rest.len() == 32 => {
                    let mut k = [0u8; 32];
                    k.copy_from_slice(rest);
                    KeyMaterial::Ed25519(k)
                }
                _ => return Err(malformed("EdDSA point is not a 0x40-prefixed 32-byte key")),
            }
        }
        other => {
            return Err(malformed(format!(
                "unsupported public-key algorithm {other}"
            )));
        }
    };
    r.finish("the public key")?;
    Ok(PublicKeyPacket { created, material })
}

/// Writes the body of a v4 public-key packet.
pub(crate) fn write_public_key(created: u32, material: &KeyMaterial<'_>) -> Vec<u8> {
    let mut out = vec![4];
    out.extend_from_slice(&created.to_be_bytes());
    match material {
        KeyMaterial::Rsa { n, e } => {
            out.push(ALGO_RSA);
            write_mpi(&mut out, n);
            write_mpi(&mut out, e);
        }
        KeyMaterial::Ed25519(k) => {
            out.push(ALGO_EDDSA);
            out.push(ED25519_OID.len() as u8);
            out.extend_from_slice(&ED25519_OID);
            let mut point = Vec::with_capacity(33);
            point.push(EDDSA_POINT_PREFIX);
            point.extend_from_slice(k);
            write_mpi(&mut out, &point);
        }
    }
    out
}

/// The 8-byte OpenPGP key id: the low 64 bits of the v4 fingerprint (RFC 4880 12.2).
pub(crate) fn key_id(public_key_body: &[u8]) -> [u8; 8] {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update([0x99]);
    h.update((public_key_body.len() as u16).to_be_bytes());
    h.update(public_key_body);
    let fp = h.finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&fp[12..20]);
    id
}

/// A parsed v4 signature packet body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignaturePacket<'a> {
    pub(crate) sig_type: u8,
    pub(crate) pubkey_algo: u8,
    pub(crate) hash_algo: u8,
    /// Version through the end of the hashed subpackets: what the hash trailer covers.
    pub(crate) hashed_part: &'a [u8],
    pub(crate) created: u32,
    pub(crate) issuer: Option<[u8; 8]>,
    pub(crate) hash_prefix: [u8; 2],
    /// The signature MPIs' magnitudes (RSA: one, EdDSA: r and s).
    pub(crate) mpis: Vec<&'a [u8]>,
}

/// What the subpackets of one area told us.
#[derive(Debug, Default)]
struct Subpackets {
    created: Option<u32>,
    issuer: Option<[u8; 8]>,
}

fn parse_subpackets(area: &[u8], hashed: bool, into: &mut Subpackets) -> Result<(), Malformed> {
    let mut r = Reader::new(area);
    while !r.is_empty() {
        let o1 = r.u8("subpacket length")?;
        let len = match o1 {
            0..=191 => usize::from(o1),
            192..=254 => {
                ((usize::from(o1) - 192) << 8) + usize::from(r.u8("subpacket length")?) + 192
            }
            255 => r.u32("subpacket length")? as usize,
        };
        if len == 0 {
            return Err(malformed("empty subpacket"));
        }
        let body = r.take(len, "subpacket")?;
        let (kind, data) = (body[0] & 0x7f, &body[1..]);
        let critical = body[0] & 0x80 != 0;
        match kind {
            SUBPACKET_CREATION_TIME => {
                if !hashed {
                    return Err(malformed(
                        "signature creation time is not in the hashed area",
                    ));
                }
                let t: [u8; 4] = data
                    .try_into()
                    .map_err(|_| malformed("creation time subpacket is not 4 bytes"))?;
                if into.created.replace(u32::from_be_bytes(t)).is_some() {
                    return Err(malformed("more than one signature creation time"));
                }
            }
            SUBPACKET_ISSUER => {
                let id: [u8; 8] = data
                    .try_into()
                    .map_err(|_| malformed("issuer subpacket is not 8 bytes"))?;
                into.issuer = Some(id);
            }
            // An expiry we would silently ignore could make an expired signature pass.
            SUBPACKET_EXPIRATION_TIME if hashed => {
                return Err(malformed(
                    "signatures with an expiration time are not supported",
                ));
            }
            _ if critical => {
                return Err(malformed(format!(
                    "unsupported critical subpacket type {kind}"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Parses the body of a signature packet (tag 2); only v4 is accepted.
pub(crate) fn parse_signature(body: &[u8]) -> Result<SignaturePacket<'_>, Malformed> {
    let mut r = Reader::new(body);
    let version = r.u8("signature version")?;
    if version != 4 {
        return Err(malformed(format!(
            "unsupported signature packet version {version} (want 4)"
        )));
    }
    let sig_type = r.u8("signature type")?;
    let pubkey_algo = r.u8("signature public-key algorithm")?;
    let hash_algo = r.u8("signature hash algorithm")?;
    let hashed_len = usize::from(r.u16("hashed subpackets length")?);
    let hashed = r.take(hashed_len, "hashed subpackets")?;
    let hashed_part = &body[..6 + hashed_len];
    let unhashed_len = usize::from(r.u16("unhashed subpackets length")?);
    let unhashed = r.take(unhashed_len, "unhashed subpackets")?;
    let mut subs = Subpackets::default();
    parse_subpackets(hashed, true, &mut subs)?;
    parse_subpackets(unhashed, false, &mut subs)?;
    let created = subs
        .created
        .ok_or_else(|| malformed("signature has no creation time"))?;
    let prefix = r.take(2, "hash prefix")?;
    let hash_prefix = [prefix[0], prefix[1]];
    let count = match pubkey_algo {
        ALGO_RSA => 1,
        ALGO_EDDSA => 2,
        other => {
            return Err(malformed(format!(
                "unsupported signature public-key algorithm {other}"
            )))
        }
    };
    let mut mpis = Vec::with_capacity(count);
    for _ in 0..count {
        mpis.push(r.mpi("signature value")?);
    }
    r.finish("the signature")?;
    Ok(SignaturePacket {
        sig_type,
        pubkey_algo,
        hash_algo,
        hashed_part,
        created,
        issuer: subs.issuer,
        hash_prefix,
        mpis,
    })
}

/// The hashed part of a new signature: version, type, algorithms, and one hashed
/// subpacket (creation time), exactly as Go's `Signature.Sign` builds it.
pub(crate) fn signature_hashed_part(pubkey_algo: u8, hash_algo: u8, created: u32) -> Vec<u8> {
    let mut out = vec![
        4,
        SIG_BINARY,
        pubkey_algo,
        hash_algo,
        0,
        6,
        5,
        SUBPACKET_CREATION_TIME,
    ];
    out.extend_from_slice(&created.to_be_bytes());
    out
}

/// The trailer hashed after the content and hashed part (RFC 4880 5.2.4).
pub(crate) fn signature_trailer(hashed_part: &[u8]) -> [u8; 6] {
    let len = (hashed_part.len() as u32).to_be_bytes();
    [4, 0xff, len[0], len[1], len[2], len[3]]
}

/// Writes a full signature packet body from its hashed part and signature MPIs
/// (already encoded), with the issuer in the unhashed area.
pub(crate) fn write_signature(
    hashed_part: &[u8],
    issuer: [u8; 8],
    hash_prefix: [u8; 2],
    mpis: &[u8],
) -> Vec<u8> {
    let mut out = hashed_part.to_vec();
    out.extend_from_slice(&[0, 10, 9, SUBPACKET_ISSUER]);
    out.extend_from_slice(&issuer);
    out.extend_from_slice(&hash_prefix);
    out.extend_from_slice(mpis);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_lengths_round_trip_across_header_sizes() {
        for len in [0usize, 191, 192, 8383, 8384, 70000] {
            let body = vec![0xabu8; len];
            let p = write_packet(TAG_SIGNATURE, &body);
            let expected_header = match len {
                0..=191 => 2,
                192..=8383 => 3,
                _ => 6,
            };
            assert_eq!(p.len(), len + expected_header, "len {len}");
            let (tag, got) = read_packet(&p).unwrap();
            assert_eq!(tag, TAG_SIGNATURE);
            assert_eq!(got, &body[..]);
        }
    }

    #[test]
    fn old_format_headers_are_read() {
        // tag 6, two-octet length
        let p = [0x99, 0x00, 0x02, 0xaa, 0xbb];
        assert_eq!(read_packet(&p).unwrap(), (6, &[0xaa, 0xbb][..]));
        // tag 2, one-octet length
        let p = [0x88, 0x01, 0xcc];
        assert_eq!(read_packet(&p).unwrap(), (2, &[0xcc][..]));
    }

    #[test]
    fn framing_errors_are_reported() {
        assert!(read_packet(&[]).is_err());
        assert!(read_packet(&[0x46, 0x01, 0x00]).is_err(), "bit 7 clear");
        assert!(read_packet(&[0xc6, 0x03, 0x00]).is_err(), "truncated body");
        assert!(
            read_packet(&[0xc6, 0x01, 0x00, 0x00]).is_err(),
            "trailing data"
        );
        assert!(read_packet(&[0xc6, 0xe1, 0x00]).is_err(), "partial length");
        assert!(read_packet(&[0x9b, 0x00]).is_err(), "indeterminate length");
    }

    #[test]
    fn mpis_are_canonical_and_read_back() {
        let mut out = Vec::new();
        write_mpi(&mut out, &[0x00, 0x01, 0xff]);
        assert_eq!(out, [0x00, 0x09, 0x01, 0xff]);
        let mut r = Reader::new(&out);
        assert_eq!(r.mpi("x").unwrap(), &[0x01, 0xff]);
        assert!(r.is_empty());

        let mut out = Vec::new();
        write_mpi_full_width(&mut out, &[0x00, 0x7f]);
        assert_eq!(out, [0x00, 0x10, 0x00, 0x7f]);
        assert_eq!(
            Reader::new(&[0x40, 0x01]).mpi("x").unwrap_err().0,
            "x is too large (16385 bits)"
        );
    }

    #[test]
    fn left_pad_fits_or_refuses() {
        assert_eq!(left_pad(&[1, 2], 4), Some(vec![0, 0, 1, 2]));
        assert_eq!(left_pad(&[0, 0, 1, 2], 2), Some(vec![1, 2]));
        assert_eq!(left_pad(&[1, 2, 3], 2), None);
    }

    #[test]
    fn ed25519_public_key_packet_round_trips() {
        let k = [7u8; 32];
        let body = write_public_key(1451606400, &KeyMaterial::Ed25519(k));
        // version, time, algo 22, OID len 9, OID, MPI of 263 bits
        assert_eq!(&body[..6], &[4, 0x56, 0x85, 0xc1, 0x80, 22][..]);
        assert_eq!(body[6], 9);
        assert_eq!(&body[16..18], &[0x01, 0x07]);
        let parsed = parse_public_key(&body).unwrap();
        assert_eq!(parsed.created, 1451606400);
        assert_eq!(parsed.material, KeyMaterial::Ed25519(k));
    }

    #[test]
    fn signature_subpacket_rules() {
        let hashed = signature_hashed_part(ALGO_EDDSA, HASH_SHA512, 42);
        let mut mpis = Vec::new();
        write_mpi(&mut mpis, &[1; 32]);
        write_mpi(&mut mpis, &[2; 32]);
        let body = write_signature(&hashed, [9; 8], [0xaa, 0xbb], &mpis);
        let sig = parse_signature(&body).unwrap();
        assert_eq!(sig.created, 42);
        assert_eq!(sig.issuer, Some([9; 8]));
        assert_eq!(sig.hash_prefix, [0xaa, 0xbb]);
        assert_eq!(sig.hashed_part, &hashed[..]);

        // An unknown critical subpacket in the hashed area is refused.
        let mut bad = body.clone();
        bad[5] = 9; // hashed length 6 + 3
        bad.splice(12..12, [2u8, 0x80 | 100, 0]);
        let err = parse_signature(&bad).unwrap_err();
        assert!(err.0.contains("critical subpacket type 100"), "{err}");

        // No creation time at all.
        let mut none = vec![4, 0, ALGO_EDDSA, HASH_SHA512, 0, 0, 0, 0, 0xaa, 0xbb];
        none.extend_from_slice(&mpis);
        assert!(parse_signature(&none)
            .unwrap_err()
            .0
            .contains("no creation time"));
    }
}
