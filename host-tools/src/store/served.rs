//! A served store as build-image's [`Store`]: snaps resolved by channel and architecture
//! with snapd's refresh request, downloaded into a cache named by their SHA3-384 (each
//! checked for the size and digest the store announced), and assertions fetched from
//! `/v2/assertions/`. Nothing from the server is trusted: the roots come out of band
//! (`--trusted`), and build-image verifies every assertion against them.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use coreforge_assertions::Assertion;
use serde_json::json;

use super::files::io_err;
use super::remote::{Remote, RemoteError};
use super::{ResolvedSnap, Store, StoreError};
use crate::snap;

const ASSERTION_TYPE: &str = "application/x.ubuntu.assertion";

/// A store reached over HTTPS, for builds.
#[derive(Debug)]
pub struct ServedStore {
    remote: Remote,
    roots: Vec<Assertion>,
    downloads: PathBuf,
}

impl ServedStore {
    /// The store at `url`, trusting the root assertions in `trusted`, caching downloads in
    /// `cache/downloads`.
    pub fn open(url: &str, trusted: &Path, cache: &Path) -> Result<ServedStore, StoreError> {
        let bytes = fs::read(trusted).map_err(io_err("read", trusted))?;
        let roots = Assertion::decode_all(&bytes).map_err(|e| StoreError::Corrupt {
            path: trusted.to_owned(),
            reason: e.to_string(),
        })?;
        if roots.is_empty() {
            return Err(StoreError::Corrupt {
                path: trusted.to_owned(),
                reason: "it holds no assertion".into(),
            });
        }
        let downloads = cache.join("downloads");
        fs::create_dir_all(&downloads).map_err(io_err("create", &downloads))?;
        Ok(ServedStore {
            remote: Remote::new(url)?,
            roots,
            downloads,
        })
    }

    /// The assertions at `/v2/assertions/PATH` (none when the store has none: 404).
    fn assertions(&self, path: &str) -> Result<Vec<Assertion>, StoreError> {
        let (status, body) = self
            .remote
            .get(&format!("/v2/assertions/{path}"), ASSERTION_TYPE)?;
        match status {
            200 => Assertion::decode_all(&body).map_err(|e| {
                RemoteError::BadAnswer {
                    url: format!("{}/v2/assertions/{path}", self.remote.url()),
                    reason: format!("the assertions do not decode: {e}"),
                }
                .into()
            }),
            404 => Ok(Vec::new()),
            status => Err(RemoteError::Refused {
                url: format!("{}/v2/assertions/{path}", self.remote.url()),
                status,
                message: String::from_utf8_lossy(&body).chars().take(200).collect(),
            }
            .into()),
        }
    }

    /// The snap file with this digest: from the cache, or downloaded from `url` and kept
    /// only when its size and SHA3-384 are what the store announced.
    fn fetch(&self, url: &str, hex: &str, size: u64) -> Result<(PathBuf, String), StoreError> {
        let digest = hex_decode(hex).ok_or_else(|| RemoteError::BadAnswer {
            url: url.to_owned(),
            reason: format!("download.sha3-384 {hex:?} is not 48 bytes in hex"),
        })?;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest);
        let path = self.downloads.join(format!("{hex}.snap"));
        if let Ok(got) = snap::digest(&path) {
            if got == (b64.clone(), size) {
                return Ok((path, b64));
            }
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&self.downloads)
            .map_err(io_err("create a file in", &self.downloads))?;
        let (got, got_size) = self
            .remote
            .download(url, |body| snap::digest_copy(body, tmp.as_file_mut()))?;
        if got_size != size || got != b64 {
            return Err(RemoteError::BadAnswer {
                url: url.to_owned(),
                reason: format!(
                    "the file has {got_size} bytes and SHA3-384 {got}; the store announced {size} bytes and {b64}; nothing was kept"
                ),
            }
            .into());
        }
        tmp.as_file_mut()
            .flush()
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(io_err("write", &path))?;
        tmp.persist(&path)
            .map_err(|e| io_err("keep", &path)(e.error))?;
        Ok((path, b64))
    }
}

