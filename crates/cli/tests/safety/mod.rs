//! Nothing lost, nothing claimed that is not so (issue 17): `--force`, `--report` and `--try`
//! never destroy a file that is not the run being written, valid-looking specs that cannot fit
//! are refused before anything is allocated, and what the doctor prints is what it measured.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use crate::util::{assert_bad_input, config, json, stderr, stdout, TestDir};

/// A tiny spec that trains in a blink: the property test runs many commands.
const TINY: &str = "[data]\ndataset = \"iris\"\n\n[model]\nhidden = [6]\n\n[train]\nepochs = 2\n";

/// `fix` flags for one quick hand-added candidate and nothing else: one training per command.
const ONE_CANDIDATE: [&str; 6] = [
    "--candidates",
    "0",
    "--seeds",
    "1",
    "--try",
    "model.activation=tanh",
];

/// Runs a command that must do its job: exit 0 (healthy, cured) or 1 (findings, no cure).
fn ran(t: &TestDir, args: &[&str]) -> std::process::Output {
    let out = t.cmd(args);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "neuron-doctor {}\n{}",
        args.join(" "),
        crate::util::stderr(&out)
    );
    out
}

/// A folder of the user's own, with a subfolder: what `--force` must never delete.
fn user_folder(t: &TestDir, rel: &str) {
    t.write(&format!("{rel}/notes.md"), "my notes\n");
    t.write(&format!("{rel}/sub/data.csv"), "a,b\n1,2\n");
}

/// Every file below `dir` with its bytes, by path relative to `dir`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("list directory") {
            let entry = entry.expect("directory entry");
            let path = entry.path();
            if entry.file_type().expect("file type").is_dir() {
                stack.push(path);
            } else {
                let bytes = fs::read(&path).expect("read file");
                files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    files
}

/// Asserts that every file of `before` is still there, byte for byte, except below `allowed`.
fn assert_kept(t: &TestDir, before: &BTreeMap<PathBuf, Vec<u8>>, allowed: &[PathBuf], what: &str) {
    let after = snapshot(t.path());
    for (path, bytes) in before {
        if allowed.iter().any(|a| path.starts_with(a)) {
            continue;
        }
        match after.get(path) {
            Some(now) => assert!(now == bytes, "{what}: {} changed", path.display()),
            None => panic!("{what}: {} was deleted", path.display()),
        }
    }
}

#[test]
fn force_refuses_to_replace_a_folder_that_is_not_a_run() {
    let t = TestDir::new();
    t.write("spec.toml", TINY);
    user_folder(&t, "mine");
    let before = snapshot(t.path());
    for command in [
        vec!["train", "spec.toml", "--out", "mine", "--force", "-q"],
        vec![
            "checkup",
            "spec.toml",
            "--out",
            "mine",
            "--force",
            "-q",
            "--seeds",
            "1",
        ],
    ] {
        let out = t.cmd(&command);
        assert_bad_input(&out, &["mine", "not a neuron-doctor run", "notes.md"]);
        assert_kept(&t, &before, &[], &command.join(" "));
        t.assert_no_partial();
    }
    // A run the user added a file to is theirs too.
    t.train(&config("digits-relu.toml"), "run", &["--epochs", "1"]);
    t.write("run/my-notes.txt", "keep me");
    let out = t.cmd(&["train", "spec.toml", "--out", "run", "--force", "-q"]);
    assert_bad_input(&out, &["run", "my-notes.txt"]);
    assert_eq!(t.read("run/my-notes.txt"), "keep me");
}

#[test]
fn force_refuses_a_plain_file_up_front() {
    let t = TestDir::new();
    t.write("spec.toml", TINY);
    t.write("results.txt", "precious");
    for force in [true, false] {
        let mut args = vec!["train", "spec.toml", "--out", "results.txt", "-q"];
        if force {
            args.push("--force");
        }
        let out = t.cmd(&args);
        assert_bad_input(&out, &["results.txt", "is a file"]);
        assert_eq!(t.read("results.txt"), "precious");
        assert_eq!(t.entries(""), ["results.txt", "spec.toml"]);
    }
}

#[test]
fn force_still_replaces_a_run_and_a_fix_directory() {
    let t = TestDir::new();
    t.write("spec.toml", TINY);
    t.train("spec.toml", "run", &[]);
    t.train("spec.toml", "run", &["--force", "--seed", "7"]);
    assert_eq!(t.read_json("run/summary.json")["seed"], 7);
    let args = [&["fix", "run", "-q"][..], &ONE_CANDIDATE].concat();
    ran(&t, &args);
    t.assert_run("run.fix/activation-tanh");
    let mut forced = args.to_vec();
    forced.push("--force");
    ran(&t, &forced);
    t.assert_run("run.fix/activation-tanh");
    t.assert_no_partial();
    // The executor's job files are its own; a file of the user's among them is not.
    assert!(t.join("run.fix/jobs/0.log").is_file());
    t.write("run.fix/jobs/my-notes.txt", "mine");
    let out = t.cmd(&forced);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("it holds jobs/, which neuron-doctor did not write"),
        "{}",
        stderr(&out)
    );
    assert_eq!(t.read("run.fix/jobs/my-notes.txt"), "mine");
}

