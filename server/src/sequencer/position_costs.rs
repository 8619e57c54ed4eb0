//! Every position's cost basis and realized profit ([`crate::costs`]), kept beside the engine:
//! each batch's fills, conversions and settlements are applied as the batch is projected, and
//! the `positions` rows it writes carry the result, so reading a position never replays a
//! trader's history.
//!
//! Loaded at start from the `positions` rows. Rows from before their cost columns existed
//! (NULL) are computed once from the committed fills, conversions and settlements, in commit
//! order, and written back before the sequencer starts. Must never be changed except by a
//! batch's events, in their order.

use std::collections::HashMap;

use engine::{Event, MarketId, Outcome, Side, UserId};
use sqlx::Row;

use super::RecoveryError;
use crate::costs::{fill_parties, outcome_price_units, Costs, Holding};
use crate::db::Db;

pub(crate) type PositionCosts = HashMap<(MarketId, UserId), Costs>;

/// Trade ids read per query while computing costs from history.
const BACKFILL_TRADES_PER_QUERY: usize = 10_000;

/// Applies one committed event; `transfer_price_micros` is what a share transfer's receiver
/// pays in its cost basis, when its command said.
pub(crate) fn apply(costs: &mut PositionCosts, event: &Event, transfer_price_micros: Option<i64>) {
    match *event {
        Event::SharesTransferred {
            from,
            to,
            market,
            outcome,
            qty,
        } => {
            let qty = i64::try_from(qty).unwrap_or(i64::MAX);
            let mut receiver = costs.remove(&(market, to)).unwrap_or_default();
            costs.entry((market, from)).or_default().transfer(
                &mut receiver,
                outcome,
                qty,
                transfer_price_micros,
            );
            costs.insert((market, to), receiver);
        }
        Event::Trade {
            market,
            maker_user,
            taker_user,
            price_units,
            qty,
            kind,
            taker_side,
            maker_fee_micros,
            taker_fee_micros,
            ..
        } => {
            let (maker, taker) = fill_parties(kind, taker_side);
            let qty = i64::try_from(qty).unwrap_or(i64::MAX);
            for (user, (side, outcome), fee) in [
                (maker_user, maker, maker_fee_micros),
                (taker_user, taker, taker_fee_micros),
            ] {
                let units = outcome_price_units(outcome, price_units);
                costs
                    .entry((market, user))
                    .or_default()
                    .fill(side, outcome, units, qty, fee);
            }
        }
        Event::SharesSplit { user, market, qty } => {
            let qty = i64::try_from(qty).unwrap_or(i64::MAX);
            costs.entry((market, user)).or_default().split(qty);
        }
        Event::SharesMerged { user, market, qty } => {
            let qty = i64::try_from(qty).unwrap_or(i64::MAX);
            costs.entry((market, user)).or_default().merge(qty);
        }
        Event::Settlement {
            market,
            user,
            payout_micros,
            ..
        } => costs
            .entry((market, user))
            .or_default()
            .settle(payout_micros),
        _ => {}
    }
}

/// Every position's costs, computing first those of rows from before the cost columns.
pub(crate) async fn load(db: &Db) -> Result<PositionCosts, RecoveryError> {
    if let Some(costs) = read(db).await? {
        return Ok(costs);
    }
    backfill(db).await?;
    tracing::info!("position costs computed from history");
    read(db)
        .await?
        .ok_or_else(|| RecoveryError::Mismatch("position costs still missing".into()))
}

