//! Where neuron-doctor's candidate trainings run.
//!
//! A verified cure costs trainings: every candidate on every paired seed, and the original's
//! other seeds. Each is a [`Job`]: a spec (its seed and backend set), the weights it starts
//! from if any, and the run directory it writes. An [`Executor`] runs a batch of them:
//!
//! - [`Executor::InProcess`]: one after another in this process (the library's default, and
//!   what tests of the libraries use).
//! - [`Executor::Local`]: each job in its own process of the `neuron-doctor` binary
//!   (`neuron-doctor train JOB.toml --out DIR [--init-from START.bpk]`), up to `jobs` at once.
//!   Separate processes keep burn-ndarray's process-global random generator out of each
//!   other's way, so every run is bit-identical to the one the in-process executor writes.
//! - [`Executor::Slurm`]: the same command lines as one Slurm job array (`sbatch --array`),
//!   one task per job, each writing its run directory on storage the cluster shares; the
//!   executor waits, showing pending, running, done and failed tasks.
//!
//! Whatever ran it, a job's result is a run directory like any `train` writes; the caller
//! reads it back with [`nd_train::Run::open`] and [`nd_train::Run::trained`], so the verdicts
//! never depend on the executor. A job that failed is a [`JobFailure`] naming its task, exit
//! code and log; the others are still returned.
//!
//! ```no_run
//! use nd_executor::{Executor, Job, Quiet};
//! let spec = nd_spec::Spec::from_file("configs/digits-relu.toml".as_ref())?.check()?;
//! let data = nd_data::load(&spec.data, ".".as_ref())?;
//! let device = nd_train::device(spec.train.backend)?;
//! let jobs = vec![Job::new("seed 42", spec.clone(), "runs/digits-relu-42")];
//! let results = Executor::InProcess.run(jobs, &data, &device, "runs/jobs".as_ref(), &mut Quiet)?;
//! assert!(results[0].is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod local;
mod slurm;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use nd_data::Dataset;
use nd_models::Network;
use nd_spec::CheckedSpec;
use nd_train::{Observer, PendingRun};
use serde::{Deserialize, Serialize};

pub use local::{default_jobs, stop_children};
pub use slurm::{
    cancel_submitted, check_slurm, still_queued, SlurmSettings, Submitted, MISSING_GRACE,
};

/// One training: a spec, where it starts, and the run directory it writes.
#[derive(Debug, Clone)]
pub struct Job {
    /// What progress and failures call it (`leaky_relu seed 43`).
    pub label: String,
    /// The spec to train, its seed and backend set.
    pub spec: CheckedSpec,
    /// Weights to start from (imported, revived); none: a fresh initialization from the seed.
    pub start: Option<Network>,
    /// The run directory to write (replaced if it holds a run).
    pub out: PathBuf,
}

impl Job {
    /// A job training `spec` from a fresh initialization into `out`.
    pub fn new(label: impl Into<String>, spec: CheckedSpec, out: impl Into<PathBuf>) -> Job {
        Job {
            label: label.into(),
            spec,
            start: None,
            out: out.into(),
        }
    }

    /// The same job, starting from `start`.
    pub fn starting_from(mut self, start: Option<Network>) -> Job {
        self.start = start;
        self
    }
}

/// A job that did not produce its run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobFailure {
    /// The job's label.
    pub label: String,
    /// The scheduler's id of its task (`1234_5` for a Slurm array task), if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Its exit code; none when it never exited on its own (timed out, cancelled, killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Its log (stdout and stderr), if it ran in another process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// What went wrong, in one line (the log's last error line, or the scheduler's state).
    pub message: String,
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed", self.label)?;
        if let Some(task) = &self.task {
            write!(f, " (task {task}")?;
            match self.exit_code {
                Some(code) => write!(f, ", exit code {code})")?,
                None => write!(f, ", no exit code)")?,
            }
        } else if let Some(code) = self.exit_code {
            write!(f, " (exit code {code})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(log) = &self.log {
            write!(f, "; log: {log}")?;
        }
        Ok(())
    }
}

/// How many jobs are where, for progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// All jobs.
    pub total: usize,
    /// Not started yet (queued by the scheduler, or waiting for a free slot).
    pub pending: usize,
    /// Running.
    pub running: usize,
    /// Finished with their run written.
    pub done: usize,
    /// Finished without it.
    pub failed: usize,
}

