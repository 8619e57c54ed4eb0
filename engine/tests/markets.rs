//! The market lifecycle: creation, halt/resume/close, closing by time, and resolution with
//! exact payouts.

mod support;

use engine::units::ORDER_QTY_LIMIT;
use engine::{
    BookSide, CancelReason, Event, MarketId, MarketParams, MarketState, Op, OrderEnd, OrderId,
    Outcome, PlaceOrder, Position, Reject, Resolution, Side, Slug, TimeInForce, UserId,
};
use support::{Harness, DOLLAR};

fn params(slug: &str, tick_units: u16) -> MarketParams {
    MarketParams {
        slug: Slug::new(slug).expect("a valid slug"),
        tick_units,
        qty_min: 1,
        qty_max: 1_000,
        maker_fee_bps: 0,
        taker_fee_bps: 0,
        close_ts_micros: None,
        lock_rule: engine::LockRule::CURRENT,
    }
}

fn ended(events: &[Event]) -> Vec<(OrderId, OrderEnd, Option<CancelReason>, u64, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::OrderEnded {
                order,
                end,
                reason,
                filled_qty,
                unfilled_qty,
                ..
            } => Some((*order, *end, *reason, *filled_qty, *unfilled_qty)),
            _ => None,
        })
        .collect()
}

fn settlements(events: &[Event]) -> Vec<(UserId, u64, u64, i64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Settlement {
                user,
                yes_shares,
                no_shares,
                payout_micros,
                ..
            } => Some((*user, *yes_shares, *no_shares, *payout_micros)),
            _ => None,
        })
        .collect()
}

fn state(h: &Harness, market: MarketId) -> MarketState {
    h.engine.market(market).unwrap().state
}

/// All user cash (available and locked) plus the fee account.
fn cash_in_system(h: &Harness) -> i64 {
    let users: i64 = (0..h.engine.user_count())
        .map(|u| h.available(UserId(u)) + h.locked(UserId(u)))
        .sum();
    users + h.engine.fee_account_micros()
}

#[test]
fn each_allowed_tick_size_creates_a_market_that_enforces_it() {
    let mut h = Harness::default();
    let a = h.user(100);
    // (tick, a price on it, a price off it, the finest price it accepts)
    for (index, (tick, on, off, finest)) in [
        (100u16, 4_900u16, Some(4_990u16), 100u16),
        (10, 4_990, Some(4_995), 10),
        (1, 4_995, None, 1),
    ]
    .into_iter()
    .enumerate()
    {
        let p = params(&format!("tick-{tick}"), tick);
        h.apply(Op::CreateMarket(p)).unwrap();
        let m = MarketId(index as u32);
        assert_eq!(
            h.events,
            vec![Event::MarketCreated {
                market: m,
                params: p
            }]
        );
        let view = h.engine.market(m).unwrap();
        assert_eq!((view.state, view.resolution), (MarketState::Open, None));
        assert_eq!((view.params, view.escrow_micros), (p, 0));
        assert_eq!(h.engine.market_by_slug(&format!("tick-{tick}")), Some(m));
        h.limit(a, m, Side::Buy, Outcome::Yes, on, 1).unwrap();
        if let Some(off) = off {
            assert_eq!(
                h.limit(a, m, Side::Buy, Outcome::Yes, off, 1),
                Err(Reject::PriceOffTick)
            );
        }
        // The lowest price on the tick: 1 share costs tick * $0.0001 (no maker fee, so no
        // rounding buffer).
        h.limit(a, m, Side::Buy, Outcome::Yes, finest, 1).unwrap();
        let order = h.accepted_order().unwrap();
        assert_eq!(
            h.engine.order(order).unwrap().locked_micros,
            finest as i64 * 100
        );
    }
    assert_eq!(h.engine.market_count(), 3);
}

#[test]
fn a_tick_other_than_100_10_or_1_is_rejected() {
    let mut h = Harness::default();
    for tick in [0u16, 2, 5, 25, 50, 1_000, 10_000] {
        assert_eq!(
            h.apply(Op::CreateMarket(params("bad-tick", tick))),
            Err(Reject::InvalidMarketParams),
            "tick {tick}"
        );
    }
    assert_eq!(h.engine.market_count(), 0);
}

