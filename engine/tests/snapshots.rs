//! Determinism and persistence: snapshot/restore, replay, the state hash, restore's validation
//! of untrusted snapshots, and the JSON contract of commands and events.

mod support;

use std::collections::BTreeSet;

use engine::{
    ClientOrderId, Command, Engine, Event, MarketId, MarketParams, MarketState, Op, OrderId,
    Outcome, PlaceOrder, Reject, Resolution, SelfTradePrevention, Side, Slug, Snapshot,
    TimeInForce, UserId,
};
use support::{Harness, DOLLAR};

fn params(slug: &str, tick_units: u16, close_ts_micros: Option<u64>) -> MarketParams {
    MarketParams {
        slug: Slug::new(slug).expect("a valid slug"),
        tick_units,
        qty_min: 1,
        qty_max: 10_000,
        maker_fee_bps: -50,
        taker_fee_bps: 700,
        close_ts_micros,
        lock_rule: engine::LockRule::CURRENT,
    }
}

/// A day's trading that uses every command and produces every kind of event, leaving resting
/// orders (GTC and a GTD still to expire), remembered client ids, fees, a resolved, a closed,
/// a halted and a time-closed market behind. The harness checked invariants after each command.
fn busy_day() -> Harness {
    let mut h = Harness::default();
    let (mm, alice, bob, carol) = (h.user(1_000), h.user(100), h.user(100), h.user(100));
    let m0 = h.market_with(params("main", 100, None));
    let closes_at = h.ts + 1_000;
    let m1 = h.market_with(params("timed", 10, Some(closes_at)));
    let m2 = h.market_with(params("fine", 1, None));
    let m3 = h.market_with(params("halted", 100, None));
    let m4 = h.market_with(params("closed", 100, None));

    h.split(carol, m0, 5);
    let quote = PlaceOrder {
        client_order_id: ClientOrderId::new("mm-bid-1"),
        ..PlaceOrder::limit(mm, m0, Side::Buy, Outcome::Yes, 4_500, 10)
    };
    let bid = h.place(quote).unwrap();
    h.apply(Op::Place(quote)).unwrap(); // replayed, not placed twice
    let ask = h.limit(mm, m0, Side::Buy, Outcome::No, 4_500, 10).unwrap(); // YES ask 0.55
    h.limit(alice, m0, Side::Buy, Outcome::Yes, 6_000, 4)
        .unwrap(); // mint at 0.55
    h.limit(carol, m0, Side::Sell, Outcome::Yes, 4_000, 3)
        .unwrap(); // YES transfer at 0.45
    let gtd = PlaceOrder {
        time_in_force: TimeInForce::Gtd,
        expires_at_micros: Some(h.ts + 40),
        ..PlaceOrder::limit(bob, m0, Side::Buy, Outcome::Yes, 3_000, 2)
    };
    h.place(gtd).unwrap();
    let late_gtd = PlaceOrder {
        expires_at_micros: Some(closes_at + 500),
        client_order_id: ClientOrderId::new("bob-late"),
        ..gtd
    };
    h.place(late_gtd).unwrap();
    h.apply(Op::Amend {
        user: mm,
        order: bid,
        qty: Some(8),
        price_units: None,
    })
    .unwrap();
    // The market maker's own crossing bid decrements both sides instead of trading.
    h.place(PlaceOrder {
        self_trade_prevention: SelfTradePrevention::DecrementAndCancel,
        ..PlaceOrder::limit(mm, m0, Side::Buy, Outcome::Yes, 5_600, 2)
    })
    .unwrap();
    let placed_before = h.engine.open_orders(alice).len();
    h.apply(Op::Batch {
        user: alice,
        cancels: vec![OrderId(999)],
        places: vec![
            PlaceOrder::limit(alice, m0, Side::Buy, Outcome::Yes, 2_050, 1),
            PlaceOrder::limit(alice, m0, Side::Buy, Outcome::Yes, 2_000, 1),
        ],
    })
    .unwrap();
    let batch_order = h.engine.open_orders(alice)[placed_before].order;
    h.apply(Op::Cancel {
        user: alice,
        order: batch_order,
    })
    .unwrap();
    assert_eq!(
        h.limit(alice, m0, Side::Buy, Outcome::Yes, 5_000, 1_000),
        Err(Reject::InsufficientFunds)
    );
    // Carol and the market maker sell YES and NO into each other: a merge fill.
    h.limit(carol, m0, Side::Sell, Outcome::No, 4_000, 2)
        .unwrap(); // YES bid 0.60
    h.limit(alice, m0, Side::Sell, Outcome::Yes, 5_900, 2)
        .unwrap();
    h.apply(Op::Merge {
        user: carol,
        market: m0,
        qty: 1,
    })
    .unwrap();
    h.apply(Op::Withdraw {
        user: alice,
        amount_micros: DOLLAR + 1,
    })
    .unwrap();

    h.limit(alice, m2, Side::Buy, Outcome::Yes, 1_234, 3)
        .unwrap();
    h.limit(bob, m2, Side::Buy, Outcome::No, 8_766, 3).unwrap();
    h.limit(bob, m2, Side::Buy, Outcome::No, 1, 7).unwrap();
    h.apply(Op::ResolveMarket {
        market: m2,
        resolution: Resolution::Split {
            yes_payout_units: 4_321,
        },
    })
    .unwrap();

    h.apply(Op::HaltMarket { market: m3 }).unwrap();
    h.apply(Op::ResumeMarket { market: m3 }).unwrap();
    h.limit(carol, m3, Side::Buy, Outcome::No, 5_000, 2)
        .unwrap();
    h.apply(Op::HaltMarket { market: m3 }).unwrap();
    h.limit(bob, m4, Side::Buy, Outcome::No, 5_000, 2).unwrap();
    h.apply(Op::CloseMarket { market: m4 }).unwrap();

    h.limit(mm, m1, Side::Buy, Outcome::Yes, 4_990, 5).unwrap();
    h.apply(Op::CancelAll {
        user: bob,
        market: Some(m1),
    })
    .unwrap();
    h.apply(Op::Tick).unwrap();
    h.apply_at(closes_at, Op::Tick).unwrap();
    assert_eq!(h.engine.market(m1).unwrap().state, MarketState::Closed);
    let _ = ask;
    h.limit(bob, m0, Side::Buy, Outcome::No, 4_000, 1).unwrap();
    h
}

