//! The probe pass: one inference pass over a split for activation statistics, one backward pass
//! over a probe batch for gradient statistics, and a look at every layer's weights.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use nd_data::Split;
use nd_models::{expected_std, LayerKind, Network};
use serde::{Deserialize, Serialize};

use crate::activations::{SiteAccumulator, SiteStats};
use crate::batch::{features, loss};

/// How much data the probe looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Probe at most this many rows of the split (`None` = all).
    pub limit: Option<usize>,
    /// Rows in the backward pass for gradient statistics. 0 skips the backward pass (gradient
    /// statistics are then 0 and the loss NaN, which the rules read as non-finite): only for
    /// measuring the activation pass alone.
    pub grad_batch: usize,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            limit: None,
            grad_batch: 512,
        }
    }
}

/// One layer's weight and gradient statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    /// `conv.0`, `hidden.1`, `output`.
    pub name: String,
    /// Inputs per unit.
    pub fan_in: usize,
    /// Units.
    pub units: usize,
    /// Standard deviation of the weights.
    pub weight_std: f64,
    /// What He, Glorot or LeCun recommends for this layer's fans and activation.
    pub expected_weight_std: f64,
    /// L2 norm of the weights.
    pub weight_norm: f64,
    /// Mean bias.
    pub bias_mean: f64,
    /// The layer's mean pre-activation (over its units and the probed rows), where it follows
    /// from the weights: for a dense layer whose input means are known (the data's columns for
    /// the first layer, the previous dense layer's outputs after it), `mean(input) . W + b`.
    /// `None` in convolutional and batch-normalized networks.
    /// Minus [`LayerStats::bias_mean`], what the weights contribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_mean: Option<f64>,
    /// Fraction of biases > 0.
    pub bias_positive_fraction: f64,
    /// L2 norm of the weight gradient.
    pub grad_norm: f64,
    /// L2 norm of the bias gradient.
    pub bias_grad_norm: f64,
    /// Root mean square of the weight gradient entries (size-independent).
    pub grad_rms: f64,
    /// `grad_norm / weight_norm`.
    pub grad_to_weight: f64,
    /// Fraction of weight-gradient entries exactly 0.
    pub zero_grad_fraction: f64,
}

/// Statistics of the network's output over the probed rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputStats {
    /// Per output: mean.
    pub mean: Vec<f64>,
    /// Per output: standard deviation over rows.
    pub std: Vec<f64>,
    /// Smallest output value.
    pub min: f64,
    /// Largest output value.
    pub max: f64,
    /// Fraction of output values exactly 0.
    pub zero_fraction: f64,
}

impl OutputStats {
    /// True when every output is the same for every input: nothing reaches the head.
    pub fn is_constant(&self) -> bool {
        let scale = self.mean.iter().map(|m| m.abs()).fold(1e-3, f64::max);
        self.std.iter().all(|s| *s <= 1e-6 * scale)
    }
}

/// Everything the probe measured on one network and one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Rows probed.
    pub samples: usize,
    /// Per activation site.
    pub sites: Vec<SiteStats>,
    /// Per layer (hidden layers, then `output`).
    pub layers: Vec<LayerStats>,
    /// The output.
    pub output: OutputStats,
    /// Loss on the gradient batch.
    pub loss: f64,
    /// First layer's gradient RMS over the output layer's.
    pub gradient_ratio: f64,
}

impl Probe {
    /// The site named `name`.
    pub fn site(&self, name: &str) -> Option<&SiteStats> {
        self.sites.iter().find(|s| s.name == name)
    }

    /// The layer named `name`.
    pub fn layer(&self, name: &str) -> Option<&LayerStats> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// All dead units over all units that can die.
    pub fn dead_fraction(&self) -> f64 {
        let (dead, units) = self
            .sites
            .iter()
            .filter(|s| s.can_die())
            .fold((0, 0), |(d, u), s| (d + s.dead_units().len(), u + s.units));
        dead as f64 / units.max(1) as f64
    }
}

/// Rows per probe chunk: the activations of a chunk stay well below 2^24 values per site, so
/// per-batch counts are exact in f32.
fn chunk_rows(network: &Network, split: &Split) -> usize {
    let width = split.features.len() / split.rows.max(1);
    let widest = network.sites().iter().map(|s| s.units).max().unwrap_or(1);
    let per_row = if network.sites().iter().any(|s| s.kind == LayerKind::Conv) {
        width * widest
    } else {
        widest
    };
    (4_000_000 / per_row.max(1)).clamp(1, 1024)
}

