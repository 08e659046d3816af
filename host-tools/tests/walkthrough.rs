//! The seed's walk-through, end to end, as a brand would type it: create a key,
//! set up a store, register the key, upload and release the board snaps to
//! `beta`, sign a pi3 model, `build-image -c beta -o pi3-test.img` with one
//! `--extra-snaps`, inspect the image, and boot it under QEMU until the agent
//! prints the brand and model. Then the ways it must refuse.
//!
//! Needs the board snaps (`board-support/snaps/build.sh`), the cross-built
//! agent (`cross/build-agent.sh`), mtools and QEMU (`cross/setup.sh`).

mod common;
use common::show;
use common::world::{board_snap, fat_read, mbr, mtools, world, World};

use std::fs;
use std::path::{Path, PathBuf};

use coreforge_assertions::{Assertion, SnapRevision};

#[test]
fn pi3_walkthrough_builds_inspects_and_boots() {
    let w = world();
    let model = w.model("pi3", "arm64", "pi3", "");
    let image = w.path("pi3-test.img");
    let out = w.build(&model, &image, &["--extra-snaps", "hello"]);
    assert!(out.status.success(), "build-image:\n{}", show(&out));

    // The partition table: FAT32 (LBA) system-boot, then Linux writable.
    let parts = mbr(&image);
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts[0].0, 0x0C);
    assert_eq!(parts[1].0, 0x83);
    assert_eq!(parts[0].1, 1 << 20, "system-boot starts at 1 MiB");
    assert!(parts[1].1 >= parts[0].1 + parts[0].2, "partitions overlap");
    let len = fs::metadata(&image).unwrap().len();
    assert!(parts[1].1 + parts[1].2 <= len);
    let boot = parts[0].1;

    // The FAT: label, firmware, kernel, initramfs, configs, the seed.
    let listing = String::from_utf8(mtools(&image, boot, &["-/", "-b", "::"], "mdir")).unwrap();
    for want in [
        "::/bootcode.bin",
        "::/start.elf",
        "::/config.txt",
        "::/cmdline.txt",
        "::/kernel.img",
        "::/initrd.img",
        "::/bcm2837-rpi-3-b.dtb",
    ] {
        assert!(
            listing.lines().any(|l| l.eq_ignore_ascii_case(want)),
            "{want} missing:\n{listing}"
        );
    }
    let dir = String::from_utf8(mtools(&image, boot, &["::"], "mdir")).unwrap();
    assert!(dir.contains("Volume in drive : is system-boot"), "{dir}");

    let system = listing
        .lines()
        .find_map(|l| {
            l.strip_prefix("::/systems/")
                .and_then(|r| r.strip_suffix("/model"))
        })
        .unwrap_or_else(|| panic!("no systems/<label>/model:\n{listing}"))
        .to_owned();
    assert_eq!(system, "20251125", "seed label from SOURCE_DATE_EPOCH");
    let seeded_model = fat_read(&image, boot, &format!("systems/{system}/model"));
    let signed = fs::read(&model).unwrap();
    assert_eq!(seeded_model, signed.strip_suffix(b"\n").unwrap_or(&signed));
    let model_etc = Assertion::decode_all(&fat_read(
        &image,
        boot,
        &format!("systems/{system}/assertions/model-etc"),
    ))
    .unwrap();
    let types: Vec<_> = model_etc.iter().map(|a| a.type_name()).collect();
    assert!(
        types.contains(&"account") && types.contains(&"account-key"),
        "{types:?}"
    );

    // Every seeded snap matches its snap-revision (size and SHA3-384).
    let revisions: Vec<SnapRevision> = Assertion::decode_all(&fat_read(
        &image,
        boot,
        &format!("systems/{system}/assertions/snaps"),
    ))
    .unwrap()
    .iter()
    .filter(|a| a.type_name() == "snap-revision")
    .map(|a| SnapRevision::from_assertion(a).unwrap())
    .collect();
    let seeded: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.strip_prefix("::/snaps/"))
        .filter(|f| !f.is_empty())
        .collect();
    let mut names: Vec<&str> = seeded
        .iter()
        .map(|f| f.split('_').next().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["core", "hello", "pi2-kernel", "pi3"], "{seeded:?}");
    assert_eq!(revisions.len(), 4);
    for f in &seeded {
        let bytes = fat_read(&image, boot, &format!("snaps/{f}"));
        let digest = common::sha3_b64url(&bytes);
        let rev = revisions
            .iter()
            .find(|r| r.snap_sha3_384 == digest)
            .unwrap_or_else(|| panic!("snaps/{f}: no snap-revision with its SHA3-384"));
        assert_eq!(rev.snap_size, bytes.len() as u64, "{f}");
        assert!(
            f.ends_with(&format!("_{}.snap", rev.snap_revision)),
            "{f} vs revision {}",
            rev.snap_revision
        );
    }

    // Byte for byte reproducible under SOURCE_DATE_EPOCH.
    let again = w.path("pi3-again.img");
    let out = w.build(&model, &again, &["--extra-snaps", "hello"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        fs::read(&image).unwrap() == fs::read(&again).unwrap(),
        "two builds differ"
    );
    fs::remove_file(&again).unwrap();

    boot_until_model(&image, "raspi3b");
}

