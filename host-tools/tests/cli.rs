//! The `coreforge` CLI run as a user runs it: in a temp key directory, with
//! passphrases from files, against snapd's vectors (read in place).

mod common;
use common::show;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use coreforge_assertions::Assertion;

const DEVELOPER1_KEY_ID: &str = "EAD4DbLxK_kn0gzNCXOs3kd6DeMU3f-L6BEsSEuJGBqCORR0gXkdDxMbOm11mRFu";

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/snapd")
}

/// A key directory and a passphrase file in a temp dir.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::write(env.pass(), "correct horse\n").unwrap();
        fs::write(env.dir.path().join("wrong"), "wrong horse\n").unwrap();
        env
    }

    fn keys(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    fn pass(&self) -> PathBuf {
        self.dir.path().join("pass")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coreforge"));
        cmd.args(args)
            .env("COREFORGE_KEYS", self.keys())
            .env_remove("COREFORGE_PASSPHRASE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            if let Some(data) = stdin {
                input.write_all(data).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    }

    /// Runs and expects success, returning stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(
            out.status.success(),
            "coreforge {args:?} failed:\n{}",
            show(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects exit code `code`, returning stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args, None);
        assert_eq!(
            out.status.code(),
            Some(code),
            "coreforge {args:?}:\n{}",
            show(&out)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    fn import_developer1(&self) {
        let key = vectors().join("keys/developer1.private.asc");
        let id = self.ok(&[
            "import-key",
            "developer1",
            key.to_str().unwrap(),
            "--account",
            "developer1",
            "--passphrase-file",
            self.pass().to_str().unwrap(),
        ]);
        assert_eq!(id.trim(), DEVELOPER1_KEY_ID);
    }

    fn trusted_args(&self) -> Vec<String> {
        let v = vectors();
        let mut args = vec!["verify".to_owned()];
        for t in [
            "roots/testrootorg-root.account-key",
            "roots/testrootorg.account",
        ] {
            args.push("--trusted".into());
            args.push(v.join(t).to_string_lossy().into_owned());
        }
        for c in [
            "roots/testrootorg-store.account-key",
            "developer1.account",
            "developer1.account-key",
        ] {
            args.push(v.join(c).to_string_lossy().into_owned());
        }
        args
    }
}

/// The header block up to and including `sign-key-sha3-384`.
fn headers_of(assertion: &[u8]) -> String {
    let text = String::from_utf8_lossy(assertion);
    let end = text.find("\n\n").unwrap();
    text[..end].to_owned()
}

#[test]
fn create_key_list_and_refuse_overwrite() {
    let env = Env::new();
    let pass = env.pass();
    let id = env.ok(&["create-key", "--passphrase-file", pass.to_str().unwrap()]);
    assert_eq!(id.trim().len(), 64);
    let listing = env.ok(&["keys"]);
    let mut lines = listing.lines();
    assert!(lines.next().unwrap().starts_with("Name"));
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["default", id.trim()]
    );
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["keys", "--json"])).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"name": "default", "sha3-384": id.trim()}])
    );

    let err = env.fails(
        &["create-key", "--passphrase-file", pass.to_str().unwrap()],
        1,
    );
    assert!(err.contains("exists"), "{err}");
    assert_eq!(env.ok(&["keys", "--json"]).matches("sha3-384").count(), 1);

    for entry in fs::read_dir(env.keys()).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode & 0o077,
            0,
            "{:?} is readable by others: {mode:o}",
            entry.path()
        );
        let text = fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(!text.contains("correct horse"), "the passphrase is stored");
    }
}

#[test]
fn no_terminal_and_no_passphrase_is_a_clear_error() {
    let env = Env::new();
    let err = env.fails(&["create-key", "k"], 1);
    assert!(err.contains("--passphrase-file"), "{err}");
    assert!(env.ok(&["keys", "--json"]).trim() == "[]");
}

