//! Training and probing throughput of the digits MLP (64-128-128-10, batch 64, Adam) and of the
//! MNIST CNN of `configs/mnist-cnn.toml` on ndarray, flex and, built with the `wgpu` feature (as
//! `cargo xtask bench` does), wgpu: the `epoch`, `probe` and `cnn` groups are ndarray,
//! `epoch_flex`, `probe_flex` and `cnn_flex` the same benchmarks on flex, `epoch_wgpu`,
//! `probe_wgpu` and `cnn_wgpu` on the wgpu adapter (named on stderr when the run starts;
//! skipped, saying why, when there is none).
//!
//! Run with `cargo xtask bench` (or `cargo bench -p nd-train --bench epoch`); criterion's
//! estimates land in `target/criterion/<group>/<benchmark>/new/estimates.json`.
//! Every benchmark declares the rows it handles as its throughput, so time per row is the median
//! divided by 1442 (the train split) or 1797 (both splits).
//!
//! - `epoch/digits_mlp_train`: [`nd_train::train`] for one epoch: seeded initialization, the
//!   23 optimizer steps, and the evaluation of both splits that ends every epoch.
//! - `epoch/digits_mlp_fit`: [`nd_train::fit`] for one epoch on an initialized network: the
//!   same without initialization.
//! - `epoch/digits_mlp_steps`: the optimizer steps alone, as `fit` takes them.
//! - `epoch/digits_mlp_evaluate`: the end-of-epoch evaluation alone (train and test splits).
//! - `probe/forward_only`: a plain inference forward over the train split, in the probe's chunks.
//! - `probe/forward_traced`: the same, keeping every activation site's values.
//! - `probe/grad_batch_1`: [`nd_probe::probe`] with the smallest gradient batch it takes
//!   (1 row; it treats 0 as 1): activation statistics and weight reads, almost no backward.
//! - `probe/full`: [`nd_probe::probe`] with the default options (a 512-row backward pass).
//! - `cnn/mnist_cnn_fit`: one epoch of the MNIST CNN (2000 images, batch 64, Adam) with its
//!   evaluation, as `train` runs it; PyTorch's figure for the same net is in the README.
//! - `cnn/mnist_cnn_forward_only`, `cnn/mnist_cnn_probe_activations`, `cnn/mnist_cnn_probe_full`:
//!   the probe of that CNN against a plain forward pass over its 2000 training images.
//! - `import/<model>_<format>`: reading one of the PyTorch models of `fixtures/models/` (ONNX,
//!   SafeTensors, state_dict) into its spec and a network on flex carrying its weights, what
//!   `import` does before it measures the model on its data.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::Device;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use nd_data::Dataset;
use nd_models::Network;
use nd_probe::ProbeOptions;
use nd_spec::{Backend, CheckedSpec};
use nd_train::Quiet;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The spec of `configs/digits-relu.toml`, one epoch.
const SPEC: &str = r#"
[data]
dataset = "digits"

[model]
hidden = [128, 128]
activation = "relu"

[train]
optimizer = "adam"
learning_rate = 0.001
batch_size = 64
epochs = 1
"#;

/// Rows per forward pass in `probe`: for a dense network whose widest layer has 128 units the
/// probe's chunk is `clamp(4_000_000 / 128, 1, 1024)` = 1024 rows.
const PROBE_CHUNK: usize = 1024;

struct Setup {
    spec: CheckedSpec,
    data: Dataset,
    device: Device,
    /// Initialized by [`nd_train::init_network`], its lazy parameters already drawn.
    network: Network,
}

/// An observer that turns live health sampling off.
struct NoHealth;
impl nd_train::Observer for NoHealth {
    fn health_every(&self) -> usize {
        0
    }
}

/// The benchmarks' setup of the digits MLP on `backend`, or `None` (said on stderr) where it
/// cannot run.
fn setup(backend: Backend) -> Option<Setup> {
    setup_spec(SPEC, backend)
}

