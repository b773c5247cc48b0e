//! The model spec: one TOML file that is the single source of truth for a run.
//!
//! A spec has four sections: `[data]` (which dataset and how to prepare it), `[model]` (the
//! architecture), `[train]` (the optimizer and budget) and `[doctor]` (the diagnosis thresholds).
//! Every key has a documented default, unknown keys are errors, and [`Spec::check`] turns a
//! parsed spec into a [`CheckedSpec`] that code past that point never re-validates. Remedies
//! are changes to a spec, written as `section.key = value` pairs ([`Spec::apply_change`]).
//! The crate's README is the reference of every key, its default and what it allows.
//!
//! ```
//! let text = r#"
//! [data]
//! dataset = "digits"
//! [model]
//! hidden = [32]
//! activation = "tanh"
//! "#;
//! let spec = nd_spec::Spec::from_toml_str(text, "example").unwrap().check().unwrap();
//! assert_eq!(spec.model.hidden, vec![32]);
//! assert_eq!(spec.train.epochs, 20);
//! assert_eq!(spec.name, "example");
//! ```

mod doctor;
mod error;
mod footprint;

pub use doctor::DoctorThresholds;
pub use error::SpecError;
pub use executor::{ExecutorKind, ExecutorSpec};
pub use footprint::{Footprint, MAX_NAME_BYTES, MAX_SAMPLES, MEMORY_CEILING_BYTES};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// A parsed spec with every default filled in. Call [`Spec::check`] before using it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The run's name; defaults to the spec file's stem.
    #[serde(default)]
    pub name: String,
    /// What data to train on.
    pub data: DataSpec,
    /// The architecture.
    pub model: ModelSpec,
    /// The optimizer and the budget.
    #[serde(default)]
    pub train: TrainSpec,
    /// Thresholds for the diagnosis.
    #[serde(default)]
    pub doctor: DoctorThresholds,
    /// Where `fix`, `checkup` and `compare` train their candidates (absent: locally).
    #[serde(default, skip_serializing_if = "ExecutorSpec::is_default")]
    pub executor: ExecutorSpec,
    /// Where an imported model came from (absent for models this tool built).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceSpec>,
}

/// The `[source]` section of an imported model's run: the file its weights were read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The model file, as given to `import` (written by `import`).
    #[serde(default)]
    pub file: PathBuf,
    /// `onnx`, `safetensors` or `state_dict` (written by `import`).
    #[serde(default)]
    pub format: String,
    /// SHA-256 of the file, as hex (written by `import`).
    #[serde(default)]
    pub sha256: String,
    /// For weights-only files: the activations were assumed, not read from the file.
    #[serde(default)]
    pub activations_assumed: bool,
    /// For weights-only files whose layers are named rather than numbered (`fc1`, `fc2`,
    /// `head` instead of `nn.Sequential`'s `0`, `2`, `4`): the state_dict's module names in
    /// forward order, given by the user in the `--spec` file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
}

/// The `[data]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// A builtin dataset, or `csv` for a user's file.
    pub dataset: DatasetName,
    /// `csv` only: the file, plain or gzip'd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// `csv` only: the target column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `csv` only: classification or regression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// Scale features to zero mean and unit variance, fitted on the train split.
    #[serde(default = "yes")]
    pub standardize: bool,
    /// Regression only: how to scale the target.
    #[serde(default)]
    pub target_scale: TargetScale,
    /// Use at most this many training rows (0 = all).
    #[serde(default)]
    pub limit: usize,
    /// Synthetic datasets only: how many rows to generate.
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// Synthetic datasets only: the noise level.
    #[serde(default = "default_noise")]
    pub noise: f64,
    /// `csv` only: the features are images of this `[channels, height, width]`, flattened
    /// row-major (what a convolutional model needs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<[usize; 3]>,
    /// Which rows are held out when the file has no `is_test` column.
    #[serde(default)]
    pub holdout: Holdout,
    /// `csv` classification only: the number of classes (the model's outputs), when the
    /// labels in the file need not reach the largest (default: largest label + 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
}

