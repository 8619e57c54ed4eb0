//! Units, limits and the exact integer arithmetic of money.
//!
//! Owns every named bound of the engine and the three formulas everything else relies on:
//! the cash value of shares at a price, the fee on a fill, and the worst-case cash a resting
//! BUY must hold. It must never use floats, never round a price, and never overflow: all
//! products that can exceed `i64` are computed in `i128`/`u128` and the bounds below are chosen
//! (and asserted at compile time) so that every stored balance fits in `i64`.

/// One price unit is 0.0001 dollars; a price is `1..=PRICE_UNITS_MAX` units.
pub const PRICE_SCALE: u32 = 10_000;
pub const PRICE_UNITS_MIN: u16 = 1;
pub const PRICE_UNITS_MAX: u16 = 9_999;
/// Micro-dollars per dollar: one share pays out at most this much.
pub const MICROS_PER_SHARE: i64 = 1_000_000;
/// Micro-dollars per price unit per share.
pub const MICROS_PER_PRICE_UNIT: i64 = MICROS_PER_SHARE / PRICE_SCALE as i64;
/// The tick sizes a market may use, in price units (0.01, 0.001, 0.0001).
pub const TICK_UNITS_ALLOWED: [u16; 3] = [100, 10, 1];

/// Largest order a market may allow.
pub const ORDER_QTY_LIMIT: u64 = 1_000_000_000;
/// Largest single deposit or withdrawal: one billion dollars.
pub const TRANSFER_MICROS_MAX: i64 = 1_000_000_000 * MICROS_PER_SHARE;
/// Cap on all cash inside the exchange (deposits minus withdrawals). Every balance, escrow and
/// the fee account are bounded by it, so sums over accounts stay inside `i64`.
pub const CASH_IN_SYSTEM_MICROS_MAX: i64 = 4_000_000_000_000_000_000;
/// Fee rates are in basis points of `qty * p * (1 - p)` dollars; 10,000 bps = 1.0.
pub const FEE_RATE_BPS_MAX: i32 = 10_000;
/// Slippage limits on MARKET orders, in basis points of the best price.
pub const SLIPPAGE_BPS_MAX: u32 = 10_000;

pub const USERS_MAX: u32 = 16_777_216;
pub const MARKETS_MAX: u32 = 100_000;
/// Open orders across the whole engine (the order arena's capacity bound).
pub const OPEN_ORDERS_MAX: u32 = 50_000_000;
/// Hard ceiling for the configurable per-user open-order limit.
pub const OPEN_ORDERS_PER_USER_LIMIT: u32 = 1_000_000;
pub const OPEN_ORDERS_PER_USER_DEFAULT: u32 = 1_000;
/// A user's client order ids stay unique among their open orders and this many most recent.
pub const CLIENT_ORDER_IDS_KEPT: usize = 10_000;
pub const CLIENT_ORDER_ID_LEN_MAX: usize = 36;
pub const SLUG_LEN_MAX: usize = 64;
/// Items (places plus cancels) in one batch command.
pub const BATCH_ITEMS_MAX: usize = 100;

const _: () = assert!(MICROS_PER_PRICE_UNIT * PRICE_SCALE as i64 == MICROS_PER_SHARE);
const _: () = assert!(PRICE_UNITS_MAX as u32 == PRICE_SCALE - 1);
// The largest order costs far less than the cap, so a reservation always fits in i64.
const _: () = assert!((ORDER_QTY_LIMIT as i64) * MICROS_PER_SHARE * 2 < CASH_IN_SYSTEM_MICROS_MAX);
const _: () = assert!(CASH_IN_SYSTEM_MICROS_MAX < i64::MAX / 2);
const _: () = assert!(TRANSFER_MICROS_MAX < CASH_IN_SYSTEM_MICROS_MAX);
const _: () = assert!(OPEN_ORDERS_PER_USER_LIMIT <= OPEN_ORDERS_MAX);

/// The price of the other outcome: a YES price `p` is a NO price `1 - p`.
pub const fn complement_units(price_units: u16) -> u16 {
    assert!(price_units <= PRICE_SCALE as u16);
    PRICE_SCALE as u16 - price_units
}

/// Cash value of `qty` shares at `price_units`.
pub fn notional_micros(qty: u64, price_units: u16) -> i64 {
    assert!(qty <= ORDER_QTY_LIMIT * 4_000);
    qty as i64 * price_units as i64 * MICROS_PER_PRICE_UNIT
}

