//! The preview, natively: book mirroring with gap detection, exact figures on a known book, and
//! parity with the engine on random books and orders (the preview, made on aggregated levels,
//! must equal what the engine does when the order really meets the many makers behind them).
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;

use engine::units::MICROS_PER_SHARE;
use engine::{
    Command, Engine, Event, MarketId, MarketParams, Op, OrderType, Outcome, PlaceOrder, Side, Slug,
    TimeInForce, UserId,
};
use engine_wasm::decimal::{format_cash, format_price};
use engine_wasm::mirror::{DeltaStatus, Mirror, Preview};
use engine_wasm::wire::{Account, BookJson, BookMessage, LevelJson, MarketJson, OrderJson};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

fn market_json(tick: &str, maker: &str, taker: &str) -> MarketJson {
    serde_json::from_value(serde_json::json!({
        "tickSize": tick, "minQty": 1, "maxQty": 100000,
        "makerFeeRate": maker, "takerFeeRate": taker,
    }))
    .unwrap()
}

fn book(seq: u64, bids: &[(&str, u64)], asks: &[(&str, u64)]) -> BookJson {
    let levels = |levels: &[(&str, u64)]| {
        levels
            .iter()
            .map(|(price, qty)| LevelJson {
                price: price.to_string(),
                qty: *qty,
            })
            .collect()
    };
    BookJson {
        market_id: None,
        seq,
        bids: levels(bids),
        asks: levels(asks),
    }
}

fn order(value: serde_json::Value) -> OrderJson {
    serde_json::from_value(value).unwrap()
}

fn message(value: serde_json::Value) -> BookMessage {
    serde_json::from_value(value).unwrap()
}

fn mirror() -> Mirror {
    let params = market_json("0.01", "0", "0.07").params().unwrap();
    let book = book(
        10,
        &[("0.48", 10), ("0.47", 20)],
        &[("0.50", 5), ("0.52", 15)],
    );
    Mirror::new(params, &book).unwrap()
}

#[test]
fn deltas_apply_in_sequence_and_a_gap_asks_for_a_resync() {
    let mut mirror = mirror();
    let delta = |seq, side, price, qty| {
        message(serde_json::json!({
            "type": "delta", "topic": "book:m", "seq": seq,
            "data": {"changes": [{"side": side, "price": price, "qty": qty}]}
        }))
    };
    assert_eq!(
        mirror.apply(&delta(11, "ASK", "0.50", 0)),
        Ok(DeltaStatus::Applied)
    );
    assert_eq!(mirror.levels(engine::BookSide::Ask), vec![(5_200, 15)]);
    assert_eq!(
        mirror.apply(&delta(11, "BID", "0.49", 3)),
        Ok(DeltaStatus::Stale)
    );
    assert_eq!(
        mirror.apply(&delta(13, "BID", "0.49", 3)),
        Ok(DeltaStatus::Resync)
    );
    assert_eq!(
        mirror.levels(engine::BookSide::Bid),
        vec![(4_800, 10), (4_700, 20)]
    );
    assert_eq!(mirror.seq(), 11);
    let snapshot = message(serde_json::json!({
        "type": "snapshot", "topic": "book:m", "seq": 20, "resync": true,
        "data": {"seq": 20, "bids": [{"price": "0.40", "qty": 1}], "asks": []}
    }));
    assert_eq!(mirror.apply(&snapshot), Ok(DeltaStatus::Applied));
    assert_eq!(
        (mirror.seq(), mirror.levels(engine::BookSide::Bid)),
        (20, vec![(4_000, 1)])
    );
    let bad = delta(21, "MIDDLE", "0.41", 1);
    assert_eq!(mirror.apply(&bad).unwrap_err().code, "VALIDATION_FAILED");
    assert_eq!(mirror.seq(), 20);
}

#[test]
fn a_crossed_or_malformed_snapshot_is_refused() {
    let params = market_json("0.01", "0", "0").params().unwrap();
    let crossed = book(1, &[("0.55", 1)], &[("0.50", 1)]);
    assert!(Mirror::new(params, &crossed).is_err());
    let malformed = book(1, &[("half", 1)], &[]);
    assert!(Mirror::new(params, &malformed).is_err());
}

