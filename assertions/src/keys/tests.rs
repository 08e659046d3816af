//! Tests against snapd's vectors, GnuPG, and round trips of coreforge's own keys.

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/snapd")
}

/// Every assertion file in the vectors.
fn assertion_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [vectors(), vectors().join("roots"), vectors().join("models")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if matches!(ext, "account" | "account-key" | "model") {
                out.push(path);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 14, "vectors missing: {out:?}");
    out
}

/// A tiny splitter (not the codec): signed content, headers text, body, signature bytes.
struct Split {
    content: Vec<u8>,
    headers: String,
    body: String,
    signature: Vec<u8>,
}

fn split(path: &Path) -> Split {
    let text = std::fs::read(path).unwrap();
    let last = text.windows(2).rposition(|w| w == b"\n\n").unwrap();
    let content = text[..last].to_vec();
    let sig_text: Vec<u8> = text[last + 2..]
        .iter()
        .copied()
        .filter(|&b| b != b'\n')
        .collect();
    let signature = STANDARD.decode(sig_text).unwrap();
    let content_str = String::from_utf8(content.clone()).unwrap();
    let (headers, body) = match content_str.split_once("\n\n") {
        Some((h, b)) => (h.to_string(), b.to_string()),
        None => (content_str.clone(), String::new()),
    };
    Split {
        content,
        headers,
        body,
        signature,
    }
}

fn header(s: &Split, name: &str) -> String {
    let prefix = format!("{name}: ");
    s.headers
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_string()
}

/// All public keys in the vectors, by the id their account-key header claims.
fn vector_keys() -> Vec<(String, PublicKey, String)> {
    assertion_files()
        .iter()
        .filter(|p| p.extension().unwrap() == "account-key")
        .map(|p| {
            let s = split(p);
            let key = PublicKey::decode(s.body.as_bytes())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (header(&s, "public-key-sha3-384"), key, s.body)
        })
        .collect()
}

#[test]
fn every_vector_public_key_decodes_to_its_id_and_reencodes_identically() {
    let keys = vector_keys();
    assert_eq!(keys.len(), 4);
    for (claimed_id, key, body) in keys {
        assert_eq!(key.id(), claimed_id);
        assert_eq!(key.id().len(), 64);
        assert_eq!(key.encode(), body, "re-encoding differs for {claimed_id}");
        assert!(key.algorithm().starts_with("rsa-"), "{}", key.algorithm());
    }
}

#[test]
fn canonical_root_is_rsa_8192() {
    let s = split(&vectors().join("roots/canonical-root.account-key"));
    assert_eq!(
        PublicKey::decode(s.body.as_bytes()).unwrap().algorithm(),
        "rsa-8192"
    );
}

#[test]
fn every_vector_signature_verifies_with_its_signing_key() {
    let keys = vector_keys();
    for path in assertion_files() {
        let s = split(&path);
        let signer = header(&s, "sign-key-sha3-384");
        let (_, key, _) = keys
            .iter()
            .find(|(id, _, _)| *id == signer)
            .unwrap_or_else(|| panic!("{}: signer {signer} not in vectors", path.display()));
        key.verify(&s.content, &s.signature)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let info = parse_signature(&s.signature).unwrap();
        assert_eq!(info.algorithm, SignatureAlgorithm::Rsa);
        // Every vector was signed between 2016 and 2030.
        assert!(
            (1_451_606_400..1_893_456_000).contains(&info.created),
            "{}",
            info.created
        );
    }
}

fn model_case() -> (Split, PublicKey) {
    let s = split(&vectors().join("models/developer1-pc.model"));
    let key = split(&vectors().join("developer1.account-key"));
    (s, PublicKey::decode(key.body.as_bytes()).unwrap())
}