/// The gadget and kernel are unpacked once per content: the first build leaves their trees in
/// the cache under their snap-sha3-384, and the next build takes them from there (a mark
/// made in the cached gadget shows up in the image) instead of unpacking again.
#[test]
fn a_second_build_takes_the_unpacked_gadget_and_kernel_from_the_cache() {
    let w = world();
    let model = w.model("pi3-cached", "arm64", "pi3", "");
    let cache = w.path("unpack-cache");
    let _ = fs::remove_dir_all(&cache);
    let env = [("COREFORGE_CACHE", cache.as_path())];
    let image = w.path("pi3-cached.img");
    let out = w.build_env(&model, &image, &[], &env);
    assert!(out.status.success(), "build-image:\n{}", show(&out));
    let digest = |name: &str| common::sha3_b64url(&fs::read(board_snap(name, "arm64")).unwrap());
    let unpacked = cache.join("unpacked");
    let mut cached: Vec<String> = fs::read_dir(&unpacked)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    cached.sort();
    let mut want = vec![digest("pi3"), digest("pi2-kernel")];
    want.sort();
    assert_eq!(
        cached, want,
        "the cache holds the two trees by digest, nothing else"
    );

    let config = unpacked.join(digest("pi3")).join("boot-assets/config.txt");
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str("# from the cache\n");
    fs::write(&config, &text).unwrap();
    let out = w.build_env(&model, &image, &[], &env);
    assert!(out.status.success(), "build-image:\n{}", show(&out));
    let boot = mbr(&image)[0].1;
    assert_eq!(
        String::from_utf8(fat_read(&image, boot, "config.txt")).unwrap(),
        text,
        "the second build unpacked the gadget again instead of using the cache"
    );
    fs::remove_file(&image).unwrap();
}

/// A snap file changed in the store after its upload (same size, one byte) is not what the
/// store's assertions vouch for: build-image names it and writes nothing.
#[test]
fn refuses_a_store_snap_changed_after_upload_and_writes_nothing() {
    let w = world();
    publish_then_change(w, "changed");
    let model = w.model("pi3-changed", "arm64", "pi3", "");
    let out = w.path("pi3-changed.img");
    let err = w.refused(&model, &out, "beta", &["--extra-snaps", "changed"]);
    assert!(
        err.contains("changed revision") && err.contains("the store recorded"),
        "{err}"
    );
}

