//! `coreforge verify [--trusted FILE]... FILE...`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use coreforge_assertions::{Assertion, TrustDb};

/// Arguments of `verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Assertions to trust as roots (account-keys and their accounts); repeatable.
    #[arg(long, value_name = "FILE")]
    trusted: Vec<PathBuf>,
    /// Assertions to verify; they also serve as each other's chain.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn read(path: &PathBuf) -> Result<Vec<Assertion>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Assertion::decode_all(&bytes).with_context(|| format!("cannot decode {}", path.display()))
}

/// Verifies every assertion in FILE...; exit code 3 when any does not.
pub fn run(args: &Args) -> Result<ExitCode> {
    if args.trusted.is_empty() {
        bail!("no trusted roots given: pass --trusted FILE (e.g. the store's root account-key and account)");
    }
    let mut db = TrustDb::new();
    for path in &args.trusted {
        for a in read(path)? {
            db.add_trusted(a);
        }
    }
    let mut todo = Vec::new();
    for path in &args.files {
        let all = read(path)?;
        if all.is_empty() {
            bail!("{} holds no assertion", path.display());
        }
        for a in all {
            db.add(a.clone());
            todo.push((path, a));
        }
    }
    let mut failed = false;
    for (path, a) in &todo {
        let what = format!("{} {}", a.type_name(), a.primary_key().join("/"));
        if let Some(newer) = db
            .find(a.type_name(), &a.primary_key())
            .filter(|n| n.revision() > a.revision() && db.verify(n).is_ok())
        {
            // Of several revisions the highest wins: an older one is not current.
            failed = true;
            eprintln!(
                "{}: {what}: revision {} is superseded by revision {}{}",
                path.display(),
                a.revision(),
                newer.revision(),
                newer
                    .header_str("until")
                    .map(|u| format!(" (valid until {u})"))
                    .unwrap_or_default()
            );
            continue;
        }
        match db.verify(a) {
            Ok(v) => println!(
                "verified {what} signed by {} with key {}",
                v.signer(),
                a.sign_key_id()
            ),
            Err(e) => {
                failed = true;
                eprintln!("{}: {what}: {e}", path.display());
            }
        }
    }
    Ok(if failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
