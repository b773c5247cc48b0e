//! Models trained by PyTorch (`fixtures/models/`, see its README) imported, diagnosed and fixed
//! through the binary; bad model files and mismatched data refused.

use crate::util::*;

/// The absolute path of a file of a shipped PyTorch model.
fn model(name: &str, file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/models")
        .join(name)
        .join(file);
    assert!(path.is_file(), "no fixture {}", path.display());
    path.canonicalize().unwrap().display().to_string()
}

#[test]
fn import_writes_a_run_with_its_source_and_the_models_own_metrics() {
    let t = TestDir::new();
    let data = model("digits-mlp", "data.csv.gz");
    let onnx = model("digits-mlp", "model.onnx");
    let out = t.expect(&["import", &onnx, "--data", &data, "--out", "runs/mine"], 0);
    assert!(
        stdout(&out).contains("test accuracy 97.2%"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        t.entries("runs/mine"),
        ["config.toml", "final.bpk", "summary.json"]
    );
    let config: toml::Value = toml::from_str(&t.read("runs/mine/config.toml")).unwrap();
    assert_eq!(config["source"]["format"].as_str(), Some("onnx"));
    assert_eq!(config["source"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(config["model"]["hidden"].as_array().unwrap().len(), 2);
    assert_eq!(config["data"]["holdout"].as_str(), Some("none"));
    assert_eq!(config["data"]["standardize"].as_bool(), Some(false));
    let summary = t.read_json("runs/mine/summary.json");
    assert_eq!(summary["epochs_run"], 0);
    assert!((num(&summary["final_metrics"], "test_accuracy") - 0.971831).abs() < 1e-6);

    // Healthy: no warning and no error, whether from the run or from the file itself, and the
    // checks that need a history or initial weights say they were skipped.
    let d = json(&t.expect(
        &[
            "diagnose",
            "runs/mine",
            "--format",
            "json",
            "--fail-on",
            "warning",
        ],
        0,
    ));
    let skipped: Vec<&str> = d["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert!(
        skipped.contains(&"born-dead") && skipped.contains(&"stalled-training"),
        "{skipped:?}"
    );
    for file in ["model.safetensors", "model.pt"] {
        let out = t.expect(
            &[
                "diagnose",
                &model("digits-mlp", file),
                "--data",
                &data,
                "--fail-on",
                "warning",
            ],
            0,
        );
        assert!(!stdout(&out).contains("error"), "{}", stdout(&out));
    }
    // Nothing was written by diagnosing a file.
    assert_eq!(t.entries("runs"), ["mine"]);
}

#[test]
fn pytorchs_dying_relu_run_is_an_error_and_its_checkup_cures_it() {
    let t = TestDir::new();
    let data = model("digits-mlp-dying", "data.csv.gz");
    let pt = model("digits-mlp-dying", "model.pt");
    let d = json(&t.expect(&["diagnose", &pt, "--data", &data, "--format", "json"], 1));
    assert!(
        findings(&d)
            .iter()
            .any(|(code, severity, layer)| code == "dead-units"
                && severity == "error"
                && layer == "hidden.1"),
        "{:?}",
        findings(&d)
    );
    assert_eq!(num(layer(&d, "hidden.1"), "dead"), 123.0);
    let out = t.expect(
        &[
            "checkup",
            &pt,
            "--data",
            &data,
            "--out",
            "runs/dying",
            "--seeds",
            "2",
            "-q",
            "--format",
            "json",
        ],
        0,
    );
    let report = json(&out);
    let best = &report["candidates"][report["best"].as_u64().unwrap() as usize];
    assert_eq!(best["verdict"], "cured", "{report:#}");
    // Reviving the dead units in the imported weights cures it too.
    let revived = report["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["start"] == "revived")
        .unwrap_or_else(|| panic!("no revive candidate: {report:#}"));
    assert_eq!(revived["verdict"], "cured", "{report:#}");
    // Training on as it is leaves the dead units dead.
    assert!(
        num(&report["original"], "dead_fraction") > 0.4,
        "{report:#}"
    );
    assert!((report["imported_metric"].as_f64().unwrap() - 0.411268).abs() < 1e-6);
}

#[test]
fn a_relu_head_on_a_target_that_goes_negative_is_found() {
    let t = TestDir::new();
    let data = model("diabetes-relu-head", "data.csv.gz");
    let d = json(&t.cmd(&[
        "diagnose",
        &model("diabetes-relu-head", "model.onnx"),
        "--data",
        &data,
        "--format",
        "json",
    ]));
    assert!(
        findings(&d)
            .iter()
            .any(|(code, _, _)| code == "output-range-mismatch"),
        "{:?}",
        findings(&d)
    );
    // A weights-only file does not say the head has a ReLU: the user does.
    let st = model("diabetes-relu-head", "model.safetensors");
    let d = json(&t.cmd(&[
        "diagnose",
        &st,
        "--data",
        &data,
        "--output-activation",
        "relu",
        "--format",
        "json",
    ]));
    assert!(
        findings(&d)
            .iter()
            .any(|(code, _, _)| code == "output-range-mismatch"),
        "{:?}",
        findings(&d)
    );
    // Its cure: a linear head on the same weights, better on every paired seed.
    let onnx = model("diabetes-relu-head", "model.onnx");
    let report = json(&t.expect(
        &[
            "checkup", &onnx, "--data", &data, "--out", "runs/d", "-q", "--format", "json",
        ],
        0,
    ));
    let best = &report["candidates"][report["best"].as_u64().unwrap() as usize];
    assert_eq!(
        best["candidate"]["label"], "model.output_activation=none",
        "{report:#}"
    );
    assert_eq!(best["verdict"], "cured");
    assert_eq!(best["start"], "imported_weights");
}

#[test]
fn bad_model_files_and_mismatched_data_are_refused_and_nothing_is_written() {
    let t = TestDir::new();
    let digits = model("digits-mlp", "data.csv.gz");
    let diabetes = model("diabetes-relu-head", "data.csv.gz");
    let onnx = model("digits-mlp", "model.onnx");
    // Truncated files, each format.
    for file in ["model.onnx", "model.safetensors", "model.pt"] {
        let bytes = std::fs::read(model("digits-mlp", file)).unwrap();
        t.write(&format!("cut/{file}"), &bytes[..bytes.len() / 2]);
        let path = t.join(&format!("cut/{file}")).display().to_string();
        let out = t.cmd(&["import", &path, "--data", &digits, "--out", "runs/x"]);
        assert_bad_input(&out, &[&path]);
    }
    // Data with another number of columns; no data at all; an unknown extension.
    assert_bad_input(
        &t.cmd(&[
            "import",
            &onnx,
            "--data",
            &diabetes,
            "--target",
            "target",
            "--task",
            "classification",
            "--out",
            "runs/x",
        ]),
        &["feature columns"],
    );
    assert_bad_input(&t.cmd(&["import", &onnx, "--out", "runs/x"]), &["--data"]);
    t.write("m.h5", b"x");
    assert_bad_input(&t.cmd(&["diagnose", "m.h5", "--data", &digits]), &["m.h5"]);
    // Labels beyond the model's outputs; NaN in the data.
    let text = String::from_utf8(flate(&std::fs::read(&digits).unwrap())).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let last = lines[1].rsplitn(3, ',').collect::<Vec<_>>();
    lines[1] = format!("{},12,{}", last[2], last[0]);
    t.write("labels.csv", lines.join("\n"));
    assert_bad_input(
        &t.cmd(&["import", &onnx, "--data", "labels.csv", "--out", "runs/x"]),
        &["labels.csv", "12"],
    );
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<&str> = lines[3].split(',').collect();
    cells[0] = "nan";
    lines[3] = cells.join(",");
    t.write("nan.csv", lines.join("\n"));
    assert_bad_input(
        &t.cmd(&["import", &onnx, "--data", "nan.csv", "--out", "runs/x"]),
        &["nan.csv"],
    );
    // A state_dict whose shapes disagree with --spec.
    t.write(
        "spec.toml",
        "[data]\ndataset = \"digits\"\n[model]\nhidden = [64, 64]\n",
    );
    let pt = model("digits-mlp", "model.pt");
    assert_bad_input(
        &t.cmd(&[
            "import",
            &pt,
            "--data",
            &digits,
            "--spec",
            "spec.toml",
            "--out",
            "runs/x",
        ]),
        &["spec.toml", "[64, 64]"],
    );
    // A whole pickled module rather than a state_dict.
    let mut bytes = std::fs::read(&pt).unwrap();
    bytes.extend_from_slice(b"ctorch.nn.modules.container\nSequential\n");
    t.write("whole.pt", bytes);
    assert_bad_input(
        &t.cmd(&["import", "whole.pt", "--data", &digits, "--out", "runs/x"]),
        &["whole.pt", "state_dict"],
    );
    assert!(
        !t.join("runs").exists(),
        "something was written: {:?}",
        t.entries("runs")
    );
}

fn flate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}
