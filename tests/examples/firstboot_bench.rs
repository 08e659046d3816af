//! The first-boot targets of issue 5, measured (run by `benches/firstboot.sh`; see
//! benches/README.md for the method):
//!
//! 1. Seed verification throughput on the device against `sha3sum` (busybox's, C) hashing
//!    the same seeded bytes on the same emulated CPU in the same QEMU run: the agent hashes
//!    at boot, then the test configures the device, and in the OS's root shell on the same
//!    console (after dropping the page cache, so both read cold) `sha3sum -a 384` hashes the
//!    same snap files, timed on the host between two markers the guest prints. Once with
//!    `-smp 1` (single core) and once with `-smp 2` (all host cores), where the agent
//!    uses both and busybox one (plus one `sha3sum` per file in parallel, for reference).
//! 2. Time from QEMU start to "Press Enter" on virt arm64 with a seed of about 100 MB,
//!    against QEMU start to the trivial init's first line (same kernel).
//!
//! Prints Markdown tables. Usage: `firstboot_bench [REPETITIONS]` (default 3).

use std::ffi::OsString;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use coreforge_boards::{Arch, Board};
use coreforge_tests::flows::{choose_network, os_shell, paste_key_and_commit, t, BOOT, STEP};
use coreforge_tests::image::{world, BootFiles};
use coreforge_tests::serial::{Device, DeviceOptions};
use coreforge_tests::ssh::SshKey;
use coreforge_tests::{Boot, InitKind};

/// Four extra snaps of 24 MiB each: about 100 MB of seed with the board snaps, in several
/// files so that hashing can use more than one core (as a real seed of kernel, base,
/// snapd and apps can).
const BULK_SNAPS: usize = 4;
const BULK_BYTES: usize = 24 << 20;

const MB: f64 = 1_000_000.0;

fn main() -> Result<()> {
    let reps: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("repetitions must be a number")?
        .unwrap_or(3);
    let virt = Board::by_name("qemu-virt", Arch::Arm64)?;
    let files = bench_image(virt)?;
    let key = SshKey::generate(&world()?.path("bench-key"), "bench@coreforge")?;

    let mut trivial = Vec::new();
    for rep in 0..reps {
        trivial.push(trivial_first_line(virt, rep)?);
    }
    let trivial = median(&mut trivial);

    println!("| QEMU virt arm64, cortex-a53 | value |");
    println!("| --- | --- |");
    println!(
        "| QEMU start → trivial init's first line (median of {reps}) | {:.2} s |",
        trivial.as_secs_f64()
    );
    let mut hashing_rows = Vec::new();
    let mut agent_single = (Duration::ZERO, 0);
    for smp in [1, 2] {
        let mut press = Vec::new();
        let mut verified = Vec::new();
        let mut agent = Vec::new();
        let mut bytes = 0;
        for rep in 0..reps {
            let run = device_run(&files, &key, smp, rep, rep == 0)?;
            press.push(run.press_enter);
            verified.push(run.seed_verified);
            agent.push(run.agent);
            bytes = run.bytes;
            if let Some(row) = run.hashing {
                hashing_rows.push((smp, row));
            }
        }
        let a = median(&mut agent);
        if smp == 1 {
            agent_single = (a, bytes);
        }
        println!(
            "| -smp {smp}: the agent's seed hashing, {:.1} MB (median of {reps}) | {:.2} s ({:.1} MB/s) |",
            bytes as f64 / MB,
            a.as_secs_f64(),
            bytes as f64 / MB / a.as_secs_f64()
        );
        println!(
            "| -smp {smp}: QEMU start → \"seed verified\" (median of {reps}) | {:.2} s |",
            median(&mut verified).as_secs_f64()
        );
        let p = median(&mut press);
        println!(
            "| -smp {smp}: QEMU start → \"{}\" (median of {reps}) | {:.2} s ({:.1}x the trivial init, +{:.2} s) |",
            t("PRESS_ENTER"),
            p.as_secs_f64(),
            p.as_secs_f64() / trivial.as_secs_f64(),
            (p.saturating_sub(trivial)).as_secs_f64()
        );
    }
    println!();
    println!("| seed hashing, same QEMU run | bytes | agent | busybox sha3sum -a 384 (cold) | sha3sum warm | sha3sum, one per file in parallel (cold) | agent / sha3sum |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (smp, h) in &hashing_rows {
        let rate = |d: Duration| h.bytes as f64 / MB / d.as_secs_f64();
        println!(
            "| -smp {smp}, agent on {} thread(s) | {:.1} MB | {:.2} s ({:.1} MB/s) | {:.2} s ({:.1} MB/s) | {:.2} s | {:.2} s ({:.1} MB/s) | {:.2}x |",
            h.agent_threads,
            h.bytes as f64 / MB,
            h.agent.as_secs_f64(),
            rate(h.agent),
            h.sha3sum_cold.as_secs_f64(),
            rate(h.sha3sum_cold),
            h.sha3sum_warm.as_secs_f64(),
            h.sha3sum_parallel.as_secs_f64(),
            rate(h.sha3sum_parallel),
            h.sha3sum_cold.as_secs_f64() / h.agent.as_secs_f64(),
        );
    }
    let (user_time, user_bytes) = qemu_user_sha3sum(&files)?;
    println!();
    println!(
        "| cross-check, not the same run: busybox sha3sum -a 384 under qemu-aarch64 -cpu cortex-a53 (user mode) on the host | {:.1} MB in {:.2} s ({:.1} MB/s); the agent at -smp 1: {:.1} MB/s, {:.2}x |",
        user_bytes as f64 / MB,
        user_time.as_secs_f64(),
        user_bytes as f64 / MB / user_time.as_secs_f64(),
        agent_single.1 as f64 / MB / agent_single.0.as_secs_f64(),
        (agent_single.1 as f64 / agent_single.0.as_secs_f64())
            / (user_bytes as f64 / user_time.as_secs_f64()),
    );
    Ok(())
}

