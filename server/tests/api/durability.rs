//! Durability and recovery: acknowledged commands survive a crash, a restart reproduces the
//! state hash and balances (from a snapshot, or replaying the journal from empty), the trading
//! projections agree with the engine, and a failed commit stops writes.

use engine::{MarketParams, Op, Outcome, PlaceOrder, Resolution, Side, Slug};
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::sequencer::Subject;
use sqlx::Row;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::helpers::{error_code, spawn_app, spawn_app_with, token, Backend, TestApp};

crate::on_both_databases!(
    every_acknowledged_command_is_in_the_journal_after_a_crash,
    a_restart_reproduces_the_state_hash_and_the_balances,
    trading_projections_match_the_engine_across_a_crash,
    a_failed_commit_stops_writes_until_a_restart_recovers,
    a_full_queue_answers_503_overloaded_with_retry_after,
    a_graceful_shutdown_commits_everything_already_queued,
    recovery_refuses_to_start_when_projections_disagree_with_the_journal,
    an_unusable_snapshot_is_skipped_for_an_older_one_then_the_journal,
);

/// The last committed batch's link in the hash chain.
async fn last_batch_link(app: &TestApp) -> String {
    sqlx::query_scalar("SELECT chain_hash FROM batches ORDER BY last_seq DESC LIMIT 1")
        .fetch_one(&app.db().pool)
        .await
        .unwrap()
}

/// The full state hash stored with the newest snapshot.
async fn newest_snapshot_hash(app: &TestApp) -> String {
    sqlx::query_scalar("SELECT state_hash FROM snapshots ORDER BY seq DESC LIMIT 1")
        .fetch_one(&app.db().pool)
        .await
        .unwrap()
}

async fn every_acknowledged_command_is_in_the_journal_after_a_crash(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let mut users = Vec::new();
    for n in 0..3 {
        let (id, login) = app.signed_up(&format!("saver{n}@example.com")).await;
        users.push((id, token(&login, "accessToken")));
    }
    let mut deposits = JoinSet::new();
    for n in 0..30 {
        let client = app.client.clone();
        let url = app.url("/v1/transfers/deposit");
        let admin = admin.clone();
        let user_id = users[n % 3].0.clone();
        deposits.spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(admin)
                .json(&json!({ "userId": user_id, "amount": "1.25" }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            let body: Value = response.json().await.unwrap();
            body["id"].as_str().unwrap().to_owned()
        });
    }
    let acknowledged: Vec<String> = deposits.join_all().await;
    app.crash_and_restart().await;

    for transfer_id in &acknowledged {
        let row = sqlx::query(
            "SELECT j.result, j.command FROM transfers t JOIN journal j ON j.seq = t.seq \
             WHERE t.id = $1",
        )
        .bind(transfer_id)
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
        let result: String = row.get("result");
        let command: String = row.get("command");
        assert_eq!(result, "OK");
        assert!(command.contains("\"deposit\""), "{command}");
    }
    let (rows, last): (i64, i64) = {
        let row = sqlx::query("SELECT COUNT(*) AS n, MAX(seq) AS last FROM journal")
            .fetch_one(&app.db().pool)
            .await
            .unwrap();
        (row.get("n"), row.get("last"))
    };
    assert_eq!(rows, last, "journal sequence numbers are contiguous from 1");
    for (_, access) in &users {
        assert_eq!(app.balance(access).await["available"], "12.50");
    }
}

