//! `coreforge boot IMAGE`: boot a disk image under QEMU the way the board's firmware would:
//! kernel, device tree and initramfs come out of the image's `system-boot` FAT partition
//! (named by its `config.txt`), the image is the disk (behind a throwaway qcow2 overlay, so
//! it is never modified), and the serial console is on the terminal.
//!
//! Tests drive it as a person would: run `coreforge boot IMAGE --expect TEXT...` with stdin
//! and stdout piped; stdout carries the serial console as it arrives, and every byte written
//! to stdin is typed on the serial console (raw: `\r` is Enter, `\x7f` DEL, `\x03` Ctrl-C).
//! `--ssh-port PORT` forwards 127.0.0.1:PORT to the guest's port 22; `--display` gives virt a
//! framebuffer (tty1) and `--screendump FILE` saves it through QEMU's monitor.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use coreforge_boards::{Arch, Board, QemuExtras, QemuInputs};

use crate::image::{read_partitions, FatReader};

/// QEMU machines `boot` can run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// Raspberry Pi 3 B (arm64 kernels).
    Raspi3b,
    /// Raspberry Pi 2 B (armhf kernels; stands in for a Pi 3 running 32-bit).
    Raspi2b,
    /// QEMU's generic ARM board.
    Virt,
}

/// Arguments of `coreforge boot`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The disk image to boot (never modified: the guest writes to a temporary overlay).
    image: PathBuf,
    /// QEMU machine [default: raspi3b/raspi2b when the boot partition has the Pi firmware, else virt].
    #[arg(long, value_enum)]
    machine: Option<Machine>,
    /// Architecture, arm64 or armhf [default: read from the kernel's header].
    #[arg(long)]
    arch: Option<String>,
    /// Words to add to the kernel command line.
    #[arg(long, value_name = "WORDS", allow_hyphen_values = true)]
    append: Option<String>,
    /// Run without a terminal and stop QEMU after SECS seconds; fails on timeout unless
    /// QEMU exited cleanly first (or --expect matched).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Run without a terminal and succeed as soon as TEXT appears on the serial console
    /// (default timeout 600 s); repeatable: every TEXT, in the order given.
    #[arg(long, value_name = "TEXT")]
    expect: Vec<String>,
    /// Forward 127.0.0.1:PORT on this host to the guest's SSH port 22 (QEMU user networking:
    /// the guest gets 10.0.2.15 by DHCP and reaches this host as 10.0.2.2).
    #[arg(long, value_name = "PORT")]
    ssh_port: Option<u16>,
    /// Give the machine a framebuffer and a console on it (tty1); virt only (virtio-gpu-pci).
    #[arg(long)]
    display: bool,
    /// Save the framebuffer as a PPM image in FILE (implies --display): when the last --expect
    /// text appears, or when --screendump-after TEXT does.
    #[arg(long, value_name = "FILE")]
    screendump: Option<PathBuf>,
    /// Take the --screendump when TEXT appears on the serial console (then go on watching).
    #[arg(long, value_name = "TEXT", requires = "screendump")]
    screendump_after: Option<String>,
}

/// The files and names a boot needs, read from the boot partition.
struct BootFiles {
    kernel: Vec<u8>,
    dtb: Option<Vec<u8>>,
    initrd: Option<Vec<u8>>,
    cmdline_extra: Vec<String>,
}

