//! ext4 file systems made by e2fsprogs (no root, no loop device): `mke2fs -d`, then
//! `debugfs` pins owners and timestamps so the bytes depend only on the content and
//! `SOURCE_DATE_EPOCH`. Both work on a file of the file system's size in memory (a memfd),
//! whose data is then copied into the image: their own flushes (mke2fs syncs four times,
//! debugfs once) then cost nothing, and do not push the rest of the image to disk while it
//! is being written; the image is flushed once, at the end.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
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

/// Makes the file system described by `spec` and writes its data into `image` (at
/// `path`; large enough already, zeros where the file system goes) at `spec.offset`: owners
/// root, every timestamp the epoch.
pub fn make_ext4(
    image: &File,
    path: &Path,
    spec: &Ext4<'_>,
    scratch: &Path,
) -> Result<(), ImageError> {
    let size = spec.size / BLOCK * BLOCK;
    let made = match Scratch::in_memory(size) {
        Some(made) => made,
        None => Scratch::in_dir(size, scratch)?,
    };
    make_in(made, image, path, spec, scratch)
}

/// [`make_ext4`] with the tools working on `made`.
fn make_in(
    made: Scratch,
    image: &File,
    path: &Path,
    spec: &Ext4<'_>,
    scratch: &Path,
) -> Result<(), ImageError> {
    let blocks = spec.size / BLOCK;
    // nodiscard: the file is fresh zeros already; no need to punch holes in it.
    let extended = format!("root_owner=0:0,hash_seed={},nodiscard", spec.uuid);
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
        .arg(&made.path)
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
    cmd.arg("-w").arg("-f").arg(&script_path).arg(&made.path);
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
    // Only what the tools wrote: the rest is zeros in the image already, and stays a hole.
    let ranges = super::bmap::data_ranges(&made.file, BLOCK).map_err(io_err("read", &made.path))?;
    for (start, end) in ranges {
        super::copy_range(&made.file, start, image, spec.offset + start, end - start)
            .map_err(io_err("write", path))?;
    }
    Ok(())
}

/// The file the tools make the file system in: a memfd (tmpfs: flushing it is free), named
/// to them by its `/proc` path; where there is no memfd or `/proc`, a file in the scratch
/// directory.
struct Scratch {
    file: File,
    path: PathBuf,
}

impl Scratch {
    /// A memfd of `size` bytes, if the system has memfds and `/proc`.
    fn in_memory(size: u64) -> Option<Scratch> {
        let fd =
            rustix::fs::memfd_create("coreforge-ext4", rustix::fs::MemfdFlags::CLOEXEC).ok()?;
        let path = PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ));
        let file = File::from(fd);
        (path.exists() && file.set_len(size).is_ok()).then_some(Scratch { file, path })
    }

    /// A file of `size` bytes in the directory `scratch`.
    fn in_dir(size: u64, scratch: &Path) -> Result<Scratch, ImageError> {
        let path = scratch.join("ext4.img");
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        file.set_len(size).map_err(io_err("resize", &path))?;
        Ok(Scratch { file, path })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// In memory or in a scratch file, the same file system lands at its offset, and the
    /// image stays a hole where the tools wrote nothing.
    #[test]
    fn the_file_system_is_the_same_made_in_memory_or_in_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let content = dir.path().join("content");
        fs::create_dir_all(content.join("etc")).unwrap();
        fs::write(content.join("etc/hostname"), b"pi\n").unwrap();
        let spec = Ext4 {
            structure: "writable",
            offset: 1 << 20,
            size: 16 << 20,
            label: Some("writable"),
            uuid: "c21fbbaa-ab52-4140-a30b-7e9f68b0c0de",
            epoch: 1_700_000_000,
            content: Some(&content),
        };
        let make = |made: Scratch, name: &str| {
            let path = dir.path().join(name);
            let image = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            image.set_len(spec.offset + spec.size).unwrap();
            let scratch = dir.path().join(format!("{name}.scratch"));
            fs::create_dir_all(&scratch).unwrap();
            make_in(made, &image, &path, &spec, &scratch).unwrap();
            let mapped = super::super::bmap::data_ranges(&image, BLOCK).unwrap();
            (fs::read(&path).unwrap(), mapped)
        };
        let memory = Scratch::in_memory(spec.size).expect("no memfd here");
        let (in_memory, mapped) = make(memory, "memory.img");
        let file_scratch = dir.path().join("file-scratch");
        fs::create_dir_all(&file_scratch).unwrap();
        let (in_file, _) = make(
            Scratch::in_dir(spec.size, &file_scratch).unwrap(),
            "file.img",
        );
        assert!(in_memory == in_file, "the two ways differ");
        // The ext4 magic at its place, and little of the 16 MiB mapped.
        let sb = spec.offset as usize + 1024;
        assert_eq!(in_memory[sb + 0x38..sb + 0x3a], [0x53, 0xef]);
        assert!(mapped.iter().all(|(s, _)| *s >= spec.offset), "{mapped:?}");
        let out = Command::new("debugfs")
            .args(["-R", "cat /etc/hostname"])
            .arg(format!(
                "{}?offset={}",
                dir.path().join("memory.img").display(),
                spec.offset
            ))
            .output()
            .unwrap();
        assert_eq!(
            out.stdout,
            b"pi\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes: u64 = mapped.iter().map(|(s, e)| e - s).sum();
        assert!(bytes > 0 && bytes < spec.size / 2, "{bytes} bytes mapped");
    }
}
