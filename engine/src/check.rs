//! The whole-state invariant checker (invariants 1-5 of DESIGN.md).
//!
//! O(state): for tests, the simulator, the fuzzers and `restore`, never for the hot path
//! (the engine asserts the O(1) parts of these where they must hold). It reports the first
//! violation found, naming the invariant, and must never mutate anything.

use core::fmt;

use rustc_hash::FxHashMap;

use crate::engine::Engine;
use crate::orders::NIL;
use crate::types::{BookSide, MarketId, Outcome, Side, UserId};
use crate::units::MICROS_PER_SHARE;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The number of the invariant in DESIGN.md.
    pub invariant: u8,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant {} violated: {}", self.invariant, self.detail)
    }
}

impl std::error::Error for Violation {}

fn violation(invariant: u8, detail: String) -> Result<(), Violation> {
    Err(Violation { invariant, detail })
}

impl Engine {
    pub fn check_invariants(&self) -> Result<(), Violation> {
        self.check_ledger_sums()?;
        self.check_non_negative()?;
        self.check_escrow()?;
        self.check_books()?;
        self.check_reservations()
    }

    /// 1. The accounts sum to zero.
    fn check_ledger_sums(&self) -> Result<(), Violation> {
        let users: i128 = self
            .ledger
            .cash
            .iter()
            .map(|c| c.value.available_micros as i128 + c.value.locked_micros as i128)
            .sum();
        let escrow: i128 = self.ledger.escrow_micros.iter().map(|e| *e as i128).sum();
        let total =
            users + escrow + self.ledger.fee_micros as i128 + self.ledger.external_micros as i128;
        if total != 0 {
            return violation(1, format!("accounts sum to {total}, not 0"));
        }
        Ok(())
    }

    /// 2. No balance is negative (shares are unsigned by type).
    fn check_non_negative(&self) -> Result<(), Violation> {
        for (user, account) in self.ledger.cash.iter().enumerate() {
            let cash = account.value;
            if cash.available_micros < 0 || cash.locked_micros < 0 {
                return violation(2, format!("user {user} has cash {cash:?}"));
            }
        }
        if self.ledger.fee_micros < 0 {
            return violation(2, format!("fee account is {}", self.ledger.fee_micros));
        }
        for (market, escrow) in self.ledger.escrow_micros.iter().enumerate() {
            if *escrow < 0 {
                return violation(2, format!("market {market} escrow is {escrow}"));
            }
        }
        Ok(())
    }

    /// 3. Per market, YES shares == NO shares == escrow / 1.00.
    fn check_escrow(&self) -> Result<(), Violation> {
        let mut totals = vec![(0u128, 0u128); self.markets.len()];
        for (&(market, _), account) in &self.ledger.positions {
            let position = &account.value;
            let total = &mut totals[market.0 as usize];
            total.0 += position.total(Outcome::Yes) as u128;
            total.1 += position.total(Outcome::No) as u128;
        }
        for (market, &(yes, no)) in totals.iter().enumerate() {
            let escrow = self.ledger.escrow_micros[market] as i128;
            let backed = yes as i128 * MICROS_PER_SHARE as i128;
            if yes != no || backed != escrow {
                return violation(
                    3,
                    format!("market {market}: yes {yes}, no {no}, escrow {escrow}"),
                );
            }
        }
        Ok(())
    }

    /// 4. Books are not crossed, every resting order sits in exactly one level whose total is
    ///    the sum of its orders, and every open order rests.
    fn check_books(&self) -> Result<(), Violation> {
        let mut resting = 0usize;
        for (index, market) in self.markets.iter().enumerate() {
            let book = &market.book;
            if let (Some(bid), Some(ask)) = (book.best(BookSide::Bid), book.best(BookSide::Ask)) {
                if bid >= ask {
                    return violation(4, format!("market {index} crossed: bid {bid} >= ask {ask}"));
                }
            }
            for side in [BookSide::Bid, BookSide::Ask] {
                let (best, scanned) = (book.best(side), book.scanned_best(side));
                if best != scanned {
                    return violation(
                        4,
                        format!(
                            "market {index} {side:?}: best {best:?} but the levels say {scanned:?}"
                        ),
                    );
                }
                for price in book.prices(side) {
                    resting += self.check_level(MarketId(index as u32), side, price)?;
                }
            }
        }
        if resting != self.orders.len() {
            return violation(
                4,
                format!("{} open orders but {resting} resting", self.orders.len()),
            );
        }
        Ok(())
    }

