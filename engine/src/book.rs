//! One market's order book on the YES price: a dense array of price levels (one per tick) and
//! an occupancy bitset per side that remembers its best index, so the best price is one read
//! and moving it scans only from the old best outward.
//!
//! A level's index is its price in ticks (`price_units / tick_units`). The matching hot path
//! speaks ticks: an order records its ticks once, when placed, so that resting, filling and
//! cancelling it never divide (nor assert the division exact) again.
//!
//! Owns level totals and FIFO queue links. It must never touch money: the matcher moves cash
//! and shares and calls in here only to link, unlink and resize orders.

use crate::orders::{Arena, NIL};
use crate::types::BookSide;
use crate::units::PRICE_SCALE;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Level {
    pub head: u32,
    pub tail: u32,
    pub qty: u64,
}

const EMPTY_LEVEL: Level = Level {
    head: NIL,
    tail: NIL,
    qty: 0,
};

/// Wide enough that the rounded-up reciprocal of every allowed tick divides every price
/// exactly (the products need 64 bits).
const INDEX_SHIFT: u32 = 20;

#[derive(Clone, Debug)]
pub(crate) struct Book {
    tick_units: u16,
    /// `ceil(2^INDEX_SHIFT / tick_units)`: `price * index_reciprocal >> INDEX_SHIFT` is
    /// `price / tick_units` for every price and allowed tick (a test checks them all).
    index_reciprocal: u64,
    /// Indexed by `price_units / tick_units`; a level holds bids or asks, never both, because
    /// the book is never crossed after a command.
    levels: Vec<Level>,
    bids: SideSet,
    asks: SideSet,
}

impl Book {
    pub fn new(tick_units: u16) -> Book {
        assert!(crate::units::TICK_UNITS_ALLOWED.contains(&tick_units));
        let count = (PRICE_SCALE / tick_units as u32) as usize;
        Book {
            tick_units,
            index_reciprocal: (1u64 << INDEX_SHIFT).div_ceil(tick_units as u64),
            levels: vec![EMPTY_LEVEL; count],
            bids: SideSet::new(BookSide::Bid, count),
            asks: SideSet::new(BookSide::Ask, count),
        }
    }

    /// A price on the tick as a level index.
    pub fn ticks(&self, price_units: u16) -> u16 {
        // A multiply and a shift instead of a division. The assertion also proves the quotient
        // exact (a wrong one could not multiply back).
        let ticks = (price_units as u64 * self.index_reciprocal) >> INDEX_SHIFT;
        assert!(price_units > 0 && ticks * self.tick_units as u64 == price_units as u64);
        ticks as u16
    }

    /// A level index as a price.
    pub fn units(&self, ticks: u16) -> u16 {
        ticks * self.tick_units
    }

    fn occupancy(&self, side: BookSide) -> &SideSet {
        match side {
            BookSide::Bid => &self.bids,
            BookSide::Ask => &self.asks,
        }
    }

    fn occupancy_mut(&mut self, side: BookSide) -> &mut SideSet {
        match side {
            BookSide::Bid => &mut self.bids,
            BookSide::Ask => &mut self.asks,
        }
    }

    pub fn best(&self, side: BookSide) -> Option<u16> {
        self.best_ticks(side).map(|ticks| self.units(ticks))
    }

    pub fn best_ticks(&self, side: BookSide) -> Option<u16> {
        self.occupancy(side).best.map(|index| index as u16)
    }

    /// The next occupied level after level `ticks`, moving away from the spread.
    pub fn next_worse(&self, side: BookSide, ticks: u16) -> Option<u16> {
        let next = self.occupancy(side).next_worse(ticks as usize);
        next.map(|index| index as u16)
    }

    pub fn level(&self, price_units: u16) -> &Level {
        self.level_at(self.ticks(price_units))
    }

    pub fn level_at(&self, ticks: u16) -> &Level {
        &self.levels[ticks as usize]
    }

    /// The size of one side at a level: a level's orders are all on one side, and within a
    /// command a price can change sides (a bid sweeps the asks at its limit, then rests there).
    pub fn side_qty(&self, side: BookSide, ticks: u16) -> u64 {
        let index = ticks as usize;
        if self.occupancy(side).bits.contains(index) {
            self.levels[index].qty
        } else {
            0
        }
    }

    /// Appends the order in `slot` to the back of its level.
    pub fn push_back(&mut self, arena: &mut Arena, slot: u32) {
        let (side, index, remaining) = {
            let order = arena.get(slot);
            assert!(!order.resting);
            (
                order.book_side(),
                order.rests_at_ticks as usize,
                order.remaining_qty,
            )
        };
        assert!(remaining > 0);
        let tail = self.levels[index].tail;
        {
            let order = arena.get_mut(slot);
            order.resting = true;
            order.level_prev = tail;
            order.level_next = NIL;
        }
        if tail == NIL {
            self.levels[index].head = slot;
            self.occupancy_mut(side).insert(index);
        } else {
            arena.get_mut(tail).level_next = slot;
        }
        let level = &mut self.levels[index];
        level.tail = slot;
        level.qty += remaining;
    }

