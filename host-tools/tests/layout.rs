//! Disk images from gadget.yaml: parsing and every validation error, offsets, MBR and GPT
//! tables read back byte by byte, FAT read back with fatfs, ext4 checked with e2fsprogs,
//! reproducibility, atomic output, and a QEMU boot of a built image with `coreforge boot`.

// The image module is self-contained: compile it into this test directly (the crate is a
// binary, so there is no library to link against).
#[allow(dead_code, unused_imports)]
#[path = "../src/image/mod.rs"]
mod image;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use image::gadget::{self, Content, Filesystem, PartType, Problem, Role, Schema};
use image::{ImageError, ImageOptions};

const MIB: u64 = 1 << 20;

const PI3_GADGET: &str = r#"
volumes:
  pi:
    schema: mbr
    bootloader: piboot
    structure:
      - name: ubuntu-seed
        type: 0C
        filesystem: vfat
        filesystem-label: system-boot
        size: 256M
        content:
          - source: boot-assets/
            target: /
      - name: writable
        role: system-data
        type: 83
        filesystem: ext4
        filesystem-label: writable
        size: 64M
"#;

const GPT_GADGET: &str = r#"
volumes:
  pc:
    bootloader: grub
    structure:
      - name: mbr
        role: mbr
        type: mbr
        size: 440
        content:
          - image: pc-boot.img
      - name: BIOS Boot
        type: DA,21686148-6449-6E6F-744E-656564454649
        size: 1M
        offset: 1M
        content:
          - image: pc-core.img
      - name: EFI System
        type: EF,C12A7328-F81F-11D2-BA4B-00A0C93EC93B
        filesystem: vfat
        filesystem-label: system-boot
        size: 50M
      - name: writable
        role: system-data
        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4
        filesystem: ext4
        size: 16M
"#;

fn parse(yaml: &str) -> Result<gadget::Gadget, gadget::GadgetError> {
    gadget::parse(yaml.as_bytes())
}

#[test]
fn pi3_mbr_gadget_parses() {
    let g = parse(PI3_GADGET).unwrap();
    let v = g.boot_volume();
    assert_eq!(v.name, "pi");
    assert_eq!(v.schema, Schema::Mbr);
    assert_eq!(v.bootloader.as_deref(), Some("piboot"));
    let [boot, data] = &v.structures[..] else {
        panic!("{:?}", v.structures)
    };
    assert_eq!(boot.part_type, PartType::Mbr(0x0c));
    assert_eq!(boot.filesystem, Filesystem::Vfat);
    assert_eq!(boot.label.as_deref(), Some("system-boot"));
    assert_eq!((boot.offset, boot.size), (MIB, 256 * MIB));
    assert_eq!(
        boot.content,
        [Content::File {
            source: "boot-assets/".into(),
            target: "/".into()
        }]
    );
    assert_eq!(data.role, Some(Role::SystemData));
    assert_eq!(data.part_type, PartType::Mbr(0x83));
    assert_eq!((data.offset, data.size), (257 * MIB, 64 * MIB));
}

