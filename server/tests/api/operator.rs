//! `server admin`, run as a child process the way an operator runs it: on a stopped exchange
//! (the command starts it in its own process), beside a running server (the command goes
//! through it), across kill -9, and through backup, restore, verify and export.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use server::config::Storage;
use server::writer_lock::WriterLock;

use crate::crash::{first_run, limit_order, Api, ServerProcess};
use crate::helpers::{Backend, TestDb, ADMIN_EMAIL, ADMIN_PASSWORD, JWT_SECRET};

crate::on_both_databases!(
    the_operator_runs_the_exchange_stopped_and_running,
    backup_and_restore_carry_the_exchange_to_an_empty_database,
    verify_names_what_differs_from_the_journal,
    a_second_primary_on_the_same_database_refuses_to_start,
    an_import_of_ten_thousand_users_verifies_and_a_second_changes_nothing,
    a_malformed_import_lists_every_bad_record_and_writes_nothing,
);

const OPS_EMAIL: &str = "ops@example.com";
const OPS_PASSWORD: &str = "the operator's own passphrase";
const NEW_OPS_PASSWORD: &str = "the operator's next passphrase";

/// What `server admin` printed and how it ended.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// Standard output as JSON, for a command that must succeed.
    fn json(&self) -> Value {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `server admin <args>` on `db`, configured through its environment like the server.
async fn admin(db: &TestDb, args: &[&str], stdin: Option<&str>) -> Ran {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
    command
        .current_dir(db.dir())
        .arg("admin")
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("BIND_ADDR")
        .env("APP_ENV", "development")
        .env("DATA_DIR", db.dir())
        .env("JWT_SECRET", JWT_SECRET)
        .env("ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Storage::Postgres(url) = &db.storage {
        command.env("DATABASE_URL", url);
    }
    let stdin = stdin.map(str::to_owned);
    let output = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("the server binary starts");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            std::io::Write::write_all(&mut input, text.as_bytes()).expect("write stdin");
        }
        drop(input);
        child.wait_with_output().expect("the command ends")
    })
    .await
    .expect("joined");
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

/// The first run of the binary on `db`, ready, with a client for its API.
async fn running(db: &TestDb) -> (ServerProcess, Api) {
    let (client, server) = first_run(db).await;
    let api = Api {
        client,
        base: server.base.clone(),
    };
    (server, api)
}

/// Waits until no process holds `db`'s writer lock (a killed server's PostgreSQL session ends
/// a moment after the process).
async fn wait_unlocked(db: &TestDb) {
    let started = Instant::now();
    while WriterLock::is_held(&db.storage).await.expect("lock check") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the writer lock outlived its holder"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn total(api: &Api, token: &str) -> String {
    let balance = api.get("/v1/portfolio/balance", token).await;
    balance["total"].as_str().expect("a total").to_owned()
}

