//! The consoles: /dev/console at first, then every device named by `console=`.
//!
//! All output goes to every console, one `write` per line so lines from the kernel and from
//! us do not interleave mid-line. Input is read from every console at once with `poll`.
//! The set is global because the logger and the panic hook must reach it from anywhere.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::OFlags;
use rustix::termios::{
    tcdrain, tcflush, tcgetattr, tcsetattr, ControlModes, InputModes, LocalModes, OptionalActions,
    OutputModes, QueueSelector, SpecialCodeIndex, Termios,
};

use crate::cmdline::{ConsoleArg, Parity, SerialOptions};

/// Speed for a UART whose `console=` key gave none.
pub const DEFAULT_BAUD: u32 = 115_200;

/// An open console device.
#[derive(Debug)]
pub struct Console {
    /// Device path, for messages.
    pub path: String,
    file: File,
}

static CONSOLES: RwLock<Vec<Arc<Console>>> = RwLock::new(Vec::new());

/// What was written before the `console=` devices were opened (only /dev/console saw it),
/// to be repeated on the others; `None` once they are open.
static EARLY: Mutex<Option<String>> = Mutex::new(Some(String::new()));

/// Most we keep of the early output.
const EARLY_MAX: usize = 16 * 1024;

/// Points stdin/stdout/stderr at /dev/console and makes it the only console.
///
/// Errors are ignored: with no /dev/console there is nowhere to report them.
pub fn init_early() {
    let Ok(file) = open_rw("/dev/console") else {
        return;
    };
    let _ = rustix::stdio::dup2_stdin(&file);
    let _ = rustix::stdio::dup2_stdout(&file);
    let _ = rustix::stdio::dup2_stderr(&file);
    replace(vec![Arc::new(Console {
        path: "/dev/console".into(),
        file,
    })]);
}

/// Opens and configures the consoles named on the command line and makes them the set.
///
/// Returns one message per console that could not be used; if none could, the early
/// /dev/console stays.
pub fn open_all(args: &[ConsoleArg]) -> Vec<String> {
    let mut opened = Vec::new();
    let mut problems = Vec::new();
    for arg in args {
        let path = format!("/dev/{}", arg.device);
        match open_rw(&path) {
            Ok(file) => {
                if let Err(e) = configure(&file, kind(&arg.device), arg.serial) {
                    problems.push(format!("cannot set line settings of {path}: {e}"));
                }
                opened.push(Arc::new(Console { path, file }));
            }
            Err(e) => problems.push(format!("cannot open console {path}: {e}")),
        }
    }
    let early = take_early();
    if opened.is_empty() {
        // Only /dev/console: which device it is we do not know, so keep its line
        // settings, but the prompt still needs keys as they are typed.
        for console in all() {
            let _ = configure(&console.file, Kind::Unknown, None);
        }
    } else {
        // /sys/class/tty/console/active lists the kernel's consoles, /dev/console last.
        let active = std::fs::read_to_string("/sys/class/tty/console/active").unwrap_or_default();
        let main = active.split_whitespace().last().unwrap_or_default();
        for console in &opened {
            if console.path.strip_prefix("/dev/") != Some(main) {
                let _ = (&console.file).write_all(early.as_bytes());
            }
        }
        replace(opened);
    }
    problems
}

fn open_rw(path: &str) -> io::Result<File> {
    // O_NOCTTY: PID 1 must not get a controlling terminal it could lose (hang-up).
    // O_NONBLOCK only for the open itself, so a modem-control UART cannot block us; I/O is
    // blocking again afterwards and reads happen only after poll says there is input.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags((OFlags::NOCTTY | OFlags::NONBLOCK).bits() as i32)
        .open(path)?;
    let flags = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)?;
    Ok(file)
}

/// Which kind of terminal a device name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A virtual terminal on the framebuffer (`tty1`): no line speed.
    VirtualTerminal,
    /// A hypervisor console (`hvc0`): no line speed.
    Hypervisor,
    /// A serial port (`ttyS0`, `ttyAMA0`, `ttymxc1`, `ttyUSB0`...).
    Uart,
    /// /dev/console when no `console=` names the device behind it: line settings untouched.
    Unknown,
}

