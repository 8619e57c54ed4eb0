//! Any bytes offered as a snapshot (postcard, as the server stores them): `restore` returns an
//! error or an engine whose invariants hold, whose own snapshot restores to the same state, and
//! which goes on working; it never panics. CI seeds the corpus with real snapshots of simulated
//! runs (`sim --corpus-dir`), so the mutations start from states with thousands of orders over
//! many markets, levels and id pages, not only from arbitrary bytes.
#![no_main]

use engine::{Command, Engine, Op, Snapshot, UserId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(snapshot) = postcard::from_bytes::<Snapshot>(data) else {
        return;
    };
    let Ok(mut engine) = Engine::restore(&snapshot) else {
        return;
    };
    assert_eq!(engine.check_invariants(), Ok(()));
    let again = engine.snapshot();
    let bytes = postcard::to_allocvec(&again).expect("snapshots always encode");
    let decoded: Snapshot = postcard::from_bytes(&bytes).expect("a snapshot reads back");
    let restored = Engine::restore(&decoded).expect("a live engine's snapshot restores");
    assert_eq!(restored.snapshot(), again);
    let next = snapshot.now_micros;
    for op in [
        Op::Tick,
        Op::CancelAll {
            user: UserId(0),
            market: None,
        },
    ] {
        let _ = engine.apply(
            &Command {
                ts_micros: next,
                op,
            },
            &mut Vec::new(),
        );
        assert_eq!(engine.check_invariants(), Ok(()));
    }
});
