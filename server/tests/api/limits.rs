//! Rate limits: past the quota, auth requests from one IP and order requests from one user (each
//! item of a batch counting) get 429 `RATE_LIMITED` with `Retry-After`; other users keep going.

use std::num::NonZeroU32;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, token, Backend};

crate::on_both_databases!(
    auth_and_order_requests_past_their_quota_get_429,
    behind_a_trusted_proxy_each_client_has_its_own_auth_bucket,
    public_reads_past_a_clients_quota_get_429,
);

async fn auth_and_order_requests_past_their_quota_get_429(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.limits.auth_per_minute = NonZeroU32::new(6).unwrap();
        config.limits.orders_per_second = NonZeroU32::new(1).unwrap();
    })
    .await
    else {
        return;
    };
    // The admin's login, two sign-ups and their logins: 5 of this IP's 6 a minute.
    let admin = app.admin_token().await;
    let (alice_id, alice) = app.signed_up("alice@example.com").await;
    let (_, bob) = app.signed_up("bob@example.com").await;
    let (alice, bob) = (token(&alice, "accessToken"), token(&bob, "accessToken"));
    assert_eq!(
        app.login("alice@example.com", "x").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let limited = app.login("alice@example.com", "x").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");

    // Orders: one a second per user, in a bucket that holds a whole batch (100). Each item of
    // a batch counts: after a batch of 60, one order fits (plus what refilled), another batch
    // of 60 does not; the other user's bucket is untouched.
    assert_eq!(
        app.deposit(&admin, &alice_id, "100").await.status(),
        StatusCode::CREATED
    );
    let market = app.create_market(&admin, "rain", "Rain tomorrow?").await;
    let order = json!({ "marketId": market["id"], "side": "BUY", "outcome": "YES",
                        "type": "LIMIT", "price": "0.01", "qty": 1 });
    let batch = json!({ "place": vec![order.clone(); 60] });
    let mut statuses = Vec::new();
    statuses.push(
        app.post("/v1/orders/batch", Some(&alice), batch.clone())
            .await
            .status(),
    );
    statuses.push(
        app.post("/v1/orders", Some(&alice), order.clone())
            .await
            .status(),
    );
    let limited = app.post("/v1/orders/batch", Some(&alice), batch).await;
    statuses.push(limited.status());
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::CREATED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    let open: Value = app
        .get("/v1/orders?status=open&limit=100", Some(&alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        open["data"].as_array().unwrap().len(),
        61,
        "the refused batch placed nothing"
    );
    let other = app.post("/v1/orders", Some(&bob), order.clone()).await;
    // Bob has no money: refused by the engine, not by the limiter.
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn login_from(app: &crate::helpers::TestApp, forwarded_for: &str) -> StatusCode {
    app.client
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "email": "nobody@example.com", "password": "wrong password" }))
        .send()
        .await
        .unwrap()
        .status()
}

/// Behind a trusted proxy, `X-Forwarded-For` names the client, so one client's failures do not
/// lock out everyone behind the proxy; from anyone else the header is ignored, so it cannot be
/// forged to escape the limit.
async fn behind_a_trusted_proxy_each_client_has_its_own_auth_bucket(backend: Backend) {
    let limited = |trusted: &str| {
        let trusted = trusted.to_owned();
        move |config: &mut server::config::Config| {
            config.limits.auth_per_minute = NonZeroU32::new(2).unwrap();
            config.trusted_proxies = if trusted.is_empty() {
                Vec::new()
            } else {
                vec![trusted.parse().unwrap()]
            };
        }
    };
    let Some(proxied) = spawn_app_with(backend, limited("127.0.0.1/32")).await else {
        return;
    };
    let mallory = "203.0.113.66";
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(login_from(&proxied, mallory).await);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert_eq!(
        login_from(&proxied, "198.51.100.7").await,
        StatusCode::UNAUTHORIZED,
        "another client behind the proxy is not limited"
    );
    drop(proxied);

    let Some(direct) = spawn_app_with(backend, limited("")).await else {
        return;
    };
    let mut forged = Vec::new();
    for ip in [mallory, "198.51.100.1", "198.51.100.2"] {
        forged.push(login_from(&direct, ip).await);
    }
    assert_eq!(forged[2], StatusCode::TOO_MANY_REQUESTS, "{forged:?}");
}

async fn read_book(app: &crate::helpers::TestApp, path: &str, forwarded_for: &str) -> StatusCode {
    app.client
        .get(app.url(path))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
        .status()
}

/// Anonymous market-data reads count per client: past its rate a client gets 429 with
/// `Retry-After`, every read path alike, while another client reads on.
async fn public_reads_past_a_clients_quota_get_429(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.limits.reads_per_second = NonZeroU32::new(5).unwrap();
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await
    else {
        return;
    };
    let admin = app.admin_token().await;
    let market = app.create_market(&admin, "rain", "Rain tomorrow?").await;
    let id = market["id"].as_str().unwrap();
    let paths = [
        format!("/v1/markets/{id}/book"),
        format!("/v1/markets/{id}/ticker"),
        format!("/v1/markets/{id}/trades"),
        format!("/v1/markets/{id}/candles"),
        format!("/v1/markets/{id}/book?depth=500"),
    ];
    for path in &paths {
        assert_eq!(
            read_book(&app, path, "203.0.113.1").await,
            StatusCode::OK,
            "{path}"
        );
    }
    let limited = app
        .client
        .get(app.url(&paths[0]))
        .header("x-forwarded-for", "203.0.113.1")
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert_eq!(
        read_book(&app, &paths[0], "203.0.113.2").await,
        StatusCode::OK
    );
}
