//! A device under QEMU as a person at its serial console sees it: power it on from its own
//! disk, wait for text (`expect`, with every boot's whole log in the error), type, cut the
//! power (`kill -9` of QEMU) and power it on again from the same disk. Optional user
//! networking with the guest's SSH port forwarded to the host, a framebuffer
//! (`virtio-gpu-pci`) and the QEMU monitor for screen dumps.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use crate::console::{self, lock, SharedLog};
use crate::image::BootFiles;
use crate::screen;

/// How a device is wired up.
#[derive(Debug, Clone, Default)]
pub struct DeviceOptions {
    /// User networking: the guest's port 22 on this host port.
    pub ssh_port: Option<u16>,
    /// A framebuffer with `console=tty1` (virt's `virtio-gpu-pci`; the serial port stays
    /// `/dev/console`).
    pub framebuffer: bool,
    /// More kernel command line words.
    pub extra_cmdline: String,
    /// More QEMU arguments (e.g. `-smp 2`).
    pub extra_qemu: Vec<String>,
}

/// A free TCP port on the host's loopback (for a forward).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// One emulated device with its own disk; QEMU is killed when it is dropped.
#[derive(Debug)]
pub struct Device {
    name: String,
    dir: PathBuf,
    files: BootFiles,
    options: DeviceOptions,
    disk: PathBuf,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    log: SharedLog,
    /// Where the next `expect` starts looking in this boot's log.
    cursor: usize,
    /// The logs of earlier boots, for failure messages.
    history: String,
    boots: usize,
    started: Instant,
}

impl Device {
    /// A device named `name` (its scratch folder) with a fresh disk over `files`' image.
    pub fn new(name: &str, files: &BootFiles, options: DeviceOptions) -> anyhow::Result<Device> {
        let dir = crate::scratch_dir(name)?;
        let disk = dir.join("disk.qcow2");
        files.new_disk(&disk)?;
        Ok(Device {
            name: name.to_string(),
            dir,
            files: files.clone(),
            options,
            disk,
            child: None,
            stdin: None,
            log: SharedLog::default(),
            cursor: 0,
            history: String::new(),
            boots: 0,
            started: Instant::now(),
        })
    }

    /// The device's copy-on-write disk (qcow2).
    pub fn disk(&self) -> &Path {
        &self.disk
    }

