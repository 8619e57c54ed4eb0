//! `GET /v1/portfolio/positions`: shares per market with weighted average cost and PnL;
//! `GET /v1/portfolio/settlements`: what each resolution paid the caller; and
//! `POST /v1/markets/{id}/split {qty}` / `merge {qty}`: cash to YES + NO pairs and back,
//! answered with the new position.
//!
//! Shares, cost and realized PnL come from the committed `positions` rows, where the sequencer
//! keeps each position's costs as its fills, conversions and settlements commit (the rules are
//! in `crate::costs`), so a read never replays history. Unrealized PnL marks the shares at the
//! mid (else the last trade), exactly. Must never read another user's rows or use a float.

use axum::extract::{Path, State};
use axum::Json;
use engine::units::{MICROS_PER_PRICE_UNIT, MICROS_PER_SHARE, PRICE_SCALE};
use engine::{MarketId, Op, UserId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::costs::{Costs, Holding};
use crate::domain::format_half_units;
use crate::domain::{format_cash, rfc3339};
use crate::http::extractor::{ApiJson, ApiQuery, AuthUser};
use crate::http::openapi::{
    BadRequest, Conflict, Forbidden, IdempotencyKey, Internal, NotFound, PayloadTooLarge,
    Unauthenticated, Unavailable, Unprocessable, UnsupportedMediaType,
};
use crate::http::page::{page_schema, paged, Page, PageQuery, Paged};
use crate::http::{AppState, Error};
use crate::markets::data::committed_depth;
use crate::markets::{self, MarketPath};
use crate::sequencer::Status;
use crate::users;
use crate::wire::schema::{AveragePrice, Cash, MidPrice};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(positions))
        .routes(routes!(settlements))
        .routes(routes!(split))
        .routes(routes!(merge))
}

/// The caller's holding in one market, with its cost and profit.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Position)]
pub struct PositionBody {
    market_id: Uuid,
    /// Held, including those reserved by resting sell orders.
    yes_shares: i64,
    no_shares: i64,
    /// Weighted average cost per share, fees included; null without shares.
    #[schema(value_type = Option<AveragePrice>, required = true)]
    yes_avg_cost: Option<String>,
    #[schema(value_type = Option<AveragePrice>, required = true)]
    no_avg_cost: Option<String>,
    #[schema(value_type = Cash)]
    realized_pnl: String,
    /// The shares at the mark minus their cost; null without a mark.
    #[schema(value_type = Option<Cash>, required = true)]
    unrealized_pnl: Option<String>,
    /// The YES mid, else the last trade; null for a resolved market or one never traded.
    #[schema(value_type = Option<MidPrice>, required = true)]
    mark_price: Option<String>,
}

/// Every market the caller holds or held shares in (one page).
#[derive(Serialize, ToSchema)]
#[schema(as = Positions)]
struct PositionsBody {
    data: Vec<PositionBody>,
}

/// Cost per share as a price with at most 6 decimals; `None` without shares.
fn average_cost(holding: Holding) -> Option<String> {
    if holding.shares <= 0 {
        return None;
    }
    let average = Decimal::from(holding.cost_micros)
        / Decimal::from(holding.shares)
        / Decimal::from(MICROS_PER_SHARE);
    let text = average.round_dp(6).normalize().to_string();
    Some(match text.split_once('.') {
        None => format!("{text}.00"),
        Some((_, fraction)) if fraction.len() < 2 => format!("{text}0"),
        Some(_) => text,
    })
}

/// The mark in YES price units times two: the mid, else the last trade.
async fn mark_x2(state: &AppState, market: i64, market_id: Uuid) -> Result<Option<i64>, Error> {
    let engine_market = MarketId(u32::try_from(market).map_err(Error::internal)?);
    // The read model's committed book; a gateway, which has none, reads the projection.
    let book = match state.sequencer.status() {
        Status::ReadOnly => Some(committed_depth(&state.db, engine_market, market_id, 1).await?),
        _ => state.sequencer.market_data().read().depth(engine_market, 1),
    };
    if let Some(book) = book {
        if let (Some((bid, _)), Some((ask, _))) = (book.bids.first(), book.asks.first()) {
            return Ok(Some(i64::from(*bid) + i64::from(*ask)));
        }
    }
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT price_units FROM trades WHERE engine_market_id = $1 \
         ORDER BY engine_trade_id DESC LIMIT 1",
    )
    .bind(market)
    .fetch_optional(&state.db.pool)
    .await?;
    Ok(last.map(|units| units * 2))
}