#[test]
fn flipped_content_byte_fails() {
    let (s, key) = model_case();
    for i in [0, s.content.len() / 2, s.content.len() - 1] {
        let mut content = s.content.clone();
        content[i] ^= 0x01;
        assert!(matches!(
            key.verify(&content, &s.signature),
            Err(SignatureError::Invalid)
        ));
    }
    // A trailing newline is different content too.
    let mut content = s.content.clone();
    content.push(b'\n');
    assert!(matches!(
        key.verify(&content, &s.signature),
        Err(SignatureError::Invalid)
    ));
}

#[test]
fn flipped_signature_bytes_fail() {
    let (s, key) = model_case();
    // In the RSA value, in the hashed creation time, in the hash prefix.
    let n = s.signature.len();
    let creation_time_offset = 1 + 3 + 8;
    let hash_prefix_offset = 1 + 3 + 6 + 6 + 2;
    for i in [n - 1, n - 200, creation_time_offset, hash_prefix_offset] {
        let mut sig = s.signature.clone();
        sig[i] ^= 0x01;
        assert!(
            matches!(key.verify(&s.content, &sig), Err(SignatureError::Invalid)),
            "byte {i}: {:?}",
            key.verify(&s.content, &sig)
        );
    }
    // Damaged framing is reported as such, not as a mismatch.
    let mut sig = s.signature.clone();
    sig[0] = 2;
    assert!(matches!(
        key.verify(&s.content, &sig),
        Err(SignatureError::UnsupportedFormat(2))
    ));
    let truncated = &s.signature[..s.signature.len() - 1];
    assert!(matches!(
        key.verify(&s.content, truncated),
        Err(SignatureError::Malformed(_))
    ));
    assert!(matches!(
        key.verify(&s.content, &[]),
        Err(SignatureError::Empty)
    ));
}

#[test]
fn wrong_key_fails() {
    let (s, _) = model_case();
    let other = split(&vectors().join("roots/testrootorg-root.account-key"));
    let other = PublicKey::decode(other.body.as_bytes()).unwrap();
    assert!(matches!(
        other.verify(&s.content, &s.signature),
        Err(SignatureError::Invalid)
    ));
    let ed = PrivateKey::generate_ed25519(&mut rand_core::OsRng).public_key();
    let err = ed.verify(&s.content, &s.signature).unwrap_err();
    assert!(matches!(
        err,
        SignatureError::WrongKeyType {
            key: "ed25519",
            signature: "rsa"
        }
    ));
    assert_eq!(
        err.to_string(),
        "signature was made with an rsa key but the key is ed25519"
    );
}

#[test]
fn public_key_decode_errors() {
    let good = split(&vectors().join("developer1.account-key")).body;
    let packet = PublicKey::decode(good.as_bytes()).unwrap().to_packet();

    assert!(matches!(
        PublicKey::decode(b"!!!"),
        Err(KeyError::Base64(_))
    ));
    assert!(matches!(PublicKey::from_packet(&[]), Err(KeyError::Empty)));
    let mut v2 = packet.clone();
    v2[0] = 2;
    assert!(matches!(
        PublicKey::from_packet(&v2),
        Err(KeyError::UnsupportedFormat(2))
    ));
    let mut trailing = packet.clone();
    trailing.push(0);
    assert!(matches!(
        PublicKey::from_packet(&trailing),
        Err(KeyError::Malformed(_))
    ));
    // Creation time lives at offset 1 (format) + 3 (header) + 1 (version).
    let mut time = packet.clone();
    time[5] ^= 0x01;
    assert!(matches!(
        PublicKey::from_packet(&time),
        Err(KeyError::CreationTime(_))
    ));
    // The same key with an old-format header: parses, but is not snapd's encoding.
    let body = &packet[4..];
    let mut old = vec![1, 0x99];
    old.extend_from_slice(&(body.len() as u16).to_be_bytes());
    old.extend_from_slice(body);
    assert!(matches!(
        PublicKey::from_packet(&old),
        Err(KeyError::NonCanonical)
    ));
    // A signature is not a key.
    let (s, _) = model_case();
    assert!(matches!(
        PublicKey::from_packet(&s.signature),
        Err(KeyError::NotAPublicKey(2))
    ));
}

