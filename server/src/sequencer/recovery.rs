//! Recovery at start: rebuild the engine from the database and prove it matches.
//!
//! Loads the latest snapshot (its stored hash must match the restored engine), replays every
//! journal row after it (contiguous sequence numbers, and each command must reproduce the
//! result it had), recomputing each batch's link in the hash chain ([`super::chain`]) against
//! the one committed, checks every invariant of the whole state (DESIGN.md 1-5), then checks
//! the full state hash where the last batch stored one (with a snapshot, or before the chain
//! existed) and the projected balances, positions and market terms against the engine's. Any
//! mismatch refuses to start with a message saying what differs: serving from a state that
//! disagrees with its own journal would be worse than not serving. Must never write to the
//! database.
//!
//! Snapshots are only a shortcut through the journal, which is kept whole: a snapshot that
//! cannot be used (it does not decode, is of another format, does not restore, or restores to
//! another hash than the one stored with it) is skipped with a warning for the one before it,
//! and past the oldest kept, the journal is replayed from empty. What the replay reaches is
//! verified against the committed batches either way, so skipping never weakens a check; it
//! only keeps one bad snapshot from taking the exchange down.

use std::collections::{HashMap, VecDeque};

use engine::{Command, Engine, MarketId, Snapshot, UserId};
use sqlx::Row;
use uuid::Uuid;

use super::chain::{Chain, GENESIS};
use super::projection::hash_hex;
use crate::db::Db;
use crate::wire::LockTerms;

/// Journal rows read per query while replaying.
const REPLAY_PAGE_ROWS: i64 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("recovery check failed: {0}")]
    Mismatch(String),
    #[error("cannot start the sequencer thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot load the market data: {0}")]
    MarketData(String),
}

fn mismatch(text: impl Into<String>) -> RecoveryError {
    RecoveryError::Mismatch(text.into())
}

#[derive(Clone, Debug)]
pub struct RecoveryReport {
    pub snapshot_seq: Option<u64>,
    /// Why each newer snapshot than the one used was skipped, newest first.
    pub snapshots_skipped: Vec<String>,
    pub replayed: u64,
    pub last_seq: u64,
    pub state_hash: String,
    /// The last batch's link in the hash chain.
    pub link: String,
}

pub(super) struct Recovered {
    pub engine: Engine,
    pub seq: u64,
    pub seq_at_snapshot: u64,
    pub link: String,
    pub users: HashMap<Uuid, UserId>,
    pub report: RecoveryReport,
}

fn unsigned(value: i64, what: &str) -> Result<u64, RecoveryError> {
    u64::try_from(value).map_err(|_| mismatch(format!("negative {what}: {value}")))
}

/// Where a replay starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReplayFrom {
    /// The newest snapshot that can be used (a start).
    LatestSnapshot,
    /// An empty engine: the whole journal (a verification).
    Empty,
}

pub(super) async fn recover(db: &Db) -> Result<Recovered, RecoveryError> {
    recover_from(db, ReplayFrom::LatestSnapshot).await
}

async fn recover_from(db: &Db, from: ReplayFrom) -> Result<Recovered, RecoveryError> {
    let (mut engine, snapshot_seq, snapshots_skipped) = match from {
        ReplayFrom::LatestSnapshot => load_snapshot(db).await?,
        ReplayFrom::Empty => (Engine::default(), None, Vec::new()),
    };
    let start = snapshot_seq.unwrap_or(0);
    let mut batches = Batches::after(db, start).await?;
    let seq = replay(db, &mut engine, start, &mut batches).await?;
    // The ledger sums to zero, escrow backs every share, books and reservations agree: a
    // state that replays to its hashes but breaks an invariant must not trade.
    engine
        .check_invariants()
        .map_err(|violation| mismatch(format!("the recovered state breaks {violation}")))?;
    let state_hash = hash_hex(engine.state_hash());
    verify_last_batch(db, seq, &state_hash).await?;
    let users = verify_accounts(db, &engine).await?;
    verify_positions(db, &engine).await?;
    verify_market_terms(db, &engine).await?;
    let report = RecoveryReport {
        snapshot_seq,
        snapshots_skipped,
        replayed: seq - start,
        last_seq: seq,
        state_hash,
        link: batches.link.clone(),
    };
    tracing::info!(
        snapshot_seq = ?report.snapshot_seq,
        snapshots_skipped = report.snapshots_skipped.len(),
        replayed = report.replayed,
        last_seq = report.last_seq,
        state_hash = %report.state_hash,
        "engine recovered and verified"
    );
    Ok(Recovered {
        engine,
        seq,
        seq_at_snapshot: start,
        link: batches.link,
        users,
        report,
    })
}

