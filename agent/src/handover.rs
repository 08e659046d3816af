//! Hand-over to the OS: grow `writable` to fill its disk, mount it, the base snap and the
//! overlay of both, then switch_root into the OS's `/sbin/init` the way busybox does.
//!
//! Runs after the seed verified. Growing is best effort (a warning, never fatal) and
//! idempotent: a boot that finds the partition and the file system at full size does
//! nothing. The OS is entered only when `writable` holds `system-data/`, which exists only
//! after a complete first-boot commit.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use log::{debug, info, warn};
use rustix::mount::{mount, mount_move, unmount, MountFlags, UnmountFlags};

use crate::disk;

/// The label of the OS's writable ext4 partition, as ubuntu-image writes it.
pub const LABEL: &str = "writable";
/// Where `writable` is mounted read-write.
pub const DATA: &str = "/run/mnt/data";
/// Where the base snap is mounted read-only.
pub const BASE: &str = "/run/mnt/base";
/// Where the OS's root (the overlay) is assembled before switch_root.
pub const ROOT: &str = "/run/mnt/root";
/// The OS's state in `writable`: the overlay's upper directory; its existence means
/// "configured".
pub const SYSTEM_DATA: &str = "system-data";
/// The overlay's work directory in `writable` (same file system as the upper one).
const WORK: &str = ".overlay-work";
/// What the OS runs as PID 1.
const INIT: &str = "/sbin/init";
/// Sector size of partition tables and of sysfs's `start`/`size`.
const SECTOR: u64 = 512;

/// Why the hand-over could not happen; each says what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// No ext4 partition carries the `writable` label.
    #[error("no ext4 partition labelled {LABEL} found (partitions seen: {seen})")]
    NoWritable {
        /// The partitions that were looked at, comma separated.
        seen: String,
    },
    /// A step of the hand-over failed.
    #[error("cannot {what}: {error}")]
    Step {
        /// What was being done.
        what: String,
        /// Why it failed.
        error: io::Error,
    },
    /// The seed has no file for the model's base snap.
    #[error("the seed has no base snap {name} (no {name}_*.snap in {dir})")]
    NoBase {
        /// The model's base.
        name: String,
        /// The seed's snaps folder.
        dir: PathBuf,
    },
}

impl Failure {
    /// What the person at the device can do about it.
    pub fn todo(&self) -> &'static str {
        match self {
            Failure::NoWritable { .. } => {
                "rebuild the image with coreforge build-image (its gadget makes the writable \
                 partition), then press Enter"
            }
            Failure::NoBase { .. } => "rebuild the image so that it seeds the model's base snap",
            Failure::Step { .. } => {
                "check that the initramfs loads loop, squashfs, overlay and ext4, then press Enter"
            }
        }
    }
}

/// Wraps an I/O error with what was being done.
fn step(what: impl Into<String>) -> impl FnOnce(io::Error) -> Failure {
    let what = what.into();
    move |error| Failure::Step { what, error }
}

/// Finds `writable`, grows it to fill the disk (a failure to grow is only a warning) and
/// mounts it read-write at [`DATA`].
pub fn prepare_data() -> Result<(), Failure> {
    let names = disk::partitions(Path::new("/sys/class/block"));
    let part = find_writable(Path::new("/sys/class/block"), Path::new("/dev"), &names).ok_or_else(
        || Failure::NoWritable {
            seen: if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            },
        },
    )?;
    info!("writable partition: {}", part.device.display());
    let part = match grow_partition(&part) {
        Ok(grown) => grown,
        Err(e) => {
            warn!(
                "cannot grow {}: {e} — it keeps its size",
                part.device.display()
            );
            part
        }
    };
    mount_data(&part)?;
    if let Err(e) = grow_filesystem(&part) {
        warn!(
            "cannot grow the file system on {}: {e} — it keeps its size",
            part.device.display()
        );
    }
    Ok(())
}

