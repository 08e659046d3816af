//! snapd's own assertions (../shared/vectors/snapd, read in place) decode,
//! re-encode byte for byte, and verify through their chains.

use std::path::{Path, PathBuf};

use coreforge_assertions::{
    format_content, sign, Assertion, DecodeError, HeaderError, HeaderValue, PrivateKey, Timestamp,
    TrustDb, VerifyError,
};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/snapd")
}

fn read(rel: &str) -> Vec<u8> {
    let p = vectors().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn one(rel: &str) -> Assertion {
    let mut all = Assertion::decode_all(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(all.len(), 1, "{rel}");
    all.remove(0)
}

fn assertion_files() -> Vec<String> {
    let mut out = vec![
        "developer1.account".to_owned(),
        "developer1.account-key".to_owned(),
    ];
    for dir in ["roots", "models"] {
        for e in std::fs::read_dir(vectors().join(dir)).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            if !name.ends_with(".json") {
                out.push(format!("{dir}/{name}"));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 14, "vectors missing: {out:?}");
    out
}

fn model_files() -> Vec<String> {
    assertion_files()
        .into_iter()
        .filter(|f| f.ends_with(".model"))
        .collect()
}

/// The test root as trusted, and the chain from it to developer1.
fn testroot_db() -> TrustDb {
    let mut db = TrustDb::new();
    db.add_trusted(one("roots/testrootorg-root.account-key"));
    db.add_trusted(one("roots/testrootorg.account"));
    db.add(one("roots/testrootorg-store.account-key"));
    db.add(one("developer1.account"));
    db.add(one("developer1.account-key"));
    db
}

#[test]
fn every_vector_decodes_and_encodes_to_identical_bytes() {
    for f in assertion_files() {
        let bytes = read(&f);
        let a = Assertion::decode(&bytes).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(a.encode(), &bytes[..], "{f}");
        // Re-formatting the parsed headers in snapd's order gives the signed bytes back.
        let body = (!a.body().is_empty()).then(|| a.body());
        let content = format_content(a.headers(), body, a.sign_key_id()).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&content),
            String::from_utf8_lossy(a.signed_content()),
            "{f}"
        );
    }
}

#[test]
fn streams_with_several_assertions_and_extra_newlines() {
    let files = assertion_files();
    let mut stream = b"\n".to_vec();
    for f in &files {
        stream.extend(read(f));
        stream.extend(b"\n\n\n");
    }
    let all = Assertion::decode_all(&stream).unwrap();
    assert_eq!(all.len(), files.len());
    for (a, f) in all.iter().zip(&files) {
        // Some vector files end with a newline; the stream decoder drops it.
        let bytes = read(f);
        let trimmed = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        assert!(a.encode() == trimmed, "{f}");
    }
    // Joined by a single blank line, as snapd writes streams.
    let joined: Vec<u8> = files
        .iter()
        .map(|f| read(f))
        .collect::<Vec<_>>()
        .join(&b"\n\n"[..]);
    assert_eq!(Assertion::decode_all(&joined).unwrap().len(), files.len());
}

#[test]
fn every_model_verifies_through_the_test_root() {
    let db = testroot_db();
    for f in model_files() {
        let model = one(&f);
        let v = db.verify(&model).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(v.signer(), "developer1");
        assert_eq!(v.chain().len(), 3, "{f}: model key, store key, root key");
    }
}

#[test]
fn canonical_root_verifies_itself_and_its_account() {
    let mut db = TrustDb::new();
    let root = one("roots/canonical-root.account-key");
    let account = one("roots/canonical.account");
    db.add_trusted(root.clone());
    db.add_trusted(account.clone());
    db.verify(&root).unwrap();
    db.verify(&account).unwrap();
    // The test root's store key is not signed by Canonical.
    let err = db
        .verify(&one("roots/testrootorg-store.account-key"))
        .unwrap_err();
    assert!(matches!(err, VerifyError::UnknownKey { .. }), "{err}");
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 0x01;
    b
}

#[test]
fn flipped_byte_in_headers_fails_the_signature() {
    let db = testroot_db();
    let bytes = read("models/developer1-pc.model");
    let at = find(&bytes, b"model: my-model").unwrap() + 8;
    let a = Assertion::decode(&flip(&bytes, at)).unwrap();
    let err = db.verify(&a).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature(_)), "{err}");
}

