//! The order arena: every open order lives in one slot of a `Vec`, linked into its price
//! level's FIFO queue and its user's list by `u32` slot indexes (intrusive lists, so resting
//! an order allocates nothing once the arena has grown). A new order is open once it rests:
//! while it takes, matching holds it, and one that ends in the command that placed it never
//! gets a slot.
//!
//! Owns slot allocation and the id -> slot index. It must never decide anything about
//! matching or money: callers link and unlink slots and keep the ledger in step.

use alloc::collections::{BTreeMap, VecDeque};

use crate::book::Book;
use crate::types::{
    BookSide, MarketId, OrderId, OrderType, Outcome, SelfTradePrevention, Side, TimeInForce, UserId,
};

/// The end of an intrusive list.
pub(crate) const NIL: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub(crate) struct Order {
    pub id: OrderId,
    pub user: UserId,
    pub market: MarketId,
    pub side: Side,
    pub outcome: Outcome,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub self_trade_prevention: SelfTradePrevention,
    pub post_only: bool,
    pub reduce_only: bool,
    /// Limit in the order's own outcome (`set_limit` changes it).
    pub limit_units: u16,
    /// Where the order rests or would rest: `BookSide::of(side, outcome)`, the limit as a
    /// YES price, and that price in ticks (its level in the book). Kept beside what they
    /// derive from because matching asks for them on every fill (the checker proves them in
    /// step).
    pub rests_on: BookSide,
    pub rests_at_units: u16,
    pub rests_at_ticks: u16,
    /// The total quantity (shrinks on amend-down and self-trade decrements).
    pub qty: u64,
    /// What is left to fill: `qty` minus what has filled. Stored rather than the filled
    /// quantity because matching reads it on every step and fill.
    pub remaining_qty: u64,
    pub expires_at_micros: Option<u64>,
    /// Cash this order holds in its user's `locked` balance (BUY orders only).
    pub locked_micros: i64,
    /// Whether the order sits in a book level (false while it is taking).
    pub resting: bool,
    pub level_prev: u32,
    pub level_next: u32,
    pub user_prev: u32,
    pub user_next: u32,
}

impl Order {
    pub fn filled_qty(&self) -> u64 {
        assert!(self.remaining_qty <= self.qty);
        self.qty - self.remaining_qty
    }

    /// Fills `qty` of what is left.
    pub fn fill(&mut self, qty: u64) {
        assert!(qty <= self.remaining_qty);
        self.remaining_qty -= qty;
    }

    /// Shrinks the order by `qty` of what is left, without a fill.
    pub fn decrement(&mut self, qty: u64) {
        assert!(qty <= self.remaining_qty);
        self.qty -= qty;
        self.remaining_qty -= qty;
    }

    /// Sets a new total quantity, what has filled staying filled.
    pub fn resize(&mut self, qty: u64) {
        let filled_qty = self.filled_qty();
        assert!(qty > filled_qty);
        self.qty = qty;
        self.remaining_qty = qty - filled_qty;
    }

    pub fn book_side(&self) -> BookSide {
        self.rests_on
    }

    /// The order's limit as a YES price, where it rests in the book.
    pub fn book_price_units(&self) -> u16 {
        self.rests_at_units
    }

    /// A new limit, with the book that gives its level.
    pub fn set_limit(&mut self, limit_units: u16, book: &Book) {
        self.limit_units = limit_units;
        self.rests_at_units = book_price_units(self.outcome, limit_units);
        self.rests_at_ticks = book.ticks(self.rests_at_units);
    }
}

