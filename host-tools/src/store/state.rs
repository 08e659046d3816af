//! `store.json`: the index of a local store (snaps, revisions, channels).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
