//! Money outside trading: deposits, withdrawals, split and merge, with exact balances,
//! positions and the events they emit.

mod support;

use engine::units::{CASH_IN_SYSTEM_MICROS_MAX, ORDER_QTY_LIMIT, TRANSFER_MICROS_MAX};
use engine::{Event, MarketId, Op, Outcome, Position, Reject, Resolution, Side, UserId};
use support::{Harness, DOLLAR};

fn balance(user: UserId, available_micros: i64, locked_micros: i64) -> Event {
    Event::Balance {
        user,
        available_micros,
        locked_micros,
    }
}

fn position(user: UserId, market: MarketId, yes: (u64, u64), no: (u64, u64)) -> Event {
    Event::Position {
        user,
        market,
        position: held(yes.0, yes.1, no.0, no.1),
    }
}

fn held(yes_free: u64, yes_reserved: u64, no_free: u64, no_reserved: u64) -> Position {
    Position {
        yes_free,
        yes_reserved,
        no_free,
        no_reserved,
    }
}

#[test]
fn a_deposit_credits_available_cash_and_the_external_account() {
    let mut h = Harness::default();
    let a = h.user(0);
    h.apply(Op::Deposit {
        user: a,
        amount_micros: 1,
    })
    .unwrap();
    assert_eq!(
        h.events,
        vec![
            Event::Deposited {
                user: a,
                amount_micros: 1
            },
            balance(a, 1, 0),
        ]
    );
    h.apply(Op::Deposit {
        user: a,
        amount_micros: 2_500_000,
    })
    .unwrap();
    assert_eq!(h.events[1], balance(a, 2_500_001, 0));
    assert_eq!((h.available(a), h.locked(a)), (2_500_001, 0));
    assert_eq!(h.engine.external_micros(), -2_500_001);
}

#[test]
fn bad_deposits_are_rejected() {
    let mut h = Harness::default();
    let a = h.user(0);
    let deposit = |user, amount_micros| Op::Deposit {
        user,
        amount_micros,
    };
    assert_eq!(
        h.apply(deposit(UserId(1), DOLLAR)),
        Err(Reject::UnknownUser)
    );
    for amount in [0, -1, -DOLLAR, TRANSFER_MICROS_MAX + 1, i64::MIN, i64::MAX] {
        assert_eq!(
            h.apply(deposit(a, amount)),
            Err(Reject::AmountOutOfRange),
            "{amount}"
        );
    }
    assert_eq!(h.available(a), 0);
    // The largest single transfer is allowed.
    h.apply(deposit(a, TRANSFER_MICROS_MAX)).unwrap();
    assert_eq!(h.available(a), TRANSFER_MICROS_MAX);
}

#[test]
fn deposits_stop_at_the_exchange_wide_cash_cap() {
    let mut h = Harness::default();
    let users = [h.user(0), h.user(0), h.user(0), h.user(0)];
    let deposits = CASH_IN_SYSTEM_MICROS_MAX / TRANSFER_MICROS_MAX;
    assert_eq!(deposits * TRANSFER_MICROS_MAX, CASH_IN_SYSTEM_MICROS_MAX);
    for index in 0..deposits {
        h.apply(Op::Deposit {
            user: users[index as usize % users.len()],
            amount_micros: TRANSFER_MICROS_MAX,
        })
        .unwrap();
    }
    assert_eq!(h.engine.external_micros(), -CASH_IN_SYSTEM_MICROS_MAX);
    assert_eq!(
        h.apply(Op::Deposit {
            user: users[0],
            amount_micros: 1
        }),
        Err(Reject::CashCapExceeded)
    );
    // Room made by a withdrawal can be filled again, to the micro.
    h.apply(Op::Withdraw {
        user: users[1],
        amount_micros: 7,
    })
    .unwrap();
    assert_eq!(
        h.apply(Op::Deposit {
            user: users[0],
            amount_micros: 8
        }),
        Err(Reject::CashCapExceeded)
    );
    h.apply(Op::Deposit {
        user: users[0],
        amount_micros: 7,
    })
    .unwrap();
    assert_eq!(h.engine.external_micros(), -CASH_IN_SYSTEM_MICROS_MAX);
}

