//! The seed flow end to end (issue 6): two traders, an admin market, deposits, resting orders,
//! a mint cross, a transfer with a partial fill, a cancel, then resolution and payouts. Every
//! figure is exact; the README's API tour follows the same steps.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, token, Backend, TestApp};

crate::on_both_databases!(the_seed_flow_trades_settles_and_leaves_no_cash_behind);

async fn order(app: &TestApp, who: &str, market: &str, leg: (&str, &str, &str, u64)) -> Value {
    let (side, outcome, price, qty) = leg;
    let answer = app
        .post(
            "/v1/orders",
            Some(who),
            json!({ "marketId": market, "side": side, "outcome": outcome, "type": "LIMIT",
                    "price": price, "qty": qty, "timeInForce": "GTC" }),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::CREATED);
    answer.json().await.unwrap()
}

async fn get(app: &TestApp, path: &str, who: Option<&str>) -> Value {
    let answer = app.get(path, who).await;
    assert_eq!(answer.status(), StatusCode::OK, "{path}");
    answer.json().await.unwrap()
}

async fn the_seed_flow_trades_settles_and_leaves_no_cash_behind(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let (alice_id, alice) = app.signed_up("alice@example.com").await;
    let (bob_id, bob) = app.signed_up("bob@example.com").await;
    let (alice, bob) = (token(&alice, "accessToken"), token(&bob, "accessToken"));
    let market = app
        .create_market(&admin, "rain-tomorrow", "Will it rain tomorrow?")
        .await;
    let id = market["id"].as_str().unwrap().to_owned();
    for user in [&alice_id, &bob_id] {
        assert_eq!(
            app.deposit(&admin, user, "100").await.status(),
            StatusCode::CREATED
        );
    }

    // Resting orders on both sides: alice bids 0.40 for YES, bob bids 0.55 for NO (a YES ask
    // at 0.45).
    let alice_bid = order(&app, &alice, &id, ("BUY", "YES", "0.40", 10)).await;
    let bob_no = order(&app, &bob, &id, ("BUY", "NO", "0.55", 4)).await;
    let book = get(&app, &format!("/v1/markets/{id}/book"), None).await;
    assert_eq!(book["bids"], json!([{ "price": "0.40", "qty": 10 }]));
    assert_eq!(book["asks"], json!([{ "price": "0.45", "qty": 4 }]));
    // Exactly what the bid can cost: no fees, so nothing locked beyond 10 x 0.40.
    assert_eq!(
        app.balance(&alice).await,
        json!({ "available": "96.00", "locked": "4.00", "total": "100.00", "feeReserve": "0.00" })
    );

    // Bob's BUY NO at 0.60 crosses alice's bid: 6 pairs minted at YES 0.40 / NO 0.60.
    let mint = order(&app, &bob, &id, ("BUY", "NO", "0.60", 6)).await;
    assert_eq!(mint["fills"][0]["kind"], "MINT");
    assert_eq!(mint["fills"][0]["qty"], 6);
    assert_eq!(mint["fills"][0]["price"], "0.60");
    // Alice offers 3 of her 6 YES at 0.47; bob cancels his NO bid.
    order(&app, &alice, &id, ("SELL", "YES", "0.47", 3)).await;
    let path = format!("/v1/orders/{}", bob_no["order"]["id"].as_str().unwrap());
    let cancelled = app.send(Method::DELETE, &path, Some(&bob), None).await;
    assert_eq!(
        cancelled.json::<Value>().await.unwrap()["status"],
        "CANCELLED"
    );
    // Bob bids 0.47 for 5 YES: 3 transfer from alice, 2 rest.
    let transfer = order(&app, &bob, &id, ("BUY", "YES", "0.47", 5)).await;
    assert_eq!(transfer["order"]["status"], "PARTIALLY_FILLED");
    assert_eq!(transfer["order"]["filledQty"], 3);
    assert_eq!(transfer["fills"][0]["kind"], "YES_TRANSFER");
    assert_eq!(transfer["fills"][0]["price"], "0.47");

    let book = get(&app, &format!("/v1/markets/{id}/book"), None).await;
    assert_eq!(
        book["bids"],
        json!([{ "price": "0.47", "qty": 2 }, { "price": "0.40", "qty": 4 }])
    );
    assert_eq!(book["asks"], json!([]));
    let alice_order = get(
        &app,
        &format!("/v1/orders/{}", alice_bid["order"]["id"].as_str().unwrap()),
        Some(&alice),
    )
    .await;
    assert_eq!(alice_order["status"], "PARTIALLY_FILLED");
    assert_eq!(alice_order["remainingQty"], 4);
    let alice_fills = get(&app, "/v1/portfolio/fills", Some(&alice)).await;
    let alice_fills = alice_fills["data"].as_array().unwrap();
    assert_eq!(alice_fills.len(), 2);
    assert_eq!(
        (
            &alice_fills[0]["side"],
            &alice_fills[0]["qty"],
            &alice_fills[0]["price"]
        ),
        (&json!("SELL"), &json!(3), &json!("0.47"))
    );
    assert_eq!(alice_fills[1]["kind"], "MINT");
    // Cash moved: alice paid 2.40 and received 1.41; bob paid 3.60 and 1.41.
    assert_eq!(app.balance(&alice).await["total"], "99.01");
    assert_eq!(app.balance(&bob).await["total"], "94.99");

    let positions = get(&app, "/v1/portfolio/positions", Some(&alice)).await;
    assert_eq!(
        positions["data"],
        json!([{ "marketId": id, "yesShares": 3, "noShares": 0, "yesAvgCost": "0.40",
                 "noAvgCost": null, "realizedPnl": "0.21", "unrealizedPnl": "0.21",
                 "markPrice": "0.47" }])
    );
    let positions = get(&app, "/v1/portfolio/positions", Some(&bob)).await;
    assert_eq!(
        positions["data"],
        json!([{ "marketId": id, "yesShares": 3, "noShares": 6, "yesAvgCost": "0.47",
                 "noAvgCost": "0.60", "realizedPnl": "0.00", "unrealizedPnl": "-0.42",
                 "markPrice": "0.47" }])
    );

    // Resolution YES: open orders are cancelled, each YES share pays 1.00.
    let resolved = app
        .post(
            &format!("/v1/markets/{id}/resolve"),
            Some(&admin),
            json!({ "outcome": "YES" }),
        )
        .await;
    assert_eq!(resolved.status(), StatusCode::OK);
    let alice_order = get(
        &app,
        &format!("/v1/orders/{}", alice_bid["order"]["id"].as_str().unwrap()),
        Some(&alice),
    )
    .await;
    assert_eq!(alice_order["status"], "CANCELLED");
    assert_eq!(alice_order["cancelReason"], "MARKET_RESOLVED");
    let alice_balance = app.balance(&alice).await;
    let bob_balance = app.balance(&bob).await;
    assert_eq!(alice_balance["available"], "102.01");
    assert_eq!(alice_balance["locked"], "0.00");
    assert_eq!(bob_balance["available"], "97.99");
    assert_eq!(bob_balance["locked"], "0.00");
    // No fees in this market: the 200.00 deposited is all back with the traders, so the
    // market's escrow is empty.
    let positions = get(&app, "/v1/portfolio/positions", Some(&alice)).await;
    assert_eq!(positions["data"][0]["yesShares"], 0);
    assert_eq!(positions["data"][0]["realizedPnl"], "2.01");
    assert_eq!(positions["data"][0]["unrealizedPnl"], Value::Null);
    let positions = get(&app, "/v1/portfolio/positions", Some(&bob)).await;
    assert_eq!(positions["data"][0]["noShares"], 0);
    assert_eq!(positions["data"][0]["realizedPnl"], "-2.01");
    let book = get(&app, &format!("/v1/markets/{id}/book"), None).await;
    assert_eq!((&book["bids"], &book["asks"]), (&json!([]), &json!([])));
    let settled = get(&app, "/v1/portfolio/settlements", Some(&bob)).await;
    assert_eq!(settled["data"].as_array().unwrap().len(), 1);
    assert_eq!(settled["data"][0]["marketId"], id.as_str());
    assert_eq!(settled["data"][0]["yesShares"], 3);
    assert_eq!(settled["data"][0]["noShares"], 6);
    assert_eq!(settled["data"][0]["payout"], "3.00");
    // Bob takes his winnings out.
    let withdrawn = app
        .post(
            "/v1/transfers/withdraw",
            Some(&bob),
            json!({ "amount": "97.99" }),
        )
        .await;
    assert_eq!(withdrawn.status(), StatusCode::CREATED);
    let transfers = get(&app, "/v1/portfolio/transfers", Some(&bob)).await;
    let kinds: Vec<(&Value, &Value)> = transfers["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|transfer| (&transfer["kind"], &transfer["amount"]))
        .collect();
    assert_eq!(
        kinds,
        [
            (&json!("WITHDRAWAL"), &json!("97.99")),
            (&json!("DEPOSIT"), &json!("100.00"))
        ]
    );
    let page = get(&app, "/v1/portfolio/transfers?limit=1", Some(&bob)).await;
    let cursor = page["nextCursor"].as_str().unwrap();
    let rest = get(
        &app,
        &format!("/v1/portfolio/transfers?limit=1&cursor={cursor}"),
        Some(&bob),
    )
    .await;
    assert_eq!(rest["data"][0]["kind"], "DEPOSIT");
    assert_eq!(rest["nextCursor"], Value::Null);
    assert_eq!(app.balance(&bob).await["total"], "0.00");
}
