//! Who may sign what: snapd's authority rules, tried as another account of the same store
//! would (issue 9's hostile-account matrix, library level).
//!
//! The world: a store `store` whose key is the trusted root, and two ordinary accounts it
//! registered, the brand `zephyrlabs` and `mallory`.

use coreforge_assertions::{
    sign, Assertion, HeaderValue, Model, PrivateKey, Rule, SystemUser, Timestamp, TrustDb,
    VerifyError,
};

fn h(pairs: &[(&str, &str)]) -> Vec<(String, HeaderValue)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect()
}

/// `headers` with `extra` set, replacing what was there.
fn with(
    mut headers: Vec<(String, HeaderValue)>,
    extra: &[(&str, &str)],
) -> Vec<(String, HeaderValue)> {
    for (k, v) in extra {
        headers.retain(|(n, _)| n != k);
        headers.push(((*k).into(), (*v).into()));
    }
    headers
}

fn signed(headers: Vec<(String, HeaderValue)>, body: Option<&[u8]>, key: &PrivateKey) -> Assertion {
    sign(&headers, body, key, Timestamp::now()).unwrap_or_else(|e| panic!("sign: {e}"))
}

struct World {
    store: PrivateKey,
    brand: PrivateKey,
    mallory: PrivateKey,
    db: TrustDb,
}

fn account(authority: &PrivateKey, authority_id: &str, id: &str) -> Assertion {
    signed(
        h(&[
            ("type", "account"),
            ("authority-id", authority_id),
            ("account-id", id),
            ("display-name", id),
            ("validation", "unproven"),
            ("timestamp", "2020-01-01T00:00:00Z"),
        ]),
        None,
        authority,
    )
}

fn account_key(
    signer: &PrivateKey,
    authority_id: &str,
    owner: &str,
    key: &PrivateKey,
    extra: &[(&str, &str)],
) -> Assertion {
    let public = key.public_key();
    let mut headers = h(&[
        ("type", "account-key"),
        ("authority-id", authority_id),
        ("account-id", owner),
        ("name", "default"),
        ("public-key-sha3-384", &public.id()),
        ("since", "2020-01-01T00:00:00Z"),
    ]);
    headers.extend(h(extra));
    signed(headers, Some(public.encode().as_bytes()), signer)
}

fn world() -> World {
    let store = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let brand = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let mallory = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let mut db = TrustDb::new();
    db.add_trusted(account_key(&store, "store", "store", &store, &[]));
    db.add_trusted(account(&store, "store", "store"));
    for (id, key) in [("zephyrlabs", &brand), ("mallory", &mallory)] {
        db.add(account(&store, "store", id));
        db.add(account_key(&store, "store", id, key, &[]));
    }
    World {
        store,
        brand,
        mallory,
        db,
    }
}

fn model(key: &PrivateKey, authority: &str, brand: &str, extra: &[(&str, &str)]) -> Assertion {
    let mut headers = h(&[
        ("type", "model"),
        ("authority-id", authority),
        ("series", "16"),
        ("brand-id", brand),
        ("model", "pi3"),
        ("architecture", "arm64"),
        ("gadget", "pi3"),
        ("kernel", "pi2-kernel"),
        ("timestamp", "2026-01-01T00:00:00Z"),
    ]);
    headers.extend(h(extra));
    signed(headers, None, key)
}

fn declaration(key: &PrivateKey, authority: &str, extra: &[(&str, &str)]) -> Assertion {
    declaration_with(key, authority, extra, None)
}

fn declaration_with(
    key: &PrivateKey,
    authority: &str,
    extra: &[(&str, &str)],
    revision_authority: Option<HeaderValue>,
) -> Assertion {
    let mut headers = h(&[
        ("type", "snap-declaration"),
        ("authority-id", authority),
        ("series", "16"),
        ("snap-id", "pi3snapidpi3snapidpi3snapidpi3sn"),
        ("snap-name", "pi3"),
        ("publisher-id", "zephyrlabs"),
        ("timestamp", "2026-01-01T00:00:00Z"),
    ]);
    headers.extend(h(extra));
    if let Some(ra) = revision_authority {
        headers.push(("revision-authority".into(), ra));
    }
    signed(headers, None, key)
}