#[test]
fn a_withdrawal_takes_available_cash_out_of_the_exchange() {
    let mut h = Harness::default();
    let a = h.user(10);
    h.apply(Op::Withdraw {
        user: a,
        amount_micros: 3_250_001,
    })
    .unwrap();
    assert_eq!(
        h.events,
        vec![
            Event::Withdrawn {
                user: a,
                amount_micros: 3_250_001
            },
            balance(a, 6_749_999, 0),
        ]
    );
    assert_eq!(h.engine.external_micros(), -6_749_999);
    assert_eq!(
        h.apply(Op::Withdraw {
            user: a,
            amount_micros: 6_750_000
        }),
        Err(Reject::InsufficientFunds)
    );
    h.apply(Op::Withdraw {
        user: a,
        amount_micros: 6_749_999,
    })
    .unwrap();
    assert_eq!((h.available(a), h.locked(a)), (0, 0));
    assert_eq!(h.engine.external_micros(), 0);
}

#[test]
fn cash_locked_by_an_open_order_cannot_be_withdrawn() {
    let mut h = Harness::default();
    let a = h.user(10);
    let m = h.market(0, 0);
    let order = h.limit(a, m, Side::Buy, Outcome::Yes, 4_000, 10).unwrap();
    // 10 @ 0.40 holds exactly $4.00: no maker fee, so no rounding buffer.
    assert_eq!((h.available(a), h.locked(a)), (6 * DOLLAR, 4 * DOLLAR));
    assert_eq!(
        h.apply(Op::Withdraw {
            user: a,
            amount_micros: 6 * DOLLAR + 1
        }),
        Err(Reject::InsufficientFunds)
    );
    h.apply(Op::Withdraw {
        user: a,
        amount_micros: 6 * DOLLAR,
    })
    .unwrap();
    assert_eq!(h.events[1], balance(a, 0, 4 * DOLLAR));
    h.apply(Op::Cancel { user: a, order }).unwrap();
    assert_eq!((h.available(a), h.locked(a)), (4 * DOLLAR, 0));
    h.apply(Op::Withdraw {
        user: a,
        amount_micros: 4 * DOLLAR,
    })
    .unwrap();
    assert_eq!(h.engine.external_micros(), 0);
}

#[test]
fn bad_withdrawals_are_rejected() {
    let mut h = Harness::default();
    let a = h.user(5);
    let withdraw = |user, amount_micros| Op::Withdraw {
        user,
        amount_micros,
    };
    assert_eq!(h.apply(withdraw(UserId(7), 1)), Err(Reject::UnknownUser));
    for amount in [0, -1, TRANSFER_MICROS_MAX + 1, i64::MIN] {
        assert_eq!(
            h.apply(withdraw(a, amount)),
            Err(Reject::AmountOutOfRange),
            "{amount}"
        );
    }
    assert_eq!(
        h.apply(withdraw(a, 5 * DOLLAR + 1)),
        Err(Reject::InsufficientFunds)
    );
    assert_eq!(h.available(a), 5 * DOLLAR);
}

#[test]
fn a_split_turns_cash_into_one_yes_and_one_no_per_dollar() {
    let mut h = Harness::default();
    let a = h.user(10);
    let m = h.market(0, 0);
    h.split(a, m, 3);
    assert_eq!(
        h.events,
        vec![
            Event::SharesSplit {
                user: a,
                market: m,
                qty: 3
            },
            position(a, m, (3, 0), (3, 0)),
            balance(a, 7 * DOLLAR, 0),
        ]
    );
    assert_eq!(h.engine.escrow_micros(m), Some(3 * DOLLAR));
    // Exactly the available cash is enough; one share more is not.
    assert_eq!(
        h.apply(Op::Split {
            user: a,
            market: m,
            qty: 8
        }),
        Err(Reject::InsufficientFunds)
    );
    h.split(a, m, 7);
    assert_eq!(h.events[1], position(a, m, (10, 0), (10, 0)));
    assert_eq!((h.available(a), h.locked(a)), (0, 0));
    assert_eq!(h.engine.escrow_micros(m), Some(10 * DOLLAR));
}