/// Busybox's `sha3sum -a 384` over the seeded snap files (the same bytes the store holds),
/// under QEMU's user-mode emulation of the same CPU model, timed on the host; returns the
/// time and the bytes.
fn qemu_user_sha3sum(files: &BootFiles) -> Result<(Duration, u64)> {
    let offset = coreforge_tests::image::boot_partition_offset(&files.image)?;
    let dir = world()?.path("bench-seed");
    std::fs::create_dir_all(&dir)?;
    let listing = std::process::Command::new("mdir")
        .arg("-i")
        .arg(format!("{}@@{offset}", files.image.display()))
        .args(["-b", "::snaps"])
        .output()?;
    let mut paths = Vec::new();
    for name in String::from_utf8_lossy(&listing.stdout).lines() {
        let name = name
            .trim()
            .trim_start_matches("::/snaps/")
            .trim_start_matches("::snaps/");
        if !name.ends_with(".snap") {
            continue;
        }
        let path = dir.join(name);
        std::fs::write(
            &path,
            coreforge_tests::image::fat_read(&files.image, offset, &format!("snaps/{name}"))?,
        )?;
        paths.push(path);
    }
    if paths.is_empty() {
        bail!("no snaps listed in {}", files.image.display());
    }
    let bytes = paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()))
        .sum::<std::io::Result<u64>>()?;
    let busybox = coreforge_tests::cache_dir().join("snaps/build/core-arm64/bin/busybox");
    let started = Instant::now();
    let out = std::process::Command::new("qemu-aarch64")
        .args(["-cpu", "cortex-a53"])
        .arg(&busybox)
        .args(["sha3sum", "-a", "384"])
        .args(&paths)
        .output()
        .context("running qemu-aarch64 (qemu-user)")?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        bail!(
            "busybox sha3sum under qemu-user failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((elapsed, bytes))
}

/// A virt image whose seed is about 100 MB: the board snaps plus [`BULK_SNAPS`] snaps of
/// pseudo-random (incompressible) data.
fn bench_image(board: &'static Board) -> Result<BootFiles> {
    let w = world()?;
    let store = w.path("store");
    let mut extra: Vec<OsString> = Vec::new();
    for i in 1..=BULK_SNAPS {
        let name = format!("bulk{i}");
        let dir = w.path(&name);
        std::fs::create_dir_all(dir.join("meta"))?;
        std::fs::write(
            dir.join("meta/snap.yaml"),
            format!("name: {name}\nversion: '1'\ntype: app\narchitectures: [all]\n"),
        )?;
        std::fs::write(dir.join("data.bin"), noise(BULK_BYTES, i as u64))?;
        let snap = w.path(&format!("{name}.snap"));
        w.ok([
            OsString::from("pack"),
            "--compression".into(),
            "lzo".into(),
            dir.into(),
            "-o".into(),
            snap.clone().into(),
        ])?;
        let out = w.ok([
            OsString::from("store"),
            "upload".into(),
            store.clone().into(),
            snap.into(),
        ])?;
        let rev = out.split_whitespace().nth(1).unwrap_or("1").to_string();
        w.ok([
            OsString::from("store"),
            "release".into(),
            store.clone().into(),
            name.clone().into(),
            rev.into(),
            "beta".into(),
        ])?;
        extra.extend(["--extra-snaps".into(), name.into()]);
    }
    let model = w.model("bench-virt", "qemu-virt")?;
    let image = w.build_image("bench-virt", &model, &extra)?;
    BootFiles::read(&image, board, &w.path("bench-virt-boot"))
}

/// `len` bytes of xorshift64* output: reproducible and incompressible.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn trivial_first_line(board: &'static Board, rep: usize) -> Result<Duration> {
    let mut boot = Boot::new(&format!("bench-trivial-{rep}"), board, InitKind::Trivial);
    boot.no_reboot = true;
    let qemu = boot.start()?;
    let line = "trivial-init: first line";
    // With its newline: `line_time` knows only complete lines, and the newline can arrive
    // in a later read than the text.
    qemu.wait_for(&format!("{line}\n"), Duration::from_secs(120))?;
    qemu.line_time(line)
        .ok_or_else(|| qemu.failure("no timed line"))
}

