//! The HTTP surface: shared state, the router, and the middleware every request goes through.
//!
//! Layers, outermost first: a request id (`x-request-id`, kept from the client or a new UUID),
//! a tracing span carrying it, propagation of the id to the response, panic-to-500 in our error
//! shape (a safety net: handlers do not panic), a body size limit, and security headers; CORS
//! for the configured browser origins wraps them all (preflights never reach a handler). Routes
//! are grouped by domain (`auth`, `transfers`, ...) and nested under `/v1`; ops endpoints sit at
//! the root. Unknown paths and methods answer in the same error shape as everything else.
//!
//! Every route is declared with utoipa-axum's `routes!`, so the OpenAPI document (`openapi`)
//! and the router come from the same declarations, composed in one place (`api`). No route may
//! be added any other way: it would be served undocumented.

pub mod error;
pub mod extractor;
pub mod idempotency;
pub mod openapi;
mod ops;
pub mod page;

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::Error;

use crate::auth::jwt::Keys;
use crate::config::Config;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::sequencer::SequencerHandle;

/// Largest request body accepted (JSON bodies here are small; batches stay far below it).
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// How long a browser may cache a CORS preflight answer.
const CORS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

pub struct Inner {
    pub db: Db,
    pub config: Config,
    pub keys: Keys,
    pub sequencer: SequencerHandle,
    pub metrics: Arc<Metrics>,
    pub limits: crate::limits::Limits,
    /// The real-time streams' fan-out (`/v1/ws`).
    pub hub: Arc<crate::stream::hub::Hub>,
    pub market_ids: crate::markets::MarketIds,
    pub key_cache: crate::auth::api_keys::KeyCache,
    /// Credentials revoked while WebSocket connections may hold them.
    pub revocations: Arc<crate::auth::revocations::Revocations>,
}

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Every route under `/v1`, by domain, each documented where it is declared.
fn v1_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(crate::auth::router())
        .merge(crate::transfers::router())
        .merge(crate::markets::router())
        .merge(crate::orders::router())
        .merge(crate::portfolio::router())
        .merge(crate::ws::router())
        .merge(crate::admin::router())
}

/// The whole API: `v1` (as given, layered or not) under `/v1`, the ops endpoints at the root.
/// The router and the document are both split from this, so they cannot disagree.
fn api(v1: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/v1", v1)
        .merge(ops::router())
}

pub fn router(state: AppState) -> Router {
    let v1 = v1_routes().layer(axum::middleware::from_fn_with_state(
        state.clone(),
        idempotency::layer,
    ));
    // The layer does not touch the document: this one equals `openapi::document()`.
    let (api, _) = api(v1).split_for_parts();
    // Built now, at start, rather than on the first request for it.
    openapi::json();
    let request_id = HeaderName::from_static("x-request-id");
    let middleware = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                .make_span_with(|request: &Request| {
                    let request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!(
                        "http",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %request_id,
                    )
                }),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    let cors = cors(&state.config.cors_allowed_origins);
    api.fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(middleware)
        .layer(cors)
        .with_state(state)
}

/// Cross-origin access for the configured browser origins only (credentials included, so a
/// cookie session works from the app's origin); none configured means same-origin only.
fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("x-csrf-token"),
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
        .allow_credentials(true)
        .max_age(CORS_MAX_AGE)
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    Error::internal("a handler panicked").into_response()
}
