//! Per-unit activation statistics, reduced on the device batch by batch.
//!
//! Each batch's `[observations, units]` pre- and post-activation matrices are reduced to a few
//! `[1, units]` rows on the device and added to running sums there; only those small vectors come
//! back to the host, once, at the end, plus a sample of the first chunk (at most
//! [`HISTOGRAM_ROWS`] rows) for the histograms. Memory is O(units) whatever the number of rows
//! probed.

use burn::tensor::Tensor;

use crate::batch::host_values;
use nd_spec::Activation;
use serde::{Deserialize, Serialize};

/// sigmoid output below this or above 1 minus this counts as saturated.
pub const SIGMOID_SATURATION: f64 = 0.01;
/// tanh |output| above this counts as saturated.
pub const TANH_SATURATION: f64 = 0.99;
/// A unit is saturated when it is saturated on at least this fraction of its inputs.
pub const SATURATED_UNIT_FRACTION: f64 = 0.9;
/// Bins of every histogram.
pub const HISTOGRAM_BINS: usize = 40;

/// A histogram of all the values at one site (all units together).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub low: f64,
    /// Right edge of the last bin.
    pub high: f64,
    /// Values per bin (non-finite values are left out).
    pub counts: Vec<u64>,
}

/// One activation site's statistics, per unit (post-activation unless named `pre`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteStats {
    /// `hidden.0`, `conv.1`, ...
    pub name: String,
    /// The activation at this site.
    pub activation: Activation,
    /// Units (channels for conv).
    pub units: usize,
    /// Values seen per unit (rows, or rows x pixels for conv).
    pub observations: usize,
    /// Per unit: fraction of observations with pre-activation <= 0.
    pub inactive_fraction: Vec<f64>,
    /// Per unit: fraction of observations in the saturated range (sigmoid and tanh only).
    pub saturated_fraction: Vec<f64>,
    /// Per unit mean.
    pub mean: Vec<f64>,
    /// Per unit standard deviation.
    pub std: Vec<f64>,
    /// Per unit mean |output|, ReDo's activity score before normalization.
    pub mean_abs: Vec<f64>,
    /// Per unit minimum.
    pub min: Vec<f64>,
    /// Per unit maximum.
    pub max: Vec<f64>,
    /// Per unit maximum pre-activation.
    pub pre_max: Vec<f64>,
    /// Histogram of pre-activation values (first [`HISTOGRAM_ROWS`] rows).
    pub pre_histogram: Histogram,
    /// Histogram of post-activation values (first [`HISTOGRAM_ROWS`] rows).
    pub post_histogram: Histogram,
}

impl SiteStats {
    /// Whether units at this site can be dead: the relu family, whose output and gradient
    /// (nearly) vanish for negative pre-activations.
    pub fn can_die(&self) -> bool {
        self.activation.is_relu_family()
    }

    /// Units inactive on every observation (relu family only): their largest pre-activation
    /// is <= 0.
    pub fn dead_units(&self) -> Vec<usize> {
        if !self.can_die() {
            return Vec::new();
        }
        (0..self.units)
            .filter(|&u| self.pre_max[u] <= 0.0)
            .collect()
    }

    /// Dead units over all units.
    pub fn dead_fraction(&self) -> f64 {
        self.dead_units().len() as f64 / self.units.max(1) as f64
    }

    /// ReDo's dormant units: mean |output| over the layer's average mean |output| is at most
    /// `tau`. When the whole layer is silent every unit is dormant.
    pub fn dormant_units(&self, tau: f64) -> Vec<usize> {
        let layer_mean = self.mean_abs.iter().sum::<f64>() / self.units.max(1) as f64;
        (0..self.units)
            .filter(|&u| layer_mean <= 0.0 || self.mean_abs[u] / layer_mean <= tau)
            .collect()
    }

    /// Units saturated on at least [`SATURATED_UNIT_FRACTION`] of their observations.
    pub fn saturated_units(&self) -> Vec<usize> {
        (0..self.units)
            .filter(|&u| self.saturated_fraction[u] >= SATURATED_UNIT_FRACTION)
            .collect()
    }

    /// Saturated units over all units.
    pub fn saturated_fraction_of_units(&self) -> f64 {
        self.saturated_units().len() as f64 / self.units.max(1) as f64
    }

    /// True when any statistic is NaN or infinite.
    pub fn has_non_finite(&self) -> bool {
        [
            &self.inactive_fraction,
            &self.saturated_fraction,
            &self.mean,
            &self.std,
            &self.mean_abs,
            &self.min,
            &self.max,
            &self.pre_max,
        ]
        .iter()
        .any(|values| values.iter().any(|v| !v.is_finite()))
    }
}

