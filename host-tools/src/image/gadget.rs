//! `gadget.yaml`: parsing and validation against snapd's schema (volumes, structures, roles,
//! content), with one error per mistake that says where it is and what to write instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer};

use super::layout;

/// The parsed, validated `gadget.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gadget {
    /// The volumes (disks), by name.
    pub volumes: BTreeMap<String, Volume>,
}

/// One volume: a disk image and its partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The volume's name (the key under `volumes:`).
    pub name: String,
    /// Partition table type.
    pub schema: Schema,
    /// The bootloader that boots from this volume (`piboot`, `grub`, `u-boot`, ...), if any.
    pub bootloader: Option<String>,
    /// The structures in declaration order, each with its offset resolved.
    pub structures: Vec<Structure>,
}

/// Partition table type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// DOS/MBR partition table (at most four primary partitions; what the Pi firmware reads).
    Mbr,
    /// GUID partition table with a protective MBR and a backup table at the end.
    Gpt,
}

/// A structure's role, as snapd names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Boot code in the first 446 bytes of the disk.
    Mbr,
    /// The boot partition.
    SystemBoot,
    /// The bootloader's image partition.
    SystemBootImage,
    /// The bootloader's selection partition.
    SystemBootSelect,
    /// The writable data partition.
    SystemData,
    /// The seed partition (UC20).
    SystemSeed,
    /// The seed partition when the image does not ship a seed.
    SystemSeedNull,
    /// The save partition (UC20).
    SystemSave,
    /// The recovery bootloader's selection partition.
    SystemRecoverySelect,
    /// The recovery bootloader's image partition.
    SystemRecoveryImage,
}

/// Every role with its snapd spelling.
const ROLES: &[(&str, Role)] = &[
    ("mbr", Role::Mbr),
    ("system-boot", Role::SystemBoot),
    ("system-boot-image", Role::SystemBootImage),
    ("system-boot-select", Role::SystemBootSelect),
    ("system-data", Role::SystemData),
    ("system-seed", Role::SystemSeed),
    ("system-seed-null", Role::SystemSeedNull),
    ("system-save", Role::SystemSave),
    ("system-recovery-select", Role::SystemRecoverySelect),
    ("system-recovery-image", Role::SystemRecoveryImage),
];

/// The bootloaders snapd knows.
const BOOTLOADERS: &[&str] = &["grub", "u-boot", "android-boot", "lk", "piboot"];

impl Role {
    /// snapd's spelling (`system-data`).
    pub fn as_str(self) -> &'static str {
        ROLES
            .iter()
            .find(|(_, r)| *r == self)
            .map_or("", |(s, _)| s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A GUID in its text form's byte order (as written, not as stored on disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Parses `8-4-4-4-12` hex digits.
    pub fn parse(s: &str) -> Option<Guid> {
        let groups: Vec<&str> = s.split('-').collect();
        let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        if lens != [8, 4, 4, 4, 12] {
            return None;
        }
        let hex: String = groups.concat();
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Guid(out))
    }

    /// The 16 bytes as GPT stores them: the first three groups little-endian.
    pub fn to_disk_bytes(self) -> [u8; 16] {
        let b = self.0;
        let mut d = b;
        d[0..4].copy_from_slice(&[b[3], b[2], b[1], b[0]]);
        d[4..6].copy_from_slice(&[b[5], b[4]]);
        d[6..8].copy_from_slice(&[b[7], b[6]]);
        d
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// What a structure's `type` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartType {
    /// Not a partition: raw bytes at an offset (`bare`, or the legacy `mbr`).
    Bare,
    /// An MBR partition type byte (`0C`, `83`).
    Mbr(u8),
    /// A GPT partition type GUID.
    Gpt(Guid),
    /// Both (`0C,C12A7328-F81F-11D2-BA4B-00A0C93EC93B`): the schema picks one.
    Hybrid(u8, Guid),
}

/// The file system a structure holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filesystem {
    /// None: a bare partition or a raw region.
    None,
    /// FAT (`vfat`: FAT32 when the partition is big enough, else FAT16).
    Vfat,
    /// FAT16 exactly (`vfat-16`).
    Vfat16,
    /// FAT32 exactly (`vfat-32`).
    Vfat32,
    /// ext4.
    Ext4,
}

