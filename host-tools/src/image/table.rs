//! Partition tables: writing an MBR, or a GPT with its protective MBR and backup copy, and
//! reading either back.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::gadget::{Guid, PartType, Schema, Structure};
use super::geometry::SECTOR;
use super::{io_err, ImageError};

/// GPT entries: 128 of 128 bytes, 32 sectors.
const GPT_ENTRIES: usize = 128;
const GPT_ENTRY_SIZE: usize = 128;
const GPT_ENTRIES_SECTORS: u64 = (GPT_ENTRIES * GPT_ENTRY_SIZE) as u64 / SECTOR;
/// The MBR type that marks a disk as GPT.
const PROTECTIVE_TYPE: u8 = 0xee;
/// CHS "beyond 8 GiB, use the LBA fields", as partitioning tools write for LBA partitions.
const CHS_LBA: [u8; 3] = [0xfe, 0xff, 0xff];

/// One partition read back from an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based number, as Linux names it (`mmcblk0p1`).
    pub number: u32,
    /// Offset in bytes.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// The MBR type byte (MBR disks).
    pub mbr_type: Option<u8>,
    /// The GPT type GUID (GPT disks).
    pub gpt_type: Option<Guid>,
    /// The GPT partition name (GPT disks).
    pub name: Option<String>,
}

/// The ids a table gets, derived from the gadget so that builds are reproducible.
#[derive(Debug, Clone, Copy)]
pub struct TableIds {
    /// MBR disk signature.
    pub disk_signature: u32,
    /// GPT disk GUID.
    pub disk_guid: Guid,
}

/// Writes the partition table for `structures` into the first (and, for GPT, last) sectors
/// of `file`, which is `disk_size` bytes long. Bytes 0..440 are kept (boot code).
pub fn write_table(
    file: &File,
    path: &Path,
    schema: Schema,
    structures: &[Structure],
    disk_size: u64,
    ids: TableIds,
    partition_guid: &dyn Fn(&Structure) -> Guid,
) -> Result<(), ImageError> {
    let mut mbr = [0u8; 512];
    file.read_exact_at(&mut mbr[..440], 0)
        .map_err(io_err("read", path))?;
    let parts: Vec<&Structure> = structures.iter().filter(|s| s.is_partition()).collect();
    let sectors = disk_size / SECTOR;
    match schema {
        Schema::Mbr => {
            mbr[440..444].copy_from_slice(&ids.disk_signature.to_le_bytes());
            for (i, s) in parts.iter().enumerate() {
                let ty = match s.part_type {
                    PartType::Mbr(b) | PartType::Hybrid(b, _) => b,
                    // The gadget validation refuses GUID-only types on MBR volumes.
                    PartType::Gpt(_) | PartType::Bare => 0,
                };
                let entry = mbr_entry(ty, s.offset / SECTOR, s.size / SECTOR);
                mbr[446 + 16 * i..462 + 16 * i].copy_from_slice(&entry);
            }
        }
        Schema::Gpt => {
            mbr[446..462].copy_from_slice(&mbr_entry(PROTECTIVE_TYPE, 1, sectors - 1));
            // The protective entry starts at CHS 0/0/2, the sector after the MBR.
            mbr[447..450].copy_from_slice(&[0x00, 0x02, 0x00]);
            let mut entries = vec![0u8; GPT_ENTRIES * GPT_ENTRY_SIZE];
            for (i, s) in parts.iter().enumerate() {
                let ty = match s.part_type {
                    PartType::Gpt(g) | PartType::Hybrid(_, g) => g,
                    PartType::Mbr(_) | PartType::Bare => Guid([0; 16]),
                };
                let e = &mut entries[i * GPT_ENTRY_SIZE..(i + 1) * GPT_ENTRY_SIZE];
                e[0..16].copy_from_slice(&ty.to_disk_bytes());
                e[16..32].copy_from_slice(&partition_guid(s).to_disk_bytes());
                e[32..40].copy_from_slice(&(s.offset / SECTOR).to_le_bytes());
                e[40..48].copy_from_slice(&(s.end() / SECTOR - 1).to_le_bytes());
                let name: Vec<u16> = s.name.as_deref().unwrap_or("").encode_utf16().collect();
                for (j, unit) in name.iter().take(36).enumerate() {
                    e[56 + 2 * j..58 + 2 * j].copy_from_slice(&unit.to_le_bytes());
                }
            }
            let entries_crc = crc32fast::hash(&entries);
            let last = sectors - 1;
            let backup_entries = last - GPT_ENTRIES_SECTORS;
            let header = |current: u64, other: u64, entries_lba: u64| {
                gpt_header(
                    current,
                    other,
                    2 + GPT_ENTRIES_SECTORS,
                    backup_entries - 1,
                    ids.disk_guid,
                    entries_lba,
                    entries_crc,
                )
            };
            let write = |data: &[u8], lba: u64| {
                file.write_all_at(data, lba * SECTOR)
                    .map_err(io_err("write", path))
            };
            write(&header(1, last, 2), 1)?;
            write(&entries, 2)?;
            write(&entries, backup_entries)?;
            write(&header(last, 1, backup_entries), last)?;
        }
    }
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    file.write_all_at(&mbr, 0).map_err(io_err("write", path))
}