async fn the_operator_runs_the_exchange_stopped_and_running(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    // Stopped (never started, even): each command starts the exchange in its own process.
    let market = admin(
        &db,
        &["create-market", "--slug", "rain", "--question", "Rain?"],
        None,
    )
    .await
    .json();
    assert_eq!(
        (market["slug"].as_str(), market["state"].as_str()),
        (Some("rain"), Some("OPEN"))
    );
    let refused = admin(
        &db,
        &["create-admin", "--email", OPS_EMAIL],
        Some("short\n"),
    )
    .await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("password"), "{}", refused.stderr);
    let input = format!("{OPS_PASSWORD}\n");
    let created = admin(
        &db,
        &["create-admin", "--email", OPS_EMAIL, "--name", "Ops"],
        Some(&input),
    )
    .await
    .json();
    assert_eq!(created["role"], "admin");
    let deposit = admin(
        &db,
        &["deposit", "--user", OPS_EMAIL, "--amount", "250.50"],
        None,
    )
    .await
    .json();
    assert_eq!(
        (deposit["kind"].as_str(), deposit["amount"].as_str()),
        (Some("DEPOSIT"), Some("250.50"))
    );
    let bad = admin(
        &db,
        &["deposit", "--user", OPS_EMAIL, "--amount", "0.0000001"],
        None,
    )
    .await;
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("422") && bad.stderr.contains("amount"),
        "{}",
        bad.stderr
    );
    let snapshot = admin(&db, &["snapshot"], None).await.json();
    let seq = snapshot["seq"].as_u64().expect("a seq");
    let verified = admin(&db, &["verify"], None).await.json();
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["lastSeq"].as_u64(), Some(seq));
    assert_eq!(verified["snapshotSeq"].as_u64(), Some(seq));
    assert_eq!(verified["stateHash"], snapshot["stateHash"]);
    assert_eq!(
        (verified["users"].as_u64(), verified["markets"].as_u64()),
        (Some(2), Some(1))
    );

    // Running: the same commands go through the server, which sees them at once.
    let (mut server, api) = running(&db).await;
    let ops = api.login(OPS_EMAIL, OPS_PASSWORD).await;
    assert_eq!(total(&api, &ops).await, "250.50");
    let url = server.base.clone();
    admin(
        &db,
        &[
            "--url", &url, "deposit", "--user", OPS_EMAIL, "--amount", "1",
        ],
        None,
    )
    .await
    .json();
    assert_eq!(total(&api, &ops).await, "251.50");
    // An operator's reset token sets a new password once and ends the account's sessions.
    let reset = admin(
        &db,
        &["password-reset", "--user", OPS_EMAIL, "--ttl-hours", "1"],
        None,
    )
    .await
    .json();
    let body = serde_json::json!({ "token": reset["token"], "newPassword": NEW_OPS_PASSWORD });
    api.post("/v1/auth/password-reset", "", body.clone(), StatusCode::OK)
        .await;
    api.post(
        "/v1/auth/password-reset",
        "",
        body,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let (status, _) = api
        .try_send(reqwest::Method::GET, "/v1/portfolio/balance", &ops, None)
        .await
        .expect("an answer");
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a session outlived the reset"
    );
    let ops = api.login(OPS_EMAIL, NEW_OPS_PASSWORD).await;
    assert_eq!(total(&api, &ops).await, "251.50");
    let resolved = admin(
        &db,
        &[
            "--url",
            &url,
            "--as",
            OPS_EMAIL,
            "resolve",
            "rain",
            "--outcome",
            "no",
        ],
        None,
    )
    .await
    .json();
    assert_eq!(resolved["state"], "RESOLVED");
    let snapshot = admin(&db, &["--url", &url, "snapshot"], None).await.json();
    assert_eq!(snapshot["seq"].as_u64(), Some(seq + 2));
    let backup = db.dir().join("backup");
    admin(&db, &["backup", &path_arg(&backup)], None)
        .await
        .json();
    let refused = admin(&db, &["restore", &path_arg(&backup)], None).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("stop the server first"),
        "{}",
        refused.stderr
    );
    let online = admin(&db, &["verify"], None).await;
    match backend {
        // A consistent copy taken online is verified instead.
        Backend::Sqlite => assert_eq!(online.json()["lastSeq"].as_u64(), Some(seq + 2)),
        Backend::Postgres => {
            assert_eq!(online.code, 2, "{}", online.stderr);
            assert!(
                online.stderr.contains("a server is running"),
                "{}",
                online.stderr
            );
        }
    }

    // kill -9 leaves no lock behind: the operator works on the stopped exchange again, and
    // a new server starts on it with everything.
    server.kill();
    wait_unlocked(&db).await;
    let verified = admin(&db, &["verify"], None).await.json();
    assert_eq!(verified["lastSeq"].as_u64(), Some(seq + 2));
    let mut server = ServerProcess::start(&db, 1);
    server.wait_ready(&api.client).await;
    let api = Api {
        client: api.client.clone(),
        base: server.base.clone(),
    };
    let ops = api.login(OPS_EMAIL, NEW_OPS_PASSWORD).await;
    assert_eq!(total(&api, &ops).await, "251.50");
}

