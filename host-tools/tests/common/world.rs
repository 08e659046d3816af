//! A key, a local store with the board snaps released to `beta`, and helpers to build images
//! with `coreforge build-image` and read them back (mtools): shared by the image tests.
//!
//! Needs the board snaps (`board-support/snaps/build.sh`), the cross-built agent
//! (`cross/build-agent.sh`), mtools and QEMU (`cross/setup.sh`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use super::show;

pub const BOARD_SNAPS: &[&str] = &["pi3", "qemu-virt", "pi2-kernel", "core"];

/// A key, a store with the board snaps released to beta, and a tiny app snap.
pub struct World {
    pub dir: PathBuf,
}

pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::create)
}

pub fn snaps_cache() -> PathBuf {
    let cache = std::env::var_os("COREFORGE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/coreforge")
        });
    cache.join("snaps")
}

/// The built board snap `name` for `arch`; fails with what to run when missing.
pub fn board_snap(name: &str, arch: &str) -> PathBuf {
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
pub fn prepare(script: &str) {
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
    pub fn create() -> World {
        // A prebuilt agent (build-image reads $COREFORGE_AGENT_DIR first) needs no cross build.
        if std::env::var_os("COREFORGE_AGENT_DIR").is_none() {
            prepare("cross/build-agent.sh");
        }
        prepare("board-support/snaps/build.sh");
        // One directory per test process, so that concurrent runs do not share a store;
        // those of processes that have ended are removed (images are hundreds of MiB).
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for e in fs::read_dir(tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("world-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tmp.join(format!("world-{}", std::process::id()));
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

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Packs a snap from `files` (path, content) under a new directory `name`.
    pub fn pack(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
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
    pub fn publish(&self, snap: &Path, name: &str, channel: &str) {
        let out = self.ok(&["store", "upload", self.store(), snap.to_str().unwrap()]);
        let rev = out.split_whitespace().nth(1).unwrap().to_owned();
        self.ok(&["store", "release", self.store(), name, &rev, channel]);
    }

    pub fn store(&self) -> &str {
        static STORE: OnceLock<String> = OnceLock::new();
        STORE.get_or_init(|| self.path("store").to_string_lossy().into_owned())
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// [`World::run`] with more environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_coreforge"))
            .args(args)
            .envs(env.iter().copied())
            .env("COREFORGE_KEYS", self.path("keys"))
            .env("SOURCE_DATE_EPOCH", "1764028800")
            .env_remove("COREFORGE_PASSPHRASE")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "coreforge {args:?}:\n{}", show(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn fails(&self, args: &[&str]) -> String {
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
    pub fn model(&self, name: &str, arch: &str, gadget: &str, extra: &str) -> PathBuf {
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
    pub fn refused(&self, model: &Path, out: &Path, channel: &str, extra: &[&str]) -> String {
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

    pub fn build(&self, model: &Path, out: &Path, extra: &[&str]) -> Output {
        self.build_env(model, out, extra, &[])
    }

    /// [`World::build`] with more environment variables.
    pub fn build_env(
        &self,
        model: &Path,
        out: &Path,
        extra: &[&str],
        env: &[(&str, &Path)],
    ) -> Output {
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
        self.run_env(&args, env)
    }
}

pub fn mtools(image: &Path, offset: u64, args: &[&str], tool: &str) -> Vec<u8> {
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

pub fn fat_read(image: &Path, offset: u64, path: &str) -> Vec<u8> {
    mtools(image, offset, &["-n", &format!("::{path}"), "-"], "mcopy")
}

/// MBR partitions: (type, start byte, size bytes).
pub fn mbr(image: &Path) -> Vec<(u8, u64, u64)> {
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