#[test]
fn a_report_never_overwrites_a_run_file_or_a_foreign_file() {
    let t = TestDir::new();
    t.write("spec.toml", TINY);
    t.train("spec.toml", "run", &[]);
    t.write("notes.html", "<p>mine</p>");
    let before = snapshot(t.path());
    for (report, names) in [
        (
            "run/final.bpk",
            vec!["--report run/final.bpk", "inside the run directory"],
        ),
        (
            "run/config.toml",
            vec!["--report run/config.toml", "inside the run directory"],
        ),
        (
            "run/new.html",
            vec!["--report run/new.html", "inside the run directory"],
        ),
        (
            "notes.html",
            vec!["--report notes.html", "not a neuron-doctor report"],
        ),
        (
            "spec.toml",
            vec!["--report spec.toml", "not a neuron-doctor report"],
        ),
    ] {
        let out = t.cmd(&["diagnose", "run", "--report", report]);
        assert_bad_input(&out, &names);
        assert_kept(&t, &before, &[], report);
    }
    // A report it wrote itself is replaced, as a rerun expects.
    ran(&t, &["diagnose", "run", "--report", "report.html"]);
    ran(&t, &["diagnose", "run", "--report", "report.html"]);
    assert!(t.read("report.html").contains("neuron-doctor"));
}

#[test]
fn degenerate_and_unfair_try_values_are_bad_input() {
    let t = TestDir::new();
    t.write("spec.toml", TINY);
    t.train("spec.toml", "run", &[]);
    let before = snapshot(t.path());
    for (value, names) in [
        ("", vec!["--try", "empty"]),
        (" , ", vec!["--try", "empty"]),
        ("=relu", vec!["--try", "without a key"]),
        (
            "model.activation=",
            vec!["--try", "no value", "model.activation"],
        ),
        (
            "model.activation=tanh,model.activation=elu",
            vec!["--try", "twice"],
        ),
        (
            "data.dataset=digits",
            vec!["--try", "data.dataset", "original's data"],
        ),
        ("train.seed=3", vec!["--try", "train.seed", "--seeds"]),
        ("train.epochs=50", vec!["--try", "train.epochs", "budget"]),
        ("name=other", vec!["--try", "name"]),
    ] {
        let out = t.cmd(&["fix", "run", "-q", "--force", "--try", value]);
        assert_bad_input(&out, &names);
        assert_kept(&t, &before, &[], value);
        assert!(!t.join("run.fix").exists(), "{value:?} wrote run.fix");
    }
    for flag in [["--seeds", "0"], ["--revive-epochs", "0"]] {
        let out = t.cmd(&["fix", "run", "-q", flag[0], flag[1]]);
        assert_bad_input(&out, &[flag[0]]);
    }
}

#[test]
fn fix_of_dot_inside_a_run_writes_beside_the_run() {
    let t = TestDir::new();
    t.write("spec.toml", TINY);
    t.train("spec.toml", "run", &[]);
    let out = t
        .command(&[&["fix", ".", "-q"][..], &ONE_CANDIDATE].concat())
        .current_dir(t.join("run"))
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        crate::util::stderr(&out)
    );
    assert!(!t.join("run/run.fix").exists());
    assert!(!t.join("run/..fix").exists());
    t.assert_run("run.fix/activation-tanh");
    // And the run itself still holds only its own files.
    let mut names = t.entries("run");
    names.retain(|n| n != "health.jsonl");
    assert_eq!(names, crate::util::RUN_FILES);
}

#[test]
fn specs_too_large_for_memory_are_refused_naming_the_key() {
    let t = TestDir::new();
    for (spec, key) in [
        (
            "[data]\ndataset = \"digits\"\n\n[model]\nhidden = [65536, 65536]\n",
            "model.hidden",
        ),
        (
            "[data]\ndataset = \"spirals\"\nsamples = 100000000000\n\n[model]\nhidden = [4]\n",
            "data.samples",
        ),
        (
            // Fits on the spec alone (one input); the 784 pixels of mnist push it over.
            "[data]\ndataset = \"mnist\"\n\n[model]\nhidden = [1048576]\n",
            "model.hidden",
        ),
    ] {
        t.write("big.toml", spec);
        let out = t.cmd(&["train", "big.toml", "-q", "--out", "run"]);
        assert_bad_input(&out, &["big.toml", key]);
        assert!(!t.join("run").exists());
        t.assert_no_partial();
    }
}

