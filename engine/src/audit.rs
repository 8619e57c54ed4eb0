//! An auditor of fills that reads nothing but events (invariant 6 of DESIGN.md): every trade is
//! between two different users, at a price no worse than either order's limit as accepted or
//! last amended.
//!
//! For tests and the simulator, beside the reference model; it must never read engine state,
//! so that it checks what a consumer of the event stream would see.

use std::collections::HashMap;

use crate::event::Event;
use crate::types::{OrderId, Outcome, Side};
use crate::units::complement_units;

#[derive(Clone, Debug, Default)]
pub struct FillAudit {
    /// Open orders: (side, outcome, limit in the outcome's price).
    limits: HashMap<OrderId, (Side, Outcome, u16)>,
}

impl FillAudit {
    /// Follows one event; a trade that breaks the invariant is described in the error.
    pub fn absorb(&mut self, event: &Event) -> Result<(), String> {
        match event {
            Event::OrderAccepted {
                order,
                request,
                price_units,
                ..
            } => {
                let limit = (request.side, request.outcome, *price_units);
                self.limits.insert(*order, limit);
            }
            Event::OrderAmended {
                order, price_units, ..
            } => match self.limits.get_mut(order) {
                Some(limit) => limit.2 = *price_units,
                None => return Err(format!("{order:?} amended but not open")),
            },
            Event::OrderEnded { order, .. } => {
                self.limits.remove(order);
            }
            Event::Trade {
                maker_order,
                taker_order,
                maker_user,
                taker_user,
                price_units,
                ..
            } => {
                if maker_user == taker_user {
                    return Err(format!("{maker_user:?} traded with itself"));
                }
                self.check_limit(*maker_order, *price_units)?;
                self.check_limit(*taker_order, *price_units)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn check_limit(&self, order: OrderId, yes_price_units: u16) -> Result<(), String> {
        let Some(&(side, outcome, limit)) = self.limits.get(&order) else {
            return Err(format!("{order:?} traded but is not open"));
        };
        let paid = match outcome {
            Outcome::Yes => yes_price_units,
            Outcome::No => complement_units(yes_price_units),
        };
        let within = match side {
            Side::Buy => paid <= limit,
            Side::Sell => paid >= limit,
        };
        if !within {
            return Err(format!(
                "{order:?} filled at {paid}, past its limit {limit}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::PlaceOrder;
    use crate::types::{FillKind, MarketId, TradeId, UserId};

    fn accepted(order: u64, user: u32, side: Side, outcome: Outcome, price: u16) -> Event {
        let request = PlaceOrder::limit(UserId(user), MarketId(0), side, outcome, price, 10);
        Event::OrderAccepted {
            order: OrderId(order),
            request,
            qty: 10,
            price_units: price,
        }
    }

    fn trade(maker: (u64, u32), taker: (u64, u32), yes_price_units: u16) -> Event {
        Event::Trade {
            trade: TradeId(1),
            market: MarketId(0),
            maker_order: OrderId(maker.0),
            taker_order: OrderId(taker.0),
            maker_user: UserId(maker.1),
            taker_user: UserId(taker.1),
            price_units: yes_price_units,
            qty: 1,
            kind: FillKind::Mint,
            taker_side: Side::Buy,
            maker_fee_micros: 0,
            taker_fee_micros: 0,
        }
    }

    /// A BUY NO at 0.45 (an ask at YES 0.55) and a BUY YES at 0.60.
    fn audit() -> FillAudit {
        let mut audit = FillAudit::default();
        audit
            .absorb(&accepted(1, 0, Side::Buy, Outcome::No, 4_500))
            .unwrap();
        audit
            .absorb(&accepted(2, 1, Side::Buy, Outcome::Yes, 6_000))
            .unwrap();
        audit
    }

    #[test]
    fn fills_inside_both_limits_pass() {
        assert_eq!(audit().absorb(&trade((1, 0), (2, 1), 5_500)), Ok(()));
        assert_eq!(audit().absorb(&trade((1, 0), (2, 1), 6_000)), Ok(()));
    }

    #[test]
    fn a_fill_past_either_limit_or_between_one_user_fails() {
        // YES 0.54 pays the NO buyer's 0.46, above its 0.45 limit.
        assert_eq!(
            audit().absorb(&trade((1, 0), (2, 1), 5_400)),
            Err("OrderId(1) filled at 4600, past its limit 4500".into())
        );
        assert_eq!(
            audit().absorb(&trade((1, 0), (2, 1), 6_100)),
            Err("OrderId(2) filled at 6100, past its limit 6000".into())
        );
        assert!(audit().absorb(&trade((1, 0), (2, 0), 5_500)).is_err());
        assert!(audit().absorb(&trade((1, 0), (3, 1), 5_500)).is_err());
    }
}
