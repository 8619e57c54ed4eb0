//! A slow, obviously-correct model of the engine, for differential tests, the simulator and
//! the fuzzers: the same commands must give the same events, results and snapshot.
//!
//! Owns nothing the engine uses. Resting orders live in one `BTreeMap` with a priority stamp;
//! the book is found by scanning it; locked cash, reserved shares and level totals are never
//! stored but derived from the open orders every time they are needed; net `BookLevel`,
//! `Position` and `Balance` events come from diffing the whole state before and after a
//! command, and every plan (FOK, MARKET) is a trial run on a clone. It must never call into
//! the engine's book, ledger or matcher, and never trade speed for simplicity: it exists to be
//! read and believed.

use alloc::collections::BTreeMap;

use crate::command::{Command, MarketParams, Op, PlaceOrder, FORMAT_VERSION};
use crate::engine::Config;
use crate::event::Event;
use crate::ledger::{Cash, Position};
use crate::reject::Reject;
use crate::snapshot::{ClientIdSnapshot, MarketSnapshot, OrderSnapshot, Snapshot, UserSnapshot};
use crate::types::{
    BookSide, CancelReason, ClientOrderId, FillKind, MarketId, MarketState, OrderEnd, OrderId,
    OrderType, Outcome, Resolution, SelfTradePrevention, Side, TimeInForce, TradeId, UserId,
};
use crate::units::{
    LockRule, BATCH_ITEMS_MAX, CASH_IN_SYSTEM_MICROS_MAX, CLIENT_ORDER_IDS_KEPT, FEE_RATE_BPS_MAX,
    OPEN_ORDERS_MAX, ORDER_QTY_LIMIT, SLIPPAGE_BPS_MAX, TICK_UNITS_ALLOWED, TRANSFER_MICROS_MAX,
};

const SCALE: i128 = 10_000;
const MICROS_PER_UNIT: i128 = 100;
const MICROS_PER_SHARE: i128 = 1_000_000;

/// Cash value of `qty` shares at `price` (price units of its outcome).
fn value(qty: u64, price: u16) -> i128 {
    qty as i128 * price as i128 * MICROS_PER_UNIT
}

/// `qty * p * (1 - p)` in units of 1e-8 dollars.
fn fee_weight(qty: u64, yes_price: u16) -> i128 {
    qty as i128 * yes_price as i128 * (SCALE - yes_price as i128)
}

/// A fee of `rate_bps` on a fee weight, in micros, rounded up.
fn fee_up(rate_bps: i32, weight: i128) -> i128 {
    let numerator = rate_bps as i128 * weight;
    (numerator + 999_999) / 1_000_000
}

/// A maker's fee on one fill: rounded up when paid, rounded down when a rebate.
fn maker_fee(rate_bps: i32, qty: u64, yes_price: u16) -> i128 {
    let weight = fee_weight(qty, yes_price);
    if rate_bps >= 0 {
        fee_up(rate_bps, weight)
    } else {
        -(-rate_bps as i128 * weight / 1_000_000)
    }
}

/// What a resting BUY of `remaining` shares at outcome limit `limit` must hold (DESIGN.md).
fn buy_reserve(remaining: u64, limit: u16, params: &MarketParams) -> i128 {
    let rate = params.maker_fee_bps.max(params.taker_fee_bps).max(0);
    let p = limit as i128;
    let worst_weight = if 2 * p < SCALE {
        p * (SCALE - p)
    } else {
        SCALE * SCALE / 4
    };
    let buffer = if per_share_buffer(params) {
        remaining as i128
    } else {
        0
    };
    value(remaining, limit) + fee_up(rate, remaining as i128 * worst_weight) + buffer
}

fn per_share_buffer(params: &MarketParams) -> bool {
    match params.lock_rule {
        LockRule::BufferAlways => true,
        LockRule::BufferForMakerFee => params.maker_fee_bps > 0,
    }
}

/// What a BUY that meets the book and may then rest needs beyond its reserve: one micro-dollar
/// where its taker fee (rounded up over its fills) and its remainder's fee reserve (rounded up
/// on its own) could together exceed the single rounding of its reserve, unbuffered.
fn taking_extra(params: &MarketParams, takes_and_may_rest: bool) -> i128 {
    i128::from(takes_and_may_rest && params.taker_fee_bps > 0 && !per_share_buffer(params))
}

fn yes_price(outcome: Outcome, price: u16) -> u16 {
    match outcome {
        Outcome::Yes => price,
        Outcome::No => 10_000 - price,
    }
}

fn book_side(side: Side, outcome: Outcome) -> BookSide {
    match (side, outcome) {
        (Side::Buy, Outcome::Yes) | (Side::Sell, Outcome::No) => BookSide::Bid,
        _ => BookSide::Ask,
    }
}

#[derive(Clone, Debug)]
struct Order {
    id: OrderId,
    user: UserId,
    market: MarketId,
    side: Side,
    outcome: Outcome,
    order_type: OrderType,
    time_in_force: TimeInForce,
    stp: SelfTradePrevention,
    post_only: bool,
    reduce_only: bool,
    limit: u16,
    qty: u64,
    filled: u64,
    expires_at: Option<u64>,
    /// Time priority: lower is earlier. Set whenever the order (re-)enters the book.
    priority: u64,
}

impl Order {
    fn remaining(&self) -> u64 {
        self.qty - self.filled
    }

    fn book_side(&self) -> BookSide {
        book_side(self.side, self.outcome)
    }

    fn book_price(&self) -> u16 {
        yes_price(self.outcome, self.limit)
    }
}

#[derive(Clone, Debug)]
struct Market {
    params: MarketParams,
    state: MarketState,
    resolution: Option<Resolution>,
    book_seq: u64,
    escrow: i128,
}

#[derive(Clone, Debug)]
struct ClientEntry {
    id: ClientOrderId,
    order: OrderId,
    request: PlaceOrder,
}

#[derive(Clone, Debug, Default)]
struct User {
    /// Available plus locked: locked is derived from the user's open BUY orders.
    cash: i128,
    /// Every client order id placed, oldest first.
    client_history: Vec<ClientEntry>,
}

/// An order while it takes liquidity (it is not in the book).
#[derive(Clone, Debug)]
struct Taker {
    order: Order,
    /// For a cash-sized plan: what it may spend, fees included.
    budget: Option<i128>,
}

/// How a walk ended, with what planning needs to know.
#[derive(Clone, Copy, Debug, Default)]
struct WalkOutcome {
    stopped_by_self_trade: bool,
    /// The taker met one of its own user's orders.
    met_own_order: bool,
    /// Liquidity from another user was within the limit.
    crossed: bool,
    /// Shares paid for in the taker's outcome, and the taker's total fee.
    cost: i128,
}

