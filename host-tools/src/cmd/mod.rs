//! The subcommands, one file each.

mod boot;
mod build_image;
mod create_key;
mod export_key;
mod flash;
mod import_key;
mod info;
mod keys;
mod login;
mod pack;
mod register_key;
mod sign;
mod store;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::keystore::KeyStore;

/// Make signing keys, sign and verify snapd assertions, build and boot signed device images.
#[derive(Parser, Debug)]
#[command(name = "coreforge", version, about, long_about = None)]
pub struct Cli {
    /// Key directory (default: $COREFORGE_KEYS, else $XDG_DATA_HOME/coreforge/keys).
    #[arg(long, global = true, value_name = "DIR")]
    keys_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new Ed25519 signing key, encrypted at rest with a passphrase.
    CreateKey(create_key::Args),
    /// List the signing keys and their SHA3-384 ids.
    Keys(keys::Args),
    /// Import an existing private key (OpenPGP RSA as gpg exports it, or OpenSSH Ed25519).
    ImportKey(import_key::Args),
    /// Print a key's public part, or a self-signed account-key-request for an account.
    ExportKey(export_key::Args),
    /// Sign an assertion written as JSON (stdin or FILE) and print it.
    Sign(sign::Args),
    /// Verify assertions against trusted roots and print what verified.
    Verify(verify::Args),
    /// Build a bootable, seeded disk image from a signed model and a store.
    BuildImage(build_image::Args),
    /// Write an image to an SD card: its mapped ranges only, the partition table last, read back.
    Flash(flash::Args),
    /// Boot a disk image under QEMU (kernel, device tree and initramfs from its boot partition).
    Boot(boot::Args),
    /// Pack a snap directory into a reproducible snap (squashfs) file.
    Pack(pack::Args),
    /// Show a snap file's name, version, type, architectures, size and SHA3-384.
    Info(info::Args),
    /// Manage a store: init, upload, release, resolve, accounts, and serve it over HTTPS.
    Store(store::Args),
    /// Have a store sign an account and account-key for a key, for `sign --chain`.
    RegisterKey(register_key::Args),
    /// Log in to a served store (`store serve`) and keep the token for uploads and releases.
    Login(login::Args),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> Result<ExitCode> {
        let store = || -> Result<KeyStore> {
            let dir = match &self.keys_dir {
                Some(d) => d.clone(),
                None => KeyStore::default_dir()?,
            };
            Ok(KeyStore::open(dir)?)
        };
        match &self.command {
            Command::CreateKey(a) => create_key::run(a, &store()?),
            Command::Keys(a) => keys::run(a, &store()?),
            Command::ImportKey(a) => import_key::run(a, &store()?),
            Command::ExportKey(a) => export_key::run(a, &store()?),
            Command::Sign(a) => sign::run(a, &store()?),
            Command::Verify(a) => verify::run(a),
            Command::Flash(a) => flash::run(a),
            Command::BuildImage(a) => build_image::run(a),
            Command::Boot(a) => boot::run(a),
            Command::Pack(a) => pack::run(a),
            Command::Info(a) => info::run(a),
            Command::Store(a) => store::run(a),
            Command::RegisterKey(a) => register_key::run(a, &store()?),
            Command::Login(a) => login::run(a),
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks (unique names and groups, valid `requires`) run only
    /// when a command is built: build every subcommand here, not in front of a user.
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
