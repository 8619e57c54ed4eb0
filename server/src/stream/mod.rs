//! Real-time streams: what the WebSocket serves, from commit to every subscriber.
//!
//! The pipeline: the sequencer's [`feed::Feed`] turns each batch's events into numbered topic
//! messages (seqs assigned before the commit and stored in `stream_seqs` in the same
//! transaction, so they survive restarts), rendering orders and fills from the
//! [`order_states`] it keeps, and collects the batch's changes to the [`market_data`] read
//! model. After the commit the sequencer applies those changes, renders the tickers from the
//! read model and hands everything to the [`publisher`] task, which publishes each message
//! (serialized once) to the in-process [`hub::Hub`] and, when configured, to Redis. A
//! read-only gateway has no feed: its hub is fed from Redis ([`redis`]), so every instance
//! serves the same messages with the same seqs. (A topic's snapshot, read from the database
//! alone so primary and gateway answer alike, is the WebSocket handler's: `ws::snapshot`.)
//!
//! Must never: publish anything before its batch is committed, reorder a topic's messages,
//! or let a slow subscriber slow the sequencer or anyone else (queues are bounded and a full
//! one cuts its connection off).

pub mod feed;
pub mod hub;
pub mod market_data;
pub mod order_states;
pub mod publisher;
pub mod redis;

use std::fmt;

use axum::extract::ws::Utf8Bytes;
use uuid::Uuid;

/// A stream a client can subscribe to. Public topics are per market; private ones per user
/// (a client names them without the user: `orders`, and gets only its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    Book(Uuid),
    Trades(Uuid),
    Ticker(Uuid),
    Orders(Uuid),
    Fills(Uuid),
    Balances(Uuid),
    Positions(Uuid),
}

impl Topic {
    /// The topic's name on the wire: `book:<marketId>` or, for private topics, `orders`.
    pub fn public_name(&self) -> String {
        match self {
            Topic::Book(market) => format!("book:{market}"),
            Topic::Trades(market) => format!("trades:{market}"),
            Topic::Ticker(market) => format!("ticker:{market}"),
            Topic::Orders(_) => "orders".to_owned(),
            Topic::Fills(_) => "fills".to_owned(),
            Topic::Balances(_) => "balances".to_owned(),
            Topic::Positions(_) => "positions".to_owned(),
        }
    }

    pub fn is_private(&self) -> bool {
        !matches!(self, Topic::Book(_) | Topic::Trades(_) | Topic::Ticker(_))
    }
}

/// The key of a topic in `stream_seqs`, in Redis and in the hub: private topics carry their
/// user (`orders:<userId>`), public ones read as their public name.
impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Book(id) => write!(f, "book:{id}"),
            Topic::Trades(id) => write!(f, "trades:{id}"),
            Topic::Ticker(id) => write!(f, "ticker:{id}"),
            Topic::Orders(id) => write!(f, "orders:{id}"),
            Topic::Fills(id) => write!(f, "fills:{id}"),
            Topic::Balances(id) => write!(f, "balances:{id}"),
            Topic::Positions(id) => write!(f, "positions:{id}"),
        }
    }
}

impl std::str::FromStr for Topic {
    type Err = ();

    /// Parses a key as `Display` writes it.
    fn from_str(key: &str) -> Result<Topic, ()> {
        let (kind, id) = key.split_once(':').ok_or(())?;
        let id = Uuid::parse_str(id).map_err(|_| ())?;
        Ok(match kind {
            "book" => Topic::Book(id),
            "trades" => Topic::Trades(id),
            "ticker" => Topic::Ticker(id),
            "orders" => Topic::Orders(id),
            "fills" => Topic::Fills(id),
            "balances" => Topic::Balances(id),
            "positions" => Topic::Positions(id),
            _ => return Err(()),
        })
    }
}

/// One published message, serialized once for every subscriber.
#[derive(Debug)]
pub struct Message {
    pub topic: Topic,
    pub seq: u64,
    /// The whole WebSocket text frame: `{"type", "topic", "seq", "data"}` (cheap to clone).
    pub text: Utf8Bytes,
}

/// The kind of a stream message (`type` on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Snapshot,
    Delta,
    Event,
}

/// Renders a frame; `resync` is only ever written when true.
pub fn frame(
    kind: Kind,
    topic: &Topic,
    seq: u64,
    resync: bool,
    data: &serde_json::Value,
) -> String {
    let mut frame = serde_json::json!({
        "type": kind,
        "topic": topic.public_name(),
        "seq": seq,
        "data": data,
    });
    if resync {
        frame["resync"] = serde_json::Value::Bool(true);
    }
    frame.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_private_topics_hide_their_user() {
        let id = Uuid::from_u128(7);
        for topic in [
            Topic::Book(id),
            Topic::Trades(id),
            Topic::Ticker(id),
            Topic::Orders(id),
            Topic::Fills(id),
            Topic::Balances(id),
            Topic::Positions(id),
        ] {
            assert_eq!(topic.to_string().parse::<Topic>(), Ok(topic));
            assert_eq!(
                topic.public_name().contains(&id.to_string()),
                !topic.is_private()
            );
        }
        assert!("book".parse::<Topic>().is_err());
        assert!("candles:00000000-0000-0000-0000-000000000007"
            .parse::<Topic>()
            .is_err());
    }
}
