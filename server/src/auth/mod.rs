//! Accounts and auth over HTTP: register, login, refresh, logout, `GET /v1/me`, API keys,
//! password resets with one-time tokens.
//!
//! Owns the auth routes and the cookies they set. Login answers the tokens in the body (for
//! bots and mobile apps) and also sets HTTP-only cookies for the browser: the access token
//! (`SameSite=Lax`, every path), the refresh token (`SameSite=Strict`, only `/v1/auth`), and a
//! readable CSRF token the app echoes in `X-CSRF-Token`. Must never say whether an email exists
//! on a failed login, log a password or token, or leave a session usable after logout.

pub mod api_keys;
pub mod jwt;
pub mod password;
pub mod password_reset;
pub mod revocations;
pub mod session;

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::domain::{Email, FullName, Password};
use crate::http::error::ErrorBody;
use crate::http::extractor::{
    authenticate, check_csrf, ApiJson, AuthMethod, AuthUser, ClientIp, OptionalJson, ACCESS_COOKIE,
    CSRF_COOKIE, REFRESH_COOKIE,
};
use crate::http::openapi::{
    BadRequest, Forbidden, Internal, PayloadTooLarge, RateLimited, Unauthenticated, Unprocessable,
    UnsupportedMediaType,
};
use crate::http::{AppState, Error};
use crate::users::{self, Role, User, UserBody};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(password_reset::reset))
        .merge(api_keys::router())
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegisterRequest {
    /// Trimmed and lower-cased; one account per address.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// 12 to 128 characters, not blank, not the email address.
    #[schema(min_length = 12, max_length = 128)]
    password: String,
    /// 1 to 100 characters, trimmed.
    #[schema(min_length = 1, max_length = 100)]
    full_name: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = UserAnswer)]
struct UserEnvelope {
    user: UserBody,
}

