//! A WebSocket test client: JSON frames in and out, pings ignored, every wait bounded.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::TestApp;

/// Longest wait for one expected frame.
const FRAME_WAIT: Duration = Duration::from_secs(10);

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How the socket ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Closed(u16),
    Dropped,
}

impl WsClient {
    pub async fn connect(app: &TestApp, token: Option<&str>) -> WsClient {
        WsClient::connect_to(app.addr, token).await
    }

    pub async fn connect_to(addr: std::net::SocketAddr, token: Option<&str>) -> WsClient {
        let url = match token {
            Some(token) => format!("ws://{addr}/v1/ws?token={token}"),
            None => format!("ws://{addr}/v1/ws"),
        };
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        WsClient { socket }
    }

    /// Connects over a socket with a tiny receive buffer, so that a client which stops reading
    /// backs up into the server at once instead of into megabytes of kernel buffers.
    pub async fn connect_small_window(app: &TestApp, token: &str) -> WsClient {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4_096).expect("SO_RCVBUF");
        let stream = socket.connect(app.addr).await.expect("tcp connect");
        let url = format!("ws://{}/v1/ws?token={token}", app.addr);
        let (socket, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .expect("ws handshake");
        WsClient { socket }
    }

    /// Connects with extra request headers; `Err(status)` when the upgrade is refused.
    pub async fn connect_with(app: &TestApp, headers: &[(&str, &str)]) -> Result<WsClient, u16> {
        let mut request = format!("ws://{}/v1/ws", app.addr)
            .into_client_request()
            .expect("request");
        for (name, value) in headers {
            request.headers_mut().insert(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header"),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(WsClient { socket }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(error) => panic!("ws connect: {error}"),
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("ws send");
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("ws send");
    }

    /// The next JSON frame (pings and pongs skipped).
    pub async fn next(&mut self) -> Value {
        self.try_next(FRAME_WAIT)
            .await
            .unwrap_or_else(|| panic!("no frame within {FRAME_WAIT:?}"))
    }

    /// The next JSON frame within `wait`, or `None`.
    pub async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??;
            match frame.expect("ws frame") {
                Message::Text(text) => {
                    return Some(serde_json::from_str(&text).expect("JSON frame"))
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Subscribes and returns the `subscribed` answer.
    pub async fn subscribe(&mut self, topic: &str, from_seq: Option<u64>) -> Value {
        let mut op = json!({ "op": "subscribe", "topic": topic });
        if let Some(from_seq) = from_seq {
            op["fromSeq"] = json!(from_seq);
        }
        self.send(op).await;
        let answer = self.next().await;
        assert_eq!(answer["type"], "subscribed", "{answer}");
        answer
    }

    /// Reads until the socket ends, skipping data; how it ended.
    pub async fn until_end(&mut self, wait: Duration) -> Ended {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => panic!("the socket did not end within {wait:?}"),
                Ok(None) | Ok(Some(Err(_))) => return Ended::Dropped,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Ended::Closed(frame.map_or(1005, |f| u16::from(f.code)))
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// A book rebuilt from a snapshot and the deltas after it, checking seqs as a client must.
#[derive(Debug, Default)]
pub struct BookMirror {
    pub seq: u64,
    pub bids: BTreeMap<String, u64>,
    pub asks: BTreeMap<String, u64>,
}

impl BookMirror {
    pub fn apply(&mut self, message: &Value) {
        let seq = message["seq"].as_u64().expect("seq");
        match message["type"].as_str() {
            Some("snapshot") => {
                *self = BookMirror::default();
                self.seq = seq;
                for (side, levels) in [("bids", &mut self.bids), ("asks", &mut self.asks)] {
                    for level in message["data"][side].as_array().expect("levels") {
                        levels.insert(price(level), level["qty"].as_u64().expect("qty"));
                    }
                }
            }
            Some("delta") => {
                assert_eq!(seq, self.seq + 1, "a gap in the book stream: {message}");
                self.seq = seq;
                for change in message["data"]["changes"].as_array().expect("changes") {
                    let levels = match change["side"].as_str() {
                        Some("BID") => &mut self.bids,
                        Some("ASK") => &mut self.asks,
                        other => panic!("side {other:?}"),
                    };
                    match change["qty"].as_u64().expect("qty") {
                        0 => levels.remove(&price(change)),
                        qty => levels.insert(price(change), qty),
                    };
                }
            }
            other => panic!("unexpected book message {other:?}: {message}"),
        }
    }

    /// The REST book shape (best first).
    pub fn as_rest(&self, market_id: &str) -> Value {
        let level = |(price, qty): (&String, &u64)| json!({ "price": price, "qty": qty });
        json!({
            "marketId": market_id,
            "seq": self.seq,
            "bids": self.bids.iter().rev().map(level).collect::<Vec<_>>(),
            "asks": self.asks.iter().map(level).collect::<Vec<_>>(),
        })
    }
}

fn price(level: &Value) -> String {
    level["price"].as_str().expect("price").to_owned()
}
