//! Orders over HTTP: place, get, list, cancel, cancel-all, amend, and the caller's fills.
//!
//! Owns parsing an order request into an engine `PlaceOrder` (every field checked here, so the
//! engine only judges trading rules) and answering from the committed projections, with queue
//! positions read from the engine's committed state. Must never act on, or reveal, another
//! user's order: every lookup is by (user, id), and a miss is a plain 404.

pub mod batch;
pub mod store;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use engine::units::SLIPPAGE_BPS_MAX;
use engine::{
    CancelReason, ClientOrderId, Event, OrderId, OrderType, Outcome, PlaceOrder, Reject,
    SelfTradePrevention, Side, TimeInForce, UserId,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::domain::{parse_price_units, parse_time_micros, parse_transfer_amount};
use crate::http::error::ErrorBody;
use crate::http::extractor::{ApiJson, ApiQuery, AuthUser, OptionalJson};
use crate::http::openapi::{
    BadRequest, Conflict, Forbidden, IdempotencyKey, Internal, NotFound, PayloadTooLarge,
    RateLimited, Unauthenticated, Unavailable, Unprocessable, UnsupportedMediaType,
};
use crate::http::page::{page_schema, paged, Page, PageQuery, Paged};
use crate::http::{AppState, Error};
use crate::markets;
use crate::sequencer::{Applied, SequencerError};
use crate::users;
use crate::wire::schema;
use crate::wire::{FillBody, OrderBody};
use store::{OrderRow, StatusFilter};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place, list))
        .routes(routes!(cancel_all))
        .routes(routes!(batch::batch))
        .routes(routes!(show, cancel, amend))
        .routes(routes!(fills))
}

/// An order. Which fields apply depends on the type: a LIMIT order names `price` and `qty`; a
/// MARKET order names `qty` or `cashAmount`, within `worstPrice` and `maxSlippageBps`. The
/// engine judges the combination and names its reject.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = OrderRequest)]
pub struct PlaceRequest {
    /// The market's id (a UUID) or slug.
    market_id: String,
    #[schema(value_type = schema::Side)]
    side: String,
    #[schema(value_type = schema::Outcome)]
    outcome: String,
    #[serde(rename = "type")]
    #[schema(value_type = schema::OrderType)]
    order_type: String,
    /// The limit price, in the named outcome's terms (LIMIT orders).
    #[schema(value_type = Option<schema::PriceInput>)]
    price: Option<String>,
    /// Shares.
    #[schema(minimum = 1)]
    qty: Option<u64>,
    /// Cash to spend (MARKET buys instead of `qty`).
    #[schema(value_type = Option<schema::CashInput>)]
    cash_amount: Option<String>,
    /// Default GTC for LIMIT, IOC for MARKET.
    #[schema(value_type = Option<schema::TimeInForce>)]
    time_in_force: Option<String>,
    /// When a GTD order expires.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// Rest only: a taking order is rejected (`POST_ONLY_WOULD_TAKE`) instead.
    #[serde(default)]
    post_only: bool,
    /// Only reduce the position held.
    #[serde(default)]
    reduce_only: bool,
    /// Default CANCEL_TAKER.
    #[schema(value_type = Option<schema::SelfTradePrevention>)]
    self_trade_prevention: Option<String>,
    /// 1 to 36 printable ASCII characters: placing the same one again answers the original
    /// order (200) instead of a new one.
    #[schema(min_length = 1, max_length = 36)]
    client_order_id: Option<String>,
    /// The worst price a MARKET order may trade at.
    #[schema(value_type = Option<schema::PriceInput>)]
    worst_price: Option<String>,
    /// How far from the best price a MARKET order may trade, in basis points (0 to 10000).
    #[schema(maximum = 10_000)]
    max_slippage_bps: Option<u32>,
}

/// `raw` as one of `options` (exact names), or a 422 naming `field`.
fn choice<T: Copy>(raw: &str, field: &'static str, options: &[(&str, T)]) -> Result<T, Error> {
    options
        .iter()
        .find(|(name, _)| *name == raw)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
            Error::validation(field, format!("must be one of {}", names.join(", ")))
        })
}

