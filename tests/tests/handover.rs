//! Hand-over under QEMU `virt` arm64: an image from `coreforge build-image` whose `writable`
//! already holds a configured `system-data/` (as a first-boot commit leaves it: an account
//! with `*` as its password, its `authorized_keys`, dropbear's host key, DHCP on eth0), on a
//! disk larger than the image. The agent must grow `writable`, mount the base snap and the
//! overlay, switch_root into busybox init, whose rcS brings up the network and dropbear;
//! then `ssh` from the host runs `id`. A second boot grows nothing and hands over again.
//!
//! Needs the board snaps, the cross-built agent, QEMU, qemu-user, e2fsprogs and
//! openssh-client (`cross/setup.sh`).

use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use coreforge_boards::{Arch, Board};
use coreforge_tests::image::{board_snap, raw_copy, world, BootFiles, World};
use coreforge_tests::serial::{free_port, Device, DeviceOptions};
use coreforge_tests::ssh::{host_fingerprints, ssh_run, SshKey};

/// The account the prepared state holds.
const USER: &str = "tester";
/// How much larger than the image the device's disk is.
const EXTRA: u64 = 256 << 20;
const BOOT: Duration = Duration::from_secs(240);

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The (start, size) in bytes of MBR partition `n` (0-based) of `image`, or of GPT
/// partition `n` behind a protective MBR.
fn partition(image: &Path, n: usize) -> Result<(u64, u64)> {
    let mut mbr = [0u8; 512];
    File::open(image)?.read_exact_at(&mut mbr, 0)?;
    if mbr[446 + 4] == 0xEE {
        return gpt_partition(image, n);
    }
    let e = &mbr[446 + 16 * n..446 + 16 * (n + 1)];
    let field = |o: usize| u64::from(u32::from_le_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]]));
    Ok((field(8) * 512, field(12) * 512))
}

/// A public-key line and the host key file from the base snap's own dropbearkey, run
/// under qemu-user with the snap as its root.
fn dropbear_host_key(snap_root: &Path, key: &Path) -> Result<String> {
    let _ = fs::remove_file(key);
    let dropbearkey = snap_root.join("usr/bin/dropbearkey");
    run(Command::new("qemu-aarch64")
        .arg("-L")
        .arg(snap_root)
        .arg(&dropbearkey)
        .args(["-t", "ed25519", "-f"])
        .arg(key))?;
    let out = run(Command::new("qemu-aarch64")
        .arg("-L")
        .arg(snap_root)
        .arg(&dropbearkey)
        .arg("-y")
        .arg("-f")
        .arg(key))?;
    out.lines()
        .find(|l| l.starts_with("Fingerprint: "))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_owned)
        .context("dropbearkey -y printed no fingerprint")
}

