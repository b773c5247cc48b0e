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
    };
    submitted.write(&work)?;
    Ok(submitted)
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
    work: &Path,
    settings: &SlurmSettings,
    retry_failed: bool,
    progress: &mut dyn Progress,
) -> Result<JobResults, ExecError> {
    check_commands()?;
    let work = absolute(work)?;
    let mut submitted = Submitted::read(&work)?;
    if submitted.tasks != jobs.len() {
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
    // The job files are there from the submission; the script is rewritten from them.
    let commands = read_commands(&work, jobs.len())?;
    let id = sbatch(&jobs[0].spec.name, &commands, &work, settings, &failed)?;
    for &i in &failed {
        submitted.task_job[i] = id.clone();
    }
    submitted.write(&work)?;
    register(&id);
    let results = wait(jobs, &work, &submitted, settings, progress);
    unregister(&id);
    Ok(results)
}

/// The command lines of a submitted array, from its script.
fn read_commands(work: &Path, tasks: usize) -> Result<Vec<Vec<String>>, ExecError> {
    let path = work.join("array.sh");
    let text = std::fs::read_to_string(&path).map_err(|e| ExecError::Io {
        path: path.clone(),
        source: e,
    })?;
    let mut commands = vec![Vec::new(); tasks];
    for line in text.lines() {
        let Some((index, rest)) = line.split_once(") ") else {
            continue;
        };
        let (Ok(i), Some(words)) = (index.parse::<usize>(), rest.strip_suffix(" ;;")) else {
            continue;
        };
        if i < tasks {
            commands[i] = unquote(words);
        }
    }
    if commands.iter().any(Vec::is_empty) {
        return Err(ExecError::Io {
            path,
            source: std::io::Error::other("it lacks a task's command line"),
        });
    }
    Ok(commands)
}

/// The words of a line [`quote`] wrote.
fn unquote(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            '\\' if !quoted => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
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
    let mut ids: Vec<&String> = submitted.task_job.iter().collect();
    ids.sort();
    ids.dedup();
    // A task that is neither queued nor has an exit code is taken as killed only after it has
    // been missing for a few polls: a finished task's file may show up late on shared storage.
    let mut missing = vec![0u32; total];
    let mut finished: Vec<Option<Option<i32>>> = vec![None; total];
    let mut last_tally = None;
    loop {
        let mut queued = std::collections::HashMap::new();
        for id in &ids {
            for (task, state) in squeue(id) {
                queued.insert(((*id).clone(), task), state);
            }
        }
        let mut pending = 0;
        let mut running = 0;
        for (i, slot) in finished.iter_mut().enumerate() {
            if slot.is_some() {
                continue;
            }
            let exit = read_exit(&work.join(format!("{i}.exit")));
            let state = queued.get(&(submitted.task_job[i].clone(), i));
            match (state.map(String::as_str), exit) {
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
        // What a retry reads back is what was written.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("array.sh"), &s).unwrap();
        assert_eq!(read_commands(dir.path(), 2).unwrap(), commands);
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