#[test]
fn a_buy_that_sweeps_two_levels_and_rests_shows_every_figure() {
    let mut mirror = mirror();
    let buy = order(serde_json::json!({
        "side": "BUY", "outcome": "YES", "type": "LIMIT", "price": "0.52", "qty": 30
    }));
    let account = Account {
        available_micros: 100 * MICROS_PER_SHARE,
        yes_shares: 0,
        no_shares: 0,
    };
    let preview = mirror.preview(&buy, Some(account));
    assert!(preview.accepted, "{preview:?}");
    let fills: Vec<(String, u64, String)> = preview
        .fills
        .iter()
        .map(|f| (f.price.clone(), f.qty, f.fee.clone()))
        .collect();
    // 7% of 5 x 0.5 x 0.5 = 0.0875; the running total after 15 more at 0.52 is
    // 0.07 x (1.25 + 15 x 0.2496) = 0.34958 exactly, so the second fill adds 0.26208.
    assert_eq!(
        fills,
        vec![
            ("0.50".into(), 5, "0.0875".into()),
            ("0.52".into(), 15, "0.26208".into())
        ]
    );
    assert_eq!((preview.filled_qty, preview.unfilled_qty), (20, 10));
    assert_eq!(preview.avg_price.as_deref(), Some("0.515"));
    assert_eq!(preview.worst_price.as_deref(), Some("0.52"));
    // Against the best ask 0.50: +3%; against the mid 0.49: about +5.1%.
    assert_eq!(preview.slippage_bps_vs_best.as_deref(), Some("300"));
    assert_eq!(preview.slippage_bps_vs_mid.as_deref(), Some("510.2"));
    assert_eq!(preview.fees, "0.34958");
    // 2.50 + 7.80 for the shares, 0.34958 in fees.
    assert_eq!(preview.cash_delta, "-10.64958");
    assert_eq!(preview.status.as_deref(), Some("PARTIALLY_FILLED"));
    let rests = preview.rests.clone().unwrap();
    assert_eq!((rests.price.as_str(), rests.qty), ("0.52", 10));
    // 10 x 0.52 + the fee reserve 0.07 x 10 x 0.25, and no rounding buffer: the market has no
    // maker fee.
    assert_eq!(preview.cash_locked, "5.375");
    assert_eq!(preview.position.unwrap().yes_shares, 20);
}

#[test]
fn the_lock_follows_the_markets_rule_and_maker_fee() {
    let resting_buy = order(serde_json::json!({
        "side": "BUY", "outcome": "YES", "type": "LIMIT", "price": "0.40", "qty": 10
    }));
    let exact = |micros| Account {
        available_micros: micros,
        yes_shares: 0,
        no_shares: 0,
    };
    let empty = book(1, &[], &[]);
    let locked = |market: serde_json::Value, micros| {
        let params = serde_json::from_value::<MarketJson>(market)
            .unwrap()
            .params()
            .unwrap();
        let mut mirror = Mirror::new(params, &empty).unwrap();
        let preview = mirror.preview(&resting_buy, Some(exact(micros)));
        (preview.accepted, preview.cash_locked)
    };
    let market = |maker: &str, rule: Option<&str>| {
        let mut market = serde_json::json!({
            "tickSize": "0.01", "minQty": 1, "maxQty": 1000,
            "makerFeeRate": maker, "takerFeeRate": "0.07",
        });
        if let Some(rule) = rule {
            market["lockRule"] = rule.into();
        }
        market
    };
    // No maker fee: exactly 4.00 + ceil(0.07 x 10 x 0.24) = 4.168 places it; a micro less not.
    let current = market("0", Some("BUFFER_FOR_MAKER_FEE"));
    assert_eq!(locked(current.clone(), 4_168_000), (true, "4.168".into()));
    assert!(!locked(current, 4_167_999).0);
    assert_eq!(locked(market("0", None), 4_168_000), (true, "4.168".into()));
    // A maker fee keeps one micro-dollar per share for its per-fill rounding.
    let maker_fee = market("0.02", Some("BUFFER_FOR_MAKER_FEE"));
    assert_eq!(
        locked(maker_fee.clone(), 4_168_010),
        (true, "4.16801".into())
    );
    assert!(!locked(maker_fee, 4_168_009).0);
    // A market created under the old rule keeps the buffer whatever the fees.
    let old = market("0", Some("BUFFER_ALWAYS"));
    assert_eq!(locked(old.clone(), 4_168_010), (true, "4.16801".into()));
    assert!(!locked(old, 4_168_000).0);
    // An unknown rule is refused, not guessed.
    let unknown = serde_json::from_value::<MarketJson>(market("0", Some("SOMETIMES"))).unwrap();
    assert_eq!(unknown.params().unwrap_err().code, "VALIDATION_FAILED");
}

