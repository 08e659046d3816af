//! Hand-over to the OS: grow `writable` to fill its disk, mount it, the base snap and the
//! overlay of both, then switch_root into the OS's `/sbin/init` the way busybox does.
//!
//! Runs after the seed verified. Growing is best effort (a warning, never fatal) and
//! idempotent: a boot that finds the partition and the file system at full size does
//! nothing. The OS is entered only when `writable` holds `system-data/`, which exists only
//! after a complete first-boot commit.

mod gpt;
mod grow;
mod loopdev;
mod snaps;
mod writable;

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use log::{debug, info, warn};
use rustix::mount::{mount, mount_move, unmount, MountFlags, UnmountFlags};

use crate::disk;
use crate::seed::SeedSnap;
use writable::{disk_of, find_writable, Partition};

/// The label of the OS's writable ext4 partition, as ubuntu-image writes it.
pub const LABEL: &str = "writable";
/// Where `writable` is mounted read-write.
pub const DATA: &str = "/run/mnt/data";
/// Where the base snap is mounted read-only.
pub const BASE: &str = "/run/mnt/base";
/// Where the OS's root (the overlay) is assembled before switch_root.
pub const ROOT: &str = "/run/mnt/root";
/// The OS's state in `writable`: the overlay's upper directory; its existence means
/// "configured".
pub const SYSTEM_DATA: &str = "system-data";
/// The overlay's work directory in `writable` (same file system as the upper one).
const WORK: &str = ".overlay-work";
/// What the OS runs as PID 1.
const INIT: &str = "/sbin/init";
/// Where the kernel lists block devices and partitions.
const SYS_CLASS_BLOCK: &str = "/sys/class/block";
/// `writable`'s mount: no set-id programs and no device nodes through it. Not `noexec`: it
/// holds the upper layer of the OS's root, where the OS installs programs.
const DATA_FLAGS: MountFlags = MountFlags::NOATIME
    .union(MountFlags::NOSUID)
    .union(MountFlags::NODEV);
/// Every snap's mount (the base's is the overlay's lower layer): read-only, and no device
/// nodes, as snapd mounts them.
const BASE_FLAGS: MountFlags = MountFlags::RDONLY.union(MountFlags::NODEV);

/// Why the hand-over could not happen; each says what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// No ext4 partition carries the `writable` label.
    #[error("no ext4 partition labelled {LABEL} found (partitions seen: {seen})")]
    NoWritable {
        /// The partitions that were looked at, comma separated.
        seen: String,
    },
    /// A step of the hand-over failed.
    #[error("cannot {what}: {error}")]
    Step {
        /// What was being done.
        what: String,
        /// Why it failed.
        error: io::Error,
    },
    /// The only `writable` found is on another disk than the boot partition.
    #[error("the ext4 partition labelled {LABEL} found, {device}, is on {disk}, not on {boot_disk} where the boot partition is: it is not used")]
    WritableElsewhere {
        /// The partition found.
        device: PathBuf,
        /// Its disk.
        disk: PathBuf,
        /// The disk holding the boot partition.
        boot_disk: PathBuf,
    },
}

impl Failure {
    /// What the person at the device can do about it.
    pub fn todo(&self) -> &'static str {
        match self {
            Failure::NoWritable { .. } => {
                "rebuild the image with coreforge build-image (its gadget makes the writable \
                 partition), then press Enter"
            }
            Failure::WritableElsewhere { .. } => {
                "remove the other disk or USB stick (the writable partition must be on the card \
                 that holds the boot partition), then press Enter"
            }
            Failure::Step { .. } => {
                "check that the initramfs loads loop, squashfs, overlay and ext4, then press Enter"
            }
        }
    }
}

/// Wraps an I/O error with what was being done.
fn step(what: impl Into<String>) -> impl FnOnce(io::Error) -> Failure {
    let what = what.into();
    move |error| Failure::Step { what, error }
}

/// Finds `writable` on the disk of the boot partition mounted at [`crate::mounts::SEED`],
/// grows it to fill the disk (a failure to grow is only a warning) and mounts it
/// read-write at [`DATA`].
pub fn prepare_data() -> Result<(), Failure> {
    let sys = Path::new(SYS_CLASS_BLOCK);
    let names = disk::partitions(sys);
    let boot_disk = boot_disk(sys, &names, Path::new(crate::mounts::SEED))?;
    let part = find_writable(sys, Path::new("/dev"), &names, &boot_disk)?;
    info!(
        "writable partition: {} (on {boot_disk}, with the boot partition)",
        part.device.display()
    );
    let part = match grow::grow_partition(&part) {
        Ok(grown) => grown,
        Err(e) => {
            warn!(
                "cannot grow {}: {e} — it keeps its size",
                part.device.display()
            );
            part
        }
    };
    mount_data(&part)?;
    if let Err(e) = grow::grow_filesystem(&part) {
        warn!(
            "cannot grow the file system on {}: {e} — it keeps its size",
            part.device.display()
        );
    }
    Ok(())
}

