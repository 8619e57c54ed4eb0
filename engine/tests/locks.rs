//! The cash a resting BUY locks (DESIGN.md, "The ledger"): exactly its worst-case cost where
//! there is no maker fee, that plus one micro-dollar per share where a maker fee is rounded up
//! on each fill, and the old rule (the buffer whatever the fees) for markets created under it.
//! A bid that meets the book on its way to resting, in a market with a taker fee and no buffer,
//! holds one micro-dollar more while it takes (`MarketParams::taking_reserve_micros`).

mod support;

use engine::{
    LockRule, MarketParams, Op, OrderId, Outcome, PlaceOrder, Reject, Side, Slug, TimeInForce,
    UserId,
};
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

fn locked_by(h: &Harness, order: OrderId) -> i64 {
    h.engine.order(order).expect("an open order").locked_micros
}

#[test]
fn exact_funds_place_a_buy_where_there_is_no_maker_fee() {
    let mut h = Harness::default();
    let free = h.market(0, 0);
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
    let taker_only = h.market(0, 700);
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
    let rebate = h.market(-100, 700);
    let exact = trader(&mut h, 4_168_000);
    h.limit(exact, rebate, Side::Buy, Outcome::Yes, 4_000, 10)
        .unwrap();
    assert_eq!(h.available(exact), 0);
}

#[test]
fn an_amend_up_to_exact_funds_is_accepted_and_past_them_refused() {
    let mut h = Harness::default();
    let free = h.market(0, 0);
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
    let m = h.market(200, 700);
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
    let old = h.market_under(0, 0, LockRule::BufferAlways);
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

#[test]
fn a_bid_that_takes_then_rests_holds_one_micro_more_while_it_takes() {
    // Taker 7%, no maker fee, no buffer. Alice asks 4 @ 0.40; Bob bids 10 @ 0.40: he takes 4
    // and rests 6. His fee, ceil(0.07 x 4 x 0.24) = 0.0672, and his rest's reserve, 2.40 +
    // ceil(0.07 x 6 x 0.24) = 0.1008, are rounded up apart from the 0.168 his reserve was
    // sized with (here they add up to it; the next test has a case where they do not), so a
    // bid that meets the book needs one micro-dollar more than 4.168 while it takes.
    let mut h = Harness::default();
    let m = h.market(0, 700);
    let alice = h.user(10);
    h.split(alice, m, 4);
    h.limit(alice, m, Side::Sell, Outcome::Yes, 4_000, 4)
        .unwrap();
    let exact = trader(&mut h, 4_168_000);
    assert_eq!(
        h.limit(exact, m, Side::Buy, Outcome::Yes, 4_000, 10),
        Err(Reject::InsufficientFunds)
    );
    // An IOC never rests: exactly its reserve takes what it can.
    let ioc = h
        .place(PlaceOrder {
            time_in_force: TimeInForce::Ioc,
            ..PlaceOrder::limit(exact, m, Side::Buy, Outcome::Yes, 4_000, 10)
        })
        .unwrap();
    assert!(h.engine.order(ioc).is_none());
    assert_eq!(h.locked(exact), 0);
    assert_eq!(h.available(exact), 4_168_000 - 1_600_000 - 67_200);

    let alice_more = h.user(10);
    h.split(alice_more, m, 4);
    h.limit(alice_more, m, Side::Sell, Outcome::Yes, 4_000, 4)
        .unwrap();
    let bob = trader(&mut h, 4_168_001);
    let bid = h.limit(bob, m, Side::Buy, Outcome::Yes, 4_000, 10).unwrap();
    // Resting, he holds exactly his remainder's reserve; the micro-dollar is back.
    assert_eq!(locked_by(&h, bid), 2_400_000 + 100_800);
    assert_eq!(h.locked(bob), 2_500_800);
    assert_eq!(h.available(bob), 4_168_001 - 1_600_000 - 67_200 - 2_500_800);

    // A bid that does not meet the book rests at once: exactly its reserve.
    let resting = trader(&mut h, 4_168_000);
    let order = h
        .limit(resting, m, Side::Buy, Outcome::Yes, 4_000, 10)
        .unwrap();
    assert_eq!(locked_by(&h, order), 4_168_000);
}

#[test]
fn an_amend_that_takes_holds_the_same_micro_while_it_takes() {
    let mut h = Harness::default();
    let m = h.market(0, 700);
    let seller = h.user(10);
    h.split(seller, m, 4);
    h.limit(seller, m, Side::Sell, Outcome::Yes, 4_500, 4)
        .unwrap();
    // 10 @ 0.40 rests on 4.168; moving it to 0.45 meets the ask: 10 @ 0.45 needs 4.50 +
    // ceil(0.07 x 10 x 0.2475) = 0.17325, and the micro-dollar.
    let a = trader(&mut h, 4_673_250);
    let order = h.limit(a, m, Side::Buy, Outcome::Yes, 4_000, 10).unwrap();
    let amend = Op::Amend {
        user: a,
        order,
        qty: None,
        price_units: Some(4_500),
    };
    assert_eq!(h.apply(amend.clone()), Err(Reject::InsufficientFunds));
    h.apply(Op::Deposit {
        user: a,
        amount_micros: 1,
    })
    .unwrap();
    h.apply(amend).unwrap();
    // Took 4 at 0.45 (fee ceil(0.07 x 4 x 0.2475) = 0.0693); 6 rest on 2.70 + 0.10395.
    assert_eq!(locked_by(&h, order), 2_700_000 + 103_950);
    assert_eq!(h.available(a), 4_673_251 - 1_800_000 - 69_300 - 2_803_950);
}

#[test]
fn the_micro_is_what_two_roundings_up_can_cost() {
    // Tick 0.001, taker 7%: one share at 0.003 pays ceil(0.07 x 0.003 x 0.997) = ceil(209.37
    // micros) = 210, two pay ceil(418.74) = 419. Bob bids 2 @ 0.003 against one share asked:
    // he takes 1 (3,000 + 210) and rests 1 (3,000 + 210): 6,420, one more than his reserve.
    let mut h = Harness::default();
    let m = h.market_with(MarketParams {
        slug: Slug::new("fine-tick").expect("a valid slug"),
        tick_units: 10,
        qty_min: 1,
        qty_max: 1_000,
        maker_fee_bps: 0,
        taker_fee_bps: 700,
        close_ts_micros: None,
        lock_rule: LockRule::CURRENT,
    });
    assert_eq!(
        h.engine.market(m).unwrap().params.buy_reserve_micros(2, 30),
        6_419
    );
    let alice = h.user(1);
    h.split(alice, m, 1);
    h.limit(alice, m, Side::Sell, Outcome::Yes, 30, 1).unwrap();
    let short = trader(&mut h, 6_419);
    assert_eq!(
        h.limit(short, m, Side::Buy, Outcome::Yes, 30, 2),
        Err(Reject::InsufficientFunds)
    );
    let bob = trader(&mut h, 6_420);
    let bid = h.limit(bob, m, Side::Buy, Outcome::Yes, 30, 2).unwrap();
    assert_eq!(locked_by(&h, bid), 3_210);
    assert_eq!((h.available(bob), h.locked(bob)), (0, 3_210));
}
