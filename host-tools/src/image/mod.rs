//! Disk images from a gadget's `gadget.yaml`: the layout (offsets, MBR or GPT), FAT file
//! systems written in place, ext4 made by `mke2fs -d`, bare structures copied; no root, no
//! loop devices, and the same bytes for the same inputs and `SOURCE_DATE_EPOCH`.
//!
//! The build-image command calls, in order:
//! [`gadget::parse`] on `meta/gadget.yaml`, [`Gadget::boot_volume`], [`stage_content`] for
//! each file system it adds files to, then [`write_image`]. `coreforge boot` reads images back
//! with [`read_partitions`] and [`FatReader`].
//!
//! This module uses nothing else from the crate, so tests can compile it on its own.

pub mod bmap;
mod copy;
pub mod ext4;
pub mod fat;
pub mod gadget;
pub mod geometry;
pub mod layout;
pub mod table;
pub mod tree;

use std::io;
use std::path::PathBuf;

pub use copy::copy_range;
pub use fat::FatReader;
pub use gadget::{Content, Filesystem, Gadget, GadgetError, Role, Schema, Structure, Volume};
pub use layout::{
    plan, source_date_epoch, stage_content, write_image, ImageOptions, ImageReport, Placed,
};
pub use table::{read_partitions, Partition};
pub use tree::{Source, Tree};

/// What went wrong while writing or reading an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// A file could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `write`, `create`...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A helper program is not installed.
    #[error("cannot run {tool}: {source}; install the {package} package (cross/setup.sh does)")]
    ToolMissing {
        /// The program.
        tool: &'static str,
        /// The Debian package that has it.
        package: &'static str,
        /// Why it could not start.
        source: io::Error,
    },
    /// A helper program failed.
    #[error("{tool} failed for structure {structure} ({status}): {stderr}")]
    ToolFailed {
        /// The program.
        tool: &'static str,
        /// Which structure it was making.
        structure: String,
        /// Its exit status.
        status: String,
        /// What it said.
        stderr: String,
    },
    /// The size asked for is smaller than the layout.
    #[error(
        "the image needs {needed} bytes but --size gives {given}; give a size of at least {needed}"
    )]
    ImageTooSmall {
        /// Bytes the layout needs.
        needed: u64,
        /// Bytes asked for.
        given: u64,
    },
    /// A size that is not a whole number of sectors.
    #[error("image size {0} is not a multiple of 512 bytes")]
    UnalignedSize(u64),
    /// Content larger than its structure.
    #[error("structure {structure}: {what} does not fit in its {size} bytes; make the structure larger or the content smaller")]
    DoesNotFit {
        /// Which structure.
        structure: String,
        /// What did not fit.
        what: String,
        /// The structure's size.
        size: u64,
    },
    /// A content source the gadget names is not there.
    #[error("structure {structure}: content {source_path:?} not found at {}", path.display())]
    MissingContent {
        /// Which structure.
        structure: String,
        /// The gadget's `source` or `image`.
        source_path: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Content the file system cannot hold.
    #[error("structure {structure}: {problem}")]
    BadContent {
        /// Which structure.
        structure: String,
        /// What is wrong.
        problem: String,
    },
    /// A FAT file system could not be made or read.
    #[error("FAT file system of structure {structure}: {source}")]
    Fat {
        /// Which structure (or partition).
        structure: String,
        /// The fatfs error.
        source: io::Error,
    },
    /// The caller's last check ([`ImageOptions::check`]) refused the image.
    #[error("{0}")]
    Refused(String),
    /// `SOURCE_DATE_EPOCH` is not a number of seconds.
    #[error("SOURCE_DATE_EPOCH={0:?} is not a whole number of seconds since 1970")]
    BadEpoch(String),
    /// The image has no partition table coreforge can read.
    #[error("{}: {problem}", path.display())]
    BadTable {
        /// The image.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// Shorthand for I/O errors with their path.
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> ImageError {
    let path = path.into();
    move |source| ImageError::Io {
        action,
        path,
        source,
    }
}
