//! The boot script of PID 1: named phases in order, each ending in the prompt.
//!
//! Nothing here returns to `main`: every problem is reported on the consoles and ends at
//! the prompt, where the person at the device can retry, reboot or power off.

use std::fs;
use std::io;
use std::panic::PanicHookInfo;
use std::path::Path;

use coreforge_assertions::{DevicePin, Model, Timestamp, TrustDb};
use log::{debug, error, info, warn};

use crate::cmdline::{Cmdline, Then};
use crate::disk::{self, BootPartition};
use crate::firstboot::{self, Configured};
use crate::modules::{self, Loaded};
use crate::power::{self, Action};
use crate::prompt::{Choice, Keys, PROMPT};
use crate::state::{self, State};
use crate::status::{self, Status, StatusLight};
use crate::{clock, console, handover, logger, memory, model, mounts, seed};

/// A problem that stops the boot: what was wrong, and what to do about it.
#[derive(Debug)]
struct Fatal {
    what: String,
    todo: String,
}

impl From<seed::Failure> for Fatal {
    fn from(failure: seed::Failure) -> Fatal {
        Fatal {
            todo: failure.todo().into(),
            what: failure.to_string(),
        }
    }
}

impl From<handover::Failure> for Fatal {
    fn from(failure: handover::Failure) -> Fatal {
        Fatal {
            todo: failure.todo().into(),
            what: failure.to_string(),
        }
    }
}

impl From<firstboot::Failure> for Fatal {
    fn from(failure: firstboot::Failure) -> Fatal {
        Fatal {
            todo: failure.todo().into(),
            what: failure.to_string(),
        }
    }
}

impl From<model::Failure> for Fatal {
    fn from(failure: model::Failure) -> Fatal {
        Fatal {
            todo: failure.todo().into(),
            what: failure.to_string(),
        }
    }
}

/// What the verify phase hands to the next ones: the device's pin, its verified model, the
/// trust database it verified in, and the seed's snaps, open as they were hashed.
#[derive(Debug)]
struct Verified {
    pin: DevicePin,
    model: Model,
    db: TrustDb,
    seed: seed::VerifiedSeed,
}

/// The init context: what the phases learned so far.
#[derive(Debug)]
pub struct Init {
    cmdline: Cmdline,
    /// The board's status light, if it has one: what the device is doing, with no screen.
    status: Option<StatusLight>,
}

impl Init {
    /// Points output at /dev/console, installs the logger and the panic hook, says hello.
    pub fn start() -> Init {
        console::init_early();
        logger::install();
        std::panic::set_hook(Box::new(rescue));
        info!("coreforge-agent {} starting", env!("CARGO_PKG_VERSION"));
        Init {
            cmdline: Cmdline::default(),
            status: None,
        }
    }

    /// Runs the boot phases, then the prompt, forever.
    pub fn run(mut self) -> ! {
        self.mount_kernel_filesystems();
        self.read_cmdline();
        self.open_consoles();
        self.load_modules();
        // After the modules: the LED's driver (leds_gpio on the Pi) is one of them.
        self.status = status::start_configured(Status::Verifying);
        loop {
            self.show(Status::Verifying);
            if let Err(fatal) = self
                .find_disk()
                .and_then(|_boot| self.report())
                .and_then(|verified| self.hand_over(verified.as_ref()))
            {
                self.show(Status::Failed);
                error!("{} — {}", fatal.what, fatal.todo);
            }
            self.report_memory();
            self.prompt();
        }
    }

    fn mount_kernel_filesystems(&mut self) {
        for problem in mounts::mount_kernel_filesystems() {
            warn!("{problem}");
        }
        if let Err(e) = logger::open_kmsg() {
            warn!("cannot open /dev/kmsg: {e}; messages go to the consoles only");
        }
    }

    fn read_cmdline(&mut self) {
        match fs::read("/proc/cmdline") {
            Ok(bytes) => self.cmdline = Cmdline::parse(&String::from_utf8_lossy(&bytes)),
            Err(e) => warn!("cannot read /proc/cmdline: {e}; using defaults"),
        }
        logger::set_debug(self.cmdline.debug);
        if let Err(e) =
            logger::quiet_kernel_echo(self.cmdline.debug || self.cmdline.kernel_loglevel)
        {
            warn!("cannot set the kernel's console log level: {e}; lines may appear twice");
        }
        for warning in &self.cmdline.warnings {
            warn!("kernel command line: {warning}");
        }
    }