/// An outcome price as a YES price.
pub(crate) fn book_price_units(outcome: Outcome, price_units: u16) -> u16 {
    match outcome {
        Outcome::Yes => price_units,
        Outcome::No => crate::units::complement_units(price_units),
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Arena {
    slots: Vec<Order>,
    free: Vec<u32>,
    by_id: IdIndex,
}

impl Arena {
    pub fn len(&self) -> usize {
        self.by_id.len as usize
    }

    #[inline(always)] // see `Book::unlink`
    pub fn insert(&mut self, order: Order) -> u32 {
        let id = order.id;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = order;
                slot
            }
            None => {
                self.slots.push(order);
                u32::try_from(self.slots.len() - 1).expect("arena bounded by OPEN_ORDERS_MAX")
            }
        };
        self.by_id.insert(id, slot);
        slot
    }

    pub fn remove(&mut self, slot: u32) {
        let order = &self.slots[slot as usize];
        assert!(!order.resting);
        let removed = self.by_id.remove(order.id);
        assert_eq!(removed, slot);
        self.free.push(slot);
    }

    #[inline(always)] // see `IdIndex::get`
    pub fn slot_of(&self, id: OrderId) -> Option<u32> {
        self.by_id.get(id)
    }

    pub fn get(&self, slot: u32) -> &Order {
        &self.slots[slot as usize]
    }

    pub fn get_mut(&mut self, slot: u32) -> &mut Order {
        &mut self.slots[slot as usize]
    }

    /// Every open order, in id order (for snapshots and checks; not for hot paths).
    pub fn ids_sorted(&self) -> Vec<(OrderId, u32)> {
        self.by_id.iter().collect()
    }
}

/// Order ids in one page of the id index.
const ID_PAGE_LEN: usize = 4_096;
/// Bits per word of a page's open-id bitmap.
const ID_WORD_BITS: usize = u64::BITS as usize;
/// Words in a page's open-id bitmap.
const ID_PAGE_WORDS: usize = ID_PAGE_LEN / ID_WORD_BITS;
const _: () = assert!(ID_PAGE_LEN.is_multiple_of(ID_WORD_BITS));

/// Order id -> arena slot without hashing. Ids are handed out in order, so they fall into
/// pages of consecutive ids; a page is allocated when its first order opens and freed when its
/// last one closes (the newest page only once a newer one opens: the next ids go there), and
/// empty pages at the front are dropped. A lookup is a few array reads, no hashing.
///
/// The pages near the newest id sit in a window (a deque indexed by page number, at most
/// `ID_WINDOW_PAGES` long); an open page that falls behind the window, because a long-lived
/// order keeps it open while the ids move on, moves to `far`, a map by page number. So memory
/// follows the open orders, not the span of their ids (a window entry costs ~530 bytes whether
/// or not its page is open), and pages can open in any order: a restore inserts orders in the
/// order a snapshot lists them (market by market, best price first), not by id.
///
/// Each page also keeps one bit per id saying whether it is open, beside the page list rather
/// than behind the slots' pointer: most lookups of a closed id (cancelling an order that has
/// already filled, nearly a quarter of the standard workload) are then answered from these
/// bits, 1/32 the size of the slots and so far more likely in cache, instead of missing on a
/// slot.
#[derive(Clone, Debug, Default)]
struct IdIndex {
    /// The page number of `pages[0]`; every page in `far` has a smaller number.
    first_page: u64,
    /// The window: pages `first_page..first_page + pages.len()`, at most `ID_WINDOW_PAGES`.
    pages: VecDeque<Option<IdPage>>,
    /// Open pages below the window, by page number.
    far: BTreeMap<u64, IdPage>,
    len: u64,
}

/// The most pages the window spans (1,024 pages: 4,194,304 ids, ~540 KB of entries).
const ID_WINDOW_PAGES: usize = 1_024;

#[derive(Clone, Debug)]
struct IdPage {
    slots: Box<[u32; ID_PAGE_LEN]>,
    /// Bit `offset` is set exactly when `slots[offset] != NIL`.
    open_bits: [u64; ID_PAGE_WORDS],
    open: u32,
}

impl IdPage {
    fn new() -> IdPage {
        IdPage {
            slots: Box::new([NIL; ID_PAGE_LEN]),
            open_bits: [0; ID_PAGE_WORDS],
            open: 0,
        }
    }

    fn is_open(&self, offset: usize) -> bool {
        self.open_bits[offset / ID_WORD_BITS] & (1 << (offset % ID_WORD_BITS)) != 0
    }

