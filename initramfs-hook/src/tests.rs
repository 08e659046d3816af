//! Tests of the whole builder (the parts have their own).

use super::*;
use crate::cpio::tests::{parse, Member};
use crate::modinfo::tests::fake_module;

fn modules_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let put = |rel: &str, fields: &[&str]| {
        let p = t.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, fake_module(fields)).unwrap();
    };
    put("kernel/fs/fat/vfat.ko", &["depends=fat", "name=vfat"]);
    put("kernel/fs/fat/fat.ko", &["depends=", "name=fat"]);
    put(
        "kernel/drivers/virtio/virtio_mmio.ko",
        &["depends=", "name=virtio_mmio"],
    );
    t
}

fn trusted_files() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("root.account-key"), b"type: account-key\n").unwrap();
    std::fs::write(t.path().join("canonical.account"), b"type: account\n").unwrap();
    t
}

fn build(mtime: u32, compression: Compression) -> Initramfs {
    builder(mtime).build(compression).unwrap()
}

fn builder(mtime: u32) -> InitramfsBuilder {
    let mods = modules_tree();
    let trusted = trusted_files();
    InitramfsBuilder::new(b"\x7fELF agent".to_vec())
        .mtime(mtime)
        .modules(mods.path(), &["virtio_mmio", "vfat"])
        .unwrap()
        .trusted(&[
            trusted.path().join("root.account-key"),
            trusted.path().join("canonical.account"),
        ])
        .unwrap()
}

/// `build_cached`: the shared part (agent, modules, device node, mount points) compressed
/// once and kept in the cache, then the rest; together they hold what `build` holds.
#[test]
fn a_cached_build_is_the_shared_part_then_the_rest() {
    let cache = tempfile::tempdir().unwrap();
    let whole = members(&build(1234, Compression::Zstd));
    let cached = builder(1234)
        .build_cached(Compression::Zstd, cache.path())
        .unwrap();
    let entries: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let shared_z = std::fs::read(&entries[0]).unwrap();
    assert!(cached.bytes.starts_with(&shared_z));
    let shared = parse(&zstd::decode_all(shared_z.as_slice()).unwrap());
    let rest = parse(&zstd::decode_all(&cached.bytes[shared_z.len()..]).unwrap());
    assert!(
        shared.iter().all(|m| m.4 == 0),
        "the shared part carries no build time"
    );
    for name in [
        "init",
        "dev/console",
        "lib/modules/vfat.ko",
        "etc/coreforge/modules.load",
    ] {
        find(&shared, name);
    }
    assert!(
        !rest
            .iter()
            .any(|m| m.0 == "init" || m.0.starts_with("lib/modules/")),
        "{rest:?}"
    );
    find(&rest, "etc/coreforge/trusted/root.assertion");
    // Every file and node of the single archive, with the same bytes, in one of the parts.
    for m in whole.iter().filter(|m| m.1 & 0o170000 != 0o040000) {
        let part = shared.iter().chain(&rest).find(|p| p.0 == m.0);
        assert_eq!(part.map(|p| (&p.1, &p.5)), Some((&m.1, &m.5)), "{}", m.0);
    }

    // The cache is used when what it holds decompresses to the shared part: here another
    // compression of the same bytes, which the next build takes as it is.
    let other =
        zstd::encode_all(zstd::decode_all(shared_z.as_slice()).unwrap().as_slice(), 1).unwrap();
    assert_ne!(other, shared_z);
    std::fs::write(&entries[0], &other).unwrap();
    let again = builder(1234)
        .build_cached(Compression::Zstd, cache.path())
        .unwrap();
    assert!(again.bytes.starts_with(&other));
    // What does not decompress to it is not used, and is replaced.
    std::fs::write(&entries[0], b"not zstd").unwrap();
    let mended = builder(1234)
        .build_cached(Compression::Zstd, cache.path())
        .unwrap();
    assert_eq!(mended.bytes, cached.bytes);
    assert_eq!(std::fs::read(&entries[0]).unwrap(), shared_z);
}

fn members(image: &Initramfs) -> Vec<Member> {
    parse(&zstd::decode_all(image.bytes.as_slice()).unwrap())
}

