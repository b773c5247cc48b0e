//! `train`: what a run directory holds, that training is reproducible, and that an existing
//! run is only replaced on request.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{assert_bad_input, config, num, stdout, TestDir};

/// The metrics of every epoch without the wall time, as bit patterns, so that "identical"
/// means bit for bit.
fn metrics_bits(lines: &[Value]) -> Vec<Vec<(String, u64)>> {
    lines
        .iter()
        .map(|line| {
            line.as_object()
                .expect("a metrics line is an object")
                .iter()
                .filter(|(key, _)| key.as_str() != "seconds")
                .map(|(key, value)| {
                    let x = value
                        .as_f64()
                        .unwrap_or_else(|| panic!("{key} is not a number"));
                    (key.clone(), x.to_bits())
                })
                .collect()
        })
        .collect()
}

#[test]
fn healthy_digits_relu_reaches_90_percent_in_runs_by_default() {
    let t = TestDir::new();
    let out = t.expect(&["train", &config("digits-relu.toml"), "-q"], 0);
    assert!(
        stdout(&out).contains("runs/digits-relu"),
        "{}",
        stdout(&out)
    );
    let summary = t.read_json("runs/digits-relu/summary.json");
    let last = &summary["final_metrics"];
    assert!(num(last, "test_accuracy") >= 0.90, "{summary:#}");
    assert_eq!(summary["epochs_run"], 20);
    assert_eq!(summary["epochs_planned"], 20);
    assert_eq!(summary["seed"], 42);
    assert_eq!(summary["task"], "classification");
    assert_eq!(summary["dataset"], "digits");
}

#[test]
fn run_dir_holds_the_five_files() {
    let t = TestDir::new();
    t.train(&config("digits-relu.toml"), "run", &["--epochs", "2"]);
    t.assert_run("run");
    for file in ["initial.bpk", "final.bpk"] {
        assert!(
            !t.read_bytes(&format!("run/{file}")).is_empty(),
            "{file} is empty"
        );
    }
    assert!(
        t.read_bytes("run/initial.bpk") != t.read_bytes("run/final.bpk"),
        "training changed no weight"
    );
    assert_eq!(t.entries(""), ["run"]);
}

#[test]
fn config_toml_spells_out_every_default() {
    let t = TestDir::new();
    t.train(&config("digits-relu.toml"), "run", &["--epochs", "1"]);
    let text = t.read("run/config.toml");
    let doc: toml::Table = toml::from_str(&text).expect("config.toml is TOML");
    // Every section and key, most of them left to their defaults by the spec file.
    for (section, key) in [
        ("data", "standardize"),
        ("model", "kernel_size"),
        ("model", "bias_init"),
        ("model", "leaky_slope"),
        ("model", "dropout"),
        ("model", "batch_norm"),
        ("model", "output_activation"),
        ("train", "batch_size"),
        ("train", "momentum"),
        ("train", "backend"),
        ("doctor", "dead_fraction_error"),
        ("doctor", "stall_epochs"),
    ] {
        assert!(
            doc.get(section).and_then(|s| s.get(key)).is_some(),
            "config.toml lacks {section}.{key}:\n{text}"
        );
    }
    // --epochs overrides the spec, and the run records what it actually used.
    assert_eq!(doc["train"]["epochs"].as_integer(), Some(1), "{text}");
}

#[test]
fn saved_config_retrains_the_same_run() {
    let t = TestDir::new();
    t.train(&config("digits-relu.toml"), "first", &["--epochs", "3"]);
    t.train(
        &t.join("first/config.toml").display().to_string(),
        "again",
        &[],
    );
    assert_eq!(
        metrics_bits(&t.read_jsonl("first/metrics.jsonl")),
        metrics_bits(&t.read_jsonl("again/metrics.jsonl"))
    );
}

