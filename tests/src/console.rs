//! The one QEMU output reader of the harness: both [`crate::Qemu`] (a kernel and initramfs
//! booted directly) and [`crate::serial::Device`] (a device booted from its disk) copy
//! QEMU's stdout (the serial console) and stderr into a [`SharedLog`] with it. Also the
//! shared check every agent boot ends with: no `error:` line the test did not expect.

use std::io::Read;
use std::process::Child;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::anyhow;

/// What QEMU printed in one run.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// Everything, in arrival order (`\r` removed, invalid UTF-8 replaced); QEMU's own
    /// stderr lines are prefixed `qemu stderr: `.
    pub(crate) text: String,
    /// The console's complete lines with the time since QEMU started when their newline
    /// arrived.
    pub(crate) lines: Vec<(Duration, String)>,
    partial: String,
    /// True once the console (stdout) has ended: nothing more will arrive.
    pub(crate) closed: bool,
}

/// A log its reader threads fill and the test waits on.
pub(crate) type SharedLog = Arc<(Mutex<Log>, Condvar)>;

/// Locks `log`, whether or not a reader panicked while holding it.
pub(crate) fn lock(log: &SharedLog) -> MutexGuard<'_, Log> {
    log.0.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts reading `child`'s stdout and stderr into a new log headed by the command line.
pub(crate) fn attach(
    child: &mut Child,
    program: &str,
    args: &[std::ffi::OsString],
    started: Instant,
) -> anyhow::Result<SharedLog> {
    let log = SharedLog::default();
    let mut header = format!("$ {program}");
    for a in args {
        header.push(' ');
        header.push_str(&a.to_string_lossy());
    }
    lock(&log).text.push_str(&(header + "\n"));
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
    spawn_reader(stdout, log.clone(), started, "");
    spawn_reader(stderr, log.clone(), started, "qemu stderr: ");
    Ok(log)
}

/// Copies a QEMU output stream into the log, timing each console line; `prefix` marks
/// QEMU's own stderr.
fn spawn_reader(
    mut from: impl Read + Send + 'static,
    log: SharedLog,
    started: Instant,
    prefix: &'static str,
) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let n = from.read(&mut buf).unwrap_or(0);
            let (mutex, cond) = &*log;
            let mut l = mutex.lock().unwrap_or_else(|e| e.into_inner());
            if n == 0 {
                // The console is stdout: once it ends, nothing more will match.
                l.closed |= prefix.is_empty();
                cond.notify_all();
                return;
            }
            let chunk = String::from_utf8_lossy(&buf[..n]).replace('\r', "");
            if prefix.is_empty() {
                l.text.push_str(&chunk);
                for c in chunk.chars() {
                    if c == '\n' {
                        let line = std::mem::take(&mut l.partial);
                        l.lines.push((started.elapsed(), line));
                    } else {
                        l.partial.push(c);
                    }
                }
            } else {
                for line in chunk.lines() {
                    l.text.push_str(&format!("{prefix}{line}\n"));
                }
            }
            cond.notify_all();
        }
    });
}

/// The agent's error messages in `transcript` that contain none of `expected`, each once.
///
/// The agent prints an error as `error: TEXT` on its consoles and records it in the kernel
/// log, whose echo (`[  1.234567] coreforge-agent: TEXT`, no `error:`) may share the serial
/// console; a message printed on several consoles, or again after a retry, counts once.
pub fn unexpected_errors(transcript: &str, expected: &[&str]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for line in transcript.lines() {
        let line = line.trim_start();
        // An agent line glued after a kernel echo's prefix still counts.
        let line = match line.find("coreforge-agent: ") {
            Some(at) if line.starts_with('[') => &line[at + "coreforge-agent: ".len()..],
            _ => line,
        };
        let Some(message) = line.strip_prefix("error:") else {
            continue;
        };
        let message = message.trim().to_string();
        if expected.iter().any(|e| message.contains(e)) || found.contains(&message) {
            continue;
        }
        found.push(message);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_counts_once_and_expected_ones_not_at_all() {
        let log = "[    1.000000] coreforge-agent: cannot mount the seed\n\
                   error: cannot mount the seed\n\
                   loaded module vfat\n\
                   error: cannot mount the seed\n\
                   [    2.000000] coreforge-agent: error: from a glued echo\n\
                   error: console-conf.json was refused: mallory\n\
                   warning: error: not an error line\n";
        assert_eq!(
            unexpected_errors(log, &["was refused"]),
            ["cannot mount the seed", "from a glued echo"]
        );
        assert!(unexpected_errors(log, &["cannot mount", "glued", "refused"]).is_empty());
        assert!(unexpected_errors("no errors here\n", &[]).is_empty());
    }
}
