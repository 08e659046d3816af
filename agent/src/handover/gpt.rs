//! Growing the last partition of a GPT disk to the end of a disk that got larger (a card
//! bigger than the image): the backup table moves to the new end, the partition's entry
//! reaches the new last usable sector, every CRC32 is rewritten, and the protective MBR
//! covers the new size.
//!
//! # Power cuts
//!
//! Linux reads only the primary header (sector 1) and its entries unless `gpt` is on the
//! command line: a primary that fails its checksums leaves the disk without partitions and
//! the device without a boot partition. So the primary is never written in place in two
//! pieces. It changes by single-sector header writes (a sector is written whole or not at
//! all), each switching between two complete entry arrays, the one it leaves untouched:
//!
//! 1. The protective MBR's size. A cut leaves the old GPT, valid; the next boot starts
//!    again.
//! 2. The backup entries and header at the new end. A cut leaves the old GPT, its backup
//!    at the old end: nothing refers to the new copy yet. The next boot starts again.
//! 3. The grown entries in the staging sectors, right after the usual ones (unused
//!    sectors, or made unusable for the moment by step 4's first usable sector). A cut:
//!    as in 2.
//! 4. The primary header, pointing at the staged entries and the new backup. A cut after
//!    it leaves the grown GPT, valid (`sfdisk --verify` passes), its entries in the staging
//!    sectors; the next boot does 5 and 6.
//! 5. The grown entries at their usual place, LBA 2, unused since step 4. A cut: as in 4.
//! 6. The primary header, pointing at LBA 2: the grown GPT as partitioning tools write it.
//!
//! Before step 4 Linux reads the disk as it was when it was enlarged (warning that the
//! backup is not at the end); from step 4 on, without a warning. Each step is flushed to
//! the disk before the next one starts. The old backup copy stays
//! where it was, inside the grown partition, unreferenced: the file system's blocks cover
//! it when it grows.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Bytes per sector: the GPT's logical block. Disks of 4096-byte sectors are not grown.
pub const SECTOR: u64 = 512;
/// Where the primary entries live on a disk of 512-byte sectors.
const HOME: u64 = 2;
/// The largest entry array read: 128 entries of 128 bytes is usual, 1 MiB is plenty.
const MAX_ENTRIES_BYTES: u64 = 1 << 20;
/// Less than this short of the end counts as full: partitioning tools (sfdisk, parted)
/// end the last partition on a 1 MiB boundary. Grown, it ends at the last usable sector,
/// as `build-image` ends it for an image of a given size.
const ALIGN: u64 = (1 << 20) / SECTOR;
const SIGNATURE: &[u8; 8] = b"EFI PART";
const PROTECTIVE: u8 = 0xEE;

