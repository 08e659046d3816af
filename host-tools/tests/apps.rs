//! snap.yaml's `apps:` on the host: `coreforge pack` refuses bad ones against the directory
//! and `build-image` (and `info`, `store upload`) against the squashfs listing, each naming
//! the field at fault.
//!
//! The build-image case needs the board snaps and the cross-built agent, as the walk-through.

mod common;
use common::show;
use common::world::world;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn coreforge(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coreforge"))
        .args(args)
        .current_dir(dir)
        .env("SOURCE_DATE_EPOCH", "1764028800")
        .output()
        .unwrap()
}

/// A snap directory with this snap.yaml and `bin/run` (0755), `bin/data` (0644).
fn snap_dir(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let src = dir.join(name);
    fs::create_dir_all(src.join("meta")).unwrap();
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::write(src.join("meta/snap.yaml"), yaml).unwrap();
    for (f, mode) in [("bin/run", 0o755), ("bin/data", 0o644)] {
        fs::write(src.join(f), "#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(src.join(f), fs::Permissions::from_mode(mode)).unwrap();
    }
    src
}

fn refused(dir: &Path, args: &[&str]) -> String {
    let out = coreforge(dir, args);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    String::from_utf8(out.stderr).unwrap()
}

const HEAD: &str = "name: web\nversion: '1'\napps:\n";

#[test]
fn pack_refuses_bad_apps_naming_the_field() {
    let t = tempfile::tempdir().unwrap();
    let cases = [
        (
            "  web: {command: bin/run, daemon: sometimes}\n",
            "apps.web.daemon: unknown daemon type \"sometimes\"",
        ),
        (
            "  web: {command: bin/gone}\n",
            "apps.web.command: \"bin/gone\" does not exist in the snap",
        ),
        (
            "  web: {command: bin/data}\n",
            "apps.web.command: \"bin/data\" is not executable by everyone (mode 0644)",
        ),
        (
            "  web: {command: bin/run, command-chain: [bin/nope]}\n",
            "apps.web.command-chain[0]: \"bin/nope\" does not exist",
        ),
        (
            "  web: {command: bin/run, daemon: simple, stop-command: bin/stop}\n",
            "apps.web.stop-command: \"bin/stop\" does not exist",
        ),
        (
            "  we_b: {command: bin/run}\n",
            "apps.we_b: cannot have \"we_b\" as app name",
        ),
        (
            "  web: {command: bin/run, daemon: simple, restart-condition: sometimes}\n",
            "apps.web.restart-condition: invalid restart condition \"sometimes\"",
        ),
        (
            "  web: {command: bin/run, daemon: simple, stop-timeout: 30}\n",
            "apps.web.stop-timeout: invalid duration \"30\"",
        ),
        (
            "  web: {command: bin/run, daemon: simple, stop-timeout: a while}\n",
            "apps.web.stop-timeout: invalid duration \"a while\"",
        ),
    ];
    for (i, (apps, want)) in cases.iter().enumerate() {
        let name = format!("bad{i}");
        snap_dir(t.path(), &name, &format!("{HEAD}{apps}"));
        let err = refused(t.path(), &["pack", &name]);
        assert!(err.contains(want), "{apps}\n got: {err}\nwant: {want}");
        assert!(err.contains("meta/snap.yaml"), "the file is named: {err}");
        assert!(!t.path().join("web_1_all.snap").exists());
    }
    // Good apps pack, through an in-snap link too; a daemon needs only an execute bit.
    let src = snap_dir(
        t.path(),
        "good",
        &format!("{HEAD}  web: {{command: bin/link --port 80, daemon: simple, stop-timeout: 1m30s}}\n  cli: {{command: bin/run}}\n"),
    );
    symlink("run", src.join("bin/link")).unwrap();
    let out = coreforge(t.path(), &["pack", "good"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "web_1_all.snap\n");
    let info = coreforge(t.path(), &["info", "web_1_all.snap"]);
    assert!(info.status.success(), "{}", show(&info));
}

/// A squashfs made without `coreforge pack` (so without its checks), as a store or another
/// tool could hand one over.
fn squash(dir: &Path, src: &Path, out: &str) -> PathBuf {
    let snap = dir.join(out);
    let status = Command::new("mksquashfs")
        .arg(src)
        .arg(&snap)
        .args(["-noappend", "-quiet", "-no-progress", "-all-root"])
        .status()
        .unwrap();
    assert!(status.success());
    snap
}

#[test]
fn snap_files_are_checked_against_their_listing() {
    let t = tempfile::tempdir().unwrap();
    let src = snap_dir(
        t.path(),
        "src",
        &format!("{HEAD}  web: {{command: bin/gone, daemon: simple}}\n"),
    );
    let snap = squash(t.path(), &src, "web.snap");
    let err = refused(t.path(), &["info", snap.to_str().unwrap()]);
    assert!(
        err.contains(
            "web.snap (meta/snap.yaml): apps.web.command: \"bin/gone\" does not exist in the snap"
        ),
        "{err}"
    );
    fs::write(
        src.join("meta/snap.yaml"),
        format!("{HEAD}  web: {{command: bin/run, daemon: simple}}\n"),
    )
    .unwrap();
    let snap = squash(t.path(), &src, "web-ok.snap");
    let out = coreforge(t.path(), &["info", snap.to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn build_image_refuses_an_extra_snap_with_bad_apps() {
    let w = world();
    let src = snap_dir(
        &w.path("apps"),
        "src",
        "name: badapps\nversion: '1'\napps:\n  web:\n    command: bin/run\n    command-chain: [bin/missing]\n",
    );
    let snap = squash(&w.path("apps"), &src, "badapps.snap");
    let model = w.model("badapps", "arm64", "pi3", "");
    let err = w.refused(
        &model,
        &w.path("badapps.img"),
        "beta",
        &["--extra-snaps", snap.to_str().unwrap()],
    );
    assert!(
        err.contains("apps.web.command-chain[0]: \"bin/missing\" does not exist in the snap"),
        "{err}"
    );
}