fn revision(key: &PrivateKey, authority: &str, extra: &[(&str, &str)]) -> Assertion {
    let headers = h(&[
        ("type", "snap-revision"),
        ("authority-id", authority),
        (
            "snap-sha3-384",
            "vLKhk1lJQ9ND0o6nhS2FNWcjnObxV2MtiExT7Hc5Br8T-qJ4l8ZFIC7i0rk4SLWc",
        ),
        ("snap-id", "pi3snapidpi3snapidpi3snapidpi3sn"),
        ("snap-size", "4096"),
        ("snap-revision", "3"),
        ("developer-id", "zephyrlabs"),
        ("timestamp", "2026-01-01T00:00:00Z"),
    ]);
    signed(with(headers, extra), None, key)
}

fn system_user(key: &PrivateKey, authority: &str, extra: &[(&str, &str)]) -> Assertion {
    let mut headers = h(&[
        ("type", "system-user"),
        ("authority-id", authority),
        ("brand-id", "zephyrlabs"),
        ("email", "ops@zephyrlabs.example"),
        ("username", "ops"),
        ("since", "2026-01-01T00:00:00Z"),
        ("until", "2036-01-01T00:00:00Z"),
    ]);
    headers.push((
        "models".into(),
        HeaderValue::List(vec![HeaderValue::String("pi3".into())]),
    ));
    headers.push((
        "series".into(),
        HeaderValue::List(vec![HeaderValue::String("16".into())]),
    ));
    headers.extend(h(extra));
    signed(headers, None, key)
}

/// The rule an error (or the error it wraps, along a chain) says was broken.
fn rule_of(e: &VerifyError) -> Option<Rule> {
    match e {
        VerifyError::NotAuthorized { rule, .. } => Some(*rule),
        VerifyError::Chain { source, .. } => rule_of(source),
        _ => None,
    }
}

#[test]
fn the_world_verifies_as_built() {
    let w = world();
    w.db.verify(&model(&w.brand, "zephyrlabs", "zephyrlabs", &[]))
        .unwrap();
    let mut db = w.db.clone();
    db.add(declaration(&w.store, "store", &[]));
    db.verify(&revision(&w.store, "store", &[])).unwrap();
}

#[test]
fn an_account_cannot_certify_keys_for_another() {
    let w = world();
    let forged_key = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let mut db = w.db.clone();
    // mallory signs an account-key for zephyrlabs, and a zephyrlabs model with it.
    db.add(account_key(
        &w.mallory,
        "mallory",
        "zephyrlabs",
        &forged_key,
        &[],
    ));
    let forged = model(&forged_key, "zephyrlabs", "zephyrlabs", &[]);
    let e = db.verify(&forged).unwrap_err();
    assert_eq!(rule_of(&e), Some(Rule::TrustedAuthority), "{e}");
    let text = e.to_string();
    assert!(text.contains("\"mallory\""), "{text}");
    assert!(text.contains("\"zephyrlabs\""), "{text}");
    assert!(text.contains("directly trusted authority"), "{text}");
}

#[test]
fn an_account_cannot_sign_accounts_or_declarations_or_stores() {
    let w = world();
    let e =
        w.db.verify(&account(&w.mallory, "mallory", "eve"))
            .unwrap_err();
    assert_eq!(rule_of(&e), Some(Rule::TrustedAuthority), "{e}");
    let e =
        w.db.verify(&declaration(&w.mallory, "mallory", &[]))
            .unwrap_err();
    assert_eq!(rule_of(&e), Some(Rule::TrustedAuthority), "{e}");
    assert!(e.to_string().contains("snap-declaration of \"pi3\""), "{e}");
    let store = signed(
        h(&[
            ("type", "store"),
            ("authority-id", "mallory"),
            ("store", "evil"),
            ("operator-id", "mallory"),
            ("timestamp", "2026-01-01T00:00:00Z"),
        ]),
        None,
        &w.mallory,
    );
    let e = w.db.verify(&store).unwrap_err();
    assert_eq!(rule_of(&e), Some(Rule::TrustedAuthority), "{e}");
}

#[test]
fn an_account_cannot_sign_revisions_of_another_brands_snap() {
    let w = world();
    let mut db = w.db.clone();
    db.add(declaration(&w.store, "store", &[]));
    let e = db
        .verify(&revision(&w.mallory, "mallory", &[]))
        .unwrap_err();
    assert_eq!(rule_of(&e), Some(Rule::RevisionAuthority), "{e}");
    // Not even with a provenance, when the declaration names no revision authority.
    let e = db
        .verify(&revision(
            &w.mallory,
            "mallory",
            &[("provenance", "delegated")],
        ))
        .unwrap_err();
    assert_eq!(rule_of(&e), Some(Rule::RevisionAuthority), "{e}");
    assert!(e.to_string().contains("names no revision-authority"), "{e}");
}

