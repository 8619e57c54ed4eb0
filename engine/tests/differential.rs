//! Differential tests: random command sequences run through the engine and the slow
//! reference model (`engine::reference`) must give the same result, the same events and the
//! same snapshot after every command, with every invariant holding throughout. Each sequence
//! also checks determinism: a snapshot taken part way, restored and fed the rest, and a replay
//! of the whole journal into a fresh engine, both end on the same state hash.
//!
//! Fills are also checked on the events alone (invariant 6: two different users, a price
//! within both limits).
//!
//! Three suites, 10,000 sequences in all per run: busy trading on two markets, the market
//! lifecycle (halts, close times, resolutions), and hostile input (bad prices, others' orders,
//! overspending, repeated client ids).

use engine::audit::FillAudit;
use engine::reference::Reference;
use engine::{
    BookSide, ClientOrderId, Command, Config, Engine, Event, MarketId, MarketParams, Op, OrderId,
    OrderType, Outcome, PlaceOrder, Resolution, SelfTradePrevention, Side, Slug, TimeInForce,
    UserId,
};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

const USERS: u32 = 4;
const DOLLAR: i64 = 1_000_000;

/// Three markets that differ in every parameter that changes arithmetic: tick, fee rates (a
/// maker rebate, a maker fee, none), size bounds and the lock rule (market 2 was created under
/// the old one). Market 1 closes by itself at ts 400.
fn setup() -> Vec<Op> {
    let mut ops = Vec::new();
    for _ in 0..USERS {
        ops.push(Op::CreateUser);
    }
    ops.push(Op::CreateMarket(MarketParams {
        slug: Slug::new("btc-50k").expect("a valid slug"),
        tick_units: 100,
        qty_min: 1,
        qty_max: 50,
        maker_fee_bps: -100,
        taker_fee_bps: 700,
        close_ts_micros: None,
        lock_rule: engine::LockRule::CURRENT,
    }));
    ops.push(Op::CreateMarket(MarketParams {
        slug: Slug::new("rain-tomorrow").expect("a valid slug"),
        tick_units: 10,
        qty_min: 2,
        qty_max: 30,
        maker_fee_bps: 150,
        taker_fee_bps: 300,
        close_ts_micros: Some(400),
        lock_rule: engine::LockRule::CURRENT,
    }));
    ops.push(Op::CreateMarket(MarketParams {
        slug: Slug::new("old-rule").expect("a valid slug"),
        tick_units: 100,
        qty_min: 1,
        qty_max: 40,
        maker_fee_bps: 0,
        taker_fee_bps: 200,
        close_ts_micros: None,
        lock_rule: engine::LockRule::BufferAlways,
    }));
    // User 3 is poor and holds no shares, so funds and shares checks bite.
    for (user, dollars) in [(0, 500), (1, 500), (2, 200), (3, 3)] {
        ops.push(Op::Deposit {
            user: UserId(user),
            amount_micros: dollars * DOLLAR,
        });
    }
    for user in 0..3 {
        for market in 0..3 {
            ops.push(Op::Split {
                user: UserId(user),
                market: MarketId(market),
                qty: 15,
            });
        }
    }
    ops
}

/// Placeholders the generator uses for what it cannot know in advance; `resolve` swaps them
/// for real values against the state at the time the command runs.
/// An order id at or above `PICK_OPEN` picks one of the open orders (by index, modulo their
/// count); a user of `OWNER` is the picked order's owner; a client order id `replay-<k>`
/// re-sends the k-th earlier request that carried a client order id.
const PICK_OPEN: u64 = 1 << 40;
const OWNER: UserId = UserId(u32::MAX);
const REPLAY: &str = "replay-";

struct Resolver {
    requests_with_ids: Vec<PlaceOrder>,
}

