//! The boards coreforge supports and the facts each one needs.

use crate::{Arch, DiskBus, QemuMachine};

/// Errors from looking boards up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BoardError {
    /// No board has this name for this architecture.
    #[error("no board {name:?} for {arch}; known boards: {known}")]
    UnknownBoard {
        /// The name asked for.
        name: String,
        /// The architecture asked for.
        arch: Arch,
        /// The `name/arch` pairs that do exist, comma separated.
        known: String,
    },
    /// The architecture name is not one coreforge builds for.
    #[error("unknown architecture {0:?}; use arm64 or armhf")]
    UnknownArch(String),
}

/// What kind of device a console is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleKind {
    /// ARM PL011 UART (`ttyAMA*`).
    Pl011,
    /// The BCM283x mini UART (`ttyS1` in the mainline device trees).
    MiniUart,
    /// A virtual terminal on the framebuffer (`tty1`).
    Framebuffer,
}

/// One console the agent talks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Console {
    /// Device name under /dev, as in `console=` (e.g. `ttyAMA0`).
    pub device: &'static str,
    /// What the device is.
    pub kind: ConsoleKind,
    /// Baud rate for UARTs; `None` for the framebuffer.
    pub baud: Option<u32>,
}

/// Everything coreforge knows about one board for one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// The board's name in models and on the command line (`pi3`, `qemu-virt`).
    pub name: &'static str,
    /// The architecture the image is built for.
    pub arch: Arch,
    /// The consoles the agent opens; the kernel's `/dev/console` is the last one.
    pub consoles: &'static [Console],
    /// Kernel command line, without the `console=` entries (see [`Board::cmdline`]).
    pub base_cmdline: &'static str,
    /// The board's device tree, relative to the kernel package's `usr/lib/linux-image-<release>/`;
    /// `None` when the firmware (or QEMU) provides it.
    pub dtb: Option<&'static str>,
    /// Kernel modules the agent loads at boot, by module name, in the order to load them
    /// (their own dependencies are added by the initramfs builder).
    pub modules: &'static [&'static str],
    /// Kernel modules the kernel snap carries for the OS to load on demand (modprobe, udev),
    /// by module name; never loaded by the agent, so not in the initramfs. Their dependencies
    /// (from `.modinfo`) come along too.
    pub os_modules: &'static [&'static str],
    /// How QEMU emulates the board.
    pub qemu: QemuMachine,
    /// The light the agent blinks to show first-boot progress on a device with no screen.
    pub status_led: Option<StatusLed>,
}

/// A light the agent drives to show what it is doing (see agent/src/status.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusLed {
    /// A LED class device, `/sys/class/leds/NAME`; its driver must be in the board's modules.
    Led(&'static str),
    /// A GPIO line on the character device `/dev/CHIP`.
    Gpio {
        /// Device name under /dev, e.g. `gpiochip0`.
        chip: &'static str,
        /// Line offset on that chip.
        line: u32,
    },
}

impl StatusLed {
    /// The initramfs's `/etc/coreforge/status-led` line: `led:NAME` or `gpio:CHIP:LINE`.
    pub fn config_line(&self) -> String {
        match self {
            StatusLed::Led(name) => format!("led:{name}"),
            StatusLed::Gpio { chip, line } => format!("gpio:{chip}:{line}"),
        }
    }
}

/// The Pi 3's green activity LED. Debian's device tree (`/leds/led-act`, label `ACT`) drives
/// it through the firmware's GPIO expander (`raspberrypi,firmware-gpio` line 2, built into
/// Debian's kernel) with the `gpio-leds` driver: module `leds_gpio`, in [`PI_MODULES`].
const PI3_ACT_LED: Option<StatusLed> = Some(StatusLed::Led("ACT"));

/// A real Pi 3's consoles: the HDMI framebuffer and the mini UART on GPIO 14/15 (the
/// PL011 drives Bluetooth there, and its device tree hands it to the Bluetooth driver, so
/// there is no /dev/ttyAMA0 to open). The last one is the kernel's `/dev/console`.
const PI3_CONSOLES: &[Console] = &[
    Console {
        device: "tty1",
        kind: ConsoleKind::Framebuffer,
        baud: None,
    },
    Console {
        device: "ttyS1",
        kind: ConsoleKind::MiniUart,
        baud: Some(115_200),
    },
];