/// The request as an engine order for `user`; trading rules (tick, funds, limits, option
/// combinations) are left to the engine, which names its reject.
pub async fn parse_place(
    state: &AppState,
    user: UserId,
    body: PlaceRequest,
) -> Result<PlaceOrder, Error> {
    let side = choice(
        &body.side,
        "side",
        &[("BUY", Side::Buy), ("SELL", Side::Sell)],
    )?;
    let outcome = choice(
        &body.outcome,
        "outcome",
        &[("YES", Outcome::Yes), ("NO", Outcome::No)],
    )?;
    let order_type = choice(
        &body.order_type,
        "type",
        &[("LIMIT", OrderType::Limit), ("MARKET", OrderType::Market)],
    )?;
    let default_tif = match order_type {
        OrderType::Limit => "GTC",
        OrderType::Market => "IOC",
    };
    let time_in_force = choice(
        body.time_in_force.as_deref().unwrap_or(default_tif),
        "timeInForce",
        &[
            ("GTC", TimeInForce::Gtc),
            ("GTD", TimeInForce::Gtd),
            ("IOC", TimeInForce::Ioc),
            ("FOK", TimeInForce::Fok),
        ],
    )?;
    let self_trade_prevention = choice(
        body.self_trade_prevention
            .as_deref()
            .unwrap_or("CANCEL_TAKER"),
        "selfTradePrevention",
        &[
            ("CANCEL_TAKER", SelfTradePrevention::CancelTaker),
            ("CANCEL_MAKER", SelfTradePrevention::CancelMaker),
            ("CANCEL_BOTH", SelfTradePrevention::CancelBoth),
            (
                "DECREMENT_AND_CANCEL",
                SelfTradePrevention::DecrementAndCancel,
            ),
        ],
    )?;
    let price_units = body
        .price
        .as_deref()
        .map(|raw| parse_price_units(raw, "price"))
        .transpose()?;
    let cash_micros = body
        .cash_amount
        .as_deref()
        .map(|raw| parse_transfer_amount(raw, "cashAmount"))
        .transpose()?;
    let expires_at_micros = body
        .expires_at
        .as_deref()
        .map(|raw| parse_time_micros(raw, "expiresAt"))
        .transpose()?;
    let client_order_id = body
        .client_order_id
        .as_deref()
        .map(|raw| {
            ClientOrderId::new(raw).ok_or_else(|| {
                Error::validation(
                    "clientOrderId",
                    "must be 1 to 36 printable ASCII characters",
                )
            })
        })
        .transpose()?;
    let worst_price_units = body
        .worst_price
        .as_deref()
        .map(|raw| parse_price_units(raw, "worstPrice"))
        .transpose()?;
    if body
        .max_slippage_bps
        .is_some_and(|bps| bps > SLIPPAGE_BPS_MAX)
    {
        return Err(Error::validation(
            "maxSlippageBps",
            "must be from 0 to 10000",
        ));
    }
    let market = markets::engine_id(state, body.market_id.trim())
        .await?
        .ok_or(Error::Rejected(Reject::UnknownMarket))?;
    Ok(PlaceOrder {
        user,
        market,
        side,
        outcome,
        order_type,
        price_units,
        qty: body.qty,
        cash_micros,
        time_in_force,
        expires_at_micros,
        post_only: body.post_only,
        reduce_only: body.reduce_only,
        self_trade_prevention,
        client_order_id,
        worst_price_units,
        max_slippage_bps: body.max_slippage_bps,
    })
}

/// An order with every fill it has had, oldest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderAnswer {
    order: OrderBody,
    fills: Vec<FillBody>,
}

page_schema!(OrderPage of OrderBody);
page_schema!(FillPage of FillBody);

/// Fills in the queue positions of the resting orders among `orders` (committed state). When
/// the sequencer cannot answer (a full queue, stopped writes) they stay null: a committed
/// order must never be answered with an error, or its client would place it again.
async fn with_queue_positions(state: &AppState, orders: &mut [OrderRow]) -> Result<(), Error> {
    let resting: Vec<OrderId> = orders
        .iter()
        .filter(|order| order.body.rests())
        .map(|order| order.engine_id)
        .collect();
    if resting.is_empty() {
        return Ok(());
    }
    let positions = match state.sequencer.queue_positions(resting).await {
        Ok(positions) => positions,
        // No engine to ask (busy, stopped, or a read-only gateway): positions stay null.
        Err(SequencerError::Overloaded | SequencerError::Stopped | SequencerError::ReadOnly) => {
            return Ok(())
        }
        Err(error) => return Err(error.into()),
    };
    let mut positions = positions.into_iter();
    for order in orders.iter_mut().filter(|order| order.body.rests()) {
        order.body.queue_position = positions.next().flatten();
    }
    Ok(())
}

/// The order as `applied` left it, with all its fills: from the reply when it carries them
/// (a new order's fills are all in its batch), else from the committed rows.
pub async fn answer_of(
    state: &AppState,
    applied: &Applied,
    order: OrderId,
) -> Result<OrderAnswer, Error> {
    match applied.order(order) {
        Some(view) => Ok(OrderAnswer {
            order: view.body.clone(),
            fills: view.fills.clone(),
        }),
        None => order_answer(state, order).await,
    }
}

