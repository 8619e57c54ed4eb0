//! Quickstart: one market from creation to payout.
//!
//! Run with `cargo run -p engine --example quickstart`. It drives the engine the way the
//! server will: every change is a `Command` stamped with the sequencer's clock, and every
//! effect comes back as an `Event`. Money stays an integer throughout (prices in units of
//! $0.0001, cash in micro-dollars) and only becomes a decimal string when printed.
//!
//! The story: Alice buys YES and Bob buys NO, which creates 10 new YES/NO pairs (a *mint*);
//! then Alice sells 4 of her YES to Bob (a *transfer*); then the market resolves YES.

use engine::units::{MICROS_PER_PRICE_UNIT, MICROS_PER_SHARE};
use engine::{
    Command, Engine, Event, MarketId, MarketParams, Op, Outcome, PlaceOrder, Resolution, Side,
    Slug, UserId,
};

const NAMES: [&str; 2] = ["alice", "bob"];

/// The engine plus the two things a caller owns: the clock and the event buffer.
struct Exchange {
    engine: Engine,
    ts_micros: u64,
    events: Vec<Event>,
}

impl Exchange {
    /// Applies one command one microsecond after the last, panicking if it is rejected
    /// (nothing in this script should be).
    fn apply(&mut self, op: Op) -> &[Event] {
        self.ts_micros += 1;
        let command = Command {
            ts_micros: self.ts_micros,
            op,
        };
        self.events.clear();
        self.engine
            .apply(&command, &mut self.events)
            .expect("command accepted");
        &self.events
    }

    fn cash_micros(&self, user: UserId) -> i64 {
        let cash = self.engine.balance(user).expect("known user");
        cash.available_micros + cash.locked_micros
    }
}

/// Micro-dollars as dollars with at least two decimals, exactly: 102_741_200 -> "$102.7412".
fn dollars(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let micros = micros.unsigned_abs();
    let whole = micros / MICROS_PER_SHARE as u64;
    let fraction = format!("{:06}", micros % MICROS_PER_SHARE as u64);
    let fraction = fraction.trim_end_matches('0');
    format!("{sign}${whole}.{fraction:0<2}")
}

fn price(price_units: u16) -> String {
    dollars(price_units as i64 * MICROS_PER_PRICE_UNIT)
}

fn print_trades(events: &[Event]) {
    for event in events {
        if let Event::Trade {
            kind,
            qty,
            price_units,
            maker_user,
            taker_user,
            taker_fee_micros,
            ..
        } = event
        {
            println!(
                "trade: {kind:?} of {qty} @ {} (YES price), maker {}, taker {} pays fee {}",
                price(*price_units),
                NAMES[maker_user.0 as usize],
                NAMES[taker_user.0 as usize],
                dollars(*taker_fee_micros),
            );
        }
    }
}

fn main() {
    let mut ex = Exchange {
        engine: Engine::default(),
        ts_micros: 0,
        events: Vec::new(),
    };

    // A market priced in cents with a 7% taker fee on qty * p * (1 - p) and no maker fee.
    ex.apply(Op::CreateMarket(MarketParams {
        slug: Slug::new("will-it-rain-tomorrow").expect("a valid slug"),
        tick_units: 100,
        qty_min: 1,
        qty_max: 1_000,
        maker_fee_bps: 0,
        taker_fee_bps: 700,
        close_ts_micros: None,
        lock_rule: engine::LockRule::CURRENT,
    }));
    let market = MarketId(0);

    // Users get dense ids in order of creation: alice is 0, bob is 1.
    let (alice, bob) = (UserId(0), UserId(1));
    let deposit_micros = 100 * MICROS_PER_SHARE;
    for user in [alice, bob] {
        ex.apply(Op::CreateUser);
        ex.apply(Op::Deposit {
            user,
            amount_micros: deposit_micros,
        });
    }
    println!("deposited: alice {0}, bob {0}", dollars(deposit_micros));

    // 1. Mint. Alice bids 0.60 for YES and rests on the book (she is the maker). Bob's BUY NO
    //    at 0.40 is the same as offering YES at 0.60, so it trades: Alice pays $0.60 and Bob
    //    $0.40 per pair, and the $1.00 per pair goes into the market's escrow.
    ex.apply(Op::Place(PlaceOrder::limit(
        alice,
        market,
        Side::Buy,
        Outcome::Yes,
        6_000,
        10,
    )));
    let events = ex.apply(Op::Place(PlaceOrder::limit(
        bob,
        market,
        Side::Buy,
        Outcome::No,
        4_000,
        10,
    )));
    print_trades(events);

    // 2. Transfer. Bob bids 0.70 for 4 YES; Alice sells 4 of hers into that bid. No new
    //    shares: YES moves from Alice to Bob at the maker's price, 0.70.
    ex.apply(Op::Place(PlaceOrder::limit(
        bob,
        market,
        Side::Buy,
        Outcome::Yes,
        7_000,
        4,
    )));
    let events = ex.apply(Op::Place(PlaceOrder::limit(
        alice,
        market,
        Side::Sell,
        Outcome::Yes,
        6_500,
        4,
    )));
    print_trades(events);
    println!(
        "escrow before resolution: {}",
        dollars(ex.engine.escrow_micros(market).expect("known market"))
    );

    // 3. Resolution. Every YES share pays $1.00 out of escrow, every NO share nothing.
    let events = ex.apply(Op::ResolveMarket {
        market,
        resolution: Resolution::Yes,
    });
    for event in events {
        if let Event::Settlement {
            user,
            yes_shares,
            no_shares,
            payout_micros,
            ..
        } = event
        {
            println!(
                "resolved YES: {} holds {yes_shares} YES + {no_shares} NO, paid {}",
                NAMES[user.0 as usize],
                dollars(*payout_micros),
            );
        }
    }

    // The ledger is double-entry: nothing was created or lost, only moved.
    let (alice_micros, bob_micros) = (ex.cash_micros(alice), ex.cash_micros(bob));
    let fee_micros = ex.engine.fee_account_micros();
    let total_micros = alice_micros + bob_micros + fee_micros;
    let deposited_micros = -ex.engine.external_micros();
    println!("alice final cash: {}", dollars(alice_micros));
    println!("bob final cash:   {}", dollars(bob_micros));
    println!("fee account:      {}", dollars(fee_micros));
    println!(
        "total: {} + {} + {} = {} = deposited {}",
        dollars(alice_micros),
        dollars(bob_micros),
        dollars(fee_micros),
        dollars(total_micros),
        dollars(deposited_micros),
    );
    assert_eq!(total_micros, deposited_micros);
    assert_eq!(ex.engine.escrow_micros(market), Some(0));
    ex.engine.check_invariants().expect("invariants hold");
}
