//! The wire vocabulary as OpenAPI schemas: the text enums and decimal strings that the bodies
//! of the API are made of, each named once so that every body refers to the same definition.
//!
//! Handlers write these values as plain strings read back from the projections (which store the
//! engine's own serde names); the types here only describe those strings to the document, and
//! this module's tests pin every enum to the engine's serde names so the two cannot drift. Must
//! never be used to parse input or build an answer: `crate::domain` is the one gate for input.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// A string schema with a pattern and an example, named after its type.
macro_rules! decimal_string {
    ($(#[doc = $doc:literal])+ $name:ident, $pattern:literal, $example:literal) => {
        $(#[doc = $doc])+
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let description = [$($doc),+].map(str::trim).join(" ");
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some($pattern))
                    .description(Some(description))
                    .examples([$example])
                    .into()
            }
        }

        impl ToSchema for $name {}
    };
}

decimal_string! {
    /// A price in dollars per share, from 0 to 1 with 2 to 4 decimals: always on the market's
    /// tick where an order rests or trades, and in the named outcome's terms (books and tickers
    /// quote YES prices).
    Price, r"^[01]\.[0-9]{2,4}$", "0.49"
}

decimal_string! {
    /// A price that may fall between two ticks: the midpoint of the best bid and ask, with 2 to 5
    /// decimals.
    MidPrice, r"^[01]\.[0-9]{2,5}$", "0.455"
}

decimal_string! {
    /// An average price or cost per share, exact to 6 decimals (2 at least); costs include fees,
    /// so they may exceed 1.
    AveragePrice, r"^[0-9]+\.[0-9]{2,6}$", "0.453333"
}

decimal_string! {
    /// An exact amount of cash in dollars, with 2 to 6 decimals (trailing zeros trimmed past the
    /// second); negative only for losses and rebates.
    Cash, r"^-?[0-9]+\.[0-9]{2,6}$", "12.50"
}

decimal_string! {
    /// A fee rate: the fee is this rate times `qty * p * (1 - p)`. 2 to 4 decimals; a negative
    /// maker rate is a rebate.
    FeeRate, r"^-?[01]\.[0-9]{2,4}$", "0.07"
}

decimal_string! {
    /// The change of the last YES price over 24 hours, in dollars: signed, 2 to 4 decimals.
    PriceChange, r"^-?[01]\.[0-9]{2,4}$", "-0.03"
}

decimal_string! {
    /// A price for a request: a plain decimal string strictly between 0 and 1. More than 4
    /// decimals (or off the market's tick) is `PRICE_OFF_TICK`, 0 or 1 and above is
    /// `PRICE_OUT_OF_RANGE`; prices are never rounded.
    PriceInput, r"^[0-9]+(\.[0-9]+)?$", "0.49"
}

decimal_string! {
    /// A cash amount for a request: a plain decimal string above 0 and at most 1000000000, with
    /// at most 6 decimals. Never rounded.
    CashInput, r"^[0-9]+(\.[0-9]+)?$", "100.00"
}

decimal_string! {
    /// The payout of one YES share for a request: a decimal string from 0 to 1 inclusive with at
    /// most 4 decimals.
    PayoutInput, r"^[0-9]+(\.[0-9]+)?$", "0.40"
}

decimal_string! {
    /// A fee rate for a request: a decimal from 0 to 1 with at most 4 decimals; the maker's may be
    /// negative (a rebate no larger than the taker rate).
    FeeRateInput, r"^-?[0-9]+(\.[0-9]+)?$", "0.02"
}

decimal_string! {
    /// A machine-readable error code in SCREAMING_SNAKE_CASE: `BAD_REQUEST`,
    /// `VALIDATION_FAILED`, `UNAUTHENTICATED`, `FORBIDDEN`, `CSRF_FAILED`, `NOT_FOUND`,
    /// `CONFLICT`, `PAYLOAD_TOO_LARGE`, `UNSUPPORTED_MEDIA_TYPE`, `METHOD_NOT_ALLOWED`,
    /// `IDEMPOTENCY_KEY_REUSED`, `RATE_LIMITED`, `OVERLOADED`, `UNAVAILABLE`, `READ_ONLY`,
    /// `INTERNAL`, or an engine reject by name (`INSUFFICIENT_FUNDS`, `PRICE_OFF_TICK`,
    /// `MARKET_NOT_OPEN`, ...).
    ErrorCode, r"^[A-Z][A-Z0-9_]*$", "VALIDATION_FAILED"
}

