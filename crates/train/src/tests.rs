//! Tests of the trainer: metrics, determinism, early stops, evaluation and run directories.
//!
//! ndarray's random generator is one global for the process. cargo-nextest runs every test in
//! its own process; under plain `cargo test` the tests share one, so every test that draws
//! random numbers holds [`serial`] to keep the seeded ones deterministic.

use super::*;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use nd_data::{Dataset, Split, Targets};
use nd_models::{LayerParams, ModelShape, Network};
use nd_spec::{Backend, CheckedSpec, Spec};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

static RNG: Mutex<()> = Mutex::new(());

/// Holds the process's random generator for one test.
fn serial() -> MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn checked(text: &str) -> CheckedSpec {
    Spec::from_toml_str(text, "t").unwrap().check().unwrap()
}

/// Iris, a tiny MLP, three epochs.
const IRIS: &str = r#"
[data]
dataset = "iris"
[model]
hidden = [8]
[train]
epochs = 3
batch_size = 16
learning_rate = 0.01
"#;

/// Diabetes regression with a standardized target.
const DIABETES: &str = r#"
[data]
dataset = "diabetes"
target_scale = "standardize"
[model]
hidden = [8]
[train]
epochs = 2
batch_size = 32
learning_rate = 0.01
"#;

/// Plain SGD with a step size no loss survives, on the raw diabetes target (25 to 346): the
/// weights overflow f32 within the first epoch. Found by trying: both losses are NaN (not
/// just inf) at epoch 1, run after run (the seed is fixed, the default 42).
const DIVERGING: &str = r#"
[data]
dataset = "diabetes"
target_scale = "none"
[model]
hidden = [8]
[train]
optimizer = "sgd"
learning_rate = 1e6
epochs = 5
batch_size = 32
"#;

fn load(spec: &CheckedSpec) -> Dataset {
    nd_data::load(&spec.data, Path::new(".")).unwrap()
}

fn train_device() -> Device {
    device(Backend::Ndarray).unwrap()
}

fn run(text: &str) -> (CheckedSpec, Dataset, Trained) {
    let spec = checked(text);
    let data = load(&spec);
    let trained = train(&spec, &data, &train_device(), &mut Quiet).unwrap();
    (spec, data, trained)
}

pub(crate) fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().unwrap()
}

/// Every weight and bias of a network, flattened in layer order.
pub(crate) fn weights(network: &Network) -> Vec<f32> {
    network
        .layer_params()
        .into_iter()
        .flat_map(|p| {
            let mut v = values(p.weight);
            v.extend(p.bias.map(values).unwrap_or_default());
            v
        })
        .collect()
}

/// The network's outputs on the first rows of the test split.
fn outputs(network: &Network, data: &Dataset, device: &Device) -> Vec<f32> {
    let rows: Vec<usize> = (0..data.test.rows.min(20)).collect();
    values(
        network
            .valid()
            .forward(nd_probe::features(&data.test, &rows, device)),
    )
}

