//! Fan-out across instances through Redis pub/sub.
//!
//! The primary publishes every completed batch (already numbered and rendered) as one JSON
//! array on the configured channel (`REDIS_CHANNEL`); a read-only gateway subscribes and feeds the array to its own hub, so
//! its clients get byte-for-byte the primary's messages with the primary's seqs. Pub/sub keeps
//! nothing: a batch lost while a link is down shows up as a seq gap, and the gateway's
//! connections resync those topics from the database. Both sides reconnect on their own.
//!
//! The sink never blocks the publisher and never grows without bound: it holds at most
//! `REDIS_QUEUE_MAX` batches, and while Redis is unreachable (between reconnection attempts,
//! each bounded by `CONNECT_TIMEOUT`) batches are dropped at once rather than queued; every
//! dropped batch is counted in `predex_redis_batches_dropped_total`. Trading never waits on
//! Redis.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::hub::Hub;
use super::{Message, Topic};
use crate::metrics::Metrics;

/// Wait before reconnecting after Redis went away.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// Longest wait for a connection to Redis (a blackholed address must not stall the sink).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Batches waiting for Redis, at most.
pub const REDIS_QUEUE_MAX: usize = 1_024;

#[derive(Serialize, Deserialize)]
struct WireMessage {
    /// The topic's key (`orders:<userId>`, `book:<marketId>`, ...).
    topic: String,
    seq: u64,
    text: String,
}

/// The primary's side: queues batches for the Redis publishing task.
#[derive(Clone)]
pub struct RedisSink {
    batches: mpsc::Sender<String>,
    metrics: Arc<Metrics>,
}

impl RedisSink {
    pub fn spawn(
        url: &str,
        channel: String,
        metrics: Arc<Metrics>,
    ) -> Result<(RedisSink, JoinHandle<()>), redis::RedisError> {
        let client = redis::Client::open(url)?;
        let (batches, mut rx) = mpsc::channel::<String>(REDIS_QUEUE_MAX);
        let task_metrics = metrics.clone();
        let join = tokio::spawn(async move {
            let mut connection = None;
            // Until then, batches are dropped without trying: Redis was just found down.
            let mut down_until: Option<Instant> = None;
            while let Some(payload) = rx.recv().await {
                if down_until.is_some_and(|until| Instant::now() < until) {
                    task_metrics
                        .redis_batches_dropped_total
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if connection.is_none() {
                    let opened = tokio::time::timeout(
                        CONNECT_TIMEOUT,
                        client.get_multiplexed_async_connection(),
                    )
                    .await;
                    match opened {
                        Ok(Ok(opened)) => {
                            tracing::info!("publishing streams to Redis");
                            connection = Some(opened);
                            down_until = None;
                        }
                        Ok(Err(_)) | Err(_) => {
                            if down_until.is_none() {
                                tracing::warn!("Redis unreachable; stream batches are dropped until it is back");
                            }
                            down_until = Some(Instant::now() + RECONNECT_DELAY);
                            task_metrics
                                .redis_batches_dropped_total
                                .fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                }
                let Some(open) = connection.as_mut() else {
                    continue;
                };
                let published: Result<i64, _> = redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(payload)
                    .query_async(open)
                    .await;
                if let Err(error) = published {
                    tracing::warn!(%error, "Redis PUBLISH failed; a stream batch is lost");
                    task_metrics
                        .redis_batches_dropped_total
                        .fetch_add(1, Ordering::Relaxed);
                    connection = None;
                }
            }
        });
        Ok((RedisSink { batches, metrics }, join))
    }

    pub fn send(&self, messages: &[Arc<Message>]) {
        if messages.is_empty() {
            return;
        }
        let wire: Vec<WireMessage> = messages
            .iter()
            .map(|message| WireMessage {
                topic: message.topic.to_string(),
                seq: message.seq,
                text: message.text.as_str().to_owned(),
            })
            .collect();
        match serde_json::to_string(&wire) {
            Ok(payload) => {
                if let Err(mpsc::error::TrySendError::Full(_)) = self.batches.try_send(payload) {
                    self.metrics
                        .redis_batches_dropped_total
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(error) => tracing::error!(%error, "cannot encode a stream batch for Redis"),
        }
    }
}

/// The gateway's side: relays the primary's batches into `hub` until the process stops.
pub fn spawn_relay(
    url: &str,
    channel: String,
    hub: Arc<Hub>,
) -> Result<JoinHandle<()>, redis::RedisError> {
    let client = redis::Client::open(url)?;
    Ok(tokio::spawn(async move {
        loop {
            match relay(&client, &channel, &hub).await {
                Ok(()) => tracing::warn!("Redis subscription ended; reconnecting"),
                Err(error) => tracing::warn!(%error, "Redis subscription failed; reconnecting"),
            }
            tokio::time::sleep(RECONNECT_DELAY).await;
        }
    }))
}

async fn relay(client: &redis::Client, channel: &str, hub: &Hub) -> Result<(), redis::RedisError> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    tracing::info!(channel, "relaying streams from Redis");
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let payload: String = match message.get_payload() {
            Ok(payload) => payload,
            Err(error) => {
                tracing::warn!(%error, "unreadable stream batch from Redis");
                continue;
            }
        };
        match decode(&payload) {
            Some(batch) => hub.publish(&batch),
            None => tracing::warn!("malformed stream batch from Redis"),
        }
    }
    Ok(())
}

fn decode(payload: &str) -> Option<Vec<Arc<Message>>> {
    let wire: Vec<WireMessage> = serde_json::from_str(payload).ok()?;
    wire.into_iter()
        .map(|message| {
            Some(Arc::new(Message {
                topic: message.topic.parse::<Topic>().ok()?,
                seq: message.seq,
                text: message.text.into(),
            }))
        })
        .collect()
}
