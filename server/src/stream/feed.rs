//! The sequencer's side of the streams: turns a batch's events into numbered topic messages.
//!
//! Driven event by event by the sequencer's one reading of the batch (`sequencer::interpret`),
//! before the commit: it assigns every topic message its seq (one per command that changes the
//! topic; a book's seq is the engine's own `book_seq`) and returns the topics' new seqs so the
//! commit stores them in `stream_seqs` with the batch. Book deltas, trades, balances, positions,
//! and orders and fills (from the [`OrderStates`] it keeps up to date with the same events,
//! which the sequencer's replies read too) are rendered here, as they stand after each command.
//! It also collects the batch's [`MarketChanges`]; tickers, which read the market data those
//! changes update, are numbered here and rendered by the sequencer once the batch is committed
//! and applied. Must never: read the database after start, or skip or repeat a seq.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use engine::{BookSide, Engine, Event, MarketId, OrderId, UserId};
use serde_json::json;
use sqlx::Row;
use uuid::Uuid;

use super::market_data::{MarketChanges, MarketData};
use super::order_states::{FillSide, OrderStates};
use super::{frame, Kind, Message, Topic};
use crate::db::Db;
use crate::domain::{format_price, rfc3339, wire_name};
use crate::ids::trade_uuid;
use crate::sequencer::{Entry, Subject};
use crate::wire::{BalanceBody, FillBody, TradeBody};

/// What one batch publishes, the seqs to store with it and what it changes in the market data.
#[derive(Debug, Default)]
pub struct Plan {
    pub messages: Vec<Message>,
    /// The ticker messages to render once `market` is applied: (topic, seq, market).
    pub tickers: Vec<(Topic, u64, MarketId)>,
    pub seqs: BTreeMap<String, u64>,
    pub market: MarketChanges,
    /// Markets whose book the batch changed: each gets a ticker message.
    books_changed: BTreeSet<MarketId>,
}

impl Plan {
    /// Once the batch is committed: applies its changes to the market data and returns every
    /// message, tickers rendered from the data as they now stand at `now_micros`.
    pub fn finish(self, data: &mut MarketData, now_micros: i64) -> Vec<Message> {
        data.apply(&self.market);
        let mut messages = self.messages;
        for (topic, seq, market) in self.tickers {
            let Some(ticker) = data.ticker(market, now_micros) else {
                continue;
            };
            let data = serde_json::to_value(ticker).unwrap_or_default();
            messages.push(Message {
                topic,
                seq,
                text: frame(Kind::Event, &topic, seq, false, &data).into(),
            });
        }
        messages
    }
}

pub struct Feed {
    seqs: HashMap<Topic, u64>,
    markets: HashMap<MarketId, Uuid>,
    users: HashMap<UserId, Uuid>,
    orders: OrderStates,
}

/// What one command changed, per topic.
#[derive(Default)]
pub struct Changes {
    book: BTreeMap<MarketId, (u64, Vec<serde_json::Value>)>,
    trades: BTreeMap<MarketId, Vec<TradeBody>>,
    orders: BTreeMap<UserId, BTreeSet<OrderId>>,
    fills: BTreeMap<UserId, Vec<FillBody>>,
    positions: BTreeMap<UserId, BTreeMap<MarketId, (u64, u64)>>,
    balances: BTreeMap<UserId, (i64, i64)>,
}

