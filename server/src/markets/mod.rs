//! Markets over HTTP: list, get by id or slug, and the admin lifecycle (create, halt, resume,
//! close, resolve).
//!
//! Owns the market's public shape and the `markets` projection's reads. Requests are parsed
//! into engine `MarketParams` / `Resolution` here, so the engine only ever sees well-formed
//! values; every answer is read back from the committed projection after the command commits.
//! Must never write the `markets` table (the sequencer's batch does) nor let a non-admin
//! change a market.

pub mod candles;
pub mod data;

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use engine::units::ORDER_QTY_LIMIT;
use engine::{LockRule, MarketId, MarketParams, Op, Resolution, Slug};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::db::{now_micros, Db};
use crate::domain::{
    format_price, format_rate, parse_lock_rule, parse_payout_units, parse_rate_bps,
    parse_time_micros, rfc3339, wire_name,
};
use crate::http::error::ErrorBody;
use crate::http::extractor::{ApiJson, ApiQuery, AuthUser};
use crate::http::openapi::{
    BadRequest, Forbidden, IdempotencyKey, Internal, NotFound, PayloadTooLarge, Unauthenticated,
    Unavailable, Unprocessable, UnsupportedMediaType,
};
use crate::http::page::{page_schema, paged, Page, Paged};
use crate::http::{AppState, Error};
use crate::sequencer::Subject;
use crate::wire::schema::{
    self, FeeRate, FeeRateInput, MarketState, PayoutInput, Price, ResolutionOutcome, TickSize,
};

pub const QUESTION_CHARS_MAX: usize = 300;
pub const DESCRIPTION_CHARS_MAX: usize = 5_000;
/// Longest `?q=` search text.
pub const SEARCH_CHARS_MAX: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show))
        .routes(routes!(halt))
        .routes(routes!(resume))
        .routes(routes!(close))
        .routes(routes!(resolve))
        .merge(data::router())
        .merge(candles::router())
}

/// A market as the projection holds it.
#[derive(Clone, Debug)]
pub struct Market {
    pub engine_id: MarketId,
    pub id: Uuid,
    pub slug: String,
    pub question: String,
    pub description: String,
    pub tick_units: u16,
    pub qty_min: i64,
    pub qty_max: i64,
    pub maker_fee_bps: i32,
    pub taker_fee_bps: i32,
    pub lock_rule: LockRule,
    pub closes_at: Option<i64>,
    pub state: String,
    pub resolution: Option<String>,
    pub yes_payout_units: Option<i64>,
    pub created_at: i64,
}

const MARKET_COLUMNS: &str = "engine_market_id, id, slug, question, description, tick_units, \
     qty_min, qty_max, maker_fee_bps, taker_fee_bps, lock_rule, closes_at, state, resolution, \
     yes_payout_units, created_at";

fn from_row(row: &AnyRow) -> Result<Market, Error> {
    let engine_id: i64 = row.try_get("engine_market_id")?;
    let id: String = row.try_get("id")?;
    let tick: i64 = row.try_get("tick_units")?;
    let maker: i64 = row.try_get("maker_fee_bps")?;
    let taker: i64 = row.try_get("taker_fee_bps")?;
    let lock_rule: String = row.try_get("lock_rule")?;
    Ok(Market {
        engine_id: MarketId(u32::try_from(engine_id).map_err(Error::internal)?),
        id: Uuid::parse_str(&id).map_err(Error::internal)?,
        slug: row.try_get("slug")?,
        question: row.try_get("question")?,
        description: row.try_get("description")?,
        tick_units: u16::try_from(tick).map_err(Error::internal)?,
        qty_min: row.try_get("qty_min")?,
        qty_max: row.try_get("qty_max")?,
        maker_fee_bps: i32::try_from(maker).map_err(Error::internal)?,
        taker_fee_bps: i32::try_from(taker).map_err(Error::internal)?,
        lock_rule: parse_lock_rule(&lock_rule).map_err(Error::internal)?,
        closes_at: row.try_get("closes_at")?,
        state: row.try_get("state")?,
        resolution: row.try_get("resolution")?,
        yes_payout_units: row.try_get("yes_payout_units")?,
        created_at: row.try_get("created_at")?,
    })
}