/// Mounts the base snap `<seed>/snaps/<base>_*.snap` read-only at [`BASE`], on a loop device.
pub fn mount_base(seed: &Path, base: &str) -> Result<(), Failure> {
    let _ = unmount(BASE, UnmountFlags::DETACH);
    let snap = base_snap(&seed.join("snaps"), base)?;
    // Held open until the mount holds the device: its last close would detach it.
    let (device, _open) =
        loop_attach(&snap).map_err(step(format!("attach {} to a loop device", snap.display())))?;
    fs::create_dir_all(BASE).map_err(step(format!("create {BASE}")))?;
    mount(device.as_path(), BASE, "squashfs", MountFlags::RDONLY, None).map_err(|e| {
        Failure::Step {
            what: format!("mount {} ({}) at {BASE}", device.display(), snap.display()),
            error: e.into(),
        }
    })?;
    info!("base snap {} mounted at {BASE}", snap.display());
    Ok(())
}

/// Mounts the overlay of `writable`'s `system-data/` over the base snap and switches root
/// into the OS's init; returns only on failure, with nothing left mounted but [`DATA`] and
/// [`BASE`] (see [`release`]).
pub fn enter() -> Result<std::convert::Infallible, Failure> {
    let error = match try_enter() {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = unmount(ROOT, UnmountFlags::DETACH);
    Err(error)
}

/// Unmounts what [`prepare_data`] and [`mount_base`] mounted, for a retry from scratch (the
/// loop device detaches itself).
pub fn release() {
    for dir in [ROOT, BASE, DATA] {
        let _ = unmount(dir, UnmountFlags::DETACH);
    }
}

fn try_enter() -> Result<std::convert::Infallible, Failure> {
    let work = Path::new(DATA).join(WORK);
    fs::create_dir_all(&work).map_err(step(format!("create {}", work.display())))?;
    fs::create_dir_all(ROOT).map_err(step(format!("create {ROOT}")))?;
    let options = overlay_options(Path::new(BASE), &Path::new(DATA).join(SYSTEM_DATA), &work);
    let options = CString::new(options).map_err(|e| Failure::Step {
        what: "build the overlay options".into(),
        error: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    mount("overlay", ROOT, "overlay", MountFlags::empty(), &*options).map_err(|e| {
        Failure::Step {
            what: format!("mount the overlay ({options:?}) at {ROOT}"),
            error: e.into(),
        }
    })?;
    if !Path::new(ROOT).join(INIT.trim_start_matches('/')).exists() {
        return Err(Failure::Step {
            what: format!("find {INIT} in the base snap mounted at {BASE}"),
            error: io::ErrorKind::NotFound.into(),
        });
    }
    info!("handing over to {INIT}");
    Err(switch_root(Path::new(ROOT)))
}

/// The overlay's mount options.
fn overlay_options(lower: &Path, upper: &Path, work: &Path) -> String {
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    )
}

/// The base snap's file in the seed's `snaps/`: `<base>_<revision>.snap`.
fn base_snap(dir: &Path, base: &str) -> Result<PathBuf, Failure> {
    let prefix = format!("{base}_");
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(step(format!("list {}", dir.display())))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".snap"))
        })
        .collect();
    found.sort();
    // Seed verification refuses a snap seeded twice, so there is one.
    found.pop().ok_or_else(|| Failure::NoBase {
        name: base.to_owned(),
        dir: dir.to_owned(),
    })
}

// ---- finding `writable` ----

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

/// The first of the partitions `names` holding an ext4 file system labelled [`LABEL`].
pub fn find_writable(
    sys_class_block: &Path,
    dev_dir: &Path,
    names: &[String],
) -> Option<Partition> {
    names.iter().find_map(|name| {
        let file = File::open(dev_dir.join(name)).ok()?;
        let sb = superblock(&file).ok()??;
        if sb.label != LABEL {
            return None;
        }
        partition(sys_class_block, dev_dir, name)
    })
}

// ---- growing the partition ----

/// Why the partition table cannot be grown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// Sector 0 has no MBR signature.
    #[error("the disk has no MBR partition table")]
    NoMbr,
    /// A GPT disk (protective MBR entry).
    #[error("the disk has a GPT partition table, which coreforge does not grow yet")]
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

