//! `diagnose`: each broken fixture under `configs/broken/` is caught with the right code and
//! layer, each healthy control passes, and the report formats keep their documented shape.

use serde_json::Value;

use crate::util::{config, findings, json, layer, num, stdout, TestDir};

/// Trains `spec` into `run` and diagnoses it as JSON, expecting exit `code`.
fn train_and_diagnose(t: &TestDir, spec: &str, code: i32) -> Value {
    t.train(&config(spec), "run", &[]);
    json(&t.expect(&["diagnose", "run", "--format", "json"], code))
}

/// Asserts a finding with this code, severity and layer (`""`: none) is present.
fn assert_finding(diagnosis: &Value, code: &str, severity: &str, layer: &str) {
    let all = findings(diagnosis);
    assert!(
        all.iter()
            .any(|(c, s, l)| c == code && s == severity && l == layer),
        "no {severity} {code} on {layer:?} among {all:?}"
    );
    assert_eq!(diagnosis["healthy"], false);
}

/// Asserts a control is healthy: no warning or error, and `--fail-on warning` passes.
fn assert_healthy(t: &TestDir, diagnosis: &Value) {
    assert_eq!(diagnosis["healthy"], true, "{diagnosis:#}");
    let serious: Vec<_> = findings(diagnosis)
        .into_iter()
        .filter(|(_, s, _)| s != "advice")
        .collect();
    assert!(serious.is_empty(), "{serious:?}");
    t.expect(&["diagnose", "run", "--fail-on", "warning"], 0);
}

#[test]
fn dying_relu_is_dead_units_error_on_hidden_1() {
    let t = TestDir::new();
    let d = train_and_diagnose(&t, "broken/digits-dying-relu.toml", 1);
    assert_finding(&d, "dead-units", "error", "hidden.1");
    assert!(
        num(layer(&d, "hidden.1"), "dead_fraction") > 0.9,
        "{:#}",
        layer(&d, "hidden.1")
    );
    assert_eq!(num(layer(&d, "hidden.0"), "dead_fraction"), 0.0);
    // The remedy for too large a learning rate is a smaller one.
    let dead = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "dead-units")
        .unwrap();
    let changes: Vec<_> = dead["remedies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["change"].clone())
        .collect();
    assert!(
        changes
            .iter()
            .any(|c| c.get("train.learning_rate").is_some()),
        "no learning-rate remedy in {changes:?}"
    );
}

#[test]
fn dying_relu_text_report_names_the_finding_and_the_fix_command() {
    let t = TestDir::new();
    t.train(&config("broken/digits-dying-relu.toml"), "run", &[]);
    let text = stdout(&t.expect(&["diagnose", "run"], 1));
    assert!(text.contains("error[dead-units]"), "{text}");
    assert!(text.contains("hidden.1"), "{text}");
    assert!(text.contains("neuron-doctor fix run"), "{text}");
}

#[test]
fn saturated_sigmoid_is_saturated_units() {
    let t = TestDir::new();
    let d = train_and_diagnose(&t, "broken/digits-saturated-sigmoid.toml", 1);
    assert_finding(&d, "saturated-units", "error", "hidden.4");
    assert!(
        num(layer(&d, "hidden.4"), "saturated_fraction") >= 0.25,
        "{:#}",
        layer(&d, "hidden.4")
    );
}

#[test]
fn born_dead_is_born_dead_error() {
    let t = TestDir::new();
    let d = train_and_diagnose(&t, "broken/digits-born-dead.toml", 1);
    let born: Vec<_> = findings(&d)
        .into_iter()
        .filter(|(c, _, _)| c == "born-dead")
        .collect();
    assert_eq!(born.len(), 1, "{born:?}");
    assert_eq!(born[0].1, "error");
    // The first layer that is dead for every input at initialization.
    assert_eq!(born[0].2, "hidden.3");
    let finding = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "born-dead")
        .unwrap();
    assert_eq!(
        finding["evidence"]["dead_fraction_at_init"]["hidden.3"],
        1.0
    );
}

#[test]
fn relu_head_regression_is_output_range_mismatch_on_output() {
    let t = TestDir::new();
    let d = train_and_diagnose(&t, "broken/diabetes-relu-head.toml", 1);
    assert_finding(&d, "output-range-mismatch", "error", "output");
    let finding = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "output-range-mismatch")
        .unwrap();
    let remedies = finding["remedies"].to_string();
    assert!(remedies.contains("model.output_activation"), "{remedies}");
    // The layer table names the head, not "none".
    assert_eq!(
        layer(&d, "output")["activation"],
        "relu",
        "{:#}",
        layer(&d, "output")
    );
    assert_eq!(layer(&d, "hidden.0")["activation"], "relu");
}

