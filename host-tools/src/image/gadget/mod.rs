//! `gadget.yaml`: what it describes (volumes, structures, roles, content), parsed and
//! validated against snapd's schema in [`parse`](parse()), with one error per mistake that
//! says where it is and what to write instead ([`GadgetError`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

mod error;
mod parse;
pub use error::{GadgetError, Problem};
pub use parse::parse;

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
