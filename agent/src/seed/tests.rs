//! The tamper matrix: a seed built in a temp folder with a fresh store, then changed one
//! way at a time; each change must be caught with its own message.
//!
//! The store is an account `store` whose root key is the trusted root; it signs accounts,
//! account-keys and snap-declarations with that root key, and snap-revisions with a store
//! key the root certified. The brand `acme` signs its model; snap-revisions name `acme` as
//! developer, and its account is in the seed, as `build-image` writes it.

use std::io::Write as _;

use super::*;
use crate::{clock, model};
use coreforge_assertions::{
    sha3_384, sign, Assertion, DevicePin, HeaderValue, PrivateKey, Timestamp,
};

fn h(pairs: &[(&str, &str)]) -> Vec<(String, HeaderValue)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect()
}

fn signed(pairs: &[(&str, &str)], body: Option<&[u8]>, key: &PrivateKey) -> Assertion {
    sign(&h(pairs), body, key, Timestamp::now()).unwrap()
}

/// An account-key for `account` signed by `by`, valid until `until` if given.
fn account_key(account: &str, key: &PrivateKey, by: &PrivateKey, until: Option<&str>) -> Assertion {
    account_key_revision(account, key, by, until, 0)
}

/// [`account_key`] at assertion revision `revision`.
fn account_key_revision(
    account: &str,
    key: &PrivateKey,
    by: &PrivateKey,
    until: Option<&str>,
    revision: u64,
) -> Assertion {
    let public = key.public_key();
    let id = public.id();
    let revision = revision.to_string();
    let mut pairs = vec![
        ("type", "account-key"),
        ("authority-id", "store"),
        ("account-id", account),
        ("name", "default"),
        ("public-key-sha3-384", id.as_str()),
        ("since", "2020-01-01T00:00:00Z"),
    ];
    if revision != "0" {
        pairs.push(("revision", &revision));
    }
    if let Some(u) = until {
        pairs.push(("until", u));
    }
    signed(&pairs, Some(public.encode().as_bytes()), by)
}

fn account(id: &str, root: &PrivateKey) -> Assertion {
    signed(
        &[
            ("type", "account"),
            ("authority-id", "store"),
            ("account-id", id),
            ("display-name", id),
            ("validation", "verified"),
            ("timestamp", "2020-01-01T00:00:00Z"),
        ],
        None,
        root,
    )
}

fn stream(all: &[Assertion]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in all {
        if !out.is_empty() {
            out.extend_from_slice(b"\n\n");
        }
        out.extend_from_slice(a.encode());
    }
    out
}

fn digest(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha3_384::digest(bytes))
}

/// The pin `build-image` writes for `model` at seed label 20260101.
fn pin_for(model: &Assertion) -> DevicePin {
    let m = Model::from_assertion(model).unwrap();
    DevicePin {
        brand_id: m.brand_id,
        model: m.model,
        grade: m.grade,
        model_sha3_384: sha3_384(model.encode()),
        seed_label: "20260101".into(),
        build_time: Timestamp::parse("2026-06-01T00:00:00Z").unwrap(),
        preseed_sha3_384: None,
    }
}

/// A built seed: its folders, and the keys to make more assertions with.
struct World {
    dir: PathBuf,
    seed: PathBuf,
    system: PathBuf,
    trusted: PathBuf,
    /// The initramfs's folder of the store's current accounts and keys (absent at first).
    known: PathBuf,
    root: PrivateKey,
    store: PrivateKey,
    snaps: Vec<Assertion>,
    /// When the snap assertions say they were made.
    timestamp: &'static str,
    /// What the device counts as now when it checks key expiry.
    earliest: Timestamp,
    /// What the initramfs says the device is: the model as built.
    pin: DevicePin,
}

/// How the seed is built.
struct Options {
    /// `until` of the store's signing key.
    store_until: Option<&'static str>,
    /// The `timestamp` of the snap-declarations and snap-revisions.
    timestamp: &'static str,
    /// A UC20-form model (`snaps:` with ids, grade signed) instead of the series-16 form.
    uc20: bool,
    /// In the UC20 model, this snap gets this id instead of its declared one.
    model_id: Option<(&'static str, &'static str)>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            store_until: None,
            timestamp: "2026-01-01T00:00:00Z",
            uc20: false,
            model_id: None,
        }
    }
}

