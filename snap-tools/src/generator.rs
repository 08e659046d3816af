//! `snapd-generator NORMAL [EARLY LATE]`: run by systemd at boot (and on daemon-reload)
//! before units load. For each mounted snap it makes what snapd makes when it installs one:
//!
//! - `/var/snap/<name>/<rev>` and `/var/snap/<name>/common`;
//! - `/snap/bin/<snap>.<app>` (or `/snap/bin/<snap>` for the app named as the snap), links to
//!   `/usr/bin/snap` (wrappers/binaries.go); stale links to it are removed;
//! - for each daemon, `snap.<snap>.<app>.service` in NORMAL, laid out as
//!   wrappers/internal/service_unit_gen.go writes it, and wanted by `multi-user.target`
//!   unless `install-mode: disable`.
//!
//! The root is the writable overlay by then. Everything is idempotent; one bad snap is
//! logged (stderr, which systemd sends to the kernel log) and the others still set up.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::ExitCode;

use coreforge_snap::{App, SnapYaml};

use crate::root::{self, Installed, Root};

/// What every launcher links to.
pub const SNAP_BINARY: &str = "/usr/bin/snap";

/// systemd's path escaping (`systemd-escape --path`), as snapd's `EscapeUnitNamePath`:
/// `/snap/hello-world/27` is `snap-hello\x2dworld-27`.
pub fn escape_path(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return "-".into();
    }
    let joined = parts.join("/");
    let mut out = String::new();
    for (i, b) in joined.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b":_.".contains(&b) => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// The unit name of a snap's service: snapd's security tag plus `.service`.
pub fn service_name(snap: &str, app: &str) -> String {
    format!("snap.{snap}.{app}.service")
}

/// What `snap run` is given for an app: `<snap>` for the app named as the snap.
fn launcher_target(snap: &str, app: &str) -> String {
    if snap == app {
        snap.to_owned()
    } else {
        format!("{snap}.{app}")
    }
}

/// The unit file for daemon `app` of `yaml` at revision `rev`, as snapd writes it for a
/// system daemon, minus what has no meaning here (`snapd.apparmor.service`, quota slices,
/// interface snippets, the snapd snap's mount).
pub fn unit(yaml: &SnapYaml, rev: &str, app: &App) -> String {
    let snap = &yaml.name;
    let daemon = app.daemon.map(|d| d.as_str()).unwrap_or("simple");
    let target = launcher_target(snap, &app.name);
    let mount = format!("{}.mount", escape_path(&format!("/snap/{snap}/{rev}")));
    let names = |deps: &[String]| -> Vec<String> {
        deps.iter()
            .filter(|d| yaml.apps.contains_key(*d))
            .map(|d| service_name(snap, d))
            .collect()
    };
    let mut after = vec![mount.clone(), "network.target".to_owned()];
    after.extend(names(&app.after));
    let before = names(&app.before);

    let mut u = String::new();
    let mut line = |s: &str| {
        u.push_str(s);
        u.push('\n');
    };
    line("[Unit]");
    line("# Auto-generated, DO NOT EDIT");
    line(&format!(
        "Description=Service for snap application {snap}.{}",
        app.name
    ));
    line(&format!("Requires={mount}"));
    line("Wants=network.target");
    line(&format!("After={}", after.join(" ")));
    if !before.is_empty() {
        line(&format!("Before={}", before.join(" ")));
    }
    line("X-Snappy=yes");
    line("");
    line("[Service]");
    line("EnvironmentFile=-/etc/environment");
    line(&format!("ExecStart=/usr/bin/snap run {target}"));
    line(&format!("SyslogIdentifier={snap}.{}", app.name));
    let oneshot = daemon == "oneshot";
    // snapd: any restart condition but "no" is invalid for oneshot daemons.
    let restart = if oneshot {
        "no"
    } else {
        app.restart_condition.as_deref().unwrap_or("on-failure")
    };
    line(&format!("Restart={restart}"));
    if let Some(d) = app.restart_delay {
        line(&format!("RestartSec={}", d.seconds()));
    }
    line(&format!("WorkingDirectory=/var/snap/{snap}/{rev}"));
    for (key, cmd, present) in [
        ("ExecStop", "stop", app.stop_command.is_some()),
        ("ExecReload", "reload", app.reload_command.is_some()),
        ("ExecStopPost", "post-stop", app.post_stop_command.is_some()),
    ] {
        if present {
            line(&format!("{key}=/usr/bin/snap run --command={cmd} {target}"));
        }
    }
    let stop = app
        .stop_timeout
        .map_or_else(|| "30".to_owned(), |d| d.seconds());
    line(&format!("TimeoutStopSec={stop}"));
    if let Some(d) = app.start_timeout {
        line(&format!("TimeoutStartSec={}", d.seconds()));
    }
    line(&format!("Type={daemon}"));
    if oneshot && app.stop_command.is_some() {
        line("RemainAfterExit=yes");
    }
    if let Some(d) = app.watchdog_timeout {
        line(&format!("WatchdogSec={}", d.seconds()));
    }
    if let Some(mode) = app.stop_mode.as_deref() {
        if !mode.ends_with("-all") {
            line("KillMode=process");
        }
        line(&format!(
            "KillSignal={}",
            mode.trim_end_matches("-all").to_uppercase()
        ));
    }
    line("");
    line("[Install]");
    line("WantedBy=multi-user.target");
    u
}