#[test]
fn gpt_gadget_parses_with_bare_and_hybrid_structures() {
    let g = parse(GPT_GADGET).unwrap();
    let v = &g.volumes["pc"];
    assert_eq!(v.schema, Schema::Gpt, "gpt is the default schema");
    let s = &v.structures;
    assert_eq!(s[0].role, Some(Role::Mbr));
    assert_eq!((s[0].offset, s[0].size), (0, 440));
    assert!(!s[0].is_partition());
    assert!(matches!(s[1].part_type, PartType::Hybrid(0xda, _)));
    assert_eq!(s[1].offset, MIB);
    assert_eq!(
        s[1].content,
        [Content::Image {
            image: "pc-core.img".into(),
            offset: None,
            size: None
        }]
    );
    assert_eq!(s[2].offset, 2 * MIB);
    assert_eq!(s[3].offset, 52 * MIB);
    assert_eq!(s[3].effective_label(), Some("writable"));
    let PartType::Gpt(linux) = s[3].part_type else {
        panic!("{:?}", s[3].part_type)
    };
    assert_eq!(linux.to_string(), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
}

/// A one-volume MBR gadget with `structures` (YAML list items, indented 6).
fn mbr_with(structures: &str) -> String {
    format!("volumes:\n  v:\n    schema: mbr\n    bootloader: piboot\n    structure:\n{structures}")
}

fn gpt_with(structures: &str) -> String {
    format!("volumes:\n  v:\n    schema: gpt\n    bootloader: grub\n    structure:\n{structures}")
}

/// A gadget, a test its problem must pass, and text its message must contain.
type Case = (String, fn(&Problem) -> bool, &'static str);

#[test]
fn each_invalid_gadget_gets_its_error() {
    let fat = "      - name: boot\n        type: 0C\n        filesystem: vfat\n        size: 64M\n";
    let cases: Vec<Case> = vec![
        (
            "volumes:\n  v:\n    schema: dos\n    bootloader: piboot\n    structure: []\n".into(),
            |p| matches!(p, Problem::UnknownSchema(s) if s == "dos"),
            "unknown schema \"dos\"",
        ),
        (
            mbr_with("      - name: a\n        type: 83\n        size: 4M\n      - name: b\n        type: 83\n        size: 4M\n        offset: 3M\n"),
            |p| matches!(p, Problem::Overlap(s) if s.contains("\"a\"")),
            "structure #1 (\"b\"): overlaps structure #0 (\"a\")",
        ),
        (
            mbr_with("      - name: a\n        type: 83\n"),
            |p| *p == Problem::MissingSize,
            "missing size",
        ),
        (
            mbr_with("      - name: a\n        type: bare\n        filesystem: ext4\n        size: 1M\n"),
            |p| matches!(p, Problem::FilesystemOnBare(f) if f == "ext4"),
            "bare structure cannot have a filesystem",
        ),
        (
            mbr_with("      - name: a\n        type: 83\n        role: system-frobnicate\n        size: 1M\n"),
            |p| matches!(p, Problem::UnknownRole(r) if r == "system-frobnicate"),
            "unknown role \"system-frobnicate\"",
        ),
        (
            mbr_with(&format!("{fat}        content:\n          - target: /\n")),
            |p| *p == Problem::MissingContentSource(0),
            "content #0 is missing its source",
        ),
        (
            mbr_with(&format!("{fat}        content:\n          - source: a\n")),
            |p| *p == Problem::MissingContentTarget(0),
            "missing its target",
        ),
        (
            mbr_with(&format!("{fat}        content:\n          - image: x.img\n")),
            |p| *p == Problem::ImageInFilesystem(0),
            "is an image but the structure has a filesystem",
        ),
        (
            mbr_with("      - name: a\n        type: bare\n        size: 1M\n        content:\n          - source: x\n            target: /\n"),
            |p| *p == Problem::FilesInBare(0),
            "has no filesystem",
        ),
        (
            mbr_with(&format!("{fat}        content:\n          - source: ../../etc/\n            target: /\n")),
            |p| matches!(p, Problem::UnsafeContentPath(_)),
            "must be relative and stay inside the gadget",
        ),
        (
            mbr_with("      - name: a\n        size: 1M\n"),
            |p| *p == Problem::MissingType,
            "missing type",
        ),
        (
            mbr_with("      - name: a\n        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4\n        size: 1M\n"),
            |p| matches!(p, Problem::GuidTypeOnMbr(_)),
            "schema is mbr",
        ),
        (
            gpt_with("      - name: a\n        type: 83\n        size: 1M\n"),
            |p| matches!(p, Problem::MbrTypeOnGpt(_)),
            "schema is gpt",
        ),
        (
            mbr_with("      - name: a\n        type: 8G\n        size: 1M\n"),
            |p| matches!(p, Problem::InvalidType(_)),
            "invalid type \"8G\"",
        ),
        (
            mbr_with("      - name: a\n        type: 83\n        size: 12X\n"),
            |p| matches!(p, Problem::InvalidQuantity { field: "size", .. }),
            "invalid size \"12X\"",
        ),
        (
            mbr_with("      - name: a\n        type: 83\n        size: 1M\n      - name: a\n        type: 83\n        size: 1M\n"),
            |p| matches!(p, Problem::DuplicateName(n) if n == "a"),
            "used twice",
        ),
        (
            mbr_with(&"      - type: 83\n        size: 1M\n".repeat(5)),
            |p| *p == Problem::TooManyMbrPartitions(5),
            "an MBR holds at most 4",
        ),
        (
            mbr_with("      - name: data\n        role: system-data\n        type: 83\n        filesystem: ext4\n        filesystem-label: data\n        size: 1M\n"),
            |p| matches!(p, Problem::SystemDataLabel(l) if l == "data"),
            "must be labelled \"writable\"",
        ),
        (
            mbr_with("      - name: a\n        type: 0C\n        filesystem: vfat\n        filesystem-label: much-too-long-label\n        size: 64M\n"),
            |p| matches!(p, Problem::LabelTooLong { max: 11, .. }),
            "longer than 11 characters",
        ),
        (
            mbr_with("      - name: a\n        type: 83\n        size: 1M\n        offset: 0\n"),
            |p| matches!(p, Problem::OverlapsTable { table: 512, .. }),
            "the partition table takes the first 512 bytes",
        ),
        (
            gpt_with("      - name: a\n        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4\n        size: 1M\n        offset: 8K\n"),
            |p| matches!(p, Problem::OverlapsTable { table: 17408, .. }),
            "first 17408 bytes",
        ),
        (
            mbr_with("      - name: boot\n        role: mbr\n        type: bare\n        size: 512\n"),
            |p| *p == Problem::BadMbrRole,
            "at most 446 bytes",
        ),
        (
            mbr_with("      - name: a\n        type: 83\n        size: 1000\n"),
            |p| matches!(p, Problem::NotSectorAligned { field: "size", value: 1000 }),
            "not a multiple of 512",
        ),
        (
            "volumes:\n  v:\n    structure:\n      - type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4\n        size: 1M\n".into(),
            |p| *p == Problem::NoBootloader,
            "no volume declares a bootloader",
        ),
        (
            "volumes:\n  v:\n    bootloader: lilo\n    structure: []\n".into(),
            |p| matches!(p, Problem::UnknownBootloader(b) if b == "lilo"),
            "unknown bootloader",
        ),
        (
            "volumes: {}\n".into(),
            |p| *p == Problem::NoVolumes,
            "no volumes",
        ),
    ];
    for (yaml, is_expected, text) in cases {
        match parse(&yaml) {
            Err(gadget::GadgetError::Invalid { problem, at }) => {
                assert!(is_expected(&problem), "{yaml}\ngot {problem:?} at {at}");
                let message = gadget::GadgetError::Invalid { at, problem }.to_string();
                assert!(message.contains(text), "{message:?} lacks {text:?}");
            }
            other => panic!("{yaml}\nexpected a validation error, got {other:?}"),
        }
    }
}

#[test]
fn malformed_yaml_is_a_parse_error() {
    let err = parse("volumes: [\n").unwrap_err();
    assert!(matches!(err, gadget::GadgetError::Yaml(_)), "{err:?}");
    assert!(
        err.to_string().starts_with("cannot parse gadget.yaml"),
        "{err}"
    );
}

#[test]
fn plan_ends_the_image_after_the_last_structure_or_grows_writable() {
    let g = parse(PI3_GADGET).unwrap();
    let v = g.boot_volume();
    let natural = image::plan(v, None).unwrap();
    assert_eq!(natural.size, 321 * MIB);
    let parts: Vec<_> = natural.structures.iter().map(|p| p.partition).collect();
    assert_eq!(parts, [Some(1), Some(2)]);
    let grown = image::plan(v, Some(512 * MIB)).unwrap();
    assert_eq!(grown.structures[1].size, 512 * MIB - 257 * MIB);
    let err = image::plan(v, Some(300 * MIB)).unwrap_err();
    assert!(
        matches!(err, ImageError::ImageTooSmall { needed, given } if needed == 321 * MIB && given == 300 * MIB),
        "{err}"
    );
    // GPT images end with the backup table.
    let gpt = parse(GPT_GADGET).unwrap();
    assert_eq!(
        image::plan(&gpt.volumes["pc"], None).unwrap().size,
        68 * MIB + 33 * 512
    );
}

// --- building images ---

/// A gadget directory and content trees under a temp dir.
struct Fixture {
    dir: tempfile::TempDir,
}

const SMALL_MBR_GADGET: &str = r#"
volumes:
  pi:
    schema: mbr
    bootloader: piboot
    structure:
      - name: system-boot
        type: 0C
        filesystem: vfat
        filesystem-label: system-boot
        size: 40M
        content:
          - source: boot-assets/
            target: /
          - source: extra/README
            target: docs/
      - name: writable
        role: system-data
        type: 83
        filesystem: ext4
        filesystem-label: writable
        size: 16M
"#;

impl Fixture {
    fn new() -> Self {
        let f = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        let g = f.path("gadget");
        write(&g.join("boot-assets/config.txt"), b"kernel=kernel.img\n");
        write(&g.join("boot-assets/overlays/deep/er/x.dtbo"), b"overlay");
        write(&g.join("boot-assets/Long File Name.txt"), &[42u8; 5000]);
        write(&g.join("extra/README"), b"readme");
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A writable tree (a copy made now, so its times differ from other copies).
    fn writable_tree(&self, name: &str) -> PathBuf {
        let d = self.path(name);
        // Created in reverse order: mke2fs must not depend on readdir order.
        write(&d.join("zz/last"), b"last");
        write(&d.join("system-data/etc/hostname"), b"pi3\n");
        write(&d.join("a-file"), &vec![9u8; 100_000]);
        std::os::unix::fs::symlink("system-data/etc/hostname", d.join("link")).unwrap();
        d
    }

    fn build(
        &self,
        gadget_yaml: &str,
        out: &Path,
        writable: Option<&Path>,
        epoch: u64,
    ) -> Result<image::ImageReport, ImageError> {
        let g = gadget::parse(gadget_yaml.as_bytes()).unwrap();
        let mut contents = std::collections::BTreeMap::new();
        if let Some(dir) = writable {
            let data = g
                .boot_volume()
                .structures
                .iter()
                .find(|s| s.role == Some(Role::SystemData))
                .expect("a system-data structure");
            let mut tree = image::Tree::new();
            tree.add(dir, "/")?;
            contents.insert(data.index, tree);
        }
        let options = ImageOptions {
            epoch,
            ..Default::default()
        };
        image::write_image(
            g.boot_volume(),
            &self.path("gadget"),
            &contents,
            out,
            &options,
        )
    }
}

fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Copies `len` bytes at `offset` of `image` to a new file.
fn extract(image: &Path, offset: u64, len: u64, to: &Path) {
    let mut f = fs::File::open(image).unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).unwrap();
    fs::write(to, buf).unwrap();
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

#[test]
fn mbr_image_has_the_partitions_fat_and_ext4_it_should() {
    let fx = Fixture::new();
    let out = fx.path("pi.img");
    let tree = fx.writable_tree("writable");
    let report = fx
        .build(SMALL_MBR_GADGET, &out, Some(&tree), 1_700_000_000)
        .unwrap();
    let bytes = fs::read(&out).unwrap();
    assert_eq!(bytes.len() as u64, 57 * MIB);
    assert_eq!(report.size, 57 * MIB);

    // MBR entries, straight from the bytes.
    assert_eq!(&bytes[510..512], &[0x55, 0xaa]);
    let entry = |i: usize| &bytes[446 + 16 * i..462 + 16 * i];
    assert_eq!(entry(0)[4], 0x0c);
    assert_eq!(le32(entry(0), 8), 2048);
    assert_eq!(le32(entry(0), 12), 40 * 2048);
    assert_eq!(entry(1)[4], 0x83);
    assert_eq!(le32(entry(1), 8), 41 * 2048);
    assert_eq!(le32(entry(1), 12), 16 * 2048);
    assert!(entry(2).iter().all(|b| *b == 0) && entry(3).iter().all(|b| *b == 0));

    // FAT, read with fatfs on its own slice.
    let mut fat_bytes = bytes[MIB as usize..41 * MIB as usize].to_vec();
    let fs = fatfs::FileSystem::new(
        std::io::Cursor::new(&mut fat_bytes),
        fatfs::FsOptions::new(),
    )
    .unwrap();
    assert_eq!(fs.fat_type(), fatfs::FatType::Fat32);
    assert_eq!(fs.volume_label().trim_end(), "system-boot");
    let read = |p: &str| {
        let mut data = Vec::new();
        fs.root_dir()
            .open_file(p)
            .unwrap()
            .read_to_end(&mut data)
            .unwrap();
        data
    };
    assert_eq!(read("config.txt"), b"kernel=kernel.img\n");
    assert_eq!(read("overlays/deep/er/x.dtbo"), b"overlay");
    assert_eq!(read("Long File Name.txt"), vec![42u8; 5000]);
    assert_eq!(read("docs/README"), b"readme");
    let names: Vec<String> = fs
        .root_dir()
        .iter()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["Long File Name.txt", "config.txt", "docs", "overlays"]
    );
    let modified = fs
        .root_dir()
        .open_dir("docs")
        .unwrap()
        .iter()
        .next()
        .unwrap()
        .unwrap()
        .modified();
    assert_eq!(
        (modified.date.year, modified.date.month, modified.date.day),
        (2023, 11, 14)
    );
    drop(fs);

    // The same through the reader `coreforge boot` uses.
    let parts = image::read_partitions(&out).unwrap();
    assert_eq!(parts.len(), 2);
    let reader = image::FatReader::open(&out, parts[0].offset, parts[0].size).unwrap();
    assert_eq!(reader.label(), "system-boot");
    assert_eq!(reader.read("/docs/README").unwrap().unwrap(), b"readme");
    assert_eq!(reader.read("missing").unwrap(), None);

    // ext4, checked by e2fsprogs.
    let spec = format!("{}?offset={}", out.display(), 41 * MIB);
    let ls = run_ok(Command::new("debugfs").args(["-R", "ls -l /"]).arg(&spec));
    for name in ["a-file", "link", "system-data", "zz", "lost+found"] {
        assert!(ls.contains(name), "{ls}");
    }
    let hostname = run_ok(
        Command::new("debugfs")
            .args(["-R", "cat /system-data/etc/hostname"])
            .arg(&spec),
    );
    assert!(hostname.contains("pi3\n"), "{hostname}");
    let stat = run_ok(
        Command::new("debugfs")
            .args(["-R", "stat /zz/last"])
            .arg(&spec),
    );
    assert!(stat.contains("User:     0   Group:     0"), "{stat}");
    assert!(stat.contains("mtime: 0x6553f100"), "{stat}");
    assert!(stat.contains("ctime: 0x6553f100"), "{stat}");
    let ext4 = fx.path("writable.ext4");
    extract(&out, 41 * MIB, 16 * MIB, &ext4);
    run_ok(Command::new("e2fsck").arg("-fn").arg(&ext4));
    let dump = run_ok(Command::new("dumpe2fs").arg("-h").arg(&ext4));
    assert!(
        dump.contains("Filesystem volume name:   writable"),
        "{dump}"
    );
}

/// CRC-32 (IEEE), written out here so the test does not trust the code it checks.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn gpt_image_has_valid_headers_entries_and_bare_content() {
    let fx = Fixture::new();
    write(&fx.path("gadget/pc-boot.img"), &[0xb0u8; 440]);
    write(&fx.path("gadget/pc-core.img"), &[0xc0u8; 3000]);
    let out = fx.path("pc.img");
    fx.build(GPT_GADGET, &out, None, 0).unwrap();
    let b = fs::read(&out).unwrap();
    let sectors = b.len() as u64 / 512;
    assert_eq!(b.len() as u64, 68 * MIB + 33 * 512);

    // Boot code kept, protective MBR around it.
    assert!(b[..440].iter().all(|x| *x == 0xb0));
    assert_eq!(b[446 + 4], 0xee);
    assert_eq!(le32(&b, 446 + 8), 1);
    assert_eq!(le32(&b, 446 + 12) as u64, sectors - 1);
    // Bare content at its structure's offset.
    assert!(b[MIB as usize..MIB as usize + 3000]
        .iter()
        .all(|x| *x == 0xc0));

    let check_header = |lba: u64, other: u64, entries_lba: u64| {
        let h = &b[(lba * 512) as usize..(lba * 512 + 512) as usize];
        assert_eq!(&h[..8], b"EFI PART");
        let size = le32(h, 12) as usize;
        let mut zeroed = h[..size].to_vec();
        zeroed[16..20].fill(0);
        assert_eq!(crc32(&zeroed), le32(h, 16), "header CRC at LBA {lba}");
        assert_eq!(le64(h, 24), lba);
        assert_eq!(le64(h, 32), other);
        assert_eq!(le64(h, 40), 34);
        assert_eq!(le64(h, 48), sectors - 34);
        assert_eq!(le64(h, 72), entries_lba);
        let entries = &b[(entries_lba * 512) as usize..(entries_lba * 512) as usize + 128 * 128];
        assert_eq!(crc32(entries), le32(h, 88), "entries CRC for LBA {lba}");
        entries.to_vec()
    };
    let primary = check_header(1, sectors - 1, 2);
    let backup = check_header(sectors - 1, 1, sectors - 33);
    assert_eq!(primary, backup);
    // One disk GUID in both headers.
    let last = (sectors - 1) as usize * 512;
    assert_eq!(&b[512 + 56..512 + 72], &b[last + 56..last + 72]);

    // Three partitions: BIOS boot, ESP, writable; names and types as the gadget says.
    let parts = image::read_partitions(&out).unwrap();
    let names: Vec<_> = parts.iter().map(|p| p.name.clone().unwrap()).collect();
    assert_eq!(names, ["BIOS Boot", "EFI System", "writable"]);
    assert_eq!(
        parts[1].gpt_type.unwrap().to_string(),
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    );
    assert_eq!((parts[1].offset, parts[1].size), (2 * MIB, 50 * MIB));
    // ESP type GUID as stored: first three groups little-endian.
    assert_eq!(&primary[128..132], &[0x28, 0x73, 0x2a, 0xc1]);
    // Unique partition GUIDs.
    assert_ne!(&primary[16..32], &primary[128 + 16..128 + 32]);
    let fat = image::FatReader::open(&out, parts[1].offset, parts[1].size).unwrap();
    assert_eq!(fat.label(), "system-boot");

    // Corrupt the primary header: the reader notices.
    let mut bad = b.clone();
    bad[512 + 40] ^= 1;
    let corrupt = fx.path("corrupt.img");
    fs::write(&corrupt, bad).unwrap();
    let err = image::read_partitions(&corrupt).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn builds_are_reproducible_and_follow_the_epoch() {
    let fx = Fixture::new();
    let first_tree = fx.writable_tree("w1");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second_tree = fx.writable_tree("w2");
    let (a, b, c) = (fx.path("a.img"), fx.path("b.img"), fx.path("c.img"));
    fx.build(SMALL_MBR_GADGET, &a, Some(&first_tree), 1_600_000_000)
        .unwrap();
    fx.build(SMALL_MBR_GADGET, &b, Some(&second_tree), 1_600_000_000)
        .unwrap();
    fx.build(SMALL_MBR_GADGET, &c, Some(&first_tree), 1_600_000_001)
        .unwrap();
    let (a, b, c) = (
        fs::read(a).unwrap(),
        fs::read(b).unwrap(),
        fs::read(c).unwrap(),
    );
    assert!(a == b, "two builds of the same inputs differ");
    assert!(a != c, "the epoch does not reach the image");
}

#[test]
fn failures_leave_no_output_behind() {
    let fx = Fixture::new();
    write(
        &fx.path("gadget/boot-assets/huge"),
        &vec![1u8; 41 * MIB as usize],
    );
    let out_dir = fx.path("out");
    fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("pi.img");
    let err = fx.build(SMALL_MBR_GADGET, &out, None, 0).unwrap_err();
    assert!(matches!(err, ImageError::DoesNotFit { .. }), "{err}");
    assert!(err.to_string().contains("does not fit"), "{err}");
    assert_eq!(
        fs::read_dir(&out_dir).unwrap().count(),
        0,
        "temp file left behind"
    );

    // An existing image survives a failed rebuild.
    fs::write(&out, b"previous image").unwrap();
    fx.build(SMALL_MBR_GADGET, &out, None, 0).unwrap_err();
    assert_eq!(fs::read(&out).unwrap(), b"previous image");
    assert_eq!(fs::read_dir(&out_dir).unwrap().count(), 1);
}

#[test]
fn missing_content_sources_are_named() {
    let fx = Fixture::new();
    fs::remove_file(fx.path("gadget/extra/README")).unwrap();
    let out = fx.path("pi.img");
    let err = fx.build(SMALL_MBR_GADGET, &out, None, 0).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ImageError::MissingContent { .. }), "{text}");
    assert!(
        text.contains("extra/README") && text.contains("system-boot"),
        "{text}"
    );
    assert!(!out.exists());
}

