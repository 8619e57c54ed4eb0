//! Every open order as clients see it, kept up to date from the engine's events, so replies and
//! the `orders:` / `fills:` topics are rendered without reading a row back.
//!
//! Loaded from the `orders` projection at start (open orders only), then changed by events
//! alone: an accept creates the state, trades fill it, rest/reduce/amend events restate its
//! sizes and an end moves it to the batch's retired orders, which stay readable until the next
//! batch begins (a reply shows the order as its batch left it). In debug builds every touched
//! open order is compared with the engine's own view after each batch. Must never read the
//! database after start, or hold an order that is neither open nor ended in the current batch.
//!
//! It also keeps, per user, the `feeReserve` of their resting BUY orders summed (the part of
//! their locked cash that only rounds maker fees), moved with every change of an order's
//! remaining quantity, so each balance message carries it as of its own command.

use std::collections::HashMap;

use engine::units::complement_units;
use engine::{Event, MarketParams, OrderId, Outcome, UserId};
use sqlx::Row;
use uuid::Uuid;

use crate::db::Db;
use crate::domain::{format_average_price, format_cash, format_price, rfc3339, wire_name};
use crate::ids::{order_uuid, trade_uuid};
use crate::wire::{FillBody, LockTerms, OrderBody};

/// One order's state: what `OrderBody` shows, in numbers.
#[derive(Clone, Debug)]
struct OrderState {
    user: UserId,
    market_id: Uuid,
    client_order_id: Option<String>,
    side: String,
    outcome: Outcome,
    order_type: String,
    time_in_force: String,
    self_trade_prevention: String,
    post_only: bool,
    reduce_only: bool,
    /// The limit in the order's outcome (a MARKET order's protection limit, not shown).
    price_units: u16,
    qty: u64,
    filled_qty: u64,
    remaining_qty: u64,
    /// Sum of qty x price over the fills, in the order's outcome.
    filled_notional_units: u64,
    /// The end's wire name once ended.
    ended: Option<String>,
    cancel_reason: Option<String>,
    expires_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl OrderState {
    /// (locked, fee reserve) in micro-dollars, by the order's market's terms.
    fn locks(&self, terms: Option<&LockTerms>) -> (i64, i64) {
        terms.map_or((0, 0), |terms| {
            terms.order_locks(self.resting_buy(), self.remaining_qty, self.price_units)
        })
    }

    /// The fee reserve alone (kept summed per user on every event: no full lock computed).
    fn fee_reserve(&self, terms: Option<&LockTerms>) -> i64 {
        terms.map_or(0, |terms| {
            terms.fee_reserve(self.resting_buy(), self.remaining_qty)
        })
    }

    fn resting_buy(&self) -> bool {
        self.side == "BUY" && self.ended.is_none()
    }

    fn body(&self, order: OrderId, terms: Option<&LockTerms>) -> OrderBody {
        let (locked, fee_reserve) = self.locks(terms);
        let status = match &self.ended {
            Some(end) => end.clone(),
            None if self.filled_qty > 0 => "PARTIALLY_FILLED".to_owned(),
            None => "OPEN".to_owned(),
        };
        OrderBody {
            id: order_uuid(order),
            client_order_id: self.client_order_id.clone(),
            market_id: self.market_id,
            side: self.side.clone(),
            outcome: outcome_name(self.outcome).to_owned(),
            order_type: self.order_type.clone(),
            price: (self.order_type == "LIMIT").then(|| format_price(self.price_units.into())),
            qty: clamp(self.qty),
            filled_qty: clamp(self.filled_qty),
            remaining_qty: clamp(self.remaining_qty),
            locked: format_cash(locked),
            fee_reserve: format_cash(fee_reserve),
            avg_fill_price: format_average_price(self.filled_notional_units, self.filled_qty),
            status,
            cancel_reason: self.cancel_reason.clone(),
            time_in_force: self.time_in_force.clone(),
            expires_at: self.expires_at.map(rfc3339),
            post_only: self.post_only,
            reduce_only: self.reduce_only,
            self_trade_prevention: self.self_trade_prevention.clone(),
            queue_position: None,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }

    /// `yes_units` (a trade's YES price) in this order's outcome.
    fn own_price_units(&self, yes_units: u16) -> u16 {
        match self.outcome {
            Outcome::Yes => yes_units,
            Outcome::No => complement_units(yes_units),
        }
    }
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Yes => "YES",
        Outcome::No => "NO",
    }
}

/// One side of a trade, as the fill of the order on that side.
pub struct FillSide<'a> {
    pub trade: engine::TradeId,
    pub order: OrderId,
    pub maker: bool,
    pub yes_price_units: u16,
    pub qty: u64,
    pub fee_micros: i64,
    pub kind: &'a str,
    pub ts_micros: i64,
}