#[test]
fn bad_market_params_are_rejected_and_the_limits_themselves_are_accepted() {
    let mut h = Harness::default();
    let base = params("ok", 100);
    let bad: Vec<(&str, MarketParams)> = vec![
        // (A slug's shape is checked where it is made: `Slug::new`, tested in `types`.)
        ("qty_min 0", MarketParams { qty_min: 0, ..base }),
        (
            "min > max",
            MarketParams {
                qty_min: 11,
                qty_max: 10,
                ..base
            },
        ),
        (
            "max too big",
            MarketParams {
                qty_max: ORDER_QTY_LIMIT + 1,
                ..base
            },
        ),
        (
            "taker < 0",
            MarketParams {
                taker_fee_bps: -1,
                ..base
            },
        ),
        (
            "taker > 100%",
            MarketParams {
                taker_fee_bps: 10_001,
                ..base
            },
        ),
        (
            "maker > 100%",
            MarketParams {
                maker_fee_bps: 10_001,
                ..base
            },
        ),
        (
            "rebate > taker",
            MarketParams {
                maker_fee_bps: -101,
                taker_fee_bps: 100,
                ..base
            },
        ),
        (
            "closed",
            MarketParams {
                close_ts_micros: Some(0),
                ..base
            },
        ),
    ];
    for (what, p) in bad {
        assert_eq!(
            h.apply(Op::CreateMarket(p)),
            Err(Reject::InvalidMarketParams),
            "{what}"
        );
    }
    // The next command runs at `h.ts + 1`: a market may not close at its own creation.
    let closes_at_creation = MarketParams {
        close_ts_micros: Some(h.ts + 1),
        ..base
    };
    assert_eq!(
        h.apply(Op::CreateMarket(closes_at_creation)),
        Err(Reject::InvalidMarketParams)
    );
    assert_eq!(h.engine.market_count(), 0);
    let soon = MarketParams {
        slug: Slug::new("soon").unwrap(),
        close_ts_micros: Some(h.ts + 2),
        ..base
    };
    h.apply(Op::CreateMarket(soon)).unwrap();

    let limits = [
        MarketParams {
            slug: Slug::new(&"a".repeat(64)).unwrap(),
            ..base
        },
        MarketParams {
            slug: Slug::new("0-9-a-z").unwrap(),
            qty_min: 7,
            qty_max: 7,
            ..base
        },
        MarketParams {
            slug: Slug::new("big").unwrap(),
            qty_max: ORDER_QTY_LIMIT,
            ..base
        },
        MarketParams {
            slug: Slug::new("fees").unwrap(),
            maker_fee_bps: -10_000,
            taker_fee_bps: 10_000,
            ..base
        },
    ];
    for p in limits {
        h.apply(Op::CreateMarket(p)).unwrap();
    }
    assert_eq!(h.engine.market_count(), 5);
    assert_eq!(
        h.apply(Op::CreateMarket(MarketParams {
            slug: Slug::new("big").unwrap(),
            ..base
        })),
        Err(Reject::SlugTaken)
    );
}

