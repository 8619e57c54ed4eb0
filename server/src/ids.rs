//! Public ids for things the engine numbers densely.
//!
//! Users and markets get random UUIDs from the server, mapped to engine ids by a journaled
//! command. Orders, trades and transfers are numbered by the engine or the journal, so their
//! UUIDs are derived (UUID v5 of the number): replaying the journal gives the same ids, and no
//! mapping table can drift. This module must never hand out an id that depends on anything but
//! its inputs.

use engine::{OrderId, TradeId};
use uuid::Uuid;

const ORDER_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_1a52_7c0e_4f0e_9d1b_3c5a_0b7e_21a1);
const TRADE_NAMESPACE: Uuid = Uuid::from_u128(0x2b8e_94d0_51a3_4c6f_8e27_d4f0_6a19_c3b2);
const TRANSFER_NAMESPACE: Uuid = Uuid::from_u128(0x9a47_0e6c_3d21_4b88_a5f3_1e6d_7c02_b4c3);

pub fn order_uuid(order: OrderId) -> Uuid {
    Uuid::new_v5(&ORDER_NAMESPACE, &order.0.to_be_bytes())
}

pub fn trade_uuid(trade: TradeId) -> Uuid {
    Uuid::new_v5(&TRADE_NAMESPACE, &trade.0.to_be_bytes())
}

/// A deposit or withdrawal is one journaled command, so its sequence number names it.
pub fn transfer_uuid(seq: u64) -> Uuid {
    Uuid::new_v5(&TRANSFER_NAMESPACE, &seq.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct_per_kind() {
        assert_eq!(order_uuid(OrderId(7)), order_uuid(OrderId(7)));
        assert_ne!(order_uuid(OrderId(7)), order_uuid(OrderId(8)));
        assert_ne!(order_uuid(OrderId(7)), trade_uuid(TradeId(7)));
        assert_ne!(trade_uuid(TradeId(7)), transfer_uuid(7));
    }
}