#[test]
fn a_split_cannot_use_cash_locked_by_orders() {
    let mut h = Harness::default();
    let a = h.user(2);
    let m = h.market(0, 0);
    h.limit(a, m, Side::Buy, Outcome::Yes, 100, 1).unwrap(); // holds 10,000 micros
    assert_eq!(
        h.apply(Op::Split {
            user: a,
            market: m,
            qty: 2
        }),
        Err(Reject::InsufficientFunds)
    );
    h.split(a, m, 1);
    assert_eq!((h.available(a), h.locked(a)), (DOLLAR - 10_000, 10_000));
}

#[test]
fn bad_splits_are_rejected() {
    let mut h = Harness::default();
    let a = h.user(10);
    let m = h.market(0, 0);
    let split = |user, market, qty| Op::Split { user, market, qty };
    assert_eq!(h.apply(split(UserId(1), m, 1)), Err(Reject::UnknownUser));
    // The user is checked before the market.
    assert_eq!(
        h.apply(split(UserId(1), MarketId(1), 1)),
        Err(Reject::UnknownUser)
    );
    assert_eq!(
        h.apply(split(a, MarketId(1), 1)),
        Err(Reject::UnknownMarket)
    );
    assert_eq!(h.apply(split(a, m, 0)), Err(Reject::QtyOutOfRange));
    assert_eq!(
        h.apply(split(a, m, ORDER_QTY_LIMIT + 1)),
        Err(Reject::QtyOutOfRange)
    );
    assert_eq!(h.apply(split(a, m, u64::MAX)), Err(Reject::QtyOutOfRange));
    // In range but unaffordable.
    assert_eq!(
        h.apply(split(a, m, ORDER_QTY_LIMIT)),
        Err(Reject::InsufficientFunds)
    );
    h.apply(Op::HaltMarket { market: m }).unwrap();
    assert_eq!(h.apply(split(a, m, 1)), Err(Reject::MarketNotOpen));
    h.apply(Op::CloseMarket { market: m }).unwrap();
    assert_eq!(h.apply(split(a, m, 1)), Err(Reject::MarketNotOpen));
    h.apply(Op::ResolveMarket {
        market: m,
        resolution: Resolution::Yes,
    })
    .unwrap();
    assert_eq!(h.apply(split(a, m, 1)), Err(Reject::MarketNotOpen));
    assert_eq!(h.available(a), 10 * DOLLAR);
}

#[test]
fn a_merge_turns_one_yes_and_one_no_back_into_a_dollar() {
    let mut h = Harness::default();
    let a = h.user(10);
    let m = h.market(0, 0);
    h.split(a, m, 5);
    h.apply(Op::Merge {
        user: a,
        market: m,
        qty: 2,
    })
    .unwrap();
    assert_eq!(
        h.events,
        vec![
            Event::SharesMerged {
                user: a,
                market: m,
                qty: 2
            },
            position(a, m, (3, 0), (3, 0)),
            balance(a, 7 * DOLLAR, 0),
        ]
    );
    assert_eq!(h.engine.escrow_micros(m), Some(3 * DOLLAR));
    h.apply(Op::Merge {
        user: a,
        market: m,
        qty: 3,
    })
    .unwrap();
    assert!(h.engine.position(a, m).is_empty());
    assert_eq!(h.events[1], position(a, m, (0, 0), (0, 0)));
    assert_eq!(h.available(a), 10 * DOLLAR);
    assert_eq!(h.engine.escrow_micros(m), Some(0));
}

