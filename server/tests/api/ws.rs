//! WebSocket streams (`/v1/ws`): snapshot + deltas rebuild the REST book, resume replays
//! exactly what was missed (also across a restart), slow consumers are cut off alone, dead
//! connections are closed, private topics stay private, revoked credentials close their
//! sockets, and protocol mistakes are answered.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, token, Backend, TestApp};
use crate::ws_client::{BookMirror, Ended, WsClient};

crate::on_both_databases!(
    a_book_rebuilt_from_snapshot_and_deltas_equals_rest_depth,
    resume_replays_exactly_the_missed_messages_even_across_a_restart,
    a_slow_consumer_is_cut_off_while_a_fast_one_keeps_up,
    private_topics_carry_only_their_users_data,
    a_revoked_credential_closes_its_sockets_on_this_instance_and_on_a_gateway,
    a_subscribe_loop_is_rate_limited_per_connection,
    traders_who_do_not_listen_leave_nothing_in_the_hub,
);

async fn place(app: &TestApp, who: &str, market: &Value, order: Value) -> Value {
    let mut order = order;
    order["marketId"] = market["id"].clone();
    if order.get("type").is_none() {
        order["type"] = json!("LIMIT");
    }
    let answer = app.post("/v1/orders", Some(who), order).await;
    assert_eq!(answer.status(), StatusCode::CREATED);
    answer.json().await.unwrap()
}

async fn rest_book(app: &TestApp, id: &str) -> Value {
    let answer = app
        .get(&format!("/v1/markets/{id}/book?depth=500"), None)
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    answer.json().await.unwrap()
}

/// A random order from `rng`: limit orders on both outcomes and sides around 0.50, some
/// crossing, some resting.
fn random_order(rng: &mut StdRng) -> Value {
    let side = if rng.gen_bool(0.5) { "BUY" } else { "SELL" };
    let outcome = if rng.gen_bool(0.5) { "YES" } else { "NO" };
    let cents: u32 = rng.gen_range(40..=60);
    json!({
        "side": side, "outcome": outcome, "price": format!("0.{cents:02}"),
        "qty": rng.gen_range(1..=20), "timeInForce": "GTC",
    })
}

/// Reads book messages into `mirror` until it reaches `seq`.
async fn follow_book(client: &mut WsClient, mirror: &mut BookMirror, seq: u64) {
    while mirror.seq < seq {
        let message = client.next().await;
        mirror.apply(&message);
    }
}

