//! `snap` on a coreforge device: the seeded snaps run the way snapd lays them out, without
//! snapd. One program, chosen by the name it is run as:
//!
//! - `snap run <snap>.<app> [args]`, `snap list`, `snap services`; every other command says
//!   the device's snaps come from its signed seed and are read-only;
//! - `/snap/bin/<snap>.<app>` and `/snap/bin/<snap>`, links to `/usr/bin/snap`: runs the app;
//! - `snapd-generator` (in `/usr/lib/systemd/system-generators/`): makes the launchers,
//!   the data folders and the daemons' units at boot.
//!
//! Every path is read under `$COREFORGE_SNAP_ROOT` (default `/`), for tests.
//!
//! Exit codes: 0 on success, 1 on an error (printed as `error: ...`), 2 on a usage error;
//! a launched app's own status once it runs.

mod generator;
mod list;
mod root;
mod run;
mod seed;
mod services;
mod table;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use root::Root;

const USAGE: &str = "\
Usage: snap <command> [<options>...]

The snaps on this device come from the signed seed on its boot partition and are
read-only: they are mounted at each boot, their apps are in /snap/bin and their
services start with the system.

Commands:
  run <snap>.<app> [<args>...]   run an app (as /snap/bin/<snap>.<app> does)
  list [<snap>...]               the snaps on this device
  services [<snap>[.<app>]...]   the snaps' services and their state
";

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

fn text_args(args: Vec<OsString>) -> Result<Vec<String>, String> {
    args.into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not UTF-8"))
        })
        .collect()
}

fn cli(root: &Root, mut args: Vec<OsString>) -> ExitCode {
    if args.is_empty() {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    }
    let command = args.remove(0).to_string_lossy().into_owned();
    let result = match command.as_str() {
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        "run" => {
            let (which, target, rest) = match run::parse_run_args(args) {
                Ok(parsed) => parsed,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            run::exec(root, &target, which.as_deref(), rest).map(|never| match never {})
        }
        "list" => text_args(args).and_then(|a| list::main(root, &a)),
        "services" => text_args(args).and_then(|a| services::main(root, &a)),
        other => Err(format!(
            "\"snap {other}\" is not available: the snaps on this device come from the signed \
             seed on its boot partition and are read-only (commands: run, list, services)"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let rest: Vec<OsString> = args.collect();
    let name = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let root = Root::from_env();
    match name.as_str() {
        "snap" | "" => cli(&root, rest),
        "snapd-generator" => match text_args(rest) {
            Ok(a) => generator::main(&root, &a),
            Err(e) => fail(&e),
        },
        // A launcher in /snap/bin: `<snap>.<app>`, or `<snap>` for its app of that name.
        launcher => match run::exec(&root, launcher, None, rest) {
            Ok(never) => match never {},
            Err(e) => fail(&e),
        },
    }
}
