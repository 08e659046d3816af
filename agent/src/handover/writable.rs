//! Finding `writable`: the ext4 partition labelled [`LABEL`] on the disk that holds the
//! boot partition. Another disk's `writable` (a USB stick someone plugged in) is refused:
//! whoever holds such a stick would otherwise choose the OS's state, accounts included.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{Failure, LABEL};

/// An ext4 superblock's facts the hand-over needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// The volume name (label).
    pub label: String,
    /// Bytes per block.
    pub block_size: u64,
    /// Blocks in the file system.
    pub blocks: u64,
}

/// Where the ext2/3/4 superblock starts, and its magic.
const SUPERBLOCK_OFFSET: u64 = 1024;
const EXT_MAGIC: u16 = 0xEF53;
/// Feature flag (incompat) for 64-bit block counts.
const INCOMPAT_64BIT: u32 = 0x80;

/// Reads the ext4 superblock of `file`; `None` if it holds no ext2/3/4 file system.
pub fn superblock(file: &File) -> io::Result<Option<Superblock>> {
    let mut sb = [0u8; 1024];
    file.read_exact_at(&mut sb, SUPERBLOCK_OFFSET)?;
    Ok(parse_superblock(&sb))
}

/// Parses a superblock (the 1024 bytes at offset 1024).
fn parse_superblock(sb: &[u8; 1024]) -> Option<Superblock> {
    let u16_at = |o: usize| u16::from_le_bytes([sb[o], sb[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]);
    if u16_at(0x38) != EXT_MAGIC {
        return None;
    }
    let log = u32_at(0x18);
    if log > 6 {
        return None; // blocks above 64 KiB: not a superblock we understand
    }
    let mut blocks = u64::from(u32_at(0x04));
    if u32_at(0x60) & INCOMPAT_64BIT != 0 {
        blocks |= u64::from(u32_at(0x150)) << 32;
    }
    let name = &sb[0x78..0x88];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Some(Superblock {
        label: String::from_utf8_lossy(&name[..end]).into_owned(),
        block_size: 1024 << log,
        blocks,
    })
}

/// A partition and the disk it is on, in 512-byte sectors as sysfs counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Its device node, e.g. `/dev/vda2`.
    pub device: PathBuf,
    /// The whole disk's device node, e.g. `/dev/vda`.
    pub disk: PathBuf,
    /// Its number in the partition table (1-based).
    pub number: u32,
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub size: u64,
    /// The whole disk's length in sectors.
    pub disk_size: u64,
}

/// Reads a number from a sysfs attribute file.
fn sysfs_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The partition `name` as sysfs (`sys_class_block`) describes it, nodes under `dev_dir`.
fn partition(sys_class_block: &Path, dev_dir: &Path, name: &str) -> Option<Partition> {
    let entry = sys_class_block.join(name);
    // /sys/class/block/vda2 -> ../../devices/.../block/vda/vda2: the parent is the disk.
    let real = fs::canonicalize(&entry).ok()?;
    let disk = real.parent()?.file_name()?.to_str()?.to_owned();
    Some(Partition {
        device: dev_dir.join(name),
        disk: dev_dir.join(&disk),
        number: u32::try_from(sysfs_number(&entry.join("partition"))?).ok()?,
        start: sysfs_number(&entry.join("start"))?,
        size: sysfs_number(&entry.join("size"))?,
        disk_size: sysfs_number(&real.parent()?.join("size"))?,
    })
}

/// The disk (its name in sysfs, e.g. `mmcblk0`) holding the partition whose device number
/// is `major:minor`, among the partitions `names` of `sys_class_block`.
pub fn disk_of(sys_class_block: &Path, names: &[String], major: u32, minor: u32) -> Option<String> {
    let want = format!("{major}:{minor}");
    names.iter().find_map(|name| {
        let entry = sys_class_block.join(name);
        let dev = fs::read_to_string(entry.join("dev")).ok()?;
        if dev.trim() != want {
            return None;
        }
        disk_name(&entry)
    })
}

/// The name of the disk a sysfs partition entry belongs to: its real path's parent.
fn disk_name(entry: &Path) -> Option<String> {
    // /sys/class/block/vda2 -> ../../devices/.../block/vda/vda2: the parent is the disk.
    let real = fs::canonicalize(entry).ok()?;
    Some(real.parent()?.file_name()?.to_str()?.to_owned())
}

