//! Flashing to files: bytes equal, holes zero, the table written last, a read-back mismatch
//! caught, refusals. Block devices and bmaptool: host-tools/tests/flash.rs.

use std::cell::RefCell;
use std::fs;

use super::*;

/// A 24 MiB sparse image: an MBR signature in sector 0, data at 1 MiB and 9-13 MiB, and
/// a last block cut short.
fn image(dir: &Path) -> PathBuf {
    let path = dir.join("img");
    let f = File::create(&path).unwrap();
    f.set_len((24 << 20) + 1000).unwrap();
    let mut mbr = vec![0u8; 512];
    mbr[446] = 0x80;
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    f.write_all_at(&mbr, 0).unwrap();
    f.write_all_at(&[1u8; 4096], 1 << 20).unwrap();
    let data: Vec<u8> = (0..(4 << 20) + 123).map(|i| (i % 251) as u8).collect();
    f.write_all_at(&data, 9 << 20).unwrap();
    f.write_all_at(b"end", 24 << 20).unwrap();
    path
}

fn no_progress(_: u64, _: u64) {}

fn nothing(_: &File) {}

#[test]
fn a_file_target_gets_the_image_with_holes_as_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let plan = Plan::new(&img, None).unwrap();
    assert_eq!(plan.ranges.len(), 4, "{:?}", plan.ranges);
    assert!(plan.mapped_bytes() < 6 << 20);
    let out = dir.path().join("card");
    let target = check_target(&out, plan.image_size, true).unwrap();
    let report = flash(&img, &target, &plan, &no_progress, &nothing).unwrap();
    assert_eq!(read_all(&out), read_all(&img));
    assert_eq!(report.verified, plan.ranges.len() + plan.tables.len());
    // What was not written is a hole in the file too: the data ranges, and the table
    // region at the start (written whole, zeros first).
    let written = File::open(&out).unwrap();
    let got = bmap::data_ranges(&written, bmap::BLOCK_SIZE).unwrap();
    assert_eq!(got[1..], plan.ranges[1..]);
    assert_eq!(
        got[0],
        (0, TABLE_HEAD.div_ceil(bmap::BLOCK_SIZE) * bmap::BLOCK_SIZE)
    );
}

#[test]
fn the_partition_table_is_written_last() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let out = dir.path().join("card");
    // An old card: it looks bootable before the flash starts.
    fs::write(&out, vec![0xaau8; 1024]).unwrap();
    let plan = Plan::new(&img, None).unwrap();
    let target = check_target(&out, plan.image_size, true).unwrap();
    let seen = RefCell::new(Vec::new());
    let watch = |done: u64, _total: u64| {
        let mut sector = [0u8; 512];
        File::open(&out)
            .unwrap()
            .read_exact_at(&mut sector, 0)
            .unwrap();
        seen.borrow_mut()
            .push((done, sector[510..512] == [0x55, 0xaa]));
    };
    flash(&img, &target, &plan, &watch, &nothing).unwrap();
    let seen = seen.into_inner();
    let data = plan.mapped_bytes() - TABLE_HEAD.min(plan.mapped_bytes());
    // While the data is written, the card has no partition table; after, it has.
    let during: Vec<bool> = seen
        .iter()
        .filter(|(d, _)| *d <= data)
        .map(|s| s.1)
        .collect();
    assert!(!during.is_empty() && during.iter().all(|b| !b), "{seen:?}");
    assert_eq!(seen.last().map(|s| s.1), Some(true), "{seen:?}");
}

#[test]
fn a_read_back_mismatch_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let out = dir.path().join("card");
    let plan = Plan::new(&img, None).unwrap();
    let target = check_target(&out, plan.image_size, true).unwrap();
    let damage = |f: &File| {
        f.write_all_at(b"bit rot", (9 << 20) + 77).unwrap();
        f.sync_all().unwrap();
    };
    let e = flash(&img, &target, &plan, &no_progress, &damage).unwrap_err();
    assert!(matches!(e, FlashError::Mismatch { .. }), "{e}");
    assert!(
        e.to_string().contains("does not hold what was written"),
        "{e}"
    );
}

