//! A small deterministic random generator shared by the conformance kit, fault injection and
//! benchmarks, so that any failing run can be repeated from its seed.

/// A small deterministic generator (SplitMix64), so a failing run can be repeated from its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// A size drawn from Lua's mix: mostly ≤ 64 B, some up to 1 KiB, a few up to `max`.
    pub fn lua_size(&mut self, max: usize) -> usize {
        let r = self.below(1000);
        let cap = if r < 900 {
            64
        } else if r < 990 {
            1024
        } else {
            max
        };
        1 + self.below(cap.min(max))
    }
}
