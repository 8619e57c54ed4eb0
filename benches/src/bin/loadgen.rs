//! `loadgen`: drives a running server over HTTP as traders would and measures it.
//!
//! Setup, through the API: a market (tick 0.001, no fees), two users per connection (one
//! bids, one asks, so no order meets its own user's), each funded by the admin and given an
//! API key. Then each of N workers holds one keep-alive connection and sends WORKLOAD.md's
//! mix, one request at a time: GTC limit orders at 0.490-0.510 (about half cross), cancels of
//! its own resting orders, market orders. Optionally: `--resting R` first rests R orders far
//! from that range (bids at 0.010-0.300, asks at 0.700-0.990, through the batch endpoint), so
//! the books hold R orders throughout; K WebSocket clients follow the market's trades; and
//! `--readers M` anonymous clients read the market's book, ticker, candles and trades over M
//! concurrent connections while the orders run, their answers counted by status. Last, the
//! same N connections request `GET /healthz` for a few seconds: the server's ceiling on this
//! machine, measured in the same run.
//!
//! The server needs its rate limits raised for this (RATE_LIMIT_AUTH_PER_MINUTE,
//! RATE_LIMIT_ORDERS_PER_SECOND, and for `--readers` RATE_LIMIT_READS_PER_SECOND and
//! RATE_LIMIT_READS_IN_FLIGHT: every reader shares one address); the admin comes from `--admin-email`/`--admin-password` or
//! ADMIN_EMAIL/ADMIN_PASSWORD. Exits 1 if setup fails or any answer was an unexpected error.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use benches::loadgen::{next_step, order_body, Api, Credential, Step, Tally};
use benches::measure::percentile;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use sim::rng::SplitMix64;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(about = "Drives a running server over HTTP with the standard order mix")]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Defaults to $ADMIN_EMAIL.
    #[arg(long)]
    admin_email: Option<String>,
    /// Defaults to $ADMIN_PASSWORD.
    #[arg(long)]
    admin_password: Option<String>,
    /// Keep-alive connections (one worker each, one request in flight each).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4_096))]
    connections: u64,
    /// Seconds of order load (unless `--orders` is given).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    seconds: u64,
    /// Instead of a time, run until this many orders are acknowledged (a long run).
    #[arg(long)]
    orders: Option<u64>,
    /// Print the throughput of every this many acknowledged orders.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    report_every: u64,
    /// WebSocket clients following the market's trades.
    #[arg(long, default_value_t = 0)]
    subscribers: u64,
    /// Orders to rest far from the traded range before the load (the books' depth), from
    /// users of their own: one per 500 orders.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    resting: u64,
    /// Anonymous market-data readers, each on its own connection, during the load.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    readers: u64,
    /// Seconds of `GET /healthz` at the end, over the same number of connections.
    #[arg(long, default_value_t = 3)]
    healthz_seconds: u64,
    /// A request not answered in this many seconds counts as an error.
    #[arg(long, default_value_t = 30)]
    timeout_seconds: u64,
    /// One JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,
}

/// One `--report-every` window of a run.
#[derive(Serialize)]
struct Window {
    orders_total: u64,
    orders_per_sec: f64,
}

#[derive(Serialize)]
struct Report {
    connections: u64,
    seconds: f64,
    orders: u64,
    orders_per_sec: f64,
    cancels: u64,
    ack_p50_ms: f64,
    ack_p99_ms: f64,
    ack_p999_ms: f64,
    expected_rejects: std::collections::BTreeMap<String, u64>,
    errors: std::collections::BTreeMap<String, u64>,
    windows: Vec<Window>,
    subscribers: u64,
    resting: u64,
    readers: u64,
    reads: u64,
    reads_per_sec: f64,
    read_p99_ms: Option<f64>,
    /// Readers' answers other than 200, by status.
    read_errors: std::collections::BTreeMap<String, u64>,
    stream_messages: u64,
    stream_p50_ms: Option<f64>,
    stream_p99_ms: Option<f64>,
    healthz_per_sec: f64,
    orders_vs_healthz: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(report) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(&report).expect("a report encodes")
                );
            } else {
                print_report(&report);
            }
            if report.errors.is_empty() && report.read_errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "unexpected errors: {:?}; readers: {:?}",
                    report.errors, report.read_errors
                );
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What each worker trades as.
struct Trader {
    bid_key: String,
    ask_key: String,
}

