//! The training loop: seeded initialization, shuffled mini-batches, an optimizer step per
//! batch, and an evaluation of both splits in inference mode after every epoch.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{
    decay::WeightDecayConfig, momentum::MomentumConfig, AdamConfig, GradientsParams, SgdConfig,
};
use burn::tensor::Device;
use nd_data::{Dataset, Split, Targets};
use nd_models::{ModelShape, Network};
use nd_probe::{features, loss, EpochHealth, HealthAccumulator};
use nd_spec::{CheckedSpec, Optimizer};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// Every how many batches health statistics are sampled by default.
pub const DEFAULT_HEALTH_EVERY: usize = 4;

/// Rows per forward pass when evaluating (bounds memory for conv nets).
pub const EVAL_CHUNK: usize = 512;

/// One epoch's metrics, as written to `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean loss over the train split, in inference mode, after the epoch.
    #[serde(deserialize_with = "nd_probe::null_as_nan")]
    pub train_loss: f64,
    /// Mean loss over the test split.
    #[serde(deserialize_with = "nd_probe::null_as_nan")]
    pub test_loss: f64,
    /// Classification: fraction of train rows right.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "nd_probe::null_as_some_nan"
    )]
    pub train_accuracy: Option<f64>,
    /// Classification: fraction of test rows right.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "nd_probe::null_as_some_nan"
    )]
    pub test_accuracy: Option<f64>,
    /// Regression: mean squared error on the test split (in the scaled target's units).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "nd_probe::null_as_some_nan"
    )]
    pub test_mse: Option<f64>,
    /// Wall time of the epoch, training and evaluation.
    pub seconds: f64,
}

impl EpochMetrics {
    /// The metric a run is judged by: test accuracy, or test MSE for regression.
    pub fn primary(&self) -> f64 {
        self.test_accuracy.or(self.test_mse).unwrap_or(f64::NAN)
    }

    /// True when a loss is NaN or infinite (serialized NaN reads back as `null`).
    pub fn is_finite(&self) -> bool {
        self.train_loss.is_finite() && self.test_loss.is_finite()
    }
}

/// What the loop tells its caller while it works; every method has a do-nothing default.
pub trait Observer {
    /// Training starts: `epochs` passes of `batches` steps each.
    fn start(&mut self, _epochs: usize, _batches: usize) {}
    /// One optimizer step done.
    fn batch(&mut self) {}
    /// Sample every n-th batch for live health statistics (0 = none). The default, 4, keeps
    /// the overhead under a few percent of epoch time (see the README's benchmarks).
    fn health_every(&self) -> usize {
        DEFAULT_HEALTH_EVERY
    }
    /// The epoch's health statistics, just before [`Observer::epoch`].
    fn health(&mut self, _health: &EpochHealth) {}
    /// One epoch done. Return `false` to stop training early.
    fn epoch(&mut self, _metrics: &EpochMetrics, _network: &Network) -> bool {
        true
    }
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// The result of training.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The network as initialized.
    pub initial: Network,
    /// The network after the last epoch.
    pub network: Network,
    /// One entry per finished epoch.
    pub metrics: Vec<EpochMetrics>,
    /// Live health statistics per finished epoch.
    pub health: Vec<EpochHealth>,
    /// Why training ended before its budget, if it did.
    pub stopped_early: Option<String>,
    /// Wall time of the whole loop.
    pub seconds: f64,
}

/// The shape a dataset gives the network.
pub fn model_shape(data: &Dataset) -> ModelShape {
    ModelShape {
        inputs: data.n_features,
        outputs: data.n_outputs(),
        image: data.image,
    }
}

/// The freshly initialized network for `spec`, drawn from the spec's seed (see
/// [`init_network_with_seed`]).
pub fn init_network(
    spec: &CheckedSpec,
    data: &Dataset,
    device: &Device,
) -> Result<Network, TrainError> {
    init_network_with_seed(spec, data, spec.train.seed, device)
}

