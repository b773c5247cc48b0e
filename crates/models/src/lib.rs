//! burn modules built from a neuron-doctor spec.
//!
//! [`Network`] is one module for both model kinds: an `mlp` is a stack of dense layers, a `cnn`
//! is convolutions (each followed by 2x2 max pooling while the image is at least 2 pixels wide),
//! then dense layers. Every hidden layer has a named *activation site* (`conv.0`, `conv.1`, ...,
//! `hidden.0`, `hidden.1`, ...) that [`Network::forward_traced`] exposes with its pre- and
//! post-activation values, so the probe can measure each unit without forward hooks (burn has
//! none). A conv channel is one unit.
//!
//! Weights are initialized as the spec says, with the gain of the layer's activation
//! ([`nd_spec::Activation::gain`]); hidden biases start at `model.bias_init`, the output bias at 0.
//!
//! ```
//! # #[allow(deprecated)] {
//! use burn::tensor::{Device, Tensor};
//! let spec = nd_spec::Spec::from_toml_str(
//!     "[data]\ndataset = \"iris\"\n[model]\nhidden = [8, 8]", "doc").unwrap().check().unwrap();
//! let device = Device::ndarray();
//! let shape = nd_models::ModelShape { inputs: 4, outputs: 3, image: None };
//! let net = nd_models::Network::new(&spec, &shape, &device).unwrap();
//! let (out, sites) = net.forward_traced(Tensor::zeros([5, 4], &device));
//! assert_eq!(out.dims(), [5, 3]);
//! assert_eq!(sites[1].post.dims(), [5, 8]);
//! assert_eq!(net.sites()[1].name, "hidden.1");
//! # }
//! ```

mod activation;
mod init;

pub use activation::{apply_activation, apply_output_activation};
pub use init::{expected_std, initializer};

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::{Device, Gradients, Tensor};
use nd_spec::{Activation, CheckedSpec, ModelKind, OutputActivation, Pool};

/// What the data dictates about a network: its input width, output width and image shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    /// Features per row.
    pub inputs: usize,
    /// Classes (classification) or 1 (regression).
    pub outputs: usize,
    /// `[channels, height, width]` when rows are images.
    pub image: Option<[usize; 3]>,
}

/// Why a network cannot be built or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A cnn needs image data.
    #[error("model.kind = \"cnn\" needs image data, but this dataset has flat rows of {inputs} features")]
    CnnNeedsImages {
        /// The dataset's width.
        inputs: usize,
    },
    /// The spec does not fit this data's shape (too large for memory).
    #[error(transparent)]
    Spec(#[from] nd_spec::SpecError),
    /// The weights file could not be read or does not fit the spec.
    #[error("{path}: {problem}")]
    Weights {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

/// Kind of layer behind an activation site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// A 2-D convolution: units are channels.
    Conv,
    /// A dense layer: units are its outputs.
    Dense,
    /// The output layer (no activation site of its own).
    Output,
}

/// Static facts about one layer: its name, width and fans.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerInfo {
    /// `conv.0`, `hidden.1`, `output`.
    pub name: String,
    /// What kind of layer.
    pub kind: LayerKind,
    /// The activation after it (`identity` for the output layer's hidden activation).
    pub activation: Activation,
    /// Output units (channels for conv).
    pub units: usize,
    /// Inputs per unit (in_channels * k * k for conv).
    pub fan_in: usize,
    /// Outputs per input (out_channels * k * k for conv).
    pub fan_out: usize,
}

/// One activation site's values for a batch, as `[observations, units]` matrices: for a dense
/// layer an observation is a row, for a conv layer it is one (row, pixel) pair.
#[derive(Debug, Clone)]
pub struct SiteTrace {
    /// Before the activation (after batch norm when enabled).
    pub pre: Tensor<2>,
    /// After the activation, before dropout.
    pub post: Tensor<2>,
}

/// A layer's parameters as a `[fan_in, units]` weight matrix and a bias vector.
#[derive(Debug, Clone)]
pub struct LayerParams {
    /// Weight, `[fan_in, units]`.
    pub weight: Tensor<2>,
    /// Bias, `[units]`.
    pub bias: Option<Tensor<1>>,
}

