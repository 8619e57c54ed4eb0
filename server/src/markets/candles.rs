//! `GET /v1/markets/{id}/candles?interval=1m&from=&to=`: OHLCV candles of YES prices from the
//! committed trades: on the primary from the read model's minute candles when it holds the
//! range ([`crate::stream::market_data`]), else (older ranges, a gateway) aggregated by the
//! database from the `trades` projection by index.
//!
//! Intervals are 1m, 5m, 15m, 1h, 4h and 1d, aligned to the Unix epoch (UTC). `to` defaults to
//! now and is never later than the current interval; `from` defaults to 100 intervals before
//! `to`; at most `CANDLES_MAX` intervals per request. **Empty intervals** are present and flat:
//! open = high = low = close = the last price traded before them, volume 0. Intervals before the
//! market's first trade have no price and are left out, so the list may start late (and is
//! empty for a market that never traded). Must never aggregate uncommitted trades or round a
//! price.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{existing, MarketPath};
use crate::db::now_micros;
use crate::domain::{format_price, parse_time_micros, rfc3339};
use crate::http::extractor::ApiQuery;
use crate::http::openapi::{BadRequest, Internal, NotFound, RateLimited, Unprocessable};
use crate::http::{AppState, Error};
use crate::sequencer::Status;
use crate::trade_history::{price_at, traded, Traded};
use crate::wire::schema::{CandleInterval, Price};

/// Most candles one request may ask for.
pub const CANDLES_MAX: i64 = 1_000;
const CANDLES_DEFAULT: i64 = 100;
const MINUTE_MICROS: i64 = 60 * 1_000_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(candles))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    M1,
    M5,
    M15,
    H1,
    H4,
    D1,
}

impl Interval {
    fn parse(raw: &str) -> Result<Interval, Error> {
        Ok(match raw {
            "1m" => Interval::M1,
            "5m" => Interval::M5,
            "15m" => Interval::M15,
            "1h" => Interval::H1,
            "4h" => Interval::H4,
            "1d" => Interval::D1,
            _ => {
                return Err(Error::validation(
                    "interval",
                    "must be one of 1m, 5m, 15m, 1h, 4h, 1d",
                ))
            }
        })
    }

    fn micros(self) -> i64 {
        MINUTE_MICROS
            * match self {
                Interval::M1 => 1,
                Interval::M5 => 5,
                Interval::M15 => 15,
                Interval::H1 => 60,
                Interval::H4 => 240,
                Interval::D1 => 1_440,
            }
    }

    fn name(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::H1 => "1h",
            Interval::H4 => "4h",
            Interval::D1 => "1d",
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CandlesQuery {
    /// The candle length (default 1h).
    #[param(value_type = Option<CandleInterval>)]
    interval: Option<String>,
    /// The first interval's time (default: 100 intervals before `to`); at most 1000 intervals
    /// per request.
    #[param(format = DateTime)]
    from: Option<String>,
    /// Exclusive end (default: now; never later than the current interval).
    #[param(format = DateTime)]
    to: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Candles)]
struct CandlesBody {
    #[schema(value_type = CandleInterval)]
    interval: &'static str,
    /// Oldest first, one per interval from the first trade on.
    candles: Vec<CandleBody>,
}

/// One interval's YES prices (open and close from its first and last trade) and volume; an
/// interval without trades is flat at the previous close with volume 0.
#[derive(Serialize, ToSchema)]
#[schema(as = Candle)]
struct CandleBody {
    #[schema(format = DateTime)]
    start: String,
    #[schema(value_type = Price)]
    open: String,
    #[schema(value_type = Price)]
    high: String,
    #[schema(value_type = Price)]
    low: String,
    #[schema(value_type = Price)]
    close: String,
    /// Shares traded.
    volume: i64,
}

/// Every interval from `first` to `last` (bucket numbers, inclusive): the traded ones as they
/// are, the empty ones flat at the previous close (`prior` before the first), and nothing
/// before the first price there is.
pub fn fill(traded: &[Traded], first: i64, last: i64, mut prior: Option<i64>) -> Vec<Traded> {
    let mut candles = Vec::new();
    let mut next = traded.iter().peekable();
    for bucket in first..=last {
        if let Some(candle) = next.next_if(|candle| candle.bucket == bucket) {
            prior = Some(candle.close);
            candles.push(*candle);
        } else if let Some(close) = prior {
            candles.push(Traded {
                bucket,
                open: close,
                high: close,
                low: close,
                close,
                volume: 0,
            });
        }
    }
    candles
}

/// OHLCV candles of the market's YES price, aligned to the Unix epoch (UTC).
#[utoipa::path(
    get,
    path = "/markets/{id}/candles",
    operation_id = "getCandles",
    tag = "market-data",
    security(()),
    params(MarketPath, CandlesQuery),
    responses(
        (status = 200, description = "The candles.", body = CandlesBody),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all)]
