//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the database answers and
//! the sequencer recovered and is taking commands), `/metrics` (Prometheus text), and
//! `/openapi.json` (this API's OpenAPI document).
//!
//! None needs authentication and none may touch the engine or write anything: they must stay
//! cheap and safe to poll every second.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::sequencer::Status;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: an answer at all is the news.
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

/// Whether the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "getHealth",
    tag = "ops",
    security(()),
    responses((status = 200, description = "The process answers.", body = Health)),
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` when the database is up and the sequencer running, else `unavailable`.
    #[schema(value_type = String, pattern = "^(ready|unavailable)$", example = "ready")]
    status: &'static str,
    #[schema(value_type = String, pattern = "^(up|down)$", example = "up")]
    database: &'static str,
    /// `failed` after a failed commit: writes stay stopped until a restart. A read-only
    /// gateway has none, and is ready with its database.
    #[schema(
        value_type = String,
        pattern = r"^(running|stopped|failed|none \(read-only gateway\))$",
        example = "running"
    )]
    sequencer: &'static str,
}

/// Whether the server can take traffic: the database answers and the sequencer is running.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "getReadiness",
    tag = "ops",
    security(()),
    responses(
        (status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "Not ready: the body says what is down.", body = Readiness),
    ),
)]
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
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        database: if database { "up" } else { "down" },
        sequencer,
    };
    (status, Json(body))
}

const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prometheus metrics: commands, batch sizes, commit latency, queue depth, open orders, ...
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "getMetrics",
    tag = "ops",
    security(()),
    responses((
        status = 200,
        description = "The Prometheus text exposition format.",
        body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8",
    )),
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.sequencer.record_queue_depth();
    let (topics, history_bytes) = state.hub.size();
    let metrics = &state.metrics;
    metrics
        .stream_topics
        .store(topics as u64, Ordering::Relaxed);
    metrics
        .stream_history_bytes
        .store(history_bytes as u64, Ordering::Relaxed);
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        state.metrics.render(),
    )
}

/// This document: OpenAPI 3.1, generated from the server's own route declarations.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "getOpenApi",
    tag = "ops",
    security(()),
    responses((
        status = 200,
        description = "The OpenAPI 3.1 document of this API.",
        body = Object,
        content_type = "application/json",
    )),
)]
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::json(),
    )
}
