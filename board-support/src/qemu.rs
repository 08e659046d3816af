//! How QEMU emulates each board, and the command line that boots it.

use std::ffi::OsString;
use std::path::Path;

use crate::{Board, Console, ConsoleKind};

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
    /// Options after the machine's name in `-M` (`virt,highmem=off`), when it needs any.
    pub machine_options: Option<&'static str>,
    /// The consoles the emulated machine has (may differ from the real board's).
    pub consoles: &'static [Console],
    /// Index of the `-serial` port wired to the last (interactive) console.
    pub console_port: usize,
    /// `-cpu` value, when the machine's default cannot run the kernel.
    pub cpu: Option<&'static str>,
    /// `-m` in MiB; `None` keeps the machine's fixed size (the raspi machines have 1 GiB).
    pub memory_mib: Option<u32>,
    /// `-smp` (virtual CPUs); `None` keeps the machine's own (the raspi machines have 4).
    pub cpus: Option<u32>,
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

/// Devices and controls added to a QEMU run beyond the board itself (see
/// [`Board::qemu_args_with`]); the default adds none.
#[derive(Debug, Clone, Copy, Default)]
pub struct QemuExtras<'a> {
    /// A network card on QEMU's user network, with this host port on 127.0.0.1 forwarded to
    /// the guest's SSH port 22 (the guest gets 10.0.2.15 by DHCP; the host is 10.0.2.2).
    pub ssh_port: Option<u16>,
    /// A framebuffer the kernel drives, with `console=tty1` on the kernel command line
    /// (before the serial console, which stays `/dev/console`).
    pub display: bool,
    /// A QEMU monitor on this unix socket, e.g. to take a `screendump`.
    pub monitor: Option<&'a Path>,
}

/// Why QEMU cannot give a board what was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QemuError {
    /// The machine emulates no display the board's kernel can drive.
    #[error("QEMU's {machine} emulates no display the Debian kernel can drive; use the virt machine (virtio-gpu-pci) for a framebuffer (a real Pi 3 gets one from its firmware)")]
    NoDisplay {
        /// The QEMU machine.
        machine: &'static str,
    },
    /// The machine has no network card QEMU can add.
    #[error(
        "QEMU's {machine} has no network card coreforge knows how to add; use the virt machine"
    )]
    NoNetwork {
        /// The QEMU machine.
        machine: &'static str,
    },
}

/// The framebuffer console QEMU's display gives the kernel.
const FRAMEBUFFER: Console = Console {
    device: "tty1",
    kind: ConsoleKind::Framebuffer,
    baud: None,
};

impl QemuMachine {
    /// The `-device` that gives this machine a network card on a `-netdev` called `n0`:
    /// virtio over MMIO on virt (module virtio_net); on the raspi machines a USB network
    /// adapter on the SoC's DWC2 controller (modules dwc2, cdc_ether).
    pub fn nic_device(&self) -> Option<&'static str> {
        match self.machine {
            "virt" => Some("virtio-net-device,netdev=n0"),
            "raspi3b" | "raspi2b" => Some("usb-net,netdev=n0"),
            _ => None,
        }
    }

    /// The `-device` that gives this machine a framebuffer the Debian kernel drives
    /// (virtio-gpu on PCI: modules virtio_pci, virtio-gpu and the DRM helpers).
    pub fn display_device(&self) -> Option<&'static str> {
        match self.machine {
            "virt" => Some("virtio-gpu-pci"),
            _ => None,
        }
    }

    /// The keyboard that goes with [`QemuMachine::display_device`], so that what is typed
    /// into QEMU's window (or sent with the monitor's `sendkey`) reaches tty1 (module
    /// virtio_input).
    pub fn keyboard_device(&self) -> Option<&'static str> {
        match self.machine {
            "virt" => Some("virtio-keyboard-pci"),
            _ => None,
        }
    }
}

impl Board {
    /// The full QEMU command line (without the program name; see [`crate::Arch::qemu_system`]).
    /// No display, no monitor and no NIC; serial ports as [`QemuInputs::serial`] says.
    pub fn qemu_args(&self, inputs: &QemuInputs<'_>) -> Vec<OsString> {
        self.build_qemu_args(inputs, &QemuExtras::default())
    }

    /// [`Board::qemu_args`] plus `extras` (network with an SSH port forward, framebuffer,
    /// monitor socket); refused when the machine cannot have them.
    pub fn qemu_args_with(
        &self,
        inputs: &QemuInputs<'_>,
        extras: &QemuExtras<'_>,
    ) -> Result<Vec<OsString>, QemuError> {
        let machine = self.qemu.machine;
        if extras.display && self.qemu.display_device().is_none() {
            return Err(QemuError::NoDisplay { machine });
        }
        if extras.ssh_port.is_some() && self.qemu.nic_device().is_none() {
            return Err(QemuError::NoNetwork { machine });
        }
        Ok(self.build_qemu_args(inputs, extras))
    }

