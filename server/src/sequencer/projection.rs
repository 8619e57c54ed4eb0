//! The batch writer: turns a batch of applied commands into the SQL that stores it — journal
//! rows, the projections (accounts, markets, orders, trades, positions, balances, transfers,
//! settlements, conversions, and each position's cost basis and realized profit, moved on by
//! the batch's events), the seq and outcome of commands submitted under an idempotency
//! key (on the key's row), the batch's chain link, and with a snapshot the full state hash —
//! and runs it all in ONE transaction.
//!
//! Its `Builder` is handed each command and event by the batch's one reading (`interpret`).
//! Projections are built from the events alone, plus the engine's view of orders still open at
//! the end of the batch (so an order touched many times is written once, with its final state).
//! Balances and positions are absolute in the events, so only the last value per account in a
//! batch is written. Must never: read the database while building, write outside the
//! transaction, or write anything a user's input could make violate a constraint.

use std::collections::BTreeMap;

use engine::{
    CancelReason, Cash, Engine, Event, MarketId, MarketParams, MarketState, OrderEnd, OrderId,
    PlaceOrder, Position, Resolution, UserId,
};
use serde::Serialize;

use super::chain::Chain;
use super::position_costs::{self, PositionCosts};
use super::{keyed, Entry, Subject};
use crate::db::{bind_all, now_micros, placeholders, Backend, Db, Value};
use crate::domain::wire_name;
use crate::ids::{order_uuid, trade_uuid, transfer_uuid};

/// Rows per multi-row statement at most: 256 rows of at most 25 columns stay far below both
/// databases' bound on parameters per statement (32,766 for SQLite, 65,535 for PostgreSQL).
const ROWS_PER_INSERT: usize = 256;
const _: () = assert!(ROWS_PER_INSERT * 25 < 32_766);
const _: () = assert!(ROWS_PER_INSERT.is_power_of_two());

/// The rows of the next chunk of `left`: the largest power of two that fits, so every
/// statement has one of a few shapes per table and the writer connection prepares each shape
/// once (parsing a statement of thousands of placeholders costs more than running it).
fn chunk_rows(left: usize) -> usize {
    let fits = left.min(ROWS_PER_INSERT);
    1 << fits.ilog2()
}
/// Snapshots kept in the database; older ones are pruned when a new one is stored.
const SNAPSHOTS_KEPT: i64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("projection: {0}")]
    Projection(String),
}

fn broken(what: impl Into<String>) -> CommitError {
    CommitError::Projection(what.into())
}

/// A value the engine bounds far below `i64::MAX`; a failure here is a bug, reported as a
/// failed commit rather than a panic.
fn int(value: u64) -> Result<i64, CommitError> {
    i64::try_from(value).map_err(|_| broken(format!("{value} does not fit in BIGINT")))
}

/// `wire_name`, where an enum without a name is a broken projection rather than an empty string.
fn name<T: Serialize>(value: &T) -> Result<String, CommitError> {
    let text = wire_name(value);
    if text.is_empty() {
        return Err(broken("enum without a string name"));
    }
    Ok(text)
}

pub fn hash_hex(state_hash: u128) -> String {
    format!("{state_hash:032x}")
}

pub(crate) struct Batch {
    pub first_seq: u64,
    pub last_seq: u64,
    /// The postcard-encoded snapshot of the state after `last_seq` and its state hash, when
    /// one is due.
    pub snapshot: Option<(Vec<u8>, u128)>,
    pub committed_at: i64,
}

pub(crate) fn encode_snapshot(engine: &Engine) -> Result<Vec<u8>, CommitError> {
    postcard::to_allocvec(&engine.snapshot())
        .map_err(|error| broken(format!("snapshot encoding: {error}")))
}

struct Statement {
    sql: String,
    values: Vec<Value>,
}

pub(crate) struct Projection {
    /// Whose placeholders the multi-row statements use.
    backend: Backend,
    statements: Vec<Statement>,
    /// The batch's link in the hash chain.
    pub link: String,
}

struct NewOrder {
    request: PlaceOrder,
    created_at: i64,
    created_seq: i64,
}