impl Filesystem {
    /// True for every FAT flavour.
    pub fn is_fat(self) -> bool {
        matches!(
            self,
            Filesystem::Vfat | Filesystem::Vfat16 | Filesystem::Vfat32
        )
    }
}

/// One content entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// For file systems: copy `source` (relative to the gadget) to `target` (in the file system).
    File {
        /// Path in the gadget snap; a trailing `/` on a directory copies what is inside it.
        source: String,
        /// Path in the file system; a trailing `/` puts the source inside that directory.
        target: String,
    },
    /// For bare structures: the bytes of `image` at `offset` (relative to the structure).
    Image {
        /// Path in the gadget snap.
        image: String,
        /// Where in the structure; `None` follows the previous image.
        offset: Option<u64>,
        /// At most this many bytes (`None`: the whole file).
        size: Option<u64>,
    },
}

/// One structure of a volume, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    /// Position in the volume's list (0-based), for messages.
    pub index: usize,
    /// `name` (also the GPT partition name).
    pub name: Option<String>,
    /// `role`.
    pub role: Option<Role>,
    /// `type`.
    pub part_type: PartType,
    /// Size in bytes.
    pub size: u64,
    /// Offset from the start of the disk, in bytes (given, or placed by the layout rules).
    pub offset: u64,
    /// `filesystem`.
    pub filesystem: Filesystem,
    /// `filesystem-label` (for `system-data` an absent label means `writable`).
    pub label: Option<String>,
    /// `content`.
    pub content: Vec<Content>,
}

impl Structure {
    /// True when the structure gets an entry in the partition table.
    pub fn is_partition(&self) -> bool {
        self.part_type != PartType::Bare && self.role != Some(Role::Mbr)
    }

    /// The end offset (exclusive).
    pub fn end(&self) -> u64 {
        self.offset + self.size
    }

    /// The label the file system gets: `filesystem-label`, or snapd's implicit one for a role.
    pub fn effective_label(&self) -> Option<&str> {
        match (&self.label, self.role) {
            (Some(l), _) => Some(l),
            (None, Some(Role::SystemData)) => Some("writable"),
            (None, Some(Role::SystemSeed)) => Some("ubuntu-seed"),
            (None, Some(Role::SystemBoot)) => Some("ubuntu-boot"),
            (None, Some(Role::SystemSave)) => Some("ubuntu-save"),
            _ => None,
        }
    }

    /// How messages name this structure: `#1 ("writable")`.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("#{} ({n:?})", self.index),
            None => format!("#{}", self.index),
        }
    }
}

