//! Placing, taking and resting orders: validation, the read-only plan, the matching walk and
//! the fill arithmetic of the four fill kinds.
//!
//! Validation and planning never mutate; execution never fails. That split is what makes a
//! command atomic: everything that can reject runs before the first change. It must never
//! move money except through the ledger, and never leave a reservation different from what
//! `buy_reserve_micros` says the order's remaining quantity needs.

use crate::command::{MarketParams, PlaceOrder};
use crate::engine::{ClientRecord, Engine};
use crate::event::Event;
use crate::ledger::Ledger;
use crate::orders::{book_price_units, Order, NIL};
use crate::reject::Reject;
use crate::types::{
    BookSide, CancelReason, ClientOrderId, FillKind, MarketId, MarketState, OrderEnd, OrderId,
    OrderType, Outcome, SelfTradePrevention, Side, TimeInForce, TradeId, UserId,
};
use crate::units::{
    complement_units, fee_ceil_micros, fill_fee_weight, maker_fee_micros, notional_micros,
    price_on_tick, CASH_IN_SYSTEM_MICROS_MAX, CLIENT_ORDER_IDS_KEPT, OPEN_ORDERS_MAX, PRICE_SCALE,
    PRICE_UNITS_MAX, SLIPPAGE_BPS_MAX,
};

/// What validation settled for an order about to be accepted.
#[derive(Clone, Copy, Debug)]
struct Accepted {
    qty: u64,
    /// Limit (or MARKET protection limit) in the order's outcome.
    limit_units: u16,
    /// Cash to lock up front (BUY orders; 0 for a SELL).
    lock_micros: i64,
}

/// A would-be taker, for the read-only plan.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlanTaker {
    pub user: UserId,
    pub market: MarketId,
    pub side: Side,
    pub outcome: Outcome,
    pub limit_units: u16,
    pub qty: u64,
    pub cash_budget_micros: Option<i64>,
    pub self_trade_prevention: SelfTradePrevention,
}

/// What taking would do, computed without changing anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub filled_qty: u64,
    /// Sum of `qty * price` in the taker's outcome.
    pub notional_micros: i64,
    pub fee_micros: i64,
    /// Some liquidity from another user was within the limit.
    pub crossed: bool,
    /// The walk met the taker's own order.
    pub self_trade: bool,
}

/// Whether a taker on `side` with YES limit `limit` can trade with a level at YES `price`:
/// both in units or both in ticks, which order levels alike.
fn crosses(side: BookSide, limit: u16, price: u16) -> bool {
    match side {
        BookSide::Bid => price <= limit,
        BookSide::Ask => price >= limit,
    }
}

/// An order's cash or share price for a fill at YES price `yes_price_units`.
fn outcome_price(outcome: Outcome, yes_price_units: u16) -> u16 {
    book_price_units(outcome, yes_price_units)
}

pub(crate) fn check_price(price_units: u16, tick_units: u16) -> Result<(), Reject> {
    if price_units == 0 || price_units > PRICE_UNITS_MAX {
        return Err(Reject::PriceOutOfRange);
    }
    if !price_on_tick(price_units, tick_units) {
        return Err(Reject::PriceOffTick);
    }
    Ok(())
}

impl Engine {
    /// Whether an order on `side` with book price `book_limit` would meet the opposite side.
    pub(crate) fn would_take(&self, market: MarketId, side: BookSide, book_limit: u16) -> bool {
        let best = self.markets[market.0 as usize].book.best(side.opposite());
        best.is_some_and(|best| crosses(side, book_limit, best))
    }
}

/// The cash a BUY order's remaining quantity must hold in a market with `params`.
#[inline(always)] // a call per placement and per partial fill, for a few instructions of work
fn reserve_micros(order: &Order, params: &MarketParams) -> i64 {
    params.buy_reserve_micros(order.remaining_qty, order.limit_units)
}

impl Engine {
    pub(crate) fn place(
        &mut self,
        request: &PlaceOrder,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.check_user(request.user)?;
        if let Some(client_order_id) = request.client_order_id {
            if let Some(record) = self.client_record(request.user, client_order_id) {
                if record.request != *request {
                    return Err(Reject::ClientOrderIdReused);
                }
                out.push(Event::OrderReplayed {
                    order: record.order,
                    user: request.user,
                    client_order_id,
                });
                return Ok(());
            }
        }
        let accepted = self.validate_place(request)?;
        self.execute_place(request, accepted, out);
        Ok(())
    }

