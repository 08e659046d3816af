//! `coreforge store serve` over HTTPS on loopback, against clients nobody here wrote:
//! Debian's snapd (`snap download` with SNAPPY_FORCE_API_URL) and curl.

mod common;
use common::show;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// `snap` and `curl`, or `None` outside CI without them (a failure in CI).
fn clients() -> Option<()> {
    let have = |t: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if have("snap") && have("curl") {
        return Some(());
    }
    let why = "snap (Debian's snapd) and curl are needed; cross/setup.sh installs them";
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipping outside CI: {why}");
    None
}

fn coreforge(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coreforge"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = coreforge(dir, args);
    assert!(out.status.success(), "coreforge {args:?}:\n{}", show(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// A store with snapd's kind of key (RSA-4096), a snap `hello` for all architectures in
/// beta, and a TLS certificate for 127.0.0.1: made once per test process (in the target
/// directory, made anew each run).
fn store() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve");
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("hello/meta")).unwrap();
        // One CA for every server of the process (ca.pem, cert.pem, key.pem).
        coreforge_tests::sso::TestCa::new()
            .unwrap()
            .write(&d)
            .unwrap();
        fs::write(
            d.join("hello/meta/snap.yaml"),
            "name: hello\nversion: '1.0'\ntype: app\narchitectures: [all]\n",
        )
        .unwrap();
        // Bytes squashfs cannot shrink, so the snap is large enough for ranges to mean
        // something.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        fs::write(d.join("hello/noise"), noise).unwrap();
        ok(&d, &["pack", "hello"]);
        ok(&d, &["store", "init", "store", "--key-type", "rsa-4096"]);
        ok(&d, &["store", "upload", "store", "hello_1.0_all.snap"]);
        ok(&d, &["store", "release", "store", "hello", "1", "beta"]);
        d
    })
}

/// `coreforge store serve` on that store, on a free port; stopped when dropped.
struct Served {
    server: coreforge_tests::store::ServedStore,
    addr: SocketAddr,
    snap: PathBuf,
}

impl Served {
    fn start() -> Served {
        let d = store();
        let server = common::serve(&d.join("store"), d);
        Served {
            addr: server.addr(),
            server,
            snap: d.join("hello_1.0_all.snap"),
        }
    }

    fn url(&self) -> String {
        format!("{}/", self.server.host_url())
    }

    fn path(&self, name: &str) -> PathBuf {
        store().join(name)
    }

    fn curl(&self, args: &[&str]) -> Output {
        Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&self.server.ca)
            .args(args)
            .output()
            .unwrap()
    }
}