#[derive(Clone, Debug)]
pub struct Reference {
    config: Config,
    now: u64,
    next_order_id: u64,
    next_trade_id: u64,
    next_priority: u64,
    users: Vec<User>,
    markets: Vec<Market>,
    /// Every open order; all of them rest in the book.
    orders: BTreeMap<OrderId, Order>,
    /// Total (free plus reserved) YES and NO shares per (market, user).
    /// Signed only so a trial run on a copy may oversell before the shares check rejects it;
    /// real state never goes negative (asserted wherever shares are read).
    shares: BTreeMap<(MarketId, UserId), [i128; 2]>,
    fees: i128,
    external: i128,
}

impl Reference {
    pub fn new(config: Config) -> Reference {
        Reference {
            config,
            now: 0,
            next_order_id: 1,
            next_trade_id: 1,
            next_priority: 0,
            users: Vec::new(),
            markets: Vec::new(),
            orders: BTreeMap::new(),
            shares: BTreeMap::new(),
            fees: 0,
            external: 0,
        }
    }

    pub fn apply(&mut self, cmd: &Command, out: &mut Vec<Event>) -> Result<(), Reject> {
        if cmd.ts_micros < self.now {
            return Err(Reject::TimestampBackwards);
        }
        let before = self.observables();
        self.now = cmd.ts_micros;
        self.expire_and_close(out);
        let result = self.execute(&cmd.op, out);
        self.emit_net_changes(&before, out);
        result
    }

    fn execute(&mut self, op: &Op, out: &mut Vec<Event>) -> Result<(), Reject> {
        match op {
            Op::Tick => Ok(()),
            Op::CreateUser => self.create_user(out),
            Op::CreateMarket(params) => self.create_market(params, out),
            Op::HaltMarket { market } => {
                self.transition(*market, MarketState::Open, MarketState::Halted, out)
            }
            Op::ResumeMarket { market } => {
                self.transition(*market, MarketState::Halted, MarketState::Open, out)
            }
            Op::CloseMarket { market } => match self.market(*market)?.state {
                MarketState::Open | MarketState::Halted => {
                    self.close(*market, CancelReason::MarketClosed, out);
                    Ok(())
                }
                _ => Err(Reject::InvalidMarketTransition),
            },
            Op::ResolveMarket { market, resolution } => self.resolve(*market, *resolution, out),
            Op::Deposit {
                user,
                amount_micros,
            } => self.deposit(*user, *amount_micros, out),
            Op::Withdraw {
                user,
                amount_micros,
            } => self.withdraw(*user, *amount_micros, out),
            Op::Split { user, market, qty } => self.split(*user, *market, *qty, out),
            Op::Merge { user, market, qty } => self.merge(*user, *market, *qty, out),
            Op::TransferShares {
                from,
                to,
                market,
                outcome,
                qty,
            } => self.transfer_shares(*from, *to, *market, *outcome, *qty, out),
            Op::Place(request) => self.place(request, out),
            Op::Cancel { user, order } => {
                self.owned(*user, *order)?;
                self.end(
                    *order,
                    OrderEnd::Cancelled,
                    Some(CancelReason::UserRequested),
                    out,
                );
                Ok(())
            }
            Op::CancelAll { user, market } => self.cancel_all(*user, *market, out),
            Op::Amend {
                user,
                order,
                qty,
                price_units,
            } => self.amend(*user, *order, *qty, *price_units, out),
            Op::Batch {
                user,
                cancels,
                places,
            } => self.batch(*user, cancels, places, out),
        }
    }

    // ----- derived state -----

    fn user(&self, user: UserId) -> Result<&User, Reject> {
        self.users.get(user.0 as usize).ok_or(Reject::UnknownUser)
    }

    fn market(&self, market: MarketId) -> Result<&Market, Reject> {
        self.markets
            .get(market.0 as usize)
            .ok_or(Reject::UnknownMarket)
    }

    fn params(&self, market: MarketId) -> &MarketParams {
        &self.markets[market.0 as usize].params
    }

    fn order_reserve(&self, order: &Order) -> i128 {
        match order.side {
            Side::Buy => buy_reserve(order.remaining(), order.limit, self.params(order.market)),
            Side::Sell => 0,
        }
    }

    fn locked(&self, user: UserId) -> i128 {
        self.orders
            .values()
            .filter(|o| o.user == user)
            .map(|o| self.order_reserve(o))
            .sum()
    }

    fn available(&self, user: UserId) -> i128 {
        self.users[user.0 as usize].cash - self.locked(user)
    }

    fn position(&self, market: MarketId, user: UserId) -> Position {
        let [yes, no] = self.holding(market, user);
        let reserved = |outcome: Outcome| -> u64 {
            self.orders
                .values()
                .filter(|o| o.market == market && o.user == user)
                .filter(|o| o.side == Side::Sell && o.outcome == outcome)
                .map(Order::remaining)
                .sum()
        };
        let (yes_reserved, no_reserved) = (reserved(Outcome::Yes), reserved(Outcome::No));
        Position {
            yes_free: yes - yes_reserved,
            yes_reserved,
            no_free: no - no_reserved,
            no_reserved,
        }
    }

    /// Total YES and NO shares of a user in a market.
    fn holding(&self, market: MarketId, user: UserId) -> [u64; 2] {
        let shares = self.shares.get(&(market, user)).copied().unwrap_or([0, 0]);
        shares.map(|n| u64::try_from(n).expect("share balances are never negative"))
    }

    fn free(&self, market: MarketId, user: UserId, outcome: Outcome) -> u64 {
        self.position(market, user).free(outcome)
    }

    fn shares_mut(&mut self, market: MarketId, user: UserId, outcome: Outcome) -> &mut i128 {
        let entry = self.shares.entry((market, user)).or_insert([0, 0]);
        &mut entry[outcome as usize]
    }

    /// Resting orders of one side of a market, best first, each level in time priority.
    fn book(&self, market: MarketId, side: BookSide) -> Vec<&Order> {
        let mut orders: Vec<&Order> = self
            .orders
            .values()
            .filter(|o| o.market == market && o.book_side() == side)
            .collect();
        orders.sort_by_key(|o| {
            let price = o.book_price() as i64;
            let better_first = if side == BookSide::Bid { -price } else { price };
            (better_first, o.priority)
        });
        orders
    }

    fn best(&self, market: MarketId, side: BookSide) -> Option<u16> {
        self.book(market, side).first().map(|o| o.book_price())
    }

    fn levels(&self) -> BTreeMap<(MarketId, BookSide, u16), u64> {
        let mut levels = BTreeMap::new();
        for order in self.orders.values() {
            let key = (order.market, order.book_side(), order.book_price());
            *levels.entry(key).or_insert(0) += order.remaining();
        }
        levels
    }