    /// Records the never-used id at `offset` as open in `slot`.
    fn occupy(&mut self, offset: usize, slot: u32) {
        assert_eq!(self.slots[offset], NIL, "an id is never reused");
        self.slots[offset] = slot;
        self.set_open(offset, true);
        self.open += 1;
    }

    /// Records the open id at `offset` as closed; returns the slot it had.
    fn vacate(&mut self, offset: usize) -> u32 {
        let slot = core::mem::replace(&mut self.slots[offset], NIL);
        assert_ne!(slot, NIL);
        self.set_open(offset, false);
        self.open -= 1;
        slot
    }

    /// Flips an id's bit, which must say the opposite of `open` before.
    fn set_open(&mut self, offset: usize, open: bool) {
        assert_ne!(self.is_open(offset), open);
        self.open_bits[offset / ID_WORD_BITS] ^= 1 << (offset % ID_WORD_BITS);
    }
}

impl IdIndex {
    fn locate(id: OrderId) -> (u64, usize) {
        (
            id.0 / ID_PAGE_LEN as u64,
            (id.0 % ID_PAGE_LEN as u64) as usize,
        )
    }

    fn page(&self, number: u64) -> Option<&IdPage> {
        match number.checked_sub(self.first_page) {
            Some(index) => self.pages.get(usize::try_from(index).ok()?)?.as_ref(),
            // Most ids below the window are long closed (a cancel of a filled order): with no
            // page kept there, that is all a lookup asks.
            None if self.far.is_empty() => None,
            None => self.far_page(number),
        }
    }

    #[cold]
    #[inline(never)]
    fn far_page(&self, number: u64) -> Option<&IdPage> {
        self.far.get(&number)
    }

    // Inlined into its callers, as it was before the far pages gave `page` another arm: a
    // cancel's lookup is on the hot path.
    #[inline(always)]
    fn get(&self, id: OrderId) -> Option<u32> {
        let (number, offset) = IdIndex::locate(id);
        let page = self.page(number)?;
        if !page.is_open(offset) {
            return None;
        }
        let slot = page.slots[offset];
        assert_ne!(slot, NIL);
        Some(slot)
    }

    // Inlined into placing: as a call it cost more in saved registers than its hot path does;
    // opening a page, once per 4,096 ids, stays a call.
    #[inline(always)]
    fn insert(&mut self, id: OrderId, slot: u32) {
        assert_ne!(slot, NIL);
        let (number, offset) = IdIndex::locate(id);
        let index = number.wrapping_sub(self.first_page) as usize;
        match self.pages.get_mut(index) {
            Some(Some(page)) => page.occupy(offset, slot),
            _ => self.open_page(number).occupy(offset, slot),
        }
        self.len += 1;
    }

    /// The page of ids `number`, allocated if it has no open id. A live engine opens pages in
    /// ascending order, at the window's end; a restore may open them in any order.
    #[cold]
    #[inline(never)]
    fn open_page(&mut self, number: u64) -> &mut IdPage {
        if number < self.first_page {
            return self.far.entry(number).or_insert_with(IdPage::new);
        }
        // The newest page is kept when it empties (see `remove`); a newer one replaces it.
        if let Some(last) = self.pages.len().checked_sub(1) {
            let newer = number > self.first_page + last as u64;
            if newer && self.pages[last].as_ref().is_some_and(|page| page.open == 0) {
                self.close_page(last);
            }
        }
        if self.pages.is_empty() {
            self.first_page = number;
        }
        let span = number - self.first_page + 1;
        if span > ID_WINDOW_PAGES as u64 {
            self.slide_window(span - ID_WINDOW_PAGES as u64);
        }
        let index = usize::try_from(number - self.first_page).expect("inside the window");
        if index >= self.pages.len() {
            self.pages.resize(index + 1, None);
        }
        assert!(self.pages.len() <= ID_WINDOW_PAGES);
        self.pages[index].get_or_insert_with(IdPage::new)
    }