    fn client_record(&self, user: UserId, id: ClientOrderId) -> Option<ClientRecord> {
        let ids = self.users[user.0 as usize].client_ids.as_ref()?;
        ids.records.get(&id).copied()
    }

    fn validate_place(&self, request: &PlaceOrder) -> Result<Accepted, Reject> {
        let market = self
            .markets
            .get(request.market.0 as usize)
            .ok_or(Reject::UnknownMarket)?;
        if market.state != MarketState::Open {
            return Err(Reject::MarketNotOpen);
        }
        self.validate_shape(request)?;
        match request.order_type {
            OrderType::Limit => self.validate_limit(request),
            OrderType::Market => self.validate_market(request),
        }
    }

    /// Checks that the options go together and each is in range.
    fn validate_shape(&self, request: &PlaceOrder) -> Result<(), Reject> {
        let params = &self.markets[request.market.0 as usize].params;
        let is_limit = request.order_type == OrderType::Limit;
        let tif = request.time_in_force;
        let resting_tif = matches!(tif, TimeInForce::Gtc | TimeInForce::Gtd);
        let shape_valid = if is_limit {
            request.price_units.is_some()
                && request.qty.is_some()
                && request.cash_micros.is_none()
                && request.worst_price_units.is_none()
                && request.max_slippage_bps.is_none()
                && (!request.post_only || resting_tif)
        } else {
            request.price_units.is_none()
                && !resting_tif
                && !request.post_only
                && request.qty.is_some() != request.cash_micros.is_some()
                // Cash-sized: a BUY, IOC only (there is no share count to fill or kill),
                // and not decrement-and-cancel (there is no share count to decrement).
                && (request.cash_micros.is_none()
                    || (request.side == Side::Buy
                        && tif == TimeInForce::Ioc
                        && request.self_trade_prevention
                            != SelfTradePrevention::DecrementAndCancel))
        };
        if !shape_valid || request.expires_at_micros.is_some() != (tif == TimeInForce::Gtd) {
            return Err(Reject::InvalidOrder);
        }
        if let Some(expires_at) = request.expires_at_micros {
            if expires_at <= self.now_micros {
                return Err(Reject::ExpiryInPast);
            }
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
        if let Some(qty) = request.qty {
            if !(params.qty_min..=params.qty_max).contains(&qty) {
                return Err(Reject::QtyOutOfRange);
            }
        }
        if let Some(cash) = request.cash_micros {
            if !(1..=CASH_IN_SYSTEM_MICROS_MAX).contains(&cash) {
                return Err(Reject::AmountOutOfRange);
            }
        }
        Ok(())
    }

    fn validate_limit(&self, request: &PlaceOrder) -> Result<Accepted, Reject> {
        let market = &self.markets[request.market.0 as usize];
        let limit_units = request.price_units.expect("checked by validate_shape");
        let qty = request.qty.expect("checked by validate_shape");
        let side = BookSide::of(request.side, request.outcome);
        let book_limit = book_price_units(request.outcome, limit_units);
        let takes = self.would_take(request.market, side, book_limit);
        if request.post_only && takes {
            return Err(Reject::PostOnlyWouldTake);
        }
        let may_rest = matches!(request.time_in_force, TimeInForce::Gtc | TimeInForce::Gtd);
        if may_rest {
            self.check_capacity(request.user)?;
        }
        if request.time_in_force == TimeInForce::Fok {
            let plan = self.plan(&self.plan_taker(request, limit_units, qty, None));
            if plan.filled_qty < qty {
                return Err(Reject::FokNotFilled);
            }
        }
        self.check_reduce_only(request, qty)?;
        let lock_micros = match request.side {
            Side::Buy => {
                let need = if takes && may_rest {
                    market.params.taking_reserve_micros(qty, limit_units)
                } else {
                    market.params.buy_reserve_micros(qty, limit_units)
                };
                self.check_funds(request.user, need)?;
                need
            }
            Side::Sell => {
                self.check_shares(request, qty)?;
                0
            }
        };
        Ok(Accepted {
            qty,
            limit_units,
            lock_micros,
        })
    }

    fn validate_market(&self, request: &PlaceOrder) -> Result<Accepted, Reject> {
        let params = &self.markets[request.market.0 as usize].params;
        let limit_units = self
            .protection_limit(request)
            .ok_or(Reject::SlippageExceeded)?;
        let qty_cap = request.qty.unwrap_or(params.qty_max);
        let taker = self.plan_taker(request, limit_units, qty_cap, request.cash_micros);
        let plan = self.plan(&taker);
        let sized_by_cash = request.cash_micros.is_some();
        if plan.filled_qty == 0 && (sized_by_cash || !plan.self_trade) {
            return Err(if sized_by_cash && plan.crossed {
                Reject::QtyOutOfRange
            } else {
                Reject::SlippageExceeded
            });
        }
        if request.time_in_force == TimeInForce::Fok && plan.filled_qty < qty_cap {
            return Err(Reject::FokNotFilled);
        }
        let qty = if sized_by_cash {
            plan.filled_qty
        } else {
            qty_cap
        };
        if qty < params.qty_min {
            return Err(Reject::QtyOutOfRange);
        }
        self.check_reduce_only(request, qty)?;
        let lock_micros = match request.side {
            Side::Buy => {
                let need = plan.notional_micros + plan.fee_micros;
                self.check_funds(request.user, need)?;
                need
            }
            Side::Sell => {
                self.check_shares(request, qty)?;
                0
            }
        };
        Ok(Accepted {
            qty,
            limit_units,
            lock_micros,
        })
    }

    fn plan_taker(
        &self,
        request: &PlaceOrder,
        limit_units: u16,
        qty: u64,
        cash_budget_micros: Option<i64>,
    ) -> PlanTaker {
        PlanTaker {
            user: request.user,
            market: request.market,
            side: request.side,
            outcome: request.outcome,
            limit_units,
            qty,
            cash_budget_micros,
            self_trade_prevention: request.self_trade_prevention,
        }
    }

    /// A MARKET order's limit in its outcome: the tighter of its worst price and the best
    /// opposite price moved by its slippage allowance (rounded to the tick on the safe side);
    /// with neither, the market's extreme price. `None` when the allowance needs a best price
    /// and the opposite side is empty (nothing could fill).
    fn protection_limit(&self, request: &PlaceOrder) -> Option<u16> {
        let market = &self.markets[request.market.0 as usize];
        let tick = market.params.tick_units as u32;
        let buying = request.side == Side::Buy;
        let extreme = if buying { PRICE_SCALE - tick } else { tick } as u16;
        let mut limit = request.worst_price_units.unwrap_or(extreme);
        if let Some(bps) = request.max_slippage_bps {
            let side = BookSide::of(request.side, request.outcome);
            let best_yes = market.book.best(side.opposite())?;
            let best = outcome_price(request.outcome, best_yes) as u64;
            let scaled_tick = PRICE_SCALE as u64 * tick as u64;
            let moved = if buying {
                let raw = best * (PRICE_SCALE as u64 + bps as u64);
                (raw / scaled_tick * tick as u64).min(extreme as u64)
            } else {
                let raw = best * (PRICE_SCALE as u64 - bps as u64);
                raw.div_ceil(scaled_tick) * tick as u64
            }
            .max(tick as u64) as u16;
            limit = if buying {
                limit.min(moved)
            } else {
                limit.max(moved)
            };
        }
        Some(limit)
    }

    fn check_capacity(&self, user: UserId) -> Result<(), Reject> {
        let open = self.users[user.0 as usize].open_count;
        if open >= self.config.open_orders_per_user_max
            || self.orders.len() >= OPEN_ORDERS_MAX as usize
        {
            return Err(Reject::TooManyOpenOrders);
        }
        Ok(())
    }

    fn check_funds(&self, user: UserId, need_micros: i64) -> Result<(), Reject> {
        if self.ledger.cash(user).available_micros < need_micros {
            return Err(Reject::InsufficientFunds);
        }
        Ok(())
    }

    fn check_shares(&self, request: &PlaceOrder, qty: u64) -> Result<(), Reject> {
        let position = self.ledger.position(request.market, request.user);
        if position.free(request.outcome) < qty {
            return Err(Reject::InsufficientShares);
        }
        Ok(())
    }

    /// A reduce-only BUY of one outcome may be at most the free shares of the other.
    fn check_reduce_only(&self, request: &PlaceOrder, qty: u64) -> Result<(), Reject> {
        if !request.reduce_only || request.side == Side::Sell {
            return Ok(());
        }
        let position = self.ledger.position(request.market, request.user);
        if qty > position.free(request.outcome.other()) {
            return Err(Reject::ReduceOnlyWouldIncrease);
        }
        Ok(())
    }

    fn execute_place(&mut self, request: &PlaceOrder, accepted: Accepted, out: &mut Vec<Event>) {
        let id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        let rests_at_units = book_price_units(request.outcome, accepted.limit_units);
        let rests_at_ticks = self.markets[request.market.0 as usize]
            .book
            .ticks(rests_at_units);
        let taker = Order {
            id,
            user: request.user,
            market: request.market,
            side: request.side,
            outcome: request.outcome,
            order_type: request.order_type,
            time_in_force: request.time_in_force,
            self_trade_prevention: request.self_trade_prevention,
            post_only: request.post_only,
            reduce_only: request.reduce_only,
            limit_units: accepted.limit_units,
            rests_on: BookSide::of(request.side, request.outcome),
            rests_at_units,
            rests_at_ticks,
            qty: accepted.qty,
            remaining_qty: accepted.qty,
            expires_at_micros: request.expires_at_micros,
            locked_micros: accepted.lock_micros,
            resting: false,
            level_prev: NIL,
            level_next: NIL,
            user_prev: NIL,
            user_next: NIL,
        };
        out.push(Event::OrderAccepted {
            order: id,
            request: *request,
            qty: accepted.qty,
            price_units: accepted.limit_units,
        });
        if let Some(client_order_id) = request.client_order_id {
            self.remember_client_id(request, client_order_id, id);
        }
        match request.side {
            Side::Buy => {
                self.ledger.lock(request.user, accepted.lock_micros);
            }
            Side::Sell => {
                self.ledger
                    .reserve(request.market, request.user, request.outcome, accepted.qty);
            }
        }
        self.take_new(taker, out);
    }

    fn remember_client_id(
        &mut self,
        request: &PlaceOrder,
        client_order_id: ClientOrderId,
        order: OrderId,
    ) {
        let ids = self.users[request.user.0 as usize]
            .client_ids
            .get_or_insert_with(Default::default);
        ids.records.insert(
            client_order_id,
            ClientRecord {
                order,
                request: *request,
            },
        );
        ids.recent.push_back(client_order_id);
        if ids.recent.len() <= CLIENT_ORDER_IDS_KEPT {
            return;
        }
        let oldest = ids.recent.pop_front().expect("longer than the bound");
        let record = ids.records[&oldest];
        if self.orders.slot_of(record.order).is_some() {
            ids.evicted_open.insert(record.order, oldest);
        } else {
            ids.records.remove(&oldest);
        }
    }

    pub(crate) fn link_user_for_restore(&mut self, slot: u32) {
        self.link_user(slot);
    }

    fn link_user(&mut self, slot: u32) {
        let user = self.orders.get(slot).user;
        let orders = &mut self.users[user.0 as usize];
        let tail = orders.tail;
        orders.tail = slot;
        orders.open_count += 1;
        if tail == NIL {
            orders.head = slot;
        }
        let order = self.orders.get_mut(slot);
        order.user_prev = tail;
        order.user_next = NIL;
        if tail != NIL {
            self.orders.get_mut(tail).user_next = slot;
        }
    }

    fn unlink_user(&mut self, slot: u32) {
        let (user, prev, next) = {
            let order = self.orders.get(slot);
            (order.user, order.user_prev, order.user_next)
        };
        let orders = &mut self.users[user.0 as usize];
        assert!(orders.open_count > 0);
        orders.open_count -= 1;
        match prev {
            NIL => orders.head = next,
            prev => self.orders.get_mut(prev).user_next = next,
        }
        match next {
            NIL => self.users[user.0 as usize].tail = prev,
            next => self.orders.get_mut(next).user_prev = prev,
        }
    }

    /// Walks the book with a new order as taker, then rests or ends it. The order enters the
    /// arena, the id index and its user's list only if it rests: a third of the standard
    /// workload's operations are takers that end in the command that placed them.
    fn take_new(&mut self, mut taker: Order, out: &mut Vec<Event>) {
        let self_trade = self.walk(&mut taker, out);
        match taker_end(&taker, self_trade) {
            None => {
                let slot = self.orders.insert(taker);
                self.link_user(slot);
                self.rest(slot, out);
            }
            Some((end, reason)) => self.end_order(&taker, end, reason, out),
        }
    }

    /// Walks the book with the open order in `slot` (off the book, re-entering) as taker, then
    /// rests or ends it.
    pub(crate) fn take_resident(&mut self, slot: u32, out: &mut Vec<Event>) {
        // The walk changes only the taker's quantities and lock; the copy's links may go stale
        // (finishing a maker of the same user relinks its list), so only those come back.
        let mut taker = self.orders.get(slot).clone();
        let self_trade = self.walk(&mut taker, out);
        let resident = self.orders.get_mut(slot);
        resident.qty = taker.qty;
        resident.remaining_qty = taker.remaining_qty;
        resident.locked_micros = taker.locked_micros;
        match taker_end(&taker, self_trade) {
            None => self.rest(slot, out),
            Some((end, reason)) => self.finish_order(slot, end, reason, out),
        }
    }

    /// Matches `taker` (not on the book) against the opposite side. Returns whether it stopped
    /// on self-trade prevention (the taker must then be cancelled).
    fn walk(&mut self, taker: &mut Order, out: &mut Vec<Event>) -> bool {
        let (market, user, stp) = (taker.market, taker.user, taker.self_trade_prevention);
        let side = taker.book_side();
        let limit_ticks = taker.rests_at_ticks;
        let mut fees = TakerFees::default();
        loop {
            let remaining = taker.remaining_qty;
            if remaining == 0 {
                return false;
            }
            let book = &self.markets[market.0 as usize].book;
            let Some(ticks) = book.best_ticks(side.opposite()) else {
                return false;
            };
            if !crosses(side, limit_ticks, ticks) {
                return false;
            }
            let maker_slot = book.level_at(ticks).head;
            let maker = self.orders.get(maker_slot);
            if maker.user == user {
                if self.prevent_self_trade(stp, maker_slot, taker, out) {
                    return true;
                }
                continue;
            }
            let qty = remaining.min(maker.remaining_qty);
            self.fill(maker_slot, taker, ticks, qty, &mut fees, out);
        }
    }

    /// Applies the taker's self-trade mode to its own resting order in `maker_slot`. Returns
    /// whether the taker must stop and be cancelled.
    // Rare, and kept out of the walk's loop so it does not crowd the fill's registers.
    #[cold]
    #[inline(never)]
    fn prevent_self_trade(
        &mut self,
        stp: SelfTradePrevention,
        maker_slot: u32,
        taker: &mut Order,
        out: &mut Vec<Event>,
    ) -> bool {
        let reason = Some(CancelReason::SelfTrade);
        match stp {
            SelfTradePrevention::CancelTaker => true,
            SelfTradePrevention::CancelMaker => {
                self.end_resting(maker_slot, OrderEnd::Cancelled, reason, out);
                false
            }
            SelfTradePrevention::CancelBoth => {
                self.end_resting(maker_slot, OrderEnd::Cancelled, reason, out);
                true
            }
            SelfTradePrevention::DecrementAndCancel => {
                let maker_remaining = self.orders.get(maker_slot).remaining_qty;
                let taker_remaining = taker.remaining_qty;
                let qty = maker_remaining.min(taker_remaining);
                if qty == maker_remaining {
                    self.end_resting(maker_slot, OrderEnd::Cancelled, reason, out);
                } else {
                    self.reduce_resting(maker_slot, qty, out);
                }
                if qty == taker_remaining {
                    return true;
                }
                taker.decrement(qty);
                // A SELL taker frees the decremented shares now; a BUY taker's excess cash
                // is released when it rests or ends (a MARKET BUY holds no excess at all).
                if taker.side == Side::Sell {
                    self.ledger
                        .release(taker.market, taker.user, taker.outcome, qty);
                }
                out.push(Event::OrderReduced {
                    order: taker.id,
                    qty: taker.qty,
                    remaining_qty: taker.remaining_qty,
                    reason: CancelReason::SelfTrade,
                });
                false
            }
        }
    }

    /// Shrinks a resting order by `qty` without a fill, keeping its place in the queue.
    fn reduce_resting(&mut self, slot: u32, qty: u64, out: &mut Vec<Event>) {
        let order = self.orders.get(slot);
        assert!(order.resting && qty < order.remaining_qty);
        let (market, side, ticks) = (order.market, order.book_side(), order.rests_at_ticks);
        self.touch_level(market, side, ticks);
        self.markets[market.0 as usize].book.reduce(ticks, qty);
        self.orders.get_mut(slot).decrement(qty);
        self.release_excess(slot, qty);
        let order = self.orders.get(slot);
        out.push(Event::OrderReduced {
            order: order.id,
            qty: order.qty,
            remaining_qty: order.remaining_qty,
            reason: CancelReason::SelfTrade,
        });
    }

    /// After an order's remaining quantity dropped by `qty_dropped` without a fill or rests
    /// smaller: a BUY keeps exactly the reserve of its remaining quantity, a SELL releases
    /// the dropped shares.
    #[inline(always)] // see `Book::unlink`
    pub(crate) fn release_excess(&mut self, slot: u32, qty_dropped: u64) {
        let order = self.orders.get_mut(slot);
        let (user, market, outcome) = (order.user, order.market, order.outcome);
        match order.side {
            Side::Buy => {
                let keep = reserve_micros(order, &self.markets[market.0 as usize].params);
                let excess = order.locked_micros - keep;
                assert!(excess >= 0);
                // A maker filled at its own limit without fees holds exactly its reserve.
                if excess > 0 {
                    self.ledger.unlock(user, excess);
                    order.locked_micros = keep;
                }
            }
            Side::Sell => {
                if qty_dropped > 0 {
                    self.ledger.release(market, user, outcome, qty_dropped);
                }
            }
        }
    }

    /// The cash a BUY order's remaining quantity must hold.
    pub(crate) fn reserve_of(&self, order: &Order) -> i64 {
        reserve_micros(order, &self.markets[order.market.0 as usize].params)
    }

    /// One fill of `qty` at the maker's level `ticks` between a resting maker and the taker.
    fn fill(
        &mut self,
        maker_slot: u32,
        taker: &mut Order,
        ticks: u16,
        qty: u64,
        fees: &mut TakerFees,
        out: &mut Vec<Event>,
    ) {
        let maker = self.orders.get(maker_slot);
        let market = maker.market;
        let state = &self.markets[market.0 as usize];
        let (params, price) = (&state.params, state.book.units(ticks));
        let maker_fee = maker_fee_micros(params.maker_fee_bps, qty, price);
        let taker_fee = fees.add(params.taker_fee_bps, qty, price);
        let bid_is_maker = maker.book_side() == BookSide::Bid;
        let (bid, ask) = if bid_is_maker {
            (maker, &*taker)
        } else {
            (&*taker, maker)
        };
        let kind = FillKind::of((bid.side, bid.outcome), (ask.side, ask.outcome));
        let taker_side = if bid_is_maker { Side::Sell } else { Side::Buy };
        let (maker_id, maker_user, taker_id, taker_user) =
            (maker.id, maker.user, taker.id, taker.user);
        let maker_done = qty == maker.remaining_qty;
        let maker_side = maker.book_side();
        self.touch_level(market, maker_side, ticks);
        if maker_done {
            self.markets[market.0 as usize]
                .book
                .unlink(&mut self.orders, maker_slot);
        } else {
            self.markets[market.0 as usize].book.reduce(ticks, qty);
        }
        // Buyers pay into escrow before sellers are paid out of it.
        let maker = self.orders.get_mut(maker_slot);
        if maker.side == Side::Buy {
            settle_fill(&mut self.ledger, maker, price, qty, maker_fee);
            settle_fill(&mut self.ledger, taker, price, qty, taker_fee);
        } else {
            settle_fill(&mut self.ledger, taker, price, qty, taker_fee);
            settle_fill(&mut self.ledger, maker, price, qty, maker_fee);
        }
        let trade = TradeId(self.next_trade_id);
        self.next_trade_id += 1;
        out.push(Event::Trade {
            trade,
            market,
            maker_order: maker_id,
            taker_order: taker_id,
            maker_user,
            taker_user,
            price_units: price,
            qty,
            kind,
            taker_side,
            maker_fee_micros: maker_fee,
            taker_fee_micros: taker_fee,
        });
        if maker_done {
            self.finish_order(maker_slot, OrderEnd::Filled, None, out);
        } else {
            self.release_excess(maker_slot, 0);
        }
    }

    /// Puts the taker's remainder on the book, holding exactly its reserve.
    fn rest(&mut self, slot: u32, out: &mut Vec<Event>) {
        self.release_excess(slot, 0);
        let order = self.orders.get(slot);
        let (market, side) = (order.market, order.book_side());
        let (price, ticks) = (order.book_price_units(), order.rests_at_ticks);
        if let Some(expires_at) = order.expires_at_micros {
            self.expiries.insert((expires_at, order.id));
        }
        self.touch_level(market, side, ticks);
        self.markets[market.0 as usize]
            .book
            .push_back(&mut self.orders, slot);
        let order = self.orders.get(slot);
        out.push(Event::OrderRested {
            order: order.id,
            market,
            side,
            book_price_units: price,
            remaining_qty: order.remaining_qty,
        });
    }

    /// Takes a resting order off the book and ends it.
    pub(crate) fn end_resting(
        &mut self,
        slot: u32,
        end: OrderEnd,
        reason: Option<CancelReason>,
        out: &mut Vec<Event>,
    ) {
        let order = self.orders.get(slot);
        let (market, side, ticks) = (order.market, order.book_side(), order.rests_at_ticks);
        self.touch_level(market, side, ticks);
        self.markets[market.0 as usize]
            .book
            .unlink(&mut self.orders, slot);
        self.finish_order(slot, end, reason, out);
    }

    /// Ends an open order that is off the book: takes it out of its user's list and the arena,
    /// then ends it.
    pub(crate) fn finish_order(
        &mut self,
        slot: u32,
        end: OrderEnd,
        reason: Option<CancelReason>,
        out: &mut Vec<Event>,
    ) {
        let order = self.orders.get(slot).clone();
        self.unlink_user(slot);
        self.orders.remove(slot);
        self.end_order(&order, end, reason, out);
    }

    /// Ends an order that is in no book, list or arena: releases what it still holds.
    // Inlined into both callers: as a call, the cancel path had to build the order's copy in
    // memory for it (+33 instructions per `cancel-heavy` operation).
    #[inline(always)]
    fn end_order(
        &mut self,
        order: &Order,
        end: OrderEnd,
        reason: Option<CancelReason>,
        out: &mut Vec<Event>,
    ) {
        assert!(!order.resting);
        let remaining = order.remaining_qty;
        match order.side {
            Side::Buy => {
                let market_buy = order.order_type == OrderType::Market;
                // A MARKET BUY locked exactly what its plan said the fills would cost.
                assert!(!market_buy || order.locked_micros == 0);
                self.ledger.unlock(order.user, order.locked_micros);
            }
            Side::Sell if remaining > 0 => {
                self.ledger
                    .release(order.market, order.user, order.outcome, remaining);
            }
            Side::Sell => {}
        }
        if let Some(expires_at) = order.expires_at_micros {
            self.expiries.remove(&(expires_at, order.id));
        }
        self.forget_evicted_client_id(order.user, order.id);
        out.push(Event::OrderEnded {
            order: order.id,
            user: order.user,
            market: order.market,
            end,
            reason,
            filled_qty: order.filled_qty(),
            unfilled_qty: remaining,
        });
    }

    // Its test for nothing to forget is a few instructions: cheaper inlined than called.
    #[inline(always)]
    fn forget_evicted_client_id(&mut self, user: UserId, order: OrderId) {
        let Some(ids) = self.users[user.0 as usize].client_ids.as_mut() else {
            return;
        };
        if ids.evicted_open.is_empty() {
            return;
        }
        if let Some(client_order_id) = ids.evicted_open.remove(&order) {
            ids.records.remove(&client_order_id);
        }
    }

    /// What taking would do, without changing anything: same order of makers, same
    /// self-trade handling and the same fee arithmetic as `walk`.
    pub(crate) fn plan(&self, taker: &PlanTaker) -> Plan {
        let market = &self.markets[taker.market.0 as usize];
        let params = &market.params;
        let side = BookSide::of(taker.side, taker.outcome);
        let book = &market.book;
        let limit_ticks = book.ticks(book_price_units(taker.outcome, taker.limit_units));
        let mut plan = Plan::default();
        let mut fees = TakerFees::default();
        let mut remaining = taker.qty;
        let mut level = book.best_ticks(side.opposite());
        while let Some(ticks) = level.filter(|ticks| crosses(side, limit_ticks, *ticks)) {
            let level_price = book.units(ticks);
            let mut slot = book.level_at(ticks).head;
            while slot != NIL {
                let maker = self.orders.get(slot);
                slot = maker.level_next;
                if maker.user == taker.user {
                    plan.self_trade = true;
                    match taker.self_trade_prevention {
                        SelfTradePrevention::CancelTaker | SelfTradePrevention::CancelBoth => {
                            return plan
                        }
                        SelfTradePrevention::CancelMaker => continue,
                        SelfTradePrevention::DecrementAndCancel => {
                            let qty = remaining.min(maker.remaining_qty);
                            if qty == remaining {
                                return plan;
                            }
                            remaining -= qty;
                            continue;
                        }
                    }
                }
                plan.crossed = true;
                let wanted = remaining.min(maker.remaining_qty);
                let pay_units = outcome_price(taker.outcome, level_price);
                let qty = match taker.cash_budget_micros {
                    None => wanted,
                    Some(budget) => affordable_qty(
                        &plan,
                        &fees,
                        params.taker_fee_bps,
                        budget,
                        wanted,
                        level_price,
                        pay_units,
                    ),
                };
                if qty == 0 {
                    return plan;
                }
                plan.filled_qty += qty;
                plan.notional_micros += notional_micros(qty, pay_units);
                fees.add(params.taker_fee_bps, qty, level_price);
                plan.fee_micros = fees.charged_micros;
                remaining -= qty;
                if remaining == 0 || qty < wanted {
                    return plan;
                }
            }
            level = book.next_worse(side.opposite(), ticks);
        }
        plan
    }
}

/// One side of a fill: a buyer pays its outcome price and fee out of its order's locked cash
/// and receives shares; a seller gives reserved shares and is paid, net of its fee.
// A free function over `&mut Order` so the taker (held outside the arena) and a maker (in it)
// settle through the same code, and the compiler need not reload the order after each ledger
// store.
fn settle_fill(
    ledger: &mut Ledger,
    order: &mut Order,
    yes_price_units: u16,
    qty: u64,
    fee_micros: i64,
) {
    let (user, market, outcome) = (order.user, order.market, order.outcome);
    let amount = notional_micros(qty, outcome_price(outcome, yes_price_units));
    match order.side {
        Side::Buy => {
            ledger.pay_into_escrow(user, market, amount);
            ledger.charge_fee(user, fee_micros, true);
            ledger.add_free(market, user, outcome, qty);
            order.locked_micros -= amount + fee_micros.max(0);
            assert!(order.locked_micros >= 0);
        }
        Side::Sell => {
            ledger.remove_reserved(market, user, outcome, qty);
            ledger.pay_from_escrow(market, user, amount);
            ledger.charge_fee(user, fee_micros, false);
        }
    }
    order.fill(qty);
}

/// How a taker ends after its walk: `None` when its remainder rests.
fn taker_end(taker: &Order, self_trade: bool) -> Option<(OrderEnd, Option<CancelReason>)> {
    if self_trade {
        return Some((OrderEnd::Cancelled, Some(CancelReason::SelfTrade)));
    }
    if taker.remaining_qty == 0 {
        return Some((OrderEnd::Filled, None));
    }
    match (taker.order_type, taker.time_in_force) {
        (OrderType::Limit, TimeInForce::Gtc | TimeInForce::Gtd) => None,
        (OrderType::Limit, TimeInForce::Ioc) => {
            Some((OrderEnd::Cancelled, Some(CancelReason::Unfilled)))
        }
        (OrderType::Limit, TimeInForce::Fok) => {
            panic!("a FOK order is only accepted when its plan fills it completely")
        }
        (OrderType::Market, _) => Some((OrderEnd::Cancelled, Some(CancelReason::SlippageLimit))),
    }
}

/// The running taker fee of one order: `ceil(rate * sum(qty * p * (1 - p)))`.
#[derive(Clone, Copy, Debug, Default)]
struct TakerFees {
    weight: u128,
    charged_micros: i64,
}

impl TakerFees {
    /// Adds one fill and returns the increase of the order's total fee.
    fn add(&mut self, rate_bps: i32, qty: u64, yes_price_units: u16) -> i64 {
        self.weight += fill_fee_weight(qty, yes_price_units);
        let total = fee_ceil_micros(rate_bps, self.weight);
        let increase = total - self.charged_micros;
        self.charged_micros = total;
        increase
    }
}

/// The most shares (at most `wanted`) at this price that keep the order's total cost,
/// fee included, within `budget`. Cost grows with qty, so a binary search finds it.
fn affordable_qty(
    plan: &Plan,
    fees: &TakerFees,
    rate_bps: i32,
    budget_micros: i64,
    wanted: u64,
    yes_price_units: u16,
    pay_units: u16,
) -> u64 {
    let cost = |qty: u64| {
        let weight = fees.weight + fill_fee_weight(qty, yes_price_units);
        plan.notional_micros + notional_micros(qty, pay_units) + fee_ceil_micros(rate_bps, weight)
    };
    let (mut low, mut high) = (0u64, wanted);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if cost(mid) <= budget_micros {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    low
}

#[allow(dead_code)]
const _: () = assert!(complement_units(1) == PRICE_UNITS_MAX);