async fn a_book_rebuilt_from_snapshot_and_deltas_equals_rest_depth(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_admin, market, alice, bob) = app.market_with_two_traders("100000").await;
    let id = market["id"].as_str().unwrap().to_owned();
    // Shares to sell: both split cash into YES + NO.
    for who in [&alice, &bob] {
        let split = app
            .post(
                &format!("/v1/markets/{id}/split"),
                Some(who),
                json!({ "qty": 500 }),
            )
            .await;
        assert_eq!(split.status(), StatusCode::OK);
    }
    place(
        &app,
        &alice,
        &market,
        json!({ "side": "BUY", "outcome": "YES", "price": "0.45", "qty": 5 }),
    )
    .await;

    // One client joins before the flow (snapshot of a non-empty book), one by slug.
    let mut early = WsClient::connect(&app, None).await;
    let subscribed = early.subscribe(&format!("book:{id}"), None).await;
    assert_eq!(subscribed["topic"], format!("book:{id}"));
    let mut mirror = BookMirror::default();
    let snapshot = early.next().await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["seq"], subscribed["seq"]);
    assert!(snapshot.get("resync").is_none());
    mirror.apply(&snapshot);
    assert_eq!(mirror.as_rest(&id), rest_book(&app, &id).await);

    let mut trades = WsClient::connect(&app, None).await;
    let trades_from = trades.subscribe("trades:rain", None).await["seq"]
        .as_u64()
        .unwrap();
    assert_eq!(trades.next().await["type"], "snapshot");

    let mut rng = StdRng::seed_from_u64(7);
    let mut resting = Vec::new();
    for step in 0..120 {
        let who = if step % 2 == 0 { &alice } else { &bob };
        if step % 9 == 8 && !resting.is_empty() {
            let (owner, order): (String, String) =
                resting.swap_remove(rng.gen_range(0..resting.len()));
            let cancelled = app
                .send(
                    reqwest::Method::DELETE,
                    &format!("/v1/orders/{order}"),
                    Some(&owner),
                    None,
                )
                .await;
            assert!(matches!(
                cancelled.status(),
                StatusCode::OK | StatusCode::NOT_FOUND
            ));
            continue;
        }
        let answer = app
            .post("/v1/orders", Some(who), {
                let mut order = random_order(&mut rng);
                order["marketId"] = json!(id);
                order["type"] = json!("LIMIT");
                order
            })
            .await;
        // Some random orders are refused (not enough shares to sell): fine, nothing changes.
        if answer.status() == StatusCode::CREATED {
            let body: Value = answer.json().await.unwrap();
            if body["order"]["remainingQty"].as_u64() > Some(0) {
                resting.push((
                    who.clone(),
                    body["order"]["id"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    let rest = rest_book(&app, &id).await;
    let final_seq = rest["seq"].as_u64().unwrap();
    assert!(
        final_seq > subscribed["seq"].as_u64().unwrap() + 50,
        "{rest}"
    );
    follow_book(&mut early, &mut mirror, final_seq).await;
    assert_eq!(mirror.as_rest(&id), rest);

    // A late client's snapshot agrees too.
    let mut late = WsClient::connect(&app, None).await;
    late.subscribe(&format!("book:{id}"), None).await;
    let mut late_mirror = BookMirror::default();
    late_mirror.apply(&late.next().await);
    assert_eq!(late_mirror.as_rest(&id), rest);

    // The trades stream holds every trade, in order, with contiguous seqs.
    let listed = app
        .get(&format!("/v1/markets/{id}/trades?limit=500"), None)
        .await;
    let listed: Value = listed.json().await.unwrap();
    let mut expected: Vec<Value> = listed["data"].as_array().unwrap().clone();
    expected.reverse();
    let mut streamed = Vec::new();
    let mut seq = trades_from;
    while streamed.len() < expected.len() {
        let message = trades.next().await;
        assert_eq!(message["type"], "event");
        assert_eq!(message["seq"].as_u64(), Some(seq + 1));
        seq += 1;
        streamed.extend(
            message["data"]["trades"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
    }
    assert!(!expected.is_empty());
    assert_eq!(streamed, expected);
}

async fn resume_replays_exactly_the_missed_messages_even_across_a_restart(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    let (_admin, market, alice, _bob) = app.market_with_two_traders("1000").await;
    let id = market["id"].as_str().unwrap().to_owned();
    let topic = format!("book:{id}");
    let mut steady = WsClient::connect(&app, None).await;
    steady.subscribe(&topic, None).await;
    steady.next().await; // snapshot
    let mut leaving = WsClient::connect(&app, None).await;
    leaving.subscribe(&topic, None).await;
    leaving.next().await;
    for cents in 30..33 {
        place(
            &app,
            &alice,
            &market,
            json!({ "side": "BUY", "outcome": "YES", "price": format!("0.{cents}"), "qty": 1 }),
        )
        .await;
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(leaving.next().await);
    }
    let last_seen = seen[2]["seq"].as_u64().unwrap();
    leaving.close().await;

    for cents in 33..38 {
        place(
            &app,
            &alice,
            &market,
            json!({ "side": "BUY", "outcome": "YES", "price": format!("0.{cents}"), "qty": 1 }),
        )
        .await;
    }
    let mut all = Vec::new();
    for _ in 0..8 {
        all.push(steady.next().await);
    }
    let mut back = WsClient::connect(&app, None).await;
    let subscribed = back.subscribe(&topic, Some(last_seen)).await;
    assert_eq!(subscribed["seq"].as_u64(), Some(last_seen));
    let mut replayed = Vec::new();
    for _ in 0..5 {
        replayed.push(back.next().await);
    }
    assert_eq!(replayed, all[3..].to_vec());
    assert_eq!(
        back.try_next(Duration::from_millis(300)).await,
        None,
        "nothing more"
    );

    // A seq from the future cannot be resumed: a snapshot flagged as a resync.
    let mut confused = WsClient::connect(&app, None).await;
    let current = all[7]["seq"].as_u64().unwrap();
    confused.subscribe(&topic, Some(current + 10)).await;
    let resync = confused.next().await;
    assert_eq!(
        (resync["type"].as_str(), resync["resync"].as_bool()),
        (Some("snapshot"), Some(true))
    );
    assert_eq!(resync["seq"].as_u64(), Some(current));

    // Seqs come from the journal: after a restart, resuming at the last seq misses nothing,
    // and the next change continues the count.
    app.restart().await;
    let mut after = WsClient::connect(&app, None).await;
    let subscribed = after.subscribe(&topic, Some(current)).await;
    assert_eq!(subscribed["seq"].as_u64(), Some(current));
    place(
        &app,
        &alice,
        &market,
        json!({ "side": "BUY", "outcome": "YES", "price": "0.20", "qty": 1 }),
    )
    .await;
    let next = after.next().await;
    assert_eq!(
        (next["type"].as_str(), next["seq"].as_u64()),
        (Some("delta"), Some(current + 1))
    );
    assert_eq!(
        next["data"]["changes"],
        json!([{ "side": "BID", "price": "0.20", "qty": 1 }])
    );
    // Resuming from before the restart: the history is gone, so a resync snapshot.
    let mut old = WsClient::connect(&app, None).await;
    old.subscribe(&topic, Some(last_seen)).await;
    let snapshot = old.next().await;
    assert_eq!(snapshot["resync"], json!(true));
    assert_eq!(snapshot["seq"].as_u64(), Some(current + 1));
}

async fn a_slow_consumer_is_cut_off_while_a_fast_one_keeps_up(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.streams.send_queue = 16;
        // Only the full queue may end the slow connection here, not its silence.
        config.streams.idle_timeout = Duration::from_secs(600);
    })
    .await
    else {
        return;
    };
    let (_admin, market, alice, _bob) = app.market_with_two_traders("100000").await;
    let id = market["id"].as_str().unwrap().to_owned();
    let topic = format!("book:{id}");
    let mut fast = WsClient::connect(&app, Some(&alice)).await;
    let book_from = fast.subscribe(&topic, None).await["seq"].as_u64().unwrap();
    fast.next().await;
    let orders_from = fast.subscribe("orders", None).await["seq"]
        .as_u64()
        .unwrap();
    fast.next().await;
    // Subscribes to the same, then never reads. Order messages carry every order a command
    // touched, so each round below sends it about 100 KB.
    let mut slow = WsClient::connect_small_window(&app, &alice).await;
    for topic in [topic.as_str(), "orders"] {
        slow.subscribe(topic, None).await;
        assert_eq!(slow.next().await["type"], "snapshot");
    }

    let (seqs_tx, mut seqs_rx) = tokio::sync::watch::channel((book_from, orders_from));
    let reader = tokio::spawn(async move {
        let mut mirror = BookMirror {
            seq: book_from,
            ..BookMirror::default()
        };
        let mut orders_seq = orders_from;
        loop {
            let message = fast.next().await;
            if message["topic"] == "orders" {
                assert_eq!(message["seq"].as_u64(), Some(orders_seq + 1), "{message}");
                orders_seq += 1;
            } else {
                mirror.apply(&message);
            }
            let _ = seqs_tx.send((mirror.seq, orders_seq));
        }
    });
    // Rounds of 98 resting orders and a cancel-all until the slow client is cut off.
    let place: Vec<Value> = (1..99)
        .map(|cents| {
            json!({ "marketId": id, "side": "BUY", "outcome": "YES", "type": "LIMIT",
                             "price": format!("0.{cents:02}"), "qty": 1 })
        })
        .collect();
    let mut rounds = 0;
    let slow_cut = "predex_ws_slow_consumers_total 1\n";
    while !app
        .get("/metrics", None)
        .await
        .text()
        .await
        .unwrap()
        .contains(slow_cut)
    {
        rounds += 1;
        assert!(rounds <= 300, "the slow client was never cut off");
        let placed = app
            .post("/v1/orders/batch", Some(&alice), json!({ "place": place }))
            .await;
        assert_eq!(placed.status(), StatusCode::OK);
        let cancelled = app
            .post("/v1/orders/cancel-all", Some(&alice), json!({}))
            .await;
        assert_eq!(cancelled.status(), StatusCode::OK);
    }
    // The fast client got every message, in order (seqs checked as they arrive).
    let final_seq = rest_book(&app, &id).await["seq"].as_u64().unwrap();
    assert_eq!(final_seq, book_from + 2 * rounds);
    let all_in = |seqs: &(u64, u64)| *seqs == (final_seq, orders_from + 2 * rounds);
    tokio::time::timeout(Duration::from_secs(30), seqs_rx.wait_for(all_in))
        .await
        .expect("the fast client keeps up")
        .expect("reader alive");
    assert_eq!(
        slow.until_end(Duration::from_secs(30)).await,
        Ended::Closed(4008)
    );
    reader.abort();
}

async fn private_topics_carry_only_their_users_data(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_admin, market, alice, bob) = app.market_with_two_traders("1000").await;
    let mut anonymous = WsClient::connect(&app, None).await;
    anonymous
        .send(json!({ "op": "subscribe", "topic": "orders" }))
        .await;
    let refused = anonymous.next().await;
    assert_eq!(
        (
            refused["type"].as_str(),
            refused["code"].as_str(),
            refused["topic"].as_str()
        ),
        (Some("error"), Some("UNAUTHENTICATED"), Some("orders"))
    );
    // Still open, and an `auth` op upgrades it.
    anonymous.send(json!({ "op": "auth", "token": bob })).await;
    assert_eq!(anonymous.next().await["type"], "authenticated");

    let mut streams = Vec::new();
    for token in [&alice, &bob] {
        let mut client = WsClient::connect(&app, Some(token)).await;
        for topic in ["orders", "fills", "balances", "positions"] {
            let subscribed = client.subscribe(topic, None).await;
            assert_eq!(subscribed["topic"], topic);
            if topic != "fills" {
                assert_eq!(client.next().await["type"], "snapshot", "{topic}");
            }
        }
        streams.push(client);
    }
    let alice_order = place(
        &app,
        &alice,
        &market,
        json!({ "side": "BUY", "outcome": "YES", "price": "0.60", "qty": 10 }),
    )
    .await;
    let bob_order = place(
        &app,
        &bob,
        &market,
        json!({ "side": "BUY", "outcome": "NO", "price": "0.40", "qty": 4 }),
    )
    .await;
    let alice_id = alice_order["order"]["id"].as_str().unwrap();
    let bob_id = bob_order["order"]["id"].as_str().unwrap();

    // Alice: her order (accepted, then partly filled), her fill, her balances and position.
    let (mut alice_seen, mut bob_seen) = (Vec::new(), Vec::new());
    for (client, (seen, count)) in streams
        .iter_mut()
        .zip([(&mut alice_seen, 6), (&mut bob_seen, 4)])
    {
        for _ in 0..count {
            seen.push(client.next().await);
        }
        assert_eq!(client.try_next(Duration::from_millis(300)).await, None);
    }
    let topics = |seen: &Vec<Value>| {
        let mut topics: Vec<String> = seen
            .iter()
            .map(|m| m["topic"].as_str().unwrap().to_owned())
            .collect();
        topics.sort();
        topics
    };
    assert_eq!(
        topics(&alice_seen),
        [
            "balances",
            "balances",
            "fills",
            "orders",
            "orders",
            "positions"
        ]
    );
    assert_eq!(
        topics(&bob_seen),
        ["balances", "fills", "orders", "positions"]
    );
    for (seen, own, other) in [
        (&alice_seen, alice_id, bob_id),
        (&bob_seen, bob_id, alice_id),
    ] {
        let text = serde_json::to_string(seen).unwrap();
        assert!(text.contains(own));
        assert!(!text.contains(other), "another user's order leaked: {text}");
    }
    let fill = bob_seen.iter().find(|m| m["topic"] == "fills").unwrap();
    assert_eq!(fill["data"]["fills"][0]["orderId"], bob_id);
    assert_eq!(fill["data"]["fills"][0]["role"], "TAKER");
    assert_eq!(fill["data"]["fills"][0]["price"], "0.40");
    let last_balance = bob_seen
        .iter()
        .rev()
        .find(|m| m["topic"] == "balances")
        .unwrap();
    assert_eq!(last_balance["data"], app.balance(&bob).await);
    let position = alice_seen
        .iter()
        .find(|m| m["topic"] == "positions")
        .unwrap();
    assert_eq!(
        position["data"]["positions"],
        json!([{ "marketId": market["id"], "yesShares": 4, "noShares": 0 }])
    );
}

#[tokio::test]
async fn protocol_mistakes_are_answered_and_the_socket_stays_open() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let admin = app.admin_token().await;
    app.create_market(&admin, "rain", "Rain tomorrow?").await;
    let mut client = WsClient::connect(&app, None).await;
    for (frame, code) in [
        ("not json", "BAD_REQUEST"),
        (r#"{"op": "dance"}"#, "BAD_REQUEST"),
        (r#"{"op": "subscribe"}"#, "BAD_REQUEST"),
        (
            r#"{"op": "subscribe", "topic": "book:rain", "fromSeq": -1}"#,
            "BAD_REQUEST",
        ),
        (
            r#"{"op": "subscribe", "topic": "weather"}"#,
            "VALIDATION_FAILED",
        ),
        (
            r#"{"op": "subscribe", "topic": "candles:rain"}"#,
            "VALIDATION_FAILED",
        ),
        (
            r#"{"op": "subscribe", "topic": "book:no-such-market"}"#,
            "NOT_FOUND",
        ),
        (r#"{"op": "auth", "token": "forged"}"#, "UNAUTHENTICATED"),
    ] {
        client.send_raw(frame).await;
        let answer = client.next().await;
        assert_eq!(
            (answer["type"].as_str(), answer["code"].as_str()),
            (Some("error"), Some(code)),
            "{frame}"
        );
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let subscribed = client.subscribe("ticker:rain", None).await;
    assert!(subscribed["topic"].as_str().unwrap().starts_with("ticker:"));
    let ticker = client.next().await;
    assert_eq!(ticker["data"]["bestBid"], Value::Null);
    let unsubscribed = {
        client
            .send(json!({ "op": "unsubscribe", "topic": "ticker:rain" }))
            .await;
        client.next().await
    };
    assert_eq!(unsubscribed["type"], "unsubscribed");

    // Bad credentials fail the upgrade; a cookie only counts from an allowed Origin.
    assert_eq!(
        WsClient::connect_with(&app, &[("authorization", "Bearer forged")])
            .await
            .err(),
        Some(401)
    );
    let login = app
        .login(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
        .await;
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("predex_access="))
        .map(|value| value.split(';').next().unwrap().to_owned())
        .expect("access cookie");
    assert_eq!(
        WsClient::connect_with(
            &app,
            &[("cookie", &cookie), ("origin", "https://evil.example")]
        )
        .await
        .err(),
        Some(403)
    );
    let mut by_cookie = WsClient::connect_with(&app, &[("cookie", &cookie)])
        .await
        .expect("no Origin: not a browser");
    by_cookie.subscribe("balances", None).await;
}

#[tokio::test]
async fn a_connection_that_stops_answering_pings_is_closed() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |config| {
        config.streams.ping_interval = Duration::from_millis(200);
        config.streams.idle_timeout = Duration::from_millis(700);
    })
    .await
    else {
        return;
    };
    // tungstenite answers pings only while it is read: a client that does not read is dead
    // to the server.
    let mut client = WsClient::connect(&app, None).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        client.until_end(Duration::from_secs(5)).await,
        Ended::Closed(4000)
    );
    // One that keeps reading (and so answering) stays.
    let mut alive = WsClient::connect(&app, None).await;
    assert_eq!(alive.try_next(Duration::from_millis(1_500)).await, None);
    alive.send_raw("still here?").await;
    assert_eq!(alive.next().await["code"], "BAD_REQUEST");
}

/// Logout, a reused refresh token and a revoked API key each close the sockets opened with that
/// credential (4001) within seconds, here and on a gateway (which learns by polling the
/// database); a socket of another credential of the same user stays open and private.
async fn a_revoked_credential_closes_its_sockets_on_this_instance_and_on_a_gateway(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // A gateway streams from Redis: with `TEST_REDIS_URL` (CI sets it), one runs beside.
    let gateway = match std::env::var("TEST_REDIS_URL") {
        Ok(url) => {
            let mut config = app.config.clone();
            config.streams.role = server::config::Role::Gateway;
            config.streams.redis_url = Some(url);
            config.streams.redis_channel = format!("predex-test-{}", uuid::Uuid::new_v4());
            config.admin = None;
            Some(server::app::start(config).await.expect("gateway starts"))
        }
        Err(_) => None,
    };
    let (_, login) = app.signed_up("alice@example.com").await;
    let session = token(&login, "accessToken");
    let other_login: Value = app
        .login("alice@example.com", crate::helpers::PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let other_session = token(&other_login, "accessToken");
    let key: Value = app
        .post("/v1/api-keys", Some(&session), json!({ "name": "bot" }))
        .await
        .json()
        .await
        .unwrap();

    async fn private_socket(addr: std::net::SocketAddr, token: &str) -> WsClient {
        let mut socket = WsClient::connect_to(addr, Some(token)).await;
        socket.subscribe("orders", None).await;
        socket
    }
    let mut by_session = private_socket(app.addr, &session).await;
    let mut by_other_session = private_socket(app.addr, &other_session).await;
    let mut on_gateway = match &gateway {
        Some(gateway) => Some(private_socket(gateway.local_addr(), &session).await),
        None => None,
    };
    let mut by_key = WsClient::connect_with(&app, &[("x-api-key", key["key"].as_str().unwrap())])
        .await
        .expect("an API key opens a socket");
    by_key.subscribe("orders", None).await;

    // Logout: the session's sockets close, here and on the gateway; the other session's not.
    let logout = app.post("/v1/auth/logout", Some(&session), json!({})).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let wait = Duration::from_secs(5);
    assert_eq!(by_session.until_end(wait).await, Ended::Closed(4001));
    if let Some(socket) = on_gateway.as_mut() {
        assert_eq!(socket.until_end(wait).await, Ended::Closed(4001));
    }
    while by_other_session
        .try_next(Duration::from_millis(300))
        .await
        .is_some()
    {}
    by_other_session.subscribe("fills", None).await;

    // A refresh token used twice revokes its session: the other session's socket closes.
    let other_refresh = token(&other_login, "refreshToken");
    for expected in [StatusCode::OK, StatusCode::UNAUTHORIZED] {
        let refreshed = app
            .post(
                "/v1/auth/refresh",
                None,
                json!({ "refreshToken": other_refresh }),
            )
            .await;
        assert_eq!(refreshed.status(), expected);
    }
    assert_eq!(by_other_session.until_end(wait).await, Ended::Closed(4001));

    // Revoking the API key (from a new session) closes the key's socket.
    let login: Value = app
        .login("alice@example.com", crate::helpers::PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let fresh = token(&login, "accessToken");
    let path = format!("/v1/api-keys/{}", key["id"].as_str().unwrap());
    let revoked = app
        .send(reqwest::Method::DELETE, &path, Some(&fresh), None)
        .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(by_key.until_end(wait).await, Ended::Closed(4001));
    if let Some(gateway) = gateway {
        gateway.shutdown().await;
    }
}

/// A client that loops on `subscribe positions` (a database read each) gets `RATE_LIMITED`
/// past its budget (a burst of one per possible topic, then 10 a second); the socket stays
/// open and works again once the budget refills.
async fn a_subscribe_loop_is_rate_limited_per_connection(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, login) = app.signed_up("alice@example.com").await;
    let alice = token(&login, "accessToken");
    let mut socket = WsClient::connect(&app, Some(&alice)).await;
    let sent = 300;
    for _ in 0..sent {
        socket
            .send(json!({ "op": "subscribe", "topic": "positions" }))
            .await;
    }
    let (mut subscribed, mut limited) = (0, 0);
    while subscribed + limited < sent {
        let frame = socket.next().await;
        match (frame["type"].as_str(), frame["code"].as_str()) {
            (Some("subscribed"), _) => subscribed += 1,
            (Some("error"), Some("RATE_LIMITED")) => limited += 1,
            (Some("snapshot"), _) => {}
            other => panic!("unexpected frame {other:?}: {frame}"),
        }
    }
    assert!(subscribed >= 200, "the first burst runs: {subscribed}");
    assert!(
        limited >= 50,
        "the loop is cut down: {limited} refused of {sent}"
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    while socket.try_next(Duration::from_millis(200)).await.is_some() {}
    socket.subscribe("orders", None).await;
}

/// Private topics live in the hub only while someone listens: two users who trade without a
/// socket leave the market's three topics there and nothing of theirs; one who listens adds
/// their topic until they leave.
async fn traders_who_do_not_listen_leave_nothing_in_the_hub(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_admin, market, alice, bob) = app.market_with_two_traders("100").await;
    for (who, outcome) in [(&alice, "YES"), (&bob, "NO"), (&alice, "YES"), (&bob, "NO")] {
        place(
            &app,
            who,
            &market,
            json!({ "side": "BUY", "outcome": outcome, "price": "0.50", "qty": 1 }),
        )
        .await;
    }
    let topics = |app: &TestApp| {
        let url = app.url("/metrics");
        let client = app.client.clone();
        async move {
            let text = client.get(url).send().await.unwrap().text().await.unwrap();
            crate::helpers::metric(&text, "predex_stream_topics")
        }
    };
    assert_eq!(
        topics(&app).await,
        3,
        "book, trades and ticker of the one market"
    );
    let mut socket = WsClient::connect(&app, Some(&alice)).await;
    socket.subscribe("orders", None).await;
    assert_eq!(topics(&app).await, 4);
    socket.close().await;
    for _ in 0..50 {
        if topics(&app).await == 3 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("alice's topic outlived her socket");
}
