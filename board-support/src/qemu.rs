//! How QEMU emulates each board, and the command line that boots it.

use std::ffi::OsString;
use std::path::Path;

use crate::{Board, Console};

/// How the boot disk is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskBus {
    /// An SD card on the SoC's controller (`/dev/mmcblk0`).
    Sd,
    /// A virtio block device on virt's virtio-mmio transports (`/dev/vda`); avoids PCI,
    /// whose default NIC ROM Debian's QEMU may lack.
    VirtioMmio,
}

/// The QEMU machine that stands in for a board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuMachine {
    /// `-M` value.
    pub machine: &'static str,
    /// The consoles the emulated machine has (may differ from the real board's).
    pub consoles: &'static [Console],
    /// Index of the `-serial` port wired to the last (interactive) console.
    pub console_port: usize,
    /// `-cpu` value, when the machine's default cannot run the kernel.
    pub cpu: Option<&'static str>,
    /// `-m` in MiB; `None` keeps the machine's fixed size (the raspi machines have 1 GiB).
    pub memory_mib: Option<u32>,
    /// Device tree to pass with `-dtb`, relative to the kernel's dtb folder;
    /// `None` when QEMU generates one (virt).
    pub dtb: Option<&'static str>,
    /// How the disk is attached.
    pub disk_bus: DiskBus,
    /// QEMU refuses SD images whose size is not a power of two.
    pub disk_size_power_of_two: bool,
    /// The machine loads only an uncompressed arm64 `Image` (raspi3b), not a compressed vmlinuz.
    pub uncompressed_kernel: bool,
}

/// The files and switches for one QEMU run.
#[derive(Debug, Clone, Default)]
pub struct QemuInputs<'a> {
    /// The kernel image.
    pub kernel: Option<&'a Path>,
    /// The device tree, for machines that need one.
    pub dtb: Option<&'a Path>,
    /// The initramfs.
    pub initrd: Option<&'a Path>,
    /// The boot disk image (raw).
    pub disk: Option<&'a Path>,
    /// Words appended to the board's kernel command line (e.g. `coreforge.then=poweroff`).
    pub extra_cmdline: Option<&'a str>,
    /// Where each serial port goes, in order (`-serial` values); empty means `stdio` on the
    /// machine's console port (see [`QemuMachine::console_port`]) and `null` before it.
    pub serial: Vec<String>,
    /// Exit QEMU when the guest reboots instead of restarting it.
    pub no_reboot: bool,
}

impl Board {
    /// The full QEMU command line (without the program name; see [`crate::Arch::qemu_system`]).
    /// No display, no monitor and no NIC; serial ports as [`QemuInputs::serial`] says.
    pub fn qemu_args(&self, inputs: &QemuInputs<'_>) -> Vec<OsString> {
        let q = &self.qemu;
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |a: &str, b: OsString| {
            args.push(a.into());
            args.push(b);
        };
        push("-M", q.machine.into());
        if let Some(cpu) = q.cpu {
            push("-cpu", cpu.into());
        }
        if let Some(mib) = q.memory_mib {
            push("-m", format!("{mib}M").into());
        }
        push("-display", "none".into());
        push("-monitor", "none".into());
        push("-nic", "none".into());
        if let Some(kernel) = inputs.kernel {
            push("-kernel", kernel.into());
        }
        if let Some(dtb) = inputs.dtb {
            push("-dtb", dtb.into());
        }
        if let Some(initrd) = inputs.initrd {
            push("-initrd", initrd.into());
        }
        let mut cmdline = self.qemu_cmdline();
        if let Some(extra) = inputs.extra_cmdline.filter(|e| !e.is_empty()) {
            cmdline.push(' ');
            cmdline.push_str(extra);
        }
        push("-append", cmdline.into());
        if let Some(disk) = inputs.disk {
            match q.disk_bus {
                DiskBus::Sd => push("-drive", drive_spec(disk, "if=sd")),
                DiskBus::VirtioMmio => {
                    push("-drive", drive_spec(disk, "if=none,id=boot"));
                    push("-device", "virtio-blk-device,drive=boot".into());
                }
            }
        }
        let default_serial: Vec<String>;
        let serial = if inputs.serial.is_empty() {
            default_serial = (0..=q.console_port)
                .map(|i| if i == q.console_port { "stdio" } else { "null" }.to_string())
                .collect();
            &default_serial
        } else {
            &inputs.serial
        };
        for port in serial {
            push("-serial", port.into());
        }
        if inputs.no_reboot {
            args.push("-no-reboot".into());
        }
        args
    }
}

