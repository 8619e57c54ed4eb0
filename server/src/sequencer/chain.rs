//! The batch hash chain: what each committed batch is checked against at recovery.
//!
//! A batch's link is xxh3-128 over the previous batch's link and, for each of its commands,
//! the seq, the journaled command text, the result code and the JSON of the events it
//! produced. It costs O(batch) where the full state hash costs O(state), and replaying the
//! journal must reproduce every link, so a replay that drifts (another result, another event)
//! is caught at the first batch it touches. The full state hash is still stored with every
//! snapshot and checked where recovery starts and ends. Must never hash anything that is not
//! a pure function of the journal (no clocks, no map iteration order).

use engine::{Event, Reject};
use xxhash_rust::xxh3::Xxh3;

/// The link before the first batch.
pub const GENESIS: &str = "";

pub struct Chain {
    hasher: Xxh3,
    /// Reused for each command's events.
    buffer: Vec<u8>,
}

impl Chain {
    /// A chain continuing from `previous` (a batch's stored link, or [`GENESIS`]).
    pub fn after(previous: &str) -> Chain {
        let mut hasher = Xxh3::new();
        hasher.update(previous.as_bytes());
        Chain {
            hasher,
            buffer: Vec::new(),
        }
    }

    /// Adds one command: its seq, its journaled text, its result and its events.
    pub fn command(
        &mut self,
        seq: u64,
        command_text: &str,
        result: Result<(), Reject>,
        events: &[Event],
    ) {
        self.hasher.update(&seq.to_le_bytes());
        self.hasher.update(command_text.as_bytes());
        self.hasher.update(&[0]);
        let result = match result {
            Ok(()) => "OK",
            Err(reject) => reject.code(),
        };
        self.hasher.update(result.as_bytes());
        self.hasher.update(&[0]);
        self.buffer.clear();
        // JSON, not postcard: events carry a flattened field postcard cannot write, and JSON
        // of these plain structs is as deterministic.
        if serde_json::to_writer(&mut self.buffer, events).is_err() {
            self.buffer.clear();
        }
        self.hasher.update(&self.buffer);
    }

    /// The batch's link, as 32 hex digits.
    pub fn link(&self) -> String {
        format!("{:032x}", self.hasher.digest128())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::UserId;

    fn link_of(previous: &str, result: Result<(), Reject>, events: &[Event]) -> String {
        let mut chain = Chain::after(previous);
        chain.command(7, r#"{"tsMicros":1,"op":"CreateUser"}"#, result, events);
        chain.link()
    }

    #[test]
    fn a_link_depends_on_the_previous_link_the_result_and_the_events() {
        let created = [Event::UserCreated { user: UserId(3) }];
        let base = link_of(GENESIS, Ok(()), &created);
        assert_eq!(base.len(), 32);
        assert_eq!(base, link_of(GENESIS, Ok(()), &created));
        assert_ne!(base, link_of("00", Ok(()), &created));
        assert_ne!(base, link_of(GENESIS, Err(Reject::UnknownUser), &created));
        let other = [Event::UserCreated { user: UserId(4) }];
        assert_ne!(base, link_of(GENESIS, Ok(()), &other));
    }
}
