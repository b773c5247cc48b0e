//! Live health statistics during training, from batches the trainer already computes.
//!
//! On a sampled batch the trainer runs the traced forward pass (the same computation as the
//! plain one, keeping the activation sites) and hands the sites and the gradients to a
//! [`HealthAccumulator`]. Per epoch it yields, per layer, the fraction of units inactive on
//! every sampled row (dead so far this epoch), the fraction saturated on at least 90% of
//! sampled rows, and the weight-gradient norm averaged over the sampled batches. Reductions stay
//! on the device; each epoch brings a few per-unit vectors to the host.

use burn::tensor::{Gradients, Tensor};
use nd_models::{Network, SiteTrace};
use nd_spec::Activation;
use serde::{Deserialize, Serialize};

use crate::activations::{SATURATED_UNIT_FRACTION, SIGMOID_SATURATION, TANH_SATURATION};
use crate::batch::host_values;

/// One layer's health in one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerHealth {
    /// `hidden.0`, ..., `output`.
    pub name: String,
    /// Units inactive on every sampled row (relu family; 0 otherwise).
    #[serde(deserialize_with = "crate::null_as_nan")]
    pub dead_fraction: f64,
    /// Units saturated on at least 90% of sampled rows (sigmoid, tanh; 0 otherwise).
    #[serde(deserialize_with = "crate::null_as_nan")]
    pub saturated_fraction: f64,
    /// Mean L2 norm of the weight gradient over the sampled batches (NaN once it diverged,
    /// written as `null`).
    #[serde(deserialize_with = "crate::null_as_nan")]
    pub grad_norm: f64,
}

/// One epoch's health, as written to `health.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochHealth {
    /// 1-based epoch.
    pub epoch: usize,
    /// Batches sampled.
    pub sampled_batches: usize,
    /// Rows seen by the sampled batches.
    pub sampled_rows: usize,
    /// Per layer, hidden layers then `output` (which has only a gradient norm).
    pub layers: Vec<LayerHealth>,
}

impl EpochHealth {
    /// The layer with the largest dead fraction.
    pub fn most_dead(&self) -> Option<&LayerHealth> {
        self.layers
            .iter()
            .max_by(|a, b| a.dead_fraction.total_cmp(&b.dead_fraction))
    }
}

struct SiteHealth {
    activation: Activation,
    /// Observations seen (rows, or rows x pixels for conv).
    observations: usize,
    pre_max: Option<Tensor<2>>,
    saturated: Option<Tensor<2>>,
}

/// Accumulates one epoch's sampled batches.
pub struct HealthAccumulator {
    names: Vec<String>,
    sites: Vec<SiteHealth>,
    grad_norms: Vec<f64>,
    batches: usize,
    rows: usize,
}

impl HealthAccumulator {
    /// An empty accumulator for `network`'s layers.
    pub fn new(network: &Network) -> Self {
        Self {
            names: network.layers().iter().map(|l| l.name.clone()).collect(),
            sites: network
                .sites()
                .iter()
                .map(|s| SiteHealth {
                    activation: s.activation,
                    observations: 0,
                    pre_max: None,
                    saturated: None,
                })
                .collect(),
            grad_norms: vec![0.0; network.layers().len()],
            batches: 0,
            rows: 0,
        }
    }

    /// Adds one sampled batch of `rows` input rows: its activation sites and its gradients.
    /// (A conv site's trace has a row per pixel, so the rows are counted from the batch.)
    pub fn add(&mut self, rows: usize, traces: &[SiteTrace], network: &Network, grads: &Gradients) {
        self.batches += 1;
        self.rows += rows;
        for (site, trace) in self.sites.iter_mut().zip(traces) {
            // Detached: these reductions must not grow the autodiff graph.
            site.observations += trace.pre.dims()[0];
            let pre = trace.pre.clone().detach();
            let post = trace.post.clone().detach();
            let pre_max = pre.max_dim(0);
            site.pre_max = Some(match site.pre_max.take() {
                Some(acc) => acc.max_pair(pre_max),
                None => pre_max,
            });
            let saturated = match site.activation {
                Activation::Sigmoid => Some(
                    post.clone()
                        .lower_elem(SIGMOID_SATURATION)
                        .bool_or(post.greater_elem(1.0 - SIGMOID_SATURATION))
                        .float()
                        .sum_dim(0),
                ),
                Activation::Tanh => {
                    Some(post.abs().greater_elem(TANH_SATURATION).float().sum_dim(0))
                }
                _ => None,
            };
            if let Some(batch) = saturated {
                site.saturated = Some(match site.saturated.take() {
                    Some(acc) => acc + batch,
                    None => batch,
                });
            }
        }
        for (norm, (weight_grad, _)) in self.grad_norms.iter_mut().zip(network.layer_grads(grads)) {
            if let Some(g) = weight_grad {
                *norm += (g.powi_scalar(2).sum().into_scalar::<f32>() as f64).sqrt();
            }
        }
    }

    /// The epoch's health; the accumulator starts over.
    pub fn finish(&mut self, epoch: usize) -> EpochHealth {
        let batches = self.batches.max(1) as f64;
        let mut layers = Vec::with_capacity(self.names.len());
        for (i, name) in self.names.iter().enumerate() {
            let (dead_fraction, saturated_fraction) = match self.sites.get_mut(i) {
                Some(site) => {
                    let dead = match (site.activation.is_relu_family(), site.pre_max.take()) {
                        (true, Some(m)) => fraction(m, |v| v <= 0.0),
                        _ => 0.0,
                    };
                    let observations = site.observations.max(1) as f64;
                    let saturated = site
                        .saturated
                        .take()
                        .map(|s| {
                            fraction(s, |count| count / observations >= SATURATED_UNIT_FRACTION)
                        })
                        .unwrap_or(0.0);
                    site.pre_max = None;
                    site.observations = 0;
                    (dead, saturated)
                }
                None => (0.0, 0.0),
            };
            layers.push(LayerHealth {
                name: name.clone(),
                dead_fraction,
                saturated_fraction,
                grad_norm: self.grad_norms[i] / batches,
            });
        }
        let health = EpochHealth {
            epoch,
            sampled_batches: self.batches,
            sampled_rows: self.rows,
            layers,
        };
        self.grad_norms.iter_mut().for_each(|g| *g = 0.0);
        self.batches = 0;
        self.rows = 0;
        health
    }
}

fn fraction(values: Tensor<2>, pred: impl Fn(f64) -> bool) -> f64 {
    let values: Vec<f64> = host_values(values).into_iter().map(f64::from).collect();
    values.iter().filter(|v| pred(**v)).count() as f64 / values.len().max(1) as f64
}
