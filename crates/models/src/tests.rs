//! Tests of the network: initializer statistics, activations, shapes, parameter surgery and
//! loading weights.
//!
//! Statistics are measured on 256x1024 and 1024x256 weight matrices (262,144 draws): the
//! sample std of that many draws is within about 0.3% of the true std (one sigma is
//! 1/sqrt(2n) = 0.14%), so a 3% tolerance never trips by chance but catches a wrong gain
//! (sqrt(2) vs 1 is 41%) or swapped fans (fan_in 256 vs fan_out 1024 is 2x).

use super::*;
use burn::tensor::{Distribution, TensorData};
use nd_spec::Spec;
use std::f64::consts::SQRT_2;
use std::sync::{Mutex, MutexGuard};

/// ndarray's random generator is one global for the process: cargo-nextest gives every test
/// its own process, but under plain `cargo test` the tests run as threads of one, so each test
/// holds this while it draws, and a seeded draw stays the same whatever runs beside it.
static RNG: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Inputs of the statistics network: the first layer is `[256, 1024]`, the output `[1024, 256]`,
/// so fan_in and fan_out differ by 4x in both.
const STATS_SHAPE: ModelShape = ModelShape {
    inputs: 256,
    outputs: 256,
    image: None,
};
const STATS_HIDDEN: usize = 1024;

/// Relative tolerance on a measured std.
const STD_TOLERANCE: f64 = 0.03;

#[allow(deprecated)]
fn device() -> Device {
    let device = Device::ndarray();
    device.seed(1);
    device
}

/// A checked spec for `dataset` with `model` as the `[model]` section's body.
fn spec_for(dataset: &str, model: &str) -> CheckedSpec {
    let text = format!("[data]\ndataset = \"{dataset}\"\n[model]\n{model}\n");
    Spec::from_toml_str(&text, "t").unwrap().check().unwrap()
}

/// An mlp spec; the dataset only matters to the task.
fn spec(model: &str) -> CheckedSpec {
    spec_for("iris", model)
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().iter::<f32>().collect()
}

fn mean_std(values: &[f32]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    (mean, var.sqrt())
}

fn max_abs(values: &[f32]) -> f64 {
    values.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()))
}

fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} is not within {tolerance} of {expected}"
    );
}

/// Weight statistics of one layer: mean ~ 0 and std within [`STD_TOLERANCE`] of `std`.
fn assert_weight_std(params: &LayerParams, std: f64, what: &str) {
    let w = values(params.weight.clone());
    let (mean, measured) = mean_std(&w);
    // The sample mean's own std is std / sqrt(n) = std / 512: 0.01 * std is 5 sigma.
    assert_close(mean, 0.0, 0.01 * std, &format!("{what} mean"));
    assert!(
        (measured / std - 1.0).abs() <= STD_TOLERANCE,
        "{what}: std {measured} is not within 3% of {std}"
    );
}

/// Weights of a uniform initializer: inside [-bound, bound], reaching close to it.
fn assert_uniform_bound(params: &LayerParams, bound: f64, what: &str) {
    let w = values(params.weight.clone());
    let max = max_abs(&w);
    // f32 rounding of the bound itself.
    assert!(
        max <= bound * (1.0 + 1e-6),
        "{what}: |w| reaches {max} > bound {bound}"
    );
    assert!(
        max >= bound * 0.99,
        "{what}: |w| only reaches {max}, bound {bound}"
    );
    assert_weight_std(params, bound / 3f64.sqrt(), what);
}

/// The hidden and the output layer of the statistics network built from `model`.
fn stats_params(model: &str) -> (LayerParams, LayerParams) {
    let spec = spec(&format!("hidden = [{STATS_HIDDEN}]\n{model}"));
    let net = Network::new(&spec, &STATS_SHAPE, &device()).unwrap();
    let mut params = net.layer_params();
    assert_eq!(params.len(), 2);
    let output = params.pop().unwrap();
    let hidden = params.pop().unwrap();
    assert_eq!(hidden.weight.dims(), [256, STATS_HIDDEN]);
    assert_eq!(output.weight.dims(), [STATS_HIDDEN, 256]);
    (hidden, output)
}

// Fans of the statistics network.
const HIDDEN_FAN_IN: f64 = 256.0;
const HIDDEN_FAN_OUT: f64 = 1024.0;
const OUTPUT_FAN_IN: f64 = 1024.0;
const OUTPUT_FAN_OUT: f64 = 256.0;

#[test]
fn kaiming_normal_relu_is_he_normal_with_gain_one_on_the_output() {
    let _rng = serial();
    let (hidden, output) = stats_params("init = \"kaiming_normal\"\nactivation = \"relu\"");
    assert_weight_std(&hidden, (2.0 / HIDDEN_FAN_IN).sqrt(), "hidden");
    assert_weight_std(&output, (1.0 / OUTPUT_FAN_IN).sqrt(), "output");
}

#[test]
fn kaiming_uniform_relu_has_he_std_and_bound() {
    let _rng = serial();
    let (hidden, output) = stats_params("init = \"kaiming_uniform\"\nactivation = \"relu\"");
    assert_uniform_bound(&hidden, (6.0 / HIDDEN_FAN_IN).sqrt(), "hidden");
    assert_weight_std(&hidden, (2.0 / HIDDEN_FAN_IN).sqrt(), "hidden");
    assert_uniform_bound(&output, (3.0 / OUTPUT_FAN_IN).sqrt(), "output");
}

