//! Headless status: a device with no monitor and no cable still says what it is doing, by
//! blinking the board's activity LED (or a GPIO line) in one pattern per boot phase.
//!
//! The board's light is named at image build time in `/etc/coreforge/status-led` (see
//! [`LightSpec`]): `led:NAME` for a LED class device (`/sys/class/leds/NAME`) or
//! `gpio:CHIP:LINE` for a GPIO line driven through `linux-embedded-hal`. A background thread
//! plays the pattern; [`StatusLight::set`] switches it at once.

use embedded_hal::digital::{ErrorKind, ErrorType, OutputPin};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

/// Where the image builder names the board's status light.
pub const CONFIG: &str = "/etc/coreforge/status-led";

/// What the device is doing, as the light shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Verifying the seed: fast even blinking (5 Hz), "busy".
    Verifying,
    /// Waiting for someone to configure it (or for the network): slow blinking, 1 s on, 1 s off.
    WaitingForSetup,
    /// Stopped on an error: three short flashes, then a pause, repeated.
    Failed,
    /// Configured and handing over to the OS: steady on (stays on after the hand-over).
    Done,
}

/// One step of a pattern: the level, and how long to hold it (`None`: until the next status).
type Step = (bool, Option<Duration>);

const fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

const VERIFYING: &[Step] = &[(true, ms(100)), (false, ms(100))];
const WAITING: &[Step] = &[(true, ms(1000)), (false, ms(1000))];
const FAILED: &[Step] = &[
    (true, ms(150)),
    (false, ms(150)),
    (true, ms(150)),
    (false, ms(150)),
    (true, ms(150)),
    (false, ms(1200)),
];
const DONE: &[Step] = &[(true, None)];

impl Status {
    /// The pattern, played in a loop: (on?, how long).
    pub fn pattern(self) -> &'static [Step] {
        match self {
            Status::Verifying => VERIFYING,
            Status::WaitingForSetup => WAITING,
            Status::Failed => FAILED,
            Status::Done => DONE,
        }
    }
}

/// What the pattern player waits for between steps.
enum Event {
    /// The step's time is up.
    Timeout,
    /// A new status.
    Status(Status),
    /// No more statuses will come.
    Closed,
}

/// The source of status changes, with a timeout (a channel; a scripted clock in tests).
trait Events {
    /// Waits up to `timeout` (`None`: forever) for the next status.
    fn wait(&mut self, timeout: Option<Duration>) -> Event;
}

impl Events for Receiver<Status> {
    fn wait(&mut self, timeout: Option<Duration>) -> Event {
        let got = match timeout {
            Some(t) => self.recv_timeout(t),
            None => self.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match got {
            Ok(status) => Event::Status(status),
            Err(RecvTimeoutError::Timeout) => Event::Timeout,
            Err(RecvTimeoutError::Disconnected) => Event::Closed,
        }
    }
}

/// Plays `status`'s pattern on `pin`, switching when `events` brings a new status, until
/// they close. A failing pin is reported once per status and otherwise ignored: the light
/// is a courtesy, never a reason to stop booting.
fn play<P: OutputPin>(pin: &mut P, mut status: Status, events: &mut impl Events) {
    let mut reported = false;
    loop {
        for &(on, hold) in status.pattern() {
            let set = if on { pin.set_high() } else { pin.set_low() };
            if let Err(e) = set {
                if !reported {
                    log::warn!("status light: cannot switch it: {e:?}");
                    reported = true;
                }
            }
            match events.wait(hold) {
                Event::Timeout => {}
                Event::Status(next) => {
                    status = next;
                    reported = false;
                    break;
                }
                Event::Closed => return,
            }
        }
    }
}

/// The status light, driven from a background thread.
#[derive(Debug)]
pub struct StatusLight {
    tx: Sender<Status>,
}

impl StatusLight {
    /// Starts playing `status` on `pin` in a background thread.
    pub fn start<P>(mut pin: P, status: Status) -> io::Result<StatusLight>
    where
        P: OutputPin + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("status-light".into())
            .spawn(move || play(&mut pin, status, &mut rx))?;
        Ok(StatusLight { tx })
    }

