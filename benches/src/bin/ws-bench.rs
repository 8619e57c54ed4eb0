//! `ws-bench`: WebSocket fan-out under load. Starts a real server (embedded SQLite in a temporary
//! directory, or `--database-url`), connects N clients subscribed to one market's book, and
//! drives that book at a steady rate of committed commands; reports delivered messages per
//! second and delivery latency percentiles for each N (`--json`: one JSON array).
//!
//! Latency is measured twice per message: from the moment the command's commit was acknowledged
//! to the sequencer's caller ("after commit": the fan-out itself) and from the moment the command
//! was submitted ("order to screen": commit included). Server and clients share this machine's
//! cores, so the figures are a floor for a real deployment, not a ceiling.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::measure::percentile;
use clap::Parser;
use engine::{Event, MarketId, Op, Outcome, PlaceOrder, Side, UserId};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use server::app::Server;
use server::config::Config;
use server::sequencer::SequencerHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// The clients' socket read buffer.
const READ_BUFFER_BYTES: usize = 4 * 1024;

#[derive(Parser, Debug)]
#[command(about = "WebSocket fan-out: N clients on one busy book")]
struct Args {
    /// Client counts to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    clients: Vec<usize>,
    /// Book-changing commands per second.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    rate: u64,
    /// Seconds of load per client count.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    seconds: u64,
    /// PostgreSQL instead of a temporary SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Figures {
    clients: usize,
    seconds: f64,
    commands: u64,
    messages_delivered: u64,
    delivered_per_sec: f64,
    after_commit_p50_us: u64,
    after_commit_p99_us: u64,
    order_to_screen_p50_us: u64,
    order_to_screen_p99_us: u64,
    /// Clients that did not receive every message (cut off as slow consumers, or lagging).
    clients_behind: usize,
}

/// When each book seq's command was submitted and acknowledged (nanoseconds since `epoch`).
struct Timeline {
    epoch: Instant,
    submitted: Vec<AtomicU64>,
    acked: Vec<AtomicU64>,
}

impl Timeline {
    fn new(capacity: usize) -> Timeline {
        Timeline {
            epoch: Instant::now(),
            submitted: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            acked: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ws-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let data_dir = std::env::temp_dir().join(format!("predex-ws-bench-{}", std::process::id()));
    let config = Config::from_vars(|name| match name {
        "BIND_ADDR" => Some("127.0.0.1:0".to_owned()),
        "DATA_DIR" => Some(data_dir.display().to_string()),
        "DATABASE_URL" => args.database_url.clone(),
        "JWT_SECRET" => Some("ws-bench-secret-0123456789abcdef-0123456789".to_owned()),
        _ => None,
    })
    .map_err(|error| error.to_string())?;
    let server = server::app::start(config)
        .await
        .map_err(|error| error.to_string())?;
    let result = bench_all(&args, &server).await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    let figures = result?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&figures).map_err(|e| e.to_string())?
        );
    } else {
        for f in &figures {
            println!(
                "{:>5} clients: {:>9.0} messages/s delivered ({} commands in {:.1} s), \
                 after commit p50 {} us p99 {} us, order to screen p50 {} us p99 {} us, \
                 {} clients behind",
                f.clients,
                f.delivered_per_sec,
                f.commands,
                f.seconds,
                f.after_commit_p50_us,
                f.after_commit_p99_us,
                f.order_to_screen_p50_us,
                f.order_to_screen_p99_us,
                f.clients_behind
            );
        }
    }
    Ok(())
}

async fn bench_all(args: &Args, server: &Server) -> Result<Vec<Figures>, String> {
    let state = server.state();
    let fail = |error: server::http::Error| error.to_string();
    let (_, maker) = server::demo::account(
        state,
        "maker@bench.example.com",
        "a bench password 123",
        "Bench maker",
        1_000_000_000,
    )
    .await
    .map_err(fail)?;
    let mut figures = Vec::new();
    for (index, clients) in args.clients.iter().copied().enumerate() {
        let slug = format!("bench-book-{index}");
        let market = server::demo::market(state, &slug, "A benchmark book")
            .await
            .map_err(fail)?;
        let market_id = server::markets::existing(server.db(), &slug)
            .await
            .map_err(fail)?
            .id;
        let topic = format!("book:{market_id}");
        figures.push(
            bench(
                args,
                server.local_addr(),
                state.sequencer.clone(),
                maker,
                market,
                topic,
                clients,
            )
            .await?,
        );
    }
    Ok(figures)
}

