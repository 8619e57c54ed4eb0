//! A local mirror of one market's book (REST snapshot plus WebSocket deltas) and the order
//! preview computed on it by the engine itself.
//!
//! Owns the mirrored levels, their sequence number and the preview. A preview restores an engine
//! whose book holds one order per mirrored level (a "house" user's) and whose second user holds
//! the given account, then applies the order exactly as the server would: the fills, fees and
//! rejects are the engine's, not a re-implementation. That is exact on aggregated levels because
//! a taker's fee is computed over its whole order (DESIGN.md). It must never apply a delta out of
//! sequence: a gap asks for a resync instead.

use std::collections::BTreeMap;

use engine::units::{complement_units, MICROS_PER_SHARE};
use engine::{
    BookSide, Cash, Command, Config, Engine, Event, MarketId, MarketParams, MarketSnapshot,
    MarketState, Op, OrderEnd, OrderId, OrderSnapshot, OrderType, Outcome, Position, Side,
    Snapshot, TimeInForce, UserId, UserSnapshot,
};
use serde::Serialize;

use crate::decimal::{divide_half_even, fixed_point, format_cash, format_price};
use crate::wire::{level, Account, BookJson, BookMessage, DeltaJson, OrderJson, WireError};

const MARKET: MarketId = MarketId(0);
const HOUSE: UserId = UserId(0);
const TRADER: UserId = UserId(1);
/// Cash assumed when no account is given: enough for any order a market allows.
const UNLIMITED_MICROS: i64 = 1_000_000_000 * MICROS_PER_SHARE;

/// What applying a book message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DeltaStatus {
    Applied,
    /// Already included (its seq is not newer): ignored.
    Stale,
    /// A message is missing: the mirror is unchanged; fetch a snapshot.
    Resync,
}

pub struct Mirror {
    params: MarketParams,
    seq: u64,
    bids: BTreeMap<u16, u64>,
    asks: BTreeMap<u16, u64>,
    /// The engine for the current levels and account, restored once and cloned per preview.
    prepared: Option<(Option<Account>, Engine)>,
    /// Reused by every preview.
    events: Vec<Event>,
}