async fn run(args: &Args) -> Result<Report, String> {
    let timeout = Duration::from_secs(args.timeout_seconds);
    let api = Api::new(&args.url, timeout)?;
    let email = args
        .admin_email
        .clone()
        .or_else(|| std::env::var("ADMIN_EMAIL").ok())
        .ok_or("no admin: pass --admin-email or set ADMIN_EMAIL")?;
    let password = args
        .admin_password
        .clone()
        .or_else(|| std::env::var("ADMIN_PASSWORD").ok())
        .ok_or("no admin password: pass --admin-password or set ADMIN_PASSWORD")?;
    let admin = api.login(&email, &password).await?;
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis();
    let market = api.create_market(&admin, &format!("load-{run_id}")).await?;
    let mut traders = Vec::new();
    for worker in 0..args.connections {
        let bid_key = api
            .funded_user(&admin, &format!("load-{run_id}-{worker}-bid@example.com"))
            .await?;
        let ask_key = api
            .funded_user(&admin, &format!("load-{run_id}-{worker}-ask@example.com"))
            .await?;
        traders.push(Trader { bid_key, ask_key });
    }
    rest_ladder(args, &api, &admin, &market, run_id).await?;
    // Printed once setup is over, so a profiler can start on this line and see only the load.
    eprintln!(
        "setup: market {market}, {} users, {} resting orders",
        2 * args.connections,
        args.resting
    );

    let stop = Arc::new(AtomicBool::new(false));
    let stream = Arc::new(StreamTally::default());
    let mut subscribers = Vec::new();
    for _ in 0..args.subscribers {
        let url = ws_url(&args.url);
        let following = follow_trades(url, market.clone(), stop.clone(), stream.clone());
        subscribers.push(tokio::spawn(following));
    }

    let reads = Arc::new(ReadTally::default());
    let mut readers = Vec::new();
    let reader_client = reqwest::Client::builder()
        .timeout(timeout)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;
    for reader in 0..args.readers {
        let read = read_market(
            reader_client.clone(),
            args.url.trim_end_matches('/').to_owned(),
            market.clone(),
            reader,
            stop.clone(),
            reads.clone(),
        );
        readers.push(tokio::spawn(read));
    }

    let acknowledged = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = match args.orders {
        Some(_) => None,
        None => Some(started + Duration::from_secs(args.seconds)),
    };
    let mut workers = Vec::new();
    for (worker, trader) in traders.into_iter().enumerate() {
        let load = Load {
            api: Api::new(&args.url, timeout)?,
            market: market.clone(),
            trader,
            seed: 42 + worker as u64,
            deadline,
            orders_max: args.orders,
            acknowledged: acknowledged.clone(),
        };
        workers.push(tokio::spawn(load.run()));
    }
    let windows = report_windows(args, &acknowledged, &workers, started).await;
    let mut tally = Tally::default();
    for worker in workers {
        tally.merge(worker.await.map_err(|e| e.to_string())?);
    }
    let seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for subscriber in subscribers {
        let _ = subscriber.await;
    }
    for reader in readers {
        let _ = reader.await;
    }
    let mut read_latencies = std::mem::take(&mut *reads.latencies_us.lock().expect("lock"));
    read_latencies.sort_unstable();
    let read_errors = std::mem::take(&mut *reads.errors.lock().expect("lock"));
    let healthz_per_sec = healthz_ceiling(args, timeout).await?;

    tally.order_latencies_us.sort_unstable();
    let ms = |per_mille| {
        if tally.order_latencies_us.is_empty() {
            0.0
        } else {
            f64::from(percentile(&tally.order_latencies_us, per_mille)) / 1_000.0
        }
    };
    let mut stream_latencies = std::mem::take(&mut *stream.latencies_us.lock().expect("lock"));
    stream_latencies.sort_unstable();
    let stream_ms = |per_mille| {
        (!stream_latencies.is_empty())
            .then(|| percentile(&stream_latencies, per_mille) as f64 / 1_000.0)
    };
    let orders_per_sec = tally.orders as f64 / seconds;
    Ok(Report {
        connections: args.connections,
        seconds,
        orders: tally.orders,
        orders_per_sec,
        cancels: tally.cancels,
        ack_p50_ms: ms(500),
        ack_p99_ms: ms(990),
        ack_p999_ms: ms(999),
        expected_rejects: tally.expected_rejects,
        errors: tally.errors,
        windows,
        subscribers: args.subscribers,
        resting: args.resting,
        readers: args.readers,
        reads: read_latencies.len() as u64,
        reads_per_sec: read_latencies.len() as f64 / seconds,
        read_p99_ms: (!read_latencies.is_empty())
            .then(|| percentile(&read_latencies, 990) as f64 / 1_000.0),
        read_errors,
        stream_messages: stream.messages.load(Ordering::Relaxed),
        stream_p50_ms: stream_ms(500),
        stream_p99_ms: stream_ms(990),
        healthz_per_sec,
        orders_vs_healthz: orders_per_sec / healthz_per_sec.max(f64::MIN_POSITIVE),
    })
}

