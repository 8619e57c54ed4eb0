//! Snapshots, restore and the state hash.
//!
//! A snapshot is the canonical, serde-serializable form of the whole state: orders in queue
//! order, positions sorted, nothing that depends on arena slots or hash-map iteration. The
//! state hash is xxh3-128 of its postcard encoding, so two engines that behave the same hash
//! the same on every platform. `restore` trusts nothing: it validates every field before use
//! and re-checks every invariant, returning an error instead of panicking on a bad snapshot.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::book::Book;
use crate::command::{MarketParams, PlaceOrder, FORMAT_VERSION};
use crate::engine::{ClientIds, ClientRecord, Config, Engine, Market, UserOrders};
use crate::ledger::{Cash, Position, PositionAccount};
use crate::matching::check_price;
use crate::orders::{Order, NIL};
use crate::types::{
    BookSide, ClientOrderId, MarketId, MarketState, OrderId, OrderType, Outcome, Resolution,
    SelfTradePrevention, Side, TimeInForce, UserId,
};
use crate::units::{CLIENT_ORDER_IDS_KEPT, ORDER_QTY_LIMIT};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format_version: u32,
    pub config: Config,
    pub now_micros: u64,
    pub next_order_id: u64,
    pub next_trade_id: u64,
    pub users: Vec<UserSnapshot>,
    pub markets: Vec<MarketSnapshot>,
    /// Non-empty positions, by market then user.
    pub positions: Vec<(MarketId, UserId, Position)>,
    pub fee_micros: i64,
    pub external_micros: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSnapshot {
    pub cash: Cash,
    /// Remembered client order ids: the recent ones oldest first, then those kept only
    /// because their order is still open (by order id).
    pub client_ids: Vec<ClientIdSnapshot>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientIdSnapshot {
    pub client_order_id: ClientOrderId,
    pub order: OrderId,
    pub request: PlaceOrder,
    pub recent: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketSnapshot {
    pub params: MarketParams,
    pub state: MarketState,
    #[serde(with = "resolution_field")]
    pub resolution: Option<Resolution>,
    pub book_seq: u64,
    pub escrow_micros: i64,
    /// Resting orders: bids best price first, then asks best first; each level in queue order.
    pub orders: Vec<OrderSnapshot>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSnapshot {
    pub order: OrderId,
    pub user: UserId,
    pub side: Side,
    pub outcome: Outcome,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub self_trade_prevention: SelfTradePrevention,
    pub post_only: bool,
    pub reduce_only: bool,
    pub limit_units: u16,
    pub qty: u64,
    pub filled_qty: u64,
    pub expires_at_micros: Option<u64>,
    pub locked_micros: i64,
}

/// A market's resolution inside a snapshot. `Resolution` is internally tagged (`{"outcome":
/// "SPLIT", "yes_payout_units": 2500}`, the shape clients see), which a format that does not
/// describe itself, such as the postcard the server stores snapshots in and the state hash is
/// taken over, can write but not read back. So the field is written as always (the bytes, and
/// so every state hash, stay what they were) and read back field by field: the tag, then a
/// split's payout.
mod resolution_field {
    use alloc::string::String;
    use core::fmt;

    use serde::de::{self, Deserializer, SeqAccess, Visitor};
    use serde::{Deserialize, Serialize, Serializer};

    use crate::types::Resolution;

    pub fn serialize<S: Serializer>(
        resolution: &Option<Resolution>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        resolution.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Resolution>, D::Error> {
        if deserializer.is_human_readable() {
            return Option::<Resolution>::deserialize(deserializer);
        }
        deserializer.deserialize_option(Fields)
    }

    /// Reads `Option<Resolution>` from what the derived `Serialize` wrote to a format that
    /// does not describe itself: an option, then the tag string and a split's payout.
    struct Fields;

    impl<'de> Visitor<'de> for Fields {
        type Value = Option<Resolution>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an optional resolution")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_tuple(2, Fields)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut fields: A) -> Result<Self::Value, A::Error> {
            let tag: String = fields
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(0, &self))?;
            match tag.as_str() {
                "YES" => Ok(Some(Resolution::Yes)),
                "NO" => Ok(Some(Resolution::No)),
                "SPLIT" => {
                    let yes_payout_units = fields
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                    Ok(Some(Resolution::Split { yes_payout_units }))
                }
                other => Err(de::Error::unknown_variant(other, &["YES", "NO", "SPLIT"])),
            }
        }
    }
}

/// Why a snapshot could not be restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreError(pub String);

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid snapshot: {}", self.0)
    }
}