    fn check_level(
        &self,
        market: MarketId,
        side: BookSide,
        price: u16,
    ) -> Result<usize, Violation> {
        let book = &self.markets[market.0 as usize].book;
        let level = book.level(price);
        let (mut sum, mut count, mut prev, mut slot) = (0u64, 0usize, NIL, level.head);
        while slot != NIL {
            let order = self.orders.get(slot);
            let placed = order.resting
                && order.market == market
                && order.book_side() == side
                && order.book_price_units() == price
                && order.rests_at_ticks == book.ticks(price)
                && side == BookSide::of(order.side, order.outcome)
                && price == crate::orders::book_price_units(order.outcome, order.limit_units)
                && order.level_prev == prev
                && order.remaining_qty > 0
                && order.remaining_qty <= order.qty
                && self.orders.slot_of(order.id) == Some(slot);
            if !placed {
                return Err(Violation {
                    invariant: 4,
                    detail: format!("order {:?} misplaced at {side:?} {price}", order.id),
                });
            }
            sum += order.remaining_qty;
            count += 1;
            prev = slot;
            slot = order.level_next;
        }
        if sum != level.qty || level.tail != prev || count == 0 {
            return Err(Violation {
                invariant: 4,
                detail: format!(
                    "market {market:?} {side:?} {price}: level {} != orders {sum}",
                    level.qty
                ),
            });
        }
        Ok(count)
    }

