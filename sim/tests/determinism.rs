//! Determinism and failure reproduction: the same seed gives the same run; an engine restored
//! from a mid-run snapshot goes on exactly the same; a recorded journal replays to the same
//! hash; and a failing command log shrinks, survives a round trip through its file, and
//! replays to the same failure.

use sim::checks::{CheckConfig, CheckMode, Failure};
use sim::replay::{read_log, replay, shrink, write_log, LogHeader, LOG_FORMAT_VERSION};
use sim::report::{FailureAt, Report};
use sim::runner::{engine_config, run, Entry, SimConfig, Simulation};

fn config(seed: u64, ops: u64) -> SimConfig {
    SimConfig {
        seed,
        ops,
        markets: 3,
        users: 24,
        check: CheckConfig {
            mode: CheckMode::Fast,
            full_every: 500,
            differential: false,
            restore_every: 0,
        },
    }
}

#[test]
fn the_same_seed_gives_the_same_report_and_hash() {
    let (first, _) = run(config(7, 5_000), false);
    let (second, _) = run(config(7, 5_000), false);
    assert_eq!(first.failure, None);
    assert!(first.trades > 100, "a run that trades: {first:?}");
    assert_eq!(first.accepted + first.rejected, first.commands);
    assert_eq!(first.fills.len(), 4, "every fill kind: {:?}", first.fills);
    assert_eq!(first, second);
    let (other_seed, _) = run(config(8, 5_000), false);
    assert_ne!(first.state_hash, other_seed.state_hash);
}

#[test]
fn a_restored_snapshot_continues_exactly_like_the_original() {
    let (uninterrupted, _) = run(config(11, 4_000), false);
    let mut sim = Simulation::new(config(11, 4_000), false);
    sim.set_up().unwrap();
    sim.run_steps(1_500).unwrap();
    sim.restore_engine_from_snapshot();
    sim.run_steps(2_500).unwrap();
    let (resumed, _) = sim.finish(None);
    assert_eq!(resumed.failure, None);
    assert_eq!(resumed.state_hash, uninterrupted.state_hash);
}

#[test]
fn restore_cycles_leave_the_run_unchanged() {
    let (plain, _) = run(config(19, 6_000), false);
    let mut cycling = config(19, 6_000);
    cycling.check.restore_every = 250;
    let (restored, _) = run(cycling, false);
    assert_eq!(restored.failure, None);
    assert_eq!(plain.restores, 0);
    assert_eq!(restored.restores, restored.commands / 250);
    assert_eq!(
        Report {
            restores: 0,
            ..restored
        },
        plain
    );
}

#[test]
fn replaying_the_recorded_journal_gives_the_same_hash() {
    let config = config(13, 4_000);
    let (report, journal) = run(config, true);
    let journal = journal.unwrap();
    assert_eq!(journal.len() as u64, report.commands);
    let hash = replay(&journal, config.check, engine_config()).unwrap();
    assert_eq!(format!("{hash:032x}"), report.state_hash);
}

#[test]
fn the_differential_and_full_modes_pass_on_a_short_run() {
    let mut config = config(17, 1_500);
    config.check = CheckConfig {
        mode: CheckMode::Full,
        full_every: 1,
        differential: true,
        restore_every: 0,
    };
    let (report, _) = run(config, false);
    assert_eq!(report.failure, None);
    assert_eq!(report.full_checks, report.commands + 1);
}

/// A failure that replay reproduces: an order the engine accepts, marked as one that must be
/// rejected. Returns the log ending at that order, and the failure replay reports.
fn planted_failure(journal: &[Entry], check: CheckConfig) -> (Vec<Entry>, FailureAt) {
    let places = journal
        .iter()
        .enumerate()
        .skip(journal.len() / 2)
        .filter(|(_, entry)| matches!(entry.command.op, engine::Op::Place(_)));
    for (index, _) in places {
        let mut planted = journal[..=index].to_vec();
        planted[index].must_reject = true;
        if let Err(failure) = replay(&planted, check, engine_config()) {
            assert!(matches!(
                failure.failure,
                Failure::BadCommandAccepted { .. }
            ));
            assert_eq!(failure.index, index as u64);
            return (planted, failure);
        }
    }
    panic!("no accepted order in the second half of the run");
}

#[test]
fn a_failing_log_shrinks_and_replays_to_the_same_failure() {
    let config = config(19, 3_000);
    let (_, journal) = run(config, true);
    let check = config.check;
    let (planted, failure) = planted_failure(&journal.unwrap(), check);
    // Only the planted order's failure counts: removing commands can make another recorded
    // reject pass too (the same signature), which would shrink toward a different command.
    let planted_entry = planted.last().unwrap().clone();
    let fails = |entries: &[Entry]| {
        replay(entries, check, engine_config())
            .err()
            .filter(|found| entries[found.index as usize] == planted_entry)
    };
    let (shrunk, found) = shrink(&planted, &failure, fails, 5_000);
    // What the order needs to be accepted: the users and markets up to its own (ids are
    // dense, so each one before it too), its money or shares, and itself; for an order that
    // must take (a MARKET order), one resting maker with its own money too. Little else.
    let engine::Op::Place(order) = &shrunk.last().unwrap().command.op else {
        panic!("the failing command is the planted order");
    };
    let needed = order.user.0 as usize + 1 + order.market.0 as usize + 1 + 4;
    assert!(
        shrunk.len() <= needed,
        "shrunk to {} commands",
        shrunk.len()
    );
    assert!(shrunk.len() * 10 < planted.len(), "from {}", planted.len());
    assert_eq!(found.failure.signature(), failure.failure.signature());
    assert_eq!(found.index as usize, shrunk.len() - 1);

    let header = LogHeader {
        format_version: LOG_FORMAT_VERSION,
        sim: config,
        engine_config: engine_config(),
        failure: found.clone(),
        original_commands: planted.len() as u64,
    };
    let path = std::env::temp_dir().join(format!("sim-test-{}.jsonl", std::process::id()));
    write_log(&path, &header, &shrunk).unwrap();
    let (read_header, read_entries) = read_log(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!((read_header, &read_entries), (header, &shrunk));
    let replayed = replay(&read_entries, check, engine_config()).unwrap_err();
    assert_eq!(replayed, found);
}
