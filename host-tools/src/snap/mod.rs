//! Snaps: squashfs images with a `meta/snap.yaml`, packed reproducibly and read back
//! without root or loop devices.

mod squashfs;
mod yaml;

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use base64::Engine;
use coreforge_snap::{Node, SnapYaml};
use sha3::{Digest, Sha3_384};

pub use squashfs::{Compression, Owners};
pub use yaml::ARCHITECTURES;

/// Where snap.yaml lives inside a snap.
pub const SNAP_YAML: &str = "meta/snap.yaml";

/// What went wrong with a snap; messages name the file and what to change.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum SnapError {
    /// snap.yaml is missing a field or has an invalid one.
    #[error("{origin}: {reason}")]
    BadSnapYaml {
        /// The snap.yaml (or snap) it came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The file is not a squashfs image.
    #[error("{} is not a snap: it is not a squashfs image", .0.display())]
    NotASnap(PathBuf),
    /// A path inside the snap that cannot be read as one file.
    #[error("invalid path {0:?} inside a snap: use a relative path without '..' or wildcards")]
    BadInnerPath(String),
    /// A gadget snap without its gadget.yaml.
    #[error("{}: a gadget snap needs meta/gadget.yaml", .0.display())]
    MissingGadgetYaml(PathBuf),
    /// The output would land inside the directory being packed.
    #[error("cannot write {} inside the snap directory {}: choose an output outside it (-o FILE)", out.display(), dir.display())]
    OutputInsideSource {
        /// The output file.
        out: PathBuf,
        /// The snap directory.
        dir: PathBuf,
    },
    /// SOURCE_DATE_EPOCH is set but not a number.
    #[error("SOURCE_DATE_EPOCH={0:?} is not a number of seconds")]
    BadSourceDateEpoch(String),
    /// mksquashfs/unsquashfs failed or is missing.
    #[error("{what}: {reason}")]
    Tool {
        /// What was being done.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SnapError {
    let path = path.to_path_buf();
    move |source| SnapError::Io {
        action,
        path,
        source,
    }
}

/// The identity of a snap, from its `meta/snap.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapInfo {
    /// The snap name (snapd's naming rule).
    pub name: String,
    /// Its version string.
    pub version: String,
    /// app, gadget, kernel, base, core (snapd's `os`) or snapd.
    #[serde(rename = "type")]
    pub snap_type: String,
    /// Debian architecture names, or `["all"]`.
    pub architectures: Vec<String>,
}

impl SnapInfo {
    /// Whether the snap runs on `arch` (it names it, or is for `all`).
    pub fn supports(&self, arch: &str) -> bool {
        self.architectures.iter().any(|a| a == arch || a == "all")
    }

    /// The architecture part of snapd's file name: the one architecture, `all`, or `multi`.
    pub fn arch_label(&self) -> &str {
        match self.architectures.as_slice() {
            [one] => one,
            _ => "multi",
        }
    }

    /// snapd's default file name: `<name>_<version>_<arch>.snap`.
    pub fn file_name(&self) -> String {
        format!("{}_{}_{}.snap", self.name, self.version, self.arch_label())
    }
}

