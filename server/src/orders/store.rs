//! Reads of the `orders` and `trades` projections, and the public order and fill shapes.
//!
//! Owns turning committed rows into `OrderBody` / `FillBody`: prices in the order's own
//! outcome, cash as exact decimal strings, fills seen from one side (maker or taker). Must
//! never write a projection, and never return another user's order or fill: every query here
//! that takes a user filters by it in SQL.

use engine::units::{buy_reserve_micros, PRICE_SCALE};
use engine::{LockRule, MarketParams, OrderId, UserId};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::Db;
use crate::domain::{format_average_price, format_cash, format_price, parse_lock_rule};
use crate::http::page::Page;
use crate::http::schema::{
    AveragePrice, CancelReason, Cash, LiquidityRole, OrderStatus, OrderType, Outcome, Price,
    SelfTradePrevention, Side, TimeInForce, TradeKind,
};
use crate::http::Error;
use crate::users::rfc3339;

/// An order as the projection holds it, with its market's UUID.
#[derive(Clone, Debug)]
pub struct OrderRow {
    pub engine_id: OrderId,
    pub body: OrderBody,
}

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
        resting(&self.status)
    }
}

fn resting(status: &str) -> bool {
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
        let reserve = self.rule.buffer_micros(remaining_qty, self.maker_fee_bps);
        (locked, reserve)
    }
}

const ORDER_SELECT: &str = "SELECT o.engine_order_id, o.id, o.client_order_id, m.id AS market_id, \
     o.side, o.outcome, o.order_type, o.time_in_force, o.self_trade_prevention, \
     CAST(CASE WHEN o.post_only THEN 1 ELSE 0 END AS BIGINT) AS post_only, \
     CAST(CASE WHEN o.reduce_only THEN 1 ELSE 0 END AS BIGINT) AS reduce_only, o.price_units, o.qty, o.filled_qty, o.remaining_qty, \
     o.filled_notional_units, o.status, o.cancel_reason, o.expires_at, o.created_at, \
     o.updated_at, m.maker_fee_bps, m.taker_fee_bps, m.lock_rule \
     FROM orders o JOIN markets m ON m.engine_market_id = o.engine_market_id";

fn order_from_row(row: &AnyRow) -> Result<OrderRow, Error> {
    let engine_id: i64 = row.try_get("engine_order_id")?;
    let id: String = row.try_get("id")?;
    let market_id: String = row.try_get("market_id")?;
    let order_type: String = row.try_get("order_type")?;
    let price_units: i64 = row.try_get("price_units")?;
    let filled_qty: i64 = row.try_get("filled_qty")?;
    let notional: i64 = row.try_get("filled_notional_units")?;
    let expires_at: Option<i64> = row.try_get("expires_at")?;
    let price = (order_type == "LIMIT")
        .then(|| format_price(u32::try_from(price_units).unwrap_or_default()));
    let side: String = row.try_get("side")?;
    let status: String = row.try_get("status")?;
    let remaining_qty: i64 = row.try_get("remaining_qty")?;
    let (locked, fee_reserve) = LockTerms::from_row(row)?.order_locks(
        side == "BUY" && resting(&status),
        u64::try_from(remaining_qty).map_err(Error::internal)?,
        u16::try_from(price_units).map_err(Error::internal)?,
    );
    Ok(OrderRow {
        engine_id: OrderId(u64::try_from(engine_id).map_err(Error::internal)?),
        body: OrderBody {
            id: Uuid::parse_str(&id).map_err(Error::internal)?,
            client_order_id: row.try_get("client_order_id")?,
            market_id: Uuid::parse_str(&market_id).map_err(Error::internal)?,
            side,
            outcome: row.try_get("outcome")?,
            order_type,
            price,
            qty: row.try_get("qty")?,
            filled_qty,
            remaining_qty,
            locked: format_cash(locked),
            fee_reserve: format_cash(fee_reserve),
            avg_fill_price: format_average_price(
                u64::try_from(notional).unwrap_or_default(),
                u64::try_from(filled_qty).unwrap_or_default(),
            ),
            status,
            cancel_reason: row.try_get("cancel_reason")?,
            time_in_force: row.try_get("time_in_force")?,
            expires_at: expires_at.map(rfc3339),
            // Booleans read as integers: SQLite stores them so, and `Any` will not convert.
            post_only: row.try_get::<i64, _>("post_only")? != 0,
            reduce_only: row.try_get::<i64, _>("reduce_only")? != 0,
            self_trade_prevention: row.try_get("self_trade_prevention")?,
            queue_position: None,
            created_at: rfc3339(row.try_get("created_at")?),
            updated_at: rfc3339(row.try_get("updated_at")?),
        },
    })
}

/// `user`'s order with public id `id` (another user's order is `None`, like a missing one).
pub async fn order_of_user(db: &Db, user: UserId, id: Uuid) -> Result<Option<OrderRow>, Error> {
    let sql = format!("{ORDER_SELECT} WHERE o.id = $1 AND o.engine_user_id = $2");
    let row = sqlx::query(&sql)
        .bind(id.to_string())
        .bind(i64::from(user.0))
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(order_from_row).transpose()
}

pub async fn order_by_engine_id(db: &Db, order: OrderId) -> Result<OrderRow, Error> {
    let sql = format!("{ORDER_SELECT} WHERE o.engine_order_id = $1");
    let row = sqlx::query(&sql)
        .bind(i64::try_from(order.0).map_err(Error::internal)?)
        .fetch_one(&db.pool)
        .await?;
    order_from_row(&row)
}

