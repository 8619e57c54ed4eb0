//! Read-only queries: markets, books, orders, balances, positions and ledger totals.
//!
//! All cheap (no full scans except where named) and none mutating. Views are plain values,
//! so callers never hold references into the engine.

use serde::{Deserialize, Serialize};

use crate::command::MarketParams;
use crate::engine::Engine;
use crate::ledger::{Cash, Position};
use crate::orders::{Order, NIL};
use crate::types::{
    BookSide, MarketId, MarketState, OrderId, OrderType, Outcome, Resolution, SelfTradePrevention,
    Side, Slug, TimeInForce, UserId,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketView {
    pub market: MarketId,
    pub params: MarketParams,
    pub state: MarketState,
    pub resolution: Option<Resolution>,
    /// The number of commands that changed this market's book so far.
    pub book_seq: u64,
    pub escrow_micros: i64,
}

/// Aggregated levels, best first, in YES prices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookDepth {
    pub market: MarketId,
    pub book_seq: u64,
    pub bids: Vec<(u16, u64)>,
    pub asks: Vec<(u16, u64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    pub order: OrderId,
    pub user: UserId,
    pub market: MarketId,
    pub side: Side,
    pub outcome: Outcome,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub self_trade_prevention: SelfTradePrevention,
    pub post_only: bool,
    pub reduce_only: bool,
    /// Limit in the order's outcome.
    pub price_units: u16,
    pub qty: u64,
    pub filled_qty: u64,
    pub remaining_qty: u64,
    pub expires_at_micros: Option<u64>,
    pub locked_micros: i64,
}

impl OrderView {
    fn of(order: &Order) -> OrderView {
        OrderView {
            order: order.id,
            user: order.user,
            market: order.market,
            side: order.side,
            outcome: order.outcome,
            order_type: order.order_type,
            time_in_force: order.time_in_force,
            self_trade_prevention: order.self_trade_prevention,
            post_only: order.post_only,
            reduce_only: order.reduce_only,
            price_units: order.limit_units,
            qty: order.qty,
            filled_qty: order.filled_qty(),
            remaining_qty: order.remaining_qty,
            expires_at_micros: order.expires_at_micros,
            locked_micros: order.locked_micros,
        }
    }
}

impl Engine {
    pub fn now_micros(&self) -> u64 {
        self.now_micros
    }

    pub fn user_count(&self) -> u32 {
        self.users.len() as u32
    }

    pub fn market_count(&self) -> u32 {
        self.markets.len() as u32
    }

    pub fn open_order_count(&self) -> usize {
        self.orders.len()
    }

    pub fn market(&self, market: MarketId) -> Option<MarketView> {
        let state = self.markets.get(market.0 as usize)?;
        Some(MarketView {
            market,
            params: state.params,
            state: state.state,
            resolution: state.resolution,
            book_seq: state.book_seq,
            escrow_micros: self.ledger.escrow_micros[market.0 as usize],
        })
    }

    pub fn market_by_slug(&self, slug: &str) -> Option<MarketId> {
        self.slugs.get(&Slug::new(slug)?).copied()
    }

    /// Up to `depth` levels per side, best first.
    pub fn book_depth(&self, market: MarketId, depth: usize) -> Option<BookDepth> {
        let state = self.markets.get(market.0 as usize)?;
        let mut book = BookDepth {
            market,
            book_seq: state.book_seq,
            bids: Vec::new(),
            asks: Vec::new(),
        };
        state.book.depth(BookSide::Bid, depth, &mut book.bids);
        state.book.depth(BookSide::Ask, depth, &mut book.asks);
        Some(book)
    }

    /// Best bid and best ask, as YES prices.
    pub fn best_prices(&self, market: MarketId) -> Option<(Option<u16>, Option<u16>)> {
        let book = &self.markets.get(market.0 as usize)?.book;
        Some((book.best(BookSide::Bid), book.best(BookSide::Ask)))
    }

    /// The mid price times two (an exact integer: the mid may fall on half a price unit).
    pub fn mid_price_units_x2(&self, market: MarketId) -> Option<u32> {
        match self.best_prices(market)? {
            (Some(bid), Some(ask)) => Some(bid as u32 + ask as u32),
            _ => None,
        }
    }

    /// An open order.
    pub fn order(&self, order: OrderId) -> Option<OrderView> {
        let slot = self.orders.slot_of(order)?;
        Some(OrderView::of(self.orders.get(slot)))
    }

    /// A user's open orders, oldest first.
    pub fn open_orders(&self, user: UserId) -> Vec<OrderView> {
        let mut views = Vec::new();
        let Some(orders) = self.users.get(user.0 as usize) else {
            return views;
        };
        let mut slot = orders.head;
        while slot != NIL {
            let order = self.orders.get(slot);
            views.push(OrderView::of(order));
            slot = order.user_next;
        }
        views
    }

    /// Shares ahead of a resting order at its level (O(orders ahead of it)).
    pub fn queue_position(&self, order: OrderId) -> Option<u64> {
        let slot = self.orders.slot_of(order)?;
        let order = self.orders.get(slot);
        if !order.resting {
            return None;
        }
        let mut ahead = 0;
        let mut cursor = order.level_prev;
        while cursor != NIL {
            let before = self.orders.get(cursor);
            ahead += before.remaining_qty;
            cursor = before.level_prev;
        }
        Some(ahead)
    }

    pub fn balance(&self, user: UserId) -> Option<Cash> {
        self.ledger
            .cash
            .get(user.0 as usize)
            .map(|account| account.value)
    }

    pub fn position(&self, user: UserId, market: MarketId) -> Position {
        self.ledger.position(market, user)
    }

    pub fn fee_account_micros(&self) -> i64 {
        self.ledger.fee_micros
    }

    /// Minus (deposits - withdrawals): the outside world's side of the ledger.
    pub fn external_micros(&self) -> i64 {
        self.ledger.external_micros
    }

    pub fn escrow_micros(&self, market: MarketId) -> Option<i64> {
        self.ledger.escrow_micros.get(market.0 as usize).copied()
    }
}
