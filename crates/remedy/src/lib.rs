//! neuron-doctor's cure: diagnose a run, collect candidate remedies from the findings,
//! re-train each one under the same conditions, and judge which one cured the model.
//!
//! - [`diagnose_run`] / [`diagnose_networks`] build a [`Diagnosis`] (probe as born and as
//!   trained, history, rules).

mod diagnosis;

pub use diagnosis::{
    DataSummary, DiagnoseOptions, Diagnosis, LayerRow, ModelSummary, SplitName, baseline_loss, diagnose_networks,
    diagnose_run,
};

/// Why diagnosing or fixing failed.
#[derive(Debug, thiserror::Error)]
pub enum RemedyError {
    /// Reading or writing a run failed.
    #[error(transparent)]
    Train(#[from] nd_train::TrainError),
    /// The data could not be loaded.
    #[error(transparent)]
    Data(#[from] nd_data::DataError),
    /// A spec change is invalid.
    #[error(transparent)]
    Spec(#[from] nd_spec::SpecError),
}
