//! From a [`Graph`] to what a neuron-doctor [`ModelSpec`] can express: convolutions (stride 1,
//! "same" padding, one square kernel size) each followed by the hidden activation and 2x2
//! pooling (max or average, the same for all), a flatten, dense layers with the hidden activation, and an output layer with an
//! optional output activation. Dropout is the identity at inference and is dropped; an
//! inference batch norm right after a layer is folded into that layer's weights and bias
//! (exact for the forward pass). Anything else is an error naming the node.

use nd_spec::{Activation, ModelKind, ModelSpec, OutputActivation, Pool};

use crate::graph::{Act, Graph, Node, Op, Tensor};

/// Why a graph cannot be expressed, before the file's path is known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LayoutError {
    pub node: String,
    pub problem: String,
}

fn fail<T>(node: &str, problem: impl Into<String>) -> Result<T, LayoutError> {
    Err(LayoutError {
        node: node.to_string(),
        problem: problem.into(),
    })
}

/// One layer's parameters in the layout [`nd_models::Network::with_layer_params`] takes:
/// `weight` is `[fan_in, units]` row-major, `bias` has `units` values.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    /// The model file's name for the layer.
    pub source: String,
    /// `fan_in` (for a conv: `in * k * k`).
    pub fan_in: usize,
    /// Units (output features or channels).
    pub units: usize,
    /// `[fan_in, units]`, row-major.
    pub weight: Vec<f32>,
    /// One per unit (zeros where the file's layer had no bias).
    pub bias: Vec<f32>,
}

/// A graph expressed as a `[model]` section and the weights of each layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Lowered {
    /// The architecture.
    pub model: ModelSpec,
    /// Features per example (flattened).
    pub inputs: usize,
    /// `[channels, height, width]` for a cnn.
    pub image: Option<[usize; 3]>,
    /// Output units.
    pub outputs: usize,
    /// Every layer's weights: convolutions, dense layers, then the output layer.
    pub layers: Vec<LayerWeights>,
    /// Batch norms folded into the layer before them (their node names).
    pub folded_batch_norms: Vec<String>,
}

fn activation_of(node: &str, act: Act) -> Result<(Activation, Option<f64>), LayoutError> {
    Ok(match act {
        Act::Relu => (Activation::Relu, None),
        Act::LeakyRelu(slope) => (Activation::LeakyRelu, Some(slope)),
        Act::Elu(alpha) if (alpha - 1.0).abs() < 1e-6 => (Activation::Elu, None),
        Act::Elu(alpha) => {
            return fail(
                node,
                format!("ELU with alpha {alpha} cannot be represented: only alpha 1"),
            )
        }
        Act::Selu => (Activation::Selu, None),
        Act::Gelu => (Activation::Gelu, None),
        Act::Silu => (Activation::Silu, None),
        Act::Softplus => (Activation::Softplus, None),
        Act::Sigmoid => (Activation::Sigmoid, None),
        Act::Tanh => (Activation::Tanh, None),
    })
}

fn output_activation_of(node: &str, act: Act) -> Result<OutputActivation, LayoutError> {
    Ok(match act {
        Act::Relu => OutputActivation::Relu,
        Act::Sigmoid => OutputActivation::Sigmoid,
        Act::Tanh => OutputActivation::Tanh,
        Act::Softplus => OutputActivation::Softplus,
        other => {
            return fail(
                node,
                format!(
                    "{} on the output cannot be represented: the output activation may be ReLU, Sigmoid, Tanh, Softplus or none",
                    other.torch_name()
                ),
            )
        }
    })
}

/// `[out, rest...]` as `[rest, out]` row-major.
fn transposed(weight: &Tensor) -> Vec<f32> {
    let out = weight.shape[0];
    let rest = weight.values.len() / out.max(1);
    let mut t = vec![0.0; weight.values.len()];
    for o in 0..out {
        for r in 0..rest {
            t[r * out + o] = weight.values[o * rest + r];
        }
    }
    t
}

/// Folds an inference batch norm over `units` channels into `[out, rest]` weights and a bias.
fn fold(node: &str, weight: &mut Tensor, bias: &mut [f32], bn: &Op) -> Result<(), LayoutError> {
    let Op::BatchNorm {
        scale,
        shift,
        mean,
        var,
        epsilon,
    } = bn
    else {
        unreachable!("fold is called with a batch norm");
    };
    let out = weight.shape[0];
    if [scale.len(), shift.len(), mean.len(), var.len()] != [out; 4] {
        return fail(
            node,
            format!(
                "a batch norm over {} channels after a layer with {out} units",
                scale.len()
            ),
        );
    }
    let rest = weight.values.len() / out.max(1);
    for o in 0..out {
        let k = scale[o] as f64 / (var[o] as f64 + epsilon).sqrt();
        for r in 0..rest {
            weight.values[o * rest + r] = (weight.values[o * rest + r] as f64 * k) as f32;
        }
        bias[o] = ((bias[o] as f64 - mean[o] as f64) * k + shift[o] as f64) as f32;
    }
    Ok(())
}

