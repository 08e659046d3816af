//! `coreforge export-key NAME [--account ID]`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use coreforge_assertions::{sign, Assertion, HeaderValue, PrivateKey, Timestamp};

use crate::keystore::KeyStore;
use crate::passphrase::PassphraseArgs;

/// Arguments of `export-key`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name of the key.
    #[arg(default_value = "default")]
    name: String,
    /// Print a self-signed account-key-request for this account instead of the bare public key.
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

/// Prints the public key (snapd's encoding, as in account-key bodies) or an account-key-request.
pub fn run(args: &Args, store: &KeyStore) -> Result<ExitCode> {
    let public = store.public_key(&args.name)?;
    let Some(account) = &args.account else {
        println!("{}", public.encode());
        return Ok(ExitCode::SUCCESS);
    };
    let passphrase = args
        .passphrase
        .get(&format!("Passphrase of key {:?}: ", args.name))?;
    let key = store.unlock(&args.name, &passphrase)?;
    let request = account_key_request(&key, account, &args.name, Timestamp::now())?;
    println!("{}", String::from_utf8_lossy(request.encode()));
    Ok(ExitCode::SUCCESS)
}

/// A self-signed `account-key-request` for `key` (named `name`) to sign for `account`
/// from `since`: what a store registers (`register-key`).
pub(super) fn account_key_request(
    key: &PrivateKey,
    account: &str,
    name: &str,
    since: Timestamp,
) -> Result<Assertion> {
    let public = key.public_key();
    let headers: Vec<(String, HeaderValue)> = vec![
        ("type".into(), "account-key-request".into()),
        ("account-id".into(), account.into()),
        ("name".into(), name.into()),
        ("public-key-sha3-384".into(), public.id().into()),
        ("since".into(), since.to_string().into()),
    ];
    sign(&headers, Some(public.encode().as_bytes()), key, since)
        .context("cannot sign the account-key-request")
}