#[derive(Default)]
pub struct OrderStates {
    open: HashMap<OrderId, OrderState>,
    /// Orders that ended in the current batch, readable until the next one starts.
    retired: HashMap<OrderId, OrderState>,
    /// Every fill of the current batch, per order, oldest first.
    batch_fills: HashMap<OrderId, Vec<FillBody>>,
    /// Each market's lock terms, by market id.
    terms: HashMap<Uuid, LockTerms>,
    /// Per user, the fee reserves of their open orders summed, in micro-dollars.
    fee_reserves: HashMap<UserId, i64>,
}

impl OrderStates {
    /// Every open order, as the projection holds it.
    pub async fn load(db: &Db) -> Result<OrderStates, sqlx::Error> {
        let mut states = OrderStates::default();
        let markets =
            sqlx::query("SELECT id, maker_fee_bps, taker_fee_bps, lock_rule FROM markets")
                .fetch_all(&db.pool)
                .await?;
        for row in markets {
            let id: String = row.try_get("id")?;
            let id = Uuid::parse_str(&id)
                .map_err(|_| sqlx::Error::Decode("markets.id is not a UUID".into()))?;
            states.terms.insert(id, LockTerms::from_row(&row)?);
        }
        let rows = sqlx::query(
            "SELECT o.engine_order_id, o.engine_user_id, m.id AS market_id, o.client_order_id, \
             o.side, o.outcome, o.order_type, o.time_in_force, o.self_trade_prevention, \
             CAST(CASE WHEN o.post_only THEN 1 ELSE 0 END AS BIGINT) AS post_only, \
             CAST(CASE WHEN o.reduce_only THEN 1 ELSE 0 END AS BIGINT) AS reduce_only, \
             o.price_units, o.qty, o.filled_qty, o.remaining_qty, o.filled_notional_units, \
             o.expires_at, o.created_at, o.updated_at \
             FROM orders o JOIN markets m ON m.engine_market_id = o.engine_market_id \
             WHERE o.status IN ('OPEN', 'PARTIALLY_FILLED')",
        )
        .fetch_all(&db.pool)
        .await?;
        for row in rows {
            let (order, state) = state_from_row(&row)?;
            let fee_reserve = state.fee_reserve(states.terms.get(&state.market_id));
            *states.fee_reserves.entry(state.user).or_default() += fee_reserve;
            states.open.insert(order, state);
        }
        Ok(states)
    }

    /// A market created after the start: its orders' locks follow its terms.
    pub fn market(&mut self, id: Uuid, params: &MarketParams) {
        self.terms.insert(id, LockTerms::of(params));
    }

    /// The fee reserves of `user`'s open orders summed, in micro-dollars.
    pub fn fee_reserve(&self, user: UserId) -> i64 {
        self.fee_reserves.get(&user).copied().unwrap_or(0)
    }

    /// The fee reserve `order` holds while open (0 once it is not).
    fn open_fee_reserve(&self, order: OrderId) -> i64 {
        self.open.get(&order).map_or(0, |state| {
            state.fee_reserve(self.terms.get(&state.market_id))
        })
    }

    /// Moves `user`'s summed fee reserve by what `order`'s changed since `before`.
    fn settle_fee_reserve(&mut self, user: UserId, order: OrderId, before: i64) {
        let change = self.open_fee_reserve(order) - before;
        if change != 0 {
            *self.fee_reserves.entry(user).or_default() += change;
        }
    }

    /// Forgets the previous batch's retired orders and fills.
    pub fn begin_batch(&mut self) {
        self.retired.clear();
        self.batch_fills.clear();
    }