fn find<'a>(members: &'a [Member], name: &str) -> &'a Member {
    members
        .iter()
        .find(|m| m.0 == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn same_inputs_give_the_same_bytes() {
    // Different temp dirs each time: paths must not leak into the image.
    let a = build(0, Compression::Zstd);
    let b = build(0, Compression::Zstd);
    assert_eq!(a.bytes, b.bytes);
    let g1 = build(7, Compression::Gzip);
    let g2 = build(7, Compression::Gzip);
    assert_eq!(g1.bytes, g2.bytes);
    assert_ne!(build(1, Compression::Zstd).bytes, a.bytes);
}

#[test]
fn init_console_and_mount_points_are_there() {
    let image = build(0, Compression::Zstd);
    let m = members(&image);
    let init = find(&m, "init");
    assert_eq!(
        (init.1, init.5.as_slice()),
        (0o100755, b"\x7fELF agent".as_slice())
    );
    let console = find(&m, "dev/console");
    assert_eq!((console.1, console.2, console.3), (0o020600, 5, 1));
    for dir in [
        "proc",
        "sys",
        "run",
        "mnt",
        "etc/coreforge/trusted",
        "lib/modules",
    ] {
        assert_eq!(find(&m, dir).1 & 0o170000, 0o040000, "{dir}");
    }
    assert_eq!(find(&m, "tmp").1, 0o041777);
}

#[test]
fn modules_and_their_load_order_are_written() {
    let image = build(0, Compression::Zstd);
    assert_eq!(image.modules, ["virtio_mmio", "fat", "vfat"]);
    let m = members(&image);
    let load = String::from_utf8(find(&m, "etc/coreforge/modules.load").5.clone()).unwrap();
    assert_eq!(
        load,
        "/lib/modules/virtio_mmio.ko\n/lib/modules/fat.ko\n/lib/modules/vfat.ko\n"
    );
    assert!(find(&m, "lib/modules/fat.ko").5.starts_with(b"\x7fELF"));
}

#[test]
fn trusted_assertions_are_renamed_by_stem() {
    let m = members(&build(0, Compression::Zstd));
    assert_eq!(
        find(&m, "etc/coreforge/trusted/root.assertion").5,
        b"type: account-key\n"
    );
    assert_eq!(
        find(&m, "etc/coreforge/trusted/canonical.assertion").5,
        b"type: account\n"
    );
}

#[test]
fn duplicate_trusted_names_are_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    std::fs::write(a.path().join("root.account-key"), b"1").unwrap();
    std::fs::write(b.path().join("root.account"), b"2").unwrap();
    let err = InitramfsBuilder::new(b"\x7fELF".to_vec())
        .trusted(&[
            a.path().join("root.account-key"),
            b.path().join("root.account"),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateTrusted { .. }), "{err}");
}

#[test]
fn an_agent_that_is_not_elf_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("agent");
    std::fs::write(&path, b"#!/bin/sh\n").unwrap();
    let err = InitramfsBuilder::from_agent_file(&path).unwrap_err();
    assert!(err.to_string().contains("build-agent.sh"), "{err}");
}

#[test]
fn write_puts_the_image_in_place() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("initrd.img");
    let image = InitramfsBuilder::new(b"\x7fELF".to_vec())
        .write(&out, Compression::Gzip)
        .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), image.bytes);
    assert!(!t.path().join("initrd.partial").exists());
}

#[test]
fn sso_url_and_tls_roots_are_written_where_the_agent_reads_them() {
    let pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_vec();
    let image = InitramfsBuilder::new(b"\x7fELF".to_vec())
        .sso_url("https://10.0.2.2:8443\n")
        .tls_roots(pem.clone())
        .build(Compression::Zstd)
        .unwrap();
    let m = members(&image);
    let url = find(&m, "etc/coreforge/sso-url");
    assert_eq!(
        (url.1, url.5.as_slice()),
        (0o100644, b"https://10.0.2.2:8443\n".as_slice())
    );
    assert_eq!(find(&m, "etc/coreforge/tls-roots.pem").5, pem);
    assert_eq!(SSO_URL.trim_start_matches('/'), "etc/coreforge/sso-url");
    assert_eq!(
        TLS_ROOTS.trim_start_matches('/'),
        "etc/coreforge/tls-roots.pem"
    );
}