#[test]
fn flipped_byte_in_body_fails_the_signature() {
    // An account-key has a body: flip a base64 letter that still decodes.
    let mut db = testroot_db();
    let bytes = read("developer1.account-key");
    let body_at = find(&bytes, b"\n\nAcbBTQ").unwrap() + 40;
    let tampered = Assertion::decode(&flip(&bytes, body_at));
    match tampered {
        // The key id no longer matches the body: caught while decoding.
        Err(e) => assert!(e.to_string().contains("public key"), "{e}"),
        Ok(a) => {
            db.add(a.clone());
            assert!(db.verify(&a).is_err());
        }
    }
    // A body on a type whose headers do not check it: only the signature can tell.
    let key = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let headers: Vec<(String, HeaderValue)> = vec![
        ("type".into(), "repair".into()),
        ("authority-id".into(), "canonical".into()),
        ("brand-id".into(), "canonical".into()),
        ("repair-id".into(), "1".into()),
    ];
    let signed = sign(
        &headers,
        Some(b"#!/bin/sh\necho hi\n"),
        &key,
        Timestamp::now(),
    )
    .unwrap();
    let at = find(signed.encode(), b"echo hi").unwrap();
    let tampered = Assertion::decode(&flip(signed.encode(), at)).unwrap();
    let sig = tampered.signature_bytes().unwrap();
    assert!(key
        .public_key()
        .verify(tampered.signed_content(), &sig)
        .is_err());
    let sig = signed.signature_bytes().unwrap();
    key.public_key()
        .verify(signed.signed_content(), &sig)
        .unwrap();
}

#[test]
fn flipped_byte_in_signature_fails() {
    let db = testroot_db();
    let bytes = read("models/developer1-pc.model");
    // Well inside the RSA signature value, past the packet header.
    let at = bytes.len() - 30;
    let a = Assertion::decode(&flip(&bytes, at)).unwrap();
    let err = db.verify(&a).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature(_)), "{err}");
}

#[test]
fn unknown_key_and_missing_chain() {
    let model = one("models/developer1-pc.model");
    let mut db = TrustDb::new();
    db.add_trusted(one("roots/testrootorg-root.account-key"));
    let err = db.verify(&model).unwrap_err();
    assert!(matches!(err, VerifyError::UnknownKey { .. }), "{err}");
    assert!(err
        .to_string()
        .contains("EAD4DbLxK_kn0gzNCXOs3kd6DeMU3f-L6BEsSEuJGBqCORR0gXkdDxMbOm11mRFu"));
    // The developer key is known but its signer (the store key) is not.
    db.add(one("developer1.account-key"));
    db.add(one("developer1.account"));
    let err = db.verify(&model).unwrap_err();
    assert!(matches!(err, VerifyError::Chain { .. }), "{err}");
}

#[test]
fn missing_brand_account_is_reported() {
    let mut db = TrustDb::new();
    db.add_trusted(one("roots/testrootorg-root.account-key"));
    db.add_trusted(one("roots/testrootorg.account"));
    db.add(one("roots/testrootorg-store.account-key"));
    db.add(one("developer1.account-key"));
    let err = db.verify(&one("models/developer1-pc.model")).unwrap_err();
    // The key's account is missing, found while chaining the key that signed the model.
    let text = err.to_string();
    assert!(
        text.contains("refers to account \"developer1\" but no account assertion"),
        "{err}"
    );
    assert!(matches!(err, VerifyError::Chain { .. }), "{err}");
}

#[test]
fn wrong_key_for_authority() {
    // The model claims developer1, but the key belongs to testrootorg.
    let db = testroot_db();
    let bytes = read("models/developer1-pc.model");
    let text = String::from_utf8(bytes).unwrap();
    let store_key = one("roots/testrootorg-store.account-key");
    let text = text.replace(
        "EAD4DbLxK_kn0gzNCXOs3kd6DeMU3f-L6BEsSEuJGBqCORR0gXkdDxMbOm11mRFu",
        store_key.primary_key()[0],
    );
    let err = db
        .verify(&Assertion::decode(text.as_bytes()).unwrap())
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::KeyNotOwnedByAuthority { .. }),
        "{err}"
    );
}

