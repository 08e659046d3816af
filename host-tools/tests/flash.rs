//! `coreforge flash` and `build-image --bmap` with a real pi3 image: to a loop device and a
//! file, against Debian's `bmaptool` (the same card from both; a tampered bmap refused by
//! both), the refusals (not a block device, mounted, too small), and a card that fails part
//! way (a full file system under the target). Needs root for loop devices and mounts: as
//! root (CI) it runs, and when `CI` is set anything missing is a failure.

mod common;
use common::show;
use common::world::world;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The prerequisites (root, losetup, bmaptool); `None` means skip (only outside CI).
fn prerequisites() -> Option<()> {
    let root = rustix::process::geteuid().is_root();
    let tools = ["losetup", "bmaptool", "mount"].iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if root && tools {
        return Some(());
    }
    let why = format!("root: {root}, losetup/bmaptool/mount installed: {tools} (cross/setup.sh installs bmap-tools)");
    assert!(std::env::var_os("CI").is_none(), "flash tests need {why}");
    eprintln!("skipping the flash tests outside CI: {why}");
    None
}

/// The pi3 image and its bmap, built once per test process.
fn image() -> &'static (PathBuf, PathBuf) {
    static IMAGE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let w = world();
        let model = w.model("flash", "arm64", "pi3", "");
        let (img, bmap) = (w.path("flash.img"), w.path("flash.bmap"));
        let out = w.build(&model, &img, &["--bmap", bmap.to_str().unwrap()]);
        assert!(out.status.success(), "{}", show(&out));
        (img, bmap)
    })
}

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn ok(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(out.status.success(), "{cmd} {args:?}: {}", show(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn coreforge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_coreforge"))
        .args(args)
        .output()
        .unwrap()
}

/// A loop device over a new sparse file of `size` bytes, detached on drop.
struct Loop {
    device: String,
    file: PathBuf,
}

impl Loop {
    fn new(name: &str, size: u64) -> Loop {
        let file = world().path(name);
        let f = fs::File::create(&file).unwrap();
        f.set_len(size).unwrap();
        let device = ok(
            "losetup",
            &["--find", "--show", "--partscan", file.to_str().unwrap()],
        )
        .trim()
        .to_owned();
        Loop { device, file }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = run("umount", &[&format!("{}p2", self.device)]);
        let _ = run("losetup", &["-d", &self.device]);
        let _ = fs::remove_file(&self.file);
    }
}

/// The first `len` bytes of `path` equal the image's, the rest (if any) is zeros.
fn same_as_image(path: &Path, len: u64) {
    let (img, _) = image();
    let want = fs::read(img).unwrap();
    let got = fs::read(path).unwrap();
    assert_eq!(want.len() as u64, len);
    assert!(
        got[..want.len()] == want[..],
        "{} differs from the image",
        path.display()
    );
    assert!(got[want.len()..].iter().all(|b| *b == 0));
}

#[test]
fn flash_to_a_loop_device_and_bmaptool_write_the_same_card() {
    if prerequisites().is_none() {
        return;
    }
    let (img, bmap) = image();
    let size = fs::metadata(img).unwrap().len();
    let card = Loop::new("card-a.raw", size + (64 << 20));
    let out = coreforge(&[
        "flash",
        "--bmap",
        bmap.to_str().unwrap(),
        img.to_str().unwrap(),
        &card.device,
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("read back and verified"), "{said}");
    ok("sync", &[]);
    same_as_image(&card.file, size);

    // Debian's bmaptool takes the same bmap and writes the same card.
    let other = world().path("card-b.raw");
    fs::File::create(&other)
        .unwrap()
        .set_len(size + (64 << 20))
        .unwrap();
    ok(
        "bmaptool",
        &[
            "copy",
            "--bmap",
            bmap.to_str().unwrap(),
            img.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
    );
    // (bmaptool cuts a file target to the image's size; the loop card is larger.)
    let (theirs, ours) = (fs::read(&other).unwrap(), fs::read(&card.file).unwrap());
    assert_eq!(theirs.len() as u64, size);
    assert!(
        theirs[..] == ours[..theirs.len()],
        "bmaptool and coreforge flash wrote different cards"
    );
    let _ = fs::remove_file(&other);

    // Without a bmap: the image's own holes; to a file with --force.
    let file = world().path("card-c.raw");
    let out = coreforge(&[
        "flash",
        "--force",
        img.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    same_as_image(&file, size);
    let _ = fs::remove_file(&file);
}

#[test]
fn a_tampered_bmap_is_refused_by_both_tools() {
    if prerequisites().is_none() {
        return;
    }
    let (img, bmap) = image();
    let text = fs::read_to_string(bmap).unwrap();
    // One range's checksum changed (the file's own checksum then no longer matches).
    let i = text.find("chksum=\"").unwrap() + 8;
    let mut bad = text.clone();
    let c = if &text[i..i + 1] == "0" { "1" } else { "0" };
    bad.replace_range(i..i + 1, c);
    let tampered = world().path("tampered.bmap");
    fs::write(&tampered, bad).unwrap();
    let target = world().path("card-t.raw");
    let out = coreforge(&[
        "flash",
        "--force",
        "--bmap",
        tampered.to_str().unwrap(),
        img.to_str().unwrap(),
        target.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("checksum does not match"), "{err}");
    assert!(
        !target.exists(),
        "a refused flash wrote {}",
        target.display()
    );
    let out = run(
        "bmaptool",
        &[
            "copy",
            "--bmap",
            tampered.to_str().unwrap(),
            img.to_str().unwrap(),
            target.to_str().unwrap(),
        ],
    );
    assert!(
        !out.status.success(),
        "bmaptool took a tampered bmap: {}",
        show(&out)
    );
    let _ = fs::remove_file(&target);
}

#[test]
fn refusals_write_nothing() {
    if prerequisites().is_none() {
        return;
    }
    let (img, _) = image();
    let size = fs::metadata(img).unwrap().len();
    let img = img.to_str().unwrap();

    // A regular file without --force.
    let file = world().path("not-a-card");
    fs::write(&file, b"keep me").unwrap();
    let out = coreforge(&["flash", img, file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a block device"),
        "{}",
        show(&out)
    );
    assert_eq!(fs::read(&file).unwrap(), b"keep me");

    // A card smaller than the image.
    let small = Loop::new("card-small.raw", size / 2);
    let out = coreforge(&["flash", img, &small.device]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use a larger card"),
        "{}",
        show(&out)
    );
    assert!(
        fs::read(&small.file).unwrap().iter().all(|b| *b == 0),
        "the small card was written"
    );

    // A card whose partition is mounted (writable, ext4).
    let card = Loop::new("card-mounted.raw", size + (8 << 20));
    let out = coreforge(&["flash", "--force", img, &card.device]);
    assert!(out.status.success(), "{}", show(&out));
    let dir = world().path("mnt");
    fs::create_dir_all(&dir).unwrap();
    ok("partx", &["-u", &card.device]);
    ok(
        "mount",
        &[
            "-o",
            "ro",
            &format!("{}p2", card.device),
            dir.to_str().unwrap(),
        ],
    );
    let before = fs::read(&card.file).unwrap();
    let out = coreforge(&["flash", img, &card.device]);
    let _ = run("umount", &[dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use") && err.contains("p2"), "{err}");
    assert!(
        fs::read(&card.file).unwrap() == before,
        "the mounted card was written"
    );
}

#[test]
fn a_card_that_fails_part_way_stops_with_the_offset_and_does_not_look_bootable() {
    if prerequisites().is_none() {
        return;
    }
    let (img, _) = image();
    // A target on a file system that fills up a third of the way: writes fail with ENOSPC,
    // as a pulled card fails with EIO.
    let dir = world().path("full");
    fs::create_dir_all(&dir).unwrap();
    ok(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=24m",
            "tmpfs",
            dir.to_str().unwrap(),
        ],
    );
    let target = dir.join("card.raw");
    let out = coreforge(&[
        "flash",
        "--force",
        img.to_str().unwrap(),
        target.to_str().unwrap(),
    ]);
    let sector0 = fs::read(&target).map(|b| b[..512].to_vec());
    let _ = run("umount", &[dir.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("failed at byte") && err.contains("will not boot"),
        "{err}"
    );
    let sector0 = sector0.unwrap();
    assert!(
        sector0.iter().all(|b| *b == 0),
        "an interrupted flash left a partition table"
    );
}
