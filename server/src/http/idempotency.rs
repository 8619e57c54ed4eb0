//! `Idempotency-Key` on authenticated POSTs (all but `/v1/auth/*`), scoped per user: the first
//! request with a key runs and its answer is saved; a retry with the same key and the same
//! request gets that answer again (`Idempotent-Replayed: true`) without running twice; the same
//! key with another request is `422 IDEMPOTENCY_KEY_REUSED`; while the first is still running,
//! `409 CONFLICT`. Keys live a day, and are purged on a schedule ([`purge_expired`]).
//!
//! What is saved: every answer except a refusal to run at all (429, and 5xx before anything
//! was committed), which frees the key so a retry runs. A keyed request runs in a task of its
//! own, so a client that hangs up does not stop it half-way: it finishes and saves. Its
//! command is committed together with the key's seq and outcome (`sequencer::keyed`), so a
//! claim no live request holds (the process died between the commit and the save, or saving
//! failed) is taken over by the retry, which answers from the committed outcome if there is
//! one and runs otherwise. A handler may mark fields never to be stored ([`Unsaved`]): a
//! replay answers them as null.
//!
//! Owns the `idempotency_keys` table. Must never run a keyed request twice, and never answer a
//! key with a response saved for another request or another user.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use axum::body::{to_bytes, Body};
use axum::extract::{OriginalUri, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::extractor::authenticate;
use super::{AppState, Error, BODY_BYTES_MAX};
use crate::auth::session::random_token;
use crate::db::{now_micros, Db};
use crate::sequencer::keyed::{self, IdempotencyKey, Scope};

const IDEMPOTENCY_KEY: &str = "idempotency-key";
const KEY_CHARS_MAX: usize = 255;
/// Largest answer saved (a 100-item batch is far below it).
const RESPONSE_BYTES_MAX: usize = 1 << 20;
const KEY_LIFETIME_MICROS: i64 = 24 * 60 * 60 * 1_000_000;

/// Top-level fields of a JSON answer that must not be stored (a secret shown once): the
/// saved copy has them as null. Set as a response extension by the handler.
#[derive(Clone, Copy, Debug)]
pub struct Unsaved(pub &'static [&'static str]);

/// The claim tokens of keyed requests running in this process: a claim whose token is not
/// here belongs to no live request (a process that died, or a save that failed).
static RUNNING: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);

fn running(token: &str) -> bool {
    RUNNING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(token)
}

/// Marks `token` running until dropped.
struct Running(String);

impl Running {
    fn start(token: String) -> Running {
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        running.insert(token.clone());
        Running(token)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        running.remove(&self.0);
    }
}

pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match keyed_request(&state, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn keyed_request(state: &AppState, request: Request, next: Next) -> Result<Response, Error> {
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
    let key = IdempotencyKey {
        user_id: user.user_id,
        key,
    };
    let hash = request_hash(&path, &bytes);
    let (token, scope) = match claim(&state.db, &key, &hash).await? {
        Claim::Saved(response) => return Ok(response),
        Claim::Taken { token, committed } => {
            let scope = match committed {
                Some(applied) => Scope::replaying(key.clone(), applied),
                None => Scope::new(key.clone()),
            };
            (token, scope)
        }
    };
    let running = Running::start(token.clone());
    let request = Request::from_parts(parts, Body::from(bytes));
    let state = state.clone();
    // Its own task: a client that hangs up must not cut the request off between its commit
    // and its save.
    let task = tokio::spawn(async move {
        let _running = running;
        let response = keyed::run_in(scope.clone(), next.run(request)).await;
        save(&state.db, &key, &token, response, &scope).await
    });
    task.await
        .unwrap_or_else(|_| Err(Error::internal("a keyed request's task failed")))
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

enum Claim {
    /// The answer already saved under the key.
    Saved(Response),
    /// The key is this request's, under `token`; `committed` is the outcome of a command an
    /// earlier request committed under it before dying.
    Taken {
        token: String,
        committed: Option<crate::sequencer::Applied>,
    },
}

/// Takes the key for this request, or answers from what it already holds.
async fn claim(db: &Db, key: &IdempotencyKey, hash: &str) -> Result<Claim, Error> {
    let now = now_micros();
    let user_id = key.user_id.to_string();
    let token = random_token();
    // A new key, or one past its lifetime the purge has not reached yet: taken afresh.
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at, owner) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, key) DO UPDATE SET \
         request_hash = excluded.request_hash, created_at = excluded.created_at, \
         owner = excluded.owner, status = NULL, response_body = NULL, committed_seq = NULL, \
         committed_outcome = NULL WHERE idempotency_keys.created_at < $6",
    )
    .bind(&user_id)
    .bind(&key.key)
    .bind(hash)
    .bind(now)
    .bind(&token)
    .bind(now - KEY_LIFETIME_MICROS)
    .execute(&db.pool)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::Taken {
            token,
            committed: None,
        });
    }
    let row = sqlx::query(
        "SELECT request_hash, status, response_body, owner, committed_seq, committed_outcome \
         FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(&user_id)
    .bind(&key.key)
    .fetch_one(&db.pool)
    .await?;
    let saved_hash: String = row.try_get("request_hash")?;
    if saved_hash != hash {
        return Err(Error::IdempotencyKeyReused);
    }
    let status: Option<i64> = row.try_get("status")?;
    if let Some(status) = status {
        let body: Option<String> = row.try_get("response_body")?;
        return Ok(Claim::Saved(replayed(status, body)?));
    }
    let owner: Option<String> = row.try_get("owner")?;
    let still_running = Error::Conflict("a request with this Idempotency-Key is still running");
    if owner.as_deref().is_some_and(running) {
        return Err(still_running);
    }
    // No live request holds the claim: take it over (one retry wins a race for it).
    let taken = sqlx::query(
        "UPDATE idempotency_keys SET owner = $3 WHERE user_id = $1 AND key = $2 \
         AND status IS NULL AND COALESCE(owner, '') = $4",
    )
    .bind(&user_id)
    .bind(&key.key)
    .bind(&token)
    .bind(owner.unwrap_or_default())
    .execute(&db.pool)
    .await?;
    if taken.rows_affected() == 0 {
        return Err(still_running);
    }
    let committed_seq: Option<i64> = row.try_get("committed_seq")?;
    let outcome: Option<String> = row.try_get("committed_outcome")?;
    let committed = match (committed_seq, outcome) {
        (Some(seq), Some(outcome)) => {
            let seq = u64::try_from(seq).map_err(Error::internal)?;
            Some(keyed::committed(seq, &outcome).map_err(Error::internal)?)
        }
        _ => None,
    };
    tracing::warn!(
        user_id = %key.user_id,
        committed = committed.is_some(),
        "an Idempotency-Key claim no request holds was taken over"
    );
    Ok(Claim::Taken { token, committed })
}

fn replayed(status: i64, body: Option<String>) -> Result<Response, Error> {
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
    Ok(response)
}

/// Saves the answer under the key, or frees the key when the request was refused before
/// anything was committed, and returns the answer.
async fn save(
    db: &Db,
    key: &IdempotencyKey,
    token: &str,
    response: Response,
    scope: &Arc<Scope>,
) -> Result<Response, Error> {
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, RESPONSE_BYTES_MAX)
        .await
        .map_err(|_| Error::internal("an answer too large to save"))?;
    if scope.replay_pending() {
        // A retry of a committed command whose handler stopped before reaching it (the
        // request no longer validates): its answer would not be the committed one.
        return Err(Error::Conflict(
            "this Idempotency-Key's request was committed before a restart, but its answer \
             cannot be rebuilt: read the result with a GET",
        ));
    }
    let status = parts.status;
    let refused = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
    if refused && !scope.committed() {
        sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND owner = $3")
            .bind(key.user_id.to_string())
            .bind(&key.key)
            .bind(token)
            .execute(&db.pool)
            .await?;
        return Ok(Response::from_parts(parts, Body::from(bytes)));
    }
    let saved = match parts.extensions.get::<Unsaved>() {
        Some(Unsaved(fields)) => without(&bytes, fields)?,
        None => String::from_utf8_lossy(&bytes).into_owned(),
    };
    sqlx::query(
        "UPDATE idempotency_keys SET status = $4, response_body = $5 \
         WHERE user_id = $1 AND key = $2 AND owner = $3",
    )
    .bind(key.user_id.to_string())
    .bind(&key.key)
    .bind(token)
    .bind(i64::from(status.as_u16()))
    .bind(saved)
    .execute(&db.pool)
    .await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// The JSON object `bytes` with `fields` set to null.