/// Metrics with the wall time zeroed, for exact comparison.
fn timeless(metrics: &[EpochMetrics]) -> Vec<EpochMetrics> {
    metrics
        .iter()
        .map(|m| EpochMetrics {
            seconds: 0.0,
            ..m.clone()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Training.

#[test]
fn training_iris_gives_classification_metrics_per_epoch() {
    let _rng = serial();
    let (_, _, trained) = run(IRIS);
    assert_eq!(trained.metrics.len(), 3);
    assert_eq!(trained.stopped_early, None);
    for (i, m) in trained.metrics.iter().enumerate() {
        assert_eq!(m.epoch, i + 1);
        assert!(m.train_loss.is_finite() && m.train_loss > 0.0, "{m:?}");
        assert!(m.test_loss.is_finite() && m.test_loss > 0.0, "{m:?}");
        for accuracy in [m.train_accuracy, m.test_accuracy] {
            let accuracy = accuracy.expect("classification has accuracy");
            assert!((0.0..=1.0).contains(&accuracy), "{m:?}");
        }
        assert_eq!(m.test_mse, None);
        assert!(m.seconds >= 0.0);
        assert_eq!(m.primary(), m.test_accuracy.unwrap());
    }
    // Three epochs of Adam at 0.01 learn something: the loss falls below ln(3) = 1.0986, the
    // loss of a uniform guess over three classes.
    assert!(
        trained.metrics[2].train_loss < trained.metrics[0].train_loss,
        "{:?}",
        trained.metrics
    );
    assert!(
        trained.metrics[2].train_loss < 3f64.ln(),
        "{:?}",
        trained.metrics
    );
    assert!(trained.seconds >= trained.metrics.iter().map(|m| m.seconds).sum::<f64>() * 0.99);
}

#[test]
fn training_diabetes_gives_regression_metrics() {
    let _rng = serial();
    let (_, _, trained) = run(DIABETES);
    assert_eq!(trained.metrics.len(), 2);
    for m in &trained.metrics {
        assert!(m.train_loss.is_finite() && m.test_loss.is_finite(), "{m:?}");
        assert_eq!(m.test_mse, Some(m.test_loss));
        assert_eq!(m.train_accuracy, None);
        assert_eq!(m.test_accuracy, None);
        assert_eq!(m.primary(), m.test_loss);
    }
}

#[test]
fn the_initial_network_is_the_one_before_training() {
    let _rng = serial();
    let (spec, data, trained) = run(IRIS);
    let fresh = init_network(&spec, &data, &train_device()).unwrap();
    assert_eq!(weights(&trained.initial), weights(&fresh));
    assert_ne!(weights(&trained.network), weights(&fresh));
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let _rng = serial();
    let (_, _, first) = run(IRIS);
    // Draw from the generator in between: train must re-seed, not continue the sequence.
    let device = train_device();
    let _ = Tensor::<2>::random([64, 64], burn::tensor::Distribution::Default, &device);
    let (_, _, second) = run(IRIS);
    assert_eq!(timeless(&first.metrics), timeless(&second.metrics));
    assert_eq!(weights(&first.initial), weights(&second.initial));
    assert_eq!(weights(&first.network), weights(&second.network));

    let (_, _, other_seed) = run(&IRIS.replace("epochs = 3", "epochs = 3\nseed = 7"));
    assert_ne!(weights(&other_seed.initial), weights(&first.initial));
    assert_ne!(weights(&other_seed.network), weights(&first.network));
    assert_ne!(timeless(&other_seed.metrics), timeless(&first.metrics));
}

#[test]
fn training_with_dropout_is_deterministic_for_a_seed() {
    let _rng = serial();
    let text = IRIS.replace("hidden = [8]", "hidden = [8]\ndropout = 0.5");
    let (_, _, first) = run(&text);
    let (_, _, second) = run(&text);
    assert_eq!(timeless(&first.metrics), timeless(&second.metrics));
    assert_eq!(weights(&first.network), weights(&second.network));
}

#[test]
fn flex_training_is_bit_identical_across_reruns_with_its_thread_pool_on() {
    // More threads than this machine may have cores: the pool certainly splits the work.
    std::env::set_var("RAYON_NUM_THREADS", "4");
    let _rng = serial();
    let flex = device(Backend::Flex).unwrap();
    for text in [
        IRIS.replace("hidden = [8]", "hidden = [8]\ndropout = 0.5"),
        "[data]\ndataset = \"digits\"\nlimit = 256\n[model]\nkind = \"cnn\"\nhidden = [8, 16]\ndense = [32]\ndropout = 0.2\n[train]\nepochs = 2\n".to_string(),
    ] {
        let spec = checked(&text);
        let data = load(&spec);
        let first = train(&spec, &data, &flex, &mut Quiet).unwrap();
        let second = train(&spec, &data, &flex, &mut Quiet).unwrap();
        assert_eq!(timeless(&first.metrics), timeless(&second.metrics), "{text}");
        assert_eq!(weights(&first.network), weights(&second.network), "{text}");
        assert_ne!(weights(&first.network), weights(&first.initial));
    }
}

/// Stops after `stop_after` epochs and remembers what it saw.
struct StopAfter {
    stop_after: usize,
    started: Option<(usize, usize)>,
    batches: usize,
    epochs_seen: Vec<usize>,
}

impl Observer for StopAfter {
    fn start(&mut self, epochs: usize, batches: usize) {
        self.started = Some((epochs, batches));
    }
    fn batch(&mut self) {
        self.batches += 1;
    }
    fn epoch(&mut self, metrics: &EpochMetrics, _network: &Network) -> bool {
        self.epochs_seen.push(metrics.epoch);
        metrics.epoch < self.stop_after
    }
}

#[test]
fn an_observer_can_stop_training_early() {
    let _rng = serial();
    let spec = checked(&IRIS.replace("epochs = 3", "epochs = 10"));
    let data = load(&spec);
    let mut observer = StopAfter {
        stop_after: 2,
        started: None,
        batches: 0,
        epochs_seen: Vec::new(),
    };
    let trained = train(&spec, &data, &train_device(), &mut observer).unwrap();
    assert_eq!(trained.metrics.len(), 2);
    assert_eq!(observer.epochs_seen, [1, 2]);
    // 120 train rows in batches of 16: 8 steps an epoch.
    assert_eq!(observer.started, Some((10, 8)));
    assert_eq!(observer.batches, 16);
    let why = trained.stopped_early.expect("stopped early");
    assert!(why.contains("epoch 2") && why.contains("request"), "{why}");
}

#[test]
fn a_non_finite_loss_stops_training() {
    let _rng = serial();
    let (_, _, trained) = run(DIVERGING);
    assert_eq!(trained.metrics.len(), 1, "{:?}", trained.metrics);
    let m = &trained.metrics[0];
    assert!(m.train_loss.is_nan() && m.test_loss.is_nan(), "{m:?}");
    assert!(!m.is_finite());
    let why = trained.stopped_early.expect("stopped early");
    assert!(
        why.contains("non-finite") && why.contains("epoch 1"),
        "{why}"
    );
}

#[test]
fn a_diverged_run_writes_nan_as_null_and_reads_it_back_as_nan() {
    let _rng = serial();
    let (spec, data, trained) = run(DIVERGING);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("diverged");
    let pending = PendingRun::create(&target, false).unwrap();
    pending.write(&spec, &data, &trained).unwrap();
    pending.commit().unwrap();
    let text = std::fs::read_to_string(target.join(METRICS_FILE)).unwrap();
    assert!(
        text.contains("\"train_loss\":null") && text.contains("\"test_loss\":null"),
        "{text}"
    );
    // health.jsonl is optional; a_diverged_run_reopens_with_its_health covers it.
    std::fs::remove_file(target.join(HEALTH_FILE)).unwrap();
    let run = Run::open(&target).unwrap();
    assert_eq!(run.metrics.len(), 1);
    assert!(run.metrics[0].train_loss.is_nan() && run.metrics[0].test_loss.is_nan());
    assert!(!run.metrics[0].is_finite());
    let last = run
        .summary
        .final_metrics
        .as_ref()
        .expect("one epoch finished");
    assert!(last.train_loss.is_nan() && last.test_loss.is_nan());
    assert_eq!(run.summary.epochs_run, 1);
    assert_eq!(run.summary.epochs_planned, 5);
    assert!(run
        .summary
        .stopped_early
        .as_deref()
        .unwrap()
        .contains("non-finite"));
}

#[test]
fn a_diverged_regression_run_keeps_its_nan_test_mse() {
    // Training reports the diverged test MSE as Some(NaN); it is written as `null` like the
    // losses, but `test_mse` has no `null_as_nan`, so it reads back as None: the run then
    // looks as if it had no MSE at all (`diagnose` prints no metric instead of `NaN`).
    let _rng = serial();
    let (spec, data, trained) = run(DIVERGING);
    assert!(trained.metrics[0].test_mse.is_some_and(f64::is_nan));
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("diverged");
    let pending = PendingRun::create(&target, false).unwrap();
    pending.write(&spec, &data, &trained).unwrap();
    pending.commit().unwrap();
    std::fs::remove_file(target.join(HEALTH_FILE)).unwrap();
    let run = Run::open(&target).unwrap();
    let read_back = run.metrics[0].test_mse;
    assert!(
        read_back.is_some_and(f64::is_nan),
        "test_mse read back as {read_back:?}, not Some(NaN)"
    );
}

#[test]
fn a_diverged_run_reopens_with_its_health() {
    // The gradient norms of a diverged epoch are NaN and written as `null`, but
    // `LayerHealth::grad_norm` is a plain f64: `Run::open` then fails with `Corrupt` on
    // health.jsonl, so a diverged run can no longer be diagnosed.
    let _rng = serial();
    let (spec, data, trained) = run(DIVERGING);
    assert!(
        trained.health[0]
            .layers
            .iter()
            .any(|l| l.grad_norm.is_nan()),
        "{:?}",
        trained.health
    );
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("diverged");
    let pending = PendingRun::create(&target, false).unwrap();
    pending.write(&spec, &data, &trained).unwrap();
    pending.commit().unwrap();
    let run = Run::open(&target).unwrap_or_else(|e| panic!("a diverged run does not open: {e}"));
    assert_eq!(run.health.len(), 1);
    assert!(
        run.health[0].layers.iter().any(|l| l.grad_norm.is_nan()),
        "{:?}",
        run.health
    );
}

// ---------------------------------------------------------------------------------------------
// Live health.

/// Asks for health on every `every`-th batch and records what it gets, in order with epochs.
struct HealthLog {
    every: usize,
    events: Vec<String>,
}

impl HealthLog {
    fn every(every: usize) -> Self {
        HealthLog {
            every,
            events: Vec::new(),
        }
    }
}

impl Observer for HealthLog {
    fn health_every(&self) -> usize {
        self.every
    }
    fn health(&mut self, health: &nd_probe::EpochHealth) {
        self.events.push(format!("health {}", health.epoch));
    }
    fn epoch(&mut self, metrics: &EpochMetrics, _network: &Network) -> bool {
        self.events.push(format!("epoch {}", metrics.epoch));
        true
    }
}

#[test]
fn health_is_sampled_every_nth_batch_and_reported_before_the_epoch() {
    let _rng = serial();
    let spec = checked(&IRIS.replace("epochs = 3", "epochs = 2"));
    let data = load(&spec);
    let mut observer = HealthLog::every(3);
    let trained = train(&spec, &data, &train_device(), &mut observer).unwrap();
    assert_eq!(
        observer.events,
        ["health 1", "epoch 1", "health 2", "epoch 2"]
    );
    assert_eq!(trained.health.len(), 2);
    for (i, h) in trained.health.iter().enumerate() {
        assert_eq!(h.epoch, i + 1);
        // 8 batches of 16 rows: batches 0, 3 and 6 are sampled.
        assert_eq!((h.sampled_batches, h.sampled_rows), (3, 48));
        let names: Vec<_> = h.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["hidden.0", "output"]);
        assert!(
            h.layers
                .iter()
                .all(|l| l.grad_norm.is_finite() && l.grad_norm > 0.0),
            "{h:?}"
        );
    }

    let trained = train(&spec, &data, &train_device(), &mut HealthLog::every(0)).unwrap();
    assert!(trained
        .health
        .iter()
        .all(|h| h.sampled_batches == 0 && h.sampled_rows == 0));
}

#[test]
fn health_sampling_does_not_change_training() {
    let _rng = serial();
    let spec = checked(&IRIS.replace("hidden = [8]", "hidden = [8]\ndropout = 0.3"));
    let data = load(&spec);
    let with = |every: usize| {
        let trained = train(&spec, &data, &train_device(), &mut HealthLog::every(every)).unwrap();
        (timeless(&trained.metrics), weights(&trained.network))
    };
    assert_eq!(with(0), with(1));
}

#[test]
fn health_sees_dead_units() {
    // A bias of -100 puts every relu unit of standardized iris below zero on every row.
    let _rng = serial();
    let (_, _, trained) = run(&IRIS.replace("hidden = [8]", "hidden = [8, 8]\nbias_init = -100.0"));
    let h = &trained.health[0];
    assert_eq!(h.layers[0].dead_fraction, 1.0, "{h:?}");
    assert_eq!(h.layers[1].dead_fraction, 1.0, "{h:?}");
    assert_eq!(
        h.layers[2].dead_fraction, 0.0,
        "the output has no activation site: {h:?}"
    );
}

#[test]
fn health_sees_saturated_units_in_every_layer_of_a_cnn() {
    // With weights of std 10 and biases of 5 (tanh(5) = 0.99991) the units after the first
    // layer sit at +-1 on almost every row (measured: conv.1 on 95% to 99% of its rows, every
    // hidden.0 unit on 31 or 32 of 32). A conv site has `batch * height * width` rows (64 per
    // image for conv.0, 16 for conv.1) and a dense site `batch` rows; each layer's saturated
    // fraction must count against its own rows, not those of the first site.
    let _rng = serial();
    let spec = checked(
        r#"
[data]
dataset = "digits"
limit = 64
[model]
kind = "cnn"
hidden = [4, 4]
dense = [8]
activation = "tanh"
init = "normal"
init_std = 10.0
bias_init = 5.0
[train]
epochs = 1
batch_size = 32
"#,
    );
    let data = load(&spec);
    let trained = train(&spec, &data, &train_device(), &mut HealthLog::every(1)).unwrap();
    let saturated: Vec<(&str, f64)> = trained.health[0]
        .layers
        .iter()
        .map(|l| (l.name.as_str(), l.saturated_fraction))
        .collect();
    assert_eq!(saturated.len(), 4);
    for (name, fraction) in &saturated[1..3] {
        assert!(
            *fraction >= 0.9,
            "{name}: saturated fraction {fraction}, all: {saturated:?}"
        );
    }
    // 64 images in 2 batches, both sampled: rows are images, not images times pixels.
    assert_eq!(
        (
            trained.health[0].sampled_batches,
            trained.health[0].sampled_rows
        ),
        (2, 64)
    );
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

#[allow(deprecated)]
fn plain_device() -> Device {
    let device = Device::ndarray();
    device.seed(1);
    device
}

/// A network whose output is `x * weight` exactly: no hidden layer, zero bias.
fn linear_network(
    inputs: usize,
    outputs: usize,
    dataset: &str,
    weight: Vec<f32>,
    device: &Device,
) -> Network {
    let spec = checked(&format!(
        "[data]\ndataset = \"{dataset}\"\n[model]\nhidden = []\n"
    ));
    let shape = ModelShape {
        inputs,
        outputs,
        image: None,
    };
    Network::new(&spec, &shape, device)
        .unwrap()
        .with_layer_params(
            0,
            LayerParams {
                weight: Tensor::from_data(TensorData::new(weight, [inputs, outputs]), device),
                bias: Some(Tensor::zeros([outputs], device)),
            },
        )
}

/// Five rows whose logits are the features themselves (identity network), `copies` times.
fn tiny_classification(copies: usize) -> (Split, f64, f64) {
    let rows: [([f32; 3], usize); 5] = [
        ([1.0, 0.0, 0.0], 0), // right
        ([0.0, 2.0, 0.0], 1), // right
        ([0.0, 0.0, 3.0], 0), // wrong
        ([5.0, 1.0, 1.0], 0), // right
        ([0.0, 0.0, 1.0], 2), // right
    ];
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let mut loss = 0.0;
    for _ in 0..copies {
        for (x, y) in rows {
            features.extend(x);
            labels.push(y);
        }
    }
    // Cross-entropy by hand: logsumexp(z) - z_y.
    for (x, y) in rows {
        let lse = x.iter().map(|&z| (z as f64).exp()).sum::<f64>().ln();
        loss += lse - x[y] as f64;
    }
    let split = Split {
        rows: 5 * copies,
        features,
        targets: Targets::Classes(labels),
    };
    (split, 4.0 / 5.0, loss / 5.0)
}

fn identity3() -> Vec<f32> {
    vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
}

#[test]
fn evaluate_matches_a_hand_computed_accuracy_and_loss() {
    let _rng = serial();
    let device = plain_device();
    let network = linear_network(3, 3, "iris", identity3(), &device);
    let (split, accuracy, loss) = tiny_classification(1);
    let evaluation = evaluate(&network, &split, &device);
    assert_eq!(evaluation.accuracy, Some(accuracy));
    assert_eq!(evaluation.mse, None);
    assert!(
        (evaluation.loss - loss).abs() < 1e-5,
        "{} vs {loss}",
        evaluation.loss
    );
}

#[test]
fn evaluate_weighs_every_chunk_by_its_rows() {
    // 1150 rows: two full chunks of 512 and one of 126, each with a different share of wrong
    // rows; the result must still be the per-row mean.
    let _rng = serial();
    let device = plain_device();
    let network = linear_network(3, 3, "iris", identity3(), &device);
    let (split, accuracy, loss) = tiny_classification(230);
    assert!(split.rows > 2 * EVAL_CHUNK);
    let evaluation = evaluate(&network, &split, &device);
    assert!(
        (evaluation.accuracy.unwrap() - accuracy).abs() < 1e-12,
        "{evaluation:?}"
    );
    assert!(
        (evaluation.loss - loss).abs() < 1e-5,
        "{} vs {loss}",
        evaluation.loss
    );
}

#[test]
fn evaluate_regression_is_the_mean_squared_error() {
    let _rng = serial();
    let device = plain_device();
    // output = x0 - 2 x1
    let network = linear_network(2, 1, "diabetes", vec![1.0, -2.0], &device);
    let features = vec![1.0f32, 0.0, 0.0, 1.0, 2.0, 2.0, -1.0, 0.5];
    let targets = vec![1.0f32, 0.0, 0.0, 3.0];
    // outputs 1, -2, -2, -2: errors 0, -2, -2, -5.
    let expected = (0.0 + 4.0 + 4.0 + 25.0) / 4.0;
    let split = Split {
        rows: 4,
        features,
        targets: Targets::Values(targets),
    };
    let evaluation = evaluate(&network, &split, &device);
    assert!((evaluation.loss - expected).abs() < 1e-5, "{evaluation:?}");
    assert_eq!(evaluation.mse, Some(evaluation.loss));
    assert_eq!(evaluation.accuracy, None);
}

#[test]
fn evaluate_a_trained_network_on_both_splits() {
    let _rng = serial();
    let (_, data, trained) = run(IRIS);
    let device = train_device();
    for (split, m) in [
        (&data.train, trained.metrics[2].train_accuracy),
        (&data.test, trained.metrics[2].test_accuracy),
    ] {
        let evaluation = evaluate(&trained.network, split, &device);
        let accuracy = evaluation.accuracy.unwrap();
        assert!((0.0..=1.0).contains(&accuracy));
        // A fraction of the rows.
        let correct = accuracy * split.rows as f64;
        assert!((correct - correct.round()).abs() < 1e-9);
        assert_eq!(
            Some(accuracy),
            m,
            "evaluate agrees with the last epoch's metrics"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Run directories.

/// The files a run must have; `health.jsonl` is written too but optional when reading.
const RUN_FILES: [&str; 5] = [
    CONFIG_FILE,
    INITIAL_WEIGHTS,
    FINAL_WEIGHTS,
    METRICS_FILE,
    SUMMARY_FILE,
];

/// Names in `dir` that start with '.': leftovers of pending runs.
fn hidden_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect()
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What [`PendingRun::write`] writes.
fn sorted_run_files() -> Vec<String> {
    let mut names: Vec<String> = RUN_FILES
        .iter()
        .chain([&HEALTH_FILE])
        .map(|s| s.to_string())
        .collect();
    names.sort();
    names
}

/// Trains iris and commits it to `target`.
fn write_run(target: &Path, force: bool) -> (CheckedSpec, Dataset, Trained) {
    let (spec, data, trained) = run(IRIS);
    let existed = target.exists();
    let pending = PendingRun::create(target, force).unwrap();
    assert_eq!(pending.target(), target);
    pending.write(&spec, &data, &trained).unwrap();
    assert_eq!(file_names(pending.dir()), sorted_run_files());
    assert_eq!(
        target.exists(),
        existed,
        "the target is untouched before commit"
    );
    assert_eq!(pending.commit().unwrap(), target);
    (spec, data, trained)
}

#[test]
fn a_committed_run_has_its_five_files_and_reads_back() {
    let _rng = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("runs").join("iris");
    let (spec, _, trained) = write_run(&target, false);
    assert_eq!(file_names(&target), sorted_run_files());
    assert_eq!(
        hidden_entries(target.parent().unwrap()),
        Vec::<String>::new()
    );

    let run = Run::open(&target).unwrap();
    assert_eq!(run.spec, spec);
    assert_eq!(run.metrics, trained.metrics);
    let s = &run.summary;
    assert_eq!(
        (s.name.as_str(), s.dataset.as_str(), s.task.as_str()),
        ("t", "iris", "classification")
    );
    assert_eq!(
        (s.backend.as_str(), s.seed, s.epochs_planned, s.epochs_run),
        ("flex", 42, 3, 3)
    );
    assert_eq!(s.final_metrics.as_ref(), trained.metrics.last());
    assert_eq!(s.parameters, 4 * 8 + 8 + 8 * 3 + 3);
    assert_eq!(s.stopped_early, None);
}

#[test]
fn a_run_reloads_its_initial_and_final_networks() {
    let _rng = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("iris");
    let (_, data, trained) = write_run(&target, false);
    let run = Run::open(&target).unwrap();
    let device = inference_device(Backend::Ndarray).unwrap();
    let final_net = run.network(Stage::Final, &data, &device).unwrap();
    assert_eq!(
        outputs(&final_net, &data, &device),
        outputs(&trained.network, &data, &device)
    );
    assert_eq!(weights(&final_net), weights(&trained.network));
    let initial = run.network(Stage::Initial, &data, &device).unwrap();
    assert_eq!(weights(&initial), weights(&trained.initial));
    assert_ne!(weights(&initial), weights(&final_net));
    // The reloaded network evaluates as training last measured it.
    let evaluation = evaluate(&final_net, &data.test, &device);
    assert_eq!(evaluation.accuracy, trained.metrics[2].test_accuracy);
}

#[test]
fn creating_over_an_existing_run_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("old");
    std::fs::create_dir(&target).unwrap();
    let err = PendingRun::create(&target, false).unwrap_err();
    assert!(
        matches!(&err, TrainError::RunExists(p) if p == &target),
        "{err:?}"
    );
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(hidden_entries(dir.path()), Vec::<String>::new());
}

#[test]
fn commit_refuses_a_target_that_appeared_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("raced");
    let pending = PendingRun::create(&target, false).unwrap();
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), "someone else's").unwrap();
    let err = pending.commit().unwrap_err();
    assert!(
        matches!(&err, TrainError::NotReplaceable { path, .. } if path == &target),
        "{err:?}"
    );
    assert_eq!(file_names(&target), ["keep"]);
    assert_eq!(hidden_entries(dir.path()), Vec::<String>::new());
}

#[test]
fn dropping_a_pending_run_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("abandoned");
    let pending = PendingRun::create(&target, false).unwrap();
    let temp = pending.dir().to_path_buf();
    assert!(temp.is_dir());
    assert_eq!(temp.parent(), Some(dir.path()));
    std::fs::write(temp.join(CONFIG_FILE), "half written").unwrap();
    drop(pending);
    assert!(!temp.exists());
    assert!(!target.exists());
    assert_eq!(file_names(dir.path()), Vec::<String>::new());
}

#[test]
fn force_never_replaces_what_is_not_a_run() {
    let dir = tempfile::tempdir().unwrap();
    // A directory holding a file neuron-doctor did not write.
    let target = dir.path().join("iris");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("stale.txt"), "the user's").unwrap();
    let err = PendingRun::create(&target, true).unwrap_err();
    assert!(matches!(&err, TrainError::NotReplaceable { .. }), "{err:?}");
    assert!(err.to_string().contains("stale.txt"), "{err}");
    // A plain file, with or without force.
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "mine").unwrap();
    for force in [true, false] {
        let err = PendingRun::create(&file, force).unwrap_err();
        assert!(err.to_string().contains("is a file"), "{err}");
    }
    // A fix directory with something else in it.
    let fix = dir.path().join("iris.fix");
    std::fs::create_dir_all(fix.join("notes")).unwrap();
    let err = PendingRun::create(&fix, true).unwrap_err();
    assert!(err.to_string().contains("notes/"), "{err}");
    assert_eq!(
        std::fs::read_to_string(target.join("stale.txt")).unwrap(),
        "the user's"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    assert!(fix.join("notes").is_dir());
    assert_eq!(hidden_entries(dir.path()), Vec::<String>::new());
}

