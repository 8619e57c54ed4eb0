//! The `standard` stream, run on the engine, gives exactly the counts WORKLOAD.md publishes
//! (trades, shares, missed cancels, resting orders and quantity, best prices): an independent
//! check that the engine matches like a plain price-time order book.

use benches::workloads::{count, standard_expected_counts, workload};

#[test]
fn the_standard_workload_gives_the_published_counts() {
    let (counts, engine) = count(&workload("standard").unwrap());
    assert_eq!(counts, standard_expected_counts());
    assert_eq!(engine.check_invariants(), Ok(()));
}
