//! Measuring: timed runs, latency percentiles, peak RSS, heap bytes per resting order, and the
//! latency tail the machine itself adds (a fixed computation timed like an operation).
//!
//! Owns the counting allocator (installed by the `engine-bench` binary) and the arithmetic of
//! the figures. It must never touch the engine beyond applying commands, and never time work
//! that is not part of the workload (setup and counting runs are untimed).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// A global allocator that, while enabled, keeps the net number of heap bytes allocated.
pub struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static NET_BYTES: AtomicI64 = AtomicI64::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    // SAFETY: every call forwards to `System` with the caller's own arguments, so `System`'s
    // contract is the caller's; the counting touches only atomics.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            NET_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            NET_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            NET_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Net heap bytes allocated while `work` runs (needs `CountingAllocator` as the global
/// allocator; otherwise 0).
pub fn heap_bytes_during<T>(work: impl FnOnce() -> T) -> (T, i64) {
    NET_BYTES.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let result = work();
    COUNTING.store(false, Ordering::SeqCst);
    (result, NET_BYTES.load(Ordering::SeqCst))
}

/// The process's peak resident set (VmHWM), where the OS tells it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

pub fn median(values: &mut [f64]) -> f64 {
    assert!(!values.is_empty());
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The value at `per_mille` thousandths of the sorted samples (nearest rank).
pub fn percentile<T: Copy>(sorted: &[T], per_mille: u64) -> T {
    assert!(!sorted.is_empty());
    let rank = (sorted.len() as u64 * per_mille).div_ceil(1_000).max(1);
    sorted[rank as usize - 1]
}

/// The machine's own tail: `samples` timings, sorted, of one fixed computation (`steps`
/// dependent multiplies, no memory, no branches that vary), timed exactly as the latency run
/// times an operation. Whatever tail it has, the machine added.
pub fn fixed_work_latencies(samples: usize, steps: u32) -> Vec<u32> {
    let mut latencies = Vec::with_capacity(samples);
    let mut state = 1u64;
    for _ in 0..samples {
        let started = std::time::Instant::now();
        for _ in 0..steps {
            state = std::hint::black_box(state.wrapping_mul(6_364_136_223_846_793_005) | 1);
        }
        latencies.push(nanos_u32(started.elapsed()));
    }
    latencies.sort_unstable();
    latencies
}

/// Steps of `fixed_work_latencies` whose median takes about `target_ns`.
pub fn fixed_work_steps_for(target_ns: u32) -> u32 {
    const PROBE_STEPS: u64 = 1_000;
    let probe = fixed_work_latencies(1_000, PROBE_STEPS as u32);
    let probe_ns = u64::from(percentile(&probe, 500).max(1));
    (PROBE_STEPS * u64::from(target_ns) / probe_ns).clamp(1, u64::from(u32::MAX)) as u32
}

/// A duration as whole nanoseconds in a `u32` (latency samples: half the memory of `u64`,
/// so a million of them weigh 4 MB in the peak RSS the benchmark reports), saturating at
/// ~4.3 s.
pub fn nanos_u32(duration: std::time::Duration) -> u32 {
    u32::try_from(duration.as_nanos()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<u64> = (1..=1_000).collect();
        assert_eq!(percentile(&samples, 500), 500);
        assert_eq!(percentile(&samples, 990), 990);
        assert_eq!(percentile(&samples, 999), 999);
        assert_eq!(percentile(&[7], 999), 7);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn nanos_saturate_at_the_u32_limit() {
        use std::time::Duration;
        assert_eq!(nanos_u32(Duration::from_nanos(1_234)), 1_234);
        assert_eq!(nanos_u32(Duration::from_secs(5)), u32::MAX);
    }

    #[test]
    fn fixed_work_grows_with_its_steps() {
        let short = fixed_work_latencies(1_001, 10);
        let long = fixed_work_latencies(1_001, 100_000);
        assert_eq!(short.len(), 1_001);
        assert!(short.windows(2).all(|pair| pair[0] <= pair[1]));
        assert!(percentile(&long, 500) > percentile(&short, 500));
    }
}
