//! Issue 9's hostile-account matrix on the device (QEMU virt, arm64): an image built for the
//! brand `acme` by the image world, and copies of it changed on the boot partition as
//! `mallory`, another ordinary account of the same store, or anyone with the card, would
//! change them. Each boot checks what the console says (the refusal with its reason, or
//! what is configured) and fails on any `error:` line other than the one expected; after
//! the power is cut, the boot partition (files renamed `.refused`) and `writable` (no
//! account) are read back.
//!
//! Seven boots of two images: the pinned seed beside another model's label, with the pinned
//! preseed (a, f); the pinned model replaced (b); a seeded snap's revision replaced (c); an
//! unbound console-conf.json (d); the same with mallory's auto-import.assert, an expired
//! auto-import.assert the brand signed, and a valid one (e). Needs `cross/setup.sh` (kernels, cross
//! toolchain, QEMU, mtools, e2fsprogs) and fails, never skips, without it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context, Result};
use coreforge_boards::{Arch, Board};
use coreforge_tests::flows::{t, BOOT, STEP};
use coreforge_tests::header_value;
use coreforge_tests::image::{
    boot_partition_offset, fat_has, fat_read, world, BootFiles, Writable,
};
use coreforge_tests::serial::{Device, DeviceOptions};

/// The model every image is built for (brand `acme`, the world's brand).
const MODEL: &str = "hostile";
/// The key the attacker wants on the device, and the brand's operator's.
const MALLORY_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm7PaMTzm4Q5o6dmwFT3NyP4o8bVPOgHVBgHK2nHwYn mallory@evil";
const OPS_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEwhQ5eaqlVJh4fG5K8uPbvJbOVQXxWQe8hAxsMNlAo ops@acme";
/// The user the pinned preseed creates.
const PRESEED_USER: &str = "pat";

/// The agent's lines the matrix waits for (see agent/src/model.rs and firstboot.rs).
const OTHER_LABELS: &str = "ignoring other seed labels on the card: ";
const MODEL_VERIFIED: &str = "model verified: ";
const SEED_VERIFIED: &str = "seed verified: ";
const PRESEED_REFUSED: &str = "preseed refused: ";
const AUTO_IMPORT_REFUSED: &str = "auto-import.assert refused: ";
const CONFIGURED: &str = "configured: account ";
const OTHER_MODEL: &str = "refusing the model on the card: ";
const TRUSTED_RULE: &str = "snap-revisions are signed by a trusted authority";

/// What the boots share: the two images, the seed label, and mallory's assertions.
struct Shared {
    /// Built without `--preseed`.
    plain: PathBuf,
    /// Built with `--preseed` (the pinned one: creates `pat`).
    preseeded: PathBuf,
    /// The seed label build-image wrote (the pinned one).
    label: String,
    /// The brand key's `since`: system-users cannot start before it.
    brand_since: String,
    /// The id of the key mallory claims is acme's.
    forged_id: String,
}

fn virt() -> &'static Board {
    Board::by_name("qemu-virt", Arch::Arm64).expect("qemu-virt arm64 board")
}

fn shared() -> Result<&'static Shared> {
    static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| make_shared().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("setting up the hostile world: {e}"))
}

fn make_shared() -> Result<Shared> {
    let w = world()?;
    let pass = w.path("pass");
    let pass = pass.to_str().context("world path")?;
    let store = w.path("store");
    let store = store.to_str().context("world path")?;
    // mallory, an ordinary account of the store, as any brand is; and the key mallory
    // claims is acme's (never registered).
    w.ok([
        "create-key",
        "mallory",
        "--account",
        "mallory",
        "--passphrase-file",
        pass,
    ])?;
    w.ok(["register-key", "mallory", "--store", store])?;
    let forged_id = w
        .ok([
            "create-key",
            "forged",
            "--account",
            "acme",
            "--passphrase-file",
            pass,
        ])?
        .trim()
        .to_string();
    let model = w.model(MODEL, "qemu-virt")?;
    let plain = w.build_image("hostile-plain", &model, &[])?;
    let preseed = w.path("hostile-preseed.json");
    std::fs::write(
        &preseed,
        serde_json::json!({
            "network": {"method": "none"},
            "identity": {"username": PRESEED_USER, "ssh-keys": [OPS_KEY]},
        })
        .to_string(),
    )?;
    let preseeded = w.build_image(
        "hostile-preseeded",
        &model,
        &["--preseed".into(), preseed.into()],
    )?;
    let label = labels(&plain)?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("{} has no systems/<label>", plain.display()))?;
    let chain = std::fs::read(w.path("keys/default.chain"))?;
    let brand_since = header_value(&chain, "since")
        .ok_or_else(|| anyhow!("the brand key's chain has no since"))?;
    Ok(Shared {
        plain,
        preseeded,
        label,
        brand_since,
        forged_id,
    })
}

