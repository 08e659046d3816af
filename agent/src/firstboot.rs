//! First-boot configuration on the device: console-conf's [`Backend`] over the real network,
//! identity look-ups and the commit, and the choice between the preseed file and a person.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::fs::File;
use std::io::Read;

use coreforge_assertions::{sha3_384, Assertion, Model, SystemUser, Timestamp, TrustDb};
use coreforge_preseed::{Preseed, MAX_PRESEED_LEN, PRESEED_FILE};
use log::{error, info, warn};

use crate::consoleconf::{self, Backend, Consoles, Identity, Interface, Login, Options};
use crate::identity::{self, Lookup, Source, SystemNames};
use crate::setup::{Account, Network, Setup};
use crate::state::{self, HostKey};
use crate::{mounts, net};

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

/// snapd's file name for a system-user assertion on removable media or the boot partition.
pub const AUTO_IMPORT_FILE: &str = "auto-import.assert";

/// Largest `auto-import.assert` read: a system-user with its chain is a few KiB.
pub const MAX_AUTO_IMPORT: usize = 256 * 1024;

/// What decides whether a preseed found on the card may configure the device.
#[derive(Debug)]
pub struct PreseedTrust<'a> {
    /// SHA3-384 of the preseed file `build-image` was given (from the device pin), if any.
    pub pinned: Option<&'a str>,
    /// The verified seed's trust database (roots, the store's keys, the seed's chain).
    pub db: &'a TrustDb,
    /// The verified model.
    pub model: &'a Model,
    /// Now: the later of the clock and the image's build time.
    pub now: Timestamp,
}

/// How a preseed found on the card is to be used.
#[derive(Debug, PartialEq)]
enum Decision {
    /// Nothing on the card: ask a person.
    Ask,
    /// The preseed the image was built with.
    Pinned(Preseed),
    /// Authorized by a brand-signed system-user: its account, the preseed's network (if any).
    SystemUser {
        preseed: Option<Preseed>,
        account: Account,
        email: String,
    },
    /// Refused: say why, rename these files `<name>.refused`, then ask a person.
    Refused {
        what: &'static str,
        reason: String,
        files: Vec<&'static str>,
    },
}

/// Configures the device: from the preseed file if it is the one the image was built with or a
/// brand-signed `auto-import.assert` vouches for it, else by asking on every console. A refused
/// preseed is renamed `<name>.refused`, said on every console, and configures nothing.
pub fn configure(
    seed: &Path,
    data: &Path,
    base: &Path,
    trust: &PreseedTrust<'_>,
) -> Result<Configured, Failure> {
    let mut device = Device::new(data, base);
    let mut consoles = Consoles::all();
    let preseed_path = seed.join(PRESEED_FILE);
    let preseed = read_bounded(&preseed_path, MAX_PRESEED_LEN)?;
    let auto_import = read_bounded(&seed.join(AUTO_IMPORT_FILE), MAX_AUTO_IMPORT)?;
    match decide(preseed.as_deref(), auto_import.as_deref(), trust) {
        Decision::Ask => ask(&mut consoles, &mut device),
        Decision::Refused {
            what,
            reason,
            files,
        } => {
            let line = format!("{what} refused: {}", printable_text(&reason));
            error!("{line} — nothing was configured from it; answer console-conf instead");
            if what != "preseed" && files.contains(&PRESEED_FILE) {
                error!(
                    "preseed refused: {PRESEED_FILE} came with {AUTO_IMPORT_FILE}, which was \
                     refused — nothing was configured from it"
                );
            }
            for name in files {
                if let Err(e) = refuse_file(seed, name) {
                    warn!("cannot rename {name} to {name}.refused: {e}");
                }
            }
            ask(&mut consoles, &mut device)
        }
        Decision::Pinned(preseed) => {
            info!(
                "applying {} (the preseed this image was built with)",
                preseed_path.display()
            );
            let login = apply(&preseed, &mut device, &mut consoles, &preseed_path)?;
            consume(seed, &[PRESEED_FILE]);
            Ok(Configured::Preseeded(login))
        }
        Decision::SystemUser {
            preseed,
            account,
            email,
        } => {
            info!(
                "applying {AUTO_IMPORT_FILE}: system-user {} <{}> signed for this model",
                account.username,
                printable_text(&email)
            );
            let network = match &preseed {
                Some(p) => p.network.clone(),
                None => default_network(&mut device),
            };
            device.preset = Some(account.clone());
            let plan = Preseed {
                network,
                wifi: preseed.as_ref().and_then(|p| p.wifi.clone()),
                identity: Identity::Keys {
                    username: account.username.clone(),
                    ssh_keys: account.keys.clone(),
                },
            };
            let login = apply(
                &plan,
                &mut device,
                &mut consoles,
                &seed.join(AUTO_IMPORT_FILE),
            )?;
            consume(seed, &[PRESEED_FILE, AUTO_IMPORT_FILE]);
            Ok(Configured::Preseeded(login))
        }
    }
}