/// Runs `coreforge boot`.
pub fn run(args: &Args) -> Result<ExitCode> {
    let image = args
        .image
        .canonicalize()
        .with_context(|| format!("cannot open image {}", args.image.display()))?;
    let image_size = std::fs::metadata(&image)
        .with_context(|| format!("cannot read {}", image.display()))?
        .len();
    let fat = open_boot_partition(&image)?;

    let has_firmware = fat.read("start.elf")?.is_some() || fat.read("bootcode.bin")?.is_some();
    let early_model = match args.machine {
        Some(Machine::Raspi3b) => Some("pi3"),
        Some(Machine::Raspi2b) => Some("pi2"),
        Some(Machine::Virt) => None,
        None if has_firmware => Some("pi3"),
        None => None,
    };
    let config = match fat.read("config.txt")? {
        Some(bytes) => parse_config(&String::from_utf8_lossy(&bytes), early_model),
        None => BootConfig::default(),
    };
    let (kernel_name, kernel) = read_kernel(&fat, &config)?;
    let arch = match &args.arch {
        Some(a) => a.parse::<Arch>()?,
        None => kernel_arch(&kernel).ok_or_else(|| {
            anyhow!("cannot tell the architecture of {kernel_name} from its header; pass --arch arm64 or --arch armhf")
        })?,
    };
    let machine = args.machine.unwrap_or(match (has_firmware, arch) {
        (true, Arch::Arm64) => Machine::Raspi3b,
        (true, Arch::Armhf) => Machine::Raspi2b,
        (false, _) => Machine::Virt,
    });
    let board = board_for(machine, arch)?;
    let files = BootFiles {
        kernel: kernel_for(board, &kernel_name, kernel)?,
        dtb: read_dtb(&fat, board, &config)?,
        initrd: read_initrd(&fat, &config)?,
        cmdline_extra: cmdline_extra(&fat, args.append.as_deref())?,
    };
    drop(fat);

    let tmp = tempfile::Builder::new()
        .prefix("coreforge-boot.")
        .tempdir()
        .context("cannot create a temp dir for the boot files")?;
    let put = |name: &str, data: &[u8]| -> Result<PathBuf> {
        let path = tmp.path().join(name);
        std::fs::write(&path, data).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    };
    let kernel_path = put("kernel", &files.kernel)?;
    let dtb_path = files
        .dtb
        .as_deref()
        .map(|d| put("board.dtb", d))
        .transpose()?;
    let initrd_path = files
        .initrd
        .as_deref()
        .map(|d| put("initrd", d))
        .transpose()?;
    let disk_size = if board.qemu.disk_size_power_of_two {
        image_size.next_power_of_two()
    } else {
        image_size
    };
    let overlay = tmp.path().join("disk.qcow2");
    make_overlay(&image, &overlay, disk_size)?;

    let interactive =
        args.timeout.is_none() && args.expect.is_empty() && args.screendump_after.is_none();
    let screendump = match &args.screendump {
        None => None,
        Some(_) if args.expect.is_empty() && args.screendump_after.is_none() => {
            bail!("--screendump needs --expect or --screendump-after: it is taken when that text appears")
        }
        Some(file) => Some(Screendump {
            file: absolute(file)?,
            after: args
                .screendump_after
                .clone()
                .or_else(|| args.expect.last().cloned())
                .unwrap_or_default(),
            monitor: tmp.path().join("monitor.sock"),
        }),
    };
    let extras = QemuExtras {
        ssh_port: args.ssh_port,
        display: args.display || screendump.is_some(),
        monitor: screendump.as_ref().map(|s| s.monitor.as_path()),
    };
    let extra = files.cmdline_extra.join(" ");
    let inputs = QemuInputs {
        kernel: Some(&kernel_path),
        dtb: dtb_path.as_deref(),
        initrd: initrd_path.as_deref(),
        disk: Some(&overlay),
        extra_cmdline: Some(&extra),
        // mon: puts QEMU's monitor on the console too (Ctrl-A C), and Ctrl-A X quits.
        serial: serial_ports(board, if interactive { "mon:stdio" } else { "stdio" }),
        no_reboot: !interactive,
    };
    let qemu_args = qcow2_disk(
        board
            .qemu_args_with(&inputs, &extras)
            .with_context(|| format!("cannot boot {} as asked", board.id()))?,
    );
    let program = arch.qemu_system();
    eprintln!(
        "coreforge boot: {} as {} ({}), kernel {kernel_name}, disk {} bytes{}{}",
        image.display(),
        board.id(),
        board.qemu.machine,
        disk_size,
        args.ssh_port
            .map_or(String::new(), |p| format!(", ssh on 127.0.0.1:{p}")),
        if interactive { "; Ctrl-A X quits" } else { "" }
    );
    let mut cmd = Command::new(program);
    cmd.args(&qemu_args);
    if interactive {
        let status = cmd.status().with_context(|| {
            format!("cannot run {program}; install qemu-system-arm (cross/setup.sh does)")
        })?;
        return Ok(if status.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let timeout = Duration::from_secs(args.timeout.unwrap_or(600));
    watch(cmd, program, timeout, &args.expect, screendump.as_ref())
}

/// A screendump to take through QEMU's monitor when a text appears on the serial console.
struct Screendump {
    /// Where QEMU writes the PPM (absolute: QEMU resolves it, not us).
    file: PathBuf,
    /// The serial console text that triggers it.
    after: String,
    /// The monitor's unix socket.
    monitor: PathBuf,
}

fn absolute(path: &Path) -> Result<PathBuf> {
    let dir = std::env::current_dir().context("cannot read the current directory")?;
    Ok(dir.join(path))
}

/// The FAT partition labelled `system-boot` (or snapd's UC20 names), else the first FAT one.
fn open_boot_partition(image: &Path) -> Result<FatReader> {
    let parts = read_partitions(image)?;
    let mut first_fat = None;
    for part in &parts {
        let Ok(fat) = FatReader::open(image, part.offset, part.size) else {
            continue;
        };
        let label = fat.label().to_ascii_lowercase();
        if ["system-boot", "ubuntu-seed", "ubuntu-boot"].contains(&label.as_str()) {
            return Ok(fat);
        }
        first_fat.get_or_insert(fat);
    }
    first_fat.ok_or_else(|| {
        anyhow!(
            "{} has no FAT partition ({} partitions); boot needs the system-boot partition with the kernel",
            image.display(),
            parts.len()
        )
    })
}

/// What `config.txt` says about the boot files.
#[derive(Debug, Default, PartialEq, Eq)]
struct BootConfig {
    kernel: Option<String>,
    initramfs: Option<String>,
    device_tree: Option<String>,
}

/// Reads the lines of `config.txt` that apply to `model` (`pi3`, `pi2`; `None` for other
/// machines): those before any section, in `[all]`, or in `[<model>]`.
fn parse_config(text: &str, model: Option<&str>) -> BootConfig {
    let mut config = BootConfig::default();
    let mut active = true;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            active = section == "all" || Some(section) == model;
            continue;
        }
        if !active || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("initramfs ") {
            // `initramfs NAME followkernel` (or an address instead of followkernel).
            config.initramfs = rest.split_whitespace().next().map(str::to_string);
        } else if let Some((key, value)) = line.split_once('=') {
            let value = Some(value.trim().to_string());
            match key.trim() {
                "kernel" => config.kernel = value,
                "device_tree" => config.device_tree = value,
                _ => {}
            }
        }
    }
    config
}