#[test]
fn stage_content_follows_snapds_source_and_target_rules() {
    let fx = Fixture::new();
    let yaml = mbr_with(
        "      - name: b\n        type: 0C\n        filesystem: vfat\n        size: 64M\n        content:\n          - source: boot-assets/\n            target: /\n          - source: boot-assets/overlays\n            target: /copies/\n          - source: extra/README\n            target: /renamed.txt\n          - source: extra/README\n            target: /\n",
    );
    let g = parse(&yaml).unwrap();
    let dest = fx.path("staged");
    let mut tree = image::Tree::new();
    image::stage_content(&g.volumes["v"].structures[0], &fx.path("gadget"), &mut tree).unwrap();
    tree.write_to(&dest).unwrap();
    assert!(dest.join("config.txt").is_file());
    assert!(dest.join("overlays/deep/er/x.dtbo").is_file());
    assert!(dest.join("copies/overlays/deep/er/x.dtbo").is_file());
    assert_eq!(fs::read(dest.join("renamed.txt")).unwrap(), b"readme");
    assert_eq!(fs::read(dest.join("README")).unwrap(), b"readme");
}

// --- booting ---

fn kernel_cache(arch: &str) -> PathBuf {
    std::env::var_os("COREFORGE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/coreforge"))
        .join("kernels")
        .join(arch)
}

