//! The publisher task: completes each committed batch's messages and hands them out.
//!
//! The sequencer sends it a batch's [`Pending`] messages right after the commit, in commit
//! order, over an unbounded channel (so the sequencer never waits on a subscriber or the
//! network; the backlog is bounded by how far the database reads behind it can fall, and is
//! reported in the metrics). Tickers are rendered from committed rows; everything else arrives
//! complete. Must never publish a batch before the previous one, or hold a lock across an
//! await.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::feed::Pending;
use super::hub::Hub;
use super::redis::RedisSink;
use super::{frame, Kind, Message, Topic};
use crate::db::Db;
use crate::http::Error;
use crate::markets::{self, data};
use crate::metrics::Metrics;

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
            // What the events said completely goes out at once; tickers (rendered from rows)
            // follow. Each topic's messages are all of one kind, so
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
    let mut messages = Vec::with_capacity(pending.len());
    for item in pending {
        let (topic, seq) = match &item {
            Pending::Ready(message) => (message.topic, message.seq),
            Pending::Ticker { topic, seq, .. } => (*topic, *seq),
        };
        match render(db, item).await {
            Ok(message) => messages.push(Arc::new(message)),
            Err(error) => tracing::error!(%error, %topic, seq, "stream message left out"),
        }
    }
    messages
}

async fn render(db: &Db, item: Pending) -> Result<Message, Error> {
    let (topic, seq, data) = match item {
        Pending::Ready(message) => return Ok(message),
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
