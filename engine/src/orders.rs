//! The order arena: every open order lives in one slot of a `Vec`, linked into its price
//! level's FIFO queue and its user's list by `u32` slot indexes (intrusive lists, so resting
//! an order allocates nothing once the arena has grown).
//!
//! Owns slot allocation and the id -> slot index. It must never decide anything about
//! matching or money: callers link and unlink slots and keep the ledger in step.

use rustc_hash::FxHashMap;

use crate::types::{
    BookSide, MarketId, OrderId, OrderType, Outcome, SelfTradePrevention, Side, TimeInForce, UserId,
};

/// The end of an intrusive list.
pub(crate) const NIL: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub(crate) struct Order {
    pub id: OrderId,
    pub user: UserId,
    pub market: MarketId,
    pub side: Side,
    pub outcome: Outcome,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub self_trade_prevention: SelfTradePrevention,
    pub post_only: bool,
    pub reduce_only: bool,
    /// Limit in the order's own outcome.
    pub limit_units: u16,
    /// The total quantity (shrinks on amend-down and self-trade decrements).
    pub qty: u64,
    pub filled_qty: u64,
    pub expires_at_micros: Option<u64>,
    /// Cash this order holds in its user's `locked` balance (BUY orders only).
    pub locked_micros: i64,
    /// Whether the order sits in a book level (false while it is taking).
    pub resting: bool,
    pub level_prev: u32,
    pub level_next: u32,
    pub user_prev: u32,
    pub user_next: u32,
}

impl Order {
    pub fn remaining_qty(&self) -> u64 {
        assert!(self.filled_qty <= self.qty);
        self.qty - self.filled_qty
    }

    pub fn book_side(&self) -> BookSide {
        BookSide::of(self.side, self.outcome)
    }

    /// The order's limit as a YES price, where it rests in the book.
    pub fn book_price_units(&self) -> u16 {
        book_price_units(self.outcome, self.limit_units)
    }
}

/// An outcome price as a YES price.
pub(crate) fn book_price_units(outcome: Outcome, price_units: u16) -> u16 {
    match outcome {
        Outcome::Yes => price_units,
        Outcome::No => crate::units::complement_units(price_units),
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Arena {
    slots: Vec<Order>,
    free: Vec<u32>,
    by_id: FxHashMap<OrderId, u32>,
}

impl Arena {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn insert(&mut self, order: Order) -> u32 {
        let id = order.id;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = order;
                slot
            }
            None => {
                self.slots.push(order);
                u32::try_from(self.slots.len() - 1).expect("arena bounded by OPEN_ORDERS_MAX")
            }
        };
        let previous = self.by_id.insert(id, slot);
        assert!(previous.is_none());
        slot
    }

    pub fn remove(&mut self, slot: u32) {
        let order = &self.slots[slot as usize];
        assert!(!order.resting);
        let removed = self.by_id.remove(&order.id);
        assert_eq!(removed, Some(slot));
        self.free.push(slot);
    }

    pub fn slot_of(&self, id: OrderId) -> Option<u32> {
        self.by_id.get(&id).copied()
    }

    pub fn get(&self, slot: u32) -> &Order {
        &self.slots[slot as usize]
    }

    pub fn get_mut(&mut self, slot: u32) -> &mut Order {
        &mut self.slots[slot as usize]
    }

    /// Every open order, in id order (for snapshots and checks; not for hot paths).
    pub fn ids_sorted(&self) -> Vec<(OrderId, u32)> {
        let mut ids: Vec<(OrderId, u32)> =
            self.by_id.iter().map(|(id, slot)| (*id, *slot)).collect();
        ids.sort_unstable();
        ids
    }
}
