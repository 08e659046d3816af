//! Booting a board in QEMU and talking to its first serial port.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use coreforge_boards::{Board, QemuInputs};

use crate::console::{self, lock, SharedLog};
use crate::{initramfs, make_boot_disk, InitKind, Kernel};

/// What to boot: a board, its init, an optional boot disk, extra kernel arguments.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The board (and arch) to emulate.
    pub board: &'static Board,
    /// What runs as PID 1.
    pub init: InitKind,
    /// Files for the FAT `system-boot` partition; `None` boots without a disk.
    pub disk_files: Option<Vec<(String, Vec<u8>)>>,
    /// Appended to the board's kernel command line.
    pub extra_cmdline: String,
    /// Make a guest reboot exit QEMU.
    pub no_reboot: bool,
    /// Names the scratch folder and the logs.
    pub name: String,
}

impl Boot {
    /// Boots `board` with `init`, no disk, no extra arguments; `name` must be unique per test.
    pub fn new(name: &str, board: &'static Board, init: InitKind) -> Self {
        Boot {
            board,
            init,
            disk_files: None,
            extra_cmdline: String::new(),
            no_reboot: false,
            name: name.to_string(),
        }
    }

    /// Adds a boot disk holding the shared test model at `systems/20250101/model`, with the
    /// assertions that chain it to the trusted roots in `assertions/model-etc`.
    pub fn with_model_disk(mut self) -> anyhow::Result<Self> {
        self.disk_files = Some(vec![
            (
                format!("systems/{}/model", crate::artifacts::TEST_LABEL),
                crate::test_model()?,
            ),
            (
                format!(
                    "systems/{}/assertions/model-etc",
                    crate::artifacts::TEST_LABEL
                ),
                crate::test_model_etc()?,
            ),
        ]);
        Ok(self)
    }

    /// Builds the initramfs and disk in the scratch folder and starts QEMU.
    pub fn start(&self) -> anyhow::Result<Qemu> {
        let prepared = self.prepare()?;
        let mut qemu = Qemu::spawn(
            prepared.program,
            &prepared.args,
            &self.name,
            prepared.other_serial,
        )?;
        qemu.modules = prepared.modules;
        Ok(qemu)
    }

    /// Builds the initramfs and disk in the scratch folder; returns the QEMU command line.
    pub fn prepare(&self) -> anyhow::Result<Prepared> {
        let kernel = Kernel::for_arch(self.board.arch)?;
        kernel.check_for(self.board)?;
        let dir = crate::scratch_dir(&self.name)?;
        let initrd = dir.join("initrd.img");
        let image = initramfs(self.board, &kernel, self.init, &initrd)?;
        let disk = match &self.disk_files {
            Some(files) => {
                let path = dir.join("disk.img");
                let files: Vec<(&str, &[u8])> = files
                    .iter()
                    .map(|(p, d)| (p.as_str(), d.as_slice()))
                    .collect();
                make_boot_disk(&path, &files)?;
                Some(path)
            }
            None => None,
        };
        let kernel_image = kernel.image_for(self.board);
        let dtb = kernel.qemu_dtb_for(self.board);
        // The interactive console's UART is on stdio; the machine's other UART goes to a file.
        let second_serial = dir.join("other-serial.log");
        let _ = std::fs::remove_file(&second_serial);
        let inputs = QemuInputs {
            kernel: Some(&kernel_image),
            dtb: dtb.as_deref(),
            initrd: Some(&initrd),
            disk: disk.as_deref(),
            extra_cmdline: Some(&self.extra_cmdline),
            serial: (0..2)
                .map(|port| {
                    if port == self.board.qemu.console_port {
                        "stdio".to_string()
                    } else {
                        format!("file:{}", second_serial.display())
                    }
                })
                .collect(),
            no_reboot: self.no_reboot,
        };
        Ok(Prepared {
            program: self.board.arch.qemu_system(),
            args: self
                .board
                .qemu_args(&inputs)
                .into_iter()
                .chain(["-trace".into(), TRACE_SHUTDOWN.into()])
                .collect(),
            other_serial: second_serial,
            modules: image.modules,
        })
    }
}

/// The QEMU trace event that names why the guest asked QEMU to stop (QEMU's
/// `ShutdownCause`; 6 is `guest-shutdown`, a power-off). A guest reset, which `-no-reboot`
/// also turns into an exit (a reboot, a panic's reboot, a watchdog's reset), does not emit it.
const TRACE_SHUTDOWN: &str = "qemu_system_shutdown_request";

/// What a clean power-off leaves in the log: the kernel's last line and QEMU's trace of a
/// shutdown the guest asked for.
const POWER_DOWN: &str = "reboot: Power down";
const GUEST_SHUTDOWN: &str = "qemu_system_shutdown_request reason=6";

/// Lines that a clean power-off never has: a kernel panic, a reboot (also how a panic with
/// `panic=-1` or a watchdog ends under `-no-reboot`), a watchdog that fired or was left
/// running.
const NOT_A_POWER_OFF: [&str; 5] = [
    "Kernel panic",
    "reboot: Restarting system",
    "Reboot failed",
    "watchdog did not stop",
    "qemu_system_shutdown_request reason=7",
];

/// A boot ready to run: the QEMU program and arguments, with their files in place.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// `qemu-system-aarch64` or `qemu-system-arm`.
    pub program: &'static str,
    /// Its arguments; the console's serial port is `stdio`.
    pub args: Vec<std::ffi::OsString>,
    /// Where the machine's other serial port writes.
    pub other_serial: PathBuf,
    /// The modules in the initramfs, in load order.
    pub modules: Vec<String>,
}

