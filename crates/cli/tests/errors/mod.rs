//! Bad input: every case exits 2 with one `error:` line on stderr that names the file (and
//! the key, column or line where there is one), and none of them panics.

use std::process::Stdio;

use crate::util::{assert_bad_input, config, stderr, TestDir};

/// A minimal valid spec body after `[data]`'s `dataset` line.
const TINY_MODEL: &str = "[model]\nhidden = [4]\n\n[train]\nepochs = 1\n";

/// Writes `spec.toml` and trains it.
fn train_spec(t: &TestDir, spec: &str) -> std::process::Output {
    t.write("spec.toml", spec);
    t.cmd(&["train", "spec.toml", "-q", "--out", "run"])
}

/// Writes `specs/data.csv` and a csv spec beside it, and trains it from the test directory:
/// the data path in the spec is relative to the spec, not to the working directory.
fn train_csv(t: &TestDir, csv: &str) -> std::process::Output {
    t.write(
        "specs/spec.toml",
        format!("[data]\ndataset = \"csv\"\npath = \"data.csv\"\ntarget = \"y\"\n\n{TINY_MODEL}"),
    );
    t.write("specs/data.csv", csv);
    t.cmd(&["train", "specs/spec.toml", "-q", "--out", "run"])
}

/// Ten rows of two features and a binary label, with `row` (1-based data row, so file line
/// `row + 1`) replaced.
fn csv_with_row(row: usize, replacement: &str) -> String {
    let mut lines = vec!["a,b,y".to_string()];
    for i in 1..=10 {
        lines.push(if i == row {
            replacement.to_string()
        } else {
            format!("{i},{},{}", 10 - i, i % 2)
        });
    }
    lines.join("\n") + "\n"
}

/// Trains a quick digits run into `run` for the corruption cases.
fn quick_run(t: &TestDir) {
    t.train(&config("digits-relu.toml"), "run", &["--epochs", "1"]);
}

fn assert_no_run(t: &TestDir) {
    assert!(!t.join("run").exists(), "a run was written");
    t.assert_no_partial();
}

#[test]
fn valid_csv_spec_trains() {
    // The control for the csv cases below: the same spec and file shape are accepted.
    let t = TestDir::new();
    let out = train_csv(&t, &csv_with_row(0, ""));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(t.join("run/final.bpk").is_file());
}

#[test]
fn missing_config_file() {
    let t = TestDir::new();
    assert_bad_input(&t.cmd(&["train", "missing.toml", "-q"]), &["missing.toml"]);
    assert!(t.entries("").is_empty());
}

#[test]
fn malformed_toml() {
    let t = TestDir::new();
    let out = train_spec(&t, "[data\ndataset = \"digits\"\n");
    assert_bad_input(&out, &["spec.toml:1"]);
    assert_no_run(&t);
}

#[test]
fn unknown_key_suggests_the_right_one() {
    let t = TestDir::new();
    let out = train_spec(&t, "[data]\ndataset = \"digits\"\n\n[model]\nhiden = [4]\n");
    assert_bad_input(
        &out,
        &["spec.toml", "model.hiden", "did you mean `model.hidden`"],
    );
    assert_no_run(&t);
}

#[test]
fn unknown_activation() {
    let t = TestDir::new();
    let out = train_spec(
        &t,
        "[data]\ndataset = \"digits\"\n\n[model]\nhidden = [4]\nactivation = \"relux\"\n",
    );
    assert_bad_input(
        &out,
        &["spec.toml", "model.activation", "relux", "leaky_relu"],
    );
    assert_no_run(&t);
}

#[test]
fn zero_learning_rate() {
    let t = TestDir::new();
    let out = train_spec(
        &t,
        &format!("[data]\ndataset = \"digits\"\n\n{TINY_MODEL}learning_rate = 0\n"),
    );
    assert_bad_input(&out, &["spec.toml", "train.learning_rate"]);
    assert_no_run(&t);
}

#[test]
fn zero_epochs() {
    let t = TestDir::new();
    let out = train_spec(
        &t,
        "[data]\ndataset = \"digits\"\n\n[model]\nhidden = [4]\n\n[train]\nepochs = 0\n",
    );
    assert_bad_input(&out, &["spec.toml", "train.epochs"]);
    assert_no_run(&t);
}

/// STYLE.md: validation errors name the flag and the value. `--epochs 0` is the flag's fault,
/// not the spec file's.
#[test]
fn zero_epochs_flag_names_the_flag() {
    let t = TestDir::new();
    let out = t.cmd(&[
        "train",
        &config("digits-relu.toml"),
        "-q",
        "--out",
        "run",
        "--epochs",
        "0",
    ]);
    assert_bad_input(&out, &["--epochs", "0"]);
    assert_no_run(&t);
}

#[test]
fn dropout_of_one() {
    let t = TestDir::new();
    let out = train_spec(
        &t,
        "[data]\ndataset = \"digits\"\n\n[model]\nhidden = [4]\ndropout = 1.0\n",
    );
    assert_bad_input(&out, &["spec.toml", "model.dropout"]);
    assert_no_run(&t);
}

#[test]
fn cnn_on_a_tabular_dataset() {
    let t = TestDir::new();
    let out = train_spec(
        &t,
        "[data]\ndataset = \"iris\"\n\n[model]\nkind = \"cnn\"\nhidden = [4]\n",
    );
    assert_bad_input(&out, &["spec.toml", "cnn"]);
    assert_no_run(&t);
}

