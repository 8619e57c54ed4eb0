//! `Idempotency-Key`: a retried POST gets the saved answer and runs once; the same key with
//! another body is 422; keys are per user; auth endpoints ignore the header; a refusal to run
//! (429) is not saved; a request whose client hung up still finishes and saves; a claim left
//! by a request that died is taken over, answered from its commit if it committed; a created
//! API key is never stored.

use reqwest::StatusCode;
use serde_json::{json, Value};

use std::num::NonZeroU32;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::helpers::{spawn_app, spawn_app_with, token, Backend, TestApp};

crate::on_both_databases!(
    a_retried_post_is_answered_once_and_a_reused_key_is_refused,
    a_rate_limited_request_is_not_saved_and_its_retry_runs,
    a_request_whose_client_hung_up_is_finished_and_saved,
    a_claim_left_by_a_dead_request_is_answered_from_its_commit_or_run_once,
    a_created_api_key_is_answered_once_and_never_stored,
    expired_keys_are_purged_by_the_server_on_its_own,
);

async fn post_keyed(
    app: &TestApp,
    who: &str,
    key: &str,
    path: &str,
    body: &Value,
) -> (StatusCode, bool, Value) {
    let answer = app
        .client
        .post(app.url(path))
        .bearer_auth(who)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let replayed = answer.headers().contains_key("idempotent-replayed");
    (status, replayed, answer.json().await.unwrap())
}

async fn a_retried_post_is_answered_once_and_a_reused_key_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let (alice_id, alice) = app.signed_up("alice@example.com").await;
    let (_, bob) = app.signed_up("bob@example.com").await;
    let (alice, bob) = (token(&alice, "accessToken"), token(&bob, "accessToken"));
    assert_eq!(
        app.deposit(&admin, &alice_id, "100").await.status(),
        StatusCode::CREATED
    );
    let market = app.create_market(&admin, "rain", "Rain tomorrow?").await;
    let order = json!({ "marketId": market["id"], "side": "BUY", "outcome": "YES",
                        "type": "LIMIT", "price": "0.10", "qty": 5 });

    let first = post_keyed(&app, &alice, "order-1", "/v1/orders", &order).await;
    assert_eq!((first.0, first.1), (StatusCode::CREATED, false));
    let retry = post_keyed(&app, &alice, "order-1", "/v1/orders", &order).await;
    assert_eq!((retry.0, retry.1), (StatusCode::CREATED, true));
    assert_eq!(retry.2, first.2);
    let open: Value = app
        .get("/v1/orders?status=open", Some(&alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open["data"].as_array().unwrap().len(), 1, "placed once");

    let other_body = json!({ "marketId": market["id"], "side": "BUY", "outcome": "YES",
                             "type": "LIMIT", "price": "0.11", "qty": 5 });
    let reused = post_keyed(&app, &alice, "order-1", "/v1/orders", &other_body).await;
    assert_eq!(reused.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.2["error"]["code"], "IDEMPOTENCY_KEY_REUSED");

    // A refused request is an answer too: the retry gets the same refusal, decided once.
    let poor = post_keyed(&app, &bob, "order-1", "/v1/orders", &order).await;
    assert_eq!(poor.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(poor.2["error"]["code"], "INSUFFICIENT_FUNDS");
    let again = post_keyed(&app, &bob, "order-1", "/v1/orders", &order).await;
    assert_eq!((again.0, again.1, &again.2), (poor.0, true, &poor.2));

    let long_key = "k".repeat(256);
    let bad = post_keyed(&app, &alice, &long_key, "/v1/orders", &order).await;
    assert_eq!(bad.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.2["error"]["details"]["field"], "idempotencyKey");

    // Auth endpoints ignore the header: two logins with one key are two logins.
    let login = json!({ "email": "alice@example.com", "password": "correct horse battery staple" });
    let one = post_keyed(&app, &alice, "login", "/v1/auth/login", &login).await;
    let two = post_keyed(&app, &alice, "login", "/v1/auth/login", &login).await;
    assert_eq!(
        (one.0, two.0, two.1),
        (StatusCode::OK, StatusCode::OK, false)
    );
    assert_ne!(one.2["refreshToken"], two.2["refreshToken"]);
}

/// Alice with 100.00, a market, and a one-share bid on it.
async fn alice_and_an_order(app: &TestApp) -> (String, Value) {
    let admin = app.admin_token().await;
    let (alice_id, alice) = app.signed_up("alice@example.com").await;
    assert_eq!(
        app.deposit(&admin, &alice_id, "100").await.status(),
        StatusCode::CREATED
    );
    let market = app.create_market(&admin, "rain", "Rain tomorrow?").await;
    let order = json!({ "marketId": market["id"], "side": "BUY", "outcome": "YES",
                        "type": "LIMIT", "price": "0.10", "qty": 1 });
    (token(&alice, "accessToken"), order)
}

async fn open_orders(app: &TestApp, who: &str) -> usize {
    let open: Value = app
        .get("/v1/orders?status=open&limit=100", Some(who))
        .await
        .json()
        .await
        .unwrap();
    open["data"].as_array().unwrap().len()
}

async fn a_rate_limited_request_is_not_saved_and_its_retry_runs(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.limits.orders_per_second = NonZeroU32::new(1).unwrap();
    })
    .await
    else {
        return;
    };
    let (alice, order) = alice_and_an_order(&app).await;
    // Empty the bucket (it holds one whole batch).
    let batch = json!({ "place": vec![order.clone(); 100] });
    assert_eq!(
        app.post("/v1/orders/batch", Some(&alice), batch)
            .await
            .status(),
        StatusCode::OK
    );
    let limited = post_keyed(&app, &alice, "after-the-wait", "/v1/orders", &order).await;
    assert_eq!(limited.0, StatusCode::TOO_MANY_REQUESTS, "{}", limited.2);
    // One order a second refills the bucket.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let retried = post_keyed(&app, &alice, "after-the-wait", "/v1/orders", &order).await;
    assert_eq!(
        (retried.0, retried.1),
        (StatusCode::CREATED, false),
        "{}",
        retried.2
    );
    assert_eq!(open_orders(&app, &alice).await, 100);
}

