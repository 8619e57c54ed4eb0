//! A read-only gateway (no engine) behind real Redis serves the primary's streams — the same
//! frames with the same seqs — and the same REST reads, and refuses writes. Needs
//! `TEST_REDIS_URL` (CI sets it); without it the tests print a notice and pass. A primary whose
//! Redis is down keeps trading and counts the stream batches it could not send.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::app::Server;
use server::config::Role;
use uuid::Uuid;

use crate::helpers::{metric, spawn_app_with, Backend, TestApp};
use crate::ws_client::WsClient;

crate::on_both_databases!(
    a_gateway_through_redis_serves_the_primarys_streams_and_reads,
    a_gateway_resyncs_a_topic_whose_batch_redis_lost,
    a_primary_keeps_trading_while_redis_is_down_and_counts_what_it_dropped,
);

/// Waits until someone listens on `channel` (the gateway's relay), so no early batch is lost.
async fn relay_listening(redis_url: &str, channel: &str) {
    let client = redis::Client::open(redis_url).expect("redis url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to TEST_REDIS_URL");
    for _ in 0..100 {
        let (_, listeners): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut connection)
            .await
            .map(|mut pairs: Vec<(String, i64)>| pairs.remove(0))
            .expect("PUBSUB NUMSUB");
        if listeners > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway never subscribed to {channel}");
}

/// Every frame `client` receives until it has been quiet for a while.
async fn drain(client: &mut WsClient) -> Vec<Value> {
    let mut frames = Vec::new();
    while let Some(frame) = client.try_next(Duration::from_millis(1_500)).await {
        frames.push(frame);
    }
    frames
}

/// A primary publishing on a fresh channel of `TEST_REDIS_URL` and a gateway relaying it.
struct Pair {
    app: TestApp,
    gateway: Server,
    redis_url: String,
    channel: String,
}

/// The pair, or `None` when Redis or the backend is not available here.
async fn primary_and_gateway(backend: Backend) -> Option<Pair> {
    let Ok(redis_url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!("TEST_REDIS_URL is not set: skipping a Redis test");
        return None;
    };
    let channel = format!("predex-test-{}", Uuid::new_v4().simple());
    let app = spawn_app_with(backend, |config| {
        config.streams.redis_url = Some(redis_url.clone());
        config.streams.redis_channel = channel.clone();
    })
    .await?;
    let mut gateway_config = app.config.clone();
    gateway_config.streams.role = Role::Gateway;
    gateway_config.admin = None;
    let gateway = server::app::start(gateway_config)
        .await
        .expect("gateway starts");
    relay_listening(&redis_url, &channel).await;
    Some(Pair {
        app,
        gateway,
        redis_url,
        channel,
    })
}