/// `snap download ARGS` against the server, in a fresh directory: (output, directory).
fn snap_download(s: &Served, args: &[&str]) -> (Output, tempfile::TempDir) {
    let into = tempfile::tempdir().unwrap();
    let out = Command::new("snap")
        .arg("download")
        .args(args)
        .current_dir(into.path())
        .env("SNAPPY_FORCE_API_URL", s.url())
        .env("SSL_CERT_FILE", s.path("ca.pem"))
        .output()
        .unwrap();
    (out, into)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn snapd_downloads_a_snap_at_a_channel_and_cannot_trust_the_root() {
    if clients().is_none() {
        return;
    }
    let s = Served::start();
    // edge falls back to beta, as the store falls back to more stable risks.
    for channel in ["beta", "edge"] {
        let (out, into) = snap_download(&s, &["--channel", channel, "hello"]);
        let said = text(&out);
        // snapd checked the file's size and SHA3-384 against the refresh answer (it deletes
        // a file that fails), then asked for its assertions.
        let got = fs::read(into.path().join("hello_1.snap")).unwrap_or_default();
        assert_eq!(got, fs::read(&s.snap).unwrap(), "{said}");
        assert!(said.contains("Fetching assertions"), "{said}");
        // snapd decodes every assertion the store serves (RSA keys, snapd's format) and then
        // stops at our root: its account is signed by its own key, which snapd does not
        // trust. A decoding error would mean the format is wrong.
        assert!(!out.status.success(), "{said}");
        assert!(!said.contains("cannot decode"), "{said}");
        assert!(said.contains("account (coreforge-store)"), "{said}");
    }
}

#[test]
fn snapd_is_told_which_channels_have_a_snap_and_which_snaps_exist() {
    if clients().is_none() {
        return;
    }
    let s = Served::start();
    let (out, _) = snap_download(&s, &["--channel", "stable", "hello"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("no snap revision available as specified"),
        "{said}"
    );
    // What snapd read that from: the channels there are, in the error's `releases`.
    let out = s.curl(&[
        "-H",
        "Snap-Device-Architecture: arm64",
        "-d",
        r#"{"actions":[{"action":"install","instance-key":"k","name":"hello","channel":"stable"}]}"#,
        &format!("{}v2/snaps/refresh", s.url()),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = &v["results"][0]["error"];
    assert_eq!(error["code"], "revision-not-found", "{v}");
    assert_eq!(
        error["extra"]["releases"],
        serde_json::json!([{"architecture": "all", "channel": "latest/beta"}]),
        "{v}"
    );
    let (out, _) = snap_download(&s, &["nosuchsnap"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("not found"), "{said}");
}

/// The download URL snapd is given for `hello`.
fn download_url(s: &Served) -> String {
    let out = s.curl(&[
        "-H",
        "Snap-Device-Architecture: amd64",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"context":[],"actions":[{"action":"download","instance-key":"k","name":"hello","channel":"beta"}]}"#,
        &format!("{}v2/snaps/refresh", s.url()),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["results"][0]["snap"]["download"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no download url in {v}"))
        .to_owned()
}

#[test]
fn downloads_resume_with_range_requests() {
    if clients().is_none() {
        return;
    }
    let s = Served::start();
    let whole = fs::read(&s.snap).unwrap();
    let url = download_url(&s);
    let out = s.curl(&["-r", "1000-4999", "-w", "%{http_code}", &url]);
    let body = &out.stdout[..out.stdout.len() - 3];
    assert_eq!(
        &out.stdout[out.stdout.len() - 3..],
        b"206",
        "{}",
        show(&out)
    );
    assert_eq!(body, &whole[1000..5000]);
}

#[test]
fn unknown_assertions_get_snapds_error_list() {
    if clients().is_none() {
        return;
    }
    let s = Served::start();
    let out = s.curl(&[
        "-w",
        "\n%{http_code}",
        &format!("{}v2/assertions/snap-revision/AAAA", s.url()),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    let (body, status) = said.rsplit_once('\n').unwrap();
    assert_eq!(status, "404", "{said}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["error-list"][0]["code"], "not-found", "{v}");
    // A path that tries to leave the assertions folder is just not found.
    let out = s.curl(&[
        "-w",
        "\n%{http_code}",
        "--path-as-is",
        &format!("{}v2/assertions/account/..%2f..%2fstore.key", s.url()),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.ends_with("\n404"), "{said}");
    assert!(
        !said.contains("store.key") || said.contains("error-list"),
        "{said}"
    );
}

#[test]
fn oversized_and_slow_requests_are_cut_off() {
    if clients().is_none() {
        return;
    }
    let s = Served::start();
    // A body over the limit (1 MiB).
    let big = format!(r#"{{"actions":[],"pad":"{}"}}"#, "x".repeat(2 << 20));
    let body = s.path("big.json");
    fs::write(&body, big).unwrap();
    let out = s.curl(&[
        "-H",
        "Snap-Device-Architecture: amd64",
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        "-H",
        "Expect:",
        "--data-binary",
        &format!("@{}", body.display()),
        &format!("{}v2/snaps/refresh", s.url()),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "413",
        "{}",
        show(&out)
    );
    // Headers over the limit (64 KiB): read whole, and refused with an answer the client
    // reads (not a reset while it is still sending).
    let out = s.curl(&[
        "-H",
        &format!("X-Padding: {}", "y".repeat(100 << 10)),
        "-w",
        "\n%{http_code}",
        &format!("{}v2/snaps/info/hello", s.url()),
    ]);
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.ends_with("\n431"), "{}", show(&out));
    assert!(answer.contains("at most 65536"), "{}", show(&out));
    // A client that connects and says nothing is dropped after the handshake timeout
    // (10 s), and the server goes on answering others meanwhile.
    let mut idle = TcpStream::connect(s.addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let out = s.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{}v2/snaps/info/hello", s.url()),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "{}",
        show(&out)
    );
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = idle.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the server wrote to a client that sent nothing");
    let waited = started.elapsed();
    assert!(
        waited > Duration::from_secs(5) && waited < Duration::from_secs(15),
        "closed after {waited:?}"
    );
    let _ = idle.write_all(b"late");
}

/// `coreforge ARGS` as a publisher: the store's CA trusted, logins kept in `config`.
fn publisher(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coreforge"))
        .args(args)
        .current_dir(store())
        .env("SSL_CERT_FILE", store().join("ca.pem"))
        .env("COREFORGE_CONFIG", config)
        .env("COREFORGE_KEYS", config.join("keys"))
        .env("COREFORGE_PASSPHRASE", "key passphrase")
        .output()
        .unwrap()
}

fn publisher_ok(config: &Path, args: &[&str]) -> String {
    let out = publisher(config, args);
    assert!(out.status.success(), "coreforge {args:?}:\n{}", show(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// A snap `name` for all architectures, packed in `dir`.
fn pack_snap(dir: &Path, name: &str, version: &str) -> PathBuf {
    let src = dir.join(format!("{name}-{version}"));
    fs::create_dir_all(src.join("meta")).unwrap();
    fs::write(
        src.join("meta/snap.yaml"),
        format!("name: {name}\nversion: '{version}'\ntype: app\narchitectures: [all]\n"),
    )
    .unwrap();
    fs::write(
        src.join("payload"),
        format!("{name} {version}\n").repeat(50),
    )
    .unwrap();
    let file = dir.join(format!("{name}_{version}_all.snap"));
    let out = coreforge(
        dir,
        &["pack", src.to_str().unwrap(), "-o", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", show(&out));
    file
}

#[test]
fn a_store_account_logs_in_registers_a_key_publishes_and_snapd_downloads_it() {
    if clients().is_none() {
        return;
    }
    let s = Served::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";
    fs::write(h.join("alice.pub"), format!("{key}\n")).unwrap();
    fs::write(h.join("pw"), "alice's long password\n").unwrap();
    fs::write(h.join("wrong"), "not the password\n").unwrap();
    let d = store();
    ok(
        d,
        &[
            "store",
            "account",
            "add",
            "store",
            "Alice@Example.com",
            "--username",
            "alice",
            "--ssh-key",
            h.join("alice.pub").to_str().unwrap(),
            "--password-file",
            h.join("pw").to_str().unwrap(),
        ],
    );
    let url = s.url();
    let url = url.trim_end_matches('/');

    // Ubuntu SSO's key look-up, as first boot asks it.
    let out = s.curl(&[&format!("{url}/api/v2/keys/alice%40example.com")]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["username"], "alice", "{v}");
    assert_eq!(v["ssh_keys"], serde_json::json!([key]), "{v}");
    assert!(
        v["openid_identifier"]
            .as_str()
            .is_some_and(|i| i.starts_with(url)),
        "{v}"
    );
    let out = s.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{url}/api/v2/keys/nobody%40example.com"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");

    // Nothing before a login; a wrong password is refused and says how to log in.
    let app = pack_snap(h, "alice-app", "1");
    let out = publisher(h, &["store", "upload", url, app.to_str().unwrap()]);
    assert!(
        !out.status.success() && show(&out).contains("coreforge login --store"),
        "{}",
        show(&out)
    );
    let out = publisher(
        h,
        &[
            "login",
            "--store",
            url,
            "--email",
            "alice@example.com",
            "--password-file",
            h.join("wrong").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        show(&out).contains("coreforge login --store"),
        "{}",
        show(&out)
    );
    publisher_ok(
        h,
        &[
            "login",
            "--store",
            url,
            "--email",
            "alice@example.com",
            "--password-file",
            h.join("pw").to_str().unwrap(),
        ],
    );
    let logins = h.join("logins.json");
    assert_eq!(
        fs::metadata(&logins).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // register-key as snapcraft does it; the store serves the account-key it signed.
    publisher_ok(h, &["create-key", "release-key", "--account", "alice"]);
    publisher_ok(h, &["register-key", "release-key", "--store", url]);
    let id = publisher_ok(h, &["keys"]);
    let id = id
        .split_whitespace()
        .find(|w| w.len() == 64)
        .unwrap_or_else(|| panic!("no key id in {id}"));
    let out = s.curl(&[
        "-H",
        "Accept: application/x.ubuntu.assertion",
        &format!("{url}/v2/assertions/account-key/{id}"),
    ]);
    let served = String::from_utf8_lossy(&out.stdout);
    assert!(
        served.contains("type: account-key") && served.contains("account-id: alice"),
        "{served}"
    );

    // Upload and release with the token; snapd downloads it at the channel.
    let up = publisher_ok(h, &["store", "upload", url, app.to_str().unwrap()]);
    assert_eq!(up.trim(), "alice-app 1");
    publisher_ok(h, &["store", "release", url, "alice-app", "1", "beta"]);
    let (out, into) = snap_download(&s, &["--channel", "beta", "alice-app"]);
    let got = fs::read(into.path().join("alice-app_1.snap")).unwrap_or_default();
    assert_eq!(got, fs::read(&app).unwrap(), "{}", text(&out));

    // Another account may not release alice's snap.
    fs::write(h.join("bob-pw"), "bob's long password\n").unwrap();
    ok(
        d,
        &[
            "store",
            "account",
            "add",
            "store",
            "bob@example.com",
            "--username",
            "bob",
            "--password-file",
            h.join("bob-pw").to_str().unwrap(),
        ],
    );
    let bob = tempfile::tempdir().unwrap();
    publisher_ok(
        bob.path(),
        &[
            "login",
            "--store",
            url,
            "--email",
            "bob@example.com",
            "--password-file",
            h.join("bob-pw").to_str().unwrap(),
        ],
    );
    let out = publisher(
        bob.path(),
        &["store", "release", url, "alice-app", "1", "stable"],
    );
    assert!(!out.status.success(), "{}", show(&out));
    assert!(show(&out).contains("published by"), "{}", show(&out));
    // Nothing changed: alice-app is in beta only.
    let out = coreforge(
        d,
        &[
            "store",
            "resolve",
            "store",
            "alice-app",
            "-c",
            "stable",
            "-a",
            "amd64",
        ],
    );
    assert!(!out.status.success(), "{}", show(&out));
    let beta = ok(
        d,
        &[
            "store",
            "resolve",
            "store",
            "alice-app",
            "-c",
            "beta",
            "-a",
            "amd64",
        ],
    );
    assert!(beta.starts_with("alice-app 1 "), "{beta}");
}

#[test]
fn an_upload_cut_halfway_publishes_nothing() {
    if clients().is_none() {
        return;
    }
    let s = Served::start();
    let d = store();
    let h = tempfile::tempdir().unwrap();
    fs::write(h.path().join("pw"), "carol's long password\n").unwrap();
    ok(
        d,
        &[
            "store",
            "account",
            "add",
            "store",
            "carol@example.com",
            "--username",
            "carol",
            "--password-file",
            h.path().join("pw").to_str().unwrap(),
        ],
    );
    publisher_ok(
        h.path(),
        &[
            "login",
            "--store",
            s.url().trim_end_matches('/'),
            "--email",
            "carol@example.com",
            "--password-file",
            h.path().join("pw").to_str().unwrap(),
        ],
    );
    let logins: serde_json::Value =
        serde_json::from_slice(&fs::read(h.path().join("logins.json")).unwrap()).unwrap();
    let token = logins[s.url().trim_end_matches('/')]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let snap = pack_snap(h.path(), "carol-app", "1");
    let bytes = fs::read(&snap).unwrap();
    let published = || {
        let out = s.curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{}v2/snaps/info/carol-app", s.url()),
        ]);
        String::from_utf8_lossy(&out.stdout) == "200"
    };
    // Headers that promise the whole snap, half of it, and the connection closed.
    let mut request = format!(
        "POST /dev/api/snaps/upload HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        bytes.len()
    )
    .into_bytes();
    request.extend_from_slice(&bytes[..bytes.len() / 2]);
    let mut client = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &s.addr.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    client.stdin.take().unwrap().write_all(&request).unwrap();
    let _ = client.wait();
    std::thread::sleep(Duration::from_millis(500));
    assert!(!published(), "half a snap was published");
    let left: Vec<_> = fs::read_dir(d.join("store/incoming"))
        .map(|r| r.count())
        .into_iter()
        .collect();
    assert!(
        left.iter().all(|n| *n == 0),
        "files left in incoming/: {left:?}"
    );
    // The whole snap, sent the same way, is published.
    let out = publisher(
        h.path(),
        &[
            "store",
            "upload",
            s.url().trim_end_matches('/'),
            snap.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(published());
}

/// A client with keep-alive, trusting the certificate in `cert`.
fn client(cert: &Path) -> ureq::Agent {
    use ureq::tls::{PemItem, RootCerts, TlsConfig, TlsProvider};
    let pem = fs::read(cert).unwrap();
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|i| match i.unwrap() {
            PemItem::Certificate(c) => Some(c.to_owned()),
            _ => None,
        })
        .collect();
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::Specific(std::sync::Arc::new(certs)))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .max_idle_connections_per_host(64)
        .build()
        .into()
}

/// The refresh answer's `snap` for `name` at beta.
fn refresh_snap(base: &str, cert: &Path, name: &str) -> serde_json::Value {
    let body = format!(
        r#"{{"actions":[{{"action":"download","instance-key":"k","name":"{name}","channel":"beta"}}]}}"#
    );
    let mut resp = client(cert)
        .post(&format!("{base}/v2/snaps/refresh"))
        .header("Snap-Device-Architecture", "amd64")
        .send(body)
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    v["results"][0]["snap"].clone()
}

/// 200 downloads of `name` at once and 2,000 requests for its snap-revision on 20
/// connections from the store at `base`, all answered right, within a bound (the suite's
/// machine has 2 cores).
fn load(base: &str, cert: &Path, name: &str, whole: Vec<u8>) {
    let snap = refresh_snap(base, cert, name);
    let url = snap["download"]["url"].as_str().unwrap().to_owned();
    let hex = snap["download"]["sha3-384"].as_str().unwrap();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    use base64::Engine as _;
    let sha3 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let assertion_url = format!("{base}/v2/assertions/snap-revision/{sha3}");
    let whole = std::sync::Arc::new(whole);
    let started = std::time::Instant::now();
    let downloads: Vec<_> = (0..200)
        .map(|_| {
            let (url, whole, cert) = (url.clone(), whole.clone(), cert.to_owned());
            std::thread::spawn(move || {
                let mut resp = client(&cert).get(&url).call().unwrap();
                assert_eq!(resp.status(), 200);
                let body = resp
                    .body_mut()
                    .with_config()
                    .limit(10 << 20)
                    .read_to_vec()
                    .unwrap();
                assert!(body == *whole, "a download differs");
            })
        })
        .collect();
    let assertions: Vec<_> = (0..20)
        .map(|_| {
            let (url, cert) = (assertion_url.clone(), cert.to_owned());
            std::thread::spawn(move || {
                let agent = client(&cert);
                for _ in 0..100 {
                    let mut resp = agent.get(&url).call().unwrap();
                    assert_eq!(resp.status(), 200);
                    let text = resp.body_mut().read_to_string().unwrap();
                    assert!(text.starts_with("type: snap-revision\n"), "{text}");
                }
            })
        })
        .collect();
    for t in downloads.into_iter().chain(assertions) {
        t.join().unwrap();
    }
    let took = started.elapsed();
    eprintln!("{base}: 200 downloads and 2,000 assertion requests in {took:?}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

#[test]
fn loopback_load_200_downloads_and_2000_assertions() {
    let s = Served::start();
    let whole = fs::read(&s.snap).unwrap();
    load(
        s.url().trim_end_matches('/'),
        &store().join("ca.pem"),
        "hello",
        whole,
    );
}

/// A store whose metadata is in PostgreSQL, served by two processes at once (as behind a
/// load balancer): what one is told, the other answers; releases through both at once all
/// land; the same load as the SQLite store's, answered right.
#[test]
fn two_servers_share_a_store_kept_in_postgresql() {
    if clients().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let Some(pg) = common::Postgres::start(&t.join("pg")) else {
        return;
    };
    ok(t, &["store", "init", "store", "--database", &pg.url]);
    assert_eq!(
        fs::metadata(t.join("store/database"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(
        !t.join("store/store.db").exists(),
        "the metadata went to SQLite"
    );
    fs::write(t.join("pw"), "dana's long password\n").unwrap();
    ok(
        t,
        &[
            "store",
            "account",
            "add",
            "store",
            "dana@example.com",
            "--username",
            "dana",
            "--password-file",
            t.join("pw").to_str().unwrap(),
        ],
    );
    let a = common::serve(&t.join("store"), &t.join("tls"));
    let b = common::serve(&t.join("store"), &t.join("tls"));
    let snap = pack_snap(t, "dana-app", "1");
    let config = t.join("config");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_coreforge"))
            .args(args)
            .env("SSL_CERT_FILE", &a.ca)
            .env("COREFORGE_CONFIG", &config)
            .output()
            .unwrap();
        assert!(out.status.success(), "coreforge {args:?}:\n{}", show(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let (ua, ub) = (a.host_url(), b.host_url());
    run(&[
        "login",
        "--store",
        &ua,
        "--email",
        "dana@example.com",
        "--password-file",
        t.join("pw").to_str().unwrap(),
    ]);
    run(&[
        "login",
        "--store",
        &ub,
        "--email",
        "dana@example.com",
        "--password-file",
        t.join("pw").to_str().unwrap(),
    ]);
    assert_eq!(
        run(&["store", "upload", &ua, snap.to_str().unwrap()]).trim(),
        "dana-app 1"
    );
    run(&["store", "release", &ub, "dana-app", "1", "beta"]);
    let seen = refresh_snap(&ua, &a.ca, "dana-app");
    assert_eq!(seen["revision"], 1, "{seen}");
    // Releases through both servers at once, to tracks t0..t7 each: none lost.
    let writers: Vec<_> = [(ua.clone(), "a"), (ub.clone(), "b")]
        .into_iter()
        .map(|(url, tag)| {
            let (cert, config) = (a.ca.clone(), config.clone());
            std::thread::spawn(move || {
                for i in 0..8 {
                    let out = Command::new(env!("CARGO_BIN_EXE_coreforge"))
                        .args([
                            "store",
                            "release",
                            &url,
                            "dana-app",
                            "1",
                            &format!("{tag}{i}/edge"),
                        ])
                        .env("SSL_CERT_FILE", &cert)
                        .env("COREFORGE_CONFIG", &config)
                        .output()
                        .unwrap();
                    assert!(out.status.success(), "{}", show(&out));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let mut info = client(&a.ca)
        .get(&format!("{ub}/v2/snaps/info/dana-app"))
        .call()
        .unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&info.body_mut().read_to_string().unwrap()).unwrap();
    let channels: Vec<String> = info["channel-map"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"]["name"].as_str().unwrap().to_owned())
        .collect();
    for tag in ["a", "b"] {
        for i in 0..8 {
            assert!(
                channels.contains(&format!("{tag}{i}/edge")),
                "{tag}{i}/edge lost: {channels:?}"
            );
        }
    }
    load(&ub, &a.ca, "dana-app", fs::read(&snap).unwrap());
}

/// Two releases of the same channel at once, of revisions for two architectures each: the
/// channel ends with one of them for both architectures, and a client reading meanwhile
/// never sees one revision for one architecture and the other for the other.
#[test]
fn concurrent_releases_of_one_channel_never_mix() {
    if clients().is_none() {
        return;
    }
    let s = Served::start();
    let d = store();
    for version in ["1", "2"] {
        let src = d.join(format!("duo-{version}"));
        fs::create_dir_all(src.join("meta")).unwrap();
        fs::write(
            src.join("meta/snap.yaml"),
            format!("name: duo\nversion: '{version}'\ntype: app\narchitectures: [arm64, armhf]\n"),
        )
        .unwrap();
        let file = d.join(format!("duo-{version}.snap"));
        ok(
            d,
            &["pack", src.to_str().unwrap(), "-o", file.to_str().unwrap()],
        );
        ok(d, &["store", "upload", "store", file.to_str().unwrap()]);
    }
    let releases: Vec<_> = ["1", "2"]
        .into_iter()
        .map(|rev| {
            let d = d.to_owned();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    ok(&d, &["store", "release", "store", "duo", rev, "candidate"]);
                }
            })
        })
        .collect();
    let url = format!("{}v2/snaps/info/duo", s.url());
    let agent = client(&s.server.ca);
    let mut seen = 0;
    while releases.iter().any(|r| !r.is_finished()) {
        let mut resp = agent.get(&url).call().unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        let revisions: Vec<u64> = v["channel-map"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["channel"]["name"] == "latest/candidate")
            .map(|c| c["revision"].as_u64().unwrap())
            .collect();
        if !revisions.is_empty() {
            seen += 1;
            assert_eq!(revisions.len(), 2, "{v}");
            assert_eq!(revisions[0], revisions[1], "a mix: {revisions:?}");
        }
    }
    for r in releases {
        r.join().unwrap();
    }
    let arm64 = ok(
        d,
        &[
            "store",
            "resolve",
            "store",
            "duo",
            "-c",
            "candidate",
            "-a",
            "arm64",
        ],
    );
    let armhf = ok(
        d,
        &[
            "store",
            "resolve",
            "store",
            "duo",
            "-c",
            "candidate",
            "-a",
            "armhf",
        ],
    );
    assert_eq!(
        arm64.split_whitespace().nth(1),
        armhf.split_whitespace().nth(1)
    );
    eprintln!("read the channel map {seen} times during the releases");
}
