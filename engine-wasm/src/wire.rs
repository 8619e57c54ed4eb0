//! The JSON shapes of `../shared/API.md` that the browser hands us (a market, a book snapshot, a
//! WebSocket book message, an order body, an account) and their parsing into engine values.
//!
//! Owns the boundary: every string becomes a typed, checked value here or a `WireError` with
//! the code the server would answer. It must never guess a missing or malformed value.

use engine::{
    LockRule, MarketParams, OrderType, Outcome, PlaceOrder, SelfTradePrevention, Side, Slug,
    TimeInForce, UserId,
};
use serde::{Deserialize, Serialize};

use crate::decimal::{self, DecimalError};

/// A refusal with the API's code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WireError {
    pub code: String,
    pub message: String,
}

impl WireError {
    pub fn new(code: &str, message: impl Into<String>) -> WireError {
        WireError {
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn bad_request(error: impl std::fmt::Display) -> WireError {
        WireError::new("BAD_REQUEST", error.to_string())
    }
}

fn invalid(field: &str, error: DecimalError) -> WireError {
    let detail = match error {
        DecimalError::Malformed(text) => format!("{field}: {text:?} is not a decimal number"),
        DecimalError::OutOfRange(text) => format!("{field}: {text:?} is out of range"),
    };
    WireError::new("VALIDATION_FAILED", detail)
}

/// `GET /v1/markets/{id}`, the fields a preview needs.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketJson {
    pub tick_size: String,
    pub min_qty: u64,
    pub max_qty: u64,
    pub maker_fee_rate: String,
    pub taker_fee_rate: String,
    /// `BUFFER_FOR_MAKER_FEE` or `BUFFER_ALWAYS`; a market body without it is taken as one
    /// created under the current rule.
    #[serde(default)]
    pub lock_rule: Option<String>,
}

impl MarketJson {
    pub fn params(&self) -> Result<MarketParams, WireError> {
        let tick_units =
            decimal::price_units(&self.tick_size).map_err(|e| invalid("tickSize", e))?;
        Ok(MarketParams {
            slug: Slug::new("preview").expect("a valid slug"),
            tick_units,
            qty_min: self.min_qty,
            qty_max: self.max_qty,
            maker_fee_bps: decimal::rate_bps(&self.maker_fee_rate)
                .map_err(|e| invalid("makerFeeRate", e))?,
            taker_fee_bps: decimal::rate_bps(&self.taker_fee_rate)
                .map_err(|e| invalid("takerFeeRate", e))?,
            close_ts_micros: None,
            lock_rule: self.lock_rule()?,
        })
    }

    fn lock_rule(&self) -> Result<LockRule, WireError> {
        match self.lock_rule.as_deref() {
            None => Ok(LockRule::CURRENT),
            Some("BUFFER_FOR_MAKER_FEE") => Ok(LockRule::BufferForMakerFee),
            Some("BUFFER_ALWAYS") => Ok(LockRule::BufferAlways),
            Some(other) => Err(WireError::new(
                "VALIDATION_FAILED",
                format!("lockRule: {other:?} is not BUFFER_FOR_MAKER_FEE or BUFFER_ALWAYS"),
            )),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct LevelJson {
    pub price: String,
    pub qty: u64,
}

/// `GET /v1/markets/{id}/book`: best first, YES prices.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BookJson {
    #[serde(default)]
    pub market_id: Option<String>,
    pub seq: u64,
    pub bids: Vec<LevelJson>,
    pub asks: Vec<LevelJson>,
}

/// A message on the `book:{market}` WebSocket topic.
#[derive(Clone, Debug, Deserialize)]
pub struct BookMessage {
    #[serde(rename = "type")]
    pub kind: String,
    pub seq: u64,
    pub data: serde_json::Value,
    #[serde(default)]
    pub resync: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ChangeJson {
    pub side: String,
    pub price: String,
    pub qty: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct DeltaJson {
    pub changes: Vec<ChangeJson>,
}

/// A level as (YES price units, qty), checked.
pub fn level(price: &str, qty: u64) -> Result<(u16, u64), WireError> {
    let units = decimal::price_units(price).map_err(|e| invalid("price", e))?;
    Ok((units, qty))
}

/// The `POST /v1/orders` body.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderJson {
    #[serde(default)]
    pub market_id: Option<String>,
    pub side: Side,
    pub outcome: Outcome,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    #[serde(default)]
    pub price: Option<String>,
    #[serde(default)]
    pub qty: Option<u64>,
    #[serde(default)]
    pub cash_amount: Option<String>,
    #[serde(default)]
    pub time_in_force: Option<TimeInForce>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub post_only: bool,
    #[serde(default)]
    pub reduce_only: bool,
    #[serde(default)]
    pub self_trade_prevention: Option<SelfTradePrevention>,
    #[serde(default)]
    pub client_order_id: Option<String>,
    #[serde(default)]
    pub worst_price: Option<String>,
    #[serde(default)]
    pub max_slippage_bps: Option<u32>,
}

impl OrderJson {
    /// The engine order for `user`. A GTD expiry is the server's to judge against its clock,
    /// so a preview places it one microsecond after `now_micros` (it rests the same way).
    pub fn to_engine(
        &self,
        user: UserId,
        market: engine::MarketId,
        now_micros: u64,
    ) -> Result<PlaceOrder, WireError> {
        let price = |field: &str, text: &Option<String>| {
            text.as_deref()
                .map(|t| decimal::price_units(t).map_err(|e| invalid(field, e)))
                .transpose()
        };
        let cash_micros = self
            .cash_amount
            .as_deref()
            .map(|t| decimal::cash_micros(t).map_err(|e| invalid("cashAmount", e)))
            .transpose()?;
        let default_tif = match self.order_type {
            OrderType::Limit => TimeInForce::Gtc,
            OrderType::Market => TimeInForce::Ioc,
        };
        let time_in_force = self.time_in_force.unwrap_or(default_tif);
        let expires_at_micros = (time_in_force == TimeInForce::Gtd).then_some(now_micros + 1);
        Ok(PlaceOrder {
            user,
            market,
            side: self.side,
            outcome: self.outcome,
            order_type: self.order_type,
            price_units: price("price", &self.price)?,
            qty: self.qty,
            cash_micros,
            time_in_force,
            expires_at_micros,
            post_only: self.post_only,
            reduce_only: self.reduce_only,
            self_trade_prevention: self.self_trade_prevention.unwrap_or_default(),
            client_order_id: None,
            worst_price_units: price("worstPrice", &self.worst_price)?,
            max_slippage_bps: self.max_slippage_bps,
        })
    }
}

/// What the user holds, for previews that depend on it (funds and shares checks, the resulting
/// position). Without it a preview assumes enough cash, and for a SELL enough shares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountJson {
    pub available: String,
    #[serde(default)]
    pub yes_shares: u64,
    #[serde(default)]
    pub no_shares: u64,
}

/// An account in engine units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Account {
    pub available_micros: i64,
    pub yes_shares: u64,
    pub no_shares: u64,
}

impl AccountJson {
    pub fn to_account(&self) -> Result<Account, WireError> {
        Ok(Account {
            available_micros: decimal::cash_micros(&self.available)
                .map_err(|e| invalid("available", e))?,
            yes_shares: self.yes_shares,
            no_shares: self.no_shares,
        })
    }
}