const SNAPS: [(&str, &str, u64); 4] = [
    ("pi3", "gadgetid", 7),
    ("pi2-kernel", "kernelid", 12),
    ("core22", "baseid", 3),
    ("hello", "helloid", 1),
];

/// The model's headers: series-16 form (gadget, kernel, required-snaps) or UC20 form.
fn model_headers(options: &Options) -> Vec<(String, HeaderValue)> {
    let mut headers = h(&[
        ("type", "model"),
        ("authority-id", "acme"),
        ("series", "16"),
        ("brand-id", "acme"),
        ("model", "pi3"),
        ("architecture", "arm64"),
        ("base", "core22"),
        ("timestamp", "2026-01-01T00:00:00Z"),
    ]);
    if !options.uc20 {
        headers.extend(h(&[("gadget", "pi3"), ("kernel", "pi2-kernel")]));
        headers.push((
            "required-snaps".into(),
            HeaderValue::List(vec!["hello".into()]),
        ));
        return headers;
    }
    headers.push(("grade".into(), "signed".into()));
    let types = ["gadget", "kernel", "base", "app"];
    let snaps = SNAPS
        .iter()
        .zip(types)
        .map(|((name, id, _), kind)| {
            let id = match options.model_id {
                Some((n, other)) if n == *name => other,
                _ => id,
            };
            HeaderValue::Map(
                [("name", *name), ("id", id), ("type", kind)]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.into()))
                    .collect(),
            )
        })
        .collect();
    headers.push(("snaps".into(), HeaderValue::List(snaps)));
    headers
}

/// The content of a fake snap: distinct per name and revision, a few hundred KiB so
/// hashing crosses several chunks.
fn content(name: &str, revision: u64) -> Vec<u8> {
    let seed = format!("{name}/{revision}/");
    seed.bytes().cycle().take(300_000 + name.len()).collect()
}