async fn backup_and_restore_carry_the_exchange_to_an_empty_database(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let (mut server, api) = running(&db).await;
    let admin_token = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let market = api.market(&admin_token, "snow").await;
    let ann = api.trader(&admin_token, "ann@example.com").await;
    let bob = api.trader(&admin_token, "bob@example.com").await;
    let resting = api
        .limit(&ann, limit_order(&market, "YES", "0.40", 10, "GTC"))
        .await;
    api.limit(&bob, limit_order(&market, "NO", "0.60", 4, "IOC"))
        .await;
    let order_path = format!("/v1/orders/{}", resting["id"].as_str().expect("an id"));
    let order = api.get(&order_path, &ann).await;
    assert_eq!(
        (order["status"].as_str(), order["remainingQty"].as_u64()),
        (Some("PARTIALLY_FILLED"), Some(6))
    );
    let balances = (total(&api, &ann).await, total(&api, &bob).await);

    // Online: the server keeps running while the copy is taken.
    let backup = db.dir().join("backup");
    let manifest = admin(&db, &["backup", &path_arg(&backup)], None)
        .await
        .json();
    assert_eq!(
        manifest["storage"],
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
    server.kill();

    let Some(fresh) = TestDb::create(backend).await else {
        return;
    };
    let restored = admin(&fresh, &["restore", &path_arg(&backup)], None)
        .await
        .json();
    assert_eq!(
        (restored["ok"].as_bool(), restored["openOrders"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(
        (restored["users"].as_u64(), restored["markets"].as_u64()),
        (Some(3), Some(1))
    );
    if backend == Backend::Sqlite {
        assert_eq!(restored["stateHash"], manifest["stateHash"]);
    }
    let again = admin(&fresh, &["restore", &path_arg(&backup)], None).await;
    assert_eq!(
        again.code, 2,
        "a restore must not overwrite: {}",
        again.stderr
    );

    let mut server = ServerProcess::start(&fresh, 0);
    server.wait_ready(&api.client).await;
    let api = Api {
        client: api.client.clone(),
        base: server.base.clone(),
    };
    let ann = api.login("ann@example.com", crate::helpers::PASSWORD).await;
    let bob = api.login("bob@example.com", crate::helpers::PASSWORD).await;
    assert_eq!((total(&api, &ann).await, total(&api, &bob).await), balances);
    let order = api.get(&order_path, &ann).await;
    assert_eq!(order["remainingQty"].as_u64(), Some(6));
    server.kill();
    wait_unlocked(&fresh).await;

    let export = admin(&fresh, &["export"], None).await;
    assert_eq!(export.code, 0, "{}", export.stderr);
    let lines: Vec<Value> = export
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let count = |kind: &str| lines.iter().filter(|line| line["type"] == kind).count();
    assert_eq!(
        (
            count("user"),
            count("balance"),
            count("market"),
            count("trade")
        ),
        (3, 3, 1, 1)
    );
    assert_eq!(count("position"), 2, "{}", export.stdout);
    assert!(lines.iter().all(|line| line.get("passwordHash").is_none()));
    let trade = lines
        .iter()
        .find(|line| line["type"] == "trade")
        .expect("a trade");
    assert_eq!(
        (trade["price"].as_str(), trade["qty"].as_u64()),
        (Some("0.40"), Some(4))
    );
    let with_hashes = admin(&fresh, &["export", "--with-password-hashes"], None).await;
    let users_with_hash = with_hashes
        .stdout
        .lines()
        .filter(|line| {
            line.contains("\"type\":\"user\"") && line.contains("\"passwordHash\":\"$argon2")
        })
        .count();
    assert_eq!(users_with_hash, 3, "{}", with_hashes.stdout);
}

async fn verify_names_what_differs_from_the_journal(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let (mut server, api) = running(&db).await;
    let admin_token = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let market = api.market(&admin_token, "hail").await;
    let ann = api.trader(&admin_token, "ann@example.com").await;
    api.limit(&ann, limit_order(&market, "YES", "0.30", 5, "GTC"))
        .await;
    server.kill();
    wait_unlocked(&db).await;
    assert_eq!(
        admin(&db, &["verify"], None).await.json()["openOrders"].as_u64(),
        Some(1)
    );
    admin(&db, &["snapshot"], None).await.json();

    let tampered = server::db::Db::connect(&db.storage, 1)
        .await
        .expect("connect");
    let tamper = |sql: &'static str| {
        let pool = tampered.pool.clone();
        async move {
            sqlx::query(sql).execute(&pool).await.expect("tamper");
        }
    };
    tamper("UPDATE orders SET remaining_qty = remaining_qty - 1").await;
    let differs = admin(&db, &["verify"], None).await;
    assert_eq!(differs.code, 1, "{}", differs.stdout);
    assert!(
        differs.stderr.contains("VERIFY FAILED") && differs.stderr.contains("projected open"),
        "{}",
        differs.stderr
    );
    tamper("UPDATE orders SET remaining_qty = remaining_qty + 1").await;
    tamper("UPDATE accounts SET available_micros = available_micros + 1").await;
    let differs = admin(&db, &["verify"], None).await;
    assert_eq!(differs.code, 1);
    assert!(
        differs.stderr.contains("projected balance"),
        "{}",
        differs.stderr
    );
    tamper("UPDATE accounts SET available_micros = available_micros - 1").await;
    // A snapshot that disagrees with its own journal: the replay from empty catches it.
    tamper("UPDATE snapshots SET state_hash = '00000000000000000000000000000000'").await;
    let differs = admin(&db, &["verify"], None).await;
    assert_eq!(
        differs.code, 0,
        "an unusable snapshot is skipped, not fatal: {}",
        differs.stderr
    );
    assert!(!differs.json()["snapshotsSkipped"]
        .as_array()
        .expect("a list")
        .is_empty());
    tampered.pool.close().await;
}

async fn a_second_primary_on_the_same_database_refuses_to_start(backend: Backend) {
    let Some(app) = crate::helpers::spawn_app(backend).await else {
        return;
    };
    let Err(refused) = server::app::start(app.config.clone()).await else {
        panic!("two primaries ran on one database");
    };
    assert!(refused.to_string().contains("writer lock"), "{refused}");
    // The first is unharmed.
    let health = app.get("/readyz", None).await;
    assert_eq!(health.status(), StatusCode::OK);
}

/// Users in the generated import.
const IMPORTED_USERS: usize = 10_000;
/// Every how many users one holds a position in each open market.
const HOLDER_EVERY: usize = 25;

/// A migration file as another backend would export it: a third of the accounts with argon2
/// hashes, a third with bcrypt, a third with a hash this server cannot check; a balance each;
/// three markets (open with a fee, halted, resolved); positions on both sides.
async fn generated_import() -> String {
    let argon2 = server::auth::password::hash(crate::helpers::PASSWORD.to_owned())
        .await
        .expect("argon2");
    let bcrypt = bcrypt::hash(crate::helpers::PASSWORD, 4).expect("bcrypt");
    let mut lines = vec![
        r#"{"type":"market","slug":"btc-50k","question":"Will BTC reach $50k?","takerFeeRate":"0.02"}"#.to_owned(),
        r#"{"type":"market","slug":"paused","question":"Paused?","state":"HALTED"}"#.to_owned(),
        r#"{"type":"market","slug":"done","question":"Done?","state":"RESOLVED","resolution":{"outcome":"SPLIT","yesPayout":"0.25"}}"#.to_owned(),
    ];
    for n in 0..IMPORTED_USERS {
        let hash = match n % 3 {
            0 => format!(r#","passwordHash":"{argon2}""#),
            1 => format!(r#","passwordHash":"{bcrypt}""#),
            _ => r#","passwordHash":"pbkdf2_sha256$1$salt$hash""#.to_owned(),
        };
        lines.push(format!(
            r#"{{"type":"user","email":"user{n}@example.com","name":"User {n}"{hash}}}"#
        ));
        lines.push(format!(
            r#"{{"type":"balance","email":"user{n}@example.com","amount":"{}.{:02}"}}"#,
            n % 500 + 1,
            n % 100
        ));
        if n % HOLDER_EVERY == 0 {
            lines.push(format!(
                r#"{{"type":"position","email":"user{n}@example.com","market":"btc-50k","yesShares":{},"yesCost":"{}.00"}}"#,
                n % 7 + 1,
                n % 3
            ));
            lines.push(format!(
                r#"{{"type":"position","email":"user{n}@example.com","market":"paused","noShares":2,"yesShares":{}}}"#,
                n % 2
            ));
        }
    }
    lines.join("\n")
}

fn summary(ran: &Ran) -> Value {
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let last = ran.stdout.lines().last().expect("a summary");
    serde_json::from_str(last).expect("a JSON summary")
}

async fn an_import_of_ten_thousand_users_verifies_and_a_second_changes_nothing(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let file = db.dir().join("import.jsonl");
    std::fs::write(&file, generated_import().await).expect("write the file");
    let imported = admin(&db, &["import", &path_arg(&file)], None).await;
    let first = summary(&imported);
    let holders = IMPORTED_USERS / HOLDER_EVERY;
    assert_eq!(
        (
            first["usersCreated"].as_u64(),
            first["balancesApplied"].as_u64()
        ),
        (Some(IMPORTED_USERS as u64), Some(IMPORTED_USERS as u64))
    );
    assert_eq!(first["marketsCreated"].as_u64(), Some(3));
    assert_eq!(first["positionsApplied"].as_u64(), Some(2 * holders as u64));
    let resets: Vec<Value> = imported
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON"))
        .filter(|line| line["type"] == "passwordReset")
        .collect();
    assert_eq!(resets.len(), IMPORTED_USERS / 3);
    let verified = admin(&db, &["verify"], None).await.json();
    // The users, the configured admin and the import account.
    assert_eq!(verified["users"].as_u64(), Some(IMPORTED_USERS as u64 + 2));
    assert_eq!(verified["markets"].as_u64(), Some(3));

    let again = summary(&admin(&db, &["import", &path_arg(&file)], None).await);
    assert_eq!(
        (
            again["usersCreated"].as_u64(),
            again["balancesApplied"].as_u64(),
            again["positionsApplied"].as_u64(),
            again["marketsCreated"].as_u64()
        ),
        (Some(0), Some(0), Some(0), Some(0)),
        "{again}"
    );
    // Every account waiting for a reset still holds a live token: none is issued twice.
    assert_eq!(again["passwordResets"].as_u64(), Some(0), "{again}");
    let unchanged = admin(&db, &["verify"], None).await.json();
    assert_eq!(
        unchanged["lastSeq"], verified["lastSeq"],
        "a second import changed the journal"
    );
    // Refused before anything is written: a position needs pairs, which a market the exchange
    // has halted cannot make; a balance or position applied before comes back changed (the
    // same records, spaced and ordered otherwise, are the same).
    let later = db.dir().join("later.jsonl");
    let lines = [
        r#"{"type":"position","email":"user1@example.com","market":"paused","yesShares":1}"#,
        r#"{"type":"balance","email":"user0@example.com","amount":"1.01"}"#,
        r#"{"type":"position","email":"user0@example.com","market":"btc-50k","yesShares":2,"yesCost":"0.00"}"#,
        r#"{ "amount": "2.01", "email": "user1@example.com", "type": "balance" }"#,
    ];
    std::fs::write(&later, lines.join("\n")).expect("write the file");
    let refused = admin(&db, &["import", &path_arg(&later)], None).await;
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    for expected in [
        "line 1: market paused is HALTED",
        "line 2: the balance of user0@example.com was imported with another amount",
        "line 3: the position of user0@example.com in btc-50k was imported with other values",
    ] {
        assert!(
            refused.stderr.contains(expected),
            "{expected}: {}",
            refused.stderr
        );
    }
    assert!(!refused.stderr.contains("line 4"), "{}", refused.stderr);

    // What the file said, as the API serves it.
    let (_server, api) = running(&db).await;
    let argon2_user = api
        .login("user0@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(total(&api, &argon2_user).await, "1.00");
    // user0 holds 1 YES of btc-50k (at no cost) and 2 NO of paused.
    let positions = api.get("/v1/portfolio/positions", &argon2_user).await;
    let mut held: Vec<(u64, u64)> = positions["data"]
        .as_array()
        .expect("positions")
        .iter()
        .map(|p| {
            (
                p["yesShares"].as_u64().unwrap_or(0),
                p["noShares"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    held.sort_unstable();
    assert_eq!(held, vec![(0, 2), (1, 0)], "{positions}");
    // bcrypt logs in, and is replaced by argon2id on the way.
    let bcrypt_user = api
        .login("user1@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(total(&api, &bcrypt_user).await, "2.01");
    let db_now = server::db::Db::connect(&db.storage, 1)
        .await
        .expect("connect");
    let upgraded: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = $1")
        .bind("user1@example.com")
        .fetch_one(&db_now.pool)
        .await
        .expect("the row");
    db_now.pool.close().await;
    assert!(upgraded.starts_with("$argon2id$"), "{upgraded}");
    // An unverifiable hash opens nothing; its reset token sets a password, once.
    let reset = &resets[0];
    let email = reset["email"].as_str().expect("an email");
    let (status, _) = api
        .try_send(
            reqwest::Method::POST,
            "/v1/auth/login",
            "",
            Some(serde_json::json!({"email": email, "password": crate::helpers::PASSWORD})),
        )
        .await
        .expect("an answer");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body =
        serde_json::json!({ "token": reset["token"], "newPassword": "a brand new passphrase" });
    let user = api
        .post("/v1/auth/password-reset", "", body.clone(), StatusCode::OK)
        .await;
    assert_eq!(user["email"].as_str(), Some(email));
    api.post(
        "/v1/auth/password-reset",
        "",
        body,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let token = api.login(email, "a brand new passphrase").await;
    assert!(!total(&api, &token).await.is_empty());
}

async fn a_malformed_import_lists_every_bad_record_and_writes_nothing(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let before = admin(&db, &["snapshot"], None).await.json();
    let file = db.dir().join("bad.jsonl");
    let lines = [
        r#"{"type":"user","email":"ok@example.com","name":"Fine"}"#,
        r#"{"type":"user","email":"not an email","name":"Bad"}"#,
        r#"{"type":"balance","email":"ok@example.com","amount":"-5"}"#,
        r#"{"type":"wallet","email":"ok@example.com"}"#,
        r#"{"type":"user","email":"ok@example.com","name":"Twice"}"#,
        r#"not json"#,
        r#"{"type":"balance","email":"ghost@example.com","amount":"5"}"#,
        r#"{"type":"market","slug":"shut","question":"Shut?","state":"RESOLVED","resolution":{"outcome":"NO"}}"#,
        r#"{"type":"position","email":"ok@example.com","market":"shut","yesShares":1}"#,
        r#"{"type":"position","email":"ok@example.com","market":"nowhere","noShares":1}"#,
        r#"{"type":"market","slug":"Bad Slug","question":"?"}"#,
        r#"{"type":"user","email":"extra@example.com","name":"X","admin":true}"#,
    ];
    std::fs::write(&file, lines.join("\n")).expect("write the file");
    let refused = admin(&db, &["import", &path_arg(&file)], None).await;
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    for line in [2, 3, 4, 5, 6, 7, 9, 10, 11, 12] {
        assert!(
            refused.stderr.contains(&format!("line {line}: ")),
            "line {line} not reported:\n{}",
            refused.stderr
        );
    }
    for line in [1, 8] {
        assert!(
            !refused.stderr.contains(&format!("line {line}: ")),
            "{}",
            refused.stderr
        );
    }
    assert!(
        refused.stderr.contains("10 bad record(s)"),
        "{}",
        refused.stderr
    );
    let after = admin(&db, &["verify"], None).await.json();
    assert_eq!(
        after["lastSeq"], before["seq"],
        "a refused import wrote to the journal"
    );
    let export = admin(&db, &["export"], None).await;
    assert!(
        !export.stdout.contains("ok@example.com"),
        "{}",
        export.stdout
    );
}

/// PostgreSQL only: a SQLite lock ends only with its process.
#[tokio::test]
async fn a_server_whose_lock_session_ends_stops_before_another_can_start() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let (client, mut server) = first_run(&db).await;
    let Storage::Postgres(url) = &db.storage else {
        unreachable!("a PostgreSQL test database");
    };
    let admin = sqlx::AnyPool::connect(url).await.expect("connect");
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(&admin)
    .await
    .expect("terminate the lock's session");
    admin.close().await;
    assert_eq!(ended, [true], "one session held the writer lock");
    let status = server.exit_status(Duration::from_secs(10)).await;
    assert!(!status.success(), "{status}");
    assert!(
        server.log_text().contains("the writer lock was lost"),
        "{}",
        server.log_text()
    );
    // Its successor takes the database over with everything.
    let mut next = ServerProcess::start(&db, 1);
    next.wait_ready(&client).await;
}
