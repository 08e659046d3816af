//! Wi-Fi on the Debian base, end to end without hardware: console-conf's Wi-Fi choice (given
//! by a preseed file) brings the device onto a WPA2 network. The network is the test-only snap
//! `wifi-ap` (tests/data/wifi-ap, seeded with `--extra-snaps`): its daemon loads the kernel's
//! `mac80211_hwsim` with two virtual radios from the kernel snap, moves the second into the
//! network namespace `ap` and runs Debian's hostapd (WPA2-PSK) and busybox udhcpd there. The
//! device's station is the first radio, `wlan0`, configured by the agent (wpa_supplicant@wlan0,
//! a systemd-networkd DHCP unit). The test logs in over the wired eth0, waits for the station
//! to associate and get an address from the access point, and then reaches the device's SSH
//! server over that Wi-Fi address from inside the access point's namespace.
//!
//! virt arm64 only (the snap is built for arm64). Needs `cross/setup.sh` (kernels, cross
//! toolchain, QEMU, mmdebstrap and qemu-user-static for the base, openssh-client) and root for
//! the base's build; fails, never skips, without them. Each failure prints the device's whole
//! serial log.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use coreforge_boards::{Arch, Board};
use coreforge_tests::flows::power_off_over_ssh;
use coreforge_tests::image::{os_world, BootFiles};
use coreforge_tests::serial::{free_port, Device, DeviceOptions};
use coreforge_tests::ssh::{ssh_run, SshKey};

/// The account the preseed file creates.
const USER: &str = "zops";
/// The access point's network, as the wifi-ap snap's `environment:` sets it
/// (tests/data/wifi-ap/tree/meta/snap.yaml).
const SSID: &str = "coreforge-test-ap";
const PASSPHRASE: &str = "correct-horse-wifi";
/// The access point's address; udhcpd leases .100 to .150 of its /24.
const AP_NET: &str = "10.77.0.";
/// From power on to a working SSH login on the Debian base under TCG.
const LOGIN: Duration = Duration::from_secs(420);
/// How long the station may take to associate and get its lease, in seconds (after login).
const ASSOCIATE_SECS: u32 = 90;

fn virt() -> &'static Board {
    Board::by_name("qemu-virt", Arch::Arm64).unwrap()
}