    /// Everything net events report: level sizes, positions and balances.
    fn observables(&self) -> Observables {
        // One pass over the open orders gives every reservation, so this stays linear in the
        // state (the simulator runs the reference over long sequences).
        let mut locked = vec![0i128; self.users.len()];
        let mut reserved: BTreeMap<(MarketId, UserId), [u64; 2]> = BTreeMap::new();
        for order in self.orders.values() {
            match order.side {
                Side::Buy => locked[order.user.0 as usize] += self.order_reserve(order),
                Side::Sell => {
                    let entry = reserved.entry((order.market, order.user)).or_default();
                    entry[order.outcome as usize] += order.remaining();
                }
            }
        }
        let positions = self
            .shares
            .keys()
            .map(|&key| {
                let [yes, no] = self.holding(key.0, key.1);
                let [yes_reserved, no_reserved] = reserved.get(&key).copied().unwrap_or_default();
                let position = Position {
                    yes_free: yes - yes_reserved,
                    yes_reserved,
                    no_free: no - no_reserved,
                    no_reserved,
                };
                (key, position)
            })
            .collect();
        let balances = self
            .users
            .iter()
            .zip(locked)
            .map(|(user, locked)| Cash {
                available_micros: (user.cash - locked) as i64,
                locked_micros: locked as i64,
            })
            .collect();
        Observables {
            levels: self.levels(),
            positions,
            balances,
        }
    }

    fn balance(&self, user: UserId) -> Cash {
        let locked = self.locked(user);
        Cash {
            available_micros: (self.users[user.0 as usize].cash - locked) as i64,
            locked_micros: locked as i64,
        }
    }

    fn emit_net_changes(&mut self, before: &Observables, out: &mut Vec<Event>) {
        let after = self.observables();
        let mut level_keys: Vec<_> = before.levels.keys().chain(after.levels.keys()).collect();
        level_keys.sort();
        level_keys.dedup();
        let mut seq_market = None;
        for &(market, side, price) in level_keys {
            let key = (market, side, price);
            let old = before.levels.get(&key).copied().unwrap_or(0);
            let qty = after.levels.get(&key).copied().unwrap_or(0);
            if old == qty {
                continue;
            }
            if seq_market != Some(market) {
                self.markets[market.0 as usize].book_seq += 1;
                seq_market = Some(market);
            }
            out.push(Event::BookLevel {
                market,
                book_seq: self.markets[market.0 as usize].book_seq,
                side,
                price_units: price,
                qty,
            });
        }
        let mut position_keys: Vec<_> = before
            .positions
            .keys()
            .chain(after.positions.keys())
            .collect();
        position_keys.sort();
        position_keys.dedup();
        for &(market, user) in position_keys {
            let old = before.positions.get(&(market, user)).copied();
            let new = after.positions.get(&(market, user)).copied();
            let (old, new) = (old.unwrap_or_default(), new.unwrap_or_default());
            if old != new {
                out.push(Event::Position {
                    user,
                    market,
                    position: new,
                });
            }
        }
        for (index, new) in after.balances.iter().enumerate() {
            let old = before.balances.get(index).copied().unwrap_or_default();
            if old != *new {
                out.push(Event::Balance {
                    user: UserId(index as u32),
                    available_micros: new.available_micros,
                    locked_micros: new.locked_micros,
                });
            }
        }
    }

    // ----- clock, users, markets, money -----

    fn expire_and_close(&mut self, out: &mut Vec<Event>) {
        let mut due: Vec<(u64, OrderId)> = self
            .orders
            .values()
            .filter_map(|o| o.expires_at.map(|at| (at, o.id)))
            .filter(|(at, _)| *at <= self.now)
            .collect();
        due.sort();
        for (_, order) in due {
            self.end(order, OrderEnd::Expired, None, out);
        }
        let mut closing: Vec<(u64, MarketId)> = self
            .markets
            .iter()
            .enumerate()
            .filter(|(_, m)| matches!(m.state, MarketState::Open | MarketState::Halted))
            .filter_map(|(i, m)| m.params.close_ts_micros.map(|at| (at, MarketId(i as u32))))
            .filter(|(at, _)| *at <= self.now)
            .collect();
        closing.sort();
        for (_, market) in closing {
            self.close(market, CancelReason::MarketClosed, out);
        }
    }

    fn create_user(&mut self, out: &mut Vec<Event>) -> Result<(), Reject> {
        if self.users.len() >= self.config.users_max as usize {
            return Err(Reject::TooManyUsers);
        }
        self.users.push(User::default());
        out.push(Event::UserCreated {
            user: UserId(self.users.len() as u32 - 1),
        });
        Ok(())
    }

    fn create_market(&mut self, params: &MarketParams, out: &mut Vec<Event>) -> Result<(), Reject> {
        if self.markets.len() >= self.config.markets_max as usize {
            return Err(Reject::TooManyMarkets);
        }
        // (A `Slug` is valid by construction.)
        let valid = TICK_UNITS_ALLOWED.contains(&params.tick_units)
            && params.qty_min >= 1
            && params.qty_min <= params.qty_max
            && params.qty_max <= ORDER_QTY_LIMIT
            && params.taker_fee_bps >= 0
            && params.taker_fee_bps <= FEE_RATE_BPS_MAX
            && params.maker_fee_bps >= -params.taker_fee_bps
            && params.maker_fee_bps <= FEE_RATE_BPS_MAX
            && params.close_ts_micros.is_none_or(|at| at > self.now);
        if !valid {
            return Err(Reject::InvalidMarketParams);
        }
        if self.markets.iter().any(|m| m.params.slug == params.slug) {
            return Err(Reject::SlugTaken);
        }
        self.markets.push(Market {
            params: *params,
            state: MarketState::Open,
            resolution: None,
            book_seq: 0,
            escrow: 0,
        });
        out.push(Event::MarketCreated {
            market: MarketId(self.markets.len() as u32 - 1),
            params: *params,
        });
        Ok(())
    }

    fn transition(
        &mut self,
        market: MarketId,
        from: MarketState,
        to: MarketState,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        if self.market(market)?.state != from {
            return Err(Reject::InvalidMarketTransition);
        }
        self.markets[market.0 as usize].state = to;
        out.push(Event::MarketStateChanged { market, state: to });
        Ok(())
    }

    fn close(&mut self, market: MarketId, reason: CancelReason, out: &mut Vec<Event>) {
        let ids: Vec<OrderId> = self
            .orders
            .values()
            .filter(|o| o.market == market)
            .map(|o| o.id)
            .collect();
        for id in ids {
            self.end(id, OrderEnd::Cancelled, Some(reason), out);
        }
        self.markets[market.0 as usize].state = MarketState::Closed;
        out.push(Event::MarketStateChanged {
            market,
            state: MarketState::Closed,
        });
    }

