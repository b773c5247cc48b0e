//! What a spec asks of memory, estimated before anything is allocated, so that a valid-looking
//! spec that cannot fit (`hidden = [65536, 65536]`) gets a one-line error naming its key rather
//! than an abort inside the allocator.

use crate::{ModelKind, ModelSpec, SpecError};

/// The most memory a spec may ask for: 8 GiB by the estimate in [`Footprint::bytes`]. A third
/// of the 24 GiB machines the project is built on, and far beyond what the doctor's datasets
/// need (the widest shipped spec asks for under 100 MiB).
pub const MEMORY_CEILING_BYTES: u64 = 8 << 30;

/// The most rows a synthetic dataset may generate (`data.samples`).
pub const MAX_SAMPLES: usize = 1_000_000;

/// The longest run name (`name`), in bytes: it becomes a directory name, with room for the
/// `-fixed` suffix of a recommended spec and for the temporary names beside it.
pub const MAX_NAME_BYTES: usize = 180;

/// Bytes per value: every tensor is f32.
const F32: u64 = 4;
/// Copies of the parameters alive while training: the weights, their gradients, Adam's two
/// moments, the initial weights kept for the run and one spare for the autodiff graph.
const PARAMETER_COPIES: u64 = 6;
/// Copies of each activation alive in a training step: pre-activation, output, gradient.
const ACTIVATION_COPIES: u64 = 3;
/// Rows in one pass: the larger of the batch and the evaluation chunk (512 rows).
const EVAL_ROWS: u64 = 512;

/// A spec's size for one input shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Parameters of the hidden layers (`model.hidden`: mlp widths or conv channels).
    pub hidden_parameters: u64,
    /// Parameters of a cnn's dense layers (`model.dense`) and of the output layer.
    pub dense_parameters: u64,
    /// Activation values per row, every layer together.
    pub activations_per_row: u64,
    /// Rows in one pass (batch or evaluation chunk).
    pub rows_per_pass: u64,
}

impl Footprint {
    /// Trainable parameters.
    pub fn parameters(&self) -> u64 {
        self.hidden_parameters.saturating_add(self.dense_parameters)
    }

    /// Bytes the parameters take while training.
    pub fn parameter_bytes(&self) -> u64 {
        self.parameters().saturating_mul(F32 * PARAMETER_COPIES)
    }

    /// Bytes the activations of one pass take.
    pub fn activation_bytes(&self) -> u64 {
        self.activations_per_row
            .saturating_mul(self.rows_per_pass)
            .saturating_mul(F32 * ACTIVATION_COPIES)
    }

    /// The estimate compared with [`MEMORY_CEILING_BYTES`].
    pub fn bytes(&self) -> u64 {
        self.parameter_bytes()
            .saturating_add(self.activation_bytes())
    }
}

impl ModelSpec {
    /// The footprint for `inputs` features per row (an `image` of `[channels, height, width]`
    /// for a cnn), `outputs` outputs and `batch_size` rows per step. Follows the architecture
    /// `nd-models` builds: same-padded convolutions, each followed by a 2x2 pool while the map
    /// is at least 2x2, then the dense layers and the output layer.
    pub fn footprint(
        &self,
        inputs: usize,
        image: Option<[usize; 3]>,
        outputs: usize,
        batch_size: usize,
    ) -> Footprint {
        let mul = |a: u64, b: u64| a.saturating_mul(b);
        let add = |a: u64, b: u64| a.saturating_add(b);
        let mut hidden_parameters = 0u64;
        let mut dense_parameters = 0u64;
        let mut activations = 0u64;
        let (dense, mut flat) = match self.kind {
            ModelKind::Mlp => {
                let mut fan_in = inputs as u64;
                for &w in &self.hidden {
                    hidden_parameters =
                        add(hidden_parameters, add(mul(fan_in, w as u64), w as u64));
                    activations = add(activations, w as u64);
                    fan_in = w as u64;
                }
                (&[][..], fan_in)
            }
            ModelKind::Cnn => {
                let [c, h, w] = image.unwrap_or([1, 1, 1]);
                let (mut channels, mut height, mut width) = (c as u64, h as u64, w as u64);
                let k = self.kernel_size as u64;
                for &out in &self.hidden {
                    let out = out as u64;
                    hidden_parameters =
                        add(hidden_parameters, add(mul(mul(channels, out), k * k), out));
                    activations = add(activations, mul(out, mul(height, width)));
                    channels = out;
                    if height >= 2 && width >= 2 {
                        height /= 2;
                        width /= 2;
                    }
                }
                (&self.dense[..], mul(channels, mul(height, width)))
            }
        };
        for &w in dense.iter().chain([&outputs]) {
            dense_parameters = add(dense_parameters, add(mul(flat, w as u64), w as u64));
            activations = add(activations, w as u64);
            flat = w as u64;
        }
        Footprint {
            hidden_parameters,
            dense_parameters,
            activations_per_row: activations,
            rows_per_pass: (batch_size as u64).max(EVAL_ROWS),
        }
    }