    /// The owner of an open order, or of one retired in this batch.
    pub fn owner(&self, order: OrderId) -> Option<UserId> {
        self.state(order).map(|state| state.user)
    }

    /// The order as it stands (open, or ended in this batch).
    pub fn body(&self, order: OrderId) -> Option<OrderBody> {
        self.state(order)
            .map(|state| state.body(order, self.terms.get(&state.market_id)))
    }

    /// The order's fills in this batch, oldest first.
    pub fn batch_fills(&self, order: OrderId) -> &[FillBody] {
        self.batch_fills.get(&order).map_or(&[], Vec::as_slice)
    }

    fn state(&self, order: OrderId) -> Option<&OrderState> {
        self.open.get(&order).or_else(|| self.retired.get(&order))
    }

    /// Applies one order event at `ts`; answers the order it touched and its owner, if any.
    pub fn apply(
        &mut self,
        event: &Event,
        market_id: Option<Uuid>,
        ts: i64,
    ) -> Option<(OrderId, UserId)> {
        let order = match event {
            Event::OrderAccepted { order, .. }
            | Event::OrderRested { order, .. }
            | Event::OrderReduced { order, .. }
            | Event::OrderAmended { order, .. }
            | Event::OrderEnded { order, .. } => *order,
            _ => return None,
        };
        let before = self.open_fee_reserve(order);
        let touched = self.restate(event, market_id, ts);
        if let Some((order, user)) = touched {
            self.settle_fee_reserve(user, order, before);
        }
        touched
    }

    fn restate(
        &mut self,
        event: &Event,
        market_id: Option<Uuid>,
        ts: i64,
    ) -> Option<(OrderId, UserId)> {
        let (order, state) = match event {
            Event::OrderAccepted {
                order,
                request,
                qty,
                price_units,
            } => {
                let state = OrderState {
                    user: request.user,
                    market_id: market_id.unwrap_or_default(),
                    client_order_id: request.client_order_id.map(|id| id.as_str().to_owned()),
                    side: wire_name(&request.side),
                    outcome: request.outcome,
                    order_type: wire_name(&request.order_type),
                    time_in_force: wire_name(&request.time_in_force),
                    self_trade_prevention: wire_name(&request.self_trade_prevention),
                    post_only: request.post_only,
                    reduce_only: request.reduce_only,
                    price_units: *price_units,
                    qty: *qty,
                    filled_qty: 0,
                    remaining_qty: *qty,
                    filled_notional_units: 0,
                    ended: None,
                    cancel_reason: None,
                    expires_at: request
                        .expires_at_micros
                        .map(|at| i64::try_from(at).unwrap_or(i64::MAX)),
                    created_at: ts,
                    updated_at: ts,
                };
                self.open.insert(*order, state);
                return Some((*order, request.user));
            }
            Event::OrderRested {
                order,
                remaining_qty,
                ..
            } => {
                let state = self.open.get_mut(order)?;
                state.remaining_qty = *remaining_qty;
                (*order, state)
            }
            Event::OrderReduced {
                order,
                qty,
                remaining_qty,
                ..
            } => {
                let state = self.open.get_mut(order)?;
                state.qty = *qty;
                state.remaining_qty = *remaining_qty;
                (*order, state)
            }
            Event::OrderAmended {
                order,
                qty,
                price_units,
                remaining_qty,
                ..
            } => {
                let state = self.open.get_mut(order)?;
                state.qty = *qty;
                state.price_units = *price_units;
                state.remaining_qty = *remaining_qty;
                (*order, state)
            }
            Event::OrderEnded {
                order,
                end,
                reason,
                filled_qty,
                unfilled_qty,
                ..
            } => {
                let mut state = self.open.remove(order)?;
                state.ended = Some(wire_name(end));
                state.cancel_reason = reason.as_ref().map(wire_name);
                state.qty = filled_qty + unfilled_qty;
                state.filled_qty = *filled_qty;
                state.remaining_qty = 0;
                state.updated_at = ts;
                let user = state.user;
                self.retired.insert(*order, state);
                return Some((*order, user));
            }
            _ => return None,
        };
        state.updated_at = ts;
        Some((order, state.user))
    }

