//! Every input kept in tests/fuzz-regressions/ (crashes the `decode` fuzz
//! target found, and hand-made hostile inputs) passes the fuzz target's checks.

use std::path::Path;

mod fuzz_checks;

#[test]
fn every_kept_fuzz_input_passes_the_fuzz_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let db = fuzz_checks::testroot_db();
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "README.md") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| fuzz_checks::check(&data, &db));
        assert!(outcome.is_ok(), "{} fails the fuzz checks", path.display());
        count += 1;
    }
    assert!(count >= 5, "expected the kept inputs in {}", dir.display());
}

#[test]
fn a_vector_and_a_tampered_copy_pass_the_checks() {
    // The vector takes every path of the checks (verification through the whole
    // chain, re-formatting); the tampered copy decodes but must fail verification.
    let model = include_bytes!("../../../shared/vectors/snapd/models/developer1-pc.model");
    let db = fuzz_checks::testroot_db();
    fuzz_checks::check(model, &db);
    let tampered = String::from_utf8_lossy(model).replace("my-model", "my-modex");
    fuzz_checks::check(tampered.as_bytes(), &db);
    let a = coreforge_assertions::Assertion::decode(tampered.as_bytes()).unwrap();
    assert!(db.verify(&a).is_err());
}
