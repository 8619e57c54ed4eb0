//! API keys for bots: create (the key is shown once), list, revoke.
//!
//! A key is `pdx_` plus 256 random bits; only its SHA-256 hash and a short display prefix are
//! stored. Keys are managed only from a login session (a leaked key cannot mint more keys), and
//! every id is checked against the caller: another user's key is a plain 404.
//!
//! A key that authenticated is remembered for `KEY_CACHE_TTL` ([`KeyCache`]), so a bot's
//! requests do not each look it up; revoking forgets it at once on this instance, and another
//! instance stops taking it within the TTL.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::session::{random_token, token_hash};
use crate::db::now_micros;
use crate::domain::{rfc3339, KeyName};
use crate::http::error::ErrorBody;
use crate::http::extractor::{ApiJson, AuthMethod, AuthUser};
use crate::http::idempotency::Unsaved;
use crate::http::openapi::{
    BadRequest, Forbidden, IdempotencyKey, Internal, NotFound, PayloadTooLarge, Unauthenticated,
    Unprocessable, UnsupportedMediaType,
};
use crate::http::page::{page_schema, Paged};
use crate::http::{AppState, Error};

/// Active keys one user may hold; small enough that a list is always one page.
pub const API_KEYS_PER_USER_MAX: i64 = 20;
pub const KEY_PREFIX: &str = "pdx_";
/// Characters of the key kept for display (`pdx_` and 8 more).
const DISPLAY_PREFIX_CHARS: usize = 12;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ApiKeyRequest)]
struct CreateRequest {
    /// 1 to 64 characters, to tell keys apart.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CreatedApiKey)]
struct CreatedKey {
    id: Uuid,
    name: String,
    /// The key itself: shown in this answer only (it is never stored, so a replay of this
    /// answer under the same `Idempotency-Key` has null here).
    #[schema(pattern = "^pdx_", example = "pdx_3q2x...", nullable)]
    key: String,
    /// The key's first 12 characters, shown in lists.
    prefix: String,
    #[schema(format = DateTime)]
    created_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApiKey)]
struct KeyBody {
    id: Uuid,
    name: String,
    /// The key's first 12 characters (the key itself is never shown again).
    prefix: String,
    #[schema(format = DateTime)]
    created_at: String,
}

page_schema!(ApiKeyPage of KeyBody);

/// Creates a key for the caller (at most 20 active). Needs a login session.
#[utoipa::path(
    post,
    path = "/api-keys",
    operation_id = "createApiKey",
    tag = "api-keys",
    params(IdempotencyKey),
    request_body = CreateRequest,
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = [])),
    responses(
        (status = 201, description = "The key, shown this once.", body = CreatedKey),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 409, description = "`CONFLICT`: 20 active keys already (revoke one first), or \
            this `Idempotency-Key` still running.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<impl IntoResponse, Error> {
    auth.session()?;
    let name = KeyName::parse(&body.name)?;
    let id = Uuid::new_v4();
    let key = format!("{KEY_PREFIX}{}", random_token());
    let prefix: String = key.chars().take(DISPLAY_PREFIX_CHARS).collect();
    let created_at = now_micros();
    // Under the limit, checked in the transaction that inserts, after taking the user's row:
    // two concurrent creations queue on that lock, so the second counts the first.
    let mut tx = state.db.pool.begin().await?;
    sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
        .bind(auth.user_id.to_string())
        .execute(&mut *tx)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at) \
         SELECT $1, $2, $3, $4, $5, $6 \
         WHERE (SELECT COUNT(*) FROM api_keys WHERE user_id = $2 AND revoked_at IS NULL) < $7",
    )
    .bind(id.to_string())
    .bind(auth.user_id.to_string())
    .bind(name.as_str())
    .bind(&prefix)
    .bind(token_hash(&key))
    .bind(created_at)
    .bind(API_KEYS_PER_USER_MAX)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if inserted.rows_affected() == 0 {
        return Err(Error::Conflict(
            "at most 20 active API keys per user; revoke one first",
        ));
    }
    tracing::info!(key_id = %id, "API key created");
    let body = CreatedKey {
        id,
        name: name.as_str().to_owned(),
        key,
        prefix,
        created_at: rfc3339(created_at),
    };
    // A retry under the same Idempotency-Key learns the key was made, never the key itself.
    Ok((
        StatusCode::CREATED,
        Extension(Unsaved(&["key"])),
        Json(body),
    ))
}

/// The caller's active keys, oldest first, in one page. Needs a login session.
#[utoipa::path(
    get,
    path = "/api-keys",
    operation_id = "listApiKeys",
    tag = "api-keys",
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses(
        (status = 200, description = "Every active key (`nextCursor` is always null).",
            body = ApiKeyPage),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Paged<KeyBody>>, Error> {
    auth.session()?;
    let rows = sqlx::query(
        "SELECT id, name, prefix, created_at FROM api_keys \
         WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at, id",
    )
    .bind(auth.user_id.to_string())
    .fetch_all(&state.db.pool)
    .await?;
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id")?;
        data.push(KeyBody {
            id: Uuid::parse_str(&id).map_err(Error::internal)?,
            name: row.try_get("name")?,
            prefix: row.try_get("prefix")?,
            created_at: rfc3339(row.try_get("created_at")?),
        });
    }
    // Twenty keys at most: always one page.
    Ok(Json(Paged {
        data,
        next_cursor: None,
    }))
}

/// Revokes one of the caller's keys at once. Needs a login session.
#[utoipa::path(
    delete,
    path = "/api-keys/{id}",
    operation_id = "revokeApiKey",
    tag = "api-keys",
    params(("id" = Uuid, Path, description = "The key's id.")),
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = [])),
    responses(
        (status = 204, description = "Revoked."),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn revoke(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    auth.session()?;
    let id = Uuid::parse_str(&id).map_err(|_| Error::NotFound)?;
    let revoked = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(now_micros())
    .bind(id.to_string())
    .bind(auth.user_id.to_string())
    .execute(&state.db.pool)
    .await?;
    if revoked.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    state.key_cache.forget(id);
    state
        .revocations
        .announce([AuthMethod::ApiKey { key_id: id }]);
    tracing::info!(key_id = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// How long a key that authenticated is taken without asking the database again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);
/// Keys remembered at most; past it the cache starts over (it is only a shortcut).
pub const KEY_CACHE_ENTRIES_MAX: usize = 100_000;

/// Keys that authenticated recently, by key hash.
#[derive(Default)]
pub struct KeyCache(Mutex<HashMap<String, (AuthUser, Instant)>>);

impl KeyCache {
    /// The user of the key with hash `key_hash`, if it authenticated within the TTL.
    pub fn get(&self, key_hash: &str) -> Option<AuthUser> {
        let entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (user, at) = entries.get(key_hash)?;
        (at.elapsed() < KEY_CACHE_TTL).then(|| user.clone())
    }

    pub fn remember(&self, key_hash: String, user: AuthUser) {
        let mut entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= KEY_CACHE_ENTRIES_MAX {
            entries.clear();
        }
        entries.insert(key_hash, (user, Instant::now()));
    }

    /// Forgets every key of `user_id` (all revoked).
    pub fn forget_user(&self, user_id: Uuid) {
        let mut entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, (user, _)| user.user_id != user_id);
    }

    /// Forgets the key `key_id` (revoked).
    pub fn forget(&self, key_id: Uuid) {
        let mut entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, (user, _)| user.method != AuthMethod::ApiKey { key_id });
    }
}
