//! The traders and the admin of a simulated exchange.
//!
//! Owns how each kind of participant decides its next command: market makers quoting both
//! sides, noise traders using every order type, informed traders who know how the market will
//! resolve, cancel-heavy bots, amenders, splitters and mergers, depositors and withdrawers,
//! bad actors whose commands must all be rejected, and an admin who runs the market lifecycle.
//! Agents only read the engine (through its queries) and draw from the run's one PRNG; they
//! must never change anything themselves: the runner applies what they return.

use engine::units::{MICROS_PER_SHARE, PRICE_SCALE};
use engine::{
    BookSide, ClientOrderId, Engine, MarketId, MarketParams, MarketState, Op, OrderId, OrderType,
    OrderView, Outcome, PlaceOrder, Resolution, SelfTradePrevention, Side, Slug, TimeInForce,
    UserId,
};
use serde::Serialize;

use crate::rng::SplitMix64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    MarketMaker,
    Noise,
    Informed,
    CancelBot,
    Amender,
    SplitMerger,
    Banker,
    BadActor,
}

/// Users get roles in this cycle, so any user count has every role once it reaches 16.
const ROLE_CYCLE: [Role; 16] = [
    Role::MarketMaker,
    Role::Noise,
    Role::BadActor,
    Role::Informed,
    Role::CancelBot,
    Role::MarketMaker,
    Role::Noise,
    Role::Amender,
    Role::SplitMerger,
    Role::Banker,
    Role::Noise,
    Role::MarketMaker,
    Role::CancelBot,
    Role::Informed,
    Role::Noise,
    Role::BadActor,
];

pub fn role_of(user_index: u32) -> Role {
    ROLE_CYCLE[user_index as usize % ROLE_CYCLE.len()]
}

/// Starting cash: bad actors are kept poor so their overspending is always refused.
pub fn deposit_dollars(role: Role, rng: &mut SplitMix64) -> i64 {
    match role {
        Role::BadActor => 100,
        Role::MarketMaker => rng.between(50_000, 200_000) as i64,
        _ => rng.between(1_000, 20_000) as i64,
    }
}

/// The largest order in a simulated market.
pub const SIM_QTY_MAX: u64 = 10_000;

/// A market as the simulation knows it: including how it will resolve, which only the
/// informed traders (and the admin, when the time comes) act on.
#[derive(Clone, Copy, Debug)]
pub struct SimMarket {
    pub id: MarketId,
    pub tick_units: u16,
    /// The "true" YES probability, in price units.
    pub truth_units: u16,
    pub resolution: Resolution,
}

/// What an agent may look at: the engine's read-only queries and the market list.
pub struct World<'a> {
    pub engine: &'a Engine,
    pub markets: &'a [SimMarket],
    pub now_micros: u64,
}

impl World<'_> {
    fn state(&self, market: MarketId) -> MarketState {
        self.engine.market(market).expect("a known market").state
    }

    fn pick_open(&self, rng: &mut SplitMix64) -> Option<SimMarket> {
        let open: Vec<SimMarket> = self
            .markets
            .iter()
            .filter(|m| self.state(m.id) == MarketState::Open)
            .copied()
            .collect();
        (!open.is_empty()).then(|| rng.pick(&open))
    }

    /// The YES mid price, or the market's truth when one side is empty.
    fn mid_units(&self, market: &SimMarket) -> i64 {
        match self.engine.best_prices(market.id) {
            Some((Some(bid), Some(ask))) => (bid as i64 + ask as i64) / 2,
            _ => market.truth_units as i64,
        }
    }

    fn orders(&self, user: UserId, market: Option<MarketId>) -> Vec<OrderView> {
        let mut orders = self.engine.open_orders(user);
        orders.retain(|o| market.is_none_or(|m| m == o.market));
        orders
    }

    fn tick_units(&self, market: MarketId) -> u16 {
        self.engine
            .market(market)
            .expect("a known market")
            .params
            .tick_units
    }

    fn free(&self, user: UserId, market: MarketId, outcome: Outcome) -> u64 {
        self.engine.position(user, market).free(outcome)
    }

    fn available_micros(&self, user: UserId) -> i64 {
        self.engine
            .balance(user)
            .map_or(0, |cash| cash.available_micros)
    }
}