/// The sysfs name of the disk holding the file system mounted at `seed` (its device
/// number, as `stat` reports it, matched against the partitions' `dev` files).
fn boot_disk(sys: &Path, names: &[String], seed: &Path) -> Result<String, Failure> {
    let what = || {
        format!(
            "find the disk of the boot partition mounted at {}",
            seed.display()
        )
    };
    let dev = fs::metadata(seed).map_err(step(what()))?.dev();
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    disk_of(sys, names, major, minor).ok_or_else(|| Failure::Step {
        what: what(),
        error: io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no partition in {} has device number {major}:{minor}",
                sys.display()
            ),
        ),
    })
}

/// Mounts the base snap open as `file` (read-only) at [`BASE`], on a loop device attached
/// to this very file descriptor: the bytes mounted are the bytes read through it (and
/// hashed when the seed was verified), with no second look-up by name. `name` is for
/// messages and the loop device's label.
pub fn mount_base_file(file: &File, name: &str) -> Result<(), Failure> {
    let _ = unmount(BASE, UnmountFlags::DETACH);
    fs::create_dir_all(BASE).map_err(step(format!("create {BASE}")))?;
    mount_snap_file(file, name, Path::new(BASE))
        .map_err(step(format!("mount {name} at {BASE}")))?;
    info!("base snap {name} mounted at {BASE}");
    Ok(())
}

/// Mounts the snap open as `file` read-only at `target` (which exists), as snapd mounts
/// snaps, on a loop device attached to this very descriptor; `label` names it for the
/// kernel.
fn mount_snap_file(file: &File, label: &str, target: &Path) -> io::Result<()> {
    // Held open until the mount holds the device: its last close would detach it.
    let (device, _open) = loopdev::attach(file, label)?;
    mount(device.as_path(), target, "squashfs", BASE_FLAGS, None).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("mount {}: {e}", device.display()),
        )
    })
}

/// Mounts the overlay of `writable`'s `system-data/` over the base snap, mounts `snaps` (the
/// verified seed's, base included) at `/snap/<name>/<revision>` in it, binds the `kernel`
/// snap's modules and firmware at `/usr/lib/modules` and `/usr/lib/firmware`, and switches root
/// into the OS's init; returns only on failure, with nothing left mounted but [`DATA`] and
/// [`BASE`] (see [`release`]).
pub fn enter(
    snaps: &[&SeedSnap],
    kernel: Option<&SeedSnap>,
) -> Result<std::convert::Infallible, Failure> {
    let error = match try_enter(snaps, kernel) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = unmount(ROOT, UnmountFlags::DETACH);
    Err(error)
}

/// Unmounts what [`prepare_data`] and [`mount_base_file`] mounted, for a retry from scratch (the
/// loop device detaches itself).
pub fn release() {
    for dir in [ROOT, BASE, DATA] {
        let _ = unmount(dir, UnmountFlags::DETACH);
    }
}