#[test]
fn halt_resume_and_close_follow_the_lifecycle_and_refuse_other_moves() {
    let mut h = Harness::default();
    let m = h.market(0, 0);
    let changed = |state| vec![Event::MarketStateChanged { market: m, state }];

    assert_eq!(
        h.apply(Op::ResumeMarket { market: m }),
        Err(Reject::InvalidMarketTransition)
    );
    h.apply(Op::HaltMarket { market: m }).unwrap();
    assert_eq!(h.events, changed(MarketState::Halted));
    assert_eq!(state(&h, m), MarketState::Halted);
    assert_eq!(
        h.apply(Op::HaltMarket { market: m }),
        Err(Reject::InvalidMarketTransition)
    );
    h.apply(Op::ResumeMarket { market: m }).unwrap();
    assert_eq!(h.events, changed(MarketState::Open));
    h.apply(Op::HaltMarket { market: m }).unwrap();
    // Closing works from Halted as well as from Open.
    h.apply(Op::CloseMarket { market: m }).unwrap();
    assert_eq!(h.events, changed(MarketState::Closed));
    assert_eq!(state(&h, m), MarketState::Closed);
    for op in [
        Op::HaltMarket { market: m },
        Op::ResumeMarket { market: m },
        Op::CloseMarket { market: m },
    ] {
        assert_eq!(h.apply(op), Err(Reject::InvalidMarketTransition));
    }
    assert_eq!(state(&h, m), MarketState::Closed);

    let open = h.market(0, 0);
    h.apply(Op::CloseMarket { market: open }).unwrap();
    assert_eq!(state(&h, open), MarketState::Closed);

    let unknown = MarketId(2);
    for op in [
        Op::HaltMarket { market: unknown },
        Op::ResumeMarket { market: unknown },
        Op::CloseMarket { market: unknown },
        Op::ResolveMarket {
            market: unknown,
            resolution: Resolution::Yes,
        },
    ] {
        assert_eq!(h.apply(op), Err(Reject::UnknownMarket));
    }
}

#[test]
fn a_halted_market_takes_no_orders_or_amends_but_allows_cancels() {
    let mut h = Harness::default();
    let a = h.user(100);
    let m = h.market(0, 0);
    let first = h.limit(a, m, Side::Buy, Outcome::Yes, 4_000, 5).unwrap();
    let second = h.limit(a, m, Side::Buy, Outcome::No, 3_000, 5).unwrap();
    h.apply(Op::HaltMarket { market: m }).unwrap();

    assert_eq!(
        h.limit(a, m, Side::Buy, Outcome::Yes, 4_000, 1),
        Err(Reject::MarketNotOpen)
    );
    assert_eq!(
        h.place(PlaceOrder::market(a, m, Side::Buy, Outcome::Yes, 1)),
        Err(Reject::MarketNotOpen)
    );
    assert_eq!(
        h.apply(Op::Amend {
            user: a,
            order: first,
            qty: Some(4),
            price_units: None
        }),
        Err(Reject::MarketNotOpen)
    );
    assert_eq!(
        h.apply(Op::Split {
            user: a,
            market: m,
            qty: 1
        }),
        Err(Reject::MarketNotOpen)
    );

    h.apply(Op::Cancel {
        user: a,
        order: first,
    })
    .unwrap();
    assert_eq!(
        ended(&h.events),
        vec![(
            first,
            OrderEnd::Cancelled,
            Some(CancelReason::UserRequested),
            0,
            5
        )]
    );
    h.apply(Op::CancelAll {
        user: a,
        market: Some(m),
    })
    .unwrap();
    assert_eq!(
        ended(&h.events),
        vec![(
            second,
            OrderEnd::Cancelled,
            Some(CancelReason::UserRequested),
            0,
            5
        )]
    );
    assert_eq!((h.available(a), h.locked(a)), (100 * DOLLAR, 0));

    // Resumed, it trades again.
    h.apply(Op::ResumeMarket { market: m }).unwrap();
    h.limit(a, m, Side::Buy, Outcome::Yes, 4_000, 1).unwrap();
}