/// Writes `system-data/` as a first-boot commit would into `dir`, from the base snap's
/// /etc in `snap_root`; returns the host key's fingerprint.
fn system_data(dir: &Path, snap_root: &Path, key: &SshKey) -> Result<String> {
    let _ = fs::remove_dir_all(dir);
    let etc = dir.join("system-data/etc");
    for sub in ["dropbear", "network"] {
        fs::create_dir_all(etc.join(sub))?;
    }
    let base = |f: &str| fs::read_to_string(snap_root.join("etc").join(f));
    fs::write(
        etc.join("passwd"),
        base("passwd")? + &format!("{USER}:x:1000:1000:Tester:/home/{USER}:/bin/sh\n"),
    )?;
    fs::write(
        etc.join("shadow"),
        base("shadow")? + &format!("{USER}:*:20000:0:99999:7:::\n"),
    )?;
    let group: String = base("group")?
        .lines()
        .map(|l| {
            if l.starts_with("sudo:") {
                format!("{l}{USER}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fs::write(etc.join("group"), group + &format!("{USER}:x:1000:\n"))?;
    fs::set_permissions(etc.join("shadow"), fs::Permissions::from_mode(0o600))?;
    fs::write(
        etc.join("network/interfaces"),
        "auto eth0\niface eth0 inet dhcp\n",
    )?;
    let fingerprint =
        dropbear_host_key(snap_root, &etc.join("dropbear/dropbear_ed25519_host_key"))?;
    // The commit's record (agent/src/state/record.rs), written last by a commit.
    let record = dir.join("system-data/var/lib/coreforge");
    fs::create_dir_all(&record)?;
    fs::write(
        record.join("console-conf.json"),
        format!(
            r#"{{"user": "{USER}", "uid": 1000, "source": "handover test", "time": "2026-01-01T00:00:00Z", "host-key": "{fingerprint}"}}"#
        ),
    )?;
    let ssh = dir.join(format!("system-data/home/{USER}/.ssh"));
    fs::create_dir_all(&ssh)?;
    fs::write(ssh.join("authorized_keys"), format!("{}\n", key.public))?;
    fs::set_permissions(
        ssh.join("authorized_keys"),
        fs::Permissions::from_mode(0o600),
    )?;
    fs::set_permissions(&ssh, fs::Permissions::from_mode(0o700))?;
    Ok(fingerprint)
}

/// Replaces partition 2 of `image` with an ext4 `writable` made by `mke2fs -d` from
/// `content`; the home folder is made the user's with debugfs (no root needed).
fn write_writable(image: &Path, content: &Path, scratch: &Path) -> Result<()> {
    let (offset, size) = partition(image, 1)?;
    let fs_img = scratch.join("writable.ext4");
    let _ = fs::remove_file(&fs_img);
    File::create(&fs_img)?.set_len(size)?;
    run(Command::new("mke2fs")
        .args([
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-L",
            "writable",
            "-E",
            "root_owner=0:0",
            "-d",
        ])
        .arg(content)
        .arg(&fs_img))?;
    let home = format!("/system-data/home/{USER}");
    let mut requests = String::new();
    for path in [
        home.clone(),
        format!("{home}/.ssh"),
        format!("{home}/.ssh/authorized_keys"),
    ] {
        requests.push_str(&format!("sif {path} uid 1000\nsif {path} gid 1000\n"));
    }
    let cmds = scratch.join("debugfs.cmds");
    fs::write(&cmds, requests)?;
    run(Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&cmds)
        .arg(&fs_img))?;
    let bytes = fs::read(&fs_img)?;
    let disk = fs::OpenOptions::new().write(true).open(image)?;
    disk.write_all_at(&bytes, offset)?;
    Ok(())
}

/// The size in KiB of the file system mounted at `path`, from `df -k` on the device.
fn df_kib(out: &str) -> Result<u64> {
    let line = out.lines().nth(1).context("df printed no line")?;
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("df line {line:?}"))
}

#[test]
fn configured_device_grows_writable_hands_over_and_accepts_ssh() -> Result<()> {
    let w = world()?;
    let scratch = coreforge_tests::scratch_dir("handover")?;
    let model = w.model("handover", "qemu-virt")?;
    let built = w.build_image("handover", &model, &[])?;

    // The base snap, unpacked: its /etc is the lower layer, its dropbearkey makes the key.
    let snap_root = scratch.join("core");
    let _ = fs::remove_dir_all(&snap_root);
    run(Command::new("unsquashfs")
        .args(["-q", "-n", "-d"])
        .arg(&snap_root)
        .arg(board_snap("core", "arm64")?))?;
    let key = SshKey::generate(&scratch.join("key"), "handover-test")?;
    let content = scratch.join("writable");
    let fingerprint = system_data(&content, &snap_root, &key)?;

    let image = scratch.join("handover.img");
    fs::copy(&built, &image)?;
    write_writable(&image, &content, &scratch)?;
    let (_, before) = partition(&image, 1)?;
    let len = fs::metadata(&image)?.len();
    File::options()
        .write(true)
        .open(&image)?
        .set_len(len + EXTRA)?;

    let board = Board::all()
        .iter()
        .find(|b| b.name == "qemu-virt" && b.arch == Arch::Arm64)
        .context("no qemu-virt arm64 board")?;
    let files = BootFiles::read(&image, board, &scratch.join("boot"))?;
    let port = free_port()?;
    let options = DeviceOptions {
        ssh_port: Some(port),
        ..DeviceOptions::default()
    };
    let mut dev = Device::new("handover-device", &files, options)?;

    // First boot: grow, hand over, the OS's init and its services.
    dev.power_on()?;
    dev.expect("seed verified: ", BOOT)?;
    dev.expect("writable partition: /dev/vda2", BOOT)?;
    dev.expect("/dev/vda2 grown from", BOOT)?;
    dev.expect("writable's file system grown from", BOOT)?;
    dev.expect("handing over to /sbin/init", BOOT)?;
    dev.expect("coreforge core: rcS running", BOOT)?;
    dev.expect("coreforge core: dropbear started", BOOT)?;

    let out = login(&dev, &key, port)?;
    ensure!(
        out.starts_with(&format!("uid=1000({USER}) gid=1000({USER})")) && out.contains("27(sudo)"),
        "id as {USER}: {out}"
    );
    let kib = df_kib(out.lines().skip(1).collect::<Vec<_>>().join("\n").as_str())?;
    ensure!(
        kib * 1024 > before + EXTRA / 2,
        "writable is {kib} KiB after growing; it was {before} bytes on a disk {EXTRA} bytes larger"
    );
    // dropbear serves the host key the state holds (its fingerprint was shown at setup).
    let offered = host_fingerprints(port)?;
    ensure!(
        offered.contains(&fingerprint),
        "host keys offered {offered:?}, want {fingerprint}"
    );

    // The partition table on the disk covers the whole disk now.
    dev.power_cut();
    let raw = scratch.join("after.raw");
    raw_copy(dev.disk(), &raw)?;
    let (start, size) = partition(&raw, 1)?;
    ensure!(
        start + size == len + EXTRA,
        "partition 2 ends at {} on a disk of {}",
        start + size,
        len + EXTRA
    );
    fs::remove_file(&raw)?;

    // Second boot: nothing left to grow, the same hand-over and login.
    dev.power_on()?;
    dev.expect("writable partition: /dev/vda2", BOOT)?;
    dev.expect("handing over to /sbin/init", BOOT)?;
    let transcript = dev.transcript();
    if transcript.contains("grown from") {
        bail!("{}", dev.failure("the second boot grew writable again"));
    }
    dev.expect("coreforge core: dropbear started", BOOT)?;
    let again = login(&dev, &key, port)?;
    ensure!(again.starts_with(&format!("uid=1000({USER})")), "{again}");
    dev.no_unexpected_errors(&[])?;
    dev.power_cut();
    Ok(())
}

/// How much larger than the GPT image the device's disk is: not a whole number of MiB.
/// Logs in as [`USER`] over the forwarded port: `id` and the size of writable.
fn login(dev: &Device, key: &SshKey, port: u16) -> Result<String> {
    ssh_run(
        key,
        port,
        USER,
        "id; df -k /run/mnt/data",
        Duration::from_secs(120),
    )
    .map_err(|e| dev.failure(&format!("{e:#}")))
}

const EXTRA_GPT: u64 = (256 << 20) + 7 * 512;

/// A little-endian u64 at `o` in `b`.
fn le64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// The (start, size) in bytes of GPT partition `n` (0-based) of `image`, from its primary
/// header and entries (their checksums are `sfdisk --verify`'s to check).
fn gpt_partition(image: &Path, n: usize) -> Result<(u64, u64)> {
    let file = File::open(image)?;
    let mut h = [0u8; 512];
    file.read_exact_at(&mut h, 512)?;
    ensure!(
        &h[..8] == b"EFI PART",
        "{} has no GPT header",
        image.display()
    );
    let size = u64::from(u32::from_le_bytes([h[84], h[85], h[86], h[87]]));
    let mut e = vec![0u8; size as usize];
    file.read_exact_at(&mut e, le64(&h, 72) * 512 + n as u64 * size)?;
    let (first, last) = (le64(&e, 32), le64(&e, 40));
    ensure!(
        first != 0 && last >= first,
        "GPT entry {n}: {first}..{last}"
    );
    Ok((first * 512, (last + 1 - first) * 512))
}

/// `sfdisk --verify` accepts `image` without a warning.
fn sfdisk_verify(image: &Path) -> Result<()> {
    let out = Command::new("sfdisk")
        .arg("--verify")
        .arg(image)
        .output()
        .context("running sfdisk (package fdisk): run cross/setup.sh")?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    ensure!(
        out.status.success() && stdout.contains("No errors detected") && stderr.trim().is_empty(),
        "sfdisk --verify {}: {stdout}{stderr}",
        image.display()
    );
    Ok(())
}

/// The qemu-virt gadget with the GPT layout of `tests/data/gpt-gadget`, released to the
/// store's `edge` channel (the other scenarios build from `beta`, where the MBR one stays).
fn release_gpt_gadget(w: &World, scratch: &Path) -> Result<()> {
    let dir = scratch.join("gpt-gadget");
    let _ = fs::remove_dir_all(&dir);
    run(Command::new("unsquashfs")
        .args(["-q", "-n", "-d"])
        .arg(&dir)
        .arg(board_snap("qemu-virt", "arm64")?))?;
    let yaml = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/gpt-gadget/gadget.yaml");
    fs::copy(&yaml, dir.join("meta/gadget.yaml"))
        .with_context(|| format!("copying {}", yaml.display()))?;
    let snap = scratch.join("qemu-virt-gpt.snap");
    let store = w.path("store");
    w.ok([
        OsStr::new("pack"),
        dir.as_os_str(),
        OsStr::new("-o"),
        snap.as_os_str(),
    ])?;
    let out = w.ok([
        OsStr::new("store"),
        OsStr::new("upload"),
        store.as_os_str(),
        snap.as_os_str(),
    ])?;
    let rev = out
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("store upload printed no revision: {out:?}"))?;
    w.ok([
        "store",
        "release",
        &store.to_string_lossy(),
        "qemu-virt",
        rev,
        "edge",
    ])?;
    Ok(())
}

/// The same device on a GPT disk (a gadget with `schema: gpt`), enlarged by an amount that
/// is not a whole number of MiB: the agent moves the backup table to the new end, grows
/// `writable` and its file system, hands over, and `ssh` logs in. The table it leaves
/// passes `sfdisk --verify`, and the next boot's kernel reads it without a complaint.
#[test]
fn gpt_device_grows_writable_hands_over_and_accepts_ssh() -> Result<()> {
    let w = world()?;
    let scratch = coreforge_tests::scratch_dir("handover-gpt")?;
    release_gpt_gadget(w, &scratch)?;
    let model = w.model("handover-gpt", "qemu-virt")?;
    let built = w.path("handover-gpt.img");
    let store = w.path("store");
    w.ok([
        OsStr::new("build-image"),
        OsStr::new("-c"),
        OsStr::new("edge"),
        OsStr::new("--store"),
        store.as_os_str(),
        OsStr::new("-o"),
        built.as_os_str(),
        model.as_os_str(),
    ])?;

    let snap_root = scratch.join("core");
    let _ = fs::remove_dir_all(&snap_root);
    run(Command::new("unsquashfs")
        .args(["-q", "-n", "-d"])
        .arg(&snap_root)
        .arg(board_snap("core", "arm64")?))?;
    let key = SshKey::generate(&scratch.join("key"), "handover-gpt-test")?;
    let content = scratch.join("writable");
    system_data(&content, &snap_root, &key)?;

    let image = scratch.join("handover-gpt.img");
    fs::copy(&built, &image)?;
    sfdisk_verify(&image)?; // as build-image wrote it
    write_writable(&image, &content, &scratch)?;
    let (_, before) = partition(&image, 1)?;
    let len = fs::metadata(&image)?.len() + EXTRA_GPT;
    File::options().write(true).open(&image)?.set_len(len)?;

    let board = Board::all()
        .iter()
        .find(|b| b.name == "qemu-virt" && b.arch == Arch::Arm64)
        .context("no qemu-virt arm64 board")?;
    let files = BootFiles::read(&image, board, &scratch.join("boot"))?;
    let port = free_port()?;
    let options = DeviceOptions {
        ssh_port: Some(port),
        // The kernel's warnings on the console (the agent keeps them off unless the command
        // line sets a level): its GPT lines show it read the enlarged disk.
        extra_cmdline: "loglevel=7".into(),
        ..DeviceOptions::default()
    };
    let mut dev = Device::new("handover-gpt-device", &files, options)?;

    dev.power_on()?;
    dev.expect("writable partition: /dev/vda2", BOOT)?;
    // Fails fast when the agent hands over without growing (or warns that it cannot).
    let (which, line) = dev.expect_any(
        &[
            "/dev/vda2 grown from",
            "cannot grow",
            "handing over to /sbin/init",
        ],
        BOOT,
    )?;
    if which != 0 {
        bail!(
            "{}",
            dev.failure(&format!("writable was not grown: {line}"))
        );
    }
    dev.expect("writable's file system grown from", BOOT)?;
    dev.expect("handing over to /sbin/init", BOOT)?;
    dev.expect("coreforge core: dropbear started", BOOT)?;
    // This boot's kernel read the table before it was grown: the backup was not at the end.
    if !dev.transcript().contains("GPT:") {
        bail!(
            "{}",
            dev.failure("the kernel did not see the enlarged GPT disk")
        );
    }
    let out = login(&dev, &key, port)?;
    ensure!(
        out.starts_with(&format!("uid=1000({USER}) gid=1000({USER})")),
        "id as {USER}: {out}"
    );
    let kib = df_kib(out.lines().skip(1).collect::<Vec<_>>().join("\n").as_str())?;
    ensure!(
        kib * 1024 > before + EXTRA_GPT / 2,
        "writable is {kib} KiB after growing; it was {before} bytes on a disk {EXTRA_GPT} bytes larger"
    );

    // On the disk: writable ends at the last usable sector, before the 33 of the backup
    // table, and the whole table passes sfdisk's checks.
    dev.power_cut();
    let raw = scratch.join("after.raw");
    raw_copy(dev.disk(), &raw)?;
    let (start, size) = partition(&raw, 1)?;
    ensure!(
        start + size == len - 33 * 512,
        "partition 2 ends at {} on a disk of {len}",
        start + size
    );
    sfdisk_verify(&raw)?;
    fs::remove_file(&raw)?;

    // The next boot: the kernel finds nothing wrong, nothing is grown, the same login.
    dev.power_on()?;
    dev.expect("handing over to /sbin/init", BOOT)?;
    let transcript = dev.transcript();
    if transcript.contains("GPT:") || transcript.contains("grown from") {
        bail!(
            "{}",
            dev.failure("the second boot found the GPT to mend or writable to grow")
        );
    }
    dev.expect("coreforge core: dropbear started", BOOT)?;
    let again = login(&dev, &key, port)?;
    ensure!(again.starts_with(&format!("uid=1000({USER})")), "{again}");
    dev.no_unexpected_errors(&[])?;
    dev.power_cut();
    Ok(())
}
