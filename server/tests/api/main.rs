//! Black-box tests of the server over HTTP, each on a fresh database (SQLite, and PostgreSQL
//! when `TEST_DATABASE_URL` is set). One test binary, so the crate links once.

mod api_keys;
mod auth;
mod authorization;
mod cors;
mod crash;
mod crash_retries;
mod demo;
mod durability;
mod gateway;
mod helpers;
mod hostile_input;
mod idempotency;
mod limits;
mod locks;
mod market_data;
mod markets;
mod openapi;
mod operator;
mod ops;
mod orders;
mod portfolio;
mod seed_flow;
mod ws;
mod ws_client;
