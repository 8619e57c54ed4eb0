//! The engine: state, the `apply` entry point, the clock and the end-of-command flush.
//!
//! `apply` advances the clock (expiries, market closes), runs one command, and appends the
//! net book, position and balance changes. It owns the order of events (see `event`). It must
//! never read a clock, allocate per command in steady state, or iterate a hash map where the
//! order could reach an event.

use alloc::collections::{BTreeSet, VecDeque};

use rustc_hash::FxHashMap;

use crate::book::Book;
use crate::command::{Command, MarketParams, Op, PlaceOrder};
use crate::event::Event;
use crate::ledger::{Ledger, Position, PositionTouch};
use crate::orders::{Arena, NIL};
use crate::reject::Reject;
use crate::types::{BookSide, ClientOrderId, MarketId, MarketState, OrderId, Slug, UserId};
use crate::units::{
    MARKETS_MAX, OPEN_ORDERS_PER_USER_DEFAULT, OPEN_ORDERS_PER_USER_LIMIT, USERS_MAX,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    /// The most open orders one user may have at once.
    pub open_orders_per_user_max: u32,
    /// Capacity an operator plans for: `CreateUser` and `CreateMarket` are rejected beyond
    /// these (never above `USERS_MAX` and `MARKETS_MAX`).
    pub users_max: u32,
    pub markets_max: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            open_orders_per_user_max: OPEN_ORDERS_PER_USER_DEFAULT,
            users_max: USERS_MAX,
            markets_max: MARKETS_MAX,
        }
    }
}

