//! Block maps: which blocks of a sparse image hold data, as `bmaptool` reads and writes them
//! (bmap format 2.0, SHA-256 checksums), found with `SEEK_DATA`/`SEEK_HOLE`.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The block size coreforge's bmaps use (bmaptool's default).
pub const BLOCK_SIZE: u64 = 4096;

/// Largest bmap file read (a bmap of a few thousand ranges is some hundred KiB).
const MAX_BMAP_SIZE: u64 = 16 << 20;

/// A range of blocks `first..=last` that holds data, with the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// First block.
    pub first: u64,
    /// Last block (inclusive).
    pub last: u64,
    /// SHA-256 of the image's bytes in the range (lower-case hex).
    pub sha256: String,
}

/// A parsed (and checked) block map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bmap {
    /// The image's size in bytes.
    pub image_size: u64,
    /// The block size in bytes.
    pub block_size: u64,
    /// The mapped ranges, in order.
    pub ranges: Vec<Range>,
}

/// Why a bmap file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BmapError {
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The file is not a bmap this code reads.
    #[error("{0}: not a bmap file coreforge reads (version 2.x, sha256 checksums)")]
    Format(String),
    /// `BmapFileChecksum` does not match the file.
    #[error("the bmap file's own checksum does not match: it was changed after it was written (BmapFileChecksum {declared}, the file hashes to {actual})")]
    FileChecksum {
        /// What the file says.
        declared: String,
        /// What it hashes to.
        actual: String,
    },
    /// The bmap describes another image.
    #[error("the bmap is for an image of {bmap} bytes, but the image is {image} bytes")]
    ImageSize {
        /// The bmap's `ImageSize`.
        bmap: u64,
        /// The image's size.
        image: u64,
    },
}

