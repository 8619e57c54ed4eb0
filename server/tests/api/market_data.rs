//! Market data: the book in YES prices with its sequence number, trades, and the ticker; and a
//! flood of readers that cannot reach the order path.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app, Backend, TestApp};

crate::on_both_databases!(
    book_trades_and_ticker_follow_every_committed_order,
    the_book_orders_and_positions_read_the_same_after_a_crash,
    a_flood_of_anonymous_reads_refuses_neither_reads_nor_orders,
);

async fn place(app: &TestApp, who: &str, market: &Value, order: (&str, &str, &str, u64)) {
    let (side, outcome, price, qty) = order;
    let answer = app
        .post(
            "/v1/orders",
            Some(who),
            json!({ "marketId": market["id"], "side": side, "outcome": outcome,
                    "type": "LIMIT", "price": price, "qty": qty }),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::CREATED);
}

async fn read(app: &TestApp, path: String) -> Value {
    let answer = app.get(&path, None).await;
    assert_eq!(answer.status(), StatusCode::OK, "{path}");
    answer.json().await.unwrap()
}

async fn book_trades_and_ticker_follow_every_committed_order(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_admin, market, alice, bob) = app.market_with_two_traders("1000").await;
    let id = market["id"].as_str().unwrap().to_owned();
    let (alice, bob) = (&alice, &bob);
    let empty = read(&app, format!("/v1/markets/{id}/book")).await;
    assert_eq!(
        empty,
        json!({ "marketId": id, "seq": 0, "bids": [], "asks": [] })
    );

    place(&app, alice, &market, ("BUY", "YES", "0.40", 10)).await;
    place(&app, alice, &market, ("BUY", "YES", "0.40", 5)).await;
    place(&app, alice, &market, ("BUY", "YES", "0.38", 3)).await;
    // BUY NO at 0.45 rests as a YES ask at 0.55.
    place(&app, bob, &market, ("BUY", "NO", "0.45", 7)).await;
    let book = read(&app, format!("/v1/markets/{id}/book")).await;
    assert_eq!(
        book,
        json!({
            "marketId": id, "seq": 4,
            "bids": [{ "price": "0.40", "qty": 15 }, { "price": "0.38", "qty": 3 }],
            "asks": [{ "price": "0.55", "qty": 7 }],
        })
    );
    let top = read(&app, "/v1/markets/rain/book?depth=1".to_owned()).await;
    assert_eq!(top["bids"], json!([{ "price": "0.40", "qty": 15 }]));
    let ticker = read(&app, format!("/v1/markets/{id}/ticker")).await;
    assert_eq!(
        ticker,
        json!({ "marketId": id, "bestBid": "0.40", "bestAsk": "0.55", "mid": "0.475",
                "last": null, "volume24h": 0, "change24h": null })
    );

    // BUY NO at 0.60 takes the YES bids at 0.40: 10 then 2, both mints, taker SELL in YES.
    place(&app, bob, &market, ("BUY", "NO", "0.60", 12)).await;
    let trades = read(&app, format!("/v1/markets/{id}/trades")).await;
    let data = trades["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (trade, qty) in data.iter().zip([2, 10]) {
        assert_eq!(trade["qty"], qty);
        assert_eq!(trade["price"], "0.40");
        assert_eq!(trade["takerSide"], "SELL");
        assert_eq!(trade["kind"], "MINT");
    }
    let first_page = read(&app, format!("/v1/markets/{id}/trades?limit=1")).await;
    assert_eq!(first_page["data"][0]["id"], data[0]["id"]);
    let cursor = first_page["nextCursor"].as_str().unwrap();
    let second_page = read(
        &app,
        format!("/v1/markets/{id}/trades?limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(second_page["data"][0]["id"], data[1]["id"]);
    assert_eq!(second_page["nextCursor"], Value::Null);
    let book = read(&app, format!("/v1/markets/{id}/book")).await;
    assert_eq!(book["seq"], 5);
    assert_eq!(
        book["bids"],
        json!([{ "price": "0.40", "qty": 3 }, { "price": "0.38", "qty": 3 }])
    );

    // Alice lifts bob's YES ask at 0.55 for 2.
    place(&app, alice, &market, ("BUY", "YES", "0.55", 2)).await;
    let ticker = read(&app, format!("/v1/markets/{id}/ticker")).await;
    assert_eq!(
        ticker,
        json!({ "marketId": id, "bestBid": "0.40", "bestAsk": "0.55", "mid": "0.475",
                "last": "0.55", "volume24h": 14, "change24h": "0.15" })
    );
    let latest = read(&app, format!("/v1/markets/{id}/trades?limit=1")).await;
    assert_eq!(latest["data"][0]["takerSide"], "BUY");
    assert_eq!(latest["data"][0]["price"], "0.55");

    candles_cover_the_trades(&app, &id).await;

    let missing = app.get("/v1/markets/nope/book", None).await;
    assert_eq!(
        error_code(missing, StatusCode::NOT_FOUND).await,
        "NOT_FOUND"
    );
    let missing = app.get("/v1/markets/nope/ticker", None).await;
    assert_eq!(
        error_code(missing, StatusCode::NOT_FOUND).await,
        "NOT_FOUND"
    );
    for query in ["depth=0", "depth=501"] {
        let answer = app
            .get(&format!("/v1/markets/{id}/book?{query}"), None)
            .await;
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let answer: Value = answer.json().await.unwrap();
        assert_eq!(answer["error"]["details"]["field"], "depth");
    }
    let answer = app
        .get(&format!("/v1/markets/{id}/book?depth=-1"), None)
        .await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
}

async fn the_book_orders_and_positions_read_the_same_after_a_crash(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    let (_admin, market, alice, bob) = app.market_with_two_traders("1000").await;
    let id = market["id"].as_str().unwrap().to_owned();
    place(&app, &alice, &market, ("BUY", "YES", "0.40", 10)).await;
    place(&app, &bob, &market, ("BUY", "YES", "0.40", 5)).await;
    place(&app, &bob, &market, ("BUY", "NO", "0.70", 4)).await;
    let before = reads_of(&app, &id, &bob).await;
    // Bob's BUY YES waits behind alice's 10, less the 4 his own NO bid minted against.
    assert_eq!(before.2["data"][0]["queuePosition"], 6);
    assert_eq!(before.0["seq"], 3);
    app.crash_and_restart().await;
    let after = reads_of(&app, &id, &bob).await;
    assert_eq!(after, before);
    // The recovered engine keeps trading from the same book.
    place(&app, &bob, &market, ("BUY", "NO", "0.60", 6)).await;
    let book = read(&app, format!("/v1/markets/{id}/book")).await;
    assert_eq!(book["seq"], 4);
    assert_eq!(book["bids"], json!([{ "price": "0.40", "qty": 5 }]));
    let orders: Value = app
        .get("/v1/orders?status=open", Some(&bob))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(orders["data"][0]["queuePosition"], 0);
}

/// Book, ticker, `who`'s open orders and positions.
async fn reads_of(app: &TestApp, id: &str, who: &str) -> (Value, Value, Value, Value) {
    let orders: Value = app
        .get("/v1/orders?status=open", Some(who))
        .await
        .json()
        .await
        .unwrap();
    let positions: Value = app
        .get("/v1/portfolio/positions", Some(who))
        .await
        .json()
        .await
        .unwrap();
    (
        read(app, format!("/v1/markets/{id}/book")).await,
        read(app, format!("/v1/markets/{id}/ticker")).await,
        orders,
        positions,
    )
}

/// The trades so far (12 at 0.40, then 2 at 0.55) in candles: whichever intervals they fall in
/// (a test may straddle a minute), the volumes add up and the extremes are exact; intervals
/// before the first trade are left out.
async fn candles_cover_the_trades(app: &TestApp, id: &str) {
    for interval in ["1m", "1h", "1d"] {
        let body = read(app, format!("/v1/markets/{id}/candles?interval={interval}")).await;
        assert_eq!(body["interval"], interval);
        let candles = body["candles"].as_array().unwrap();
        assert!((1..=2).contains(&candles.len()), "{body}");
        let volume: i64 = candles.iter().map(|c| c["volume"].as_i64().unwrap()).sum();
        assert_eq!(volume, 14);
        assert_eq!(candles[0]["open"], "0.40");
        assert_eq!(candles[candles.len() - 1]["close"], "0.55");
        let highs: Vec<&str> = candles
            .iter()
            .map(|c| c["high"].as_str().unwrap())
            .collect();
        let lows: Vec<&str> = candles.iter().map(|c| c["low"].as_str().unwrap()).collect();
        assert_eq!(highs.iter().max(), Some(&"0.55"));
        assert_eq!(lows.iter().min(), Some(&"0.40"));
    }
    for (query, field) in [
        ("interval=2m", "interval"),
        ("interval=1m&from=2000-01-01T00:00:00Z", "from"),
        ("from=2999-01-01T00:00:00Z", "from"),
        ("interval=1h&to=yesterday", "to"),
    ] {
        let answer = app
            .get(&format!("/v1/markets/{id}/candles?{query}"), None)
            .await;
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["details"]["field"], field, "{query}");
    }
}

