//! `Idempotency-Key`: a retried POST gets the saved answer and runs once; the same key with
//! another body is 422; keys are per user; auth endpoints ignore the header.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, token, Backend, TestApp};

crate::on_both_databases!(a_retried_post_is_answered_once_and_a_reused_key_is_refused);

async fn post_keyed(
    app: &TestApp,
    who: &str,
    key: &str,
    path: &str,
    body: &Value,
) -> (StatusCode, bool, Value) {
    let answer = app
        .client
        .post(app.url(path))
        .bearer_auth(who)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let replayed = answer.headers().contains_key("idempotent-replayed");
    (status, replayed, answer.json().await.unwrap())
}

async fn a_retried_post_is_answered_once_and_a_reused_key_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let (alice_id, alice) = app.signed_up("alice@example.com").await;
    let (_, bob) = app.signed_up("bob@example.com").await;
    let (alice, bob) = (token(&alice, "accessToken"), token(&bob, "accessToken"));
    assert_eq!(
        app.deposit(&admin, &alice_id, "100").await.status(),
        StatusCode::CREATED
    );
    let market = app.create_market(&admin, "rain", "Rain tomorrow?").await;
    let order = json!({ "marketId": market["id"], "side": "BUY", "outcome": "YES",
                        "type": "LIMIT", "price": "0.10", "qty": 5 });

    let first = post_keyed(&app, &alice, "order-1", "/v1/orders", &order).await;
    assert_eq!((first.0, first.1), (StatusCode::CREATED, false));
    let retry = post_keyed(&app, &alice, "order-1", "/v1/orders", &order).await;
    assert_eq!((retry.0, retry.1), (StatusCode::CREATED, true));
    assert_eq!(retry.2, first.2);
    let open: Value = app
        .get("/v1/orders?status=open", Some(&alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open["data"].as_array().unwrap().len(), 1, "placed once");

    let other_body = json!({ "marketId": market["id"], "side": "BUY", "outcome": "YES",
                             "type": "LIMIT", "price": "0.11", "qty": 5 });
    let reused = post_keyed(&app, &alice, "order-1", "/v1/orders", &other_body).await;
    assert_eq!(reused.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.2["error"]["code"], "IDEMPOTENCY_KEY_REUSED");

    // A refused request is an answer too: the retry gets the same refusal, decided once.
    let poor = post_keyed(&app, &bob, "order-1", "/v1/orders", &order).await;
    assert_eq!(poor.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(poor.2["error"]["code"], "INSUFFICIENT_FUNDS");
    let again = post_keyed(&app, &bob, "order-1", "/v1/orders", &order).await;
    assert_eq!((again.0, again.1, &again.2), (poor.0, true, &poor.2));

    let long_key = "k".repeat(256);
    let bad = post_keyed(&app, &alice, &long_key, "/v1/orders", &order).await;
    assert_eq!(bad.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.2["error"]["details"]["field"], "idempotencyKey");

    // Auth endpoints ignore the header: two logins with one key are two logins.
    let login = json!({ "email": "alice@example.com", "password": "correct horse battery staple" });
    let one = post_keyed(&app, &alice, "login", "/v1/auth/login", &login).await;
    let two = post_keyed(&app, &alice, "login", "/v1/auth/login", &login).await;
    assert_eq!(
        (one.0, two.0, two.1),
        (StatusCode::OK, StatusCode::OK, false)
    );
    assert_ne!(one.2["refreshToken"], two.2["refreshToken"]);
}
