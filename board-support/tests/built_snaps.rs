//! The board snaps board-support/snaps/build.sh packed into the cache: each one's
//! meta/snap.yaml, and that each carries what the boards boot with, built from the current
//! sources: the Debian base `core` (systemd, sshd without host keys, sudo, no accounts, the
//! pinned packages, within its size budget) and the busybox fixture `core-busybox`. Missing
//! snaps or tools fail (they are an input of the image tests), never skip.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use coreforge_boards::{Arch, Board};
use coreforge_initramfs::ModuleIndex;
use serde_norway::Value;

const BUILD: &str = "run board-support/snaps/build.sh";

/// `${COREFORGE_CACHE:-$HOME/.cache/coreforge}`.
fn cache() -> PathBuf {
    match std::env::var_os("COREFORGE_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/coreforge")
        }
    }
}

/// Runs `board-support/snaps/build.sh all` once per test process; it rebuilds only what
/// changed, so this is cheap when the snaps are current.
fn build_once() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("snaps/build.sh");
        let out = Command::new(&script)
            .arg("all")
            // The outer cargo's jobserver and target dir are not for the inner build.
            .env_remove("CARGO_MAKEFLAGS")
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} all failed (run cross/setup.sh first):\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// The one `<name>_<version>_<arch>.snap` in the cache.
fn snap(name: &str, arch: Arch) -> PathBuf {
    build_once();
    let dir = cache().join("snaps");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: the board snaps are not built; {BUILD}",
            dir.display()
        )
    });
    let suffix = format!("_{arch}.snap");
    let found: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let file = p.file_name().unwrap().to_string_lossy();
            file.starts_with(&format!("{name}_")) && file.ends_with(&suffix)
        })
        .collect();
    match found.as_slice() {
        [one] => one.clone(),
        [] => panic!("no {name} snap for {arch} in {}; {BUILD}", dir.display()),
        many => panic!("several {name} snaps for {arch}: {many:?}; {BUILD}"),
    }
}

/// A file inside a snap, through `unsquashfs -cat`.
fn cat(snap: &Path, inner: &str) -> Vec<u8> {
    let out = Command::new("unsquashfs")
        .arg("-cat")
        .arg(snap)
        .arg(inner)
        .output()
        .expect("unsquashfs runs (squashfs-tools)");
    assert!(
        out.status.success(),
        "{}: no {inner}: {}",
        snap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every path in a snap (without a leading `/`), with ` -> target` after symlinks.
fn listing(snap: &Path) -> Vec<String> {
    let out = Command::new("unsquashfs")
        .args(["-ll", "-d", "ROOT"])
        .arg(snap)
        .output()
        .expect("unsquashfs runs (squashfs-tools)");
    assert!(out.status.success(), "{}: cannot list", snap.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(" ROOT/").map(|(_, path)| path.to_string()))
        .collect()
}

/// The paths under `dir/` in a listing, relative to it.
fn under<'a>(list: &'a [String], dir: &str) -> BTreeSet<&'a str> {
    list.iter()
        .filter_map(|p| p.strip_prefix(dir).and_then(|p| p.strip_prefix('/')))
        .collect()
}

fn snap_yaml(snap: &Path) -> Value {
    serde_norway::from_slice(&cat(snap, "meta/snap.yaml"))
        .unwrap_or_else(|e| panic!("{}: meta/snap.yaml: {e}", snap.display()))
}

#[test]
fn each_snap_declares_its_name_type_and_arch() {
    for arch in Arch::ALL {
        // The file's name, the snap's name (the busybox fixture is `core` too), its type.
        for (file_name, name, snap_type) in [
            ("pi2-kernel", "pi2-kernel", "kernel"),
            ("pi3", "pi3", "gadget"),
            ("qemu-virt", "qemu-virt", "gadget"),
            ("core", "core", "os"),
            ("core-busybox", "core", "os"),
        ] {
            let file = snap(file_name, arch);
            let yaml = snap_yaml(&file);
            assert_eq!(yaml["name"].as_str(), Some(name), "{}", file.display());
            assert_eq!(yaml["type"].as_str(), Some(snap_type), "{}", file.display());
            let archs: Vec<&str> = yaml["architectures"]
                .as_sequence()
                .expect("architectures is a list")
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(archs, [arch.debian_name()], "{}", file.display());
            // snapd's file name: <name>_<version>_<arch>.snap (core-busybox_ for the fixture).
            let version = yaml["version"].as_str().expect("a version string");
            let expected = format!("{file_name}_{version}_{arch}.snap");
            assert_eq!(file.file_name().unwrap().to_string_lossy(), expected);
        }
    }
}

