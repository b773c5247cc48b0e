//! `--backend wgpu` end to end: train, diagnose, fix and checkup on wgpu, the same diagnosis
//! from both backends, and a one-line error where wgpu cannot run (no adapter, or a build
//! without the `wgpu` feature).
//!
//! With the feature, these tests need a wgpu adapter: a GPU, or Mesa's software Vulkan driver
//! (`apt-get install mesa-vulkan-drivers`), which `cargo xtask ci` installs where it can.

#[cfg(not(feature = "wgpu"))]
use crate::util::assert_bad_input;
use crate::util::{config, TestDir};

#[cfg(feature = "wgpu")]
mod with_wgpu {
    use serde_json::Value;

    use crate::util::{assert_bad_input, config, findings, json, num, stdout, TestDir};

    /// Hides every Vulkan driver from the Vulkan loader (its old and new variable) and every
    /// EGL vendor from glvnd (wgpu falls back to OpenGL, where Mesa's llvmpipe also answers),
    /// so that wgpu finds no adapter at all.
    fn hide_gpu_drivers(cmd: &mut std::process::Command) {
        cmd.env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
            .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
            .env("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent/egl.json");
    }

    #[test]
    fn wgpu_train_diagnose_fix_end_to_end() {
        let t = TestDir::new();
        let out = t.train(
            &config("broken/digits-dying-relu.toml"),
            "run",
            &["--backend", "wgpu"],
        );
        assert!(stdout(&out).contains("epochs in"), "{}", stdout(&out));
        t.assert_run("run");
        let summary = t.read_json("run/summary.json");
        assert_eq!(summary["backend"], "wgpu");
        let device = summary["device"].as_str().unwrap_or_default();
        assert!(
            !device.is_empty() && device != "CPU (ndarray)",
            "{summary:#}"
        );
        assert!(t.read("run/config.toml").contains("backend = \"wgpu\""));

        // Adam at lr 0.1 kills most of hidden.1 on wgpu as on ndarray.
        let d = json(&t.expect(&["diagnose", "run", "--format", "json"], 1));
        assert!(
            findings(&d)
                .iter()
                .any(|(c, s, l)| c == "dead-units" && s == "error" && l == "hidden.1"),
            "{:?}",
            findings(&d)
        );

        // The cure is re-trained on wgpu too, and measured.
        let out = t.cmd(&[
            "fix",
            "run",
            "--candidates",
            "1",
            "--seeds",
            "1",
            "--format",
            "json",
            "-q",
        ]);
        let report = json(&out);
        let candidates = report["candidates"].as_array().expect("candidates");
        assert_eq!(candidates.len(), 1, "{report:#}");
        let fixed = t
            .entries("run.fix")
            .into_iter()
            .find(|e| t.join(&format!("run.fix/{e}/config.toml")).is_file())
            .expect("a candidate run");
        let config = t.read(&format!("run.fix/{fixed}/config.toml"));
        assert!(config.contains("backend = \"wgpu\""), "{config}");
        let candidate_summary = t.read_json(&format!("run.fix/{fixed}/summary.json"));
        assert_eq!(candidate_summary["backend"], "wgpu");
    }

    /// The same trained weights, probed by each backend, give the same findings and counts.
    #[test]
    fn wgpu_diagnose_matches_ndarray_diagnose() {
        let t = TestDir::new();
        t.train(&config("broken/digits-dying-relu.toml"), "run", &[]);
        let on = |backend: &str| -> Value {
            json(&t.expect(
                &["diagnose", "run", "--format", "json", "--backend", backend],
                1,
            ))
        };
        let (cpu, gpu) = (on("ndarray"), on("wgpu"));
        assert_eq!(findings(&cpu), findings(&gpu));
        let layers = |d: &Value| d["layers"].as_array().unwrap().clone();
        for (a, b) in layers(&cpu).iter().zip(layers(&gpu).iter()) {
            for count in ["dead", "dormant", "saturated"] {
                assert_eq!(a[count], b[count], "{count} of {}", a["name"]);
            }
            for stat in [
                "dead_fraction",
                "saturated_fraction",
                "grad_norm",
                "weight_std",
            ] {
                let (x, y) = (num(a, stat), num(b, stat));
                assert!(
                    (x - y).abs() <= 1e-4 + 1e-3 * x.abs().max(y.abs()),
                    "{stat} of {}: {x} vs {y}",
                    a["name"]
                );
            }
        }
    }

