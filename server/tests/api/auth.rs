//! Accounts and auth, black-box over HTTP.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    error_code, spawn_app, spawn_app_with, token, Backend, ADMIN_EMAIL, JWT_SECRET, PASSWORD,
};

crate::on_both_databases!(
    registering_answers_201_with_the_normalized_user,
    a_taken_email_is_a_conflict_whatever_its_case,
    bad_fields_are_422_naming_the_field,
    malformed_bodies_are_400_and_non_json_is_415,
    a_wrong_password_or_unknown_email_is_the_same_401,
    me_needs_a_valid_access_token,
    expired_forged_alg_none_and_foreign_tokens_are_rejected,
    refresh_rotates_and_reusing_an_old_token_revokes_the_session,
    logout_ends_the_session_at_once,
    cookie_sessions_read_freely_but_writes_need_the_csrf_token,
    only_admins_deposit,
    admin_email_never_promotes_an_account_someone_registered,
);

async fn registering_answers_201_with_the_normalized_user(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let response = app.register("  Alice@Example.COM ", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let user = &body["user"];
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["fullName"], "Test User");
    assert_eq!(user["role"], "user");
    assert!(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok());
    assert!(user["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(user.get("passwordHash").is_none() && user.get("password").is_none());
    // The engine account exists (journaled CreateUser) and is linked.
    let linked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM users u JOIN accounts a ON a.user_id = u.id WHERE u.email = $1",
    )
    .bind("alice@example.com")
    .fetch_one(&app.db().pool)
    .await
    .unwrap();
    assert_eq!(linked, 1);
}

async fn a_taken_email_is_a_conflict_whatever_its_case(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    assert_eq!(
        app.register("bob@example.com", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let again = app
        .register("BOB@example.com", "another long password")
        .await;
    assert_eq!(error_code(again, StatusCode::CONFLICT).await, "CONFLICT");
}

async fn bad_fields_are_422_naming_the_field(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let cases = [
        (
            json!({"email": "not-an-email", "password": PASSWORD, "fullName": "X"}),
            "email",
        ),
        (
            json!({"email": "c@example.com", "password": "short", "fullName": "X"}),
            "password",
        ),
        (
            json!({"email": "c@example.com", "password": "c@example.com", "fullName": "X"}),
            "password",
        ),
        (
            json!({"email": "c@example.com", "password": PASSWORD, "fullName": "  "}),
            "fullName",
        ),
    ];
    for (body, field) in cases {
        let response = app.post("/v1/auth/register", None, body).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "VALIDATION_FAILED");
        assert_eq!(body["error"]["details"]["field"], field);
    }
}

async fn malformed_bodies_are_400_and_non_json_is_415(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let wrong_type = app
        .post(
            "/v1/auth/register",
            None,
            json!({"email": 5, "password": PASSWORD, "fullName": "X"}),
        )
        .await;
    assert_eq!(
        error_code(wrong_type, StatusCode::BAD_REQUEST).await,
        "BAD_REQUEST"
    );
    let missing = app
        .post("/v1/auth/login", None, json!({"email": "a@b.co"}))
        .await;
    assert_eq!(
        error_code(missing, StatusCode::BAD_REQUEST).await,
        "BAD_REQUEST"
    );
    let broken = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(broken, StatusCode::BAD_REQUEST).await,
        "BAD_REQUEST"
    );
    let text = app
        .client
        .post(app.url("/v1/auth/login"))
        .body("email=a")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(text, StatusCode::UNSUPPORTED_MEDIA_TYPE).await,
        "UNSUPPORTED_MEDIA_TYPE"
    );
    let huge = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "x".repeat(100_000), "password": "x"}),
        )
        .await;
    assert_eq!(
        error_code(huge, StatusCode::PAYLOAD_TOO_LARGE).await,
        "PAYLOAD_TOO_LARGE"
    );
}