/// The kernel named by `kernel=`, else the first of the firmware's usual names.
fn read_kernel(fat: &FatReader, config: &BootConfig) -> Result<(String, Vec<u8>)> {
    let names: Vec<&str> = match &config.kernel {
        Some(k) => vec![k.as_str()],
        None => vec!["kernel.img", "kernel8.img", "kernel7.img"],
    };
    for name in &names {
        if let Some(data) = fat.read(name)? {
            return Ok((name.to_string(), data));
        }
    }
    bail!(
        "the boot partition has no kernel: looked for {} (files: {}); set kernel= in config.txt",
        names.join(", "),
        fat.list()?.join(", ")
    )
}

/// Guesses the architecture from the kernel header: arm64 `Image` (plain or gzipped) or
/// 32-bit ARM `zImage`.
fn kernel_arch(kernel: &[u8]) -> Option<Arch> {
    const ARM64_MAGIC: &[u8] = b"ARM\x64";
    const ZIMAGE_MAGIC: u32 = 0x016f_2818;
    if kernel.get(0x38..0x3c) == Some(ARM64_MAGIC) {
        return Some(Arch::Arm64);
    }
    let word = kernel.get(0x24..0x28)?;
    if u32::from_le_bytes([word[0], word[1], word[2], word[3]]) == ZIMAGE_MAGIC {
        return Some(Arch::Armhf);
    }
    if kernel.starts_with(&[0x1f, 0x8b]) {
        let mut head = vec![0u8; 0x40];
        let mut gz = flate2::read::GzDecoder::new(kernel);
        gz.read_exact(&mut head).ok()?;
        return (&head[0x38..0x3c] == ARM64_MAGIC).then_some(Arch::Arm64);
    }
    None
}

