//! One-time password-reset tokens and `POST /v1/auth/password-reset {token, newPassword}`.
//!
//! A token is issued by an operator (`server admin password-reset`, or `import` for accounts
//! whose old password hash cannot be verified here) and handed to its user out of band. Only
//! its SHA-256 is stored; it works once, until it expires. Using it sets the new password,
//! ends every session and revokes every API key of the account (whoever held them no longer
//! should) and voids the account's other tokens, in one transaction. Must never store or log a token, and never
//! tell a wrong token from a used or expired one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use sqlx::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::password;
use super::session::{random_token, token_hash};
use crate::db::{now_micros, Db};
use crate::domain::{rfc3339, Email, Password};
use crate::http::extractor::{ApiJson, ClientIp};
use crate::http::openapi::{
    BadRequest, Internal, PayloadTooLarge, RateLimited, Unauthenticated, Unprocessable,
    UnsupportedMediaType,
};
use crate::http::{AppState, Error};
use crate::users::UserBody;

/// How long an operator's token works unless told otherwise.
pub const RESET_TTL_DEFAULT_HOURS: u64 = 72;
/// The longest a token may be made to work.
pub const RESET_TTL_MAX_HOURS: u64 = 30 * 24;

/// A token as handed to the operator, never stored.
pub struct Issued {
    pub token: String,
    pub expires_at: String,
}

/// A new token for `user_id`, working for `ttl_hours` (at most `RESET_TTL_MAX_HOURS`).
pub async fn issue(db: &Db, user_id: Uuid, ttl_hours: u64) -> Result<Issued, Error> {
    let mut tx = db.pool.begin().await?;
    let mut issued = issue_in(&mut tx, &[user_id], ttl_hours).await?;
    tx.commit().await?;
    issued
        .pop()
        .ok_or_else(|| Error::internal("no token issued"))
}

/// A new token for each of `user_ids`, in order, inside the caller's transaction (the import
/// creates accounts and their tokens together).
pub async fn issue_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_ids: &[Uuid],
    ttl_hours: u64,
) -> Result<Vec<Issued>, Error> {
    let now = now_micros();
    let ttl_micros = i64::try_from(ttl_hours.min(RESET_TTL_MAX_HOURS) * 3_600_000_000)
        .map_err(Error::internal)?;
    let expires_at = now.saturating_add(ttl_micros);
    let mut issued = Vec::with_capacity(user_ids.len());
    for user_id in user_ids {
        let token = random_token();
        sqlx::query(
            "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash(&token))
        .bind(user_id.to_string())
        .bind(now)
        .bind(expires_at)
        .execute(&mut **tx)
        .await?;
        issued.push(Issued {
            token,
            expires_at: rfc3339(expires_at),
        });
    }
    Ok(issued)
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ResetRequest {
    /// The one-time token the operator handed over.
    token: String,
    /// 12 to 128 characters, not blank, not the email address.
    #[schema(min_length = 12, max_length = 128)]
    new_password: String,
}

/// Sets a new password with a one-time reset token; every session of the account ends.
#[utoipa::path(
    post,
    path = "/auth/password-reset",
    operation_id = "resetPassword",
    tag = "auth",
    security(()),
    request_body = ResetRequest,
    responses(
        (status = 200, description = "The account, whose password is now the new one.", body = UserBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all)]
pub(super) async fn reset(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<(StatusCode, Json<UserBody>), Error> {
    state.limits.auth(client)?;
    let invalid = Error::Unauthenticated("invalid, used or expired reset token");
    let hash = token_hash(body.token.trim());
    let row = sqlx::query(
        "SELECT u.id, u.email FROM password_resets r JOIN users u ON u.id = r.user_id \
         WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > $2",
    )
    .bind(&hash)
    .bind(now_micros())
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else {
        return Err(invalid);
    };
    let user_id: String = row.try_get("id")?;
    let email = Email::parse(&row.try_get::<String, _>("email")?)?;
    let new_password = Password::parse(body.new_password, &email)?;
    let password_hash = password::hash(new_password.expose().to_owned()).await?;
    let now = now_micros();
    let mut tx = state.db.pool.begin().await?;
    // Used once: of two requests racing with one token, one marks it.
    let marked = sqlx::query(
        "UPDATE password_resets SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    if marked.rows_affected() != 1 {
        return Err(invalid);
    }
    sqlx::query("UPDATE password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(&password_hash)
        .bind(now)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = 'password reset' \
         WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(&user_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let id = Uuid::parse_str(&user_id).map_err(Error::internal)?;
    state.key_cache.forget_user(id);
    let user = crate::users::by_id(&state.db, id)
        .await?
        .ok_or(Error::NotFound)?;
    tracing::info!(user_id = %id, "password reset");
    Ok((StatusCode::OK, Json(UserBody::from(&user))))
}