/// Makes `link` a symbolic link to `target`, replacing another link atomically; a file
/// that is not a link is left alone (an error).
fn ensure_link(target: &str, link: &Path) -> io::Result<()> {
    match fs::read_link(link) {
        Ok(t) if t == Path::new(target) => return Ok(()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a link: left alone", link.display()),
            ))
        }
        Err(e) => return Err(e),
    }
    let name = link.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = link.with_file_name(format!(".{}.new", name.unwrap_or_default()));
    let _ = fs::remove_file(&tmp);
    symlink(target, &tmp)?;
    fs::rename(&tmp, link)
}

fn context(what: String) -> impl FnOnce(io::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// Sets up one snap; returns the /snap/bin names it owns.
fn setup(root: &Root, normal: &Path, snap: &Installed) -> Result<Vec<String>, String> {
    let yaml = snap.yaml.as_ref().map_err(Clone::clone)?;
    for dir in [
        format!("/var/snap/{}/{}", snap.name, snap.revision),
        format!("/var/snap/{}/common", snap.name),
    ] {
        fs::create_dir_all(root.path(&dir)).map_err(context(format!("cannot create {dir}")))?;
    }
    let bin = root.path("/snap/bin");
    fs::create_dir_all(&bin).map_err(context("cannot create /snap/bin".into()))?;
    let mut links = Vec::new();
    let mut first_error = None;
    for app in yaml.apps.values() {
        let name = launcher_target(&snap.name, &app.name);
        if let Err(e) = ensure_link(SNAP_BINARY, &bin.join(&name)) {
            first_error.get_or_insert(format!("cannot link /snap/bin/{name}: {e}"));
        }
        links.push(name);
    }
    for app in yaml.services() {
        let unit_name = service_name(&snap.name, &app.name);
        let path = normal.join(&unit_name);
        fs::write(&path, unit(yaml, &snap.revision, app))
            .map_err(context(format!("cannot write {}", path.display())))?;
        if app.install_disabled {
            continue;
        }
        let wants = normal.join("multi-user.target.wants");
        fs::create_dir_all(&wants)
            .map_err(context(format!("cannot create {}", wants.display())))?;
        let link = wants.join(&unit_name);
        ensure_link(&path.to_string_lossy(), &link)
            .map_err(context(format!("cannot link {}", link.display())))?;
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(links),
    }
}

/// Removes links in /snap/bin to the snap program that no snap owns any more, except those
/// of snaps that failed to set up (their apps may come back on the next boot).
fn prune(root: &Root, keep: &BTreeSet<String>, failed: &BTreeSet<String>, log: &mut Log) {
    let bin = root.path("/snap/bin");
    let Ok(entries) = fs::read_dir(&bin) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let snap = name.split('.').next().unwrap_or_default();
        let ours = fs::read_link(e.path()).is_ok_and(|t| t == Path::new(SNAP_BINARY));
        if ours && !keep.contains(&name) && !failed.contains(snap) {
            if let Err(err) = fs::remove_file(e.path()) {
                log.warn(&format!("cannot remove the stale /snap/bin/{name}: {err}"));
            }
        }
    }
}

