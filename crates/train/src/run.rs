//! Run directories: what `train` writes and what `diagnose` and `fix` read back.
//!
//! A run holds `config.toml` (the resolved spec), `initial.bpk` and `final.bpk` (burnpack
//! weights as born and as trained), `metrics.jsonl` (one object per epoch) and `summary.json`.
//! It is built under a hidden temporary name beside its final place and renamed at the end, so
//! a run that looks complete is complete; an existing run is replaced only with `force`.
//!
//! A run written by `import` (its spec has a `[source]`) holds only `config.toml`,
//! `final.bpk` (the imported weights) and `summary.json` (the imported model's own metrics).

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
/// What a fix directory holds beside its candidate runs: the recommended spec.
pub const FIXED_SPEC_FILE: &str = "fixed.toml";

/// Every file a run directory may hold. `--force` replaces a directory only when it holds
/// nothing else, so that no file a user put there is lost.
pub const RUN_DIR_FILES: [&str; 6] = [
    CONFIG_FILE,
    INITIAL_WEIGHTS,
    FINAL_WEIGHTS,
    METRICS_FILE,
    SUMMARY_FILE,
    HEALTH_FILE,
];

/// The directory of a fix or compare directory where an executor that trains in other
/// processes keeps its job files: each job's spec and start weights, the Slurm script, each
/// task's log and exit code.
pub const JOBS_DIR: &str = "jobs";

/// The longest run directory name, in bytes: the temporary name beside it
/// (`.NAME.partial-PID.old`) and a fix directory's (`NAME.fix`) must still fit the 255 bytes
/// file systems allow for one name.
pub const MAX_RUN_NAME_BYTES: usize = 200;

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
    /// SHA-256 of each weights file (`initial.bpk`, `final.bpk`), as hex: a run whose weights
    /// were replaced or damaged after training is refused rather than diagnosed under the old
    /// summary. Absent in runs written before checksums were recorded.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sha256: std::collections::BTreeMap<String, String>,
    /// The neuron-doctor version that wrote the run.
    pub version: String,
}

