//! `coreforge info FILE.snap [--json]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::snap;

/// Arguments of `info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The snap file.
    file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Prints the snap's name, version, type, architectures, size and SHA3-384.
pub fn run(args: &Args) -> Result<ExitCode> {
    let what = || format!("cannot read snap {}", args.file.display());
    let info = snap::read_info(&args.file).with_context(what)?;
    let (sha3_384, size) = snap::digest(&args.file).with_context(what)?;
    if args.json {
        let value = serde_json::json!({
            "name": info.name,
            "version": info.version,
            "type": info.snap_type,
            "architectures": info.architectures,
            "size": size,
            "sha3-384": sha3_384,
        });
        println!("{value:#}");
    } else {
        println!("name:          {}", info.name);
        println!("version:       {}", info.version);
        println!("type:          {}", info.snap_type);
        println!("architectures: {}", info.architectures.join(", "));
        println!("size:          {size}");
        println!("sha3-384:      {sha3_384}");
    }
    Ok(ExitCode::SUCCESS)
}
