//! The gadget and kernel snaps, unpacked once per content: `unsquashfs` of a kernel snap
//! (xz, thousands of module files) is the slowest step of a build, and the same snaps go into
//! build after build. Trees are cached under `CACHE/unpacked/<snap-sha3-384>/` and only read
//! afterwards; a tree appears there by a rename once complete, so a build that is cut off, or
//! two that race, never leave half a tree under a digest's name. The eight most recently used
//! trees are kept.
//!
//! The digest naming a store snap is the one the store recorded at upload. It names the
//! content, it does not prove it: the seed's copy of the same file is hashed again and checked
//! against the store's assertions, so a file that no longer matches fails the build.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

use super::resolve::SeedSnap;
use crate::snap;

/// How many unpacked trees the cache keeps.
pub(super) const KEEP: usize = 8;

/// Where build-image caches: `$COREFORGE_CACHE`, else `$XDG_CACHE_HOME/coreforge`, else
/// `~/.cache/coreforge`; `None` when none is set (then every build unpacks afresh).
pub(super) fn cache_dir() -> Option<PathBuf> {
    cache_dir_from(|name| std::env::var_os(name))
}

fn cache_dir_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    var("COREFORGE_CACHE")
        .map(PathBuf::from)
        .or_else(|| var("XDG_CACHE_HOME").map(|d| Path::new(&d).join("coreforge")))
        .or_else(|| var("HOME").map(|h| Path::new(&h).join(".cache/coreforge")))
}

/// The unpacked tree of `snap`: from the cache under `cache` when there is one, else
/// unpacked into `scratch` (which is replaced).
pub(super) fn unpacked(snap: &SeedSnap, cache: Option<&Path>, scratch: &Path) -> Result<PathBuf> {
    let Some(cache) = cache else {
        if scratch.exists() {
            fs::remove_dir_all(scratch)
                .with_context(|| format!("cannot clean {}", scratch.display()))?;
        }
        snap::extract(&snap.path, scratch)?;
        return Ok(scratch.to_path_buf());
    };
    let digest = match &snap.resolved {
        Some(r) => r.sha3_384.clone(),
        None => snap::digest(&snap.path)?.0,
    };
    let root = cache.join("unpacked");
    let dir = root.join(&digest);
    if dir.is_dir() {
        touch(&dir);
        return Ok(dir);
    }
    fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{digest}."))
        .tempdir_in(&root)
        .with_context(|| format!("cannot create a temporary directory in {}", root.display()))?;
    let tree = tmp.path().join("tree");
    snap::extract(&snap.path, &tree)?;
    match fs::rename(&tree, &dir) {
        Ok(()) => {}
        // Another build finished the same tree first: use theirs.
        Err(_) if dir.is_dir() => {}
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot move the unpacked {} into {}",
                    snap.name,
                    dir.display()
                )
            })
        }
    }
    prune(&root, Some(&dir), KEEP);
    Ok(dir)
}

/// Marks `dir` (or a file) as just used (its modification time), for [`prune`].
pub(super) fn touch(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Removes all but the `count` most recently used entries of the cache folder `root` (never
/// `keep`), and leftovers (`.`-names) of builds that were cut off more than a day ago.
/// Failures are ignored: the cache only saves time.
pub(super) fn prune(root: &Path, keep: Option<&Path>, count: usize) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let mut trees = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let modified = e
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            let stale = modified
                .elapsed()
                .is_ok_and(|age| age.as_secs() > 24 * 3600);
            if stale {
                let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
            }
        } else if Some(path.as_path()) != keep {
            trees.push((modified, path));
        }
    }
    trees.sort_by_key(|t| std::cmp::Reverse(t.0));
    let kept = if keep.is_some() {
        count.saturating_sub(1)
    } else {
        count
    };
    for (_, path) in trees.into_iter().skip(kept) {
        let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_most_recently_used_trees_are_kept() {
        let root = tempfile::tempdir().unwrap();
        let mut dirs = Vec::new();
        for i in 0..KEEP + 3 {
            let d = root.path().join(format!("digest{i:02}"));
            fs::create_dir(&d).unwrap();
            fs::write(d.join("f"), b"x").unwrap();
            let when = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i as u64);
            fs::File::open(&d).unwrap().set_modified(when).unwrap();
            dirs.push(d);
        }
        // The oldest is the one in use: it stays whatever its age.
        prune(root.path(), Some(&dirs[0]), KEEP);
        let left: Vec<bool> = dirs.iter().map(|d| d.is_dir()).collect();
        assert!(left[0]);
        assert_eq!(left.iter().filter(|l| **l).count(), KEEP);
        // The newest KEEP - 1 others stay, the older ones went.
        assert!(left[dirs.len() - (KEEP - 1)..].iter().all(|l| *l));
        assert!(!left[1..dirs.len() - (KEEP - 1)].iter().any(|l| *l));
    }

    #[test]
    fn files_are_pruned_too() {
        let root = tempfile::tempdir().unwrap();
        for i in 0..KEEP + 2 {
            let f = root.path().join(format!("part{i:02}.zstd"));
            fs::write(&f, b"x").unwrap();
            let when = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i as u64);
            fs::File::options()
                .write(true)
                .open(&f)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        prune(root.path(), None, KEEP);
        let mut left: Vec<String> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left.len(), KEEP);
        assert_eq!(left[0], "part02.zstd", "the two oldest went");
    }

    #[test]
    fn the_cache_follows_the_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        const ALL: &[(&str, &str)] = &[
            ("COREFORGE_CACHE", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(cache_dir_from(env(ALL)), Some(PathBuf::from("/c")));
        assert_eq!(
            cache_dir_from(env(&ALL[1..])),
            Some(PathBuf::from("/x/coreforge"))
        );
        assert_eq!(
            cache_dir_from(env(&ALL[2..])),
            Some(PathBuf::from("/h/.cache/coreforge"))
        );
        assert_eq!(cache_dir_from(env(&[("COREFORGE_CACHE", "")])), None);
    }
}
