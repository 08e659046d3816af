//! Reads the volume label of a FAT12/16/32 file system without mounting it.
//!
//! Two places can hold the label: the boot sector (offset 0x2B on FAT12/16, 0x47 on FAT32,
//! valid when the extended boot signature 0x29 is present) and a volume-label entry in the
//! root directory. Like blkid, the root-directory entry wins when both exist, since tools
//! that relabel a mounted volume only update that one. Every offset is checked against the
//! boot sector's own geometry, and reads are bounded, so a corrupt disk yields `None` or an
//! error, never a panic.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Something we can read bytes from at an offset: a block device, or a buffer in tests.
pub trait ReadAt {
    /// Fills `buf` from `offset`, failing if the source is too short.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| short())?;
        let end = start.checked_add(buf.len()).ok_or_else(short)?;
        buf.copy_from_slice(self.get(start..end).ok_or_else(short)?);
        Ok(())
    }
}

fn short() -> io::Error {
    io::Error::from(io::ErrorKind::UnexpectedEof)
}

/// Largest root directory region we scan for the label entry (the label is near the top).
const MAX_ROOT_SCAN: u64 = 64 * 1024;

const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_LONG_NAME: u8 = 0x0F;

/// The volume label of the FAT file system in `dev`, or `None` if it is not FAT or has no label.
pub fn volume_label(dev: &(impl ReadAt + ?Sized)) -> io::Result<Option<String>> {
    let mut boot = [0u8; 512];
    dev.read_exact_at(&mut boot, 0)?;
    let Some(geometry) = Geometry::parse(&boot) else {
        return Ok(None);
    };
    if let Some(label) = root_dir_label(dev, &geometry)? {
        return Ok(Some(label));
    }
    Ok(boot_sector_label(&boot, &geometry))
}

/// The part of the BIOS parameter block we need to find the root directory.
#[derive(Debug, PartialEq, Eq)]
struct Geometry {
    bytes_per_sector: u64,
    sectors_per_cluster: u64,
    fat32: bool,
    /// Byte offset of the root directory (FAT12/16) or of its first cluster (FAT32).
    root_offset: u64,
    /// Bytes of root directory to scan.
    root_len: u64,
}

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

impl Geometry {
    fn parse(boot: &[u8; 512]) -> Option<Geometry> {
        if boot[510..512] != [0x55, 0xAA] || !matches!(boot[0], 0xEB | 0xE9) {
            return None;
        }
        let bytes_per_sector = le16(boot, 0x0B);
        let sectors_per_cluster = u64::from(boot[0x0D]);
        let reserved = le16(boot, 0x0E);
        let fats = u64::from(boot[0x10]);
        let root_entries = le16(boot, 0x11);
        let fat_size16 = le16(boot, 0x16);
        if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
            || !sectors_per_cluster.is_power_of_two()
            || sectors_per_cluster > 128
            || reserved == 0
            || fats == 0
        {
            return None;
        }
        let fat32 = fat_size16 == 0 && root_entries == 0;
        let fat_size = if fat32 { le32(boot, 0x24) } else { fat_size16 };
        if fat_size == 0 {
            return None;
        }
        // All factors are at most 32 bits, so these products cannot overflow a u64.
        let fats_end = (reserved + fats * fat_size) * bytes_per_sector;
        let cluster = sectors_per_cluster * bytes_per_sector;
        let (root_offset, root_len) = if fat32 {
            let root_cluster = le32(boot, 0x2C);
            if root_cluster < 2 {
                return None;
            }
            (fats_end + (root_cluster - 2) * cluster, cluster)
        } else {
            (fats_end, root_entries * 32)
        };
        Some(Geometry {
            bytes_per_sector,
            sectors_per_cluster,
            fat32,
            root_offset,
            root_len: root_len.min(MAX_ROOT_SCAN),
        })
    }
}

fn boot_sector_label(boot: &[u8; 512], g: &Geometry) -> Option<String> {
    let (signature, label) = if g.fat32 { (0x42, 0x47) } else { (0x26, 0x2B) };
    if boot[signature] != 0x29 {
        return None;
    }
    let label = decode_label(&boot[label..label + 11])?;
    // mkfs writes "NO NAME" when it was given no label.
    (label != "NO NAME").then_some(label)
}