fn ask(consoles: &mut Consoles, device: &mut Device) -> Result<Configured, Failure> {
    consoleconf::run(consoles, device, Options::default())
        .map(Configured::Interactively)
        .ok_or(Failure::NoConsole)
}

fn apply(
    preseed: &Preseed,
    device: &mut Device,
    consoles: &mut Consoles,
    path: &Path,
) -> Result<Login, Failure> {
    consoleconf::run_preseed(preseed, device, consoles).map_err(|reason| Failure::PreseedFailed {
        path: path.display().to_string(),
        reason,
    })
}

/// Wired DHCP on the first wired interface (with a carrier, if any has one), as Ubuntu Core's
/// default network does, for a system-user given without a console-conf.json.
fn default_network(device: &mut Device) -> Network {
    let wired: Vec<Interface> = device
        .interfaces()
        .into_iter()
        .filter(|i| !i.wireless)
        .collect();
    let pick = wired.iter().find(|i| i.carrier).or(wired.first());
    match pick {
        Some(i) => Network::Dhcp {
            interface: i.name.clone(),
        },
        None => Network::None,
    }
}

/// The policy, on what was read from the card: pure, so every case is a unit test.
fn decide(
    preseed: Option<&[u8]>,
    auto_import: Option<&[u8]>,
    trust: &PreseedTrust<'_>,
) -> Decision {
    if let Some(bytes) = preseed {
        if trust.pinned == Some(sha3_384(bytes).as_str()) {
            return match Preseed::parse(bytes) {
                Ok(p) => Decision::Pinned(p),
                // build-image parsed it: only a different agent version could get here.
                Err(e) => Decision::Refused {
                    what: "preseed",
                    reason: format!("{PRESEED_FILE}: {e}"),
                    files: vec![PRESEED_FILE],
                },
            };
        }
    }
    let refuse = |what, reason: String| {
        let mut files = Vec::new();
        if preseed.is_some() {
            files.push(PRESEED_FILE);
        }
        if auto_import.is_some() {
            files.push(AUTO_IMPORT_FILE);
        }
        Decision::Refused {
            what,
            reason,
            files,
        }
    };
    let Some(assertion_bytes) = auto_import else {
        return match preseed {
            None => Decision::Ask,
            Some(bytes) => refuse(
                "preseed",
                format!(
                    "{PRESEED_FILE} (SHA3-384 {}) is not the preseed this image was built with ({}), \
                     and no {AUTO_IMPORT_FILE} with a brand-signed system-user vouches for it",
                    sha3_384(bytes),
                    trust.pinned.unwrap_or("the image was built without --preseed")
                ),
            ),
        };
    };
    let (user, authority) = match system_user(assertion_bytes, trust) {
        Ok(found) => found,
        Err(reason) => return refuse("auto-import.assert", reason),
    };
    let preseed = match preseed.map(Preseed::parse).transpose() {
        Ok(p) => p,
        Err(e) => return refuse("preseed", format!("{PRESEED_FILE}: {e}")),
    };
    if let Some(p) = &preseed {
        // The account is the system-user's: a preseed may name it, and only its keys.
        let same = match &p.identity {
            Identity::Keys { username, ssh_keys } => {
                *username == user.username && ssh_keys.iter().all(|k| user.ssh_keys.contains(k))
            }
            _ => false,
        };
        if !same {
            return refuse(
                "preseed",
                format!(
                    "{PRESEED_FILE} names another account than the system-user {:?} of \
                     {AUTO_IMPORT_FILE}: leave \"identity\" to the assertion",
                    user.username
                ),
            );
        }
    }
    Decision::SystemUser {
        preseed,
        account: Account {
            username: user.username.clone(),
            keys: user.ssh_keys.clone(),
            source: format!("system-user assertion signed by {authority}"),
            password: user.password.clone(),
        },
        email: user.email,
    }
}

