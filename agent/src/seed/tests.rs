//! The tamper matrix: a seed built in a temp folder with a fresh store, then changed one
//! way at a time; each change must be caught with its own message.

use super::*;
use crate::model;
use coreforge_assertions::{sign, Assertion, HeaderValue, PrivateKey, Timestamp};

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
    let public = key.public_key();
    let id = public.id();
    let mut pairs = vec![
        ("type", "account-key"),
        ("authority-id", "store"),
        ("account-id", account),
        ("name", "default"),
        ("public-key-sha3-384", id.as_str()),
        ("since", "2020-01-01T00:00:00Z"),
    ];
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

/// A built seed: its folders, and the keys to make more assertions with.
struct World {
    dir: PathBuf,
    seed: PathBuf,
    system: PathBuf,
    trusted: PathBuf,
    store: PrivateKey,
    snaps: Vec<Assertion>,
}

/// How the seed is built.
#[derive(Default)]
struct Options {
    /// `until` of the store's signing key.
    store_until: Option<&'static str>,
}

const SNAPS: [(&str, &str, u64); 4] = [
    ("pi3", "gadgetid", 7),
    ("pi2-kernel", "kernelid", 12),
    ("core22", "baseid", 3),
    ("hello", "helloid", 1),
];

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
        let model = signed(
            &[
                ("type", "model"),
                ("authority-id", "acme"),
                ("series", "16"),
                ("brand-id", "acme"),
                ("model", "pi3"),
                ("architecture", "arm64"),
                ("gadget", "pi3"),
                ("kernel", "pi2-kernel"),
                ("base", "core22"),
                ("timestamp", "2026-01-01T00:00:00Z"),
            ],
            None,
            &brand,
        );
        // required-snaps is a list header.
        let mut headers: Vec<(String, HeaderValue)> = model.headers().to_vec();
        headers.retain(|(k, _)| k != "sign-key-sha3-384");
        headers.push((
            "required-snaps".into(),
            HeaderValue::List(vec!["hello".into()]),
        ));
        let model = sign(&headers, None, &brand, Timestamp::now()).unwrap();
        fs::write(system.join("model"), model.encode()).unwrap();
        let model_etc = [
            account_key("store", &store, &root, options.store_until),
            account("acme", &root),
            account_key("acme", &brand, &root, None),
        ];
        fs::write(system.join("assertions/model-etc"), stream(&model_etc)).unwrap();
        let mut w = World {
            dir,
            seed,
            system,
            trusted,
            store,
            snaps: Vec::new(),
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
                ("timestamp", "2026-01-01T00:00:00Z"),
            ],
            None,
            &self.store,
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
                ("timestamp", "2026-01-01T00:00:00Z"),
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
        let found = model::read(&self.system).map_err(|e| e.to_string())?;
        let db = model::trust_db(&found, &self.trusted).map_err(|e| e.to_string())?;
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
    let Outcome::Verified(summary) = w.check().unwrap() else {
        panic!("no snaps seen")
    };
    assert_eq!(summary.snaps, 4);
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
    let w = World::new("flip-model", Options::default());
    let path = w.system.join("model");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("model: pi3", "model: pi4");
    fs::write(&path, text).unwrap();
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
    // The first key in model-etc is the store's, which signs the snap assertions.
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
        },
    );
    expect_err(
        w.check(),
        &["seed snap snaps/", "does not verify", "not valid"],
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
    assert_eq!(w.check_on("riscv64").unwrap(), Outcome::NoSnaps);
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
    assert_eq!((s.snaps, s.base.as_str()), (4, "core20"));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hashes_come_back_in_order() {
    let dir = std::env::temp_dir().join(format!("cf-agent-hash-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let mut paths = Vec::new();
    for i in 0..9 {
        let p = dir.join(format!("{i}"));
        // Sizes grow with the index, so the queue (largest first) runs backwards.
        fs::write(&p, content(&"x".repeat(i as usize + 1), i + 1)).unwrap();
        paths.push(p);
    }
    paths.push(dir.join("missing"));
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let out = hash_all(&refs);
    assert_eq!(out.len(), 10);
    for (i, r) in out.iter().take(9).enumerate() {
        let bytes = content(&"x".repeat(i + 1), i as u64 + 1);
        assert_eq!(r.as_ref().unwrap(), &(digest(&bytes), bytes.len() as u64));
    }
    assert!(out[9].is_err());
    fs::remove_dir_all(&dir).unwrap();
}
