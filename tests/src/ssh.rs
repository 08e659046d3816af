//! Logging in to a device the way a person would: a key made with `ssh-keygen`, then the
//! host's OpenSSH client through the forwarded port, retried until the device's SSH server
//! is up.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

/// A test's SSH key pair.
#[derive(Debug, Clone)]
pub struct SshKey {
    /// The private key file (mode 0600, no passphrase).
    pub private: PathBuf,
    /// The public key, one OpenSSH line (`ssh-ed25519 AAAA... comment`).
    pub public: String,
}

impl SshKey {
    /// Makes (or reuses) an Ed25519 key at `dir/id_ed25519` with `comment`.
    pub fn generate(dir: &Path, comment: &str) -> anyhow::Result<SshKey> {
        std::fs::create_dir_all(dir)?;
        let private = dir.join("id_ed25519");
        let public_path = dir.join("id_ed25519.pub");
        if !(private.is_file() && public_path.is_file()) {
            let _ = std::fs::remove_file(&private);
            let _ = std::fs::remove_file(&public_path);
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                .arg(&private)
                .stdin(Stdio::null())
                .output()
                .context("running ssh-keygen: install openssh-client (cross/setup.sh)")?;
            ensure!(
                out.status.success(),
                "ssh-keygen failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let public = std::fs::read_to_string(&public_path)
            .with_context(|| format!("reading {}", public_path.display()))?
            .trim()
            .to_string();
        Ok(SshKey { private, public })
    }
}

/// The options that make the client non-interactive and blind to host keys (each test
/// device has a new one; the fingerprint check is [`host_fingerprints`]).
fn client(key: &SshKey, port: u16) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.args(["-F", "/dev/null", "-i"])
        .arg(&key.private)
        .args(["-p", &port.to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "ConnectTimeout=15",
            "-o",
            "LogLevel=ERROR",
        ])
        .stdin(Stdio::null());
    cmd
}

/// Runs `command` as `user` on the device behind `127.0.0.1:port` once.
pub fn ssh_once(key: &SshKey, port: u16, user: &str, command: &str) -> anyhow::Result<Output> {
    client(key, port)
        .arg(format!("{user}@127.0.0.1"))
        .arg(command)
        .output()
        .context("running ssh: install openssh-client (cross/setup.sh)")
}

/// Runs `command` as `user`, retrying every few seconds until it succeeds (the device may
/// still be booting) or `timeout` passes; returns its stdout. The error has every attempt's
/// stderr.
pub fn ssh_run(
    key: &SshKey,
    port: u16,
    user: &str,
    command: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    let mut tries = Vec::new();
    loop {
        let started = Instant::now();
        let out = ssh_once(key, port, user, command)?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        tries.push(format!(
            "({}) {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        if Instant::now() >= deadline {
            bail!(
                "ssh {user}@127.0.0.1 -p {port} {command:?} did not succeed within {timeout:?}; {} attempts:\n{}",
                tries.len(),
                tries.join("\n")
            );
        }
        // A refused connection returns at once; do not spin.
        if started.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_secs(3));
        }
    }
}

/// The SHA256 fingerprints (`SHA256:...`) of the host keys the SSH server on
/// `127.0.0.1:port` offers, via `ssh-keyscan` and `ssh-keygen -l`.
pub fn host_fingerprints(port: u16) -> anyhow::Result<Vec<String>> {
    let scan = Command::new("ssh-keyscan")
        // One key type, one connection: all of keyscan's parallel connections come from
        // QEMU's one gateway address, and dropbear drops those past 5 unauthenticated per
        // address, which lost the ed25519 one at random.
        .args([
            "-T",
            "15",
            "-t",
            "ed25519",
            "-p",
            &port.to_string(),
            "127.0.0.1",
        ])
        .stdin(Stdio::null())
        .output()
        .context("running ssh-keyscan")?;
    let keys = String::from_utf8_lossy(&scan.stdout).into_owned();
    ensure!(
        keys.lines()
            .any(|l| !l.starts_with('#') && !l.trim().is_empty()),
        "ssh-keyscan found no host key on port {port}: {}",
        String::from_utf8_lossy(&scan.stderr)
    );
    let mut child = Command::new("ssh-keygen")
        .args(["-l", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("running ssh-keygen -l")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("ssh-keygen stdin")?;
        stdin.write_all(keys.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with("SHA256:"))
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_an_ed25519_line_with_its_comment_and_is_reused() {
        let dir = crate::scratch_dir("ssh-key-unit").unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let key = SshKey::generate(&dir, "e2e@coreforge").unwrap();
        assert!(key.public.starts_with("ssh-ed25519 AAAA"), "{}", key.public);
        assert!(key.public.ends_with(" e2e@coreforge"), "{}", key.public);
        let again = SshKey::generate(&dir, "e2e@coreforge").unwrap();
        assert_eq!(again.public, key.public);
    }

    #[test]
    fn nothing_listening_fails_with_every_attempt() {
        let dir = crate::scratch_dir("ssh-key-unit-2").unwrap();
        let key = SshKey::generate(&dir, "e2e@coreforge").unwrap();
        let port = crate::serial::free_port().unwrap();
        let err = ssh_run(&key, port, "nobody", "id", Duration::from_secs(1)).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("did not succeed") && text.contains("refused"),
            "{text}"
        );
    }
}
