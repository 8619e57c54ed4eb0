//! Commands: the only way to change the engine.
//!
//! A command is a plain value with a stable, tagged serde shape
//! (`{"ts_micros": .., "op": {"type": "place", ..}}`), so the server can journal it and the
//! browser can exchange it as JSON.
//! Commands never carry decimals: the edges parse those into price units and micros first.

use serde::{Deserialize, Serialize};

use crate::types::{
    ClientOrderId, MarketId, OrderId, OrderType, Outcome, Resolution, SelfTradePrevention, Side,
    Slug, TimeInForce, UserId,
};
use crate::units::{buy_reserve_micros, LockRule};

/// Bumped whenever the serialized shape of `Command` or `Event` changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

/// One command, stamped by the sequencer. `ts_micros` never decreases from one command to the
/// next; the engine uses it as its only clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub ts_micros: u64,
    pub op: Op,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// Advances the clock only: expires GTD orders and closes markets that are due.
    Tick,
    CreateUser,
    CreateMarket(MarketParams),
    HaltMarket {
        market: MarketId,
    },
    ResumeMarket {
        market: MarketId,
    },
    CloseMarket {
        market: MarketId,
    },
    ResolveMarket {
        market: MarketId,
        resolution: Resolution,
    },
    Deposit {
        user: UserId,
        amount_micros: i64,
    },
    Withdraw {
        user: UserId,
        amount_micros: i64,
    },
    /// Cash -> `qty` YES + `qty` NO shares.
    Split {
        user: UserId,
        market: MarketId,
        qty: u64,
    },
    /// `qty` YES + `qty` NO shares -> cash.
    Merge {
        user: UserId,
        market: MarketId,
        qty: u64,
    },
    /// Moves `qty` free shares of one outcome from one user to another (an operator's import
    /// of positions from another exchange; no trader can send it).
    TransferShares {
        from: UserId,
        to: UserId,
        market: MarketId,
        outcome: Outcome,
        qty: u64,
    },
    Place(PlaceOrder),
    Cancel {
        user: UserId,
        order: OrderId,
    },
    /// Cancels the user's open orders in one market, or everywhere.
    CancelAll {
        user: UserId,
        market: Option<MarketId>,
    },
    /// `qty` is the new total quantity; `price_units` the new limit in the order's outcome.
    Amend {
        user: UserId,
        order: OrderId,
        qty: Option<u64>,
        price_units: Option<u16>,
    },
    /// Cancels first, then places, each in the order given and each on its own.
    Batch {
        user: UserId,
        cancels: Vec<OrderId>,
        places: Vec<PlaceOrder>,
    },
}

/// Serialized through [`params_shape`], which keeps markets from before `lock_rule` byte for
/// byte what they were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketParams {
    pub slug: Slug,
    /// 100, 10 or 1 price units (0.01, 0.001, 0.0001).
    pub tick_units: u16,
    pub qty_min: u64,
    pub qty_max: u64,
    /// May be negative (a rebate) but never larger in size than the taker rate.
    pub maker_fee_bps: i32,
    pub taker_fee_bps: i32,
    pub close_ts_micros: Option<u64>,
    /// How a resting BUY's lock covers fee rounding: [`LockRule::CURRENT`] for a new market.
    pub lock_rule: LockRule,
}

impl MarketParams {
    /// The cash a resting BUY of `qty` at outcome limit `limit_units` holds in this market.
    #[inline(always)] // a call per placement and per partial fill, for a few instructions
    pub fn buy_reserve_micros(&self, qty: u64, limit_units: u16) -> i64 {
        buy_reserve_micros(
            qty,
            limit_units,
            self.maker_fee_bps,
            self.taker_fee_bps,
            self.lock_rule,
        )
    }