/// What is wrong with a gadget.yaml.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GadgetError {
    /// Not YAML, or not the expected shape.
    #[error("cannot parse gadget.yaml: {0}")]
    Yaml(#[from] serde_norway::Error),
    /// A rule of the schema is broken at `at` (a volume or a structure).
    #[error("gadget.yaml: {at}: {problem}")]
    Invalid {
        /// Where: `volume "pi"` or `volume "pi", structure #1 ("writable")`.
        at: String,
        /// What.
        problem: Problem,
    },
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// No `volumes:`.
    #[error("no volumes; declare at least one under `volumes:`")]
    NoVolumes,
    /// A volume name snapd would refuse.
    #[error("invalid volume name {0:?}; use letters, digits and dashes, not starting with a dash")]
    InvalidVolumeName(String),
    /// `schema` is neither `mbr` nor `gpt`.
    #[error("unknown schema {0:?}; use \"mbr\" or \"gpt\"")]
    UnknownSchema(String),
    /// `bootloader` is not one snapd knows.
    #[error("unknown bootloader {0:?}; use one of grub, u-boot, android-boot, lk, piboot")]
    UnknownBootloader(String),
    /// No volume says which bootloader boots the device.
    #[error("no volume declares a bootloader; add e.g. `bootloader: piboot` to the boot volume")]
    NoBootloader,
    /// More than one volume declares a bootloader.
    #[error("more than one volume declares a bootloader ({0}); keep it on the boot volume only")]
    ManyBootloaders(String),
    /// The volume has no structures.
    #[error("no structures; list the partitions under `structure:`")]
    NoStructures,
    /// `size` is missing.
    #[error("missing size; give it in bytes or with a K, M or G suffix (e.g. 256M)")]
    MissingSize,
    /// `size` or `offset` does not parse.
    #[error(
        "invalid {field} {value:?}; use bytes or a number with a K, M or G suffix (e.g. 256M)"
    )]
    InvalidQuantity {
        /// Which field.
        field: &'static str,
        /// What it said.
        value: String,
    },
    /// `size` is zero.
    #[error("size must not be zero")]
    ZeroSize,
    /// A partition's offset or size is not a whole number of 512-byte sectors.
    #[error(
        "{field} {value} is not a multiple of 512 bytes; partitions are made of whole sectors"
    )]
    NotSectorAligned {
        /// `offset` or `size`.
        field: &'static str,
        /// The value in bytes.
        value: u64,
    },
    /// `type` is missing.
    #[error("missing type; use an MBR type (0C, 83), a GPT GUID, both (\"0C,GUID\") or bare")]
    MissingType,
    /// `type` does not parse.
    #[error(
        "invalid type {0:?}; use two hex digits (0C, 83), a GPT GUID, both (\"0C,GUID\") or bare"
    )]
    InvalidType(String),
    /// A GPT-only type on an MBR volume.
    #[error("type {0:?} is a GPT GUID but the volume's schema is mbr; use an MBR type such as 0C or 83, or \"XX,GUID\"")]
    GuidTypeOnMbr(String),
    /// An MBR-only type on a GPT volume.
    #[error("type {0:?} is an MBR type but the volume's schema is gpt; use a GUID or \"XX,GUID\"")]
    MbrTypeOnGpt(String),
    /// `role` is not one snapd knows.
    #[error("unknown role {0:?}; use one of mbr, system-boot, system-seed, system-data, system-save, ...")]
    UnknownRole(String),
    /// `filesystem` is not one coreforge can make.
    #[error("unknown filesystem {0:?}; use vfat, vfat-16, vfat-32, ext4 or none")]
    UnknownFilesystem(String),
    /// A file system on a bare structure.
    #[error("a bare structure cannot have a filesystem ({0:?}); give it a partition type or drop the filesystem")]
    FilesystemOnBare(String),
    /// `image:` content in a file system.
    #[error(
        "content #{0} is an image but the structure has a filesystem; use source/target entries"
    )]
    ImageInFilesystem(usize),
    /// `source:`/`target:` content in a structure without a file system.
    #[error("content #{0} has source/target but the structure has no filesystem; use image entries or set a filesystem")]
    FilesInBare(usize),
    /// A file content entry without `source`.
    #[error("content #{0} is missing its source (a path in the gadget)")]
    MissingContentSource(usize),
    /// A file content entry without `target`.
    #[error("content #{0} is missing its target (a path in the filesystem)")]
    MissingContentTarget(usize),
    /// An image content entry without `image`.
    #[error("content #{0} is missing its image (a file in the gadget)")]
    MissingContentImage(usize),
    /// A content path that is absolute or climbs out with `..`.
    #[error(
        "content path {0:?} must be relative and stay inside the gadget (no leading / and no ..)"
    )]
    UnsafeContentPath(String),
    /// Two structures with one name.
    #[error("structure name {0:?} is used twice; names must be unique in a volume")]
    DuplicateName(String),
    /// Two file systems with one label.
    #[error("filesystem label {0:?} is used twice; labels must be unique in a volume")]
    DuplicateLabel(String),
    /// Two structures with one role.
    #[error("role {0} is used twice; at most one structure may have it")]
    DuplicateRole(Role),
    /// A label too long for its file system.
    #[error("filesystem label {label:?} is longer than {max} characters, the most {fs} allows")]
    LabelTooLong {
        /// The label.
        label: String,
        /// Its file system.
        fs: &'static str,
        /// The limit.
        max: usize,
    },
    /// A label a FAT file system cannot store.
    #[error("filesystem label {0:?} has characters FAT labels cannot hold; use ASCII letters, digits, - and _")]
    BadFatLabel(String),
    /// A `system-data` structure labelled other than `writable`.
    #[error("system-data structure must be labelled \"writable\" (or left unlabelled), not {0:?}")]
    SystemDataLabel(String),
    /// A name longer than a GPT entry holds.
    #[error("name {0:?} is longer than 36 characters, the most a GPT entry holds")]
    NameTooLong(String),
    /// The `mbr` role anywhere but in the first 446 bytes.
    #[error("the mbr role holds boot code: it must be at offset 0, at most 446 bytes, bare, with no filesystem")]
    BadMbrRole,
    /// Two structures sharing bytes.
    #[error("overlaps structure {0}; give this one a larger offset or shrink the other")]
    Overlap(String),
    /// A partition over the partition table itself.
    #[error("starts at {offset} but the partition table takes the first {table} bytes; start at 1M or later")]
    OverlapsTable {
        /// Where the structure starts.
        offset: u64,
        /// Bytes the table needs.
        table: u64,
    },
    /// An MBR holds four primary partitions.
    #[error("{0} partitions, but an MBR holds at most 4; use schema gpt or fewer partitions")]
    TooManyMbrPartitions(usize),
}