#[test]
fn xavier_uniform_tanh_has_glorot_bound_with_tanh_gain() {
    let _rng = serial();
    let (hidden, output) = stats_params("init = \"xavier_uniform\"\nactivation = \"tanh\"");
    let glorot = |fi: f64, fo: f64| (6.0 / (fi + fo)).sqrt();
    assert_uniform_bound(
        &hidden,
        5.0 / 3.0 * glorot(HIDDEN_FAN_IN, HIDDEN_FAN_OUT),
        "hidden",
    );
    assert_uniform_bound(&output, glorot(OUTPUT_FAN_IN, OUTPUT_FAN_OUT), "output");
}

#[test]
fn xavier_normal_has_glorot_std_with_the_activation_gain() {
    let _rng = serial();
    let glorot = |fi: f64, fo: f64| (2.0 / (fi + fo)).sqrt();
    let (hidden, output) = stats_params("init = \"xavier_normal\"\nactivation = \"sigmoid\"");
    assert_weight_std(
        &hidden,
        glorot(HIDDEN_FAN_IN, HIDDEN_FAN_OUT),
        "sigmoid hidden",
    );
    assert_weight_std(
        &output,
        glorot(OUTPUT_FAN_IN, OUTPUT_FAN_OUT),
        "sigmoid output",
    );
    let (hidden, _) = stats_params("init = \"xavier_normal\"\nactivation = \"tanh\"");
    assert_weight_std(
        &hidden,
        5.0 / 3.0 * glorot(HIDDEN_FAN_IN, HIDDEN_FAN_OUT),
        "tanh hidden",
    );
}

#[test]
fn lecun_normal_is_one_over_sqrt_fan_in_whatever_the_activation() {
    let _rng = serial();
    for activation in ["relu", "tanh", "selu", "leaky_relu", "sigmoid"] {
        let (hidden, output) = stats_params(&format!(
            "init = \"lecun_normal\"\nactivation = \"{activation}\""
        ));
        assert_weight_std(
            &hidden,
            1.0 / HIDDEN_FAN_IN.sqrt(),
            &format!("{activation} hidden"),
        );
        assert_weight_std(
            &output,
            1.0 / OUTPUT_FAN_IN.sqrt(),
            &format!("{activation} output"),
        );
    }
}

#[test]
fn normal_init_uses_init_std_on_every_layer() {
    let _rng = serial();
    let (hidden, output) =
        stats_params("init = \"normal\"\ninit_std = 0.05\nactivation = \"relu\"");
    assert_weight_std(&hidden, 0.05, "hidden");
    assert_weight_std(&output, 0.05, "output");
}

#[test]
fn uniform_init_uses_init_range_on_every_layer() {
    let _rng = serial();
    let (hidden, output) =
        stats_params("init = \"uniform\"\ninit_range = 0.2\nactivation = \"tanh\"");
    assert_uniform_bound(&hidden, 0.2, "hidden");
    assert_uniform_bound(&output, 0.2, "output");
}

#[test]
fn leaky_relu_gain_depends_on_the_slope() {
    let _rng = serial();
    let slope = 0.3f64;
    let (hidden, output) = stats_params(&format!(
        "init = \"kaiming_normal\"\nactivation = \"leaky_relu\"\nleaky_slope = {slope}"
    ));
    let gain = (2.0 / (1.0 + slope * slope)).sqrt();
    assert_weight_std(&hidden, gain / HIDDEN_FAN_IN.sqrt(), "hidden");
    assert_weight_std(&output, 1.0 / OUTPUT_FAN_IN.sqrt(), "output");
}

#[test]
fn initial_weights_match_expected_std_for_their_recipe() {
    let _rng = serial();
    // kaiming_normal is the He recipe expected_std names for the relu family, xavier_normal
    // the Glorot one for squashing activations, lecun_normal the one for selu.
    for (init, activation) in [
        ("kaiming_normal", Activation::Relu),
        ("kaiming_normal", Activation::Gelu),
        ("kaiming_normal", Activation::LeakyRelu),
        ("xavier_normal", Activation::Tanh),
        ("xavier_normal", Activation::Sigmoid),
        ("lecun_normal", Activation::Selu),
    ] {
        let (hidden, _) =
            stats_params(&format!("init = \"{init}\"\nactivation = \"{activation}\""));
        let expected = expected_std(
            activation,
            0.01,
            HIDDEN_FAN_IN as usize,
            HIDDEN_FAN_OUT as usize,
        );
        assert_weight_std(&hidden, expected, &format!("{init} {activation}"));
    }
}

#[test]
fn expected_std_values() {
    let _rng = serial();
    let (fi, fo) = (100, 300);
    let he = |gain: f64| gain / 10.0;
    let glorot = |gain: f64| gain * (2.0f64 / 400.0).sqrt();
    let cases = [
        (Activation::Relu, he(SQRT_2)),
        (Activation::Elu, he(SQRT_2)),
        (Activation::Gelu, he(SQRT_2)),
        (Activation::Silu, he(SQRT_2)),
        (Activation::Softplus, he(SQRT_2)),
        (
            Activation::LeakyRelu,
            he((2.0 / (1.0 + 0.2f64 * 0.2)).sqrt()),
        ),
        (Activation::Selu, 0.1),
        (Activation::Tanh, glorot(5.0 / 3.0)),
        (Activation::Sigmoid, glorot(1.0)),
        (Activation::Identity, glorot(1.0)),
    ];
    for (activation, expected) in cases {
        assert_close(
            expected_std(activation, 0.2, fi, fo),
            expected,
            1e-12,
            activation.as_str(),
        );
    }
}

