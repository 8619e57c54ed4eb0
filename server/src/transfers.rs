//! Cash in and out, and the balance: `POST /v1/transfers/deposit` (admin),
//! `POST /v1/transfers/faucet` (only when `FAUCET_MAX_AMOUNT` is set, never in production: a 404
//! otherwise; rate limited, and capped per user over any 24 hours),
//! `POST /v1/transfers/withdraw`, `GET /v1/portfolio/balance`, `GET /v1/portfolio/transfers`.
//!
//! Amounts are parsed at the boundary into exact micro-dollars; the engine decides whether a
//! withdrawal is covered. A transfer is answered only after its command is committed, and the
//! balance is read from the committed projection, never from the engine's newer state.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use engine::{Event, Op, UserId};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::config::AppEnv;
use crate::db::now_micros;
use crate::domain::{format_cash, parse_transfer_amount, rfc3339};
use crate::http::error::ErrorBody;
use crate::http::extractor::{ApiJson, ApiQuery, AuthUser};
use crate::http::openapi::{
    BadRequest, Conflict, Forbidden, IdempotencyKey, Internal, PayloadTooLarge, RateLimited,
    Unauthenticated, Unavailable, Unprocessable, UnsupportedMediaType,
};
use crate::http::page::{page_schema, paged, Page, PageQuery, Paged};
use crate::http::{AppState, Error};
use crate::ids::transfer_uuid;
use crate::sequencer::{Applied, Subject};
use crate::users;
use crate::wire::schema::{Cash, CashInput, TransferKind};
use crate::wire::{BalanceBody, LockTerms};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(deposit))
        .routes(routes!(withdraw))
        .routes(routes!(faucet))
        .routes(routes!(balance))
        .routes(routes!(list))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DepositRequest {
    /// The user to credit.
    #[schema(format = Uuid)]
    user_id: String,
    #[schema(value_type = CashInput)]
    amount: String,
}

/// `{amount}`: a withdrawal or a faucet request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AmountRequest)]
struct WithdrawRequest {
    #[schema(value_type = CashInput)]
    amount: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Transfer)]
pub struct TransferBody {
    pub id: Uuid,
    #[schema(value_type = TransferKind)]
    pub kind: &'static str,
    #[schema(value_type = Cash)]
    pub amount: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

page_schema!(TransferPage of TransferBody);

/// Credits a user's cash (admin only).
#[utoipa::path(
    post,
    path = "/transfers/deposit",
    operation_id = "deposit",
    tag = "transfers",
    params(IdempotencyKey),
    request_body = DepositRequest,
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 201, description = "The committed deposit.", body = TransferBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, description = "`NOT_FOUND`: no such user.", body = ErrorBody),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(admin_id = %auth.user_id))]
async fn deposit(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<DepositRequest>,
) -> Result<impl IntoResponse, Error> {
    auth.require_admin()?;
    let user_id = Uuid::parse_str(body.user_id.trim())
        .map_err(|_| Error::validation("userId", "must be a user id (UUID)"))?;
    let amount_micros = parse_transfer_amount(&body.amount, "amount")?;
    if users::by_id(&state.db, user_id).await?.is_none() {
        return Err(Error::NotFound);
    }
    let user = state.sequencer.ensure_user(user_id).await?;
    let op = Op::Deposit {
        user,
        amount_micros,
    };
    let applied = state.sequencer.submit(op, None).await?;
    transfer_answer(applied, "DEPOSIT")
}