impl Feed {
    /// Loads the seqs, ids and open orders the feed continues from, and stores every market's
    /// book seq (the engine's, which the recovery just rebuilt) for the gateways.
    pub async fn load(
        db: &Db,
        engine: &Engine,
        users: &HashMap<Uuid, UserId>,
    ) -> Result<Feed, sqlx::Error> {
        let mut feed = Feed {
            seqs: HashMap::new(),
            markets: HashMap::new(),
            users: users.iter().map(|(uuid, user)| (*user, *uuid)).collect(),
            orders: OrderStates::load(db).await?,
        };
        for row in sqlx::query("SELECT topic, seq FROM stream_seqs")
            .fetch_all(&db.pool)
            .await?
        {
            let key: String = row.try_get("topic")?;
            let seq: i64 = row.try_get("seq")?;
            if let (Ok(topic), Ok(seq)) = (key.parse::<Topic>(), u64::try_from(seq)) {
                feed.seqs.insert(topic, seq);
            }
        }
        for row in sqlx::query("SELECT engine_market_id, id FROM markets")
            .fetch_all(&db.pool)
            .await?
        {
            let engine_id: i64 = row.try_get("engine_market_id")?;
            let id: String = row.try_get("id")?;
            if let (Ok(engine_id), Ok(id)) = (u32::try_from(engine_id), Uuid::parse_str(&id)) {
                feed.markets.insert(MarketId(engine_id), id);
            }
        }
        let mut books = BTreeMap::new();
        for (market, id) in &feed.markets {
            if let Some(book) = engine.book_depth(*market, 0) {
                feed.seqs.insert(Topic::Book(*id), book.book_seq);
                books.insert(Topic::Book(*id).to_string(), book.book_seq);
            }
        }
        let mut tx = db.pool.begin().await?;
        for (topic, seq) in &books {
            sqlx::query(SEQ_UPSERT)
                .bind(topic.as_str())
                .bind(i64::try_from(*seq).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(feed)
    }

    /// A new batch: the order states forget the previous batch's ended orders and fills.
    pub(crate) fn begin_batch(&mut self) -> Plan {
        self.orders.begin_batch();
        Plan::default()
    }

    /// After the last command of the batch: a ticker message for each market whose book moved.
    pub(crate) fn end_batch(&mut self, mut plan: Plan) -> Plan {
        for market in std::mem::take(&mut plan.books_changed) {
            let Some(id) = self.markets.get(&market).copied() else {
                continue;
            };
            let topic = Topic::Ticker(id);
            let seq = self.next(topic, &mut plan);
            plan.tickers.push((topic, seq, market));
        }
        plan
    }

    /// Every market's id, by engine id.
    pub fn markets(&self) -> &HashMap<MarketId, Uuid> {
        &self.markets
    }

    /// The open and just-ended orders, as the last planned batch left them.
    pub fn orders(&self) -> &OrderStates {
        &self.orders
    }

    fn next(&mut self, topic: Topic, plan: &mut Plan) -> u64 {
        let seq = self.seqs.entry(topic).or_insert(0);
        *seq += 1;
        plan.seqs.insert(topic.to_string(), *seq);
        *seq
    }

    /// Reads one event of `entry`, a command committed at `ts`, into what the command changed
    /// (`changes`, rendered by [`Feed::end_command`]) and into the batch's market data changes.
    pub(crate) fn event(
        &mut self,
        event: &Event,
        entry: &Entry,
        ts: i64,
        changes: &mut Changes,
        plan: &mut Plan,
    ) {
        let market_changes = &mut plan.market;
        match event {
            Event::UserCreated { user } => {
                if let Some(Subject::User { user_id }) = &entry.subject {
                    self.users.insert(*user, *user_id);
                }
            }
            Event::MarketCreated { market, params } => {
                if let Some(Subject::Market { market_id, .. }) = &entry.subject {
                    self.markets.insert(*market, *market_id);
                    self.orders.market(*market_id, params);
                    market_changes.created(*market, *market_id);
                }
            }
            Event::BookLevel {
                market,
                book_seq,
                side,
                price_units,
                qty,
            } => {
                market_changes.level(*market, *book_seq, *side, *price_units, *qty);
                let (seq, levels) = changes.book.entry(*market).or_default();
                *seq = *book_seq;
                let side = match side {
                    BookSide::Bid => "BID",
                    BookSide::Ask => "ASK",
                };
                levels.push(json!({
                    "side": side,
                    "price": format_price((*price_units).into()),
                    "qty": qty,
                }));
            }
            Event::OrderAccepted { request, .. } => {
                let market_id = self.markets.get(&request.market).copied();
                if let Some((order, user)) = self.orders.apply(event, market_id, ts) {
                    changes.orders.entry(user).or_default().insert(order);
                }
            }
            Event::OrderRested { .. }
            | Event::OrderReduced { .. }
            | Event::OrderAmended { .. }
            | Event::OrderEnded { .. } => {
                if let Some((order, user)) = self.orders.apply(event, None, ts) {
                    changes.orders.entry(user).or_default().insert(order);
                }
            }
            Event::Trade {
                trade,
                market,
                maker_order,
                taker_order,
                price_units,
                qty,
                kind,
                taker_side,
                maker_fee_micros,
                taker_fee_micros,
                ..
            } => {
                let kind = wire_name(kind);
                market_changes.trade(*market, *price_units, *qty, ts);
                changes.trades.entry(*market).or_default().push(TradeBody {
                    id: trade_uuid(*trade),
                    price: format_price((*price_units).into()),
                    qty: i64::try_from(*qty).unwrap_or(i64::MAX),
                    taker_side: wire_name(taker_side),
                    kind: kind.clone(),
                    created_at: rfc3339(ts),
                });
                for (order, maker, fee_micros) in [
                    (maker_order, true, maker_fee_micros),
                    (taker_order, false, taker_fee_micros),
                ] {
                    let side = FillSide {
                        trade: *trade,
                        order: *order,
                        maker,
                        yes_price_units: *price_units,
                        qty: *qty,
                        fee_micros: *fee_micros,
                        kind: &kind,
                        ts_micros: ts,
                    };
                    if let Some((user, fill)) = self.orders.fill(side) {
                        changes.orders.entry(user).or_default().insert(*order);
                        changes.fills.entry(user).or_default().push(fill);
                    }
                }
            }
            Event::Position {
                user,
                market,
                position,
            } => {
                let yes = position.yes_free + position.yes_reserved;
                let no = position.no_free + position.no_reserved;
                changes
                    .positions
                    .entry(*user)
                    .or_default()
                    .insert(*market, (yes, no));
            }
            Event::Balance {
                user,
                available_micros,
                locked_micros,
            } => {
                changes
                    .balances
                    .insert(*user, (*available_micros, *locked_micros));
            }
            _ => {}
        }
    }

    /// After the last event of a command: its messages, each topic numbered once.
    pub(crate) fn end_command(&mut self, changes: Changes, plan: &mut Plan) {
        plan.books_changed.extend(changes.book.keys().copied());
        for (market, (book_seq, levels)) in changes.book {
            let Some(id) = self.markets.get(&market).copied() else {
                continue;
            };
            let topic = Topic::Book(id);
            let seq = self.next(topic, plan);
            if seq != book_seq {
                // The engine's count is the authority (REST depth reports it); follow it.
                tracing::error!(%topic, seq, book_seq, "book seq out of step with the engine");
                self.seqs.insert(topic, book_seq);
                plan.seqs.insert(topic.to_string(), book_seq);
            }
            let data = json!({ "changes": levels });
            push_ready(plan, Kind::Delta, topic, book_seq, &data);
        }
        for (market, trades) in changes.trades {
            let Some(id) = self.markets.get(&market).copied() else {
                continue;
            };
            let topic = Topic::Trades(id);
            let seq = self.next(topic, plan);
            let data = json!({ "trades": trades });
            push_ready(plan, Kind::Event, topic, seq, &data);
        }
        for (user, orders) in changes.orders {
            let Some(id) = self.users.get(&user).copied() else {
                continue;
            };
            let topic = Topic::Orders(id);
            let seq = self.next(topic, plan);
            let bodies: Vec<_> = orders
                .into_iter()
                .filter_map(|order| self.orders.body(order))
                .collect();
            push_ready(plan, Kind::Event, topic, seq, &json!({ "orders": bodies }));
        }
        for (user, fills) in changes.fills {
            let Some(id) = self.users.get(&user).copied() else {
                continue;
            };
            let topic = Topic::Fills(id);
            let seq = self.next(topic, plan);
            push_ready(plan, Kind::Event, topic, seq, &json!({ "fills": fills }));
        }
        for (user, positions) in changes.positions {
            let Some(id) = self.users.get(&user).copied() else {
                continue;
            };
            let positions: Vec<_> = positions
                .into_iter()
                .filter_map(|(market, (yes, no))| {
                    let market_id = self.markets.get(&market)?;
                    Some(json!({ "marketId": market_id, "yesShares": yes, "noShares": no }))
                })
                .collect();
            let topic = Topic::Positions(id);
            let seq = self.next(topic, plan);
            push_ready(
                plan,
                Kind::Event,
                topic,
                seq,
                &json!({ "positions": positions }),
            );
        }
        for (user, (available, locked)) in changes.balances {
            let Some(id) = self.users.get(&user).copied() else {
                continue;
            };
            let topic = Topic::Balances(id);
            let seq = self.next(topic, plan);
            let body = BalanceBody::new(available, locked, self.orders.fee_reserve(user));
            let data = serde_json::to_value(body).unwrap_or_default();
            push_ready(plan, Kind::Event, topic, seq, &data);
        }
    }
}

fn push_ready(plan: &mut Plan, kind: Kind, topic: Topic, seq: u64, data: &serde_json::Value) {
    plan.messages.push(Message {
        topic,
        seq,
        text: frame(kind, &topic, seq, false, data).into(),
    });
}

const SEQ_UPSERT: &str = "INSERT INTO stream_seqs (topic, seq) VALUES ($1, $2) \
     ON CONFLICT (topic) DO UPDATE SET seq = excluded.seq";