#[test]
fn rejects_are_the_servers() {
    let mut mirror = mirror();
    let poor = Account {
        available_micros: MICROS_PER_SHARE,
        yes_shares: 0,
        no_shares: 0,
    };
    let cases = [
        (
            serde_json::json!({"side": "BUY", "outcome": "YES", "type": "LIMIT", "price": "0.505", "qty": 1}),
            "PRICE_OFF_TICK",
        ),
        (
            serde_json::json!({"side": "BUY", "outcome": "YES", "type": "LIMIT", "price": "0.5", "qty": 10}),
            "INSUFFICIENT_FUNDS",
        ),
        (
            serde_json::json!({"side": "SELL", "outcome": "NO", "type": "LIMIT", "price": "0.5", "qty": 1}),
            "INSUFFICIENT_SHARES",
        ),
        (
            serde_json::json!({"side": "BUY", "outcome": "YES", "type": "LIMIT", "price": "0.5", "qty": 1, "postOnly": true}),
            "POST_ONLY_WOULD_TAKE",
        ),
        (
            serde_json::json!({"side": "BUY", "outcome": "YES", "type": "LIMIT", "price": "0.5", "qty": 0}),
            "QTY_OUT_OF_RANGE",
        ),
        (
            serde_json::json!({"side": "BUY", "outcome": "YES", "type": "MARKET", "qty": 1, "worstPrice": "0.49"}),
            "SLIPPAGE_EXCEEDED",
        ),
        (
            serde_json::json!({"side": "BUY", "outcome": "YES", "type": "LIMIT", "price": "abc", "qty": 1}),
            "VALIDATION_FAILED",
        ),
    ];
    for (body, code) in cases {
        let preview = mirror.preview(&order(body.clone()), Some(poor));
        assert!(!preview.accepted, "{body}");
        assert_eq!(preview.reject.unwrap().code, code, "{body}");
    }
}

/// A native engine whose book is `levels` spread over several makers per level, and a taker
/// holding `account` (its shares as YES/NO pairs).
fn native(params: &MarketParams, levels: &[(Outcome, u16, Vec<u64>)], account: Account) -> Engine {
    let mut engine = Engine::default();
    let mut events = Vec::new();
    let mut apply = |engine: &mut Engine, op| {
        engine
            .apply(&Command { ts_micros: 0, op }, &mut events)
            .unwrap_or_else(|r| panic!("{r}"));
        events.clear();
    };
    apply(&mut engine, Op::CreateMarket(*params));
    let makers = 4;
    for user in 0..=makers {
        apply(&mut engine, Op::CreateUser);
        let amount_micros = if user == makers {
            account.available_micros + account.yes_shares as i64 * MICROS_PER_SHARE
        } else {
            1_000_000 * MICROS_PER_SHARE
        };
        if amount_micros > 0 {
            apply(
                &mut engine,
                Op::Deposit {
                    user: UserId(user),
                    amount_micros,
                },
            );
        }
    }
    if account.yes_shares > 0 {
        let split = Op::Split {
            user: UserId(makers),
            market: MarketId(0),
            qty: account.yes_shares,
        };
        apply(&mut engine, split);
    }
    for (index, (outcome, price, parts)) in levels.iter().enumerate() {
        for (part, qty) in parts.iter().enumerate() {
            let user = UserId(((index + part) % makers as usize) as u32);
            let order = PlaceOrder::limit(user, MarketId(0), Side::Buy, *outcome, *price, *qty);
            apply(&mut engine, Op::Place(order));
        }
    }
    engine
}

/// The taker's fills per YES price, its fee, what rests, its cash change and position, or its
/// reject code; from the engine's events.
/// A taker's result, fills per YES price, total fee, resting qty, cash change and position.
type Outcome6 = (
    Result<(), String>,
    BTreeMap<String, u64>,
    String,
    Option<u64>,
    String,
    (u64, u64),
);

