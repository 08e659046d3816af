//! FAT file systems: made in memory from a directory tree (fixed volume id, timestamps from
//! `SOURCE_DATE_EPOCH`), and read back out of an image without writing to it.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use fatfs::{FatType, FileSystem, FormatVolumeOptions, FsOptions};

use super::gadget::Filesystem;
use super::tree::{Child, Source, Tree};
use super::{io_err, ImageError};

/// FAT32 needs at least this many clusters (65525, plus headroom for the FATs themselves).
const FAT32_MIN_CLUSTERS: u64 = 66_000;

/// Granularity of [`FatImage::written`]: the unit the image writer copies out.
pub const CHUNK: usize = 64 << 10;

/// A FAT file system built in memory, and which of its chunks were ever written.
#[derive(Debug)]
pub struct FatImage {
    /// The whole file system; chunks never written are zeros, and so are the places of
    /// [`FatImage::lent`].
    pub bytes: Vec<u8>,
    /// One flag per [`CHUNK`] bytes: whether fatfs wrote into it.
    pub written: Vec<bool>,
    /// File data that fatfs wrote straight from in-memory sources: not copied into
    /// `bytes`, but to be written at its place after the chunks.
    pub lent: Vec<Lent>,
}

/// A run of file data in the file system taken from an in-memory source.
#[derive(Debug)]
pub struct Lent {
    /// Where in the file system.
    pub at: u64,
    /// The source.
    pub source: Arc<Vec<u8>>,
    /// Which of its bytes.
    pub range: std::ops::Range<usize>,
}

impl Lent {
    /// Its bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.source[self.range.clone()]
    }
}

impl FatImage {
    /// Writes the file system into `file` at `offset`: the written chunks, then the runs
    /// taken from in-memory sources (a chunk holding the start or end of a run has zeros
    /// where the run goes, so the runs come last).
    pub fn write_at(&self, file: &File, offset: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt as _;
        for (at, chunk) in self.data_chunks() {
            file.write_all_at(chunk, offset + at)?;
        }
        for run in &self.lent {
            file.write_all_at(run.bytes(), offset + run.at)?;
        }
        Ok(())
    }

    /// The written chunks that hold something other than zeros, with their offsets.
    pub fn data_chunks(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.bytes
            .chunks(CHUNK)
            .zip(&self.written)
            .enumerate()
            .filter(|(_, (chunk, written))| **written && chunk.iter().any(|b| *b != 0))
            .map(|(i, (chunk, _))| ((i * CHUNK) as u64, chunk))
    }
}

/// A cursor over the in-memory disk that remembers which chunks were written, so the writer
/// need not scan (and fault in) the untouched, zero pages of a mostly empty partition.
///
/// fatfs hands a file's data to the disk as slices of the caller's buffer. When that buffer
/// is one of the tree's in-memory sources (a seed snap), the write is recorded as a
/// [`Lent`] run instead of copied: the image writer takes those bytes from the source
/// itself, and the pages of the in-memory disk are neither zeroed nor filled for them.
struct TrackingCursor {
    inner: Cursor<Vec<u8>>,
    written: Vec<bool>,
    sources: Lenders,
    lent: Vec<Lent>,
}

/// The in-memory sources writes may come from (the tree's, and host files read whole as
/// they are copied in).
type Lenders = std::rc::Rc<std::cell::RefCell<Vec<Arc<Vec<u8>>>>>;

impl TrackingCursor {
    /// The source `buf` lies in, and where in it.
    fn lender(&self, buf: &[u8]) -> Option<(Arc<Vec<u8>>, usize)> {
        let addr = buf.as_ptr() as usize;
        // The most recent source first: the file being copied is usually the last added.
        self.sources.borrow().iter().rev().find_map(|s| {
            let base = s.as_ptr() as usize;
            (addr >= base && addr + buf.len() <= base + s.len()).then(|| (s.clone(), addr - base))
        })
    }
}

