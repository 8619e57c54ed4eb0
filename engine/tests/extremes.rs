//! No input may panic the engine: commands built from boundary values (0, 1, the limits, the
//! limits plus one, the integer extremes) must each be accepted or rejected cleanly, a reject
//! must change nothing, and every invariant must hold afterwards. The differential suites draw
//! ordinary values; this one draws the edges, where overflow and off-by-one errors live.

mod support;

use engine::units::{
    CASH_IN_SYSTEM_MICROS_MAX, ORDER_QTY_LIMIT, PRICE_UNITS_MAX, SLIPPAGE_BPS_MAX,
    TRANSFER_MICROS_MAX,
};
use engine::{
    ClientOrderId, MarketId, MarketParams, Op, OrderId, OrderType, Outcome, PlaceOrder, Resolution,
    SelfTradePrevention, Side, Slug, TimeInForce, UserId,
};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use support::Harness;

fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(2),
        Just(ORDER_QTY_LIMIT - 1),
        Just(ORDER_QTY_LIMIT),
        Just(ORDER_QTY_LIMIT + 1),
        Just(u64::MAX / 2),
        Just(u64::MAX - 1),
        Just(u64::MAX),
        1u64..1_000,
    ]
}

fn edge_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(-1),
        Just(0),
        Just(1),
        Just(TRANSFER_MICROS_MAX),
        Just(TRANSFER_MICROS_MAX + 1),
        Just(CASH_IN_SYSTEM_MICROS_MAX),
        Just(i64::MAX),
        1i64..10_000_000,
    ]
}

fn edge_price() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(9),
        Just(10),
        Just(100),
        Just(5_000),
        Just(PRICE_UNITS_MAX - 1),
        Just(PRICE_UNITS_MAX),
        Just(10_000),
        Just(u16::MAX),
    ]
}

fn edge_fee() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(i32::MIN),
        Just(-10_001),
        Just(-10_000),
        Just(-1),
        Just(0),
        Just(1),
        Just(10_000),
        Just(10_001),
        Just(i32::MAX),
    ]
}

fn user() -> impl Strategy<Value = UserId> {
    prop_oneof![4 => (0u32..3).prop_map(UserId), 1 => Just(UserId(u32::MAX))]
}

fn market() -> impl Strategy<Value = MarketId> {
    prop_oneof![4 => (0u32..2).prop_map(MarketId), 1 => Just(MarketId(u32::MAX))]
}

fn order() -> impl Strategy<Value = PlaceOrder> {
    let sides = (
        user(),
        market(),
        prop_oneof![Just(Side::Buy), Just(Side::Sell)],
        prop_oneof![Just(Outcome::Yes), Just(Outcome::No)],
        prop_oneof![Just(OrderType::Limit), Just(OrderType::Market)],
        prop_oneof![
            Just(TimeInForce::Gtc),
            Just(TimeInForce::Gtd),
            Just(TimeInForce::Ioc),
            Just(TimeInForce::Fok)
        ],
    );
    let sizes = (
        prop::option::of(edge_price()),
        prop::option::of(edge_u64()),
        prop::option::weighted(0.3, edge_i64()),
        prop::option::weighted(0.3, edge_u64()),
        prop::option::weighted(0.2, edge_price()),
        prop::option::weighted(
            0.2,
            prop_oneof![Just(0u32), Just(SLIPPAGE_BPS_MAX), Just(u32::MAX)],
        ),
    );
    let flags = (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(SelfTradePrevention::CancelTaker),
            Just(SelfTradePrevention::DecrementAndCancel)
        ],
        prop::option::weighted(0.2, Just(ClientOrderId::new("edge").unwrap())),
    );
    (sides, sizes, flags).prop_map(|(sides, sizes, flags)| {
        let (user, market, side, outcome, order_type, time_in_force) = sides;
        let (price_units, qty, cash_micros, expires_at_micros, worst_price_units, max_slippage_bps) =
            sizes;
        let (post_only, reduce_only, self_trade_prevention, client_order_id) = flags;
        PlaceOrder {
            user,
            market,
            side,
            outcome,
            order_type,
            price_units,
            qty,
            cash_micros,
            time_in_force,
            expires_at_micros,
            post_only,
            reduce_only,
            self_trade_prevention,
            client_order_id,
            worst_price_units,
            max_slippage_bps,
        }
    })
}

fn op() -> impl Strategy<Value = Op> {
    let market_params = (
        prop_oneof![
            Just(1u16),
            Just(10),
            Just(100),
            Just(0),
            Just(3),
            Just(u16::MAX)
        ],
        edge_u64(),
        edge_u64(),
        edge_fee(),
        edge_fee(),
        prop::option::of(edge_u64()),
    )
        .prop_map(
            |(tick_units, qty_min, qty_max, maker_fee_bps, taker_fee_bps, close)| {
                Op::CreateMarket(MarketParams {
                    slug: Slug::new("edge").expect("a valid slug"),
                    tick_units,
                    qty_min,
                    qty_max,
                    maker_fee_bps,
                    taker_fee_bps,
                    close_ts_micros: close,
                    lock_rule: engine::LockRule::CURRENT,
                })
            },
        );
    let resolution = prop_oneof![
        Just(Resolution::Yes),
        Just(Resolution::No),
        edge_price().prop_map(|yes_payout_units| Resolution::Split { yes_payout_units }),
    ];
    prop_oneof![
        4 => order().prop_map(Op::Place),
        1 => market_params,
        1 => (user(), edge_i64()).prop_map(|(user, amount_micros)| Op::Deposit { user, amount_micros }),
        1 => (user(), edge_i64()).prop_map(|(user, amount_micros)| Op::Withdraw { user, amount_micros }),
        1 => (user(), market(), edge_u64()).prop_map(|(user, market, qty)| Op::Split { user, market, qty }),
        1 => (user(), market(), edge_u64()).prop_map(|(user, market, qty)| Op::Merge { user, market, qty }),
        1 => (user(), edge_u64(), prop::option::of(edge_u64()), prop::option::of(edge_price()))
            .prop_map(|(user, order, qty, price_units)| Op::Amend { user, order: OrderId(order), qty, price_units }),
        1 => (user(), edge_u64()).prop_map(|(user, order)| Op::Cancel { user, order: OrderId(order) }),
        1 => (user(), prop::collection::vec(edge_u64().prop_map(OrderId), 0..3), prop::collection::vec(order(), 0..3))
            .prop_map(|(user, cancels, places)| Op::Batch { user, cancels, places }),
        1 => (market(), resolution).prop_map(|(market, resolution)| Op::ResolveMarket { market, resolution }),
        1 => market().prop_map(|market| Op::CloseMarket { market }),
    ]
}

/// Three users with some money, and two ordinary markets, so the edges meet a live book.
fn harness() -> Harness {
    let mut h = Harness::default();
    for _ in 0..3 {
        h.user(1_000);
    }
    h.market(-100, 700);
    h.market(0, 10_000);
    for user in 0..3 {
        h.split(UserId(user), MarketId(0), 50);
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]
    #[test]
    fn boundary_values_never_panic_or_break_an_invariant(
        ops in prop::collection::vec((op(), prop_oneof![Just(0u64), Just(1), Just(u64::MAX / 4)]), 1..25)
    ) {
        // The harness asserts that a reject changes nothing and that every invariant holds
        // after every command; a panic fails the case.
        let mut h = harness();
        for (op, step) in ops {
            let ts = h.ts.saturating_add(step);
            let _ = h.apply_at(ts, op);
        }
    }
}
