//! Any bytes offered as a journaled command: decoding never panics, a decoded command survives
//! a JSON round trip unchanged, and applying it to a live engine never panics.
#![no_main]

use engine::{Command, Engine, Op};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(command) = serde_json::from_slice::<Command>(data) else {
        return;
    };
    let json = serde_json::to_string(&command).expect("a command encodes");
    assert_eq!(
        serde_json::from_str::<Command>(&json).expect("re-decodes"),
        command
    );
    let mut engine = Engine::default();
    for op in [Op::CreateUser, Op::CreateUser] {
        let _ = engine.apply(&Command { ts_micros: 0, op }, &mut Vec::new());
    }
    let _ = engine.apply(&command, &mut Vec::new());
    assert_eq!(engine.check_invariants(), Ok(()));
});
