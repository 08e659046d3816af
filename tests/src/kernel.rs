//! The Debian kernels unpacked by `cross/fetch-kernels.sh`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use coreforge_boards::{Arch, Board};

/// One architecture's unpacked kernel package.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// `<cache>/kernels/<arch>`.
    pub dir: PathBuf,
    /// The architecture.
    pub arch: Arch,
    /// `uname -r` of the kernel.
    pub release: String,
}

impl Kernel {
    /// The fetched kernel for `arch`; an error telling to run `cross/setup.sh` if it is missing.
    pub fn for_arch(arch: Arch) -> anyhow::Result<Kernel> {
        let dir = crate::cache_dir().join("kernels").join(arch.debian_name());
        if !dir.join(".stamp").is_file() {
            bail!(
                "no {arch} kernel in {}: run cross/setup.sh (or cross/fetch-kernels.sh) first",
                dir.display()
            );
        }
        let release = std::fs::read_to_string(dir.join("release"))
            .with_context(|| {
                format!(
                    "reading {}/release; rerun cross/fetch-kernels.sh",
                    dir.display()
                )
            })?
            .trim()
            .to_string();
        Ok(Kernel { dir, arch, release })
    }

    /// The kernel image QEMU boots for `board`: the uncompressed `Image` on arm64
    /// (raspi3b needs it; virt takes either), the zImage on armhf.
    pub fn image_for(&self, board: &Board) -> PathBuf {
        if board.qemu.uncompressed_kernel || self.arch == Arch::Arm64 {
            self.dir.join("Image")
        } else {
            self.dir.join("vmlinuz")
        }
    }

    /// The device tree QEMU needs for `board`, if any.
    pub fn qemu_dtb_for(&self, board: &Board) -> Option<PathBuf> {
        board.qemu.dtb.map(|rel| self.dir.join("dtbs").join(rel))
    }

    /// `lib/modules/<release>/`.
    pub fn modules_dir(&self) -> PathBuf {
        self.dir.join("modules")
    }

    /// Checks that the files a boot of `board` reads exist.
    pub fn check_for(&self, board: &Board) -> anyhow::Result<()> {
        let mut needed = vec![self.image_for(board), self.modules_dir()];
        needed.extend(self.qemu_dtb_for(board));
        for path in needed {
            if !Path::new(&path).exists() {
                bail!(
                    "{} is missing: rerun cross/fetch-kernels.sh",
                    path.display()
                );
            }
        }
        Ok(())
    }
}
