//! The store as build-image sees it: through [`open_store`] and the [`Store`] trait.

use std::fs;
use std::path::{Path, PathBuf};

use coreforge_assertions::{sign, HeaderValue, PrivateKey, Timestamp, TrustDb};

use super::*;
use crate::snap;

/// Packs a snap named `name` for `archs` into `dir`.
fn make_snap(dir: &Path, name: &str, version: &str, archs: &str) -> PathBuf {
    let src = dir.join(format!("src-{name}-{version}-{archs}"));
    fs::create_dir_all(src.join("meta")).unwrap();
    fs::write(
        src.join("meta/snap.yaml"),
        format!("name: {name}\nversion: '{version}'\narchitectures: [{archs}]\n"),
    )
    .unwrap();
    fs::write(src.join("data"), format!("{name} {version} {archs}")).unwrap();
    let out = dir.join(format!("{name}-{version}-{archs}.snap"));
    snap::pack(&src, Some(&out), snap::Compression::Xz, None).unwrap()
}

fn trust(store: &dyn Store) -> TrustDb {
    let mut db = TrustDb::new();
    for a in store.roots().unwrap() {
        db.add_trusted(a);
    }
    db
}

fn h(n: &str, v: &str) -> (String, HeaderValue) {
    (n.to_owned(), v.into())
}

#[test]
fn build_image_view_of_a_local_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut local = LocalStore::init(&dir, "test-store", StoreKey::Ed25519, None).unwrap();
    let k64 = make_snap(tmp.path(), "pi2-kernel", "1", "arm64");
    let k32 = make_snap(tmp.path(), "pi2-kernel", "1", "armhf");
    assert_eq!(local.upload(&k64, None).unwrap().revision, 1);
    assert_eq!(local.upload(&k32, None).unwrap().revision, 2);
    local.release("pi2-kernel", 1, &["beta".into()]).unwrap();
    local.release("pi2-kernel", 2, &["beta".into()]).unwrap();

    let store = open_store(dir.to_str().unwrap(), None, &dir).unwrap();
    let roots = store.roots().unwrap();
    let kinds: Vec<_> = roots.iter().map(|a| a.type_name()).collect();
    assert_eq!(kinds, ["account-key", "account"]);
    assert!(roots.iter().all(|a| a.authority_id() == "test-store"));

    let r = store.resolve("pi2-kernel", "edge", "armhf").unwrap();
    assert_eq!((r.revision, r.name.as_str()), (2, "pi2-kernel"));
    assert_eq!(fs::read(&r.path).unwrap(), fs::read(&k32).unwrap());
    assert_eq!(r.info, snap::read_info(&r.path).unwrap());
    let mut db = trust(store.as_ref());
    let assertions = store.snap_assertions(&r).unwrap();
    assert_eq!(assertions.len(), 2);
    // A revision verifies with its declaration beside it (snapd's rule).
    for a in &assertions {
        db.add(a.clone());
    }
    for a in &assertions {
        db.verify(a).unwrap();
    }
    assert_eq!(
        assertions[0].header_str("snap-id"),
        Some(r.snap_id.as_str())
    );
    assert_eq!(
        assertions[1].header_str("snap-sha3-384"),
        Some(snap::digest(&k32).unwrap().0.as_str())
    );
    assert!(matches!(
        store.resolve("pi2-kernel", "stable", "arm64"),
        Err(StoreError::NoRevision { .. })
    ));

    // The store's own account and key, then a brand registered with it.
    let own = store.account_assertions("test-store").unwrap();
    assert_eq!(own.len(), 2);
    assert!(matches!(
        store.account_assertions("brand"),
        Err(StoreError::UnknownAccount { .. })
    ));
    let brand_key = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let since = Timestamp::from_unix(Timestamp::now().unix());
    local
        .register_key("brand", "default", &brand_key.public_key(), since)
        .unwrap();
    let brand = store.account_assertions("brand").unwrap();
    let kinds: Vec<_> = brand.iter().map(|a| a.type_name()).collect();
    assert_eq!(kinds, ["account", "account-key"]);

    // A model signed by the brand key verifies with the roots and the brand's assertions.
    let model = sign(
        &[
            h("type", "model"),
            h("authority-id", "brand"),
            h("series", "16"),
            h("brand-id", "brand"),
            h("model", "pi3-test"),
            h("architecture", "arm64"),
            h("gadget", "pi3"),
            h("kernel", "pi2-kernel"),
            h("timestamp", &Timestamp::now().to_string()),
        ],
        None,
        &brand_key,
        Timestamp::now(),
    )
    .unwrap();
    let mut db = trust(store.as_ref());
    assert!(db.verify(&model).is_err());
    for a in brand {
        db.add(a);
    }
    assert_eq!(db.verify(&model).unwrap().signer(), "brand");
}