#[test]
fn ed25519_sign_verify_tamper() {
    let key = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let public = key.public_key();
    let content = b"type: model\nauthority-id: me\n\nbody";
    let sig = key.sign(content, 1_700_000_000).unwrap();
    public.verify(content, &sig).unwrap();

    let info = parse_signature(&sig).unwrap();
    assert_eq!(info.algorithm, SignatureAlgorithm::Ed25519);
    assert_eq!(info.created, 1_700_000_000);
    assert_eq!(info.issuer, Some(openpgp::key_id(&public.packet_body())));

    let mut tampered = content.to_vec();
    tampered[3] ^= 0x20;
    assert!(matches!(
        public.verify(&tampered, &sig),
        Err(SignatureError::Invalid)
    ));
    for i in [sig.len() - 1, sig.len() - 40, 12] {
        let mut bad = sig.clone();
        bad[i] ^= 0x01;
        assert!(public.verify(content, &bad).is_err(), "byte {i}");
    }
    let other = PrivateKey::generate_ed25519(&mut rand_core::OsRng).public_key();
    assert!(matches!(
        other.verify(content, &sig),
        Err(SignatureError::Invalid)
    ));
}

#[test]
fn ed25519_public_key_round_trips_through_text() {
    let public = PrivateKey::generate_ed25519(&mut rand_core::OsRng).public_key();
    let text = public.encode();
    assert!(!text.ends_with('\n'));
    assert_eq!(PublicKey::decode(text.as_bytes()).unwrap(), public);
    assert_eq!(public.id().len(), 64);
    assert_eq!(public.algorithm(), "ed25519");
    // 0x01, new-format tag 6, one-octet length, v4, fixed time, algorithm 22.
    let p = public.to_packet();
    assert_eq!(&p[..9], &[1, 0xc6, 51, 4, 0x56, 0x85, 0xc1, 0x80, 22]);
}

#[test]
fn signature_layout_matches_go_openpgp() {
    let key = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let sig = key.sign(b"x", 0x5000_0000).unwrap();
    // 0x01, tag 2 new format, v4, binary, EdDSA, SHA-512, hashed len 6, creation time,
    // unhashed len 10, issuer subpacket.
    assert_eq!(&sig[..3], &[1, 0xc2, (sig.len() - 3) as u8]);
    assert_eq!(
        &sig[3..17],
        &[4, 0, 22, 10, 0, 6, 5, 2, 0x50, 0, 0, 0, 0, 10]
    );
    assert_eq!(sig[17..19], [9, 16]);
}

fn rsa_key(bits: usize) -> PrivateKey {
    PrivateKey::Rsa(Box::new(
        RsaPrivateKey::new(&mut rand_core::OsRng, bits).unwrap(),
    ))
}

#[test]
fn rsa_sign_verify_and_go_layout() {
    let key = rsa_key(2048);
    let public = key.public_key();
    let content = b"some assertion";
    let sig = key.sign(content, 1_600_000_000).unwrap();
    public.verify(content, &sig).unwrap();
    assert!(matches!(
        public.verify(b"other", &sig),
        Err(SignatureError::Invalid)
    ));
    // Go writes the RSA value at full modulus width: bit count 8 * 256 = 2048.
    let n = sig.len();
    assert_eq!(&sig[n - 258..n - 256], &[0x08, 0x00]);
    assert_eq!(
        parse_signature(&sig).unwrap().algorithm,
        SignatureAlgorithm::Rsa
    );
    // And the key encodes and decodes like snapd's.
    assert_eq!(
        PublicKey::decode(public.encode().as_bytes()).unwrap(),
        public
    );
    assert_eq!(public.algorithm(), "rsa-2048");
}