#[test]
fn a_run_name_too_long_for_its_temporary_name_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("n".repeat(MAX_RUN_NAME_BYTES + 1));
    let err = PendingRun::create(&target, false).unwrap_err();
    assert!(matches!(&err, TrainError::BadRunPath { .. }), "{err:?}");
    assert_eq!(file_names(dir.path()), Vec::<String>::new());
    PendingRun::create(&dir.path().join("n".repeat(MAX_RUN_NAME_BYTES)), false).unwrap();
}

#[test]
fn a_forced_commit_replaces_an_old_run() {
    let _rng = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("iris");
    std::fs::create_dir(&target).unwrap();
    write_run(&target, true);
    assert_eq!(file_names(&target), sorted_run_files());
    assert_eq!(file_names(dir.path()), ["iris"]);
    Run::open(&target).unwrap();

    // And once more over a complete run, the case `train --force` meets.
    write_run(&target, true);
    assert_eq!(file_names(dir.path()), ["iris"]);
    Run::open(&target).unwrap();
}

#[test]
fn a_forced_commit_of_a_dotted_name_leaves_nothing_behind() {
    // The old run is parked beside the new one while they swap; a name with a dot must not
    // confuse where it is parked.
    let _rng = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("iris.v2");
    write_run(&target, false);
    write_run(&target, true);
    assert_eq!(file_names(dir.path()), ["iris.v2"]);
}

