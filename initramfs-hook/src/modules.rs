//! Finds kernel modules by name in an unpacked `lib/modules/<release>/` tree and orders
//! them with their dependency closure, dependencies first.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::modinfo::{self, normalize_name};
use crate::Error;

/// A module ready for the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Its name (underscores), also its file name in the initramfs (`<name>.ko`).
    pub name: String,
    /// The uncompressed ELF object (the agent loads it with `finit_module`, no decompressor).
    pub data: Vec<u8>,
    /// Where it came from.
    pub source: PathBuf,
}

/// Every module file under a modules directory, by normalized name.
#[derive(Debug, Clone)]
pub struct ModuleIndex {
    dir: PathBuf,
    by_name: BTreeMap<String, PathBuf>,
}

/// Module file suffixes we read; compressed ones are unpacked on the host.
const SUFFIXES: [&str; 4] = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

impl ModuleIndex {
    /// Walks `dir` (a kernel's `lib/modules/<release>/`) for module files.
    pub fn scan(dir: &Path) -> Result<Self, Error> {
        let mut by_name = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&d, e))?;
                let path = entry.path();
                let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
                if kind.is_dir() {
                    stack.push(path);
                } else if let Some(name) = module_name_of(&path) {
                    // The first one by path wins, so the result does not depend on readdir order.
                    let slot = by_name.entry(name).or_insert_with(|| path.clone());
                    if path < *slot {
                        *slot = path;
                    }
                }
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            by_name,
        })
    }

    /// The file holding module `name` (`-` and `_` are equal).
    pub fn path_of(&self, name: &str) -> Option<&Path> {
        self.by_name
            .get(&normalize_name(name))
            .map(PathBuf::as_path)
    }

    /// `names` and everything they depend on, uncompressed, in load order: each module after
    /// its dependencies, otherwise in the order asked.
    pub fn resolve<S: AsRef<str>>(&self, names: &[S]) -> Result<Vec<Module>, Error> {
        let mut out = Vec::new();
        let mut done = BTreeSet::new();
        for name in names {
            self.visit(
                &normalize_name(name.as_ref()),
                &mut Vec::new(),
                &mut done,
                &mut out,
            )?;
        }
        Ok(out)
    }

    /// Depth-first, dependencies before dependents; `path` is the chain being visited (cycles).
    fn visit(
        &self,
        name: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        out: &mut Vec<Module>,
    ) -> Result<(), Error> {
        if done.contains(name) {
            return Ok(());
        }
        if path.iter().any(|p| p == name) {
            path.push(name.to_string());
            return Err(Error::DependencyCycle {
                chain: path.join(" -> "),
            });
        }
        let source = self.path_of(name).ok_or_else(|| Error::ModuleNotFound {
            module: name.to_string(),
            needed_by: path.last().cloned(),
            dir: self.dir.clone(),
        })?;
        let data = read_module(source)?;
        let info = modinfo::parse(&data, &source.display().to_string())?;
        path.push(name.to_string());
        for dep in &info.depends {
            self.visit(dep, path, done, out)?;
        }
        path.pop();
        done.insert(name.to_string());
        out.push(Module {
            name: name.to_string(),
            data,
            source: source.to_path_buf(),
        });
        Ok(())
    }
}

/// `foo-bar.ko.xz` -> `foo_bar`; `None` for files that are not modules.
fn module_name_of(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    SUFFIXES
        .iter()
        .find_map(|s| file.strip_suffix(s))
        .map(normalize_name)
}