#[test]
fn all_architecture_releases_replace_per_architecture_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut local = LocalStore::init(&dir, DEFAULT_AUTHORITY, StoreKey::Ed25519, None).unwrap();
    for (version, archs) in [("1", "arm64"), ("2", "all"), ("3", "armhf")] {
        let s = make_snap(tmp.path(), "hello", version, archs);
        local.upload(&s, None).unwrap();
    }
    let stable = || vec!["stable".to_owned()];
    local.release("hello", 1, &stable()).unwrap();
    assert_eq!(
        local.resolve("hello", "stable", "arm64").unwrap().revision,
        1
    );
    assert!(local.resolve("hello", "stable", "armhf").is_err());
    local.release("hello", 2, &stable()).unwrap();
    assert_eq!(
        local.resolve("hello", "stable", "arm64").unwrap().revision,
        2
    );
    assert_eq!(
        local.resolve("hello", "stable", "amd64").unwrap().revision,
        2
    );
    local.release("hello", 3, &stable()).unwrap();
    assert_eq!(
        local.resolve("hello", "stable", "armhf").unwrap().revision,
        3
    );
    assert_eq!(
        local.resolve("hello", "stable", "arm64").unwrap().revision,
        2
    );
    // Reopened from disk, the same answers.
    let again = LocalStore::open(&dir).unwrap();
    assert_eq!(
        again.resolve("hello", "stable", "armhf").unwrap().revision,
        3
    );
    assert!(matches!(
        again.resolve("hello", "stable", "all"),
        Err(StoreError::UnknownArch { .. })
    ));
}

#[test]
fn open_refuses_urls_without_roots_and_plain_directories() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        open_store("https://store.example/api", None, tmp.path()),
        Err(StoreError::Unsupported(_))
    ));
    assert!(matches!(
        open_store(tmp.path().to_str().unwrap(), None, tmp.path()),
        Err(StoreError::NotAStore(_))
    ));
    fs::write(tmp.path().join("store.json"), "{").unwrap();
    assert!(matches!(
        open_store(tmp.path().to_str().unwrap(), None, tmp.path()),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn a_changed_snap_file_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut local = LocalStore::init(&dir, DEFAULT_AUTHORITY, StoreKey::Ed25519, None).unwrap();
    let s = make_snap(tmp.path(), "hello", "1", "all");
    local.upload(&s, None).unwrap();
    local.release("hello", 1, &["stable".into()]).unwrap();
    let r = local.resolve("hello", "stable", "arm64").unwrap();
    fs::write(&r.path, b"hsqs truncated").unwrap();
    let err = local.resolve("hello", "stable", "arm64").unwrap_err();
    assert!(err.to_string().contains("were uploaded"), "{err}");
}

/// A store made before store.db (its index in store.json) is moved into store.db when first
/// opened: the same snaps, revisions and channels, and the old file kept aside.
#[test]
fn a_store_json_of_an_older_coreforge_is_moved_into_the_database() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut local = LocalStore::init(&dir, "test-store", StoreKey::Ed25519, None).unwrap();
    let k64 = make_snap(tmp.path(), "pi2-kernel", "1", "arm64");
    local.upload(&k64, None).unwrap();
    local
        .release("pi2-kernel", 1, &["beta".into(), "22/edge".into()])
        .unwrap();
    let before = LocalStore::open(&dir).unwrap();
    // The older layout: the same index as JSON, no database.
    let json = serde_json::to_vec_pretty(&before.state).unwrap();
    drop((local, before));
    fs::write(dir.join("store.json"), json).unwrap();
    for f in ["store.db", "store.db-wal", "store.db-shm"] {
        let _ = fs::remove_file(dir.join(f));
    }
    let again = LocalStore::open(&dir).unwrap();
    assert!(dir.join("store.db").exists() && dir.join("store.json.migrated").exists());
    assert!(!dir.join("store.json").exists());
    let entry = again.snap("pi2-kernel").unwrap();
    assert_eq!(entry.revisions.len(), 1);
    assert_eq!(entry.channels["latest/beta"]["arm64"], 1);
    assert_eq!(entry.channels["22/edge"]["arm64"], 1);
    let r = again.resolve("pi2-kernel", "beta", "arm64").unwrap();
    assert_eq!(fs::read(&r.path).unwrap(), fs::read(&k64).unwrap());
}