    /// Takes the order in `slot` out of its level (its remaining qty leaves the level total).
    // Inlined for the same reason as `Engine::touch_level` (with `Arena::insert` and
    // `release_excess`: standard 1,691 -> 1,674 instructions per op, cancel-heavy -2.4%).
    #[inline(always)]
    pub fn unlink(&mut self, arena: &mut Arena, slot: u32) {
        let (side, index, remaining, prev, next) = {
            let order = arena.get_mut(slot);
            assert!(order.resting);
            order.resting = false;
            let links = (order.level_prev, order.level_next);
            order.level_prev = NIL;
            order.level_next = NIL;
            (
                order.book_side(),
                order.rests_at_ticks as usize,
                order.remaining_qty,
                links.0,
                links.1,
            )
        };
        match prev {
            NIL => self.levels[index].head = next,
            prev => arena.get_mut(prev).level_next = next,
        }
        match next {
            NIL => self.levels[index].tail = prev,
            next => arena.get_mut(next).level_prev = prev,
        }
        let level = &mut self.levels[index];
        assert!(level.qty >= remaining);
        level.qty -= remaining;
        if level.head == NIL {
            assert_eq!(level.qty, 0);
            self.occupancy_mut(side).remove(index);
        }
    }

    /// Shrinks a resting order's level total by `qty` (a fill or a decrement of that order).
    pub fn reduce(&mut self, ticks: u16, qty: u64) {
        let level = &mut self.levels[ticks as usize];
        assert!(
            level.qty > qty,
            "a level emptied by a reduce must unlink its order"
        );
        level.qty -= qty;
    }

    /// Test-only: adds to a level's total without an order, so checks can be shown to fail.
    #[cfg(test)]
    pub fn grow_for_test(&mut self, ticks: u16, qty: u64) {
        self.levels[ticks as usize].qty += qty;
    }

    /// Aggregated levels of one side, best first, at most `depth` of them.
    pub fn depth(&self, side: BookSide, depth: usize, out: &mut Vec<(u16, u64)>) {
        out.clear();
        let mut level = self.best_ticks(side);
        while let Some(ticks) = level {
            if out.len() >= depth {
                break;
            }
            out.push((self.units(ticks), self.level_at(ticks).qty));
            level = self.next_worse(side, ticks);
        }
    }

    /// The best price found by scanning the occupancy bits, never the remembered best: what
    /// `best` must always equal (checks).
    pub fn scanned_best(&self, side: BookSide) -> Option<u16> {
        let index = self.occupancy(side).scan_best();
        index.map(|index| self.units(index as u16))
    }

    /// Every occupied price of a side, best first, found by scanning (checks and snapshots).
    pub fn prices(&self, side: BookSide) -> Vec<u16> {
        let mut prices = Vec::new();
        let mut level = self.occupancy(side).scan_best().map(|index| index as u16);
        while let Some(ticks) = level {
            prices.push(self.units(ticks));
            level = self.next_worse(side, ticks);
        }
        prices
    }
}

/// The occupied levels of one side and the best of them, kept up to date as levels fill and
/// empty: reading the best price happens several times a command, moving it far less often.
#[derive(Clone, Debug)]
struct SideSet {
    side: BookSide,
    bits: BitSet,
    best: Option<usize>,
}

impl SideSet {
    fn new(side: BookSide, count: usize) -> SideSet {
        SideSet {
            side,
            bits: BitSet::new(count),
            best: None,
        }
    }

    fn is_better(&self, index: usize, than: usize) -> bool {
        match self.side {
            BookSide::Bid => index > than,
            BookSide::Ask => index < than,
        }
    }

    fn insert(&mut self, index: usize) {
        self.bits.insert(index);
        if self.best.is_none_or(|best| self.is_better(index, best)) {
            self.best = Some(index);
        }
    }

    fn remove(&mut self, index: usize) {
        self.bits.remove(index);
        if self.best == Some(index) {
            // The new best is the next occupied level behind the old one.
            self.best = self.next_worse(index);
        }
        debug_assert_eq!(self.best, self.scan_best());
    }

    /// The next occupied index after `index`, moving away from the spread.
    fn next_worse(&self, index: usize) -> Option<usize> {
        match self.side {
            BookSide::Bid => self.bits.highest_below(index),
            BookSide::Ask => self.bits.lowest_above(index),
        }
    }

