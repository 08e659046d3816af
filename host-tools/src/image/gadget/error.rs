//! What can be wrong with a gadget.yaml.

use super::Role;

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