#[test]
fn names_too_long_for_the_file_system_are_refused_naming_the_key() {
    let t = TestDir::new();
    let long = "n".repeat(230);
    t.write("spec.toml", format!("name = \"{long}\"\n{TINY}"));
    assert_bad_input(
        &t.cmd(&["train", "spec.toml", "-q"]),
        &["spec.toml", "`name`", "180 bytes"],
    );
    t.write("spec.toml", TINY);
    assert_bad_input(
        &t.cmd(&["train", "spec.toml", "-q", "--out", &long]),
        &["--out", "230 bytes"],
    );
    t.assert_no_partial();
    assert_eq!(t.entries(""), ["spec.toml"]);
}

#[test]
fn an_empty_or_cut_history_is_a_corrupt_run() {
    let t = TestDir::new();
    t.write("spec.toml", TINY);
    t.train("spec.toml", "run", &[]);
    let metrics = t.read("run/metrics.jsonl");
    t.write("run/metrics.jsonl", "");
    assert_bad_input(
        &t.cmd(&["diagnose", "run"]),
        &["metrics.jsonl", "0 epoch(s)"],
    );
    let first = metrics.lines().next().unwrap();
    t.write("run/metrics.jsonl", format!("{first}\n"));
    assert_bad_input(
        &t.cmd(&["diagnose", "run"]),
        &["metrics.jsonl", "1 epoch(s)", "says 2"],
    );
}

#[test]
fn weights_replaced_after_training_are_refused() {
    let t = TestDir::new();
    t.write("spec.toml", TINY);
    t.train("spec.toml", "run", &[]);
    t.train("spec.toml", "other", &["--seed", "9"]);
    assert_eq!(
        t.read_json("run/summary.json")["sha256"]["final.bpk"]
            .as_str()
            .map(str::len),
        Some(64)
    );
    // Same shapes, other numbers: it loads fine, so only the checksum can tell.
    fs::copy(t.join("other/final.bpk"), t.join("run/final.bpk")).unwrap();
    assert_bad_input(&t.cmd(&["diagnose", "run"]), &["final.bpk", "SHA-256"]);
    assert_bad_input(&t.cmd(&["fix", "run", "-q"]), &["final.bpk", "SHA-256"]);
}

#[test]
fn a_nan_model_prints_no_gradient_ratio_it_did_not_measure() {
    let t = TestDir::new();
    t.write(
        "spec.toml",
        "[data]\ndataset = \"digits\"\n\n[model]\nhidden = [16, 16]\n\n[train]\nepochs = 2\noptimizer = \"sgd\"\nlearning_rate = 1e30\n",
    );
    t.train("spec.toml", "run", &[]);
    let text = stdout(&t.cmd(&["diagnose", "run"]));
    assert!(!text.contains("ratio (per weight): 1.000"), "{text}");
    assert!(text.contains("not measurable"), "{text}");
}

#[test]
fn list_checks_as_json_is_json() {
    let t = TestDir::new();
    let checks = json(&t.expect(&["diagnose", "--list-checks", "--format", "json"], 0));
    let checks = checks.as_array().expect("an array");
    assert!(checks.iter().any(|c| c["code"] == "dead-units"));
    assert!(checks
        .iter()
        .all(|c| c["summary"].is_string() && c["remedies"].is_string()));
}

/// The paths a random command line may name: the user's files, the run, places inside it,
/// new places, and places whose parent does not exist.
const PATHS: &[&str] = &[
    "notes",
    "notes/sub",
    "plain.txt",
    "spec.toml",
    "run",
    "run/final.bpk",
    "run/config.toml",
    "run.fix",
    "run.report.html",
    "mine.html",
    "new",
    "missing/deeper",
    ".",
];

/// `--try` values, the fair, the unfair and the degenerate.
const TRIES: &[&str] = &[
    "",
    ",",
    "=x",
    "model.activation=tanh",
    "model.hidden=[4]",
    "data.dataset=digits",
    "train.seed=3",
];

#[derive(Debug, Clone)]
enum Line {
    Train {
        out: usize,
        force: bool,
    },
    Diagnose {
        report: usize,
    },
    Fix {
        try_: usize,
        report: Option<usize>,
        force: bool,
    },
    Checkup {
        out: usize,
        report: Option<usize>,
        force: bool,
    },
}

