//! `coreforge register-key NAME --store DIR [--account ID] [--since TIME]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use coreforge_assertions::Timestamp;

use crate::keystore::KeyStore;
use crate::store::LocalStore;

/// Arguments of `register-key`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name of the key to register.
    #[arg(default_value = "default")]
    name: String,
    /// The store directory (see `coreforge store init`).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// The account the key signs for (default: the key's account).
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// Start of the key's validity, RFC 3339 (default: now); assertions it signs must not be older.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
}

/// Has the store sign the account and the key's account-key, and saves both beside the
/// key so `sign --chain` appends them.
pub fn run(args: &Args, keys: &KeyStore) -> Result<ExitCode> {
    let public = keys.public_key(&args.name)?;
    let key_account = keys.account(&args.name)?;
    let account = match (&args.account, &key_account) {
        (Some(a), Some(k)) if a != k => bail!(
            "key {:?} signs for account {k:?}, not {a:?}: leave out --account, or use another key",
            args.name
        ),
        (Some(a), _) | (None, Some(a)) => a.clone(),
        (None, None) => bail!(
            "key {:?} has no account: pass --account ID (your brand id)",
            args.name
        ),
    };
    let since = match &args.since {
        Some(s) => Timestamp::parse(s).with_context(|| {
            format!("--since {s:?} is not an RFC 3339 time (2026-01-31T12:00:00Z)")
        })?,
        None => Timestamp::from_unix(Timestamp::now().unix()),
    };
    let store = LocalStore::open(&args.store)?;
    let (account_key, account_assertion) = store
        .register_key(&account, &args.name, &public, since)
        .with_context(|| format!("cannot register key {:?} for {account:?}", args.name))?;
    let mut chain = account_key.encode().to_vec();
    chain.extend_from_slice(b"\n\n");
    chain.extend_from_slice(account_assertion.encode());
    chain.push(b'\n');
    keys.set_chain(&args.name, &chain)?;
    if key_account.is_none() {
        keys.set_account(&args.name, &account)?;
    }
    println!(
        "registered key {:?} ({}) for account {account:?} in store {}",
        args.name,
        public.id(),
        args.store.display()
    );
    Ok(ExitCode::SUCCESS)
}
