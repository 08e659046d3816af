//! The requests and answers of snapd's store API (snapd's `store/details_v2.go`,
//! `store_action.go`, `store_asserts.go`): what a served store says to `snap download`.
//!
//! Handlers return `Result<_, Response>`: the error is the answer for the client, made where
//! the fault is found.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tower::ServiceExt;
use tower_http::services::ServeFile;
use tower_http::timeout::RequestBodyTimeoutLayer;

use super::{publish, Limits};
use crate::store::{
    find_assertion_in, Channel, LocalStore, RevisionEntry, SnapEntry, StoreError, RISKS,
};

/// The media type of assertions.
const ASSERTION_TYPE: &str = "application/x.ubuntu.assertion";

/// Bytes read from a snap file at a time for a download.
const DOWNLOAD_CHUNK: usize = 4 << 20;

/// The series every snap of this store is for.
const SERIES: &str = "16";

/// What every handler is given.
#[derive(Clone)]
pub(super) struct Served {
    /// The store's directory.
    pub dir: PathBuf,
    /// Largest upload taken.
    pub max_upload_bytes: u64,
}

/// The API on the store in `dir` (every request reads the store anew: what `upload` and
/// `release` change on the directory is served at once).
pub fn router(dir: PathBuf, limits: &Limits) -> Router {
    Router::new()
        .route("/v2/snaps/refresh", post(refresh))
        .route("/v2/snaps/info/{name}", get(info))
        .route("/v2/assertions/{kind}", get(assertion_list))
        .route("/v2/assertions/{kind}/{*key}", get(assertion))
        .route("/download/{file}", get(download))
        .route("/api/v2/tokens", post(publish::login))
        .route("/api/v2/keys/{email}", get(publish::keys))
        .route("/dev/api/account/account-key", post(publish::register_key))
        .route("/dev/api/snaps/upload", post(publish::upload))
        .route("/dev/api/snaps/{name}/releases", post(publish::release))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            limits.max_header_bytes,
            bounded_headers,
        ))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .with_state(Served {
            dir,
            max_upload_bytes: limits.max_upload_bytes,
        })
}

/// Refuses requests whose headers take more than `max` bytes (431). hyper's read buffer
/// (twice `max`) bounds what is held in memory; this makes the limit exact.
async fn bounded_headers(
    State(max): State<usize>,
    request: Request,
    next: middleware::Next,
) -> Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + request.uri().to_string().len();
    if size > max {
        return error_list(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "invalid-request",
            format!("the request's headers take {size} bytes; at most {max}"),
        );
    }
    next.run(request).await
}

/// An answer with snapd's `error-list`.
pub(super) fn error_list(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error-list": [{"code": code, "message": message.into()}]});
    (status, Json(body)).into_response()
}

/// A store that cannot be read is the server's fault, not the client's.
pub(super) fn broken(e: &StoreError) -> Response {
    eprintln!("store serve: {e}");
    error_list(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal-error",
        "the store cannot be read; its administrator was told why",
    )
}

async fn not_found() -> Response {
    error_list(StatusCode::NOT_FOUND, "not-found", "no such resource")
}

/// Runs `f` off the async threads (it reads files and databases).
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Response> + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

/// Runs `f` on the store, off the async threads.
pub(super) async fn with_store<T: Send + 'static>(
    served: &Served,
    f: impl FnOnce(&LocalStore) -> Result<T, Response> + Send + 'static,
) -> Result<T, Response> {
    let dir = served.dir.clone();
    blocking(move || f(&LocalStore::open(&dir).map_err(|e| broken(&e))?)).await
}

/// Runs `f` on the store opened for changes (the writers' lock held), off the async threads.
pub(super) async fn with_store_locked<T: Send + 'static>(
    served: &Served,
    f: impl FnOnce(&mut LocalStore) -> Result<T, Response> + Send + 'static,
) -> Result<T, Response> {
    let dir = served.dir.clone();
    blocking(move || f(&mut LocalStore::open_locked(&dir).map_err(|e| broken(&e))?)).await
}