fn hex_decode(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 96 || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

impl Store for ServedStore {
    fn roots(&self) -> Result<Vec<Assertion>, StoreError> {
        Ok(self.roots.clone())
    }

    fn resolve(&self, name: &str, channel: &str, arch: &str) -> Result<ResolvedSnap, StoreError> {
        let answer = self.remote.refresh(
            arch,
            &json!({
                "context": [],
                "actions": [{"action": "download", "instance-key": "download-1",
                             "name": name, "channel": channel}],
            }),
        )?;
        let result = &answer["results"][0];
        if result["result"] == "error" {
            let message = result["error"]["message"].as_str().unwrap_or_default();
            return Err(match result["error"]["code"].as_str() {
                Some("name-not-found") => StoreError::UnknownSnap {
                    name: name.to_owned(),
                    store: PathBuf::from(self.remote.url()),
                    known: Vec::new(),
                },
                _ => StoreError::NoRevision {
                    name: name.to_owned(),
                    arch: arch.to_owned(),
                    channel: channel.to_owned(),
                    released: result["error"]["extra"]["releases"]
                        .as_array()
                        .map(|r| {
                            r.iter()
                                .map(|x| {
                                    format!("{} {}", x["channel"], x["architecture"])
                                        .replace('"', "")
                                })
                                .collect()
                        })
                        .unwrap_or_else(|| vec![message.to_owned()]),
                },
            });
        }
        let bad = |reason: String| -> StoreError {
            RemoteError::BadAnswer {
                url: format!("{}/v2/snaps/refresh", self.remote.url()),
                reason,
            }
            .into()
        };
        let snap = &result["snap"];
        let field = |f: &str| snap[f].as_str().map(str::to_owned);
        let (Some(snap_id), Some(revision), Some(url), Some(hex), Some(size)) = (
            field("snap-id"),
            snap["revision"].as_u64(),
            snap["download"]["url"].as_str(),
            snap["download"]["sha3-384"].as_str(),
            snap["download"]["size"].as_u64(),
        ) else {
            return Err(bad(format!(
                "the answer for {name} lacks snap-id, revision or download: {result}"
            )));
        };
        if snap["name"].as_str() != Some(name) {
            return Err(bad(format!(
                "asked for {name}, the store answered {}",
                snap["name"]
            )));
        }
        let (path, sha3_384) = self.fetch(url, hex, size)?;
        let info = snap::read_info(&path)?;
        if info.name != name {
            return Err(bad(format!(
                "the file downloaded for {name} is the snap {}",
                info.name
            )));
        }
        Ok(ResolvedSnap {
            name: name.to_owned(),
            snap_id,
            revision,
            path,
            sha3_384,
            info,
        })
    }

    fn snap_assertions(&self, snap: &ResolvedSnap) -> Result<Vec<Assertion>, StoreError> {
        let mut out = self.assertions(&format!("snap-declaration/16/{}", snap.snap_id))?;
        out.extend(self.assertions(&format!("snap-revision/{}", snap.sha3_384))?);
        Ok(out)
    }

    fn account_assertions(&self, account_id: &str) -> Result<Vec<Assertion>, StoreError> {
        let mut out = self.assertions(&format!("account/{account_id}"))?;
        if out.is_empty() {
            return Err(StoreError::UnknownAccount {
                account: account_id.to_owned(),
                store: PathBuf::from(self.remote.url()),
            });
        }
        out.extend(self.assertions(&format!("account-key?account-id={account_id}"))?);
        Ok(out)
    }

    fn all_account_assertions(&self) -> Result<Vec<Assertion>, StoreError> {
        let mut out = self.assertions("account")?;
        out.extend(self.assertions("account-key")?);
        Ok(out)
    }
}
