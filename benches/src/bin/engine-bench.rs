//! `engine-bench`: runs a workload and prints ops/s, ns/op, latency percentiles, peak RSS,
//! heap bytes per resting order and the workload's counts (`--json`: one JSON object).
//!
//! Timed runs start from a fresh engine with the setup already applied; the counts come from a
//! separate, untimed run, and every timed run must end on the same state hash as that run.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use benches::measure::{
    fixed_work_latencies, fixed_work_steps_for, heap_bytes_during, median, nanos_u32,
    peak_rss_bytes, percentile, CountingAllocator,
};
use benches::workloads::{
    self, count, prepare, resolution_setup, standard_expected_counts, Counts, Stream, Workload,
};
use clap::Parser;
use engine::{Command, Engine, Event, MarketId, Outcome, PlaceOrder, Side, UserId};
use serde::Serialize;

/// Latency runs: the first gives `p50_ns`..`p999_ns`; all of them give the `quiet_` figures.
///
/// Operation `i` of the stream is the same work in every run, so its fastest run is its own
/// cost; an interruption of the machine (a host interrupt, the hypervisor taking the core, a
/// first-touch page fault) lasts microseconds and seldom hits the same operation twice.
const LATENCY_RUNS: usize = 3;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[derive(Parser, Debug)]
#[command(about = "Engine benchmarks on the workloads of WORKLOAD.md and beside it")]
struct Args {
    /// standard, many-markets, cancel-heavy, deep-book or resolution.
    #[arg(long, default_value = "standard")]
    workload: String,
    /// Timed runs (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Figures {
    workload: &'static str,
    ops: u64,
    runs: u32,
    ops_per_sec: f64,
    ns_per_op: f64,
    p50_ns: u32,
    p99_ns: u32,
    p999_ns: u32,
    /// Percentiles of each operation's fastest of `LATENCY_RUNS` runs: the engine's own tail,
    /// without the machine's interruptions.
    quiet_p99_ns: u32,
    quiet_p999_ns: u32,
    /// p99.9 of a fixed computation whose median is about `p50_ns`, timed the same way: the
    /// tail this machine adds to anything that short.
    machine_p999_ns: u32,
    peak_rss_bytes: Option<u64>,
    bytes_per_resting_order: f64,
    #[serde(flatten)]
    counts: Counts,
    /// `standard` only: whether the counts equal WORKLOAD.md's.
    #[serde(skip_serializing_if = "Option::is_none")]
    counts_match_workload_md: Option<bool>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.workload == "resolution" {
        return resolution(&args);
    }
    let Some(workload) = workloads::workload(&args.workload) else {
        eprintln!("unknown workload {:?}", args.workload);
        return ExitCode::from(2);
    };
    let (counts, counted) = count(&workload);
    let hash = counted.state_hash();
    drop(counted);
    let mut ns_per_op: Vec<f64> = (0..args.runs).map(|_| timed_run(&workload, hash)).collect();
    let ns_per_op = median(&mut ns_per_op);
    let mut latencies = Vec::with_capacity(workload.ops as usize);
    latency_run(&workload, |_, ns| latencies.push(ns));
    let mut quiet = latencies.clone();
    for _ in 1..LATENCY_RUNS {
        latency_run(&workload, |op, ns| quiet[op] = quiet[op].min(ns));
    }
    latencies.sort_unstable();
    quiet.sort_unstable();
    let p50_ns = percentile(&latencies, 500);
    let machine = fixed_work_latencies(latencies.len(), fixed_work_steps_for(p50_ns));
    let figures = Figures {
        workload: workload.name,
        ops: workload.ops,
        runs: args.runs,
        ops_per_sec: 1e9 / ns_per_op,
        ns_per_op,
        p50_ns,
        p99_ns: percentile(&latencies, 990),
        p999_ns: percentile(&latencies, 999),
        quiet_p99_ns: percentile(&quiet, 990),
        quiet_p999_ns: percentile(&quiet, 999),
        machine_p999_ns: percentile(&machine, 999),
        peak_rss_bytes: peak_rss_bytes(),
        bytes_per_resting_order: bytes_per_resting_order(),
        counts_match_workload_md: (workload.name == "standard")
            .then(|| counts == standard_expected_counts()),
        counts,
    };
    print(&figures, args.json);
    if figures.counts_match_workload_md == Some(false) {
        eprintln!("the counts differ from WORKLOAD.md: the engine matched differently");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// One timed pass over the stream on a fresh engine; ns per operation.
fn timed_run(workload: &Workload, expected_hash: u128) -> f64 {
    let (mut engine, mut stream) = prepare(workload);
    let mut events = Vec::with_capacity(1 << 12);
    let started = Instant::now();
    run_stream(&mut engine, &mut stream, &mut events);
    let elapsed = started.elapsed();
    assert_eq!(engine.state_hash(), expected_hash, "a timed run diverged");
    elapsed.as_nanos() as f64 / workload.ops as f64
}

/// The timed loop. Never inlined, so that callgrind can count exactly the stream's operations,
/// without the setup (a million resting orders for `cancel-heavy` and `deep-book`) or the
/// closing state hash: `--toggle-collect='engine_bench::run_stream*'`.
#[inline(never)]
fn run_stream(engine: &mut Engine, stream: &mut Stream, events: &mut Vec<Event>) {
    while let Some(step) = stream.step(engine, events) {
        let _ = black_box(step);
        events.clear();
    }
}

/// Every operation timed on its own (a separate run: the clock reads cost time); `sample`
/// gets each operation's index in the stream and its nanoseconds.
fn latency_run(workload: &Workload, mut sample: impl FnMut(usize, u32)) {
    let (mut engine, mut stream) = prepare(workload);
    let mut events = Vec::with_capacity(1 << 12);
    let mut op = 0;
    loop {
        let started = Instant::now();
        let Some(step) = stream.step(&mut engine, &mut events) else {
            break;
        };
        let _ = black_box(step);
        events.clear();
        sample(op, nanos_u32(started.elapsed()));
        op += 1;
    }
}

/// Heap bytes a fresh engine allocates while 1,000,000 non-crossing orders are placed, per
/// order (WORKLOAD.md: fixed tables and the harness's own lists do not count).
fn bytes_per_resting_order() -> f64 {
    const ORDERS: u64 = 1_000_000;
    let (mut engine, _) = prepare(&workloads::workload("standard").expect("standard"));
    let commands: Vec<Command> = (0..ORDERS)
        .map(|i| {
            let user = UserId((i % 1_000) as u32);
            let (outcome, price_units) = if i % 2 == 0 {
                (Outcome::Yes, 10 + 10 * (i / 2 % 490) as u16)
            } else {
                (Outcome::No, 10 + 10 * (i / 2 % 490) as u16)
            };
            let order = PlaceOrder::limit(user, MarketId(0), Side::Buy, outcome, price_units, 1);
            Command {
                ts_micros: 1,
                op: engine::Op::Place(order),
            }
        })
        .collect();
    let mut events = Vec::with_capacity(1 << 12);
    let ((), bytes) = heap_bytes_during(|| {
        for command in &commands {
            engine.apply(command, &mut events).expect("a resting order");
            events.clear();
        }
    });
    assert_eq!(engine.open_order_count() as u64, ORDERS);
    bytes as f64 / ORDERS as f64
}

/// An event buffer of `capacity` whose pages have been written once, as a server's reused
/// buffer would be: a fresh allocation would charge the timed command the kernel's page faults
/// on first touch (about 12,000 of them for resolution's 350,000 events).
fn warm_event_buffer(capacity: usize) -> Vec<engine::Event> {
    let mut events = Vec::with_capacity(capacity);
    events.resize(capacity, engine::Event::UserCreated { user: UserId(0) });
    events.clear();
    events
}

fn resolution(args: &Args) -> ExitCode {
    const HOLDERS: u32 = 100_000;
    let mut millis: Vec<f64> = (0..args.runs)
        .map(|_| {
            let (mut engine, resolve) = resolution_setup(HOLDERS);
            let mut events = warm_event_buffer(1 << 20);
            let started = Instant::now();
            engine.apply(&resolve, &mut events).expect("resolves");
            let elapsed = started.elapsed();
            black_box(&events);
            assert_eq!(engine.escrow_micros(MarketId(0)), Some(0));
            elapsed.as_secs_f64() * 1e3
        })
        .collect();
    let resolve_ms = median(&mut millis);
    if args.json {
        let figures = serde_json::json!({
            "workload": "resolution",
            "positions": HOLDERS,
            "runs": args.runs,
            "resolve_ms": resolve_ms,
            "peak_rss_bytes": peak_rss_bytes(),
        });
        println!("{figures}");
    } else {
        println!(
            "resolution: {HOLDERS} positions resolved in {resolve_ms:.2} ms (median of {})",
            args.runs
        );
    }
    ExitCode::SUCCESS
}

fn print(figures: &Figures, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(figures).expect("figures encode")
        );
        return;
    }
    println!(
        "{}: {} ops, {:.1} ns/op ({:.2} M ops/s, median of {} runs)",
        figures.workload,
        figures.ops,
        figures.ns_per_op,
        figures.ops_per_sec / 1e6,
        figures.runs
    );
    println!(
        "latency: p50 {} ns, p99 {} ns, p99.9 {} ns",
        figures.p50_ns, figures.p99_ns, figures.p999_ns
    );
    println!(
        "latency, each operation's fastest of {LATENCY_RUNS} runs: p99 {} ns, p99.9 {} ns \
         (a fixed computation as long as p50 has p99.9 {} ns on this machine)",
        figures.quiet_p99_ns, figures.quiet_p999_ns, figures.machine_p999_ns
    );
    println!(
        "memory: peak RSS {} MiB, {:.1} heap bytes per resting order",
        figures.peak_rss_bytes.unwrap_or(0) / (1 << 20),
        figures.bytes_per_resting_order
    );
    println!("counts: {:?}", figures.counts);
    if let Some(matches) = figures.counts_match_workload_md {
        println!("counts equal WORKLOAD.md's: {matches}");
    }
}
