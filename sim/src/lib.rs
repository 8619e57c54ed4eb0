//! A seeded, agent-based simulator that hammers the engine and proves it stays correct, in the
//! spirit of TigerBeetle's VOPR: one PRNG seed determines every command of a run, every command
//! is checked (see `checks`), and any failure comes back as a small command log that replays to
//! the same failure.
//!
//! - `rng`: splitmix64, the run's only source of variation;
//! - `agents`: who trades and how (market makers, noise and informed traders, bots, an admin,
//!   bad actors);
//! - `runner`: one seeded run; `checks`: everything judged after each command;
//! - `report`: what a run did; `replay`: command logs, replay and shrinking.
//!
//! This crate never changes the engine's behaviour: it only sends commands and reads queries.

pub mod agents;
pub mod checks;
pub mod replay;
pub mod report;
pub mod rng;
pub mod runner;

use std::path::{Path, PathBuf};

use crate::replay::{replay, shrink, write_log, LogHeader, LOG_FORMAT_VERSION};
use crate::report::{FailureAt, Report};
use crate::runner::{engine_config, run, run_keeping_snapshots, Entry, SimConfig};

/// A finished seed: its report and, if it failed, where its command log was written.
pub struct SeedOutcome {
    pub report: Report,
    pub log: Option<PathBuf>,
}

/// Runs one seed; on a failure, writes its shrunk command log into `log_dir`. With a
/// `corpus_dir`, every restore cycle's snapshot is written there.
pub fn run_seed(
    config: SimConfig,
    log_dir: &Path,
    corpus_dir: Option<&Path>,
    shrink_attempts_max: u32,
) -> SeedOutcome {
    let (report, _) = run_keeping_snapshots(config, false, corpus_dir);
    let Some(failure) = report.failure.clone() else {
        return SeedOutcome { report, log: None };
    };
    let (header, entries) = reproduce(config, &failure, shrink_attempts_max);
    let path = log_dir.join(format!("sim-failure-seed-{}.jsonl", config.seed));
    let log = match write_log(&path, &header, &entries) {
        Ok(()) => Some(path),
        Err(error) => {
            eprintln!("cannot write {}: {error}", path.display());
            None
        }
    };
    SeedOutcome { report, log }
}

/// Runs the seed again, recording its commands (the run is deterministic, so it fails at the
/// same command), and shrinks them to a log that fails the same way.
pub fn reproduce(
    config: SimConfig,
    failure: &FailureAt,
    shrink_attempts_max: u32,
) -> (LogHeader, Vec<Entry>) {
    let (again, journal) = run(config, true);
    let journal = journal.expect("recorded");
    assert_eq!(
        again.failure.as_ref(),
        Some(failure),
        "a seed must fail the same way twice"
    );
    let fails = |entries: &[Entry]| replay(entries, config.check, engine_config()).err();
    let (entries, shrunk) = shrink(&journal, failure, fails, shrink_attempts_max);
    let header = LogHeader {
        format_version: LOG_FORMAT_VERSION,
        sim: config,
        engine_config: engine_config(),
        failure: shrunk,
        original_commands: failure.index + 1,
    };
    (header, entries)
}
