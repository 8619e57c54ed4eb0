//! The engine in the browser, through wasm-bindgen: a `BookMirror` that follows a market's book
//! (REST snapshot, then WebSocket deltas with gap detection) and previews an order on it with
//! the same engine code the server runs, and an `Engine` for offline simulation.
//!
//! Owns only the JavaScript boundary: values cross it as plain JS objects in the shapes of
//! `../shared/API.md` (the preview) or of the engine's serde (the offline engine), typed by the
//! TypeScript declarations below. It must never compute a fill, a fee or a reject itself: the
//! engine does (`mirror`), and the decimal edge converts (`decimal`).

pub mod decimal;
pub mod mirror;
pub mod wire;

use engine::{BookSide, Command, Engine as CoreEngine, Event, MarketId, Reject, UserId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::mirror::Mirror;
use crate::wire::{
    AccountJson, BookJson, BookMessage, LevelJson, MarketJson, OrderJson, WireError,
};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** `GET /v1/markets/{id}` (the fields a preview needs). */
export interface Market { tickSize: string; minQty: number; maxQty: number; makerFeeRate: string; takerFeeRate: string; lockRule?: "BUFFER_FOR_MAKER_FEE" | "BUFFER_ALWAYS"; [key: string]: unknown }
export interface Level { price: string; qty: number }
/** `GET /v1/markets/{id}/book`: best first, YES prices. */
export interface BookSnapshot { marketId?: string; seq: number; bids: Level[]; asks: Level[] }
/** A message of the `book:{id}` WebSocket topic. */
export interface BookMessage { type: "snapshot" | "delta"; topic?: string; seq: number; resync?: boolean; data: BookSnapshot | { changes: { side: "BID" | "ASK"; price: string; qty: number }[] } }
export type DeltaStatus = "applied" | "stale" | "resync";
/** The `POST /v1/orders` body. */
export interface OrderRequest {
  marketId?: string; side: "BUY" | "SELL"; outcome: "YES" | "NO"; type: "LIMIT" | "MARKET";
  price?: string; qty?: number; cashAmount?: string; timeInForce?: "GTC" | "GTD" | "IOC" | "FOK";
  expiresAt?: string; postOnly?: boolean; reduceOnly?: boolean;
  selfTradePrevention?: "CANCEL_TAKER" | "CANCEL_MAKER" | "CANCEL_BOTH" | "DECREMENT_AND_CANCEL";
  clientOrderId?: string; worstPrice?: string; maxSlippageBps?: number;
}
/** What the user holds; without it a preview assumes enough cash (and shares to sell). */
export interface Account { available: string; yesShares?: number; noShares?: number }
export interface PreviewFill { price: string; yesPrice: string; qty: number; fee: string }
export interface Preview {
  accepted: boolean; reject: { code: string; message: string } | null;
  status: "FILLED" | "PARTIALLY_FILLED" | "OPEN" | "CANCELLED" | null; cancelReason: string | null;
  fills: PreviewFill[]; filledQty: number; unfilledQty: number;
  avgPrice: string | null; worstPrice: string | null;
  slippageBpsVsBest: string | null; slippageBpsVsMid: string | null;
  fees: string; cashDelta: string; cashLocked: string;
  rests: { price: string; qty: number } | null;
  position: { yesShares: number; noShares: number } | null;
}
/** The result of `Engine.apply`: the events, and the reject code when it was refused. */
export interface Applied { reject: string | null; events: unknown[] }
"#;

fn from_js<T: DeserializeOwned>(value: &JsValue) -> Result<T, JsError> {
    let text = js_sys::JSON::stringify(value)
        .map_err(|_| JsError::new("the value cannot be written as JSON"))?;
    let text = text.as_string().unwrap_or_default();
    serde_json::from_str(&text).map_err(|e| JsError::new(&format!("BAD_REQUEST: {e}")))
}

fn to_js<T: Serialize>(value: &T) -> JsValue {
    let text = serde_json::to_string(value).expect("plain data encodes");
    js_sys::JSON::parse(&text).expect("serde_json writes valid JSON")
}

fn wire_error(error: WireError) -> JsError {
    JsError::new(&format!("{}: {}", error.code, error.message))
}

/// A local copy of one market's book that previews orders.
#[wasm_bindgen]
pub struct BookMirror {
    mirror: Mirror,
}

#[wasm_bindgen]
impl BookMirror {
    /// From the market (`GET /v1/markets/{id}`) and its book (`GET /v1/markets/{id}/book`).
    #[wasm_bindgen(js_name = fromSnapshot)]
    pub fn from_snapshot(
        #[wasm_bindgen(unchecked_param_type = "Market")] market: JsValue,
        #[wasm_bindgen(unchecked_param_type = "BookSnapshot")] book: JsValue,
    ) -> Result<BookMirror, JsError> {
        let market: MarketJson = from_js(&market)?;
        let book: BookJson = from_js(&book)?;
        let params = market.params().map_err(wire_error)?;
        let mirror = Mirror::new(params, &book).map_err(wire_error)?;
        Ok(BookMirror { mirror })
    }

    /// Applies a `book:{id}` message. `"resync"` means a message was missed: nothing changed,
    /// and the caller should fetch a fresh snapshot.
    #[wasm_bindgen(js_name = applyDelta, unchecked_return_type = "DeltaStatus")]
    pub fn apply_delta(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "BookMessage")] message: JsValue,
    ) -> Result<JsValue, JsError> {
        let message: BookMessage = from_js(&message)?;
        let status = self.mirror.apply(&message).map_err(wire_error)?;
        Ok(to_js(&status))
    }

    /// The last stream message the mirror includes.
    #[wasm_bindgen(getter)]
    pub fn seq(&self) -> f64 {
        self.mirror.seq() as f64
    }

    /// The mirrored book in the REST shape.
    #[wasm_bindgen(unchecked_return_type = "BookSnapshot")]
    pub fn book(&self) -> JsValue {
        let side = |side| {
            let levels = self.mirror.levels(side).into_iter();
            levels
                .map(|(price, qty)| LevelJson {
                    price: decimal::format_price(price),
                    qty,
                })
                .collect()
        };
        to_js(&BookJson {
            market_id: None,
            seq: self.mirror.seq(),
            bids: side(BookSide::Bid),
            asks: side(BookSide::Ask),
        })
    }

    /// What the order would do now: fills level by level, prices, slippage, fees, cash, the
    /// resulting position, whether the rest rests, or the reject the server would give.
    #[wasm_bindgen(unchecked_return_type = "Preview")]
    pub fn preview(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "OrderRequest")] order: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Account | undefined")] account: JsValue,
    ) -> Result<JsValue, JsError> {
        let order: OrderJson = from_js(&order)?;
        let account = if account.is_undefined() || account.is_null() {
            None
        } else {
            let account: AccountJson = from_js(&account)?;
            Some(account.to_account().map_err(wire_error)?)
        };
        Ok(to_js(&self.mirror.preview(&order, account)))
    }
}