/// The seed labels (`systems/*`) on an image's boot partition.
fn labels(image: &Path) -> Result<Vec<String>> {
    let out = mtools(image, "mdir", &["-b", "::systems"])?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.trim_end_matches('/').rsplit('/').next())
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .map(str::to_string)
        .collect())
}

/// Runs an mtools command on the boot partition of `image`.
fn mtools(image: &Path, tool: &str, args: &[&str]) -> Result<Vec<u8>> {
    let offset = boot_partition_offset(image)?;
    let out = Command::new(tool)
        .arg("-i")
        .arg(format!("{}@@{offset}", image.display()))
        .args(args)
        .output()
        .with_context(|| format!("running {tool}: run cross/setup.sh (mtools)"))?;
    ensure!(
        out.status.success(),
        "{tool} {args:?} on {}: {}",
        image.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(out.stdout)
}

/// Writes `bytes` to `path` on the boot partition (replacing it).
fn fat_write(image: &Path, path: &str, bytes: &[u8]) -> Result<()> {
    let staged = image.with_extension(format!("stage-{}", path.replace('/', "_")));
    std::fs::write(&staged, bytes)?;
    let target = format!("::{path}");
    let staged_str = staged.to_str().context("stage path")?;
    let result = mtools(image, "mcopy", &["-o", "-D", "o", staged_str, &target]);
    let _ = std::fs::remove_file(&staged);
    result.map(drop)
}

/// A copy of `image` for one variant (sparse, so that it costs what the partitions hold).
fn variant(image: &Path, name: &str) -> Result<PathBuf> {
    let copy = world()?.path(&format!("{name}.img"));
    let _ = std::fs::remove_file(&copy);
    let out = Command::new("cp")
        .arg("--sparse=always")
        .arg(image)
        .arg(&copy)
        .output()
        .context("running cp")?;
    ensure!(
        out.status.success(),
        "cp {}: {}",
        image.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(copy)
}

/// Signs the JSON `statement` with the world's key `key`; returns the assertion's text.
fn sign(key: &str, name: &str, statement: &serde_json::Value, now: bool) -> Result<String> {
    let w = world()?;
    let input = w.path(&format!("{name}.json"));
    std::fs::write(&input, statement.to_string())?;
    let pass = w.path("pass");
    let mut args = vec![
        "sign".to_string(),
        "-k".into(),
        key.into(),
        "--passphrase-file".into(),
        pass.to_string_lossy().into_owned(),
    ];
    if now {
        args.push("--update-timestamp".into());
    }
    args.push(input.to_string_lossy().into_owned());
    w.ok(&args)
}

/// An RFC 3339 UTC time (`2026-01-31T12:00:00Z`) of Unix seconds.
fn rfc3339(secs: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Unix seconds of an RFC 3339 UTC time as [`rfc3339`] writes it.
fn unix_of(t: &str) -> Result<i64> {
    let n = |r: std::ops::Range<usize>| -> Result<i64> {
        t.get(r)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("not an RFC 3339 UTC time: {t:?}"))
    };
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + n(11..13)? * 3600 + n(14..16)? * 60 + n(17..19)?)
}

/// A system-user for this model, as snapd's auto-import.assert holds one.
fn system_user(
    authority: &str,
    username: &str,
    key: &str,
    since: &str,
    until: &str,
) -> serde_json::Value {
    serde_json::json!({
        "type": "system-user",
        "authority-id": authority,
        "brand-id": "acme",
        "email": format!("{username}@acme.example"),
        "series": ["16"],
        "models": [MODEL],
        "name": username,
        "username": username,
        "ssh-keys": [key],
        "since": since,
        "until": until,
    })
}

/// A device on `image` (boot files read from it), powered on.
fn boot(name: &str, image: &Path) -> Result<Device> {
    boot_with(name, image, DeviceOptions::default())
}

/// [`boot`] with `options` (a screen, say).
fn boot_with(name: &str, image: &Path, options: DeviceOptions) -> Result<Device> {
    let files = BootFiles::read(image, virt(), &world()?.path(&format!("{name}-boot")))?;
    let mut dev = Device::new(name, &files, options)?;
    dev.power_on()?;
    Ok(dev)
}

/// Waits for the first of `texts` on a line the agent printed itself (the kernel echoes the
/// agent's /dev/kmsg records on the console too, as `[ time] coreforge-agent: ...`); returns
/// which one and the line.
fn agent_line_any(dev: &mut Device, texts: &[&str], timeout: Duration) -> Result<(usize, String)> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let (which, line) = dev.expect_any(texts, left)?;
        if !line.trim_start().starts_with('[') {
            return Ok((which, line));
        }
    }
}

