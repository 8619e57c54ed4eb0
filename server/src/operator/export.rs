//! `export`: the exchange's users, balances, markets, positions and trades as JSON lines.
//!
//! One record per line, `type` first, amounts as the API writes them (decimal strings), read in
//! one transaction so the lines agree with each other while the server keeps trading (SQLite's
//! snapshot of a read transaction; PostgreSQL's REPEATABLE READ). Users come without password
//! hashes unless asked. Reads only; must never lock writers out.

use std::io::Write;

use futures_util::TryStreamExt;
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::config::Config;
use crate::db::{Backend, Db};
use crate::domain::{format_cash, format_price, format_rate, rfc3339};

use super::{require_database, Failure};

type Lines<'a> = std::io::BufWriter<std::io::StdoutLock<'a>>;
/// A row as its record line (the flag: with password hashes).
type Record = fn(&AnyRow, bool) -> Result<Value, sqlx::Error>;

pub async fn export(config: &Config, with_password_hashes: bool) -> Result<(), Failure> {
    require_database(&config.storage)?;
    let db = Db::connect(&config.storage, 1)
        .await
        .map_err(Failure::unavailable)?;
    let exported = export_from(&db, with_password_hashes).await;
    db.pool.close().await;
    exported
}

async fn export_from(db: &Db, with_password_hashes: bool) -> Result<(), Failure> {
    let mut tx = db.pool.begin().await.map_err(Failure::unavailable)?;
    if db.backend == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(Failure::unavailable)?;
        // The request pool's statement timeout is for requests; a whole table may take longer.
        sqlx::query("SET LOCAL statement_timeout = 0")
            .execute(&mut *tx)
            .await
            .map_err(Failure::unavailable)?;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let sections: [(&str, Record); 5] = [
        (
            "SELECT id, email, full_name, role, password_hash, created_at FROM users \
             ORDER BY created_at, id",
            user,
        ),
        (
            "SELECT u.id AS user_id, a.available_micros, a.locked_micros FROM accounts a \
             JOIN users u ON u.id = a.user_id ORDER BY a.engine_user_id",
            balance,
        ),
        (
            "SELECT id, slug, question, description, tick_units, qty_min, qty_max, \
             maker_fee_bps, taker_fee_bps, lock_rule, closes_at, state, resolution, \
             yes_payout_units, created_at FROM markets ORDER BY engine_market_id",
            market,
        ),
        (
            "SELECT u.id AS user_id, m.id AS market_id, p.yes_free + p.yes_reserved AS yes_shares, \
             p.no_free + p.no_reserved AS no_shares, p.yes_cost_micros, p.no_cost_micros, \
             p.realized_pnl_micros FROM positions p \
             JOIN accounts a ON a.engine_user_id = p.engine_user_id \
             JOIN users u ON u.id = a.user_id \
             JOIN markets m ON m.engine_market_id = p.engine_market_id \
             ORDER BY p.engine_market_id, p.engine_user_id",
            position,
        ),
        (
            "SELECT t.id, m.id AS market_id, t.price_units, t.qty, t.taker_side, t.kind, \
             t.created_at FROM trades t JOIN markets m ON m.engine_market_id = t.engine_market_id \
             ORDER BY t.engine_trade_id",
            trade,
        ),
    ];
    for (sql, record) in sections {
        let mut rows = sqlx::query(sql).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await.map_err(Failure::unavailable)? {
            let value = record(&row, with_password_hashes).map_err(Failure::unavailable)?;
            write_line(&mut out, &value)?;
        }
    }
    out.flush().map_err(Failure::unavailable)?;
    tx.rollback().await.map_err(Failure::unavailable)?;
    Ok(())
}

fn write_line(out: &mut Lines<'_>, value: &Value) -> Result<(), Failure> {
    serde_json::to_writer(&mut *out, value).map_err(Failure::unavailable)?;
    out.write_all(b"\n").map_err(Failure::unavailable)
}

