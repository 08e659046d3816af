//! The seed's walk-through, end to end, as a brand would type it: create a key,
//! set up a store, register the key, upload and release the board snaps to
//! `beta`, sign a pi3 model, `build-image -c beta -o pi3-test.img` with one
//! `--extra-snaps`, inspect the image, and boot it under QEMU until the agent
//! prints the brand and model. Then the ways it must refuse.
//!
//! Needs the board snaps (`board-support/snaps/build.sh`), the cross-built
//! agent (`cross/build-agent.sh`), mtools and QEMU (`cross/setup.sh`).

mod common;
use common::show;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use coreforge_assertions::{Assertion, SnapRevision};

const BOARD_SNAPS: &[&str] = &["pi3", "qemu-virt", "pi2-kernel", "core"];

/// A key, a store with the board snaps released to beta, and a tiny app snap.
struct World {
    dir: PathBuf,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::create)
}

fn snaps_cache() -> PathBuf {
    let cache = std::env::var_os("COREFORGE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/coreforge")
        });
    cache.join("snaps")
}

/// The built board snap `name` for `arch`; fails with what to run when missing.
fn board_snap(name: &str, arch: &str) -> PathBuf {
    let dir = snaps_cache();
    let found = fs::read_dir(&dir).ok().and_then(|entries| {
        entries.filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
            let f = p.file_name().unwrap().to_string_lossy();
            f.starts_with(&format!("{name}_")) && f.ends_with(&format!("_{arch}.snap"))
        })
    });
    found.unwrap_or_else(|| {
        panic!(
            "board snap {name} for {arch} is missing in {}: run board-support/snaps/build.sh all",
            dir.display()
        )
    })
}

/// Runs a workspace script (cached builds: cheap when nothing changed).
fn prepare(script: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(root.join(script))
        .arg("all")
        // The outer cargo's jobserver and target dir are not for these builds.
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    assert!(
        out.status.success(),
        "{script} all failed (run cross/setup.sh first):\n{}",
        show(&out)
    );
}