impl Mirror {
    pub fn new(params: MarketParams, book: &BookJson) -> Result<Mirror, WireError> {
        let mut mirror = Mirror {
            params,
            seq: 0,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            prepared: None,
            events: Vec::new(),
        };
        mirror.reset(book)?;
        Ok(mirror)
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Replaces every level with a snapshot's.
    pub fn reset(&mut self, book: &BookJson) -> Result<(), WireError> {
        let side = |levels: &[crate::wire::LevelJson]| -> Result<BTreeMap<u16, u64>, WireError> {
            levels.iter().map(|l| level(&l.price, l.qty)).collect()
        };
        let (bids, asks) = (side(&book.bids)?, side(&book.asks)?);
        let crossed = matches!(
            (bids.keys().next_back(), asks.keys().next()),
            (Some(bid), Some(ask)) if bid >= ask
        );
        if crossed {
            return Err(WireError::new("VALIDATION_FAILED", "the book is crossed"));
        }
        (self.bids, self.asks, self.seq) = (bids, asks, book.seq);
        self.prepared = None;
        Ok(())
    }

    /// Applies a `book:{market}` message: a delta exactly one past our seq, or a snapshot.
    pub fn apply(&mut self, message: &BookMessage) -> Result<DeltaStatus, WireError> {
        if message.kind == "snapshot" {
            let book: BookJson =
                serde_json::from_value(message.data.clone()).map_err(WireError::bad_request)?;
            self.reset(&BookJson {
                seq: message.seq,
                ..book
            })?;
            return Ok(DeltaStatus::Applied);
        }
        if message.seq <= self.seq {
            return Ok(DeltaStatus::Stale);
        }
        if message.seq != self.seq + 1 || message.resync {
            return Ok(DeltaStatus::Resync);
        }
        let delta: DeltaJson =
            serde_json::from_value(message.data.clone()).map_err(WireError::bad_request)?;
        let mut changes = Vec::with_capacity(delta.changes.len());
        for change in &delta.changes {
            let (price, qty) = level(&change.price, change.qty)?;
            let side = match change.side.as_str() {
                "BID" => BookSide::Bid,
                "ASK" => BookSide::Ask,
                other => {
                    return Err(WireError::new(
                        "VALIDATION_FAILED",
                        format!("side {other:?}"),
                    ))
                }
            };
            changes.push((side, price, qty));
        }
        for (side, price, qty) in changes {
            let levels = match side {
                BookSide::Bid => &mut self.bids,
                BookSide::Ask => &mut self.asks,
            };
            if qty == 0 {
                levels.remove(&price);
            } else {
                levels.insert(price, qty);
            }
        }
        self.seq = message.seq;
        self.prepared = None;
        Ok(DeltaStatus::Applied)
    }

    /// Levels of one side, best first, as (YES price units, qty).
    pub fn levels(&self, side: BookSide) -> Vec<(u16, u64)> {
        match side {
            BookSide::Bid => self.bids.iter().rev().map(|(p, q)| (*p, *q)).collect(),
            BookSide::Ask => self.asks.iter().map(|(p, q)| (*p, *q)).collect(),
        }
    }

    /// What the order would do on this book, for this account (see the module header).
    pub fn preview(&mut self, order: &OrderJson, account: Option<Account>) -> Preview {
        match self.try_preview(order, account) {
            Ok(preview) => preview,
            Err(error) => Preview::rejected(error),
        }
    }

    fn try_preview(
        &mut self,
        order: &OrderJson,
        account: Option<Account>,
    ) -> Result<Preview, WireError> {
        let request = order.to_engine(TRADER, MARKET, 0)?;
        let account = account.unwrap_or_else(|| assumed_account(&request));
        let mut engine = self.prepared_engine(account)?.clone();
        let before = engine.balance(TRADER).unwrap_or_default();
        let command = Command {
            ts_micros: 0,
            op: Op::Place(request),
        };
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let applied = engine.apply(&command, &mut events);
        let preview = self.describe(applied, &request, &engine, &events, before);
        self.events = events;
        preview
    }

    fn describe(
        &self,
        applied: Result<(), engine::Reject>,
        request: &engine::PlaceOrder,
        engine: &Engine,
        events: &[Event],
        before: Cash,
    ) -> Result<Preview, WireError> {
        if let Err(reject) = applied {
            return Err(WireError::new(reject.code(), reject.to_string()));
        }
        let best = self.levels(BookSide::of(request.side, request.outcome).opposite());
        let context = Context {
            request,
            best_yes_units: best.first().map(|l| l.0),
            mid_yes_units_x2: self.mid_x2(),
            before,
        };
        Ok(Preview::of(&context, engine, events))
    }

    fn mid_x2(&self) -> Option<u32> {
        let bid = self.bids.keys().next_back()?;
        let ask = self.asks.keys().next()?;
        Some(*bid as u32 + *ask as u32)
    }

    fn prepared_engine(&mut self, account: Account) -> Result<&Engine, WireError> {
        let fresh = !matches!(&self.prepared, Some((held, _)) if *held == Some(account));
        if fresh {
            let engine = self.restore(account)?;
            self.prepared = Some((Some(account), engine));
        }
        Ok(&self.prepared.as_ref().expect("just prepared").1)
    }

    /// An engine holding this book (one house order per level) and this account.
    fn restore(&self, account: Account) -> Result<Engine, WireError> {
        let snapshot = self.snapshot(account);
        Engine::restore(&snapshot).map_err(|e| WireError::new("VALIDATION_FAILED", e.0))
    }

    fn snapshot(&self, account: Account) -> Snapshot {
        let mut orders = Vec::new();
        let mut house_locked_micros = 0;
        let bids = self
            .levels(BookSide::Bid)
            .into_iter()
            .map(|l| (Outcome::Yes, l.0, l.1));
        let asks = self.levels(BookSide::Ask).into_iter();
        let asks = asks.map(|l| (Outcome::No, complement_units(l.0), l.1));
        for (index, (outcome, limit_units, qty)) in bids.chain(asks).enumerate() {
            let locked_micros = self.params.buy_reserve_micros(qty, limit_units);
            house_locked_micros += locked_micros;
            orders.push(house_order(
                index as u64 + 1,
                outcome,
                limit_units,
                qty,
                locked_micros,
            ));
        }
        // Shares come in YES/NO pairs: the house holds the other halves of the trader's.
        let pairs = account.yes_shares.max(account.no_shares);
        let escrow_micros = pairs as i64 * MICROS_PER_SHARE;
        let positions = vec![
            (
                MARKET,
                HOUSE,
                free(pairs - account.yes_shares, pairs - account.no_shares),
            ),
            (MARKET, TRADER, free(account.yes_shares, account.no_shares)),
        ];
        let positions = positions.into_iter().filter(|p| !p.2.is_empty()).collect();
        let cash = |available_micros, locked_micros| UserSnapshot {
            cash: Cash {
                available_micros,
                locked_micros,
            },
            client_ids: Vec::new(),
        };
        Snapshot {
            format_version: engine::command::FORMAT_VERSION,
            config: Config::default(),
            now_micros: 0,
            next_order_id: orders.len() as u64 + 1,
            next_trade_id: 1,
            users: vec![
                cash(0, house_locked_micros),
                cash(account.available_micros, 0),
            ],
            markets: vec![MarketSnapshot {
                params: self.params,
                state: MarketState::Open,
                resolution: None,
                book_seq: 0,
                escrow_micros,
                orders,
            }],
            positions,
            fee_micros: 0,
            external_micros: -(house_locked_micros + account.available_micros + escrow_micros),
        }
    }
}

fn free(yes: u64, no: u64) -> Position {
    Position {
        yes_free: yes,
        no_free: no,
        ..Position::default()
    }
}

fn house_order(
    id: u64,
    outcome: Outcome,
    limit_units: u16,
    qty: u64,
    locked: i64,
) -> OrderSnapshot {
    OrderSnapshot {
        order: OrderId(id),
        user: HOUSE,
        side: Side::Buy,
        outcome,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        self_trade_prevention: engine::SelfTradePrevention::CancelTaker,
        post_only: false,
        reduce_only: false,
        limit_units,
        qty,
        filled_qty: 0,
        expires_at_micros: None,
        locked_micros: locked,
    }
}

/// Without an account: all the cash a market could need and, for a SELL, the shares it sells.
fn assumed_account(request: &engine::PlaceOrder) -> Account {
    let sold = match request.side {
        Side::Sell => request.qty.unwrap_or(0),
        Side::Buy => 0,
    };
    let (yes_shares, no_shares) = match request.outcome {
        Outcome::Yes => (sold, 0),
        Outcome::No => (0, sold),
    };
    Account {
        available_micros: UNLIMITED_MICROS,
        yes_shares,
        no_shares,
    }
}

struct Context<'a> {
    request: &'a engine::PlaceOrder,
    best_yes_units: Option<u16>,
    mid_yes_units_x2: Option<u32>,
    before: Cash,
}

