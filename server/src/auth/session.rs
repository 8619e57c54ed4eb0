//! Sessions and rotating refresh tokens.
//!
//! A login opens a session: one family of refresh tokens, each usable once. Refreshing marks the
//! presented token used and issues the next in the same transaction. Presenting a token that was
//! already used means two parties hold the family (one of them stole it), so the whole session is
//! revoked: every token of the family, and the access tokens naming it, stop working at once.
//!
//! Only SHA-256 hashes of refresh tokens are stored (they are 256 random bits, so a fast hash is
//! enough). Every transaction here starts with a write (see `db`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

use crate::db::{now_micros, Db};
use crate::http::Error;

pub struct Issued {
    pub session_id: Uuid,
    pub refresh_token: String,
}

pub enum Rotation {
    Rotated {
        user_id: Uuid,
        issued: Issued,
    },
    /// Unknown, expired, or its session was revoked.
    Invalid,
    /// An already-used token: the session is now revoked.
    Reused {
        session_id: Uuid,
    },
}

/// 256 random bits, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn micros(ttl: std::time::Duration) -> i64 {
    i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX)
}

/// Opens a session for `user_id` with its first refresh token.
pub async fn open(db: &Db, user_id: Uuid, ttl: std::time::Duration) -> Result<Issued, Error> {
    let now = now_micros();
    let session_id = Uuid::new_v4();
    let refresh_token = random_token();
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(session_id.to_string())
    .bind(user_id.to_string())
    .bind(now)
    .bind(now.saturating_add(micros(ttl)))
    .execute(&mut *tx)
    .await?;
    insert_token(&mut tx, session_id, &refresh_token, now, ttl).await?;
    tx.commit().await?;
    Ok(Issued {
        session_id,
        refresh_token,
    })
}

async fn insert_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    session_id: Uuid,
    token: &str,
    now: i64,
    ttl: std::time::Duration,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(session_id.to_string())
    .bind(token_hash(token))
    .bind(now)
    .bind(now.saturating_add(micros(ttl)))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Uses `presented` once and issues its successor; a second use revokes the session.
pub async fn rotate(db: &Db, presented: &str, ttl: std::time::Duration) -> Result<Rotation, Error> {
    let now = now_micros();
    let hash = token_hash(presented);
    let mut tx = db.pool.begin().await?;
    // Write first: only one of two concurrent refreshes with the same token can win this.
    let claimed = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
           AND session_id IN (SELECT id FROM sessions WHERE revoked_at IS NULL AND expires_at > $1) \
         RETURNING session_id",
    )
    .bind(now)
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = claimed {
        let session_id: String = row.try_get("session_id")?;
        let user = sqlx::query("SELECT user_id FROM sessions WHERE id = $1")
            .bind(&session_id)
            .fetch_one(&mut *tx)
            .await?;
        let user_id: String = user.try_get("user_id")?;
        let session_id = Uuid::parse_str(&session_id).map_err(Error::internal)?;
        let refresh_token = random_token();
        insert_token(&mut tx, session_id, &refresh_token, now, ttl).await?;
        tx.commit().await?;
        return Ok(Rotation::Rotated {
            user_id: Uuid::parse_str(&user_id).map_err(Error::internal)?,
            issued: Issued {
                session_id,
                refresh_token,
            },
        });
    }
    let known = sqlx::query(
        "SELECT t.session_id, t.used_at, s.revoked_at FROM refresh_tokens t \
         JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = known else {
        return Ok(Rotation::Invalid);
    };
    let used_at: Option<i64> = row.try_get("used_at")?;
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    if used_at.is_none() || revoked_at.is_some() {
        return Ok(Rotation::Invalid);
    }
    let session_id: String = row.try_get("session_id")?;
    revoke_in(&mut tx, &session_id, "refresh_token_reuse", now).await?;
    tx.commit().await?;
    tracing::warn!(%session_id, "refresh token reused: session revoked");
    Ok(Rotation::Reused {
        session_id: Uuid::parse_str(&session_id).map_err(Error::internal)?,
    })
}

async fn revoke_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    session_id: &str,
    reason: &str,
    now: i64,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
         WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(session_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn revoke(db: &Db, session_id: Uuid, reason: &str) -> Result<(), Error> {
    let mut tx = db.pool.begin().await?;
    revoke_in(&mut tx, &session_id.to_string(), reason, now_micros()).await?;
    tx.commit().await?;
    Ok(())
}

/// The live session a refresh token belongs to (for CSRF checks and logout).
pub async fn of_refresh_token(db: &Db, presented: &str) -> Result<Option<Uuid>, Error> {
    let row = sqlx::query(
        "SELECT t.session_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
         WHERE t.token_hash = $1 AND s.revoked_at IS NULL",
    )
    .bind(token_hash(presented))
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let session_id: String = row.try_get("session_id")?;
    Ok(Some(Uuid::parse_str(&session_id).map_err(Error::internal)?))
}
