//! The board snaps' committed source trees (board-support/snaps/) agree with snapd's
//! gadget.yaml schema as `coreforge build-image` reads it, and with the board table.

use std::path::{Path, PathBuf};

use coreforge_boards::{Arch, Board, ConsoleKind};
use serde_norway::Value;

/// A file of a snap's source tree.
fn source(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("snaps")
        .join(rel)
}

fn read(rel: &str) -> String {
    let path = source(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn gadget_yaml(gadget: &str) -> Value {
    let text = read(&format!("{gadget}/meta/gadget.yaml"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{gadget}/meta/gadget.yaml: {e}"))
}

/// The one volume of a gadget: its name and its value.
fn only_volume(gadget: &str) -> (String, Value) {
    let doc = gadget_yaml(gadget);
    let volumes = doc["volumes"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{gadget}: no volumes map"));
    assert_eq!(volumes.len(), 1, "{gadget}: one volume expected");
    let (name, volume) = volumes.iter().next().unwrap();
    (name.as_str().unwrap().to_string(), volume.clone())
}

/// The structure named `name` of a volume.
fn structure<'a>(volume: &'a Value, name: &str) -> &'a Value {
    volume["structure"]
        .as_sequence()
        .expect("structure is a list")
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no structure named {name}"))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v[key].as_str()
}

/// `256M` -> bytes, as snapd reads sizes.
fn size_of(v: &Value) -> u64 {
    let text = match v {
        Value::Number(n) => return n.as_u64().expect("size is a positive integer"),
        Value::String(s) => s.as_str(),
        other => panic!("size is neither a number nor a string: {other:?}"),
    };
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("bad size {text:?}"));
    n * match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => panic!("bad size unit in {text:?}"),
    }
}

#[test]
fn gadgets_name_the_structures_build_image_needs() {
    for gadget in ["pi3", "qemu-virt"] {
        let (_, volume) = only_volume(gadget);
        assert_eq!(str_of(&volume, "schema"), Some("mbr"), "{gadget}");

        let boot = structure(&volume, "system-boot");
        // MBR type codes are strings: an unquoted 83 would be a YAML integer.
        assert_eq!(str_of(boot, "type"), Some("0C"), "{gadget}: FAT32 LBA");
        assert_eq!(str_of(boot, "filesystem"), Some("vfat"), "{gadget}");
        assert_eq!(
            str_of(boot, "filesystem-label"),
            Some("system-boot"),
            "{gadget}"
        );
        assert_eq!(size_of(&boot["size"]), 256 << 20, "{gadget}");
        let content = boot["content"]
            .as_sequence()
            .expect("system-boot has content");
        assert_eq!(content.len(), 1, "{gadget}");
        assert_eq!(
            str_of(&content[0], "source"),
            Some("boot-assets/"),
            "{gadget}"
        );
        assert_eq!(str_of(&content[0], "target"), Some("/"), "{gadget}");
        assert!(
            source(&format!("{gadget}/boot-assets")).is_dir(),
            "{gadget}: no boot-assets/"
        );

        let data = structure(&volume, "writable");
        assert_eq!(str_of(data, "role"), Some("system-data"), "{gadget}");
        assert_eq!(str_of(data, "type"), Some("83"), "{gadget}: Linux");
        assert_eq!(str_of(data, "filesystem"), Some("ext4"), "{gadget}");
        assert_eq!(
            str_of(data, "filesystem-label"),
            Some("writable"),
            "{gadget}"
        );
        assert_eq!(size_of(&data["size"]), 64 << 20, "{gadget}");

        let names: Vec<&str> = volume["structure"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|s| str_of(s, "name"))
            .collect();
        assert_eq!(
            names,
            ["system-boot", "writable"],
            "{gadget}: order on disk"
        );
    }
}

#[test]
fn each_gadget_names_its_bootloader() {
    let (name, volume) = only_volume("pi3");
    assert_eq!(name, "pi");
    assert_eq!(str_of(&volume, "bootloader"), Some("piboot"));
    // snapd (and build-image) want exactly one volume naming its bootloader.
    let (name, virt) = only_volume("qemu-virt");
    assert_eq!(name, "virt");
    assert_eq!(str_of(&virt, "bootloader"), Some("u-boot"));
}

/// The `console=` devices of a kernel command line, in order.
fn consoles_of(cmdline: &str) -> Vec<&str> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("console="))
        .map(|c| c.split(',').next().unwrap())
        .collect()
}

