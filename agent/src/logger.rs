//! Logging to every console and to the kernel log (/dev/kmsg) with kernel priorities.
//!
//! Each message is formatted once and written with a single `write` per destination, so a
//! line is never split (rsinit's `kmsg.rs` is the model). Consoles get the plain text the
//! QEMU tests look for; kmsg gets `<priority>coreforge-agent: text`.
//!
//! Every message goes to the kernel log (`dmesg`, later `journalctl -k`); the consoles get
//! information, warnings and errors, and detail (debug) only with `coreforge.debug`. Each
//! message appears once on a console: the kernel's own echo of our records is turned off
//! by [`quiet_kernel_echo`].

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::console;

/// Name in kernel log records.
const TAG: &str = "coreforge-agent";

/// Longest kmsg record we write; the kernel refuses longer writes (LOG_LINE_MAX).
const KMSG_MAX: usize = 900;

/// syslog facility "user" (1), shifted into place as /dev/kmsg expects.
const FACILITY_USER: u8 = 1 << 3;

static KMSG: OnceLock<File> = OnceLock::new();
/// Debug messages go to the consoles too (`coreforge.debug`).
static DEBUG_ON_CONSOLES: AtomicBool = AtomicBool::new(false);
static LOGGER: Logger = Logger;

#[derive(Debug)]
struct Logger;

/// Installs the logger; call first thing, before any message.
pub fn install() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Debug);
}

/// Shows debug messages on the consoles too (`coreforge.debug`).
pub fn set_debug(debug: bool) {
    DEBUG_ON_CONSOLES.store(debug, Ordering::Relaxed);
}

/// The kernel's console log level that keeps its echo of our records (priority 3 and up:
/// errors, warnings, information, detail) off the consoles, where we print each line
/// ourselves; critical kernel messages, panics and "reboot: Power down" still show.
pub const QUIET_CONSOLE_LEVEL: &str = "3\n";

/// Turns off the kernel's echo of our kmsg records on the consoles (see
/// [`QUIET_CONSOLE_LEVEL`]), unless `keep` (with `coreforge.debug`, or when the kernel
/// command line chose a level itself).
pub fn quiet_kernel_echo(keep: bool) -> std::io::Result<()> {
    if keep {
        return Ok(());
    }
    // One number sets only the console level, the first of printk's four.
    std::fs::write("/proc/sys/kernel/printk", QUIET_CONSOLE_LEVEL)
}

/// Whether a message of `level` goes to the consoles.
fn on_consoles(level: Level, debug: bool) -> bool {
    level <= Level::Info || debug
}

/// Starts copying messages to /dev/kmsg (once devtmpfs and proc are mounted).
pub fn open_kmsg() -> std::io::Result<()> {
    if KMSG.get().is_none() {
        // By default the kernel keeps only 10 writes per 5 s from a /dev/kmsg user and drops
        // the rest; PID 1 reports more than that at boot. "on" keeps every record; if the
        // command line fixed the setting (printk.devkmsg=), the write fails and we keep it.
        let _ = std::fs::write("/proc/sys/kernel/printk_devkmsg", "on\n");
        let kmsg = OpenOptions::new().write(true).open("/dev/kmsg")?;
        let _ = KMSG.set(kmsg);
    }
    Ok(())
}

/// A message as it appears on the consoles: a prefix for warnings and errors.
pub fn console_line(level: Level, text: &str) -> String {
    let prefix = match level {
        Level::Error => "error: ",
        Level::Warn => "warning: ",
        Level::Info => "",
        Level::Debug | Level::Trace => "debug: ",
    };
    format!("{prefix}{text}\n")
}

/// The kernel priority of a level (syslog severities).
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        // 5 (notice) has no `log` level
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// A message as one /dev/kmsg record: priority, tag, text on one line, bounded length.
pub fn kmsg_record(level: Level, text: &str) -> String {
    let mut record = format!("<{}>{TAG}: ", FACILITY_USER | priority(level));
    for c in text.chars() {
        if record.len() + c.len_utf8() > KMSG_MAX {
            break;
        }
        // one record per message: newlines would start records without our priority
        record.push(if c == '\n' { ' ' } else { c });
    }
    record.push('\n');
    record
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string();
        // Unless the command line says `quiet`, the kernel echoes kmsg records on its
        // consoles, synchronously and bypassing the tty buffer. So: record first (its echo
        // is out when the write returns), then our line, then wait until the UARTs have
        // sent it, so the next echo cannot land in the middle of our line.
        if let Some(mut kmsg) = KMSG.get() {
            let _ = kmsg.write_all(kmsg_record(record.level(), &text).as_bytes());
        }
        if on_consoles(record.level(), DEBUG_ON_CONSOLES.load(Ordering::Relaxed)) {
            console::write_all(&console_line(record.level(), &text));
            console::drain_all();
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines() {
        assert_eq!(
            console_line(Level::Info, "loaded module vfat"),
            "loaded module vfat\n"
        );
        assert_eq!(console_line(Level::Error, "a — b"), "error: a — b\n");
        assert_eq!(console_line(Level::Warn, "w"), "warning: w\n");
        assert_eq!(console_line(Level::Debug, "d"), "debug: d\n");
    }

    #[test]
    fn detail_reaches_the_consoles_only_with_debug() {
        for level in [Level::Error, Level::Warn, Level::Info] {
            assert!(on_consoles(level, false), "{level}");
        }
        assert!(!on_consoles(Level::Debug, false));
        assert!(on_consoles(Level::Debug, true));
        // Below every priority we write (3 errors .. 7 detail): none is echoed.
        let level: u8 = QUIET_CONSOLE_LEVEL.trim().parse().unwrap();
        assert!(level <= priority(Level::Error));
    }

    #[test]
    fn kmsg_priorities() {
        assert_eq!(kmsg_record(Level::Error, "x"), "<11>coreforge-agent: x\n");
        assert_eq!(kmsg_record(Level::Warn, "x"), "<12>coreforge-agent: x\n");
        assert_eq!(kmsg_record(Level::Info, "x"), "<14>coreforge-agent: x\n");
        assert_eq!(kmsg_record(Level::Debug, "x"), "<15>coreforge-agent: x\n");
    }

    #[test]
    fn kmsg_record_is_one_bounded_line() {
        let r = kmsg_record(Level::Info, "a\nb");
        assert_eq!(r, "<14>coreforge-agent: a b\n");
        let long = "é".repeat(2000);
        let r = kmsg_record(Level::Info, &long);
        assert!(r.len() <= KMSG_MAX + 1);
        assert!(r.ends_with("é\n"));
        assert_eq!(r.matches('\n').count(), 1);
    }
}
