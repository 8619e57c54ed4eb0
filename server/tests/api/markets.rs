//! Markets: admin lifecycle, reads by id or slug, listing with filters and cursors, bad input.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app, token, Backend};

crate::on_both_databases!(
    an_admin_creates_a_market_that_anyone_reads_by_id_or_slug,
    only_admins_manage_markets,
    bad_market_fields_are_refused_naming_the_field,
    markets_are_listed_by_state_and_text_with_cursor_pagination,
    a_market_halts_resumes_closes_and_resolves_once,
);

async fn an_admin_creates_a_market_that_anyone_reads_by_id_or_slug(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let created = app
        .post(
            "/v1/markets",
            Some(&admin),
            json!({
                "slug": "btc-100k-2030",
                "question": "  Will BTC close above $100k in 2030?  ",
                "description": "Coinbase close.",
                "tickSize": "0.001",
                "minQty": 5,
                "maxQty": 50000,
                "makerFeeRate": "-0.0025",
                "takerFeeRate": "0.07",
                "closesAt": "2099-12-31T23:59:59Z",
            }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let market: Value = created.json().await.unwrap();
    assert_eq!(market["slug"], "btc-100k-2030");
    assert_eq!(market["question"], "Will BTC close above $100k in 2030?");
    assert_eq!(market["description"], "Coinbase close.");
    assert_eq!(market["state"], "OPEN");
    assert_eq!(market["tickSize"], "0.001");
    assert_eq!(market["minQty"], 5);
    assert_eq!(market["maxQty"], 50000);
    assert_eq!(market["makerFeeRate"], "-0.0025");
    assert_eq!(market["takerFeeRate"], "0.07");
    assert_eq!(market["closesAt"], "2099-12-31T23:59:59Z");
    assert_eq!(market["resolution"], Value::Null);
    assert!(market["createdAt"].as_str().unwrap().ends_with('Z'));
    let id = market["id"].as_str().unwrap();
    for path in [
        format!("/v1/markets/{id}"),
        "/v1/markets/btc-100k-2030".to_owned(),
    ] {
        let read = app.get(&path, None).await;
        assert_eq!(read.status(), StatusCode::OK);
        assert_eq!(read.json::<Value>().await.unwrap(), market);
    }
    for odd in ["%00", "BTC-100K-2030", "%F0%9F%8C%A7"] {
        let missing = app.get(&format!("/v1/markets/{odd}"), None).await;
        assert_eq!(
            error_code(missing, StatusCode::NOT_FOUND).await,
            "NOT_FOUND"
        );
    }
    let missing = app.get("/v1/markets/no-such-market", None).await;
    assert_eq!(
        error_code(missing, StatusCode::NOT_FOUND).await,
        "NOT_FOUND"
    );
    let missing = app
        .get("/v1/markets/00000000-0000-0000-0000-000000000000", None)
        .await;
    assert_eq!(
        error_code(missing, StatusCode::NOT_FOUND).await,
        "NOT_FOUND"
    );
}

async fn only_admins_manage_markets(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let market = app.create_market(&admin, "rain", "Rain tomorrow?").await;
    let id = market["id"].as_str().unwrap();
    let (_, login) = app.signed_up("user@example.com").await;
    let user = token(&login, "accessToken");
    let body = json!({ "slug": "x", "question": "q?", "tickSize": "0.01" });
    let forbidden = app.post("/v1/markets", Some(&user), body.clone()).await;
    assert_eq!(
        error_code(forbidden, StatusCode::FORBIDDEN).await,
        "FORBIDDEN"
    );
    let anonymous = app.post("/v1/markets", None, body).await;
    assert_eq!(
        error_code(anonymous, StatusCode::UNAUTHORIZED).await,
        "UNAUTHENTICATED"
    );
    for action in ["halt", "resume", "close", "resolve"] {
        let path = format!("/v1/markets/{id}/{action}");
        let answer = app
            .post(&path, Some(&user), json!({ "outcome": "YES" }))
            .await;
        assert_eq!(
            error_code(answer, StatusCode::FORBIDDEN).await,
            "FORBIDDEN",
            "{action}"
        );
        let answer = app.post(&path, None, json!({ "outcome": "YES" })).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{action}");
    }
    let read: Value = app
        .get(&format!("/v1/markets/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["state"], "OPEN");
}

async fn bad_market_fields_are_refused_naming_the_field(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let good = json!({
        "slug": "good", "question": "Good?", "tickSize": "0.01", "minQty": 1, "maxQty": 10,
        "makerFeeRate": "0", "takerFeeRate": "0.01",
    });
    let cases = [
        ("slug", json!("Has Caps")),
        ("slug", json!("")),
        ("slug", json!("x".repeat(65))),
        ("question", json!("   ")),
        ("question", json!("q".repeat(301))),
        ("tickSize", json!("0.05")),
        ("tickSize", json!("0.010")),
        ("minQty", json!(0)),
        ("maxQty", json!(1_000_000_001u64)),
        ("takerFeeRate", json!("-0.01")),
        ("takerFeeRate", json!("1.5")),
        ("takerFeeRate", json!("0.00001")),
        ("makerFeeRate", json!("-0.02")),
        ("closesAt", json!("2001-01-01T00:00:00Z")),
        ("closesAt", json!("tomorrow")),
    ];
    for (field, value) in cases {
        let mut body = good.clone();
        body[field] = value.clone();
        let answer = app.post("/v1/markets", Some(&admin), body).await;
        assert_eq!(
            answer.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={value}"
        );
        let answer: Value = answer.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "VALIDATION_FAILED");
        assert_eq!(answer["error"]["details"]["field"], field, "{value}");
    }
    let mut max_below_min = good.clone();
    max_below_min["minQty"] = json!(20);
    let answer = app.post("/v1/markets", Some(&admin), max_below_min).await;
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["error"]["details"]["field"], "maxQty");
    for malformed in [
        json!({ "slug": "x" }),
        json!({ "slug": 5, "question": "q", "tickSize": "0.01" }),
        json!({ "slug": "x", "question": "q", "tickSize": "0.01", "minQty": -1 }),
        json!({ "slug": "x", "question": "q", "tickSize": "0.01", "extra": true }),
    ] {
        let answer = app.post("/v1/markets", Some(&admin), malformed).await;
        assert_eq!(
            error_code(answer, StatusCode::BAD_REQUEST).await,
            "BAD_REQUEST"
        );
    }
    assert_eq!(
        app.post("/v1/markets", Some(&admin), good.clone())
            .await
            .status(),
        StatusCode::CREATED
    );
    let taken = app.post("/v1/markets", Some(&admin), good).await;
    assert_eq!(error_code(taken, StatusCode::CONFLICT).await, "SLUG_TAKEN");
    let listed: Value = app.get("/v1/markets", None).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

async fn markets_are_listed_by_state_and_text_with_cursor_pagination(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let first = app
        .create_market(&admin, "btc-up", "Will Bitcoin rise?")
        .await;
    let second = app
        .create_market(&admin, "eth-up", "Will Ether rise?")
        .await;
    let third = app
        .create_market(&admin, "pct-100", "Will 100% turnout happen?")
        .await;
    let halted = app
        .post(
            &format!("/v1/markets/{}/halt", second["id"].as_str().unwrap()),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(halted.status(), StatusCode::OK);

    let page: Value = app
        .get("/v1/markets?limit=2", None)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["id"])
        .collect();
    assert_eq!(ids, [&third["id"], &second["id"]]);
    let cursor = page["nextCursor"].as_str().unwrap();
    let rest: Value = app
        .get(&format!("/v1/markets?limit=2&cursor={cursor}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["data"][0]["id"], first["id"]);
    assert_eq!(rest["nextCursor"], Value::Null);

    let by_state: Value = app
        .get("/v1/markets?state=HALTED", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_state["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_state["data"][0]["slug"], "eth-up");
    assert_eq!(by_state["data"][0]["state"], "HALTED");
    let open: Value = app
        .get("/v1/markets?state=open", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open["data"].as_array().unwrap().len(), 2);

    let by_text: Value = app
        .get("/v1/markets?q=BITCOIN", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_text["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_text["data"][0]["id"], first["id"]);
    // LIKE wildcards are matched literally.
    let percent: Value = app
        .get("/v1/markets?q=%25", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(percent["data"].as_array().unwrap().len(), 1);
    assert_eq!(percent["data"][0]["slug"], "pct-100");
    let both: Value = app
        .get("/v1/markets?q=rise&state=OPEN", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(both["data"].as_array().unwrap().len(), 1);

    for (query, field) in [
        ("state=SOON", "state"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=abc", "cursor"),
        ("q=%00", "q"),
    ] {
        let answer = app.get(&format!("/v1/markets?{query}"), None).await;
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let answer: Value = answer.json().await.unwrap();
        assert_eq!(answer["error"]["details"]["field"], field);
    }
    let answer = app.get("/v1/markets?limit=ten", None).await;
    assert_eq!(
        error_code(answer, StatusCode::BAD_REQUEST).await,
        "BAD_REQUEST"
    );
}

async fn a_market_halts_resumes_closes_and_resolves_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let market = app.create_market(&admin, "election", "Who wins?").await;
    let id = market["id"].as_str().unwrap();
    let step = |action: &'static str, body: Value| {
        let app = &app;
        let admin = admin.clone();
        async move {
            app.send(
                Method::POST,
                &format!("/v1/markets/{id}/{action}"),
                Some(&admin),
                Some(body),
            )
            .await
        }
    };
    let premature = step("resume", json!({})).await;
    assert_eq!(
        error_code(premature, StatusCode::CONFLICT).await,
        "INVALID_MARKET_TRANSITION"
    );
    let halted: Value = step("halt", json!({})).await.json().await.unwrap();
    assert_eq!(halted["state"], "HALTED");
    let twice = step("halt", json!({})).await;
    assert_eq!(
        error_code(twice, StatusCode::CONFLICT).await,
        "INVALID_MARKET_TRANSITION"
    );
    let resumed: Value = step("resume", json!({})).await.json().await.unwrap();
    assert_eq!(resumed["state"], "OPEN");
    let closed: Value = step("close", json!({})).await.json().await.unwrap();
    assert_eq!(closed["state"], "CLOSED");
    for (body, field) in [
        (json!({ "outcome": "MAYBE" }), "outcome"),
        (json!({ "outcome": "SPLIT" }), "yesPayout"),
        (
            json!({ "outcome": "SPLIT", "yesPayout": "1.5" }),
            "yesPayout",
        ),
        (json!({ "outcome": "YES", "yesPayout": "1" }), "yesPayout"),
    ] {
        let answer = step("resolve", body).await;
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let answer: Value = answer.json().await.unwrap();
        assert_eq!(answer["error"]["details"]["field"], field);
    }
    let resolved = step("resolve", json!({ "outcome": "SPLIT", "yesPayout": "0.4" })).await;
    assert_eq!(resolved.status(), StatusCode::OK);
    let resolved: Value = resolved.json().await.unwrap();
    assert_eq!(resolved["state"], "RESOLVED");
    assert_eq!(
        resolved["resolution"],
        json!({ "outcome": "SPLIT", "yesPayout": "0.40" })
    );
    let again = step("resolve", json!({ "outcome": "NO" })).await;
    assert_eq!(
        error_code(again, StatusCode::CONFLICT).await,
        "INVALID_MARKET_TRANSITION"
    );
    let read: Value = app
        .get("/v1/markets/election", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, resolved);
    let missing = app
        .post(
            "/v1/markets/00000000-0000-0000-0000-000000000000/halt",
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(missing, StatusCode::NOT_FOUND).await,
        "NOT_FOUND"
    );
}
