//! Applying a checked import through the sequencer: accounts, markets, balances, positions
//! (collateral, pairs, transfers from the import account), the import account settled, and
//! markets moved to their state. Every command carries its record's key; nothing here writes
//! engine state except through the sequencer.

use std::collections::{BTreeMap, HashMap, HashSet};

use engine::units::{MICROS_PER_SHARE, TRANSFER_MICROS_MAX};
use engine::{MarketId, Op, Outcome, UserId};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;
use uuid::Uuid;

use crate::auth::password_reset;
use crate::db::{now_micros, placeholders, Db};
use crate::domain::{Email, FullName};
use crate::http::AppState;
use crate::markets;
use crate::sequencer::Subject;
use crate::users::Role;

use super::check::{NewMarket, NewPosition, NewUser, Plan, Target};
use super::{balance_key, position_step_keys, Failure, IMPORT_ACCOUNT_EMAIL};

/// Stored instead of a password hash this server cannot check: no password matches it.
const NO_PASSWORD: &str = "!reset-required";
/// Records applied at once (their commands share the sequencer's batches).
const RECORDS_AT_ONCE: usize = 256;
/// Accounts inserted per statement.
const USERS_PER_INSERT: usize = 500;

/// What one import did, counted.
#[derive(Default)]
struct Tally {
    users_created: usize,
    users_existing: usize,
    resets: usize,
    markets_created: usize,
    markets_existing: usize,
    balances_applied: usize,
    positions_applied: usize,
    records_skipped: usize,
}

pub(super) async fn apply(
    state: &AppState,
    plan: Plan,
    reset_ttl_hours: u64,
) -> Result<serde_json::Value, Failure> {
    let mut tally = Tally::default();
    let done: HashSet<String> = sqlx::query_scalar("SELECT record_key FROM imported_records")
        .fetch_all(&state.db.pool)
        .await
        .map_err(Failure::unavailable)?
        .into_iter()
        .collect();
    let mut accounts = users(state, &plan.users, reset_ttl_hours, &mut tally).await?;
    let import_account = import_account(state).await?;
    let market_ids = create_markets(state, &plan.markets, &mut tally).await?;
    for balance in &plan.balances {
        known_account(state, &mut accounts, &balance.email).await?;
    }
    for position in &plan.positions {
        known_account(state, &mut accounts, &position.email).await?;
    }
    let mut steps = Vec::new();
    for balance in &plan.balances {
        let key = balance_key(balance.email.as_str());
        if done.contains(&key) {
            tally.records_skipped += 1;
            continue;
        }
        let user = accounts[balance.email.as_str()];
        steps.push(vec![Step {
            op: Op::Deposit {
                user,
                amount_micros: balance.amount_micros,
            },
            key,
            digest: balance.digest.clone(),
            cost_micros: None,
        }]);
        tally.balances_applied += 1;
    }
    for position in &plan.positions {
        let market = match market_ids.get(&position.slug) {
            Some(market) => *market,
            None => existing_market(state, &position.slug).await?,
        };
        let user = accounts[position.email.as_str()];
        let record_steps = position_steps(position, import_account, user, market, &done);
        if record_steps.is_empty() {
            tally.records_skipped += 1;
            continue;
        }
        steps.push(record_steps);
        tally.positions_applied += 1;
    }
    run_steps(state, steps).await?;
    settle_import_account(state, import_account).await?;
    for market in &plan.markets {
        reach_target(state, market_ids[market.params.slug.as_str()], market.state).await?;
    }
    Ok(json!({
        "type": "summary",
        "usersCreated": tally.users_created,
        "usersExisting": tally.users_existing,
        "passwordResets": tally.resets,
        "marketsCreated": tally.markets_created,
        "marketsExisting": tally.markets_existing,
        "balancesApplied": tally.balances_applied,
        "positionsApplied": tally.positions_applied,
        "recordsSkipped": tally.records_skipped,
    }))
}

