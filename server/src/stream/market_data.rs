//! The market-data read model: every market's book levels, last price and per-minute candles
//! of the last `CANDLE_MINUTES_KEPT` minutes, in memory, so `/book`, `/ticker`, `/candles` and
//! the ticker stream never queue behind orders nor read history.
//!
//! Built at start from the recovered engine (books) and the `trades` projection (minute
//! candles aggregated by its `(engine_market_id, created_at)` index), then changed by the
//! [`MarketChanges`] the feed collects from each batch's events and the sequencer applies right
//! after the batch commits, so a reader sees exactly the committed books, never a level that
//! is not yet durable. The ticker's 24-hour window is the current minute and the 1,439 before
//! it; candles of any interval are folded from the minutes, and a range older than the minutes
//! kept is left to the database. Must never be changed before a commit, nor hold anything of a
//! market but its levels and minutes with trades (memory follows the markets and the minutes
//! traded, not the trades).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use engine::{BookDepth, BookSide, Engine, MarketId};
use uuid::Uuid;

use crate::db::Db;
use crate::trade_history::{price_at, traded, Traded};
use crate::wire::TickerBody;

const MINUTE_MICROS: i64 = 60 * 1_000_000;
/// Minutes in the ticker's rolling window (24 hours).
pub const WINDOW_MINUTES: i64 = 24 * 60;
/// Minutes of candles kept per market (7 days): the default range of every interval up to 1h
/// is served from memory. At most one entry per minute that had a trade.
pub const CANDLE_MINUTES_KEPT: i64 = 7 * 24 * 60;
const _: () = assert!(CANDLE_MINUTES_KEPT >= WINDOW_MINUTES);

/// The read model, shared by the sequencer (the one writer) and every reader.
#[derive(Clone, Default)]
pub struct SharedMarketData(Arc<RwLock<MarketData>>);

impl SharedMarketData {
    pub fn new(data: MarketData) -> SharedMarketData {
        SharedMarketData(Arc::new(RwLock::new(data)))
    }

    pub fn read(&self) -> RwLockReadGuard<'_, MarketData> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, MarketData> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one batch changed in the market data, in event order.
#[derive(Debug, Default)]
pub struct MarketChanges {
    created: Vec<(MarketId, Uuid)>,
    levels: Vec<Level>,
    trades: Vec<TradePrint>,
}

#[derive(Debug)]
struct Level {
    market: MarketId,
    book_seq: u64,
    side: BookSide,
    price_units: u16,
    qty: u64,
}

#[derive(Debug, Clone, Copy)]
struct TradePrint {
    market: MarketId,
    /// YES price.
    price_units: u16,
    qty: u64,
    ts_micros: i64,
}

impl MarketChanges {
    pub fn created(&mut self, market: MarketId, id: Uuid) {
        self.created.push((market, id));
    }

    pub fn level(
        &mut self,
        market: MarketId,
        book_seq: u64,
        side: BookSide,
        price_units: u16,
        qty: u64,
    ) {
        self.levels.push(Level {
            market,
            book_seq,
            side,
            price_units,
            qty,
        });
    }

    pub fn trade(&mut self, market: MarketId, price_units: u16, qty: u64, ts_micros: i64) {
        self.trades.push(TradePrint {
            market,
            price_units,
            qty,
            ts_micros,
        });
    }
}

#[derive(Debug)]
struct LiveMarket {
    id: Uuid,
    book_seq: u64,
    bids: BTreeMap<u16, u64>,
    asks: BTreeMap<u16, u64>,
    last_price_units: Option<u16>,
    /// One candle per minute that had trades (`bucket` is the minute since the epoch), for
    /// every minute from `kept_from` on.
    minutes: BTreeMap<i64, Traded>,
    kept_from: i64,
    /// The close of the last minute before `kept_from`.
    close_before_kept: Option<i64>,
}

impl LiveMarket {
    /// A market with no trades before `kept_from` but those `close_before_kept` ends on.
    fn new(id: Uuid, kept_from: i64, close_before_kept: Option<i64>) -> LiveMarket {
        LiveMarket {
            id,
            book_seq: 0,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            last_price_units: close_before_kept.and_then(|price| u16::try_from(price).ok()),
            minutes: BTreeMap::new(),
            kept_from,
            close_before_kept,
        }
    }

