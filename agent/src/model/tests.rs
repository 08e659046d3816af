//! Seed reading and verification against snapd's vectors, read in place; the device pin:
//! which label is opened and which model is accepted.

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

/// Reads and decodes `<system>/model` (the pin's checks aside: see `open`).
fn read(system: &Path) -> Result<SeedModel, Failure> {
    decode(
        system,
        &read_file(&system.join("model"))?.unwrap_or_default(),
    )
}

/// Verifies `seed` against the roots in `trusted` (no known store assertions), now.
fn verify(seed: &SeedModel, trusted: &Path) -> Result<Verified, Failure> {
    let known = trusted.join("no-known");
    let sources = Sources {
        trusted,
        known: &known,
    };
    verify_in(&trust_db(seed, sources, Timestamp::now())?, seed)
}

fn verify_seed(system: &Path, trusted: &Path) -> Result<Verified, Failure> {
    verify(&read(system)?, trusted)
}

/// The pin `build-image` writes for `model` (the file's bytes) at seed label `label`.
fn pin_for(model: &[u8], label: &str) -> DevicePin {
    let m = Model::from_assertion(&Assertion::decode(model).unwrap()).unwrap();
    DevicePin {
        brand_id: m.brand_id,
        model: m.model,
        grade: m.grade,
        model_sha3_384: sha3_384(model),
        seed_label: label.into(),
        build_time: Timestamp::parse("2026-12-01T00:00:00Z").unwrap(),
        preseed_sha3_384: None,
    }
}

