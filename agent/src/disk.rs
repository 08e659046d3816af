//! Finds the boot partition: a FAT partition labelled `system-boot`.
//!
//! Block devices appear asynchronously after their driver module loads, so we poll
//! /sys/class/block for a bounded time. The SD card (`mmcblk*`) and virtio disks (`vd*`)
//! are looked at first, then every other partition.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::fat;

/// The label of the boot partition, as ubuntu-image writes it.
pub const LABEL: &str = "system-boot";

/// How long to wait for the boot partition to appear.
pub const WAIT: Duration = Duration::from_secs(10);

/// How often to look again while waiting.
pub const POLL: Duration = Duration::from_millis(100);

/// The boot partition that was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootPartition {
    /// Its device node, e.g. `/dev/vda1`.
    pub device: PathBuf,
    /// Its label as found on disk (any case of [`LABEL`]).
    pub label: String,
}

/// Partitions listed in a sysfs block class directory, most likely boot devices first.
pub fn partitions(sys_class_block: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(sys_class_block)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("partition").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort_by_key(|n| (rank(n), natural_key(n)));
    names
}

fn rank(name: &str) -> u8 {
    if name.starts_with("mmcblk") {
        0
    } else if name.starts_with("vd") {
        1
    } else {
        2
    }
}

/// Orders `vda2` before `vda10`: runs of digits compare by value.
fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for c in name.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if !digits.is_empty() {
                key.push((
                    std::mem::take(&mut text),
                    digits.parse().unwrap_or(u64::MAX),
                ));
                digits.clear();
            }
            text.push(c);
        }
    }
    key.push((text, digits.parse().unwrap_or(0)));
    key
}

/// The first partition in `names` whose FAT label is [`LABEL`] (case-insensitive).
pub fn find_labelled(dev_dir: &Path, names: &[String]) -> Option<BootPartition> {
    names.iter().find_map(|name| {
        let device = dev_dir.join(name);
        let file = File::open(&device).ok()?;
        let label = fat::volume_label(&file).ok()??;
        label
            .eq_ignore_ascii_case(LABEL)
            .then_some(BootPartition { device, label })
    })
}

/// Polls until the boot partition appears or `wait` passes; on timeout returns the
/// partitions that were seen, for the error message.
pub fn wait_for_boot(wait: Duration) -> Result<BootPartition, Vec<String>> {
    let start = Instant::now();
    loop {
        let names = partitions(Path::new("/sys/class/block"));
        if let Some(found) = find_labelled(Path::new("/dev"), &names) {
            return Ok(found);
        }
        if start.elapsed() >= wait {
            return Err(names);
        }
        sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cf-agent-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn partitions_only_and_in_preference_order() {
        let sys = temp("sys");
        for (name, is_part) in [
            ("sda", false),
            ("sda1", true),
            ("vda", false),
            ("vda10", true),
            ("vda2", true),
            ("mmcblk0", false),
            ("mmcblk0p1", true),
            ("loop0", false),
        ] {
            fs::create_dir(sys.join(name)).unwrap();
            if is_part {
                fs::write(sys.join(name).join("partition"), "1\n").unwrap();
            }
        }
        assert_eq!(partitions(&sys), vec!["mmcblk0p1", "vda2", "vda10", "sda1"]);
        fs::remove_dir_all(&sys).unwrap();
    }

    #[test]
    fn no_sysfs_means_no_partitions() {
        assert!(partitions(Path::new("/nonexistent/sys/class/block")).is_empty());
    }

    #[test]
    fn finds_the_labelled_partition() {
        let dev = temp("dev");
        fs::write(
            dev.join("vda1"),
            fat::tests::image(true, Some("OTHER"), None),
        )
        .unwrap();
        fs::write(dev.join("vda2"), vec![0u8; 2048]).unwrap();
        fs::write(
            dev.join("vdb1"),
            fat::tests::image(false, None, Some("SYSTEM-BOOT")),
        )
        .unwrap();
        let names: Vec<String> = ["vda0", "vda1", "vda2", "vdb1"].map(String::from).to_vec();
        assert_eq!(
            find_labelled(&dev, &names),
            Some(BootPartition {
                device: dev.join("vdb1"),
                label: "SYSTEM-BOOT".into()
            })
        );
        assert_eq!(find_labelled(&dev, &names[..3]), None);
        fs::remove_dir_all(&dev).unwrap();
    }
}
