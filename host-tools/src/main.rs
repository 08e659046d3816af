//! `coreforge`: make signing keys, sign and verify snapd assertions, and
//! (in later steps) build and boot signed device images.
//!
//! Exit codes: 0 success; 1 failure (bad input, I/O, wrong passphrase);
//! 2 usage error; 3 an assertion did not verify.

mod cmd;
mod flash;
// tests/layout.rs compiles this module on its own and uses all of its API (plan,
// FatReader's details); the binary uses a part of it.
#[allow(dead_code, unused_imports)]
mod image;
mod keystore;
mod passphrase;
mod serve;
mod snap;
mod store;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match cmd::Cli::parse().run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