/// A YES price moved onto the market's tick and inside (0, 1).
fn on_tick(price_units: i64, tick_units: u16) -> u16 {
    let tick = tick_units as i64;
    let rounded = price_units / tick * tick;
    rounded.clamp(tick, PRICE_SCALE as i64 - tick) as u16
}

fn complement(price_units: u16) -> u16 {
    PRICE_SCALE as u16 - price_units
}

fn order_price_of(order: &OrderView, yes_units: u16) -> u16 {
    match order.outcome {
        Outcome::Yes => yes_units,
        Outcome::No => complement(yes_units),
    }
}

fn any_stp(rng: &mut SplitMix64) -> SelfTradePrevention {
    rng.pick(&[
        SelfTradePrevention::CancelTaker,
        SelfTradePrevention::CancelMaker,
        SelfTradePrevention::CancelBoth,
        SelfTradePrevention::DecrementAndCancel,
    ])
}

/// One participant: its user, its role, and the little it remembers between commands.
#[derive(Clone, Debug)]
pub struct Agent {
    pub user: UserId,
    pub role: Role,
    client_seq: u64,
    /// The last order it placed with a client id (resent as a retry, or abused).
    last_with_id: Option<PlaceOrder>,
}

/// An agent's next command, and whether it is one that must be rejected.
pub struct Action {
    pub op: Op,
    pub must_reject: bool,
}

impl From<Op> for Action {
    fn from(op: Op) -> Action {
        Action {
            op,
            must_reject: false,
        }
    }
}

impl Agent {
    pub fn new(user: UserId, role: Role) -> Agent {
        Agent {
            user,
            role,
            client_seq: 0,
            last_with_id: None,
        }
    }

    pub fn act(&mut self, world: &World, rng: &mut SplitMix64) -> Action {
        if self.role == Role::BadActor {
            return self.misbehave(world, rng);
        }
        if self.role == Role::Banker {
            return self.bank(world, rng).into();
        }
        let Some(market) = world.pick_open(rng) else {
            return Op::Tick.into();
        };
        let op = match self.role {
            Role::MarketMaker => self.make_market(world, rng, &market),
            Role::Noise => self.trade_noise(world, rng, &market),
            Role::Informed => self.trade_informed(world, rng, &market),
            Role::CancelBot => self.churn(world, rng, &market),
            Role::Amender => self.amend(world, rng, &market),
            _ => self.split_or_merge(world, rng, &market),
        };
        op.into()
    }

    fn next_client_id(&mut self) -> Option<ClientOrderId> {
        self.client_seq += 1;
        ClientOrderId::new(&format!("u{}-{}", self.user.0, self.client_seq))
    }

    /// An order that gains YES exposure at a YES price: BUY YES, or SELL NO when it holds
    /// free NO shares (so every fill kind occurs).
    fn bid(&self, world: &World, market: MarketId, yes_units: u16, qty: u64) -> PlaceOrder {
        let held = world.free(self.user, market, Outcome::No);
        if held >= qty {
            PlaceOrder::limit(
                self.user,
                market,
                Side::Sell,
                Outcome::No,
                complement(yes_units),
                qty,
            )
        } else {
            PlaceOrder::limit(self.user, market, Side::Buy, Outcome::Yes, yes_units, qty)
        }
    }

    /// An order that sheds YES exposure: SELL YES when held, otherwise BUY NO.
    fn ask(&self, world: &World, market: MarketId, yes_units: u16, qty: u64) -> PlaceOrder {
        let held = world.free(self.user, market, Outcome::Yes);
        if held >= qty {
            PlaceOrder::limit(self.user, market, Side::Sell, Outcome::Yes, yes_units, qty)
        } else {
            PlaceOrder::limit(
                self.user,
                market,
                Side::Buy,
                Outcome::No,
                complement(yes_units),
                qty,
            )
        }
    }

    fn with_id(&mut self, mut order: PlaceOrder) -> PlaceOrder {
        order.client_order_id = self.next_client_id();
        self.last_with_id = Some(order);
        order
    }