/// An order's side.
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Side {
    Buy,
    Sell,
}

/// The outcome an order or position names.
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Yes,
    No,
}

/// A LIMIT order names its price; a MARKET order takes what the book offers, within its
/// protection (`worstPrice`, `maxSlippageBps`).
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderType {
    Limit,
    Market,
}

/// How long an order may rest: good till cancelled, good till `expiresAt`, immediate or cancel,
/// fill or kill.
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimeInForce {
    Gtc,
    Gtd,
    Ioc,
    Fok,
}

/// What happens when an order would trade with its own user's resting order.
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SelfTradePrevention {
    CancelTaker,
    CancelMaker,
    CancelBoth,
    DecrementAndCancel,
}

/// Where an order stands: resting (`OPEN`, `PARTIALLY_FILLED`) or ended.
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Open,
    PartiallyFilled,
    Filled,
    Cancelled,
    Expired,
}

/// Why an order left the book without filling.
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancelReason {
    UserRequested,
    SelfTrade,
    Unfilled,
    SlippageLimit,
    MarketClosed,
    MarketResolved,
}

/// Whether the fill's order was resting (`MAKER`) or arriving (`TAKER`).
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LiquidityRole {
    Maker,
    Taker,
}

/// How a trade moved shares: a YES or NO share changed hands, a YES/NO pair was minted from two
/// buyers, or a pair was merged from two sellers.
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradeKind {
    YesTransfer,
    NoTransfer,
    Mint,
    Merge,
}

/// A market's life: trading (`OPEN`), paused (`HALTED`), no longer trading (`CLOSED`), paid out
/// (`RESOLVED`).
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MarketState {
    Open,
    Halted,
    Closed,
    Resolved,
}

/// How much cash a resting BUY locks beyond its worst-case cost (price plus the largest fee):
/// `BUFFER_FOR_MAKER_FEE` (every market created now) adds one micro-dollar per share only where
/// the maker fee is positive, to round that fee up on each fill, so with no maker fee a trader
/// holding exactly the cost can place the order; `BUFFER_ALWAYS` (markets created before that
/// rule) adds it whatever the fees. The buffer comes back as the order fills or ends. Without a
/// buffer, a GTC/GTD bid that meets the book in a market with a taker fee needs one micro-dollar
/// more while it takes (its taker fee and its remainder's reserve are rounded up apart); it is
/// back once the order rests.
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LockRule {
    BufferAlways,
    BufferForMakerFee,
}

/// How a market resolved: YES pays 1 per YES share, NO pays 1 per NO share, SPLIT pays
/// `yesPayout` per YES share and the rest per NO share.
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResolutionOutcome {
    Yes,
    No,
    Split,
}

/// Cash in (`DEPOSIT` by an admin, `FAUCET` on a test deployment) or out (`WITHDRAWAL`).
#[derive(ToSchema)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransferKind {
    Deposit,
    Withdrawal,
    Faucet,
}

/// A candle's length; candles are aligned to the Unix epoch (UTC).
#[derive(ToSchema)]
pub enum CandleInterval {
    #[schema(rename = "1m")]
    OneMinute,
    #[schema(rename = "5m")]
    FiveMinutes,
    #[schema(rename = "15m")]
    FifteenMinutes,
    #[schema(rename = "1h")]
    OneHour,
    #[schema(rename = "4h")]
    FourHours,
    #[schema(rename = "1d")]
    OneDay,
}

/// A market's price increment.
#[derive(ToSchema)]
pub enum TickSize {
    #[schema(rename = "0.01")]
    Cent,
    #[schema(rename = "0.001")]
    Mill,
    #[schema(rename = "0.0001")]
    TenthMill,
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    use utoipa::PartialSchema;

    /// The values a string-enum schema lists.
    fn values<T: PartialSchema>() -> Vec<String> {
        let RefOr::T(Schema::Object(object)) = T::schema() else {
            panic!("not an inline object schema");
        };
        object
            .enum_values
            .expect("an enum")
            .iter()
            .map(|value| value.as_str().expect("a string value").to_owned())
            .collect()
    }

