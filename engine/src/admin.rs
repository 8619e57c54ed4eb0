//! Users, markets and money outside trading: creation, the market lifecycle, resolution,
//! deposits, withdrawals, split and merge.
//!
//! Every function validates everything first and mutates only after, so a reject changes
//! nothing. It must never match orders; closing and resolving only cancel them.

use crate::book::Book;
use crate::command::MarketParams;
use crate::engine::{Engine, Market, UserOrders};
use crate::event::Event;
use crate::ledger::Cash;
use crate::reject::Reject;
use crate::types::{CancelReason, MarketId, MarketState, OrderEnd, Outcome, Resolution, UserId};
use crate::units::{
    notional_micros, CASH_IN_SYSTEM_MICROS_MAX, FEE_RATE_BPS_MAX, MICROS_PER_SHARE,
    ORDER_QTY_LIMIT, PRICE_SCALE, TICK_UNITS_ALLOWED, TRANSFER_MICROS_MAX,
};

impl Engine {
    pub(crate) fn check_user(&self, user: UserId) -> Result<(), Reject> {
        if (user.0 as usize) < self.users.len() {
            Ok(())
        } else {
            Err(Reject::UnknownUser)
        }
    }

    pub(crate) fn market_state(&self, market: MarketId) -> Result<MarketState, Reject> {
        self.markets
            .get(market.0 as usize)
            .map(|m| m.state)
            .ok_or(Reject::UnknownMarket)
    }

    pub(crate) fn create_user(&mut self, out: &mut Vec<Event>) -> Result<(), Reject> {
        if self.users.len() >= self.config.users_max as usize {
            return Err(Reject::TooManyUsers);
        }
        let user = UserId(self.users.len() as u32);
        self.users.push(UserOrders::default());
        self.ledger.add_cash_account(Cash::default());
        out.push(Event::UserCreated { user });
        Ok(())
    }

    pub(crate) fn create_market(
        &mut self,
        params: &MarketParams,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        if self.markets.len() >= self.config.markets_max as usize {
            return Err(Reject::TooManyMarkets);
        }
        if !market_params_valid(params, self.now_micros) {
            return Err(Reject::InvalidMarketParams);
        }
        if self.slugs.contains_key(&params.slug) {
            return Err(Reject::SlugTaken);
        }
        let market = MarketId(self.markets.len() as u32);
        self.markets.push(Market {
            params: *params,
            state: MarketState::Open,
            resolution: None,
            book: Book::new(params.tick_units),
            book_seq: 0,
        });
        self.slugs.insert(params.slug, market);
        self.ledger.escrow_micros.push(0);
        self.ledger.holders.push(Vec::new());
        if let Some(close_at) = params.close_ts_micros {
            self.closes.insert((close_at, market));
        }
        out.push(Event::MarketCreated {
            market,
            params: *params,
        });
        Ok(())
    }

    pub(crate) fn halt_market(
        &mut self,
        market: MarketId,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.transition(market, MarketState::Open, MarketState::Halted, out)
    }

    pub(crate) fn resume_market(
        &mut self,
        market: MarketId,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.transition(market, MarketState::Halted, MarketState::Open, out)
    }

    fn transition(
        &mut self,
        market: MarketId,
        from: MarketState,
        to: MarketState,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        if self.market_state(market)? != from {
            return Err(Reject::InvalidMarketTransition);
        }
        self.markets[market.0 as usize].state = to;
        out.push(Event::MarketStateChanged { market, state: to });
        Ok(())
    }

    pub(crate) fn close_market_command(
        &mut self,
        market: MarketId,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        match self.market_state(market)? {
            MarketState::Open | MarketState::Halted => {
                self.close_market(market, CancelReason::MarketClosed, out);
                Ok(())
            }
            MarketState::Closed | MarketState::Resolved => Err(Reject::InvalidMarketTransition),
        }
    }

