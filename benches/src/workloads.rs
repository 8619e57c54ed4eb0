//! The workloads: `standard` of `../shared/WORKLOAD.md`, exactly (splitmix64 seeded with 42,
//! 1,000,000 operations on one market, the draws in the order the page fixes), and the ones
//! beside it, built from the same generator with other shapes.
//!
//! Owns the streams and their counts. A stream depends on matching results (a limit order that
//! rests joins the `resting` list that cancels draw from), so it is generated as it runs,
//! inside the timed loop: the figures include the generator, which is the conservative way to
//! count. It must never change `standard`: new workloads go beside it under new names.

use engine::units::{complement_units, MICROS_PER_SHARE, OPEN_ORDERS_PER_USER_LIMIT};
use engine::{
    Command, Config, Engine, Event, MarketId, MarketParams, Op, OrderId, Outcome, PlaceOrder,
    Reject, Resolution, Side, Slug, UserId,
};
use serde::Serialize;
use sim::rng::SplitMix64;

pub const SEED: u64 = 42;
/// Prices are in ticks of 0.001: `t` ticks are `10 * t` engine price units.
const UNITS_PER_TICK: u16 = 10;

/// What a stream draws and how often. `standard` is one instance; the others change it.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub markets: u32,
    /// Users on each side: bid-side orders belong to `0..n`, ask-side ones to `n..2n`.
    pub side_users: u32,
    /// `r < limit_below` places a limit order, `r < cancel_below` cancels, the rest are
    /// market orders (`r` is `uniform(100)`).
    pub limit_below: u64,
    pub cancel_below: u64,
    /// Limit prices are `price_low + uniform(price_span)` ticks on the bid side; the ask side
    /// mirrors them when `passive` (no order crosses), else draws the same range.
    pub price_low: u16,
    pub price_span: u64,
    pub passive: bool,
    pub qty_max: u64,
    pub market_qty_max: u64,
}

pub const STANDARD: Shape = Shape {
    markets: 1,
    side_users: 500,
    limit_below: 60,
    cancel_below: 85,
    price_low: 490,
    price_span: 21,
    passive: false,
    qty_max: 100,
    market_qty_max: 100,
};

/// A named workload: an untimed warm-up stream, then the timed one.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub name: &'static str,
    pub warmup: Option<(Shape, u64)>,
    pub shape: Shape,
    pub ops: u64,
}

pub const WORKLOADS: [Workload; 4] = [
    Workload {
        name: "standard",
        warmup: None,
        shape: STANDARD,
        ops: 1_000_000,
    },
    Workload {
        name: "many-markets",
        warmup: None,
        shape: Shape {
            markets: 1_000,
            side_users: 5_000,
            ..STANDARD
        },
        ops: 1_000_000,
    },
    Workload {
        name: "cancel-heavy",
        // 1,000,000 passive orders first, then nine cancels for every new passive order (the
        // book never runs dry, so nearly every cancel finds its order).
        warmup: Some((DEEP_BOOK, 1_000_000)),
        shape: Shape {
            limit_below: 10,
            cancel_below: 100,
            ..DEEP_BOOK
        },
        ops: 1_000_000,
    },
    Workload {
        name: "deep-book",
        // 1,000,000 resting orders on 998 price levels, then market orders sweeping them.
        warmup: Some((DEEP_BOOK, 1_000_000)),
        shape: Shape {
            limit_below: 0,
            cancel_below: 0,
            ..DEEP_BOOK
        },
        ops: 100_000,
    },
];

const DEEP_BOOK: Shape = Shape {
    markets: 1,
    side_users: 500,
    limit_below: 100,
    cancel_below: 100,
    price_low: 1,
    price_span: 499,
    passive: true,
    qty_max: 100,
    market_qty_max: 500,
};

pub fn workload(name: &str) -> Option<Workload> {
    WORKLOADS.into_iter().find(|w| w.name == name)
}

/// Nothing may be rejected but cancels of finished orders (and market orders that find the
/// book empty).
pub fn engine_config() -> Config {
    Config {
        open_orders_per_user_max: OPEN_ORDERS_PER_USER_LIMIT,
        ..Config::default()
    }
}