    /// Moves the window's start up by `by` pages: the open pages it passes go to `far`.
    fn slide_window(&mut self, by: u64) {
        let new_first_page = self.first_page + by;
        while self.first_page < new_first_page {
            match self.pages.pop_front() {
                Some(Some(page)) => {
                    assert!(page.open > 0, "only the newest page is kept empty");
                    self.far.insert(self.first_page, page);
                }
                Some(None) => {}
                None => break,
            }
            self.first_page += 1;
        }
        self.first_page = new_first_page;
        while matches!(self.pages.front(), Some(None)) {
            self.pages.pop_front();
            self.first_page += 1;
        }
    }

    /// Removes an open id and returns its slot.
    fn remove(&mut self, id: OrderId) -> u32 {
        let (number, offset) = IdIndex::locate(id);
        let Some(index) = number.checked_sub(self.first_page) else {
            return self.remove_far(number, offset);
        };
        let index = index as usize;
        let page = self.pages[index].as_mut().expect("an open order's page");
        let slot = page.vacate(offset);
        self.len -= 1;
        if page.open == 0 {
            self.page_emptied(index);
        }
        slot
    }

    /// Frees the page at `index`, which has just emptied, unless it is the newest: the next ids
    /// go there, and orders that end in the command that placed them (market orders against a
    /// deep book) would otherwise allocate and zero a page of 16 KiB each.
    #[cold]
    #[inline(never)]
    fn page_emptied(&mut self, index: usize) {
        if index + 1 < self.pages.len() {
            self.close_page(index);
        }
    }

    /// Frees the emptied page at `index`, and the empty pages at the front.
    #[cold]
    #[inline(never)]
    fn close_page(&mut self, index: usize) {
        self.pages[index] = None;
        while matches!(self.pages.front(), Some(None)) {
            self.pages.pop_front();
            self.first_page += 1;
        }
    }

    /// Removes an open id from a page below the window, and the page once it empties.
    #[cold]
    #[inline(never)]
    fn remove_far(&mut self, number: u64, offset: usize) -> u32 {
        let page = self.far.get_mut(&number).expect("an open order's page");
        let slot = page.vacate(offset);
        self.len -= 1;
        if page.open == 0 {
            self.far.remove(&number);
        }
        slot
    }