async fn candles(
    _read: super::data::PublicRead,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<CandlesQuery>,
) -> Result<Json<CandlesBody>, Error> {
    let interval = Interval::parse(query.interval.as_deref().unwrap_or("1h"))?;
    let step = interval.micros();
    let now_bucket = now_micros() / step;
    let last = match query.to.as_deref() {
        Some(raw) => bucket_before(parse_time_micros(raw, "to")?, step).min(now_bucket),
        None => now_bucket,
    };
    let first = match query.from.as_deref() {
        Some(raw) => parse_time_micros(raw, "from")? as i64 / step,
        None => last - (CANDLES_DEFAULT - 1),
    };
    if first > last {
        return Err(Error::validation("from", "must be before `to`"));
    }
    if last - first + 1 > CANDLES_MAX {
        return Err(Error::validation(
            "from",
            format!("at most {CANDLES_MAX} intervals per request"),
        ));
    }
    let (traded, prior) = match from_memory(&state, &id, step, first, last).await? {
        Some(found) => found,
        None => {
            let market = existing(&state.db, &id).await?;
            let engine_id = i64::from(market.engine_id.0);
            let traded = traded(&state.db, engine_id, step, first, last).await?;
            let prior = price_at(&state.db, engine_id, first * step - 1).await?;
            (traded, prior)
        }
    };
    let candles = fill(&traded, first, last, prior)
        .into_iter()
        .map(|candle| body(candle, step))
        .collect::<Result<_, _>>()?;
    Ok(Json(CandlesBody {
        interval: interval.name(),
        candles,
    }))
}

/// The primary's read model's candles, when it holds the whole range (a gateway has none).
async fn from_memory(
    state: &AppState,
    id: &str,
    step: i64,
    first: i64,
    last: i64,
) -> Result<Option<(Vec<Traded>, Option<i64>)>, Error> {
    if state.sequencer.status() == Status::ReadOnly {
        return Ok(None);
    }
    let Some(market) = super::engine_id(state, id).await? else {
        return Err(Error::NotFound);
    };
    let data = state.sequencer.market_data().read();
    Ok(data.candles(market, step, first, last))
}

/// The interval holding the instant just before `to` (so `to` itself is exclusive).
fn bucket_before(to_micros: u64, step: i64) -> i64 {
    (to_micros as i64 - 1).max(0) / step
}

fn body(candle: Traded, step: i64) -> Result<CandleBody, Error> {
    let price = |units: i64| {
        u32::try_from(units)
            .map(format_price)
            .map_err(Error::internal)
    };
    Ok(CandleBody {
        start: rfc3339(candle.bucket * step),
        open: price(candle.open)?,
        high: price(candle.high)?,
        low: price(candle.low)?,
        close: price(candle.close)?,
        volume: candle.volume,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traded(bucket: i64, open: i64, close: i64, volume: i64) -> Traded {
        Traded {
            bucket,
            open,
            high: open.max(close),
            low: open.min(close),
            close,
            volume,
        }
    }

    #[test]
    fn empty_intervals_are_flat_at_the_previous_close() {
        let candles = fill(
            &[traded(11, 4_000, 4_200, 5), traded(14, 4_100, 3_900, 2)],
            10,
            15,
            Some(3_500),
        );
        let summary: Vec<(i64, i64, i64, i64)> = candles
            .iter()
            .map(|c| (c.bucket, c.open, c.close, c.volume))
            .collect();
        assert_eq!(
            summary,
            vec![
                (10, 3_500, 3_500, 0),
                (11, 4_000, 4_200, 5),
                (12, 4_200, 4_200, 0),
                (13, 4_200, 4_200, 0),
                (14, 4_100, 3_900, 2),
                (15, 3_900, 3_900, 0),
            ]
        );
        assert!(candles
            .iter()
            .filter(|c| c.volume == 0)
            .all(|c| c.high == c.low));
    }

    #[test]
    fn nothing_comes_before_the_first_price() {
        let candles = fill(&[traded(12, 4_000, 4_000, 1)], 10, 13, None);
        let buckets: Vec<i64> = candles.iter().map(|c| c.bucket).collect();
        assert_eq!(buckets, vec![12, 13]);
        assert!(fill(&[], 10, 13, None).is_empty());
    }

    #[test]
    fn intervals_parse_and_reject_the_rest() {
        assert_eq!(
            Interval::parse("4h").unwrap().micros(),
            4 * 60 * MINUTE_MICROS
        );
        for bad in ["", "2m", "1H", "1w"] {
            assert!(Interval::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(bucket_before(120 * 1_000_000, MINUTE_MICROS), 1);
        assert_eq!(bucket_before(120 * 1_000_000 + 1, MINUTE_MICROS), 2);
    }
}