#[test]
fn a_file_is_written_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("card");
    fs::write(&out, b"precious").unwrap();
    let e = check_target(&out, 1 << 20, false).unwrap_err();
    assert!(matches!(e, FlashError::NotABlockDevice(_)), "{e}");
    assert!(e.to_string().contains("--force"), "{e}");
    assert_eq!(fs::read(&out).unwrap(), b"precious");
}

#[test]
fn gpt_images_hold_back_both_tables() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    File::options()
        .write(true)
        .open(&img)
        .unwrap()
        .write_all_at(b"EFI PART", 512)
        .unwrap();
    let plan = Plan::new(&img, None).unwrap();
    let size = plan.image_size;
    assert_eq!(plan.tables, [(0, TABLE_HEAD), (size - TABLE_TAIL, size)]);
    assert_eq!(
        outside(0, size, &plan.tables),
        [(TABLE_HEAD, size - TABLE_TAIL)]
    );
}

#[test]
fn an_image_that_differs_from_its_bmap_gets_no_partition_table() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let map_path = dir.path().join("img.bmap");
    fs::write(&map_path, bmap::create(&img).unwrap()).unwrap();
    let map = bmap::read(&map_path).unwrap();
    // The image changes after its bmap was made.
    File::options()
        .write(true)
        .open(&img)
        .unwrap()
        .write_all_at(b"changed", (9 << 20) + 5)
        .unwrap();
    let plan = Plan::new(&img, Some(&map)).unwrap();
    let out = dir.path().join("card");
    let target = check_target(&out, plan.image_size, true).unwrap();
    let e = flash(&img, &target, &plan, &no_progress, &nothing).unwrap_err();
    assert!(matches!(e, FlashError::ImageChanged { .. }), "{e}");
    assert!(e.to_string().contains("will not boot"), "{e}");
    let card = read_all(&out);
    assert!(
        card[..512].iter().all(|b| *b == 0),
        "a partition table was written"
    );
}

/// A loop device over a fresh file of `size` bytes (root and losetup; `None` outside CI
/// without them, a failure in CI).
fn loop_device(dir: &Path, size: u64) -> Option<(PathBuf, PathBuf)> {
    let backing = dir.join("card");
    File::create(&backing).unwrap().set_len(size).unwrap();
    let out = std::process::Command::new("losetup")
        .args(["--find", "--show"])
        .arg(&backing)
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let device = String::from_utf8(o.stdout).unwrap().trim().to_owned();
            Some((PathBuf::from(device), backing))
        }
        other => {
            let why = format!("losetup (as root) failed: {other:?}");
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("skipping outside CI: {why}");
            None
        }
    }
}

#[test]
fn the_read_back_reads_the_card_not_what_was_cached_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let plan = Plan::new(&img, None).unwrap();
    let Some((device, backing)) = loop_device(dir.path(), plan.image_size + (1 << 20)) else {
        return;
    };
    let detach = scopeguard(&device);
    let target = check_target(&device, plan.image_size, false).unwrap();
    // The damage goes to the medium under the device, not through it: whatever the
    // kernel cached of the device still holds the good bytes.
    let damage = |_: &File| {
        let f = OpenOptions::new().write(true).open(&backing).unwrap();
        f.write_all_at(b"bit rot", (10 << 20) + 4096).unwrap();
        f.sync_all().unwrap();
    };
    let e = flash(&img, &target, &plan, &no_progress, &damage).unwrap_err();
    assert!(
        matches!(e, FlashError::Mismatch { start, .. } if start == 9 << 20),
        "{e}"
    );
    drop(detach);
}

/// Detaches the loop device when dropped.
fn scopeguard(device: &Path) -> impl Drop + '_ {
    struct Detach<'a>(&'a Path);
    impl Drop for Detach<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("losetup")
                .arg("-d")
                .arg(self.0)
                .status();
        }
    }
    Detach(device)
}
