//! One WebSocket connection: its subscriptions, its queue, its heartbeat.
//!
//! A single task reads client frames, forwards queued topic messages and pings. Per topic it
//! keeps the last seq it sent: a message at or below it is already covered (by a snapshot or
//! a replay), the next one is sent, and a jump means messages were lost upstream, so the task
//! resyncs that topic itself (a fresh snapshot flagged `resync`). Sends race the slow flag, so
//! a client that stops reading is cut off (close 4008) even while a send is stuck. A revoked
//! credential closes the connection (4001) as soon as the revocation is heard of. Client
//! operations past `OPS_PER_SECOND` (after a burst of one per possible topic) are answered
//! `RATE_LIMITED` and not run. Must never
//! send a topic's messages out of order or another user's private data.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as Frame, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use super::snapshot;
use super::{CLOSE_IDLE, CLOSE_REVOKED, CLOSE_SLOW_CONSUMER, OPS_PER_SECOND, SUBSCRIPTIONS_MAX};
use crate::http::extractor::{by_access_token, AuthMethod, AuthUser};
use crate::http::{AppState, Error};
use crate::stream::hub::{Inbox, Resume, SlowFlag, Subscriber};
use crate::stream::{frame, Kind, Message, Topic};

/// Queued messages written out together at most (bounds the time between reads of the socket).
const FORWARD_BATCH_MAX: usize = 256;
/// How long the closing handshake may take before the socket is simply dropped.
const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum ClientOp {
    Subscribe {
        topic: String,
        #[serde(rename = "fromSeq")]
        from_seq: Option<u64>,
    },
    Unsubscribe {
        topic: String,
    },
    Auth {
        token: String,
    },
}

/// Why the loop ended.
enum End {
    /// The client closed or the socket failed: nothing more to say.
    Gone,
    Close(u16, &'static str),
}

struct Connection {
    state: AppState,
    user: Option<Uuid>,
    /// What `user` authenticated with, watched for revocation.
    credential: Option<AuthMethod>,
    subscriber: Subscriber,
    slow: Arc<SlowFlag>,
    /// Subscribed topics and the last seq sent on each.
    topics: HashMap<Topic, u64>,
    /// The client's operations budget (a subscribe loop must not become a database loop).
    ops: DefaultDirectRateLimiter,
    sink: SplitSink<WebSocket, Frame>,
}

pub async fn run(
    state: AppState,
    socket: WebSocket,
    user: Option<AuthUser>,
    revocations: watch::Receiver<u64>,
) {
    let metrics = state.metrics.clone();
    metrics.ws_connections.fetch_add(1, Ordering::Relaxed);
    let hub = state.hub.clone();
    let (subscriber, inbox) = hub.connect(state.config.streams.send_queue);
    let (sink, stream) = socket.split();
    let mut connection = Connection {
        slow: inbox.slow.clone(),
        state,
        user: user.as_ref().map(|user| user.user_id),
        credential: user.map(|user| user.method),
        subscriber,
        topics: HashMap::new(),
        ops: RateLimiter::direct(ops_quota()),
        sink,
    };
    let mut stream = stream;
    let end = connection.serve(&mut stream, inbox, revocations).await;
    hub.disconnect(
        connection.subscriber.id(),
        connection.topics.keys().copied(),
    );
    if let End::Close(code, reason) = end {
        if code == CLOSE_SLOW_CONSUMER {
            metrics
                .ws_slow_consumers_total
                .fetch_add(1, Ordering::Relaxed);
        }
        let close = Frame::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }));
        // The closing handshake: send ours, then let the client's frames in flight (pongs,
        // its own close) drain, so it reads our reason instead of a reset.
        let handshake = async {
            connection.sink.send(close).await.ok()?;
            while let Some(Ok(frame)) = stream.next().await {
                if matches!(frame, Frame::Close(_)) {
                    break;
                }
            }
            Some(())
        };
        let _ = tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, handshake).await;
    }
    metrics.ws_connections.fetch_sub(1, Ordering::Relaxed);
}