/// Creates an account (role `user`) and its engine account.
#[utoipa::path(
    post,
    path = "/auth/register",
    operation_id = "register",
    tag = "auth",
    security(()),
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The new account.", body = UserEnvelope),
        (status = 400, response = BadRequest),
        (status = 409, description = "`CONFLICT`: an account with this email exists.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = RateLimited),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all)]
async fn register(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<impl IntoResponse, Error> {
    state.limits.auth(client)?;
    let email = Email::parse(&body.email)?;
    let full_name = FullName::parse(&body.full_name)?;
    let password = Password::parse(body.password, &email)?;
    let user = create_user(&state, &email, &full_name, &password, Role::User).await?;
    tracing::info!(user_id = %user.id, "user registered");
    let body = UserEnvelope {
        user: UserBody::from(&user),
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// Inserts the user, then asks the sequencer for its engine account. The account is committed
/// with the journaled `CreateUser`; if the exchange is busy now it is created on first use or
/// at the next start, so registration never fails half-way.
pub async fn create_user(
    state: &AppState,
    email: &Email,
    full_name: &FullName,
    password: &Password,
    role: Role,
) -> Result<User, Error> {
    let hash = password::hash(password.expose().to_owned()).await?;
    let user = users::insert(&state.db, email, full_name, hash, role).await?;
    if let Err(error) = state.sequencer.ensure_user(user.id).await {
        tracing::warn!(user_id = %user.id, %error, "engine account deferred");
    }
    Ok(user)
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
}

/// A session's tokens. The same are set as cookies: the access token (HTTP-only), the refresh
/// token (HTTP-only, only sent to `/v1/auth`) and the CSRF token (readable by the page).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Tokens)]
struct TokenResponse {
    /// A JWT for `Authorization: Bearer`.
    access_token: String,
    /// Usable once, at `POST /v1/auth/refresh`; a second use revokes the session.
    refresh_token: String,
    #[schema(value_type = String, pattern = "^Bearer$", example = "Bearer")]
    token_type: &'static str,
    /// Seconds the access token is valid for.
    expires_in: u64,
    /// The session's CSRF token, for `X-CSRF-Token` on cookie-authenticated writes.
    csrf_token: String,
    user: UserBody,
}

/// Opens a session. A wrong email and a wrong password get the same answer.
#[utoipa::path(
    post,
    path = "/auth/login",
    operation_id = "login",
    tag = "auth",
    security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; the cookies are set too.", body = TokenResponse,
            headers(("Set-Cookie" = String, description = "The access, refresh and CSRF cookies."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all)]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    jar: CookieJar,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<impl IntoResponse, Error> {
    state.limits.auth(client)?;
    let wrong = Error::Unauthenticated("invalid email or password");
    // A malformed email cannot belong to anyone: same answer, same work.
    let user = match Email::parse(&body.email) {
        Ok(email) => users::by_email(&state.db, &email).await?,
        Err(_) => None,
    };
    let hash = user.as_ref().map(|user| user.password_hash.clone());
    let body_password = body.password.clone();
    if !password::verify(body.password, hash).await? {
        return Err(wrong);
    }
    let user = user.ok_or(wrong)?;
    if !password::is_current(&user.password_hash) {
        upgrade_hash(&state, &user, body_password).await;
    }
    let issued = session::open(&state.db, user.id, state.config.auth.refresh_token_ttl).await?;
    tracing::info!(user_id = %user.id, session_id = %issued.session_id, "logged in");
    tokens_response(&state, jar, &user, issued)
}

/// Replaces an imported (bcrypt) hash with argon2id now that the password is known; a failure
/// only means the next login tries again.
async fn upgrade_hash(state: &AppState, user: &User, password: String) {
    let upgraded = match password::hash(password).await {
        Ok(hash) => {
            users::replace_password_hash(&state.db, user.id, &user.password_hash, &hash).await
        }
        Err(error) => Err(error),
    };
    match upgraded {
        Ok(()) => tracing::info!(user_id = %user.id, "password hash upgraded to argon2id"),
        Err(error) => tracing::warn!(user_id = %user.id, %error, "password hash not upgraded"),
    }
}

fn tokens_response(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    issued: session::Issued,
) -> Result<(CookieJar, Json<TokenResponse>), Error> {
    let access_token = state.keys.issue(user.id, issued.session_id)?;
    let csrf_token = state.keys.csrf_token(issued.session_id);
    let auth = &state.config.auth;
    let jar = jar
        .add(cookie(
            ACCESS_COOKIE,
            access_token.clone(),
            "/",
            SameSite::Lax,
            true,
            auth.access_token_ttl,
            auth.cookie_secure,
        ))
        .add(cookie(
            REFRESH_COOKIE,
            issued.refresh_token.clone(),
            "/v1/auth",
            SameSite::Strict,
            true,
            auth.refresh_token_ttl,
            auth.cookie_secure,
        ))
        .add(cookie(
            CSRF_COOKIE,
            csrf_token.clone(),
            "/",
            SameSite::Strict,
            false,
            auth.refresh_token_ttl,
            auth.cookie_secure,
        ));
    let body = TokenResponse {
        access_token,
        refresh_token: issued.refresh_token,
        token_type: "Bearer",
        expires_in: state.keys.access_ttl.as_secs(),
        csrf_token,
        user: UserBody::from(user),
    };
    Ok((jar, Json(body)))
}

fn cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    same_site: SameSite,
    http_only: bool,
    ttl: std::time::Duration,
    secure: bool,
) -> Cookie<'static> {
    let max_age = time::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    Cookie::build((name, value))
        .path(path)
        .same_site(same_site)
        .http_only(http_only)
        .secure(secure)
        .max_age(max_age)
        .build()
}

fn clear_cookies(jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(ACCESS_COOKIE).path("/"))
        .remove(Cookie::build(REFRESH_COOKIE).path("/v1/auth"))
        .remove(Cookie::build(CSRF_COOKIE).path("/"))
}

/// The refresh token, for clients that do not keep cookies; an empty body uses the cookie.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RefreshRequest {
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The refresh token from the body, else from the cookie — which, being sent by the browser on
/// its own, needs the session's CSRF token too.
async fn presented_refresh_token(
    state: &AppState,
    parts: &Parts,
    jar: &CookieJar,
    body: Option<RefreshRequest>,
) -> Result<Option<String>, Error> {
    if let Some(token) = body.and_then(|body| body.refresh_token) {
        return Ok(Some(token));
    }
    let Some(cookie) = jar.get(REFRESH_COOKIE) else {
        return Ok(None);
    };
    let token = cookie.value().to_owned();
    // An unknown or revoked token has no session to check: rotation refuses it anyway.
    if let Some(session_id) = session::of_refresh_token(&state.db, &token).await? {
        check_csrf(state, parts, jar, session_id)?;
    }
    Ok(Some(token))
}

/// Rotates the session's refresh token: the presented one is used up, a new pair is issued.
/// Presenting a used one again revokes the whole session (and clears the cookies).
#[utoipa::path(
    post,
    path = "/auth/refresh",
    operation_id = "refreshSession",
    tag = "auth",
    request_body(content = Option<RefreshRequest>, description = "Optional: without it, the \
        refresh cookie is used (with `X-CSRF-Token`)."),
    security((), ("refreshCookie" = [], "csrfToken" = [])),
    responses(
        (status = 200, description = "A new access token and refresh token; the cookies are set \
            too.", body = TokenResponse,
            headers(("Set-Cookie" = String, description = "The access, refresh and CSRF cookies."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, description = "`CSRF_FAILED`: the refresh cookie without the session's \
            `X-CSRF-Token`.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = RateLimited),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all)]
async fn refresh(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    parts: Parts,
    jar: CookieJar,
    OptionalJson(body): OptionalJson<RefreshRequest>,
) -> Result<impl IntoResponse, Error> {
    state.limits.auth(client)?;
    let token = presented_refresh_token(&state, &parts, &jar, body)
        .await?
        .ok_or(Error::Unauthenticated("refreshToken required"))?;
    let ttl = state.config.auth.refresh_token_ttl;
    match session::rotate(&state.db, &token, ttl).await? {
        session::Rotation::Rotated { user_id, issued } => {
            let user = users::by_id(&state.db, user_id)
                .await?
                .ok_or(Error::Unauthenticated("invalid refresh token"))?;
            Ok(tokens_response(&state, jar, &user, issued)?.into_response())
        }
        session::Rotation::Reused { session_id } => {
            state
                .revocations
                .announce([AuthMethod::Session { session_id }]);
            Ok((
                clear_cookies(jar),
                Error::Unauthenticated("refresh token already used; the session has been revoked"),
            )
                .into_response())
        }
        session::Rotation::Invalid => Err(Error::Unauthenticated("invalid refresh token")),
    }
}

/// Ends the caller's session: by its access token (bearer or cookie), else by the refresh token
/// in the body or cookie.
#[utoipa::path(
    post,
    path = "/auth/logout",
    operation_id = "logout",
    tag = "auth",
    request_body(content = Option<RefreshRequest>, description = "Optional: a refresh token \
        naming the session, when no access token is sent."),
    security(
        ("bearerAuth" = []),
        ("cookieAuth" = [], "csrfToken" = []),
        ("refreshCookie" = [], "csrfToken" = []),
        (),
    ),
    responses(
        (status = 204, description = "The session is over, its tokens with it; the cookies are \
            cleared.", headers(("Set-Cookie" = String, description = "Clears the cookies."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all)]
async fn logout(
    State(state): State<AppState>,
    parts: Parts,
    jar: CookieJar,
    OptionalJson(body): OptionalJson<RefreshRequest>,
) -> Result<impl IntoResponse, Error> {
    let session_id = match authenticate(&parts, &state).await {
        Ok(AuthUser {
            method: AuthMethod::Session { session_id },
            ..
        }) => session_id,
        Ok(_) => return Err(Error::Forbidden("API keys have no session to end")),
        Err(Error::Csrf) => return Err(Error::Csrf),
        Err(_) => {
            let token = presented_refresh_token(&state, &parts, &jar, body)
                .await?
                .ok_or(Error::Unauthenticated("authentication required"))?;
            session::of_refresh_token(&state.db, &token)
                .await?
                .ok_or(Error::Unauthenticated("invalid refresh token"))?
        }
    };
    session::revoke(&state.db, session_id, "logout").await?;
    state
        .revocations
        .announce([AuthMethod::Session { session_id }]);
    tracing::info!(%session_id, "logged out");
    Ok((clear_cookies(jar), StatusCode::NO_CONTENT))
}

/// The caller's account.
#[utoipa::path(
    get,
    path = "/me",
    operation_id = "getMe",
    tag = "auth",
    security(("bearerAuth" = []), ("cookieAuth" = []), ("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The caller's account.", body = UserBody),
        (status = 401, response = Unauthenticated),
        (status = 500, response = Internal),
    ),
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn me(State(state): State<AppState>, auth: AuthUser) -> Result<Json<UserBody>, Error> {
    let user = users::by_id(&state.db, auth.user_id)
        .await?
        .ok_or(Error::Unauthenticated("account not found"))?;
    Ok(Json(UserBody::from(&user)))
}

/// Makes the configured admin exist (its password is only set when the account is created
/// here; an existing admin keeps its own). An existing account that is not an admin is never
/// promoted: anyone may have registered the address first, and would then hold an admin
/// account with a password of their choosing.
pub async fn bootstrap_admin(
    state: &AppState,
    admin: &crate::config::AdminBootstrap,
) -> Result<Uuid, Error> {
    let email = Email::parse(&admin.email)?;
    if let Some(user) = users::by_email(&state.db, &email).await? {
        if user.role != Role::Admin {
            tracing::error!(user_id = %user.id, "ADMIN_EMAIL names a self-registered account");
            return Err(Error::Conflict(
                "ADMIN_EMAIL names an account that already exists and is not an admin (someone \
                 may have registered the address first); it is not promoted: choose another \
                 ADMIN_EMAIL",
            ));
        }
        state.sequencer.ensure_user(user.id).await?;
        return Ok(user.id);
    }
    let password = String::from_utf8(admin.password.expose().to_vec())
        .map_err(|_| Error::validation("password", "ADMIN_PASSWORD must be UTF-8"))?;
    let password = Password::parse(password, &email)?;
    let full_name = FullName::parse("Administrator")?;
    let user = create_user(state, &email, &full_name, &password, Role::Admin).await?;
    tracing::info!(user_id = %user.id, "admin account created");
    Ok(user.id)
}