#[test]
fn cmdlines_are_the_boards_command_lines() {
    for gadget in ["pi3", "qemu-virt"] {
        let text = read(&format!("{gadget}/boot-assets/cmdline.txt"));
        // The Pi firmware reads the first line only.
        assert_eq!(
            text.lines().count(),
            1,
            "{gadget}: cmdline.txt must be one line"
        );
        let line = text.trim_end();
        for arch in Arch::ALL {
            let board = Board::by_name(gadget, arch).unwrap();
            let devices: Vec<&str> = board.consoles.iter().map(|c| c.device).collect();
            assert_eq!(consoles_of(line), devices, "{}: consoles", board.id());
            assert_eq!(line, board.cmdline(), "{}", board.id());
        }
    }
    // A Pi image answers on a serial console and on the screen.
    let pi = read("pi3/boot-assets/cmdline.txt");
    let pi_board = Board::by_name("pi3", Arch::Arm64).unwrap();
    let kind_of = |device: &str| {
        pi_board
            .consoles
            .iter()
            .find(|c| c.device == device)
            .map(|c| c.kind)
    };
    let kinds: Vec<_> = consoles_of(&pi).into_iter().filter_map(kind_of).collect();
    assert!(kinds.contains(&ConsoleKind::Framebuffer), "pi3: no tty1");
    assert!(
        kinds.contains(&ConsoleKind::MiniUart) || kinds.contains(&ConsoleKind::Pl011),
        "pi3: no serial console"
    );
}

/// `key=value` settings of a config.txt (comments and blank lines skipped), plus the
/// `initramfs` directive under that name.
fn config_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => {
                let (k, v) = l.split_once(' ').expect("a directive with arguments");
                (k.to_string(), v.to_string())
            }
        })
        .collect()
}

#[test]
fn pi3_config_matches_the_board() {
    for arch in Arch::ALL {
        let board = Board::by_name("pi3", arch).unwrap();
        let settings = config_settings(&read(&format!("pi3/arch/{arch}/boot-assets/config.txt")));
        let get = |key: &str| {
            let found: Vec<&str> = settings
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect();
            assert!(found.len() <= 1, "{arch}: {key} set twice");
            found.first().copied()
        };
        assert_eq!(
            get("arm_64bit"),
            (arch == Arch::Arm64).then_some("1"),
            "{arch}"
        );
        assert_eq!(get("kernel"), Some("kernel.img"), "{arch}");
        assert_eq!(get("initramfs"), Some("initrd.img followkernel"), "{arch}");
        // The kernel snap's dtbs/ are flat: the board's device tree by its file name.
        let dtb = board.dtb.expect("the Pi needs a device tree");
        let file = dtb.rsplit('/').next().unwrap();
        assert_eq!(get("device_tree"), Some(file), "{arch}");
        let has_mini_uart = board
            .consoles
            .iter()
            .any(|c| c.kind == ConsoleKind::MiniUart);
        assert_eq!(get("enable_uart"), has_mini_uart.then_some("1"), "{arch}");
    }
}

#[test]
fn pi3_config_is_only_per_arch() {
    // A shared boot-assets/config.txt would hide the per-arch ones (arm_64bit).
    assert!(!source("pi3/boot-assets/config.txt").exists());
    for arch in Arch::ALL {
        assert!(source(&format!("pi3/arch/{arch}/boot-assets/config.txt")).is_file());
    }
}

#[test]
fn snap_yaml_templates_name_their_snap_and_type() {
    // The source folder, the snap's name (the busybox fixture is `core` too), its type.
    for (dir, name, snap_type) in [
        ("pi2-kernel", "pi2-kernel", "kernel"),
        ("pi3", "pi3", "gadget"),
        ("qemu-virt", "qemu-virt", "gadget"),
        ("core", "core", "os"),
        ("core-busybox", "core", "os"),
    ] {
        let text = read(&format!("{dir}/meta/snap.yaml.in"))
            .replace("@ARCH@", "arm64")
            .replace("@VERSION@", "1");
        let doc: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert_eq!(str_of(&doc, "name"), Some(name), "{dir}");
        assert_eq!(str_of(&doc, "type"), Some(snap_type), "{dir}");
        assert_eq!(doc["architectures"][0].as_str(), Some("arm64"), "{dir}");
    }
}