/// The markets and the users with their money.
fn setup(shape: &Shape) -> Vec<Command> {
    let mut ops = Vec::new();
    for market in 0..shape.markets {
        ops.push(Op::CreateMarket(MarketParams {
            slug: Slug::new(&format!("market-{market}")).expect("a valid slug"),
            tick_units: UNITS_PER_TICK,
            qty_min: 1,
            qty_max: shape.qty_max.max(shape.market_qty_max),
            maker_fee_bps: 0,
            taker_fee_bps: 0,
            close_ts_micros: None,
            lock_rule: engine::LockRule::CURRENT,
        }));
    }
    // A billion dollars each, or a hundred million when that many would pass the exchange's
    // cash cap (CASH_IN_SYSTEM_MICROS_MAX).
    let dollars = if shape.side_users <= 1_000 {
        1_000_000_000
    } else {
        100_000_000
    };
    for user in 0..2 * shape.side_users {
        ops.push(Op::CreateUser);
        ops.push(Op::Deposit {
            user: UserId(user),
            amount_micros: dollars * MICROS_PER_SHARE,
        });
    }
    ops.into_iter()
        .map(|op| Command { ts_micros: 0, op })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Limit,
    Cancel,
    /// A cancel drawn while `resting` is empty: no command, but an operation all the same.
    Nothing,
    Market,
}

/// An entry of the `resting` list: the order and its owner, who sends the cancel. Half the
/// size of `(OrderId, UserId)`: a cancel reads a random entry of a list tens of thousands
/// long, and that read is the generator's one cache miss, so the list is kept small.
#[derive(Clone, Copy, Debug)]
struct Resting {
    order: u32,
    user: u32,
}

/// A command to be rewritten by the draws, at time 0.
fn template(op: Op) -> Command {
    Command { ts_micros: 0, op }
}

/// The order a placing command's draws rewrite.
#[inline]
fn place_order(command: &mut Command) -> &mut PlaceOrder {
    match &mut command.op {
        Op::Place(order) => order,
        _ => unreachable!("a placing template"),
    }
}

/// A stream of operations: `draw` draws one, `observe` feeds back what the engine did.
pub struct Stream {
    shape: Shape,
    rng: SplitMix64,
    resting: Vec<Resting>,
    /// One command of each kind, rewritten in place by each draw: only the fields a draw sets
    /// change, instead of a whole 136-byte command being built and moved per operation.
    limit: Command,
    market: Command,
    cancel: Command,
    /// The kind of the last command drawn, which `command` returns.
    last: Kind,
    /// The owner of the last limit order drawn: `observe` files it with the order if it rests.
    last_limit_user: UserId,
    index: u64,
    end: u64,
}

impl Stream {
    pub fn new(shape: Shape, ops: u64) -> Stream {
        Stream {
            shape,
            rng: SplitMix64::new(SEED),
            resting: Vec::new(),
            limit: template(Op::Place(PlaceOrder::limit(
                UserId(0),
                MarketId(0),
                Side::Buy,
                Outcome::Yes,
                0,
                0,
            ))),
            market: template(Op::Place(PlaceOrder::market(
                UserId(0),
                MarketId(0),
                Side::Buy,
                Outcome::Yes,
                0,
            ))),
            cancel: template(Op::Cancel {
                user: UserId(0),
                order: OrderId(0),
            }),
            last: Kind::Nothing,
            last_limit_user: UserId(0),
            index: 0,
            end: ops,
        }
    }

    /// Goes on from another stream's state (its generator and resting orders) with a new
    /// shape, for `ops` more operations.
    pub fn continue_as(self, shape: Shape, ops: u64) -> Stream {
        Stream {
            shape,
            end: self.index + ops,
            ..self
        }
    }

    /// Draws the next operation, applies it to `engine` (a `Kind::Nothing` applies nothing)
    /// and feeds back what it did; the caller reads `events`, then clears them. `None` after
    /// the last operation.
    #[inline]
    pub fn step(
        &mut self,
        engine: &mut Engine,
        events: &mut Vec<Event>,
    ) -> Option<(Kind, Result<(), Reject>)> {
        let kind = self.draw()?;
        let result = match kind {
            Kind::Nothing => Ok(()),
            _ => engine.apply(self.command(), events),
        };
        self.observe(kind, events);
        Some((kind, result))
    }

    /// The command of the last operation drawn (after a `Kind::Nothing`, the one before).
    pub fn command(&self) -> &Command {
        match self.last {
            Kind::Limit | Kind::Nothing => &self.limit,
            Kind::Cancel => &self.cancel,
            Kind::Market => &self.market,
        }
    }

    /// Draws the next operation into its kind's command, or `None` after the last.
    #[inline]
    fn draw(&mut self) -> Option<Kind> {
        if self.index == self.end {
            return None;
        }
        let i = self.index;
        self.index += 1;
        let r = self.rng.uniform(100);
        let kind = if r < self.shape.limit_below {
            self.draw_limit(i);
            Kind::Limit
        } else if r < self.shape.cancel_below {
            if !self.draw_cancel(i) {
                return Some(Kind::Nothing);
            }
            Kind::Cancel
        } else {
            self.draw_market(i);
            Kind::Market
        };
        self.last = kind;
        Some(kind)
    }

