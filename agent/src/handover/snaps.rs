//! The seeded snaps in the OS, laid out as snapd lays them out: each one mounted read-only
//! at `/snap/<name>/<revision>` (what snapd's `snap-<name>-<revision>.mount` units do), and
//! `/snap/<name>/current` pointing at that revision. Each is mounted from the file
//! descriptor the seed check hashed, never opened again by name, so the OS runs the bytes
//! that were verified on this boot.
//!
//! A snap that cannot be mounted is a warning: the OS still starts, without it.

use std::fs;
use std::io;
use std::path::Path;

use log::{info, warn};
use rustix::mount::{mount_bind, mount_remount, MountFlags};

use coreforge_assertions::valid_snap_name as valid_name;

use super::{mount_snap_file, BASE_FLAGS as SNAP_FLAGS};
use crate::seed::SeedSnap;

/// The kernel snap's modules and firmware, where the OS's `modprobe` and the kernel's
/// firmware loader look: (in the kernel snap, in the OS), as Ubuntu Core binds them.
const KERNEL_TREES: [(&str, &str); 2] = [
    ("modules", "usr/lib/modules"),
    ("firmware", "usr/lib/firmware"),
];

/// Binds the mounted kernel snap `kernel`'s `modules/` and `firmware/` (those it has) over the
/// OS's, read-only. A failure is a warning: the OS starts without them.
pub fn bind_kernel_trees(root: &Path, kernel: &SeedSnap) {
    let snap = root
        .join("snap")
        .join(kernel.name())
        .join(kernel.revision());
    for (from, to) in KERNEL_TREES {
        let source = snap.join(from);
        if !source.is_dir() {
            continue;
        }
        let target = root.join(to);
        let bound = fs::create_dir_all(&target)
            .and_then(|()| mount_bind(&source, &target).map_err(io::Error::from))
            // A bind mount takes read-only only when remounted.
            .and_then(|()| {
                mount_remount(&target, MountFlags::BIND | SNAP_FLAGS, "").map_err(io::Error::from)
            });
        match bound {
            Ok(()) => info!("/{to} is the kernel snap's {from}/"),
            Err(e) => warn!(
                "cannot bind {} at /{to}: {e} — the OS has no {from} from the kernel snap",
                source.display()
            ),
        }
    }
}

/// Mounts each of `snaps` under `root/snap/`; returns how many were mounted.
pub fn mount_all(root: &Path, snaps: &[&SeedSnap]) -> usize {
    let mut mounted = 0;
    for snap in snaps {
        match mount_one(root, snap) {
            Ok(()) => mounted += 1,
            Err(e) => warn!(
                "cannot mount {} at /snap/{}/{}: {e} — the OS starts without it",
                snap.path().display(),
                snap.name(),
                snap.revision()
            ),
        }
    }
    info!("{mounted} of {} snaps mounted under /snap", snaps.len());
    mounted
}

fn mount_one(root: &Path, snap: &SeedSnap) -> io::Result<()> {
    let (name, revision) = (snap.name(), snap.revision());
    // They become paths: only snapd's names and revisions (digits, or x<N> unasserted).
    if !valid_name(name) || !valid_revision(revision) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} revision {revision:?} is not a snap name and revision"),
        ));
    }
    let dir = root.join("snap").join(name);
    let target = dir.join(revision);
    fs::create_dir_all(&target)?;
    mount_snap_file(snap.file(), &format!("{name}_{revision}.snap"), &target)?;
    let current = dir.join("current");
    if fs::read_link(&current).ok().as_deref() != Some(Path::new(revision)) {
        match fs::remove_file(&current) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::os::unix::fs::symlink(revision, &current)?;
    }
    Ok(())
}

