//! The server's load generator, as a library: an HTTP client for the parts of the API a trader
//! uses, the setup a run needs (markets, funded users with API keys), the order mix, and the
//! tallies a run keeps. The `loadgen` binary drives these against a running server.
//!
//! It must only speak the public API over HTTP, as any client would: it never reads the
//! server's database or links its code, so what it measures is what a trader would see.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use sim::rng::SplitMix64;

/// Cash each load user starts with: far more than the mix can lock.
pub const DEPOSIT_DOLLARS: &str = "1000000";
/// The market's tick (0.001, as WORKLOAD.md's) and its price band, in ticks.
const PRICE_TICKS_LOW: u64 = 490;
const PRICE_TICKS_SPAN: u64 = 21;
/// Shares per order: 1..=this.
const QTY_MAX: u64 = 100;

/// A client of one server, with its own keep-alive connection pool.
#[derive(Clone)]
pub struct Api {
    pub client: Client,
    pub base: String,
}

/// How a request was answered: its status and JSON body (`Value::Null` if it had none).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// The API's error code, for error answers.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// Who a request speaks as.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    None,
    Bearer(&'a str),
    ApiKey(&'a str),
}

impl Api {
    /// A client whose requests time out after `timeout`; at most one idle connection is kept,
    /// so a worker that sends one request at a time holds exactly one keep-alive connection.
    pub fn new(base: &str, timeout: Duration) -> Result<Api, String> {
        let client = Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Api {
            client,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        credential: Credential<'_>,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        request = match credential {
            Credential::None => request,
            Credential::Bearer(token) => request.bearer_auth(token),
            Credential::ApiKey(key) => request.header("X-API-Key", key),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    /// `send`, for setup steps that must answer `expected`.
    async fn expect(
        &self,
        method: Method,
        path: &str,
        credential: Credential<'_>,
        body: Option<&Value>,
        expected: StatusCode,
    ) -> Result<Value, String> {
        let answer = self.send(method.clone(), path, credential, body).await?;
        if answer.status != expected {
            return Err(format!(
                "{method} {path} answered {}: {} (a load run needs the server's rate limits \
                 raised: RATE_LIMIT_AUTH_PER_MINUTE and RATE_LIMIT_ORDERS_PER_SECOND)",
                answer.status, answer.body
            ));
        }
        Ok(answer.body)
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<String, String> {
        let body = json!({ "email": email, "password": password });
        let answer = self
            .expect(
                Method::POST,
                "/v1/auth/login",
                Credential::None,
                Some(&body),
                StatusCode::OK,
            )
            .await?;
        token(&answer, "accessToken")
    }

    /// A market with WORKLOAD.md's tick (0.001) and no fees; returns its id.
    pub async fn create_market(&self, admin: &str, slug: &str) -> Result<String, String> {
        let body = json!({
            "slug": slug,
            "question": format!("Load test market {slug}?"),
            "description": "Created by loadgen.",
            "tickSize": "0.001",
            "minQty": 1,
            "maxQty": 1_000_000,
            "makerFeeRate": "0",
            "takerFeeRate": "0",
        });
        let market = self
            .expect(
                Method::POST,
                "/v1/markets",
                Credential::Bearer(admin),
                Some(&body),
                StatusCode::CREATED,
            )
            .await?;
        token(&market, "id")
    }

    /// Registers a user, credits it `DEPOSIT_DOLLARS` and creates an API key; returns the key.
    pub async fn funded_user(&self, admin: &str, email: &str) -> Result<String, String> {
        let password = "load generator password";
        let body = json!({ "email": email, "password": password, "fullName": "Load Generator" });
        let registered = self
            .expect(
                Method::POST,
                "/v1/auth/register",
                Credential::None,
                Some(&body),
                StatusCode::CREATED,
            )
            .await?;
        let deposit = json!({ "userId": registered["user"]["id"], "amount": DEPOSIT_DOLLARS });
        self.expect(
            Method::POST,
            "/v1/transfers/deposit",
            Credential::Bearer(admin),
            Some(&deposit),
            StatusCode::CREATED,
        )
        .await?;
        let access = self.login(email, password).await?;
        let key = self
            .expect(
                Method::POST,
                "/v1/api-keys",
                Credential::Bearer(&access),
                Some(&json!({ "name": "loadgen" })),
                StatusCode::CREATED,
            )
            .await?;
        token(&key, "key")
    }
}

fn token(body: &Value, field: &str) -> Result<String, String> {
    body[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no `{field}` in {body}"))
}

/// One step of the mix, as WORKLOAD.md draws it (r, then side, then price, then qty; or r then
/// k; or r then side then qty): 60% limit orders in a band where about half cross, 25%
/// cancels of a resting order, 15% market orders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A GTC limit order: the bid side buys YES at `price_ticks`, the ask side buys NO at
    /// the complement (so it rests on the YES ask at `price_ticks`).
    Limit {
        bid: bool,
        price_ticks: u64,
        qty: u64,
    },
    /// Cancel the resting order at this index of the worker's list (if it has any).
    Cancel {
        draw: u64,
    },
    Market {
        bid: bool,
        qty: u64,
    },
}

pub fn next_step(rng: &mut SplitMix64) -> Step {
    let r = rng.uniform(100);
    if r < 60 {
        let bid = rng.uniform(2) == 0;
        let price_ticks = PRICE_TICKS_LOW + rng.uniform(PRICE_TICKS_SPAN);
        let qty = 1 + rng.uniform(QTY_MAX);
        Step::Limit {
            bid,
            price_ticks,
            qty,
        }
    } else if r < 85 {
        Step::Cancel {
            draw: rng.next_u64(),
        }
    } else {
        let bid = rng.uniform(2) == 0;
        Step::Market {
            bid,
            qty: 1 + rng.uniform(QTY_MAX),
        }
    }
}

/// The order body of a limit or market step on `market`.
pub fn order_body(step: &Step, market: &str) -> Option<Value> {
    let outcome = |bid: bool| if bid { "YES" } else { "NO" };
    match *step {
        Step::Limit {
            bid,
            price_ticks,
            qty,
        } => {
            let ticks = if bid {
                price_ticks
            } else {
                1_000 - price_ticks
            };
            Some(json!({
                "marketId": market, "side": "BUY", "outcome": outcome(bid), "type": "LIMIT",
                "price": format!("0.{ticks:03}"), "qty": qty, "timeInForce": "GTC",
            }))
        }
        Step::Market { bid, qty } => Some(json!({
            "marketId": market, "side": "BUY", "outcome": outcome(bid), "type": "MARKET",
            "qty": qty, "timeInForce": "IOC",
        })),
        Step::Cancel { .. } => None,
    }
}

/// What one worker saw.
#[derive(Default)]
pub struct Tally {
    /// Orders acknowledged (2xx), limit and market.
    pub orders: u64,
    /// Cancels acknowledged (2xx).
    pub cancels: u64,
    /// Answers a correct server gives under this mix (a cancel of an order that filled in the
    /// meantime), by status and code.
    pub expected_rejects: BTreeMap<String, u64>,
    /// Everything else that was not 2xx, by status and code (or the transport error).
    pub errors: BTreeMap<String, u64>,
    /// Acknowledgement latency of each acknowledged order, in microseconds.
    pub order_latencies_us: Vec<u32>,
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.orders += other.orders;
        self.cancels += other.cancels;
        for (key, count) in other.expected_rejects {
            *self.expected_rejects.entry(key).or_default() += count;
        }
        for (key, count) in other.errors {
            *self.errors.entry(key).or_default() += count;
        }
        self.order_latencies_us.extend(other.order_latencies_us);
    }

    pub fn error(&mut self, key: String) {
        *self.errors.entry(key).or_default() += 1;
    }

    pub fn expected_reject(&mut self, key: String) {
        *self.expected_rejects.entry(key).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_follows_the_standard_workload() {
        let mut rng = SplitMix64::new(42);
        let steps: Vec<Step> = (0..100_000).map(|_| next_step(&mut rng)).collect();
        let limits = steps
            .iter()
            .filter(|s| matches!(s, Step::Limit { .. }))
            .count();
        let cancels = steps
            .iter()
            .filter(|s| matches!(s, Step::Cancel { .. }))
            .count();
        assert!((59_000..61_000).contains(&limits), "{limits}");
        assert!((24_000..26_000).contains(&cancels), "{cancels}");
        for step in &steps {
            if let Step::Limit {
                price_ticks, qty, ..
            } = step
            {
                assert!((490..=510).contains(price_ticks));
                assert!((1..=100).contains(qty));
            }
        }
    }

    #[test]
    fn an_ask_buys_no_at_the_complement() {
        let ask = Step::Limit {
            bid: false,
            price_ticks: 495,
            qty: 3,
        };
        let body = order_body(&ask, "m").unwrap();
        assert_eq!(body["outcome"], "NO");
        assert_eq!(body["price"], "0.505");
        let bid = Step::Market { bid: true, qty: 7 };
        let body = order_body(&bid, "m").unwrap();
        assert_eq!(
            (body["outcome"].as_str(), body["qty"].as_u64()),
            (Some("YES"), Some(7))
        );
        assert_eq!(order_body(&Step::Cancel { draw: 1 }, "m"), None);
    }
}