    /// Draws (market,) side, price, qty, in that order.
    #[inline]
    fn draw_limit(&mut self, i: u64) {
        let market = self.draw_market_id();
        let side = self.rng.uniform(2);
        let mut price_ticks = self.shape.price_low + self.rng.uniform(self.shape.price_span) as u16;
        if self.shape.passive && side == 1 {
            price_ticks = 1_000 - price_ticks;
        }
        let qty = 1 + self.rng.uniform(self.shape.qty_max);
        let price_units = price_ticks * UNITS_PER_TICK;
        let (user, outcome, units) = self.party(i, side, price_units);
        self.last_limit_user = user;
        self.limit.ts_micros = i;
        let order = place_order(&mut self.limit);
        (order.user, order.market, order.outcome) = (user, market, outcome);
        (order.price_units, order.qty) = (Some(units), Some(qty));
    }

    /// Draws the order to cancel; false when there is none.
    #[inline]
    fn draw_cancel(&mut self, i: u64) -> bool {
        if self.resting.is_empty() {
            return false;
        }
        let k = self.rng.uniform(self.resting.len() as u64) as usize;
        let Resting { order, user } = self.resting.swap_remove(k);
        self.cancel = Command {
            ts_micros: i,
            op: Op::Cancel {
                user: UserId(user),
                order: OrderId(order.into()),
            },
        };
        true
    }

    #[inline]
    fn draw_market(&mut self, i: u64) {
        let market = self.draw_market_id();
        let side = self.rng.uniform(2);
        let qty = 1 + self.rng.uniform(self.shape.market_qty_max);
        let (user, outcome, _) = self.party(i, side, 0);
        self.market.ts_micros = i;
        let order = place_order(&mut self.market);
        (order.user, order.market, order.outcome) = (user, market, outcome);
        order.qty = Some(qty);
    }

    /// Only drawn when there is more than one market, so `standard`'s draws are untouched.
    #[inline]
    fn draw_market_id(&mut self) -> MarketId {
        if self.shape.markets == 1 {
            return MarketId(0);
        }
        MarketId(self.rng.uniform(self.shape.markets as u64) as u32)
    }

    /// Bid side: user `i % n` buys YES at p; ask side: user `n + i % n` buys NO at 1 - p
    /// (resting on the YES ask at p). No order ever meets its own user's.
    #[inline]
    fn party(&self, i: u64, side: u64, yes_units: u16) -> (UserId, Outcome, u16) {
        let n = self.shape.side_users;
        let offset = (i % n as u64) as u32;
        if side == 0 {
            (UserId(offset), Outcome::Yes, yes_units)
        } else {
            let no_units = if yes_units == 0 {
                0
            } else {
                complement_units(yes_units)
            };
            (UserId(n + offset), Outcome::No, no_units)
        }
    }

    /// A limit order that left quantity on the book joins `resting`.
    #[inline]
    fn observe(&mut self, kind: Kind, events: &[Event]) {
        if kind != Kind::Limit {
            return;
        }
        for event in events {
            if let Event::OrderRested { order, .. } = event {
                self.resting.push(Resting {
                    order: u32::try_from(order.0).expect("a workload places under 2^32 orders"),
                    user: self.last_limit_user.0,
                });
                return;
            }
        }
    }
}

/// The counts WORKLOAD.md defines, and the others it quotes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub trades: u64,
    pub filled_qty: u64,
    pub cancels_missed: u64,
    pub cancels_hit: u64,
    pub cancels_on_empty: u64,
    pub market_orders: u64,
    pub market_orders_on_empty_book: u64,
    pub market_qty_unfilled: u64,
    pub resting_orders: u64,
    pub resting_qty: u64,
    pub best_bid_units: Option<u16>,
    pub best_ask_units: Option<u16>,
}

/// The expected counts of `standard` (WORKLOAD.md).
pub fn standard_expected_counts() -> Counts {
    Counts {
        trades: 705_767,
        filled_qty: 17_998_988,
        cancels_missed: 228_512,
        cancels_hit: 22_428,
        cancels_on_empty: 0,
        market_orders: 149_591,
        market_orders_on_empty_book: 17,
        market_qty_unfilled: 1_781,
        resting_orders: 13_602,
        resting_qty: 688_411,
        best_bid_units: Some(4_960),
        best_ask_units: Some(5_000),
    }
}