    fn resolve(
        &mut self,
        market: MarketId,
        resolution: Resolution,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let state = self.market(market)?.state;
        if state == MarketState::Resolved {
            return Err(Reject::InvalidMarketTransition);
        }
        let yes_pays = resolution.yes_payout_units();
        if yes_pays > 10_000 {
            return Err(Reject::InvalidResolution);
        }
        if state != MarketState::Closed {
            self.close(market, CancelReason::MarketResolved, out);
        }
        let holders: Vec<(UserId, [u64; 2])> = self
            .shares
            .keys()
            .filter(|(m, _)| *m == market)
            .map(|&(_, user)| (user, self.holding(market, user)))
            .collect();
        for (user, [yes, no]) in holders {
            self.shares.remove(&(market, user));
            if yes == 0 && no == 0 {
                continue;
            }
            let payout = value(yes, yes_pays) + value(no, 10_000 - yes_pays);
            self.markets[market.0 as usize].escrow -= payout;
            self.users[user.0 as usize].cash += payout;
            out.push(Event::Settlement {
                market,
                user,
                yes_shares: yes,
                no_shares: no,
                payout_micros: payout as i64,
            });
        }
        assert_eq!(
            self.markets[market.0 as usize].escrow, 0,
            "escrow left over"
        );
        let state = &mut self.markets[market.0 as usize];
        state.state = MarketState::Resolved;
        state.resolution = Some(resolution);
        out.push(Event::MarketResolved { market, resolution });
        Ok(())
    }

    fn deposit(&mut self, user: UserId, amount: i64, out: &mut Vec<Event>) -> Result<(), Reject> {
        self.user(user)?;
        if !(1..=TRANSFER_MICROS_MAX).contains(&amount) {
            return Err(Reject::AmountOutOfRange);
        }
        if -self.external + amount as i128 > CASH_IN_SYSTEM_MICROS_MAX as i128 {
            return Err(Reject::CashCapExceeded);
        }
        self.external -= amount as i128;
        self.users[user.0 as usize].cash += amount as i128;
        out.push(Event::Deposited {
            user,
            amount_micros: amount,
        });
        Ok(())
    }

    fn withdraw(&mut self, user: UserId, amount: i64, out: &mut Vec<Event>) -> Result<(), Reject> {
        self.user(user)?;
        if !(1..=TRANSFER_MICROS_MAX).contains(&amount) {
            return Err(Reject::AmountOutOfRange);
        }
        if self.available(user) < amount as i128 {
            return Err(Reject::InsufficientFunds);
        }
        self.external += amount as i128;
        self.users[user.0 as usize].cash -= amount as i128;
        out.push(Event::Withdrawn {
            user,
            amount_micros: amount,
        });
        Ok(())
    }

    fn split(
        &mut self,
        user: UserId,
        market: MarketId,
        qty: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.user(user)?;
        if self.market(market)?.state != MarketState::Open {
            return Err(Reject::MarketNotOpen);
        }
        if !(1..=ORDER_QTY_LIMIT).contains(&qty) {
            return Err(Reject::QtyOutOfRange);
        }
        let cost = qty as i128 * MICROS_PER_SHARE;
        if self.available(user) < cost {
            return Err(Reject::InsufficientFunds);
        }
        self.users[user.0 as usize].cash -= cost;
        self.markets[market.0 as usize].escrow += cost;
        *self.shares_mut(market, user, Outcome::Yes) += qty as i128;
        *self.shares_mut(market, user, Outcome::No) += qty as i128;
        out.push(Event::SharesSplit { user, market, qty });
        Ok(())
    }

    fn merge(
        &mut self,
        user: UserId,
        market: MarketId,
        qty: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.user(user)?;
        if self.market(market)?.state == MarketState::Resolved {
            return Err(Reject::MarketNotOpen);
        }
        if !(1..=ORDER_QTY_LIMIT).contains(&qty) {
            return Err(Reject::QtyOutOfRange);
        }
        let position = self.position(market, user);
        if position.yes_free < qty || position.no_free < qty {
            return Err(Reject::InsufficientShares);
        }
        *self.shares_mut(market, user, Outcome::Yes) -= qty as i128;
        *self.shares_mut(market, user, Outcome::No) -= qty as i128;
        let amount = qty as i128 * MICROS_PER_SHARE;
        self.markets[market.0 as usize].escrow -= amount;
        self.users[user.0 as usize].cash += amount;
        out.push(Event::SharesMerged { user, market, qty });
        Ok(())
    }

    fn transfer_shares(
        &mut self,
        from: UserId,
        to: UserId,
        market: MarketId,
        outcome: Outcome,
        qty: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.user(from)?;
        self.user(to)?;
        if from == to {
            return Err(Reject::SameUser);
        }
        if self.market(market)?.state == MarketState::Resolved {
            return Err(Reject::MarketNotOpen);
        }
        if !(1..=ORDER_QTY_LIMIT).contains(&qty) {
            return Err(Reject::QtyOutOfRange);
        }
        let position = self.position(market, from);
        let free = match outcome {
            Outcome::Yes => position.yes_free,
            Outcome::No => position.no_free,
        };
        if free < qty {
            return Err(Reject::InsufficientShares);
        }
        *self.shares_mut(market, from, outcome) -= qty as i128;
        *self.shares_mut(market, to, outcome) += qty as i128;
        out.push(Event::SharesTransferred {
            from,
            to,
            market,
            outcome,
            qty,
        });
        Ok(())
    }

    // ----- orders -----

    /// The live record of a client order id: among the last `CLIENT_ORDER_IDS_KEPT` placed,
    /// or older but with its order still open.
    fn client_entry(&self, user: UserId, id: ClientOrderId) -> Option<&ClientEntry> {
        let history = &self.users[user.0 as usize].client_history;
        let recent_from = history.len().saturating_sub(CLIENT_ORDER_IDS_KEPT);
        history
            .iter()
            .enumerate()
            .rev()
            .filter(|(i, entry)| *i >= recent_from || self.orders.contains_key(&entry.order))
            .map(|(_, entry)| entry)
            .find(|entry| entry.id == id)
    }

