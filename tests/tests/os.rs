//! The OS a device hands over to, end to end: an image of the Debian base (`core` built from
//! bookworm packages by board-support/snaps/build.sh) with an extra snap of the brand's own,
//! configured at first boot by a preseed file with nobody at the console, then used as the
//! seed's walk-through says: `ssh <account>@<address>` with no password, `sudo` without one,
//! `sudo passwd <account>` and a login with that password on the serial console and on tty1
//! (the prompt read by OCR, the password typed on the keyboard), no `ubuntu` user, the
//! snap's app at `/snap/bin`, its daemon running, `snap list`; then a reboot, which asks
//! nothing and starts the daemon again.
//!
//! Needs `cross/setup.sh` (kernels, cross toolchain, QEMU, mmdebstrap and qemu-user-static for
//! the base, openssh-client) and root for the base's build; fails, never skips, without
//! them. Each failure prints the device's whole serial log.

use std::time::Duration;

use anyhow::{ensure, Result};
use coreforge_boards::{Arch, Board};
use coreforge_tests::flows::{power_off_over_ssh, preseeded_os_image, t};
use coreforge_tests::image::{os_world, os_world_armhf, World};
use coreforge_tests::serial::{free_port, Device, DeviceOptions};
use coreforge_tests::ssh::{host_fingerprints, ssh_run, SshKey};

/// The account the preseed file creates.
const USER: &str = "zops";
/// The password `sudo passwd` gives it.
const PASSWORD: &str = "Correct-Horse-7";
/// From power on (or a reboot) to a working SSH login on the Debian base under TCG.
const LOGIN: Duration = Duration::from_secs(420);
/// One step on the console.
const STEP: Duration = Duration::from_secs(60);

fn virt(arch: Arch) -> &'static Board {
    Board::by_name("qemu-virt", arch).unwrap()
}

/// Runs `command` as [`USER`] over SSH (retrying while the OS boots); its stdout.
fn ssh(dev: &Device, key: &SshKey, port: u16, command: &str) -> Result<String> {
    ssh_run(key, port, USER, command, LOGIN).map_err(|e| dev.failure(&format!("{e:#}")))
}

fn expect_lines(dev: &Device, out: &str, wants: &[String], what: &str) -> Result<()> {
    for want in wants {
        ensure!(
            out.lines().any(|l| l.trim_end() == want),
            dev.failure(&format!("{what}: no line {want:?} in:\n{out}"))
        );
    }
    Ok(())
}

/// The seed's tip for a local login: `sudo passwd <account>` (over SSH) sets [`PASSWORD`].
fn set_password(dev: &Device, key: &SshKey, port: u16) -> Result<()> {
    ssh(
        dev,
        key,
        port,
        &format!("printf '%s\\n%s\\n' '{PASSWORD}' '{PASSWORD}' | sudo passwd {USER}"),
    )?;
    Ok(())
}

/// Logs in on the serial console with the password, and checks the shell answers as
/// [`USER`].
fn serial_login(dev: &mut Device) -> Result<()> {
    dev.send_line("")?;
    dev.expect("login:", STEP)?;
    dev.send_line(USER)?;
    dev.expect("Password:", STEP)?;
    dev.send_line(PASSWORD)?;
    dev.send_until(
        b"echo logged-in-as-$(id -un)-$((40+2))\r",
        &format!("logged-in-as-{USER}-42"),
        Duration::from_secs(5),
        STEP,
    )?;
    dev.send_line("exit")?;
    Ok(())
}

/// tty1 after the hand-over, read off the screen: the OS's login prompt under
/// `/etc/issue`'s line with the device's address; then the password typed on the keyboard
/// logs in there (`who` lists [`USER`] on tty1).
fn tty1_login(dev: &Device, key: &SshKey, port: u16, name: &str) -> Result<()> {
    dev.read_screen(
        &format!("{name}-tty1-login"),
        |text| text.contains("This device: 10.0.2.15") && text.contains("coreforge login:"),
        STEP,
    )?;
    dev.type_text(&format!("{USER}\n"))?;
    std::thread::sleep(Duration::from_secs(3));
    dev.type_text(&format!("{PASSWORD}\n"))?;
    let out = ssh(
        dev,
        key,
        port,
        "for i in $(seq 60); do who | grep -q ' tty1 ' && break; sleep 1; done; who",
    )?;
    if !out
        .lines()
        .any(|l| l.starts_with(&format!("{USER} ")) && l.contains(" tty1 "))
    {
        let text = dev.read_screen(&format!("{name}-tty1-after"), |_| true, STEP)?;
        return Err(dev.failure(&format!(
            "the password typed on tty1 did not log {USER} in; who:\n{out}\nthe screen:\n{text}"
        )));
    }
    Ok(())
}

