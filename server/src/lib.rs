//! The predex server: HTTP API, durable sequencer and recovery around the deterministic engine.
//!
//! `app::start` wires everything; `sequencer` owns the engine and the journal; `http` holds the
//! router, the error type and the extractors; `auth` and `transfers` are the API's domains.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod config;
pub mod costs;
pub mod db;
pub mod demo;
pub mod domain;
pub mod http;
pub mod ids;
pub mod limits;
pub mod markets;
pub mod metrics;
pub mod orders;
pub mod portfolio;
pub mod sequencer;
pub mod stream;
pub mod telemetry;
pub mod trade_history;
pub mod transfers;
pub mod users;
pub mod wire;
pub mod ws;
