//! squashfs images through squashfs-tools (`mksquashfs`, `unsquashfs`), installed by
//! cross/setup.sh.

use std::path::Path;
use std::process::{Command, Output, Stdio};

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

/// Writes `dir` as a snap squashfs at `out`: no fragments, all files owned by root,
/// no xattrs, every time stamp `time` (snapd's `snap pack` options plus fixed times).
pub fn make(dir: &Path, out: &Path, time: u64, compression: Compression) -> Result<(), SnapError> {
    let time = time.to_string();
    let mut cmd = Command::new("mksquashfs");
    cmd.arg(dir).arg(out).args([
        "-noappend",
        "-comp",
        compression.as_arg(),
        "-no-fragments",
        "-no-progress",
        "-quiet",
        "-all-root",
        "-no-xattrs",
        "-mkfs-time",
        &time,
        "-all-time",
        &time,
    ]);
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