/// The board for a machine; the raspi machines fix the architecture.
fn board_for(machine: Machine, arch: Arch) -> Result<&'static Board> {
    let (name, want) = match machine {
        Machine::Raspi3b => ("pi3", Some(Arch::Arm64)),
        Machine::Raspi2b => ("pi3", Some(Arch::Armhf)),
        Machine::Virt => ("qemu-virt", None),
    };
    if let Some(want) = want.filter(|w| *w != arch) {
        bail!("machine {machine:?} runs {want} kernels but this one is {arch}; use --machine {} or virt",
            if want == Arch::Arm64 { "raspi2b" } else { "raspi3b" });
    }
    Ok(Board::by_name(name, arch)?)
}

/// raspi3b loads only an uncompressed `Image`: gunzip a gzipped kernel for it.
fn kernel_for(board: &Board, name: &str, kernel: Vec<u8>) -> Result<Vec<u8>> {
    if !board.qemu.uncompressed_kernel || !kernel.starts_with(&[0x1f, 0x8b]) {
        return Ok(kernel);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&kernel[..])
        .read_to_end(&mut out)
        .with_context(|| format!("cannot gunzip {name} for {}", board.qemu.machine))?;
    Ok(out)
}

/// The device tree QEMU's machine needs. The emulated machine's own tree comes first: QEMU's
/// raspi2b is a Pi 2 even when config.txt names the Pi 3's tree for real hardware.
fn read_dtb(fat: &FatReader, board: &Board, config: &BootConfig) -> Result<Option<Vec<u8>>> {
    let Some(rel) = board.qemu.dtb else {
        return Ok(None); // QEMU makes virt's device tree itself.
    };
    let base = rel.rsplit('/').next().unwrap_or(rel);
    let mut names = vec![
        base.to_string(),
        rel.to_string(),
        format!("dtbs/{rel}"),
        format!("dtbs/{base}"),
    ];
    if let Some(dt) = &config.device_tree {
        names.push(dt.clone());
    }
    for name in &names {
        if let Some(data) = fat.read(name)? {
            return Ok(Some(data));
        }
    }
    bail!(
        "the boot partition has no device tree for {}: looked for {}; add {base} to the gadget's boot assets",
        board.qemu.machine,
        names.join(", ")
    )
}

/// The initramfs named by config.txt (which must then exist), else `initrd.img` if present.
fn read_initrd(fat: &FatReader, config: &BootConfig) -> Result<Option<Vec<u8>>> {
    match &config.initramfs {
        Some(name) => match fat.read(name)? {
            Some(data) => Ok(Some(data)),
            None => {
                bail!("config.txt names initramfs {name} but the boot partition has no such file")
            }
        },
        None => {
            let data = fat.read("initrd.img")?;
            if data.is_none() {
                eprintln!("coreforge boot: no initramfs (config.txt names none and there is no initrd.img)");
            }
            Ok(data)
        }
    }
}

