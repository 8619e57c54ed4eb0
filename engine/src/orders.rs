//! The order arena: every open order lives in one slot of a `Vec`, linked into its price
//! level's FIFO queue and its user's list by `u32` slot indexes (intrusive lists, so resting
//! an order allocates nothing once the arena has grown). A new order is open once it rests:
//! while it takes, matching holds it, and one that ends in the command that placed it never
//! gets a slot.
//!
//! Owns slot allocation and the id -> slot index. It must never decide anything about
//! matching or money: callers link and unlink slots and keep the ledger in step.

use alloc::collections::VecDeque;

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
const _: () = assert!(ID_PAGE_LEN % ID_WORD_BITS == 0);

/// Order id -> arena slot without hashing. Ids are handed out in order, so they fall into
/// pages of consecutive ids; a page is allocated when its first order opens and freed when its
/// last one closes (the newest page only once a newer one opens: the next ids go there), and
/// empty pages at the front are dropped. Memory follows the open orders
/// (a long-lived order keeps only its own page); a lookup is a few array reads, no hashing.
///
/// Each page also keeps one bit per id saying whether it is open, beside the page list rather
/// than behind the slots' pointer: most lookups of a closed id (cancelling an order that has
/// already filled, nearly a quarter of the standard workload) are then answered from these
/// bits, 1/32 the size of the slots and so far more likely in cache, instead of missing on a
/// slot.
#[derive(Clone, Debug, Default)]
struct IdIndex {
    /// The page number of `pages[0]`.
    first_page: u64,
    pages: VecDeque<Option<IdPage>>,
    len: u64,
}

#[derive(Clone, Debug)]
struct IdPage {
    slots: Box<[u32; ID_PAGE_LEN]>,
    /// Bit `offset` is set exactly when `slots[offset] != NIL`.
    open_bits: [u64; ID_PAGE_WORDS],
    open: u32,
}

impl IdPage {
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
        let index = number.checked_sub(self.first_page)?;
        self.pages.get(usize::try_from(index).ok()?)?.as_ref()
    }

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
            _ => {
                let index = self.open_page(number);
                self.pages[index]
                    .as_mut()
                    .expect("an open page")
                    .occupy(offset, slot);
            }
        }
        self.len += 1;
    }

    /// Allocates the page of ids `number`, which holds no open id; returns its index in `pages`.
    #[cold]
    #[inline(never)]
    fn open_page(&mut self, number: u64) -> usize {
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
        assert!(number >= self.first_page, "ids are handed out in order");
        let index = (number - self.first_page) as usize;
        if index >= self.pages.len() {
            self.pages.resize(index + 1, None);
        }
        self.pages[index].get_or_insert_with(|| IdPage {
            slots: Box::new([NIL; ID_PAGE_LEN]),
            open_bits: [0; ID_PAGE_WORDS],
            open: 0,
        });
        index
    }

    /// Removes an open id and returns its slot.
    fn remove(&mut self, id: OrderId) -> u32 {
        let (number, offset) = IdIndex::locate(id);
        let index = (number - self.first_page) as usize;
        let page = self.pages[index].as_mut().expect("an open order's page");
        let slot = core::mem::replace(&mut page.slots[offset], NIL);
        assert_ne!(slot, NIL);
        page.set_open(offset, false);
        page.open -= 1;
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

    /// Every (id, slot), in id order.
    fn iter(&self) -> impl Iterator<Item = (OrderId, u32)> + '_ {
        self.pages
            .iter()
            .enumerate()
            .flat_map(move |(index, page)| {
                let first_id = (self.first_page + index as u64) * ID_PAGE_LEN as u64;
                page.iter().flat_map(move |page| {
                    page.slots
                        .iter()
                        .enumerate()
                        .filter(|(_, slot)| **slot != NIL)
                        .map(move |(offset, slot)| (OrderId(first_id + offset as u64), *slot))
                })
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
}
