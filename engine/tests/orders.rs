//! Order types, time in force, self-trade prevention, amend, cancel and batch.

mod support;

use engine::{
    BookSide, CancelReason, ClientOrderId, Event, Op, OrderEnd, Outcome, PlaceOrder, Reject,
    SelfTradePrevention, Side, TimeInForce,
};
use support::{Harness, DOLLAR};

fn ended(events: &[Event]) -> Vec<(u64, OrderEnd, Option<CancelReason>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::OrderEnded {
                order, end, reason, ..
            } => Some((order.0, *end, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn price_time_priority_fills_the_oldest_order_at_the_best_price_first() {
    let mut h = Harness::default();
    let (a, b, c, t) = (h.user(100), h.user(100), h.user(100), h.user(100));
    let m = h.market(0, 0);
    let first = h.limit(a, m, Side::Buy, Outcome::Yes, 5_000, 5).unwrap();
    let second = h.limit(b, m, Side::Buy, Outcome::Yes, 5_000, 5).unwrap();
    let better = h.limit(c, m, Side::Buy, Outcome::Yes, 5_100, 5).unwrap();
    assert_eq!(h.engine.queue_position(second), Some(5));
    assert_eq!(h.engine.queue_position(first), Some(0));
    h.limit(t, m, Side::Buy, Outcome::No, 5_000, 8).unwrap();
    let makers: Vec<(u64, u16, u64)> = h
        .trades()
        .iter()
        .map(|e| match e {
            Event::Trade {
                maker_order,
                price_units,
                qty,
                ..
            } => (maker_order.0, *price_units, *qty),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(makers, vec![(better.0, 5_100, 5), (first.0, 5_000, 3)]);
    assert_eq!(h.engine.queue_position(second), Some(2));
}

#[test]
fn a_resting_order_reserves_exactly_its_worst_case_and_a_cancel_releases_it() {
    let mut h = Harness::default();
    let a = h.user(10);
    let m = h.market(0, 700);
    let id = h.limit(a, m, Side::Buy, Outcome::Yes, 3_000, 10).unwrap();
    let reserve = engine::units::buy_reserve_micros(10, 3_000, 0, 700, engine::LockRule::CURRENT);
    assert_eq!(h.locked(a), reserve);
    assert_eq!(h.available(a), 10 * DOLLAR - reserve);
    h.apply(Op::Cancel { user: a, order: id }).unwrap();
    assert_eq!((h.available(a), h.locked(a)), (10 * DOLLAR, 0));
    assert_eq!(
        h.apply(Op::Cancel { user: a, order: id }),
        Err(Reject::UnknownOrder)
    );
}

#[test]
fn bad_orders_are_rejected_with_their_reason_and_change_nothing() {
    let mut h = Harness::default();
    let (a, b) = (h.user(1), h.user(0));
    let m = h.market(0, 0);
    let limit = |price, qty| PlaceOrder::limit(a, m, Side::Buy, Outcome::Yes, price, qty);
    assert_eq!(h.place(limit(4_950, 1)), Err(Reject::PriceOffTick));
    assert_eq!(h.place(limit(0, 1)), Err(Reject::PriceOutOfRange));
    assert_eq!(h.place(limit(10_000, 1)), Err(Reject::PriceOutOfRange));
    assert_eq!(h.place(limit(5_000, 0)), Err(Reject::QtyOutOfRange));
    assert_eq!(h.place(limit(5_000, 1_000_001)), Err(Reject::QtyOutOfRange));
    assert_eq!(h.place(limit(5_000, 3)), Err(Reject::InsufficientFunds));
    let sell = PlaceOrder::limit(b, m, Side::Sell, Outcome::Yes, 5_000, 1);
    assert_eq!(h.place(sell), Err(Reject::InsufficientShares));
    let unknown_market = PlaceOrder {
        market: engine::MarketId(9),
        ..limit(5_000, 1)
    };
    assert_eq!(h.place(unknown_market), Err(Reject::UnknownMarket));
    let unknown_user = PlaceOrder {
        user: engine::UserId(9),
        ..limit(5_000, 1)
    };
    assert_eq!(h.place(unknown_user), Err(Reject::UnknownUser));
    let gtc_market = PlaceOrder {
        time_in_force: TimeInForce::Gtc,
        ..PlaceOrder::market(a, m, Side::Buy, Outcome::Yes, 1)
    };
    assert_eq!(h.place(gtc_market), Err(Reject::InvalidOrder));
    let gtd_without_expiry = PlaceOrder {
        time_in_force: TimeInForce::Gtd,
        ..limit(5_000, 1)
    };
    assert_eq!(h.place(gtd_without_expiry), Err(Reject::InvalidOrder));
    let expired = PlaceOrder {
        time_in_force: TimeInForce::Gtd,
        expires_at_micros: Some(h.ts),
        ..limit(5_000, 1)
    };
    assert_eq!(h.place(expired), Err(Reject::ExpiryInPast));
    let own = h.limit(a, m, Side::Buy, Outcome::Yes, 5_000, 1).unwrap();
    assert_eq!(
        h.apply(Op::Cancel {
            user: b,
            order: own
        }),
        Err(Reject::NotOrderOwner)
    );
    h.apply(Op::HaltMarket { market: m }).unwrap();
    assert_eq!(h.place(limit(5_000, 1)), Err(Reject::MarketNotOpen));
    // Cancels stay allowed while halted.
    h.apply(Op::Cancel {
        user: a,
        order: own,
    })
    .unwrap();
}

#[test]
fn post_only_is_rejected_when_it_would_take() {
    let mut h = Harness::default();
    let (a, b) = (h.user(100), h.user(100));
    let m = h.market(0, 0);
    h.limit(a, m, Side::Buy, Outcome::No, 5_000, 5).unwrap(); // ask 0.50
    let crossing = PlaceOrder {
        post_only: true,
        ..PlaceOrder::limit(b, m, Side::Buy, Outcome::Yes, 5_000, 5)
    };
    assert_eq!(h.place(crossing), Err(Reject::PostOnlyWouldTake));
    let passive = PlaceOrder {
        post_only: true,
        ..PlaceOrder::limit(b, m, Side::Buy, Outcome::Yes, 4_900, 5)
    };
    h.place(passive).unwrap();
    assert!(h.trades().is_empty());
}

#[test]
fn ioc_cancels_its_rest_and_fok_fills_completely_or_not_at_all() {
    let mut h = Harness::default();
    let (a, b) = (h.user(100), h.user(100));
    let m = h.market(0, 0);
    h.limit(a, m, Side::Buy, Outcome::No, 5_000, 5).unwrap();
    let fok = PlaceOrder {
        time_in_force: TimeInForce::Fok,
        ..PlaceOrder::limit(b, m, Side::Buy, Outcome::Yes, 5_000, 6)
    };
    assert_eq!(h.place(fok), Err(Reject::FokNotFilled));
    let ioc = PlaceOrder {
        time_in_force: TimeInForce::Ioc,
        ..PlaceOrder::limit(b, m, Side::Buy, Outcome::Yes, 5_000, 6)
    };
    let id = h.place(ioc).unwrap();
    assert_eq!(h.trades().len(), 1);
    assert!(ended(&h.events).contains(&(id.0, OrderEnd::Cancelled, Some(CancelReason::Unfilled))));
    assert_eq!(h.locked(b), 0);
    assert_eq!(h.available(b), 100 * DOLLAR - 5 * 500_000);
}

#[test]
fn gtd_orders_expire_when_the_clock_reaches_their_expiry() {
    let mut h = Harness::default();
    let a = h.user(100);
    let m = h.market(0, 0);
    let expires = h.ts + 1_000;
    let gtd = PlaceOrder {
        time_in_force: TimeInForce::Gtd,
        expires_at_micros: Some(expires),
        ..PlaceOrder::limit(a, m, Side::Buy, Outcome::Yes, 4_000, 5)
    };
    let id = h.place(gtd).unwrap();
    h.apply_at(expires - 1, Op::Tick).unwrap();
    assert!(h.engine.order(id).is_some());
    h.apply_at(expires, Op::Tick).unwrap();
    assert_eq!(ended(&h.events), vec![(id.0, OrderEnd::Expired, None)]);
    assert_eq!(h.locked(a), 0);
    assert!(h.engine.book_depth(m, 10).unwrap().bids.is_empty());
}

#[test]
fn a_market_buy_walks_the_book_up_to_its_protection_limit() {
    let mut h = Harness::default();
    let (mm, t) = (h.user(1_000), h.user(1_000));
    let m = h.market(0, 0);
    h.limit(mm, m, Side::Buy, Outcome::No, 5_000, 10).unwrap(); // ask 0.50
    h.limit(mm, m, Side::Buy, Outcome::No, 4_800, 10).unwrap(); // ask 0.52
    h.limit(mm, m, Side::Buy, Outcome::No, 4_000, 10).unwrap(); // ask 0.60

    // 5% slippage from 0.50 allows up to 0.525, rounded down to the tick: 0.52.
    let order = PlaceOrder {
        max_slippage_bps: Some(500),
        ..PlaceOrder::market(t, m, Side::Buy, Outcome::Yes, 25)
    };
    let id = h.place(order).unwrap();
    assert_eq!(h.trades().len(), 2);
    assert!(ended(&h.events).contains(&(
        id.0,
        OrderEnd::Cancelled,
        Some(CancelReason::SlippageLimit)
    )));
    assert_eq!(h.available(t), 1_000 * DOLLAR - 10 * 500_000 - 10 * 520_000);
    let tight = PlaceOrder {
        worst_price_units: Some(5_000),
        ..PlaceOrder::market(t, m, Side::Buy, Outcome::Yes, 5)
    };
    assert_eq!(h.place(tight), Err(Reject::SlippageExceeded));
}

#[test]
fn a_market_buy_the_user_cannot_pay_for_is_rejected() {
    let mut h = Harness::default();
    let (mm, t) = (h.user(1_000), h.user(5));
    let m = h.market(0, 0);
    h.limit(mm, m, Side::Buy, Outcome::No, 5_000, 20).unwrap();
    let order = PlaceOrder::market(t, m, Side::Buy, Outcome::Yes, 11);
    assert_eq!(h.place(order), Err(Reject::InsufficientFunds));
    h.place(PlaceOrder::market(t, m, Side::Buy, Outcome::Yes, 10))
        .unwrap();
    assert_eq!((h.available(t), h.locked(t)), (0, 0));
}

#[test]
fn a_cash_sized_market_buy_spends_at_most_its_cash_fees_included() {
    let mut h = Harness::default();
    let (mm, t) = (h.user(1_000), h.user(100));
    let m = h.market(0, 700);
    h.limit(mm, m, Side::Buy, Outcome::No, 5_000, 100).unwrap(); // ask 0.50
    let order = PlaceOrder {
        qty: None,
        cash_micros: Some(10 * DOLLAR),
        ..PlaceOrder::market(t, m, Side::Buy, Outcome::Yes, 0)
    };
    h.place(order).unwrap();
    // Each share costs 0.50 + 0.07 * 0.25 = 0.5175: 19 shares cost 9.8325, 20 cost 10.35.
    let accepted_qty = h.events.iter().find_map(|e| match e {
        Event::OrderAccepted { qty, .. } => Some(*qty),
        _ => None,
    });
    assert_eq!(accepted_qty, Some(19));
    assert_eq!(h.available(t), 100 * DOLLAR - 9_832_500);
}

#[test]
fn self_trade_prevention_modes_follow_the_takers_choice() {
    for (mode, maker_left, taker_filled) in [
        (SelfTradePrevention::CancelTaker, Some(5), 0),
        (SelfTradePrevention::CancelMaker, None, 4),
        (SelfTradePrevention::CancelBoth, None, 0),
        (SelfTradePrevention::DecrementAndCancel, Some(1), 0),
    ] {
        let mut h = Harness::default();
        let (a, other) = (h.user(100), h.user(100));
        let m = h.market(0, 0);
        let own = h.limit(a, m, Side::Buy, Outcome::No, 5_000, 5).unwrap(); // ask 0.50
        h.limit(other, m, Side::Buy, Outcome::No, 4_900, 4).unwrap(); // ask 0.51
        let taker = PlaceOrder {
            self_trade_prevention: mode,
            time_in_force: TimeInForce::Ioc,
            ..PlaceOrder::limit(a, m, Side::Buy, Outcome::Yes, 5_100, 4)
        };
        h.place(taker).unwrap();
        assert_eq!(
            h.engine.order(own).map(|o| o.remaining_qty),
            maker_left,
            "{mode:?}"
        );
        let filled: u64 = h
            .trades()
            .iter()
            .map(|e| match e {
                Event::Trade { qty, .. } => *qty,
                _ => 0,
            })
            .sum();
        assert_eq!(filled, taker_filled, "{mode:?}");
        assert!(h.trades().iter().all(
            |e| matches!(e, Event::Trade { maker_user, taker_user, .. } if maker_user != taker_user)
        ));
    }
}

#[test]
fn amend_down_keeps_priority_and_a_price_change_loses_it() {
    let mut h = Harness::default();
    let (a, b, t) = (h.user(100), h.user(100), h.user(100));
    let m = h.market(0, 0);
    let first = h.limit(a, m, Side::Buy, Outcome::Yes, 5_000, 10).unwrap();
    let second = h.limit(b, m, Side::Buy, Outcome::Yes, 5_000, 10).unwrap();
    h.apply(Op::Amend {
        user: a,
        order: first,
        qty: Some(6),
        price_units: None,
    })
    .unwrap();
    assert_eq!(h.engine.queue_position(first), Some(0));
    assert_eq!(h.engine.queue_position(second), Some(6));
    assert_eq!(h.engine.book_depth(m, 1).unwrap().bids, vec![(5_000, 16)]);
    // An increase re-enters at the back.
    h.apply(Op::Amend {
        user: a,
        order: first,
        qty: Some(8),
        price_units: None,
    })
    .unwrap();
    assert_eq!(h.engine.queue_position(first), Some(10));
    assert_eq!(
        h.apply(Op::Amend {
            user: a,
            order: first,
            qty: Some(8),
            price_units: None
        }),
        Err(Reject::NothingToAmend)
    );
    // A new price that crosses takes liquidity first.
    h.limit(t, m, Side::Buy, Outcome::No, 4_800, 3).unwrap(); // ask 0.52
    h.apply(Op::Amend {
        user: a,
        order: first,
        qty: None,
        price_units: Some(5_200),
    })
    .unwrap();
    assert_eq!(h.trades().len(), 1);
    assert_eq!(h.engine.order(first).unwrap().remaining_qty, 5);
    assert_eq!(
        h.locked(a),
        engine::units::buy_reserve_micros(5, 5_200, 0, 0, engine::LockRule::CURRENT)
    );
}

#[test]
fn client_order_ids_answer_repeats_and_reject_reuse() {
    let mut h = Harness::default();
    let a = h.user(100);
    let m = h.market(0, 0);
    let cid = ClientOrderId::new("quote-1");
    let order = PlaceOrder {
        client_order_id: cid,
        ..PlaceOrder::limit(a, m, Side::Buy, Outcome::Yes, 4_000, 5)
    };
    let id = h.place(order).unwrap();
    let locked = h.locked(a);
    h.apply(Op::Place(order)).unwrap();
    assert_eq!(h.events.len(), 1);
    assert!(matches!(h.events[0], Event::OrderReplayed { order, .. } if order == id));
    assert_eq!(h.locked(a), locked);
    let changed = PlaceOrder {
        qty: Some(6),
        ..order
    };
    assert_eq!(h.place(changed), Err(Reject::ClientOrderIdReused));
    // A rejected order does not use up its id.
    let fresh = PlaceOrder {
        client_order_id: ClientOrderId::new("quote-2"),
        price_units: Some(4_050),
        ..order
    };
    assert_eq!(h.place(fresh), Err(Reject::PriceOffTick));
    h.place(PlaceOrder {
        price_units: Some(4_100),
        ..fresh
    })
    .unwrap();
}

#[test]
fn batches_cancel_first_then_place_each_on_its_own() {
    let mut h = Harness::default();
    let a = h.user(10);
    let m = h.market(0, 0);
    let old = h.limit(a, m, Side::Buy, Outcome::Yes, 5_000, 10).unwrap();
    let places = vec![
        PlaceOrder::limit(a, m, Side::Buy, Outcome::Yes, 5_000, 10),
        PlaceOrder::limit(a, m, Side::Buy, Outcome::Yes, 5_050, 1),
        PlaceOrder::limit(a, m, Side::Buy, Outcome::Yes, 4_000, 20),
    ];
    h.apply(Op::Batch {
        user: a,
        cancels: vec![old, engine::OrderId(999)],
        places,
    })
    .unwrap();
    let rejected: Vec<(u32, Reject)> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::BatchItemRejected { index, reason } => Some((*index, *reason)),
            _ => None,
        })
        .collect();
    // Cancel of 999 fails; the 0.505 place is off tick; 20 @ 0.40 needs $8 but only $5 is left.
    assert_eq!(
        rejected,
        vec![
            (1, Reject::UnknownOrder),
            (3, Reject::PriceOffTick),
            (4, Reject::InsufficientFunds)
        ]
    );
    assert_eq!(h.engine.open_orders(a).len(), 1);
}

#[test]
fn cancel_all_cancels_in_one_market_or_everywhere() {
    let mut h = Harness::default();
    let a = h.user(100);
    let (m1, m2) = (h.market(0, 0), h.market(0, 0));
    for price in [3_000, 3_100] {
        h.limit(a, m1, Side::Buy, Outcome::Yes, price, 1).unwrap();
        h.limit(a, m2, Side::Buy, Outcome::Yes, price, 1).unwrap();
    }
    h.apply(Op::CancelAll {
        user: a,
        market: Some(m1),
    })
    .unwrap();
    assert_eq!(ended(&h.events).len(), 2);
    assert!(h.engine.open_orders(a).iter().all(|o| o.market == m2));
    h.apply(Op::CancelAll {
        user: a,
        market: None,
    })
    .unwrap();
    assert!(h.engine.open_orders(a).is_empty());
    assert_eq!(h.locked(a), 0);
}

#[test]
fn the_open_order_limit_is_enforced_per_user() {
    let mut h = Harness::new(engine::Engine::new(engine::Config {
        open_orders_per_user_max: 2,
        ..engine::Config::default()
    }));
    let a = h.user(100);
    let m = h.market(0, 0);
    h.limit(a, m, Side::Buy, Outcome::Yes, 3_000, 1).unwrap();
    h.limit(a, m, Side::Buy, Outcome::Yes, 3_100, 1).unwrap();
    assert_eq!(
        h.limit(a, m, Side::Buy, Outcome::Yes, 3_200, 1),
        Err(Reject::TooManyOpenOrders)
    );
}

#[test]
fn reduce_only_buys_are_bounded_by_the_other_outcome() {
    let mut h = Harness::default();
    let a = h.user(100);
    let m = h.market(0, 0);
    h.split(a, m, 3);
    h.apply(Op::Place(PlaceOrder::limit(
        a,
        m,
        Side::Sell,
        Outcome::Yes,
        9_000,
        3,
    )))
    .unwrap();
    let buy_yes = PlaceOrder {
        reduce_only: true,
        ..PlaceOrder::limit(a, m, Side::Buy, Outcome::Yes, 1_000, 4)
    };
    assert_eq!(h.place(buy_yes), Err(Reject::ReduceOnlyWouldIncrease));
    h.place(PlaceOrder {
        qty: Some(3),
        ..buy_yes
    })
    .unwrap();
}

#[test]
fn a_price_that_changes_sides_reports_both_levels() {
    // Found by the differential suite: a bid that sweeps the asks at its limit and rests
    // there used to report the ask level with the bid's new size.
    let mut h = Harness::default();
    let (maker, taker) = (h.user(100), h.user(100));
    let m = h.market(0, 0);
    h.limit(maker, m, Side::Buy, Outcome::No, 5_000, 4).unwrap(); // ask 0.50
    h.limit(taker, m, Side::Buy, Outcome::Yes, 5_000, 10)
        .unwrap();
    let levels: Vec<(BookSide, u16, u64)> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::BookLevel {
                side,
                price_units,
                qty,
                ..
            } => Some((*side, *price_units, *qty)),
            _ => None,
        })
        .collect();
    assert_eq!(
        levels,
        vec![(BookSide::Bid, 5_000, 6), (BookSide::Ask, 5_000, 0)]
    );
}

#[test]
fn a_decremented_sell_taker_frees_its_shares() {
    // Found by the differential suite: decrement-and-cancel shrank a SELL taker without
    // releasing the shares it had reserved, leaving them locked forever.
    let mut h = Harness::default();
    let a = h.user(100);
    let m = h.market(0, 0);
    h.split(a, m, 10);
    h.limit(a, m, Side::Buy, Outcome::Yes, 5_000, 3).unwrap();
    let sell = PlaceOrder {
        self_trade_prevention: SelfTradePrevention::DecrementAndCancel,
        ..PlaceOrder::limit(a, m, Side::Sell, Outcome::Yes, 5_000, 7)
    };
    h.place(sell).unwrap();
    let position = h.engine.position(a, m);
    // 3 decremented away, 4 resting on the ask: 6 free, 4 reserved.
    assert_eq!((position.yes_free, position.yes_reserved), (6, 4));
    assert!(h.engine.open_orders(a).iter().all(|o| o.side == Side::Sell));
}

#[test]
fn a_command_stamped_before_the_clock_is_rejected_and_changes_nothing() {
    let mut h = Harness::default();
    let a = h.user(100);
    let m = h.market(0, 0);
    let expiring = PlaceOrder {
        time_in_force: TimeInForce::Gtd,
        expires_at_micros: Some(h.ts + 5),
        ..PlaceOrder::limit(a, m, Side::Buy, Outcome::Yes, 4_000, 1)
    };
    h.place(expiring).unwrap();
    let (now, before) = (h.ts, h.engine.snapshot());
    let late = h.apply_at(
        now - 1,
        Op::CancelAll {
            user: a,
            market: None,
        },
    );
    assert_eq!(late, Err(Reject::TimestampBackwards));
    assert!(h.events.is_empty());
    assert_eq!(h.engine.snapshot(), before);
    // The same timestamp again is fine: the clock never decreases, it may stand still.
    h.apply_at(now, Op::Tick).unwrap();
    assert_eq!(h.engine.open_orders(a).len(), 1);
}

#[test]
fn a_batch_over_the_item_limit_is_rejected_whole() {
    let mut h = Harness::default();
    let a = h.user(1_000);
    let m = h.market(0, 0);
    let own = h.limit(a, m, Side::Buy, Outcome::Yes, 4_000, 1).unwrap();
    let places = vec![PlaceOrder::limit(a, m, Side::Buy, Outcome::Yes, 3_000, 1); 100];
    let too_many = Op::Batch {
        user: a,
        cancels: vec![own],
        places: places.clone(),
    };
    assert_eq!(h.apply(too_many), Err(Reject::BatchTooLarge));
    assert_eq!(h.engine.open_orders(a).len(), 1);
    let at_limit = Op::Batch {
        user: a,
        cancels: Vec::new(),
        places,
    };
    h.apply(at_limit).unwrap();
    assert_eq!(h.engine.open_orders(a).len(), 101);
}

#[test]
fn orders_that_end_where_they_were_placed_leave_no_open_id_behind() {
    // A taker enters the id index only if it rests, so the index must answer across ids it
    // never saw: more than a page of them (4,096) before the first order that rests.
    let mut h = Harness::default();
    let (a, b) = (h.user(100), h.user(100));
    let m = h.market(0, 0);
    let ioc = PlaceOrder {
        time_in_force: TimeInForce::Ioc,
        ..PlaceOrder::limit(a, m, Side::Buy, Outcome::Yes, 5_000, 1)
    };
    let first_ioc = h.place(ioc).unwrap();
    for _ in 0..5_000 {
        h.place(ioc).unwrap();
    }
    let last_ioc = h.accepted_order().unwrap();
    let resting = h.limit(b, m, Side::Buy, Outcome::No, 5_000, 2).unwrap();
    let taker = h.limit(a, m, Side::Buy, Outcome::Yes, 5_000, 1).unwrap();
    assert!(ended(&h.events).contains(&(taker.0, OrderEnd::Filled, None)));
    assert_eq!(h.engine.open_order_count(), 1);
    for id in [first_ioc, last_ioc, taker] {
        assert_eq!(
            h.apply(Op::Cancel { user: a, order: id }),
            Err(Reject::UnknownOrder)
        );
    }
    assert_eq!(h.engine.order(resting).unwrap().remaining_qty, 1);
    h.apply(Op::Cancel {
        user: b,
        order: resting,
    })
    .unwrap();
    assert_eq!(
        ended(&h.events),
        vec![(
            resting.0,
            OrderEnd::Cancelled,
            Some(CancelReason::UserRequested)
        )]
    );
    assert_eq!(
        (h.engine.open_order_count(), h.locked(a), h.locked(b)),
        (0, 0, 0)
    );
}
