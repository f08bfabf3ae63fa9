//! The seeded random source of domain randomization: SplitMix64, small and
//! fully specified, so that a scenario and a seed give the same draws on every
//! machine and in every version of this crate (a library RNG may change its
//! stream between releases; recorded datasets name their seed and must stay
//! reproducible).

use crate::scenario::Range;

/// SplitMix64's state.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The root generator of a run's seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5EED_5EED_5EED_5EED)
    }

    /// A generator for one purpose, independent of how many draws other
    /// purposes made (adding an actor does not move every other draw).
    pub fn fork(&self, stream: u64) -> Rng {
        let mut r = Rng(self.0 ^ stream.wrapping_mul(0xA24B_AED4_963E_E407));
        r.next_u64();
        r
    }

    /// The next 64 bits of the stream.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi] (lo when the range is a single value).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        if hi <= lo {
            return lo;
        }
        lo + (hi - lo) * self.unit()
    }

    /// A draw from a scenario range (its low end when it is a single value).
    pub fn range(&mut self, r: Range) -> f64 {
        self.uniform(r.0, r.1)
    }

    /// x moved by up to ±spread.
    pub fn jitter(&mut self, x: f64, spread: f64) -> f64 {
        x + self.uniform(-spread, spread)
    }

    /// An index below n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_forks_differ() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::new(7);
        let b: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(a, b);
        let (mut f1, mut f2) = (Rng::new(7).fork(1), Rng::new(7).fork(2));
        assert_ne!(f1.next_u64(), f2.next_u64());
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            let x = r.uniform(2.0, 3.0);
            assert!((2.0..=3.0).contains(&x));
            assert!(r.below(5) < 5);
        }
    }
}
