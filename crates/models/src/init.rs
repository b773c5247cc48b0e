//! Weight initializers from the spec, and the weight scale each recipe expects.

use burn::nn::Initializer;
use nd_spec::{Activation, Init, ModelSpec};

/// The burn initializer for a layer whose activation has gain `gain`.
///
/// LeCun normal is std = 1 / sqrt(fan_in) by definition (with the activation's gain it would be
/// He normal), so it ignores `gain`.
pub fn initializer(model: &ModelSpec, gain: f64) -> Initializer {
    match model.init {
        Init::KaimingUniform => Initializer::KaimingUniform {
            gain,
            fan_out_only: false,
        },
        Init::KaimingNormal => Initializer::KaimingNormal {
            gain,
            fan_out_only: false,
        },
        Init::XavierUniform => Initializer::XavierUniform { gain },
        Init::XavierNormal => Initializer::XavierNormal { gain },
        Init::LecunNormal => Initializer::KaimingNormal {
            gain: 1.0,
            fan_out_only: false,
        },
        Init::Normal => Initializer::Normal {
            mean: 0.0,
            std: model.init_std,
        },
        Init::Uniform => Initializer::Uniform {
            min: -model.init_range,
            max: model.init_range,
        },
    }
}

/// The weight std the field recommends for a layer with these fans, followed by `activation`:
/// He (gain / sqrt(fan_in)) for the relu family and softplus, Glorot
/// (gain * sqrt(2 / (fan_in + fan_out))) for sigmoid, tanh and identity, LeCun
/// (1 / sqrt(fan_in)) for selu.
pub fn expected_std(
    activation: Activation,
    leaky_slope: f64,
    fan_in: usize,
    fan_out: usize,
) -> f64 {
    let gain = activation.gain(leaky_slope);
    match activation {
        Activation::Selu => 1.0 / (fan_in as f64).sqrt(),
        Activation::Sigmoid | Activation::Tanh | Activation::Identity => {
            gain * (2.0 / (fan_in + fan_out) as f64).sqrt()
        }
        _ => gain / (fan_in as f64).sqrt(),
    }
}