/// What `verify` found: both replays agree with each other and with every projection.
#[derive(Clone, Debug)]
pub struct Verification {
    /// The whole journal replayed from an empty engine.
    pub from_empty: RecoveryReport,
    /// From the newest usable snapshot (the same as `from_empty` when there is none).
    pub from_snapshot: RecoveryReport,
    pub users: u32,
    pub markets: u32,
    pub open_orders: usize,
}

/// Replays the journal from empty and from the newest snapshot, each checked as a start is
/// (every result, chain link, invariant, balance, position and market's terms), then compares
/// the two states and checks every open order's projected row. Reads only; the caller makes
/// sure nothing writes meanwhile (the writer lock, or a copy).
pub async fn verify(db: &Db) -> Result<Verification, RecoveryError> {
    let whole = recover_from(db, ReplayFrom::Empty).await?;
    let latest = recover_from(db, ReplayFrom::LatestSnapshot).await?;
    if (whole.seq, &whole.report.state_hash) != (latest.seq, &latest.report.state_hash) {
        return Err(mismatch(format!(
            "the journal replayed from empty reaches seq {} with state hash {}, from snapshot \
             {:?} seq {} with {}",
            whole.seq,
            whole.report.state_hash,
            latest.report.snapshot_seq,
            latest.seq,
            latest.report.state_hash
        )));
    }
    let open_orders = verify_open_orders(db, &whole.engine).await?;
    Ok(Verification {
        users: whole.engine.user_count(),
        markets: whole.engine.market_count(),
        open_orders,
        from_empty: whole.report,
        from_snapshot: latest.report,
    })
}