/// Parses and validates a gadget.yaml.
pub fn parse(yaml: &[u8]) -> Result<Gadget, GadgetError> {
    let raw: RawGadget = serde_norway::from_slice(yaml)?;
    let top = |problem| GadgetError::Invalid {
        at: "top level".into(),
        problem,
    };
    let raw_volumes = raw.volumes.unwrap_or_default();
    if raw_volumes.is_empty() {
        return Err(top(Problem::NoVolumes));
    }
    let mut volumes = BTreeMap::new();
    for (name, raw_volume) in raw_volumes {
        let volume = validate_volume(&name, raw_volume)?;
        volumes.insert(name, volume);
    }
    let with_bootloader: Vec<&str> = volumes
        .values()
        .filter(|v| v.bootloader.is_some())
        .map(|v| v.name.as_str())
        .collect();
    match with_bootloader.len() {
        0 => Err(top(Problem::NoBootloader)),
        1 => Ok(Gadget { volumes }),
        _ => Err(top(Problem::ManyBootloaders(with_bootloader.join(", ")))),
    }
}

impl Gadget {
    /// The volume that boots the device (the one with a bootloader).
    pub fn boot_volume(&self) -> &Volume {
        // `parse` guarantees exactly one volume with a bootloader.
        self.volumes
            .values()
            .find(|v| v.bootloader.is_some())
            .unwrap_or_else(|| self.volumes.values().next().expect("parse checked volumes"))
    }
}

fn validate_volume(name: &str, raw: RawVolume) -> Result<Volume, GadgetError> {
    let at = format!("volume {name:?}");
    let err = |problem| GadgetError::Invalid {
        at: at.clone(),
        problem,
    };
    let name_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !name_ok {
        return Err(err(Problem::InvalidVolumeName(name.into())));
    }
    let schema = match raw.schema.as_deref() {
        None | Some("") | Some("gpt") => Schema::Gpt,
        Some("mbr") => Schema::Mbr,
        Some(other) => return Err(err(Problem::UnknownSchema(other.into()))),
    };
    if let Some(b) = &raw.bootloader {
        if !BOOTLOADERS.contains(&b.as_str()) {
            return Err(err(Problem::UnknownBootloader(b.clone())));
        }
    }
    if raw.structure.is_empty() {
        return Err(err(Problem::NoStructures));
    }
    let mut structures = Vec::with_capacity(raw.structure.len());
    let mut previous_end = 0;
    for (index, rs) in raw.structure.into_iter().enumerate() {
        let label = match &rs.name {
            Some(n) => format!("{at}, structure #{index} ({n:?})"),
            None => format!("{at}, structure #{index}"),
        };
        let s = validate_structure(index, rs, schema, previous_end).map_err(|problem| {
            GadgetError::Invalid {
                at: label.clone(),
                problem,
            }
        })?;
        previous_end = s.end();
        structures.push(s);
    }
    check_volume_rules(schema, &structures).map_err(|(index, problem)| {
        let at = match index {
            Some(i) => format!("{at}, structure {}", structures[i].describe()),
            None => at.clone(),
        };
        GadgetError::Invalid { at, problem }
    })?;
    Ok(Volume {
        name: name.into(),
        schema,
        bootloader: raw.bootloader,
        structures,
    })
}

