//! The one reading of a batch's events.
//!
//! Each command's events are read once, in order, and each event is handed to everything that
//! needs it: the projection builder (the rows the commit writes, and the position costs), and
//! the feed (the stream messages to publish after the commit, the order states replies are
//! rendered from, and the changes to the market-data read model). The chain link is taken over
//! the same commands and events. Must never: read the database, or read an event twice.

use engine::Engine;

use super::position_costs::PositionCosts;
use super::projection::{Builder, CommitError, Projection};
use super::Entry;
use crate::db::Backend;
use crate::stream::feed::{Changes, Feed, Plan};

/// What a batch turns into: the statements to commit and what to publish once they are.
pub(super) struct Interpreted {
    pub projection: Projection,
    pub plan: Plan,
}

/// `entries`, the batch after the one whose chain link is `previous_link`, applied to `engine`.
pub(super) fn interpret(
    entries: &[Entry],
    engine: &Engine,
    previous_link: &str,
    costs: &mut PositionCosts,
    backend: Backend,
    feed: &mut Feed,
) -> Result<Interpreted, CommitError> {
    let mut rows = Builder::new(backend, previous_link, costs);
    let mut plan = feed.begin_batch();
    for entry in entries {
        let (ts, seq) = rows.command(entry)?;
        let mut changes = Changes::default();
        for event in &entry.events {
            rows.event(event, entry, ts, seq)?;
            feed.event(event, entry, ts, &mut changes, &mut plan);
        }
        rows.command_end(entry)?;
        feed.end_command(changes, &mut plan);
    }
    let plan = feed.end_batch(plan);
    let mut projection = rows.finish(engine)?;
    projection.stream_seqs(&plan.seqs)?;
    Ok(Interpreted { projection, plan })
}