/// Probes `network` on `split`. `device` is the autodiff device the network lives on.
pub fn probe(network: &Network, split: &Split, device: &Device, options: &ProbeOptions) -> Probe {
    let rows = options.limit.map_or(split.rows, |l| l.min(split.rows));
    let inference = network.valid();
    let mut accumulators: Vec<SiteAccumulator> = network
        .sites()
        .iter()
        .map(|s| SiteAccumulator::new(s.name.clone(), s.activation, network.leaky_slope(), s.units))
        .collect();
    let mut output = OutputAccumulator::default();
    let all: Vec<usize> = (0..rows).collect();
    for chunk in all.chunks(chunk_rows(network, split)) {
        let (out, traces) = inference.forward_traced(features(split, chunk, device));
        for (acc, trace) in accumulators.iter_mut().zip(traces) {
            acc.add(trace.pre, trace.post);
        }
        output.add(out);
    }
    let sites: Vec<SiteStats> = accumulators
        .into_iter()
        .map(SiteAccumulator::finish)
        .collect();

    let grad_rows: Vec<usize> = (0..rows.min(options.grad_batch)).collect();
    let (loss_value, grads) = if grad_rows.is_empty() {
        (f64::NAN, Vec::new())
    } else {
        // Gradients of the training loss with dropout off: the same numbers on every probe, and
        // comparable between a model with dropout and its twin without (batch norm, if any,
        // normalizes with the probe batch's statistics, as in training).
        let trainable = network.clone().without_dropout().train();
        let out = trainable.forward(features(split, &grad_rows, device));
        let loss = loss(out, &split.targets, &grad_rows, device);
        let loss_value = loss.clone().into_scalar::<f32>() as f64;
        let gradients = loss.backward();
        (loss_value, trainable.layer_grads(&gradients))
    };
    let params = network.layer_params();
    let mut layers = Vec::new();
    // The mean of each layer's input, while it is known (see `LayerStats::pre_mean`).
    let mut input_mean: Option<Vec<f64>> = (!network.batch_norm()
        && network
            .sites()
            .first()
            .is_some_and(|s| s.kind == LayerKind::Dense))
    .then(|| column_means(split, rows));
    for (i, info) in network.layers().iter().enumerate() {
        let weight = &params[i].weight;
        let weight_values = host(weight.clone());
        let weight_norm = l2(&weight_values);
        let bias_values = params[i].bias.clone().map(host).unwrap_or_default();
        let (grad, bias_grad) = grads.get(i).cloned().unwrap_or((None, None));
        let pre_mean = input_mean
            .as_ref()
            .filter(|m| m.len() == info.fan_in && info.kind != LayerKind::Conv)
            .map(|m| {
                let units = info.units;
                let total: f64 = (0..units)
                    .map(|u| {
                        let bias = bias_values.get(u).copied().unwrap_or(0.0);
                        bias + m
                            .iter()
                            .enumerate()
                            .map(|(r, x)| x * weight_values[r * units + u])
                            .sum::<f64>()
                    })
                    .sum();
                total / units.max(1) as f64
            });
        input_mean = (info.kind == LayerKind::Dense)
            .then(|| sites.get(i).map(|s| s.mean.clone()))
            .flatten()
            .filter(|_| input_mean.is_some());
        let grad_values = grad.map(host).unwrap_or_default();
        let grad_norm = l2(&grad_values);
        layers.push(LayerStats {
            name: info.name.clone(),
            fan_in: info.fan_in,
            units: info.units,
            weight_std: std(&weight_values),
            expected_weight_std: expected_std(
                info.activation,
                network.leaky_slope(),
                info.fan_in,
                info.fan_out,
            ),
            weight_norm,
            bias_mean: mean(&bias_values),
            pre_mean,
            bias_positive_fraction: fraction(&bias_values, |b| b > 0.0),
            grad_norm,
            bias_grad_norm: bias_grad.map(|b| l2(&host(b))).unwrap_or(0.0),
            grad_rms: grad_norm / (grad_values.len().max(1) as f64).sqrt(),
            grad_to_weight: if weight_norm > 0.0 {
                grad_norm / weight_norm
            } else {
                f64::INFINITY
            },
            zero_grad_fraction: fraction(&grad_values, |g| g == 0.0),
        });
    }
    // NaN when there is no ratio to speak of: a single layer, no backward pass, non-finite
    // gradients, or none at all. Never a made-up 1.
    let gradient_ratio = match (layers.first(), layers.last()) {
        (Some(first), Some(last))
            if layers.len() > 1 && first.grad_rms.is_finite() && last.grad_rms.is_finite() =>
        {
            if last.grad_rms > 0.0 {
                first.grad_rms / last.grad_rms
            } else if first.grad_rms > 0.0 {
                f64::INFINITY
            } else {
                f64::NAN
            }
        }
        _ => f64::NAN,
    };
    Probe {
        samples: rows,
        sites,
        layers,
        output: output.finish(),
        loss: loss_value,
        gradient_ratio,
    }
}

