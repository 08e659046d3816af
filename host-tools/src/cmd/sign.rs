//! `coreforge sign -k NAME [--chain] [--update-timestamp] [FILE]`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use coreforge_assertions::{sign, Assertion, JsonStatement, Timestamp};

use crate::keystore::KeyStore;
use crate::passphrase::PassphraseArgs;

/// Arguments of `sign`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name of the key to sign with.
    #[arg(short = 'k', long = "key-name", default_value = "default")]
    key: String,
    /// Append the account-key and account assertions a device needs to check the signature.
    #[arg(long)]
    chain: bool,
    /// Set `timestamp` to now.
    #[arg(long)]
    update_timestamp: bool,
    /// The assertion as JSON (default: standard input).
    file: Option<PathBuf>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

/// Signs the JSON statement and prints the assertion (and its chain).
pub fn run(args: &Args, store: &KeyStore) -> Result<ExitCode> {
    let input = match &args.file {
        Some(f) => std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?,
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read standard input")?;
            buf
        }
    };
    let mut statement = JsonStatement::parse(&input)?;
    // Fail on a missing chain before asking for the passphrase.
    let chain = if args.chain {
        Some(store.chain(&args.key)?)
    } else {
        None
    };
    if let Some(account) = store.account(&args.key)? {
        statement.set_default("authority-id", &account);
    }
    let now = Timestamp::now();
    if args.update_timestamp {
        statement.set("timestamp", &now.to_string());
    }
    let passphrase = args
        .passphrase
        .get(&format!("Passphrase of key {:?}: ", args.key))?;
    let key = store.unlock(&args.key, &passphrase)?;
    let signed = sign(&statement.headers, statement.body.as_deref(), &key, now)
        .context("cannot sign assertion")?;
    let mut out = signed.encode().to_vec();
    if let Some(chain) = chain {
        append_chain(&mut out, &signed, &chain)?;
    }
    out.push(b'\n');
    std::io::stdout()
        .write_all(&out)
        .context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

/// Appends the signing key's account-key and its owner's account from `chain`.
fn append_chain(out: &mut Vec<u8>, signed: &Assertion, chain: &[Assertion]) -> Result<()> {
    let key = chain
        .iter()
        .find(|a| a.type_name() == "account-key" && a.primary_key() == [signed.sign_key_id()])
        .with_context(|| {
            format!(
                "the chain of the key has no account-key for {}",
                signed.sign_key_id()
            )
        })?;
    let owner = key.header_str("account-id").unwrap_or_default();
    let Some(account) = chain
        .iter()
        .find(|a| a.type_name() == "account" && a.primary_key() == [owner])
    else {
        bail!("the chain of the key has no account assertion for {owner:?}");
    };
    for a in [key, account] {
        out.extend_from_slice(b"\n\n");
        out.extend_from_slice(a.encode());
    }
    Ok(())
}