#[test]
fn biases_start_at_bias_init_and_the_output_bias_at_zero() {
    let _rng = serial();
    let spec = spec("hidden = [16, 8]\nbias_init = 0.1");
    let net = Network::new(
        &spec,
        &ModelShape {
            inputs: 4,
            outputs: 3,
            image: None,
        },
        &device(),
    )
    .unwrap();
    let params = net.layer_params();
    assert_eq!(params.len(), 3);
    assert_eq!(values(params[0].bias.clone().unwrap()), vec![0.1f32; 16]);
    assert_eq!(values(params[1].bias.clone().unwrap()), vec![0.1f32; 8]);
    assert_eq!(values(params[2].bias.clone().unwrap()), vec![0.0f32; 3]);

    let spec = spec_for(
        "digits",
        "kind = \"cnn\"\nhidden = [4]\ndense = [8]\nbias_init = -0.25",
    );
    let shape = ModelShape {
        inputs: 64,
        outputs: 10,
        image: Some([1, 8, 8]),
    };
    let params = Network::new(&spec, &shape, &device())
        .unwrap()
        .layer_params();
    assert_eq!(values(params[0].bias.clone().unwrap()), vec![-0.25f32; 4]);
    assert_eq!(values(params[1].bias.clone().unwrap()), vec![-0.25f32; 8]);
    assert_eq!(values(params[2].bias.clone().unwrap()), vec![0.0f32; 10]);
}

// ---------------------------------------------------------------------------------------------
// Activations. Reference values from Python (math module), e.g.
//   import math
//   gelu = lambda x: x * 0.5 * (1 + math.erf(x / math.sqrt(2)))
//   [gelu(x) for x in (-2, -0.5, 0, 0.5, 2)]

const POINTS: [f64; 5] = [-2.0, -0.5, 0.0, 0.5, 2.0];
const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn points() -> Tensor<1> {
    Tensor::from_data(
        TensorData::new(POINTS.map(|x| x as f32).to_vec(), [POINTS.len()]),
        &device(),
    )
}

fn assert_values(actual: Vec<f32>, expected: &[f64], what: &str) {
    assert_eq!(actual.len(), expected.len());
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert_close(a as f64, e, 1e-5, &format!("{what} at x = {}", POINTS[i]));
    }
}

#[test]
fn hidden_activations_give_reference_values() {
    let _rng = serial();
    let reference: Vec<(Activation, Vec<f64>)> = vec![
        (
            Activation::Relu,
            POINTS.iter().map(|&x| x.max(0.0)).collect(),
        ),
        (
            Activation::LeakyRelu,
            POINTS
                .iter()
                .map(|&x| if x > 0.0 { x } else { 0.1 * x })
                .collect(),
        ),
        (
            Activation::Elu,
            POINTS
                .iter()
                .map(|&x| if x > 0.0 { x } else { x.exp() - 1.0 })
                .collect(),
        ),
        (
            Activation::Selu,
            POINTS
                .iter()
                .map(|&x| {
                    SELU_SCALE
                        * if x > 0.0 {
                            x
                        } else {
                            SELU_ALPHA * (x.exp() - 1.0)
                        }
                })
                .collect(),
        ),
        (
            Activation::Gelu,
            vec![
                -0.045_500_263_9,
                -0.154_268_776_1,
                0.0,
                0.345_731_223_9,
                1.954_499_736_1,
            ],
        ),
        (
            Activation::Silu,
            POINTS.iter().map(|&x| x * sigmoid(x)).collect(),
        ),
        (
            Activation::Softplus,
            POINTS.iter().map(|&x| x.exp().ln_1p()).collect(),
        ),
        (
            Activation::Sigmoid,
            POINTS.iter().map(|&x| sigmoid(x)).collect(),
        ),
        (Activation::Tanh, POINTS.iter().map(|&x| x.tanh()).collect()),
        (Activation::Identity, POINTS.to_vec()),
    ];
    for (activation, expected) in reference {
        let actual = values(apply_activation(points(), activation, 0.1));
        assert_values(actual, &expected, activation.as_str());
    }
}

#[test]
fn output_activations_give_reference_values() {
    let _rng = serial();
    let reference: Vec<(OutputActivation, Vec<f64>)> = vec![
        (OutputActivation::None, POINTS.to_vec()),
        (
            OutputActivation::Relu,
            POINTS.iter().map(|&x| x.max(0.0)).collect(),
        ),
        (
            OutputActivation::Sigmoid,
            POINTS.iter().map(|&x| sigmoid(x)).collect(),
        ),
        (
            OutputActivation::Tanh,
            POINTS.iter().map(|&x| x.tanh()).collect(),
        ),
        (
            OutputActivation::Softplus,
            POINTS.iter().map(|&x| x.exp().ln_1p()).collect(),
        ),
    ];
    for (activation, expected) in reference {
        let actual = values(apply_output_activation(points(), activation));
        assert_values(actual, &expected, activation.as_str());
    }
}

