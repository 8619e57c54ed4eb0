//! Failure logs: write a failing run's commands to a file, replay a file, and shrink a
//! failing sequence to the fewest commands that still fail the same way.
//!
//! The log is JSON lines: a header (format, seed, options, engine config, the failure), then
//! one `Entry` per command. Replaying runs the same `Checker` as the simulation, so a log
//! reproduces its failure at the same command. It must never change a command while
//! replaying: shrinking only drops whole commands.

use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use engine::{Config, Engine, Event};
use serde::{Deserialize, Serialize};

use crate::checks::{CheckConfig, Checker};
use crate::report::FailureAt;
use crate::runner::{Entry, SimConfig};

pub const LOG_FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHeader {
    pub format_version: u32,
    pub sim: SimConfig,
    pub engine_config: Config,
    /// The failure as the log reproduces it (after shrinking).
    pub failure: FailureAt,
    /// Commands the failing run had applied before shrinking.
    pub original_commands: u64,
}

/// Runs `entries` from an empty engine under `check`; the first failure, or the final state
/// hash.
pub fn replay(
    entries: &[Entry],
    check: CheckConfig,
    engine_config: Config,
) -> Result<u128, FailureAt> {
    let mut engine = Engine::new(engine_config);
    let mut checker = Checker::new(check, engine_config);
    let mut events: Vec<Event> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        // The engine's own answer (accepted or a reject) is part of what the checker judges.
        let _answer = checker
            .apply(&mut engine, &entry.command, entry.must_reject, &mut events)
            .map_err(|failure| FailureAt {
                index: index as u64,
                failure,
            })?;
    }
    checker.full_check(&engine).map_err(|failure| FailureAt {
        index: entries.len().saturating_sub(1) as u64,
        failure,
    })?;
    Ok(engine.state_hash())
}

/// The fewest commands (within `attempts_max` replays) that still fail with the same
/// signature: first everything after the failure goes, then ever smaller chunks are dropped
/// wherever the failure survives without them.
pub fn shrink(
    entries: &[Entry],
    failure: &FailureAt,
    fails: impl Fn(&[Entry]) -> Option<FailureAt>,
    attempts_max: u32,
) -> (Vec<Entry>, FailureAt) {
    let signature = failure.failure.signature();
    let mut kept: Vec<Entry> = entries[..=failure.index as usize].to_vec();
    let mut last = failure.clone();
    let mut attempts = 0;
    let mut chunk = kept.len().div_ceil(2);
    while chunk > 0 && attempts < attempts_max {
        let mut start = 0;
        while start < kept.len() && attempts < attempts_max {
            attempts += 1;
            let end = (start + chunk).min(kept.len());
            let candidate: Vec<Entry> = [&kept[..start], &kept[end..]].concat();
            match fails(&candidate).filter(|f| f.failure.signature() == signature) {
                Some(found) => {
                    kept = candidate[..=found.index as usize].to_vec();
                    last = found;
                }
                None => start += chunk,
            }
        }
        chunk /= 2;
    }
    (kept, last)
}

pub fn write_log(path: &Path, header: &LogHeader, entries: &[Entry]) -> std::io::Result<()> {
    let mut out = BufWriter::new(fs::File::create(path)?);
    serde_json::to_writer(&mut out, header)?;
    out.write_all(b"\n")?;
    for entry in entries {
        serde_json::to_writer(&mut out, entry)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

pub fn read_log(path: &Path) -> Result<(LogHeader, Vec<Entry>), String> {
    let file = fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut lines = BufReader::new(file).lines();
    let first = lines
        .next()
        .ok_or("the log is empty")?
        .map_err(|e| e.to_string())?;
    let header: LogHeader = serde_json::from_str(&first).map_err(|e| format!("bad header: {e}"))?;
    if header.format_version != LOG_FORMAT_VERSION {
        return Err(format!(
            "log format {} is not {LOG_FORMAT_VERSION}",
            header.format_version
        ));
    }
    let mut entries = Vec::new();
    for (number, line) in lines.enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        let entry = serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", number + 2))?;
        entries.push(entry);
    }
    Ok((header, entries))
}
