//! Writing an image to an SD card: only its mapped ranges, in large aligned writes, the
//! partition table last (so an interrupted flash leaves a card that does not look
//! bootable), every written range read back and compared by SHA-256.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::image::bmap::{self, Bmap, BmapError};

/// Bytes written (and read back) at a time.
const CHUNK: u64 = 4 << 20;
/// The MBR and a primary GPT (header and 128 entries): sector 0 to 33.
const TABLE_HEAD: u64 = 34 * 512;
/// A backup GPT at the image's end: 32 sectors of entries and the header.
const TABLE_TAIL: u64 = 33 * 512;

/// Why a flash was refused or failed; each says what was wrong and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlashError {
    /// Reading the image (or its bmap) failed.
    #[error("cannot read the image {path}: {source}")]
    Image {
        /// The image.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The bmap was refused.
    #[error(transparent)]
    Bmap(#[from] BmapError),
    /// The image's bytes differ from what its bmap says.
    #[error("the image does not match its bmap: bytes {start}-{end} hash to {actual}, the bmap says {expected}; the card was not given a partition table and will not boot: use the bmap made with this image")]
    ImageChanged {
        /// Start of the range.
        start: u64,
        /// End of the range.
        end: u64,
        /// What the bmap says.
        expected: String,
        /// What the image hashes to.
        actual: String,
    },
    /// The target is not a block device.
    #[error("{0} is not a block device (an SD card is /dev/sdX or /dev/mmcblkN): nothing was written; pass --force to write to a file")]
    NotABlockDevice(PathBuf),
    /// The target, or a partition of it, is mounted.
    #[error("{target} is in use: {what} is mounted at {at}; unmount it (umount {what}) and flash again; nothing was written")]
    Mounted {
        /// The target.
        target: PathBuf,
        /// The mounted device.
        what: String,
        /// Where.
        at: String,
    },
    /// The target holds the running system.
    #[error("{0} is the disk the running system uses (/ is on it): nothing was written; check the device name (lsblk)")]
    SystemDisk(PathBuf),
    /// The target is smaller than the image.
    #[error("{target} holds {size} bytes, the image needs {needed}: use a larger card; nothing was written")]
    TooSmall {
        /// The target.
        target: PathBuf,
        /// Its size.
        size: u64,
        /// The image's size.
        needed: u64,
    },
    /// Opening or inspecting the target failed.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The target.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A write (or the flush) failed part way: the card was pulled or is failing.
    #[error("writing {target} failed at byte {offset} of {total}: {source}; the card was removed or is failing, and it will not boot as it is (the partition table is written last): flash it again")]
    Write {
        /// The target.
        target: PathBuf,
        /// How far it got.
        offset: u64,
        /// How much was to be written.
        total: u64,
        /// Why.
        source: io::Error,
    },
    /// What was read back differs from the image.
    #[error("{target} does not hold what was written: bytes {start}-{end} read back with SHA-256 {actual}, the image has {expected}; the card may be failing or counterfeit (smaller than it says)")]
    Mismatch {
        /// The target.
        target: PathBuf,
        /// Start of the range.
        start: u64,
        /// End of the range.
        end: u64,
        /// The image's SHA-256.
        expected: String,
        /// The target's.
        actual: String,
    },
}

/// What to write: the image's data ranges and its partition table regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The image's size.
    pub image_size: u64,
    /// Byte ranges `[start, end)` holding data (holes are left out: zeros on the image).
    pub ranges: Vec<(u64, u64)>,
    /// The SHA-256 each range must have, when a bmap gave them.
    pub sums: Option<Vec<String>>,
    /// The partition table regions, written last.
    pub tables: Vec<(u64, u64)>,
}

impl Plan {
    /// The plan for `image`: its ranges from `bmap` (checked against the image) or from
    /// `SEEK_DATA`/`SEEK_HOLE`.
    pub fn new(image: &Path, bmap: Option<&Bmap>) -> Result<Plan, FlashError> {
        let io = |source| FlashError::Image {
            path: image.to_owned(),
            source,
        };
        let file = File::open(image).map_err(io)?;
        let image_size = file.metadata().map_err(io)?.len();
        let (ranges, sums) = match bmap {
            Some(b) => {
                if b.image_size != image_size {
                    return Err(BmapError::ImageSize {
                        bmap: b.image_size,
                        image: image_size,
                    }
                    .into());
                }
                (
                    b.byte_ranges(),
                    Some(b.ranges.iter().map(|r| r.sha256.clone()).collect()),
                )
            }
            None => (
                bmap::data_ranges(&file, bmap::BLOCK_SIZE).map_err(io)?,
                None,
            ),
        };
        let mut tables = vec![(0, TABLE_HEAD.min(image_size))];
        let mut sig = [0u8; 8];
        if image_size >= TABLE_HEAD + TABLE_TAIL
            && file.read_exact_at(&mut sig, 512).is_ok()
            && &sig == b"EFI PART"
        {
            tables.push((image_size - TABLE_TAIL, image_size));
        }
        Ok(Plan {
            image_size,
            ranges,
            sums,
            tables,
        })
    }