#[test]
fn passphrase_from_the_environment() {
    let env = Env::new();
    let out = Command::new(env!("CARGO_BIN_EXE_coreforge"))
        .args(["create-key", "ci"])
        .env("COREFORGE_KEYS", env.keys())
        .env("COREFORGE_PASSPHRASE", "from env")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn sign_every_vector_json_like_snap_sign_and_verify_it() {
    let env = Env::new();
    env.import_developer1();
    let models = vectors().join("models");
    let mut checked = 0;
    for e in fs::read_dir(&models).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let model_path = models.join(
            name.trim_end_matches(".json")
                .trim_end_matches(".model")
                .to_owned()
                + ".model",
        );
        let expected = fs::read(&model_path).unwrap();
        let signed = env.ok(&[
            "sign",
            "-k",
            "developer1",
            "--passphrase-file",
            env.pass().to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
        assert_eq!(
            headers_of(signed.as_bytes()),
            headers_of(&expected),
            "{name}"
        );
        // The signature differs (creation time) but is valid: verify it.
        let out_file = env.path(&format!("{name}.model"));
        fs::write(&out_file, &signed).unwrap();
        let mut args = env.trusted_args();
        args.push(out_file.to_string_lossy().into_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let report = env.ok(&args);
        assert!(
            report.contains("verified model 16/developer1/") && report.contains(DEVELOPER1_KEY_ID),
            "{report}"
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} JSON vectors found");
}

#[test]
fn sign_reads_stdin_and_updates_the_timestamp() {
    let env = Env::new();
    env.import_developer1();
    let json = fs::read(vectors().join("models/developer1-pc-18.model.json")).unwrap();
    let out = env.run(
        &[
            "sign",
            "-k",
            "developer1",
            "--update-timestamp",
            "--passphrase-file",
            env.pass().to_str().unwrap(),
        ],
        Some(&json),
    );
    assert!(out.status.success(), "{}", show(&out));
    let a = Assertion::decode_all(&out.stdout).unwrap().remove(0);
    let ts = a.header_str("timestamp").unwrap();
    assert_ne!(ts, "2017-05-28T19:40:00+00:00");
    let t = coreforge_assertions::Timestamp::parse(ts).unwrap();
    assert!((coreforge_assertions::Timestamp::now().unix() - t.unix()).abs() < 120);
}

#[test]
fn sign_refuses_bad_json_and_wrong_passphrase() {
    let env = Env::new();
    env.import_developer1();
    let bad = env.path("bad.json");
    fs::write(
        &bad,
        r#"{"type": "model", "series": 16, "brand-id": "developer1"}"#,
    )
    .unwrap();
    let pass = env.pass();
    let err = env.fails(
        &[
            "sign",
            "-k",
            "developer1",
            "--passphrase-file",
            pass.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
        1,
    );
    assert!(
        err.contains("header \"series\"") && err.contains("strings"),
        "{err}"
    );

    let good = vectors().join("models/developer1-pc-18.model.json");
    let wrong = env.path("wrong");
    let err = env.fails(
        &[
            "sign",
            "-k",
            "developer1",
            "--passphrase-file",
            wrong.to_str().unwrap(),
            good.to_str().unwrap(),
        ],
        1,
    );
    assert!(err.to_lowercase().contains("passphrase"), "{err}");
    let err = env.fails(
        &[
            "sign",
            "-k",
            "nosuchkey",
            "--passphrase-file",
            pass.to_str().unwrap(),
            good.to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("nosuchkey"), "{err}");
}

#[test]
fn sign_chain_appends_account_key_and_account() {
    let env = Env::new();
    env.import_developer1();
    let json = vectors().join("models/developer1-pc-18.model.json");
    let pass = env.pass();
    let args = [
        "sign",
        "-k",
        "developer1",
        "--chain",
        "--passphrase-file",
        pass.to_str().unwrap(),
        json.to_str().unwrap(),
    ];
    let err = env.fails(&args, 1);
    assert!(
        err.contains("register-key") || err.contains("chain"),
        "{err}"
    );
    // What `register-key` records: the key's account-key and its account.
    let mut chain = fs::read(vectors().join("developer1.account-key")).unwrap();
    chain.extend(b"\n\n");
    chain.extend(fs::read(vectors().join("developer1.account")).unwrap());
    fs::write(env.keys().join("developer1.chain"), chain).unwrap();
    let out = env.ok(&args);
    let all = Assertion::decode_all(out.as_bytes()).unwrap();
    let types: Vec<_> = all.iter().map(|a| a.type_name()).collect();
    assert_eq!(types, ["model", "account-key", "account"]);
}

#[test]
fn verify_reports_the_failing_check() {
    let env = Env::new();
    let model = fs::read_to_string(vectors().join("models/developer1-pc.model")).unwrap();
    let tampered = env.path("tampered.model");
    fs::write(
        &tampered,
        model.replace("model: my-model", "model: my-modem"),
    )
    .unwrap();
    let mut args = env.trusted_args();
    args.push(tampered.to_string_lossy().into_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = env.fails(&args, 3);
    assert!(err.contains("failed signature verification"), "{err}");

    let err = env.fails(
        &[
            "verify",
            vectors()
                .join("models/developer1-pc.model")
                .to_str()
                .unwrap(),
        ],
        1,
    );
    assert!(err.contains("--trusted"), "{err}");

    let truncated = env.path("truncated.model");
    fs::write(&truncated, &model[..model.len() / 4]).unwrap();
    let err = env.fails(
        &[
            "verify",
            "--trusted",
            tampered.to_str().unwrap(),
            truncated.to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn export_key_and_account_key_request() {
    let env = Env::new();
    let pass = env.pass();
    let id = env.ok(&[
        "create-key",
        "brand",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    let public = env.ok(&["export-key", "brand"]);
    let key = coreforge_assertions::PublicKey::decode(public.trim().as_bytes()).unwrap();
    assert_eq!(key.id(), id.trim());
    let req = env.ok(&[
        "export-key",
        "brand",
        "--account",
        "acme",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    let a = Assertion::decode_all(req.as_bytes()).unwrap().remove(0);
    assert_eq!(a.type_name(), "account-key-request");
    assert_eq!(a.header_str("account-id"), Some("acme"));
    assert_eq!(a.sign_key_id(), id.trim());
    let file = env.path("req");
    fs::write(&file, &req).unwrap();
    // Self-signed: it verifies with no chain at all.
    let root = vectors().join("roots/testrootorg-root.account-key");
    let report = env.ok(&[
        "verify",
        "--trusted",
        root.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(report.contains("verified account-key-request"), "{report}");
}

#[test]
fn help_describes_every_subcommand() {
    let env = Env::new();
    let help = env.ok(&["--help"]);
    for sub in [
        "create-key",
        "keys",
        "import-key",
        "export-key",
        "sign",
        "verify",
    ] {
        assert!(help.contains(sub), "{sub} missing from --help");
        let sub_help = env.ok(&[sub, "--help"]);
        assert!(
            sub_help.lines().next().is_some_and(|l| l.len() > 10),
            "{sub}: {sub_help}"
        );
    }
}