/// The Debian arm64 kernel, or a failure that says how to get it.
fn require_kernel(arch: &str, name: &str) -> PathBuf {
    let path = kernel_cache(arch).join(name);
    assert!(
        path.is_file(),
        "{} is missing: run cross/fetch-kernels.sh (cross/setup.sh installs QEMU and e2fsprogs)",
        path.display()
    );
    path
}

/// Builds a one-partition boot image whose FAT holds `files`, and boots it with `coreforge
/// boot ARGS --expect TEXT`; returns the console output.
fn boot_image(files: &[(&str, &[u8])], args: &[&str], expect: &str) -> String {
    let fx = Fixture::new();
    let boot = fx.path("boot");
    for (name, data) in files {
        write(&boot.join(name), data);
    }
    let yaml = mbr_with("      - name: system-boot\n        type: 0C\n        filesystem: vfat\n        filesystem-label: system-boot\n        size: 60M\n");
    let g = parse(&yaml).unwrap();
    let out = fx.path("boot.img");
    let mut tree = image::Tree::new();
    tree.add(&boot, "/").unwrap();
    let contents = std::collections::BTreeMap::from([(g.boot_volume().structures[0].index, tree)]);
    image::write_image(
        g.boot_volume(),
        &fx.path("gadget"),
        &contents,
        &out,
        &ImageOptions::default(),
    )
    .unwrap();
    let before = fs::read(&out).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_coreforge"))
        .arg("boot")
        .arg(&out)
        .args(args)
        .args(["--timeout", "240", "--expect", expect])
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "boot failed: {}\n{console}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(fs::read(&out).unwrap() == before, "boot modified the image");
    console
}