/// Tells a VT, an hvc console and a UART apart by name, as the kernel names them.
pub fn kind(device: &str) -> Kind {
    match device.strip_prefix("tty") {
        Some(rest) if rest.bytes().all(|b| b.is_ascii_digit()) => Kind::VirtualTerminal,
        _ if device.starts_with("hvc") => Kind::Hypervisor,
        _ => Kind::Uart,
    }
}

/// Raw-ish input (bytes as typed, no echo, no signals) and `\n` to `\r\n` on output;
/// for UARTs also the line speed and framing (8N1 unless the command line says otherwise).
fn configure(file: &File, kind: Kind, serial: Option<SerialOptions>) -> io::Result<()> {
    let mut t = match tcgetattr(file) {
        Ok(t) => t,
        Err(rustix::io::Errno::NOTTY) => return Ok(()), // not a terminal: nothing to set
        Err(e) => return Err(e.into()),
    };
    apply(&mut t, kind, serial)?;
    tcsetattr(file, OptionalActions::Drain, &t)?;
    Ok(())
}

/// The settings [`configure`] makes, on a copy of a terminal's settings.
fn apply(t: &mut Termios, kind: Kind, serial: Option<SerialOptions>) -> io::Result<()> {
    t.input_modes -= InputModes::IGNBRK
        | InputModes::BRKINT
        | InputModes::PARMRK
        | InputModes::ISTRIP
        | InputModes::INLCR
        | InputModes::IGNCR
        | InputModes::ICRNL
        | InputModes::IXON;
    t.output_modes |= OutputModes::OPOST | OutputModes::ONLCR;
    t.local_modes -= LocalModes::ECHO
        | LocalModes::ECHONL
        | LocalModes::ICANON
        | LocalModes::ISIG
        | LocalModes::IEXTEN;
    t.special_codes[SpecialCodeIndex::VMIN] = 1;
    t.special_codes[SpecialCodeIndex::VTIME] = 0;
    if kind == Kind::Uart {
        let serial = serial.unwrap_or(SerialOptions {
            baud: DEFAULT_BAUD,
            parity: Parity::None,
            bits: 8,
            rtscts: false,
        });
        t.control_modes -= ControlModes::CSIZE
            | ControlModes::PARENB
            | ControlModes::PARODD
            | ControlModes::CSTOPB
            | ControlModes::CRTSCTS;
        t.control_modes |= ControlModes::CREAD
            | ControlModes::CLOCAL
            | match serial.bits {
                5 => ControlModes::CS5,
                6 => ControlModes::CS6,
                7 => ControlModes::CS7,
                _ => ControlModes::CS8,
            };
        match serial.parity {
            Parity::None => {}
            Parity::Even => t.control_modes |= ControlModes::PARENB,
            Parity::Odd => t.control_modes |= ControlModes::PARENB | ControlModes::PARODD,
        }
        if serial.rtscts {
            t.control_modes |= ControlModes::CRTSCTS;
        }
        // Setting the speed it already has would still change c_cflag (rustix also sets the
        // input baud bits), and serial drivers reprogram the UART on any c_cflag change,
        // which can put a garbage byte on the line.
        if t.output_speed() != serial.baud || t.input_speed() != serial.baud {
            t.set_speed(serial.baud)?;
        }
    }
    Ok(())
}

/// The early output, ending the recording of it.
fn take_early() -> String {
    EARLY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .unwrap_or_default()
}

fn replace(consoles: Vec<Arc<Console>>) {
    *CONSOLES.write().unwrap_or_else(PoisonError::into_inner) = consoles;
}

/// The current consoles; empty only if even /dev/console could not be opened.
pub fn all() -> Vec<Arc<Console>> {
    // try_read: the panic hook may run while this thread holds the write lock.
    match CONSOLES.try_read() {
        Ok(set) => set.clone(),
        Err(TryLockError::Poisoned(set)) => set.into_inner().clone(),
        Err(TryLockError::WouldBlock) => Vec::new(),
    }
}

