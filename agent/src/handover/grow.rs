//! Growing `writable` to fill its disk: the MBR or GPT entry (GPT: [`gpt`]) and the
//! kernel's view of the partition (BLKPG), then the mounted ext4 online
//! (`EXT4_IOC_RESIZE_FS`). Both are no-ops when there is nothing to grow, so every boot may
//! run them.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use log::{debug, info};

use super::gpt;
use super::writable::{superblock, Partition};
use super::{DATA, LABEL};

/// Sector size of partition tables and of sysfs's `start`/`size`.
const SECTOR: u64 = 512;

/// Why the partition table cannot be grown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// Sector 0 has no MBR signature.
    #[error("the disk has no MBR partition table")]
    NoMbr,
    /// A GPT disk (protective MBR entry): for [`gpt::grow`], not this MBR code.
    #[error("the disk has a GPT partition table, not an MBR one")]
    Gpt,
    /// No primary entry starts where the partition starts.
    #[error("no primary MBR entry starts at sector {0}")]
    NotFound(u64),
    /// Another partition lies after it: growing would overlap it.
    #[error("partition {0} is not the last one on the disk")]
    NotLast(u32),
}

/// Offsets of the MBR's four primary entries, and its signature.
const MBR_ENTRIES: usize = 446;
const MBR_ENTRY_LEN: usize = 16;
const MBR_SIGNATURE: usize = 510;
const TYPE_GPT_PROTECTIVE: u8 = 0xEE;

/// Enlarges, in the MBR sector `mbr`, the primary entry that starts at `start` to the end
/// of a disk of `disk_size` sectors. Returns its new size in sectors, or `None` when it
/// fills the disk already (or MBR's 32-bit limit).
pub fn grow_mbr(
    mbr: &mut [u8; 512],
    start: u64,
    disk_size: u64,
) -> Result<Option<u64>, TableError> {
    if mbr[MBR_SIGNATURE..] != [0x55, 0xAA] {
        return Err(TableError::NoMbr);
    }
    let entry = |i: usize| MBR_ENTRIES + i * MBR_ENTRY_LEN;
    let field = |mbr: &[u8; 512], o: usize| {
        u64::from(u32::from_le_bytes([
            mbr[o],
            mbr[o + 1],
            mbr[o + 2],
            mbr[o + 3],
        ]))
    };
    let mut target = None;
    for i in 0..4 {
        let e = entry(i);
        match mbr[e + 4] {
            0 => continue,
            TYPE_GPT_PROTECTIVE => return Err(TableError::Gpt),
            _ => {}
        }
        if field(mbr, e + 8) == start {
            target = Some(i);
        }
    }
    let i = target.ok_or(TableError::NotFound(start))?;
    for j in (0..4).filter(|&j| j != i) {
        let e = entry(j);
        if mbr[e + 4] != 0 && field(mbr, e + 8) > start {
            return Err(TableError::NotLast(i as u32 + 1));
        }
    }
    let e = entry(i);
    let old = field(mbr, e + 12);
    let new = disk_size.saturating_sub(start).min(u64::from(u32::MAX));
    if new <= old {
        return Ok(None);
    }
    // The CHS fields stay: every OS since the 1990s reads the LBA ones.
    mbr[e + 12..e + 16].copy_from_slice(&(new as u32).to_le_bytes());
    Ok(Some(new))
}

/// `struct blkpg_partition` and `struct blkpg_ioctl_arg` from <linux/blkpg.h>.
#[repr(C)]
struct BlkpgPartition {
    start: i64,
    length: i64,
    pno: i32,
    devname: [u8; 64],
    volname: [u8; 64],
}
#[repr(C)]
struct BlkpgIoctlArg {
    op: i32,
    flags: i32,
    datalen: i32,
    data: *mut BlkpgPartition,
}
/// `BLKPG` = _IO(0x12, 105), and its resize operation.
const BLKPG: u32 = 0x1269;
const BLKPG_RESIZE_PARTITION: i32 = 3;

