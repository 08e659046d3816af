//! The board table against the pinned Debian kernels: every module, its dependencies and
//! every device tree a board names must exist in the kernel package of its arch.

use anyhow::{ensure, Result};
use coreforge_boards::Board;
use coreforge_initramfs::ModuleIndex;
use coreforge_tests::Kernel;

#[test]
fn every_board_module_and_device_tree_is_in_the_pinned_kernel() -> Result<()> {
    for board in Board::all() {
        let kernel = Kernel::for_arch(board.arch)?;
        let modules = ModuleIndex::scan(&kernel.modules_dir())?.resolve(board.modules)?;
        // The kernel treats `-` and `_` in module names alike (virtio-gpu.ko is virtio_gpu).
        let normal = |name: &str| name.replace('-', "_");
        for wanted in board.modules {
            ensure!(
                modules.iter().any(|m| normal(&m.name) == normal(wanted)),
                "{}: {wanted} not resolved",
                board.id()
            );
        }
        let package_root = kernel.dir.join("root");
        if let Some(path) = board.dtb_package_path(&kernel.release) {
            ensure!(
                package_root.join(&path).is_file(),
                "{}: no {path} in the kernel package",
                board.id()
            );
        }
        if let Some(dtb) = kernel.qemu_dtb_for(board) {
            ensure!(dtb.is_file(), "{}: no {}", board.id(), dtb.display());
        }
        kernel.check_for(board)?;
    }
    Ok(())
}
