//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the database answers and
//! the sequencer recovered and is taking commands), `/metrics` (Prometheus text).
//!
//! None needs authentication and none may touch the engine or write anything: they must stay
//! cheap and safe to poll every second.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::sequencer::Status;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = state.db.ping().await;
    let sequencer = match state.sequencer.status() {
        Status::Running => "running",
        Status::Stopped => "stopped",
        Status::Failed => "failed",
        Status::ReadOnly => "none (read-only gateway)",
    };
    let ready = database && matches!(state.sequencer.status(), Status::Running | Status::ReadOnly);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": if database { "up" } else { "down" },
        "sequencer": sequencer,
    });
    (status, Json(body))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.sequencer.record_queue_depth();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
