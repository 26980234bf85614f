//! Per-fit buffers, sized once for the largest batch so the epoch loop never allocates.

use crate::bf16::PackedB;
use crate::data::{BatchBuffers, Dataset, Rows, SparseBatch};
use crate::dropout::Dropout;
use crate::error::Result;
use crate::gemm::Precision;
use crate::memory;
use crate::narrow;
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
    /// The gathered input rows (`capacity x units[0]`; empty for a sparse X).
    pub x: Vec<T>,
    /// The gathered entries of a sparse X (CSR rows), when the input is sparse.
    pub sparse: Option<SparseBatch<T>>,
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
    /// Per hidden layer with dropout (else empty): its outputs before dropout...
    pub kept: Vec<Vec<T>>,
    /// ...and its mask (0 or `1 / (1 - p)`); `acts` holds the dropped outputs.
    pub masks: Vec<Vec<T>>,
    /// How the passes over these buffers compute their matrix products.
    pub precision: Precision,
    /// The weights of a layer of few units, transposed, for the fused error signals of
    /// the layer below it (backward passes; `Net::backward_deltas_with`).
    pub narrow_wt: Vec<T>,
    /// Each layer's error signals packed for bfloat16 products by the backward pass
    /// that computed them (empty after a pass that did not), so that the weight
    /// gradient's chunks share one packing.
    pub(crate) packed_deltas: Vec<PackedB>,
}

impl<T: Real> Workspace<T> {
    /// Buffers for passes over up to `capacity` rows; a memory error names the first
    /// buffer that could not be allocated.
    pub fn new(layout: &Layout, capacity: usize, passes: Passes) -> Result<Self> {
        Self::build(layout, capacity, passes, true)
    }

    /// [`Workspace::new`] for passes over rows of `x`: a sparse X gathers its entries
    /// (no dense `capacity x n_features` buffer), and so does a dense one whose rows
    /// the passes read where they lie (`in_place`: a C-ordered X in a prediction), so
    /// that no call allocates and zeroes a buffer it never uses (a 100-row prediction
    /// of 784 features zeroed 627 KB: ~7 % of its time).
    pub(crate) fn for_rows(
        layout: &Layout,
        capacity: usize,
        passes: Passes,
        x: &Rows<'_, T>,
        in_place: bool,
    ) -> Result<Self> {
        let mut ws = Self::build(layout, capacity, passes, !x.is_sparse() && !in_place)?;
        if x.is_sparse() {
            ws.sparse = Some(SparseBatch::default());
        }
        Ok(ws)
    }

    /// [`Workspace::new`], with the dense buffer X's rows are gathered into or not.
    fn build(layout: &Layout, capacity: usize, passes: Passes, dense_x: bool) -> Result<Self> {
        let capacity = capacity.max(1);
        let block = |units: usize, what: &str| {
            let what = || format!("{what} ({capacity} x {units} {})", T::DTYPE);
            let len = memory::product(capacity, units, what)?;
            memory::filled(len, T::zero(), what)
        };
        let layers = &layout.units[1..];
        let per_layer = |what: &str| -> Result<Vec<Vec<T>>> {
            (0..layers.len())
                .map(|l| block(layers[l], &format!("{what} of layer {}", l + 1)))
                .collect()
        };
        let backward = passes != Passes::Forward;
        Ok(Self {
            capacity,
            x: match dense_x {
                true => block(layout.n_inputs(), "the gathered samples")?,
                false => Vec::new(),
            },
            sparse: None,
            y: block(layout.n_outputs(), "the gathered targets")?,
            n_outputs: layout.n_outputs(),
            one_hot: false,
            classes: memory::filled(capacity, 0, || "class indices".into())?,
            w: block(1, "the gathered sample weights")?,
            acts: per_layer("the outputs")?,
            // error signals and their column sums only for backward passes
            deltas: if backward {
                per_layer("the error signals")?
            } else {
                Vec::new()
            },
            delta_sums: if backward {
                layers.iter().map(|&u| vec![T::zero(); u]).collect()
            } else {
                Vec::new()
            },
            grads: if passes == Passes::Gradients {
                gradient_buffers(layout)?
            } else {
                Vec::new()
            },
            kept: Vec::new(),
            masks: Vec::new(),
            precision: Precision::Exact,
            // (only f64 models fuse those passes: see `Net::fuses_error`)
            packed_deltas: Vec::new(),
            narrow_wt: if backward && T::DTYPE == f64::DTYPE {
                let largest = (1..layers.len())
                    .filter(|&l| layers[l] <= narrow::MAX_COLUMNS)
                    .map(|l| layers[l - 1] * layers[l])
                    .max()
                    .unwrap_or(0);
                memory::filled(largest, T::zero(), || "transposed weights".into())?
            } else {
                Vec::new()
            },
        })
    }

