//! `build-image --preseed/--sso-url/--tls-roots`: the files land where the agent reads them
//! (console-conf.json at the root of the boot partition; /etc/coreforge/sso-url and
//! /etc/coreforge/tls-roots.pem in the initramfs), with the documented defaults, and bad input
//! is refused with the field named and nothing written at `-o`.
//!
//! Needs what the walk-through needs (see tests/common/world.rs).

mod common;
use common::show;
use common::world::{fat_read, mbr, mtools, world};

use std::fs;
use std::path::{Path, PathBuf};

const HOST_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm7PaMTzm4Q5o6dmwFT3NyP4o8bVPOgHVBgHK2nHwYn alice@laptop";

/// A fresh self-signed CA certificate in PEM, as a test SSO server would use.
fn test_ca_pem() -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "coreforge test CA");
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

/// The `(path, data)` of each regular file in `newc` cpio archives one after the other (as
/// the kernel reads them: build-image's initramfs is the agent-and-modules archive, then the
/// image's own).
fn cpio_files(mut bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let field = |h: &[u8], i: usize| {
        usize::from_str_radix(std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).unwrap(), 16).unwrap()
    };
    let pad4 = |n: usize| n.div_ceil(4) * 4;
    let mut out = Vec::new();
    loop {
        assert_eq!(&bytes[..6], b"070701", "not a newc header");
        let (mode, size, namesize) = (field(bytes, 1), field(bytes, 6), field(bytes, 11));
        let name = std::str::from_utf8(&bytes[110..110 + namesize - 1])
            .unwrap()
            .to_owned();
        if name == "TRAILER!!!" {
            bytes = &bytes[pad4(110 + namesize)..];
            // The next archive, after the zeros that pad this one.
            let next = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
            bytes = &bytes[next..];
            if bytes.is_empty() {
                return out;
            }
            continue;
        }
        let data_at = pad4(110 + namesize);
        if mode & 0o170000 == 0o100000 {
            out.push((name, bytes[data_at..data_at + size].to_vec()));
        }
        bytes = &bytes[pad4(data_at + size)..];
    }
}

/// The built image's boot partition offset and its initramfs files.
fn inspect(image: &Path) -> (u64, Vec<(String, Vec<u8>)>) {
    let boot = mbr(image)[0].1;
    let initrd = fat_read(image, boot, "initrd.img");
    let cpio = zstd::decode_all(initrd.as_slice()).unwrap();
    (boot, cpio_files(&cpio))
}

fn member<'a>(files: &'a [(String, Vec<u8>)], path: &str) -> &'a [u8] {
    files
        .iter()
        .find(|(p, _)| p == path)
        .map(|(_, d)| d.as_slice())
        .unwrap_or_else(|| panic!("{path} is not in the initramfs"))
}

fn write(name: &str, text: &str) -> PathBuf {
    let p = world().path(name);
    fs::write(&p, text).unwrap();
    p
}

fn virt_model() -> PathBuf {
    world().model("firstboot", "arm64", "qemu-virt", "")
}

#[test]
fn preseed_sso_url_and_tls_roots_land_where_the_agent_reads_them() {
    let w = world();
    let model = virt_model();
    let preseed = format!(
        r#"{{"network": {{"interface": "eth0", "method": "dhcp"}},
            "identity": {{"username": "alice", "ssh-keys": ["{KEY}"]}}}}"#
    );
    let preseed_file = write("good-preseed.json", &preseed);
    let pem = test_ca_pem();
    let roots = write("test-ca.pem", &pem);
    let image = w.path("firstboot.img");
    let out = w.build(
        &model,
        &image,
        &[
            "--preseed",
            preseed_file.to_str().unwrap(),
            "--sso-url",
            "https://10.0.2.2:8443/",
            "--tls-roots",
            roots.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "build-image:\n{}", show(&out));
    let (boot, files) = inspect(&image);
    assert_eq!(
        fat_read(&image, boot, "console-conf.json"),
        preseed.as_bytes(),
        "the preseed file is copied as given"
    );
    assert_eq!(
        member(&files, "etc/coreforge/sso-url"),
        b"https://10.0.2.2:8443\n"
    );
    assert_eq!(
        member(&files, "etc/coreforge/tls-roots.pem"),
        pem.as_bytes()
    );
    // Still the agent's initramfs: /init and the trusted roots are there too.
    assert!(member(&files, "init").starts_with(b"\x7fELF"));
    assert!(files
        .iter()
        .any(|(p, _)| p.starts_with("etc/coreforge/trusted/")));
    fs::remove_file(&image).unwrap();
}

