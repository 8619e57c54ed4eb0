//! Market data over HTTP: `GET /v1/markets/{id}/book`, `/trades` and `/ticker`.
//!
//! Public (no login). On the primary the book and the ticker come from the in-memory read model
//! ([`crate::stream::market_data`]), updated after each commit; on a read-only gateway, from the
//! `orders` and `trades` projections. The book carries the market's `book_seq` so a client can
//! join the WebSocket stream. Trades are read from the `trades` projection by index. The
//! database readers also build the WebSocket snapshots. Everything is in YES prices. Must never
//! show a level or trade that is not yet committed.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::Json;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use tokio::sync::{Semaphore, SemaphorePermit};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{existing, Market, MarketPath};
use crate::db::{now_micros, Db};
use crate::domain::{format_price, rfc3339};
use crate::http::extractor::{ApiQuery, ClientIp};
use crate::http::openapi::{
    BadRequest, Internal, NotFound, RateLimited, Unavailable, Unprocessable,
};
use crate::http::page::{page_schema, paged, Page, PageQuery, Paged};
use crate::http::{AppState, Error};
use crate::limits::ReadSlot;
use crate::orders::store::below;
use crate::sequencer::Status;
use crate::trade_history::price_at;
use crate::wire::schema::Price;
use crate::wire::{TickerBody, TradeBody};

/// Market-data requests (book, ticker, trades, candles) and stream snapshots served at once;
/// the rest wait their turn. A waiting request is parked, not runnable, so a flood of anonymous readers cannot
/// crowd the order path's tasks off the runtime's few threads.
pub const READS_IN_FLIGHT_MAX: usize = 16;
static READS_IN_FLIGHT: Semaphore = Semaphore::const_new(READS_IN_FLIGHT_MAX);

/// A public market-data read's right to run, held for the handler's life: the client's rate
/// and its reads in flight are checked (429 past either), then one of `READS_IN_FLIGHT_MAX`
/// places is taken (waited for, never refused).
pub struct PublicRead {
    _slot: ReadSlot,
    _place: SemaphorePermit<'static>,
}

impl FromRequestParts<AppState> for PublicRead {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let ClientIp(client) = ClientIp::from_request_parts(parts, state).await?;
        let slot = state.limits.read(client)?;
        Ok(PublicRead {
            _slot: slot,
            _place: read_place().await?,
        })
    }
}

/// One of the `READS_IN_FLIGHT_MAX` places for reads anyone can trigger (market data, stream
/// snapshots), waited for.
pub async fn read_place() -> Result<SemaphorePermit<'static>, Error> {
    READS_IN_FLIGHT
        .acquire()
        .await
        .map_err(|_| Error::internal("the read semaphore is never closed"))
}

pub const DEPTH_DEFAULT: usize = 20;
pub const DEPTH_MAX: usize = 500;
const DAY_MICROS: i64 = 24 * 60 * 60 * 1_000_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(book))
        .routes(routes!(trades))
        .routes(routes!(ticker))
}

/// One price level: every share resting at this YES price.
#[derive(Serialize, ToSchema)]
#[schema(as = BookLevel)]
pub struct LevelBody {
    #[schema(value_type = Price)]
    pub price: String,
    pub qty: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Book)]