    /// Quotes both sides around its view of fair value, and keeps moving the quotes.
    fn make_market(&mut self, world: &World, rng: &mut SplitMix64, m: &SimMarket) -> Op {
        let mine = world.orders(self.user, Some(m.id));
        let fair = m.truth_units as i64 + rng.between(0, 800) as i64 - 400;
        let half_spread = m.tick_units as i64 * rng.between(1, 4) as i64;
        let bid_units = on_tick(fair - half_spread, m.tick_units);
        let ask_units = on_tick(fair + half_spread, m.tick_units).max(bid_units + m.tick_units);
        let qty = rng.between(5, 100);
        let post_only = rng.chance(50);
        let mut bid = self.bid(world, m.id, bid_units, qty);
        let mut ask = self.ask(world, m.id, ask_units.min(complement(m.tick_units)), qty);
        for quote in [&mut bid, &mut ask] {
            quote.post_only = post_only;
            if rng.chance(20) {
                quote.time_in_force = TimeInForce::Gtd;
                quote.expires_at_micros = Some(world.now_micros + rng.between(5_000, 500_000));
            }
        }
        if mine.len() >= 4 || (!mine.is_empty() && rng.chance(40)) {
            return Op::Batch {
                user: self.user,
                cancels: mine.iter().take(4).map(|o| o.order).collect(),
                places: vec![self.with_id(bid), ask],
            };
        }
        if let Some(order) = (!mine.is_empty() && rng.chance(30)).then(|| rng.pick(&mine)) {
            let yes_units = if BookSide::of(order.side, order.outcome) == BookSide::Bid {
                bid_units
            } else {
                ask_units
            };
            return Op::Amend {
                user: self.user,
                order: order.order,
                qty: rng.chance(30).then_some(order.filled_qty + qty),
                price_units: Some(order_price_of(&order, yes_units)),
            };
        }
        Op::Place(if rng.chance(50) {
            self.with_id(bid)
        } else {
            ask
        })
    }

    /// Random orders of every type, time in force and self-trade mode.
    fn trade_noise(&mut self, world: &World, rng: &mut SplitMix64, m: &SimMarket) -> Op {
        if let Some(retry) = self.last_with_id.filter(|_| rng.chance(3)) {
            // A client retrying after a timeout: the engine must answer, not place twice.
            return Op::Place(retry);
        }
        let mid = world.mid_units(m);
        let yes_units = on_tick(
            mid + (rng.between(0, 12) as i64 - 6) * m.tick_units as i64,
            m.tick_units,
        );
        let qty = rng.between(1, 60);
        let mut order = if rng.chance(50) {
            self.bid(world, m.id, yes_units, qty)
        } else {
            self.ask(world, m.id, yes_units, qty)
        };
        order.self_trade_prevention = any_stp(rng);
        order.reduce_only = rng.chance(5);
        if rng.chance(30) {
            return Op::Place(self.market_order(rng, order, m));
        }
        order.time_in_force = rng.pick(&[
            TimeInForce::Gtc,
            TimeInForce::Gtc,
            TimeInForce::Gtd,
            TimeInForce::Ioc,
            TimeInForce::Fok,
        ]);
        if order.time_in_force == TimeInForce::Gtd {
            order.expires_at_micros = Some(world.now_micros + rng.between(1_000, 200_000));
        }
        order.post_only = order.time_in_force == TimeInForce::Gtc && rng.chance(15);
        Op::Place(if rng.chance(20) {
            self.with_id(order)
        } else {
            order
        })
    }

    /// Turns a limit order into a MARKET order with some protection, sometimes sized by cash.
    fn market_order(&self, rng: &mut SplitMix64, limit: PlaceOrder, m: &SimMarket) -> PlaceOrder {
        let mut order = PlaceOrder {
            order_type: OrderType::Market,
            price_units: None,
            time_in_force: if rng.chance(80) {
                TimeInForce::Ioc
            } else {
                TimeInForce::Fok
            },
            ..limit
        };
        if rng.chance(30) {
            let worst = limit.price_units.expect("a limit order") as i64;
            let loose = if limit.side == Side::Buy { 300 } else { -300 };
            order.worst_price_units = Some(on_tick(worst + loose, m.tick_units));
        }
        if rng.chance(30) {
            order.max_slippage_bps = Some(rng.between(10, 3_000) as u32);
        }
        if order.side == Side::Buy && rng.chance(30) {
            order.qty = None;
            order.cash_micros = Some(rng.between(1, 40) as i64 * MICROS_PER_SHARE);
            order.time_in_force = TimeInForce::Ioc;
            if order.self_trade_prevention == SelfTradePrevention::DecrementAndCancel {
                order.self_trade_prevention = SelfTradePrevention::CancelTaker;
            }
        }
        order
    }

