//! `verify`, `backup DIR` and `restore DIR`.
//!
//! Verification replays the journal twice (`sequencer::verify`) on a database nobody writes
//! meanwhile: under the writer lock when no server runs, else (SQLite) on a consistent copy
//! taken online. A SQLite backup is `VACUUM INTO`, a consistent copy of a live database; a
//! PostgreSQL one is `pg_dump`'s custom format, which `restore` loads with `pg_restore`.
//! Every backup and restore ends with a verification, and `restore` only fills an empty
//! database: it must never overwrite data.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::{Config, Storage};
use crate::db::{now_micros, Db};
use crate::domain::rfc3339;
use crate::sequencer::{self, Verification};
use crate::writer_lock::{LockError, WriterLock};

use super::{print_json, require_database, Failure};

const MANIFEST: &str = "backup.json";
const SQLITE_FILE: &str = "predex.sqlite";
const POSTGRES_FILE: &str = "predex.pgdump";

/// What a backup directory holds, written last (a directory without it is not a backup).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    /// `sqlite` or `postgres`: the kind of database it restores into.
    storage: String,
    file: String,
    created_at: String,
    /// What the copy verified to (SQLite; a dump is verified when restored).
    last_seq: Option<u64>,
    state_hash: Option<String>,
}

/// `verify` on the configured database.
pub async fn verify_configured(config: &Config) -> Result<(), Failure> {
    require_database(&config.storage)?;
    match WriterLock::acquire(&config.storage, Duration::ZERO).await {
        Ok(lock) => {
            let verified = verify_storage(&config.storage).await;
            lock.release().await;
            print_json(&report(&verified?));
            Ok(())
        }
        Err(LockError::Held(_)) => match &config.storage {
            Storage::Sqlite(path) => {
                let scratch = scratch_dir()?;
                let copy = scratch.join(SQLITE_FILE);
                let verified = async {
                    copy_sqlite(path, &copy).await?;
                    verify_storage(&Storage::Sqlite(copy.clone())).await
                }
                .await;
                let _ = std::fs::remove_dir_all(&scratch);
                print_json(&report(&verified?));
                Ok(())
            }
            Storage::Postgres(_) => Err(Failure::Usage(
                "a server is running on this PostgreSQL database; stop it to verify, or \
                 verify a backup by restoring it into an empty database"
                    .to_owned(),
            )),
        },
        Err(error) => Err(Failure::unavailable(error)),
    }
}

async fn verify_storage(storage: &Storage) -> Result<Verification, Failure> {
    let db = Db::connect(storage, 2)
        .await
        .map_err(Failure::unavailable)?;
    let verified = sequencer::verify(&db).await;
    db.pool.close().await;
    verified.map_err(|error| match error {
        sequencer::RecoveryError::Mismatch(why) => Failure::Differs(why),
        other => Failure::unavailable(other),
    })
}

fn report(verified: &Verification) -> serde_json::Value {
    json!({
        "ok": true,
        "lastSeq": verified.from_empty.last_seq,
        "stateHash": verified.from_empty.state_hash,
        "replayedFromEmpty": verified.from_empty.replayed,
        "snapshotSeq": verified.from_snapshot.snapshot_seq,
        "replayedFromSnapshot": verified.from_snapshot.replayed,
        "snapshotsSkipped": verified.from_snapshot.snapshots_skipped,
        "users": verified.users,
        "markets": verified.markets,
        "openOrders": verified.open_orders,
    })
}

/// `backup DIR`: a consistent copy of the configured database, verified.
pub async fn backup(config: &Config, dir: &Path) -> Result<(), Failure> {
    empty_dir(dir)?;
    let manifest = match &config.storage {
        Storage::Sqlite(path) => {
            let copy = dir.join(SQLITE_FILE);
            copy_sqlite(path, &copy).await?;
            let verified = verify_storage(&Storage::Sqlite(copy)).await?;
            Manifest {
                storage: "sqlite".into(),
                file: SQLITE_FILE.into(),
                created_at: rfc3339(now_micros()),
                last_seq: Some(verified.from_empty.last_seq),
                state_hash: Some(verified.from_empty.state_hash),
            }
        }
        Storage::Postgres(url) => {
            let file = dir.join(POSTGRES_FILE);
            run_tool(
                postgres_tool("pg_dump", url)?
                    .args(["--format=custom", "--no-owner", "--file"])
                    .arg(&file),
            )?;
            // The archive must list the journal's data, or it cannot restore the exchange.
            let listing = run_tool(Command::new("pg_restore").arg("--list").arg(&file))?;
            if !listing
                .lines()
                .any(|line| line.contains("TABLE DATA public journal"))
            {
                return Err(Failure::Differs("the dump holds no journal data".into()));
            }
            Manifest {
                storage: "postgres".into(),
                file: POSTGRES_FILE.into(),
                created_at: rfc3339(now_micros()),
                last_seq: None,
                state_hash: None,
            }
        }
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(Failure::unavailable)?;
    std::fs::write(dir.join(MANIFEST), text).map_err(Failure::unavailable)?;
    print_json(&serde_json::to_value(&manifest).map_err(Failure::unavailable)?);
    Ok(())
}

/// `restore DIR`: into the configured database, which must be empty and not in use; verified.
pub async fn restore(config: &Config, dir: &Path) -> Result<(), Failure> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).map_err(|error| {
        Failure::Usage(format!(
            "{} is not a backup ({MANIFEST}: {error})",
            dir.display()
        ))
    })?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|error| Failure::Usage(format!("{MANIFEST} does not parse: {error}")))?;
    let lock = WriterLock::acquire(&config.storage, Duration::ZERO)
        .await
        .map_err(|error| Failure::Usage(format!("stop the server first: {error}")))?;
    let restored = restore_locked(config, dir, &manifest).await;
    lock.release().await;
    let verified = restored?;
    if let Some(expected) = &manifest.state_hash {
        if expected != &verified.from_empty.state_hash {
            return Err(Failure::Differs(format!(
                "restored state hash {}, the backup recorded {expected}",
                verified.from_empty.state_hash
            )));
        }
    }
    print_json(&report(&verified));
    Ok(())
}