/// The setup of `text` (a spec) on `backend`.
fn setup_spec(text: &str, backend: Backend) -> Option<Setup> {
    let spec = nd_spec::Spec::from_toml_str(text, "bench")
        .and_then(|mut spec| {
            spec.train.backend = backend;
            spec.check()
        })
        .expect("the bench spec is valid");
    let data = nd_data::load(&spec.data, Path::new(".")).expect("digits is builtin");
    let device = match nd_train::device(backend) {
        Ok(device) => device,
        Err(error) => {
            eprintln!("skipping the {backend} benchmarks: {error}");
            return None;
        }
    };
    eprintln!(
        "{backend} benchmarks on {}",
        nd_train::describe(backend).expect("the device exists")
    );
    let network = nd_train::init_network(&spec, &data, &device).expect("the network builds");
    // burn draws parameters at first use; clones share the drawn values, so the benchmarks
    // below time no initialization.
    black_box(
        network
            .forward(nd_probe::features(&data.train, &[0], &device))
            .into_data(),
    );
    Some(Setup {
        spec,
        data,
        device,
        network,
    })
}

/// The backends this build computes on: ndarray, flex, and wgpu with the `wgpu` feature.
fn backends() -> Vec<(Backend, &'static str)> {
    let mut all = vec![(Backend::Ndarray, ""), (Backend::Flex, "_flex")];
    if nd_train::compiled(Backend::Wgpu) {
        all.push((Backend::Wgpu, "_wgpu"));
    }
    all
}

fn all_rows(rows: usize) -> Vec<usize> {
    (0..rows).collect()
}

fn epoch(c: &mut Criterion) {
    for (backend, suffix) in backends() {
        if let Some(setup) = setup(backend) {
            epoch_on(c, &format!("epoch{suffix}"), setup);
        }
    }
}

fn epoch_on(c: &mut Criterion, name: &str, setup: Setup) {
    let Setup {
        spec,
        data,
        device,
        network,
    } = setup;
    let train_rows = data.train.rows as u64;
    let mut group = c.benchmark_group(name);
    // Tens of milliseconds per iteration: flat sampling keeps the run to seconds (linear
    // sampling would ask for 5050 iterations).
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(train_rows));

    group.bench_function("digits_mlp_train", |b| {
        b.iter(|| nd_train::train(&spec, &data, &device, &mut Quiet).expect("training runs"))
    });
    group.bench_function("digits_mlp_fit", |b| {
        b.iter_batched(
            || network.clone(),
            |network| {
                nd_train::fit(network, &spec, &data, &device, 1, &mut Quiet).expect("training runs")
            },
            BatchSize::SmallInput,
        )
    });
    // The same epoch without live health sampling: the difference is the monitoring's cost.
    group.bench_function("digits_mlp_fit_no_health", |b| {
        b.iter_batched(
            || network.clone(),
            |network| {
                nd_train::fit(network, &spec, &data, &device, 1, &mut NoHealth)
                    .expect("training runs")
            },
            BatchSize::SmallInput,
        )
    });
    // The loop of `nd_train::fit` without its evaluation; keep the two in step.
    let batch_size = spec.train.batch_size;
    let learning_rate = spec.train.learning_rate;
    group.bench_function("digits_mlp_steps", |b| {
        b.iter_batched(
            || network.clone().train(),
            |mut network| {
                let mut optimizer = AdamConfig::new().init();
                let mut order = all_rows(data.train.rows);
                order.shuffle(&mut ChaCha8Rng::seed_from_u64(spec.train.seed));
                for chunk in order.chunks(batch_size) {
                    let output = network.forward(nd_probe::features(&data.train, chunk, &device));
                    let loss = nd_probe::loss(output, &data.train.targets, chunk, &device);
                    let grads = GradientsParams::from_grads(loss.backward(), &network);
                    network = optimizer.step(learning_rate, network, grads);
                }
                // wgpu queues its work: wait for it (a no-op on ndarray).
                device.sync().expect("the device finishes its work");
                network
            },
            BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(train_rows + data.test.rows as u64));
    group.bench_function("digits_mlp_evaluate", |b| {
        b.iter(|| {
            (
                nd_train::evaluate(&network, &data.train, &device),
                nd_train::evaluate(&network, &data.test, &device),
            )
        })
    });
    group.finish();
}

fn probe(c: &mut Criterion) {
    for (backend, suffix) in backends() {
        if let Some(setup) = setup(backend) {
            probe_on(c, &format!("probe{suffix}"), setup);
        }
    }
}

fn probe_on(c: &mut Criterion, name: &str, setup: Setup) {
    let Setup {
        data,
        device,
        network,
        ..
    } = setup;
    let rows = all_rows(data.train.rows);
    let mut group = c.benchmark_group(name);
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(data.train.rows as u64));

    // `valid()` inside the timed loop, as in `probe`: it is part of what a pass costs.
    group.bench_function("forward_only", |b| {
        b.iter(|| {
            let inference = network.valid();
            for chunk in rows.chunks(PROBE_CHUNK) {
                let output = inference.forward(nd_probe::features(&data.train, chunk, &device));
                black_box(output.into_data());
            }
        })
    });
    group.bench_function("forward_traced", |b| {
        b.iter(|| {
            let inference = network.valid();
            for chunk in rows.chunks(PROBE_CHUNK) {
                let traced =
                    inference.forward_traced(nd_probe::features(&data.train, chunk, &device));
                black_box(traced);
                device.sync().expect("the device finishes its work");
            }
        })
    });
    let activations_only = ProbeOptions {
        grad_batch: 0,
        ..ProbeOptions::default()
    };
    group.bench_function("activations", |b| {
        b.iter(|| nd_probe::probe(&network, &data.train, &device, &activations_only))
    });
    let minimal = ProbeOptions {
        grad_batch: 1,
        ..ProbeOptions::default()
    };
    group.bench_function("grad_batch_1", |b| {
        b.iter(|| nd_probe::probe(&network, &data.train, &device, &minimal))
    });
    group.bench_function("full", |b| {
        b.iter(|| nd_probe::probe(&network, &data.train, &device, &ProbeOptions::default()))
    });
    group.finish();
}