async fn bench(
    args: &Args,
    addr: SocketAddr,
    sequencer: SequencerHandle,
    maker: UserId,
    market: MarketId,
    topic: String,
    clients: usize,
) -> Result<Figures, String> {
    let commands = args.rate * args.seconds;
    let timeline = Arc::new(Timeline::new(commands as usize + 16));
    let mut readers = Vec::with_capacity(clients);
    // Connect in waves so the listener's backlog never overflows.
    for wave in (0..clients).collect::<Vec<_>>().chunks(200) {
        let mut connecting = Vec::new();
        for _ in wave {
            connecting.push(tokio::spawn(connect(addr, topic.clone())));
        }
        for socket in connecting {
            let socket = socket.await.map_err(|e| e.to_string())??;
            readers.push(tokio::spawn(read(socket, timeline.clone(), commands)));
        }
    }
    let started = Instant::now();
    drive(&sequencer, maker, market, args.rate, commands, &timeline).await?;
    let mut after_commit = Vec::new();
    let mut to_screen = Vec::new();
    let mut delivered = 0u64;
    let mut behind = 0;
    for reader in readers {
        let samples = tokio::time::timeout(Duration::from_secs(30), reader).await;
        match samples {
            Ok(Ok(samples)) => {
                delivered += samples.len() as u64;
                if (samples.len() as u64) < commands {
                    behind += 1;
                }
                for (acked, submitted) in samples {
                    after_commit.push(acked);
                    to_screen.push(submitted);
                }
            }
            _ => behind += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    after_commit.sort_unstable();
    to_screen.sort_unstable();
    if after_commit.is_empty() {
        return Err("no client received anything".to_owned());
    }
    let us = |ns: u64| ns / 1_000;
    Ok(Figures {
        clients,
        seconds: elapsed,
        commands,
        messages_delivered: delivered,
        delivered_per_sec: delivered as f64 / elapsed,
        after_commit_p50_us: us(percentile(&after_commit, 500)),
        after_commit_p99_us: us(percentile(&after_commit, 990)),
        order_to_screen_p50_us: us(percentile(&to_screen, 500)),
        order_to_screen_p99_us: us(percentile(&to_screen, 990)),
        clients_behind: behind,
    })
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: SocketAddr, topic: String) -> Result<Socket, String> {
    // tungstenite zeroes its whole read buffer (128 KiB by default) before every read: for
    // small frames that costs far more than the frames themselves.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    let url = format!("ws://{addr}/v1/ws");
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
        .await
        .map_err(|e| e.to_string())?;
    let subscribe = serde_json::json!({ "op": "subscribe", "topic": topic }).to_string();
    socket
        .send(Message::Text(subscribe.into()))
        .await
        .map_err(|e| e.to_string())?;
    // `subscribed`, then the snapshot.
    for _ in 0..2 {
        socket
            .next()
            .await
            .ok_or("closed while subscribing")?
            .map_err(|e| e.to_string())?;
    }
    Ok(socket)
}

#[derive(serde::Deserialize)]
struct Frame {
    seq: u64,
}

/// Reads deltas until `expected` arrived (or the socket ends); latencies in ns per message.
async fn read(mut socket: Socket, timeline: Arc<Timeline>, expected: u64) -> Vec<(u64, u64)> {
    let mut samples = Vec::with_capacity(expected as usize);
    while (samples.len() as u64) < expected {
        let Some(Ok(message)) = socket.next().await else {
            break;
        };
        let Message::Text(text) = message else {
            continue;
        };
        let now = timeline.now();
        let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
            continue;
        };
        let Some(acked) = timeline.acked.get(frame.seq as usize) else {
            continue;
        };
        // A fast client can have the message before the driver hears its ack: zero wait.
        let acked = acked.load(Ordering::Acquire);
        let after_commit = if acked == 0 {
            0
        } else {
            now.saturating_sub(acked)
        };
        let submitted = timeline.submitted[frame.seq as usize].load(Ordering::Acquire);
        samples.push((after_commit, now.saturating_sub(submitted)));
    }
    samples
}

/// Alternately places and cancels a maker order at `rate` commands per second; every command
/// changes the book, so book seq n is command n.
async fn drive(
    sequencer: &SequencerHandle,
    maker: UserId,
    market: MarketId,
    rate: u64,
    commands: u64,
    timeline: &Timeline,
) -> Result<(), String> {
    let mut pace = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut resting = None;
    for n in 0..commands {
        pace.tick().await;
        let op = match resting.take() {
            Some(order) => Op::Cancel { user: maker, order },
            None => {
                let price = 1_000 + 100 * (n % 80) as u16;
                Op::Place(PlaceOrder::limit(
                    maker,
                    market,
                    Side::Buy,
                    Outcome::Yes,
                    price,
                    10,
                ))
            }
        };
        // Only this driver changes the book, so this command's book seq is n + 1.
        let seq = n as usize + 1;
        timeline.submitted[seq].store(timeline.now(), Ordering::Release);
        let applied = sequencer
            .submit(op, None)
            .await
            .map_err(|e| e.to_string())?;
        timeline.acked[seq].store(timeline.now(), Ordering::Release);
        let mut book_seq = None;
        for event in &applied.events {
            match event {
                Event::BookLevel { book_seq: at, .. } => book_seq = Some(*at),
                Event::OrderRested { order, .. } => resting = Some(*order),
                _ => {}
            }
        }
        if book_seq != Some(seq as u64) {
            return Err(format!(
                "command {n} left the book at seq {book_seq:?}, not {seq}"
            ));
        }
    }
    Ok(())
}
