//! Per-fit buffers, sized once for the largest batch so the epoch loop never allocates.

use crate::data::{BatchBuffers, Dataset};
use crate::network::Layout;
use crate::real::Real;

/// Which passes a workspace has buffers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passes {
    /// Forward passes only (prediction, scoring).
    Forward,
    /// Forward passes and error signals (the batch parts of training).
    Deltas,
    /// Forward passes, error signals and full gradients.
    Gradients,
}

pub struct Workspace<T> {
    /// Rows per batch the buffers can hold.
    pub capacity: usize,
    /// The gathered input rows (`capacity x units[0]`).
    pub x: Vec<T>,
    /// The gathered targets (`capacity x n_outputs`).
    pub y: Vec<T>,
    pub n_outputs: usize,
    /// Whether the targets gathered last are one-hot rows, with their classes in
    /// `classes`.
    pub one_hot: bool,
    /// The class of each gathered row, when `one_hot`.
    pub classes: Vec<usize>,
    /// The gathered sample weights.
    pub w: Vec<T>,
    /// Outputs of layers `1..=L` (`capacity x units[l]`).
    pub acts: Vec<Vec<T>>,
    /// Error signals with respect to the pre-activations of layers `1..=L`.
    pub deltas: Vec<Vec<T>>,
    /// Column sums of the error signals of layers `1..=L` (one per unit): the raw
    /// intercept gradients, summed in the pass that writes the error signals.
    pub delta_sums: Vec<Vec<T>>,
    /// Gradients, in the parameters' `2L` layout.
    pub grads: Vec<Vec<T>>,
}

impl<T: Real> Workspace<T> {
    pub fn new(layout: &Layout, capacity: usize, passes: Passes) -> Self {
        let capacity = capacity.max(1);
        let per_layer = |u: &usize| vec![T::zero(); capacity * u];
        let layers = &layout.units[1..];
        // error signals and their column sums only for backward passes
        let (deltas, delta_sums) = if passes != Passes::Forward {
            (
                layers.iter().map(per_layer).collect(),
                layers.iter().map(|&u| vec![T::zero(); u]).collect(),
            )
        } else {
            Default::default()
        };
        Self {
            capacity,
            x: vec![T::zero(); capacity * layout.n_inputs()],
            y: vec![T::zero(); capacity * layout.n_outputs()],
            n_outputs: layout.n_outputs(),
            one_hot: false,
            classes: vec![0; capacity],
            w: vec![T::zero(); capacity],
            acts: layers.iter().map(per_layer).collect(),
            deltas,
            delta_sums,
            grads: if passes == Passes::Gradients {
                layout
                    .tensor_lens()
                    .into_iter()
                    .map(|n| vec![T::zero(); n])
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

impl<T: Real> Workspace<T> {
    /// Gathers rows `which` of `data` (samples, targets, weights) into the buffers;
    /// returns the sum of their weights (their count when unweighted).
    pub fn gather(&mut self, data: &Dataset<'_, T>, which: &[usize]) -> T {
        self.gather_rows(data, which.iter().copied(), true)
    }

    /// Gathers the contiguous rows `start..start + len`; with `with_x` false only their
    /// targets and weights (what a score's second pass needs).
    pub fn gather_range(
        &mut self,
        data: &Dataset<'_, T>,
        start: usize,
        len: usize,
        with_x: bool,
    ) -> T {
        self.gather_rows(data, start..start + len, with_x)
    }

    fn gather_rows(
        &mut self,
        data: &Dataset<'_, T>,
        which: impl ExactSizeIterator<Item = usize> + Clone,
        with_x: bool,
    ) -> T {
        let dst = BatchBuffers {
            x: &mut self.x,
            y: &mut self.y,
            n_outputs: self.n_outputs,
            classes: &mut self.classes,
            w: &mut self.w,
        };
        let gathered = data.gather_rows(which, with_x, dst);
        self.one_hot = gathered.one_hot;
        gathered.weight_sum
    }
}