/// A market by its UUID, or (for anything that is not a UUID) by its slug.
pub async fn find(db: &Db, id_or_slug: &str) -> Result<Option<Market>, Error> {
    let (column, key) = match Uuid::parse_str(id_or_slug) {
        Ok(id) => ("id", id.to_string()),
        // Nothing else can be a slug; PostgreSQL would refuse some of it (a NUL) as an error.
        Err(_) if Slug::new(id_or_slug).is_none() => return Ok(None),
        Err(_) => ("slug", id_or_slug.to_owned()),
    };
    let sql = format!("SELECT {MARKET_COLUMNS} FROM markets WHERE {column} = $1");
    let row = sqlx::query(&sql).bind(key).fetch_optional(&db.pool).await?;
    row.as_ref().map(from_row).transpose()
}

/// The engine ids of the markets requests have named, by id and by slug. Both are fixed at
/// creation, so an entry never goes stale; only markets that exist are kept, so it holds at
/// most two entries per market.
#[derive(Default)]
pub struct MarketIds(RwLock<HashMap<String, MarketId>>);

/// The engine id of the market `id_or_slug` names, from memory once it has been looked up.
pub async fn engine_id(state: &AppState, id_or_slug: &str) -> Result<Option<MarketId>, Error> {
    let key = match Uuid::parse_str(id_or_slug) {
        Ok(id) => id.to_string(),
        Err(_) => id_or_slug.to_owned(),
    };
    let known = {
        let ids = state
            .market_ids
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        ids.get(&key).copied()
    };
    if known.is_some() {
        return Ok(known);
    }
    let Some(market) = find(&state.db, &key).await? else {
        return Ok(None);
    };
    let mut known = state
        .market_ids
        .0
        .write()
        .unwrap_or_else(PoisonError::into_inner);
    known.insert(market.id.to_string(), market.engine_id);
    known.insert(market.slug, market.engine_id);
    Ok(Some(market.engine_id))
}

/// A market that must exist (404 otherwise).
pub async fn existing(db: &Db, id_or_slug: &str) -> Result<Market, Error> {
    find(db, id_or_slug).await?.ok_or(Error::NotFound)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MarketResolution)]
pub struct ResolutionBody {
    #[schema(value_type = ResolutionOutcome)]
    outcome: String,
    /// What one YES share paid (a NO share paid the rest of 1.00).
    #[schema(value_type = Price)]
    yes_payout: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Market)]
pub struct MarketBody {
    id: Uuid,
    /// Unique; usable in place of the id in paths.
    #[schema(pattern = "^[a-z0-9-]{1,64}$", example = "rain-tomorrow")]
    slug: String,
    question: String,
    description: String,
    #[schema(value_type = MarketState)]
    state: String,
    #[schema(value_type = TickSize)]
    tick_size: String,
    /// The smallest order, in shares.
    min_qty: i64,
    /// The largest order, in shares.
    max_qty: i64,
    #[schema(value_type = FeeRate)]
    maker_fee_rate: String,
    #[schema(value_type = FeeRate)]
    taker_fee_rate: String,
    #[schema(value_type = schema::LockRule)]
    lock_rule: String,
    /// When trading stops by itself, if ever.
    #[schema(format = DateTime, required = true)]
    closes_at: Option<String>,
    /// Null until the market resolves.
    #[schema(required = true)]
    resolution: Option<ResolutionBody>,
    #[schema(format = DateTime)]
    created_at: String,
}

page_schema!(MarketPage of MarketBody);