#[test]
fn boot_runs_the_kernel_initrd_and_cmdline_from_the_boot_partition_on_virt() {
    let kernel = fs::read(require_kernel("arm64", "vmlinuz")).unwrap();
    let console = boot_image(
        &[
            ("vmlinuz", &kernel),
            (
                "config.txt",
                b"kernel=vmlinuz\ninitramfs smoke.cpio followkernel\n",
            ),
            ("smoke.cpio", b"not really a cpio archive"),
            (
                "cmdline.txt",
                b"console=tty1 coreforge.smoke=from-cmdline-txt\n",
            ),
        ],
        &["--append", "coreforge.extra=1"],
        "Trying to unpack rootfs image as initramfs",
    );
    let cmdline = console
        .lines()
        .find(|l| l.contains("Kernel command line:"))
        .unwrap_or_else(|| panic!("no command line in:\n{console}"));
    assert!(
        cmdline.contains("coreforge.smoke=from-cmdline-txt coreforge.extra=1"),
        "{cmdline}"
    );
    assert!(!cmdline.contains("console=tty1 "), "{cmdline}");
    assert!(console.contains("linux,dummy-virt"), "{console}");
}

#[test]
fn boot_picks_raspi3b_for_a_pi_image_with_its_device_tree() {
    let kernel = fs::read(require_kernel("arm64", "Image")).unwrap();
    let dtb = fs::read(kernel_cache("arm64").join("dtbs/broadcom/bcm2837-rpi-3-b.dtb"))
        .expect("the Pi 3 device tree is missing: run cross/fetch-kernels.sh");
    let console = boot_image(
        &[
            ("kernel.img", &kernel),
            ("bcm2837-rpi-3-b.dtb", &dtb),
            ("start.elf", b"firmware stand-in"),
        ],
        &[],
        "Machine model: Raspberry Pi 3 Model B",
    );
    assert!(console.contains("Booting Linux"), "{console}");
}

