//! A writer for the `newc` cpio format the kernel unpacks as its initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst).

use std::collections::BTreeMap;

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;
const S_IFLNK: u32 = 0o120000;

/// One archive member, before numbering.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File(Vec<u8>),
    CharDev { major: u32, minor: u32 },
    Symlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: Kind,
    /// Permission bits only; the type comes from `kind`.
    perm: u32,
}

/// An archive built in memory. Entries are kept sorted by path and written with fixed
/// owners (0:0), inode numbers in path order and one mtime, so equal inputs give equal bytes;
/// parents of every entry are added as directories (0755).
#[derive(Debug, Clone, Default)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str, perm: u32) {
        self.insert(path, Kind::Dir, perm);
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, data: Vec<u8>, perm: u32) {
        self.insert(path, Kind::File(data), perm);
    }

    /// Adds a character device node (no root needed: it is only a header).
    pub fn char_dev(&mut self, path: &str, major: u32, minor: u32, perm: u32) {
        self.insert(path, Kind::CharDev { major, minor }, perm);
    }

    /// Adds a symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.insert(path, Kind::Symlink(target.to_string()), 0o777);
    }

    /// Moves the entries whose paths `part` selects into a new archive; their parent
    /// directories are in both.
    pub fn split_off(&mut self, part: impl Fn(&str) -> bool) -> Archive {
        let mut out = Archive::new();
        let moved: Vec<String> = self.entries.keys().filter(|p| part(p)).cloned().collect();
        for path in moved {
            if let Some(e) = self.entries.remove(&path) {
                out.insert(&path, e.kind, e.perm);
            }
        }
        out
    }

    /// True when an entry exists at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(normalize(path))
    }

    fn insert(&mut self, path: &str, kind: Kind, perm: u32) {
        let path = normalize(path).to_string();
        let mut parent = path.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            self.entries.entry(p.to_string()).or_insert(Entry {
                kind: Kind::Dir,
                perm: 0o755,
            });
            parent = p;
        }
        self.entries.insert(
            path,
            Entry {
                kind,
                perm: perm & 0o7777,
            },
        );
    }

    /// The archive's bytes, every entry stamped with `mtime`, ending with the trailer.
    pub fn to_bytes(&self, mtime: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (path, entry)) in self.entries.iter().enumerate() {
            let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match &entry.kind {
                Kind::Dir => (S_IFDIR, &[], (0, 0)),
                Kind::File(d) => (S_IFREG, d, (0, 0)),
                Kind::CharDev { major, minor } => (S_IFCHR, &[], (*major, *minor)),
                Kind::Symlink(t) => (S_IFLNK, t.as_bytes(), (0, 0)),
            };
            let nlink = if matches!(entry.kind, Kind::Dir) {
                2
            } else {
                1
            };
            // Inode 0 is avoided: some unpackers treat it as "no inode".
            let ino = u32::try_from(i + 1).unwrap_or(u32::MAX);
            write_entry(
                &mut out,
                path,
                ino,
                mode | entry.perm,
                nlink,
                mtime,
                data,
                rdev,
            );
        }
        write_entry(&mut out, "TRAILER!!!", 0, 0, 1, 0, &[], (0, 0));
        out
    }
}

/// Archive paths are relative ("init", "dev/console"), as the kernel's own tools write them.
fn normalize(path: &str) -> &str {
    path.trim_start_matches('/').trim_end_matches('/')
}

/// Writes one `070701` header, the NUL-terminated name and the data, each padded to 4 bytes.
#[allow(clippy::too_many_arguments)]
fn write_entry(
    out: &mut Vec<u8>,
    name: &str,
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    data: &[u8],
    rdev: (u32, u32),
) {
    let namesize = name.len() + 1;
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        mtime,
        u32::try_from(data.len()).unwrap_or(u32::MAX),
        0, // devmajor
        0, // devminor
        rdev.0,
        rdev.1,
        u32::try_from(namesize).unwrap_or(u32::MAX),
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One parsed member: (name, mode, rdevmajor, rdevminor, mtime, data).
    pub(crate) type Member = (String, u32, u32, u32, u32, Vec<u8>);

    /// A minimal newc reader for the tests: checks magic, alignment and the trailer.
    pub(crate) fn parse(mut bytes: &[u8]) -> Vec<Member> {
        let total = bytes.len();
        let mut out = Vec::new();
        loop {
            assert_eq!(&bytes[..6], b"070701");
            assert_eq!((total - bytes.len()) % 4, 0, "header not 4-aligned");
            let field = |i: usize| {
                let s = std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            };
            let (mode, mtime, filesize, rmaj, rmin, namesize) = (
                field(1),
                field(5),
                field(6) as usize,
                field(9),
                field(10),
                field(11) as usize,
            );
            assert_eq!((field(2), field(3)), (0, 0), "uid/gid");
            let name = std::str::from_utf8(&bytes[110..110 + namesize - 1])
                .unwrap()
                .to_string();
            let data_start = (110 + namesize).next_multiple_of(4);
            let data = bytes[data_start..data_start + filesize].to_vec();
            bytes = &bytes[(data_start + filesize).next_multiple_of(4)..];
            if name == "TRAILER!!!" {
                assert!(bytes.is_empty(), "bytes after the trailer");
                return out;
            }
            out.push((name, mode, rmaj, rmin, mtime, data));
        }
    }

    #[test]
    fn members_round_trip_with_types_and_modes() {
        let mut a = Archive::new();
        a.file("/init", b"\x7fELF".to_vec(), 0o755);
        a.char_dev("/dev/console", 5, 1, 0o600);
        a.symlink("/bin/sh", "/init");
        let members = parse(&a.to_bytes(1234));
        let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(names, ["bin", "bin/sh", "dev", "dev/console", "init"]);
        let console = &members[3];
        assert_eq!((console.1, console.2, console.3), (0o020600, 5, 1));
        assert_eq!(members[4].1, 0o100755);
        assert_eq!(members[4].5, b"\x7fELF");
        assert_eq!(members[1].5, b"/init");
        assert_eq!(members[0].1, 0o040755);
        assert!(members.iter().all(|m| m.4 == 1234));
    }

    #[test]
    fn insertion_order_does_not_change_the_bytes() {
        let mut a = Archive::new();
        a.file("etc/b", vec![1], 0o644);
        a.file("etc/a", vec![2, 3], 0o644);
        let mut b = Archive::new();
        b.file("/etc/a", vec![2, 3], 0o644);
        b.file("/etc/b", vec![1], 0o644);
        assert_eq!(a.to_bytes(0), b.to_bytes(0));
        assert_ne!(a.to_bytes(0), a.to_bytes(1));
    }

    #[test]
    fn odd_sizes_are_padded() {
        for len in 0..9 {
            let mut a = Archive::new();
            a.file("x".repeat(len + 1).as_str(), vec![7; len], 0o644);
            let m = parse(&a.to_bytes(0));
            assert_eq!(m[0].5.len(), len);
        }
    }
}