/// A store file left alone for a while is copied into the image from its open handle, and a
/// rebuild takes its digest from the memo in build-image's cache instead of hashing it again
/// (a forged memo entry shows it is read). A change to the file in place since (same size,
/// modification time set back) is not covered by the memo: the file is hashed and refused.
#[test]
fn a_remembered_digest_does_not_outlive_a_change_to_the_file() {
    use std::os::unix::fs::MetadataExt;
    let w = world();
    let stored = publish_small(w, "settled");
    let model = w.model("pi3-settled", "arm64", "pi3", "");
    let cache = w.path("memo-cache");
    let _ = fs::remove_dir_all(&cache);
    let env = [("COREFORGE_CACHE", cache.as_path())];
    let image = w.path("pi3-settled.img");
    let build = || w.build_env(&model, &image, &["--extra-snaps", "settled"], &env);
    // Settled: changed more than two seconds before build-image opens it.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = build();
    assert!(out.status.success(), "build-image:\n{}", show(&out));
    let meta = fs::metadata(&stored).unwrap();
    let entry = cache
        .join("digests")
        .join(format!("{}-{}", meta.dev(), meta.ino()));
    let remembered = fs::read_to_string(&entry).expect("no digest remembered for the store file");
    let digest = common::sha3_b64url(&fs::read(&stored).unwrap());
    assert!(
        remembered.ends_with(&format!(" {digest}\n")),
        "{remembered}"
    );
    let boot = mbr(&image)[0].1;
    assert!(
        fat_read(&image, boot, "snaps/settled_1.snap") == fs::read(&stored).unwrap(),
        "the seed's copy differs from the store's file"
    );

    // The rebuild reads the memo: a forged entry for the unchanged file is believed, and
    // then refused for not being what the store recorded.
    fs::write(&entry, remembered.replace(&digest, "forged-digest")).unwrap();
    let out = build();
    assert!(!out.status.success(), "a forged memo entry went unread");
    assert!(
        show(&out).contains("its SHA3-384 is forged-digest"),
        "{}",
        show(&out)
    );
    fs::write(&entry, &remembered).unwrap();
    let out = build();
    assert!(out.status.success(), "build-image:\n{}", show(&out));

    // One byte changed in place, the size and modification time as before.
    let mut bytes = fs::read(&stored).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let file = fs::OpenOptions::new().write(true).open(&stored).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &bytes[middle..=middle], middle as u64)
        .unwrap();
    file.set_modified(meta.modified().unwrap()).unwrap();
    drop(file);
    let now = fs::metadata(&stored).unwrap();
    assert_eq!(
        (now.len(), now.mtime(), now.mtime_nsec()),
        (meta.len(), meta.mtime(), meta.mtime_nsec())
    );
    // Settled again, so that only the memo's record of the change time tells it apart.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let _ = fs::remove_file(&image);
    let out = build();
    assert!(!out.status.success(), "a changed store file was seeded");
    assert!(show(&out).contains("the store recorded"), "{}", show(&out));
    assert!(!image.exists(), "an image was left behind");
}

/// Publishes a small arm64 snap `name` to beta, then changes one byte of the store's file
/// of it (same size): the store's own record no longer matches its file.
fn publish_then_change(w: &World, name: &str) {
    let stored = publish_small(w, name);
    let mut bytes = fs::read(&stored).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&stored, &bytes).unwrap();
}

/// Publishes a small arm64 snap `name` to beta; the store's file of it.
fn publish_small(w: &World, name: &str) -> PathBuf {
    let snap = w.pack(
        name,
        &[
            (
                "meta/snap.yaml",
                &format!("name: {name}\nversion: '1'\narchitectures: [arm64]\n"),
            ),
            ("data", &name.repeat(100_000)),
        ],
    );
    w.publish(&snap, name, "beta");
    let resolved = w.ok(&[
        "store",
        "resolve",
        w.store(),
        name,
        "-c",
        "beta",
        "-a",
        "arm64",
    ]);
    PathBuf::from(
        resolved
            .split_whitespace()
            .nth(2)
            .expect("the store's file of the snap"),
    )
}

/// Boots `image` with `coreforge boot` until the agent has verified the model and the seed.
fn boot_until_model(image: &Path, machine: &str) {
    let w = world();
    let out = w.run(&[
        "boot",
        image.to_str().unwrap(),
        "--machine",
        machine,
        "--timeout",
        "240",
        "--expect",
        "model verified: brand=acme model=",
        // The agent hashes every seeded snap against its snap-revision.
        "--expect",
        "seed verified: ",
    ]);
    assert!(out.status.success(), "boot on {machine}:\n{}", show(&out));
    let unexpected = coreforge_tests::unexpected_errors(&String::from_utf8_lossy(&out.stdout), &[]);
    assert!(
        unexpected.is_empty(),
        "boot on {machine}: unexpected error lines {unexpected:#?}:\n{}",
        show(&out)
    );
}