#[derive(Default)]
struct OrderTouch {
    new: Option<NewOrder>,
    /// The latest limit seen in this batch (accepted or amended).
    price_units: Option<u16>,
    /// Fill notional to add, priced as YES and as NO; the row's outcome picks one.
    notional_yes_units: u64,
    notional_no_units: u64,
    fee_micros: i64,
    ended: Option<(OrderEnd, Option<CancelReason>, u64, u64)>,
    updated_at: i64,
    updated_seq: i64,
}

struct MarketRow {
    market_id: String,
    question: String,
    description: String,
    params: MarketParams,
    created_at: i64,
}

#[derive(Default)]
struct MarketChange {
    state: Option<MarketState>,
    resolution: Option<Resolution>,
    updated_seq: i64,
}

pub(super) struct Builder<'a> {
    backend: Backend,
    chain: Chain,
    /// Every position's costs, moved on by this batch's events as they are read.
    costs: &'a mut PositionCosts,
    journal: Vec<Vec<Value>>,
    accounts: Vec<Vec<Value>>,
    user_links: Vec<Vec<Value>>,
    markets_new: BTreeMap<MarketId, (MarketRow, MarketChange)>,
    markets_changed: BTreeMap<MarketId, MarketChange>,
    orders: BTreeMap<OrderId, OrderTouch>,
    trades: Vec<Vec<Value>>,
    positions: BTreeMap<(MarketId, UserId), (Position, i64)>,
    balances: BTreeMap<UserId, (Cash, i64)>,
    transfers: Vec<Vec<Value>>,
    settlements: Vec<Vec<Value>>,
    conversions: Vec<Vec<Value>>,
    /// Idempotency keys whose command this batch commits: (user, key, seq, outcome JSON).
    keyed: Vec<Vec<Value>>,
    /// Import records this batch applies: (record key, digest, seq).
    imported: Vec<Vec<Value>>,
}