/// One fill, against one mirrored level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewFill {
    /// In the order's outcome.
    pub price: String,
    pub yes_price: String,
    pub qty: u64,
    pub fee: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resting {
    pub price: String,
    pub qty: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionPreview {
    pub yes_shares: u64,
    pub no_shares: u64,
}

/// Everything the order ticket shows. Prices are in the order's outcome; cash and prices are
/// decimal strings; an average price is rounded half-even to 6 decimals, slippage to 2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    pub accepted: bool,
    pub reject: Option<WireError>,
    /// `FILLED`, `PARTIALLY_FILLED` (the rest rests), `OPEN` (all of it rests) or `CANCELLED`
    /// (the unfilled rest is cancelled: IOC, market, self-trade).
    pub status: Option<String>,
    pub cancel_reason: Option<String>,
    pub fills: Vec<PreviewFill>,
    pub filled_qty: u64,
    pub unfilled_qty: u64,
    pub avg_price: Option<String>,
    pub worst_price: Option<String>,
    pub slippage_bps_vs_best: Option<String>,
    pub slippage_bps_vs_mid: Option<String>,
    pub fees: String,
    /// Cash out (negative) or in (positive) from the fills, fees included.
    pub cash_delta: String,
    /// Cash the resting rest would lock.
    pub cash_locked: String,
    pub rests: Option<Resting>,
    pub position: Option<PositionPreview>,
}

impl Preview {
    fn rejected(error: WireError) -> Preview {
        Preview {
            accepted: false,
            reject: Some(error),
            status: None,
            cancel_reason: None,
            fills: Vec::new(),
            filled_qty: 0,
            unfilled_qty: 0,
            avg_price: None,
            worst_price: None,
            slippage_bps_vs_best: None,
            slippage_bps_vs_mid: None,
            fees: format_cash(0),
            cash_delta: format_cash(0),
            cash_locked: format_cash(0),
            rests: None,
            position: None,
        }
    }