/// QEMU's raspi2b (the armhf stand-in): a Pi 2 has no Bluetooth, its serial console is
/// the PL011, and its device tree leaves the mini UART off.
const PI2_CONSOLES: &[Console] = &[
    Console {
        device: "tty1",
        kind: ConsoleKind::Framebuffer,
        baud: None,
    },
    Console {
        device: "ttyAMA0",
        kind: ConsoleKind::Pl011,
        baud: Some(115_200),
    },
];

/// QEMU virt has a single PL011.
const VIRT_CONSOLES: &[Console] = &[Console {
    device: "ttyAMA0",
    kind: ConsoleKind::Pl011,
    baud: Some(115_200),
}];

// After the block drivers, every board needs the same file systems: the boot FAT partition
// with its code page and I/O charsets (Debian's default iocharset is ascii: vfat refuses to
// mount without nls_ascii), ext4 (with the crc32c it asks for only by alias) for `writable`,
// squashfs for snaps on loop devices, overlay for the root file system.

/// The Pi's boot modules: both SD host drivers (QEMU and board revisions differ in which
/// one the card hangs off), the watchdog (how a Pi reboots and powers off), file systems.
const PI_MODULES: &[&str] = &[
    "sdhci_iproc",
    "bcm2835",
    "bcm2835_wdt",
    "vfat",
    "nls_cp437",
    "nls_ascii",
    "nls_iso8859_1",
    "crc32c_generic",
    "ext4",
    "squashfs",
    "loop",
    "overlay",
    // The ACT LED (PI3_ACT_LED): gpio-leds on the firmware GPIO expander.
    "leds_gpio",
    // Network: every Pi 3 Ethernet hangs off the DWC2 USB host controller. cdc_ether drives
    // QEMU's usb-net (eth0 on raspi3b), smsc95xx the Pi 3 B's LAN9514, lan78xx the B+'s
    // LAN7515; smsc and microchip are their PHYs' drivers (without them phylib falls back to
    // the generic PHY driver). Dependencies (usbcore, usbnet, mii, libphy, ...) follow.
    "dwc2",
    "cdc_ether",
    "smsc95xx",
    "smsc",
    "lan78xx",
    "microchip",
];
/// virt's boot modules: the virtio-mmio transport, its block and network devices, the
/// virtio-gpu framebuffer on PCI (for `tty1` when QEMU adds `virtio-gpu-pci`; without the
/// device they load and wait), file systems.
const VIRT_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_blk",
    "virtio_net",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "drm",
    "drm_kms_helper",
    "drm_shmem_helper",
    "virtio_dma_buf",
    "virtio-gpu",
    // The keyboard for tty1 beside virtio-gpu (QEMU's virtio-keyboard-pci).
    "virtio_input",
    "vfat",
    "nls_cp437",
    "nls_ascii",
    "nls_iso8859_1",
    "crc32c_generic",
    "ext4",
    "squashfs",
    "loop",
    "overlay",
];

/// Wi-Fi in the OS on every board: the crypto WPA2's CCMP (and TKIP, and the management
/// frames' CMAC) asks the kernel for by name, which `.modinfo` does not list, and
/// `mac80211_hwsim`, the kernel's virtual radios, with which the tests bring up an access
/// point and a station without hardware (cfg80211 and mac80211 follow as its dependencies).
const WIFI_MODULES: &[&str] = &["ccm", "ctr", "cmac", "michael_mic", "mac80211_hwsim"];
/// The Pi 3's own radio too: brcmfmac on SDIO (its firmware, Debian's firmware-brcm80211, is
/// not in the snap).
const PI_OS_MODULES: &[&str] = &[
    "ccm",
    "ctr",
    "cmac",
    "michael_mic",
    "mac80211_hwsim",
    "brcmfmac",
];

