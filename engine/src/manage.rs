//! Managing open orders: cancel, cancel-all, amend and batch.
//!
//! Like placing, each validates fully before changing anything. It must never reorder a
//! queue except as the rules say: a decrease keeps priority, any price change or increase
//! re-enters the order at the back (where it may take liquidity first).

use crate::command::PlaceOrder;
use crate::engine::Engine;
use crate::event::Event;
use crate::matching::check_price;
use crate::orders::{book_price_units, NIL};
use crate::reject::Reject;
use crate::types::{CancelReason, MarketId, MarketState, OrderEnd, OrderId, Side, UserId};
use crate::units::BATCH_ITEMS_MAX;

impl Engine {
    /// The slot of `order` if it is open and belongs to `user`.
    fn owned_slot(&self, user: UserId, order: OrderId) -> Result<u32, Reject> {
        self.check_user(user)?;
        let slot = self.orders.slot_of(order).ok_or(Reject::UnknownOrder)?;
        if self.orders.get(slot).user != user {
            return Err(Reject::NotOrderOwner);
        }
        Ok(slot)
    }

    pub(crate) fn cancel(
        &mut self,
        user: UserId,
        order: OrderId,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let slot = self.owned_slot(user, order)?;
        self.end_resting(
            slot,
            OrderEnd::Cancelled,
            Some(CancelReason::UserRequested),
            out,
        );
        Ok(())
    }

    /// Cancels the user's open orders (in one market, or all), in ascending id order.
    pub(crate) fn cancel_all(
        &mut self,
        user: UserId,
        market: Option<MarketId>,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.check_user(user)?;
        if let Some(market) = market {
            self.market_state(market)?;
        }
        let mut slots = core::mem::take(&mut self.scratch_slots);
        slots.clear();
        let mut slot = self.users[user.0 as usize].head;
        while slot != NIL {
            let order = self.orders.get(slot);
            if market.is_none_or(|m| m == order.market) {
                slots.push((order.id, slot));
            }
            slot = order.user_next;
        }
        for &(_, slot) in &slots {
            self.end_resting(
                slot,
                OrderEnd::Cancelled,
                Some(CancelReason::UserRequested),
                out,
            );
        }
        self.scratch_slots = slots;
        Ok(())
    }

    pub(crate) fn amend(
        &mut self,
        user: UserId,
        order: OrderId,
        qty: Option<u64>,
        price_units: Option<u16>,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let slot = self.owned_slot(user, order)?;
        let current = self.orders.get(slot);
        let market = &self.markets[current.market.0 as usize];
        if market.state != MarketState::Open {
            return Err(Reject::MarketNotOpen);
        }
        let new_qty = qty.unwrap_or(current.qty);
        let new_limit = price_units.unwrap_or(current.limit_units);
        check_price(new_limit, market.params.tick_units)?;
        let qty_allowed = market.params.qty_min..=market.params.qty_max;
        if !qty_allowed.contains(&new_qty) || new_qty <= current.filled_qty() {
            return Err(Reject::QtyOutOfRange);
        }
        if new_qty == current.qty && new_limit == current.limit_units {
            return Err(Reject::NothingToAmend);
        }
        if new_limit == current.limit_units && new_qty < current.qty {
            self.amend_down(slot, new_qty, out);
            return Ok(());
        }
        let lock_micros = self.check_reentry(slot, new_qty, new_limit)?;
        self.reenter(slot, new_qty, new_limit, lock_micros, out);
        Ok(())
    }

    /// A smaller quantity at the same price keeps the order's place in its queue.
    fn amend_down(&mut self, slot: u32, new_qty: u64, out: &mut Vec<Event>) {
        let order = self.orders.get(slot);
        let dropped = order.qty - new_qty;
        let (market, side, ticks) = (order.market, order.book_side(), order.rests_at_ticks);
        self.touch_level(market, side, ticks);
        self.markets[market.0 as usize].book.reduce(ticks, dropped);
        self.orders.get_mut(slot).decrement(dropped);
        self.release_excess(slot, dropped);
        let order = self.orders.get(slot);
        out.push(Event::OrderAmended {
            order: order.id,
            qty: order.qty,
            price_units: order.limit_units,
            remaining_qty: order.remaining_qty,
            priority_kept: true,
        });
    }

