//! The double-entry ledger: user cash (available and locked), per-market escrow, the fee
//! account and the external world, plus every user's YES/NO shares (free and reserved).
//!
//! Every cash movement takes from one account and gives to another, so the sum over all
//! accounts is always zero. Balances are asserted non-negative after every movement (release
//! builds too). It must never decide whether a movement is allowed: callers check first, so a
//! failed assertion here is a bug, not a reject.

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;

use crate::types::{MarketId, Outcome, UserId};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub yes_free: u64,
    pub yes_reserved: u64,
    pub no_free: u64,
    pub no_reserved: u64,
}

impl Position {
    pub fn free(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Yes => self.yes_free,
            Outcome::No => self.no_free,
        }
    }

    pub fn total(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Yes => self.yes_free + self.yes_reserved,
            Outcome::No => self.no_free + self.no_reserved,
        }
    }

    fn parts(&mut self, outcome: Outcome) -> (&mut u64, &mut u64) {
        match outcome {
            Outcome::Yes => (&mut self.yes_free, &mut self.yes_reserved),
            Outcome::No => (&mut self.no_free, &mut self.no_reserved),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Position::default()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cash {
    pub available_micros: i64,
    pub locked_micros: i64,
}

/// An account's value and the command that last changed it, so that a command records each
/// account's value before its first change exactly once, however often it moves it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stamped<T> {
    pub value: T,
    /// The `Ledger::command` of the last change (0: none since restore).
    pub touched_in: u64,
}

impl<T> Stamped<T> {
    pub fn new(value: T) -> Stamped<T> {
        Stamped {
            value,
            touched_in: 0,
        }
    }

    /// Stamps the account with `command`; true on its first change in that command.
    #[inline(always)]
    fn first_touch_in(&mut self, command: u64) -> bool {
        let first = self.touched_in != command;
        self.touched_in = command;
        first
    }
}

/// A position account, and where the current command recorded it in the touch list.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PositionAccount {
    pub value: Position,
    /// Index of this account's entry in `Ledger::touched_positions`, meaningful only while the
    /// entry there has this account's key: the list holds the current command's entries only,
    /// so an index left from an earlier command points past its end or at another account.
    touch: u32,
}

impl PositionAccount {
    pub fn new(value: Position) -> PositionAccount {
        PositionAccount {
            value,
            touch: u32::MAX,
        }
    }
}

/// A position the current command changed: its value before the first change and now.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PositionTouch {
    pub key: (MarketId, UserId),
    pub before: Position,
    pub now: Position,
}

#[derive(Clone, Debug)]
pub(crate) struct Ledger {
    pub cash: Vec<Stamped<Cash>>,
    pub escrow_micros: Vec<i64>,
    pub positions: FxHashMap<(MarketId, UserId), PositionAccount>,
    /// Users holding a position entry, per market, in the order they first got one.
    pub holders: Vec<Vec<UserId>>,
    pub fee_micros: i64,
    /// The outside world: minus (deposits - withdrawals).
    pub external_micros: i64,
    /// Numbers commands, for the stamps: rises by one as each command's changes are flushed.
    command: u64,
    /// Cash accounts changed by the current command, once each, with their value before its
    /// first change (unordered).
    pub touched_cash: Vec<(UserId, Cash)>,
    /// Positions changed by the current command with their value before and now, so that the
    /// flush never looks an account up again (unordered; once each, except an account settled
    /// at resolution and opened again in the same command, which `touched_twice` flags).
    pub touched_positions: Vec<PositionTouch>,
    /// Set by any settlement in the current command: the flush must then merge entries of
    /// equal key, where otherwise it only orders them.
    pub touched_twice: bool,
}

impl Default for Ledger {
    fn default() -> Ledger {
        Ledger {
            cash: Vec::new(),
            escrow_micros: Vec::new(),
            positions: FxHashMap::default(),
            holders: Vec::new(),
            fee_micros: 0,
            external_micros: 0,
            command: 1,
            touched_cash: Vec::new(),
            touched_positions: Vec::new(),
            touched_twice: false,
        }
    }
}