#[test]
fn opening_an_incomplete_run_names_the_missing_file() {
    let _rng = serial();
    let dir = tempfile::tempdir().unwrap();
    let complete = dir.path().join("complete");
    write_run(&complete, false);

    let err = Run::open(&dir.path().join("nowhere")).unwrap_err();
    assert!(matches!(&err, TrainError::NotARun { .. }), "{err:?}");

    for missing in RUN_FILES {
        let target = dir.path().join(format!("without-{missing}"));
        std::fs::create_dir(&target).unwrap();
        for file in RUN_FILES.iter().filter(|f| **f != missing) {
            std::fs::copy(complete.join(file), target.join(file)).unwrap();
        }
        let err = Run::open(&target).unwrap_err();
        match &err {
            TrainError::NotARun { dir, problem } => {
                assert_eq!(dir, &target);
                assert!(problem.contains(missing), "{problem}");
            }
            other => panic!("{missing} missing gave {other:?}"),
        }
        assert!(err.to_string().contains(missing), "{err}");
    }
}

#[test]
fn opening_a_run_with_corrupt_files_says_which() {
    let _rng = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("iris");
    write_run(&target, false);
    let metrics_path = target.join(METRICS_FILE);
    let summary_path = target.join(SUMMARY_FILE);
    let good_metrics = std::fs::read_to_string(&metrics_path).unwrap();
    let good_summary = std::fs::read_to_string(&summary_path).unwrap();

    // The second line is cut in half.
    let lines: Vec<&str> = good_metrics.lines().collect();
    let broken = format!(
        "{}\n{}\n{}\n",
        lines[0],
        &lines[1][..lines[1].len() / 2],
        lines[2]
    );
    std::fs::write(&metrics_path, broken).unwrap();
    match Run::open(&target).unwrap_err() {
        TrainError::Corrupt { path, problem } => {
            assert_eq!(path, metrics_path);
            assert!(problem.contains("line 2"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(&metrics_path, &good_metrics).unwrap();

    std::fs::write(&summary_path, "{\"name\": 3}").unwrap();
    match Run::open(&target).unwrap_err() {
        TrainError::Corrupt { path, .. } => assert_eq!(path, summary_path),
        other => panic!("{other:?}"),
    }
    std::fs::write(&summary_path, &good_summary).unwrap();

    std::fs::write(target.join(CONFIG_FILE), "[model]\nhidden = \"wide\"\n").unwrap();
    let err = Run::open(&target).unwrap_err();
    assert!(matches!(err, TrainError::Spec(_)), "{err:?}");
    assert!(err.to_string().contains(CONFIG_FILE), "{err}");
}

#[test]
fn a_run_reads_its_health_back_and_opens_without_it() {
    let _rng = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("iris");
    let (_, _, trained) = write_run(&target, false);
    assert_eq!(Run::open(&target).unwrap().health, trained.health);

    let health_path = target.join(HEALTH_FILE);
    std::fs::write(&health_path, "{\"epoch\": 1}\n").unwrap();
    match Run::open(&target).unwrap_err() {
        TrainError::Corrupt { path, problem } => {
            assert_eq!(path, health_path);
            assert!(problem.contains("line 1"), "{problem}");
        }
        other => panic!("{other:?}"),
    }

    std::fs::remove_file(&health_path).unwrap();
    assert_eq!(Run::open(&target).unwrap().health, Vec::new());
}

#[test]
fn a_run_with_damaged_weights_is_an_error_naming_the_file() {
    let _rng = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("iris");
    let (_, data, _) = write_run(&target, false);
    let final_path = target.join(FINAL_WEIGHTS);
    let bytes = std::fs::read(&final_path).unwrap();
    std::fs::write(&final_path, &bytes[..bytes.len() / 3]).unwrap();
    let run = Run::open(&target).unwrap();
    let device = inference_device(Backend::Ndarray).unwrap();
    let err = run.network(Stage::Final, &data, &device).unwrap_err();
    assert!(matches!(err, TrainError::Model(_)), "{err:?}");
    assert!(
        err.to_string().contains(&final_path.display().to_string()),
        "{err}"
    );
    run.network(Stage::Initial, &data, &device).unwrap();
}

#[test]
fn weights_replaced_by_others_of_the_same_shape_fail_the_checksum() {
    let _rng = serial();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("iris");
    let (_, data, _) = write_run(&target, false);
    let final_path = target.join(FINAL_WEIGHTS);
    std::fs::copy(target.join(INITIAL_WEIGHTS), &final_path).unwrap();
    let device = inference_device(Backend::Ndarray).unwrap();
    let run = Run::open(&target).unwrap();
    assert_eq!(run.summary.sha256.len(), 2);
    match run.network(Stage::Final, &data, &device).unwrap_err() {
        TrainError::Corrupt { path, problem } => {
            assert_eq!(path, final_path);
            assert!(problem.contains("SHA-256"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    run.network(Stage::Initial, &data, &device).unwrap();
    // A run written before checksums were recorded loads as it did.
    let summary_path = target.join(SUMMARY_FILE);
    let mut summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    summary.as_object_mut().unwrap().remove("sha256");
    std::fs::write(&summary_path, summary.to_string()).unwrap();
    let run = Run::open(&target).unwrap();
    run.network(Stage::Final, &data, &device).unwrap();
}