    fn place(&mut self, request: &PlaceOrder, out: &mut Vec<Event>) -> Result<(), Reject> {
        self.user(request.user)?;
        if let Some(id) = request.client_order_id {
            if let Some(entry) = self.client_entry(request.user, id) {
                if entry.request != *request {
                    return Err(Reject::ClientOrderIdReused);
                }
                out.push(Event::OrderReplayed {
                    order: entry.order,
                    user: request.user,
                    client_order_id: id,
                });
                return Ok(());
            }
        }
        if self.market(request.market)?.state != MarketState::Open {
            return Err(Reject::MarketNotOpen);
        }
        self.check_shape(request)?;
        let (qty, limit) = match request.order_type {
            OrderType::Limit => self.check_limit(request)?,
            OrderType::Market => self.check_market(request)?,
        };
        let id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        out.push(Event::OrderAccepted {
            order: id,
            request: *request,
            qty,
            price_units: limit,
        });
        if let Some(client_order_id) = request.client_order_id {
            self.remember(request.user, client_order_id, id, request);
        }
        let order = Order {
            id,
            user: request.user,
            market: request.market,
            side: request.side,
            outcome: request.outcome,
            order_type: request.order_type,
            time_in_force: request.time_in_force,
            stp: request.self_trade_prevention,
            post_only: request.post_only,
            reduce_only: request.reduce_only,
            limit,
            qty,
            filled: 0,
            expires_at: request.expires_at_micros,
            priority: 0,
        };
        self.take(order, out);
        Ok(())
    }

    fn remember(&mut self, user: UserId, id: ClientOrderId, order: OrderId, request: &PlaceOrder) {
        let history = &mut self.users[user.0 as usize].client_history;
        history.push(ClientEntry {
            id,
            order,
            request: *request,
        });
        // Entries past the kept window whose orders have ended are dead: drop them now and then
        // so the history stays bounded (and cheap to clone in trial runs).
        if history.len() >= 2 * CLIENT_ORDER_IDS_KEPT {
            let recent_from = history.len() - CLIENT_ORDER_IDS_KEPT;
            let orders = &self.orders;
            let mut index = 0;
            history.retain(|entry| {
                index += 1;
                index > recent_from || orders.contains_key(&entry.order)
            });
        }
    }

    fn check_shape(&self, request: &PlaceOrder) -> Result<(), Reject> {
        let params = self.params(request.market);
        let rests = matches!(request.time_in_force, TimeInForce::Gtc | TimeInForce::Gtd);
        let fits = match request.order_type {
            OrderType::Limit => {
                request.price_units.is_some()
                    && request.qty.is_some()
                    && request.cash_micros.is_none()
                    && request.worst_price_units.is_none()
                    && request.max_slippage_bps.is_none()
                    && (rests || !request.post_only)
            }
            OrderType::Market => {
                let by_cash = request.cash_micros.is_some();
                request.price_units.is_none()
                    && !rests
                    && !request.post_only
                    && (request.qty.is_some() != by_cash)
                    && (!by_cash
                        || (request.side == Side::Buy
                            && request.time_in_force == TimeInForce::Ioc
                            && request.self_trade_prevention
                                != SelfTradePrevention::DecrementAndCancel))
            }
        };
        let gtd = request.time_in_force == TimeInForce::Gtd;
        if !fits || gtd != request.expires_at_micros.is_some() {
            return Err(Reject::InvalidOrder);
        }
        if request.expires_at_micros.is_some_and(|at| at <= self.now) {
            return Err(Reject::ExpiryInPast);
        }
        if let Some(price) = request.price_units.or(request.worst_price_units) {
            check_price(price, params.tick_units)?;
        }
        if request
            .max_slippage_bps
            .is_some_and(|bps| bps > SLIPPAGE_BPS_MAX)
        {
            return Err(Reject::InvalidOrder);
        }
        if request
            .qty
            .is_some_and(|qty| qty < params.qty_min || qty > params.qty_max)
        {
            return Err(Reject::QtyOutOfRange);
        }
        if request
            .cash_micros
            .is_some_and(|cash| !(1..=CASH_IN_SYSTEM_MICROS_MAX).contains(&cash))
        {
            return Err(Reject::AmountOutOfRange);
        }
        Ok(())
    }

    fn check_limit(&self, request: &PlaceOrder) -> Result<(u64, u16), Reject> {
        let (limit, qty) = (request.price_units.unwrap(), request.qty.unwrap());
        let side = book_side(request.side, request.outcome);
        let book_limit = yes_price(request.outcome, limit);
        let takes = self
            .best(request.market, opposite(side))
            .is_some_and(|best| crosses(side, book_limit, best));
        if request.post_only && takes {
            return Err(Reject::PostOnlyWouldTake);
        }
        let may_rest = matches!(request.time_in_force, TimeInForce::Gtc | TimeInForce::Gtd);
        if may_rest {
            let open = self
                .orders
                .values()
                .filter(|o| o.user == request.user)
                .count();
            if open >= self.config.open_orders_per_user_max as usize
                || self.orders.len() >= OPEN_ORDERS_MAX as usize
            {
                return Err(Reject::TooManyOpenOrders);
            }
        }
        if request.time_in_force == TimeInForce::Fok {
            let (filled, _) = self.trial(request, limit, qty, None);
            if filled < qty {
                return Err(Reject::FokNotFilled);
            }
        }
        self.check_reduce_only(request, qty)?;
        match request.side {
            Side::Buy => {
                let params = self.params(request.market);
                let need =
                    buy_reserve(qty, limit, params) + taking_extra(params, takes && may_rest);
                if self.available(request.user) < need {
                    return Err(Reject::InsufficientFunds);
                }
            }
            Side::Sell => self.check_shares(request, qty)?,
        }
        Ok((qty, limit))
    }

    fn check_market(&self, request: &PlaceOrder) -> Result<(u64, u16), Reject> {
        let params = self.params(request.market);
        let limit = self
            .protection_limit(request)
            .ok_or(Reject::SlippageExceeded)?;
        let qty_cap = request.qty.unwrap_or(params.qty_max);
        let budget = request.cash_micros.map(|cash| cash as i128);
        let (filled, walk) = self.trial(request, limit, qty_cap, budget);
        let by_cash = budget.is_some();
        // Meeting only its own orders is not a slippage failure: the self-trade mode decides.
        if filled == 0 && (by_cash || !walk.met_own_order) {
            if by_cash && walk.crossed {
                return Err(Reject::QtyOutOfRange);
            }
            return Err(Reject::SlippageExceeded);
        }
        if request.time_in_force == TimeInForce::Fok && filled < qty_cap {
            return Err(Reject::FokNotFilled);
        }
        let qty = if by_cash { filled } else { qty_cap };
        if qty < params.qty_min {
            return Err(Reject::QtyOutOfRange);
        }
        self.check_reduce_only(request, qty)?;
        match request.side {
            Side::Buy => {
                if self.available(request.user) < walk.cost {
                    return Err(Reject::InsufficientFunds);
                }
            }
            Side::Sell => self.check_shares(request, qty)?,
        }
        Ok((qty, limit))
    }

