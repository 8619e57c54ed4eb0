//! Events: everything a command changed, in the order it happened.
//!
//! Enough for a server to persist its projections and stream real-time updates without ever
//! reading engine internals. The order of events within one command is part of the contract
//! (the reference model reproduces it exactly):
//!
//! 1. clock events: GTD expiries (by expiry, then order id), then markets reaching their close
//!    time (by close time, then market id; each cancels its open orders by ascending id first);
//! 2. the command's own events, in the order things happen (an order is accepted, trades one
//!    maker at a time, and ends or rests);
//! 3. the net changes: `BookLevel` for every level whose size differs from before the command
//!    (by market, bids before asks, price ascending; all of one market carry that market's
//!    `book_seq`, which rises by one per command that changed its book), then `Position` (by
//!    market, then user) and `Balance` (by user) for every account whose value changed.
//!
//! A rejected command is not an event: `Engine::apply` returns the typed `Reject` and the
//! command's own events are empty (clock events may still precede it). Inside a batch, where
//! items fail on their own, a failed item is the event `BatchItemRejected`. An order's fill
//! state follows from its events: `OrderAccepted.qty`, each `Trade` it is in, the new sizes in
//! `OrderReduced` and `OrderAmended`, and finally `OrderEnded` with its filled and unfilled qty.

use serde::{Deserialize, Serialize};

use crate::command::{MarketParams, PlaceOrder};
use crate::ledger::Position;
use crate::reject::Reject;
use crate::types::{
    BookSide, CancelReason, ClientOrderId, FillKind, MarketId, MarketState, OrderEnd, OrderId,
    Outcome, Resolution, Side, TradeId, UserId,
};

// Events own no heap memory, so clearing a buffer of them is free: dropping them used to cost
// the standard workload 37 instructions per operation, all spent looking for a slug `String`.
const _: () = assert!(!core::mem::needs_drop::<Event>());

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    UserCreated {
        user: UserId,
    },
    MarketCreated {
        market: MarketId,
        params: MarketParams,
    },
    MarketStateChanged {
        market: MarketId,
        state: MarketState,
    },
    MarketResolved {
        market: MarketId,
        resolution: Resolution,
    },
    /// One holder's payout at resolution (shares are zero afterwards).
    Settlement {
        market: MarketId,
        user: UserId,
        yes_shares: u64,
        no_shares: u64,
        payout_micros: i64,
    },
    Deposited {
        user: UserId,
        amount_micros: i64,
    },
    Withdrawn {
        user: UserId,
        amount_micros: i64,
    },
    SharesSplit {
        user: UserId,
        market: MarketId,
        qty: u64,
    },
    SharesMerged {
        user: UserId,
        market: MarketId,
        qty: u64,
    },
    SharesTransferred {
        from: UserId,
        to: UserId,
        market: MarketId,
        outcome: Outcome,
        qty: u64,
    },
    /// The order as accepted: `qty` is its share quantity (for a cash-sized MARKET BUY, the
    /// quantity the cash buys) and `price_units` its limit in its outcome (for a MARKET order,
    /// its protection limit).
    OrderAccepted {
        order: OrderId,
        request: PlaceOrder,
        qty: u64,
        price_units: u16,
    },
    /// A repeated client order id with the same parameters: nothing was placed.
    OrderReplayed {
        order: OrderId,
        user: UserId,
        client_order_id: ClientOrderId,
    },
    /// One fill. `price_units` is the YES price (the maker's); `taker_side` is in YES terms.
    /// The taker's fee over its whole order is `ceil(rate * sum(qty * p * (1 - p)))`; each
    /// trade carries the increase of that running total, so the fees of an order's trades sum
    /// to exactly that figure.
    Trade {
        trade: TradeId,
        market: MarketId,
        maker_order: OrderId,
        taker_order: OrderId,
        maker_user: UserId,
        taker_user: UserId,
        price_units: u16,
        qty: u64,
        kind: FillKind,
        taker_side: Side,
        maker_fee_micros: i64,
        taker_fee_micros: i64,
    },
    /// The order (still) rests on the book with `remaining_qty` at YES price `book_price_units`.
    OrderRested {
        order: OrderId,
        market: MarketId,
        side: BookSide,
        book_price_units: u16,
        remaining_qty: u64,
    },
    /// The order's total quantity shrank without a fill (self-trade decrement).
    OrderReduced {
        order: OrderId,
        qty: u64,
        remaining_qty: u64,
        reason: CancelReason,
    },
    /// An open order was amended. `priority_kept` is false when it re-entered the book.
    OrderAmended {
        order: OrderId,
        qty: u64,
        price_units: u16,
        remaining_qty: u64,
        priority_kept: bool,
    },
    /// The order is finished; `reason` is set for `Cancelled`.
    OrderEnded {
        order: OrderId,
        user: UserId,
        market: MarketId,
        end: OrderEnd,
        reason: Option<CancelReason>,
        filled_qty: u64,
        unfilled_qty: u64,
    },
    /// An item of a batch failed on its own; `index` counts cancels first, then places.
    BatchItemRejected {
        index: u32,
        reason: Reject,
    },
    /// A book level's new absolute size (0 removes it).
    BookLevel {
        market: MarketId,
        book_seq: u64,
        side: BookSide,
        price_units: u16,
        qty: u64,
    },
    /// An account's new holdings. (Flattened: on the wire the four counts sit beside `user`
    /// and `market`.)
    Position {
        user: UserId,
        market: MarketId,
        #[serde(flatten)]
        position: Position,
    },
    Balance {
        user: UserId,
        available_micros: i64,
        locked_micros: i64,
    },
}
