//! `cargo xtask ci`'s `slurm` step: a one-node Slurm cluster started for real on this machine,
//! a `fix` run through it, and the same `fix` with the local executor, whose verdicts and
//! metrics must be the same; then the same fix submitted with `--no-wait`, a finished task's
//! run lost, `--collect` failing on it and `--collect --retry-failed` resubmitting it, ending
//! with the local report again; then the daemons it started are stopped.
//!
//! The cluster is the project's own: its `slurm.conf`, state, spool, logs and pid files live in
//! `target/xtask-slurm/`, and every Slurm command reads that file through `$SLURM_CONF`, so
//! nothing under `/etc/slurm` is written and a cluster already configured on the machine is
//! not touched. munge runs with the key Debian's package made (`/etc/munge/munge.key`); where
//! munged is not running it is started here and stopped at the end. The facts it relies on
//! are in the shared notes on a one-node Slurm cluster (Debian's `slurm-wlm` 22.05 and
//! `munge`, no systemd, as root).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::step::{Failure, Runner};

const NAME: &str = "slurm";
const SPEC: &str = "configs/broken/digits-dying-relu.toml";
/// How long the cluster may take to show its node idle.
const START_LIMIT: Duration = Duration::from_secs(60);

/// Whether Slurm's and munge's programs are installed.
pub fn installed() -> bool {
    ["sbatch", "squeue", "slurmctld", "slurmd", "munged", "munge"]
        .iter()
        .all(|p| which(p).is_some())
}

/// `program` on the PATH, or in the system directories root's PATH has.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// `cargo xtask slurm`: the step alone, with its summary.
pub fn run() -> Result<(), Failure> {
    let mut runner = Runner::new();
    let result = ci_step(&mut runner);
    runner.summary(&[]);
    result
}

/// The step: skipped (saying why) without Slurm or root, else the check.
pub fn ci_step(runner: &mut Runner) -> Result<(), Failure> {
    if !installed() {
        runner.skip(
            NAME,
            "Slurm is not installed (Debian's slurm-wlm and munge; the packages step installs them as root)",
        );
        return Ok(());
    }
    if !crate::system::is_root() {
        runner.skip(NAME, "starting slurmctld, slurmd and munged needs root");
        return Ok(());
    }
    runner.run_custom(
        NAME,
        &format!("start a one-node cluster; train {SPEC}; fix --executor slurm and fix --executor local --jobs 2 must agree"),
        "target/xtask-slurm/ holds the cluster's logs (slurmctld.log, slurmd.log) and the runs with each task's log in run.fix/jobs/",
        check,
    )
}

fn check(runner: &Runner) -> Result<(), String> {
    let root = runner.root();
    let binary = crate::report::target_dir(root)
        .join("debug")
        .join(format!("neuron-doctor{}", std::env::consts::EXE_SUFFIX));
    if !binary.is_file() {
        // Built as the test step builds it, so that after it this is a no-op.
        let status = runner
            .cargo_command()
            .args(crate::report::BUILD)
            .status()
            .map_err(|e| format!("could not start cargo: {e}"))?;
        if !status.success() {
            return Err(format!(
                "`cargo {}` ended with {status}",
                crate::report::BUILD.join(" ")
            ));
        }
    }
    let dir = crate::report::target_dir(root).join("xtask-slurm");
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = Cluster::start(&dir)?;
    let result = fix_both_ways(&binary, &root.join(SPEC), &dir, &cluster);
    let stopped = cluster.stop();
    result?;
    stopped
}

