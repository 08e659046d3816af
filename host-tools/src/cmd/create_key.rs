//! `coreforge create-key [NAME]`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use coreforge_assertions::PrivateKey;

use crate::keystore::KeyStore;
use crate::passphrase::PassphraseArgs;

/// Arguments of `create-key`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name of the key.
    #[arg(default_value = "default")]
    name: String,
    /// The account (e.g. your brand id) the key signs for; `sign` then fills in `authority-id`.
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

/// Creates the key, refusing to replace an existing one.
pub fn run(args: &Args, store: &KeyStore) -> Result<ExitCode> {
    store.check_new_name(&args.name)?;
    let passphrase = args.passphrase.get_new(&format!("key {:?}", args.name))?;
    if passphrase.is_empty() {
        eprintln!("warning: empty passphrase: key {:?} is not protected at rest (like gpg's %no-protection)", args.name);
    }
    let key = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    let stored = store
        .create(&args.name, &key, &passphrase)
        .with_context(|| format!("cannot create key {:?}", args.name))?;
    if let Some(account) = &args.account {
        store.set_account(&args.name, account)?;
    }
    println!("{}", stored.key_id);
    Ok(ExitCode::SUCCESS)
}
