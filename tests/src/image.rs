//! Images for the end-to-end tests, built the way a brand builds them (the flow of
//! `host-tools/tests/walkthrough.rs`): a key, a local store with the board snaps released to
//! `beta`, a signed model, `coreforge build-image`. Then the boot files QEMU needs, read out
//! of the image's `system-boot` partition as the firmware would, and copy-on-write disks
//! over one image so that scenarios share an image but not a device.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, ensure, Context};
use coreforge_boards::{Arch, Board};

/// The board snaps every world publishes (per architecture it is asked for); which file is
/// published as `core` depends on the world's [`Os`].
const BOARD_SNAPS: &[&str] = &["pi3", "qemu-virt", "pi2-kernel", "core"];

/// The OS snap a world publishes as `core` (type os), both built by
/// `board-support/snaps/build.sh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// The test fixture `board-support/snaps/core-busybox` (file `core-busybox_*.snap`, named
    /// `core` in its snap.yaml): busybox init, dropbear. What [`world`] publishes.
    Busybox,
    /// The Debian bookworm base `board-support/snaps/core` (file `core_bookworm-*.snap`):
    /// systemd, openssh-server, sudo, wpasupplicant. What [`os_world`] publishes, and what
    /// users get.
    Debian,
}

impl Os {
    /// The cache file name prefix (`<prefix>_<version>_<arch>.snap`) of the snap a world of
    /// this flavour publishes as board snap `name`.
    pub fn file_prefix(self, name: &str) -> &str {
        match (self, name) {
            (Os::Busybox, "core") => "core-busybox",
            _ => name,
        }
    }
}

/// `SOURCE_DATE_EPOCH` for every build: the images are reproducible.
const EPOCH: &str = "1764028800";

/// A key, a local store with one architecture's board snaps released to beta, and the
/// `coreforge` binary; one per test process, [`Os`] and architecture (see [`world`],
/// [`os_world`] and [`os_world_armhf`]).
#[derive(Debug)]
pub struct World {
    dir: PathBuf,
    coreforge: PathBuf,
    os: Os,
    arch: Arch,
}

/// The process's world whose `core` is the busybox fixture ([`Os::Busybox`]), made on first
/// use (builds the agent, the board snaps and coreforge). Its images boot into busybox init
/// and dropbear.
pub fn world() -> anyhow::Result<&'static World> {
    static WORLD: OnceLock<Result<World, String>> = OnceLock::new();
    world_of(&WORLD, Os::Busybox, Arch::Arm64)
}

/// The process's world whose `core` is the Debian base ([`Os::Debian`]): the same key,
/// models and [`World`] methods as [`world`], in a store of its own, so its images hand over
/// to systemd, openssh-server and sudo. For the tests of the real OS:
///
/// ```no_run
/// let w = coreforge_tests::image::os_world()?;
/// let model = w.model("debian", "qemu-virt")?;
/// let image = w.build_image("debian", &model, &[])?;
/// # anyhow::Ok(())
/// ```
pub fn os_world() -> anyhow::Result<&'static World> {
    static WORLD: OnceLock<Result<World, String>> = OnceLock::new();
    world_of(&WORLD, Os::Debian, Arch::Arm64)
}

/// [`os_world`] for armhf (the seed's own pi3 model): armhf board snaps, the armv7 agent,
/// models for `armhf`.
pub fn os_world_armhf() -> anyhow::Result<&'static World> {
    static WORLD: OnceLock<Result<World, String>> = OnceLock::new();
    world_of(&WORLD, Os::Debian, Arch::Armhf)
}

fn world_of(
    cell: &'static OnceLock<Result<World, String>>,
    os: Os,
    arch: Arch,
) -> anyhow::Result<&'static World> {
    cell.get_or_init(|| World::create(os, arch).map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("setting up the image world ({os:?}): {e}"))
}