/// A freshly initialized network for `spec` on `device`, its weights drawn on the CPU from
/// `seed`: the same seed gives the same initial weights on every backend, so that runs on
/// ndarray and wgpu differ only by their arithmetic.
pub fn init_network_with_seed(
    spec: &CheckedSpec,
    data: &Dataset,
    seed: u64,
    device: &Device,
) -> Result<Network, TrainError> {
    let cpu = crate::device::ndarray();
    let cpu = if device.is_autodiff() {
        cpu.autodiff()
    } else {
        cpu
    };
    cpu.seed(seed);
    let network = Network::new(spec, &model_shape(data), &cpu)?;
    if &cpu == device {
        return Ok(network);
    }
    // Dropout draws its masks on the training device.
    device.seed(seed);
    Ok(network.fork_initialized(device))
}

/// The spec's optimizer with a fresh state (Adam, or SGD with its momentum; weight decay).
pub(crate) fn optimizer(spec: &CheckedSpec) -> burn::optim::ModuleOptimizer {
    let t = &spec.train;
    let weight_decay =
        (t.weight_decay > 0.0).then(|| WeightDecayConfig::new(t.weight_decay as f32));
    match t.optimizer {
        Optimizer::Adam => AdamConfig::new().with_weight_decay(weight_decay).init(),
        Optimizer::Sgd => SgdConfig::new()
            .with_weight_decay(weight_decay.map(|w| WeightDecayConfig::new(w.penalty)))
            .with_momentum((t.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(t.momentum)
                    .with_dampening(0.0)
            }))
            .init(),
    }
}

