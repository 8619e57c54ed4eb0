//! `POST /v1/admin/snapshot`: the operator's endpoints that belong to no trading domain.
//!
//! A snapshot is taken by the sequencer between batches, so it holds exactly the committed
//! state; `server admin snapshot` calls this on a running server. Admin only; must never touch
//! the engine's state or the journal.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extractor::AuthUser;
use crate::http::openapi::{
    Conflict, Forbidden, IdempotencyKey, Internal, PayloadTooLarge, Unauthenticated, Unavailable,
    Unprocessable,
};
use crate::http::{AppState, Error};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(snapshot))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Snapshot)]
struct SnapshotBody {
    /// The last journaled command the snapshot includes.
    seq: u64,
    /// The engine's whole-state hash at `seq` (32 hex digits), which recovery checks.
    state_hash: String,
}

/// Stores a snapshot of the committed state now, so a restart replays nothing before it
/// (admin only; a snapshot already stored for the current state is answered as is).
#[utoipa::path(
    post,
    path = "/admin/snapshot",
    operation_id = "storeSnapshot",
    tag = "ops",
    params(IdempotencyKey),
    security(("bearerAuth" = []), ("cookieAuth" = [], "csrfToken" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The stored snapshot.", body = SnapshotBody),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
#[tracing::instrument(skip_all, fields(admin_id = %auth.user_id))]
async fn snapshot(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<SnapshotBody>, Error> {
    auth.require_admin()?;
    let taken = state.sequencer.snapshot().await?;
    Ok(Json(SnapshotBody {
        seq: taken.seq,
        state_hash: taken.state_hash,
    }))
}
