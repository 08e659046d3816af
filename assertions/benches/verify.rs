//! In-process timings for benches/trust-core.sh: verifying a model through
//! its chain (snapd's RSA-4096 vectors and a generated Ed25519 chain), making
//! an Ed25519 key, signing a model from JSON, and the Argon2id KDF that the
//! key store runs on every unlock.
//!
//! `cargo bench -p coreforge-assertions --bench verify [-- --kdf MEM_KIB,PASSES,LANES] [--only NAME [--runs N]]`
//! prints one line per measurement, `name<TAB>median µs<TAB>runs`, which the
//! script reads. Medians over many runs, timed one by one with `Instant`.
//! `--only NAME` runs one measurement (the script interleaves the KDF's with
//! its CLI runs, so both see the same machine load, and reads the process's
//! CPU time for one KDF with `--runs 1`).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use coreforge_assertions::{
    sign, AccountKey, Assertion, HeaderValue, JsonStatement, PrivateKey, Timestamp, TrustDb,
};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/snapd")
}

fn read(rel: &str) -> Vec<u8> {
    let p = vectors().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn one(rel: &str) -> Assertion {
    Assertion::decode_all(&read(rel)).unwrap().remove(0)
}

/// Which measurements to run: `--only NAME`, and `--runs N` to override their run counts.
struct Select {
    only: Option<String>,
    runs: Option<usize>,
}

impl Select {
    /// Runs `f` `runs` times (after up to 10 warm-up runs) and prints its
    /// median in µs, unless another measurement was asked for.
    fn measure(&self, name: &str, runs: usize, mut f: impl FnMut()) {
        if self.only.as_deref().is_some_and(|o| o != name) {
            return;
        }
        let runs = self.runs.unwrap_or(runs).max(1);
        for _ in 0..(runs / 10).min(10) {
            f();
        }
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!("{name}\t{median:.2}\t{runs}");
    }
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, HeaderValue)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).into()))
        .collect()
}

/// An account-key assertion for `key`, owned by `account`, signed by `signer` for `authority`.
fn account_key(
    authority: &str,
    account: &str,
    name: &str,
    key: &PrivateKey,
    signer: &PrivateKey,
) -> Assertion {
    let public = key.public_key();
    let id = public.id();
    let h = headers(&[
        ("type", "account-key"),
        ("authority-id", authority),
        ("account-id", account),
        ("name", name),
        ("public-key-sha3-384", &id),
        ("since", "2016-01-01T00:00:00Z"),
    ]);
    let at = Timestamp::parse("2016-01-01T00:00:00Z").unwrap();
    sign(&h, Some(public.encode().as_bytes()), signer, at).unwrap()
}

fn account(authority: &str, id: &str, signer: &PrivateKey) -> Assertion {
    let h = headers(&[
        ("type", "account"),
        ("authority-id", authority),
        ("account-id", id),
        ("display-name", id),
        ("validation", "verified"),
        ("timestamp", "2016-01-01T00:00:00Z"),
    ]);
    sign(
        &h,
        None,
        signer,
        Timestamp::parse("2016-01-01T00:00:00Z").unwrap(),
    )
    .unwrap()
}

/// The same shape as snapd's test chain, with Ed25519 keys: a trusted root
/// key, a store key it signs, a brand key the store key signs, and a model.
fn ed25519_chain(model_json: &[u8]) -> (TrustDb, Vec<u8>) {
    let rng = &mut rand_core::OsRng;
    let (root, store, brand) = (
        PrivateKey::generate_ed25519(rng),
        PrivateKey::generate_ed25519(rng),
        PrivateKey::generate_ed25519(rng),
    );
    let mut db = TrustDb::new();
    db.add_trusted(account_key("root", "root", "root", &root, &root));
    db.add_trusted(account("root", "root", &root));
    db.add(account_key("root", "root", "store", &store, &root));
    db.add(account("root", "developer1", &store));
    db.add(account_key("root", "developer1", "brand", &brand, &store));
    let mut statement = JsonStatement::parse(model_json).unwrap();
    statement.set_default("authority-id", "developer1");
    let model = sign(&statement.headers, None, &brand, Timestamp::now()).unwrap();
    (db, model.encode().to_vec())
}

