//! Reading an import file and checking every record, before anything is written: the typed
//! records, the plan they make, and every bad record with its line. Touches no database.

use std::collections::{HashMap, HashSet};

use engine::units::ORDER_QTY_LIMIT;
use engine::{MarketParams, Resolution};
use serde::Deserialize;

use crate::auth::password;
use crate::domain::{parse_transfer_amount, Email, FullName};
use crate::markets;
use crate::users::Role;

use super::{
    balance_key, digest, pairs_key, position_step_keys, Bad, Existing, IMPORT_ACCOUNT_EMAIL,
};

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
pub(super) struct Plan {
    pub(super) users: Vec<NewUser>,
    pub(super) balances: Vec<NewBalance>,
    pub(super) markets: Vec<NewMarket>,
    pub(super) positions: Vec<NewPosition>,
}

pub(super) struct NewUser {
    pub(super) email: Email,
    pub(super) name: FullName,
    /// `None`: cannot be checked here; the account gets a reset token.
    pub(super) password_hash: Option<String>,
    pub(super) role: Role,
}

pub(super) struct NewBalance {
    pub(super) line: usize,
    pub(super) email: Email,
    pub(super) amount_micros: i64,
    pub(super) digest: String,
}

pub(super) struct NewMarket {
    pub(super) params: MarketParams,
    pub(super) question: String,
    pub(super) description: String,
    pub(super) state: Target,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Open,
    Halted,
    Closed,
    Resolved(Resolution),
}

pub(super) struct NewPosition {
    pub(super) line: usize,
    pub(super) digest: String,
    pub(super) email: Email,
    pub(super) slug: String,
    pub(super) yes: u64,
    pub(super) no: u64,
    pub(super) yes_cost_micros: Option<i64>,
    pub(super) no_cost_micros: Option<i64>,
}

/// Where each email and slug is introduced in the file (for messages about references).
#[derive(Default)]
pub(super) struct Lines {
    pub(super) users: HashMap<String, usize>,
    pub(super) markets: HashMap<String, (usize, Target)>,
    /// Balances and positions by the line that names an email or slug, to check against the
    /// database those not in the file.
    pub(super) references: Vec<(usize, Reference)>,
}

pub(super) enum Reference {
    User(String),
    /// The market of a position: its slug, and the key of the step that needs it open.
    Market {
        slug: String,
        pairs_key: String,
    },
}

/// Reads and checks every line; answers the plan and every bad record.
pub(super) fn check(text: &str) -> (Plan, Lines, Vec<Bad>) {
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
        if let Reference::Market { slug, .. } = reference {
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
    let email = holder(&record.email)?;
    let amount = parse_transfer_amount(&record.amount, "amount").map_err(|e| e.to_string())?;
    if !seen.insert(email.as_str().to_owned()) {
        return Err(format!("a second balance for {}", email.as_str()));
    }
    lines
        .references
        .push((line, Reference::User(email.as_str().to_owned())));
    plan.balances.push(NewBalance {
        line,
        digest: digest(&format!("balance {} {amount}", email.as_str())),
        email,
        amount_micros: amount,
    });
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
    let email = holder(&record.email)?;
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
    lines.references.push((
        line,
        Reference::Market {
            slug: slug.clone(),
            pairs_key: pairs_key(email.as_str(), &slug),
        },
    ));
    let values = format!(
        "position {} {slug} {} {} {yes_cost_micros:?} {no_cost_micros:?}",
        email.as_str(),
        record.yes_shares,
        record.no_shares
    );
    plan.positions.push(NewPosition {
        line,
        digest: digest(&values),
        email,
        slug,
        yes: record.yes_shares,
        no: record.no_shares,
        yes_cost_micros,
        no_cost_micros,
    });
    Ok(())
}

/// The account a balance or position belongs to: any but the import's own.
fn holder(raw: &str) -> Result<Email, String> {
    let email = Email::parse(raw).map_err(|error| error.to_string())?;
    if email.as_str() == IMPORT_ACCOUNT_EMAIL {
        return Err(format!(
            "email: {IMPORT_ACCOUNT_EMAIL} is the import's own account"
        ));
    }
    Ok(email)
}

/// A cost basis: a cash amount (zero allowed), only for shares held.
fn cost(raw: Option<&str>, shares: u64, field: &'static str) -> Result<Option<i64>, String> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if shares == 0 {
        return Err(format!("{field}: no shares to cost"));
    }
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, "0"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if digits(whole) && digits(fraction) && raw.bytes().all(|b| b == b'0' || b == b'.') {
        return Ok(Some(0));
    }
    parse_transfer_amount(raw, field)
        .map(Some)
        .map_err(|error| error.to_string())
}

/// Emails and slugs the file names but does not introduce must exist already, and a position
/// not yet split into pairs needs its market open.
pub(super) fn check_references(lines: &Lines, existing: &Existing) -> Vec<Bad> {
    let mut bad = Vec::new();
    for (line, reference) in &lines.references {
        match reference {
            Reference::User(email) => {
                if !lines.users.contains_key(email) && !existing.emails.contains(email) {
                    bad.push(Bad(
                        *line,
                        format!("no user {email} in the file or the exchange"),
                    ));
                }
            }
            // Pairs are split only in an open market: one the file creates is open until the
            // import moves it on; one already on the exchange must be open now, unless this
            // position's pairs were made by an earlier run.
            Reference::Market { slug, pairs_key } => {
                match existing.markets.get(slug).map(String::as_str) {
                    None if lines.markets.contains_key(slug) => {}
                    None => bad.push(Bad(
                        *line,
                        format!("no market {slug} in the file or the exchange"),
                    )),
                    Some("OPEN") => {}
                    Some(_) if existing.applied.contains_key(pairs_key) => {}
                    Some(state) => bad.push(Bad(
                        *line,
                        format!("market {slug} is {state} on the exchange: positions need it OPEN"),
                    )),
                }
            }
        }
    }
    bad
}

/// A record an earlier run applied must come back with the same values: an import does not
/// correct what it applied (a changed balance would be deposited twice, or not at all).
pub(super) fn check_applied(plan: &Plan, existing: &Existing) -> Vec<Bad> {
    let changed = |key: &String, digest: &str| {
        existing
            .applied
            .get(key)
            .is_some_and(|applied| applied != digest)
    };
    let mut bad = Vec::new();
    for balance in &plan.balances {
        if changed(&balance_key(balance.email.as_str()), &balance.digest) {
            bad.push(Bad(
                balance.line,
                format!(
                    "the balance of {} was imported with another amount; an import does not \
                     change it (use server admin deposit)",
                    balance.email.as_str()
                ),
            ));
        }
    }
    for position in &plan.positions {
        let keys = position_step_keys(position.email.as_str(), &position.slug);
        if keys.iter().any(|key| changed(key, &position.digest)) {
            bad.push(Bad(
                position.line,
                format!(
                    "the position of {} in {} was imported with other values; an import does \
                     not change it",
                    position.email.as_str(),
                    position.slug
                ),
            ));
        }
    }
    bad
}
