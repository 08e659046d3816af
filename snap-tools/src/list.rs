//! `snap list`: snapd's table (cmd/snap/cmd_list.go) of the mounted snaps, with the
//! revision `current` points at. The tracking channel is not recorded on a coreforge seed,
//! so it is `-` (snapd's mark for a snap with no channel); the publisher comes from the
//! seed's assertions when the snap is asserted.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;

use crate::root::{self, Installed, Root};
use crate::seed::{self, Publisher};
use crate::table;

/// snapd's escapes for the publisher column: colour, and a tick or star (or `**`/`*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Escapes {
    green: &'static str,
    yellow: &'static str,
    end: &'static str,
    tick: &'static str,
    star: &'static str,
}

impl Escapes {
    /// As snapd picks them from `--color` and `--unicode` (`auto`: only on a terminal;
    /// Unicode only with a UTF-8 locale; `NO_COLOR` and mono terminals get bold and dim).
    pub fn pick(
        color: &str,
        unicode: &str,
        tty: bool,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Escapes {
        let mut e = match color {
            "always" => Escapes::color(),
            "auto" if tty => {
                let term = env("TERM").unwrap_or_default();
                if env("NO_COLOR").is_some() || term == "xterm-mono" || term == "linux-m" {
                    Escapes::mono()
                } else {
                    Escapes::color()
                }
            }
            _ => Escapes::default(),
        };
        let uni = match unicode {
            "always" => true,
            "auto" if tty => ["LC_MESSAGES", "LC_ALL", "LANG"]
                .iter()
                .filter_map(|k| env(k).filter(|v| !v.is_empty()))
                .next()
                .map(|l| l.to_uppercase())
                .is_some_and(|l| l.contains("UTF-8") || l.contains("UTF8")),
            _ => false,
        };
        (e.tick, e.star) = if uni { ("✓", "✪") } else { ("**", "*") };
        e
    }

    fn color() -> Escapes {
        Escapes {
            green: "\x1b[32m",
            yellow: "\x1b[93m",
            end: "\x1b[0m",
            ..Escapes::default()
        }
    }

    fn mono() -> Escapes {
        Escapes {
            green: "\x1b[1m",
            yellow: "\x1b[2m",
            end: "\x1b[0m",
            ..Escapes::default()
        }
    }

    /// The escapes from the options and the real terminal and environment.
    pub fn from_options(color: &str, unicode: &str) -> Escapes {
        Escapes::pick(color, unicode, std::io::stdout().is_terminal(), &|k| {
            std::env::var(k).ok()
        })
    }
}

/// snapd's `shortPublisher`: the username and its badge, or `-`, with the no-op escape
/// that keeps the columns aligned.
fn short_publisher(e: &Escapes, p: Option<&Publisher>) -> String {
    let Some(p) = p else {
        return format!("-{}{}", e.green, e.end);
    };
    let (badge, color) = match p.validation.as_str() {
        "verified" => (e.tick, e.green),
        "starred" => (e.star, e.yellow),
        _ => ("", e.green),
    };
    format!("{}{color}{badge}{}", p.username, e.end)
}

/// snapd's notes for a local snap: its type unless an app (`os` shows as `core`), and
/// `broken` when its snap.yaml cannot be read.
fn notes(snap: &Installed) -> String {
    let mut n: Vec<&str> = Vec::new();
    match snap.yaml.as_ref().map(|y| y.snap_type.as_str()) {
        Ok("app" | "") | Err(_) => {}
        Ok("os" | "core") => n.push("core"),
        Ok(t) => n.push(t),
    }
    if snap.yaml.is_err() {
        n.push("broken");
    }
    if n.is_empty() {
        "-".into()
    } else {
        n.join(",")
    }
}

/// The table `snap list` prints for `snaps`.
pub fn render(
    snaps: &[Installed],
    publishers: &BTreeMap<String, Publisher>,
    e: &Escapes,
) -> String {
    let mut rows = vec![vec![
        "Name".to_owned(),
        "Version".to_owned(),
        "Rev".to_owned(),
        "Tracking".to_owned(),
        format!("Publisher{}{}", e.green, e.end),
        "Notes".to_owned(),
    ]];
    for s in snaps {
        let version = match &s.yaml {
            Ok(y) if !y.version.is_empty() => y.version.clone(),
            _ => "-".into(),
        };
        // A local (unasserted) revision has no publisher, whatever the seed says of the name.
        let publisher = if s.revision.starts_with('x') {
            None
        } else {
            publishers.get(&s.name)
        };
        rows.push(vec![
            s.name.clone(),
            version,
            s.revision.clone(),
            "-".into(),
            short_publisher(e, publisher),
            notes(s),
        ]);
    }
    table::render(&rows)
}

/// `snap list [--color=..] [--unicode=..] [<snap>...]`.
pub fn main(root: &Root, args: &[String]) -> Result<(), String> {
    let (mut color, mut unicode) = ("auto".to_owned(), "auto".to_owned());
    let mut names: Vec<&str> = Vec::new();
    for a in args {
        if let Some(v) = a.strip_prefix("--color=") {
            color = v.to_owned();
        } else if let Some(v) = a.strip_prefix("--unicode=") {
            unicode = v.to_owned();
        } else if a == "--all" {
            // Only one revision of each snap is ever on the device.
        } else if a.starts_with('-') {
            return Err(format!("snap list: unknown option {a:?}"));
        } else {
            names.push(a);
        }
    }
    for (opt, v) in [("--color", &color), ("--unicode", &unicode)] {
        if !matches!(v.as_str(), "auto" | "never" | "always") {
            return Err(format!("{opt}: use auto, never or always, not {v:?}"));
        }
    }
    let mut snaps = root::installed(root).map_err(|e| e.to_string())?;
    if !names.is_empty() {
        snaps.retain(|s| names.contains(&s.name.as_str()));
        if snaps.is_empty() {
            return Err("no matching snaps installed".into());
        }
    }
    if snaps.is_empty() {
        eprintln!("No snaps are installed yet.");
        return Ok(());
    }
    let e = Escapes::from_options(&color, &unicode);
    print!("{}", render(&snaps, &seed::publishers(root), &e));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use coreforge_snap::SnapYaml;

    fn snap(name: &str, rev: &str, yaml: &str) -> Installed {
        Installed {
            name: name.into(),
            revision: rev.into(),
            yaml: SnapYaml::parse(yaml.as_bytes()).map_err(|e| e.to_string()),
        }
    }

    fn fixture() -> (Vec<Installed>, BTreeMap<String, Publisher>) {
        let snaps = vec![
            snap("core", "16", "name: core\nversion: '16-2.61'\ntype: os\n"),
            snap("hello", "x1", "name: hello\nversion: '1.0'\n"),
            snap("pi", "42", "name: pi\nversion: '22-1'\ntype: gadget\n"),
            snap(
                "pi-kernel",
                "7",
                "name: pi-kernel\nversion: 6.1.0\ntype: kernel\n",
            ),
            snap("tools", "3", "name: tools\nversion: '2'\n"),
            Installed {
                name: "gone".into(),
                revision: "5".into(),
                yaml: Err("not mounted".into()),
            },
        ];
        let mut p = BTreeMap::new();
        let verified = |u: &str, v: &str| Publisher {
            username: u.into(),
            validation: v.into(),
        };
        p.insert("core".into(), verified("canonical", "verified"));
        p.insert("hello".into(), verified("canonical", "verified"));
        p.insert("pi".into(), verified("acme", "starred"));
        p.insert("pi-kernel".into(), verified("acme", "starred"));
        p.insert("tools".into(), verified("jo", "unproven"));
        (snaps, p)
    }

    #[test]
    fn the_table_snapd_prints_off_a_terminal() {
        let (snaps, p) = fixture();
        assert_eq!(
            render(&snaps, &p, &Escapes::pick("auto", "auto", false, &|_| None)),
            "Name       Version  Rev  Tracking  Publisher    Notes\n\
             core       16-2.61  16   -         canonical**  core\n\
             hello      1.0      x1   -         -            -\n\
             pi         22-1     42   -         acme*        gadget\n\
             pi-kernel  6.1.0    7    -         acme*        kernel\n\
             tools      2        3    -         jo           -\n\
             gone       -        5    -         -            broken\n"
        );
    }

    #[test]
    fn colour_and_unicode_on_a_terminal() {
        let env = |k: &str| (k == "LANG").then(|| "en_US.UTF-8".to_owned());
        let e = Escapes::pick("auto", "auto", true, &env);
        let (snaps, p) = fixture();
        let text = render(&snaps[..1], &p, &e);
        assert_eq!(
            text,
            "Name  Version  Rev  Tracking  Publisher\x1b[32m\x1b[0m   Notes\n\
             core  16-2.61  16   -         canonical\x1b[32m✓\x1b[0m  core\n"
        );
        let mono = Escapes::pick("auto", "never", true, &|k| {
            (k == "NO_COLOR").then(String::new)
        });
        assert_eq!(short_publisher(&mono, p.get("pi")), "acme\x1b[2m*\x1b[0m");
        let never = Escapes::pick("never", "always", true, &env);
        assert_eq!(short_publisher(&never, p.get("core")), "canonical✓");
    }
}
