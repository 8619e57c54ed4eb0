//! The cash a resting BUY locks, over HTTP (DESIGN.md, "The ledger"): exactly its worst-case
//! cost in a market without a maker fee, that plus a rounding buffer shown as `feeReserve` with
//! one, the WASM preview locking what the server locks, and a database recorded before the
//! rule changed replaying to the hashes it recorded with its markets keeping the old rule.

use engine_wasm::mirror::Mirror;
use engine_wasm::wire::{AccountJson, BookJson, MarketJson, OrderJson};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;

use crate::helpers::{error_code, spawn_app, spawn_app_on, token, Backend, TestApp, TestDb};
use crate::on_both_databases;

on_both_databases!(
    exact_funds_place_a_buy_where_there_is_no_maker_fee,
    a_maker_fees_buffer_is_locked_shown_and_released,
    the_wasm_preview_locks_what_the_server_locks,
);

async fn market(app: &TestApp, admin: &str, slug: &str, maker: &str, taker: &str) -> Value {
    let created = app
        .post(
            "/v1/markets",
            Some(admin),
            json!({
                "slug": slug, "question": "Locks?", "tickSize": "0.01", "minQty": 1,
                "maxQty": 1000, "makerFeeRate": maker, "takerFeeRate": taker,
            }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    created.json().await.unwrap()
}

/// A new trader holding exactly `amount`; their access token.
async fn trader(app: &TestApp, admin: &str, email: &str, amount: &str) -> String {
    let (id, login) = app.signed_up(email).await;
    let deposited = app.deposit(admin, &id, amount).await;
    assert_eq!(deposited.status(), StatusCode::CREATED);
    token(&login, "accessToken")
}

fn bid(market: &Value, price: &str, qty: u64) -> Value {
    json!({
        "marketId": market["id"], "side": "BUY", "outcome": "YES", "type": "LIMIT",
        "price": price, "qty": qty,
    })
}

async fn exact_funds_place_a_buy_where_there_is_no_maker_fee(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let free = market(&app, &admin, "no-fees", "0", "0").await;
    assert_eq!(free["lockRule"], "BUFFER_FOR_MAKER_FEE");

    let short = trader(&app, &admin, "short@example.com", "3.999999").await;
    let refused = app
        .post("/v1/orders", Some(&short), bid(&free, "0.40", 10))
        .await;
    assert_eq!(
        error_code(refused, StatusCode::UNPROCESSABLE_ENTITY).await,
        "INSUFFICIENT_FUNDS"
    );
    assert_eq!(app.balance(&short).await["available"], "3.999999");

    let exact = trader(&app, &admin, "exact@example.com", "4.00").await;
    let placed = app
        .post("/v1/orders", Some(&exact), bid(&free, "0.40", 10))
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed: Value = placed.json().await.unwrap();
    assert_eq!(placed["order"]["status"], "OPEN");
    assert_eq!(placed["order"]["locked"], "4.00");
    assert_eq!(placed["order"]["feeReserve"], "0.00");
    assert_eq!(
        app.balance(&exact).await,
        json!({ "available": "0.00", "locked": "4.00", "total": "4.00", "feeReserve": "0.00" })
    );
}

async fn a_maker_fees_buffer_is_locked_shown_and_released(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    // Maker 2%, taker 7%: 10 @ 0.40 locks 4.00 + ceil(0.07 x 10 x 0.24) = 0.168, + 10 micros.
    let fees = market(&app, &admin, "maker-fee", "0.02", "0.07").await;
    let short = trader(&app, &admin, "short@example.com", "4.168009").await;
    let refused = app
        .post("/v1/orders", Some(&short), bid(&fees, "0.40", 10))
        .await;
    assert_eq!(
        error_code(refused, StatusCode::UNPROCESSABLE_ENTITY).await,
        "INSUFFICIENT_FUNDS"
    );
    let maker = trader(&app, &admin, "maker@example.com", "4.16801").await;
    let placed = app
        .post("/v1/orders", Some(&maker), bid(&fees, "0.40", 10))
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed: Value = placed.json().await.unwrap();
    let order_id = placed["order"]["id"].as_str().unwrap().to_owned();
    assert_eq!(placed["order"]["locked"], "4.16801");
    assert_eq!(placed["order"]["feeReserve"], "0.00001");
    assert_eq!(
        app.balance(&maker).await,
        json!({ "available": "0.00", "locked": "4.16801", "total": "4.16801",
                "feeReserve": "0.00001" })
    );

    // 4 fill: the 6 left lock 2.40 + ceil(0.07 x 6 x 0.24) = 0.1008, + 6 micros.
    let seller = trader(&app, &admin, "seller@example.com", "10").await;
    let split = app
        .post(
            &format!("/v1/markets/{}/split", fees["id"].as_str().unwrap()),
            Some(&seller),
            json!({ "qty": 4 }),
        )
        .await;
    assert_eq!(split.status(), StatusCode::OK);
    let sell = json!({
        "marketId": fees["id"], "side": "SELL", "outcome": "YES", "type": "LIMIT",
        "price": "0.40", "qty": 4,
    });
    let sold: Value = app
        .post("/v1/orders", Some(&seller), sell)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sold["order"]["status"], "FILLED");
    let order: Value = app
        .get(&format!("/v1/orders/{order_id}"), Some(&maker))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&order["remainingQty"], &order["locked"]),
        (&json!(6), &json!("2.500806"))
    );
    assert_eq!(order["feeReserve"], "0.000006");
    let balance = app.balance(&maker).await;
    assert_eq!(
        (&balance["locked"], &balance["feeReserve"]),
        (&json!("2.500806"), &json!("0.000006"))
    );

    // Cancelled, the order holds nothing, buffer included.
    let cancelled: Value = app
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/orders/{order_id}"),
            Some(&maker),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(
        (&cancelled["locked"], &cancelled["feeReserve"]),
        (&json!("0.00"), &json!("0.00"))
    );
    let balance = app.balance(&maker).await;
    assert_eq!(
        (&balance["locked"], &balance["feeReserve"]),
        (&json!("0.00"), &json!("0.00"))
    );
    // The maker paid ceil(0.02 x 4 x 0.24) = 0.0192 on the fill; 1.60 bought the 4 shares.
    assert_eq!(balance["available"], "2.54881");
}

