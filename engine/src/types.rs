//! The engine's vocabulary: ids, sides, outcomes, order options and market states.
//!
//! Plain `Copy` values with a stable serde shape (they appear in journaled commands and in
//! events exchanged with the browser). Nothing here holds state or allocates.

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::units::{CLIENT_ORDER_ID_LEN_MAX, SLUG_LEN_MAX};

/// Dense user id, assigned in order by `CreateUser`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub u32);

/// Dense market id, assigned in order by `CreateMarket`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MarketId(pub u32);

/// Order id, assigned in order when an order is accepted; never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub u64);

/// Trade id, assigned in order per fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TradeId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Side {
    Buy,
    Sell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Yes,
    No,
}

impl Outcome {
    pub const fn other(self) -> Outcome {
        match self {
            Outcome::Yes => Outcome::No,
            Outcome::No => Outcome::Yes,
        }
    }
}

/// A side of the one YES-priced book per market.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BookSide {
    Bid,
    Ask,
}

impl BookSide {
    /// BUY YES and SELL NO want YES exposure: they rest on the bid.
    pub const fn of(side: Side, outcome: Outcome) -> BookSide {
        match (side, outcome) {
            (Side::Buy, Outcome::Yes) | (Side::Sell, Outcome::No) => BookSide::Bid,
            (Side::Sell, Outcome::Yes) | (Side::Buy, Outcome::No) => BookSide::Ask,
        }
    }

    pub const fn opposite(self) -> BookSide {
        match self {
            BookSide::Bid => BookSide::Ask,
            BookSide::Ask => BookSide::Bid,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderType {
    Limit,
    Market,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimeInForce {
    Gtc,
    Gtd,
    Ioc,
    Fok,
}

/// What happens when a taker would trade with its own user's resting order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SelfTradePrevention {
    #[default]
    CancelTaker,
    CancelMaker,
    CancelBoth,
    DecrementAndCancel,
}

/// The four ways a bid-side order and an ask-side order can trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FillKind {
    /// BUY YES meets SELL YES: a YES share changes hands.
    YesTransfer,
    /// SELL NO meets BUY NO: a NO share changes hands.
    NoTransfer,
    /// BUY YES meets BUY NO: both pay, one YES and one NO share are created, escrow +1.
    Mint,
    /// SELL NO meets SELL YES: both shares are destroyed, escrow pays out 1.
    Merge,
}

impl FillKind {
    /// `bid` is the (side, outcome) of the bid-side order.
    pub const fn of(bid: (Side, Outcome), ask: (Side, Outcome)) -> FillKind {
        match (bid.0, ask.0) {
            (Side::Buy, Side::Sell) => FillKind::YesTransfer,
            (Side::Sell, Side::Buy) => FillKind::NoTransfer,
            (Side::Buy, Side::Buy) => FillKind::Mint,
            (Side::Sell, Side::Sell) => FillKind::Merge,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MarketState {
    Open,
    Halted,
    Closed,
    Resolved,
}

/// How a market resolves. `Split` pays `yes_payout_units` (0..=10000) per YES share and the
/// complement per NO share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    Yes,
    No,
    Split { yes_payout_units: u16 },
}

impl Resolution {
    /// The payout of one YES share in price units.
    pub const fn yes_payout_units(self) -> u16 {
        match self {
            Resolution::Yes => crate::units::PRICE_SCALE as u16,
            Resolution::No => 0,
            Resolution::Split { yes_payout_units } => yes_payout_units,
        }
    }
}

/// Why an order left the book without filling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancelReason {
    UserRequested,
    SelfTrade,
    /// The unfilled rest of an IOC limit order.
    Unfilled,
    /// The unfilled rest of a MARKET order, stopped by its protection limit or an empty book.
    SlippageLimit,
    MarketClosed,
    MarketResolved,
}

/// A final order status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderEnd {
    Filled,
    Cancelled,
    Expired,
}

/// Defines a bounded ASCII string type stored inline (`Copy`, so holding one never allocates):
/// `new` accepts 1..=`$len` bytes that all pass `$byte_ok`, and serde reads and writes it as a
/// plain string, rejecting what `new` rejects with `$expected`.
macro_rules! inline_ascii {
    ($(#[$doc:meta])* $name:ident, $len:expr, $byte_ok:expr, $expected:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name {
            len: u8,
            bytes: [u8; $len],
        }

        impl $name {
            pub fn new(text: &str) -> Option<$name> {
                let valid_len = (1..=$len).contains(&text.len());
                let byte_ok: fn(u8) -> bool = $byte_ok;
                if !valid_len || !text.bytes().all(byte_ok) {
                    return None;
                }
                let mut bytes = [0u8; $len];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                Some($name {
                    len: text.len() as u8,
                    bytes,
                })
            }

            pub fn as_str(&self) -> &str {
                // Only ASCII is ever stored (checked in `new`), so this cannot fail.
                core::str::from_utf8(&self.bytes[..self.len as usize]).expect("ascii")
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <alloc::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                $name::new(&text).ok_or_else(|| serde::de::Error::custom($expected))
            }
        }
    };
}

inline_ascii!(
    /// A client order id: 1..=36 printable ASCII bytes.
    ClientOrderId,
    CLIENT_ORDER_ID_LEN_MAX,
    |b| b.is_ascii_graphic(),
    "client order id must be 1..=36 printable ASCII characters"
);

inline_ascii!(
    /// A market's slug, its name in URLs: 1..=64 bytes of `a-z`, `0-9` and `-`. (Inline, so
    /// market parameters and the events carrying them own no heap memory.)
    Slug,
    SLUG_LEN_MAX,
    |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-',
    "slug must be 1..=64 characters of a-z, 0-9 and -"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn book_side_follows_yes_exposure() {
        assert_eq!(BookSide::of(Side::Buy, Outcome::Yes), BookSide::Bid);
        assert_eq!(BookSide::of(Side::Sell, Outcome::No), BookSide::Bid);
        assert_eq!(BookSide::of(Side::Sell, Outcome::Yes), BookSide::Ask);
        assert_eq!(BookSide::of(Side::Buy, Outcome::No), BookSide::Ask);
    }

    #[test]
    fn client_order_ids_are_bounded_printable_ascii() {
        assert!(ClientOrderId::new("").is_none());
        assert!(ClientOrderId::new("has space").is_none());
        assert!(ClientOrderId::new(&"x".repeat(37)).is_none());
        let id = ClientOrderId::new("bot-7:42").unwrap();
        assert_eq!(id.as_str(), "bot-7:42");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"bot-7:42\"");
        assert_eq!(serde_json::from_str::<ClientOrderId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<ClientOrderId>("\"é\"").is_err());
    }

    #[test]
    fn slugs_are_bounded_lowercase_digits_and_dashes() {
        for bad in ["", "Rain", "will rain", "will_rain", "é", &"x".repeat(65)] {
            assert!(Slug::new(bad).is_none(), "{bad:?}");
            let json = serde_json::to_string(bad).unwrap();
            assert!(serde_json::from_str::<Slug>(&json).is_err(), "{bad:?}");
        }
        for good in ["0-9-a-z", "will-it-rain", &"a".repeat(64)] {
            let slug = Slug::new(good).unwrap();
            assert_eq!(slug.as_str(), good);
            let json = serde_json::to_string(&slug).unwrap();
            assert_eq!(serde_json::from_str::<Slug>(&json).unwrap(), slug);
        }
    }
}
