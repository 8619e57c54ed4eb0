//! When the engine next needs a `Tick`: every GTD expiry and market close time seen so far.
//!
//! The engine expires orders and closes markets only when a command arrives with a late enough
//! timestamp. The sequencer learns each deadline from the events (`OrderAccepted` with an
//! expiry, `MarketCreated` with a close time) or, at start, from the recovered engine, and sends
//! a journaled `Tick` once the earliest is due. A deadline whose order ended early only causes
//! one harmless extra tick. Must never forget a deadline that is still ahead.

use std::collections::BTreeSet;

use engine::{Engine, Event, MarketId, MarketState, UserId};

#[derive(Debug, Default)]
pub(super) struct Deadlines {
    pending: BTreeSet<u64>,
}

impl Deadlines {
    /// Every pending GTD expiry and close time in a recovered engine.
    pub fn of(engine: &Engine) -> Deadlines {
        let mut deadlines = Deadlines::default();
        for user in 0..engine.user_count() {
            for order in engine.open_orders(UserId(user)) {
                deadlines.pending.extend(order.expires_at_micros);
            }
        }
        for market in 0..engine.market_count() {
            let Some(view) = engine.market(MarketId(market)) else {
                continue;
            };
            if matches!(view.state, MarketState::Open | MarketState::Halted) {
                deadlines.pending.extend(view.params.close_ts_micros);
            }
        }
        deadlines
    }

    /// Records the deadlines in one command's events, then forgets those the command's
    /// timestamp reached (the engine handled them before applying it).
    pub fn after_command(&mut self, events: &[Event], ts_micros: u64) {
        for event in events {
            match event {
                Event::OrderAccepted { request, .. } => {
                    self.pending.extend(request.expires_at_micros);
                }
                Event::MarketCreated { params, .. } => {
                    self.pending.extend(params.close_ts_micros);
                }
                _ => {}
            }
        }
        while self
            .pending
            .first()
            .is_some_and(|deadline| *deadline <= ts_micros)
        {
            self.pending.pop_first();
        }
    }

    /// Whether a tick at `now_micros` would expire or close something.
    pub fn due(&self, now_micros: u64) -> bool {
        self.pending
            .first()
            .is_some_and(|deadline| *deadline <= now_micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Command, MarketParams, Op, Outcome, PlaceOrder, Side, Slug, TimeInForce};

    fn apply(engine: &mut Engine, ts_micros: u64, op: Op) -> Vec<Event> {
        let mut events = Vec::new();
        engine
            .apply(&Command { ts_micros, op }, &mut events)
            .expect("accepted");
        events
    }

    #[test]
    fn a_gtd_expiry_and_a_close_time_are_due_exactly_when_reached() {
        let mut engine = Engine::default();
        let mut deadlines = Deadlines::default();
        for (ts, op) in [
            (1, Op::CreateUser),
            (
                2,
                Op::Deposit {
                    user: UserId(0),
                    amount_micros: 10_000_000,
                },
            ),
        ] {
            let events = apply(&mut engine, ts, op);
            deadlines.after_command(&events, ts);
        }
        let params = MarketParams {
            slug: Slug::new("m").expect("a valid slug"),
            tick_units: 100,
            qty_min: 1,
            qty_max: 100,
            maker_fee_bps: 0,
            taker_fee_bps: 0,
            close_ts_micros: Some(5_000),
            lock_rule: engine::LockRule::CURRENT,
        };
        let events = apply(&mut engine, 3, Op::CreateMarket(params));
        deadlines.after_command(&events, 3);
        let mut order =
            PlaceOrder::limit(UserId(0), MarketId(0), Side::Buy, Outcome::Yes, 5_000, 1);
        order.time_in_force = TimeInForce::Gtd;
        order.expires_at_micros = Some(1_000);
        let events = apply(&mut engine, 4, Op::Place(order));
        deadlines.after_command(&events, 4);

        assert!(!deadlines.due(999));
        assert!(deadlines.due(1_000));
        // A restarted server finds the same deadlines in the recovered engine.
        assert_eq!(Deadlines::of(&engine).pending, deadlines.pending);

        let events = apply(&mut engine, 1_000, Op::Tick);
        assert!(events.iter().any(|e| matches!(e, Event::OrderEnded { .. })));
        deadlines.after_command(&events, 1_000);
        assert!(!deadlines.due(4_999));
        assert!(deadlines.due(5_000));
        let events = apply(&mut engine, 5_000, Op::Tick);
        deadlines.after_command(&events, 5_000);
        assert!(!deadlines.due(u64::MAX));
        assert!(Deadlines::of(&engine).pending.is_empty());
    }
}