impl Read for TrackingCursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Seek for TrackingCursor {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl Write for TrackingCursor {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let start = self.inner.position() as usize;
        let fits = start + buf.len() <= self.inner.get_ref().len();
        if let Some((source, from)) = self.lender(buf).filter(|_| fits && !buf.is_empty()) {
            let at = start as u64;
            match self.lent.last_mut() {
                // The next piece of the same run: one longer run.
                Some(last)
                    if Arc::ptr_eq(&last.source, &source)
                        && last.at + last.range.len() as u64 == at
                        && last.range.end == from =>
                {
                    last.range.end += buf.len();
                }
                _ => self.lent.push(Lent {
                    at,
                    source,
                    range: from..from + buf.len(),
                }),
            }
            self.inner.set_position((start + buf.len()) as u64);
            return Ok(buf.len());
        }
        let n = self.inner.write(buf)?;
        if n > 0 {
            for flag in &mut self.written[start / CHUNK..=(start + n - 1) / CHUNK] {
                *flag = true;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Makes a FAT file system of `size` bytes holding `content` (if any). `vfat` is FAT32 when there is room for FAT32's minimum cluster count
/// at 512-byte clusters (about 33 MiB), else FAT16; `vfat-32`/`vfat-16` force the type.
pub fn make_fat(
    structure: &str,
    kind: Filesystem,
    size: u64,
    label: Option<&str>,
    volume_id: u32,
    epoch: u64,
    content: Option<&Tree>,
) -> Result<FatImage, ImageError> {
    let fat_err = |source: io::Error| ImageError::Fat {
        structure: structure.into(),
        source,
    };
    // FAT boot partitions are small; building in memory keeps fatfs's many small writes off
    // the disk and lets the caller skip zero runs so the image stays sparse.
    if size > 4 << 30 {
        return Err(ImageError::BadContent {
            structure: structure.into(),
            problem: format!("FAT structures of more than 4 GiB are not supported ({size} bytes)"),
        });
    }
    let len = usize::try_from(size).map_err(|_| ImageError::BadContent {
        structure: structure.into(),
        problem: "too large for memory".into(),
    })?;
    let mut disk = TrackingCursor {
        inner: Cursor::new(vec![0u8; len]),
        written: vec![false; len.div_ceil(CHUNK)],
        sources: Lenders::new(
            content
                .map(|t| t.in_memory().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
                .into(),
        ),
        lent: Vec::new(),
    };
    let mut options = FormatVolumeOptions::new().volume_id(volume_id);
    let cluster_for_fat32 = [4096u32, 2048, 1024, 512]
        .into_iter()
        .find(|c| size / u64::from(*c) >= FAT32_MIN_CLUSTERS);
    match (kind, cluster_for_fat32) {
        (Filesystem::Vfat16, _) => options = options.fat_type(FatType::Fat16),
        (Filesystem::Vfat | Filesystem::Vfat32, Some(cluster)) => {
            options = options.fat_type(FatType::Fat32).bytes_per_cluster(cluster)
        }
        (Filesystem::Vfat32, None) => {
            return Err(ImageError::DoesNotFit {
                structure: structure.into(),
                what: "FAT32 (it needs at least 33 MiB)".into(),
                size,
            })
        }
        _ => options = options.fat_type(FatType::Fat16),
    }
    if let Some(label) = label {
        let mut bytes = [b' '; 11];
        bytes[..label.len()].copy_from_slice(label.as_bytes());
        options = options.volume_label(bytes);
    }
    fatfs::format_volume(&mut disk, options).map_err(fat_err)?;
    {
        let fs_options = FsOptions::new()
            .update_accessed_date(false)
            .time_provider(fixed_time(epoch));
        let lenders = disk.sources.clone();
        let fs = FileSystem::new(&mut disk, fs_options).map_err(fat_err)?;
        if let Some(tree) = content {
            copy_tree(structure, tree, "", &fs.root_dir(), size, &lenders)?;
        }
        fs.unmount().map_err(fat_err)?;
    }
    Ok(FatImage {
        bytes: disk.inner.into_inner(),
        written: disk.written,
        lent: disk.lent,
    })
}

/// Copies directory `dir` of `tree` into `into`, in name order so that every build allocates
/// the same clusters.
fn copy_tree<T: fatfs::ReadWriteSeek>(
    structure: &str,
    tree: &Tree,
    dir: &str,
    into: &fatfs::Dir<'_, T>,
    size: u64,
    lenders: &Lenders,
) -> Result<(), ImageError> {
    let mut seen = BTreeSet::new();
    for child in tree.children(dir) {
        let (Child::Dir(path) | Child::File(path, _)) = child;
        let name = path.rsplit('/').next().unwrap_or(path);
        let bad = |problem: String| ImageError::BadContent {
            structure: structure.into(),
            problem,
        };
        // FAT names are case-insensitive: a second spelling would overwrite the first.
        if !seen.insert(name.to_lowercase()) {
            return Err(bad(format!(
                "{path} differs from another name only in case, which FAT cannot hold"
            )));
        }
        let no_space = |e: io::Error| match e.kind() {
            io::ErrorKind::Other | io::ErrorKind::UnexpectedEof | io::ErrorKind::WriteZero => {
                ImageError::DoesNotFit {
                    structure: structure.into(),
                    what: format!("the content (at {path}: {e})"),
                    size,
                }
            }
            _ => ImageError::Fat {
                structure: structure.into(),
                source: e,
            },
        };
        match child {
            Child::Dir(_) => {
                let sub = into.create_dir(name).map_err(no_space)?;
                copy_tree(structure, tree, path, &sub, size, lenders)?;
            }
            Child::File(_, source) => {
                let mut dst = into.create_file(name).map_err(no_space)?;
                dst.truncate().map_err(no_space)?;
                match source {
                    Source::Bytes(bytes) => dst.write_all(bytes).map_err(no_space)?,
                    Source::File(from) => {
                        let meta = fs::metadata(from).map_err(io_err("read", from))?;
                        if !meta.is_file() {
                            return Err(bad(format!(
                                "{} is neither a file nor a directory; FAT holds only those",
                                from.display()
                            )));
                        }
                        // Read whole and lent: its bytes go from here to the image once.
                        let bytes = Arc::new(fs::read(from).map_err(io_err("read", from))?);
                        lenders.borrow_mut().push(bytes.clone());
                        dst.write_all(&bytes).map_err(no_space)?;
                    }
                }
                dst.flush().map_err(no_space)?;
            }
        }
    }
    Ok(())
}

/// fatfs wants a `'static` time provider; one small leak per file system made is the price
/// of choosing the time at run time.
fn fixed_time(epoch: u64) -> &'static FixedTime {
    Box::leak(Box::new(FixedTime(dos_date_time(epoch))))
}

/// Stamps every entry with one moment.
#[derive(Debug)]
struct FixedTime(fatfs::DateTime);

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        self.0
    }
}

/// Seconds since 1970 (UTC) as a DOS date and time, clamped to DOS's 1980..=2107.
pub fn dos_date_time(epoch: u64) -> fatfs::DateTime {
    const DOS_MIN: u64 = 315_532_800; // 1980-01-01
    const DOS_MAX: u64 = 4_354_819_199; // 2107-12-31 23:59:59
    let t = epoch.clamp(DOS_MIN, DOS_MAX);
    let (days, secs) = (t / 86_400, t % 86_400);
    let (year, month, day) = civil_from_days(days);
    fatfs::DateTime {
        date: fatfs::Date {
            year: year as u16,
            month: month as u16,
            day: day as u16,
        },
        time: fatfs::Time {
            hour: (secs / 3600) as u16,
            min: (secs / 60 % 60) as u16,
            sec: (secs % 60) as u16,
            millis: 0,
        },
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A window of a file: reads within it, refuses every write (so reading an image through
/// fatfs cannot change it).
#[derive(Debug)]
pub struct ReadOnlyRegion {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl ReadOnlyRegion {
    /// The `len` bytes of `file` from `start`.
    pub fn new(file: File, start: u64, len: u64) -> Self {
        ReadOnlyRegion {
            file,
            start,
            len,
            pos: 0,
        }
    }
}

impl Read for ReadOnlyRegion {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let left = self.len.saturating_sub(self.pos);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for ReadOnlyRegion {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the image is opened read-only",
        ))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for ReadOnlyRegion {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos =
            pos.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}

/// A FAT file system inside an image, opened read-only.
pub struct FatReader {
    fs: FileSystem<ReadOnlyRegion>,
}

impl std::fmt::Debug for FatReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FatReader")
            .field("label", &self.fs.volume_label())
            .finish()
    }
}

impl FatReader {
    /// Opens the FAT file system at `offset` (`size` bytes) in the image at `path`.
    pub fn open(path: &Path, offset: u64, size: u64) -> Result<Self, ImageError> {
        let file = File::open(path).map_err(io_err("open", path))?;
        let region = ReadOnlyRegion::new(file, offset, size);
        let fs = FileSystem::new(region, FsOptions::new().update_accessed_date(false)).map_err(
            |source| ImageError::Fat {
                structure: format!("at offset {offset} of {}", path.display()),
                source,
            },
        )?;
        Ok(FatReader { fs })
    }

    /// The volume label, trailing spaces removed (from the root directory's label entry,
    /// which tools that relabel update, else the boot sector).
    pub fn label(&self) -> String {
        let from_root = self.fs.read_volume_label_from_root_dir().ok().flatten();
        from_root
            .unwrap_or_else(|| self.fs.volume_label())
            .trim_end()
            .to_string()
    }

    /// The FAT type.
    pub fn fat_type(&self) -> FatType {
        self.fs.fat_type()
    }

    /// The volume id (serial number).
    pub fn volume_id(&self) -> u32 {
        self.fs.volume_id()
    }

    /// The whole file at `path` (`/`-separated, case-insensitive as FAT is); `None` when
    /// there is no such file.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, ImageError> {
        let trimmed = path.trim_start_matches('/');
        let mut file = match self.fs.root_dir().open_file(trimmed) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ImageError::Fat {
                    structure: format!("reading {path}"),
                    source,
                })
            }
        };
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(|source| ImageError::Fat {
                structure: format!("reading {path}"),
                source,
            })?;
        Ok(Some(data))
    }