    fn open_consoles(&mut self) {
        for problem in console::open_all(&self.cmdline.consoles) {
            warn!("{problem}");
        }
        let names: Vec<String> = console::all().iter().map(|c| c.path.clone()).collect();
        debug!("consoles: {}", names.join(" "));
    }

    fn load_modules(&mut self) {
        let list = match fs::read_to_string(modules::MODULES_LOAD) {
            Ok(text) => modules::parse_list(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                debug!("no {}: no modules to load", modules::MODULES_LOAD);
                return;
            }
            Err(e) => {
                warn!(
                    "cannot read {}: {e}; no modules loaded",
                    modules::MODULES_LOAD
                );
                return;
            }
        };
        for path in list {
            let name = modules::name(&path);
            match modules::load(&path) {
                Ok(Loaded::Now) => debug!("loaded module {name}"),
                Ok(Loaded::Already) => debug!("loaded module {name} (already loaded)"),
                Err(e) => warn!(
                    "cannot load module {name} from {}: {e} — boot goes on without it",
                    path.display()
                ),
            }
        }
    }

    fn find_disk(&mut self) -> Result<BootPartition, Fatal> {
        if let Err(e) = mounts::unmount_seed() {
            warn!("cannot unmount {}: {e}", mounts::SEED);
        }
        let boot = disk::wait_for_boot(disk::WAIT).map_err(|seen| Fatal {
            what: format!(
                "no FAT partition labelled {} found in {} s (partitions seen: {})",
                disk::LABEL,
                disk::WAIT.as_secs(),
                if seen.is_empty() {
                    "none".into()
                } else {
                    seen.join(", ")
                }
            ),
            todo: "insert the SD card or disk with the coreforge image, then press Enter".into(),
        })?;
        info!(
            "boot partition: {} ({})",
            boot.device.display(),
            disk::LABEL
        );
        mounts::mount_seed(&boot.device).map_err(|e| Fatal {
            what: format!(
                "cannot mount {} read-only as vfat at {}: {e}",
                boot.device.display(),
                mounts::SEED
            ),
            todo: "check that the initramfs loads vfat and its nls_* modules, then press Enter"
                .into(),
        })?;
        Ok(boot)
    }

    /// Reads what the device is from the initramfs (refusing to go on without it), raises
    /// the clock to the image's build time, opens the one seed label the device was built
    /// with and requires its model to be the device's, verifies it against the initramfs's
    /// trusted roots, then checks the seeded snaps against the store's assertions and the
    /// model. Returns what was verified, or `None` when the seed has no snaps to hand over to.
    fn report(&mut self) -> Result<Option<Verified>, Fatal> {
        let seed = Path::new(mounts::SEED);
        let pin = model::read_pin(Path::new(model::PIN_PATH))?;
        let now = clock::raise_to(pin.build_time);
        let pinned = model::open(seed, &pin)?;
        if let Some(warning) = pinned.warning() {
            warn!("{warning}");
        }
        let found = pinned.model;
        info!(
            "model: brand={} model={} (seed label {})",
            model::printable(&found.model.brand_id),
            model::printable(&found.model.model),
            model::printable(&pin.seed_label)
        );
        let db = model::trust_db(&found, model::Sources::initramfs(), now)?;
        let verified = model::verify_in(&db, &found)?;
        info!("{}", model::verified_line(&verified, &found.model));
        let uname = rustix::system::uname();
        let machine = uname.machine().to_string_lossy();
        match seed::verify(seed, &db, &found.model, &machine)? {
            seed::Outcome::NoSnaps => {
                info!("no snaps seeded: nothing to hand over to");
                Ok(None)
            }
            seed::Outcome::Verified(snaps) => {
                info!("{}", snaps.summary().line());
                for snap in std::iter::once(snaps.base()).chain(snaps.others().values()) {
                    debug!(
                        "seed: snap {} verified, {} held open",
                        model::printable(snap.name()),
                        snap.path().display()
                    );
                }
                Ok(Some(Verified {
                    pin,
                    model: found.model,
                    db,
                    seed: snaps,
                }))
            }
        }
    }

    /// Grows and mounts `writable` and mounts the verified base snap; runs console-conf (or
    /// applies the preseed file) unless the device is configured; then switches root into the
    /// OS (returning only if something failed, with everything unmounted for a retry).
    /// `None` (no snaps seeded) has nothing to hand over to. The base is mounted from the
    /// very file descriptor `report()` hashed, never looked up again by name.
    fn hand_over(&mut self, verified: Option<&Verified>) -> Result<(), Fatal> {
        let Some(verified) = verified else {
            return Ok(());
        };
        let result = configure_and_enter(Path::new(mounts::SEED), verified, self.status.as_ref());
        handover::release();
        result
    }

