//! The publisher task: hands each committed batch's messages out.
//!
//! The sequencer sends it a batch's messages right after the commit, in commit order, over an
//! unbounded channel, so the sequencer never waits on a subscriber or the network (the
//! messages are complete: nothing here reads the database, so the backlog only grows while the
//! hub and Redis fall behind the sequencer, and is reported in the metrics). Must never publish
//! a batch before the previous one, or hold a lock across an await.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::hub::Hub;
use super::redis::RedisSink;
use super::Message;
use crate::metrics::Metrics;

/// The sequencer's handle on the publisher.
#[derive(Clone)]
pub struct Publisher {
    batches: mpsc::UnboundedSender<Vec<Arc<Message>>>,
    metrics: Arc<Metrics>,
}

impl Publisher {
    /// Queues one committed batch's messages.
    pub fn publish(&self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        self.metrics.stream_backlog.fetch_add(1, Ordering::Relaxed);
        let messages = messages.into_iter().map(Arc::new).collect();
        // A closed channel means the server is stopping; there is nobody left to tell.
        let _ = self.batches.send(messages);
    }
}

pub fn spawn(
    hub: Arc<Hub>,
    redis: Option<RedisSink>,
    metrics: Arc<Metrics>,
) -> (Publisher, JoinHandle<()>) {
    let (batches, mut rx) = mpsc::unbounded_channel::<Vec<Arc<Message>>>();
    let task_metrics = metrics.clone();
    let join = tokio::spawn(async move {
        while let Some(messages) = rx.recv().await {
            hub.publish(&messages);
            if let Some(redis) = &redis {
                redis.send(&messages);
            }
            task_metrics.stream_backlog.fetch_sub(1, Ordering::Relaxed);
            task_metrics
                .stream_messages_total
                .fetch_add(messages.len() as u64, Ordering::Relaxed);
        }
    });
    (Publisher { batches, metrics }, join)
}
