//! The files of a file system to be, by path, each read from where it already is (a file on
//! the host) or held in memory: the FAT writer copies them straight into the image, with no
//! staged copy in between; ext4, whose `mke2fs -d` wants a directory, gets one made from it
//! ([`Tree::write_to`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{io_err, ImageError};

/// Where a file's bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file on the host, read when the file system is written.
    File(PathBuf),
    /// Bytes already in memory (shared: a seed snap is hashed from the same bytes).
    Bytes(Arc<Vec<u8>>),
    /// The first `len` bytes of a file already open: what was checked through this handle
    /// is what is copied, whatever its path names by then.
    Open {
        /// The file.
        file: Arc<fs::File>,
        /// How many of its bytes.
        len: u64,
    },
}

impl PartialEq for Source {
    fn eq(&self, other: &Source) -> bool {
        match (self, other) {
            (Source::File(a), Source::File(b)) => a == b,
            (Source::Bytes(a), Source::Bytes(b)) => a == b,
            (Source::Open { file: a, len: m }, Source::Open { file: b, len: n }) => {
                Arc::ptr_eq(a, b) && m == n
            }
            _ => false,
        }
    }
}

impl Eq for Source {}

impl Source {
    /// Bytes in memory.
    pub fn bytes(bytes: Vec<u8>) -> Source {
        Source::Bytes(Arc::new(bytes))
    }
}

/// Directories and files by path (`/`-separated, relative to the file system's root).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    dirs: BTreeSet<String>,
    files: BTreeMap<String, Source>,
}

/// One entry of a directory, as [`Tree::children`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child<'a> {
    /// A directory.
    Dir(&'a str),
    /// A file and where its bytes come from.
    File(&'a str, &'a Source),
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Whether there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty() && self.files.is_empty()
    }

    /// Adds the directory `path` (and its parents).
    pub fn dir(&mut self, path: &str) {
        let path = clean(path);
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            self.dirs.insert(at.clone());
        }
    }

    /// Adds (or replaces) the file `path` with its parents.
    pub fn file(&mut self, path: &str, source: Source) {
        let path = clean(path);
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.files.insert(path, source);
    }

    /// Adds the host's file or directory `from` as `to`: a directory with everything under
    /// it (symbolic links followed, as a FAT has none), files by path.
    pub fn add(&mut self, from: &Path, to: &str) -> Result<(), ImageError> {
        let meta = fs::metadata(from).map_err(io_err("read", from))?;
        if meta.is_dir() {
            self.dir(to);
            for entry in fs::read_dir(from).map_err(io_err("read directory", from))? {
                let entry = entry.map_err(io_err("read directory", from))?;
                let name = entry.file_name();
                let name = name.to_str().ok_or_else(|| ImageError::BadContent {
                    structure: to.into(),
                    problem: format!("{} is not a UTF-8 name", entry.path().display()),
                })?;
                self.add(&entry.path(), &format!("{}/{name}", clean(to)))?;
            }
        } else {
            self.file(to, Source::File(from.to_path_buf()));
        }
        Ok(())
    }

    /// The in-memory sources of its files.
    pub fn in_memory(&self) -> impl Iterator<Item = &Arc<Vec<u8>>> {
        self.files.values().filter_map(|s| match s {
            Source::Bytes(b) => Some(b),
            Source::File(_) | Source::Open { .. } => None,
        })
    }

    /// The entries of directory `dir` (`""` is the root), in name order.
    pub fn children(&self, dir: &str) -> Vec<Child<'_>> {
        let dir = clean(dir);
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let direct = |path: &str| {
            path.strip_prefix(&prefix)
                .filter(|rest| !rest.is_empty() && !rest.contains('/'))
                .is_some()
        };
        let mut out: Vec<(&str, Child<'_>)> = self
            .dirs
            .iter()
            .filter(|p| direct(p))
            .map(|p| (&p[prefix.len()..], Child::Dir(p.as_str())))
            .chain(
                self.files
                    .iter()
                    .filter(|(p, _)| direct(p))
                    .map(|(p, s)| (&p[prefix.len()..], Child::File(p.as_str(), s))),
            )
            .collect();
        out.sort_by(|a, b| a.0.cmp(b.0));
        out.into_iter().map(|(_, c)| c).collect()
    }

    /// Makes the tree under `dest` (for tools that read a directory).
    pub fn write_to(&self, dest: &Path) -> Result<(), ImageError> {
        fs::create_dir_all(dest).map_err(io_err("create", dest))?;
        for dir in &self.dirs {
            let path = dest.join(dir);
            fs::create_dir_all(&path).map_err(io_err("create", &path))?;
        }
        for (name, source) in &self.files {
            let path = dest.join(name);
            match source {
                Source::File(from) => fs::copy(from, &path).map(drop),
                Source::Bytes(bytes) => fs::write(&path, bytes.as_slice()),
                Source::Open { file, len } => {
                    fs::File::create(&path).and_then(|to| super::copy_range(file, 0, &to, 0, *len))
                }
            }
            .map_err(io_err("write", &path))?;
        }
        Ok(())
    }
}

/// A path without leading, trailing or doubled slashes.
fn clean(path: &str) -> String {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_come_in_name_order_with_their_parents_made() {
        let mut t = Tree::new();
        t.file("/b/x.txt", Source::bytes(b"x".to_vec()));
        t.file("a.txt", Source::bytes(b"a".to_vec()));
        t.dir("c//d/");
        let root: Vec<_> = t.children("");
        assert_eq!(
            root,
            [
                Child::File("a.txt", &Source::bytes(b"a".to_vec())),
                Child::Dir("b"),
                Child::Dir("c")
            ]
        );
        assert_eq!(t.children("/c/"), [Child::Dir("c/d")]);
        assert_eq!(
            t.children("b"),
            [Child::File("b/x.txt", &Source::bytes(b"x".to_vec()))]
        );
    }

    #[test]
    fn host_trees_are_added_by_path_and_written_back() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("overlays")).unwrap();
        fs::write(src.path().join("overlays/a.dtbo"), b"dtbo").unwrap();
        fs::write(src.path().join("config.txt"), b"cfg").unwrap();
        let mut t = Tree::new();
        t.add(src.path(), "/").unwrap();
        t.file("config.txt", Source::bytes(b"replaced".to_vec()));
        assert_eq!(
            t.children("overlays"),
            [Child::File(
                "overlays/a.dtbo",
                &Source::File(src.path().join("overlays/a.dtbo"))
            )]
        );
        let out = tempfile::tempdir().unwrap();
        t.write_to(out.path()).unwrap();
        assert_eq!(
            fs::read(out.path().join("overlays/a.dtbo")).unwrap(),
            b"dtbo"
        );
        assert_eq!(
            fs::read(out.path().join("config.txt")).unwrap(),
            b"replaced"
        );
    }
}