    /// The cash a BUY of `qty` at `limit_units` holds while it takes liquidity on its way to
    /// the book: its reserve, plus one micro-dollar in a market with a positive taker fee and no
    /// per-share buffer. Its taker fee is rounded up once over its fills and its remainder's fee
    /// reserve once on its own, and two roundings up can come to one micro-dollar more than the
    /// single one the reserve was sized with (`ceil(a) + ceil(b) <= ceil(a + b) + 1`); a buffer
    /// of one micro-dollar per share covers it from the filled shares' part. The micro-dollar
    /// comes back when the order rests or ends.
    #[inline]
    pub fn taking_reserve_micros(&self, qty: u64, limit_units: u16) -> i64 {
        let rounding_split =
            self.taker_fee_bps > 0 && self.lock_rule.buffer_micros(qty, self.maker_fee_bps) == 0;
        self.buy_reserve_micros(qty, limit_units) + i64::from(rounding_split)
    }
}

/// `MarketParams` as written and read. A market created before `lock_rule` existed must
/// round-trip byte for byte as it was: its events are hashed into the server's batch chain and
/// its snapshot into the state hash, and a journal must replay to the hashes it recorded. So in
/// a readable format (JSON) the field is left out for [`LockRule::BufferAlways`], and a missing
/// one reads as that; in a compact one (postcard), which cannot leave a field out, the rule
/// rides in the tag of the closing time: tags 0 and 1 are the old `Option<u64>`'s own None and
/// Some (the old rule), 2 and 3 the same under the current rule.
mod params_shape {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::MarketParams;
    use crate::types::Slug;
    use crate::units::LockRule;

    #[derive(Serialize, Deserialize)]
    #[serde(rename = "MarketParams")]
    struct Readable {
        slug: Slug,
        tick_units: u16,
        qty_min: u64,
        qty_max: u64,
        maker_fee_bps: i32,
        taker_fee_bps: i32,
        close_ts_micros: Option<u64>,
        #[serde(default = "buffer_always", skip_serializing_if = "is_buffer_always")]
        lock_rule: LockRule,
    }

    fn buffer_always() -> LockRule {
        LockRule::BufferAlways
    }

    fn is_buffer_always(rule: &LockRule) -> bool {
        *rule == LockRule::BufferAlways
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename = "MarketParams")]
    struct Compact {
        slug: Slug,
        tick_units: u16,
        qty_min: u64,
        qty_max: u64,
        maker_fee_bps: i32,
        taker_fee_bps: i32,
        closing: Closing,
    }

    /// The closing time and the lock rule in one tag; the variant order is the format.
    #[derive(Serialize, Deserialize)]
    enum Closing {
        Never,
        At(u64),
        NeverBufferForMakerFee,
        AtBufferForMakerFee(u64),
    }

    impl Closing {
        fn of(params: &MarketParams) -> Closing {
            match (params.close_ts_micros, params.lock_rule) {
                (None, LockRule::BufferAlways) => Closing::Never,
                (Some(ts), LockRule::BufferAlways) => Closing::At(ts),
                (None, LockRule::BufferForMakerFee) => Closing::NeverBufferForMakerFee,
                (Some(ts), LockRule::BufferForMakerFee) => Closing::AtBufferForMakerFee(ts),
            }
        }

        fn split(self) -> (Option<u64>, LockRule) {
            match self {
                Closing::Never => (None, LockRule::BufferAlways),
                Closing::At(ts) => (Some(ts), LockRule::BufferAlways),
                Closing::NeverBufferForMakerFee => (None, LockRule::BufferForMakerFee),
                Closing::AtBufferForMakerFee(ts) => (Some(ts), LockRule::BufferForMakerFee),
            }
        }
    }

    impl Serialize for MarketParams {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            if serializer.is_human_readable() {
                Readable {
                    slug: self.slug,
                    tick_units: self.tick_units,
                    qty_min: self.qty_min,
                    qty_max: self.qty_max,
                    maker_fee_bps: self.maker_fee_bps,
                    taker_fee_bps: self.taker_fee_bps,
                    close_ts_micros: self.close_ts_micros,
                    lock_rule: self.lock_rule,
                }
                .serialize(serializer)
            } else {
                Compact {
                    slug: self.slug,
                    tick_units: self.tick_units,
                    qty_min: self.qty_min,
                    qty_max: self.qty_max,
                    maker_fee_bps: self.maker_fee_bps,
                    taker_fee_bps: self.taker_fee_bps,
                    closing: Closing::of(self),
                }
                .serialize(serializer)
            }
        }
    }

    impl<'de> Deserialize<'de> for MarketParams {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            if deserializer.is_human_readable() {
                let r = Readable::deserialize(deserializer)?;
                return Ok(MarketParams {
                    slug: r.slug,
                    tick_units: r.tick_units,
                    qty_min: r.qty_min,
                    qty_max: r.qty_max,
                    maker_fee_bps: r.maker_fee_bps,
                    taker_fee_bps: r.taker_fee_bps,
                    close_ts_micros: r.close_ts_micros,
                    lock_rule: r.lock_rule,
                });
            }
            let c = Compact::deserialize(deserializer)?;
            let (close_ts_micros, lock_rule) = c.closing.split();
            Ok(MarketParams {
                slug: c.slug,
                tick_units: c.tick_units,
                qty_min: c.qty_min,
                qty_max: c.qty_max,
                maker_fee_bps: c.maker_fee_bps,
                taker_fee_bps: c.taker_fee_bps,
                close_ts_micros,
                lock_rule,
            })
        }
    }
}