fn validate_structure(
    index: usize,
    raw: RawStructure,
    schema: Schema,
    previous_end: u64,
) -> Result<Structure, Problem> {
    let mut role = match raw.role.as_deref() {
        None | Some("") => None,
        Some(r) => Some(
            ROLES
                .iter()
                .find(|(s, _)| *s == r)
                .map(|(_, role)| *role)
                .ok_or_else(|| Problem::UnknownRole(r.into()))?,
        ),
    };
    let type_text = raw.part_type.ok_or(Problem::MissingType)?;
    let part_type = parse_type(&type_text)?;
    if type_text == "mbr" {
        // snapd's legacy spelling of `role: mbr`.
        role = Some(Role::Mbr);
    }
    match (schema, part_type) {
        (Schema::Mbr, PartType::Gpt(_)) => return Err(Problem::GuidTypeOnMbr(type_text)),
        (Schema::Gpt, PartType::Mbr(_)) => return Err(Problem::MbrTypeOnGpt(type_text)),
        _ => {}
    }
    let filesystem = match raw.filesystem.as_deref() {
        None | Some("") | Some("none") => Filesystem::None,
        Some("vfat") => Filesystem::Vfat,
        Some("vfat-16") => Filesystem::Vfat16,
        Some("vfat-32") => Filesystem::Vfat32,
        Some("ext4") => Filesystem::Ext4,
        Some(other) => return Err(Problem::UnknownFilesystem(other.into())),
    };
    if part_type == PartType::Bare && filesystem != Filesystem::None {
        return Err(Problem::FilesystemOnBare(
            raw.filesystem.unwrap_or_default(),
        ));
    }
    let size = match (&raw.size, &raw.min_size) {
        (Some(q), _) | (None, Some(q)) => parse_quantity("size", q)?,
        (None, None) => return Err(Problem::MissingSize),
    };
    if size == 0 {
        return Err(Problem::ZeroSize);
    }
    let offset = raw
        .offset
        .as_ref()
        .map(|q| parse_quantity("offset", q))
        .transpose()?;
    if role == Some(Role::Mbr)
        && (offset.unwrap_or(0) != 0 || size > 446 || filesystem != Filesystem::None)
    {
        return Err(Problem::BadMbrRole);
    }
    let is_partition = part_type != PartType::Bare && role != Some(Role::Mbr);
    let offset = offset.unwrap_or_else(|| layout::next_offset(previous_end, role));
    if is_partition {
        for (field, value) in [("offset", offset), ("size", size)] {
            if value % 512 != 0 {
                return Err(Problem::NotSectorAligned { field, value });
            }
        }
    }
    if let Some(name) = &raw.name {
        if name.encode_utf16().count() > 36 {
            return Err(Problem::NameTooLong(name.clone()));
        }
    }
    check_label(raw.filesystem_label.as_deref(), role, filesystem)?;
    let content = validate_content(raw.content, filesystem)?;
    Ok(Structure {
        index,
        name: raw.name,
        role,
        part_type,
        size,
        offset,
        filesystem,
        label: raw.filesystem_label,
        content,
    })
}

fn check_label(label: Option<&str>, role: Option<Role>, fs: Filesystem) -> Result<(), Problem> {
    let Some(label) = label else { return Ok(()) };
    if role == Some(Role::SystemData) && label != "writable" {
        return Err(Problem::SystemDataLabel(label.into()));
    }
    let too_long = |fs, max| Problem::LabelTooLong {
        label: label.into(),
        fs,
        max,
    };
    if fs.is_fat() {
        if label.len() > 11 {
            return Err(too_long("FAT", 11));
        }
        let bad =
            |c: char| !c.is_ascii() || c.is_ascii_control() || "\"*+,./:;<=>?[\\]|".contains(c);
        if label.chars().any(bad) {
            return Err(Problem::BadFatLabel(label.into()));
        }
    }
    if fs == Filesystem::Ext4 && label.len() > 16 {
        return Err(too_long("ext4", 16));
    }
    Ok(())
}

