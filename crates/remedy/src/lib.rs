//! neuron-doctor's cure: diagnose a run, collect candidate remedies from the findings,
//! re-train each one under the same conditions, and judge which one cured the model.
//!
//! - [`diagnose_run`] / [`diagnose_networks`] build a [`Diagnosis`] (probe as born and as
//!   trained, history, rules).
//! - [`collect_candidates`] ranks and deduplicates the findings' remedies; [`fix`] re-trains
//!   each candidate with the same data, seed and epochs (and paired extra seeds), re-diagnoses
//!   it and [`judge`]s it: cured, improved, no-better or worse.
//! - [`revive`] recycles dead and dormant units in place (ReDo) and trains a little more.
//! - [`compare`] trains a grid of activations and initializations under the same data, budget
//!   and paired seeds, diagnoses each, and recommends one.

mod compare;
mod diagnosis;
mod fix;
mod revive;

pub use compare::{
    compare, compare_dir, grid, CompareOptions, CompareReport, Inits, Setting, SettingResult,
};
pub use diagnosis::{
    baseline_loss, diagnose_networks, diagnose_opened, diagnose_run, history_of, DataSummary,
    DiagnoseOptions, Diagnosis, LayerRow, ModelSummary, Skipped, SplitName, NEEDS_HISTORY,
    NEEDS_INITIAL_WEIGHTS,
};
pub use fix::{
    collect_candidates, fix, fix_dir, fixed_key_reason, judge, keeps_weights, recommend, Candidate,
    FixOptions, FixReport, Judged, Launch, LayerHealth, Original, Outcome, Pruned, RangeTest,
    SeedMetrics, Start, Verdict, MAX_HALVING_CANDIDATES, MAX_SLUG_BYTES,
};
/// Reports progress of the trainings: per epoch for those in this process, per task for those
/// of other processes or a cluster.
pub use nd_executor::Progress as FixObserver;
pub use nd_executor::{Executor, JobFailure, SlurmSettings, Submitted, Tally};
pub use revive::{recycle, revive, Recycled, ReviveInfo, Revived};

/// Why diagnosing or fixing failed.
#[derive(Debug, thiserror::Error)]
pub enum RemedyError {
    /// Reading or writing a run failed.
    #[error(transparent)]
    Train(#[from] nd_train::TrainError),
    /// The data could not be loaded.
    #[error(transparent)]
    Data(#[from] nd_data::DataError),
    /// A network could not be built.
    #[error(transparent)]
    Model(#[from] nd_models::ModelError),
    /// A `--try` that is not `section.key=value`.
    #[error("`{text}` is not a change: {problem}; expected section.key=value, e.g. model.activation=leaky_relu")]
    BadChange {
        /// The text given.
        text: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A change the fixer cannot make without breaking the comparison with the original.
    #[error("`{key}` cannot be changed by a candidate: {reason}")]
    Unfixable {
        /// The key.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// The executor could not run the trainings at all.
    #[error(transparent)]
    Exec(#[from] nd_executor::ExecError),
    /// A budget too small for the full runs alone.
    #[error("--budget {budget}: the full runs alone need {needed} epochs (the kept candidates on every seed, and the original's other seeds, at the spec's epochs); give at least that, or fewer --seeds or --candidates")]
    BudgetTooSmall {
        /// The budget given.
        budget: usize,
        /// What the full runs need.
        needed: usize,
    },
    /// Halving needs each round's results before the next.
    #[error("--budget runs rounds that each need the last one's results: it cannot be combined with --no-wait or --collect")]
    BudgetNotWaiting,
    /// `--collect` on a fix directory with no submission in it.
    #[error("{}: no submitted fix to collect (no jobs/slurm.json); submit one with `fix RUN --executor slurm --no-wait`", dir.display())]
    NothingSubmitted {
        /// The fix directory.
        dir: std::path::PathBuf,
    },
    /// A training of the original's seeds (the noise floor every verdict needs) failed.
    #[error("the original's re-training failed, and without it nothing can be judged: {0}")]
    Baseline(Box<nd_executor::JobFailure>),
    /// A spec change is invalid.
    #[error(transparent)]
    Spec(#[from] nd_spec::SpecError),
    /// An imported model's fix needs held-out rows to judge the remedies on.
    #[error("{data}: no held-out rows (no is_test column), and a cure is judged on held-out rows: add an is_test column (1 for the rows the model was not trained on)")]
    NoHeldOutRows {
        /// The data file.
        data: String,
    },
}

#[cfg(test)]
mod parity_tests;
