//! The preseed policy: which file on the card may configure the device, and why not.

use coreforge_assertions::{sign, HeaderValue, PrivateKey};

use super::*;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm7PaMTzm4Q5o6dmwFT3NyP4o8bVPOgHVBgHK2nHwYn ops@x";

fn h(pairs: &[(&str, &str)]) -> Vec<(String, HeaderValue)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect()
}

fn signed(headers: Vec<(String, HeaderValue)>, body: Option<&[u8]>, key: &PrivateKey) -> Assertion {
    sign(&headers, body, key, Timestamp::now()).unwrap()
}

fn account_key(store: &PrivateKey, owner: &str, key: &PrivateKey) -> Assertion {
    let public = key.public_key();
    signed(
        h(&[
            ("type", "account-key"),
            ("authority-id", "store"),
            ("account-id", owner),
            ("name", "default"),
            ("public-key-sha3-384", &public.id()),
            ("since", "2020-01-01T00:00:00Z"),
        ]),
        Some(public.encode().as_bytes()),
        store,
    )
}

fn account(store: &PrivateKey, id: &str) -> Assertion {
    signed(
        h(&[
            ("type", "account"),
            ("authority-id", "store"),
            ("account-id", id),
            ("display-name", id),
            ("validation", "unproven"),
            ("timestamp", "2020-01-01T00:00:00Z"),
        ]),
        None,
        store,
    )
}

/// A store, the brand `zephyrlabs` with a model `pi3`, and an ordinary account `mallory`.
struct World {
    brand: PrivateKey,
    mallory: PrivateKey,
    db: TrustDb,
    model: Model,
}

fn world() -> World {
    let store = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let brand = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let mallory = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let mut db = TrustDb::new();
    db.add_trusted(account_key(&store, "store", &store));
    db.add_trusted(account(&store, "store"));
    for (id, key) in [("zephyrlabs", &brand), ("mallory", &mallory)] {
        db.add(account(&store, id));
        db.add(account_key(&store, id, key));
    }
    let model = signed(
        h(&[
            ("type", "model"),
            ("authority-id", "zephyrlabs"),
            ("series", "16"),
            ("brand-id", "zephyrlabs"),
            ("model", "pi3"),
            ("architecture", "arm64"),
            ("gadget", "pi3"),
            ("kernel", "pi2-kernel"),
            ("timestamp", "2026-01-01T00:00:00Z"),
        ]),
        None,
        &brand,
    );
    db.add(model.clone());
    World {
        model: Model::from_assertion(&model).unwrap(),
        brand,
        mallory,
        db,
    }
}

fn system_user(key: &PrivateKey, authority: &str, until: &str) -> Vec<u8> {
    let mut headers = h(&[
        ("type", "system-user"),
        ("authority-id", authority),
        ("brand-id", "zephyrlabs"),
        ("email", "ops@zephyrlabs.example"),
        ("username", "ops"),
        ("since", "2026-01-01T00:00:00Z"),
        ("until", until),
    ]);
    for (name, value) in [("models", "pi3"), ("series", "16"), ("ssh-keys", KEY)] {
        headers.push((
            name.into(),
            HeaderValue::List(vec![HeaderValue::String(value.into())]),
        ));
    }
    signed(headers, None, key).encode().to_vec()
}

const PRESEED: &[u8] =
    br#"{"network": {"interface": "eth0", "method": "dhcp"}, "identity": "gh:someone"}"#;

fn trust<'a>(w: &'a World, pinned: Option<&'a str>) -> PreseedTrust<'a> {
    PreseedTrust {
        pinned,
        db: &w.db,
        model: &w.model,
        now: Timestamp::parse("2027-01-01T00:00:00Z").unwrap(),
    }
}

