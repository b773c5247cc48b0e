//! Bring your own model: networks trained elsewhere, read from the files PyTorch users save,
//! as a neuron-doctor `[model]` section and weights that the rest of the tool (probe, rules,
//! revive, fix, report) works on unchanged.
//!
//! - **ONNX** (`torch.onnx.export`, opset 13 and later): the graph gives the architecture,
//!   the activations and the input shape.
//! - **SafeTensors** and **PyTorch state_dicts** (`.safetensors`, `.pt`, `.pth`): weights
//!   only; the architecture is inferred from the tensor names and shapes of an
//!   `nn.Sequential`, the activation is assumed ([`Assumptions`]).
//!
//! Every reader produces a [`graph::Graph`], a chain of layers in PyTorch's layouts; lowering
//! it maps it onto what a spec can express, or says which node cannot be.
//!
//! ```no_run
//! use nd_import::{import, ImportOptions};
//!
//! let imported = import("model.onnx".as_ref(), &ImportOptions::default())?;
//! println!("{:?} {:?}", imported.model().kind, imported.model().hidden);
//! # Ok::<(), nd_import::ImportError>(())
//! ```

pub mod error;
pub mod graph;
mod lower;
mod onnx;
mod state_dict;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor as BurnTensor, TensorData};
use nd_models::{LayerParams, ModelShape, Network};
use nd_spec::{
    Activation, CheckedSpec, DataSpec, DoctorThresholds, ModelSpec, OutputActivation, SourceSpec,
    Spec, TrainSpec,
};
use sha2::{Digest, Sha256};

pub use error::ImportError;
pub use lower::{LayerWeights, Lowered};
pub use state_dict::Assumptions;

use graph::Act;

/// The largest model file read: 1 GiB (250 million float parameters), far beyond what the
/// tool's memory ceiling lets it train.
pub const MAX_MODEL_BYTES: u64 = 1 << 30;

/// A model file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.onnx`.
    Onnx,
    /// `.safetensors`.
    SafeTensors,
    /// `.pt` / `.pth`: a pickled PyTorch state_dict.
    StateDict,
}

impl Format {
    /// The format a file's extension names.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "onnx" => Some(Format::Onnx),
            "safetensors" => Some(Format::SafeTensors),
            "pt" | "pth" => Some(Format::StateDict),
            _ => None,
        }
    }

    /// `onnx`, `safetensors` or `state_dict`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Onnx => "onnx",
            Format::SafeTensors => "safetensors",
            Format::StateDict => "state_dict",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Format::Onnx => "ONNX",
            Format::SafeTensors => "SafeTensors",
            Format::StateDict => "PyTorch state_dict",
        }
    }

    /// True when the file carries weights only, so the activations are assumed.
    pub fn weights_only(self) -> bool {
        self != Format::Onnx
    }
}

/// True when `path` names a model file this crate reads (by extension).
pub fn is_model_file(path: &Path) -> bool {
    Format::of(path).is_some()
}

/// What to assume where the file does not say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportOptions {
    /// Weights-only files: the hidden activation (default relu) and leaky slope.
    pub activation: Option<(Activation, f64)>,
    /// Weights-only files: the output activation (default none).
    pub output_activation: Option<OutputActivation>,
    /// Weights-only files with named (not numbered) layers: the module names in forward order.
    pub layer_order: Vec<String>,
    /// Features per example in the data: gives a weights-only convolutional model its image
    /// size (`features / channels` pixels, square), and an ONNX model without a static input
    /// shape its input.
    pub features: Option<usize>,
}

/// A model read from a file.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// SHA-256 of its bytes, as hex.
    pub sha256: String,
    /// Architecture and weights.
    pub lowered: Lowered,
}

fn act_of(activation: Activation, slope: f64) -> Option<Act> {
    Some(match activation {
        Activation::Relu => Act::Relu,
        Activation::LeakyRelu => Act::LeakyRelu(slope),
        Activation::Elu => Act::Elu(1.0),
        Activation::Selu => Act::Selu,
        Activation::Gelu => Act::Gelu,
        Activation::Silu => Act::Silu,
        Activation::Softplus => Act::Softplus,
        Activation::Sigmoid => Act::Sigmoid,
        Activation::Tanh => Act::Tanh,
        Activation::Identity => return None,
    })
}

fn output_act_of(activation: OutputActivation) -> Option<Act> {
    match activation {
        OutputActivation::None => None,
        OutputActivation::Relu => Some(Act::Relu),
        OutputActivation::Sigmoid => Some(Act::Sigmoid),
        OutputActivation::Tanh => Some(Act::Tanh),
        OutputActivation::Softplus => Some(Act::Softplus),
    }
}