/// Running sums for one site, kept on the device.
pub(crate) struct SiteAccumulator {
    name: String,
    activation: Activation,
    leaky_slope: f64,
    units: usize,
    observations: usize,
    /// Rows: inactive, saturated, sum, sum of squares about [`Self::shift`], sum |x|;
    /// `[5, units]`.
    sums: Option<Tensor<2>>,
    /// Each unit's mean over the first chunk, `[1, units]`: squares are summed about it, not
    /// about zero. A saturated unit sits near 1 with a tiny spread, and E[x^2] - E[x]^2 in f32
    /// would lose that spread to rounding (about sqrt(f32 epsilon) = 3e-4 of noise in the std).
    shift: Option<Tensor<2>>,
    min: Option<Tensor<2>>,
    max: Option<Tensor<2>>,
    pre_max: Option<Tensor<2>>,
    pre_hist: Option<HistogramAccumulator>,
    post_hist: Option<HistogramAccumulator>,
}

impl SiteAccumulator {
    pub(crate) fn new(
        name: String,
        activation: Activation,
        leaky_slope: f64,
        units: usize,
    ) -> Self {
        Self {
            name,
            activation,
            leaky_slope,
            units,
            observations: 0,
            sums: None,
            shift: None,
            min: None,
            max: None,
            pre_max: None,
            pre_hist: None,
            post_hist: None,
        }
    }

    pub(crate) fn add(&mut self, pre: Tensor<2>, post: Tensor<2>) {
        let [rows, _] = post.dims();
        self.observations += rows;
        // Column sums as a [1, rows] x [rows, units] product: ndarray reduces along the batch
        // axis with strided reads, several times slower than its matrix product.
        let ones = Tensor::<2>::ones([1, rows], &pre.device());
        let column_sum = |x: Tensor<2>| ones.clone().matmul(x);
        let inactive = column_sum(pre.clone().lower_equal_elem(0.0).float());
        let saturated = match self.activation {
            Activation::Sigmoid => column_sum(
                post.clone()
                    .lower_elem(SIGMOID_SATURATION)
                    .bool_or(post.clone().greater_elem(1.0 - SIGMOID_SATURATION))
                    .float(),
            ),
            Activation::Tanh => {
                column_sum(post.clone().abs().greater_elem(TANH_SATURATION).float())
            }
            _ => inactive.clone().zeros_like(),
        };
        let sum = column_sum(post.clone());
        let shift = self
            .shift
            .get_or_insert_with(|| sum.clone() / rows as f64)
            .clone();
        let centered = post.clone() - shift;
        let sum_sq = column_sum(centered.clone() * centered);
        // relu, sigmoid and softplus never go negative: |x| is x.
        let sum_abs = if matches!(
            self.activation,
            Activation::Relu | Activation::Sigmoid | Activation::Softplus
        ) {
            sum.clone()
        } else {
            column_sum(post.clone().abs())
        };
        let batch = Tensor::cat(vec![inactive, saturated, sum, sum_sq, sum_abs], 0);
        self.sums = Some(match self.sums.take() {
            Some(acc) => acc + batch,
            None => batch,
        });
        // For a non-decreasing activation f, max f(x) = f(max x) and min f(x) = f(min x): the
        // post-activation extremes follow from the pre-activation ones on the host. GELU and
        // SiLU dip below zero and need their own.
        let monotonic = !matches!(self.activation, Activation::Gelu | Activation::Silu);
        let (min, max) = if monotonic {
            (pre.clone().min_dim(0), None)
        } else {
            (post.clone().min_dim(0), Some(post.clone().max_dim(0)))
        };
        let pre_max = pre.clone().max_dim(0);
        self.min = Some(match self.min.take() {
            Some(acc) => acc.min_pair(min),
            None => min,
        });
        if let Some(max) = max {
            self.max = Some(match self.max.take() {
                Some(acc) => acc.max_pair(max),
                None => max,
            });
        }
        self.pre_max = Some(match self.pre_max.take() {
            Some(acc) => acc.max_pair(pre_max),
            None => pre_max,
        });
        // Last: the histograms take the traces by value.
        if self.pre_hist.is_none() {
            self.pre_hist = Some(HistogramAccumulator::new(pre));
            self.post_hist = Some(HistogramAccumulator::new(post));
        }
    }