/// 600 anonymous reads at once of the heaviest kinds (a 500-level book, trades, candles, the
/// ticker) while orders are placed: reads share neither the sequencer's queue nor the writer's
/// connection, so every order is acknowledged and no read is refused (their concurrency is
/// bounded by parking, not by 503s).
async fn a_flood_of_anonymous_reads_refuses_neither_reads_nor_orders(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_admin, market, alice, bob) = app.market_with_two_traders("10000").await;
    let id = market["id"].as_str().unwrap().to_owned();
    for price in 1..=40 {
        place(
            &app,
            &alice,
            &market,
            ("BUY", "YES", &format!("0.{price:02}"), 1),
        )
        .await;
    }
    let paths = [
        format!("/v1/markets/{id}/book?depth=500"),
        format!("/v1/markets/{id}/trades?limit=100"),
        format!("/v1/markets/{id}/candles?interval=1m"),
        format!("/v1/markets/{id}/ticker"),
    ];
    let readers = (0..600).map(|n| {
        let request = app.client.get(app.url(&paths[n % paths.len()])).send();
        async move { request.await.map(|answer| answer.status()) }
    });
    let reads = futures_util::future::join_all(readers);
    let orders = async {
        let mut statuses = Vec::new();
        for n in 0..20 {
            let outcome = if n % 2 == 0 { "YES" } else { "NO" };
            let order = json!({ "marketId": market["id"], "side": "BUY", "outcome": outcome,
                                "type": "LIMIT", "price": "0.50", "qty": 1 });
            statuses.push(app.post("/v1/orders", Some(&bob), order).await.status());
        }
        statuses
    };
    let (reads, orders) = tokio::join!(reads, orders);
    assert!(
        orders.iter().all(|status| *status == StatusCode::CREATED),
        "{orders:?}"
    );
    let refused: Vec<_> = reads
        .iter()
        .filter(|read| !matches!(read, Ok(StatusCode::OK)))
        .collect();
    assert!(
        refused.is_empty(),
        "{} reads not answered 200: {refused:?}",
        refused.len()
    );
}
