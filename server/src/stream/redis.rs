//! Fan-out across instances through Redis pub/sub.
//!
//! The primary publishes every completed batch (already numbered and rendered) as one JSON
//! array on the configured channel (`REDIS_CHANNEL`); a read-only gateway subscribes and feeds the array to its own hub, so
//! its clients get byte-for-byte the primary's messages with the primary's seqs. Pub/sub keeps
//! nothing: a batch lost while a link is down shows up as a seq gap, and the gateway's
//! connections resync those topics from the database. Both sides reconnect on their own. Must
//! never block the publisher (the sink is a queue drained by its own task).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::hub::Hub;
use super::{Message, Topic};

/// Wait before reconnecting after Redis went away.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

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
    batches: mpsc::UnboundedSender<String>,
}

impl RedisSink {
    pub fn spawn(
        url: &str,
        channel: String,
    ) -> Result<(RedisSink, JoinHandle<()>), redis::RedisError> {
        let client = redis::Client::open(url)?;
        let (batches, mut rx) = mpsc::unbounded_channel::<String>();
        let join = tokio::spawn(async move {
            let mut connection = None;
            while let Some(payload) = rx.recv().await {
                if connection.is_none() {
                    match client.get_multiplexed_async_connection().await {
                        Ok(opened) => connection = Some(opened),
                        Err(error) => {
                            tracing::warn!(%error, "Redis unreachable; a stream batch is lost");
                            tokio::time::sleep(RECONNECT_DELAY).await;
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
                    connection = None;
                }
            }
        });
        Ok((RedisSink { batches }, join))
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
                let _ = self.batches.send(payload);
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
