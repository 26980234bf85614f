//! NumPy's legacy `RandomState` shuffle, draw for draw: the MT19937 generator and the
//! bounded-integer rule of `RandomState.shuffle`. With it the engine reshuffles each epoch
//! exactly as scikit-learn does, without returning to Python (and to the GIL) per epoch.

/// MT19937's state as `RandomState.get_state()` gives it: 624 words and a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mt19937 {
    key: [u32; N],
    pos: usize,
}

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

impl Mt19937 {
    /// The state `(key, pos)` of `RandomState.get_state()`; `None` unless `key` has 624
    /// words and `pos <= 624`.
    pub fn from_state(key: &[u32], pos: usize) -> Option<Self> {
        Some(Self {
            key: key.try_into().ok()?,
            pos: (pos <= N).then_some(pos)?,
        })
    }

    /// The state in `RandomState.set_state()`'s terms.
    pub fn state(&self) -> (&[u32; N], usize) {
        (&self.key, self.pos)
    }

    /// The classic MT19937 seeding (`init_genrand`), as `RandomState(seed)` for a 32-bit
    /// seed.
    pub fn from_seed(seed: u32) -> Self {
        let mut key = [0u32; N];
        key[0] = seed;
        for i in 1..N {
            key[i] = 1_812_433_253u32
                .wrapping_mul(key[i - 1] ^ (key[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Self { key, pos: N }
    }

    fn refill(&mut self) {
        let twist = |y: u32| (y >> 1) ^ if y & 1 == 1 { MATRIX_A } else { 0 };
        for i in 0..N {
            let y = (self.key[i] & UPPER_MASK) | (self.key[(i + 1) % N] & LOWER_MASK);
            self.key[i] = self.key[(i + M) % N] ^ twist(y);
        }
        self.pos = 0;
    }

    /// The next 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.refill();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn next_u64(&mut self) -> u64 {
        let high = u64::from(self.next_u32());
        (high << 32) | u64::from(self.next_u32())
    }

    /// A uniform integer in `0..=max` by masked rejection (NumPy's `random_interval`).
    fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mask = u64::MAX >> max.leading_zeros();
        loop {
            let value = if max <= u64::from(u32::MAX) {
                u64::from(self.next_u32()) & mask
            } else {
                self.next_u64() & mask
            };
            if value <= max {
                return value;
            }
        }
    }

    /// `RandomState.shuffle` of a 1-D array: Fisher-Yates from the last element down.
    pub fn shuffle<V>(&mut self, values: &mut [V]) {
        for i in (1..values.len()).rev() {
            // `j <= i` by construction of `interval`.
            let j = self.interval(i as u64) as usize;
            values.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference output of MT19937 seeded with 5489 (the 10,000th draw is the
    /// generator's published check value).
    #[test]
    fn matches_the_reference_sequence() {
        let mut rng = Mt19937::from_seed(5489);
        assert_eq!(rng.next_u32(), 3_499_211_612);
        for _ in 1..9_999 {
            rng.next_u32();
        }
        assert_eq!(rng.next_u32(), 4_123_659_995);
    }

    /// `np.random.RandomState(0).shuffle(np.arange(10))` gives [2 8 4 9 1 6 7 3 0 5].
    #[test]
    fn shuffles_like_numpy() {
        let mut rng = Mt19937::from_seed(0);
        let mut values: Vec<usize> = (0..10).collect();
        rng.shuffle(&mut values);
        assert_eq!(values, [2, 8, 4, 9, 1, 6, 7, 3, 0, 5]);
    }

    #[test]
    fn rejects_malformed_states() {
        assert!(Mt19937::from_state(&[0; 623], 0).is_none());
        assert!(Mt19937::from_state(&[0; 624], 625).is_none());
        let rng = Mt19937::from_state(&[7; 624], 624).unwrap();
        assert_eq!(rng.state().1, 624);
    }
}