impl World {
    fn create(flavour: Os, arch: Arch) -> anyhow::Result<World> {
        // build-image puts the cross-built agent for the model's architecture in the initramfs.
        let agent = match arch {
            Arch::Arm64 => "aarch64",
            Arch::Armhf => "armhf",
        };
        run_script("cross/build-agent.sh", &[agent])?;
        run_script("board-support/snaps/build.sh", &[arch.debian_name()])?;
        let coreforge = build_coreforge()?;
        // One directory per test process; those of processes that have ended are removed.
        let base = crate::workspace_root().join("target/coreforge-tests");
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // world-<pid> (busybox) and world-<pid>-debian.
            if let Some(pid) = name.strip_prefix("world-") {
                let pid = pid.split('-').next().unwrap_or(pid);
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let suffix = match (flavour, arch) {
            (Os::Busybox, _) => "",
            (Os::Debian, Arch::Arm64) => "-debian",
            (Os::Debian, Arch::Armhf) => "-debian-armhf",
        };
        let dir = crate::scratch_dir(&format!("world-{}{suffix}", std::process::id()))?;
        let w = World {
            dir,
            coreforge,
            os: flavour,
            arch,
        };
        std::fs::write(w.path("pass"), "brand passphrase\n")?;
        let pass = w.path("pass");
        let pass = pass.as_os_str();
        w.ok([
            os("create-key"),
            os("--account"),
            os("acme"),
            os("--passphrase-file"),
            pass,
        ])?;
        let store = w.path("store");
        let store = store.as_os_str();
        w.ok([os("store"), os("init"), store])?;
        w.ok([os("register-key"), os("default"), os("--store"), store])?;
        for name in BOARD_SNAPS {
            w.release(&os_board_snap(flavour, name, arch.debian_name())?, name)?;
        }
        Ok(w)
    }

    /// Uploads the snap `file` (named `name`) to the world's store and releases it to beta.
    pub fn release(&self, file: &Path, name: &str) -> anyhow::Result<()> {
        let store = self.path("store");
        let out = self.ok([
            os("store"),
            os("upload"),
            store.as_os_str(),
            file.as_os_str(),
        ])?;
        let rev = out
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| anyhow!("store upload printed no revision: {out:?}"))?
            .to_string();
        self.ok([
            os("store"),
            os("release"),
            store.as_os_str(),
            os(name),
            os(&rev),
            os("beta"),
        ])?;
        Ok(())
    }

    /// Packs the snap tree `tree` with `coreforge pack` as `<name>.snap` in the world's
    /// folder and releases it to beta (see [`World::release`]).
    pub fn publish(&self, tree: &Path, name: &str) -> anyhow::Result<()> {
        let file = self.path(&format!("{name}.snap"));
        let _ = std::fs::remove_file(&file);
        self.ok([os("pack"), tree.as_os_str(), os("-o"), file.as_os_str()])?;
        self.release(&file, name)
    }

    /// Which OS snap the world's store serves as `core`.
    pub fn os(&self) -> Os {
        self.os
    }

    /// A file in the world's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The `coreforge` binary the world uses.
    pub fn coreforge(&self) -> &Path {
        &self.coreforge
    }

