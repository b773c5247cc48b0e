//! From raw flags to validated settings: load a spec, apply command-line overrides, check it,
//! and load its data.

use std::path::{Path, PathBuf};

use anyhow::Context;
use nd_data::Dataset;
use nd_spec::{Backend, CheckedSpec, Spec};

/// Overrides that several commands accept.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Train for this many epochs instead of the spec's.
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Use this seed instead of the spec's.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Compute on this backend instead of the spec's (ndarray | flex | wgpu).
    #[arg(long, value_name = "NAME")]
    pub backend: Option<Backend>,
}

impl Overrides {
    /// Checks the flags' own values, naming the flag.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.epochs == Some(0) {
            anyhow::bail!("--epochs 0: train for at least 1 epoch");
        }
        Ok(())
    }

    /// Applies the overrides to a parsed spec.
    pub fn apply(&self, mut spec: Spec) -> Spec {
        if let Some(epochs) = self.epochs {
            spec.train.epochs = epochs;
        }
        if let Some(seed) = self.seed {
            spec.train.seed = seed;
        }
        if let Some(backend) = self.backend {
            spec.train.backend = backend;
        }
        spec
    }
}

/// Where `fix`, `checkup` and `compare` train their candidates.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ExecutorFlags {
    /// Where the candidate trainings run: `local`, processes of this binary on this machine
    /// (--jobs at once), or `slurm`, one job array on the cluster (its partition, account, time
    /// limit, CPUs and GPUs per task from the spec's `[executor]` section; the runs' directory
    /// must be on storage the nodes share). Default: the spec's `[executor]` kind, else local.
    #[arg(long, value_name = "KIND")]
    pub executor: Option<nd_spec::ExecutorKind>,
    /// local: trainings at once (default: the spec's executor.jobs, else the number of cores;
    /// 1 on wgpu, where each process would open the GPU). Every run is the same whatever the
    /// number: each trains in its own process.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

impl ExecutorFlags {
    /// The executor these flags and the spec's `[executor]` section choose.
    pub fn executor(
        &self,
        spec: &nd_spec::ExecutorSpec,
        backend: Backend,
    ) -> anyhow::Result<nd_remedy::Executor> {
        if self.jobs == Some(0) {
            anyhow::bail!("--jobs 0: run at least 1 training at a time");
        }
        let program = std::env::current_exe()
            .context("cannot find this program's own path, which the executor runs")?;
        let kind = self.executor.unwrap_or(spec.kind);
        if kind == nd_spec::ExecutorKind::Slurm && self.jobs.is_some() {
            anyhow::bail!("--jobs is for --executor local: on Slurm the cluster decides how many tasks run at once");
        }
        Ok(match kind {
            nd_spec::ExecutorKind::Local => nd_remedy::Executor::Local {
                program,
                jobs: self.jobs.or(spec.jobs).unwrap_or_else(|| {
                    if backend == Backend::Wgpu {
                        1
                    } else {
                        nd_executor::default_jobs()
                    }
                }),
            },
            nd_spec::ExecutorKind::Slurm => nd_remedy::Executor::Slurm {
                program,
                settings: nd_remedy::SlurmSettings::of(spec),
            },
        })
    }
}

/// Reads a spec file, applies overrides, validates, and makes a csv path absolute so the
/// resolved spec works from anywhere (the run directory keeps a copy).
pub fn load_spec(path: &Path, overrides: &Overrides) -> anyhow::Result<CheckedSpec> {
    overrides.check()?;
    let spec = overrides.apply(Spec::from_file(path)?);
    let mut spec = spec.check().map_err(|e| e.in_file(path))?.into_inner();
    if let Some(csv) = spec.data.path.clone() {
        let base = path.parent().unwrap_or(Path::new("."));
        let full = if csv.is_absolute() {
            csv
        } else {
            base.join(csv)
        };
        spec.data.path = Some(std::fs::canonicalize(&full).unwrap_or(full));
    }
    Ok(spec.check()?)
}

/// Loads the dataset a checked spec names, and checks that the model kind fits it; `origin`
/// (the spec file, or a label) names the source in errors.
pub fn load_data(spec: &CheckedSpec, origin: &str) -> anyhow::Result<Dataset> {
    let data = nd_data::load(&spec.data, Path::new("."))?;
    // What the model needs for this data's shape, refused before anything is allocated.
    let footprint = spec.model.footprint(
        data.n_features,
        data.image,
        data.n_outputs(),
        spec.train.batch_size,
    );
    spec.model
        .check_footprint(&footprint, spec.train.batch_size)
        .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    if spec.model.kind == nd_spec::ModelKind::Cnn && data.image.is_none() {
        anyhow::bail!(
            "{origin}: `model.kind` = \"cnn\" needs image data (digits, mnist, fashion-mnist), but {} has flat rows of {} features; use kind = \"mlp\"",
            data.name,
            data.n_features
        );
    }
    Ok(data)
}

/// `runs/<name>` unless `--out` says otherwise; `--out` must end in a directory name short
/// enough for the run's temporary and fix directories beside it.
pub fn run_dir(out: Option<PathBuf>, spec: &CheckedSpec) -> anyhow::Result<PathBuf> {
    let Some(out) = out else {
        return Ok(PathBuf::from("runs").join(&spec.name));
    };
    let named = matches!(
        out.components().next_back(),
        Some(std::path::Component::Normal(_))
    ) && !out.to_string_lossy().ends_with("/.");
    let Some(name) = out.file_name().filter(|_| named) else {
        anyhow::bail!("--out {}: does not end in a directory name", out.display());
    };
    if name.len() > nd_train::MAX_RUN_NAME_BYTES {
        anyhow::bail!(
            "--out {}...: the directory name is {} bytes, at most {} fit beside its temporary and fix directories",
            out.display().to_string().chars().take(40).collect::<String>(),
            name.len(),
            nd_train::MAX_RUN_NAME_BYTES
        );
    }
    Ok(out)
}

/// The spec's `[doctor]` thresholds with `KEY=VALUE` overrides from the command line.
pub fn thresholds(
    spec: &CheckedSpec,
    overrides: &[String],
) -> anyhow::Result<nd_spec::DoctorThresholds> {
    let mut spec: Spec = spec.spec().clone();
    for item in overrides {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--threshold {item:?}: expected KEY=VALUE"))?;
        let key = key.trim();
        let full = if key.starts_with("doctor.") {
            key.to_string()
        } else {
            format!("doctor.{key}")
        };
        spec = spec
            .apply_change(&full, value.trim())
            .with_context(|| format!("--threshold {item}"))?;
    }
    Ok(spec.check().context("--threshold")?.doctor.clone())
}