/// The ext4 partition labelled [`LABEL`] on `boot_disk` (the disk of the boot partition,
/// its sysfs name) among the partitions `names`. A `writable` on any other disk is refused
/// with [`Failure::WritableElsewhere`], naming it, when the boot disk has none.
pub fn find_writable(
    sys_class_block: &Path,
    dev_dir: &Path,
    names: &[String],
    boot_disk: &str,
) -> Result<Partition, Failure> {
    let mut elsewhere = Vec::new();
    for name in names {
        let Ok(file) = File::open(dev_dir.join(name)) else {
            continue;
        };
        match superblock(&file) {
            Ok(Some(sb)) if sb.label == LABEL => {}
            _ => continue,
        }
        let Some(part) = partition(sys_class_block, dev_dir, name) else {
            continue;
        };
        if part.disk == dev_dir.join(boot_disk) {
            return Ok(part);
        }
        elsewhere.push(part);
    }
    if let Some(other) = elsewhere.into_iter().next() {
        return Err(Failure::WritableElsewhere {
            device: other.device,
            disk: other.disk,
            boot_disk: dev_dir.join(boot_disk),
        });
    }
    Err(Failure::NoWritable {
        seen: if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cf-handover-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// An ext4 image of `mib` MiB made by mke2fs with `args`.
    fn mke2fs(path: &Path, mib: u64, args: &[&str]) {
        let file = File::create(path).unwrap();
        file.set_len(mib << 20).unwrap();
        let out = Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4"])
            .args(args)
            .arg(path)
            .output()
            .expect("mke2fs runs (e2fsprogs)");
        assert!(out.status.success(), "{out:?}");
    }

    #[test]
    fn reads_label_block_size_and_count_from_mke2fs_images() {
        let dir = temp("sb");
        for (args, block, mib) in [
            (&["-L", "writable", "-b", "4096"][..], 4096, 16),
            (&["-L", "other", "-b", "1024"][..], 1024, 8),
            (
                &["-L", "writable", "-O", "64bit", "-b", "4096"][..],
                4096,
                12,
            ),
        ] {
            let img = dir.join("fs.img");
            mke2fs(&img, mib, args);
            let sb = superblock(&File::open(&img).unwrap()).unwrap().unwrap();
            assert_eq!(sb.label, args[1]);
            assert_eq!(sb.block_size, block);
            assert_eq!(sb.blocks, (mib << 20) / block);
        }
        let plain = dir.join("zero.img");
        fs::write(&plain, vec![0u8; 4096]).unwrap();
        assert_eq!(superblock(&File::open(&plain).unwrap()).unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A fake /sys/class/block and /dev: disk vda (partitions 1 and 2) and disk sda
    /// (partition 1), with `dev` numbers, and ext4 images as the partitions' nodes.
    struct Fixture {
        root: PathBuf,
        sys: PathBuf,
        dev: PathBuf,
    }

    impl Fixture {
        fn new(name: &str, labels: &[(&str, &str)]) -> Fixture {
            let root = temp(name);
            let (sys, dev) = (root.join("class/block"), root.join("dev"));
            let devices = root.join("devices/block");
            fs::create_dir_all(&sys).unwrap();
            fs::create_dir_all(&dev).unwrap();
            for (disk, size) in [("vda", "4194304\n"), ("sda", "8388608\n")] {
                fs::create_dir_all(devices.join(disk)).unwrap();
                fs::write(devices.join(disk).join("size"), size).unwrap();
            }
            for (disk, name, number, start, size, devno) in [
                ("vda", "vda1", 1, 2048, 524_288, "252:1"),
                ("vda", "vda2", 2, 526_336, 131_072, "252:2"),
                ("sda", "sda1", 1, 2048, 1_048_576, "8:1"),
            ] {
                let d = devices.join(disk).join(name);
                fs::create_dir_all(&d).unwrap();
                fs::write(d.join("partition"), format!("{number}\n")).unwrap();
                fs::write(d.join("start"), format!("{start}\n")).unwrap();
                fs::write(d.join("size"), format!("{size}\n")).unwrap();
                fs::write(d.join("dev"), format!("{devno}\n")).unwrap();
                std::os::unix::fs::symlink(&d, sys.join(name)).unwrap();
            }
            for (name, label) in labels {
                mke2fs(&dev.join(name), 4, &["-L", label]);
            }
            Fixture { root, sys, dev }
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finds_writable_by_ext4_label_with_its_disk_and_sectors() {
        let f = Fixture::new("find", &[("vda1", "system-boot"), ("vda2", LABEL)]);
        let names = names(&["vda1", "vda2"]);
        assert_eq!(
            find_writable(&f.sys, &f.dev, &names, "vda").unwrap(),
            Partition {
                device: f.dev.join("vda2"),
                disk: f.dev.join("vda"),
                number: 2,
                start: 526_336,
                size: 131_072,
                disk_size: 4_194_304,
            }
        );
        let err = find_writable(&f.sys, &f.dev, &names[..1], "vda").unwrap_err();
        assert!(
            matches!(err, Failure::NoWritable { ref seen } if seen == "vda1"),
            "{err:?}"
        );
    }

    /// A `writable` on another disk (a USB stick) is refused, naming both disks, when the
    /// boot disk has none; and never chosen over the boot disk's own, whatever the order.
    #[test]
    fn writable_on_another_disk_is_refused() {
        let f = Fixture::new(
            "elsewhere",
            &[("vda1", "system-boot"), ("vda2", "data"), ("sda1", LABEL)],
        );
        let err =
            find_writable(&f.sys, &f.dev, &names(&["sda1", "vda1", "vda2"]), "vda").unwrap_err();
        assert!(
            matches!(err, Failure::WritableElsewhere { ref device, ref disk, ref boot_disk }
                if *device == f.dev.join("sda1")
                    && *disk == f.dev.join("sda")
                    && *boot_disk == f.dev.join("vda")),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("sda1") && text.contains("not on") && text.contains("vda"),
            "{text}"
        );
        assert!(
            err.todo().contains("remove the other disk"),
            "{}",
            err.todo()
        );
        // Booted from sda, the same stick's writable is the one.
        let found = find_writable(&f.sys, &f.dev, &names(&["vda2", "sda1"]), "sda").unwrap();
        assert_eq!(found.device, f.dev.join("sda1"));

        // Both disks have one: the boot disk's wins even when the other is listed first.
        let both = Fixture::new("both", &[("vda2", LABEL), ("sda1", LABEL)]);
        let found = find_writable(&both.sys, &both.dev, &names(&["sda1", "vda2"]), "vda").unwrap();
        assert_eq!(found.device, both.dev.join("vda2"));
    }

    #[test]
    fn the_boot_disk_is_found_by_device_number() {
        let f = Fixture::new("devno", &[]);
        let all = names(&["sda1", "vda1", "vda2"]);
        assert_eq!(disk_of(&f.sys, &all, 252, 1).as_deref(), Some("vda"));
        assert_eq!(disk_of(&f.sys, &all, 8, 1).as_deref(), Some("sda"));
        assert_eq!(disk_of(&f.sys, &all, 8, 2), None);
    }
}
