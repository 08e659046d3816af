//! Seed reading and verification against snapd's vectors, read in place.

use super::*;

/// snapd's vectors (`../shared/vectors/snapd/` from the workspace root).
fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/snapd")
}

fn vector(name: &str) -> Vec<u8> {
    let path = vectors().join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh folder for one test.
fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cf-agent-seed-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Concatenates assertion files into one stream, a blank line between them, as the image
/// builder writes them.
fn stream(names: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in names {
        if !out.is_empty() {
            out.extend_from_slice(b"\n\n");
        }
        out.extend_from_slice(&vector(name));
    }
    out
}

/// An initramfs's trusted folder: testrootorg's root key and account, one file each.
fn testrootorg_roots(dir: &Path) -> PathBuf {
    let trusted = dir.join("trusted");
    fs::create_dir_all(&trusted).unwrap();
    fs::write(
        trusted.join("root.assertion"),
        vector("roots/testrootorg-root.account-key"),
    )
    .unwrap();
    fs::write(
        trusted.join("testrootorg.assertion"),
        vector("roots/testrootorg.account"),
    )
    .unwrap();
    trusted
}

const CHAIN: [&str; 3] = [
    "roots/testrootorg-store.account-key",
    "developer1.account",
    "developer1.account-key",
];

/// A seed holding `model` at `systems/20240101/` and `files` under its `assertions/`.
fn seed(dir: &Path, model: &[u8], files: &[(&str, Vec<u8>)]) -> PathBuf {
    let system = dir.join("seed/systems/20240101");
    fs::create_dir_all(system.join("assertions")).unwrap();
    fs::write(system.join("model"), model).unwrap();
    for (name, bytes) in files {
        fs::write(system.join("assertions").join(name), bytes).unwrap();
    }
    system
}

fn verify_seed(system: &Path, trusted: &Path) -> Result<Verified, Failure> {
    verify(&read(system)?, trusted)
}

/// The verification error inside a failure, if it is one.
fn unverified(e: &Failure) -> Option<&VerifyError> {
    match e {
        Failure::Unverified { error, .. } => Some(error),
        _ => None,
    }
}

#[test]
fn every_developer1_model_verifies_with_the_chain_in_model_etc() {
    let dir = temp("all-models");
    let trusted = testrootorg_roots(&dir);
    let mut seen = 0;
    for entry in fs::read_dir(vectors().join("models")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("model") {
            continue;
        }
        seen += 1;
        let bytes = fs::read(&path).unwrap();
        let system = seed(&dir, &bytes, &[("model-etc", stream(&CHAIN))]);
        let found = read(&system).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(found.model.brand_id, "developer1", "{}", path.display());
        let v = verify(&found, &trusted).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let key = found.assertion.sign_key_id().to_owned();
        assert_eq!(
            verified_line(&v, &found.model),
            format!(
                "model verified: brand=developer1 model={} signed by developer1 (key {key})",
                found.model.model
            )
        );
        // The chain runs from developer1's key through the store key to the root.
        assert_eq!(v.chain().len(), 3, "{:?}", v.chain());
        assert_eq!(v.chain()[0], key);
    }
    assert!(seen >= 4, "expected the snapd model vectors");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn roots_may_come_as_one_stream_and_the_chain_from_the_snaps_file() {
    let dir = temp("streams");
    let trusted = dir.join("trusted");
    fs::create_dir_all(&trusted).unwrap();
    fs::write(
        trusted.join("testrootorg.assertion"),
        stream(&[
            "roots/testrootorg.account",
            "roots/testrootorg-root.account-key",
        ]),
    )
    .unwrap();
    // Not an *.assertion file: ignored, even though it would not decode.
    fs::write(trusted.join("README"), "not an assertion").unwrap();
    let system = seed(
        &dir,
        &vector("models/developer1-20-signed.model"),
        &[
            ("model-etc", stream(&CHAIN[1..2])),
            ("snaps", stream(&[CHAIN[0], CHAIN[2]])),
        ],
    );
    let v = verify_seed(&system, &trusted).unwrap();
    assert_eq!(v.signer(), "developer1");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_tampered_model_does_not_verify() {
    let dir = temp("tampered");
    let trusted = testrootorg_roots(&dir);
    let text = String::from_utf8(vector("models/developer1-pc.model")).unwrap();
    let tampered = text.replace("gadget: pc\n", "gadget: pd\n");
    assert_ne!(text, tampered);
    let system = seed(&dir, tampered.as_bytes(), &[("model-etc", stream(&CHAIN))]);
    let e = verify_seed(&system, &trusted).unwrap_err();
    assert!(
        matches!(unverified(&e), Some(VerifyError::BadSignature(_))),
        "{e:?}"
    );
    let line = format!("{e} — {}", e.todo());
    assert!(
        line.starts_with("model developer1/my-model does not verify: failed signature"),
        "{line}"
    );
    assert!(
        line.contains("signed by a key registered in the store"),
        "{line}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_chain_does_not_verify() {
    let dir = temp("no-chain");
    let trusted = testrootorg_roots(&dir);
    let model = vector("models/developer1-pc.model");
    // No model-etc at all: developer1's key is unknown.
    let system = seed(&dir, &model, &[]);
    let e = verify_seed(&system, &trusted).unwrap_err();
    assert!(
        matches!(unverified(&e), Some(VerifyError::UnknownKey { .. })),
        "{e:?}"
    );
    // The key but not the store key that signed it: the chain breaks one link up.
    fs::write(system.join("assertions/model-etc"), stream(&CHAIN[1..])).unwrap();
    let e = verify_seed(&system, &trusted).unwrap_err();
    assert!(
        matches!(unverified(&e), Some(VerifyError::Chain { .. })),
        "{e:?}"
    );
    // The whole chain, but anchored in another root than the one trusted.
    let canonical = dir.join("canonical");
    fs::create_dir_all(&canonical).unwrap();
    fs::write(
        canonical.join("root.assertion"),
        stream(&[
            "roots/canonical-root.account-key",
            "roots/canonical.account",
        ]),
    )
    .unwrap();
    fs::write(system.join("assertions/model-etc"), stream(&CHAIN)).unwrap();
    assert!(verify_seed(&system, &trusted).is_ok());
    let e = verify_seed(&system, &canonical).unwrap_err();
    assert!(matches!(&e, Failure::Unverified { .. }), "{e:?}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_trusted_roots_is_an_error() {
    let dir = temp("no-roots");
    let system = seed(
        &dir,
        &vector("models/developer1-pc.model"),
        &[("model-etc", stream(&CHAIN))],
    );
    let empty = dir.join("empty");
    fs::create_dir_all(&empty).unwrap();
    fs::write(empty.join("roots.txt"), vector("roots/testrootorg.account")).unwrap();
    for trusted in [dir.join("missing"), empty] {
        let e = verify_seed(&system, &trusted).unwrap_err();
        assert!(matches!(e, Failure::NoRoots { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "model developer1/my-model does not verify: no trusted roots in the initramfs \
                 ({TRUSTED_DIR} has no *.assertion files)"
            )
        );
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_files_are_named() {
    let dir = temp("malformed");
    let trusted = testrootorg_roots(&dir);
    let model = vector("models/developer1-pc.model");
    let system = seed(&dir, &model, &[("model-etc", b"type: account\n".to_vec())]);
    let e = verify_seed(&system, &trusted).unwrap_err();
    let etc = system.join("assertions/model-etc");
    assert!(
        matches!(&e, Failure::MalformedSeed { path, .. } if *path == etc),
        "{e:?}"
    );
    assert!(e.to_string().contains(&etc.display().to_string()), "{e}");

    fs::write(&etc, stream(&CHAIN)).unwrap();
    fs::write(system.join("assertions/snaps"), b"\n\ngarbage\n").unwrap();
    let e = verify_seed(&system, &trusted).unwrap_err();
    assert!(
        matches!(&e, Failure::MalformedSeed { path, .. } if path.ends_with("assertions/snaps")),
        "{e:?}"
    );

    fs::remove_file(system.join("assertions/snaps")).unwrap();
    let bad_root = trusted.join("broken.assertion");
    fs::write(&bad_root, b"sign-key-sha3-384: x\n\nsig").unwrap();
    let e = verify_seed(&system, &trusted).unwrap_err();
    assert!(
        matches!(&e, Failure::MalformedRoot { path, .. } if *path == bad_root),
        "{e:?}"
    );
    assert!(e.todo().ends_with("then reboot"), "{}", e.todo());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_model_file_must_hold_one_model() {
    let dir = temp("one-model");
    let model = vector("models/developer1-pc.model");
    let cases: [(&[u8], &str); 5] = [
        (b"", "empty"),
        (b"type: model\nbrand-id: b\n\nsig", "mandatory"),
        (&vector("developer1.account"), "holds a account assertion"),
        (
            &[model.clone(), b"\n".to_vec(), model.clone()].concat(),
            "holds 2",
        ),
        (
            &String::from_utf8(model.clone())
                .unwrap()
                .replace(
                    "brand-id: developer1\n",
                    "brand-id: developer1\nbrand-id: x\n",
                )
                .into_bytes(),
            "repeated header",
        ),
    ];
    for (bytes, want) in cases {
        let system = seed(&dir, bytes, &[]);
        let e = read(&system).unwrap_err();
        assert!(
            matches!(&e, Failure::MalformedModel { .. }),
            "{want}: {e:?}"
        );
        let text = e.to_string();
        assert!(text.starts_with("malformed model assertion "), "{text}");
        assert!(text.contains(want), "{want}: {text}");
    }
    // A trailing newline, as editors leave it, is fine.
    let system = seed(&dir, &[model, b"\n".to_vec()].concat(), &[]);
    assert_eq!(read(&system).unwrap().model.model, "my-model");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn find_picks_the_first_label_with_a_model() {
    let dir = temp("find");
    assert_eq!(find(&dir).ok().flatten(), None);
    for label in ["20240102", "20240101", "20230101"] {
        fs::create_dir_all(dir.join("systems").join(label)).unwrap();
    }
    assert_eq!(find(&dir).ok().flatten(), None);
    let model = vector("models/developer1-pc.model");
    fs::write(dir.join("systems/20240102/model"), &model).unwrap();
    fs::write(dir.join("systems/20240101/model"), &model).unwrap();
    assert_eq!(
        find(&dir).ok().flatten(),
        Some(dir.join("systems/20240101"))
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn oversized_files_are_refused() {
    let dir = temp("big");
    let path = dir.join("model");
    let file = File::create(&path).unwrap();
    file.set_len(MAX_FILE + 1).unwrap();
    let e = read(&dir).unwrap_err();
    assert!(matches!(e, Failure::Read { .. }), "{e:?}");
    assert!(e.to_string().contains("larger than 16 MiB"), "{e}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn values_reach_the_console_escaped() {
    assert_eq!(printable("developer1"), "developer1");
    assert_eq!(printable("a\x1b[2Jb"), "a\\u{1b}[2Jb");
    assert_eq!(printable("a b"), "a b");
}

#[test]
fn garbage_never_panics() {
    let dir = temp("garbage");
    let trusted = testrootorg_roots(&dir);
    let model = vector("models/developer1-pc.model");
    let mut seed_bits = 0x9E37_79B9_7F4A_7C15u64;
    for len in (0..model.len()).step_by(7) {
        let mut bytes = model.clone();
        for _ in 0..4 {
            seed_bits ^= seed_bits << 13;
            seed_bits ^= seed_bits >> 7;
            seed_bits ^= seed_bits << 17;
            let at = (seed_bits as usize) % bytes.len();
            bytes[at] = (seed_bits >> 40) as u8;
        }
        bytes.truncate(len);
        let system = seed(&dir, &bytes, &[("model-etc", stream(&CHAIN))]);
        if let Ok(found) = read(&system) {
            let _ = verify(&found, &trusted);
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}