/// The browser's preview (the WASM mirror, run natively here on the server's own market and
/// book bodies) locks to the micro what the server then locks for the same order.
async fn the_wasm_preview_locks_what_the_server_locks(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let cases = [
        ("no-fees", "0", "0"),
        ("taker-fee", "0", "0.07"),
        ("maker-fee", "0.02", "0.07"),
    ];
    for (index, (slug, maker, taker)) in cases.into_iter().enumerate() {
        let market = market(&app, &admin, slug, maker, taker).await;
        let trader = trader(&app, &admin, &format!("t{index}@example.com"), "50").await;
        let id = market["id"].as_str().unwrap();
        let book: BookJson = app
            .get(&format!("/v1/markets/{id}/book"), None)
            .await
            .json()
            .await
            .unwrap();
        let params = serde_json::from_value::<MarketJson>(market.clone())
            .unwrap()
            .params()
            .unwrap();
        let mut mirror = Mirror::new(params, &book).unwrap();
        let account: AccountJson = serde_json::from_value(app.balance(&trader).await).unwrap();
        for (price, qty) in [("0.40", 10), ("0.63", 7), ("0.01", 999)] {
            let request = bid(&market, price, qty);
            let mut preview_request = request.clone();
            preview_request.as_object_mut().unwrap().remove("marketId");
            let order: OrderJson = serde_json::from_value(preview_request).unwrap();
            let preview = mirror.preview(&order, Some(account.to_account().unwrap()));
            assert!(preview.accepted, "{slug} {price}: {preview:?}");
            let placed: Value = app
                .post("/v1/orders", Some(&trader), request)
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(
                placed["order"]["locked"],
                json!(preview.cash_locked),
                "{slug} {price}"
            );
            let cancelled = app
                .send(
                    reqwest::Method::DELETE,
                    &format!("/v1/orders/{}", placed["order"]["id"].as_str().unwrap()),
                    Some(&trader),
                    None,
                )
                .await;
            assert_eq!(cancelled.status(), StatusCode::OK);
        }
    }
}