/// Creates the accounts not there yet (in bulk), each with its engine user; answers every
/// email's engine user. Prints a reset token for each new account without a usable hash.
async fn users(
    state: &AppState,
    users: &[NewUser],
    reset_ttl_hours: u64,
    tally: &mut Tally,
) -> Result<HashMap<String, UserId>, Failure> {
    let existing: HashSet<String> = sqlx::query_scalar("SELECT email FROM users")
        .fetch_all(&state.db.pool)
        .await
        .map_err(Failure::unavailable)?
        .into_iter()
        .collect();
    let fresh: Vec<&NewUser> = users
        .iter()
        .filter(|user| !existing.contains(user.email.as_str()))
        .collect();
    tally.users_existing = users.len() - fresh.len();
    let now = now_micros();
    let mut created = Vec::with_capacity(fresh.len());
    let mut tx = state.db.pool.begin().await.map_err(Failure::unavailable)?;
    for chunk in fresh.chunks(USERS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO users (id, email, full_name, password_hash, role, created_at, \
             updated_at) VALUES {}",
            placeholders(state.db.backend, chunk.len(), 7)
        );
        let mut query = sqlx::query(&sql);
        for user in chunk {
            let id = Uuid::new_v4();
            created.push((id, *user));
            query = query
                .bind(id.to_string())
                .bind(user.email.as_str().to_owned())
                .bind(user.name.as_str().to_owned())
                .bind(
                    user.password_hash
                        .clone()
                        .unwrap_or_else(|| NO_PASSWORD.into()),
                )
                .bind(user.role.as_str())
                .bind(now)
                .bind(now);
        }
        query
            .execute(&mut *tx)
            .await
            .map_err(Failure::unavailable)?;
    }
    tally.users_created = created.len();
    // Accounts created now without a usable hash, and those of the file an earlier run created
    // whose token is gone (used up, expired, or printed by a run that was cut off): a token
    // each, in the accounts' own transaction, so no account is left without one.
    let mut needing_reset: Vec<(Uuid, String)> = created
        .iter()
        .filter(|(_, user)| user.password_hash.is_none())
        .map(|(id, user)| (*id, user.email.as_str().to_owned()))
        .collect();
    let in_file: HashSet<&str> = users.iter().map(|user| user.email.as_str()).collect();
    let waiting: Vec<(String, String)> = sqlx::query_as(
        "SELECT u.id, u.email FROM users u WHERE u.password_hash = $1 AND NOT EXISTS \
         (SELECT 1 FROM password_resets r WHERE r.user_id = u.id AND r.used_at IS NULL \
         AND r.expires_at > $2)",
    )
    .bind(NO_PASSWORD)
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(Failure::unavailable)?;
    let just_created: HashSet<Uuid> = created.iter().map(|(id, _)| *id).collect();
    for (id, email) in waiting {
        let id = Uuid::parse_str(&id).map_err(Failure::unavailable)?;
        if in_file.contains(email.as_str()) && !just_created.contains(&id) {
            needing_reset.push((id, email));
        }
    }
    let ids: Vec<Uuid> = needing_reset.iter().map(|(id, _)| *id).collect();
    let issued = password_reset::issue_in(&mut tx, &ids, reset_ttl_hours)
        .await
        .map_err(Failure::unavailable)?;
    tx.commit().await.map_err(Failure::unavailable)?;
    for ((_, email), issued) in needing_reset.iter().zip(issued) {
        println!(
            "{}",
            json!({
                "type": "passwordReset",
                "email": email,
                "token": issued.token,
                "expiresAt": issued.expires_at,
            })
        );
    }
    tally.resets = ids.len();
    let ids_by_email: HashMap<String, String> = sqlx::query_as("SELECT email, id FROM users")
        .fetch_all(&state.db.pool)
        .await
        .map_err(Failure::unavailable)?
        .into_iter()
        .collect();
    let mut wanted = Vec::with_capacity(users.len());
    for user in users {
        let id = ids_by_email
            .get(user.email.as_str())
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or_else(|| Failure::unavailable(format!("{} vanished", user.email.as_str())))?;
        wanted.push((user.email.as_str().to_owned(), id));
    }
    engine_users(state, wanted).await
}

/// The engine user of each (email, account), opened many at once so they share batches.
async fn engine_users(
    state: &AppState,
    accounts: Vec<(String, Uuid)>,
) -> Result<HashMap<String, UserId>, Failure> {
    stream::iter(accounts)
        .map(|(email, id)| async move {
            let user = state
                .sequencer
                .ensure_user(id)
                .await
                .map_err(Failure::unavailable)?;
            Ok::<_, Failure>((email, user))
        })
        .buffer_unordered(RECORDS_AT_ONCE)
        .try_collect()
        .await
}