    /// Shows `status` from now on.
    pub fn set(&self, status: Status) {
        // The thread only ends when this handle is dropped: a send cannot fail before.
        let _ = self.tx.send(status);
    }
}

/// Which light a board has, as written in [`CONFIG`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LightSpec {
    /// `led:NAME`: the LED class device `/sys/class/leds/NAME`.
    Led(String),
    /// `gpio:CHIP:LINE`: line LINE of `/dev/CHIP` (`gpiochip0`; a bare number means `gpiochipN`).
    Gpio {
        /// Device name under /dev.
        chip: String,
        /// Line offset on that chip.
        line: u32,
    },
}

/// Why the status light cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LightError {
    /// The configuration line is not `led:NAME` or `gpio:CHIP:LINE`.
    #[error("{CONFIG}: {0:?} is not led:NAME or gpio:CHIP:LINE; fix the board's status_led in board-support")]
    BadSpec(String),
    /// The LED or GPIO could not be opened.
    #[error("cannot open the status light {what}: {source}; check the board's status_led and that its driver module is loaded")]
    Open {
        /// `/sys/class/leds/ACT`, `/dev/gpiochip0 line 17`, ...
        what: String,
        /// Why.
        source: io::Error,
    },
}

impl LightSpec {
    /// Parses one line of [`CONFIG`] (surrounding white space ignored).
    pub fn parse(text: &str) -> Result<LightSpec, LightError> {
        let text = text.trim();
        let bad = || LightError::BadSpec(text.to_string());
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c))
        };
        if let Some(name) = text.strip_prefix("led:") {
            // A device name, never a path: `..` or `/` would leave /sys/class/leds.
            return if plain(name) && !name.contains("..") {
                Ok(LightSpec::Led(name.to_string()))
            } else {
                Err(bad())
            };
        }
        let rest = text.strip_prefix("gpio:").ok_or_else(bad)?;
        let (chip, line) = rest.rsplit_once(':').ok_or_else(bad)?;
        let line = line.parse().map_err(|_| bad())?;
        let chip = if chip.chars().all(|c| c.is_ascii_digit()) && !chip.is_empty() {
            format!("gpiochip{chip}")
        } else if chip.starts_with("gpiochip") && plain(chip) && !chip.contains(':') {
            chip.to_string()
        } else {
            return Err(bad());
        };
        Ok(LightSpec::Gpio { chip, line })
    }
}

/// Starts the light named in [`CONFIG`] showing `status`; `None` (logged) when the board has
/// none or it cannot be opened. Never fails the boot.
pub fn start_configured(status: Status) -> Option<StatusLight> {
    let text = match std::fs::read_to_string(CONFIG) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            log::warn!("status light: cannot read {CONFIG}: {e}");
            return None;
        }
    };
    let started = LightSpec::parse(&text).and_then(|spec| start(&spec, status));
    match started {
        Ok(light) => Some(light),
        Err(e) => {
            log::warn!("status light: {e}");
            None
        }
    }
}

/// Opens the light `spec` names and starts showing `status` on it.
pub fn start(spec: &LightSpec, status: Status) -> Result<StatusLight, LightError> {
    let started = match spec {
        LightSpec::Led(name) => {
            let dir = Path::new("/sys/class/leds").join(name);
            let led = SysfsLed::open(&dir).map_err(|source| LightError::Open {
                what: dir.display().to_string(),
                source,
            })?;
            StatusLight::start(led, status)
        }
        LightSpec::Gpio { chip, line } => {
            let pin = gpio_line(chip, *line).map_err(|source| LightError::Open {
                what: format!("/dev/{chip} line {line}"),
                source,
            })?;
            StatusLight::start(pin, status)
        }
    };
    started.map_err(|source| LightError::Open {
        what: "thread".into(),
        source,
    })
}

/// Requests `line` of `/dev/CHIP` as an output, initially off.
fn gpio_line(chip: &str, line: u32) -> io::Result<linux_embedded_hal::CdevPin> {
    use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
    let to_io = |e: linux_embedded_hal::gpio_cdev::Error| io::Error::other(e.to_string());
    let mut chip = Chip::new(Path::new("/dev").join(chip)).map_err(to_io)?;
    let handle = chip
        .get_line(line)
        .and_then(|l| l.request(LineRequestFlags::OUTPUT, 0, "coreforge-agent"))
        .map_err(to_io)?;
    linux_embedded_hal::CdevPin::new(handle).map_err(to_io)
}

