//! The commit end to end on a real file system: contents, owners, modes, and a power cut
//! before every single step. These run as root (they chown to the new user's uid).

use super::commit::{commit_steps, CommitError, Committed, Steps};
use super::*;
use crate::setup::{Account, Network, OsFile, Setup};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// 2026-11-25T20:30:00Z.
const NOW: u64 = 1_795_638_600;
const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINMPZsdSIf/am9EXnguwZJPSMTK/pG16NS+YsvDVX5sU alice@laptop";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGyvhvM9AxEUpNRAQ6QhyuRcrb0jaIKwkMNAQbzzGROH alice@phone";

/// A scratch folder holding `base/` (the base snap's root) and `data/` (`writable`).
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("cf-agent-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("base/etc")).unwrap();
        fs::create_dir_all(dir.join("data")).unwrap();
        // The base snap as board-support/snaps/core ships it: shadow, sudo group, no gshadow.
        fs::write(
            dir.join("base/etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            dir.join("base/etc/group"),
            "root:x:0:\ntty:x:5:\nshadow:x:42:\nsudo:x:27:\nusers:x:100:\n",
        )
        .unwrap();
        fs::write(dir.join("base/etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
        Scratch { dir }
    }
    fn base(&self) -> PathBuf {
        self.dir.join("base")
    }
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
    fn system(&self) -> PathBuf {
        self.data().join(SYSTEM_DATA)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn setup() -> Setup {
    Setup {
        network: Network::Dhcp {
            interface: "eth0".into(),
        },
        wifi: None,
        account: Account {
            username: "alice".into(),
            keys: vec![KEY_A.into(), KEY_B.into()],
            source: "store account alice@example.com".into(),
            password: None,
        },
    }
}

fn os_files() -> Vec<OsFile> {
    vec![
        OsFile {
            path: "etc/network/interfaces".into(),
            contents: b"auto eth0\niface eth0 inet dhcp\n".to_vec(),
            mode: 0o644,
            link: None,
        },
        OsFile {
            path: "etc/wpa_supplicant/wpa_supplicant.conf".into(),
            contents: b"network={\n ssid=\"home\"\n}\n".to_vec(),
            mode: 0o600,
            link: None,
        },
    ]
}

fn host_key() -> HostKey {
    HostKey::from_seed(&[9; 32])
}

fn run(scratch: &Scratch, steps: &mut Steps) -> Result<Committed, CommitError> {
    commit_steps(
        &scratch.data(),
        &scratch.base(),
        crate::setup::Os::Busybox,
        &setup(),
        &host_key(),
        &os_files(),
        NOW,
        steps,
    )
}

/// Mode bits, uid, gid of `rel` under system-data.
fn meta(scratch: &Scratch, rel: &str) -> (u32, u32, u32) {
    let m = fs::symlink_metadata(scratch.system().join(rel)).unwrap();
    (m.mode() & 0o7777, m.uid(), m.gid())
}

fn read(scratch: &Scratch, rel: &str) -> String {
    fs::read_to_string(scratch.system().join(rel)).unwrap()
}

/// Every file and directory of a complete commit, with contents, owners and modes.
fn assert_complete(scratch: &Scratch) {
    let record = match state(&scratch.data()).unwrap() {
        State::Configured(record) => record,
        State::Unconfigured => panic!("not configured"),
    };
    assert_eq!(
        record,
        Record {
            user: "alice".into(),
            uid: 1000,
            source: "store account alice@example.com".into(),
            time: "2026-11-25T20:30:00Z".into(),
            host_key: host_key().fingerprint(),
        }
    );
    assert!(!scratch.data().join(STAGING).exists());

    assert_eq!(
        read(scratch, "etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
    );
    assert_eq!(
        read(scratch, "etc/group"),
        "root:x:0:\ntty:x:5:\nshadow:x:42:\nsudo:x:27:alice\nusers:x:100:\nalice:x:1000:\n"
    );
    assert_eq!(
        read(scratch, "etc/shadow"),
        "root:*:19000:0:99999:7:::\nalice:*:20782:0:99999:7:::\n"
    );
    assert!(!scratch.system().join("etc/gshadow").exists());
    assert_eq!(
        read(scratch, "etc/sudoers.d/create-user-alice"),
        "\n# Created by snap create-user\n\n# User rules for alice\nalice ALL=(ALL) NOPASSWD:ALL\n"
    );
    assert_eq!(
        read(scratch, "home/alice/.ssh/authorized_keys"),
        format!("{KEY_A}\n{KEY_B}\n")
    );
    assert_eq!(
        fs::read(scratch.system().join(HOST_KEY)).unwrap(),
        host_key().to_dropbear().to_vec()
    );
    assert_eq!(
        read(scratch, "etc/network/interfaces"),
        "auto eth0\niface eth0 inet dhcp\n"
    );
    assert_eq!(
        read(scratch, RECORD),
        String::from_utf8(record.to_json()).unwrap()
    );

    let root = (0, 0);
    let alice = (1000, 1000);
    let want = [
        ("", 0o755, root),
        ("etc", 0o755, root),
        ("etc/passwd", 0o644, root),
        ("etc/group", 0o644, root),
        ("etc/shadow", 0o640, (0, 42)),
        ("etc/sudoers.d", 0o750, root),
        ("etc/sudoers.d/create-user-alice", 0o440, root),
        ("etc/dropbear", 0o755, root),
        (HOST_KEY, 0o600, root),
        ("home", 0o755, root),
        ("home/alice", 0o750, alice),
        ("home/alice/.ssh", 0o700, alice),
        ("home/alice/.ssh/authorized_keys", 0o600, alice),
        ("etc/network/interfaces", 0o644, root),
        ("etc/wpa_supplicant", 0o755, root),
        ("etc/wpa_supplicant/wpa_supplicant.conf", 0o600, root),
        ("var/lib/coreforge", 0o755, root),
        (RECORD, 0o644, root),
    ];
    for (rel, mode, (uid, gid)) in want {
        assert_eq!(meta(scratch, rel), (mode, uid, gid), "{rel:?}");
    }
}

#[test]
fn a_commit_writes_every_file_with_its_owner_and_mode() {
    let scratch = Scratch::new("complete");
    assert_eq!(state(&scratch.data()).unwrap(), State::Unconfigured);
    let mut steps = Steps::default();
    let committed = run(&scratch, &mut steps).unwrap();
    assert_eq!((committed.uid, committed.gid), (1000, 1000));
    assert_complete(&scratch);
    assert_eq!(
        state(&scratch.data()).unwrap(),
        State::Configured(committed.record)
    );
}

#[test]
fn a_power_cut_before_any_step_leaves_unconfigured_or_complete() {
    let scratch = Scratch::new("count");
    let mut steps = Steps::default();
    run(&scratch, &mut steps).unwrap();
    let total = steps.done;
    // Staging root, 9 more directories, 9 files, the fsyncs, rename, final fsync.
    assert!(total > 30, "{total} steps");
    drop(scratch);

    let mut configured_after_cut = 0;
    for k in 0..total {
        let scratch = Scratch::new(&format!("cut{k}"));
        let mut steps = Steps {
            stop_at: Some(k),
            ..Steps::default()
        };
        assert!(
            matches!(run(&scratch, &mut steps), Err(CommitError::PowerCut)),
            "step {k}"
        );
        // The next boot.
        match state(&scratch.data()).unwrap() {
            State::Configured(_) => {
                configured_after_cut += 1;
                assert_complete(&scratch);
            }
            State::Unconfigured => {
                assert!(!scratch.data().join(STAGING).exists(), "step {k}");
                assert!(!scratch.system().exists(), "step {k}");
                run(&scratch, &mut Steps::default()).unwrap();
                assert_complete(&scratch);
            }
        }
    }
    // Only a cut after the rename (before the final fsync of data/) finds the device configured.
    assert_eq!(configured_after_cut, 1);
}

#[test]
fn a_new_commit_in_the_same_boot_replaces_a_failed_one() {
    let scratch = Scratch::new("retry");
    let mut steps = Steps {
        stop_at: Some(12),
        ..Steps::default()
    };
    assert!(run(&scratch, &mut steps).is_err());
    assert!(scratch.data().join(STAGING).exists());
    // No reboot in between: commit itself clears the leftover.
    run(&scratch, &mut Steps::default()).unwrap();
    assert_complete(&scratch);
}

#[test]
fn state_removes_a_leftover_staging_directory() {
    let scratch = Scratch::new("leftover");
    fs::create_dir_all(scratch.data().join(STAGING).join("etc/dropbear")).unwrap();
    fs::write(scratch.data().join(STAGING).join("etc/passwd"), "half").unwrap();
    assert_eq!(state(&scratch.data()).unwrap(), State::Unconfigured);
    assert!(!scratch.data().join(STAGING).exists());
}

#[test]
fn a_configured_device_refuses_a_second_commit() {
    let scratch = Scratch::new("twice");
    run(&scratch, &mut Steps::default()).unwrap();
    let err = run(&scratch, &mut Steps::default()).unwrap_err();
    assert!(matches!(err, CommitError::AlreadyConfigured(_)), "{err}");
    assert!(err.to_string().contains("remove it"), "{err}");
    assert_complete(&scratch);
}

#[test]
fn a_damaged_record_is_an_error_that_says_what_to_do() {
    let scratch = Scratch::new("damaged");
    run(&scratch, &mut Steps::default()).unwrap();
    fs::write(scratch.system().join(RECORD), "{").unwrap();
    let err = state(&scratch.data()).unwrap_err().to_string();
    assert!(err.contains("damaged") && err.contains("remove"), "{err}");
    fs::remove_file(scratch.system().join(RECORD)).unwrap();
    let err = state(&scratch.data()).unwrap_err().to_string();
    assert!(
        err.contains("cannot read the configuration record"),
        "{err}"
    );
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let scratch = Scratch::new("refuse");
    let try_with = |setup: Setup, os_files: Vec<OsFile>| {
        let err = commit_steps(
            &scratch.data(),
            &scratch.base(),
            crate::setup::Os::Busybox,
            &setup,
            &host_key(),
            &os_files,
            NOW,
            &mut Steps::default(),
        )
        .unwrap_err();
        assert_eq!(fs::read_dir(scratch.data()).unwrap().count(), 0, "{err}");
        err.to_string()
    };
    for bad in ["", "Alice", "1alice", "al ice", "../root", &"a".repeat(33)] {
        let mut s = setup();
        s.account.username = bad.into();
        assert!(try_with(s, os_files()).contains("is not valid"), "{bad:?}");
    }
    let mut s = setup();
    s.account.keys = vec![" ".into()];
    assert!(try_with(s, os_files()).contains("no SSH keys"));
    let mut s = setup();
    s.account.keys = vec![format!("{KEY_A}\n{KEY_B}")];
    assert!(try_with(s, os_files()).contains("line break"));
    for path in ["/etc/passwd", "etc/../../x", ""] {
        let file = OsFile {
            path: path.into(),
            contents: vec![],
            mode: 0o644,
            link: None,
        };
        assert!(
            try_with(setup(), vec![file]).contains("must be relative"),
            "{path}"
        );
    }
    for bad in crate::net::HOSTILE_NAMES.iter().copied() {
        let mut s = setup();
        s.network = Network::Dhcp {
            interface: bad.into(),
        };
        let err = try_with(s, os_files());
        assert!(
            err.contains("interface name") && err.contains("is not valid"),
            "{bad:?}: {err}"
        );
        let mut s = setup();
        s.wifi = Some(crate::setup::Wifi {
            interface: bad.into(),
            ssid: "home".into(),
            secret: crate::setup::WifiSecret::Passphrase("12345678".into()),
        });
        let err = try_with(s, os_files());
        assert!(
            err.contains("interface name") && err.contains("is not valid"),
            "{bad:?}: {err}"
        );
    }
    let mut s = setup();
    s.account.username = "sudo".into();
    assert!(try_with(s, os_files()).contains("already used"));
    fs::remove_file(scratch.base().join("etc/group")).unwrap();
    let err = try_with(setup(), os_files());
    assert!(
        err.contains("etc/group") && err.contains("base snap"),
        "{err}"
    );
}

#[test]
fn a_write_failure_names_the_path_and_leaves_nothing_configured() {
    let scratch = Scratch::new("nowrite");
    // An OS file that clashes with an account file cannot be created.
    let clash = vec![OsFile {
        path: "etc/passwd".into(),
        contents: b"x".to_vec(),
        mode: 0o644,
        link: None,
    }];
    let err = commit_steps(
        &scratch.data(),
        &scratch.base(),
        crate::setup::Os::Busybox,
        &setup(),
        &host_key(),
        &clash,
        NOW,
        &mut Steps::default(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("etc/passwd") && text.contains("nothing was changed"),
        "{text}"
    );
    assert_eq!(state(&scratch.data()).unwrap(), State::Unconfigured);
}

#[test]
fn no_shadow_group_means_a_root_only_shadow_file() {
    let scratch = Scratch::new("noshadowgroup");
    fs::write(scratch.base().join("etc/group"), "root:x:0:\n").unwrap();
    fs::remove_file(scratch.base().join("etc/shadow")).unwrap();
    run(&scratch, &mut Steps::default()).unwrap();
    assert_eq!(meta(&scratch, "etc/shadow"), (0o600, 0, 0));
    assert_eq!(
        read(&scratch, "etc/shadow"),
        "root:*:20782:0:99999:7:::\nalice:*:20782:0:99999:7:::\n"
    );
    assert_eq!(
        read(&scratch, "etc/group"),
        "root:x:0:\nsudo:x:27:alice\nalice:x:1000:\n"
    );
}

/// sudo's drop-in directory is root's alone (0750), the account's rule file read-only (0440).
#[test]
fn sudoers_d_is_created_0750_and_its_file_0440() {
    let scratch = Scratch::new("sudoers");
    run(&scratch, &mut Steps::default()).unwrap();
    assert_eq!(meta(&scratch, "etc/sudoers.d"), (0o750, 0, 0));
    assert_eq!(
        meta(&scratch, "etc/sudoers.d/create-user-alice"),
        (0o440, 0, 0)
    );
}

/// Every file read back from the card has a limit checked before it is read: a record or
/// host key of a terabyte (sparse: it takes no space) is refused, naming the file and the
/// limit, and so is a base account file over its limit.
#[test]
fn oversized_files_are_refused_before_they_are_read() {
    let scratch = Scratch::new("oversized");
    run(&scratch, &mut Steps::default()).unwrap();
    let record = scratch.system().join(RECORD);
    fs::File::options()
        .write(true)
        .open(&record)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let err = state(&scratch.data()).unwrap_err();
    assert!(
        matches!(
            err,
            StateError::ReadRecord {
                source: ReadError::TooLarge { limit: MAX_RECORD, ref path, .. },
                ..
            } if *path == record
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&record.display().to_string())
            && text.contains(&format!("larger than {MAX_RECORD} bytes"))
            && text.contains("remove"),
        "{text}"
    );
    // One byte over the limit is enough.
    fs::File::options()
        .write(true)
        .open(&record)
        .unwrap()
        .set_len(MAX_RECORD + 1)
        .unwrap();
    assert!(matches!(
        state(&scratch.data()),
        Err(StateError::ReadRecord {
            source: ReadError::TooLarge { .. },
            ..
        })
    ));

    let fresh = Scratch::new("oversized-base");
    fs::File::options()
        .write(true)
        .open(fresh.base().join("etc/passwd"))
        .unwrap()
        .set_len(MAX_ACCOUNT_FILE + 1)
        .unwrap();
    let err = run(&fresh, &mut Steps::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("etc/passwd")
            && text.contains(&format!("larger than {MAX_ACCOUNT_FILE} bytes")),
        "{text}"
    );
    assert_eq!(state(&fresh.data()).unwrap(), State::Unconfigured);
}

/// The record's text is printed on every console at each later boot: a terminal sequence
/// written into it on the card comes back escaped.
#[test]
fn a_record_with_an_escape_sequence_is_read_back_escaped() {
    let scratch = Scratch::new("escape");
    run(&scratch, &mut Steps::default()).unwrap();
    let path = scratch.system().join(RECORD);
    let text = read(&scratch, RECORD).replace(
        "store account alice@example.com",
        "\\u001b[2J\\u001b[H\\rstore account\\u009b1m",
    );
    fs::write(&path, text).unwrap();
    let State::Configured(record) = state(&scratch.data()).unwrap() else {
        panic!("not configured")
    };
    assert!(
        !record.source.chars().any(char::is_control),
        "{:?}",
        record.source
    );
    assert_eq!(
        record.source,
        "\\u{1b}[2J\\u{1b}[H\\u{d}store account\\u{9b}1m"
    );
}

/// On a systemd base (Debian's), the host key is OpenSSH's pair where sshd reads it, the
/// Wi-Fi service is enabled by a link, and nothing is written in dropbear's format.
#[test]
fn a_systemd_base_gets_openssh_host_keys_and_enable_links() {
    let scratch = Scratch::new("systemd");
    fs::create_dir_all(scratch.base().join("usr/lib/systemd")).unwrap();
    fs::write(scratch.base().join("usr/lib/systemd/systemd"), b"").unwrap();
    let wifi = crate::setup::Wifi::new("wlan0", "home", "a passphrase").unwrap();
    let mut s = setup();
    s.wifi = Some(wifi.clone());
    // What firstboot reads off the base: systemd's manager makes it a systemd OS.
    assert_eq!(
        crate::setup::Os::of(&scratch.base()),
        crate::setup::Os::Systemd
    );
    assert_eq!(
        crate::setup::Os::of(&Scratch::new("plain").base()),
        crate::setup::Os::Busybox
    );
    let files = crate::net::os_files(&s.network, Some(&wifi), crate::setup::Os::Systemd);
    commit_steps(
        &scratch.data(),
        &scratch.base(),
        crate::setup::Os::Systemd,
        &s,
        &host_key(),
        &files,
        NOW,
        &mut Steps::default(),
    )
    .unwrap();
    let system = scratch.system();
    assert_eq!(
        fs::read(system.join(super::OPENSSH_HOST_KEY)).unwrap(),
        host_key().to_openssh("root@coreforge").to_vec()
    );
    assert_eq!(
        read(&scratch, "etc/ssh/ssh_host_ed25519_key.pub"),
        host_key().public_openssh_file("root@coreforge")
    );
    assert!(!system.join(HOST_KEY).exists());
    let link =
        system.join("etc/systemd/system/sys-subsystem-net-devices-wlan0.device.wants/wpa_supplicant@wlan0.service");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        std::path::Path::new("/lib/systemd/system/wpa_supplicant@.service")
    );
    assert!(read(&scratch, "etc/systemd/network/10-coreforge-eth0.network").contains("DHCP=ipv4"));
    assert!(!system.join("etc/network/interfaces").exists());
    let key = fs::metadata(system.join(super::OPENSSH_HOST_KEY)).unwrap();
    assert_eq!((key.mode() & 0o777, key.uid()), (0o600, 0));
}
