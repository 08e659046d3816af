//! The in-memory disk fatfs formats and fills, and the file data it only points at.
//!
//! fatfs hands a file's data to the disk as slices of the caller's buffer. When that buffer
//! is one of the tree's in-memory sources (a seed snap read whole), or the stand-in buffer
//! that stands for a host file, the write is recorded as a [`Lent`] run instead of copied:
//! the image writer takes those bytes from the source itself (a host file's by
//! `copy_file_range`, in the kernel), and the pages of the in-memory disk are neither zeroed
//! nor filled for them. Everything else fatfs writes (boot sector, FATs, directories) lands
//! in the in-memory disk, chunk by chunk.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;

use super::CHUNK;

/// How much of a host file fatfs is handed at a time (see [`Lenders::stand_in`]).
pub(super) const STAND_IN: usize = 4 << 20;

/// A FAT file system built in memory, and which of its chunks were ever written.
#[derive(Debug)]
pub struct FatImage {
    /// The whole file system; chunks never written are zeros, and so are the places of
    /// [`FatImage::lent`].
    pub bytes: Vec<u8>,
    /// One flag per [`CHUNK`] bytes: whether fatfs wrote into it.
    pub written: Vec<bool>,
    /// File data that fatfs wrote from a source of its own (memory or a host file): not
    /// copied into `bytes`, but to be written at its place after the chunks.
    pub lent: Vec<Lent>,
}

/// Where a run of file data comes from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Bytes in memory.
    Bytes(Arc<Vec<u8>>),
    /// An open file on the host, read when the image is written.
    File(Arc<File>),
}

impl Origin {
    fn same(&self, other: &Origin) -> bool {
        match (self, other) {
            (Origin::Bytes(a), Origin::Bytes(b)) => Arc::ptr_eq(a, b),
            (Origin::File(a), Origin::File(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// A run of file data in the file system taken from a source of its own.
#[derive(Debug)]
pub struct Lent {
    /// Where in the file system.
    pub at: u64,
    /// The source.
    pub origin: Origin,
    /// Which of its bytes.
    pub range: Range<u64>,
}

impl Lent {
    /// How many bytes.
    pub fn len(&self) -> u64 {
        self.range.end - self.range.start
    }

    /// Whether the run is empty (it never is: empty writes are not recorded).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FatImage {
    /// Writes the file system into `file` at `offset`: the written chunks, then the runs
    /// taken from their sources (a chunk holding the start or end of a run has zeros where
    /// the run goes, so the runs come last). A host file that has become shorter than it was
    /// when the file system was made is an error.
    pub fn write_at(&self, file: &File, offset: u64) -> io::Result<()> {
        for (at, chunk) in self.data_chunks() {
            file.write_all_at(chunk, offset + at)?;
        }
        for run in &self.lent {
            match &run.origin {
                Origin::Bytes(bytes) => {
                    let range = run.range.start as usize..run.range.end as usize;
                    file.write_all_at(&bytes[range], offset + run.at)?
                }
                Origin::File(from) => super::super::copy_range(
                    from,
                    run.range.start,
                    file,
                    offset + run.at,
                    run.len(),
                )?,
            }
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

/// The sources file data may come from, shared by the cursor and the tree copy.
#[derive(Debug)]
pub(super) struct Lenders {
    /// In-memory sources: the tree's.
    memory: Vec<Arc<Vec<u8>>>,
    /// Stands for the host file being copied: fatfs is handed slices of it, and a write
    /// from it is a run of [`Lenders::current`]'s bytes. Never read, so its pages are never
    /// touched.
    stand_in: Vec<u8>,
    /// The host file being copied and the offset in it that `stand_in` starts at.
    current: RefCell<Option<(Arc<File>, u64)>>,
}

impl Lenders {
    pub(super) fn new(memory: Vec<Arc<Vec<u8>>>) -> Lenders {
        Lenders {
            memory,
            stand_in: vec![0u8; STAND_IN],
            current: RefCell::new(None),
        }
    }

    /// Hands the `len` bytes of `file` to `write` a piece at a time, as slices of the
    /// stand-in buffer.
    pub(super) fn lend_file(
        &self,
        file: &Arc<File>,
        len: u64,
        mut write: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut done = 0;
        while done < len {
            let n = usize::try_from(len - done).map_or(STAND_IN, |left| left.min(STAND_IN));
            *self.current.borrow_mut() = Some((Arc::clone(file), done));
            let written = write(&self.stand_in[..n]);
            *self.current.borrow_mut() = None;
            written?;
            done += n as u64;
        }
        Ok(())
    }

    /// The source `buf` lies in, and where in it; an error for the stand-in's bytes with no
    /// host file being copied (they are no file's data).
    fn lender(&self, buf: &[u8]) -> io::Result<Option<(Origin, u64)>> {
        let addr = buf.as_ptr() as usize;
        let within = |base: usize, len: usize| addr >= base && addr + buf.len() <= base + len;
        let stand_in = self.stand_in.as_ptr() as usize;
        if within(stand_in, self.stand_in.len()) {
            let (file, from) = self.current.borrow().clone().ok_or_else(stray)?;
            return Ok(Some((Origin::File(file), from + (addr - stand_in) as u64)));
        }
        // The most recent source first: the file being copied is usually the last added.
        Ok(self.memory.iter().rev().find_map(|s| {
            let base = s.as_ptr() as usize;
            within(base, s.len()).then(|| (Origin::Bytes(s.clone()), (addr - base) as u64))
        }))
    }
}

/// The stand-in's zeros were to be written as data.
fn stray() -> io::Error {
    io::Error::new(
        io::ErrorKind::WriteZero,
        "host file data past the end of the file system, or outside its copy",
    )
}

/// A cursor over the in-memory disk that remembers which chunks were written, so the writer
/// need not scan (and fault in) the untouched, zero pages of a mostly empty partition, and
/// that records file data from [`Lenders`] as [`Lent`] runs.
pub(super) struct TrackingCursor {
    pub(super) inner: Cursor<Vec<u8>>,
    pub(super) written: Vec<bool>,
    pub(super) sources: std::rc::Rc<Lenders>,
    pub(super) lent: Vec<Lent>,
}

impl TrackingCursor {
    pub(super) fn new(len: usize, sources: std::rc::Rc<Lenders>) -> TrackingCursor {
        TrackingCursor {
            inner: Cursor::new(vec![0u8; len]),
            written: vec![false; len.div_ceil(CHUNK)],
            sources,
            lent: Vec::new(),
        }
    }

    pub(super) fn finish(self) -> FatImage {
        FatImage {
            bytes: self.inner.into_inner(),
            written: self.written,
            lent: self.lent,
        }
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
        match self.sources.lender(buf)?.filter(|_| !buf.is_empty()) {
            Some((origin, from)) if fits => {
                let at = start as u64;
                let len = buf.len() as u64;
                match self.lent.last_mut() {
                    // The next piece of the same run: one longer run.
                    Some(last)
                        if last.origin.same(&origin)
                            && last.at + last.len() == at
                            && last.range.end == from =>
                    {
                        last.range.end += len;
                    }
                    _ => self.lent.push(Lent {
                        at,
                        origin,
                        range: from..from + len,
                    }),
                }
                self.inner.set_position((start + buf.len()) as u64);
                return Ok(buf.len());
            }
            // The stand-in's zeros are no file's data: never write them.
            Some((Origin::File(_), _)) => return Err(stray()),
            _ => {}
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