#[test]
fn debian_base_on_virt_arm64_runs_ssh_sudo_snaps_and_a_serial_login() -> Result<()> {
    walkthrough(os_world()?, "os-virt", Arch::Arm64)
}

/// The seed's own pi3 model is armhf: the same on QEMU virt with the armhf kernel and base.
#[test]
fn debian_base_on_virt_armhf_runs_ssh_sudo_snaps_and_a_serial_login() -> Result<()> {
    walkthrough(os_world_armhf()?, "os-virt-armhf", Arch::Armhf)
}

/// A Pi 3 with the arm64 base on QEMU's raspi3b: the serial login on the mini UART.
#[test]
fn debian_base_on_raspi3b_logs_in_on_the_serial_console() -> Result<()> {
    pi_login(os_world()?, "os-raspi3b", Arch::Arm64)
}

/// The seed's pi3 model is armhf; its QEMU stand-in is raspi2b (serial console on the PL011).
#[test]
fn debian_base_on_raspi2b_logs_in_on_the_serial_console() -> Result<()> {
    pi_login(os_world_armhf()?, "os-raspi2b", Arch::Armhf)
}

/// The seed's tips on the Pi machines: boots the pi3 image to the OS's login prompt on the
/// serial console (with the device's address above it), SSH in over QEMU's USB network
/// adapter (its name, eth0, kept from the initramfs into the OS), `sudo passwd`, then that
/// password logs in on the serial console; powers off from the OS.
fn pi_login(w: &World, name: &str, arch: Arch) -> Result<()> {
    let dir = coreforge_tests::scratch_dir(&format!("{name}-shared"))?;
    let key = SshKey::generate(&dir.join("key"), "pi@coreforge")?;
    let files = preseeded_os_image(w, name, Board::by_name("pi3", arch)?, &key.public, USER)?;
    let port = free_port()?;
    let options = DeviceOptions {
        ssh_port: Some(port),
        ..DeviceOptions::default()
    };
    let mut dev = Device::new(name, &files, options)?;
    dev.power_on()?;
    dev.expect(&t("PRESEED_START"), LOGIN)?;
    let (which, _) = dev.expect_any(&["This device: 10.0.2.15", "Press r to reboot"], LOGIN)?;
    ensure!(
        which == 0,
        dev.failure("the agent stopped at its prompt instead of handing over")
    );
    dev.expect("coreforge login:", STEP)?;
    let out = ssh(
        &dev,
        &key,
        port,
        "id -un; sudo -n true && echo sudo-ok; cat /proc/1/comm; \
         systemctl is-active snap.hello.daemon.service",
    )?;
    expect_lines(
        &dev,
        &out,
        &[
            USER.into(),
            "sudo-ok".into(),
            "systemd".into(),
            "active".into(),
        ],
        "account, sudo and the snap's daemon",
    )?;
    set_password(&dev, &key, port)?;
    serial_login(&mut dev)?;
    dev.no_unexpected_errors(&[])?;
    power_off_over_ssh(&mut dev, &key, port, USER)?;
    no_failed_units(&dev)
}

