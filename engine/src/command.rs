//! Commands: the only way to change the engine.
//!
//! A command is a plain value with a stable, tagged serde shape
//! (`{"ts_micros": .., "op": {"type": "place", ..}}`), so the server can journal it and the
//! browser can exchange it as JSON.
//! Commands never carry decimals: the edges parse those into price units and micros first.

use serde::{Deserialize, Serialize};

use crate::types::{
    ClientOrderId, MarketId, OrderId, OrderType, Outcome, Resolution, SelfTradePrevention, Side,
    Slug, TimeInForce, UserId,
};

/// Bumped whenever the serialized shape of `Command` or `Event` changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

/// One command, stamped by the sequencer. `ts_micros` never decreases from one command to the
/// next; the engine uses it as its only clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub ts_micros: u64,
    pub op: Op,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// Advances the clock only: expires GTD orders and closes markets that are due.
    Tick,
    CreateUser,
    CreateMarket(MarketParams),
    HaltMarket {
        market: MarketId,
    },
    ResumeMarket {
        market: MarketId,
    },
    CloseMarket {
        market: MarketId,
    },
    ResolveMarket {
        market: MarketId,
        resolution: Resolution,
    },
    Deposit {
        user: UserId,
        amount_micros: i64,
    },
    Withdraw {
        user: UserId,
        amount_micros: i64,
    },
    /// Cash -> `qty` YES + `qty` NO shares.
    Split {
        user: UserId,
        market: MarketId,
        qty: u64,
    },
    /// `qty` YES + `qty` NO shares -> cash.
    Merge {
        user: UserId,
        market: MarketId,
        qty: u64,
    },
    Place(PlaceOrder),
    Cancel {
        user: UserId,
        order: OrderId,
    },
    /// Cancels the user's open orders in one market, or everywhere.
    CancelAll {
        user: UserId,
        market: Option<MarketId>,
    },
    /// `qty` is the new total quantity; `price_units` the new limit in the order's outcome.
    Amend {
        user: UserId,
        order: OrderId,
        qty: Option<u64>,
        price_units: Option<u16>,
    },
    /// Cancels first, then places, each in the order given and each on its own.
    Batch {
        user: UserId,
        cancels: Vec<OrderId>,
        places: Vec<PlaceOrder>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketParams {
    pub slug: Slug,
    /// 100, 10 or 1 price units (0.01, 0.001, 0.0001).
    pub tick_units: u16,
    pub qty_min: u64,
    pub qty_max: u64,
    /// May be negative (a rebate) but never larger in size than the taker rate.
    pub maker_fee_bps: i32,
    pub taker_fee_bps: i32,
    pub close_ts_micros: Option<u64>,
}

#[cfg(test)]
impl MarketParams {
    /// A fee-free market that never closes, of 0.01 ticks and orders of 1 to 1,000 shares.
    pub(crate) fn for_tests(slug: &str) -> MarketParams {
        MarketParams {
            slug: Slug::new(slug).expect("a valid slug"),
            tick_units: 100,
            qty_min: 1,
            qty_max: 1_000,
            maker_fee_bps: 0,
            taker_fee_bps: 0,
            close_ts_micros: None,
        }
    }
}

/// An order as a user submits it. Prices are in the order's own outcome (BUY NO at 4,500 rests
/// on the YES ask at 5,500).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlaceOrder {
    pub user: UserId,
    pub market: MarketId,
    pub side: Side,
    pub outcome: Outcome,
    pub order_type: OrderType,
    /// The limit of a LIMIT order; MARKET orders carry none.
    pub price_units: Option<u16>,
    /// Shares; exactly one of `qty` and `cash_micros` (MARKET BUY only) is given.
    pub qty: Option<u64>,
    pub cash_micros: Option<i64>,
    pub time_in_force: TimeInForce,
    /// Required for GTD, forbidden otherwise.
    pub expires_at_micros: Option<u64>,
    #[serde(default)]
    pub post_only: bool,
    #[serde(default)]
    pub reduce_only: bool,
    #[serde(default)]
    pub self_trade_prevention: SelfTradePrevention,
    pub client_order_id: Option<ClientOrderId>,
    /// MARKET only: the worst acceptable price in the order's outcome.
    pub worst_price_units: Option<u16>,
    /// MARKET only: the worst acceptable price as a relative move from the best opposite price.
    pub max_slippage_bps: Option<u32>,
}

impl PlaceOrder {
    /// A GTC limit order with every option at its default.
    pub fn limit(
        user: UserId,
        market: MarketId,
        side: Side,
        outcome: Outcome,
        price_units: u16,
        qty: u64,
    ) -> PlaceOrder {
        PlaceOrder {
            user,
            market,
            side,
            outcome,
            order_type: OrderType::Limit,
            price_units: Some(price_units),
            qty: Some(qty),
            cash_micros: None,
            time_in_force: TimeInForce::Gtc,
            expires_at_micros: None,
            post_only: false,
            reduce_only: false,
            self_trade_prevention: SelfTradePrevention::CancelTaker,
            client_order_id: None,
            worst_price_units: None,
            max_slippage_bps: None,
        }
    }

    /// An IOC market order for `qty` shares with no protection beyond the market's extremes.
    pub fn market(
        user: UserId,
        market: MarketId,
        side: Side,
        outcome: Outcome,
        qty: u64,
    ) -> PlaceOrder {
        PlaceOrder {
            order_type: OrderType::Market,
            price_units: None,
            time_in_force: TimeInForce::Ioc,
            ..PlaceOrder::limit(user, market, side, outcome, 0, qty)
        }
    }
}
