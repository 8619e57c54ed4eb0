//! Test harness: a real server on port 0 over a fresh database per test.
//!
//! SQLite tests get a new file in a temporary directory. PostgreSQL tests create a uniquely
//! named database on the server of `TEST_DATABASE_URL` and drop it afterwards (even when the
//! test fails); without that variable they print a notice and pass without running.

use std::num::NonZeroU32;

use server::limits::LimitsConfig;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use server::app::Server;
use server::config::{
    AdminBootstrap, AppEnv, AuthConfig, Config, LogFormat, Secret, SequencerConfig, Storage,
    StreamsConfig,
};
use server::db::Db;
use sqlx::Connection;
use uuid::Uuid;

pub const JWT_SECRET: &str = "test-secret-0123456789abcdef-0123456789abcdef";
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin password for tests";
pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs `$name(backend)` once per backend, as `sqlite::$name` and `postgres::$name`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A database that exists for one test.
pub struct TestDb {
    pub storage: Storage,
    dir: PathBuf,
    /// (maintenance URL, database name) for PostgreSQL.
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// A fresh database, or `None` when the backend is not available here.
    pub async fn create(backend: Backend) -> Option<TestDb> {
        let dir = std::env::temp_dir().join(format!("predex-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        match backend {
            Backend::Sqlite => Some(TestDb {
                storage: Storage::Sqlite(dir.join("predex.db")),
                dir,
                postgres: None,
            }),
            Backend::Postgres => {
                let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
                    eprintln!("TEST_DATABASE_URL is not set: skipping a PostgreSQL test");
                    return None;
                };
                sqlx::any::install_default_drivers();
                let name = format!("predex_test_{}", Uuid::new_v4().simple());
                let mut conn = sqlx::AnyConnection::connect(&base)
                    .await
                    .expect("connect to TEST_DATABASE_URL");
                sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut conn)
                    .await
                    .expect("create the test database");
                conn.close().await.ok();
                Some(TestDb {
                    storage: Storage::Postgres(with_database(&base, &name)),
                    dir,
                    postgres: Some((base, name)),
                })
            }
        }
    }
}

impl TestDb {
    /// A directory that lives as long as the database (SQLite's file sits in it).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

/// `base` (a postgres URL) pointing at database `name`.
fn with_database(base: &str, name: &str) -> String {
    let (without_query, query) = match base.split_once('?') {
        Some((url, query)) => (url, format!("?{query}")),
        None => (base, String::new()),
    };
    let scheme_end = without_query.find("://").map_or(0, |i| i + 3);
    let host_part = match without_query[scheme_end..].find('/') {
        Some(slash) => &without_query[..scheme_end + slash],
        None => without_query,
    };
    format!("{host_part}/{name}{query}")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((base, name)) = self.postgres.take() {
            // Drop runs inside the test's runtime: use a thread with its own.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    let mut conn = sqlx::AnyConnection::connect(&base).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&mut conn)
                        .await?;
                    conn.close().await
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop a test database");
            }
        }
    }
}

pub struct TestApp {
    pub server: Option<Server>,
    pub addr: std::net::SocketAddr,
    pub client: Client,
    pub config: Config,
    // Declared last: dropped (database deleted) after the server is gone.
    _db: TestDb,
}

pub fn test_config(storage: Storage, data_dir: PathBuf) -> Config {
    Config {
        env: AppEnv::Development,
        bind_addr: "127.0.0.1:0".parse().unwrap(),
        storage,
        data_dir,
        db_max_connections: 5,
        auth: AuthConfig {
            jwt_secret: Secret::new(JWT_SECRET.as_bytes().to_vec()),
            jwt_issuer: "predex".into(),
            jwt_audience: "predex-api".into(),
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(3_600),
            cookie_secure: false,
        },
        admin: Some(AdminBootstrap {
            email: ADMIN_EMAIL.into(),
            password: Secret::new(ADMIN_PASSWORD.as_bytes().to_vec()),
        }),
        sequencer: SequencerConfig {
            // Small, so tests cross snapshot boundaries and restore from snapshots.
            snapshot_every: 5,
            ..SequencerConfig::default()
        },
        shutdown_grace: Duration::from_secs(5),
        log_format: LogFormat::Pretty,
        faucet: None,
        cors_allowed_origins: Vec::new(),
        trusted_proxies: Vec::new(),
        // Far above what any test sends; `limits.rs` sets its own.
        limits: LimitsConfig {
            auth_per_minute: NonZeroU32::new(100_000).unwrap(),
            orders_per_second: NonZeroU32::new(100_000).unwrap(),
            faucet_per_minute: NonZeroU32::new(100_000).unwrap(),
            reads_per_second: NonZeroU32::new(100_000).unwrap(),
            reads_in_flight: NonZeroU32::new(100_000).unwrap(),
        },
        streams: StreamsConfig::default(),
    }
}