    /// Adds a committed minute candle (at start, from the projection).
    fn minute(&mut self, candle: Traded) {
        self.last_price_units = u16::try_from(candle.close).ok();
        self.minutes.insert(candle.bucket, candle);
    }

    fn trade(&mut self, price_units: u16, qty: u64, ts_micros: i64) {
        let minute = ts_micros.div_euclid(MINUTE_MICROS);
        let price = i64::from(price_units);
        let volume = i64::try_from(qty).unwrap_or(i64::MAX);
        self.last_price_units = Some(price_units);
        let candle = self.minutes.entry(minute).or_insert(Traded {
            bucket: minute,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: 0,
        });
        candle.high = candle.high.max(price);
        candle.low = candle.low.min(price);
        candle.close = price;
        candle.volume = candle.volume.saturating_add(volume);
        let oldest = minute - CANDLE_MINUTES_KEPT + 1;
        if oldest > self.kept_from {
            while let Some(entry) = self.minutes.first_entry() {
                if *entry.key() >= oldest {
                    break;
                }
                self.close_before_kept = Some(entry.remove().close);
            }
            self.kept_from = oldest;
        }
    }

    /// The close of the last minute before `minute` (`None`: no trade before it).
    fn close_before(&self, minute: i64) -> Option<i64> {
        match self.minutes.range(..minute).next_back() {
            Some((_, candle)) => Some(candle.close),
            None => self.close_before_kept,
        }
    }

    /// (volume, opening price) of the window that ends in the minute of `now_micros`: the
    /// opening is the last price before the window, else the first within it.
    fn window(&self, now_micros: i64) -> (u64, Option<u16>) {
        let now = now_micros.div_euclid(MINUTE_MICROS);
        let oldest = now - WINDOW_MINUTES + 1;
        let mut volume = 0i64;
        let mut first_within = None;
        for candle in self.minutes.range(oldest..=now).map(|(_, candle)| candle) {
            volume = volume.saturating_add(candle.volume);
            first_within = first_within.or(Some(candle.open));
        }
        let opening = self.close_before(oldest).or(first_within);
        (
            u64::try_from(volume).unwrap_or_default(),
            opening.and_then(|price| u16::try_from(price).ok()),
        )
    }

    /// The intervals of `step_minutes` numbered `first` to `last` that had trades, and the
    /// close before `first`; `None` when the range starts before the minutes kept.
    fn candles(
        &self,
        step_minutes: i64,
        first: i64,
        last: i64,
    ) -> Option<(Vec<Traded>, Option<i64>)> {
        let start = first.checked_mul(step_minutes)?;
        if start < self.kept_from {
            return None;
        }
        let end = last.checked_add(1)?.checked_mul(step_minutes)?;
        let mut traded: Vec<Traded> = Vec::new();
        for candle in self.minutes.range(start..end).map(|(_, candle)| candle) {
            let bucket = candle.bucket.div_euclid(step_minutes);
            match traded.last_mut() {
                Some(open) if open.bucket == bucket => {
                    open.high = open.high.max(candle.high);
                    open.low = open.low.min(candle.low);
                    open.close = candle.close;
                    open.volume = open.volume.saturating_add(candle.volume);
                }
                _ => traded.push(Traded { bucket, ..*candle }),
            }
        }
        Some((traded, self.close_before(start)))
    }
}

/// Every market's live figures.
#[derive(Debug, Default)]
pub struct MarketData {
    markets: HashMap<MarketId, LiveMarket>,
}

impl MarketData {
    /// The books of `engine` and the minute candles of the last `CANDLE_MINUTES_KEPT`
    /// minutes of every market in `markets`, as committed.
    pub async fn load(
        db: &Db,
        engine: &Engine,
        markets: &HashMap<MarketId, Uuid>,
        now_micros: i64,
    ) -> Result<MarketData, sqlx::Error> {
        let now = now_micros.div_euclid(MINUTE_MICROS);
        let kept_from = now - CANDLE_MINUTES_KEPT + 1;
        let mut data = MarketData::default();
        for (market, id) in markets {
            let engine_id = i64::from(market.0);
            let before = price_at(db, engine_id, kept_from * MINUTE_MICROS - 1).await?;
            let mut live = LiveMarket::new(*id, kept_from, before);
            if let Some(book) = engine.book_depth(*market, usize::MAX) {
                live.book_seq = book.book_seq;
                live.bids.extend(book.bids);
                live.asks.extend(book.asks);
            }
            for candle in traded(db, engine_id, MINUTE_MICROS, kept_from, now).await? {
                live.minute(candle);
            }
            data.markets.insert(*market, live);
        }
        Ok(data)
    }

