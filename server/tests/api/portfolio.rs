//! Split and merge: cash to YES + NO pairs at 1.00 and back, with the position's cost and PnL;
//! and the dev faucet, which exists only when configured.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app, spawn_app_with, token, Backend};

crate::on_both_databases!(
    split_and_merge_turn_cash_and_pairs_into_each_other_at_one_dollar,
    the_faucet_exists_only_when_enabled_and_gives_at_most_its_limit,
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
        config.faucet_max_micros = Some(50_000_000);
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
