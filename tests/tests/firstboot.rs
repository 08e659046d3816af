//! First boot end to end, as a person (or nobody, with a preseed file) does it: build the
//! image with `coreforge build-image`, boot it under QEMU from its own disk, answer
//! console-conf on the serial console, then log in with `ssh` from the host through a
//! forwarded port with the test's key, and boot again.
//!
//! The store account's keys come from a local HTTPS server speaking the SSO key API
//! (`coreforge_tests::sso`), which the guest reaches through QEMU's gateway 10.0.2.2; the
//! image trusts the server's test CA (`build-image --sso-url --tls-roots`). Every text the
//! tests wait for is read from the agent's `consoleconf/text.rs`. Needs `cross/setup.sh`
//! (kernels, cross toolchain, QEMU, mtools, e2fsprogs, openssh-client, tesseract-ocr) and
//! fails, never skips, without it; each failure prints every boot's whole serial log.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Result};
use coreforge_boards::{Arch, Board};
use coreforge_tests::agent_text;
use coreforge_tests::flows::{
    choose_network, os_shell, paste_key_and_commit, press_enter, t, BOOT, STEP,
};
use coreforge_tests::image::{boot_partition_offset, fat_has, world, BootFiles, Writable};
use coreforge_tests::screen::{check_ppm, ocr};
use coreforge_tests::serial::{free_port, Device, DeviceOptions};
use coreforge_tests::ssh::{host_fingerprints, ssh_run, SshKey};
use coreforge_tests::sso::{SsoAccount, SsoServer};

/// The store account the SSO server knows, and the user it becomes on the device.
const EMAIL: &str = "alice@example.com";
const USER: &str = "alice";
/// An e-mail the SSO server answers 404 for.
const UNKNOWN_EMAIL: &str = "nobody@example.com";
/// The user made from a pasted key on the Pi.
const PASTED_USER: &str = "pat";

/// From a configured device's power on to a working SSH login.
const LOGIN: Duration = Duration::from_secs(300);

/// What every scenario shares: the SSO server (its port is in the images), the test's key.
struct Shared {
    sso: SsoServer,
    key: SshKey,
    ca: PathBuf,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = coreforge_tests::scratch_dir("firstboot-shared").unwrap();
        let key = SshKey::generate(&dir.join("key"), "e2e@coreforge").unwrap();
        let sso = SsoServer::start(vec![SsoAccount {
            email: EMAIL.into(),
            username: USER.into(),
            ssh_keys: vec![key.public.clone()],
        }])
        .unwrap();
        let ca = dir.join("sso-ca.pem");
        sso.write_ca(&ca).unwrap();
        Shared { sso, key, ca }
    })
}

/// An image of `gadget` (arm64) with the SSO server's URL and CA, plus `extra` build-image
/// arguments, and its boot files for `board`; built once per test process.
fn build(name: &str, gadget: &str, board: &'static Board, extra: &[OsString]) -> Result<BootFiles> {
    let s = shared();
    let w = world()?;
    let model = w.model(name, gadget)?;
    let mut args: Vec<OsString> = vec![
        "--sso-url".into(),
        s.sso.guest_url().into(),
        "--tls-roots".into(),
        s.ca.clone().into(),
    ];
    args.extend_from_slice(extra);
    let image = w.build_image(name, &model, &args)?;
    BootFiles::read(&image, board, &w.path(&format!("{name}-boot")))
}

type Cached = OnceLock<Result<BootFiles, String>>;

fn cached(cell: &'static Cached, make: impl FnOnce() -> Result<BootFiles>) -> Result<BootFiles> {
    cell.get_or_init(|| make().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!("{e}"))
}

fn virt() -> &'static Board {
    Board::by_name("qemu-virt", Arch::Arm64).unwrap()
}

/// The virt image every interactive scenario boots (each on its own copy-on-write disk).
fn virt_image() -> Result<BootFiles> {
    static CELL: Cached = OnceLock::new();
    cached(&CELL, || build("e2e-virt", "qemu-virt", virt(), &[]))
}

