//! The format-neutral model every reader produces: the layers of an `nn.Sequential` in forward
//! order, with PyTorch's weight layouts (`Linear.weight` is `[out, in]`, `Conv2d.weight` is
//! `[out, in, kh, kw]`).

/// A float tensor read from a model file, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, `shape.iter().product()` of them.
    pub values: Vec<f32>,
}

impl Tensor {
    /// A tensor, checking that the values fill the shape.
    pub fn new(shape: Vec<usize>, values: Vec<f32>) -> Option<Tensor> {
        let n = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
        (n == values.len()).then_some(Tensor { shape, values })
    }
}

/// An elementwise activation as PyTorch names it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// `nn.ReLU`.
    Relu,
    /// `nn.LeakyReLU(negative_slope)`.
    LeakyRelu(f64),
    /// `nn.ELU(alpha)`.
    Elu(f64),
    /// `nn.SELU`.
    Selu,
    /// `nn.GELU` (exact, erf).
    Gelu,
    /// `nn.SiLU`.
    Silu,
    /// `nn.Softplus` (beta 1).
    Softplus,
    /// `nn.Sigmoid`.
    Sigmoid,
    /// `nn.Tanh`.
    Tanh,
}

impl Act {
    /// PyTorch's class name, for messages.
    pub fn torch_name(self) -> &'static str {
        match self {
            Act::Relu => "ReLU",
            Act::LeakyRelu(_) => "LeakyReLU",
            Act::Elu(_) => "ELU",
            Act::Selu => "SELU",
            Act::Gelu => "GELU",
            Act::Silu => "SiLU",
            Act::Softplus => "Softplus",
            Act::Sigmoid => "Sigmoid",
            Act::Tanh => "Tanh",
        }
    }
}

/// One layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `nn.Linear`: weight `[out, in]`.
    Dense {
        /// `[out, in]`.
        weight: Tensor,
        /// `[out]`.
        bias: Option<Vec<f32>>,
    },
    /// `nn.Conv2d`: weight `[out, in, kh, kw]`.
    Conv {
        /// `[out, in, kh, kw]`.
        weight: Tensor,
        /// `[out]`.
        bias: Option<Vec<f32>>,
        /// `[sh, sw]`.
        stride: [usize; 2],
        /// `[top, left, bottom, right]`.
        padding: [usize; 4],
        /// `[dh, dw]`.
        dilation: [usize; 2],
        /// Groups.
        groups: usize,
    },
    /// An activation.
    Act(Act),
    /// `nn.MaxPool2d` / `nn.AvgPool2d`.
    Pool {
        /// Max (true) or average.
        max: bool,
        /// `[kh, kw]`.
        kernel: [usize; 2],
        /// `[sh, sw]`.
        stride: [usize; 2],
        /// `[top, left, bottom, right]`.
        padding: [usize; 4],
    },
    /// `nn.BatchNorm1d/2d` in inference: `(x - mean) / sqrt(var + eps) * gamma + beta`.
    BatchNorm {
        /// gamma.
        scale: Vec<f32>,
        /// beta.
        shift: Vec<f32>,
        /// Running mean.
        mean: Vec<f32>,
        /// Running variance.
        var: Vec<f32>,
        /// epsilon.
        epsilon: f64,
    },
    /// `nn.Flatten` (or a reshape to `[batch, -1]`).
    Flatten,
    /// `nn.Dropout`: the identity at inference.
    Dropout,
}

impl Op {
    /// What the layer is, in PyTorch's words.
    pub fn describe(&self) -> String {
        match self {
            Op::Dense { weight, .. } => format!("Linear {:?}", weight.shape),
            Op::Conv { weight, .. } => format!("Conv2d {:?}", weight.shape),
            Op::Act(a) => a.torch_name().to_string(),
            Op::Pool { max: true, .. } => "MaxPool2d".into(),
            Op::Pool { max: false, .. } => "AvgPool2d".into(),
            Op::BatchNorm { .. } => "BatchNorm".into(),
            Op::Flatten => "Flatten".into(),
            Op::Dropout => "Dropout".into(),
        }
    }
}

/// A layer and the name the model file gives it (`0`, `/features/0/Conv`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The file's name for it.
    pub name: String,
    /// The layer.
    pub op: Op,
}

/// A sequential model.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// One example's input shape (no batch axis) when the file says it: `[64]`, `[1, 28, 28]`.
    pub input: Option<Vec<usize>>,
    /// The layers in forward order.
    pub nodes: Vec<Node>,
}
