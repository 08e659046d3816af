//! Test boot disks: an MBR image whose first partition is FAT32 labelled `system-boot`,
//! built without root or loop devices (mkfs.fat and mtools write into the image file).

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

/// Size of a test disk: a power of two, as QEMU's SD card emulation requires.
pub const DISK_SIZE: u64 = 64 << 20;
/// The partition starts at 1 MiB, as partitioning tools align it.
const PART_START_SECTOR: u64 = 2048;
const SECTOR: u64 = 512;

/// Writes `image`: MBR, one FAT32 partition labelled `system-boot` filling the disk, holding
/// `files` (paths relative to the partition root, parent folders created).
pub fn make_boot_disk(image: &Path, files: &[(&str, &[u8])]) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(image);
    let sectors = DISK_SIZE / SECTOR - PART_START_SECTOR;
    let mut mbr = vec![0u8; 512];
    let entry = &mut mbr[446..462];
    entry[0] = 0x00; // not bootable (the Pi firmware does not care)
    entry[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]); // CHS: "use LBA"
    entry[4] = 0x0c; // FAT32 with LBA
    entry[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    entry[8..12].copy_from_slice(&u32::try_from(PART_START_SECTOR)?.to_le_bytes());
    entry[12..16].copy_from_slice(&u32::try_from(sectors)?.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    let file =
        std::fs::File::create(image).with_context(|| format!("creating {}", image.display()))?;
    file.set_len(DISK_SIZE)?;
    drop(file);
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(image)?;
        f.write_all_at(&mbr, 0)?;
    }
    run(Command::new("mkfs.fat")
        .args([
            "-F",
            "32",
            "-n",
            "system-boot",
            "-i",
            "c0ef0a9e",
            "--offset",
        ])
        .arg(PART_START_SECTOR.to_string())
        .arg(image)
        .arg((sectors * SECTOR / 1024).to_string()))?;
    let target = format!("{}@@{}", image.display(), PART_START_SECTOR * SECTOR);
    // mmd fails on a folder that exists (even with -D s), so each is made once.
    let mut made = std::collections::BTreeSet::new();
    for (path, data) in files {
        let mut parent = String::new();
        for part in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, dirs)| dirs)
            .unwrap_or(&[])
        {
            parent.push('/');
            parent.push_str(part);
            if !made.insert(parent.clone()) {
                continue;
            }
            run(Command::new("mmd")
                .args(["-D", "s", "-i", &target])
                .arg(format!("::{parent}")))?;
        }
        // mcopy reads from a file: stage each one beside the image.
        let src = image.with_extension("upload");
        std::fs::write(&src, data)?;
        run(Command::new("mcopy")
            .args(["-o", "-i", &target])
            .arg(&src)
            .arg(format!("::/{path}")))?;
        std::fs::remove_file(&src)?;
    }
    Ok(())
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .with_context(|| {
            format!(
                "running {:?}: run cross/setup.sh (dosfstools, mtools)",
                cmd.get_program()
            )
        })?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_has_mbr_fat32_label_and_files() {
        let dir = crate::scratch_dir("disk-unit").unwrap();
        let img = dir.join("disk.img");
        // Two files under one folder: the folder is made once.
        make_boot_disk(
            &img,
            &[
                ("systems/20250101/model", b"type: model\n"),
                ("systems/20250101/assertions/model-etc", b"etc\n"),
            ],
        )
        .unwrap();
        let bytes = std::fs::read(&img).unwrap();
        assert_eq!(bytes.len() as u64, DISK_SIZE);
        assert!(DISK_SIZE.is_power_of_two());
        assert_eq!(&bytes[510..512], [0x55, 0xaa]);
        assert_eq!(bytes[446 + 4], 0x0c);
        let boot = &bytes[(PART_START_SECTOR * SECTOR) as usize..][..512];
        assert_eq!(&boot[0x52..0x5a], b"FAT32   ");
        assert_eq!(&boot[0x47..0x52], b"system-boot");
        let target = format!("{}@@{}", img.display(), PART_START_SECTOR * SECTOR);
        let out = Command::new("mtype")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-i", &target, "::/systems/20250101/model"])
            .output()
            .unwrap();
        assert_eq!(
            out.stdout,
            b"type: model\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