    /// Runs `coreforge ARGS` with the world's keys; returns its output whatever it is.
    pub fn run<S: AsRef<OsStr>>(
        &self,
        args: impl IntoIterator<Item = S>,
    ) -> anyhow::Result<Output> {
        Command::new(&self.coreforge)
            .args(args)
            .env("COREFORGE_KEYS", self.path("keys"))
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env_remove("COREFORGE_PASSPHRASE")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.coreforge.display()))
    }

    /// Like [`World::run`], failing unless it succeeded; returns stdout.
    pub fn ok<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> anyhow::Result<String> {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.run(&args)?;
        ensure!(
            out.status.success(),
            "coreforge {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Signs a model `name` for `gadget` on the world's architecture (kernel pi2-kernel,
    /// base core).
    pub fn model(&self, name: &str, gadget: &str) -> anyhow::Result<PathBuf> {
        let json = self.path(&format!("{name}.json"));
        let arch = self.arch.debian_name();
        std::fs::write(
            &json,
            format!(
                r#"{{"type": "model", "series": "16", "brand-id": "acme", "model": "{name}",
                    "architecture": "{arch}", "gadget": "{gadget}", "kernel": "pi2-kernel",
                    "timestamp": "2026-01-01T00:00:00+00:00"}}"#
            ),
        )?;
        let pass = self.path("pass");
        let signed = self.ok([
            os("sign"),
            os("--update-timestamp"),
            os("--passphrase-file"),
            pass.as_os_str(),
            json.as_os_str(),
        ])?;
        let model = self.path(&format!("{name}.model"));
        std::fs::write(&model, signed)?;
        Ok(model)
    }

    /// `build-image -c beta` of `model` into `<name>.img` with `extra` arguments.
    pub fn build_image(
        &self,
        name: &str,
        model: &Path,
        extra: &[OsString],
    ) -> anyhow::Result<PathBuf> {
        let image = self.path(&format!("{name}.img"));
        let store = self.path("store");
        let mut args: Vec<&OsStr> = vec![
            os("build-image"),
            os("-c"),
            os("beta"),
            os("--store"),
            store.as_os_str(),
            os("-o"),
            image.as_os_str(),
        ];
        args.extend(extra.iter().map(OsString::as_os_str));
        args.push(model.as_os_str());
        self.ok(args)?;
        Ok(image)
    }
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Runs a workspace script (its own cache makes repeated runs cheap).
fn run_script(script: &str, args: &[&str]) -> anyhow::Result<()> {
    let path = crate::workspace_root().join(script);
    let out = Command::new(&path)
        .args(args)
        // The outer cargo's jobserver and target dir are not for these builds.
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .with_context(|| format!("running {}", path.display()))?;
    ensure!(
        out.status.success(),
        "{script} {args:?} failed (run cross/setup.sh first):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Builds the `coreforge` CLI with the profile the tests run under; returns its path.
fn build_coreforge() -> anyhow::Result<PathBuf> {
    // The test binary is <target>/<profile>/deps/<test>: coreforge lands in <target>/<profile>.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot place {} in a target dir", exe.display()))?;
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(crate::workspace_root())
        .args(["build", "-q", "-p", "coreforge", "--bin", "coreforge"])
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS");
    if profile_dir.file_name() == Some(OsStr::new("release")) {
        cmd.arg("--release");
    }
    if let Some(target) = profile_dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let out = cmd.output().context("running cargo build -p coreforge")?;
    ensure!(
        out.status.success(),
        "cargo build -p coreforge failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = profile_dir.join("coreforge");
    ensure!(bin.is_file(), "cargo built no {}", bin.display());
    Ok(bin)
}

/// The built board snap that [`world`] publishes as `name` for `arch`, in the cache: for
/// `core`, the busybox fixture (`core-busybox_*.snap`).
pub fn board_snap(name: &str, arch: &str) -> anyhow::Result<PathBuf> {
    os_board_snap(Os::Busybox, name, arch)
}

/// The built board snap that a world of flavour `os` publishes as `name` for `arch`.
pub fn os_board_snap(os: Os, name: &str, arch: &str) -> anyhow::Result<PathBuf> {
    let name = os.file_prefix(name);
    let dir = crate::cache_dir().join("snaps");
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let f = p.file_name().unwrap_or_default().to_string_lossy();
            f.starts_with(&format!("{name}_")) && f.ends_with(&format!("_{arch}.snap"))
        })
        .ok_or_else(|| {
            anyhow!(
                "board snap {name} for {arch} is missing in {}: run board-support/snaps/build.sh",
                dir.display()
            )
        })
}

/// What QEMU needs to boot an image as the board's firmware would: kernel, initramfs,
/// device tree and command line words, read out of its `system-boot` partition.
#[derive(Debug, Clone)]
pub struct BootFiles {
    /// The image (never written: devices write to an overlay).
    pub image: PathBuf,
    /// The board the image is booted as.
    pub board: &'static Board,
    /// The kernel, uncompressed when the machine needs it.
    pub kernel: PathBuf,
    /// The initramfs with the agent.
    pub initrd: PathBuf,
    /// The device tree for machines that need one.
    pub dtb: Option<PathBuf>,
    /// `cmdline.txt` without its `console=` words (the board's consoles stand).
    pub cmdline: String,
}

impl BootFiles {
    /// Reads the boot files of `image` for `board` into `dir` (with mtools).
    pub fn read(image: &Path, board: &'static Board, dir: &Path) -> anyhow::Result<BootFiles> {
        std::fs::create_dir_all(dir)?;
        let offset = boot_partition_offset(image)?;
        let kernel_bytes = fat_read(image, offset, "kernel.img")?;
        let kernel_bytes =
            if board.qemu.uncompressed_kernel && kernel_bytes.starts_with(&[0x1f, 0x8b]) {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&kernel_bytes[..])
                    .read_to_end(&mut out)
                    .context("gunzipping kernel.img")?;
                out
            } else {
                kernel_bytes
            };
        let kernel = dir.join("kernel");
        std::fs::write(&kernel, kernel_bytes)?;
        let initrd = dir.join("initrd.img");
        std::fs::write(&initrd, fat_read(image, offset, "initrd.img")?)?;
        let dtb = match board.qemu.dtb {
            Some(rel) => {
                let base = rel.rsplit('/').next().unwrap_or(rel);
                let path = dir.join(base);
                std::fs::write(&path, fat_read(image, offset, base)?)?;
                Some(path)
            }
            None => None,
        };
        let cmdline = String::from_utf8_lossy(&fat_read(image, offset, "cmdline.txt")?)
            .split_whitespace()
            .filter(|w| !w.starts_with("console="))
            .collect::<Vec<_>>()
            .join(" ");
        Ok(BootFiles {
            image: image.to_path_buf(),
            board,
            kernel,
            initrd,
            dtb,
            cmdline,
        })
    }

    /// A fresh copy-on-write disk over the image at `path` (qcow2; the size QEMU's machine
    /// accepts). Each device gets its own, and keeps it across power cycles.
    pub fn new_disk(&self, path: &Path) -> anyhow::Result<()> {
        let _ = std::fs::remove_file(path);
        let len = std::fs::metadata(&self.image)?.len();
        let size = if self.board.qemu.disk_size_power_of_two {
            len.next_power_of_two()
        } else {
            len
        };
        let out = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(&self.image)
            .arg(path)
            .arg(size.to_string())
            .output()
            .context("running qemu-img: run cross/setup.sh")?;
        ensure!(
            out.status.success(),
            "qemu-img create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }
}

/// The byte offset of the first FAT partition of an image: by MBR type, or on a GPT disk
/// (a protective MBR) by type GUID (Microsoft basic data or EFI system).
pub fn boot_partition_offset(image: &Path) -> anyhow::Result<u64> {
    let file = std::fs::File::open(image)
        .with_context(|| format!("reading the MBR of {}", image.display()))?;
    let mut head = [0u8; 512];
    file.read_exact_at(&mut head, 0)
        .with_context(|| format!("reading the MBR of {}", image.display()))?;
    ensure!(
        head[510..] == [0x55, 0xAA],
        "{} has no MBR",
        image.display()
    );
    let entries: Vec<&[u8]> = (0..4)
        .map(|i| &head[446 + 16 * i..446 + 16 * (i + 1)])
        .collect();
    if entries[0][4] == 0xEE {
        return gpt_fat_offset(&file)
            .with_context(|| format!("reading the GPT of {}", image.display()));
    }
    entries
        .iter()
        .find(|e| matches!(e[4], 0x0B | 0x0C | 0x0E))
        .map(|e| u64::from(u32::from_le_bytes([e[8], e[9], e[10], e[11]])) * 512)
        .ok_or_else(|| anyhow!("{} has no FAT partition", image.display()))
}

/// The first GPT entry whose type is a FAT one, from the primary header.
fn gpt_fat_offset(file: &std::fs::File) -> anyhow::Result<u64> {
    // On-disk (mixed-endian) forms of EBD0A0A2-B9E5-4433-87C0-68B6B72699C7 (basic data)
    // and C12A7328-F81F-11D2-BA4B-00A0C93EC93B (EFI system).
    const FAT_TYPES: [[u8; 16]; 2] = [
        [
            0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26,
            0x99, 0xC7,
        ],
        [
            0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
            0xC9, 0x3B,
        ],
    ];
    let mut h = [0u8; 92];
    file.read_exact_at(&mut h, 512)?;
    ensure!(
        &h[..8] == b"EFI PART",
        "no GPT header after the protective MBR"
    );
    let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap_or([0; 8]));
    let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap_or([0; 4]));
    let (table, count, size) = (u64_at(72), u32_at(80).min(256), u32_at(84));
    ensure!((128..=4096).contains(&size), "GPT entry size {size}");
    let mut e = vec![0u8; size as usize];
    for i in 0..u64::from(count) {
        file.read_exact_at(&mut e, table * 512 + i * u64::from(size))?;
        if FAT_TYPES.iter().any(|t| e[..16] == t[..]) {
            return Ok(u64::from_le_bytes(e[32..40].try_into().unwrap_or([0; 8])) * 512);
        }
    }
    anyhow::bail!("no FAT partition (basic data or EFI system type) in the GPT")
}

