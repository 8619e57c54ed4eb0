//! API keys for bots: create (the key is shown once), list, revoke.
//!
//! A key is `pdx_` plus 256 random bits; only its SHA-256 hash and a short display prefix are
//! stored. Keys are managed only from a login session (a leaked key cannot mint more keys), and
//! every id is checked against the caller: another user's key is a plain 404.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use super::session::{random_token, token_hash};
use crate::db::now_micros;
use crate::domain::KeyName;
use crate::http::extractor::{ApiJson, AuthUser};
use crate::http::{AppState, Error};
use crate::users::rfc3339;

/// Active keys one user may hold; small enough that a list is always one page.
pub const API_KEYS_PER_USER_MAX: i64 = 20;
pub const KEY_PREFIX: &str = "pdx_";
/// Characters of the key kept for display (`pdx_` and 8 more).
const DISPLAY_PREFIX_CHARS: usize = 12;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api-keys", get(list).post(create))
        .route("/api-keys/{id}", delete(revoke))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedKey {
    id: Uuid,
    name: String,
    /// The key itself: shown in this answer only.
    key: String,
    prefix: String,
    created_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyBody {
    id: Uuid,
    name: String,
    prefix: String,
    created_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyList {
    data: Vec<KeyBody>,
    next_cursor: Option<String>,
}

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
    // Insert only while under the limit, checked in the same statement.
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
    .execute(&state.db.pool)
    .await?;
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
    Ok((StatusCode::CREATED, Json(body)))
}

#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn list(State(state): State<AppState>, auth: AuthUser) -> Result<Json<KeyList>, Error> {
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
    Ok(Json(KeyList {
        data,
        next_cursor: None,
    }))
}

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
    tracing::info!(key_id = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
