//! Run directories: what `train` writes and what `diagnose` and `fix` read back.
//!
//! A run holds `config.toml` (the resolved spec), `initial.bpk` and `final.bpk` (burnpack
//! weights as born and as trained), `metrics.jsonl` (one object per epoch) and `summary.json`.
//! It is built under a hidden temporary name beside its final place and renamed at the end, so
//! a run that looks complete is complete; an existing run is replaced only with `force`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use nd_data::Dataset;
use nd_models::Network;
use nd_probe::EpochHealth;
use nd_spec::{CheckedSpec, Spec};
use serde::{Deserialize, Serialize};

use crate::training::{model_shape, EpochMetrics, Trained};
use crate::TrainError;

/// The resolved spec.
pub const CONFIG_FILE: &str = "config.toml";
/// Weights at initialization.
pub const INITIAL_WEIGHTS: &str = "initial.bpk";
/// Weights after training.
pub const FINAL_WEIGHTS: &str = "final.bpk";
/// One JSON object per epoch.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Final numbers.
pub const SUMMARY_FILE: &str = "summary.json";
/// Live health statistics, one JSON object per epoch (optional when reading).
pub const HEALTH_FILE: &str = "health.jsonl";

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The run's name.
    pub name: String,
    /// The dataset.
    pub dataset: String,
    /// `classification` or `regression`.
    pub task: String,
    /// `ndarray` or `wgpu`.
    pub backend: String,
    /// What the backend computed on: "CPU (ndarray)", or the wgpu adapter, driver and API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The seed used.
    pub seed: u64,
    /// Epochs asked for.
    pub epochs_planned: usize,
    /// Epochs finished.
    pub epochs_run: usize,
    /// The last epoch's metrics, if any epoch finished.
    pub final_metrics: Option<EpochMetrics>,
    /// Trainable parameters.
    pub parameters: usize,
    /// Training wall time.
    pub seconds: f64,
    /// Why training ended early, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<String>,
    /// The neuron-doctor version that wrote the run.
    pub version: String,
}

/// Temporary directories of runs being written in this process, so that an interrupt handler
/// can remove them ([`remove_partial_runs`]).
static PARTIAL_RUNS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes the temporary directories of every run still being written and returns their
/// final names. For an interrupt handler: whatever was being written is gone, and no run that
/// looks complete is left half-written.
pub fn remove_partial_runs() -> Vec<PathBuf> {
    let mut partial = PARTIAL_RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let removed: Vec<PathBuf> = partial.drain(..).collect();
    for dir in &removed {
        let _ = fs::remove_dir_all(dir);
    }
    removed
}

fn forget_partial(dir: &Path) {
    let mut partial = PARTIAL_RUNS.lock().unwrap_or_else(|e| e.into_inner());
    partial.retain(|d| d != dir);
}

/// A run directory being written: a hidden temporary directory, removed on drop unless
/// committed.
#[derive(Debug)]
pub struct PendingRun {
    target: PathBuf,
    temp: PathBuf,
    force: bool,
    committed: bool,
}

impl PendingRun {
    /// Checks that `target` may be written (absent, or `force`), and creates the temporary
    /// directory beside it.
    pub fn create(target: &Path, force: bool) -> Result<PendingRun, TrainError> {
        if target.exists() && !force {
            return Err(TrainError::RunExists(target.to_path_buf()));
        }
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(|e| TrainError::io(&parent, e))?;
        let name = target
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| TrainError::io(target, std::io::Error::other("not a directory name")))?;
        let temp = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if temp.exists() {
            fs::remove_dir_all(&temp).map_err(|e| TrainError::io(&temp, e))?;
        }
        fs::create_dir(&temp).map_err(|e| TrainError::io(&temp, e))?;
        PARTIAL_RUNS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(temp.clone());
        Ok(PendingRun {
            target: target.to_path_buf(),
            temp,
            force,
            committed: false,
        })
    }

    /// The temporary directory, to write extra files into before committing.
    pub fn dir(&self) -> &Path {
        &self.temp
    }

    /// Where the run will be once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Writes a trained run's files into the temporary directory.
    pub fn write(
        &self,
        spec: &CheckedSpec,
        data: &Dataset,
        trained: &Trained,
    ) -> Result<(), TrainError> {
        write_file(&self.temp.join(CONFIG_FILE), spec.to_toml().as_bytes())?;
        save_weights(&trained.initial, &self.temp.join(INITIAL_WEIGHTS))?;
        save_weights(&trained.network, &self.temp.join(FINAL_WEIGHTS))?;
        let lines = jsonl(&trained.metrics);
        write_file(&self.temp.join(METRICS_FILE), lines.as_bytes())?;
        write_file(
            &self.temp.join(HEALTH_FILE),
            jsonl(&trained.health).as_bytes(),
        )?;
        let summary = Summary {
            name: spec.name.clone(),
            dataset: data.name.clone(),
            task: spec.task().to_string(),
            backend: spec.train.backend.to_string(),
            device: crate::describe(spec.train.backend).ok(),
            seed: spec.train.seed,
            epochs_planned: spec.train.epochs,
            epochs_run: trained.metrics.len(),
            final_metrics: trained.metrics.last().cloned(),
            parameters: trained.network.num_params(),
            seconds: trained.seconds,
            stopped_early: trained.stopped_early.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let json = serde_json::to_string_pretty(&summary).expect("summary serializes");
        write_file(&self.temp.join(SUMMARY_FILE), json.as_bytes())
    }

    /// Moves the finished run into place, replacing an old one only when forced.
    pub fn commit(mut self) -> Result<PathBuf, TrainError> {
        if self.target.exists() {
            if !self.force {
                return Err(TrainError::RunExists(self.target.clone()));
            }
            let old = PathBuf::from(format!("{}.old", self.temp.display()));
            fs::rename(&self.target, &old).map_err(|e| TrainError::io(&self.target, e))?;
            fs::rename(&self.temp, &self.target).map_err(|e| TrainError::io(&self.target, e))?;
            fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
        } else {
            fs::rename(&self.temp, &self.target).map_err(|e| TrainError::io(&self.target, e))?;
        }
        self.committed = true;
        forget_partial(&self.temp);
        Ok(self.target.clone())
    }
}

