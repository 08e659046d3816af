//! Decodes arbitrary bytes as one assertion and as a stream, and checks the
//! invariants in assertions/tests/fuzz_checks (shared with the regression test).
#![no_main]

use std::sync::OnceLock;

use coreforge_assertions::TrustDb;
use libfuzzer_sys::fuzz_target;

#[path = "../../assertions/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

fuzz_target!(|data: &[u8]| {
    static DB: OnceLock<TrustDb> = OnceLock::new();
    fuzz_checks::check(data, DB.get_or_init(fuzz_checks::testroot_db));
});