#[test]
fn classification_metrics_have_one_line_per_epoch_with_the_documented_keys() {
    let t = TestDir::new();
    t.train(&config("digits-relu.toml"), "run", &["--epochs", "3"]);
    let lines = t.read_jsonl("run/metrics.jsonl");
    assert_eq!(lines.len(), 3);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["epoch"], i + 1);
        for key in [
            "train_loss",
            "test_loss",
            "train_accuracy",
            "test_accuracy",
            "seconds",
        ] {
            assert!(
                line[key].as_f64().is_some_and(f64::is_finite),
                "epoch {}: no {key} in {line}",
                i + 1
            );
        }
        for key in ["train_accuracy", "test_accuracy"] {
            assert!((0.0..=1.0).contains(&num(line, key)), "{key} in {line}");
        }
    }
    let summary = t.read_json("run/summary.json");
    assert_eq!(summary["final_metrics"], lines[2]);
}

#[test]
fn regression_metrics_have_test_mse() {
    let t = TestDir::new();
    t.train(&config("diabetes-mlp.toml"), "run", &["--epochs", "4"]);
    let lines = t.read_jsonl("run/metrics.jsonl");
    assert_eq!(lines.len(), 4);
    for line in &lines {
        for key in ["epoch", "train_loss", "test_loss", "test_mse", "seconds"] {
            assert!(
                line[key].as_f64().is_some_and(f64::is_finite),
                "no {key} in {line}"
            );
        }
        assert!(
            line.get("test_accuracy").is_none_or(Value::is_null),
            "accuracy on a regression: {line}"
        );
    }
    assert_eq!(t.read_json("run/summary.json")["task"], "regression");
}

#[test]
fn same_spec_trains_bit_identical_metrics() {
    let t = TestDir::new();
    t.train(&config("digits-relu.toml"), "a", &[]);
    t.train(&config("digits-relu.toml"), "b", &[]);
    let a = metrics_bits(&t.read_jsonl("a/metrics.jsonl"));
    assert_eq!(a.len(), 20);
    assert_eq!(a, metrics_bits(&t.read_jsonl("b/metrics.jsonl")));
    // (final.bpk is not compared byte for byte: burn stores a random id with every parameter.)
}