pub struct BookBody {
    pub market_id: Uuid,
    /// The last `book:{id}` stream message this snapshot includes.
    pub seq: u64,
    /// Best (highest) first, in YES prices.
    pub bids: Vec<LevelBody>,
    /// Best (lowest) first, in YES prices.
    pub asks: Vec<LevelBody>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct BookQuery {
    /// Levels per side, from 1 to 500 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    depth: Option<usize>,
}

/// Whether this instance answers market data from the database (a read-only gateway, which
/// has no engine and so no read model).
fn from_database(state: &AppState) -> bool {
    state.sequencer.status() == Status::ReadOnly
}

/// The book as the `orders` projection holds it, with the `book:` stream seq it is valid at.
/// One statement reads both, so they agree on either database.
pub async fn committed_depth(
    db: &Db,
    engine_id: engine::MarketId,
    market_id: Uuid,
    depth: usize,
) -> Result<engine::BookDepth, Error> {
    let scale = i64::from(engine::units::PRICE_SCALE);
    let rows = sqlx::query(&format!(
        "SELECT CAST(CASE WHEN outcome = 'YES' THEN price_units ELSE {scale} - price_units END \
         AS BIGINT) AS price, \
         CAST(CASE WHEN (side = 'BUY') = (outcome = 'YES') THEN 1 ELSE 0 END AS BIGINT) AS bid, \
         CAST(SUM(remaining_qty) AS BIGINT) AS qty FROM orders \
         WHERE engine_market_id = $1 AND status IN ('OPEN', 'PARTIALLY_FILLED') GROUP BY 1, 2 \
         UNION ALL SELECT CAST(COALESCE((SELECT seq FROM stream_seqs WHERE topic = $2), 0) \
         AS BIGINT), CAST(-1 AS BIGINT), CAST(0 AS BIGINT)"
    ))
    .bind(i64::from(engine_id.0))
    .bind(crate::stream::Topic::Book(market_id).to_string())
    .fetch_all(&db.pool)
    .await?;
    let mut book = engine::BookDepth {
        market: engine_id,
        book_seq: 0,
        bids: Vec::new(),
        asks: Vec::new(),
    };
    for row in &rows {
        let price: i64 = row.try_get("price")?;
        let bid: i64 = row.try_get("bid")?;
        let qty: i64 = row.try_get("qty")?;
        let level = || -> Result<(u16, u64), Error> {
            Ok((
                u16::try_from(price).map_err(Error::internal)?,
                u64::try_from(qty).map_err(Error::internal)?,
            ))
        };
        match bid {
            -1 => book.book_seq = u64::try_from(price).map_err(Error::internal)?,
            1 => book.bids.push(level()?),
            _ => book.asks.push(level()?),
        }
    }
    book.bids
        .sort_unstable_by_key(|level| std::cmp::Reverse(level.0));
    book.asks.sort_unstable_by_key(|level| level.0);
    book.bids.truncate(depth);
    book.asks.truncate(depth);
    Ok(book)
}

pub fn book_body(market_id: Uuid, book: &engine::BookDepth) -> BookBody {
    BookBody {
        market_id,
        seq: book.book_seq,
        bids: levels(&book.bids),
        asks: levels(&book.asks),
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

/// The market's order book, as of the last committed command.
#[utoipa::path(
    get,
    path = "/markets/{id}/book",
    operation_id = "getBook",
    tag = "market-data",
    security(()),
    params(MarketPath, BookQuery),
    responses(
        (status = 200, description = "The book.", body = BookBody),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all)]
async fn book(
    _read: PublicRead,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<BookQuery>,
) -> Result<Json<BookBody>, Error> {
    let depth = query.depth.unwrap_or(DEPTH_DEFAULT);
    if !(1..=DEPTH_MAX).contains(&depth) {
        return Err(Error::validation("depth", "must be from 1 to 500"));
    }
    if from_database(&state) {
        let market = existing(&state.db, &id).await?;
        let book = committed_depth(&state.db, market.engine_id, market.id, depth).await?;
        return Ok(Json(book_body(market.id, &book)));
    }
    let market = super::engine_id(&state, &id)
        .await?
        .ok_or(Error::NotFound)?;
    let data = state.sequencer.market_data().read();
    let (Some(market_id), Some(book)) = (data.market_id(market), data.depth(market, depth)) else {
        return Err(Error::NotFound);
    };
    Ok(Json(book_body(market_id, &book)))
}

page_schema!(TradePage of TradeBody);

/// The market's trades, newest first.
#[utoipa::path(
    get,
    path = "/markets/{id}/trades",
    operation_id = "listTrades",
    tag = "market-data",
    security(()),
    params(MarketPath, PageQuery),
    responses(
        (status = 200, description = "A page of trades.", body = TradePage),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all)]
async fn trades(
    _read: PublicRead,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paged<TradeBody>>, Error> {
    let page = Page::parse(query.limit, query.cursor.as_deref())?;
    let market = existing(&state.db, &id).await?;
    let trades = recent_trades(&state.db, &market, page).await?;
    Ok(Json(paged(page, trades)))
}

/// A page of `market`'s trades, newest first, each with its cursor key.
pub async fn recent_trades(
    db: &Db,
    market: &Market,
    page: Page,
) -> Result<Vec<(i64, TradeBody)>, Error> {
    let rows = sqlx::query(&format!(
        "SELECT {TRADE_COLUMNS} FROM trades \
         WHERE engine_market_id = $1 AND engine_trade_id < $2 \
         ORDER BY engine_trade_id DESC LIMIT $3"
    ))
    .bind(i64::from(market.engine_id.0))
    .bind(below(page))
    .bind(page.fetch())
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(trade_from_row).collect()
}

/// The columns a trade is read with (`TRADE_COLUMNS`), as its cursor key and body.
pub fn trade_from_row(row: &sqlx::any::AnyRow) -> Result<(i64, TradeBody), Error> {
    let key: i64 = row.try_get("engine_trade_id")?;
    let id: String = row.try_get("id")?;
    let price: i64 = row.try_get("price_units")?;
    Ok((
        key + 1,
        TradeBody {
            id: Uuid::parse_str(&id).map_err(Error::internal)?,
            price: format_price(u32::try_from(price).map_err(Error::internal)?),
            qty: row.try_get("qty")?,
            taker_side: row.try_get("taker_side")?,
            kind: row.try_get("kind")?,
            created_at: rfc3339(row.try_get("created_at")?),
        },
    ))
}

/// What `trade_from_row` reads.
pub const TRADE_COLUMNS: &str =
    "engine_trade_id, id, price_units, qty, taker_side, kind, created_at";

/// The market's best prices, last trade and 24-hour figures.
#[utoipa::path(
    get,
    path = "/markets/{id}/ticker",
    operation_id = "getTicker",
    tag = "market-data",
    security(()),
    params(MarketPath),
    responses(
        (status = 200, description = "The ticker.", body = TickerBody),
        (status = 404, response = NotFound),
        (status = 429, response = RateLimited),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all)]
async fn ticker(
    _read: PublicRead,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TickerBody>, Error> {
    if from_database(&state) {
        let market = existing(&state.db, &id).await?;
        let book = committed_depth(&state.db, market.engine_id, market.id, 1).await?;
        return Ok(Json(ticker_of(&state.db, &market, &book).await?));
    }
    let market = super::engine_id(&state, &id)
        .await?
        .ok_or(Error::NotFound)?;
    let data = state.sequencer.market_data().read();
    let ticker = data.ticker(market, now_micros());
    Ok(Json(ticker.ok_or(Error::NotFound)?))
}

/// The ticker of `market` with `book`'s best levels.
pub async fn ticker_of(
    db: &Db,
    market: &Market,
    book: &engine::BookDepth,
) -> Result<TickerBody, Error> {
    let bid = book.bids.first().map(|(price, _)| *price);
    let ask = book.asks.first().map(|(price, _)| *price);
    let engine_id = i64::from(market.engine_id.0);
    let since = now_micros() - DAY_MICROS;
    let last = price_at(db, engine_id, i64::MAX).await?;
    let before_window = price_at(db, engine_id, since - 1).await?;
    let window = sqlx::query(
        "SELECT CAST(COALESCE(SUM(qty), 0) AS BIGINT) AS volume, \
         CAST(COALESCE(MIN(engine_trade_id), -1) AS BIGINT) AS first_trade \
         FROM trades WHERE engine_market_id = $1 AND created_at >= $2",
    )
    .bind(engine_id)
    .bind(since)
    .fetch_one(&db.pool)
    .await?;
    let volume24h: i64 = window.try_get("volume")?;
    let first_trade: i64 = window.try_get("first_trade")?;
    let opening = match before_window {
        Some(price) => Some(price),
        None if first_trade >= 0 => {
            let price: i64 =
                sqlx::query_scalar("SELECT price_units FROM trades WHERE engine_trade_id = $1")
                    .bind(first_trade)
                    .fetch_one(&db.pool)
                    .await?;
            Some(price)
        }
        None => None,
    };
    let price = |units: i64| u16::try_from(units).map_err(Error::internal);
    Ok(TickerBody::new(
        market.id,
        bid,
        ask,
        last.map(price).transpose()?,
        u64::try_from(volume24h).map_err(Error::internal)?,
        opening.map(price).transpose()?,
    ))
}
