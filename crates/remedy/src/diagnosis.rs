//! A run's diagnosis: probe the network as born and as trained, read the history, apply the
//! rules, and gather it all into one serializable [`Diagnosis`].

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use nd_data::{Dataset, Split, Targets};
use nd_models::Network;
use nd_probe::{EpochPoint, Evidence, Finding, Probe, ProbeOptions, Severity};
use nd_spec::{CheckedSpec, DoctorThresholds, Task};
use nd_train::{EpochMetrics, Run, Stage};
use serde::{Deserialize, Serialize};

use crate::RemedyError;

/// Which split to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    /// The training split (default: where units die is where they were trained).
    Train,
    /// The test split.
    Test,
}

impl SplitName {
    /// The split of `data`.
    pub fn of(self, data: &Dataset) -> &Split {
        match self {
            SplitName::Train => &data.train,
            SplitName::Test => &data.test,
        }
    }
}

/// How to diagnose.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnoseOptions {
    /// The split to probe.
    pub split: SplitName,
    /// Probe limits.
    pub probe: ProbeOptions,
    /// Thresholds (from the spec's `[doctor]`, possibly overridden by flags).
    pub thresholds: Option<DoctorThresholds>,
}

impl Default for DiagnoseOptions {
    fn default() -> Self {
        Self {
            split: SplitName::Train,
            probe: ProbeOptions::default(),
            thresholds: None,
        }
    }
}

/// The model, in a few words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// `mlp` or `cnn`.
    pub kind: String,
    /// Hidden widths or conv channels.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: String,
    /// Initializer.
    pub init: String,
    /// Output activation.
    pub output_activation: String,
    /// Trainable parameters.
    pub parameters: usize,
}

/// What was probed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Dataset name.
    pub dataset: String,
    /// `train` or `test`.
    pub split: SplitName,
    /// Rows probed.
    pub samples: usize,
}

/// One row of the per-layer table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRow {
    /// `hidden.0`, ..., `output`.
    pub name: String,
    /// Activation after the layer (`none` for the output).
    pub activation: String,
    /// Units.
    pub units: usize,
    /// Dead units (relu family).
    pub dead: usize,
    /// `dead / units`.
    pub dead_fraction: f64,
    /// ReDo-dormant units (including dead ones).
    pub dormant: usize,
    /// Saturated units (sigmoid, tanh).
    pub saturated: usize,
    /// `saturated / units`.
    pub saturated_fraction: f64,
    /// Dead fraction at initialization, when known.
    pub dead_fraction_at_init: Option<f64>,
    /// L2 norm of the weight gradient on the probe batch.
    pub grad_norm: f64,
    /// Weight std.
    pub weight_std: f64,
    /// What He / Glorot / LeCun would give.
    pub expected_weight_std: f64,
}

/// A run's diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The run directory (or a label for in-memory networks).
    pub run: String,
    /// The model.
    pub model: ModelSummary,
    /// The data probed.
    pub data: DataSummary,
    /// Per layer.
    pub layers: Vec<LayerRow>,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// No warning or error.
    pub healthy: bool,
    /// First-to-last gradient RMS ratio.
    pub gradient_ratio: Option<f64>,
    /// The run's final metrics, when known.
    pub metrics: Option<EpochMetrics>,
    /// The full probe of the trained network.
    pub probe: Probe,
    /// The full probe of the network at initialization, when known.
    pub initial_probe: Option<Probe>,
    /// Checks that could not run, and why (an imported model has no initial weights and no
    /// history): said rather than guessed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

/// A check that did not run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// The finding code.
    pub code: String,
    /// Why it could not run.
    pub reason: String,
}

/// The checks that need the network as initialized.
pub const NEEDS_INITIAL_WEIGHTS: [&str; 2] = ["born-dead", "init-scale-mismatch"];
/// The checks that need a training history of at least two epochs.
pub const NEEDS_HISTORY: [&str; 1] = ["stalled-training"];

impl Diagnosis {
    /// The most severe finding's severity.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Findings at or above `severity`.
    pub fn at_least(&self, severity: Severity) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.severity >= severity)
    }

    /// The dead fraction over all units that can die.
    pub fn dead_fraction(&self) -> f64 {
        self.probe.dead_fraction()
    }
}

/// Opens a run directory and diagnoses it.
pub fn diagnose_run(
    dir: &Path,
    options: &DiagnoseOptions,
    device: &Device,
) -> Result<Diagnosis, RemedyError> {
    let run = Run::open(dir)?;
    let data = nd_data::load(&run.spec.data, Path::new("."))?;
    diagnose_opened(&run, &data, options, device)
}

/// Diagnoses an opened run on its loaded data. An imported run has no initial weights and no
/// history: its own measured metrics stand in for the last epoch.
pub fn diagnose_opened(
    run: &Run,
    data: &Dataset,
    options: &DiagnoseOptions,
    device: &Device,
) -> Result<Diagnosis, RemedyError> {
    let initial = if run.is_imported() {
        None
    } else {
        Some(run.network(Stage::Initial, data, device)?)
    };
    let trained = run.network(Stage::Final, data, device)?;
    let history = history_of(run);
    Ok(diagnose_networks(
        &run.dir.display().to_string(),
        &run.spec,
        data,
        initial.as_ref(),
        &trained,
        &history,
        options,
        device,
    ))
}