/// A `[512, 512]` input and its values.
fn random_input(distribution: Distribution) -> (Tensor<2>, Vec<f32>) {
    let x = Tensor::<2>::random([512, 512], distribution, &device());
    let xs = values(x.clone());
    (x, xs)
}

#[test]
fn hidden_activations_stay_in_their_range() {
    let _rng = serial();
    // Open ranges hold in f32 only where the function has not rounded to its limit:
    // tanh(x) rounds to 1 from about x = 9, sigmoid from about 17. Within [-8, 8] they hold.
    let (x, xs) = random_input(Distribution::Uniform(-8.0, 8.0));
    let check = |activation: Activation, ok: &dyn Fn(f32, f32) -> bool| {
        let ys = values(apply_activation(x.clone(), activation, 0.1));
        for (&x, &y) in xs.iter().zip(&ys) {
            assert!(ok(x, y), "{activation}({x}) = {y} is out of range");
        }
    };
    check(Activation::Relu, &|x, y| y >= 0.0 && y == x.max(0.0));
    check(Activation::LeakyRelu, &|x, y| {
        if x > 0.0 {
            y == x
        } else {
            (y - 0.1 * x).abs() <= 1e-6 && y <= 0.0
        }
    });
    check(Activation::Elu, &|x, y| y >= -1.0 && (x <= 0.0 || y == x));
    check(Activation::Selu, &|x, y| {
        y >= -(SELU_SCALE * SELU_ALPHA) as f32
            && (x <= 0.0 || (y - SELU_SCALE as f32 * x).abs() <= 1e-5)
    });
    // GELU's minimum is -0.16997 (at x = -0.7518), SiLU's -0.27846 (at x = -1.2785).
    check(Activation::Gelu, &|x, y| {
        y >= -0.17 && y <= x.max(0.0) + 1e-6
    });
    check(Activation::Silu, &|x, y| {
        y >= -0.2785 && y <= x.max(0.0) + 1e-6
    });
    check(Activation::Softplus, &|x, y| y > 0.0 && y >= x);
    check(Activation::Sigmoid, &|_, y| y > 0.0 && y < 1.0);
    check(Activation::Tanh, &|_, y| y > -1.0 && y < 1.0);
    check(Activation::Identity, &|x, y| x == y);
}

#[test]
fn activations_stay_finite_and_bounded_on_wide_inputs() {
    let _rng = serial();
    // Inputs up to about +-250: exp overflows f32 from 88, so a naive formula gives inf or NaN.
    let (x, xs) = random_input(Distribution::Normal(0.0, 50.0));
    assert!(
        max_abs(&xs) > 100.0,
        "the input should reach past exp's range"
    );
    let all = [
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Elu,
        Activation::Selu,
        Activation::Gelu,
        Activation::Silu,
        Activation::Softplus,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Identity,
    ];
    for activation in all {
        let ys = values(apply_activation(x.clone(), activation, 0.01));
        assert!(
            ys.iter().all(|y| y.is_finite()),
            "{activation} gave a non-finite value"
        );
    }
    let closed = |activation: OutputActivation| {
        let (low, high) = activation.range();
        let ys = values(apply_output_activation(x.clone(), activation));
        for (&x, &y) in xs.iter().zip(&ys) {
            assert!(y.is_finite(), "{activation}({x}) = {y}");
            assert!(
                (y as f64) >= low && (y as f64) <= high,
                "{activation}({x}) = {y} is outside [{low}, {high}]"
            );
        }
    };
    for activation in [
        OutputActivation::None,
        OutputActivation::Relu,
        OutputActivation::Sigmoid,
        OutputActivation::Tanh,
        OutputActivation::Softplus,
    ] {
        closed(activation);
    }
}

#[test]
fn output_activations_stay_in_their_open_range() {
    let _rng = serial();
    let (x, _) = random_input(Distribution::Uniform(-8.0, 8.0));
    for activation in [
        OutputActivation::Sigmoid,
        OutputActivation::Tanh,
        OutputActivation::Softplus,
    ] {
        let (low, high) = activation.range();
        let ys = values(apply_output_activation(x.clone(), activation));
        let (min, max) = ys
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &y| (lo.min(y), hi.max(y)));
        assert!(
            (min as f64) > low && (max as f64) < high,
            "{activation}: [{min}, {max}] leaves ({low}, {high})"
        );
    }
}

#[test]
fn the_network_applies_its_output_activation() {
    let _rng = serial();
    let spec =
        spec("hidden = [8]\noutput_activation = \"sigmoid\"\ninit = \"normal\"\ninit_std = 5.0");
    let net = Network::new(
        &spec,
        &ModelShape {
            inputs: 4,
            outputs: 3,
            image: None,
        },
        &device(),
    )
    .unwrap();
    let x = Tensor::<2>::random([256, 4], Distribution::Normal(0.0, 3.0), &device());
    let ys = values(net.forward(x));
    assert!(ys.iter().all(|&y| (0.0..=1.0).contains(&y)));
    // With weights this large some outputs saturate: the head is really there.
    assert!(ys.iter().any(|&y| !(0.01..=0.99).contains(&y)));
}

// ---------------------------------------------------------------------------------------------
// Shapes and layers.

const IRIS: ModelShape = ModelShape {
    inputs: 4,
    outputs: 3,
    image: None,
};
const DIGITS: ModelShape = ModelShape {
    inputs: 64,
    outputs: 10,
    image: Some([1, 8, 8]),
};

