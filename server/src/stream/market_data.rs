//! The market-data read model: every market's book levels, last price and rolling 24-hour
//! volume and change, in memory, so `/book`, `/ticker` and the ticker stream never queue behind
//! orders nor read history.
//!
//! Built at start from the recovered engine (books) and the last day of the `trades`
//! projection (by its `(engine_market_id, created_at)` index), then changed by the
//! [`MarketChanges`] the feed collects from each batch's events and the sequencer applies right
//! after the batch commits, so a reader sees exactly the committed books, never a level that
//! is not yet durable. The 24-hour figures are kept per minute: the window is the current
//! minute and the 1,439 before it. Must never be changed before a commit, nor hold anything of
//! a market but its levels and per-minute figures (memory follows the markets, not the trades).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use engine::{BookDepth, BookSide, Engine, MarketId};
use sqlx::Row;
use uuid::Uuid;

use crate::db::Db;
use crate::markets::data::TickerBody;

const MINUTE_MICROS: i64 = 60 * 1_000_000;
/// Minutes in the rolling window (24 hours).
pub const WINDOW_MINUTES: i64 = 24 * 60;

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

/// Trades of one minute.
#[derive(Clone, Copy, Debug)]
struct Minute {
    /// Minutes since the epoch.
    minute: i64,
    volume: u64,
    first_price_units: u16,
    last_price_units: u16,
}

#[derive(Debug)]
struct LiveMarket {
    id: Uuid,
    book_seq: u64,
    bids: BTreeMap<u16, u64>,
    asks: BTreeMap<u16, u64>,
    last_price_units: Option<u16>,
    /// The last price of the newest minute that left the window.
    before_window_units: Option<u16>,
    /// Oldest first; none older than the window once a trade has pruned them.
    minutes: VecDeque<Minute>,
}

impl LiveMarket {
    fn new(id: Uuid) -> LiveMarket {
        LiveMarket {
            id,
            book_seq: 0,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            last_price_units: None,
            before_window_units: None,
            minutes: VecDeque::new(),
        }
    }

    fn trade(&mut self, price_units: u16, qty: u64, ts_micros: i64) {
        let minute = ts_micros.div_euclid(MINUTE_MICROS);
        self.last_price_units = Some(price_units);
        match self.minutes.back_mut() {
            Some(last) if last.minute >= minute => {
                last.volume += qty;
                last.last_price_units = price_units;
            }
            _ => self.minutes.push_back(Minute {
                minute,
                volume: qty,
                first_price_units: price_units,
                last_price_units: price_units,
            }),
        }
        let oldest = minute - WINDOW_MINUTES + 1;
        while let Some(first) = self.minutes.front().copied() {
            if first.minute >= oldest {
                break;
            }
            self.before_window_units = Some(first.last_price_units);
            self.minutes.pop_front();
        }
    }

    /// (volume, opening price) of the window that ends in the minute of `now_micros`: the
    /// opening is the last price before the window, else the first within it.
    fn window(&self, now_micros: i64) -> (u64, Option<u16>) {
        let oldest = now_micros.div_euclid(MINUTE_MICROS) - WINDOW_MINUTES + 1;
        let mut before = self.before_window_units;
        let mut volume = 0;
        let mut first_within = None;
        for minute in &self.minutes {
            if minute.minute < oldest {
                before = Some(minute.last_price_units);
                continue;
            }
            volume += minute.volume;
            first_within = first_within.or(Some(minute.first_price_units));
        }
        (volume, before.or(first_within))
    }
}

/// Every market's live figures.
#[derive(Debug, Default)]
pub struct MarketData {
    markets: HashMap<MarketId, LiveMarket>,
}

impl MarketData {
    /// The books of `engine` and the last day of trades of every market in `markets`.
    pub async fn load(
        db: &Db,
        engine: &Engine,
        markets: &HashMap<MarketId, Uuid>,
        now_micros: i64,
    ) -> Result<MarketData, sqlx::Error> {
        let since = (now_micros.div_euclid(MINUTE_MICROS) - WINDOW_MINUTES + 1) * MINUTE_MICROS;
        let mut data = MarketData::default();
        for (market, id) in markets {
            let mut live = LiveMarket::new(*id);
            if let Some(book) = engine.book_depth(*market, usize::MAX) {
                live.book_seq = book.book_seq;
                live.bids.extend(book.bids);
                live.asks.extend(book.asks);
            }
            let engine_id = i64::from(market.0);
            let before: Option<i64> = sqlx::query_scalar(
                "SELECT price_units FROM trades WHERE engine_market_id = $1 AND created_at < $2 \
                 ORDER BY created_at DESC, engine_trade_id DESC LIMIT 1",
            )
            .bind(engine_id)
            .bind(since)
            .fetch_optional(&db.pool)
            .await?;
            live.before_window_units = before.and_then(|price| u16::try_from(price).ok());
            live.last_price_units = live.before_window_units;
            let rows = sqlx::query(
                "SELECT price_units, qty, created_at FROM trades \
                 WHERE engine_market_id = $1 AND created_at >= $2 \
                 ORDER BY created_at, engine_trade_id",
            )
            .bind(engine_id)
            .bind(since)
            .fetch_all(&db.pool)
            .await?;
            for row in rows {
                let price: i64 = row.try_get("price_units")?;
                let qty: i64 = row.try_get("qty")?;
                let at: i64 = row.try_get("created_at")?;
                if let (Ok(price), Ok(qty)) = (u16::try_from(price), u64::try_from(qty)) {
                    live.trade(price, qty, at);
                }
            }
            data.markets.insert(*market, live);
        }
        Ok(data)
    }

    /// Applies one committed batch's changes.
    pub fn apply(&mut self, changes: &MarketChanges) {
        for (market, id) in &changes.created {
            self.markets.insert(*market, LiveMarket::new(*id));
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
        let mut live = LiveMarket::new(Uuid::nil());
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
        assert_eq!(live.minutes.len(), 2);
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
        assert_eq!(LiveMarket::new(Uuid::nil()).window(T0), (0, None));
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