/// A run's history; for an imported run, its measured metrics as the one point known.
pub fn history_of(run: &Run) -> Vec<EpochMetrics> {
    if run.is_imported() {
        run.summary.final_metrics.iter().cloned().collect()
    } else {
        run.metrics.clone()
    }
}

/// Diagnoses in-memory networks (as born, when known, and as trained) with their history.
/// Without the network as born, or with fewer than two epochs of history, the checks that
/// need them are listed in [`Diagnosis::skipped`] with the reason.
#[allow(clippy::too_many_arguments)]
pub fn diagnose_networks(
    label: &str,
    spec: &CheckedSpec,
    data: &Dataset,
    initial: Option<&Network>,
    trained: &Network,
    history: &[EpochMetrics],
    options: &DiagnoseOptions,
    device: &Device,
) -> Diagnosis {
    let split = options.split.of(data);
    let probe = nd_probe::probe(trained, split, device, &options.probe);
    let initial_probe = initial.map(|n| nd_probe::probe(n, split, device, &options.probe));
    let imported = spec.source.is_some();
    let mut skipped = Vec::new();
    if initial_probe.is_none() {
        let why = if imported {
            "an imported model's weights at initialization are unknown"
        } else {
            "the network as initialized was not given"
        };
        skipped.extend(NEEDS_INITIAL_WEIGHTS.iter().map(|code| Skipped {
            code: code.to_string(),
            reason: why.into(),
        }));
    }
    if history.len() < 2 {
        let why = if imported {
            "an imported model has no training history"
        } else {
            "it needs at least two epochs of history"
        };
        skipped.extend(NEEDS_HISTORY.iter().map(|code| Skipped {
            code: code.to_string(),
            reason: why.into(),
        }));
    }
    let thresholds = options
        .thresholds
        .clone()
        .unwrap_or_else(|| spec.doctor.clone());
    let points: Vec<EpochPoint> = history
        .iter()
        .map(|m| EpochPoint {
            train_loss: m.train_loss,
            train_accuracy: m.train_accuracy,
            test_accuracy: m.test_accuracy,
        })
        .collect();
    let targets: Vec<f32> = match &data.train.targets {
        Targets::Values(v) => v.clone(),
        Targets::Classes(_) => Vec::new(),
    };
    let evidence = Evidence {
        spec,
        task: spec.task(),
        n_classes: data.n_classes,
        probe: &probe,
        initial: initial_probe.as_ref(),
        history: &points,
        baseline_loss: baseline_loss(spec.task(), data),
        targets: &targets,
    };
    let findings = nd_probe::diagnose(&evidence, &thresholds);
    let healthy = nd_probe::is_healthy(&findings);
    let layers = layer_rows(
        &probe,
        initial_probe.as_ref(),
        thresholds.dormant_tau,
        &spec.model.output_activation.to_string(),
    );
    Diagnosis {
        run: label.to_string(),
        model: ModelSummary {
            kind: spec.model.kind.to_string(),
            hidden: spec.model.hidden.clone(),
            activation: spec.model.activation.to_string(),
            init: spec.model.init.to_string(),
            output_activation: spec.model.output_activation.to_string(),
            parameters: trained.num_params(),
        },
        data: DataSummary {
            dataset: data.name.clone(),
            split: options.split,
            samples: probe.samples,
        },
        layers,
        findings,
        healthy,
        gradient_ratio: probe
            .gradient_ratio
            .is_finite()
            .then_some(probe.gradient_ratio),
        metrics: history.last().cloned(),
        probe,
        initial_probe,
        skipped,
    }
}

/// The loss of the best constant prediction on the train split: ln(classes) for
/// cross-entropy (uniform prediction), the targets' variance for MSE (predicting the mean).
pub fn baseline_loss(task: Task, data: &Dataset) -> f64 {
    match (&data.train.targets, task) {
        (Targets::Values(v), _) if !v.is_empty() => {
            let n = v.len() as f64;
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
            v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n
        }
        _ => (data.n_classes.max(2) as f64).ln(),
    }
}

/// One row per layer; a layer without an activation site (the output layer) shows the spec's
/// output activation.
fn layer_rows(
    probe: &Probe,
    initial: Option<&Probe>,
    tau: f64,
    output_activation: &str,
) -> Vec<LayerRow> {
    probe
        .layers
        .iter()
        .map(|layer| {
            let site = probe.site(&layer.name);
            let dead = site.map(|s| s.dead_units().len()).unwrap_or(0);
            let saturated = site.map(|s| s.saturated_units().len()).unwrap_or(0);
            LayerRow {
                name: layer.name.clone(),
                activation: site
                    .map(|s| s.activation.to_string())
                    .unwrap_or_else(|| output_activation.to_string()),
                units: layer.units,
                dead,
                dead_fraction: dead as f64 / layer.units.max(1) as f64,
                dormant: site.map(|s| s.dormant_units(tau).len()).unwrap_or(0),
                saturated,
                saturated_fraction: saturated as f64 / layer.units.max(1) as f64,
                dead_fraction_at_init: initial
                    .and_then(|p| p.site(&layer.name))
                    .map(|s| s.dead_fraction()),
                grad_norm: layer.grad_norm,
                weight_std: layer.weight_std,
                expected_weight_std: layer.expected_weight_std,
            }
        })
        .collect()
}