/// The virt image with a preseed file: DHCP on eth0 and the store account's e-mail.
fn preseed_image() -> Result<BootFiles> {
    static CELL: Cached = OnceLock::new();
    cached(&CELL, || {
        let w = world()?;
        let preseed = w.path("console-conf.json");
        std::fs::write(
            &preseed,
            serde_json::json!({
                "network": {"interface": "eth0", "method": "dhcp"},
                "identity": EMAIL,
            })
            .to_string(),
        )?;
        build(
            "e2e-preseed",
            "qemu-virt",
            virt(),
            &["--preseed".into(), preseed.into()],
        )
    })
}

/// The Pi 3 image (arm64), booted on QEMU's raspi3b.
fn pi_image() -> Result<BootFiles> {
    static CELL: Cached = OnceLock::new();
    cached(&CELL, || {
        build("e2e-pi3", "pi3", Board::by_name("pi3", Arch::Arm64)?, &[])
    })
}

/// Takes the session and answers the network screen (wired DHCP, or none).
fn start_session(dev: &mut Device, dhcp: bool) -> Result<()> {
    press_enter(dev)?;
    choose_network(dev, dhcp)
}

/// Types the store account's e-mail (after an unknown one, which must be refused) and
/// waits for the summary's question.
fn answer_with_email(dev: &mut Device, try_unknown_first: bool) -> Result<()> {
    let s = shared();
    if try_unknown_first {
        dev.send_line(UNKNOWN_EMAIL)?;
        dev.expect(&format!("Checking {UNKNOWN_EMAIL}"), STEP)?;
        // Refused, and asked again.
        dev.expect(&t("IDENTITY_PROMPT"), STEP)?;
        ensure!(
            s.sso.lookups_of(UNKNOWN_EMAIL) >= 1,
            dev.failure("the guest never asked the SSO server about the unknown e-mail")
        );
        ensure!(
            !dev.transcript().contains(&t("CONFIRM_PROMPT")),
            dev.failure("an unknown account reached the summary")
        );
    }
    dev.send_line(EMAIL)?;
    dev.expect(&format!("Found: {USER}, 1 SSH key(s)"), STEP)?;
    dev.expect(&t("CONFIRM_PROMPT"), STEP)?;
    Ok(())
}

/// The login details after the commit: the `ssh USER@ADDRESS` line and the fingerprints.
fn login_details(dev: &mut Device, user: &str) -> Result<(String, Vec<String>)> {
    dev.expect(&t("DONE"), STEP)?;
    let ssh_line = dev.expect(&format!("{}{user}@", t("SSH_PREFIX")), STEP)?;
    dev.expect(&t("FINGERPRINTS"), STEP)?;
    // The fingerprint lines follow; give them a moment to arrive.
    std::thread::sleep(Duration::from_secs(2));
    let fingerprints = dev
        .unread()
        .split_whitespace()
        .filter(|w| w.starts_with("SHA256:"))
        .map(str::to_string)
        .collect();
    Ok((ssh_line.trim().to_string(), fingerprints))
}

/// Logs in as `user` and checks the account: its groups, the sudoers folder (0750 root:
/// its files are not for the user to read), key file modes.
fn check_login(dev: &Device, port: u16, user: &str) -> Result<()> {
    let s = shared();
    let out = ssh_run(
        &s.key,
        port,
        user,
        "id; stat -c '%a %U %n' /etc/sudoers.d .ssh .ssh/authorized_keys",
        LOGIN,
    )
    .map_err(|e| dev.failure(&format!("{e:#}")))?;
    for want in [
        format!("({user})"),
        "(sudo)".to_string(),
        "750 root /etc/sudoers.d".to_string(),
        format!("700 {user} .ssh"),
        format!("600 {user} .ssh/authorized_keys"),
    ] {
        ensure!(
            out.contains(&want),
            "ssh {user}@device: no {want:?} in:\n{out}"
        );
    }
    Ok(())
}