/// Words from `cmdline.txt` other than `console=` (the board's consoles stand, so that the
/// one QEMU shows stays `/dev/console`), then `--append`.
fn cmdline_extra(fat: &FatReader, append: Option<&str>) -> Result<Vec<String>> {
    let mut words: Vec<String> = match fat.read("cmdline.txt")? {
        Some(bytes) => String::from_utf8_lossy(&bytes)
            .split_whitespace()
            .filter(|w| !w.starts_with("console="))
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    words.extend(append.unwrap_or("").split_whitespace().map(str::to_string));
    Ok(words)
}

/// `-serial` values: `console` on the machine's console port (the UART that is the kernel's
/// `/dev/console` under QEMU, see `QemuMachine::console_port`), `null` on the ports before it.
fn serial_ports(board: &Board, console: &str) -> Vec<String> {
    let port = board.qemu.console_port;
    (0..=port)
        .map(|p| if p == port { console } else { "null" }.to_string())
        .collect()
}

/// A qcow2 overlay over the raw image: QEMU writes there, the image stays as it was.
fn make_overlay(image: &Path, overlay: &Path, size: u64) -> Result<()> {
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(image)
        .arg(overlay)
        .arg(size.to_string())
        .stdin(Stdio::null())
        .output()
        .context("cannot run qemu-img; install qemu-utils (cross/setup.sh does)")?;
    if !out.status.success() {
        bail!(
            "qemu-img create failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The boards' command lines attach the disk as raw; the overlay is qcow2.
fn qcow2_disk(args: Vec<OsString>) -> Vec<OsString> {
    let mut after_drive = false;
    args.into_iter()
        .map(|a| {
            let is_value = after_drive;
            after_drive = a == "-drive";
            match a.to_str() {
                Some(s) if is_value => s.replacen(",format=raw,", ",format=qcow2,", 1).into(),
                _ => a,
            }
        })
        .collect()
}

/// Kills QEMU if we leave early.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs QEMU with the console on pipes, echoing it and forwarding our stdin to it, until every
/// text of `expect` has shown up in order, QEMU exits, or time runs out; takes `screendump`
/// when its text shows up.
fn watch(
    mut cmd: Command,
    program: &str,
    timeout: Duration,
    expect: &[String],
    mut screendump: Option<&Screendump>,
) -> Result<ExitCode> {
    let child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("cannot run {program}; install qemu-system-arm (cross/setup.sh does)")
        })?;
    let mut child = KillOnDrop(child);
    let mut stdout = child
        .0
        .stdout
        .take()
        .context("QEMU's console pipe is missing")?;
    if let Some(mut to_guest) = child.0.stdin.take() {
        // Typing on the serial console: a test writes to our stdin. The thread ends at EOF
        // (a closed or null stdin) or when QEMU is gone.
        std::thread::spawn(move || {
            let mut from_user = std::io::stdin().lock();
            let mut buf = [0u8; 1024];
            while let Ok(n) = from_user.read(&mut buf) {
                if n == 0 || to_guest.write_all(&buf[..n]).is_err() || to_guest.flush().is_err() {
                    break;
                }
            }
        });
    }
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut transcript = Vec::new();
    // How many texts of `expect` were seen, and where in the transcript the last one ended.
    let (mut found, mut matched_to) = (0, 0);
    let mut out = std::io::stdout();
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(chunk) => {
                let _ = out.write_all(&chunk);
                let _ = out.flush();
                transcript.extend_from_slice(&chunk);
                if let Some(shot) =
                    screendump.filter(|s| find(&transcript, s.after.as_bytes()).is_some())
                {
                    take_screendump(shot)?;
                    eprintln!(
                        "\ncoreforge boot: screendump {} after {:.1} s",
                        shot.file.display(),
                        start.elapsed().as_secs_f64()
                    );
                    screendump = None;
                }
                while let Some(text) = expect.get(found) {
                    let Some(at) = find(&transcript[matched_to..], text.as_bytes()) else {
                        break;
                    };
                    matched_to += at + text.len();
                    found += 1;
                    eprintln!(
                        "\ncoreforge boot: found {text:?} after {:.1} s",
                        start.elapsed().as_secs_f64()
                    );
                }
                if !expect.is_empty() && found == expect.len() {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.0.wait().context("cannot wait for QEMU")?;
                if let Some(text) = expect.get(found) {
                    bail!(
                        "QEMU exited ({status}) before {text:?} appeared on the serial console; last lines:\n{}",
                        tail(&transcript)
                    );
                }
                if status.success() {
                    return Ok(ExitCode::SUCCESS);
                }
                bail!(
                    "QEMU exited with {status}; last lines:\n{}",
                    tail(&transcript)
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let waiting = expect
                    .get(found)
                    .map_or(String::new(), |t| format!(" waiting for {t:?}"));
                bail!(
                    "timed out after {} s{waiting} on the serial console; last lines:\n{}",
                    timeout.as_secs(),
                    tail(&transcript)
                );
            }
        }
    }
}

/// How long the framebuffer console may lag behind the serial one (fbcon draws, then
/// virtio-gpu flushes the dirty area on its own schedule).
const SCREEN_SETTLE: Duration = Duration::from_millis(1500);

/// Asks QEMU's monitor for a `screendump` (PPM) and waits until it is written.
fn take_screendump(shot: &Screendump) -> Result<()> {
    use std::os::unix::net::UnixStream;
    std::thread::sleep(SCREEN_SETTLE);
    let _ = std::fs::remove_file(&shot.file);
    let mut monitor = UnixStream::connect(&shot.monitor)
        .with_context(|| format!("cannot reach QEMU's monitor at {}", shot.monitor.display()))?;
    monitor.set_read_timeout(Some(Duration::from_secs(30)))?;
    let prompt = b"(qemu) ";
    read_until(&mut monitor, prompt).context("QEMU's monitor did not greet")?;
    // The monitor reads a line; a path with a space or quote would need its quoting rules.
    let path = shot.file.to_string_lossy();
    if path.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        bail!("--screendump {path:?}: use a path without spaces or quotes");
    }
    monitor.write_all(format!("screendump {path}\n").as_bytes())?;
    let reply = read_until(&mut monitor, prompt).context("QEMU's monitor did not answer")?;
    let reply = String::from_utf8_lossy(&reply);
    let written = std::fs::metadata(&shot.file).map(|m| m.len()).unwrap_or(0);
    if written == 0 {
        bail!(
            "QEMU wrote no screendump at {path}; the monitor said: {}",
            reply.trim()
        );
    }
    Ok(())
}

/// Reads from `r` until `end` has been read; returns everything read.
fn read_until(r: &mut impl Read, end: &[u8]) -> Result<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !seen.ends_with(end) {
        let n = r.read(&mut buf)?;
        if n == 0 {
            bail!("the connection closed");
        }
        seen.extend_from_slice(&buf[..n]);
    }
    Ok(seen)
}

