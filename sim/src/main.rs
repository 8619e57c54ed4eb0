//! `sim`: run seeded simulations of the exchange, or replay a failure's command log.
//!
//! Exits 0 when every seed passed every check, 1 when one failed (its shrunk command log is
//! written and named), 2 on bad arguments. Reports go to stdout (one JSON object per seed with
//! `--json`); timings, which differ between runs, only to stderr.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use sim::checks::{CheckConfig, CheckMode};
use sim::replay::{read_log, replay};
use sim::runner::{SimConfig, MARKETS_MIN, USERS_MIN};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Seeded simulations that check the engine after every command"
)]
struct Args {
    /// One seed.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// A range of seeds, `A..=B` (or `A..B`).
    #[arg(long, value_parser = parse_seeds)]
    seeds: Option<(u64, u64)>,
    /// Commands per seed after the setup.
    #[arg(long, default_value_t = 100_000)]
    ops: u64,
    /// Markets kept open for trading.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(MARKETS_MIN as i64..=1_000))]
    markets: u32,
    /// Users (each gets a role: market maker, noise trader, bad actor, ...).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(USERS_MIN as i64..=100_000))]
    users: u32,
    /// `fast`: the event shadow every command, whole-state checks every `--full-every`;
    /// `full`: whole-state checks after every command.
    #[arg(long, value_enum, default_value_t = CheckMode::Fast)]
    check: CheckMode,
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    full_every: u64,
    /// Every this many commands, snapshot the engine, restore it (through postcard, as the
    /// server stores it) and go on with the restored engine, which must hash the same; 0 never.
    #[arg(long, default_value_t = 10_000)]
    restore_every: u64,
    /// Write each restore cycle's snapshot here (a corpus for the `snapshot_restore` fuzzer).
    #[arg(long)]
    corpus_dir: Option<PathBuf>,
    /// Also run the reference model and require the same results, events and snapshots.
    #[arg(long)]
    differential: bool,
    /// One JSON object per seed on its own line.
    #[arg(long)]
    json: bool,
    /// Replay a command log written by a failed run.
    #[arg(long, conflicts_with_all = ["seed", "seeds"])]
    replay: Option<PathBuf>,
    /// Where failure logs go.
    #[arg(long, default_value = ".")]
    log_dir: PathBuf,
    /// The most replays spent shrinking a failure's command log.
    #[arg(long, default_value_t = 2_000)]
    shrink_attempts: u32,
}

fn parse_seeds(text: &str) -> Result<(u64, u64), String> {
    let (first, last) = if let Some((a, b)) = text.split_once("..=") {
        (a, b.parse::<u64>().map_err(|e| e.to_string())?)
    } else if let Some((a, b)) = text.split_once("..") {
        let end: u64 = b
            .parse()
            .map_err(|e: std::num::ParseIntError| e.to_string())?;
        (a, end.checked_sub(1).ok_or("an empty range")?)
    } else {
        return Err("expected A..=B".into());
    };
    let first: u64 = first
        .parse()
        .map_err(|e: std::num::ParseIntError| e.to_string())?;
    if first > last {
        return Err("an empty range".into());
    }
    Ok((first, last))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let check = CheckConfig {
        mode: args.check,
        full_every: args.full_every,
        differential: args.differential,
        restore_every: args.restore_every,
    };
    match &args.replay {
        Some(path) => replay_log(path),
        None => simulate(&args, check),
    }
}

fn simulate(args: &Args, check: CheckConfig) -> ExitCode {
    let (first, last) = args
        .seeds
        .unwrap_or_else(|| args.seed.map_or((1, 1), |seed| (seed, seed)));
    if let Some(dir) = &args.corpus_dir {
        if let Err(error) = std::fs::create_dir_all(dir) {
            eprintln!("cannot create {}: {error}", dir.display());
            return ExitCode::from(2);
        }
    }
    let started = Instant::now();
    let (mut commands, mut failed) = (0, 0);
    for seed in first..=last {
        let config = SimConfig {
            seed,
            ops: args.ops,
            markets: args.markets,
            users: args.users,
            check,
        };
        let outcome = sim::run_seed(
            config,
            &args.log_dir,
            args.corpus_dir.as_deref(),
            args.shrink_attempts,
        );
        commands += outcome.report.commands;
        if args.json {
            println!(
                "{}",
                serde_json::to_string(&outcome.report).expect("a report encodes")
            );
        } else {
            println!("{}", outcome.report);
        }
        if let Some(failure) = &outcome.report.failure {
            failed += 1;
            eprintln!(
                "seed {seed} FAILED at command {}: {}",
                failure.index, failure.failure
            );
            if let Some(log) = &outcome.log {
                eprintln!(
                    "command log: {} (replay: sim --replay {})",
                    log.display(),
                    log.display()
                );
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} seeds, {commands} commands, {failed} failed, {seconds:.1} s ({:.0} commands/s)",
        last - first + 1,
        commands as f64 / seconds.max(1e-9)
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn replay_log(path: &std::path::Path) -> ExitCode {
    let (header, entries) = match read_log(path) {
        Ok(log) => log,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    println!(
        "replaying {} commands (seed {}, shrunk from {})",
        entries.len(),
        header.sim.seed,
        header.original_commands
    );
    match replay(&entries, header.sim.check, header.engine_config) {
        Ok(hash) => {
            println!("no failure; state hash {hash:032x}");
            ExitCode::SUCCESS
        }
        Err(found) => {
            println!("failure at command {}: {}", found.index, found.failure);
            let expected = header.failure == found;
            println!(
                "{}",
                if expected {
                    "the same failure the log recorded"
                } else {
                    "NOT the failure the log recorded"
                }
            );
            ExitCode::FAILURE
        }
    }
}
