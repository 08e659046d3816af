//! Reads a kernel module's `.modinfo` ELF section (`name=`, `depends=`, ...), which is
//! where modprobe's own dependency data comes from; Debian's kernels ship no modules.dep
//! we could use instead without depmod.

use crate::Error;

/// What the initramfs needs to know about one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModInfo {
    /// The module's name (`name=`), with underscores as the kernel spells it.
    pub name: String,
    /// The modules it needs loaded first (`depends=`), normalized to underscores.
    pub depends: Vec<String>,
}

/// Parses the `.modinfo` section of the module ELF image `elf` (32 or 64 bit, either endian).
/// `what` names the module in errors.
pub fn parse(elf: &[u8], what: &str) -> Result<ModInfo, Error> {
    let section = modinfo_section(elf).ok_or_else(|| Error::BadModule {
        module: what.to_string(),
        reason: "not an ELF object with a .modinfo section",
    })?;
    let mut name = None;
    let mut depends = Vec::new();
    for field in section.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let Ok(text) = std::str::from_utf8(field) else {
            continue;
        };
        if let Some(v) = text.strip_prefix("name=") {
            name = Some(normalize_name(v));
        } else if let Some(v) = text.strip_prefix("depends=") {
            depends.extend(v.split(',').filter(|d| !d.is_empty()).map(normalize_name));
        }
    }
    let name = name.ok_or_else(|| Error::BadModule {
        module: what.to_string(),
        reason: ".modinfo has no name= field",
    })?;
    Ok(ModInfo { name, depends })
}

/// Module names compare with `-` and `_` equal; the kernel uses `_`.
pub fn normalize_name(name: &str) -> String {
    name.trim().replace('-', "_")
}

/// A bounds-checked little/big-endian reader over the ELF image.
struct Reader<'a> {
    bytes: &'a [u8],
    big_endian: bool,
}

impl Reader<'_> {
    fn uint(&self, at: usize, size: usize) -> Option<u64> {
        let b = self.bytes.get(at..at.checked_add(size)?)?;
        let mut v = 0u64;
        for i in 0..size {
            let byte = if self.big_endian {
                b[i]
            } else {
                b[size - 1 - i]
            };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    }

    fn usize(&self, at: usize, size: usize) -> Option<usize> {
        usize::try_from(self.uint(at, size)?).ok()
    }
}

