//! Reject reasons: every way a command can fail, typed.
//!
//! A rejected command changes nothing (only the clock, which advances before the command is
//! looked at). `code()` gives the stable SCREAMING_SNAKE name the HTTP API uses.

use core::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reject {
    TimestampBackwards,
    UnknownUser,
    UnknownMarket,
    /// No such open order (never existed, or already finished).
    UnknownOrder,
    NotOrderOwner,
    MarketNotOpen,
    /// A halt, resume, close or resolve that the market's state does not allow.
    InvalidMarketTransition,
    InvalidMarketParams,
    SlugTaken,
    /// A resolution payout outside 0..=10000.
    InvalidResolution,
    PriceOffTick,
    PriceOutOfRange,
    QtyOutOfRange,
    AmountOutOfRange,
    /// Options that do not go together (MARKET with GTC, LIMIT without a price, ...).
    InvalidOrder,
    ExpiryInPast,
    InsufficientFunds,
    InsufficientShares,
    PostOnlyWouldTake,
    FokNotFilled,
    SlippageExceeded,
    ClientOrderIdReused,
    TooManyOpenOrders,
    ReduceOnlyWouldIncrease,
    NothingToAmend,
    BatchTooLarge,
    TooManyUsers,
    TooManyMarkets,
    /// The exchange-wide cash cap would be exceeded.
    CashCapExceeded,
    /// A transfer from a user to the same user.
    SameUser,
}

impl Reject {
    pub const fn code(self) -> &'static str {
        match self {
            Reject::TimestampBackwards => "TIMESTAMP_BACKWARDS",
            Reject::UnknownUser => "UNKNOWN_USER",
            Reject::UnknownMarket => "UNKNOWN_MARKET",
            Reject::UnknownOrder => "UNKNOWN_ORDER",
            Reject::NotOrderOwner => "NOT_ORDER_OWNER",
            Reject::MarketNotOpen => "MARKET_NOT_OPEN",
            Reject::InvalidMarketTransition => "INVALID_MARKET_TRANSITION",
            Reject::InvalidMarketParams => "INVALID_MARKET_PARAMS",
            Reject::SlugTaken => "SLUG_TAKEN",
            Reject::InvalidResolution => "INVALID_RESOLUTION",
            Reject::PriceOffTick => "PRICE_OFF_TICK",
            Reject::PriceOutOfRange => "PRICE_OUT_OF_RANGE",
            Reject::QtyOutOfRange => "QTY_OUT_OF_RANGE",
            Reject::AmountOutOfRange => "AMOUNT_OUT_OF_RANGE",
            Reject::InvalidOrder => "INVALID_ORDER",
            Reject::ExpiryInPast => "EXPIRY_IN_PAST",
            Reject::InsufficientFunds => "INSUFFICIENT_FUNDS",
            Reject::InsufficientShares => "INSUFFICIENT_SHARES",
            Reject::PostOnlyWouldTake => "POST_ONLY_WOULD_TAKE",
            Reject::FokNotFilled => "FOK_NOT_FILLED",
            Reject::SlippageExceeded => "SLIPPAGE_EXCEEDED",
            Reject::ClientOrderIdReused => "CLIENT_ORDER_ID_REUSED",
            Reject::TooManyOpenOrders => "TOO_MANY_OPEN_ORDERS",
            Reject::ReduceOnlyWouldIncrease => "REDUCE_ONLY_WOULD_INCREASE",
            Reject::NothingToAmend => "NOTHING_TO_AMEND",
            Reject::BatchTooLarge => "BATCH_TOO_LARGE",
            Reject::TooManyUsers => "TOO_MANY_USERS",
            Reject::TooManyMarkets => "TOO_MANY_MARKETS",
            Reject::CashCapExceeded => "CASH_CAP_EXCEEDED",
            Reject::SameUser => "SAME_USER",
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for Reject {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_name_and_code_agree() {
        for reject in [
            Reject::PriceOffTick,
            Reject::FokNotFilled,
            Reject::CashCapExceeded,
            Reject::SameUser,
        ] {
            let json = serde_json::to_string(&reject).unwrap();
            assert_eq!(json, format!("\"{}\"", reject.code()));
        }
    }
}
