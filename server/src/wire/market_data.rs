//! Market data as clients see it: trades and the ticker, in YES prices.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::schema::{MidPrice, Price, PriceChange, Side, TradeKind};
use crate::domain::{format_half_units, format_price, format_rate};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Trade)]
pub struct TradeBody {
    pub id: Uuid,
    /// In YES terms.
    #[schema(value_type = Price)]
    pub price: String,
    pub qty: i64,
    /// The taker's side in YES terms (a taker buying NO sells YES).
    #[schema(value_type = Side)]
    pub taker_side: String,
    #[schema(value_type = TradeKind)]
    pub kind: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// The market at a glance, in YES prices.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Ticker)]
pub struct TickerBody {
    market_id: Uuid,
    #[schema(value_type = Option<Price>, required = true)]
    best_bid: Option<String>,
    #[schema(value_type = Option<Price>, required = true)]
    best_ask: Option<String>,
    /// Null unless both sides have a level.
    #[schema(value_type = Option<MidPrice>, required = true)]
    mid: Option<String>,
    /// The last trade's price; null before the first.
    #[schema(value_type = Option<Price>, required = true)]
    last: Option<String>,
    /// Shares traded in the last 24 hours.
    volume24h: i64,
    /// The last price minus the last price before the 24 hours (or the first within them).
    #[schema(value_type = Option<PriceChange>, required = true)]
    change24h: Option<String>,
}

impl TickerBody {
    /// The ticker of a market with these best prices, last price, 24-hour volume and the
    /// price the 24 hours opened at (all prices in YES units).
    pub fn new(
        market_id: Uuid,
        bid: Option<u16>,
        ask: Option<u16>,
        last: Option<u16>,
        volume24h: u64,
        opening: Option<u16>,
    ) -> TickerBody {
        let change24h = last
            .zip(opening)
            .map(|(last, opening)| format_rate(i32::from(last) - i32::from(opening)));
        TickerBody {
            market_id,
            best_bid: bid.map(|bid| format_price(bid.into())),
            best_ask: ask.map(|ask| format_price(ask.into())),
            mid: bid
                .zip(ask)
                .map(|(bid, ask)| format_half_units(u32::from(bid) + u32::from(ask))),
            last: last.map(|last| format_price(last.into())),
            volume24h: i64::try_from(volume24h).unwrap_or(i64::MAX),
            change24h,
        }
    }
}