/// The committed order with all its fills.
pub async fn order_answer(state: &AppState, order: OrderId) -> Result<OrderAnswer, Error> {
    let mut rows = [store::order_by_engine_id(&state.db, order).await?];
    with_queue_positions(state, &mut rows).await?;
    let [row] = rows;
    let fills = store::fills_of_order(&state.db, order).await?;
    Ok(OrderAnswer {
        order: row.body,
        fills,
    })
}

/// The order a place command created (true) or replayed by client order id (false).
pub fn placed_order(events: &[Event], user: UserId) -> Option<(OrderId, bool)> {
    events.iter().find_map(|event| match event {
        Event::OrderAccepted { order, request, .. } if request.user == user => Some((*order, true)),
        Event::OrderReplayed {
            order, user: by, ..
        } if *by == user => Some((*order, false)),
        _ => None,
    })
}

/// Places an order. It is answered once committed, with the fills it took at once; a rejected
/// order is an error answer naming the engine's reason.
#[utoipa::path(
    post,
    path = "/orders",
    operation_id = "placeOrder",
    tag = "orders",
    params(IdempotencyKey),
    request_body = PlaceRequest,
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 201, description = "The new order and its fills.", body = OrderAnswer),
        (status = 200, description = "A replay of this `clientOrderId`: the original order, as \
            it stands now.", body = OrderAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, description = "`UNKNOWN_MARKET`: no such market.", body = ErrorBody),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn place(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<PlaceRequest>,
) -> Result<impl IntoResponse, Error> {
    state.limits.orders(auth.user_id, 1)?;
    let user = state.sequencer.ensure_user(auth.user_id).await?;
    let request = parse_place(&state, user, body).await?;
    let applied = state
        .sequencer
        .submit(engine::Op::Place(request), None)
        .await?;
    applied.result.map_err(Error::Rejected)?;
    let (order, created) = placed_order(&applied.events, user)
        .ok_or_else(|| Error::internal("a placed order without its event"))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let answer = if created {
        answer_of(&state, &applied, order).await?
    } else {
        // A replay shows the original order as it stands now, with all its fills.
        order_answer(&state, order).await?
    };
    Ok((status, Json(answer)))
}

/// The caller's engine user, or `None` when they never traded (nothing of theirs exists).
async fn engine_user(state: &AppState, auth: &AuthUser) -> Result<Option<UserId>, Error> {
    match state.sequencer.known_user(auth.user_id) {
        Some(user) => Ok(Some(user)),
        // A gateway knows no one; a user who never traded has no engine user anywhere.
        None => users::engine_user(&state.db, auth.user_id).await,
    }
}

/// The caller's order `id` (404 for a malformed id, another user's order or none).
async fn own_order(
    state: &AppState,
    auth: &AuthUser,
    id: &str,
) -> Result<(UserId, OrderRow), Error> {
    let id = Uuid::parse_str(id).map_err(|_| Error::NotFound)?;
    let user = engine_user(state, auth).await?.ok_or(Error::NotFound)?;
    let order = store::order_of_user(&state.db, user, id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok((user, order))
}

/// One of the caller's orders.
#[utoipa::path(
    get,
    path = "/orders/{id}",
    operation_id = "getOrder",
    tag = "orders",
    params(("id" = Uuid, Path, description = "The order's id.")),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The order.", body = OrderBody),
        (status = 401, response = Unauthenticated),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn show(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<OrderBody>, Error> {
    let (_, order) = own_order(&state, &auth, &id).await?;
    let mut rows = [order];
    with_queue_positions(&state, &mut rows).await?;
    let [order] = rows;
    Ok(Json(order.body))
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `open` (resting) or `closed` (ended); both when absent.
    #[param(pattern = "^(open|closed)$")]
    status: Option<String>,
    /// Only this market's orders (its id or slug).
    market_id: Option<String>,
    /// Items per page, from 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `nextCursor` of the previous page; absent for the first.
    cursor: Option<String>,
}

/// The caller's orders, newest first.
#[utoipa::path(
    get,
    path = "/orders",
    operation_id = "listOrders",
    tag = "orders",
    params(ListQuery),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "A page of the caller's orders.", body = OrderPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Paged<OrderBody>>, Error> {
    let page = Page::parse(query.limit, query.cursor.as_deref())?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(choice(
            raw,
            "status",
            &[
                ("open", StatusFilter::Open),
                ("closed", StatusFilter::Closed),
            ],
        )?),
    };
    let market = match query.market_id.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(
            markets::find(&state.db, raw)
                .await?
                .ok_or_else(|| Error::validation("marketId", "no such market"))?
                .engine_id,
        ),
    };
    let Some(user) = engine_user(&state, &auth).await? else {
        return Ok(Json(paged(page, Vec::new())));
    };
    let rows = store::orders_of_user(&state.db, user, status, market, page).await?;
    let (keys, mut orders): (Vec<i64>, Vec<OrderRow>) = rows.into_iter().unzip();
    with_queue_positions(&state, &mut orders).await?;
    let items = keys
        .into_iter()
        .zip(orders.into_iter().map(|order| order.body))
        .collect();
    Ok(Json(paged(page, items)))
}