// The movements below are a few instructions each and run several times per fill; left to
// itself the compiler calls them, and the calls cost more than their bodies (forcing them
// inline cuts the standard workload's instructions per op by 4.9%).
impl Ledger {
    pub fn cash(&self, user: UserId) -> Cash {
        self.cash[user.0 as usize].value
    }

    pub fn position(&self, market: MarketId, user: UserId) -> Position {
        self.positions
            .get(&(market, user))
            .map(|account| account.value)
            .unwrap_or_default()
    }

    /// A new user's cash account, empty.
    pub fn add_cash_account(&mut self, cash: Cash) {
        self.cash.push(Stamped::new(cash));
    }

    /// Called once the current command's touched accounts have been read: later changes
    /// belong to the next command.
    pub fn end_command(&mut self) {
        assert!(self.touched_cash.is_empty() && self.touched_positions.is_empty());
        self.touched_twice = false;
        self.command += 1;
    }

    #[inline(always)]
    fn cash_mut(&mut self, user: UserId) -> &mut Cash {
        let account = &mut self.cash[user.0 as usize];
        if account.first_touch_in(self.command) {
            self.touched_cash.push((user, account.value));
        }
        &mut account.value
    }

    /// Applies `change` to a position (opened empty if it has none) and records the value it
    /// leaves in the touch list. One hash lookup: the entry gives the slot and the account's
    /// touch index. The holders list is indexed only for a new account (indexed up front, its
    /// bounds check ran on every movement; inside an `or_insert_with` closure, the lookup was
    /// compiled worse).
    #[inline(always)]
    fn change_position(
        &mut self,
        market: MarketId,
        user: UserId,
        change: impl FnOnce(&mut Position),
    ) {
        let key = (market, user);
        let account = match self.positions.entry(key) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                self.holders[market.0 as usize].push(user);
                entry.insert(PositionAccount::new(Position::default()))
            }
        };
        let before = account.value;
        change(&mut account.value);
        let touched = &mut self.touched_positions;
        match touched.get_mut(account.touch as usize) {
            Some(entry) if entry.key == key => entry.now = account.value,
            _ => {
                account.touch = u32::try_from(touched.len()).expect("touches bounded by memory");
                touched.push(PositionTouch {
                    key,
                    before,
                    now: account.value,
                });
            }
        }
    }

    pub fn deposit(&mut self, user: UserId, amount_micros: i64) {
        assert!(amount_micros > 0);
        self.external_micros -= amount_micros;
        self.cash_mut(user).available_micros += amount_micros;
    }

    pub fn withdraw(&mut self, user: UserId, amount_micros: i64) {
        assert!(amount_micros > 0);
        let cash = self.cash_mut(user);
        cash.available_micros -= amount_micros;
        assert!(cash.available_micros >= 0);
        self.external_micros += amount_micros;
    }

    #[inline(always)]
    pub fn lock(&mut self, user: UserId, amount_micros: i64) {
        assert!(amount_micros >= 0);
        let cash = self.cash_mut(user);
        cash.available_micros -= amount_micros;
        cash.locked_micros += amount_micros;
        assert!(cash.available_micros >= 0);
    }

    #[inline(always)]
    pub fn unlock(&mut self, user: UserId, amount_micros: i64) {
        assert!(amount_micros >= 0);
        let cash = self.cash_mut(user);
        cash.locked_micros -= amount_micros;
        cash.available_micros += amount_micros;
        assert!(cash.locked_micros >= 0);
    }

    /// A buyer pays for shares out of cash locked by its order.
    #[inline(always)]
    pub fn pay_into_escrow(&mut self, user: UserId, market: MarketId, amount_micros: i64) {
        assert!(amount_micros >= 0);
        let cash = self.cash_mut(user);
        cash.locked_micros -= amount_micros;
        assert!(cash.locked_micros >= 0);
        self.escrow_micros[market.0 as usize] += amount_micros;
    }

    /// A seller (or a settling holder) is paid from escrow into available cash.
    #[inline(always)]
    pub fn pay_from_escrow(&mut self, market: MarketId, user: UserId, amount_micros: i64) {
        assert!(amount_micros >= 0);
        let escrow = &mut self.escrow_micros[market.0 as usize];
        *escrow -= amount_micros;
        assert!(*escrow >= 0);
        self.cash_mut(user).available_micros += amount_micros;
    }

    /// Fee charged out of the order's locked cash (BUY) or out of available proceeds (SELL);
    /// a negative fee is a rebate paid by the fee account into available cash.
    #[inline(always)]
    pub fn charge_fee(&mut self, user: UserId, fee_micros: i64, from_locked: bool) {
        if fee_micros == 0 {
            return;
        }
        let cash = self.cash_mut(user);
        if fee_micros < 0 {
            cash.available_micros -= fee_micros;
        } else if from_locked {
            cash.locked_micros -= fee_micros;
            assert!(cash.locked_micros >= 0);
        } else {
            cash.available_micros -= fee_micros;
            assert!(cash.available_micros >= 0);
        }
        self.fee_micros += fee_micros;
    }

    #[inline(always)]
    pub fn add_free(&mut self, market: MarketId, user: UserId, outcome: Outcome, qty: u64) {
        self.change_position(market, user, |position| *position.parts(outcome).0 += qty);
    }

    pub fn remove_free(&mut self, market: MarketId, user: UserId, outcome: Outcome, qty: u64) {
        self.change_position(market, user, |position| {
            let (free, _) = position.parts(outcome);
            assert!(*free >= qty);
            *free -= qty;
        });
    }

    #[inline(always)]
    pub fn reserve(&mut self, market: MarketId, user: UserId, outcome: Outcome, qty: u64) {
        self.change_position(market, user, |position| {
            let (free, reserved) = position.parts(outcome);
            assert!(*free >= qty);
            *free -= qty;
            *reserved += qty;
        });
    }

    #[inline(always)]
    pub fn release(&mut self, market: MarketId, user: UserId, outcome: Outcome, qty: u64) {
        self.change_position(market, user, |position| {
            let (free, reserved) = position.parts(outcome);
            assert!(*reserved >= qty);
            *reserved -= qty;
            *free += qty;
        });
    }

    #[inline(always)]
    pub fn remove_reserved(&mut self, market: MarketId, user: UserId, outcome: Outcome, qty: u64) {
        self.change_position(market, user, |position| {
            let (_, reserved) = position.parts(outcome);
            assert!(*reserved >= qty);
            *reserved -= qty;
        });
    }

    /// Split: cash -> `qty` YES + `qty` NO, the cash going into escrow.
    pub fn split(&mut self, market: MarketId, user: UserId, qty: u64, amount_micros: i64) {
        let cash = self.cash_mut(user);
        cash.available_micros -= amount_micros;
        assert!(cash.available_micros >= 0);
        self.escrow_micros[market.0 as usize] += amount_micros;
        self.add_free(market, user, Outcome::Yes, qty);
        self.add_free(market, user, Outcome::No, qty);
    }

    /// Takes a holder's position out of the ledger at resolution, recording it as now empty.
    /// One hash lookup: the removed entry still has its touch index.
    pub fn settle(&mut self, market: MarketId, user: UserId) -> Position {
        let key = (market, user);
        let account = self
            .positions
            .remove(&key)
            .expect("a holder has a position account");
        let touched = &mut self.touched_positions;
        match touched.get_mut(account.touch as usize) {
            Some(entry) if entry.key == key => entry.now = Position::default(),
            _ => touched.push(PositionTouch {
                key,
                before: account.value,
                now: Position::default(),
            }),
        }
        // Should the account open again in this command, it gets a second entry.
        self.touched_twice = true;
        let position = account.value;
        assert_eq!(position.yes_reserved, 0);
        assert_eq!(position.no_reserved, 0);
        position
    }
}
