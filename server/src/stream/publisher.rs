//! The publisher task: hands each committed batch's messages out.
//!
//! The sequencer sends it a batch's messages right after the commit, in commit order, over a
//! bounded channel it never waits on: when `PUBLISH_QUEUE_MAX` batches are already waiting, the
//! batch is dropped and counted, and every client of its topics sees the seq gap and resyncs
//! from the committed state. Nothing here reads the database or waits on the network (the
//! hub and the Redis sink take messages without blocking), so the queue only fills if this
//! task is starved. Must never publish a batch before the previous one, or hold a lock across
//! an await.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::hub::Hub;
use super::redis::RedisSink;
use super::Message;
use crate::metrics::Metrics;

/// Committed batches waiting to be published, at most.
pub const PUBLISH_QUEUE_MAX: usize = 4_096;

/// The sequencer's handle on the publisher.
#[derive(Clone)]
pub struct Publisher {
    batches: mpsc::Sender<Vec<Arc<Message>>>,
    metrics: Arc<Metrics>,
}

impl Publisher {
    /// Queues one committed batch's messages.
    pub fn publish(&self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        let messages = messages.into_iter().map(Arc::new).collect();
        // Counted before it is queued, so the task never takes one off below zero.
        self.metrics.stream_backlog.fetch_add(1, Ordering::Relaxed);
        match self.batches.try_send(messages) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.stream_backlog.fetch_sub(1, Ordering::Relaxed);
                self.metrics
                    .stream_batches_dropped_total
                    .fetch_add(1, Ordering::Relaxed);
            }
            // The server is stopping; there is nobody left to tell.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.metrics.stream_backlog.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

pub fn spawn(
    hub: Arc<Hub>,
    redis: Option<RedisSink>,
    metrics: Arc<Metrics>,
) -> (Publisher, JoinHandle<()>) {
    let (batches, mut rx) = mpsc::channel::<Vec<Arc<Message>>>(PUBLISH_QUEUE_MAX);
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
