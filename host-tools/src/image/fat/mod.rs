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

mod disk;
pub use disk::{FatImage, Lent, Origin};
use disk::{Lenders, TrackingCursor};
mod read;
pub use read::{FatReader, ReadOnlyRegion};

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
    let lenders = std::rc::Rc::new(Lenders::new(
        content
            .map(|t| t.in_memory().cloned().collect::<Vec<_>>())
            .unwrap_or_default(),
    ));
    let mut disk = TrackingCursor::new(len, lenders.clone());
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
        let fs = FileSystem::new(&mut disk, fs_options).map_err(fat_err)?;
        if let Some(tree) = content {
            copy_tree(structure, tree, "", &fs.root_dir(), size, &lenders)?;
        }
        fs.unmount().map_err(fat_err)?;
    }
    Ok(disk.finish())
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
                let host = match source {
                    Source::Bytes(bytes) => {
                        dst.write_all(bytes).map_err(no_space)?;
                        None
                    }
                    Source::File(from) => {
                        // Checked before opening: opening a FIFO would wait for a writer.
                        let meta = fs::metadata(from).map_err(io_err("read", from))?;
                        if !meta.is_file() {
                            return Err(bad(format!(
                                "{} is neither a file nor a directory; FAT holds only those",
                                from.display()
                            )));
                        }
                        let file = File::open(from).map_err(io_err("read", from))?;
                        let len = file.metadata().map_err(io_err("read", from))?.len();
                        Some((Arc::new(file), len))
                    }
                    Source::Open { file, len } => Some((file.clone(), *len)),
                };
                // A host file's bytes go from it to the image once, when the image is
                // written (see disk.rs).
                if let Some((file, len)) = host {
                    lenders
                        .lend_file(&file, len, |piece| dst.write_all(piece))
                        .map_err(no_space)?;
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

    /// A seed snap's bytes go from memory, and a host file's from the file, straight into the
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
        let lent: u64 = image.lent.iter().map(|r| r.len()).sum();
        assert_eq!(lent as usize, big.len() + small.len() + host.len());
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

    /// An open host file's bytes are copied by the kernel from the handle when the image is
    /// written; a file that became shorter by then is an error, not a run of zeros.
    #[test]
    fn open_files_are_copied_from_their_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base.snap");
        let data: Vec<u8> = (0..(9u32 << 20) / 4)
            .flat_map(|i| i.to_le_bytes())
            .collect();
        fs::write(&path, &data).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        let mut tree = Tree::new();
        tree.file(
            "snaps/base.snap",
            Source::Open {
                file: file.clone(),
                len: data.len() as u64,
            },
        );
        let image = make_fat("t", Filesystem::Vfat, 40 << 20, None, 1, 0, Some(&tree)).unwrap();
        // More than one stand-in's worth, but one run: the clusters follow each other.
        assert_eq!(image.lent.len(), 1, "{:?}", image.lent);
        assert_eq!(image.lent[0].len(), data.len() as u64);
        let out = tempfile::tempfile().unwrap();
        out.set_len(40 << 20).unwrap();
        image.write_at(&out, 0).unwrap();
        let fs = FileSystem::new(&out, FsOptions::new()).unwrap();
        let mut read = Vec::new();
        fs.root_dir()
            .open_file("snaps/base.snap")
            .unwrap()
            .read_to_end(&mut read)
            .unwrap();
        assert!(read == data, "the copy differs");
        drop(fs);

        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let err = image.write_at(&out, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    }

    /// A FIFO in a gadget's tree is refused, not opened (which would wait for a writer).
    #[test]
    fn special_files_are_refused_without_opening_them() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let mut tree = Tree::new();
        tree.add(dir.path(), "/").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let made = make_fat("t", Filesystem::Vfat, 40 << 20, None, 1, 0, Some(&tree));
            let _ = tx.send(made.map(drop).map_err(|e| e.to_string()));
        });
        let made = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("making the FAT hung on the FIFO");
        let err = made.unwrap_err();
        assert!(err.contains("neither a file nor a directory"), "{err}");
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