    /// Refuses a footprint over [`MEMORY_CEILING_BYTES`], naming the key that asks for most of
    /// it: `model.hidden` or `model.dense` for parameters, `train.batch_size` for activations.
    pub fn check_footprint(
        &self,
        footprint: &Footprint,
        batch_size: usize,
    ) -> Result<(), SpecError> {
        let need = footprint.bytes();
        if need <= MEMORY_CEILING_BYTES {
            return Ok(());
        }
        let (key, value) = if footprint.parameter_bytes() >= footprint.activation_bytes() {
            if footprint.dense_parameters > footprint.hidden_parameters {
                ("model.dense", format!("{:?}", self.dense))
            } else {
                ("model.hidden", format!("{:?}", self.hidden))
            }
        } else if self.kind == ModelKind::Cnn && batch_size as u64 <= EVAL_ROWS {
            ("model.hidden", format!("{:?}", self.hidden))
        } else {
            ("train.batch_size", batch_size.to_string())
        };
        Err(SpecError::invalid(
            key,
            value,
            &format!(
                "a model that fits in memory: this one needs about {} ({:.3e} parameters, {:.3e} activation values per row), over the {} ceiling",
                gib(need),
                footprint.parameters() as f64,
                footprint.activations_per_row as f64,
                gib(MEMORY_CEILING_BYTES)
            ),
        ))
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Spec;

    fn spec(model: &str) -> Result<crate::CheckedSpec, SpecError> {
        Spec::from_toml_str(
            &format!("[data]\ndataset = \"digits\"\n[model]\n{model}"),
            "t",
        )
        .unwrap()
        .check()
    }

    #[test]
    fn counts_parameters_as_the_network_has_them() {
        // digits: 64 inputs, 10 classes; 64*32+32 + 32*10+10.
        let s = spec("hidden = [32]").unwrap();
        let f = s.model.footprint(64, None, 10, 64);
        assert_eq!(f.parameters(), 64 * 32 + 32 + 32 * 10 + 10);
        assert_eq!(f.activations_per_row, 32 + 10);
        // A cnn on 1x8x8 with 3x3 kernels: conv 1->4 (36+4), pooled to 4x4, dense 64->10.
        let s = spec("kind = \"cnn\"\nhidden = [4]").unwrap();
        let f = s.model.footprint(64, Some([1, 8, 8]), 10, 64);
        assert_eq!(f.hidden_parameters, 4 * 9 + 4);
        assert_eq!(f.dense_parameters, 4 * 4 * 4 * 10 + 10);
        assert_eq!(f.activations_per_row, 4 * 64 + 10);
    }

    #[test]
    fn a_spec_too_large_for_memory_names_its_key() {
        let err = spec("hidden = [65536, 65536]").unwrap_err().to_string();
        assert!(err.contains("model.hidden"), "{err}");
        assert!(err.contains("GiB"), "{err}");
        let err = Spec::from_toml_str(
            "[data]\ndataset = \"digits\"\n[model]\nhidden = [4096, 4096]\n[train]\nbatch_size = 1048576\n",
            "t",
        )
        .unwrap()
        .check()
        .unwrap_err()
        .to_string();
        assert!(err.contains("train.batch_size"), "{err}");
        // Wide but within the ceiling.
        spec("hidden = [4096, 4096]").unwrap();
    }
}