    /// Records one side of a trade; answers the fill as its owner sees it.
    pub fn fill(&mut self, side: FillSide<'_>) -> Option<(UserId, FillBody)> {
        let before = self.open_fee_reserve(side.order);
        let state = self.open.get_mut(&side.order)?;
        let price_units = state.own_price_units(side.yes_price_units);
        state.filled_qty += side.qty;
        state.remaining_qty = state.remaining_qty.saturating_sub(side.qty);
        state.filled_notional_units += side.qty * u64::from(price_units);
        state.updated_at = side.ts_micros;
        let fill = FillBody {
            id: trade_uuid(side.trade),
            order_id: order_uuid(side.order),
            market_id: state.market_id,
            side: state.side.clone(),
            outcome: outcome_name(state.outcome).to_owned(),
            price: format_price(price_units.into()),
            qty: clamp(side.qty),
            fee: format_cash(side.fee_micros),
            role: if side.maker { "MAKER" } else { "TAKER" }.to_owned(),
            kind: side.kind.to_owned(),
            created_at: rfc3339(side.ts_micros),
        };
        let user = state.user;
        self.batch_fills
            .entry(side.order)
            .or_default()
            .push(fill.clone());
        self.settle_fee_reserve(user, side.order, before);
        Some((user, fill))
    }

    /// The first open order whose sizes differ from the engine's, described (debug builds
    /// check this after every batch: the states must follow the engine exactly).
    pub fn first_difference(
        &self,
        engine: &engine::Engine,
        orders: impl Iterator<Item = OrderId>,
    ) -> Option<String> {
        for order in orders {
            let Some(state) = self.open.get(&order) else {
                continue;
            };
            let Some(view) = engine.order(order) else {
                return Some(format!("order {} is open here, not in the engine", order.0));
            };
            let ours = (
                state.price_units,
                state.qty,
                state.filled_qty,
                state.remaining_qty,
                state.locks(self.terms.get(&state.market_id)).0,
            );
            let theirs = (
                view.price_units,
                view.qty,
                view.filled_qty,
                view.remaining_qty,
                view.locked_micros,
            );
            if ours != theirs {
                return Some(format!(
                    "order {}: (price, qty, filled, remaining, locked) {ours:?} here, \
                     {theirs:?} in the engine",
                    order.0
                ));
            }
        }
        None
    }
}

fn state_from_row(row: &sqlx::any::AnyRow) -> Result<(OrderId, OrderState), sqlx::Error> {
    let decode = |what: &str| sqlx::Error::Decode(format!("orders.{what} out of range").into());
    let unsigned = |value: i64, what: &str| u64::try_from(value).map_err(|_| decode(what));
    let order = OrderId(unsigned(
        row.try_get("engine_order_id")?,
        "engine_order_id",
    )?);
    let user: i64 = row.try_get("engine_user_id")?;
    let market_id: String = row.try_get("market_id")?;
    let outcome: String = row.try_get("outcome")?;
    let price_units: i64 = row.try_get("price_units")?;
    let state = OrderState {
        user: UserId(u32::try_from(user).map_err(|_| decode("engine_user_id"))?),
        market_id: Uuid::parse_str(&market_id).map_err(|_| decode("market id"))?,
        client_order_id: row.try_get("client_order_id")?,
        side: row.try_get("side")?,
        outcome: if outcome == "YES" {
            Outcome::Yes
        } else {
            Outcome::No
        },
        order_type: row.try_get("order_type")?,
        time_in_force: row.try_get("time_in_force")?,
        self_trade_prevention: row.try_get("self_trade_prevention")?,
        post_only: row.try_get::<i64, _>("post_only")? != 0,
        reduce_only: row.try_get::<i64, _>("reduce_only")? != 0,
        price_units: u16::try_from(price_units).map_err(|_| decode("price_units"))?,
        qty: unsigned(row.try_get("qty")?, "qty")?,
        filled_qty: unsigned(row.try_get("filled_qty")?, "filled_qty")?,
        remaining_qty: unsigned(row.try_get("remaining_qty")?, "remaining_qty")?,
        filled_notional_units: unsigned(
            row.try_get("filled_notional_units")?,
            "filled_notional_units",
        )?,
        ended: None,
        cancel_reason: None,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    };
    Ok((order, state))
}