    /// What re-entering at a new price or a larger size needs: post-only must still not
    /// take, and the larger reserve must be affordable. Answers the cash a BUY holds once
    /// re-entered until it rests again (its reserve, or if it takes on the way,
    /// `MarketParams::taking_reserve_micros`); 0 for a SELL.
    fn check_reentry(&self, slot: u32, new_qty: u64, new_limit: u16) -> Result<i64, Reject> {
        let order = self.orders.get(slot);
        let limit = book_price_units(order.outcome, new_limit);
        let takes = self.would_take(order.market, order.book_side(), limit);
        if order.post_only && takes {
            return Err(Reject::PostOnlyWouldTake);
        }
        let new_remaining = new_qty - order.filled_qty();
        let position = self.ledger.position(order.market, order.user);
        match order.side {
            Side::Buy => {
                if order.reduce_only && new_remaining > position.free(order.outcome.other()) {
                    return Err(Reject::ReduceOnlyWouldIncrease);
                }
                let params = &self.markets[order.market.0 as usize].params;
                let need = if takes {
                    params.taking_reserve_micros(new_remaining, new_limit)
                } else {
                    params.buy_reserve_micros(new_remaining, new_limit)
                };
                let extra = need - order.locked_micros;
                if extra > self.ledger.cash(order.user).available_micros {
                    return Err(Reject::InsufficientFunds);
                }
                Ok(need)
            }
            Side::Sell => {
                let extra = new_remaining.saturating_sub(order.remaining_qty);
                if extra > position.free(order.outcome) {
                    return Err(Reject::InsufficientShares);
                }
                Ok(0)
            }
        }
    }

    /// Takes the order off the book, resizes its reservation (a BUY's to `lock_micros`, as
    /// `check_reentry` answered), and enters it again as if new.
    fn reenter(
        &mut self,
        slot: u32,
        new_qty: u64,
        new_limit: u16,
        lock_micros: i64,
        out: &mut Vec<Event>,
    ) {
        let order = self.orders.get(slot);
        let (market, side, ticks) = (order.market, order.book_side(), order.rests_at_ticks);
        self.touch_level(market, side, ticks);
        self.markets[market.0 as usize]
            .book
            .unlink(&mut self.orders, slot);
        let order = self.orders.get(slot);
        let (user, outcome, old_remaining) = (order.user, order.outcome, order.remaining_qty);
        let new_remaining = new_qty - order.filled_qty();
        match order.side {
            Side::Buy => {
                let held = self.orders.get(slot).locked_micros;
                if lock_micros > held {
                    self.ledger.lock(user, lock_micros - held);
                } else {
                    self.ledger.unlock(user, held - lock_micros);
                }
                self.orders.get_mut(slot).locked_micros = lock_micros;
            }
            Side::Sell if new_remaining > old_remaining => {
                self.ledger
                    .reserve(market, user, outcome, new_remaining - old_remaining);
            }
            Side::Sell => {
                self.ledger
                    .release(market, user, outcome, old_remaining - new_remaining);
            }
        }
        let order = self.orders.get_mut(slot);
        order.resize(new_qty);
        order.set_limit(new_limit, &self.markets[market.0 as usize].book);
        out.push(Event::OrderAmended {
            order: order.id,
            qty: new_qty,
            price_units: new_limit,
            remaining_qty: new_remaining,
            priority_kept: false,
        });
        self.take_resident(slot, out);
    }

    /// Cancels first, then places, each on its own: a failed item is reported as an event
    /// and the others go ahead.
    pub(crate) fn batch(
        &mut self,
        user: UserId,
        cancels: &[OrderId],
        places: &[PlaceOrder],
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.check_user(user)?;
        if cancels.len() + places.len() > BATCH_ITEMS_MAX {
            return Err(Reject::BatchTooLarge);
        }
        for (index, order) in cancels.iter().enumerate() {
            if let Err(reason) = self.cancel(user, *order, out) {
                out.push(Event::BatchItemRejected {
                    index: index as u32,
                    reason,
                });
            }
        }
        for (index, request) in places.iter().enumerate() {
            let result = if request.user == user {
                self.place(request, out)
            } else {
                Err(Reject::NotOrderOwner)
            };
            if let Err(reason) = result {
                out.push(Event::BatchItemRejected {
                    index: (cancels.len() + index) as u32,
                    reason,
                });
            }
        }
        Ok(())
    }
}