/// Every board's command line before its consoles. `panic=-1` reboots (or, under QEMU's
/// `-no-reboot`, ends) on a panic. `net.ifnames=0` keeps the kernel's interface names in the
/// OS: console-conf names interfaces as the initramfs sees them (`eth0`, `wlan0`) and writes
/// the OS's network units by those names, which udev would otherwise rename (a Pi 3's
/// Ethernet becomes `end0` under bookworm's systemd), as Ubuntu Core's Pi command line does.
const BASE_CMDLINE: &str = "panic=-1 net.ifnames=0";

/// The whole table; one entry per (board, arch).
const BOARDS: &[Board] = &[
    Board {
        name: "pi3",
        arch: Arch::Arm64,
        consoles: PI3_CONSOLES,
        base_cmdline: BASE_CMDLINE,
        dtb: Some("broadcom/bcm2837-rpi-3-b.dtb"),
        modules: PI_MODULES,
        os_modules: PI_OS_MODULES,
        status_led: PI3_ACT_LED,
        qemu: QemuMachine {
            machine: "raspi3b",
            machine_options: None,
            consoles: PI3_CONSOLES,
            // -serial 0 is the PL011 (Bluetooth on a Pi 3), -serial 1 the mini UART.
            console_port: 1,
            cpu: None,
            memory_mib: None,
            cpus: None,
            dtb: Some("broadcom/bcm2837-rpi-3-b.dtb"),
            disk_bus: DiskBus::Sd,
            disk_size_power_of_two: true,
            uncompressed_kernel: true,
        },
    },
    Board {
        name: "pi3",
        arch: Arch::Armhf,
        consoles: PI3_CONSOLES,
        base_cmdline: BASE_CMDLINE,
        dtb: Some("bcm2837-rpi-3-b.dtb"),
        modules: PI_MODULES,
        os_modules: PI_OS_MODULES,
        status_led: PI3_ACT_LED,
        // The armhf kernel does not boot on QEMU's raspi3b: emulate the Pi 2, same SoC family.
        qemu: QemuMachine {
            machine: "raspi2b",
            machine_options: None,
            consoles: PI2_CONSOLES,
            console_port: 0,
            cpu: None,
            memory_mib: None,
            cpus: None,
            dtb: Some("bcm2836-rpi-2-b.dtb"),
            disk_bus: DiskBus::Sd,
            disk_size_power_of_two: true,
            uncompressed_kernel: false,
        },
    },
    Board {
        name: "qemu-virt",
        arch: Arch::Arm64,
        consoles: VIRT_CONSOLES,
        base_cmdline: BASE_CMDLINE,
        dtb: None,
        modules: VIRT_MODULES,
        os_modules: WIFI_MODULES,
        status_led: None,
        qemu: QemuMachine {
            machine: "virt",
            machine_options: None,
            consoles: VIRT_CONSOLES,
            console_port: 0,
            cpu: Some("cortex-a53"),
            memory_mib: Some(256),
            // Two, like the machines the tests run on: a Pi 3 has four cores, and systemd's
            // boot on one emulated core takes half again as long.
            cpus: Some(2),
            dtb: None,
            disk_bus: DiskBus::VirtioMmio,
            disk_size_power_of_two: false,
            uncompressed_kernel: false,
        },
    },
    Board {
        name: "qemu-virt",
        arch: Arch::Armhf,
        consoles: VIRT_CONSOLES,
        base_cmdline: BASE_CMDLINE,
        dtb: None,
        modules: VIRT_MODULES,
        os_modules: WIFI_MODULES,
        status_led: None,
        qemu: QemuMachine {
            machine: "virt",
            // The 32-bit kernel cannot reach virt's PCIe configuration space above 4 GiB
            // ("can't claim ECAM area"): without it there is no virtio-gpu, no tty1.
            machine_options: Some("highmem=off"),
            consoles: VIRT_CONSOLES,
            console_port: 0,
            cpu: Some("cortex-a15"),
            memory_mib: Some(256),
            // Two, like the machines the tests run on: a Pi 3 has four cores, and systemd's
            // boot on one emulated core takes half again as long.
            cpus: Some(2),
            dtb: None,
            disk_bus: DiskBus::VirtioMmio,
            disk_size_power_of_two: false,
            uncompressed_kernel: false,
        },
    },
];