#[test]
fn a_revision_authority_signs_within_its_provenance_and_range() {
    let w = world();
    let mut entry = std::collections::BTreeMap::new();
    entry.insert(
        "account-id".into(),
        HeaderValue::String("zephyrlabs".into()),
    );
    entry.insert(
        "provenance".into(),
        HeaderValue::List(vec![HeaderValue::String("zephyr-build".into())]),
    );
    entry.insert("max-revision".into(), HeaderValue::String("5".into()));
    let ra = HeaderValue::List(vec![HeaderValue::Map(entry)]);
    let mut db = w.db.clone();
    db.add(declaration_with(&w.store, "store", &[], Some(ra)));
    let ok = revision(&w.brand, "zephyrlabs", &[("provenance", "zephyr-build")]);
    db.verify(&ok).unwrap();
    // global-upload is never delegated.
    let e = db
        .verify(&revision(&w.brand, "zephyrlabs", &[]))
        .unwrap_err();
    assert_eq!(rule_of(&e), Some(Rule::RevisionAuthority), "{e}");
    // Another provenance, another account, a revision beyond max-revision.
    for bad in [
        revision(&w.brand, "zephyrlabs", &[("provenance", "other")]),
        revision(&w.mallory, "mallory", &[("provenance", "zephyr-build")]),
        revision(
            &w.brand,
            "zephyrlabs",
            &[("provenance", "zephyr-build"), ("snap-revision", "6")],
        ),
    ] {
        let e = db.verify(&bad).unwrap_err();
        assert_eq!(rule_of(&e), Some(Rule::RevisionAuthority), "{e}");
    }
}

