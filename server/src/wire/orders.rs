//! Orders and fills as clients see them, and the lock terms an order's `locked` and
//! `feeReserve` are computed from.

use engine::units::buy_reserve_micros;
use engine::{LockRule, MarketParams};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::schema::{
    AveragePrice, CancelReason, Cash, LiquidityRole, OrderStatus, OrderType, Outcome, Price,
    SelfTradePrevention, Side, TimeInForce, TradeKind,
};
use crate::domain::parse_lock_rule;

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Order)]
pub struct OrderBody {
    pub id: Uuid,
    #[schema(required = true)]
    pub client_order_id: Option<String>,
    pub market_id: Uuid,
    #[schema(value_type = Side)]
    pub side: String,
    #[schema(value_type = Outcome)]
    pub outcome: String,
    #[serde(rename = "type")]
    #[schema(value_type = OrderType)]
    pub order_type: String,
    /// The limit price in the order's outcome; null for MARKET orders.
    #[schema(value_type = Option<Price>, required = true)]
    pub price: Option<String>,
    /// Shares ordered.
    pub qty: i64,
    pub filled_qty: i64,
    /// Shares still resting (0 once ended).
    pub remaining_qty: i64,
    /// Cash the order holds while it rests: a BUY's worst-case cost (its price plus the largest
    /// fee it could pay) and its `feeReserve`; 0 for a SELL (which holds shares) and once ended.
    #[schema(value_type = Cash)]
    pub locked: String,
    /// The part of `locked` held only to round a maker fee up on each fill (one micro-dollar per
    /// share still to fill where the market's maker fee is positive, see its `lockRule`); it
    /// comes back as the order fills or ends.
    #[schema(value_type = Cash)]
    pub fee_reserve: String,
    /// Null before the first fill.
    #[schema(value_type = Option<AveragePrice>, required = true)]
    pub avg_fill_price: Option<String>,
    #[schema(value_type = OrderStatus)]
    pub status: String,
    /// Set when the order left the book without filling.
    #[schema(value_type = Option<CancelReason>, required = true)]
    pub cancel_reason: Option<String>,
    #[schema(value_type = TimeInForce)]
    pub time_in_force: String,
    #[schema(format = DateTime, required = true)]
    pub expires_at: Option<String>,
    pub post_only: bool,
    pub reduce_only: bool,
    #[schema(value_type = SelfTradePrevention)]
    pub self_trade_prevention: String,
    /// Shares ahead of this order at its price level while it rests, else null.
    #[schema(required = true)]
    pub queue_position: Option<u64>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl OrderBody {
    pub fn rests(&self) -> bool {
        order_rests(&self.status)
    }
}

/// Whether an order with this status still rests on the book.
pub fn order_rests(status: &str) -> bool {
    matches!(status, "OPEN" | "PARTIALLY_FILLED")
}

/// What a market says about the cash a resting BUY locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockTerms {
    pub maker_fee_bps: i32,
    pub taker_fee_bps: i32,
    pub rule: LockRule,
}

impl LockTerms {
    pub fn of(params: &MarketParams) -> LockTerms {
        LockTerms {
            maker_fee_bps: params.maker_fee_bps,
            taker_fee_bps: params.taker_fee_bps,
            rule: params.lock_rule,
        }
    }

    /// The terms in a row's `maker_fee_bps`, `taker_fee_bps` and `lock_rule` columns.
    pub fn from_row(row: &AnyRow) -> Result<LockTerms, sqlx::Error> {
        let decode =
            |what: &str| sqlx::Error::Decode(format!("markets.{what} out of range").into());
        let maker: i64 = row.try_get("maker_fee_bps")?;
        let taker: i64 = row.try_get("taker_fee_bps")?;
        let rule: String = row.try_get("lock_rule")?;
        Ok(LockTerms {
            maker_fee_bps: i32::try_from(maker).map_err(|_| decode("maker_fee_bps"))?,
            taker_fee_bps: i32::try_from(taker).map_err(|_| decode("taker_fee_bps"))?,
            rule: parse_lock_rule(&rule).map_err(|_| decode("lock_rule"))?,
        })
    }

    /// (locked, fee reserve) in micro-dollars of an order: the engine's rule for a BUY still
    /// resting with `remaining_qty` at `limit_units`, nothing for anything else.
    pub fn order_locks(self, buy: bool, remaining_qty: u64, limit_units: u16) -> (i64, i64) {
        if !buy || remaining_qty == 0 {
            return (0, 0);
        }
        let locked = buy_reserve_micros(
            remaining_qty,
            limit_units,
            self.maker_fee_bps,
            self.taker_fee_bps,
            self.rule,
        );
        (locked, self.fee_reserve(buy, remaining_qty))
    }

    /// The part of an order's lock that only rounds maker fees up: the rule's buffer for a BUY
    /// still resting with `remaining_qty`, nothing for anything else.
    pub fn fee_reserve(self, buy: bool, remaining_qty: u64) -> i64 {
        if !buy {
            return 0;
        }
        self.rule.buffer_micros(remaining_qty, self.maker_fee_bps)
    }
}

/// One side of a trade: the caller's order and what it got.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Fill)]
pub struct FillBody {
    /// The trade's id (both sides of a trade share it).
    pub id: Uuid,
    pub order_id: Uuid,
    pub market_id: Uuid,
    #[schema(value_type = Side)]
    pub side: String,
    #[schema(value_type = Outcome)]
    pub outcome: String,
    /// In the order's outcome.
    #[schema(value_type = Price)]
    pub price: String,
    pub qty: i64,
    /// Paid by this side (negative: a maker rebate).
    #[schema(value_type = Cash)]
    pub fee: String,
    #[schema(value_type = LiquidityRole)]
    pub role: String,
    #[schema(value_type = TradeKind)]
    pub kind: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}