/// A store revision (digits) or a local one (`x` and digits).
fn valid_revision(revision: &str) -> bool {
    let digits = revision.strip_prefix('x').unwrap_or(revision);
    !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Packs `tree` into the squashfs `file` as snaps are packed (root-owned). Needs
    /// mksquashfs (cross/setup.sh).
    fn squashfs(tree: &Path, file: &Path) {
        let status = Command::new("mksquashfs")
            .arg(tree)
            .arg(file)
            .args(["-noappend", "-quiet", "-all-root"])
            .status()
            .expect("mksquashfs is missing: run cross/setup.sh (squashfs-tools)");
        assert!(status.success());
    }

    #[test]
    fn names_and_revisions_that_would_leave_snap_are_refused() {
        for good in ["core", "pi2-kernel", "hello-world", "a1"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "..",
            "a/b",
            "Core",
            "-a",
            "a-",
            "a--b",
            "123",
            &"a".repeat(41),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        for good in ["1", "42", "x1"] {
            assert!(valid_revision(good), "{good}");
        }
        for bad in ["", "x", "..", "1/2", "-1", "1x"] {
            assert!(!valid_revision(bad), "{bad}");
        }
    }

    /// A real squashfs, mounted from its open descriptor after its name is gone, shows up at
    /// /snap/<name>/<rev> with `current` pointing at it; a second boot's call keeps the link.
    /// Needs root, /dev/loop-control and mksquashfs (cross/setup.sh); with `CI` set their
    /// absence fails the test.
    #[test]
    fn mounts_a_snap_at_its_revision_with_current() {
        if !super::super::loopdev::can_attach("mounting a snap") {
            return;
        }
        let scratch = std::env::temp_dir().join(format!("cf-snaps-{}", std::process::id()));
        let _ = fs::remove_dir_all(&scratch);
        let tree = scratch.join("tree/meta");
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join("snap.yaml"), "name: hello\nversion: '1.0'\n").unwrap();
        let file = scratch.join("hello_7.snap");
        squashfs(&scratch.join("tree"), &file);
        let open = fs::File::open(&file).unwrap();
        fs::remove_file(&file).unwrap();
        let snap = SeedSnap::for_tests("hello", "7", &file, open);
        let root = scratch.join("root");
        assert_eq!(mount_all(&root, &[&snap]), 1);
        let mounted = root.join("snap/hello/7");
        let yaml = fs::read_to_string(mounted.join("meta/snap.yaml"));
        let link = fs::read_link(root.join("snap/hello/current"));
        // Mounted again on the same point, as a second boot would not (it starts afresh),
        // but the link must stay put.
        let again = mount_all(&root, &[&snap]);
        let _ = rustix::mount::unmount(&mounted, rustix::mount::UnmountFlags::DETACH);
        let _ = rustix::mount::unmount(&mounted, rustix::mount::UnmountFlags::DETACH);
        assert_eq!(yaml.unwrap(), "name: hello\nversion: '1.0'\n");
        assert_eq!(link.unwrap(), Path::new("7"));
        assert_eq!(again, 1);
        let bad = SeedSnap::for_tests("../etc", "7", &file, fs::File::open("/dev/null").unwrap());
        assert_eq!(mount_all(&root, &[&bad]), 0);
        assert!(!scratch.join("etc").exists());
        fs::remove_dir_all(&scratch).unwrap();
    }

    /// The kernel snap's modules/ shows at /usr/lib/modules, read-only; a kernel snap with no
    /// firmware/ binds nothing there. Root as above.
    #[test]
    fn binds_the_kernel_snaps_modules_read_only() {
        if !super::super::loopdev::can_attach("binding") {
            return;
        }
        let scratch = std::env::temp_dir().join(format!("cf-kernel-{}", std::process::id()));
        let _ = fs::remove_dir_all(&scratch);
        let tree = scratch.join("tree");
        fs::create_dir_all(tree.join("modules/6.1.0-test")).unwrap();
        fs::write(
            tree.join("modules/6.1.0-test/modules.dep"),
            "kernel/x.ko:\n",
        )
        .unwrap();
        let file = scratch.join("pi2-kernel_3.snap");
        squashfs(&tree, &file);
        let snap = SeedSnap::for_tests("pi2-kernel", "3", &file, fs::File::open(&file).unwrap());
        let root = scratch.join("root");
        assert_eq!(mount_all(&root, &[&snap]), 1);
        bind_kernel_trees(&root, &snap);
        let modules = root.join("usr/lib/modules");
        let dep = fs::read_to_string(modules.join("6.1.0-test/modules.dep"));
        let write = fs::write(modules.join("new"), b"x");
        let firmware = root.join("usr/lib/firmware").exists();
        for dir in [modules, root.join("snap/pi2-kernel/3")] {
            let _ = rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::DETACH);
        }
        assert_eq!(dep.unwrap(), "kernel/x.ko:\n");
        assert_eq!(write.unwrap_err().raw_os_error(), Some(libc::EROFS));
        assert!(!firmware);
        fs::remove_dir_all(&scratch).unwrap();
    }
}