    /// Every (id, slot), in id order.
    fn iter(&self) -> impl Iterator<Item = (OrderId, u32)> + '_ {
        let far = self.far.iter().map(|(&number, page)| (number, page));
        let window = self
            .pages
            .iter()
            .enumerate()
            .filter_map(|(index, page)| Some((self.first_page + index as u64, page.as_ref()?)));
        far.chain(window).flat_map(|(number, page)| {
            let first_id = number * ID_PAGE_LEN as u64;
            page.slots
                .iter()
                .enumerate()
                .filter(|(_, slot)| **slot != NIL)
                .map(move |(offset, slot)| (OrderId(first_id + offset as u64), *slot))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_index_finds_open_ids_and_frees_closed_pages() {
        let mut index = IdIndex::default();
        let far = ID_PAGE_LEN as u64 * 3 + 5;
        for (id, slot) in [(1, 10), (2, 11), (far, 12)] {
            index.insert(OrderId(id), slot);
        }
        assert_eq!(index.get(OrderId(2)), Some(11));
        assert_eq!(index.get(OrderId(3)), None);
        assert_eq!(index.get(OrderId(far + ID_PAGE_LEN as u64)), None);
        assert_eq!(
            index.iter().collect::<Vec<_>>(),
            vec![(OrderId(1), 10), (OrderId(2), 11), (OrderId(far), 12)]
        );
        assert_eq!(index.remove(OrderId(1)), 10);
        // A closed id on a page that is still open is answered by the page's open bits.
        assert_eq!(index.get(OrderId(1)), None);
        assert_eq!(index.get(OrderId(2)), Some(11));
        assert_eq!(index.remove(OrderId(2)), 11);
        // The first pages are empty now: only the far page is left.
        assert_eq!((index.first_page, index.pages.len(), index.len), (3, 1, 1));
        assert_eq!(index.get(OrderId(far)), Some(12));
        assert_eq!(index.get(OrderId(1)), None);
        // The newest page stays when it empties, for the ids after it...
        assert_eq!(index.remove(OrderId(far)), 12);
        assert_eq!((index.first_page, index.pages.len(), index.len), (3, 1, 0));
        assert!(index.pages[0].is_some());
        index.insert(OrderId(far + 1), 13);
        assert_eq!(index.get(OrderId(far + 1)), Some(13));
        assert_eq!(index.remove(OrderId(far + 1)), 13);
        // ...and goes once a newer page opens.
        let farther = ID_PAGE_LEN as u64 * 5;
        index.insert(OrderId(farther), 14);
        assert_eq!((index.first_page, index.pages.len(), index.len), (5, 1, 1));
        assert_eq!(index.get(OrderId(far + 1)), None);
        assert_eq!(index.get(OrderId(farther)), Some(14));
    }

    /// Every open (id, slot) the index holds, checked against what it should hold.
    fn assert_holds(index: &IdIndex, expected: &[(u64, u32)]) {
        let mut sorted = expected.to_vec();
        sorted.sort_unstable();
        let held: Vec<(u64, u32)> = index.iter().map(|(id, slot)| (id.0, slot)).collect();
        assert_eq!(held, sorted);
        assert_eq!(index.len, expected.len() as u64);
        for &(id, slot) in expected {
            assert_eq!(index.get(OrderId(id)), Some(slot));
        }
    }

    #[test]
    fn the_id_index_takes_pages_in_any_order() {
        let page = ID_PAGE_LEN as u64;
        // As a snapshot lists them: market by market, best price first.
        let ids = [3 * page + 7, page + 1, 2 * page, 9, 4 * page - 1, page + 2];
        let mut index = IdIndex::default();
        let mut expected = Vec::new();
        for (slot, &id) in ids.iter().enumerate() {
            index.insert(OrderId(id), slot as u32);
            expected.push((id, slot as u32));
            assert_holds(&index, &expected);
        }
        assert_eq!(index.get(OrderId(8)), None);
        assert_eq!(index.get(OrderId(page)), None);
        // The pages below the first one opened are found, emptied and freed like the others.
        for &id in &[9, page + 1, 3 * page + 7] {
            let slot = index.remove(OrderId(id));
            expected.retain(|&(kept, held)| {
                assert!(kept != id || held == slot);
                kept != id
            });
            assert_holds(&index, &expected);
        }
        assert!(index.far.values().all(|page| page.open > 0));
        // And the ids that follow open as in a live engine.
        index.insert(OrderId(5 * page), 40);
        expected.push((5 * page, 40));
        assert_holds(&index, &expected);
    }

    #[test]
    fn pages_behind_the_window_move_to_the_far_map_and_memory_follows_the_open_pages() {
        let page = ID_PAGE_LEN as u64;
        let mut index = IdIndex::default();
        // A long-lived order on page 0 while ids move on by ten windows, one order per page
        // that closes again before the next opens.
        index.insert(OrderId(5), 1);
        for number in 1..=(10 * ID_WINDOW_PAGES as u64) {
            index.insert(OrderId(number * page), 2);
            assert!(index.pages.len() <= ID_WINDOW_PAGES);
            assert_eq!(index.remove(OrderId(number * page)), 2);
        }
        assert_eq!(index.far.len(), 1);
        assert!(index.pages.len() <= 1, "only the newest page is kept");
        assert_holds(&index, &[(5, 1)]);
        // A page still open when the window passes it moves to `far` and is still found.
        let newest = 10 * ID_WINDOW_PAGES as u64 * page;
        index.insert(OrderId(newest + 3), 3);
        index.insert(OrderId(newest + 2 * ID_WINDOW_PAGES as u64 * page), 4);
        assert_eq!(index.far.len(), 2);
        assert_holds(
            &index,
            &[
                (5, 1),
                (newest + 3, 3),
                (newest + 2 * ID_WINDOW_PAGES as u64 * page, 4),
            ],
        );
        assert_eq!(index.remove(OrderId(5)), 1);
        assert_eq!(index.remove(OrderId(newest + 3)), 3);
        assert!(index.far.is_empty());
    }
}