    pub(crate) fn finish(self) -> SiteStats {
        let units = self.units;
        let n = self.observations.max(1) as f64;
        let host = |t: Option<Tensor<2>>| -> Vec<f64> {
            t.map(|t| host_values(t).into_iter().map(f64::from).collect())
                .unwrap_or_else(|| vec![0.0; units])
        };
        let monotonic = !matches!(self.activation, Activation::Gelu | Activation::Silu);
        let pre_max = host(self.pre_max);
        let (min, max) = if monotonic {
            let f = |x: f64| activate(self.activation, self.leaky_slope, x);
            let pre_min = host(self.min);
            (
                pre_min.into_iter().map(f).collect(),
                pre_max.iter().map(|&x| f(x)).collect(),
            )
        } else {
            (host(self.min), host(self.max))
        };
        let shift = host(self.shift);
        let sums = host(self.sums);
        let (sums, row) = (
            if sums.len() == 5 * units {
                sums
            } else {
                vec![0.0; 5 * units]
            },
            |r: usize| r * units..(r + 1) * units,
        );
        let inactive_fraction = sums[row(0)].iter().map(|v| v / n).collect();
        let saturated_fraction = sums[row(1)].iter().map(|v| v / n).collect();
        let mean: Vec<f64> = sums[row(2)].iter().map(|v| v / n).collect();
        // Var x = E[(x - c)^2] - (E[x] - c)^2 for the per-unit shift c.
        let std = sums[row(3)]
            .iter()
            .zip(&mean)
            .zip(&shift)
            .map(|((sq, m), c)| (sq / n - (m - c) * (m - c)).max(0.0).sqrt())
            .collect();
        let mean_abs = sums[row(4)].iter().map(|v| v / n).collect();
        SiteStats {
            name: self.name,
            activation: self.activation,
            units,
            observations: self.observations,
            inactive_fraction,
            saturated_fraction,
            mean,
            std,
            mean_abs,
            min,
            max,
            pre_max,
            pre_histogram: self
                .pre_hist
                .map(HistogramAccumulator::finish)
                .unwrap_or_else(Histogram::empty),
            post_histogram: self
                .post_hist
                .map(HistogramAccumulator::finish)
                .unwrap_or_else(Histogram::empty),
        }
    }
}

/// A hidden activation on one value, for statistics derived on the host.
pub fn activate(activation: Activation, leaky_slope: f64, x: f64) -> f64 {
    const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
    const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    match activation {
        Activation::Relu => x.max(0.0),
        Activation::LeakyRelu => {
            if x > 0.0 {
                x
            } else {
                leaky_slope * x
            }
        }
        Activation::Elu => {
            if x > 0.0 {
                x
            } else {
                x.exp_m1()
            }
        }
        Activation::Selu => SELU_SCALE * if x > 0.0 { x } else { SELU_ALPHA * x.exp_m1() },
        Activation::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        Activation::Silu => x * sigmoid(x),
        Activation::Softplus => {
            if x > 20.0 {
                x
            } else {
                x.exp().ln_1p()
            }
        }
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => x.tanh(),
        Activation::Identity => x,
    }
}

/// The error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x >= 0.0 {
        y
    } else {
        -y
    }
}

impl Histogram {
    fn empty() -> Histogram {
        Histogram {
            low: 0.0,
            high: 0.0,
            counts: vec![0; HISTOGRAM_BINS],
        }
    }

    /// All values counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Rows of the first chunk that the histograms are drawn from.
pub const HISTOGRAM_ROWS: usize = 256;

/// A histogram of up to [`HISTOGRAM_ROWS`] rows of one chunk, binned on the host. Histograms are
/// for looking at, so a sample is enough; counting every value on the device cost more than the
/// forward pass itself.
struct HistogramAccumulator {
    histogram: Histogram,
}

impl HistogramAccumulator {
    /// Takes the tensor by value: the trace's own buffer comes back without a copy.
    fn new(first: Tensor<2>) -> Self {
        let [rows, cols] = first.dims();
        let take = rows.min(HISTOGRAM_ROWS);
        let sample = if take < rows {
            first.slice([0..take, 0..cols])
        } else {
            first
        };
        let values: Vec<f64> = host_values(sample)
            .into_iter()
            .map(f64::from)
            .filter(|v| v.is_finite())
            .collect();
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (low, high) = if !(low.is_finite() && high.is_finite()) {
            (-1.0, 1.0)
        } else if high - low < 1e-6 {
            (low - 0.5, high + 0.5)
        } else {
            let pad = (high - low) * 0.05;
            (low - pad, high + pad)
        };
        let width = (high - low) / HISTOGRAM_BINS as f64;
        let mut counts = vec![0u64; HISTOGRAM_BINS];
        for v in values {
            let bin = (((v - low) / width) as usize).min(HISTOGRAM_BINS - 1);
            counts[bin] += 1;
        }
        Self {
            histogram: Histogram { low, high, counts },
        }
    }

    fn finish(self) -> Histogram {
        self.histogram
    }
}