async fn restore_locked(
    config: &Config,
    dir: &Path,
    manifest: &Manifest,
) -> Result<Verification, Failure> {
    let source = dir.join(&manifest.file);
    match (&config.storage, manifest.storage.as_str()) {
        (Storage::Sqlite(path), "sqlite") => {
            if path.exists() {
                return Err(Failure::Usage(format!(
                    "{} exists: restore into an empty DATA_DIR",
                    path.display()
                )));
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(Failure::unavailable)?;
            }
            let partial = PathBuf::from(format!("{}.restoring", path.display()));
            std::fs::copy(&source, &partial).map_err(Failure::unavailable)?;
            std::fs::File::open(&partial)
                .and_then(|file| file.sync_all())
                .map_err(Failure::unavailable)?;
            std::fs::rename(&partial, path).map_err(Failure::unavailable)?;
        }
        (Storage::Postgres(url), "postgres") => {
            let db = Db::connect(&config.storage, 1)
                .await
                .map_err(Failure::unavailable)?;
            let tables: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_one(&db.pool)
            .await
            .map_err(Failure::unavailable)?;
            db.pool.close().await;
            if tables > 0 {
                return Err(Failure::Usage(
                    "the configured PostgreSQL database is not empty: restore into a new one"
                        .to_owned(),
                ));
            }
            run_tool(
                postgres_tool("pg_restore", url)?
                    .args(["--no-owner", "--exit-on-error"])
                    .arg(&source),
            )?;
        }
        (_, other) => {
            return Err(Failure::Usage(format!(
                "the backup is of a {other} database; the configured one is not"
            )))
        }
    }
    // A backup from an older server gets this one's migrations before it is checked.
    let db = Db::connect(&config.storage, 2)
        .await
        .map_err(Failure::unavailable)?;
    let migrated = db.migrate().await;
    db.pool.close().await;
    migrated.map_err(Failure::unavailable)?;
    verify_storage(&config.storage).await
}

/// `VACUUM INTO`: a consistent copy of a database that may be in use.
async fn copy_sqlite(path: &Path, copy: &Path) -> Result<(), Failure> {
    let storage = Storage::Sqlite(path.to_owned());
    require_database(&storage)?;
    let db = Db::connect(&storage, 1)
        .await
        .map_err(Failure::unavailable)?;
    let copied = sqlx::query("VACUUM INTO $1")
        .bind(copy.display().to_string())
        .execute(&db.pool)
        .await;
    db.pool.close().await;
    copied.map_err(Failure::unavailable)?;
    Ok(())
}

/// `dir`, created if missing; refused if it holds anything.
fn empty_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(Failure::unavailable)?;
    let mut entries = std::fs::read_dir(dir).map_err(Failure::unavailable)?;
    if entries.next().is_some() {
        return Err(Failure::Usage(format!(
            "{} is not empty: back up into a new directory",
            dir.display()
        )));
    }
    Ok(())
}

fn scratch_dir() -> Result<PathBuf, Failure> {
    let dir = std::env::temp_dir().join(format!("predex-verify-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).map_err(Failure::unavailable)?;
    Ok(dir)
}

/// A PostgreSQL client tool connecting to `url`: the password goes in its environment
/// (`PGPASSWORD`), not in its arguments, which any user of the machine can list.
fn postgres_tool(program: &str, url: &str) -> Result<Command, Failure> {
    let mut parsed = reqwest::Url::parse(url)
        .map_err(|error| Failure::Usage(format!("DATABASE_URL does not parse: {error}")))?;
    let password = parsed.password().map(percent_decoded);
    let _ = parsed.set_password(None);
    let mut command = Command::new(program);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    command.arg("--dbname").arg(parsed.as_str());
    Ok(command)
}

/// A URL's percent-encoded part as the bytes it stands for.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok());
        match (
            bytes[i],
            hex.and_then(|pair| u8::from_str_radix(pair, 16).ok()),
        ) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs a PostgreSQL client tool; answers its standard output.
fn run_tool(command: &mut Command) -> Result<String, Failure> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command.output().map_err(|error| {
        Failure::Unavailable(format!(
            "cannot run {program} (install the PostgreSQL client tools): {error}"
        ))
    })?;
    if !output.status.success() {
        return Err(Failure::Unavailable(format!(
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