fn line() -> impl Strategy<Value = Line> {
    let path = 0..PATHS.len();
    prop_oneof![
        (path.clone(), any::<bool>()).prop_map(|(out, force)| Line::Train { out, force }),
        path.clone().prop_map(|report| Line::Diagnose { report }),
        (
            0..TRIES.len(),
            proptest::option::of(path.clone()),
            any::<bool>()
        )
            .prop_map(|(try_, report, force)| Line::Fix {
                try_,
                report,
                force
            }),
        (path.clone(), proptest::option::of(path), any::<bool>())
            .prop_map(|(out, report, force)| Line::Checkup { out, report, force }),
    ]
}

impl Line {
    fn args(&self) -> Vec<String> {
        let s = |x: &str| x.to_string();
        let mut args: Vec<String> = match self {
            Line::Train { out, .. } => vec![s("train"), s("spec.toml"), s("--out"), s(PATHS[*out])],
            Line::Diagnose { report } => {
                vec![s("diagnose"), s("run"), s("--report"), s(PATHS[*report])]
            }
            Line::Fix { try_, report, .. } => {
                let mut a = vec![
                    s("fix"),
                    s("run"),
                    s("--candidates"),
                    s("0"),
                    s("--seeds"),
                    s("1"),
                ];
                a.extend([s("--try"), s(TRIES[*try_])]);
                if let Some(r) = report {
                    a.extend([s("--report"), s(PATHS[*r])]);
                }
                a
            }
            Line::Checkup { out, report, .. } => {
                let mut a = vec![s("checkup"), s("spec.toml"), s("--out"), s(PATHS[*out])];
                a.extend(ONE_CANDIDATE.map(s));
                match report {
                    Some(r) => a.extend([s("--report"), s(PATHS[*r])]),
                    None => a.push(s("--no-report")),
                }
                a
            }
        };
        if matches!(
            self,
            Line::Train { force: true, .. }
                | Line::Fix { force: true, .. }
                | Line::Checkup { force: true, .. }
        ) {
            args.push(s("--force"));
        }
        args.push(s("-q"));
        args
    }

    /// What the command may change, judged before it runs: the run it writes (when that is
    /// absent or a run), its fix directory (likewise), and the report (when absent or one of
    /// the doctor's own).
    fn allowed(&self, t: &TestDir) -> Vec<PathBuf> {
        let replaceable = |rel: &str| {
            let p = t.join(rel);
            !p.exists() || p.join("summary.json").is_file() || rel.ends_with(".fix")
        };
        let mut allowed = Vec::new();
        let run = |rel: &str, allowed: &mut Vec<PathBuf>| {
            if rel != "." && replaceable(rel) {
                allowed.push(PathBuf::from(rel));
                allowed.push(PathBuf::from(format!("{rel}.fix")));
            }
        };
        match self {
            Line::Train { out, .. } => run(PATHS[*out], &mut allowed),
            Line::Fix { .. } => allowed.push(PathBuf::from("run.fix")),
            Line::Checkup { out, .. } => {
                run(PATHS[*out], &mut allowed);
                allowed.push(PathBuf::from(format!("{}.report.html", PATHS[*out])));
            }
            Line::Diagnose { .. } => {}
        }
        let report = match self {
            Line::Diagnose { report } => Some(*report),
            Line::Fix { report, .. } | Line::Checkup { report, .. } => *report,
            Line::Train { .. } => None,
        };
        if let Some(r) = report {
            let p = t.join(PATHS[r]);
            let ours = fs::read(&p)
                .is_ok_and(|b| String::from_utf8_lossy(&b).contains("content=\"neuron-doctor "));
            if !p.exists() || ours {
                allowed.push(PathBuf::from(PATHS[r]));
            }
        }
        allowed
    }
}

/// The starting directory every random command line runs in, built once (it holds a trained
/// run) and copied for each case.
fn template() -> &'static TestDir {
    static TEMPLATE: std::sync::OnceLock<TestDir> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let t = TestDir::new();
        t.write("spec.toml", TINY);
        user_folder(&t, "notes");
        t.write("plain.txt", "plain");
        t.train("spec.toml", "run", &[]);
        ran(&t, &["diagnose", "run", "--report", "mine.html"]);
        t
    })
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the command line, no file outside what it may write changes, byte for byte,
    /// no temporary directory survives, and a refused command changes nothing at all.
    #[test]
    fn no_command_line_changes_a_file_it_does_not_own(line in line()) {
        let t = TestDir::new();
        copy_dir(template().path(), t.path());
        let before = snapshot(t.path());
        // Judged on the directory as it was before the command ran.
        let may_write = line.allowed(&t);
        let args = line.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = t.cmd(&args);
        let code = out.status.code();
        prop_assert!(matches!(code, Some(0..=2)), "{args:?}: {out:?}");
        let allowed = if code == Some(2) { Vec::new() } else { may_write };
        assert_kept(&t, &before, &allowed, &args.join(" "));
        t.assert_no_partial();
    }
}