    /// Bytes the ranges and tables cover.
    pub fn mapped_bytes(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }
}

/// The target, checked: what it is and how large.
#[derive(Debug)]
pub struct Target {
    path: PathBuf,
    block_device: bool,
}

/// Checks `path` as a target for an image of `image_size` bytes: a block device (or
/// anything with `force`), not mounted, not the running system's disk, large enough.
pub fn check_target(path: &Path, image_size: u64, force: bool) -> Result<Target, FlashError> {
    let open_err = |source| FlashError::Open {
        path: path.to_owned(),
        source,
    };
    let meta = match fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound && force => None,
        Err(e) => return Err(open_err(e)),
    };
    let block_device = meta
        .as_ref()
        .is_some_and(|m| m.file_type().is_block_device());
    if !block_device && !force {
        return Err(FlashError::NotABlockDevice(path.to_owned()));
    }
    if let Some(m) = meta.as_ref().filter(|_| block_device) {
        let sys = sys_block_dir(m.rdev()).map_err(open_err)?;
        let root = fs::metadata("/").map_err(open_err)?;
        if let Ok(root_sys) = sys_block_dir(root.dev()) {
            if disk_of(&root_sys) == disk_of(&sys) {
                return Err(FlashError::SystemDisk(path.to_owned()));
            }
        }
        if let Some((what, at)) = mounted_on(&sys).map_err(open_err)? {
            return Err(FlashError::Mounted {
                target: path.to_owned(),
                what,
                at,
            });
        }
        let size = File::open(path)
            .and_then(|mut f| f.seek(SeekFrom::End(0)))
            .map_err(open_err)?;
        if size < image_size {
            return Err(FlashError::TooSmall {
                target: path.to_owned(),
                size,
                needed: image_size,
            });
        }
    }
    Ok(Target {
        path: path.to_owned(),
        block_device,
    })
}

/// `/sys/dev/block/MAJOR:MINOR`, resolved (`/sys/devices/.../sda/sda1`).
fn sys_block_dir(dev: u64) -> io::Result<PathBuf> {
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    fs::canonicalize(format!("/sys/dev/block/{major}:{minor}"))
}

/// The whole disk's sysfs folder: a partition's parent.
fn disk_of(sys: &Path) -> PathBuf {
    if sys.join("partition").exists() {
        sys.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| sys.to_owned())
    } else {
        sys.to_owned()
    }
}

/// The first mount of the device at `sys` or of one of its partitions (sysfs puts a disk's
/// partitions in its folder): (mounted device, mount point).
fn mounted_on(sys: &Path) -> io::Result<Option<(String, String)>> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(devno), Some(at)) = (fields.get(2), fields.get(4)) else {
            continue;
        };
        let Ok(mounted) = fs::canonicalize(format!("/sys/dev/block/{devno}")) else {
            continue;
        };
        if mounted.starts_with(sys) {
            let source = fields
                .iter()
                .position(|f| *f == "-")
                .and_then(|i| fields.get(i + 2))
                .unwrap_or(devno);
            return Ok(Some(((*source).to_owned(), (*at).to_owned())));
        }
    }
    Ok(None)
}

/// Progress: bytes done and in all, after each write.
pub type OnProgress<'a> = &'a dyn Fn(u64, u64);

/// What a flash did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Bytes written (ranges and tables).
    pub written: u64,
    /// Ranges read back and compared.
    pub verified: usize,
}