    fn names<T: Serialize>(all: &[T]) -> Vec<String> {
        all.iter()
            .map(|value| match serde_json::to_value(value) {
                Ok(serde_json::Value::String(name)) => name,
                other => panic!("not a string name: {other:?}"),
            })
            .collect()
    }

    /// Every engine variant, listed through an exhaustive match so a new one fails to compile
    /// here until its schema lists it.
    macro_rules! all_of {
        ($type:path: $($variant:ident),+) => {{
            let all = [$(<$type>::$variant),+];
            for value in &all {
                match value {
                    $(<$type>::$variant)|+ => {}
                }
            }
            all
        }};
    }

    #[test]
    fn enums_list_exactly_the_engines_names() {
        use engine::*;
        assert_eq!(values::<super::Side>(), names(&all_of!(Side: Buy, Sell)));
        assert_eq!(
            values::<super::Outcome>(),
            names(&all_of!(Outcome: Yes, No))
        );
        assert_eq!(
            values::<super::OrderType>(),
            names(&all_of!(OrderType: Limit, Market))
        );
        assert_eq!(
            values::<super::TimeInForce>(),
            names(&all_of!(TimeInForce: Gtc, Gtd, Ioc, Fok))
        );
        assert_eq!(
            values::<super::SelfTradePrevention>(),
            names(&all_of!(
                SelfTradePrevention: CancelTaker,
                CancelMaker,
                CancelBoth,
                DecrementAndCancel
            ))
        );
        assert_eq!(
            values::<super::CancelReason>(),
            names(&all_of!(
                CancelReason: UserRequested,
                SelfTrade,
                Unfilled,
                SlippageLimit,
                MarketClosed,
                MarketResolved
            ))
        );
        assert_eq!(
            values::<super::TradeKind>(),
            names(&all_of!(FillKind: YesTransfer, NoTransfer, Mint, Merge))
        );
        assert_eq!(
            values::<super::MarketState>(),
            names(&all_of!(MarketState: Open, Halted, Closed, Resolved))
        );
        assert_eq!(
            values::<super::LockRule>(),
            names(&all_of!(LockRule: BufferAlways, BufferForMakerFee))
        );
        // The two resting statuses are the projection's; the rest are the engine's endings.
        let mut statuses = vec!["OPEN".to_owned(), "PARTIALLY_FILLED".to_owned()];
        statuses.extend(names(&all_of!(OrderEnd: Filled, Cancelled, Expired)));
        assert_eq!(values::<super::OrderStatus>(), statuses);
    }

    #[test]
    fn decimal_strings_describe_what_the_formatters_write() {
        use crate::domain::{format_cash, format_price, format_rate};
        let matches = |pattern: &str, text: &str| {
            let schema = serde_json::json!({ "type": "string", "pattern": pattern });
            jsonschema::is_valid(&schema, &serde_json::json!(text))
        };
        let pattern = |schema: RefOr<Schema>| match schema {
            RefOr::T(Schema::Object(object)) => object.pattern.expect("a pattern"),
            _ => panic!("not an object schema"),
        };
        let price = pattern(super::Price::schema());
        for units in [0, 1, 100, 4_950, 9_999, 10_000] {
            assert!(matches(&price, &format_price(units)), "{units}");
        }
        let cash = pattern(super::Cash::schema());
        for micros in [0, 1, -5_000_000, 12_500_000, 123_456, i64::MAX] {
            assert!(matches(&cash, &format_cash(micros)), "{micros}");
        }
        let rate = pattern(super::FeeRate::schema());
        for bps in [0, 700, -25, 10_000, -10_000] {
            assert!(matches(&rate, &format_rate(bps)), "{bps}");
        }
        let mid = pattern(super::MidPrice::schema());
        for units_x2 in [2, 9_001, 19_999, 20_000] {
            let text = crate::domain::format_half_units(units_x2);
            assert!(matches(&mid, &text), "{text}");
        }
        assert!(!matches(&price, "0.5"));
        assert!(!matches(&cash, "12.5"));
    }
}