/// The whole engine, for offline simulation: commands and events in the engine's own serde
/// shapes (`{"ts_micros": .., "op": {"type": "place", ..}}`).
#[wasm_bindgen(js_name = Engine)]
pub struct WasmEngine {
    engine: CoreEngine,
    events: Vec<Event>,
}

#[derive(Serialize)]
struct Applied<'a> {
    reject: Option<&'static str>,
    events: &'a [Event],
}

#[wasm_bindgen(js_class = Engine)]
impl WasmEngine {
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> WasmEngine {
        WasmEngine {
            engine: CoreEngine::default(),
            events: Vec::new(),
        }
    }

    /// Applies one command; a reject comes back as its code, never as an exception.
    #[wasm_bindgen(unchecked_return_type = "Applied")]
    pub fn apply(&mut self, command: JsValue) -> Result<JsValue, JsError> {
        let command: Command = from_js(&command)?;
        self.events.clear();
        let result = self.engine.apply(&command, &mut self.events);
        Ok(to_js(&Applied {
            reject: result.err().map(Reject::code),
            events: &self.events,
        }))
    }

    /// 32 hex digits; the same for the same commands natively and in WASM.
    #[wasm_bindgen(js_name = stateHash)]
    pub fn state_hash(&self) -> String {
        format!("{:032x}", self.engine.state_hash())
    }

    pub fn snapshot(&self) -> JsValue {
        to_js(&self.engine.snapshot())
    }

    pub fn restore(snapshot: JsValue) -> Result<WasmEngine, JsError> {
        let snapshot: engine::Snapshot = from_js(&snapshot)?;
        let engine = CoreEngine::restore(&snapshot).map_err(|e| JsError::new(&e.to_string()))?;
        Ok(WasmEngine {
            engine,
            events: Vec::new(),
        })
    }

    #[wasm_bindgen(js_name = bookDepth)]
    pub fn book_depth(&self, market: u32, depth: u32) -> JsValue {
        to_js(&self.engine.book_depth(MarketId(market), depth as usize))
    }

    pub fn balance(&self, user: u32) -> JsValue {
        to_js(&self.engine.balance(UserId(user)))
    }

    pub fn position(&self, user: u32, market: u32) -> JsValue {
        to_js(&self.engine.position(UserId(user), MarketId(market)))
    }

    #[wasm_bindgen(js_name = openOrders)]
    pub fn open_orders(&self, user: u32) -> JsValue {
        to_js(&self.engine.open_orders(UserId(user)))
    }

    pub fn market(&self, market: u32) -> JsValue {
        to_js(&self.engine.market(MarketId(market)))
    }
}