impl Summary {
    /// What a run of `spec` on `data` with `network` says before anything is trained: no epoch
    /// run, no metrics, no checksums yet.
    fn of(spec: &CheckedSpec, data: &Dataset, network: &Network) -> Summary {
        Summary {
            name: spec.name.clone(),
            dataset: data.name.clone(),
            task: spec.task().to_string(),
            backend: spec.train.backend.to_string(),
            device: crate::describe(spec.train.backend).ok(),
            seed: spec.train.seed,
            epochs_planned: spec.train.epochs,
            epochs_run: 0,
            final_metrics: None,
            parameters: network.num_params(),
            seconds: 0.0,
            stopped_early: None,
            sha256: std::collections::BTreeMap::new(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
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
    /// Checks that `target` may be written (absent, or `force` over a neuron-doctor run or fix
    /// directory, see [`check_replaceable`]), and creates the temporary directory beside it.
    pub fn create(target: &Path, force: bool) -> Result<PendingRun, TrainError> {
        let name =
            target
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| TrainError::BadRunPath {
                    path: target.to_path_buf(),
                    problem: "does not end in a directory name".into(),
                })?;
        if name.len() > MAX_RUN_NAME_BYTES {
            return Err(TrainError::BadRunPath {
                path: target.to_path_buf(),
                problem: format!(
                    "the directory name is {} bytes, at most {MAX_RUN_NAME_BYTES} fit beside its temporary name",
                    name.len()
                ),
            });
        }
        if fs::symlink_metadata(target).is_ok() {
            check_replaceable(target)?;
            if !force {
                return Err(TrainError::RunExists(target.to_path_buf()));
            }
        }
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(|e| TrainError::io(&parent, e))?;
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
        let mut sha256 = std::collections::BTreeMap::new();
        for (network, file) in [
            (&trained.initial, INITIAL_WEIGHTS),
            (&trained.network, FINAL_WEIGHTS),
        ] {
            let path = self.temp.join(file);
            save_weights(network, &path)?;
            sha256.insert(file.to_string(), file_sha256(&path)?);
        }
        let lines = jsonl(&trained.metrics);
        write_file(&self.temp.join(METRICS_FILE), lines.as_bytes())?;
        write_file(
            &self.temp.join(HEALTH_FILE),
            jsonl(&trained.health).as_bytes(),
        )?;
        let summary = Summary {
            epochs_run: trained.metrics.len(),
            final_metrics: trained.metrics.last().cloned(),
            seconds: trained.seconds,
            stopped_early: trained.stopped_early.clone(),
            sha256,
            ..Summary::of(spec, data, &trained.network)
        };
        let json = serde_json::to_string_pretty(&summary).expect("summary serializes");
        write_file(&self.temp.join(SUMMARY_FILE), json.as_bytes())
    }

    /// Writes an imported model's run: `config.toml` (with its `[source]`), `final.bpk` and a
    /// `summary.json` whose final metrics are the imported model's own, measured on the data.
    /// There is no `initial.bpk` and no history: the recipe that made the weights is unknown.
    pub fn write_imported(
        &self,
        spec: &CheckedSpec,
        data: &Dataset,
        network: &Network,
        measured: &EpochMetrics,
    ) -> Result<(), TrainError> {
        write_file(&self.temp.join(CONFIG_FILE), spec.to_toml().as_bytes())?;
        let path = self.temp.join(FINAL_WEIGHTS);
        save_weights(network, &path)?;
        let mut sha256 = std::collections::BTreeMap::new();
        sha256.insert(FINAL_WEIGHTS.to_string(), file_sha256(&path)?);
        let summary = Summary {
            epochs_planned: 0,
            final_metrics: Some(measured.clone()),
            sha256,
            ..Summary::of(spec, data, network)
        };
        let json = serde_json::to_string_pretty(&summary).expect("summary serializes");
        write_file(&self.temp.join(SUMMARY_FILE), json.as_bytes())
    }

    /// Moves the finished run into place, replacing an old one only when forced, and only a
    /// neuron-doctor run or fix directory (checked again: something may have appeared meanwhile).
    pub fn commit(mut self) -> Result<PathBuf, TrainError> {
        if fs::symlink_metadata(&self.target).is_ok() {
            check_replaceable(&self.target)?;
            if !self.force {
                return Err(TrainError::RunExists(self.target.clone()));
            }
            let old = PathBuf::from(format!("{}.old", self.temp.display()));
            fs::rename(&self.target, &old).map_err(|e| TrainError::io(&self.target, e))?;
            if let Err(e) = fs::rename(&self.temp, &self.target) {
                // Put the old run back: nothing is lost when the new one cannot take its place.
                let _ = fs::rename(&old, &self.target);
                return Err(TrainError::io(&self.target, e));
            }
            fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
        } else {
            fs::rename(&self.temp, &self.target).map_err(|e| TrainError::io(&self.target, e))?;
        }
        self.committed = true;
        forget_partial(&self.temp);
        Ok(self.target.clone())
    }
}

/// Checks that an existing `path` is something `--force` may replace: a directory that holds
/// only a run's files ([`RUN_DIR_FILES`]), a fix directory (candidate runs and
/// [`FIXED_SPEC_FILE`]), or nothing. Anything else (a plain file, a link, a directory with
/// other files) is refused with the first thing that would have been lost.
pub fn check_replaceable(path: &Path) -> Result<(), TrainError> {
    let refuse = |problem: String| TrainError::NotReplaceable {
        path: path.to_path_buf(),
        problem,
    };
    let meta = fs::symlink_metadata(path).map_err(|e| TrainError::io(path, e))?;
    if meta.file_type().is_symlink() {
        return Err(refuse("is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(refuse("is a file".into()));
    }
    let entries = dir_entries(path)?;
    let is_run = entries.iter().any(|(n, dir)| n == SUMMARY_FILE && !dir);
    for (name, is_dir) in &entries {
        let known = if is_run {
            !is_dir && RUN_DIR_FILES.contains(&name.as_str())
        } else if *is_dir && name == JOBS_DIR {
            // The executor's job files: specs, start weights, scripts, logs, exit codes; those
            // of successive halving's rounds in `round-N/`.
            let jobs = path.join(name);
            let mut ours = true;
            for (sub, d) in dir_entries(&jobs)? {
                ours &= if d {
                    sub.starts_with("round-")
                        && dir_entries(&jobs.join(&sub))?
                            .iter()
                            .all(|(n, d)| !d && is_job_file(n))
                } else {
                    is_job_file(&sub)
                };
            }
            ours
        } else if *is_dir {
            // A fix directory's candidate: itself a run, with nothing else in it.
            let sub = path.join(name);
            let sub_entries = dir_entries(&sub)?;
            sub_entries.iter().any(|(n, d)| n == SUMMARY_FILE && !d)
                && sub_entries
                    .iter()
                    .all(|(n, d)| !d && RUN_DIR_FILES.contains(&n.as_str()))
        } else {
            name == FIXED_SPEC_FILE
        };
        if !known {
            return Err(refuse(format!(
                "it holds {name}{}, which neuron-doctor did not write",
                if *is_dir { "/" } else { "" }
            )));
        }
    }
    Ok(())
}

/// Whether `name` is one of the files an executor writes in a `jobs/` directory: a job's spec,
/// start weights, log and exit code (`<i>.toml`, `<i>.start.bpk`, `<i>.log`, `<i>.exit`), the
/// Slurm script and its record (`array.sh`, `slurm.json`).
fn is_job_file(name: &str) -> bool {
    if name == "array.sh" || name == "slurm.json" {
        return true;
    }
    ["toml", "start.bpk", "log", "exit"].iter().any(|ext| {
        name.strip_suffix(ext)
            .and_then(|stem| stem.strip_suffix('.'))
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The run or fix directory that `path` lies in (or is), if any: the nearest of its existing
/// ancestors that holds a `summary.json`, or whose name ends in `.fix` and that holds only
/// candidate runs. For writers of other files (reports), which must never write into a run.
pub fn enclosing_run(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    absolute
        .ancestors()
        .filter(|dir| dir.is_dir())
        .find(|dir| {
            dir.join(SUMMARY_FILE).is_file()
                || (dir.extension().is_some_and(|e| e == "fix") && check_replaceable(dir).is_ok())
        })
        .map(Path::to_path_buf)
}

/// A directory's entries: name, and whether it is a directory (links count as files).
fn dir_entries(dir: &Path) -> Result<Vec<(String, bool)>, TrainError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))? {
        let entry = entry.map_err(|e| TrainError::io(dir, e))?;
        let kind = entry.file_type().map_err(|e| TrainError::io(dir, e))?;
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            kind.is_dir(),
        ));
    }
    out.sort();
    Ok(out)
}

/// The SHA-256 of a file's bytes, as lowercase hex.
fn file_sha256(path: &Path) -> Result<String, TrainError> {
    use sha2::Digest;
    let bytes = fs::read(path).map_err(|e| TrainError::io(path, e))?;
    let digest = sha2::Sha256::digest(&bytes);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
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
        // An imported model's run has no initial weights and no history; which kind a run is
        // its spec says, so the config is read first.
        let config = dir.join(CONFIG_FILE);
        if !config.is_file() {
            return Err(TrainError::NotARun {
                dir: dir.to_path_buf(),
                problem: format!("{CONFIG_FILE} is missing"),
            });
        }
        let spec = Spec::from_file(&config)?
            .check()
            .map_err(|e| e.in_file(&config))?;
        let imported = spec.source.is_some();
        let required: &[&str] = if imported {
            &[FINAL_WEIGHTS, SUMMARY_FILE]
        } else {
            &[INITIAL_WEIGHTS, FINAL_WEIGHTS, METRICS_FILE, SUMMARY_FILE]
        };
        for &file in required {
            if !dir.join(file).is_file() {
                return Err(TrainError::NotARun {
                    dir: dir.to_path_buf(),
                    problem: format!("{file} is missing"),
                });
            }
        }
        let metrics_path = dir.join(METRICS_FILE);
        let text = match fs::read_to_string(&metrics_path) {
            Err(e) if imported && e.kind() == std::io::ErrorKind::NotFound => String::new(),
            other => other.map_err(|e| TrainError::io(&metrics_path, e))?,
        };
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
        // Every finished epoch is one line: an empty or shorter history is a cut-off file, and a
        // diagnosis of it would describe a training that is not the one the summary records.
        if metrics.len() != summary.epochs_run || (metrics.is_empty() && !imported) {
            return Err(TrainError::Corrupt {
                path: metrics_path,
                problem: format!(
                    "{} epoch(s) recorded where summary.json says {} ran",
                    metrics.len(),
                    summary.epochs_run
                ),
            });
        }
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

    /// True for a run written by `import`: a model trained elsewhere, with no initial weights
    /// and no history.
    pub fn is_imported(&self) -> bool {
        self.spec.source.is_some() && self.summary.epochs_run == 0
    }

    /// The run as a training's result: its initial and final weights, history, health,
    /// training time and why it stopped early, as [`crate::train`] returned them when it was
    /// trained, in this process or in another.
    pub fn trained(&self, data: &Dataset, device: &Device) -> Result<Trained, TrainError> {
        Ok(Trained {
            initial: self.network(Stage::Initial, data, device)?,
            network: self.network(Stage::Final, data, device)?,
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            stopped_early: self.summary.stopped_early.clone(),
            seconds: self.summary.seconds,
        })
    }

    /// Loads the run's weights at `stage` into a network built from its spec.
    pub fn network(
        &self,
        stage: Stage,
        data: &Dataset,
        device: &Device,
    ) -> Result<Network, TrainError> {
        let path = self.dir.join(stage.file());
        if stage == Stage::Initial && self.is_imported() {
            return Err(TrainError::NotARun {
                dir: self.dir.clone(),
                problem: "an imported model's run has no initial weights".into(),
            });
        }
        let fresh = Network::new(&self.spec, &model_shape(data), device)?;
        // The loader's own errors (truncated, another architecture) say more than a checksum
        // would; weights that load but are not the ones trained are caught by the checksum.
        let network = fresh.load_weights(&path)?;
        if let Some(expected) = self.summary.sha256.get(stage.file()) {
            if &file_sha256(&path)? != expected {
                return Err(TrainError::Corrupt {
                    path,
                    problem: format!(
                        "its SHA-256 differs from the one {SUMMARY_FILE} recorded when the run was trained: the weights were replaced or damaged"
                    ),
                });
            }
        }
        Ok(network)
    }
}