/// The engine user of an account the file does not create (checked to exist).
async fn known_account(
    state: &AppState,
    accounts: &mut HashMap<String, UserId>,
    email: &Email,
) -> Result<(), Failure> {
    if accounts.contains_key(email.as_str()) {
        return Ok(());
    }
    let user = crate::users::by_email(&state.db, email)
        .await
        .map_err(Failure::unavailable)?
        .ok_or_else(|| Failure::unavailable(format!("{} vanished", email.as_str())))?;
    let engine = state
        .sequencer
        .ensure_user(user.id)
        .await
        .map_err(Failure::unavailable)?;
    accounts.insert(email.as_str().to_owned(), engine);
    Ok(())
}

async fn import_account(state: &AppState) -> Result<UserId, Failure> {
    let email = Email::parse(IMPORT_ACCOUNT_EMAIL).map_err(Failure::unavailable)?;
    let user = match crate::users::by_email(&state.db, &email)
        .await
        .map_err(Failure::unavailable)?
    {
        Some(user) => user,
        None => {
            let name = FullName::parse("Import").map_err(Failure::unavailable)?;
            crate::users::insert(&state.db, &email, &name, NO_PASSWORD.into(), Role::User)
                .await
                .map_err(Failure::unavailable)?
        }
    };
    state
        .sequencer
        .ensure_user(user.id)
        .await
        .map_err(Failure::unavailable)
}

/// Creates the markets not there yet; answers every file market's engine id.
async fn create_markets(
    state: &AppState,
    markets: &[NewMarket],
    tally: &mut Tally,
) -> Result<BTreeMap<String, MarketId>, Failure> {
    let mut ids = BTreeMap::new();
    for market in markets {
        let slug = market.params.slug.as_str().to_owned();
        if let Some(id) = markets::engine_id(state, &slug)
            .await
            .map_err(Failure::unavailable)?
        {
            tally.markets_existing += 1;
            ids.insert(slug, id);
            continue;
        }
        let subject = Subject::Market {
            market_id: Uuid::new_v4(),
            question: market.question.clone(),
            description: market.description.clone(),
        };
        let applied = state
            .sequencer
            .submit(Op::CreateMarket(market.params), Some(subject))
            .await
            .map_err(Failure::unavailable)?;
        applied
            .result
            .map_err(|reject| Failure::Refused(format!("market {slug}: {reject}")))?;
        let id = applied
            .events
            .iter()
            .find_map(|event| match event {
                engine::Event::MarketCreated { market, .. } => Some(*market),
                _ => None,
            })
            .ok_or_else(|| Failure::unavailable(format!("market {slug} created no market")))?;
        tally.markets_created += 1;
        ids.insert(slug, id);
    }
    Ok(ids)
}

async fn existing_market(state: &AppState, slug: &str) -> Result<MarketId, Failure> {
    markets::engine_id(state, slug)
        .await
        .map_err(Failure::unavailable)?
        .ok_or_else(|| Failure::unavailable(format!("market {slug} vanished")))
}

/// One command of a record.
struct Step {
    op: Op,
    key: String,
    /// The record's digest, committed with the key.
    digest: String,
    /// What a transfer's receiver pays for the shares (its cost basis).
    cost_micros: Option<i64>,
}

/// A position's commands not yet applied: collateral into the import account, pairs, then the
/// holder's shares of each outcome.
fn position_steps(
    position: &NewPosition,
    import_account: UserId,
    user: UserId,
    market: MarketId,
    done: &HashSet<String>,
) -> Vec<Step> {
    let [collateral, pairs, yes, no] = position_step_keys(position.email.as_str(), &position.slug);
    let qty = position.yes.max(position.no);
    let step = |op, key, cost_micros| Step {
        op,
        key,
        digest: position.digest.clone(),
        cost_micros,
    };
    let mut steps = vec![
        step(
            Op::Deposit {
                user: import_account,
                amount_micros: qty as i64 * MICROS_PER_SHARE,
            },
            collateral,
            None,
        ),
        step(
            Op::Split {
                user: import_account,
                market,
                qty,
            },
            pairs,
            None,
        ),
    ];
    for (outcome, qty, cost, key) in [
        (Outcome::Yes, position.yes, position.yes_cost_micros, yes),
        (Outcome::No, position.no, position.no_cost_micros, no),
    ] {
        if qty > 0 {
            let op = Op::TransferShares {
                from: import_account,
                to: user,
                market,
                outcome,
                qty,
            };
            steps.push(step(op, key, cost));
        }
    }
    steps.retain(|step| !done.contains(&step.key));
    steps
}