fn cash(row: &AnyRow, column: &str) -> Result<Option<String>, sqlx::Error> {
    let micros: Option<i64> = row.try_get(column)?;
    Ok(micros.map(format_cash))
}

fn units(row: &AnyRow, column: &str) -> Result<u32, sqlx::Error> {
    let value: i64 = row.try_get(column)?;
    u32::try_from(value).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

fn rate(row: &AnyRow, column: &str) -> Result<String, sqlx::Error> {
    let bps: i64 = row.try_get(column)?;
    let bps = i32::try_from(bps).map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    Ok(format_rate(bps))
}

fn user(row: &AnyRow, with_password_hashes: bool) -> Result<Value, sqlx::Error> {
    let mut value = json!({
        "type": "user",
        "id": row.try_get::<String, _>("id")?,
        "email": row.try_get::<String, _>("email")?,
        "name": row.try_get::<String, _>("full_name")?,
        "role": row.try_get::<String, _>("role")?,
        "createdAt": rfc3339(row.try_get("created_at")?),
    });
    if with_password_hashes {
        value["passwordHash"] = json!(row.try_get::<String, _>("password_hash")?);
    }
    Ok(value)
}

fn balance(row: &AnyRow, _: bool) -> Result<Value, sqlx::Error> {
    let available: i64 = row.try_get("available_micros")?;
    let locked: i64 = row.try_get("locked_micros")?;
    Ok(json!({
        "type": "balance",
        "userId": row.try_get::<String, _>("user_id")?,
        "available": format_cash(available),
        "locked": format_cash(locked),
        "total": format_cash(available + locked),
    }))
}

fn market(row: &AnyRow, _: bool) -> Result<Value, sqlx::Error> {
    let closes_at: Option<i64> = row.try_get("closes_at")?;
    let payout: Option<i64> = row.try_get("yes_payout_units")?;
    let payout = payout
        .map(|units| u32::try_from(units).map(format_price))
        .transpose()
        .map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    Ok(json!({
        "type": "market",
        "id": row.try_get::<String, _>("id")?,
        "slug": row.try_get::<String, _>("slug")?,
        "question": row.try_get::<String, _>("question")?,
        "description": row.try_get::<String, _>("description")?,
        "tickSize": format_price(units(row, "tick_units")?),
        "minQty": row.try_get::<i64, _>("qty_min")?,
        "maxQty": row.try_get::<i64, _>("qty_max")?,
        "makerFeeRate": rate(row, "maker_fee_bps")?,
        "takerFeeRate": rate(row, "taker_fee_bps")?,
        "lockRule": row.try_get::<String, _>("lock_rule")?,
        "closesAt": closes_at.map(rfc3339),
        "state": row.try_get::<String, _>("state")?,
        "resolution": row.try_get::<Option<String>, _>("resolution")?,
        "yesPayout": payout,
        "createdAt": rfc3339(row.try_get("created_at")?),
    }))
}

fn position(row: &AnyRow, _: bool) -> Result<Value, sqlx::Error> {
    Ok(json!({
        "type": "position",
        "userId": row.try_get::<String, _>("user_id")?,
        "marketId": row.try_get::<String, _>("market_id")?,
        "yesShares": row.try_get::<i64, _>("yes_shares")?,
        "noShares": row.try_get::<i64, _>("no_shares")?,
        "yesCost": cash(row, "yes_cost_micros")?,
        "noCost": cash(row, "no_cost_micros")?,
        "realizedPnl": cash(row, "realized_pnl_micros")?,
    }))
}

fn trade(row: &AnyRow, _: bool) -> Result<Value, sqlx::Error> {
    Ok(json!({
        "type": "trade",
        "id": row.try_get::<String, _>("id")?,
        "marketId": row.try_get::<String, _>("market_id")?,
        "price": format_price(units(row, "price_units")?),
        "qty": row.try_get::<i64, _>("qty")?,
        "takerSide": row.try_get::<String, _>("taker_side")?,
        "kind": row.try_get::<String, _>("kind")?,
        "createdAt": rfc3339(row.try_get("created_at")?),
    }))
}