/// Grows the last partition to the end of its disk in the MBR, then tells the kernel its
/// new size (BLKPG, which works while other partitions of the disk are mounted). Returns
/// the partition as it is now.
fn grow_partition(part: &Partition) -> io::Result<Partition> {
    let disk = OpenOptions::new().read(true).write(true).open(&part.disk)?;
    let mut mbr = [0u8; 512];
    disk.read_exact_at(&mut mbr, 0)?;
    let Some(new) = grow_mbr(&mut mbr, part.start, part.disk_size)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
    else {
        debug!("{} fills its disk already", part.device.display());
        return Ok(part.clone());
    };
    if new > part.size {
        disk.write_all_at(&mbr, 0)?;
        disk.sync_all()?;
    }
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

// ---- mounting and growing the file system ----

/// Mounts `writable` read-write at [`DATA`] (unmounting an earlier attempt's first).
fn mount_data(part: &Partition) -> Result<(), Failure> {
    let _ = unmount(DATA, UnmountFlags::DETACH);
    fs::create_dir_all(DATA).map_err(step(format!("create {DATA}")))?;
    mount(
        part.device.as_path(),
        DATA,
        "ext4",
        MountFlags::NOATIME,
        None,
    )
    .map_err(|e| Failure::Step {
        what: format!(
            "mount {} read-write as ext4 at {DATA}",
            part.device.display()
        ),
        error: e.into(),
    })?;
    info!("{LABEL} mounted at {DATA}");
    Ok(())
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
fn grow_filesystem(part: &Partition) -> io::Result<()> {
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

// ---- the loop device ----

/// `struct loop_info64` and `struct loop_config` from <linux/loop.h>.
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}
const LOOP_SET_FD: u32 = 0x4C00;
const LOOP_SET_STATUS64: u32 = 0x4C04;
const LOOP_CONFIGURE: u32 = 0x4C0A;
const LOOP_CTL_GET_FREE: u32 = 0x4C82;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// Attaches `file` read-only to a free loop device; returns the device node and the open
/// device. The device detaches itself at its last close (autoclear): keep it open until it
/// is mounted; unmounting then detaches it.
fn loop_attach(file: &Path) -> io::Result<(PathBuf, File)> {
    let backing = File::open(file)?;
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number.
    let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let device = PathBuf::from(format!("/dev/loop{n}"));
    let dev = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&device)?;
    let mut info = LoopInfo64 {
        device: 0,
        inode: 0,
        rdevice: 0,
        offset: 0,
        sizelimit: 0,
        number: 0,
        encrypt_type: 0,
        encrypt_key_size: 0,
        flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
        file_name: [0; 64],
        crypt_name: [0; 64],
        encrypt_key: [0; 32],
        init: [0; 2],
    };
    let name = file.as_os_str().as_encoded_bytes();
    let len = name.len().min(63);
    info.file_name[..len].copy_from_slice(&name[..len]);
    let config = LoopConfig {
        fd: u32::try_from(backing.as_raw_fd()).map_err(io::Error::other)?,
        block_size: 0,
        info,
        reserved: [0; 8],
    };
    // SAFETY: LOOP_CONFIGURE reads one loop_config, alive for the call.
    let r = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            LOOP_CONFIGURE as _,
            &config as *const LoopConfig,
        )
    };
    if r == 0 {
        return Ok((device, dev));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::ENOTTY) {
        return Err(e);
    }
    // Kernels before 5.8: LOOP_SET_FD (read-only, as the backing file is), then the flags.
    // SAFETY: LOOP_SET_FD takes a file descriptor by value.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_FD as _, backing.as_raw_fd()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: LOOP_SET_STATUS64 reads one loop_info64, alive for the call.
    let r = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            LOOP_SET_STATUS64 as _,
            &config.info as *const LoopInfo64,
        )
    };
    if r != 0 {
        warn!(
            "cannot set the flags of {}: {}",
            device.display(),
            io::Error::last_os_error()
        );
    }
    Ok((device, dev))
}

// ---- switch_root ----

/// The mounts carried into the new root: (where now, where under the new root).
const CARRIED: [(&str, &str); 6] = [
    (crate::mounts::SEED, "run/mnt/ubuntu-seed"),
    (DATA, "run/mnt/data"),
    (BASE, "run/mnt/base"),
    ("/proc", "proc"),
    ("/sys", "sys"),
    ("/dev", "dev"),
];