/// A LED class device (`/sys/class/leds/NAME`) as an output pin: high is full brightness.
#[derive(Debug)]
pub struct SysfsLed {
    brightness: File,
    /// What "on" writes: the LED's `max_brightness`.
    on: Vec<u8>,
    dir: PathBuf,
}

/// A failed write to a LED's `brightness` file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct LedError {
    path: PathBuf,
    source: io::Error,
}

impl embedded_hal::digital::Error for LedError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl SysfsLed {
    /// Opens the LED at `dir` (e.g. `/sys/class/leds/ACT`), taking it from its kernel trigger
    /// (a heartbeat or disk activity would mix with our pattern).
    pub fn open(dir: &Path) -> io::Result<SysfsLed> {
        let brightness = OpenOptions::new()
            .write(true)
            .open(dir.join("brightness"))?;
        // A LED with no triggers has no trigger file; nothing to take it from then.
        if let Ok(trigger) = OpenOptions::new().write(true).open(dir.join("trigger")) {
            trigger.write_all_at(b"none", 0)?;
        }
        let max = std::fs::read_to_string(dir.join("max_brightness"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|&m| m > 0)
            .unwrap_or(1);
        Ok(SysfsLed {
            brightness,
            on: max.to_string().into_bytes(),
            dir: dir.to_path_buf(),
        })
    }

    fn write(&mut self, value: &[u8]) -> Result<(), LedError> {
        self.brightness
            .write_all_at(value, 0)
            .map_err(|source| LedError {
                path: self.dir.join("brightness"),
                source,
            })
    }
}

impl ErrorType for SysfsLed {
    type Error = LedError;
}

impl OutputPin for SysfsLed {
    fn set_low(&mut self) -> Result<(), LedError> {
        self.write(b"0")
    }