/// The `[model]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// `mlp` or `cnn`.
    #[serde(default)]
    pub kind: ModelKind,
    /// mlp: hidden widths; cnn: conv channels.
    pub hidden: Vec<usize>,
    /// cnn only: widths of the dense layers after the convolutions.
    #[serde(default)]
    pub dense: Vec<usize>,
    /// cnn only: the square kernel size of every convolution.
    #[serde(default = "default_kernel")]
    pub kernel_size: usize,
    /// cnn only: the 2x2 pooling after every convolution, `max` or `avg`.
    #[serde(default)]
    pub pool: Pool,
    /// The hidden layers' activation.
    #[serde(default)]
    pub activation: Activation,
    /// Negative slope of `leaky_relu`.
    #[serde(default = "default_leaky_slope")]
    pub leaky_slope: f64,
    /// Weight initializer of every layer.
    #[serde(default)]
    pub init: Init,
    /// `normal` init: the standard deviation.
    #[serde(default = "default_init_std")]
    pub init_std: f64,
    /// `uniform` init: `a` in U(-a, a).
    #[serde(default = "default_init_range")]
    pub init_range: f64,
    /// Every bias starts at this constant.
    #[serde(default)]
    pub bias_init: f64,
    /// Applied to the model's output.
    #[serde(default)]
    pub output_activation: OutputActivation,
    /// Batch norm after every hidden layer, before its activation.
    #[serde(default)]
    pub batch_norm: bool,
    /// Dropout probability after every hidden activation.
    #[serde(default)]
    pub dropout: f64,
}

/// The `[train]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// `adam` or `sgd`.
    #[serde(default)]
    pub optimizer: Optimizer,
    /// Step size.
    #[serde(default = "default_lr")]
    pub learning_rate: f64,
    /// sgd only: momentum factor (0 = plain SGD).
    #[serde(default)]
    pub momentum: f64,
    /// L2 weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// Passes over the training split.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Rows per optimizer step.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Seeds initialization, shuffling and dropout.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Where tensors live.
    #[serde(default)]
    pub backend: Backend,
}

impl Default for TrainSpec {
    fn default() -> Self {
        Self {
            optimizer: Optimizer::default(),
            learning_rate: default_lr(),
            momentum: 0.0,
            weight_decay: 0.0,
            epochs: default_epochs(),
            batch_size: default_batch(),
            seed: default_seed(),
            backend: Backend::default(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_samples() -> usize {
    1000
}
fn default_noise() -> f64 {
    0.1
}
impl DataSpec {
    /// The `[data]` section of a model trained elsewhere: the user's CSV file as it is (no
    /// standardization: the model's preprocessing is already in the file), every row a training
    /// row unless the file has an `is_test` column, and for classification `classes` classes
    /// (the model's outputs).
    pub fn imported(path: PathBuf, target: &str, task: Task, classes: Option<usize>) -> DataSpec {
        DataSpec {
            dataset: DatasetName::Csv,
            path: Some(path),
            target: Some(target.to_string()),
            task: Some(task),
            standardize: false,
            target_scale: TargetScale::None,
            limit: 0,
            samples: default_samples(),
            noise: default_noise(),
            image: None,
            holdout: Holdout::None,
            classes: classes.filter(|_| task == Task::Classification),
        }
    }
}

impl ModelSpec {
    /// A `[model]` section of `kind` with these hidden widths (conv channels for a cnn) and
    /// every other key at its default.
    pub fn new(kind: ModelKind, hidden: Vec<usize>) -> ModelSpec {
        ModelSpec {
            kind,
            hidden,
            dense: Vec::new(),
            kernel_size: default_kernel(),
            pool: Pool::default(),
            activation: Activation::default(),
            leaky_slope: default_leaky_slope(),
            init: Init::default(),
            init_std: default_init_std(),
            init_range: default_init_range(),
            bias_init: 0.0,
            output_activation: OutputActivation::default(),
            batch_norm: false,
            dropout: 0.0,
        }
    }
}

fn default_kernel() -> usize {
    3
}
fn default_leaky_slope() -> f64 {
    0.01
}
fn default_init_std() -> f64 {
    0.01
}
fn default_init_range() -> f64 {
    0.05
}
fn default_lr() -> f64 {
    0.001
}
fn default_epochs() -> usize {
    20
}
fn default_batch() -> usize {
    64
}
fn default_seed() -> u64 {
    42
}

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? } default $default:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }
        impl $name {
            /// Every accepted spelling, in documentation order.
            pub const ALL: &'static [&'static str] = &[$($text),+];
            /// The spelling used in specs.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl Default for $name {
            fn default() -> Self { Self::$default }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(format!("`{s}` is not one of {}", Self::ALL.join(", "))),
                }
            }
        }
    };
}