impl<'a> Builder<'a> {
    /// The batch after the one whose link is `previous_link`.
    pub(super) fn new(
        backend: Backend,
        previous_link: &str,
        costs: &'a mut PositionCosts,
    ) -> Builder<'a> {
        Builder {
            backend,
            chain: Chain::after(previous_link),
            costs,
            journal: Vec::new(),
            accounts: Vec::new(),
            user_links: Vec::new(),
            markets_new: BTreeMap::new(),
            markets_changed: BTreeMap::new(),
            orders: BTreeMap::new(),
            trades: Vec::new(),
            positions: BTreeMap::new(),
            balances: BTreeMap::new(),
            transfers: Vec::new(),
            settlements: Vec::new(),
            conversions: Vec::new(),
            keyed: Vec::new(),
            imported: Vec::new(),
        }
    }

    /// A command, before its events: its journal row and its part of the chain link. Answers
    /// its timestamp and seq as the rows store them, for its events.
    pub(super) fn command(&mut self, entry: &Entry) -> Result<(i64, i64), CommitError> {
        let ts = int(entry.command.ts_micros)?;
        let seq = int(entry.seq)?;
        let command = serde_json::to_string(&entry.command)
            .map_err(|error| broken(format!("command encoding: {error}")))?;
        self.chain
            .command(entry.seq, &command, entry.result, &entry.events);
        let result = match entry.result {
            Ok(()) => "OK".to_owned(),
            Err(reject) => reject.code().to_owned(),
        };
        let subject = match &entry.subject {
            None => None,
            Some(subject) => Some(
                serde_json::to_string(subject)
                    .map_err(|error| broken(format!("subject encoding: {error}")))?,
            ),
        };
        self.journal.push(vec![
            Value::Int(seq),
            Value::Int(ts),
            Value::Text(command),
            Value::Text(result),
            Value::OptText(subject),
        ]);
        Ok((ts, seq))
    }

    /// A command, after its events: the outcome kept for its idempotency key, if it has one,
    /// and the import record it applied.
    pub(super) fn command_end(&mut self, entry: &Entry) -> Result<(), CommitError> {
        let seq = int(entry.seq)?;
        if let (Some(Subject::Import { key, digest, .. }), Ok(())) = (&entry.subject, entry.result)
        {
            self.imported.push(vec![
                Value::Text(key.clone()),
                Value::Text(digest.clone()),
                Value::Int(seq),
            ]);
        }
        if let Some(key) = &entry.key {
            let outcome = keyed::outcome_json(entry)
                .map_err(|error| broken(format!("outcome encoding: {error}")))?;
            self.keyed.push(vec![
                Value::Text(key.user_id.to_string()),
                Value::Text(key.key.clone()),
                Value::Int(seq),
                Value::Text(outcome),
            ]);
        }
        Ok(())
    }

    /// One event of `entry` (at `ts`, seq `seq`): the rows it changes, and the position costs
    /// it moves.
    pub(super) fn event(
        &mut self,
        event: &Event,
        entry: &Entry,
        ts: i64,
        seq: i64,
    ) -> Result<(), CommitError> {
        let transfer_price = match &entry.subject {
            Some(Subject::Import { cost_micros, .. }) => *cost_micros,
            _ => None,
        };
        position_costs::apply(self.costs, event, transfer_price);
        match event {
            Event::UserCreated { user } => self.user_created(*user, entry, ts, seq)?,
            Event::MarketCreated { market, params } => {
                let Some(Subject::Market {
                    market_id,
                    question,
                    description,
                }) = &entry.subject
                else {
                    return Err(broken("MarketCreated without a market subject"));
                };
                let row = MarketRow {
                    market_id: market_id.to_string(),
                    question: question.clone(),
                    description: description.clone(),
                    params: *params,
                    created_at: ts,
                };
                let change = MarketChange {
                    state: Some(MarketState::Open),
                    resolution: None,
                    updated_seq: seq,
                };
                self.markets_new.insert(*market, (row, change));
            }
            Event::MarketStateChanged { market, state } => {
                let change = self.market_change(*market);
                change.state = Some(*state);
                change.updated_seq = seq;
            }
            Event::MarketResolved { market, resolution } => {
                let change = self.market_change(*market);
                change.state = Some(MarketState::Resolved);
                change.resolution = Some(*resolution);
                change.updated_seq = seq;
            }
            Event::Settlement {
                market,
                user,
                yes_shares,
                no_shares,
                payout_micros,
            } => self.settlements.push(vec![
                Value::Int(market.0.into()),
                Value::Int(user.0.into()),
                Value::Int(seq),
                Value::Int(int(*yes_shares)?),
                Value::Int(int(*no_shares)?),
                Value::Int(*payout_micros),
                Value::Int(ts),
            ]),
            Event::Deposited {
                user,
                amount_micros,
            } => {
                let kind = match entry.subject {
                    Some(Subject::Faucet) => "FAUCET",
                    _ => "DEPOSIT",
                };
                self.transfer(*user, kind, *amount_micros, entry.seq, ts)?
            }
            Event::Withdrawn {
                user,
                amount_micros,
            } => self.transfer(*user, "WITHDRAWAL", *amount_micros, entry.seq, ts)?,
            Event::OrderAccepted {
                order,
                request,
                price_units,
                ..
            } => {
                let touch = self.touch(*order, ts, seq);
                touch.new = Some(NewOrder {
                    request: *request,
                    created_at: ts,
                    created_seq: seq,
                });
                touch.price_units = Some(*price_units);
            }
            Event::OrderAmended {
                order, price_units, ..
            } => self.touch(*order, ts, seq).price_units = Some(*price_units),
            Event::OrderRested { order, .. } | Event::OrderReduced { order, .. } => {
                self.touch(*order, ts, seq);
            }
            Event::OrderEnded {
                order,
                end,
                reason,
                filled_qty,
                unfilled_qty,
                ..
            } => {
                self.touch(*order, ts, seq).ended =
                    Some((*end, *reason, *filled_qty, *unfilled_qty));
            }
            Event::Trade { .. } => self.trade(event, ts, seq)?,
            Event::Position {
                user,
                market,
                position,
            } => {
                self.positions.insert((*market, *user), (*position, seq));
            }
            Event::Balance {
                user,
                available_micros,
                locked_micros,
            } => {
                let cash = Cash {
                    available_micros: *available_micros,
                    locked_micros: *locked_micros,
                };
                self.balances.insert(*user, (cash, seq));
            }
            Event::SharesSplit { user, market, qty } => {
                self.conversion(*market, *user, "SPLIT", *qty, seq, ts)?
            }
            Event::SharesMerged { user, market, qty } => {
                self.conversion(*market, *user, "MERGE", *qty, seq, ts)?
            }
            // The receiver's and giver's positions follow as `Position` events, their costs
            // were moved above; the journal row is the transfer's record.
            Event::OrderReplayed { .. }
            | Event::BatchItemRejected { .. }
            | Event::SharesTransferred { .. }
            | Event::BookLevel { .. } => {}
        }
        Ok(())
    }

    fn user_created(
        &mut self,
        user: UserId,
        entry: &Entry,
        ts: i64,
        seq: i64,
    ) -> Result<(), CommitError> {
        let Some(Subject::User { user_id }) = &entry.subject else {
            return Err(broken("UserCreated without a user subject"));
        };
        self.accounts.push(vec![
            Value::Int(user.0.into()),
            Value::Text(user_id.to_string()),
            Value::Int(0),
            Value::Int(0),
            Value::Int(seq),
        ]);
        self.user_links.push(vec![
            Value::Int(user.0.into()),
            Value::Int(ts),
            Value::Text(user_id.to_string()),
        ]);
        Ok(())
    }

    fn conversion(
        &mut self,
        market: MarketId,
        user: UserId,
        kind: &str,
        qty: u64,
        seq: i64,
        ts: i64,
    ) -> Result<(), CommitError> {
        self.conversions.push(vec![
            Value::Int(seq),
            Value::Int(market.0.into()),
            Value::Int(user.0.into()),
            Value::Text(kind.to_owned()),
            Value::Int(int(qty)?),
            Value::Int(ts),
        ]);
        Ok(())
    }

    fn transfer(
        &mut self,
        user: UserId,
        kind: &str,
        amount: i64,
        seq: u64,
        ts: i64,
    ) -> Result<(), CommitError> {
        self.transfers.push(vec![
            Value::Text(transfer_uuid(seq).to_string()),
            Value::Int(int(seq)?),
            Value::Int(user.0.into()),
            Value::Text(kind.to_owned()),
            Value::Int(amount),
            Value::Int(ts),
        ]);
        Ok(())
    }

    fn trade(&mut self, event: &Event, ts: i64, seq: i64) -> Result<(), CommitError> {
        let Event::Trade {
            trade,
            market,
            maker_order,
            taker_order,
            maker_user,
            taker_user,
            price_units,
            qty,
            kind,
            taker_side,
            maker_fee_micros,
            taker_fee_micros,
        } = event
        else {
            return Ok(());
        };
        self.trades.push(vec![
            Value::Int(int(trade.0)?),
            Value::Text(trade_uuid(*trade).to_string()),
            Value::Int(seq),
            Value::Int(market.0.into()),
            Value::Int(int(maker_order.0)?),
            Value::Int(int(taker_order.0)?),
            Value::Int(maker_user.0.into()),
            Value::Int(taker_user.0.into()),
            Value::Int((*price_units).into()),
            Value::Int(int(*qty)?),
            Value::Text(name(kind)?),
            Value::Text(name(taker_side)?),
            Value::Int(*maker_fee_micros),
            Value::Int(*taker_fee_micros),
            Value::Int(ts),
        ]);
        let yes = qty * u64::from(*price_units);
        let no = qty * u64::from(engine::units::complement_units(*price_units));
        for (order, fee) in [
            (*maker_order, *maker_fee_micros),
            (*taker_order, *taker_fee_micros),
        ] {
            let touch = self.touch(order, ts, seq);
            touch.notional_yes_units += yes;
            touch.notional_no_units += no;
            touch.fee_micros += fee;
        }
        Ok(())
    }

    fn touch(&mut self, order: OrderId, ts: i64, seq: i64) -> &mut OrderTouch {
        let touch = self.orders.entry(order).or_default();
        touch.updated_at = ts;
        touch.updated_seq = seq;
        touch
    }

    fn market_change(&mut self, market: MarketId) -> &mut MarketChange {
        match self.markets_new.get_mut(&market) {
            Some((_, change)) => change,
            None => self.markets_changed.entry(market).or_default(),
        }
    }

    /// The batch's statements, with the final state of every order it touched from `engine`.
    pub(super) fn finish(self, engine: &Engine) -> Result<Projection, CommitError> {
        let mut out = Projection {
            backend: self.backend,
            statements: Vec::new(),
            link: self.chain.link(),
        };
        out.insert(
            "journal (seq, ts_micros, command, result, subject)",
            "",
            self.journal,
        );
        // The import checks its records against this table before sending them; a record
        // sent twice anyway must not fail the commit.
        out.insert(
            "imported_records (record_key, digest, seq)",
            " ON CONFLICT (record_key) DO NOTHING",
            self.imported,
        );
        out.insert(
            "accounts (engine_user_id, user_id, available_micros, locked_micros, updated_seq)",
            "",
            self.accounts,
        );
        for values in self.user_links {
            out.single(
                "UPDATE users SET engine_user_id = $1, updated_at = $2 WHERE id = $3",
                values,
            );
        }
        markets(&mut out, self.markets_new, self.markets_changed)?;
        orders(&mut out, self.orders, engine)?;
        out.insert(
            "trades (engine_trade_id, id, seq, engine_market_id, maker_order_id, taker_order_id, \
             maker_user_id, taker_user_id, price_units, qty, kind, taker_side, maker_fee_micros, \
             taker_fee_micros, created_at)",
            "",
            self.trades,
        );
        let mut positions = Vec::with_capacity(self.positions.len());
        for ((market, user), (position, seq)) in self.positions {
            // Every fill, conversion and settlement moves shares too, so a position whose
            // costs changed is always among these.
            let costs = self.costs.get(&(market, user)).copied().unwrap_or_default();
            positions.push(vec![
                Value::Int(market.0.into()),
                Value::Int(user.0.into()),
                Value::Int(int(position.yes_free)?),
                Value::Int(int(position.yes_reserved)?),
                Value::Int(int(position.no_free)?),
                Value::Int(int(position.no_reserved)?),
                Value::Int(seq),
                Value::Int(costs.yes.cost_micros),
                Value::Int(costs.no.cost_micros),
                Value::Int(costs.realized_micros),
            ]);
        }
        out.insert(
            "positions (engine_market_id, engine_user_id, yes_free, yes_reserved, no_free, \
             no_reserved, updated_seq, yes_cost_micros, no_cost_micros, realized_pnl_micros)",
            " ON CONFLICT (engine_market_id, engine_user_id) DO UPDATE SET \
             yes_free = excluded.yes_free, yes_reserved = excluded.yes_reserved, \
             no_free = excluded.no_free, no_reserved = excluded.no_reserved, \
             updated_seq = excluded.updated_seq, yes_cost_micros = excluded.yes_cost_micros, \
             no_cost_micros = excluded.no_cost_micros, \
             realized_pnl_micros = excluded.realized_pnl_micros",
            positions,
        );
        let mut balances = Vec::with_capacity(self.balances.len());
        for (user, (cash, seq)) in self.balances {
            balances.push(vec![
                Value::Int(user.0.into()),
                Value::Int(cash.available_micros),
                Value::Int(cash.locked_micros),
                Value::Int(seq),
            ]);
        }
        out.update(
            "UPDATE accounts SET available_micros = v.column2, locked_micros = v.column3, \
             updated_seq = v.column4 FROM {values} AS v WHERE engine_user_id = v.column1",
            balances,
        );
        out.insert(
            "transfers (id, seq, engine_user_id, kind, amount_micros, created_at)",
            "",
            self.transfers,
        );
        out.insert(
            "settlements (engine_market_id, engine_user_id, seq, yes_shares, no_shares, \
             payout_micros, created_at)",
            "",
            self.settlements,
        );
        out.insert(
            "conversions (seq, engine_market_id, engine_user_id, kind, qty, created_at)",
            "",
            self.conversions,
        );
        out.update(
            "UPDATE idempotency_keys SET committed_seq = v.column3, committed_outcome = v.column4 \
             FROM {values} AS v WHERE user_id = v.column1 AND key = v.column2",
            self.keyed,
        );
        Ok(out)
    }
}

