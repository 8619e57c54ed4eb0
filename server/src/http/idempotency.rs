//! `Idempotency-Key` on authenticated POSTs (all but `/v1/auth/*`), scoped per user: the first
//! request with a key runs and its answer is saved; a retry with the same key and the same
//! request gets that answer again (`Idempotent-Replayed: true`) without running twice; the same
//! key with another request is `422 IDEMPOTENCY_KEY_REUSED`; while the first is still running,
//! `409 CONFLICT`. A 5xx answer is not saved, so the client may retry it. Keys live a day.
//!
//! Owns the `idempotency_keys` table. Must never run a keyed request twice, and never answer a
//! key with a response saved for another request or another user.

use axum::body::{to_bytes, Body};
use axum::extract::{OriginalUri, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::extractor::authenticate;
use super::{AppState, Error, BODY_BYTES_MAX};
use crate::db::now_micros;

const IDEMPOTENCY_KEY: &str = "idempotency-key";
const KEY_CHARS_MAX: usize = 255;
/// Largest answer saved (a 100-item batch is far below it).
const RESPONSE_BYTES_MAX: usize = 1 << 20;
const KEY_LIFETIME_MICROS: i64 = 24 * 60 * 60 * 1_000_000;

pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match keyed(&state, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn keyed(state: &AppState, request: Request, next: Next) -> Result<Response, Error> {
    let path = request.extensions().get::<OriginalUri>().map_or_else(
        || request.uri().path().to_owned(),
        |uri| uri.path().to_owned(),
    );
    let applies = request.method() == Method::POST && !path.starts_with("/v1/auth/");
    let Some(raw_key) = request.headers().get(IDEMPOTENCY_KEY).filter(|_| applies) else {
        return Ok(next.run(request).await);
    };
    let key = raw_key
        .to_str()
        .ok()
        .filter(|key| (1..=KEY_CHARS_MAX).contains(&key.len()))
        .filter(|key| key.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            Error::validation(
                "idempotencyKey",
                "must be 1 to 255 visible ASCII characters",
            )
        })?
        .to_owned();
    let (mut parts, body) = request.into_parts();
    // Unauthenticated: no user to scope the key to; the handler answers 401 itself.
    let Ok(user) = authenticate(&parts, state).await else {
        return Ok(next.run(Request::from_parts(parts, body)).await);
    };
    // The handler's `AuthUser` takes it from here instead of authenticating again.
    parts.extensions.insert(user.clone());
    let bytes = to_bytes(body, BODY_BYTES_MAX)
        .await
        .map_err(|_| Error::PayloadTooLarge)?;
    let hash = request_hash(&path, &bytes);
    let user_id = user.user_id.to_string();
    if let Some(saved) = claim(state, &user_id, &key, &hash).await? {
        return Ok(saved);
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    save(state, &user_id, &key, response).await
}

fn request_hash(path: &str, body: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(path.as_bytes());
    digest.update([0]);
    digest.update(body);
    digest
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Takes the key for this request, or answers from what it already holds.
async fn claim(
    state: &AppState,
    user_id: &str,
    key: &str,
    hash: &str,
) -> Result<Option<Response>, Error> {
    let now = now_micros();
    sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND created_at < $2")
        .bind(user_id)
        .bind(now - KEY_LIFETIME_MICROS)
        .execute(&state.db.pool)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(key)
    .bind(hash)
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT request_hash, status, response_body FROM idempotency_keys \
         WHERE user_id = $1 AND key = $2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_one(&state.db.pool)
    .await?;
    let saved_hash: String = row.try_get("request_hash")?;
    if saved_hash != hash {
        return Err(Error::IdempotencyKeyReused);
    }
    let status: Option<i64> = row.try_get("status")?;
    let Some(status) = status else {
        return Err(Error::Conflict(
            "a request with this Idempotency-Key is still running",
        ));
    };
    let body: Option<String> = row.try_get("response_body")?;
    let status = u16::try_from(status)
        .ok()
        .and_then(|status| StatusCode::from_u16(status).ok())
        .ok_or_else(|| Error::internal("a saved status is out of range"))?;
    let mut response = (status, body.unwrap_or_default()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(Some(response))
}

/// Saves the answer under the key (or frees the key after a server error) and returns it.
async fn save(
    state: &AppState,
    user_id: &str,
    key: &str,
    response: Response,
) -> Result<Response, Error> {
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, RESPONSE_BYTES_MAX)
        .await
        .map_err(|_| Error::internal("an answer too large to save"))?;
    if parts.status.is_server_error() {
        sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2")
            .bind(user_id)
            .bind(key)
            .execute(&state.db.pool)
            .await?;
    } else {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $3, response_body = $4 \
             WHERE user_id = $1 AND key = $2",
        )
        .bind(user_id)
        .bind(key)
        .bind(i64::from(parts.status.as_u16()))
        .bind(String::from_utf8_lossy(&bytes).into_owned())
        .execute(&state.db.pool)
        .await?;
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