mod executor;

named_enum!(
    /// The datasets neuron-doctor knows.
    DatasetName {
        /// UCI optical digits, 8x8 images, 10 classes.
        Digits = "digits",
        /// Fisher's iris, 3 classes.
        Iris = "iris",
        /// UCI wine, 3 classes.
        Wine = "wine",
        /// Wisconsin breast cancer, 2 classes.
        BreastCancer = "breast-cancer",
        /// Diabetes progression, regression.
        Diabetes = "diabetes",
        /// A 12k-image MNIST subset, 28x28.
        Mnist = "mnist",
        /// A 7k-image Fashion-MNIST subset, 28x28.
        FashionMnist = "fashion-mnist",
        /// Synthetic two-arm spirals, 2 classes.
        Spirals = "spirals",
        /// Synthetic sine regression, targets in [-1, 1].
        Sine = "sine",
        /// A user's CSV file.
        Csv = "csv",
    } default Digits
);

named_enum!(
    /// What the model predicts.
    Task {
        /// Class labels, cross-entropy loss.
        Classification = "classification",
        /// Real targets, MSE loss.
        Regression = "regression",
    } default Classification
);

named_enum!(
    /// How a regression target is scaled.
    TargetScale {
        /// As in the data.
        None = "none",
        /// Zero mean, unit variance, fitted on the train split.
        Standardize = "standardize",
    } default None
);

named_enum!(
    /// Which rows a file without an `is_test` column holds out for testing.
    Holdout {
        /// Every 5th row of each class (classification) or in target order (regression).
        Rule = "rule",
        /// None: every row is a training row and test metrics are not measured (imported
        /// models, whose held-out rows only the user knows).
        None = "none",
    } default Rule
);

named_enum!(
    /// Architecture family.
    ModelKind {
        /// Dense layers.
        Mlp = "mlp",
        /// Convolutions, max pooling, then dense layers.
        Cnn = "cnn",
    } default Mlp
);

named_enum!(
    /// The 2x2, stride 2 pooling after each convolution of a cnn.
    Pool {
        /// `nn.MaxPool2d(2)`.
        Max = "max",
        /// `nn.AvgPool2d(2)`.
        Avg = "avg",
    } default Max
);

named_enum!(
    /// A hidden layer's activation.
    Activation {
        /// max(0, x).
        Relu = "relu",
        /// x for x > 0, slope * x otherwise.
        LeakyRelu = "leaky_relu",
        /// Exponential linear unit (alpha 1).
        Elu = "elu",
        /// Scaled ELU.
        Selu = "selu",
        /// Gaussian error linear unit.
        Gelu = "gelu",
        /// x * sigmoid(x).
        Silu = "silu",
        /// ln(1 + e^x).
        Softplus = "softplus",
        /// 1 / (1 + e^-x).
        Sigmoid = "sigmoid",
        /// Hyperbolic tangent.
        Tanh = "tanh",
        /// No activation.
        Identity = "identity",
    } default Relu
);

impl Activation {
    /// True for activations whose unit is "off" when the pre-activation is <= 0 and whose
    /// gradient is then (almost) zero: the ones that can die.
    pub fn is_relu_family(self) -> bool {
        matches!(
            self,
            Self::Relu | Self::LeakyRelu | Self::Elu | Self::Selu | Self::Gelu | Self::Silu
        )
    }

    /// True for activations that flatten at both ends and can saturate.
    pub fn is_squashing(self) -> bool {
        matches!(self, Self::Sigmoid | Self::Tanh)
    }

