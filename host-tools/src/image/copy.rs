//! Copying a range of one file into another: the FAT's host files, the ext4 made beside the
//! image, and trees written out for inspection all go through [`copy_range`].

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;

/// Copies `len` bytes of `from` at `from_at` into `to` at `to_at`: in the kernel
/// (`copy_file_range`, which shares blocks where the file system can), else through a
/// buffer. `from` ending early is an error.
pub fn copy_range(from: &File, from_at: u64, to: &File, to_at: u64, len: u64) -> io::Result<()> {
    let shorter = || {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "a source file became shorter while the image was made",
        )
    };
    let (mut src, mut dst, mut left) = (from_at, to_at, len);
    while left > 0 {
        let want = usize::try_from(left.min(1 << 30)).unwrap_or(1 << 30);
        match rustix::fs::copy_file_range(from, Some(&mut src), to, Some(&mut dst), want) {
            Ok(0) => return Err(shorter()),
            Ok(n) => left -= n as u64,
            // Not between these two files (another file system on an old kernel, a special
            // file): the same bytes through a buffer.
            Err(rustix::io::Errno::XDEV | rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS)
                if left == len =>
            {
                let mut buf = vec![0u8; (1 << 20).min(len as usize)];
                while left > 0 {
                    let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let got = from.read_at(&mut buf[..n], src)?;
                    if got == 0 {
                        return Err(shorter());
                    }
                    to.write_all_at(&buf[..got], dst)?;
                    (src, dst, left) = (src + got as u64, dst + got as u64, left - got as u64);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
