//! Parses arbitrary bytes as the preseed file (`console-conf.json`) the agent reads from the
//! card, and as a system-user stream (`auto-import.assert`): no panic, and a preseed that
//! parses is one whose values the device accepts.
#![no_main]

use std::sync::OnceLock;

use coreforge_assertions::TrustDb;
use coreforge_preseed::{valid_interface, Identity, Preseed};
use libfuzzer_sys::fuzz_target;

#[path = "../../assertions/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Preseed::parse(data) {
        if let Some(name) = p.network.interface() {
            assert!(
                valid_interface(name),
                "a parsed preseed names interface {name:?}"
            );
        }
        if let Some(w) = &p.wifi {
            assert!(valid_interface(&w.interface));
        }
        if let Identity::Keys { username, .. } = &p.identity {
            assert!(coreforge_preseed::is_valid_username(username));
        }
    }
    static DB: OnceLock<TrustDb> = OnceLock::new();
    fuzz_checks::check(data, DB.get_or_init(fuzz_checks::testroot_db));
});