fn cnn_spec() -> CheckedSpec {
    spec_for("digits", "kind = \"cnn\"\nhidden = [4, 8]\ndense = [16]")
}

#[test]
fn mlp_forward_and_trace_shapes() {
    let _rng = serial();
    let device = device();
    let net = Network::new(&spec("hidden = [16, 8, 5]"), &IRIS, &device).unwrap();
    let x = Tensor::<2>::random([7, 4], Distribution::Normal(0.0, 1.0), &device);
    assert_eq!(net.forward(x.clone()).dims(), [7, 3]);
    let (out, sites) = net.forward_traced(x.clone());
    assert_eq!(out.dims(), [7, 3]);
    assert_eq!(sites.len(), 3);
    for (site, units) in sites.iter().zip([16, 8, 5]) {
        assert_eq!(site.pre.dims(), [7, units]);
        assert_eq!(site.post.dims(), [7, units]);
    }
    // post is the activation (relu) of pre, and the traced output is the plain one.
    let pre = values(sites[0].pre.clone());
    let post = values(sites[0].post.clone());
    assert!(pre.iter().zip(&post).all(|(&p, &q)| q == p.max(0.0)));
    assert_eq!(values(out), values(net.forward(x)));
}

#[test]
fn mlp_layers_and_sites() {
    let _rng = serial();
    let net = Network::new(
        &spec("hidden = [16, 8]\nactivation = \"tanh\""),
        &IRIS,
        &device(),
    )
    .unwrap();
    let summary: Vec<_> = net
        .layers()
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.kind,
                l.activation,
                l.units,
                l.fan_in,
                l.fan_out,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("hidden.0", LayerKind::Dense, Activation::Tanh, 16, 4, 16),
            ("hidden.1", LayerKind::Dense, Activation::Tanh, 8, 16, 8),
            ("output", LayerKind::Output, Activation::Identity, 3, 8, 3),
        ]
    );
    let sites: Vec<_> = net.sites().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(sites, ["hidden.0", "hidden.1"]);
    for (layer, params) in net.layers().iter().zip(net.layer_params()) {
        assert_eq!(
            params.weight.dims(),
            [layer.fan_in, layer.units],
            "{}",
            layer.name
        );
    }
}

#[test]
fn cnn_trace_shapes_layers_and_sites() {
    let _rng = serial();
    let device = device();
    let net = Network::new(&cnn_spec(), &DIGITS, &device).unwrap();
    let x = Tensor::<2>::random([3, 64], Distribution::Normal(0.0, 1.0), &device);
    let (out, sites) = net.forward_traced(x.clone());
    assert_eq!(out.dims(), [3, 10]);
    assert_eq!(net.forward(x).dims(), [3, 10]);
    let names: Vec<_> = net.sites().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["conv.0", "conv.1", "hidden.0"]);
    let dims: Vec<_> = sites
        .iter()
        .map(|s| (s.pre.dims(), s.post.dims()))
        .collect();
    assert_eq!(
        dims,
        [
            ([3 * 8 * 8, 4], [3 * 8 * 8, 4]),
            ([3 * 4 * 4, 8], [3 * 4 * 4, 8]),
            ([3, 16], [3, 16]),
        ]
    );
    let summary: Vec<_> = net
        .layers()
        .iter()
        .map(|l| (l.name.as_str(), l.kind, l.units, l.fan_in, l.fan_out))
        .collect();
    assert_eq!(
        summary,
        [
            ("conv.0", LayerKind::Conv, 4, 9, 4 * 9),
            ("conv.1", LayerKind::Conv, 8, 4 * 9, 8 * 9),
            // Two poolings: 8x8 -> 4x4 -> 2x2, 8 channels.
            ("hidden.0", LayerKind::Dense, 16, 8 * 2 * 2, 16),
            ("output", LayerKind::Output, 10, 16, 10),
        ]
    );
    for (layer, params) in net.layers().iter().zip(net.layer_params()) {
        assert_eq!(
            params.weight.dims(),
            [layer.fan_in, layer.units],
            "{}",
            layer.name
        );
        assert_eq!(params.bias.unwrap().dims(), [layer.units], "{}", layer.name);
    }
}

#[test]
fn cnn_site_rows_are_pixels_with_channels_as_columns() {
    let _rng = serial();
    // A 1x1 conv with identity activation and no pooling effect on the first site: the site's
    // row (b, y, x) must hold the conv output at that pixel, one column per channel.
    let spec = spec_for(
        "digits",
        "kind = \"cnn\"\nhidden = [2]\nkernel_size = 1\nactivation = \"identity\"\nbias_init = 0.0",
    );
    let device = device();
    let net = Network::new(&spec, &DIGITS, &device).unwrap();
    let w = values(net.layer_params()[0].weight.clone()); // [1, 2]
    let x = Tensor::<2>::random([2, 64], Distribution::Normal(0.0, 1.0), &device);
    let xs = values(x.clone());
    let (_, sites) = net.forward_traced(x);
    let post = values(sites[0].post.clone());
    for row in 0..2 * 64 {
        for channel in 0..2 {
            let expected = xs[row] * w[channel];
            assert_close(
                post[row * 2 + channel] as f64,
                expected as f64,
                1e-5,
                "site value",
            );
        }
    }
}