/// Why a GPT disk's `writable` cannot be grown. Nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GptError {
    /// The primary header or its entries are damaged.
    #[error("the primary GPT is damaged ({0}); it is left as it is: check the card with `sfdisk --verify` on another computer")]
    BadPrimary(&'static str),
    /// A layout this code did not write and will not guess about.
    #[error("the GPT has {0}; it is left as it is")]
    Unusual(&'static str),
    /// No entry starts where the partition starts.
    #[error("no GPT entry starts at sector {0}")]
    NotFound(u64),
    /// Another partition lies after it: growing would overlap it.
    #[error("GPT partition {0} is not the last one on the disk")]
    NotLast(u32),
    /// The disk is smaller than the table says.
    #[error("the disk ({0} sectors) is smaller than its GPT says")]
    DiskTooSmall(u64),
    /// Reading or writing the disk failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Sector-addressed access to a disk: a block device, or an image file in tests.
pub trait Disk {
    /// Reads `buf.len()` bytes from sector `lba`.
    fn read(&self, buf: &mut [u8], lba: u64) -> io::Result<()>;
    /// Writes `buf` at sector `lba`.
    fn write(&self, buf: &[u8], lba: u64) -> io::Result<()>;
    /// Returns once everything written is on the medium.
    fn flush(&self) -> io::Result<()>;
}

impl Disk for File {
    fn read(&self, buf: &mut [u8], lba: u64) -> io::Result<()> {
        self.read_exact_at(buf, lba * SECTOR)
    }
    fn write(&self, buf: &[u8], lba: u64) -> io::Result<()> {
        self.write_all_at(buf, lba * SECTOR)
    }
    fn flush(&self) -> io::Result<()> {
        self.sync_all()
    }
}

/// Whether the MBR sector `mbr` is a GPT's protective MBR.
pub fn is_protective(mbr: &[u8; 512]) -> bool {
    mbr[510..] == [0x55, 0xAA] && (0..4).any(|i| mbr[446 + 16 * i + 4] == PROTECTIVE)
}

/// CRC-32 (IEEE, reflected), as GPT uses it. Bitwise: the tables are small and rare.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn le64(b: &[u8], o: usize) -> u64 {
    u64::from(le32(b, o)) | u64::from(le32(b, o + 4)) << 32
}

fn put64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

/// A GPT header sector whose signature, size and checksum were checked.
#[derive(Clone, PartialEq, Eq)]
struct Header([u8; 512]);

impl Header {
    /// Reads and checks the header at `lba`; `None` when it is not a valid one.
    fn read(disk: &dyn Disk, lba: u64) -> io::Result<Option<Header>> {
        let mut h = [0u8; 512];
        disk.read(&mut h, lba)?;
        Ok(Header::check(h, lba).ok().map(|()| Header(h)))
    }

    fn check(h: [u8; 512], lba: u64) -> Result<(), &'static str> {
        if &h[..8] != SIGNATURE {
            return Err("no \"EFI PART\" signature");
        }
        let size = le32(&h, 12) as usize;
        if !(92..=512).contains(&size) {
            return Err("header size out of range");
        }
        let mut c = h;
        c[16..20].fill(0);
        if crc32(&c[..size]) != le32(&h, 16) {
            return Err("header checksum mismatch");
        }
        if le64(&h, 24) != lba {
            return Err("header not where it says it is");
        }
        let (count, entry) = (u64::from(le32(&h, 80)), u64::from(le32(&h, 84)));
        if entry < 128 || entry % 128 != 0 || count * entry > MAX_ENTRIES_BYTES {
            return Err("entry array size out of range");
        }
        Ok(())
    }

    fn alternate(&self) -> u64 {
        le64(&self.0, 32)
    }
    fn first_usable(&self) -> u64 {
        le64(&self.0, 40)
    }
    fn last_usable(&self) -> u64 {
        le64(&self.0, 48)
    }
    fn entries_lba(&self) -> u64 {
        le64(&self.0, 72)
    }
    fn entries_crc(&self) -> u32 {
        le32(&self.0, 88)
    }
    /// The entry array's length in bytes, and in whole sectors.
    fn entries_len(&self) -> (usize, u64) {
        let bytes = u64::from(le32(&self.0, 80)) * u64::from(le32(&self.0, 84));
        (bytes as usize, bytes.div_ceil(SECTOR))
    }
    fn entry_size(&self) -> usize {
        le32(&self.0, 84) as usize
    }

    /// This header with its locations and usable range replaced, and its checksum redone.
    fn with(
        &self,
        (me, other, entries): (u64, u64, u64),
        (first, last): (u64, u64),
        entries_crc: u32,
    ) -> Header {
        let mut h = self.0;
        put64(&mut h, 24, me);
        put64(&mut h, 32, other);
        put64(&mut h, 40, first);
        put64(&mut h, 48, last);
        put64(&mut h, 72, entries);
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        h[16..20].fill(0);
        let crc = crc32(&h[..le32(&h, 12) as usize]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        Header(h)
    }
}

/// Reads the entries `h` points to, whole sectors; `None` when their checksum fails.
fn read_entries(disk: &dyn Disk, h: &Header) -> io::Result<Option<Vec<u8>>> {
    let (bytes, sectors) = h.entries_len();
    let mut e = vec![0u8; (sectors * SECTOR) as usize];
    disk.read(&mut e, h.entries_lba())?;
    Ok((crc32(&e[..bytes]) == h.entries_crc()).then_some(e))
}

fn write(disk: &dyn Disk, data: &[u8], lba: u64) -> io::Result<()> {
    disk.write(data, lba)?;
    disk.flush()
}

/// Grows the GPT entry that starts at sector `start`, the last partition, to the end of
/// `disk`, `disk_sectors` long, and moves the backup table there (see the module's table
/// for the order of writes). Returns the partition's length in sectors when anything was
/// written, `None` when the table covers the disk already (and nothing was written).
pub fn grow(disk: &dyn Disk, start: u64, disk_sectors: u64) -> Result<Option<u64>, GptError> {
    grow_once(disk, start, disk_sectors, true)
}

/// [`grow`]; `resume`: whether a staged primary may be moved home (once per call).
fn grow_once(
    disk: &dyn Disk,
    start: u64,
    disk_sectors: u64,
    resume: bool,
) -> Result<Option<u64>, GptError> {
    let last = disk_sectors
        .checked_sub(1)
        .ok_or(GptError::DiskTooSmall(disk_sectors))?;
    let mut h = [0u8; 512];
    disk.read(&mut h, 1)?;
    Header::check(h, 1).map_err(GptError::BadPrimary)?;
    let primary = Header(h);
    let entries = read_entries(disk, &primary)?
        .ok_or(GptError::BadPrimary("entry array checksum mismatch"))?;
    let (bytes, sectors) = primary.entries_len();
    if primary.alternate() > last || primary.last_usable() >= last {
        return Err(GptError::DiskTooSmall(disk_sectors));
    }
    if primary.entries_lba() != HOME {
        if !resume {
            return Err(GptError::Unusual("its primary entries away from sector 2"));
        }
        // A cut between steps 4 and 6: finish the move, then see whether more is to do.
        let length = finish(disk, &primary, &entries[..bytes], start)?;
        return Ok(grow_once(disk, start, disk_sectors, false)?.or(length));
    }

    // The partition: the entry starting at `start`, with no other entry after it.
    let size = primary.entry_size();
    let used = entries[..bytes]
        .chunks(size)
        .enumerate()
        .filter(|(_, e)| e[..16].iter().any(|&b| b != 0));
    let (mut index, mut first_start) = (None, u64::MAX);
    for (i, e) in used.clone() {
        first_start = first_start.min(le64(e, 32));
        if le64(e, 32) == start {
            index = Some(i);
        }
    }
    let index = index.ok_or(GptError::NotFound(start))?;
    if used.clone().any(|(_, e)| le64(e, 32) > start) {
        return Err(GptError::NotLast(index as u32 + 1));
    }
    let last_usable = last
        .checked_sub(sectors + 1)
        .ok_or(GptError::DiskTooSmall(disk_sectors))?;
    let backup_entries = last_usable + 1;
    let end = le64(&entries, index * size + 40);
    if end > last_usable {
        return Err(GptError::DiskTooSmall(disk_sectors));
    }
    if last_usable - end < ALIGN
        && primary.alternate() == last
        && primary.last_usable() == last_usable
    {
        return Ok(None);
    }
    // The staging sectors: right after the usual entries, before every partition.
    let staged = HOME + sectors;
    if staged + sectors > first_start {
        return Err(GptError::Unusual(
            "no free sectors between its entries and its first partition",
        ));
    }

    let mut grown = entries;
    put64(&mut grown, index * size + 40, last_usable);
    let crc = crc32(&grown[..bytes]);
    let first = primary.first_usable();
    let backup = primary.with((last, 1, backup_entries), (first, last_usable), crc);
    let staging = primary.with(
        (1, last, staged),
        (first.max(staged + sectors), last_usable),
        crc,
    );

    // 1: the protective MBR's size (the kernel reads only its type).
    let mut mbr = [0u8; 512];
    disk.read(&mut mbr, 0)?;
    let covered = u32::try_from(last).unwrap_or(u32::MAX).to_le_bytes();
    if let Some(i) = (0..4).find(|i| mbr[446 + 16 * i + 4] == PROTECTIVE) {
        let o = 446 + 16 * i + 12;
        if mbr[o..o + 4] != covered {
            mbr[o..o + 4].copy_from_slice(&covered);
            write(disk, &mbr, 0)?;
        }
    }
    // 2: the backup, entries first, then its header.
    disk.write(&grown, backup_entries)?;
    write(disk, &backup.0, last)?;
    // 3, 4: the staged copy, then the primary switched to it.
    write(disk, &grown, staged)?;
    write(disk, &staging.0, 1)?;
    finish(disk, &staging, &grown[..bytes], start)
}

/// Steps 5 and 6: moves the primary entries from the staging sectors, where `primary`
/// points, back to LBA 2, as the backup at the disk's end describes them.
fn finish(
    disk: &dyn Disk,
    primary: &Header,
    entries: &[u8],
    start: u64,
) -> Result<Option<u64>, GptError> {
    let unusual = GptError::Unusual("its primary entries away from sector 2");
    // Only a table this code staged: its backup is written, valid and agrees.
    let backup = match Header::read(disk, primary.alternate())? {
        Some(b) if b.alternate() == 1 && b.entries_crc() == primary.entries_crc() => b,
        _ => return Err(unusual),
    };
    let (_, sectors) = primary.entries_len();
    if HOME + sectors > primary.entries_lba() || backup.0[56..72] != primary.0[56..72] {
        return Err(unusual);
    }
    let size = primary.entry_size();
    let entry = entries
        .chunks(size)
        .find(|e| e[..16].iter().any(|&b| b != 0) && le64(e, 32) == start)
        .ok_or(GptError::NotFound(start))?;
    let length = (le64(entry, 40) + 1)
        .checked_sub(start)
        .ok_or(GptError::Unusual("an entry that ends before it starts"))?;
    let mut padded = entries.to_vec();
    padded.resize((sectors * SECTOR) as usize, 0);
    let home = backup.with(
        (1, primary.alternate(), HOME),
        (backup.first_usable(), backup.last_usable()),
        backup.entries_crc(),
    );
    // 5, 6.
    write(disk, &padded, HOME)?;
    write(disk, &home.0, 1)?;
    Ok(Some(length))
}

#[cfg(test)]
mod tests;