/// Reports progress of the jobs.
pub trait Progress {
    /// An observer for a job trained in this process (one per job, per epoch and batch).
    fn training(&mut self, label: &str) -> Box<dyn Observer + '_>;
    /// Where the jobs of another process or a scheduler are (called when it changes).
    fn tasks(&mut self, _tally: &Tally) {}
}

/// Progress that shows nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn training(&mut self, _label: &str) -> Box<dyn Observer + '_> {
        Box::new(nd_train::Quiet)
    }
}

/// Where jobs run.
#[derive(Debug, Clone)]
pub enum Executor {
    /// One after another in this process.
    InProcess,
    /// Processes of `program` (the `neuron-doctor` binary) on this machine, `jobs` at once.
    Local {
        /// The `neuron-doctor` binary.
        program: PathBuf,
        /// Trainings at once (at least 1).
        jobs: usize,
    },
    /// A Slurm job array of `program` tasks.
    Slurm {
        /// The `neuron-doctor` binary, on storage every node sees.
        program: PathBuf,
        /// The cluster's settings.
        settings: SlurmSettings,
    },
}

/// What stopped an executor from running its jobs at all (a job's own failure is a
/// [`JobFailure`] instead).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Reading or writing a job file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A start network could not be saved, or a run written.
    #[error(transparent)]
    Train(#[from] nd_train::TrainError),
    /// The program could not be started.
    #[error("cannot start {}: {source}", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// No Slurm client commands on this machine.
    #[error("`{command}` not found on PATH: the slurm executor needs a Slurm cluster's client commands (sbatch, squeue); use --executor local on a machine without one")]
    NoSlurm {
        /// The missing command.
        command: &'static str,
    },
    /// Submitting without waiting, or collecting later, needs a scheduler.
    #[error("{what} needs --executor slurm: local trainings end with the process that runs them")]
    NeedsScheduler {
        /// `--no-wait` or `--collect`.
        what: &'static str,
    },
    /// The jobs to collect are not the ones submitted.
    #[error("{}: the {submitted} task(s) submitted are not the {now} jobs this fix makes; collect with the same --candidates, --try, --seeds and --backend as the submission", work.display())]
    Mismatch {
        /// The job directory.
        work: PathBuf,
        /// Tasks submitted.
        submitted: usize,
        /// Jobs now.
        now: usize,
    },
    /// `sbatch` refused the job array.
    #[error("sbatch refused the job array ({status}): {stderr}")]
    Sbatch {
        /// Its exit status.
        status: String,
        /// What it said.
        stderr: String,
    },
}

/// Each job's result: its run directory, or why there is none.
pub type JobResults = Vec<Result<PathBuf, JobFailure>>;

impl Executor {
    /// A short name for reports: `in-process`, `local (2 jobs)`, `slurm`.
    pub fn describe(&self) -> String {
        match self {
            Executor::InProcess => "in-process".into(),
            Executor::Local { jobs, .. } => format!(
                "local ({jobs} job{} at once)",
                if *jobs == 1 { "" } else { "s" }
            ),
            Executor::Slurm { settings, .. } => match &settings.partition {
                Some(p) => format!("slurm (partition {p})"),
                None => "slurm".into(),
            },
        }
    }

    /// Runs `jobs` on `data` (the data every job's spec names) and returns each one's result,
    /// in order. `work` is where an executor of other processes writes its job files
    /// (created if missing; inside a fix or compare directory it is [`nd_train::JOBS_DIR`]).
    /// `device` is used only in this process: to train in-process jobs, and nowhere else.
    pub fn run(
        &self,
        jobs: Vec<Job>,
        data: &Dataset,
        device: &Device,
        work: &Path,
        progress: &mut dyn Progress,
    ) -> Result<JobResults, ExecError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Executor::InProcess => Ok(in_process(jobs, data, device, progress)),
            Executor::Local { program, jobs: n } => {
                let commands = write_jobs(&jobs, program, work)?;
                local::run(&jobs, &commands, work, (*n).max(1), progress)
            }
            Executor::Slurm { program, settings } => {
                let commands = write_jobs(&jobs, program, work)?;
                slurm::run(&jobs, &commands, work, settings, progress)
            }
        }
    }
}

impl Executor {
    /// Submits `jobs` and returns without waiting (Slurm only): the array is recorded in
    /// `work` (`slurm.json`), and [`Executor::collect`] waits for it and reads its results
    /// later, from another process.
    pub fn submit(&self, jobs: &[Job], work: &Path) -> Result<Submitted, ExecError> {
        let Executor::Slurm { program, settings } = self else {
            return Err(ExecError::NeedsScheduler { what: "--no-wait" });
        };
        let commands = write_jobs(jobs, program, work)?;
        slurm::submit(jobs, &commands, work, settings)
    }

