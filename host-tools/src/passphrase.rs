//! Where passphrases come from: a file, an environment variable, or the
//! terminal (without echo), so scripts and CI need no terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use zeroize::Zeroizing;

/// Environment variable that supplies the passphrase (for CI).
pub const ENV: &str = "COREFORGE_PASSPHRASE";

/// How a command gets its passphrase.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PassphraseArgs {
    /// Read the passphrase from FILE (its first line) instead of asking.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

impl PassphraseArgs {
    /// The passphrase for an existing key: file, then `$COREFORGE_PASSPHRASE`, then one prompt.
    pub fn get(&self, prompt: &str) -> Result<Zeroizing<String>> {
        if let Some(p) = self.given()? {
            return Ok(p);
        }
        ask(prompt)
    }

    /// A new passphrase: file or environment, else asked twice and compared.
    pub fn get_new(&self, what: &str) -> Result<Zeroizing<String>> {
        if let Some(p) = self.given()? {
            return Ok(p);
        }
        let first = ask(&format!("Passphrase for {what}: "))?;
        let again = ask("Confirm passphrase: ")?;
        if *first != *again {
            bail!("the passphrases do not match; nothing was written");
        }
        Ok(first)
    }

    fn given(&self) -> Result<Option<Zeroizing<String>>> {
        if let Some(path) = &self.passphrase_file {
            return first_line(path, "passphrase").map(Some);
        }
        Ok(std::env::var(ENV).ok().map(Zeroizing::new))
    }
}

/// The first line of the secret file `path` (a passphrase or password file): `what` names
/// it in the error.
pub fn first_line(path: &Path, what: &str) -> Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {what} file {}", path.display()))?,
    );
    Ok(Zeroizing::new(text.lines().next().unwrap_or("").to_owned()))
}

fn ask(prompt: &str) -> Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for a passphrase: use --passphrase-file FILE or set {ENV}");
    }
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .context("cannot read the passphrase from the terminal")
}