/// A server on a fresh database, or `None` when the backend is not available here.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// `spawn_app` with the test configuration adjusted by `adjust`.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let db = TestDb::create(backend).await?;
    Some(spawn_app_on(db, adjust).await)
}

/// A server on `db` as it stands (a test may have filled it first).
pub async fn spawn_app_on(db: TestDb, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config(db.storage.clone(), db.dir.clone());
    adjust(&mut config);
    let server = server::app::start(config.clone())
        .await
        .expect("server starts");
    TestApp {
        addr: server.local_addr(),
        server: Some(server),
        client: client(),
        config,
        _db: db,
    }
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    pub fn db(&self) -> &Db {
        self.server().db()
    }

    /// Graceful shutdown, then a new server on the same database.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.start_again().await;
    }

    /// Killed where it stands (no drain, no final snapshot), then started again.
    pub async fn crash_and_restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.kill().await;
        }
        self.start_again().await;
    }

    /// Starts a server on the same database (the previous one must be gone).
    pub async fn start_again(&mut self) {
        let server = server::app::start(self.config.clone())
            .await
            .expect("server restarts");
        self.addr = server.local_addr();
        self.server = Some(server);
        // Old keep-alive connections point at the old listener.
        self.client = client();
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let mut request = self.client.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.post(
            "/v1/auth/register",
            None,
            json!({ "email": email, "password": password, "fullName": "Test User" }),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/v1/auth/login",
            None,
            json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Registers and logs in; returns (user id, login answer).
    pub async fn signed_up(&self, email: &str) -> (String, Value) {
        let registered = self.register(email, PASSWORD).await;
        assert_eq!(registered.status(), StatusCode::CREATED);
        let registered: Value = registered.json().await.unwrap();
        let login = self.login(email, PASSWORD).await;
        assert_eq!(login.status(), StatusCode::OK);
        let id = registered["user"]["id"].as_str().unwrap().to_owned();
        (id, login.json().await.unwrap())
    }

    pub async fn admin_token(&self) -> String {
        let login = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(login.status(), StatusCode::OK);
        let body: Value = login.json().await.unwrap();
        body["accessToken"].as_str().unwrap().to_owned()
    }

    pub async fn deposit(&self, admin: &str, user_id: &str, amount: &str) -> Response {
        self.post(
            "/v1/transfers/deposit",
            Some(admin),
            json!({ "userId": user_id, "amount": amount }),
        )
        .await
    }

    /// An admin-created market with a 0.01 tick, 1..=1000 shares and no fees.
    pub async fn create_market(&self, admin: &str, slug: &str, question: &str) -> Value {
        let created = self
            .post(
                "/v1/markets",
                Some(admin),
                json!({
                    "slug": slug,
                    "question": question,
                    "description": "Resolves from the official source.",
                    "tickSize": "0.01",
                    "minQty": 1,
                    "maxQty": 1000,
                    "makerFeeRate": "0",
                    "takerFeeRate": "0",
                }),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        created.json().await.unwrap()
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    /// The admin's token, a market `rain`, and the access tokens of alice and bob, each
    /// credited `amount`.
    pub async fn market_with_two_traders(&self, amount: &str) -> (String, Value, String, String) {
        let admin = self.admin_token().await;
        let market = self.create_market(&admin, "rain", "Rain tomorrow?").await;
        let mut tokens = Vec::new();
        for email in ["alice@example.com", "bob@example.com"] {
            let (user, login) = self.signed_up(email).await;
            let credited = self.deposit(&admin, &user, amount).await;
            assert_eq!(credited.status(), StatusCode::CREATED);
            tokens.push(token(&login, "accessToken"));
        }
        let bob = tokens.pop().expect("bob");
        let alice = tokens.pop().expect("alice");
        (admin, market, alice, bob)
    }

    pub async fn balance(&self, token: &str) -> Value {
        let response = self.get("/v1/portfolio/balance", Some(token)).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

pub fn token(body: &Value, field: &str) -> String {
    body[field].as_str().expect("token field").to_owned()
}

/// The value of the counter or gauge `name` in a `/metrics` text.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from the metrics"))
}

/// Asserts the API's error shape and returns the code.
pub async fn error_code(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("JSON error body");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["code"].as_str().expect("code").to_owned()
}

#[test]
fn postgres_urls_point_at_the_new_database() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/test?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://h:5432", "x"),
        "postgres://h:5432/x"
    );
}