/// Grows the last partition to the end of its disk in the MBR or the GPT, then tells the
/// kernel its new size (BLKPG, which works while other partitions of the disk are mounted). Returns
/// the partition as it is now.
pub fn grow_partition(part: &Partition) -> io::Result<Partition> {
    let disk = OpenOptions::new().read(true).write(true).open(&part.disk)?;
    let mut mbr = [0u8; 512];
    disk.read_exact_at(&mut mbr, 0)?;
    let grown = if gpt::is_protective(&mbr) {
        // Written and flushed step by step in there.
        gpt::grow(&disk, part.start, part.disk_size).map_err(|e| match e {
            gpt::GptError::Io(e) => e,
            e => io::Error::new(io::ErrorKind::InvalidData, e),
        })?
    } else {
        let new = grow_mbr(&mut mbr, part.start, part.disk_size)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if new.is_some_and(|new| new > part.size) {
            disk.write_all_at(&mbr, 0)?;
            disk.sync_all()?;
        }
        new
    };
    let Some(new) = grown else {
        debug!("{} fills its disk already", part.device.display());
        return Ok(part.clone());
    };
    let mut data = BlkpgPartition {
        start: i64::try_from(part.start * SECTOR).map_err(io::Error::other)?,
        length: i64::try_from(new * SECTOR).map_err(io::Error::other)?,
        pno: i32::try_from(part.number).map_err(io::Error::other)?,
        devname: [0; 64],
        volname: [0; 64],
    };
    let mut arg = BlkpgIoctlArg {
        op: BLKPG_RESIZE_PARTITION,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as i32,
        data: &mut data,
    };
    // SAFETY: BLKPG reads a blkpg_ioctl_arg whose data points to a blkpg_partition of
    // datalen bytes; both live on this stack frame for the call.
    let r = unsafe { libc::ioctl(disk.as_raw_fd(), BLKPG as _, &mut arg as *mut BlkpgIoctlArg) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    info!(
        "{} grown from {} to {} MiB",
        part.device.display(),
        (part.size * SECTOR) >> 20,
        (new * SECTOR) >> 20
    );
    Ok(Partition {
        size: new,
        ..part.clone()
    })
}

/// `EXT4_IOC_RESIZE_FS` = _IOW('f', 16, __u64).
const EXT4_IOC_RESIZE_FS: u32 = 0x4008_6610;

/// The blocks a file system with `block_size` bytes per block has in a partition of
/// `sectors`, if more than `blocks`.
fn blocks_to_grow(sectors: u64, block_size: u64, blocks: u64) -> Option<u64> {
    let fits = sectors * SECTOR / block_size;
    (fits > blocks).then_some(fits)
}

/// Grows the mounted ext4 at [`DATA`] online to fill its partition (a no-op when it does).
pub fn grow_filesystem(part: &Partition) -> io::Result<()> {
    let dev = File::open(&part.device)?;
    let sb = superblock(&dev)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no ext4 superblock"))?;
    let Some(new) = blocks_to_grow(part.size, sb.block_size, sb.blocks) else {
        debug!("{LABEL}'s file system fills its partition already");
        return Ok(());
    };
    let dir = File::open(DATA)?;
    // SAFETY: EXT4_IOC_RESIZE_FS reads one u64 (the new block count) from the pointer.
    let r = unsafe { libc::ioctl(dir.as_raw_fd(), EXT4_IOC_RESIZE_FS as _, &new as *const u64) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    info!(
        "{LABEL}'s file system grown from {} to {} MiB",
        (sb.blocks * sb.block_size) >> 20,
        (new * sb.block_size) >> 20
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An MBR with the given (type, start, size) primary entries.
    fn mbr(entries: &[(u8, u32, u32)]) -> [u8; 512] {
        let mut m = [0u8; 512];
        for (i, (kind, start, size)) in entries.iter().enumerate() {
            let e = MBR_ENTRIES + i * MBR_ENTRY_LEN;
            m[e + 4] = *kind;
            m[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
            m[e + 12..e + 16].copy_from_slice(&size.to_le_bytes());
        }
        m[510] = 0x55;
        m[511] = 0xAA;
        m
    }

    #[test]
    fn grows_the_last_entry_to_the_disk_end_once() {
        let mut m = mbr(&[(0x0C, 2048, 524_288), (0x83, 526_336, 131_072)]);
        let before = m;
        assert_eq!(
            grow_mbr(&mut m, 526_336, 4_194_304),
            Ok(Some(4_194_304 - 526_336))
        );
        // Only partition 2's size field changed.
        let changed: Vec<usize> = (0..512).filter(|&i| m[i] != before[i]).collect();
        assert!(
            changed.iter().all(|&i| (462 + 12..462 + 16).contains(&i)),
            "{changed:?}"
        );
        // Idempotent: the second boot finds nothing to do.
        let grown = m;
        assert_eq!(grow_mbr(&mut m, 526_336, 4_194_304), Ok(None));
        assert_eq!(m, grown);
    }

    #[test]
    fn refuses_what_it_cannot_grow() {
        let mut m = mbr(&[(0x83, 2048, 1000), (0x0C, 4096, 1000)]);
        assert_eq!(grow_mbr(&mut m, 2048, 1 << 20), Err(TableError::NotLast(1)));
        assert_eq!(
            grow_mbr(&mut m, 3000, 1 << 20),
            Err(TableError::NotFound(3000))
        );
        let mut gpt = mbr(&[(0xEE, 1, u32::MAX)]);
        assert_eq!(grow_mbr(&mut gpt, 2048, 1 << 20), Err(TableError::Gpt));
        let mut none = [0u8; 512];
        assert_eq!(grow_mbr(&mut none, 2048, 1 << 20), Err(TableError::NoMbr));
        // MBR sizes are 32-bit: a huge disk grows the entry to the limit, not past it.
        let mut big = mbr(&[(0x83, 2048, 1000)]);
        assert_eq!(
            grow_mbr(&mut big, 2048, 1 << 40),
            Ok(Some(u64::from(u32::MAX)))
        );
    }

    #[test]
    fn file_system_grows_only_when_the_partition_is_larger() {
        assert_eq!(blocks_to_grow(131_072, 4096, 16_384), None);
        assert_eq!(blocks_to_grow(262_144, 4096, 16_384), Some(32_768));
        assert_eq!(blocks_to_grow(262_144, 1024, 131_072), None);
        assert_eq!(blocks_to_grow(262_151, 4096, 32_768), None); // a partial block does not count
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn struct_layouts_match_the_kernel() {
        // sizeof from <linux/blkpg.h> on 64-bit Linux.
        assert_eq!(std::mem::size_of::<BlkpgPartition>(), 152);
    }
}