#[test]
fn cnn_on_flat_data_is_an_error() {
    let _rng = serial();
    let err = Network::new(
        &cnn_spec(),
        &ModelShape {
            inputs: 64,
            outputs: 10,
            image: None,
        },
        &device(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ModelError::CnnNeedsImages { inputs: 64 }),
        "{err:?}"
    );
}

#[test]
fn the_same_seed_gives_the_same_weights() {
    let _rng = serial();
    let draw = |seed: u64| {
        let device = device();
        device.seed(seed);
        let net = Network::new(&spec("hidden = [32, 32]"), &IRIS, &device).unwrap();
        net.layer_params()
            .into_iter()
            .flat_map(|p| values(p.weight))
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(7), draw(7));
    assert_ne!(draw(7), draw(8));
}

// ---------------------------------------------------------------------------------------------
// Parameter surgery.

#[test]
fn with_layer_params_round_trips_a_dense_layer() {
    let _rng = serial();
    let device = device();
    let net = Network::new(&spec("hidden = [16, 8]"), &IRIS, &device).unwrap();
    let x = Tensor::<2>::random([5, 4], Distribution::Normal(0.0, 1.0), &device);
    let before = values(net.forward(x.clone()));
    let weight = Tensor::<2>::random([16, 8], Distribution::Normal(0.0, 1.0), &device);
    let bias = Tensor::<1>::random([8], Distribution::Normal(0.0, 1.0), &device);
    let untouched: Vec<_> = [0, 2]
        .map(|i| values(net.layer_params()[i].weight.clone()))
        .into();
    let net = net.with_layer_params(
        1,
        LayerParams {
            weight: weight.clone(),
            bias: Some(bias.clone()),
        },
    );
    assert_ne!(values(net.forward(x)), before);
    let params = net.layer_params();
    assert_eq!(values(params[1].weight.clone()), values(weight));
    assert_eq!(values(params[1].bias.clone().unwrap()), values(bias));
    assert_eq!(values(params[0].weight.clone()), untouched[0]);
    assert_eq!(values(params[2].weight.clone()), untouched[1]);
}

#[test]
fn with_layer_params_round_trips_the_output_layer_and_keeps_the_bias_without_one() {
    let _rng = serial();
    let device = device();
    let net = Network::new(&spec("hidden = [16]\nbias_init = 0.5"), &IRIS, &device).unwrap();
    let weight = Tensor::<2>::random([16, 3], Distribution::Normal(0.0, 1.0), &device);
    let net = net.with_layer_params(
        1,
        LayerParams {
            weight: weight.clone(),
            bias: None,
        },
    );
    let params = net.layer_params();
    assert_eq!(values(params[1].weight.clone()), values(weight));
    assert_eq!(values(params[1].bias.clone().unwrap()), vec![0.0; 3]);
}

#[test]
fn with_layer_params_round_trips_a_conv_layer() {
    let _rng = serial();
    let device = device();
    let net = Network::new(&cnn_spec(), &DIGITS, &device).unwrap();
    let x = Tensor::<2>::random([2, 64], Distribution::Normal(0.0, 1.0), &device);
    let before = values(net.forward(x.clone()));
    // conv.1: [in 4 * 3 * 3, out 8].
    let weight = Tensor::<2>::random([36, 8], Distribution::Normal(0.0, 1.0), &device);
    let bias = Tensor::<1>::random([8], Distribution::Normal(0.0, 1.0), &device);
    let net = net.with_layer_params(
        1,
        LayerParams {
            weight: weight.clone(),
            bias: Some(bias.clone()),
        },
    );
    assert_ne!(values(net.forward(x)), before);
    let params = net.layer_params();
    assert_eq!(values(params[1].weight.clone()), values(weight));
    assert_eq!(values(params[1].bias.clone().unwrap()), values(bias));
}

#[test]
fn a_conv_unit_is_a_column_of_the_weight_matrix() {
    let _rng = serial();
    // Zeroing column c of conv.0's matrix (and its bias) must silence channel c at the site
    // and nothing else: columns are output channels, not a scrambled reshape.
    let spec = spec_for(
        "digits",
        "kind = \"cnn\"\nhidden = [3]\nactivation = \"identity\"",
    );
    let device = device();
    let net = Network::new(&spec, &DIGITS, &device).unwrap();
    let params = net.layer_params();
    let mut w = values(params[0].weight.clone()); // [9, 3]
    for row in 0..9 {
        w[row * 3 + 1] = 0.0;
    }
    let net = net.with_layer_params(
        0,
        LayerParams {
            weight: Tensor::from_data(TensorData::new(w, [9, 3]), &device),
            bias: Some(Tensor::from_data(
                TensorData::new(vec![0.5f32, 0.0, 0.5], [3]),
                &device,
            )),
        },
    );
    let x = Tensor::<2>::random([2, 64], Distribution::Normal(0.0, 1.0), &device);
    let (_, sites) = net.forward_traced(x);
    let post = values(sites[0].post.clone());
    for row in post.chunks(3) {
        assert_eq!(row[1], 0.0);
        assert_ne!(row[0], 0.0);
    }
}