/// The whole walk-through on an image `name` of world `w`, booted on QEMU virt for `arch`.
fn walkthrough(w: &World, name: &str, arch: Arch) -> Result<()> {
    let dir = coreforge_tests::scratch_dir(&format!("{name}-shared"))?;
    let key = SshKey::generate(&dir.join("key"), "os@coreforge")?;
    let files = preseeded_os_image(w, name, virt(arch), &key.public, USER)?;
    let port = free_port()?;
    let options = DeviceOptions {
        ssh_port: Some(port),
        // tty1 and a keyboard, for the login there.
        framebuffer: true,
        extra_qemu: vec!["-m".into(), "512M".into()],
        ..DeviceOptions::default()
    };
    let mut dev = Device::new(name, &files, options)?;
    dev.power_on()?;
    dev.expect(&t("PRESEED_START"), LOGIN)?;
    dev.expect(&t("FINGERPRINTS"), LOGIN)?;
    let shown = dev.expect("ED25519 SHA256:", STEP)?;
    // systemd's getty on the serial console; the agent's prompt instead means it failed.
    // /etc/issue names the device's addresses above the prompt.
    let (which, _) = dev.expect_any(&["This device: 10.0.2.15", "Press r to reboot"], LOGIN)?;
    ensure!(
        which == 0,
        dev.failure("the agent stopped at its prompt instead of handing over")
    );

    // The seed's tips, literally.
    let out = ssh(
        &dev,
        &key,
        port,
        "id -un; sudo -n true && echo sudo-ok; getent passwd ubuntu || echo no-ubuntu; \
         sudo cat /etc/sudoers.d/create-user-zops; cat /proc/1/comm; \
         systemctl is-active ssh systemd-networkd; \
         echo units-off: $(systemctl is-enabled apt-daily.timer wpa_supplicant.service \
         e2scrub_reap.service | sort -u); \
         stat -c '%a %U:%G %n' /usr/bin/expiry /usr/bin/ssh-agent",
    )?;
    expect_lines(
        &dev,
        &out,
        &[
            USER.into(),
            "sudo-ok".into(),
            "no-ubuntu".into(),
            "# Created by snap create-user".into(),
            format!("{USER} ALL=(ALL) NOPASSWD:ALL"),
            "systemd".into(),
            "active".into(),
            // The base's units with no work on a device are off.
            "units-off: disabled".into(),
            // The base keeps its packages' groups: setgid programs run as their group, not
            // as root's.
            "2755 root:shadow /usr/bin/expiry".into(),
            "2755 root:_ssh /usr/bin/ssh-agent".into(),
        ],
        "account, sudo and services",
    )?;
    let offered = host_fingerprints(port)?;
    ensure!(
        offered.len() == 1 && shown.contains(&offered[0]),
        dev.failure(&format!(
            "sshd offers {offered:?}, console-conf showed {shown:?}"
        ))
    );

    // The brand's snap: mounted at its revision, its app on PATH, its daemon running.
    let out = ssh(
        &dev,
        &key,
        port,
        "hello.env one two; systemctl is-active snap.hello.daemon.service; \
         readlink /snap/hello/current; snap list; snap services",
    )?;
    let rev = out
        .lines()
        .find_map(|l| l.strip_prefix("SNAP_REVISION="))
        .unwrap_or("")
        .to_string();
    eprintln!("the hello snap and snap list, over ssh:\n{out}");
    ensure!(
        !rev.is_empty(),
        dev.failure(&format!("no SNAP_REVISION in:\n{out}"))
    );
    expect_lines(
        &dev,
        &out,
        &[
            format!("SNAP=/snap/hello/{rev}"),
            format!("SNAP_DATA=/var/snap/hello/{rev}"),
            "SNAP_COMMON=/var/snap/hello/common".into(),
            "SNAP_NAME=hello".into(),
            "SNAP_INSTANCE_NAME=hello".into(),
            "SNAP_VERSION=1.0".into(),
            format!("SNAP_ARCH={}", arch.debian_name()),
            "args=one two".into(),
            "active".into(),
            rev.clone(),
        ],
        "the hello snap",
    )?;
    for name in ["core", "pi2-kernel", "qemu-virt", "hello"] {
        ensure!(
            out.lines().any(|l| l.starts_with(&format!("{name} "))),
            dev.failure(&format!("snap list lacks {name}:\n{out}"))
        );
    }
    ensure!(
        out.lines()
            .any(|l| l.starts_with("hello ") && l.split_whitespace().nth(2) == Some(&rev)),
        dev.failure(&format!(
            "snap list does not show hello at revision {rev}:\n{out}"
        ))
    );
    ensure!(
        out.lines().any(|l| l.starts_with("hello.daemon ")
            && l.contains("enabled")
            && l.contains("active")),
        dev.failure(&format!(
            "snap services does not show hello.daemon enabled and active:\n{out}"
        ))
    );

    // `sudo passwd <account>`, then that password logs in on the serial console.
    set_password(&dev, &key, port)?;
    serial_login(&mut dev)?;
    tty1_login(&dev, &key, port, name)?;

    // Off and on again (QEMU runs with -no-reboot): no question asked, the same host key,
    // the daemon started again.
    power_off_over_ssh(&mut dev, &key, port, USER)?;
    no_failed_units(&dev)?;
    dev.power_on()?;
    let out = ssh(
        &dev,
        &key,
        port,
        "systemctl is-active snap.hello.daemon.service; wc -l < /var/snap/hello/common/starts",
    )?;
    expect_lines(
        &dev,
        &out,
        &["active".into(), "2".into()],
        "after the reboot",
    )?;
    ensure!(
        host_fingerprints(port)? == offered,
        dev.failure("the host key changed across the reboot")
    );
    ensure!(
        !dev.transcript().contains(&t("PRESEED_START"))
            && !dev.transcript().contains(&t("PRESS_ENTER")),
        dev.failure("the second boot configured the device again")
    );
    dev.no_unexpected_errors(&[])?;
    power_off_over_ssh(&mut dev, &key, port, USER)?;
    no_failed_units(&dev)
}

/// No unit failed, starting or stopping, in this boot or its power-off: no `[FAILED]` line from
/// systemd on the console (the agent's mounts are left to systemd-shutdown, so not even
/// their unmounting fails).
fn no_failed_units(dev: &Device) -> Result<()> {
    let transcript = dev.transcript();
    let failed: Vec<&str> = transcript
        .lines()
        .filter(|l| l.contains("FAILED"))
        .collect();
    ensure!(
        failed.is_empty(),
        dev.failure(&format!(
            "systemd reported failures:\n{}",
            failed.join("\n")
        ))
    );
    Ok(())
}
