//! `coreforge store init|upload|release|revoke-key|resolve|serve DIR ...`: the local store, and
//! serving it over HTTPS.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use coreforge_assertions::Timestamp;

use super::login;
use crate::passphrase::first_line;
use crate::serve;
use crate::store::remote::{self, Remote};
use crate::store::{open_store, LocalStore, StoreKey, DEFAULT_AUTHORITY};

/// Arguments of `store`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Create a store in DIR: its signing key (not passphrase protected) and root assertions.
    Init {
        /// The store directory (created if missing).
        dir: PathBuf,
        /// The store's account id, the authority of what it signs.
        #[arg(long, value_name = "ID", default_value = DEFAULT_AUTHORITY)]
        authority_id: String,
        /// The store's signing key: ed25519, or rsa-4096 for a store snapd's own tools read
        /// (`snap download` from `store serve`).
        #[arg(long, value_enum, default_value = "ed25519")]
        key_type: StoreKey,
        /// Keep the store's metadata in this PostgreSQL database (an empty one; e.g.
        /// postgres://USER:PASSWORD@HOST/DB) instead of DIR/store.db, for several `store
        /// serve` processes sharing DIR; DIR/database (0600) remembers it.
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// Add a snap as its next revision; prints NAME REVISION.
    Upload {
        /// The store directory, or a served store's URL (after `coreforge login`).
        dir: PathBuf,
        /// The snap file.
        file: PathBuf,
        /// The publisher's account id (default: the store's own account).
        #[arg(long, value_name = "ID")]
        publisher: Option<String>,
    },
    /// Release a revision to channels ([track/]risk[/branch]) for the architectures it has.
    Release {
        /// The store directory, or a served store's URL (after `coreforge login`).
        dir: PathBuf,
        /// The snap name.
        name: String,
        /// The revision to release.
        revision: u64,
        /// Channels, e.g. stable, beta, latest/edge, 22/candidate.
        #[arg(required = true)]
        channels: Vec<String>,
    },
    /// Revoke an account-key: sign its next revision with `until` (default: now); devices of
    /// images built afterwards refuse what it signs, whatever older revision they are given.
    RevokeKey {
        /// The store directory.
        dir: PathBuf,
        /// The key's id (its `public-key-sha3-384`).
        key_id: String,
        /// End of the key's validity, RFC 3339 (default: now).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
    },
    /// Show which revision a device of ARCH gets at CHANNEL; prints NAME REVISION FILE.
    Resolve {
        /// The store directory.
        dir: PathBuf,
        /// The snap name.
        name: String,
        /// The channel (falls back to more stable risks).
        #[arg(short, long, default_value = "stable")]
        channel: String,
        /// The device architecture.
        #[arg(short, long)]
        arch: String,
        /// Print the snap's snap-declaration and snap-revision instead.
        #[arg(long)]
        assertions: bool,
        /// The root assertions to trust, when DIR is a served store's URL.
        #[arg(long, value_name = "FILE")]
        trusted: Option<PathBuf>,
    },
    /// Manage the store's accounts (the people who log in, publish, and whose SSH keys
    /// devices take).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Serve the store over HTTPS with snapd's store API (`snap download` with
    /// SNAPPY_FORCE_API_URL=https://ADDR/); runs until stopped.
    Serve {
        /// The store directory.
        dir: PathBuf,
        /// Address and port to listen on (port 0: any free one, printed when ready).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
        listen: std::net::SocketAddr,
        /// The server's certificate chain, PEM (server certificate first).
        #[arg(long, value_name = "PEM")]
        tls_cert: PathBuf,
        /// The certificate's private key, PEM.
        #[arg(long, value_name = "PEM")]
        tls_key: PathBuf,
    },
}