/// The one system-user of `auto-import.assert`, verified (with any chain the file carries) and
/// for this device now; or why not.
fn system_user(bytes: &[u8], trust: &PreseedTrust<'_>) -> Result<(SystemUser, String), String> {
    let all = Assertion::decode_all(bytes).map_err(|e| format!("{AUTO_IMPORT_FILE}: {e}"))?;
    let mut users = all.iter().filter(|a| a.type_name() == "system-user");
    let (Some(found), None) = (users.next(), users.next()) else {
        return Err(format!(
            "{AUTO_IMPORT_FILE} must hold exactly one system-user assertion"
        ));
    };
    let mut db = trust.db.clone();
    for a in &all {
        db.add(a.clone());
    }
    let verified = db
        .verify(found)
        .map_err(|e| format!("the system-user does not verify: {e}"))?;
    let user = SystemUser::from_assertion(verified.assertion()).map_err(|e| e.to_string())?;
    if let Some(why) = user.refuses(verified.signer(), trust.model, None, trust.now) {
        return Err(format!(
            "the system-user {:?} is not for this device: {why}",
            user.username
        ));
    }
    Ok((user, verified.signer().to_owned()))
}

/// The bytes of `path` (at most `max`), `None` if it does not exist.
fn read_bounded(path: &Path, max: usize) -> Result<Option<Vec<u8>>, Failure> {
    let bad = |reason: String| Failure::BadPreseed {
        path: path.display().to_string(),
        reason,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    let len = file.metadata().map_err(|e| bad(e.to_string()))?.len();
    if len > max as u64 {
        return Err(bad(format!("{len} bytes; at most {max} are read")));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    if bytes.len() > max {
        return Err(bad(format!("more than {max} bytes")));
    }
    Ok(Some(bytes))
}

/// `s` with terminal controls escaped (a reason may quote text from the card).
fn printable_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Removes the consumed files: the boot partition is writable only for this.
fn consume(seed: &Path, names: &[&str]) {
    let result = with_writable_seed(seed, || {
        for name in names {
            match fs::remove_file(seed.join(name)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        // Committed already: the next boot finds the device configured and ignores them.
        warn!(
            "cannot remove {}: {e}; the device is configured and will not apply them again",
            names.join(", ")
        );
    }
}

/// Renames `<seed>/<name>` to `<name>.refused`, keeping the file for whoever looks.
fn refuse_file(seed: &Path, name: &str) -> io::Result<()> {
    with_writable_seed(seed, || {
        fs::rename(seed.join(name), seed.join(format!("{name}.refused")))
    })
}

/// Runs `f` with the boot partition remounted read-write (still nosuid,nodev,noexec), then
/// syncs and remounts it read-only.
fn with_writable_seed(seed: &Path, f: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    mounts::remount_seed_at(seed, true)?;
    // fsync of the folder: vfat writes its entries and asks the disk to flush its cache
    // (sync(2) alone does not, and a power cut then loses the rename).
    let done = f().and_then(|()| File::open(seed)?.sync_all());
    let readonly = mounts::remount_seed_at(seed, false);
    done?;
    readonly
}

/// The real device behind console-conf's screens.
struct Device {
    data: PathBuf,
    base: PathBuf,
    /// The HTTPS client, or why there is none (the look-ups then say so; pasted keys still work).
    lookup: Result<Lookup, String>,
    system: SystemNames,
    host_key: Option<HostKey>,
    /// The account of a verified system-user assertion: its password and where it came from.
    preset: Option<Account>,
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
            preset: None,
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
        let mut found = found;
        if let Some(preset) = self
            .preset
            .as_ref()
            .filter(|p| p.username == found.account.username)
        {
            found.account.password = preset.password.clone();
            found.account.source = preset.source.clone();
        }
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
        let os = crate::setup::Os::of(&self.base);
        let files = net::os_files(&setup.network, setup.wifi.as_ref(), os);
        let result = state::commit(&self.data, &self.base, os, setup, &key, &files);
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

#[cfg(test)]
mod tests;