#[test]
fn boot_reads_an_armhf_zimage_by_its_default_name_and_picks_virt() {
    let kernel = fs::read(require_kernel("armhf", "vmlinuz")).unwrap();
    let console = boot_image(
        &[("kernel.img", &kernel)],
        &[],
        "Machine model: linux,dummy-virt",
    );
    assert!(console.contains("Booting Linux"), "{console}");
    assert!(console.contains("ARMv7"), "{console}");
}

#[test]
fn progress_is_reported_after_each_structure() {
    let fx = Fixture::new();
    let g = parse(SMALL_MBR_GADGET).unwrap();
    let seen = std::cell::RefCell::new(Vec::new());
    let progress = |done, total| seen.borrow_mut().push((done, total));
    let options = ImageOptions {
        size: Some(64 * MIB),
        epoch: 1,
        progress: Some(&progress),
        ..Default::default()
    };
    let report = image::write_image(
        g.boot_volume(),
        &fx.path("gadget"),
        &Default::default(),
        &fx.path("p.img"),
        &options,
    )
    .unwrap();
    // writable grew to the end of the 64 MiB image.
    assert_eq!(report.structures[1].size, 23 * MIB);
    assert_eq!(fs::metadata(fx.path("p.img")).unwrap().len(), 64 * MIB);
    assert_eq!(*seen.borrow(), [(40 * MIB, 63 * MIB), (63 * MIB, 63 * MIB)]);
}
