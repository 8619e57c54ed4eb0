//! Orders: placing every kind, fills from both sides, queue positions, replays, cancel,
//! cancel-all, amend, listing, and bad input — with exact prices, quantities and balances.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app, token, Backend, TestApp};

crate::on_both_databases!(
    a_cross_mints_fills_both_sides_and_moves_queue_positions,
    a_client_order_id_replay_answers_the_original,
    orders_are_amended_cancelled_and_listed_by_their_owner_only,
    bad_orders_are_refused_with_the_field_or_the_engine_reason,
    a_batch_answers_every_item_in_order_on_its_own,
);

/// Two funded traders and an open market (0.01 tick, no fees).
struct Desk {
    app: TestApp,
    admin: String,
    alice: String,
    bob: String,
    market: String,
}

async fn desk(backend: Backend) -> Option<Desk> {
    let app = spawn_app(backend).await?;
    let admin = app.admin_token().await;
    let market = app.create_market(&admin, "rain", "Rain tomorrow?").await;
    let mut tokens = Vec::new();
    for email in ["alice@example.com", "bob@example.com"] {
        let (id, login) = app.signed_up(email).await;
        let deposited = app.deposit(&admin, &id, "1000").await;
        assert_eq!(deposited.status(), StatusCode::CREATED);
        tokens.push(token(&login, "accessToken"));
    }
    let bob = tokens.pop().unwrap();
    let alice = tokens.pop().unwrap();
    Some(Desk {
        app,
        admin,
        alice,
        bob,
        market: market["id"].as_str().unwrap().to_owned(),
    })
}

impl Desk {
    async fn place(&self, who: &str, order: Value) -> reqwest::Response {
        let mut order = order;
        if order.get("marketId").is_none() {
            order["marketId"] = json!(self.market);
        }
        self.app.post("/v1/orders", Some(who), order).await
    }

    async fn placed(&self, who: &str, order: Value) -> Value {
        let answer = self.place(who, order).await;
        assert_eq!(answer.status(), StatusCode::CREATED);
        answer.json().await.unwrap()
    }

    async fn limit(&self, who: &str, side: &str, outcome: &str, price: &str, qty: u64) -> Value {
        self.placed(
            who,
            json!({ "side": side, "outcome": outcome, "type": "LIMIT", "price": price, "qty": qty }),
        )
        .await
    }

    async fn order(&self, who: &str, id: &Value) -> reqwest::Response {
        self.app
            .get(&format!("/v1/orders/{}", id.as_str().unwrap()), Some(who))
            .await
    }
}

