//! ext4 file systems written straight into the image file by e2fsprogs: `mke2fs -d` at an
//! offset (no root, no loop device), then `debugfs` pins owners and timestamps so the bytes
//! depend only on the content and `SOURCE_DATE_EPOCH`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{io_err, ImageError};

/// The ext4 block size: fixed, so that the host's mke2fs.conf "small" profile does not
/// change the result.
pub const BLOCK: u64 = 4096;

/// What to make.
#[derive(Debug, Clone, Copy)]
pub struct Ext4<'a> {
    /// Structure name for messages.
    pub structure: &'a str,
    /// Byte offset of the file system in the image.
    pub offset: u64,
    /// Bytes available (rounded down to whole blocks).
    pub size: u64,
    /// Volume label.
    pub label: Option<&'a str>,
    /// File system UUID, also used as the directory hash seed.
    pub uuid: &'a str,
    /// Every timestamp in the file system.
    pub epoch: u64,
    /// The tree to copy in.
    pub content: Option<&'a Path>,
}

/// Makes the file system described by `spec` inside `image` (which must already be large
/// enough) and resets owners to root and every timestamp to the epoch.
pub fn make_ext4(image: &Path, spec: &Ext4<'_>, scratch: &Path) -> Result<(), ImageError> {
    let blocks = spec.size / BLOCK;
    // nodiscard: the region is fresh zeros already; no need to punch holes in the image file.
    let extended = format!(
        "offset={},root_owner=0:0,hash_seed={},nodiscard",
        spec.offset, spec.uuid
    );
    let mut cmd = Command::new("mke2fs");
    cmd.args(["-q", "-F", "-t", "ext4", "-b"])
        .arg(BLOCK.to_string())
        .args(["-I", "256", "-U", spec.uuid]);
    if let Some(label) = spec.label {
        cmd.args(["-L", label]);
    }
    if let Some(dir) = spec.content {
        cmd.arg("-d").arg(dir);
    }
    cmd.arg("-E")
        .arg(&extended)
        .arg(image)
        .arg(blocks.to_string());
    run(cmd, "mke2fs", spec)?;

    // mke2fs -d copies owners and atime/mtime/ctime from the source tree (ctime cannot be
    // set on the host at all); rewrite them so only content and epoch matter.
    let mut script = String::new();
    let mut paths = vec!["/".to_string(), "/lost+found".to_string()];
    if let Some(dir) = spec.content {
        collect_paths(dir, "", &mut paths)?;
    }
    for path in &paths {
        if path.contains(['"', '\n', '\\']) {
            return Err(ImageError::BadContent {
                structure: spec.structure.into(),
                problem: format!("{path:?}: names with quotes, backslashes or newlines are not supported in ext4 content"),
            });
        }
        for (field, value) in [
            ("uid", "0".to_string()),
            ("gid", "0".to_string()),
            ("atime", format!("@{}", spec.epoch)),
            ("mtime", format!("@{}", spec.epoch)),
            ("ctime", format!("@{}", spec.epoch)),
            ("crtime", format!("@{}", spec.epoch)),
        ] {
            let _ = writeln!(script, "sif \"{path}\" {field} {value}");
        }
    }
    let script_path = scratch.join("debugfs.cmds");
    fs::write(&script_path, script).map_err(io_err("write", &script_path))?;
    let mut cmd = Command::new("debugfs");
    cmd.arg("-w").arg("-f").arg(&script_path).arg(format!(
        "{}?offset={}",
        image.display(),
        spec.offset
    ));
    let out = run(cmd, "debugfs", spec)?;
    // debugfs reports failed commands on stderr but still exits 0.
    let complaints: Vec<&str> = out
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("debugfs "))
        .collect();
    if !complaints.is_empty() {
        return Err(ImageError::ToolFailed {
            tool: "debugfs",
            structure: spec.structure.into(),
            status: "exit status 0".into(),
            stderr: complaints.join("\n"),
        });
    }
    Ok(())
}

/// Runs a tool with the fake time set; returns its stderr.
fn run(mut cmd: Command, tool: &'static str, spec: &Ext4<'_>) -> Result<String, ImageError> {
    // e2fsprogs' own "now" (superblock times, lost+found, the journal); 0 would mean unset.
    cmd.env("E2FSPROGS_FAKE_TIME", spec.epoch.max(1).to_string())
        .env_remove("MKE2FS_SYNC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = cmd.output().map_err(|source| ImageError::ToolMissing {
        tool,
        package: "e2fsprogs",
        source,
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        return Err(ImageError::ToolFailed {
            tool,
            structure: spec.structure.into(),
            status: out.status.to_string(),
            stderr: format!("{stdout}{stderr}").trim().to_string(),
        });
    }
    Ok(stderr)
}

/// Every path under `dir` as the file system will name it (`/a`, `/a/b`), sorted.
fn collect_paths(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), ImageError> {
    let mut entries = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err("read directory", dir))? {
        entries.push(e.map_err(io_err("read directory", dir))?);
    }
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = format!("{prefix}/{name}");
        out.push(path.clone());
        // Do not descend through symlinks: mke2fs stores them as links.
        let ty = e.file_type().map_err(io_err("read", e.path()))?;
        if ty.is_dir() {
            collect_paths(&e.path(), &path, out)?;
        }
    }
    Ok(())
}