#[test]
fn healthy_digits_relu_has_no_findings() {
    let t = TestDir::new();
    let d = train_and_diagnose(&t, "digits-relu.toml", 0);
    assert_healthy(&t, &d);
    assert_eq!(findings(&d), []);
    // With no finding at all, even advice does not fail it.
    let text = stdout(&t.expect(&["diagnose", "run", "--fail-on", "advice"], 0));
    // It says what it measured, dead units below the threshold included, and no more.
    let layers = d["layers"].as_array().unwrap();
    let hidden = layers.iter().filter(|l| l["name"] != "output");
    let dead: u64 = hidden.clone().map(|l| l["dead"].as_u64().unwrap()).sum();
    let units: u64 = hidden.map(|l| l["units"].as_u64().unwrap()).sum();
    let expected = if dead == 0 {
        format!("All {units} relu-family units fire on some input")
    } else {
        format!("{dead} of {units} relu-family units never fire")
    };
    assert!(text.contains("[ok] healthy: no findings."), "{text}");
    assert!(text.contains(&expected), "expected {expected:?} in\n{text}");
    assert!(!text.contains("the loss fell"), "{text}");
}

#[test]
fn healthy_digits_tanh_has_no_findings() {
    let t = TestDir::new();
    let d = train_and_diagnose(&t, "digits-tanh.toml", 0);
    assert_healthy(&t, &d);
    assert_eq!(findings(&d), []);
}

#[test]
fn healthy_diabetes_mlp_has_no_findings() {
    let t = TestDir::new();
    let d = train_and_diagnose(&t, "diabetes-mlp.toml", 0);
    assert_healthy(&t, &d);
    assert_eq!(findings(&d), []);
}

/// The CNN control is healthy but gets advice (a few dead units in its first layer), which
/// makes it the case for `--fail-on advice`.
#[test]
fn healthy_digits_cnn_has_only_advice_and_fails_on_advice() {
    let t = TestDir::new();
    let d = train_and_diagnose(&t, "digits-cnn.toml", 0);
    assert_healthy(&t, &d);
    assert!(
        !findings(&d).is_empty(),
        "the control has no advice any more: pick another for --fail-on advice"
    );
    t.expect(&["diagnose", "run", "--fail-on", "advice"], 1);
}

#[test]
fn json_has_the_documented_shape() {
    let t = TestDir::new();
    let d = train_and_diagnose(&t, "broken/digits-dying-relu.toml", 1);
    assert_eq!(d["run"], "run");
    assert!(d["model"].is_object(), "{d:#}");
    assert_eq!(d["data"]["dataset"], "digits");
    assert_eq!(d["data"]["split"], "train");
    assert!(d["data"]["samples"].as_u64().is_some_and(|n| n > 0));
    assert!(d["healthy"].is_boolean());
    let layers = d["layers"].as_array().expect("layers");
    let names: Vec<_> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["hidden.0", "hidden.1", "output"]);
    for l in layers {
        assert!(l["activation"].is_string(), "{l}");
        for key in ["units", "dead", "dormant", "saturated"] {
            assert!(l[key].is_u64(), "{key} in {l}");
        }
        for key in [
            "dead_fraction",
            "saturated_fraction",
            "grad_norm",
            "weight_std",
            "expected_weight_std",
        ] {
            assert!(l[key].is_number(), "{key} in {l}");
        }
    }
    assert_eq!(layer(&d, "hidden.1")["units"], 128);
    let found = d["findings"].as_array().expect("findings");
    assert!(!found.is_empty());
    for f in found {
        assert!(f["code"].is_string() && f["message"].is_string(), "{f}");
        assert!(
            ["advice", "warning", "error"].contains(&f["severity"].as_str().unwrap()),
            "{f}"
        );
        assert!(f["layer"].is_string() || f["layer"].is_null(), "{f}");
        assert!(f["evidence"].is_object(), "{f}");
        for r in f["remedies"].as_array().expect("remedies") {
            assert!(
                r["change"].as_object().is_some_and(|c| !c.is_empty()),
                "{r}"
            );
            assert!(r["why"].is_string(), "{r}");
        }
    }
}

#[test]
fn split_and_limit_choose_the_probed_rows() {
    let t = TestDir::new();
    t.train(&config("broken/digits-dying-relu.toml"), "run", &[]);
    let d = json(&t.expect(
        &[
            "diagnose", "run", "--format", "json", "--split", "test", "--limit", "100",
        ],
        1,
    ));
    assert_eq!(d["data"]["split"], "test");
    assert_eq!(d["data"]["samples"], 100);
    assert!(findings(&d)
        .iter()
        .any(|(c, s, _)| c == "dead-units" && s == "error"));
}

#[test]
fn markdown_starts_with_the_heading() {
    let t = TestDir::new();
    t.train(&config("diabetes-mlp.toml"), "run", &["--epochs", "2"]);
    let text = stdout(&t.expect(&["diagnose", "run", "--format", "markdown"], 0));
    assert!(text.starts_with("## neuron-doctor"), "{text}");
    assert!(text.contains("| layer |"), "{text}");
}

#[test]
fn list_checks_lists_all_ten_codes() {
    let t = TestDir::new();
    let text = stdout(&t.expect(&["diagnose", "--list-checks"], 0));
    let mut codes: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    codes.sort_unstable();
    let mut expected = [
        "dead-units",
        "dormant-units",
        "saturated-units",
        "vanishing-gradients",
        "exploding-gradients",
        "born-dead",
        "output-range-mismatch",
        "init-scale-mismatch",
        "stalled-training",
        "non-finite",
    ];
    expected.sort_unstable();
    assert_eq!(codes, expected, "{text}");
}