#[test]
fn secret_bytes_round_trip() {
    for key in [
        PrivateKey::generate_ed25519(&mut rand_core::OsRng),
        rsa_key(1024),
    ] {
        let bytes = key.to_secret_bytes();
        let back = PrivateKey::from_secret_bytes(&bytes).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        let sig = back.sign(b"c", 1).unwrap();
        key.public_key().verify(b"c", &sig).unwrap();

        assert!(PrivateKey::from_secret_bytes(&bytes[..bytes.len() - 1]).is_err());
        let mut extra = bytes.to_vec();
        extra.push(0);
        assert!(PrivateKey::from_secret_bytes(&extra).is_err());
        let mut magic = bytes.to_vec();
        magic[0] ^= 1;
        let err = PrivateKey::from_secret_bytes(&magic).unwrap_err();
        assert!(err.to_string().contains("wrong magic"), "{err}");
    }
}

#[test]
fn private_key_debug_hides_secrets() {
    let key = rsa_key(1024);
    let PrivateKey::Rsa(rsa) = &key else {
        unreachable!()
    };
    let d = rsa.d().to_string();
    let shown = format!("{key:?}");
    assert!(!shown.contains(&d[..20]), "{shown}");
    assert!(shown.contains(&key.public_key().id()));
}

// --- GnuPG interoperability ---

struct Gpg {
    home: PathBuf,
}