impl Connection {
    async fn serve(
        &mut self,
        stream: &mut SplitStream<WebSocket>,
        mut inbox: Inbox,
        mut revocations: watch::Receiver<u64>,
    ) -> End {
        let streams = &self.state.config.streams;
        let (ping_every, idle_timeout) = (streams.ping_interval, streams.idle_timeout);
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        let mut heard = Instant::now();
        let slow = self.slow.clone();
        loop {
            let step = tokio::select! {
                biased;
                _ = slow.wait() => return End::Close(CLOSE_SLOW_CONSUMER, "slow consumer: send queue full"),
                // Subscribed before the credential was checked: nothing revoked since is missed.
                Ok(()) = revocations.changed() => {
                    if self.revoked() {
                        return End::Close(CLOSE_REVOKED, "credentials revoked: log in again");
                    }
                    Ok(())
                }
                frame = stream.next() => {
                    heard = Instant::now();
                    match frame {
                        Some(Ok(frame)) => self.on_frame(frame).await,
                        Some(Err(_)) | None => Err(End::Gone),
                    }
                }
                Some(message) = inbox.messages.recv() => self.forward_queued(message, &mut inbox).await,
                _ = ping.tick() => {
                    if heard.elapsed() > idle_timeout {
                        return End::Close(CLOSE_IDLE, "no pong: connection idle too long");
                    }
                    self.send(Frame::Ping(Default::default())).await
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Sends one frame unless the connection is cut off first.
    async fn send(&mut self, frame: Frame) -> Result<(), End> {
        self.feed(frame).await?;
        self.flush().await
    }

    /// Queues a frame in the socket's write buffer (written out when it fills or on `flush`).
    async fn feed(&mut self, frame: Frame) -> Result<(), End> {
        let slow = self.slow.clone();
        tokio::select! {
            biased;
            _ = slow.wait() => Err(End::Close(CLOSE_SLOW_CONSUMER, "slow consumer: send queue full")),
            fed = self.sink.feed(frame) => fed.map_err(|_| End::Gone),
        }
    }

    async fn flush(&mut self) -> Result<(), End> {
        let slow = self.slow.clone();
        tokio::select! {
            biased;
            _ = slow.wait() => Err(End::Close(CLOSE_SLOW_CONSUMER, "slow consumer: send queue full")),
            flushed = self.sink.flush() => flushed.map_err(|_| End::Gone),
        }
    }

    /// Forwards `first` and whatever else is already queued, then writes them out together:
    /// under load one write carries many messages instead of one system call each.
    async fn forward_queued(&mut self, first: Arc<Message>, inbox: &mut Inbox) -> Result<(), End> {
        self.forward(&first).await?;
        for _ in 1..FORWARD_BATCH_MAX {
            match inbox.messages.try_recv() {
                Ok(message) => self.forward(&message).await?,
                Err(_) => break,
            }
        }
        self.flush().await
    }

    async fn send_json(&mut self, value: serde_json::Value) -> Result<(), End> {
        self.send(Frame::Text(value.to_string().into())).await
    }

    async fn send_error(&mut self, error: &Error, topic: Option<&str>) -> Result<(), End> {
        let (_, body) = error.status_and_body();
        let mut frame = json!({
            "type": "error",
            "code": body.error.code,
            "message": body.error.message,
        });
        if let Some(topic) = topic {
            frame["topic"] = json!(topic);
        }
        self.send_json(frame).await
    }

    async fn on_frame(&mut self, frame: Frame) -> Result<(), End> {
        match frame {
            Frame::Text(text) => match serde_json::from_str::<ClientOp>(text.as_str()) {
                Ok(_) if self.ops.check().is_err() => {
                    let error = Error::RateLimited {
                        retry_after_secs: 1,
                    };
                    self.send_error(&error, None).await
                }
                Ok(op) => self.on_op(op).await,
                Err(error) => {
                    let error = Error::BadRequest(format!(
                        "expected {{\"op\": \"subscribe\" | \"unsubscribe\" | \"auth\", ...}}: {error}"
                    ));
                    self.send_error(&error, None).await
                }
            },
            Frame::Binary(_) => {
                let error = Error::BadRequest("send JSON text frames".into());
                self.send_error(&error, None).await
            }
            Frame::Close(_) => Err(End::Gone),
            Frame::Ping(_) | Frame::Pong(_) => Ok(()),
        }
    }

    async fn on_op(&mut self, op: ClientOp) -> Result<(), End> {
        match op {
            ClientOp::Subscribe { topic, from_seq } => match self.resolve(&topic).await {
                Ok(resolved) => self.subscribe(resolved, from_seq).await,
                Err(error) => self.send_error(&error, Some(&topic)).await,
            },
            ClientOp::Unsubscribe { topic } => match self.resolve(&topic).await {
                Ok(resolved) => {
                    self.topics.remove(&resolved);
                    self.state.hub.unsubscribe(resolved, self.subscriber.id());
                    let name = resolved.public_name();
                    self.send_json(json!({ "type": "unsubscribed", "topic": name }))
                        .await
                }
                Err(error) => self.send_error(&error, Some(&topic)).await,
            },
            ClientOp::Auth { token } => match by_access_token(&self.state, &token).await {
                Ok(auth) => {
                    if self.user.is_some_and(|user| user != auth.user_id) {
                        self.drop_private_topics();
                    }
                    self.user = Some(auth.user_id);
                    self.credential = Some(auth.method);
                    self.send_json(json!({ "type": "authenticated", "userId": auth.user_id }))
                        .await
                }
                Err(error) => self.send_error(&error, None).await,
            },
        }
    }

    /// A topic as the client names it (`book:<market id or slug>`, `orders`, ...).
    async fn resolve(&self, name: &str) -> Result<Topic, Error> {
        let private = |topic: fn(Uuid) -> Topic| {
            self.user.map(topic).ok_or(Error::Unauthenticated(
                "private topics need a login: connect with ?token= or send {\"op\": \"auth\", \"token\"}",
            ))
        };
        match name {
            "orders" => return private(Topic::Orders),
            "fills" => return private(Topic::Fills),
            "balances" => return private(Topic::Balances),
            "positions" => return private(Topic::Positions),
            _ => {}
        }
        let (kind, market) = name.split_once(':').ok_or_else(unknown_topic)?;
        let topic: fn(Uuid) -> Topic = match kind {
            "book" => Topic::Book,
            "trades" => Topic::Trades,
            "ticker" => Topic::Ticker,
            _ => return Err(unknown_topic()),
        };
        let market = crate::markets::existing(&self.state.db, market).await?;
        Ok(topic(market.id))
    }

    async fn subscribe(&mut self, topic: Topic, from_seq: Option<u64>) -> Result<(), End> {
        let name = topic.public_name();
        if !self.topics.contains_key(&topic) && self.topics.len() >= SUBSCRIPTIONS_MAX {
            let error = Error::validation(
                "topic",
                format!("at most {SUBSCRIPTIONS_MAX} topics per connection"),
            );
            return self.send_error(&error, Some(&name)).await;
        }
        match self.state.hub.subscribe(topic, &self.subscriber, from_seq) {
            Resume::Replay(missed) => {
                let from_seq = from_seq.unwrap_or_default();
                self.topics.insert(topic, from_seq);
                self.send_json(json!({ "type": "subscribed", "topic": name, "seq": from_seq }))
                    .await?;
                for message in missed {
                    self.forward(&message).await?;
                }
                self.flush().await
            }
            Resume::Snapshot => self.snapshot(topic, from_seq, true).await,
        }
    }

    /// Sends `topic`'s committed state. `fresh`: a (re)subscription, announced first.
    async fn snapshot(
        &mut self,
        topic: Topic,
        from_seq: Option<u64>,
        fresh: bool,
    ) -> Result<(), End> {
        let name = topic.public_name();
        let snapshot = match snapshot::read(&self.state, topic).await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::warn!(%error, %topic, "stream snapshot failed");
                self.topics.remove(&topic);
                self.state.hub.unsubscribe(topic, self.subscriber.id());
                return self.send_error(&error, Some(&name)).await;
            }
        };
        self.topics.insert(topic, snapshot.seq);
        if fresh {
            self.send_json(json!({ "type": "subscribed", "topic": name, "seq": snapshot.seq }))
                .await?;
        }
        // Resuming at exactly the current seq missed nothing: no snapshot needed.
        if from_seq == Some(snapshot.seq) {
            return Ok(());
        }
        let resync = from_seq.is_some() || !fresh;
        match snapshot.data {
            Some(data) => {
                let text = frame(Kind::Snapshot, &topic, snapshot.seq, resync, &data);
                self.send(Frame::Text(text.into())).await
            }
            // `fills` has no snapshot: a resync tells the client to read its fills over REST.
            None if resync => {
                let text = frame(
                    Kind::Snapshot,
                    &topic,
                    snapshot.seq,
                    true,
                    &serde_json::Value::Null,
                );
                self.send(Frame::Text(text.into())).await
            }
            None => Ok(()),
        }
    }

    /// Sends a published message in order, or resyncs its topic after a gap.
    async fn forward(&mut self, message: &Message) -> Result<(), End> {
        let Some(last) = self.topics.get_mut(&message.topic) else {
            return Ok(());
        };
        if message.seq <= *last {
            return Ok(());
        }
        if message.seq == *last + 1 {
            *last = message.seq;
            return self.feed(Frame::Text(message.text.clone())).await;
        }
        tracing::info!(topic = %message.topic, last = *last, seq = message.seq, "stream gap; resyncing");
        self.snapshot(message.topic, None, false).await
    }

    /// Whether the credential the connection authenticated with has been revoked since.
    fn revoked(&self) -> bool {
        self.credential
            .is_some_and(|credential| self.state.revocations.is_revoked(&credential))
    }

    fn drop_private_topics(&mut self) {
        let private: Vec<Topic> = self
            .topics
            .keys()
            .copied()
            .filter(Topic::is_private)
            .collect();
        for topic in private {
            self.topics.remove(&topic);
            self.state.hub.unsubscribe(topic, self.subscriber.id());
        }
    }
}

fn ops_quota() -> Quota {
    let burst = u32::try_from(SUBSCRIPTIONS_MAX).unwrap_or(u32::MAX);
    Quota::per_second(NonZeroU32::new(OPS_PER_SECOND).expect("non-zero"))
        .allow_burst(NonZeroU32::new(burst).expect("non-zero"))
}

fn unknown_topic() -> Error {
    Error::validation(
        "topic",
        "expected book:<market>, trades:<market>, ticker:<market>, orders, fills, balances or positions",
    )
}
