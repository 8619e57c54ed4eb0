//! `POST /v1/orders/batch {place: [...], cancel: [ids]}`: one engine command, items judged one
//! by one.
//!
//! Items that fail parsing or lookup here never reach the engine; the rest go in one `Batch`
//! command (cancels first, then places, as the engine runs them). The answer mirrors the
//! request: `{place: [...], cancel: [...]}`, each item `{order, fills}` or `{error}` in the
//! order given. Must never let one bad item stop the others, nor cancel another user's order.

use axum::extract::State;
use axum::Json;
use engine::units::BATCH_ITEMS_MAX;
use engine::{Event, Op, OrderId, PlaceOrder, Reject};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{answer_of, order_answer, parse_place, store, OrderAnswer, PlaceRequest};
use crate::http::error::ErrorBody;
use crate::http::extractor::{ApiJson, AuthUser};
use crate::http::openapi::{
    BadRequest, Conflict, Forbidden, IdempotencyKey, Internal, PayloadTooLarge, RateLimited,
    Unauthenticated, Unavailable, UnsupportedMediaType,
};
use crate::http::{AppState, Error};
use crate::sequencer::Applied;

/// At most 100 items in all (`BATCH_TOO_LARGE` otherwise).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Orders to place, in order.
    #[serde(default)]
    place: Vec<PlaceRequest>,
    /// Ids of the caller's orders to cancel (run before the places).
    #[serde(default)]
    #[schema(value_type = Vec<Uuid>)]
    cancel: Vec<String>,
}

/// What became of one item: the order and its fills, or the error it alone met.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchItem {
    // Boxed: an answer is far larger than an error, and a batch holds up to 100 of either.
    Done(Box<OrderAnswer>),
    Failed(ErrorBody),
}

/// One result per item, in the order given.
#[derive(Serialize, ToSchema)]
pub struct BatchAnswer {
    place: Vec<BatchItem>,
    cancel: Vec<BatchItem>,
}

/// What became of each item: an engine order (placed by this command or not), or an error.
type Outcome = Result<(OrderId, bool), Error>;

async fn answer(state: &AppState, applied: Option<&Applied>, outcome: Outcome) -> BatchItem {
    let result = match (outcome, applied) {
        // A new order's fills are all in the reply; other orders have older ones.
        (Ok((order, true)), Some(applied)) => answer_of(state, applied, order).await,
        (Ok((order, _)), _) => order_answer(state, order).await,
        (Err(error), _) => Err(error),
    };
    match result {
        Ok(answer) => BatchItem::Done(Box::new(answer)),
        Err(error) => BatchItem::Failed(error.status_and_body().1),
    }
}

/// Engine outcomes of the submitted items, from the command's events: a rejected item is a
/// `BatchItemRejected` at its index; every other place is accepted or replayed in turn.
fn engine_outcomes(events: &[Event], cancels: &[OrderId], places: usize) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = cancels.iter().map(|order| Ok((*order, false))).collect();
    let mut placed: Vec<Outcome> = (0..places)
        .map(|_| Err(Error::internal("a batch place without an outcome")))
        .collect();
    let mut next_place = 0;
    for event in events {
        match event {
            Event::BatchItemRejected { index, reason } => {
                let index = *index as usize;
                if index < cancels.len() {
                    outcomes[index] = Err(Error::Rejected(*reason));
                } else if let Some(slot) = placed.get_mut(index - cancels.len()) {
                    *slot = Err(Error::Rejected(*reason));
                    next_place = index - cancels.len() + 1;
                }
            }
            Event::OrderAccepted { order, .. } | Event::OrderReplayed { order, .. } => {
                if let Some(slot) = placed.get_mut(next_place) {
                    let new = matches!(event, Event::OrderAccepted { .. });
                    *slot = Ok((*order, new));
                    next_place += 1;
                }
            }
            _ => {}
        }
    }
    outcomes.extend(placed);
    outcomes
}

/// Places and cancels several orders in one engine command; each item succeeds or fails on
/// its own.
#[utoipa::path(
    post,
    path = "/orders/batch",
    operation_id = "batchOrders",
    tag = "orders",
    params(IdempotencyKey),
    request_body = BatchRequest,
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "One result per item.", body = BatchAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, description = "`BATCH_TOO_LARGE` (over 100 items), `VALIDATION_FAILED` \
            or `IDEMPOTENCY_KEY_REUSED`; an item's own failure is in its result instead.",
            body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn batch(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<BatchRequest>,
) -> Result<Json<BatchAnswer>, Error> {
    let items = body.place.len() + body.cancel.len();
    if items > BATCH_ITEMS_MAX {
        return Err(Error::Rejected(Reject::BatchTooLarge));
    }
    state.limits.orders(auth.user_id, items)?;
    let user = state.sequencer.ensure_user(auth.user_id).await?;
    let mut cancel_items: Vec<Result<OrderId, Error>> = Vec::with_capacity(body.cancel.len());
    for raw in &body.cancel {
        let order = match Uuid::parse_str(raw.trim()) {
            Ok(id) => store::order_of_user(&state.db, user, id).await?,
            Err(_) => None,
        };
        cancel_items.push(order.map(|order| order.engine_id).ok_or(Error::NotFound));
    }
    let mut place_items: Vec<Result<PlaceOrder, Error>> = Vec::with_capacity(body.place.len());
    for request in body.place {
        place_items.push(parse_place(&state, user, request).await);
    }
    let cancels: Vec<OrderId> = cancel_items
        .iter()
        .filter_map(|item| item.as_ref().ok().copied())
        .collect();
    let places: Vec<PlaceOrder> = place_items
        .iter()
        .filter_map(|item| item.as_ref().ok().copied())
        .collect();
    let (applied, mut submitted) = if cancels.is_empty() && places.is_empty() {
        (None, Vec::new().into_iter())
    } else {
        let op = Op::Batch {
            user,
            cancels: cancels.clone(),
            places: places.clone(),
        };
        let applied = state.sequencer.submit(op, None).await?;
        applied.result.map_err(Error::Rejected)?;
        let outcomes = engine_outcomes(&applied.events, &cancels, places.len());
        (Some(applied), outcomes.into_iter())
    };
    let mut cancel_answers = Vec::with_capacity(cancel_items.len());
    for item in cancel_items {
        let outcome = match item {
            Ok(_) => submitted
                .next()
                .unwrap_or(Err(Error::internal("missing outcome"))),
            Err(error) => Err(error),
        };
        cancel_answers.push(answer(&state, applied.as_ref(), outcome).await);
    }
    let mut place_answers = Vec::with_capacity(place_items.len());
    for item in place_items {
        let outcome = match item {
            Ok(_) => submitted
                .next()
                .unwrap_or(Err(Error::internal("missing outcome"))),
            Err(error) => Err(error),
        };
        place_answers.push(answer(&state, applied.as_ref(), outcome).await);
    }
    Ok(Json(BatchAnswer {
        place: place_answers,
        cancel: cancel_answers,
    }))
}