    /// Knows the resolution: takes any price on the wrong side of it, or quotes near it.
    fn trade_informed(&mut self, world: &World, rng: &mut SplitMix64, m: &SimMarket) -> Op {
        let value = on_tick(m.resolution.yes_payout_units() as i64, m.tick_units);
        let edge = 200;
        let (bid, ask) = world.engine.best_prices(m.id).unwrap_or_default();
        let qty = rng.between(10, 150);
        let mut order = match (bid, ask) {
            (_, Some(ask)) if (ask as i64) + edge < value as i64 => {
                self.bid(world, m.id, value.min(ask + 5 * m.tick_units), qty)
            }
            (Some(bid), _) if (bid as i64) > value as i64 + edge => self.ask(
                world,
                m.id,
                value.max(bid.saturating_sub(5 * m.tick_units)),
                qty,
            ),
            _ => {
                let inside = on_tick(value as i64 - edge, m.tick_units);
                return Op::Place(self.bid(world, m.id, inside, rng.between(1, 20)));
            }
        };
        order.time_in_force = TimeInForce::Ioc;
        Op::Place(order)
    }

    /// Places passive orders and cancels most of them soon after.
    fn churn(&mut self, world: &World, rng: &mut SplitMix64, m: &SimMarket) -> Op {
        let mine = world.orders(self.user, None);
        let draw = rng.uniform(10);
        if draw < 5 || mine.is_empty() {
            let away = (rng.between(2, 12) * m.tick_units as u64) as i64;
            let mid = world.mid_units(m);
            let qty = rng.between(1, 30);
            let order = if rng.chance(50) {
                self.bid(world, m.id, on_tick(mid - away, m.tick_units), qty)
            } else {
                self.ask(world, m.id, on_tick(mid + away, m.tick_units), qty)
            };
            return Op::Place(self.with_id(order));
        }
        if draw < 9 {
            let order = rng.pick(&mine).order;
            return Op::Cancel {
                user: self.user,
                order,
            };
        }
        Op::CancelAll {
            user: self.user,
            market: rng.chance(50).then_some(m.id),
        }
    }

    /// Rests orders, then changes their size and price.
    fn amend(&mut self, world: &World, rng: &mut SplitMix64, m: &SimMarket) -> Op {
        let mine = world.orders(self.user, None);
        if mine.is_empty() || rng.chance(30) {
            let yes_units = on_tick(world.mid_units(m) - 3 * m.tick_units as i64, m.tick_units);
            return Op::Place(self.bid(world, m.id, yes_units, rng.between(10, 100)));
        }
        let order = rng.pick(&mine);
        let tick = world.tick_units(order.market) as i64;
        let (mut qty, mut price_units) = (None, None);
        match rng.uniform(3) {
            0 if order.remaining_qty > 1 => {
                qty = Some(order.filled_qty + rng.between(1, order.remaining_qty - 1));
            }
            1 => qty = Some(order.qty + rng.between(1, 20)),
            _ => {
                let moved = order.price_units as i64 + (rng.between(0, 6) as i64 - 3) * tick;
                price_units = Some(on_tick(moved, tick as u16));
            }
        }
        Op::Amend {
            user: self.user,
            order: order.order,
            qty,
            price_units,
        }
    }

