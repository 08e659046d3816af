//! Look-ups against a local HTTPS server with a CA made for the test.

use std::time::Duration;

use super::*;
use crate::identity::keys::tests::{ECDSA_P256, ED25519};
use crate::identity::testserver::{Pki, Reply, Server};
use crate::identity::FetchError;

fn system() -> SystemNames {
    SystemNames::parse(
        "root:x:0:0::/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\n",
        "sudo:x:27:\n",
    )
}

fn quick() -> Limits {
    Limits {
        connect: Duration::from_secs(3),
        total: Duration::from_secs(2),
        max_body: 64 * 1024,
        max_redirects: 2,
    }
}

/// The SSO, GitHub and Launchpad APIs on one server, with one path per case.
fn route(path: &str) -> Reply {
    let json = |body: String| Reply::ok("application/json", body);
    match path {
        "/api/v2/keys/alice%40example.com" => json(format!(
            r#"{{"username": "alice", "ssh_keys": ["{ED25519}", "{ECDSA_P256}"], "extra": 1}}"#
        )),
        "/api/v2/keys/empty%40example.com" => {
            json(r#"{"username": "empty", "ssh_keys": []}"#.into())
        }
        "/api/v2/keys/root%40example.com" => json(format!(
            r#"{{"username": "root", "ssh_keys": ["{ED25519}"]}}"#
        )),
        "/api/v2/keys/bad%40example.com" => json(r#"{"username": "bad", "ssh_keys": ["#.into()),
        "/api/v2/keys/html%40example.com" => {
            Reply::ok("text/html", "<html><body>Sign in</body></html>")
        }
        "/api/v2/keys/mixed%40example.com" => json(format!(
            r#"{{"username": "mixed", "ssh_keys": ["ssh-ed25519 AAAA", "{ED25519}"]}}"#
        )),
        "/api/v2/keys/allbad%40example.com" => {
            json(r#"{"username": "allbad", "ssh_keys": ["ssh-ed25519 AAAA", "nonsense"]}"#.into())
        }
        "/api/v2/keys/slow%40example.com" => Reply {
            delay: Duration::from_secs(5),
            ..json(r#"{"username": "slow", "ssh_keys": []}"#.into())
        },
        "/api/v2/keys/huge%40example.com" => Reply::ok("application/json", vec![b' '; 1 << 20]),
        "/api/v2/keys/err%40example.com" => Reply::status(500),
        "/api/v2/keys/loop%40example.com" => Reply {
            location: Some("/api/v2/keys/loop%40example.com".into()),
            ..Reply::status(302)
        },
        "/alice.keys" => Reply::ok("text/plain", format!("{ED25519}\n{ECDSA_P256}\n")),
        "/Alice.keys" => Reply::ok("text/plain", format!("{ED25519}\n")),
        "/nokeys.keys" => Reply::ok("text/plain", ""),
        "/~alice/+sshkeys" => Reply::ok("text/plain", format!("{ECDSA_P256}\n")),
        "/~nokeys/+sshkeys" => Reply::ok("text/plain", "\n"),
        _ => Reply::status(404),
    }
}

fn setup() -> (Pki, Server) {
    let pki = Pki::new();
    let server = Server::start(&pki, route);
    (pki, server)
}

fn lookup(pki: &Pki, server: &Server) -> Lookup {
    let url = server.url();
    Lookup::new(pki.ca_pem().as_bytes(), "roots.pem", &url, quick())
        .unwrap()
        .with_bases(&url, &url)
}

fn fetch(l: &Lookup, input: &str) -> Result<Identity, IdentityError> {
    l.fetch(&Source::of(&input.parse().unwrap()).unwrap(), &system())
}

#[test]
fn store_account_gives_its_user_name_and_keys() {
    let (pki, server) = setup();
    let id = fetch(&lookup(&pki, &server), "alice@example.com").unwrap();
    assert_eq!(id.account.username, "alice");
    assert_eq!(id.account.keys, vec![ED25519, ECDSA_P256]);
    assert_eq!(id.account.source, "store account alice@example.com");
    assert!(id.rejected.is_empty());
}

#[test]
fn store_answers_404_empty_list_and_system_names_as_errors() {
    let (pki, server) = setup();
    let l = lookup(&pki, &server);
    let err = fetch(&l, "nobody@example.com").unwrap_err();
    assert!(matches!(err, IdentityError::NoSuchAccount(_)), "{err}");
    assert!(err
        .to_string()
        .contains("the store account nobody@example.com does not exist"));
    let err = fetch(&l, "empty@example.com").unwrap_err();
    assert!(matches!(err, IdentityError::NoKeys(_)), "{err}");
    assert!(err.to_string().contains("no SSH keys registered"), "{err}");
    let err = fetch(&l, "root@example.com").unwrap_err();
    assert!(
        matches!(err, IdentityError::UnusableRemoteName { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("system account"), "{err}");
    let err = fetch(&l, "err@example.com").unwrap_err();
    assert!(
        matches!(err, IdentityError::Status { status: 500, .. }),
        "{err}"
    );
}

#[test]
fn malformed_json_and_web_pages_are_named() {
    let (pki, server) = setup();
    let l = lookup(&pki, &server);
    let err = fetch(&l, "bad@example.com").unwrap_err();
    assert!(err.to_string().contains("malformed JSON"), "{err}");
    let err = fetch(&l, "html@example.com").unwrap_err();
    assert!(err.to_string().contains("answered a web page"), "{err}");
    assert!(err.to_string().contains("sso-url"), "{err}");
}

#[test]
fn bad_keys_in_a_fetched_list_are_reported_and_the_good_kept() {
    let (pki, server) = setup();
    let l = lookup(&pki, &server);
    let id = fetch(&l, "mixed@example.com").unwrap();
    assert_eq!(id.account.keys, vec![ED25519]);
    assert_eq!(id.rejected.len(), 1);
    assert_eq!(id.rejected[0].line, 1);
    let err = fetch(&l, "allbad@example.com").unwrap_err();
    assert!(matches!(err, IdentityError::NoUsableKeys { .. }), "{err}");
    assert!(
        err.to_string().contains("key 1:") && err.to_string().contains("key 2:"),
        "{err}"
    );
}

#[test]
fn slow_huge_and_looping_answers_fail_with_their_reason() {
    let (pki, server) = setup();
    let l = lookup(&pki, &server);
    let started = std::time::Instant::now();
    let err = fetch(&l, "slow@example.com").unwrap_err();
    assert!(
        matches!(err, IdentityError::Fetch(FetchError::Timeout { .. })),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let err = fetch(&l, "huge@example.com").unwrap_err();
    assert!(
        matches!(err, IdentityError::Fetch(FetchError::TooLarge { .. })),
        "{err}"
    );
    let err = fetch(&l, "loop@example.com").unwrap_err();
    assert!(
        matches!(
            err,
            IdentityError::Fetch(FetchError::TooManyRedirects { .. })
        ),
        "{err}"
    );
}

#[test]
fn github_and_launchpad_lists() {
    let (pki, server) = setup();
    let l = lookup(&pki, &server);
    let id = fetch(&l, "gh:alice").unwrap();
    assert_eq!(id.account.username, "alice");
    assert_eq!(id.account.keys, vec![ED25519, ECDSA_P256]);
    assert_eq!(id.account.source, "GitHub user alice");
    // GitHub names are case-insensitive; login names are lower-case.
    let id = fetch(&l, "gh:Alice").unwrap();
    assert_eq!(id.account.username, "alice");
    let id = fetch(&l, "lp:alice").unwrap();
    assert_eq!(id.account.keys, vec![ECDSA_P256]);
    assert_eq!(id.account.source, "Launchpad user alice");
    let err = fetch(&l, "gh:nokeys").unwrap_err();
    assert!(
        err.to_string()
            .contains("GitHub user nokeys has no SSH keys"),
        "{err}"
    );
    let err = fetch(&l, "lp:nokeys").unwrap_err();
    assert!(matches!(err, IdentityError::NoKeys(_)), "{err}");
    let err = fetch(&l, "gh:ghost").unwrap_err();
    assert!(
        err.to_string().contains("GitHub user ghost does not exist"),
        "{err}"
    );
    let err = fetch(&l, "lp:ghost").unwrap_err();
    assert!(matches!(err, IdentityError::NoSuchAccount(_)), "{err}");
}

#[test]
fn a_client_with_other_roots_refuses_the_server() {
    let (_pki, server) = setup();
    let other = Pki::new();
    let l = lookup(&other, &server);
    let err = fetch(&l, "alice@example.com").unwrap_err();
    assert!(
        matches!(err, IdentityError::Fetch(FetchError::UnknownIssuer { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("--tls-roots"), "{err}");
}

#[test]
fn a_certificate_for_another_host_is_refused() {
    let pki = Pki::for_names(&["sso.example.com"]);
    let server = Server::start(&pki, route);
    let err = fetch(&lookup(&pki, &server), "alice@example.com").unwrap_err();
    assert!(
        matches!(err, IdentityError::Fetch(FetchError::WrongHost { .. })),
        "{err}"
    );
}

#[test]
fn an_expired_certificate_is_refused() {
    let pki = Pki::with_validity((2020, 1, 1), (2021, 1, 1));
    let server = Server::start(&pki, route);
    let err = fetch(&lookup(&pki, &server), "alice@example.com").unwrap_err();
    assert!(
        matches!(err, IdentityError::Fetch(FetchError::Validity { .. })),
        "{err}"
    );
}

#[test]
fn host_names_resolve_through_the_system_resolver() {
    let (pki, server) = setup();
    let url = format!("https://localhost:{}", server.port);
    let l = Lookup::new(pki.ca_pem().as_bytes(), "roots.pem", &url, quick()).unwrap();
    let id = fetch(&l, "alice@example.com").unwrap();
    assert_eq!(id.account.username, "alice");
    let l = Lookup::new(
        pki.ca_pem().as_bytes(),
        "r",
        "https://no-such-host.invalid",
        quick(),
    )
    .unwrap();
    let err = fetch(&l, "alice@example.com").unwrap_err();
    assert!(
        matches!(err, IdentityError::Fetch(FetchError::Resolve { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
}

#[test]
fn nothing_listening_is_a_connection_error() {
    let pki = Pki::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let l = Lookup::new(pki.ca_pem().as_bytes(), "roots.pem", &url, quick()).unwrap();
    let err = fetch(&l, "alice@example.com").unwrap_err();
    assert!(
        matches!(err, IdentityError::Fetch(FetchError::Connect { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("check the network"), "{err}");
}

#[test]
fn the_sso_url_must_be_https() {
    let pki = Pki::new();
    for url in ["http://login.example.com", "login.example.com", "https://"] {
        let err = Lookup::new(pki.ca_pem().as_bytes(), "r", url, quick()).unwrap_err();
        assert!(matches!(err, IdentityError::Config { .. }), "{url}: {err}");
    }
}

#[test]
fn from_files_reads_the_roots_and_defaults_the_sso_url() {
    let dir = std::env::temp_dir().join(format!("coreforge-identity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let roots = dir.join("tls-roots.pem");
    std::fs::write(&roots, Pki::new().ca_pem()).unwrap();
    let l = Lookup::from_files(&roots, &dir.join("no-sso-url")).unwrap();
    assert_eq!(l.sso_url, DEFAULT_SSO_URL);
    let url_file = dir.join("sso-url");
    std::fs::write(&url_file, "https://10.0.2.2:8443/\n").unwrap();
    let l = Lookup::from_files(&roots, &url_file).unwrap();
    assert_eq!(l.sso_url, "https://10.0.2.2:8443");
    let err = Lookup::from_files(&dir.join("missing.pem"), &url_file).unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pasted_keys_need_a_valid_name_and_every_key_good() {
    let id = pasted("bob", &[ED25519.to_owned()], &system()).unwrap();
    assert_eq!(id.account.source, "pasted key");
    assert_eq!(id.account.keys, vec![ED25519]);
    let err = pasted(
        "bob",
        &[ED25519.to_owned(), "ssh-rsa AAAA".to_owned()],
        &system(),
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("key 2: "), "{err}");
    assert!(matches!(
        pasted("bob", &[], &system()),
        Err(IdentityError::NoPastedKeys)
    ));
    assert!(matches!(
        pasted("daemon", &[ED25519.to_owned()], &system()),
        Err(IdentityError::SystemUsername { .. })
    ));
}

#[test]
fn e_mail_addresses_are_percent_encoded() {
    assert_eq!(percent_encode("alice@example.com"), "alice%40example.com");
    assert_eq!(percent_encode("a+b/c?d#e%"), "a%2Bb%2Fc%3Fd%23e%25");
    assert_eq!(percent_encode("A-z_0.9~"), "A-z_0.9~");
}