/// Powers the OS off from the console's root shell (busybox init's `askfirst`) and waits
/// for QEMU to end; a device that does not power off is cut (after a sync) and reported.
fn power_off(dev: &mut Device) -> Result<()> {
    os_shell(dev, STEP)?;
    dev.send_line("sync; poweroff")?;
    if dev.wait_exit(Duration::from_secs(90)).is_err() {
        eprintln!("the OS did not power off from its console within 90 s; cutting the power");
        dev.power_cut();
    }
    Ok(())
}

/// Scenario 1: a person at the serial console, DHCP, a store account's e-mail (an unknown
/// one first, refused), the login details, `ssh ... id`; then a reboot from the same disk
/// asks nothing and the login still works.
#[test]
fn interactive_setup_over_serial_then_ssh_and_reboot() -> Result<()> {
    let s = shared();
    let files = virt_image()?;
    let port = free_port()?;
    let options = DeviceOptions {
        ssh_port: Some(port),
        ..DeviceOptions::default()
    };
    let mut dev = Device::new("firstboot-interactive", &files, options)?;
    dev.power_on()?;
    start_session(&mut dev, true)?;
    answer_with_email(&mut dev, true)?;
    ensure!(
        s.sso.lookups_of(EMAIL) >= 1,
        dev.failure("no look-up of the e-mail")
    );
    dev.send_line("y")?;
    let (ssh_line, shown) = login_details(&mut dev, USER)?;
    ensure!(
        ssh_line == format!("ssh {USER}@10.0.2.15"),
        dev.failure(&format!("login line {ssh_line:?}"))
    );
    check_login(&dev, port, USER)?;
    // The fingerprints shown are those of the key the SSH server offers.
    let offered = host_fingerprints(port)?;
    ensure!(
        !offered.is_empty() && offered.iter().all(|f| shown.contains(f)),
        dev.failure(&format!(
            "server offers {offered:?}, console showed {shown:?}"
        ))
    );

    power_off(&mut dev)?;
    dev.power_on()?;
    check_login(&dev, port, USER)?;
    ensure!(
        !dev.transcript().contains(&t("PRESS_ENTER")),
        dev.failure("console-conf ran again on a configured device")
    );
    ensure!(
        host_fingerprints(port)? == offered,
        dev.failure("the host key changed across the reboot")
    );
    dev.no_unexpected_errors(&[])
}

/// Scenario 2: a preseed file and nobody at the console: configured, logged in, and the
/// file is gone from the device's boot partition (but not from the image).
#[test]
fn preseed_configures_with_nobody_at_the_console() -> Result<()> {
    let s = shared();
    let files = preseed_image()?;
    let port = free_port()?;
    let options = DeviceOptions {
        ssh_port: Some(port),
        ..DeviceOptions::default()
    };
    let before = s.sso.lookups_of(EMAIL);
    let mut dev = Device::new("firstboot-preseed", &files, options)?;
    dev.power_on()?;
    dev.expect(&t("PRESEED_START"), BOOT)?;
    let (ssh_line, _) = login_details(&mut dev, USER)?;
    ensure!(ssh_line == format!("ssh {USER}@10.0.2.15"), "{ssh_line:?}");
    ensure!(
        s.sso.lookups_of(EMAIL) > before,
        dev.failure("the preseeded e-mail was never looked up")
    );
    check_login(&dev, port, USER)?;
    ensure!(
        !dev.transcript().contains(&t("PRESS_ENTER")),
        dev.failure("a preseeded device asked for Enter")
    );
    dev.no_unexpected_errors(&[])?;
    dev.power_cut();

    let raw = dev.dir().join("disk.raw");
    coreforge_tests::image::raw_copy(dev.disk(), &raw)?;
    let consumed = !fat_has(&raw, boot_partition_offset(&raw)?, "console-conf.json")?;
    let _ = std::fs::remove_file(&raw);
    ensure!(
        consumed,
        "console-conf.json is still on the device's boot partition"
    );
    ensure!(
        fat_has(
            &files.image,
            boot_partition_offset(&files.image)?,
            "console-conf.json"
        )?,
        "the image itself lacks console-conf.json: build-image --preseed did not place it"
    );
    Ok(())
}