    /// Buffers for the dropout of the hidden layers `dropout` drops from.
    pub(crate) fn with_dropout(mut self, layout: &Layout, dropout: &Dropout) -> Result<Self> {
        let hidden = layout.n_layers() - 1;
        let buffer = |l: usize, what: &str| {
            if !dropout.active(l) {
                return Ok(Vec::new());
            }
            let units = layout.units[l + 1];
            let what = || format!("{what} of layer {} ({} x {units})", l + 1, self.capacity);
            let len = memory::product(self.capacity, units, what)?;
            memory::filled(len, T::zero(), what)
        };
        let kept = (0..hidden).map(|l| buffer(l, "the outputs before dropout"));
        let kept = kept.collect::<Result<Vec<_>>>()?;
        let masks = (0..hidden).map(|l| buffer(l, "the dropout mask"));
        self.masks = masks.collect::<Result<Vec<_>>>()?;
        self.kept = kept;
        Ok(self)
    }

    /// The bytes [`Workspace::new`] allocates (for a message before trying).
    pub fn bytes(layout: &Layout, capacity: usize, passes: Passes) -> usize {
        let capacity = capacity.max(1);
        let units: usize = layout.units.iter().sum();
        let layers = units - layout.n_inputs();
        let mut values = capacity.saturating_mul(units + 1 + layout.n_outputs());
        if passes != Passes::Forward {
            values = values.saturating_add(capacity.saturating_mul(layers) + layers);
        }
        if passes == Passes::Gradients {
            values = values.saturating_add(layout.n_params());
        }
        memory::bytes_of::<T>(values).saturating_add(memory::bytes_of::<usize>(capacity))
    }
}

/// One buffer per parameter tensor, in the `2L` layout.
fn gradient_buffers<T: Real>(layout: &Layout) -> Result<Vec<Vec<T>>> {
    layout
        .tensor_lens()
        .into_iter()
        .enumerate()
        .map(|(i, n)| memory::filled(n, T::zero(), || format!("gradient tensor {i}")))
        .collect()
}

impl<T: Real> Workspace<T> {
    /// Gathers rows `which` of `data` (samples, targets, weights) into the buffers;
    /// returns the sum of their weights (their count when unweighted).
    pub fn gather(&mut self, data: &Dataset<'_, T>, which: &[usize]) -> Result<T> {
        self.gather_rows(data, which.iter().copied(), true)
    }

    /// [`Workspace::gather`] of the rows' targets and weights alone (their samples are
    /// read elsewhere).
    pub(crate) fn gather_targets(&mut self, data: &Dataset<'_, T>, which: &[usize]) -> Result<T> {
        self.gather_rows(data, which.iter().copied(), false)
    }

    /// Gathers the contiguous rows `start..start + len`; with `with_x` false only their
    /// targets and weights (what a score's second pass needs).
    pub fn gather_range(
        &mut self,
        data: &Dataset<'_, T>,
        start: usize,
        len: usize,
        with_x: bool,
    ) -> Result<T> {
        self.gather_rows(data, start..start + len, with_x)
    }

    fn gather_rows(
        &mut self,
        data: &Dataset<'_, T>,
        which: impl ExactSizeIterator<Item = usize> + Clone,
        with_x: bool,
    ) -> Result<T> {
        let dst = BatchBuffers {
            x: &mut self.x,
            sparse: self.sparse.as_mut(),
            y: &mut self.y,
            n_outputs: self.n_outputs,
            classes: &mut self.classes,
            w: &mut self.w,
        };
        let gathered = data.gather_rows(which, with_x, dst)?;
        self.one_hot = gathered.one_hot;
        Ok(gathered.weight_sum)
    }
}