#[test]
fn defaults_are_the_real_sso_service_and_the_build_hosts_roots() {
    let w = world();
    let image = w.path("firstboot-defaults.img");
    let out = w.build(&virt_model(), &image, &[]);
    let Ok(host_roots) = fs::read(HOST_ROOTS) else {
        // A build host without ca-certificates: a clear refusal, and no image.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(HOST_ROOTS) && err.contains("--tls-roots"),
            "{}",
            show(&out)
        );
        assert!(!image.exists());
        return;
    };
    assert!(out.status.success(), "build-image:\n{}", show(&out));
    let (boot, files) = inspect(&image);
    assert_eq!(
        member(&files, "etc/coreforge/sso-url"),
        b"https://login.ubuntu.com\n"
    );
    assert_eq!(member(&files, "etc/coreforge/tls-roots.pem"), host_roots);
    let listing = String::from_utf8(mtools(&image, boot, &["-/", "-b", "::"], "mdir")).unwrap();
    assert!(
        !listing.to_ascii_lowercase().contains("console-conf.json"),
        "no preseed asked for, none placed:\n{listing}"
    );
    fs::remove_file(&image).unwrap();
}

#[test]
fn bad_preseed_files_are_refused_with_the_field_named_and_nothing_written() {
    let w = world();
    let model = virt_model();
    let out_img = w.path("never-preseed.img");
    let dhcp = r#""network": {"interface": "eth0", "method": "dhcp"}"#;
    let cases = [
        (
            format!(r#"{{{dhcp}, "identity": "gh:alice", "hostname": "pi"}}"#),
            "hostname: unknown field",
        ),
        (
            r#"{"network": {"interface": "eth0", "method": "static", "address": "192.168.1.10/33"},
                "identity": "gh:alice"}"#
                .to_owned(),
            "network.address",
        ),
        (
            format!(
                r#"{{{dhcp}, "wifi": {{"interface": "wlan0", "ssid": "home", "psk": "abc"}},
                    "identity": "gh:alice"}}"#
            ),
            "wifi.psk",
        ),
        (
            format!(r#"{{{dhcp}, "identity": 7}}"#),
            "identity: expected",
        ),
        (
            // Shaped like a key, but its base64 body is cut short: only ssh-key sees it.
            format!(
                r#"{{{dhcp}, "identity": {{"username": "alice", "ssh-keys": ["{KEY}", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm7 bob"]}}}}"#
            ),
            "identity.ssh-keys[1]",
        ),
        ("network: dhcp".to_owned(), "not valid JSON"),
    ];
    for (i, (text, field)) in cases.iter().enumerate() {
        let file = write(&format!("bad-preseed-{i}.json"), text);
        let err = w.refused(
            &model,
            &out_img,
            "beta",
            &["--preseed", file.to_str().unwrap()],
        );
        assert!(err.contains(field), "case {i}: want {field:?} in:\n{err}");
        assert!(err.contains("--preseed"), "case {i}: {err}");
    }
    let err = w.refused(
        &model,
        &out_img,
        "beta",
        &["--preseed", w.path("no-such.json").to_str().unwrap()],
    );
    assert!(err.contains("no-such.json"), "{err}");
}

#[test]
fn bad_tls_roots_and_sso_urls_are_refused_and_nothing_written() {
    let w = world();
    let model = virt_model();
    let out_img = w.path("never-tls.img");
    let key = write(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
    );
    let empty = write("empty.pem", "no certificates here\n");
    let broken = write(
        "broken.pem",
        &format!(
            "{}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            test_ca_pem()
        ),
    );
    for (file, want) in [
        (&key, "not a CERTIFICATE"),
        (&empty, "no PEM certificate"),
        (&broken, "certificate 2 does not parse"),
        (&w.path("missing.pem"), "cannot read"),
    ] {
        let err = w.refused(
            &model,
            &out_img,
            "beta",
            &["--tls-roots", file.to_str().unwrap()],
        );
        assert!(err.contains(want) && err.contains("--tls-roots"), "{err}");
    }
    for url in ["http://login.ubuntu.com", "login.ubuntu.com", "https://"] {
        let err = w.refused(&model, &out_img, "beta", &["--sso-url", url]);
        assert!(err.contains("--sso-url") && err.contains("HTTPS"), "{err}");
    }
}
