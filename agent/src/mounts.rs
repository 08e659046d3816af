//! Mounts: the kernel's virtual file systems, and the boot partition (read-only).

use std::fs;
use std::io;
use std::path::Path;

use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

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

/// Mounts the FAT boot partition `device` read-only at [`SEED`].
pub fn mount_seed(device: &Path) -> io::Result<()> {
    fs::create_dir_all(SEED)?;
    let flags = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    mount(device, SEED, "vfat", flags, None)?;
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
