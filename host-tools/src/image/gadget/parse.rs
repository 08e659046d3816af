//! Parsing a gadget.yaml and checking it against snapd's schema.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer};

use super::super::geometry;
use super::*;

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
    let offset =
        offset.unwrap_or_else(|| geometry::next_offset(previous_end, role == Some(Role::Mbr)));
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
        Schema::Gpt => geometry::GPT_RESERVED,
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
