//! Tests that run natively and inside WASM (under Node, with `wasm-bindgen-test-runner`):
//! the same seeded command sequence must end on the same state hash on both, and the
//! JavaScript surface must take and give the API's shapes.

use sim::checks::{CheckConfig, CheckMode};
use sim::runner::{run, SimConfig};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// The hash a native run of this configuration ends on. Both platforms must reach it; if the
/// engine's behaviour changes on purpose, update it from a native run.
const SEEDED_RUN_HASH: &str = "553a7979b2d6fdbb60b38c88d5c49431";

fn seeded_run() -> String {
    let config = SimConfig {
        seed: 2026,
        ops: 3_000,
        markets: 3,
        users: 24,
        check: CheckConfig {
            mode: CheckMode::Fast,
            full_every: 1_000,
            differential: false,
            restore_every: 0,
        },
    };
    let (report, _) = run(config, false);
    assert_eq!(report.failure, None);
    assert!(report.trades > 100);
    report.state_hash
}

#[test]
fn a_seeded_run_ends_on_the_same_hash_natively_and_in_wasm() {
    assert_eq!(seeded_run(), SEEDED_RUN_HASH);
}

#[cfg(target_arch = "wasm32")]
mod javascript {
    use engine_wasm::{BookMirror, WasmEngine};
    use wasm_bindgen::JsValue;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn js(text: &str) -> JsValue {
        js_sys::JSON::parse(text).expect("valid JSON")
    }

    fn field(value: &JsValue, name: &str) -> JsValue {
        js_sys::Reflect::get(value, &JsValue::from_str(name)).expect("an object")
    }

    fn mirror() -> BookMirror {
        let market = js(r#"{"tickSize": "0.01", "minQty": 1, "maxQty": 1000,
            "makerFeeRate": "0", "takerFeeRate": "0.07", "slug": "btc-50k"}"#);
        let book = js(r#"{"marketId": "m", "seq": 7,
            "bids": [{"price": "0.48", "qty": 10}],
            "asks": [{"price": "0.50", "qty": 5}, {"price": "0.52", "qty": 15}]}"#);
        BookMirror::from_snapshot(market, book).expect("a valid snapshot")
    }

    #[wasm_bindgen_test]
    fn a_preview_comes_back_as_an_api_shaped_object() {
        let mut mirror = mirror();
        let order =
            js(r#"{"side": "BUY", "outcome": "YES", "type": "LIMIT", "price": "0.52", "qty": 30}"#);
        let preview = mirror.preview(order, JsValue::UNDEFINED).unwrap();
        assert_eq!(field(&preview, "accepted"), JsValue::TRUE);
        assert_eq!(field(&preview, "filledQty").as_f64(), Some(20.0));
        assert_eq!(
            field(&preview, "fees").as_string().as_deref(),
            Some("0.34958")
        );
        assert_eq!(
            field(&preview, "avgPrice").as_string().as_deref(),
            Some("0.515")
        );
        let rests = field(&preview, "rests");
        assert_eq!(field(&rests, "qty").as_f64(), Some(10.0));
    }

    #[wasm_bindgen_test]
    fn a_gap_in_the_stream_asks_for_a_resync() {
        let mut mirror = mirror();
        let delta = |seq: u32| {
            js(&format!(
                r#"{{"type": "delta", "topic": "book:m", "seq": {seq},
                "data": {{"changes": [{{"side": "ASK", "price": "0.50", "qty": 0}}]}}}}"#
            ))
        };
        assert_eq!(
            mirror.apply_delta(delta(9)).unwrap().as_string().as_deref(),
            Some("resync")
        );
        assert_eq!(mirror.seq(), 7.0);
        assert_eq!(
            mirror.apply_delta(delta(8)).unwrap().as_string().as_deref(),
            Some("applied")
        );
        assert_eq!(mirror.seq(), 8.0);
    }

    #[wasm_bindgen_test]
    fn bad_input_is_a_clear_error() {
        let market = js(r#"{"tickSize": "0.01"}"#);
        let book = js(r#"{"seq": 1, "bids": [], "asks": []}"#);
        let error = BookMirror::from_snapshot(market, book)
            .err()
            .expect("refused");
        let message: JsValue = error.into();
        let text = field(&message, "message").as_string().unwrap();
        assert!(text.starts_with("BAD_REQUEST"), "{text}");
    }

    #[wasm_bindgen_test]
    fn the_offline_engine_applies_commands_and_reports_rejects() {
        let mut engine = WasmEngine::new();
        let created = engine
            .apply(js(r#"{"ts_micros": 1, "op": {"type": "create_user"}}"#))
            .unwrap();
        assert_eq!(field(&created, "reject"), JsValue::NULL);
        let overdraw =
            js(r#"{"ts_micros": 2, "op": {"type": "withdraw", "user": 0, "amount_micros": 5}}"#);
        let refused = engine.apply(overdraw).unwrap();
        assert_eq!(
            field(&refused, "reject").as_string().as_deref(),
            Some("INSUFFICIENT_FUNDS")
        );
        assert_eq!(engine.state_hash().len(), 32);
    }
}
