//! The `snap` binary on a fake device root (`COREFORGE_SNAP_ROOT`): snaps mounted as the
//! agent leaves them, a seed with assertions, and a fake `systemctl` on PATH.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HELLO_YAML: &str = "\
name: hello
version: '2.1'
environment:
  GREETING: hi-from-$SNAP_NAME
apps:
  hello:
    command: bin/show
  world:
    command: bin/show --data $SNAP_DATA
    command-chain: [bin/chain]
    environment:
      GREETING: world-$GREETING
  daemon:
    command: bin/show
    daemon: simple
    after: [db]
  db:
    command: bin/show
    daemon: notify
    stop-timeout: 10s
    install-mode: disable
";

const SHOW: &str = "#!/bin/sh\n\
for v in SNAP SNAP_DATA SNAP_COMMON SNAP_NAME SNAP_INSTANCE_NAME SNAP_REVISION SNAP_VERSION SNAP_ARCH GREETING; do\n\
  eval \"echo $v=\\$$v\"\n\
done\n\
echo \"ARGS=$*\"\n";

const CHAIN: &str = "#!/bin/sh\necho chain-ran\nexec \"$@\"\n";

const SYSTEMCTL: &str = "#!/bin/sh\n\
case \"$1 $2\" in\n\
  'is-enabled snap.hello.daemon.service') echo generated ;;\n\
  'is-active snap.hello.daemon.service') echo active ;;\n\
  'is-enabled snap.hello.db.service') echo disabled; exit 1 ;;\n\
  'is-active snap.hello.db.service') echo inactive; exit 3 ;;\n\
  *) echo \"unexpected systemctl $*\" >&2; exit 9 ;;\n\
esac\n";

const ASSERTIONS: &str = "type: account\naccount-id: canonical\nusername: canonical\nvalidation: verified\n\nsig\n\ntype: snap-declaration\nseries: 16\nsnap-id: c22\npublisher-id: canonical\nsnap-name: core22\n\nsig\n\ntype: account\naccount-id: dev\nusername: jo\nvalidation: unproven\n\nsig\n\ntype: snap-declaration\nsnap-id: h1\npublisher-id: dev\nsnap-name: hello\n\nsig\n";

struct Device {
    _dir: tempfile::TempDir,
    root: PathBuf,
    path: String,
}

