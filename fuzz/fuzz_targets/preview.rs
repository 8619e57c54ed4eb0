//! The browser's inputs: any bytes as an order body or a book message on a mirrored book
//! produce a preview, a delta status or an error, never a panic (a panic aborts the WASM).
#![no_main]

use engine_wasm::mirror::Mirror;
use engine_wasm::wire::{AccountJson, BookJson, BookMessage, LevelJson, MarketJson, OrderJson};
use libfuzzer_sys::fuzz_target;

fn mirror() -> Mirror {
    let market: MarketJson = serde_json::from_str(
        r#"{"tickSize":"0.01","minQty":1,"maxQty":100000,"makerFeeRate":"-0.001","takerFeeRate":"0.07"}"#,
    )
    .expect("a market");
    let level = |price: &str, qty| LevelJson {
        price: price.into(),
        qty,
    };
    let book = BookJson {
        market_id: None,
        seq: 5,
        bids: vec![level("0.48", 10), level("0.47", 30)],
        asks: vec![level("0.50", 20), level("0.55", 40)],
    };
    Mirror::new(market.params().expect("valid params"), &book).expect("a valid book")
}

fuzz_target!(|data: &[u8]| {
    let mut mirror = mirror();
    if let Ok(order) = serde_json::from_slice::<OrderJson>(data) {
        let _ = mirror.preview(&order, None);
        let poor = AccountJson {
            available: "3.50".into(),
            yes_shares: 5,
            no_shares: 0,
        };
        let _ = mirror.preview(&order, Some(poor.to_account().expect("valid")));
    }
    if let Ok(message) = serde_json::from_slice::<BookMessage>(data) {
        let _ = mirror.apply(&message);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = engine_wasm::decimal::price_units(text);
        let _ = engine_wasm::decimal::cash_micros(text);
        let _ = engine_wasm::decimal::rate_bps(text);
    }
});