    /// Applies one committed batch's changes.
    pub fn apply(&mut self, changes: &MarketChanges) {
        for (market, id) in &changes.created {
            // A new market has traded in no minute before now.
            self.markets
                .insert(*market, LiveMarket::new(*id, i64::MIN, None));
        }
        for level in &changes.levels {
            let Some(live) = self.markets.get_mut(&level.market) else {
                continue;
            };
            live.book_seq = level.book_seq;
            let side = match level.side {
                BookSide::Bid => &mut live.bids,
                BookSide::Ask => &mut live.asks,
            };
            if level.qty == 0 {
                side.remove(&level.price_units);
            } else {
                side.insert(level.price_units, level.qty);
            }
        }
        for trade in &changes.trades {
            if let Some(live) = self.markets.get_mut(&trade.market) {
                live.trade(trade.price_units, trade.qty, trade.ts_micros);
            }
        }
    }

    /// The market's public id (`None`: no such market).
    pub fn market_id(&self, market: MarketId) -> Option<Uuid> {
        self.markets.get(&market).map(|live| live.id)
    }

    /// Up to `depth` levels per side, best first (`None`: no such market).
    pub fn depth(&self, market: MarketId, depth: usize) -> Option<BookDepth> {
        let live = self.markets.get(&market)?;
        Some(BookDepth {
            market,
            book_seq: live.book_seq,
            bids: live
                .bids
                .iter()
                .rev()
                .take(depth)
                .map(|(price, qty)| (*price, *qty))
                .collect(),
            asks: live
                .asks
                .iter()
                .take(depth)
                .map(|(price, qty)| (*price, *qty))
                .collect(),
        })
    }

    /// The intervals of `step_micros` numbered `first` to `last` that had trades and the close
    /// before them, from memory; `None` when there is no such market or the range is older
    /// than the minutes kept (the database has it).
    pub fn candles(
        &self,
        market: MarketId,
        step_micros: i64,
        first: i64,
        last: i64,
    ) -> Option<(Vec<Traded>, Option<i64>)> {
        let live = self.markets.get(&market)?;
        live.candles(step_micros / MINUTE_MICROS, first, last)
    }