    fn set_high(&mut self) -> Result<(), LedError> {
        let on = std::mem::take(&mut self.on);
        let result = self.write(&on);
        self.on = on;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// A virtual clock shared by the scripted events and the simulated pin.
    type Clock = Arc<Mutex<Duration>>;

    /// A pin that records (time, level) at every change.
    struct SimPin {
        clock: Clock,
        log: Arc<Mutex<Vec<(Duration, bool)>>>,
        fail: bool,
    }

    #[derive(Debug)]
    struct SimError;

    impl embedded_hal::digital::Error for SimError {
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    impl ErrorType for SimPin {
        type Error = SimError;
    }

    impl SimPin {
        fn record(&mut self, level: bool) -> Result<(), SimError> {
            let now = *self.clock.lock().unwrap();
            let mut log = self.log.lock().unwrap();
            // Transitions only: setting the level it already has changes nothing.
            if log.last().map(|&(_, l)| l) != Some(level) {
                log.push((now, level));
            }
            if self.fail {
                Err(SimError)
            } else {
                Ok(())
            }
        }
    }

    impl OutputPin for SimPin {
        fn set_low(&mut self) -> Result<(), SimError> {
            self.record(false)
        }
        fn set_high(&mut self) -> Result<(), SimError> {
            self.record(true)
        }
    }

    /// Status changes at given virtual times, then the end of the run.
    struct Script {
        clock: Clock,
        changes: VecDeque<(Duration, Status)>,
        end: Duration,
    }

    impl Events for Script {
        fn wait(&mut self, timeout: Option<Duration>) -> Event {
            let mut now = self.clock.lock().unwrap();
            let deadline = timeout.map_or(self.end, |t| (*now + t).min(self.end));
            if let Some(&(at, status)) = self.changes.front() {
                if at <= deadline {
                    self.changes.pop_front();
                    *now = at;
                    return Event::Status(status);
                }
            }
            *now = deadline;
            if deadline >= self.end {
                Event::Closed
            } else {
                Event::Timeout
            }
        }
    }

    /// Plays `first`, then `changes`, for `millis` of virtual time; returns the transitions
    /// in milliseconds.
    fn run(first: Status, changes: &[(u64, Status)], millis: u64) -> Vec<(u64, bool)> {
        let clock = Clock::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut pin = SimPin {
            clock: clock.clone(),
            log: log.clone(),
            fail: false,
        };
        let mut script = Script {
            clock,
            changes: changes
                .iter()
                .map(|&(t, s)| (Duration::from_millis(t), s))
                .collect(),
            end: Duration::from_millis(millis),
        };
        play(&mut pin, first, &mut script);
        let log = log.lock().unwrap();
        log.iter()
            .map(|&(t, l)| (t.as_millis() as u64, l))
            .collect()
    }

    /// The transitions a pattern should make from time 0 for `millis`.
    fn expected(status: Status, millis: u64) -> Vec<(u64, bool)> {
        let mut out: Vec<(u64, bool)> = Vec::new();
        let mut t = 0;
        'outer: loop {
            for &(on, hold) in status.pattern() {
                if out.last().map(|&(_, l)| l) != Some(on) {
                    out.push((t, on));
                }
                match hold {
                    Some(d) => t += d.as_millis() as u64,
                    None => break 'outer,
                }
                if t >= millis {
                    break 'outer;
                }
            }
        }
        out
    }

    const ALL: [Status; 4] = [
        Status::Verifying,
        Status::WaitingForSetup,
        Status::Failed,
        Status::Done,
    ];

    #[test]
    fn each_pattern_has_its_documented_timing() {
        let verifying = run(Status::Verifying, &[], 1000);
        assert_eq!(
            &verifying[..4],
            &[(0, true), (100, false), (200, true), (300, false)]
        );
        assert_eq!(verifying.len(), 10, "5 Hz: 5 on and 5 off in a second");

        let waiting = run(Status::WaitingForSetup, &[], 5000);
        assert_eq!(
            waiting,
            [
                (0, true),
                (1000, false),
                (2000, true),
                (3000, false),
                (4000, true)
            ]
        );

        let failed = run(Status::Failed, &[], 3600);
        assert_eq!(
            failed,
            [
                (0, true),
                (150, false),
                (300, true),
                (450, false),
                (600, true),
                (750, false),
                // The pause, then the three flashes again.
                (1950, true),
                (2100, false),
                (2250, true),
                (2400, false),
                (2550, true),
                (2700, false),
            ]
        );

        assert_eq!(run(Status::Done, &[], 60_000), [(0, true)]);
        for status in ALL {
            assert_eq!(run(status, &[], 7000), expected(status, 7000), "{status:?}");
        }
    }

    #[test]
    fn patterns_are_distinct() {
        // Two statuses look alike when their on/off durations over a few cycles match.
        let runs = |status| {
            let t = run(status, &[], 8000);
            let mut lengths: Vec<(bool, u64)> =
                t.windows(2).map(|w| (w[0].1, w[1].0 - w[0].0)).collect();
            lengths.sort_unstable();
            lengths.dedup();
            (t.is_empty(), t.first().copied(), lengths)
        };
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(runs(*a), runs(*b), "{a:?} and {b:?} look alike");
            }
        }
    }

    #[test]
    fn a_new_status_takes_over_at_once() {
        // Mid-way through a slow "on", then mid-way through a failure pause, then done.
        let t = run(
            Status::WaitingForSetup,
            &[
                (500, Status::Verifying),
                (730, Status::Failed),
                (1300, Status::Done),
            ],
            10_000,
        );
        assert_eq!(
            t,
            [
                (0, true),
                // Verifying starts with "on": the LED is already on, so its first change
                // is "off" 100 ms later.
                (600, false),
                (700, true),
                // Failed at 730 starts with "on" too.
                (880, false),
                (1030, true),
                (1180, false),
                // Done: steady on from 1300 for good.
                (1300, true),
            ]
        );
    }

    #[test]
    fn a_failing_pin_does_not_stop_the_pattern() {
        let clock = Clock::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut pin = SimPin {
            clock: clock.clone(),
            log: log.clone(),
            fail: true,
        };
        let mut script = Script {
            clock,
            changes: VecDeque::new(),
            end: Duration::from_millis(1000),
        };
        play(&mut pin, Status::Verifying, &mut script);
        assert_eq!(log.lock().unwrap().len(), 10);
    }

