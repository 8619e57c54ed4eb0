//! A trader's cash as clients see it.

use serde::Serialize;
use utoipa::ToSchema;

use super::schema::Cash;
use crate::domain::format_cash;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Balance)]
pub struct BalanceBody {
    /// Free to trade or withdraw.
    #[schema(value_type = Cash)]
    available: String,
    /// Held by resting buy orders: what they could cost, fees included, and `feeReserve`.
    #[schema(value_type = Cash)]
    locked: String,
    #[schema(value_type = Cash)]
    total: String,
    /// The part of `locked` held only to round maker fees up on each fill (one micro-dollar per
    /// share still to fill, in markets with a positive maker fee; see a market's `lockRule`);
    /// it comes back as the orders fill or end.
    #[schema(value_type = Cash)]
    fee_reserve: String,
}

impl BalanceBody {
    pub fn new(available_micros: i64, locked_micros: i64, fee_reserve_micros: i64) -> BalanceBody {
        BalanceBody {
            available: format_cash(available_micros),
            locked: format_cash(locked_micros),
            total: format_cash(available_micros.saturating_add(locked_micros)),
            fee_reserve: format_cash(fee_reserve_micros),
        }
    }
}