/// Finds the `.modinfo` section's bytes through the section header table.
fn modinfo_section(elf: &[u8]) -> Option<&[u8]> {
    if elf.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match elf.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let r = Reader {
        bytes: elf,
        big_endian: *elf.get(5)? == 2,
    };
    // (e_shoff, e_shentsize, e_shnum, e_shstrndx) offsets; then sh_offset/sh_size in a header.
    let (shoff, shentsize, shnum, shstrndx, word) = if wide {
        (
            r.usize(0x28, 8)?,
            r.usize(0x3A, 2)?,
            r.usize(0x3C, 2)?,
            r.usize(0x3E, 2)?,
            8,
        )
    } else {
        (
            r.usize(0x20, 4)?,
            r.usize(0x2E, 2)?,
            r.usize(0x30, 2)?,
            r.usize(0x32, 2)?,
            4,
        )
    };
    let (off_at, size_at) = if wide { (0x18, 0x20) } else { (0x10, 0x14) };
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let bytes_of = |h: usize| -> Option<&[u8]> {
        let off = r.usize(h + off_at, word)?;
        let size = r.usize(h + size_at, word)?;
        elf.get(off..off.checked_add(size)?)
    };
    let strtab = bytes_of(header(shstrndx)?)?;
    (0..shnum).find_map(|i| {
        let h = header(i)?;
        let name_off = r.usize(h, 4)?;
        let name = strtab.get(name_off..)?.split(|b| *b == 0).next()?;
        if name == b".modinfo" {
            bytes_of(h)
        } else {
            None
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF64 little-endian object with a `.modinfo` holding `fields`.
    pub(crate) fn fake_module(fields: &[&str]) -> Vec<u8> {
        fake_elf(fields, true)
    }

    /// The same for ELF32 big-endian (to cover the other layout and byte order).
    fn fake_elf(fields: &[&str], wide: bool) -> Vec<u8> {
        let big = !wide;
        let put = |v: &mut Vec<u8>, at: usize, size: usize, val: u64| {
            for i in 0..size {
                let shift = if big { 8 * (size - 1 - i) } else { 8 * i };
                v[at + i] = (val >> shift) as u8;
            }
        };
        let mut modinfo = Vec::new();
        for f in fields {
            modinfo.extend_from_slice(f.as_bytes());
            modinfo.push(0);
        }
        let strtab = b"\0.modinfo\0.shstrtab\0".to_vec();
        let ehsize = if wide { 64 } else { 52 };
        let shentsize = if wide { 64 } else { 40 };
        let modinfo_off = ehsize;
        let strtab_off = modinfo_off + modinfo.len();
        let shoff = (strtab_off + strtab.len()).next_multiple_of(8);
        let mut elf = vec![0u8; shoff + 3 * shentsize];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = if wide { 2 } else { 1 };
        elf[5] = if big { 2 } else { 1 };
        elf[modinfo_off..strtab_off].copy_from_slice(&modinfo);
        elf[strtab_off..strtab_off + strtab.len()].copy_from_slice(&strtab);
        let (w, shoff_at, ent_at, off_at, size_at) = if wide {
            (8, 0x28, 0x3A, 0x18, 0x20)
        } else {
            (4, 0x20, 0x2E, 0x10, 0x14)
        };
        put(&mut elf, shoff_at, w, shoff as u64);
        put(&mut elf, ent_at, 2, shentsize as u64);
        put(&mut elf, ent_at + 2, 2, 3);
        put(&mut elf, ent_at + 4, 2, 2);
        // Section 1: .modinfo (name at 1); section 2: .shstrtab (name at 10).
        for (i, name, off, size) in [
            (1, 1, modinfo_off, modinfo.len()),
            (2, 10, strtab_off, strtab.len()),
        ] {
            let h = shoff + i * shentsize;
            put(&mut elf, h, 4, name);
            put(&mut elf, h + off_at, w, off as u64);
            put(&mut elf, h + size_at, w, size as u64);
        }
        elf
    }

    #[test]
    fn reads_name_and_depends() {
        let elf = fake_module(&[
            "license=GPL",
            "depends=sdhci-pltfm,sdhci",
            "name=sdhci_iproc",
            "vermagic=6.1",
        ]);
        let info = parse(&elf, "sdhci-iproc.ko").unwrap();
        assert_eq!(info.name, "sdhci_iproc");
        assert_eq!(info.depends, ["sdhci_pltfm", "sdhci"]);
    }

    #[test]
    fn empty_depends_means_none() {
        let info = parse(&fake_module(&["depends=", "name=virtio_blk"]), "x").unwrap();
        assert!(info.depends.is_empty());
    }

    #[test]
    fn elf32_big_endian_is_read_too() {
        let info = parse(&fake_elf(&["name=fat", "depends=nls_base"], false), "x").unwrap();
        assert_eq!(
            (info.name.as_str(), info.depends.as_slice()),
            ("fat", &["nls_base".to_string()][..])
        );
    }

    #[test]
    fn missing_name_or_section_is_an_error_naming_the_module() {
        let err = parse(&fake_module(&["depends="]), "odd.ko").unwrap_err();
        assert!(err.to_string().contains("odd.ko"), "{err}");
        assert!(parse(b"not an elf at all", "junk.ko").is_err());
        let mut truncated = fake_module(&["name=a"]);
        truncated.truncate(70);
        assert!(parse(&truncated, "t.ko").is_err());
    }
}
