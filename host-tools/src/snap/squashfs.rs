//! squashfs images through squashfs-tools (`mksquashfs`, `unsquashfs`), installed by
//! cross/setup.sh.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use coreforge_snap::Node;

use super::SnapError;

/// Runs `cmd`, turning a missing program or a failure into a [`SnapError::Tool`].
fn run(mut cmd: Command, what: &str) -> Result<Output, SnapError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| SnapError::Tool {
            what: what.to_owned(),
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                format!("{program} is not installed: install squashfs-tools (cross/setup.sh does)")
            } else {
                format!("cannot run {program}: {e}")
            },
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(SnapError::Tool {
            what: what.to_owned(),
            reason: format!("{program} failed ({}): {}", out.status, stderr.trim()),
        });
    }
    Ok(out)
}

/// How a snap's squashfs is compressed: snapd accepts these two (`snap pack --compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Compression {
    /// xz: the smallest, and snapd's default.
    #[default]
    Xz,
    /// lzo: larger, but about ten times faster to unpack (kernel snaps, which images unpack).
    Lzo,
}

impl Compression {
    pub(crate) fn as_arg(self) -> &'static str {
        match self {
            Compression::Xz => "xz",
            Compression::Lzo => "lzo",
        }
    }
}

/// Who owns the files of a packed snap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Owners {
    /// Every file root's, no extended attributes: what `snap pack` does for every type but
    /// bases.
    Root,
    /// Owners, groups and extended attributes as in the directory: what `snap pack` does for
    /// bases (`base`, `os`, `core`), whose `/etc/shadow` belongs to group `shadow` and whose
    /// setgid programs to their groups, not to root.
    Keep,
}

impl Owners {
    /// snapd's rule for a snap of type `snap_type`.
    pub fn for_type(snap_type: &str) -> Owners {
        match snap_type {
            "base" | "os" | "core" => Owners::Keep,
            _ => Owners::Root,
        }
    }
}

/// Writes `dir` as a snap squashfs at `out`: no fragments, owners as `owners` says, every
/// time stamp `time` (snapd's `snap pack` options plus fixed times).
pub fn make(
    dir: &Path,
    out: &Path,
    time: u64,
    compression: Compression,
    owners: Owners,
) -> Result<(), SnapError> {
    let time = time.to_string();
    let mut cmd = Command::new("mksquashfs");
    cmd.arg(dir).arg(out).args([
        "-noappend",
        "-comp",
        compression.as_arg(),
        "-no-fragments",
        "-no-progress",
        "-quiet",
    ]);
    if owners == Owners::Root {
        cmd.args(["-all-root", "-no-xattrs"]);
    }
    cmd.args(["-mkfs-time", &time, "-all-time", &time]);
    // mksquashfs refuses SOURCE_DATE_EPOCH together with the explicit times above.
    cmd.env_remove("SOURCE_DATE_EPOCH");
    run(cmd, &format!("cannot pack {}", dir.display())).map(drop)
}

/// The contents of the regular file `inner` (e.g. `meta/snap.yaml`) in `snap`.
pub fn cat(snap: &Path, inner: &str) -> Result<Vec<u8>, SnapError> {
    let mut cmd = Command::new("unsquashfs");
    cmd.arg("-cat").arg(snap).arg(inner);
    run(cmd, &format!("cannot read {inner} from {}", snap.display())).map(|o| o.stdout)
}

/// Unpacks all of `snap` into `dest` (created if missing, existing files overwritten).
pub fn unpack(snap: &Path, dest: &Path) -> Result<(), SnapError> {
    let mut cmd = Command::new("unsquashfs");
    cmd.args(["-f", "-no-xattrs", "-quiet", "-no-progress", "-d"])
        .arg(dest)
        .arg(snap);
    run(
        cmd,
        &format!("cannot extract {} to {}", snap.display(), dest.display()),
    )
    .map(drop)
}

/// Every path in `snap` (relative, `bin/hello`) with what it is, from `unsquashfs -lln`:
/// the inode table only, no file data is read.
pub fn list(snap: &Path) -> Result<BTreeMap<String, Node>, SnapError> {
    let mut cmd = Command::new("unsquashfs");
    cmd.arg("-lln").arg(snap);
    let out = run(cmd, &format!("cannot list {}", snap.display()))?;
    Ok(parse_listing(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `unsquashfs -lln` lines: `MODE OWNER SIZE DATE TIME squashfs-root/PATH[ -> TARGET]`.
fn parse_listing(text: &str) -> BTreeMap<String, Node> {
    const PREFIX: &str = " squashfs-root/";
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(at) = line.find(PREFIX) else {
            continue;
        };
        let perms = line.split(' ').next().unwrap_or_default().as_bytes();
        if perms.len() < 10 {
            continue;
        }
        let mut mode = 0u32;
        for (i, c) in perms[1..10].iter().enumerate() {
            let bit = 1u32 << (8 - i);
            if matches!(c, b'r' | b'w' | b'x' | b's' | b't') {
                mode |= bit;
            }
        }
        let rest = &line[at + PREFIX.len()..];
        let node = match perms[0] {
            b'-' => Node::File { mode },
            b'd' => Node::Dir,
            b'l' => match rest.split_once(" -> ") {
                Some((path, target)) => {
                    out.insert(
                        path.to_owned(),
                        Node::Symlink {
                            target: target.to_owned(),
                        },
                    );
                    continue;
                }
                None => continue,
            },
            _ => Node::Other,
        };
        out.insert(rest.to_owned(), node);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_are_read_with_modes_links_and_spaces() {
        let text = "drwxr-xr-x 0/0                      52 2026-12-02 22:39 squashfs-root\n\
            drwxr-xr-x 0/0                      39 2026-12-02 22:39 squashfs-root/bin\n\
            lrwxrwxrwx 0/0                       5 2026-12-02 22:39 squashfs-root/bin/a b -> hello\n\
            -rwxr-x--x 0/0                      18 2026-12-02 22:39 squashfs-root/bin/hello\n\
            -rwsr-Sr-T 0/0                      18 2026-12-02 22:39 squashfs-root/bin/odd\n\
            crw-r--r-- 0/0                  1,  3 2026-12-02 22:39 squashfs-root/dev/null\n";
        let l = parse_listing(text);
        assert_eq!(l["bin"], Node::Dir);
        assert_eq!(
            l["bin/a b"],
            Node::Symlink {
                target: "hello".into()
            }
        );
        assert_eq!(l["bin/hello"], Node::File { mode: 0o751 });
        assert_eq!(l["bin/odd"], Node::File { mode: 0o744 });
        assert_eq!(l["dev/null"], Node::Other);
        assert_eq!(l.len(), 5);
    }
}
