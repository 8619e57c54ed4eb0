//! Split and merge: cash to YES + NO pairs at 1.00 and back, with the position's cost and PnL;
//! and the dev faucet, which exists only when configured, never in production, and gives each
//! user a bounded amount a day at a bounded rate.

use reqwest::StatusCode;
use serde_json::{json, Value};

use std::num::NonZeroU32;

use server::config::{AppEnv, FaucetConfig};

use crate::helpers::{error_code, spawn_app, spawn_app_with, token, Backend, TestApp};

crate::on_both_databases!(
    split_and_merge_turn_cash_and_pairs_into_each_other_at_one_dollar,
    the_faucet_exists_only_when_enabled_and_gives_at_most_its_limit,
    the_faucet_is_capped_per_day_rate_limited_and_absent_in_production,
    costs_from_before_the_cost_columns_are_computed_once_from_history,
);

async fn split_and_merge_turn_cash_and_pairs_into_each_other_at_one_dollar(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_admin, market, alice, bob) = app.market_with_two_traders("100").await;
    let id = market["id"].as_str().unwrap().to_owned();
    let split_path = format!("/v1/markets/{id}/split");
    let merge_path = format!("/v1/markets/{id}/merge");

    let split = app
        .post(&split_path, Some(&alice), json!({ "qty": 10 }))
        .await;
    assert_eq!(split.status(), StatusCode::OK);
    let split: Value = split.json().await.unwrap();
    assert_eq!(
        split,
        json!({ "marketId": id, "yesShares": 10, "noShares": 10, "yesAvgCost": "0.50",
                "noAvgCost": "0.50", "realizedPnl": "0.00", "unrealizedPnl": null,
                "markPrice": null })
    );
    assert_eq!(app.balance(&alice).await["available"], "90.00");

    // Alice sells 4 YES to bob at 0.70: 0.20 a share over her 0.50 cost.
    for (who, side) in [(&alice, "SELL"), (&bob, "BUY")] {
        let placed = app
            .post(
                "/v1/orders",
                Some(who),
                json!({ "marketId": id, "side": side, "outcome": "YES", "type": "LIMIT",
                        "price": "0.70", "qty": 4 }),
            )
            .await;
        assert_eq!(placed.status(), StatusCode::CREATED);
    }
    let merged = app
        .post(&merge_path, Some(&alice), json!({ "qty": 6 }))
        .await;
    assert_eq!(merged.status(), StatusCode::OK);
    let merged: Value = merged.json().await.unwrap();
    // 4 NO left, marked at 1 - 0.70 = 0.30 against a 0.50 cost.
    assert_eq!(
        merged,
        json!({ "marketId": id, "yesShares": 0, "noShares": 4, "yesAvgCost": null,
                "noAvgCost": "0.50", "realizedPnl": "0.80", "unrealizedPnl": "-0.80",
                "markPrice": "0.70" })
    );
    assert_eq!(app.balance(&alice).await["available"], "98.80");

    for (path, body, code) in [
        (&merge_path, json!({ "qty": 5 }), "INSUFFICIENT_SHARES"),
        (&split_path, json!({ "qty": 0 }), "QTY_OUT_OF_RANGE"),
        (&split_path, json!({ "qty": 99 }), "INSUFFICIENT_FUNDS"),
    ] {
        let answer = app.post(path, Some(&alice), body).await;
        assert_eq!(
            error_code(answer, StatusCode::UNPROCESSABLE_ENTITY).await,
            code
        );
    }
    let answer = app
        .post(&split_path, Some(&alice), json!({ "qty": -1 }))
        .await;
    assert_eq!(
        error_code(answer, StatusCode::BAD_REQUEST).await,
        "BAD_REQUEST"
    );
    let answer = app
        .post("/v1/markets/nope/split", Some(&alice), json!({ "qty": 1 }))
        .await;
    assert_eq!(error_code(answer, StatusCode::NOT_FOUND).await, "NOT_FOUND");
    let answer = app.post(&split_path, None, json!({ "qty": 1 })).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    // Nothing above moved money.
    assert_eq!(app.balance(&alice).await["total"], "98.80");
    let positions: Value = app
        .get("/v1/portfolio/positions", Some(&alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(positions["data"], json!([merged]));
}

async fn the_faucet_exists_only_when_enabled_and_gives_at_most_its_limit(backend: Backend) {
    let Some(plain) = spawn_app(backend).await else {
        return;
    };
    let (_, login) = plain.signed_up("alice@example.com").await;
    let alice = token(&login, "accessToken");
    let answer = plain
        .post(
            "/v1/transfers/faucet",
            Some(&alice),
            json!({ "amount": "1" }),
        )
        .await;
    assert_eq!(error_code(answer, StatusCode::NOT_FOUND).await, "NOT_FOUND");
    drop(plain);

    let Some(mut app) = spawn_app_with(backend, |config| {
        config.faucet = Some(FaucetConfig {
            per_call_micros: 50_000_000,
            per_day_micros: 500_000_000,
        });
    })
    .await
    else {
        return;
    };
    let (_, login) = app.signed_up("alice@example.com").await;
    let alice = token(&login, "accessToken");
    let anonymous = app
        .post("/v1/transfers/faucet", None, json!({ "amount": "1" }))
        .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let given = app
        .post(
            "/v1/transfers/faucet",
            Some(&alice),
            json!({ "amount": "50" }),
        )
        .await;
    assert_eq!(given.status(), StatusCode::CREATED);
    let given: Value = given.json().await.unwrap();
    assert_eq!(given["kind"], "FAUCET");
    assert_eq!(given["amount"], "50.00");
    for (amount, field) in [("50.01", "amount"), ("0", "amount"), ("-1", "amount")] {
        let answer = app
            .post(
                "/v1/transfers/faucet",
                Some(&alice),
                json!({ "amount": amount }),
            )
            .await;
        assert_eq!(
            answer.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{amount}"
        );
        let answer: Value = answer.json().await.unwrap();
        assert_eq!(answer["error"]["details"]["field"], field);
    }
    app.crash_and_restart().await;
    assert_eq!(app.balance(&alice).await["available"], "50.00");
    let transfers: Value = app
        .get("/v1/portfolio/transfers", Some(&alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(transfers["data"].as_array().unwrap().len(), 1);
    assert_eq!(transfers["data"][0]["kind"], "FAUCET");
    assert_eq!(transfers["data"][0]["id"], given["id"]);
}

async fn take(app: &TestApp, who: &str, amount: &str) -> reqwest::Response {
    app.post(
        "/v1/transfers/faucet",
        Some(who),
        json!({ "amount": amount }),
    )
    .await
}

async fn the_faucet_is_capped_per_day_rate_limited_and_absent_in_production(backend: Backend) {
    let faucet = FaucetConfig {
        per_call_micros: 50_000_000,
        per_day_micros: 120_000_000,
    };
    let Some(mut app) = spawn_app_with(backend, |config| {
        config.faucet = Some(faucet);
        config.limits.faucet_per_minute = NonZeroU32::new(4).unwrap();
    })
    .await
    else {
        return;
    };
    let (_, login) = app.signed_up("alice@example.com").await;
    let alice = token(&login, "accessToken");
    let (_, login) = app.signed_up("bob@example.com").await;
    let bob = token(&login, "accessToken");
    assert_eq!(take(&app, &alice, "50").await.status(), StatusCode::CREATED);
    // The day's total is read from what was committed, so it survives a crash.
    app.crash_and_restart().await;
    assert_eq!(take(&app, &alice, "50").await.status(), StatusCode::CREATED);
    let over = take(&app, &alice, "50").await;
    assert_eq!(over.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let over: Value = over.json().await.unwrap();
    assert_eq!(over["error"]["details"]["field"], "amount", "{over}");
    assert!(
        over["error"]["message"]
            .as_str()
            .unwrap()
            .contains("20.00 is left"),
        "{over}"
    );
    assert_eq!(take(&app, &alice, "20").await.status(), StatusCode::CREATED);
    assert_eq!(app.balance(&alice).await["available"], "120.00");
    let spent = take(&app, &alice, "0.01").await;
    assert_eq!(spent.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Four calls a minute (the limiter is in memory: counted since the restart, refusals
    // too): the fifth is 429; Bob's own are not.
    let limited = take(&app, &alice, "1").await;
    assert_eq!(
        error_code(limited, StatusCode::TOO_MANY_REQUESTS).await,
        "RATE_LIMITED"
    );
    assert_eq!(take(&app, &bob, "50").await.status(), StatusCode::CREATED);
    // Concurrent calls cannot both fit under what is left: Bob has 70 left, two ask 50 each.
    let (one, two) = tokio::join!(take(&app, &bob, "50"), take(&app, &bob, "50"));
    let mut statuses = [one.status(), two.status()];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY]
    );
    assert_eq!(app.balance(&bob).await["available"], "100.00");

    let Some(production) = spawn_app_with(backend, |config| {
        config.env = AppEnv::Production;
        config.faucet = Some(faucet);
    })
    .await
    else {
        return;
    };
    let (_, login) = production.signed_up("carol@example.com").await;
    let carol = token(&login, "accessToken");
    let refused = take(&production, &carol, "1").await;
    assert_eq!(
        error_code(refused, StatusCode::NOT_FOUND).await,
        "NOT_FOUND"
    );
    assert_eq!(production.balance(&carol).await["available"], "0.00");
}

async fn positions_of(app: &TestApp, who: &str) -> Value {
    let answer = app.get("/v1/portfolio/positions", Some(who)).await;
    assert_eq!(answer.status(), StatusCode::OK);
    answer.json().await.unwrap()
}

/// Costs are kept in the positions rows as fills, conversions and settlements commit; rows
/// from a database older than those columns are computed from the committed history at the
/// next start, to exactly what the kept ones say.
async fn costs_from_before_the_cost_columns_are_computed_once_from_history(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    let (admin, market, alice, bob) = app.market_with_two_traders("100").await;
    let id = market["id"].as_str().unwrap().to_owned();
    let other = app.create_market(&admin, "snow", "Snow tomorrow?").await;
    let split = format!("/v1/markets/{id}/split");
    assert_eq!(
        app.post(&split, Some(&alice), json!({ "qty": 7 }))
            .await
            .status(),
        StatusCode::OK
    );
    let other_id = other["id"].as_str().unwrap();
    for (who, market, side, outcome, price, qty) in [
        (&alice, id.as_str(), "SELL", "YES", "0.62", 3),
        (&bob, id.as_str(), "BUY", "YES", "0.62", 5),
        (&bob, id.as_str(), "BUY", "NO", "0.41", 6),
        (&alice, id.as_str(), "BUY", "YES", "0.59", 6),
        (&alice, other_id, "BUY", "YES", "0.33", 9),
        (&bob, other_id, "BUY", "NO", "0.67", 9),
        (&bob, other_id, "SELL", "NO", "0.70", 4),
        (&alice, other_id, "BUY", "NO", "0.30", 4),
    ] {
        let order = json!({ "marketId": market, "side": side, "outcome": outcome,
                            "type": "LIMIT", "price": price, "qty": qty });
        let placed = app.post("/v1/orders", Some(who), order).await;
        assert_eq!(placed.status(), StatusCode::CREATED);
    }
    let merge = format!("/v1/markets/{id}/merge");
    assert_eq!(
        app.post(&merge, Some(&alice), json!({ "qty": 2 }))
            .await
            .status(),
        StatusCode::OK
    );
    for action in ["close", "resolve"] {
        let path = format!("/v1/markets/{other_id}/{action}");
        let body = if action == "resolve" {
            json!({ "outcome": "NO" })
        } else {
            json!({})
        };
        assert_eq!(
            app.post(&path, Some(&admin), body).await.status(),
            StatusCode::OK
        );
    }
    let kept = [
        positions_of(&app, &alice).await,
        positions_of(&app, &bob).await,
    ];
    assert_ne!(kept[0]["data"][0]["realizedPnl"], "0.00", "{}", kept[0]);
    app.server.take().unwrap().shutdown().await;
    // As a database from before the cost columns has them.
    let db = server::db::Db::connect(&app.config.storage, 1)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE positions SET yes_cost_micros = NULL, no_cost_micros = NULL, \
         realized_pnl_micros = NULL",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    db.pool.close().await;
    app.start_again().await;
    let computed = [
        positions_of(&app, &alice).await,
        positions_of(&app, &bob).await,
    ];
    assert_eq!(computed, kept);
}