/// Fails unless `path` starts with the squashfs magic (a clearer error than unsquashfs').
fn check_squashfs(path: &Path) -> Result<(), SnapError> {
    let mut magic = [0u8; 4];
    let mut f = fs::File::open(path).map_err(io_err("open", path))?;
    match f.read_exact(&mut magic) {
        Ok(()) if &magic == b"hsqs" => Ok(()),
        Ok(()) => Err(SnapError::NotASnap(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            Err(SnapError::NotASnap(path.to_path_buf()))
        }
        Err(e) => Err(io_err("read", path)(e)),
    }
}

/// Reads and validates `meta/snap.yaml` from the snap file `path`.
pub fn read_info(path: &Path) -> Result<SnapInfo, SnapError> {
    let bytes = read_file(path, SNAP_YAML).map_err(|e| match e {
        SnapError::Tool { .. } => SnapError::BadSnapYaml {
            origin: path.display().to_string(),
            reason: format!("cannot read {SNAP_YAML}: {e}"),
        },
        other => other,
    })?;
    let origin = format!("{} ({SNAP_YAML})", path.display());
    let (info, apps) = yaml::parse_with_apps(&bytes, &origin)?;
    if !apps.apps.is_empty() {
        let listing = squashfs::list(path)?;
        check_commands(&apps, &origin, &mut |p| {
            listing.get(p).cloned().unwrap_or(Node::Missing)
        })?;
    }
    Ok(info)
}

/// Reads the validated `meta/snap.yaml` of an unpacked snap directory.
pub fn read_dir_info(dir: &Path) -> Result<SnapInfo, SnapError> {
    let path = dir.join(SNAP_YAML);
    let bytes = fs::read(&path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            SnapError::BadSnapYaml {
                origin: dir.display().to_string(),
                reason: format!("no {SNAP_YAML}: a snap directory needs one"),
            }
        } else {
            io_err("read", &path)(e)
        }
    })?;
    let origin = path.display().to_string();
    let (info, apps) = yaml::parse_with_apps(&bytes, &origin)?;
    check_commands(&apps, &origin, &mut |p| node_in_dir(dir, p))?;
    Ok(info)
}

/// What `inner` is in the unpacked snap `dir`, without following a last symlink.
fn node_in_dir(dir: &Path, inner: &str) -> Node {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(inner);
    match fs::symlink_metadata(&path) {
        Err(_) => Node::Missing,
        Ok(m) if m.file_type().is_symlink() => match fs::read_link(&path) {
            Ok(t) => Node::Symlink {
                target: t.to_string_lossy().into_owned(),
            },
            Err(_) => Node::Missing,
        },
        Ok(m) if m.is_dir() => Node::Dir,
        Ok(m) if m.is_file() => Node::File {
            mode: m.permissions().mode() & 0o7777,
        },
        Ok(_) => Node::Other,
    }
}

/// Every app's commands must be executables in the snap (coreforge-snap's check, which
/// names the field at fault).
fn check_commands(
    apps: &SnapYaml,
    origin: &str,
    lookup: &mut dyn FnMut(&str) -> Node,
) -> Result<(), SnapError> {
    coreforge_snap::check_commands(apps, lookup).map_err(|e| SnapError::BadSnapYaml {
        origin: origin.to_owned(),
        reason: e.to_string(),
    })
}

/// Unpacks the whole snap into `dest` (created if missing).
pub fn extract(path: &Path, dest: &Path) -> Result<(), SnapError> {
    check_squashfs(path)?;
    squashfs::unpack(path, dest)
}

/// The contents of the file `inner` (relative, e.g. `meta/gadget.yaml`) inside `snap`.
pub fn read_file(snap: &Path, inner: &str) -> Result<Vec<u8>, SnapError> {
    let clean = inner.trim_start_matches("./");
    let ok = !clean.is_empty()
        && !clean.starts_with('/')
        && !clean.split('/').any(|part| part.is_empty() || part == "..")
        && !clean.contains(['*', '?', '[', ']', '\\']);
    if !ok {
        return Err(SnapError::BadInnerPath(inner.to_owned()));
    }
    check_squashfs(snap)?;
    squashfs::cat(snap, clean)
}

/// `(sha3-384, size)` of the snap file: unpadded base64url of SHA3-384 of the whole
/// file, as snap-revision's `snap-sha3-384`, and its length in bytes.
pub fn digest(path: &Path) -> Result<(String, u64), SnapError> {
    let f = fs::File::open(path).map_err(io_err("open", path))?;
    digest_copy(f, io::sink()).map_err(io_err("read", path))
}

/// `(sha3-384, size)` as [`digest`] gives them, of what is read from `from`, which is
/// also written to `to`: a copy that is checked is the copy that was hashed.
pub fn digest_copy(mut from: impl Read, mut to: impl io::Write) -> io::Result<(String, u64)> {
    let mut hasher = Sha3_384::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        size += n as u64;
    }
    let sum = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hasher.finalize());
    Ok((sum, size))
}

/// The time stamp packed files get: `$SOURCE_DATE_EPOCH`, else 0.
fn source_date_epoch() -> Result<u64, SnapError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v
            .trim()
            .parse()
            .map_err(|_| SnapError::BadSourceDateEpoch(v)),
        _ => Ok(0),
    }
}