impl Board {
    /// Every supported (board, arch) pair.
    pub fn all() -> &'static [Board] {
        BOARDS
    }

    /// The board called `name` built for `arch`.
    pub fn by_name(name: &str, arch: Arch) -> Result<&'static Board, BoardError> {
        BOARDS
            .iter()
            .find(|b| b.name == name && b.arch == arch)
            .ok_or_else(|| BoardError::UnknownBoard {
                name: name.to_string(),
                arch,
                known: BOARDS.iter().map(|b| b.id()).collect::<Vec<_>>().join(", "),
            })
    }

    /// `name-arch`, e.g. `pi3-arm64`: unique across the table, handy for file names.
    pub fn id(&self) -> String {
        format!("{}-{}", self.name, self.arch)
    }

    /// The device's kernel command line: the base line, then one `console=` per console.
    pub fn cmdline(&self) -> String {
        cmdline_with(self.base_cmdline, self.consoles)
    }

    /// The kernel command line under QEMU, with the consoles the emulated machine has.
    pub fn qemu_cmdline(&self) -> String {
        cmdline_with(self.base_cmdline, self.qemu.consoles)
    }

    /// The board's device tree as a path inside the kernel package for `release`
    /// (`uname -r`), e.g. `usr/lib/linux-image-6.1.0-50-arm64/broadcom/bcm2837-rpi-3-b.dtb`.
    pub fn dtb_package_path(&self, release: &str) -> Option<String> {
        self.dtb
            .map(|dtb| format!("usr/lib/linux-image-{release}/{dtb}"))
    }

    /// The device holding the boot disk's first partition as the kernel names it.
    pub fn boot_partition_device(&self) -> &'static str {
        match self.qemu.disk_bus {
            DiskBus::Sd => "/dev/mmcblk0p1",
            DiskBus::VirtioMmio => "/dev/vda1",
        }
    }
}