#[test]
fn closing_cancels_every_resting_order_in_id_order_and_releases_what_it_held() {
    let mut h = Harness::default();
    let (alice, bob, carol) = (h.user(100), h.user(100), h.user(100));
    let m = h.market(0, 0);
    let bid = h
        .limit(alice, m, Side::Buy, Outcome::Yes, 5_000, 10)
        .unwrap(); // 1
    h.limit(bob, m, Side::Buy, Outcome::No, 5_000, 4).unwrap(); // 2: mints 4, filled
    h.split(carol, m, 5);
    let ask = h
        .limit(carol, m, Side::Sell, Outcome::Yes, 8_000, 5)
        .unwrap(); // 3
    let no_sell = h.limit(bob, m, Side::Sell, Outcome::No, 3_000, 2).unwrap(); // 4: bid 0.70
    assert_eq!(h.locked(alice), 6 * 500_000);

    h.apply(Op::CloseMarket { market: m }).unwrap();
    let cancelled = |order, filled_qty, unfilled_qty, user| Event::OrderEnded {
        order,
        user,
        market: m,
        end: OrderEnd::Cancelled,
        reason: Some(CancelReason::MarketClosed),
        filled_qty,
        unfilled_qty,
    };
    let level = |side, price_units| Event::BookLevel {
        market: m,
        // Five commands changed this book: four places and the close.
        book_seq: 5,
        side,
        price_units,
        qty: 0,
    };
    assert_eq!(
        h.events,
        vec![
            cancelled(bid, 4, 6, alice),
            cancelled(ask, 0, 5, carol),
            cancelled(no_sell, 0, 2, bob),
            Event::MarketStateChanged {
                market: m,
                state: MarketState::Closed
            },
            level(BookSide::Bid, 5_000),
            level(BookSide::Bid, 7_000),
            level(BookSide::Ask, 8_000),
            Event::Position {
                user: bob,
                market: m,
                position: Position {
                    no_free: 4,
                    ..Position::default()
                },
            },
            Event::Position {
                user: carol,
                market: m,
                position: Position {
                    yes_free: 5,
                    no_free: 5,
                    ..Position::default()
                },
            },
            Event::Balance {
                user: alice,
                available_micros: 98 * DOLLAR,
                locked_micros: 0
            },
        ]
    );
    assert_eq!(h.engine.open_order_count(), 0);
    let depth = h.engine.book_depth(m, 10).unwrap();
    assert!(depth.bids.is_empty() && depth.asks.is_empty());
    // Shares and escrow stay until resolution.
    assert_eq!(h.engine.escrow_micros(m), Some(9 * DOLLAR));
    assert_eq!(
        h.limit(alice, m, Side::Buy, Outcome::Yes, 5_000, 1),
        Err(Reject::MarketNotOpen)
    );
}

#[test]
fn a_market_closes_when_a_command_reaches_its_close_time() {
    let mut h = Harness::default();
    let a = h.user(100);
    let close_at = h.ts + 100;
    let m = h.market_with(MarketParams {
        close_ts_micros: Some(close_at),
        ..params("closes", 100)
    });
    // A GTD order due at the same instant expires first: expiries come before closes.
    let gtd = h
        .place(PlaceOrder {
            time_in_force: TimeInForce::Gtd,
            expires_at_micros: Some(close_at),
            ..PlaceOrder::limit(a, m, Side::Buy, Outcome::Yes, 4_000, 5)
        })
        .unwrap();
    let gtc = h.limit(a, m, Side::Buy, Outcome::Yes, 3_000, 3).unwrap();
    assert_eq!(h.locked(a), 2_000_000 + 900_000);

    h.apply_at(close_at - 1, Op::Tick).unwrap();
    assert!(h.events.is_empty());
    assert_eq!(state(&h, m), MarketState::Open);

    // Any command at the close time closes the market before it is looked at, so an order
    // placed at that instant is already too late.
    assert_eq!(
        h.apply_at(
            close_at,
            Op::Place(PlaceOrder::limit(a, m, Side::Buy, Outcome::Yes, 5_000, 1))
        ),
        Err(Reject::MarketNotOpen)
    );
    let level = |price_units| Event::BookLevel {
        market: m,
        book_seq: 3,
        side: BookSide::Bid,
        price_units,
        qty: 0,
    };
    assert_eq!(
        h.events,
        vec![
            Event::OrderEnded {
                order: gtd,
                user: a,
                market: m,
                end: OrderEnd::Expired,
                reason: None,
                filled_qty: 0,
                unfilled_qty: 5
            },
            Event::OrderEnded {
                order: gtc,
                user: a,
                market: m,
                end: OrderEnd::Cancelled,
                reason: Some(CancelReason::MarketClosed),
                filled_qty: 0,
                unfilled_qty: 3
            },
            Event::MarketStateChanged {
                market: m,
                state: MarketState::Closed
            },
            level(3_000),
            level(4_000),
            Event::Balance {
                user: a,
                available_micros: 100 * DOLLAR,
                locked_micros: 0
            },
        ]
    );
    assert_eq!(state(&h, m), MarketState::Closed);
    assert_eq!(
        h.apply(Op::CloseMarket { market: m }),
        Err(Reject::InvalidMarketTransition)
    );
}