/// Where `needle` first starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The last 30 lines of the console, for error messages.
fn tail(transcript: &[u8]) -> String {
    let text = String::from_utf8_lossy(transcript);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_txt_names_kernel_initramfs_and_device_tree() {
        let text = "# Pi\narm_64bit=1\nkernel=vmlinuz\ninitramfs initrd.gz followkernel\ndevice_tree=bcm2710-rpi-3-b.dtb # real Pi\n[pi4]\nkernel=kernel8.img\n[all]\nenable_uart=1\n";
        let c = parse_config(text, Some("pi3"));
        assert_eq!(c.kernel.as_deref(), Some("vmlinuz"));
        assert_eq!(c.initramfs.as_deref(), Some("initrd.gz"));
        assert_eq!(c.device_tree.as_deref(), Some("bcm2710-rpi-3-b.dtb"));
        let pi4 = parse_config(text, Some("pi4"));
        assert_eq!(pi4.kernel.as_deref(), Some("kernel8.img"));
        assert_eq!(parse_config("", None), BootConfig::default());
    }

    #[test]
    fn kernel_headers_tell_the_architecture() {
        let mut arm64 = vec![0u8; 0x40];
        arm64[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert_eq!(kernel_arch(&arm64), Some(Arch::Arm64));
        let mut zimage = vec![0u8; 0x40];
        zimage[0x24..0x28].copy_from_slice(&0x016f_2818u32.to_le_bytes());
        assert_eq!(kernel_arch(&zimage), Some(Arch::Armhf));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&arm64).unwrap();
        assert_eq!(kernel_arch(&gz.finish().unwrap()), Some(Arch::Arm64));
        assert_eq!(
            kernel_arch(b"not a kernel at all, not even close, definitely not"),
            None
        );
    }

    #[test]
    fn raspi_machines_fix_the_architecture() {
        assert_eq!(
            board_for(Machine::Raspi3b, Arch::Arm64)
                .unwrap()
                .qemu
                .machine,
            "raspi3b"
        );
        assert_eq!(
            board_for(Machine::Raspi2b, Arch::Armhf)
                .unwrap()
                .qemu
                .machine,
            "raspi2b"
        );
        assert_eq!(
            board_for(Machine::Virt, Arch::Armhf).unwrap().name,
            "qemu-virt"
        );
        let err = board_for(Machine::Raspi3b, Arch::Armhf)
            .unwrap_err()
            .to_string();
        assert!(err.contains("raspi2b"), "{err}");
    }

    #[test]
    fn the_drive_is_switched_to_qcow2_and_nothing_else() {
        let args: Vec<OsString> = [
            "-append",
            "x,format=raw,y",
            "-drive",
            "file=/d.qcow2,format=raw,if=sd",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        let fixed = qcow2_disk(args);
        assert_eq!(fixed[1], "x,format=raw,y");
        assert_eq!(fixed[3], "file=/d.qcow2,format=qcow2,if=sd");
    }
}