    /// The best index found by a full scan (what `best` must always equal).
    fn scan_best(&self) -> Option<usize> {
        match self.side {
            BookSide::Bid => self.bits.highest(),
            BookSide::Ask => self.bits.lowest(),
        }
    }
}

/// A fixed-size bitset with scans for the lowest and highest set bit.
#[derive(Clone, Debug)]
struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    fn new(bits: usize) -> BitSet {
        BitSet {
            words: vec![0; bits.div_ceil(64)],
        }
    }

    fn insert(&mut self, index: usize) {
        self.words[index / 64] |= 1 << (index % 64);
    }

    fn contains(&self, index: usize) -> bool {
        self.words[index / 64] & (1 << (index % 64)) != 0
    }

    fn remove(&mut self, index: usize) {
        self.words[index / 64] &= !(1 << (index % 64));
    }

    fn lowest(&self) -> Option<usize> {
        self.lowest_from(0)
    }

    fn highest(&self) -> Option<usize> {
        self.highest_through(self.words.len() * 64 - 1)
    }

    fn lowest_above(&self, index: usize) -> Option<usize> {
        self.lowest_from(index + 1)
    }

    fn highest_below(&self, index: usize) -> Option<usize> {
        index.checked_sub(1).and_then(|i| self.highest_through(i))
    }

    fn lowest_from(&self, start: usize) -> Option<usize> {
        let mut word_index = start / 64;
        if word_index >= self.words.len() {
            return None;
        }
        let mut word = self.words[word_index] & (u64::MAX << (start % 64));
        loop {
            if word != 0 {
                return Some(word_index * 64 + word.trailing_zeros() as usize);
            }
            word_index += 1;
            if word_index == self.words.len() {
                return None;
            }
            word = self.words[word_index];
        }
    }

    fn highest_through(&self, end: usize) -> Option<usize> {
        let mut word_index = end / 64;
        let shift = 63 - (end % 64);
        let mut word = self.words[word_index] & (u64::MAX >> shift);
        loop {
            if word != 0 {
                return Some(word_index * 64 + 63 - word.leading_zeros() as usize);
            }
            if word_index == 0 {
                return None;
            }
            word_index -= 1;
            word = self.words[word_index];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reciprocal_divides_every_price_by_every_tick_exactly() {
        for tick_units in crate::units::TICK_UNITS_ALLOWED {
            let book = Book::new(tick_units);
            for price_units in 1..=crate::units::PRICE_UNITS_MAX {
                let quotient = (price_units as u64 * book.index_reciprocal) >> INDEX_SHIFT;
                assert_eq!(
                    quotient,
                    (price_units / tick_units) as u64,
                    "{price_units}/{tick_units}"
                );
                if price_units % tick_units == 0 {
                    assert_eq!(book.ticks(price_units), price_units / tick_units);
                }
            }
        }
    }

    #[test]
    #[should_panic]
    fn a_price_off_the_tick_has_no_level() {
        Book::new(10).ticks(4_995);
    }

    #[test]
    fn bitset_scans_find_neighbours() {
        let mut set = BitSet::new(10_000);
        assert_eq!(set.lowest(), None);
        assert_eq!(set.highest(), None);
        for i in [3, 64, 65, 9_999] {
            set.insert(i);
        }
        assert_eq!(set.lowest(), Some(3));
        assert_eq!(set.highest(), Some(9_999));
        assert_eq!(set.lowest_above(3), Some(64));
        assert_eq!(set.lowest_above(65), Some(9_999));
        assert_eq!(set.highest_below(64), Some(3));
        assert_eq!(set.highest_below(3), None);
        set.remove(9_999);
        assert_eq!(set.highest(), Some(65));
        assert_eq!(set.lowest_above(65), None);
    }

    #[test]
    fn each_side_remembers_its_best_level_as_levels_fill_and_empty() {
        let mut bids = SideSet::new(BookSide::Bid, 1_000);
        let mut asks = SideSet::new(BookSide::Ask, 1_000);
        for index in [500, 130, 700, 64] {
            bids.insert(index);
            asks.insert(index);
        }
        assert_eq!((bids.best, asks.best), (Some(700), Some(64)));
        // Emptying a level behind the best leaves it; emptying the best moves to the next.
        bids.remove(130);
        asks.remove(500);
        assert_eq!((bids.best, asks.best), (Some(700), Some(64)));
        bids.remove(700);
        asks.remove(64);
        assert_eq!((bids.best, asks.best), (Some(500), Some(130)));
        bids.insert(499);
        asks.insert(131);
        assert_eq!((bids.best, asks.best), (Some(500), Some(130)));
        for index in [500, 499, 64] {
            bids.remove(index);
        }
        assert_eq!(bids.best, None);
        assert_eq!(bids.best, bids.scan_best());
    }
}