/// One boot's measurements.
struct Run {
    /// The agent's hashing time, from its debug line.
    agent: Duration,
    bytes: u64,
    seed_verified: Duration,
    press_enter: Duration,
    hashing: Option<Hashing>,
}

/// The agent's hashing against busybox's in the same run.
struct Hashing {
    bytes: u64,
    agent: Duration,
    agent_threads: u32,
    sha3sum_cold: Duration,
    sha3sum_warm: Duration,
    sha3sum_parallel: Duration,
}

fn device_run(
    files: &BootFiles,
    key: &SshKey,
    smp: u32,
    rep: usize,
    hash_in_os: bool,
) -> Result<Run> {
    let options = DeviceOptions {
        extra_cmdline: "coreforge.debug".into(),
        extra_qemu: vec!["-smp".into(), smp.to_string()],
        ..DeviceOptions::default()
    };
    let mut dev = Device::new(&format!("bench-smp{smp}-{rep}"), files, options)?;
    dev.power_on()?;
    let line = dev.expect("seed: hashed ", BOOT)?;
    let (bytes, agent, agent_threads) = parse_hashed(&line)
        .ok_or_else(|| dev.failure(&format!("cannot read the hashing line {line:?}")))?;
    dev.expect("seed verified", BOOT)?;
    let seed_verified = dev.uptime();
    // With its newline, so that `expect` does not wait for the rest of the line.
    dev.expect(&format!("{}\n", t("PRESS_ENTER")), BOOT)?;
    let press_enter = dev.uptime();
    if !hash_in_os {
        return Ok(Run {
            agent,
            bytes,
            seed_verified,
            press_enter,
            hashing: None,
        });
    }
    press_enter_session(&mut dev, key)?;
    os_shell(&mut dev, BOOT)?;
    dev.send_line("mkdir -p /tmp/seed && mount -t vfat -o ro /dev/vda1 /tmp/seed && cd /tmp/seed/snaps && echo mounted-$((1+1))")?;
    dev.expect("mounted-2", STEP)?;
    let cold = timed(
        &mut dev,
        "cold",
        "sync; echo 3 > /proc/sys/vm/drop_caches; MARK; sha3sum -a 384 *.snap > /dev/null; MARK",
    )?;
    let warm = timed(
        &mut dev,
        "warm",
        "MARK; sha3sum -a 384 *.snap > /dev/null; MARK",
    )?;
    let parallel = timed(
        &mut dev,
        "par",
        "sync; echo 3 > /proc/sys/vm/drop_caches; MARK; for f in *.snap; do sha3sum -a 384 $f > /dev/null & done; wait; MARK",
    )?;
    Ok(Run {
        agent,
        bytes,
        seed_verified,
        press_enter,
        hashing: Some(Hashing {
            bytes,
            agent,
            agent_threads,
            sha3sum_cold: cold,
            sha3sum_warm: warm,
            sha3sum_parallel: parallel,
        }),
    })
}

/// Configures the device with no network and a pasted key, up to the login details.
/// The caller has already matched "Press Enter" (to time it), which moved the console's
/// cursor past the prompt; `flows::press_enter` would wait for a second prompt that never
/// comes, so this only takes the session (Enter until the welcome line).
fn press_enter_session(dev: &mut Device, key: &SshKey) -> Result<()> {
    dev.send_until(b"\r", &t("WELCOME"), Duration::from_secs(5), STEP)?;
    choose_network(dev, false)?;
    paste_key_and_commit(dev, &key.public, "bench")?;
    Ok(())
}

/// Runs `command` in the OS shell with its two `MARK`s replaced by markers the guest prints
/// (computed, so the typed echo does not match); returns the time between them as the host
/// saw them arrive.
fn timed(dev: &mut Device, tag: &str, command: &str) -> Result<Duration> {
    let start = format!("{tag}-start-42");
    let end = format!("{tag}-end-42");
    let mut parts = command.splitn(3, "MARK");
    let (a, b, c) = match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => bail!("{command:?} needs two MARKs"),
    };
    let line = format!("{a}echo {tag}-start-$((40+2)){b}echo {tag}-end-$((40+2)){c}");
    dev.send_line(&line)?;
    dev.expect(&start, STEP)?;
    let began = Instant::now();
    dev.expect(&end, Duration::from_secs(900))?;
    Ok(began.elapsed())
}

/// `seed: hashed N snaps, B bytes, in X ms on T threads` → (B, X, T).
fn parse_hashed(line: &str) -> Option<(u64, Duration, u32)> {
    let rest = line.split("seed: hashed ").nth(1)?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let bytes = words.get(2)?.parse().ok()?;
    let ms = words.get(5)?.parse().ok()?;
    let threads = words.get(8)?.parse().ok()?;
    Some((bytes, Duration::from_millis(ms), threads))
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}
