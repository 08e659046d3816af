//! QEMU boots of every board with the real Debian kernel and the cross-built agent.
//! Needs `cross/setup.sh` to have run; fails (never skips) otherwise. Each failure
//! prints the whole serial log.

use std::time::Duration;

use anyhow::{ensure, Result};
use coreforge_boards::{Arch, Board};
use coreforge_tests::{header_value, test_model, Boot, InitKind, Qemu};

/// Boots run two at a time on small CI machines; the Pi machines emulate four cores.
fn boot_timeout(board: &Board) -> Duration {
    match board.qemu.machine {
        "virt" => Duration::from_secs(90),
        _ => Duration::from_secs(150),
    }
}

const PROMPT: &str = "Press r to reboot, p to power off, Enter to retry";
/// The agent's error when no disk has its boot partition.
const NO_DISK: &str = "no FAT partition labelled system-boot found";
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

fn board(name: &str, arch: Arch) -> &'static Board {
    Board::by_name(name, arch).expect("board table")
}

fn model_line() -> Result<String> {
    let model = test_model()?;
    let brand = header_value(&model, "brand-id").unwrap_or_default();
    let name = header_value(&model, "model").unwrap_or_default();
    Ok(format!("model: brand={brand} model={name}"))
}

/// Starts `board` with the agent and the model disk, and checks every report line up to
/// the prompt (or up to the model line when the command line says not to wait).
fn boot_to_report(
    name: &str,
    board: &'static Board,
    extra_cmdline: &str,
    no_reboot: bool,
) -> Result<Qemu> {
    let mut boot = Boot::new(name, board, InitKind::Agent).with_model_disk()?;
    boot.extra_cmdline = extra_cmdline.to_string();
    boot.no_reboot = no_reboot;
    let qemu = boot.start()?;
    let timeout = boot_timeout(board);
    let starting = format!("coreforge-agent {} starting", env!("CARGO_PKG_VERSION"));
    qemu.wait_for(&starting, timeout)?;
    let model = model_line()?;
    qemu.wait_for(&model, timeout)?;
    // The disk's model-etc chains the model to the testrootorg root in the initramfs.
    let verified = model.replacen("model: ", "model verified: ", 1);
    qemu.wait_for(&verified, timeout)?;
    let log = qemu.transcript();
    // Module loads are detail: in the kernel log, and on the console only with
    // coreforge.debug. Without it, each agent line appears once (the kernel does not echo
    // the agent's kmsg records).
    let debug = extra_cmdline.contains("coreforge.debug");
    for module in &qemu.modules {
        let line = format!("debug: loaded module {module}");
        if debug {
            ensure!(log.contains(&line), qemu.failure(&format!("no {line:?}")));
        } else {
            let any = format!("loaded module {module}");
            ensure!(
                !log.contains(&any),
                qemu.failure(&format!("{any:?} on the console without coreforge.debug"))
            );
        }
    }
    ensure!(
        qemu.modules.iter().any(|m| m == "vfat"),
        "initramfs lacks vfat: {:?}",
        qemu.modules
    );
    let partition = format!(
        "boot partition: {} (system-boot)",
        board.boot_partition_device()
    );
    ensure!(
        log.contains(&partition),
        qemu.failure(&format!("no {partition:?}"))
    );
    // Each line once: the partition line was followed by more of the agent's lines (the
    // model's), so its kernel echo, which comes first, would be in the log by now.
    if !debug {
        let times = log.matches(&partition).count();
        ensure!(
            times == 1,
            qemu.failure(&format!("{partition:?} appears {times} times"))
        );
    }
    let order = [log.find(&starting), log.find(&partition), log.find(&model)];
    ensure!(
        order.windows(2).all(|w| w[0] < w[1]),
        qemu.failure("report lines out of order")
    );
    if !extra_cmdline.contains("coreforge.then=") {
        qemu.wait_for(PROMPT, timeout)?;
        ensure!(
            qemu.transcript().contains("memory: peak "),
            qemu.failure("no \"memory: peak\" line")
        );
    }
    Ok(qemu)
}