/// Takes cash out of the caller's available balance.
#[utoipa::path(
    post,
    path = "/transfers/withdraw",
    operation_id = "withdraw",
    tag = "transfers",
    params(IdempotencyKey),
    request_body = WithdrawRequest,
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 201, description = "The committed withdrawal.", body = TransferBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, description = "`VALIDATION_FAILED`, `IDEMPOTENCY_KEY_REUSED`, or \
            `INSUFFICIENT_FUNDS` when the available balance does not cover it.", body = ErrorBody),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn withdraw(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<WithdrawRequest>,
) -> Result<impl IntoResponse, Error> {
    let amount_micros = parse_transfer_amount(&body.amount, "amount")?;
    let user = state.sequencer.ensure_user(auth.user_id).await?;
    let op = Op::Withdraw {
        user,
        amount_micros,
    };
    let applied = state.sequencer.submit(op, None).await?;
    transfer_answer(applied, "WITHDRAWAL")
}

/// Credits the caller test cash, up to `FAUCET_MAX_AMOUNT` a call and
/// `FAUCET_DAILY_MAX_AMOUNT` in any 24 hours: only on development deployments that set it (a
/// 404 everywhere else).
#[utoipa::path(
    post,
    path = "/transfers/faucet",
    operation_id = "faucet",
    tag = "transfers",
    params(IdempotencyKey),
    request_body = WithdrawRequest,
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 201, description = "The committed credit (kind `FAUCET`).", body = TransferBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, description = "`NOT_FOUND`: this deployment has no faucet.",
            body = ErrorBody),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, description = "`VALIDATION_FAILED`: more than one call or the caller's \
            remaining daily total may give.", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn faucet(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<WithdrawRequest>,
) -> Result<impl IntoResponse, Error> {
    // Config refuses a faucet in production; this holds even for a hand-built `Config`.
    let faucet = match (state.config.env, state.config.faucet) {
        (AppEnv::Development, Some(faucet)) => faucet,
        _ => return Err(Error::NotFound),
    };
    state.limits.faucet(auth.user_id)?;
    let amount_micros = parse_transfer_amount(&body.amount, "amount")?;
    if amount_micros > faucet.per_call_micros {
        return Err(Error::validation(
            "amount",
            format!(
                "the faucet gives at most {} a call",
                format_cash(faucet.per_call_micros)
            ),
        ));
    }
    let user = state.sequencer.ensure_user(auth.user_id).await?;
    // One faucet credit at a time, so two concurrent calls cannot both fit under the total.
    let _one_at_a_time = FAUCET_TURN.lock().await;
    let taken_micros = faucet_taken_today(&state, user).await?;
    let left_micros = faucet.per_day_micros.saturating_sub(taken_micros);
    if amount_micros > left_micros {
        return Err(Error::validation(
            "amount",
            format!(
                "the faucet gives at most {} a day; {} is left",
                format_cash(faucet.per_day_micros),
                format_cash(left_micros)
            ),
        ));
    }
    let op = Op::Deposit {
        user,
        amount_micros,
    };
    let applied = state.sequencer.submit(op, Some(Subject::Faucet)).await?;
    transfer_answer(applied, "FAUCET")
}

/// Taken by each faucet call between reading the user's total and committing the credit.
static FAUCET_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What `user` took from the faucet over the last 24 hours (committed credits: the projection
/// is written in the same transaction as the command).
async fn faucet_taken_today(state: &AppState, user: UserId) -> Result<i64, Error> {
    let since = now_micros().saturating_sub(DAY_MICROS);
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount_micros), 0) AS BIGINT) AS taken FROM transfers \
         WHERE engine_user_id = $1 AND kind = 'FAUCET' AND created_at >= $2",
    )
    .bind(i64::from(user.0))
    .bind(since)
    .fetch_one(&state.db.pool)
    .await?;
    Ok(row.try_get("taken")?)
}

const DAY_MICROS: i64 = 24 * 60 * 60 * 1_000_000;

