//! What a served store does for its people: logins, SSH keys as Ubuntu SSO gives them,
//! key registration as snapcraft asks for it, uploads and releases by a snap's publisher.
//!
//! ```text
//! POST /api/v2/tokens                        {"email", "password"} -> {"token", "username"}
//! GET  /api/v2/keys/EMAIL                    {"username", "ssh_keys", "openid_identifier"}
//! POST /dev/api/account/account-key          {"account_key_request"} -> {"account_key"}
//! POST /dev/api/snaps/upload                 the snap's bytes -> {"name", "revision"}
//! POST /dev/api/snaps/NAME/releases          {"revision", "channels"} -> {"released"}
//! ```
//!
//! Everything under `/dev/api/` needs `Authorization: Bearer TOKEN` of a store account.
#![allow(clippy::result_large_err)]

use std::io::Write;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use coreforge_assertions::{AccountKeyRequest, Assertion, TrustDb};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::api::{base_url, broken, error_list, with_store, with_store_locked, Served};
use crate::store::{LocalStore, Person, StoreError};

/// The answer to a failed login or a missing or wrong token.
fn unauthorized() -> Response {
    let mut r = error_list(
        StatusCode::UNAUTHORIZED,
        "invalid-credentials",
        "the e-mail address and password, or the token, are not right: log in with `coreforge login --store URL`",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

/// The error of a store call, as an HTTP answer.
fn refused(e: &StoreError) -> Response {
    match e {
        StoreError::BadLogin => unauthorized(),
        StoreError::NotPublisher { .. } | StoreError::OtherPublisher { .. } => {
            error_list(StatusCode::FORBIDDEN, "forbidden", e.to_string())
        }
        StoreError::Snap(_)
        | StoreError::BadChannel(_)
        | StoreError::UnknownRevision { .. }
        | StoreError::UnknownSnap { .. }
        | StoreError::BadKeyName(_)
        | StoreError::BadAccountId(_)
        | StoreError::SinceBeforeStore { .. }
        | StoreError::KeyOfOtherAccount { .. } => {
            error_list(StatusCode::BAD_REQUEST, "invalid-request", e.to_string())
        }
        _ => broken(e),
    }
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty() && token.len() <= 256).then(|| token.to_owned())
}

/// The account whose token the request carries.
fn who(store: &LocalStore, headers: &HeaderMap) -> Result<Person, Response> {
    let token = bearer(headers).ok_or_else(unauthorized)?;
    store
        .account_for_token(&token)
        .map_err(|e| broken(&e))?
        .ok_or_else(unauthorized)
}

#[derive(Deserialize)]
pub(super) struct Login {
    email: String,
    password: String,
}

/// `POST /api/v2/tokens`: a login.
pub(super) async fn login(State(served): State<Served>, Json(login): Json<Login>) -> Response {
    let answer = with_store(&served, move |store| {
        store
            .login(&login.email, &login.password)
            .map_err(|e| refused(&e))
    })
    .await;
    match answer {
        Ok((person, token)) => {
            Json(json!({"token": token, "username": person.username})).into_response()
        }
        Err(r) => r,
    }
}

/// `GET /api/v2/keys/EMAIL`: an account's SSH keys, as Ubuntu SSO answers.
pub(super) async fn keys(
    State(served): State<Served>,
    UrlPath(email): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let base = base_url(&headers);
    let answer = with_store(&served, move |store| {
        store.account_by_email(&email).map_err(|e| broken(&e))
    })
    .await;
    match answer {
        Ok(Some(p)) => Json(json!({
            "username": p.username,
            "ssh_keys": p.ssh_keys,
            "openid_identifier": format!("{}/+id/{}", base.trim_end_matches('/'), p.openid),
        }))
        .into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(json!({"code": "ACCOUNT_NOT_FOUND", "message": "No account with this e-mail address"})),
        )
            .into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub(super) struct KeyRequest {
    account_key_request: String,
}

/// `POST /dev/api/account/account-key`: registers the key of a self-signed
/// account-key-request for the caller's account, as snapcraft's `register-key` asks.
pub(super) async fn register_key(
    State(served): State<Served>,
    headers: HeaderMap,
    Json(body): Json<KeyRequest>,
) -> Response {
    let answer = with_store_locked(&served, move |store| {
        let person = who(store, &headers)?;
        let bad = |m: String| error_list(StatusCode::BAD_REQUEST, "invalid-request", m);
        let a = Assertion::decode(body.account_key_request.as_bytes())
            .map_err(|e| bad(format!("the account-key-request does not decode: {e}")))?;
        let request = AccountKeyRequest::from_assertion(&a)
            .map_err(|e| bad(format!("not an account-key-request: {e}")))?;
        TrustDb::new().verify(&a).map_err(|e| {
            bad(format!(
                "the account-key-request is not signed by its key: {e}"
            ))
        })?;
        if request.account_id != person.username {
            return Err(error_list(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "the request is for account {:?}, but you are logged in as {:?}",
                    request.account_id, person.username
                ),
            ));
        }
        store
            .register_key(
                &person.username,
                &request.name,
                &request.public_key,
                request.since,
            )
            .map_err(|e| refused(&e))
    })
    .await;
    match answer {
        Ok((key, account)) => Json(json!({
            "account_key": String::from_utf8_lossy(key.encode()),
            "account": String::from_utf8_lossy(account.encode()),
        }))
        .into_response(),
        Err(r) => r,
    }
}

/// `POST /dev/api/snaps/upload`: the body is the snap. It is written to a file of its own
/// first; only a complete upload that reads as a snap becomes a revision.
pub(super) async fn upload(
    State(served): State<Served>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dir = served.dir.clone();
    let check = with_store(&served, {
        let headers = headers.clone();
        move |store| who(store, &headers)
    })
    .await;
    let person = match check {
        Ok(p) => p,
        Err(r) => return r,
    };
    let incoming = dir.join("incoming");
    let file = match std::fs::create_dir_all(&incoming)
        .and_then(|()| tempfile::NamedTempFile::new_in(&incoming))
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("store serve: {}: {e}", incoming.display());
            return error_list(
                StatusCode::INSUFFICIENT_STORAGE,
                "internal-error",
                "cannot take uploads now",
            );
        }
    };
    let mut stream = body.into_data_stream();
    let mut file = file;
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            // The client went away, or sent more than allowed: nothing is published, and the
            // temporary file goes with `file`.
            Err(e) => {
                return error_list(
                    StatusCode::BAD_REQUEST,
                    "incomplete-upload",
                    format!(
                        "the upload stopped after {received} bytes: {e}; nothing was published"
                    ),
                )
            }
        };
        received += chunk.len() as u64;
        if received > served.max_upload_bytes {
            return error_list(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!(
                    "uploads are at most {} bytes; nothing was published",
                    served.max_upload_bytes
                ),
            );
        }
        if let Err(e) = file.write_all(&chunk) {
            eprintln!("store serve: writing an upload: {e}");
            return error_list(
                StatusCode::INSUFFICIENT_STORAGE,
                "internal-error",
                "cannot store the upload",
            );
        }
    }
    let answer = with_store_locked(&served, move |store| {
        store
            .upload(file.path(), Some(&person.username))
            .map_err(|e| refused(&e))
    })
    .await;
    match answer {
        Ok(up) => Json(
            json!({"name": up.name, "revision": up.revision, "snap-id": up.snap_id, "new": up.new}),
        )
        .into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub(super) struct ReleaseRequest {
    revision: u64,
    channels: Vec<String>,
}

/// `POST /dev/api/snaps/NAME/releases`: by the snap's publisher only.
pub(super) async fn release(
    State(served): State<Served>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    Json(body): Json<ReleaseRequest>,
) -> Response {
    let answer = with_store_locked(&served, move |store| {
        let person = who(store, &headers)?;
        let publisher = store
            .snap(&name)
            .map_err(|e| refused(&e))?
            .publisher_id
            .clone();
        if publisher != person.username {
            return Err(refused(&StoreError::NotPublisher {
                name: name.clone(),
                publisher,
                who: person.username,
            }));
        }
        store
            .release(&name, body.revision, &body.channels)
            .map_err(|e| refused(&e))
    })
    .await;
    match answer {
        Ok(released) => {
            let released: Vec<_> = released
                .iter()
                .map(
                    |r| json!({"channel": r.channel.to_string(), "architectures": r.architectures}),
                )
                .collect();
            Json(json!({"released": released})).into_response()
        }
        Err(r) => r,
    }
}