    /// Runs the order as a taker on a copy of the state: shares it would fill and how.
    fn trial(
        &self,
        request: &PlaceOrder,
        limit: u16,
        qty: u64,
        budget: Option<i128>,
    ) -> (u64, WalkOutcome) {
        let mut copy = self.clone();
        let mut taker = Taker {
            order: Order {
                id: OrderId(u64::MAX),
                user: request.user,
                market: request.market,
                side: request.side,
                outcome: request.outcome,
                order_type: request.order_type,
                time_in_force: request.time_in_force,
                stp: request.self_trade_prevention,
                post_only: false,
                reduce_only: false,
                limit,
                qty,
                filled: 0,
                expires_at: None,
                priority: 0,
            },
            budget,
        };
        let walk = copy.walk(&mut taker, &mut Vec::new());
        (taker.order.filled, walk)
    }

    /// A MARKET order's limit in its outcome (DESIGN.md, "Precise rules").
    fn protection_limit(&self, request: &PlaceOrder) -> Option<u16> {
        let tick = self.params(request.market).tick_units as i128;
        let buying = request.side == Side::Buy;
        let extreme = if buying { SCALE - tick } else { tick };
        let mut limit = request
            .worst_price_units
            .map_or(extreme, |worst| worst as i128);
        if let Some(bps) = request.max_slippage_bps {
            let side = book_side(request.side, request.outcome);
            let best_yes = self.best(request.market, opposite(side))?;
            let best = yes_price(request.outcome, best_yes) as i128;
            let bps = bps as i128;
            // best * (1 +- bps/10000), rounded to the tick towards the better price.
            let moved = if buying {
                let raw = best * (SCALE + bps);
                (raw / (SCALE * tick) * tick).min(extreme)
            } else {
                let raw = best * (SCALE - bps);
                (raw + SCALE * tick - 1) / (SCALE * tick) * tick
            };
            let moved = moved.max(tick);
            limit = if buying {
                limit.min(moved)
            } else {
                limit.max(moved)
            };
        }
        Some(limit as u16)
    }

    fn check_reduce_only(&self, request: &PlaceOrder, qty: u64) -> Result<(), Reject> {
        if request.reduce_only
            && request.side == Side::Buy
            && qty > self.free(request.market, request.user, request.outcome.other())
        {
            return Err(Reject::ReduceOnlyWouldIncrease);
        }
        Ok(())
    }

    fn check_shares(&self, request: &PlaceOrder, qty: u64) -> Result<(), Reject> {
        if self.free(request.market, request.user, request.outcome) < qty {
            return Err(Reject::InsufficientShares);
        }
        Ok(())
    }

    /// The order takes what it can, then rests or ends.
    fn take(&mut self, order: Order, out: &mut Vec<Event>) {
        let mut taker = Taker {
            order,
            budget: None,
        };
        let walk = self.walk(&mut taker, out);
        let mut order = taker.order;
        let end = if walk.stopped_by_self_trade {
            Some((OrderEnd::Cancelled, Some(CancelReason::SelfTrade)))
        } else if order.remaining() == 0 {
            Some((OrderEnd::Filled, None))
        } else {
            match (order.order_type, order.time_in_force) {
                (OrderType::Limit, TimeInForce::Gtc | TimeInForce::Gtd) => None,
                (OrderType::Limit, _) => Some((OrderEnd::Cancelled, Some(CancelReason::Unfilled))),
                (OrderType::Market, _) => {
                    Some((OrderEnd::Cancelled, Some(CancelReason::SlippageLimit)))
                }
            }
        };
        match end {
            Some((end, reason)) => out.push(ended(&order, end, reason)),
            None => {
                order.priority = self.next_priority;
                self.next_priority += 1;
                out.push(Event::OrderRested {
                    order: order.id,
                    market: order.market,
                    side: order.book_side(),
                    book_price_units: order.book_price(),
                    remaining_qty: order.remaining(),
                });
                self.orders.insert(order.id, order);
            }
        }
    }

    /// Matches the taker against the best opposite orders, one fill at a time.
    fn walk(&mut self, taker: &mut Taker, out: &mut Vec<Event>) -> WalkOutcome {
        let side = taker.order.book_side();
        let limit = taker.order.book_price();
        let mut outcome = WalkOutcome::default();
        let mut fee_weight_sum = 0i128;
        let mut fee_charged = 0i128;
        let mut paid = 0i128;
        while taker.order.remaining() > 0 {
            let best = self
                .book(taker.order.market, opposite(side))
                .first()
                .map(|o| (*o).clone());
            let Some(maker) = best.filter(|m| crosses(side, limit, m.book_price())) else {
                break;
            };
            if maker.user == taker.order.user {
                outcome.met_own_order = true;
                if self.prevent_self_trade(taker, &maker, out) {
                    outcome.stopped_by_self_trade = true;
                    break;
                }
                continue;
            }
            outcome.crossed = true;
            let price = maker.book_price();
            let wanted = taker.order.remaining().min(maker.remaining());
            let rate = self.params(maker.market).taker_fee_bps;
            let pay = yes_price(taker.order.outcome, price);
            let cost_of = |qty: u64| {
                paid + value(qty, pay) + fee_up(rate, fee_weight_sum + fee_weight(qty, price))
            };
            let qty = match taker.budget {
                None => wanted,
                Some(budget) => largest_within(wanted, |qty| cost_of(qty) <= budget),
            };
            if qty == 0 {
                break;
            }
            fee_weight_sum += fee_weight(qty, price);
            let taker_fee = fee_up(rate, fee_weight_sum) - fee_charged;
            fee_charged += taker_fee;
            paid += value(qty, pay);
            self.fill(&maker, &mut taker.order, price, qty, taker_fee, out);
            if qty < wanted {
                break;
            }
        }
        outcome.cost = paid + fee_charged;
        outcome
    }

    /// Returns whether the taker must stop (and be cancelled).
    fn prevent_self_trade(
        &mut self,
        taker: &mut Taker,
        maker: &Order,
        out: &mut Vec<Event>,
    ) -> bool {
        let reason = Some(CancelReason::SelfTrade);
        match taker.order.stp {
            SelfTradePrevention::CancelTaker => true,
            SelfTradePrevention::CancelMaker => {
                self.end(maker.id, OrderEnd::Cancelled, reason, out);
                false
            }
            SelfTradePrevention::CancelBoth => {
                self.end(maker.id, OrderEnd::Cancelled, reason, out);
                true
            }
            SelfTradePrevention::DecrementAndCancel => {
                let qty = maker.remaining().min(taker.order.remaining());
                if qty == maker.remaining() {
                    self.end(maker.id, OrderEnd::Cancelled, reason, out);
                } else {
                    let resting = self.orders.get_mut(&maker.id).unwrap();
                    resting.qty -= qty;
                    out.push(reduced(resting));
                }
                if qty == taker.order.remaining() {
                    return true;
                }
                taker.order.qty -= qty;
                out.push(reduced(&taker.order));
                false
            }
        }
    }