/// Writes `text` to every console, one `write` each; falls back to stderr with no consoles.
pub fn write_all(text: &str) {
    if let Ok(mut early) = EARLY.try_lock() {
        if let Some(early) = early.as_mut().filter(|e| e.len() + text.len() <= EARLY_MAX) {
            early.push_str(text);
        }
    }
    let consoles = all();
    if consoles.is_empty() {
        let _ = io::stderr().write_all(text.as_bytes());
    }
    for console in consoles {
        let _ = (&console.file).write_all(text.as_bytes());
    }
}

impl Console {
    /// Writes `text` to this console alone, in one `write`; an error means it hung up or failed.
    pub fn write_text(&self, text: &str) -> io::Result<()> {
        (&self.file).write_all(text.as_bytes())
    }

    /// Drops input typed on this console so far.
    pub fn discard_input(&self) {
        let _ = tcflush(&self.file, QueueSelector::IFlush);
    }

    /// A console over an already open terminal (tests use a host pty).
    #[cfg(test)]
    pub fn from_file(path: &str, file: File) -> Console {
        Console {
            path: path.into(),
            file,
        }
    }
}

/// What [`wait_input`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Console `.0` sent `.1` bytes, now at the start of the buffer.
    Read(usize, usize),
    /// Console `.0` hung up (cable, pty closed), reached end of file or failed.
    Gone(usize),
    /// Nothing arrived in time.
    Timeout,
}