#[test]
fn replaced_parameters_stay_trainable() {
    let _rng = serial();
    let device = device().autodiff();
    let net = Network::new(&spec("hidden = [8]"), &IRIS, &device).unwrap();
    let weight = Tensor::<2>::random([4, 8], Distribution::Normal(0.0, 1.0), &device);
    let net = net.with_layer_params(0, LayerParams { weight, bias: None });
    let x = Tensor::<2>::random([5, 4], Distribution::Normal(0.0, 1.0), &device);
    let grads = net.forward(x).sum().backward();
    let layer_grads = net.layer_grads(&grads);
    assert!(
        layer_grads[0].0.is_some(),
        "the replaced weight got no gradient"
    );
    assert!(layer_grads[0].1.is_some());
    assert!(layer_grads[1].0.is_some());
}

// ---------------------------------------------------------------------------------------------
// Loading weights.

fn saved(net: &Network, dir: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    net.clone().save_file(&path).unwrap();
    path
}

fn assert_weights_error(result: Result<Network, ModelError>, path: &std::path::Path) -> String {
    let err = result.expect_err("loading should fail");
    let message = err.to_string();
    assert!(matches!(err, ModelError::Weights { .. }), "{err:?}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    message
}

#[test]
fn saved_weights_load_back_exactly() {
    let _rng = serial();
    let dir = tempfile::tempdir().unwrap();
    let device = device();
    for (spec, shape, inputs) in [
        (
            spec("hidden = [16, 8]\nbias_init = 0.1\nbatch_norm = true"),
            IRIS,
            4,
        ),
        (cnn_spec(), DIGITS, 64),
    ] {
        device.seed(1);
        let original = Network::new(&spec, &shape, &device).unwrap();
        let path = saved(&original, &dir, "w.bpk");
        device.seed(2);
        let fresh = Network::new(&spec, &shape, &device).unwrap();
        let x = Tensor::<2>::random([6, inputs], Distribution::Normal(0.0, 1.0), &device);
        let expected = values(original.forward(x.clone()));
        assert_ne!(
            values(fresh.forward(x.clone())),
            expected,
            "the fresh network should differ"
        );
        let loaded = fresh.load_weights(&path).unwrap();
        assert_eq!(values(loaded.forward(x)), expected);
        assert_eq!(loaded.layers(), original.layers());
    }
}

#[test]
fn weights_of_another_architecture_are_an_error() {
    let _rng = serial();
    let dir = tempfile::tempdir().unwrap();
    let device = device();
    let build = |model: &str| Network::new(&spec(model), &IRIS, &device).unwrap();
    let cases = [
        ("hidden = [16]", "hidden = [8]"),   // other width
        ("hidden = [8]", "hidden = [8, 8]"), // a layer missing from the file
        ("hidden = [8, 8]", "hidden = [8]"), // a layer too many in the file
        ("hidden = [8]\nbatch_norm = true", "hidden = [8]"),
        ("hidden = [8]", "hidden = [8]\nbatch_norm = true"),
    ];
    for (written, read) in cases {
        let path = saved(&build(written), &dir, "other.bpk");
        let result = build(read).load_weights(&path);
        assert!(
            result.is_err(),
            "a file from `{written}` loaded into `{read}`"
        );
        assert_weights_error(result, &path);
    }
    // A cnn's file into an mlp of the same output width.
    let cnn = Network::new(&cnn_spec(), &DIGITS, &device).unwrap();
    let path = saved(&cnn, &dir, "cnn.bpk");
    let mlp = Network::new(&spec_for("digits", "hidden = [16]"), &DIGITS, &device).unwrap();
    assert_weights_error(mlp.load_weights(&path), &path);
}

#[test]
fn damaged_weights_files_are_errors_naming_the_path() {
    let _rng = serial();
    let dir = tempfile::tempdir().unwrap();
    let device = device();
    let spec = spec("hidden = [16, 8]");
    let net = || Network::new(&spec, &IRIS, &device).unwrap();
    let good = std::fs::read(saved(&net(), &dir, "good.bpk")).unwrap();

    let truncated = dir.path().join("truncated.bpk");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    assert_weights_error(net().load_weights(&truncated), &truncated);

    let header_only = dir.path().join("header-only.bpk");
    std::fs::write(&header_only, &good[..8.min(good.len())]).unwrap();
    assert_weights_error(net().load_weights(&header_only), &header_only);

    // Deterministic noise (an LCG): the same bytes every run.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..good.len())
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect();
    let random = dir.path().join("random.bpk");
    std::fs::write(&random, noise).unwrap();
    assert_weights_error(net().load_weights(&random), &random);

    let empty = dir.path().join("empty.bpk");
    std::fs::write(&empty, b"").unwrap();
    assert_weights_error(net().load_weights(&empty), &empty);

    let missing = dir.path().join("missing.bpk");
    assert_weights_error(net().load_weights(&missing), &missing);

    let directory = dir.path().join("a-directory.bpk");
    std::fs::create_dir(&directory).unwrap();
    assert_weights_error(net().load_weights(&directory), &directory);
}

#[test]
fn a_weights_file_far_larger_than_the_spec_is_refused_before_reading() {
    let _rng = serial();
    let dir = tempfile::tempdir().unwrap();
    let device = device();
    let net = Network::new(&spec("hidden = [16, 8]"), &IRIS, &device).unwrap();
    let ceiling = net.num_params() as u64 * 4 + 1024 * 1024;
    let huge = dir.path().join("huge.bpk");
    // Sparse: no disk is used for the hole.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(ceiling + 1)
        .unwrap();
    let message = assert_weights_error(net.load_weights(&huge), &huge);
    assert!(
        message.contains(&format!("{} bytes", ceiling + 1)),
        "{message}"
    );

    // A real file of a bigger network (more than the ceiling) is refused the same way.
    let big = Network::new(&spec("hidden = [1024, 512]"), &IRIS, &device).unwrap();
    let path = saved(&big, &dir, "big.bpk");
    assert!(std::fs::metadata(&path).unwrap().len() > ceiling);
    let small = Network::new(&spec("hidden = [16, 8]"), &IRIS, &device).unwrap();
    let message = assert_weights_error(small.load_weights(&path), &path);
    assert!(message.contains("bytes"), "{message}");
}

// `with_layer_params` documents a panic when the shapes differ from the layer's. A dense
// weight is checked; a conv weight of the same element count in the wrong orientation and a
// bias of the wrong length are not, and are silently reshaped or broadcast.

#[test]
#[should_panic(expected = "shape")]
fn with_layer_params_refuses_a_conv_weight_of_the_wrong_shape() {
    let _rng = serial();
    let device = device();
    let net = Network::new(&cnn_spec(), &DIGITS, &device).unwrap();
    // conv.1 is [36, 8]; [8, 36] has as many elements.
    let weight = Tensor::<2>::random([8, 36], Distribution::Normal(0.0, 1.0), &device);
    let _ = net.with_layer_params(1, LayerParams { weight, bias: None });
}

#[test]
#[should_panic(expected = "shape")]
fn with_layer_params_refuses_a_bias_of_the_wrong_length() {
    let _rng = serial();
    let device = device();
    let net = Network::new(&spec("hidden = [16]"), &IRIS, &device).unwrap();
    let weight = net.layer_params()[0].weight.clone();
    let bias = Tensor::<1>::zeros([1], &device);
    let net = net.with_layer_params(
        0,
        LayerParams {
            weight,
            bias: Some(bias),
        },
    );
    // Reaching here, the one-element bias is broadcast over all 16 units.
    let _ = net.forward(Tensor::zeros([2, 4], &device));
}

// Fuzzing the weights loader (bounded; `cargo xtask fuzz` runs many more cases): a damaged
// file, at any byte, is an error or a network of the right shape, never a panic or a hang.
proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(24)
    ))]
    #[test]
    fn damaged_weights_never_panic(
        cut in 0usize..4096,
        flips in proptest::collection::vec((0usize..4096, 0u8..=255), 0..8),
        tail in proptest::collection::vec(0u8..=255, 0..64),
    ) {
        let _rng = serial();
        let dir = tempfile::tempdir().unwrap();
        let device = device();
        let spec = spec("hidden = [16, 8]");
        let net = || Network::new(&spec, &IRIS, &device).unwrap();
        let mut bytes = std::fs::read(saved(&net(), &dir, "good.bpk")).unwrap();
        for (at, value) in flips {
            let len = bytes.len();
            bytes[at % len] ^= value;
        }
        bytes.truncate(bytes.len().saturating_sub(cut % bytes.len().max(1)));
        bytes.extend(tail);
        let path = dir.path().join("fuzzed.bpk");
        std::fs::write(&path, &bytes).unwrap();
        match net().load_weights(&path) {
            Ok(loaded) => proptest::prop_assert_eq!(loaded.num_params(), net().num_params()),
            Err(err) => proptest::prop_assert!(err.to_string().contains(&path.display().to_string())),
        }
    }
}