    /// One fill: cash and shares move between the two users, escrow and the fee account.
    fn fill(
        &mut self,
        maker: &Order,
        taker: &mut Order,
        price: u16,
        qty: u64,
        taker_fee: i128,
        out: &mut Vec<Event>,
    ) {
        let market = maker.market;
        let maker_fee = maker_fee(self.params(market).maker_fee_bps, qty, price);
        self.settle(maker, price, qty, maker_fee);
        self.settle(taker, price, qty, taker_fee);
        taker.filled += qty;
        let resting = self.orders.get_mut(&maker.id).unwrap();
        resting.filled += qty;
        let maker_done = resting.remaining() == 0;
        let (bid, ask) = if maker.book_side() == BookSide::Bid {
            (maker as &Order, &*taker)
        } else {
            (&*taker, maker)
        };
        let kind = match (bid.side, ask.side) {
            (Side::Buy, Side::Sell) => FillKind::YesTransfer,
            (Side::Sell, Side::Buy) => FillKind::NoTransfer,
            (Side::Buy, Side::Buy) => FillKind::Mint,
            (Side::Sell, Side::Sell) => FillKind::Merge,
        };
        out.push(Event::Trade {
            trade: TradeId(self.next_trade_id),
            market,
            maker_order: maker.id,
            taker_order: taker.id,
            maker_user: maker.user,
            taker_user: taker.user,
            price_units: price,
            qty,
            kind,
            taker_side: match taker.book_side() {
                BookSide::Bid => Side::Buy,
                BookSide::Ask => Side::Sell,
            },
            maker_fee_micros: maker_fee as i64,
            taker_fee_micros: taker_fee as i64,
        });
        self.next_trade_id += 1;
        if maker_done {
            let done = self.orders.remove(&maker.id).unwrap();
            out.push(ended(&done, OrderEnd::Filled, None));
        }
    }

    /// One side of a fill: a buyer pays its outcome price into escrow and gets shares; a
    /// seller gives shares and is paid out of escrow; each pays its fee.
    fn settle(&mut self, order: &Order, yes: u16, qty: u64, fee: i128) {
        let amount = value(qty, yes_price(order.outcome, yes));
        let escrow = &mut self.markets[order.market.0 as usize].escrow;
        let cash = &mut self.users[order.user.0 as usize].cash;
        let shares = self
            .shares
            .entry((order.market, order.user))
            .or_insert([0, 0]);
        match order.side {
            Side::Buy => {
                *cash -= amount;
                *escrow += amount;
                shares[order.outcome as usize] += qty as i128;
            }
            Side::Sell => {
                *cash += amount;
                *escrow -= amount;
                shares[order.outcome as usize] -= qty as i128;
            }
        }
        *cash -= fee;
        self.fees += fee;
    }

    /// Takes an open order out of the book and reports how it ended.
    fn end(
        &mut self,
        id: OrderId,
        end: OrderEnd,
        reason: Option<CancelReason>,
        out: &mut Vec<Event>,
    ) {
        let order = self.orders.remove(&id).expect("an open order");
        out.push(ended(&order, end, reason));
    }

    fn owned(&self, user: UserId, id: OrderId) -> Result<&Order, Reject> {
        self.user(user)?;
        let order = self.orders.get(&id).ok_or(Reject::UnknownOrder)?;
        if order.user != user {
            return Err(Reject::NotOrderOwner);
        }
        Ok(order)
    }

    fn cancel_all(
        &mut self,
        user: UserId,
        market: Option<MarketId>,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.user(user)?;
        if let Some(market) = market {
            self.market(market)?;
        }
        let ids: Vec<OrderId> = self
            .orders
            .values()
            .filter(|o| o.user == user && market.is_none_or(|m| m == o.market))
            .map(|o| o.id)
            .collect();
        for id in ids {
            self.end(
                id,
                OrderEnd::Cancelled,
                Some(CancelReason::UserRequested),
                out,
            );
        }
        Ok(())
    }

    fn amend(
        &mut self,
        user: UserId,
        id: OrderId,
        qty: Option<u64>,
        price: Option<u16>,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let order = self.owned(user, id)?.clone();
        let market = self.market(order.market)?;
        if market.state != MarketState::Open {
            return Err(Reject::MarketNotOpen);
        }
        let params = &market.params;
        let new_qty = qty.unwrap_or(order.qty);
        let new_limit = price.unwrap_or(order.limit);
        check_price(new_limit, params.tick_units)?;
        if new_qty < params.qty_min || new_qty > params.qty_max || new_qty <= order.filled {
            return Err(Reject::QtyOutOfRange);
        }
        if new_qty == order.qty && new_limit == order.limit {
            return Err(Reject::NothingToAmend);
        }
        if new_limit == order.limit && new_qty < order.qty {
            let resting = self.orders.get_mut(&id).unwrap();
            resting.qty = new_qty;
            out.push(amended(resting, true));
            return Ok(());
        }
        let mut moved = order.clone();
        moved.qty = new_qty;
        moved.limit = new_limit;
        let side = order.book_side();
        let takes = self
            .best(order.market, opposite(side))
            .is_some_and(|best| crosses(side, moved.book_price(), best));
        if order.post_only && takes {
            return Err(Reject::PostOnlyWouldTake);
        }
        let position = self.position(order.market, user);
        match order.side {
            Side::Buy => {
                if order.reduce_only && moved.remaining() > position.free(order.outcome.other()) {
                    return Err(Reject::ReduceOnlyWouldIncrease);
                }
                let need =
                    self.order_reserve(&moved) + taking_extra(self.params(order.market), takes);
                let extra = need - self.order_reserve(&order);
                if extra > self.available(user) {
                    return Err(Reject::InsufficientFunds);
                }
            }
            Side::Sell => {
                let extra = moved.remaining().saturating_sub(order.remaining());
                if extra > position.free(order.outcome) {
                    return Err(Reject::InsufficientShares);
                }
            }
        }
        self.orders.remove(&id);
        out.push(amended(&moved, false));
        self.take(moved, out);
        Ok(())
    }

