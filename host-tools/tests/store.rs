//! Snaps and the local store through the `coreforge` binary, in temp dirs: `pack`,
//! `info`, `store init|upload|release|resolve`, `register-key` and `sign --chain`,
//! checked against the assertions library (trust database) and squashfs-tools.

mod common;
use common::show;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use coreforge_assertions::{Assertion, SnapDeclaration, SnapRevision, TrustDb};

/// A temp dir holding snap sources, snaps, a store and a key directory.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::write(env.path("pass"), "correct horse\n").unwrap();
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coreforge"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("COREFORGE_KEYS", self.path("keys"))
            .env_remove("COREFORGE_PASSPHRASE")
            .env_remove("SOURCE_DATE_EPOCH");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and expects success, returning stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "coreforge {args:?} failed:\n{}",
            show(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects failure (exit 1), returning stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "coreforge {args:?}:\n{}",
            show(&out)
        );
        assert!(out.stdout.is_empty(), "{}", show(&out));
        String::from_utf8(out.stderr).unwrap()
    }

    /// A snap source directory `name` with this snap.yaml and a few files.
    fn snap_dir(&self, dir: &str, snap_yaml: &str) -> PathBuf {
        let root = self.path(dir);
        fs::create_dir_all(root.join("meta")).unwrap();
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::write(root.join("meta/snap.yaml"), snap_yaml).unwrap();
        fs::write(root.join("bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
        // An app's command must be executable by all, as `snap pack` requires.
        fs::set_permissions(root.join("bin/hello"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("README"), format!("{dir}\n")).unwrap();
        root
    }

    /// Packs a snap with this name, version and architectures; returns its file.
    fn snap(&self, name: &str, version: &str, archs: &str, snap_type: &str) -> PathBuf {
        let dir = format!("src-{name}-{version}-{}", archs.replace([',', ' '], ""));
        self.snap_dir(
            &dir,
            &format!(
                "name: {name}\nversion: '{version}'\ntype: {snap_type}\narchitectures: [{archs}]\n"
            ),
        );
        let out = self.ok(&["pack", &dir]);
        self.path(out.trim())
    }

    fn store(&self) -> String {
        self.p("store")
    }

    fn init_store(&self) {
        self.ok(&["store", "init", &self.store()]);
    }

    fn upload(&self, snap: &Path) -> (String, u64) {
        let out = self.ok(&["store", "upload", &self.store(), snap.to_str().unwrap()]);
        let (name, rev) = out.trim().split_once(' ').unwrap();
        (name.to_owned(), rev.parse().unwrap())
    }

    /// `store resolve`: the revision and file, or the error text.
    fn resolve(&self, name: &str, channel: &str, arch: &str) -> Result<(u64, PathBuf), String> {
        let args = [
            "store",
            "resolve",
            &self.store(),
            name,
            "--channel",
            channel,
            "--arch",
            arch,
        ];
        let out = self.run(&args);
        if !out.status.success() {
            return Err(String::from_utf8(out.stderr).unwrap());
        }
        let text = String::from_utf8(out.stdout).unwrap();
        let parts: Vec<&str> = text.trim().splitn(3, ' ').collect();
        assert_eq!(parts[0], name);
        Ok((parts[1].parse().unwrap(), PathBuf::from(parts[2])))
    }

    fn roots(&self) -> TrustDb {
        let mut db = TrustDb::new();
        let roots = fs::read(self.path("store/root.assertions")).unwrap();
        for a in Assertion::decode_all(&roots).unwrap() {
            db.add_trusted(a);
        }
        db
    }

    fn create_key(&self, name: &str, account: Option<&str>) {
        let pass = self.p("pass");
        let mut args = vec!["create-key", name, "--passphrase-file", &pass];
        if let Some(a) = account {
            args.extend(["--account", a]);
        }
        self.ok(&args);
    }
}

/// `unsquashfs -lln`: the listing with numeric owners and times.
fn listing(snap: &Path) -> String {
    let out = Command::new("unsquashfs")
        .args(["-lln", "-d", ""])
        .arg(snap)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pack_names_the_snap_like_snapd_and_info_reports_it() {
    let env = Env::new();
    env.snap_dir(
        "hello-src",
        "name: hello\nversion: 1.10\nsummary: ignored\napps:\n  hello:\n    command: bin/hello\n",
    );
    let out = env.ok(&["pack", "hello-src"]);
    assert_eq!(out.trim(), "hello_1.10_all.snap");
    let snap = env.path("hello_1.10_all.snap");
    let bytes = fs::read(&snap).unwrap();
    assert_eq!(&bytes[..4], b"hsqs");

    let info = env.ok(&["info", snap.to_str().unwrap()]);
    let expected = format!(
        "name:          hello\nversion:       1.10\ntype:          app\narchitectures: all\n\
         size:          {}\nsha3-384:      {}\n",
        bytes.len(),
        common::sha3_b64url(&bytes)
    );
    assert_eq!(info, expected);

    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["info", "--json", snap.to_str().unwrap()])).unwrap();
    assert_eq!(json["architectures"], serde_json::json!(["all"]));
    assert_eq!(json["size"], bytes.len());
    assert_eq!(json["sha3-384"], common::sha3_b64url(&bytes));

    // Several architectures: `multi`; -o picks the file.
    env.snap_dir(
        "k-src",
        "name: pi2-kernel\nversion: 6.1-1\ntype: kernel\narchitectures: [arm64, armhf]\n",
    );
    assert_eq!(
        env.ok(&["pack", "k-src"]).trim(),
        "pi2-kernel_6.1-1_multi.snap"
    );
    let custom = env.p("out/custom.snap");
    fs::create_dir(env.path("out")).unwrap();
    assert_eq!(env.ok(&["pack", "k-src", "-o", &custom]).trim(), custom);
    let info = env.ok(&["info", &custom]);
    assert!(
        info.contains("type:          kernel\narchitectures: arm64, armhf\n"),
        "{info}"
    );
    // Nothing but the snaps is left behind (no temp files).
    let mut names: Vec<String> = fs::read_dir(env.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["custom.snap"]);
}

#[test]
fn pack_is_reproducible() {
    let env = Env::new();
    let dir = env.snap_dir("a", "name: repro\nversion: '1'\n");
    fs::create_dir_all(dir.join("lib/deep")).unwrap();
    fs::write(dir.join("lib/deep/data.bin"), vec![7u8; 100_000]).unwrap();
    env.ok(&["pack", "a", "-o", "one.snap"]);
    // A copy made later (new mtimes, other path) packs to the same bytes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let status = Command::new("cp")
        .args(["-r", "a", "b"])
        .current_dir(env.dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    fs::write(env.path("b/README"), "a\n").unwrap();
    env.ok(&["pack", "b", "-o", "two.snap"]);
    env.ok(&["pack", "a", "-o", "three.snap"]);
    let one = fs::read(env.path("one.snap")).unwrap();
    assert_eq!(one, fs::read(env.path("two.snap")).unwrap());
    assert_eq!(one, fs::read(env.path("three.snap")).unwrap());
    // Owned by root, every time at the epoch, whoever packs.
    let list = listing(&env.path("one.snap"));
    let files: Vec<&str> = list
        .lines()
        .filter(|l| l.contains("/meta/snap.yaml"))
        .collect();
    assert_eq!(files.len(), 1, "{list}");
    assert!(files[0].contains(" 0/0 "), "{list}");
    assert!(files[0].contains("1970-01-01 00:00"), "{list}");

    // SOURCE_DATE_EPOCH sets the times (and so changes the bytes).
    let out = env
        .cmd(&["pack", "a", "-o", "epoch.snap"])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert_ne!(one, fs::read(env.path("epoch.snap")).unwrap());
    assert!(listing(&env.path("epoch.snap")).contains("2023-11-14"));
    let out = env
        .cmd(&["pack", "a", "-o", "bad.snap"])
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("SOURCE_DATE_EPOCH=\"yesterday\""));
    assert!(!env.path("bad.snap").exists());
}

#[test]
fn pack_explains_bad_snap_yaml() {
    let env = Env::new();
    let cases = [
        ("name-missing", "version: '1'\n", "missing \"name\""),
        (
            "bad-name",
            "name: Hello_World\nversion: '1'\n",
            "invalid snap name \"Hello_World\"",
        ),
        (
            "short-name",
            "name: h\nversion: '1'\n",
            "invalid snap name \"h\"",
        ),
        ("no-version", "name: hello\n", "missing \"version\""),
        (
            "bad-type",
            "name: hello\nversion: '1'\ntype: daemon\n",
            "unknown type \"daemon\"",
        ),
        (
            "bad-arch",
            "name: hello\nversion: '1'\narchitectures: [arm64, x86]\n",
            "unknown architecture \"x86\"",
        ),
        (
            "arch-string",
            "name: hello\nversion: '1'\narchitectures: arm64\n",
            "architectures: invalid type",
        ),
        ("not-yaml", "name: [hello\n", "snap.yaml"),
    ];
    for (dir, yaml, want) in cases {
        env.snap_dir(dir, yaml);
        let err = env.fails(&["pack", dir]);
        assert!(err.contains(want), "{dir}: {err}");
        assert!(err.contains(&format!("cannot pack {dir}")), "{dir}: {err}");
    }
    fs::create_dir(env.path("empty")).unwrap();
    let err = env.fails(&["pack", "empty"]);
    assert!(err.contains("no meta/snap.yaml"), "{err}");
    env.snap_dir("gadget", "name: pi3\nversion: '1'\ntype: gadget\n");
    assert!(env.fails(&["pack", "gadget"]).contains("meta/gadget.yaml"));
    let inside = env.p("gadget/x.snap");
    fs::write(env.path("gadget/meta/gadget.yaml"), "volumes: {}\n").unwrap();
    assert!(env
        .fails(&["pack", "gadget", "-o", &inside])
        .contains("inside the snap directory"));
    assert!(!env.path("gadget/x.snap").exists());
    // info on something that is not a snap.
    fs::write(env.path("junk.snap"), "junk").unwrap();
    assert!(env
        .fails(&["info", "junk.snap"])
        .contains("not a squashfs image"));
    assert!(env
        .fails(&["info", "missing.snap"])
        .contains("missing.snap"));
}

#[test]
fn store_resolves_per_architecture_with_risk_fallback() {
    let env = Env::new();
    env.init_store();
    let k64 = env.snap("pi2-kernel", "6.1", "arm64", "kernel");
    let k32 = env.snap("pi2-kernel", "6.1", "armhf", "kernel");
    assert_eq!(env.upload(&k64), ("pi2-kernel".into(), 1));
    assert_eq!(env.upload(&k32), ("pi2-kernel".into(), 2));
    // The same bytes again: the same revision.
    assert_eq!(env.upload(&k64), ("pi2-kernel".into(), 1));

    let s = env.store();
    let out = env.ok(&["store", "release", &s, "pi2-kernel", "1", "stable", "beta"]);
    assert_eq!(
        out,
        "released pi2-kernel r1 (arm64) to latest/stable\nreleased pi2-kernel r1 (arm64) to latest/beta\n"
    );
    env.ok(&["store", "release", &s, "pi2-kernel", "2", "beta"]);

    // Each architecture gets its own revision in the same channel.
    let (rev, path) = env.resolve("pi2-kernel", "beta", "arm64").unwrap();
    assert_eq!(rev, 1);
    assert_eq!(fs::read(&path).unwrap(), fs::read(&k64).unwrap());
    assert_eq!(env.resolve("pi2-kernel", "beta", "armhf").unwrap().0, 2);
    // edge and candidate are closed: edge follows beta, candidate follows stable.
    assert_eq!(env.resolve("pi2-kernel", "edge", "armhf").unwrap().0, 2);
    assert_eq!(
        env.resolve("pi2-kernel", "latest/edge", "arm64").unwrap().0,
        1
    );
    assert_eq!(
        env.resolve("pi2-kernel", "candidate", "arm64").unwrap().0,
        1
    );
    let err = env.resolve("pi2-kernel", "candidate", "armhf").unwrap_err();
    assert!(
        err.contains(
            "snap \"pi2-kernel\" has no revision for armhf in channel \"candidate\" \
             (released: beta arm64 r1, beta armhf r2, stable arm64 r1)"
        ),
        "{err}"
    );
    // A newer revision for one architecture leaves the other alone.
    let k64b = env.snap("pi2-kernel", "6.2", "arm64", "kernel");
    assert_eq!(env.upload(&k64b).1, 3);
    env.ok(&["store", "release", &s, "pi2-kernel", "3", "edge"]);
    assert_eq!(env.resolve("pi2-kernel", "edge", "arm64").unwrap().0, 3);
    assert_eq!(env.resolve("pi2-kernel", "edge", "armhf").unwrap().0, 2);
    assert_eq!(env.resolve("pi2-kernel", "beta", "arm64").unwrap().0, 1);

    // An `all` snap serves every architecture; a track and branch of its own.
    let app = env.snap("hello", "1", "all", "app");
    env.upload(&app);
    env.ok(&[
        "store",
        "release",
        &s,
        "hello",
        "1",
        "2.x/candidate",
        "beta/fix",
    ]);
    assert_eq!(env.resolve("hello", "2.x/edge", "riscv64").unwrap().0, 1);
    assert_eq!(env.resolve("hello", "beta/fix", "arm64").unwrap().0, 1);
    let err = env.resolve("hello", "2.x/stable", "arm64").unwrap_err();
    assert!(
        err.contains("(released: 2.x/candidate all r1, beta/fix all r1)"),
        "{err}"
    );
    // Branches do not fall back.
    assert!(env.resolve("hello", "beta/other", "arm64").is_err());
    assert!(env
        .resolve("hello", "stable", "arm64")
        .unwrap_err()
        .contains("in channel \"stable\""));
}

#[test]
fn store_errors_name_what_is_missing() {
    let env = Env::new();
    let s = env.store();
    let err = env.fails(&["store", "upload", &s, "x.snap"]);
    assert!(err.contains("is not a coreforge store"), "{err}");
    assert!(err.contains("coreforge store init"), "{err}");
    env.init_store();
    assert!(env
        .fails(&["store", "init", &s])
        .contains("already holds a store"));
    let err = env.fails(&["store", "init", &env.p("other"), "--authority-id", "Bad_Id"]);
    assert!(err.contains("invalid account id \"Bad_Id\""), "{err}");

    let k = env.snap("pi2-kernel", "6.1", "arm64", "kernel");
    env.upload(&k);
    env.ok(&["store", "release", &s, "pi2-kernel", "1", "stable"]);
    let err = env.resolve("pi3", "stable", "arm64").unwrap_err();
    assert!(err.contains("snap \"pi3\" is not in the store"), "{err}");
    assert!(err.contains("(known: pi2-kernel)"), "{err}");
    let err = env.resolve("pi2-kernel", "stable", "arm65").unwrap_err();
    assert!(err.contains("unknown architecture \"arm65\""), "{err}");
    let err = env
        .resolve("pi2-kernel", "latest/gamma", "arm64")
        .unwrap_err();
    assert!(
        err.contains("invalid channel \"latest/gamma\": unknown risk \"gamma\""),
        "{err}"
    );
    let err = env.resolve("pi2-kernel", "stable", "armhf").unwrap_err();
    assert!(
        err.contains("no revision for armhf in channel \"stable\" (released: stable arm64 r1)"),
        "{err}"
    );

    let err = env.fails(&["store", "release", &s, "pi2-kernel", "7", "stable"]);
    assert!(
        err.contains("snap \"pi2-kernel\" has no revision 7 (uploaded: r1)"),
        "{err}"
    );
    let err = env.fails(&["store", "release", &s, "nope", "1", "stable"]);
    assert!(err.contains("snap \"nope\" is not in the store"), "{err}");
    // A bad channel among good ones changes nothing.
    let err = env.fails(&["store", "release", &s, "pi2-kernel", "1", "edge", "a/b/c/d"]);
    assert!(err.contains("invalid channel \"a/b/c/d\""), "{err}");
    assert_eq!(env.resolve("pi2-kernel", "edge", "arm64").unwrap().0, 1);
    let db = rusqlite::Connection::open(env.path("store/store.db")).unwrap();
    let edge: i64 = db
        .query_row(
            "SELECT count(*) FROM channels WHERE channel = 'latest/edge'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(edge, 0, "a refused release wrote a channel");

    let out = env.run(&[
        "store",
        "resolve",
        "https://store.example",
        "x",
        "--arch",
        "arm64",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --trusted FILE"));
    // Another publisher for a snap that has one.
    let err = env.fails(&[
        "store",
        "upload",
        &s,
        k.to_str().unwrap(),
        "--publisher",
        "brand",
    ]);
    assert!(err.contains("published by \"coreforge-store\""), "{err}");
}

#[test]
fn uploaded_snaps_verify_through_the_store_root() {
    let env = Env::new();
    env.init_store();
    let s = env.store();
    let key_mode = fs::metadata(env.path("store/store.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key_mode.permissions().mode() & 0o777, 0o600);

    let gadget_src = env.snap_dir(
        "pi3",
        "name: pi3\nversion: '1'\ntype: gadget\narchitectures: [arm64]\n",
    );
    fs::write(gadget_src.join("meta/gadget.yaml"), "volumes: {}\n").unwrap();
    env.ok(&["pack", "pi3", "-o", "pi3.snap"]);
    let snap = env.path("pi3.snap");
    let out = env.ok(&["store", "upload", &s, "pi3.snap", "--publisher", "brand"]);
    assert_eq!(out, "pi3 1\n");
    env.ok(&["store", "release", &s, "pi3", "1", "stable"]);
    let text = env.ok(&[
        "store",
        "resolve",
        &s,
        "pi3",
        "--arch",
        "arm64",
        "--assertions",
    ]);
    let all = Assertion::decode_all(text.as_bytes()).unwrap();
    assert_eq!(all.len(), 2);
    let decl = SnapDeclaration::from_assertion(&all[0]).unwrap();
    let rev = SnapRevision::from_assertion(&all[1]).unwrap();
    let bytes = fs::read(&snap).unwrap();
    assert_eq!(decl.series, "16");
    assert_eq!(decl.snap_name, "pi3");
    assert_eq!(decl.publisher_id, "brand");
    assert_eq!(decl.snap_id.len(), 32);
    assert!(decl.snap_id.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(rev.snap_id, decl.snap_id);
    assert_eq!(rev.snap_sha3_384, common::sha3_b64url(&bytes));
    assert_eq!(rev.snap_size, bytes.len() as u64);
    assert_eq!(rev.snap_revision, 1);
    assert_eq!(rev.developer_id, "brand");
    assert_eq!(all[0].authority_id(), "coreforge-store");

    // The publisher's account was made by the store, and verifies too; the declaration
    // needs it, and the revision needs the declaration (snapd's rules).
    let mut db = env.roots();
    let account = fs::read(env.path("store/assertions/account/brand.assert")).unwrap();
    let account = Assertion::decode(account.strip_suffix(b"\n").unwrap_or(&account)).unwrap();
    db.verify(&account).unwrap();
    let e = db.verify(&all[0]).unwrap_err();
    assert!(e.to_string().contains("no account assertion"), "{e}");
    db.add(account);
    for a in &all {
        db.add(a.clone());
    }
    for a in &all {
        let v = db.verify(a).unwrap();
        assert_eq!(v.signer(), "coreforge-store");
    }
    // A store with another root does not vouch for these.
    let other = Env::new();
    other.init_store();
    let mut foreign = other.roots();
    foreign.add(all[1].clone());
    assert!(foreign.verify(&all[1]).is_err());

    // The snap id stays with the name; the next upload is revision 2.
    let v2 = env.snap_dir(
        "pi3-v2",
        "name: pi3\nversion: '2'\ntype: gadget\narchitectures: [arm64]\n",
    );
    fs::write(v2.join("meta/gadget.yaml"), "volumes: {}\n").unwrap();
    env.ok(&["pack", "pi3-v2", "-o", "pi3-v2.snap"]);
    assert_eq!(env.ok(&["store", "upload", &s, "pi3-v2.snap"]), "pi3 2\n");
    env.ok(&["store", "release", &s, "pi3", "2", "stable"]);
    let text = env.ok(&[
        "store",
        "resolve",
        &s,
        "pi3",
        "--arch",
        "arm64",
        "--assertions",
    ]);
    let all2 = Assertion::decode_all(text.as_bytes()).unwrap();
    assert_eq!(
        all2[0].encode(),
        all[0].encode(),
        "one declaration per name"
    );
    let rev2 = SnapRevision::from_assertion(&all2[1]).unwrap();
    assert_eq!(
        (rev2.snap_id.as_str(), rev2.snap_revision),
        (decl.snap_id.as_str(), 2)
    );
    db.verify(&all2[1]).unwrap();
}

/// A series-16 model for `brand`, as a user writes it.
fn model_json(brand: &str) -> String {
    format!(
        r#"{{"type": "model", "brand-id": "{brand}", "series": "16",
        "model": "pi3-test", "architecture": "arm64", "gadget": "pi3", "kernel": "pi2-kernel",
        "timestamp": "2020-01-01T00:00:00Z"}}"#
    )
}

#[test]
fn register_key_makes_sign_chain_verify_through_the_store_root() {
    let env = Env::new();
    env.init_store();
    let s = env.store();
    let pass = env.p("pass");
    env.create_key("default", None);
    fs::write(env.path("model.json"), model_json("brand")).unwrap();

    // No account yet: say how to give one.
    let err = env.fails(&["register-key", "default", "--store", &s]);
    assert!(err.contains("pass --account ID"), "{err}");
    let out = env.ok(&[
        "register-key",
        "default",
        "--store",
        &s,
        "--account",
        "brand",
    ]);
    assert!(out.starts_with("registered key \"default\""), "{out}");
    // Its chain is beside the key; the key now signs for brand (the model JSON
    // below has no authority-id: sign takes it from the key).
    let chain = fs::read(env.path("keys/default.chain")).unwrap();
    let chain = Assertion::decode_all(&chain).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].type_name(), "account-key");
    assert_eq!(chain[0].header_str("account-id"), Some("brand"));
    assert_eq!(chain[0].header_str("name"), Some("default"));
    assert_eq!(chain[1].type_name(), "account");
    let mut db = env.roots();
    for a in &chain {
        db.add(a.clone());
    }
    for a in &chain {
        assert_eq!(db.verify(a).unwrap().signer(), "coreforge-store");
    }

    // The model's timestamp predates the key: verification says so.
    let signed = env.ok(&[
        "sign",
        "--chain",
        "--passphrase-file",
        &pass,
        &env.p("model.json"),
    ]);
    let all = Assertion::decode_all(signed.as_bytes()).unwrap();
    assert_eq!(all.len(), 3);
    let mut db = env.roots();
    for a in &all[1..] {
        db.add(a.clone());
    }
    assert!(db.verify(&all[0]).is_err());

    // Signed now, the model verifies through the store's root alone.
    let signed = env.ok(&[
        "sign",
        "--chain",
        "--update-timestamp",
        "--passphrase-file",
        &pass,
        &env.p("model.json"),
    ]);
    let all = Assertion::decode_all(signed.as_bytes()).unwrap();
    assert_eq!(
        all.iter().map(|a| a.type_name()).collect::<Vec<_>>(),
        ["model", "account-key", "account"]
    );
    let mut db = env.roots();
    for a in &all[1..] {
        db.add(a.clone());
    }
    let v = db.verify(&all[0]).unwrap();
    assert_eq!(v.signer(), "brand");
    assert_eq!(v.chain().len(), 2, "brand key, then the store root");
    // So does `coreforge verify` with root.assertions as the only trust.
    fs::write(env.path("pi3.model"), &signed).unwrap();
    let report = env.ok(&[
        "verify",
        "--trusted",
        &env.p("store/root.assertions"),
        &env.p("pi3.model"),
    ]);
    assert!(
        report.contains("verified model 16/brand/pi3-test signed by brand"),
        "{report}"
    );

    // Registering again is harmless; for another account it is refused.
    let before = fs::read(env.path("keys/default.chain")).unwrap();
    env.ok(&["register-key", "default", "--store", &s]);
    assert_eq!(fs::read(env.path("keys/default.chain")).unwrap(), before);
    let err = env.fails(&[
        "register-key",
        "default",
        "--store",
        &s,
        "--account",
        "other",
    ]);
    assert!(err.contains("signs for account \"brand\""), "{err}");

    // A second key of the same account; a key registered nowhere does not verify.
    env.create_key("second", Some("brand"));
    // Not valid before the store's own key: the store cannot vouch for that time.
    let err = env.fails(&[
        "register-key",
        "second",
        "--store",
        &s,
        "--since",
        "2019-01-01T00:00:00Z",
    ]);
    assert!(err.contains("before the store's own key is valid"), "{err}");
    env.ok(&[
        "register-key",
        "second",
        "--store",
        &s,
        "--since",
        "2099-01-01T00:00:00Z",
    ]);
    let second_chain = fs::read(env.path("keys/second.chain")).unwrap();
    let second_chain = Assertion::decode_all(&second_chain).unwrap();
    assert_eq!(
        second_chain[1].encode(),
        chain[1].encode(),
        "one account for brand"
    );
    assert_eq!(
        second_chain[0].header_str("since"),
        Some("2099-01-01T00:00:00Z")
    );
    env.create_key("rogue", Some("brand"));
    let rogue = env.ok(&[
        "sign",
        "-k",
        "rogue",
        "--passphrase-file",
        &pass,
        &env.p("model.json"),
    ]);
    let out = env.run(&["verify", "--trusted", &env.p("store/root.assertions"), &{
        fs::write(env.path("rogue.model"), rogue).unwrap();
        env.p("rogue.model")
    }]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    // The key store's own checks still apply.
    let err = env.fails(&[
        "register-key",
        "missing",
        "--store",
        &s,
        "--account",
        "brand",
    ]);
    assert!(err.contains("no key named \"missing\""), "{err}");
    env.create_key("Bad_Name", Some("brand"));
    let err = env.fails(&["register-key", "Bad_Name", "--store", &s]);
    assert!(
        err.contains("invalid key name \"Bad_Name\" for an account-key"),
        "{err}"
    );
    let err = env.fails(&["register-key", "default", "--store", &env.p("nostore")]);
    assert!(err.contains("is not a coreforge store"), "{err}");
}

#[test]
fn concurrent_writers_lose_no_release() {
    let env = Env::new();
    env.init_store();
    for name in ["left", "right"] {
        let snap = env.snap(name, "1", "all", "app");
        env.upload(&snap);
    }
    // Two writers at once, each releasing its snap to tracks t0..t11, one command each:
    // every release reads the store and writes it back, so without the writers' lock one
    // would write over the other's.
    let writers: Vec<_> = ["left", "right"]
        .into_iter()
        .map(|name| {
            let store = env.store();
            let keys = env.path("keys");
            let dir = env.path(".");
            std::thread::spawn(move || {
                for t in 0..12 {
                    let out = Command::new(env!("CARGO_BIN_EXE_coreforge"))
                        .args(["store", "release", &store, name, "1", &format!("t{t}/edge")])
                        .current_dir(&dir)
                        .env("COREFORGE_KEYS", &keys)
                        .output()
                        .unwrap();
                    assert!(out.status.success(), "{}", show(&out));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    for name in ["left", "right"] {
        for t in 0..12 {
            assert!(
                env.resolve(name, &format!("t{t}/edge"), "arm64").is_ok(),
                "{name}'s release to t{t}/edge was lost"
            );
        }
    }
}