impl std::error::Error for RestoreError {}

fn invalid(what: &str) -> RestoreError {
    RestoreError(what.to_owned())
}

impl Engine {
    pub fn snapshot(&self) -> Snapshot {
        let users = (0..self.users.len())
            .map(|user| UserSnapshot {
                cash: self.ledger.cash[user].value,
                client_ids: self.client_ids_snapshot(user),
            })
            .collect();
        let markets = (0..self.markets.len())
            .map(|market| self.market_snapshot(market))
            .collect();
        let mut positions: Vec<(MarketId, UserId, Position)> = self
            .ledger
            .positions
            .iter()
            .filter(|(_, account)| !account.value.is_empty())
            .map(|(&(market, user), account)| (market, user, account.value))
            .collect();
        positions.sort_unstable_by_key(|entry| (entry.0, entry.1));
        Snapshot {
            format_version: FORMAT_VERSION,
            config: self.config,
            now_micros: self.now_micros,
            next_order_id: self.next_order_id,
            next_trade_id: self.next_trade_id,
            users,
            markets,
            positions,
            fee_micros: self.ledger.fee_micros,
            external_micros: self.ledger.external_micros,
        }
    }

    fn client_ids_snapshot(&self, user: usize) -> Vec<ClientIdSnapshot> {
        let Some(ids) = self.users[user].client_ids.as_ref() else {
            return Vec::new();
        };
        let entry = |client_order_id: ClientOrderId, recent: bool| {
            let record = ids.records[&client_order_id];
            ClientIdSnapshot {
                client_order_id,
                order: record.order,
                request: record.request,
                recent,
            }
        };
        let mut entries: Vec<ClientIdSnapshot> =
            ids.recent.iter().map(|id| entry(*id, true)).collect();
        let mut evicted: Vec<(OrderId, ClientOrderId)> = ids
            .evicted_open
            .iter()
            .map(|(order, id)| (*order, *id))
            .collect();
        evicted.sort_unstable();
        entries.extend(evicted.into_iter().map(|(_, id)| entry(id, false)));
        entries
    }

    fn market_snapshot(&self, market: usize) -> MarketSnapshot {
        let state = &self.markets[market];
        let mut orders = Vec::new();
        for side in [BookSide::Bid, BookSide::Ask] {
            for price in state.book.prices(side) {
                let mut slot = state.book.level(price).head;
                while slot != NIL {
                    let order = self.orders.get(slot);
                    orders.push(OrderSnapshot {
                        order: order.id,
                        user: order.user,
                        side: order.side,
                        outcome: order.outcome,
                        order_type: order.order_type,
                        time_in_force: order.time_in_force,
                        self_trade_prevention: order.self_trade_prevention,
                        post_only: order.post_only,
                        reduce_only: order.reduce_only,
                        limit_units: order.limit_units,
                        qty: order.qty,
                        filled_qty: order.filled_qty(),
                        expires_at_micros: order.expires_at_micros,
                        locked_micros: order.locked_micros,
                    });
                    slot = order.level_next;
                }
            }
        }
        MarketSnapshot {
            params: state.params,
            state: state.state,
            resolution: state.resolution,
            book_seq: state.book_seq,
            escrow_micros: self.ledger.escrow_micros[market],
            orders,
        }
    }

