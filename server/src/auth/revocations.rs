//! Credentials that stopped being valid while connections still hold them: sessions ended by
//! logout or by a reused refresh token, and revoked API keys.
//!
//! A request checks its credential against the database every time; a WebSocket checks once,
//! when it authenticates, and then lives for hours. So every instance learns of revocations
//! and tells its connections: at once for what it revoked itself ([`Revocations::announce`]),
//! and within [`POLL_EVERY`] for what any instance revoked (a poll of the revoked rows by time,
//! served by an index). A connection whose credential is revoked is closed.
//!
//! Owns the recently revoked set and its change signal. Must never miss a revocation
//! committed while a connection was authenticating: a connection subscribes before it checks
//! its credential, and the poll reads a window that overlaps the previous one.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::Row;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::db::{now_micros, Db};
use crate::http::extractor::AuthMethod;

/// How often the database is asked for revocations made anywhere.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// How far each poll reaches back before the latest revocation it saw: transactions commit in
/// another order than their timestamps, and instances' clocks differ a little.
const POLL_OVERLAP_MICROS: i64 = 10_000_000;
/// How long a revoked credential is remembered: far longer than any connection takes to look.
const REMEMBERED_FOR: Duration = Duration::from_secs(600);

pub struct Revocations {
    revoked: Mutex<HashMap<AuthMethod, Instant>>,
    /// Bumped whenever `revoked` gains a credential.
    changed: watch::Sender<u64>,
}

impl Default for Revocations {
    fn default() -> Revocations {
        Revocations {
            revoked: Mutex::default(),
            changed: watch::channel(0).0,
        }
    }
}

impl Revocations {
    /// Wakes on every new revocation (subscribe before checking a credential).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn is_revoked(&self, credential: &AuthMethod) -> bool {
        let revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
        revoked.contains_key(credential)
    }

    /// Remembers `credentials` as revoked and wakes the connections.
    pub fn announce(&self, credentials: impl IntoIterator<Item = AuthMethod>) {
        let now = Instant::now();
        let mut revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
        revoked.retain(|_, at| now.duration_since(*at) < REMEMBERED_FOR);
        let mut added = false;
        for credential in credentials {
            added |= revoked.insert(credential, now).is_none();
        }
        drop(revoked);
        if added {
            self.changed.send_modify(|generation| *generation += 1);
        }
    }
}

/// Polls the database for revocations every `POLL_EVERY` and announces them.
pub fn spawn_poller(db: Db, revocations: std::sync::Arc<Revocations>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut since = now_micros() - POLL_OVERLAP_MICROS;
        let mut every = tokio::time::interval(POLL_EVERY);
        loop {
            every.tick().await;
            match revoked_since(&db, since).await {
                Ok((credentials, latest)) => {
                    since = since.max(latest - POLL_OVERLAP_MICROS);
                    revocations.announce(credentials);
                }
                Err(error) => tracing::warn!(%error, "polling revocations failed"),
            }
        }
    })
}

/// Sessions and API keys revoked at or after `since`, and the latest revocation time seen.
async fn revoked_since(db: &Db, since: i64) -> Result<(Vec<AuthMethod>, i64), sqlx::Error> {
    let mut credentials = Vec::new();
    let mut latest = since;
    for (table, session) in [("sessions", true), ("api_keys", false)] {
        let rows = sqlx::query(&format!(
            "SELECT id, revoked_at FROM {table} WHERE revoked_at >= $1"
        ))
        .bind(since)
        .fetch_all(&db.pool)
        .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            let revoked_at: i64 = row.try_get("revoked_at")?;
            latest = latest.max(revoked_at);
            let Ok(id) = Uuid::parse_str(&id) else {
                continue;
            };
            credentials.push(if session {
                AuthMethod::Session { session_id: id }
            } else {
                AuthMethod::ApiKey { key_id: id }
            });
        }
    }
    Ok((credentials, latest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_announced_credential_wakes_subscribers_and_is_revoked() {
        let revocations = Revocations::default();
        let mut woken = revocations.subscribe();
        let session = AuthMethod::Session {
            session_id: Uuid::new_v4(),
        };
        let other = AuthMethod::ApiKey {
            key_id: Uuid::new_v4(),
        };
        assert!(!revocations.is_revoked(&session));
        revocations.announce([session]);
        assert!(woken.has_changed().unwrap());
        woken.mark_unchanged();
        assert!(revocations.is_revoked(&session));
        assert!(!revocations.is_revoked(&other));
        // Announcing it again (the poll sees it too) wakes no one.
        revocations.announce([session]);
        assert!(!woken.has_changed().unwrap());
    }
}
