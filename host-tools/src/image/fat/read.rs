//! Reading a FAT file system out of an image without writing to it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use fatfs::{FatType, FileSystem, FsOptions};

use super::super::{io_err, ImageError};

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