fn resolution_columns(resolution: Option<Resolution>) -> Result<(Value, Value), CommitError> {
    Ok(match resolution {
        None => (Value::OptText(None), Value::OptInt(None)),
        Some(resolution) => {
            let outcome = match resolution {
                Resolution::Yes => "YES",
                Resolution::No => "NO",
                Resolution::Split { .. } => "SPLIT",
            };
            (
                Value::OptText(Some(outcome.to_owned())),
                Value::OptInt(Some(resolution.yes_payout_units().into())),
            )
        }
    })
}

fn markets(
    out: &mut Projection,
    new: BTreeMap<MarketId, (MarketRow, MarketChange)>,
    changed: BTreeMap<MarketId, MarketChange>,
) -> Result<(), CommitError> {
    let mut rows = Vec::with_capacity(new.len());
    for (market, (row, change)) in new {
        let (resolution, payout) = resolution_columns(change.resolution)?;
        let state = change.state.unwrap_or(MarketState::Open);
        let closes_at = match row.params.close_ts_micros {
            Some(close) => Some(int(close)?),
            None => None,
        };
        rows.push(vec![
            Value::Int(market.0.into()),
            Value::Text(row.market_id),
            Value::Text(row.params.slug.to_string()),
            Value::Text(row.question),
            Value::Text(row.description),
            Value::Int(row.params.tick_units.into()),
            Value::Int(int(row.params.qty_min)?),
            Value::Int(int(row.params.qty_max)?),
            Value::Int(row.params.maker_fee_bps.into()),
            Value::Int(row.params.taker_fee_bps.into()),
            Value::OptInt(closes_at),
            Value::Text(name(&state)?),
            resolution,
            payout,
            Value::Int(row.created_at),
            Value::Int(change.updated_seq),
            Value::Text(name(&row.params.lock_rule)?),
        ]);
    }
    out.insert(
        "markets (engine_market_id, id, slug, question, description, tick_units, qty_min, \
         qty_max, maker_fee_bps, taker_fee_bps, closes_at, state, resolution, yes_payout_units, \
         created_at, updated_seq, lock_rule)",
        "",
        rows,
    );
    for (market, change) in changed {
        let (resolution, payout) = resolution_columns(change.resolution)?;
        let state = match change.state {
            Some(state) => Value::OptText(Some(name(&state)?)),
            None => Value::OptText(None),
        };
        out.single(
            "UPDATE markets SET state = COALESCE($1, state), \
             resolution = COALESCE($2, resolution), \
             yes_payout_units = COALESCE($3, yes_payout_units), updated_seq = $4 \
             WHERE engine_market_id = $5",
            vec![
                state,
                resolution,
                payout,
                Value::Int(change.updated_seq),
                Value::Int(market.0.into()),
            ],
        );
    }
    Ok(())
}