async fn a_request_whose_client_hung_up_is_finished_and_saved(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, order) = alice_and_an_order(&app).await;
    // The request is sent, then the connection closed before any answer could arrive.
    let body = order.to_string();
    let request = format!(
        "POST /v1/orders HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {alice}\r\n\
         Idempotency-Key: hung-up\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        app.addr,
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    drop(socket);
    // The retry finds the request running (409) for a moment, then its saved answer.
    let mut answer = post_keyed(&app, &alice, "hung-up", "/v1/orders", &order).await;
    for _ in 0..50 {
        if answer.0 != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = post_keyed(&app, &alice, "hung-up", "/v1/orders", &order).await;
    }
    assert_eq!(answer.0, StatusCode::CREATED, "{}", answer.2);
    assert_eq!(open_orders(&app, &alice).await, 1, "placed once");
}

async fn a_claim_left_by_a_dead_request_is_answered_from_its_commit_or_run_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, order) = alice_and_an_order(&app).await;
    let first = post_keyed(&app, &alice, "died-after-commit", "/v1/orders", &order).await;
    assert_eq!(first.0, StatusCode::CREATED);
    // As a process killed between the commit and the save leaves it: claimed, committed, no
    // answer, held by a request that no longer runs.
    let forget = "UPDATE idempotency_keys SET status = NULL, response_body = NULL, \
                  owner = 'dead' WHERE key = $1";
    sqlx::query(forget)
        .bind("died-after-commit")
        .execute(&app.db().pool)
        .await
        .unwrap();
    let retry = post_keyed(&app, &alice, "died-after-commit", "/v1/orders", &order).await;
    assert_eq!(retry.0, StatusCode::CREATED, "{}", retry.2);
    assert_eq!(
        retry.2["order"]["id"], first.2["order"]["id"],
        "the committed order"
    );
    assert_eq!(retry.2["order"]["status"], "OPEN");
    assert_eq!(open_orders(&app, &alice).await, 1, "not placed again");
    // Saved now: the next retry is a plain replay.
    let again = post_keyed(&app, &alice, "died-after-commit", "/v1/orders", &order).await;
    assert_eq!((again.0, again.1), (StatusCode::CREATED, true));
    assert_eq!(again.2, retry.2);

    // Killed before its command was committed: the retry runs it, once.
    let claimed = "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at, owner) \
                   SELECT user_id, 'died-before-commit', request_hash, created_at, 'dead' \
                   FROM idempotency_keys WHERE key = 'died-after-commit'";
    sqlx::query(claimed).execute(&app.db().pool).await.unwrap();
    let ran = post_keyed(&app, &alice, "died-before-commit", "/v1/orders", &order).await;
    assert_eq!((ran.0, ran.1), (StatusCode::CREATED, false), "{}", ran.2);
    assert_ne!(ran.2["order"]["id"], first.2["order"]["id"]);
    assert_eq!(open_orders(&app, &alice).await, 2);

    // Two retries of a dead claim at once: one takes it over; the other finds it running (409)
    // or, once saved, replays it. Neither places the order again.
    let running = "UPDATE idempotency_keys SET status = NULL, owner = 'dead' WHERE key = $1";
    sqlx::query(running)
        .bind("died-before-commit")
        .execute(&app.db().pool)
        .await
        .unwrap();
    let (one, two) = tokio::join!(
        post_keyed(&app, &alice, "died-before-commit", "/v1/orders", &order),
        post_keyed(&app, &alice, "died-before-commit", "/v1/orders", &order),
    );
    let mut statuses = [one.0, two.0];
    statuses.sort();
    assert!(
        statuses == [StatusCode::CREATED, StatusCode::CONFLICT]
            || statuses == [StatusCode::CREATED, StatusCode::CREATED],
        "{statuses:?}"
    );
    assert_eq!(
        open_orders(&app, &alice).await,
        2,
        "one of the two ran, from the commit"
    );
}