/// Writes `image` to `target` following `plan`: the table regions zeroed first, the data,
/// a flush, the tables, a flush, then every range read back and compared. `before_verify`
/// runs between the writes and the read-back (tests use it to damage the target).
pub fn flash(
    image: &Path,
    target: &Target,
    plan: &Plan,
    progress: OnProgress<'_>,
    before_verify: &dyn Fn(&File),
) -> Result<Report, FlashError> {
    let img_err = |source| FlashError::Image {
        path: image.to_owned(),
        source,
    };
    let src = File::open(image).map_err(img_err)?;
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    if target.block_device {
        options.custom_flags(libc_o_excl());
    } else {
        options.create(true).truncate(true);
    }
    let dst = options
        .open(&target.path)
        .map_err(|source| FlashError::Open {
            path: target.path.clone(),
            source,
        })?;
    let total = plan.mapped_bytes() + plan.tables.iter().map(|(s, e)| e - s).sum::<u64>();
    let write_err = |offset, source| FlashError::Write {
        target: target.path.clone(),
        offset,
        total,
        source,
    };
    if !target.block_device {
        // A file target: its holes read as zeros, as the image's do.
        dst.set_len(plan.image_size).map_err(|e| write_err(0, e))?;
    }
    // First make the card not look bootable: an interrupted flash leaves no table.
    for &(start, end) in &plan.tables {
        let zeros = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
        dst.write_all_at(&zeros, start)
            .map_err(|e| write_err(start, e))?;
    }
    dst.sync_data().map_err(|e| write_err(0, e))?;
    let mut done = 0u64;
    let mut buf = vec![0u8; CHUNK as usize];
    // Each range is read once: hashed (for its bmap checksum and the read-back) and written
    // but for the parts in the table regions, which come last.
    let mut image_sums = Vec::with_capacity(plan.ranges.len());
    for (i, &(start, end)) in plan.ranges.iter().enumerate() {
        let mut hasher = Sha256::new();
        let mut pos = start;
        while pos < end {
            let n = (end - pos).min(CHUNK - pos % CHUNK) as usize;
            src.read_exact_at(&mut buf[..n], pos).map_err(img_err)?;
            hasher.update(&buf[..n]);
            for (s, e) in outside(pos, pos + n as u64, &plan.tables) {
                let part = &buf[(s - pos) as usize..(e - pos) as usize];
                dst.write_all_at(part, s).map_err(|err| write_err(s, err))?;
                done += e - s;
            }
            pos += n as u64;
            progress(done, total);
        }
        let sum = bmap::hex(&hasher.finalize());
        if let Some(expected) = plan.sums.as_ref().and_then(|v| v.get(i)) {
            if *expected != sum {
                return Err(FlashError::ImageChanged {
                    start,
                    end,
                    expected: expected.clone(),
                    actual: sum,
                });
            }
        }
        image_sums.push(sum);
    }
    dst.sync_data().map_err(|e| write_err(done, e))?;
    for &(start, end) in &plan.tables {
        let n = usize::try_from(end - start).unwrap_or(0);
        src.read_exact_at(&mut buf[..n], start).map_err(img_err)?;
        dst.write_all_at(&buf[..n], start)
            .map_err(|e| write_err(start, e))?;
        done += n as u64;
        progress(done, total);
    }
    dst.sync_all().map_err(|e| write_err(done, e))?;
    before_verify(&dst);
    drop_cache(&dst);
    let mut verified = 0;
    let mut all: Vec<(u64, u64, Option<String>)> = plan
        .ranges
        .iter()
        .zip(image_sums)
        .map(|(&(s, e), sum)| (s, e, Some(sum)))
        .collect();
    all.extend(plan.tables.iter().map(|&(s, e)| (s, e, None)));
    let mut src = src;
    let mut dst = dst;
    for (start, end, sum) in all {
        let expected = match sum {
            Some(s) => s,
            None => bmap::sha256_of(&mut src, start, end).map_err(img_err)?,
        };
        let actual = bmap::sha256_of(&mut dst, start, end).map_err(|e| write_err(start, e))?;
        if actual != expected {
            return Err(FlashError::Mismatch {
                target: target.path.clone(),
                start,
                end,
                expected,
                actual,
            });
        }
        verified += 1;
    }
    Ok(Report {
        written: done,
        verified,
    })
}

/// `O_EXCL` on a block device: the open fails while the kernel or another program holds it
/// (a mounted partition, a device-mapper user).
fn libc_o_excl() -> i32 {
    rustix::fs::OFlags::EXCL.bits() as i32
}

/// Drops the target's cached pages, so the read-back reads the card and not memory.
fn drop_cache(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

/// The parts of `[start, end)` outside every region of `tables`.
fn outside(start: u64, end: u64, tables: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut parts = vec![(start, end)];
    for &(ts, te) in tables {
        parts = parts
            .into_iter()
            .flat_map(|(s, e)| {
                let mut out = Vec::new();
                if s < ts.min(e) {
                    out.push((s, ts.min(e)));
                }
                if te.max(s) < e {
                    out.push((te.max(s), e));
                }
                out
            })
            .collect();
    }
    parts
}

/// Reads all of `file` (tests).
#[cfg(test)]
fn read_all(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap()
}

#[cfg(test)]
mod tests;