/// The error of `open`, which must fail.
fn open_err(seed: &Path, pin: &DevicePin) -> Failure {
    match open(seed, pin) {
        Ok(p) => panic!("{}/{} opened", p.model.model.brand_id, p.model.model.model),
        Err(e) => e,
    }
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
fn only_the_pinned_label_is_opened_and_the_others_are_named() {
    let dir = temp("pinned");
    let trusted = testrootorg_roots(&dir);
    let model = vector("models/developer1-20-signed.model");
    let system = seed(&dir, &model, &[("model-etc", stream(&CHAIN))]);
    let card = dir.join("seed");
    // Another model under a label that sorts first, with a verifying chain of its own.
    let other = card.join("systems/0000");
    fs::create_dir_all(other.join("assertions")).unwrap();
    fs::write(other.join("model"), vector("models/developer1-pc.model")).unwrap();
    fs::write(other.join("assertions/model-etc"), stream(&CHAIN)).unwrap();
    fs::create_dir_all(card.join("systems/zz\x1b[2J")).unwrap();
    let pin = pin_for(&model, "20240101");
    let pinned = open(&card, &pin).unwrap();
    assert_eq!(pinned.model.system, system);
    assert_eq!(
        pinned.model.model.model,
        "testkeys-snapd-signed-core-20-amd64"
    );
    assert_eq!(pinned.others, ["0000", "zz\x1b[2J"]);
    assert_eq!(
        pinned.warning().as_deref(),
        Some("ignoring other seed labels on the card: 0000, zz\\u{1b}[2J")
    );
    let v = verify(&pinned.model, &trusted).unwrap();
    assert_eq!(v.assertion().header_str("grade"), Some("signed"));
    // The card holds nothing else: no warning.
    fs::remove_dir_all(card.join("systems/0000")).unwrap();
    fs::remove_dir_all(card.join("systems/zz\x1b[2J")).unwrap();
    assert_eq!(open(&card, &pin).unwrap().warning(), None);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_model_with_another_digest_is_refused() {
    let dir = temp("digest");
    let device = vector("models/developer1-pc.model");
    // Same brand, model name and grade (none), another assertion: only the digest differs.
    let card_model = vector("models/developer1-pc-18.model");
    seed(&dir, &card_model, &[("model-etc", stream(&CHAIN))]);
    let pin = pin_for(&device, "20240101");
    let e = open_err(&dir.join("seed"), &pin);
    assert!(matches!(e, Failure::OtherModel(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "refusing the model on the card: this device is developer1/my-model (grade none, \
             SHA3-384 {}), but the card's systems/20240101/model is another model of that \
             name: developer1/my-model (grade none, SHA3-384 {})",
            sha3_384(&device),
            sha3_384(&card_model)
        )
    );
    assert!(e.todo().contains("boots only the model"), "{}", e.todo());
    // A byte changed in the model the device was built for is another model too.
    let mut changed = device.clone();
    changed.push(b'\n');
    seed(&dir, &changed, &[]);
    assert!(matches!(
        open_err(&dir.join("seed"), &pin),
        Failure::OtherModel(_)
    ));
    // Something that is not a model at all.
    seed(&dir, b"not a model", &[]);
    let e = open_err(&dir.join("seed"), &pin).to_string();
    assert!(
        e.ends_with(&format!(
            "is not a model assertion (SHA3-384 {})",
            sha3_384(b"not a model")
        )),
        "{e}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_model_of_another_brand_model_or_grade_is_refused() {
    let dir = temp("identity");
    let model = vector("models/developer1-20-signed.model");
    seed(&dir, &model, &[("model-etc", stream(&CHAIN))]);
    let card = dir.join("seed");
    let pin = pin_for(&model, "20240101");
    assert!(open(&card, &pin).is_ok());
    let name = "testkeys-snapd-signed-core-20-amd64";
    // The digest is right but the pin says otherwise: each header on its own refuses.
    let cases = [
        (
            DevicePin {
                brand_id: "zephyrlabs".into(),
                ..pin.clone()
            },
            format!("this device is zephyrlabs/{name} (grade signed, "),
        ),
        (
            DevicePin {
                model: "pi3".into(),
                ..pin.clone()
            },
            "this device is developer1/pi3 (grade signed, ".to_owned(),
        ),
        (
            DevicePin {
                grade: Some("secured".into()),
                ..pin.clone()
            },
            format!("this device is developer1/{name} (grade secured, "),
        ),
        (
            DevicePin {
                grade: None,
                ..pin.clone()
            },
            format!("this device is developer1/{name} (grade none, "),
        ),
        // The attack: an image built for zephyrlabs, a card carrying another brand's model.
        (
            DevicePin {
                brand_id: "zephyrlabs".into(),
                model_sha3_384: sha3_384(b"zephyrlabs's model"),
                ..pin.clone()
            },
            format!("this device is zephyrlabs/{name} (grade signed, "),
        ),
    ];
    for (pin, device) in cases {
        let e = open_err(&card, &pin);
        let text = e.to_string();
        assert!(matches!(e, Failure::OtherModel(_)), "{e:?}");
        assert!(text.contains(&device), "{text}");
        assert!(
            text.contains(&format!(
                "but the card's systems/20240101/model is developer1/{name} (grade signed, \
                 SHA3-384 {})",
                sha3_384(&model)
            )),
            "{text}"
        );
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_pinned_label_absent_from_the_card_is_refused() {
    let dir = temp("no-label");
    let model = vector("models/developer1-pc.model");
    let pin = pin_for(&model, "20261201");
    let card = dir.join("seed");
    // No systems/ at all.
    let e = open_err(&card, &pin);
    assert_eq!(
        e.to_string(),
        "the card has no seed label 20261201 (no systems/20261201/model), the one this device \
         was built with; seed labels on the card: none"
    );
    // Only other labels, one of them with the device's very model.
    seed(&dir, &model, &[]);
    fs::create_dir_all(card.join("systems/0000")).unwrap();
    fs::create_dir_all(card.join("systems/20261201")).unwrap();
    let e = open_err(&card, &pin);
    assert!(matches!(e, Failure::NoLabel { .. }), "{e:?}");
    assert!(
        e.to_string()
            .ends_with("seed labels on the card: 0000, 20240101"),
        "{e}"
    );
    assert!(
        e.todo().starts_with("this device boots only"),
        "{}",
        e.todo()
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_or_malformed_pin_is_refused() {
    let dir = temp("pin");
    let path = dir.join("device");
    let pin = pin_for(&vector("models/developer1-pc.model"), "20240101");
    let e = read_pin(&path).unwrap_err();
    assert!(
        matches!(
            e,
            Failure::Pin {
                problem: PinProblem::Missing,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "this initramfs was not made by `coreforge build-image`: it does not say which model \
             this device is ({} holds that, and it is missing)",
            path.display()
        )
    );
    assert!(
        e.todo()
            .starts_with("rebuild the image with `coreforge build-image`"),
        "{}",
        e.todo()
    );
    let cases: [(Vec<u8>, &str); 3] = [
        (b"garbage".to_vec(), "it is malformed: device pin line 1"),
        (
            pin.encode().replace("model-sha3-384", "# ").into_bytes(),
            "it is malformed: the device pin has no \"model-sha3-384\"",
        ),
        (vec![b'#'; MAX_PIN_SIZE + 100], "more than 4096"),
    ];
    for (bytes, want) in cases {
        fs::write(&path, bytes).unwrap();
        let e = read_pin(&path).unwrap_err();
        assert!(matches!(e, Failure::Pin { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("not made by `coreforge build-image`"),
            "{text}"
        );
        assert!(text.contains(want), "{want}: {text}");
    }
    fs::write(&path, pin.encode()).unwrap();
    assert_eq!(read_pin(&path).unwrap(), pin);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_store_assertions_in_the_initramfs_take_part() {
    let dir = temp("known");
    let trusted = testrootorg_roots(&dir);
    let model = vector("models/developer1-pc.model");
    // The store's key only in the initramfs's known folder, the rest on the card.
    let system = seed(&dir, &model, &[("model-etc", stream(&CHAIN[1..]))]);
    let found = read(&system).unwrap();
    let known = dir.join("known");
    let sources = Sources {
        trusted: &trusted,
        known: &known,
    };
    let e = verify_in(
        &trust_db(&found, sources, Timestamp::now()).unwrap(),
        &found,
    )
    .unwrap_err();
    assert!(matches!(e, Failure::Unverified { .. }), "{e:?}");
    fs::create_dir_all(&known).unwrap();
    fs::write(known.join("store.assertion"), stream(&CHAIN[..1])).unwrap();
    let db = trust_db(&found, sources, Timestamp::now()).unwrap();
    assert_eq!(verify_in(&db, &found).unwrap().chain().len(), 3);
    // Known, not trusted: an account-key there is verified like any other.
    assert!(!db.is_trusted_account("developer1"));
    fs::write(known.join("broken.assertion"), b"type: account\n").unwrap();
    let e = trust_db(&found, sources, Timestamp::now()).unwrap_err();
    assert!(matches!(e, Failure::MalformedKnown { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with("malformed store assertions "),
        "{e}"
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