#[test]
fn markets_due_at_the_same_time_close_in_id_order_halted_ones_too() {
    let mut h = Harness::default();
    let close_at = h.ts + 50;
    let due = |slug: &str| MarketParams {
        close_ts_micros: Some(close_at),
        ..params(slug, 100)
    };
    let later = h.market_with(MarketParams {
        close_ts_micros: Some(close_at + 1),
        ..params("later", 1)
    });
    let (m1, m2) = (h.market_with(due("one")), h.market_with(due("two")));
    let early = h.market_with(due("early"));
    h.apply(Op::HaltMarket { market: m1 }).unwrap();
    // Closed by hand first: reaching its close time later must do nothing more.
    h.apply(Op::CloseMarket { market: early }).unwrap();

    h.apply_at(close_at + 10, Op::Tick).unwrap();
    assert_eq!(
        h.events,
        vec![
            Event::MarketStateChanged {
                market: m1,
                state: MarketState::Closed
            },
            Event::MarketStateChanged {
                market: m2,
                state: MarketState::Closed
            },
            Event::MarketStateChanged {
                market: later,
                state: MarketState::Closed
            },
        ]
    );
    h.apply(Op::Tick).unwrap();
    assert!(h.events.is_empty());
}

/// Alice and Bob mint 10 pairs at 0.60 (Bob the taker, 7% fee), Carol splits 4 pairs and
/// sells 3 NO to Bob at 0.45, and two orders are left resting. Positions: Alice 10 YES, Bob
/// 13 NO, Carol 4 YES + 1 NO; escrow $14.
struct Resolvable {
    h: Harness,
    m: MarketId,
    users: [UserId; 3],
    resting: [OrderId; 2],
}

fn resolvable() -> Resolvable {
    let mut h = Harness::default();
    let (alice, bob, carol) = (h.user(100), h.user(100), h.user(100));
    let m = h.market(0, 700);
    h.limit(alice, m, Side::Buy, Outcome::Yes, 6_000, 10)
        .unwrap();
    h.limit(bob, m, Side::Buy, Outcome::No, 4_000, 10).unwrap();
    h.split(carol, m, 4);
    h.limit(carol, m, Side::Sell, Outcome::No, 4_500, 3)
        .unwrap();
    h.limit(bob, m, Side::Buy, Outcome::No, 4_500, 3).unwrap();
    let sell = h
        .limit(carol, m, Side::Sell, Outcome::Yes, 9_000, 1)
        .unwrap();
    let buy = h
        .limit(alice, m, Side::Buy, Outcome::Yes, 3_000, 5)
        .unwrap();

    // Bob's taker fees: ceil(0.07 * 10 * 0.6 * 0.4) = $0.168 and
    // ceil(0.07 * 3 * 0.55 * 0.45) = $0.051975.
    assert_eq!(h.engine.fee_account_micros(), 168_000 + 51_975);
    assert_eq!(h.available(bob), 100 * DOLLAR - 4_168_000 - 1_401_975);
    assert_eq!(h.available(carol), 96 * DOLLAR + 1_350_000);
    // 5 @ 0.30 holds $1.50 + ceil(0.07 * 5 * 0.21) = $0.0735 (no maker fee: no buffer).
    assert_eq!(h.locked(alice), 1_573_500);
    assert_eq!(h.engine.escrow_micros(m), Some(14 * DOLLAR));
    Resolvable {
        h,
        m,
        users: [alice, bob, carol],
        resting: [sell, buy],
    }
}