/// [`agent_line_any`] of one text.
fn agent_line(dev: &mut Device, text: &str, timeout: Duration) -> Result<String> {
    agent_line_any(dev, &[text], timeout).map(|(_, line)| line)
}

/// Fails if a line of this boot contains `text`.
fn never(dev: &Device, text: &str, why: &str) -> Result<()> {
    if let Some(line) = dev.transcript().lines().find(|l| l.contains(text)) {
        bail!(dev.failure(&format!("{why}: {line:?}")));
    }
    Ok(())
}

/// The end of every refused-preseed boot: console-conf asks, nothing was configured, no
/// other error was said; then a power cut (the agent fsyncs the boot partition's folder
/// after the rename, which asks the disk to flush; without that a rename was seen lost),
/// and on the card each of `files` is renamed `.refused` and writable holds no account.
fn refused_and_nothing_configured(
    dev: &mut Device,
    expected_errors: &[&str],
    files: &[&str],
) -> Result<()> {
    dev.expect(&t("PRESS_ENTER"), STEP)?;
    never(dev, CONFIGURED, "something was configured")?;
    dev.no_unexpected_errors(expected_errors)?;
    dev.power_cut();
    let raw = raw_disk(dev)?;
    let checked = files
        .iter()
        .try_for_each(|name| renamed_refused(dev, &raw, name));
    let _ = std::fs::remove_file(&raw);
    checked?;
    unconfigured(dev)
}

/// The device's disk as a raw image (to read its boot partition after the power is cut).
fn raw_disk(dev: &Device) -> Result<PathBuf> {
    let raw = dev.dir().join("disk.raw");
    coreforge_tests::image::raw_copy(dev.disk(), &raw)?;
    Ok(raw)
}

/// After the power is cut: `name` is renamed `name.refused` on the boot partition.
fn renamed_refused(dev: &Device, raw: &Path, name: &str) -> Result<()> {
    let offset = boot_partition_offset(raw)?;
    let kept = fat_has(raw, offset, &format!("{name}.refused"))?;
    let still = fat_has(raw, offset, name)?;
    ensure!(
        kept && !still,
        dev.failure(&format!(
            "after the refusal the boot partition has {name}: {still}, {name}.refused: {kept}"
        ))
    );
    Ok(())
}

/// After the power is cut: nothing configured on `writable`.
fn unconfigured(dev: &Device) -> Result<()> {
    let w = Writable::open(dev.disk(), &dev.dir().join("writable"))?;
    ensure!(
        !w.exists("/system-data")?,
        dev.failure("writable holds /system-data: an account was committed")
    );
    Ok(())
}

