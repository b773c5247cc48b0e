//! The local executor: jobs as processes of the `neuron-doctor` binary, a few at once.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::{
    last_error, no_run_message, remove_partial, wrote_run, ExecError, Job, JobFailure, JobResults,
    Progress, Tally,
};

/// The default number of trainings at once: the number of cores this process may use.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// How often running processes are checked.
const POLL: Duration = Duration::from_millis(50);

pub(crate) fn run(
    jobs: &[Job],
    commands: &[Vec<String>],
    work: &Path,
    at_once: usize,
    progress: &mut dyn Progress,
) -> Result<JobResults, ExecError> {
    let total = jobs.len();
    let mut results: Vec<Option<Result<PathBuf, JobFailure>>> = vec![None; total];
    let mut running: Vec<(usize, Child, PathBuf)> = Vec::new();
    let mut next = 0;
    let mut last_tally = None;
    loop {
        while running.len() < at_once && next < total {
            let log = work.join(format!("{next}.log"));
            let child = match spawn(&commands[next], &log) {
                Ok(child) => child,
                Err(e) => {
                    stop(&mut running);
                    return Err(e);
                }
            };
            tracing::info!(job = jobs[next].label, pid = child.id(), "started");
            remember(child.id());
            running.push((next, child, log));
            next += 1;
        }
        let mut still = Vec::with_capacity(running.len());
        for (i, mut child, log) in running {
            match child.try_wait() {
                Ok(Some(status)) => {
                    forget(child.id());
                    results[i] = Some(if status.success() && wrote_run(&jobs[i].out) {
                        Ok(jobs[i].out.clone())
                    } else {
                        remove_partial(&jobs[i].out);
                        Err(JobFailure {
                            label: jobs[i].label.clone(),
                            task: Some(format!("pid {}", child.id())),
                            exit_code: status.code(),
                            message: if status.success() {
                                no_run_message(&jobs[i].out)
                            } else {
                                last_error(&log)
                            },
                            log: Some(log.display().to_string()),
                        })
                    });
                }
                Ok(None) => still.push((i, child, log)),
                Err(e) => {
                    still.push((i, child, log));
                    stop(&mut still);
                    return Err(ExecError::Io {
                        path: PathBuf::from(&commands[i][0]),
                        source: e,
                    });
                }
            }
        }
        running = still;
        let done = results.iter().flatten().filter(|r| r.is_ok()).count();
        let failed = results.iter().flatten().filter(|r| r.is_err()).count();
        let tally = Tally {
            total,
            pending: total - next,
            running: running.len(),
            done,
            failed,
        };
        if last_tally != Some(tally) {
            progress.tasks(&tally);
            last_tally = Some(tally);
        }
        if running.is_empty() && next == total {
            break;
        }
        std::thread::sleep(POLL);
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every job finished"))
        .collect())
}

/// Trainings this process started and that are still running, for [`stop_children`].
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn remember(pid: u32) {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
}

fn forget(pid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| *p != pid);
}

/// Ends the trainings still running when the executor gives up on the others.
fn stop(running: &mut Vec<(usize, Child, PathBuf)>) {
    for (_, child, _) in running.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
        forget(child.id());
    }
    running.clear();
}

/// Ends (SIGTERM) every training this process started and that still runs, and returns how
/// many. For an interrupt or termination handler: no training goes on writing into a
/// directory that is being removed.
pub fn stop_children() -> usize {
    let pids: Vec<u32> = CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
        .collect();
    for pid in &pids {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    pids.len()
}

/// Starts one job, its stdout and stderr into `log`.
fn spawn(command: &[String], log: &Path) -> Result<Child, ExecError> {
    let io = |e| ExecError::Io {
        path: log.to_path_buf(),
        source: e,
    };
    let out = File::create(log).map_err(io)?;
    let err = out.try_clone().map_err(io)?;
    Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| ExecError::Spawn {
            program: PathBuf::from(&command[0]),
            source: e,
        })
}