/// `p * (1 - p)` scaled by `PRICE_SCALE^2`; the same for a YES price and its complement.
pub const fn fee_weight(price_units: u16) -> u64 {
    let p = price_units as u64;
    p * (PRICE_SCALE as u64 - p)
}

/// Fee weight of a fill: `qty * p * (1 - p)` in units of 1e-8 dollars.
pub fn fill_fee_weight(qty: u64, price_units: u16) -> u128 {
    qty as u128 * fee_weight(price_units) as u128
}

/// A fee charged at `rate_bps` on a summed fee weight, in micros, rounded up.
/// `rate_bps * weight / 1e12` dollars = `rate_bps * weight / 1e6` micros.
pub fn fee_ceil_micros(rate_bps: i32, weight: u128) -> i64 {
    assert!(rate_bps >= 0);
    if rate_bps == 0 {
        return 0; // fee-free markets are common: skip the wide multiply
    }
    let numerator = rate_bps as u128 * weight;
    // Almost every numerator fits in 64 bits, where dividing by a constant is a multiply;
    // a 128-bit division is a slow library call.
    let fee = match u64::try_from(numerator) {
        Ok(small) => small.div_ceil(1_000_000) as u128,
        Err(_) => numerator.div_ceil(1_000_000),
    };
    assert!(fee <= CASH_IN_SYSTEM_MICROS_MAX as u128);
    fee as i64
}

/// A rebate paid at `rate_bps` (the magnitude of a negative maker rate), rounded down so the
/// fee account never pays out more than it took.
pub fn rebate_floor_micros(rate_bps: i32, weight: u128) -> i64 {
    assert!(rate_bps >= 0);
    let numerator = rate_bps as u128 * weight;
    let rebate = match u64::try_from(numerator) {
        Ok(small) => (small / 1_000_000) as u128,
        Err(_) => numerator / 1_000_000,
    };
    assert!(rebate <= CASH_IN_SYSTEM_MICROS_MAX as u128);
    rebate as i64
}

/// A maker's fee on one fill: positive is paid, negative is a rebate received.
pub fn maker_fee_micros(maker_rate_bps: i32, qty: u64, yes_price_units: u16) -> i64 {
    let weight = fill_fee_weight(qty, yes_price_units);
    if maker_rate_bps >= 0 {
        fee_ceil_micros(maker_rate_bps, weight)
    } else {
        -rebate_floor_micros(-maker_rate_bps, weight)
    }
}

/// Which rule sizes the rounding buffer in a resting BUY's lock (DESIGN.md, "The ledger"). A
/// market keeps the rule it was created with for life, so a journal replays as it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LockRule {
    /// Markets created before December 2026: one micro-dollar per share whatever the fees, so
    /// a trader with exactly the order's cost was refused.
    BufferAlways,
    /// One micro-dollar per share only where the maker fee is positive (the only fee rounded
    /// up on each fill); with no maker fee a BUY locks exactly its worst-case cost.
    BufferForMakerFee,
}

impl LockRule {
    /// The rule every new market is created with.
    pub const CURRENT: LockRule = LockRule::BufferForMakerFee;

    /// The part of a resting BUY's lock of `qty` shares held for rounding the maker fee up on
    /// each fill: one micro-dollar per share, or none.
    #[inline]
    pub fn buffer_micros(self, qty: u64, maker_bps: i32) -> i64 {
        let buffered = match self {
            LockRule::BufferAlways => true,
            LockRule::BufferForMakerFee => maker_bps > 0,
        };
        if buffered {
            qty as i64
        } else {
            0
        }
    }
}

/// The cash a resting BUY of `qty` at outcome limit `limit_units` must hold:
/// `q * L + ceil(max(taker, maker, 0) * q * m)` plus the rule's rounding buffer, where
/// `m = L(1-L)` below 0.5 and 0.25 above (the largest `p(1-p)` it can fill at).
#[inline]
pub fn buy_reserve_micros(
    qty: u64,
    limit_units: u16,
    maker_bps: i32,
    taker_bps: i32,
    rule: LockRule,
) -> i64 {
    let rate_bps = maker_bps.max(taker_bps).max(0);
    let half = (PRICE_SCALE / 2) as u16;
    let weight_max = if limit_units < half {
        fee_weight(limit_units)
    } else {
        fee_weight(half)
    };
    let fee = fee_ceil_micros(rate_bps, qty as u128 * weight_max as u128);
    notional_micros(qty, limit_units) + fee + rule.buffer_micros(qty, maker_bps)
}