#[test]
fn resolution_pays_each_share_exactly_and_empties_the_escrow() {
    // (resolution, payouts to Alice, Bob and Carol)
    let cases = [
        (Resolution::Yes, [10 * DOLLAR, 0, 4 * DOLLAR]),
        (Resolution::No, [0, 13 * DOLLAR, DOLLAR]),
        // YES pays 0.3333, NO 0.6667: 3.333, 13 * 0.6667 = 8.6671, 4 * 0.3333 + 0.6667 = 1.9999.
        (
            Resolution::Split {
                yes_payout_units: 3_333,
            },
            [3_333_000, 8_667_100, 1_999_900],
        ),
        (
            Resolution::Split {
                yes_payout_units: 5_000,
            },
            [5 * DOLLAR, 6_500_000, 2_500_000],
        ),
        (
            Resolution::Split {
                yes_payout_units: 0,
            },
            [0, 13 * DOLLAR, DOLLAR],
        ),
        (
            Resolution::Split {
                yes_payout_units: 10_000,
            },
            [10 * DOLLAR, 0, 4 * DOLLAR],
        ),
    ];
    for (resolution, payouts) in cases {
        let Resolvable {
            mut h, m, users, ..
        } = resolvable();
        let before: Vec<i64> = users
            .iter()
            .map(|u| h.available(*u) + h.locked(*u))
            .collect();
        let fees = h.engine.fee_account_micros();
        h.apply(Op::ResolveMarket {
            market: m,
            resolution,
        })
        .unwrap();
        assert_eq!(
            settlements(&h.events),
            vec![
                (users[0], 10, 0, payouts[0]),
                (users[1], 0, 13, payouts[1]),
                (users[2], 4, 1, payouts[2]),
            ],
            "{resolution:?}"
        );
        assert_eq!(payouts.iter().sum::<i64>(), 14 * DOLLAR);
        for (index, user) in users.iter().enumerate() {
            assert_eq!(h.locked(*user), 0);
            assert_eq!(
                h.available(*user),
                before[index] + payouts[index],
                "{resolution:?}"
            );
            assert!(h.engine.position(*user, m).is_empty());
        }
        assert_eq!(h.engine.escrow_micros(m), Some(0));
        assert_eq!(h.engine.fee_account_micros(), fees);
        assert_eq!(cash_in_system(&h), 300 * DOLLAR);
        let view = h.engine.market(m).unwrap();
        assert_eq!(
            (view.state, view.resolution),
            (MarketState::Resolved, Some(resolution))
        );
        assert!(h.events.contains(&Event::MarketResolved {
            market: m,
            resolution
        }));
    }
}

#[test]
fn resolving_an_open_market_cancels_its_orders_then_settles_in_user_order() {
    let Resolvable {
        mut h,
        m,
        users,
        resting,
    } = resolvable();
    h.apply(Op::ResolveMarket {
        market: m,
        resolution: Resolution::Yes,
    })
    .unwrap();
    let [alice, bob, carol] = users;
    let cancelled = |order, user, unfilled_qty| Event::OrderEnded {
        order,
        user,
        market: m,
        end: OrderEnd::Cancelled,
        reason: Some(CancelReason::MarketResolved),
        filled_qty: 0,
        unfilled_qty,
    };
    let settled = |user, yes_shares, no_shares, payout_micros| Event::Settlement {
        market: m,
        user,
        yes_shares,
        no_shares,
        payout_micros,
    };
    let prefix = [
        cancelled(resting[0], carol, 1),
        cancelled(resting[1], alice, 5),
        Event::MarketStateChanged {
            market: m,
            state: MarketState::Closed,
        },
        settled(alice, 10, 0, 10 * DOLLAR),
        settled(bob, 0, 13, 0),
        settled(carol, 4, 1, 4 * DOLLAR),
        Event::MarketResolved {
            market: m,
            resolution: Resolution::Yes,
        },
    ];
    assert_eq!(h.events[..prefix.len()], prefix[..]);
    let balances: Vec<&Event> = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::Balance { .. }))
        .collect();
    // Alice: $94 + $1.573505 unlocked + $10. Bob is paid nothing and keeps his balance.
    assert_eq!(
        balances,
        vec![
            &Event::Balance {
                user: alice,
                available_micros: 104 * DOLLAR,
                locked_micros: 0
            },
            &Event::Balance {
                user: carol,
                available_micros: 101_350_000,
                locked_micros: 0
            },
        ]
    );
    assert_eq!(h.available(bob), 94_430_025);
}

