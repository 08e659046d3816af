//! Which snaps the seed holds: the model's gadget, kernel, base and required snaps from the
//! store at the channel (or local files for a dangerous model), plus `--extra-snaps`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use coreforge_assertions::Model;

use crate::snap::{self, SnapInfo};
use crate::store::{ResolvedSnap, Store};

/// Why a snap is in the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SeedRole {
    Gadget,
    Kernel,
    /// The base, or `core` for a series-16 model without one.
    Base,
    Snapd,
    /// Required by the model.
    Required,
    /// Asked for with `--extra-snaps`.
    Extra,
}

impl SeedRole {
    /// The snap types a snap in this role may have.
    pub(super) fn allowed_types(self) -> &'static [&'static str] {
        match self {
            SeedRole::Gadget => &["gadget"],
            SeedRole::Kernel => &["kernel"],
            SeedRole::Base => &["base", "core"],
            SeedRole::Snapd => &["snapd"],
            SeedRole::Required | SeedRole::Extra => {
                &["app", "base", "core", "snapd", "gadget", "kernel"]
            }
        }
    }
}

impl std::fmt::Display for SeedRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SeedRole::Gadget => "gadget",
            SeedRole::Kernel => "kernel",
            SeedRole::Base => "base",
            SeedRole::Snapd => "snapd",
            SeedRole::Required => "required",
            SeedRole::Extra => "extra",
        })
    }
}

/// A snap picked for the seed, with where it came from.
pub(super) struct SeedSnap {
    pub name: String,
    pub path: PathBuf,
    pub info: SnapInfo,
    /// Store revision and snap-id; `None` for an unasserted local file.
    pub resolved: Option<ResolvedSnap>,
    /// Why it is seeded (gadget, kernel, base, required, extra).
    pub why: SeedRole,
}

impl SeedSnap {
    pub(super) fn file_name(&self) -> String {
        match &self.resolved {
            Some(r) => format!("{}_{}.snap", self.name, r.revision),
            None => format!("{}_x1.snap", self.name),
        }
    }
}

pub(super) fn allows_local_snaps(model: &Model) -> bool {
    model.grade.as_deref() == Some("dangerous")
}

pub(super) fn parse_overrides(specs: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let (name, file) = spec
            .split_once('=')
            .with_context(|| format!("--snap {spec:?}: expected NAME=FILE"))?;
        out.insert(name.to_owned(), PathBuf::from(file));
    }
    Ok(out)
}

fn channel_with_track(channel: &str, track: Option<&str>) -> String {
    match track {
        None => channel.to_owned(),
        // `gadget: pi3=18` pins the track; the risk (and branch) still come from -c.
        Some(t) => {
            let parts: Vec<&str> = channel.split('/').collect();
            let risk_and_branch = match parts.as_slice() {
                [risk] => (*risk).to_owned(),
                [first, rest @ ..] if is_risk(first) => std::iter::once(*first)
                    .chain(rest.iter().copied())
                    .collect::<Vec<_>>()
                    .join("/"),
                [_, rest @ ..] => rest.join("/"),
                [] => "stable".to_owned(),
            };
            format!("{t}/{risk_and_branch}")
        }
    }
}

fn is_risk(s: &str) -> bool {
    matches!(s, "stable" | "candidate" | "beta" | "edge")
}

