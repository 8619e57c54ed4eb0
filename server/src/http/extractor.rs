//! Extractors: JSON bodies with our error shape, and who is calling.
//!
//! `ApiJson<T>` maps axum's JSON rejections to 400/413/415 in the API's error shape.
//! `ClientIp` is the client's address behind the configured trusted proxies.
//! `AuthUser` authenticates a request from, in order: `X-API-Key`, `Authorization: Bearer`, or
//! the access-token cookie. Cookie-authenticated writes (anything but GET/HEAD/OPTIONS) must
//! carry the session's CSRF token in `X-CSRF-Token`, matching the csrf cookie (signed double
//! submit). Every path checks the database: the session must be live, the key unrevoked, and
//! the role is read fresh, never trusted from the token. Must never fall through to a weaker
//! method when a stronger one was presented and failed.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum_extra::extract::cookie::CookieJar;
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use sqlx::Row;
use uuid::Uuid;

use super::{AppState, Error};
use crate::auth::session::token_hash;
use crate::db::now_micros;
use crate::users::Role;

pub const ACCESS_COOKIE: &str = "predex_access";
pub const REFRESH_COOKIE: &str = "predex_refresh";
pub const CSRF_COOKIE: &str = "predex_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const API_KEY_HEADER: &str = "x-api-key";
const FORWARDED_FOR: &str = "x-forwarded-for";

/// A JSON body; a body that does not parse is a 400 in the API's shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(rejection: JsonRejection) -> Error {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => Error::UnsupportedMediaType(
            "expected a JSON body with Content-Type: application/json".into(),
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
        other => Error::BadRequest(other.body_text()),
    }
}

/// Query parameters; a query string that does not parse is a 400 in the API's shape.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| Error::BadRequest(rejection.body_text()))
    }
}

/// A JSON body that may be absent (empty): for endpoints that also read cookies.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Error::PayloadTooLarge
                } else {
                    Error::BadRequest(rejection.body_text())
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        serde_json::from_slice(&bytes)
            .map(|value| OptionalJson(Some(value)))
            .map_err(|error| Error::BadRequest(format!("invalid JSON body: {error}")))
    }
}

/// The client's address, for per-client limits: the peer, or — when the peer is one of the
/// `TRUSTED_PROXIES` — the last address in `X-Forwarded-For` that is not a trusted proxy
/// (addresses further left were written by the client and prove nothing).
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| Error::internal("no peer address"))?;
        Ok(ClientIp(client_ip(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all(FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for entry in forwarded.into_iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => continue,
            Ok(ip) => return ip,
            // Unreadable: what the proxies vouch for ends here.
            Err(_) => return peer,
        }
    }
    peer
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// A login session (bearer token or cookie).
    Session {
        session_id: Uuid,
    },
    ApiKey {
        key_id: Uuid,
    },
}

#[derive(Clone, Debug)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub role: Role,
    pub method: AuthMethod,
}

impl AuthUser {
    pub fn require_admin(&self) -> Result<(), Error> {
        match self.role {
            Role::Admin => Ok(()),
            Role::User => Err(Error::Forbidden("admin only")),
        }
    }

    /// The session, for endpoints an API key may not use.
    pub fn session(&self) -> Result<Uuid, Error> {
        match self.method {
            AuthMethod::Session { session_id } => Ok(session_id),
            AuthMethod::ApiKey { .. } => Err(Error::Forbidden(
                "this endpoint needs a login session, not an API key",
            )),
        }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        // Already authenticated by a layer (the idempotency layer scopes keys by user).
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        authenticate(parts, state).await
    }
}

pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<AuthUser, Error> {
    if let Some(key) = parts.headers.get(API_KEY_HEADER) {
        let key = key
            .to_str()
            .map_err(|_| Error::Unauthenticated("invalid API key"))?;
        return by_api_key(state, key).await;
    }
    if let Some(authorization) = parts.headers.get(header::AUTHORIZATION) {
        let token = authorization
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(Error::Unauthenticated(
                "Authorization must be `Bearer <access token>`",
            ))?;
        return by_access_token(state, token).await;
    }
    let jar = CookieJar::from_headers(&parts.headers);
    let Some(cookie) = jar.get(ACCESS_COOKIE) else {
        return Err(Error::Unauthenticated("authentication required"));
    };
    let user = by_access_token(state, cookie.value()).await?;
    if !is_safe(&parts.method) {
        let AuthMethod::Session { session_id } = user.method else {
            return Err(Error::Csrf);
        };
        check_csrf(state, parts, &jar, session_id)?;
    }
    Ok(user)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The CSRF header must be present, equal the csrf cookie, and be the session's token.
pub fn check_csrf(
    state: &AppState,
    parts: &Parts,
    jar: &CookieJar,
    session_id: Uuid,
) -> Result<(), Error> {
    let header = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .ok_or(Error::Csrf)?;
    let cookie = jar.get(CSRF_COOKIE).ok_or(Error::Csrf)?;
    let matches_cookie =
        subtle::ConstantTimeEq::ct_eq(header.as_bytes(), cookie.value().as_bytes());
    if !bool::from(matches_cookie) || !state.keys.csrf_valid(session_id, header) {
        return Err(Error::Csrf);
    }
    Ok(())
}

pub async fn by_access_token(state: &AppState, token: &str) -> Result<AuthUser, Error> {
    let verified = state.keys.verify(token)?;
    let row = sqlx::query(
        "SELECT u.role FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > $3",
    )
    .bind(verified.session_id.to_string())
    .bind(verified.user_id.to_string())
    .bind(now_micros())
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else {
        return Err(Error::Unauthenticated("session ended; log in again"));
    };
    let role: String = row.try_get("role")?;
    Ok(AuthUser {
        user_id: verified.user_id,
        role: role_of(&role),
        method: AuthMethod::Session {
            session_id: verified.session_id,
        },
    })
}

async fn by_api_key(state: &AppState, key: &str) -> Result<AuthUser, Error> {
    let key_hash = token_hash(key.trim());
    if let Some(user) = state.key_cache.get(&key_hash) {
        return Ok(user);
    }
    let row = sqlx::query(
        "SELECT k.id, k.user_id, u.role FROM api_keys k JOIN users u ON u.id = k.user_id \
         WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
    )
    .bind(&key_hash)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else {
        return Err(Error::Unauthenticated("invalid API key"));
    };
    let key_id: String = row.try_get("id")?;
    let user_id: String = row.try_get("user_id")?;
    let role: String = row.try_get("role")?;
    let user = AuthUser {
        user_id: Uuid::parse_str(&user_id).map_err(Error::internal)?,
        role: role_of(&role),
        method: AuthMethod::ApiKey {
            key_id: Uuid::parse_str(&key_id).map_err(Error::internal)?,
        },
    };
    state.key_cache.remember(key_hash, user.clone());
    Ok(user)
}

/// Anything but a known admin is a plain user (the column's CHECK allows only the two).
fn role_of(text: &str) -> Role {
    if text == "admin" {
        Role::Admin
    } else {
        Role::User
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append(FORWARDED_FOR, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_client_is_the_last_untrusted_hop() {
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let client = |peer: IpAddr, forwarded: &[&str], trusted: &[IpNet]| {
            client_ip(peer, &headers(forwarded), trusted).to_string()
        };
        // No proxy trusted: the header is anyone's to write.
        assert_eq!(client(proxy, &["203.0.113.9"], &[]), "10.0.0.5");
        // From a trusted proxy: the last address it did not add itself.
        assert_eq!(client(proxy, &["203.0.113.9"], &trusted), "203.0.113.9");
        assert_eq!(
            client(proxy, &["1.2.3.4, 203.0.113.9, 10.0.0.7"], &trusted),
            "203.0.113.9"
        );
        assert_eq!(
            client(proxy, &["1.2.3.4", "203.0.113.9"], &trusted),
            "203.0.113.9"
        );
        // Not from a trusted proxy: its header is ignored.
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(client(stranger, &["203.0.113.9"], &trusted), "198.51.100.1");
        // Nothing usable: the proxy itself.
        assert_eq!(client(proxy, &[], &trusted), "10.0.0.5");
        assert_eq!(client(proxy, &["garbage"], &trusted), "10.0.0.5");
        assert_eq!(
            client(proxy, &["203.0.113.9, garbage, 10.0.0.7"], &trusted),
            "10.0.0.5"
        );
    }
}
