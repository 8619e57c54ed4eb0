//! The four fill kinds with exact cash, share and fee arithmetic.

mod support;

use engine::{Event, FillKind, OrderEnd, Outcome, Side};
use support::{Harness, DOLLAR};

fn trade_kind(events: &[Event]) -> FillKind {
    events
        .iter()
        .find_map(|e| match e {
            Event::Trade { kind, .. } => Some(*kind),
            _ => None,
        })
        .expect("a trade")
}

#[test]
fn buy_yes_meets_buy_no_mints_a_pair_into_escrow() {
    let mut h = Harness::default();
    let (alice, bob) = (h.user(100), h.user(100));
    let m = h.market(0, 0);
    h.limit(alice, m, Side::Buy, Outcome::Yes, 6_000, 10)
        .unwrap();
    // No maker fee: the lock is exactly the bid, no rounding buffer.
    assert_eq!(h.locked(alice), 6 * DOLLAR);
    // BUY NO at 0.40 rests on the YES ask at 0.60 and meets alice's bid there.
    h.limit(bob, m, Side::Buy, Outcome::No, 4_000, 10).unwrap();
    assert_eq!(trade_kind(&h.events), FillKind::Mint);
    assert_eq!(h.available(alice), 94 * DOLLAR);
    assert_eq!(h.available(bob), 96 * DOLLAR);
    assert_eq!(h.locked(alice) + h.locked(bob), 0);
    assert_eq!(h.engine.position(alice, m).yes_free, 10);
    assert_eq!(h.engine.position(bob, m).no_free, 10);
    assert_eq!(h.engine.escrow_micros(m), Some(10 * DOLLAR));
}

#[test]
fn a_yes_transfer_moves_cash_from_buyer_to_seller_at_the_maker_price() {
    let mut h = Harness::default();
    let (alice, bob, carol) = (h.user(100), h.user(100), h.user(100));
    let m = h.market(0, 0);
    h.split(alice, m, 10);
    h.limit(alice, m, Side::Sell, Outcome::Yes, 5_500, 10)
        .unwrap();
    assert_eq!(h.engine.position(alice, m).yes_reserved, 10);
    // Bob bids higher than the ask: he pays the maker's 0.55, not his 0.70.
    h.limit(bob, m, Side::Buy, Outcome::Yes, 7_000, 4).unwrap();
    assert_eq!(trade_kind(&h.events), FillKind::YesTransfer);
    assert_eq!(h.available(bob), 100 * DOLLAR - 4 * 550_000);
    assert_eq!(h.locked(bob), 0);
    assert_eq!(h.available(alice), 90 * DOLLAR + 4 * 550_000);
    assert_eq!(h.engine.position(bob, m).yes_free, 4);
    assert_eq!(h.engine.position(alice, m).yes_reserved, 6);
    let _ = carol;
    assert_eq!(h.engine.escrow_micros(m), Some(10 * DOLLAR));
}

#[test]
fn a_no_transfer_moves_no_shares_at_the_complement_price() {
    let mut h = Harness::default();
    let (alice, bob) = (h.user(100), h.user(100));
    let m = h.market(0, 0);
    h.split(alice, m, 5);
    // SELL NO at 0.30 rests on the YES bid at 0.70.
    h.limit(alice, m, Side::Sell, Outcome::No, 3_000, 5)
        .unwrap();
    assert_eq!(h.engine.book_depth(m, 5).unwrap().bids, vec![(7_000, 5)]);
    h.limit(bob, m, Side::Buy, Outcome::No, 3_000, 5).unwrap();
    assert_eq!(trade_kind(&h.events), FillKind::NoTransfer);
    assert_eq!(h.available(bob), 100 * DOLLAR - 5 * 300_000);
    assert_eq!(h.available(alice), 95 * DOLLAR + 5 * 300_000);
    assert_eq!(h.engine.position(bob, m).no_free, 5);
}

