//! Issue 12's hand-over target, measured (run by `benches/handover.sh`; see benches/README.md
//! for the method): from the agent's "handing over to /sbin/init" line to the Debian OS's
//! login prompt on the serial console, on QEMU virt arm64 (target at most 15 s) and on
//! raspi3b (reported). Each repetition boots a fresh disk twice: the first boot configures
//! itself from a preseed file, the second goes straight to the OS (every later boot).
//! Times are taken on the host as the serial lines arrive.
//!
//! Prints a Markdown table. Usage: `handover_bench [REPETITIONS [MACHINE...]]` (default 3,
//! both; a machine is `virt` or `raspi3b`). Builds what
//! the tests build (the Debian base needs root).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use coreforge_boards::{Arch, Board};
use coreforge_tests::flows::{power_off_over_ssh, preseeded_os_image, t};
use coreforge_tests::image::os_world;
use coreforge_tests::serial::{free_port, Device, DeviceOptions};
use coreforge_tests::ssh::{ssh_run, SshKey};

const USER: &str = "bench";
/// Generous bounds: this measures, the tests judge.
const BOOT: Duration = Duration::from_secs(600);
const HANDING_OVER: &str = "handing over to /sbin/init";
/// The OS's serial getty, under /etc/issue.
const LOGIN_PROMPT: &str = "coreforge login:";

/// One boot's times, from QEMU's start.
struct Boot {
    handing_over: Duration,
    login_prompt: Duration,
    ssh: Duration,
}

impl Boot {
    fn handover(&self) -> Duration {
        self.login_prompt.saturating_sub(self.handing_over)
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let reps: usize = args
        .first()
        .map(|a| a.parse())
        .transpose()
        .context("repetitions must be a number")?
        .unwrap_or(3);
    // Optional QEMU machine names after the count: only those boards.
    let only = &args[args.len().min(1)..];
    let w = os_world()?;
    let key = SshKey::generate(&w.path("handover-bench-key"), "bench@coreforge")?;
    println!("| board (Debian base, arm64) | boot | hand-over → login prompt | QEMU start → handing over | QEMU start → login prompt | QEMU start → ssh answers | target |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (board, target) in [
        (Board::by_name("qemu-virt", Arch::Arm64)?, "≤ 15 s"),
        (Board::by_name("pi3", Arch::Arm64)?, "reported"),
    ] {
        let machine = board.qemu.machine;
        if !only.is_empty() && !only.iter().any(|m| m == machine) {
            continue;
        }
        let name = format!("handover-bench-{machine}");
        let files = preseeded_os_image(w, &name, board, &key.public, USER)?;
        let mut first = Vec::new();
        let mut later = Vec::new();
        for rep in 0..reps {
            let port = free_port()?;
            let options = DeviceOptions {
                ssh_port: Some(port),
                ..DeviceOptions::default()
            };
            let mut dev = Device::new(&format!("{name}-{rep}"), &files, options)?;
            for (boots, preseeded) in [(&mut first, true), (&mut later, false)] {
                boots.push(boot(&mut dev, &key, port)?);
                // The first boot applies the preseed file, later ones go straight to the OS.
                anyhow::ensure!(
                    dev.transcript().contains(&t("PRESEED_START")) == preseeded,
                    "{name}-{rep}: the preseed file was {} on this boot",
                    if preseeded {
                        "not applied"
                    } else {
                        "applied again"
                    }
                );
                power_off_over_ssh(&mut dev, &key, port, USER)?;
            }
        }
        for (what, boots) in [("first (preseed)", &first), ("later", &later)] {
            let pick = |f: fn(&Boot) -> Duration| median(boots.iter().map(f).collect());
            println!(
                "| {machine} | {what}, median of {reps} | {:.2} s (min {:.2}, max {:.2}) | {:.2} s | {:.2} s | {:.2} s | {target} |",
                pick(Boot::handover).as_secs_f64(),
                boots.iter().map(Boot::handover).min().unwrap_or_default().as_secs_f64(),
                boots.iter().map(Boot::handover).max().unwrap_or_default().as_secs_f64(),
                pick(|b| b.handing_over).as_secs_f64(),
                pick(|b| b.login_prompt).as_secs_f64(),
                pick(|b| b.ssh).as_secs_f64(),
            );
        }
    }
    Ok(())
}

/// Powers the device on and times its boot to the login prompt and to an SSH answer.
fn boot(dev: &mut Device, key: &SshKey, port: u16) -> Result<Boot> {
    dev.power_on()?;
    let start = Instant::now();
    dev.expect(HANDING_OVER, BOOT)?;
    let handing_over = start.elapsed();
    dev.expect(LOGIN_PROMPT, BOOT)?;
    let login_prompt = start.elapsed();
    ssh_run(key, port, USER, "true", BOOT).map_err(|e| dev.failure(&format!("{e:#}")))?;
    let ssh = start.elapsed();
    dev.no_unexpected_errors(&[])?;
    Ok(Boot {
        handing_over,
        login_prompt,
        ssh,
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}