/// `-drive` value for a raw image; commas in the path are doubled as QEMU's option syntax wants.
fn drive_spec(disk: &Path, attach: &str) -> OsString {
    let mut spec = OsString::from("file=");
    let path = disk.as_os_str().to_string_lossy().replace(',', ",,");
    spec.push(path);
    spec.push(format!(",format=raw,{attach}"));
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Arch;

    fn args_of(board: &Board, inputs: &QemuInputs<'_>) -> Vec<String> {
        board
            .qemu_args(inputs)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    /// The value following `flag`, for each occurrence.
    fn values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    fn inputs<'a>(disk: &'a Path) -> QemuInputs<'a> {
        QemuInputs {
            kernel: Some(Path::new("/k/Image")),
            dtb: None,
            initrd: Some(Path::new("/k/initrd")),
            disk: Some(disk),
            extra_cmdline: Some("coreforge.then=poweroff"),
            serial: Vec::new(),
            no_reboot: true,
        }
    }

    #[test]
    fn virt_arm64_uses_a53_virtio_mmio_and_no_nic() {
        let board = Board::by_name("qemu-virt", Arch::Arm64).unwrap();
        let args = args_of(board, &inputs(Path::new("/d/disk.img")));
        assert_eq!(values(&args, "-M"), ["virt"]);
        assert_eq!(values(&args, "-cpu"), ["cortex-a53"]);
        assert_eq!(values(&args, "-nic"), ["none"]);
        assert_eq!(
            values(&args, "-drive"),
            ["file=/d/disk.img,format=raw,if=none,id=boot"]
        );
        assert_eq!(values(&args, "-device"), ["virtio-blk-device,drive=boot"]);
        assert_eq!(values(&args, "-serial"), ["stdio"]);
        assert!(args.contains(&"-no-reboot".to_string()));
        assert!(values(&args, "-dtb").is_empty());
    }

    #[test]
    fn virt_armhf_uses_a15() {
        let board = Board::by_name("qemu-virt", Arch::Armhf).unwrap();
        let args = args_of(board, &QemuInputs::default());
        assert_eq!(values(&args, "-cpu"), ["cortex-a15"]);
        assert!(!args.contains(&"-no-reboot".to_string()));
        assert!(values(&args, "-drive").is_empty());
    }

    #[test]
    fn pi_uses_sd_card_the_dtb_and_the_machines_memory() {
        let board = Board::by_name("pi3", Arch::Arm64).unwrap();
        let mut i = inputs(Path::new("/d/sd.img"));
        i.dtb = Some(Path::new("/k/bcm2837-rpi-3-b.dtb"));
        let args = args_of(board, &i);
        // The mini UART is the second port: the first gets nothing.
        assert_eq!(values(&args, "-serial"), ["null", "stdio"]);
        i.serial = vec!["file:/tmp/pl011.log".into(), "stdio".into()];
        let args = args_of(board, &i);
        assert_eq!(values(&args, "-M"), ["raspi3b"]);
        assert_eq!(values(&args, "-drive"), ["file=/d/sd.img,format=raw,if=sd"]);
        assert_eq!(values(&args, "-dtb"), ["/k/bcm2837-rpi-3-b.dtb"]);
        assert_eq!(values(&args, "-serial"), ["file:/tmp/pl011.log", "stdio"]);
        assert!(values(&args, "-m").is_empty() && values(&args, "-cpu").is_empty());
        assert!(board.qemu.disk_size_power_of_two && board.qemu.uncompressed_kernel);
    }

    #[test]
    fn extra_cmdline_is_appended_after_the_consoles() {
        let board = Board::by_name("pi3", Arch::Armhf).unwrap();
        let args = args_of(board, &inputs(Path::new("/d/sd.img")));
        let append = values(&args, "-append")[0];
        assert_eq!(
            append,
            format!("{} coreforge.then=poweroff", board.qemu_cmdline())
        );
        assert_eq!(values(&args, "-M"), ["raspi2b"]);
    }

    #[test]
    fn commas_in_disk_paths_are_escaped() {
        let board = Board::by_name("qemu-virt", Arch::Arm64).unwrap();
        let args = args_of(board, &inputs(Path::new("/d/a,b.img")));
        assert_eq!(
            values(&args, "-drive"),
            ["file=/d/a,,b.img,format=raw,if=none,id=boot"]
        );
    }
}