fn refused(d: Decision) -> (&'static str, String, Vec<&'static str>) {
    match d {
        Decision::Refused {
            what,
            reason,
            files,
        } => (what, reason, files),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn nothing_on_the_card_asks_a_person() {
    let w = world();
    assert_eq!(decide(None, None, &trust(&w, None)), Decision::Ask);
}

#[test]
fn the_pinned_preseed_is_applied() {
    let w = world();
    let digest = sha3_384(PRESEED);
    match decide(Some(PRESEED), None, &trust(&w, Some(&digest))) {
        Decision::Pinned(p) => assert_eq!(p.identity, Identity::GitHub("someone".into())),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unpinned_preseed_is_refused_and_kept() {
    let w = world();
    // Dropped on an image built without --preseed.
    let (what, reason, files) = refused(decide(Some(PRESEED), None, &trust(&w, None)));
    assert_eq!(what, "preseed");
    assert!(reason.contains("built without --preseed"), "{reason}");
    assert_eq!(files, [PRESEED_FILE]);
    // A different file than the one the image was built with.
    let other = sha3_384(b"{}");
    let (_, reason, _) = refused(decide(Some(PRESEED), None, &trust(&w, Some(&other))));
    assert!(reason.contains(&sha3_384(PRESEED)), "{reason}");
    assert!(reason.contains(&other), "{reason}");
}

#[test]
fn a_brand_signed_system_user_creates_its_account() {
    let w = world();
    let su = system_user(&w.brand, "zephyrlabs", "2030-01-01T00:00:00Z");
    match decide(None, Some(&su), &trust(&w, None)) {
        Decision::SystemUser {
            preseed: None,
            account,
            ..
        } => {
            assert_eq!(account.username, "ops");
            assert_eq!(account.keys, [KEY]);
            assert!(account.source.contains("zephyrlabs"), "{}", account.source);
        }
        other => panic!("{other:?}"),
    }
    // With a preseed for its network that names the same account.
    let preseed = format!(
        r#"{{"network": {{"interface": "eth0", "method": "dhcp"}}, "identity": {{"username": "ops", "ssh-keys": ["{KEY}"]}}}}"#
    );
    match decide(Some(preseed.as_bytes()), Some(&su), &trust(&w, None)) {
        Decision::SystemUser {
            preseed: Some(p), ..
        } => assert_eq!(p.network.interface(), Some("eth0")),
        other => panic!("{other:?}"),
    }
    // A preseed naming another account is refused with the assertion, both kept.
    let (what, reason, files) = refused(decide(Some(PRESEED), Some(&su), &trust(&w, None)));
    assert_eq!(what, "preseed");
    assert!(reason.contains("another account"), "{reason}");
    assert_eq!(files, [PRESEED_FILE, AUTO_IMPORT_FILE]);
}

#[test]
fn system_users_of_others_or_out_of_time_are_refused() {
    let w = world();
    let cases = [
        (
            system_user(&w.mallory, "mallory", "2030-01-01T00:00:00Z"),
            "breaks the rule",
        ),
        (
            system_user(&w.brand, "zephyrlabs", "2026-06-01T00:00:00Z"),
            "valid from",
        ),
        (b"not an assertion".to_vec(), AUTO_IMPORT_FILE),
    ];
    for (bytes, want) in cases {
        let (what, reason, files) = refused(decide(Some(PRESEED), Some(&bytes), &trust(&w, None)));
        assert_eq!(what, "auto-import.assert");
        assert!(reason.contains(want), "{want}: {reason}");
        assert_eq!(files, [PRESEED_FILE, AUTO_IMPORT_FILE]);
    }
}

#[test]
fn reads_are_bounded() {
    let dir = std::env::temp_dir().join(format!("cf-agent-firstboot-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(PRESEED_FILE);
    assert_eq!(read_bounded(&path, 8).unwrap(), None);
    fs::write(&path, b"12345678").unwrap();
    assert_eq!(read_bounded(&path, 8).unwrap().unwrap(), b"12345678");
    fs::write(&path, b"123456789").unwrap();
    let e = read_bounded(&path, 8).unwrap_err().to_string();
    assert!(e.contains("at most 8"), "{e}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn reasons_quoting_the_card_are_escaped() {
    assert_eq!(printable_text("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
}