impl Resolver {
    fn resolve(&self, op: Op, engine: &Engine) -> Op {
        let mut open: Vec<(OrderId, UserId)> = (0..engine.user_count())
            .flat_map(|u| engine.open_orders(UserId(u)))
            .map(|o| (o.order, o.user))
            .collect();
        open.sort();
        let pick = |id: OrderId| -> (OrderId, UserId) {
            if id.0 < PICK_OPEN || open.is_empty() {
                return (OrderId(id.0 % PICK_OPEN), UserId(0));
            }
            open[((id.0 - PICK_OPEN) % open.len() as u64) as usize]
        };
        let owner = |user: UserId, owner: UserId| if user == OWNER { owner } else { user };
        match op {
            Op::Cancel { user, order } => {
                let (order, by) = pick(order);
                Op::Cancel {
                    user: owner(user, by),
                    order,
                }
            }
            Op::Amend {
                user,
                order,
                qty,
                price_units,
            } => {
                let (order, by) = pick(order);
                Op::Amend {
                    user: owner(user, by),
                    order,
                    qty,
                    price_units,
                }
            }
            Op::Batch {
                user,
                cancels,
                places,
            } => Op::Batch {
                user,
                cancels: cancels.into_iter().map(|id| pick(id).0).collect(),
                places: places.into_iter().map(|p| self.replay(p)).collect(),
            },
            Op::Place(request) => Op::Place(self.replay(request)),
            other => other,
        }
    }

    fn replay(&self, request: PlaceOrder) -> PlaceOrder {
        let Some(id) = request.client_order_id else {
            return request;
        };
        let Some(k) = id.as_str().strip_prefix(REPLAY) else {
            return request;
        };
        if self.requests_with_ids.is_empty() {
            return request;
        }
        let k: usize = k.parse().expect("the generator writes numbers");
        self.requests_with_ids[k % self.requests_with_ids.len()]
    }