impl From<&Market> for MarketBody {
    fn from(market: &Market) -> MarketBody {
        let resolution = match (&market.resolution, market.yes_payout_units) {
            (Some(outcome), Some(payout)) => Some(ResolutionBody {
                outcome: outcome.clone(),
                yes_payout: format_price(u32::try_from(payout).unwrap_or_default()),
            }),
            _ => None,
        };
        MarketBody {
            id: market.id,
            slug: market.slug.clone(),
            question: market.question.clone(),
            description: market.description.clone(),
            state: market.state.clone(),
            tick_size: format_price(market.tick_units.into()),
            min_qty: market.qty_min,
            max_qty: market.qty_max,
            maker_fee_rate: format_rate(market.maker_fee_bps),
            taker_fee_rate: format_rate(market.taker_fee_bps),
            lock_rule: wire_name(&market.lock_rule),
            closes_at: market.closes_at.map(rfc3339),
            resolution,
            created_at: rfc3339(market.created_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = MarketRequest)]
struct CreateRequest {
    /// 1 to 64 characters of a-z, 0-9 and -; unique.
    #[schema(pattern = "^[a-z0-9-]{1,64}$", example = "rain-tomorrow")]
    slug: String,
    /// 1 to 300 characters.
    #[schema(min_length = 1, max_length = 300)]
    question: String,
    /// Up to 5000 characters (default empty).
    #[serde(default)]
    #[schema(max_length = 5000)]
    description: String,
    #[schema(value_type = TickSize)]
    tick_size: String,
    /// The smallest order in shares (default 1).
    #[serde(default = "qty_min_default")]
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    min_qty: u64,
    /// The largest order in shares, at least `minQty` (default 1000000).
    #[serde(default = "qty_max_default")]
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    max_qty: u64,
    /// Default 0; negative is a rebate, no larger than the taker rate.
    #[serde(default = "rate_default")]
    #[schema(value_type = FeeRateInput)]
    maker_fee_rate: String,
    /// Default 0.
    #[serde(default = "rate_default")]
    #[schema(value_type = FeeRateInput)]
    taker_fee_rate: String,
    /// In the future; trading closes by itself then.
    #[schema(format = DateTime)]
    closes_at: Option<String>,
}

fn qty_min_default() -> u64 {
    1
}

fn qty_max_default() -> u64 {
    1_000_000
}

fn rate_default() -> String {
    "0".to_owned()
}

/// A bounded, trimmed text without control characters (newlines and tabs allowed).
fn text(raw: &str, field: &'static str, min: usize, max: usize) -> Result<String, Error> {
    let value = raw.trim();
    let chars = value.chars().count();
    if chars < min || chars > max {
        return Err(Error::validation(
            field,
            format!("must be {min} to {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::validation(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// The request as engine parameters plus the question and description the engine does not keep.
/// A new market's terms as `POST /v1/markets` takes them, for an operator's import: the same
/// rules, the same errors. Answers the engine's params, the question and the description.
#[allow(clippy::too_many_arguments)]
pub(crate) fn parse_new_market(
    slug: String,
    question: String,
    description: String,
    tick_size: String,
    min_qty: u64,
    max_qty: u64,
    maker_fee_rate: String,
    taker_fee_rate: String,
    closes_at: Option<String>,
) -> Result<(MarketParams, String, String), Error> {
    parse_create(CreateRequest {
        slug,
        question,
        description,
        tick_size,
        min_qty,
        max_qty,
        maker_fee_rate,
        taker_fee_rate,
        closes_at,
    })
}

/// A resolution as `POST /v1/markets/{id}/resolve` takes it.
pub(crate) fn parse_outcome(outcome: &str, yes_payout: Option<&str>) -> Result<Resolution, Error> {
    parse_resolution(&ResolveRequest {
        outcome: outcome.to_owned(),
        yes_payout: yes_payout.map(str::to_owned),
    })
}

fn parse_create(body: CreateRequest) -> Result<(MarketParams, String, String), Error> {
    let slug = Slug::new(&body.slug)
        .ok_or_else(|| Error::validation("slug", "must be 1 to 64 characters of a-z, 0-9 and -"))?;
    let question = text(&body.question, "question", 1, QUESTION_CHARS_MAX)?;
    let description = text(&body.description, "description", 0, DESCRIPTION_CHARS_MAX)?;
    let tick_units = match body.tick_size.as_str() {
        "0.01" => 100,
        "0.001" => 10,
        "0.0001" => 1,
        _ => {
            return Err(Error::validation(
                "tickSize",
                "must be \"0.01\", \"0.001\" or \"0.0001\"",
            ))
        }
    };
    if body.min_qty < 1 || body.min_qty > ORDER_QTY_LIMIT {
        return Err(Error::validation("minQty", "must be from 1 to 1000000000"));
    }
    if body.max_qty < body.min_qty || body.max_qty > ORDER_QTY_LIMIT {
        return Err(Error::validation(
            "maxQty",
            "must be from minQty to 1000000000",
        ));
    }
    let taker_fee_bps = parse_rate_bps(&body.taker_fee_rate, "takerFeeRate", false)?;
    let maker_fee_bps = parse_rate_bps(&body.maker_fee_rate, "makerFeeRate", true)?;
    if maker_fee_bps < -taker_fee_bps {
        return Err(Error::validation(
            "makerFeeRate",
            "a rebate may not exceed the taker fee rate",
        ));
    }
    let close_ts_micros = match &body.closes_at {
        None => None,
        Some(raw) => {
            let close = parse_time_micros(raw, "closesAt")?;
            if i64::try_from(close).unwrap_or(i64::MAX) <= now_micros() {
                return Err(Error::validation("closesAt", "must be in the future"));
            }
            Some(close)
        }
    };
    let params = MarketParams {
        slug,
        tick_units,
        qty_min: body.min_qty,
        qty_max: body.max_qty,
        maker_fee_bps,
        taker_fee_bps,
        close_ts_micros,
        lock_rule: LockRule::CURRENT,
    };
    Ok((params, question, description))
}

/// Creates a market, open for trading (admin only).
#[utoipa::path(
    post,
    path = "/markets",
    operation_id = "createMarket",
    tag = "markets",
    params(IdempotencyKey),
    request_body = CreateRequest,
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 201, description = "The new market.", body = MarketBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 409, description = "`SLUG_TAKEN`, or this `Idempotency-Key` still running.",
            body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(admin_id = %auth.user_id))]
async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<impl IntoResponse, Error> {
    auth.require_admin()?;
    let (params, question, description) = parse_create(body)?;
    let market_id = Uuid::new_v4();
    let subject = Subject::Market {
        market_id,
        question,
        description,
    };
    let applied = state
        .sequencer
        .submit(Op::CreateMarket(params), Some(subject))
        .await?;
    applied.result.map_err(Error::Rejected)?;
    let market = existing(&state.db, &market_id.to_string()).await?;
    Ok((StatusCode::CREATED, Json(MarketBody::from(&market))))
}

/// One market, by id or slug.
#[utoipa::path(
    get,
    path = "/markets/{id}",
    operation_id = "getMarket",
    tag = "markets",
    security(()),
    params(MarketPath),
    responses(
        (status = 200, description = "The market.", body = MarketBody),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all)]
async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<MarketBody>, Error> {
    let market = existing(&state.db, &id).await?;
    Ok(Json(MarketBody::from(&market)))
}

/// The `{id}` of a market's paths.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MarketPath {
    /// The market's id (a UUID) or its slug.
    #[param(example = "rain-tomorrow")]
    pub id: String,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only markets in this state (any case).
    #[param(value_type = Option<MarketState>)]
    state: Option<String>,
    /// Only markets whose question or slug contains this text (any case; at most 100
    /// characters).
    #[param(max_length = 100)]
    q: Option<String>,
    /// Items per page, from 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `nextCursor` of the previous page; absent for the first.
    cursor: Option<String>,
}

/// `%`, `_` and `\` matched literally inside a LIKE pattern (with `ESCAPE '\'`).
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Markets, newest first.
#[utoipa::path(
    get,
    path = "/markets",
    operation_id = "listMarkets",
    tag = "markets",
    security(()),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of markets.", body = MarketPage),
        (status = 400, response = BadRequest),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Paged<MarketBody>>, Error> {
    let page = Page::parse(query.limit, query.cursor.as_deref())?;
    let mut sql = format!("SELECT {MARKET_COLUMNS} FROM markets WHERE engine_market_id < $1");
    let market_state = match query.state.as_deref() {
        None | Some("") => None,
        Some(raw) => match raw.to_uppercase().as_str() {
            known @ ("OPEN" | "HALTED" | "CLOSED" | "RESOLVED") => Some(known.to_owned()),
            _ => {
                return Err(Error::validation(
                    "state",
                    "must be OPEN, HALTED, CLOSED or RESOLVED",
                ))
            }
        },
    };
    let search = match query.q.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) if text.chars().count() > SEARCH_CHARS_MAX => {
            return Err(Error::validation("q", "must be at most 100 characters"))
        }
        Some(text) if text.chars().any(char::is_control) => {
            return Err(Error::validation(
                "q",
                "must not contain control characters",
            ))
        }
        Some(text) => Some(like_pattern(text)),
    };
    let mut next = 2;
    if market_state.is_some() {
        sql.push_str(&format!(" AND state = ${next}"));
        next += 1;
    }
    if search.is_some() {
        sql.push_str(&format!(
            " AND (LOWER(question) LIKE ${next} ESCAPE '\\' OR slug LIKE ${next} ESCAPE '\\')"
        ));
        next += 1;
    }
    sql.push_str(&format!(" ORDER BY engine_market_id DESC LIMIT ${next}"));
    // Engine ids start at 0; the cursor is the id plus one so that it is always positive.
    let below = if page.before == i64::MAX {
        i64::MAX
    } else {
        page.before - 1
    };
    let mut statement = sqlx::query(&sql).bind(below);
    if let Some(market_state) = market_state {
        statement = statement.bind(market_state);
    }
    if let Some(search) = search {
        statement = statement.bind(search);
    }
    let rows = statement
        .bind(page.fetch())
        .fetch_all(&state.db.pool)
        .await?;
    let mut markets = Vec::with_capacity(rows.len());
    for row in &rows {
        let market = from_row(row)?;
        let key = i64::from(market.engine_id.0) + 1;
        markets.push((key, MarketBody::from(&market)));
    }
    Ok(Json(paged(page, markets)))
}

async fn transition(
    state: &AppState,
    auth: &AuthUser,
    id: &str,
    op: impl FnOnce(MarketId) -> Op,
) -> Result<Json<MarketBody>, Error> {
    auth.require_admin()?;
    let market = existing(&state.db, id).await?;
    let applied = state.sequencer.submit(op(market.engine_id), None).await?;
    applied.result.map_err(Error::Rejected)?;
    let market = existing(&state.db, &market.id.to_string()).await?;
    Ok(Json(MarketBody::from(&market)))
}

/// Halts trading: orders rest untouched, nothing new trades (admin only).
#[utoipa::path(
    post,
    path = "/markets/{id}/halt",
    operation_id = "haltMarket",
    tag = "markets",
    params(MarketPath, IdempotencyKey),
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The market after the change.", body = MarketBody),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "`INVALID_MARKET_TRANSITION` (not from this state), or \
            this `Idempotency-Key` still running.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(admin_id = %auth.user_id))]
