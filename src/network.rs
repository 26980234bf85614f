//! The network's shape and the layout of its parameters in caller-owned buffers.
//!
//! Parameters are handed to the engine as one list of `2L` flat row-major tensors: the `L`
//! coefficient matrices (`units[l] x units[l+1]`, scikit-learn's `coefs_`) followed by the
//! `L` intercept vectors (`intercepts_`). Concatenated, that is also scikit-learn's packed
//! vector for L-BFGS. Gradients and optimizer states use the same list layout.

use crate::activation::Activation;
use crate::error::{ensure_shape, Error, Result};
use crate::real::Real;

/// The sizes of a network's layers, and through them the layout of its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `[n_features, hidden..., n_outputs]`.
    pub units: Vec<usize>,
}

impl Layout {
    /// A layout of `units` (`[n_features, hidden..., n_outputs]`, all positive).
    pub fn new(units: Vec<usize>) -> Result<Self> {
        if units.len() < 2 || units.contains(&0) {
            return Err(Error::Value(format!(
                "a network needs at least an input and an output layer, all of positive \
                 size; got {units:?}"
            )));
        }
        Ok(Self { units })
    }

    /// Number of weight layers `L`.
    pub fn n_layers(&self) -> usize {
        self.units.len() - 1
    }

    /// Number of input features.
    pub fn n_inputs(&self) -> usize {
        self.units[0]
    }

    /// Number of outputs.
    pub fn n_outputs(&self) -> usize {
        self.units[self.units.len() - 1]
    }

    /// Lengths of the `2L` tensors, coefficients first.
    pub fn tensor_lens(&self) -> Vec<usize> {
        let l = self.n_layers();
        (0..l)
            .map(|i| self.units[i] * self.units[i + 1])
            .chain((0..l).map(|i| self.units[i + 1]))
            .collect()
    }

    /// Total number of parameters (the length of the packed vector).
    pub fn n_params(&self) -> usize {
        self.tensor_lens().iter().sum()
    }

    /// Checks that `tensors` has this layout's count and lengths.
    pub fn check<T>(&self, what: &str, tensors: &[impl AsRef<[T]>]) -> Result<()> {
        let count = 2 * self.n_layers();
        ensure_shape(tensors.len() == count, || {
            format!("{what}: expected {count} arrays, got {}", tensors.len())
        })?;
        for (i, t) in tensors.iter().enumerate() {
            let n = self.tensor_len(i);
            ensure_shape(t.as_ref().len() == n, || {
                format!("{what}[{i}]: expected {n} values, got {}", t.as_ref().len())
            })?;
        }
        Ok(())
    }

    /// Length of tensor `i` of the `2L` layout (without allocating, for hot paths).
    pub fn tensor_len(&self, i: usize) -> usize {
        let l = self.n_layers();
        if i < l {
            self.units[i] * self.units[i + 1]
        } else {
            self.units[i - l + 1]
        }
    }

    /// Splits a packed vector into its `2L` tensors.
    pub fn split<'a, T>(&self, packed: &'a [T]) -> Result<Vec<&'a [T]>> {
        ensure_shape(packed.len() == self.n_params(), || {
            format!(
                "packed parameters: expected {} values, got {}",
                self.n_params(),
                packed.len()
            )
        })?;
        let mut rest = packed;
        Ok(self
            .tensor_lens()
            .into_iter()
            .map(|n| {
                let (head, tail) = rest.split_at(n);
                rest = tail;
                head
            })
            .collect())
    }

    /// Glorot-uniform initial parameters (bound `sqrt(f / (fan_in + fan_out))`, `f = 2`
    /// for logistic units and 6 otherwise) from a small deterministic generator. The
    /// Python estimators draw theirs with NumPy instead, to match scikit-learn's stream.
    pub fn glorot<T: Real>(&self, activation: Activation, seed: u64) -> Vec<Vec<T>> {
        let factor = if activation == Activation::Logistic {
            2.0
        } else {
            6.0
        };
        let mut rng = SplitMix64(seed);
        let l = self.n_layers();
        let bounds: Vec<f64> = (0..l)
            .map(|i| (factor / (self.units[i] + self.units[i + 1]) as f64).sqrt())
            .collect();
        let mut tensors: Vec<Vec<T>> = self
            .tensor_lens()
            .into_iter()
            .map(|n| vec![T::zero(); n])
            .collect();
        for (i, t) in tensors.iter_mut().enumerate() {
            let bound = bounds[i % l];
            t.iter_mut()
                .for_each(|v| *v = T::from_f64(bound * (2.0 * rng.next_f64() - 1.0)));
        }
        tensors
    }
}

/// A tiny, good-enough generator for initialisation and shuffling inside pure-Rust use.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0), by rejection so it is unbiased.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Fisher-Yates shuffle in place.
    pub fn shuffle<X>(&mut self, items: &mut [X]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_lens_and_split() {
        let l = Layout::new(vec![3, 4, 2]).unwrap();
        assert_eq!(l.tensor_lens(), vec![12, 8, 4, 2]);
        let packed: Vec<f64> = (0..26).map(|i| i as f64).collect();
        let parts = l.split(&packed).unwrap();
        assert_eq!(parts[2], &[20.0, 21.0, 22.0, 23.0]);
        assert!(l.split(&packed[..25]).is_err());
        assert!(Layout::new(vec![3, 0, 2]).is_err());
    }

    #[test]
    fn glorot_respects_bounds() {
        let l = Layout::new(vec![10, 5, 1]).unwrap();
        let p = l.glorot::<f64>(Activation::Relu, 1);
        let b0 = (6.0_f64 / 15.0).sqrt();
        assert!(p[0].iter().all(|v| v.abs() <= b0));
        assert!(p[0].iter().any(|v| v.abs() > 0.5 * b0));
    }
}
