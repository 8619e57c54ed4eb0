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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use engine::units::{MICROS_PER_SHARE, ORDER_QTY_LIMIT};
use engine::{MarketId, MarketParams, Op, Outcome, Resolution, UserId};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::{password, password_reset};
use crate::config::Config;
use crate::db::{now_micros, placeholders, Db};
use crate::domain::{parse_transfer_amount, Email, FullName};
use crate::http::AppState;
use crate::markets;
use crate::sequencer::Subject;
use crate::users::Role;

use super::reach::Exchange;
use super::Failure;

/// The account positions are transferred from; never logs in.
pub const IMPORT_ACCOUNT_EMAIL: &str = "import@predex.invalid";
/// Stored instead of a password hash this server cannot check: no password matches it.
const NO_PASSWORD: &str = "!reset-required";
/// Records applied at once (their commands share the sequencer's batches).
const RECORDS_AT_ONCE: usize = 256;
/// Accounts inserted per statement.
const USERS_PER_INSERT: usize = 500;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Record {
    User(UserRecord),
    Balance(BalanceRecord),
    Market(MarketRecord),
    Position(PositionRecord),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserRecord {
    email: String,
    name: String,
    /// argon2 or bcrypt; anything else (or none) gets a reset token.
    password_hash: Option<String>,
    /// `user` (default) or `admin`.
    role: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BalanceRecord {
    email: String,
    amount: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MarketRecord {
    slug: String,
    question: String,
    #[serde(default)]
    description: String,
    #[serde(default = "tick_default")]
    tick_size: String,
    #[serde(default = "qty_min_default")]
    min_qty: u64,
    #[serde(default = "qty_max_default")]
    max_qty: u64,
    #[serde(default = "rate_default")]
    maker_fee_rate: String,
    #[serde(default = "rate_default")]
    taker_fee_rate: String,
    closes_at: Option<String>,
    /// OPEN (default), HALTED, CLOSED or RESOLVED.
    state: Option<String>,
    resolution: Option<ResolutionRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResolutionRecord {
    outcome: String,
    yes_payout: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PositionRecord {
    email: String,
    /// The market's slug.
    market: String,
    #[serde(default)]
    yes_shares: u64,
    #[serde(default)]
    no_shares: u64,
    yes_cost: Option<String>,
    no_cost: Option<String>,
}

fn tick_default() -> String {
    "0.01".to_owned()
}

fn qty_min_default() -> u64 {
    1
}

fn qty_max_default() -> u64 {
    1_000_000
}

fn rate_default() -> String {
    "0".to_owned()
}

/// What the file asks for, checked.
#[derive(Default)]
struct Plan {
    users: Vec<NewUser>,
    balances: Vec<(Email, i64)>,
    markets: Vec<NewMarket>,
    positions: Vec<NewPosition>,
}

struct NewUser {
    email: Email,
    name: FullName,
    /// `None`: cannot be checked here; the account gets a reset token.
    password_hash: Option<String>,
    role: Role,
}

struct NewMarket {
    params: MarketParams,
    question: String,
    description: String,
    state: Target,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Open,
    Halted,
    Closed,
    Resolved(Resolution),
}

struct NewPosition {
    email: Email,
    slug: String,
    yes: u64,
    no: u64,
    yes_cost_micros: Option<i64>,
    no_cost_micros: Option<i64>,
}

/// A bad record: its line (from 1) and why.
struct Bad(usize, String);

pub async fn import(config: &Config, file: &Path, reset_ttl_hours: u64) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| Failure::Usage(format!("cannot read {}: {error}", file.display())))?;
    let (plan, lines, mut bad) = check(&text);
    let (emails, slugs) = existing_names(config).await?;
    bad.extend(check_references(&lines, &emails, &slugs));
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

/// The emails and market slugs (with their states) already on the exchange, read without
/// writing anything (a database not created yet has none).
async fn existing_names(
    config: &Config,
) -> Result<(HashSet<String>, HashMap<String, String>), Failure> {
    if let crate::config::Storage::Sqlite(path) = &config.storage {
        if !path.exists() {
            return Ok(Default::default());
        }
    }
    let db = Db::connect(&config.storage, 1).await.map_err(unavailable)?;
    let emails = sqlx::query_scalar::<_, String>("SELECT email FROM users")
        .fetch_all(&db.pool)
        .await;
    let slugs = sqlx::query_as::<_, (String, String)>("SELECT slug, state FROM markets")
        .fetch_all(&db.pool)
        .await;
    db.pool.close().await;
    // No tables yet: an exchange that never started.
    Ok((
        emails.unwrap_or_default().into_iter().collect(),
        slugs.unwrap_or_default().into_iter().collect(),
    ))
}

fn refuse(bad: Vec<Bad>) -> Failure {
    for Bad(line, why) in &bad {
        eprintln!("line {line}: {why}");
    }
    Failure::Refused(format!("{} bad record(s); nothing was imported", bad.len()))
}

/// Where each email and slug is introduced in the file (for messages about references).
#[derive(Default)]
struct Lines {
    users: HashMap<String, usize>,
    markets: HashMap<String, (usize, Target)>,
    /// Balances and positions by the line that names an email or slug, to check against the
    /// database those not in the file.
    references: Vec<(usize, Reference)>,
}

enum Reference {
    User(String),
    Market(String),
}

/// Reads and checks every line; answers the plan and every bad record.
fn check(text: &str) -> (Plan, Lines, Vec<Bad>) {
    let mut plan = Plan::default();
    let mut lines = Lines::default();
    let mut bad = Vec::new();
    let mut balances = HashSet::new();
    let mut positions = HashSet::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let record: Record = match serde_json::from_str(raw) {
            Ok(record) => record,
            Err(error) => {
                bad.push(Bad(line, error.to_string()));
                continue;
            }
        };
        let checked = match record {
            Record::User(user) => check_user(user, line, &mut plan, &mut lines),
            Record::Balance(balance) => {
                check_balance(balance, line, &mut plan, &mut lines, &mut balances)
            }
            Record::Market(market) => check_market(market, line, &mut plan, &mut lines),
            Record::Position(position) => {
                check_position(position, line, &mut plan, &mut lines, &mut positions)
            }
        };
        if let Err(why) = checked {
            bad.push(Bad(line, why));
        }
    }
    // A position in a market the file resolves would be paid out before it arrived.
    for (line, reference) in &lines.references {
        if let Reference::Market(slug) = reference {
            if let Some((_, Target::Resolved(_))) = lines.markets.get(slug) {
                bad.push(Bad(
                    *line,
                    format!("market {slug} is RESOLVED: its payouts belong in the balances"),
                ));
            }
        }
    }
    (plan, lines, bad)
}

fn check_user(
    record: UserRecord,
    line: usize,
    plan: &mut Plan,
    lines: &mut Lines,
) -> Result<(), String> {
    let email = Email::parse(&record.email).map_err(|error| error.to_string())?;
    let name = FullName::parse(&record.name).map_err(|error| error.to_string())?;
    let role = match record.role.as_deref() {
        None | Some("user") => Role::User,
        Some("admin") => Role::Admin,
        Some(other) => return Err(format!("role: expected user or admin, got {other:?}")),
    };
    if email.as_str() == IMPORT_ACCOUNT_EMAIL {
        return Err(format!(
            "email: {IMPORT_ACCOUNT_EMAIL} is the import's own account"
        ));
    }
    if let Some(first) = lines.users.insert(email.as_str().to_owned(), line) {
        return Err(format!(
            "user {} is already on line {first}",
            email.as_str()
        ));
    }
    let password_hash = record
        .password_hash
        .filter(|hash| password::verifiable(hash));
    plan.users.push(NewUser {
        email,
        name,
        password_hash,
        role,
    });
    Ok(())
}

fn check_balance(
    record: BalanceRecord,
    line: usize,
    plan: &mut Plan,
    lines: &mut Lines,
    seen: &mut HashSet<String>,
) -> Result<(), String> {
    let email = Email::parse(&record.email).map_err(|error| error.to_string())?;
    let amount = parse_transfer_amount(&record.amount, "amount").map_err(|e| e.to_string())?;
    if !seen.insert(email.as_str().to_owned()) {
        return Err(format!("a second balance for {}", email.as_str()));
    }
    lines
        .references
        .push((line, Reference::User(email.as_str().to_owned())));
    plan.balances.push((email, amount));
    Ok(())
}

fn check_market(
    record: MarketRecord,
    line: usize,
    plan: &mut Plan,
    lines: &mut Lines,
) -> Result<(), String> {
    let state = match (record.state.as_deref(), record.resolution) {
        (None | Some("OPEN"), None) => Target::Open,
        (Some("HALTED"), None) => Target::Halted,
        (Some("CLOSED"), None) => Target::Closed,
        (Some("RESOLVED"), Some(resolution)) => Target::Resolved(
            markets::parse_outcome(&resolution.outcome, resolution.yes_payout.as_deref())
                .map_err(|error| format!("resolution.{error}"))?,
        ),
        (Some("RESOLVED"), None) => return Err("a RESOLVED market needs its resolution".into()),
        (_, Some(_)) => return Err("only a RESOLVED market has a resolution".into()),
        (Some(other), None) => {
            return Err(format!(
                "state: expected OPEN, HALTED, CLOSED or RESOLVED, got {other:?}"
            ))
        }
    };
    // A market that stopped trading keeps no close time: its close is already behind it.
    let closes_at = match state {
        Target::Open | Target::Halted => record.closes_at,
        Target::Closed | Target::Resolved(_) => None,
    };
    let (params, question, description) = markets::parse_new_market(
        record.slug,
        record.question,
        record.description,
        record.tick_size,
        record.min_qty,
        record.max_qty,
        record.maker_fee_rate,
        record.taker_fee_rate,
        closes_at,
    )
    .map_err(|error| error.to_string())?;
    let slug = params.slug.as_str().to_owned();
    if let Some((first, _)) = lines.markets.insert(slug.clone(), (line, state)) {
        return Err(format!("market {slug} is already on line {first}"));
    }
    plan.markets.push(NewMarket {
        params,
        question,
        description,
        state,
    });
    Ok(())
}

fn check_position(
    record: PositionRecord,
    line: usize,
    plan: &mut Plan,
    lines: &mut Lines,
    seen: &mut HashSet<(String, String)>,
) -> Result<(), String> {
    let email = Email::parse(&record.email).map_err(|error| error.to_string())?;
    let slug = record.market.trim().to_owned();
    if record.yes_shares == 0 && record.no_shares == 0 {
        return Err("a position holds yesShares or noShares".into());
    }
    if record.yes_shares > ORDER_QTY_LIMIT || record.no_shares > ORDER_QTY_LIMIT {
        return Err(format!("shares: at most {ORDER_QTY_LIMIT} of each outcome"));
    }
    let yes_cost_micros = cost(record.yes_cost.as_deref(), record.yes_shares, "yesCost")?;
    let no_cost_micros = cost(record.no_cost.as_deref(), record.no_shares, "noCost")?;
    if !seen.insert((email.as_str().to_owned(), slug.clone())) {
        return Err(format!("a second position of {} in {slug}", email.as_str()));
    }
    lines
        .references
        .push((line, Reference::User(email.as_str().to_owned())));
    lines
        .references
        .push((line, Reference::Market(slug.clone())));
    plan.positions.push(NewPosition {
        email,
        slug,
        yes: record.yes_shares,
        no: record.no_shares,
        yes_cost_micros,
        no_cost_micros,
    });
    Ok(())
}

/// A cost basis: a cash amount (zero allowed), only for shares held.
fn cost(raw: Option<&str>, shares: u64, field: &'static str) -> Result<Option<i64>, String> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if shares == 0 {
        return Err(format!("{field}: no shares to cost"));
    }
    if raw
        .trim_start_matches('0')
        .trim_start_matches('.')
        .trim_matches('0')
        .is_empty()
    {
        return Ok(Some(0));
    }
    parse_transfer_amount(raw, field)
        .map(Some)
        .map_err(|error| error.to_string())
}

/// Emails and slugs the file names but does not introduce must exist already.
fn check_references(
    lines: &Lines,
    emails: &HashSet<String>,
    slugs: &HashMap<String, String>,
) -> Vec<Bad> {
    let mut bad = Vec::new();
    for (line, reference) in &lines.references {
        match reference {
            Reference::User(email) => {
                if !lines.users.contains_key(email) && !emails.contains(email) {
                    bad.push(Bad(
                        *line,
                        format!("no user {email} in the file or the exchange"),
                    ));
                }
            }
            Reference::Market(slug) => {
                if lines.markets.contains_key(slug) {
                    continue;
                }
                match slugs.get(slug).map(String::as_str) {
                    None => bad.push(Bad(
                        *line,
                        format!("no market {slug} in the file or the exchange"),
                    )),
                    Some("RESOLVED") => bad.push(Bad(*line, format!("market {slug} is resolved"))),
                    Some(_) => {}
                }
            }
        }
    }
    bad
}

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

fn unavailable(error: impl std::fmt::Display) -> Failure {
    Failure::Unavailable(error.to_string())
}

async fn apply(
    state: &AppState,
    plan: Plan,
    reset_ttl_hours: u64,
) -> Result<serde_json::Value, Failure> {
    let mut tally = Tally::default();
    let done: HashSet<String> = sqlx::query_scalar("SELECT record_key FROM imported_records")
        .fetch_all(&state.db.pool)
        .await
        .map_err(unavailable)?
        .into_iter()
        .collect();
    let mut accounts = users(state, &plan.users, reset_ttl_hours, &mut tally).await?;
    let import_account = import_account(state).await?;
    let market_ids = create_markets(state, &plan.markets, &mut tally).await?;
    for (email, _) in &plan.balances {
        known_account(state, &mut accounts, email).await?;
    }
    for position in &plan.positions {
        known_account(state, &mut accounts, &position.email).await?;
    }
    let mut steps = Vec::new();
    for (email, amount_micros) in &plan.balances {
        let key = format!("balance:{}", email.as_str());
        if done.contains(&key) {
            tally.records_skipped += 1;
            continue;
        }
        let user = accounts[email.as_str()];
        steps.push(vec![(
            Op::Deposit {
                user,
                amount_micros: *amount_micros,
            },
            key,
            None,
        )]);
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
    settle_import_account(state, import_account, &market_ids).await?;
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
        .map_err(unavailable)?
        .into_iter()
        .collect();
    let fresh: Vec<&NewUser> = users
        .iter()
        .filter(|user| !existing.contains(user.email.as_str()))
        .collect();
    tally.users_existing = users.len() - fresh.len();
    let now = now_micros();
    let mut created = Vec::with_capacity(fresh.len());
    let mut tx = state.db.pool.begin().await.map_err(unavailable)?;
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
        query.execute(&mut *tx).await.map_err(unavailable)?;
    }
    tx.commit().await.map_err(unavailable)?;
    tally.users_created = created.len();
    let needing_reset: Vec<(Uuid, &Email)> = created
        .iter()
        .filter(|(_, user)| user.password_hash.is_none())
        .map(|(id, user)| (*id, &user.email))
        .collect();
    let ids: Vec<Uuid> = needing_reset.iter().map(|(id, _)| *id).collect();
    let issued = password_reset::issue_many(&state.db, &ids, reset_ttl_hours)
        .await
        .map_err(unavailable)?;
    for ((_, email), issued) in needing_reset.iter().zip(issued) {
        println!(
            "{}",
            json!({
                "type": "passwordReset",
                "email": email.as_str(),
                "token": issued.token,
                "expiresAt": issued.expires_at,
            })
        );
    }
    tally.resets = ids.len();
    let ids_by_email: HashMap<String, String> = sqlx::query_as("SELECT email, id FROM users")
        .fetch_all(&state.db.pool)
        .await
        .map_err(unavailable)?
        .into_iter()
        .collect();
    let mut wanted = Vec::with_capacity(users.len());
    for user in users {
        let id = ids_by_email
            .get(user.email.as_str())
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or_else(|| unavailable(format!("{} vanished", user.email.as_str())))?;
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
            let user = state.sequencer.ensure_user(id).await.map_err(unavailable)?;
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
        .map_err(unavailable)?
        .ok_or_else(|| unavailable(format!("{} vanished", email.as_str())))?;
    let engine = state
        .sequencer
        .ensure_user(user.id)
        .await
        .map_err(unavailable)?;
    accounts.insert(email.as_str().to_owned(), engine);
    Ok(())
}

async fn import_account(state: &AppState) -> Result<UserId, Failure> {
    let email = Email::parse(IMPORT_ACCOUNT_EMAIL).map_err(unavailable)?;
    let user = match crate::users::by_email(&state.db, &email)
        .await
        .map_err(unavailable)?
    {
        Some(user) => user,
        None => {
            let name = FullName::parse("Import").map_err(unavailable)?;
            crate::users::insert(&state.db, &email, &name, NO_PASSWORD.into(), Role::User)
                .await
                .map_err(unavailable)?
        }
    };
    state
        .sequencer
        .ensure_user(user.id)
        .await
        .map_err(unavailable)
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
            .map_err(unavailable)?
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
            .map_err(unavailable)?;
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
            .ok_or_else(|| unavailable(format!("market {slug} created no market")))?;
        tally.markets_created += 1;
        ids.insert(slug, id);
    }
    Ok(ids)
}

async fn existing_market(state: &AppState, slug: &str) -> Result<MarketId, Failure> {
    markets::engine_id(state, slug)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| unavailable(format!("market {slug} vanished")))
}

/// One command of a record: the op, its key, and the cost a transfer's receiver pays.
type Step = (Op, String, Option<i64>);

/// A position's commands not yet applied: collateral into the import account, pairs, then the
/// holder's shares of each outcome.
fn position_steps(
    position: &NewPosition,
    import_account: UserId,
    user: UserId,
    market: MarketId,
    done: &HashSet<String>,
) -> Vec<Step> {
    let key = format!("position:{}:{}", position.email.as_str(), position.slug);
    let pairs = position.yes.max(position.no);
    let mut steps = vec![
        (
            Op::Deposit {
                user: import_account,
                amount_micros: pairs as i64 * MICROS_PER_SHARE,
            },
            format!("{key}:collateral"),
            None,
        ),
        (
            Op::Split {
                user: import_account,
                market,
                qty: pairs,
            },
            format!("{key}:pairs"),
            None,
        ),
    ];
    for (outcome, qty, cost, name) in [
        (Outcome::Yes, position.yes, position.yes_cost_micros, "yes"),
        (Outcome::No, position.no, position.no_cost_micros, "no"),
    ] {
        if qty > 0 {
            steps.push((
                Op::TransferShares {
                    from: import_account,
                    to: user,
                    market,
                    outcome,
                    qty,
                },
                format!("{key}:{name}"),
                cost,
            ));
        }
    }
    steps.retain(|(_, key, _)| !done.contains(key));
    steps
}

/// Runs each record's steps in order, many records at once.
async fn run_steps(state: &AppState, records: Vec<Vec<Step>>) -> Result<(), Failure> {
    stream::iter(records)
        .map(|steps| async move {
            for (op, key, cost_micros) in steps {
                submit(state, op, key, cost_micros).await?;
            }
            Ok::<(), Failure>(())
        })
        .buffer_unordered(RECORDS_AT_ONCE)
        .try_for_each(|()| async { Ok(()) })
        .await
}

async fn submit(
    state: &AppState,
    op: Op,
    key: String,
    cost_micros: Option<i64>,
) -> Result<(), Failure> {
    let subject = Subject::Import {
        key: key.clone(),
        cost_micros,
    };
    let applied = state
        .sequencer
        .submit(op, Some(subject))
        .await
        .map_err(unavailable)?;
    applied
        .result
        .map_err(|reject| Failure::Refused(format!("{key}: {reject}")))
}

/// Merges the pairs the import account holds in each market and withdraws its cash: it keeps
/// only shares no imported holder had the other side of.
async fn settle_import_account(
    state: &AppState,
    import_account: UserId,
    markets: &BTreeMap<String, MarketId>,
) -> Result<(), Failure> {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT engine_market_id, yes_free, no_free FROM positions WHERE engine_user_id = $1",
    )
    .bind(i64::from(import_account.0))
    .fetch_all(&state.db.pool)
    .await
    .map_err(unavailable)?;
    let slugs: HashMap<MarketId, &String> = markets.iter().map(|(slug, id)| (*id, slug)).collect();
    for (market, yes, no) in rows {
        let market = MarketId(u32::try_from(market).map_err(unavailable)?);
        let pairs = u64::try_from(yes.min(no)).map_err(unavailable)?;
        let Some(slug) = slugs.get(&market) else {
            continue;
        };
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
        submit(state, op, format!("merge:{slug}:{}", Uuid::new_v4()), None).await?;
    }
    let available: Option<i64> =
        sqlx::query_scalar("SELECT available_micros FROM accounts WHERE engine_user_id = $1")
            .bind(i64::from(import_account.0))
            .fetch_optional(&state.db.pool)
            .await
            .map_err(unavailable)?;
    if let Some(amount_micros) = available.filter(|amount| *amount > 0) {
        let op = Op::Withdraw {
            user: import_account,
            amount_micros,
        };
        submit(state, op, format!("withdraw:{}", Uuid::new_v4()), None).await?;
    }
    Ok(())
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
            .map_err(unavailable)?;
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
        .map_err(unavailable)
}