    fn build_qemu_args(&self, inputs: &QemuInputs<'_>, extras: &QemuExtras<'_>) -> Vec<OsString> {
        let q = &self.qemu;
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |a: &str, b: OsString| {
            args.push(a.into());
            args.push(b);
        };
        match q.machine_options {
            Some(options) => push("-M", format!("{},{options}", q.machine).into()),
            None => push("-M", q.machine.into()),
        }
        if let Some(cpu) = q.cpu {
            push("-cpu", cpu.into());
        }
        if let Some(cpus) = q.cpus {
            push("-smp", cpus.to_string().into());
        }
        if let Some(mib) = q.memory_mib {
            push("-m", format!("{mib}M").into());
        }
        // Headless even with a framebuffer: tests look at it through the monitor's screendump.
        push("-display", "none".into());
        match extras.monitor {
            Some(socket) => push("-monitor", monitor_spec(socket)),
            None => push("-monitor", "none".into()),
        }
        match (extras.ssh_port, q.nic_device()) {
            (Some(port), Some(nic)) => {
                push(
                    "-netdev",
                    format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22").into(),
                );
                push("-device", nic.into());
            }
            _ => push("-nic", "none".into()),
        }
        if extras.display {
            for device in [q.display_device(), q.keyboard_device()]
                .into_iter()
                .flatten()
            {
                push("-device", device.into());
            }
        }
        if let Some(kernel) = inputs.kernel {
            push("-kernel", kernel.into());
        }
        if let Some(dtb) = inputs.dtb {
            push("-dtb", dtb.into());
        }
        if let Some(initrd) = inputs.initrd {
            push("-initrd", initrd.into());
        }
        let mut cmdline = if extras.display && q.display_device().is_some() {
            // tty1 first: the last console= is /dev/console, and that stays the serial port.
            let consoles: Vec<Console> = std::iter::once(FRAMEBUFFER)
                .chain(q.consoles.iter().copied())
                .collect();
            crate::board::cmdline_with(self.base_cmdline, &consoles)
        } else {
            self.qemu_cmdline()
        };
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

/// `-monitor` value for a unix socket QEMU listens on without waiting for a client.
fn monitor_spec(socket: &Path) -> OsString {
    let mut spec = OsString::from("unix:");
    spec.push(socket.as_os_str().to_string_lossy().replace(',', ",,"));
    spec.push(",server=on,wait=off");
    spec
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
    fn virt_extras_add_a_forwarded_nic_a_framebuffer_a_keyboard_and_a_monitor() {
        let board = Board::by_name("qemu-virt", Arch::Arm64).unwrap();
        let extras = QemuExtras {
            ssh_port: Some(2222),
            display: true,
            monitor: Some(Path::new("/t/mon,1.sock")),
        };
        let args: Vec<String> = board
            .qemu_args_with(&inputs(Path::new("/d/disk.img")), &extras)
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert!(values(&args, "-nic").is_empty(), "{args:?}");
        assert_eq!(
            values(&args, "-netdev"),
            ["user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22"]
        );
        assert_eq!(
            values(&args, "-device"),
            [
                "virtio-net-device,netdev=n0",
                "virtio-gpu-pci",
                "virtio-keyboard-pci",
                "virtio-blk-device,drive=boot"
            ]
        );
        assert_eq!(
            values(&args, "-monitor"),
            ["unix:/t/mon,,1.sock,server=on,wait=off"]
        );
        assert_eq!(values(&args, "-display"), ["none"]);
        assert_eq!(values(&args, "-smp"), ["2"]);
        // tty1 before the serial console: the serial port stays /dev/console.
        assert_eq!(
            values(&args, "-append"),
            ["panic=-1 net.ifnames=0 console=tty1 console=ttyAMA0,115200 coreforge.then=poweroff"]
        );
    }

    #[test]
    fn no_extras_are_the_plain_command_line() {
        for board in Board::all() {
            let i = inputs(Path::new("/d/disk.img"));
            let with = board.qemu_args_with(&i, &QemuExtras::default()).unwrap();
            assert_eq!(with, board.qemu_args(&i), "{}", board.id());
        }
    }

    #[test]
    fn raspi_networks_over_usb_and_has_no_display() {
        for arch in Arch::ALL {
            let board = Board::by_name("pi3", arch).unwrap();
            let i = inputs(Path::new("/d/sd.img"));
            let net = QemuExtras {
                ssh_port: Some(2200),
                ..QemuExtras::default()
            };
            let args = board.qemu_args_with(&i, &net).unwrap();
            let args: Vec<String> = args.into_iter().map(|a| a.into_string().unwrap()).collect();
            assert_eq!(values(&args, "-device"), ["usb-net,netdev=n0"]);
            let display = QemuExtras {
                display: true,
                ..QemuExtras::default()
            };
            let err = board.qemu_args_with(&i, &display).unwrap_err();
            assert_eq!(
                err,
                QemuError::NoDisplay {
                    machine: board.qemu.machine
                }
            );
            assert!(err.to_string().contains("virt"), "{err}");
        }
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