    fn learn(&mut self, events: &[Event]) {
        for event in events {
            if let Event::OrderAccepted { request, .. } = event {
                if request.client_order_id.is_some() {
                    self.requests_with_ids.push(*request);
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Mix {
    Trading,
    Lifecycle,
    Hostile,
}

fn user() -> impl Strategy<Value = UserId> {
    (0..USERS).prop_map(UserId)
}

fn market() -> impl Strategy<Value = MarketId> {
    (0u32..3).prop_map(MarketId)
}

/// Mostly one of the open orders; sometimes an id that may never have existed.
fn order_id() -> impl Strategy<Value = OrderId> {
    prop_oneof![
        1 => (1u64..40).prop_map(OrderId),
        4 => (0u64..64).prop_map(|k| OrderId(PICK_OPEN + k)),
    ]
}

/// Mostly the order's owner; sometimes anyone.
fn order_user() -> impl Strategy<Value = UserId> {
    prop_oneof![1 => user(), 4 => Just(OWNER)]
}

/// Prices cluster around 0.50 so orders cross often; tick 10 prices sometimes miss tick 100.
fn price(mix: Mix) -> BoxedStrategy<u16> {
    let near = (44u16..=56).prop_map(|p| p * 100);
    let fine = (440u16..=560).prop_map(|p| p * 10);
    match mix {
        Mix::Hostile => prop_oneof![
            6 => near,
            2 => fine,
            1 => Just(0u16),
            1 => Just(10_000u16),
            1 => Just(4_999u16),
        ]
        .boxed(),
        _ => prop_oneof![5 => near, 2 => fine, 1 => Just(100u16), 1 => Just(9_900u16)].boxed(),
    }
}

fn qty(mix: Mix) -> BoxedStrategy<u64> {
    match mix {
        Mix::Hostile => prop_oneof![6 => 1u64..25, 1 => Just(0u64), 1 => 40u64..100].boxed(),
        _ => prop_oneof![4 => 1u64..12, 1 => 12u64..40].boxed(),
    }
}

fn client_id() -> impl Strategy<Value = Option<ClientOrderId>> {
    prop_oneof![
        8 => Just(None),
        2 => (0u8..3).prop_map(|n| ClientOrderId::new(&format!("cid-{n}"))),
        1 => (0u8..16).prop_map(|n| ClientOrderId::new(&format!("{REPLAY}{n}"))),
    ]
}

fn stp() -> impl Strategy<Value = SelfTradePrevention> {
    prop_oneof![
        Just(SelfTradePrevention::CancelTaker),
        Just(SelfTradePrevention::CancelMaker),
        Just(SelfTradePrevention::CancelBoth),
        Just(SelfTradePrevention::DecrementAndCancel),
    ]
}

/// Options shared by limit and market orders.
#[derive(Clone, Copy, Debug)]
struct Common {
    user: UserId,
    market: MarketId,
    side: Side,
    outcome: Outcome,
    stp: SelfTradePrevention,
    client_order_id: Option<ClientOrderId>,
    reduce_only: bool,
}

fn common() -> impl Strategy<Value = Common> {
    (
        user(),
        market(),
        prop_oneof![Just(Side::Buy), Just(Side::Sell)],
        prop_oneof![Just(Outcome::Yes), Just(Outcome::No)],
        stp(),
        client_id(),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(user, market, side, outcome, stp, client_order_id, reduce_only)| Common {
                user,
                market,
                side,
                outcome,
                stp,
                client_order_id,
                reduce_only,
            },
        )
}

/// A LIMIT order; a GTD expiry is relative to the command's timestamp (filled in later).
fn limit_order(mix: Mix) -> impl Strategy<Value = PlaceOrder> {
    (
        common(),
        price(mix),
        qty(mix),
        prop_oneof![
            6 => Just(TimeInForce::Gtc),
            2 => Just(TimeInForce::Gtd),
            2 => Just(TimeInForce::Ioc),
            1 => Just(TimeInForce::Fok),
        ],
        // Hostile clients sometimes send an expiry that is already due.
        if matches!(mix, Mix::Hostile) {
            0u64..15
        } else {
            1u64..15
        },
        prop::bool::weighted(0.15),
    )
        .prop_map(|(c, price, qty, tif, expiry_in, post_only)| PlaceOrder {
            time_in_force: tif,
            expires_at_micros: (tif == TimeInForce::Gtd).then_some(expiry_in),
            post_only: post_only && matches!(tif, TimeInForce::Gtc | TimeInForce::Gtd),
            reduce_only: c.reduce_only,
            self_trade_prevention: c.stp,
            client_order_id: c.client_order_id,
            ..PlaceOrder::limit(c.user, c.market, c.side, c.outcome, price, qty)
        })
}

fn market_order(mix: Mix) -> impl Strategy<Value = PlaceOrder> {
    (
        common(),
        qty(mix),
        prop_oneof![3 => Just(None), 1 => (1i64..30_000_000).prop_map(Some)],
        prop_oneof![Just(TimeInForce::Ioc), Just(TimeInForce::Fok)],
        prop::option::weighted(0.3, price(mix)),
        prop::option::weighted(0.3, 0u32..2_000),
    )
        .prop_map(|(c, qty, cash, tif, worst, slippage)| {
            let by_cash = cash.is_some() && c.side == Side::Buy;
            PlaceOrder {
                qty: if by_cash { None } else { Some(qty) },
                cash_micros: if by_cash { cash } else { None },
                time_in_force: if by_cash { TimeInForce::Ioc } else { tif },
                reduce_only: c.reduce_only,
                self_trade_prevention: if by_cash {
                    SelfTradePrevention::CancelMaker
                } else {
                    c.stp
                },
                client_order_id: c.client_order_id,
                worst_price_units: worst,
                max_slippage_bps: slippage,
                ..PlaceOrder::market(c.user, c.market, c.side, c.outcome, qty)
            }
        })
}

fn any_order(mix: Mix) -> impl Strategy<Value = PlaceOrder> {
    prop_oneof![4 => limit_order(mix), 1 => market_order(mix)]
}

/// Ops a hostile client sends: each should be rejected, or do something odd but legal.
fn hostile_order(mix: Mix) -> impl Strategy<Value = PlaceOrder> {
    (any_order(mix), 0u8..6).prop_map(|(order, twist)| match twist {
        0 => PlaceOrder {
            order_type: OrderType::Market,
            ..order
        },
        1 => PlaceOrder {
            order_type: OrderType::Limit,
            ..order
        },
        2 => PlaceOrder {
            time_in_force: TimeInForce::Gtd,
            expires_at_micros: None,
            ..order
        },
        3 => PlaceOrder {
            market: MarketId(7),
            ..order
        },
        4 => PlaceOrder {
            user: UserId(9),
            ..order
        },
        _ => PlaceOrder {
            cash_micros: Some(5_000_000),
            ..order
        },
    })
}

fn op(mix: Mix) -> BoxedStrategy<Op> {
    let place = any_order(mix).prop_map(Op::Place);
    let cancel = (order_user(), order_id()).prop_map(|(user, order)| Op::Cancel { user, order });
    let cancel_all = (user(), prop::option::of(market()))
        .prop_map(|(user, market)| Op::CancelAll { user, market });
    let amend = (
        order_user(),
        order_id(),
        prop::option::of(qty(mix)),
        prop::option::of(price(mix)),
    )
        .prop_map(|(user, order, qty, price_units)| Op::Amend {
            user,
            order,
            qty,
            price_units,
        });
    let batch = (
        user(),
        prop::collection::vec(order_id(), 0..3),
        prop::collection::vec(any_order(mix), 0..4),
    )
        .prop_map(|(user, cancels, mut places)| {
            // Mostly the user's own orders; sometimes one of someone else's.
            for (i, place) in places.iter_mut().enumerate() {
                if i != 2 {
                    place.user = user;
                }
            }
            Op::Batch {
                user,
                cancels,
                places,
            }
        });
    let split =
        (user(), market(), 1u64..8).prop_map(|(user, market, qty)| Op::Split { user, market, qty });
    let merge =
        (user(), market(), 1u64..8).prop_map(|(user, market, qty)| Op::Merge { user, market, qty });
    // An operator's import moving shares (the same user twice is a reject to agree on).
    let transfer = (
        user(),
        user(),
        market(),
        prop_oneof![Just(Outcome::Yes), Just(Outcome::No)],
        1u64..8,
    )
        .prop_map(|(from, to, market, outcome, qty)| Op::TransferShares {
            from,
            to,
            market,
            outcome,
            qty,
        });
    let deposit = (user(), 1i64..50_000_000).prop_map(|(user, amount_micros)| Op::Deposit {
        user,
        amount_micros,
    });
    let withdraw = (user(), 1i64..200_000_000).prop_map(|(user, amount_micros)| Op::Withdraw {
        user,
        amount_micros,
    });
    let admin = (market(), 0u8..4, 0u16..=10_000).prop_map(|(market, what, payout)| match what {
        0 => Op::HaltMarket { market },
        1 => Op::ResumeMarket { market },
        2 => Op::CloseMarket { market },
        _ => Op::ResolveMarket {
            market,
            resolution: match payout % 3 {
                0 => Resolution::Yes,
                1 => Resolution::No,
                _ => Resolution::Split {
                    yes_payout_units: payout,
                },
            },
        },
    });
    // A market maker quoting a ladder of GTC orders away from the middle in one batch.
    let ladder = (
        user(),
        market(),
        prop_oneof![Just(Outcome::Yes), Just(Outcome::No)],
        prop::collection::vec((30u16..45, 1u64..6), 2..8),
    )
        .prop_map(|(user, market, outcome, rungs)| Op::Batch {
            user,
            cancels: Vec::new(),
            places: rungs
                .into_iter()
                .map(|(price, qty)| {
                    PlaceOrder::limit(user, market, Side::Buy, outcome, price * 100, qty)
                })
                .collect(),
        });
    match mix {
        Mix::Trading => prop_oneof![
            20 => place,
            4 => cancel,
            1 => cancel_all,
            4 => amend,
            2 => batch,
            2 => ladder,
            2 => split,
            2 => merge,
            1 => deposit,
            1 => withdraw,
            1 => Just(Op::Tick),
        ]
        .boxed(),
        Mix::Lifecycle => prop_oneof![
            12 => place,
            3 => cancel,
            3 => amend,
            1 => ladder,
            2 => split,
            2 => merge,
            1 => withdraw,
            1 => transfer,
            3 => admin,
            2 => Just(Op::Tick),
        ]
        .boxed(),
        Mix::Hostile => prop_oneof![
            8 => place,
            6 => hostile_order(mix).prop_map(Op::Place),
            4 => cancel,
            4 => amend,
            2 => batch,
            2 => split,
            2 => merge,
            2 => withdraw,
            1 => transfer,
            1 => admin,
        ]
        .boxed(),
    }
}

/// Ops with the time that passes before each (0 means the same microsecond).
fn sequence(mix: Mix) -> impl Strategy<Value = (Vec<(u64, Op)>, prop::sample::Index)> {
    let step = prop_oneof![3 => Just(0u64), 3 => 1u64..3, 1 => 3u64..40];
    (
        prop::collection::vec((step, op(mix)), 1..70),
        any::<prop::sample::Index>(),
    )
}

/// Turns relative GTD expiries into timestamps, now that the command's time is known.
fn stamp(ts: u64, op: Op) -> Command {
    let stamp_order = |order: &mut PlaceOrder| {
        if let Some(expiry_in) = order.expires_at_micros.as_mut() {
            *expiry_in += ts;
        }
    };
    let mut op = op;
    match &mut op {
        Op::Place(order) => stamp_order(order),
        Op::Batch { places, .. } => places.iter_mut().for_each(stamp_order),
        _ => {}
    }
    Command { ts_micros: ts, op }
}

const CONFIG: Config = Config {
    open_orders_per_user_max: 6,
    users_max: USERS,
    markets_max: 2,
};

/// The setup, then the generated ops, as (time step, op) pairs.
fn with_setup(ops: Vec<(u64, Op)>) -> impl Iterator<Item = (u64, Op)> {
    setup().into_iter().map(|op| (1, op)).chain(ops)
}

fn run(ops: Vec<(u64, Op)>, snapshot_at: prop::sample::Index) {
    let mut engine = Engine::new(CONFIG);
    let mut reference = Reference::new(CONFIG);
    let mut resolver = Resolver {
        requests_with_ids: Vec::new(),
    };
    let mut journal = Vec::new();
    let mut fills = FillAudit::default();
    let ops: Vec<(u64, Op)> = with_setup(ops).collect();
    let split_at = snapshot_at.index(ops.len() + 1);
    let mut restored = None;
    let (mut engine_events, mut reference_events) = (Vec::new(), Vec::new());
    let mut ts = 1;
    for (index, (delta, op)) in ops.into_iter().enumerate() {
        if index == split_at {
            let snapshot = engine.snapshot();
            restored = Some(Engine::restore(&snapshot).expect("a snapshot restores"));
        }
        ts += delta;
        let command = stamp(ts, resolver.resolve(op, &engine));
        engine_events.clear();
        reference_events.clear();
        let got = engine.apply(&command, &mut engine_events);
        let want = reference.apply(&command, &mut reference_events);
        let context = || format!("command {index}: {command:?}");
        assert_eq!(got, want, "result of {}", context());
        assert_eq!(engine_events, reference_events, "events of {}", context());
        if let Err(violation) = engine.check_invariants() {
            panic!("{violation} after {}", context());
        }
        assert_eq!(
            engine.snapshot(),
            reference.snapshot(),
            "state after {}",
            context()
        );
        compare_queries(&engine, &reference, &context);
        if let Some(restored) = restored.as_mut() {
            let mut events = Vec::new();
            let result = restored.apply(&command, &mut events);
            assert_eq!((result, &events), (got, &engine_events), "restored engine");
        }
        for event in &engine_events {
            if let Err(detail) = fills.absorb(event) {
                panic!("invariant 6: {detail} after {}", context());
            }
        }
        resolver.learn(&engine_events);
        journal.push(command);
    }
    let hash = engine.state_hash();
    if let Some(restored) = restored {
        assert_eq!(restored.state_hash(), hash, "snapshot, restore, continue");
    }
    let mut replayed = Engine::new(CONFIG);
    for command in &journal {
        let _ = replayed.apply(command, &mut Vec::new());
    }
    assert_eq!(replayed.state_hash(), hash, "replay of the journal");
}

/// Runs the ops on an engine alone and hands every command with its result and events.
fn drive(
    ops: Vec<(u64, Op)>,
    mut each: impl FnMut(&Command, Result<(), engine::Reject>, &[Event]),
) {
    let mut engine = Engine::new(CONFIG);
    let mut resolver = Resolver {
        requests_with_ids: Vec::new(),
    };
    let mut ts = 1;
    for (delta, op) in with_setup(ops) {
        ts += delta;
        let command = stamp(ts, resolver.resolve(op, &engine));
        let mut events = Vec::new();
        let result = engine.apply(&command, &mut events);
        resolver.learn(&events);
        each(&command, result, &events);
    }
}

fn compare_queries(engine: &Engine, reference: &Reference, context: &dyn Fn() -> String) {
    for order in reference.open_order_ids() {
        assert_eq!(
            engine.queue_position(order),
            reference.queue_position(order),
            "queue position of {order:?} after {}",
            context()
        );
    }
    for market in 0..engine.market_count() {
        let market = MarketId(market);
        let depth = engine.book_depth(market, usize::MAX).unwrap();
        assert_eq!(depth.bids, reference.depth(market, BookSide::Bid));
        assert_eq!(depth.asks, reference.depth(market, BookSide::Ask));
        let best = (
            depth.bids.first().map(|l| l.0),
            depth.asks.first().map(|l| l.0),
        );
        assert_eq!(engine.best_prices(market), Some(best));
    }
}

/// Every command and event of a sequence must survive a JSON round trip unchanged (the
/// server journals commands and streams events as JSON).
fn json_round_trips(ops: Vec<(u64, Op)>) {
    drive(ops, |command, _, events| {
        let json = serde_json::to_string(command).unwrap();
        assert_eq!(&serde_json::from_str::<Command>(&json).unwrap(), command);
        for event in events {
            let json = serde_json::to_string(event).unwrap();
            assert_eq!(&serde_json::from_str::<Event>(&json).unwrap(), event);
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_500))]
    #[test]
    fn trading_matches_the_reference((ops, at) in sequence(Mix::Trading)) {
        run(ops, at);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_500))]
    #[test]
    fn lifecycle_matches_the_reference((ops, at) in sequence(Mix::Lifecycle)) {
        run(ops, at);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]
    #[test]
    fn hostile_input_matches_the_reference((ops, at) in sequence(Mix::Hostile)) {
        run(ops, at);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn commands_and_events_round_trip_through_json((ops, _) in sequence(Mix::Hostile)) {
        json_round_trips(ops);
    }
}

/// The suites above are only as good as what they generate: a fixed-seed sample of their
/// sequences must reach every fill kind, every way an order ends and the rejects a client
/// can provoke.
#[test]
fn the_generated_sequences_reach_every_fill_kind_end_and_reject() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeMap;

    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    let mut runner = TestRunner::deterministic();
    for mix in [Mix::Trading, Mix::Lifecycle, Mix::Hostile] {
        for _ in 0..300 {
            let (ops, _) = sequence(mix).new_tree(&mut runner).unwrap().current();
            drive(ops, |_, result, events| {
                if let Err(reject) = result {
                    *seen.entry(format!("reject {reject:?}")).or_default() += 1;
                }
                for event in events {
                    let name = match event {
                        Event::Trade { kind, .. } => format!("trade {kind:?}"),
                        Event::OrderEnded { end, reason, .. } => format!("end {end:?} {reason:?}"),
                        Event::OrderAmended { priority_kept, .. } => {
                            format!("amended priority_kept={priority_kept}")
                        }
                        Event::BatchItemRejected { reason, .. } => format!("reject {reason:?}"),
                        other => format!("{other:?}")
                            .split([' ', '{'])
                            .next()
                            .unwrap()
                            .into(),
                    };
                    *seen.entry(name).or_default() += 1;
                }
            });
        }
    }
    let expected = [
        "trade YesTransfer",
        "trade NoTransfer",
        "trade Mint",
        "trade Merge",
        "end Filled None",
        "end Expired None",
        "end Cancelled Some(UserRequested)",
        "end Cancelled Some(SelfTrade)",
        "end Cancelled Some(Unfilled)",
        "end Cancelled Some(SlippageLimit)",
        "end Cancelled Some(MarketClosed)",
        "end Cancelled Some(MarketResolved)",
        "amended priority_kept=true",
        "amended priority_kept=false",
        "OrderReduced",
        "OrderReplayed",
        "Settlement",
        "SharesSplit",
        "SharesMerged",
        "Withdrawn",
        "reject UnknownUser",
        "reject UnknownMarket",
        "reject UnknownOrder",
        "reject NotOrderOwner",
        "reject MarketNotOpen",
        "reject InvalidMarketTransition",
        "reject PriceOffTick",
        "reject PriceOutOfRange",
        "reject QtyOutOfRange",
        "reject InvalidOrder",
        "reject ExpiryInPast",
        "reject InsufficientFunds",
        "reject InsufficientShares",
        "reject PostOnlyWouldTake",
        "reject FokNotFilled",
        "reject SlippageExceeded",
        "reject ClientOrderIdReused",
        "reject TooManyOpenOrders",
        "reject ReduceOnlyWouldIncrease",
        "reject NothingToAmend",
    ];
    let missing: Vec<&str> = expected
        .into_iter()
        .filter(|name| !seen.contains_key(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "never generated: {missing:?}\nseen: {seen:#?}"
    );
}
