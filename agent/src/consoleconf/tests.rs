//! Whole sessions driven by scripted bytes (and a host pty) against a fake backend.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Duration;

use coreforge_preseed::{Preseed, WifiSecret};

use super::term::{Event, Script};
use super::*;

/// Records every call; answers with scripted errors first, then successes.
#[derive(Debug, Default)]
struct Fake {
    interfaces: Vec<Interface>,
    bring_up_errors: VecDeque<String>,
    identity_errors: VecDeque<String>,
    commit_errors: VecDeque<String>,
    brought_up: Vec<Network>,
    identities: Vec<Identity>,
    commits: Vec<Setup>,
}

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me";

impl Fake {
    fn wired() -> Fake {
        Fake {
            interfaces: vec![Interface {
                name: "eth0".into(),
                wireless: false,
                carrier: true,
                addresses: Vec::new(),
            }],
            ..Fake::default()
        }
    }

    fn with_wifi() -> Fake {
        let mut fake = Fake::wired();
        fake.interfaces.push(Interface {
            name: "wlan0".into(),
            wireless: true,
            carrier: false,
            addresses: Vec::new(),
        });
        fake
    }
}

impl Backend for Fake {
    fn interfaces(&mut self) -> Vec<Interface> {
        self.interfaces.clone()
    }

    fn bring_up(&mut self, network: &Network) -> Result<Vec<String>, String> {
        self.brought_up.push(network.clone());
        match self.bring_up_errors.pop_front() {
            Some(e) => Err(e),
            None => Ok(vec!["10.0.2.15/24".into()]),
        }
    }

    fn identity(&mut self, identity: &Identity) -> Result<Account, String> {
        self.identities.push(identity.clone());
        if let Some(e) = self.identity_errors.pop_front() {
            return Err(e);
        }
        let (username, keys) = match identity {
            Identity::Store(email) => (email.split('@').next().unwrap_or("").into(), vec![]),
            Identity::GitHub(u) | Identity::Launchpad(u) => (u.clone(), vec![]),
            Identity::Keys { username, ssh_keys } => (username.clone(), ssh_keys.clone()),
        };
        let keys = if keys.is_empty() {
            vec![KEY.into()]
        } else {
            keys
        };
        Ok(Account {
            username,
            keys,
            source: identity.to_string(),
            password: None,
        })
    }

    fn commit(&mut self, setup: &Setup) -> Result<Login, String> {
        if let Some(e) = self.commit_errors.pop_front() {
            return Err(e);
        }
        self.commits.push(setup.clone());
        let addresses = match setup.network {
            Network::None => vec![],
            _ => vec!["10.0.2.15/24".into()],
        };
        Ok(Login {
            user: setup.account.username.clone(),
            source: setup.account.source.clone(),
            addresses,
            fingerprints: vec!["ED25519 SHA256:fakefingerprint".into()],
        })
    }
}

fn typed(console: usize, text: &str) -> Event {
    Event::Bytes(console, text.as_bytes().to_vec())
}