/// Where screen dumps are kept: `target/coreforge-tests/artifacts/`.
fn artifact(name: &str) -> Result<PathBuf> {
    Ok(coreforge_tests::scratch_dir("artifacts")?.join(name))
}

/// Scenario 3: the framebuffer console on virt with virtio-gpu: tty1 reads "Press Enter to
/// configure" (the screen dump, kept as an artifact, read by tesseract), and once the serial
/// console takes the session tty1 reads that setup is in progress there.
#[test]
fn framebuffer_shows_the_welcome_screen() -> Result<()> {
    let files = virt_image()?;
    let options = DeviceOptions {
        framebuffer: true,
        ..DeviceOptions::default()
    };
    let mut dev = Device::new("firstboot-framebuffer", &files, options)?;
    dev.power_on()?;
    dev.expect(&t("PRESS_ENTER"), BOOT)?;
    // The kernel draws tty1 asynchronously; let it catch up with the serial line.
    std::thread::sleep(Duration::from_secs(3));
    let welcome = artifact("framebuffer-press-enter.ppm")?;
    dev.screendump(&welcome)?;
    let bytes = std::fs::read(&welcome)?;
    let (w, h, _) = check_ppm(&bytes).map_err(|e| dev.failure(&format!("{e:#}")))?;
    // virtio-gpu's default mode, 160x50 characters of the 8x16 font.
    ensure!(
        (w, h) == (1280, 800),
        "framebuffer is {w}x{h}, not 1280x800"
    );
    let text = ocr(&welcome)?;
    ensure!(
        text.contains(&t("PRESS_ENTER")),
        dev.failure(&format!(
            "tty1 does not read {:?}; OCR of {} read:\n{text}",
            t("PRESS_ENTER"),
            welcome.display()
        ))
    );

    dev.send_until(b"\r", &t("WELCOME"), Duration::from_secs(5), STEP)?;
    std::thread::sleep(Duration::from_secs(3));
    let claimed = artifact("framebuffer-in-progress.ppm")?;
    dev.screendump(&claimed)?;
    let after = std::fs::read(&claimed)?;
    check_ppm(&after)?;
    ensure!(
        after != bytes,
        dev.failure("tty1 did not change when the serial console took the session")
    );
    let text = ocr(&claimed)?;
    ensure!(
        text.contains(&t("IN_PROGRESS")),
        dev.failure(&format!(
            "tty1 does not read {:?} once the serial console has the session; OCR of {} read:\n{text}",
            t("IN_PROGRESS"),
            claimed.display()
        ))
    );
    println!(
        "screen dumps kept: {} and {}",
        welcome.display(),
        claimed.display()
    );
    dev.no_unexpected_errors(&[])
}

/// Scenario 4: a Pi 3 (QEMU raspi3b, mini UART console): no network, a pasted public key
/// and a user name, up to the login details; the OS powers off from its console and the
/// account is on the disk.
#[test]
fn raspi3b_serial_setup_with_a_pasted_key() -> Result<()> {
    let s = shared();
    let files = pi_image()?;
    let mut dev = Device::new("firstboot-raspi3b", &files, DeviceOptions::default())?;
    dev.power_on()?;
    start_session(&mut dev, false)?;
    paste_key_and_commit(&mut dev, &s.key.public, PASTED_USER)?;
    dev.expect(&format!("Account {PASTED_USER} was created"), STEP)?;
    dev.expect(&t("FINGERPRINTS"), STEP)?;
    // The OS comes up without a network; power it off from its console, then look at the disk.
    power_off(&mut dev)?;
    let w = Writable::open(dev.disk(), &dev.dir().join("writable"))?;
    let keys = w
        .read(&format!(
            "/system-data/home/{PASTED_USER}/.ssh/authorized_keys"
        ))?
        .ok_or_else(|| dev.failure("no authorized_keys on writable"))?;
    ensure!(
        String::from_utf8_lossy(&keys).contains(&s.key.public),
        "authorized_keys lacks the pasted key: {}",
        String::from_utf8_lossy(&keys)
    );
    let passwd = w.read("/system-data/etc/passwd")?.unwrap_or_default();
    ensure!(
        String::from_utf8_lossy(&passwd).contains(&format!("{PASTED_USER}:")),
        "passwd lacks {PASTED_USER}"
    );
    dev.no_unexpected_errors(&[])
}