/// Packs the snap directory `dir` into `out` (default `./<name>_<version>_<arch>.snap`)
/// and returns the file written. Same directory, same bytes: every time stamp is
/// `$SOURCE_DATE_EPOCH` (else 0); files are owned by root, or for bases as in `dir`
/// (`owners` overrides snapd's rule, [`Owners::for_type`]).
pub fn pack(
    dir: &Path,
    out: Option<&Path>,
    compression: Compression,
    owners: Option<Owners>,
) -> Result<PathBuf, SnapError> {
    let info = read_dir_info(dir)?;
    let owners = owners.unwrap_or_else(|| Owners::for_type(&info.snap_type));
    if info.snap_type == "gadget" && !dir.join("meta/gadget.yaml").is_file() {
        return Err(SnapError::MissingGadgetYaml(dir.to_path_buf()));
    }
    let time = source_date_epoch()?;
    let out = match out {
        Some(o) => o.to_path_buf(),
        None => PathBuf::from(info.file_name()),
    };
    let out_dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let abs_dir = dir.canonicalize().map_err(io_err("open", dir))?;
    let abs_out_dir = out_dir.canonicalize().map_err(io_err("open", &out_dir))?;
    if abs_out_dir.starts_with(&abs_dir) {
        return Err(SnapError::OutputInsideSource {
            out,
            dir: dir.to_path_buf(),
        });
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = out_dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = squashfs::make(dir, &tmp, time, compression, owners)
        .and_then(|()| fs::rename(&tmp, &out).map_err(io_err("write", &out)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn file_names_follow_snapd() {
        let mut info = SnapInfo {
            name: "pi2-kernel".into(),
            version: "6.1".into(),
            snap_type: "kernel".into(),
            architectures: vec!["arm64".into()],
        };
        assert_eq!(info.file_name(), "pi2-kernel_6.1_arm64.snap");
        assert!(info.supports("arm64") && !info.supports("armhf"));
        info.architectures = vec!["arm64".into(), "armhf".into()];
        assert_eq!(info.file_name(), "pi2-kernel_6.1_multi.snap");
        info.architectures = vec!["all".into()];
        assert_eq!(info.file_name(), "pi2-kernel_6.1_all.snap");
        assert!(info.supports("armhf"));
    }

    #[test]
    fn inner_paths_are_checked_before_running_anything() {
        for bad in ["", "/meta/snap.yaml", "../x", "meta/../x", "meta/*", "a//b"] {
            assert!(
                matches!(
                    read_file(Path::new("/nonexistent"), bad),
                    Err(SnapError::BadInnerPath(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn digest_is_sha3_384_base64url() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        fs::write(&f, b"").unwrap();
        let (sum, size) = digest(&f).unwrap();
        assert_eq!(size, 0);
        // SHA3-384 of the empty string.
        let empty = "DGOnW4ReT30BEH2FLkwkhcUaUKqqlPxhmV5xu-6YOirDcTgxJkrbR_tr0eBY1fAE";
        assert_eq!(sum, empty);
        fs::write(&f, b"abc").unwrap();
        assert_eq!(digest(&f).unwrap().1, 3);
        assert_ne!(digest(&f).unwrap().0, empty);
    }

    #[test]
    fn lzo_packs_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("meta")).unwrap();
        fs::write(
            src.join("meta/snap.yaml"),
            "name: kern\nversion: '1'\ntype: kernel\n",
        )
        .unwrap();
        fs::write(src.join("kernel.img"), vec![7u8; 100_000]).unwrap();
        let mut packed = Vec::new();
        for c in [Compression::Xz, Compression::Lzo] {
            let out = dir.path().join(format!("{c:?}.snap"));
            pack(&src, Some(&out), c, None).unwrap();
            let sb = std::process::Command::new("unsquashfs")
                .arg("-s")
                .arg(&out)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&sb.stdout).to_lowercase();
            assert!(
                text.contains(&format!("compression {}", c.as_arg())),
                "{text}"
            );
            assert_eq!(read_file(&out, "kernel.img").unwrap(), vec![7u8; 100_000]);
            packed.push(fs::read(&out).unwrap());
        }
        assert_ne!(packed[0], packed[1]);
    }

    /// snapd's rule: a base keeps its owners and groups (a setgid program stays its group's),
    /// every other type is root's; `--owners` overrides it. Needs root to give a file
    /// another group (CI runs as root; elsewhere it is skipped with a note).
    #[test]
    fn bases_keep_their_owners_and_other_snaps_are_root_owned() {
        if !rustix::process::geteuid().is_root() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs the tests as root"
            );
            eprintln!("skipping outside CI: chown needs root");
            return;
        }
        let listing = |snap_type: &str, owners: Option<Owners>| {
            let dir = tempfile::tempdir().unwrap();
            let src = dir.path().join("src");
            fs::create_dir_all(src.join("meta")).unwrap();
            fs::create_dir_all(src.join("usr/bin")).unwrap();
            fs::write(
                src.join("meta/snap.yaml"),
                format!("name: core\nversion: '1'\ntype: {snap_type}\n"),
            )
            .unwrap();
            let expiry = src.join("usr/bin/expiry");
            fs::write(&expiry, b"#!/bin/sh\n").unwrap();
            std::os::unix::fs::chown(&expiry, Some(0), Some(42)).unwrap();
            fs::set_permissions(&expiry, fs::Permissions::from_mode(0o2755)).unwrap();
            let out = dir.path().join("core.snap");
            pack(&src, Some(&out), Compression::Xz, owners).unwrap();
            let listed = std::process::Command::new("unsquashfs")
                .args(["-lln"])
                .arg(&out)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&listed.stdout).into_owned();
            let line = text
                .lines()
                .find(|l| l.ends_with("/usr/bin/expiry"))
                .unwrap_or_else(|| panic!("no expiry in {text}"))
                .to_string();
            line.split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(listing("os", None), "-rwxr-sr-x 0/42");
        assert_eq!(listing("base", None), "-rwxr-sr-x 0/42");
        assert_eq!(listing("app", None), "-rwxr-sr-x 0/0");
        assert_eq!(listing("os", Some(Owners::Root)), "-rwxr-sr-x 0/0");
        assert_eq!(listing("app", Some(Owners::Keep)), "-rwxr-sr-x 0/42");
    }

    #[test]
    fn pack_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("meta")).unwrap();
        fs::create_dir_all(src.join("boot-assets")).unwrap();
        fs::write(
            src.join("meta/snap.yaml"),
            "name: pi3\nversion: '1'\ntype: gadget\n",
        )
        .unwrap();
        fs::write(src.join("meta/gadget.yaml"), "volumes: {}\n").unwrap();
        fs::write(src.join("boot-assets/config.txt"), "enable_uart=1\n").unwrap();
        let out = dir.path().join("pi3.snap");
        assert_eq!(pack(&src, Some(&out), Compression::Xz, None).unwrap(), out);
        let info = read_info(&out).unwrap();
        assert_eq!(
            (info.name.as_str(), info.snap_type.as_str()),
            ("pi3", "gadget")
        );
        assert_eq!(
            read_file(&out, "meta/gadget.yaml").unwrap(),
            b"volumes: {}\n"
        );
        assert_eq!(
            read_file(&out, "./boot-assets/config.txt").unwrap(),
            b"enable_uart=1\n"
        );
        assert!(matches!(
            read_file(&out, "meta/missing.yaml"),
            Err(SnapError::Tool { .. })
        ));
        let dest = dir.path().join("unpacked");
        extract(&out, &dest).unwrap();
        assert_eq!(
            fs::read(dest.join("boot-assets/config.txt")).unwrap(),
            b"enable_uart=1\n"
        );
        // Extracting again over the same directory works.
        extract(&out, &dest).unwrap();
    }

    #[test]
    fn not_a_snap() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.snap");
        fs::write(&f, b"hs").unwrap();
        assert!(matches!(read_info(&f), Err(SnapError::NotASnap(_))));
        fs::write(&f, b"not a squashfs").unwrap();
        assert!(matches!(read_info(&f), Err(SnapError::NotASnap(_))));
    }
}