/// After the power is cut: `user` exists on `writable` with `key` authorized.
fn configured(dev: &Device, user: &str, key: &str) -> Result<()> {
    let w = Writable::open(dev.disk(), &dev.dir().join("writable"))?;
    let passwd = w.read("/system-data/etc/passwd")?.unwrap_or_default();
    let keys = w
        .read(&format!("/system-data/home/{user}/.ssh/authorized_keys"))?
        .unwrap_or_default();
    ensure!(
        String::from_utf8_lossy(&passwd).contains(&format!("{user}:"))
            && String::from_utf8_lossy(&keys).contains(key),
        dev.failure(&format!("{user} with its key is not on writable"))
    );
    Ok(())
}

/// a + f: another model (mallory's, with mallory's chain and the seed's snaps) under
/// `systems/0000/` of an image built with `--preseed`: the device opens its pinned label,
/// warns naming 0000, never verifies the other model, and applies the pinned preseed.
#[test]
fn another_label_is_ignored_and_the_pinned_preseed_applies() -> Result<()> {
    let s = shared()?;
    let w = world()?;
    let image = variant(&s.preseeded, "hostile-other-label")?;
    let mallory_model = sign(
        "mallory",
        "hostile-mallory-model",
        &serde_json::json!({
            "type": "model", "series": "16", "brand-id": "mallory", "model": MODEL,
            "architecture": "arm64", "gadget": "qemu-virt", "kernel": "pi2-kernel",
            "timestamp": "2026-01-01T00:00:00Z",
        }),
        true,
    )?;
    let offset = boot_partition_offset(&image)?;
    let snaps = fat_read(
        &image,
        offset,
        &format!("systems/{}/assertions/snaps", s.label),
    )?;
    mtools(
        &image,
        "mmd",
        &["::systems/0000", "::systems/0000/assertions"],
    )?;
    fat_write(&image, "systems/0000/model", mallory_model.as_bytes())?;
    fat_write(
        &image,
        "systems/0000/assertions/model-etc",
        &std::fs::read(w.path("keys/mallory.chain"))?,
    )?;
    fat_write(&image, "systems/0000/assertions/snaps", &snaps)?;

    let mut dev = boot("hostile-other-label", &image)?;
    let warning = agent_line(&mut dev, OTHER_LABELS, BOOT)?;
    ensure!(
        warning.starts_with("warning:") && warning.contains("0000"),
        dev.failure(&format!("the warning does not name 0000: {warning:?}"))
    );
    let verified = agent_line(&mut dev, MODEL_VERIFIED, BOOT)?;
    ensure!(
        verified.contains(&format!("brand=acme model={MODEL} ")),
        dev.failure(&format!("verified {verified:?}"))
    );
    dev.expect(SEED_VERIFIED, BOOT)?;
    dev.expect(&format!("{CONFIGURED}{PRESEED_USER}"), STEP)?;
    never(
        &dev,
        "brand=mallory",
        "the other label's model was looked at",
    )?;
    never(&dev, PRESEED_REFUSED, "the pinned preseed was refused")?;
    never(
        &dev,
        &t("PRESS_ENTER"),
        "a preseeded device asked for Enter",
    )?;
    dev.no_unexpected_errors(&[])?;
    std::thread::sleep(Duration::from_secs(2));
    dev.power_cut();
    configured(&dev, PRESEED_USER, OPS_KEY)
}

/// d: a console-conf.json nobody pinned (mallory's account and key) dropped on an image
/// built without `--preseed`: refused with the reason, renamed `.refused`, console-conf asks
/// as on a fresh device, and no account is committed.
#[test]
fn an_unbound_preseed_is_refused() -> Result<()> {
    let s = shared()?;
    let image = variant(&s.plain, "hostile-unbound-preseed")?;
    fat_write(&image, "console-conf.json", mallory_preseed().as_bytes())?;

    let mut dev = boot("hostile-unbound-preseed", &image)?;
    dev.expect(SEED_VERIFIED, BOOT)?;
    let refusal = agent_line(&mut dev, PRESEED_REFUSED, STEP)?;
    ensure!(
        refusal.contains("console-conf.json") && refusal.contains("without --preseed"),
        dev.failure(&format!("the refusal gives no reason: {refusal:?}"))
    );
    refused_and_nothing_configured(&mut dev, &[PRESEED_REFUSED], &["console-conf.json"])
}