    fn show(&self, status: Status) {
        if let Some(light) = &self.status {
            light.set(status);
        }
    }

    fn report_memory(&mut self) {
        match memory::peak_kb() {
            Some(kb) => info!("memory: peak {kb} kB"),
            None => warn!("cannot read VmHWM from /proc/self/status"),
        }
    }

    /// `coreforge.then=` once, then the prompt until Enter is pressed.
    fn prompt(&mut self) {
        if let Some(then) = self.cmdline.then.take() {
            power_or_report(match then {
                Then::PowerOff => Action::PowerOff,
                Then::Reboot => Action::Reboot,
            });
        }
        loop {
            info!("{PROMPT}");
            match wait_for_choice(true) {
                Choice::Retry => return,
                Choice::Reboot => power_or_report(Action::Reboot),
                Choice::PowerOff => power_or_report(Action::PowerOff),
            }
        }
    }
}

/// The steps of [`Init::hand_over`] that leave mounts behind when they fail.
fn configure_and_enter(
    seed: &Path,
    verified: &Verified,
    light: Option<&StatusLight>,
) -> Result<(), Fatal> {
    let show = |status| {
        if let Some(light) = light {
            light.set(status);
        }
    };
    handover::prepare_data().map_err(Fatal::from)?;
    let base = verified.seed.base();
    handover::mount_base_file(base.file(), &base.path().display().to_string())
        .map_err(Fatal::from)?;
    let data = Path::new(handover::DATA);
    match state::state(data) {
        Ok(State::Configured(record)) => {
            info!(
                "configured already: account {} (keys from {})",
                record.user, record.source
            );
            info!("SSH host key: ED25519 {}", record.host_key);
        }
        Ok(State::Unconfigured) => {
            show(Status::WaitingForSetup);
            // A preseed on the card is applied only if it is the one the pin binds, or a
            // brand-signed system-user verified in this database vouches for it.
            let trust = firstboot::PreseedTrust {
                pinned: verified.pin.preseed_sha3_384.as_deref(),
                db: &verified.db,
                model: &verified.model,
                now: clock::at_least(Timestamp::now(), verified.pin.build_time),
            };
            match firstboot::configure(seed, data, Path::new(handover::BASE), &trust)? {
                Configured::Interactively(login) | Configured::Preseeded(login) => {
                    info!("configured: account {}", login.user)
                }
            }
        }
        Err(e) => {
            return Err(Fatal {
                what: format!("cannot read the device's state on {}: {e}", handover::DATA),
                todo: "check the writable partition, then press Enter".into(),
            })
        }
    }
    show(Status::Done);
    let seed = &verified.seed;
    let snaps: Vec<&seed::SeedSnap> = std::iter::once(seed.base())
        .chain(seed.others().values())
        .collect();
    let kernel = seed.others().get(&seed.summary().kernel);
    match handover::enter(&snaps, kernel).map_err(Fatal::from)? {}
}

/// Waits for a key on any console; Enter counts only if `retry` is offered.
fn wait_for_choice(retry: bool) -> Choice {
    console::discard_input();
    let mut keys: Vec<Keys> = Vec::new();
    console::read_until(|i, byte| {
        if keys.len() <= i {
            keys.resize(i + 1, Keys::default());
        }
        keys[i].feed(byte).filter(|c| retry || *c != Choice::Retry)
    })
}

/// Reboots or powers off; if that fails, says why (and the prompt comes again).
fn power_or_report(action: Action) {
    let e = power::perform(action);
    let verb = match action {
        Action::Reboot => "reboot",
        Action::PowerOff => "power off",
    };
    error!("cannot {verb}: {e} — {}", e.todo());
}

/// The panic hook: report, then a reboot/power-off prompt that never returns, since with
/// `panic = "abort"` returning would kill PID 1 and panic the kernel.
fn rescue(info: &PanicHookInfo<'_>) {
    console::write_all(&format!(
        "error: coreforge-agent failed: {info} — this is a bug, please report it; \
         you can reboot or power off\n"
    ));
    loop {
        console::write_all("Press r to reboot, p to power off\n");
        let action = match wait_for_choice(false) {
            Choice::PowerOff => Action::PowerOff,
            _ => Action::Reboot,
        };
        power_or_report(action);
    }
}