/// A source file of the snaps, as committed.
fn source(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("snaps")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn gadgets_carry_the_current_sources() {
    for arch in Arch::ALL {
        for gadget in ["pi3", "qemu-virt"] {
            let file = snap(gadget, arch);
            for inner in ["meta/gadget.yaml", "boot-assets/cmdline.txt"] {
                assert!(
                    cat(&file, inner) == source(&format!("{gadget}/{inner}")),
                    "{}: {inner} differs from the source tree (stale); {BUILD}",
                    file.display()
                );
            }
        }
        let pi3 = snap("pi3", arch);
        assert!(
            cat(&pi3, "boot-assets/config.txt")
                == source(&format!("pi3/arch/{arch}/boot-assets/config.txt")),
            "{}: config.txt is not the {arch} one (stale?); {BUILD}",
            pi3.display()
        );
    }
}

#[test]
fn pi3_gadget_has_the_firmware_and_virt_none() {
    for arch in Arch::ALL {
        let pi3 = listing(&snap("pi3", arch));
        let assets = under(&pi3, "boot-assets");
        for f in [
            "bootcode.bin",
            "start.elf",
            "fixup.dat",
            "config.txt",
            "cmdline.txt",
        ] {
            assert!(
                assets.contains(f),
                "pi3 ({arch}) lacks boot-assets/{f}: {assets:?}"
            );
        }
        assert!(
            !assets.iter().any(|f| f.starts_with("start4")),
            "Pi 4 firmware in the pi3 gadget"
        );
        let virt = listing(&snap("qemu-virt", arch));
        let assets: BTreeSet<&str> = under(&virt, "boot-assets");
        assert_eq!(
            assets,
            BTreeSet::from(["cmdline.txt"]),
            "qemu-virt ({arch})"
        );
    }
}

/// The device trees the arch's boards and QEMU machines use, by file name.
fn board_dtbs(arch: Arch) -> BTreeSet<String> {
    Board::all()
        .iter()
        .filter(|b| b.arch == arch)
        .flat_map(|b| [b.dtb, b.qemu.dtb])
        .flatten()
        .map(|d| d.rsplit('/').next().unwrap().to_string())
        .collect()
}

/// The unpacked kernel of `arch` (cross/fetch-kernels.sh).
fn kernel_dir(arch: Arch) -> PathBuf {
    let dir = cache().join("kernels").join(arch.debian_name());
    assert!(
        dir.join("release").is_file(),
        "{}: no kernel; run cross/fetch-kernels.sh",
        dir.display()
    );
    dir
}

#[test]
fn kernel_snap_has_the_image_the_dtbs_and_exactly_the_module_closure() {
    for arch in Arch::ALL {
        let file = snap("pi2-kernel", arch);
        let list = listing(&file);

        let image = cat(&file, "kernel.img");
        match arch {
            // arm64 Image header: magic "ARM\x64" at 56 (raspi3b loads no compressed kernel).
            Arch::Arm64 => assert_eq!(
                &image[56..60],
                b"ARM\x64",
                "arm64 kernel.img is not an Image"
            ),
            // zImage header: magic 0x016f2818 at 0x24.
            Arch::Armhf => assert_eq!(
                &image[0x24..0x28],
                &0x016f_2818u32.to_le_bytes(),
                "armhf kernel.img is not a zImage"
            ),
        }

        let dtbs: BTreeSet<String> = under(&list, "dtbs").into_iter().map(String::from).collect();
        assert_eq!(dtbs, board_dtbs(arch), "{}", file.display());

        let kernel = kernel_dir(arch);
        let release = std::fs::read_to_string(kernel.join("release")).unwrap();
        let modules_dir = kernel.join("modules");
        let names: Vec<&str> = Board::all()
            .iter()
            .filter(|b| b.arch == arch)
            .flat_map(|b| b.modules.iter().chain(b.os_modules).copied())
            .collect();
        let closure = ModuleIndex::scan(&modules_dir)
            .unwrap()
            .resolve(&names)
            .unwrap();
        let want: BTreeSet<String> = closure
            .iter()
            .map(|m| {
                m.source
                    .strip_prefix(&modules_dir)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        let got: BTreeSet<String> = under(&list, &format!("modules/{}", release.trim()))
            .into_iter()
            .filter(|p| p.ends_with(".ko") || p.ends_with(".ko.xz") || p.ends_with(".ko.zst"))
            .map(String::from)
            .collect();
        assert_eq!(
            got,
            want,
            "{}: modules differ from the boards' closure; {BUILD}",
            file.display()
        );
        assert!(
            want.iter().any(|m| m.ends_with("/ext4.ko")),
            "closure lacks ext4"
        );
        assert!(
            want.iter().any(|m| m.ends_with("/mac80211_hwsim.ko")),
            "closure lacks the OS's mac80211_hwsim"
        );
        // modprobe's index for the OS (depmod's, of exactly these modules).
        let dep = String::from_utf8(cat(
            &file,
            &format!("modules/{}/modules.dep", release.trim()),
        ))
        .unwrap();
        let hwsim = dep
            .lines()
            .find(|l| l.starts_with("kernel/drivers/net/wireless/mac80211_hwsim.ko:"))
            .unwrap_or_else(|| {
                panic!(
                    "{}: modules.dep lacks mac80211_hwsim; {BUILD}",
                    file.display()
                )
            });
        assert!(
            hwsim.contains("kernel/net/mac80211/mac80211.ko"),
            "{}: modules.dep: {hwsim}",
            file.display()
        );
        assert_eq!(
            dep.lines().count(),
            want.len(),
            "{}: modules.dep lists other modules than the snap's; {BUILD}",
            file.display()
        );
    }
}

#[test]
fn core_busybox_snap_boots_busybox_init() {
    for arch in Arch::ALL {
        let file = snap("core-busybox", arch);
        let list = listing(&file);
        assert!(
            list.iter().any(|p| p == "sbin/init -> ../bin/busybox"),
            "{}: no /sbin/init",
            file.display()
        );
        assert!(
            list.iter().any(|p| p == "bin/sh -> ../bin/busybox"),
            "{}: no /bin/sh",
            file.display()
        );
        assert!(
            list.iter().any(|p| p == "etc/inittab"),
            "{}: no /etc/inittab",
            file.display()
        );
        let busybox = cat(&file, "bin/busybox");
        assert_eq!(&busybox[..4], b"\x7fELF");
        // e_machine: EM_AARCH64 (183) or EM_ARM (40), little endian.
        let machine = u16::from_le_bytes([busybox[18], busybox[19]]);
        let want = match arch {
            Arch::Arm64 => 183,
            Arch::Armhf => 40,
        };
        assert_eq!(
            machine,
            want,
            "{}: busybox is for the wrong machine",
            file.display()
        );
    }
}

/// The snap unpacked into a fresh temporary folder (removed when dropped).
struct Unpacked(PathBuf);

impl Unpacked {
    fn new(snap: &Path, tag: &str) -> Unpacked {
        let dir = std::env::temp_dir().join(format!(
            "cf-boards-{tag}-{}-{}",
            std::process::id(),
            snap.file_name().unwrap().to_string_lossy()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new("unsquashfs")
            .args(["-q", "-n", "-d"])
            .arg(&dir)
            .arg(snap)
            .output()
            .expect("unsquashfs runs (squashfs-tools)");
        assert!(
            out.status.success(),
            "{}: cannot unpack: {}",
            snap.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Unpacked(dir)
    }
}

impl Drop for Unpacked {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the snap's own `program` (a path inside the snap) under qemu-user, with the snap's
/// root as the prefix for the dynamic loader and the libraries.
fn run_foreign(root: &Path, arch: Arch, program: &str, args: &[&str]) -> std::process::Output {
    let qemu = match arch {
        Arch::Arm64 => "qemu-aarch64",
        Arch::Armhf => "qemu-arm",
    };
    Command::new(qemu)
        .arg("-L")
        .arg(root)
        .arg(root.join(program))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{qemu}: {e} (install qemu-user: cross/setup.sh)"))
}

#[test]
fn core_busybox_snap_has_dropbear_with_its_libraries_and_loader() {
    for arch in Arch::ALL {
        let file = snap("core-busybox", arch);
        let list = listing(&file);
        let (triplet, loader) = match arch {
            Arch::Arm64 => ("aarch64-linux-gnu", "ld-linux-aarch64.so.1"),
            Arch::Armhf => ("arm-linux-gnueabihf", "ld-linux-armhf.so.3"),
        };
        // The loader where the ELF's PT_INTERP points, and the libraries dropbear loads.
        let link = format!("lib/{loader} -> {triplet}/{loader}");
        assert!(list.contains(&link), "{}: no {link}", file.display());
        let libs = under(&list, &format!("lib/{triplet}"));
        for lib in [
            "libc.so.6",
            "libcrypt.so.1",
            "libtomcrypt.so.1",
            "libz.so.1",
            loader,
        ] {
            assert!(
                libs.contains(lib),
                "{} lacks lib/{triplet}/{lib}: {libs:?}",
                file.display()
            );
        }
        let root = Unpacked::new(&file, "dropbear");
        // Everything dropbear loads comes from the snap: -V runs only if the closure is whole.
        let out = run_foreign(&root.0, arch, "usr/sbin/dropbear", &["-V"]);
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains("Dropbear v2022"),
            "{}: dropbear -V under qemu-user: {text}",
            file.display()
        );
        // The agent writes an ed25519 host key in dropbear's format; dropbearkey reads it back.
        let key = root.0.join("host_key");
        let key_arg = key.to_str().unwrap();
        let out = run_foreign(
            &root.0,
            arch,
            "usr/bin/dropbearkey",
            &["-t", "ed25519", "-f", key_arg],
        );
        assert!(
            out.status.success(),
            "dropbearkey -t ed25519 ({arch}): {out:?}"
        );
        let out = run_foreign(&root.0, arch, "usr/bin/dropbearkey", &["-y", "-f", key_arg]);
        let public = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && public.lines().any(|l| l.starts_with("ssh-ed25519 AAAA")),
            "dropbearkey -y ({arch}): {public}"
        );
    }
}

#[test]
fn core_busybox_snap_rcs_brings_up_the_network_and_dropbear() {
    for arch in Arch::ALL {
        let file = snap("core-busybox", arch);
        let list = listing(&file);
        for inner in ["etc/init.d/rcS", "etc/udhcpc/default.script", "etc/inittab"] {
            assert!(
                cat(&file, inner) == source(&format!("core-busybox/{inner}")),
                "{}: {inner} differs from the source tree (stale); {BUILD}",
                file.display()
            );
        }
        let rcs = String::from_utf8(cat(&file, "etc/init.d/rcS")).unwrap();
        assert!(rcs.contains("ifup -a"), "rcS does not run ifup -a");
        assert!(
            rcs.contains("key=/etc/dropbear/dropbear_ed25519_host_key")
                && rcs.contains(r#"dropbear -r "$key" -s"#),
            "rcS does not start dropbear with the agent's host key and no passwords"
        );
        // busybox's udhcpc runs its built-in script path; ifup runs run-parts on these.
        let busybox = cat(&file, "bin/busybox");
        let needle = b"/etc/udhcpc/default.script";
        assert!(
            busybox.windows(needle.len()).any(|w| w == needle),
            "busybox's udhcpc looks elsewhere for its script"
        );
        for d in ["if-pre-up.d", "if-up.d", "if-down.d", "if-post-down.d"] {
            assert!(
                list.contains(&format!("etc/network/{d}")),
                "{}: no etc/network/{d}",
                file.display()
            );
        }
        for applet in ["sbin/ifup", "sbin/udhcpc", "sbin/ifconfig", "sbin/route"] {
            assert!(
                list.iter().any(|p| p.starts_with(&format!("{applet} -> "))),
                "{}: no {applet}",
                file.display()
            );
        }
        // dropbear refuses accounts whose shell is not listed here.
        let shells = String::from_utf8(cat(&file, "etc/shells")).unwrap();
        assert!(shells.lines().any(|l| l == "/bin/sh"), "{shells}");
    }
}

/// The squashfs budget of the Debian base, per architecture (issue 12).
const CORE_BUDGET: u64 = 60 << 20;

/// Every path in a snap (without a leading `/`, with ` -> target` after symlinks), keyed by
/// path, with its `ls -l` mode string (`-rwsr-xr-x`).
fn modes(snap: &Path) -> std::collections::BTreeMap<String, String> {
    let out = Command::new("unsquashfs")
        .args(["-ll", "-d", "ROOT"])
        .arg(snap)
        .output()
        .expect("unsquashfs runs (squashfs-tools)");
    assert!(out.status.success(), "{}: cannot list", snap.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (head, path) = l.split_once(" ROOT/")?;
            let mode = head.split_whitespace().next()?;
            Some((path.to_string(), mode.to_string()))
        })
        .collect()
}

fn text(snap: &Path, inner: &str) -> String {
    String::from_utf8(cat(snap, inner)).unwrap_or_else(|e| panic!("{inner}: {e}"))
}

#[test]
fn debian_core_boots_systemd_with_the_promised_programs() {
    for arch in Arch::ALL {
        let file = snap("core", arch);
        let list = listing(&file);
        let has = |p: &str| list.iter().any(|l| l == p);
        // Merged /usr: the agent switch_roots into /sbin/init.
        for link in [
            "sbin -> usr/sbin",
            "lib -> usr/lib",
            "bin -> usr/bin",
            "usr/sbin/init -> /lib/systemd/systemd",
        ] {
            assert!(has(link), "{}: no {link}", file.display());
        }
        let modes = modes(&file);
        for program in [
            "usr/lib/systemd/systemd",
            "usr/lib/systemd/systemd-networkd",
            "usr/lib/systemd/systemd-resolved",
            "usr/lib/systemd/systemd-udevd",
            "usr/sbin/sshd",
            "usr/bin/sudo",
            "usr/bin/passwd",
            "usr/bin/login",
            "usr/sbin/wpa_supplicant",
            "usr/bin/ip",
            "usr/bin/kmod",
            "usr/sbin/agetty",
        ] {
            // A file, or a link into the merged /usr (systemd-udevd -> /bin/udevadm).
            let found = modes
                .iter()
                .find(|(path, _)| *path == program || path.starts_with(&format!("{program} -> ")));
            let (path, mode) = found.unwrap_or_else(|| panic!("{}: no {program}", file.display()));
            assert!(
                mode.starts_with("-rwx") || mode.starts_with("-rws") || mode.starts_with("lrwx"),
                "{path}: {mode}"
            );
        }
        // dpkg's modes survive the packing: sudo and passwd are setuid root.
        for setuid in ["usr/bin/sudo", "usr/bin/passwd"] {
            assert_eq!(modes[setuid], "-rwsr-xr-x", "{}: {setuid}", file.display());
        }
        assert_eq!(modes["tmp"], "drwxrwxrwt", "{}: /tmp", file.display());
        assert!(
            has("etc/ssl/certs/ca-certificates.crt"),
            "{}: no CA bundle",
            file.display()
        );
        // The ELF machine of systemd is the arch's.
        let systemd = cat(&file, "usr/lib/systemd/systemd");
        let machine = u16::from_le_bytes([systemd[18], systemd[19]]);
        let want = match arch {
            Arch::Arm64 => 183,
            Arch::Armhf => 40,
        };
        assert_eq!(machine, want, "{}: systemd's machine", file.display());
    }
}

#[test]
fn debian_core_enables_networkd_resolved_ssh_and_the_tty1_getty() {
    for arch in Arch::ALL {
        let file = snap("core", arch);
        let list = listing(&file);
        for (wants, unit) in [
            ("multi-user.target.wants", "systemd-networkd.service"),
            ("sockets.target.wants", "systemd-networkd.socket"),
            ("sysinit.target.wants", "systemd-resolved.service"),
            ("sysinit.target.wants", "systemd-timesyncd.service"),
            ("multi-user.target.wants", "ssh.service"),
            ("getty.target.wants", "getty@tty1.service"),
        ] {
            let prefix = format!("etc/systemd/system/{wants}/{unit} -> ");
            assert!(
                list.iter().any(|p| p.starts_with(&prefix)),
                "{}: {unit} is not enabled ({wants})",
                file.display()
            );
        }
        // DNS from networkd's leases, through resolved's stub.
        assert!(
            list.contains(&"etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf".into()),
            "{}: /etc/resolv.conf",
            file.display()
        );
    }
}

#[test]
fn debian_core_has_no_host_keys_and_sshd_takes_the_agents_key_only() {
    for arch in Arch::ALL {
        let file = snap("core", arch);
        let list = listing(&file);
        let keys: Vec<&String> = list
            .iter()
            .filter(|p| p.starts_with("etc/ssh/ssh_host_"))
            .collect();
        assert!(keys.is_empty(), "{}: host keys {keys:?}", file.display());
        let conf = "etc/ssh/sshd_config.d/coreforge.conf";
        assert!(
            cat(&file, conf) == source(&format!("core/{conf}")),
            "{}: {conf} differs from the source tree (stale); {BUILD}",
            file.display()
        );
        // sshd takes the first value of each keyword: sshd_config must include the drop-ins
        // before it sets anything, and must name no host key of its own.
        let main = text(&file, "etc/ssh/sshd_config");
        let settings: Vec<&str> = main
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(
            settings.first().copied(),
            Some("Include /etc/ssh/sshd_config.d/*.conf"),
            "{}: sshd_config",
            file.display()
        );
        assert!(
            !settings.iter().any(|l| l.starts_with("HostKey")),
            "{}: sshd_config names host keys",
            file.display()
        );
        let ours: Vec<String> = text(&file, conf)
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        for want in [
            "HostKey /etc/ssh/ssh_host_ed25519_key",
            "PasswordAuthentication no",
        ] {
            assert!(ours.iter().any(|l| l == want), "{conf}: no {want:?}");
        }
        assert_eq!(
            ours.iter().filter(|l| l.starts_with("HostKey")).count(),
            1,
            "{conf}: one host key"
        );
    }
}

#[test]
fn debian_core_has_no_accounts_but_a_locked_root_and_an_empty_machine_id() {
    for arch in Arch::ALL {
        let file = snap("core", arch);
        let passwd = text(&file, "etc/passwd");
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            assert_eq!(fields.len(), 7, "etc/passwd: {line}");
            let (name, shell) = (fields[0], fields[6]);
            let uid: u32 = fields[2].parse().unwrap();
            if name == "root" {
                assert_eq!(uid, 0);
                continue;
            }
            assert!(
                matches!(shell, "/usr/sbin/nologin" | "/bin/false" | "/bin/sync"),
                "{}: account {name} has the login shell {shell}",
                file.display()
            );
            assert!(
                !(1000..65534).contains(&uid),
                "{}: a user account {name} ({uid})",
                file.display()
            );
        }
        assert!(!passwd.contains("ubuntu"), "{}: {passwd}", file.display());
        let shadow = text(&file, "etc/shadow");
        let root = shadow
            .lines()
            .find(|l| l.starts_with("root:"))
            .expect("root in etc/shadow");
        let hash = root.split(':').nth(1).unwrap();
        assert!(
            hash.starts_with('*') || hash.starts_with('!'),
            "{}: root has a password: {root}",
            file.display()
        );
        // Every device makes its own at first boot (systemd's first-boot semantics).
        assert!(
            cat(&file, "etc/machine-id").is_empty(),
            "{}: etc/machine-id is not empty",
            file.display()
        );
        assert_eq!(text(&file, "etc/hostname"), "coreforge\n");
        assert!(text(&file, "etc/hosts").contains("127.0.1.1\tcoreforge"));
    }
}

#[test]
fn debian_core_puts_snap_bin_on_every_path() {
    for arch in Arch::ALL {
        let file = snap("core", arch);
        let modes = modes(&file);
        assert_eq!(
            modes.get("snap").map(String::as_str),
            Some("drwxr-xr-x"),
            "{}: /snap",
            file.display()
        );
        for inner in [
            "etc/profile.d/apps-bin-path.sh",
            "etc/environment",
            "etc/sudoers.d/coreforge-secure-path",
        ] {
            assert!(
                cat(&file, inner) == source(&format!("core/{inner}")),
                "{}: {inner} differs from the source tree (stale); {BUILD}",
                file.display()
            );
        }
        // Login shells (profile.d), `ssh host cmd` (pam_env reads /etc/environment), sudo.
        assert!(
            text(&file, "etc/profile.d/apps-bin-path.sh").contains(r#"snap_bin_path="/snap/bin""#)
        );
        let env = text(&file, "etc/environment");
        assert!(
            env.lines()
                .any(|l| l.starts_with("PATH=") && l.contains(":/snap/bin")),
            "{env}"
        );
        let sudoers = text(&file, "etc/sudoers.d/coreforge-secure-path");
        assert!(
            sudoers
                .lines()
                .any(|l| l.starts_with("Defaults secure_path=") && l.contains(":/snap/bin")),
            "{sudoers}"
        );
        // sudo reads only files that are not writable by others; 0440 as visudo makes them.
        assert_eq!(modes["etc/sudoers.d/coreforge-secure-path"], "-r--r-----");
        assert!(text(&file, "etc/sudoers").contains("@includedir /etc/sudoers.d"));
        // pam_env reads /etc/environment for SSH sessions.
        assert!(text(&file, "etc/pam.d/sshd")
            .lines()
            .any(|l| l.starts_with("session")
                && l.contains("pam_env.so")
                && !l.contains("envfile=")));
    }
}

#[test]
fn debian_core_fits_its_budget() {
    for arch in Arch::ALL {
        let file = snap("core", arch);
        let size = std::fs::metadata(&file).unwrap().len();
        assert!(
            size <= CORE_BUDGET,
            "{}: {size} bytes, over the {CORE_BUDGET}-byte budget",
            file.display()
        );
    }
}

/// The pins of packages.env's `CORE_<ARCH>_PACKAGES` (pkg=version words in double quotes).
fn core_pins(arch: Arch) -> BTreeSet<String> {
    let env = String::from_utf8(source("packages.env")).unwrap();
    let var = format!("CORE_{}_PACKAGES=\"", arch.debian_name().to_uppercase());
    let start = env
        .find(&var)
        .unwrap_or_else(|| panic!("packages.env has no {var}"))
        + var.len();
    let len = env[start..].find('"').expect("a closing quote");
    env[start..start + len]
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn debian_core_has_exactly_the_pinned_packages() {
    for arch in Arch::ALL {
        let file = snap("core", arch);
        let status = text(&file, "var/lib/dpkg/status");
        let mut got = BTreeSet::new();
        for stanza in status.split("\n\n").filter(|s| !s.trim().is_empty()) {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(": ")))
                    .unwrap_or_else(|| panic!("no {name} in {stanza}"))
            };
            if field("Status") == "install ok installed" {
                got.insert(format!("{}={}", field("Package"), field("Version")));
            }
        }
        let want = core_pins(arch);
        assert!(want.len() > 100, "{arch}: {} pins", want.len());
        assert_eq!(
            got,
            want,
            "{}: the installed packages differ from packages.env's pins; {BUILD}",
            file.display()
        );
        // Nothing of perl (usrmerge's) or documentation beyond the copyrights.
        assert!(!want.iter().any(|p| p.starts_with("perl=")), "{arch}: perl");
        let list = listing(&file);
        let docs: Vec<&String> = list
            .iter()
            .filter(|p| p.starts_with("usr/share/doc/") && p.matches('/').count() == 4)
            .filter(|p| !p.ends_with("/copyright"))
            .collect();
        assert!(docs.is_empty(), "{}: {docs:?}", file.display());
        assert!(
            !list.iter().any(|p| p.starts_with("usr/share/man/")),
            "{}: manual pages",
            file.display()
        );
    }
}

#[test]
fn debian_core_carries_the_snap_tool_once_it_is_built() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cross/build-snap.sh");
    for arch in Arch::ALL {
        let file = snap("core", arch);
        let list = listing(&file);
        let has_tool = list.iter().any(|p| p == "usr/bin/snap");
        let generator = list
            .iter()
            .any(|p| p == "usr/lib/systemd/system-generators/snapd-generator -> /usr/bin/snap");
        assert_eq!(
            (has_tool, generator),
            (script.exists(), script.exists()),
            "{}: /usr/bin/snap and its generator link, as cross/build-snap.sh exists or not",
            file.display()
        );
    }
}