/// mallory's preseed: its own account and key, no network.
fn mallory_preseed() -> String {
    serde_json::json!({
        "network": {"method": "none"},
        "identity": {"username": "mallory", "ssh-keys": [MALLORY_KEY]},
    })
    .to_string()
}

/// e: the same console-conf.json with an auto-import.assert mallory signed (a system-user
/// of brand acme for this model, valid now): refused naming mallory and the rule, both
/// files renamed `.refused`, console-conf asks, no account committed.
#[test]
fn mallorys_system_user_is_refused_with_its_preseed() -> Result<()> {
    let s = shared()?;
    let image = variant(&s.plain, "hostile-mallory-user")?;
    let now = unix_now();
    let user = sign(
        "mallory",
        "hostile-su-mallory",
        &system_user(
            "mallory",
            "mallory",
            MALLORY_KEY,
            &rfc3339(now),
            &rfc3339(now + 365 * 86_400),
        ),
        false,
    )?;
    fat_write(&image, "auto-import.assert", user.as_bytes())?;
    fat_write(&image, "console-conf.json", mallory_preseed().as_bytes())?;

    let mut dev = boot("hostile-mallory-user", &image)?;
    dev.expect(SEED_VERIFIED, BOOT)?;
    let refusal = agent_line(&mut dev, AUTO_IMPORT_REFUSED, STEP)?;
    ensure!(
        refusal.contains("is signed by \"mallory\"")
            && refusal.contains("system-users are signed by the brand"),
        dev.failure(&format!(
            "the refusal names no mallory or rule: {refusal:?}"
        ))
    );
    // The preseed that came with it is refused too, and says so.
    let preseed = agent_line(&mut dev, PRESEED_REFUSED, STEP)?;
    ensure!(
        preseed.contains("came with auto-import.assert"),
        dev.failure(&format!("the preseed's refusal: {preseed:?}"))
    );
    refused_and_nothing_configured(
        &mut dev,
        &[AUTO_IMPORT_REFUSED, PRESEED_REFUSED],
        &["console-conf.json", "auto-import.assert"],
    )
}

/// b: the pinned label's model replaced by one with the same brand and name, signed with a
/// key mallory certified for acme (the forged account-key added to model-etc): refused
/// with what the device is and what the card holds; nothing verified, nothing asked.
#[test]
fn a_replaced_model_is_refused() -> Result<()> {
    let s = shared()?;
    let w = world()?;
    let image = variant(&s.plain, "hostile-replaced-model")?;
    let forged_id = &s.forged_id;
    let public = w.ok(["export-key", "forged"])?;
    let forged_key = sign(
        "mallory",
        "hostile-forged-account-key",
        &serde_json::json!({
            "type": "account-key", "authority-id": "mallory", "account-id": "acme",
            "name": "forged", "public-key-sha3-384": forged_id,
            "since": rfc3339(unix_now()), "body": public.trim(),
        }),
        false,
    )?;
    let forged_model = sign(
        "forged",
        "hostile-forged-model",
        &serde_json::json!({
            "type": "model", "series": "16", "authority-id": "acme", "brand-id": "acme",
            "model": MODEL, "architecture": "arm64", "gadget": "qemu-virt",
            "kernel": "pi2-kernel", "timestamp": "2026-01-01T00:00:00Z",
        }),
        true,
    )?;
    let offset = boot_partition_offset(&image)?;
    let etc_path = format!("systems/{}/assertions/model-etc", s.label);
    let mut etc = fat_read(&image, offset, &etc_path)?;
    etc.extend_from_slice(b"\n\n");
    etc.extend_from_slice(forged_key.trim_end().as_bytes());
    etc.extend_from_slice(b"\n\n");
    etc.extend_from_slice(&std::fs::read(w.path("keys/mallory.chain"))?);
    fat_write(&image, &etc_path, &etc)?;
    fat_write(
        &image,
        &format!("systems/{}/model", s.label),
        forged_model.as_bytes(),
    )?;

    let mut dev = boot("hostile-replaced-model", &image)?;
    let refusal = agent_line(&mut dev, OTHER_MODEL, BOOT)?;
    for want in [
        "error: ".to_string(),
        format!("this device is acme/{MODEL}"),
        format!("systems/{}/model", s.label),
        "SHA3-384".into(),
    ] {
        ensure!(
            refusal.contains(&want),
            dev.failure(&format!("the refusal lacks {want:?}: {refusal:?}"))
        );
    }
    // The prompt follows; nothing after the refusal may claim the model or seed verified.
    std::thread::sleep(Duration::from_secs(3));
    never(&dev, MODEL_VERIFIED, "the replaced model verified")?;
    never(&dev, SEED_VERIFIED, "the seed was verified")?;
    never(&dev, &t("PRESS_ENTER"), "console-conf ran")?;
    dev.no_unexpected_errors(&[OTHER_MODEL])
}