/// Types `p` at the prompt and expects QEMU to exit cleanly (guest power-off).
fn power_off_by_typing(mut qemu: Qemu, expected_errors: &[&str]) -> Result<()> {
    qemu.type_until("p\r", EXIT_TIMEOUT, Qemu::has_exited)?;
    qemu.wait_power_off(EXIT_TIMEOUT)?;
    qemu.no_unexpected_errors(expected_errors)
}

/// Types `r` at the prompt and expects the agent to start a second time.
fn reboot_by_typing(qemu: &mut Qemu, timeout: Duration) -> Result<()> {
    let starting = format!("coreforge-agent {} starting", env!("CARGO_PKG_VERSION"));
    qemu.type_until("r\r", timeout, |q| {
        q.transcript().matches(&starting).count() >= 2
    })?;
    qemu.no_unexpected_errors(&[])
}

#[test]
fn qemu_virt_arm64_boots_to_the_model_and_powers_off_on_p() -> Result<()> {
    let qemu = boot_to_report("virt-arm64-p", board("qemu-virt", Arch::Arm64), "", false)?;
    power_off_by_typing(qemu, &[])
}

#[test]
fn qemu_virt_armhf_boots_to_the_model_and_powers_off_on_p() -> Result<()> {
    let qemu = boot_to_report(
        "virt-armhf-p",
        board("qemu-virt", Arch::Armhf),
        "coreforge.debug",
        false,
    )?;
    power_off_by_typing(qemu, &[])
}

#[test]
fn qemu_virt_arm64_reboots_on_r() -> Result<()> {
    let mut qemu = boot_to_report("virt-arm64-r", board("qemu-virt", Arch::Arm64), "", false)?;
    reboot_by_typing(&mut qemu, Duration::from_secs(90))
}

#[test]
fn pi3_arm64_boots_on_raspi3b_with_the_mini_uart_console_and_reboots_on_r_by_watchdog() -> Result<()>
{
    let pi = board("pi3", Arch::Arm64);
    let mut qemu = boot_to_report("pi3-arm64-r", pi, "", false)?;
    ensure!(
        qemu.modules.iter().any(|m| m == "bcm2835_wdt"),
        "no watchdog module: {:?}",
        qemu.modules
    );
    reboot_by_typing(&mut qemu, boot_timeout(pi))
}

#[test]
fn pi3_armhf_boots_on_raspi2b_and_powers_off_unattended() -> Result<()> {
    // coreforge.then=poweroff: no person at the console; the Pi powers off through its
    // watchdog's halt partition, which QEMU 10's raspi machines treat as a guest shutdown.
    // -no-reboot turns a reset (a panic with panic=-1, the watchdog firing) into an exit
    // too, so wait_power_off tells them apart by the kernel's and QEMU's lines.
    let mut qemu = boot_to_report(
        "pi3-armhf-then",
        board("pi3", Arch::Armhf),
        "coreforge.then=poweroff",
        true,
    )?;
    qemu.wait_power_off(EXIT_TIMEOUT)?;
    qemu.no_unexpected_errors(&[])
}

#[test]
fn qemu_virt_arm64_without_a_boot_disk_reports_an_error_and_still_prompts() -> Result<()> {
    let virt = board("qemu-virt", Arch::Arm64);
    let qemu = Boot::new("virt-arm64-nodisk", virt, InitKind::Agent).start()?;
    qemu.wait_for(&format!("error: {NO_DISK}"), boot_timeout(virt))?;
    qemu.wait_for(PROMPT, boot_timeout(virt))?;
    let log = qemu.transcript();
    ensure!(
        !log.contains("boot partition: "),
        qemu.failure("found a boot partition on a machine with no disk")
    );
    power_off_by_typing(qemu, &[NO_DISK])
}

#[test]
fn trivial_init_boots_on_qemu_virt_arm64() -> Result<()> {
    let virt = board("qemu-virt", Arch::Arm64);
    let mut qemu = Boot::new("virt-arm64-trivial", virt, InitKind::Trivial).start()?;
    qemu.wait_for("trivial-init: first line", boot_timeout(virt))?;
    qemu.wait_power_off(EXIT_TIMEOUT)
}
