//! The public shapes of the API: the JSON bodies that HTTP answers carry and the streams
//! publish (orders and fills, trades and tickers, balances), and the OpenAPI vocabulary they
//! are described in ([`schema`]).
//!
//! A leaf: it imports only the engine, `domain` (decimal and time formats) and `ids`, so the
//! sequencer and the streams render these bodies without reaching up into the HTTP handlers,
//! and the handlers answer with the very same types. Must never query the database or know
//! about a request.

mod balance;
mod market_data;
mod orders;
pub mod schema;

pub use balance::BalanceBody;
pub use market_data::{TickerBody, TradeBody};
pub use orders::{order_rests, FillBody, LockTerms, OrderBody};
