//! The authorization matrix of the trading API: every endpoint against anonymous callers,
//! users, another user and admins. Market data is public; everything personal needs a login;
//! nobody reads or touches another user's order (404, as if it did not exist); only admins
//! manage markets and credit deposits.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, token, Backend, TestApp};

crate::on_both_databases!(every_endpoint_answers_each_kind_of_caller_as_it_should);

async fn status(
    app: &TestApp,
    method: &Method,
    path: &str,
    who: Option<&str>,
    body: &Value,
) -> u16 {
    let body = (*method != Method::GET && *method != Method::DELETE).then(|| body.clone());
    app.send(method.clone(), path, who, body)
        .await
        .status()
        .as_u16()
}

async fn every_endpoint_answers_each_kind_of_caller_as_it_should(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let market = app.create_market(&admin, "rain", "Rain tomorrow?").await;
    let market_id = market["id"].as_str().unwrap().to_owned();
    let (alice_id, alice) = app.signed_up("alice@example.com").await;
    let (_, bob) = app.signed_up("bob@example.com").await;
    let (alice, bob) = (token(&alice, "accessToken"), token(&bob, "accessToken"));
    assert_eq!(
        app.deposit(&admin, &alice_id, "100").await.status(),
        StatusCode::CREATED
    );
    let placed: Value = app
        .post(
            "/v1/orders",
            Some(&alice),
            json!({ "marketId": market_id, "side": "BUY", "outcome": "YES", "type": "LIMIT",
                    "price": "0.40", "qty": 10 }),
        )
        .await
        .json()
        .await
        .unwrap();
    let order = format!("/v1/orders/{}", placed["order"]["id"].as_str().unwrap());
    let none = json!({});

    // Public market data: everyone, even without a login.
    for path in [
        "/v1/markets".to_owned(),
        format!("/v1/markets/{market_id}"),
        format!("/v1/markets/{market_id}/book"),
        format!("/v1/markets/{market_id}/trades"),
        format!("/v1/markets/{market_id}/ticker"),
    ] {
        for who in [None, Some(bob.as_str()), Some(admin.as_str())] {
            assert_eq!(
                status(&app, &Method::GET, &path, who, &none).await,
                200,
                "{path}"
            );
        }
    }
    // Personal endpoints: a login, and each caller sees only their own.
    let personal = [
        (Method::GET, "/v1/orders"),
        (Method::GET, "/v1/portfolio/fills"),
        (Method::GET, "/v1/portfolio/positions"),
        (Method::GET, "/v1/portfolio/balance"),
        (Method::GET, "/v1/portfolio/transfers"),
        (Method::GET, "/v1/portfolio/settlements"),
        (Method::POST, "/v1/orders/batch"),
    ];
    for (method, path) in &personal {
        assert_eq!(status(&app, method, path, None, &none).await, 401, "{path}");
        for who in [&alice, &bob, &admin] {
            assert_eq!(
                status(&app, method, path, Some(who), &none).await,
                200,
                "{path}"
            );
        }
    }
    let bobs_orders: Value = app
        .get("/v1/orders", Some(&bob))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bobs_orders["data"], json!([]));
    let place = json!({ "marketId": market_id, "side": "BUY", "outcome": "YES",
                        "type": "LIMIT", "price": "0.40", "qty": 1 });
    assert_eq!(
        status(&app, &Method::POST, "/v1/orders", None, &place).await,
        401
    );
    // Alice's order: 404 for everyone else, admins included; anonymous callers are 401.
    let amend = json!({ "qty": 5 });
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        assert_eq!(
            status(&app, &method, &order, None, &amend).await,
            401,
            "{method}"
        );
        for who in [&bob, &admin] {
            assert_eq!(
                status(&app, &method, &order, Some(who), &amend).await,
                404,
                "{method}"
            );
        }
    }
    let batch = json!({ "cancel": [placed["order"]["id"]] });
    let answer: Value = app
        .post("/v1/orders/batch", Some(&bob), batch)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["cancel"][0]["error"]["code"], "NOT_FOUND");
    assert_eq!(
        status(
            &app,
            &Method::POST,
            "/v1/orders/cancel-all",
            Some(&bob),
            &none
        )
        .await,
        200
    );
    let still: Value = app.get(&order, Some(&alice)).await.json().await.unwrap();
    assert_eq!(still["status"], "OPEN");
    assert_eq!(still["qty"], 10);
    assert_eq!(
        status(&app, &Method::PATCH, &order, Some(&alice), &amend).await,
        200
    );
    assert_eq!(
        status(&app, &Method::DELETE, &order, Some(&alice), &none).await,
        200
    );

    // Admin only: managing markets and crediting deposits.
    let create = json!({ "slug": "snow", "question": "Snow?", "tickSize": "0.01" });
    let deposit = json!({ "userId": alice_id, "amount": "5" });
    let admin_only = [
        (Method::POST, "/v1/markets".to_owned(), create, 201),
        (
            Method::POST,
            "/v1/transfers/deposit".to_owned(),
            deposit,
            201,
        ),
        (
            Method::POST,
            format!("/v1/markets/{market_id}/halt"),
            none.clone(),
            200,
        ),
        (
            Method::POST,
            format!("/v1/markets/{market_id}/resume"),
            none.clone(),
            200,
        ),
        (
            Method::POST,
            format!("/v1/markets/{market_id}/close"),
            none.clone(),
            200,
        ),
        (
            Method::POST,
            format!("/v1/markets/{market_id}/resolve"),
            json!({ "outcome": "NO" }),
            200,
        ),
    ];
    for (method, path, body, created) in &admin_only {
        assert_eq!(status(&app, method, path, None, body).await, 401, "{path}");
        for who in [&alice, &bob] {
            assert_eq!(
                status(&app, method, path, Some(who), body).await,
                403,
                "{path}"
            );
        }
        assert_eq!(
            status(&app, method, path, Some(&admin), body).await,
            *created,
            "{path}"
        );
    }
    assert_eq!(app.balance(&alice).await["total"], "105.00");
}