    /// The results of `jobs` submitted earlier from `work` (Slurm only), waiting for the tasks
    /// still queued or running; with `retry_failed`, the failed tasks are submitted again
    /// (and waited for) first.
    pub fn collect(
        &self,
        jobs: &[Job],
        work: &Path,
        retry_failed: bool,
        progress: &mut dyn Progress,
    ) -> Result<JobResults, ExecError> {
        let Executor::Slurm { program, settings } = self else {
            return Err(ExecError::NeedsScheduler { what: "--collect" });
        };
        // Checked before anything is written: the jobs must be the ones submitted.
        let submitted = Submitted::read(work)?;
        if submitted.tasks != jobs.len() || submitted.jobs != slurm::described(jobs) {
            return Err(ExecError::Mismatch {
                work: work.to_path_buf(),
                submitted: submitted.tasks,
                now: jobs.len(),
            });
        }
        let commands = if retry_failed {
            write_jobs(jobs, program, work)?
        } else {
            Vec::new()
        };
        slurm::collect(jobs, &commands, work, settings, retry_failed, progress)
    }
}

fn in_process(
    jobs: Vec<Job>,
    data: &Dataset,
    device: &Device,
    progress: &mut dyn Progress,
) -> JobResults {
    jobs.into_iter()
        .map(|job| {
            let trained = {
                let mut observer = progress.training(&job.label);
                nd_train::train_from(&job.spec, data, job.start, device, observer.as_mut())
            };
            let written = trained.and_then(|trained| {
                let run = PendingRun::create(&job.out, true)?;
                run.write(&job.spec, data, &trained)?;
                run.commit()
            });
            written.map_err(|e| JobFailure {
                label: job.label.clone(),
                task: None,
                exit_code: None,
                log: None,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Writes each job's spec (and start weights) into `work` and returns its command line:
/// `program train <work>/<i>.toml --out <out> --force --quiet [--init-from <work>/<i>.start.bpk]`.
fn write_jobs(jobs: &[Job], program: &Path, work: &Path) -> Result<Vec<Vec<String>>, ExecError> {
    std::fs::create_dir_all(work).map_err(|e| ExecError::Io {
        path: work.to_path_buf(),
        source: e,
    })?;
    let work = std::path::absolute(work).map_err(|e| ExecError::Io {
        path: work.to_path_buf(),
        source: e,
    })?;
    let program = std::path::absolute(program).map_err(|e| ExecError::Io {
        path: program.to_path_buf(),
        source: e,
    })?;
    let mut commands = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let spec_path = work.join(format!("{i}.toml"));
        std::fs::write(&spec_path, job.spec.to_toml()).map_err(|e| ExecError::Io {
            path: spec_path.clone(),
            source: e,
        })?;
        let out = std::path::absolute(&job.out).map_err(|e| ExecError::Io {
            path: job.out.clone(),
            source: e,
        })?;
        let mut command = vec![
            program.display().to_string(),
            "train".into(),
            spec_path.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--force".into(),
            "--quiet".into(),
        ];
        if let Some(start) = &job.start {
            let path = work.join(format!("{i}.start.bpk"));
            start.clone().save_file(&path).map_err(|e| ExecError::Io {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            command.push("--init-from".into());
            command.push(path.display().to_string());
        }
        commands.push(command);
    }
    Ok(commands)
}

/// Whether a job that exited 0 left its run where it should be.
fn wrote_run(out: &Path) -> bool {
    out.join(nd_train::SUMMARY_FILE).is_file()
}

/// Why a job that exited 0 is a failure all the same.
fn no_run_message(out: &Path) -> String {
    format!(
        "it exited 0 but there is no run at {} (removed since, or not on storage this machine sees)",
        out.display()
    )
}

/// The last line of a log that says what went wrong (`error: ...`), or its last line.
fn last_error(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("error"))
        .or(lines.last())
        .map(|l| l.to_string())
        .unwrap_or_else(|| "it wrote nothing".into())
}

/// Removes what a killed training left half-written beside its run directory
/// (`.NAME.partial-PID`), so the directory holding it stays one neuron-doctor wrote.
fn remove_partial(out: &Path) {
    let (Some(parent), Some(name)) = (out.parent(), out.file_name()) else {
        return;
    };
    let prefix = format!(".{}.partial-", name.to_string_lossy());
    if let Ok(entries) = std::fs::read_dir(parent) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}
