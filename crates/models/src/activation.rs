//! The activation functions a spec can name, applied to tensors of any rank.

use burn::tensor::{activation as act, Tensor};
use nd_spec::{Activation, OutputActivation};

/// Applies a hidden activation.
pub fn apply_activation<const D: usize>(
    x: Tensor<D>,
    activation: Activation,
    leaky_slope: f64,
) -> Tensor<D> {
    match activation {
        Activation::Relu => act::relu(x),
        Activation::LeakyRelu => act::leaky_relu(x, leaky_slope),
        Activation::Elu => act::elu(x, 1.0),
        Activation::Selu => act::selu(x),
        Activation::Gelu => act::gelu(x),
        Activation::Silu => act::silu(x),
        Activation::Softplus => act::softplus(x, 1.0),
        Activation::Sigmoid => act::sigmoid(x),
        Activation::Tanh => act::tanh(x),
        Activation::Identity => x,
    }
}

/// Applies the output activation (a no-op for `none`).
pub fn apply_output_activation<const D: usize>(
    x: Tensor<D>,
    activation: OutputActivation,
) -> Tensor<D> {
    match activation {
        OutputActivation::None => x,
        OutputActivation::Relu => act::relu(x),
        OutputActivation::Sigmoid => act::sigmoid(x),
        OutputActivation::Tanh => act::tanh(x),
        OutputActivation::Softplus => act::softplus(x, 1.0),
    }
}
