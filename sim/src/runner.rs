//! One seeded run: sets the exchange up, lets the agents act, checks every command.
//!
//! Owns the order of draws from the run's PRNG (who acts, what they do, how much time passes),
//! so a seed and the options determine every command, every event and the final hash. It must
//! never read a clock or any other source of variation, and never skip a check it was asked for.

use std::path::{Path, PathBuf};

use engine::units::MICROS_PER_SHARE;
use engine::{Command, Config, Engine, Event, MarketId, MarketState, Op, UserId};
use serde::{Deserialize, Serialize};

use crate::agents::{deposit_dollars, role_of, Action, Admin, Agent, NewMarket, SimMarket, World};
use crate::checks::{CheckConfig, Checker};
use crate::report::{FailureAt, Report, Stats};
use crate::rng::SplitMix64;

/// Everything that, with the seed, determines a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimConfig {
    pub seed: u64,
    /// Commands the agents and the admin send after the setup.
    pub ops: u64,
    /// Markets kept open for trading (the admin replaces resolved ones).
    pub markets: u32,
    pub users: u32,
    pub check: CheckConfig,
}

pub const USERS_MIN: u32 = 2;
pub const MARKETS_MIN: u32 = 1;
/// The admin acts about once every this many commands.
const ADMIN_EVERY: u64 = 150;
/// Simulated time between two commands is drawn from `0..STEP_MICROS_MAX`.
const STEP_MICROS_MAX: u64 = 2_000;

/// The engine configuration of every simulated exchange.
pub fn engine_config() -> Config {
    Config {
        open_orders_per_user_max: 200,
        ..Config::default()
    }
}

/// One command as the run produced it, and whether it came from a bad actor (and so must be
/// rejected).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub command: Command,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub must_reject: bool,
}

pub struct Simulation {
    config: SimConfig,
    rng: SplitMix64,
    engine: Engine,
    checker: Checker,
    agents: Vec<Agent>,
    admin: Admin,
    markets: Vec<SimMarket>,
    pending_market: Option<NewMarket>,
    now_micros: u64,
    stats: Stats,
    events: Vec<Event>,
    /// The commands so far, kept only when asked for (to write a failure's command log).
    journal: Option<Vec<Entry>>,
    /// Where each restore cycle's snapshot is written (a fuzzing corpus), if anywhere.
    corpus_dir: Option<PathBuf>,
}

impl Simulation {
    pub fn new(config: SimConfig, record: bool) -> Simulation {
        assert!(config.users >= USERS_MIN && config.markets >= MARKETS_MIN);
        let mut stats = Stats::default();
        stats.report.seed = config.seed;
        Simulation {
            config,
            rng: SplitMix64::new(config.seed),
            engine: Engine::new(engine_config()),
            checker: Checker::new(config.check, engine_config()),
            agents: Vec::new(),
            admin: Admin::new(),
            markets: Vec::new(),
            pending_market: None,
            now_micros: 0,
            stats,
            events: Vec::new(),
            journal: record.then(Vec::new),
            corpus_dir: None,
        }
    }