/// Orders per batch request while resting the ladder.
const LADDER_BATCH: u64 = 100;

/// Rests `--resting` orders far from the traded range, one share each, from users of their
/// own (each up to the engine's default open-order limit): YES bids at 0.010-0.300 and NO
/// bids at 0.010-0.300, which are YES asks at 0.700-0.990, 100 per batch request.
async fn rest_ladder(
    args: &Args,
    api: &Api,
    admin: &str,
    market: &str,
    run_id: u128,
) -> Result<(), String> {
    let per_user = u64::from(engine::units::OPEN_ORDERS_PER_USER_DEFAULT);
    let mut placed = 0;
    let mut user = 0;
    while placed < args.resting {
        let key = api
            .funded_user(admin, &format!("load-{run_id}-ladder-{user}@example.com"))
            .await?;
        let mut mine = 0;
        while mine < per_user && placed < args.resting {
            let count = LADDER_BATCH.min(per_user - mine).min(args.resting - placed);
            let place: Vec<Value> = (0..count)
                .map(|n| {
                    let at = placed + n;
                    let outcome = if at % 2 == 0 { "YES" } else { "NO" };
                    let ticks = 10 + (at / 2) % 291;
                    json!({
                        "marketId": market, "side": "BUY", "outcome": outcome,
                        "type": "LIMIT", "price": format!("0.{ticks:03}"), "qty": 1,
                        "timeInForce": "GTC",
                    })
                })
                .collect();
            let answer = api
                .send(
                    Method::POST,
                    "/v1/orders/batch",
                    Credential::ApiKey(&key),
                    Some(&json!({ "place": place })),
                )
                .await?;
            let rested = answer.body["place"].as_array().map_or(0, |items| {
                items
                    .iter()
                    .filter(|item| item.get("order").is_some())
                    .count()
            });
            if !answer.status.is_success() || rested as u64 != count {
                let status = answer.status;
                return Err(format!("resting the ladder: {status} {}", answer.body));
            }
            mine += count;
            placed += count;
        }
        user += 1;
    }
    Ok(())
}

#[derive(Default)]
struct ReadTally {
    latencies_us: std::sync::Mutex<Vec<u32>>,
    errors: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

/// One anonymous reader: the market's book, ticker, candles and trades in turn, one request
/// at a time, until `stop`.
async fn read_market(
    client: reqwest::Client,
    base: String,
    market: String,
    reader: u64,
    stop: Arc<AtomicBool>,
    tally: Arc<ReadTally>,
) {
    let paths = [
        format!("{base}/v1/markets/{market}/book"),
        format!("{base}/v1/markets/{market}/ticker"),
        format!("{base}/v1/markets/{market}/candles?interval=1m"),
        format!("{base}/v1/markets/{market}/trades"),
    ];
    let mut latencies = Vec::new();
    let mut next = reader as usize;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let status = match client.get(&paths[next % paths.len()]).send().await {
            Ok(response) => {
                let status = response.status();
                let _ = response.bytes().await;
                status.as_u16().to_string()
            }
            Err(error) if error.is_timeout() => "timeout".to_owned(),
            Err(_) => "connection".to_owned(),
        };
        next += 1;
        if status == "200" {
            let micros = started.elapsed().as_micros();
            latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
        } else {
            let mut errors = tally.errors.lock().expect("lock");
            *errors.entry(status).or_default() += 1;
        }
    }
    tally.latencies_us.lock().expect("lock").extend(latencies);
}