#[cfg(test)]
impl MarketParams {
    /// A fee-free market that never closes, of 0.01 ticks and orders of 1 to 1,000 shares.
    pub(crate) fn for_tests(slug: &str) -> MarketParams {
        MarketParams {
            slug: Slug::new(slug).expect("a valid slug"),
            tick_units: 100,
            qty_min: 1,
            qty_max: 1_000,
            maker_fee_bps: 0,
            taker_fee_bps: 0,
            close_ts_micros: None,
            lock_rule: LockRule::CURRENT,
        }
    }
}

/// An order as a user submits it. Prices are in the order's own outcome (BUY NO at 4,500 rests
/// on the YES ask at 5,500).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlaceOrder {
    pub user: UserId,
    pub market: MarketId,
    pub side: Side,
    pub outcome: Outcome,
    pub order_type: OrderType,
    /// The limit of a LIMIT order; MARKET orders carry none.
    pub price_units: Option<u16>,
    /// Shares; exactly one of `qty` and `cash_micros` (MARKET BUY only) is given.
    pub qty: Option<u64>,
    pub cash_micros: Option<i64>,
    pub time_in_force: TimeInForce,
    /// Required for GTD, forbidden otherwise.
    pub expires_at_micros: Option<u64>,
    #[serde(default)]
    pub post_only: bool,
    #[serde(default)]
    pub reduce_only: bool,
    #[serde(default)]
    pub self_trade_prevention: SelfTradePrevention,
    pub client_order_id: Option<ClientOrderId>,
    /// MARKET only: the worst acceptable price in the order's outcome.
    pub worst_price_units: Option<u16>,
    /// MARKET only: the worst acceptable price as a relative move from the best opposite price.
    pub max_slippage_bps: Option<u32>,
}

impl PlaceOrder {
    /// A GTC limit order with every option at its default.
    pub fn limit(
        user: UserId,
        market: MarketId,
        side: Side,
        outcome: Outcome,
        price_units: u16,
        qty: u64,
    ) -> PlaceOrder {
        PlaceOrder {
            user,
            market,
            side,
            outcome,
            order_type: OrderType::Limit,
            price_units: Some(price_units),
            qty: Some(qty),
            cash_micros: None,
            time_in_force: TimeInForce::Gtc,
            expires_at_micros: None,
            post_only: false,
            reduce_only: false,
            self_trade_prevention: SelfTradePrevention::CancelTaker,
            client_order_id: None,
            worst_price_units: None,
            max_slippage_bps: None,
        }
    }