async fn halt(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<MarketBody>, Error> {
    transition(&state, &auth, &id, |market| Op::HaltMarket { market }).await
}

/// Resumes trading in a halted market (admin only).
#[utoipa::path(
    post,
    path = "/markets/{id}/resume",
    operation_id = "resumeMarket",
    tag = "markets",
    params(MarketPath, IdempotencyKey),
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The market after the change.", body = MarketBody),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "`INVALID_MARKET_TRANSITION` (not from this state), or \
            this `Idempotency-Key` still running.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(admin_id = %auth.user_id))]
async fn resume(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<MarketBody>, Error> {
    transition(&state, &auth, &id, |market| Op::ResumeMarket { market }).await
}

/// Stops trading for good and cancels resting orders, ahead of resolution (admin only).
#[utoipa::path(
    post,
    path = "/markets/{id}/close",
    operation_id = "closeMarket",
    tag = "markets",
    params(MarketPath, IdempotencyKey),
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The market after the change.", body = MarketBody),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "`INVALID_MARKET_TRANSITION` (not from this state), or \
            this `Idempotency-Key` still running.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(admin_id = %auth.user_id))]
async fn close(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<MarketBody>, Error> {
    transition(&state, &auth, &id, |market| Op::CloseMarket { market }).await
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResolveRequest {
    #[schema(value_type = ResolutionOutcome)]
    outcome: String,
    /// Only for SPLIT (and required there): what one YES share pays.
    #[schema(value_type = Option<PayoutInput>)]
    yes_payout: Option<String>,
}

fn parse_resolution(body: &ResolveRequest) -> Result<Resolution, Error> {
    match (body.outcome.as_str(), body.yes_payout.as_deref()) {
        ("YES", None) => Ok(Resolution::Yes),
        ("NO", None) => Ok(Resolution::No),
        ("SPLIT", Some(raw)) => Ok(Resolution::Split {
            yes_payout_units: parse_payout_units(raw, "yesPayout")?,
        }),
        ("SPLIT", None) => Err(Error::validation("yesPayout", "is required for SPLIT")),
        ("YES" | "NO", Some(_)) => Err(Error::validation(
            "yesPayout",
            "is only for SPLIT (YES pays 1, NO pays 0)",
        )),
        _ => Err(Error::validation("outcome", "must be YES, NO or SPLIT")),
    }
}

/// Resolves the market: resting orders are cancelled and every share is paid out (admin only).
#[utoipa::path(
    post,
    path = "/markets/{id}/resolve",
    operation_id = "resolveMarket",
    tag = "markets",
    params(MarketPath, IdempotencyKey),
    request_body = ResolveRequest,
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The resolved market.", body = MarketBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "`INVALID_MARKET_TRANSITION` (already resolved), or this \
            `Idempotency-Key` still running.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(admin_id = %auth.user_id))]
async fn resolve(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResolveRequest>,
) -> Result<Json<MarketBody>, Error> {
    auth.require_admin()?;
    let resolution = parse_resolution(&body)?;
    transition(&state, &auth, &id, |market| Op::ResolveMarket {
        market,
        resolution,
    })
    .await
}