/// What a power cut left on `writable`: `Some(true)` configured (a complete account),
/// `Some(false)` unconfigured, an error for anything half.
fn disk_state(dev: &Device, user: &str, key: &str) -> Result<bool> {
    let w = Writable::open(dev.disk(), &dev.dir().join("writable"))?;
    let configured = w.exists("/system-data")?;
    let result = if configured {
        let passwd = w.read("/system-data/etc/passwd")?.unwrap_or_default();
        let shadow = w.read("/system-data/etc/shadow")?.unwrap_or_default();
        let keys = w
            .read(&format!("/system-data/home/{user}/.ssh/authorized_keys"))?
            .unwrap_or_default();
        let has = |f: &[u8], s: &str| String::from_utf8_lossy(f).contains(s);
        ensure!(
            has(&passwd, &format!("{user}:"))
                && has(&shadow, &format!("{user}:"))
                && has(&keys, key),
            "HALF CONFIGURED: system-data exists but passwd has user: {}, shadow: {}, keys: {}",
            has(&passwd, &format!("{user}:")),
            has(&shadow, &format!("{user}:")),
            has(&keys, key)
        );
        true
    } else {
        false
    };
    Ok(result)
}

/// Where a power cut lands, relative to the two lines the agent prints (with
/// `coreforge.debug`) around its commit: [`commit_start`] just before the rename of
/// `system-data.new` to `system-data`, [`commit_done`] once the rename is synced.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// This many milliseconds after the line before the rename: inside the window.
    AfterStart(u64),
    /// Once the line after the synced rename has appeared.
    AfterDone,
}

fn commit_start() -> String {
    coreforge_tests::agent_const("state", "COMMIT_START").unwrap_or_else(|e| panic!("{e:#}"))
}

fn commit_done() -> String {
    coreforge_tests::agent_const("state", "COMMIT_DONE").unwrap_or_else(|e| panic!("{e:#}"))
}