/// Reads a module file, decompressing `.xz`, `.zst` and `.gz`.
fn read_module(path: &Path) -> Result<Vec<u8>, Error> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let name = path.to_string_lossy();
    let decompress_err = |reason: String| Error::Decompress {
        path: path.to_path_buf(),
        reason,
    };
    if name.ends_with(".xz") {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut raw.as_slice(), &mut out)
            .map_err(|e| decompress_err(format!("{e:?}")))?;
        Ok(out)
    } else if name.ends_with(".zst") {
        zstd::decode_all(raw.as_slice()).map_err(|e| decompress_err(e.to_string()))
    } else if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| decompress_err(e.to_string()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modinfo::tests::fake_module;
    use std::io::Write;

    /// Writes a fake module `name` with `depends` at `rel` under `dir`, compressed per suffix.
    fn put(dir: &Path, rel: &str, name: &str, depends: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let elf = fake_module(&[&format!("depends={depends}"), &format!("name={name}")]);
        let bytes = if rel.ends_with(".xz") {
            let mut out = Vec::new();
            lzma_rs::xz_compress(&mut elf.as_slice(), &mut out).unwrap();
            out
        } else if rel.ends_with(".zst") {
            zstd::encode_all(elf.as_slice(), 3).unwrap()
        } else if rel.ends_with(".gz") {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&elf).unwrap();
            e.finish().unwrap()
        } else {
            elf
        };
        std::fs::write(path, bytes).unwrap();
    }

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        put(d, "kernel/fs/ext4/ext4.ko", "ext4", "jbd2,mbcache,crc16");
        put(d, "kernel/fs/jbd2/jbd2.ko.xz", "jbd2", "");
        put(d, "kernel/fs/mbcache.ko.zst", "mbcache", "");
        put(d, "kernel/lib/crc16.ko.gz", "crc16", "");
        put(
            d,
            "kernel/mmc/sdhci-iproc.ko",
            "sdhci_iproc",
            "sdhci-pltfm,sdhci",
        );
        put(d, "kernel/mmc/sdhci-pltfm.ko", "sdhci_pltfm", "sdhci");
        put(d, "kernel/mmc/sdhci.ko", "sdhci", "");
        put(d, "kernel/x/loop_a.ko", "loop_a", "loop_b");
        put(d, "kernel/x/loop_b.ko", "loop_b", "loop_a");
        put(d, "kernel/x/needs_ghost.ko", "needs_ghost", "ghost");
        std::fs::write(d.join("modules.order"), "not a module").unwrap();
        t
    }

    fn names(mods: &[Module]) -> Vec<&str> {
        mods.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn dependencies_come_first_and_once() {
        let t = tree();
        let index = ModuleIndex::scan(t.path()).unwrap();
        let mods = index.resolve(&["sdhci-iproc", "ext4", "sdhci"]).unwrap();
        assert_eq!(
            names(&mods),
            [
                "sdhci",
                "sdhci_pltfm",
                "sdhci_iproc",
                "jbd2",
                "mbcache",
                "crc16",
                "ext4"
            ]
        );
    }

    #[test]
    fn compressed_modules_are_stored_uncompressed() {
        let t = tree();
        let mods = ModuleIndex::scan(t.path())
            .unwrap()
            .resolve(&["ext4"])
            .unwrap();
        for m in &mods {
            assert_eq!(
                &m.data[..4],
                b"\x7fELF",
                "{} from {}",
                m.name,
                m.source.display()
            );
        }
        assert!(mods
            .iter()
            .any(|m| m.source.to_string_lossy().ends_with(".ko.xz")));
    }

    #[test]
    fn missing_module_names_the_module_and_who_needs_it() {
        let t = tree();
        let index = ModuleIndex::scan(t.path()).unwrap();
        let err = index.resolve(&["needs_ghost"]).unwrap_err().to_string();
        assert!(
            err.contains("ghost") && err.contains("needs_ghost"),
            "{err}"
        );
        let err = index.resolve(&["nonesuch"]).unwrap_err().to_string();
        assert!(err.contains("nonesuch"), "{err}");
    }

    #[test]
    fn cycles_are_reported_not_looped() {
        let t = tree();
        let err = ModuleIndex::scan(t.path())
            .unwrap()
            .resolve(&["loop_a"])
            .unwrap_err();
        assert!(matches!(err, Error::DependencyCycle { .. }), "{err}");
        assert!(
            err.to_string().contains("loop_a -> loop_b -> loop_a"),
            "{err}"
        );
    }

    #[test]
    fn hyphen_and_underscore_names_are_the_same_module() {
        let t = tree();
        let index = ModuleIndex::scan(t.path()).unwrap();
        assert_eq!(index.path_of("sdhci_iproc"), index.path_of("sdhci-iproc"));
        assert!(index.path_of("sdhci_iproc").is_some());
        assert!(index.path_of("modules").is_none());
    }
}
