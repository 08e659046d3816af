//! Key store behaviour: round trips, refusals, file modes, environment defaults.

use super::*;
use std::os::unix::fs::PermissionsExt;

/// Cheap argon2id costs so the tests run fast; one test measures the defaults.
const FAST: KdfParams = KdfParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

fn store() -> (tempfile::TempDir, KeyStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path().join("keys"))
        .unwrap()
        .with_kdf_params(FAST);
    (dir, store)
}

fn new_key() -> PrivateKey {
    PrivateKey::generate_ed25519(&mut rand_core::OsRng)
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn create_list_unlock_round_trip() {
    let (_t, store) = store();
    assert!(
        store.list().unwrap().is_empty(),
        "a missing directory lists as empty"
    );
    let key = new_key();
    let stored = store.create("default", &key, "secret").unwrap();
    assert_eq!(stored.key_id, key.public_key().id());
    let other = store.create("b.key-2_x", &new_key(), "").unwrap();

    let listed = store.list().unwrap();
    assert_eq!(listed, vec![other, stored.clone()]);
    assert_eq!(store.public_key("default").unwrap(), key.public_key());

    let unlocked = store.unlock("default", "secret").unwrap();
    assert_eq!(unlocked.public_key(), key.public_key());
    let sig = unlocked.sign(b"c", 1).unwrap();
    key.public_key().verify(b"c", &sig).unwrap();
}

#[test]
fn rsa_keys_round_trip_too() {
    let (_t, store) = store();
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/vectors/snapd/keys/developer1.private.asc"),
    )
    .unwrap();
    let key = import_private_key(&text, None).unwrap();
    store.create("developer1", &key, "pw").unwrap();
    let back = store.unlock("developer1", "pw").unwrap();
    assert_eq!(
        back.public_key().id(),
        "EAD4DbLxK_kn0gzNCXOs3kd6DeMU3f-L6BEsSEuJGBqCORR0gXkdDxMbOm11mRFu"
    );
}

#[test]
fn wrong_passphrase_is_a_typed_error() {
    let (_t, store) = store();
    store.create("k", &new_key(), "right").unwrap();
    let err = store.unlock("k", "wrong").unwrap_err();
    assert!(
        matches!(err, StoreError::WrongPassphrase(ref n) if n == "k"),
        "{err}"
    );
    assert_eq!(err.to_string(), "wrong passphrase for key \"k\"");
}

#[test]
fn refuses_to_overwrite() {
    let (_t, store) = store();
    let first = store.create("k", &new_key(), "a").unwrap();
    assert!(matches!(
        store.check_new_name("k"),
        Err(StoreError::Exists { .. })
    ));
    let err = store.create("k", &new_key(), "b").unwrap_err();
    assert!(matches!(err, StoreError::Exists { .. }), "{err}");
    // The first key is untouched and no temp file is left behind.
    assert_eq!(
        store.unlock("k", "a").unwrap().public_key(),
        first.public_key
    );
    let names: Vec<_> = fs::read_dir(&store.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![OsString::from("k.key")]);
}

#[test]
fn files_are_private() {
    let (_t, store) = store();
    store.create("k", &new_key(), "a").unwrap();
    assert_eq!(mode(&store.dir), 0o700);
    assert_eq!(mode(&store.dir.join("k.key")), 0o600);
    store.set_account("k", "developer1").unwrap();
    assert_eq!(mode(&store.dir.join("k.key")), 0o600);
}

#[test]
fn bad_names_are_refused() {
    let (_t, store) = store();
    let long = "a".repeat(65);
    for name in [
        "",
        ".hidden",
        "-x",
        "a/b",
        "../k",
        "a b",
        "ключ",
        long.as_str(),
    ] {
        let err = store.create(name, &new_key(), "p").unwrap_err();
        assert!(matches!(err, StoreError::BadName(_)), "{name:?}: {err}");
        assert!(matches!(
            store.unlock(name, "p"),
            Err(StoreError::BadName(_))
        ));
    }
    store.create(&"a".repeat(64), &new_key(), "p").unwrap();
    assert!(!store.dir.join("..").join("k.key").exists());
}

#[test]
fn missing_key_is_named() {
    let (_t, store) = store();
    let err = store.unlock("nope", "p").unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
    assert!(
        err.to_string().starts_with("no key named \"nope\" in "),
        "{err}"
    );
}

#[test]
fn account_is_stored_and_validated() {
    let (_t, store) = store();
    store.create("k", &new_key(), "a").unwrap();
    assert_eq!(store.account("k").unwrap(), None);
    store.set_account("k", "developer1").unwrap();
    assert_eq!(store.account("k").unwrap().as_deref(), Some("developer1"));
    assert_eq!(
        store.list().unwrap()[0].account.as_deref(),
        Some("developer1")
    );
    // Still unlocks: the account is outside the sealed part.
    store.unlock("k", "a").unwrap();
    for bad in ["", "x", "Has Space", "UPPER"] {
        assert!(
            matches!(store.set_account("k", bad), Err(StoreError::BadAccount(_))),
            "{bad}"
        );
    }
    store.set_account("k", &"A1".repeat(16)).unwrap();
}