#[test]
fn a_closed_market_resolves_without_cancelling_again() {
    let Resolvable {
        mut h, m, users, ..
    } = resolvable();
    h.apply(Op::CloseMarket { market: m }).unwrap();
    assert_eq!(ended(&h.events).len(), 2);
    h.apply(Op::ResolveMarket {
        market: m,
        resolution: Resolution::No,
    })
    .unwrap();
    assert!(ended(&h.events).is_empty());
    assert!(!h
        .events
        .iter()
        .any(|e| matches!(e, Event::MarketStateChanged { .. })));
    assert_eq!(settlements(&h.events).len(), 3);
    assert_eq!(h.available(users[1]), 94_430_025 + 13 * DOLLAR);
    assert_eq!(h.engine.escrow_micros(m), Some(0));
}

#[test]
fn a_halted_market_can_be_resolved() {
    let Resolvable {
        mut h, m, users, ..
    } = resolvable();
    h.apply(Op::HaltMarket { market: m }).unwrap();
    h.apply(Op::ResolveMarket {
        market: m,
        resolution: Resolution::No,
    })
    .unwrap();
    assert_eq!(ended(&h.events).len(), 2);
    assert_eq!(h.available(users[2]), 97_350_000 + DOLLAR);
    assert_eq!(state(&h, m), MarketState::Resolved);
}

#[test]
fn a_resolved_market_refuses_a_second_resolution_and_every_other_change() {
    let Resolvable {
        mut h, m, users, ..
    } = resolvable();
    h.apply(Op::ResolveMarket {
        market: m,
        resolution: Resolution::Yes,
    })
    .unwrap();
    let a = users[0];
    for resolution in [
        Resolution::Yes,
        Resolution::No,
        Resolution::Split {
            yes_payout_units: 1,
        },
    ] {
        assert_eq!(
            h.apply(Op::ResolveMarket {
                market: m,
                resolution
            }),
            Err(Reject::InvalidMarketTransition)
        );
    }
    for op in [
        Op::HaltMarket { market: m },
        Op::ResumeMarket { market: m },
        Op::CloseMarket { market: m },
    ] {
        assert_eq!(h.apply(op), Err(Reject::InvalidMarketTransition));
    }
    assert_eq!(
        h.limit(a, m, Side::Buy, Outcome::Yes, 5_000, 1),
        Err(Reject::MarketNotOpen)
    );
    assert_eq!(
        h.apply(Op::Split {
            user: a,
            market: m,
            qty: 1
        }),
        Err(Reject::MarketNotOpen)
    );
    assert_eq!(
        h.apply(Op::Merge {
            user: a,
            market: m,
            qty: 1
        }),
        Err(Reject::MarketNotOpen)
    );
    // The winnings can leave the exchange.
    h.apply(Op::Withdraw {
        user: a,
        amount_micros: 104 * DOLLAR,
    })
    .unwrap();
    assert_eq!(h.available(a), 0);
}

#[test]
fn a_payout_above_one_dollar_or_an_unknown_market_is_rejected() {
    let Resolvable { mut h, m, .. } = resolvable();
    assert_eq!(
        h.apply(Op::ResolveMarket {
            market: m,
            resolution: Resolution::Split {
                yes_payout_units: 10_001
            }
        }),
        Err(Reject::InvalidResolution)
    );
    assert_eq!(state(&h, m), MarketState::Open);
    assert_eq!(h.engine.open_order_count(), 2);
    assert_eq!(
        h.apply(Op::ResolveMarket {
            market: MarketId(1),
            resolution: Resolution::Yes
        }),
        Err(Reject::UnknownMarket)
    );
}

#[test]
fn users_and_markets_stop_at_the_configured_capacity() {
    let config = engine::Config {
        users_max: 2,
        markets_max: 1,
        ..engine::Config::default()
    };
    let mut h = Harness::new(engine::Engine::new(config));
    h.user(0);
    h.user(0);
    assert_eq!(h.apply(Op::CreateUser), Err(Reject::TooManyUsers));
    h.apply(Op::CreateMarket(params("first", 100))).unwrap();
    let second = Op::CreateMarket(params("second", 100));
    assert_eq!(h.apply(second), Err(Reject::TooManyMarkets));
    assert_eq!((h.engine.user_count(), h.engine.market_count()), (2, 1));
}