fn validate_content(raw: Vec<RawContent>, fs: Filesystem) -> Result<Vec<Content>, Problem> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, c) in raw.into_iter().enumerate() {
        let is_image = c.image.is_some() || c.offset.is_some() || c.size.is_some();
        let is_file = c.source.is_some() || c.target.is_some();
        if fs == Filesystem::None {
            if is_file {
                return Err(Problem::FilesInBare(i));
            }
            let image = c.image.ok_or(Problem::MissingContentImage(i))?;
            check_relative(&image)?;
            let quantity = |f, q: &Option<Quantity>| q.as_ref().map(|q| parse_quantity(f, q));
            out.push(Content::Image {
                image,
                offset: quantity("content offset", &c.offset).transpose()?,
                size: quantity("content size", &c.size).transpose()?,
            });
        } else {
            if is_image {
                return Err(Problem::ImageInFilesystem(i));
            }
            let source = c.source.ok_or(Problem::MissingContentSource(i))?;
            let target = c.target.ok_or(Problem::MissingContentTarget(i))?;
            check_relative(&source)?;
            if target.split('/').any(|p| p == "..") {
                return Err(Problem::UnsafeContentPath(target));
            }
            out.push(Content::File { source, target });
        }
    }
    Ok(out)
}

/// Content sources are paths inside the gadget: relative, without `..`.
fn check_relative(path: &str) -> Result<(), Problem> {
    if path.is_empty() || path.starts_with('/') || path.split('/').any(|p| p == "..") {
        return Err(Problem::UnsafeContentPath(path.into()));
    }
    Ok(())
}

/// Rules across the structures of one volume; the index says which structure broke it.
fn check_volume_rules(
    schema: Schema,
    structures: &[Structure],
) -> Result<(), (Option<usize>, Problem)> {
    let mut names = BTreeSet::new();
    let mut labels = BTreeSet::new();
    let mut roles = BTreeSet::new();
    let table = match schema {
        Schema::Mbr => 512,
        Schema::Gpt => layout::GPT_RESERVED,
    };
    for s in structures {
        let at = Some(s.index);
        if let Some(n) = &s.name {
            if !names.insert(n.as_str()) {
                return Err((at, Problem::DuplicateName(n.clone())));
            }
        }
        if let Some(l) = &s.label {
            if !labels.insert(l.as_str()) {
                return Err((at, Problem::DuplicateLabel(l.clone())));
            }
        }
        if let Some(r) = s.role {
            if !roles.insert(r) {
                return Err((at, Problem::DuplicateRole(r)));
            }
        }
        if s.role != Some(Role::Mbr) && s.offset < table {
            return Err((
                at,
                Problem::OverlapsTable {
                    offset: s.offset,
                    table,
                },
            ));
        }
        if let Some(other) = structures
            .iter()
            .find(|o| o.index != s.index && o.offset < s.end() && s.offset < o.end())
        {
            // Report the later one: its offset is what to change.
            let (later, earlier) = if s.index > other.index {
                (s, other)
            } else {
                (other, s)
            };
            return Err((Some(later.index), Problem::Overlap(earlier.describe())));
        }
    }
    let partitions = structures.iter().filter(|s| s.is_partition()).count();
    if schema == Schema::Mbr && partitions > 4 {
        return Err((None, Problem::TooManyMbrPartitions(partitions)));
    }
    Ok(())
}

/// Parses `type`: `bare`, `mbr`, two hex digits, a GUID, or `XX,GUID`.
fn parse_type(text: &str) -> Result<PartType, Problem> {
    let invalid = || Problem::InvalidType(text.into());
    let hex_byte = |s: &str| {
        (s.len() == 2)
            .then(|| u8::from_str_radix(s, 16).ok())
            .flatten()
    };
    match text {
        "bare" | "mbr" => return Ok(PartType::Bare),
        _ => {}
    }
    if let Some((mbr, guid)) = text.split_once(',') {
        let byte = hex_byte(mbr.trim()).ok_or_else(invalid)?;
        let guid = Guid::parse(guid.trim()).ok_or_else(invalid)?;
        return Ok(PartType::Hybrid(byte, guid));
    }
    if let Some(byte) = hex_byte(text) {
        return Ok(PartType::Mbr(byte));
    }
    Guid::parse(text).map(PartType::Gpt).ok_or_else(invalid)
}