#[test]
fn sell_yes_meets_sell_no_merges_and_escrow_pays_out() {
    let mut h = Harness::default();
    let (alice, bob) = (h.user(100), h.user(100));
    let m = h.market(0, 0);
    h.split(alice, m, 3);
    h.split(bob, m, 3);
    h.limit(alice, m, Side::Sell, Outcome::No, 4_000, 3)
        .unwrap(); // YES bid 0.60
    h.limit(bob, m, Side::Sell, Outcome::Yes, 5_800, 3).unwrap(); // takes at 0.60
    assert_eq!(trade_kind(&h.events), FillKind::Merge);
    assert_eq!(h.available(bob), 97 * DOLLAR + 3 * 600_000);
    assert_eq!(h.available(alice), 97 * DOLLAR + 3 * 400_000);
    assert_eq!(h.engine.escrow_micros(m), Some(3 * DOLLAR));
    assert_eq!(h.engine.position(alice, m).no_free, 0);
    assert_eq!(h.engine.position(bob, m).yes_free, 0);
}

#[test]
fn fees_follow_qty_p_one_minus_p_with_the_taker_fee_per_order() {
    let mut h = Harness::default();
    let (maker, taker) = (h.user(1_000), h.user(1_000));
    // maker 1%, taker 7%.
    let m = h.market(100, 700);
    h.limit(maker, m, Side::Buy, Outcome::No, 5_000, 30)
        .unwrap(); // ask 0.50
    h.limit(maker, m, Side::Buy, Outcome::No, 4_900, 30)
        .unwrap(); // ask 0.51
    h.place(engine::PlaceOrder::market(
        taker,
        m,
        Side::Buy,
        Outcome::Yes,
        45,
    ))
    .unwrap();
    let fees: Vec<(i64, i64)> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Trade {
                maker_fee_micros,
                taker_fee_micros,
                ..
            } => Some((*maker_fee_micros, *taker_fee_micros)),
            _ => None,
        })
        .collect();
    // Maker: ceil(0.01*30*0.25) = $0.075; ceil(0.01*15*0.51*0.49) = 0.037485 -> 37,485 micros.
    // Taker: ceil(0.07 * (30*0.25 + 15*0.2499)) = ceil(0.787395) dollars = 787,395 micros.
    assert_eq!(fees, vec![(75_000, 525_000), (37_485, 262_395)]);
    assert_eq!(h.engine.fee_account_micros(), 75_000 + 37_485 + 787_395);
    let cost = 30 * 500_000 + 15 * 510_000;
    assert_eq!(h.available(taker), 1_000 * DOLLAR - cost - 787_395);
}

#[test]
fn a_rebate_is_paid_from_the_fee_account_rounded_down() {
    let mut h = Harness::default();
    let (maker, taker) = (h.user(100), h.user(100));
    let m = h.market(-100, 300);
    h.limit(maker, m, Side::Buy, Outcome::Yes, 3_300, 7)
        .unwrap();
    let before = h.available(maker) + h.locked(maker);
    h.limit(taker, m, Side::Buy, Outcome::No, 6_700, 7).unwrap();
    // weight 7 * 0.33 * 0.67 = 1.5477; rebate floor(0.01 * 1.5477) = 15,477 micros;
    // taker fee ceil(0.03 * 1.5477) = 46,431 micros.
    assert_eq!(
        h.available(maker) + h.locked(maker),
        before - 7 * 330_000 + 15_477
    );
    assert_eq!(h.engine.fee_account_micros(), 46_431 - 15_477);
}

#[test]
fn a_filled_maker_ends_and_a_partial_one_keeps_its_reserve() {
    let mut h = Harness::default();
    let (alice, bob) = (h.user(100), h.user(100));
    let m = h.market(0, 700);
    let resting = h
        .limit(alice, m, Side::Buy, Outcome::Yes, 4_000, 10)
        .unwrap();
    h.limit(bob, m, Side::Buy, Outcome::No, 6_000, 4).unwrap();
    let view = h.engine.order(resting).unwrap();
    assert_eq!((view.filled_qty, view.remaining_qty), (4, 6));
    assert_eq!(
        h.locked(alice),
        engine::units::buy_reserve_micros(6, 4_000, 0, 700, engine::LockRule::CURRENT)
    );
    h.limit(bob, m, Side::Buy, Outcome::No, 6_000, 6).unwrap();
    assert!(h.engine.order(resting).is_none());
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::OrderEnded { order, end: OrderEnd::Filled, .. } if *order == resting
    )));
    assert_eq!(h.locked(alice), 0);
}