#[test]
fn key_used_outside_since_until() {
    let db = testroot_db();
    // developer1's key is valid since 2016-08-19; a model dated before fails.
    let text = String::from_utf8(read("models/developer1-pc.model")).unwrap();
    let old = text.replace("timestamp: 2016-", "timestamp: 2015-");
    assert_ne!(old, text);
    let err = db
        .verify(&Assertion::decode(old.as_bytes()).unwrap())
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::KeyNotValidAtTime { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("not valid at 2015-"), "{err}");

    // An expiring key of our own: signs fine inside, refused after `until`.
    let root = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let brand = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let (root_db, brand_key) = own_chain(&root, &brand, Some("2020-01-01T00:00:00Z"));
    let mut db = root_db;
    db.add(brand_key);
    let inside = model_signed_by(&brand, "2019-06-01T00:00:00Z");
    // The key expired in 2020: today nothing it signed verifies (snapd's expiry check)...
    let err = db.verify(&inside).unwrap_err();
    assert!(matches!(err, VerifyError::KeyExpired { .. }), "{err}");
    // ...but while it was valid, what it signed inside its validity did.
    db.set_earliest_time(Timestamp::parse("2019-07-01T00:00:00Z").unwrap());
    db.verify(&inside).unwrap();
    let after = model_signed_by(&brand, "2020-01-01T00:00:00Z");
    let err = db.verify(&after).unwrap_err();
    assert!(
        matches!(err, VerifyError::KeyNotValidAtTime { .. }),
        "{err}"
    );
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, HeaderValue)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect()
}

/// A root "root" trusting itself and a brand "brand" key signed by the root.
fn own_chain(root: &PrivateKey, brand: &PrivateKey, until: Option<&str>) -> (TrustDb, Assertion) {
    let now = Timestamp::now();
    let mut db = TrustDb::new();
    let root_pub = root.public_key();
    let root_key = sign(
        &h(&[
            ("type", "account-key"),
            ("authority-id", "root"),
            ("account-id", "root"),
            ("name", "root"),
            ("public-key-sha3-384", &root_pub.id()),
            ("since", "2010-01-01T00:00:00Z"),
        ]),
        Some(root_pub.encode().as_bytes()),
        root,
        now,
    )
    .unwrap();
    db.add_trusted(root_key);
    for account in ["root", "brand"] {
        let acc = sign(
            &h(&[
                ("type", "account"),
                ("authority-id", "root"),
                ("account-id", account),
                ("display-name", account),
                ("validation", "verified"),
                ("timestamp", "2010-01-01T00:00:00Z"),
            ]),
            None,
            root,
            now,
        )
        .unwrap();
        if account == "root" {
            db.add_trusted(acc);
        } else {
            db.add(acc);
        }
    }
    let brand_pub = brand.public_key();
    let mut headers = h(&[
        ("type", "account-key"),
        ("authority-id", "root"),
        ("account-id", "brand"),
        ("name", "default"),
        ("public-key-sha3-384", &brand_pub.id()),
        ("since", "2019-01-01T00:00:00Z"),
    ]);
    if let Some(u) = until {
        headers.push(("until".into(), u.into()));
    }
    let brand_key = sign(&headers, Some(brand_pub.encode().as_bytes()), root, now).unwrap();
    (db, brand_key)
}

fn model_headers(authority: &str, timestamp: &str) -> Vec<(String, HeaderValue)> {
    h(&[
        ("type", "model"),
        ("authority-id", authority),
        ("series", "16"),
        ("brand-id", "brand"),
        ("model", "pi3"),
        ("architecture", "arm64"),
        ("gadget", "pi3"),
        ("kernel", "pi2-kernel"),
        ("timestamp", timestamp),
    ])
}

fn model_signed_by(key: &PrivateKey, timestamp: &str) -> Assertion {
    sign(
        &model_headers("brand", timestamp),
        None,
        key,
        Timestamp::now(),
    )
    .unwrap()
}

