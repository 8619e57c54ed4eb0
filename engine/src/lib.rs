//! A deterministic matching engine and double-entry ledger for binary prediction markets.
//!
//! Pure: no I/O, no clock, no randomness, no floats. Commands in, events out; the same commands
//! in the same order give the same events and the same `state_hash` on every platform.
#![forbid(unsafe_code)]

extern crate alloc;

pub mod audit;
pub mod command;
pub mod event;
pub mod reference;
pub mod reject;
pub mod types;
pub mod units;

mod admin;
mod book;
mod check;
mod engine;
mod ledger;
mod manage;
mod matching;
mod orders;
mod query;
mod snapshot;

pub use check::Violation;
pub use command::{Command, MarketParams, Op, PlaceOrder};
pub use engine::{Config, Engine};
pub use event::Event;
pub use ledger::{Cash, Position};
pub use query::{BookDepth, MarketView, OrderView};
pub use reject::Reject;
pub use snapshot::{
    ClientIdSnapshot, MarketSnapshot, OrderSnapshot, RestoreError, Snapshot, UserSnapshot,
};
pub use types::*;
pub use units::LockRule;