#[test]
fn shares_bought_in_trades_merge_like_split_ones() {
    let mut h = Harness::default();
    let (a, b) = (h.user(100), h.user(100));
    let m = h.market(0, 0);
    // A and B mint 4 pairs at 0.30 (A takes the YES), then B sells his 4 NO to A at 0.65.
    h.limit(a, m, Side::Buy, Outcome::Yes, 3_000, 4).unwrap();
    h.limit(b, m, Side::Buy, Outcome::No, 7_000, 4).unwrap();
    h.limit(b, m, Side::Sell, Outcome::No, 6_500, 4).unwrap();
    h.limit(a, m, Side::Buy, Outcome::No, 6_500, 4).unwrap();
    assert_eq!(h.engine.position(a, m), held(4, 0, 4, 0));
    assert!(h.engine.position(b, m).is_empty());
    assert_eq!(h.available(a), 100 * DOLLAR - 1_200_000 - 2_600_000);
    h.apply(Op::Merge {
        user: a,
        market: m,
        qty: 4,
    })
    .unwrap();
    // A paid $0.95 a pair and got $1 back; B paid $0.70 for NO and sold it at $0.65.
    assert_eq!(h.available(a), 100 * DOLLAR + 200_000);
    assert_eq!(h.available(b), 100 * DOLLAR - 200_000);
    assert_eq!(h.engine.escrow_micros(m), Some(0));
}

#[test]
fn reserved_shares_and_one_sided_holdings_cannot_be_merged() {
    let mut h = Harness::default();
    let (a, b) = (h.user(10), h.user(10));
    let m = h.market(0, 0);
    h.split(a, m, 3);
    let order = h.limit(a, m, Side::Sell, Outcome::Yes, 9_000, 2).unwrap();
    assert_eq!(h.engine.position(a, m), held(1, 2, 3, 0));
    let merge = |qty| Op::Merge {
        user: a,
        market: m,
        qty,
    };
    assert_eq!(h.apply(merge(2)), Err(Reject::InsufficientShares));
    h.apply(merge(1)).unwrap();
    assert_eq!(h.engine.position(a, m), held(0, 2, 2, 0));
    // Only NO is free now.
    assert_eq!(h.apply(merge(1)), Err(Reject::InsufficientShares));
    h.apply(Op::Cancel { user: a, order }).unwrap();
    h.apply(merge(2)).unwrap();
    assert!(h.engine.position(a, m).is_empty());
    assert_eq!(h.available(a), 10 * DOLLAR);
    // B holds nothing at all.
    assert_eq!(
        h.apply(Op::Merge {
            user: b,
            market: m,
            qty: 1
        }),
        Err(Reject::InsufficientShares)
    );
}

#[test]
fn bad_merges_are_rejected() {
    let mut h = Harness::default();
    let a = h.user(10);
    let m = h.market(0, 0);
    h.split(a, m, 2);
    let merge = |user, market, qty| Op::Merge { user, market, qty };
    assert_eq!(h.apply(merge(UserId(1), m, 1)), Err(Reject::UnknownUser));
    assert_eq!(
        h.apply(merge(a, MarketId(1), 1)),
        Err(Reject::UnknownMarket)
    );
    assert_eq!(h.apply(merge(a, m, 0)), Err(Reject::QtyOutOfRange));
    assert_eq!(
        h.apply(merge(a, m, ORDER_QTY_LIMIT + 1)),
        Err(Reject::QtyOutOfRange)
    );
    assert_eq!(h.apply(merge(a, m, 3)), Err(Reject::InsufficientShares));
    assert_eq!(h.engine.position(a, m), held(2, 0, 2, 0));
}

#[test]
fn merging_stays_possible_until_resolution_but_not_after() {
    let mut h = Harness::default();
    let a = h.user(10);
    let m = h.market(0, 0);
    h.split(a, m, 3);
    let merge = Op::Merge {
        user: a,
        market: m,
        qty: 1,
    };
    // A merge takes no risk and needs no counterparty, so it is allowed while halted and
    // closed; only resolution (which pays the shares out) ends it.
    h.apply(Op::HaltMarket { market: m }).unwrap();
    h.apply(merge.clone()).unwrap();
    h.apply(Op::CloseMarket { market: m }).unwrap();
    h.apply(merge.clone()).unwrap();
    assert_eq!(h.available(a), 9 * DOLLAR);
    h.apply(Op::ResolveMarket {
        market: m,
        resolution: Resolution::No,
    })
    .unwrap();
    assert_eq!(h.apply(merge), Err(Reject::MarketNotOpen));
    // The last pair was paid out at resolution instead: $1 for the NO, nothing for the YES.
    assert_eq!(h.available(a), 10 * DOLLAR);
}