/// Every position's costs as stored, or `None` if a row has none yet.
async fn read(db: &Db) -> Result<Option<PositionCosts>, RecoveryError> {
    let rows = sqlx::query(
        "SELECT engine_market_id, engine_user_id, yes_free + yes_reserved AS yes_shares, \
         no_free + no_reserved AS no_shares, yes_cost_micros, no_cost_micros, \
         realized_pnl_micros FROM positions",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut costs = PositionCosts::with_capacity(rows.len());
    for row in &rows {
        let stored: [Option<i64>; 3] = [
            row.try_get("yes_cost_micros")?,
            row.try_get("no_cost_micros")?,
            row.try_get("realized_pnl_micros")?,
        ];
        let [Some(yes_cost), Some(no_cost), Some(realized)] = stored else {
            return Ok(None);
        };
        costs.insert(
            key_of(row)?,
            Costs {
                yes: Holding {
                    shares: row.try_get("yes_shares")?,
                    cost_micros: yes_cost,
                },
                no: Holding {
                    shares: row.try_get("no_shares")?,
                    cost_micros: no_cost,
                },
                realized_micros: realized,
            },
        );
    }
    Ok(Some(costs))
}

fn key_of(row: &sqlx::any::AnyRow) -> Result<(MarketId, UserId), RecoveryError> {
    let id = |column: &str| -> Result<u32, RecoveryError> {
        let value: i64 = row.try_get(column)?;
        u32::try_from(value)
            .map_err(|_| RecoveryError::Mismatch(format!("{column} {value} is not an engine id")))
    };
    Ok((
        MarketId(id("engine_market_id")?),
        UserId(id("engine_user_id")?),
    ))
}

/// Computes every position's costs from the committed history (fills by trade id, each
/// conversion before the fills of later commands, settlements last) and writes them.
async fn backfill(db: &Db) -> Result<(), RecoveryError> {
    let conversions = sqlx::query(
        "SELECT seq, engine_market_id, engine_user_id, kind, qty FROM conversions ORDER BY seq",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut conversions = conversions.iter().peekable();
    let mut costs = PositionCosts::new();
    let side = |role: &str| {
        format!(
            "SELECT t.seq, t.engine_trade_id, t.engine_market_id, t.{role}_user_id AS engine_user_id, \
             t.price_units, t.qty, t.{role}_fee_micros AS fee_micros, o.side, o.outcome \
             FROM trades t JOIN orders o ON o.engine_order_id = t.{role}_order_id \
             WHERE t.engine_trade_id > $1 AND t.engine_trade_id <= $2"
        )
    };
    let sql = format!(
        "{} UNION ALL {} ORDER BY engine_trade_id",
        side("maker"),
        side("taker")
    );
    let last_trade: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(MAX(engine_trade_id), 0) AS BIGINT) FROM trades")
            .fetch_one(&db.pool)
            .await?;
    // In ranges of trade ids, so no one query runs into the readers' statement timeout.
    for after in (0..last_trade).step_by(BACKFILL_TRADES_PER_QUERY) {
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(after + BACKFILL_TRADES_PER_QUERY as i64)
            .fetch_all(&db.pool)
            .await?;
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            while let Some(conversion) =
                conversions.next_if(|c| c.try_get::<i64, _>("seq").is_ok_and(|at| at < seq))
            {
                convert(&mut costs, conversion)?;
            }
            fill(&mut costs, row)?;
        }
    }
    for conversion in conversions {
        convert(&mut costs, conversion)?;
    }
    let settlements =
        sqlx::query("SELECT engine_market_id, engine_user_id, payout_micros FROM settlements")
            .fetch_all(&db.pool)
            .await?;
    for row in &settlements {
        costs
            .entry(key_of(row)?)
            .or_default()
            .settle(row.try_get("payout_micros")?);
    }
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "UPDATE positions SET yes_cost_micros = 0, no_cost_micros = 0, realized_pnl_micros = 0 \
         WHERE yes_cost_micros IS NULL",
    )
    .execute(&mut *tx)
    .await?;
    for ((market, user), costs) in costs {
        sqlx::query(
            "UPDATE positions SET yes_cost_micros = $3, no_cost_micros = $4, \
             realized_pnl_micros = $5 WHERE engine_market_id = $1 AND engine_user_id = $2",
        )
        .bind(i64::from(market.0))
        .bind(i64::from(user.0))
        .bind(costs.yes.cost_micros)
        .bind(costs.no.cost_micros)
        .bind(costs.realized_micros)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn fill(costs: &mut PositionCosts, row: &sqlx::any::AnyRow) -> Result<(), RecoveryError> {
    let outcome = if row.try_get::<String, _>("outcome")? == "YES" {
        Outcome::Yes
    } else {
        Outcome::No
    };
    let side = if row.try_get::<String, _>("side")? == "BUY" {
        Side::Buy
    } else {
        Side::Sell
    };
    let yes_units: i64 = row.try_get("price_units")?;
    let yes_units = u16::try_from(yes_units)
        .map_err(|_| RecoveryError::Mismatch(format!("trade price {yes_units}")))?;
    costs.entry(key_of(row)?).or_default().fill(
        side,
        outcome,
        outcome_price_units(outcome, yes_units),
        row.try_get("qty")?,
        row.try_get("fee_micros")?,
    );
    Ok(())
}

fn convert(costs: &mut PositionCosts, row: &sqlx::any::AnyRow) -> Result<(), RecoveryError> {
    let qty: i64 = row.try_get("qty")?;
    let entry = costs.entry(key_of(row)?).or_default();
    if row.try_get::<String, _>("kind")? == "SPLIT" {
        entry.split(qty);
    } else {
        entry.merge(qty);
    }
    Ok(())
}
