//! Writing an image to an SD card: only its mapped ranges, in large aligned writes, the
//! partition table last (so an interrupted flash leaves a card that does not look
//! bootable), every written range read back and compared by SHA-256.

use std::fs::{File, OpenOptions};
use std::io;
use std::num::NonZeroU64;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rustix::fs::{fadvise, Advice, OFlags};
use sha2::{Digest, Sha256};

use crate::image::bmap::{self, Bmap, BmapError};

mod target;

pub use target::{check_target, Target};

/// Bytes written (and read back) at a time.
const CHUNK: u64 = 4 << 20;
/// Chunks in flight between the thread that reads, the one that writes and those that hash.
const IN_FLIGHT: usize = 6;
/// Threads hashing while the card is written (the reading and writing ones are busy too).
const WRITE_HASHERS: usize = 1;
/// Threads hashing what is read back (only reading is busy beside them).
const VERIFY_HASHERS: usize = 2;
/// What `O_DIRECT` asks of offsets, lengths and buffers: a page (at least any card's
/// logical block).
const DIRECT_ALIGN: u64 = 4096;
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
///
/// A block device is written and read back with `O_DIRECT` where offsets and lengths allow
/// (no copy through the page cache, and the read-back reads the card, not memory); SHA-256
/// runs on a second thread while the next chunk is read and written.
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
    for &(start, end) in &plan.ranges {
        // Start reading the image ahead of the writes (the page cache may be cold).
        let _ = fadvise(&src, start, NonZeroU64::new(end - start), Advice::WillNeed);
    }
    let card = Card::open(target)?;
    let total = plan.mapped_bytes() + plan.tables.iter().map(|(s, e)| e - s).sum::<u64>();
    let write_err = |offset, source| FlashError::Write {
        target: target.path.clone(),
        offset,
        total,
        source,
    };
    if !target.block_device {
        // A file target: its holes read as zeros, as the image's do.
        card.buffered
            .set_len(plan.image_size)
            .map_err(|e| write_err(0, e))?;
    }
    // First make the card not look bootable: an interrupted flash leaves no table.
    for &(start, end) in &plan.tables {
        let zeros = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
        card.buffered
            .write_all_at(&zeros, start)
            .map_err(|e| write_err(start, e))?;
    }
    card.buffered.sync_data().map_err(|e| write_err(0, e))?;
    let mut done = 0u64;
    // Each range is read once: hashed (for its bmap checksum and the read-back) and written
    // but for the parts in the table regions, which come last.
    let image_sums = stream(
        &plan.ranges,
        WRITE_HASHERS,
        |pos, buf| src.read_exact_at(buf, pos).map_err(img_err),
        |pos, buf| {
            let end = pos + buf.len() as u64;
            for (s, e) in outside(pos, end, &plan.tables) {
                let part = &buf[(s - pos) as usize..(e - pos) as usize];
                card.write_at(part, s).map_err(|err| write_err(s, err))?;
                done += e - s;
            }
            progress(done, total);
            Ok(())
        },
    )?;
    if let Some(expected) = &plan.sums {
        let mut differs = plan.ranges.iter().zip(expected).zip(&image_sums);
        if let Some(((&(start, end), expected), actual)) = differs.find(|((_, e), a)| e != a) {
            return Err(FlashError::ImageChanged {
                start,
                end,
                expected: expected.clone(),
                actual: actual.clone(),
            });
        }
    }
    card.buffered.sync_data().map_err(|e| write_err(done, e))?;
    let mut buf = vec![0u8; TABLE_HEAD.max(TABLE_TAIL) as usize];
    let mut table_sums = Vec::with_capacity(plan.tables.len());
    for &(start, end) in &plan.tables {
        let table = &mut buf[..usize::try_from(end - start).unwrap_or(0)];
        src.read_exact_at(table, start).map_err(img_err)?;
        card.buffered
            .write_all_at(table, start)
            .map_err(|e| write_err(start, e))?;
        table_sums.push(bmap::hex(&Sha256::digest(&*table)));
        done += end - start;
        progress(done, total);
    }
    card.buffered.sync_all().map_err(|e| write_err(done, e))?;
    before_verify(&card.buffered);
    // What is cached of the card is dropped: the read-back must read the card.
    let _ = fadvise(&card.buffered, 0, None, Advice::DontNeed);
    let written: Vec<(u64, u64)> = plan.ranges.iter().chain(&plan.tables).copied().collect();
    let card_sums = stream(
        &written,
        VERIFY_HASHERS,
        |pos, buf| card.read_at(buf, pos).map_err(|e| write_err(pos, e)),
        |_, _| Ok(()),
    )?;
    let expected = image_sums.into_iter().chain(table_sums);
    for ((&(start, end), expected), actual) in written.iter().zip(expected).zip(card_sums) {
        if actual != expected {
            return Err(FlashError::Mismatch {
                target: target.path.clone(),
                start,
                end,
                expected,
                actual,
            });
        }
    }
    Ok(Report {
        written: done,
        verified: written.len(),
    })
}

