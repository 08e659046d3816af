//! The invariants the `decode` fuzz target (fuzz/fuzz_targets/decode.rs)
//! checks on every input; the regression test (tests/fuzz_regressions.rs)
//! runs the same checks on the inputs kept in tests/fuzz-regressions/.
//!
//! Any input may fail to decode; what must hold is: no panic anywhere, a
//! decoded assertion keeps exactly the bytes it came from, every member of a
//! stream decodes on its own to the same bytes, and headers formatted again
//! parse back to the same values.

use coreforge_assertions::{
    format_content, Account, AccountKey, AccountKeyRequest, Assertion, DevicePin, HeaderValue,
    Model, Serial, SnapDeclaration, SnapRevision, Store, SystemUser, Timestamp, TrustDb,
};

/// A file of snapd's vectors, built in at compile time (both crates that use
/// this module sit one level below the workspace root).
macro_rules! vector {
    ($rel:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/vectors/snapd/",
            $rel
        ))
    };
}

/// snapd's test root trusted, with the chain down to developer1 known.
pub fn testroot_db() -> TrustDb {
    let one = |bytes: &[u8]| Assertion::decode_all(bytes).unwrap().remove(0);
    let mut db = TrustDb::new();
    db.add_trusted(one(vector!("roots/testrootorg-root.account-key")));
    db.add_trusted(one(vector!("roots/testrootorg.account")));
    db.add(one(vector!("roots/testrootorg-store.account-key")));
    db.add(one(vector!("developer1.account")));
    db.add(one(vector!("developer1.account-key")));
    db
}

/// developer1's model, for the device-side checks of a system-user.
fn model() -> Model {
    let bytes: &[u8] = vector!("models/developer1-pc.model");
    Model::from_assertion(&Assertion::decode(bytes).unwrap()).unwrap()
}

/// Runs every check on `data`; panics if an invariant does not hold.
pub fn check(data: &[u8], db: &TrustDb) {
    // The device pin in the initramfs: parses or is refused, and round-trips.
    if let Ok(pin) = DevicePin::parse(data) {
        assert!(
            DevicePin::parse(pin.encode().as_bytes()).as_ref() == Ok(&pin),
            "a parsed device pin must encode and parse back the same"
        );
    }
    if let Ok(a) = Assertion::decode(data) {
        assert!(
            a.encode() == data,
            "decode must keep the bytes exactly as received"
        );
        check_one(&a, db);
    }
    if let Ok(all) = Assertion::decode_all(data) {
        // Fuzzed account-keys and accounts take part in each other's chains.
        let mut db = db.clone();
        for a in &all {
            let alone = Assertion::decode(a.encode())
                .unwrap_or_else(|e| panic!("a stream member must decode on its own: {e}"));
            assert!(alone.encode() == a.encode());
            db.add(a.clone());
        }
        for a in &all {
            // A lone assertion was checked above already (the RSA checks are the slow part).
            if a.encode() != data {
                check_one(a, &db);
            }
        }
    }
}

fn check_one(a: &Assertion, db: &TrustDb) {
    let _ = a.signature_bytes();
    let _ = (a.primary_key(), a.time(), a.revision());
    let _ = db.verify(a);
    let _ = Account::from_assertion(a);
    let _ = AccountKey::from_assertion(a);
    let _ = AccountKeyRequest::from_assertion(a);
    let _ = Model::from_assertion(a);
    let _ = SnapDeclaration::from_assertion(a);
    let _ = SnapRevision::from_assertion(a);
    if let Ok(user) = SystemUser::from_assertion(a) {
        // What the device asks before it creates the account (auto-import.assert).
        let _ = user.refuses(a.authority_id(), &model(), Some("serial"), Timestamp::now());
        assert!(
            user.since <= user.until,
            "a system-user ends before it starts"
        );
    }
    let _ = Serial::from_assertion(a);
    let _ = Store::from_assertion(a);

    let body = (!a.body().is_empty()).then(|| a.body());
    let Ok(content) = format_content(a.headers(), body, a.sign_key_id()) else {
        return;
    };
    // Formatting in snapd's order and parsing again gives the same values back.
    let mut again = content;
    again.extend_from_slice(b"\n\n");
    again.extend_from_slice(a.signature_text());
    let b = Assertion::decode(&again)
        .unwrap_or_else(|e| panic!("re-formatted headers must decode: {e}"));
    assert!(b.body() == a.body(), "body changed by re-formatting");
    for (name, value) in a.headers() {
        match (name.as_str(), b.header(name)) {
            // Written only when not zero (body-length: when there is a body).
            ("format" | "revision" | "body-length", None) => {
                assert_eq!(value, &HeaderValue::from("0"), "{name} dropped")
            }
            (_, None) => assert!(omitted(value), "header {name} dropped"),
            (_, Some(v)) => assert_eq!(v, value, "header {name} changed by re-formatting"),
        }
    }
    for (name, _) in b.headers() {
        assert!(a.header(name).is_some(), "header {name} added");
    }
}

/// Empty lists and maps are not written (HeaderValue::is_omitted is private).
fn omitted(v: &HeaderValue) -> bool {
    match v {
        HeaderValue::String(_) => false,
        HeaderValue::List(l) => l.is_empty(),
        HeaderValue::Map(m) => m.is_empty(),
    }
}