    /// An IOC market order for `qty` shares with no protection beyond the market's extremes.
    pub fn market(
        user: UserId,
        market: MarketId,
        side: Side,
        outcome: Outcome,
        qty: u64,
    ) -> PlaceOrder {
        PlaceOrder {
            order_type: OrderType::Market,
            price_units: None,
            time_in_force: TimeInForce::Ioc,
            ..PlaceOrder::limit(user, market, side, outcome, 0, qty)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    /// `MarketParams` as it was derived before `lock_rule`: what old journals and snapshots hold.
    #[derive(Serialize)]
    struct Before {
        slug: Slug,
        tick_units: u16,
        qty_min: u64,
        qty_max: u64,
        maker_fee_bps: i32,
        taker_fee_bps: i32,
        close_ts_micros: Option<u64>,
    }

    fn params(close_ts_micros: Option<u64>, lock_rule: LockRule) -> MarketParams {
        MarketParams {
            close_ts_micros,
            lock_rule,
            maker_fee_bps: -25,
            taker_fee_bps: 700,
            ..MarketParams::for_tests("shape")
        }
    }

    fn before(close_ts_micros: Option<u64>) -> Before {
        let p = params(close_ts_micros, LockRule::BufferAlways);
        Before {
            slug: p.slug,
            tick_units: p.tick_units,
            qty_min: p.qty_min,
            qty_max: p.qty_max,
            maker_fee_bps: p.maker_fee_bps,
            taker_fee_bps: p.taker_fee_bps,
            close_ts_micros,
        }
    }

    #[test]
    fn a_market_under_the_old_rule_writes_the_bytes_it_always_did() {
        for close in [None, Some(1_700_000_000_000_000)] {
            let old = params(close, LockRule::BufferAlways);
            let compact = postcard::to_allocvec(&old).unwrap();
            assert_eq!(compact, postcard::to_allocvec(&before(close)).unwrap());
            let json = serde_json::to_string(&old).unwrap();
            assert_eq!(json, serde_json::to_string(&before(close)).unwrap());
            assert!(!json.contains("lock_rule"));
            // And what was written before reads back under the old rule.
            assert_eq!(postcard::from_bytes::<MarketParams>(&compact).unwrap(), old);
            assert_eq!(serde_json::from_str::<MarketParams>(&json).unwrap(), old);
        }
    }

    #[test]
    fn a_market_under_the_current_rule_says_so_in_both_formats() {
        for close in [None, Some(1_700_000_000_000_000)] {
            let new = params(close, LockRule::CURRENT);
            let compact = postcard::to_allocvec(&new).unwrap();
            assert_ne!(compact, postcard::to_allocvec(&before(close)).unwrap());
            assert_eq!(postcard::from_bytes::<MarketParams>(&compact).unwrap(), new);
            let json = serde_json::to_string(&new).unwrap();
            assert!(
                json.contains(r#""lock_rule":"BUFFER_FOR_MAKER_FEE""#),
                "{json}"
            );
            assert_eq!(serde_json::from_str::<MarketParams>(&json).unwrap(), new);
            // Inside a journaled command too (an internally tagged enum).
            let command = Command {
                ts_micros: 1,
                op: Op::CreateMarket(new),
            };
            let text = serde_json::to_string(&command).unwrap();
            assert_eq!(serde_json::from_str::<Command>(&text).unwrap(), command);
        }
        // A tag past the four is refused, not guessed.
        let mut compact = postcard::to_allocvec(&params(None, LockRule::CURRENT)).unwrap();
        *compact.last_mut().unwrap() = 4;
        assert!(postcard::from_bytes::<MarketParams>(&compact).is_err());
    }
}