    /// Mints and redeems pairs, and sells what it holds.
    fn split_or_merge(&mut self, world: &World, rng: &mut SplitMix64, m: &SimMarket) -> Op {
        let position = world.engine.position(self.user, m.id);
        let pairs = position.yes_free.min(position.no_free);
        match rng.uniform(4) {
            0 => Op::Split {
                user: self.user,
                market: m.id,
                qty: rng.between(1, 50),
            },
            1 if pairs > 0 => Op::Merge {
                user: self.user,
                market: m.id,
                qty: rng.between(1, pairs),
            },
            _ => {
                let mid = world.mid_units(m);
                let qty = rng.between(1, 30);
                let order = if rng.chance(50) {
                    self.ask(
                        world,
                        m.id,
                        on_tick(mid + m.tick_units as i64, m.tick_units),
                        qty,
                    )
                } else {
                    self.bid(
                        world,
                        m.id,
                        on_tick(mid - m.tick_units as i64, m.tick_units),
                        qty,
                    )
                };
                Op::Place(order)
            }
        }
    }

    /// Moves money in and out, sometimes asking for more than it has.
    fn bank(&mut self, world: &World, rng: &mut SplitMix64) -> Op {
        let available = world.available_micros(self.user);
        if available < MICROS_PER_SHARE || rng.chance(40) {
            return Op::Deposit {
                user: self.user,
                amount_micros: rng.between(1, 5_000) as i64 * MICROS_PER_SHARE,
            };
        }
        let amount_micros = if rng.chance(20) {
            available + rng.between(1, 1_000_000) as i64
        } else {
            rng.between(1, available as u64) as i64
        };
        Op::Withdraw {
            user: self.user,
            amount_micros,
        }
    }

    /// Commands that must be rejected: wrong ticks, others' orders, overspending, markets not
    /// open, reused client ids, expiries in the past, impossible option mixes. Once in a while
    /// it places one honest order, so it has a client id to abuse.
    fn misbehave(&mut self, world: &World, rng: &mut SplitMix64) -> Action {
        let market = world.pick_open(rng);
        let Some(honest) = self.last_with_id else {
            if let Some(m) = market {
                let order =
                    PlaceOrder::limit(self.user, m.id, Side::Buy, Outcome::Yes, m.tick_units, 1);
                return Op::Place(self.with_id(order)).into();
            }
            return Op::Tick.into();
        };
        let op = match (rng.uniform(10), market) {
            (0, Some(m)) if m.tick_units > 1 => {
                self.place(m, |o| o.price_units = Some(m.tick_units + 1))
            }
            (1, Some(m)) => self.place(m, |o| o.price_units = Some(PRICE_SCALE as u16)),
            (2, Some(m)) => self.place(m, |o| o.qty = Some(SIM_QTY_MAX)),
            (3, Some(m)) => self.place(m, |o| {
                o.time_in_force = TimeInForce::Gtd;
                o.expires_at_micros = Some(world.now_micros);
            }),
            (4, Some(m)) => self.place(m, |o| o.order_type = OrderType::Market),
            (5, Some(m)) => {
                let held = world.free(self.user, m.id, Outcome::Yes);
                let sell =
                    PlaceOrder::limit(self.user, m.id, Side::Sell, Outcome::Yes, 5_000, held + 1);
                Op::Place(sell)
            }
            (6, _) => Op::Place(PlaceOrder {
                qty: honest.qty.map(|q| q + 1),
                ..honest
            }),
            (7, _) => Op::Withdraw {
                user: self.user,
                amount_micros: world.available_micros(self.user) + rng.between(1, 1_000) as i64,
            },
            (8, _) => self.touch_foreign_order(world, rng),
            _ => self.trade_where_closed(world, rng),
        };
        Action {
            op,
            must_reject: true,
        }
    }

    /// A GTC BUY YES of one share at 0.50 in `market`, with one thing made wrong.
    fn place(&self, market: SimMarket, spoil: impl FnOnce(&mut PlaceOrder)) -> Op {
        let mut order = PlaceOrder::limit(self.user, market.id, Side::Buy, Outcome::Yes, 5_000, 1);
        spoil(&mut order);
        Op::Place(order)
    }