    /// A pin for the real-thread test: (time since start, level) at each call.
    struct TimedPin {
        start: Instant,
        log: Arc<Mutex<Vec<(Duration, bool)>>>,
    }

    impl ErrorType for TimedPin {
        type Error = std::convert::Infallible;
    }

    impl OutputPin for TimedPin {
        fn set_low(&mut self) -> Result<(), Self::Error> {
            self.log.lock().unwrap().push((self.start.elapsed(), false));
            Ok(())
        }
        fn set_high(&mut self) -> Result<(), Self::Error> {
            self.log.lock().unwrap().push((self.start.elapsed(), true));
            Ok(())
        }
    }

    #[test]
    fn the_background_thread_plays_and_switches() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let pin = TimedPin {
            start: Instant::now(),
            log: log.clone(),
        };
        let light = StatusLight::start(pin, Status::Verifying).unwrap();
        std::thread::sleep(Duration::from_millis(450));
        let blinks = log.lock().unwrap().len();
        // 100 ms steps: about 5 in 450 ms, however busy the machine.
        assert!((3..=6).contains(&blinks), "{blinks} steps in 450 ms");
        light.set(Status::Done);
        std::thread::sleep(Duration::from_millis(300));
        let after = log.lock().unwrap().clone();
        // Done holds "on": one more call, then nothing.
        assert_eq!(after.last().map(|&(_, l)| l), Some(true));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(log.lock().unwrap().len(), after.len());
        for w in after.windows(2) {
            assert!(
                w[1].0 - w[0].0 >= Duration::from_millis(95) || w[1].1,
                "{w:?}"
            );
        }
    }

    #[test]
    fn parses_the_board_configuration() {
        assert_eq!(
            LightSpec::parse("led:ACT\n").unwrap(),
            LightSpec::Led("ACT".into())
        );
        assert_eq!(
            LightSpec::parse("led:led0").unwrap(),
            LightSpec::Led("led0".into())
        );
        assert_eq!(
            LightSpec::parse("gpio:gpiochip0:17").unwrap(),
            LightSpec::Gpio {
                chip: "gpiochip0".into(),
                line: 17
            }
        );
        assert_eq!(
            LightSpec::parse(" gpio:1:4 ").unwrap(),
            LightSpec::Gpio {
                chip: "gpiochip1".into(),
                line: 4
            }
        );
        for bad in [
            "",
            "ACT",
            "led:",
            "led:../../../dev/sda",
            "led:a/b",
            "gpio:gpiochip0",
            "gpio:gpiochip0:x",
            "gpio:../x:1",
            "gpio:ttyS0:1",
            "gpio::1",
        ] {
            let err = LightSpec::parse(bad).unwrap_err().to_string();
            assert!(err.contains("led:NAME or gpio:CHIP:LINE"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn sysfs_led_takes_the_led_from_its_trigger_and_uses_max_brightness() {
        let dir = std::env::temp_dir().join(format!("cf-agent-led-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("brightness"), "0\n").unwrap();
        std::fs::write(dir.join("max_brightness"), "255\n").unwrap();
        std::fs::write(dir.join("trigger"), "heartbeat").unwrap();
        let mut led = SysfsLed::open(&dir).unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(read("trigger").starts_with("none"));
        led.set_high().unwrap();
        assert_eq!(read("brightness"), "255");
        led.set_low().unwrap();
        // sysfs takes each write whole; a plain file keeps the old tail.
        assert!(read("brightness").starts_with('0'));
        led.set_high().unwrap();
        assert_eq!(read("brightness"), "255");

        std::fs::remove_dir_all(&dir).unwrap();
        let err = start(&LightSpec::Led("no-such-led-here".into()), Status::Done).unwrap_err();
        assert!(
            err.to_string().contains("/sys/class/leds/no-such-led-here"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_gpio_chip_is_a_clear_error() {
        let spec = LightSpec::Gpio {
            chip: "gpiochip99".into(),
            line: 3,
        };
        let err = start(&spec, Status::Verifying).unwrap_err().to_string();
        assert!(err.contains("/dev/gpiochip99 line 3"), "{err}");
    }
}
