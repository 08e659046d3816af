//! What the seed on the boot partition (`/run/mnt/ubuntu-seed`) tells `snap list` that the
//! mounted snaps do not: each asserted snap's publisher. `systems/<label>/assertions/snaps`
//! holds the snap-declarations (snap name to publisher id) and the publishers' account
//! assertions (username and validation). The agent verified these at boot; this only reads
//! their top-level headers, and anything it cannot read is simply not shown.

use std::collections::BTreeMap;
use std::fs;

use crate::root::Root;

/// Where the OS finds the boot partition with the seed.
pub const SEED: &str = "/run/mnt/ubuntu-seed";

/// A store account, as `snap list` shows a publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    /// The account's username.
    pub username: String,
    /// `verified`, `starred` or `unproven`.
    pub validation: String,
}

/// The top-level `name: value` headers of each assertion in a stream (`HEADERS "\n\n"
/// [BODY "\n\n"] SIGNATURE`, assertions separated by blank lines). Multi-line, list and map
/// headers are skipped.
pub fn headers(stream: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut rest = stream;
    loop {
        rest = rest.trim_start_matches('\n');
        let Some(end) = rest.find("\n\n") else { break };
        let mut h = BTreeMap::new();
        for line in rest[..end].lines() {
            if line.starts_with(' ') {
                continue;
            }
            if let Some((k, v)) = line.split_once(": ") {
                h.insert(k.to_owned(), v.to_owned());
            }
        }
        let mut after = &rest[end + 2..];
        let body: usize = h
            .get("body-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        if body > 0 {
            match after.get(body..).and_then(|a| a.strip_prefix("\n\n")) {
                Some(a) => after = a,
                None => break,
            }
        }
        // The signature runs to the next blank line.
        rest = after.find("\n\n").map_or("", |i| &after[i + 2..]);
        if h.contains_key("type") {
            out.push(h);
        }
    }
    out
}

/// Publishers of the seeded snaps, by snap name, from every system on the seed.
pub fn publishers(root: &Root) -> BTreeMap<String, Publisher> {
    let mut decls: BTreeMap<String, String> = BTreeMap::new();
    let mut accounts: BTreeMap<String, Publisher> = BTreeMap::new();
    let systems = root.path(SEED).join("systems");
    let mut labels: Vec<_> = fs::read_dir(&systems)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    labels.sort();
    for label in labels {
        let Ok(text) = fs::read_to_string(label.join("assertions/snaps")) else {
            continue;
        };
        for h in headers(&text) {
            let get = |k: &str| h.get(k).cloned();
            match h.get("type").map(String::as_str) {
                Some("snap-declaration") => {
                    if let (Some(name), Some(publisher)) = (get("snap-name"), get("publisher-id")) {
                        decls.insert(name, publisher);
                    }
                }
                Some("account") => {
                    if let (Some(id), Some(username)) = (get("account-id"), get("username")) {
                        let validation = get("validation").unwrap_or_else(|| "unproven".into());
                        accounts.insert(
                            id,
                            Publisher {
                                username,
                                validation,
                            },
                        );
                    }
                }
                _ => {}
            }
        }
    }
    decls
        .into_iter()
        .filter_map(|(name, id)| Some((name, accounts.get(&id)?.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "type: account\nauthority-id: canonical\naccount-id: canonical\ndisplay-name: Canonical\ntimestamp: 2016-04-01T00:00:00.0Z\nusername: canonical\nvalidation: verified\nsign-key-sha3-384: -CvQ\n\nAcLBUgQAAQoABgUCV\nxyz==\n\ntype: snap-declaration\nauthority-id: canonical\nseries: 16\nsnap-id: abc\npublisher-id: canonical\nsnap-name: core22\ntimestamp: 2022-01-01T00:00:00.0Z\nplugs:\n  x:\n    allow: true\nbody-length: 18\nsign-key-sha3-384: -CvQ\n\ntype: fake-in-body\n\nAcLBsig\n\ntype: account\naccount-id: dev1\nusername: jo-dev\nvalidation: unproven\n\nsig\n\ntype: snap-declaration\nsnap-name: hello\npublisher-id: dev1\n\nsig\n\ntype: snap-declaration\nsnap-name: orphan\npublisher-id: nobody\n\nsig\n";

    #[test]
    fn headers_of_each_assertion_bodies_skipped() {
        let all = headers(STREAM);
        let types: Vec<_> = all.iter().map(|h| h["type"].as_str()).collect();
        assert_eq!(
            types,
            [
                "account",
                "snap-declaration",
                "account",
                "snap-declaration",
                "snap-declaration"
            ]
        );
        assert_eq!(all[1]["snap-name"], "core22");
        assert!(!all[1].contains_key("allow"), "nested headers are skipped");
    }

    #[test]
    fn publishers_from_the_seed() {
        let t = tempfile::tempdir().unwrap();
        let dir = t
            .path()
            .join("run/mnt/ubuntu-seed/systems/20260101/assertions");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("snaps"), STREAM).unwrap();
        let root = crate::root::Root::at(t.path());
        let p = publishers(&root);
        assert_eq!(p["core22"].username, "canonical");
        assert_eq!(p["core22"].validation, "verified");
        assert_eq!(p["hello"].username, "jo-dev");
        assert!(!p.contains_key("orphan"));
        assert!(publishers(&crate::root::Root::at(&t.path().join("none"))).is_empty());
    }
}