#[derive(Default)]
struct OutputAccumulator {
    rows: usize,
    /// Rows: sum, and sum of squares about [`Self::shift`]; `[2, outputs]`.
    sums: Option<Tensor<2>>,
    /// Each output's mean over the first chunk, `[1, outputs]`: squares are summed about it
    /// so that a near-constant output keeps its small spread in f32 (as in the sites' sums).
    shift: Option<Tensor<2>>,
    min: f64,
    max: f64,
    zeros: f64,
    values: usize,
}

impl OutputAccumulator {
    fn add(&mut self, out: Tensor<2>) {
        let [rows, cols] = out.dims();
        let first = self.rows == 0;
        self.rows += rows;
        self.values += rows * cols;
        let sum = out.clone().sum_dim(0);
        let shift = self
            .shift
            .get_or_insert_with(|| sum.clone() / rows as f64)
            .clone();
        let centered = out.clone() - shift;
        let batch = Tensor::cat(vec![sum, (centered.clone() * centered).sum_dim(0)], 0);
        self.sums = Some(match self.sums.take() {
            Some(acc) => acc + batch,
            None => batch,
        });
        let min = out.clone().min().into_scalar::<f32>() as f64;
        let max = out.clone().max().into_scalar::<f32>() as f64;
        self.zeros += out.equal_elem(0.0).float().sum().into_scalar::<f32>() as f64;
        if first {
            (self.min, self.max) = (min, max);
        } else {
            self.min = self.min.min(min);
            self.max = self.max.max(max);
        }
    }

    fn finish(self) -> OutputStats {
        let sums = self.sums.map(host).unwrap_or_default();
        let cols = sums.len() / 2;
        let shift = self.shift.map(host).unwrap_or_else(|| vec![0.0; cols]);
        let n = self.rows.max(1) as f64;
        let mean: Vec<f64> = sums[..cols].iter().map(|s| s / n).collect();
        // Var x = E[(x - c)^2] - (E[x] - c)^2 for the per-output shift c.
        let std = sums[cols..]
            .iter()
            .zip(&mean)
            .zip(&shift)
            .map(|((sq, m), c)| (sq / n - (m - c) * (m - c)).max(0.0).sqrt())
            .collect();
        OutputStats {
            mean,
            std,
            min: self.min,
            max: self.max,
            zero_fraction: self.zeros / self.values.max(1) as f64,
        }
    }
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    crate::batch::host_values(t)
        .into_iter()
        .map(f64::from)
        .collect()
}

fn l2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

fn std(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len().max(1) as f64).sqrt()
}

fn fraction(v: &[f64], pred: impl Fn(f64) -> bool) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().filter(|x| pred(**x)).count() as f64 / v.len() as f64
}

#[cfg(test)]
mod tests;

/// Each feature's mean over the first `rows` rows of a split.
fn column_means(split: &Split, rows: usize) -> Vec<f64> {
    let width = split.features.len().checked_div(split.rows).unwrap_or(0);
    let mut means = vec![0.0; width];
    for row in split.features.chunks(width.max(1)).take(rows) {
        for (m, &x) in means.iter_mut().zip(row) {
            *m += x as f64;
        }
    }
    let n = rows.min(split.rows).max(1) as f64;
    means.iter_mut().for_each(|m| *m /= n);
    means
}
