//! Where each structure goes on the disk, and writing the whole image: file systems,
//! bare content, partition table; into a temp file beside the output, renamed on success.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ext4::{self, Ext4};
use super::fat;
use super::gadget::{Content, Filesystem, Guid, Role, Structure, Volume};
use super::geometry::{GPT_BACKUP, SECTOR};
use super::table::{self, TableIds};
use super::tree::Tree;
use super::{io_err, ImageError};

/// A structure as placed in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Index in the volume's structure list.
    pub index: usize,
    /// The structure's name.
    pub name: Option<String>,
    /// Its role.
    pub role: Option<Role>,
    /// Offset in bytes.
    pub offset: u64,
    /// Size in bytes (a grown `system-data` partition has its new size).
    pub size: u64,
    /// Partition number (1-based), when it is in the partition table.
    pub partition: Option<u32>,
    /// Its file system.
    pub filesystem: Filesystem,
    /// The file system's label.
    pub label: Option<String>,
}

/// What [`write_image`] wrote (and [`plan`] would write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReport {
    /// Image size in bytes.
    pub size: u64,
    /// Every structure, in gadget order.
    pub structures: Vec<Placed>,
}

/// How to write an image.
#[derive(Default)]
pub struct ImageOptions<'a> {
    /// Image size; `None` ends the image after the last structure. A larger size grows a
    /// final `system-data` partition to fill it.
    pub size: Option<u64>,
    /// Every timestamp in every file system (seconds since 1970); see [`source_date_epoch`].
    pub epoch: u64,
    /// Called after each structure with (bytes of structures written, bytes in all).
    pub progress: Option<&'a dyn Fn(u64, u64)>,
    /// Called once everything is written and flushed, before the image is renamed into
    /// place: a last check of the inputs that ran while the image was made. Its error is
    /// [`ImageError::Refused`], and nothing is left at the output.
    pub check: Option<&'a dyn Fn() -> Result<(), String>>,
}

impl std::fmt::Debug for ImageOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageOptions")
            .field("size", &self.size)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// `SOURCE_DATE_EPOCH` from the environment, 0 when unset.
pub fn source_date_epoch() -> Result<u64, ImageError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.trim().is_empty() => Ok(0),
        Ok(v) => v.trim().parse().map_err(|_| ImageError::BadEpoch(v)),
        Err(std::env::VarError::NotPresent) => Ok(0),
        Err(std::env::VarError::NotUnicode(v)) => {
            Err(ImageError::BadEpoch(v.to_string_lossy().into_owned()))
        }
    }
}

/// Lays `volume` out for an image of `size` bytes (or the smallest that holds it).
pub fn plan(volume: &Volume, size: Option<u64>) -> Result<ImageReport, ImageError> {
    let (structures, size) = place(volume, size)?;
    Ok(report(&structures, size))
}

fn report(structures: &[Structure], size: u64) -> ImageReport {
    let mut number = 0;
    let structures = structures
        .iter()
        .map(|s| Placed {
            index: s.index,
            name: s.name.clone(),
            role: s.role,
            offset: s.offset,
            size: s.size,
            partition: s.is_partition().then(|| {
                number += 1;
                number
            }),
            filesystem: s.filesystem,
            label: s.effective_label().map(str::to_string),
        })
        .collect();
    ImageReport { size, structures }
}

/// The structures with their final sizes, and the image size.
fn place(volume: &Volume, size: Option<u64>) -> Result<(Vec<Structure>, u64), ImageError> {
    let mut structures = volume.structures.clone();
    let backup = match volume.schema {
        super::Schema::Gpt => GPT_BACKUP,
        super::Schema::Mbr => 0,
    };
    let end = structures.iter().map(Structure::end).max().unwrap_or(0);
    let needed = end.div_ceil(SECTOR) * SECTOR + backup;
    let Some(size) = size else {
        return Ok((structures, needed));
    };
    if size % SECTOR != 0 {
        return Err(ImageError::UnalignedSize(size));
    }
    if size < needed {
        return Err(ImageError::ImageTooSmall {
            needed,
            given: size,
        });
    }
    // writable grows to fill the disk on first boot anyway; growing it here lets an image
    // for a known card size start full size.
    if let Some(last) = structures.iter_mut().max_by_key(|s| s.end()) {
        if last.role == Some(Role::SystemData) && last.is_partition() {
            last.size = size - backup - last.offset;
        }
    }
    Ok((structures, size))
}

