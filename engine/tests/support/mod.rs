//! Test harness: an engine driven with a rising clock that checks every invariant after
//! every command and keeps the events of the last command.
#![allow(dead_code)]

use engine::{
    Command, Engine, Event, MarketId, MarketParams, Op, OrderId, Outcome, PlaceOrder, Reject, Side,
    Slug, UserId,
};

pub const DOLLAR: i64 = 1_000_000;

pub struct Harness {
    pub engine: Engine,
    pub ts: u64,
    pub events: Vec<Event>,
    pub journal: Vec<Command>,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new(Engine::default())
    }
}

impl Harness {
    pub fn new(engine: Engine) -> Harness {
        Harness {
            engine,
            ts: 1_000,
            events: Vec::new(),
            journal: Vec::new(),
        }
    }

    /// Applies `op` one microsecond after the previous command.
    pub fn apply(&mut self, op: Op) -> Result<(), Reject> {
        self.ts += 1;
        self.apply_at(self.ts, op)
    }

    pub fn apply_at(&mut self, ts: u64, op: Op) -> Result<(), Reject> {
        self.ts = ts;
        let command = Command { ts_micros: ts, op };
        self.events.clear();
        let mut before = self.engine.snapshot();
        let result = self.engine.apply(&command, &mut self.events);
        if let Err(reject) = result {
            // A reject changes nothing but the clock; with no clock events, nothing at all.
            if self.events.is_empty() && reject != Reject::TimestampBackwards {
                before.now_micros = ts;
                assert!(
                    before == self.engine.snapshot(),
                    "{reject:?} changed the state"
                );
            }
        }
        self.journal.push(command);
        self.engine
            .check_invariants()
            .unwrap_or_else(|v| panic!("{v} after {:?}", self.journal.last()));
        result
    }

    pub fn user(&mut self, dollars: i64) -> UserId {
        self.apply(Op::CreateUser).unwrap();
        let user = UserId(self.engine.user_count() - 1);
        if dollars > 0 {
            self.apply(Op::Deposit {
                user,
                amount_micros: dollars * DOLLAR,
            })
            .unwrap();
        }
        user
    }

    pub fn market_with(&mut self, params: MarketParams) -> MarketId {
        self.apply(Op::CreateMarket(params)).unwrap();
        MarketId(self.engine.market_count() - 1)
    }

    /// A market with tick 0.01, quantities 1..=1,000,000 and the given fee rates in bps.
    pub fn market(&mut self, maker_fee_bps: i32, taker_fee_bps: i32) -> MarketId {
        self.market_under(maker_fee_bps, taker_fee_bps, engine::LockRule::CURRENT)
    }

    /// `market`, created under lock rule `lock_rule`.
    pub fn market_under(
        &mut self,
        maker_fee_bps: i32,
        taker_fee_bps: i32,
        lock_rule: engine::LockRule,
    ) -> MarketId {
        let slug =
            Slug::new(&format!("market-{}", self.engine.market_count())).expect("a valid slug");
        self.market_with(MarketParams {
            slug,
            tick_units: 100,
            qty_min: 1,
            qty_max: 1_000_000,
            maker_fee_bps,
            taker_fee_bps,
            close_ts_micros: None,
            lock_rule,
        })
    }

    /// Turns `qty` dollars of the user's cash into `qty` YES + `qty` NO shares.
    pub fn split(&mut self, user: UserId, market: MarketId, qty: u64) {
        self.apply(Op::Split { user, market, qty }).unwrap();
    }

    pub fn place(&mut self, request: PlaceOrder) -> Result<OrderId, Reject> {
        self.apply(Op::Place(request))?;
        Ok(self.accepted_order().expect("an accepted order"))
    }

    pub fn limit(
        &mut self,
        user: UserId,
        market: MarketId,
        side: Side,
        outcome: Outcome,
        price_units: u16,
        qty: u64,
    ) -> Result<OrderId, Reject> {
        self.place(PlaceOrder::limit(
            user,
            market,
            side,
            outcome,
            price_units,
            qty,
        ))
    }

    pub fn accepted_order(&self) -> Option<OrderId> {
        self.events.iter().find_map(|event| match event {
            Event::OrderAccepted { order, .. } => Some(*order),
            _ => None,
        })
    }

    pub fn trades(&self) -> Vec<Event> {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Trade { .. }))
            .cloned()
            .collect()
    }

    pub fn available(&self, user: UserId) -> i64 {
        self.engine.balance(user).unwrap().available_micros
    }

    pub fn locked(&self, user: UserId) -> i64 {
        self.engine.balance(user).unwrap().locked_micros
    }
}