impl Drop for PendingRun {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.temp);
            forget_partial(&self.temp);
        }
    }
}

fn jsonl<T: Serialize>(items: &[T]) -> String {
    let mut lines = String::new();
    for item in items {
        lines.push_str(&serde_json::to_string(item).expect("run records serialize"));
        lines.push('\n');
    }
    lines
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let mut file = fs::File::create(path).map_err(|e| TrainError::io(path, e))?;
    file.write_all(bytes).map_err(|e| TrainError::io(path, e))?;
    file.sync_all().map_err(|e| TrainError::io(path, e))
}

fn save_weights(network: &Network, path: &Path) -> Result<(), TrainError> {
    network
        .clone()
        .save_file(path)
        .map_err(|e| TrainError::io(path, std::io::Error::other(e.to_string())))
}

/// Which weights of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// As initialized.
    Initial,
    /// As trained.
    Final,
}

impl Stage {
    /// The weights file's name.
    pub fn file(self) -> &'static str {
        match self {
            Stage::Initial => INITIAL_WEIGHTS,
            Stage::Final => FINAL_WEIGHTS,
        }
    }
}

/// A finished run, read back.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run directory.
    pub dir: PathBuf,
    /// Its resolved spec.
    pub spec: CheckedSpec,
    /// Its per-epoch metrics.
    pub metrics: Vec<EpochMetrics>,
    /// Its summary.
    pub summary: Summary,
    /// Its live health statistics (empty for runs written without them).
    pub health: Vec<EpochHealth>,
}

impl Run {
    /// Opens a run directory, checking that every file is present and readable.
    pub fn open(dir: &Path) -> Result<Run, TrainError> {
        if !dir.is_dir() {
            return Err(TrainError::NotARun {
                dir: dir.to_path_buf(),
                problem: "no such run directory".into(),
            });
        }
        for file in [
            CONFIG_FILE,
            INITIAL_WEIGHTS,
            FINAL_WEIGHTS,
            METRICS_FILE,
            SUMMARY_FILE,
        ] {
            if !dir.join(file).is_file() {
                return Err(TrainError::NotARun {
                    dir: dir.to_path_buf(),
                    problem: format!("{file} is missing"),
                });
            }
        }
        let spec = Spec::from_file(&dir.join(CONFIG_FILE))?
            .check()
            .map_err(|e| e.in_file(&dir.join(CONFIG_FILE)))?;
        let metrics_path = dir.join(METRICS_FILE);
        let text =
            fs::read_to_string(&metrics_path).map_err(|e| TrainError::io(&metrics_path, e))?;
        let mut metrics = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let m: EpochMetrics = serde_json::from_str(line).map_err(|e| TrainError::Corrupt {
                path: metrics_path.clone(),
                problem: format!("line {}: {e}", i + 1),
            })?;
            metrics.push(m);
        }
        let summary_path = dir.join(SUMMARY_FILE);
        let text =
            fs::read_to_string(&summary_path).map_err(|e| TrainError::io(&summary_path, e))?;
        let summary: Summary = serde_json::from_str(&text).map_err(|e| TrainError::Corrupt {
            path: summary_path.clone(),
            problem: e.to_string(),
        })?;
        let health_path = dir.join(HEALTH_FILE);
        let health = match fs::read_to_string(&health_path) {
            Ok(text) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(i, line)| {
                    serde_json::from_str(line).map_err(|e| TrainError::Corrupt {
                        path: health_path.clone(),
                        problem: format!("line {}: {e}", i + 1),
                    })
                })
                .collect::<Result<Vec<EpochHealth>, _>>()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(TrainError::io(&health_path, e)),
        };
        Ok(Run {
            dir: dir.to_path_buf(),
            spec,
            metrics,
            summary,
            health,
        })
    }

    /// Loads the run's weights at `stage` into a network built from its spec.
    pub fn network(
        &self,
        stage: Stage,
        data: &Dataset,
        device: &Device,
    ) -> Result<Network, TrainError> {
        let fresh = Network::new(&self.spec, &model_shape(data), device)?;
        Ok(fresh.load_weights(&self.dir.join(stage.file()))?)
    }
}