/// Adds a structure's gadget content (`source` → `target` entries, snapd's rules) from
/// `gadget_dir` to `tree`, the file system to be. The build-image command calls this, adds
/// its own files (kernel, initramfs, seed), and gives the tree to [`write_image`] in its
/// `contents`. Nothing is copied: the tree names the gadget's files.
///
/// snapd's rules: a directory source ending in `/` copies what is inside it to `target`;
/// without the `/` it copies the directory itself into `target`. A file source goes into
/// `target` when that ends in `/` (or is `/`), else it is written as `target`.
pub fn stage_content(
    structure: &Structure,
    gadget_dir: &Path,
    tree: &mut Tree,
) -> Result<(), ImageError> {
    for content in &structure.content {
        let Content::File { source, target } = content else {
            continue;
        };
        let src = gadget_dir.join(source.trim_end_matches('/'));
        let meta = fs::metadata(&src).map_err(|_| ImageError::MissingContent {
            structure: structure.describe(),
            source_path: source.clone(),
            path: src.clone(),
        })?;
        let target_path = target.trim_start_matches('/').trim_end_matches('/');
        let base = || match src.file_name() {
            Some(n) if target_path.is_empty() => n.to_string_lossy().into_owned(),
            Some(n) => format!("{target_path}/{}", n.to_string_lossy()),
            None => target_path.to_string(),
        };
        let to = if meta.is_dir() {
            if source.ends_with('/') {
                target_path.to_string()
            } else {
                base()
            }
        } else if target.ends_with('/') || target_path.is_empty() {
            base()
        } else {
            target_path.to_string()
        };
        tree.add(&src, &to)?;
    }
    Ok(())
}

/// Writes the image of `volume` to `out`.
///
/// - `gadget_dir`: the unpacked gadget; bare structures' `image:` files and the `source:`
///   paths of file systems without an entry in `contents` are read from it.
/// - `contents`: by structure index, the tree that becomes that file system (see
///   [`stage_content`]); a file system structure without one gets the gadget's own content.
///
/// The file systems are made side by side (each FAT in memory on its own thread, ext4 by
/// `mke2fs` on another), the bare structures copied meanwhile. The image is written to a
/// temp file beside `out`, flushed to the disk once, and renamed into place only when
/// complete; on error nothing is left behind and an existing `out` is untouched.
pub fn write_image(
    volume: &Volume,
    gadget_dir: &Path,
    contents: &BTreeMap<usize, Tree>,
    out: &Path,
    options: &ImageOptions<'_>,
) -> Result<ImageReport, ImageError> {
    let (structures, size) = place(volume, options.size)?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".partial")
        .tempfile_in(parent)
        .map_err(io_err("create a temp file in", parent))?;
    let scratch = tempfile::tempdir().map_err(io_err("create", std::env::temp_dir()))?;
    let file = tmp.as_file();
    let path = tmp.path();
    file.set_len(size).map_err(io_err("resize", path))?;

    // The gadget's own content for file systems the caller gave no tree.
    let mut own = BTreeMap::new();
    for s in &structures {
        if s.filesystem != Filesystem::None
            && !s.content.is_empty()
            && !contents.contains_key(&s.index)
        {
            let mut tree = Tree::new();
            stage_content(s, gadget_dir, &mut tree)?;
            own.insert(s.index, tree);
        }
    }
    let tree_of = |s: &Structure| contents.get(&s.index).or_else(|| own.get(&s.index));

    let total: u64 = structures.iter().map(|s| s.size).sum();
    let done = std::cell::Cell::new(0);
    let advance = |s: &Structure| {
        done.set(done.get() + s.size);
        if let Some(progress) = options.progress {
            progress(done.get(), total);
        }
    };
    std::thread::scope(|scope| -> Result<(), ImageError> {
        let jobs: Vec<_> = structures
            .iter()
            .filter(|s| s.filesystem != Filesystem::None)
            .map(|s| {
                let tree = tree_of(s);
                let scratch = scratch.path();
                let volume = &volume.name;
                let epoch = options.epoch;
                let job = scope
                    .spawn(move || make_filesystem(volume, s, tree, (file, path), scratch, epoch));
                (s, job)
            })
            .collect();
        for s in structures
            .iter()
            .filter(|s| s.filesystem == Filesystem::None)
        {
            write_bare(file, path, s, gadget_dir)?;
            advance(s);
        }
        for (s, job) in jobs {
            let made = job.join().map_err(|_| ImageError::BadContent {
                structure: s.describe(),
                problem: "making its file system panicked".into(),
            })??;
            if let Some(fat) = made {
                fat.write_at(file, s.offset)
                    .map_err(io_err("write", path))?;
            }
            advance(s);
        }
        Ok(())
    })?;

    let [a, b, c, d, ..] = derive_id(&volume.name, &structures[0], "mbr-disk-signature");
    let ids = TableIds {
        disk_signature: u32::from_le_bytes([a, b, c, d]),
        disk_guid: guid_v4(derive_id(&volume.name, &structures[0], "gpt-disk-guid")),
    };
    table::write_table(file, path, volume.schema, &structures, size, ids, &|s| {
        guid_v4(derive_id(&volume.name, s, "gpt-partition-guid"))
    })?;
    // Flushed first: the disk works while the check waits for its own threads.
    file.sync_all().map_err(io_err("write", path))?;
    if let Some(check) = options.check {
        check().map_err(ImageError::Refused)?;
    }
    // tempfile creates 0600; an image is not secret.
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).map_err(io_err("chmod", path))?;
    tmp.persist(out).map_err(|e| ImageError::Io {
        action: "rename the finished image to",
        path: out.to_path_buf(),
        source: e.error,
    })?;
    Ok(report(&structures, size))
}

