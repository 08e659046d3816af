//! `snap services [<snap>|<snap>.<app>...]`: snapd's table (cmd/snap/cmd_services.go,
//! `clientutil.FmtServiceStatus`) of every daemon of the mounted snaps, with systemd's
//! `is-enabled` and `is-active` for its `snap.<snap>.<app>.service`.

use std::process::Command;

use crate::root::{self, Root};
use crate::table;

/// One service's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `<snap>.<app>`
    pub name: String,
    /// `enabled` or `disabled`.
    pub startup: &'static str,
    /// `active` or `inactive`.
    pub current: &'static str,
}

/// What `systemctl is-enabled` prints for a unit started at boot. Units from the generator
/// are `generated`; an administrator's own `systemctl enable` gives `enabled`.
fn enabled(state: &str) -> bool {
    matches!(state, "enabled" | "enabled-runtime" | "generated" | "alias")
}

/// `systemctl <verb> <unit>`'s one-word answer (it exits non-zero for `disabled` and
/// `inactive`, which are answers too).
fn systemctl(verb: &str, unit: &str) -> Result<String, String> {
    let out = Command::new("systemctl")
        .args([verb, unit])
        .output()
        .map_err(|e| format!("cannot run systemctl {verb} {unit}: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The rows for the services that `filters` select (all if empty).
pub fn rows(root: &Root, filters: &[String]) -> Result<Vec<Row>, String> {
    let snaps = root::installed(root).map_err(|e| e.to_string())?;
    for f in filters {
        let (snap, app) = match f.split_once('.') {
            Some((s, a)) => (s, Some(a)),
            None => (f.as_str(), None),
        };
        let found = snaps.iter().find(|s| s.name == snap);
        match (found, app) {
            (None, _) => return Err(format!("snap {snap:?} not found")),
            (Some(s), Some(a)) => {
                let has = s.yaml.as_ref().is_ok_and(|y| y.apps.contains_key(a));
                if !has {
                    return Err(format!("snap {snap:?} has no service {a:?}"));
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for s in &snaps {
        let Ok(yaml) = &s.yaml else { continue };
        for app in yaml.services() {
            let name = format!("{}.{}", s.name, app.name);
            let wanted = filters.is_empty() || filters.iter().any(|f| *f == s.name || *f == name);
            if !wanted {
                continue;
            }
            let unit = format!("snap.{name}.service");
            let startup = if enabled(&systemctl("is-enabled", &unit)?) {
                "enabled"
            } else {
                "disabled"
            };
            let current = match systemctl("is-active", &unit)?.as_str() {
                "active" | "reloading" => "active",
                _ => "inactive",
            };
            out.push(Row {
                name,
                startup,
                current,
            });
        }
    }
    Ok(out)
}

/// The table snapd prints.
pub fn render(rows: &[Row]) -> String {
    let mut cells = vec![vec![
        "Service".to_owned(),
        "Startup".to_owned(),
        "Current".to_owned(),
        "Notes".to_owned(),
    ]];
    for r in rows {
        cells.push(vec![
            r.name.clone(),
            r.startup.to_owned(),
            r.current.to_owned(),
            "-".to_owned(),
        ]);
    }
    table::render(&cells)
}

/// `snap services [<service>...]`.
pub fn main(root: &Root, args: &[String]) -> Result<(), String> {
    if let Some(opt) = args.iter().find(|a| a.starts_with('-')) {
        return Err(format!("snap services: unknown option {opt:?}"));
    }
    let rows = rows(root, args)?;
    if rows.is_empty() {
        eprintln!("There are no services provided by installed snaps.");
        return Ok(());
    }
    print!("{}", render(&rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        for on in ["enabled", "enabled-runtime", "generated", "alias"] {
            assert!(enabled(on), "{on}");
        }
        for off in ["disabled", "masked", "static", "indirect", "not-found", ""] {
            assert!(!enabled(off), "{off}");
        }
    }

    #[test]
    fn table() {
        let rows = [
            Row {
                name: "hello.daemon".into(),
                startup: "enabled",
                current: "active",
            },
            Row {
                name: "hello.x".into(),
                startup: "disabled",
                current: "inactive",
            },
        ];
        assert_eq!(
            render(&rows),
            "Service       Startup   Current   Notes\n\
             hello.daemon  enabled   active    -\n\
             hello.x       disabled  inactive  -\n"
        );
    }
}