/// The network a spec describes.
#[derive(Module, Debug)]
pub struct Network {
    convs: Vec<Conv2d>,
    conv_norms: Vec<BatchNorm>,
    dense: Vec<Linear>,
    dense_norms: Vec<BatchNorm>,
    output: Linear,
    pool: MaxPool2d,
    avg_pool: AvgPool2d,
    #[module(skip)]
    pool_kind: Pool,
    dropout: Dropout,
    #[module(skip)]
    activation: Activation,
    leaky_slope: f64,
    #[module(skip)]
    output_activation: OutputActivation,
    #[module(skip)]
    image: Option<[usize; 3]>,
    #[module(skip)]
    layers: Vec<LayerInfo>,
}

impl Network {
    /// Builds a freshly initialized network on `device`.
    pub fn new(
        spec: &CheckedSpec,
        shape: &ModelShape,
        device: &Device,
    ) -> Result<Network, ModelError> {
        let m = &spec.model;
        // Refuse what cannot fit before allocating any of it.
        let footprint = m.footprint(
            shape.inputs,
            shape.image,
            shape.outputs,
            spec.train.batch_size,
        );
        m.check_footprint(&footprint, spec.train.batch_size)?;
        let gain = m.activation.gain(m.leaky_slope);
        let hidden_init = initializer(m, gain);
        let mut layers = Vec::new();
        let mut convs = Vec::new();
        let mut conv_norms = Vec::new();
        let (dense_widths, mut flat_inputs) = match m.kind {
            ModelKind::Mlp => (m.hidden.clone(), shape.inputs),
            ModelKind::Cnn => {
                let [mut channels, mut height, mut width] =
                    shape.image.ok_or(ModelError::CnnNeedsImages {
                        inputs: shape.inputs,
                    })?;
                let k = m.kernel_size;
                for (i, &out) in m.hidden.iter().enumerate() {
                    let conv = Conv2dConfig::new([channels, out], [k, k])
                        .with_padding(PaddingConfig2d::Same)
                        .with_initializer(hidden_init.clone())
                        .init(device);
                    convs.push(with_bias(conv, m.bias_init, out, device));
                    if m.batch_norm {
                        conv_norms.push(BatchNormConfig::new(out).init(device));
                    }
                    layers.push(LayerInfo {
                        name: format!("conv.{i}"),
                        kind: LayerKind::Conv,
                        activation: m.activation,
                        units: out,
                        fan_in: channels * k * k,
                        fan_out: out * k * k,
                    });
                    channels = out;
                    if height >= 2 && width >= 2 {
                        height /= 2;
                        width /= 2;
                    }
                }
                (m.dense.clone(), channels * height * width)
            }
        };
        let mut dense = Vec::new();
        let mut dense_norms = Vec::new();
        for (i, &out) in dense_widths.iter().enumerate() {
            let linear = LinearConfig::new(flat_inputs, out)
                .with_initializer(hidden_init.clone())
                .init(device);
            dense.push(linear_with_bias(linear, m.bias_init, out, device));
            if m.batch_norm {
                dense_norms.push(BatchNormConfig::new(out).init(device));
            }
            layers.push(LayerInfo {
                name: format!("hidden.{i}"),
                kind: LayerKind::Dense,
                activation: m.activation,
                units: out,
                fan_in: flat_inputs,
                fan_out: out,
            });
            flat_inputs = out;
        }
        // The output layer feeds a loss, not a hidden activation: gain 1 (Xavier/LeCun-like).
        let output_init = initializer(m, 1.0);
        let output = LinearConfig::new(flat_inputs, shape.outputs)
            .with_initializer(output_init)
            .init(device);
        let output = linear_with_bias(output, 0.0, shape.outputs, device);
        layers.push(LayerInfo {
            name: "output".into(),
            kind: LayerKind::Output,
            activation: Activation::Identity,
            units: shape.outputs,
            fan_in: flat_inputs,
            fan_out: shape.outputs,
        });
        let network = Network {
            convs,
            conv_norms,
            dense,
            dense_norms,
            output,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            avg_pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            pool_kind: m.pool,
            dropout: DropoutConfig::new(m.dropout).init(),
            activation: m.activation,
            leaky_slope: m.leaky_slope,
            output_activation: m.output_activation,
            image: if m.kind == ModelKind::Cnn {
                shape.image
            } else {
                None
            },
            layers,
        };
        // Parameters initialize lazily; draw them now, in a fixed order, so the seed alone
        // decides the weights whatever runs first later.
        let _ = network.layer_params();
        Ok(network)
    }