/// `server/tests/fixtures/before-lock-rule.sqlite.sql` is a SQLite database written by the
/// server as it was before the lock rule changed (commit a2ba842), dumped with `sqlite3 .dump`:
/// an admin, Ann and Ben, a market without fees and one with a 2% maker and 7% taker fee, Ann
/// refused a bid for exactly her cash, two bids of hers resting (partly filled), snapshots at
/// seq 12 and, from the graceful stop, 16 (state hash `RECORDED_HASH`). Started on it, the
/// server must reach that hash from the last snapshot, from the one before (replaying past it)
/// and from empty, recomputing every batch's chain link as recorded (recovery refuses to start
/// otherwise); its old markets keep the old rule, and a market created now uses the new one.
#[tokio::test]
async fn a_database_from_before_the_rule_replays_and_its_markets_keep_the_old_rule() {
    const RECORDED_HASH: &str = "1e65302580ceaea1f0785e46e1d7303f";
    let db = TestDb::create(Backend::Sqlite).await.unwrap();
    let fixture = include_str!("../fixtures/before-lock-rule.sqlite.sql");
    let path = db.dir().join("predex.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(fixture).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let mut app = spawn_app_on(db, |config| config.admin = None).await;

    let rounds = [
        ("DELETE FROM snapshots WHERE seq > 16", Some(16), 0),
        ("DELETE FROM snapshots WHERE seq > 12", Some(12), 4),
        ("DELETE FROM snapshots", None, 16),
    ];
    for (index, (keep, snapshot_seq, replayed)) in rounds.into_iter().enumerate() {
        if index > 0 {
            sqlx::query(keep).execute(&app.db().pool).await.unwrap();
            // Killed: no final snapshot of its own.
            app.crash_and_restart().await;
        }
        let report = app.server().recovery().unwrap().clone();
        assert_eq!(
            (report.snapshot_seq, report.replayed, report.last_seq),
            (snapshot_seq, replayed, 16)
        );
        assert_eq!(report.state_hash, RECORDED_HASH, "{keep}");

        let ann = login(&app, "ann@example.com", "correct horse battery").await;
        // The old rule, as recorded: 5 @ 0.40 holds 2.00 + 5 micros; 5 @ 0.30 with a 7% taker
        // fee holds 1.50 + ceil(0.07 x 5 x 0.21) = 0.0735, + 5 micros.
        assert_eq!(
            app.balance(&ann).await,
            json!({ "available": "8.21809", "locked": "3.57351", "total": "11.7916",
                    "feeReserve": "0.00001" }),
            "{keep}"
        );
        let open: Value = app
            .get("/v1/orders?status=open", Some(&ann))
            .await
            .json()
            .await
            .unwrap();
        let mut locks: Vec<_> = open["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["price"].clone(),
                    o["locked"].clone(),
                    o["feeReserve"].clone(),
                )
            })
            .collect();
        locks.sort_by_key(|lock| lock.0.to_string());
        assert_eq!(
            locks,
            vec![
                (json!("0.30"), json!("1.573505"), json!("0.000005")),
                (json!("0.40"), json!("2.000005"), json!("0.000005")),
            ],
            "{keep}"
        );
        let markets: Value = app.get("/v1/markets", None).await.json().await.unwrap();
        assert_eq!(markets["data"].as_array().unwrap().len(), 2);
        for market in markets["data"].as_array().unwrap() {
            assert_eq!(market["lockRule"], "BUFFER_ALWAYS", "{keep}");
        }
    }

    // A market created now uses the new rule, beside the old ones.
    let admin = login(&app, "admin@example.com", "admin password for fixture").await;
    let fresh = market(&app, &admin, "after-the-change", "0", "0").await;
    assert_eq!(fresh["lockRule"], "BUFFER_FOR_MAKER_FEE");
    let exact = trader(&app, &admin, "exact@example.com", "4.00").await;
    let placed = app
        .post("/v1/orders", Some(&exact), bid(&fresh, "0.40", 10))
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    assert_eq!(app.balance(&exact).await["locked"], "4.00");
    // The mixed state survives a restart through a snapshot holding both rules.
    app.restart().await;
    assert_eq!(app.balance(&exact).await["locked"], "4.00");
    let ann = login(&app, "ann@example.com", "correct horse battery").await;
    assert_eq!(app.balance(&ann).await["locked"], "3.57351");
}

async fn login(app: &TestApp, email: &str, password: &str) -> String {
    let response = app.login(email, password).await;
    assert_eq!(response.status(), StatusCode::OK);
    token(&response.json().await.unwrap(), "accessToken")
}
