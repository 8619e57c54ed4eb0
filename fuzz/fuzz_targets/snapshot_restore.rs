//! Any bytes offered as a snapshot (postcard, as the server stores them): `restore` returns an
//! error or an engine whose invariants hold and which goes on working; it never panics.
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