struct Cursor<'a> {
    nodes: Vec<&'a Node>,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<&'a Node> {
        self.nodes.get(self.at).copied()
    }
    fn next(&mut self) -> Option<&'a Node> {
        let n = self.peek();
        self.at += 1;
        n
    }
    fn take_batch_norm(&mut self) -> Option<&'a Node> {
        match self.peek() {
            Some(
                n @ Node {
                    op: Op::BatchNorm { .. },
                    ..
                },
            ) => {
                self.at += 1;
                Some(n)
            }
            _ => None,
        }
    }
}

/// The hidden activation, which a neuron-doctor network shares across its hidden layers.
struct Hidden {
    activation: Option<(Activation, Option<f64>, String)>,
}

impl Hidden {
    fn set(&mut self, node: &str, act: Act) -> Result<(), LayoutError> {
        let (activation, slope) = activation_of(node, act)?;
        match &self.activation {
            None => {
                self.activation = Some((activation, slope, node.to_string()));
                Ok(())
            }
            Some((a, s, _)) if *a == activation && s.is_none_or(|s| slope.is_some_and(|t| (s - t).abs() < 1e-9)) => Ok(()),
            Some((a, _, first)) => fail(
                node,
                format!(
                    "{} here but {a} at {first:?}: a neuron-doctor network has one hidden activation",
                    act.torch_name()
                ),
            ),
        }
    }
}

