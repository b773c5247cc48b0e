//! Executors: the same fix whether its trainings run in this process, in parallel processes of
//! the binary, or fail; and the slurm executor's one-line error on a machine without Slurm.

use std::path::{Path, PathBuf};

use nd_remedy::{DiagnoseOptions, Executor, FixOptions, FixReport, Original};
use serde_json::Value;

use crate::util::{config, json, stderr, TestDir};

/// Fixes the run at `dir` through the library, with `executor`, as `fix --seeds 2` does.
fn fix_with(dir: &Path, executor: Executor) -> FixReport {
    let run = nd_train::Run::open(dir).expect("a run");
    let data = nd_data::load(&run.spec.data, Path::new(".")).expect("its data");
    let device = nd_train::device(run.spec.train.backend).expect("a device");
    let initial = run
        .network(nd_train::Stage::Initial, &data, &device)
        .expect("initial weights");
    let trained = run
        .network(nd_train::Stage::Final, &data, &device)
        .expect("final weights");
    let options = DiagnoseOptions::default();
    let diagnosis = nd_remedy::diagnose_networks(
        &dir.display().to_string(),
        &run.spec,
        &data,
        Some(&initial),
        &trained,
        &nd_remedy::history_of(&run),
        &options,
        &device,
    );
    let original = Original {
        dir,
        spec: &run.spec,
        data: &data,
        diagnosis: &diagnosis,
        train_seconds: run.summary.seconds,
        start: None,
    };
    let fix_options = FixOptions {
        candidates: 3,
        extra: Vec::new(),
        seeds: 2,
        diagnose: options,
        force: false,
        retrain_original: false,
        launch: nd_remedy::Launch::Wait,
        budget: None,
        executor,
    };
    nd_remedy::fix(&original, &fix_options, &device, &mut nd_executor::Quiet).expect("a fix")
}

/// A run's metrics without their wall times.
fn metrics_without_seconds(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("metrics.jsonl")
        .lines()
        .map(|line| {
            let mut v: Value = serde_json::from_str(line).expect("json");
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

/// A burnpack file's tensor data: everything after its metadata (magic, version, a
/// little-endian u32 length, then the metadata). The metadata holds each parameter's
/// `ParamId`, which burn draws at random whenever a module is built, so two files of the same
/// weights differ there and nowhere else.
fn tensor_bytes(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..4],
        b"NRUB",
        "{} is not a burnpack file",
        path.display()
    );
    let len = u32::from_le_bytes(bytes[6..10].try_into().unwrap()) as usize;
    bytes[10 + len..].to_vec()
}

/// The run directories of a fix directory (no `jobs`, no `fixed.toml`).
fn runs_of(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("a fix directory")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "jobs" && n != "fixed.toml")
        .collect();
    names.sort();
    names
}

#[test]
fn parallel_processes_write_the_same_runs_and_verdicts_as_training_in_process() {
    let t = TestDir::new();
    let spec = config("broken/digits-dying-relu.toml");
    // Two copies of one run (same spec and seed: the same weights), one fixed in this
    // process, one by the binary in two processes at once.
    t.train(&spec, "inproc", &["--epochs", "4"]);
    t.train(&spec, "procs", &["--epochs", "4"]);
    let inproc = fix_with(&t.join("inproc"), Executor::InProcess);
    let out = t.cmd(&[
        "fix", "procs", "--seeds", "2", "--jobs", "2", "--format", "json",
    ]);
    let procs = json(&out);
    assert_eq!(procs["executor"], "local (2 jobs at once)");
    assert_eq!(inproc.executor, "in-process");
    assert!(!inproc.candidates.is_empty());
    let candidates = procs["candidates"].as_array().expect("candidates");
    assert_eq!(candidates.len(), inproc.candidates.len());
    for (a, b) in inproc.candidates.iter().zip(candidates) {
        assert_eq!(a.candidate.label, b["candidate"]["label"]);
        assert_eq!(a.verdict.as_str(), b["verdict"], "{}", a.candidate.label);
        // Byte for byte: the same f64 whatever ran the training.
        let b_primary: Vec<f64> =
            serde_json::from_value(b["outcome"]["metrics"]["primary"].clone()).unwrap();
        assert_eq!(
            a.outcome.metrics.primary, b_primary,
            "{}",
            a.candidate.label
        );
    }
    let b_original: Vec<f64> =
        serde_json::from_value(procs["original"]["metrics"]["primary"].clone()).unwrap();
    assert_eq!(inproc.original.metrics.primary, b_original);
    // Every run the same, weights and history, bit for bit.
    let (a, b) = (t.join("inproc.fix"), t.join("procs.fix"));
    let runs = runs_of(&a);
    assert_eq!(runs, runs_of(&b));
    assert!(runs.len() >= 3, "{runs:?}");
    for run in &runs {
        for file in ["initial.bpk", "final.bpk"] {
            assert!(
                tensor_bytes(&a.join(run).join(file)) == tensor_bytes(&b.join(run).join(file)),
                "{run}/{file}: the weights differ between in-process and local processes"
            );
        }
        assert_eq!(
            std::fs::read_to_string(a.join(run).join("config.toml")).unwrap(),
            std::fs::read_to_string(b.join(run).join("config.toml")).unwrap(),
            "{run}/config.toml"
        );
        assert_eq!(
            metrics_without_seconds(&a.join(run).join("metrics.jsonl")),
            metrics_without_seconds(&b.join(run).join("metrics.jsonl")),
            "{run}/metrics.jsonl"
        );
    }
    assert_eq!(
        std::fs::read_to_string(a.join("fixed.toml")).ok(),
        std::fs::read_to_string(b.join("fixed.toml")).ok()
    );
    t.assert_no_partial();
}