/// An order's state after the batch: (price, qty, filled, remaining, status, cancel reason).
type OrderState = (Option<u16>, u64, u64, u64, String, Option<String>);

fn order_state(
    order: OrderId,
    touch: &OrderTouch,
    engine: &Engine,
) -> Result<OrderState, CommitError> {
    if let Some((end, reason, filled, unfilled)) = touch.ended {
        let reason = match reason {
            Some(reason) => Some(name(&reason)?),
            None => None,
        };
        return Ok((
            touch.price_units,
            filled + unfilled,
            filled,
            0,
            name(&end)?,
            reason,
        ));
    }
    let Some(view) = engine.order(order) else {
        return Err(broken(format!("order {} neither ended nor open", order.0)));
    };
    let status = if view.filled_qty > 0 {
        "PARTIALLY_FILLED"
    } else {
        "OPEN"
    };
    Ok((
        Some(view.price_units),
        view.qty,
        view.filled_qty,
        view.remaining_qty,
        status.to_owned(),
        None,
    ))
}

fn orders(
    out: &mut Projection,
    touched: BTreeMap<OrderId, OrderTouch>,
    engine: &Engine,
) -> Result<(), CommitError> {
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    for (order, touch) in touched {
        let (price, qty, filled, remaining, status, reason) = order_state(order, &touch, engine)?;
        match &touch.new {
            Some(new) => {
                let request = &new.request;
                let notional = match request.outcome {
                    engine::Outcome::Yes => touch.notional_yes_units,
                    engine::Outcome::No => touch.notional_no_units,
                };
                let expires_at = match request.expires_at_micros {
                    Some(expiry) => Some(int(expiry)?),
                    None => None,
                };
                inserts.push(vec![
                    Value::Int(int(order.0)?),
                    Value::Text(order_uuid(order).to_string()),
                    Value::Int(request.user.0.into()),
                    Value::Int(request.market.0.into()),
                    Value::OptText(request.client_order_id.map(|id| id.as_str().to_owned())),
                    Value::Text(name(&request.side)?),
                    Value::Text(name(&request.outcome)?),
                    Value::Text(name(&request.order_type)?),
                    Value::Text(name(&request.time_in_force)?),
                    Value::Text(name(&request.self_trade_prevention)?),
                    Value::Bool(request.post_only),
                    Value::Bool(request.reduce_only),
                    Value::Int(price.unwrap_or_default().into()),
                    Value::Int(int(qty)?),
                    Value::Int(int(filled)?),
                    Value::Int(int(remaining)?),
                    Value::Int(int(notional)?),
                    Value::Int(touch.fee_micros),
                    Value::Text(status),
                    Value::OptText(reason),
                    Value::OptInt(expires_at),
                    Value::Int(new.created_at),
                    Value::Int(touch.updated_at),
                    Value::Int(new.created_seq),
                    Value::Int(touch.updated_seq),
                ]);
            }
            None => updates.push(vec![
                Value::Int(int(order.0)?),
                Value::OptInt(price.map(i64::from)),
                Value::Int(int(qty)?),
                Value::Int(int(filled)?),
                Value::Int(int(remaining)?),
                Value::Text(status),
                Value::OptText(reason),
                Value::Int(int(touch.notional_yes_units)?),
                Value::Int(int(touch.notional_no_units)?),
                Value::Int(touch.fee_micros),
                Value::Int(touch.updated_at),
                Value::Int(touch.updated_seq),
            ]),
        }
    }
    out.update(
        "UPDATE orders SET price_units = COALESCE(v.column2, price_units), qty = v.column3, \
         filled_qty = v.column4, remaining_qty = v.column5, status = v.column6, \
         cancel_reason = COALESCE(v.column7, cancel_reason), \
         filled_notional_units = filled_notional_units \
           + CASE WHEN outcome = 'YES' THEN v.column8 ELSE v.column9 END, \
         fee_micros = fee_micros + v.column10, updated_at = v.column11, \
         updated_seq = v.column12 FROM {values} AS v WHERE engine_order_id = v.column1",
        updates,
    );
    out.insert(
        "orders (engine_order_id, id, engine_user_id, engine_market_id, client_order_id, side, \
         outcome, order_type, time_in_force, self_trade_prevention, post_only, reduce_only, \
         price_units, qty, filled_qty, remaining_qty, filled_notional_units, fee_micros, status, \
         cancel_reason, expires_at, created_at, updated_at, created_seq, updated_seq)",
        "",
        inserts,
    );
    Ok(())
}