/// Parses a size or offset: bytes, or a number with a `K`, `M` or `G` (binary) suffix.
fn parse_quantity(field: &'static str, q: &Quantity) -> Result<u64, Problem> {
    let text = match q {
        Quantity::Number(n) => return Ok(*n),
        Quantity::Text(t) => t.trim(),
    };
    let invalid = || Problem::InvalidQuantity {
        field,
        value: text.into(),
    };
    let (digits, unit) = match text.char_indices().last() {
        Some((i, 'K')) => (&text[..i], 1u64 << 10),
        Some((i, 'M')) => (&text[..i], 1 << 20),
        Some((i, 'G')) => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(invalid)
}

// The YAML as written, before validation. Unknown keys are ignored, as snapd does.

#[derive(Deserialize)]
struct RawGadget {
    volumes: Option<BTreeMap<String, RawVolume>>,
}

#[derive(Deserialize)]
struct RawVolume {
    schema: Option<String>,
    bootloader: Option<String>,
    #[serde(default)]
    structure: Vec<RawStructure>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawStructure {
    name: Option<String>,
    role: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "type_text")]
    part_type: Option<String>,
    size: Option<Quantity>,
    min_size: Option<Quantity>,
    offset: Option<Quantity>,
    filesystem: Option<String>,
    filesystem_label: Option<String>,
    #[serde(default)]
    content: Vec<RawContent>,
}

#[derive(Deserialize)]
struct RawContent {
    source: Option<String>,
    target: Option<String>,
    image: Option<String>,
    offset: Option<Quantity>,
    size: Option<Quantity>,
}

/// A size as YAML gives it: a number or a string like `256M`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Quantity {
    Number(u64),
    Text(String),
}

/// `type: 83` reads as the number 83 in YAML; the gadget means the hex byte `83`.
fn type_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TypeValue {
        Number(u64),
        Text(String),
    }
    Ok(Option::<TypeValue>::deserialize(d)?.map(|v| match v {
        TypeValue::Number(n) => format!("{n:02}"),
        TypeValue::Text(t) => t,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_take_binary_suffixes() {
        let q = |s: &str| parse_quantity("size", &Quantity::Text(s.into()));
        assert_eq!(q("256M"), Ok(256 << 20));
        assert_eq!(q("1G"), Ok(1 << 30));
        assert_eq!(q("4K"), Ok(4096));
        assert_eq!(q("440"), Ok(440));
        for bad in ["", "M", "12Q", "1.5G", "-1", "99999999999999999999G"] {
            assert!(
                matches!(q(bad), Err(Problem::InvalidQuantity { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn types_parse_in_every_spelling() {
        let guid = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
        assert_eq!(parse_type("0C"), Ok(PartType::Mbr(0x0c)));
        assert_eq!(parse_type("83"), Ok(PartType::Mbr(0x83)));
        assert_eq!(parse_type("bare"), Ok(PartType::Bare));
        let g = Guid::parse(guid).unwrap();
        assert_eq!(parse_type(guid), Ok(PartType::Gpt(g)));
        assert_eq!(
            parse_type(&format!("EF,{guid}")),
            Ok(PartType::Hybrid(0xef, g))
        );
        assert_eq!(g.to_string(), guid);
        for bad in ["0CC", "ZZ", "C12A7328-F81F-11D2-BA4B", "0C,nope", ""] {
            assert!(
                matches!(parse_type(bad), Err(Problem::InvalidType(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn guids_store_the_first_three_groups_little_endian() {
        let g = Guid::parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B").unwrap();
        assert_eq!(
            g.to_disk_bytes(),
            [
                0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
                0xc9, 0x3b
            ]
        );
    }

    #[test]
    fn numeric_types_read_as_hex_text() {
        let yaml = "volumes:\n  v:\n    schema: mbr\n    bootloader: piboot\n    structure:\n      - type: 83\n        size: 1M\n      - type: 07\n        size: 1M\n";
        let g = parse(yaml.as_bytes()).unwrap();
        let v = &g.volumes["v"];
        assert_eq!(v.structures[0].part_type, PartType::Mbr(0x83));
        assert_eq!(v.structures[1].part_type, PartType::Mbr(0x07));
    }
}
