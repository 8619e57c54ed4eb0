//! What a run did, counted from its results and events, and how it is printed.
//!
//! Owns the per-seed report: commands, fills by kind, rejects by reason, volume, peak book
//! depth, resting orders, checks, violations and the final state hash. Everything in it is a
//! pure function of the seed and the options (no timings), so two runs of one seed print the
//! same report byte for byte. It must never influence the run it describes.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use engine::{BookSide, Event, MarketId, OrderEnd, Reject};
use serde::{Deserialize, Serialize};

use crate::checks::Failure;

/// A failure and the index (0-based, setup included) of the command that revealed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureAt {
    pub index: u64,
    pub failure: Failure,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub seed: u64,
    /// Every command applied, setup included.
    pub commands: u64,
    pub accepted: u64,
    /// Rejected commands (`accepted + rejected == commands`).
    pub rejected: u64,
    /// Rejects by reason code: rejected commands and rejected batch items.
    pub rejects: BTreeMap<&'static str, u64>,
    /// Commands bad actors sent (every one of them rejected, or the run fails).
    pub bad_commands: u64,
    pub orders_placed: u64,
    pub orders_filled: u64,
    pub orders_cancelled: u64,
    pub orders_expired: u64,
    pub replays: u64,
    pub trades: u64,
    pub fills: BTreeMap<String, u64>,
    pub volume_qty: u64,
    /// Sum of qty x YES price over all fills, in micro-dollars.
    pub volume_micros: i64,
    pub fees_micros: i64,
    pub markets_created: u64,
    pub markets_resolved: u64,
    pub settlements: u64,
    pub peak_resting_orders: u64,
    /// The most non-empty price levels (both sides, all books) at once.
    pub peak_levels: u64,
    pub resting_orders: u64,
    pub full_checks: u64,
    /// Restore cycles: snapshot, restore, go on with the restored engine.
    pub restores: u64,
    pub violations: u64,
    pub failure: Option<FailureAt>,
    /// 32 hex digits of `Engine::state_hash` at the end (or at the failure).
    pub state_hash: String,
}

/// Counts a run as it goes.
#[derive(Default)]
pub struct Stats {
    pub report: Report,
    levels: HashSet<(MarketId, BookSide, u16)>,
}

impl Stats {
    pub fn record(&mut self, result: &Result<(), Reject>, events: &[Event], open_orders: usize) {
        let report = &mut self.report;
        report.commands += 1;
        match result {
            Ok(()) => report.accepted += 1,
            Err(reject) => {
                report.rejected += 1;
                count_reject(report, *reject);
            }
        }
        for event in events {
            self.record_event(event);
        }
        let report = &mut self.report;
        report.peak_resting_orders = report.peak_resting_orders.max(open_orders as u64);
        report.peak_levels = report.peak_levels.max(self.levels.len() as u64);
    }

    fn record_event(&mut self, event: &Event) {
        let report = &mut self.report;
        match event {
            Event::OrderAccepted { .. } => report.orders_placed += 1,
            Event::OrderReplayed { .. } => report.replays += 1,
            Event::OrderEnded { end, .. } => match end {
                OrderEnd::Filled => report.orders_filled += 1,
                OrderEnd::Cancelled => report.orders_cancelled += 1,
                OrderEnd::Expired => report.orders_expired += 1,
            },
            Event::Trade {
                kind,
                qty,
                price_units,
                maker_fee_micros,
                taker_fee_micros,
                ..
            } => {
                report.trades += 1;
                let kind = serde_json::to_value(kind).expect("a unit variant");
                let kind = kind.as_str().expect("a string").to_owned();
                *report.fills.entry(kind).or_default() += 1;
                report.volume_qty += qty;
                report.volume_micros += *qty as i64 * *price_units as i64 * 100;
                report.fees_micros += maker_fee_micros + taker_fee_micros;
            }
            Event::BatchItemRejected { reason, .. } => count_reject(report, *reason),
            Event::MarketCreated { .. } => report.markets_created += 1,
            Event::MarketResolved { .. } => report.markets_resolved += 1,
            Event::Settlement { .. } => report.settlements += 1,
            Event::BookLevel {
                market,
                side,
                price_units,
                qty,
                ..
            } => {
                if *qty == 0 {
                    self.levels.remove(&(*market, *side, *price_units));
                } else {
                    self.levels.insert((*market, *side, *price_units));
                }
            }
            _ => {}
        }
    }
}

fn count_reject(report: &mut Report, reject: Reject) {
    *report.rejects.entry(reject.code()).or_default() += 1;
}

/// Money in micro-dollars as dollars with cents, exactly (integer arithmetic only).
fn dollars(micros: i64) -> String {
    let cents = micros / 10_000;
    format!("${}.{:02}", cents / 100, (cents % 100).abs())
}

fn counts<K: fmt::Display>(map: &BTreeMap<K, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k} {v}")).collect();
    parts.join(", ")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: {} commands ({} accepted, {} rejected; {} from bad actors)",
            self.seed, self.commands, self.accepted, self.rejected, self.bad_commands
        )?;
        writeln!(
            f,
            "  orders: {} placed, {} filled, {} cancelled, {} expired, {} client-id replays",
            self.orders_placed,
            self.orders_filled,
            self.orders_cancelled,
            self.orders_expired,
            self.replays
        )?;
        writeln!(
            f,
            "  trades: {} ({}); volume {} shares, {}; fees {}",
            self.trades,
            counts(&self.fills),
            self.volume_qty,
            dollars(self.volume_micros),
            dollars(self.fees_micros)
        )?;
        writeln!(f, "  rejects (batch items too): {}", counts(&self.rejects))?;
        writeln!(
            f,
            "  markets: {} created, {} resolved, {} settlements",
            self.markets_created, self.markets_resolved, self.settlements
        )?;
        writeln!(
            f,
            "  book: peak {} resting orders and {} price levels; {} resting at the end",
            self.peak_resting_orders, self.peak_levels, self.resting_orders
        )?;
        writeln!(
            f,
            "  checks: {} whole-state, {} restores, {} violations",
            self.full_checks, self.restores, self.violations
        )?;
        if let Some(failure) = &self.failure {
            writeln!(
                f,
                "  FAILED at command {}: {}",
                failure.index, failure.failure
            )?;
        }
        write!(f, "  state hash: {}", self.state_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_are_printed_exactly() {
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(1_234_567_890), "$1234.56");
        assert_eq!(dollars(50_000), "$0.05");
    }
}