fn rsa_db() -> TrustDb {
    let mut db = TrustDb::new();
    db.add_trusted(one("roots/testrootorg-root.account-key"));
    db.add_trusted(one("roots/testrootorg.account"));
    db.add(one("roots/testrootorg-store.account-key"));
    db.add(one("developer1.account"));
    db.add(one("developer1.account-key"));
    db
}

/// The value after `flag` on the command line, if given.
fn arg(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).cloned()
}

/// `--kdf MEM_KIB,PASSES,LANES` from the command line, if given.
fn kdf_arg() -> Option<(u32, u32, u32)> {
    let v: Vec<u32> = arg("--kdf")?
        .split(',')
        .map(|n| n.parse().expect("--kdf MEM_KIB,PASSES,LANES"))
        .collect();
    Some((v[0], v[1], v[2]))
}

fn main() {
    let select = Select {
        only: arg("--only"),
        runs: arg("--runs").map(|n| n.parse().expect("--runs N")),
    };
    let model_json = read("models/developer1-pc-18.model.json");

    // (c) verification: decode + verify through the chain to the trusted root.
    let db = rsa_db();
    let model = read("models/developer1-pc.model");
    select.measure("verify_model_rsa4096_chain", 2000, || {
        let a = Assertion::decode(black_box(&model)).unwrap();
        black_box(db.verify(&a).unwrap());
    });
    // One signature check alone: the chain's cost divided by this is how many it makes.
    let a = Assertion::decode(&model).unwrap();
    let key = AccountKey::from_assertion(&one("developer1.account-key")).unwrap();
    let signature = a.signature_bytes().unwrap();
    select.measure("one_signature_rsa4096", 500, || {
        key.public_key
            .verify(black_box(a.signed_content()), &signature)
            .unwrap();
    });
    let (db, model) = ed25519_chain(&model_json);
    let a = Assertion::decode(&model).unwrap();
    let brand = db.find("account-key", &[a.sign_key_id()]).unwrap();
    let key = AccountKey::from_assertion(brand).unwrap();
    let signature = a.signature_bytes().unwrap();
    select.measure("one_signature_ed25519", 5000, || {
        key.public_key
            .verify(black_box(a.signed_content()), &signature)
            .unwrap();
    });
    select.measure("verify_model_ed25519_chain", 5000, || {
        let a = Assertion::decode(black_box(&model)).unwrap();
        black_box(db.verify(&a).unwrap());
    });

    // (a) key generation alone, without the key store's KDF and file writes.
    select.measure("keygen_ed25519", 5000, || {
        black_box(PrivateKey::generate_ed25519(&mut rand_core::OsRng));
    });

    // (b) what `coreforge sign` does once the key is unlocked: JSON in, assertion out.
    let key = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    select.measure("sign_model_json_ed25519", 5000, || {
        let mut s = JsonStatement::parse(black_box(&model_json)).unwrap();
        s.set_default("authority-id", "developer1");
        black_box(sign(&s.headers, s.body.as_deref(), &key, Timestamp::now()).unwrap());
    });

    // The key store's passphrase KDF, with the parameters its key files record.
    if let Some((mem, passes, lanes)) = kdf_arg() {
        use argon2::{Algorithm, Argon2, Params, Version};
        let params = Params::new(mem, passes, lanes, Some(32)).unwrap();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut out = [0u8; 32];
        select.measure("kdf_argon2id", 3, || {
            argon
                .hash_password_into(b"bench passphrase", b"sixteen byte salt", &mut out)
                .unwrap();
            black_box(&out);
        });
    }
}