/// Scenario 5: power cuts inside the commit window, scheduled on the agent's markers around
/// the rename (at the first marker, then a few milliseconds after it), and one after the
/// window; each followed by the next boot from the same disk. Both outcomes must occur: an
/// unconfigured device that asks again, and a configured one whose login works; never half,
/// on the disk or at boot.
#[test]
fn power_cuts_around_the_commit_never_leave_half_a_configuration() -> Result<()> {
    let s = shared();
    let files = virt_image()?;
    let port = free_port()?;
    let options = DeviceOptions {
        ssh_port: Some(port),
        // The commit's markers are debug lines.
        extra_cmdline: "coreforge.debug".into(),
        ..DeviceOptions::default()
    };
    let mut dev = Device::new("firstboot-power-cut", &files, options)?;
    let (start, done) = (commit_start(), commit_done());
    let schedule = [
        Cut::AfterStart(0),
        Cut::AfterStart(3),
        Cut::AfterStart(15),
        Cut::AfterDone,
    ];
    let mut outcomes = Vec::new();
    let mut unconfigured_inside = 0;
    let mut configured = false;
    dev.power_on()?;
    for cut in schedule {
        start_session(&mut dev, true)?;
        answer_with_email(&mut dev, false)?;
        dev.send_line("y")?;
        dev.expect(&start, STEP)?;
        let marker = Instant::now();
        match cut {
            Cut::AfterStart(ms) => std::thread::sleep(Duration::from_millis(ms)),
            Cut::AfterDone => {
                dev.expect(&done, STEP)?;
            }
        }
        let after = marker.elapsed();
        dev.power_cut();
        // Inside the window: the line after the synced rename was not printed before the cut.
        let inside = !dev.transcript().contains(&done);
        let shown_done = dev.unread().contains(&t("DONE"));
        configured = disk_state(&dev, USER, &s.key.public)
            .map_err(|e| dev.failure(&format!("cut {cut:?}: {e:#}")))?;
        outcomes.push(format!(
            "cut {cut:?}, {after:?} after the start marker arrived, {}: {}",
            if inside {
                "inside the window"
            } else {
                "after the window"
            },
            if configured {
                "configured"
            } else {
                "unconfigured"
            }
        ));
        ensure!(
            configured || inside,
            dev.failure(&format!(
                "cut {cut:?}: the commit was reported synced but the disk is unconfigured"
            ))
        );
        ensure!(
            configured || !shown_done,
            dev.failure("\"Setup is complete\" was shown but the disk is unconfigured")
        );
        if inside && !configured {
            unconfigured_inside += 1;
        }
        dev.power_on()?;
        if configured {
            break;
        }
        // Unconfigured: the next boot asks again (start_session waits for Press Enter).
    }
    let summary = outcomes.join("\n");
    println!("{summary}");
    ensure!(
        unconfigured_inside > 0,
        dev.failure(&format!(
            "no cut inside the commit window left the device unconfigured:\n{summary}"
        ))
    );
    ensure!(configured, "never configured:\n{summary}");
    check_login(&dev, port, USER)?;
    ensure!(
        !dev.transcript().contains(&t("PRESS_ENTER")),
        dev.failure("console-conf ran again after a complete commit")
    );
    dev.no_unexpected_errors(&[])
}

#[test]
fn the_texts_the_tests_wait_for_exist_in_the_agent() {
    for name in [
        "PRESS_ENTER",
        "WELCOME",
        "NETWORK_HEADING",
        "NETWORK_PROMPT",
        "IDENTITY_PROMPT",
        "USERNAME_PROMPT",
        "CONFIRM_PROMPT",
        "DONE",
        "SSH_PREFIX",
        "FINGERPRINTS",
        "PRESEED_START",
        "IN_PROGRESS",
    ] {
        let text = agent_text(name).unwrap();
        assert!(!text.trim().is_empty(), "{name} is empty");
    }
}