/// Makes file system structure `s` of the image `file` (at `path`) from `tree`: ext4 by
/// `mke2fs` (from a directory made of the tree under `scratch`) and written into the image,
/// FAT in memory, returned for the caller to write.
fn make_filesystem(
    volume: &str,
    s: &Structure,
    tree: Option<&Tree>,
    (file, path): (&File, &Path),
    scratch: &Path,
    epoch: u64,
) -> Result<Option<fat::FatImage>, ImageError> {
    let id = |purpose: &str| derive_id(volume, s, purpose);
    let label = s.effective_label();
    if s.filesystem == Filesystem::Ext4 {
        let dir = match tree.filter(|t| !t.is_empty()) {
            Some(tree) => {
                let dir = scratch.join(format!("structure-{}", s.index));
                tree.write_to(&dir)?;
                Some(dir)
            }
            None => None,
        };
        let uuid = uuid_text(id("ext4-uuid"));
        let spec = Ext4 {
            structure: &s.describe(),
            offset: s.offset,
            size: s.size,
            label,
            uuid: &uuid,
            epoch,
            content: dir.as_deref(),
        };
        let own_scratch = scratch.join(format!("ext4-{}", s.index));
        fs::create_dir_all(&own_scratch).map_err(io_err("create", &own_scratch))?;
        ext4::make_ext4(file, path, &spec, &own_scratch)?;
        Ok(None)
    } else {
        let [a, b, c, d, ..] = id("fat-volume-id");
        fat::make_fat(
            &s.describe(),
            s.filesystem,
            s.size,
            label,
            u32::from_le_bytes([a, b, c, d]),
            epoch,
            tree,
        )
        .map(Some)
    }
}

/// Copies a bare structure's `image:` content to its offsets.
fn write_bare(
    file: &File,
    path: &Path,
    s: &Structure,
    gadget_dir: &Path,
) -> Result<(), ImageError> {
    let mut next = 0;
    for content in &s.content {
        let Content::Image {
            image,
            offset,
            size,
        } = content
        else {
            continue;
        };
        let src = gadget_dir.join(image);
        let data = fs::read(&src).map_err(|_| ImageError::MissingContent {
            structure: s.describe(),
            source_path: image.clone(),
            path: src.clone(),
        })?;
        let len = data.len() as u64;
        let at = offset.unwrap_or(next);
        let too_big = |what: String| ImageError::DoesNotFit {
            structure: s.describe(),
            what,
            size: s.size,
        };
        if size.is_some_and(|limit| len > limit) {
            return Err(too_big(format!(
                "image {image:?} ({len} bytes, larger than its content size {})",
                size.unwrap_or(0)
            )));
        }
        if at + len > s.size {
            return Err(too_big(format!(
                "image {image:?} ({len} bytes at offset {at})"
            )));
        }
        file.write_all_at(&data, s.offset + at)
            .map_err(io_err("write", path))?;
        next = at + size.unwrap_or(len);
    }
    Ok(())
}

/// 16 bytes that depend only on the volume, the structure and what they are for: the same
/// gadget gives the same ids, so builds are reproducible.
fn derive_id(volume: &str, s: &Structure, purpose: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    for part in [
        "coreforge image id",
        volume,
        &s.index.to_string(),
        s.name.as_deref().unwrap_or(""),
        purpose,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// Marks 16 bytes as a random (version 4, RFC 4122 variant) UUID.
fn guid_v4(mut b: [u8; 16]) -> Guid {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Guid(b)
}

/// The UUID text mke2fs takes (lower case).
fn uuid_text(b: [u8; 16]) -> String {
    guid_v4(b).to_string().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::geometry::MIB;

    #[test]
    fn derived_uuids_are_version_4_and_differ_by_purpose() {
        let s = Structure {
            index: 1,
            name: Some("writable".into()),
            role: Some(Role::SystemData),
            part_type: super::super::gadget::PartType::Mbr(0x83),
            size: MIB,
            offset: MIB,
            filesystem: Filesystem::Ext4,
            label: None,
            content: vec![],
        };
        let a = uuid_text(derive_id("pi", &s, "ext4-uuid"));
        let b = uuid_text(derive_id("pi", &s, "other"));
        assert_ne!(a, b);
        assert_eq!(&a[14..15], "4", "{a}");
        assert!("89ab".contains(&a[19..20]), "{a}");
        assert_eq!(a, uuid_text(derive_id("pi", &s, "ext4-uuid")));
    }
}