/// Trains one run into two directories, fixes one locally and one through the cluster, and
/// compares the reports.
fn fix_both_ways(binary: &Path, spec: &Path, dir: &Path, cluster: &Cluster) -> Result<(), String> {
    let mut reports = Vec::new();
    let mut seconds = Vec::new();
    for (name, executor) in [
        ("local", &["--executor", "local", "--jobs", "2"][..]),
        ("slurm", &["--executor", "slurm"][..]),
    ] {
        let work = dir.join(name);
        std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
        doctor(
            binary,
            &work,
            cluster,
            &[
                "train",
                &spec.display().to_string(),
                "--out",
                "run",
                "--epochs",
                "4",
                "-q",
            ],
            &[0],
        )?;
        let mut args = vec!["fix", "run", "--seeds", "2", "--format", "json", "-q"];
        args.extend_from_slice(executor);
        let start = Instant::now();
        let json = doctor(binary, &work, cluster, &args, &[0, 1])?;
        seconds.push(start.elapsed().as_secs_f64());
        reports.push(json);
    }
    // Each key is on its own line in the pretty JSON: leave out wall times and the executor's
    // name, and the rest (verdicts, every seed's metric, findings, paths) must be equal.
    let comparable = |json: &str| -> Vec<String> {
        json.lines()
            .filter(|l| {
                let key = l.trim_start();
                !(key.starts_with("\"seconds\"")
                    || key.starts_with("\"train_seconds\"")
                    || key.starts_with("\"executor\""))
            })
            .map(String::from)
            .collect()
    };
    let same = |what: &str, other: &str| -> Result<(), String> {
        let (local, slurm) = (comparable(&reports[0]), comparable(other));
        if let Some((i, (a, b))) = local
            .iter()
            .zip(&slurm)
            .enumerate()
            .find(|(_, (a, b))| a != b)
        {
            return Err(format!(
                "{what}'s report differs from the local one's at line {}: {a:?} vs {b:?}",
                i + 1
            ));
        }
        if local.len() != slurm.len() || !other.contains("\"executor\": \"slurm\"") {
            return Err(format!("{what}'s report is not the local one's"));
        }
        Ok(())
    };
    same("the slurm executor", &reports[1])?;
    // Submitted without waiting, a task's run lost (as a node failing after its task ended
    // would lose it), collected (that candidate unjudged), collected again resubmitting only
    // the failed task: then the report is the local one's again.
    let work = dir.join("no-wait");
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let spec_arg = spec.display().to_string();
    let train = ["train", &spec_arg, "--out", "run", "--epochs", "4", "-q"];
    doctor(binary, &work, cluster, &train, &[0])?;
    let fix = ["fix", "run", "--seeds", "2", "--executor", "slurm", "-q"];
    let submitted = doctor(
        binary,
        &work,
        cluster,
        &[&fix[..], &["--no-wait"]].concat(),
        &[0],
    )?;
    if !submitted.contains("--collect") {
        return Err(format!(
            "--no-wait did not say how to collect: {submitted:?}"
        ));
    }
    let lost = work.join("run.fix/original@seed-43");
    let status = wait_for_exit_file(&work.join("run.fix/jobs/0.exit"))?;
    std::fs::remove_dir_all(&lost)
        .map_err(|e| format!("{}: {e} (task 0 exited {status})", lost.display()))?;
    let json = ["--format", "json"];
    let collected = doctor(
        binary,
        &work,
        cluster,
        &[&fix[..], &["--collect"], &json].concat(),
        &[0, 1],
    );
    match collected {
        // Exit 2, naming the lost run's task and what is missing.
        Err(e)
            if e.contains("ended with exit status: 2")
                && e.contains("original seed 43 failed (task ")
                && e.contains("no run at") => {}
        other => {
            return Err(format!(
            "collecting with the original's seed lost must fail (nothing can be judged): {other:?}"
        ))
        }
    }
    let retried = doctor(
        binary,
        &work,
        cluster,
        &[&fix[..], &["--collect", "--retry-failed"], &json].concat(),
        &[0, 1],
    )?;
    same("--no-wait, --collect --retry-failed", &retried)?;
    let tasks = std::fs::read_dir(dir.join("slurm/run.fix/jobs"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".exit"))
                .count()
        })
        .unwrap_or(0);
    println!(
        "    the same verdicts and metrics; fix took {:.1}s locally (--jobs 2) and {:.1}s as a job array of {tasks} tasks on the one-node cluster ({:.2}s more per task)",
        seconds[0],
        seconds[1],
        (seconds[1] - seconds[0]) / tasks.max(1) as f64
    );
    Ok(())
}

