//! The cash a resting BUY locks (DESIGN.md, "The ledger"): exactly its worst-case cost where
//! there is no maker fee, that plus one micro-dollar per share where a maker fee is rounded up
//! on each fill, and the old rule (the buffer whatever the fees) for markets created under it.

mod support;

use engine::{LockRule, MarketId, MarketParams, Op, OrderId, Outcome, Reject, Side, Slug, UserId};
use support::{Harness, DOLLAR};

fn trader(h: &mut Harness, micros: i64) -> UserId {
    let user = h.user(0);
    h.apply(Op::Deposit {
        user,
        amount_micros: micros,
    })
    .unwrap();
    user
}

fn market(h: &mut Harness, maker_fee_bps: i32, taker_fee_bps: i32, rule: LockRule) -> MarketId {
    let slug = Slug::new(&format!("locks-{}", h.engine.market_count())).expect("a valid slug");
    h.market_with(MarketParams {
        slug,
        tick_units: 100,
        qty_min: 1,
        qty_max: 1_000_000,
        maker_fee_bps,
        taker_fee_bps,
        close_ts_micros: None,
        lock_rule: rule,
    })
}

fn locked_by(h: &Harness, order: OrderId) -> i64 {
    h.engine.order(order).expect("an open order").locked_micros
}

#[test]
fn exact_funds_place_a_buy_where_there_is_no_maker_fee() {
    let mut h = Harness::default();
    let free = market(&mut h, 0, 0, LockRule::CURRENT);
    let short = trader(&mut h, 4 * DOLLAR - 1);
    assert_eq!(
        h.limit(short, free, Side::Buy, Outcome::Yes, 4_000, 10),
        Err(Reject::InsufficientFunds)
    );
    let exact = trader(&mut h, 4 * DOLLAR);
    let order = h
        .limit(exact, free, Side::Buy, Outcome::Yes, 4_000, 10)
        .unwrap();
    assert_eq!((h.available(exact), h.locked(exact)), (0, 4 * DOLLAR));
    assert_eq!(locked_by(&h, order), 4 * DOLLAR);

    // A taker fee alone is charged once per order, rounded once: no buffer either.
    // 10 @ 0.40 with 7%: $4.00 + ceil(0.07 * 10 * 0.24) = $4.168.
    let taker_only = market(&mut h, 0, 700, LockRule::CURRENT);
    let short = trader(&mut h, 4_168_000 - 1);
    assert_eq!(
        h.limit(short, taker_only, Side::Buy, Outcome::Yes, 4_000, 10),
        Err(Reject::InsufficientFunds)
    );
    let exact = trader(&mut h, 4_168_000);
    h.limit(exact, taker_only, Side::Buy, Outcome::Yes, 4_000, 10)
        .unwrap();
    assert_eq!((h.available(exact), h.locked(exact)), (0, 4_168_000));

    // A rebate (negative maker rate) is rounded down: nothing to buffer.
    let rebate = market(&mut h, -100, 700, LockRule::CURRENT);
    let exact = trader(&mut h, 4_168_000);
    h.limit(exact, rebate, Side::Buy, Outcome::Yes, 4_000, 10)
        .unwrap();
    assert_eq!(h.available(exact), 0);
}

#[test]
fn an_amend_up_to_exact_funds_is_accepted_and_past_them_refused() {
    let mut h = Harness::default();
    let free = market(&mut h, 0, 0, LockRule::CURRENT);
    let a = trader(&mut h, 4 * DOLLAR);
    let order = h.limit(a, free, Side::Buy, Outcome::Yes, 4_000, 5).unwrap();
    let amend = |qty, price_units| Op::Amend {
        user: a,
        order,
        qty: Some(qty),
        price_units,
    };
    assert_eq!(
        h.apply(amend(10, Some(4_100))),
        Err(Reject::InsufficientFunds)
    );
    h.apply(amend(10, None)).unwrap();
    assert_eq!((h.available(a), h.locked(a)), (0, 4 * DOLLAR));
}

#[test]
fn a_maker_fee_keeps_the_buffer_which_follows_the_fills_and_ends_at_zero() {
    let mut h = Harness::default();
    // Maker 2%, taker 7%: 10 @ 0.40 holds $4.00 + ceil(0.07 * 10 * 0.24) + 10 micros.
    let m = market(&mut h, 200, 700, LockRule::CURRENT);
    let short = trader(&mut h, 4_168_010 - 1);
    assert_eq!(
        h.limit(short, m, Side::Buy, Outcome::Yes, 4_000, 10),
        Err(Reject::InsufficientFunds)
    );
    let maker = trader(&mut h, 4_168_010);
    let bid = h
        .limit(maker, m, Side::Buy, Outcome::Yes, 4_000, 10)
        .unwrap();
    assert_eq!(locked_by(&h, bid), 4_168_010);
    assert_eq!(h.available(maker), 0);

    // 4 fill: the 6 left hold $2.40 + ceil(0.07 * 6 * 0.24) = $0.1008, + 6 micros. The maker
    // paid ceil(0.02 * 4 * 0.24) = $0.0192 and the buffer of the filled 4 comes back.
    let seller = h.user(10);
    h.split(seller, m, 4);
    h.limit(seller, m, Side::Sell, Outcome::Yes, 4_000, 4)
        .unwrap();
    assert_eq!(locked_by(&h, bid), 2_400_000 + 100_800 + 6);
    assert_eq!(h.locked(maker), 2_500_806);
    assert_eq!(
        h.available(maker),
        4_168_010 - 1_600_000 - 19_200 - 2_500_806
    );

    // Cancelled, the order holds nothing, buffer included.
    h.apply(Op::Cancel {
        user: maker,
        order: bid,
    })
    .unwrap();
    assert_eq!(h.locked(maker), 0);
    assert_eq!(h.available(maker), 4_168_010 - 1_600_000 - 19_200);

    // Filled in full, the same.
    let bid = h
        .limit(maker, m, Side::Buy, Outcome::Yes, 4_000, 5)
        .unwrap();
    assert!(locked_by(&h, bid) > 5 * 400_000);
    h.split(seller, m, 5);
    h.limit(seller, m, Side::Sell, Outcome::Yes, 4_000, 5)
        .unwrap();
    assert!(h.engine.order(bid).is_none());
    assert_eq!(h.locked(maker), 0);
}

#[test]
fn a_market_created_under_the_old_rule_keeps_the_buffer_whatever_the_fees() {
    let mut h = Harness::default();
    let old = market(&mut h, 0, 0, LockRule::BufferAlways);
    let exact = trader(&mut h, 4 * DOLLAR);
    assert_eq!(
        h.limit(exact, old, Side::Buy, Outcome::Yes, 4_000, 10),
        Err(Reject::InsufficientFunds)
    );
    let enough = trader(&mut h, 4 * DOLLAR + 10);
    let order = h
        .limit(enough, old, Side::Buy, Outcome::Yes, 4_000, 10)
        .unwrap();
    assert_eq!(locked_by(&h, order), 4 * DOLLAR + 10);
    assert_eq!(
        h.engine.market(old).unwrap().params.lock_rule,
        LockRule::BufferAlways
    );
}