impl Counts {
    fn record(&mut self, kind: Kind, command: &Command, result: Result<(), Reject>) {
        match (kind, result) {
            (Kind::Nothing, _) => self.cancels_on_empty += 1,
            (Kind::Cancel, Ok(())) => self.cancels_hit += 1,
            (Kind::Cancel, Err(_)) => self.cancels_missed += 1,
            (Kind::Market, result) => {
                self.market_orders += 1;
                if result == Err(Reject::SlippageExceeded) {
                    self.market_orders_on_empty_book += 1;
                    if let Op::Place(order) = &command.op {
                        self.market_qty_unfilled += order.qty.unwrap_or(0);
                    }
                }
            }
            (Kind::Limit, _) => {}
        }
    }

    fn record_events(&mut self, kind: Kind, events: &[Event]) {
        for event in events {
            match event {
                Event::Trade { qty, .. } => {
                    self.trades += 1;
                    self.filled_qty += qty;
                }
                Event::OrderEnded { unfilled_qty, .. } if kind == Kind::Market => {
                    self.market_qty_unfilled += unfilled_qty;
                }
                _ => {}
            }
        }
    }

    fn finish(&mut self, engine: &Engine) {
        self.resting_orders = engine.open_order_count() as u64;
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        for market in 0..engine.market_count() {
            let depth = engine
                .book_depth(MarketId(market), usize::MAX)
                .expect("a market");
            self.resting_qty += depth
                .bids
                .iter()
                .chain(&depth.asks)
                .map(|l| l.1)
                .sum::<u64>();
            bids.extend(depth.bids.first().map(|l| l.0));
            asks.extend(depth.asks.first().map(|l| l.0));
        }
        // Best prices are reported for single-market workloads only.
        if engine.market_count() == 1 {
            self.best_bid_units = bids.first().copied();
            self.best_ask_units = asks.first().copied();
        }
    }
}

/// A fresh engine with the workload's setup and warm-up applied (untimed), and the stream
/// that goes on from there.
pub fn prepare(workload: &Workload) -> (Engine, Stream) {
    let first_shape = workload.warmup.map_or(workload.shape, |w| w.0);
    let mut engine = Engine::new(engine_config());
    let mut events = Vec::new();
    for command in setup(&first_shape) {
        engine
            .apply(&command, &mut events)
            .expect("the setup is valid");
        events.clear();
    }
    let Some((shape, ops)) = workload.warmup else {
        return (engine, Stream::new(workload.shape, workload.ops));
    };
    let mut stream = Stream::new(shape, ops);
    while stream.step(&mut engine, &mut events).is_some() {
        events.clear();
    }
    (engine, stream.continue_as(workload.shape, workload.ops))
}

/// Runs the timed part of a workload, counting (untimed: the counting costs time).
pub fn count(workload: &Workload) -> (Counts, Engine) {
    let (mut engine, mut stream) = prepare(workload);
    let mut counts = Counts::default();
    let mut events = Vec::new();
    while let Some((kind, result)) = stream.step(&mut engine, &mut events) {
        counts.record(kind, stream.command(), result);
        counts.record_events(kind, &events);
        events.clear();
    }
    counts.finish(&engine);
    (counts, engine)
}

/// `resolution`: one market whose 100,000 holders each own YES and NO shares (and half of
/// whom have an order resting), and the single command that resolves it.
pub fn resolution_setup(holders: u32) -> (Engine, Command) {
    let mut engine = Engine::new(engine_config());
    let mut events = Vec::new();
    let mut apply = |op| {
        engine
            .apply(&Command { ts_micros: 0, op }, &mut events)
            .expect("the setup is valid");
        events.clear();
    };
    apply(Op::CreateMarket(MarketParams {
        slug: Slug::new("resolution").expect("a valid slug"),
        tick_units: UNITS_PER_TICK,
        qty_min: 1,
        qty_max: 1_000,
        maker_fee_bps: 0,
        taker_fee_bps: 0,
        close_ts_micros: None,
        lock_rule: engine::LockRule::CURRENT,
    }));
    let market = MarketId(0);
    for index in 0..holders {
        let user = UserId(index);
        apply(Op::CreateUser);
        apply(Op::Deposit {
            user,
            amount_micros: 100 * MICROS_PER_SHARE,
        });
        apply(Op::Split {
            user,
            market,
            qty: 1 + index as u64 % 7,
        });
        if index % 2 == 0 {
            let price_units = 100 + 10 * (index % 400) as u16;
            let order = PlaceOrder::limit(user, market, Side::Buy, Outcome::Yes, price_units, 1);
            apply(Op::Place(order));
        }
    }
    let resolve = Command {
        ts_micros: 1,
        op: Op::ResolveMarket {
            market,
            resolution: Resolution::Yes,
        },
    };
    (engine, resolve)
}