/// The device's architecture, from `Snap-Device-Architecture` (snapd always sends it).
fn device_arch(headers: &HeaderMap) -> Result<String, Response> {
    let arch = headers
        .get("Snap-Device-Architecture")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if crate::snap::ARCHITECTURES.contains(&arch) && arch != "all" {
        Ok(arch.to_owned())
    } else {
        Err(error_list(
            StatusCode::BAD_REQUEST,
            "invalid-field",
            format!("Snap-Device-Architecture {arch:?} is not an architecture this store knows"),
        ))
    }
}

/// Refuses a `Snap-Device-Series` other than the one series there is.
fn check_series(headers: &HeaderMap) -> Result<(), Response> {
    match headers.get("Snap-Device-Series").map(HeaderValue::to_str) {
        None | Some(Ok(SERIES)) => Ok(()),
        Some(other) => Err(error_list(
            StatusCode::BAD_REQUEST,
            "invalid-field",
            format!("Snap-Device-Series {other:?}: this store has series {SERIES} only"),
        )),
    }
}

/// This server's base URL as the client reached it (for download URLs).
pub(super) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("https://{host}")
}

/// A revision as snapd's `storeSnap` (details_v2.go).
fn store_snap(
    store: &LocalStore,
    name: &str,
    entry: &SnapEntry,
    revision: u64,
    rev: &RevisionEntry,
    base: &str,
) -> Value {
    let publisher = store.account_of(&entry.publisher_id).ok();
    let username = publisher
        .as_ref()
        .and_then(|a| a.header_str("username"))
        .unwrap_or(&entry.publisher_id);
    let display = publisher
        .as_ref()
        .and_then(|a| a.header_str("display-name"))
        .unwrap_or(username);
    let validation = match publisher.as_ref().and_then(|a| a.header_str("validation")) {
        Some("verified") => "verified",
        _ => "unproven",
    };
    json!({
        "architectures": rev.info.architectures,
        "base": "",
        "confinement": "strict",
        "created-at": "",
        "description": "",
        "download": {
            "sha3-384": sha3_hex(&rev.sha3_384),
            "size": rev.size,
            "url": format!("{base}/download/{}_{revision}.snap", entry.snap_id),
            "deltas": [],
        },
        "epoch": {"read": [0], "write": [0]},
        "license": "",
        "name": name,
        "publisher": {
            "id": entry.publisher_id,
            "username": username,
            "display-name": display,
            "validation": validation,
        },
        "revision": revision,
        "snap-id": entry.snap_id,
        "summary": "",
        "title": name,
        // snapd's name for the `core` type.
        "type": if rev.info.snap_type == "core" { "os" } else { rev.info.snap_type.as_str() },
        "version": rev.info.version,
    })
}

/// The store's `snap-sha3-384` (base64url, as in assertions) in hex, as snapd's refresh
/// answer carries it.
fn sha3_hex(b64: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .map(|d| crate::image::bmap::hex(&d))
        .unwrap_or_default()
}

/// Every release of the snap: (channel, architecture or `all`, revision).
fn releases(entry: &SnapEntry) -> Vec<(Channel, String, u64)> {
    let mut out = Vec::new();
    for (channel, archs) in &entry.channels {
        let Ok(parsed) = Channel::parse(channel) else {
            continue;
        };
        for (arch, revision) in archs {
            out.push((parsed.clone(), arch.clone(), *revision));
        }
    }
    out
}

#[derive(Deserialize)]
struct RefreshRequest {
    #[serde(default)]
    actions: Vec<Action>,
}

#[derive(Deserialize)]
struct Action {
    action: String,
    #[serde(rename = "instance-key", default)]
    instance_key: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "snap-id", default)]
    snap_id: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    revision: Option<u64>,
}

/// At most this many actions in one request.
const MAX_ACTIONS: usize = 500;