/// Rows per forward pass in `probe` for the MNIST CNN: `4_000_000 / (784 pixels * 16 channels)`.
const CNN_PROBE_CHUNK: usize = 318;

/// `configs/mnist-cnn.toml`, one epoch.
const CNN_SPEC: &str = r#"
[data]
dataset = "mnist"
limit = 2000

[model]
kind = "cnn"
hidden = [8, 16]
dense = [32]
activation = "relu"
init = "kaiming_normal"

[train]
learning_rate = 0.002
epochs = 1
batch_size = 64
"#;

fn cnn(c: &mut Criterion) {
    for (backend, suffix) in backends() {
        let Some(setup) = setup_spec(CNN_SPEC, backend) else {
            continue;
        };
        let Setup {
            spec,
            data,
            device,
            network,
        } = setup;
        let rows = all_rows(data.train.rows);
        let mut group = c.benchmark_group(format!("cnn{suffix}"));
        // Seconds per iteration on ndarray: ten samples.
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(10));
        group.throughput(Throughput::Elements(data.train.rows as u64));
        group.bench_function("mnist_cnn_fit", |b| {
            b.iter_batched(
                || network.clone(),
                |network| {
                    nd_train::fit(network, &spec, &data, &device, 1, &mut Quiet)
                        .expect("training runs")
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_function("mnist_cnn_forward_only", |b| {
            b.iter(|| {
                let inference = network.valid();
                for chunk in rows.chunks(CNN_PROBE_CHUNK) {
                    let output = inference.forward(nd_probe::features(&data.train, chunk, &device));
                    black_box(output.into_data());
                }
            })
        });
        let activations_only = ProbeOptions {
            grad_batch: 0,
            ..ProbeOptions::default()
        };
        group.bench_function("mnist_cnn_probe_activations", |b| {
            b.iter(|| nd_probe::probe(&network, &data.train, &device, &activations_only))
        });
        group.bench_function("mnist_cnn_probe_full", |b| {
            b.iter(|| nd_probe::probe(&network, &data.train, &device, &ProbeOptions::default()))
        });
        group.finish();
    }
}

criterion_group!(benches, epoch, probe, cnn, ops, import);
criterion_main!(benches);

/// Costs of single tensor operations on one probe chunk, to see where the probe's time goes:
/// `ops` on ndarray, `ops_flex` on flex.
fn ops(c: &mut Criterion) {
    for (backend, suffix) in [(Backend::Ndarray, ""), (Backend::Flex, "_flex")] {
        let device = nd_train::inference_device(backend).expect("a CPU backend");
        ops_on(c, &format!("ops{suffix}"), &device);
    }
}

fn ops_on(c: &mut Criterion, name: &str, device: &Device) {
    use burn::tensor::{Distribution, Tensor};
    let device = device.clone();
    let x = Tensor::<2>::random([1024, 128], Distribution::Normal(0.0, 1.0), &device);
    let mut group = c.benchmark_group(name);
    group.sample_size(30);
    group.bench_function("sum_dim0", |b| {
        b.iter(|| black_box(x.clone().sum_dim(0).into_data()))
    });
    group.bench_function("sum_dim1", |b| {
        b.iter(|| black_box(x.clone().sum_dim(1).into_data()))
    });
    group.bench_function("max_dim0", |b| {
        b.iter(|| black_box(x.clone().max_dim(0).into_data()))
    });
    group.bench_function("transpose_max_dim1", |b| {
        b.iter(|| black_box(x.clone().transpose().max_dim(1).into_data()))
    });
    group.bench_function("le_float", |b| {
        b.iter(|| black_box(x.clone().lower_equal_elem(0.0).float().into_data()))
    });
    group.bench_function("powi", |b| {
        b.iter(|| black_box(x.clone().powi_scalar(2).into_data()))
    });
    group.bench_function("mul_self", |b| {
        b.iter(|| black_box((x.clone() * x.clone()).into_data()))
    });
    group.bench_function("into_data", |b| b.iter(|| black_box(x.clone().into_data())));
    let y = Tensor::<2>::from_data(
        burn::tensor::TensorData::new(vec![0.5f32; 1024 * 128], [1024, 128]),
        &device,
    );
    group.bench_function("into_data_from_data", |b| {
        b.iter(|| black_box(y.clone().into_data()))
    });
    group.bench_function("into_data_after_add", |b| {
        b.iter(|| black_box((x.clone() + 1.0).into_data()))
    });
    group.bench_function("into_data_small", |b| {
        b.iter(|| black_box(x.clone().slice([0..8, 0..128]).into_data()))
    });
    group.bench_function("iter_f32", |b| {
        let data = y.clone().into_data();
        b.iter(|| black_box(data.iter::<f32>().sum::<f32>()))
    });
    group.bench_function("to_vec_f32", |b| {
        let data = y.clone().into_data();
        b.iter(|| black_box(data.try_to_vec::<f32>().unwrap()))
    });
    group.bench_function("matmul_ones", |b| {
        let ones = Tensor::<2>::ones([1, 1024], &device);
        b.iter(|| black_box(ones.clone().matmul(x.clone()).into_data()))
    });
    group.finish();
}

/// Reading each shipped PyTorch model, every format, into a network on flex.
fn import(c: &mut Criterion) {
    use nd_spec::{DataSpec, OutputActivation, Task, TrainSpec};
    let device = nd_train::device(Backend::Flex).expect("flex is always built");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models");
    let mut group = c.benchmark_group("import");
    group.sample_size(20);
    for (model, features, output) in [
        ("digits-mlp", 64, OutputActivation::None),
        ("digits-mlp-dying", 64, OutputActivation::None),
        ("diabetes-relu-head", 10, OutputActivation::Relu),
        ("mnist-cnn", 784, OutputActivation::None),
    ] {
        for (file, format) in [
            ("model.onnx", "onnx"),
            ("model.safetensors", "safetensors"),
            ("model.pt", "state_dict"),
        ] {
            let path = dir.join(model).join(file);
            let options = nd_import::ImportOptions {
                output_activation: Some(output),
                features: Some(features),
                ..Default::default()
            };
            let regression = model.starts_with("diabetes");
            let data = DataSpec::imported(
                dir.join(model).join("data.csv.gz"),
                if regression { "target" } else { "label" },
                if regression {
                    Task::Regression
                } else {
                    Task::Classification
                },
                None,
            );
            group.bench_function(format!("{model}_{format}"), |b| {
                b.iter(|| {
                    let imported = nd_import::import(&path, &options).expect("a shipped model");
                    let spec = imported
                        .spec(
                            model,
                            data.clone(),
                            None,
                            TrainSpec::default(),
                            Default::default(),
                        )
                        .expect("its own spec")
                        .check()
                        .expect("a valid spec");
                    black_box(imported.network(&spec, &device).expect("its own network"))
                })
            });
        }
    }
    group.finish();
}