/// One console named ttyS0 typing each of `inputs` in turn.
fn one(inputs: &[&str], fake: &mut Fake) -> (Option<Login>, String) {
    let events = inputs.iter().map(|t| typed(0, t)).collect();
    let mut script = Script::new(&["ttyS0"], events);
    let login = run(&mut script, fake, Options::default());
    (login, script.out.remove(0))
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn dhcp() -> Network {
    Network::Dhcp {
        interface: "eth0".into(),
    }
}

#[test]
fn dhcp_and_email() {
    let mut fake = Fake::wired();
    let (login, out) = one(&["\r", "1\r", "alice@example.com\r", "y\r"], &mut fake);
    let login = login.unwrap();
    assert_eq!(login.user, "alice");
    assert_eq!(fake.brought_up, vec![dhcp()]);
    assert_eq!(
        fake.identities,
        vec![Identity::Store("alice@example.com".into())]
    );
    assert_eq!(fake.commits.len(), 1);
    assert_eq!(fake.commits[0].network, dhcp());
    assert_eq!(fake.commits[0].wifi, None);
    assert_eq!(fake.commits[0].account.keys, vec![KEY.to_string()]);
    // every screen, in order, and what was typed echoed
    let mut at = 0;
    for want in [
        text::PRESS_ENTER,
        text::CLEAR_SCREEN,
        text::WELCOME,
        "  1) eth0: wired, DHCP\n",
        text::NETWORK_PROMPT,
        "1\n",
        "The network is up: 10.0.2.15/24",
        text::IDENTITY_PROMPT,
        "alice@example.com\n",
        "Checking alice@example.com ...\n",
        "Found: alice, 1 SSH key(s) from store account alice@example.com\n",
        "Account: alice, 1 SSH key(s) from store account alice@example.com",
        text::CONFIRM_PROMPT,
        text::DONE,
        "\nssh alice@10.0.2.15\n",
        text::FINGERPRINTS,
        "  ED25519 SHA256:fakefingerprint\n",
    ] {
        let found = out[at..].find(want);
        assert!(found.is_some(), "{want:?} missing after {:?}", &out[..at]);
        at += found.unwrap_or(0) + want.len();
    }
}

#[test]
fn everything_typed_ahead_in_one_burst() {
    let mut fake = Fake::wired();
    let (login, _) = one(&["\r\n1\r\nalice@example.com\r\ny\r\n"], &mut fake);
    assert_eq!(login.unwrap().user, "alice");
    assert_eq!(fake.commits.len(), 1);
}

#[test]
fn static_and_github_with_mistakes_corrected() {
    let mut fake = Fake::wired();
    let (login, out) = one(
        &[
            "\r",
            "7\r",
            "2\r",
            "192.168.1.10\r",
            "192.168.1.10/24\r",
            "10.0.0.1\r",
            "192.168.1.1\r",
            "1.1.1.1 nine\r",
            "1.1.1.1, 9.9.9.9\r",
            "gh:\r",
            "gh:alice\r",
            "maybe\r",
            "y\r",
        ],
        &mut fake,
    );
    assert!(login.is_some());
    let want = Network::Static {
        interface: "eth0".into(),
        address: ip("192.168.1.10"),
        prefix: 24,
        gateway: Some(ip("192.168.1.1")),
        dns: vec![ip("1.1.1.1"), ip("9.9.9.9")],
    };
    assert_eq!(fake.brought_up, vec![want.clone()]);
    assert_eq!(fake.commits[0].network, want);
    assert_eq!(fake.identities, vec![Identity::GitHub("alice".into())]);
    assert!(out.contains("\"7\" is not on the menu"));
    assert!(out.contains("write it as a.b.c.d/prefix"));
    assert!(out.contains("gateway 10.0.0.1 is outside 192.168.1.0/24"));
    assert!(out.contains("name server \"nine\""));
    assert!(out.contains("GitHub user name"));
    assert!(out.contains("Type y or n."));
    // each refused answer asked its own question again
    assert_eq!(out.matches(text::ADDRESS_PROMPT).count(), 2);
    assert_eq!(out.matches(text::GATEWAY_PROMPT).count(), 2);
    assert_eq!(out.matches(text::DNS_PROMPT).count(), 2);
    assert_eq!(out.matches(text::CONFIRM_PROMPT).count(), 2);
}

#[test]
fn pasted_rsa_key_and_a_user_name() {
    let key = format!("ssh-rsa AAAAB3NzaC1yc2E{} bob@laptop", "A".repeat(720));
    let mut fake = Fake::wired();
    let (login, out) = one(
        &["\r", "s\r", &format!("{key}\r"), "Bob\r", "bob\r", "y\r"],
        &mut fake,
    );
    let login = login.unwrap();
    assert!(fake.brought_up.is_empty());
    assert_eq!(
        fake.identities,
        vec![Identity::Keys {
            username: "bob".into(),
            ssh_keys: vec![key.clone()],
        }]
    );
    assert_eq!(fake.commits[0].network, Network::None);
    assert_eq!(fake.commits[0].account.keys, vec![key]);
    assert_eq!(login.addresses, Vec::<String>::new());
    assert!(out.contains("\"Bob\" cannot be a user name"));
    assert!(out.contains("Checking 1 key(s) for bob ...\n"));
    assert!(out.contains("\nssh bob@ADDRESS"));
}

#[test]
fn a_pasted_key_is_echoed_in_one_write() {
    let key = format!("ssh-rsa AAAAB3NzaC1yc2E{} bob@laptop", "B".repeat(720));
    let mut fake = Fake::wired();
    let events = vec![typed(0, "\rs\r"), typed(0, &format!("{key}\r"))];
    let mut script = Script::new(&["ttyS0"], events);
    assert_eq!(run(&mut script, &mut fake, Options::default()), None);
    assert!(script.log.iter().any(|(_, w)| w == &format!("{key}\n")));
    assert_eq!(script.out[0].matches(text::USERNAME_PROMPT).count(), 1);
}

#[test]
fn line_editing_over_a_serial_line() {
    let mut fake = Fake::wired();
    let (login, out) = one(
        &[
            "\r\n",
            // arrow keys and a cursor report between the keys; CRLF endings
            "\x1b[A1\x1b[24;80R\r\n",
            // backspace, DEL, Ctrl-U, then the real answer
            "gh:bobb\x08y\x7f\x7f\x15gh:bo\x1b[Db\r\n",
            "y\r\n",
        ],
        &mut fake,
    );
    assert!(login.is_some());
    assert_eq!(fake.identities, vec![Identity::GitHub("bob".into())]);
    assert!(out.contains("\x08 \x08"));
    // no stray empty answers from the LF after each CR: each question was asked once
    assert_eq!(out.matches(text::NETWORK_PROMPT).count(), 1);
    assert_eq!(out.matches(text::IDENTITY_PROMPT).count(), 1);
}

#[test]
fn ctrl_c_goes_back_and_ends_the_session_from_the_first_screen() {
    let mut fake = Fake::wired();
    let (login, out) = one(
        &[
            "\r",
            "1\r",
            "alice@exa\x03", // identity: back to the network screen
            "2\r",           // static...
            "\x03",          // ...back to the menu
            "1\r",           //
            "gh:alice\r",    //
            "\x03",          // confirm: back to the identity screen
            "\x03",          // identity: back to the network screen
            "\x03",          // network: the session ends
        ],
        &mut fake,
    );
    assert_eq!(login, None);
    assert!(fake.commits.is_empty());
    assert_eq!(fake.identities, vec![Identity::GitHub("alice".into())]);
    assert_eq!(out.matches(text::NETWORK_PROMPT).count(), 4);
    assert_eq!(out.matches(text::IDENTITY_PROMPT).count(), 3);
    assert!(out.contains(text::CANCELLED));
    assert_eq!(out.matches(text::PRESS_ENTER).count(), 2);
}

#[test]
fn answering_n_starts_over() {
    let mut fake = Fake::wired();
    let (login, out) = one(
        &["\r", "1\r", "gh:a\r", "n\r", "s\r", "lp:b\r", "y\r"],
        &mut fake,
    );
    assert!(login.is_some());
    assert_eq!(fake.commits.len(), 1);
    assert_eq!(fake.commits[0].network, Network::None);
    assert_eq!(fake.commits[0].account.username, "b");
    assert_eq!(out.matches(text::NETWORK_PROMPT).count(), 2);
}

#[test]
fn too_long_a_line_is_refused_and_asked_again() {
    let mut fake = Fake::wired();
    let long = "x".repeat(editor::MAX_LINE + 100);
    let (login, out) = one(
        &["\r", "1\r", &format!("{long}\r"), "gh:alice\r", "y\r"],
        &mut fake,
    );
    assert!(login.is_some());
    assert!(out.contains(text::TOO_LONG));
    assert_eq!(out.matches(text::IDENTITY_PROMPT).count(), 2);
    assert_eq!(fake.identities, vec![Identity::GitHub("alice".into())]);
}

#[test]
fn bytes_that_are_not_utf8_are_refused_not_fatal() {
    let mut fake = Fake::wired();
    let mut bytes = b"\r1\rgh:al\xff\xfeice\r".to_vec();
    bytes.extend_from_slice(b"y\r");
    let mut script = Script::new(&["ttyS0"], vec![Event::Bytes(0, bytes)]);
    let login = run(&mut script, &mut fake, Options::default());
    assert!(login.is_some());
    assert_eq!(fake.identities, vec![Identity::GitHub("alice".into())]);
    assert!(script.out[0].contains(text::NOT_UTF8));
}

#[test]
fn garbage_on_the_line_never_panics_nor_commits() {
    let mut seed = 0x00C0_FFEE_u32;
    let events: Vec<Event> = (0..2000)
        .map(|_| {
            let chunk: Vec<u8> = (0..64)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            Event::Bytes(0, chunk)
        })
        .collect();
    let mut fake = Fake::wired();
    let mut script = Script::new(&["ttyS0"], events);
    assert_eq!(run(&mut script, &mut fake, Options::default()), None);
    assert!(fake.commits.is_empty());
    assert!(script.out[0].contains(text::NOT_UTF8));
}

#[test]
fn disconnect_mid_flow_writes_nothing() {
    let mut fake = Fake::wired();
    let events = vec![
        typed(0, "\r"),
        typed(0, "1\r"),
        typed(0, "alice@example.com\r"),
        Event::Gone(0),
    ];
    let mut script = Script::new(&["ttyS0"], events);
    assert_eq!(run(&mut script, &mut fake, Options::default()), None);
    assert!(fake.commits.is_empty());
    assert_eq!(fake.identities.len(), 1);
}

#[test]
fn failing_writes_end_the_session_too() {
    let mut fake = Fake::wired();
    let mut script = Script::new(&["ttyS0"], vec![typed(0, "\r1\r")]);
    script.broken.push(0);
    assert_eq!(run(&mut script, &mut fake, Options::default()), None);
    assert!(fake.commits.is_empty());
}

#[test]
fn idle_timeout_writes_nothing_and_asks_again() {
    let mut fake = Fake::wired();
    let events = vec![typed(0, "\r"), typed(0, "1\r"), Event::Timeout];
    let mut script = Script::new(&["ttyS0"], events);
    assert_eq!(run(&mut script, &mut fake, Options::default()), None);
    assert!(fake.commits.is_empty());
    let out = &script.out[0];
    let timed_out = out.find(text::TIMED_OUT).unwrap();
    assert!(out[timed_out..].contains(text::PRESS_ENTER));
}

#[test]
fn two_consoles_one_session() {
    let mut fake = Fake::wired();
    let events = vec![
        typed(1, "\r"),
        typed(0, "\r"), // in progress on ttyS0
        typed(1, "1\r"),
        typed(0, "zz\r"),     // says so again, answers nothing
        typed(1, "\x03\x03"), // identity -> network -> session ends
        typed(0, "\r"),       // now tty1 gets it
        typed(1, "\r"),       // ttyS0 sees it is on tty1
        typed(0, "1\rgh:alice\ry\r"),
    ];
    let mut script = Script::new(&["tty1", "ttyS0"], events);
    let login = run(&mut script, &mut fake, Options::default()).unwrap();
    assert_eq!(login.user, "alice");
    assert_eq!(fake.commits.len(), 1);
    assert_eq!(fake.brought_up.len(), 2);
    let (tty1, serial) = (&script.out[0], &script.out[1]);
    assert_eq!(tty1.matches("Setup is in progress on ttyS0").count(), 3);
    assert_eq!(tty1.matches(text::PRESS_ENTER).count(), 2);
    assert!(!tty1[..tty1.rfind(text::PRESS_ENTER).unwrap()].contains(text::NETWORK_PROMPT));
    assert_eq!(serial.matches("Setup is in progress on tty1").count(), 2);
    // the login details reach both
    assert!(tty1.contains("\nssh alice@10.0.2.15\n"));
    assert!(serial.contains("\nssh alice@10.0.2.15\n"));
}

#[test]
fn a_console_that_hangs_up_leaves_the_others_working() {
    let mut fake = Fake::wired();
    let events = vec![
        Event::Gone(1),
        typed(0, "\r1\r"),
        Event::Gone(1),
        typed(0, "gh:alice\ry\r"),
    ];
    let mut script = Script::new(&["tty1", "ttyS0"], events);
    assert!(run(&mut script, &mut fake, Options::default()).is_some());
    assert_eq!(fake.commits.len(), 1);
}

#[test]
fn backend_errors_are_shown_and_retried() {
    let mut fake = Fake::wired();
    fake.bring_up_errors
        .push_back("no DHCP offer on eth0 in 30 s".into());
    fake.identity_errors
        .push_back("no such account: alice@example.com".into());
    fake.commit_errors.push_back("writable is full".into());
    let (login, out) = one(
        &[
            "\r",
            "1\r",
            "1\r",
            "alice@example.com\r",
            "alice@example.com\r",
            "y\r",
            "y\r",
        ],
        &mut fake,
    );
    assert!(login.is_some());
    assert_eq!(fake.brought_up.len(), 2);
    assert_eq!(fake.identities.len(), 2);
    assert_eq!(fake.commits.len(), 1);
    assert!(out.contains("Cannot bring up the network: no DHCP offer on eth0 in 30 s\n"));
    assert!(out.contains("no such account: alice@example.com\n"));
    assert!(out.contains("Cannot write the configuration: writable is full\n"));
}

#[test]
fn wifi_only_with_a_secret_echoed_as_stars() {
    let mut fake = Fake::with_wifi();
    let (login, out) = one(
        &[
            "\r",
            "3\r",
            "home\r",
            "short\r",
            "correct horse\r",
            &format!("{KEY}\r"),
            "alice\r",
            "y\r",
        ],
        &mut fake,
    );
    assert!(login.is_some());
    assert!(fake.brought_up.is_empty());
    let setup = &fake.commits[0];
    assert_eq!(setup.network, Network::None);
    let wifi = setup.wifi.as_ref().unwrap();
    assert_eq!(
        (wifi.interface.as_str(), wifi.ssid.as_str()),
        ("wlan0", "home")
    );
    assert_eq!(wifi.secret, WifiSecret::Passphrase("correct horse".into()));
    assert!(!out.contains("correct horse") && !out.contains("short"));
    assert!(out.contains("*************\n"));
    assert!(out.contains("use 8-63 characters"));
}

#[test]
fn dhcp_and_wifi_too() {
    let mut fake = Fake::with_wifi();
    let psk = "0123456789abcdef".repeat(4);
    let (login, _) = one(
        &[
            "\r",
            "1\r",
            "y\r",
            "cafe\r",
            &format!("{psk}\r"),
            "gh:a\r",
            "y\r",
        ],
        &mut fake,
    );
    assert!(login.is_some());
    let setup = &fake.commits[0];
    assert_eq!(setup.network, dhcp());
    assert!(matches!(
        setup.wifi.as_ref().unwrap().secret,
        WifiSecret::Psk(_)
    ));
}

#[test]
fn preseed_applies_with_no_person() {
    let preseed = Preseed::parse(
        br#"{"network": {"interface": "eth0", "method": "dhcp"}, "identity": "gh:alice"}"#,
    )
    .unwrap();
    let mut fake = Fake::wired();
    let mut script = Script::new(&["tty1", "ttyS0"], vec![]);
    let login = run_preseed(&preseed, &mut fake, &mut script).unwrap();
    assert_eq!(login.user, "alice");
    assert_eq!(fake.brought_up, vec![dhcp()]);
    assert_eq!(fake.commits.len(), 1);
    for out in &script.out {
        assert!(out.contains(text::PRESEED_START));
        assert!(out.contains("Checking gh:alice ..."));
        assert!(out.contains("\nssh alice@10.0.2.15\n"));
    }
}

#[test]
fn preseed_failure_is_shown_and_nothing_is_written() {
    let preseed =
        Preseed::parse(br#"{"network": {"method": "none"}, "identity": "alice@example.com"}"#)
            .unwrap();
    let mut fake = Fake::wired();
    fake.identity_errors
        .push_back("cannot reach login.ubuntu.com".into());
    let mut script = Script::new(&["ttyS0"], vec![]);
    let e = run_preseed(&preseed, &mut fake, &mut script).unwrap_err();
    assert_eq!(e, "cannot reach login.ubuntu.com");
    assert!(fake.brought_up.is_empty());
    assert!(fake.commits.is_empty());
    assert!(script.out[0].contains(&format!(
        "{} cannot reach login.ubuntu.com\n",
        text::PRESEED_FAILED
    )));
}

/// A preseed naming a wired interface the device does not have is refused before anything
/// is brought up or written, naming it and the interfaces there are.
#[test]
fn preseed_naming_a_missing_wired_interface_is_refused() {
    let text = r#"{"network": {"interface": "eth1", "method": "dhcp"}, "identity": "gh:alice"}"#;
    let preseed = Preseed::parse(text.as_bytes()).unwrap();
    let mut fake = Fake::wired();
    let mut script = Script::new(&["ttyS0"], vec![]);
    let e = run_preseed(&preseed, &mut fake, &mut script).unwrap_err();
    assert!(e.contains("no network interface"), "{e}");
    assert!(e.contains("(it has: eth0)"), "{e}");
    assert!(fake.brought_up.is_empty());
    assert!(fake.identities.is_empty());
    assert!(fake.commits.is_empty());
    assert!(
        script.out[0].contains(text::PRESEED_FAILED),
        "{}",
        script.out[0]
    );
}

/// A Wi-Fi interface is the OS's: absent in the initramfs (its driver loads after the
/// hand-over), it is still written for the OS, and the console says it is not there yet.
#[test]
fn preseed_wifi_on_an_interface_the_os_brings_is_written() {
    let text = br#"{"network": {"interface": "eth0", "method": "dhcp"}, "wifi": {"interface": "wlan0", "ssid": "home", "passphrase": "12345678"}, "identity": "gh:alice"}"#;
    let preseed = Preseed::parse(text).unwrap();
    let mut fake = Fake::wired();
    let mut script = Script::new(&["ttyS0"], vec![]);
    run_preseed(&preseed, &mut fake, &mut script).unwrap();
    assert_eq!(fake.commits.len(), 1);
    assert_eq!(fake.commits[0].wifi.as_ref().unwrap().interface, "wlan0");
    assert!(
        script.out[0].contains("on wlan0 (not present yet: the OS loads its driver) is set up"),
        "{}",
        script.out[0]
    );
    // Present, it says nothing more.
    let mut fake = Fake::with_wifi();
    let mut script = Script::new(&["ttyS0"], vec![]);
    run_preseed(&preseed, &mut fake, &mut script).unwrap();
    assert!(
        script.out[0].contains("Wi-Fi \"home\" on wlan0 is set up"),
        "{}",
        script.out[0]
    );
}

/// Fixed text fits 80 columns; with typical names (a 23-character e-mail) so does the rest.
#[test]
fn screens_fit_80_columns_and_24_rows() {
    let mut fake = Fake::with_wifi();
    let (login, out) = one(
        &["\r", "1\r", "n\r", "alice.smith@example.com\r", "y\r"],
        &mut fake,
    );
    assert!(login.is_some());
    for line in out.lines() {
        assert!(line.chars().count() <= 80, "{line:?}");
    }
    // from the network heading to its prompt, and the identity screen, each fit one screen
    for (from, to) in [
        (text::NETWORK_HEADING, text::NETWORK_PROMPT),
        (text::IDENTITY_HEADING, text::IDENTITY_PROMPT),
    ] {
        let start = out.find(&format!("\n{from}\n")).unwrap();
        let end = start + out[start..].find(to).unwrap();
        assert!(out[start..end].lines().count() < 24);
    }
}

mod pty {
    //! The real consoles (`term::Consoles` over `console.rs`) on a host pseudo-terminal.

    use std::fs::{File, OpenOptions};
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::thread;
    use std::time::Instant;

    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};

    use super::*;
    use crate::console::Console;

    /// The person's side of the line: what the agent wrote so far, and the keyboard.
    struct Person {
        controller: File,
        seen: String,
    }

    impl Person {
        fn wait_for(&mut self, count: usize, text: &str) {
            let start = Instant::now();
            let mut buf = [0u8; 4096];
            while self.seen.matches(text).count() < count {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "{text:?} not seen in {:?}",
                    self.seen
                );
                let tick = Timespec::try_from(Duration::from_millis(50)).unwrap();
                let mut fds = [PollFd::new(&self.controller, PollFlags::IN)];
                if poll(&mut fds, Some(&tick)).unwrap() > 0 {
                    let n = self.controller.read(&mut buf).unwrap();
                    self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        }

        fn types(&mut self, text: &str) {
            self.controller.write_all(text.as_bytes()).unwrap();
        }
    }

    /// A pty: the person at the controller, the agent's consoles on the device side (raw).
    fn pty() -> (Person, Consoles) {
        let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&controller).unwrap();
        unlockpt(&controller).unwrap();
        let name = ptsname(&controller, Vec::new()).unwrap();
        let device = OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().unwrap())
            .unwrap();
        let mut t = tcgetattr(&device).unwrap();
        t.local_modes -= LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG;
        tcsetattr(&device, OptionalActions::Now, &t).unwrap();
        let console = Console::from_file("/dev/pts/x", device);
        let person = Person {
            controller: File::from(controller),
            seen: String::new(),
        };
        (person, Consoles::new(vec![Arc::new(console)]))
    }

    /// Runs console-conf on `consoles` in a thread: the login and the fake's record.
    fn agent(
        mut consoles: Consoles,
        options: Options,
    ) -> thread::JoinHandle<(Option<Login>, Fake)> {
        thread::spawn(move || {
            let mut fake = Fake::wired();
            let login = run(&mut consoles, &mut fake, options);
            (login, fake)
        })
    }

    #[test]
    fn a_whole_session_on_a_pty() {
        let (mut person, consoles) = pty();
        assert_eq!(consoles.name(0), "pts/x");
        let agent = agent(consoles, Options::default());
        for (wait, answer) in [
            (text::PRESS_ENTER, "\r"),
            (text::NETWORK_PROMPT, "1\r"),
            (text::IDENTITY_PROMPT, "gh:alice\r\n"),
            (text::CONFIRM_PROMPT, "y\r"),
        ] {
            person.wait_for(1, wait);
            person.types(answer);
        }
        person.wait_for(1, "\r\nssh alice@10.0.2.15\r\n");
        let (login, fake) = agent.join().unwrap();
        assert_eq!(login.unwrap().user, "alice");
        assert_eq!(fake.commits.len(), 1);
        // typed text is echoed back
        assert!(person.seen.contains("gh:alice\r\n"));
    }

    #[test]
    fn hang_up_on_a_pty_ends_the_session_with_nothing_written() {
        let (mut person, consoles) = pty();
        let agent = agent(consoles, Options::default());
        person.wait_for(1, text::PRESS_ENTER);
        person.types("\r1\rgh:alice\r");
        person.wait_for(1, text::CONFIRM_PROMPT);
        drop(person); // the cable is pulled: the line hangs up
        let (login, fake) = agent.join().unwrap();
        assert_eq!(login, None);
        assert!(fake.commits.is_empty());
        assert_eq!(fake.identities.len(), 1);
    }

    #[test]
    fn slow_typing_is_not_idle() {
        let (mut person, consoles) = pty();
        let idle = Duration::from_millis(1000);
        let agent = agent(consoles, Options { idle });
        person.wait_for(1, text::PRESS_ENTER);
        person.types("\r1\r");
        person.wait_for(1, text::IDENTITY_PROMPT);
        // 2.4 s on one answer, a key every 0.2 s: never idle for 1 s
        let start = Instant::now();
        for c in "gh:slowtypist".chars() {
            thread::sleep(Duration::from_millis(200));
            person.types(&c.to_string());
        }
        assert!(start.elapsed() > idle * 2);
        person.types("\ry\r");
        person.wait_for(1, "ssh slowtypist@");
        let (login, _) = agent.join().unwrap();
        assert_eq!(login.unwrap().user, "slowtypist");
        assert!(!person.seen.contains(text::TIMED_OUT));
    }

    #[test]
    fn real_idle_timeout_on_a_pty() {
        let (mut person, consoles) = pty();
        let idle = Duration::from_millis(300);
        let agent = agent(consoles, Options { idle });
        person.wait_for(1, text::PRESS_ENTER);
        let start = Instant::now();
        person.types("\r1\r");
        person.wait_for(1, text::TIMED_OUT);
        assert!(start.elapsed() >= idle);
        person.wait_for(2, text::PRESS_ENTER);
        // a new session starts where the last one timed out
        person.types("\r");
        person.wait_for(2, text::NETWORK_PROMPT);
        person.types("1\rgh:bob\ry\r");
        person.wait_for(1, "ssh bob@");
        let (login, fake) = agent.join().unwrap();
        assert_eq!(login.unwrap().user, "bob");
        assert_eq!(fake.commits.len(), 1);
    }
}