/// The seed's walk-through against a store served over HTTPS (`coreforge store serve`),
/// nothing from a directory: the brand logs in, registers its key and publishes the gadget,
/// kernel and base, releases them to beta; the image is built from the URL with only the
/// store's roots given out of band, its first boot looks the device user up on the same
/// server (Ubuntu SSO's key API) and lets them in with ssh.
#[test]
fn the_walkthrough_against_a_served_store_ends_in_an_ssh_login() -> Result<()> {
    let s = shared();
    let w = world()?;
    let dir = coreforge_tests::scratch_dir("served-walkthrough")?;
    // A store made anew each run (scratch folders stay between runs).
    std::fs::remove_dir_all(&dir)?;
    std::fs::create_dir_all(&dir)?;
    let coreforge = |args: &[&std::ffi::OsStr]| -> Result<String> {
        let out = std::process::Command::new(w.coreforge())
            .args(args)
            .env("COREFORGE_KEYS", dir.join("keys"))
            .env("COREFORGE_CONFIG", dir.join("config"))
            .env("COREFORGE_CACHE", dir.join("cache"))
            .env("SSL_CERT_FILE", dir.join("tls/ca.pem"))
            .env("SOURCE_DATE_EPOCH", "1764028800")
            .env_remove("COREFORGE_PASSPHRASE")
            .stdin(std::process::Stdio::null())
            .output()?;
        ensure!(
            out.status.success(),
            "coreforge {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let p = |name: &str| dir.join(name).into_os_string();
    let o = std::ffi::OsStr::new;
    std::fs::write(dir.join("pass"), "acme's long password\n")?;
    std::fs::write(dir.join("alice.pub"), format!("{}\n", s.key.public))?;
    // The store's administrator: the store, the brand's and the device user's accounts.
    coreforge(&[o("store"), o("init"), &p("store")])?;
    coreforge(&[
        o("store"),
        o("account"),
        o("add"),
        &p("store"),
        o("acme@example.com"),
        o("--username"),
        o("acme"),
        o("--password-file"),
        &p("pass"),
    ])?;
    coreforge(&[
        o("store"),
        o("account"),
        o("add"),
        &p("store"),
        o(EMAIL),
        o("--username"),
        o(USER),
        o("--ssh-key"),
        &p("alice.pub"),
    ])?;
    let server = coreforge_tests::store::ServedStore::start(
        w.coreforge(),
        &dir.join("store"),
        &dir.join("tls"),
    )?;
    let url = server.host_url();
    let url = o(&url);
    // The brand, over HTTPS only.
    coreforge(&[
        o("login"),
        o("--store"),
        url,
        o("--email"),
        o("acme@example.com"),
        o("--password-file"),
        &p("pass"),
    ])?;
    coreforge(&[
        o("create-key"),
        o("--account"),
        o("acme"),
        o("--passphrase-file"),
        &p("pass"),
    ])?;
    coreforge(&[
        o("register-key"),
        o("default"),
        o("--store"),
        url,
        o("--passphrase-file"),
        &p("pass"),
    ])?;
    for name in ["qemu-virt", "pi2-kernel", "core"] {
        let file = coreforge_tests::image::board_snap(name, "arm64")?;
        let up = coreforge(&[o("store"), o("upload"), url, file.as_os_str()])?;
        let rev = up.split_whitespace().nth(1).unwrap_or("1").to_owned();
        coreforge(&[o("store"), o("release"), url, o(name), o(&rev), o("beta")])?;
    }
    std::fs::write(
        dir.join("model.json"),
        r#"{"type": "model", "series": "16", "brand-id": "acme", "model": "served",
            "architecture": "arm64", "gadget": "qemu-virt", "kernel": "pi2-kernel",
            "timestamp": "2026-01-01T00:00:00+00:00"}"#,
    )?;
    let model = coreforge(&[
        o("sign"),
        o("--update-timestamp"),
        o("--passphrase-file"),
        &p("pass"),
        &p("model.json"),
    ])?;
    std::fs::write(dir.join("served.model"), model)?;
    std::fs::write(
        dir.join("console-conf.json"),
        serde_json::json!({"network": {"interface": "eth0", "method": "dhcp"}, "identity": EMAIL})
            .to_string(),
    )?;
    let guest_url = server.guest_url();
    coreforge(&[
        o("build-image"),
        o("-c"),
        o("beta"),
        o("--store"),
        url,
        o("--trusted"),
        &p("store/root.assertions"),
        o("--sso-url"),
        o(&guest_url),
        o("--tls-roots"),
        &p("tls/ca.pem"),
        o("--preseed"),
        &p("console-conf.json"),
        o("-o"),
        &p("served.img"),
        &p("served.model"),
    ])?;

    let files = BootFiles::read(&dir.join("served.img"), virt(), &dir.join("boot"))?;
    let port = free_port()?;
    let options = DeviceOptions {
        ssh_port: Some(port),
        ..DeviceOptions::default()
    };
    let mut dev = Device::new("firstboot-served-store", &files, options)?;
    dev.power_on()?;
    dev.expect(&t("PRESEED_START"), BOOT)?;
    let (ssh_line, _) = login_details(&mut dev, USER)?;
    ensure!(ssh_line == format!("ssh {USER}@10.0.2.15"), "{ssh_line:?}");
    check_login(&dev, port, USER)?;
    dev.no_unexpected_errors(&[])?;
    dev.power_cut();
    Ok(())
}
