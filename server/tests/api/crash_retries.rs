//! Twenty kills under mixed traffic, per database. The real `server` binary runs as a child
//! process; four clients place, batch, cancel, amend and deposit — every POST under an
//! `Idempotency-Key`, some retried at once — while the process is SIGKILLed at a random moment
//! (every other run stores a snapshot with each batch, so those kills land in snapshot writes).
//! After each restart:
//!
//! - the restart succeeds (recovery replays, checks the chain and every invariant);
//! - every request the kill left unanswered is retried with its key (or, for DELETE and
//!   PATCH, sent again) and answered; no retry finds its key stuck;
//! - a retry of an answered request replays that answer byte for byte;
//! - each trader's orders are exactly the ones its acknowledged requests placed (none twice),
//!   each in the state the acknowledged requests left it; its locked cash is exactly what its
//!   open orders reserve, its total exactly its deposits (nothing trades: every order is a
//!   bid), and each deposit appears once.

use std::collections::BTreeMap;
use std::time::Duration;

use engine::units::{buy_reserve_micros, PRICE_SCALE};
use engine::LockRule;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::crash::{first_run, ServerProcess};
use crate::helpers::{Backend, TestDb, ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD};

crate::on_both_databases!(twenty_kills_lose_nothing_acknowledged_and_run_no_retry_twice);

const CYCLES: u64 = 20;
const CLIENTS: usize = 4;
/// Each cycle's kill comes this long after the clients start, at random within.
const KILL_AFTER_MS: std::ops::Range<u64> = 100..700;
const DEPOSIT_MICROS: i64 = 1_000_000_000;

/// One request: where, what, and (for a POST) its key.
#[derive(Clone, Debug)]
struct Request {
    method: Method,
    path: String,
    body: Option<Value>,
    key: Option<String>,
    /// The admin's token for deposits, else the trader's.
    as_admin: bool,
}

struct Answer {
    status: StatusCode,
    replayed: bool,
    body: Value,
}

#[derive(Clone)]
struct Http {
    client: Client,
    base: String,
}