/// The caller's positions.
#[utoipa::path(
    get,
    path = "/portfolio/positions",
    operation_id = "listPositions",
    tag = "portfolio",
    security(("bearerAuth" = []), ("cookieAuth" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The caller's positions, by market.", body = PositionsBody),
        (status = 401, response = Unauthenticated),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn positions(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<PositionsBody>, Error> {
    let Some(user) = users::engine_user(&state.db, auth.user_id).await? else {
        return Ok(Json(PositionsBody { data: Vec::new() }));
    };
    let data = positions_of(&state, user, None).await?;
    Ok(Json(PositionsBody { data }))
}

/// `user`'s positions, in every market or in one.
pub async fn positions_of(
    state: &AppState,
    user: UserId,
    only: Option<MarketId>,
) -> Result<Vec<PositionBody>, Error> {
    let filter = if only.is_some() {
        " AND p.engine_market_id = $2"
    } else {
        ""
    };
    let sql = format!(
        "SELECT p.engine_market_id, m.id, m.state, p.yes_free + p.yes_reserved AS yes_shares, \
         p.no_free + p.no_reserved AS no_shares, p.yes_cost_micros, p.no_cost_micros, \
         p.realized_pnl_micros FROM positions p \
         JOIN markets m ON m.engine_market_id = p.engine_market_id \
         WHERE p.engine_user_id = $1{filter} ORDER BY p.engine_market_id"
    );
    let mut query = sqlx::query(&sql).bind(i64::from(user.0));
    if let Some(market) = only {
        query = query.bind(i64::from(market.0));
    }
    let rows = query.fetch_all(&state.db.pool).await?;
    let mut data = Vec::with_capacity(rows.len());
    for row in &rows {
        let market: i64 = row.try_get("engine_market_id")?;
        let id = Uuid::parse_str(&row.try_get::<String, _>("id")?).map_err(Error::internal)?;
        let market_state: String = row.try_get("state")?;
        let yes: i64 = row.try_get("yes_shares")?;
        let no: i64 = row.try_get("no_shares")?;
        let book = Costs {
            yes: Holding {
                shares: yes,
                cost_micros: row.try_get("yes_cost_micros")?,
            },
            no: Holding {
                shares: no,
                cost_micros: row.try_get("no_cost_micros")?,
            },
            realized_micros: row.try_get("realized_pnl_micros")?,
        };
        let mark = if market_state == "RESOLVED" {
            None
        } else {
            mark_x2(state, market, id).await?
        };
        // Half a price unit is 50 micros per share.
        let half_unit_micros = MICROS_PER_PRICE_UNIT / 2;
        let unrealized = mark.map(|mark_x2| {
            let value = yes * mark_x2 * half_unit_micros
                + no * (2 * i64::from(PRICE_SCALE) - mark_x2) * half_unit_micros;
            value - book.yes.cost_micros - book.no.cost_micros
        });
        data.push(PositionBody {
            market_id: id,
            yes_shares: yes,
            no_shares: no,
            yes_avg_cost: average_cost(book.yes),
            no_avg_cost: average_cost(book.no),
            realized_pnl: format_cash(book.realized_micros),
            unrealized_pnl: unrealized.map(format_cash),
            mark_price: mark
                .map(|mark_x2| u32::try_from(mark_x2).map(format_half_units))
                .transpose()
                .map_err(Error::internal)?,
        });
    }
    Ok(data)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ConvertRequest {
    /// YES/NO pairs.
    qty: u64,
}

async fn convert_shares(
    state: AppState,
    auth: AuthUser,
    id: String,
    qty: u64,
    split: bool,
) -> Result<Json<PositionBody>, Error> {
    let market = markets::existing(&state.db, &id).await?;
    let user = state.sequencer.ensure_user(auth.user_id).await?;
    let market_id = market.engine_id;
    let op = if split {
        Op::Split {
            user,
            market: market_id,
            qty,
        }
    } else {
        Op::Merge {
            user,
            market: market_id,
            qty,
        }
    };
    let applied = state.sequencer.submit(op, None).await?;
    applied.result.map_err(Error::Rejected)?;
    positions_of(&state, user, Some(market_id))
        .await?
        .into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| Error::internal("a conversion without a position"))
}

/// Buys `qty` YES/NO pairs for 1.00 each from the caller's cash.
#[utoipa::path(
    post,
    path = "/markets/{id}/split",
    operation_id = "splitShares",
    tag = "portfolio",
    params(MarketPath, IdempotencyKey),
    request_body = ConvertRequest,
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The caller's position in the market after it.",
            body = PositionBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn split(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConvertRequest>,
) -> Result<Json<PositionBody>, Error> {
    convert_shares(state, auth, id, body.qty, true).await
}

/// Redeems `qty` YES/NO pairs for 1.00 each.
#[utoipa::path(
    post,
    path = "/markets/{id}/merge",
    operation_id = "mergeShares",
    tag = "portfolio",
    params(MarketPath, IdempotencyKey),
    request_body = ConvertRequest,
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The caller's position in the market after it.",
            body = PositionBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn merge(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConvertRequest>,
) -> Result<Json<PositionBody>, Error> {
    convert_shares(state, auth, id, body.qty, false).await
}

/// What a market's resolution paid the caller.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Settlement)]
struct SettlementBody {
    market_id: Uuid,
    /// Shares held when the market resolved.
    yes_shares: i64,
    no_shares: i64,
    #[schema(value_type = Cash)]
    payout: String,
    #[schema(format = DateTime)]
    created_at: String,
}

page_schema!(SettlementPage of SettlementBody);

/// The caller's settlements, newest first (keyed by the resolving command's sequence number).
#[utoipa::path(
    get,
    path = "/portfolio/settlements",
    operation_id = "listSettlements",
    tag = "portfolio",
    params(PageQuery),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "A page of the caller's settlements.",
            body = SettlementPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn settlements(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paged<SettlementBody>>, Error> {
    let page = Page::parse(query.limit, query.cursor.as_deref())?;
    let Some(user) = users::engine_user(&state.db, auth.user_id).await? else {
        return Ok(Json(paged(page, Vec::new())));
    };
    let rows = sqlx::query(
        "SELECT m.id, s.seq, s.yes_shares, s.no_shares, s.payout_micros, s.created_at \
         FROM settlements s JOIN markets m ON m.engine_market_id = s.engine_market_id \
         WHERE s.engine_user_id = $1 AND s.seq < $2 ORDER BY s.seq DESC LIMIT $3",
    )
    .bind(i64::from(user.0))
    .bind(page.before)
    .bind(page.fetch())
    .fetch_all(&state.db.pool)
    .await?;
    let mut data = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get("id")?;
        data.push((
            row.try_get("seq")?,
            SettlementBody {
                market_id: Uuid::parse_str(&id).map_err(Error::internal)?,
                yes_shares: row.try_get("yes_shares")?,
                no_shares: row.try_get("no_shares")?,
                payout: format_cash(row.try_get("payout_micros")?),
                created_at: rfc3339(row.try_get("created_at")?),
            },
        ));
    }
    Ok(Json(paged(page, data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_costs_print_as_prices_of_at_most_six_decimals() {
        let holding = |shares, cost_micros| Holding {
            shares,
            cost_micros,
        };
        assert_eq!(average_cost(holding(20, 9_000_000)).unwrap(), "0.45");
        assert_eq!(average_cost(holding(3, 1_000_000)).unwrap(), "0.333333");
        assert_eq!(average_cost(holding(1, 500_000)).unwrap(), "0.50");
        assert_eq!(average_cost(holding(0, 0)), None);
    }
}