fn try_enter(
    snaps: &[&SeedSnap],
    kernel: Option<&SeedSnap>,
) -> Result<std::convert::Infallible, Failure> {
    let work = Path::new(DATA).join(WORK);
    fs::create_dir_all(&work).map_err(step(format!("create {}", work.display())))?;
    fs::create_dir_all(ROOT).map_err(step(format!("create {ROOT}")))?;
    let options = overlay_options(Path::new(BASE), &Path::new(DATA).join(SYSTEM_DATA), &work);
    let options = CString::new(options).map_err(|e| Failure::Step {
        what: "build the overlay options".into(),
        error: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    mount("overlay", ROOT, "overlay", MountFlags::empty(), &*options).map_err(|e| {
        Failure::Step {
            what: format!("mount the overlay ({options:?}) at {ROOT}"),
            error: e.into(),
        }
    })?;
    if !exists_within(Path::new(ROOT), INIT) {
        return Err(Failure::Step {
            what: format!("find {INIT} in the base snap mounted at {BASE}"),
            error: io::ErrorKind::NotFound.into(),
        });
    }
    snaps::mount_all(Path::new(ROOT), snaps);
    if let Some(kernel) = kernel {
        snaps::bind_kernel_trees(Path::new(ROOT), kernel);
    }
    info!("handing over to {INIT}");
    Err(switch_root(Path::new(ROOT)))
}

/// Whether `path` exists in the tree at `root`, following symbolic links as they resolve
/// once `root` is `/`: Debian's `/sbin/init` is a link to the absolute
/// `/lib/systemd/systemd`, which must not be looked up in the initramfs.
fn exists_within(root: &Path, path: &str) -> bool {
    let mut pending: Vec<std::ffi::OsString> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_owned()),
            _ => None,
        })
        .collect();
    let mut at = root.to_path_buf();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            if at != root {
                at.pop();
            }
            continue;
        }
        let next = at.join(&name);
        match fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                let Ok(target) = fs::read_link(&next) else {
                    return false;
                };
                if links > 40 {
                    return false; // a loop, as the kernel's ELOOP
                }
                if target.is_absolute() {
                    at = root.to_path_buf();
                }
                for c in target.components().rev() {
                    match c {
                        std::path::Component::Normal(n) => pending.push(n.to_owned()),
                        std::path::Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            Ok(_) => at = next,
            Err(_) => return false,
        }
    }
    true
}

/// The overlay's mount options.
fn overlay_options(lower: &Path, upper: &Path, work: &Path) -> String {
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    )
}

/// Mounts `writable` read-write at [`DATA`] (unmounting an earlier attempt's first).
fn mount_data(part: &Partition) -> Result<(), Failure> {
    let _ = unmount(DATA, UnmountFlags::DETACH);
    fs::create_dir_all(DATA).map_err(step(format!("create {DATA}")))?;
    mount(part.device.as_path(), DATA, "ext4", DATA_FLAGS, None).map_err(|e| Failure::Step {
        what: format!(
            "mount {} read-write as ext4 at {DATA}",
            part.device.display()
        ),
        error: e.into(),
    })?;
    info!("{LABEL} mounted at {DATA}");
    Ok(())
}

/// The mounts carried into the new root: (where now, where under the new root).
const CARRIED: [(&str, &str); 6] = [
    (crate::mounts::SEED, "run/mnt/ubuntu-seed"),
    (DATA, "run/mnt/data"),
    (BASE, "run/mnt/base"),
    ("/proc", "proc"),
    ("/sys", "sys"),
    ("/dev", "dev"),
];

/// Mounts the OS finds in use until it powers off: the seed (the snaps' loop devices read
/// from its files) and the kernel snap's trees (udev keeps the module index mapped).
const IN_USE_TO_THE_END: [&str; 3] = [crate::mounts::SEED, "/usr/lib/modules", "/usr/lib/firmware"];

/// Tells systemd, with a drop-in under the OS's `/run/systemd/system` (at `run`), to leave
/// each of [`IN_USE_TO_THE_END`] mounted until systemd-shutdown's last pass, as it leaves /:
/// without default dependencies, `umount.target` does not try them while they are in use
/// and print a `FAILED` line for each at every power-off. A failure costs only that line.
fn keep_to_the_end(run: &Path) {
    for path in IN_USE_TO_THE_END {
        let dir = run.join(format!(
            "systemd/system/{}.mount.d",
            crate::unit_name::escape_path(path)
        ));
        let written = fs::create_dir_all(&dir).and_then(|()| {
            fs::write(
                dir.join("coreforge.conf"),
                "# coreforge-agent: mounted before systemd, in use until power-off.\n\
                 [Unit]\nDefaultDependencies=no\n",
            )
        });
        if let Err(e) = written {
            debug!("cannot write {}: {e}", dir.display());
        }
    }
}