    /// Every layer, hidden ones first (in forward order), then `output`.
    pub fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }

    /// The hidden layers' activation sites, in forward order.
    pub fn sites(&self) -> &[LayerInfo] {
        &self.layers[..self.layers.len() - 1]
    }

    /// The hidden activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The same network with dropout switched off: for measurements that must not depend on
    /// dropout's random draw (the probe's gradient norms, comparable with a no-dropout twin).
    pub fn without_dropout(mut self) -> Network {
        self.dropout = DropoutConfig::new(0.0).init();
        self
    }

    /// True when every hidden layer is batch-normalized before its activation.
    pub fn batch_norm(&self) -> bool {
        !self.dense_norms.is_empty() || !self.conv_norms.is_empty()
    }

    /// The slope of `leaky_relu`.
    pub fn leaky_slope(&self) -> f64 {
        self.leaky_slope
    }

    /// The activation on the output.
    pub fn output_activation(&self) -> OutputActivation {
        self.output_activation
    }

    /// Runs the network.
    ///
    /// # Shapes
    /// - input: `[batch, features]` (images flattened row-major, channel first)
    /// - output: `[batch, outputs]`, after the output activation
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        self.run(input, false).0
    }

    /// Runs the network and returns every activation site's values as well.
    ///
    /// # Shapes
    /// - input: `[batch, features]`
    /// - output: `[batch, outputs]`
    /// - each site: `[batch, units]` (dense) or `[batch * height * width, channels]` (conv)
    pub fn forward_traced(&self, input: Tensor<2>) -> (Tensor<2>, Vec<SiteTrace>) {
        self.run(input, true)
    }

    fn act<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        apply_activation(x, self.activation, self.leaky_slope)
    }

    fn run(&self, input: Tensor<2>, trace: bool) -> (Tensor<2>, Vec<SiteTrace>) {
        let mut sites = Vec::new();
        let batch = input.dims()[0];
        let mut x = input;
        if let Some([c, h, w]) = self.image {
            let mut img = x.reshape([batch, c, h, w]);
            for (i, conv) in self.convs.iter().enumerate() {
                let mut pre = conv.forward(img);
                if let Some(norm) = self.conv_norms.get(i) {
                    pre = norm.forward(pre);
                }
                let post = self.act(pre.clone());
                if trace {
                    sites.push(SiteTrace {
                        pre: channels_last(pre),
                        post: channels_last(post.clone()),
                    });
                }
                let mut next = self.dropout.forward(post);
                let [_, _, height, width] = next.dims();
                if height >= 2 && width >= 2 {
                    next = match self.pool_kind {
                        Pool::Max => self.pool.forward(next),
                        Pool::Avg => self.avg_pool.forward(next),
                    };
                }
                img = next;
            }
            let [b, c2, h2, w2] = img.dims();
            x = img.reshape([b, c2 * h2 * w2]);
        }
        for (i, layer) in self.dense.iter().enumerate() {
            let mut pre = layer.forward(x);
            if let Some(norm) = self.dense_norms.get(i) {
                pre = norm.forward(pre);
            }
            let post = self.act(pre.clone());
            if trace {
                sites.push(SiteTrace {
                    pre,
                    post: post.clone(),
                });
            }
            x = self.dropout.forward(post);
        }
        let out = apply_output_activation(self.output.forward(x), self.output_activation);
        (out, sites)
    }

    /// Every layer's parameters (hidden layers in order, then the output layer), as
    /// `[fan_in, units]` weight matrices.
    pub fn layer_params(&self) -> Vec<LayerParams> {
        let mut out = Vec::with_capacity(self.layers.len());
        for conv in &self.convs {
            out.push(LayerParams {
                weight: conv_matrix(conv.weight.val()),
                bias: conv.bias.as_ref().map(|b| b.val()),
            });
        }
        for linear in self.dense.iter().chain(std::iter::once(&self.output)) {
            out.push(LayerParams {
                weight: linear.weight.val(),
                bias: linear.bias.as_ref().map(|b| b.val()),
            });
        }
        out
    }

    /// Every layer's gradients from a backward pass, shaped as [`Network::layer_params`];
    /// `None` where a parameter received no gradient.
    pub fn layer_grads(&self, grads: &Gradients) -> Vec<(Option<Tensor<2>>, Option<Tensor<1>>)> {
        let mut out = Vec::with_capacity(self.layers.len());
        for conv in &self.convs {
            out.push((
                conv.weight.grad(grads).map(conv_matrix),
                conv.bias.as_ref().and_then(|b| b.grad(grads)),
            ));
        }
        for linear in self.dense.iter().chain(std::iter::once(&self.output)) {
            out.push((
                linear.weight.grad(grads),
                linear.bias.as_ref().and_then(|b| b.grad(grads)),
            ));
        }
        out
    }

    /// Replaces one layer's parameters (`[fan_in, units]` weight, as from
    /// [`Network::layer_params`]); used to recycle dormant units.
    ///
    /// # Panics
    /// When `index` is out of range or the shapes differ from the layer's.
    pub fn with_layer_params(mut self, index: usize, params: LayerParams) -> Network {
        let convs = self.convs.len();
        let LayerParams { weight, bias } = params;
        let info = &self.layers[index];
        assert_eq!(
            weight.dims(),
            [info.fan_in, info.units],
            "weight shape of {}",
            info.name
        );
        if let Some(b) = &bias {
            assert_eq!(b.dims(), [info.units], "bias shape of {}", info.name);
        }
        let set_bias = |old: Option<Param<Tensor<1>>>| match (old, bias) {
            (Some(old), Some(new)) => Some(replace_param(old, new)),
            (old, _) => old,
        };
        if index < convs {
            let Conv2d {
                weight: old_weight,
                bias: old_bias,
                stride,
                kernel_size,
                dilation,
                groups,
                padding,
            } = self.convs.remove(index);
            let dims = old_weight.dims();
            let conv = Conv2d {
                weight: replace_param(old_weight, weight.transpose().reshape(dims)),
                bias: set_bias(old_bias),
                stride,
                kernel_size,
                dilation,
                groups,
                padding,
            };
            self.convs.insert(index, conv);
        } else if index - convs < self.dense.len() {
            let Linear {
                weight: old_weight,
                bias: old_bias,
            } = self.dense.remove(index - convs);
            assert_eq!(old_weight.dims(), weight.dims(), "weight shape");
            let linear = Linear {
                weight: replace_param(old_weight, weight),
                bias: set_bias(old_bias),
            };
            self.dense.insert(index - convs, linear);
        } else {
            assert_eq!(index, self.layers.len() - 1, "layer index out of range");
            assert_eq!(self.output.weight.dims(), weight.dims(), "weight shape");
            self.output = Linear {
                weight: replace_param(self.output.weight, weight),
                bias: set_bias(self.output.bias),
            };
        }
        self
    }

    /// This network (its activations, output activation, device) with every layer's weights and
    /// biases taken from `other`, a network of the same layer shapes: how a remedy that swaps
    /// an activation keeps a trained model's weights.
    ///
    /// # Panics
    /// When the two networks' layer shapes differ.
    pub fn with_weights_of(self, other: &Network) -> Network {
        other
            .layer_params()
            .into_iter()
            .enumerate()
            .fold(self, |network, (i, params)| {
                network.with_layer_params(i, params)
            })
    }

    /// Loads weights saved with [`Module::save_file`], checking them against this network's
    /// architecture first so that a file from another spec, a truncated file or random bytes
    /// is an error, not a panic.
    pub fn load_weights(self, path: &std::path::Path) -> Result<Network, ModelError> {
        let weights_error = |problem: String| ModelError::Weights {
            path: path.display().to_string(),
            problem,
        };
        let expected_params = self.num_params();
        let size = std::fs::metadata(path)
            .map_err(|e| weights_error(format!("cannot read weights: {e}")))?
            .len();
        // A burnpack file holds 4 bytes per parameter plus a small header; refuse files far
        // larger than that before reading them, so an untrusted file cannot exhaust memory.
        let ceiling = (expected_params as u64) * 4 + 1024 * 1024;
        if size > ceiling {
            return Err(weights_error(format!(
                "file is {size} bytes, far more than the {expected_params} parameters this spec needs"
            )));
        }
        let shapes_before: Vec<Vec<usize>> = self
            .layer_params()
            .iter()
            .map(|p| p.weight.dims().to_vec())
            .collect();
        let loaded =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.try_load_file(path)))
                .map_err(|_| weights_error("weights file is corrupt".into()))?
                .map_err(|e| {
                    let text = e.to_string();
                    if text.contains("magic") || text.contains("truncated") || text.contains("I/O")
                    {
                        weights_error(format!(
                            "not a complete weights file (damaged or truncated?): {text}"
                        ))
                    } else {
                        weights_error(format!("weights do not fit this spec: {text}"))
                    }
                })?;
        let shapes_after: Vec<Vec<usize>> = loaded
            .layer_params()
            .iter()
            .map(|p| p.weight.dims().to_vec())
            .collect();
        if shapes_before != shapes_after || loaded.num_params() != expected_params {
            return Err(weights_error(format!(
                "weights have shapes {shapes_after:?}, the spec needs {shapes_before:?}"
            )));
        }
        Ok(loaded)
    }
}