    fn of(context: &Context, engine: &Engine, events: &[Event]) -> Preview {
        let outcome = context.request.outcome;
        let mut preview = Preview::rejected(WireError::new("", ""));
        (preview.accepted, preview.reject) = (true, None);
        let (mut fees, mut notional_units_x_qty) = (0i64, 0u128);
        for event in events {
            match event {
                Event::OrderAccepted { qty, .. } => preview.unfilled_qty = *qty,
                Event::Trade {
                    price_units,
                    qty,
                    taker_fee_micros,
                    ..
                } => {
                    let price = outcome_units(outcome, *price_units);
                    fees += taker_fee_micros;
                    notional_units_x_qty += price as u128 * *qty as u128;
                    preview.filled_qty += qty;
                    preview.unfilled_qty -= qty;
                    preview.worst_price = Some(format_price(price));
                    preview.fills.push(PreviewFill {
                        price: format_price(price),
                        yes_price: format_price(*price_units),
                        qty: *qty,
                        fee: format_cash(*taker_fee_micros),
                    });
                }
                Event::OrderReduced { remaining_qty, .. } => preview.unfilled_qty = *remaining_qty,
                Event::OrderRested {
                    book_price_units,
                    remaining_qty,
                    ..
                } => {
                    preview.status = Some(rested_status(preview.filled_qty).into());
                    preview.rests = Some(Resting {
                        price: format_price(outcome_units(outcome, *book_price_units)),
                        qty: *remaining_qty,
                    });
                }
                Event::OrderEnded {
                    end,
                    reason,
                    unfilled_qty,
                    ..
                } if event_is_takers(events, event) => {
                    preview.unfilled_qty = *unfilled_qty;
                    preview.status = Some(ended_status(*end).into());
                    preview.cancel_reason = reason.map(|r| enum_name(&r));
                }
                _ => {}
            }
        }
        preview.fees = format_cash(fees);
        preview.fill_prices(context, notional_units_x_qty);
        preview.fill_cash(context, engine);
        preview
    }

    /// The average price (to 6 decimals) and its slippage in bps (to 2 decimals) against the
    /// best opposite price and the mid at arrival, each an exact ratio rounded half to even.
    fn fill_prices(&mut self, context: &Context, notional_units_x_qty: u128) {
        if self.filled_qty == 0 {
            return;
        }
        let (notional, filled) = (notional_units_x_qty as i128, self.filled_qty as i128);
        // Price units are 1e-4; the average is written in 1e-6.
        let avg_micros = divide_half_even(notional * 100, filled) as i64;
        self.avg_price = Some(fixed_point(avg_micros, 6, 0));
        let outcome = context.request.outcome;
        let buying = context.request.side == Side::Buy;
        // (average - reference) / reference in hundredths of a basis point, where the
        // reference is `reference_x2 / 2` price units.
        let slippage = |reference_x2: i128| {
            let moved = 2 * notional - filled * reference_x2;
            let moved = if buying { moved } else { -moved };
            let hundredths = divide_half_even(moved * 1_000_000, filled * reference_x2);
            fixed_point(hundredths as i64, 2, 0)
        };
        if let Some(best) = context.best_yes_units {
            self.slippage_bps_vs_best = Some(slippage(2 * outcome_units(outcome, best) as i128));
        }
        if let Some(mid_x2) = context.mid_yes_units_x2 {
            let mid_x2 = match outcome {
                Outcome::Yes => mid_x2 as i128,
                Outcome::No => 20_000 - mid_x2 as i128,
            };
            self.slippage_bps_vs_mid = Some(slippage(mid_x2));
        }
    }

    fn fill_cash(&mut self, context: &Context, engine: &Engine) {
        let after = engine.balance(TRADER).unwrap_or_default();
        let total = |cash: Cash| cash.available_micros + cash.locked_micros;
        self.cash_delta = format_cash(total(after) - total(context.before));
        self.cash_locked = format_cash(after.locked_micros);
        let position = engine.position(TRADER, MARKET);
        self.position = Some(PositionPreview {
            yes_shares: position.total(Outcome::Yes),
            no_shares: position.total(Outcome::No),
        });
    }
}

fn outcome_units(outcome: Outcome, yes_units: u16) -> u16 {
    match outcome {
        Outcome::Yes => yes_units,
        Outcome::No => complement_units(yes_units),
    }
}

/// The taker is the order the command accepted; makers (house orders) end too.
fn event_is_takers(events: &[Event], ended: &Event) -> bool {
    let taker = events.iter().find_map(|e| match e {
        Event::OrderAccepted { order, .. } => Some(*order),
        _ => None,
    });
    matches!(ended, Event::OrderEnded { order, .. } if Some(*order) == taker)
}

fn rested_status(filled_qty: u64) -> &'static str {
    if filled_qty == 0 {
        "OPEN"
    } else {
        "PARTIALLY_FILLED"
    }
}

fn ended_status(end: OrderEnd) -> &'static str {
    match end {
        OrderEnd::Filled => "FILLED",
        OrderEnd::Cancelled => "CANCELLED",
        OrderEnd::Expired => "EXPIRED",
    }
}

fn enum_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