    /// Cancels or amends someone else's order (or, with none in sight, one that never was).
    fn touch_foreign_order(&self, world: &World, rng: &mut SplitMix64) -> Op {
        let users = world.engine.user_count();
        let other = UserId((self.user.0 + 1 + rng.uniform(users as u64 - 1) as u32) % users);
        let order = world
            .orders(other, None)
            .first()
            .map_or(OrderId(u64::MAX), |o| o.order);
        if rng.chance(50) {
            Op::Cancel {
                user: self.user,
                order,
            }
        } else {
            Op::Amend {
                user: self.user,
                order,
                qty: Some(1),
                price_units: None,
            }
        }
    }

    /// Trades or splits in a market that is not open (or in one that does not exist).
    fn trade_where_closed(&self, world: &World, rng: &mut SplitMix64) -> Op {
        let not_open: Vec<MarketId> = world
            .markets
            .iter()
            .map(|m| m.id)
            .filter(|id| world.state(*id) != MarketState::Open)
            .collect();
        let market = if not_open.is_empty() {
            MarketId(u32::MAX)
        } else {
            rng.pick(&not_open)
        };
        if rng.chance(50) {
            Op::Split {
                user: self.user,
                market,
                qty: 1,
            }
        } else {
            Op::Place(PlaceOrder::limit(
                self.user,
                market,
                Side::Buy,
                Outcome::Yes,
                5_000,
                1,
            ))
        }
    }
}

/// The operator: creates markets, halts and resumes them, closes and resolves them.
pub struct Admin {
    markets_created: u32,
}

/// A market the admin asked for, to be known once the engine accepts it.
pub struct NewMarket {
    pub tick_units: u16,
    pub truth_units: u16,
    pub resolution: Resolution,
}

impl Admin {
    pub fn new() -> Admin {
        Admin { markets_created: 0 }
    }

    /// A new market with drawn parameters, truth and resolution (YES with the truth's
    /// probability, NO otherwise, and now and then a split payout).
    pub fn create_market(&mut self, rng: &mut SplitMix64, now_micros: u64) -> (Op, NewMarket) {
        self.markets_created += 1;
        let tick_units = rng.pick(&[100, 100, 10, 1]);
        let truth_units = on_tick(rng.between(500, 9_500) as i64, tick_units);
        let resolution = if rng.chance(10) {
            Resolution::Split {
                yes_payout_units: truth_units,
            }
        } else if rng.uniform(PRICE_SCALE as u64) < truth_units as u64 {
            Resolution::Yes
        } else {
            Resolution::No
        };
        let taker_fee_bps = rng.pick(&[0, 100, 300, 700]);
        let maker_fee_bps = rng.between(0, 2 * taker_fee_bps as u64) as i32 - taker_fee_bps;
        let close_ts_micros = rng
            .chance(50)
            .then(|| now_micros + rng.between(5_000_000, 60_000_000));
        let params = MarketParams {
            slug: Slug::new(&format!("sim-market-{}", self.markets_created)).expect("a valid slug"),
            tick_units,
            qty_min: 1,
            qty_max: SIM_QTY_MAX,
            maker_fee_bps,
            taker_fee_bps,
            close_ts_micros,
            // Markets from before the current lock rule still trade on servers that upgraded.
            lock_rule: if rng.chance(20) {
                engine::LockRule::BufferAlways
            } else {
                engine::LockRule::CURRENT
            },
        };
        let new = NewMarket {
            tick_units,
            truth_units,
            resolution,
        };
        (Op::CreateMarket(params), new)
    }

    /// The next lifecycle step for one of the markets.
    pub fn act(&mut self, world: &World, rng: &mut SplitMix64) -> Op {
        let market = rng.pick(world.markets);
        let state = world.state(market.id);
        match (rng.uniform(10), state) {
            (0..=2, MarketState::Open) => Op::HaltMarket { market: market.id },
            (3..=4, MarketState::Halted) => Op::ResumeMarket { market: market.id },
            (5, MarketState::Open | MarketState::Halted) => Op::CloseMarket { market: market.id },
            (6..=8, MarketState::Closed) | (6, MarketState::Open | MarketState::Halted) => {
                Op::ResolveMarket {
                    market: market.id,
                    resolution: market.resolution,
                }
            }
            _ => Op::Tick,
        }
    }
}

impl Default for Admin {
    fn default() -> Admin {
        Admin::new()
    }
}