fn mbr_entry(ty: u8, start: u64, sectors: u64) -> [u8; 16] {
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let mut e = [0u8; 16];
    e[1..4].copy_from_slice(&CHS_LBA);
    e[4] = ty;
    e[5..8].copy_from_slice(&CHS_LBA);
    e[8..12].copy_from_slice(&clamp(start).to_le_bytes());
    e[12..16].copy_from_slice(&clamp(sectors).to_le_bytes());
    e
}

/// One GPT header sector (92 meaningful bytes, CRC over them).
fn gpt_header(
    current: u64,
    backup: u64,
    first_usable: u64,
    last_usable: u64,
    disk_guid: Guid,
    entries_lba: u64,
    entries_crc: u32,
) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[0..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&current.to_le_bytes());
    h[32..40].copy_from_slice(&backup.to_le_bytes());
    h[40..48].copy_from_slice(&first_usable.to_le_bytes());
    h[48..56].copy_from_slice(&last_usable.to_le_bytes());
    h[56..72].copy_from_slice(&disk_guid.to_disk_bytes());
    h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
    h[80..84].copy_from_slice(&(GPT_ENTRIES as u32).to_le_bytes());
    h[84..88].copy_from_slice(&(GPT_ENTRY_SIZE as u32).to_le_bytes());
    h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
    let crc = crc32fast::hash(&h[..92]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Reads the partitions of an MBR or GPT disk image (the primary GPT, checksums verified).
pub fn read_partitions(path: &Path) -> Result<Vec<Partition>, ImageError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let bad = |problem: &str| ImageError::BadTable {
        path: path.to_path_buf(),
        problem: problem.into(),
    };
    let mut mbr = [0u8; 512];
    file.read_exact_at(&mut mbr, 0)
        .map_err(|_| bad("shorter than one sector: not a disk image"))?;
    if mbr[510..512] != [0x55, 0xaa] {
        return Err(bad(
            "no MBR signature (55 AA) in the first sector: not a disk image",
        ));
    }
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let mut out = Vec::new();
    for i in 0..4u32 {
        let e = &mbr[446 + 16 * i as usize..462 + 16 * i as usize];
        let (ty, start, count) = (e[4], u32_at(e, 8), u32_at(e, 12));
        if ty == PROTECTIVE_TYPE {
            return read_gpt(&file, path);
        }
        if ty != 0 && count != 0 {
            out.push(Partition {
                number: i + 1,
                offset: u64::from(start) * SECTOR,
                size: u64::from(count) * SECTOR,
                mbr_type: Some(ty),
                gpt_type: None,
                name: None,
            });
        }
    }
    Ok(out)
}

fn read_gpt(file: &File, path: &Path) -> Result<Vec<Partition>, ImageError> {
    let bad = |problem: String| ImageError::BadTable {
        path: path.to_path_buf(),
        problem,
    };
    let mut h = [0u8; 512];
    file.read_exact_at(&mut h, SECTOR)
        .map_err(|_| bad("protective MBR but no GPT header".into()))?;
    if &h[0..8] != b"EFI PART" {
        return Err(bad(
            "protective MBR but no \"EFI PART\" header in sector 1".into()
        ));
    }
    let le32 = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
    let le64 = |b: &[u8], o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(a)
    };
    let header_size = le32(12) as usize;
    if !(92..=512).contains(&header_size) {
        return Err(bad(format!(
            "GPT header size {header_size} is out of range"
        )));
    }
    let mut check = h;
    check[16..20].fill(0);
    if crc32fast::hash(&check[..header_size]) != le32(16) {
        return Err(bad("GPT header checksum does not match".into()));
    }
    let (count, size) = (le32(80) as usize, le32(84) as usize);
    if count > 1024 || !(128..=1024).contains(&size) {
        return Err(bad(format!("GPT declares {count} entries of {size} bytes")));
    }
    let mut entries = vec![0u8; count * size];
    file.read_exact_at(&mut entries, le64(&h, 72) * SECTOR)
        .map_err(io_err("read", path))?;
    if crc32fast::hash(&entries) != le32(88) {
        return Err(bad("GPT entries checksum does not match".into()));
    }
    let mut out = Vec::new();
    for (i, e) in entries.chunks(size).enumerate() {
        if e[0..16].iter().all(|b| *b == 0) {
            continue;
        }
        let mut ty = [0u8; 16];
        ty.copy_from_slice(&e[0..16]);
        // Disk order back to text order: the same swap undoes itself.
        let ty = Guid(Guid(ty).to_disk_bytes());
        let (first, last) = (le64(e, 32), le64(e, 40));
        if last < first {
            return Err(bad(format!(
                "GPT entry {} ends (LBA {last}) before it starts (LBA {first})",
                i + 1
            )));
        }
        let units: Vec<u16> = e[56..128]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|u| *u != 0)
            .collect();
        out.push(Partition {
            number: i as u32 + 1,
            offset: first * SECTOR,
            size: (last + 1 - first) * SECTOR,
            mbr_type: None,
            gpt_type: Some(ty),
            name: Some(String::from_utf16_lossy(&units)),
        });
    }
    Ok(out)
}
