//! The one-writer lock: at most one process appends to a database's journal.
//!
//! A primary server holds it for its whole life, and so does `server admin` when it works on a
//! stopped exchange; whoever finds it taken knows a server is running there. On PostgreSQL it
//! is a session-level advisory lock held by a connection of its own; on SQLite, an exclusive
//! lock on a file beside the database. Both belong to the process, so the kernel (or the
//! database, when the connection drops) releases them when it dies, kill -9 included: a crash
//! never leaves a stale lock to clean up by hand. The other way round, a PostgreSQL lock dies
//! with its connection (a database restart, a terminated backend, a cut network): the holder
//! checks it every `CHECK_EVERY` and a server that lost it stops (`lost`), before a second one
//! could take it. Must never be taken through the request or writer pools, whose connections
//! outlive any one holder.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions, Connection};

use crate::config::Storage;

/// The advisory lock's key: any constant no other tool on the database uses ("predex" in ASCII).
const ADVISORY_KEY: i64 = 0x7072_6564_6578;
/// How often a waiting taker tries again.
const RETRY_EVERY: Duration = Duration::from_millis(100);
/// How often a PostgreSQL holder checks that its lock's connection is alive: well within the
/// 10 s a second server waits before giving up.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another process holds this database's writer lock (a server is running on it, or \
         `server admin` is): {0}"
    )]
    Held(String),
    #[error("cannot take the writer lock: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot take the writer lock: {0}")]
    Database(#[from] sqlx::Error),
}

/// Held until dropped (or the process dies).
pub enum WriterLock {
    /// Shared with `lost`, which checks it.
    Postgres(Arc<tokio::sync::Mutex<AnyConnection>>),
    Sqlite(std::fs::File),
}

impl std::fmt::Debug for WriterLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriterLock::Postgres(_) => f.write_str("WriterLock::Postgres"),
            WriterLock::Sqlite(file) => write!(f, "WriterLock::Sqlite({file:?})"),
        }
    }
}

impl WriterLock {
    /// Takes the lock, waiting up to `patience` for a holder that is going away (a killed
    /// server's PostgreSQL session ends a moment after the process).
    pub async fn acquire(storage: &Storage, patience: Duration) -> Result<WriterLock, LockError> {
        let deadline = Instant::now() + patience;
        let mut lock = Self::open(storage).await?;
        loop {
            if lock.try_take().await? {
                return Ok(lock);
            }
            if Instant::now() >= deadline {
                return Err(LockError::Held(where_held(storage)));
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }

    /// Whether a process holds the lock now (taking and releasing it at once if not).
    pub async fn is_held(storage: &Storage) -> Result<bool, LockError> {
        match Self::acquire(storage, Duration::ZERO).await {
            Ok(lock) => {
                lock.release().await;
                Ok(false)
            }
            Err(LockError::Held(_)) => Ok(true),
            Err(error) => Err(error),
        }
    }

    async fn open(storage: &Storage) -> Result<WriterLock, LockError> {
        sqlx::any::install_default_drivers();
        Ok(match storage {
            Storage::Postgres(url) => {
                let options = AnyConnectOptions::from_str(url)?;
                let connection = options.connect().await?;
                WriterLock::Postgres(Arc::new(tokio::sync::Mutex::new(connection)))
            }
            Storage::Sqlite(_) => {
                let path = lock_file(storage).expect("a SQLite storage has a lock file");
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)?;
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)?;
                WriterLock::Sqlite(file)
            }
        })
    }

    async fn try_take(&mut self) -> Result<bool, LockError> {
        match self {
            WriterLock::Postgres(connection) => {
                let mut connection = connection.lock().await;
                let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(ADVISORY_KEY)
                    .fetch_one(&mut *connection)
                    .await?;
                Ok(taken)
            }
            WriterLock::Sqlite(file) => match file.try_lock() {
                Ok(()) => Ok(true),
                Err(std::fs::TryLockError::WouldBlock) => Ok(false),
                Err(std::fs::TryLockError::Error(error)) => Err(error.into()),
            },
        }
    }

    /// Resolves once the lock is lost: its PostgreSQL connection stopped answering (the
    /// session, and the lock with it, is gone). Never on SQLite, whose lock only the process's
    /// death ends.
    pub async fn lost(&self) {
        let WriterLock::Postgres(connection) = self else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            if connection.lock().await.ping().await.is_err() {
                return;
            }
        }
    }

    /// Releases the lock now (dropping it does too, a moment later on PostgreSQL).
    pub async fn release(self) {
        match self {
            WriterLock::Postgres(connection) => {
                if let Ok(connection) = Arc::try_unwrap(connection) {
                    let _ = connection.into_inner().close().await;
                }
            }
            WriterLock::Sqlite(file) => drop(file),
        }
    }
}

/// The file whose lock stands for a SQLite database's (`predex.db.lock` beside `predex.db`).
pub fn lock_file(storage: &Storage) -> Option<PathBuf> {
    match storage {
        Storage::Sqlite(path) => {
            let mut name = path.as_os_str().to_owned();
            name.push(".lock");
            Some(PathBuf::from(name))
        }
        Storage::Postgres(_) => None,
    }
}

fn where_held(storage: &Storage) -> String {
    match lock_file(storage) {
        Some(path) => format!("{} is locked", path.display()),
        None => format!("PostgreSQL advisory lock {ADVISORY_KEY} is taken"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_taker_is_refused_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("predex-lock-{}", uuid::Uuid::new_v4()));
        let storage = Storage::Sqlite(dir.join("predex.sqlite"));
        let first = WriterLock::acquire(&storage, Duration::ZERO).await.unwrap();
        assert!(WriterLock::is_held(&storage).await.unwrap());
        let refused = WriterLock::acquire(&storage, Duration::from_millis(250)).await;
        assert!(matches!(refused, Err(LockError::Held(_))), "{refused:?}");
        first.release().await;
        assert!(!WriterLock::is_held(&storage).await.unwrap());
        let again = WriterLock::acquire(&storage, Duration::ZERO).await.unwrap();
        again.release().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