async fn a_wrong_password_or_unknown_email_is_the_same_401(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.register("carol@example.com", PASSWORD).await;
    let wrong = app
        .login("carol@example.com", "not the password at all")
        .await;
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    let wrong_body: Value = wrong.json().await.unwrap();
    let unknown_body: Value = unknown.json().await.unwrap();
    assert_eq!(wrong_body["error"]["code"], "UNAUTHENTICATED");
    assert_eq!(wrong_body, unknown_body);
    let right = app.login("CAROL@example.com", PASSWORD).await;
    assert_eq!(right.status(), StatusCode::OK);
}

async fn me_needs_a_valid_access_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (id, login) = app.signed_up("dave@example.com").await;
    assert_eq!(login["tokenType"], "Bearer");
    assert_eq!(login["expiresIn"], 900);
    let access = token(&login, "accessToken");
    let me = app.get("/v1/me", Some(&access)).await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], id.as_str());
    assert_eq!(me["email"], "dave@example.com");
    assert_eq!(me["role"], "user");
    let anonymous = app.get("/v1/me", None).await;
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        error_code(anonymous, StatusCode::UNAUTHORIZED).await,
        "UNAUTHENTICATED"
    );
    let garbage = app.get("/v1/me", Some("garbage")).await;
    assert_eq!(
        error_code(garbage, StatusCode::UNAUTHORIZED).await,
        "UNAUTHENTICATED"
    );
    let basic = app
        .client
        .get(app.url("/v1/me"))
        .basic_auth("dave@example.com", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(basic, StatusCode::UNAUTHORIZED).await,
        "UNAUTHENTICATED"
    );
}

