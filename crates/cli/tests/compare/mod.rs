//! `compare`: a grid of activations and initializations trained under the same data, budget and
//! seeds, set side by side, one recommended.

use crate::util::*;

#[test]
fn compare_trains_the_grid_recommends_one_and_writes_its_runs_and_report() {
    let t = TestDir::new();
    let config = config("digits-relu.toml");
    let out = t.expect(
        &[
            "compare",
            &config,
            "--activation",
            "relu,sigmoid",
            "--seeds",
            "2",
            "--epochs",
            "3",
            "--target",
            "0.9",
            "--format",
            "json",
            "--report",
            "compare.html",
            "-q",
        ],
        0,
    );
    let report = json(&out);
    let settings = report["settings"].as_array().unwrap();
    let labels: Vec<&str> = settings
        .iter()
        .map(|s| s["setting"]["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["relu + kaiming_normal", "sigmoid + xavier_uniform"]
    );
    for s in settings {
        assert_eq!(s["metrics"]["primary"].as_array().unwrap().len(), 2);
        assert_eq!(s["curve"].as_array().unwrap().len(), 3);
        assert_eq!(s["epochs_to_target"].as_array().unwrap().len(), 2);
    }
    // ReLU with He reaches 90% on digits within 3 epochs; its seeds' metrics are real runs.
    let relu = &settings[0];
    assert!(relu["epochs_to_target"][0].as_u64().is_some(), "{relu:#}");
    assert!(report["best"].as_u64().is_some(), "{report:#}");
    assert!(!report["why"].as_str().unwrap().is_empty());
    // The runs are there, one per setting and seed, each a run the doctor can read, with
    // the local executor's job files (each job's spec and log) beside them.
    let dir = "runs/digits-relu.compare";
    assert_eq!(
        t.entries(dir),
        [
            "activation-relu+init-kaiming_normal",
            "activation-relu+init-kaiming_normal@seed-43",
            "activation-sigmoid+init-xavier_uniform",
            "activation-sigmoid+init-xavier_uniform@seed-43",
            "jobs"
        ]
    );
    assert!(t
        .entries(&format!("{dir}/jobs"))
        .contains(&"3.log".to_string()));
    t.expect(
        &[
            "diagnose",
            &format!("{dir}/activation-relu+init-kaiming_normal"),
        ],
        0,
    );
    let html = t.read("compare.html");
    assert!(html.contains("<svg") && html.contains("sigmoid + xavier_uniform"));
    // Not again without --force; bad flags are bad input.
    assert_bad_input(
        &t.cmd(&["compare", &config, "--activation", "relu", "--epochs", "1"]),
        &["already exists"],
    );
    assert_bad_input(&t.cmd(&["compare", &config, "--init", "he"]), &["--init"]);
    assert_bad_input(
        &t.cmd(&["compare", &config, "--seeds", "0"]),
        &["--seeds 0"],
    );
}