/// Whether `price_units` is a valid price on a market with `tick_units`.
pub fn price_on_tick(price_units: u16, tick_units: u16) -> bool {
    // One arm per allowed tick: a remainder by a constant is a multiply, not a divide.
    let on_tick = match tick_units {
        1 => true,
        10 => price_units.is_multiple_of(10),
        100 => price_units.is_multiple_of(100),
        tick => price_units.is_multiple_of(tick),
    };
    (PRICE_UNITS_MIN..=PRICE_UNITS_MAX).contains(&price_units) && on_tick
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_matches_the_kalshi_formula_rounded_up() {
        // 7% of 100 * 0.5 * 0.5 = $1.75 exactly.
        assert_eq!(fee_ceil_micros(700, fill_fee_weight(100, 5_000)), 1_750_000);
        // 7% of 1 * 0.01 * 0.99 = $0.000693 exactly.
        assert_eq!(fee_ceil_micros(700, fill_fee_weight(1, 100)), 693);
        // 7% of 1 * 0.0001 * 0.9999 = 6.9993 micros -> rounds up to 7.
        assert_eq!(fee_ceil_micros(700, fill_fee_weight(1, 1)), 7);
        assert_eq!(fee_ceil_micros(0, fill_fee_weight(1_000, 4_000)), 0);
    }

    #[test]
    fn fees_past_64_bits_take_the_wide_path_exactly() {
        // 100% of 1e9 shares at 0.5: weight 2.5e16, numerator 2.5e20 > u64::MAX.
        let weight = fill_fee_weight(ORDER_QTY_LIMIT, 5_000);
        assert!(10_000 * weight > u64::MAX as u128);
        assert_eq!(fee_ceil_micros(10_000, weight), 250_000_000_000_000);
        assert_eq!(fee_ceil_micros(10_000, weight + 1), 250_000_000_000_001);
        assert_eq!(rebate_floor_micros(10_000, weight + 1), 250_000_000_000_000);
    }

    #[test]
    fn rebates_round_down() {
        // 6.9993 micros: a rebate of 6, a fee of 7.
        assert_eq!(maker_fee_micros(-700, 1, 1), -6);
        assert_eq!(maker_fee_micros(700, 1, 1), 7);
        assert_eq!(maker_fee_micros(-700, 1, 100), -693);
        assert_eq!(maker_fee_micros(-1, 1, 100), 0);
    }

    #[test]
    fn fee_weight_is_symmetric_in_the_outcome() {
        for p in [1u16, 100, 2_500, 5_000, 9_999] {
            assert_eq!(fee_weight(p), fee_weight(complement_units(p)));
        }
    }

    #[test]
    fn reserve_covers_price_fee_and_rounding() {
        let rule = LockRule::CURRENT;
        // 10 shares at 0.40 with a 7% taker fee and no maker fee: $4.00 + ceil(0.07*10*0.24 =
        // $0.168), no rounding buffer (the taker's fee is rounded once per order).
        assert_eq!(
            buy_reserve_micros(10, 4_000, 0, 700, rule),
            4_000_000 + 168_000
        );
        // Above 0.5 the fee weight is capped at 0.25.
        assert_eq!(
            buy_reserve_micros(10, 8_000, 0, 700, rule),
            8_000_000 + 175_000
        );
        // A positive maker fee is rounded up on each fill: one micro-dollar per share.
        assert_eq!(
            buy_reserve_micros(10, 4_000, 200, 700, rule),
            4_000_000 + 168_000 + 10
        );
        // A rebate (negative maker rate) reserves nothing beyond the taker's fee.
        assert_eq!(buy_reserve_micros(1, 100, -100, 0, rule), 10_000);
        // No fees at all: exactly the price.
        assert_eq!(buy_reserve_micros(10, 4_000, 0, 0, rule), 4_000_000);
    }

    #[test]
    fn markets_from_before_the_rule_keep_the_buffer_whatever_the_fees() {
        let rule = LockRule::BufferAlways;
        assert_eq!(buy_reserve_micros(10, 4_000, 0, 0, rule), 4_000_000 + 10);
        assert_eq!(buy_reserve_micros(1, 100, -100, 0, rule), 10_000 + 1);
        assert_eq!(
            buy_reserve_micros(10, 4_000, 200, 700, rule),
            4_000_000 + 168_000 + 10
        );
    }

    #[test]
    fn prices_must_sit_on_the_tick_inside_the_open_interval() {
        assert!(price_on_tick(4_900, 100));
        assert!(!price_on_tick(4_950, 100));
        assert!(!price_on_tick(0, 1));
        assert!(!price_on_tick(10_000, 1));
        assert!(price_on_tick(9_999, 1));
    }
}