/// c: the gadget snap changed on the card and its snap-revision replaced by one mallory
/// signed for the new bytes: refused naming the file and the revision rule, on the serial
/// console and on the screen, where it stays.
#[test]
fn a_snap_revision_signed_by_mallory_is_refused() -> Result<()> {
    let s = shared()?;
    let w = world()?;
    let image = variant(&s.plain, "hostile-revision")?;
    let store = w.path("store");
    let store = store.to_str().context("world path")?;
    let resolved = w.ok([
        "store",
        "resolve",
        store,
        "qemu-virt",
        "--channel",
        "beta",
        "--arch",
        "arm64",
    ])?;
    let rev = resolved
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("store resolve printed {resolved:?}"))?
        .to_string();
    let assertions = w.ok([
        "store",
        "resolve",
        store,
        "qemu-virt",
        "--channel",
        "beta",
        "--arch",
        "arm64",
        "--assertions",
    ])?;
    // The store's snap-revision is the second assertion, from its `type:` line on.
    let at = assertions
        .find("type: snap-revision\n")
        .ok_or_else(|| anyhow!("no snap-revision from store resolve:\n{assertions}"))?;
    let store_revision = assertions[at..].trim_end().to_string();
    let snap_id = header_value(store_revision.as_bytes(), "snap-id")
        .ok_or_else(|| anyhow!("the store's snap-revision has no snap-id"))?;

    let file = format!("snaps/qemu-virt_{rev}.snap");
    let offset = boot_partition_offset(&image)?;
    let mut snap = fat_read(&image, offset, &file)?;
    snap.extend_from_slice(&[0u8; 4096]);
    let local = w.path("hostile-qemu-virt.snap");
    std::fs::write(&local, &snap)?;
    let info: serde_json::Value =
        serde_json::from_str(&w.ok(["info", "--json", local.to_str().context("path")?])?)?;
    let forged = sign(
        "mallory",
        "hostile-mallory-revision",
        &serde_json::json!({
            "type": "snap-revision", "authority-id": "mallory",
            "snap-sha3-384": info["sha3-384"], "snap-id": snap_id,
            "snap-size": snap.len().to_string(), "snap-revision": rev,
            "developer-id": "mallory", "timestamp": "2026-01-01T00:00:00Z",
        }),
        true,
    )?;
    let path = format!("systems/{}/assertions/snaps", s.label);
    let seeded = String::from_utf8(fat_read(&image, offset, &path)?)?;
    ensure!(
        seeded.contains(&store_revision),
        "the seed's assertions/snaps lacks the store's revision of qemu-virt"
    );
    let replaced = seeded.replace(&store_revision, forged.trim_end());
    fat_write(&image, &path, replaced.as_bytes())?;
    fat_write(&image, &file, &snap)?;

    let screen = DeviceOptions {
        framebuffer: true,
        ..DeviceOptions::default()
    };
    let mut dev = boot_with("hostile-revision", &image, screen)?;
    dev.expect(MODEL_VERIFIED, BOOT)?;
    let refusal = agent_line(&mut dev, &format!("snaps/qemu-virt_{rev}.snap"), BOOT)?;
    for want in ["error: ", "does not verify", "\"mallory\"", TRUSTED_RULE] {
        ensure!(
            refusal.contains(want),
            dev.failure(&format!("the refusal lacks {want:?}: {refusal:?}"))
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    never(&dev, SEED_VERIFIED, "the seed verified")?;
    never(&dev, &t("PRESS_ENTER"), "console-conf ran")?;
    // The failure stays on the screen (tty1, read by OCR) under the agent's prompt.
    dev.read_screen(
        "hostile-revision-tty1",
        |text| text.contains("does not verify") && text.contains("Press r to reboot"),
        Duration::from_secs(60),
    )?;
    dev.no_unexpected_errors(&["does not verify"])
}

/// e: an auto-import.assert the brand signed that has expired: refused with the reason,
/// renamed, console-conf asks, nothing committed.
#[test]
fn an_expired_system_user_is_refused() -> Result<()> {
    let s = shared()?;
    let image = variant(&s.plain, "hostile-expired")?;
    // Valid for one second from the brand key's registration (no earlier: the key must be
    // valid at its since), long past when the device boots.
    let since = unix_of(&s.brand_since)?;
    let until = rfc3339(since + 1);
    while unix_now() <= since + 1 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let user = sign(
        "default",
        "hostile-su-expired",
        &system_user("acme", "ops", OPS_KEY, &s.brand_since, &until),
        false,
    )?;
    fat_write(&image, "auto-import.assert", user.as_bytes())?;

    let mut dev = boot("hostile-expired", &image)?;
    dev.expect(SEED_VERIFIED, BOOT)?;
    let refusal = agent_line(&mut dev, AUTO_IMPORT_REFUSED, STEP)?;
    ensure!(
        refusal.contains(&until) || refusal.contains("expired"),
        dev.failure(&format!("the refusal does not say it expired: {refusal:?}"))
    );
    refused_and_nothing_configured(&mut dev, &[AUTO_IMPORT_REFUSED], &["auto-import.assert"])
}

/// e: a valid auto-import.assert the brand signed for this model: the account is created
/// with its key, with nobody at the console.
#[test]
fn a_brand_signed_system_user_creates_its_account() -> Result<()> {
    let s = shared()?;
    let image = variant(&s.plain, "hostile-valid-user")?;
    let now = unix_now();
    let user = sign(
        "default",
        "hostile-su-valid",
        &system_user(
            "acme",
            "ops",
            OPS_KEY,
            &rfc3339(now.max(unix_of(&s.brand_since)?)),
            &rfc3339(now + 365 * 86_400),
        ),
        false,
    )?;
    fat_write(&image, "auto-import.assert", user.as_bytes())?;

    let mut dev = boot("hostile-valid-user", &image)?;
    dev.expect(SEED_VERIFIED, BOOT)?;
    dev.expect(&format!("{CONFIGURED}ops"), STEP)?;
    never(
        &dev,
        AUTO_IMPORT_REFUSED,
        "the brand's system-user was refused",
    )?;
    never(&dev, &t("PRESS_ENTER"), "console-conf asked anyway")?;
    dev.no_unexpected_errors(&[])?;
    std::thread::sleep(Duration::from_secs(2));
    dev.power_cut();
    configured(&dev, "ops", OPS_KEY)
}

#[test]
fn rfc3339_round_trips() {
    for (secs, text) in [
        (0, "1970-01-01T00:00:00Z"),
        (1_764_028_800, "2025-11-25T00:00:00Z"),
        (1_709_210_096, "2024-02-29T12:34:56Z"),
    ] {
        assert_eq!(rfc3339(secs), text);
        assert_eq!(unix_of(text).unwrap(), secs);
    }
}