/// Builds an image for a fresh model and boots it on `machine` until the seed verifies.
fn build_and_boot(name: &str, arch: &str, gadget: &str, machine: &str) {
    let w = world();
    let model = w.model(name, arch, gadget, "");
    let image = w.path(&format!("{name}.img"));
    let out = w.build(&model, &image, &[]);
    assert!(out.status.success(), "{}", show(&out));
    boot_until_model(&image, machine);
    fs::remove_file(&image).unwrap();
}

#[test]
fn armhf_pi_image_boots_on_raspi2b() {
    build_and_boot("pi3-armhf", "armhf", "pi3", "raspi2b");
}

#[test]
fn virt_image_boots_on_virt() {
    build_and_boot("virt", "arm64", "qemu-virt", "virt");
}

#[test]
fn refuses_an_unsigned_or_tampered_model_and_writes_nothing() {
    let w = world();
    let model = w.model("tampered", "arm64", "pi3", "");
    let text = fs::read_to_string(&model)
        .unwrap()
        .replace("model: tampered", "model: tampereD");
    let bad = w.path("tampered-bad.model");
    fs::write(&bad, text).unwrap();
    let out_img = w.path("never.img");
    let err = w.refused(&bad, &out_img, "beta", &[]);
    assert!(
        err.contains("does not verify") && err.contains("signature"),
        "{err}"
    );
    // The JSON itself is not a signed model.
    let err = w.refused(&w.path("tampered.json"), &out_img, "beta", &[]);
    assert!(err.contains("cannot decode"), "{err}");
}

#[test]
fn refuses_a_kernel_missing_from_the_channel() {
    let w = world();
    let model = w.model("nokernel", "arm64", "pi3", "");
    // Released to beta only: stable has nothing to fall back to.
    let err = w.refused(&model, &w.path("nokernel.img"), "stable", &[]);
    assert!(err.contains("pi3") || err.contains("pi2-kernel"), "{err}");
    assert!(err.contains("stable"), "{err}");
}

#[test]
fn refuses_an_architecture_mismatch() {
    let w = world();
    let model = w.model("archmix", "arm64", "pi3", "");
    let out_img = w.path("archmix.img");
    let armhf_core = board_snap("core", "armhf");
    let err = w.refused(
        &model,
        &out_img,
        "beta",
        &["--extra-snaps", armhf_core.to_str().unwrap()],
    );
    // core is already the model's base: a second one is refused, not silently dropped.
    assert!(err.contains("core") && err.contains("already"), "{err}");
    let packed = w.pack(
        "foreign",
        &[(
            "meta/snap.yaml",
            "name: foreign\nversion: '1'\ntype: app\narchitectures: [armhf]\n",
        )],
    );
    let err = w.refused(
        &model,
        &out_img,
        "beta",
        &["--extra-snaps", packed.to_str().unwrap()],
    );
    assert!(
        err.contains("is for armhf") && err.contains("arm64"),
        "{err}"
    );
}

#[test]
fn refuses_a_corrupt_gadget_yaml() {
    let w = world();
    // A gadget with a broken gadget.yaml (a structure without a size), released to beta.
    let bad = w.pack(
        "badgadget",
        &[
            (
                "meta/snap.yaml",
                "name: badgadget\nversion: '1'\ntype: gadget\narchitectures: [arm64]\n",
            ),
            (
                "meta/gadget.yaml",
                "volumes:\n  pi:\n    schema: mbr\n    structure:\n      - name: system-boot\n        type: 0C\n        filesystem: vfat\n",
            ),
        ],
    );
    w.publish(&bad, "badgadget", "beta");
    let model = w.model("badgadget", "arm64", "badgadget", "");
    let err = w.refused(&model, &w.path("badgadget.img"), "beta", &[]);
    assert!(err.contains("gadget.yaml") && err.contains("size"), "{err}");
}