/// Moves the mounts into `root` (under a fresh /run tmpfs there), frees the initramfs's
/// files, makes `root` the root and execs [`INIT`]; returns only on failure.
fn switch_root(root: &Path) -> Failure {
    match try_switch_root(root) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn try_switch_root(root: &Path) -> Result<std::convert::Infallible, Failure> {
    // The OS's /run: a tmpfs the OS keeps (its rcS mounts one only where none is).
    let run = root.join("run");
    let mode = c"mode=0755";
    mount(
        "tmpfs",
        &run,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        mode,
    )
    .map_err(|e| Failure::Step {
        what: format!("mount a tmpfs at {}", run.display()),
        error: e.into(),
    })?;
    keep_to_the_end(&run);
    for (from, to) in CARRIED {
        let target = root.join(to);
        fs::create_dir_all(&target).map_err(step(format!("create {}", target.display())))?;
        mount_move(from, &target).map_err(|e| Failure::Step {
            what: format!("move the mount {from} to {}", target.display()),
            error: e.into(),
        })?;
    }
    std::env::set_current_dir(root).map_err(step(format!("enter {}", root.display())))?;
    // Free the initramfs's memory: it is the rootfs, which stays mounted underneath.
    if let Ok(meta) = fs::symlink_metadata("/") {
        delete_contents(Path::new("/"), meta.dev());
    }
    mount_move(".", "/").map_err(|e| Failure::Step {
        what: format!("move {} onto /", root.display()),
        error: e.into(),
    })?;
    std::os::unix::fs::chroot(".").map_err(step("chroot into the new root"))?;
    std::env::set_current_dir("/").map_err(step("enter the new root"))?;
    let error = Command::new(INIT).exec();
    Err(Failure::Step {
        what: format!("run the OS's {INIT}"),
        error,
    })
}

/// Deletes everything under `dir` on the device `dev`, without crossing into mounts.
fn delete_contents(dir: &Path, dev: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.dev() != dev {
            continue; // a mount point (the new root, or what lives under it)
        }
        if meta.is_dir() {
            delete_contents(&path, dev);
            let _ = fs::remove_dir(&path); // fails for directories holding mount points
        } else {
            let _ = fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_name_the_dirs() {
        assert_eq!(
            overlay_options(Path::new(BASE), &Path::new(DATA).join(SYSTEM_DATA), &Path::new(DATA).join(WORK)),
            "lowerdir=/run/mnt/base,upperdir=/run/mnt/data/system-data,workdir=/run/mnt/data/.overlay-work"
        );
    }

    #[test]
    fn the_seed_and_the_kernel_trees_are_left_to_systemd_shutdown() {
        let run = std::env::temp_dir().join(format!("cf-keep-{}", std::process::id()));
        keep_to_the_end(&run);
        for unit in [
            "run-mnt-ubuntu\\x2dseed.mount",
            "usr-lib-modules.mount",
            "usr-lib-firmware.mount",
        ] {
            let conf = run.join(format!("systemd/system/{unit}.d/coreforge.conf"));
            let text = fs::read_to_string(&conf).unwrap();
            assert!(
                text.ends_with("\n[Unit]\nDefaultDependencies=no\n"),
                "{text}"
            );
        }
        fs::remove_dir_all(&run).unwrap();
    }

    /// Debian's merged /usr: `/sbin` -> `usr/sbin`, `/usr/sbin/init` -> the absolute
    /// `/lib/systemd/systemd`, `/lib` -> `usr/lib`; resolved inside the root, never outside.
    #[test]
    fn init_is_found_through_links_that_resolve_inside_the_root() {
        let root = std::env::temp_dir().join(format!("cf-init-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("usr/sbin")).unwrap();
        fs::create_dir_all(root.join("usr/lib/systemd")).unwrap();
        fs::write(root.join("usr/lib/systemd/systemd"), b"").unwrap();
        std::os::unix::fs::symlink("usr/sbin", root.join("sbin")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("/lib/systemd/systemd", root.join("usr/sbin/init")).unwrap();
        assert!(exists_within(&root, "/sbin/init"));
        // A link out of the root (to the host's /proc here) is looked up inside it.
        std::os::unix::fs::symlink("/proc/self", root.join("usr/sbin/away")).unwrap();
        assert!(!exists_within(&root, "/sbin/away"));
        std::os::unix::fs::symlink("../../../../../../proc", root.join("usr/sbin/up")).unwrap();
        assert!(!exists_within(&root, "/sbin/up"));
        std::os::unix::fs::symlink("loop", root.join("usr/sbin/loop")).unwrap();
        assert!(!exists_within(&root, "/sbin/loop"));
        assert!(!exists_within(&root, "/sbin/missing"));
        fs::remove_dir_all(&root).unwrap();
    }

    /// `writable` is mounted without set-id programs or device nodes, the base snap
    /// read-only without device nodes.
    #[test]
    fn data_and_base_mounts_keep_nosuid_and_nodev() {
        assert!(DATA_FLAGS.contains(MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOATIME));
        assert!(!DATA_FLAGS.contains(MountFlags::RDONLY));
        assert!(BASE_FLAGS.contains(MountFlags::RDONLY | MountFlags::NODEV));
    }
}
