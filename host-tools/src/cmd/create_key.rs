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
    let key = PrivateKey::generate_ed25519(&mut rand_core::OsRng);
    save_new_key(
        store,
        &args.name,
        &key,
        args.account.as_deref(),
        &args.passphrase,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Stores a new key under `name` with a new passphrase (and its account), and prints its id.
pub fn save_new_key(
    store: &KeyStore,
    name: &str,
    key: &PrivateKey,
    account: Option<&str>,
    passphrase: &PassphraseArgs,
) -> Result<()> {
    let passphrase = passphrase.get_new(&format!("key {name:?}"))?;
    if passphrase.is_empty() {
        eprintln!(
            "warning: empty passphrase: key {name:?} is not protected at rest (like gpg's %no-protection)"
        );
    }
    let stored = store
        .create(name, key, &passphrase)
        .with_context(|| format!("cannot store key {name:?}"))?;
    if let Some(account) = account {
        store.set_account(name, account)?;
    }
    println!("{}", stored.key_id);
    Ok(())
}