impl Config {
    pub fn is_valid(&self) -> bool {
        (1..=OPEN_ORDERS_PER_USER_LIMIT).contains(&self.open_orders_per_user_max)
            && (1..=USERS_MAX).contains(&self.users_max)
            && (1..=MARKETS_MAX).contains(&self.markets_max)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Market {
    pub params: MarketParams,
    pub state: MarketState,
    pub resolution: Option<crate::types::Resolution>,
    pub book: Book,
    /// Rises by one per command that changes this market's book.
    pub book_seq: u64,
}

/// A remembered client order id: what was placed under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientRecord {
    pub order: OrderId,
    pub request: PlaceOrder,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ClientIds {
    pub records: FxHashMap<ClientOrderId, ClientRecord>,
    /// Ids in placement order; the oldest is forgotten past `CLIENT_ORDER_IDS_KEPT` unless its
    /// order is still open.
    pub recent: VecDeque<ClientOrderId>,
    /// Ids pushed out of `recent` whose orders are still open, by order.
    pub evicted_open: FxHashMap<OrderId, ClientOrderId>,
}

#[derive(Clone, Debug)]
pub(crate) struct UserOrders {
    pub open_count: u32,
    pub head: u32,
    pub tail: u32,
    pub client_ids: Option<Box<ClientIds>>,
}

impl Default for UserOrders {
    fn default() -> UserOrders {
        UserOrders {
            open_count: 0,
            head: NIL,
            tail: NIL,
            client_ids: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) config: Config,
    pub(crate) now_micros: u64,
    pub(crate) next_order_id: u64,
    pub(crate) next_trade_id: u64,
    pub(crate) markets: Vec<Market>,
    pub(crate) slugs: FxHashMap<Slug, MarketId>,
    pub(crate) users: Vec<UserOrders>,
    pub(crate) ledger: Ledger,
    pub(crate) orders: Arena,
    pub(crate) expiries: BTreeSet<(u64, OrderId)>,
    pub(crate) closes: BTreeSet<(u64, MarketId)>,
    /// Levels (in ticks) changed by the current command with their size before the first
    /// change.
    pub(crate) touched_levels: Vec<(MarketId, BookSide, u16, u64)>,
    /// Reused buffer for the orders (id, slot) collected by cancel-all, closes and resolution.
    pub(crate) scratch_slots: Vec<(OrderId, u32)>,
}

impl Default for Engine {
    fn default() -> Engine {
        Engine::new(Config::default())
    }
}

impl Engine {
    pub fn new(config: Config) -> Engine {
        assert!(config.is_valid());
        Engine {
            config,
            now_micros: 0,
            next_order_id: 1,
            next_trade_id: 1,
            markets: Vec::new(),
            slugs: FxHashMap::default(),
            users: Vec::new(),
            ledger: Ledger::default(),
            orders: Arena::default(),
            expiries: BTreeSet::new(),
            closes: BTreeSet::new(),
            touched_levels: Vec::new(),
            scratch_slots: Vec::new(),
        }
    }

    pub fn config(&self) -> Config {
        self.config
    }

    /// Applies one command. On `Err` the command changed nothing, but `out` may still hold the
    /// events of the clock advancing to `cmd.ts_micros` (expiries, closes), which did happen.
    pub fn apply(&mut self, cmd: &Command, out: &mut Vec<Event>) -> Result<(), Reject> {
        if cmd.ts_micros < self.now_micros {
            return Err(Reject::TimestampBackwards);
        }
        self.now_micros = cmd.ts_micros;
        self.advance_clock(out);
        let result = self.execute(&cmd.op, out);
        self.flush(out);
        result
    }

    fn execute(&mut self, op: &Op, out: &mut Vec<Event>) -> Result<(), Reject> {
        match op {
            Op::Tick => Ok(()),
            Op::CreateUser => self.create_user(out),
            Op::CreateMarket(params) => self.create_market(params, out),
            Op::HaltMarket { market } => self.halt_market(*market, out),
            Op::ResumeMarket { market } => self.resume_market(*market, out),
            Op::CloseMarket { market } => self.close_market_command(*market, out),
            Op::ResolveMarket { market, resolution } => {
                self.resolve_market(*market, *resolution, out)
            }
            Op::Deposit {
                user,
                amount_micros,
            } => self.deposit(*user, *amount_micros, out),
            Op::Withdraw {
                user,
                amount_micros,
            } => self.withdraw(*user, *amount_micros, out),
            Op::Split { user, market, qty } => self.split(*user, *market, *qty, out),
            Op::Merge { user, market, qty } => self.merge(*user, *market, *qty, out),
            Op::TransferShares {
                from,
                to,
                market,
                outcome,
                qty,
            } => self.transfer_shares(*from, *to, *market, *outcome, *qty, out),
            Op::Place(request) => self.place(request, out),
            Op::Cancel { user, order } => self.cancel(*user, *order, out),
            Op::CancelAll { user, market } => self.cancel_all(*user, *market, out),
            Op::Amend {
                user,
                order,
                qty,
                price_units,
            } => self.amend(*user, *order, *qty, *price_units, out),
            Op::Batch {
                user,
                cancels,
                places,
            } => self.batch(*user, cancels, places, out),
        }
    }

    /// Expires due GTD orders, then closes markets whose close time has come.
    fn advance_clock(&mut self, out: &mut Vec<Event>) {
        while let Some(&(expires_at, order)) = self.expiries.first() {
            if expires_at > self.now_micros {
                break;
            }
            let slot = self
                .orders
                .slot_of(order)
                .expect("expiry index holds open orders");
            self.end_resting(slot, crate::types::OrderEnd::Expired, None, out);
        }
        while let Some(&(close_at, market)) = self.closes.first() {
            if close_at > self.now_micros {
                break;
            }
            self.close_market(market, crate::types::CancelReason::MarketClosed, out);
        }
    }

    // Inlined into its callers on the fill path: as a call it saved and restored six
    // registers around a dozen instructions, because of the list's (cold) growth.
    #[inline(always)]
    pub(crate) fn touch_level(&mut self, market: MarketId, side: BookSide, ticks: u16) {
        let key = (market, side, ticks);
        if self.touched_levels.last().map(|t| (t.0, t.1, t.2)) == Some(key) {
            return; // the size before the first change is already recorded
        }
        let qty = self.markets[market.0 as usize].book.side_qty(side, ticks);
        self.touched_levels.push((market, side, ticks, qty));
    }

    /// Appends the net level, position and balance changes of this command, in the order the
    /// `event` module documents, and clears the touch lists.
    fn flush(&mut self, out: &mut Vec<Event>) {
        self.flush_levels(out);
        // The ledger records each position once per command, with its value before the first
        // change and now; only a position settled at resolution and opened again in the same
        // command has two entries.
        let ledger = &mut self.ledger;
        if ledger.touched_twice {
            flush_positions_merging(&ledger.touched_positions, out);
        } else {
            for_each_by_key(
                &ledger.touched_positions,
                |entry| position_sort_key(entry.key),
                |touch| push_position_change(out, touch.key, touch.before, touch.now),
            );
        }
        ledger.touched_positions.clear();
        // Cash accounts are never forgotten, so their stamps alone keep the list unique; the
        // flush reads their value now by index, no lookup.
        let cash = &ledger.cash;
        for_each_by_key(
            &ledger.touched_cash,
            |entry| u64::from(entry.0 .0),
            |&(user, before)| {
                let now = cash[user.0 as usize].value;
                if now != before {
                    out.push(Event::Balance {
                        user,
                        available_micros: now.available_micros,
                        locked_micros: now.locked_micros,
                    });
                }
            },
        );
        ledger.touched_cash.clear();
        ledger.end_command();
    }

    fn flush_levels(&mut self, out: &mut Vec<Event>) {
        let touched = &mut self.touched_levels;
        sort_keep_first(touched, |entry| (entry.0, entry.1, entry.2));
        let mut seq_market = None;
        // Ticks sort as prices do.
        for &(market, side, ticks, before) in touched.iter() {
            let state = &mut self.markets[market.0 as usize];
            let qty = state.book.side_qty(side, ticks);
            if qty == before {
                continue;
            }
            if seq_market != Some(market) {
                state.book_seq += 1;
                seq_market = Some(market);
            }
            out.push(Event::BookLevel {
                market,
                book_seq: state.book_seq,
                side,
                price_units: state.book.units(ticks),
                qty,
            });
        }
        touched.clear();
    }
}

/// Sorts by key, keeping entries of equal key in push order, and drops all but the first
/// entry of each key.
fn sort_keep_first<T: Copy, K: Ord>(entries: &mut Vec<T>, key: impl Fn(&T) -> K) {
    if entries.len() < 2 {
        return;
    }
    sort_stable_by_key(entries, &key);
    entries.dedup_by(|later, earlier| key(later) == key(earlier));
}

/// Calls `f` on each entry in key order, entries of equal key in push order; `key` must be
/// below 2^56. The commonest lists are short: one or two entries are read in order where they
/// are, and up to 16 through an insertion sort of `key << 8 | index` integers rather than of
/// the entries (a position's is 72 bytes); longer ones through `sorted_indexes`.
#[inline(always)]
fn for_each_by_key<T>(entries: &[T], key: impl Fn(&T) -> u64, mut f: impl FnMut(&T)) {
    const PACKED_MAX: usize = 16;
    match entries {
        [] => {}
        [only] => f(only),
        [first, second] => {
            if key(first) > key(second) {
                f(second);
                f(first);
            } else {
                f(first);
                f(second);
            }
        }
        _ if entries.len() <= PACKED_MAX => {
            let mut packed = [0u64; PACKED_MAX];
            for (index, entry) in entries.iter().enumerate() {
                debug_assert!(
                    key(entry) < 1 << 56,
                    "a key must leave 8 bits for the index"
                );
                let next = key(entry) << 8 | index as u64;
                let mut at = index;
                while at > 0 && packed[at - 1] > next {
                    packed[at] = packed[at - 1];
                    at -= 1;
                }
                packed[at] = next;
            }
            for next in &packed[..entries.len()] {
                f(&entries[(next & 0xff) as usize]);
            }
        }
        _ => for_each_in_sorted_order(entries, key, f),
    }
}

// Out of line: inlined into every flush, it made the common short lists dearer (5.8
// instructions per standard operation).
#[cold]
#[inline(never)]
fn for_each_in_sorted_order<T>(entries: &[T], key: impl Fn(&T) -> u64, mut f: impl FnMut(&T)) {
    for (_, index) in sorted_indexes(entries, key) {
        f(&entries[index]);
    }
}

/// Each entry's key and index, sorted: key order, equal keys in push order. For the long
/// lists of a market closing or resolving, where moving the entries themselves (a position's
/// is 72 bytes) cost more than sorting these.
fn sorted_indexes<T>(entries: &[T], key: impl Fn(&T) -> u64) -> Vec<(u64, usize)> {
    let mut order: Vec<(u64, usize)> = entries
        .iter()
        .enumerate()
        .map(|(index, entry)| (key(entry), index))
        .collect();
    // Stable, by the key alone: an unstable sort of the pairs (comparing the index too) took
    // 30 M more instructions on a resolution's 100,000.
    order.sort_by_key(|&(key, _)| key);
    order
}

/// The position changes of a command that settled positions (a resolution, every holder's):
/// an account settled and opened again in it has two entries, written as one change from the
/// first's value before to the last's now.
#[cold]
#[inline(never)]
fn flush_positions_merging(touched: &[PositionTouch], out: &mut Vec<Event>) {
    let order = sorted_indexes(touched, |touch| position_sort_key(touch.key));
    for group in order.chunk_by(|a, b| a.0 == b.0) {
        let first = &touched[group[0].1];
        let last = &touched[group[group.len() - 1].1];
        push_position_change(out, first.key, first.before, last.now);
    }
}

#[inline(always)]
fn push_position_change(
    out: &mut Vec<Event>,
    (market, user): (MarketId, UserId),
    before: Position,
    now: Position,
) {
    if now != before {
        out.push(Event::Position {
            user,
            market,
            position: now,
        });
    }
}

/// A position's key as one integer below 2^56 (a market id is 32 bits, a user id under
/// `USERS_MAX`), ordered as the key is.
fn position_sort_key(key: (MarketId, UserId)) -> u64 {
    const _: () = assert!(USERS_MAX <= 1 << 24);
    u64::from(key.0 .0) << 24 | u64::from(key.1 .0)
}

/// A stable sort. A command's lists are a handful of entries, where an insertion sort takes
/// the fewest instructions; long ones (a market closing) go to the library's sort.
fn sort_stable_by_key<T: Copy, K: Ord>(entries: &mut [T], key: impl Fn(&T) -> K) {
    const INSERTION_MAX: usize = 16;
    if entries.len() > INSERTION_MAX {
        entries.sort_by_key(|entry| key(entry));
        return;
    }
    // Two entries, the commonest list longer than one, need one comparison, not the loop.
    if let [first, second] = entries {
        if key(first) > key(second) {
            core::mem::swap(first, second);
        }
        return;
    }
    for next in 1..entries.len() {
        let entry = entries[next];
        let mut at = next;
        while at > 0 && key(&entries[at - 1]) > key(&entry) {
            entries[at] = entries[at - 1];
            at -= 1;
        }
        entries[at] = entry;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Outcome;

    /// One user and one market; the flush of their creation already done.
    fn user_and_market() -> Engine {
        let mut engine = Engine::default();
        let params = MarketParams::for_tests("flush");
        let mut out = Vec::new();
        for (ts_micros, op) in [(1, Op::CreateUser), (2, Op::CreateMarket(params))] {
            engine.apply(&Command { ts_micros, op }, &mut out).unwrap();
        }
        engine
    }

    fn positions(out: &[Event]) -> Vec<Position> {
        out.iter()
            .filter_map(|event| match event {
                Event::Position { position, .. } => Some(*position),
                _ => None,
            })
            .collect()
    }

    fn yes_free(qty: u64) -> Position {
        Position {
            yes_free: qty,
            ..Position::default()
        }
    }

    #[test]
    fn the_flush_writes_each_changed_position_once_with_its_last_value() {
        let mut engine = user_and_market();
        let (market, user) = (MarketId(0), UserId(0));
        let mut out = Vec::new();
        engine.ledger.add_free(market, user, Outcome::Yes, 5);
        engine.ledger.add_free(market, user, Outcome::Yes, 2);
        engine.flush(&mut out);
        assert_eq!(positions(&out), [yes_free(7)]);

        // Changed and changed back: nothing to write.
        out.clear();
        engine.ledger.add_free(market, user, Outcome::Yes, 1);
        engine.ledger.remove_free(market, user, Outcome::Yes, 1);
        engine.flush(&mut out);
        assert_eq!(positions(&out), []);

        // Settled and opened again in one command: one event, the net change.
        out.clear();
        assert_eq!(engine.ledger.settle(market, user), yes_free(7));
        engine.ledger.add_free(market, user, Outcome::Yes, 3);
        engine.flush(&mut out);
        assert_eq!(positions(&out), [yes_free(3)]);
    }

    #[test]
    fn a_resolution_flush_writes_every_holder_once_in_user_order() {
        // More holders than the short lists' sorts take, touched out of user order.
        const HOLDERS: u32 = 40;
        let mut engine = user_and_market();
        let mut out = Vec::new();
        for ts_micros in 3..HOLDERS as u64 + 2 {
            let create = Command {
                ts_micros,
                op: Op::CreateUser,
            };
            engine.apply(&create, &mut out).unwrap();
        }
        let market = MarketId(0);
        let scrambled = |n: u32| UserId(n * 7 % HOLDERS);
        let by_user = |out: &[Event]| -> Vec<(u32, Position)> {
            out.iter()
                .filter_map(|event| match event {
                    Event::Position { user, position, .. } => Some((user.0, *position)),
                    _ => None,
                })
                .collect()
        };
        let expected = |position: &dyn Fn(u32) -> Position| -> Vec<(u32, Position)> {
            (0..HOLDERS).map(|user| (user, position(user))).collect()
        };
        out.clear();
        for n in 0..HOLDERS {
            let user = scrambled(n);
            engine
                .ledger
                .add_free(market, user, Outcome::Yes, u64::from(user.0) + 1);
        }
        engine.flush(&mut out);
        assert_eq!(
            by_user(&out),
            expected(&|user| yes_free(u64::from(user) + 1))
        );

        // Every holder settled, one of them opened again in the same command.
        out.clear();
        for n in 0..HOLDERS {
            engine.ledger.settle(market, scrambled(n));
        }
        engine.ledger.add_free(market, UserId(5), Outcome::Yes, 3);
        engine.flush(&mut out);
        let net = |user| match user {
            5 => yes_free(3),
            _ => Position::default(),
        };
        assert_eq!(by_user(&out), expected(&net));
    }

    #[test]
    fn for_each_by_key_visits_in_key_order_equal_keys_in_push_order() {
        // Lengths through each path (one, two, packed, sorted indexes), keys with repeats
        // and near the 2^56 bound.
        let mut state = 7u64;
        for len in (0..40).flat_map(|len| [len; 20]) {
            let entries: Vec<(u64, usize)> = (0..len)
                .map(|index| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    let high = if state >> 63 == 1 { (1 << 56) - 4 } else { 0 };
                    (high + (state >> 33) % 3, index)
                })
                .collect();
            let mut expected = entries.clone();
            expected.sort_by_key(|entry| entry.0);
            let mut visited = Vec::new();
            for_each_by_key(&entries, |entry| entry.0, |entry| visited.push(*entry));
            assert_eq!(visited, expected, "{len} entries");
        }
    }
}