/// Expresses `graph` as a spec's `[model]` and per-layer weights. `input` is one example's
/// shape when the graph does not say it (`[features]`, or `[channels, height, width]`).
pub(crate) fn lower(graph: &Graph, input: &[usize]) -> Result<Lowered, LayoutError> {
    let mut cursor = Cursor {
        nodes: graph.nodes.iter().filter(|n| n.op != Op::Dropout).collect(),
        at: 0,
    };
    let mut hidden = Hidden { activation: None };
    let mut layers = Vec::new();
    let mut folded = Vec::new();
    let mut conv_channels = Vec::new();
    let mut kernel = None;
    let mut pool = None;
    // The running shape: [c, h, w] while convolving.
    let (mut flat, mut image) = match input {
        [f] => (*f, None),
        [c, h, w] => (c * h * w, Some([*c, *h, *w])),
        other => {
            return fail(
                "input",
                format!(
                    "an input of shape {other:?}: expected [features] or [channels, height, width]"
                ),
            )
        }
    };
    while let Some(node) = cursor.peek() {
        let Op::Conv {
            weight,
            bias,
            stride,
            padding,
            dilation,
            groups,
        } = &node.op
        else {
            break;
        };
        cursor.next();
        let [c, h, w] = image.ok_or_else(|| LayoutError {
            node: node.name.clone(),
            problem: format!(
                "a convolution on a flat input of {flat} features: give the image shape"
            ),
        })?;
        let [out, inp, kh, kw] = weight.shape[..] else {
            return fail(
                &node.name,
                format!("a Conv2d weight of shape {:?}", weight.shape),
            );
        };
        if *groups != 1 || *dilation != [1, 1] {
            return fail(
                &node.name,
                "grouped or dilated convolutions cannot be represented yet",
            );
        }
        if inp != c {
            return fail(
                &node.name,
                format!("a convolution over {inp} channels after {c}"),
            );
        }
        if kh != kw || kh % 2 == 0 || *stride != [1, 1] || *padding != [kh / 2; 4] {
            return fail(
                &node.name,
                format!(
                    "a {kh}x{kw} convolution with stride {stride:?} and padding {padding:?}: neuron-doctor's cnn uses square, odd kernels with stride 1 and \"same\" padding ({0})",
                    "padding = kernel_size // 2"
                ),
            );
        }
        if kernel.is_some_and(|k| k != kh) {
            return fail(
                &node.name,
                "convolutions with different kernel sizes cannot be represented yet",
            );
        }
        kernel = Some(kh);
        let mut weight = weight.clone();
        let mut bias = bias.clone().unwrap_or_else(|| vec![0.0; out]);
        if let Some(bn) = cursor.take_batch_norm() {
            fold(&bn.name, &mut weight, &mut bias, &bn.op)?;
            folded.push(bn.name.clone());
        }
        match cursor.next() {
            Some(Node {
                name,
                op: Op::Act(a),
            }) => hidden.set(name, *a)?,
            other => {
                return fail(
                    other.map_or(&node.name, |n| &n.name),
                    "a convolution without an activation after it cannot be represented",
                )
            }
        }
        match cursor.next() {
            Some(Node {
                name,
                op:
                    Op::Pool {
                        max,
                        kernel: [2, 2],
                        stride: [2, 2],
                        padding: [0, 0, 0, 0],
                    },
            }) if h >= 2 && w >= 2 => {
                let kind = if *max { Pool::Max } else { Pool::Avg };
                if pool.is_some_and(|p| p != kind) {
                    return fail(name, "max and average pooling mixed cannot be represented");
                }
                pool = Some(kind);
            }
            other => {
                return fail(
                    other.map_or(&node.name, |n| &n.name),
                    format!(
                        "{} after a convolution: neuron-doctor's cnn follows every convolution with its activation and 2x2 pooling (stride 2, max or average)",
                        other.map_or("nothing".to_string(), |n| n.op.describe())
                    ),
                )
            }
        }
        layers.push(LayerWeights {
            source: node.name.clone(),
            fan_in: inp * kh * kw,
            units: out,
            weight: transposed(&weight),
            bias,
        });
        conv_channels.push(out);
        image = Some([out, h / 2, w / 2]);
        flat = out * (h / 2) * (w / 2);
    }
    let is_cnn = !conv_channels.is_empty();
    if let Some(node) = cursor.peek() {
        if node.op == Op::Flatten {
            cursor.next();
        } else if is_cnn {
            return fail(
                &node.name,
                format!(
                    "{} after the convolutions: expected Flatten",
                    node.op.describe()
                ),
            );
        }
    }
    let mut widths = Vec::new();
    let mut output_activation = OutputActivation::None;
    let mut outputs = None;
    while let Some(node) = cursor.next() {
        let Op::Dense { weight, bias } = &node.op else {
            return fail(
                &node.name,
                format!("{} where a Linear layer was expected", node.op.describe()),
            );
        };
        let [out, inp] = weight.shape[..] else {
            return fail(
                &node.name,
                format!("a Linear weight of shape {:?}", weight.shape),
            );
        };
        if inp != flat {
            return fail(
                &node.name,
                format!("a Linear layer with {inp} inputs after {flat} features"),
            );
        }
        let mut weight = weight.clone();
        let mut bias = bias.clone().unwrap_or_else(|| vec![0.0; out]);
        if let Some(bn) = cursor.take_batch_norm() {
            fold(&bn.name, &mut weight, &mut bias, &bn.op)?;
            folded.push(bn.name.clone());
        }
        layers.push(LayerWeights {
            source: node.name.clone(),
            fan_in: inp,
            units: out,
            weight: transposed(&weight),
            bias,
        });
        flat = out;
        let act = match cursor.peek() {
            Some(Node {
                name,
                op: Op::Act(a),
            }) => {
                cursor.next();
                Some((name.clone(), *a))
            }
            _ => None,
        };
        if cursor.peek().is_none() {
            if let Some((name, a)) = act {
                output_activation = output_activation_of(&name, a)?;
            }
            outputs = Some(out);
            break;
        }
        match act {
            Some((name, a)) => hidden.set(&name, a)?,
            None => {
                return fail(
                    &node.name,
                    "a hidden Linear layer without an activation after it cannot be represented",
                )
            }
        }
        widths.push(out);
    }
    let Some(outputs) = outputs else {
        return fail("output", "the model has no Linear output layer");
    };
    let (activation, slope) = match hidden.activation {
        Some((a, s, _)) => (a, s),
        None => (Activation::Relu, None),
    };
    let mut model = if is_cnn {
        let mut m = ModelSpec::new(ModelKind::Cnn, conv_channels);
        m.dense = widths;
        m.kernel_size = kernel.unwrap_or(3);
        m.pool = pool.unwrap_or_default();
        m
    } else {
        ModelSpec::new(ModelKind::Mlp, widths)
    };
    model.activation = activation;
    if let Some(s) = slope {
        model.leaky_slope = s;
    }
    model.output_activation = output_activation;
    let inputs = input.iter().product();
    Ok(Lowered {
        model,
        inputs,
        image: if is_cnn {
            match input {
                [c, h, w] => Some([*c, *h, *w]),
                _ => None,
            }
        } else {
            None
        },
        outputs,
        layers,
        folded_batch_norms: folded,
    })
}