async fn a_cross_mints_fills_both_sides_and_moves_queue_positions(backend: Backend) {
    let Some(desk) = desk(backend).await else {
        return;
    };
    let first = desk.limit(&desk.alice, "BUY", "YES", "0.40", 10).await;
    assert_eq!(first["fills"], json!([]));
    let order = &first["order"];
    assert_eq!(order["status"], "OPEN");
    assert_eq!(order["price"], "0.40");
    assert_eq!(order["qty"], 10);
    assert_eq!(order["remainingQty"], 10);
    assert_eq!(order["filledQty"], 0);
    assert_eq!(order["avgFillPrice"], Value::Null);
    assert_eq!(order["queuePosition"], 0);
    assert_eq!(order["timeInForce"], "GTC");
    assert_eq!(order["selfTradePrevention"], "CANCEL_TAKER");
    assert_eq!(order["marketId"], desk.market.as_str());
    // Exactly 10 x 0.40: the market has no maker fee, so no rounding buffer.
    assert_eq!(
        (order["locked"].as_str(), order["feeReserve"].as_str()),
        (Some("4.00"), Some("0.00"))
    );
    let balance = desk.app.balance(&desk.alice).await;
    assert_eq!(balance["locked"], "4.00");
    assert_eq!(balance["available"], "996.00");
    assert_eq!(balance["feeReserve"], "0.00");
    let second = desk.limit(&desk.alice, "BUY", "YES", "0.40", 5).await;
    assert_eq!(second["order"]["queuePosition"], 10);

    // BUY NO at 0.60 is the YES ask at 0.40: it mints against both bids in time order.
    let taker = desk.limit(&desk.bob, "BUY", "NO", "0.60", 12).await;
    assert_eq!(taker["order"]["status"], "FILLED");
    assert_eq!(taker["order"]["filledQty"], 12);
    assert_eq!(taker["order"]["avgFillPrice"], "0.60");
    assert_eq!(taker["order"]["queuePosition"], Value::Null);
    let fills = taker["fills"].as_array().unwrap();
    assert_eq!(fills.len(), 2);
    for (fill, qty) in fills.iter().zip([10, 2]) {
        assert_eq!(fill["qty"], qty);
        assert_eq!(fill["price"], "0.60");
        assert_eq!(fill["role"], "TAKER");
        assert_eq!(fill["kind"], "MINT");
        assert_eq!(fill["side"], "BUY");
        assert_eq!(fill["outcome"], "NO");
        assert_eq!(fill["fee"], "0.00");
        assert_eq!(fill["orderId"], taker["order"]["id"]);
    }

    let first_now: Value = desk
        .order(&desk.alice, &first["order"]["id"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first_now["status"], "FILLED");
    assert_eq!(first_now["queuePosition"], Value::Null);
    let second_now: Value = desk
        .order(&desk.alice, &second["order"]["id"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second_now["status"], "PARTIALLY_FILLED");
    assert_eq!(second_now["filledQty"], 2);
    assert_eq!(second_now["remainingQty"], 3);
    assert_eq!(second_now["queuePosition"], 0);
    assert_eq!(second_now["avgFillPrice"], "0.40");
    // Someone else's order does not exist for bob.
    let hidden = desk.order(&desk.bob, &first["order"]["id"]).await;
    assert_eq!(error_code(hidden, StatusCode::NOT_FOUND).await, "NOT_FOUND");

    let alice_fills: Value = desk
        .app
        .get("/v1/portfolio/fills", Some(&desk.alice))
        .await
        .json()
        .await
        .unwrap();
    let alice_fills = alice_fills["data"].as_array().unwrap();
    assert_eq!(alice_fills.len(), 2);
    assert_eq!(alice_fills[0]["qty"], 2);
    assert_eq!(alice_fills[0]["orderId"], second["order"]["id"]);
    assert_eq!(alice_fills[1]["qty"], 10);
    for fill in alice_fills {
        assert_eq!(fill["role"], "MAKER");
        assert_eq!(fill["price"], "0.40");
        assert_eq!(fill["outcome"], "YES");
        assert_eq!(fill["kind"], "MINT");
    }
    assert_eq!(alice_fills[0]["id"], fills[1]["id"]);
    let bob_balance = desk.app.balance(&desk.bob).await;
    assert_eq!(bob_balance["available"], "992.80");
    assert_eq!(bob_balance["locked"], "0.00");
    assert_eq!(desk.app.balance(&desk.alice).await["total"], "995.20");

    // Alice sells 5 of her 12 YES at 0.70; bob buys for $1.40 of cash: exactly 2 shares.
    let ask = desk.limit(&desk.alice, "SELL", "YES", "0.70", 5).await;
    assert_eq!(ask["order"]["status"], "OPEN");
    let market_buy = desk
        .placed(
            &desk.bob,
            json!({ "side": "BUY", "outcome": "YES", "type": "MARKET", "cashAmount": "1.40" }),
        )
        .await;
    assert_eq!(market_buy["order"]["type"], "MARKET");
    assert_eq!(market_buy["order"]["timeInForce"], "IOC");
    assert_eq!(market_buy["order"]["price"], Value::Null);
    assert_eq!(market_buy["order"]["filledQty"], 2);
    assert_eq!(market_buy["fills"][0]["kind"], "YES_TRANSFER");
    assert_eq!(market_buy["fills"][0]["price"], "0.70");
    assert_eq!(desk.app.balance(&desk.bob).await["available"], "991.40");
}

async fn a_client_order_id_replay_answers_the_original(backend: Backend) {
    let Some(desk) = desk(backend).await else {
        return;
    };
    let order = json!({
        "side": "SELL", "outcome": "NO", "type": "LIMIT", "price": "0.55", "qty": 7,
        "clientOrderId": "bot-1:42", "timeInForce": "GTD",
        "expiresAt": "2099-01-01T00:00:00Z", "postOnly": true,
        "selfTradePrevention": "CANCEL_BOTH",
    });
    // SELL NO without NO shares: the engine says so.
    let short = desk.place(&desk.alice, order.clone()).await;
    assert_eq!(
        error_code(short, StatusCode::UNPROCESSABLE_ENTITY).await,
        "INSUFFICIENT_SHARES"
    );
    let mut buy = order.clone();
    buy["side"] = json!("BUY");
    let created = desk.place(&desk.alice, buy.clone()).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["order"]["clientOrderId"], "bot-1:42");
    assert_eq!(created["order"]["expiresAt"], "2099-01-01T00:00:00Z");
    assert_eq!(created["order"]["postOnly"], true);
    assert_eq!(created["order"]["timeInForce"], "GTD");
    assert_eq!(created["order"]["selfTradePrevention"], "CANCEL_BOTH");
    let replayed = desk.place(&desk.alice, buy.clone()).await;
    assert_eq!(replayed.status(), StatusCode::OK);
    let replayed: Value = replayed.json().await.unwrap();
    assert_eq!(replayed["order"]["id"], created["order"]["id"]);
    // Still one order, holding one reserve: 7 x 0.55.
    assert_eq!(desk.app.balance(&desk.alice).await["locked"], "3.85");
    let mut other = buy.clone();
    other["qty"] = json!(8);
    let reused = desk.place(&desk.alice, other).await;
    assert_eq!(
        error_code(reused, StatusCode::UNPROCESSABLE_ENTITY).await,
        "CLIENT_ORDER_ID_REUSED"
    );
    // Another user may use the same client order id.
    let bobs = desk.place(&desk.bob, buy).await;
    assert_eq!(bobs.status(), StatusCode::CREATED);
}

async fn orders_are_amended_cancelled_and_listed_by_their_owner_only(backend: Backend) {
    let Some(desk) = desk(backend).await else {
        return;
    };
    let app = &desk.app;
    let other = app
        .create_market(&desk.admin, "snow", "Snow tomorrow?")
        .await;
    let a1 = desk.limit(&desk.alice, "BUY", "YES", "0.30", 10).await["order"].clone();
    let a2 = desk.limit(&desk.alice, "BUY", "YES", "0.31", 10).await["order"].clone();
    let a3 = desk.limit(&desk.alice, "BUY", "NO", "0.20", 10).await["order"].clone();
    let b1 = desk
        .placed(
            &desk.alice,
            json!({ "marketId": other["slug"], "side": "BUY", "outcome": "YES", "type": "LIMIT",
                    "price": "0.50", "qty": 2 }),
        )
        .await["order"]
        .clone();
    assert_eq!(b1["marketId"], other["id"]);
    let path = |order: &Value| format!("/v1/orders/{}", order["id"].as_str().unwrap());

    let amended = app
        .send(
            Method::PATCH,
            &path(&a1),
            Some(&desk.alice),
            Some(json!({ "price": "0.35", "qty": 4 })),
        )
        .await;
    assert_eq!(amended.status(), StatusCode::OK);
    let amended: Value = amended.json().await.unwrap();
    assert_eq!(amended["order"]["price"], "0.35");
    assert_eq!(amended["order"]["qty"], 4);
    assert_eq!(amended["order"]["remainingQty"], 4);
    let nothing = app
        .send(
            Method::PATCH,
            &path(&a1),
            Some(&desk.alice),
            Some(json!({})),
        )
        .await;
    assert_eq!(nothing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let foreign = app
        .send(
            Method::PATCH,
            &path(&a1),
            Some(&desk.bob),
            Some(json!({ "qty": 1 })),
        )
        .await;
    assert_eq!(
        error_code(foreign, StatusCode::NOT_FOUND).await,
        "NOT_FOUND"
    );
    let foreign = app
        .send(Method::DELETE, &path(&a1), Some(&desk.bob), None)
        .await;
    assert_eq!(
        error_code(foreign, StatusCode::NOT_FOUND).await,
        "NOT_FOUND"
    );

    let cancelled = app
        .send(Method::DELETE, &path(&a1), Some(&desk.alice), None)
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let cancelled: Value = cancelled.json().await.unwrap();
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["cancelReason"], "USER_REQUESTED");
    assert_eq!(cancelled["remainingQty"], 0);
    let again = app
        .send(Method::DELETE, &path(&a1), Some(&desk.alice), None)
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    let all = app
        .post(
            "/v1/orders/cancel-all",
            Some(&desk.alice),
            json!({ "marketId": desk.market }),
        )
        .await;
    assert_eq!(all.status(), StatusCode::OK);
    let all: Value = all.json().await.unwrap();
    assert_eq!(all["cancelled"], json!([a2["id"], a3["id"]]));
    // What stays locked is the other market's order: 2 x 0.50.
    assert_eq!(app.balance(&desk.alice).await["locked"], "1.00");

    let open: Value = app
        .get("/v1/orders?status=open", Some(&desk.alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open["data"].as_array().unwrap().len(), 1);
    assert_eq!(open["data"][0]["id"], b1["id"]);
    assert_eq!(open["data"][0]["queuePosition"], 0);
    let page: Value = app
        .get(
            &format!("/v1/orders?status=closed&marketId={}&limit=2", desk.market),
            Some(&desk.alice),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"][0]["id"], a3["id"]);
    assert_eq!(page["data"][1]["id"], a2["id"]);
    let cursor = page["nextCursor"].as_str().unwrap();
    let rest: Value = app
        .get(
            &format!(
                "/v1/orders?status=closed&marketId={}&limit=2&cursor={cursor}",
                desk.market
            ),
            Some(&desk.alice),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["data"][0]["id"], a1["id"]);
    assert_eq!(rest["nextCursor"], Value::Null);
    let bobs: Value = app
        .get("/v1/orders", Some(&desk.bob))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bobs["data"], json!([]));
    let bad = app
        .get("/v1/orders?status=pending", Some(&desk.alice))
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let anonymous = app.get("/v1/orders", None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

async fn bad_orders_are_refused_with_the_field_or_the_engine_reason(backend: Backend) {
    let Some(desk) = desk(backend).await else {
        return;
    };
    let good =
        json!({ "side": "BUY", "outcome": "YES", "type": "LIMIT", "price": "0.45", "qty": 10 });
    for (field, value) in [
        ("side", json!("HOLD")),
        ("outcome", json!("MAYBE")),
        ("type", json!("STOP")),
        ("timeInForce", json!("DAY")),
        ("selfTradePrevention", json!("NONE")),
        ("price", json!("cheap")),
        ("price", json!("-0.45")),
        ("cashAmount", json!("0")),
        ("expiresAt", json!("soon")),
        ("clientOrderId", json!("has space")),
        ("clientOrderId", json!("x".repeat(37))),
        ("worstPrice", json!("1e-2")),
        ("maxSlippageBps", json!(10_001)),
    ] {
        let mut body = good.clone();
        body[field] = value.clone();
        let answer = desk.place(&desk.alice, body).await;
        assert_eq!(
            answer.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={value}"
        );
        let answer: Value = answer.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "VALIDATION_FAILED", "{field}");
        assert_eq!(answer["error"]["details"]["field"], field);
    }
    let halted = desk
        .app
        .create_market(&desk.admin, "halted", "Halted?")
        .await;
    let halt = desk
        .app
        .post(
            &format!("/v1/markets/{}/halt", halted["id"].as_str().unwrap()),
            Some(&desk.admin),
            json!({}),
        )
        .await;
    assert_eq!(halt.status(), StatusCode::OK);
    // Bob's BUY NO at 0.50 is a YES ask at 0.50 for 5.
    desk.limit(&desk.bob, "BUY", "NO", "0.50", 5).await;
    let (_, carol) = desk.app.signed_up("carol@example.com").await;
    let carol = token(&carol, "accessToken");
    for (who, field, value, code) in [
        (&desk.alice, "price", json!("0.405"), "PRICE_OFF_TICK"),
        (&desk.alice, "price", json!("0.45001"), "PRICE_OFF_TICK"),
        (&desk.alice, "price", json!("1"), "PRICE_OUT_OF_RANGE"),
        (&desk.alice, "qty", json!(1001), "QTY_OUT_OF_RANGE"),
        (&desk.alice, "qty", json!(0), "QTY_OUT_OF_RANGE"),
        (
            &desk.alice,
            "marketId",
            halted["id"].clone(),
            "MARKET_NOT_OPEN",
        ),
        (&carol, "qty", json!(10), "INSUFFICIENT_FUNDS"),
        (&desk.alice, "postOnly", json!(true), "POST_ONLY_WOULD_TAKE"),
        (&desk.alice, "timeInForce", json!("FOK"), "FOK_NOT_FILLED"),
        (&desk.alice, "price", Value::Null, "INVALID_ORDER"),
    ] {
        let mut body = json!({ "side": "BUY", "outcome": "YES", "type": "LIMIT",
                               "price": "0.55", "qty": 10 });
        body[field] = value.clone();
        if body["price"].is_null() {
            body.as_object_mut().unwrap().remove("price");
        }
        let answer = desk.place(who, body).await;
        assert_eq!(
            error_code(answer, StatusCode::UNPROCESSABLE_ENTITY).await,
            code,
            "{field}={value}"
        );
    }
    let unknown = desk
        .place(
            &desk.alice,
            json!({ "marketId": "nope", "side": "BUY", "outcome": "YES",
                                    "type": "LIMIT", "price": "0.45", "qty": 1 }),
        )
        .await;
    assert_eq!(
        error_code(unknown, StatusCode::NOT_FOUND).await,
        "UNKNOWN_MARKET"
    );
    let nul = desk
        .place(
            &desk.alice,
            json!({ "marketId": "\u{0}", "side": "BUY", "outcome": "YES",
                    "type": "LIMIT", "price": "0.45", "qty": 1 }),
        )
        .await;
    assert_eq!(
        error_code(nul, StatusCode::NOT_FOUND).await,
        "UNKNOWN_MARKET"
    );
    for (field, value) in [
        ("qty", json!(-1)),
        ("qty", json!("10")),
        ("qty", json!(1e30)),
        ("postOnly", json!("yes")),
        ("leverage", json!(10)),
    ] {
        let mut body = good.clone();
        body[field] = value;
        let answer = desk.place(&desk.alice, body).await;
        assert_eq!(
            error_code(answer, StatusCode::BAD_REQUEST).await,
            "BAD_REQUEST",
            "{field}"
        );
    }
    let anonymous = desk.app.post("/v1/orders", None, good).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // Nothing above changed alice's money.
    let balance = desk.app.balance(&desk.alice).await;
    assert_eq!(balance["available"], "1000.00");
    assert_eq!(balance["locked"], "0.00");
}

async fn a_batch_answers_every_item_in_order_on_its_own(backend: Backend) {
    let Some(desk) = desk(backend).await else {
        return;
    };
    let resting = desk.limit(&desk.alice, "BUY", "YES", "0.10", 10).await["order"].clone();
    let bobs = desk.limit(&desk.bob, "BUY", "YES", "0.11", 10).await["order"].clone();
    let order = |side: &str, outcome: &str, price: &str, qty: u64| {
        json!({ "marketId": desk.market, "side": side, "outcome": outcome, "type": "LIMIT",
                "price": price, "qty": qty })
    };
    let answer = desk
        .app
        .post(
            "/v1/orders/batch",
            Some(&desk.alice),
            json!({
                "place": [
                    order("BUY", "YES", "0.30", 5),
                    order("HOLD", "YES", "0.30", 5),
                    order("BUY", "YES", "0.305", 5),
                    order("BUY", "NO", "0.20", 3),
                ],
                "cancel": [resting["id"], "00000000-0000-0000-0000-000000000000", bobs["id"]],
            }),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let answer: Value = answer.json().await.unwrap();
    let placed = answer["place"].as_array().unwrap();
    assert_eq!(placed.len(), 4);
    assert_eq!(placed[0]["order"]["status"], "OPEN");
    assert_eq!(placed[0]["order"]["price"], "0.30");
    assert_eq!(placed[0]["order"]["qty"], 5);
    assert_eq!(placed[1]["error"]["code"], "VALIDATION_FAILED");
    assert_eq!(placed[1]["error"]["details"]["field"], "side");
    assert_eq!(placed[2]["error"]["code"], "PRICE_OFF_TICK");
    assert_eq!(placed[3]["order"]["outcome"], "NO");
    assert_eq!(placed[3]["order"]["qty"], 3);
    let cancelled = answer["cancel"].as_array().unwrap();
    assert_eq!(cancelled.len(), 3);
    assert_eq!(cancelled[0]["order"]["id"], resting["id"]);
    assert_eq!(cancelled[0]["order"]["status"], "CANCELLED");
    assert_eq!(cancelled[1]["error"]["code"], "NOT_FOUND");
    assert_eq!(cancelled[2]["error"]["code"], "NOT_FOUND");
    let bobs_now = desk
        .order(&desk.bob, &bobs["id"])
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(bobs_now["status"], "OPEN");
    // Locked: 5 x 0.30 + 3 x 0.20.
    assert_eq!(desk.app.balance(&desk.alice).await["locked"], "2.10");

    let too_many: Vec<Value> = (0..101).map(|_| order("BUY", "YES", "0.10", 1)).collect();
    let answer = desk
        .app
        .post(
            "/v1/orders/batch",
            Some(&desk.alice),
            json!({ "place": too_many }),
        )
        .await;
    assert_eq!(
        error_code(answer, StatusCode::UNPROCESSABLE_ENTITY).await,
        "BATCH_TOO_LARGE"
    );
}