/// Runs each record's steps in order, many records at once.
async fn run_steps(state: &AppState, records: Vec<Vec<Step>>) -> Result<(), Failure> {
    stream::iter(records)
        .map(|steps| async move {
            for step in steps {
                submit(state, step).await?;
            }
            Ok::<(), Failure>(())
        })
        .buffer_unordered(RECORDS_AT_ONCE)
        .try_for_each(|()| async { Ok(()) })
        .await
}

async fn submit(state: &AppState, step: Step) -> Result<(), Failure> {
    let Step {
        op,
        key,
        digest,
        cost_micros,
    } = step;
    let subject = Subject::Import {
        key: key.clone(),
        digest,
        cost_micros,
    };
    let applied = state
        .sequencer
        .submit(op, Some(subject))
        .await
        .map_err(Failure::unavailable)?;
    applied
        .result
        .map_err(|reject| Failure::Refused(format!("{key}: {reject}")))
}

/// Merges the pairs the import account holds in each market and withdraws its cash: it keeps
/// only shares no imported holder had the other side of.
async fn settle_import_account(state: &AppState, import_account: UserId) -> Result<(), Failure> {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT engine_market_id, yes_free, no_free FROM positions WHERE engine_user_id = $1",
    )
    .bind(i64::from(import_account.0))
    .fetch_all(&state.db.pool)
    .await
    .map_err(Failure::unavailable)?;
    for (market, yes, no) in rows {
        let market = MarketId(u32::try_from(market).map_err(Failure::unavailable)?);
        let pairs = u64::try_from(yes.min(no)).map_err(Failure::unavailable)?;
        if pairs == 0 {
            continue;
        }
        let op = Op::Merge {
            user: import_account,
            market,
            qty: pairs,
        };
        // What is there to merge is the import account's state, not a record: each run merges
        // what its own positions left (a unique key, so none is ever skipped).
        let key = format!("merge:{}:{}", market.0, Uuid::new_v4());
        submit(state, import_account_step(op, key)).await?;
    }
    let available: Option<i64> =
        sqlx::query_scalar("SELECT available_micros FROM accounts WHERE engine_user_id = $1")
            .bind(i64::from(import_account.0))
            .fetch_optional(&state.db.pool)
            .await
            .map_err(Failure::unavailable)?;
    // In withdrawals the engine takes (at most TRANSFER_MICROS_MAX each).
    let mut left = available.unwrap_or(0);
    while left > 0 {
        let amount_micros = left.min(TRANSFER_MICROS_MAX);
        let op = Op::Withdraw {
            user: import_account,
            amount_micros,
        };
        let key = format!("withdraw:{}", Uuid::new_v4());
        submit(state, import_account_step(op, key)).await?;
        left -= amount_micros;
    }
    Ok(())
}

/// A command of the import account's own, which no record asked for.
fn import_account_step(op: Op, key: String) -> Step {
    Step {
        op,
        key,
        digest: "import-account".to_owned(),
        cost_micros: None,
    }
}

/// Moves a market on to the state the file gives it (never back).
async fn reach_target(state: &AppState, market: MarketId, target: Target) -> Result<(), Failure> {
    let current = current_state(&state.db, market).await?;
    let ops: Vec<Op> = match (current.as_str(), target) {
        (_, Target::Open) | ("RESOLVED", _) => Vec::new(),
        ("OPEN", Target::Halted) => vec![Op::HaltMarket { market }],
        ("HALTED", Target::Halted) | ("CLOSED", Target::Closed) => Vec::new(),
        ("OPEN" | "HALTED", Target::Closed) => vec![Op::CloseMarket { market }],
        (_, Target::Resolved(resolution)) => vec![Op::ResolveMarket { market, resolution }],
        _ => Vec::new(),
    };
    for op in ops {
        let applied = state
            .sequencer
            .submit(op, None)
            .await
            .map_err(Failure::unavailable)?;
        applied
            .result
            .map_err(|reject| Failure::Refused(format!("market {}: {reject}", market.0)))?;
    }
    Ok(())
}

async fn current_state(db: &Db, market: MarketId) -> Result<String, Failure> {
    sqlx::query_scalar("SELECT state FROM markets WHERE engine_market_id = $1")
        .bind(i64::from(market.0))
        .fetch_one(&db.pool)
        .await
        .map_err(Failure::unavailable)
}
