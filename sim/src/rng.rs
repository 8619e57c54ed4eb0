//! splitmix64: the one seeded stream that drives a whole simulated run.
//!
//! The generator `../shared/WORKLOAD.md` fixes, so the simulator and the benchmarks draw from
//! the same, portable sequence. Every decision of a run comes from here, in a fixed order; it
//! must never be seeded from anything but the run's seed (no clock, no OS entropy).

#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A draw in `0..n` (WORKLOAD.md's `uniform`). Inlined so that a constant `n` becomes a
    /// multiplication instead of a division.
    #[inline]
    pub fn uniform(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }

    /// A draw in `low..=high`.
    #[inline]
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high);
        low + self.uniform(high - low + 1)
    }

    /// True `percent` times in a hundred.
    #[inline]
    pub fn chance(&mut self, percent: u64) -> bool {
        self.uniform(100) < percent
    }

    #[inline]
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.uniform(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_splitmix64_stream() {
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        let mut rng = SplitMix64::new(42);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            first,
            [
                0xBDD7_3226_2FEB_6E95,
                0x28EF_E333_B266_F103,
                0x4752_6757_130F_9F52
            ]
        );
    }

    #[test]
    fn draws_stay_in_range() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..1_000 {
            assert!(rng.uniform(3) < 3);
            assert!((5..=9).contains(&rng.between(5, 9)));
        }
        assert!(!SplitMix64::new(1).chance(0));
        assert!(SplitMix64::new(1).chance(100));
    }
}
