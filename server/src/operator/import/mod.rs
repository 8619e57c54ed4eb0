//! `import FILE`: users, balances, markets and positions from another backend, as JSON lines
//! (the format: `docs/IMPORT.md`).
//!
//! The whole file is read and checked first, and every bad record is reported with its line
//! and reason; with any, nothing is written. Then, on a stopped exchange (started in this
//! process, holding the writer lock), each record is applied through the sequencer as
//! journaled commands: accounts and their engine users, deposits, market creation and the
//! market's state, and each position as collateral deposited into the import account, split
//! into YES + NO pairs and transferred to its holder (`TransferShares`, at the record's cost).
//! What the import account holds of both outcomes afterwards is merged back, and its cash
//! withdrawn, so it keeps only the other side of positions that did not net out. Every command
//! carries its record's key, committed with it (`imported_records`), so a record is applied
//! once however often the import runs or is cut off. Accounts whose password hash cannot be
//! checked here get a one-time reset token, printed for the operator.

mod apply;
mod check;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::config::Config;
use crate::db::Db;

use super::reach::Exchange;
use super::Failure;
use apply::apply;
use check::{check, check_applied, check_references};

/// The account positions are transferred from; never logs in.
pub const IMPORT_ACCOUNT_EMAIL: &str = "import@predex.invalid";

/// A bad record: its line (from 1) and why.
struct Bad(usize, String);

pub async fn import(config: &Config, file: &Path, reset_ttl_hours: u64) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| Failure::Usage(format!("cannot read {}: {error}", file.display())))?;
    let (plan, lines, mut bad) = check(&text);
    let existing = existing_names(config).await?;
    bad.extend(check_references(&lines, &existing));
    bad.extend(check_applied(&plan, &existing));
    if !bad.is_empty() {
        bad.sort_by_key(|Bad(line, _)| *line);
        return Err(refuse(bad));
    }
    let exchange = Exchange::reach(config, None).await?;
    let Some(server) = exchange.server_here() else {
        exchange.close().await;
        return Err(Failure::Usage(
            "a server is running on this database: stop it, then import".to_owned(),
        ));
    };
    let state = server.state().clone();
    let applied = apply(&state, plan, reset_ttl_hours).await;
    exchange.close().await;
    // One JSON line, like the reset tokens before it.
    println!("{}", applied?);
    Ok(())
}

/// What the exchange already holds that the file may name.
#[derive(Default)]
struct Existing {
    emails: HashSet<String>,
    /// Market slug -> state.
    markets: HashMap<String, String>,
    /// Commands of import records already applied: key -> the record's digest.
    applied: HashMap<String, String>,
}

/// Read without writing anything (a database not created yet has none of it).
async fn existing_names(config: &Config) -> Result<Existing, Failure> {
    if let crate::config::Storage::Sqlite(path) = &config.storage {
        if !path.exists() {
            return Ok(Existing::default());
        }
    }
    let db = Db::connect(&config.storage, 1)
        .await
        .map_err(Failure::unavailable)?;
    let emails = sqlx::query_scalar::<_, String>("SELECT email FROM users")
        .fetch_all(&db.pool)
        .await;
    let markets = sqlx::query_as::<_, (String, String)>("SELECT slug, state FROM markets")
        .fetch_all(&db.pool)
        .await;
    let applied =
        sqlx::query_as::<_, (String, String)>("SELECT record_key, digest FROM imported_records")
            .fetch_all(&db.pool)
            .await;
    db.pool.close().await;
    // No tables yet: an exchange that never started (or from before imports).
    Ok(Existing {
        emails: emails.unwrap_or_default().into_iter().collect(),
        markets: markets.unwrap_or_default().into_iter().collect(),
        applied: applied.unwrap_or_default().into_iter().collect(),
    })
}

/// The key of a balance record's deposit.
fn balance_key(email: &str) -> String {
    format!("balance:{email}")
}

/// The key every command of a position record starts with.
fn position_key(email: &str, slug: &str) -> String {
    format!("position:{email}:{slug}")
}

/// The keys of a position record's commands, in the order they run.
fn position_step_keys(email: &str, slug: &str) -> [String; 4] {
    let key = position_key(email, slug);
    [
        format!("{key}:collateral"),
        pairs_key(email, slug),
        format!("{key}:yes"),
        format!("{key}:no"),
    ]
}

/// A record's values, fingerprinted (SHA-256, 32 hex digits): the same values give the same
/// digest whatever the line's spacing or field order.
fn digest(values: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(values.as_bytes())[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The step of a position record that needs its market open (splitting pairs).
fn pairs_key(email: &str, slug: &str) -> String {
    format!("{}:pairs", position_key(email, slug))
}

fn refuse(bad: Vec<Bad>) -> Failure {
    for Bad(line, why) in &bad {
        eprintln!("line {line}: {why}");
    }
    Failure::Refused(format!("{} bad record(s); nothing was imported", bad.len()))
}
