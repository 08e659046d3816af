//! Every command an app runs must be in the snap: `command`, each `command-chain` entry and a
//! service's stop, reload and post-stop commands, as snapd's `ValidateSnapContainer` checks
//! when `snap pack` runs. The snap is seen through a look-up, so the same check runs on a
//! directory (`coreforge pack`) and on a squashfs listing (`coreforge build-image`).

use crate::yaml::{command_path, SnapYaml, YamlError};

/// One path inside a snap, as a look-up reports it (without following a last symlink).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Nothing there.
    Missing,
    /// A directory.
    Dir,
    /// A regular file with its permission bits.
    File {
        /// `st_mode & 0o7777`.
        mode: u32,
    },
    /// A symbolic link and its target as stored.
    Symlink {
        /// The link's target.
        target: String,
    },
    /// A device, FIFO or socket.
    Other,
}

/// Where a path leads once symbolic links inside the snap are followed.
enum Resolved {
    Node(Node),
    /// An absolute link, or one that leaves the snap: it points into the base at run time,
    /// which snapd does not check either.
    Outside,
    Missing(String),
    Loop,
}

fn resolve(lookup: &mut dyn FnMut(&str) -> Node, path: &str) -> Resolved {
    let mut pending: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                if done.pop().is_none() {
                    return Resolved::Outside;
                }
                continue;
            }
            _ => {}
        }
        done.push(part);
        let here = done.join("/");
        match lookup(&here) {
            Node::Missing => return Resolved::Missing(here),
            Node::Symlink { target } => {
                hops += 1;
                if hops > 40 {
                    return Resolved::Loop;
                }
                if target.starts_with('/') {
                    return Resolved::Outside;
                }
                done.pop();
                pending.extend(target.split('/').rev().map(str::to_owned));
            }
            Node::Dir => {}
            node if pending.iter().all(|p| p.is_empty() || p == ".") => {
                return Resolved::Node(node)
            }
            // A file in the middle of a path.
            _ => return Resolved::Missing(here),
        }
    }
    Resolved::Node(Node::Dir)
}

/// Checks that every command of every app is an executable file in the snap. Non-service
/// commands and command-chain entries must be readable and executable by all (0555), as
/// snapd requires for what users run; a service's commands need an execute bit.
pub fn check_commands(
    yaml: &SnapYaml,
    lookup: &mut dyn FnMut(&str) -> Node,
) -> Result<(), YamlError> {
    for app in yaml.apps.values() {
        let mut paths: Vec<(String, &str, u32)> = Vec::new();
        let own = if app.is_service() { 0o111 } else { 0o555 };
        paths.push(("command".into(), &app.command, own));
        for (i, c) in app.command_chain.iter().enumerate() {
            paths.push((format!("command-chain[{i}]"), c, 0o555));
        }
        for (f, c) in [
            ("stop-command", &app.stop_command),
            ("reload-command", &app.reload_command),
            ("post-stop-command", &app.post_stop_command),
        ] {
            if let Some(c) = c {
                paths.push((f.into(), c, 0o111));
            }
        }
        for (field, command, need) in paths {
            let at = format!("apps.{}.{field}", app.name);
            let Some(path) = command_path(command) else {
                return Err(YamlError::new(
                    at,
                    format!("{command:?} does not name a file inside the snap"),
                ));
            };
            let fail = |why: String| Err(YamlError::new(at.clone(), why));
            match resolve(lookup, &path) {
                Resolved::Outside => {}
                Resolved::Missing(p) if p == path => {
                    return fail(format!("{path:?} does not exist in the snap"))
                }
                Resolved::Missing(p) => {
                    return fail(format!(
                        "{path:?} does not exist in the snap ({p:?} is missing or not a directory)"
                    ))
                }
                Resolved::Loop => return fail(format!("{path:?}: too many symbolic links")),
                Resolved::Node(Node::Dir) => {
                    return fail(format!("{path:?} is a directory, not a program"))
                }
                Resolved::Node(Node::File { mode }) => {
                    let runs = if need == 0o555 {
                        mode & 0o555 == 0o555
                    } else {
                        mode & 0o111 != 0
                    };
                    if !runs {
                        return fail(format!(
                            "{path:?} is not executable{} (mode {:04o})",
                            if need == 0o555 { " by everyone" } else { "" },
                            mode & 0o7777
                        ));
                    }
                }
                Resolved::Node(_) => return fail(format!("{path:?} is not a regular file")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn check(apps: &str, tree: &[(&str, Node)]) -> Result<(), String> {
        let y = SnapYaml::parse(format!("name: s\napps:\n{apps}").as_bytes()).unwrap();
        let map: BTreeMap<&str, Node> = tree.iter().cloned().collect();
        check_commands(&y, &mut |p| map.get(p).cloned().unwrap_or(Node::Missing))
            .map_err(|e| e.to_string())
    }

    fn file(mode: u32) -> Node {
        Node::File { mode }
    }

    fn link(t: &str) -> Node {
        Node::Symlink { target: t.into() }
    }

    #[test]
    fn commands_must_exist_and_run() {
        let tree = [
            ("bin", Node::Dir),
            ("bin/app", file(0o755)),
            ("bin/svc", file(0o700)),
            ("bin/data", file(0o644)),
            ("bin/link", link("app")),
            ("bin/up", link("../bin/app")),
            ("bin/sh", link("/bin/sh")),
            ("bin/dangling", link("nope")),
            ("bin/loop", link("loop")),
            ("lib", link("bin")),
            ("fifo", Node::Other),
        ];
        assert_eq!(check("  a: {command: bin/app --x}\n", &tree), Ok(()));
        assert_eq!(check("  a: {command: /bin/app}\n", &tree), Ok(()));
        assert_eq!(check("  a: {command: bin/link}\n", &tree), Ok(()));
        assert_eq!(check("  a: {command: bin/up}\n", &tree), Ok(()));
        assert_eq!(check("  a: {command: lib/app}\n", &tree), Ok(()));
        assert_eq!(
            check("  a: {command: bin/sh}\n", &tree),
            Ok(()),
            "absolute links are not followed"
        );
        assert_eq!(
            check("  a: {command: bin/svc, daemon: simple}\n", &tree),
            Ok(())
        );
        let e = |apps: &str| check(apps, &tree).unwrap_err();
        assert_eq!(
            e("  a: {command: bin/nope}\n"),
            "apps.a.command: \"bin/nope\" does not exist in the snap"
        );
        assert!(e("  a: {command: nodir/x}\n").contains("does not exist"));
        assert!(e("  a: {command: bin/app/x}\n").contains("not a directory"));
        assert!(e("  a: {command: bin/dangling}\n").contains("does not exist"));
        assert!(e("  a: {command: bin/loop}\n").contains("too many"));
        assert!(e("  a: {command: bin}\n").contains("is a directory"));
        assert!(e("  a: {command: fifo}\n").contains("not a regular file"));
        assert_eq!(
            e("  a: {command: bin/svc}\n"),
            "apps.a.command: \"bin/svc\" is not executable by everyone (mode 0700)"
        );
        assert!(
            e("  a: {command: bin/data, daemon: simple}\n").contains("not executable (mode 0644)")
        );
        assert!(
            e("  a: {command: bin/app, command-chain: [bin/app, bin/gone]}\n")
                .starts_with("apps.a.command-chain[1]: \"bin/gone\"")
        );
        assert!(
            e("  a: {command: bin/app, daemon: simple, stop-command: bin/stop}\n")
                .starts_with("apps.a.stop-command:")
        );
    }
}