async fn a_created_api_key_is_answered_once_and_never_stored(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, login) = app.signed_up("bot-owner@example.com").await;
    let access = token(&login, "accessToken");
    let body = json!({ "name": "bot" });
    let created = post_keyed(&app, &access, "key-1", "/v1/api-keys", &body).await;
    assert_eq!(created.0, StatusCode::CREATED);
    let secret = created.2["key"].as_str().unwrap().to_owned();
    let replay = post_keyed(&app, &access, "key-1", "/v1/api-keys", &body).await;
    assert_eq!((replay.0, replay.1), (StatusCode::CREATED, true));
    assert_eq!(replay.2["id"], created.2["id"]);
    assert_eq!(replay.2["key"], Value::Null);
    let stored: Vec<String> = sqlx::query_scalar("SELECT response_body FROM idempotency_keys")
        .fetch_all(&app.db().pool)
        .await
        .unwrap();
    assert!(
        stored.iter().all(|body| !body.contains(&secret)),
        "{stored:?}"
    );
}

async fn expired_keys_are_purged_by_the_server_on_its_own(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    let (alice, order) = alice_and_an_order(&app).await;
    for key in ["old", "new"] {
        let placed = post_keyed(&app, &alice, key, "/v1/orders", &order).await;
        assert_eq!(placed.0, StatusCode::CREATED);
    }
    let two_days_micros: i64 = 2 * 24 * 60 * 60 * 1_000_000;
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - $1 WHERE key = 'old'")
        .bind(two_days_micros)
        .execute(&app.db().pool)
        .await
        .unwrap();
    // Alice sends nothing more; the server purges at start and on a schedule after.
    app.restart().await;
    let mut keys: Vec<String> = Vec::new();
    for _ in 0..50 {
        keys = sqlx::query_scalar("SELECT key FROM idempotency_keys")
            .fetch_all(&app.db().pool)
            .await
            .unwrap();
        if keys.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(keys, ["new"]);
}