#[test]
fn tampering_is_detected() {
    let (_t, store) = store();
    store.create("k", &new_key(), "a").unwrap();
    store.create("other", &new_key(), "a").unwrap();
    let path = store.dir.join("k.key");
    let original = fs::read_to_string(&path).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&original).unwrap();

    // Swap in another public key (with its id): the sealed part no longer matches.
    let other = store.public_key("other").unwrap();
    doc["public-key"] = other.encode().into();
    doc["public-key-sha3-384"] = other.id().into();
    fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    assert!(store.unlock("k", "a").is_err());

    // A public key whose id header disagrees.
    let mut doc: serde_json::Value = serde_json::from_str(&original).unwrap();
    doc["public-key-sha3-384"] = "x".into();
    fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let err = store.list().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");

    // Absurd KDF costs are refused before any work.
    let mut doc: serde_json::Value = serde_json::from_str(&original).unwrap();
    doc["kdf"]["memory-kib"] = (u32::MAX).into();
    fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let err = store.unlock("k", "a").unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");

    // A future version.
    let mut doc: serde_json::Value = serde_json::from_str(&original).unwrap();
    doc["version"] = 2.into();
    fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    assert!(store
        .public_key("k")
        .unwrap_err()
        .to_string()
        .contains("version 2"));

    // A file renamed to another key's name.
    fs::write(&path, &original).unwrap();
    fs::rename(&path, store.dir.join("renamed.key")).unwrap();
    let err = store.public_key("renamed").unwrap_err();
    assert!(err.to_string().contains("holds key \"k\""), "{err}");
}

#[test]
fn file_format_is_readable_json() {
    let (_t, store) = store();
    let key = new_key();
    store.create("k", &key, "a").unwrap();
    let doc: serde_json::Value =
        serde_json::from_slice(&fs::read(store.dir.join("k.key")).unwrap()).unwrap();
    assert_eq!(doc["format"], "coreforge-key");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["name"], "k");
    assert_eq!(doc["public-key"], key.public_key().encode());
    assert_eq!(doc["public-key-sha3-384"], key.public_key().id());
    assert_eq!(doc["kdf"]["algorithm"], "argon2id");
    assert_eq!(doc["kdf"]["memory-kib"], FAST.memory_kib);
    assert_eq!(doc["cipher"]["algorithm"], "xchacha20poly1305");
    // The secret is not in clear.
    let secret = key.to_secret_bytes();
    let text = fs::read(store.dir.join("k.key")).unwrap();
    assert!(!text.windows(32).any(|w| w == &secret[secret.len() - 32..]));
}

#[test]
fn default_kdf_cost_is_reasonable() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let started = std::time::Instant::now();
    store.create("k", &new_key(), "pw").unwrap();
    let create = started.elapsed();
    let started = std::time::Instant::now();
    store.unlock("k", "pw").unwrap();
    let unlock = started.elapsed();
    eprintln!("argon2id defaults: create {create:?}, unlock {unlock:?}");
    // Generous bound: debug builds on a loaded CI machine; the point is "not minutes".
    assert!(unlock < std::time::Duration::from_secs(5), "{unlock:?}");
}

#[test]
fn default_dir_follows_the_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    };
    assert_eq!(
        default_dir_from(env(&[
            ("COREFORGE_KEYS", "/k"),
            ("XDG_DATA_HOME", "/x"),
            ("HOME", "/h")
        ]))
        .unwrap(),
        PathBuf::from("/k")
    );
    assert_eq!(
        default_dir_from(env(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")])).unwrap(),
        PathBuf::from("/x/coreforge/keys")
    );
    assert_eq!(
        default_dir_from(env(&[
            ("COREFORGE_KEYS", ""),
            ("XDG_DATA_HOME", "rel"),
            ("HOME", "/h")
        ]))
        .unwrap(),
        PathBuf::from("/h/.local/share/coreforge/keys")
    );
    assert!(matches!(
        default_dir_from(env(&[])),
        Err(StoreError::NoKeyDir)
    ));
}

#[test]
fn open_refuses_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    fs::write(&file, b"").unwrap();
    assert!(matches!(
        KeyStore::open(&file),
        Err(StoreError::NotADirectory(_))
    ));
}

#[test]
fn empty_passphrase_means_unprotected_and_a_free_kdf() {
    let dir = tempfile::tempdir().unwrap();
    // The default (costly) parameters: an empty passphrase must not pay for them.
    let store = KeyStore::open(dir.path().join("keys")).unwrap();
    let key = new_key();
    store.create("ci", &key, "").unwrap();
    let text = fs::read_to_string(store.dir.join("ci.key")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["kdf"]["memory-kib"], 8, "{text}");
    let start = std::time::Instant::now();
    let unlocked = store.unlock("ci", "").unwrap();
    assert!(start.elapsed() < std::time::Duration::from_millis(100));
    assert_eq!(unlocked.public_key().id(), key.public_key().id());
    assert!(matches!(
        store.unlock("ci", "guess"),
        Err(StoreError::WrongPassphrase(_))
    ));
}