#[derive(clap::Subcommand, Debug)]
enum AccountCommand {
    /// Add an account (or change its username, keys or password).
    Add {
        /// The store directory.
        dir: PathBuf,
        /// The account's e-mail address (what people type to log in, and at first boot).
        email: String,
        /// The account's username: its account id as a publisher, and the user a device
        /// creates for it.
        #[arg(long, value_name = "NAME")]
        username: String,
        /// An OpenSSH public key file (one key per line); repeat for more.
        #[arg(long, value_name = "FILE")]
        ssh_key: Vec<PathBuf>,
        /// Read the account's password from FILE (its first line); without it the account
        /// cannot log in (its keys are still served).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
}

/// The URL, when `dir` names a served store rather than a directory.
fn url_of(dir: &std::path::Path) -> Option<&str> {
    dir.to_str().filter(|s| remote::is_url(s))
}

/// Runs the store subcommand.
pub fn run(args: &Args) -> Result<ExitCode> {
    match &args.command {
        Command::Init {
            dir,
            authority_id,
            key_type,
            database,
        } => {
            let store = LocalStore::init(dir, authority_id, *key_type, database.as_deref())
                .with_context(|| format!("cannot create a store in {}", dir.display()))?;
            println!(
                "created store {} for authority {} with key {}\ndevices trust {}",
                dir.display(),
                store.authority_id(),
                store.key_id(),
                store.roots_path().display()
            );
        }
        Command::Upload {
            dir,
            file,
            publisher,
        } => {
            if let Some(url) = url_of(dir) {
                if publisher.is_some() {
                    bail!("--publisher is for store directories; a served store takes the publisher from your login");
                }
                let remote = Remote::new(url)?;
                let login = login::saved(&remote)?;
                let (name, revision, new) = remote
                    .upload(&login.token, file)
                    .with_context(|| format!("cannot upload {}", file.display()))?;
                if !new {
                    eprintln!(
                        "{} was uploaded before as {name} revision {revision}",
                        file.display()
                    );
                }
                println!("{name} {revision}");
                return Ok(ExitCode::SUCCESS);
            }
            let mut store = LocalStore::open_locked(dir)?;
            let up = store
                .upload(file, publisher.as_deref())
                .with_context(|| format!("cannot upload {}", file.display()))?;
            if !up.new {
                eprintln!(
                    "{} was uploaded before as {} revision {}",
                    file.display(),
                    up.name,
                    up.revision
                );
            }
            println!("{} {}", up.name, up.revision);
        }
        Command::Release {
            dir,
            name,
            revision,
            channels,
        } => {
            if let Some(url) = url_of(dir) {
                let remote = Remote::new(url)?;
                let login = login::saved(&remote)?;
                let released = remote
                    .release(&login.token, name, *revision, channels)
                    .with_context(|| format!("cannot release {name} revision {revision}"))?;
                for (channel, archs) in released {
                    println!(
                        "released {name} r{revision} ({}) to {channel}",
                        archs.join(", ")
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            let mut store = LocalStore::open_locked(dir)?;
            let released = store
                .release(name, *revision, channels)
                .with_context(|| format!("cannot release {name} revision {revision}"))?;
            for r in released {
                println!(
                    "released {name} r{revision} ({}) to {}",
                    r.architectures.join(", "),
                    r.channel
                );
            }
        }
        Command::RevokeKey { dir, key_id, until } => {
            let until = match until {
                Some(s) => Timestamp::parse(s).with_context(|| {
                    format!("--until {s:?} is not an RFC 3339 time (2026-01-31T12:00:00Z)")
                })?,
                None => Timestamp::from_unix(Timestamp::now().unix()),
            };
            let store = LocalStore::open_locked(dir)?;
            let revoked = store
                .revoke_key(key_id, until)
                .with_context(|| format!("cannot revoke key {key_id}"))?;
            println!(
                "revoked key {key_id} of {} from {until} (account-key revision {})",
                revoked.header_str("account-id").unwrap_or_default(),
                revoked.revision()
            );
        }
        Command::Resolve {
            dir,
            name,
            channel,
            arch,
            assertions,
            trusted,
        } => {
            // Through the trait, as build-image sees a store.
            let cache = std::env::temp_dir().join("coreforge-cache");
            let store = open_store(&dir.to_string_lossy(), trusted.as_deref(), &cache)?;
            let snap = store.resolve(name, channel, arch)?;
            if *assertions {
                let all = store.snap_assertions(&snap)?;
                let text: Vec<&[u8]> = all.iter().map(|a| a.encode()).collect();
                let mut out = text.join(&b"\n\n"[..]);
                out.push(b'\n');
                std::io::stdout()
                    .write_all(&out)
                    .context("cannot write to standard output")?;
            } else {
                println!("{} {} {}", snap.name, snap.revision, snap.path.display());
            }
        }
        Command::Account {
            command:
                AccountCommand::Add {
                    dir,
                    email,
                    username,
                    ssh_key,
                    password_file,
                },
        } => {
            let mut keys = Vec::new();
            for file in ssh_key {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read the SSH key file {}", file.display()))?;
                keys.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_owned),
                );
            }
            let password = password_file
                .as_deref()
                .map(|path| first_line(path, "password"))
                .transpose()?;
            if password.as_ref().is_some_and(|p| p.len() < 8) {
                bail!("the password is shorter than 8 characters; choose a longer one");
            }
            let store = LocalStore::open(dir)?;
            let person = store
                .add_account(
                    email,
                    username,
                    &keys,
                    password.as_ref().map(|p| p.as_str()),
                )
                .with_context(|| format!("cannot add the account {email}"))?;
            println!(
                "account {email}: username {}, {} SSH key(s){}",
                person.username,
                person.ssh_keys.len(),
                if password.is_some() {
                    ", password set"
                } else {
                    ""
                }
            );
        }
        Command::Serve {
            dir,
            listen,
            tls_cert,
            tls_key,
        } => {
            let tls = serve::tls_config(tls_cert, tls_key)?;
            serve::serve(dir, *listen, tls, serve::Limits::default(), |addr| {
                println!("serving the store {} on https://{addr}/", dir.display());
                // Whoever started the server waits for this line: flush it now.
                let _ = std::io::stdout().flush();
            })
            .with_context(|| format!("cannot serve the store {}", dir.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
