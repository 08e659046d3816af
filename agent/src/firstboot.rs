//! First-boot configuration on the device: console-conf's [`Backend`] over the real network,
//! identity look-ups and the commit, and the choice between the preseed file and a person.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use coreforge_preseed::{Preseed, PRESEED_FILE};
use log::{info, warn};
use rustix::mount::{mount_remount, MountFlags};

use crate::consoleconf::{self, Backend, Consoles, Identity, Interface, Login, Options};
use crate::identity::{self, Lookup, Source, SystemNames};
use crate::net;
use crate::setup::{Account, Network, Setup};
use crate::state::{self, HostKey};

/// How long DHCP (or a static address's link) may take before the person is asked again.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(30);

/// How the device got configured.
#[derive(Debug)]
pub enum Configured {
    /// A person answered console-conf.
    Interactively(Login),
    /// The preseed file on the boot partition answered it.
    Preseeded(Login),
}

/// Why first-boot configuration did not happen; nothing was written in every case.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The preseed file is there but cannot be read or is invalid.
    #[error("the preseed file {path} is not usable: {reason}")]
    BadPreseed {
        /// Where it is.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Applying the preseed file failed (network, look-up or commit).
    #[error("the preseed file {path} could not be applied: {reason}")]
    PreseedFailed {
        /// Where it is.
        path: String,
        /// The step that failed and why.
        reason: String,
    },
    /// Every console hung up before a session committed.
    #[error("no console is left to ask the first-boot questions on")]
    NoConsole,
}

impl Failure {
    /// What the person at the device can do about it.
    pub fn todo(&self) -> &'static str {
        match self {
            Failure::BadPreseed { .. } => {
                "fix console-conf.json on the boot partition (or remove it to answer on the \
                 console), then press Enter"
            }
            Failure::PreseedFailed { .. } => {
                "check the network and the account named in console-conf.json, then press Enter \
                 to try again"
            }
            Failure::NoConsole => "connect a console (serial cable or monitor), then reboot",
        }
    }
}

/// Configures the device: from `<seed>/console-conf.json` if there is one, else by asking on
/// every console. `data` is the mounted `writable`, `base` the mounted base snap.
pub fn configure(seed: &Path, data: &Path, base: &Path) -> Result<Configured, Failure> {
    let mut device = Device::new(data, base);
    let mut consoles = Consoles::all();
    let preseed_path = seed.join(PRESEED_FILE);
    match read_preseed(&preseed_path)? {
        Some(preseed) => {
            info!("applying {}", preseed_path.display());
            let login = consoleconf::run_preseed(&preseed, &mut device, &mut consoles).map_err(
                |reason| Failure::PreseedFailed {
                    path: preseed_path.display().to_string(),
                    reason,
                },
            )?;
            if let Err(e) = remove_preseed(seed, &preseed_path) {
                // Committed already: the next boot finds the device configured and ignores it.
                warn!(
                    "cannot remove {}: {e}; the device is configured and will not apply it again",
                    preseed_path.display()
                );
            }
            Ok(Configured::Preseeded(login))
        }
        None => consoleconf::run(&mut consoles, &mut device, Options::default())
            .map(Configured::Interactively)
            .ok_or(Failure::NoConsole),
    }
}

/// The preseed file, if the boot partition has one.
fn read_preseed(path: &Path) -> Result<Option<Preseed>, Failure> {
    let bad = |reason: String| Failure::BadPreseed {
        path: path.display().to_string(),
        reason,
    };
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    Preseed::parse(&bytes)
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}

/// Removes the consumed preseed file: the boot partition is writable only for this.
fn remove_preseed(seed: &Path, path: &Path) -> io::Result<()> {
    mount_remount(seed, MountFlags::empty(), "")?;
    let removed = fs::remove_file(path).map(|()| rustix::fs::sync());
    let readonly = mount_remount(seed, MountFlags::RDONLY, "");
    removed?;
    readonly.map_err(io::Error::from)
}

/// The real device behind console-conf's screens.
struct Device {
    data: PathBuf,
    base: PathBuf,
    /// The HTTPS client, or why there is none (the look-ups then say so; pasted keys still work).
    lookup: Result<Lookup, String>,
    system: SystemNames,
    host_key: Option<HostKey>,
}

impl Device {
    fn new(data: &Path, base: &Path) -> Device {
        let lookup = Lookup::from_files(
            Path::new(identity::TLS_ROOTS_PATH),
            Path::new(identity::SSO_URL_PATH),
        )
        .map_err(|e| e.to_string());
        if let Err(e) = &lookup {
            warn!("account look-ups are not available: {e}");
        }
        let read = |name: &str| fs::read_to_string(base.join("etc").join(name)).unwrap_or_default();
        Device {
            data: data.to_owned(),
            base: base.to_owned(),
            lookup,
            system: SystemNames::parse(&read("passwd"), &read("group")),
            host_key: None,
        }
    }
}

impl Backend for Device {
    fn interfaces(&mut self) -> Vec<Interface> {
        match net::interfaces() {
            Ok(list) => list
                .into_iter()
                .map(|i| Interface {
                    name: i.name,
                    wireless: i.kind == net::Kind::Wireless,
                    carrier: i.carrier,
                    addresses: i
                        .addresses
                        .iter()
                        .map(|(a, p)| format!("{a}/{p}"))
                        .collect(),
                })
                .collect(),
            Err(e) => {
                warn!("cannot list the network interfaces: {e}");
                Vec::new()
            }
        }
    }

    fn bring_up(&mut self, network: &Network) -> Result<Vec<String>, String> {
        net::bring_up(network, NETWORK_TIMEOUT)
            .map(|addresses| addresses.iter().map(ToString::to_string).collect())
            .map_err(|e| e.to_string())
    }

    fn identity(&mut self, identity: &Identity) -> Result<Account, String> {
        let found = match identity {
            Identity::Keys { username, ssh_keys } => {
                identity::pasted(username, ssh_keys, &self.system)
            }
            other => {
                let Some(source) = Source::of(other) else {
                    return Err("keys need a user name".into());
                };
                let lookup = self.lookup.as_ref().map_err(Clone::clone)?;
                lookup.fetch(&source, &self.system)
            }
        }
        .map_err(|e| e.to_string())?;
        for rejected in &found.rejected {
            warn!(
                "{}: key on line {} refused: {}",
                found.account.source, rejected.line, rejected.reason
            );
        }
        Ok(found.account)
    }

    fn commit(&mut self, setup: &Setup) -> Result<Login, String> {
        let key = match self.host_key.take() {
            Some(key) => key,
            None => HostKey::generate().map_err(|e| e.to_string())?,
        };
        let files = net::os_files(&setup.network, setup.wifi.as_ref());
        let result = state::commit(&self.data, &self.base, setup, &key, &files);
        let fingerprint = format!("ED25519 {}", key.fingerprint());
        self.host_key = Some(key);
        let committed = result.map_err(|e| e.to_string())?;
        info!(
            "configured: account {} (uid {}), keys from {}",
            setup.account.username, committed.uid, setup.account.source
        );
        let addresses = net::addresses()
            .map(|list| list.into_iter().map(|(_, a)| a.to_string()).collect())
            .unwrap_or_default();
        Ok(Login {
            user: setup.account.username.clone(),
            source: setup.account.source.clone(),
            addresses,
            fingerprints: vec![fingerprint],
        })
    }
}