impl Http {
    async fn send(&self, token: &str, request: &Request) -> Option<Answer> {
        let url = format!("{}{}", self.base, request.path);
        let mut builder = self
            .client
            .request(request.method.clone(), url)
            .bearer_auth(token);
        if let Some(key) = &request.key {
            builder = builder.header("idempotency-key", key);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let answer = builder.send().await.ok()?;
        let status = answer.status();
        let replayed = answer.headers().contains_key("idempotent-replayed");
        let body = answer.json().await.ok()?;
        Some(Answer {
            status,
            replayed,
            body,
        })
    }

    /// `send` until it is answered: a transport error (a pooled connection to the killed
    /// process, a busy machine) is retried, which a request with a key is made for.
    async fn send_keyed(&self, token: &str, request: &Request) -> Answer {
        assert!(
            request.key.is_some(),
            "only a keyed request is safe to resend"
        );
        for _ in 0..5 {
            if let Some(answer) = self.send(token, request).await {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{request:?}: no answer in five tries")
    }

    async fn expect(&self, token: &str, request: &Request, status: StatusCode) -> Value {
        let answer = self
            .send(token, request)
            .await
            .unwrap_or_else(|| panic!("{request:?}: no answer"));
        assert_eq!(answer.status, status, "{request:?}: {}", answer.body);
        answer.body
    }
}

/// A trader's request without a key.
fn request(method: Method, path: String, body: Option<Value>) -> Request {
    Request {
        method,
        path,
        body,
        key: None,
        as_admin: false,
    }
}

fn post(path: &str, body: Value) -> Request {
    request(Method::POST, path.to_owned(), Some(body))
}

/// What one trader was told: its orders (id -> price units, remaining qty, open) and deposits.
#[derive(Default)]
struct Book {
    orders: BTreeMap<String, (u16, u64, bool)>,
    deposits: Vec<i64>,
    /// The last keyed request answered and its answer, to retry.
    last_keyed: Option<(Request, StatusCode, Value)>,
}

impl Book {
    fn open_orders(&self) -> Vec<String> {
        self.orders
            .iter()
            .filter(|(_, (_, _, open))| *open)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Takes in what an answered request did.
    fn learn(&mut self, request: &Request, status: StatusCode, body: &Value) {
        match (request.method.as_str(), status) {
            ("POST", StatusCode::CREATED) if request.path == "/v1/orders" => {
                self.placed(&body["order"]);
            }
            ("POST", StatusCode::OK) if request.path == "/v1/orders/batch" => {
                for item in body["place"].as_array().expect("place results") {
                    assert!(item["error"].is_null(), "a batch item failed: {item}");
                    self.placed(&item["order"]);
                }
                for item in body["cancel"].as_array().expect("cancel results") {
                    assert!(item["error"].is_null(), "a batch cancel failed: {item}");
                    self.cancelled(item["order"]["id"].as_str().expect("an id"));
                }
            }
            ("POST", StatusCode::CREATED) => {
                self.deposits.push(micros(&body["amount"]));
            }
            ("DELETE", StatusCode::OK) => self.cancelled(body["id"].as_str().expect("an id")),
            ("PATCH", StatusCode::OK) => {
                let order = &body["order"];
                let entry = self
                    .orders
                    .get_mut(order["id"].as_str().expect("an id"))
                    .expect("an order we placed");
                entry.1 = order["remainingQty"].as_u64().expect("a qty");
            }
            _ => panic!("{request:?} answered {status}: {body}"),
        }
    }

    fn placed(&mut self, order: &Value) {
        let id = order["id"].as_str().expect("an order id").to_owned();
        let price = price_units(&order["price"]);
        let qty = order["remainingQty"].as_u64().expect("a qty");
        assert!(
            self.orders.insert(id.clone(), (price, qty, true)).is_none(),
            "order {id} placed twice"
        );
    }

    /// A cancelled order rests no more: nothing remains of it.
    fn cancelled(&mut self, id: &str) {
        let order = self.orders.get_mut(id).expect("an order we placed");
        order.1 = 0;
        order.2 = false;
    }
}

fn micros(amount: &Value) -> i64 {
    let text = amount.as_str().expect("an amount");
    let (units, cents) = text.split_once('.').unwrap_or((text, "0"));
    let cents = format!("{cents:0<6}");
    units.parse::<i64>().unwrap() * 1_000_000 + cents.parse::<i64>().unwrap()
}

fn price_units(price: &Value) -> u16 {
    let micros = micros(price);
    u16::try_from(micros * i64::from(PRICE_SCALE) / 1_000_000).unwrap()
}

/// The next request of a client, at random; `None` when its pick has nothing to act on.
fn next_request(rng: &mut StdRng, book: &Book, market: &str, tag: &str) -> Option<Request> {
    let order = |rng: &mut StdRng| {
        json!({ "marketId": market, "side": "BUY", "outcome": "YES", "type": "LIMIT",
                "price": format!("0.{:02}", rng.gen_range(1..=40)), "qty": rng.gen_range(1..=5) })
    };
    let open = book.open_orders();
    let pick = rng.gen_range(0..100);
    let mut request = match pick {
        0..=34 => post("/v1/orders", order(rng)),
        35..=49 => {
            let places: Vec<Value> = (0..3).map(|_| order(rng)).collect();
            let cancels: Vec<&String> = open.first().into_iter().collect();
            post(
                "/v1/orders/batch",
                json!({ "place": places, "cancel": cancels }),
            )
        }
        50..=64 => request(
            Method::DELETE,
            format!("/v1/orders/{}", open.first()?),
            None,
        ),
        65..=79 => {
            let (id, qty) = open
                .iter()
                .map(|id| (id, book.orders[id].1))
                .find(|(_, qty)| *qty > 1)?;
            request(
                Method::PATCH,
                format!("/v1/orders/{id}"),
                Some(json!({ "qty": qty - 1 })),
            )
        }
        80..=89 => {
            // Unique amounts: each deposit can be told apart in the transfers.
            let cents = rng.gen_range(1..=99_999);
            let mut deposit = post(
                "/v1/transfers/deposit",
                json!({ "userId": tag, "amount": format!("1.{cents:05}") }),
            );
            deposit.as_admin = true;
            deposit
        }
        _ => {
            return book
                .last_keyed
                .as_ref()
                .map(|(request, _, _)| request.clone())
        }
    };
    if request.method == Method::POST {
        request.key = Some(format!("{tag}-{}", rng.gen::<u64>()));
    }
    Some(request)
}

struct Trader {
    user_id: String,
    token: String,
    book: Book,
}

/// Sends requests until the process stops answering; the request it was killed in, if any.
async fn trade_until_killed(
    http: Http,
    admin: String,
    mut trader: Trader,
    market: String,
    seed: u64,
) -> (Trader, Option<Request>) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let Some(request) = next_request(&mut rng, &trader.book, &market, &trader.user_id) else {
            continue;
        };
        let token = if request.as_admin {
            &admin
        } else {
            &trader.token
        };
        let Some(answer) = http.send(token, &request).await else {
            return (trader, Some(request));
        };
        let retry = trader
            .book
            .last_keyed
            .as_ref()
            .is_some_and(|(last, _, _)| last.key == request.key);
        if retry {
            let (_, status, body) = trader.book.last_keyed.as_ref().expect("a last request");
            assert!(answer.replayed, "{request:?} ran again");
            assert_eq!((&answer.status, &answer.body), (status, body));
            continue;
        }
        trader.book.learn(&request, answer.status, &answer.body);
        if request.key.is_some() {
            trader.book.last_keyed = Some((request, answer.status, answer.body));
        }
    }
}

/// Sends again the request a kill left unanswered and takes in what it did: a keyed one gets
/// the committed answer or runs now; a DELETE or PATCH repeated finds its work done, or does it.
async fn resolve(http: &Http, admin: &str, trader: &mut Trader, request: Request, cycle: u64) {
    let token = if request.as_admin {
        admin
    } else {
        &trader.token
    };
    let answer = http
        .send(token, &request)
        .await
        .unwrap_or_else(|| panic!("cycle {cycle}: {request:?} unanswered twice"));
    let is_retry = request.key.is_some()
        && trader
            .book
            .last_keyed
            .as_ref()
            .is_some_and(|(last, _, _)| last.key == request.key);
    if is_retry {
        let (_, status, body) = trader.book.last_keyed.as_ref().expect("a last request");
        assert!(answer.replayed, "cycle {cycle}: {request:?} ran again");
        assert_eq!(
            (&answer.status, &answer.body),
            (status, body),
            "cycle {cycle}"
        );
        return;
    }
    let id = request.path.trim_start_matches("/v1/orders/");
    match (request.method.as_str(), answer.status) {
        // The first one was committed: the order is already cancelled...
        ("DELETE", status) if status != StatusCode::OK => trader.book.cancelled(id),
        // ...or already at the quantity asked for.
        ("PATCH", status) if status != StatusCode::OK => {
            let qty = request.body.as_ref().expect("a body")["qty"]
                .as_u64()
                .unwrap();
            trader.book.orders.get_mut(id).expect("our order").1 = qty;
        }
        _ => trader.book.learn(&request, answer.status, &answer.body),
    }
    if request.key.is_some() {
        trader.book.last_keyed = Some((request, answer.status, answer.body));
    }
}

/// Every order, open and closed, of `token`'s user: id -> (price units, remaining, open).
async fn orders_now(http: &Http, token: &str) -> BTreeMap<String, (u16, u64, bool)> {
    let mut orders = BTreeMap::new();
    for status in ["open", "closed"] {
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/orders?status={status}&limit=100");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let get = request(Method::GET, path, None);
            let page = http.expect(token, &get, StatusCode::OK).await;
            for order in page["data"].as_array().expect("orders") {
                let id = order["id"].as_str().expect("an id").to_owned();
                let open =
                    ["OPEN", "PARTIALLY_FILLED"].contains(&order["status"].as_str().unwrap());
                let entry = (
                    price_units(&order["price"]),
                    order["remainingQty"].as_u64().expect("a qty"),
                    open,
                );
                assert!(orders.insert(id, entry).is_none(), "listed twice");
            }
            match page["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }
    orders
}

/// Everything the traders were told is what the restarted server holds.
async fn check_books(http: &Http, traders: &[Trader], cycle: u64) {
    for trader in traders {
        let book = &trader.book;
        let held = orders_now(http, &trader.token).await;
        assert_eq!(
            held, book.orders,
            "cycle {cycle}: orders of {}",
            trader.user_id
        );
        let balance = request(Method::GET, "/v1/portfolio/balance".into(), None);
        let balance = http.expect(&trader.token, &balance, StatusCode::OK).await;
        let locked: i64 = book
            .orders
            .values()
            .filter(|(_, _, open)| *open)
            .map(|(price, qty, _)| buy_reserve_micros(*qty, *price, 0, 0, LockRule::CURRENT))
            .sum();
        let deposited: i64 = DEPOSIT_MICROS + book.deposits.iter().sum::<i64>();
        assert_eq!(
            micros(&balance["locked"]),
            locked,
            "cycle {cycle}: {balance}"
        );
        assert_eq!(
            micros(&balance["total"]),
            deposited,
            "cycle {cycle}: {balance}"
        );
        let transfers = request(
            Method::GET,
            "/v1/portfolio/transfers?limit=100".into(),
            None,
        );
        let transfers = http.expect(&trader.token, &transfers, StatusCode::OK).await;
        let mut amounts: Vec<i64> = transfers["data"]
            .as_array()
            .expect("transfers")
            .iter()
            .map(|transfer| micros(&transfer["amount"]))
            .collect();
        let mut expected: Vec<i64> = book.deposits.clone();
        expected.push(DEPOSIT_MICROS);
        amounts.sort_unstable();
        expected.sort_unstable();
        assert_eq!(amounts, expected, "cycle {cycle}: each deposit once");
    }
}

async fn twenty_kills_lose_nothing_acknowledged_and_run_no_retry_twice(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let mut run = 0;
    let (client, mut server) = first_run(&db).await;
    let mut http = Http {
        client: client.clone(),
        base: server.base.clone(),
    };
    let login = |email: &str, password: &str| {
        post(
            "/v1/auth/login",
            json!({ "email": email, "password": password }),
        )
    };
    let admin = http
        .expect("", &login(ADMIN_EMAIL, ADMIN_PASSWORD), StatusCode::OK)
        .await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let market = http
        .expect(
            &admin,
            &post(
                "/v1/markets",
                json!({ "slug": "kills", "question": "Twenty kills?", "description": "Crash test.",
                        "tickSize": "0.01", "minQty": 1, "maxQty": 1000,
                        "makerFeeRate": "0", "takerFeeRate": "0" }),
            ),
            StatusCode::CREATED,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut traders = Vec::new();
    for n in 0..CLIENTS {
        let email = format!("trader{n}@example.com");
        let register = post(
            "/v1/auth/register",
            json!({ "email": email, "password": PASSWORD, "fullName": "Crash Tester" }),
        );
        let user = http.expect("", &register, StatusCode::CREATED).await;
        let user_id = user["user"]["id"].as_str().unwrap().to_owned();
        let deposit = post(
            "/v1/transfers/deposit",
            json!({ "userId": user_id, "amount": "1000" }),
        );
        http.expect(&admin, &deposit, StatusCode::CREATED).await;
        let token = http
            .expect("", &login(&email, PASSWORD), StatusCode::OK)
            .await["accessToken"]
            .as_str()
            .unwrap()
            .to_owned();
        traders.push(Trader {
            user_id,
            token,
            book: Book::default(),
        });
    }

    let mut rng = StdRng::seed_from_u64(backend as u64);
    let (mut cut_off, mut from_commit, mut ran_again) = (0, 0, 0);
    for cycle in 0..CYCLES {
        let mut clients = tokio::task::JoinSet::new();
        for (n, trader) in traders.drain(..).enumerate() {
            let seed = cycle * 100 + n as u64;
            clients.spawn(trade_until_killed(
                http.clone(),
                admin.clone(),
                trader,
                market.clone(),
                seed,
            ));
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(KILL_AFTER_MS))).await;
        server.kill();
        let mut ended = clients.join_all().await;
        ended.sort_by(|a, b| a.0.user_id.cmp(&b.0.user_id));

        run += 1;
        // Every other run stores a snapshot with every batch: its kill lands in a snapshot's
        // write or between two, and the next start restores the one it left.
        let snapshot_every = if run % 2 == 1 { 1 } else { 20 };
        server = ServerProcess::start_with(&db, run, snapshot_every);
        server.wait_ready(&client).await;
        http.base = server.base.clone();
        for (mut trader, unanswered) in ended {
            if let Some(request) = unanswered {
                cut_off += 1;
                resolve(&http, &admin, &mut trader, request, cycle).await;
            }
            // The last keyed answer replays exactly, across the restart.
            if let Some((request, status, body)) = &trader.book.last_keyed {
                let token = if request.as_admin {
                    &admin
                } else {
                    &trader.token
                };
                let again = http.send_keyed(token, request).await;
                assert!(again.replayed, "cycle {cycle}: {request:?} ran again");
                assert_eq!(
                    (&again.status, &again.body),
                    (status, body),
                    "cycle {cycle}"
                );
            }
            traders.push(trader);
        }
        check_books(&http, &traders, cycle).await;
        let log = server.log_text();
        for line in log.lines().filter(|line| line.contains("was taken over")) {
            if line.contains("\"committed\":true") {
                from_commit += 1;
            } else {
                ran_again += 1;
            }
        }
        assert!(
            log.contains("engine recovered and verified"),
            "cycle {cycle}:\n{log}"
        );
    }
    let acknowledged: usize = traders.iter().map(|t| t.book.orders.len()).sum();
    eprintln!(
        "{CYCLES} kills: {acknowledged} orders, {cut_off} requests cut off and retried; \
         keys taken over: {from_commit} answered from their commit, {ran_again} run"
    );
    assert!(
        acknowledged > 100,
        "only {acknowledged} orders in {CYCLES} cycles"
    );
    assert!(
        cut_off >= CYCLES as usize,
        "the kills caught only {cut_off} requests in flight"
    );
}