    /// Cancels every open order of the market (ascending id) and marks it closed.
    pub(crate) fn close_market(
        &mut self,
        market: MarketId,
        reason: CancelReason,
        out: &mut Vec<Event>,
    ) {
        let state = &self.markets[market.0 as usize];
        assert!(matches!(
            state.state,
            MarketState::Open | MarketState::Halted
        ));
        if let Some(close_at) = state.params.close_ts_micros {
            self.closes.remove(&(close_at, market));
        }
        let mut slots = core::mem::take(&mut self.scratch_slots);
        slots.clear();
        for side in [crate::types::BookSide::Bid, crate::types::BookSide::Ask] {
            for price in self.markets[market.0 as usize].book.prices(side) {
                let mut slot = self.markets[market.0 as usize].book.level(price).head;
                while slot != crate::orders::NIL {
                    let order = self.orders.get(slot);
                    slots.push((order.id, slot));
                    slot = order.level_next;
                }
            }
        }
        // Sorting the ids beside the slots, not reading them through the slots: on a large
        // book every such read is a cache miss, several per comparison.
        slots.sort_unstable();
        for &(_, slot) in &slots {
            self.end_resting(slot, OrderEnd::Cancelled, Some(reason), out);
        }
        self.scratch_slots = slots;
        self.markets[market.0 as usize].state = MarketState::Closed;
        out.push(Event::MarketStateChanged {
            market,
            state: MarketState::Closed,
        });
    }

    pub(crate) fn resolve_market(
        &mut self,
        market: MarketId,
        resolution: Resolution,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let state = self.market_state(market)?;
        if state == MarketState::Resolved {
            return Err(Reject::InvalidMarketTransition);
        }
        let yes_payout_units = resolution.yes_payout_units();
        if yes_payout_units as u32 > PRICE_SCALE {
            return Err(Reject::InvalidResolution);
        }
        if state != MarketState::Closed {
            self.close_market(market, CancelReason::MarketResolved, out);
        }
        let mut holders = core::mem::take(&mut self.ledger.holders[market.0 as usize]);
        holders.sort_unstable();
        // Each holder's settlement records a touch: one allocation for them all, rather than
        // the list doubling (and copying) its way up to them.
        self.ledger.touched_positions.reserve(holders.len());
        let no_payout_units = PRICE_SCALE as u16 - yes_payout_units;
        for &user in &holders {
            let position = self.ledger.settle(market, user);
            if position.is_empty() {
                continue;
            }
            let payout_micros = notional_micros(position.yes_free, yes_payout_units)
                + notional_micros(position.no_free, no_payout_units);
            if payout_micros > 0 {
                self.ledger.pay_from_escrow(market, user, payout_micros);
            }
            out.push(Event::Settlement {
                market,
                user,
                yes_shares: position.yes_free,
                no_shares: position.no_free,
                payout_micros,
            });
        }
        assert_eq!(self.ledger.escrow_micros[market.0 as usize], 0);
        let state = &mut self.markets[market.0 as usize];
        state.state = MarketState::Resolved;
        state.resolution = Some(resolution);
        out.push(Event::MarketResolved { market, resolution });
        Ok(())
    }

    pub(crate) fn deposit(
        &mut self,
        user: UserId,
        amount_micros: i64,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.check_user(user)?;
        if !(1..=TRANSFER_MICROS_MAX).contains(&amount_micros) {
            return Err(Reject::AmountOutOfRange);
        }
        let in_system = -self.ledger.external_micros;
        if in_system > CASH_IN_SYSTEM_MICROS_MAX - amount_micros {
            return Err(Reject::CashCapExceeded);
        }
        self.ledger.deposit(user, amount_micros);
        out.push(Event::Deposited {
            user,
            amount_micros,
        });
        Ok(())
    }