/// The card, open for writing and reading back: buffered, and for a block device also with
/// `O_DIRECT` (used for every access whose offset, length and buffer are page-aligned).
struct Card {
    buffered: File,
    direct: Option<File>,
}

impl Card {
    fn open(target: &Target) -> Result<Card, FlashError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        if target.block_device {
            // O_EXCL on a block device: the open fails while the kernel or another program
            // holds it (a mounted partition, a device-mapper user).
            options.custom_flags(OFlags::EXCL.bits() as i32);
        } else {
            options.create(true).truncate(true);
        }
        let buffered = options
            .open(&target.path)
            .map_err(|source| FlashError::Open {
                path: target.path.clone(),
                source,
            })?;
        let direct = if target.block_device {
            // The exclusive claim is per open file: the second open must not take it again.
            let mut options = OpenOptions::new();
            options
                .read(true)
                .write(true)
                .custom_flags(OFlags::DIRECT.bits() as i32);
            options.open(&target.path).ok()
        } else {
            None
        };
        Ok(Card { buffered, direct })
    }

    fn direct_for(&self, pos: u64, buf: &[u8]) -> &File {
        let aligned = pos.is_multiple_of(DIRECT_ALIGN)
            && (buf.len() as u64).is_multiple_of(DIRECT_ALIGN)
            && (buf.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN as usize);
        match &self.direct {
            Some(direct) if aligned => direct,
            _ => &self.buffered,
        }
    }

    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.direct_for(pos, buf).write_all_at(buf, pos)
    }

    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.direct_for(pos, buf).read_exact_at(buf, pos)
    }
}

/// A `CHUNK`-sized buffer aligned for `O_DIRECT`, filled to `len`.
struct Chunk {
    mem: Vec<u8>,
    at: usize,
    len: usize,
}

impl Chunk {
    fn new() -> Chunk {
        let mem = vec![0u8; (CHUNK + DIRECT_ALIGN) as usize];
        let at = mem.as_ptr().align_offset(DIRECT_ALIGN as usize);
        Chunk { mem, at, len: 0 }
    }