    /// The device's scratch folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn monitor_path(&self) -> PathBuf {
        self.dir.join("monitor.sock")
    }

    /// The QEMU program and arguments for this device: the board's command line with the
    /// network, framebuffer and monitor `coreforge boot` also adds, on the device's disk.
    pub fn command_line(&self) -> anyhow::Result<(&'static str, Vec<OsString>)> {
        let board = self.files.board;
        let mut cmdline = self.files.cmdline.clone();
        if !self.options.extra_cmdline.is_empty() {
            cmdline.push(' ');
            cmdline.push_str(&self.options.extra_cmdline);
        }
        let serial = (0..=board.qemu.console_port)
            .map(|p| {
                if p == board.qemu.console_port {
                    "stdio"
                } else {
                    "null"
                }
                .to_string()
            })
            .collect();
        let inputs = coreforge_boards::QemuInputs {
            kernel: Some(&self.files.kernel),
            dtb: self.files.dtb.as_deref(),
            initrd: Some(&self.files.initrd),
            disk: Some(&self.disk),
            extra_cmdline: Some(&cmdline),
            serial,
            // A guest reboot ends QEMU; `power_on` starts the next boot.
            no_reboot: true,
        };
        let monitor = self.monitor_path();
        let extras = coreforge_boards::QemuExtras {
            ssh_port: self.options.ssh_port,
            display: self.options.framebuffer,
            monitor: Some(&monitor),
        };
        let mut args = Vec::new();
        let mut it = board.qemu_args_with(&inputs, &extras)?.into_iter();
        while let Some(a) = it.next() {
            if a == "-drive" {
                // The boards attach raw images; the device's disk is a qcow2 overlay.
                let spec = it.next().unwrap_or_default();
                let mut spec = spec
                    .to_string_lossy()
                    .replacen(",format=raw,", ",format=qcow2,", 1);
                // An SD card has no flush command, so QEMU would keep the qcow2 overlay's
                // new cluster mappings in memory until it exits, and a power cut (kill -9)
                // would lose writes the guest completed; write through instead, like a
                // card without a volatile cache. virtio-blk forwards the guest's flushes.
                if board.qemu.disk_bus == coreforge_boards::DiskBus::Sd {
                    spec.push_str(",cache=writethrough");
                }
                args.extend(["-drive".into(), spec.into()]);
            } else {
                args.push(a);
            }
        }
        args.extend(self.options.extra_qemu.iter().map(OsString::from));
        Ok((board.arch.qemu_system(), args))
    }

    /// Starts QEMU from the device's disk (the first boot, or the next one after a power
    /// cut or an exit); `expect` looks from the start of this boot's output.
    pub fn power_on(&mut self) -> anyhow::Result<()> {
        self.power_cut();
        let (program, args) = self.command_line()?;
        let _ = std::fs::remove_file(self.monitor_path());
        let mut child = Command::new(program)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {program}: run cross/setup.sh to install QEMU"))?;
        let old = std::mem::take(&mut *lock(&self.log));
        if self.boots > 0 {
            self.history
                .push_str(&format!("----- boot {} -----\n{}\n", self.boots, old.text));
        }
        self.boots += 1;
        self.cursor = 0;
        self.started = Instant::now();
        self.log = console::attach(&mut child, program, &args, self.started)?;
        self.stdin = child.stdin.take();
        self.child = Some(child);
        Ok(())
    }

    /// Cuts the power: SIGKILL to QEMU, nothing flushed that the guest did not flush. The
    /// log then holds everything the console printed before the cut (what QEMU had written
    /// to its pipe is still read), and nothing after.
    pub fn power_cut(&mut self) {
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let (mutex, cond) = &*self.log;
            let log = mutex.lock().unwrap_or_else(|e| e.into_inner());
            let _ = cond.wait_timeout_while(log, Duration::from_secs(2), |l| !l.closed);
        }
        self.save_log();
    }

    /// Keeps every boot's log in the scratch folder (`serial.log`), for a look after a run.
    fn save_log(&self) {
        let text = format!(
            "{}----- boot {} -----\n{}",
            self.history,
            self.boots,
            self.transcript()
        );
        let _ = std::fs::write(self.dir.join("serial.log"), text);
    }

    /// Time since this boot's QEMU started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// This boot's console output so far.
    pub fn transcript(&self) -> String {
        lock(&self.log).text.clone()
    }

    /// This boot's console output after the last `expect` match.
    pub fn unread(&self) -> String {
        lock(&self.log)
            .text
            .get(self.cursor..)
            .unwrap_or("")
            .to_string()
    }

    /// An error with what went wrong and the log of every boot so far.
    pub fn failure(&self, what: &str) -> anyhow::Error {
        anyhow!(
            "{}: {what}\n----- serial log of {} (boot {} last) -----\n{}----- boot {} -----\n{}\n----- end of serial log -----",
            self.name,
            self.name,
            self.boots,
            self.history,
            self.boots,
            self.transcript()
        )
    }

    /// Fails, with every boot's log, on an agent `error:` line in any boot so far that
    /// contains none of `expected` (see [`console::unexpected_errors`]); every test that
    /// boots the agent ends with it.
    pub fn no_unexpected_errors(&self, expected: &[&str]) -> anyhow::Result<()> {
        let all = format!("{}{}", self.history, self.transcript());
        let unexpected = console::unexpected_errors(&all, expected);
        if unexpected.is_empty() {
            return Ok(());
        }
        Err(self.failure(&format!("unexpected error lines: {unexpected:#?}")))
    }

    /// Waits for `text` after the previous match; returns the whole line it is on (up to
    /// its end, when the end arrives in time) and moves past it.
    pub fn expect(&mut self, text: &str, timeout: Duration) -> anyhow::Result<String> {
        self.expect_any(&[text], timeout).map(|(_, line)| line)
    }

    /// Waits for the first of `texts` to appear after the previous match; returns which one
    /// and its line.
    pub fn expect_any(
        &mut self,
        texts: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<(usize, String)> {
        let deadline = Instant::now() + timeout;
        let (mutex, cond) = &*self.log;
        let mut log = mutex.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let rest = log.text.get(self.cursor..).unwrap_or("");
            let found = texts
                .iter()
                .enumerate()
                .filter_map(|(i, t)| find_between_kernel_lines(rest, t).map(|at| (at, i)))
                .min();
            if let Some(((at, end), which)) = found {
                let start = self.cursor + at;
                let line_start = log.text[..start].rfind('\n').map_or(0, |n| n + 1);
                // Give the rest of the line a moment to arrive.
                let line_deadline = Instant::now() + Duration::from_secs(2);
                while !log.text[start..].contains('\n') && Instant::now() < line_deadline {
                    log = cond
                        .wait_timeout(log, Duration::from_millis(100))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                let line_end = log.text[start..]
                    .find('\n')
                    .map_or(log.text.len(), |n| start + n);
                let line = log.text[line_start..line_end].to_string();
                self.cursor += end;
                return Ok((which, line));
            }
            let now = Instant::now();
            if log.closed || now >= deadline {
                drop(log);
                let why = if now >= deadline {
                    format!("timed out after {timeout:?}")
                } else {
                    "QEMU exited".to_string()
                };
                return Err(self.failure(&format!("waiting for {texts:?}: {why}")));
            }
            log = cond
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Fails if `text` shows up within `period` after the previous match.
    pub fn expect_absent(&mut self, text: &str, period: Duration) -> anyhow::Result<()> {
        match self.expect(text, period) {
            Ok(line) => Err(self.failure(&format!("{text:?} appeared: {line:?}"))),
            Err(_) => Ok(()),
        }
    }

    /// Types `bytes` on the serial console.
    pub fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("{}: the device is off", self.name))?;
        stdin
            .write_all(bytes)
            .and_then(|_| stdin.flush())
            .context("typing on the serial console")
    }

    /// Types `line` and Enter (a carriage return, as a terminal sends).
    pub fn send_line(&mut self, line: &str) -> anyhow::Result<()> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\r');
        self.send(&bytes)
    }

    /// Types `bytes` again every `every` until `reply` appears after the previous match.
    /// For prompts whose input is dropped until the prompt is really listening (stray bytes
    /// must not answer it), which under emulation can lag its printed text.
    pub fn send_until(
        &mut self,
        bytes: &[u8],
        reply: &str,
        every: Duration,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        let mut attempts = 0;
        loop {
            self.send(bytes)?;
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            match self.expect(reply, every.min(left)) {
                Ok(line) => return Ok(line),
                Err(e) if Instant::now() >= deadline || self.has_exited() => {
                    return Err(e.context(format!("typed {bytes:?} {attempts} times")));
                }
                Err(_) => {}
            }
        }
    }

    /// True once QEMU has exited by itself (guest power-off or reboot).
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(Some(_))),
            None => true,
        }
    }

    /// Waits until QEMU has exited by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.has_exited() {
            if Instant::now() >= deadline {
                bail!(self.failure(&format!("QEMU did not exit within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Runs a QEMU monitor (HMP) command; returns its answer.
    pub fn monitor(&self, command: &str) -> anyhow::Result<String> {
        let mut sock = UnixStream::connect(self.monitor_path())
            .with_context(|| format!("connecting to the monitor of {}", self.name))?;
        sock.set_read_timeout(Some(Duration::from_secs(30)))?;
        read_until_prompt(&mut sock)?;
        sock.write_all(format!("{command}\n").as_bytes())?;
        let answer = read_until_prompt(&mut sock)?;
        Ok(answer)
    }

    /// Saves the display to `path` (PPM) through the monitor's `screendump`.
    pub fn screendump(&self, path: &Path) -> anyhow::Result<()> {
        let _ = std::fs::remove_file(path);
        let answer = self.monitor(&format!("screendump {}", path.display()))?;
        // QEMU writes the file before it answers; allow a slow disk a moment anyway.
        for _ in 0..50 {
            if path.metadata().map(|m| m.len() > 0).unwrap_or(false) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "screendump wrote no {}: monitor said {answer:?}",
            path.display()
        )
    }

    /// Reads the screen until `wanted` holds for its text: a screen dump every few seconds,
    /// kept as `target/coreforge-tests/artifacts/NAME.ppm` and read by OCR, up to `timeout`.
    /// Returns the text; fails with the last text read.
    pub fn read_screen(
        &self,
        name: &str,
        wanted: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let path = crate::scratch_dir("artifacts")?.join(format!("{name}.ppm"));
        let start = Instant::now();
        loop {
            self.screendump(&path)?;
            let text = std::fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|bytes| screen::check_ppm(&bytes).map(|_| ()))
                .and_then(|()| screen::ocr(&path))
                .unwrap_or_else(|e| format!("(no text: {e:#})"));
            if wanted(&text) {
                return Ok(text);
            }
            if start.elapsed() > timeout {
                return Err(self.failure(&format!(
                    "the screen ({}) never read as wanted; OCR read:\n{text}",
                    path.display()
                )));
            }
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    /// Types `text` on the device's keyboard (QEMU's `sendkey`, one key at a time): what a
    /// person at the screen would type. Needs [`DeviceOptions::framebuffer`] (the keyboard
    /// comes with the display).
    pub fn type_text(&self, text: &str) -> anyhow::Result<()> {
        for key in screen::keys(text)? {
            let answer = self.monitor(&format!("sendkey {key}"))?;
            let answer = answer.trim_end_matches("(qemu) ");
            // The monitor echoes the command; anything after that line is a complaint.
            if let Some((_, said)) = answer.split_once('\n') {
                if !said.trim().is_empty() {
                    bail!("sendkey {key}: the monitor said {said:?}");
                }
            }
        }
        Ok(())
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.power_cut();
    }
}

/// Reads monitor output up to its `(qemu) ` prompt.
fn read_until_prompt(sock: &mut UnixStream) -> anyhow::Result<String> {
    let mut reader = BufReader::new(sock);
    let mut out = Vec::new();
    loop {
        let buf = reader.fill_buf().context("reading the QEMU monitor")?;
        if buf.is_empty() {
            bail!("the QEMU monitor closed: {}", String::from_utf8_lossy(&out));
        }
        let n = buf.len();
        out.extend_from_slice(buf);
        reader.consume(n);
        if out.ends_with(b"(qemu) ") {
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
    }
}

/// Where `needle` is in `text`: `(start, end)` byte offsets. The kernel prints its own lines
/// on the same console whenever it likes, so an agent line can arrive cut in two by one
/// (`Press En[   14.97] dwc2 ...\nter to configure`): such `[ seconds] ...\n` lines inside
/// the match are skipped over.
fn find_between_kernel_lines(text: &str, needle: &str) -> Option<(usize, usize)> {
    if let Some(at) = text.find(needle) {
        return Some((at, at + needle.len()));
    }
    // The text without kernel lines, and where each of its bytes is in `text`.
    let bytes = text.as_bytes();
    let mut kept = Vec::with_capacity(bytes.len());
    let mut from = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(len) = kernel_line_len(&bytes[i..]) {
            i += len;
            continue;
        }
        kept.push(bytes[i]);
        from.push(i);
        i += 1;
    }
    let at = kept
        .windows(needle.len().max(1))
        .position(|w| w == needle.as_bytes())?;
    let last = *from.get(at + needle.len().checked_sub(1)?)?;
    Some((from[at], last + 1))
}

/// The length of a kernel console line (`[ 12.345678] text\n`) at the start of `b`.
fn kernel_line_len(b: &[u8]) -> Option<usize> {
    let rest = b.strip_prefix(b"[")?;
    let spaces = rest.iter().take_while(|c| **c == b' ').count();
    let digits = rest[spaces..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let after = rest.get(spaces + digits..)?;
    let after = after.strip_prefix(b".")?;
    let frac = after.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || frac == 0 || after.get(frac) != Some(&b']') {
        return None;
    }
    let nl = after[frac..].iter().position(|c| *c == b'\n')?;
    Some(1 + spaces + digits + 1 + frac + nl + 1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_line_cut_by_a_kernel_line_is_found() {
        let text = "x\nPress En[   14.971234] dwc2 3f980000.usb: new device\nter to configure\n";
        let (at, end) = super::find_between_kernel_lines(text, "Press Enter to configure").unwrap();
        assert_eq!(
            (&text[at..at + 8], &text[end - 9..end]),
            ("Press En", "configure")
        );
        assert_eq!(super::find_between_kernel_lines("[ 1.5] a\nb", "ab"), None);
        assert_eq!(
            super::find_between_kernel_lines("plain", "la"),
            Some((1, 3))
        );
    }

    use super::*;

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port().unwrap();
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
