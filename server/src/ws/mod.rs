//! `GET /v1/ws`: the WebSocket endpoint — authentication at the upgrade, the client protocol,
//! and one task per connection (`connection`).
//!
//! A connection may authenticate when it opens (`?token=<access token>`, a bearer or API-key
//! header, or the session cookie — a cookie only from an allowed `Origin`, since browsers send
//! it cross-site) or later with `{"op": "auth", "token"}`. Anyone may subscribe to market
//! topics; private topics need a user and only ever carry that user's data, and a connection
//! whose credential is revoked (logout, a reused refresh token, a revoked API key) is closed
//! with 4001 within a second or so (`auth::revocations`). Every client
//! mistake is an `{"type": "error", "code", "message"}` frame and the socket stays open. Must
//! never let a client's input panic the task, nor one connection's backlog affect another.

mod connection;
mod snapshot;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::ErrorBody;
use crate::http::extractor::{authenticate, by_access_token, ApiQuery, AuthUser, ACCESS_COOKIE};
use crate::http::openapi::{Internal, Unauthenticated};
use crate::http::{AppState, Error};

/// Largest client frame accepted; every op is far smaller.
pub const CLIENT_FRAME_BYTES_MAX: usize = 4 * 1024;
/// The socket's read buffer (client frames are small; see `upgrade`).
const READ_BUFFER_BYTES: usize = 8 * 1024;
/// Topics one connection may hold at once.
pub const SUBSCRIPTIONS_MAX: usize = 200;
/// Client operations (subscribe, unsubscribe, auth) one connection may send per second, after
/// a first burst of `SUBSCRIPTIONS_MAX` (every topic at once).
pub const OPS_PER_SECOND: u32 = 10;
/// Close code and reason for a connection whose send queue overflowed.
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;
/// Close code for a connection that stopped answering pings.
pub const CLOSE_IDLE: u16 = 4000;
/// Close code for a connection whose credential was revoked (logout, a reused refresh token,
/// a revoked API key).
pub const CLOSE_REVOKED: u16 = 4001;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upgrade))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ConnectQuery {
    /// An access token, for clients that cannot set headers on the upgrade request.
    token: Option<String>,
}

/// Opens the real-time stream, a WebSocket.
///
/// It carries the API's JSON messages: subscribe to `book:<marketId>`, `trades:<marketId>`,
/// `ticker:<marketId>` and, authenticated, `orders`, `fills`, `balances`, `positions` (see the
/// API guide). Anyone may connect; credentials, when sent, must be valid, and a cookie is
/// accepted only from an allowed `Origin`.
#[utoipa::path(
    get,
    path = "/ws",
    operation_id = "openStream",
    tag = "streams",
    params(ConnectQuery),
    security((), ("bearerAuth" = []), ("cookieAuth" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 101, description = "Switching Protocols: the connection is now a WebSocket."),
        (status = 400, description = "Not a WebSocket handshake (answered in plain text by the \
            upgrade itself), or a `BAD_REQUEST` query.",
            content((ErrorBody = "application/json"), (String = "text/plain; charset=utf-8"))),
        (status = 401, response = Unauthenticated),
        (status = 403, description = "`FORBIDDEN`: the session cookie from an `Origin` that is \
            not allowed.", body = ErrorBody),
        (status = 426, description = "Upgrade Required: the connection cannot be upgraded \
            (plain text).", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 500, response = Internal),
    ),
)]
async fn upgrade(
    State(state): State<AppState>,
    ws: WebSocketUpgrade,
    ApiQuery(query): ApiQuery<ConnectQuery>,
    parts: Parts,
) -> Result<Response, Error> {
    // Before the credential is checked: a revocation committed after the check still wakes it.
    let revocations = state.revocations.subscribe();
    let user = connect_user(&state, &parts, query.token.as_deref()).await?;
    Ok(ws
        // Each read zeroes a buffer of this size first: the 128 KiB default costs more than the
        // tiny frames clients send.
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(CLIENT_FRAME_BYTES_MAX)
        .max_frame_size(CLIENT_FRAME_BYTES_MAX)
        .on_upgrade(move |socket| connection::run(state, socket, user, revocations)))
}

/// Who opens the connection, if anyone: a bad credential fails the upgrade with a 401 rather
/// than quietly opening an anonymous socket.
async fn connect_user(
    state: &AppState,
    parts: &Parts,
    token: Option<&str>,
) -> Result<Option<AuthUser>, Error> {
    if let Some(token) = token {
        return Ok(Some(by_access_token(state, token).await?));
    }
    let headers = &parts.headers;
    if headers.contains_key(header::AUTHORIZATION) || headers.contains_key("x-api-key") {
        return Ok(Some(authenticate(parts, state).await?));
    }
    let jar = CookieJar::from_headers(headers);
    let Some(cookie) = jar.get(ACCESS_COOKIE) else {
        return Ok(None);
    };
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|origin| {
            state
                .config
                .cors_allowed_origins
                .iter()
                .any(|allowed| allowed == origin)
        });
        if !allowed {
            return Err(Error::Forbidden(
                "cookie authentication is only accepted from an allowed Origin",
            ));
        }
    }
    Ok(Some(by_access_token(state, cookie.value()).await?))
}