impl World {
    fn new(name: &str, options: Options) -> World {
        let dir =
            std::env::temp_dir().join(format!("cf-agent-snaps-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let root = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
        let store = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
        let brand = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
        let trusted = dir.join("trusted");
        fs::create_dir_all(&trusted).unwrap();
        let roots = [
            account_key("store", &root, &root, None),
            account("store", &root),
        ];
        fs::write(trusted.join("root.assertion"), stream(&roots)).unwrap();
        let seed = dir.join("seed");
        let system = seed.join("systems/20260101");
        fs::create_dir_all(system.join("assertions")).unwrap();
        fs::create_dir_all(seed.join("snaps")).unwrap();
        let model = sign(&model_headers(&options), None, &brand, Timestamp::now()).unwrap();
        fs::write(system.join("model"), model.encode()).unwrap();
        let model_etc = [
            account_key("store", &store, &root, options.store_until),
            account("acme", &root),
            account_key("acme", &brand, &root, None),
        ];
        fs::write(system.join("assertions/model-etc"), stream(&model_etc)).unwrap();
        let mut w = World {
            known: dir.join("known"),
            dir,
            seed,
            system,
            trusted,
            root,
            store,
            snaps: Vec::new(),
            timestamp: options.timestamp,
            earliest: Timestamp::now(),
            pin: pin_for(&model),
        };
        for (name, id, rev) in SNAPS {
            w.declare(name, id);
            w.publish(name, id, rev, true);
        }
        w.write_snap_assertions();
        w
    }

    /// Adds a snap-declaration of `id` as `name`.
    fn declare(&mut self, name: &str, id: &str) {
        let decl = signed(
            &[
                ("type", "snap-declaration"),
                ("authority-id", "store"),
                ("series", "16"),
                ("snap-id", id),
                ("snap-name", name),
                ("publisher-id", "acme"),
                ("timestamp", self.timestamp),
            ],
            None,
            &self.root,
        );
        self.snaps.push(decl);
    }

    /// Adds the snap-revision of `name` at `rev`; writes the file too if `seed`.
    fn publish(&mut self, name: &str, id: &str, rev: u64, seed: bool) {
        let bytes = content(name, rev);
        let size = bytes.len().to_string();
        let rev_text = rev.to_string();
        let sha = digest(&bytes);
        let revision = signed(
            &[
                ("type", "snap-revision"),
                ("authority-id", "store"),
                ("snap-sha3-384", sha.as_str()),
                ("snap-id", id),
                ("snap-size", size.as_str()),
                ("snap-revision", rev_text.as_str()),
                ("developer-id", "acme"),
                ("timestamp", self.timestamp),
            ],
            None,
            &self.store,
        );
        self.snaps.push(revision);
        if seed {
            fs::write(self.snap_path(name, rev), bytes).unwrap();
        }
    }

    fn snap_path(&self, name: &str, rev: u64) -> PathBuf {
        self.seed.join(format!("snaps/{name}_{rev}.snap"))
    }

    fn write_snap_assertions(&self) {
        fs::write(self.system.join("assertions/snaps"), stream(&self.snaps)).unwrap();
    }

    /// Model and seed verification as the agent runs them, on an aarch64 kernel.
    fn check(&self) -> Result<Outcome, String> {
        self.check_on("aarch64")
    }

    fn check_on(&self, machine: &str) -> Result<Outcome, String> {
        let pinned = model::open(&self.seed, &self.pin).map_err(|e| e.to_string())?;
        let found = pinned.model;
        let sources = model::Sources {
            trusted: &self.trusted,
            known: &self.known,
        };
        let db = model::trust_db(&found, sources, self.earliest).map_err(|e| e.to_string())?;
        model::verify_in(&db, &found).map_err(|e| e.to_string())?;
        verify(&self.seed, &db, &found.model, machine).map_err(|e| e.to_string())
    }

    /// Flips one byte of `path` in the middle.
    fn flip(&self, path: &Path) {
        let mut bytes = fs::read(path).unwrap();
        let i = bytes.len() / 2;
        bytes[i] ^= 0x01;
        fs::write(path, bytes).unwrap();
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn expect_err(r: Result<Outcome, String>, parts: &[&str]) -> String {
    let e = match r {
        Ok(o) => panic!("expected an error with {parts:?}, got {o:?}"),
        Err(e) => e,
    };
    for p in parts {
        assert!(e.contains(p), "{e:?} lacks {p:?}");
    }
    e
}

#[test]
fn an_untouched_seed_verifies() {
    let w = World::new("ok", Options::default());
    let Outcome::Verified(seed) = w.check().unwrap() else {
        panic!("no snaps seen")
    };
    let summary = seed.summary();
    assert_eq!(summary.snaps, 4);
    assert_eq!(seed.base().name(), "core22");
    let others: Vec<&String> = seed.others().keys().collect();
    assert_eq!(others, ["hello", "pi2-kernel", "pi3"]);
    let line = summary.line();
    assert!(
        line.starts_with("seed verified: 4 snaps (gadget pi3, kernel pi2-kernel, base core22) in "),
        "{line}"
    );
    assert!(line.ends_with(" ms"), "{line}");
}

#[test]
fn a_flipped_byte_in_each_kind_of_snap_is_caught() {
    for (name, _, rev) in &SNAPS[..3] {
        let w = World::new(&format!("flip-{name}"), Options::default());
        w.flip(&w.snap_path(name, *rev));
        let file = format!("snaps/{name}_{rev}.snap");
        let e = expect_err(
            w.check(),
            &[&file, "differs from the store's revision: SHA3-384"],
        );
        let asserted = digest(&content(name, *rev));
        assert!(e.contains(&format!("asserted {asserted}")), "{e}");
    }
}

#[test]
fn a_flipped_byte_in_the_model_is_caught() {
    let mut w = World::new("flip-model", Options::default());
    let path = w.system.join("model");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("model: pi3", "model: pi4");
    fs::write(&path, &text).unwrap();
    // Not the model the device was built for.
    expect_err(
        w.check(),
        &[
            "refusing the model on the card: this device is acme/pi3",
            "acme/pi4",
        ],
    );
    // Nor would it verify if the initramfs named it.
    let changed = Assertion::decode(text.as_bytes()).unwrap();
    w.pin = pin_for(&changed);
    expect_err(w.check(), &["model acme/pi4 does not verify", "signature"]);
}

#[test]
fn a_flipped_byte_in_an_account_key_is_caught() {
    let w = World::new("flip-key", Options::default());
    let path = w.system.join("assertions/model-etc");
    let text =
        fs::read_to_string(&path)
            .unwrap()
            .replacen("since: 2020-01-01", "since: 2020-01-02", 1);
    fs::write(&path, text).unwrap();
    // The first key in model-etc is the store's, which signs the snap-revisions.
    expect_err(
        w.check(),
        &["seed snap snaps/", "does not verify", "signature"],
    );
}

#[test]
fn a_snap_swapped_for_another_of_the_same_name_is_caught() {
    let mut w = World::new("swap", Options::default());
    // Another asserted revision of the gadget, under the seeded revision's name.
    w.publish("pi3", "gadgetid", 8, false);
    w.write_snap_assertions();
    fs::write(w.snap_path("pi3", 7), content("pi3", 8)).unwrap();
    expect_err(
        w.check(),
        &["seed snap snaps/pi3_7.snap is the store's revision 8"],
    );
    // Unasserted content under that name.
    fs::write(w.snap_path("pi3", 7), b"not the gadget").unwrap();
    expect_err(
        w.check(),
        &["snaps/pi3_7.snap differs from the store's revision"],
    );
    // Another snap's file under the gadget's name.
    fs::write(w.snap_path("pi3", 7), content("hello", 1)).unwrap();
    expect_err(
        w.check(),
        &["seed snap snaps/pi3_7.snap: the store declares its snap-id as snap hello"],
    );
}

#[test]
fn a_missing_snap_is_caught() {
    for (name, role) in [
        ("pi3", "gadget"),
        ("pi2-kernel", "kernel"),
        ("core22", "base"),
        ("hello", "required"),
    ] {
        let w = World::new(&format!("missing-{name}"), Options::default());
        let rev = SNAPS.iter().find(|s| s.0 == name).unwrap().2;
        fs::remove_file(w.snap_path(name, rev)).unwrap();
        expect_err(
            w.check(),
            &[&format!(
                "seed lacks the model's {role} snap {name} (no snaps/{name}_*.snap)"
            )],
        );
    }
}

#[test]
fn an_expired_store_key_is_caught() {
    let w = World::new(
        "expired",
        Options {
            store_until: Some("2025-01-01T00:00:00Z"),
            ..Options::default()
        },
    );
    expect_err(
        w.check(),
        &["seed snap snaps/", "does not verify", "expired"],
    );
}

#[test]
fn the_architecture_must_be_the_kernels() {
    let w = World::new("arch", Options::default());
    assert!(w.check_on("aarch64").is_ok());
    expect_err(
        w.check_on("armv7l"),
        &["seed is for architecture arm64 but this kernel runs on armv7l"],
    );
    expect_err(w.check_on("x86_64"), &["runs on x86_64"]);
    assert_eq!(debian_arch("armv8l"), Some("armhf"));
    assert_eq!(debian_arch("mips"), None);
}

#[test]
fn a_declaration_naming_another_snap_is_caught() {
    let mut w = World::new("decl", Options::default());
    w.snaps.retain(|a| {
        a.header_str("snap-id") != Some("kernelid") || a.type_name() != "snap-declaration"
    });
    w.declare("other-kernel", "kernelid");
    w.write_snap_assertions();
    expect_err(
        w.check(),
        &["seed snap snaps/pi2-kernel_12.snap: the store declares its snap-id as snap other-kernel"],
    );
    // No declaration at all.
    w.snaps.retain(|a| {
        a.header_str("snap-id") != Some("kernelid") || a.type_name() != "snap-declaration"
    });
    w.write_snap_assertions();
    expect_err(
        w.check(),
        &["no snap-declaration in assertions/snaps for snap-id kernelid"],
    );
}

#[test]
fn a_revision_signed_by_a_stranger_is_caught() {
    let mut w = World::new("stranger", Options::default());
    w.store = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    w.snaps
        .retain(|a| a.header_str("snap-id") != Some("helloid"));
    w.declare("hello", "helloid");
    w.publish("hello", "helloid", 1, true);
    w.write_snap_assertions();
    expect_err(
        w.check(),
        &["seed snap snaps/hello_1.snap: its snap-revision does not verify"],
    );
}

#[test]
fn sizes_names_and_duplicates() {
    let w = World::new("names", Options::default());
    fs::write(w.seed.join("snaps/hello_2.snap"), b"x").unwrap();
    expect_err(
        w.check(),
        &["seed holds snap hello twice: snaps/hello_1.snap and snaps/hello_2.snap"],
    );
    fs::remove_file(w.seed.join("snaps/hello_2.snap")).unwrap();
    fs::write(w.seed.join("snaps/README"), b"x").unwrap();
    expect_err(
        w.check(),
        &["seed snap snaps/README is not named <name>_<revision>.snap"],
    );
    fs::remove_file(w.seed.join("snaps/README")).unwrap();
    fs::write(w.seed.join("snaps/extra_x1.snap"), b"local").unwrap();
    expect_err(
        w.check(),
        &["snaps/extra_x1.snap has no store assertions, which only a dangerous model allows (this model's grade: none)"],
    );
}

#[test]
fn no_snaps_folder_is_not_checked() {
    let w = World::new("none", Options::default());
    fs::remove_dir_all(w.seed.join("snaps")).unwrap();
    assert!(matches!(w.check_on("riscv64").unwrap(), Outcome::NoSnaps));
}

#[test]
fn a_dangerous_uc20_model_takes_unasserted_snaps_and_needs_its_required_ones() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/snapd/models/developer1-20-dangerous.model");
    let a = Assertion::decode(&fs::read(path).unwrap()).unwrap();
    let m = Model::from_assertion(&a).unwrap();
    let dir = std::env::temp_dir().join(format!("cf-agent-snaps-uc20-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("snaps")).unwrap();
    for name in ["pc", "pc-kernel", "core20"] {
        fs::write(dir.join(format!("snaps/{name}_x1.snap")), name).unwrap();
    }
    // snapd is in the model's snaps with the default presence, required.
    let e = verify(&dir, &TrustDb::new(), &m, "x86_64").unwrap_err();
    assert_eq!(
        e.to_string(),
        "seed lacks the model's required snap snapd (no snaps/snapd_*.snap)"
    );
    fs::write(dir.join("snaps/snapd_x1.snap"), "snapd").unwrap();
    let Outcome::Verified(s) = verify(&dir, &TrustDb::new(), &m, "x86_64").unwrap() else {
        panic!("no snaps seen")
    };
    assert_eq!((s.summary().snaps, s.base().name()), (4, "core20"));
    // Unasserted, never hashed, but opened once all the same.
    assert_eq!(read_all(s.base().file()), b"core20");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hashes_come_back_in_order() {
    let dir = std::env::temp_dir().join(format!("cf-agent-hash-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for i in 0..9 {
        let p = dir.join(format!("{i}"));
        // Sizes grow with the index, so the queue (largest first) runs backwards.
        fs::write(&p, content(&"x".repeat(i as usize + 1), i + 1)).unwrap();
        files.push(File::open(&p).unwrap());
    }
    // A folder opens but does not read.
    files.push(File::open(&dir).unwrap());
    let refs: Vec<&File> = files.iter().collect();
    let out = hash_all(&refs);
    assert_eq!(out.len(), 10);
    for (i, r) in out.iter().take(9).enumerate() {
        let bytes = content(&"x".repeat(i + 1), i as u64 + 1);
        assert_eq!(r.as_ref().unwrap(), &(digest(&bytes), bytes.len() as u64));
    }
    assert!(out[9].is_err());
    fs::remove_dir_all(&dir).unwrap();
}

/// Everything `file` holds, read from its start.
fn read_all(file: &File) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = file.read_at(&mut buf, out.len() as u64).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn the_verified_base_is_the_file_that_was_hashed() {
    let w = World::new("held", Options::default());
    let Outcome::Verified(seed) = w.check().unwrap() else {
        panic!("no snaps seen")
    };
    let base = seed.base();
    assert_eq!(base.path(), w.snap_path("core22", 3));
    // Another file put in its place by name after the check: what is handed over is still
    // what was hashed, read through the descriptor that was hashed.
    let swapped = w.seed.join("swapped");
    let mut f = File::create(&swapped).unwrap();
    f.write_all(b"another base").unwrap();
    drop(f);
    fs::rename(&swapped, w.snap_path("core22", 3)).unwrap();
    assert_eq!(read_all(base.file()), content("core22", 3));
    assert_eq!(read_all(seed.others()["hello"].file()), content("hello", 1));
}

#[test]
fn only_a_dangerous_model_takes_unasserted_snaps() {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/snapd/models");
    let dir = std::env::temp_dir().join(format!("cf-agent-unasserted-{}", std::process::id()));
    for (file, grade) in [
        ("developer1-20-signed.model", Some("signed")),
        ("developer1-22-secured.model", Some("secured")),
        ("developer1-pc.model", None),
        ("developer1-20-dangerous.model", Some("dangerous")),
    ] {
        let a = Assertion::decode(&fs::read(vectors.join(file)).unwrap()).unwrap();
        let m = Model::from_assertion(&a).unwrap();
        assert_eq!(m.grade.as_deref(), grade, "{file}");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("snaps")).unwrap();
        // Every snap the model needs, unasserted.
        for (_, name) in needed(&m) {
            fs::write(dir.join(format!("snaps/{name}_x1.snap")), &name).unwrap();
        }
        let machine = "x86_64";
        let got = verify(&dir, &TrustDb::new(), &m, machine);
        match grade {
            Some("dangerous") => assert!(got.is_ok(), "{file}: {got:?}"),
            _ => {
                let e = got.unwrap_err();
                assert!(matches!(e, Failure::Unasserted { .. }), "{file}: {e:?}");
                assert!(
                    e.to_string().ends_with(&format!(
                        "has no store assertions, which only a dangerous model allows \
                         (this model's grade: {})",
                        grade.unwrap_or("none")
                    )),
                    "{e}"
                );
            }
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_model_snap_ids_must_be_the_stores() {
    let w = World::new(
        "uc20",
        Options {
            uc20: true,
            ..Options::default()
        },
    );
    assert!(w.check().is_ok());
    let w = World::new(
        "uc20-id",
        Options {
            uc20: true,
            model_id: Some(("core22", "otherbaseid")),
            ..Options::default()
        },
    );
    expect_err(
        w.check(),
        &[
            "seed snap snaps/core22_3.snap: the model names snap core22 with id otherbaseid, \
           but the store's snap-declaration and snap-revision are for snap-id baseid",
        ],
    );
}

/// Far in the future, so the host's own clock can never decide these tests: a store key
/// revoked at [`REVOKED`], and an image built after it, at [`BUILT`].
const REVOKED: &str = "2090-01-01T00:00:00Z";
const BUILT: &str = "2091-01-01T00:00:00Z";

#[test]
fn a_key_revoked_before_the_build_time_refuses_with_the_clock_at_1970() {
    let mut w = World::new(
        "floor",
        Options {
            store_until: Some(REVOKED),
            ..Options::default()
        },
    );
    let epoch = Timestamp::from_unix(0);
    // The clock alone (1970, or today) would take the key as good.
    w.earliest = epoch;
    assert!(w.check().is_ok());
    w.earliest = clock::at_least(epoch, Timestamp::parse(BUILT).unwrap());
    expect_err(
        w.check(),
        &[
            "seed snap snaps/",
            "its snap-revision does not verify",
            "expired",
            &format!("the time is at least {BUILT}"),
        ],
    );
}

#[test]
fn a_revocation_in_the_initramfs_beats_the_older_key_on_the_card() {
    // The card carries the store key as first certified, with no end.
    let mut w = World::new("known", Options::default());
    w.earliest = clock::at_least(Timestamp::from_unix(0), Timestamp::parse(BUILT).unwrap());
    assert!(w.check().is_ok());
    // The store revoked it before the image was built; build-image put that in the initramfs.
    let revoked = account_key_revision("store", &w.store, &w.root, Some(REVOKED), 1);
    fs::create_dir_all(&w.known).unwrap();
    fs::write(w.known.join("store.assertion"), stream(&[revoked])).unwrap();
    expect_err(
        w.check(),
        &["seed snap snaps/", "does not verify", "expired"],
    );
}