    /// The market's ticker at `now_micros` (`None`: no such market).
    pub fn ticker(&self, market: MarketId, now_micros: i64) -> Option<TickerBody> {
        let live = self.markets.get(&market)?;
        let (volume, opening) = live.window(now_micros);
        Some(TickerBody::new(
            live.id,
            live.bids.keys().next_back().copied(),
            live.asks.keys().next().copied(),
            live.last_price_units,
            volume,
            opening,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000_000;

    fn market_with_trades(trades: &[(u16, u64, i64)]) -> LiveMarket {
        let mut live = LiveMarket::new(Uuid::nil(), i64::MIN, None);
        for (price, qty, at) in trades {
            live.trade(*price, *qty, *at);
        }
        live
    }

    #[test]
    fn the_window_holds_the_last_1440_minutes_and_opens_at_the_price_before_it() {
        let day = WINDOW_MINUTES * MINUTE_MICROS;
        let live = market_with_trades(&[
            (4_000, 5, T0),
            (4_200, 7, T0 + MINUTE_MICROS),
            (4_600, 3, T0 + day),
        ]);
        // At the last trade, the first minute has just left the window.
        assert_eq!(live.window(T0 + day), (10, Some(4_000)));
        // A day after the second trade's minute, only the last trade is within it.
        assert_eq!(live.window(T0 + day + MINUTE_MICROS), (3, Some(4_200)));
        // Two days on, nothing is.
        assert_eq!(live.window(T0 + 3 * day), (0, Some(4_600)));
        assert_eq!(live.last_price_units, Some(4_600));
    }

    #[test]
    fn without_a_price_before_the_window_it_opens_at_its_first_trade() {
        let live = market_with_trades(&[(4_000, 10, T0), (5_500, 2, T0 + 1)]);
        assert_eq!(live.window(T0), (12, Some(4_000)));
        assert_eq!(live.minutes.len(), 1);
        assert_eq!(
            LiveMarket::new(Uuid::nil(), i64::MIN, None).window(T0),
            (0, None)
        );
    }

    #[test]
    fn candles_fold_the_minutes_and_leave_older_ranges_to_the_database() {
        let m0 = T0 / MINUTE_MICROS;
        let live = market_with_trades(&[
            (4_000, 5, T0),
            (4_400, 1, T0 + 1),
            (3_900, 2, T0 + 4 * MINUTE_MICROS),
            (4_100, 3, T0 + 5 * MINUTE_MICROS),
        ]);
        // Five-minute candles: minutes 0-4 and 5-9 after T0 (T0 is on a 5-minute boundary).
        let (traded, prior) = live.candles(5, m0 / 5 - 1, m0 / 5 + 1).unwrap();
        assert_eq!(prior, None);
        assert_eq!(
            traded,
            vec![
                Traded {
                    bucket: m0 / 5,
                    open: 4_000,
                    high: 4_400,
                    low: 3_900,
                    close: 3_900,
                    volume: 8
                },
                Traded {
                    bucket: m0 / 5 + 1,
                    open: 4_100,
                    high: 4_100,
                    low: 4_100,
                    close: 4_100,
                    volume: 3
                },
            ]
        );
        let (traded, prior) = live.candles(1, m0 + 5, m0 + 5).unwrap();
        assert_eq!((traded.len(), prior), (1, Some(3_900)));

        // A week later the first minutes are dropped; a range reaching back to them is refused.
        let mut live = live;
        live.trade(
            4_500,
            1,
            T0 + CANDLE_MINUTES_KEPT * MINUTE_MICROS + MINUTE_MICROS,
        );
        assert_eq!(live.kept_from, m0 + 2);
        assert_eq!(live.close_before_kept, Some(4_400));
        assert!(live.candles(1, m0, m0 + 10).is_none());
        let (traded, prior) = live.candles(1, m0 + 2, m0 + 4).unwrap();
        assert_eq!((traded.len(), prior), (1, Some(4_400)));
    }

    #[test]
    fn levels_follow_the_events_and_zero_removes_one() {
        let market = MarketId(0);
        let mut data = MarketData::default();
        let mut changes = MarketChanges::default();
        changes.created(market, Uuid::nil());
        changes.level(market, 1, BookSide::Bid, 4_000, 10);
        changes.level(market, 2, BookSide::Bid, 4_100, 5);
        changes.level(market, 3, BookSide::Ask, 5_000, 7);
        changes.level(market, 4, BookSide::Bid, 4_100, 0);
        changes.trade(market, 4_100, 5, T0);
        data.apply(&changes);
        let book = data.depth(market, 10).unwrap();
        assert_eq!(book.book_seq, 4);
        assert_eq!(book.bids, vec![(4_000, 10)]);
        assert_eq!(book.asks, vec![(5_000, 7)]);
        assert!(data.depth(MarketId(1), 10).is_none());
        let ticker = serde_json::to_value(data.ticker(market, T0).unwrap()).unwrap();
        assert_eq!(ticker["last"], "0.41");
        assert_eq!(ticker["volume24h"], 5);
        assert_eq!(ticker["change24h"], "0.00");
        assert_eq!(ticker["mid"], "0.45");
    }
}
