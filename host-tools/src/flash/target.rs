//! The card to write: a block device (or a file, with `--force`) that is not mounted, not
//! the running system's disk, and large enough.

use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::FlashError;

/// The target, checked: what it is and how large.
#[derive(Debug)]
pub struct Target {
    pub(super) path: PathBuf,
    pub(super) block_device: bool,
}

/// Checks `path` as a target for an image of `image_size` bytes: a block device (or
/// anything with `force`), not mounted, not the running system's disk, large enough.
pub fn check_target(path: &Path, image_size: u64, force: bool) -> Result<Target, FlashError> {
    let open_err = |source| FlashError::Open {
        path: path.to_owned(),
        source,
    };
    let meta = match fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound && force => None,
        Err(e) => return Err(open_err(e)),
    };
    let block_device = meta
        .as_ref()
        .is_some_and(|m| m.file_type().is_block_device());
    if !block_device && !force {
        return Err(FlashError::NotABlockDevice(path.to_owned()));
    }
    if let Some(m) = meta.as_ref().filter(|_| block_device) {
        let sys = sys_block_dir(m.rdev()).map_err(open_err)?;
        let root = fs::metadata("/").map_err(open_err)?;
        if let Ok(root_sys) = sys_block_dir(root.dev()) {
            if disk_of(&root_sys) == disk_of(&sys) {
                return Err(FlashError::SystemDisk(path.to_owned()));
            }
        }
        if let Some((what, at)) = mounted_on(&sys).map_err(open_err)? {
            return Err(FlashError::Mounted {
                target: path.to_owned(),
                what,
                at,
            });
        }
        let size = File::open(path)
            .and_then(|mut f| f.seek(SeekFrom::End(0)))
            .map_err(open_err)?;
        if size < image_size {
            return Err(FlashError::TooSmall {
                target: path.to_owned(),
                size,
                needed: image_size,
            });
        }
    }
    Ok(Target {
        path: path.to_owned(),
        block_device,
    })
}

/// `/sys/dev/block/MAJOR:MINOR`, resolved (`/sys/devices/.../sda/sda1`).
fn sys_block_dir(dev: u64) -> io::Result<PathBuf> {
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    fs::canonicalize(format!("/sys/dev/block/{major}:{minor}"))
}

/// The whole disk's sysfs folder: a partition's parent.
fn disk_of(sys: &Path) -> PathBuf {
    if sys.join("partition").exists() {
        sys.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| sys.to_owned())
    } else {
        sys.to_owned()
    }
}

/// The first mount of the device at `sys` or of one of its partitions (sysfs puts a disk's
/// partitions in its folder): (mounted device, mount point).
fn mounted_on(sys: &Path) -> io::Result<Option<(String, String)>> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(devno), Some(at)) = (fields.get(2), fields.get(4)) else {
            continue;
        };
        if devno.starts_with("0:") {
            // Major 0: proc, sysfs, tmpfs and the like, on no block device.
            continue;
        }
        let Ok(mounted) = fs::canonicalize(format!("/sys/dev/block/{devno}")) else {
            continue;
        };
        if mounted.starts_with(sys) {
            let source = fields
                .iter()
                .position(|f| *f == "-")
                .and_then(|i| fields.get(i + 2))
                .unwrap_or(devno);
            return Ok(Some(((*source).to_owned(), (*at).to_owned())));
        }
    }
    Ok(None)
}