/// A running QEMU; killed when dropped.
#[derive(Debug)]
pub struct Qemu {
    child: Child,
    stdin: Option<ChildStdin>,
    log: SharedLog,
    name: String,
    second_serial: PathBuf,
    /// The modules in the initramfs, in load order.
    pub modules: Vec<String>,
}

impl Qemu {
    fn spawn(
        program: &str,
        args: &[std::ffi::OsString],
        name: &str,
        second_serial: PathBuf,
    ) -> anyhow::Result<Qemu> {
        let started = Instant::now();
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {program}: run cross/setup.sh to install QEMU"))?;
        let log = console::attach(&mut child, program, args, started)?;
        Ok(Qemu {
            stdin: child.stdin.take(),
            child,
            log,
            name: name.to_string(),
            second_serial,
            modules: Vec::new(),
        })
    }

    /// Everything QEMU printed so far (serial console and QEMU's own errors).
    pub fn transcript(&self) -> String {
        lock(&self.log).text.clone()
    }

    /// What the machine's other serial port (not the console's) received so far.
    pub fn second_serial(&self) -> String {
        std::fs::read(&self.second_serial)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// An error carrying the whole serial log, as every failing test prints.
    pub fn failure(&self, what: &str) -> anyhow::Error {
        anyhow!(
            "{}: {what}\n----- serial log of {} -----\n{}\n----- end of serial log -----",
            self.name,
            self.name,
            self.transcript()
        )
    }

    /// Fails, with the serial log, on an agent `error:` line that contains none of
    /// `expected` (see [`console::unexpected_errors`]); every agent boot test ends with it.
    pub fn no_unexpected_errors(&self, expected: &[&str]) -> anyhow::Result<()> {
        let unexpected = console::unexpected_errors(&self.transcript(), expected);
        if unexpected.is_empty() {
            return Ok(());
        }
        Err(self.failure(&format!("unexpected error lines: {unexpected:#?}")))
    }

    /// Waits until `needle` has appeared `count` times in the transcript.
    pub fn wait_for_nth(
        &self,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let (mutex, cond) = &*self.log;
        let mut log = mutex.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if log.text.matches(needle).count() >= count {
                return Ok(());
            }
            let now = Instant::now();
            if log.closed || now >= deadline {
                drop(log);
                let why = if now >= deadline {
                    format!("timed out after {timeout:?}")
                } else {
                    "QEMU exited".into()
                };
                return Err(self.failure(&format!(
                    "waiting for {needle:?} (occurrence {count}): {why}"
                )));
            }
            log = cond
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for the first appearance of `needle`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> anyhow::Result<()> {
        self.wait_for_nth(needle, 1, timeout)
    }

    /// Time from QEMU's start to the arrival of the first complete line containing `needle`.
    pub fn line_time(&self, needle: &str) -> Option<Duration> {
        lock(&self.log)
            .lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
    }

    /// Types `text` on the first serial port.
    pub fn send(&mut self, text: &str) -> anyhow::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("QEMU's stdin is closed"))?;
        stdin
            .write_all(text.as_bytes())
            .and_then(|_| stdin.flush())
            .context("typing on the serial console")
    }

    /// True once QEMU has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Types `text` until `done` holds: first after a pause, then again every ten seconds.
    /// The agent drops input that arrives before its prompt is up (as it should: stray
    /// bytes must not answer it), and under emulation "up" can lag the printed prompt.
    pub fn type_until(
        &mut self,
        text: &str,
        timeout: Duration,
        mut done: impl FnMut(&mut Qemu) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut next_send = Instant::now() + Duration::from_millis(500);
        let mut attempts = 0;
        loop {
            if done(self) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                bail!(self.failure(&format!(
                    "typed {text:?} {attempts} times over {timeout:?}; nothing happened"
                )));
            }
            if now >= next_send && !self.has_exited() {
                self.send(text)?;
                attempts += 1;
                next_send = now + Duration::from_secs(10);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for QEMU to exit and requires a clean power-off by the guest: the kernel's
    /// `reboot: Power down`, QEMU's trace of a guest shutdown, exit status 0, and no panic,
    /// reboot or watchdog line (QEMU exits 0 on those too under `-no-reboot`).
    pub fn wait_power_off(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let status = self.wait_exit(timeout)?;
        let log = self.transcript();
        if let Some(bad) = NOT_A_POWER_OFF.iter().find(|b| log.contains(*b)) {
            bail!(self.failure(&format!("not a clean power-off: {bad:?} in the log")));
        }
        for want in [POWER_DOWN, GUEST_SHUTDOWN] {
            if !log.contains(want) {
                bail!(self.failure(&format!("not a clean power-off: no {want:?}")));
            }
        }
        if !status.success() {
            bail!(self.failure(&format!("QEMU exited with {status}")));
        }
        Ok(())
    }

    /// Waits for QEMU to exit by itself (guest power-off, or reboot with `-no-reboot`).
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                // Let the readers drain what QEMU wrote last.
                let (mutex, cond) = &*self.log;
                let log = mutex.lock().unwrap_or_else(|e| e.into_inner());
                let _ = cond.wait_timeout_while(log, Duration::from_secs(2), |l| !l.closed);
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(self.failure(&format!("QEMU did not exit within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