/// A file of the FAT partition at `offset`, or an error naming it.
pub fn fat_read(image: &Path, offset: u64, path: &str) -> anyhow::Result<Vec<u8>> {
    let out = Command::new("mcopy")
        .arg("-i")
        .arg(format!("{}@@{offset}", image.display()))
        .args(["-n", &format!("::{path}"), "-"])
        .output()
        .context("running mcopy: run cross/setup.sh (mtools)")?;
    if !out.status.success() {
        bail!(
            "reading {path} from {}: {}",
            image.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// Whether the FAT partition at `offset` has `path` (mtools' `mdir`).
pub fn fat_has(image: &Path, offset: u64, path: &str) -> anyhow::Result<bool> {
    let out = Command::new("mdir")
        .arg("-i")
        .arg(format!("{}@@{offset}", image.display()))
        .args(["-b", &format!("::{path}")])
        .output()
        .context("running mdir: run cross/setup.sh (mtools)")?;
    Ok(out.status.success())
}

/// Converts a qcow2 disk to a raw image (for inspecting the device's partitions).
pub fn raw_copy(qcow2: &Path, raw: &Path) -> anyhow::Result<()> {
    let out = Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(qcow2)
        .arg(raw)
        .output()
        .context("running qemu-img")?;
    ensure!(
        out.status.success(),
        "qemu-img convert failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A look at a device's `writable` partition (the second MBR partition) through e2fsprogs'
/// `debugfs`, without mounting: what a power cut left on the disk, as the next boot's
/// kernel sees it (the journal replayed first, on a copy).
#[derive(Debug)]
pub struct Writable {
    /// The copy of the partition.
    part: PathBuf,
}

impl Writable {
    /// Copies partition 2 of the device's qcow2 `disk` to `scratch` (through a raw image
    /// beside it), replays its journal and opens it.
    pub fn open(disk: &Path, scratch: &Path) -> anyhow::Result<Writable> {
        use std::io::{Seek, SeekFrom};
        let raw = scratch.with_extension("raw");
        raw_copy(disk, &raw)?;
        let mut file = std::fs::File::open(&raw)?;
        let mut head = [0u8; 512];
        file.read_exact(&mut head)?;
        let e = &head[446 + 16..446 + 32];
        ensure!(
            e[4] == 0x83,
            "partition 2 of {} is not Linux: {:#x}",
            raw.display(),
            e[4]
        );
        let lba = |b: &[u8]| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])) * 512;
        let (offset, size) = (lba(&e[8..12]), lba(&e[12..16]));
        file.seek(SeekFrom::Start(offset))?;
        let part = scratch.with_extension("ext4");
        let mut out = std::fs::File::create(&part)?;
        std::io::copy(&mut file.take(size), &mut out)?;
        drop(out);
        let _ = std::fs::remove_file(&raw);
        // A power cut leaves committed transactions in the journal: replay them, as the
        // kernel does when it mounts, and nothing else.
        let fsck = Command::new("e2fsck")
            .args(["-E", "journal_only", "-y"])
            .arg(&part)
            .output()
            .context("running e2fsck: run cross/setup.sh (e2fsprogs)")?;
        // 0: clean, 1: errors corrected (the replay); anything else is a broken file system.
        ensure!(
            matches!(fsck.status.code(), Some(0 | 1)),
            "e2fsck -E journal_only on writable ({}): {}{}",
            fsck.status,
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        );
        Ok(Writable { part })
    }

    fn debugfs(&self, request: &str) -> anyhow::Result<Output> {
        Command::new("debugfs")
            .args(["-R", request])
            .arg(&self.part)
            .output()
            .context("running debugfs: run cross/setup.sh (e2fsprogs)")
    }

    /// Whether `path` (absolute in the file system) exists.
    pub fn exists(&self, path: &str) -> anyhow::Result<bool> {
        let out = self.debugfs(&format!("stat {path}"))?;
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("not found") || err.contains("File not found") {
            return Ok(false);
        }
        ensure!(
            String::from_utf8_lossy(&out.stdout).contains("Inode:"),
            "debugfs stat {path} on {}: {err}",
            self.part.display()
        );
        Ok(true)
    }

    /// The contents of the file `path`, or `None` when it does not exist.
    pub fn read(&self, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        if !self.exists(path)? {
            return Ok(None);
        }
        Ok(Some(self.debugfs(&format!("cat {path}"))?.stdout))
    }

    /// The names in the directory `path` (without `.` and `..`), or `None` when it is absent.
    pub fn list(&self, path: &str) -> anyhow::Result<Option<Vec<String>>> {
        if !self.exists(path)? {
            return Ok(None);
        }
        let out = self.debugfs(&format!("ls -p {path}"))?;
        // `ls -p` prints /inode/mode/uid/gid/name/size/ per entry.
        Ok(Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split('/').nth(5).map(str::to_string))
                .filter(|n| !n.is_empty() && n != "." && n != "..")
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The snap `w`'s store serves as `core` for arm64 on beta: its file, as `store resolve`
    /// names it.
    fn served_core(w: &World) -> PathBuf {
        let store = w.path("store");
        let out = w
            .ok([
                os("store"),
                os("resolve"),
                store.as_os_str(),
                os("core"),
                os("--channel"),
                os("beta"),
                os("--arch"),
                os("arm64"),
            ])
            .unwrap();
        // NAME REVISION FILE
        let file = out
            .split_whitespace()
            .nth(2)
            .unwrap_or_else(|| panic!("{out:?}"));
        PathBuf::from(file)
    }

    /// Whether a snap's /usr/sbin/init is systemd (the Debian base) rather than busybox.
    fn init_is_systemd(snap: &Path) -> bool {
        let out = Command::new("unsquashfs")
            .args(["-ll", "-d", "ROOT"])
            .arg(snap)
            .output()
            .expect("unsquashfs runs (squashfs-tools)");
        assert!(out.status.success(), "{}: cannot list", snap.display());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.ends_with(" ROOT/usr/sbin/init -> /lib/systemd/systemd"))
    }

    #[test]
    fn os_world_serves_the_debian_core_and_world_the_busybox_one() {
        let debian = os_world().unwrap();
        assert_eq!(debian.os(), Os::Debian);
        let served = served_core(debian);
        let built = os_board_snap(Os::Debian, "core", "arm64").unwrap();
        assert!(
            built
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("core_bookworm-"),
            "{}",
            built.display()
        );
        assert!(
            std::fs::read(&served).unwrap() == std::fs::read(&built).unwrap(),
            "os_world serves {} as core, not {}",
            served.display(),
            built.display()
        );
        assert!(init_is_systemd(&served), "{}", served.display());

        let busybox = world().unwrap();
        assert_eq!(busybox.os(), Os::Busybox);
        let served = served_core(busybox);
        let built = board_snap("core", "arm64").unwrap();
        assert!(
            std::fs::read(&served).unwrap() == std::fs::read(&built).unwrap(),
            "world serves {} as core, not {}",
            served.display(),
            built.display()
        );
        assert!(!init_is_systemd(&served), "{}", served.display());
    }

    /// A raw disk with an MBR whose partition 2 is an ext4 made by `mke2fs -d` from `tree`.
    fn disk_with_writable(dir: &Path, tree: &Path) -> PathBuf {
        let part = dir.join("p2.ext4");
        let _ = std::fs::remove_file(&part);
        let out = Command::new("mke2fs")
            .args(["-q", "-t", "ext4", "-L", "writable", "-d"])
            .arg(tree)
            .arg(&part)
            .arg("8M")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut disk = vec![0u8; 1 << 20];
        let bytes = std::fs::read(&part).unwrap();
        let entry = |i: usize, kind: u8, start: u32, len: u32, disk: &mut Vec<u8>| {
            let e = &mut disk[446 + 16 * i..446 + 16 * (i + 1)];
            e[4] = kind;
            e[8..12].copy_from_slice(&start.to_le_bytes());
            e[12..16].copy_from_slice(&len.to_le_bytes());
        };
        entry(0, 0x0C, 1, 100, &mut disk);
        entry(1, 0x83, 2048, (bytes.len() / 512) as u32, &mut disk);
        disk[510] = 0x55;
        disk[511] = 0xAA;
        disk.extend_from_slice(&bytes);
        let raw = dir.join("disk.img");
        std::fs::write(&raw, disk).unwrap();
        raw
    }

    #[test]
    fn writable_is_read_from_partition_two_of_a_qcow2_disk() {
        let dir = crate::scratch_dir("writable-unit").unwrap();
        let tree = dir.join("tree");
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(tree.join("system-data/etc")).unwrap();
        std::fs::write(
            tree.join("system-data/etc/passwd"),
            "alice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        let raw = disk_with_writable(&dir, &tree);
        let qcow2 = dir.join("disk.qcow2");
        let out = Command::new("qemu-img")
            .args(["convert", "-O", "qcow2"])
            .arg(&raw)
            .arg(&qcow2)
            .output()
            .unwrap();
        assert!(out.status.success());

        let w = Writable::open(&qcow2, &dir.join("writable")).unwrap();
        assert!(w.exists("/system-data").unwrap());
        assert!(!w.exists("/system-data.new").unwrap());
        assert_eq!(
            w.read("/system-data/etc/passwd").unwrap().unwrap(),
            b"alice:x:1000:1000::/home/alice:/bin/sh\n"
        );
        assert_eq!(w.read("/system-data/etc/shadow").unwrap(), None);
        let mut root = w.list("/").unwrap().unwrap();
        root.sort();
        assert_eq!(root, ["lost+found", "system-data"]);
        assert_eq!(w.list("/nope").unwrap(), None);
    }
}