/// Trains `spec` on `data` from a fresh, seeded initialization.
pub fn train(
    spec: &CheckedSpec,
    data: &Dataset,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<Trained, TrainError> {
    let network = init_network(spec, data, device)?;
    fit(network, spec, data, device, spec.train.epochs, observer)
}

/// Trains `spec` from `start`, weights to start from (imported, revived, or loaded from a
/// file), or from a fresh seeded initialization when there are none: one candidate's training,
/// whichever executor runs it. With a start, the devices' generators are seeded from the
/// spec's seed first, so that its run is the same in this process and in another.
pub fn train_from(
    spec: &CheckedSpec,
    data: &Dataset,
    start: Option<Network>,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<Trained, TrainError> {
    let Some(network) = start else {
        return train(spec, data, device, observer);
    };
    let cpu = crate::device::ndarray();
    cpu.seed(spec.train.seed);
    device.seed(spec.train.seed);
    fit(network, spec, data, device, spec.train.epochs, observer)
}

/// Trains an existing network for `epochs` more epochs with `spec`'s optimizer (fresh state).
pub fn fit(
    network: Network,
    spec: &CheckedSpec,
    data: &Dataset,
    device: &Device,
    epochs: usize,
    observer: &mut dyn Observer,
) -> Result<Trained, TrainError> {
    let start = Instant::now();
    let initial = network.clone();
    let t = &spec.train;
    let mut optimizer = optimizer(spec);
    let rows = data.train.rows;
    let batch_size = t.batch_size.min(rows.max(1));
    let batches = rows.div_ceil(batch_size);
    observer.start(epochs, batches);
    // Shuffling has its own generator so that the order depends on the seed alone.
    let mut rng = ChaCha8Rng::seed_from_u64(t.seed);
    let mut order: Vec<usize> = (0..rows).collect();
    let mut network = network.train();
    let mut metrics = Vec::with_capacity(epochs);
    let mut health = Vec::with_capacity(epochs);
    let mut health_acc = HealthAccumulator::new(&network);
    let every = observer.health_every();
    let mut stopped_early = None;
    for epoch in 1..=epochs {
        let epoch_start = Instant::now();
        order.shuffle(&mut rng);
        for (batch, chunk) in order.chunks(batch_size).enumerate() {
            let input = features(&data.train, chunk, device);
            let sampled = every > 0 && batch % every == 0;
            let (output, traces) = if sampled {
                network.forward_traced(input)
            } else {
                (network.forward(input), Vec::new())
            };
            let loss = loss(output, &data.train.targets, chunk, device);
            let gradients = loss.backward();
            if sampled {
                health_acc.add(chunk.len(), &traces, &network, &gradients);
            }
            let grads = GradientsParams::from_grads(gradients, &network);
            network = optimizer.step(t.learning_rate, network, grads);
            observer.batch();
        }
        let epoch_health = health_acc.finish(epoch);
        observer.health(&epoch_health);
        health.push(epoch_health);
        let train_eval = evaluate(&network, &data.train, device);
        let test_eval = evaluate(&network, &data.test, device);
        let m = EpochMetrics {
            epoch,
            train_loss: train_eval.loss,
            test_loss: test_eval.loss,
            train_accuracy: train_eval.accuracy,
            test_accuracy: test_eval.accuracy,
            test_mse: test_eval.mse,
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        tracing::debug!(?m, "epoch done");
        let finite = m.is_finite();
        let go_on = observer.epoch(&m, &network);
        metrics.push(m);
        if !finite {
            stopped_early = Some(format!("the loss became non-finite at epoch {epoch}"));
            break;
        }
        if !go_on {
            stopped_early = Some(format!("stopped at epoch {epoch} by request"));
            break;
        }
    }
    Ok(Trained {
        initial,
        network: network.valid(),
        metrics,
        health,
        stopped_early,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// A trained network's metrics on both splits, as an epoch-0 record: what an imported model
/// measures on the user's data before anything is trained.
pub fn measure(network: &Network, data: &Dataset, device: &Device) -> EpochMetrics {
    let start = Instant::now();
    let train = evaluate(network, &data.train, device);
    let test = evaluate(network, &data.test, device);
    EpochMetrics {
        epoch: 0,
        train_loss: train.loss,
        test_loss: test.loss,
        train_accuracy: train.accuracy,
        test_accuracy: test.accuracy,
        test_mse: test.mse,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// Loss and quality of a network on one split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean loss.
    pub loss: f64,
    /// Classification accuracy.
    pub accuracy: Option<f64>,
    /// Regression MSE.
    pub mse: Option<f64>,
}

/// Evaluates a network on a split in inference mode (dropout off, batch norm on running
/// statistics), in chunks of [`EVAL_CHUNK`] rows.
///
/// An empty split (a file without held-out rows) measures nothing: every number is NaN.
pub fn evaluate(network: &Network, split: &Split, device: &Device) -> Evaluation {
    if split.rows == 0 {
        let classes = matches!(split.targets, Targets::Classes(_));
        return Evaluation {
            loss: f64::NAN,
            accuracy: classes.then_some(f64::NAN),
            mse: (!classes).then_some(f64::NAN),
        };
    }
    let network = network.valid();
    let mut loss_sum = 0.0;
    let mut correct = 0usize;
    let all: Vec<usize> = (0..split.rows).collect();
    for chunk in all.chunks(EVAL_CHUNK) {
        let output = network.forward(features(split, chunk, device));
        if let Targets::Classes(labels) = &split.targets {
            let predicted = output.clone().argmax(1).into_data();
            let predicted: Vec<i64> = predicted
                .try_to_vec::<i64>()
                .unwrap_or_else(|_| predicted.iter::<i64>().collect());
            correct += chunk
                .iter()
                .zip(&predicted)
                .filter(|(row, p)| labels[**row] as i64 == **p)
                .count();
        }
        let l: f64 = loss(output, &split.targets, chunk, device).into_scalar::<f32>() as f64;
        loss_sum += l * chunk.len() as f64;
    }
    let loss = loss_sum / split.rows.max(1) as f64;
    match split.targets {
        Targets::Classes(_) => Evaluation {
            loss,
            accuracy: Some(correct as f64 / split.rows.max(1) as f64),
            mse: None,
        },
        Targets::Values(_) => Evaluation {
            loss,
            accuracy: None,
            mse: Some(loss),
        },
    }
}