/// `base` followed by `console=` entries; the last console becomes `/dev/console`.
pub(crate) fn cmdline_with(base: &str, consoles: &[Console]) -> String {
    let mut line = String::from(base);
    for console in consoles {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str("console=");
        line.push_str(console.device);
        if let Some(baud) = console.baud {
            line.push_str(&format!(",{baud}"));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_board_is_found_by_name_and_arch() {
        for board in Board::all() {
            assert_eq!(Board::by_name(board.name, board.arch).unwrap(), board);
        }
        assert_eq!(Board::all().len(), 4);
    }

    #[test]
    fn ids_are_unique() {
        let mut ids: Vec<String> = Board::all().iter().map(Board::id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), Board::all().len());
    }

    #[test]
    fn unknown_board_error_lists_the_known_ones() {
        let err = Board::by_name("pi5", Arch::Arm64).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("pi5") && text.contains("pi3-arm64") && text.contains("qemu-virt-armhf"),
            "{text}"
        );
    }

    #[test]
    fn the_last_console_is_the_interactive_serial_port() {
        let last = |line: String| line.rsplit(' ').next().unwrap().to_string();
        let pi64 = Board::by_name("pi3", Arch::Arm64).unwrap();
        assert_eq!(
            pi64.cmdline(),
            "panic=-1 net.ifnames=0 console=tty1 console=ttyS1,115200"
        );
        assert_eq!(pi64.qemu_cmdline(), pi64.cmdline());
        let pi32 = Board::by_name("pi3", Arch::Armhf).unwrap();
        assert_eq!(last(pi32.cmdline()), "console=ttyS1,115200");
        assert_eq!(last(pi32.qemu_cmdline()), "console=ttyAMA0,115200");
        for arch in Arch::ALL {
            let virt = Board::by_name("qemu-virt", arch).unwrap();
            assert_eq!(
                virt.qemu_cmdline(),
                "panic=-1 net.ifnames=0 console=ttyAMA0,115200"
            );
        }
    }

    #[test]
    fn qemu_console_port_points_at_the_uart_of_the_last_console() {
        for board in Board::all() {
            let last = board.qemu.consoles.last().unwrap();
            let want = match (board.qemu.machine, last.kind) {
                // QEMU's Pi machines: -serial 0 is the PL011, -serial 1 the mini UART.
                ("raspi3b" | "raspi2b", ConsoleKind::MiniUart) => 1,
                (_, ConsoleKind::Pl011) => 0,
                other => panic!("{}: unexpected {other:?}", board.id()),
            };
            assert_eq!(board.qemu.console_port, want, "{}", board.id());
        }
    }

    #[test]
    fn pi_boards_load_sd_and_watchdog_modules() {
        for arch in Arch::ALL {
            let pi = Board::by_name("pi3", arch).unwrap();
            for m in [
                "sdhci_iproc",
                "bcm2835",
                "bcm2835_wdt",
                "vfat",
                "nls_ascii",
                "ext4",
            ] {
                assert!(pi.modules.contains(&m), "{} lacks {m}", pi.id());
            }
            assert!(pi.consoles.iter().any(|c| c.kind == ConsoleKind::MiniUart));
            assert!(pi
                .consoles
                .iter()
                .any(|c| c.kind == ConsoleKind::Framebuffer));
        }
    }

    #[test]
    fn pi_boards_load_the_usb_host_and_ethernet_drivers() {
        for arch in Arch::ALL {
            let pi = Board::by_name("pi3", arch).unwrap();
            for m in ["dwc2", "cdc_ether", "smsc95xx", "lan78xx"] {
                assert!(pi.modules.contains(&m), "{} lacks {m}", pi.id());
            }
            let virt = Board::by_name("qemu-virt", arch).unwrap();
            assert!(!virt.modules.contains(&"dwc2"), "{}", virt.id());
        }
    }

    #[test]
    fn virt_boards_load_virtio_and_no_pi_drivers() {
        for arch in Arch::ALL {
            let virt = Board::by_name("qemu-virt", arch).unwrap();
            assert_eq!(&virt.modules[..2], &["virtio_mmio", "virtio_blk"]);
            assert!(!virt.modules.contains(&"bcm2835_wdt"));
            assert_eq!(virt.boot_partition_device(), "/dev/vda1");
        }
    }

    #[test]
    fn pi_boards_blink_the_act_led_and_load_its_driver() {
        for arch in Arch::ALL {
            let pi = Board::by_name("pi3", arch).unwrap();
            assert_eq!(pi.status_led, Some(StatusLed::Led("ACT")));
            assert!(pi.modules.contains(&"leds_gpio"), "{}", pi.id());
            let virt = Board::by_name("qemu-virt", arch).unwrap();
            assert_eq!(virt.status_led, None);
        }
    }

    #[test]
    fn status_led_config_lines() {
        assert_eq!(StatusLed::Led("ACT").config_line(), "led:ACT");
        let gpio = StatusLed::Gpio {
            chip: "gpiochip0",
            line: 17,
        };
        assert_eq!(gpio.config_line(), "gpio:gpiochip0:17");
    }

    #[test]
    fn crc32c_precedes_ext4() {
        for board in Board::all() {
            let pos = |m| board.modules.iter().position(|x| *x == m).unwrap();
            assert!(pos("crc32c_generic") < pos("ext4"), "{}", board.id());
        }
    }

    #[test]
    fn dtb_package_paths_name_the_release_folder() {
        let pi = Board::by_name("pi3", Arch::Armhf).unwrap();
        assert_eq!(
            pi.dtb_package_path("6.1.0-50-armmp").as_deref(),
            Some("usr/lib/linux-image-6.1.0-50-armmp/bcm2837-rpi-3-b.dtb")
        );
        let virt = Board::by_name("qemu-virt", Arch::Arm64).unwrap();
        assert_eq!(virt.dtb_package_path("6.1.0-50-arm64"), None);
    }

    #[test]
    fn device_trees_match_the_arch_package_layout() {
        // arm64 packages put device trees in vendor folders; armhf ones flat.
        let pi64 = Board::by_name("pi3", Arch::Arm64).unwrap();
        assert_eq!(pi64.dtb, Some("broadcom/bcm2837-rpi-3-b.dtb"));
        let pi32 = Board::by_name("pi3", Arch::Armhf).unwrap();
        assert_eq!(pi32.qemu.dtb, Some("bcm2836-rpi-2-b.dtb"));
        assert_eq!(pi32.qemu.machine, "raspi2b");
    }
}