    fn bytes(&self) -> &[u8] {
        &self.mem[self.at..self.at + self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.mem[self.at..self.at + self.len]
    }
}

/// One piece of the work: the `len` bytes at `pos`, in range `range`.
#[derive(Clone, Copy)]
struct Piece {
    range: usize,
    pos: u64,
    len: usize,
}

/// The pieces of `ranges` (none crosses a multiple of `CHUNK`), for `hashers` threads: the
/// ranges are dealt to the threads largest first onto the least loaded, and the pieces
/// ordered so the threads' shares alternate. Also returns which thread hashes each range.
fn plan_pieces(ranges: &[(u64, u64)], hashers: usize) -> (Vec<Piece>, Vec<usize>) {
    let mut by_size: Vec<usize> = (0..ranges.len()).collect();
    by_size.sort_by_key(|&i| std::cmp::Reverse(ranges[i].1 - ranges[i].0));
    let mut load = vec![0u64; hashers.max(1)];
    let mut owner = vec![0usize; ranges.len()];
    for i in by_size {
        let least = (0..load.len()).min_by_key(|&k| load[k]).unwrap_or(0);
        owner[i] = least;
        load[least] += ranges[i].1 - ranges[i].0;
    }
    let mut shares: Vec<std::collections::VecDeque<Piece>> = vec![Default::default(); load.len()];
    for (range, &(start, end)) in ranges.iter().enumerate() {
        let mut pos = start;
        while pos < end {
            let len = (end - pos).min(CHUNK - pos % CHUNK) as usize;
            shares[owner[range]].push_back(Piece { range, pos, len });
            pos += len as u64;
        }
    }
    let mut pieces = Vec::new();
    while shares.iter().any(|s| !s.is_empty()) {
        pieces.extend(shares.iter_mut().filter_map(|s| s.pop_front()));
    }
    (pieces, owner)
}

/// Streams `ranges` through `CHUNK`-sized buffers in three stages on threads of their own:
/// `read` fills each buffer, `each` uses it (on the calling thread), and `hashers` threads
/// hash the ranges (a range's pieces all go to one of them, in order). I/O and SHA-256
/// overlap on the two cores. Returns each range's SHA-256 in hex.
fn stream(
    ranges: &[(u64, u64)],
    hashers: usize,
    read: impl Fn(u64, &mut [u8]) -> Result<(), FlashError> + Sync,
    mut each: impl FnMut(u64, &[u8]) -> Result<(), FlashError>,
) -> Result<Vec<String>, FlashError> {
    let (pieces, owner) = plan_pieces(ranges, hashers);
    std::thread::scope(|scope| {
        let (give_back, free) = mpsc::channel::<Chunk>();
        for _ in 0..IN_FLIGHT {
            let _ = give_back.send(Chunk::new());
        }
        let mut to_hash = Vec::new();
        let mut hashing = Vec::new();
        for _ in 0..hashers.max(1) {
            let (to, queue) = mpsc::channel::<(Piece, Chunk)>();
            let give_back = give_back.clone();
            to_hash.push(to);
            hashing.push(scope.spawn(move || {
                let mut sums = Vec::new();
                let mut current: Option<(usize, Sha256)> = None;
                for (piece, chunk) in queue {
                    match &mut current {
                        Some((range, hasher)) if *range == piece.range => {
                            hasher.update(chunk.bytes());
                        }
                        _ => {
                            let mut hasher = Sha256::new();
                            hasher.update(chunk.bytes());
                            if let Some((range, done)) = current.replace((piece.range, hasher)) {
                                sums.push((range, bmap::hex(&done.finalize())));
                            }
                        }
                    }
                    // The stages before may have stopped on an error: then nobody takes it.
                    let _ = give_back.send(chunk);
                }
                if let Some((range, done)) = current {
                    sums.push((range, bmap::hex(&done.finalize())));
                }
                sums
            }));
        }
        drop(give_back);
        let (to_use, filled) = mpsc::sync_channel::<Result<(Piece, Chunk), FlashError>>(IN_FLIGHT);
        let read = &read;
        let pieces = &pieces;
        scope.spawn(move || {
            for &piece in pieces {
                // Every buffer comes back while a later stage runs; none does once the
                // stages after have stopped, and then neither is there anyone to read for.
                let Ok(mut chunk) = free.recv() else { return };
                chunk.len = piece.len;
                let read = read(piece.pos, chunk.bytes_mut()).map(|()| (piece, chunk));
                let failed = read.is_err();
                if to_use.send(read).is_err() || failed {
                    return;
                }
            }
        });
        let used = (|| {
            for message in filled {
                let (piece, chunk) = message?;
                each(piece.pos, chunk.bytes())?;
                if let Some(to) = to_hash.get(owner[piece.range]) {
                    let _ = to.send((piece, chunk));
                }
            }
            Ok(())
        })();
        drop(to_hash);
        let mut sums = vec![String::new(); ranges.len()];
        for hasher in hashing {
            let done = hasher
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (range, sum) in done {
                sums[range] = sum;
            }
        }
        used.map(|()| sums)
    })
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
    std::fs::read(path).unwrap()
}

#[cfg(test)]
mod tests;