impl World {
    fn create() -> World {
        prepare("cross/build-agent.sh");
        prepare("board-support/snaps/build.sh");
        // One directory per test process, so that concurrent runs do not share a store;
        // those of processes that have ended are removed (images are hundreds of MiB).
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for e in fs::read_dir(tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("walkthrough-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tmp.join(format!("walkthrough-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let w = World { dir };
        fs::write(w.path("pass"), "brand passphrase\n").unwrap();
        let pass = w.path("pass");
        let pass = pass.to_str().unwrap();
        w.ok(&["create-key", "--account", "acme", "--passphrase-file", pass]);
        w.ok(&["store", "init", w.store()]);
        w.ok(&["register-key", "default", "--store", w.store()]);
        for arch in ["arm64", "armhf"] {
            for name in BOARD_SNAPS {
                w.publish(&board_snap(name, arch), name, "beta");
            }
        }
        // The extra snap: a tiny app, for every architecture.
        let hello = w.pack(
            "hello",
            &[
                (
                    "meta/snap.yaml",
                    "name: hello\nversion: '1.0'\ntype: app\narchitectures: [all]\n",
                ),
                ("bin/hello", "#!/bin/sh\necho hello\n"),
            ],
        );
        w.publish(&hello, "hello", "stable");
        w
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Packs a snap from `files` (path, content) under a new directory `name`.
    fn pack(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let src = self.path(name);
        for (rel, content) in files {
            let p = src.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
        }
        let packed = self.path(&format!("{name}.snap"));
        self.ok(&[
            "pack",
            src.to_str().unwrap(),
            "-o",
            packed.to_str().unwrap(),
        ]);
        packed
    }

    /// Uploads `snap` to the store and releases the new revision of `name` to `channel`.
    fn publish(&self, snap: &Path, name: &str, channel: &str) {
        let out = self.ok(&["store", "upload", self.store(), snap.to_str().unwrap()]);
        let rev = out.split_whitespace().nth(1).unwrap().to_owned();
        self.ok(&["store", "release", self.store(), name, &rev, channel]);
    }

    fn store(&self) -> &str {
        static STORE: OnceLock<String> = OnceLock::new();
        STORE.get_or_init(|| self.path("store").to_string_lossy().into_owned())
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_coreforge"))
            .args(args)
            .env("COREFORGE_KEYS", self.path("keys"))
            .env("SOURCE_DATE_EPOCH", "1764028800")
            .env_remove("COREFORGE_PASSPHRASE")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "coreforge {args:?}:\n{}", show(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "coreforge {args:?}:\n{}",
            show(&out)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Signs a series-16 model for `gadget` on `arch` with the registered key.
    fn model(&self, name: &str, arch: &str, gadget: &str, extra: &str) -> PathBuf {
        let json = self.path(&format!("{name}.json"));
        fs::write(
            &json,
            format!(
                r#"{{"type": "model", "series": "16", "brand-id": "acme", "model": "{name}",
                    "architecture": "{arch}", "gadget": "{gadget}", "kernel": "pi2-kernel",
                    "timestamp": "2026-01-01T00:00:00+00:00"{extra}}}"#
            ),
        )
        .unwrap();
        let signed = self.ok(&[
            "sign",
            "--update-timestamp",
            "--passphrase-file",
            self.path("pass").to_str().unwrap(),
            json.to_str().unwrap(),
        ]);
        let model = self.path(&format!("{name}.model"));
        fs::write(&model, signed).unwrap();
        model
    }

    /// Runs `build-image` expecting it to refuse: returns its error, checks `out` was not written.
    fn refused(&self, model: &Path, out: &Path, channel: &str, extra: &[&str]) -> String {
        let mut args = vec![
            "build-image",
            "-c",
            channel,
            "--store",
            self.store(),
            "-o",
            out.to_str().unwrap(),
            model.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let err = self.fails(&args);
        assert!(!out.exists(), "a refused build left {}", out.display());
        err
    }

    fn build(&self, model: &Path, out: &Path, extra: &[&str]) -> Output {
        let mut args = vec![
            "build-image",
            "-c",
            "beta",
            "--store",
            self.store(),
            "-o",
            out.to_str().unwrap(),
            model.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

fn mtools(image: &Path, offset: u64, args: &[&str], tool: &str) -> Vec<u8> {
    let spec = format!("{}@@{offset}", image.display());
    let out = Command::new(tool)
        .arg("-i")
        .arg(&spec)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}: run cross/setup.sh"));
    assert!(out.status.success(), "{tool} {args:?}:\n{}", show(&out));
    out.stdout
}

fn fat_read(image: &Path, offset: u64, path: &str) -> Vec<u8> {
    mtools(image, offset, &["-n", &format!("::{path}"), "-"], "mcopy")
}

/// MBR partitions: (type, start byte, size bytes).
fn mbr(image: &Path) -> Vec<(u8, u64, u64)> {
    let head = {
        use std::io::Read;
        let mut b = vec![0u8; 512];
        fs::File::open(image).unwrap().read_exact(&mut b).unwrap();
        b
    };
    assert_eq!(&head[510..], &[0x55, 0xAA], "no MBR signature");
    (0..4)
        .map(|i| &head[446 + 16 * i..446 + 16 * (i + 1)])
        .filter(|e| e[4] != 0)
        .map(|e| {
            let lba = u32::from_le_bytes(e[8..12].try_into().unwrap()) as u64;
            let n = u32::from_le_bytes(e[12..16].try_into().unwrap()) as u64;
            (e[4], lba * 512, n * 512)
        })
        .collect()
}

#[test]
fn pi3_walkthrough_builds_inspects_and_boots() {
    let w = world();
    let model = w.model("pi3", "arm64", "pi3", "");
    let image = w.path("pi3-test.img");
    let out = w.build(&model, &image, &["--extra-snaps", "hello"]);
    assert!(out.status.success(), "build-image:\n{}", show(&out));

    // The partition table: FAT32 (LBA) system-boot, then Linux writable.
    let parts = mbr(&image);
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts[0].0, 0x0C);
    assert_eq!(parts[1].0, 0x83);
    assert_eq!(parts[0].1, 1 << 20, "system-boot starts at 1 MiB");
    assert!(parts[1].1 >= parts[0].1 + parts[0].2, "partitions overlap");
    let len = fs::metadata(&image).unwrap().len();
    assert!(parts[1].1 + parts[1].2 <= len);
    let boot = parts[0].1;

    // The FAT: label, firmware, kernel, initramfs, configs, the seed.
    let listing = String::from_utf8(mtools(&image, boot, &["-/", "-b", "::"], "mdir")).unwrap();
    for want in [
        "::/bootcode.bin",
        "::/start.elf",
        "::/config.txt",
        "::/cmdline.txt",
        "::/kernel.img",
        "::/initrd.img",
        "::/bcm2837-rpi-3-b.dtb",
    ] {
        assert!(
            listing.lines().any(|l| l.eq_ignore_ascii_case(want)),
            "{want} missing:\n{listing}"
        );
    }
    let dir = String::from_utf8(mtools(&image, boot, &["::"], "mdir")).unwrap();
    assert!(dir.contains("Volume in drive : is system-boot"), "{dir}");

    let system = listing
        .lines()
        .find_map(|l| {
            l.strip_prefix("::/systems/")
                .and_then(|r| r.strip_suffix("/model"))
        })
        .unwrap_or_else(|| panic!("no systems/<label>/model:\n{listing}"))
        .to_owned();
    assert_eq!(system, "20251125", "seed label from SOURCE_DATE_EPOCH");
    let seeded_model = fat_read(&image, boot, &format!("systems/{system}/model"));
    let signed = fs::read(&model).unwrap();
    assert_eq!(seeded_model, signed.strip_suffix(b"\n").unwrap_or(&signed));
    let model_etc = Assertion::decode_all(&fat_read(
        &image,
        boot,
        &format!("systems/{system}/assertions/model-etc"),
    ))
    .unwrap();
    let types: Vec<_> = model_etc.iter().map(|a| a.type_name()).collect();
    assert!(
        types.contains(&"account") && types.contains(&"account-key"),
        "{types:?}"
    );

    // Every seeded snap matches its snap-revision (size and SHA3-384).
    let revisions: Vec<SnapRevision> = Assertion::decode_all(&fat_read(
        &image,
        boot,
        &format!("systems/{system}/assertions/snaps"),
    ))
    .unwrap()
    .iter()
    .filter(|a| a.type_name() == "snap-revision")
    .map(|a| SnapRevision::from_assertion(a).unwrap())
    .collect();
    let seeded: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.strip_prefix("::/snaps/"))
        .filter(|f| !f.is_empty())
        .collect();
    let mut names: Vec<&str> = seeded
        .iter()
        .map(|f| f.split('_').next().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["core", "hello", "pi2-kernel", "pi3"], "{seeded:?}");
    assert_eq!(revisions.len(), 4);
    for f in &seeded {
        let bytes = fat_read(&image, boot, &format!("snaps/{f}"));
        let digest = common::sha3_b64url(&bytes);
        let rev = revisions
            .iter()
            .find(|r| r.snap_sha3_384 == digest)
            .unwrap_or_else(|| panic!("snaps/{f}: no snap-revision with its SHA3-384"));
        assert_eq!(rev.snap_size, bytes.len() as u64, "{f}");
        assert!(
            f.ends_with(&format!("_{}.snap", rev.snap_revision)),
            "{f} vs revision {}",
            rev.snap_revision
        );
    }

    // Byte for byte reproducible under SOURCE_DATE_EPOCH.
    let again = w.path("pi3-again.img");
    let out = w.build(&model, &again, &["--extra-snaps", "hello"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        fs::read(&image).unwrap() == fs::read(&again).unwrap(),
        "two builds differ"
    );
    fs::remove_file(&again).unwrap();

    boot_until_model(&image, "raspi3b");
}

/// Boots `image` with `coreforge boot` until the agent has verified the model and the seed.
fn boot_until_model(image: &Path, machine: &str) {
    let w = world();
    let out = w.run(&[
        "boot",
        image.to_str().unwrap(),
        "--machine",
        machine,
        "--timeout",
        "240",
        "--expect",
        "model verified: brand=acme model=",
        // The agent hashes every seeded snap against its snap-revision.
        "--expect",
        "seed verified: ",
    ]);
    assert!(out.status.success(), "boot on {machine}:\n{}", show(&out));
}

/// Builds an image for a fresh model and boots it on `machine` until the seed verifies.
fn build_and_boot(name: &str, arch: &str, gadget: &str, machine: &str) {
    let w = world();
    let model = w.model(name, arch, gadget, "");
    let image = w.path(&format!("{name}.img"));
    let out = w.build(&model, &image, &[]);
    assert!(out.status.success(), "{}", show(&out));
    boot_until_model(&image, machine);
    fs::remove_file(&image).unwrap();
}

#[test]
fn armhf_pi_image_boots_on_raspi2b() {
    build_and_boot("pi3-armhf", "armhf", "pi3", "raspi2b");
}

#[test]
fn virt_image_boots_on_virt() {
    build_and_boot("virt", "arm64", "qemu-virt", "virt");
}

#[test]
fn refuses_an_unsigned_or_tampered_model_and_writes_nothing() {
    let w = world();
    let model = w.model("tampered", "arm64", "pi3", "");
    let text = fs::read_to_string(&model)
        .unwrap()
        .replace("model: tampered", "model: tampereD");
    let bad = w.path("tampered-bad.model");
    fs::write(&bad, text).unwrap();
    let out_img = w.path("never.img");
    let err = w.refused(&bad, &out_img, "beta", &[]);
    assert!(
        err.contains("does not verify") && err.contains("signature"),
        "{err}"
    );
    // The JSON itself is not a signed model.
    let err = w.refused(&w.path("tampered.json"), &out_img, "beta", &[]);
    assert!(err.contains("cannot decode"), "{err}");
}

#[test]
fn refuses_a_kernel_missing_from_the_channel() {
    let w = world();
    let model = w.model("nokernel", "arm64", "pi3", "");
    // Released to beta only: stable has nothing to fall back to.
    let err = w.refused(&model, &w.path("nokernel.img"), "stable", &[]);
    assert!(err.contains("pi3") || err.contains("pi2-kernel"), "{err}");
    assert!(err.contains("stable"), "{err}");
}

#[test]
fn refuses_an_architecture_mismatch() {
    let w = world();
    let model = w.model("archmix", "arm64", "pi3", "");
    let out_img = w.path("archmix.img");
    let armhf_core = board_snap("core", "armhf");
    let err = w.refused(
        &model,
        &out_img,
        "beta",
        &["--extra-snaps", armhf_core.to_str().unwrap()],
    );
    // core is already the model's base: a second one is refused, not silently dropped.
    assert!(err.contains("core") && err.contains("already"), "{err}");
    let packed = w.pack(
        "foreign",
        &[(
            "meta/snap.yaml",
            "name: foreign\nversion: '1'\ntype: app\narchitectures: [armhf]\n",
        )],
    );
    let err = w.refused(
        &model,
        &out_img,
        "beta",
        &["--extra-snaps", packed.to_str().unwrap()],
    );
    assert!(
        err.contains("is for armhf") && err.contains("arm64"),
        "{err}"
    );
}

#[test]
fn refuses_a_corrupt_gadget_yaml() {
    let w = world();
    // A gadget with a broken gadget.yaml (a structure without a size), released to beta.
    let bad = w.pack(
        "badgadget",
        &[
            (
                "meta/snap.yaml",
                "name: badgadget\nversion: '1'\ntype: gadget\narchitectures: [arm64]\n",
            ),
            (
                "meta/gadget.yaml",
                "volumes:\n  pi:\n    schema: mbr\n    structure:\n      - name: system-boot\n        type: 0C\n        filesystem: vfat\n",
            ),
        ],
    );
    w.publish(&bad, "badgadget", "beta");
    let model = w.model("badgadget", "arm64", "badgadget", "");
    let err = w.refused(&model, &w.path("badgadget.img"), "beta", &[]);
    assert!(err.contains("gadget.yaml") && err.contains("size"), "{err}");
}

#[test]
fn refuses_local_snaps_for_a_model_that_is_not_dangerous() {
    let w = world();
    let model = w.model("nolocal", "arm64", "pi3", "");
    let core = board_snap("core", "arm64");
    let local = format!("core={}", core.display());
    let err = w.refused(&model, &w.path("nolocal.img"), "beta", &["--snap", &local]);
    assert!(err.contains("--snap") && err.contains("dangerous"), "{err}");
}
