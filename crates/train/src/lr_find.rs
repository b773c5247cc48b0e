//! The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural
//! Networks", Sec. 3.3; what fastai's `lr_find` and PyTorch Lightning's LR finder do).
//!
//! From the spec's seeded initialization, the spec's optimizer takes `steps` steps on the
//! spec's batches while the rate rises exponentially from `start` to `end`; the loss of every
//! step is recorded with an exponential moving average (`beta`, bias-corrected), and the test
//! stops early when the smoothed loss exceeds `diverge` times its lowest value or turns
//! non-finite.
//!
//! **The rule.** The suggested rate is where the smoothed loss falls fastest against the
//! logarithm of the rate (the steepest negative slope, a central difference over neighbouring
//! steps), looked for after the first tenth of the steps (where the average is still settling
//! and a batch-to-batch wobble would pass for a fall) and before the lowest smoothed loss; when
//! the curve never falls there, there is no suggestion. The average's weight of the past is 0.9
//! (fastai uses 0.98): over a couple of hundred steps spanning eight decades, a heavier one
//! lags the curve by decades. The same spec and seed give the same curve: the draws, the batch order and
//! the arithmetic are the training's own.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use nd_data::Dataset;
use nd_probe::{features, loss};
use nd_spec::CheckedSpec;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::training::{init_network, optimizer};
use crate::TrainError;

/// How the range test runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrFindOptions {
    /// The first rate.
    pub start: f64,
    /// The last rate.
    pub end: f64,
    /// Optimizer steps from `start` to `end`.
    pub steps: usize,
    /// Smoothing of the loss (exponential moving average weight of the past).
    pub beta: f64,
    /// Stop when the smoothed loss exceeds this many times its lowest value.
    pub diverge: f64,
}

impl Default for LrFindOptions {
    fn default() -> Self {
        Self {
            start: 1e-7,
            end: 10.0,
            steps: 200,
            beta: 0.9,
            diverge: 4.0,
        }
    }
}

/// One step of the range test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrPoint {
    /// The rate of this step.
    pub learning_rate: f64,
    /// The batch's loss before the step.
    #[serde(deserialize_with = "nd_probe::null_as_nan")]
    pub loss: f64,
    /// The bias-corrected moving average of the loss.
    #[serde(deserialize_with = "nd_probe::null_as_nan")]
    pub smoothed: f64,
}

/// The curve and what it suggests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrCurve {
    /// Every step taken, in order.
    pub points: Vec<LrPoint>,
    /// The rate where the smoothed loss fell fastest (see the module docs), if it fell.
    pub suggested: Option<f64>,
    /// The rate with the lowest smoothed loss.
    pub lowest: Option<f64>,
    /// Why the test ended before `steps`, if it did.
    pub stopped: Option<String>,
}

/// Runs the range test for `spec` on `data`'s training split.
pub fn lr_find(
    spec: &CheckedSpec,
    data: &Dataset,
    device: &Device,
    options: &LrFindOptions,
) -> Result<LrCurve, TrainError> {
    let steps = options.steps.max(2);
    let mut network = init_network(spec, data, device)?.train();
    let mut optimizer = optimizer(spec);
    let rows = data.train.rows;
    let batch_size = spec.train.batch_size.min(rows.max(1));
    let mut rng = ChaCha8Rng::seed_from_u64(spec.train.seed);
    let mut order: Vec<usize> = (0..rows).collect();
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let ratio = (options.end / options.start).ln();
    let mut points = Vec::with_capacity(steps);
    let (mut average, mut best) = (0.0, f64::INFINITY);
    let mut stopped = None;
    for step in 0..steps {
        if batches.is_empty() {
            order.shuffle(&mut rng);
            batches = order
                .chunks(batch_size)
                .rev()
                .map(<[usize]>::to_vec)
                .collect();
        }
        let chunk = batches.pop().expect("refilled above");
        let learning_rate = options.start * (ratio * step as f64 / (steps - 1) as f64).exp();
        let output = network.forward(features(&data.train, &chunk, device));
        let batch_loss = loss(output, &data.train.targets, &chunk, device);
        let value = batch_loss.clone().into_scalar::<f32>() as f64;
        average = options.beta * average + (1.0 - options.beta) * value;
        let smoothed = average / (1.0 - options.beta.powi(step as i32 + 1));
        points.push(LrPoint {
            learning_rate,
            loss: value,
            smoothed,
        });
        if !smoothed.is_finite() {
            stopped = Some(format!(
                "the loss became non-finite at rate {learning_rate:.2e}"
            ));
            break;
        }
        best = best.min(smoothed);
        if step > 0 && smoothed > options.diverge * best {
            stopped = Some(format!(
                "the loss rose above {} times its lowest at rate {learning_rate:.2e}",
                options.diverge
            ));
            break;
        }
        let grads = GradientsParams::from_grads(batch_loss.backward(), &network);
        network = optimizer.step(learning_rate, network, grads);
    }
    let (suggested, lowest) = suggest(&points);
    Ok(LrCurve {
        points,
        suggested,
        lowest,
        stopped,
    })
}

/// The steepest descent of the smoothed loss against log(rate), before its lowest point, and
/// the rate of that lowest point.
fn suggest(points: &[LrPoint]) -> (Option<f64>, Option<f64>) {
    let finite: Vec<&LrPoint> = points.iter().filter(|p| p.smoothed.is_finite()).collect();
    let Some((lowest_at, lowest)) = finite
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.smoothed.total_cmp(&b.1.smoothed))
    else {
        return (None, None);
    };
    let slope = |i: usize| {
        let (a, b) = (finite[i - 1], finite[i + 1]);
        (b.smoothed - a.smoothed) / (b.learning_rate.ln() - a.learning_rate.ln())
    };
    let settled = (points.len() / 10).max(1);
    let steepest = (settled..lowest_at.min(finite.len().saturating_sub(1)))
        .map(|i| (i, slope(i)))
        .filter(|(_, s)| *s < 0.0)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| finite[i].learning_rate);
    (steepest, Some(lowest.learning_rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(learning_rate: f64, smoothed: f64) -> LrPoint {
        LrPoint {
            learning_rate,
            loss: smoothed,
            smoothed,
        }
    }

    #[test]
    fn the_suggestion_is_the_steepest_fall_before_the_lowest_loss() {
        // Flat, a steep fall around 1e-3, a slow fall to the lowest at 1e-1, then a blow-up.
        let curve: Vec<LrPoint> = [
            (1e-7, 2.3),
            (1e-6, 2.3),
            (1e-5, 2.3),
            (1e-4, 2.2),
            (1e-3, 1.2),
            (1e-2, 0.5),
            (1e-1, 0.4),
            (1.0, 3.0),
        ]
        .iter()
        .map(|&(r, l)| point(r, l))
        .collect();
        let (suggested, lowest) = suggest(&curve);
        assert_eq!(suggested, Some(1e-3));
        assert_eq!(lowest, Some(1e-1));
        // A loss that only rises suggests nothing.
        let rising: Vec<LrPoint> = (0..5).map(|i| point(10f64.powi(i), i as f64)).collect();
        assert_eq!(suggest(&rising).0, None);
    }
}