/// Waits (at most a minute) for a task's exit file and returns what it says.
fn wait_for_exit_file(path: &Path) -> Result<String, String> {
    let start = Instant::now();
    loop {
        if let Ok(code) = std::fs::read_to_string(path) {
            return Ok(code.trim().to_string());
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("no {} after a minute", path.display()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `neuron-doctor ARGS` in `dir` with the cluster's `SLURM_CONF`; returns its stdout.
fn doctor(
    binary: &Path,
    dir: &Path,
    cluster: &Cluster,
    args: &[&str],
    ok: &[i32],
) -> Result<String, String> {
    println!("    neuron-doctor {}", args.join(" "));
    let out = Command::new(binary)
        .args(args)
        .current_dir(dir)
        .env("SLURM_CONF", &cluster.conf)
        .output()
        .map_err(|e| format!("could not start {}: {e}", binary.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    match out.status.code() {
        Some(code) if ok.contains(&code) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        _ => Err(format!(
            "`neuron-doctor {}` ended with {}: {}",
            args.join(" "),
            out.status,
            stderr.trim()
        )),
    }
}

/// A running one-node cluster and the daemons this step started.
struct Cluster {
    conf: PathBuf,
    dir: PathBuf,
    started_munged: bool,
}

impl Cluster {
    /// Writes the cluster's config into `dir`, starts munged (where it is not running),
    /// slurmctld and slurmd, and waits for the node to be idle.
    fn start(dir: &Path) -> Result<Cluster, String> {
        let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
        for sub in ["state", "spool"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| io(&dir.join(sub), e))?;
        }
        let dir = std::fs::canonicalize(dir).map_err(|e| io(dir, e))?;
        let host = output("hostname", &["-s"])?;
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let conf = dir.join("slurm.conf");
        std::fs::write(&conf, config(&dir, &host, cpus, memory_mib()?))
            .map_err(|e| io(&conf, e))?;
        let mut cluster = Cluster {
            conf,
            dir: dir.clone(),
            started_munged: false,
        };
        if !munge_works() {
            cluster.started_munged = true;
            if let Err(e) = start_munged() {
                let _ = cluster.stop();
                return Err(e);
            }
        }
        for daemon in ["slurmctld", "slurmd"] {
            let program = which(daemon).ok_or(format!("{daemon} is not installed"))?;
            println!("    starting {daemon}");
            let status = Command::new(&program)
                .env("SLURM_CONF", &cluster.conf)
                .status()
                .map_err(|e| format!("could not start {daemon}: {e}"))?;
            if !status.success() {
                let _ = cluster.stop();
                return Err(format!(
                    "{daemon} ended with {status}; see {}/{daemon}.log",
                    dir.display()
                ));
            }
        }
        let start = Instant::now();
        loop {
            let state = Command::new("sinfo")
                .args(["--noheader", "--format=%T"])
                .env("SLURM_CONF", &cluster.conf)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            if state == "idle" {
                println!(
                    "    the node {host} is idle after {:.1}s",
                    start.elapsed().as_secs_f64()
                );
                return Ok(cluster);
            }
            if start.elapsed() > START_LIMIT {
                let _ = cluster.stop();
                return Err(format!(
                    "the node is not idle after {}s (sinfo says {state:?}); see {}/slurmctld.log",
                    START_LIMIT.as_secs(),
                    dir.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Cancels what is still queued or running, then stops the daemons this cluster started
    /// (by the process ids they wrote).
    fn stop(&self) -> Result<(), String> {
        // A step that failed half-way may leave tasks behind; their processes would outlive
        // slurmd.
        let _ = Command::new("scancel")
            .args(["--user", "root"])
            .env("SLURM_CONF", &self.conf)
            .status();
        for _ in 0..50 {
            let queue = Command::new("squeue")
                .arg("--noheader")
                .env("SLURM_CONF", &self.conf)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            if queue.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut pids = vec![self.dir.join("slurmd.pid"), self.dir.join("slurmctld.pid")];
        if self.started_munged {
            pids.push(PathBuf::from("/run/munge/munged.pid"));
        }
        for file in pids {
            let Ok(pid) = std::fs::read_to_string(&file) else {
                continue;
            };
            let pid = pid.trim();
            let _ = Command::new("kill").arg(pid).status();
            // Wait for it to go, so that a next start finds its port free.
            let gone = (0..50).any(|_| {
                std::thread::sleep(Duration::from_millis(100));
                !Path::new(&format!("/proc/{pid}")).exists()
            });
            if !gone {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
            println!(
                "    stopped {} (pid {pid})",
                file.file_stem().unwrap_or_default().to_string_lossy()
            );
        }
        Ok(())
    }
}

/// The cluster's `slurm.conf`: one node, one partition, no cgroups, no accounting; the
/// controller and the node are reached on 127.0.0.1, whatever the host name resolves to.
fn config(dir: &Path, host: &str, cpus: usize, memory_mib: u64) -> String {
    let d = dir.display();
    format!(
        "# A one-node cluster for neuron-doctor's CI (written by cargo xtask ci).\n\
         ClusterName=neuron-doctor\n\
         SlurmctldHost={host}(127.0.0.1)\n\
         SlurmUser=root\n\
         SlurmdUser=root\n\
         AuthType=auth/munge\n\
         ProctrackType=proctrack/linuxproc\n\
         TaskPlugin=task/none\n\
         SelectType=select/cons_tres\n\
         SelectTypeParameters=CR_Core\n\
         ReturnToService=2\n\
         MpiDefault=none\n\
         StateSaveLocation={d}/state\n\
         SlurmdSpoolDir={d}/spool\n\
         SlurmctldPidFile={d}/slurmctld.pid\n\
         SlurmdPidFile={d}/slurmd.pid\n\
         SlurmctldLogFile={d}/slurmctld.log\n\
         SlurmdLogFile={d}/slurmd.log\n\
         NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mib} State=UNKNOWN\n\
         PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n"
    )
}

/// A little under the machine's memory, in MiB (slurmd refuses a node with less than it is
/// said to have).
fn memory_mib() -> Result<u64, String> {
    let info =
        std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("/proc/meminfo: {e}"))?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("/proc/meminfo has no MemTotal")?;
    Ok(kib / 1024 * 9 / 10)
}

/// Whether munge encodes and decodes a credential (munged running with a key).
fn munge_works() -> bool {
    let Ok(munge) = Command::new("munge")
        .arg("-n")
        .stderr(Stdio::null())
        .output()
    else {
        return false;
    };
    Command::new("unmunge")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("piped")
                .write_all(&munge.stdout)?;
            child.wait()
        })
        .is_ok_and(|s| s.success() && munge.status.success())
}

/// Starts munged as the `munge` user, making its key and run directory where missing.
fn start_munged() -> Result<(), String> {
    let key = Path::new("/etc/munge/munge.key");
    if !key.is_file() {
        let mut bytes = vec![0u8; 1024];
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|e| format!("/dev/urandom: {e}"))?;
        std::fs::write(key, bytes).map_err(|e| format!("{}: {e}", key.display()))?;
        output("chown", &["munge:munge", "/etc/munge/munge.key"])?;
        output("chmod", &["400", "/etc/munge/munge.key"])?;
    }
    std::fs::create_dir_all("/run/munge").map_err(|e| format!("/run/munge: {e}"))?;
    output("chown", &["munge:munge", "/run/munge"])?;
    println!("    starting munged");
    output("su", &["-s", "/bin/sh", "munge", "-c", "/usr/sbin/munged"])?;
    let start = Instant::now();
    while !munge_works() {
        if start.elapsed() > Duration::from_secs(10) {
            return Err("munged started but munge -n | unmunge does not succeed".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Runs a command and returns its trimmed stdout, or says how it failed.
fn output(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{program} {}` ended with {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