#[test]
fn refuses_local_snaps_for_a_model_that_is_not_dangerous() {
    let w = world();
    let model = w.model("nolocal", "arm64", "pi3", "");
    let core = board_snap("core", "arm64");
    let local = format!("core={}", core.display());
    let err = w.refused(&model, &w.path("nolocal.img"), "beta", &["--snap", &local]);
    assert!(err.contains("--snap") && err.contains("dangerous"), "{err}");
}

/// The same image from the store's directory and from the store served over HTTPS, with
/// only its roots given out of band: byte for byte (snaps downloaded by channel and
/// architecture, every assertion fetched and verified).
#[test]
fn an_image_from_the_served_store_is_the_one_from_its_directory() {
    let w = world();
    let server = common::serve(Path::new(w.store()), &w.path("tls"));
    let model = w.model("pi3-served", "arm64", "pi3", "");
    let local = w.path("pi3-local.img");
    let out = w.build(&model, &local, &[]);
    assert!(out.status.success(), "build-image:\n{}", show(&out));
    let cache = w.path("served-cache");
    let _ = fs::remove_dir_all(&cache);
    let served = w.path("pi3-served.img");
    let roots = Path::new(w.store()).join("root.assertions");
    let url = server.host_url();
    let args = [
        "build-image",
        "-c",
        "beta",
        "--store",
        &url,
        "--trusted",
        roots.to_str().unwrap(),
        "-o",
        served.to_str().unwrap(),
        model.to_str().unwrap(),
    ];
    let env = [
        ("SSL_CERT_FILE", server.ca.as_path()),
        ("COREFORGE_CACHE", cache.as_path()),
    ];
    let out = w.run_env(&args, &env);
    assert!(
        out.status.success(),
        "build-image from {url}:\n{}",
        show(&out)
    );
    assert!(
        fs::read(&local).unwrap() == fs::read(&served).unwrap(),
        "the images differ"
    );
    let downloads = fs::read_dir(cache.join("downloads")).unwrap().count();
    assert_eq!(downloads, 3, "gadget, kernel and base, cached by digest");
    // Without the roots nothing is trusted: refused before anything is fetched.
    let untrusted = w.run_env(
        &[
            "build-image",
            "-c",
            "beta",
            "--store",
            &url,
            "-o",
            served.to_str().unwrap(),
            model.to_str().unwrap(),
        ],
        &env,
    );
    assert!(!untrusted.status.success());
    assert!(
        show(&untrusted).contains("--trusted"),
        "{}",
        show(&untrusted)
    );
    fs::remove_file(&local).unwrap();
    fs::remove_file(&served).unwrap();
}

/// A served store that lies about a file (its bytes are not what it announced) makes
/// build-image fail with nothing written and nothing cached.
#[test]
fn a_served_store_that_lies_about_a_file_gets_no_image() {
    let w = world();
    publish_then_change(w, "liar");
    let server = common::serve(Path::new(w.store()), &w.path("tls"));
    let model = w.model("pi3-liar", "arm64", "pi3", "");
    let cache = w.path("liar-cache");
    let _ = fs::remove_dir_all(&cache);
    let image = w.path("pi3-liar.img");
    let roots = Path::new(w.store()).join("root.assertions");
    let url = server.host_url();
    let out = w.run_env(
        &[
            "build-image",
            "-c",
            "beta",
            "--store",
            &url,
            "--trusted",
            roots.to_str().unwrap(),
            "--extra-snaps",
            "liar",
            "-o",
            image.to_str().unwrap(),
            model.to_str().unwrap(),
        ],
        &[
            ("SSL_CERT_FILE", server.ca.as_path()),
            ("COREFORGE_CACHE", cache.as_path()),
        ],
    );
    assert!(!out.status.success(), "{}", show(&out));
    assert!(show(&out).contains("the store announced"), "{}", show(&out));
    assert!(!image.exists(), "a refused build left {}", image.display());
    let kept: Vec<_> = fs::read_dir(cache.join("downloads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(kept.len() <= 3, "the liar's file was kept: {kept:?}");
}
