//! The boot script of PID 1: named phases in order, each ending in the prompt.
//!
//! Nothing here returns to `main`: every problem is reported on the consoles and ends at
//! the prompt, where the person at the device can retry, reboot or power off.

use std::fs;
use std::io;
use std::panic::PanicHookInfo;
use std::path::Path;

use log::{debug, error, info, warn};

use crate::cmdline::{Cmdline, Then};
use crate::disk::{self, BootPartition};
use crate::firstboot::{self, Configured};
use crate::modules::{self, Loaded};
use crate::power::{self, Action};
use crate::prompt::{Choice, Keys, PROMPT};
use crate::state::{self, State};
use crate::status::{self, Status, StatusLight};
use crate::{console, handover, logger, memory, model, mounts, seed};

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
                .and_then(|boot| self.report(&boot))
                .and_then(|base| self.hand_over(base.as_deref()))
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
                Ok(Loaded::Now) => info!("loaded module {name}"),
                Ok(Loaded::Already) => info!("loaded module {name} (already loaded)"),
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

    /// Reports the seed's model, verifies it against the initramfs's trusted roots, then
    /// checks the seeded snaps against the store's assertions and the model. Returns the
    /// verified model's base snap, or `None` when the seed has no model.
    fn report(&mut self, boot: &BootPartition) -> Result<Option<String>, Fatal> {
        let seed = std::path::Path::new(mounts::SEED);
        let system = model::find(seed).map_err(|e| Fatal {
            what: format!("cannot list systems/ on {}: {e}", boot.device.display()),
            todo: "check the boot partition for file system errors, then press Enter".into(),
        })?;
        let Some(system) = system else {
            info!("no model assertion found");
            return Ok(None);
        };
        let found = model::read(&system).map_err(Fatal::from)?;
        info!(
            "model: brand={} model={}",
            model::printable(&found.model.brand_id),
            model::printable(&found.model.model)
        );
        let db = model::trust_db(&found, std::path::Path::new(model::TRUSTED_DIR))
            .map_err(Fatal::from)?;
        let verified = model::verify_in(&db, &found).map_err(Fatal::from)?;
        info!("{}", model::verified_line(&verified, &found.model));
        let uname = rustix::system::uname();
        let machine = uname.machine().to_string_lossy();
        match seed::verify(seed, &db, &found.model, &machine).map_err(Fatal::from)? {
            seed::Outcome::NoSnaps => info!("no snaps seeded"),
            seed::Outcome::Verified(summary) => info!("{}", summary.line()),
        }
        Ok(Some(found.model.base_or_core().to_owned()))
    }

    /// Grows and mounts `writable` and mounts the model's base snap; runs console-conf (or
    /// applies the preseed file) unless the device is configured; then switches root into the
    /// OS (returning only if something failed, with everything unmounted for a retry).
    /// `base` is the verified model's base; `None` (no model) has nothing to hand over to.
    /// Taking it from `report()` rather than reading the model again means the base mounted
    /// is the one the verified model names.
    fn hand_over(&mut self, base: Option<&str>) -> Result<(), Fatal> {
        let Some(base) = base else {
            return Ok(());
        };
        let result = configure_and_enter(Path::new(mounts::SEED), base, self.status.as_ref());
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
fn configure_and_enter(seed: &Path, base: &str, light: Option<&StatusLight>) -> Result<(), Fatal> {
    let show = |status| {
        if let Some(light) = light {
            light.set(status);
        }
    };
    handover::prepare_data().map_err(Fatal::from)?;
    handover::mount_base(seed, base).map_err(Fatal::from)?;
    let data = Path::new(handover::DATA);
    match state::state(data) {
        Ok(State::Configured(record)) => {
            info!(
                "configured already: account {} (keys from {})",
                record.user, record.source
            );
            match state::load_host_key(data) {
                Ok(key) => info!("SSH host key: ED25519 {}", key.fingerprint()),
                Err(e) => warn!("cannot read the SSH host key: {e}"),
            }
        }
        Ok(State::Unconfigured) => {
            show(Status::WaitingForSetup);
            match firstboot::configure(seed, data, Path::new(handover::BASE))? {
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
    match handover::enter().map_err(Fatal::from)? {}
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
