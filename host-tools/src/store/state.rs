//! `store.json`: the index of a local store (snaps, revisions, channels).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::channel::Channel;
use crate::snap::SnapInfo;

/// Version of the store.json layout.
pub const FORMAT: u32 = 1;

/// The whole index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct State {
    /// Layout version ([`FORMAT`]).
    pub format: u32,
    /// The store's account id, the authority of everything it signs.
    pub authority_id: String,
    /// Id of the store's signing key.
    pub key_id: String,
    /// Snaps by name.
    #[serde(default)]
    pub snaps: BTreeMap<String, SnapEntry>,
}

/// One snap name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SnapEntry {
    /// Fixed on first upload.
    pub snap_id: String,
    /// The publisher's account id.
    pub publisher_id: String,
    /// Uploaded revisions.
    #[serde(default)]
    pub revisions: BTreeMap<u64, RevisionEntry>,
    /// Full channel name -> architecture (or `all`) -> revision.
    #[serde(default)]
    pub channels: BTreeMap<String, BTreeMap<String, u64>>,
}

impl SnapEntry {
    /// The revision `arch` gets at `channel`, with snapd's risk fallback (edge follows beta
    /// follows candidate follows stable) and a revision for `all` serving every
    /// architecture; and the channel it was found in.
    pub fn pick(&self, channel: &Channel, arch: &str) -> Option<(u64, Channel)> {
        channel.fallback().into_iter().find_map(|c| {
            let archs = self.channels.get(&c.to_string())?;
            let revision = archs.get(arch).or_else(|| archs.get("all"))?;
            Some((*revision, c))
        })
    }
}

/// One uploaded revision.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RevisionEntry {
    /// The file, relative to the store directory.
    pub file: String,
    /// `snap-sha3-384` of the file.
    pub sha3_384: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its snap.yaml.
    pub info: SnapInfo,
}