fn transfer_answer(applied: Applied, kind: &'static str) -> Result<impl IntoResponse, Error> {
    applied.result.map_err(Error::Rejected)?;
    let amount_micros = applied
        .events
        .iter()
        .find_map(|event| match event {
            Event::Deposited { amount_micros, .. } | Event::Withdrawn { amount_micros, .. } => {
                Some(*amount_micros)
            }
            _ => None,
        })
        .ok_or_else(|| Error::internal("transfer committed without its event"))?;
    let created_at = i64::try_from(applied.ts_micros).map_err(Error::internal)?;
    let body = TransferBody {
        id: transfer_uuid(applied.seq),
        kind,
        amount: format_cash(amount_micros),
        created_at: rfc3339(created_at),
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// The caller's cash, as of the last committed command.
#[utoipa::path(
    get,
    path = "/portfolio/balance",
    operation_id = "getBalance",
    tag = "portfolio",
    security(("bearerAuth" = []), ("cookieAuth" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The caller's cash.", body = BalanceBody),
        (status = 401, response = Unauthenticated),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn balance(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<BalanceBody>, Error> {
    Ok(Json(balance_of(&state.db, auth.user_id).await?))
}

/// `user_id`'s committed cash (zero before the first deposit).
pub async fn balance_of(db: &crate::db::Db, user_id: Uuid) -> Result<BalanceBody, Error> {
    // One statement, so the fee reserve (summed over the resting BUY orders, one row each) is
    // read from the same committed state as the balance.
    let rows = sqlx::query(
        "SELECT a.available_micros, a.locked_micros, o.remaining_qty, m.maker_fee_bps, \
         m.taker_fee_bps, m.lock_rule FROM accounts a \
         LEFT JOIN orders o ON o.engine_user_id = a.engine_user_id AND o.side = 'BUY' \
         AND o.status IN ('OPEN', 'PARTIALLY_FILLED') \
         LEFT JOIN markets m ON m.engine_market_id = o.engine_market_id \
         WHERE a.user_id = $1",
    )
    .bind(user_id.to_string())
    .fetch_all(&db.pool)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(BalanceBody::new(0, 0, 0));
    };
    let mut fee_reserve = 0;
    for row in &rows {
        let Some(remaining) = row.try_get::<Option<i64>, _>("remaining_qty")? else {
            continue;
        };
        let terms = LockTerms::from_row(row)?;
        let remaining = u64::try_from(remaining).map_err(Error::internal)?;
        fee_reserve += terms.fee_reserve(true, remaining);
    }
    Ok(BalanceBody::new(
        first.try_get("available_micros")?,
        first.try_get("locked_micros")?,
        fee_reserve,
    ))
}

/// The caller's deposits and withdrawals, newest first (keyed by their sequence number).
#[utoipa::path(
    get,
    path = "/portfolio/transfers",
    operation_id = "listTransfers",
    tag = "portfolio",
    params(PageQuery),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "A page of the caller's transfers.",
            body = TransferPage),
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
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paged<TransferBody>>, Error> {
    let page = Page::parse(query.limit, query.cursor.as_deref())?;
    let Some(user) = users::engine_user(&state.db, auth.user_id).await? else {
        return Ok(Json(paged(page, Vec::new())));
    };
    let rows = sqlx::query(
        "SELECT id, seq, kind, amount_micros, created_at FROM transfers \
         WHERE engine_user_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
    )
    .bind(i64::from(user.0))
    .bind(page.before)
    .bind(page.fetch())
    .fetch_all(&state.db.pool)
    .await?;
    let mut transfers = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get("id")?;
        let kind: String = row.try_get("kind")?;
        let kind = match kind.as_str() {
            "DEPOSIT" => "DEPOSIT",
            "WITHDRAWAL" => "WITHDRAWAL",
            "FAUCET" => "FAUCET",
            other => return Err(Error::internal(format!("unknown transfer kind {other}"))),
        };
        transfers.push((
            row.try_get("seq")?,
            TransferBody {
                id: Uuid::parse_str(&id).map_err(Error::internal)?,
                kind,
                amount: format_cash(row.try_get("amount_micros")?),
                created_at: rfc3339(row.try_get("created_at")?),
            },
        ));
    }
    Ok(Json(paged(page, transfers)))
}
