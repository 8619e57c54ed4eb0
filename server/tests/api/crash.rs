//! Crash recovery of the real binary. The `server` executable runs as a child process on a
//! fresh database and is driven past many snapshots, with orders resting on two markets whose
//! engine ids lie several id pages (4,096 ids) apart and a market resolved. Then, several
//! times over, clients place and cancel orders while the process is killed with SIGKILL, and
//! a new process starts on the same data: every start must succeed (from a snapshot, not only
//! by replaying the journal from empty), and everything acknowledged before a kill must be
//! there after it.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use server::config::Storage;
use sqlx::Connection;
use tokio::task::JoinSet;

use crate::helpers::{Backend, TestDb, ADMIN_EMAIL, ADMIN_PASSWORD, JWT_SECRET, PASSWORD};

crate::on_both_databases!(
    a_killed_server_restarts_with_everything_it_acknowledged,
    a_server_that_cannot_commit_exits_and_restarts_with_what_it_acknowledged,
);

/// Commands between two snapshots: few, so the run crosses dozens of them.
const SNAPSHOT_EVERY: u32 = 20;
/// IOC orders (each takes an engine order id and never rests) between two resting orders:
/// more than an id page.
const TAKERS_BETWEEN_RESTING: usize = 4_200;
/// Orders per batch request (the API's most).
const BATCH_ITEMS: usize = 100;
/// How long clients trade before each kill, one cycle each.
const KILL_AFTER_MS: [u64; 3] = [250, 700, 1_300];
/// Clients placing and cancelling while the process is killed.
const CLIENTS: usize = 8;
/// How long a (debug) server may take to recover and listen.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// One run of the `server` binary, killed when dropped.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) base: String,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts the binary on `db`, configured only through its environment, as an operator would.
    pub(crate) fn start(db: &TestDb, run: usize) -> ServerProcess {
        ServerProcess::start_with(db, run, SNAPSHOT_EVERY)
    }

    /// `start`, storing a snapshot every `snapshot_every` commands.
    pub(crate) fn start_with(db: &TestDb, run: usize, snapshot_every: u32) -> ServerProcess {
        // A free port: bind, read it, let it go (the child binds it a moment later).
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let log = db.dir().join(format!("server-{run}.log"));
        let output = File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
        command
            // Its own directory: no `.env` of the developer's is read.
            .current_dir(db.dir())
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env("APP_ENV", "development")
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("DATA_DIR", db.dir())
            .env("JWT_SECRET", JWT_SECRET)
            .env("ADMIN_EMAIL", ADMIN_EMAIL)
            .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SNAPSHOT_EVERY", snapshot_every.to_string())
            .env("RATE_LIMIT_ORDERS_PER_SECOND", "1000000")
            .env("RATE_LIMIT_AUTH_PER_MINUTE", "1000000")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log file"))
            .stderr(output);
        if let Storage::Postgres(url) = &db.storage {
            command.env("DATABASE_URL", url);
        }
        let child = command.spawn().expect("the server binary starts");
        ServerProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/healthz` answers 200; panics with the server's log if it exits first.
    pub(crate) async fn wait_ready(&mut self, client: &Client) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!(
                    "the server exited with {status} instead of starting:\n{}",
                    self.log_text()
                );
            }
            let health = client.get(format!("{}/healthz", self.base)).send().await;
            if health.is_ok_and(|answer| answer.status() == StatusCode::OK) {
                return;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the server did not start within {START_TIMEOUT:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit on its own; its exit status.
    pub(crate) async fn exit_status(&mut self, within: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return status;
            }
            assert!(
                started.elapsed() < within,
                "the server still runs after {within:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no drain, no final snapshot, no flush of anything still in memory.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

/// A client for a server that may be slow to answer, and the first run of the binary on `db`,
/// ready.
pub(crate) async fn first_run(db: &TestDb) -> (Client, ServerProcess) {
    let client = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let mut server = ServerProcess::start(db, 0);
    server.wait_ready(&client).await;
    (client, server)
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// JSON over HTTP to the current process.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) client: Client,
    pub(crate) base: String,
}

impl Api {
    /// The status and JSON body, or `None` when the request failed (the process is gone). An
    /// empty `token` sends none.
    pub(crate) async fn try_send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Option<(StatusCode, Value)> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.ok()?;
        let status = answer.status();
        Some((status, answer.json().await.ok()?))
    }

    /// Like `try_send`, for a process that must answer, with the status it must answer.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        expected: StatusCode,
    ) -> Value {
        let (status, body) = self
            .try_send(method.clone(), path, token, body)
            .await
            .unwrap_or_else(|| panic!("{method} {path}: no answer"));
        assert_eq!(status, expected, "{method} {path}: {body}");
        body
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        token: &str,
        body: Value,
        expected: StatusCode,
    ) -> Value {
        self.send(Method::POST, path, token, Some(body), expected)
            .await
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> Value {
        self.send(Method::GET, path, token, None, StatusCode::OK)
            .await
    }

    pub(crate) async fn login(&self, email: &str, password: &str) -> String {
        let body = json!({ "email": email, "password": password });
        let answer = self.post("/v1/auth/login", "", body, StatusCode::OK).await;
        answer["accessToken"].as_str().expect("a token").to_owned()
    }

    /// Registers a funded trader; returns its access token.
    pub(crate) async fn trader(&self, admin: &str, email: &str) -> String {
        let body = json!({ "email": email, "password": PASSWORD, "fullName": "Crash Tester" });
        let registered = self
            .post("/v1/auth/register", "", body, StatusCode::CREATED)
            .await;
        let deposit = json!({ "userId": registered["user"]["id"], "amount": "100000" });
        self.post("/v1/transfers/deposit", admin, deposit, StatusCode::CREATED)
            .await;
        self.login(email, PASSWORD).await
    }

    pub(crate) async fn market(&self, admin: &str, slug: &str) -> String {
        let body = json!({
            "slug": slug,
            "question": format!("Will {slug} happen?"),
            "description": "A market for the crash test.",
            "tickSize": "0.01",
            "minQty": 1,
            "maxQty": 1000,
            "makerFeeRate": "0",
            "takerFeeRate": "0",
        });
        let market = self
            .post("/v1/markets", admin, body, StatusCode::CREATED)
            .await;
        market["id"].as_str().expect("a market id").to_owned()
    }

    /// A limit order; returns its body.
    pub(crate) async fn limit(&self, token: &str, order: Value) -> Value {
        let answer = self
            .post("/v1/orders", token, order, StatusCode::CREATED)
            .await;
        answer["order"].clone()
    }
}

pub(crate) fn limit_order(market: &str, outcome: &str, price: &str, qty: u64, tif: &str) -> Value {
    json!({
        "marketId": market, "side": "BUY", "outcome": outcome, "type": "LIMIT",
        "price": price, "qty": qty, "timeInForce": tif,
    })
}

/// What a client was told, and what it asked without being told.
#[derive(Default)]
struct Seen {
    /// Orders acknowledged as placed (201), by id.
    placed: Vec<String>,
    /// Orders whose cancel was acknowledged (200).
    cancelled: Vec<String>,
    /// Orders whose cancel was sent but not answered: either outcome is right.
    cancel_unanswered: Vec<String>,
}

/// Places resting orders and cancels every other one until the process stops answering.
async fn trade_until_killed(
    api: Api,
    token: String,
    markets: [String; 2],
    client: usize,
) -> (usize, Seen) {
    let mut seen = Seen::default();
    for step in 0.. {
        let market = &markets[step % 2];
        let price = format!("0.{:02}", 5 + (client + step) % 10);
        let order = limit_order(market, "YES", &price, 1, "GTC");
        let Some((status, body)) = api
            .try_send(Method::POST, "/v1/orders", &token, Some(order))
            .await
        else {
            return (client, seen);
        };
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["order"]["id"]
            .as_str()
            .expect("an order id")
            .to_owned();
        seen.placed.push(id.clone());
        if step % 2 == 1 {
            let path = format!("/v1/orders/{id}");
            match api.try_send(Method::DELETE, &path, &token, None).await {
                Some((StatusCode::OK, _)) => seen.cancelled.push(id),
                Some((status, body)) => panic!("cancel answered {status}: {body}"),
                None => {
                    seen.cancel_unanswered.push(id);
                    return (client, seen);
                }
            }
        }
    }
    unreachable!("the loop ends when the process is killed")
}

async fn order_status(api: &Api, token: &str, id: &str) -> (String, u64) {
    let order = api.get(&format!("/v1/orders/{id}"), token).await;
    let status = order["status"].as_str().expect("a status").to_owned();
    (status, order["remainingQty"].as_u64().expect("a quantity"))
}

async fn a_killed_server_restarts_with_everything_it_acknowledged(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let mut run = 0;
    let (client, mut server) = first_run(&db).await;
    let mut api = Api {
        client: client.clone(),
        base: server.base.clone(),
    };

    let admin = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let maker = api.trader(&admin, "maker@example.com").await;
    let taker = api.trader(&admin, "taker@example.com").await;
    let first = api.market(&admin, "first").await;
    let second = api.market(&admin, "second").await;
    let settled = api.market(&admin, "settled").await;

    // A market that trades, closes and resolves: every later snapshot holds a resolution.
    api.limit(&maker, limit_order(&settled, "YES", "0.50", 4, "GTC"))
        .await;
    let minted = api
        .limit(&taker, limit_order(&settled, "NO", "0.50", 4, "GTC"))
        .await;
    assert_eq!(minted["status"], "FILLED");
    for (action, body) in [
        ("close", json!({})),
        ("resolve", json!({ "outcome": "YES" })),
    ] {
        let path = format!("/v1/markets/{settled}/{action}");
        api.post(&path, &admin, body, StatusCode::OK).await;
    }

    // Resting orders, thousands of order ids apart. A snapshot lists them market by market,
    // best price first: the order on page 2 before the one on page 0, page 3's before page 1's.
    let resting = [
        (&second, "YES", "0.30"),
        (&first, "YES", "0.20"),
        (&second, "YES", "0.40"),
        (&first, "NO", "0.40"), // the YES ask at 0.60, which each cycle's check buys from
    ];
    let mut rested = Vec::new();
    for (market, outcome, price) in resting {
        let order = api
            .limit(&maker, limit_order(market, outcome, price, 10, "GTC"))
            .await;
        rested.push(order["id"].as_str().expect("an id").to_owned());
        let taker_order = limit_order(market, "YES", "0.01", 1, "IOC");
        for _ in 0..TAKERS_BETWEEN_RESTING / BATCH_ITEMS {
            let batch = json!({ "place": vec![taker_order.clone(); BATCH_ITEMS] });
            let answer = api
                .post("/v1/orders/batch", &taker, batch, StatusCode::OK)
                .await;
            let places = answer["place"].as_array().expect("one result per item");
            assert!(places
                .iter()
                .all(|item| item["order"]["status"] == "CANCELLED"));
        }
    }

    for (cycle, kill_after_ms) in KILL_AFTER_MS.into_iter().enumerate() {
        let mut clients = JoinSet::new();
        for client in 0..CLIENTS {
            let token = if client % 2 == 0 { &maker } else { &taker };
            let markets = [first.clone(), second.clone()];
            clients.spawn(trade_until_killed(
                api.clone(),
                token.clone(),
                markets,
                client,
            ));
        }
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        server.kill();
        let seen: Vec<(usize, Seen)> = clients.join_all().await;

        run += 1;
        server = ServerProcess::start(&db, run);
        server.wait_ready(&client).await;
        api.base = server.base.clone();
        let log = server.log_text();
        assert!(
            log.contains("engine recovered and verified")
                && log.contains("\"snapshot_seq\":\"Some("),
            "cycle {cycle}: the restart must restore a snapshot:\n{log}"
        );

        let mut acknowledged = 0;
        for (client, seen) in &seen {
            let token = if client % 2 == 0 { &maker } else { &taker };
            for id in &seen.placed {
                let (status, _) = order_status(&api, token, id).await;
                let expected: &[&str] = if seen.cancelled.contains(id) {
                    &["CANCELLED"]
                } else if seen.cancel_unanswered.contains(id) {
                    &["OPEN", "CANCELLED"]
                } else {
                    &["OPEN"]
                };
                assert!(
                    expected.contains(&status.as_str()),
                    "cycle {cycle}: order {id} is {status}, expected one of {expected:?}"
                );
                acknowledged += 1;
            }
        }
        assert!(acknowledged > 0, "cycle {cycle}: nothing was acknowledged");

        // The orders from the old pages are where they were, and trade.
        for (index, id) in rested.iter().enumerate() {
            let remaining = if index == 3 { 10 - cycle as u64 } else { 10 };
            let status = order_status(&api, &maker, id).await;
            let expected_status = if remaining == 10 {
                "OPEN"
            } else {
                "PARTIALLY_FILLED"
            };
            assert_eq!(
                status,
                (expected_status.to_owned(), remaining),
                "cycle {cycle}"
            );
        }
        let bought = api
            .limit(&taker, limit_order(&first, "YES", "0.60", 1, "IOC"))
            .await;
        assert_eq!(bought["status"], "FILLED", "cycle {cycle}: {bought}");
        let market = api.get(&format!("/v1/markets/{settled}"), &admin).await;
        assert_eq!(market["state"], "RESOLVED");
        assert_eq!(market["resolution"]["outcome"], "YES");
    }
}

/// Makes every batch commit fail (as a full disk or a broken database would), or undoes it.
async fn break_commits(db: &TestDb, broken: bool) {
    sqlx::any::install_default_drivers();
    let (url, statement) = match (&db.storage, broken) {
        (Storage::Sqlite(path), true) => (
            format!("sqlite://{}", path.display()),
            "CREATE TRIGGER broken BEFORE INSERT ON batches BEGIN SELECT RAISE(ABORT, 'broken'); END",
        ),
        (Storage::Sqlite(path), false) => (
            format!("sqlite://{}", path.display()),
            "DROP TRIGGER broken",
        ),
        (Storage::Postgres(url), true) => (
            url.clone(),
            "ALTER TABLE batches ADD CONSTRAINT broken CHECK (last_seq < 0) NOT VALID",
        ),
        (Storage::Postgres(url), false) => (url.clone(), "ALTER TABLE batches DROP CONSTRAINT broken"),
    };
    let mut connection = sqlx::AnyConnection::connect(&url).await.expect("connect");
    sqlx::query(statement)
        .execute(&mut connection)
        .await
        .expect("the fault is set");
    connection.close().await.ok();
}

/// A commit fails: the sequencer stops (fail-stop), the write gets 503, and
/// the process exits non-zero instead of staying up unable to write. Restarted once the
/// database is whole again, it recovers: what was acknowledged is there, what failed is not.
async fn a_server_that_cannot_commit_exits_and_restarts_with_what_it_acknowledged(
    backend: Backend,
) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let (client, mut server) = first_run(&db).await;
    let mut api = Api {
        client: client.clone(),
        base: server.base.clone(),
    };
    let admin = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let trader = api.trader(&admin, "trader@example.com").await;
    let market = api.market(&admin, "faulty").await;
    let kept = api
        .limit(&trader, limit_order(&market, "YES", "0.20", 1, "GTC"))
        .await;

    break_commits(&db, true).await;
    let order = limit_order(&market, "YES", "0.21", 1, "GTC");
    let (status, body) = api
        .try_send(Method::POST, "/v1/orders", &trader, Some(order))
        .await
        .expect("the failed write is answered");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let exit = server.exit_status(Duration::from_secs(30)).await;
    assert!(!exit.success(), "{exit}");
    assert!(server.log_text().contains("the sequencer failed"));

    break_commits(&db, false).await;
    server = ServerProcess::start(&db, 1);
    server.wait_ready(&client).await;
    api.base = server.base.clone();
    let open = api.get("/v1/orders?status=open", &trader).await;
    let ids: Vec<&Value> = open["data"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|order| &order["id"])
        .collect();
    assert_eq!(ids, [&kept["id"]], "only the acknowledged order");
    api.limit(&trader, limit_order(&market, "YES", "0.22", 1, "GTC"))
        .await;
}
