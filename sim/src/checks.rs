//! Checking a run, command by command.
//!
//! Owns every judgement of a run. Three checkers, from cheap to thorough:
//! - the *shadow*: an independent projection rebuilt from the events alone (balances, positions,
//!   book levels, order limits), checked after every command against DESIGN.md's invariants in
//!   O(what the command touched) — and, at full checks, compared whole with the engine, which
//!   proves the events describe the state exactly (what the server's projections rely on);
//! - the engine's own whole-state `check_invariants`, every `full_every` commands (or after
//!   every command with `CheckMode::Full`) and at the end;
//! - in differential mode, `engine::reference`: same result and events after every command,
//!   same snapshot at every full check;
//! - every `restore_every` commands, a restore cycle: the engine is snapshotted, encoded as the
//!   server stores it, restored, and the run goes on with the restored engine, which must hash
//!   and snapshot exactly like the original.
//!
//! A rejected command must change nothing but the clock. It must never let a failure pass
//! quietly: the first one stops the run and is reported with its command index.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use engine::audit::FillAudit;
use engine::reference::Reference;
use engine::{
    BookSide, CancelReason, Cash, Command, Config, Engine, Event, MarketId, MarketState, OrderEnd,
    Outcome, Position, Reject, Snapshot, UserId,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum CheckMode {
    /// The shadow after every command; a whole-state check every `full_every` commands.
    Fast,
    /// Whole-state checks after every command.
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckConfig {
    pub mode: CheckMode,
    pub full_every: u64,
    pub differential: bool,
    /// A restore cycle every this many commands; 0 never.
    #[serde(default)]
    pub restore_every: u64,
}

/// Why a run failed. `signature` names the kind without the details, so a shrunk command log
/// can be said to fail "the same way".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// The engine (or the reference) panicked.
    Panic { detail: String },
    /// The engine's whole-state checker found a broken invariant.
    Invariant { invariant: u8, detail: String },
    /// The event-driven shadow found a broken invariant, or disagrees with the engine.
    Shadow { invariant: u8, detail: String },
    /// The engine and the reference model disagree.
    Mismatch { detail: String },
    /// A rejected command changed the state.
    RejectChangedState { detail: String },
    /// A command that must be rejected (a bad actor's) was accepted.
    BadCommandAccepted { detail: String },
    /// The engine's own snapshot did not restore to the same state.
    Restore { detail: String },
}

impl Failure {
    pub fn signature(&self) -> String {
        match self {
            Failure::Panic { .. } => "panic".into(),
            Failure::Invariant { invariant, .. } => format!("invariant {invariant}"),
            Failure::Shadow { invariant, .. } => format!("shadow invariant {invariant}"),
            Failure::Mismatch { .. } => "mismatch".into(),
            Failure::RejectChangedState { .. } => "reject changed state".into(),
            Failure::BadCommandAccepted { .. } => "bad command accepted".into(),
            Failure::Restore { .. } => "restore".into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Panic { detail } => write!(f, "panic: {detail}"),
            Failure::Invariant { invariant, detail } => {
                write!(f, "invariant {invariant} violated: {detail}")
            }
            Failure::Shadow { invariant, detail } => {
                write!(f, "invariant {invariant} violated (event shadow): {detail}")
            }
            Failure::Mismatch { detail } => write!(f, "engine and reference differ: {detail}"),
            Failure::RejectChangedState { detail } => {
                write!(f, "a rejected command changed the state: {detail}")
            }
            Failure::BadCommandAccepted { detail } => {
                write!(f, "a command that must be rejected was accepted: {detail}")
            }
            Failure::Restore { detail } => write!(f, "restoring a snapshot: {detail}"),
        }
    }
}

fn shadow(invariant: u8, detail: String) -> Failure {
    Failure::Shadow { invariant, detail }
}

pub struct Checker {
    config: CheckConfig,
    reference: Option<Reference>,
    shadow: Shadow,
    applied: u64,
    full_checks: u64,
    restores: u64,
    /// The encoded snapshot of the latest restore cycle, until `take_restored_snapshot`.
    restored_snapshot: Option<Vec<u8>>,
    reference_events: Vec<Event>,
    /// Test-only fault: after this many commands, corrupt user 0's cash by one micro.
    #[cfg(test)]
    pub(crate) corrupt_after: Option<u64>,
}

impl Checker {
    pub fn new(config: CheckConfig, engine_config: Config) -> Checker {
        assert!(config.full_every > 0);
        Checker {
            config,
            reference: config.differential.then(|| Reference::new(engine_config)),
            shadow: Shadow::default(),
            applied: 0,
            full_checks: 0,
            restores: 0,
            restored_snapshot: None,
            reference_events: Vec::new(),
            #[cfg(test)]
            corrupt_after: None,
        }
    }

    /// Applies one command to the engine (and the reference) and runs every check now due.
    /// `Ok` carries the engine's own answer, which may be a reject (and must be, when
    /// `must_reject`).
    pub fn apply(
        &mut self,
        engine: &mut Engine,
        command: &Command,
        must_reject: bool,
        events: &mut Vec<Event>,
    ) -> Result<Result<(), Reject>, Failure> {
        let full = self.config.mode == CheckMode::Full;
        let before = full.then(|| engine.snapshot());
        events.clear();
        let result =
            catch_unwind(AssertUnwindSafe(|| engine.apply(command, events))).map_err(|panic| {
                Failure::Panic {
                    detail: panic_message(panic),
                }
            })?;
        self.compare_with_reference(command, &result, events)?;
        self.shadow.absorb(events, engine)?;
        check_reject(&result, events, before, engine)?;
        if must_reject && result.is_ok() {
            let detail = format!("{:?}", command.op);
            return Err(Failure::BadCommandAccepted { detail });
        }
        self.applied += 1;
        #[cfg(test)]
        if self.corrupt_after == Some(self.applied) {
            engine.corrupt_available_for_test(UserId(0), 1);
        }
        if full || self.applied.is_multiple_of(self.config.full_every) {
            self.full_check(engine)?;
            self.full_checks += 1;
        }
        let restore_every = self.config.restore_every;
        if restore_every > 0 && self.applied.is_multiple_of(restore_every) {
            self.restored_snapshot = Some(restore_cycle(engine)?);
            self.restores += 1;
        }
        Ok(result)
    }

    /// Whole-state checks run so far (not counting the caller's final one).
    pub fn full_checks(&self) -> u64 {
        self.full_checks
    }

    /// Restore cycles run so far.
    pub fn restores(&self) -> u64 {
        self.restores
    }

    /// The postcard snapshot the latest restore cycle restored from, once.
    pub fn take_restored_snapshot(&mut self) -> Option<Vec<u8>> {
        self.restored_snapshot.take()
    }

    /// The whole-state checks: the engine's checker, the shadow against the engine, and in
    /// differential mode the reference's snapshot against the engine's.
    pub fn full_check(&self, engine: &Engine) -> Result<(), Failure> {
        engine
            .check_invariants()
            .map_err(|violation| Failure::Invariant {
                invariant: violation.invariant,
                detail: violation.detail,
            })?;
        self.shadow.matches(engine)?;
        if let Some(reference) = &self.reference {
            if reference.snapshot() != engine.snapshot() {
                return Err(Failure::Mismatch {
                    detail: "snapshots differ".into(),
                });
            }
        }
        Ok(())
    }

    fn compare_with_reference(
        &mut self,
        command: &Command,
        result: &Result<(), Reject>,
        events: &[Event],
    ) -> Result<(), Failure> {
        let Some(reference) = self.reference.as_mut() else {
            return Ok(());
        };
        let expected = &mut self.reference_events;
        expected.clear();
        let want = catch_unwind(AssertUnwindSafe(|| reference.apply(command, expected))).map_err(
            |panic| Failure::Panic {
                detail: format!("in the reference: {}", panic_message(panic)),
            },
        )?;
        if want != *result {
            let detail = format!("result {result:?}, reference {want:?}");
            return Err(Failure::Mismatch { detail });
        }
        if let Some(index) =
            (0..events.len().max(expected.len())).find(|&i| events.get(i) != expected.get(i))
        {
            let detail = format!(
                "event {index}: {:?}, reference {:?}",
                events.get(index),
                expected.get(index)
            );
            return Err(Failure::Mismatch { detail });
        }
        Ok(())
    }
}

/// Replaces `engine` by one restored from its own snapshot, passed through postcard as the
/// server stores it; the two must snapshot (and so hash) the same. Returns the encoded snapshot.
fn restore_cycle(engine: &mut Engine) -> Result<Vec<u8>, Failure> {
    let snapshot = engine.snapshot();
    let bytes = postcard::to_allocvec(&snapshot).expect("snapshots always encode");
    let restore = || -> Result<Engine, String> {
        let decoded: Snapshot = postcard::from_bytes(&bytes).map_err(|e| e.to_string())?;
        Engine::restore(&decoded).map_err(|e| e.to_string())
    };
    let restored = catch_unwind(AssertUnwindSafe(restore))
        .map_err(|panic| Failure::Restore {
            detail: format!("panicked: {}", panic_message(panic)),
        })?
        .map_err(|detail| Failure::Restore { detail })?;
    // The state hash is taken over the snapshot: equal snapshots hash the same.
    if restored.snapshot() != snapshot {
        return Err(Failure::Restore {
            detail: "the restored engine's snapshot differs".into(),
        });
    }
    *engine = restored;
    Ok(bytes)
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// Events only the clock causes (GTD expiries and scheduled closes), which may precede a
/// reject.
fn is_clock_event(event: &Event) -> bool {
    matches!(
        event,
        Event::OrderEnded {
            end: OrderEnd::Expired,
            ..
        } | Event::OrderEnded {
            reason: Some(CancelReason::MarketClosed),
            ..
        } | Event::MarketStateChanged {
            state: MarketState::Closed,
            ..
        }
    )
}

/// A reject changes nothing but the clock: its events all come from the clock advancing, and
/// (in full mode, when the clock did nothing) the state is exactly as before.
fn check_reject(
    result: &Result<(), Reject>,
    events: &[Event],
    before: Option<engine::Snapshot>,
    engine: &Engine,
) -> Result<(), Failure> {
    let Err(reject) = result else {
        return Ok(());
    };
    let clock_moved = events.iter().any(is_clock_event);
    if !events.is_empty() && !clock_moved {
        let detail = format!("{reject:?} came with {} events", events.len());
        return Err(Failure::RejectChangedState { detail });
    }
    if let Some(mut before) = before.filter(|_| !clock_moved) {
        before.now_micros = engine.now_micros();
        if before != engine.snapshot() {
            let detail = format!("{reject:?} changed the snapshot");
            return Err(Failure::RejectChangedState { detail });
        }
    }
    Ok(())
}

/// The state as the events describe it, kept without ever reading the engine's books or
/// balances (only its escrow, fee and external accounts, to close the ledger sum).
#[derive(Default)]
struct Shadow {
    cash: Vec<Cash>,
    cash_total_micros: i128,
    positions: BTreeMap<(MarketId, UserId), Position>,
    /// Total YES and NO shares per market.
    shares: BTreeMap<MarketId, [i128; 2]>,
    levels: BTreeMap<(MarketId, BookSide, u16), u64>,
    book_seq: BTreeMap<MarketId, u64>,
    /// Invariant 6, from the events alone.
    fills: FillAudit,
}

/// What one command touched, for the checks that follow it.
#[derive(Default)]
struct Touched {
    share_markets: BTreeSet<MarketId>,
    book_markets: BTreeSet<MarketId>,
}

impl Shadow {
    fn absorb(&mut self, events: &[Event], engine: &Engine) -> Result<(), Failure> {
        let mut touched = Touched::default();
        for event in events {
            self.absorb_event(event, &mut touched)?;
        }
        self.check_ledger(engine)?;
        for market in &touched.share_markets {
            self.check_escrow(*market, engine)?;
        }
        for market in &touched.book_markets {
            self.check_book(*market, engine)?;
        }
        Ok(())
    }

    fn absorb_event(&mut self, event: &Event, touched: &mut Touched) -> Result<(), Failure> {
        match event {
            Event::UserCreated { .. } => self.cash.push(Cash::default()),
            Event::Balance {
                user,
                available_micros,
                locked_micros,
            } => self.absorb_balance(*user, *available_micros, *locked_micros)?,
            Event::Position {
                user,
                market,
                position,
            } => {
                self.absorb_position(*market, *user, *position);
                touched.share_markets.insert(*market);
            }
            Event::BookLevel {
                market,
                book_seq,
                side,
                price_units,
                qty,
            } => {
                self.absorb_level(*market, *book_seq, *side, *price_units, *qty, touched)?;
            }
            Event::OrderAccepted { .. }
            | Event::OrderAmended { .. }
            | Event::OrderEnded { .. }
            | Event::Trade { .. } => self.fills.absorb(event).map_err(|d| shadow(6, d))?,
            _ => {}
        }
        Ok(())
    }

    fn absorb_balance(&mut self, user: UserId, available: i64, locked: i64) -> Result<(), Failure> {
        if available < 0 || locked < 0 {
            let detail = format!("{user:?} has available {available}, locked {locked}");
            return Err(shadow(2, detail));
        }
        let Some(cash) = self.cash.get_mut(user.0 as usize) else {
            return Err(shadow(1, format!("balance of unknown {user:?}")));
        };
        let old = cash.available_micros as i128 + cash.locked_micros as i128;
        self.cash_total_micros += available as i128 + locked as i128 - old;
        *cash = Cash {
            available_micros: available,
            locked_micros: locked,
        };
        Ok(())
    }

    fn absorb_position(&mut self, market: MarketId, user: UserId, position: Position) {
        let old = self
            .positions
            .get(&(market, user))
            .copied()
            .unwrap_or_default();
        let totals = self.shares.entry(market).or_default();
        totals[0] += position.total(Outcome::Yes) as i128 - old.total(Outcome::Yes) as i128;
        totals[1] += position.total(Outcome::No) as i128 - old.total(Outcome::No) as i128;
        if position.is_empty() {
            self.positions.remove(&(market, user));
        } else {
            self.positions.insert((market, user), position);
        }
    }

    fn absorb_level(
        &mut self,
        market: MarketId,
        book_seq: u64,
        side: BookSide,
        price_units: u16,
        qty: u64,
        touched: &mut Touched,
    ) -> Result<(), Failure> {
        let last = self.book_seq.entry(market).or_default();
        // The first level event of a market in a command moves its sequence on by one; the
        // others of that command carry the same number.
        let expected = if touched.book_markets.insert(market) {
            *last + 1
        } else {
            *last
        };
        if book_seq != expected {
            let detail = format!("{market:?} book_seq {book_seq}, expected {expected}");
            return Err(shadow(4, detail));
        }
        *last = book_seq;
        if qty == 0 {
            self.levels.remove(&(market, side, price_units));
        } else {
            self.levels.insert((market, side, price_units), qty);
        }
        Ok(())
    }

    /// Invariant 1: user cash (as the events tell it) + escrow + fees + the outside world = 0.
    fn check_ledger(&self, engine: &Engine) -> Result<(), Failure> {
        let escrow: i128 = (0..engine.market_count())
            .map(|m| engine.escrow_micros(MarketId(m)).unwrap_or_default() as i128)
            .sum();
        let total = self.cash_total_micros
            + escrow
            + engine.fee_account_micros() as i128
            + engine.external_micros() as i128;
        if total != 0 {
            return Err(shadow(1, format!("accounts sum to {total}, not 0")));
        }
        Ok(())
    }

    /// Invariant 3: YES shares == NO shares == escrow in dollars.
    fn check_escrow(&self, market: MarketId, engine: &Engine) -> Result<(), Failure> {
        let [yes, no] = self.shares.get(&market).copied().unwrap_or_default();
        let escrow = engine.escrow_micros(market).unwrap_or_default() as i128;
        if yes != no || escrow != yes * 1_000_000 {
            let detail = format!("{market:?}: {yes} YES, {no} NO, escrow {escrow}");
            return Err(shadow(3, detail));
        }
        Ok(())
    }

    /// Invariant 4: the book the events describe is not crossed, and its best prices are the
    /// engine's.
    fn check_book(&self, market: MarketId, engine: &Engine) -> Result<(), Failure> {
        let side_prices = |side: BookSide| {
            self.levels
                .range((market, side, 0)..=(market, side, u16::MAX))
                .map(|(key, _)| key.2)
        };
        let best = (
            side_prices(BookSide::Bid).next_back(),
            side_prices(BookSide::Ask).next(),
        );
        if let (Some(bid), Some(ask)) = best {
            if bid >= ask {
                return Err(shadow(4, format!("{market:?} crossed: {bid} >= {ask}")));
            }
        }
        if engine.best_prices(market) != Some(best) {
            let detail = format!(
                "{market:?} best {best:?}, engine {:?}",
                engine.best_prices(market)
            );
            return Err(shadow(4, detail));
        }
        Ok(())
    }

    /// The whole shadow equals the engine: the events told the full story.
    fn matches(&self, engine: &Engine) -> Result<(), Failure> {
        for (index, cash) in self.cash.iter().enumerate() {
            let user = UserId(index as u32);
            if engine.balance(user) != Some(*cash) {
                let detail = format!(
                    "{user:?}: events say {cash:?}, engine {:?}",
                    engine.balance(user)
                );
                return Err(shadow(5, detail));
            }
        }
        let snapshot = engine.snapshot();
        let positions: BTreeMap<(MarketId, UserId), Position> = snapshot
            .positions
            .iter()
            .map(|&(market, user, position)| ((market, user), position))
            .collect();
        if positions != self.positions {
            return Err(shadow(5, "positions differ from the engine's".into()));
        }
        for m in 0..engine.market_count() {
            let market = MarketId(m);
            let depth = engine.book_depth(market, usize::MAX).expect("known market");
            for (side, levels) in [(BookSide::Bid, &depth.bids), (BookSide::Ask, &depth.asks)] {
                let shadowed = levels
                    .iter()
                    .all(|(price, qty)| self.levels.get(&(market, side, *price)) == Some(qty));
                let count = self
                    .levels
                    .range((market, side, 0)..=(market, side, u16::MAX))
                    .count();
                if !shadowed || count != levels.len() {
                    return Err(shadow(4, format!("{market:?} {side:?} levels differ")));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::Op;

    fn checker(mode: CheckMode) -> Checker {
        let config = CheckConfig {
            mode,
            full_every: 1_000,
            differential: false,
            restore_every: 0,
        };
        Checker::new(config, Config::default())
    }

    /// One user with $5 in an engine the checker has followed from empty.
    fn funded(checker: &mut Checker) -> Engine {
        let mut engine = Engine::default();
        let deposit = Op::Deposit {
            user: UserId(0),
            amount_micros: 5_000_000,
        };
        for (ts_micros, op) in [(1, Op::CreateUser), (2, deposit)] {
            let command = Command { ts_micros, op };
            let answer = checker.apply(&mut engine, &command, false, &mut Vec::new());
            assert_eq!(answer, Ok(Ok(())));
        }
        engine
    }

    #[test]
    fn the_whole_state_check_reports_a_corrupted_balance_exactly() {
        let mut checker = checker(CheckMode::Fast);
        let mut engine = funded(&mut checker);
        assert_eq!(checker.full_check(&engine), Ok(()));
        engine.corrupt_available_for_test(UserId(0), 7);
        assert_eq!(
            checker.full_check(&engine),
            Err(Failure::Invariant {
                invariant: 1,
                detail: "accounts sum to 7, not 0".into(),
            })
        );
        // Put right in the engine's books but not in the events: the shadow notices that
        // the events no longer describe the state.
        engine.corrupt_available_for_test(UserId(0), -7);
        assert_eq!(checker.full_check(&engine), Ok(()));
        checker.shadow.cash[0].available_micros += 7;
        checker.shadow.cash_total_micros += 7;
        let Err(Failure::Shadow { invariant: 5, .. }) = checker.full_check(&engine) else {
            panic!("the shadow must disagree with the engine");
        };
    }

    #[test]
    fn the_shadow_rejects_events_that_break_an_invariant() {
        let mut checker = checker(CheckMode::Fast);
        let engine = funded(&mut checker);
        let negative = Event::Balance {
            user: UserId(0),
            available_micros: -1,
            locked_micros: 5_000_001,
        };
        assert_eq!(
            checker.shadow.absorb(&[negative], &engine),
            Err(Failure::Shadow {
                invariant: 2,
                detail: "UserId(0) has available -1, locked 5000001".into(),
            })
        );
        let mut checker = self::checker(CheckMode::Fast);
        let engine = funded(&mut checker);
        let created = Event::Balance {
            user: UserId(0),
            available_micros: 5_000_001,
            locked_micros: 0,
        };
        assert_eq!(
            checker.shadow.absorb(&[created], &engine),
            Err(Failure::Shadow {
                invariant: 1,
                detail: "accounts sum to 1, not 0".into(),
            })
        );
    }

    #[test]
    fn a_reject_that_changes_anything_is_reported() {
        let reject = Err(Reject::InsufficientFunds);
        let balance = Event::Balance {
            user: UserId(0),
            available_micros: 1,
            locked_micros: 0,
        };
        let engine = Engine::default();
        assert_eq!(
            check_reject(&reject, &[balance], None, &engine),
            Err(Failure::RejectChangedState {
                detail: "InsufficientFunds came with 1 events".into(),
            })
        );
        assert_eq!(check_reject(&reject, &[], None, &engine), Ok(()));
    }
}