impl Gpg {
    fn new(tag: &str) -> Gpg {
        let home = std::env::temp_dir().join(format!("cf-keys-gpg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        Gpg { home }
    }

    fn run(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(&self.home)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
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
            .arg(&self.home)
            .args(["--kill", "gpg-agent"])
            .status();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// First packet of a binary OpenPGP stream: (tag, body).
fn first_packet(stream: &[u8]) -> (u8, &[u8]) {
    let hdr = stream[0];
    assert!(hdr & 0x40 != 0 || hdr & 0x80 != 0);
    let len_octets = if hdr & 0x40 != 0 {
        match stream[1] {
            0..=191 => 1,
            192..=223 => 2,
            _ => 5,
        }
    } else {
        [1, 2, 4][usize::from(hdr & 3)]
    };
    let mut len = 0usize;
    let (tag, body_len) = if hdr & 0x40 != 0 {
        len = match len_octets {
            1 => usize::from(stream[1]),
            2 => ((usize::from(stream[1]) - 192) << 8) + usize::from(stream[2]) + 192,
            _ => u32::from_be_bytes(stream[2..6].try_into().unwrap()) as usize,
        };
        (hdr & 0x3f, len)
    } else {
        for b in &stream[1..1 + len_octets] {
            len = (len << 8) | usize::from(*b);
        }
        ((hdr >> 2) & 0xf, len)
    };
    (tag, &stream[1 + len_octets..1 + len_octets + body_len])
}

/// GnuPG's EdDSA and RSA detached signatures (SHA-512) verify here: the EdDSA
/// encoding (digest signed, r and s MPIs) is the one GnuPG uses.
#[test]
fn gnupg_signatures_verify() {
    for (algo, expected) in [
        ("ed25519", SignatureAlgorithm::Ed25519),
        ("rsa2048", SignatureAlgorithm::Rsa),
    ] {
        let gpg = Gpg::new(algo);
        gpg.run(&[
            "--quick-gen-key",
            "T <t@example.com>",
            algo,
            "sign",
            "never",
        ]);
        let export = gpg.run(&["--export", "t@example.com"]);
        let (tag, body) = first_packet(&export);
        assert_eq!(tag, 6);
        let parsed = openpgp::parse_public_key(body).unwrap();
        let public = match parsed.material {
            KeyMaterial::Ed25519(k) => PublicKey::Ed25519(VerifyingKey::from_bytes(&k).unwrap()),
            KeyMaterial::Rsa { n, e } => PublicKey::Rsa(RsaPublicKey::new(n, e).unwrap()),
        };
        let content_path = gpg.home.join("content");
        std::fs::write(&content_path, b"type: model\n\nhello").unwrap();
        let sig_packet = gpg.run(&[
            "--digest-algo",
            "SHA512",
            "--detach-sign",
            "-o",
            "-",
            content_path.to_str().unwrap(),
        ]);
        let (tag, _) = first_packet(&sig_packet);
        assert_eq!(tag, 2);
        let mut sig = vec![1];
        sig.extend_from_slice(&sig_packet);
        public
            .verify(b"type: model\n\nhello", &sig)
            .unwrap_or_else(|e| panic!("{algo}: {e}"));
        assert_eq!(parse_signature(&sig).unwrap().algorithm, expected);
        assert!(matches!(
            public.verify(b"type: model\n\nhellO", &sig),
            Err(SignatureError::Invalid)
        ));
    }
}

/// Our signatures verify with `gpg --verify` once our public key (with a user id and a
/// self-signature made here) is in GnuPG's keyring: the issuer subpacket names it.
#[test]
fn gnupg_verifies_our_signatures() {
    for key in [
        PrivateKey::generate_ed25519(&mut rand_core::OsRng),
        rsa_key(2048),
    ] {
        let gpg = Gpg::new(&format!("verify-{}", key.public_key().algorithm()));
        let public = key.public_key();
        let key_body = public.packet_body();
        let uid = b"coreforge test <t@example.com>";
        // A positive certification (0x13) over key and user id, so GnuPG accepts the key.
        let mut cert_hashed = openpgp::signature_hashed_part(
            match key {
                PrivateKey::Ed25519(_) => openpgp::ALGO_EDDSA,
                PrivateKey::Rsa(_) => openpgp::ALGO_RSA,
            },
            openpgp::HASH_SHA512,
            KEY_CREATION_TIME,
        );
        cert_hashed[1] = 0x13;
        let mut signed = vec![0x99];
        signed.extend_from_slice(&(key_body.len() as u16).to_be_bytes());
        signed.extend_from_slice(&key_body);
        signed.push(0xb4);
        signed.extend_from_slice(&(uid.len() as u32).to_be_bytes());
        signed.extend_from_slice(uid);
        let digest = signature_digest(openpgp::HASH_SHA512, &signed, &cert_hashed).unwrap();
        let mut mpis = Vec::new();
        match &key {
            PrivateKey::Ed25519(k) => {
                let s = k.sign(&digest);
                openpgp::write_mpi(&mut mpis, s.r_bytes());
                openpgp::write_mpi(&mut mpis, s.s_bytes());
            }
            PrivateKey::Rsa(k) => {
                let s = k.sign(Pkcs1v15Sign::new::<Sha512>(), &digest).unwrap();
                openpgp::write_mpi(&mut mpis, &s);
            }
        }
        let issuer = openpgp::key_id(&key_body);
        let cert = openpgp::write_signature(&cert_hashed, issuer, [digest[0], digest[1]], &mpis);
        let mut keyring = public.to_packet()[1..].to_vec();
        keyring.extend(openpgp::write_packet(13, uid));
        keyring.extend(openpgp::write_packet(openpgp::TAG_SIGNATURE, &cert));
        let ring_path = gpg.home.join("key.pgp");
        std::fs::write(&ring_path, &keyring).unwrap();
        gpg.run(&["--import", ring_path.to_str().unwrap()]);

        let content = b"type: account-key\n\nbody bytes";
        let sig = key.sign(content, 1_700_000_000).unwrap();
        let (content_path, sig_path) = (gpg.home.join("content"), gpg.home.join("content.sig"));
        std::fs::write(&content_path, content).unwrap();
        std::fs::write(&sig_path, &sig[1..]).unwrap();
        let status = gpg.run(&[
            "--status-fd",
            "1",
            "--verify",
            sig_path.to_str().unwrap(),
            content_path.to_str().unwrap(),
        ]);
        let status = String::from_utf8_lossy(&status);
        assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");

        // And a tampered file is refused by GnuPG too.
        std::fs::write(&content_path, b"type: account-key\n\nbody byteS").unwrap();
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(&gpg.home)
            .args(["--batch", "--verify"])
            .arg(&sig_path)
            .arg(&content_path)
            .output()
            .unwrap();
        assert!(!out.status.success());
    }
}