    /// A stable 128-bit hash of the whole state (the same on every platform).
    pub fn state_hash(&self) -> u128 {
        let bytes = postcard::to_allocvec(&self.snapshot()).expect("snapshots always encode");
        xxhash_rust::xxh3::xxh3_128(&bytes)
    }

    /// Rebuilds an engine from a snapshot, validating everything.
    pub fn restore(snapshot: &Snapshot) -> Result<Engine, RestoreError> {
        if snapshot.format_version != FORMAT_VERSION {
            return Err(invalid("unsupported format version"));
        }
        if !snapshot.config.is_valid() {
            return Err(invalid("config out of range"));
        }
        if snapshot.users.len() > snapshot.config.users_max as usize
            || snapshot.markets.len() > snapshot.config.markets_max as usize
        {
            return Err(invalid("too many users or markets"));
        }
        let mut engine = Engine::new(snapshot.config);
        engine.now_micros = snapshot.now_micros;
        engine.next_order_id = snapshot.next_order_id;
        engine.next_trade_id = snapshot.next_trade_id;
        engine.ledger.fee_micros = snapshot.fee_micros;
        engine.ledger.external_micros = snapshot.external_micros;
        for user in &snapshot.users {
            engine.users.push(UserOrders::default());
            engine.ledger.add_cash_account(user.cash);
        }
        for market in &snapshot.markets {
            engine.restore_market(market)?;
        }
        for (index, market) in snapshot.markets.iter().enumerate() {
            for order in &market.orders {
                engine.restore_order(MarketId(index as u32), order)?;
            }
        }
        engine.restore_positions(&snapshot.positions)?;
        for (index, user) in snapshot.users.iter().enumerate() {
            engine.restore_client_ids(UserId(index as u32), &user.client_ids)?;
        }
        engine
            .check_invariants()
            .map_err(|violation| RestoreError(violation.to_string()))?;
        Ok(engine)
    }

    fn restore_market(&mut self, market: &MarketSnapshot) -> Result<(), RestoreError> {
        let id = MarketId(self.markets.len() as u32);
        let params = &market.params;
        let params_valid = crate::units::TICK_UNITS_ALLOWED.contains(&params.tick_units)
            && (1..=params.qty_max).contains(&params.qty_min)
            && params.qty_max <= ORDER_QTY_LIMIT;
        if !params_valid || self.slugs.contains_key(&params.slug) {
            return Err(invalid("market params"));
        }
        let resolved = market.state == MarketState::Resolved;
        if resolved != market.resolution.is_some() {
            return Err(invalid("resolution does not match the market state"));
        }
        if market.escrow_micros < 0 {
            return Err(invalid("negative escrow"));
        }
        // A live engine pays every share out when it resolves a market, at a payout in 0..=1.
        let payout_valid = market
            .resolution
            .is_none_or(|r| r.yes_payout_units() as u32 <= crate::units::PRICE_SCALE);
        if !payout_valid || (resolved && market.escrow_micros != 0) {
            return Err(invalid("resolved market"));
        }
        self.markets.push(Market {
            params: *params,
            state: market.state,
            resolution: market.resolution,
            book: Book::new(params.tick_units),
            book_seq: market.book_seq,
        });
        self.slugs.insert(params.slug, id);
        self.ledger.escrow_micros.push(market.escrow_micros);
        self.ledger.holders.push(Vec::new());
        let closable = matches!(market.state, MarketState::Open | MarketState::Halted);
        if let Some(close_at) = params.close_ts_micros.filter(|_| closable) {
            self.closes.insert((close_at, id));
        }
        Ok(())
    }