/// Reads a model file: ONNX, SafeTensors or a PyTorch state_dict, by extension.
pub fn import(path: &Path, options: &ImportOptions) -> Result<Imported, ImportError> {
    let format = Format::of(path).ok_or_else(|| ImportError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    let read_error = |source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_MODEL_BYTES {
        return Err(ImportError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit: MAX_MODEL_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    let sha256 = hex(&Sha256::digest(&bytes));
    let corrupt = |problem: String| ImportError::Corrupt {
        path: path.to_path_buf(),
        format: format.title(),
        problem,
    };
    let layout = |node: String, problem: String| ImportError::Layout {
        path: path.to_path_buf(),
        node,
        problem,
    };
    // Readers of untrusted bytes: a panic inside one is a corrupt file, not a crash.
    let guarded = |f: &dyn Fn() -> Result<graph::Graph, ImportError>| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .unwrap_or_else(|_| Err(corrupt("the reader failed on it (damaged file?)".into())))
    };
    let graph = match format {
        Format::Onnx => guarded(&|| {
            onnx::read(&bytes).map_err(|e| match e {
                onnx::OnnxError::Corrupt(p) => corrupt(p),
                onnx::OnnxError::Unsupported(op, node, why) => ImportError::Unsupported {
                    path: path.to_path_buf(),
                    op,
                    node,
                    why,
                },
                onnx::OnnxError::Layout(node, problem) => layout(node, problem),
            })
        })?,
        Format::SafeTensors | Format::StateDict => {
            if format == Format::StateDict && state_dict::is_pickled_module(&bytes) {
                return Err(ImportError::PickledModule {
                    path: path.to_path_buf(),
                });
            }
            let (activation, slope) = options.activation.unwrap_or((Activation::Relu, 0.01));
            let assume = Assumptions {
                activation: act_of(activation, slope).ok_or_else(|| ImportError::Mismatch {
                    path: path.to_path_buf(),
                    problem: "activation identity cannot be assumed between the layers of a weights-only file".into(),
                })?,
                output_activation: options.output_activation.and_then(output_act_of),
                order: options.layer_order.clone(),
            };
            guarded(&|| {
                let tensors = match format {
                    Format::SafeTensors => state_dict::read_safetensors(&bytes),
                    _ => state_dict::read_pytorch(path),
                }
                .map_err(corrupt)?;
                state_dict::infer(tensors, &assume).map_err(|(node, problem)| layout(node, problem))
            })?
        }
    };
    let input = match (&graph.input, options.features) {
        (Some(shape), _) => shape.clone(),
        (None, features) => infer_input(&graph, features).map_err(|p| ImportError::Mismatch {
            path: path.to_path_buf(),
            problem: p,
        })?,
    };
    let lowered = lower::lower(&graph, &input).map_err(|e| layout(e.node, e.problem))?;
    Ok(Imported {
        path: path.to_path_buf(),
        format,
        sha256,
        lowered,
    })
}

/// One example's shape for a graph whose file does not say it: a dense first layer takes its
/// input width; a convolution takes `features / channels` pixels as a square image.
fn infer_input(graph: &graph::Graph, features: Option<usize>) -> Result<Vec<usize>, String> {
    let first = graph
        .nodes
        .iter()
        .find(|n| matches!(n.op, graph::Op::Dense { .. } | graph::Op::Conv { .. }));
    match first.map(|n| &n.op) {
        Some(graph::Op::Dense { weight, .. }) => Ok(vec![weight.shape[1]]),
        Some(graph::Op::Conv { weight, .. }) => {
            let channels = weight.shape[1].max(1);
            let features = features
                .ok_or("a convolutional model's image size comes from the data: give --data")?;
            let pixels = features / channels;
            let side = (pixels as f64).sqrt().round() as usize;
            if features % channels != 0 || side * side != pixels {
                return Err(format!(
                    "the first convolution takes {channels} channel(s), and the data's {features} features are not {channels} square image(s)"
                ));
            }
            Ok(vec![channels, side, side])
        }
        _ => Err("the file has no Linear or Conv2d layer".into()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Imported {
    /// The architecture, as a `[model]` section.
    pub fn model(&self) -> &ModelSpec {
        &self.lowered.model
    }

    /// The network's input and output sizes.
    pub fn shape(&self) -> ModelShape {
        ModelShape {
            inputs: self.lowered.inputs,
            outputs: self.lowered.outputs,
            image: self.lowered.image,
        }
    }

    /// The spec of the imported model's run: the inferred `[model]` (or `model`, when the user
    /// gave one whose architecture matches), `data` and `train` as given, and a `[source]`
    /// naming the file and its SHA-256. `data.image` is set for a convolutional model.
    pub fn spec(
        &self,
        name: &str,
        mut data: DataSpec,
        model: Option<&ModelSpec>,
        train: TrainSpec,
        doctor: DoctorThresholds,
    ) -> Result<Spec, ImportError> {
        let model = match model {
            Some(m) => {
                self.check_spec(m, &self.path)?;
                let mut m = m.clone();
                // A weights-only file's activations are the user's word; an ONNX graph's are
                // the file's.
                if !self.format.weights_only() {
                    m.activation = self.lowered.model.activation;
                    m.leaky_slope = self.lowered.model.leaky_slope;
                    m.output_activation = self.lowered.model.output_activation;
                }
                m
            }
            None => self.lowered.model.clone(),
        };
        data.image = self.lowered.image;
        Ok(Spec {
            name: name.to_string(),
            data,
            model,
            train,
            doctor,
            executor: Default::default(),
            source: Some(SourceSpec {
                file: std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone()),
                format: self.format.as_str().to_string(),
                sha256: self.sha256.clone(),
                activations_assumed: self.format.weights_only(),
                layers: Vec::new(),
            }),
        })
    }

    /// Checks that `spec`'s architecture is the imported one (its activations may differ:
    /// a remedy may swap them on the same weights).
    pub fn check_spec(&self, spec: &ModelSpec, spec_path: &Path) -> Result<(), ImportError> {
        let ours = &self.lowered.model;
        let mismatch = |what: String| ImportError::Mismatch {
            path: spec_path.to_path_buf(),
            problem: format!(
                "{what}, but {} holds {}",
                self.path.display(),
                describe(ours)
            ),
        };
        if spec.kind != ours.kind {
            return Err(mismatch(format!("model.kind is {}", spec.kind)));
        }
        if spec.hidden != ours.hidden {
            return Err(mismatch(format!("model.hidden is {:?}", spec.hidden)));
        }
        if spec.dense != ours.dense {
            return Err(mismatch(format!("model.dense is {:?}", spec.dense)));
        }
        if ours.kind == nd_spec::ModelKind::Cnn && spec.kernel_size != ours.kernel_size {
            return Err(mismatch(format!(
                "model.kernel_size is {}",
                spec.kernel_size
            )));
        }
        if ours.kind == nd_spec::ModelKind::Cnn
            && !self.format.weights_only()
            && spec.pool != ours.pool
        {
            return Err(mismatch(format!("model.pool is {}", spec.pool)));
        }
        if spec.batch_norm {
            return Err(mismatch("model.batch_norm is true".into()));
        }
        Ok(())
    }

    /// A network built from `spec` (whose architecture must be the imported one) carrying the
    /// imported weights, on `device`.
    pub fn network(&self, spec: &CheckedSpec, device: &Device) -> Result<Network, ImportError> {
        self.check_spec(&spec.model, &self.path)?;
        let fresh =
            Network::new(spec, &self.shape(), device).map_err(|e| ImportError::Mismatch {
                path: self.path.clone(),
                problem: e.to_string(),
            })?;
        Ok(self.apply(fresh, device))
    }

    /// Gives `network` (of the imported architecture) the imported weights.
    pub fn apply(&self, mut network: Network, device: &Device) -> Network {
        for (i, layer) in self.lowered.layers.iter().enumerate() {
            let weight = BurnTensor::from_data(
                TensorData::new(layer.weight.clone(), [layer.fan_in, layer.units]),
                device,
            );
            let bias =
                BurnTensor::from_data(TensorData::new(layer.bias.clone(), [layer.units]), device);
            network = network.with_layer_params(
                i,
                LayerParams {
                    weight,
                    bias: Some(bias),
                },
            );
        }
        network
    }
}

/// `mlp [128, 128] relu`, `cnn [8, 16] dense [32] relu`.
fn describe(m: &ModelSpec) -> String {
    match m.kind {
        nd_spec::ModelKind::Mlp => format!("an mlp with hidden {:?}", m.hidden),
        nd_spec::ModelKind::Cnn => format!(
            "a cnn with hidden {:?}, dense {:?}, kernel_size {}",
            m.hidden, m.dense, m.kernel_size
        ),
    }
}

#[cfg(test)]
mod tests;
