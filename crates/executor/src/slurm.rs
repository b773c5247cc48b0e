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
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{
    last_error, no_run_message, remove_partial, wrote_run, ExecError, Job, JobFailure, JobResults,
    Progress, Tally,
};

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
    /// How long a task that left the queue may take to show its exit code before it counts
    /// as killed (default [`MISSING_GRACE`]).
    pub grace: Option<Duration>,
}

/// How long a task that left the queue may take to show its exit code here before it is taken
/// as killed: shared file systems can take tens of seconds to show one node's file to another.
pub const MISSING_GRACE: Duration = Duration::from_secs(60);

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
            grace: None,
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

/// A submitted job array, recorded in `<work>/slurm.json` so that a later process can wait
/// for it, judge it and resubmit its failed tasks (`fix --no-wait`, `fix --collect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    /// The array's job id, as `sbatch --parsable` printed it.
    pub job_id: String,
    /// Its tasks, one per job.
    pub tasks: usize,
    /// Per task, the id of the array that ran it last (a retried task's is its retry's).
    pub task_job: Vec<String>,
    /// Per task, its job's label and run directory: a collection must ask for the same jobs.
    #[serde(default)]
    pub jobs: Vec<(String, PathBuf)>,
}

impl Submitted {
    /// The record written beside the job files.
    pub fn file(work: &Path) -> PathBuf {
        work.join("slurm.json")
    }

    /// Reads the record of the array submitted from `work`.
    pub fn read(work: &Path) -> Result<Submitted, ExecError> {
        let path = Submitted::file(work);
        let text = std::fs::read_to_string(&path).map_err(|e| ExecError::Io {
            path: path.clone(),
            source: e,
        })?;
        serde_json::from_str(&text).map_err(|e| ExecError::Io {
            path,
            source: std::io::Error::other(e.to_string()),
        })
    }

    fn write(&self, work: &Path) -> Result<(), ExecError> {
        let path = Submitted::file(work);
        let json = serde_json::to_string_pretty(self).expect("a submission serializes");
        std::fs::write(&path, json).map_err(|e| ExecError::Io { path, source: e })
    }
}

/// Tasks of the array submitted from `work` that are still queued or running, with the
/// array's id: `None` when nothing was submitted from there, or `squeue` is missing or does
/// not answer (nothing can be said).
pub fn still_queued(work: &Path) -> Option<(String, usize)> {
    let submitted = Submitted::read(work).ok()?;
    if !on_path("squeue") {
        return None;
    }
    let mut ids: Vec<&String> = submitted.task_job.iter().collect();
    ids.sort();
    ids.dedup();
    let mut queued = 0;
    for id in ids {
        queued += squeue(id)?.len();
    }
    Some((submitted.job_id, queued))
}

/// Checks that Slurm's client commands (`sbatch`, `squeue`) are on the PATH.
pub fn check_slurm() -> Result<(), ExecError> {
    check_commands()
}

fn check_commands() -> Result<(), ExecError> {
    for command in ["sbatch", "squeue"] {
        if !on_path(command) {
            return Err(ExecError::NoSlurm { command });
        }
    }
    Ok(())
}

fn absolute(work: &Path) -> Result<PathBuf, ExecError> {
    std::path::absolute(work).map_err(|e| ExecError::Io {
        path: work.to_path_buf(),
        source: e,
    })
}

/// Writes the array's script and submits `tasks` of it (every task when `None`); returns the
/// array's job id.
fn sbatch(
    name: &str,
    commands: &[Vec<String>],
    work: &Path,
    settings: &SlurmSettings,
    tasks: &[usize],
) -> Result<String, ExecError> {
    for i in tasks {
        // A retry must not read the exit code of an earlier attempt.
        let _ = std::fs::remove_file(work.join(format!("{i}.exit")));
    }
    let script_path = work.join("array.sh");
    std::fs::write(&script_path, script(commands, work)).map_err(|e| ExecError::Io {
        path: script_path.clone(),
        source: e,
    })?;
    let array: Vec<String> = tasks.iter().map(usize::to_string).collect();
    let output = Command::new("sbatch")
        .arg("--parsable")
        .arg(format!("--array={}", array.join(",")))
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
    tracing::info!(job = id, tasks = tasks.len(), "submitted the job array");
    Ok(id)
}

/// Submits every job as one array and records it in `<work>/slurm.json`, without waiting.
pub(crate) fn submit(
    jobs: &[Job],
    commands: &[Vec<String>],
    work: &Path,
    settings: &SlurmSettings,
) -> Result<Submitted, ExecError> {
    check_commands()?;
    let work = absolute(work)?;
    let all: Vec<usize> = (0..jobs.len()).collect();
    let id = sbatch(&jobs[0].spec.name, commands, &work, settings, &all)?;
    let submitted = Submitted {
        job_id: id.clone(),
        tasks: jobs.len(),
        task_job: vec![id; jobs.len()],
        jobs: described(jobs),
    };
    submitted.write(&work)?;
    Ok(submitted)
}

/// Each job's label and run directory, as recorded and compared.
pub(crate) fn described(jobs: &[Job]) -> Vec<(String, PathBuf)> {
    jobs.iter()
        .map(|j| {
            (
                j.label.clone(),
                std::path::absolute(&j.out).unwrap_or(j.out.clone()),
            )
        })
        .collect()
}

/// Submits every job as one array and waits for it.
pub(crate) fn run(
    jobs: &[Job],
    commands: &[Vec<String>],
    work: &Path,
    settings: &SlurmSettings,
    progress: &mut dyn Progress,
) -> Result<JobResults, ExecError> {
    let submitted = submit(jobs, commands, work, settings)?;
    register(&submitted.job_id);
    let results = wait(jobs, &absolute(work)?, &submitted, settings, progress);
    unregister(&submitted.job_id);
    Ok(results)
}