#[test]
fn flex_trains_bit_identical_metrics_whatever_its_thread_count() {
    // A CNN (im2col + gemm, split over rayon's pool) and an MLP, on 1, 2 and 4 threads: the
    // verdict of a fix must not depend on the machine's core count.
    let t = TestDir::new();
    for (spec, extra) in [
        ("digits-relu.toml", vec!["--epochs", "3"]),
        ("digits-cnn.toml", vec!["--epochs", "1"]),
    ] {
        let mut runs = Vec::new();
        for threads in ["1", "2", "4"] {
            let out = format!("{spec}-{threads}");
            let mut args = vec![
                "train",
                &config(spec),
                "--out",
                &out,
                "-q",
                "--backend",
                "flex",
            ]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
            args.extend(extra.iter().map(|s| s.to_string()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let result = t
                .command(&args)
                .env("RAYON_NUM_THREADS", threads)
                .output()
                .unwrap();
            crate::util::assert_code(&result, 0, &args);
            runs.push(metrics_bits(&t.read_jsonl(&format!("{out}/metrics.jsonl"))));
        }
        assert_eq!(runs[0], runs[1], "{spec}: 1 vs 2 threads");
        assert_eq!(runs[0], runs[2], "{spec}: 1 vs 4 threads");
    }
}

#[test]
fn another_seed_trains_different_metrics() {
    let t = TestDir::new();
    t.train(&config("digits-relu.toml"), "a", &["--epochs", "3"]);
    t.train(
        &config("digits-relu.toml"),
        "b",
        &["--epochs", "3", "--seed", "7"],
    );
    assert_ne!(
        metrics_bits(&t.read_jsonl("a/metrics.jsonl")),
        metrics_bits(&t.read_jsonl("b/metrics.jsonl"))
    );
    assert_eq!(t.read_json("b/summary.json")["seed"], 7);
}

#[test]
fn existing_run_is_refused_without_force_and_left_untouched() {
    let t = TestDir::new();
    t.train(&config("digits-relu.toml"), "run", &["--epochs", "1"]);
    let weights = t.read_bytes("run/final.bpk");
    let summary = t.read_bytes("run/summary.json");
    let out = t.cmd(&[
        "train",
        &config("digits-relu.toml"),
        "--out",
        "run",
        "-q",
        "--epochs",
        "2",
    ]);
    assert_bad_input(&out, &["run", "--force"]);
    assert_eq!(t.read_bytes("run/final.bpk"), weights);
    assert_eq!(t.read_bytes("run/summary.json"), summary);
    t.assert_no_partial();
}

#[test]
fn force_replaces_an_existing_run() {
    let t = TestDir::new();
    t.train(&config("digits-relu.toml"), "run", &["--epochs", "1"]);
    t.train(
        &config("digits-relu.toml"),
        "run",
        &["--epochs", "2", "--force"],
    );
    assert_eq!(t.read_json("run/summary.json")["epochs_run"], 2);
    assert_eq!(t.read_jsonl("run/metrics.jsonl").len(), 2);
    t.assert_run("run");
    assert_eq!(t.entries(""), ["run"]);
}

#[test]
fn out_creates_missing_parent_directories() {
    let t = TestDir::new();
    t.train(
        &config("diabetes-mlp.toml"),
        "deep/er/run",
        &["--epochs", "1"],
    );
    t.assert_run("deep/er/run");
    t.assert_no_partial();
}

/// Ctrl-C in the middle of a long training must not leave a hidden `.run.partial-PID`
/// directory behind: its name holds the dead process's id, so no later run reuses or
/// removes it.
#[cfg(unix)]
#[test]
fn interrupted_train_leaves_no_partial_directory() {
    let t = TestDir::new();
    let mut child = t
        .command(&[
            "train",
            &config("digits-relu.toml"),
            "--out",
            "run",
            "-q",
            "--epochs",
            "200",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn neuron-doctor");
    // Interrupt once the temporary directory exists, that is, while training.
    let start = Instant::now();
    while !t.entries("").iter().any(|n| n.contains(".partial")) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "training never started"
        );
        assert!(
            child.try_wait().expect("poll").is_none(),
            "train ended before it was interrupted"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    child.wait().expect("wait for neuron-doctor");
    // Stopping early and saving what was trained would be fine too, if the run is complete.
    if t.join("run").exists() {
        t.assert_run("run");
    }
    t.assert_no_partial();
}

#[test]
fn lr_find_suggests_a_rate_deterministically() {
    let t = TestDir::new();
    let args = [
        "lr-find",
        &config("digits-relu.toml"),
        "--steps",
        "100",
        "--format",
        "json",
    ];
    let first = crate::util::json(&t.expect(&args, 0));
    let second = crate::util::json(&t.expect(&args, 0));
    assert_eq!(first, second, "the same spec and seed give the same curve");
    let suggested = num(&first, "suggested");
    // Adam on the digits MLP learns at rates from about 1e-4 to 1e-2: the steepest fall of
    // the loss must lie among them, not in the flat start or past the blow-up.
    assert!((1e-5..=5e-2).contains(&suggested), "{suggested}");
    let points = first["points"].as_array().unwrap();
    assert!(points.len() <= 100 && points.len() > 10, "{}", points.len());
    // A run directory works as well as its spec; bad flags are bad input.
    t.train(&config("digits-relu.toml"), "run", &["--epochs", "1"]);
    let text = stdout(&t.expect(&["lr-find", "run", "--steps", "50"], 0));
    assert!(
        text.contains("suggested learning rate") || text.contains("no suggestion"),
        "{text}"
    );
    assert_bad_input(&t.cmd(&["lr-find", "run", "--steps", "3"]), &["--steps"]);
    assert_bad_input(
        &t.cmd(&["lr-find", "run", "--start", "1", "--end", "0.1"]),
        &["--start"],
    );
}
