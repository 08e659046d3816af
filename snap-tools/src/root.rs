//! The snaps the agent mounted: `/snap/<name>/<rev>` with `/snap/<name>/current -> <rev>`,
//! read under a root that tests move (`COREFORGE_SNAP_ROOT`, default `/`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use coreforge_snap::SnapYaml;

/// The environment variable that moves every path this program reads or writes (tests).
pub const ROOT_ENV: &str = "COREFORGE_SNAP_ROOT";

/// Where the OS's `/` is.
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    /// `$COREFORGE_SNAP_ROOT`, else `/`.
    pub fn from_env() -> Root {
        match std::env::var_os(ROOT_ENV) {
            Some(r) if !r.is_empty() => Root(PathBuf::from(r)),
            _ => Root(PathBuf::from("/")),
        }
    }

    /// Whether this is the device's own `/` (not a test root).
    pub fn is_real(&self) -> bool {
        self.0 == Path::new("/")
    }

    /// The root at `path` (tests).
    #[cfg(test)]
    pub fn at(path: &Path) -> Root {
        Root(path.to_path_buf())
    }

    /// The file at the absolute device path `abs`.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.0.join(abs.trim_start_matches('/'))
    }
}

/// A snap with a `current` link.
#[derive(Debug)]
pub struct Installed {
    /// Its name (the folder under /snap).
    pub name: String,
    /// The revision `current` points at (digits, or `x<N>` for an unasserted snap).
    pub revision: String,
    /// Its snap.yaml, or why it cannot be read (not mounted, or invalid).
    pub yaml: Result<SnapYaml, String>,
}

impl Installed {
    /// `/snap/<name>/<rev>`, as the snap sees itself (`$SNAP`).
    pub fn mount_dir(&self) -> String {
        format!("/snap/{}/{}", self.name, self.revision)
    }
}

/// snapd's snap names, as far as paths need: `[a-z0-9-]`, not starting with `-`.
fn plausible_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// A store revision (digits) or a local one (`x` and digits).
fn plausible_revision(rev: &str) -> bool {
    let digits = rev.strip_prefix('x').unwrap_or(rev);
    !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit())
}

/// The snap `name`, if it has a `current` link.
pub fn one(root: &Root, name: &str) -> Option<Installed> {
    if !plausible_name(name) || name == "bin" {
        return None;
    }
    let dir = root.path("/snap").join(name);
    let link = fs::read_link(dir.join("current")).ok()?;
    let revision = link.file_name()?.to_str()?.to_owned();
    if !plausible_revision(&revision) {
        return None;
    }
    let yaml_path = dir.join(&revision).join("meta/snap.yaml");
    let yaml = read_yaml(&yaml_path, name);
    Some(Installed {
        name: name.to_owned(),
        revision,
        yaml,
    })
}

fn read_yaml(path: &Path, name: &str) -> Result<SnapYaml, String> {
    let bytes = fs::read(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            format!("{} is missing: the snap is not mounted", path.display())
        } else {
            format!("cannot read {}: {e}", path.display())
        }
    })?;
    let yaml = SnapYaml::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if yaml.name != name {
        return Err(format!(
            "{}: it names the snap {:?}, not {name:?}",
            path.display(),
            yaml.name
        ));
    }
    Ok(yaml)
}

/// Every snap under /snap with a `current` link, by name.
pub fn installed(root: &Root) -> io::Result<Vec<Installed>> {
    let dir = root.path("/snap");
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot read {}: {e}", dir.display()),
            ))
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names.iter().filter_map(|n| one(root, n)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_snaps_with_a_current_link() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::at(t.path());
        let mk = |name: &str, rev: &str, yaml: Option<&str>| {
            let d = t.path().join("snap").join(name).join(rev);
            fs::create_dir_all(d.join("meta")).unwrap();
            if let Some(y) = yaml {
                fs::write(d.join("meta/snap.yaml"), y).unwrap();
            }
            std::os::unix::fs::symlink(rev, t.path().join("snap").join(name).join("current"))
                .unwrap();
        };
        mk("hello", "3", Some("name: hello\nversion: '1'\n"));
        mk("local", "x1", Some("name: local\nversion: '2'\n"));
        mk("gone", "7", None);
        mk("other", "1", Some("name: different\n"));
        fs::create_dir_all(t.path().join("snap/bin")).unwrap();
        fs::create_dir_all(t.path().join("snap/nocurrent/1")).unwrap();
        let all = installed(&root).unwrap();
        let names: Vec<_> = all.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["gone", "hello", "local", "other"]);
        assert_eq!(all[1].revision, "3");
        assert_eq!(all[1].mount_dir(), "/snap/hello/3");
        assert_eq!(all[1].yaml.as_ref().unwrap().version, "1");
        assert_eq!(all[2].revision, "x1");
        assert!(all[0].yaml.as_ref().unwrap_err().contains("not mounted"));
        assert!(all[3].yaml.as_ref().unwrap_err().contains("\"different\""));
        assert!(one(&root, "../etc").is_none());
        assert!(!root.is_real() && Root::at(Path::new("/")).is_real());
        assert!(installed(&Root::at(&t.path().join("none")))
            .unwrap()
            .is_empty());
    }
}
