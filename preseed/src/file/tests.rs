use std::net::Ipv4Addr;

use super::*;
use crate::WifiSecret;

fn parse(text: &str) -> Result<Preseed, PreseedError> {
    Preseed::parse(text.as_bytes())
}

/// Parses a file with the given network, wifi and identity JSON fragments.
fn with(network: &str, wifi: Option<&str>, identity: &str) -> Result<Preseed, PreseedError> {
    let wifi = wifi.map(|w| format!(", \"wifi\": {w}")).unwrap_or_default();
    parse(&format!(
        "{{\"network\": {network}{wifi}, \"identity\": {identity}}}"
    ))
}

const DHCP: &str = r#"{"interface": "eth0", "method": "dhcp"}"#;
const EMAIL_ID: &str = r#""alice@example.com""#;

/// The error's message, which is what a person sees.
fn refusal(result: Result<Preseed, PreseedError>) -> String {
    match result {
        Ok(p) => panic!("accepted: {p:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn dhcp_and_store_email() {
    let p = with(DHCP, None, EMAIL_ID).unwrap();
    assert_eq!(
        p,
        Preseed {
            network: Network::Dhcp {
                interface: "eth0".into()
            },
            wifi: None,
            identity: Identity::Store("alice@example.com".into()),
        }
    );
}

#[test]
fn static_network_with_gateway_and_dns() {
    let net = r#"{"interface": "end0", "method": "static", "address": "192.168.1.10/24",
                  "gateway": "192.168.1.1", "dns": ["192.168.1.1", "9.9.9.9"]}"#;
    let p = with(net, None, r#""gh:alice""#).unwrap();
    assert_eq!(
        p.network,
        Network::Static {
            interface: "end0".into(),
            address: Ipv4Addr::new(192, 168, 1, 10),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(192, 168, 1, 1)),
            dns: vec![Ipv4Addr::new(192, 168, 1, 1), Ipv4Addr::new(9, 9, 9, 9)],
        }
    );
    assert_eq!(p.identity, Identity::GitHub("alice".into()));
}

#[test]
fn static_network_without_gateway_or_dns() {
    let net = r#"{"interface": "eth0", "method": "static", "address": "10.0.0.5/8"}"#;
    match with(net, None, r#""lp:bob.smith""#).unwrap() {
        Preseed {
            network:
                Network::Static {
                    gateway: None,
                    dns,
                    prefix: 8,
                    ..
                },
            identity: Identity::Launchpad(user),
            ..
        } => {
            assert!(dns.is_empty());
            assert_eq!(user, "bob.smith");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_network_with_wifi_passphrase() {
    let p = with(
        r#"{"method": "none"}"#,
        Some(r#"{"interface": "wlan0", "ssid": "home", "passphrase": "correct horse"}"#),
        EMAIL_ID,
    )
    .unwrap();
    assert_eq!(p.network, Network::None);
    assert_eq!(
        p.wifi,
        Some(Wifi {
            interface: "wlan0".into(),
            ssid: "home".into(),
            secret: WifiSecret::Passphrase("correct horse".into()),
        })
    );
}

#[test]
fn wifi_psk_is_decoded() {
    let hex = "00112233445566778899aabbccddeeffFFEEDDCCBBAA99887766554433221100";
    let wifi = format!(r#"{{"interface": "wlan0", "ssid": "x", "psk": "{hex}"}}"#);
    let p = with(DHCP, Some(&wifi), EMAIL_ID).unwrap();
    let Some(Wifi {
        secret: WifiSecret::Psk(psk),
        ..
    }) = p.wifi
    else {
        panic!("{:?}", p.wifi)
    };
    assert_eq!(psk[0], 0x00);
    assert_eq!(psk[1], 0x11);
    assert_eq!(psk[16], 0xff);
    assert_eq!(psk[31], 0x00);
    assert_eq!(psk[30], 0x11);
}

#[test]
fn username_and_keys() {
    let id = r#"{"username": "alice", "ssh-keys": ["ssh-ed25519 AAAAC3Nza alice@laptop\n"]}"#;
    let p = with(DHCP, None, id).unwrap();
    assert_eq!(
        p.identity,
        Identity::Keys {
            username: "alice".into(),
            ssh_keys: vec!["ssh-ed25519 AAAAC3Nza alice@laptop".into()],
        }
    );
}

#[test]
fn not_json_is_refused() {
    let msg = refusal(parse("network: dhcp"));
    assert!(msg.contains("not valid JSON"), "{msg}");
    let msg = refusal(Preseed::parse(b"\xff\xfe"));
    assert!(msg.contains("not valid JSON"), "{msg}");
}

#[test]
fn too_large_is_refused() {
    let big = vec![b' '; MAX_PRESEED_LEN + 1];
    assert_eq!(
        Preseed::parse(&big),
        Err(PreseedError::TooLarge(MAX_PRESEED_LEN + 1))
    );
}

#[test]
fn top_level_must_be_an_object() {
    let msg = refusal(parse("[1]"));
    assert!(msg.contains("expected an object"), "{msg}");
}

#[test]
fn unknown_fields_are_refused_everywhere() {
    let msg = refusal(parse(&format!(
        r#"{{"network": {DHCP}, "identity": {EMAIL_ID}, "hostname": "pi"}}"#
    )));
    assert!(msg.starts_with("hostname: unknown field"), "{msg}");
    assert!(msg.contains("network, wifi, identity"), "{msg}");

    let msg = refusal(with(
        r#"{"interface": "eth0", "method": "dhcp", "adress": "1.2.3.4/24"}"#,
        None,
        EMAIL_ID,
    ));
    assert!(msg.starts_with("network.adress: unknown field"), "{msg}");

    let msg = refusal(with(
        r#"{"method": "none", "interface": "eth0"}"#,
        None,
        EMAIL_ID,
    ));
    assert!(msg.starts_with("network.interface: unknown field"), "{msg}");

    let msg = refusal(with(
        DHCP,
        Some(r#"{"interface": "wlan0", "ssid": "x", "passphrase": "12345678", "hidden": true}"#),
        EMAIL_ID,
    ));
    assert!(msg.starts_with("wifi.hidden: unknown field"), "{msg}");

    let msg = refusal(with(
        DHCP,
        None,
        r#"{"username": "alice", "ssh-keys": ["ssh-ed25519 AAAA"], "sudo": false}"#,
    ));
    assert!(msg.starts_with("identity.sudo: unknown field"), "{msg}");
}

#[test]
fn missing_fields_are_named() {
    let msg = refusal(parse(&format!(r#"{{"identity": {EMAIL_ID}}}"#)));
    assert!(msg.starts_with("network: missing"), "{msg}");
    let msg = refusal(parse(&format!(r#"{{"network": {DHCP}}}"#)));
    assert!(msg.starts_with("identity: missing"), "{msg}");
    let msg = refusal(with(r#"{"interface": "eth0"}"#, None, EMAIL_ID));
    assert!(msg.starts_with("network.method: missing"), "{msg}");
    let msg = refusal(with(r#"{"method": "dhcp"}"#, None, EMAIL_ID));
    assert!(msg.starts_with("network.interface: missing"), "{msg}");
    let msg = refusal(with(
        r#"{"method": "static", "interface": "eth0"}"#,
        None,
        EMAIL_ID,
    ));
    assert!(msg.starts_with("network.address: missing"), "{msg}");
    let msg = refusal(with(
        DHCP,
        Some(r#"{"interface": "wlan0", "ssid": "x"}"#),
        EMAIL_ID,
    ));
    assert!(msg.starts_with("wifi.passphrase: missing"), "{msg}");
    assert!(msg.contains("psk"), "{msg}");
    let msg = refusal(with(DHCP, None, r#"{"username": "alice"}"#));
    assert!(msg.starts_with("identity.ssh-keys: missing"), "{msg}");
}

#[test]
fn wrong_types_are_named() {
    let cases = [
        (
            r#"{"interface": 0, "method": "dhcp"}"#,
            "network.interface: expected an interface name",
            "got 0",
        ),
        (
            r#"{"interface": "eth0", "method": true}"#,
            "network.method: expected \"dhcp\"",
            "got true",
        ),
        (r#""dhcp""#, "network: expected an object", "got \"dhcp\""),
        (
            r#"{"interface": "eth0", "method": "static", "address": "10.0.0.2/8", "dns": "10.0.0.1"}"#,
            "network.dns: expected a list of IPv4 addresses",
            "got \"10.0.0.1\"",
        ),
        (
            r#"{"interface": "eth0", "method": "static", "address": "10.0.0.2/8", "dns": ["10.0.0.1", 5]}"#,
            "network.dns[1]: expected an IPv4 address",
            "got 5",
        ),
        (
            r#"{"interface": "eth0", "method": "static", "address": ["10.0.0.2/8"]}"#,
            "network.address: expected an IPv4 address with a prefix",
            "got a list",
        ),
    ];
    for (net, start, got) in cases {
        let msg = refusal(with(net, None, EMAIL_ID));
        assert!(msg.starts_with(start), "{net}: {msg}");
        assert!(msg.contains(got), "{net}: {msg}");
    }
    let msg = refusal(with(DHCP, Some("[]"), EMAIL_ID));
    assert!(msg.starts_with("wifi: expected an object"), "{msg}");
    let msg = refusal(with(DHCP, None, "42"));
    assert!(
        msg.starts_with("identity: expected a store account e-mail"),
        "{msg}"
    );
    let msg = refusal(with(
        DHCP,
        None,
        r#"{"username": "alice", "ssh-keys": "ssh-ed25519 AAAA"}"#,
    ));
    assert!(
        msg.starts_with("identity.ssh-keys: expected a non-empty list"),
        "{msg}"
    );
    let msg = refusal(with(DHCP, None, r#"{"username": "alice", "ssh-keys": []}"#));
    assert!(
        msg.starts_with("identity.ssh-keys: expected a non-empty list"),
        "{msg}"
    );
    let msg = refusal(with(
        DHCP,
        None,
        r#"{"username": "alice", "ssh-keys": ["ssh-ed25519 A", {}]}"#,
    ));
    assert!(
        msg.starts_with("identity.ssh-keys[1]: expected one public key"),
        "{msg}"
    );
}

#[test]
fn bad_methods_and_interfaces() {
    let msg = refusal(with(
        r#"{"interface": "eth0", "method": "dchp"}"#,
        None,
        EMAIL_ID,
    ));
    assert!(msg.starts_with("network.method: expected"), "{msg}");
    assert!(msg.contains("\"dchp\""), "{msg}");
    for name in ["", "a/b", "eth 0", "0123456789abcdef", ".."] {
        let net = format!(r#"{{"interface": "{name}", "method": "dhcp"}}"#);
        let msg = refusal(with(&net, None, EMAIL_ID));
        assert!(
            msg.starts_with("network.interface: interface name"),
            "{name:?}: {msg}"
        );
    }
}

#[test]
fn bad_addresses_and_prefixes() {
    for address in [
        "192.168.1.10",
        "192.168.1.10/",
        "192.168.1.10/0",
        "192.168.1.10/33",
        "192.168.1.10/+8",
        "192.168.1.10/024",
        "192.168.1/24",
        "192.168.1.256/24",
        "0.0.0.0/24",
        "224.0.0.1/4",
        "255.255.255.255/32",
        "fe80::1/64",
        "eth0",
    ] {
        let net = format!(r#"{{"interface": "eth0", "method": "static", "address": "{address}"}}"#);
        let msg = refusal(with(&net, None, EMAIL_ID));
        assert!(msg.starts_with("network.address: "), "{address}: {msg}");
        assert!(
            msg.contains("valid") || msg.contains("cannot be"),
            "{address}: {msg}"
        );
    }
}

#[test]
fn gateway_must_be_a_usable_neighbour() {
    for gateway in ["192.168.2.1", "192.168.1.10", "nope", "0.0.0.0"] {
        let net = format!(
            r#"{{"interface": "eth0", "method": "static", "address": "192.168.1.10/24", "gateway": "{gateway}"}}"#
        );
        let msg = refusal(with(&net, None, EMAIL_ID));
        assert!(
            msg.starts_with("network.gateway: gateway"),
            "{gateway}: {msg}"
        );
    }
    // A /16 reaches further than a /24.
    let net = r#"{"interface": "eth0", "method": "static", "address": "192.168.1.10/16", "gateway": "192.168.2.1"}"#;
    assert!(with(net, None, EMAIL_ID).is_ok());
    let net = r#"{"interface": "eth0", "method": "static", "address": "192.168.1.10/24", "dns": ["1.2.3"]}"#;
    let msg = refusal(with(net, None, EMAIL_ID));
    assert!(
        msg.starts_with("network.dns: name server \"1.2.3\""),
        "{msg}"
    );
}

#[test]
fn bad_wifi_secrets_are_refused_without_echoing_them() {
    let cases = [
        (
            r#""passphrase": "short""#,
            "wifi.passphrase: passphrase is 5 characters long",
            "",
        ),
        (
            r#""passphrase": "0123456789012345678901234567890123456789012345678901234567890123""#,
            "wifi.passphrase: passphrase is 64 characters long",
            "8-63",
        ),
        (
            r#""passphrase": "pässwörter""#,
            "wifi.passphrase: passphrase has a character",
            "not printable ASCII",
        ),
        (
            r#""passphrase": 12345678"#,
            "wifi.passphrase: expected",
            "got 12345678",
        ),
        (r#""psk": "abcd""#, "wifi.psk: expected", "got 4 characters"),
        (
            r#""psk": "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff""#,
            "wifi.psk: a 64-character secret must be a PSK of 64 hex digits",
            "",
        ),
        (
            r#""passphrase": "12345678", "psk": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff""#,
            "wifi: expected either",
            "both",
        ),
    ];
    for (secret, start, got) in cases {
        let wifi = format!(r#"{{"interface": "wlan0", "ssid": "home", {secret}}}"#);
        let msg = refusal(with(DHCP, Some(&wifi), EMAIL_ID));
        assert!(msg.starts_with(start), "{secret}: {msg}");
        assert!(msg.contains(got), "{secret}: {msg}");
        assert!(
            !msg.contains("\"short")
                && !msg.contains("wörter")
                && !msg.contains("abcd")
                && !msg.contains("zz11"),
            "{msg}"
        );
    }
}

#[test]
fn ssid_length() {
    for ssid in ["", "123456789012345678901234567890123"] {
        let wifi =
            format!(r#"{{"interface": "wlan0", "ssid": "{ssid}", "passphrase": "12345678"}}"#);
        let msg = refusal(with(DHCP, Some(&wifi), EMAIL_ID));
        assert!(msg.starts_with("wifi.ssid: network name"), "{msg}");
    }
    let wifi = r#"{"interface": "wlan0", "ssid": "12345678901234567890123456789012", "passphrase": "12345678"}"#;
    assert!(with(DHCP, Some(wifi), EMAIL_ID).is_ok());
}

#[test]
fn identity_strings() {
    let ok = [
        (
            "alice@example.com",
            Identity::Store("alice@example.com".into()),
        ),
        (
            "a.b+c@mail.example.org",
            Identity::Store("a.b+c@mail.example.org".into()),
        ),
        ("gh:Alice-1", Identity::GitHub("Alice-1".into())),
        ("lp:alice+dev", Identity::Launchpad("alice+dev".into())),
    ];
    for (text, want) in ok {
        assert_eq!(text.parse::<Identity>(), Ok(want), "{text}");
    }
    let bad = [
        ("alice", "expected a store account e-mail"),
        ("alice@localhost", "expected an e-mail address"),
        ("alice@@example.com", "expected an e-mail address"),
        ("al ice@example.com", "expected an e-mail address"),
        ("a/b@example.com", "expected an e-mail address"),
        ("gh:", "expected \"gh:USER\""),
        ("gh:-alice", "expected \"gh:USER\""),
        ("gh:al/ice", "expected \"gh:USER\""),
        ("lp:Alice", "expected \"lp:USER\""),
        ("lp:", "expected \"lp:USER\""),
    ];
    for (text, want) in bad {
        let msg = text.parse::<Identity>().unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("identity: {want}")),
            "{text}: {msg}"
        );
        // Through the file, the same message.
        let file_msg = refusal(with(DHCP, None, &format!("{text:?}")));
        assert_eq!(file_msg, msg);
    }
}

#[test]
fn usernames() {
    for good in [
        "alice",
        "a",
        "bob-smith_2",
        "abcdefghijklmnopqrstuvwxyz012345",
    ] {
        assert!(is_valid_username(good), "{good}");
    }
    for bad in [
        "",
        "Alice",
        "1alice",
        "-alice",
        "al ice",
        "root:x",
        "abcdefghijklmnopqrstuvwxyz0123456",
    ] {
        assert!(!is_valid_username(bad), "{bad}");
        let id = format!(r#"{{"username": {bad:?}, "ssh-keys": ["ssh-ed25519 AAAA"]}}"#);
        let msg = refusal(with(DHCP, None, &id));
        assert!(
            msg.starts_with("identity.username: expected an account name"),
            "{bad}: {msg}"
        );
    }
}

#[test]
fn keys_must_be_one_line_with_type_and_data() {
    for key in ["ssh-ed25519", "", "ssh-ed25519 AAAA\nssh-rsa BBBB"] {
        let id = format!(r#"{{"username": "alice", "ssh-keys": [{key:?}]}}"#);
        let msg = refusal(with(DHCP, None, &id));
        assert!(
            msg.starts_with("identity.ssh-keys[0]: expected one public key"),
            "{key:?}: {msg}"
        );
    }
}

#[test]
fn identity_display_names_the_source() {
    assert_eq!(
        Identity::Store("a@b.c".into()).to_string(),
        "store account a@b.c"
    );
    assert_eq!(Identity::GitHub("a".into()).to_string(), "GitHub user a");
    assert_eq!(
        Identity::Launchpad("a".into()).to_string(),
        "Launchpad user a"
    );
}

/// A preseed cannot smuggle shell syntax into the interface names the OS's ifupdown runs
/// through a shell, neither for the wired network nor for Wi-Fi.
#[test]
fn interface_names_with_shell_syntax_are_refused() {
    let names = [
        "wlan0;reboot",
        "$(x)",
        "`x`",
        "wl an0",
        "wl\\nan0",
        "abcdefghijklmnop",
        "..",
    ];
    for name in names {
        let net = format!(r#"{{"interface": "{name}", "method": "dhcp"}}"#);
        let msg = refusal(with(&net, None, EMAIL_ID));
        assert!(
            msg.starts_with("network.interface: interface name"),
            "{name:?}: {msg}"
        );
        let wifi =
            format!(r#"{{"interface": "{name}", "ssid": "home", "passphrase": "12345678"}}"#);
        let msg = refusal(with(DHCP, Some(&wifi), EMAIL_ID));
        assert!(
            msg.starts_with("wifi.interface: interface name"),
            "{name:?}: {msg}"
        );
    }
}
