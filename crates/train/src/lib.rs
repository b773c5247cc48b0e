//! neuron-doctor's trainer: the training loop on any burn device, per-epoch metrics, and the
//! run directories that the doctor reads back.
//!
//! - [`train`] initializes a network from a spec with the spec's seed and trains it;
//!   [`fit`] continues training an existing network (used to verify revived units).
//! - [`evaluate`] measures a network on a split in inference mode.
//! - [`PendingRun`] writes a run atomically; [`Run`] reads one back.
//! - [`lr_find`] runs the learning-rate range test (Smith 2017) and suggests a rate.
//! - [`device`] picks the burn device for a spec's backend: ndarray and flex always, wgpu when built
//!   with the `wgpu` feature ([`describe`] names the adapter).
//!
//! Nothing here assumes the ndarray backend: tensors are created on the device passed in.
//! Initial weights are drawn on the CPU ([`init_network_with_seed`]) and moved to the device,
//! so a seed gives the same starting network on every backend.

mod device;
mod lr_find;
mod run;
mod training;

pub use device::{compiled, describe, device, inference_device};
pub use lr_find::{lr_find, LrCurve, LrFindOptions, LrPoint};
pub use run::{
    check_replaceable, enclosing_run, remove_partial_runs, PendingRun, Run, Stage, Summary,
    CONFIG_FILE, FINAL_WEIGHTS, FIXED_SPEC_FILE, HEALTH_FILE, INITIAL_WEIGHTS, JOBS_DIR,
    MAX_RUN_NAME_BYTES, METRICS_FILE, RUN_DIR_FILES, SUMMARY_FILE,
};
pub use training::{
    evaluate, fit, init_network, init_network_with_seed, measure, model_shape, train, train_from,
    EpochMetrics, Evaluation, Observer, Quiet, Trained, DEFAULT_HEALTH_EVERY, EVAL_CHUNK,
};

use std::path::{Path, PathBuf};

/// Why training or a run directory failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The spec is invalid.
    #[error(transparent)]
    Spec(#[from] nd_spec::SpecError),
    /// The data could not be loaded.
    #[error(transparent)]
    Data(#[from] nd_data::DataError),
    /// The network could not be built or its weights loaded.
    #[error(transparent)]
    Model(#[from] nd_models::ModelError),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The output run exists and `--force` was not given.
    #[error("{}: run already exists (use --force to replace it)", .0.display())]
    RunExists(PathBuf),
    /// `--force` was asked to replace something that is not a neuron-doctor run.
    #[error("{}: not a neuron-doctor run or fix directory ({problem}); --force replaces only those, so move it away or choose another path", path.display())]
    NotReplaceable {
        /// What would have been replaced.
        path: PathBuf,
        /// Why it is not a run.
        problem: String,
    },
    /// A run cannot be written at this path.
    #[error("{}: cannot write a run here: {problem}", path.display())]
    BadRunPath {
        /// The run directory asked for.
        path: PathBuf,
        /// Why not.
        problem: String,
    },
    /// A directory is not a complete run.
    #[error("{}: not a neuron-doctor run: {problem}", dir.display())]
    NotARun {
        /// The directory.
        dir: PathBuf,
        /// What is missing.
        problem: String,
    },
    /// A run file is unreadable.
    #[error("{}: corrupt: {problem}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The backend cannot be used.
    #[error("backend {backend}: {problem}")]
    Backend {
        /// The backend asked for.
        backend: String,
        /// Why it cannot be used.
        problem: String,
    },
}

impl TrainError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod parity_tests;