impl Projection {
    /// Stores the stream seqs the batch's messages reached.
    pub(crate) fn stream_seqs(&mut self, seqs: &BTreeMap<String, u64>) -> Result<(), CommitError> {
        let mut rows = Vec::with_capacity(seqs.len());
        for (topic, seq) in seqs {
            rows.push(vec![Value::Text(topic.clone()), Value::Int(int(*seq)?)]);
        }
        self.insert(
            "stream_seqs (topic, seq)",
            " ON CONFLICT (topic) DO UPDATE SET seq = excluded.seq",
            rows,
        );
        Ok(())
    }

    /// Multi-row `INSERT INTO {table} VALUES ...{suffix}`, in chunks.
    fn insert(&mut self, table: &str, suffix: &str, rows: Vec<Vec<Value>>) {
        self.chunked(rows, |values| {
            format!("INSERT INTO {table} VALUES {values}{suffix}")
        });
    }

    /// Multi-row `UPDATE`, in chunks: `{values}` in `sql` becomes a `VALUES` list of `rows`,
    /// whose columns both databases name `column1`, `column2`, ...
    fn update(&mut self, sql: &str, rows: Vec<Vec<Value>>) {
        self.chunked(rows, |values| {
            sql.replace("{values}", &format!("(VALUES {values})"))
        });
    }