    fn batch(
        &mut self,
        user: UserId,
        cancels: &[OrderId],
        places: &[PlaceOrder],
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.user(user)?;
        if cancels.len() + places.len() > BATCH_ITEMS_MAX {
            return Err(Reject::BatchTooLarge);
        }
        let mut index = 0u32;
        for id in cancels {
            let result = self.owned(user, *id).map(|_| ());
            match result {
                Ok(()) => self.end(
                    *id,
                    OrderEnd::Cancelled,
                    Some(CancelReason::UserRequested),
                    out,
                ),
                Err(reason) => out.push(Event::BatchItemRejected { index, reason }),
            }
            index += 1;
        }
        for request in places {
            let result = if request.user == user {
                self.place(request, out)
            } else {
                Err(Reject::NotOrderOwner)
            };
            if let Err(reason) = result {
                out.push(Event::BatchItemRejected { index, reason });
            }
            index += 1;
        }
        Ok(())
    }

    // ----- queries the differential tests compare -----

    /// The whole state in the engine's canonical snapshot form.
    pub fn snapshot(&self) -> Snapshot {
        let users = (0..self.users.len())
            .map(|u| UserSnapshot {
                cash: self.balance(UserId(u as u32)),
                client_ids: self.client_ids(UserId(u as u32)),
            })
            .collect();
        let markets = self
            .markets
            .iter()
            .enumerate()
            .map(|(i, market)| {
                let id = MarketId(i as u32);
                let mut orders = self.book(id, BookSide::Bid);
                orders.extend(self.book(id, BookSide::Ask));
                MarketSnapshot {
                    params: market.params,
                    state: market.state,
                    resolution: market.resolution,
                    book_seq: market.book_seq,
                    escrow_micros: market.escrow as i64,
                    orders: orders.into_iter().map(|o| self.order_snapshot(o)).collect(),
                }
            })
            .collect();
        let positions = self
            .shares
            .keys()
            .map(|&(market, user)| (market, user, self.position(market, user)))
            .filter(|(_, _, position)| !position.is_empty())
            .collect();
        Snapshot {
            format_version: FORMAT_VERSION,
            config: self.config,
            now_micros: self.now,
            next_order_id: self.next_order_id,
            next_trade_id: self.next_trade_id,
            users,
            markets,
            positions,
            fee_micros: self.fees as i64,
            external_micros: self.external as i64,
        }
    }

    fn client_ids(&self, user: UserId) -> Vec<ClientIdSnapshot> {
        let history = &self.users[user.0 as usize].client_history;
        let recent_from = history.len().saturating_sub(CLIENT_ORDER_IDS_KEPT);
        let entry = |e: &ClientEntry, recent: bool| ClientIdSnapshot {
            client_order_id: e.id,
            order: e.order,
            request: e.request,
            recent,
        };
        let mut kept: Vec<ClientIdSnapshot> = history[recent_from..]
            .iter()
            .map(|e| entry(e, true))
            .collect();
        let mut older: Vec<&ClientEntry> = history[..recent_from]
            .iter()
            .filter(|e| self.orders.contains_key(&e.order))
            .collect();
        older.sort_by_key(|e| e.order);
        kept.extend(older.into_iter().map(|e| entry(e, false)));
        kept
    }

    fn order_snapshot(&self, order: &Order) -> OrderSnapshot {
        OrderSnapshot {
            order: order.id,
            user: order.user,
            side: order.side,
            outcome: order.outcome,
            order_type: order.order_type,
            time_in_force: order.time_in_force,
            self_trade_prevention: order.stp,
            post_only: order.post_only,
            reduce_only: order.reduce_only,
            limit_units: order.limit,
            qty: order.qty,
            filled_qty: order.filled,
            expires_at_micros: order.expires_at,
            locked_micros: self.order_reserve(order) as i64,
        }
    }

    /// Shares ahead of an open order at its level.
    pub fn queue_position(&self, id: OrderId) -> Option<u64> {
        let order = self.orders.get(&id)?;
        let ahead = self
            .orders
            .values()
            .filter(|o| o.market == order.market && o.book_side() == order.book_side())
            .filter(|o| o.book_price() == order.book_price() && o.priority < order.priority)
            .map(Order::remaining)
            .sum();
        Some(ahead)
    }

    pub fn open_order_ids(&self) -> Vec<OrderId> {
        self.orders.keys().copied().collect()
    }

    /// Every level of one side of a market, best first.
    pub fn depth(&self, market: MarketId, side: BookSide) -> Vec<(u16, u64)> {
        let mut levels: Vec<(u16, u64)> = Vec::new();
        for order in self.book(market, side) {
            match levels.last_mut() {
                Some((price, qty)) if *price == order.book_price() => *qty += order.remaining(),
                _ => levels.push((order.book_price(), order.remaining())),
            }
        }
        levels
    }
}

struct Observables {
    levels: BTreeMap<(MarketId, BookSide, u16), u64>,
    positions: BTreeMap<(MarketId, UserId), Position>,
    balances: Vec<Cash>,
}

fn opposite(side: BookSide) -> BookSide {
    match side {
        BookSide::Bid => BookSide::Ask,
        BookSide::Ask => BookSide::Bid,
    }
}

fn crosses(taker_side: BookSide, taker_limit_yes: u16, maker_yes: u16) -> bool {
    match taker_side {
        BookSide::Bid => maker_yes <= taker_limit_yes,
        BookSide::Ask => maker_yes >= taker_limit_yes,
    }
}

fn check_price(price: u16, tick: u16) -> Result<(), Reject> {
    if price == 0 || price >= 10_000 {
        return Err(Reject::PriceOutOfRange);
    }
    if !price.is_multiple_of(tick) {
        return Err(Reject::PriceOffTick);
    }
    Ok(())
}

/// The largest `qty` in `0..=most` for which `fits` holds (`fits` holds for 0 and is
/// monotone: true up to some point, false after).
fn largest_within(most: u64, fits: impl Fn(u64) -> bool) -> u64 {
    let (mut low, mut high) = (0, most);
    while low < high {
        let mid = high - (high - low) / 2;
        if fits(mid) {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    low
}

fn ended(order: &Order, end: OrderEnd, reason: Option<CancelReason>) -> Event {
    Event::OrderEnded {
        order: order.id,
        user: order.user,
        market: order.market,
        end,
        reason,
        filled_qty: order.filled,
        unfilled_qty: order.remaining(),
    }
}

fn reduced(order: &Order) -> Event {
    Event::OrderReduced {
        order: order.id,
        qty: order.qty,
        remaining_qty: order.remaining(),
        reason: CancelReason::SelfTrade,
    }
}

fn amended(order: &Order, priority_kept: bool) -> Event {
    Event::OrderAmended {
        order: order.id,
        qty: order.qty,
        price_units: order.limit,
        remaining_qty: order.remaining(),
        priority_kept,
    }
}