#[test]
fn a_share_transfer_moves_free_shares_and_nothing_else() {
    let mut h = Harness::default();
    let giver = h.user(10);
    let taker = h.user(0);
    let m = h.market(0, 0);
    h.split(giver, m, 5);
    // Two of the YES shares back an order: they are not free to give.
    h.limit(giver, m, Side::Sell, Outcome::Yes, 6_000, 2)
        .unwrap();
    let transfer = |qty| Op::TransferShares {
        from: giver,
        to: taker,
        market: m,
        outcome: Outcome::Yes,
        qty,
    };
    assert_eq!(h.apply(transfer(4)), Err(Reject::InsufficientShares));
    h.apply(transfer(3)).unwrap();
    assert_eq!(
        h.events,
        vec![
            Event::SharesTransferred {
                from: giver,
                to: taker,
                market: m,
                outcome: Outcome::Yes,
                qty: 3
            },
            position(giver, m, (0, 2), (5, 0)),
            position(taker, m, (3, 0), (0, 0)),
        ]
    );
    // Cash and escrow stay where they were.
    assert_eq!((h.available(giver), h.locked(giver)), (5 * DOLLAR, 0));
    assert_eq!((h.available(taker), h.locked(taker)), (0, 0));
    assert_eq!(h.engine.escrow_micros(m), Some(5 * DOLLAR));
    // The receiver holds them like any shares: it can sell them.
    h.limit(taker, m, Side::Sell, Outcome::Yes, 6_000, 3)
        .unwrap();
}

#[test]
fn bad_share_transfers_are_rejected_and_change_nothing() {
    let mut h = Harness::default();
    let a = h.user(10);
    let b = h.user(0);
    let m = h.market(0, 0);
    h.split(a, m, 2);
    let transfer = |from, to, market, qty| Op::TransferShares {
        from,
        to,
        market,
        outcome: Outcome::No,
        qty,
    };
    assert_eq!(
        h.apply(transfer(UserId(9), b, m, 1)),
        Err(Reject::UnknownUser)
    );
    assert_eq!(
        h.apply(transfer(a, UserId(9), m, 1)),
        Err(Reject::UnknownUser)
    );
    assert_eq!(h.apply(transfer(a, a, m, 1)), Err(Reject::SameUser));
    assert_eq!(
        h.apply(transfer(a, b, MarketId(7), 1)),
        Err(Reject::UnknownMarket)
    );
    assert_eq!(h.apply(transfer(a, b, m, 0)), Err(Reject::QtyOutOfRange));
    assert_eq!(
        h.apply(transfer(a, b, m, ORDER_QTY_LIMIT + 1)),
        Err(Reject::QtyOutOfRange)
    );
    assert_eq!(
        h.apply(transfer(b, a, m, 1)),
        Err(Reject::InsufficientShares)
    );
    // Halted and closed markets still record who holds what; a resolved one has paid out.
    h.apply(Op::HaltMarket { market: m }).unwrap();
    h.apply(transfer(a, b, m, 1)).unwrap();
    h.apply(Op::CloseMarket { market: m }).unwrap();
    h.apply(transfer(a, b, m, 1)).unwrap();
    h.apply(Op::ResolveMarket {
        market: m,
        resolution: Resolution::No,
    })
    .unwrap();
    assert_eq!(h.apply(transfer(b, a, m, 1)), Err(Reject::MarketNotOpen));
    // b was paid for the two NO shares it was given, a for its two YES (worth nothing).
    assert_eq!((h.available(a), h.available(b)), (8 * DOLLAR, 2 * DOLLAR));
}