/// Cancels one of the caller's resting orders.
#[utoipa::path(
    delete,
    path = "/orders/{id}",
    operation_id = "cancelOrder",
    tag = "orders",
    params(("id" = Uuid, Path, description = "The order's id.")),
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The cancelled order.", body = OrderBody),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn cancel(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<OrderBody>, Error> {
    state.limits.orders(auth.user_id, 1)?;
    let (user, order) = own_order(&state, &auth, &id).await?;
    let op = engine::Op::Cancel {
        user,
        order: order.engine_id,
    };
    let applied = state.sequencer.submit(op, None).await?;
    applied.result.map_err(Error::Rejected)?;
    let body = match applied.order(order.engine_id) {
        Some(view) => view.body.clone(),
        None => order_answer(&state, order.engine_id).await?.order,
    };
    Ok(Json(body))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CancelAllRequest {
    /// Only this market's orders (its id or slug); every market when absent.
    market_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Cancelled)]
struct CancelledBody {
    /// The ids of the orders cancelled.
    cancelled: Vec<Uuid>,
}

/// Cancels every resting order of the caller's, in one market or all.
#[utoipa::path(
    post,
    path = "/orders/cancel-all",
    operation_id = "cancelAllOrders",
    tag = "orders",
    params(IdempotencyKey),
    request_body(content = Option<CancelAllRequest>, description = "Optional: without it, every \
        market."),
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "What was cancelled.", body = CancelledBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, description = "`UNKNOWN_MARKET`: no such market.", body = ErrorBody),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn cancel_all(
    State(state): State<AppState>,
    auth: AuthUser,
    OptionalJson(body): OptionalJson<CancelAllRequest>,
) -> Result<Json<CancelledBody>, Error> {
    state.limits.orders(auth.user_id, 1)?;
    let market = match body.and_then(|body| body.market_id) {
        None => None,
        Some(raw) => Some(
            markets::find(&state.db, raw.trim())
                .await?
                .ok_or(Error::Rejected(Reject::UnknownMarket))?
                .engine_id,
        ),
    };
    let user = state.sequencer.ensure_user(auth.user_id).await?;
    let applied = state
        .sequencer
        .submit(engine::Op::CancelAll { user, market }, None)
        .await?;
    applied.result.map_err(Error::Rejected)?;
    let cancelled = applied
        .events
        .iter()
        .filter_map(|event| match event {
            Event::OrderEnded {
                order,
                user: owner,
                reason: Some(CancelReason::UserRequested),
                ..
            } if *owner == user => Some(crate::ids::order_uuid(*order)),
            _ => None,
        })
        .collect();
    Ok(Json(CancelledBody { cancelled }))
}

/// At least one of the two.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AmendRequest {
    /// The new total quantity in shares.
    qty: Option<u64>,
    /// The new limit price, in the order's outcome.
    #[schema(value_type = Option<schema::PriceInput>)]
    price: Option<String>,
}

/// Changes a resting order's quantity or price.
#[utoipa::path(
    patch,
    path = "/orders/{id}",
    operation_id = "amendOrder",
    tag = "orders",
    params(("id" = Uuid, Path, description = "The order's id.")),
    request_body = AmendRequest,
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The amended order and all its fills.", body = OrderAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn amend(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AmendRequest>,
) -> Result<Json<OrderAnswer>, Error> {
    state.limits.orders(auth.user_id, 1)?;
    let price_units = body
        .price
        .as_deref()
        .map(|raw| parse_price_units(raw, "price"))
        .transpose()?;
    if body.qty.is_none() && price_units.is_none() {
        return Err(Error::validation("qty", "give qty, price or both"));
    }
    let (user, order) = own_order(&state, &auth, &id).await?;
    let op = engine::Op::Amend {
        user,
        order: order.engine_id,
        qty: body.qty,
        price_units,
    };
    let applied = state.sequencer.submit(op, None).await?;
    applied.result.map_err(Error::Rejected)?;
    Ok(Json(order_answer(&state, order.engine_id).await?))
}

/// The caller's fills, newest first.
#[utoipa::path(
    get,
    path = "/portfolio/fills",
    operation_id = "listFills",
    tag = "portfolio",
    params(PageQuery),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "A page of the caller's fills.", body = FillPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn fills(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paged<FillBody>>, Error> {
    let page = Page::parse(query.limit, query.cursor.as_deref())?;
    let Some(user) = engine_user(&state, &auth).await? else {
        return Ok(Json(paged(page, Vec::new())));
    };
    let rows = store::fills_of_user(&state.db, user, page).await?;
    Ok(Json(paged(page, rows)))
}