/// `user`'s resting orders, oldest first.
pub async fn open_orders_of_user(db: &Db, user: UserId) -> Result<Vec<OrderRow>, Error> {
    let sql = format!(
        "{ORDER_SELECT} WHERE o.engine_user_id = $1 \
         AND o.status IN ('OPEN', 'PARTIALLY_FILLED') ORDER BY o.engine_order_id"
    );
    let rows = sqlx::query(&sql)
        .bind(i64::from(user.0))
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(order_from_row).collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    Open,
    Closed,
}

/// `user`'s orders, newest first, keyed for the cursor by engine id plus one.
pub async fn orders_of_user(
    db: &Db,
    user: UserId,
    status: Option<StatusFilter>,
    market: Option<engine::MarketId>,
    page: Page,
) -> Result<Vec<(i64, OrderRow)>, Error> {
    let mut sql = format!("{ORDER_SELECT} WHERE o.engine_user_id = $1 AND o.engine_order_id < $2");
    match status {
        Some(StatusFilter::Open) => sql.push_str(" AND o.status IN ('OPEN', 'PARTIALLY_FILLED')"),
        Some(StatusFilter::Closed) => {
            sql.push_str(" AND o.status NOT IN ('OPEN', 'PARTIALLY_FILLED')")
        }
        None => {}
    }
    if market.is_some() {
        sql.push_str(" AND o.engine_market_id = $4");
    }
    sql.push_str(" ORDER BY o.engine_order_id DESC LIMIT $3");
    let mut query = sqlx::query(&sql)
        .bind(i64::from(user.0))
        .bind(below(page))
        .bind(page.fetch());
    if let Some(market) = market {
        query = query.bind(i64::from(market.0));
    }
    let rows = query.fetch_all(&db.pool).await?;
    rows.iter()
        .map(|row| {
            let order = order_from_row(row)?;
            let key = i64::try_from(order.engine_id.0).map_err(Error::internal)? + 1;
            Ok((key, order))
        })
        .collect()
}

/// The bound for `key < bound` queries over ids keyed as id plus one.
pub fn below(page: Page) -> i64 {
    if page.before == i64::MAX {
        i64::MAX
    } else {
        page.before - 1
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

/// One side of the trades matching `where_clause`: `role` is MAKER or TAKER.
fn fill_select(role: &str, where_clause: &str) -> String {
    let lower = role.to_lowercase();
    format!(
        "SELECT t.engine_trade_id, t.id, t.price_units, t.qty, t.kind, t.created_at, \
         t.{lower}_fee_micros AS fee_micros, '{role}' AS role, o.id AS order_id, o.side, \
         o.outcome, m.id AS market_id FROM trades t \
         JOIN orders o ON o.engine_order_id = t.{lower}_order_id \
         JOIN markets m ON m.engine_market_id = t.engine_market_id WHERE {where_clause}"
    )
}

/// A YES price as the price of `outcome`.
pub fn price_in(outcome: &str, yes_units: i64) -> Result<String, Error> {
    let units = if outcome == "YES" {
        yes_units
    } else {
        i64::from(PRICE_SCALE) - yes_units
    };
    Ok(format_price(u32::try_from(units).map_err(Error::internal)?))
}

fn fill_from_row(row: &AnyRow) -> Result<(i64, FillBody), Error> {
    let engine_id: i64 = row.try_get("engine_trade_id")?;
    let id: String = row.try_get("id")?;
    let order_id: String = row.try_get("order_id")?;
    let market_id: String = row.try_get("market_id")?;
    let outcome: String = row.try_get("outcome")?;
    let yes_units: i64 = row.try_get("price_units")?;
    let fill = FillBody {
        id: Uuid::parse_str(&id).map_err(Error::internal)?,
        order_id: Uuid::parse_str(&order_id).map_err(Error::internal)?,
        market_id: Uuid::parse_str(&market_id).map_err(Error::internal)?,
        side: row.try_get("side")?,
        price: price_in(&outcome, yes_units)?,
        outcome,
        qty: row.try_get("qty")?,
        fee: format_cash(row.try_get("fee_micros")?),
        role: row.try_get("role")?,
        kind: row.try_get("kind")?,
        created_at: rfc3339(row.try_get("created_at")?),
    };
    Ok((engine_id + 1, fill))
}

/// Every fill of one order, oldest first.
pub async fn fills_of_order(db: &Db, order: OrderId) -> Result<Vec<FillBody>, Error> {
    let sql = format!(
        "{} UNION ALL {} ORDER BY engine_trade_id",
        fill_select("MAKER", "t.maker_order_id = $1"),
        fill_select("TAKER", "t.taker_order_id = $1"),
    );
    let rows = sqlx::query(&sql)
        .bind(i64::try_from(order.0).map_err(Error::internal)?)
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|row| fill_from_row(row).map(|(_, fill)| fill))
        .collect()
}

/// `user`'s fills, newest first, keyed for the cursor.
pub async fn fills_of_user(
    db: &Db,
    user: UserId,
    page: Page,
) -> Result<Vec<(i64, FillBody)>, Error> {
    let sql = format!(
        "{} UNION ALL {} ORDER BY engine_trade_id DESC LIMIT $3",
        fill_select("MAKER", "t.maker_user_id = $1 AND t.engine_trade_id < $2"),
        fill_select("TAKER", "t.taker_user_id = $1 AND t.engine_trade_id < $2"),
    );
    let rows = sqlx::query(&sql)
        .bind(i64::from(user.0))
        .bind(below(page))
        .bind(page.fetch())
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(fill_from_row).collect()
}