/// The claims of a real token, to re-sign with changes.
fn claims_of(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Value, algorithm: Algorithm, secret: &str) -> String {
    encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn expired_forged_alg_none_and_foreign_tokens_are_rejected(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, login) = app.signed_up("erin@example.com").await;
    let claims = claims_of(&token(&login, "accessToken"));
    let now = claims["iat"].as_u64().unwrap();
    // Control: our own re-signing of the untouched claims is accepted.
    let control = sign(&claims, Algorithm::HS256, JWT_SECRET);
    assert_eq!(
        app.get("/v1/me", Some(&control)).await.status(),
        StatusCode::OK
    );

    let mut expired = claims.clone();
    expired["exp"] = json!(now - 3_600);
    let mut other_audience = claims.clone();
    other_audience["aud"] = json!("someone-else");
    let mut other_issuer = claims.clone();
    other_issuer["iss"] = json!("evil");
    let mut other_user = claims.clone();
    other_user["sub"] = json!(uuid::Uuid::new_v4().to_string());
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
    );
    let rejected = [
        ("expired", sign(&expired, Algorithm::HS256, JWT_SECRET)),
        (
            "forged",
            sign(
                &claims,
                Algorithm::HS256,
                "another secret, same length as ours!!",
            ),
        ),
        ("alg none", unsigned),
        (
            "HS512 with our secret",
            sign(&claims, Algorithm::HS512, JWT_SECRET),
        ),
        (
            "wrong audience",
            sign(&other_audience, Algorithm::HS256, JWT_SECRET),
        ),
        (
            "wrong issuer",
            sign(&other_issuer, Algorithm::HS256, JWT_SECRET),
        ),
        (
            "subject not in the session",
            sign(&other_user, Algorithm::HS256, JWT_SECRET),
        ),
        ("no exp", sign(&no_exp, Algorithm::HS256, JWT_SECRET)),
    ];
    for (what, forged) in rejected {
        let response = app.get("/v1/me", Some(&forged)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
}

async fn refresh_rotates_and_reusing_an_old_token_revokes_the_session(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, login) = app.signed_up("frank@example.com").await;
    let first = token(&login, "refreshToken");
    let rotated = app
        .post("/v1/auth/refresh", None, json!({ "refreshToken": first }))
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: Value = rotated.json().await.unwrap();
    let second = token(&rotated, "refreshToken");
    let access = token(&rotated, "accessToken");
    assert_ne!(first, second);
    assert_eq!(rotated["user"]["email"], "frank@example.com");
    assert_eq!(
        app.get("/v1/me", Some(&access)).await.status(),
        StatusCode::OK
    );

    // The first token again: someone else has it. The whole session goes.
    let reuse = app
        .post("/v1/auth/refresh", None, json!({ "refreshToken": first }))
        .await;
    assert_eq!(
        error_code(reuse, StatusCode::UNAUTHORIZED).await,
        "UNAUTHENTICATED"
    );
    let after = app
        .post("/v1/auth/refresh", None, json!({ "refreshToken": second }))
        .await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/v1/me", Some(&access)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Other sessions of the same user are untouched.
    let fresh = app.login("frank@example.com", PASSWORD).await;
    let fresh: Value = fresh.json().await.unwrap();
    let fresh_access = token(&fresh, "accessToken");
    assert_eq!(
        app.get("/v1/me", Some(&fresh_access)).await.status(),
        StatusCode::OK
    );
    let unknown = app
        .post(
            "/v1/auth/refresh",
            None,
            json!({ "refreshToken": "made-up" }),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let missing = app
        .client
        .post(app.url("/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
}

async fn logout_ends_the_session_at_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, login) = app.signed_up("gina@example.com").await;
    let access = token(&login, "accessToken");
    let refresh = token(&login, "refreshToken");
    let logout = app.post("/v1/auth/logout", Some(&access), json!({})).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/v1/me", Some(&access)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let refreshed = app
        .post("/v1/auth/refresh", None, json!({ "refreshToken": refresh }))
        .await;
    assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
    // Logging out by refresh token alone works too.
    let again = app.login("gina@example.com", PASSWORD).await;
    let again: Value = again.json().await.unwrap();
    let by_refresh = app
        .post(
            "/v1/auth/logout",
            None,
            json!({ "refreshToken": token(&again, "refreshToken") }),
        )
        .await;
    assert_eq!(by_refresh.status(), StatusCode::NO_CONTENT);
    let access = token(&again, "accessToken");
    assert_eq!(
        app.get("/v1/me", Some(&access)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn cookie_sessions_read_freely_but_writes_need_the_csrf_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.register("hank@example.com", PASSWORD).await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = browser
        .post(app.url("/v1/auth/login"))
        .json(&json!({ "email": "hank@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    let access_cookie = cookies
        .iter()
        .find(|c| c.starts_with("predex_access="))
        .unwrap();
    assert!(access_cookie.contains("HttpOnly") && access_cookie.contains("SameSite=Lax"));
    let refresh_cookie = cookies
        .iter()
        .find(|c| c.starts_with("predex_refresh="))
        .unwrap();
    assert!(refresh_cookie.contains("HttpOnly") && refresh_cookie.contains("Path=/v1/auth"));
    let csrf_cookie = cookies
        .iter()
        .find(|c| c.starts_with("predex_csrf="))
        .unwrap();
    assert!(!csrf_cookie.contains("HttpOnly"));
    let login: Value = login.json().await.unwrap();
    let csrf = token(&login, "csrfToken");

    let me = browser.get(app.url("/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let no_csrf = browser
        .post(app.url("/v1/api-keys"))
        .json(&json!({ "name": "bot" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(no_csrf, StatusCode::FORBIDDEN).await,
        "CSRF_FAILED"
    );
    let wrong_csrf = browser
        .post(app.url("/v1/api-keys"))
        .header("x-csrf-token", "AAAA")
        .json(&json!({ "name": "bot" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(wrong_csrf, StatusCode::FORBIDDEN).await,
        "CSRF_FAILED"
    );
    let with_csrf = browser
        .post(app.url("/v1/api-keys"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "name": "bot" }))
        .send()
        .await
        .unwrap();
    assert_eq!(with_csrf.status(), StatusCode::CREATED);
    // Refresh by cookie needs the token too, and then rotates the cookies.
    let refresh_no_csrf = browser
        .post(app.url("/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(refresh_no_csrf.status(), StatusCode::FORBIDDEN);
    let refreshed = browser
        .post(app.url("/v1/auth/refresh"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);
    let logout = browser
        .post(app.url("/v1/auth/logout"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let me = browser.get(app.url("/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

async fn only_admins_deposit(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let me: Value = app.get("/v1/me", Some(&admin)).await.json().await.unwrap();
    assert_eq!(me["email"], ADMIN_EMAIL);
    assert_eq!(me["role"], "admin");
    let (id, login) = app.signed_up("ivan@example.com").await;
    let user = token(&login, "accessToken");
    let denied = app.deposit(&user, &id, "10.00").await;
    assert_eq!(error_code(denied, StatusCode::FORBIDDEN).await, "FORBIDDEN");
    let deposit = app.deposit(&admin, &id, "10.5").await;
    assert_eq!(deposit.status(), StatusCode::CREATED);
    let deposit: Value = deposit.json().await.unwrap();
    assert_eq!(deposit["kind"], "DEPOSIT");
    assert_eq!(deposit["amount"], "10.50");
    let balance = app.balance(&user).await;
    assert_eq!(
        balance,
        json!({ "available": "10.50", "locked": "0.00", "total": "10.50", "feeReserve": "0.00" })
    );
    let off = app.deposit(&admin, &id, "0.0000001").await;
    assert_eq!(
        error_code(off, StatusCode::UNPROCESSABLE_ENTITY).await,
        "VALIDATION_FAILED"
    );
    let nobody = app
        .deposit(&admin, &uuid::Uuid::new_v4().to_string(), "1")
        .await;
    assert_eq!(error_code(nobody, StatusCode::NOT_FOUND).await, "NOT_FOUND");
    let overdraw = app
        .post(
            "/v1/transfers/withdraw",
            Some(&user),
            json!({ "amount": "11" }),
        )
        .await;
    assert_eq!(
        error_code(overdraw, StatusCode::UNPROCESSABLE_ENTITY).await,
        "INSUFFICIENT_FUNDS"
    );
    let withdraw = app
        .post(
            "/v1/transfers/withdraw",
            Some(&user),
            json!({ "amount": "0.25" }),
        )
        .await;
    assert_eq!(withdraw.status(), StatusCode::CREATED);
    assert_eq!(app.balance(&user).await["available"], "10.25");
}

/// Someone registers the address the operator will later name in `ADMIN_EMAIL`: the server
/// refuses to start rather than hand that person an admin account with their own password.
async fn admin_email_never_promotes_an_account_someone_registered(backend: Backend) {
    let Some(mut app) = spawn_app_with(backend, |config| config.admin = None).await else {
        return;
    };
    let squatter = "boss@example.com";
    let (_, login) = app.signed_up(squatter).await;
    assert_eq!(login["user"]["role"], "user");
    app.server.take().unwrap().shutdown().await;
    let mut config = app.config.clone();
    config.admin = Some(server::config::AdminBootstrap {
        email: squatter.into(),
        password: server::config::Secret::new(b"the operator's own passphrase".to_vec()),
    });
    let Err(error) = server::app::start(config).await else {
        panic!("a server promoting a self-registered account started");
    };
    let message = error.to_string();
    assert!(
        message.contains("ADMIN_EMAIL") && message.contains("not promoted"),
        "{message}"
    );
    // Still a plain user; the operator's password opens nothing.
    app.start_again().await;
    let login = app.login(squatter, PASSWORD).await;
    let login: Value = login.json().await.unwrap();
    assert_eq!(login["user"]["role"], "user");
    let operator = app.login(squatter, "the operator's own passphrase").await;
    assert_eq!(operator.status(), StatusCode::UNAUTHORIZED);
}