    /// The gain an initializer uses for a layer followed by this activation, after PyTorch's
    /// `calculate_gain`: relu-like sqrt(2), leaky relu sqrt(2 / (1 + slope^2)), tanh 5/3,
    /// sigmoid and identity 1. SELU gets 1 (the self-normalizing setting; PyTorch's 3/4 is
    /// meant for other uses), GELU, SiLU, ELU and softplus get relu's sqrt(2).
    pub fn gain(self, leaky_slope: f64) -> f64 {
        match self {
            Self::Relu | Self::Elu | Self::Gelu | Self::Silu | Self::Softplus => 2f64.sqrt(),
            Self::LeakyRelu => (2.0 / (1.0 + leaky_slope * leaky_slope)).sqrt(),
            Self::Tanh => 5.0 / 3.0,
            Self::Selu | Self::Sigmoid | Self::Identity => 1.0,
        }
    }
}

named_enum!(
    /// The activation applied to the model's output.
    OutputActivation {
        /// Raw output (logits for classification).
        None = "none",
        /// max(0, x): cannot go negative.
        Relu = "relu",
        /// (0, 1).
        Sigmoid = "sigmoid",
        /// (-1, 1).
        Tanh = "tanh",
        /// (0, inf).
        Softplus = "softplus",
    } default None
);

impl OutputActivation {
    /// The open or closed range of values this head can produce, `(low, high)`.
    pub fn range(self) -> (f64, f64) {
        match self {
            Self::None => (f64::NEG_INFINITY, f64::INFINITY),
            Self::Relu | Self::Softplus => (0.0, f64::INFINITY),
            Self::Sigmoid => (0.0, 1.0),
            Self::Tanh => (-1.0, 1.0),
        }
    }
}

named_enum!(
    /// Weight initializer.
    Init {
        /// He uniform: U(-a, a), a = gain * sqrt(3 / fan_in).
        KaimingUniform = "kaiming_uniform",
        /// He normal: std = gain / sqrt(fan_in).
        KaimingNormal = "kaiming_normal",
        /// Glorot uniform: a = gain * sqrt(6 / (fan_in + fan_out)).
        XavierUniform = "xavier_uniform",
        /// Glorot normal: std = gain * sqrt(2 / (fan_in + fan_out)).
        XavierNormal = "xavier_normal",
        /// LeCun normal: std = 1 / sqrt(fan_in) (gain-free by definition; for selu).
        LecunNormal = "lecun_normal",
        /// N(0, init_std).
        Normal = "normal",
        /// U(-init_range, init_range).
        Uniform = "uniform",
    } default KaimingUniform
);

named_enum!(
    /// Optimizer.
    Optimizer {
        /// Adam (beta 0.9, 0.999).
        Adam = "adam",
        /// Stochastic gradient descent, with `momentum` if set.
        Sgd = "sgd",
    } default Adam
);

named_enum!(
    /// Compute backend.
    Backend {
        /// burn's ndarray CPU backend (deprecated by burn 0.22 in favour of flex).
        Ndarray = "ndarray",
        /// burn's flex CPU backend: pure Rust, im2col + gemm convolutions, SIMD, threads.
        Flex = "flex",
        /// burn's wgpu backend (GPU, or Mesa's software Vulkan).
        Wgpu = "wgpu",
    } default Flex
);

/// Every key a spec accepts, as `section.key`; used for suggestions and by `--try`.
pub const KEYS: &[&str] = &[
    "name",
    "data.dataset",
    "data.path",
    "data.target",
    "data.task",
    "data.standardize",
    "data.target_scale",
    "data.limit",
    "data.samples",
    "data.noise",
    "data.image",
    "data.holdout",
    "data.classes",
    "model.kind",
    "model.hidden",
    "model.dense",
    "model.kernel_size",
    "model.pool",
    "model.activation",
    "model.leaky_slope",
    "model.init",
    "model.init_std",
    "model.init_range",
    "model.bias_init",
    "model.output_activation",
    "model.batch_norm",
    "model.dropout",
    "train.optimizer",
    "train.learning_rate",
    "train.momentum",
    "train.weight_decay",
    "train.epochs",
    "train.batch_size",
    "train.seed",
    "train.backend",
    "doctor.dead_fraction_warning",
    "doctor.dead_fraction_error",
    "doctor.dormant_tau",
    "doctor.saturated_fraction_warning",
    "doctor.saturated_fraction_error",
    "doctor.vanishing_ratio",
    "doctor.exploding_ratio",
    "doctor.init_scale_tolerance",
    "doctor.stall_epochs",
    "doctor.stall_min_improvement",
];

