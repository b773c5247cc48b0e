//! The Slurm executor: jobs as one job array (`sbatch --array=0-N`), one task per job.
//!
//! The array's script (`<work>/array.sh`) runs task `i`'s command line and writes its exit
//! code to `<work>/<i>.exit`; Slurm writes the task's output to `<work>/<i>.log`. The executor
//! polls `squeue` until no task of the array is left, then takes each task's exit code from
//! its file: a task that left none was killed (time limit, cancelled, node failure) and is
//! reported with its log. Accounting (`sacct`) is not needed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{last_error, remove_partial, ExecError, Job, JobFailure, JobResults, Progress, Tally};

/// A cluster's settings for the job array: the `[executor]` section's Slurm keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlurmSettings {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--time`, each task's limit.
    pub time: Option<String>,
    /// `--cpus-per-task`.
    pub cpus_per_task: Option<usize>,
    /// `--gpus-per-task`.
    pub gpus_per_task: Option<usize>,
    /// Further `sbatch` options.
    pub sbatch_args: Vec<String>,
    /// How often `squeue` is asked (default 1 s).
    pub poll: Option<Duration>,
}

impl SlurmSettings {
    /// The settings of a spec's `[executor]` section.
    pub fn of(spec: &nd_spec::ExecutorSpec) -> SlurmSettings {
        SlurmSettings {
            partition: spec.partition.clone(),
            account: spec.account.clone(),
            time: spec.time.clone(),
            cpus_per_task: spec.cpus_per_task,
            gpus_per_task: spec.gpus_per_task,
            sbatch_args: spec.sbatch_args.clone(),
            poll: None,
        }
    }

    /// The `sbatch` options these settings add.
    pub fn sbatch_options(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut push = |flag: &str, value: Option<String>| {
            if let Some(v) = value {
                args.push(format!("--{flag}={v}"));
            }
        };
        push("partition", self.partition.clone());
        push("account", self.account.clone());
        push("time", self.time.clone());
        push("cpus-per-task", self.cpus_per_task.map(|n| n.to_string()));
        push("gpus-per-task", self.gpus_per_task.map(|n| n.to_string()));
        args.extend(self.sbatch_args.iter().cloned());
        args
    }
}

/// Job arrays submitted by this process and not yet finished: cancelled by
/// [`cancel_submitted`] when the user interrupts.
static SUBMITTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Cancels (`scancel`) every job array this process submitted and is still waiting for, and
/// returns their ids. For an interrupt handler: no task goes on writing into a directory that
/// is being removed.
pub fn cancel_submitted() -> Vec<String> {
    let ids: Vec<String> = SUBMITTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
        .collect();
    for id in &ids {
        let _ = Command::new("scancel").arg(id).status();
    }
    ids
}

/// A POSIX shell word: single-quoted, with single quotes escaped.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The array's script: task `i` runs `commands[i]` and writes its exit code to `<i>.exit`.
fn script(commands: &[Vec<String>], work: &Path) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# neuron-doctor: one candidate training per array task; written by the slurm executor.\n",
    );
    s.push_str("case \"$SLURM_ARRAY_TASK_ID\" in\n");
    for (i, command) in commands.iter().enumerate() {
        let words: Vec<String> = command.iter().map(|w| quote(w)).collect();
        s.push_str(&format!("{i}) {} ;;\n", words.join(" ")));
    }
    s.push_str("*) echo \"error: no task $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\nesac\n");
    s.push_str(&format!(
        "code=$?\necho \"$code\" > {}/\"$SLURM_ARRAY_TASK_ID\".exit\nexit \"$code\"\n",
        quote(&work.display().to_string())
    ));
    s
}

/// Whether `command` is on the PATH.
fn on_path(command: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(command).is_file()))
}