/// The wifi-ap snap's tree, built by tests/data/wifi-ap/build.sh (pinned Debian packages).
fn wifi_ap_tree() -> Result<std::path::PathBuf> {
    let script = coreforge_tests::workspace_root().join("tests/data/wifi-ap/build.sh");
    let out = Command::new(&script)
        .arg("arm64")
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(
        out.status.success(),
        "{} failed (run cross/setup.sh first):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout)?.trim().to_string();
    ensure!(
        Path::new(&tree).join("meta/snap.yaml").is_file(),
        "wifi-ap/build.sh printed no snap tree: {tree:?}"
    );
    Ok(tree.into())
}

/// The Debian image with `hello` and `wifi-ap`, and a preseed file: DHCP on eth0 (the test's
/// way in), the access point's network on wlan0, the test's key for [`USER`].
fn image(key: &SshKey) -> Result<BootFiles> {
    let w = os_world()?;
    let root = coreforge_tests::workspace_root();
    w.publish(&root.join("examples/hello"), "hello")?;
    w.publish(&wifi_ap_tree()?, "wifi-ap")?;
    let preseed = w.path("wifi-console-conf.json");
    std::fs::write(
        &preseed,
        serde_json::json!({
            "network": {"interface": "eth0", "method": "dhcp"},
            "wifi": {"interface": "wlan0", "ssid": SSID, "passphrase": PASSPHRASE},
            "identity": {"username": USER, "ssh-keys": [key.public]},
        })
        .to_string(),
    )?;
    let model = w.model("wifi-virt", "qemu-virt")?;
    let image = w.build_image(
        "wifi-virt",
        &model,
        &[
            "--extra-snaps".into(),
            "hello".into(),
            "--extra-snaps".into(),
            "wifi-ap".into(),
            "--preseed".into(),
            preseed.into(),
        ],
    )?;
    BootFiles::read(&image, virt(), &w.path("wifi-virt-boot"))
}

/// Runs `command` as [`USER`] over SSH on eth0 (retrying while the OS boots); its stdout.
fn ssh(dev: &Device, key: &SshKey, port: u16, command: &str) -> Result<String> {
    ssh_run(key, port, USER, command, LOGIN).map_err(|e| dev.failure(&format!("{e:#}")))
}

#[test]
fn station_joins_the_wpa2_access_point_and_serves_ssh_over_wifi() -> Result<()> {
    let dir = coreforge_tests::scratch_dir("wifi")?;
    let key = SshKey::generate(&dir.join("key"), "wifi@coreforge")?;
    let files = image(&key)?;
    let port = free_port()?;
    let options = DeviceOptions {
        ssh_port: Some(port),
        extra_qemu: vec!["-m".into(), "512M".into()],
        ..DeviceOptions::default()
    };
    let mut dev = Device::new("wifi-virt", &files, options)?;
    dev.power_on()?;
    let (which, _) = dev.expect_any(&["login:", "Press r to reboot"], LOGIN)?;
    ensure!(
        which == 0,
        dev.failure("the agent stopped at its prompt instead of handing over")
    );

    // The agent's configuration and the access point, then the station: associated
    // (wpa_supplicant's state), and an address from the access point's DHCP server on wlan0.
    let wait = format!(
        "i=0; while [ $i -lt {ASSOCIATE_SECS} ] && ! ip -4 -o addr show dev wlan0 2>/dev/null \
         | grep -q 'inet {AP_NET}'; do sleep 1; i=$((i+1)); done; echo waited=$i; \
         systemctl is-active snap.wifi-ap.ap.service wpa_supplicant@wlan0.service; \
         sudo wpa_cli -i wlan0 status | grep -E '^(wpa_state|ssid|key_mgmt|pairwise_cipher)='; \
         sudo wifi-ap.iw dev wlan0 link | sed -n 's/^\\t*SSID: /link-ssid=/p'; \
         ip -4 -o addr show dev wlan0; sudo ip netns exec ap ip -o link show | grep -c wlan || true"
    );
    let out = ssh(&dev, &key, port, &wait)?;
    eprintln!("wifi: station state over eth0:\n{out}");
    for want in [
        "active",
        "wpa_state=COMPLETED",
        &format!("ssid={SSID}"),
        "key_mgmt=WPA2-PSK",
        "pairwise_cipher=CCMP",
        &format!("link-ssid={SSID}"),
    ] {
        ensure!(
            out.lines().any(|l| l.trim_end() == want),
            dev.failure(&format!("station: no line {want:?} in:\n{out}"))
        );
    }
    ensure!(
        out.lines().filter(|l| l.trim_end() == "active").count() == 2,
        dev.failure(&format!(
            "the access point or wpa_supplicant@wlan0 is not active:\n{out}"
        ))
    );
    // `ip -o addr`: "3: wlan0    inet 10.77.0.123/24 brd 10.77.0.255 scope global dynamic ..."
    let address = out
        .split_whitespace()
        .find(|w| w.starts_with(AP_NET) && w.contains('/'))
        .and_then(|w| w.split('/').next())
        .map(str::to_string)
        .ok_or_else(|| dev.failure(&format!("wlan0 got no address in {AP_NET}0/24:\n{out}")))?;
    let host: u32 = address[AP_NET.len()..].parse().unwrap_or(0);
    ensure!(
        (100..=150).contains(&host),
        dev.failure(&format!(
            "wlan0's address {address} is not one the access point's DHCP server leases"
        ))
    );

    // The device's SSH server over the Wi-Fi address, from the access point's side: its
    // namespace has nothing but the radio (and lo).
    let out = ssh(
        &dev,
        &key,
        port,
        &format!("sudo wifi-ap.probe {address} 22"),
    )?;
    ensure!(
        out.lines().any(|l| l.starts_with("SSH-2.0-")),
        dev.failure(&format!(
            "no SSH banner from {address}:22 over Wi-Fi, got:\n{out}"
        ))
    );
    eprintln!("wifi: {address}:22 over the radio answers {:?}", out.trim());

    dev.no_unexpected_errors(&[])?;
    if power_off_over_ssh(&mut dev, &key, port, USER).is_err() {
        dev.power_cut();
    }
    Ok(())
}
