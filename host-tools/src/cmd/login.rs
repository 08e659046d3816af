//! `coreforge login --store URL [--email E] [--password-file F]`: log in to a served store
//! and keep its token (0600) for uploads, releases and `register-key`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use zeroize::Zeroizing;

use crate::passphrase::first_line;
use crate::store::logins::{self, Login};
use crate::store::remote::Remote;

/// Arguments of `login`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The store's URL (https://HOST[:PORT]).
    #[arg(long, value_name = "URL")]
    store: String,
    /// The account's e-mail address (asked when not given).
    #[arg(long, value_name = "EMAIL")]
    email: Option<String>,
    /// Read the password from FILE (its first line) instead of asking.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
}

/// Logs in and saves the token.
pub fn run(args: &Args) -> Result<ExitCode> {
    let remote = Remote::new(&args.store)?;
    let email = match &args.email {
        Some(e) => e.clone(),
        None => {
            if !std::io::stdin().is_terminal() {
                bail!("no terminal to ask for the e-mail address: pass --email EMAIL");
            }
            print!("E-mail address: ");
            std::io::stdout().flush().ok();
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_owned()
        }
    };
    let password = match &args.password_file {
        Some(path) => first_line(path, "password")?,
        None => {
            if !std::io::stdin().is_terminal() {
                bail!("no terminal to ask for the password: use --password-file FILE");
            }
            Zeroizing::new(rpassword::prompt_password("Password: ")?)
        }
    };
    let (username, token) = remote.login(&email, &password)?;
    let saved = logins::save(
        remote.url(),
        Login {
            email: email.clone(),
            username: username.clone(),
            token,
        },
    )?;
    println!(
        "logged in to {} as {username} ({email}); the token is in {}",
        remote.url(),
        saved.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The saved login for the store at `remote`, or an error that says how to log in.
pub fn saved(remote: &Remote) -> Result<Login> {
    match logins::get(remote.url())? {
        Some(l) => Ok(l),
        None => bail!(
            "not logged in to {}: run `coreforge login --store {}` first",
            remote.url(),
            remote.url()
        ),
    }
}