fn root_dir_label(dev: &(impl ReadAt + ?Sized), g: &Geometry) -> io::Result<Option<String>> {
    let mut entry = [0u8; 32];
    let mut offset = 0;
    while offset + 32 <= g.root_len {
        match dev.read_exact_at(&mut entry, g.root_offset + offset) {
            Ok(()) => {}
            // A root directory beyond the end of the device means a corrupt BPB, not an I/O
            // problem: fall back to the boot sector label.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        offset += 32;
        match entry[0] {
            0x00 => break,    // end of directory
            0xE5 => continue, // deleted entry
            _ => {}
        }
        let attr = entry[11];
        if attr & ATTR_LONG_NAME != ATTR_LONG_NAME && attr & ATTR_VOLUME_ID != 0 {
            return Ok(decode_label(&entry[..11]));
        }
    }
    Ok(None)
}

/// An 11-byte label field without its space padding; `None` if empty.
fn decode_label(raw: &[u8]) -> Option<String> {
    let text: String = raw.iter().map(|&b| char::from(b)).collect();
    let text = text.trim_end_matches([' ', '\0']);
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a small FAT image: boot sector, FATs, root directory, with the given labels.
    pub(crate) fn image(fat32: bool, boot_label: Option<&str>, dir_label: Option<&str>) -> Vec<u8> {
        let bps = 512usize;
        let mut img = vec![0u8; 64 * bps];
        img[0] = 0xEB;
        img[1] = 0x3C;
        img[2] = 0x90;
        img[3..11].copy_from_slice(b"mkfs.fat");
        img[0x0B..0x0D].copy_from_slice(&(bps as u16).to_le_bytes());
        img[0x0D] = 1; // sectors per cluster
        img[0x0E..0x10].copy_from_slice(&2u16.to_le_bytes()); // reserved sectors
        img[0x10] = 2; // FATs
        let root_offset;
        let (sig, lab) = if fat32 {
            img[0x24..0x28].copy_from_slice(&3u32.to_le_bytes()); // sectors per FAT
            img[0x2C..0x30].copy_from_slice(&4u32.to_le_bytes()); // root cluster
                                                                  // data starts after 2 + 2*3 = 8 sectors; cluster 4 is 2 clusters further
            root_offset = 10 * bps;
            (0x42, 0x47)
        } else {
            img[0x11..0x13].copy_from_slice(&16u16.to_le_bytes()); // root entries
            img[0x16..0x18].copy_from_slice(&2u16.to_le_bytes()); // sectors per FAT
            root_offset = 6 * bps;
            (0x26, 0x2B)
        };
        if let Some(label) = boot_label {
            img[sig] = 0x29;
            let mut field = [b' '; 11];
            field[..label.len()].copy_from_slice(label.as_bytes());
            img[lab..lab + 11].copy_from_slice(&field);
        }
        // a deleted entry and a long-name entry before the label must be skipped
        img[root_offset] = 0xE5;
        img[root_offset + 11] = ATTR_VOLUME_ID;
        img[root_offset + 32] = 0x41;
        img[root_offset + 32 + 11] = ATTR_LONG_NAME;
        if let Some(label) = dir_label {
            let e = root_offset + 64;
            let mut field = [b' '; 11];
            field[..label.len()].copy_from_slice(label.as_bytes());
            img[e..e + 11].copy_from_slice(&field);
            img[e + 11] = ATTR_VOLUME_ID;
        }
        img[510] = 0x55;
        img[511] = 0xAA;
        img
    }

    #[test]
    fn fat32_boot_sector_label() {
        let img = image(true, Some("system-boot"), None);
        assert_eq!(
            volume_label(&img[..]).ok().flatten().as_deref(),
            Some("system-boot")
        );
    }

    #[test]
    fn fat16_boot_sector_label() {
        let img = image(false, Some("SYSTEM-BOOT"), None);
        assert_eq!(
            volume_label(&img[..]).ok().flatten().as_deref(),
            Some("SYSTEM-BOOT")
        );
    }

    #[test]
    fn fat32_root_dir_label_wins() {
        let img = image(true, Some("OLD"), Some("system-boot"));
        assert_eq!(
            volume_label(&img[..]).ok().flatten().as_deref(),
            Some("system-boot")
        );
    }

    #[test]
    fn fat16_root_dir_label_only() {
        let img = image(false, None, Some("system-boot"));
        assert_eq!(
            volume_label(&img[..]).ok().flatten().as_deref(),
            Some("system-boot")
        );
    }

    #[test]
    fn no_name_means_no_label() {
        let img = image(true, Some("NO NAME"), None);
        assert_eq!(volume_label(&img[..]).ok().flatten(), None);
        let img = image(false, None, None);
        assert_eq!(volume_label(&img[..]).ok().flatten(), None);
    }

    #[test]
    fn not_fat() {
        let mut img = image(true, Some("system-boot"), None);
        img[510] = 0;
        assert_eq!(volume_label(&img[..]).ok().flatten(), None);
        let mut img = image(true, Some("system-boot"), None);
        img[0x0B] = 0x33; // bytes per sector 0x233
        assert_eq!(volume_label(&img[..]).ok().flatten(), None);
        let zeros = vec![0u8; 4096];
        assert_eq!(volume_label(&zeros[..]).ok().flatten(), None);
    }

    #[test]
    fn short_device_is_an_error_not_a_panic() {
        let img = image(true, Some("system-boot"), None);
        assert!(volume_label(&img[..100]).is_err());
    }

    #[test]
    fn root_dir_past_the_end_falls_back_to_boot_sector() {
        let mut img = image(true, Some("system-boot"), Some("OTHER"));
        img[0x2C..0x30].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        img.truncate(4096);
        assert_eq!(
            volume_label(&img[..]).ok().flatten().as_deref(),
            Some("system-boot")
        );
    }

    #[test]
    fn real_mkfs_image_if_available() {
        // Cross-check with dosfstools when the host has it; the built images above are the
        // tests that always run.
        let path = std::env::temp_dir().join(format!("cf-agent-fat-{}.img", std::process::id()));
        let sized = File::create(&path)
            .and_then(|f| f.set_len(64 << 20))
            .is_ok();
        let ok = sized
            && std::process::Command::new("/sbin/mkfs.vfat")
                .args(["-F", "32", "-n", "system-boot"])
                .arg(&path)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
        if !ok {
            eprintln!("mkfs.vfat not available: skipped the dosfstools cross-check");
        } else {
            let file = File::open(&path).unwrap();
            let label = volume_label(&file).unwrap();
            assert!(label.unwrap().eq_ignore_ascii_case("system-boot"));
        }
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic spread of corrupt boot sectors around a valid one.
        let base = image(true, Some("system-boot"), Some("x"));
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..2000 {
            let mut img = base.clone();
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % 512) as usize;
                img[at] = (seed >> 32) as u8;
            }
            let _ = volume_label(&img[..]);
        }
    }
}