/// The byte ranges `[start, end)` of `file` that hold data, rounded out to whole blocks of
/// `block` bytes (the last one cut at the file's end). Holes read as zeros and are left out.
pub fn data_ranges(file: &File, block: u64) -> io::Result<Vec<(u64, u64)>> {
    use rustix::fs::{seek, SeekFrom as RSeek};
    let size = file.metadata()?.len();
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let start = match seek(file, RSeek::Data(pos)) {
            Ok(s) => s,
            // ENXIO: no data at or after `pos`.
            Err(rustix::io::Errno::NXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let end = seek(file, RSeek::Hole(start))?.min(size);
        let (start, end) = (start / block * block, end.div_ceil(block) * block);
        let end = end.min(size);
        match out.last_mut() {
            Some(last) if last.1 >= start => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
        pos = end;
    }
    Ok(out)
}

/// The bmap of `image` (its mapped blocks, each range's SHA-256) as bmaptool 3.x writes it.
pub fn create(image: &Path) -> io::Result<String> {
    let mut file = File::open(image)?;
    let size = file.metadata()?.len();
    let mut ranges = Vec::new();
    for (start, end) in data_ranges(&file, BLOCK_SIZE)? {
        ranges.push(Range {
            first: start / BLOCK_SIZE,
            last: end.div_ceil(BLOCK_SIZE) - 1,
            sha256: sha256_of(&mut file, start, end)?,
        });
    }
    Ok(format(size, &ranges))
}

/// SHA-256 (hex) of `file`'s bytes `[start, end)`.
pub fn sha256_of(file: &mut File, start: u64, end: u64) -> io::Result<String> {
    file.seek(SeekFrom::Start(start))?;
    let mut hasher = Sha256::new();
    let mut left = end - start;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex, as bmap checksums are written.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

const ZERO_SUM: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The bmap text, with its `BmapFileChecksum` filled in (bmaptool's layout).
fn format(size: u64, ranges: &[Range]) -> String {
    let blocks = size.div_ceil(BLOCK_SIZE);
    let mapped: u64 = ranges.iter().map(|r| r.last - r.first + 1).sum();
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" ?>\n");
    // No "--" inside XML comments: parsers (bmaptool's ElementTree) refuse it.
    x.push_str("<!-- This file contains the block map for an image file, written by\n");
    x.push_str("     coreforge build-image. bmaptool copy and coreforge flash write only\n");
    x.push_str("     the mapped blocks and check each range's SHA-256. -->\n\n");
    x.push_str("<bmap version=\"2.0\">\n");
    let _ = writeln!(
        x,
        "    <!-- Image size in bytes: {} MiB -->",
        size.div_ceil(1 << 20)
    );
    let _ = writeln!(x, "    <ImageSize> {size} </ImageSize>\n");
    x.push_str("    <!-- Size of a block in bytes -->\n");
    let _ = writeln!(x, "    <BlockSize> {BLOCK_SIZE} </BlockSize>\n");
    x.push_str("    <!-- Count of blocks in the image file -->\n");
    let _ = writeln!(x, "    <BlocksCount> {blocks} </BlocksCount>\n");
    x.push_str("    <!-- Count of mapped blocks -->\n");
    let _ = writeln!(x, "    <MappedBlocksCount> {mapped} </MappedBlocksCount>\n");
    x.push_str("    <!-- Type of checksum used in this file -->\n");
    x.push_str("    <ChecksumType> sha256 </ChecksumType>\n\n");
    x.push_str("    <!-- The checksum of this bmap file. When it is calculated, the value of\n");
    x.push_str("         the checksum has be zero (all ASCII \"0\" symbols).  -->\n");
    let _ = writeln!(x, "    <BmapFileChecksum> {ZERO_SUM} </BmapFileChecksum>\n");
    x.push_str("    <!-- The block map: ranges of mapped blocks, each with the SHA-256 of\n");
    x.push_str("         its bytes. -->\n");
    x.push_str("    <BlockMap>\n");
    for r in ranges {
        if r.first == r.last {
            let _ = writeln!(
                x,
                "        <Range chksum=\"{}\"> {} </Range>",
                r.sha256, r.first
            );
        } else {
            let _ = writeln!(
                x,
                "        <Range chksum=\"{}\"> {}-{} </Range>",
                r.sha256, r.first, r.last
            );
        }
    }
    x.push_str("    </BlockMap>\n</bmap>\n");
    let sum = hex(&Sha256::digest(x.as_bytes()));
    x.replacen(ZERO_SUM, &sum, 1)
}

/// The text between `<tag>` (attributes allowed) and `</tag>`, trimmed.
fn element<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let open = text.find(&format!("<{tag}"))?;
    let body = open + text[open..].find('>')? + 1;
    let close = body + text[body..].find(&format!("</{tag}>"))?;
    Some(text[body..close].trim())
}

/// Reads and checks a bmap file: version 2.x, sha256, its own checksum, sane numbers.
pub fn read(path: &Path) -> Result<Bmap, BmapError> {
    let io_err = |source| BmapError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut bytes = Vec::new();
    File::open(path)
        .map_err(io_err)?
        .take(MAX_BMAP_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    let bad = |what: &str| BmapError::Format(format!("{}: {what}", path.display()));
    if bytes.len() as u64 > MAX_BMAP_SIZE {
        return Err(bad("larger than 16 MiB"));
    }
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    parse(&text).map_err(|what| bad(&what))?
}

/// Parses bmap text; the outer error is a format problem, the inner a checksum mismatch.
fn parse(text: &str) -> Result<Result<Bmap, BmapError>, String> {
    let version = text
        .find("<bmap version=\"")
        .map(|i| &text[i + 15..])
        .and_then(|v| v.split('"').next())
        .ok_or("no <bmap version=\"...\">")?;
    if !version.starts_with("2.") {
        return Err(format!("version {version}"));
    }
    let number = |tag: &str| -> Result<u64, String> {
        element(text, tag)
            .ok_or(format!("no <{tag}>"))?
            .parse()
            .map_err(|_| format!("<{tag}> is not a number"))
    };
    let image_size = number("ImageSize")?;
    let block_size = number("BlockSize")?;
    if block_size == 0 || block_size % 512 != 0 {
        return Err(format!("block size {block_size}"));
    }
    if element(text, "ChecksumType") != Some("sha256") {
        return Err("checksum type is not sha256".into());
    }
    let declared = element(text, "BmapFileChecksum").ok_or("no <BmapFileChecksum>")?;
    if declared.len() != 64 {
        return Err("BmapFileChecksum is not a SHA-256".into());
    }
    let zeroed = text.replacen(declared, ZERO_SUM, 1);
    let actual = hex(&Sha256::digest(zeroed.as_bytes()));
    if actual != declared {
        return Ok(Err(BmapError::FileChecksum {
            declared: declared.to_owned(),
            actual,
        }));
    }
    let map = element(text, "BlockMap").ok_or("no <BlockMap>")?;
    let blocks = image_size.div_ceil(block_size);
    let mut ranges: Vec<Range> = Vec::new();
    for part in map
        .split("</Range>")
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let part = part
            .strip_prefix("<Range")
            .ok_or("a <BlockMap> entry is not a <Range>")?;
        let (attrs, span) = part.split_once('>').ok_or("an unclosed <Range>")?;
        let sha256 = attrs
            .split("chksum=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .filter(|s| s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit()))
            .ok_or("a range without a SHA-256 chksum")?
            .to_ascii_lowercase();
        let span = span.trim();
        let (first, last) = match span.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (span, span),
        };
        let (first, last): (u64, u64) = (
            first.parse().map_err(|_| format!("range {span:?}"))?,
            last.parse().map_err(|_| format!("range {span:?}"))?,
        );
        if first > last || last >= blocks || ranges.last().is_some_and(|r| r.last >= first) {
            return Err(format!(
                "range {span:?} is out of order or beyond the image"
            ));
        }
        ranges.push(Range {
            first,
            last,
            sha256,
        });
    }
    Ok(Ok(Bmap {
        image_size,
        block_size,
        ranges,
    }))
}

impl Bmap {
    /// The byte ranges `[start, end)` of the image the map says hold data.
    pub fn byte_ranges(&self) -> Vec<(u64, u64)> {
        self.ranges
            .iter()
            .map(|r| {
                (
                    r.first * self.block_size,
                    ((r.last + 1) * self.block_size).min(self.image_size),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    fn sparse(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("img");
        let f = File::create(&path).unwrap();
        f.set_len(10 * BLOCK_SIZE + 100).unwrap();
        f.write_at(b"start", 0).unwrap();
        f.write_at(&[7u8; 5000], 5 * BLOCK_SIZE + 10).unwrap();
        f.write_at(b"tail", 10 * BLOCK_SIZE + 50).unwrap();
        path
    }

    #[test]
    fn maps_only_the_blocks_with_data_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let img = sparse(dir.path());
        let text = create(&img).unwrap();
        // Well-formed XML: no "--" inside a comment.
        for comment in text.split("<!--").skip(1) {
            let body = comment.split("-->").next().unwrap();
            assert!(!body.contains("--"), "{body}");
        }
        let bmap_path = dir.path().join("img.bmap");
        std::fs::write(&bmap_path, &text).unwrap();
        let bmap = read(&bmap_path).unwrap();
        assert_eq!(bmap.image_size, 10 * BLOCK_SIZE + 100);
        let spans: Vec<(u64, u64)> = bmap.ranges.iter().map(|r| (r.first, r.last)).collect();
        // tmpfs and ext4 allocate at least whole pages: block 0, blocks 5-6, block 10.
        assert_eq!(spans, [(0, 0), (5, 6), (10, 10)], "{text}");
        assert_eq!(
            bmap.byte_ranges().last(),
            Some(&(10 * BLOCK_SIZE, 10 * BLOCK_SIZE + 100))
        );
        let mut f = File::open(&img).unwrap();
        assert_eq!(
            bmap.ranges[0].sha256,
            sha256_of(&mut f, 0, BLOCK_SIZE).unwrap()
        );
    }

    #[test]
    fn a_changed_bmap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let img = sparse(dir.path());
        let text = create(&img).unwrap();
        let path = dir.path().join("b");
        // One range's checksum changed: the file's own checksum no longer matches.
        let i = text.find("chksum=\"").unwrap() + 8;
        let mut tampered = text.clone();
        tampered.replace_range(i..i + 1, if &text[i..i + 1] == "a" { "b" } else { "a" });
        std::fs::write(&path, &tampered).unwrap();
        assert!(matches!(read(&path), Err(BmapError::FileChecksum { .. })));
        for (from, to) in [
            ("version=\"2.0\"", "version=\"1.4\""),
            ("sha256 <", "sha1 <"),
        ] {
            std::fs::File::create(&path)
                .unwrap()
                .write_all(text.replace(from, to).as_bytes())
                .unwrap();
            assert!(matches!(read(&path), Err(BmapError::Format(_))), "{to}");
        }
    }
}