/// One worker: its connection, its two users, its own seeded draws.
struct Load {
    api: Api,
    market: String,
    trader: Trader,
    seed: u64,
    deadline: Option<Instant>,
    orders_max: Option<u64>,
    acknowledged: Arc<AtomicU64>,
}

impl Load {
    async fn run(self) -> Tally {
        let mut rng = SplitMix64::new(self.seed);
        let mut tally = Tally::default();
        // (order id, placed by the bid-side user): this worker's orders that may still rest.
        let mut resting: Vec<(String, bool)> = Vec::new();
        while !self.done() {
            let step = next_step(&mut rng);
            match order_body(&step, &self.market) {
                Some(body) => self.place(&step, &body, &mut resting, &mut tally).await,
                None => self.cancel(&step, &mut resting, &mut tally).await,
            }
        }
        tally
    }

    fn done(&self) -> bool {
        let by_time = self.deadline.is_some_and(|at| Instant::now() >= at);
        let by_count = self
            .orders_max
            .is_some_and(|max| self.acknowledged.load(Ordering::Relaxed) >= max);
        by_time || by_count
    }

    fn key(&self, bid: bool) -> Credential<'_> {
        Credential::ApiKey(if bid {
            &self.trader.bid_key
        } else {
            &self.trader.ask_key
        })
    }

    async fn place(
        &self,
        step: &Step,
        body: &Value,
        resting: &mut Vec<(String, bool)>,
        tally: &mut Tally,
    ) {
        let bid = matches!(
            step,
            Step::Limit { bid: true, .. } | Step::Market { bid: true, .. }
        );
        let sent = Instant::now();
        let answer = self
            .api
            .send(Method::POST, "/v1/orders", self.key(bid), Some(body))
            .await;
        let latency_us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => return tally.error(format!("transport: {error}")),
        };
        if !answer.status.is_success() {
            let key = format!("{} {}", answer.status.as_u16(), answer.code());
            // A market order that finds the other side empty: a correct answer under this mix.
            let empty_book =
                matches!(step, Step::Market { .. }) && answer.code() == "SLIPPAGE_EXCEEDED";
            return if empty_book {
                tally.expected_reject(key)
            } else {
                tally.error(key)
            };
        }
        tally.orders += 1;
        tally.order_latencies_us.push(latency_us);
        self.acknowledged.fetch_add(1, Ordering::Relaxed);
        let order = &answer.body["order"];
        let rests = matches!(order["status"].as_str(), Some("OPEN" | "PARTIALLY_FILLED"));
        if let (true, Some(id)) = (rests, order["id"].as_str()) {
            resting.push((id.to_owned(), bid));
        }
    }

    async fn cancel(&self, step: &Step, resting: &mut Vec<(String, bool)>, tally: &mut Tally) {
        let Step::Cancel { draw } = *step else {
            return;
        };
        if resting.is_empty() {
            return;
        }
        let (id, bid) = resting.swap_remove((draw % resting.len() as u64) as usize);
        let path = format!("/v1/orders/{id}");
        match self
            .api
            .send(Method::DELETE, &path, self.key(bid), None)
            .await
        {
            Ok(answer) if answer.status.is_success() => tally.cancels += 1,
            // The order filled since it rested: a correct answer under this mix.
            Ok(answer) if answer.status.is_client_error() => {
                tally.expected_reject(format!("{} {}", answer.status.as_u16(), answer.code()))
            }
            Ok(answer) => tally.error(format!("{} {}", answer.status.as_u16(), answer.code())),
            Err(error) => tally.error(format!("transport: {error}")),
        }
    }
}

/// Prints (to stderr) and returns the throughput of each `--report-every` orders, until every
/// worker has finished.
async fn report_windows(
    args: &Args,
    acknowledged: &AtomicU64,
    workers: &[tokio::task::JoinHandle<Tally>],
    started: Instant,
) -> Vec<Window> {
    let mut windows = Vec::new();
    let (mut last_count, mut last_at) = (0, started);
    while !workers.iter().all(|worker| worker.is_finished()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let count = acknowledged.load(Ordering::Relaxed);
        if count / args.report_every > last_count / args.report_every {
            let now = Instant::now();
            let rate = (count - last_count) as f64 / (now - last_at).as_secs_f64();
            eprintln!("{count} orders acknowledged: {rate:.0} orders/s over the last window");
            windows.push(Window {
                orders_total: count,
                orders_per_sec: rate,
            });
            (last_count, last_at) = (count, now);
        }
    }
    windows
}

