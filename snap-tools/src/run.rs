//! `snap run <snap>.<app> [args]`, and `/snap/bin/<snap>.<app>` links to this program: the
//! environment snapd gives an app (`snap/snapenv`: `SNAP`, `SNAP_DATA`, ... then the snap's
//! and the app's `environment:`, expanded in order), then `command-chain` and `command`
//! under `$SNAP`, arguments appended, by exec (cmd/snap-exec).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::Command;

use coreforge_snap::{command_path, App};

use crate::root::{self, Installed, Root};

/// The Debian architecture this program was built for (snapd's `arch.DpkgArchitecture`).
pub const ARCH: &str = if cfg!(target_arch = "aarch64") {
    "arm64"
} else if cfg!(target_arch = "arm") {
    "armhf"
} else if cfg!(target_arch = "x86_64") {
    "amd64"
} else if cfg!(target_arch = "x86") {
    "i386"
} else if cfg!(target_arch = "riscv64") {
    "riscv64"
} else if cfg!(target_arch = "powerpc64") {
    "ppc64el"
} else if cfg!(target_arch = "s390x") {
    "s390x"
} else {
    "unknown"
};

/// `snap run` arguments: `[--command=stop|reload|post-stop] <snap>[.<app>] [args...]`.
pub fn parse_run_args(
    args: Vec<OsString>,
) -> Result<(Option<String>, String, Vec<OsString>), String> {
    let mut command = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy().into_owned();
        if let Some(c) = s.strip_prefix("--command=") {
            command = Some(c.to_owned());
        } else if s == "--command" {
            let c = it
                .next()
                .ok_or("--command needs a value: stop, reload or post-stop")?;
            command = Some(c.to_string_lossy().into_owned());
        } else if s == "--" {
            let target = it.next().ok_or("snap run needs <snap>.<app>")?;
            return Ok((command, target.to_string_lossy().into_owned(), it.collect()));
        } else if s.starts_with('-') {
            return Err(format!("snap run: unknown option {s:?}"));
        } else {
            return Ok((command, s, it.collect()));
        }
    }
    Err("snap run needs <snap>.<app>".into())
}

/// snapd's `SplitSnapApp`: `hello.world` is app `world` of `hello`; `hello` is app `hello`.
pub fn split_snap_app(target: &str) -> (&str, &str) {
    match target.split_once('.') {
        Some((snap, app)) => (snap, app),
        None => (target, target),
    }
}

/// Go's `os.Expand`: `$NAME`, `${NAME}` and the shell's one-character specials, undefined
/// names empty; a `$` not followed by a name is kept, `${}` and an unclosed `${` dropped.
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> String) -> String {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let mut j = 0;
    let special = |c: u8| b"*#$@!?-".contains(&c) || c.is_ascii_digit();
    let alnum = |c: u8| c == b'_' || c.is_ascii_alphanumeric();
    while j < b.len() {
        if b[j] == b'$' && j + 1 < b.len() {
            out.push_str(&s[i..j]);
            let rest = &b[j + 1..];
            let (name, w): (&str, usize) = if rest[0] == b'{' {
                if rest.len() > 2 && special(rest[1]) && rest[2] == b'}' {
                    (&s[j + 2..j + 3], 3)
                } else {
                    match rest[1..].iter().position(|&c| c == b'}') {
                        Some(0) => ("", 2),
                        Some(n) => (&s[j + 2..j + 2 + n], n + 2),
                        None => ("", 1),
                    }
                }
            } else if special(rest[0]) {
                (&s[j + 1..j + 2], 1)
            } else {
                let n = rest.iter().take_while(|&&c| alnum(c)).count();
                (&s[j + 1..j + 1 + n], n)
            };
            if name.is_empty() && w == 0 {
                out.push('$');
            } else if !name.is_empty() {
                out.push_str(&lookup(name));
            }
            j += w;
            i = j + 1;
        }
        j += 1;
    }
    out.push_str(&s[i.min(s.len())..]);
    out
}

/// The real and effective user ids, from /proc (no libc in this program).
fn uids() -> Option<(String, String)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut ids = line.split_whitespace();
    Some((ids.next()?.to_owned(), ids.next()?.to_owned()))
}