#[test]
fn a_cnns_weights_move_into_a_trainable_twin_with_another_activation_and_pooling() {
    let _rng = serial();
    let device = device().autodiff();
    let shape = ModelShape {
        inputs: 64,
        outputs: 3,
        image: Some([1, 8, 8]),
    };
    let relu = spec_for("digits", "kind = \"cnn\"\nhidden = [4]\ndense = [5]");
    let leaky = spec_for(
        "digits",
        "kind = \"cnn\"\nhidden = [4]\ndense = [5]\nactivation = \"leaky_relu\"\npool = \"avg\"",
    );
    let source = Network::new(&relu, &shape, &device).unwrap();
    let twin = Network::new(&leaky, &shape, &device)
        .unwrap()
        .with_weights_of(&source);
    for (a, b) in source.layer_params().into_iter().zip(twin.layer_params()) {
        assert_eq!(values(a.weight), values(b.weight));
        assert_eq!(values(a.bias.unwrap()), values(b.bias.unwrap()));
    }
    // Its parameters are leaves: a backward pass reaches every one.
    let input = Tensor::<2>::random([2, 64], Distribution::Default, &device);
    let grads = twin.forward(input).sum().backward();
    assert!(twin
        .layer_grads(&grads)
        .iter()
        .all(|(w, b)| w.is_some() && b.is_some()));
    // Average pooling gives other outputs than max pooling on the same weights.
    let probe = Tensor::<2>::random([2, 64], Distribution::Default, &device);
    let max_twin = Network::new(
        &spec_for(
            "digits",
            "kind = \"cnn\"\nhidden = [4]\ndense = [5]\nactivation = \"leaky_relu\"",
        ),
        &shape,
        &device,
    )
    .unwrap()
    .with_weights_of(&source);
    assert_ne!(
        values(twin.forward(probe.clone())),
        values(max_twin.forward(probe))
    );
}
