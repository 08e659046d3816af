//! `coreforge keys [--json]`.

use std::process::ExitCode;

use anyhow::Result;

use crate::keystore::KeyStore;

/// Arguments of `keys`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON: `[{"name": ..., "sha3-384": ...}]`.
    #[arg(long)]
    json: bool,
}

/// Lists the keys, as `snap keys` does.
pub fn run(args: &Args, store: &KeyStore) -> Result<ExitCode> {
    let keys = store.list()?;
    if args.json {
        let list: Vec<_> = keys
            .iter()
            .map(|k| serde_json::json!({"name": k.name, "sha3-384": k.key_id}))
            .collect();
        println!("{}", serde_json::to_string(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    if keys.is_empty() {
        eprintln!("No keys registered, see `coreforge create-key`");
        return Ok(ExitCode::SUCCESS);
    }
    let width = keys.iter().map(|k| k.name.len()).max().unwrap_or(0).max(4);
    println!("{:<width$}  SHA3-384", "Name");
    for k in &keys {
        println!("{:<width$}  {}", k.name, k.key_id);
    }
    Ok(ExitCode::SUCCESS)
}
