//! The probe's device-side statistics against the same statistics computed on the host from
//! the traced forward pass.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use nd_data::{Split, Targets};
use nd_models::{ModelShape, Network};
use nd_spec::Spec;

use super::{probe, ProbeOptions};
use crate::activations::activate;
use crate::batch::host_values;

#[allow(deprecated)]
fn device() -> Device {
    Device::ndarray().autodiff()
}

fn split(rows: usize, width: usize) -> Split {
    // A deterministic, varied input: some units will be inactive on some rows.
    let features = (0..rows * width)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * if i % 3 == 0 { 2.0 } else { 0.5 })
        .collect();
    Split {
        rows,
        features,
        targets: Targets::Classes((0..rows).map(|r| r % 3).collect()),
    }
}

fn network(activation: &str, bias: f64, device: &Device) -> Network {
    network_with(
        &format!("activation = \"{activation}\"\nbias_init = {bias}"),
        device,
    )
}

/// The iris 16-8 network with `model` lines added to its `[model]` section, seeded.
fn network_with(model: &str, device: &Device) -> Network {
    let text = format!("[data]\ndataset = \"iris\"\n[model]\nhidden = [16, 8]\n{model}");
    let spec = Spec::from_toml_str(&text, "t").unwrap().check().unwrap();
    device.seed(3);
    let shape = ModelShape {
        inputs: 4,
        outputs: 3,
        image: None,
    };
    Network::new(&spec, &shape, device).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-4 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn device_statistics_match_the_host_for_every_activation() {
    let device = device();
    // 1500 rows: more than one probe chunk.
    let data = split(1500, 4);
    for activation in [
        "relu",
        "leaky_relu",
        "elu",
        "gelu",
        "silu",
        "sigmoid",
        "tanh",
        "softplus",
    ] {
        let net = network(activation, -0.2, &device);
        let p = probe(&net, &data, &device, &ProbeOptions::default());
        let rows: Vec<usize> = (0..data.rows).collect();
        let (_, traces) = net
            .valid()
            .forward_traced(crate::features(&data, &rows, &device));
        for (site, trace) in p.sites.iter().zip(traces) {
            let units = site.units;
            let pre = host_values(trace.pre);
            let post = host_values(trace.post);
            for u in 0..units {
                let column = |v: &[f32]| -> Vec<f64> {
                    v.iter().skip(u).step_by(units).map(|&x| x as f64).collect()
                };
                let (pre_u, post_u) = (column(&pre), column(&post));
                let n = post_u.len() as f64;
                let mean = post_u.iter().sum::<f64>() / n;
                let std = (post_u.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
                let inactive = pre_u.iter().filter(|x| **x <= 0.0).count() as f64 / n;
                let min = post_u.iter().copied().fold(f64::INFINITY, f64::min);
                let max = post_u.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let pre_max = pre_u.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let what = format!("{activation} {} unit {u}", site.name);
                assert!(
                    close(site.mean[u], mean),
                    "{what}: mean {} vs {mean}",
                    site.mean[u]
                );
                assert!(
                    close(site.std[u], std),
                    "{what}: std {} vs {std}",
                    site.std[u]
                );
                assert!(
                    close(site.inactive_fraction[u], inactive),
                    "{what}: inactive"
                );
                assert!(
                    close(site.min[u], min),
                    "{what}: min {} vs {min}",
                    site.min[u]
                );
                assert!(
                    close(site.max[u], max),
                    "{what}: max {} vs {max}",
                    site.max[u]
                );
                assert!(close(site.pre_max[u], pre_max), "{what}: pre max");
            }
            assert_eq!(site.observations, data.rows);
            assert!(site.pre_histogram.total() > 0);
        }
    }
}

#[test]
fn strongly_negative_biases_make_dead_units_that_the_probe_counts() {
    let device = device();
    let data = split(600, 4);
    let net = network("relu", -5.0, &device);
    let p = probe(&net, &data, &device, &ProbeOptions::default());
    let site = p.site("hidden.0").unwrap();
    let rows: Vec<usize> = (0..data.rows).collect();
    let (_, traces) = net
        .valid()
        .forward_traced(crate::features(&data, &rows, &device));
    let pre = host_values(traces[0].pre.clone());
    let expected: Vec<usize> = (0..16)
        .filter(|u| pre.iter().skip(*u).step_by(16).all(|x| *x <= 0.0))
        .collect();
    assert!(!expected.is_empty(), "bias -5 should kill some units");
    assert_eq!(site.dead_units(), expected);
}

#[test]
fn host_activation_matches_the_tensor_activation() {
    #[allow(deprecated)]
    let device = Device::ndarray();
    let xs: Vec<f32> = (-40..=40).map(|i| i as f32 / 4.0).collect();
    let input = Tensor::<1>::from_floats(xs.as_slice(), &device);
    for activation in nd_spec::Activation::ALL {
        let activation: nd_spec::Activation = activation.parse().unwrap();
        let out = host_values(nd_models::apply_activation(input.clone(), activation, 0.05));
        for (x, y) in xs.iter().zip(out) {
            let expected = activate(activation, 0.05, *x as f64);
            assert!(
                (expected - y as f64).abs() < 1e-4 * (1.0 + expected.abs()),
                "{activation}({x}) = {y}, host says {expected}"
            );
        }
    }
}

#[test]
fn probe_memory_does_not_depend_on_rows_and_limit_is_honoured() {
    let device = device();
    let data = split(2000, 4);
    let net = network("relu", 0.0, &device);
    let some = ProbeOptions {
        limit: Some(100),
        ..ProbeOptions::default()
    };
    let p = probe(&net, &data, &device, &some);
    assert_eq!(p.samples, 100);
    assert_eq!(p.sites[0].observations, 100);
    assert_eq!(p.sites[0].mean.len(), 16);
    assert!(p.loss.is_finite());
    assert!(p.layers.iter().all(|l| l.grad_norm > 0.0));
}

#[test]
fn gradient_norms_are_measured_with_dropout_off() {
    // The same weights with and without dropout: the gradient columns must agree, or a model
    // with dropout could not be compared with its twin without it.
    let device = device();
    let data = split(300, 4);
    let build = |dropout: f64| network_with(&format!("dropout = {dropout}"), &device);
    let options = ProbeOptions {
        limit: None,
        grad_batch: 300,
    };
    let plain = probe(&build(0.0), &data, &device, &options);
    let dropped = probe(&build(0.5), &data, &device, &options);
    for (a, b) in plain.layers.iter().zip(&dropped.layers) {
        assert!(a.grad_norm > 0.0, "{}", a.name);
        assert!(
            close(a.grad_norm, b.grad_norm),
            "{}: {} without dropout, {} with",
            a.name,
            a.grad_norm,
            b.grad_norm
        );
    }
}

#[test]
fn the_gradient_ratio_is_not_a_made_up_one() {
    let device = device();
    let data = split(64, 4);
    let options = ProbeOptions {
        limit: None,
        grad_batch: 0,
    };
    // No backward pass: no gradient, no ratio.
    let p = probe(&network("relu", 0.0, &device), &data, &device, &options);
    assert!(p.gradient_ratio.is_nan(), "{}", p.gradient_ratio);
}

#[test]
fn each_dense_layers_pre_activation_mean_is_the_traced_one_and_splits_into_bias_and_weights() {
    let device = device();
    let data = split(700, 4);
    for (activation, bias) in [("relu", -0.5), ("tanh", 0.3), ("leaky_relu", 0.0)] {
        let network = network(activation, bias, &device);
        let p = probe(&network, &data, &device, &ProbeOptions::default());
        let x = Tensor::from_data(
            burn::tensor::TensorData::new(data.features.clone(), [data.rows, 4]),
            &device,
        );
        let (_, traces) = network.valid().forward_traced(x);
        for (i, trace) in traces.iter().enumerate() {
            let pre = host_values(trace.pre.clone());
            let traced = pre.iter().map(|&v| v as f64).sum::<f64>() / pre.len() as f64;
            let ours = p.layers[i].pre_mean.expect("a dense layer of an mlp");
            assert!(
                close(ours, traced),
                "{activation} layer {i}: {ours} vs {traced}"
            );
            assert!(
                close(p.layers[i].bias_mean, bias),
                "{activation} layer {i} bias"
            );
        }
    }
}
