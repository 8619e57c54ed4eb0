//! Rate limits: past the quota, auth requests from one IP and order requests from one user get
//! 429 `RATE_LIMITED` with `Retry-After`; other users keep going.

use std::num::NonZeroU32;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, token, Backend};

crate::on_both_databases!(auth_and_order_requests_past_their_quota_get_429);

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

    // Orders: one a second per user; a second one at once is refused (a full second of
    // margin on a slow machine); the other user's is not.
    assert_eq!(
        app.deposit(&admin, &alice_id, "100").await.status(),
        StatusCode::CREATED
    );
    let market = app.create_market(&admin, "rain", "Rain tomorrow?").await;
    let order = json!({ "marketId": market["id"], "side": "BUY", "outcome": "YES",
                        "type": "LIMIT", "price": "0.10", "qty": 1 });
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(
            app.post("/v1/orders", Some(&alice), order.clone())
                .await
                .status(),
        );
    }
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::TOO_MANY_REQUESTS]
    );
    let other = app.post("/v1/orders", Some(&bob), order.clone()).await;
    // Bob has no money: refused by the engine, not by the limiter.
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