/// `POST /v2/snaps/refresh`: `install` and `download` actions (a `refresh` of installed
/// snaps is not served: devices of this store get new revisions from new images).
async fn refresh(
    State(served): State<Served>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let request: RefreshRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error_list(
                StatusCode::BAD_REQUEST,
                "invalid-request",
                format!("the body is not a refresh request: {e}"),
            )
        }
    };
    if request.actions.len() > MAX_ACTIONS {
        return error_list(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            format!("{} actions; at most {MAX_ACTIONS}", request.actions.len()),
        );
    }
    if let Err(r) = check_series(&headers) {
        return r;
    }
    let arch = match device_arch(&headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let base = base_url(&headers);
    let answer = with_store(&served, move |store| {
        let results: Vec<Value> = request
            .actions
            .iter()
            .map(|a| action_result(store, a, &arch, &base))
            .collect();
        Ok(json!({"results": results, "error-list": []}))
    })
    .await;
    match answer {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// One action's result: the snap, or an `error` result as snapd reads them.
fn action_result(store: &LocalStore, a: &Action, arch: &str, base: &str) -> Value {
    let error = |code: &str, message: String, extra: Value| {
        let mut r = json!({
            "result": "error",
            "instance-key": a.instance_key,
            "error": {"code": code, "message": message},
        });
        if let Some(name) = &a.name {
            r["name"] = json!(name);
        }
        if let Some(id) = &a.snap_id {
            r["snap-id"] = json!(id);
        }
        if !extra.is_null() {
            r["error"]["extra"] = extra;
        }
        r
    };
    if a.action != "install" && a.action != "download" {
        return error(
            "invalid-action",
            format!(
                "action {:?} is not served here (install, download)",
                a.action
            ),
            Value::Null,
        );
    }
    let found = match (&a.name, &a.snap_id) {
        (Some(name), _) => store.snap(name).ok().map(|e| (name.as_str(), e)),
        (None, Some(id)) => store.snap_by_id(id),
        (None, None) => None,
    };
    let Some((name, entry)) = found else {
        let (code, what) = match &a.name {
            Some(n) => (
                "name-not-found",
                format!("no snap named {n:?} in this store"),
            ),
            None => (
                "id-not-found",
                "no snap with this id in this store".to_owned(),
            ),
        };
        return error(code, what, Value::Null);
    };
    let not_found = |message: String| {
        let releases: Vec<Value> = releases(entry)
            .into_iter()
            .map(|(c, arch, _)| json!({"architecture": arch, "channel": c.to_string()}))
            .collect();
        error("revision-not-found", message, json!({"releases": releases}))
    };
    let (revision, channel) = match a.revision {
        Some(r) => (r, None),
        None => {
            let wanted = a.channel.as_deref().unwrap_or("stable");
            let channel = match Channel::parse(wanted) {
                Ok(c) => c,
                Err(e) => return error("invalid-channel", e.to_string(), Value::Null),
            };
            match entry.pick(&channel, arch) {
                Some((rev, found)) => (rev, Some(found)),
                None => {
                    return not_found(format!(
                        "no revision of {name} for {arch} in channel {wanted} or a more stable one"
                    ))
                }
            }
        }
    };
    let Some(rev) = entry.revisions.get(&revision) else {
        return not_found(format!("{name} has no revision {revision}"));
    };
    if !rev.info.supports(arch) {
        return not_found(format!("{name} r{revision} is not for {arch}"));
    }
    let mut result = json!({
        "result": a.action,
        "instance-key": a.instance_key,
        "snap-id": entry.snap_id,
        "name": name,
        "snap": store_snap(store, name, entry, revision, rev, base),
    });
    if let Some(c) = channel {
        result["effective-channel"] = json!(c.to_string());
    }
    result
}

/// `GET /v2/snaps/info/NAME`: the snap and its channel map.
async fn info(
    State(served): State<Served>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_series(&headers) {
        return r;
    }
    let base = base_url(&headers);
    let answer = with_store(&served, move |store| {
        let Ok(entry) = store.snap(&name) else {
            return Err(error_list(
                StatusCode::NOT_FOUND,
                "resource-not-found",
                format!("no snap named {name:?} in this store"),
            ));
        };
        let mut map = Vec::new();
        let mut newest = None;
        for (channel, arch, revision) in releases(entry) {
            let Some(rev) = entry.revisions.get(&revision) else {
                continue;
            };
            let mut snap = store_snap(store, &name, entry, revision, rev, &base);
            let risk_rank = RISKS.iter().position(|r| *r == channel.risk);
            snap["channel"] = json!({
                "architecture": arch,
                "name": channel.to_string(),
                "risk": channel.risk,
                "track": channel.track,
                "released-at": "",
            });
            if newest.is_none() || risk_rank == Some(0) {
                newest = Some(snap.clone());
            }
            map.push(snap);
        }
        Ok(json!({
            "name": name,
            "snap-id": entry.snap_id,
            "snap": newest.unwrap_or_else(|| json!({"name": name, "snap-id": entry.snap_id})),
            "channel-map": map,
        }))
    })
    .await;
    match answer {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// `GET /v2/assertions/TYPE/KEY...`: one assertion, as `application/x.ubuntu.assertion`.
async fn assertion(
    State(served): State<Served>,
    UrlPath((kind, key)): UrlPath<(String, String)>,
) -> Response {
    // Assertions are files: no need to open the store's database for them.
    let dir = served.dir.clone();
    let answer = blocking(move || {
        let parts: Vec<&str> = key.split('/').collect();
        match find_assertion_in(&dir, &kind, &parts) {
            Ok(Some(a)) => Ok(a.encode().to_vec()),
            Ok(None) => Err(error_list(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("no {kind} assertion with key {key:?} in this store"),
            )),
            Err(e) => Err(broken(&e)),
        }
    })
    .await;
    match answer {
        Ok(bytes) => ([(header::CONTENT_TYPE, ASSERTION_TYPE)], bytes).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "account-id")]
    account_id: Option<String>,
}

/// `GET /v2/assertions/account[-key][?account-id=ID]`: every account, or every account-key
/// (of one account), one after the other (a coreforge extension: image builders take the
/// store's current keys from it, to revoke on devices what the store revoked).
async fn assertion_list(
    State(served): State<Served>,
    UrlPath(kind): UrlPath<String>,
    axum::extract::Query(query): axum::extract::Query<ListQuery>,
) -> Response {
    if kind != "account" && kind != "account-key" {
        return not_found().await;
    }
    let answer = with_store(&served, move |store| {
        let all = store.all_assertions(&kind).map_err(|e| broken(&e))?;
        let mut out = Vec::new();
        for a in all.iter().filter(|a| {
            query
                .account_id
                .as_deref()
                .is_none_or(|id| a.header_str("account-id") == Some(id))
        }) {
            if !out.is_empty() {
                out.extend_from_slice(b"\n");
            }
            out.extend_from_slice(a.encode());
            out.push(b'\n');
        }
        Ok(out)
    })
    .await;
    match answer {
        Ok(bytes) => ([(header::CONTENT_TYPE, ASSERTION_TYPE)], bytes).into_response(),
        Err(r) => r,
    }
}

/// `GET /download/SNAPID_REV.snap`: the file, with `Range` (tower-http's ServeFile).
async fn download(
    State(served): State<Served>,
    UrlPath(file): UrlPath<String>,
    request: Request,
) -> Response {
    let path = with_store(&served, move |store| {
        let missing = || error_list(StatusCode::NOT_FOUND, "not-found", "no such snap file");
        let (id, rev) = file
            .strip_suffix(".snap")
            .and_then(|f| f.rsplit_once('_'))
            .ok_or_else(missing)?;
        let revision: u64 = rev.parse().map_err(|_| missing())?;
        let (_, entry) = store.snap_by_id(id).ok_or_else(missing)?;
        let rev = entry.revisions.get(&revision).ok_or_else(missing)?;
        Ok(store.revision_path(rev))
    })
    .await;
    match path {
        Ok(path) => serve_file(&path, request).await,
        Err(r) => r,
    }
}

async fn serve_file(path: &Path, request: Request) -> Response {
    // Large reads: fewer trips to the blocking pool per megabyte sent.
    match ServeFile::new(path)
        .with_buf_chunk_size(DOWNLOAD_CHUNK)
        .oneshot(request)
        .await
    {
        Ok(r) => r.map(Body::new),
        Err(e) => {
            eprintln!("store serve: reading {}: {e}", path.display());
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
