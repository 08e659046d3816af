//! Mounts: the kernel's virtual file systems, and the boot partition (read-only, and
//! `nosuid,nodev,noexec` on every mount and remount: see [`remount_seed`]).

use std::fs;
use std::io;
use std::path::Path;

use rustix::mount::{mount, mount_remount, unmount, MountFlags, UnmountFlags};

/// Where the boot partition (the seed) is mounted, as on Ubuntu Core.
pub const SEED: &str = "/run/mnt/ubuntu-seed";

/// proc, sysfs and devtmpfs (the kernel does not mount devtmpfs in an initramfs).
const KERNEL_FILESYSTEMS: [(&str, &str, &str); 3] = [
    ("proc", "/proc", "proc"),
    ("sysfs", "/sys", "sysfs"),
    ("devtmpfs", "/dev", "devtmpfs"),
];

/// Mounts proc, sysfs and devtmpfs; returns one message per failure (boot goes on).
pub fn mount_kernel_filesystems() -> Vec<String> {
    let mut problems = Vec::new();
    let flags = MountFlags::NOSUID | MountFlags::NOEXEC;
    for (source, target, fstype) in KERNEL_FILESYSTEMS {
        let _ = fs::create_dir_all(target);
        match mount(source, target, fstype, flags, None) {
            // EBUSY: already mounted (e.g. a kernel with devtmpfs.mount=1), which is fine.
            Ok(()) | Err(rustix::io::Errno::BUSY) => {}
            Err(e) => problems.push(format!("cannot mount {fstype} on {target}: {e}")),
        }
    }
    problems
}

/// What every mount and remount of the boot partition carries: nothing on it runs, no
/// set-id bit counts and no device node opens, whoever wrote the card.
const SEED_ALWAYS: MountFlags = MountFlags::NOSUID
    .union(MountFlags::NODEV)
    .union(MountFlags::NOEXEC);

/// The boot partition's mount flags: [`SEED_ALWAYS`], and read-only unless `writable`.
fn seed_flags(writable: bool) -> MountFlags {
    if writable {
        SEED_ALWAYS
    } else {
        SEED_ALWAYS | MountFlags::RDONLY
    }
}

/// Mounts the FAT boot partition `device` read-only at [`SEED`].
pub fn mount_seed(device: &Path) -> io::Result<()> {
    fs::create_dir_all(SEED)?;
    mount(device, SEED, "vfat", seed_flags(false), None)?;
    Ok(())
}

/// Remounts the boot partition at [`SEED`] read-write (`writable`) or read-only again.
/// A remount replaces every per-mount flag, so `nosuid,nodev,noexec` are passed each time:
/// a plain `MS_REMOUNT` would drop them.
#[allow(dead_code)] // for firstboot.rs's remove_preseed
pub fn remount_seed(writable: bool) -> io::Result<()> {
    remount_seed_at(Path::new(SEED), writable)
}

/// [`remount_seed`] for the boot partition mounted at `dir`.
pub fn remount_seed_at(dir: &Path, writable: bool) -> io::Result<()> {
    mount_remount(dir, seed_flags(writable), "")?;
    Ok(())
}

/// Unmounts [`SEED`] if it is mounted (before a retry, reboot or power-off).
pub fn unmount_seed() -> io::Result<()> {
    match unmount(SEED, UnmountFlags::empty()) {
        // EINVAL: not a mount point; ENOENT: never created.
        Ok(()) | Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => Ok(()),
        // EBUSY: something still has it open; detach it so a later mount is not blocked.
        Err(rustix::io::Errno::BUSY) => Ok(unmount(SEED, UnmountFlags::DETACH)?),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_flags_always_keep_nosuid_nodev_noexec() {
        for writable in [false, true] {
            let flags = seed_flags(writable);
            assert!(
                flags.contains(MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC),
                "{flags:?}"
            );
            assert_eq!(flags.contains(MountFlags::RDONLY), !writable, "{flags:?}");
        }
    }

    /// The options of the mount at `dir` in /proc/self/mountinfo (field 6).
    fn options(dir: &Path) -> Vec<String> {
        let dir = dir.to_str().unwrap();
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = info
            .lines()
            .rfind(|l| l.split(' ').nth(4) == Some(dir))
            .unwrap_or_else(|| panic!("{dir} is not mounted"));
        line.split(' ')
            .nth(5)
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect()
    }

    /// A real remount, read-write then read-only again, keeps nosuid, nodev and noexec.
    /// Needs root (a tmpfs stands in for the boot partition); says why and skips without.
    #[test]
    fn a_remount_keeps_nosuid_nodev_noexec() {
        let dir = std::env::temp_dir().join(format!("cf-remount-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        if let Err(e) = mount("tmpfs", &dir, "tmpfs", seed_flags(false), None) {
            eprintln!("skipped: cannot mount a tmpfs here ({e}): run as root");
            let _ = fs::remove_dir(&dir);
            return;
        }
        let result = std::panic::catch_unwind(|| {
            for (writable, rw) in [(true, "rw"), (false, "ro"), (true, "rw")] {
                remount_seed_at(&dir, writable).unwrap();
                let opts = options(&dir);
                for want in [rw, "nosuid", "nodev", "noexec"] {
                    assert!(opts.iter().any(|o| o == want), "{want} missing: {opts:?}");
                }
            }
        });
        let _ = unmount(&dir, UnmountFlags::DETACH);
        let _ = fs::remove_dir(&dir);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}
