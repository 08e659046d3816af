//! `coreforge boot`'s devices and controls under QEMU: a framebuffer on virt with a screendump
//! through the monitor, a forwarded SSH port on QEMU's user network, and keys typed on the
//! serial console through `coreforge boot`'s stdin — as a test drives it.
//!
//! The image's gadget snap is tampered with, so the agent stops at its failure prompt on
//! every console (serial and tty1) whatever comes after seed verification: a fixed screen
//! to photograph and a prompt to type at. Needs what the walk-through needs.

mod common;
use common::show;
use common::world::{mbr, mtools, world};

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The agent's failure prompt (agent/src/prompt.rs).
const PROMPT: &str = "Press r to reboot, p to power off, Enter to retry";

/// A virt arm64 image whose gadget snap has one byte flipped.
fn tampered_virt_image(name: &str) -> PathBuf {
    let w = world();
    let model = w.model(name, "arm64", "qemu-virt", "");
    let image = w.path(&format!("{name}.img"));
    let out = w.build(&model, &image, &[]);
    assert!(out.status.success(), "build-image:\n{}", show(&out));
    let boot = mbr(&image)[0].1;
    let listing =
        String::from_utf8(mtools(&image, boot, &["-/", "-b", "::/snaps"], "mdir")).unwrap();
    let gadget = listing
        .lines()
        .find(|l| l.to_ascii_lowercase().contains("/snaps/qemu-virt_"))
        .unwrap_or_else(|| panic!("no gadget snap in:\n{listing}"))
        .trim()
        .to_owned();
    let local = w.path(&format!("{name}-gadget.snap"));
    let mut bytes = mtools(&image, boot, &["-n", &gadget, "-"], "mcopy");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(&local, &bytes).unwrap();
    mtools(
        &image,
        boot,
        &["-o", "-n", local.to_str().unwrap(), &gadget],
        "mcopy",
    );
    image
}

/// A port on 127.0.0.1 that nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A binary PPM (P6) image: width, height and RGB bytes.
fn read_ppm(path: &Path) -> (usize, usize, Vec<u8>) {
    let data = fs::read(path).unwrap();
    // Header: "P6", width, height, maxval, each separated by whitespace, then one space.
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while data[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !data[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8(data[start..at].to_vec()).unwrap());
    }
    assert_eq!(fields[0], "P6", "{}: not a binary PPM", path.display());
    assert_eq!(fields[3], "255");
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let pixels = data[at + 1..].to_vec();
    assert_eq!(pixels.len(), w * h * 3, "{}: truncated", path.display());
    (w, h, pixels)
}

/// How many pixels differ from the most common colour (the background).
fn lit_pixels(pixels: &[u8]) -> usize {
    let mut counts = std::collections::HashMap::new();
    for px in pixels.chunks_exact(3) {
        *counts.entry(px).or_insert(0usize) += 1;
    }
    let background = counts.values().copied().max().unwrap_or(0);
    pixels.len() / 3 - background
}

#[test]
fn virt_framebuffer_ssh_port_and_typing_on_the_serial_console() {
    let w = world();
    let image = tampered_virt_image("devices");
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("virt-tty1-failure-prompt.ppm");
    let _ = fs::remove_file(&shot);
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_coreforge"))
        .args([
            "boot",
            image.to_str().unwrap(),
            "--machine",
            "virt",
            "--timeout",
            "400",
            "--ssh-port",
            &port.to_string(),
            "--screendump",
            shot.to_str().unwrap(),
            "--screendump-after",
            PROMPT,
            // Kernel messages off tty1 (and no logo): what is drawn there is the agent's.
            "--append",
            "quiet loglevel=3 logo.nologo",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut transcript = String::new();
    while !transcript.contains(PROMPT) {
        let left = Duration::from_secs(400).saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(line) => {
                transcript.push_str(&line);
                transcript.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "no prompt on the serial console:\n{transcript}\n{}",
                    show(&out)
                );
            }
        }
    }
    assert!(
        transcript.contains("qemu-virt"),
        "the failure names the tampered snap:\n{transcript}"
    );
    // The tampered gadget's error (on the serial console and in the kernel's echo), and
    // nothing else.
    let unexpected = coreforge_tests::unexpected_errors(&transcript, &["snaps/qemu-virt_"]);
    assert!(
        unexpected.is_empty(),
        "unexpected error lines {unexpected:#?}:\n{transcript}"
    );
    // QEMU forwards the port as soon as it runs (the guest need not listen yet).
    TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("nothing listens on the --ssh-port {port}: {e}"));
    // The screendump is taken after the prompt appears (and the screen settles).
    let waited = Instant::now();
    while fs::metadata(&shot).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(waited.elapsed() < Duration::from_secs(60), "no screendump");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    // Typed on the serial console: `p` powers the device off, and QEMU exits cleanly.
    stdin.write_all(b"p").unwrap();
    stdin.flush().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "after typing p:\n{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("ssh on 127.0.0.1:{port}")),
        "{stderr}"
    );

    let (width, height, pixels) = read_ppm(&shot);
    let lit = lit_pixels(&pixels);
    eprintln!(
        "screendump {}: {width}x{height}, {lit} pixels lit ({} columns x {} rows of 8x16 text)",
        shot.display(),
        width / 8,
        height / 16
    );
    // The prompt alone is 49 characters; each lights a few dozen pixels.
    assert!(lit > 49 * 20, "tty1 is blank: {lit} pixels lit");
    fs::remove_file(&image).unwrap();
    let _ = w;
}

#[test]
fn raspi_has_no_display_to_photograph() {
    let w = world();
    let model = w.model("raspi-display", "arm64", "pi3", "");
    let image = w.path("raspi-display.img");
    let out = w.build(&model, &image, &[]);
    assert!(out.status.success(), "build-image:\n{}", show(&out));
    let err = w.fails(&[
        "boot",
        image.to_str().unwrap(),
        "--display",
        "--timeout",
        "5",
    ]);
    assert!(
        err.contains("raspi3b") && err.contains("no display") && err.contains("virt"),
        "{err}"
    );
    let err = w.fails(&[
        "boot",
        image.to_str().unwrap(),
        "--machine",
        "virt",
        "--screendump",
        "x.ppm",
        "--timeout",
        "5",
    ]);
    assert!(err.contains("--expect or --screendump-after"), "{err}");
    fs::remove_file(&image).unwrap();
}
