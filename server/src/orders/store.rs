//! Reads of the `orders` and `trades` projections into the public order and fill shapes
//! (`crate::wire`).
//!
//! Owns turning committed rows into `OrderBody` / `FillBody`: prices in the order's own
//! outcome, cash as exact decimal strings, fills seen from one side (maker or taker). Must
//! never write a projection, and never return another user's order or fill: every query here
//! that takes a user filters by it in SQL.

use engine::units::PRICE_SCALE;
use engine::{OrderId, UserId};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::db::Db;
use crate::domain::{format_average_price, format_cash, format_price, rfc3339};
use crate::http::page::Page;
use crate::http::Error;
use crate::wire::{order_rests, FillBody, LockTerms, OrderBody};

/// An order as the projection holds it, with its market's UUID.
#[derive(Clone, Debug)]
pub struct OrderRow {
    pub engine_id: OrderId,
    pub body: OrderBody,
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
        side == "BUY" && order_rests(&status),
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