fn write_exe(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn mount(root: &Path, name: &str, rev: &str, yaml: Option<&str>) -> PathBuf {
    let dir = root.join("snap").join(name).join(rev);
    fs::create_dir_all(dir.join("meta")).unwrap();
    if let Some(y) = yaml {
        fs::write(dir.join("meta/snap.yaml"), y).unwrap();
    }
    symlink(rev, root.join("snap").join(name).join("current")).unwrap();
    dir
}

fn device() -> Device {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let hello = mount(&root, "hello", "7", Some(HELLO_YAML));
    write_exe(&hello.join("bin/show"), SHOW);
    write_exe(&hello.join("bin/chain"), CHAIN);
    mount(
        &root,
        "core22",
        "1122",
        Some("name: core22\nversion: '20240111'\ntype: base\n"),
    );
    mount(
        &root,
        "pi",
        "x1",
        Some("name: pi\nversion: '22-1'\ntype: gadget\n"),
    );
    // Its current link survives from an earlier boot, but nothing is mounted there.
    mount(&root, "unmounted", "3", None);
    let seed = root.join("run/mnt/ubuntu-seed/systems/20260101/assertions");
    fs::create_dir_all(&seed).unwrap();
    fs::write(seed.join("snaps"), ASSERTIONS).unwrap();
    let tools = dir.path().join("tools");
    write_exe(&tools.join("systemctl"), SYSTEMCTL);
    let path = format!("{}:/usr/bin:/bin", tools.display());
    Device {
        _dir: dir,
        root,
        path,
    }
}

impl Device {
    fn run(&self, argv0: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_snap"))
            .arg0(argv0)
            .args(args)
            .env_clear()
            .env("COREFORGE_SNAP_ROOT", &self.root)
            .env("PATH", &self.path)
            .env("HOME", self.root.join("home/u"))
            .output()
            .unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const ARCH: &str = if cfg!(target_arch = "aarch64") {
    "arm64"
} else if cfg!(target_arch = "arm") {
    "armhf"
} else {
    "amd64"
};

#[test]
fn launchers_run_the_app_with_snapd_environment() {
    let d = device();
    let o = d.run("/snap/bin/hello.world", &["one", "two words"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "chain-ran\nSNAP=/snap/hello/7\nSNAP_DATA=/var/snap/hello/7\n\
             SNAP_COMMON=/var/snap/hello/common\nSNAP_NAME=hello\nSNAP_INSTANCE_NAME=hello\n\
             SNAP_REVISION=7\nSNAP_VERSION=2.1\nSNAP_ARCH={ARCH}\n\
             GREETING=world-hi-from-hello\nARGS=--data /var/snap/hello/7 one two words\n"
        )
    );
    // The app named as the snap is /snap/bin/<snap>; `snap run` does the same.
    let o = d.run("hello", &[]);
    assert!(
        stdout(&o).contains("GREETING=hi-from-hello\nARGS=\n"),
        "{}",
        stdout(&o)
    );
    let o = d.run("snap", &["run", "hello.world", "x"]);
    assert!(stdout(&o).starts_with("chain-ran\n"));
    assert!(stdout(&o).ends_with("ARGS=--data /var/snap/hello/7 x\n"));
    // snap run makes the user's snap folders, as snapd does.
    assert!(d.root.join("home/u/snap/hello/7").is_dir());
    assert!(d.root.join("home/u/snap/hello/common").is_dir());

    let o = d.run("snap", &["run", "hello.nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "error: cannot find app \"nope\" in \"hello\"\n");
    let o = d.run("nothere.app", &[]);
    assert_eq!(stderr(&o), "error: snap \"nothere\" is not installed\n");
    let o = d.run("snap", &["run", "--command=stop", "hello.daemon"]);
    assert_eq!(
        stderr(&o),
        "error: no \"stop\" command found for \"daemon\"\n"
    );
}

#[test]
fn generator_writes_units_links_and_folders() {
    let d = device();
    let out = d.root.join("run/systemd/generator");
    fs::create_dir_all(d.root.join("snap/bin")).unwrap();
    symlink("/usr/bin/snap", d.root.join("snap/bin/removed.app")).unwrap();
    symlink("/usr/bin/snap", d.root.join("snap/bin/unmounted.app")).unwrap();
    symlink("/usr/bin/other", d.root.join("snap/bin/not-ours")).unwrap();
    for round in 0..2 {
        let o = d.run(
            "/usr/lib/systemd/system-generators/snapd-generator",
            &[out.to_str().unwrap(), "/tmp/early", "/tmp/late"],
        );
        assert!(o.status.success(), "round {round}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).lines().count(),
            1,
            "round {round}: one bad snap, one line: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).starts_with("snapd-generator: snap unmounted (revision 3): "),
            "{}",
            stderr(&o)
        );
    }
    let unit = fs::read_to_string(out.join("snap.hello.daemon.service")).unwrap();
    assert_eq!(
        unit,
        "[Unit]
# Auto-generated, DO NOT EDIT
Description=Service for snap application hello.daemon
Requires=snap-hello-7.mount
Wants=network.target
After=snap-hello-7.mount network.target snap.hello.db.service
X-Snappy=yes

[Service]
EnvironmentFile=-/etc/environment
ExecStart=/usr/bin/snap run hello.daemon
SyslogIdentifier=hello.daemon
Restart=on-failure
WorkingDirectory=/var/snap/hello/7
TimeoutStopSec=30
Type=simple

[Install]
WantedBy=multi-user.target
"
    );
    let db = fs::read_to_string(out.join("snap.hello.db.service")).unwrap();
    assert!(db.contains("\nTimeoutStopSec=10\nType=notify\n"), "{db}");
    let wants = out.join("multi-user.target.wants");
    assert_eq!(
        fs::read_link(wants.join("snap.hello.daemon.service")).unwrap(),
        out.join("snap.hello.daemon.service")
    );
    assert!(
        !wants.join("snap.hello.db.service").exists(),
        "install-mode: disable is not wanted"
    );
    let mut links: Vec<String> = fs::read_dir(d.root.join("snap/bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    links.sort();
    assert_eq!(
        links,
        [
            "hello",
            "hello.daemon",
            "hello.db",
            "hello.world",
            "not-ours",
            "unmounted.app"
        ],
        "stale links of removed snaps go; those of snaps that failed stay"
    );
    assert_eq!(
        fs::read_link(d.root.join("snap/bin/hello.world")).unwrap(),
        Path::new("/usr/bin/snap")
    );
    assert!(d.root.join("var/snap/hello/7").is_dir());
    assert!(d.root.join("var/snap/hello/common").is_dir());
    assert!(d.root.join("var/snap/core22/1122").is_dir());
    assert!(!d.root.join("var/snap/unmounted").exists());
}

#[test]
fn list_prints_snapd_table_with_seed_publishers() {
    let d = device();
    let o = d.run("snap", &["list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "Name       Version   Rev   Tracking  Publisher    Notes\n\
         core22     20240111  1122  -         canonical**  base\n\
         hello      2.1       7     -         jo           -\n\
         pi         22-1      x1    -         -            gadget\n\
         unmounted  -         3     -         -            broken\n"
    );
    let o = d.run("snap", &["list", "hello"]);
    assert_eq!(stdout(&o).lines().count(), 2);
    let o = d.run("snap", &["list", "nope"]);
    assert_eq!(stderr(&o), "error: no matching snaps installed\n");
}

#[test]
fn services_ask_systemctl() {
    let d = device();
    let o = d.run("snap", &["services"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "Service       Startup   Current   Notes\n\
         hello.daemon  enabled   active    -\n\
         hello.db      disabled  inactive  -\n"
    );
    let o = d.run("snap", &["services", "hello.db"]);
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));
    let o = d.run("snap", &["services", "core22"]);
    assert_eq!(
        stderr(&o),
        "There are no services provided by installed snaps.\n"
    );
}

#[test]
fn changes_are_refused_as_read_only() {
    let d = device();
    for cmd in ["install", "remove", "refresh", "stop"] {
        let o = d.run("snap", &[cmd, "hello"]);
        assert_eq!(o.status.code(), Some(1), "{cmd}");
        assert!(
            stderr(&o).contains(&format!("\"snap {cmd}\" is not available"))
                && stderr(&o).contains("come from the signed seed")
                && stderr(&o).contains("read-only"),
            "{}",
            stderr(&o)
        );
    }
    let o = d.run("snap", &[]);
    assert_eq!(o.status.code(), Some(2));
}