pub(crate) fn run(
    jobs: &[Job],
    commands: &[Vec<String>],
    work: &Path,
    settings: &SlurmSettings,
    progress: &mut dyn Progress,
) -> Result<JobResults, ExecError> {
    for command in ["sbatch", "squeue"] {
        if !on_path(command) {
            return Err(ExecError::NoSlurm { command });
        }
    }
    let work = std::path::absolute(work).map_err(|e| ExecError::Io {
        path: work.to_path_buf(),
        source: e,
    })?;
    let total = jobs.len();
    for i in 0..total {
        // A retry must not read the exit code of an earlier attempt.
        let _ = std::fs::remove_file(work.join(format!("{i}.exit")));
    }
    let script_path = work.join("array.sh");
    std::fs::write(&script_path, script(commands, &work)).map_err(|e| ExecError::Io {
        path: script_path.clone(),
        source: e,
    })?;
    let name = jobs[0].spec.name.clone();
    let output = Command::new("sbatch")
        .arg("--parsable")
        .arg(format!("--array=0-{}", total - 1))
        .arg(format!("--job-name=neuron-doctor-{name}"))
        .arg(format!("--output={}/%a.log", work.display()))
        .arg(format!("--chdir={}", work.display()))
        .args(settings.sbatch_options())
        .arg(&script_path)
        .output()
        .map_err(|e| ExecError::Spawn {
            program: "sbatch".into(),
            source: e,
        })?;
    if !output.status.success() {
        return Err(ExecError::Sbatch {
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    // `--parsable` prints `id` or `id;cluster`.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let id = stdout
        .trim()
        .split(';')
        .next()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ExecError::Sbatch {
            status: output.status.to_string(),
            stderr: format!("it printed no job id ({:?})", stdout.trim()),
        })?
        .to_string();
    tracing::info!(job = id, tasks = total, "submitted the job array");
    SUBMITTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(id.clone());
    let poll = settings.poll.unwrap_or(Duration::from_secs(1));
    // A task that is neither queued nor has an exit code is taken as killed only after it has
    // been missing for a few polls: a finished task's file may show up late on shared storage.
    let mut missing = vec![0u32; total];
    let mut finished: Vec<Option<Option<i32>>> = vec![None; total];
    let mut last_tally = None;
    loop {
        let queued = squeue(&id);
        let mut pending = 0;
        let mut running = 0;
        for (i, slot) in finished.iter_mut().enumerate() {
            if slot.is_some() {
                continue;
            }
            let exit = read_exit(&work.join(format!("{i}.exit")));
            match (queued.get(&i).map(String::as_str), exit) {
                (_, Some(code)) => *slot = Some(Some(code)),
                (Some("PENDING" | "CONFIGURING" | "REQUEUED"), None) => pending += 1,
                (Some(_), None) => running += 1,
                (None, None) => {
                    missing[i] += 1;
                    if missing[i] >= 3 {
                        *slot = Some(None);
                    } else {
                        running += 1;
                    }
                }
            }
        }
        let failed = finished
            .iter()
            .flatten()
            .filter(|code| **code != Some(0))
            .count();
        let done = finished.iter().flatten().count() - failed;
        let tally = Tally {
            total,
            pending,
            running,
            done,
            failed,
        };
        if last_tally != Some(tally) {
            progress.tasks(&tally);
            last_tally = Some(tally);
        }
        if done + failed == total {
            break;
        }
        std::thread::sleep(poll);
    }
    SUBMITTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|j| j != &id);
    Ok(finished
        .into_iter()
        .enumerate()
        .map(|(i, code)| {
            let code = code.expect("every task finished");
            if code == Some(0) {
                return Ok(jobs[i].out.clone());
            }
            remove_partial(&jobs[i].out);
            let log: PathBuf = work.join(format!("{i}.log"));
            Err(JobFailure {
                label: jobs[i].label.clone(),
                task: Some(format!("{id}_{i}")),
                exit_code: code,
                message: match code {
                    Some(_) => last_error(&log),
                    None => {
                        "it ended without an exit code (time limit, cancelled, or its node failed)"
                            .into()
                    }
                },
                log: Some(log.display().to_string()),
            })
        })
        .collect())
}

/// The array's tasks still in the queue, by task index, with their state.
fn squeue(id: &str) -> std::collections::HashMap<usize, String> {
    let output = Command::new("squeue")
        .args(["--noheader", "--array", "--jobs", id, "--format=%K %T"])
        .output();
    let Ok(output) = output else {
        return Default::default();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (task, state) = line.trim().split_once(' ')?;
            Some((task.parse().ok()?, state.trim().to_string()))
        })
        .collect()
}

/// A task's exit code from its file, if it wrote one.
fn read_exit(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_runs_each_task_s_command_quoted_and_records_its_exit_code() {
        let commands = vec![
            vec!["/bin/nd".to_string(), "train".into(), "/w/0.toml".into()],
            vec!["/bin/nd".to_string(), "it's".into()],
        ];
        let s = script(&commands, Path::new("/w d"));
        assert!(s.contains("0) '/bin/nd' 'train' '/w/0.toml' ;;"));
        assert!(s.contains(r"1) '/bin/nd' 'it'\''s' ;;"));
        assert!(s.contains("echo \"$code\" > '/w d'/\"$SLURM_ARRAY_TASK_ID\".exit"));
    }

    #[test]
    fn the_settings_become_sbatch_options() {
        let settings = SlurmSettings {
            partition: Some("gpu".into()),
            time: Some("00:30:00".into()),
            gpus_per_task: Some(1),
            sbatch_args: vec!["--qos=short".into()],
            ..Default::default()
        };
        assert_eq!(
            settings.sbatch_options(),
            [
                "--partition=gpu",
                "--time=00:30:00",
                "--gpus-per-task=1",
                "--qos=short"
            ]
        );
    }
}
