//! The database: `sqlx::AnyPool`s over PostgreSQL or embedded SQLite, and its migrations.
//!
//! Owns connecting (SQLite in WAL mode with `synchronous=FULL`, so a committed batch survives a
//! power cut), applying the migrations of the right flavour at start, and the few helpers every
//! query module shares. Two pools: the requests' (reads, with a statement timeout on
//! PostgreSQL) and the sequencer's single writer connection, so no amount of request traffic
//! can make a batch commit wait for a connection. Queries themselves live beside the code that
//! uses them.
//!
//! Portability rules the whole crate follows, so one SQL text runs on both databases:
//! placeholders are `$1, $2, ...` (SQLite accepts them too); ids are TEXT UUIDs, times BIGINT
//! microseconds, money BIGINT micros; and a transaction that writes starts with a write, because
//! a SQLite transaction that reads first cannot always upgrade to a writer.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Executor};

use crate::config::Storage;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");

/// How long a SQLite writer waits for another to finish before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Clone, Debug)]
pub struct Db {
    /// Requests' reads and their own small writes (sessions, keys, idempotency records). On
    /// PostgreSQL every statement on it times out after `READ_STATEMENT_TIMEOUT`.
    pub pool: AnyPool,
    /// The sequencer's one connection: batch commits never wait behind request traffic for
    /// a connection, and nothing else uses it.
    pub writer: AnyPool,
    pub backend: Backend,
}

/// How long a statement on the request pool may run (PostgreSQL; SQLite has no such limit,
/// but its readers never block the writer in WAL mode).
pub const READ_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Db {
    pub async fn connect(storage: &Storage, max_connections: u32) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = match storage {
            Storage::Postgres(url) => (url.clone(), Backend::Postgres),
            Storage::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|error| DbError::DataDir(parent.display().to_string(), error))?;
                }
                (
                    format!("sqlite://{}?mode=rwc", path.display()),
                    Backend::Sqlite,
                )
            }
        };
        let options = AnyConnectOptions::from_str(&url).map_err(DbError::Connect)?;
        let pool = pool_options(backend, max_connections, Some(READ_STATEMENT_TIMEOUT))
            .connect_with(options.clone())
            .await
            .map_err(DbError::Connect)?;
        // Connected on first use, from the sequencer's own runtime, so its I/O is driven there.
        let writer = pool_options(backend, 1, None).connect_lazy_with(options);
        Ok(Db {
            pool,
            writer,
            backend,
        })
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        let migrator = match self.backend {
            Backend::Postgres => &POSTGRES_MIGRATIONS,
            Backend::Sqlite => &SQLITE_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

fn pool_options(
    backend: Backend,
    max_connections: u32,
    statement_timeout: Option<Duration>,
) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                let mut settings = Vec::new();
                match backend {
                    Backend::Sqlite => settings.extend([
                        "PRAGMA journal_mode = WAL".to_owned(),
                        "PRAGMA synchronous = FULL".to_owned(),
                        "PRAGMA foreign_keys = ON".to_owned(),
                        format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"),
                    ]),
                    Backend::Postgres => settings.push(match statement_timeout {
                        Some(timeout) => format!("SET statement_timeout = {}", timeout.as_millis()),
                        // The writer's statements are prepared once and run with different row
                        // counts; a generic plan for `UPDATE ... FROM (VALUES ...)` scans the
                        // whole table (seen: one sequential scan of `orders` per batch), so
                        // each run is planned for its own values.
                        None => "SET plan_cache_mode = force_custom_plan".to_owned(),
                    }),
                }
                for setting in settings {
                    conn.execute(setting.as_str()).await?;
                }
                Ok(())
            })
        })
}

/// Microseconds since the Unix epoch, by the wall clock (for audit columns and token expiry;
/// the engine's clock is the sequencer's, not this).
pub fn now_micros() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}

/// Whether `error` is a violated unique constraint (both databases report it the same way
/// through sqlx's error kind).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A column value for multi-row statements built at run time.
#[derive(Clone, Debug)]
pub enum Value {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Bool(bool),
    Bytes(Vec<u8>),
}

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` values; on SQLite `(?, ?), (?, ?)`.
///
/// SQLite looks a numbered parameter's name up by a linear scan of the statement's names, and
/// sqlx asks for every parameter's name when it binds: quadratic in the parameters of a
/// multi-row statement (seen at 5% of the server's time under load). Anonymous `?`s have no
/// names to scan, and bind in order.
pub fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(row * columns + column + 1).to_string());
                }
                Backend::Sqlite => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

/// Binds `values` in order.
pub fn bind_all<'q>(
    mut query: Query<'q, Any, AnyArguments<'q>>,
    values: Vec<Value>,
) -> Query<'q, Any, AnyArguments<'q>> {
    for value in values {
        query = match value {
            Value::Int(v) => query.bind(v),
            Value::OptInt(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
            Value::OptText(v) => query.bind(v),
            Value::Bool(v) => query.bind(v),
            Value::Bytes(v) => query.bind(v),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(
            placeholders(Backend::Postgres, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(placeholders(Backend::Postgres, 1, 1), "($1)");
        assert_eq!(placeholders(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
    }
}