/// The environment the app runs with: the caller's, snapd's variables for the snap, then
/// the snap's and the app's `environment:` expanded against what came before.
pub fn environment(
    snap: &Installed,
    app: &App,
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
) -> BTreeMap<OsString, OsString> {
    let Ok(yaml) = &snap.yaml else {
        return inherited.into_iter().collect();
    };
    let mut env: BTreeMap<OsString, OsString> = inherited.into_iter().collect();
    let mut set = |k: &str, v: String| {
        env.insert(k.into(), v.into());
    };
    let name = &snap.name;
    set("SNAP", snap.mount_dir());
    set("SNAP_COMMON", format!("/var/snap/{name}/common"));
    set("SNAP_DATA", format!("/var/snap/{name}/{}", snap.revision));
    set("SNAP_NAME", name.clone());
    set("SNAP_INSTANCE_NAME", name.clone());
    set("SNAP_INSTANCE_KEY", String::new());
    set("SNAP_VERSION", yaml.version.clone());
    set("SNAP_REVISION", snap.revision.clone());
    set("SNAP_ARCH", ARCH.to_owned());
    set(
        "SNAP_LIBRARY_PATH",
        "/var/lib/snapd/lib/gl:/var/lib/snapd/lib/gl32:/var/lib/snapd/void".into(),
    );
    if let Some((uid, euid)) = uids() {
        set("SNAP_UID", uid);
        set("SNAP_EUID", euid);
    }
    // The per-user directories, as snapd gives a classic snap (nothing confines apps here,
    // so HOME stays the user's own).
    if let Some(home) = env.get(OsStr::new("HOME")).and_then(|h| h.to_str()) {
        if !home.is_empty() {
            let home = home.trim_end_matches('/').to_owned();
            let data = format!("{home}/snap/{name}/{}", snap.revision);
            let common = format!("{home}/snap/{name}/common");
            env.insert("SNAP_USER_DATA".into(), data.into());
            env.insert("SNAP_USER_COMMON".into(), common.into());
            env.insert("SNAP_REAL_HOME".into(), home.into());
        }
    }
    for (k, v) in yaml.environment.iter().chain(&app.environment) {
        let value = expand(v, &|n| {
            env.get(OsStr::new(n))
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        env.insert(k.into(), value.into());
    }
    env
}

/// The argument vector snap-exec runs: command-chain entries, the command's file, its
/// arguments expanded against `env` (empty results dropped), then `args`. Paths are under
/// the root (the device's `/` outside tests).
pub fn argv(
    root: &Root,
    snap: &Installed,
    app: &App,
    command: &str,
    env: &BTreeMap<OsString, OsString>,
    args: Vec<OsString>,
) -> Result<Vec<OsString>, String> {
    let mount = root.path(&snap.mount_dir());
    let inside = |c: &str| -> Result<PathBuf, String> {
        command_path(c)
            .map(|p| mount.join(p))
            .ok_or_else(|| format!("{c:?} is not a path inside the snap"))
    };
    let mut out: Vec<OsString> = Vec::new();
    for c in &app.command_chain {
        out.push(inside(c)?.into());
    }
    let mut words = command.split(' ');
    out.push(inside(words.next().unwrap_or(""))?.into());
    for w in words {
        let e = expand(w, &|n| {
            env.get(OsStr::new(n))
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        if !e.is_empty() {
            out.push(e.into());
        }
    }
    out.extend(args);
    Ok(out)
}

/// Runs `target` (`snap.app` or `snap`) by exec; returns only on failure.
pub fn exec(
    root: &Root,
    target: &str,
    which: Option<&str>,
    args: Vec<OsString>,
) -> Result<std::convert::Infallible, String> {
    let (snap_name, app_name) = split_snap_app(target);
    let snap =
        root::one(root, snap_name).ok_or_else(|| format!("snap {snap_name:?} is not installed"))?;
    let yaml = snap
        .yaml
        .as_ref()
        .map_err(|e| format!("cannot run {target}: {e}"))?;
    let app = yaml
        .apps
        .get(app_name)
        .ok_or_else(|| format!("cannot find app {app_name:?} in {snap_name:?}"))?;
    if let Some(w) = which {
        if !matches!(w, "stop" | "reload" | "post-stop") {
            return Err(format!("cannot use {w:?} command"));
        }
    }
    let command = app.command_for(which).ok_or_else(|| {
        format!(
            "no {:?} command found for {app_name:?}",
            which.unwrap_or_default()
        )
    })?;
    let env = environment(&snap, app, std::env::vars_os());
    if let Some(home) = env.get(OsStr::new("SNAP_USER_DATA")) {
        // snapd makes these on each run; a user without a writable home still runs the app.
        let _ = std::fs::create_dir_all(home);
        if let Some(common) = env.get(OsStr::new("SNAP_USER_COMMON")) {
            let _ = std::fs::create_dir_all(common);
        }
    }
    let argv = argv(root, &snap, app, command, &env, args)?;
    let err = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(&env)
        .exec();
    Err(format!("cannot exec {:?}: {err}", argv[0]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coreforge_snap::SnapYaml;

    fn expand_with(s: &str) -> String {
        expand(s, &|n| match n {
            "A" => "a".into(),
            "AB" => "ab".into(),
            "1" => "one".into(),
            _ => String::new(),
        })
    }

    #[test]
    fn expansion_follows_go() {
        assert_eq!(expand_with("$A"), "a");
        assert_eq!(expand_with("${A}B"), "aB");
        assert_eq!(expand_with("$AB"), "ab");
        assert_eq!(expand_with("x$A-$AB/y"), "xa-ab/y");
        assert_eq!(expand_with("$UNSET"), "");
        assert_eq!(expand_with("$1x"), "onex");
        assert_eq!(expand_with("${1}"), "one");
        assert_eq!(expand_with("a$"), "a$");
        assert_eq!(expand_with("$/x"), "$/x");
        assert_eq!(expand_with("${}x"), "x");
        assert_eq!(expand_with("${A"), "A");
        assert_eq!(expand_with("no dollars"), "no dollars");
        assert_eq!(expand_with("ü$A€"), "üa€");
    }

    #[test]
    fn run_arguments() {
        let v = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            parse_run_args(v(&["hello.world", "--x", "y"])).unwrap(),
            (None, "hello.world".into(), v(&["--x", "y"]))
        );
        assert_eq!(
            parse_run_args(v(&["--command=stop", "hello"])).unwrap(),
            (Some("stop".into()), "hello".into(), vec![])
        );
        assert_eq!(
            parse_run_args(v(&["--command", "reload", "--", "a.b", "-c"])).unwrap(),
            (Some("reload".into()), "a.b".into(), v(&["-c"]))
        );
        assert!(parse_run_args(v(&[])).is_err());
        assert!(parse_run_args(v(&["--shell", "a"]))
            .unwrap_err()
            .contains("--shell"));
        assert_eq!(split_snap_app("hello.world"), ("hello", "world"));
        assert_eq!(split_snap_app("hello"), ("hello", "hello"));
    }

    fn snap() -> Installed {
        let yaml = SnapYaml::parse(
            b"name: hello\nversion: 2.1\nenvironment: {BASE: $SNAP/lib, SHARED: snap}\napps:\n  world:\n    command: bin/world --data $SNAP_DATA $EMPTY end\n    command-chain: [bin/wrap1, ./bin/wrap2]\n    environment: {SHARED: app-$SHARED, PATHS: $BASE:$SNAP_COMMON}\n",
        )
        .unwrap();
        Installed {
            name: "hello".into(),
            revision: "7".into(),
            yaml: Ok(yaml),
        }
    }

    #[test]
    fn snapd_variables_then_snap_then_app_environment() {
        let s = snap();
        let app = &s.yaml.as_ref().unwrap().apps["world"];
        let env = environment(
            &s,
            app,
            [
                ("PATH".into(), "/usr/bin".into()),
                ("HOME".into(), "/home/u/".into()),
                ("SNAP".into(), "overridden".into()),
            ],
        );
        let get = |k: &str| {
            env.get(OsStr::new(k))
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(get("SNAP").as_deref(), Some("/snap/hello/7"));
        assert_eq!(get("SNAP_DATA").as_deref(), Some("/var/snap/hello/7"));
        assert_eq!(
            get("SNAP_COMMON").as_deref(),
            Some("/var/snap/hello/common")
        );
        assert_eq!(get("SNAP_NAME").as_deref(), Some("hello"));
        assert_eq!(get("SNAP_INSTANCE_NAME").as_deref(), Some("hello"));
        assert_eq!(get("SNAP_REVISION").as_deref(), Some("7"));
        assert_eq!(get("SNAP_VERSION").as_deref(), Some("2.1"));
        assert_eq!(get("SNAP_ARCH").as_deref(), Some(ARCH));
        assert_eq!(
            get("SNAP_USER_DATA").as_deref(),
            Some("/home/u/snap/hello/7")
        );
        assert_eq!(
            get("SNAP_USER_COMMON").as_deref(),
            Some("/home/u/snap/hello/common")
        );
        assert_eq!(get("PATH").as_deref(), Some("/usr/bin"));
        assert_eq!(get("BASE").as_deref(), Some("/snap/hello/7/lib"));
        assert_eq!(
            get("SHARED").as_deref(),
            Some("app-snap"),
            "the app's comes last"
        );
        assert_eq!(
            get("PATHS").as_deref(),
            Some("/snap/hello/7/lib:/var/snap/hello/common")
        );
    }

    #[test]
    fn chain_then_command_then_arguments() {
        let s = snap();
        let app = &s.yaml.as_ref().unwrap().apps["world"];
        let root = Root::from_env();
        let env = environment(&s, app, []);
        let got = argv(&root, &s, app, &app.command, &env, vec!["user arg".into()]).unwrap();
        let base = root.path("/snap/hello/7");
        let want: Vec<OsString> = vec![
            base.join("bin/wrap1").into(),
            base.join("bin/wrap2").into(),
            base.join("bin/world").into(),
            "--data".into(),
            "/var/snap/hello/7".into(),
            "end".into(),
            "user arg".into(),
        ];
        assert_eq!(got, want);
    }
}
