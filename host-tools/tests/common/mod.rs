//! Helpers shared by the CLI's integration tests (each test file uses some of them).
#![allow(dead_code)]

pub mod world;

use std::process::Output;

use base64::Engine;
use sha3::{Digest, Sha3_384};

/// A finished command's status, stdout and stderr, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Unpadded base64url of SHA3-384: a snap's `snap-sha3-384`.
pub fn sha3_b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha3_384::digest(bytes))
}

/// `coreforge store serve STORE` (this package's binary) with the certificate in
/// `tls_dir`, made there if there is none; stopped when dropped.
pub fn serve(
    store: &std::path::Path,
    tls_dir: &std::path::Path,
) -> coreforge_tests::store::ServedStore {
    coreforge_tests::store::ServedStore::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_coreforge")),
        store,
        tls_dir,
    )
    .unwrap()
}

/// A PostgreSQL server of its own (Debian's packages) in `dir`, on a Unix socket there,
/// stopped when dropped; `None` outside CI when PostgreSQL is not installed (a failure in CI).
#[derive(Debug)]
pub struct Postgres {
    child: std::process::Child,
    /// A libpq connection string for its `postgres` database.
    pub url: String,
}

impl Postgres {
    pub fn start(dir: &std::path::Path) -> Option<Postgres> {
        use std::process::Command;
        let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path().join("bin"))
                .find(|b| b.join("initdb").exists())
        });
        let Some(bin) = bin else {
            let why = "PostgreSQL is not installed (cross/setup.sh installs postgresql)";
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("skipping outside CI: {why}");
            return None;
        };
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        // As root, the server runs as the `postgres` user (it refuses root).
        let root = rustix::process::geteuid().is_root();
        let as_owner = |program: &std::path::Path| {
            let mut c = if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            };
            c.current_dir("/");
            c
        };
        if root {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of {}", dir.display());
        }
        let out = as_owner(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"])
            .arg(dir.join("data"))
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb:\n{}", show(&out));
        let port = 20000 + (std::process::id() % 20000);
        let child = as_owner(&bin.join("postgres"))
            .arg("-D")
            .arg(dir.join("data"))
            .arg("-k")
            .arg(dir)
            .args(["-c", "listen_addresses=", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let socket = dir.join(format!(".s.PGSQL.{port}"));
        for _ in 0..200 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(
            socket.exists(),
            "PostgreSQL did not start in {}",
            dir.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        Some(Postgres {
            child,
            url: format!(
                "host={} port={port} user=postgres dbname=postgres",
                dir.display()
            ),
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGTERM: a smart shutdown (runuser passes it on).
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
