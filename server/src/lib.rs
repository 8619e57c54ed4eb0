//! The predex server: HTTP API, durable sequencer and recovery around the deterministic engine.
//!
//! `app::start` wires everything; `writer_lock` keeps one writer per database; `sequencer` owns
//! the engine and the journal; `stream` numbers and publishes what each batch changed; `wire`
//! holds the public shapes that answers and streams share; `http` holds the router, the error
//! type and the extractors; `auth`, `markets`, `orders`, `portfolio`, `transfers`, `admin` and
//! `ws` are the API's domains; `operator` is the `server admin` command line.
#![forbid(unsafe_code)]

pub mod admin;
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
pub mod operator;
pub mod orders;
pub mod portfolio;
pub mod sequencer;
pub mod stream;
pub mod telemetry;
pub mod trade_history;
pub mod transfers;
pub mod users;
pub mod wire;
pub mod writer_lock;
pub mod ws;