fn taker_outcome(engine: &mut Engine, request: PlaceOrder) -> Outcome6 {
    let taker = request.user;
    let before = engine.balance(taker).unwrap();
    let mut events = Vec::new();
    let result = engine
        .apply(
            &Command {
                ts_micros: 1,
                op: Op::Place(request),
            },
            &mut events,
        )
        .map_err(|r| r.code().to_string());
    let (mut fills, mut fee, mut rests) = (BTreeMap::new(), 0, None);
    for event in &events {
        match event {
            Event::Trade {
                price_units,
                qty,
                taker_fee_micros,
                ..
            } => {
                *fills.entry(format_price(*price_units)).or_default() += qty;
                fee += taker_fee_micros;
            }
            Event::OrderRested { remaining_qty, .. } => rests = Some(*remaining_qty),
            _ => {}
        }
    }
    let after = engine.balance(taker).unwrap();
    let delta = after.available_micros + after.locked_micros
        - before.available_micros
        - before.locked_micros;
    let position = engine.position(taker, MarketId(0));
    let held = (position.total(Outcome::Yes), position.total(Outcome::No));
    (
        result,
        fills,
        format_cash(fee),
        rests,
        format_cash(delta),
        held,
    )
}

fn preview_outcome(preview: &Preview) -> Outcome6 {
    let result = match &preview.reject {
        None => Ok(()),
        Some(reject) => Err(reject.code.clone()),
    };
    let fills = preview
        .fills
        .iter()
        .map(|f| (f.yes_price.clone(), f.qty))
        .collect();
    let position = preview
        .position
        .as_ref()
        .map_or((0, 0), |p| (p.yes_shares, p.no_shares));
    (
        result,
        fills,
        preview.fees.clone(),
        preview.rests.as_ref().map(|r| r.qty),
        preview.cash_delta.clone(),
        position,
    )
}

/// A random market (tick, maker and taker fees), book (levels as (is a bid, ticks from 0.50,
/// the makers' sizes)), order and account.
#[derive(Clone, Debug)]
struct Scenario {
    tick: u16,
    maker: i32,
    taker: i32,
    levels: Vec<(bool, u16, Vec<u64>)>,
    request: PlaceOrder,
    account: Account,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let tick = prop_oneof![Just(100u16), Just(10u16)];
    let fees = (0i32..=700).prop_flat_map(|taker| (-taker..=taker, Just(taker)));
    let levels = prop::collection::vec(
        (
            any::<bool>(),
            1u16..=12,
            prop::collection::vec(1u64..30, 1..4),
        ),
        2..14,
    );
    let order = (
        prop_oneof![Just(Side::Buy), Just(Side::Sell)],
        prop_oneof![Just(Outcome::Yes), Just(Outcome::No)],
        prop_oneof![3 => Just(OrderType::Limit), 1 => Just(OrderType::Market)],
        prop_oneof![
            Just(TimeInForce::Gtc),
            Just(TimeInForce::Ioc),
            Just(TimeInForce::Fok)
        ],
        35u16..=65,
        1u64..150,
        prop::option::weighted(0.2, 1i64..40),
        prop::option::weighted(0.2, 0u32..3_000),
        any::<bool>(),
    );
    // Mostly enough to pay, sometimes not.
    let account = (
        prop_oneof![1 => 0i64..20, 4 => 20i64..500],
        prop_oneof![1 => 0u64..10, 3 => 10u64..200],
    );
    (tick, fees, levels, order, account).prop_map(
        |(tick, (maker, taker), levels, o, (dollars, pairs))| {
            let (side, outcome, order_type, tif, price, qty, cash, slippage, post_only) = o;
            let mut request =
                PlaceOrder::limit(UserId(4), MarketId(0), side, outcome, price * 100, qty);
            if order_type == OrderType::Market {
                request = PlaceOrder::market(UserId(4), MarketId(0), side, outcome, qty);
                request.time_in_force = if tif == TimeInForce::Fok {
                    TimeInForce::Fok
                } else {
                    TimeInForce::Ioc
                };
                request.max_slippage_bps = slippage;
                if side == Side::Buy && cash.is_some() {
                    (request.qty, request.cash_micros) = (None, cash.map(|c| c * MICROS_PER_SHARE));
                    request.time_in_force = TimeInForce::Ioc;
                }
            } else {
                request.time_in_force = tif;
                request.post_only = post_only && tif == TimeInForce::Gtc;
            }
            // Bids below 0.50 and asks above, `step` ticks from the middle.
            let levels = levels
                .into_iter()
                .map(|(bid, step, parts)| (bid, step * tick.max(100) / 100 * tick, parts))
                .collect();
            let account = Account {
                available_micros: dollars * MICROS_PER_SHARE,
                yes_shares: pairs,
                no_shares: pairs,
            };
            Scenario {
                tick,
                maker,
                taker,
                levels,
                request,
                account,
            }
        },
    )
}

