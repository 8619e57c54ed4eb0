//! Prometheus metrics: a handful of counters, gauges and histograms on atomics, rendered in the
//! text exposition format by `/metrics`.
//!
//! Owns the metric names and their bucket bounds. Recording must never block or allocate (the
//! sequencer records on its hot path), so everything is a relaxed atomic; a scrape may see one
//! batch half-recorded, which Prometheus tolerates.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Batch sizes in commands.
const BATCH_SIZE_BUCKETS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
/// Commit latency bounds in microseconds (0.5 ms .. 5 s).
const COMMIT_MICROS_BUCKETS: [u64; 13] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000,
];

pub struct Histogram<const N: usize> {
    bounds: [u64; N],
    /// Per bound, the observations at or below it (not cumulative; summed when rendered).
    counts: [AtomicU64; N],
    count: AtomicU64,
    sum: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: [u64; N]) -> Self {
        Histogram {
            bounds,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: u64) {
        if let Some(bucket) = self.bounds.iter().position(|bound| value <= *bound) {
            self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// `scale` divides bounds and sum for display (1e6 turns microseconds into seconds).
    fn render(&self, out: &mut String, name: &str, help: &str, scale: f64) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let le = *bound as f64 / scale;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum.load(Ordering::Relaxed) as f64 / scale;
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

pub struct Metrics {
    pub commands_total: AtomicU64,
    pub commands_rejected_total: AtomicU64,
    pub batches_total: AtomicU64,
    pub commit_failures_total: AtomicU64,
    pub overloaded_total: AtomicU64,
    pub batch_size: Histogram<11>,
    pub commit_micros: Histogram<13>,
    pub queue_depth: AtomicU64,
    pub open_orders: AtomicU64,
    pub last_seq: AtomicU64,
    /// 1 while the sequencer accepts commands.
    pub sequencer_up: AtomicU64,
    pub stream_messages_total: AtomicU64,
    /// Committed batches whose stream messages are not yet published.
    pub stream_backlog: AtomicU64,
    /// Batches of stream messages dropped because the publisher's queue was full.
    pub stream_batches_dropped_total: AtomicU64,
    /// Batches not sent to Redis (unreachable, or its queue full).
    pub redis_batches_dropped_total: AtomicU64,
    pub ws_connections: AtomicU64,
    pub ws_slow_consumers_total: AtomicU64,
    /// Topics the stream hub holds, and the bytes of their resume histories (set at scrape).
    pub stream_topics: AtomicU64,
    pub stream_history_bytes: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            commands_total: AtomicU64::new(0),
            commands_rejected_total: AtomicU64::new(0),
            batches_total: AtomicU64::new(0),
            commit_failures_total: AtomicU64::new(0),
            overloaded_total: AtomicU64::new(0),
            batch_size: Histogram::new(BATCH_SIZE_BUCKETS),
            commit_micros: Histogram::new(COMMIT_MICROS_BUCKETS),
            queue_depth: AtomicU64::new(0),
            open_orders: AtomicU64::new(0),
            last_seq: AtomicU64::new(0),
            sequencer_up: AtomicU64::new(0),
            stream_messages_total: AtomicU64::new(0),
            stream_backlog: AtomicU64::new(0),
            stream_batches_dropped_total: AtomicU64::new(0),
            redis_batches_dropped_total: AtomicU64::new(0),
            ws_connections: AtomicU64::new(0),
            ws_slow_consumers_total: AtomicU64::new(0),
            stream_topics: AtomicU64::new(0),
            stream_history_bytes: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn record_batch(&self, commands: u64, rejected: u64, commit: Duration) {
        self.commands_total.fetch_add(commands, Ordering::Relaxed);
        self.commands_rejected_total
            .fetch_add(rejected, Ordering::Relaxed);
        self.batches_total.fetch_add(1, Ordering::Relaxed);
        self.batch_size.observe(commands);
        let micros = u64::try_from(commit.as_micros()).unwrap_or(u64::MAX);
        self.commit_micros.observe(micros);
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4_096);
        let counters = [
            (
                "predex_commands_total",
                "Commands applied by the engine and committed (rate() gives commands per second).",
                &self.commands_total,
            ),
            (
                "predex_commands_rejected_total",
                "Committed commands the engine rejected.",
                &self.commands_rejected_total,
            ),
            (
                "predex_batches_total",
                "Batches committed (one transaction each).",
                &self.batches_total,
            ),
            (
                "predex_commit_failures_total",
                "Batch commits that failed (each stops the sequencer).",
                &self.commit_failures_total,
            ),
            (
                "predex_overloaded_total",
                "Commands refused because the sequencer queue was full.",
                &self.overloaded_total,
            ),
            (
                "predex_stream_messages_total",
                "WebSocket stream messages published (each to every subscriber of its topic).",
                &self.stream_messages_total,
            ),
            (
                "predex_ws_slow_consumers_total",
                "WebSocket connections closed because their send queue was full.",
                &self.ws_slow_consumers_total,
            ),
            (
                "predex_stream_batches_dropped_total",
                "Batches of stream messages dropped because the publisher fell behind (clients \
                 see the gap and resync).",
                &self.stream_batches_dropped_total,
            ),
            (
                "predex_redis_batches_dropped_total",
                "Batches of stream messages not sent to Redis because it was unreachable or \
                 behind (gateways see the gap and resync).",
                &self.redis_batches_dropped_total,
            ),
        ];
        for (name, help, value) in counters {
            let value = value.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let gauges = [
            (
                "predex_queue_depth",
                "Commands waiting for the sequencer.",
                &self.queue_depth,
            ),
            (
                "predex_open_orders",
                "Open orders in the engine after the last committed batch.",
                &self.open_orders,
            ),
            (
                "predex_last_seq",
                "Sequence number of the last committed command.",
                &self.last_seq,
            ),
            (
                "predex_sequencer_up",
                "1 while the sequencer accepts commands, 0 once stopped or failed.",
                &self.sequencer_up,
            ),
            (
                "predex_stream_backlog",
                "Committed batches whose stream messages are not yet published.",
                &self.stream_backlog,
            ),
            (
                "predex_ws_connections",
                "Open WebSocket connections.",
                &self.ws_connections,
            ),
            (
                "predex_stream_topics",
                "Topics the stream hub holds (market topics, and private ones someone listens to).",
                &self.stream_topics,
            ),
            (
                "predex_stream_history_bytes",
                "Bytes of messages kept for resuming clients, across all topics (bounded by \
                 STREAM_HISTORY_MAX_BYTES).",
                &self.stream_history_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            let value = value.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        self.batch_size.render(
            &mut out,
            "predex_batch_size",
            "Commands per committed batch.",
            1.0,
        );
        self.commit_micros.render(
            &mut out,
            "predex_commit_seconds",
            "Time to commit one batch (journal and projections).",
            1e6,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.record_batch(3, 1, Duration::from_micros(700));
        metrics.record_batch(1, 0, Duration::from_secs(60));
        let text = metrics.render();
        assert!(text.contains("predex_commands_total 4\n"), "{text}");
        assert!(
            text.contains("predex_batch_size_bucket{le=\"1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("predex_batch_size_bucket{le=\"4\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("predex_commit_seconds_bucket{le=\"0.001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("predex_commit_seconds_bucket{le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("predex_commit_seconds_count 2\n"), "{text}");
    }
}