/// Waits up to `timeout` (forever with `None`) for input on the consoles whose indices are in
/// `from`, then reads what the first ready one sent into `buf`.
pub fn wait_input(
    consoles: &[Arc<Console>],
    from: &[usize],
    timeout: Option<Duration>,
    buf: &mut [u8],
) -> Input {
    let deadline = timeout.map(|t| Instant::now() + t);
    let from: Vec<usize> = from
        .iter()
        .copied()
        .filter(|&i| i < consoles.len())
        .collect();
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if from.is_empty() {
            // Nothing to wait on: only the clock can end the wait.
            match left {
                Some(left) => {
                    std::thread::sleep(left);
                    return Input::Timeout;
                }
                None => std::thread::sleep(Duration::from_secs(3600)),
            }
            continue;
        }
        let timespec = left.and_then(|l| Timespec::try_from(l).ok());
        let mut fds: Vec<PollFd<'_>> = from
            .iter()
            .map(|&i| PollFd::new(&consoles[i].file, PollFlags::IN))
            .collect();
        match poll(&mut fds, timespec.as_ref()) {
            Ok(0) if deadline.is_some_and(|d| Instant::now() >= d) => return Input::Timeout,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
        let ready = from
            .iter()
            .zip(&fds)
            .find(|(_, fd)| !fd.revents().is_empty());
        let Some((&i, fd)) = ready else {
            continue;
        };
        // Data that arrived before a hang-up is still read; the hang-up shows as EOF or EIO.
        if !fd.revents().contains(PollFlags::IN) {
            return Input::Gone(i);
        }
        drop(fds);
        match (&consoles[i].file).read(buf) {
            Ok(0) => return Input::Gone(i),
            Ok(n) => return Input::Read(i, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Input::Gone(i),
        }
    }
}

/// Waits until every console has sent what we wrote (before reboot or power-off).
pub fn drain_all() {
    for console in all() {
        let _ = tcdrain(&console.file);
    }
}

/// Drops input typed before the prompt, so stray bytes cannot answer it.
pub fn discard_input() {
    for console in all() {
        let _ = tcflush(&console.file, QueueSelector::IFlush);
    }
}

/// Feeds bytes from all consoles to `on_byte` (with the console's index) until it returns
/// `Some`. Consoles that hang up or fail are left out; with none left this sleeps forever,
/// as PID 1 has nothing better to do.
pub fn read_until<T>(mut on_byte: impl FnMut(usize, u8) -> Option<T>) -> T {
    let consoles = all();
    let mut live: Vec<bool> = vec![true; consoles.len()];
    let mut buf = [0u8; 64];
    loop {
        let idx: Vec<usize> = (0..consoles.len()).filter(|&i| live[i]).collect();
        if idx.is_empty() {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        let mut fds: Vec<PollFd<'_>> = idx
            .iter()
            .map(|&i| PollFd::new(&consoles[i].file, PollFlags::IN))
            .collect();
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => {
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        }
        let ready: Vec<(usize, PollFlags)> = idx
            .iter()
            .zip(&fds)
            .map(|(&i, fd)| (i, fd.revents()))
            .collect();
        drop(fds);
        for (i, revents) in ready {
            if revents.contains(PollFlags::IN) {
                match (&consoles[i].file).read(&mut buf) {
                    Ok(0) => live[i] = false,
                    Ok(n) => {
                        for &b in &buf[..n] {
                            if let Some(done) = on_byte(i, b) {
                                return done;
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => live[i] = false,
                }
            } else if revents.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
                live[i] = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};

    /// A host pseudo-terminal: (controller side, device side as the agent opens it).
    fn pty() -> (File, File) {
        let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&controller).unwrap();
        unlockpt(&controller).unwrap();
        let name = ptsname(&controller, Vec::new()).unwrap();
        let device = open_rw(name.to_str().unwrap()).unwrap();
        (File::from(controller), device)
    }

    fn settings(file: &File) -> Termios {
        tcgetattr(file).unwrap()
    }

    #[test]
    fn uart_gets_raw_input_and_line_settings() {
        let (_controller, device) = pty();
        configure(&device, Kind::Uart, SerialOptions::parse("9600")).unwrap();
        let t = settings(&device);
        assert!(!t
            .local_modes
            .intersects(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG));
        assert!(!t
            .input_modes
            .intersects(InputModes::ICRNL | InputModes::IXON));
        assert!(t
            .output_modes
            .contains(OutputModes::OPOST | OutputModes::ONLCR));
        assert!(t
            .control_modes
            .contains(ControlModes::CLOCAL | ControlModes::CREAD));
        assert_eq!(t.special_codes[SpecialCodeIndex::VMIN], 1);
        assert_eq!(t.output_speed(), 9600);
    }

    #[test]
    fn uart_framing_from_the_command_line() {
        // A pty forces 8 bits without parity, so check the settings before they are set.
        let (_controller, device) = pty();
        let mut t = settings(&device);
        apply(&mut t, Kind::Uart, SerialOptions::parse("9600o7r")).unwrap();
        assert_eq!(t.control_modes & ControlModes::CSIZE, ControlModes::CS7);
        assert!(t
            .control_modes
            .contains(ControlModes::PARENB | ControlModes::PARODD | ControlModes::CRTSCTS));
        apply(&mut t, Kind::Uart, SerialOptions::parse("19200e")).unwrap();
        assert_eq!(t.control_modes & ControlModes::CSIZE, ControlModes::CS8);
        assert!(t.control_modes.contains(ControlModes::PARENB));
        assert!(!t
            .control_modes
            .intersects(ControlModes::PARODD | ControlModes::CRTSCTS));
        assert_eq!(t.output_speed(), 19200);
    }

    #[test]
    fn same_speed_leaves_the_line_bits_alone() {
        let (_controller, device) = pty();
        configure(&device, Kind::Uart, None).unwrap();
        let before = settings(&device);
        let mut t = before.clone();
        apply(&mut t, Kind::Uart, SerialOptions::parse("115200n8")).unwrap();
        assert_eq!(t.control_modes, before.control_modes);
    }

    #[test]
    fn uart_defaults_to_115200_8n1() {
        let (_controller, device) = pty();
        configure(&device, kind("ttyAMA0"), None).unwrap();
        let t = settings(&device);
        assert_eq!(t.output_speed(), DEFAULT_BAUD);
        assert_eq!(t.control_modes & ControlModes::CSIZE, ControlModes::CS8);
        assert!(!t
            .control_modes
            .intersects(ControlModes::PARENB | ControlModes::CSTOPB));
    }

    #[test]
    fn virtual_terminal_keeps_its_speed() {
        let (_controller, device) = pty();
        let before = settings(&device).output_speed();
        let serial = SerialOptions::parse("9600").unwrap();
        configure(&device, kind("tty1"), Some(serial)).unwrap();
        let t = settings(&device);
        assert_eq!(t.output_speed(), before);
        assert!(!t.local_modes.contains(LocalModes::ICANON));
    }

    #[test]
    fn unknown_console_gets_raw_input_but_keeps_its_speed() {
        let (_controller, device) = pty();
        let mut t = settings(&device);
        t.set_speed(4800).unwrap();
        tcsetattr(&device, OptionalActions::Now, &t).unwrap();
        configure(&device, Kind::Unknown, None).unwrap();
        let t = settings(&device);
        assert_eq!(t.output_speed(), 4800);
        assert!(!t.local_modes.contains(LocalModes::ICANON));
    }

    #[test]
    fn not_a_terminal_is_left_alone() {
        let file = File::open("/dev/null").unwrap();
        assert!(configure(&file, Kind::Uart, None).is_ok());
    }

    #[test]
    fn output_and_prompt_input_through_a_pty() {
        // The only test that installs consoles in the global set.
        let (mut controller, device) = pty();
        configure(&device, Kind::Uart, None).unwrap();
        write_all("early\n");
        assert_eq!(take_early(), "early\n");
        write_all("not recorded\n");
        assert_eq!(take_early(), "");
        replace(vec![Arc::new(Console {
            path: "pty".into(),
            file: device,
        })]);
        write_all("line one\n");
        let mut out = [0u8; 10];
        controller.read_exact(&mut out).unwrap();
        assert_eq!(&out, b"line one\r\n");
        // a cursor position report ending in R, noise, then p
        controller.write_all(b"\x1b[24;80R\x00zz\xffp").unwrap();
        let mut keys = crate::prompt::Keys::default();
        let choice = read_until(|i, b| {
            assert_eq!(i, 0);
            keys.feed(b)
        });
        assert_eq!(choice, crate::prompt::Choice::PowerOff);
        replace(Vec::new());
    }

    #[test]
    fn wait_input_reads_times_out_and_sees_a_hang_up() {
        let (mut controller, device) = pty();
        configure(&device, Kind::Uart, None).unwrap();
        let (_other, quiet) = pty();
        let consoles = vec![
            Arc::new(Console::from_file("quiet", quiet)),
            Arc::new(Console::from_file("pty", device)),
        ];
        let mut buf = [0u8; 16];
        let short = Some(Duration::from_millis(50));
        let start = Instant::now();
        assert_eq!(
            wait_input(&consoles, &[0, 1], short, &mut buf),
            Input::Timeout
        );
        assert!(start.elapsed() >= Duration::from_millis(50));
        controller.write_all(b"hi").unwrap();
        assert_eq!(
            wait_input(&consoles, &[0, 1, 7], None, &mut buf),
            Input::Read(1, 2)
        );
        assert_eq!(&buf[..2], b"hi");
        // a console left out of `from` is not read
        controller.write_all(b"x").unwrap();
        assert_eq!(wait_input(&consoles, &[0], short, &mut buf), Input::Timeout);
        assert_eq!(
            wait_input(&consoles, &[1], short, &mut buf),
            Input::Read(1, 1)
        );
        consoles[1].write_text("out\n").unwrap();
        let mut out = [0u8; 5];
        controller.read_exact(&mut out).unwrap();
        assert_eq!(&out, b"out\r\n");
        drop(controller);
        assert_eq!(
            wait_input(&consoles, &[0, 1], None, &mut buf),
            Input::Gone(1)
        );
        assert!(consoles[1].write_text("gone\n").is_err());
        // nothing to wait on: only the clock ends the wait
        assert_eq!(wait_input(&consoles, &[], short, &mut buf), Input::Timeout);
    }

    #[test]
    fn kinds() {
        assert_eq!(kind("tty1"), Kind::VirtualTerminal);
        assert_eq!(kind("tty"), Kind::VirtualTerminal);
        assert_eq!(kind("hvc0"), Kind::Hypervisor);
        assert_eq!(kind("ttyS0"), Kind::Uart);
        assert_eq!(kind("ttyAMA0"), Kind::Uart);
        assert_eq!(kind("ttymxc1"), Kind::Uart);
    }
}