impl Spec {
    /// Reads and parses a spec file; the name defaults to the file stem.
    pub fn from_file(path: &Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("run");
        Spec::from_toml_str(&text, stem).map_err(|e| e.in_file(path))
    }

    /// Parses spec text; `default_name` is used when the spec has no `name`.
    pub fn from_toml_str(text: &str, default_name: &str) -> Result<Spec, SpecError> {
        let deserializer = toml::Deserializer::new(text);
        let mut spec: Spec = serde_path_to_error::deserialize(deserializer)
            .map_err(|e| SpecError::from_toml(text, e))?;
        if spec.name.is_empty() {
            spec.name = default_name.to_string();
        }
        Ok(spec)
    }

    /// Writes the spec as TOML with every default spelled out; parsing the text gives the same
    /// spec back.
    ///
    /// # Panics
    ///
    /// When an integer was set from code above TOML's largest (`i64::MAX`); [`Spec::check`]
    /// rejects such a spec, so a [`CheckedSpec`] always writes.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a spec always serializes")
    }

    /// Validates every value; the checked spec is what the rest of the tool takes.
    pub fn check(self) -> Result<CheckedSpec, SpecError> {
        let invalid = SpecError::invalid;
        self.executor.check()?;
        // The name becomes a directory name: no separators, and no leading '.' (`..`, hidden).
        let name_ok = !self.name.is_empty()
            && !self.name.starts_with('.')
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(invalid(
                "name",
                format!("{:?}", self.name),
                "letters, digits, '-', '_' and '.', not starting with '.'",
            ));
        }
        if self.name.len() > MAX_NAME_BYTES {
            return Err(invalid(
                "name",
                format!("{:?}...", self.name.chars().take(40).collect::<String>()),
                &format!(
                    "at most {MAX_NAME_BYTES} bytes (it was {}): the name becomes a directory name",
                    self.name.len()
                ),
            ));
        }
        let d = &self.data;
        if d.dataset == DatasetName::Csv {
            if d.path.is_none() {
                return Err(SpecError::missing(
                    "data.path",
                    "dataset = \"csv\" needs a file",
                ));
            }
            if d.target.is_none() {
                return Err(SpecError::missing(
                    "data.target",
                    "dataset = \"csv\" needs the target column's name",
                ));
            }
        } else {
            for (key, value) in [
                (
                    "data.path",
                    d.path
                        .as_ref()
                        .map(|p| format!("{:?}", p.display().to_string())),
                ),
                ("data.target", d.target.as_ref().map(|t| format!("{t:?}"))),
                ("data.task", d.task.map(|t| format!("{:?}", t.as_str()))),
            ] {
                if let Some(value) = value {
                    return Err(invalid(
                        key,
                        value,
                        "no value unless dataset = \"csv\" (builtin datasets know their own)",
                    ));
                }
            }
        }
        for (key, value) in [("data.limit", d.limit), ("data.samples", d.samples)] {
            toml_integer(key, value as u64)?;
        }
        if !(10..=MAX_SAMPLES).contains(&d.samples) {
            return Err(invalid(
                "data.samples",
                d.samples.to_string(),
                &format!("from 10 to {MAX_SAMPLES}"),
            ));
        }
        if !(d.noise.is_finite() && d.noise >= 0.0) {
            return Err(invalid(
                "data.noise",
                d.noise.to_string(),
                "a finite number >= 0",
            ));
        }
        let m = &self.model;
        if m.hidden.is_empty() && m.kind == ModelKind::Cnn {
            return Err(invalid(
                "model.hidden",
                "[]".into(),
                "at least one conv layer for a cnn",
            ));
        }
        for (key, widths) in [("model.hidden", &m.hidden), ("model.dense", &m.dense)] {
            if widths.iter().any(|w| !(1..=65_536).contains(w)) {
                return Err(invalid(
                    key,
                    format!("{widths:?}"),
                    "widths from 1 to 65536",
                ));
            }
        }
        if m.kind == ModelKind::Mlp && !m.dense.is_empty() {
            return Err(invalid(
                "model.dense",
                format!("{:?}", m.dense),
                "only with kind = \"cnn\" (an mlp's widths go in model.hidden)",
            ));
        }
        if m.kernel_size == 0 || m.kernel_size % 2 == 0 || m.kernel_size > 9 {
            return Err(invalid(
                "model.kernel_size",
                m.kernel_size.to_string(),
                "an odd size from 1 to 9",
            ));
        }
        if !(m.leaky_slope.is_finite() && (0.0..1.0).contains(&m.leaky_slope)) {
            return Err(invalid(
                "model.leaky_slope",
                m.leaky_slope.to_string(),
                "a number in [0, 1)",
            ));
        }
        if !(m.init_std.is_finite() && m.init_std > 0.0) {
            return Err(invalid(
                "model.init_std",
                m.init_std.to_string(),
                "a number > 0",
            ));
        }
        if !(m.init_range.is_finite() && m.init_range > 0.0) {
            return Err(invalid(
                "model.init_range",
                m.init_range.to_string(),
                "a number > 0",
            ));
        }
        if !m.bias_init.is_finite() {
            return Err(invalid(
                "model.bias_init",
                m.bias_init.to_string(),
                "a finite number",
            ));
        }
        if !(m.dropout.is_finite() && (0.0..1.0).contains(&m.dropout)) {
            return Err(invalid(
                "model.dropout",
                m.dropout.to_string(),
                "a probability in [0, 1)",
            ));
        }
        let t = &self.train;
        if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
            return Err(invalid(
                "train.learning_rate",
                t.learning_rate.to_string(),
                "a number > 0",
            ));
        }
        if !(t.momentum.is_finite() && (0.0..1.0).contains(&t.momentum)) {
            return Err(invalid(
                "train.momentum",
                t.momentum.to_string(),
                "a number in [0, 1)",
            ));
        }
        if t.momentum > 0.0 && t.optimizer != Optimizer::Sgd {
            return Err(invalid(
                "train.momentum",
                t.momentum.to_string(),
                "0 unless optimizer = \"sgd\" (adam has its own moments)",
            ));
        }
        if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            return Err(invalid(
                "train.weight_decay",
                t.weight_decay.to_string(),
                "a number >= 0",
            ));
        }
        if t.epochs == 0 || t.epochs > 100_000 {
            return Err(invalid(
                "train.epochs",
                t.epochs.to_string(),
                "from 1 to 100000",
            ));
        }
        if t.batch_size == 0 || t.batch_size > 1 << 20 {
            return Err(invalid(
                "train.batch_size",
                t.batch_size.to_string(),
                "from 1 to 1048576",
            ));
        }
        toml_integer("train.seed", t.seed)?;
        // What the model needs whatever the data: one input and one output, the hidden layers
        // in full. The full footprint is checked again once the data's shape is known.
        let lower_bound = self.model.footprint(1, None, 1, t.batch_size);
        self.model.check_footprint(&lower_bound, t.batch_size)?;
        self.doctor.check()?;
        Ok(CheckedSpec(self))
    }

    /// Applies one `section.key = value` change (a remedy or a `--try`), with the value in TOML
    /// syntax (`leaky_relu`, `0.01`, `[64, 64]`; bare words are taken as strings). The result
    /// still needs [`Spec::check`].
    pub fn apply_change(&self, key: &str, value: &str) -> Result<Spec, SpecError> {
        if !KEYS.contains(&key) {
            return Err(SpecError::UnknownKey {
                key: key.to_string(),
                suggestion: closest_key(key),
            });
        }
        let parsed: toml::Value = parse_value(value);
        let mut doc = toml::Value::try_from(self).expect("a spec always serializes");
        let mut slot = &mut doc;
        let parts: Vec<&str> = key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let table = slot.as_table_mut().expect("spec sections are tables");
            if i + 1 == parts.len() {
                table.insert(part.to_string(), parsed.clone());
                break;
            }
            slot = table
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(Default::default()));
        }
        let text = toml::to_string(&doc).expect("a toml value always serializes");
        // The document is ours and well-formed, so a parse error can only be about the new
        // value: report it against the key, without the line and column of our text.
        Spec::from_toml_str(&text, &self.name).map_err(|e| match e {
            SpecError::Parse { message, .. } => SpecError::invalid(
                key,
                // Errors are one line, whatever the caller passed.
                if value.contains(char::is_control) {
                    format!("{value:?}")
                } else {
                    value.to_string()
                },
                &SpecError::allowed_from_message(&message),
            ),
            other => other,
        })
    }

    /// The value of one `section.key`, in TOML syntax, or `None` when unset.
    pub fn get(&self, key: &str) -> Option<String> {
        let doc = toml::Value::try_from(self).ok()?;
        let mut slot = &doc;
        for part in key.split('.') {
            slot = slot.as_table()?.get(part)?;
        }
        Some(match slot {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

fn parse_value(value: &str) -> toml::Value {
    let wrapped = format!("v = {value}");
    match toml::from_str::<toml::Table>(&wrapped) {
        Ok(mut table) => table
            .remove("v")
            .unwrap_or(toml::Value::String(value.into())),
        Err(_) => toml::Value::String(value.to_string()),
    }
}

/// The spec's sections, the tables at the top level.
pub(crate) const SECTIONS: &[&str] = &["data", "model", "train", "doctor"];

/// Integers are i64 in TOML: a larger value (set from code, not from a file) could not be
/// written back by [`Spec::to_toml`].
fn toml_integer(key: &str, value: u64) -> Result<(), SpecError> {
    if value > i64::MAX as u64 {
        return Err(SpecError::invalid(
            key,
            value.to_string(),
            "an integer up to 9223372036854775807 (TOML's largest)",
        ));
    }
    Ok(())
}

/// The closest valid key to a misspelled one, if any is close enough to be a useful hint.
///
/// Only the last part of a `section.key` is compared, so a key in the wrong section is found
/// too (`model.learning_rate` gives `train.learning_rate`); a key in the same section wins a
/// tie. The section names are candidates too (`trian` gives `train`).
///
/// ```
/// assert_eq!(nd_spec::closest_key("model.hiden").as_deref(), Some("model.hidden"));
/// assert_eq!(nd_spec::closest_key("learnig_rate").as_deref(), Some("train.learning_rate"));
/// assert_eq!(nd_spec::closest_key("model.nope"), None);
/// ```
pub fn closest_key(key: &str) -> Option<String> {
    // Jaro-Winkler of at least this is a typo or a small slip, not another word: "hiden" and
    // "hidden" score 0.97, "nope" and "noise" 0.83.
    const THRESHOLD: f64 = 0.85;
    let (section, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    KEYS.iter()
        .chain(SECTIONS)
        .map(|candidate| {
            let (c_section, c_leaf) = candidate.rsplit_once('.').unwrap_or(("", candidate));
            let score = strsim::jaro_winkler(leaf, c_leaf);
            let same_section = c_section == section;
            (score, same_section, *candidate)
        })
        .filter(|(score, _, _)| *score >= THRESHOLD)
        .max_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
        .map(|(_, _, candidate)| candidate.to_string())
}

/// A spec whose values have all been validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedSpec(Spec);

impl CheckedSpec {
    /// The validated spec.
    pub fn spec(&self) -> &Spec {
        &self.0
    }

    /// Gives the spec back, e.g. to change it.
    pub fn into_inner(self) -> Spec {
        self.0
    }

    /// The task, as the dataset implies or a CSV spec says.
    pub fn task(&self) -> Task {
        match self.0.data.dataset {
            DatasetName::Diabetes | DatasetName::Sine => Task::Regression,
            DatasetName::Csv => self.0.data.task.unwrap_or_default(),
            _ => Task::Classification,
        }
    }
}

impl std::ops::Deref for CheckedSpec {
    type Target = Spec;
    fn deref(&self) -> &Spec {
        &self.0
    }
}

// The README's Rust example runs as a doctest, so the reference cannot drift from the code.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests;
