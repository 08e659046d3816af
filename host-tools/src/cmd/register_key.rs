//! `coreforge register-key NAME --store DIR|URL [--account ID] [--since TIME]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use coreforge_assertions::{Assertion, Timestamp};

use super::export_key::account_key_request;
use super::login;
use crate::keystore::KeyStore;
use crate::passphrase::PassphraseArgs;
use crate::store::remote::{self, Remote};
use crate::store::LocalStore;

/// Arguments of `register-key`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name of the key to register.
    #[arg(default_value = "default")]
    name: String,
    /// The store directory (see `coreforge store init`), or a served store's URL (after
    /// `coreforge login`; the key's passphrase signs the request).
    #[arg(long, value_name = "DIR|URL")]
    store: PathBuf,
    /// The account the key signs for (default: the key's account).
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// Start of the key's validity, RFC 3339 (default: now); assertions it signs must not be older.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
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
    let (account_key, account_assertion) = match args.store.to_str().filter(|s| remote::is_url(s)) {
        Some(url) => {
            // As snapcraft does: a request signed by the key itself, sent with the login.
            let remote = Remote::new(url)?;
            let login = login::saved(&remote)?;
            let passphrase = args
                .passphrase
                .get(&format!("Passphrase of key {:?}: ", args.name))?;
            let key = keys.unlock(&args.name, &passphrase)?;
            let request = account_key_request(&key, &account, &args.name, since)?;
            let (key_text, account_text) = remote
                .register_key(&login.token, &String::from_utf8_lossy(request.encode()))
                .with_context(|| format!("cannot register key {:?} for {account:?}", args.name))?;
            let decode = |text: &str, what: &str| {
                Assertion::decode(text.as_bytes())
                    .with_context(|| format!("the store's {what} does not decode"))
            };
            let (k, a) = (
                decode(&key_text, "account-key")?,
                decode(&account_text, "account")?,
            );
            if k.header_str("public-key-sha3-384") != Some(public.id().as_str())
                || k.header_str("account-id") != Some(account.as_str())
            {
                bail!("the store answered with an account-key for another key or account; nothing was saved");
            }
            (k, a)
        }
        None => {
            let store = LocalStore::open_locked(&args.store)?;
            store
                .register_key(&account, &args.name, &public, since)
                .with_context(|| format!("cannot register key {:?} for {account:?}", args.name))?
        }
    };
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
