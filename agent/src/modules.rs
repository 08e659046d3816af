//! Loads the board's kernel modules, in the order `/etc/coreforge/modules.load` lists them.
//!
//! Debian kernels ship no `modules.dep` in our initramfs, so the initramfs builder writes
//! the closure in dependency order and we load it line by line with `finit_module(2)`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The list written by the initramfs builder.
pub const MODULES_LOAD: &str = "/etc/coreforge/modules.load";

/// Where relative entries of the list live.
pub const MODULES_DIR: &str = "/lib/modules";

/// `MODULE_INIT_COMPRESSED_FILE`: let the kernel decompress `.ko.xz`/`.ko.zst`/`.ko.gz`.
const MODULE_INIT_COMPRESSED_FILE: i32 = 4;

/// How a module load ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// The kernel linked it now.
    Now,
    /// It was already there (`EEXIST`), which is just as good.
    Already,
}

/// The module paths in `text`, in order: one a line, blank lines and `#` comments skipped,
/// relative paths taken below [`MODULES_DIR`].
pub fn parse_list(text: &str) -> Vec<PathBuf> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let p = Path::new(l);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                Path::new(MODULES_DIR).join(p)
            }
        })
        .collect()
}

/// The module's name as we print it: the file name without `.ko` (and compression suffix).
pub fn name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy())
        .unwrap_or_default();
    let mut stem: &str = &file;
    for suffix in [".xz", ".zst", ".gz"] {
        stem = stem.strip_suffix(suffix).unwrap_or(stem);
    }
    stem.strip_suffix(".ko").unwrap_or(stem).to_owned()
}

fn is_compressed(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("xz" | "zst" | "gz")
    )
}

/// Loads one module file; `EEXIST` (already loaded) counts as success.
pub fn load(path: &Path) -> io::Result<Loaded> {
    let file = File::open(path)?;
    let flags = if is_compressed(path) {
        MODULE_INIT_COMPRESSED_FILE
    } else {
        0
    };
    match rustix::system::finit_module(&file, c"", flags) {
        Ok(()) => Ok(Loaded::Now),
        Err(rustix::io::Errno::EXIST) => Ok(Loaded::Already),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_in_order_with_comments_and_blanks() {
        let text = "# virtio first\n/lib/modules/virtio.ko\n\n  virtio_ring.ko  \r\nsub/vfat.ko.xz";
        assert_eq!(
            parse_list(text),
            vec![
                PathBuf::from("/lib/modules/virtio.ko"),
                PathBuf::from("/lib/modules/virtio_ring.ko"),
                PathBuf::from("/lib/modules/sub/vfat.ko.xz"),
            ]
        );
    }

    #[test]
    fn empty_list() {
        assert!(parse_list("").is_empty());
        assert!(parse_list("\n# nothing\n\n").is_empty());
    }

    #[test]
    fn names() {
        assert_eq!(name(Path::new("/lib/modules/virtio_blk.ko")), "virtio_blk");
        assert_eq!(
            name(Path::new("/lib/modules/bcm2835_wdt.ko.xz")),
            "bcm2835_wdt"
        );
        assert_eq!(name(Path::new("fat.ko.zst")), "fat");
        assert_eq!(name(Path::new("odd")), "odd");
        assert_eq!(name(Path::new("/")), "");
    }

    #[test]
    fn compression_flag_follows_the_suffix() {
        assert!(is_compressed(Path::new("a.ko.xz")));
        assert!(is_compressed(Path::new("a.ko.gz")));
        assert!(!is_compressed(Path::new("a.ko")));
    }

    #[test]
    fn missing_file_is_reported_not_loaded() {
        let err = load(Path::new("/nonexistent/coreforge-test.ko")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn not_a_module_fails_cleanly() {
        // Unprivileged: EPERM; as root: ENOEXEC for a file that is not an ELF module.
        let path = std::env::temp_dir().join(format!("cf-agent-mod-{}.ko", std::process::id()));
        std::fs::write(&path, b"not an ELF module").unwrap();
        let result = load(&path);
        std::fs::remove_file(&path).unwrap();
        assert!(result.is_err(), "{result:?}");
    }
}
