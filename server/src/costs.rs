//! Cost basis and realized profit of a position, in integer micro-dollars: pure arithmetic the
//! sequencer applies to each committed fill, conversion and settlement (kept in the
//! `positions` rows) and the portfolio reads back.
//!
//! The rules: a BUY adds its cash and fee to the outcome's cost; a SELL removes the average
//! cost of what it sold (rounded down) and realizes proceeds minus fee minus that cost; a split
//! costs 1.00 a pair, booked as 0.50 to each outcome (a convention: split-then-merge realizes
//! exactly zero); a merge realizes 1.00 a pair minus both outcomes' average cost; a settlement
//! realizes payout minus the remaining cost. Must never use a float or read anything.

use engine::units::{complement_units, MICROS_PER_PRICE_UNIT, MICROS_PER_SHARE};
use engine::{FillKind, Outcome, Side};

/// One outcome's holding: shares and what they cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Holding {
    pub shares: i64,
    pub cost_micros: i64,
}

/// One user's costs in one market.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Costs {
    pub yes: Holding,
    pub no: Holding,
    pub realized_micros: i64,
}

/// Who did what in a fill: the maker's and the taker's (side, outcome), from the fill's kind
/// and the taker's side in YES terms (the bid is BUY YES or SELL NO, the ask SELL YES or BUY NO).
pub fn fill_parties(kind: FillKind, taker_side: Side) -> ((Side, Outcome), (Side, Outcome)) {
    let (bid, ask) = match kind {
        FillKind::YesTransfer => ((Side::Buy, Outcome::Yes), (Side::Sell, Outcome::Yes)),
        FillKind::NoTransfer => ((Side::Sell, Outcome::No), (Side::Buy, Outcome::No)),
        FillKind::Mint => ((Side::Buy, Outcome::Yes), (Side::Buy, Outcome::No)),
        FillKind::Merge => ((Side::Sell, Outcome::No), (Side::Sell, Outcome::Yes)),
    };
    match taker_side {
        Side::Buy => (ask, bid),
        Side::Sell => (bid, ask),
    }
}

/// `yes_price_units` in `outcome`'s own terms.
pub fn outcome_price_units(outcome: Outcome, yes_price_units: u16) -> i64 {
    match outcome {
        Outcome::Yes => i64::from(yes_price_units),
        Outcome::No => i64::from(complement_units(yes_price_units)),
    }
}

impl Costs {
    fn holding(&mut self, outcome: Outcome) -> &mut Holding {
        match outcome {
            Outcome::Yes => &mut self.yes,
            Outcome::No => &mut self.no,
        }
    }

    /// One fill: `price_units` in the outcome's own terms, `fee_micros` paid (negative: rebate).
    pub fn fill(&mut self, side: Side, outcome: Outcome, price_units: i64, qty: i64, fee: i64) {
        let cash = qty * price_units * MICROS_PER_PRICE_UNIT;
        let holding = self.holding(outcome);
        if side == Side::Buy {
            holding.shares += qty;
            holding.cost_micros += cash + fee;
            return;
        }
        let removed = holding.remove(qty);
        self.realized_micros += cash - fee - removed;
    }

    /// `qty` pairs bought for 1.00 each, half the cost to each outcome.
    pub fn split(&mut self, qty: i64) {
        for holding in [&mut self.yes, &mut self.no] {
            holding.shares += qty;
            holding.cost_micros += qty * MICROS_PER_SHARE / 2;
        }
    }

    /// `qty` pairs redeemed for 1.00 each.
    pub fn merge(&mut self, qty: i64) {
        let removed = self.yes.remove(qty) + self.no.remove(qty);
        self.realized_micros += qty * MICROS_PER_SHARE - removed;
    }

    /// `qty` shares of `outcome` handed to `to`: they leave at their average cost and arrive
    /// at `price_micros` if one is given (the giver realizes the difference), else at that
    /// same cost.
    pub fn transfer(
        &mut self,
        to: &mut Costs,
        outcome: Outcome,
        qty: i64,
        price_micros: Option<i64>,
    ) {
        let removed = self.holding(outcome).remove(qty);
        let paid = price_micros.unwrap_or(removed);
        self.realized_micros += paid - removed;
        let holding = to.holding(outcome);
        holding.shares += qty;
        holding.cost_micros += paid;
    }

    /// Resolution paid `payout_micros` for every share: the whole cost is realized.
    pub fn settle(&mut self, payout_micros: i64) {
        self.realized_micros += payout_micros - self.yes.cost_micros - self.no.cost_micros;
        self.yes = Holding::default();
        self.no = Holding::default();
    }
}

impl Holding {
    /// Takes `qty` shares out at their average cost (rounded down); returns that cost.
    fn remove(&mut self, qty: i64) -> i64 {
        if self.shares <= 0 {
            return 0;
        }
        let taken = qty.min(self.shares);
        let cost = i128::from(self.cost_micros) * i128::from(taken) / i128::from(self.shares);
        let cost = i64::try_from(cost).unwrap_or(self.cost_micros);
        self.shares -= taken;
        self.cost_micros -= cost;
        cost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_cost_and_realized_pnl_are_exact_micros() {
        let mut costs = Costs::default();
        costs.fill(Side::Buy, Outcome::Yes, 4_000, 10, 0);
        costs.fill(Side::Buy, Outcome::Yes, 5_000, 10, 0);
        assert_eq!(costs.yes.cost_micros, 9_000_000);
        costs.fill(Side::Sell, Outcome::Yes, 6_000, 5, 100);
        // Sold 5 at 0.60 (3.00) minus a 0.0001 fee, against 5 x 0.45 of cost.
        assert_eq!(costs.realized_micros, 3_000_000 - 100 - 2_250_000);
        assert_eq!(
            costs.yes,
            Holding {
                shares: 15,
                cost_micros: 6_750_000
            }
        );
        costs.fill(Side::Buy, Outcome::No, 3_000, 15, 0);
        costs.settle(15 * 1_000_000);
        assert_eq!(
            costs.realized_micros,
            749_900 + 15_000_000 - 6_750_000 - 4_500_000
        );
        assert_eq!(costs.yes, Holding::default());
    }

    #[test]
    fn each_fill_kind_names_both_parties() {
        use Outcome::{No, Yes};
        use Side::{Buy, Sell};
        // The taker bought in YES terms: it is the bid.
        assert_eq!(
            fill_parties(FillKind::YesTransfer, Buy),
            ((Sell, Yes), (Buy, Yes))
        );
        assert_eq!(fill_parties(FillKind::Mint, Buy), ((Buy, No), (Buy, Yes)));
        assert_eq!(fill_parties(FillKind::Mint, Sell), ((Buy, Yes), (Buy, No)));
        assert_eq!(
            fill_parties(FillKind::NoTransfer, Sell),
            ((Sell, No), (Buy, No))
        );
        assert_eq!(
            fill_parties(FillKind::Merge, Sell),
            ((Sell, No), (Sell, Yes))
        );
        assert_eq!(outcome_price_units(No, 3_000), 7_000);
    }
}