    /// Every path in the file system (directories end in `/`), in directory order.
    pub fn list(&self) -> Result<Vec<String>, ImageError> {
        let mut out = Vec::new();
        self.list_into(&self.fs.root_dir(), "", &mut out)
            .map_err(|source| ImageError::Fat {
                structure: "listing".into(),
                source,
            })?;
        Ok(out)
    }

    fn list_into(
        &self,
        dir: &fatfs::Dir<'_, ReadOnlyRegion>,
        prefix: &str,
        out: &mut Vec<String>,
    ) -> io::Result<()> {
        for entry in dir.iter() {
            let entry = entry?;
            let name = entry.file_name();
            if name == "." || name == ".." {
                continue;
            }
            if entry.is_dir() {
                let path = format!("{prefix}{name}/");
                out.push(path.clone());
                self.list_into(&entry.to_dir(), &path, out)?;
            } else {
                out.push(format!("{prefix}{name}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_times_come_from_the_epoch_in_utc() {
        let t = dos_date_time(1_700_000_000); // 2023-11-14 22:13:20 UTC
        assert_eq!((t.date.year, t.date.month, t.date.day), (2023, 11, 14));
        assert_eq!((t.time.hour, t.time.min, t.time.sec), (22, 13, 20));
        let leap = dos_date_time(951_782_400); // 2000-02-29 00:00:00
        assert_eq!(
            (leap.date.year, leap.date.month, leap.date.day),
            (2000, 2, 29)
        );
        let early = dos_date_time(0);
        assert_eq!(
            (early.date.year, early.date.month, early.date.day),
            (1980, 1, 1)
        );
    }

    #[test]
    fn small_vfat_is_fat16_and_large_is_fat32() {
        let small = make_fat("t", Filesystem::Vfat, 16 << 20, Some("boot"), 1, 0, None).unwrap();
        let large = make_fat("t", Filesystem::Vfat, 40 << 20, Some("boot"), 1, 0, None).unwrap();
        let ty = |image: FatImage| {
            FileSystem::new(Cursor::new(image.bytes), FsOptions::new())
                .unwrap()
                .fat_type()
        };
        assert_eq!(ty(small), FatType::Fat16);
        assert_eq!(ty(large), FatType::Fat32);
        let err = make_fat("t", Filesystem::Vfat32, 16 << 20, None, 1, 0, None).unwrap_err();
        assert!(err.to_string().contains("FAT32"), "{err}");
    }

    /// A seed snap's bytes (and a host file's, read whole) go from memory straight into the
    /// image (not through the in-memory disk), and the file system read back holds them
    /// where fatfs put them.
    #[test]
    fn in_memory_files_are_written_from_their_source() {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let small = b"not a whole cluster".to_vec();
        let dir = tempfile::tempdir().unwrap();
        let host: Vec<u8> = (0..70_000u32).map(|i| (i % 13) as u8).collect();
        fs::write(dir.path().join("kernel.img"), &host).unwrap();
        let mut tree = Tree::new();
        tree.file("snaps/big.snap", Source::bytes(big.clone()));
        tree.file("small.txt", Source::bytes(small.clone()));
        tree.file("kernel.img", Source::File(dir.path().join("kernel.img")));
        let image = make_fat("t", Filesystem::Vfat, 40 << 20, None, 1, 0, Some(&tree)).unwrap();
        assert!(!image.lent.is_empty(), "nothing was taken from the sources");
        let lent: usize = image.lent.iter().map(|r| r.range.len()).sum();
        assert_eq!(lent, big.len() + small.len() + host.len());
        let out = tempfile::tempfile().unwrap();
        out.set_len(40 << 20).unwrap();
        image.write_at(&out, 0).unwrap();
        let fs = FileSystem::new(out, FsOptions::new()).unwrap();
        let read = |path: &str| {
            let mut bytes = Vec::new();
            fs.root_dir()
                .open_file(path)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            bytes
        };
        assert!(read("snaps/big.snap") == big, "big.snap differs");
        assert_eq!(read("small.txt"), small);
        assert!(read("kernel.img") == host, "kernel.img differs");
    }

    #[test]
    fn names_differing_in_case_are_refused() {
        let mut tree = Tree::new();
        tree.file("README", Source::bytes(b"a".to_vec()));
        tree.file("readme", Source::bytes(b"b".to_vec()));
        let err = make_fat("t", Filesystem::Vfat, 40 << 20, None, 1, 0, Some(&tree)).unwrap_err();
        assert!(err.to_string().contains("only in case"), "{err}");
    }

    #[test]
    fn content_larger_than_the_partition_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("big"), vec![7u8; 17 << 20]).unwrap();
        let mut tree = Tree::new();
        tree.add(dir.path(), "/").unwrap();
        let err = make_fat("t", Filesystem::Vfat, 16 << 20, None, 1, 0, Some(&tree)).unwrap_err();
        assert!(matches!(err, ImageError::DoesNotFit { .. }), "{err}");
    }
}