/// Every order the engine holds open must be projected open with its price and quantities,
/// and no other order may be projected open. Answers how many there are.
async fn verify_open_orders(db: &Db, engine: &Engine) -> Result<usize, RecoveryError> {
    let rows = sqlx::query(
        "SELECT engine_order_id, engine_user_id, engine_market_id, price_units, qty, filled_qty, \
         remaining_qty FROM orders WHERE status IN ('OPEN', 'PARTIALLY_FILLED') \
         ORDER BY engine_order_id",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut projected = Vec::with_capacity(rows.len());
    for row in rows {
        let values: [i64; 7] = [
            row.try_get("engine_order_id")?,
            row.try_get("engine_user_id")?,
            row.try_get("engine_market_id")?,
            row.try_get("price_units")?,
            row.try_get("qty")?,
            row.try_get("filled_qty")?,
            row.try_get("remaining_qty")?,
        ];
        projected.push(values);
    }
    let mut expected = Vec::with_capacity(engine.open_order_count());
    for user in 0..engine.user_count() {
        for order in engine.open_orders(UserId(user)) {
            let number = |value: u64| i64::try_from(value).map_err(|_| mismatch("order overflow"));
            expected.push([
                number(order.order.0)?,
                user.into(),
                order.market.0.into(),
                order.price_units.into(),
                number(order.qty)?,
                number(order.filled_qty)?,
                number(order.remaining_qty)?,
            ]);
        }
    }
    expected.sort_unstable();
    same_rows(
        &projected,
        &expected,
        "orders projected open",
        "order, user, market, price, qty, filled, remaining",
    )?;
    Ok(expected.len())
}

/// Projected rows against the engine's, in the same order: the counts and the first row that
/// differs (its `columns` named) when they do not agree.
fn same_rows<const N: usize>(
    projected: &[[i64; N]],
    expected: &[[i64; N]],
    what: &str,
    columns: &str,
) -> Result<(), RecoveryError> {
    if projected == expected {
        return Ok(());
    }
    let first = projected
        .iter()
        .zip(expected)
        .find(|(left, right)| left != right);
    Err(mismatch(format!(
        "{} {what}, {} in the engine; first difference ({columns}): {first:?}",
        projected.len(),
        expected.len()
    )))
}

/// The engine of the newest snapshot that can be used, its seq, and why each newer one could
/// not; an empty engine when none can.
async fn load_snapshot(db: &Db) -> Result<(Engine, Option<u64>, Vec<String>), RecoveryError> {
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM snapshots ORDER BY seq DESC")
        .fetch_all(&db.pool)
        .await?;
    let mut skipped = Vec::new();
    for seq in seqs {
        match restore_snapshot(db, seq).await? {
            Ok(engine) => return Ok((engine, Some(unsigned(seq, "snapshot seq")?), skipped)),
            Err(reason) => {
                tracing::warn!(%reason, "skipping a snapshot that cannot be used");
                skipped.push(reason);
            }
        }
    }
    Ok((Engine::default(), None, skipped))
}

/// The engine restored from snapshot `seq`, or why it cannot be used.
async fn restore_snapshot(db: &Db, seq: i64) -> Result<Result<Engine, String>, RecoveryError> {
    let row = sqlx::query("SELECT state_hash, format_version, data FROM snapshots WHERE seq = $1")
        .bind(seq)
        .fetch_one(&db.pool)
        .await?;
    let stored_hash: String = row.try_get("state_hash")?;
    let format_version: i64 = row.try_get("format_version")?;
    if format_version != i64::from(engine::command::FORMAT_VERSION) {
        return Ok(Err(format!(
            "snapshot {seq} has format version {format_version}, this build reads {}",
            engine::command::FORMAT_VERSION
        )));
    }
    let data: Vec<u8> = row.try_get("data")?;
    let snapshot: Snapshot = match postcard::from_bytes(&data) {
        Ok(snapshot) => snapshot,
        Err(error) => return Ok(Err(format!("snapshot {seq} does not decode: {error}"))),
    };
    // `restore` returns an error for a snapshot it cannot take and is fuzzed never to panic;
    // should a bug make it panic all the same, that snapshot is skipped like any bad one.
    let restored = std::panic::catch_unwind(|| Engine::restore(&snapshot));
    let engine = match restored {
        Ok(Ok(engine)) => engine,
        Ok(Err(error)) => return Ok(Err(format!("snapshot {seq}: {error}"))),
        Err(_) => return Ok(Err(format!("snapshot {seq}: restore panicked"))),
    };
    let hash = hash_hex(engine.state_hash());
    if hash != stored_hash {
        return Ok(Err(format!(
            "snapshot {seq} restores to state hash {hash}, but {stored_hash} was stored"
        )));
    }
    Ok(Ok(engine))
}

/// The committed batches after a starting point, checked one by one as the replay reaches them.
struct Batches {
    /// The link of the last batch checked (at first, the one the replay starts after).
    link: String,
    chain: Chain,
    /// (first seq, last seq, chain hash, state hash) of the batches still to reach, oldest
    /// first.
    ahead: VecDeque<(u64, u64, Option<String>, Option<String>)>,
}

impl Batches {
    async fn after(db: &Db, start: u64) -> Result<Batches, RecoveryError> {
        let start_key = i64::try_from(start).map_err(|_| mismatch("seq overflow"))?;
        let link = if start == 0 {
            GENESIS.to_owned()
        } else {
            let row = sqlx::query("SELECT state_hash, chain_hash FROM batches WHERE last_seq = $1")
                .bind(start_key)
                .fetch_optional(&db.pool)
                .await?
                .ok_or_else(|| mismatch(format!("no committed batch ends at seq {start}")))?;
            stored_link(&row)?.ok_or_else(|| mismatch(format!("batch {start} has neither hash")))?
        };
        let rows = sqlx::query(
            "SELECT first_seq, last_seq, chain_hash, state_hash FROM batches \
             WHERE last_seq > $1 ORDER BY last_seq",
        )
        .bind(start_key)
        .fetch_all(&db.pool)
        .await?;
        let mut ahead = VecDeque::with_capacity(rows.len());
        for row in rows {
            ahead.push_back((
                unsigned(row.try_get("first_seq")?, "batch first seq")?,
                unsigned(row.try_get("last_seq")?, "batch seq")?,
                row.try_get("chain_hash")?,
                row.try_get("state_hash")?,
            ));
        }
        Ok(Batches {
            chain: Chain::after(&link),
            link,
            ahead,
        })
    }

    /// Adds a replayed command; at the end of its batch, checks the batch's link.
    fn replayed(
        &mut self,
        seq: u64,
        text: &str,
        result: Result<(), engine::Reject>,
        events: &[engine::Event],
    ) -> Result<(), RecoveryError> {
        self.chain.command(seq, text, result, events);
        let Some((first, last, chain_hash, state_hash)) = self.ahead.pop_front() else {
            return Ok(());
        };
        if seq < first {
            return Err(mismatch(format!("journal seq {seq} is in no batch")));
        }
        if seq < last {
            self.ahead.push_front((first, last, chain_hash, state_hash));
            return Ok(());
        }
        let link = self.chain.link();
        self.link = match (chain_hash, state_hash) {
            (Some(stored), _) if stored != link => {
                return Err(mismatch(format!(
                    "batch {last} replays to chain link {link}, but {stored} was committed"
                )))
            }
            (Some(stored), _) => stored,
            // Committed before the chain existed: its state hash is its link (and is checked
            // if it is the last batch).
            (None, Some(state_hash)) => state_hash,
            (None, None) => return Err(mismatch(format!("batch {last} has neither hash"))),
        };
        self.chain = Chain::after(&self.link);
        Ok(())
    }
}

/// A batch's link: its chain hash, or for a batch from before the chain, its state hash.
fn stored_link(row: &sqlx::any::AnyRow) -> Result<Option<String>, RecoveryError> {
    let chain: Option<String> = row.try_get("chain_hash")?;
    let state: Option<String> = row.try_get("state_hash")?;
    Ok(chain.or(state))
}

/// Replays every journal row after `after`, checking each batch it completes; returns the
/// last sequence number.
async fn replay(
    db: &Db,
    engine: &mut Engine,
    after: u64,
    batches: &mut Batches,
) -> Result<u64, RecoveryError> {
    let mut last = after;
    let mut events = Vec::new();
    loop {
        let rows = sqlx::query(
            "SELECT seq, command, result FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(i64::try_from(last).map_err(|_| mismatch("seq overflow"))?)
        .bind(REPLAY_PAGE_ROWS)
        .fetch_all(&db.pool)
        .await?;
        if rows.is_empty() {
            return Ok(last);
        }
        for row in rows {
            let seq = unsigned(row.try_get("seq")?, "journal seq")?;
            if seq != last + 1 {
                return Err(mismatch(format!(
                    "journal gap: expected seq {}, found {seq}",
                    last + 1
                )));
            }
            let text: String = row.try_get("command")?;
            let command: Command = serde_json::from_str(&text)
                .map_err(|error| mismatch(format!("journal seq {seq} does not decode: {error}")))?;
            events.clear();
            let outcome = engine.apply(&command, &mut events);
            batches.replayed(seq, &text, outcome, &events)?;
            let result = match outcome {
                Ok(()) => "OK",
                Err(reject) => reject.code(),
            };
            let stored: String = row.try_get("result")?;
            if result != stored {
                return Err(mismatch(format!(
                    "journal seq {seq} replays as {result}, but {stored} was committed"
                )));
            }
            last = seq;
        }
    }
}

/// The journal must end where the last committed batch does, and where that batch stored the
/// full state hash, the replay must reach it.
async fn verify_last_batch(db: &Db, seq: u64, state_hash: &str) -> Result<(), RecoveryError> {
    let row =
        sqlx::query("SELECT last_seq, state_hash FROM batches ORDER BY last_seq DESC LIMIT 1")
            .fetch_optional(&db.pool)
            .await?;
    let Some(row) = row else {
        if seq == 0 {
            return Ok(());
        }
        return Err(mismatch(format!(
            "journal reaches seq {seq} but no batch is recorded"
        )));
    };
    let last_seq = unsigned(row.try_get("last_seq")?, "batch seq")?;
    let stored: Option<String> = row.try_get("state_hash")?;
    if last_seq != seq {
        return Err(mismatch(format!(
            "the last committed batch ends at seq {last_seq}, the journal at {seq}"
        )));
    }
    match stored {
        Some(stored) if stored != state_hash => Err(mismatch(format!(
            "replay ends on state hash {state_hash}, but batch {last_seq} committed {stored}"
        ))),
        _ => Ok(()),
    }
}

/// Projected balances must equal the engine's, one account per engine user.
async fn verify_accounts(db: &Db, engine: &Engine) -> Result<HashMap<Uuid, UserId>, RecoveryError> {
    let rows = sqlx::query(
        "SELECT engine_user_id, user_id, available_micros, locked_micros FROM accounts",
    )
    .fetch_all(&db.pool)
    .await?;
    if rows.len() != engine.user_count() as usize {
        return Err(mismatch(format!(
            "{} accounts are projected, the engine has {} users",
            rows.len(),
            engine.user_count()
        )));
    }
    let mut users = HashMap::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.try_get("engine_user_id")?;
        let user = UserId(
            u32::try_from(id).map_err(|_| mismatch(format!("engine user id {id} out of range")))?,
        );
        let user_id: String = row.try_get("user_id")?;
        let user_id = Uuid::parse_str(&user_id)
            .map_err(|_| mismatch(format!("account {id} has user id {user_id:?}")))?;
        let available: i64 = row.try_get("available_micros")?;
        let locked: i64 = row.try_get("locked_micros")?;
        let Some(cash) = engine.balance(user) else {
            return Err(mismatch(format!("account {id} has no engine user")));
        };
        if (cash.available_micros, cash.locked_micros) != (available, locked) {
            return Err(mismatch(format!(
                "user {id}: projected balance {available}/{locked}, engine {}/{}",
                cash.available_micros, cash.locked_micros
            )));
        }
        users.insert(user_id, user);
    }
    Ok(users)
}

/// Projected positions must equal the engine's non-empty ones, no more and no fewer.
async fn verify_positions(db: &Db, engine: &Engine) -> Result<(), RecoveryError> {
    let rows = sqlx::query(
        "SELECT engine_market_id, engine_user_id, yes_free, yes_reserved, no_free, no_reserved \
         FROM positions ORDER BY engine_market_id, engine_user_id",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut projected = Vec::with_capacity(rows.len());
    for row in rows {
        let values: [i64; 6] = [
            row.try_get("engine_market_id")?,
            row.try_get("engine_user_id")?,
            row.try_get("yes_free")?,
            row.try_get("yes_reserved")?,
            row.try_get("no_free")?,
            row.try_get("no_reserved")?,
        ];
        if values[2..].iter().all(|value| *value == 0) {
            continue;
        }
        projected.push(values);
    }
    let mut expected = Vec::new();
    for (market, user, position) in engine.snapshot().positions {
        expected.push(position_row(market, user, position)?);
    }
    same_rows(
        &projected,
        &expected,
        "projected positions",
        "market, user, yes free, yes reserved, no free, no reserved",
    )
}

/// Each projected market's fees and lock rule, which order bodies and balances compute their
/// locks from, against the engine's.
async fn verify_market_terms(db: &Db, engine: &Engine) -> Result<(), RecoveryError> {
    let rows = sqlx::query(
        "SELECT engine_market_id, maker_fee_bps, taker_fee_bps, lock_rule FROM markets \
         ORDER BY engine_market_id",
    )
    .fetch_all(&db.pool)
    .await?;
    if rows.len() != engine.market_count() as usize {
        return Err(mismatch(format!(
            "{} markets are projected, the engine has {}",
            rows.len(),
            engine.market_count()
        )));
    }
    for row in rows {
        let market: i64 = row.try_get("engine_market_id")?;
        let projected = LockTerms::from_row(&row)?;
        let params = u32::try_from(market)
            .ok()
            .and_then(|market| engine.market(MarketId(market)))
            .map(|view| LockTerms::of(&view.params));
        if params != Some(projected) {
            return Err(mismatch(format!(
                "market {market}: fees and lock rule {projected:?} projected, {params:?} in the \
                 engine"
            )));
        }
    }
    Ok(())
}

fn position_row(
    market: MarketId,
    user: UserId,
    position: engine::Position,
) -> Result<[i64; 6], RecoveryError> {
    let shares = |value: u64| i64::try_from(value).map_err(|_| mismatch("share count overflow"));
    Ok([
        market.0.into(),
        user.0.into(),
        shares(position.yes_free)?,
        shares(position.yes_reserved)?,
        shares(position.no_free)?,
        shares(position.no_reserved)?,
    ])
}
