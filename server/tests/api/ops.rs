//! Health, readiness, metrics, and the error shape of unknown routes.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{error_code, spawn_app, Backend};

crate::on_both_databases!(
    health_readiness_and_metrics_answer,
    unknown_paths_and_methods_answer_in_the_error_shape,
);

async fn health_readiness_and_metrics_answer(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["sequencer"], "running");
    assert_eq!(ready["database"], "up");
    let metrics = app.get("/metrics", None).await;
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    for name in [
        "predex_commands_total",
        "predex_batch_size_bucket",
        "predex_commit_seconds_bucket",
        "predex_queue_depth",
        "predex_open_orders",
        "predex_stream_topics",
        "predex_stream_history_bytes",
        "predex_redis_batches_dropped_total",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    // The admin's CreateUser at start was committed.
    assert!(!text.contains("predex_commands_total 0\n"), "{text}");
}

async fn unknown_paths_and_methods_answer_in_the_error_shape(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let missing = app.get("/v1/nothing-here", None).await;
    assert!(missing.headers().contains_key("x-request-id"));
    assert_eq!(missing.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        error_code(missing, StatusCode::NOT_FOUND).await,
        "NOT_FOUND"
    );
    let wrong_method = app.get("/v1/auth/login", None).await;
    assert_eq!(
        error_code(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await,
        "METHOD_NOT_ALLOWED"
    );
    let echoed = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42");
}
