//! GPT disks made by util-linux's `sfdisk` in image files, grown here, then checked by
//! `sfdisk --verify` and `sfdisk -J` and by reading them back as Linux does.

use super::*;
use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const MIB: u64 = 1 << 20;
/// The writable partition of every test disk.
const START: u64 = 22_528;
const OLD_SIZE: u64 = 40_960;
/// The disk every test grows to: 150 MiB and 12,345 sectors, not a multiple of 1 MiB.
const GROWN: u64 = 150 * MIB + 12_345 * SECTOR;

/// Whether sfdisk runs; without it the test is skipped, unless `CI` is set.
fn have_sfdisk() -> bool {
    if Command::new("sfdisk").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "sfdisk (package fdisk) is missing: run cross/setup.sh"
    );
    eprintln!("skipped: sfdisk (package fdisk) is missing");
    false
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cf-gpt-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn sfdisk(args: &[&str], disk: &Path) -> std::process::Output {
    Command::new("sfdisk")
        .args(args)
        .arg(disk)
        .output()
        .unwrap()
}

/// A 100 MiB GPT disk image by sfdisk: an ESP, then `writable` at [`START`], of
/// `writable` (`size=N` or nothing: to the end). `header` adds sfdisk header lines
/// (`first-lba: 34` is what `coreforge build-image` writes; sfdisk's own is 2048).
fn image(dir: &Path, header: &str, writable: &str) -> PathBuf {
    let path = dir.join("disk.img");
    fs::File::create(&path).unwrap().set_len(100 * MIB).unwrap();
    let script = format!(
        "label: gpt\n{header}start=2048, size=20480, type=uefi, name=system-boot\n\
         start={START}, {writable} type=linux, name=writable\n"
    );
    let mut child = Command::new("sfdisk")
        .args(["-q", "--no-reread", "--no-tell-kernel"])
        .arg(&path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    path
}

fn enlarge(path: &Path, len: u64) -> File {
    let f = File::options().read(true).write(true).open(path).unwrap();
    f.set_len(len).unwrap();
    f
}

fn sectors(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len() / SECTOR
}

/// `sfdisk -J`'s table.
fn json(path: &Path) -> Value {
    let out = sfdisk(&["-J"], path);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["partitiontable"].clone()
}

/// `sfdisk --verify` finds nothing wrong.
fn verified(path: &Path) -> Result<(), String> {
    let out = sfdisk(&["--verify"], path);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.contains("No errors detected") && !text.contains("mismatch") {
        Ok(())
    } else {
        Err(text)
    }
}

/// What Linux's partition code (block/partitions/efi.c, without `gpt` on the command
/// line) requires to see any partition: a primary header and entries whose checksums
/// match, within the disk. Returns the (first, last) LBA of each used entry.
fn linux_reads(disk: &File, disk_sectors: u64) -> Result<Vec<(u64, u64)>, String> {
    let mut h = [0u8; 512];
    disk.read(&mut h, 1).map_err(|e| e.to_string())?;
    Header::check(h, 1)?;
    let h = Header(h);
    if h.first_usable() > disk_sectors - 1 || h.last_usable() > disk_sectors - 1 {
        return Err("usable range past the disk".into());
    }
    let e = read_entries(disk, &h)
        .map_err(|e| e.to_string())?
        .ok_or("entries checksum")?;
    let (bytes, _) = h.entries_len();
    Ok(e[..bytes]
        .chunks(h.entry_size())
        .filter(|e| e[..16].iter().any(|&b| b != 0))
        .map(|e| (le64(e, 32), le64(e, 40)))
        .collect())
}

/// Both copies of the table, read back: valid, the backup in the disk's last sector and
/// agreeing with the primary.
fn both_copies(disk: &File, disk_sectors: u64) -> Vec<(u64, u64)> {
    let parts = linux_reads(disk, disk_sectors).unwrap();
    let primary = Header::read(disk, 1).unwrap().unwrap();
    let backup = Header::read(disk, disk_sectors - 1)
        .unwrap()
        .expect("backup at the end");
    assert_eq!(primary.alternate(), disk_sectors - 1);
    assert_eq!(backup.alternate(), 1);
    assert_eq!(primary.entries_lba(), HOME);
    assert_eq!(
        backup.entries_lba() + backup.entries_len().1,
        disk_sectors - 1
    );
    assert_eq!(
        (
            primary.first_usable(),
            primary.last_usable(),
            primary.entries_crc()
        ),
        (
            backup.first_usable(),
            backup.last_usable(),
            backup.entries_crc()
        )
    );
    assert_eq!(
        read_entries(disk, &backup).unwrap(),
        read_entries(disk, &primary).unwrap()
    );
    parts
}

#[test]
fn crc32_is_the_ieee_one() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

/// sfdisk's layout (first usable LBA 2048) and build-image's (34, so the staging sectors
/// are in the usable range and the first usable LBA moves while they hold the table).
#[test]
fn grows_writable_and_moves_the_backup_to_the_end_of_an_odd_sized_disk() {
    if !have_sfdisk() {
        return;
    }
    for (name, header, first) in [("sfdisk", "", 2048), ("host", "first-lba: 34\n", 34)] {
        let dir = temp(name);
        let path = image(&dir, header, &format!("size={OLD_SIZE},"));
        let before = json(&path);
        let disk = enlarge(&path, GROWN);
        let n = sectors(&path);
        let last_usable = n - 34;
        assert_eq!(
            grow(&disk, START, n).unwrap(),
            Some(last_usable + 1 - START)
        );
        drop(disk);

        verified(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let after = json(&path);
        assert_eq!(after["lastlba"], last_usable, "{name}");
        assert_eq!(after["firstlba"], first, "{name}");
        let (b, a) = (&before["partitions"], &after["partitions"]);
        assert_eq!(a[0], b[0], "{name}: the ESP is untouched");
        assert_eq!(a[1]["size"], last_usable + 1 - START, "{name}");
        for key in ["start", "type", "uuid", "name"] {
            assert_eq!(a[1][key], b[1][key], "{name}: {key}");
        }
        assert_eq!(after["id"], before["id"], "{name}");

        let disk = File::options().read(true).write(true).open(&path).unwrap();
        let parts = both_copies(&disk, n);
        assert_eq!(parts, [(2048, 22_527), (START, last_usable)], "{name}");
        let mut mbr = [0u8; 512];
        disk.read(&mut mbr, 0).unwrap();
        assert_eq!(
            le32(&mbr, 446 + 12),
            (n - 1) as u32,
            "{name}: protective MBR size"
        );

        // The next boot finds nothing to do and writes nothing.
        let grown = fs::read(&path).unwrap();
        assert_eq!(grow(&disk, START, n).unwrap(), None, "{name}");
        assert!(fs::read(&path).unwrap() == grown, "{name}: written again");
        fs::remove_dir_all(&dir).unwrap();
    }
}

/// A disk whose power is cut after `left` writes: the write that is cut lands in part
/// (its first half of sectors: a sector is written whole or not at all), then every
/// access fails.
struct Cut<'a> {
    file: &'a File,
    left: Cell<usize>,
    writes: Cell<usize>,
}

impl Disk for Cut<'_> {
    fn read(&self, buf: &mut [u8], lba: u64) -> io::Result<()> {
        self.file.read(buf, lba)
    }
    fn write(&self, buf: &[u8], lba: u64) -> io::Result<()> {
        self.writes.set(self.writes.get() + 1);
        if self.left.get() == 0 {
            let half = (buf.len() as u64 / SECTOR / 2 * SECTOR) as usize;
            self.file.write(&buf[..half], lba)?;
            return Err(io::Error::other("power cut"));
        }
        self.left.set(self.left.get() - 1);
        self.file.write(buf, lba)
    }
    fn flush(&self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A cut after any write leaves a table Linux reads, with the partitions where they
/// were (writable at its old size or grown), and the next boot ends with the very disk
/// an uncut grow makes.
#[test]
fn a_power_cut_at_any_write_leaves_a_readable_table_and_the_next_boot_finishes() {
    if !have_sfdisk() {
        return;
    }
    for (name, header) in [("cut-sfdisk", ""), ("cut-host", "first-lba: 34\n")] {
        let dir = temp(name);
        let fresh = image(&dir, header, &format!("size={OLD_SIZE},"));
        drop(enlarge(&fresh, GROWN));
        let n = sectors(&fresh);
        let new = n - 34 + 1 - START;

        let reference = dir.join("reference.img");
        fs::copy(&fresh, &reference).unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .open(&reference)
            .unwrap();
        let uncut = Cut {
            file: &file,
            left: Cell::new(usize::MAX),
            writes: Cell::new(0),
        };
        assert_eq!(grow(&uncut, START, n).unwrap(), Some(new));
        let writes = uncut.writes.get();
        assert_eq!(writes, 7, "{name}: MBR, backup (2), staged (2), home (2)");
        let reference = fs::read(&reference).unwrap();

        for left in 0..writes {
            let path = dir.join(format!("cut-{left}.img"));
            fs::copy(&fresh, &path).unwrap();
            let file = File::options().read(true).write(true).open(&path).unwrap();
            let cut = Cut {
                file: &file,
                left: Cell::new(left),
                writes: Cell::new(0),
            };
            let err = grow(&cut, START, n).unwrap_err();
            assert!(matches!(err, GptError::Io(_)), "{name}/{left}: {err}");

            let parts = linux_reads(&file, n).unwrap_or_else(|e| panic!("{name}/{left}: {e}"));
            assert_eq!(parts[0], (2048, 22_527), "{name}/{left}");
            assert!(
                parts[1] == (START, START + OLD_SIZE - 1) || parts[1] == (START, START + new - 1),
                "{name}/{left}: {parts:?}"
            );
            // Once the primary points at the new backup (write 5 on), sfdisk finds nothing
            // wrong; before, what it finds is what the enlarged disk had before any write.
            if left >= 5 {
                verified(&path).unwrap_or_else(|e| panic!("{name}/{left}: {e}"));
            }
            // sfdisk reads it too, the same way.
            let table = json(&path);
            assert_eq!(
                table["partitions"][1]["size"],
                parts[1].1 + 1 - START,
                "{name}/{left}"
            );

            // The next boot.
            assert_eq!(grow(&file, START, n).unwrap(), Some(new), "{name}/{left}");
            assert!(
                fs::read(&path).unwrap() == reference,
                "{name}/{left}: not the uncut result"
            );
            verified(&path).unwrap_or_else(|e| panic!("{name}/{left}: {e}"));
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_damaged_primary_is_refused_and_nothing_is_written() {
    if !have_sfdisk() {
        return;
    }
    let dir = temp("damaged");
    let path = image(&dir, "", &format!("size={OLD_SIZE},"));
    let disk = enlarge(&path, GROWN);
    let n = sectors(&path);
    // A bit of the disk GUID (header), then of writable's name (entries).
    for (offset, what) in [
        (SECTOR + 60, "header checksum"),
        (2 * SECTOR + 128 + 60, "entry array checksum"),
    ] {
        let mut byte = [0u8];
        disk.read_exact_at(&mut byte, offset).unwrap();
        disk.write_all_at(&[byte[0] ^ 1], offset).unwrap();
        let damaged = fs::read(&path).unwrap();
        let err = grow(&disk, START, n).unwrap_err();
        assert!(
            matches!(err, GptError::BadPrimary(w) if w.contains(what)),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("damaged") && text.contains("sfdisk --verify"),
            "{text}"
        );
        assert!(fs::read(&path).unwrap() == damaged, "{what}: written");
        disk.write_all_at(&byte, offset).unwrap();
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_disk_at_full_size_is_left_alone() {
    if !have_sfdisk() {
        return;
    }
    let dir = temp("full");
    let path = image(&dir, "", ""); // writable to the end
    let disk = File::options().read(true).write(true).open(&path).unwrap();
    let before = fs::read(&path).unwrap();
    assert_eq!(grow(&disk, START, sectors(&path)).unwrap(), None);
    assert!(fs::read(&path).unwrap() == before);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn refuses_what_it_cannot_grow() {
    if !have_sfdisk() {
        return;
    }
    let dir = temp("refused");
    let path = image(&dir, "", &format!("size={OLD_SIZE},"));
    let disk = enlarge(&path, GROWN);
    let n = sectors(&path);
    let before = fs::read(&path).unwrap();
    assert!(matches!(grow(&disk, 2048, n), Err(GptError::NotLast(1))));
    assert!(matches!(
        grow(&disk, 4096, n),
        Err(GptError::NotFound(4096))
    ));
    // The disk as the table says, minus one sector: smaller than the table.
    assert!(matches!(
        grow(&disk, START, 100 * MIB / SECTOR - 1),
        Err(GptError::DiskTooSmall(_))
    ));
    assert!(fs::read(&path).unwrap() == before);
    let mut mbr = [0u8; 512];
    disk.read(&mut mbr, 0).unwrap();
    assert!(is_protective(&mbr));
    fs::remove_dir_all(&dir).unwrap();
}
