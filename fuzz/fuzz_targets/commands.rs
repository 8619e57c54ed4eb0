//! Command streams decoded from raw bytes: every command is accepted or rejected cleanly, a
//! reject changes nothing, and every invariant holds after every command.
#![no_main]

use engine::{
    Command, Engine, MarketId, MarketParams, Op, OrderId, OrderType, Outcome, PlaceOrder,
    Resolution, SelfTradePrevention, Side, Slug, TimeInForce, UserId,
};
use libfuzzer_sys::fuzz_target;

/// Reads the fuzzer's bytes as a stream of small choices (zeros once they run out).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.byte() as usize % items.len()]
    }

    fn u64(&mut self) -> u64 {
        let edges = [
            0,
            1,
            2,
            7,
            100,
            999_999_999,
            1_000_000_000,
            1_000_000_001,
            u64::MAX,
        ];
        match self.byte() % 4 {
            0 => self.pick(&edges),
            _ => self.byte() as u64 * 3 + 1,
        }
    }

    fn i64(&mut self) -> i64 {
        let edges = [
            i64::MIN,
            -1,
            0,
            1,
            1_000_000,
            1_000_000_000_000_000,
            i64::MAX,
        ];
        match self.byte() % 4 {
            0 => self.pick(&edges),
            _ => self.byte() as i64 * 1_000_000,
        }
    }

    fn price(&mut self) -> u16 {
        match self.byte() % 4 {
            0 => self.pick(&[0, 1, 9_999, 10_000, u16::MAX]),
            _ => 3_000 + self.byte() as u16 * 20,
        }
    }

    fn order(&mut self) -> PlaceOrder {
        let user = UserId(self.byte() as u32 % 4);
        let market = MarketId(self.byte() as u32 % 3);
        let side = self.pick(&[Side::Buy, Side::Sell]);
        let outcome = self.pick(&[Outcome::Yes, Outcome::No]);
        let mut order = PlaceOrder::limit(user, market, side, outcome, self.price(), self.u64());
        order.order_type = self.pick(&[OrderType::Limit, OrderType::Limit, OrderType::Market]);
        order.time_in_force = self.pick(&[
            TimeInForce::Gtc,
            TimeInForce::Gtd,
            TimeInForce::Ioc,
            TimeInForce::Fok,
        ]);
        if order.order_type == OrderType::Market {
            order.price_units = None;
        }
        if self.byte() % 4 == 0 {
            (order.qty, order.cash_micros) = (None, Some(self.i64()));
        }
        order.expires_at_micros = (order.time_in_force == TimeInForce::Gtd).then(|| self.u64());
        order.post_only = self.byte() % 5 == 0;
        order.reduce_only = self.byte() % 5 == 0;
        order.self_trade_prevention = self.pick(&[
            SelfTradePrevention::CancelTaker,
            SelfTradePrevention::CancelMaker,
            SelfTradePrevention::CancelBoth,
            SelfTradePrevention::DecrementAndCancel,
        ]);
        order.max_slippage_bps = (self.byte() % 4 == 0).then(|| self.byte() as u32 * 50);
        order
    }

    fn op(&mut self) -> Op {
        let user = UserId(self.byte() as u32 % 4);
        let market = MarketId(self.byte() as u32 % 3);
        match self.byte() % 12 {
            0..=4 => Op::Place(self.order()),
            5 => Op::Cancel {
                user,
                order: OrderId(self.u64() % 64),
            },
            6 => Op::Amend {
                user,
                order: OrderId(self.u64() % 64),
                qty: Some(self.u64()),
                price_units: Some(self.price()),
            },
            7 => Op::Split {
                user,
                market,
                qty: self.u64(),
            },
            8 => Op::Merge {
                user,
                market,
                qty: self.u64(),
            },
            9 => Op::Withdraw {
                user,
                amount_micros: self.i64(),
            },
            10 => Op::ResolveMarket {
                market,
                resolution: self.pick(&[
                    Resolution::Yes,
                    Resolution::No,
                    Resolution::Split {
                        yes_payout_units: 2_500,
                    },
                ]),
            },
            _ => match self.byte() % 5 {
                0 => Op::Tick,
                1 => Op::HaltMarket { market },
                2 => Op::ResumeMarket { market },
                3 => Op::TransferShares {
                    from: user,
                    to: UserId(self.byte() as u32 % 4),
                    market,
                    outcome: self.pick(&[Outcome::Yes, Outcome::No]),
                    qty: self.u64() % 16,
                },
                _ => Op::CloseMarket { market },
            },
        }
    }
}

fn setup(engine: &mut Engine) {
    let mut ops = vec![];
    for user in 0..4 {
        ops.push(Op::CreateUser);
        ops.push(Op::Deposit {
            user: UserId(user),
            amount_micros: 1_000_000_000,
        });
    }
    for (index, tick_units) in [100u16, 10, 1].into_iter().enumerate() {
        ops.push(Op::CreateMarket(MarketParams {
            slug: Slug::new(&format!("fuzz-{index}")).expect("a valid slug"),
            tick_units,
            qty_min: 1,
            qty_max: 1_000_000,
            // A rebate, a maker fee, none; the last market under the old lock rule.
            maker_fee_bps: [-50, 200, 0][index],
            taker_fee_bps: 700,
            close_ts_micros: None,
            lock_rule: if index == 2 {
                engine::LockRule::BufferAlways
            } else {
                engine::LockRule::CURRENT
            },
        }));
    }
    for op in ops {
        engine
            .apply(&Command { ts_micros: 0, op }, &mut Vec::new())
            .unwrap();
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes(data);
    let mut engine = Engine::default();
    setup(&mut engine);
    let mut ts = 0u64;
    let mut events = Vec::new();
    for _ in 0..64 {
        if bytes.0.is_empty() {
            break;
        }
        ts = ts.saturating_add(bytes.byte() as u64 * 1_000);
        let command = Command {
            ts_micros: ts,
            op: bytes.op(),
        };
        let mut before = engine.snapshot();
        events.clear();
        let result = engine.apply(&command, &mut events);
        if result.is_err() && events.is_empty() {
            before.now_micros = engine.now_micros();
            assert!(
                before == engine.snapshot(),
                "a reject changed the state: {command:?}"
            );
        }
        if let Err(violation) = engine.check_invariants() {
            panic!("{violation} after {command:?}");
        }
    }
});
