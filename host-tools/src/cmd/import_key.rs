//! `coreforge import-key NAME FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::keystore::{self, KeyStore};
use crate::passphrase::PassphraseArgs;

/// Arguments of `import-key`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name to store the key under.
    name: String,
    /// An OpenPGP RSA secret key (`gpg --export-secret-keys --armor`) or an OpenSSH Ed25519 private key.
    file: PathBuf,
    /// The account (e.g. your brand id) the key signs for; `sign` then fills in `authority-id`.
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// Read the passphrase that protects FILE from this file (asked for when FILE is protected).
    #[arg(long, value_name = "FILE")]
    source_passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

/// Imports the key and stores it encrypted with a new passphrase.
pub fn run(args: &Args, store: &KeyStore) -> Result<ExitCode> {
    store.check_new_name(&args.name)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let key = match keystore::import_private_key(&text, None) {
        Ok(k) => k,
        Err(e) if e.needs_passphrase() => {
            let source = PassphraseArgs {
                passphrase_file: args.source_passphrase_file.clone(),
            };
            let pass = source.get(&format!("Passphrase of {}: ", args.file.display()))?;
            keystore::import_private_key(&text, Some(&pass))
                .with_context(|| format!("cannot import {}", args.file.display()))?
        }
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("cannot import {}", args.file.display()))
            )
        }
    };
    super::create_key::save_new_key(
        store,
        &args.name,
        &key,
        args.account.as_deref(),
        &args.passphrase,
    )?;
    Ok(ExitCode::SUCCESS)
}