    fn restore_order(
        &mut self,
        market: MarketId,
        order: &OrderSnapshot,
    ) -> Result<(), RestoreError> {
        let tick = self.markets[market.0 as usize].params.tick_units;
        // Closing a market cancels its orders: only an open or halted market has any.
        let trading = matches!(
            self.markets[market.0 as usize].state,
            MarketState::Open | MarketState::Halted
        );
        let valid = trading
            && (order.user.0 as usize) < self.users.len()
            && check_price(order.limit_units, tick).is_ok()
            && order.filled_qty < order.qty
            && order.qty <= ORDER_QTY_LIMIT
            && order.order_type == OrderType::Limit
            && matches!(order.time_in_force, TimeInForce::Gtc | TimeInForce::Gtd)
            && order.expires_at_micros.is_some() == (order.time_in_force == TimeInForce::Gtd)
            && order.order.0 < self.next_order_id
            && self.orders.slot_of(order.order).is_none()
            && (order.side == Side::Buy || order.locked_micros == 0);
        if !valid {
            return Err(invalid("resting order"));
        }
        // Queue order must follow the book: bids from the best price down, asks up.
        let side = BookSide::of(order.side, order.outcome);
        let price = crate::orders::book_price_units(order.outcome, order.limit_units);
        let book = &self.markets[market.0 as usize].book;
        let worse_than_best_opposite = book.best(side.opposite()).is_some_and(|best| match side {
            BookSide::Bid => price >= best,
            BookSide::Ask => price <= best,
        });
        if worse_than_best_opposite {
            return Err(invalid("crossed book"));
        }
        let slot = self.orders.insert(Order {
            id: order.order,
            user: order.user,
            market,
            side: order.side,
            outcome: order.outcome,
            order_type: order.order_type,
            time_in_force: order.time_in_force,
            self_trade_prevention: order.self_trade_prevention,
            post_only: order.post_only,
            reduce_only: order.reduce_only,
            limit_units: order.limit_units,
            rests_on: side,
            rests_at_units: price,
            rests_at_ticks: book.ticks(price),
            qty: order.qty,
            remaining_qty: order.qty - order.filled_qty,
            expires_at_micros: order.expires_at_micros,
            locked_micros: order.locked_micros,
            resting: false,
            level_prev: NIL,
            level_next: NIL,
            user_prev: NIL,
            user_next: NIL,
        });
        self.markets[market.0 as usize]
            .book
            .push_back(&mut self.orders, slot);
        if let Some(expires_at) = order.expires_at_micros {
            self.expiries.insert((expires_at, order.order));
        }
        Ok(())
    }

    fn restore_positions(
        &mut self,
        positions: &[(MarketId, UserId, Position)],
    ) -> Result<(), RestoreError> {
        // User lists are in ascending id order, as a live engine keeps them.
        for (id, slot) in self.orders.ids_sorted() {
            let _ = id;
            self.link_user_for_restore(slot);
        }
        for &(market, user, position) in positions {
            let known =
                (market.0 as usize) < self.markets.len() && (user.0 as usize) < self.users.len();
            if !known || position.is_empty() || self.ledger.positions.contains_key(&(market, user))
            {
                return Err(invalid("position"));
            }
            self.ledger
                .positions
                .insert((market, user), PositionAccount::new(position));
            self.ledger.holders[market.0 as usize].push(user);
        }
        Ok(())
    }

    fn restore_client_ids(
        &mut self,
        user: UserId,
        entries: &[ClientIdSnapshot],
    ) -> Result<(), RestoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut ids = ClientIds::default();
        for entry in entries {
            let record = ClientRecord {
                order: entry.order,
                request: entry.request,
            };
            if entry.request.user != user
                || ids.records.insert(entry.client_order_id, record).is_some()
            {
                return Err(invalid("client order id"));
            }
            if entry.recent {
                ids.recent.push_back(entry.client_order_id);
            } else if self.orders.slot_of(entry.order).is_some() {
                ids.evicted_open.insert(entry.order, entry.client_order_id);
            } else {
                return Err(invalid("forgotten client order id of a finished order"));
            }
        }
        if ids.recent.len() > CLIENT_ORDER_IDS_KEPT {
            return Err(invalid("too many client order ids"));
        }
        self.users[user.0 as usize].client_ids = Some(Box::new(ids));
        Ok(())
    }
}