    /// Writes the snapshot of every restore cycle into `dir`, as
    /// `seed-<seed>-command-<index>.postcard`.
    pub fn keep_snapshots_in(&mut self, dir: PathBuf) {
        self.corpus_dir = Some(dir);
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn journal(&self) -> Option<&[Entry]> {
        self.journal.as_deref()
    }

    /// Replaces the engine by one restored from its own snapshot (for the determinism checks:
    /// a run must go on exactly the same).
    pub fn restore_engine_from_snapshot(&mut self) {
        let snapshot = self.engine.snapshot();
        self.engine = Engine::restore(&snapshot).expect("a live engine's snapshot restores");
    }

    /// Creates the users (funded, market makers holding some pairs) and the first markets.
    pub fn set_up(&mut self) -> Result<(), FailureAt> {
        for index in 0..self.config.users {
            let role = role_of(index);
            self.agents.push(Agent::new(UserId(index), role));
            self.apply(Op::CreateUser, false)?;
            let amount_micros = deposit_dollars(role, &mut self.rng) * MICROS_PER_SHARE;
            let user = UserId(index);
            self.apply(
                Op::Deposit {
                    user,
                    amount_micros,
                },
                false,
            )?;
        }
        for _ in 0..self.config.markets {
            self.create_market()?;
        }
        Ok(())
    }

    /// One command from the admin or a randomly chosen agent.
    pub fn step(&mut self) -> Result<(), FailureAt> {
        if self.open_markets() < self.config.markets as usize {
            return self.create_market();
        }
        let world = World {
            engine: &self.engine,
            markets: &self.markets,
            now_micros: self.now_micros,
        };
        let action = if self.rng.uniform(ADMIN_EVERY) == 0 {
            self.admin.act(&world, &mut self.rng).into()
        } else {
            let index = self.rng.uniform(self.agents.len() as u64) as usize;
            self.agents[index].act(&world, &mut self.rng)
        };
        let Action { op, must_reject } = action;
        self.apply(op, must_reject)
    }

    pub fn run_steps(&mut self, count: u64) -> Result<(), FailureAt> {
        for _ in 0..count {
            self.step()?;
        }
        Ok(())
    }

    /// The report so far, with the final whole-state check done first.
    pub fn finish(self, failure: Option<FailureAt>) -> (Report, Option<Vec<Entry>>) {
        let mut report = self.stats.report;
        report.full_checks = self.checker.full_checks();
        report.restores = self.checker.restores();
        let failure = failure.or_else(|| {
            report.full_checks += 1;
            let index = report.commands.saturating_sub(1);
            let failure = self.checker.full_check(&self.engine).err()?;
            Some(FailureAt { index, failure })
        });
        report.resting_orders = self.engine.open_order_count() as u64;
        report.violations = failure.is_some() as u64;
        report.failure = failure;
        report.state_hash = format!("{:032x}", self.engine.state_hash());
        (report, self.journal)
    }

    fn open_markets(&self) -> usize {
        self.markets
            .iter()
            .filter(|m| {
                self.engine
                    .market(m.id)
                    .is_some_and(|v| v.state == MarketState::Open)
            })
            .count()
    }

    fn create_market(&mut self) -> Result<(), FailureAt> {
        let (op, new) = self.admin.create_market(&mut self.rng, self.now_micros);
        self.pending_market = Some(new);
        self.apply(op, false)
    }

    fn apply(&mut self, op: Op, must_reject: bool) -> Result<(), FailureAt> {
        self.now_micros += self.rng.uniform(STEP_MICROS_MAX);
        let command = Command {
            ts_micros: self.now_micros,
            op,
        };
        let index = self.stats.report.commands;
        let checked = self
            .checker
            .apply(&mut self.engine, &command, must_reject, &mut self.events);
        if let Some(journal) = self.journal.as_mut() {
            journal.push(Entry {
                command,
                must_reject,
            });
        }
        let result = checked.map_err(|failure| FailureAt { index, failure })?;
        self.keep_restored_snapshot(index);
        self.stats.report.bad_commands += must_reject as u64;
        self.stats
            .record(&result, &self.events, self.engine.open_order_count());
        self.learn_markets();
        Ok(())
    }

    fn keep_restored_snapshot(&mut self, index: u64) {
        let Some(bytes) = self.checker.take_restored_snapshot() else {
            return;
        };
        let Some(dir) = &self.corpus_dir else {
            return;
        };
        let name = format!("seed-{}-command-{index}.postcard", self.config.seed);
        if let Err(error) = std::fs::write(dir.join(&name), bytes) {
            eprintln!("cannot write {name} into {}: {error}", dir.display());
        }
    }

    /// Remembers the truth and resolution of a market the engine just created.
    fn learn_markets(&mut self) {
        for event in &self.events {
            if let Event::MarketCreated { market, params } = event {
                let new = self.pending_market.take().expect("the admin asked for it");
                assert_eq!(*market, MarketId(self.markets.len() as u32));
                assert_eq!(params.tick_units, new.tick_units);
                self.markets.push(SimMarket {
                    id: *market,
                    tick_units: new.tick_units,
                    truth_units: new.truth_units,
                    resolution: new.resolution,
                });
            }
        }
    }
}

/// Runs one seed from empty: setup, then `ops` steps, then the final check.
pub fn run(config: SimConfig, record: bool) -> (Report, Option<Vec<Entry>>) {
    run_keeping_snapshots(config, record, None)
}

/// `run`, writing each restore cycle's snapshot into `corpus_dir`.
pub fn run_keeping_snapshots(
    config: SimConfig,
    record: bool,
    corpus_dir: Option<&Path>,
) -> (Report, Option<Vec<Entry>>) {
    let mut sim = Simulation::new(config, record);
    if let Some(dir) = corpus_dir {
        sim.keep_snapshots_in(dir.to_path_buf());
    }
    let outcome = sim.set_up().and_then(|()| sim.run_steps(config.ops));
    sim.finish(outcome.err())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{CheckMode, Failure};

    fn config(mode: CheckMode) -> SimConfig {
        SimConfig {
            seed: 3,
            ops: 1_000,
            markets: 2,
            users: 16,
            check: CheckConfig {
                mode,
                full_every: 100,
                differential: false,
                restore_every: 0,
            },
        }
    }

    fn run_corrupted(mode: CheckMode, after: u64) -> Option<FailureAt> {
        let mut sim = Simulation::new(config(mode), false);
        sim.checker.corrupt_after = Some(after);
        let outcome = sim.set_up().and_then(|()| sim.run_steps(1_000));
        sim.finish(outcome.err()).0.failure
    }

    #[test]
    fn a_snapshot_that_does_not_restore_stops_the_run_at_its_restore_cycle() {
        let mut config = config(CheckMode::Fast);
        config.check.full_every = 1_000;
        config.check.restore_every = 8;
        let mut sim = Simulation::new(config, false);
        sim.checker.corrupt_after = Some(150);
        let outcome = sim.set_up().and_then(|()| sim.run_steps(1_000));
        let found = sim.finish(outcome.err()).0.failure.unwrap();
        // The corruption after the 150th command is found by the restore cycle after the 152nd
        // (restore re-checks every invariant), before an event shows it to the shadow (156th).
        assert_eq!(found.index, 151);
        assert_eq!(
            found.failure,
            Failure::Restore {
                detail: "invalid snapshot: invariant 1 violated: accounts sum to 1, not 0".into()
            }
        );
    }

    #[test]
    fn a_corrupted_balance_stops_the_run_at_the_next_whole_state_check() {
        let expected = |index| FailureAt {
            index,
            failure: Failure::Invariant {
                invariant: 1,
                detail: "accounts sum to 1, not 0".into(),
            },
        };
        // Full mode checks after every command: the very command after which it happened.
        assert_eq!(run_corrupted(CheckMode::Full, 150), Some(expected(149)));
        // Fast mode: as soon as an event reports user 0's (corrupted) balance, the shadow's
        // ledger sum is off by the same micro (here 29 commands later, before the next
        // whole-state check at command 200).
        let found = run_corrupted(CheckMode::Fast, 150).unwrap();
        assert_eq!(
            found.failure,
            Failure::Shadow {
                invariant: 1,
                detail: "accounts sum to 1, not 0".into(),
            }
        );
        assert_eq!(found.index, 179);
    }
}