fn without(bytes: &[u8], fields: &[&str]) -> Result<String, Error> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(Error::internal)?;
    if let Some(object) = value.as_object_mut() {
        for field in fields {
            if let Some(slot) = object.get_mut(*field) {
                *slot = serde_json::Value::Null;
            }
        }
    }
    Ok(value.to_string())
}

/// Deletes every key past its lifetime; the server runs it on a schedule, so keys of users
/// who never send another keyed request do not stay forever.
pub async fn purge_expired(db: &Db) -> Result<u64, Error> {
    let purged = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(now_micros() - KEY_LIFETIME_MICROS)
        .execute(&db.pool)
        .await?;
    Ok(purged.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Storage;

    async fn db() -> (Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("predex-idem-{}", uuid::Uuid::new_v4()));
        let db = Db::connect(&Storage::Sqlite(dir.join("t.db")), 2)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        (db, dir)
    }

    async fn saved_status(db: &Db, key: &IdempotencyKey) -> Option<Option<i64>> {
        sqlx::query_scalar("SELECT status FROM idempotency_keys WHERE key = $1")
            .bind(&key.key)
            .fetch_optional(&db.pool)
            .await
            .unwrap()
    }

    /// A key past its lifetime is a new key, whatever it answered before, even before the
    /// purge reaches it.
    #[tokio::test]
    async fn an_expired_key_is_taken_afresh() {
        let (db, dir) = db().await;
        let key = IdempotencyKey {
            user_id: uuid::Uuid::new_v4(),
            key: "old".into(),
        };
        let Claim::Taken { token, .. } = claim(&db, &key, "first").await.unwrap() else {
            panic!("a new key is taken");
        };
        let scope = Scope::new(key.clone());
        save(
            &db,
            &key,
            &token,
            StatusCode::CREATED.into_response(),
            &scope,
        )
        .await
        .unwrap();
        assert!(matches!(
            claim(&db, &key, "other").await,
            Err(Error::IdempotencyKeyReused)
        ));
        sqlx::query("UPDATE idempotency_keys SET created_at = created_at - $1")
            .bind(KEY_LIFETIME_MICROS + 1)
            .execute(&db.pool)
            .await
            .unwrap();
        let Claim::Taken {
            committed: None, ..
        } = claim(&db, &key, "other").await.unwrap()
        else {
            panic!("an expired key is taken afresh");
        };
        assert_eq!(saved_status(&db, &key).await, Some(None));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A refusal frees the key unless the request committed something first: a server error
    /// after a commit is saved, so a retry cannot run the command a second time.
    #[tokio::test]
    async fn an_error_after_a_commit_is_saved_and_a_refusal_before_one_is_not() {
        let (db, dir) = db().await;
        for (status, committed, kept) in [
            (StatusCode::INTERNAL_SERVER_ERROR, true, Some(Some(500))),
            (StatusCode::INTERNAL_SERVER_ERROR, false, None),
            (StatusCode::SERVICE_UNAVAILABLE, false, None),
            (StatusCode::TOO_MANY_REQUESTS, false, None),
            (StatusCode::CREATED, true, Some(Some(201))),
            (StatusCode::UNPROCESSABLE_ENTITY, false, Some(Some(422))),
        ] {
            let key = IdempotencyKey {
                user_id: uuid::Uuid::new_v4(),
                key: format!("{status}-{committed}"),
            };
            let Claim::Taken {
                token,
                committed: None,
            } = claim(&db, &key, "h").await.unwrap()
            else {
                panic!("a new key is taken");
            };
            let scope = Scope::new(key.clone());
            if committed {
                scope.mark_committed();
            }
            let answer = save(&db, &key, &token, status.into_response(), &scope)
                .await
                .unwrap();
            assert_eq!(answer.status(), status);
            assert_eq!(saved_status(&db, &key).await, kept, "{status} {committed}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