fn run(engine: &mut Engine, commands: &[Command]) -> Vec<(Result<(), Reject>, Vec<Event>)> {
    commands
        .iter()
        .map(|command| {
            let mut events = Vec::new();
            let result = engine.apply(command, &mut events);
            (result, events)
        })
        .collect()
}

fn event_type(event: &Event) -> String {
    serde_json::to_value(event).unwrap()["type"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_busy_day_leaves_a_state_worth_snapshotting() {
    let h = busy_day();
    let snapshot = h.engine.snapshot();
    let resting: usize = snapshot.markets.iter().map(|m| m.orders.len()).sum();
    assert_eq!(resting, h.engine.open_order_count());
    assert!(resting >= 4);
    let states: Vec<MarketState> = snapshot.markets.iter().map(|m| m.state).collect();
    assert_eq!(
        states,
        vec![
            MarketState::Open,
            MarketState::Closed,
            MarketState::Resolved,
            MarketState::Halted,
            MarketState::Closed
        ]
    );
    assert!(snapshot.markets[0]
        .orders
        .iter()
        .any(|o| o.expires_at_micros.is_some()));
    assert!(snapshot.users.iter().any(|u| !u.client_ids.is_empty()));
    assert!(!snapshot.positions.is_empty());
    assert!(snapshot.fee_micros > 0);
}

#[test]
fn a_restored_snapshot_equals_the_original_and_hashes_the_same() {
    let h = busy_day();
    let snapshot = h.engine.snapshot();
    let restored = Engine::restore(&snapshot).unwrap();
    assert_eq!(restored.snapshot(), snapshot);
    assert_eq!(restored.state_hash(), h.engine.state_hash());
    for user in 0..h.engine.user_count() {
        let user = UserId(user);
        assert_eq!(restored.balance(user), h.engine.balance(user));
        assert_eq!(restored.open_orders(user), h.engine.open_orders(user));
    }
    for market in 0..h.engine.market_count() {
        let market = MarketId(market);
        assert_eq!(restored.market(market), h.engine.market(market));
        assert_eq!(
            restored.book_depth(market, 100),
            h.engine.book_depth(market, 100)
        );
    }
    for order in h.engine.open_orders(UserId(0)) {
        assert_eq!(
            restored.queue_position(order.order),
            h.engine.queue_position(order.order)
        );
    }
    assert_eq!(restored.fee_account_micros(), h.engine.fee_account_micros());
    assert_eq!(restored.now_micros(), h.engine.now_micros());
}

/// The server stores snapshots as postcard, a format that does not describe itself: every
/// market state and resolution (including a split's payout) must read back from it.
#[test]
fn a_snapshot_round_trips_through_postcard_whatever_its_markets_resolved_to() {
    let mut h = busy_day();
    let split = h.engine.snapshot();
    assert!(split
        .markets
        .iter()
        .any(|m| matches!(m.resolution, Some(Resolution::Split { .. }))));
    let last = MarketId(h.engine.market_count() - 1);
    h.apply(Op::ResolveMarket {
        market: last,
        resolution: Resolution::No,
    })
    .unwrap();
    let no = h.engine.snapshot();
    let m0 = MarketId(0);
    h.apply(Op::ResolveMarket {
        market: m0,
        resolution: Resolution::Yes,
    })
    .unwrap();
    let yes = h.engine.snapshot();
    for snapshot in [split, no, yes] {
        let bytes = postcard::to_allocvec(&snapshot).unwrap();
        let decoded: Snapshot = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(decoded, snapshot);
        let restored = Engine::restore(&decoded).unwrap();
        assert_eq!(restored.snapshot(), snapshot);
    }
    let resolutions: Vec<_> = h
        .engine
        .snapshot()
        .markets
        .iter()
        .map(|m| m.resolution)
        .collect();
    assert!(resolutions.contains(&Some(Resolution::Yes)));
    assert!(resolutions.contains(&Some(Resolution::No)));
}

#[test]
fn restoring_at_any_point_and_continuing_matches_an_uninterrupted_run() {
    let journal = busy_day().journal;
    let mut engine = Engine::default();
    let mut snapshots = vec![engine.snapshot()];
    let mut expected = Vec::new();
    for command in &journal {
        expected.extend(run(&mut engine, std::slice::from_ref(command)));
        snapshots.push(engine.snapshot());
    }
    let final_hash = engine.state_hash();
    for (index, snapshot) in snapshots.iter().enumerate() {
        // Through JSON, as a server would store it.
        let json = serde_json::to_string(snapshot).unwrap();
        let decoded: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(&decoded, snapshot);
        let mut restored = Engine::restore(&decoded).unwrap();
        let rest = run(&mut restored, &journal[index..]);
        assert_eq!(rest, expected[index..], "restored after command {index}");
        assert_eq!(restored.state_hash(), final_hash, "restored after {index}");
    }
}

/// Orders resting on two markets and several levels of both sides, with ids five id pages
/// apart (a page is 4,096 ids): between two resting orders, 5,000 IOC takers take an id each
/// and never rest. A snapshot lists orders market by market, best price first, so an order from
/// an older page comes after one from a newer page; restore must not care.
#[test]
fn a_snapshot_restores_whatever_id_pages_its_resting_orders_come_from() {
    let mut h = Harness::default();
    let (maker, taker) = (h.user(10_000), h.user(10_000));
    let (first, second) = (h.market(0, 0), h.market(0, 0));
    let resting = [
        (second, Outcome::Yes, 3_000),
        (first, Outcome::Yes, 2_000),
        (second, Outcome::Yes, 4_000),
        (first, Outcome::No, 4_000), // the YES ask at 0.60
        (first, Outcome::Yes, 3_000),
        (second, Outcome::No, 3_000), // the YES ask at 0.70
    ];
    let mut rested = Vec::new();
    for (market, outcome, price_units) in resting {
        let order = h.limit(maker, market, Side::Buy, outcome, price_units, 10);
        rested.push(order.unwrap());
        for _ in 0..5_000 {
            let taker_order = PlaceOrder {
                time_in_force: TimeInForce::Ioc,
                ..PlaceOrder::limit(taker, market, Side::Buy, Outcome::Yes, 100, 1)
            };
            h.place(taker_order).unwrap();
        }
    }
    let pages: BTreeSet<u64> = rested.iter().map(|order| order.0 / 4_096).collect();
    assert!(pages.len() >= 3, "ids on pages {pages:?}");
    assert_eq!(h.engine.open_order_count(), rested.len());

    let snapshot = h.engine.snapshot();
    let listed: Vec<OrderId> = snapshot
        .markets
        .iter()
        .flat_map(|market| market.orders.iter().map(|order| order.order))
        .collect();
    assert!(
        listed
            .windows(2)
            .any(|pair| pair[0].0 / 4_096 > pair[1].0 / 4_096),
        "an older page's order is listed after a newer page's: {listed:?}"
    );
    let mut restored = Engine::restore(&snapshot).expect("a live engine's snapshot restores");
    assert_eq!(restored.snapshot(), snapshot);
    assert_eq!(restored.state_hash(), h.engine.state_hash());
    for &order in &rested {
        assert_eq!(restored.order(order), h.engine.order(order));
        assert_eq!(
            restored.queue_position(order),
            h.engine.queue_position(order)
        );
    }

    // Trading goes on the same on both: fills against old and new pages' orders, a cancel, a
    // new order that rests.
    let mut ts = h.ts;
    let mut next = |op: Op| {
        ts += 1;
        Command { ts_micros: ts, op }
    };
    let more = [
        next(Op::Place(PlaceOrder::limit(
            taker,
            second,
            Side::Buy,
            Outcome::No,
            7_000,
            15,
        ))),
        next(Op::Place(PlaceOrder::limit(
            taker,
            first,
            Side::Buy,
            Outcome::Yes,
            6_000,
            4,
        ))),
        next(Op::Cancel {
            user: maker,
            order: rested[0],
        }),
        next(Op::Place(PlaceOrder::limit(
            maker,
            first,
            Side::Buy,
            Outcome::Yes,
            2_500,
            3,
        ))),
    ];
    let expected = run(&mut h.engine, &more);
    assert!(expected.iter().all(|(result, _)| result.is_ok()));
    assert!(expected[0]
        .1
        .iter()
        .any(|e| matches!(e, Event::Trade { .. })));
    assert_eq!(run(&mut restored, &more), expected);
    assert_eq!(restored.check_invariants(), Ok(()));
    assert_eq!(restored.state_hash(), h.engine.state_hash());

    // And the state trading left behind snapshots and restores again.
    let again = restored.snapshot();
    let restored_again = Engine::restore(&again).expect("restores again");
    assert_eq!(restored_again.snapshot(), again);
    assert_eq!(restored_again.state_hash(), h.engine.state_hash());
}

#[test]
fn replaying_the_journal_into_a_fresh_engine_reproduces_the_state_hash() {
    let h = busy_day();
    let mut first = Engine::default();
    let mut second = Engine::default();
    let first_events = run(&mut first, &h.journal);
    assert_eq!(run(&mut second, &h.journal), first_events);
    assert_eq!(first.state_hash(), h.engine.state_hash());
    assert_eq!(second.state_hash(), h.engine.state_hash());
    assert_eq!(first.snapshot(), h.engine.snapshot());
    let rejected = first_events.iter().filter(|(r, _)| r.is_err()).count();
    assert!(rejected >= 1, "the journal holds a rejected command too");
}

#[test]
fn the_state_hash_follows_the_state_and_nothing_else() {
    let mut h = busy_day();
    let original = h.engine.state_hash();
    let (user, now) = (UserId(1), h.ts);
    // One micro more is a different state; taking it out again is the same state as before.
    h.apply_at(
        now,
        Op::Deposit {
            user,
            amount_micros: 1,
        },
    )
    .unwrap();
    let richer = h.engine.state_hash();
    assert_ne!(richer, original);
    h.apply_at(
        now,
        Op::Withdraw {
            user,
            amount_micros: 1,
        },
    )
    .unwrap();
    assert_eq!(h.engine.state_hash(), original);
    // A tick at the same instant changes nothing; a later one moves the clock.
    h.apply_at(now, Op::Tick).unwrap();
    assert_eq!(h.engine.state_hash(), original);
    h.apply_at(now + 1, Op::Tick).unwrap();
    let later = h.engine.state_hash();
    assert_ne!(later, original);
    let mut snapshot = h.engine.snapshot();
    snapshot.next_trade_id += 1;
    let changed = Engine::restore(&snapshot).unwrap();
    assert_ne!(changed.state_hash(), later);
    let hashes = BTreeSet::from([original, richer, later, changed.state_hash()]);
    assert_eq!(hashes.len(), 4);
}

#[test]
fn restore_rejects_a_tampered_snapshot() {
    let snapshot = busy_day().engine.snapshot();
    assert!(Engine::restore(&snapshot).is_ok());
    type Tamper = fn(&mut Snapshot);
    let cases: Vec<(&str, Tamper)> = vec![
        ("unsupported format version", |s| s.format_version += 1),
        ("config out of range", |s| {
            s.config.open_orders_per_user_max = 0
        }),
        ("invariant 1 violated: accounts sum to 1, not 0", |s| {
            s.users[1].cash.available_micros += 1
        }),
        ("invariant 1 violated: accounts sum to -7, not 0", |s| {
            s.fee_micros -= 7
        }),
        ("invariant 2 violated", |s| {
            s.users[1].cash.available_micros -= 200 * DOLLAR;
            s.external_micros += 200 * DOLLAR;
        }),
        ("invariant 3 violated", |s| {
            s.markets[0].escrow_micros += DOLLAR;
            s.external_micros -= DOLLAR;
        }),
        ("invariant 3 violated", |s| {
            s.positions.remove(0);
        }),
        ("invariant 5 violated", |s| {
            let order = s.markets[0]
                .orders
                .iter_mut()
                .find(|o| o.side == Side::Buy)
                .unwrap();
            order.locked_micros += 1;
            let user = order.user.0 as usize;
            s.users[user].cash.locked_micros += 1;
            s.users[user].cash.available_micros -= 1;
        }),
        ("invariant 5 violated", |s| {
            let order = &mut s.markets[0].orders[0];
            order.filled_qty = order.qty - 1;
        }),
        ("negative escrow", |s| s.markets[1].escrow_micros = -1),
        ("market params", |s| s.markets[1].params.tick_units = 7),
        ("market params", |s| {
            s.markets[1].params.slug = s.markets[0].params.slug
        }),
        ("resolution does not match the market state", |s| {
            s.markets[2].resolution = None
        }),
        ("resolution does not match the market state", |s| {
            s.markets[3].resolution = Some(Resolution::Yes)
        }),
        ("resolved market", |s| {
            s.markets[2].resolution = Some(Resolution::Split {
                yes_payout_units: 10_001,
            })
        }),
        ("resolved market", |s| {
            s.markets[2].escrow_micros += DOLLAR;
            s.external_micros -= DOLLAR;
        }),
        // Closing cancels every order: resolving such a market would find shares reserved.
        ("resting order", |s| {
            s.markets[0].state = MarketState::Closed
        }),
        ("resting order", |s| s.markets[0].orders[0].limit_units += 1),
        ("resting order", |s| {
            s.markets[0].orders[0].user = UserId(99)
        }),
        ("resting order", |s| {
            s.markets[0].orders[0].order = OrderId(s.next_order_id)
        }),
        ("resting order", |s| {
            let copy = s.markets[0].orders[0].clone();
            s.markets[0].orders.push(copy);
        }),
        ("resting order", |s| {
            s.markets[0].orders[0].filled_qty = s.markets[0].orders[0].qty
        }),
        ("crossed book", |s| {
            // Move the best bid above every ask (its reserve no longer matches either, but
            // the crossed book is found first).
            let best_ask = s.markets[0]
                .orders
                .iter()
                .find(|o| o.side == Side::Buy && o.outcome == Outcome::No)
                .map(|o| 10_000 - o.limit_units)
                .unwrap();
            let bid = &mut s.markets[0].orders[0];
            assert_eq!((bid.side, bid.outcome), (Side::Buy, Outcome::Yes));
            bid.limit_units = best_ask + 100;
        }),
        ("position", |s| {
            let copy = s.positions[0];
            s.positions.push(copy);
        }),
        ("position", |s| s.positions[0].1 = UserId(99)),
        ("client order id", |s| {
            let user = s
                .users
                .iter()
                .position(|u| !u.client_ids.is_empty())
                .unwrap();
            let mut entry = s.users[user].client_ids[0].clone();
            entry.request.user = UserId(user as u32 + 1);
            s.users[user].client_ids[0] = entry;
        }),
    ];
    for (expected, tamper) in cases {
        let mut bad = snapshot.clone();
        tamper(&mut bad);
        assert_ne!(bad, snapshot, "{expected}: the tamper changed nothing");
        let error = Engine::restore(&bad).expect_err(expected);
        assert!(
            error.0.starts_with(expected),
            "expected {expected:?}, got {:?}",
            error.0
        );
    }
}

#[test]
fn commands_and_every_kind_of_event_round_trip_through_json() {
    let h = busy_day();
    let mut engine = Engine::default();
    let events: Vec<Event> = run(&mut engine, &h.journal)
        .into_iter()
        .flat_map(|(_, events)| events)
        .collect();
    let mut ops = BTreeSet::new();
    for command in &h.journal {
        let json = serde_json::to_string(command).unwrap();
        assert_eq!(&serde_json::from_str::<Command>(&json).unwrap(), command);
        let value = serde_json::to_value(command).unwrap();
        ops.insert(value["op"]["type"].as_str().unwrap().to_owned());
    }
    let all_ops = [
        "tick",
        "create_user",
        "create_market",
        "halt_market",
        "resume_market",
        "close_market",
        "resolve_market",
        "deposit",
        "withdraw",
        "split",
        "merge",
        "place",
        "cancel",
        "cancel_all",
        "amend",
        "batch",
    ];
    assert_eq!(ops, all_ops.iter().map(|s| s.to_string()).collect());
    let mut kinds = BTreeSet::new();
    for event in &events {
        let json = serde_json::to_string(event).unwrap();
        assert_eq!(&serde_json::from_str::<Event>(&json).unwrap(), event);
        kinds.insert(event_type(event));
    }
    let all_events = [
        "user_created",
        "market_created",
        "market_state_changed",
        "market_resolved",
        "settlement",
        "deposited",
        "withdrawn",
        "shares_split",
        "shares_merged",
        "order_accepted",
        "order_replayed",
        "trade",
        "order_rested",
        "order_reduced",
        "order_amended",
        "order_ended",
        "batch_item_rejected",
        "book_level",
        "position",
        "balance",
    ];
    assert_eq!(kinds, all_events.iter().map(|s| s.to_string()).collect());
}

#[test]
fn the_json_shape_of_commands_is_a_stable_contract() {
    let place = Command {
        ts_micros: 1_700_000_000_000_001,
        op: Op::Place(PlaceOrder {
            time_in_force: TimeInForce::Gtd,
            expires_at_micros: Some(1_700_000_060_000_000),
            client_order_id: ClientOrderId::new("bot-7:42"),
            ..PlaceOrder::limit(UserId(3), MarketId(1), Side::Buy, Outcome::No, 4_500, 10)
        }),
    };
    let json = concat!(
        r#"{"ts_micros":1700000000000001,"op":{"type":"place","user":3,"market":1,"#,
        r#""side":"BUY","outcome":"NO","order_type":"LIMIT","price_units":4500,"qty":10,"#,
        r#""cash_micros":null,"time_in_force":"GTD","expires_at_micros":1700000060000000,"#,
        r#""post_only":false,"reduce_only":false,"self_trade_prevention":"CANCEL_TAKER","#,
        r#""client_order_id":"bot-7:42","worst_price_units":null,"max_slippage_bps":null}}"#
    );
    assert_eq!(serde_json::to_string(&place).unwrap(), json);
    assert_eq!(serde_json::from_str::<Command>(json).unwrap(), place);

    let resolve = Command {
        ts_micros: 5,
        op: Op::ResolveMarket {
            market: MarketId(2),
            resolution: Resolution::Split {
                yes_payout_units: 2_500,
            },
        },
    };
    let json = concat!(
        r#"{"ts_micros":5,"op":{"type":"resolve_market","market":2,"#,
        r#""resolution":{"outcome":"SPLIT","yes_payout_units":2500}}}"#
    );
    assert_eq!(serde_json::to_string(&resolve).unwrap(), json);
    assert_eq!(serde_json::from_str::<Command>(json).unwrap(), resolve);

    // Fields with defaults may be left out by a client.
    let minimal = concat!(
        r#"{"ts_micros":9,"op":{"type":"place","user":0,"market":0,"side":"SELL","#,
        r#""outcome":"YES","order_type":"MARKET","price_units":null,"qty":3,"#,
        r#""cash_micros":null,"time_in_force":"IOC","expires_at_micros":null,"#,
        r#""client_order_id":null,"worst_price_units":null,"max_slippage_bps":null}}"#
    );
    assert_eq!(
        serde_json::from_str::<Command>(minimal).unwrap(),
        Command {
            ts_micros: 9,
            op: Op::Place(PlaceOrder::market(
                UserId(0),
                MarketId(0),
                Side::Sell,
                Outcome::Yes,
                3
            )),
        }
    );
}

#[test]
fn the_json_shape_of_events_is_a_stable_contract() {
    let mut h = Harness::default();
    let (alice, bob) = (h.user(100), h.user(100));
    let m = h.market(0, 700);
    h.limit(alice, m, Side::Buy, Outcome::Yes, 6_000, 10)
        .unwrap();
    h.limit(bob, m, Side::Buy, Outcome::No, 4_000, 10).unwrap();
    let trade = h.trades().pop().unwrap();
    // Bob's BUY NO took from the bid: a SELL in YES terms. His fee: 7% of 10 * 0.6 * 0.4.
    let json = concat!(
        r#"{"type":"trade","trade":1,"market":0,"maker_order":1,"taker_order":2,"#,
        r#""maker_user":0,"taker_user":1,"price_units":6000,"qty":10,"kind":"MINT","#,
        r#""taker_side":"SELL","maker_fee_micros":0,"taker_fee_micros":168000}"#
    );
    assert_eq!(serde_json::to_string(&trade).unwrap(), json);
    assert_eq!(serde_json::from_str::<Event>(json).unwrap(), trade);

    let balance = h.events.last().unwrap();
    let json = r#"{"type":"balance","user":1,"available_micros":95832000,"locked_micros":0}"#;
    assert_eq!(serde_json::to_string(balance).unwrap(), json);

    let ended = h
        .events
        .iter()
        .find(|e| matches!(e, Event::OrderEnded { order, .. } if order.0 == 1))
        .unwrap();
    let json = concat!(
        r#"{"type":"order_ended","order":1,"user":0,"market":0,"end":"FILLED","#,
        r#""reason":null,"filled_qty":10,"unfilled_qty":0}"#
    );
    assert_eq!(serde_json::to_string(ended).unwrap(), json);

    // The holdings sit flat beside `user` and `market` on the wire.
    let position = h
        .events
        .iter()
        .find(|e| matches!(e, Event::Position { user, .. } if *user == bob))
        .unwrap();
    let json = concat!(
        r#"{"type":"position","user":1,"market":0,"#,
        r#""yes_free":0,"yes_reserved":0,"no_free":10,"no_reserved":0}"#
    );
    assert_eq!(serde_json::to_string(position).unwrap(), json);
    assert_eq!(&serde_json::from_str::<Event>(json).unwrap(), position);
}
