//! The publisher task: completes each committed batch's messages and hands them out.
//!
//! The sequencer sends it a batch's [`Pending`] messages right after the commit, in commit
//! order, over an unbounded channel (so the sequencer never waits on a subscriber or the
//! network; the backlog is bounded by how far the database reads behind it can fall, and is
//! reported in the metrics). Orders, fills and tickers are rendered from committed rows: an
//! order message shows the order as committed when it is rendered (at or after its seq), which
//! is what a client applying whole order states needs. Must never publish a batch before the
//! previous one, or hold a lock across an await.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use engine::OrderId;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::feed::{FillSource, Pending};
use super::hub::Hub;
use super::redis::RedisSink;
use super::{frame, Kind, Message, Topic};
use crate::db::Db;
use crate::domain::format_cash;
use crate::http::Error;
use crate::ids::trade_uuid;
use crate::markets::{self, data};
use crate::metrics::Metrics;
use crate::orders::store::{orders_by_engine_ids, price_in, FillBody, OrderRow};
use crate::users::rfc3339;

/// The sequencer's handle on the publisher.
#[derive(Clone)]
pub struct Publisher {
    batches: mpsc::UnboundedSender<Vec<Pending>>,
    metrics: Arc<Metrics>,
}

impl Publisher {
    /// Queues one committed batch's messages.
    pub fn publish(&self, pending: Vec<Pending>) {
        if pending.is_empty() {
            return;
        }
        self.metrics.stream_backlog.fetch_add(1, Ordering::Relaxed);
        // A closed channel means the server is stopping; there is nobody left to tell.
        let _ = self.batches.send(pending);
    }
}

pub fn spawn(
    db: Db,
    hub: Arc<Hub>,
    redis: Option<RedisSink>,
    metrics: Arc<Metrics>,
) -> (Publisher, JoinHandle<()>) {
    let (batches, mut rx) = mpsc::unbounded_channel::<Vec<Pending>>();
    let task_metrics = metrics.clone();
    let join = tokio::spawn(async move {
        while let Some(pending) = rx.recv().await {
            // What the events said completely goes out at once; orders, fills and tickers
            // (rendered from rows) follow. Each topic's messages are all of one kind, so
            // every topic stays in order.
            let (ready, rest): (Vec<_>, Vec<_>) = pending
                .into_iter()
                .partition(|item| matches!(item, Pending::Ready(_)));
            let mut published = 0;
            for part in [ready, rest] {
                if part.is_empty() {
                    continue;
                }
                let messages = complete(&db, part).await;
                hub.publish(&messages);
                if let Some(redis) = &redis {
                    redis.send(&messages);
                }
                published += messages.len() as u64;
            }
            task_metrics.stream_backlog.fetch_sub(1, Ordering::Relaxed);
            task_metrics
                .stream_messages_total
                .fetch_add(published, Ordering::Relaxed);
        }
    });
    (Publisher { batches, metrics }, join)
}

/// Renders every message of a batch. One that cannot be rendered is left out and logged: its
/// subscribers see the gap in seqs and resync from a snapshot.
async fn complete(db: &Db, pending: Vec<Pending>) -> Vec<Arc<Message>> {
    let orders = match rows_of(db, &pending).await {
        Ok(orders) => orders,
        Err(error) => {
            tracing::error!(%error, "cannot read the orders of a published batch");
            HashMap::new()
        }
    };
    let mut messages = Vec::with_capacity(pending.len());
    for item in pending {
        let (topic, seq) = match &item {
            Pending::Ready(message) => (message.topic, message.seq),
            Pending::Orders { topic, seq, .. }
            | Pending::Fills { topic, seq, .. }
            | Pending::Ticker { topic, seq, .. } => (*topic, *seq),
        };
        match render(db, item, &orders).await {
            Ok(message) => messages.push(Arc::new(message)),
            Err(error) => tracing::error!(%error, %topic, seq, "stream message left out"),
        }
    }
    messages
}

async fn rows_of(db: &Db, pending: &[Pending]) -> Result<HashMap<OrderId, OrderRow>, Error> {
    let mut ids = Vec::new();
    for item in pending {
        match item {
            Pending::Orders { orders, .. } => ids.extend_from_slice(orders),
            Pending::Fills { fills, .. } => ids.extend(fills.iter().map(|fill| fill.order)),
            Pending::Ready(_) | Pending::Ticker { .. } => {}
        }
    }
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    ids.sort_unstable();
    ids.dedup();
    let rows = orders_by_engine_ids(db, &ids).await?;
    Ok(rows.into_iter().map(|row| (row.engine_id, row)).collect())
}

async fn render(
    db: &Db,
    item: Pending,
    orders: &HashMap<OrderId, OrderRow>,
) -> Result<Message, Error> {
    let (topic, seq, data) = match item {
        Pending::Ready(message) => return Ok(message),
        Pending::Orders {
            topic,
            seq,
            orders: ids,
        } => {
            let bodies = ids
                .iter()
                .map(|id| orders.get(id).map(|row| &row.body))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Error::internal("an order of the batch is not committed"))?;
            (topic, seq, json!({ "orders": bodies }))
        }
        Pending::Fills { topic, seq, fills } => {
            let bodies = fills
                .iter()
                .map(|fill| fill_body(fill, orders))
                .collect::<Result<Vec<_>, _>>()?;
            (topic, seq, json!({ "fills": bodies }))
        }
        Pending::Ticker { topic, seq, .. } => {
            let Topic::Ticker(market_id) = topic else {
                return Err(Error::internal("ticker message on another topic"));
            };
            let market = markets::existing(db, &market_id.to_string()).await?;
            let book = data::committed_depth(db, market.engine_id, market.id, 1).await?;
            let ticker = data::ticker_of(db, &market, &book).await?;
            (
                topic,
                seq,
                serde_json::to_value(ticker).map_err(Error::internal)?,
            )
        }
    };
    Ok(Message {
        topic,
        seq,
        text: frame(Kind::Event, &topic, seq, false, &data).into(),
    })
}

fn fill_body(fill: &FillSource, orders: &HashMap<OrderId, OrderRow>) -> Result<FillBody, Error> {
    let order = orders
        .get(&fill.order)
        .ok_or_else(|| Error::internal("a filled order is not committed"))?;
    let order = &order.body;
    Ok(FillBody {
        id: trade_uuid(fill.trade),
        order_id: order.id,
        market_id: order.market_id,
        side: order.side.clone(),
        outcome: order.outcome.clone(),
        price: price_in(&order.outcome, i64::from(fill.price_units))?,
        qty: i64::try_from(fill.qty).map_err(Error::internal)?,
        fee: format_cash(fill.fee_micros),
        role: if fill.maker { "MAKER" } else { "TAKER" }.to_owned(),
        kind: fill.kind.clone(),
        created_at: rfc3339(i64::try_from(fill.ts_micros).map_err(Error::internal)?),
    })
}