/// Where messages go: systemd gives generators no journal and no console, so on the device
/// (the real root) a warning goes to the kernel log (`<4>`, one write per message), and to
/// stderr too when that is a terminal (someone running the generator by hand); under a test
/// root, or if /dev/kmsg cannot be opened, to stderr only.
struct Log {
    kmsg: Option<fs::File>,
}

impl Log {
    fn open(root: &Root) -> Log {
        let kmsg = if root.is_real() {
            fs::OpenOptions::new().write(true).open("/dev/kmsg").ok()
        } else {
            None
        };
        Log { kmsg }
    }

    fn warn(&mut self, msg: &str) {
        use std::io::{IsTerminal as _, Write as _};
        let line = format!("snapd-generator: {msg}");
        let sent = match &mut self.kmsg {
            Some(k) => k.write_all(format!("<4>{line}\n").as_bytes()).is_ok(),
            None => false,
        };
        if !sent || io::stderr().is_terminal() {
            eprintln!("{line}");
        }
    }
}

/// Runs the generator; fails only if there is no output folder.
pub fn main(root: &Root, args: &[String]) -> ExitCode {
    let mut log = Log::open(root);
    let Some(normal) = args.first() else {
        log.warn("usage: snapd-generator NORMAL-DIR [EARLY-DIR LATE-DIR]");
        return ExitCode::FAILURE;
    };
    let normal = Path::new(normal);
    if let Err(e) = fs::create_dir_all(normal) {
        log.warn(&format!("cannot use {}: {e}", normal.display()));
        return ExitCode::FAILURE;
    }
    let snaps = match root::installed(root) {
        Ok(s) => s,
        Err(e) => {
            log.warn(&e.to_string());
            return ExitCode::SUCCESS;
        }
    };
    let mut keep = BTreeSet::new();
    let mut failed = BTreeSet::new();
    for snap in &snaps {
        match setup(root, normal, snap) {
            Ok(links) => keep.extend(links),
            Err(e) => {
                log.warn(&format!(
                    "snap {} (revision {}): {e}; its apps and services are not set up",
                    snap.name, snap.revision
                ));
                failed.insert(snap.name.clone());
            }
        }
    }
    prune(root, &keep, &failed, &mut log);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_path_escaping() {
        assert_eq!(escape_path("/snap/foo/44"), "snap-foo-44");
        assert_eq!(
            escape_path("/snap/hello-world/x1"),
            "snap-hello\\x2dworld-x1"
        );
        assert_eq!(escape_path("//a//b/"), "a-b");
        assert_eq!(escape_path("/.hidden/a b"), "\\x2ehidden-a\\x20b");
        assert_eq!(escape_path("/"), "-");
    }

    /// snapd's own expected unit (wrappers/internal/service_unit_gen_test.go,
    /// TestGenerateSnapServiceOnCore), without `snapd.apparmor.service`.
    #[test]
    fn the_unit_snapd_writes() {
        let y = SnapYaml::parse(
            b"name: foo\nversion: 1.0\napps:\n  app:\n    command: bin/start\n    daemon: simple\n",
        )
        .unwrap();
        assert_eq!(
            unit(&y, "44", &y.apps["app"]),
            "[Unit]
# Auto-generated, DO NOT EDIT
Description=Service for snap application foo.app
Requires=snap-foo-44.mount
Wants=network.target
After=snap-foo-44.mount network.target
X-Snappy=yes

[Service]
EnvironmentFile=-/etc/environment
ExecStart=/usr/bin/snap run foo.app
SyslogIdentifier=foo.app
Restart=on-failure
WorkingDirectory=/var/snap/foo/44
TimeoutStopSec=30
Type=simple

[Install]
WantedBy=multi-user.target
"
        );
    }

    #[test]
    fn every_field_of_a_daemon() {
        let y = SnapYaml::parse(
            b"name: xkcd-webserver\nversion: '1'\napps:\n  xkcd-webserver:\n    command: bin/serve\n    daemon: forking\n    stop-command: bin/stop\n    reload-command: bin/reload\n    post-stop-command: bin/stop --post\n    restart-condition: always\n    restart-delay: 2s\n    stop-timeout: 1m30s\n    start-timeout: 1.5s\n    watchdog-timeout: 10s\n    stop-mode: sighup\n    after: [db]\n    before: [web]\n  db: {command: bin/db, daemon: notify}\n  web: {command: bin/web, daemon: simple, after: [xkcd-webserver]}\n  once: {command: bin/once, daemon: oneshot, restart-condition: always, stop-command: bin/undo, stop-mode: sigint-all}\n",
        )
        .unwrap();
        let text = unit(&y, "44", &y.apps["xkcd-webserver"]);
        assert_eq!(
            text,
            "[Unit]
# Auto-generated, DO NOT EDIT
Description=Service for snap application xkcd-webserver.xkcd-webserver
Requires=snap-xkcd\\x2dwebserver-44.mount
Wants=network.target
After=snap-xkcd\\x2dwebserver-44.mount network.target snap.xkcd-webserver.db.service
Before=snap.xkcd-webserver.web.service
X-Snappy=yes

[Service]
EnvironmentFile=-/etc/environment
ExecStart=/usr/bin/snap run xkcd-webserver
SyslogIdentifier=xkcd-webserver.xkcd-webserver
Restart=always
RestartSec=2
WorkingDirectory=/var/snap/xkcd-webserver/44
ExecStop=/usr/bin/snap run --command=stop xkcd-webserver
ExecReload=/usr/bin/snap run --command=reload xkcd-webserver
ExecStopPost=/usr/bin/snap run --command=post-stop xkcd-webserver
TimeoutStopSec=90
TimeoutStartSec=1.5
Type=forking
WatchdogSec=10
KillMode=process
KillSignal=SIGHUP

[Install]
WantedBy=multi-user.target
"
        );
        let once = unit(&y, "44", &y.apps["once"]);
        assert!(once.contains("\nRestart=no\n"), "{once}");
        assert!(
            once.contains("\nType=oneshot\nRemainAfterExit=yes\n"),
            "{once}"
        );
        assert!(
            once.contains("\nKillSignal=SIGINT\n") && !once.contains("KillMode"),
            "{once}"
        );
        assert!(unit(&y, "44", &y.apps["db"]).contains("\nType=notify\n"));
    }

    #[test]
    fn links_are_made_once_and_replaced_when_wrong() {
        let t = tempfile::tempdir().unwrap();
        let l = t.path().join("hello");
        ensure_link(SNAP_BINARY, &l).unwrap();
        ensure_link(SNAP_BINARY, &l).unwrap();
        assert_eq!(fs::read_link(&l).unwrap(), Path::new(SNAP_BINARY));
        symlink("/elsewhere", t.path().join("other")).unwrap();
        ensure_link(SNAP_BINARY, &t.path().join("other")).unwrap();
        assert_eq!(
            fs::read_link(t.path().join("other")).unwrap(),
            Path::new(SNAP_BINARY)
        );
        fs::write(t.path().join("file"), "x").unwrap();
        assert!(ensure_link(SNAP_BINARY, &t.path().join("file")).is_err());
        assert_eq!(fs::read(t.path().join("file")).unwrap(), b"x");
    }
}
