//! Queries over the committed trades, each served by the `trades` index on (market, time):
//! the price at an instant, and the trades of a range aggregated into OHLCV intervals. The
//! market-data read model rebuilds its recent candles with them at start, and the candles
//! endpoint reads the ranges the read model does not hold. Must never scan a market's whole
//! history or write.

use sqlx::Row;

use crate::db::Db;

/// One interval that had trades: its number (start / interval) and its figures in price units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Traded {
    pub bucket: i64,
    pub open: i64,
    pub high: i64,
    pub low: i64,
    pub close: i64,
    pub volume: i64,
}

/// The YES price of the latest trade at or before `at` (the latest of all with `i64::MAX`).
pub async fn price_at(db: &Db, market: i64, at: i64) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT price_units FROM trades WHERE engine_market_id = $1 AND created_at <= $2 \
         ORDER BY engine_trade_id DESC LIMIT 1",
    )
    .bind(market)
    .bind(at)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|row| row.try_get("price_units")).transpose()
}

/// The intervals from `first` to `last` that had trades, in one aggregate query: extremes and
/// volume per interval, open and close from its first and last trade.
pub async fn traded(
    db: &Db,
    market: i64,
    step: i64,
    first: i64,
    last: i64,
) -> Result<Vec<Traded>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT b.bucket, b.high, b.low, b.volume, f.price_units AS open, l.price_units AS close \
         FROM (SELECT created_at / $2 AS bucket, MAX(price_units) AS high, \
                      MIN(price_units) AS low, CAST(SUM(qty) AS BIGINT) AS volume, \
                      MIN(engine_trade_id) AS first_trade, MAX(engine_trade_id) AS last_trade \
               FROM trades \
               WHERE engine_market_id = $1 AND created_at >= $3 AND created_at < $4 \
               GROUP BY created_at / $2) b \
         JOIN trades f ON f.engine_trade_id = b.first_trade \
         JOIN trades l ON l.engine_trade_id = b.last_trade \
         ORDER BY b.bucket",
    )
    .bind(market)
    .bind(step)
    .bind(first * step)
    .bind((last + 1) * step)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Traded {
                bucket: row.try_get("bucket")?,
                open: row.try_get("open")?,
                high: row.try_get("high")?,
                low: row.try_get("low")?,
                close: row.try_get("close")?,
                volume: row.try_get("volume")?,
            })
        })
        .collect()
}