/// One parity case: the preview's outcome and the engine's, side by side.
fn parity(scenario: Scenario) -> (Outcome6, Outcome6) {
    let Scenario {
        tick,
        maker,
        taker,
        levels,
        request,
        account,
    } = scenario;
    let params = MarketParams {
        slug: Slug::new("parity").expect("a valid slug"),
        tick_units: tick,
        qty_min: 1,
        qty_max: 100_000,
        maker_fee_bps: maker,
        taker_fee_bps: taker,
        close_ts_micros: None,
        lock_rule: engine::LockRule::CURRENT,
    };
    let levels: Vec<(Outcome, u16, Vec<u64>)> = levels
        .into_iter()
        .map(|(bid, step, parts)| {
            let outcome = if bid { Outcome::Yes } else { Outcome::No };
            (outcome, 5_000 - step, parts)
        })
        .collect();
    let mut engine = native(&params, &levels, account);
    let depth = engine.book_depth(MarketId(0), usize::MAX).unwrap();
    let to_levels = |levels: &[(u16, u64)]| {
        levels
            .iter()
            .map(|(p, q)| LevelJson {
                price: format_price(*p),
                qty: *q,
            })
            .collect()
    };
    let snapshot = BookJson {
        market_id: None,
        seq: 1,
        bids: to_levels(&depth.bids),
        asks: to_levels(&depth.asks),
    };
    let market = serde_json::from_value::<MarketJson>(serde_json::json!({
        "tickSize": format_price(tick), "minQty": 1, "maxQty": 100_000,
        "makerFeeRate": format_cash(maker as i64 * 100),
        "takerFeeRate": format_cash(taker as i64 * 100),
    }))
    .unwrap();
    let mut mirror = Mirror::new(market.params().unwrap(), &snapshot).unwrap();
    let body = order(serde_json::json!({
        "side": request.side, "outcome": request.outcome, "type": request.order_type,
        "price": request.price_units.map(format_price), "qty": request.qty,
        "cashAmount": request.cash_micros.map(format_cash),
        "timeInForce": request.time_in_force, "postOnly": request.post_only,
        "maxSlippageBps": request.max_slippage_bps,
    }));
    let preview = mirror.preview(&body, Some(account));
    // A reject is compared by its code alone: nothing else happened.
    let only_code = |outcome: Outcome6| match outcome.0 {
        Ok(()) => outcome,
        Err(code) => (
            Err(code),
            BTreeMap::new(),
            String::new(),
            None,
            String::new(),
            (0, 0),
        ),
    };
    (
        only_code(preview_outcome(&preview)),
        only_code(taker_outcome(&mut engine, request)),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]
    #[test]
    fn the_preview_equals_what_the_engine_does(case in scenario()) {
        let (preview, engine) = parity(case);
        prop_assert_eq!(preview, engine);
    }
}

/// The parity cases are only as good as their variety: a fixed-seed sample must include
/// multi-level fills, resting rests, and rejects of several kinds.
#[test]
fn the_parity_cases_fill_rest_and_reject() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut multi_level, mut rested, mut rejects) = (0, 0, std::collections::BTreeSet::new());
    for _ in 0..500 {
        let case = scenario().new_tree(&mut runner).unwrap().current();
        let (preview, _) = parity(case);
        match &preview.0 {
            Err(code) => {
                rejects.insert(code.clone());
            }
            Ok(()) => {
                multi_level += (preview.1.len() > 1) as u32;
                rested += preview.3.is_some() as u32;
            }
        }
    }
    assert!(
        multi_level > 50 && rested > 50,
        "{multi_level} multi-level, {rested} rested"
    );
    assert!(rejects.len() >= 4, "{rejects:?}");
}
