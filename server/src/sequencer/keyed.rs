//! Commands submitted under an `Idempotency-Key`: what the idempotency layer tells the
//! sequencer about the request it runs, without every handler passing it along.
//!
//! The layer runs a keyed request inside a [`Scope`] (a task-local). A command submitted in
//! that scope carries the key to the sequencer, which records the command's seq and events on
//! the key's row in the same transaction as the command's effects: after a crash, the key
//! tells whether its request committed, and with what. The scope also notes that a command was
//! committed (so an error answer after a commit is not mistaken for a request that did
//! nothing), and, when a retry finds its key committed by a process that died before
//! answering, hands the handler that committed outcome instead of submitting again.
//!
//! Must never let a request submit a command twice under one key, nor leak a scope to another
//! request (a scope lives exactly as long as the request's future).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use engine::{Event, Reject};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Applied, Entry};

/// A user's idempotency key, as the sequencer records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub user_id: Uuid,
    pub key: String,
}

/// One keyed request's view of the sequencer.
#[derive(Debug)]
pub struct Scope {
    key: IdempotencyKey,
    committed: AtomicBool,
    /// A command this key already committed: the request's submit answers it.
    replay: Mutex<Option<Applied>>,
}

impl Scope {
    pub fn new(key: IdempotencyKey) -> Arc<Scope> {
        Arc::new(Scope {
            key,
            committed: AtomicBool::new(false),
            replay: Mutex::new(None),
        })
    }

    /// A retry of a request whose command was committed as `applied`: its handler answers from
    /// it and submits nothing.
    pub fn replaying(key: IdempotencyKey, applied: Applied) -> Arc<Scope> {
        let scope = Scope::new(key);
        *scope.replay.lock().unwrap_or_else(PoisonError::into_inner) = Some(applied);
        scope
    }

    /// Whether a committed outcome given to replay is still unused.
    pub fn replay_pending(&self) -> bool {
        self.replay
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    #[cfg(test)]
    pub fn mark_committed(&self) {
        self.committed.store(true, Ordering::Release);
    }

    /// Whether the request committed a command (or answered from one already committed).
    pub fn committed(&self) -> bool {
        self.committed.load(Ordering::Acquire)
    }
}

/// What a key's row records of its committed command, beside its seq.
#[derive(Serialize, Deserialize)]
struct Outcome<'a> {
    ts_micros: u64,
    result: Result<(), Reject>,
    events: std::borrow::Cow<'a, [Event]>,
}

pub(super) fn outcome_json(entry: &Entry) -> serde_json::Result<String> {
    serde_json::to_string(&Outcome {
        ts_micros: entry.command.ts_micros,
        result: entry.result,
        events: std::borrow::Cow::Borrowed(&entry.events),
    })
}

/// The command a key's row says was committed at `seq`, as its submitter heard it (less the
/// orders' states, which the handlers then read from the database).
pub fn committed(seq: u64, outcome_json: &str) -> serde_json::Result<Applied> {
    let outcome: Outcome = serde_json::from_str(outcome_json)?;
    Ok(Applied {
        seq,
        ts_micros: outcome.ts_micros,
        result: outcome.result,
        events: outcome.events.into_owned(),
        orders: Default::default(),
    })
}

tokio::task_local! {
    static SCOPE: Arc<Scope>;
}

/// Runs `future` (a keyed request) inside `scope`.
pub async fn run_in<F: Future>(scope: Arc<Scope>, future: F) -> F::Output {
    SCOPE.scope(scope, future).await
}

/// The key of the request being served, if it has one.
pub(super) fn current_key() -> Option<IdempotencyKey> {
    SCOPE.try_with(|scope| scope.key.clone()).ok()
}

/// The committed outcome a replaying request answers from (taken once).
pub(super) fn take_replay() -> Option<Applied> {
    SCOPE
        .try_with(|scope| {
            scope
                .replay
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        })
        .ok()
        .flatten()
}

pub(super) fn note_commit() {
    let _ = SCOPE.try_with(|scope| scope.committed.store(true, Ordering::Release));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> IdempotencyKey {
        IdempotencyKey {
            user_id: Uuid::new_v4(),
            key: "k".into(),
        }
    }

    #[tokio::test]
    async fn a_scope_is_seen_only_inside_its_request() {
        assert_eq!(current_key(), None);
        note_commit();
        let scope = Scope::new(key());
        let seen = run_in(scope.clone(), async {
            note_commit();
            current_key()
        })
        .await;
        assert_eq!(seen, Some(scope.key.clone()));
        assert!(scope.committed());
        // Another task does not inherit it.
        let outside = tokio::spawn(run_in(Scope::new(key()), async { current_key() }));
        assert_ne!(outside.await.unwrap(), Some(scope.key.clone()));
        assert_eq!(current_key(), None);
    }

    #[tokio::test]
    async fn a_replay_is_answered_once() {
        let applied = Applied {
            seq: 7,
            ts_micros: 1,
            result: Ok(()),
            events: Vec::new(),
            orders: Default::default(),
        };
        let scope = Scope::replaying(key(), applied);
        let (first, second) = run_in(scope, async { (take_replay(), take_replay()) }).await;
        assert_eq!(first.map(|applied| applied.seq), Some(7));
        assert!(second.is_none());
    }
}
