//! console-conf's screens driven as a person does, and the images and steps around them,
//! shared by the end-to-end tests and the benchmarks. Every text waited for comes from the
//! agent ([`crate::agent_text`]).

use std::time::Duration;

use anyhow::anyhow;

use coreforge_boards::Board;

use crate::image::{BootFiles, World};
use crate::serial::Device;

/// From power on to "Press Enter": kernel, modules, seed verification under emulation,
/// with two QEMUs sharing two cores.
pub const BOOT: Duration = Duration::from_secs(300);
/// A screen's next line after an answer (network up by DHCP, an HTTPS look-up, a commit).
pub const STEP: Duration = Duration::from_secs(120);

/// One console-conf text, read from the agent; panics (in tests) when it is gone.
pub fn t(name: &str) -> String {
    crate::agent_text(name).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Waits for "Press Enter" and takes the session: Enter is typed until the welcome line
/// shows (input is dropped until the prompt really listens, which under emulation can lag
/// its printed text).
pub fn press_enter(dev: &mut Device) -> anyhow::Result<()> {
    dev.expect(&t("PRESS_ENTER"), BOOT)?;
    dev.send_until(b"\r", &t("WELCOME"), Duration::from_secs(5), STEP)?;
    Ok(())
}

/// From the welcome line to the identity prompt: the wired DHCP entry of the network menu
/// when `dhcp` (waiting for the network to come up), else `s` (no network).
pub fn choose_network(dev: &mut Device, dhcp: bool) -> anyhow::Result<()> {
    dev.expect(&t("NETWORK_HEADING"), STEP)?;
    if dhcp {
        // "  1) eth0: wired, DHCP"
        let line = dev.expect("wired, DHCP", STEP)?;
        let number = line
            .trim()
            .split(')')
            .next()
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_string)
            .ok_or_else(|| anyhow!(dev.failure(&format!("no menu number in {line:?}"))))?;
        dev.expect(&t("NETWORK_PROMPT"), STEP)?;
        dev.send_line(&number)?;
        dev.expect("The network is up: ", STEP)?;
    } else {
        dev.expect(&t("NETWORK_PROMPT"), STEP)?;
        dev.send_line("s")?;
    }
    dev.expect(&t("IDENTITY_PROMPT"), STEP)?;
    Ok(())
}

/// At the identity prompt: pastes `public_key`, names the account `user`, confirms, and
/// waits for the login details' first line.
pub fn paste_key_and_commit(dev: &mut Device, public_key: &str, user: &str) -> anyhow::Result<()> {
    dev.send_line(public_key)?;
    dev.expect(&t("USERNAME_PROMPT"), STEP)?;
    dev.send_line(user)?;
    dev.expect(&format!("Found: {user}, 1 SSH key(s)"), STEP)?;
    dev.expect(&t("CONFIRM_PROMPT"), STEP)?;
    dev.send_line("y")?;
    dev.expect(&t("DONE"), STEP)?;
    Ok(())
}

/// After the hand-over: activates the OS's root shell on the console (busybox init's
/// `askfirst`) and checks it answers.
pub fn os_shell(dev: &mut Device, timeout: Duration) -> anyhow::Result<()> {
    dev.expect("Please press Enter to activate this console", timeout)?;
    // The shell prints its answer; typed text echoes, so the marker is computed.
    dev.send_until(
        b"\recho shell-$((40+2))-ready\r",
        "shell-42-ready",
        Duration::from_secs(5),
        STEP,
    )?;
    Ok(())
}

/// Powers the OS off as `user` over SSH on the forwarded `port` (`sudo systemctl poweroff`;
/// the connection may drop before it answers) and waits for QEMU to end.
pub fn power_off_over_ssh(
    dev: &mut Device,
    key: &crate::ssh::SshKey,
    port: u16,
    user: &str,
) -> anyhow::Result<()> {
    let _ = crate::ssh::ssh_run(
        key,
        port,
        user,
        "sudo systemctl poweroff",
        Duration::from_secs(30),
    );
    dev.wait_exit(Duration::from_secs(120))
}

/// An image of world `w` for `board` that configures itself: the brand's snap `hello` from
/// `examples/hello` (a command app `env` that prints its snap environment, a `daemon: simple`
/// app that records each start in `$SNAP_COMMON/starts`), packed, published to beta and
/// given with `--extra-snaps`, and a preseed file (DHCP on eth0, account `user` with
/// `public_key`). Returns its boot files.
pub fn preseeded_os_image(
    w: &World,
    name: &str,
    board: &'static Board,
    public_key: &str,
    user: &str,
) -> anyhow::Result<BootFiles> {
    w.publish(&crate::workspace_root().join("examples/hello"), "hello")?;
    let preseed = w.path(&format!("{name}-console-conf.json"));
    std::fs::write(
        &preseed,
        serde_json::json!({
            "network": {"interface": "eth0", "method": "dhcp"},
            "identity": {"username": user, "ssh-keys": [public_key]},
        })
        .to_string(),
    )?;
    let model = w.model(name, board.name)?;
    let image = w.build_image(
        name,
        &model,
        &[
            "--extra-snaps".into(),
            "hello".into(),
            "--preseed".into(),
            preseed.into(),
        ],
    )?;
    BootFiles::read(&image, board, &w.path(&format!("{name}-boot")))
}