async fn a_restart_reproduces_the_state_hash_and_the_balances(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let (alice, alice_login) = app.signed_up("alice@example.com").await;
    let alice_token = token(&alice_login, "accessToken");
    for amount in ["100", "0.000001", "7.5"] {
        assert_eq!(
            app.deposit(&admin, &alice, amount).await.status(),
            StatusCode::CREATED
        );
    }
    let withdraw = app
        .post(
            "/v1/transfers/withdraw",
            Some(&alice_token),
            json!({ "amount": "2.5" }),
        )
        .await;
    assert_eq!(withdraw.status(), StatusCode::CREATED);
    let balance = app.balance(&alice_token).await;
    assert_eq!(balance["available"], "105.000001");
    let link = last_batch_link(&app).await;

    // Graceful: the final snapshot covers everything, nothing to replay.
    app.restart().await;
    let recovery = app.server().recovery().expect("a primary").clone();
    assert_eq!(recovery.link, link);
    let state_hash = newest_snapshot_hash(&app).await;
    assert_eq!(recovery.state_hash, state_hash);
    assert_eq!(recovery.replayed, 0);
    assert_eq!(recovery.snapshot_seq, Some(recovery.last_seq));
    assert_eq!(app.balance(&alice_token).await, balance);

    // Crash after more commands: an older snapshot plus the journal after it.
    for _ in 0..3 {
        assert_eq!(
            app.deposit(&admin, &alice, "1").await.status(),
            StatusCode::CREATED
        );
    }
    let link = last_batch_link(&app).await;
    let balance = app.balance(&alice_token).await;
    app.crash_and_restart().await;
    let recovery = app.server().recovery().expect("a primary").clone();
    assert_eq!(recovery.link, link);
    assert_ne!(recovery.state_hash, state_hash, "three withdrawals later");
    let state_hash = recovery.state_hash.clone();
    assert!(recovery.replayed > 0, "{recovery:?}");
    assert_eq!(app.balance(&alice_token).await, balance);

    // No snapshots at all: the journal alone, replayed from empty, gives the same state.
    sqlx::query("DELETE FROM snapshots")
        .execute(&app.db().pool)
        .await
        .unwrap();
    app.crash_and_restart().await;
    let recovery = app.server().recovery().expect("a primary").clone();
    assert_eq!(recovery.snapshot_seq, None);
    assert_eq!(recovery.replayed, recovery.last_seq);
    assert_eq!(recovery.state_hash, state_hash);
    assert_eq!(recovery.link, link);
    assert_eq!(app.balance(&alice_token).await, balance);
}