/// Moves the mounts into `root` (under a fresh /run tmpfs there), frees the initramfs's
/// files, makes `root` the root and execs [`INIT`]; returns only on failure.
fn switch_root(root: &Path) -> Failure {
    match try_switch_root(root) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn try_switch_root(root: &Path) -> Result<std::convert::Infallible, Failure> {
    // The OS's /run: a tmpfs the OS keeps (its rcS mounts one only where none is).
    let run = root.join("run");
    let mode = c"mode=0755";
    mount(
        "tmpfs",
        &run,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        mode,
    )
    .map_err(|e| Failure::Step {
        what: format!("mount a tmpfs at {}", run.display()),
        error: e.into(),
    })?;
    for (from, to) in CARRIED {
        let target = root.join(to);
        fs::create_dir_all(&target).map_err(step(format!("create {}", target.display())))?;
        mount_move(from, &target).map_err(|e| Failure::Step {
            what: format!("move the mount {from} to {}", target.display()),
            error: e.into(),
        })?;
    }
    std::env::set_current_dir(root).map_err(step(format!("enter {}", root.display())))?;
    // Free the initramfs's memory: it is the rootfs, which stays mounted underneath.
    if let Ok(meta) = fs::symlink_metadata("/") {
        delete_contents(Path::new("/"), meta.dev());
    }
    mount_move(".", "/").map_err(|e| Failure::Step {
        what: format!("move {} onto /", root.display()),
        error: e.into(),
    })?;
    std::os::unix::fs::chroot(".").map_err(step("chroot into the new root"))?;
    std::env::set_current_dir("/").map_err(step("enter the new root"))?;
    let error = Command::new(INIT).exec();
    Err(Failure::Step {
        what: format!("run the OS's {INIT}"),
        error,
    })
}

/// Deletes everything under `dir` on the device `dev`, without crossing into mounts.
fn delete_contents(dir: &Path, dev: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.dev() != dev {
            continue; // a mount point (the new root, or what lives under it)
        }
        if meta.is_dir() {
            delete_contents(&path, dev);
            let _ = fs::remove_dir(&path); // fails for directories holding mount points
        } else {
            let _ = fs::remove_file(&path);
        }
    }
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
    fn finds_writable_by_ext4_label_with_its_disk_and_sectors() {
        let root = temp("find");
        let (sys, dev) = (root.join("class/block"), root.join("dev"));
        let devices = root.join("devices/block");
        fs::create_dir_all(&sys).unwrap();
        fs::create_dir_all(&dev).unwrap();
        fs::create_dir_all(devices.join("vda")).unwrap();
        fs::write(devices.join("vda/size"), "4194304\n").unwrap();
        for (name, number, start, size) in
            [("vda1", 1, 2048, 524_288), ("vda2", 2, 526_336, 131_072)]
        {
            let d = devices.join("vda").join(name);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("partition"), format!("{number}\n")).unwrap();
            fs::write(d.join("start"), format!("{start}\n")).unwrap();
            fs::write(d.join("size"), format!("{size}\n")).unwrap();
            std::os::unix::fs::symlink(&d, sys.join(name)).unwrap();
        }
        mke2fs(&dev.join("vda1"), 4, &["-L", "system-boot"]);
        mke2fs(&dev.join("vda2"), 4, &["-L", LABEL]);
        let names = vec!["vda1".to_string(), "vda2".to_string()];
        assert_eq!(
            find_writable(&sys, &dev, &names),
            Some(Partition {
                device: dev.join("vda2"),
                disk: dev.join("vda"),
                number: 2,
                start: 526_336,
                size: 131_072,
                disk_size: 4_194_304,
            })
        );
        assert_eq!(find_writable(&sys, &dev, &names[..1]), None);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn base_snap_is_found_by_name_and_overlay_options_name_the_dirs() {
        let dir = temp("snaps");
        for f in ["core_3.snap", "core22_1.snap", "pi3_2.snap"] {
            fs::write(dir.join(f), b"").unwrap();
        }
        assert_eq!(base_snap(&dir, "core").unwrap(), dir.join("core_3.snap"));
        assert!(matches!(
            base_snap(&dir, "core24"),
            Err(Failure::NoBase { .. })
        ));
        assert_eq!(
            overlay_options(Path::new(BASE), &Path::new(DATA).join(SYSTEM_DATA), &Path::new(DATA).join(WORK)),
            "lowerdir=/run/mnt/base,upperdir=/run/mnt/data/system-data,workdir=/run/mnt/data/.overlay-work"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn struct_layouts_match_the_kernel() {
        // sizeof from <linux/loop.h> and <linux/blkpg.h> on 64-bit Linux.
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
        assert_eq!(std::mem::size_of::<BlkpgPartition>(), 152);
    }
}