#[test]
fn ed25519_chain_of_our_own_verifies() {
    let root = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let brand = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let (mut db, brand_key) = own_chain(&root, &brand, None);
    let model = model_signed_by(&brand, "2026-01-01T00:00:00Z");
    assert!(matches!(
        db.verify(&model).unwrap_err(),
        VerifyError::UnknownKey { .. }
    ));
    db.add(brand_key);
    let v = db.verify(&model).unwrap();
    assert_eq!(v.chain(), [brand.public_key().id(), root.public_key().id()]);
    // Signed by someone else's key with the brand's name: unknown key.
    let stranger = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let forged = model_signed_by(&stranger, "2026-01-01T00:00:00Z");
    assert!(matches!(
        db.verify(&forged).unwrap_err(),
        VerifyError::UnknownKey { .. }
    ));
}

#[test]
fn authority_must_be_the_brand() {
    let key = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let err = sign(
        &model_headers("someone-else", "2026-01-01T00:00:00Z"),
        None,
        &key,
        Timestamp::now(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("authority-id and brand-id must match"),
        "{err}"
    );
    // A hand-edited vector is refused while decoding.
    let text = String::from_utf8(read("models/developer1-pc.model")).unwrap();
    let edited = text.replacen("brand-id: developer1", "brand-id: developer2", 1);
    let err = Assertion::decode(edited.as_bytes()).unwrap_err();
    assert!(
        matches!(err, DecodeError::Header(HeaderError::Authority(_))),
        "{err}"
    );
}

#[test]
fn truncated_input() {
    let bytes = read("models/developer1-20-signed.model");
    for cut in [0, 10, 200, find(&bytes, b"\n\n").unwrap() + 1] {
        let err = Assertion::decode_all(&bytes[..cut]);
        if cut == 0 {
            assert!(err.unwrap().is_empty());
            continue;
        }
        let err = err.unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Truncated(_) | DecodeError::MissingSignatureSeparator
            ),
            "{cut}: {err}"
        );
    }
    let key = read("developer1.account-key");
    let mid_body = find(&key, b"\n\nAcbBTQ").unwrap() + 100;
    let err = Assertion::decode_all(&key[..mid_body]).unwrap_err();
    assert_eq!(err, DecodeError::Truncated("body"));
    let err = Assertion::decode(&key[..mid_body]).unwrap_err();
    assert!(
        matches!(err, DecodeError::BodyLengthMismatch { .. }),
        "{err}"
    );
}

#[test]
fn duplicate_header() {
    let text = String::from_utf8(read("models/developer1-pc.model")).unwrap();
    let dup = text.replacen("model: my-model\n", "model: my-model\nmodel: my-model\n", 1);
    assert_eq!(
        Assertion::decode(dup.as_bytes()).unwrap_err(),
        DecodeError::RepeatedHeader("model".into())
    );
}

#[test]
fn oversize_body() {
    let body = vec![b'a'; coreforge_assertions::MAX_BODY_SIZE + 1];
    let mut text = format!(
        "type: repair\nauthority-id: canonical\nbrand-id: canonical\nrepair-id: 1\nbody-length: {}\nsign-key-sha3-384: EAD4DbLxK_kn0gzNCXOs3kd6DeMU3f-L6BEsSEuJGBqCORR0gXkdDxMbOm11mRFu\n\n",
        body.len()
    )
    .into_bytes();
    text.extend(&body);
    text.extend(b"\n\nAcLB");
    for err in [
        Assertion::decode(&text).unwrap_err(),
        Assertion::decode_all(&text).unwrap_err(),
    ] {
        assert!(
            matches!(err, DecodeError::TooLarge { part: "body", .. }),
            "{err}"
        );
    }
}

#[test]
fn garbage_is_refused_without_panicking() {
    for junk in [
        &b"\n\n"[..],
        b"x\n\ny",
        b"type: model\n\n\n\n",
        b"\xff\xfe\n\nAA",
        b"a:\n\nsig",
    ] {
        assert!(Assertion::decode(junk).is_err(), "{junk:?}");
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