async fn trading_projections_match_the_engine_across_a_crash(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let (alice, alice_login) = app.signed_up("alice@example.com").await;
    let (bob, bob_login) = app.signed_up("bob@example.com").await;
    for user in [&alice, &bob] {
        assert_eq!(
            app.deposit(&admin, user, "100").await.status(),
            StatusCode::CREATED
        );
    }
    let sequencer = app.server().sequencer().clone();
    let alice_engine = sequencer
        .ensure_user(Uuid::parse_str(&alice).unwrap())
        .await
        .unwrap();
    let bob_engine = sequencer
        .ensure_user(Uuid::parse_str(&bob).unwrap())
        .await
        .unwrap();
    let params = MarketParams {
        slug: Slug::new("will-it-rain").expect("a valid slug"),
        tick_units: 100,
        qty_min: 1,
        qty_max: 1_000_000,
        maker_fee_bps: 0,
        taker_fee_bps: 700,
        close_ts_micros: None,
        lock_rule: engine::LockRule::CURRENT,
    };
    let subject = Subject::Market {
        market_id: Uuid::new_v4(),
        question: "Will it rain tomorrow?".into(),
        description: "Resolves YES if it rains.".into(),
    };
    let created = sequencer
        .submit(Op::CreateMarket(params), Some(subject))
        .await
        .unwrap();
    assert_eq!(created.result, Ok(()));
    let market = engine::MarketId(0);
    let place = |user, side, outcome, price, qty| {
        Op::Place(PlaceOrder::limit(user, market, side, outcome, price, qty))
    };
    for op in [
        place(alice_engine, Side::Buy, Outcome::Yes, 6_000, 10),
        place(bob_engine, Side::Buy, Outcome::No, 4_000, 10),
        place(alice_engine, Side::Buy, Outcome::Yes, 5_000, 5),
    ] {
        assert_eq!(sequencer.submit(op, None).await.unwrap().result, Ok(()));
    }
    let resting = sequencer
        .submit(place(bob_engine, Side::Sell, Outcome::No, 4_500, 4), None)
        .await
        .unwrap();
    assert_eq!(resting.result, Ok(()));
    let cancel = Op::Cancel {
        user: alice_engine,
        order: engine::OrderId(3),
    };
    assert_eq!(sequencer.submit(cancel, None).await.unwrap().result, Ok(()));
    let broke = sequencer
        .submit(
            place(alice_engine, Side::Buy, Outcome::Yes, 9_900, 1_000),
            None,
        )
        .await
        .unwrap();
    assert_eq!(broke.result, Err(engine::Reject::InsufficientFunds));

    let orders = sqlx::query("SELECT status, cancel_reason, filled_qty, fee_micros, filled_notional_units FROM orders ORDER BY engine_order_id")
        .fetch_all(&app.db().pool)
        .await
        .unwrap();
    let summary: Vec<(String, Option<String>, i64, i64, i64)> = orders
        .iter()
        .map(|row| {
            (
                row.get("status"),
                row.get("cancel_reason"),
                row.get("filled_qty"),
                row.get("fee_micros"),
                row.get("filled_notional_units"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("FILLED".into(), None, 10, 0, 60_000),
            ("FILLED".into(), None, 10, 168_000, 40_000),
            ("CANCELLED".into(), Some("USER_REQUESTED".into()), 0, 0, 0),
            ("OPEN".into(), None, 0, 0, 0),
        ]
    );
    let trade_kind: String = sqlx::query_scalar("SELECT kind FROM trades")
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(trade_kind, "MINT");

    let resolve = Op::ResolveMarket {
        market,
        resolution: Resolution::Yes,
    };
    assert_eq!(
        sequencer.submit(resolve, None).await.unwrap().result,
        Ok(())
    );
    let link = last_batch_link(&app).await;
    app.crash_and_restart().await;
    // Recovery compared every projected balance and position with the engine's.
    assert_eq!(app.server().recovery().expect("a primary").link, link);
    let market_row = sqlx::query("SELECT state, resolution, question FROM markets")
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(market_row.get::<String, _>("state"), "RESOLVED");
    assert_eq!(
        market_row.get::<Option<String>, _>("resolution").as_deref(),
        Some("YES")
    );
    assert_eq!(
        market_row.get::<String, _>("question"),
        "Will it rain tomorrow?"
    );
    let settled: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM settlements")
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(settled, 2);
    let last_order: String =
        sqlx::query_scalar("SELECT cancel_reason FROM orders WHERE engine_order_id = 4")
            .fetch_one(&app.db().pool)
            .await
            .unwrap();
    assert_eq!(last_order, "MARKET_RESOLVED");
    let alice_balance = app.balance(&token(&alice_login, "accessToken")).await;
    let bob_balance = app.balance(&token(&bob_login, "accessToken")).await;
    // Alice: 100 - 6 (10 YES at 0.60, maker, no fee) + 10 (YES pays $1) = 104.
    assert_eq!(alice_balance["available"], "104.00");
    // Bob: 100 - 4 (10 NO at 0.40) - 0.168 taker fee; NO pays nothing.
    assert_eq!(bob_balance["available"], "95.832");
    assert_eq!(bob_balance["locked"], "0.00");
}

async fn a_failed_commit_stops_writes_until_a_restart_recovers(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let (user, login) = app.signed_up("fragile@example.com").await;
    let access = token(&login, "accessToken");
    assert_eq!(
        app.deposit(&admin, &user, "5").await.status(),
        StatusCode::CREATED
    );

    sqlx::query("ALTER TABLE journal RENAME TO journal_broken")
        .execute(&app.db().pool)
        .await
        .unwrap();
    let failed = app.deposit(&admin, &user, "1").await;
    assert!(failed.headers().contains_key("retry-after"));
    assert_eq!(
        error_code(failed, StatusCode::SERVICE_UNAVAILABLE).await,
        "UNAVAILABLE"
    );
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["sequencer"], "failed");
    let after = app.deposit(&admin, &user, "1").await;
    assert_eq!(
        error_code(after, StatusCode::SERVICE_UNAVAILABLE).await,
        "UNAVAILABLE"
    );
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("predex_commit_failures_total 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("predex_sequencer_up 0\n"), "{metrics}");
    // Reads that do not need the engine still work.
    assert_eq!(
        app.get("/v1/me", Some(&access)).await.status(),
        StatusCode::OK
    );

    sqlx::query("ALTER TABLE journal_broken RENAME TO journal")
        .execute(&app.db().pool)
        .await
        .unwrap();
    app.crash_and_restart().await;
    assert_eq!(app.balance(&access).await["available"], "5.00");
    assert_eq!(
        app.deposit(&admin, &user, "1").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.balance(&access).await["available"], "6.00");
}

async fn a_full_queue_answers_503_overloaded_with_retry_after(backend: Backend) {
    let tiny_queue = |config: &mut server::config::Config| {
        config.sequencer.queue_capacity = 1;
        config.sequencer.batch_max = 1;
    };
    let Some(app) = spawn_app_with(backend, tiny_queue).await else {
        return;
    };
    let admin = app.admin_token().await;
    let (user, login) = app.signed_up("busy@example.com").await;
    // Hold the journal's write lock so the sequencer's next commit waits: one command sits in
    // the commit, one in the queue, and everything after finds the queue full.
    let lock = hold_journal(&app.db().pool, backend).await;
    let mut deposits = JoinSet::new();
    for _ in 0..5 {
        let client = app.client.clone();
        let url = app.url("/v1/transfers/deposit");
        let admin = admin.clone();
        let user = user.clone();
        deposits.spawn(async move {
            client
                .post(url)
                .bearer_auth(admin)
                .json(&json!({ "userId": user, "amount": "1" }))
                .send()
                .await
                .unwrap()
        });
    }
    // At most two can be taken while the lock holds, so the first three answers are refusals.
    for _ in 0..3 {
        let refused = deposits.join_next().await.unwrap().unwrap();
        assert_eq!(refused.headers()["retry-after"], "1");
        assert_eq!(
            error_code(refused, StatusCode::SERVICE_UNAVAILABLE).await,
            "OVERLOADED"
        );
    }
    lock.rollback().await.unwrap();
    for response in deposits.join_all().await {
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    assert_eq!(
        app.balance(&token(&login, "accessToken")).await["available"],
        "2.00"
    );
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains("predex_overloaded_total 3\n"), "{metrics}");
}

/// Holds the journal's write lock on one connection until dropped or rolled back, so the
/// sequencer's next commit waits.
async fn hold_journal(
    pool: &sqlx::AnyPool,
    backend: Backend,
) -> sqlx::Transaction<'static, sqlx::Any> {
    let mut lock = pool.begin().await.unwrap();
    let hold = match backend {
        Backend::Postgres => "LOCK TABLE journal IN EXCLUSIVE MODE",
        Backend::Sqlite => "DELETE FROM snapshots WHERE seq < 0",
    };
    sqlx::query(hold).execute(&mut *lock).await.unwrap();
    lock
}

async fn queue_depth(app: &TestApp) -> u64 {
    let text = app.get("/metrics", None).await.text().await.unwrap();
    let line = text
        .lines()
        .find(|line| line.starts_with("predex_queue_depth "))
        .unwrap();
    line["predex_queue_depth ".len()..].parse().unwrap()
}

async fn a_graceful_shutdown_commits_everything_already_queued(backend: Backend) {
    let one_per_batch = |config: &mut server::config::Config| config.sequencer.batch_max = 1;
    let Some(mut app) = spawn_app_with(backend, one_per_batch).await else {
        return;
    };
    let (user, login) = app.signed_up("patient@example.com").await;
    let sequencer = app.server().sequencer().clone();
    let engine_user = sequencer
        .ensure_user(Uuid::parse_str(&user).unwrap())
        .await
        .unwrap();
    let pool = app.db().pool.clone();
    let lock = hold_journal(&pool, backend).await;
    let mut deposits = JoinSet::new();
    for _ in 0..3 {
        let sequencer = sequencer.clone();
        let op = Op::Deposit {
            user: engine_user,
            amount_micros: 1_000_000,
        };
        deposits.spawn(async move { sequencer.submit(op, None).await });
    }
    // One deposit waits in its commit, two in the queue.
    let mut polls = 0;
    while queue_depth(&app).await < 2 {
        polls += 1;
        assert!(polls < 10_000, "the deposits never queued up");
        tokio::task::yield_now().await;
    }
    // Shut down while they wait: HTTP stops first, then the sequencer is told to stop.
    let addr = app.addr;
    let server = app.server.take().unwrap();
    let shutdown = tokio::spawn(server.shutdown());
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        tokio::task::yield_now().await;
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    lock.rollback().await.unwrap();
    for applied in deposits.join_all().await {
        assert_eq!(applied.expect("acknowledged").result, Ok(()));
    }
    shutdown.await.unwrap();
    app.start_again().await;
    assert_eq!(
        app.balance(&token(&login, "accessToken")).await["available"],
        "3.00"
    );
    let recovery = app.server().recovery().expect("a primary");
    assert_eq!(recovery.snapshot_seq, Some(recovery.last_seq));
}

async fn recovery_refuses_to_start_when_projections_disagree_with_the_journal(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let (user, _) = app.signed_up("audited@example.com").await;
    assert_eq!(
        app.deposit(&admin, &user, "10").await.status(),
        StatusCode::CREATED
    );
    app.create_market(&admin, "audited", "Audited?").await;
    sqlx::query("UPDATE accounts SET available_micros = available_micros + 1")
        .execute(&app.db().pool)
        .await
        .unwrap();
    app.server.take().unwrap().shutdown().await;
    let refused = server::app::start(app.config.clone())
        .await
        .err()
        .expect("refuses to start");
    assert!(
        refused.to_string().contains("projected balance"),
        "{refused}"
    );

    // Undo the damage, then give the market another lock rule than it was created with: its
    // orders would show locks the engine does not hold.
    let broken = server::db::Db::connect(&app.config.storage, 1)
        .await
        .unwrap();
    sqlx::query("UPDATE accounts SET available_micros = available_micros - 1")
        .execute(&broken.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE markets SET lock_rule = 'BUFFER_ALWAYS'")
        .execute(&broken.pool)
        .await
        .unwrap();
    let refused = server::app::start(app.config.clone())
        .await
        .err()
        .expect("refuses to start");
    assert!(refused.to_string().contains("lock rule"), "{refused}");

    // Undo that too, then tamper with the journal instead: a changed amount replays to another
    // chain link than the batch committed.
    sqlx::query("UPDATE markets SET lock_rule = 'BUFFER_FOR_MAKER_FEE'")
        .execute(&broken.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM snapshots")
        .execute(&broken.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE journal SET command = REPLACE(command, '10000000', '10000001')")
        .execute(&broken.pool)
        .await
        .unwrap();
    broken.pool.close().await;
    let refused = server::app::start(app.config.clone())
        .await
        .err()
        .expect("refuses to start");
    assert!(refused.to_string().contains("chain link"), "{refused}");
}

async fn an_unusable_snapshot_is_skipped_for_an_older_one_then_the_journal(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let (user, login) = app.signed_up("kept@example.com").await;
    let user_token = token(&login, "accessToken");
    for _ in 0..12 {
        let credited = app.deposit(&admin, &user, "1.50").await;
        assert_eq!(credited.status(), StatusCode::CREATED);
    }
    let balance = app.balance(&user_token).await;
    app.server.take().unwrap().shutdown().await;
    let db = server::db::Db::connect(&app.config.storage, 1)
        .await
        .unwrap();
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM snapshots ORDER BY seq DESC")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert!(seqs.len() >= 2, "snapshots kept: {seqs:?}");
    let spoil = |seq: i64, data: Vec<u8>| {
        let pool = db.pool.clone();
        async move {
            sqlx::query("UPDATE snapshots SET data = $1 WHERE seq = $2")
                .bind(data)
                .bind(seq)
                .execute(&pool)
                .await
                .unwrap();
        }
    };

    // The newest does not decode: the one before it is used, and the journal after it replayed.
    spoil(seqs[0], vec![0xff; 16]).await;
    app.start_again().await;
    let report = app.server().recovery().unwrap().clone();
    assert_eq!(report.snapshot_seq, Some(seqs[1] as u64));
    assert_eq!(report.snapshots_skipped.len(), 1, "{report:?}");
    assert!(report.snapshots_skipped[0].contains("does not decode"));
    assert_eq!(report.replayed, (seqs[0] - seqs[1]) as u64);
    assert_eq!(app.balance(&user_token).await, balance);
    app.server.take().unwrap().shutdown().await;

    // Every kept snapshot unusable (one decodes to another state than its stored hash): the
    // journal is replayed from empty, and verified as always.
    let other_state = sqlx::query_scalar::<_, Vec<u8>>("SELECT data FROM snapshots WHERE seq = $1")
        .bind(seqs[1])
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let all: Vec<i64> = sqlx::query_scalar("SELECT seq FROM snapshots ORDER BY seq DESC")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    for &seq in &all {
        let data = if seq == all[0] {
            other_state.clone()
        } else {
            vec![0xff; 16]
        };
        spoil(seq, data).await;
    }
    db.pool.close().await;
    app.start_again().await;
    let report = app.server().recovery().unwrap().clone();
    assert_eq!(report.snapshot_seq, None);
    assert_eq!(report.snapshots_skipped.len(), all.len(), "{report:?}");
    assert!(
        report.snapshots_skipped[0].contains("was stored"),
        "{report:?}"
    );
    assert_eq!(report.replayed, report.last_seq);
    assert_eq!(app.balance(&user_token).await, balance);
}