pub(super) fn resolve_snaps(
    model: &Model,
    arch: &str,
    channel: &str,
    extra: &[String],
    overrides: &BTreeMap<String, PathBuf>,
    store: &dyn Store,
) -> Result<Vec<SeedSnap>> {
    let mut wanted: Vec<(String, Option<String>, SeedRole)> = Vec::new();
    if model.snaps.is_empty() {
        if let Some(g) = &model.gadget {
            wanted.push((g.clone(), model.gadget_track.clone(), SeedRole::Gadget));
        }
        if let Some(k) = &model.kernel {
            wanted.push((k.clone(), model.kernel_track.clone(), SeedRole::Kernel));
        }
        wanted.push((model.base_or_core().to_owned(), None, SeedRole::Base));
        for r in &model.required_snaps {
            wanted.push((r.clone(), None, SeedRole::Required));
        }
    } else {
        for s in &model.snaps {
            let why = match s.snap_type.as_str() {
                "gadget" => SeedRole::Gadget,
                "kernel" => SeedRole::Kernel,
                "base" | "core" if Some(&s.name) == model.base.as_ref() => SeedRole::Base,
                "snapd" => SeedRole::Snapd,
                _ if s.presence == "optional" => continue,
                _ => SeedRole::Required,
            };
            wanted.push((s.name.clone(), None, why));
        }
        if !model
            .snaps
            .iter()
            .any(|s| Some(&s.name) == model.base.as_ref())
        {
            wanted.push((model.base_or_core().to_owned(), None, SeedRole::Base));
        }
    }
    let mut out: Vec<SeedSnap> = Vec::new();
    for (name, track, why) in wanted {
        if out.iter().any(|s| s.name == name) {
            continue;
        }
        let snap = match overrides.get(&name) {
            Some(file) => local_snap(file, why)?,
            None => {
                let ch = channel_with_track(channel, track.as_deref());
                let r = store
                    .resolve(&name, &ch, arch)
                    .with_context(|| format!("cannot seed the model's {why} snap {name:?}"))?;
                SeedSnap {
                    name: r.name.clone(),
                    path: r.path.clone(),
                    info: r.info.clone(),
                    resolved: Some(r),
                    why,
                }
            }
        };
        ensure!(
            snap.info.name == name,
            "{why} snap {}: its snap.yaml names it {:?}, the model wants {name:?}",
            snap.path.display(),
            snap.info.name
        );
        out.push(snap);
    }
    for spec in extra {
        let snap = if spec.ends_with(".snap") || Path::new(spec).is_file() {
            local_snap(Path::new(spec), SeedRole::Extra)?
        } else {
            let r = store
                .resolve(spec, channel, arch)
                .with_context(|| format!("cannot seed the extra snap {spec:?}"))?;
            SeedSnap {
                name: r.name.clone(),
                path: r.path.clone(),
                info: r.info.clone(),
                resolved: Some(r),
                why: SeedRole::Extra,
            }
        };
        if let Some(seeded) = out.iter().find(|s| s.name == snap.name) {
            bail!(
                "--extra-snaps {spec}: snap {:?} is already seeded as the model's {} snap",
                snap.name,
                seeded.why
            );
        }
        out.push(snap);
    }
    for s in &out {
        let types = s.why.allowed_types();
        ensure!(
            types.contains(&s.info.snap_type.as_str()),
            "{} snap {:?} has type {:?}, expected {}",
            s.why,
            s.name,
            s.info.snap_type,
            types.join(" or ")
        );
        ensure!(
            s.info.supports(arch),
            "snap {:?} is for {} but the model's architecture is {arch}",
            s.name,
            s.info.architectures.join(", ")
        );
        if s.resolved.is_none() {
            eprintln!("warning: snap {:?} is a local file with no store assertions; it is seeded unasserted", s.name);
        } else {
            // The store read its snap.yaml when the snap was uploaded; the apps' checks
            // (commands present in the squashfs) run again on the very file seeded.
            snap::read_info(&s.path)
                .with_context(|| format!("{} snap {:?} ({})", s.why, s.name, s.path.display()))?;
        }
    }
    Ok(out)
}

fn local_snap(file: &Path, why: SeedRole) -> Result<SeedSnap> {
    let info = snap::read_info(file).with_context(|| format!("{why} snap {}", file.display()))?;
    Ok(SeedSnap {
        name: info.name.clone(),
        path: file.to_owned(),
        info,
        resolved: None,
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_pin_the_channel() {
        assert_eq!(channel_with_track("beta", None), "beta");
        assert_eq!(channel_with_track("beta", Some("18")), "18/beta");
        assert_eq!(channel_with_track("latest/edge", Some("18")), "18/edge");
        assert_eq!(channel_with_track("beta/fix", Some("18")), "18/beta/fix");
    }
}
