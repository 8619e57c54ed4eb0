//! Market data over HTTP: `GET /v1/markets/{id}/book`, `/trades` and `/ticker`.
//!
//! Public (no login). The book comes from the engine's committed state through the sequencer's
//! read path, with the market's `book_seq` so a client can join the WebSocket stream; trades
//! and the ticker's last price and 24-hour figures come from the committed `trades` projection.
//! Everything is in YES prices. Must never show a level or trade that is not yet committed.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use super::existing;
use crate::db::now_micros;
use crate::domain::{format_price, format_rate};
use crate::http::extractor::ApiQuery;
use crate::http::page::{paged, Page, PageQuery, Paged};
use crate::http::{AppState, Error};
use crate::orders::store::below;
use crate::sequencer::{Read, ReadAnswer};
use crate::users::rfc3339;

pub const DEPTH_DEFAULT: usize = 20;
pub const DEPTH_MAX: usize = 500;
const DAY_MICROS: i64 = 24 * 60 * 60 * 1_000_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/markets/{id}/book", get(book))
        .route("/markets/{id}/trades", get(trades))
        .route("/markets/{id}/ticker", get(ticker))
}

#[derive(Serialize)]
struct LevelBody {
    price: String,
    qty: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BookBody {
    market_id: Uuid,
    seq: u64,
    bids: Vec<LevelBody>,
    asks: Vec<LevelBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BookQuery {
    depth: Option<usize>,
}

async fn depth_of(
    state: &AppState,
    market: engine::MarketId,
    depth: usize,
) -> Result<engine::BookDepth, Error> {
    match state.sequencer.read(Read::Book { market, depth }).await? {
        ReadAnswer::Book(Some(book)) => Ok(book),
        ReadAnswer::Book(None) => Err(Error::NotFound),
        ReadAnswer::QueuePositions(_) => Err(Error::internal("unexpected read answer")),
    }
}

fn levels(levels: &[(u16, u64)]) -> Vec<LevelBody> {
    levels
        .iter()
        .map(|(price, qty)| LevelBody {
            price: format_price((*price).into()),
            qty: *qty,
        })
        .collect()
}

#[tracing::instrument(skip_all)]
async fn book(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<BookQuery>,
) -> Result<Json<BookBody>, Error> {
    let depth = query.depth.unwrap_or(DEPTH_DEFAULT);
    if !(1..=DEPTH_MAX).contains(&depth) {
        return Err(Error::validation("depth", "must be from 1 to 500"));
    }
    let market = existing(&state.db, &id).await?;
    let book = depth_of(&state, market.engine_id, depth).await?;
    Ok(Json(BookBody {
        market_id: market.id,
        seq: book.book_seq,
        bids: levels(&book.bids),
        asks: levels(&book.asks),
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TradeBody {
    id: Uuid,
    price: String,
    qty: i64,
    taker_side: String,
    kind: String,
    created_at: String,
}

#[tracing::instrument(skip_all)]
async fn trades(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paged<TradeBody>>, Error> {
    let page = Page::parse(query.limit, query.cursor.as_deref())?;
    let market = existing(&state.db, &id).await?;
    let rows = sqlx::query(
        "SELECT engine_trade_id, id, price_units, qty, taker_side, kind, created_at FROM trades \
         WHERE engine_market_id = $1 AND engine_trade_id < $2 \
         ORDER BY engine_trade_id DESC LIMIT $3",
    )
    .bind(i64::from(market.engine_id.0))
    .bind(below(page))
    .bind(page.fetch())
    .fetch_all(&state.db.pool)
    .await?;
    let mut trades = Vec::with_capacity(rows.len());
    for row in &rows {
        let key: i64 = row.try_get("engine_trade_id")?;
        let id: String = row.try_get("id")?;
        let price: i64 = row.try_get("price_units")?;
        trades.push((
            key + 1,
            TradeBody {
                id: Uuid::parse_str(&id).map_err(Error::internal)?,
                price: format_price(u32::try_from(price).map_err(Error::internal)?),
                qty: row.try_get("qty")?,
                taker_side: row.try_get("taker_side")?,
                kind: row.try_get("kind")?,
                created_at: rfc3339(row.try_get("created_at")?),
            },
        ));
    }
    Ok(Json(paged(page, trades)))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TickerBody {
    market_id: Uuid,
    best_bid: Option<String>,
    best_ask: Option<String>,
    mid: Option<String>,
    last: Option<String>,
    volume24h: i64,
    change24h: Option<String>,
}

/// Twice a price in units (exact for a mid between two ticks) as a decimal string with 2 to 5
/// decimals (`9_001` -> `"0.45005"`).
pub fn format_half_units(units_x2: u32) -> String {
    let per_dollar_x2 = 2 * engine::units::PRICE_SCALE;
    let mut fraction = format!("{:05}", (units_x2 % per_dollar_x2) * 5);
    while fraction.len() > 2 && fraction.ends_with('0') {
        fraction.pop();
    }
    format!("{}.{fraction}", units_x2 / per_dollar_x2)
}

/// The YES price of the latest trade at or before `at` (the latest of all with `i64::MAX`).
pub(super) async fn price_at(state: &AppState, market: i64, at: i64) -> Result<Option<i64>, Error> {
    let row = sqlx::query(
        "SELECT price_units FROM trades WHERE engine_market_id = $1 AND created_at <= $2 \
         ORDER BY engine_trade_id DESC LIMIT 1",
    )
    .bind(market)
    .bind(at)
    .fetch_optional(&state.db.pool)
    .await?;
    row.map(|row| row.try_get("price_units"))
        .transpose()
        .map_err(Error::from)
}

#[tracing::instrument(skip_all)]
async fn ticker(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TickerBody>, Error> {
    let market = existing(&state.db, &id).await?;
    let book = depth_of(&state, market.engine_id, 1).await?;
    let bid = book.bids.first().map(|(price, _)| *price);
    let ask = book.asks.first().map(|(price, _)| *price);
    let engine_id = i64::from(market.engine_id.0);
    let since = now_micros() - DAY_MICROS;
    let last = price_at(&state, engine_id, i64::MAX).await?;
    let before_window = price_at(&state, engine_id, since - 1).await?;
    let window = sqlx::query(
        "SELECT CAST(COALESCE(SUM(qty), 0) AS BIGINT) AS volume, \
         CAST(COALESCE(MIN(engine_trade_id), -1) AS BIGINT) AS first_trade \
         FROM trades WHERE engine_market_id = $1 AND created_at >= $2",
    )
    .bind(engine_id)
    .bind(since)
    .fetch_one(&state.db.pool)
    .await?;
    let volume24h: i64 = window.try_get("volume")?;
    let first_trade: i64 = window.try_get("first_trade")?;
    let opening = match before_window {
        Some(price) => Some(price),
        None if first_trade >= 0 => {
            let price: i64 =
                sqlx::query_scalar("SELECT price_units FROM trades WHERE engine_trade_id = $1")
                    .bind(first_trade)
                    .fetch_one(&state.db.pool)
                    .await?;
            Some(price)
        }
        None => None,
    };
    let change24h = match (last, opening) {
        (Some(last), Some(opening)) => Some(format_rate(
            i32::try_from(last - opening).map_err(Error::internal)?,
        )),
        _ => None,
    };
    let price = |units: i64| {
        u32::try_from(units)
            .map(format_price)
            .map_err(Error::internal)
    };
    Ok(Json(TickerBody {
        market_id: market.id,
        best_bid: bid.map(|bid| format_price(bid.into())),
        best_ask: ask.map(|ask| format_price(ask.into())),
        mid: bid
            .zip(ask)
            .map(|(bid, ask)| format_half_units(u32::from(bid) + u32::from(ask))),
        last: last.map(price).transpose()?,
        volume24h,
        change24h,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mids_keep_the_half_unit() {
        assert_eq!(format_half_units(9_000), "0.45");
        assert_eq!(format_half_units(9_001), "0.45005");
        assert_eq!(format_half_units(9_100), "0.455");
        assert_eq!(format_half_units(20_000), "1.00");
    }
}
