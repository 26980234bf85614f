//! Inverted dropout of hidden-layer outputs during stochastic training: each unit is
//! kept with probability `1 - p` and scaled by `1 / (1 - p)`, or set to 0.
//!
//! Masks come from a counter-based generator: unit `j` of hidden layer `l` for the
//! `v`-th sample visit of the model's life (`t_` before the epoch, plus the row's place
//! in the epoch's order) is kept when `hash(seed, v, l, j) >= p * 2^64`. A mask thus
//! depends on where a row sits in training, never on which part of a batch or which
//! thread computes it: models stay bit-identical for any `n_jobs`.

use crate::simd::multiversion;

/// The dropout of one fit: a rate per hidden layer (0 keeps every unit) and the seed
/// drawn from the estimator's `random_state`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dropout {
    /// One rate in [0, 1) per hidden layer; empty for none.
    pub rates: Vec<f64>,
    /// The generator's seed.
    pub seed: u64,
}

impl Dropout {
    /// Whether hidden layer `l` drops units.
    pub(crate) fn active(&self, l: usize) -> bool {
        self.rates.get(l).is_some_and(|&p| p > 0.0)
    }
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
#[inline(always)]
fn mix(z: u64) -> u64 {
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

multiversion! {
    /// Drops units of hidden layer `layer` over `n` rows of `width` outputs `y` (row-major),
    /// the first being sample visit `first_visit`: keeps the outputs as they were in
    /// `kept`, writes the mask (0 or `1 / (1 - p)`) into `mask` and the dropped outputs
    /// into `y`.
    pub(crate) fn apply<T: Real>(
        dropout: &Dropout,
        layer: usize,
        first_visit: u64,
        width: usize,
        y: &mut [T],
        kept: &mut [T],
        mask: &mut [T],
    ) {
        let p = dropout.rates[layer];
        // keep when the hash is at least p * 2^64 (the cast saturates)
        let threshold = (p * 18_446_744_073_709_551_616.0) as u64;
        let scale = T::from_f64(1.0 / (1.0 - p));
        let layer_key = mix(dropout.seed ^ (layer as u64 + 1).wrapping_mul(GOLDEN));
        let rows = y.chunks_exact_mut(width).zip(kept.chunks_exact_mut(width));
        for (r, ((y, kept), mask)) in rows.zip(mask.chunks_exact_mut(width)).enumerate() {
            let row_key = mix(layer_key ^ (first_visit + r as u64).wrapping_mul(GOLDEN));
            for (j, ((y, kept), mask)) in y.iter_mut().zip(kept).zip(mask).enumerate() {
                let keep = mix(row_key.wrapping_add((j as u64 + 1).wrapping_mul(GOLDEN)))
                    >= threshold;
                *kept = *y;
                // a select, not a product: a dropped inf or NaN becomes 0 as well
                *mask = if keep { scale } else { T::zero() };
                *y = if keep { *y * scale } else { T::zero() };
            }
        }
    }
}

multiversion! {
    /// The error signals of dropped outputs through their mask: `delta * mask`, as a
    /// select (dropped units' signals become 0 whatever they held).
    pub(crate) fn backward<T: Real>(mask: &[T], delta: &mut [T]) {
        for (d, &m) in delta.iter_mut().zip(mask) {
            *d = if m == T::zero() { T::zero() } else { *d * m };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_expected_share_and_scales() {
        let dropout = Dropout {
            rates: vec![0.0, 0.25],
            seed: 7,
        };
        assert!(!dropout.active(0) && dropout.active(1) && !dropout.active(2));
        let (n, width) = (400, 50);
        let mut y = vec![2.0_f64; n * width];
        let (mut kept, mut mask) = (vec![0.0; n * width], vec![0.0; n * width]);
        apply(&dropout, 1, 1000, width, &mut y, &mut kept, &mut mask);
        let share = mask.iter().filter(|&&m| m != 0.0).count() as f64 / (n * width) as f64;
        assert!((share - 0.75).abs() < 0.01, "{share}");
        assert!(kept.iter().all(|&k| k == 2.0));
        for (&v, &m) in y.iter().zip(&mask) {
            assert_eq!(v, 2.0 * m);
            assert!(m == 0.0 || m == 1.0 / 0.75);
        }
        // the mask of a row depends on its visit number alone
        let mut y2 = vec![2.0_f64; 10 * width];
        let (mut k2, mut m2) = (vec![0.0; 10 * width], vec![0.0; 10 * width]);
        apply(&dropout, 1, 1005, width, &mut y2, &mut k2, &mut m2);
        assert_eq!(m2[..], mask[5 * width..15 * width]);
        let mut d = vec![f64::NAN; 10 * width];
        backward(&m2, &mut d);
        for (&d, &m) in d.iter().zip(&m2) {
            assert!(if m == 0.0 { d == 0.0 } else { d.is_nan() });
        }
    }
}
