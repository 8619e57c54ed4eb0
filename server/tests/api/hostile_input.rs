//! Hostile input against every trading endpoint: whatever the body, path or query, the answer
//! is a 2xx or a 4xx in the API's error shape, never a 5xx, and no money moves.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, token, Backend};

crate::on_both_databases!(no_body_path_or_query_gets_a_server_error);

fn hostile_bodies(market: &str) -> Vec<Value> {
    let big = "9".repeat(400);
    let mut bodies = vec![
        Value::Null,
        json!([]),
        json!("text"),
        json!(0),
        json!({}),
        json!({ "qty": -1 }),
        json!({ "qty": 1.5 }),
        json!({ "qty": u64::MAX }),
        json!({ "qty": 0, "price": "0" }),
        json!({ "price": big }),
        json!({ "price": "\u{0}" }),
        json!({ "price": "0.4\u{0}" }),
        json!({ "marketId": "\u{0}" }),
        json!({ "marketId": "x".repeat(5_000) }),
        json!({ "outcome": "SPLIT", "yesPayout": "1e400" }),
        json!({ "place": [null, 5, {}], "cancel": [null, "x", 7] }),
        json!({ "cancel": ["\u{0}"] }),
        json!({ "slug": "a", "question": "\u{0}", "tickSize": "0.01" }),
        json!({ "slug": "a", "question": "q", "tickSize": "0.01", "closesAt": "9999-12-31T23:59:59Z" }),
        json!({ "slug": "a", "question": "q", "tickSize": "0.01", "closesAt": "+275760-09-13T00:00:00Z" }),
    ];
    for (field, value) in [
        ("price", json!("0.9999")),
        ("price", json!("0.00001")),
        ("qty", json!(1_000_000_000u64)),
        ("qty", json!(18_446_744_073_709_551_615u64)),
        ("cashAmount", json!("1000000000")),
        ("cashAmount", json!("0.0000001")),
        ("expiresAt", json!("1970-01-01T00:00:00Z")),
        ("expiresAt", json!("9999-12-31T23:59:59Z")),
        ("worstPrice", json!("0.0001")),
        ("maxSlippageBps", json!(u32::MAX)),
        ("timeInForce", json!("GTD")),
        ("type", json!("MARKET")),
        ("clientOrderId", json!("\u{7f}")),
    ] {
        let mut order = json!({ "marketId": market, "side": "BUY", "outcome": "YES",
                                "type": "LIMIT", "price": "0.50", "qty": 1 });
        order[field] = value;
        bodies.push(order.clone());
        bodies.push(json!({ "place": [order] }));
    }
    bodies
}

async fn no_body_path_or_query_gets_a_server_error(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let market = app.create_market(&admin, "rain", "Rain tomorrow?").await;
    let id = market["id"].as_str().unwrap().to_owned();
    let (user_id, login) = app.signed_up("mallory@example.com").await;
    let user = token(&login, "accessToken");
    app.deposit(&admin, &user_id, "10").await;
    let order_id = "00000000-0000-0000-0000-000000000000";
    let endpoints = [
        (Method::POST, "/v1/orders".to_owned()),
        (Method::POST, "/v1/orders/batch".to_owned()),
        (Method::POST, "/v1/orders/cancel-all".to_owned()),
        (Method::PATCH, format!("/v1/orders/{order_id}")),
        (Method::POST, "/v1/markets".to_owned()),
        (Method::POST, format!("/v1/markets/{id}/resolve")),
        (Method::POST, format!("/v1/markets/{id}/split")),
        (Method::POST, format!("/v1/markets/{id}/merge")),
    ];
    for body in hostile_bodies(&id) {
        for (method, path) in &endpoints {
            let who = if path.starts_with("/v1/markets") && !path.ends_with("split") {
                &admin
            } else {
                &user
            };
            let answer = app
                .send(method.clone(), path, Some(who), Some(body.clone()))
                .await;
            let status = answer.status();
            assert!(
                !status.is_server_error(),
                "{method} {path} {body} -> {status}"
            );
            if !status.is_success() {
                let error: Value = answer.json().await.unwrap();
                assert!(error["error"]["code"].is_string(), "{method} {path} {body}");
            }
        }
    }
    let long = "x".repeat(2_000);
    for path in [
        format!("/v1/markets/{long}"),
        "/v1/markets/%00".to_owned(),
        "/v1/markets/%C3%A9t%C3%A9/book".to_owned(),
        format!("/v1/markets/{id}/book?depth=99999999999999999999"),
        format!("/v1/markets/{id}/trades?cursor=-5"),
        format!("/v1/markets/{id}/trades?cursor=99999999999999999999"),
        format!("/v1/markets/{id}/trades?limit=%00"),
        "/v1/markets?q=%25%5C_%00".to_owned(),
        "/v1/markets?state=%00".to_owned(),
        "/v1/orders?marketId=%00".to_owned(),
        "/v1/orders?status=open&status=closed".to_owned(),
        format!("/v1/orders/{long}"),
        "/v1/orders/%00".to_owned(),
        "/v1/portfolio/fills?cursor=1e9".to_owned(),
    ] {
        for method in [Method::GET, Method::DELETE] {
            let answer = app.send(method.clone(), &path, Some(&user), None).await;
            let status = answer.status();
            assert!(!status.is_server_error(), "{method} {path} -> {status}");
        }
    }
    // A single order may have gone through (a valid body above): nothing else moved money.
    let balance = app.balance(&user).await;
    assert_eq!(balance["total"], "10.00");
}
