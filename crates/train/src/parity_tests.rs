//! Parity of training across backends: one spec and seed start from the same weights on
//! ndarray, flex and wgpu (they are drawn on the CPU), and train to per-epoch metrics within
//! [`LOSS_RTOL`] (losses, MSE) and [`ACCURACY_TOL`] (accuracies) of ndarray's.
//!
//! The backends add and multiply in different orders, so the weights drift apart by a few
//! float32 roundings per step; the tolerances bound what that drift does to the metrics over a
//! short run. The wgpu tests need a wgpu adapter (without a GPU: Mesa's software Vulkan,
//! `apt-get install mesa-vulkan-drivers`) and the `wgpu` feature.

use std::path::Path;

use nd_spec::Backend;

use crate::tests::{checked, weights};
use crate::{device, init_network, train, EpochMetrics, Quiet};

/// Relative tolerance on every epoch's losses (and regression MSE).
const LOSS_RTOL: f64 = 1e-3;
/// Absolute tolerance on every epoch's accuracies (a fraction: 0.01 is one point).
const ACCURACY_TOL: f64 = 0.01;

fn loss_close(what: &str, epoch: usize, a: f64, b: f64) -> f64 {
    let relative = (a - b).abs() / a.abs().max(b.abs()).max(1e-12);
    assert!(
        relative <= LOSS_RTOL,
        "epoch {epoch} {what}: ndarray {a} vs other backend {b} ({relative:.2e} relative, tolerance {LOSS_RTOL})"
    );
    relative
}

fn accuracy_close(what: &str, epoch: usize, a: Option<f64>, b: Option<f64>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) => {
            let diff = (a - b).abs();
            assert!(
                diff <= ACCURACY_TOL,
                "epoch {epoch} {what}: ndarray {a} vs other backend {b} (tolerance {ACCURACY_TOL})"
            );
            diff
        }
        (None, None) => 0.0,
        other => panic!("epoch {epoch} {what}: {other:?}"),
    }
}

/// Trains `text` on ndarray and on `other`; asserts the same start and metrics within
/// tolerance.
fn assert_trains_alike(text: &str, other: Backend) {
    let spec = checked(text);
    let data = nd_data::load(&spec.data, Path::new(".")).unwrap();
    let cpu = device(Backend::Ndarray).unwrap();
    let gpu = device(other).unwrap();

    let start_cpu = init_network(&spec, &data, &cpu).unwrap();
    let start_gpu = init_network(&spec, &data, &gpu).unwrap();
    assert_eq!(
        weights(&start_cpu),
        weights(&start_gpu),
        "the same seed must give the same initial weights on both backends"
    );

    let on_cpu = train(&spec, &data, &cpu, &mut Quiet).unwrap();
    let on_gpu = train(&spec, &data, &gpu, &mut Quiet).unwrap();
    assert_eq!(weights(&on_gpu.initial), weights(&start_cpu));
    assert_eq!(on_cpu.metrics.len(), on_gpu.metrics.len());
    let (mut worst_loss, mut worst_accuracy) = (0.0f64, 0.0f64);
    for (a, b) in on_cpu.metrics.iter().zip(&on_gpu.metrics) {
        let EpochMetrics { epoch, .. } = *a;
        worst_loss = worst_loss
            .max(loss_close("train loss", epoch, a.train_loss, b.train_loss))
            .max(loss_close("test loss", epoch, a.test_loss, b.test_loss));
        if let (Some(x), Some(y)) = (a.test_mse, b.test_mse) {
            worst_loss = worst_loss.max(loss_close("test mse", epoch, x, y));
        }
        worst_accuracy = worst_accuracy
            .max(accuracy_close(
                "train accuracy",
                epoch,
                a.train_accuracy,
                b.train_accuracy,
            ))
            .max(accuracy_close(
                "test accuracy",
                epoch,
                a.test_accuracy,
                b.test_accuracy,
            ));
    }
    let drift = weights(&on_cpu.network)
        .iter()
        .zip(weights(&on_gpu.network))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!(
        "{other} parity over {} epochs: worst loss difference {worst_loss:.2e} relative, worst accuracy difference {worst_accuracy:.4}, largest weight difference {drift:.2e}",
        on_cpu.metrics.len()
    );
}

/// A ReLU MLP on digits with Adam.
const RELU_MLP: &str = r#"
[data]
dataset = "digits"
[model]
hidden = [128, 128]
init = "kaiming_uniform"
[train]
learning_rate = 0.001
epochs = 5
"#;

/// A tanh regression with SGD and momentum.
const REGRESSION: &str = r#"
[data]
dataset = "diabetes"
target_scale = "standardize"
[model]
hidden = [32, 32]
activation = "tanh"
init = "xavier_uniform"
[train]
optimizer = "sgd"
momentum = 0.9
learning_rate = 0.01
epochs = 5
batch_size = 32
"#;

/// A small CNN on the digits images.
const CNN: &str = r#"
[data]
dataset = "digits"
[model]
kind = "cnn"
hidden = [8, 16]
dense = [32]
init = "kaiming_normal"
[train]
learning_rate = 0.005
epochs = 2
"#;

#[test]
fn flex_trains_a_relu_mlp_like_ndarray() {
    assert_trains_alike(RELU_MLP, Backend::Flex);
}

#[test]
fn flex_trains_a_regression_like_ndarray() {
    assert_trains_alike(REGRESSION, Backend::Flex);
}

#[test]
fn flex_trains_a_cnn_like_ndarray() {
    assert_trains_alike(CNN, Backend::Flex);
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_trains_a_relu_mlp_like_ndarray() {
    assert_trains_alike(RELU_MLP, Backend::Wgpu);
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_trains_a_regression_like_ndarray() {
    assert_trains_alike(REGRESSION, Backend::Wgpu);
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_trains_a_cnn_like_ndarray() {
    assert_trains_alike(CNN, Backend::Wgpu);
}
