//! Cash in and out, and the balance: `POST /v1/transfers/deposit` (admin),
//! `POST /v1/transfers/faucet` (only when `FAUCET_MAX_AMOUNT` is set: a 404 otherwise),
//! `POST /v1/transfers/withdraw`, `GET /v1/portfolio/balance`, `GET /v1/portfolio/transfers`.
//!
//! Amounts are parsed at the boundary into exact micro-dollars; the engine decides whether a
//! withdrawal is covered. A transfer is answered only after its command is committed, and the
//! balance is read from the committed projection, never from the engine's newer state.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::{Event, Op};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use crate::domain::{format_cash, parse_transfer_amount};
use crate::http::extractor::{ApiJson, ApiQuery, AuthUser};
use crate::http::page::{paged, Page, PageQuery, Paged};
use crate::http::{AppState, Error};
use crate::ids::transfer_uuid;
use crate::sequencer::{Applied, Subject};
use crate::users::{self, rfc3339};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/transfers/deposit", post(deposit))
        .route("/transfers/withdraw", post(withdraw))
        .route("/transfers/faucet", post(faucet))
        .route("/portfolio/balance", get(balance))
        .route("/portfolio/transfers", get(list))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DepositRequest {
    user_id: String,
    amount: String,
}

/// `{amount}`: a withdrawal or a faucet request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawRequest {
    amount: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferBody {
    pub id: Uuid,
    pub kind: &'static str,
    pub amount: String,
    pub created_at: String,
}

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

#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn faucet(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<WithdrawRequest>,
) -> Result<impl IntoResponse, Error> {
    let Some(max_micros) = state.config.faucet_max_micros else {
        return Err(Error::NotFound);
    };
    let amount_micros = parse_transfer_amount(&body.amount, "amount")?;
    if amount_micros > max_micros {
        return Err(Error::validation(
            "amount",
            format!(
                "the faucet gives at most {} a call",
                format_cash(max_micros)
            ),
        ));
    }
    let user = state.sequencer.ensure_user(auth.user_id).await?;
    let op = Op::Deposit {
        user,
        amount_micros,
    };
    let applied = state.sequencer.submit(op, Some(Subject::Faucet)).await?;
    transfer_answer(applied, "FAUCET")
}

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

#[derive(Serialize)]
pub struct BalanceBody {
    available: String,
    locked: String,
    total: String,
}

impl BalanceBody {
    pub fn new(available_micros: i64, locked_micros: i64) -> BalanceBody {
        BalanceBody {
            available: format_cash(available_micros),
            locked: format_cash(locked_micros),
            total: format_cash(available_micros.saturating_add(locked_micros)),
        }
    }
}

#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn balance(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<BalanceBody>, Error> {
    Ok(Json(balance_of(&state.db, auth.user_id).await?))
}

/// `user_id`'s committed cash (zero before the first deposit).
pub async fn balance_of(db: &crate::db::Db, user_id: Uuid) -> Result<BalanceBody, Error> {
    let row =
        sqlx::query("SELECT available_micros, locked_micros FROM accounts WHERE user_id = $1")
            .bind(user_id.to_string())
            .fetch_optional(&db.pool)
            .await?;
    let (available, locked): (i64, i64) = match row {
        Some(row) => (
            row.try_get("available_micros")?,
            row.try_get("locked_micros")?,
        ),
        None => (0, 0),
    };
    Ok(BalanceBody::new(available, locked))
}

/// The caller's deposits and withdrawals, newest first (keyed by their sequence number).
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