/// `GET /healthz` over `--connections` connections for `--healthz-seconds`: requests per second.
async fn healthz_ceiling(args: &Args, timeout: Duration) -> Result<f64, String> {
    let until = Instant::now() + Duration::from_secs(args.healthz_seconds.max(1));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..args.connections {
        let api = Api::new(&args.url, timeout)?;
        clients.push(tokio::spawn(async move {
            let mut answered = 0u64;
            while Instant::now() < until {
                match api
                    .send(Method::GET, "/healthz", Credential::None, None)
                    .await
                {
                    Ok(answer) if answer.status.is_success() => answered += 1,
                    _ => {}
                }
            }
            answered
        }));
    }
    let mut answered = 0;
    for client in clients {
        answered += client.await.map_err(|e| e.to_string())?;
    }
    Ok(answered as f64 / started.elapsed().as_secs_f64())
}

#[derive(Default)]
struct StreamTally {
    messages: AtomicU64,
    /// From a trade's `createdAt` (the sequencer's clock, on this machine) to its arrival.
    /// The sequencer stamps a command before it commits, so this includes the commit.
    latencies_us: std::sync::Mutex<Vec<u64>>,
}

/// The WebSocket endpoint of the server at `base`.
fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = base
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .or_else(|| {
            base.strip_prefix("http://")
                .map(|rest| format!("ws://{rest}"))
        })
        .unwrap_or_else(|| base.to_owned());
    format!("{base}/v1/ws")
}

/// Subscribes to the market's trades and times every trade that arrives until `stop`.
async fn follow_trades(
    url: String,
    market: String,
    stop: Arc<AtomicBool>,
    tally: Arc<StreamTally>,
) {
    let (mut socket, _) = match tokio_tungstenite::connect_async(&url).await {
        Ok(connected) => connected,
        Err(error) => {
            eprintln!("a subscriber could not connect to {url}: {error}");
            return;
        }
    };
    let subscribe = json!({ "op": "subscribe", "topic": format!("trades:{market}") });
    if socket
        .send(Message::text(subscribe.to_string()))
        .await
        .is_err()
    {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        let next = tokio::time::timeout(Duration::from_millis(200), socket.next()).await;
        let text = match next {
            Err(_) => continue,
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(_))) => continue,
            Ok(None | Some(Err(_))) => return,
        };
        let arrived_micros = now_micros();
        let Ok(message) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if message["type"] == "snapshot" {
            continue;
        }
        let trades = message["data"]["trades"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for trade in trades {
            let Some(created_micros) = trade["createdAt"].as_str().and_then(rfc3339_micros) else {
                continue;
            };
            tally.messages.fetch_add(1, Ordering::Relaxed);
            let latency_us = arrived_micros.saturating_sub(created_micros);
            tally.latencies_us.lock().expect("lock").push(latency_us);
        }
    }
}

fn rfc3339_micros(text: &str) -> Option<u64> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000).ok()
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}

fn print_report(report: &Report) {
    println!(
        "{} orders in {:.1} s over {} connections: {:.0} orders/s; ack p50 {:.2} ms, p99 {:.2} ms, \
         p99.9 {:.2} ms",
        report.orders,
        report.seconds,
        report.connections,
        report.orders_per_sec,
        report.ack_p50_ms,
        report.ack_p99_ms,
        report.ack_p999_ms
    );
    println!(
        "{} cancels; expected rejects {:?}; errors {:?}",
        report.cancels, report.expected_rejects, report.errors
    );
    if report.readers > 0 {
        println!(
            "{} readers: {} reads ({:.0}/s), p99 {:?} ms; answers other than 200: {:?}",
            report.readers,
            report.reads,
            report.reads_per_sec,
            report.read_p99_ms,
            report.read_errors
        );
    }
    if report.subscribers > 0 {
        println!(
            "{} subscribers: {} trade messages, delivery p50 {:?} ms, p99 {:?} ms",
            report.subscribers, report.stream_messages, report.stream_p50_ms, report.stream_p99_ms
        );
    }
    println!(
        "GET /healthz: {:.0} req/s; orders/s is {:.3}x of it",
        report.healthz_per_sec, report.orders_vs_healthz
    );
}