#[test]
fn a_failed_training_is_reported_with_its_log_and_the_other_candidates_are_judged() {
    let t = TestDir::new();
    t.train(
        &config("broken/digits-dying-relu.toml"),
        "run",
        &["--epochs", "3"],
    );
    // A stand-in for the binary that fails the leaky ReLU candidate's jobs, as a node that
    // runs out of memory would, and runs every other job for real.
    let script = t.join("flaky.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif grep -q leaky_relu \"$2\"; then echo 'error: out of memory (simulated)' >&2; exit 3; fi\nexec '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_neuron-doctor")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let report = fix_with(
        &t.join("run"),
        Executor::Local {
            program: script,
            jobs: 2,
        },
    );
    assert_eq!(report.failed.len(), 2, "{:#?}", report.failed);
    for failure in &report.failed {
        assert!(failure.label.contains("leaky_relu"), "{failure}");
        assert_eq!(failure.exit_code, Some(3));
        assert_eq!(failure.message, "error: out of memory (simulated)");
        let log = PathBuf::from(failure.log.as_deref().expect("a log"));
        assert!(
            log.starts_with(t.join("run.fix").join("jobs")),
            "{}",
            log.display()
        );
        assert!(std::fs::read_to_string(&log)
            .unwrap()
            .contains("out of memory"));
    }
    assert!(
        report
            .candidates
            .iter()
            .all(|c| !c.candidate.label.contains("leaky_relu")),
        "the failed candidate is not judged"
    );
    assert!(!report.candidates.is_empty(), "the others are");
    t.assert_no_partial();
}

#[test]
fn slurm_without_sbatch_is_a_one_line_error_naming_it() {
    let t = TestDir::new();
    t.train(
        &config("broken/digits-dying-relu.toml"),
        "run",
        &["--epochs", "2"],
    );
    let empty = t.join("no-slurm-here");
    std::fs::create_dir(&empty).unwrap();
    let out = t
        .command(&["fix", "run", "--executor", "slurm", "-q"])
        .env("PATH", &empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("`sbatch` not found"), "{err}");
    // Nothing half-written is left, and no fix directory.
    assert!(!t.join("run.fix").exists());
    t.assert_no_partial();
}

#[test]
fn jobs_zero_and_jobs_on_slurm_are_refused() {
    let t = TestDir::new();
    t.train(
        &config("broken/digits-dying-relu.toml"),
        "run",
        &["--epochs", "1"],
    );
    let out = t.expect(&["fix", "run", "--jobs", "0"], 2);
    assert!(stderr(&out).contains("--jobs 0"), "{}", stderr(&out));
    let out = t.expect(&["fix", "run", "--executor", "slurm", "--jobs", "2"], 2);
    assert!(
        stderr(&out).contains("--jobs is for --executor local"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_wait_and_collect_are_refused_where_they_cannot_work_and_leave_nothing() {
    let t = TestDir::new();
    t.train(
        &config("broken/digits-dying-relu.toml"),
        "run",
        &["--epochs", "1"],
    );
    // Local trainings end with the process: nothing to come back for.
    let out = t.expect(&["fix", "run", "--no-wait", "-q"], 2);
    assert!(
        stderr(&out).contains("--no-wait needs --executor slurm"),
        "{}",
        stderr(&out)
    );
    assert!(!t.join("run.fix").exists());
    // Nothing was submitted for this run.
    let out = t.expect(&["fix", "run", "--collect", "-q"], 2);
    let err = stderr(&out);
    assert!(
        err.contains("run.fix: no submitted fix to collect"),
        "{err}"
    );
    assert!(err.contains("--no-wait"), "{err}");
    // --retry-failed belongs to --collect, and --collect does not go with --no-wait.
    t.expect(&["fix", "run", "--retry-failed"], 2);
    t.expect(&["fix", "run", "--collect", "--no-wait"], 2);
    assert!(!t.join("run.fix").exists());
    t.assert_no_partial();
}

#[test]
fn a_fix_directory_whose_array_still_runs_is_not_replaced_even_with_force() {
    let t = TestDir::new();
    t.train(
        &config("broken/digits-dying-relu.toml"),
        "run",
        &["--epochs", "1"],
    );
    // Stand-ins for Slurm's client commands: sbatch accepts the array as job 77 (nothing
    // runs), squeue reports task 0 of it running, or nothing once QUEUE is empty.
    let bin = t.join("fake-slurm");
    std::fs::create_dir(&bin).unwrap();
    let script = |name: &str, body: &str| {
        use std::os::unix::fs::PermissionsExt;
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    script("sbatch", "echo 77");
    script("squeue", "cat \"$QUEUE\" 2>/dev/null; exit 0");
    let queue = t.join("queue.txt");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str], queued: &str| {
        std::fs::write(&queue, queued).unwrap();
        t.command(args)
            .env("PATH", &path)
            .env("QUEUE", &queue)
            .output()
            .unwrap()
    };
    let out = run(
        &[
            "fix",
            "run",
            "--executor",
            "slurm",
            "--no-wait",
            "--seeds",
            "1",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(t.join("run.fix/jobs/slurm.json").is_file());
    let out = run(
        &[
            "fix",
            "run",
            "--executor",
            "slurm",
            "--no-wait",
            "--seeds",
            "1",
            "--force",
        ],
        "0 RUNNING\n",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("job array 77 still has 1 task(s) queued or running"),
        "{err}"
    );
    assert!(
        t.join("run.fix/jobs/slurm.json").is_file(),
        "left as it was"
    );
    // Once the queue is empty it may be replaced.
    let out = run(
        &[
            "fix",
            "run",
            "--executor",
            "slurm",
            "--no-wait",
            "--seeds",
            "1",
            "--force",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