    /// 5. Locked cash and reserved shares are exactly what open orders need.
    fn check_reservations(&self) -> Result<(), Violation> {
        let mut locked = vec![0i64; self.users.len()];
        let mut reserved: FxHashMap<(MarketId, UserId, Outcome), u64> = FxHashMap::default();
        for (user_index, orders) in self.users.iter().enumerate() {
            let (mut count, mut slot) = (0u32, orders.head);
            while slot != NIL {
                let order = self.orders.get(slot);
                if order.user.0 as usize != user_index {
                    return violation(5, format!("order {:?} in another user's list", order.id));
                }
                match order.side {
                    Side::Buy => {
                        if order.locked_micros != self.reserve_of(order) {
                            return violation(
                                5,
                                format!(
                                    "order {:?} holds {} micros",
                                    order.id, order.locked_micros
                                ),
                            );
                        }
                        locked[user_index] += order.locked_micros;
                    }
                    Side::Sell => {
                        *reserved
                            .entry((order.market, order.user, order.outcome))
                            .or_default() += order.remaining_qty;
                    }
                }
                count += 1;
                slot = order.user_next;
            }
            if count != orders.open_count {
                return violation(
                    5,
                    format!(
                        "user {user_index} counts {} open orders, has {count}",
                        orders.open_count
                    ),
                );
            }
        }
        for (user, account) in self.ledger.cash.iter().enumerate() {
            let cash = account.value;
            if cash.locked_micros != locked[user] {
                return violation(
                    5,
                    format!(
                        "user {user} locks {} but orders need {}",
                        cash.locked_micros, locked[user]
                    ),
                );
            }
        }
        for (&(market, user), account) in &self.ledger.positions {
            let position = &account.value;
            for outcome in [Outcome::Yes, Outcome::No] {
                let need = reserved.get(&(market, user, outcome)).copied().unwrap_or(0);
                let held = position.total(outcome) - position.free(outcome);
                if held != need {
                    return violation(5, format!("user {user:?} reserves {held} {outcome:?} in {market:?}, orders need {need}"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(any(test, feature = "test-hooks"))]
impl Engine {
    /// Test-only: corrupts a user's available cash so tests can prove the checker catches it.
    pub fn corrupt_available_for_test(&mut self, user: UserId, delta_micros: i64) {
        self.ledger.cash[user.0 as usize].value.available_micros += delta_micros;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, Op};

    /// One user with $5, checked clean.
    fn funded() -> Engine {
        let mut engine = Engine::default();
        let mut out = Vec::new();
        let deposit = Op::Deposit {
            user: UserId(0),
            amount_micros: 5_000_000,
        };
        for (ts_micros, op) in [(1, Op::CreateUser), (2, deposit)] {
            engine.apply(&Command { ts_micros, op }, &mut out).unwrap();
        }
        assert_eq!(engine.check_invariants(), Ok(()));
        engine
    }

    #[test]
    fn the_checker_reports_cash_created_from_nothing() {
        let mut engine = funded();
        engine.corrupt_available_for_test(UserId(0), 7);
        assert_eq!(
            engine.check_invariants(),
            Err(Violation {
                invariant: 1,
                detail: "accounts sum to 7, not 0".to_owned(),
            })
        );
        // Restore runs the same checker, so a corrupted state cannot come back from a snapshot.
        let restored = Engine::restore(&engine.snapshot());
        assert_eq!(
            restored.unwrap_err().0,
            "invariant 1 violated: accounts sum to 7, not 0"
        );
        engine.corrupt_available_for_test(UserId(0), -7);
        assert_eq!(engine.check_invariants(), Ok(()));
    }

    /// `funded`, with a bid for 2 YES at 0.40 resting in a market of 0.01 ticks; its slot.
    fn resting_bid() -> (Engine, u32) {
        let mut engine = funded();
        let mut out = Vec::new();
        let params = crate::command::MarketParams::for_tests("level-check");
        let bid = crate::command::PlaceOrder::limit(
            UserId(0),
            MarketId(0),
            crate::types::Side::Buy,
            Outcome::Yes,
            4_000,
            2,
        );
        for (ts_micros, op) in [(3, Op::CreateMarket(params)), (4, Op::Place(bid))] {
            engine.apply(&Command { ts_micros, op }, &mut out).unwrap();
        }
        assert_eq!(engine.check_invariants(), Ok(()));
        let slot = engine.orders.slot_of(crate::types::OrderId(1)).unwrap();
        (engine, slot)
    }

    fn misplaced() -> Result<(), Violation> {
        Err(Violation {
            invariant: 4,
            detail: "order OrderId(1) misplaced at Bid 4000".to_owned(),
        })
    }

    #[test]
    fn the_checker_reports_an_order_filed_at_a_level_other_than_its_price() {
        let (mut engine, slot) = resting_bid();
        assert_eq!(engine.orders.get(slot).rests_at_ticks, 40);
        engine.orders.get_mut(slot).rests_at_ticks = 41;
        assert_eq!(engine.check_invariants(), misplaced());
    }

    #[test]
    fn the_checker_reports_an_order_with_more_left_than_its_size() {
        let (mut engine, slot) = resting_bid();
        // The level's total grows with it, so only the order's own bound can tell.
        engine.orders.get_mut(slot).remaining_qty = 3;
        engine.markets[0].book.grow_for_test(40, 1);
        assert_eq!(engine.check_invariants(), misplaced());
    }

    #[test]
    fn the_checker_reports_cash_destroyed_below_zero() {
        let mut engine = funded();
        engine.corrupt_available_for_test(UserId(0), -5_000_001);
        // The sum is checked first, so that is the violation reported.
        assert_eq!(
            engine.check_invariants(),
            Err(Violation {
                invariant: 1,
                detail: "accounts sum to -5000001, not 0".to_owned(),
            })
        );
    }
}