    /// One statement per chunk of `rows`, `sql_for` given the chunk's `($1, $2), ...` list.
    fn chunked(&mut self, rows: Vec<Vec<Value>>, sql_for: impl Fn(&str) -> String) {
        let mut left = rows.len();
        let mut rows = rows.into_iter();
        while left > 0 {
            let take = chunk_rows(left);
            left -= take;
            let chunk: Vec<Vec<Value>> = rows.by_ref().take(take).collect();
            let values = placeholders(self.backend, chunk.len(), chunk[0].len());
            self.statements.push(Statement {
                sql: sql_for(&values),
                values: chunk.into_iter().flatten().collect(),
            });
        }
    }

    fn single(&mut self, sql: &str, values: Vec<Value>) {
        self.statements.push(Statement {
            sql: sql.to_owned(),
            values,
        });
    }
}

/// Stores the batch in one transaction.
pub(crate) async fn commit(
    db: &Db,
    projection: Projection,
    batch: Batch,
) -> Result<(), CommitError> {
    let projection_link = projection.link;
    let mut tx = db.writer.begin().await?;
    for statement in projection.statements {
        bind_all(sqlx::query(&statement.sql), statement.values)
            .execute(&mut *tx)
            .await?;
    }
    let state_hash = batch.snapshot.as_ref().map(|(_, hash)| hash_hex(*hash));
    sqlx::query(
        "INSERT INTO batches (last_seq, first_seq, state_hash, chain_hash, committed_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(int(batch.last_seq)?)
    .bind(int(batch.first_seq)?)
    .bind(state_hash)
    .bind(&projection_link)
    .bind(batch.committed_at)
    .execute(&mut *tx)
    .await?;
    if let Some((bytes, state_hash)) = batch.snapshot {
        insert_snapshot(&mut tx, batch.last_seq, state_hash, bytes).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn insert_snapshot(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    seq: u64,
    state_hash: u128,
    bytes: Vec<u8>,
) -> Result<(), CommitError> {
    sqlx::query(
        "INSERT INTO snapshots (seq, state_hash, format_version, data, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(int(seq)?)
    .bind(hash_hex(state_hash))
    .bind(i64::from(engine::command::FORMAT_VERSION))
    .bind(bytes)
    .bind(now_micros())
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM snapshots WHERE seq NOT IN \
         (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT $1)",
    )
    .bind(SNAPSHOTS_KEPT)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A snapshot of the state after `seq`, the last committed command (used at shutdown).
/// Stores a snapshot of `engine` at `seq`; answers the state hash stored with it.
pub(crate) async fn store_snapshot(
    db: &Db,
    engine: &Engine,
    seq: u64,
) -> Result<u128, CommitError> {
    let bytes = encode_snapshot(engine)?;
    let state_hash = engine.state_hash();
    let mut tx = db.writer.begin().await?;
    insert_snapshot(&mut tx, seq, state_hash, bytes).await?;
    tx.commit().await?;
    Ok(state_hash)
}