/// Waits for an array submitted earlier from `work` (by another process), resubmits its
/// failed tasks first when `retry_failed`, and returns every job's result.
pub(crate) fn collect(
    jobs: &[Job],
    commands: &[Vec<String>],
    work: &Path,
    settings: &SlurmSettings,
    retry_failed: bool,
    progress: &mut dyn Progress,
) -> Result<JobResults, ExecError> {
    check_commands()?;
    let work = absolute(work)?;
    let mut submitted = Submitted::read(&work)?;
    if submitted.tasks != jobs.len() || submitted.jobs != described(jobs) {
        return Err(ExecError::Mismatch {
            work: work.clone(),
            submitted: submitted.tasks,
            now: jobs.len(),
        });
    }
    let results = wait(jobs, &work, &submitted, settings, progress);
    let failed: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_err())
        .map(|(i, _)| i)
        .collect();
    if !retry_failed || failed.is_empty() {
        return Ok(results);
    }
    // The job files were written again for these jobs (the same specs, or the comparison
    // above would have refused): the retry runs them.
    let id = sbatch(&jobs[0].spec.name, commands, &work, settings, &failed)?;
    for &i in &failed {
        submitted.task_job[i] = id.clone();
    }
    submitted.write(&work)?;
    register(&id);
    let results = wait(jobs, &work, &submitted, settings, progress);
    unregister(&id);
    Ok(results)
}

fn register(id: &str) {
    SUBMITTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(id.to_string());
}

fn unregister(id: &str) {
    SUBMITTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|j| j != id);
}

/// Polls `squeue` until no task of the array is left, showing the tally, and returns each
/// job's result from its exit file.
fn wait(
    jobs: &[Job],
    work: &Path,
    submitted: &Submitted,
    settings: &SlurmSettings,
    progress: &mut dyn Progress,
) -> JobResults {
    let total = jobs.len();
    let poll = settings.poll.unwrap_or(Duration::from_secs(1));
    let grace = settings.grace.unwrap_or(MISSING_GRACE);
    let mut ids: Vec<&String> = submitted.task_job.iter().collect();
    ids.sort();
    ids.dedup();
    // A task that has left the queue without an exit code is taken as killed only after a
    // grace period: on shared storage a file another node wrote can take a while to show up
    // here. A poll `squeue` could not answer says nothing, and counts for nothing.
    let mut missing_since: Vec<Option<Instant>> = vec![None; total];
    let mut finished: Vec<Option<Option<i32>>> = vec![None; total];
    let mut last_tally = None;
    loop {
        let mut queued = Some(std::collections::HashMap::new());
        for id in &ids {
            match (squeue(id), queued.as_mut()) {
                (Some(tasks), Some(all)) => {
                    for (task, state) in tasks {
                        all.insert(((*id).clone(), task), state);
                    }
                }
                _ => queued = None,
            }
        }
        let mut pending = 0;
        let mut running = 0;
        for (i, slot) in finished.iter_mut().enumerate() {
            if slot.is_some() {
                continue;
            }
            let Some(queued) = &queued else {
                running += 1;
                continue;
            };
            let state = queued.get(&(submitted.task_job[i].clone(), i));
            // Still queued (a requeued task may have left an exit code of an earlier try):
            // not finished, whatever its file says.
            match state.map(String::as_str) {
                Some("PENDING" | "CONFIGURING" | "REQUEUED") => {
                    missing_since[i] = None;
                    pending += 1;
                    continue;
                }
                Some(_) => {
                    missing_since[i] = None;
                    running += 1;
                    continue;
                }
                None => {}
            }
            match read_exit(&work.join(format!("{i}.exit"))) {
                Some(code) => *slot = Some(Some(code)),
                None => {
                    let since = *missing_since[i].get_or_insert_with(Instant::now);
                    if since.elapsed() >= grace {
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
    finished
        .into_iter()
        .enumerate()
        .map(|(i, code)| {
            let code = code.expect("every task finished");
            if code == Some(0) && wrote_run(&jobs[i].out) {
                return Ok(jobs[i].out.clone());
            }
            remove_partial(&jobs[i].out);
            let log: PathBuf = work.join(format!("{i}.log"));
            Err(JobFailure {
                label: jobs[i].label.clone(),
                task: Some(format!("{}_{i}", submitted.task_job[i])),
                exit_code: code,
                message: match code {
                    Some(0) => no_run_message(&jobs[i].out),
                    Some(_) => last_error(&log),
                    None => {
                        "it ended without an exit code (time limit, cancelled, or its node failed)"
                            .into()
                    }
                },
                log: Some(log.display().to_string()),
            })
        })
        .collect()
}

/// The array's tasks still in the queue, by task index, with their state; `None` when
/// `squeue` could not say (not started, or the controller did not answer). An array that has
/// left the queue altogether is an empty answer, not a failure.
fn squeue(id: &str) -> Option<std::collections::HashMap<usize, String>> {
    let output = Command::new("squeue")
        .args(["--noheader", "--array", "--jobs", id, "--format=%K %T"])
        .output()
        .ok()?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("Invalid job id") {
            return Some(Default::default());
        }
        tracing::warn!(job = id, %stderr, "squeue did not answer; asking again");
        return None;
    }
    let tasks = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (task, state) = line.trim().split_once(' ')?;
            Some((task.parse().ok()?, state.trim().to_string()))
        })
        .collect();
    Some(tasks)
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