    /// `fix --backend wgpu` on a run trained on ndarray compares the candidates with the
    /// original re-trained on wgpu, not with the ndarray numbers: its seed-42 baseline is what
    /// `train --backend wgpu` gives for the same spec and seed.
    #[test]
    fn wgpu_fix_of_an_ndarray_run_retrains_the_original_on_wgpu() {
        let t = TestDir::new();
        let spec = config("broken/digits-dying-relu.toml");
        t.train(&spec, "cpu", &["--epochs", "4"]);
        t.train(&spec, "gpu", &["--epochs", "4", "--backend", "wgpu"]);
        let out = t.cmd(&[
            "fix",
            "cpu",
            "--backend",
            "wgpu",
            "--candidates",
            "1",
            "--seeds",
            "1",
            "--format",
            "json",
            "-q",
        ]);
        let report = json(&out);
        let original = &report["original"]["metrics"];
        assert_eq!(original["seeds"], serde_json::json!([42]), "{report:#}");
        let on_gpu = t.read_json("gpu/summary.json")["final_metrics"]["test_accuracy"].clone();
        assert_eq!(original["primary"][0], on_gpu, "{report:#}");
    }

    #[test]
    fn wgpu_checkup_runs_the_whole_story() {
        let t = TestDir::new();
        let out = t.cmd(&[
            "checkup",
            "--backend",
            "wgpu",
            "--epochs",
            "8",
            "--candidates",
            "1",
            "--seeds",
            "1",
            "--no-report",
            "-q",
        ]);
        // One candidate on one seed and a short budget: cured (0) or not (1), the story runs.
        assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
        let text = stdout(&out);
        assert!(text.contains("computing on"), "{text}");
        assert!(!text.contains("CPU (ndarray)"), "{text}");
        assert!(text.contains("== 2. diagnose"), "{text}");
        assert!(text.contains("dead-units"), "{text}");
    }

    #[test]
    fn wgpu_without_an_adapter_is_a_one_line_error() {
        let t = TestDir::new();
        let mut cmd = t.command(&[
            "train",
            &config("digits-relu.toml"),
            "--out",
            "run",
            "-q",
            "--backend",
            "wgpu",
        ]);
        hide_gpu_drivers(&mut cmd);
        let out = cmd.output().unwrap();
        assert_bad_input(
            &out,
            &["wgpu", "adapter", "mesa-vulkan-drivers", "--backend flex"],
        );
        // The temporary run directory existed when the device failed; it is gone.
        assert!(t.entries("").is_empty(), "left behind: {:?}", t.entries(""));
    }
}

/// A build without the `wgpu` feature refuses the backend and says how to get it.
#[cfg(not(feature = "wgpu"))]
#[test]
fn wgpu_needs_the_cargo_feature() {
    let t = TestDir::new();
    let out = t.cmd(&[
        "train",
        &config("digits-relu.toml"),
        "--out",
        "run",
        "-q",
        "--backend",
        "wgpu",
    ]);
    assert_bad_input(&out, &["wgpu", "--features wgpu", "--backend flex"]);
    // The temporary run directory existed when the device failed; it is gone.
    assert!(t.entries("").is_empty(), "left behind: {:?}", t.entries(""));
}

/// `diagnose --backend` names a backend it knows, or says which ones exist.
#[test]
fn diagnose_rejects_an_unknown_backend() {
    let t = TestDir::new();
    t.train(&config("diabetes-mlp.toml"), "run", &["--epochs", "1"]);
    let out = t.cmd(&["diagnose", "run", "--backend", "cuda"]);
    assert_eq!(out.status.code(), Some(2));
    let err = crate::util::stderr(&out);
    assert!(err.contains("ndarray") && err.contains("wgpu"), "{err}");
}