#[test]
fn a_revision_needs_its_declaration() {
    let w = world();
    let e = w.db.verify(&revision(&w.store, "store", &[])).unwrap_err();
    assert!(matches!(e, VerifyError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("snap-declaration"), "{e}");
}

#[test]
fn a_revoked_key_stays_revoked_whatever_else_is_supplied() {
    let w = world();
    let key = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let rev1 = account_key(&w.store, "store", "zephyrlabs", &key, &[]);
    let rev2 = account_key(
        &w.store,
        "store",
        "zephyrlabs",
        &key,
        &[("revision", "2"), ("until", "2026-06-01T00:00:00Z")],
    );
    // A model backdated into the key's validity, signed after its revocation.
    let backdated = model(&key, "zephyrlabs", "zephyrlabs", &[]);
    let mut only_old = w.db.clone();
    only_old.add(rev1.clone());
    only_old.verify(&backdated).unwrap();
    // The older revision supplied beside the newer, in either order: the newer wins.
    for order in [[&rev1, &rev2], [&rev2, &rev1]] {
        let mut db = w.db.clone();
        for a in order {
            db.add(a.clone());
        }
        let e = db.verify(&backdated).unwrap_err();
        assert!(matches!(e, VerifyError::KeyExpired { .. }), "{e}");
        // A device whose clock says 1970 uses the build time as its floor.
        db.set_earliest_time(Timestamp::parse("2026-07-01T00:00:00Z").unwrap());
        let e = db.verify(&backdated).unwrap_err();
        assert!(matches!(e, VerifyError::KeyExpired { .. }), "{e}");
        assert!(e.to_string().contains("at least 2026-07-01"), "{e}");
    }
    // A forged higher revision (signed by mallory) does not displace the real one.
    let mut db = w.db.clone();
    db.add(rev1);
    db.add(account_key(
        &w.mallory,
        "mallory",
        "zephyrlabs",
        &key,
        &[("revision", "9")],
    ));
    db.verify(&backdated).unwrap();
}

#[test]
fn system_users_are_signed_by_the_brand_or_whom_the_model_names() {
    let w = world();
    let mut db = w.db.clone();
    let plain = model(&w.brand, "zephyrlabs", "zephyrlabs", &[]);
    db.add(plain.clone());
    let by_brand = system_user(&w.brand, "zephyrlabs", &[]);
    db.verify(&by_brand).unwrap();
    let by_mallory = system_user(&w.mallory, "mallory", &[]);
    let e = db.verify(&by_mallory).unwrap_err();
    assert_eq!(rule_of(&e), Some(Rule::SystemUserAuthority), "{e}");
    assert!(e.to_string().contains("\"mallory\""), "{e}");

    // A model that names mallory lets mallory sign them.
    let mut delegating = w.db.clone();
    let mut headers = h(&[
        ("type", "model"),
        ("authority-id", "zephyrlabs"),
        ("series", "16"),
        ("brand-id", "zephyrlabs"),
        ("model", "pi3"),
        ("architecture", "arm64"),
        ("gadget", "pi3"),
        ("kernel", "pi2-kernel"),
        ("timestamp", "2026-01-01T00:00:00Z"),
    ]);
    headers.push((
        "system-user-authority".into(),
        HeaderValue::List(vec![HeaderValue::String("mallory".into())]),
    ));
    let m = signed(headers, None, &w.brand);
    delegating.add(m.clone());
    delegating.verify(&by_mallory).unwrap();

    // Device-side checks: this model, now.
    let now = Timestamp::parse("2027-01-01T00:00:00Z").unwrap();
    let user = SystemUser::from_assertion(&by_mallory).unwrap();
    let plain = Model::from_assertion(&plain).unwrap();
    let delegating = Model::from_assertion(&m).unwrap();
    assert!(user.refuses("mallory", &delegating, None, now).is_none());
    let why = user.refuses("mallory", &plain, None, now).unwrap();
    assert!(
        why.contains("system-users signed by \"zephyrlabs\" only"),
        "{why}"
    );
    let later = Timestamp::parse("2036-01-01T00:00:00Z").unwrap();
    let why = user.refuses("mallory", &delegating, None, later).unwrap();
    assert!(why.contains("valid from"), "{why}");
}

#[test]
fn system_users_follow_snapds_headers() {
    let w = world();
    let ok = system_user(
        &w.brand,
        "zephyrlabs",
        &[
            ("name", "Ops Team"),
            (
                "password",
                "$6$rounds=5000$salt$hashhashhashhashhashhashhashhashhashhashhashhash",
            ),
        ],
    );
    let user = SystemUser::from_assertion(&ok).unwrap();
    assert_eq!(user.username, "ops");
    assert_eq!(user.name.as_deref(), Some("Ops Team"));
    for (bad, why) in [
        (vec![("username", "Ops;rm")], "username"),
        (vec![("password", "plaintext")], "password"),
        (vec![("password", "$1$salt$md5hash")], "password"),
        (vec![("email", "not-an-address")], "email"),
        (vec![("until", "2025-01-01T00:00:00Z")], "until"),
    ] {
        let mut headers = h(&[
            ("type", "system-user"),
            ("authority-id", "zephyrlabs"),
            ("brand-id", "zephyrlabs"),
            ("email", "ops@zephyrlabs.example"),
            ("username", "ops"),
            ("since", "2026-01-01T00:00:00Z"),
            ("until", "2027-01-01T00:00:00Z"),
        ]);
        for (k, v) in &bad {
            headers.retain(|(n, _)| n != k);
            headers.push(((*k).into(), (*v).into()));
        }
        let e = sign(&headers, None, &w.brand, Timestamp::now()).unwrap_err();
        assert!(e.to_string().contains(why), "{bad:?}: {e}");
    }
}

#[test]
fn serials_are_signed_by_the_brand_or_its_serial_authority() {
    let w = world();
    let device = PrivateKey::generate_ed25519(&mut rand_core::OsRng).public_key();
    let serial = |key: &PrivateKey, authority: &str| {
        signed(
            h(&[
                ("type", "serial"),
                ("authority-id", authority),
                ("brand-id", "zephyrlabs"),
                ("model", "pi3"),
                ("serial", "0001"),
                ("device-key", &device.encode()),
                ("device-key-sha3-384", &device.id()),
                ("timestamp", "2026-01-01T00:00:00Z"),
            ]),
            None,
            key,
        )
    };
    let mut db = w.db.clone();
    db.add(model(&w.brand, "zephyrlabs", "zephyrlabs", &[]));
    db.verify(&serial(&w.brand, "zephyrlabs")).unwrap();
    let e = db.verify(&serial(&w.mallory, "mallory")).unwrap_err();
    assert_eq!(rule_of(&e), Some(Rule::SerialAuthority), "{e}");
}

#[test]
fn types_without_rules_are_refused() {
    let w = world();
    let repair = signed(
        h(&[
            ("type", "repair"),
            ("authority-id", "store"),
            ("brand-id", "zephyrlabs"),
            ("repair-id", "1"),
            ("timestamp", "2026-01-01T00:00:00Z"),
        ]),
        Some(b"#!/bin/sh\n"),
        &w.store,
    );
    let e = w.db.verify(&repair).unwrap_err();
    assert!(matches!(e, VerifyError::NoRule(_)), "{e}");
    assert!(
        e.to_string().contains("repair assertions are not accepted"),
        "{e}"
    );
}