    pub(crate) fn withdraw(
        &mut self,
        user: UserId,
        amount_micros: i64,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.check_user(user)?;
        if !(1..=TRANSFER_MICROS_MAX).contains(&amount_micros) {
            return Err(Reject::AmountOutOfRange);
        }
        if self.ledger.cash(user).available_micros < amount_micros {
            return Err(Reject::InsufficientFunds);
        }
        self.ledger.withdraw(user, amount_micros);
        out.push(Event::Withdrawn {
            user,
            amount_micros,
        });
        Ok(())
    }

    pub(crate) fn split(
        &mut self,
        user: UserId,
        market: MarketId,
        qty: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.check_user(user)?;
        if self.market_state(market)? != MarketState::Open {
            return Err(Reject::MarketNotOpen);
        }
        if !(1..=ORDER_QTY_LIMIT).contains(&qty) {
            return Err(Reject::QtyOutOfRange);
        }
        let cost_micros = qty as i64 * MICROS_PER_SHARE;
        if self.ledger.cash(user).available_micros < cost_micros {
            return Err(Reject::InsufficientFunds);
        }
        self.ledger.split(market, user, qty, cost_micros);
        out.push(Event::SharesSplit { user, market, qty });
        Ok(())
    }

    pub(crate) fn merge(
        &mut self,
        user: UserId,
        market: MarketId,
        qty: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.check_user(user)?;
        if self.market_state(market)? == MarketState::Resolved {
            return Err(Reject::MarketNotOpen);
        }
        if !(1..=ORDER_QTY_LIMIT).contains(&qty) {
            return Err(Reject::QtyOutOfRange);
        }
        let position = self.ledger.position(market, user);
        if position.yes_free < qty || position.no_free < qty {
            return Err(Reject::InsufficientShares);
        }
        self.ledger.remove_free(market, user, Outcome::Yes, qty);
        self.ledger.remove_free(market, user, Outcome::No, qty);
        self.ledger
            .pay_from_escrow(market, user, qty as i64 * MICROS_PER_SHARE);
        out.push(Event::SharesMerged { user, market, qty });
        Ok(())
    }
}

impl Engine {
    /// Free shares change hands; cash and escrow stay where they are. Not on a resolved market,
    /// whose shares are already paid out.
    pub(crate) fn transfer_shares(
        &mut self,
        from: UserId,
        to: UserId,
        market: MarketId,
        outcome: Outcome,
        qty: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.check_user(from)?;
        self.check_user(to)?;
        if from == to {
            return Err(Reject::SameUser);
        }
        if self.market_state(market)? == MarketState::Resolved {
            return Err(Reject::MarketNotOpen);
        }
        if !(1..=ORDER_QTY_LIMIT).contains(&qty) {
            return Err(Reject::QtyOutOfRange);
        }
        let position = self.ledger.position(market, from);
        let free = match outcome {
            Outcome::Yes => position.yes_free,
            Outcome::No => position.no_free,
        };
        if free < qty {
            return Err(Reject::InsufficientShares);
        }
        self.ledger.remove_free(market, from, outcome, qty);
        self.ledger.add_free(market, to, outcome, qty);
        out.push(Event::SharesTransferred {
            from,
            to,
            market,
            outcome,
            qty,
        });
        Ok(())
    }
}

fn market_params_valid(params: &MarketParams, now_micros: u64) -> bool {
    let qty_valid = 1 <= params.qty_min
        && params.qty_min <= params.qty_max
        && params.qty_max <= ORDER_QTY_LIMIT;
    let taker_valid = (0..=FEE_RATE_BPS_MAX).contains(&params.taker_fee_bps);
    // A rebate may not exceed the taker rate, so the fee account never goes negative. (The
    // taker rate is checked first: negating an out-of-range one could overflow.)
    let maker_valid =
        taker_valid && (-params.taker_fee_bps..=FEE_RATE_BPS_MAX).contains(&params.maker_fee_bps);
    let close_valid = params
        .close_ts_micros
        .is_none_or(|close| close > now_micros);
    TICK_UNITS_ALLOWED.contains(&params.tick_units)
        && qty_valid
        && taker_valid
        && maker_valid
        && close_valid
}