async fn a_gateway_through_redis_serves_the_primarys_streams_and_reads(backend: Backend) {
    let Some(Pair { app, gateway, .. }) = primary_and_gateway(backend).await else {
        return;
    };
    let gateway_addr = gateway.local_addr();

    let (_admin, market, alice, bob) = app.market_with_two_traders("100000").await;
    let id = market["id"].as_str().unwrap().to_owned();
    let topics = [
        format!("book:{id}"),
        format!("trades:{id}"),
        format!("ticker:{id}"),
    ];
    let mut on_primary = WsClient::connect(&app, Some(&alice)).await;
    let mut on_gateway = WsClient::connect_to(gateway_addr, Some(&alice)).await;
    for client in [&mut on_primary, &mut on_gateway] {
        for topic in topics
            .iter()
            .map(String::as_str)
            .chain(["orders", "fills", "balances"])
        {
            client
                .send(json!({ "op": "subscribe", "topic": topic }))
                .await;
        }
    }

    // Both answer every subscription (the snapshots included) before the flow starts.
    let mut initial = Vec::new();
    for client in [&mut on_primary, &mut on_gateway] {
        let mut frames = Vec::new();
        while frames.len() < 11 {
            frames.push(client.next().await);
        }
        initial.push(frames);
    }
    assert_eq!(initial[0], initial[1]);

    let mut rng = StdRng::seed_from_u64(11);
    for step in 0..40 {
        let who = if step % 2 == 0 { &alice } else { &bob };
        let order = json!({
            "marketId": id, "type": "LIMIT", "side": "BUY",
            "outcome": if rng.gen_bool(0.5) { "YES" } else { "NO" },
            "price": format!("0.{:02}", rng.gen_range(45..=55)), "qty": rng.gen_range(1..=9),
        });
        let placed = app.post("/v1/orders", Some(who), order).await;
        assert_eq!(placed.status(), StatusCode::CREATED);
    }
    let from_primary = drain(&mut on_primary).await;
    let from_gateway = drain(&mut on_gateway).await;
    assert!(from_primary.len() > 80, "{}", from_primary.len());
    assert!(from_primary.iter().any(|frame| frame["topic"] == "fills"));
    assert_eq!(from_gateway, from_primary);

    // REST reads on the gateway come from the database and agree with the primary.
    let gateway_url = |path: &str| format!("http://{gateway_addr}{path}");
    for path in [
        format!("/v1/markets/{id}/book"),
        format!("/v1/markets/{id}/trades"),
        format!("/v1/markets/{id}/ticker"),
    ] {
        let primary: Value = app.get(&path, None).await.json().await.unwrap();
        let read = app.client.get(gateway_url(&path)).send().await.unwrap();
        assert_eq!(read.status(), StatusCode::OK, "{path}");
        assert_eq!(read.json::<Value>().await.unwrap(), primary, "{path}");
    }
    // The caller's orders read the same, without queue positions (there is no engine to ask).
    let read = app
        .client
        .get(gateway_url("/v1/orders?status=open"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let on_gateway: Value = read.json().await.unwrap();
    let mut on_primary: Value = app
        .get("/v1/orders?status=open", Some(&alice))
        .await
        .json()
        .await
        .unwrap();
    let open = on_primary["data"].as_array_mut().unwrap();
    assert!(!open.is_empty());
    for order in open.iter_mut() {
        assert!(order["queuePosition"].is_u64());
        order["queuePosition"] = Value::Null;
    }
    assert_eq!(on_gateway, on_primary);
    // Positions are marked at the committed mid on both.
    for path in ["/v1/portfolio/positions", "/v1/portfolio/balance"] {
        let primary: Value = app.get(path, Some(&alice)).await.json().await.unwrap();
        let read = app
            .client
            .get(gateway_url(path))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), StatusCode::OK, "{path}");
        assert_eq!(read.json::<Value>().await.unwrap(), primary, "{path}");
    }
    // Writes are refused with a clear code, and nothing changes.
    let refused = app
        .client
        .post(gateway_url("/v1/orders"))
        .bearer_auth(&alice)
        .json(
            &json!({ "marketId": id, "side": "BUY", "outcome": "YES", "type": "LIMIT",
                       "price": "0.10", "qty": 1 }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "READ_ONLY");
    let ready = app.client.get(gateway_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    gateway.shutdown().await;
}

/// A closed port: every connection to "Redis" is refused.
const REDIS_DOWN: &str = "redis://127.0.0.1:1";

async fn a_primary_keeps_trading_while_redis_is_down_and_counts_what_it_dropped(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.streams.redis_url = Some(REDIS_DOWN.into());
    })
    .await
    else {
        return;
    };
    let (_admin, market, alice, bob) = app.market_with_two_traders("1000").await;
    let started = std::time::Instant::now();
    for (index, who) in [&alice, &bob].into_iter().cycle().take(40).enumerate() {
        let outcome = if index % 2 == 0 { "YES" } else { "NO" };
        let order = json!({ "marketId": market["id"], "side": "BUY", "outcome": outcome,
                            "type": "LIMIT", "price": "0.50", "qty": 1 });
        let placed = app.post("/v1/orders", Some(who), order).await;
        assert_eq!(placed.status(), StatusCode::CREATED);
    }
    // Nothing waited on a Redis that never answers (a connection attempt each would be seen).
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // The sink's task counts as it goes: give it a moment to reach the last batch.
    let mut metrics = String::new();
    for _ in 0..40 {
        metrics = app.get("/metrics", None).await.text().await.unwrap();
        if metric(&metrics, "predex_redis_batches_dropped_total") >= 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dropped = metric(&metrics, "predex_redis_batches_dropped_total");
    assert!(
        dropped >= 40,
        "every batch was dropped and counted: {dropped}"
    );
    assert_eq!(metric(&metrics, "predex_stream_batches_dropped_total"), 0);
    // Local clients were not affected: the trades are on the local stream's REST side.
    let trades: Value = app
        .get(
            &format!("/v1/markets/{}/trades", market["id"].as_str().unwrap()),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(trades["data"].as_array().unwrap().len(), 20);
}

/// Pub/sub keeps nothing: a batch lost while a link is down reaches the gateway as a seq gap,
/// and its client resyncs the topic from the committed state (a snapshot flagged `resync`),
/// then follows the primary again.
async fn a_gateway_resyncs_a_topic_whose_batch_redis_lost(backend: Backend) {
    let Some(Pair {
        app,
        gateway,
        redis_url,
        channel,
    }) = primary_and_gateway(backend).await
    else {
        return;
    };
    let (_admin, market, alice, _bob) = app.market_with_two_traders("100").await;
    let id = market["id"].as_str().unwrap().to_owned();
    let topic = format!("book:{id}");
    let mut client = WsClient::connect_to(gateway.local_addr(), None).await;
    client.subscribe(&topic, None).await;
    let snapshot = client.next().await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    let seq = snapshot["seq"].as_u64().unwrap();

    // The next batch on the wire skips one: the one in between was lost.
    let lost = json!([{ "topic": topic, "seq": seq + 2, "text": "{}" }]).to_string();
    let redis = redis::Client::open(redis_url.as_str()).expect("redis url");
    let mut connection = redis
        .get_multiplexed_async_connection()
        .await
        .expect("connect to TEST_REDIS_URL");
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(lost)
        .query_async(&mut connection)
        .await
        .expect("PUBLISH");
    let resync = client.next().await;
    assert_eq!(
        (&resync["type"], &resync["resync"], &resync["seq"]),
        (&json!("snapshot"), &json!(true), &json!(seq)),
        "{resync}"
    );
    // A real order still reaches it, in order.
    let order = json!({ "marketId": id, "side": "BUY", "outcome": "YES", "type": "LIMIT",
                        "price": "0.30", "qty": 2 });
    assert_eq!(
        app.post("/v1/orders", Some(&alice), order).await.status(),
        StatusCode::CREATED
    );
    let delta = client.next().await;
    assert_eq!(delta["type"], "delta", "{delta}");
    gateway.shutdown().await;
}