#[test]
fn csv_file_missing() {
    let t = TestDir::new();
    t.write(
        "specs/spec.toml",
        format!("[data]\ndataset = \"csv\"\npath = \"data.csv\"\ntarget = \"y\"\n\n{TINY_MODEL}"),
    );
    let out = t.cmd(&["train", "specs/spec.toml", "-q", "--out", "run"]);
    assert_bad_input(&out, &["specs/data.csv"]);
    assert_no_run(&t);
}

#[test]
fn csv_nan_cell() {
    let t = TestDir::new();
    let out = train_csv(&t, &csv_with_row(2, "2,NaN,0"));
    assert_bad_input(&out, &["data.csv:3", "\"b\"", "NaN"]);
    assert_no_run(&t);
}

#[test]
fn csv_text_in_a_number_column() {
    let t = TestDir::new();
    let out = train_csv(&t, &csv_with_row(4, "4,abc,0"));
    assert_bad_input(&out, &["data.csv:5", "\"b\"", "abc"]);
    assert_no_run(&t);
}

#[test]
fn csv_ragged_row() {
    let t = TestDir::new();
    let out = train_csv(&t, &csv_with_row(3, "3,7"));
    assert_bad_input(&out, &["data.csv:4", "fields"]);
    assert_no_run(&t);
}

#[test]
fn csv_negative_label() {
    let t = TestDir::new();
    let out = train_csv(&t, &csv_with_row(5, "5,5,-1"));
    assert_bad_input(&out, &["data.csv:6", "\"y\"", "-1"]);
    assert_no_run(&t);
}

#[test]
fn csv_single_class() {
    let t = TestDir::new();
    let rows: String = (1..=10).map(|i| format!("{i},{},1\n", 10 - i)).collect();
    let out = train_csv(&t, &format!("a,b,y\n{rows}"));
    assert_bad_input(&out, &["data.csv", "single class"]);
    assert_no_run(&t);
}

#[test]
fn csv_missing_target_column() {
    let t = TestDir::new();
    let csv = csv_with_row(0, "").replacen("a,b,y", "a,b,label", 1);
    let out = train_csv(&t, &csv);
    assert_bad_input(&out, &["data.csv:1", "\"y\"", "label"]);
    assert_no_run(&t);
}

#[test]
fn diagnose_a_missing_directory() {
    let t = TestDir::new();
    assert_bad_input(&t.cmd(&["diagnose", "nowhere"]), &["nowhere"]);
}

#[test]
fn diagnose_without_final_weights() {
    let t = TestDir::new();
    quick_run(&t);
    std::fs::remove_file(t.join("run/final.bpk")).unwrap();
    assert_bad_input(&t.cmd(&["diagnose", "run"]), &["run", "final.bpk"]);
}

#[test]
fn diagnose_truncated_weights() {
    let t = TestDir::new();
    quick_run(&t);
    let bytes = t.read_bytes("run/final.bpk");
    t.write("run/final.bpk", &bytes[..bytes.len() / 2]);
    assert_bad_input(&t.cmd(&["diagnose", "run"]), &["run/final.bpk"]);
}

#[test]
fn diagnose_random_weights() {
    let t = TestDir::new();
    quick_run(&t);
    let len = t.read_bytes("run/final.bpk").len();
    // Deterministic noise (a 64-bit LCG), the same size as the real file.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let noise: Vec<u8> = (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect();
    t.write("run/final.bpk", noise);
    assert_bad_input(&t.cmd(&["diagnose", "run"]), &["run/final.bpk"]);
    // fix reads the same weights.
    assert_bad_input(&t.cmd(&["fix", "run", "-q"]), &["run/final.bpk"]);
    assert!(!t.join("run.fix").exists());
}

#[test]
fn diagnose_weights_of_another_architecture() {
    let t = TestDir::new();
    quick_run(&t);
    // digits-relu has hidden = [128, 128].
    t.write(
        "small.toml",
        "[data]\ndataset = \"digits\"\n\n[model]\nhidden = [64]\n\n[train]\nepochs = 1\n",
    );
    t.train("small.toml", "small", &[]);
    std::fs::copy(t.join("small/final.bpk"), t.join("run/final.bpk")).unwrap();
    assert_bad_input(&t.cmd(&["diagnose", "run"]), &["run/final.bpk", "shape"]);
}

#[test]
fn diagnose_corrupt_summary() {
    let t = TestDir::new();
    quick_run(&t);
    t.write("run/summary.json", "{\"name\": \"digits-relu\", \"seed\":");
    assert_bad_input(&t.cmd(&["diagnose", "run"]), &["run/summary.json"]);
}

/// `--limit 0` probes no rows at all: a diagnosis of nothing is not evidence. It must be
/// refused as bad input (naming the flag), not reported as a sick network.
#[test]
fn diagnose_limit_zero_is_bad_input() {
    let t = TestDir::new();
    quick_run(&t);
    let out = t.cmd(&["diagnose", "run", "--limit", "0"]);
    assert_bad_input(&out, &["--limit"]);
}

/// `neuron-doctor train ... | head -1` style use: a reader that goes away must not turn into
/// a panic (Rust ignores SIGPIPE, so an unchecked `println!` panics on EPIPE).
#[test]
fn closed_stdout_is_not_a_panic() {
    let t = TestDir::new();
    let mut child = t
        .command(&["train", &config("digits-relu.toml"), "--out", "run", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn neuron-doctor");
    // Close the only reader before the command prints (it prints after training).
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for neuron-doctor");
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
    assert!(t.join("run/final.bpk").is_file(), "the run was not saved");
}
