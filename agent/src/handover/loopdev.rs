//! Loop devices: attaching an open file read-only, with the kernel's `LOOP_CONFIGURE` (or
//! `LOOP_SET_FD` and `LOOP_SET_STATUS64` before Linux 5.8).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use log::warn;

/// `struct loop_info64` and `struct loop_config` from <linux/loop.h>.
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}
const LOOP_SET_FD: u32 = 0x4C00;
const LOOP_SET_STATUS64: u32 = 0x4C04;
const LOOP_CONFIGURE: u32 = 0x4C0A;
const LOOP_CTL_GET_FREE: u32 = 0x4C82;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// Attaches the open file `backing` read-only to a free loop device; returns the device
/// node and the open device. The loop device reads through this very file descriptor
/// (LOOP_CONFIGURE, or LOOP_SET_FD on kernels before 5.8): nothing is opened again by path,
/// so what the device shows is what was read (and hashed) through `backing`. `name` is only
/// the label the kernel shows in `backing_file`.
///
/// The device detaches itself at its last close (autoclear): keep it open until it is
/// mounted; unmounting then detaches it.
pub fn attach(backing: &File, name: &str) -> io::Result<(PathBuf, File)> {
    // LOOP_SET_FD makes the device writable when the descriptor is: accept only read-only
    // ones, so the device is read-only on every kernel.
    let mode = rustix::fs::fcntl_getfl(backing)?;
    if mode & rustix::fs::OFlags::RWMODE != rustix::fs::OFlags::RDONLY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name} is open for writing: open it read-only to attach it to a loop device"),
        ));
    }
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number.
    let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let device = PathBuf::from(format!("/dev/loop{n}"));
    let dev = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&device)?;
    let mut info = LoopInfo64 {
        device: 0,
        inode: 0,
        rdevice: 0,
        offset: 0,
        sizelimit: 0,
        number: 0,
        encrypt_type: 0,
        encrypt_key_size: 0,
        flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
        file_name: [0; 64],
        crypt_name: [0; 64],
        encrypt_key: [0; 32],
        init: [0; 2],
    };
    let name = name.as_bytes();
    let len = name.len().min(63);
    info.file_name[..len].copy_from_slice(&name[..len]);
    let config = LoopConfig {
        fd: u32::try_from(backing.as_raw_fd()).map_err(io::Error::other)?,
        block_size: 0,
        info,
        reserved: [0; 8],
    };
    // SAFETY: LOOP_CONFIGURE reads one loop_config, alive for the call.
    let r = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            LOOP_CONFIGURE as _,
            &config as *const LoopConfig,
        )
    };
    if r == 0 {
        return Ok((device, dev));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::ENOTTY) {
        return Err(e);
    }
    // Kernels before 5.8: LOOP_SET_FD (read-only, as the backing file is), then the flags.
    // SAFETY: LOOP_SET_FD takes a file descriptor by value.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_FD as _, backing.as_raw_fd()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: LOOP_SET_STATUS64 reads one loop_info64, alive for the call.
    let r = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            LOOP_SET_STATUS64 as _,
            &config.info as *const LoopInfo64,
        )
    };
    if r != 0 {
        warn!(
            "cannot set the flags of {}: {}",
            device.display(),
            io::Error::last_os_error()
        );
    }
    Ok((device, dev))
}

/// Whether this test process may attach loop devices and mount (root, /dev/loop-control).
/// Without them a test says why and skips, except with `CI` set, where it fails: CI runs as
/// root.
#[cfg(test)]
pub(super) fn can_attach(what: &str) -> bool {
    // /proc/self belongs to the effective user.
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    let able = root && std::path::Path::new("/dev/loop-control").exists();
    assert!(
        able || std::env::var_os("CI").is_none(),
        "{what} needs root and /dev/loop-control"
    );
    if !able {
        eprintln!("skipped: {what} needs root and /dev/loop-control");
    }
    able
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn struct_layouts_match_the_kernel() {
        // sizeof from <linux/loop.h> on 64-bit Linux.
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }

    /// The device reads through the descriptor it was given: with the file's name removed
    /// (nothing left to open by path) the loop device still shows its bytes, and the kernel
    /// reports the backing file as the deleted one the descriptor holds. Needs root and
    /// /dev/loop-control (see [`can_attach`]).
    #[test]
    fn attaches_the_open_file_itself_not_its_path() {
        if !can_attach("attaching a loop device") {
            return;
        }
        let path = std::env::temp_dir().join(format!("cf-loop-{}", std::process::id()));
        let contents: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &contents).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (device, open) = attach(&file, "core_1.snap").unwrap();
        drop(file);
        let mut seen = Vec::new();
        File::open(&device).unwrap().read_to_end(&mut seen).unwrap();
        assert_eq!(seen, contents, "{}", device.display());
        let name = device.file_name().unwrap().to_str().unwrap().to_owned();
        let backing =
            std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).unwrap();
        assert!(
            backing.trim_end().ends_with("(deleted)") && backing.contains("cf-loop-"),
            "{backing}"
        );
        // Read-only, whatever the descriptor allows.
        let ro = std::fs::read_to_string(format!("/sys/block/{name}/ro")).unwrap();
        assert_eq!(ro.trim(), "1");
        drop(open); // autoclear detaches it
    }

    #[test]
    fn refuses_a_file_open_for_writing() {
        let path = std::env::temp_dir().join(format!("cf-loop-rw-{}", std::process::id()));
        let file = File::create(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let err = attach(&file, "core_1.snap").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains("core_1.snap is open for writing"),
            "{err}"
        );
    }
}
