//! Profiles one preview on a 100-level book natively (`cargo run --release -p engine-wasm
//! --example preview_profile`), the same case `js/node-test.mjs` times in Node.
use engine_wasm::mirror::Mirror;
use engine_wasm::wire::{Account, BookJson, LevelJson, MarketJson, OrderJson};
use std::time::Instant;

fn main() {
    let market: MarketJson = serde_json::from_value(serde_json::json!({
        "tickSize": "0.001", "minQty": 1, "maxQty": 100000, "makerFeeRate": "0", "takerFeeRate": "0.07"
    }))
    .unwrap();
    let level = |i: u64, price: u64| LevelJson {
        price: format!("0.{price:03}"),
        qty: 100 + i,
    };
    let book = BookJson {
        market_id: None,
        seq: 1,
        bids: (0..50).map(|i| level(i, 499 - i)).collect(),
        asks: (0..50).map(|i| level(i, 501 + i)).collect(),
    };
    let mut mirror = Mirror::new(market.params().unwrap(), &book).unwrap();
    let order: OrderJson = serde_json::from_value(serde_json::json!({
        "side": "BUY", "outcome": "YES", "type": "MARKET", "qty": 2190
    }))
    .unwrap();
    let account = Some(Account {
        available_micros: 5_000_000_000,
        yes_shares: 0,
        no_shares: 0,
    });
    let rounds = 200_000;
    let started = Instant::now();
    for _ in 0..rounds {
        let preview = mirror.preview(&order, account);
        std::hint::black_box(serde_json::to_string(&preview).unwrap());
    }
    println!(
        "{:.2} µs per preview",
        started.elapsed().as_secs_f64() * 1e6 / rounds as f64
    );
}