/// `[batch, channels, h, w]` -> `[batch * h * w, channels]`.
fn channels_last(x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    x.permute([0, 2, 3, 1]).reshape([b * h * w, c])
}

/// `[out, in, k, k]` -> `[in * k * k, out]`.
fn conv_matrix(w: Tensor<4>) -> Tensor<2> {
    let [out, inp, kh, kw] = w.dims();
    w.reshape([out, inp * kh * kw]).transpose()
}

/// Gives a parameter a new value, keeping its id and its training settings.
fn replace_param<const D: usize>(param: Param<Tensor<D>>, value: Tensor<D>) -> Param<Tensor<D>> {
    // Detached: a value computed from another network's parameters (a conv weight reshaped
    // from its matrix) is not a leaf, and only a leaf can be a trainable parameter.
    param.map(|old| value.detach().set_require_grad(old.is_require_grad()))
}

fn with_bias(mut conv: Conv2d, bias: f64, units: usize, device: &Device) -> Conv2d {
    conv.bias = conv
        .bias
        .map(|b| replace_param(b, Tensor::full([units], bias, device)));
    conv
}

fn linear_with_bias(mut linear: Linear, bias: f64, units: usize, device: &Device) -> Linear {
    linear.bias = linear
        .bias
        .map(|b| replace_param(b, Tensor::full([units], bias, device)));
    linear
}

impl Network {
    /// Moves the network to `device`, drawing its lazily initialized parameters first on the
    /// device it was built on. burn initializes parameters at first use, and a plain `fork` of
    /// a fresh network would make the draw on `device` instead, from that device's own random
    /// generator: a network built on the CPU from a seed then has the same weights on every
    /// backend. `fork` (not `to_device`) keeps the parameters trainable leaves.
    pub fn fork_initialized(self, device: &Device) -> Network {
        /// Reads every float parameter, which makes burn draw it.
        struct Draw;
        impl ModuleVisitor for Draw {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let _ = param.val();
            }
        }
        self.visit(&mut Draw);
        self.fork(device)
    }
}

#[cfg(test)]
mod tests;
