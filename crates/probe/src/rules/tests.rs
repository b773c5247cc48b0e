//! Unit tests for the rules, from hand-made statistics: every rule on both sides of each of its
//! thresholds, the healthy case, the ordering of findings, and a property test over random but
//! valid statistics.
//!
//! The fixture is a healthy digits classifier (64 inputs, two hidden ReLU layers of 20 units,
//! 10 classes, Adam at 0.001) that each test then breaks in one way. Twenty units per layer make
//! every threshold land on a whole number of units: 2 units = 10%, 5 = 25%, 10 = 50%.

use std::ops::Range;

use nd_spec::{CheckedSpec, DatasetName};
use proptest::prelude::*;

use super::*;
use crate::activations::{Histogram, SiteStats};
use crate::findings::CHECKS;
use crate::measure::{LayerStats, OutputStats};

const UNITS: usize = 20;
const INPUTS: usize = 64;
const CLASSES: usize = 10;
const SAMPLES: usize = 1000;

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

/// The healthy spec every classification case starts from.
const BASE_SPEC: &str = r#"
[data]
dataset = "digits"

[model]
kind = "mlp"
hidden = [20, 20]
activation = "relu"
init = "kaiming_uniform"

[train]
optimizer = "adam"
learning_rate = 0.001
"#;

/// [`BASE_SPEC`], changed by `edit`, then validated.
fn spec(edit: impl FnOnce(&mut Spec)) -> CheckedSpec {
    let mut spec = Spec::from_toml_str(BASE_SPEC, "t").unwrap();
    edit(&mut spec);
    spec.check().unwrap()
}

fn histogram() -> Histogram {
    Histogram {
        low: -3.0,
        high: 3.0,
        counts: vec![25; crate::activations::HISTOGRAM_BINS],
    }
}

/// A site whose units all fire on about half the inputs, far from any flat end.
fn site(name: &str, activation: Activation, units: usize) -> SiteStats {
    let (mean, mean_abs, min, max) = match activation {
        Activation::Sigmoid => (0.5, 0.5, 0.05, 0.95),
        Activation::Tanh => (0.0, 0.4, -0.9, 0.9),
        _ => (0.4, 0.4, 0.0, 3.0),
    };
    SiteStats {
        name: name.to_string(),
        activation,
        units,
        observations: SAMPLES,
        inactive_fraction: vec![0.5; units],
        saturated_fraction: vec![0.0; units],
        mean: vec![mean; units],
        std: vec![0.6; units],
        mean_abs: vec![mean_abs; units],
        min: vec![min; units],
        max: vec![max; units],
        pre_max: vec![3.0; units],
        pre_histogram: histogram(),
        post_histogram: histogram(),
    }
}

/// A layer whose weights have exactly the expected scale.
fn layer(
    name: &str,
    fan_in: usize,
    units: usize,
    expected_weight_std: f64,
    grad_rms: f64,
) -> LayerStats {
    let weights = ((fan_in * units) as f64).sqrt();
    LayerStats {
        name: name.to_string(),
        fan_in,
        units,
        weight_std: expected_weight_std,
        expected_weight_std,
        weight_norm: expected_weight_std * weights,
        bias_mean: 0.0,
        pre_mean: None,
        bias_positive_fraction: 0.0,
        grad_norm: grad_rms * weights,
        bias_grad_norm: grad_rms,
        grad_rms,
        grad_to_weight: grad_rms / expected_weight_std,
        zero_grad_fraction: 0.0,
    }
}

/// A healthy MLP probe: `widths` hidden layers of `activation` on 64 inputs, `outputs` outputs.
/// Gradient RMS is 0.002 in the first layer and 0.004 in the output layer (ratio 0.5).
fn probe_with(activation: Activation, widths: &[usize], outputs: usize) -> Probe {
    let mut sites = Vec::new();
    let mut layers = Vec::new();
    let mut fan_in = INPUTS;
    for (i, &width) in widths.iter().enumerate() {
        let name = format!("hidden.{i}");
        let fan_out = widths.get(i + 1).copied().unwrap_or(outputs);
        let expected = if activation.is_relu_family() {
            (2.0 / fan_in as f64).sqrt()
        } else {
            (2.0 / (fan_in + fan_out) as f64).sqrt()
        };
        sites.push(site(&name, activation, width));
        layers.push(layer(
            &name,
            fan_in,
            width,
            expected,
            0.002 + 0.0005 * i as f64,
        ));
        fan_in = width;
    }
    layers.push(layer(
        "output",
        fan_in,
        outputs,
        (2.0 / (fan_in + outputs) as f64).sqrt(),
        0.004,
    ));
    let gradient_ratio = layers[0].grad_rms / layers[layers.len() - 1].grad_rms;
    Probe {
        samples: SAMPLES,
        sites,
        layers,
        output: OutputStats {
            mean: vec![0.1; outputs],
            std: vec![2.0; outputs],
            min: -5.0,
            max: 8.0,
            zero_fraction: 0.0,
        },
        loss: 0.08,
        gradient_ratio,
    }
}

fn probe_of(activation: Activation) -> Probe {
    probe_with(activation, &[UNITS, UNITS], CLASSES)
}

fn site_mut<'a>(probe: &'a mut Probe, name: &str) -> &'a mut SiteStats {
    probe.sites.iter_mut().find(|s| s.name == name).unwrap()
}

fn layer_mut<'a>(probe: &'a mut Probe, name: &str) -> &'a mut LayerStats {
    probe.layers.iter_mut().find(|l| l.name == name).unwrap()
}

/// Makes `units` dead: their pre-activation never rises above `pre_max` (<= 0), so a ReLU
/// outputs 0 on every input.
fn kill_at(site: &mut SiteStats, units: Range<usize>, pre_max: f64) {
    for u in units {
        site.pre_max[u] = pre_max;
        site.inactive_fraction[u] = 1.0;
        site.mean[u] = 0.0;
        site.std[u] = 0.0;
        site.mean_abs[u] = 0.0;
        site.min[u] = 0.0;
        site.max[u] = 0.0;
    }
}

fn kill(site: &mut SiteStats, units: Range<usize>) {
    kill_at(site, units, -0.25);
}

/// Makes `units` alive but quiet: mean |output| of `mean_abs`.
fn quieten(site: &mut SiteStats, units: Range<usize>, mean_abs: f64) {
    for u in units {
        site.mean[u] = mean_abs;
        site.mean_abs[u] = mean_abs;
        site.std[u] = mean_abs;
        site.max[u] = 10.0 * mean_abs;
    }
}

/// Pins `units` at the upper flat end on `fraction` of inputs (upper, so they stay active and
/// do not also count as dormant).
fn saturate(site: &mut SiteStats, units: Range<usize>, fraction: f64) {
    for u in units {
        site.saturated_fraction[u] = fraction;
        site.mean[u] = 0.995;
        site.mean_abs[u] = 0.995;
        site.std[u] = 0.01;
        site.min[u] = 0.9;
        site.max[u] = 0.999;
    }
}

/// First layer's gradient RMS over the last layer's becomes `ratio`.
fn set_gradient_ratio(probe: &mut Probe, ratio: f64) {
    let last = probe.layers.last().unwrap().grad_rms;
    probe.layers[0].grad_rms = ratio * last;
    probe.layers[0].grad_norm = probe.layers[0].grad_rms * 100.0;
    probe.gradient_ratio = ratio;
}

fn point(train_loss: f64, train_accuracy: Option<f64>) -> EpochPoint {
    EpochPoint {
        train_loss,
        train_accuracy,
        test_accuracy: None,
    }
}

/// Ten epochs of a model that learned: loss 2.0 down to 0.081 (3.5% of ln 10), accuracy up
/// to 98%.
fn healthy_history() -> Vec<EpochPoint> {
    (0..10)
        .map(|i| point(2.0 * 0.7f64.powi(i), Some(0.98 - 0.05 * (9 - i) as f64)))
        .collect()
}

/// Ten epochs of a poor model that is still learning: loss 2.2 down to 1.48 (64% of ln 10,
/// falling 21% over the last 5 epochs), accuracy up to 42.5% (poor: below 55%, not hopeless:
/// above 20%).
fn poor_history() -> Vec<EpochPoint> {
    (0..10)
        .map(|i| point(2.2 - 0.08 * i as f64, Some(0.2 + 0.025 * i as f64)))
        .collect()
}

/// Nine epochs whose last five are flat at `loss`, with the given final accuracy.
fn plateau_history(loss: f64, accuracy: Option<f64>) -> Vec<EpochPoint> {
    let mut h: Vec<EpochPoint> = [0.9, 0.5, 0.2]
        .iter()
        .map(|d| point(loss + d, accuracy.map(|a| a * 0.8)))
        .collect();
    h.extend((0..6).map(|_| point(loss, accuracy)));
    h
}

/// Everything one diagnosis needs, owned.
struct Case {
    spec: CheckedSpec,
    task: Task,
    n_classes: usize,
    probe: Probe,
    initial: Option<Probe>,
    history: Vec<EpochPoint>,
    baseline_loss: f64,
    targets: Vec<f32>,
}

impl Case {
    /// The healthy classifier, probed at initialization and after training.
    fn healthy() -> Case {
        let probe = probe_of(Activation::Relu);
        Case {
            spec: spec(|_| {}),
            task: Task::Classification,
            n_classes: CLASSES,
            initial: Some(probe.clone()),
            probe,
            history: healthy_history(),
            baseline_loss: (CLASSES as f64).ln(),
            targets: Vec::new(),
        }
    }

    /// A healthy classifier with another activation (and its recommended init).
    fn healthy_with(activation: Activation) -> Case {
        let probe = probe_of(activation);
        Case {
            spec: spec(|s| {
                s.model.activation = activation;
                s.model.init = recommended_init(activation);
            }),
            initial: Some(probe.clone()),
            probe,
            ..Case::healthy()
        }
    }

    /// A healthy regression model on standardized diabetes targets with the given head; the
    /// targets are all reachable by a linear head.
    fn regression(head: OutputActivation) -> Case {
        let probe = probe_with(Activation::Relu, &[UNITS, UNITS], 1);
        let spec = spec(|s| {
            s.data.dataset = DatasetName::Diabetes;
            s.model.output_activation = head;
        });
        assert_eq!(spec.task(), Task::Regression);
        Case {
            spec,
            task: Task::Regression,
            n_classes: 0,
            initial: Some(probe.clone()),
            probe,
            history: (0..10)
                .map(|i| point(1.0 - 0.07 * i as f64, None))
                .collect(),
            baseline_loss: 1.0,
            targets: vec![0.5; 100],
        }
    }

    fn evidence(&self) -> Evidence<'_> {
        Evidence {
            spec: &self.spec,
            task: self.task,
            n_classes: self.n_classes,
            probe: &self.probe,
            initial: self.initial.as_ref(),
            history: &self.history,
            baseline_loss: self.baseline_loss,
            targets: &self.targets,
        }
    }

    fn run(&self) -> Vec<Finding> {
        diagnose(&self.evidence(), &self.spec.doctor)
    }

    fn harm(&self) -> Harm {
        Harm::assess(&self.evidence())
    }

    fn site(&mut self, name: &str) -> &mut SiteStats {
        site_mut(&mut self.probe, name)
    }

    fn initial_site(&mut self, name: &str) -> &mut SiteStats {
        site_mut(self.initial.as_mut().unwrap(), name)
    }
}

// ---------------------------------------------------------------------------------------------
// Assertion helpers
// ---------------------------------------------------------------------------------------------

/// `(code, severity, layer)` of every finding, in order.
fn summary(findings: &[Finding]) -> Vec<(&str, Severity, Option<&str>)> {
    findings
        .iter()
        .map(|f| (f.code.as_str(), f.severity, f.layer.as_deref()))
        .collect()
}

/// The only finding with `code`.
fn only<'a>(findings: &'a [Finding], code: &str) -> &'a Finding {
    let matching: Vec<_> = findings.iter().filter(|f| f.code == code).collect();
    assert_eq!(
        matching.len(),
        1,
        "expected one `{code}` in {:#?}",
        summary(findings)
    );
    matching[0]
}

fn has(findings: &[Finding], code: &str) -> bool {
    findings.iter().any(|f| f.code == code)
}

fn num(f: &Finding, key: &str) -> f64 {
    f.evidence[key]
        .as_f64()
        .unwrap_or_else(|| panic!("evidence `{key}` is not a number in {}", f.evidence))
}

fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{actual} != {expected}"
    );
}

fn remedies(f: &Finding) -> Vec<String> {
    f.remedies.iter().map(Remedy::label).collect()
}

const LEAKY: &str = "model.activation=leaky_relu";
const BATCH_NORM: &str = "model.batch_norm=true";
const TO_RELU: &str = "model.activation=relu, model.init=kaiming_normal";

// ---------------------------------------------------------------------------------------------
// Helpers in rules.rs
// ---------------------------------------------------------------------------------------------

#[test]
fn round_sig_keeps_three_significant_digits() {
    assert_eq!(round_sig(0.001234567), 0.00123);
    assert_eq!(round_sig(12345.0), 12300.0);
    assert_eq!(round_sig(-0.5), -0.5);
    assert_eq!(round_sig(0.0), 0.0);
    assert!(round_sig(f64::NAN).is_nan());
    assert_eq!(round_sig(f64::INFINITY), f64::INFINITY);
    assert_eq!(pct(0.499), "50%");
    assert_eq!(pct(0.1), "10%");
}

#[test]
fn learning_rate_is_high_from_0_01_with_adam_and_0_1_with_sgd() {
    let with = |optimizer, learning_rate| {
        spec(|s| {
            s.train.optimizer = optimizer;
            s.train.learning_rate = learning_rate;
        })
    };
    assert!(!lr_is_high(&with(Optimizer::Adam, 0.0099)));
    assert!(lr_is_high(&with(Optimizer::Adam, 0.01)));
    assert!(!lr_is_high(&with(Optimizer::Sgd, 0.099)));
    assert!(lr_is_high(&with(Optimizer::Sgd, 0.1)));
    // Adam far above its customary step goes straight back to 0.001; otherwise a tenth.
    assert_eq!(
        lower_lr(&with(Optimizer::Adam, 0.05), "").change["train.learning_rate"],
        0.001
    );
    assert_eq!(
        lower_lr(&with(Optimizer::Adam, 0.003), "").change["train.learning_rate"],
        0.0003
    );
    assert_eq!(
        lower_lr(&with(Optimizer::Sgd, 0.5), "").change["train.learning_rate"],
        0.05
    );
}

#[test]
fn recommended_init_follows_the_activation() {
    assert_eq!(recommended_init(Activation::Relu), Init::KaimingNormal);
    assert_eq!(recommended_init(Activation::LeakyRelu), Init::KaimingNormal);
    assert_eq!(recommended_init(Activation::Gelu), Init::KaimingNormal);
    assert_eq!(recommended_init(Activation::Sigmoid), Init::XavierUniform);
    assert_eq!(recommended_init(Activation::Tanh), Init::XavierUniform);
    assert_eq!(recommended_init(Activation::Identity), Init::XavierUniform);
    assert_eq!(recommended_init(Activation::Selu), Init::LecunNormal);
    // Either He variant is fine for ReLU; a Xavier variant for sigmoid; only LeCun for SELU.
    let with = |activation, init| {
        spec(|s| {
            s.model.activation = activation;
            s.model.init = init;
        })
    };
    assert!(init_is_recommended(&with(
        Activation::Relu,
        Init::KaimingUniform
    )));
    assert!(!init_is_recommended(&with(
        Activation::Relu,
        Init::XavierUniform
    )));
    assert!(init_is_recommended(&with(
        Activation::Sigmoid,
        Init::XavierNormal
    )));
    assert!(!init_is_recommended(&with(
        Activation::Sigmoid,
        Init::Normal
    )));
    assert!(init_is_recommended(&with(
        Activation::Selu,
        Init::LecunNormal
    )));
    assert!(!init_is_recommended(&with(
        Activation::Selu,
        Init::KaimingNormal
    )));
}

// ---------------------------------------------------------------------------------------------
// Harm
// ---------------------------------------------------------------------------------------------

#[test]
fn harm_poor_and_hopeless_boundaries() {
    // Baseline 2.0, 10 classes. With an accuracy, it decides: poor below 55%, hopeless below
    // 20%. Without one, the loss decides: poor above 1.0, hopeless above 1.8.
    let cases = [
        (0.98, None, false, false),
        (1.02, None, true, false),
        (1.78, None, true, false),
        (1.82, None, true, true),
        (0.2, Some(0.56), false, false),
        (0.2, Some(0.54), true, false),
        (0.2, Some(0.21), true, false),
        (0.2, Some(0.19), true, true),
        // An over-confident classifier: large cross-entropy, right almost always.
        (1.9, Some(0.99), false, false),
        (f64::NAN, Some(0.99), true, true),
        (f64::INFINITY, None, true, true),
    ];
    for (loss, accuracy, poor, hopeless) in cases {
        let case = Case {
            history: vec![point(3.0, accuracy.map(|_| 0.1)), point(loss, accuracy)],
            baseline_loss: 2.0,
            ..Case::healthy()
        };
        let harm = case.harm();
        assert_eq!(
            (harm.poor, harm.hopeless),
            (poor, hopeless),
            "loss {loss}, accuracy {accuracy:?}"
        );
        if loss.is_finite() {
            assert_close(harm.loss_ratio, loss / 2.0);
        }
        assert_eq!(harm.accuracy, accuracy);
        assert_close(harm.chance, 0.1);
    }
}

#[test]
fn harm_judges_by_the_worse_of_train_and_test_accuracy() {
    let with = |train, test| {
        let mut last = point(0.1, train);
        last.test_accuracy = test;
        let case = Case {
            history: vec![point(2.0, Some(0.1)), last],
            ..Case::healthy()
        };
        let harm = case.harm();
        (harm.accuracy, harm.poor, harm.hopeless)
    };
    // Memorized the train split, near chance on the test split.
    assert_eq!(with(Some(0.99), Some(0.15)), (Some(0.15), true, true));
    assert_eq!(with(Some(0.99), Some(0.54)), (Some(0.54), true, false));
    assert_eq!(with(Some(0.99), Some(0.97)), (Some(0.97), false, false));
    assert_eq!(with(None, Some(0.3)), (Some(0.3), true, false));
    assert_eq!(with(Some(0.3), None), (Some(0.3), true, false));
}

#[test]
fn harm_without_history_uses_the_probe_loss() {
    let mut case = Case {
        history: Vec::new(),
        baseline_loss: 2.0,
        ..Case::healthy()
    };
    case.probe.loss = 0.9;
    assert!(!case.harm().poor);
    case.probe.loss = 1.1;
    let harm = case.harm();
    assert!(harm.poor && !harm.hopeless);
    assert_eq!(harm.accuracy, None);
    case.probe.loss = f64::NAN;
    let harm = case.harm();
    assert!(harm.poor && harm.hopeless);
}

// ---------------------------------------------------------------------------------------------
// The healthy case and ordering
// ---------------------------------------------------------------------------------------------

#[test]
fn healthy_probe_and_history_give_no_findings() {
    let findings = Case::healthy().run();
    assert!(findings.is_empty(), "{:#?}", summary(&findings));
    assert!(is_healthy(&findings));
}

#[test]
fn healthy_probe_without_initial_probe_or_history_gives_no_findings() {
    let case = Case {
        initial: None,
        history: Vec::new(),
        ..Case::healthy()
    };
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
}

#[test]
fn healthy_sigmoid_tanh_and_regression_models_give_no_findings() {
    for activation in [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::LeakyRelu,
        Activation::Selu,
    ] {
        let findings = Case::healthy_with(activation).run();
        assert!(
            findings.is_empty(),
            "{activation}: {:#?}",
            summary(&findings)
        );
    }
    for head in [
        OutputActivation::None,
        OutputActivation::Relu,
        OutputActivation::Softplus,
    ] {
        let findings = Case::regression(head).run();
        assert!(findings.is_empty(), "{head}: {:#?}", summary(&findings));
    }
}

#[test]
fn findings_come_most_severe_first_keeping_rule_and_layer_order() {
    let mut case = Case {
        history: poor_history(),
        ..Case::healthy()
    };
    kill(case.site("hidden.0"), 0..10); // dead-units error (poor)
    kill(case.site("hidden.1"), 0..2); // dead-units advice
    quieten(case.site("hidden.1"), 2..7, 0.005); // dormant-units advice
    let initial = case.initial.as_mut().unwrap();
    layer_mut(initial, "hidden.1").weight_std *= 4.0; // init-scale-mismatch warning (poor)
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![
            ("dead-units", Severity::Error, Some("hidden.0")),
            ("init-scale-mismatch", Severity::Warning, Some("hidden.1")),
            ("dead-units", Severity::Advice, Some("hidden.1")),
            ("dormant-units", Severity::Advice, Some("hidden.1")),
        ]
    );
    assert!(!is_healthy(&findings));
}

#[test]
fn is_healthy_ignores_advice_only() {
    let mut case = Case::healthy();
    kill(case.site("hidden.1"), 0..2);
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("dead-units", Severity::Advice, Some("hidden.1"))]
    );
    assert!(is_healthy(&findings));
    assert!(is_healthy(&[]));
    kill(case.site("hidden.1"), 0..10);
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("dead-units", Severity::Warning, Some("hidden.1"))]
    );
    assert!(!is_healthy(&findings));
}

// ---------------------------------------------------------------------------------------------
// dead-units
// ---------------------------------------------------------------------------------------------

#[test]
fn dead_units_below_ten_percent_are_not_reported() {
    let mut case = Case::healthy();
    kill(case.site("hidden.1"), 0..1);
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
}

#[test]
fn a_unit_is_dead_when_its_largest_pre_activation_is_at_most_zero() {
    let mut case = Case::healthy();
    // Two units whose best pre-activation is exactly 0 are dead (10%) ...
    kill_at(case.site("hidden.0"), 0..2, 0.0);
    let f = only(&case.run(), "dead-units").clone();
    assert_eq!(f.evidence["dead"], 2);
    // ... a unit that rises just above 0 once is alive (5%, below the threshold).
    case.site("hidden.0").pre_max[1] = 1e-9;
    assert!(!has(&case.run(), "dead-units"));
}

#[test]
fn ten_percent_dead_is_advice_with_the_numbers() {
    let mut case = Case::healthy();
    kill(case.site("hidden.1"), 0..2);
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("dead-units", Severity::Advice, Some("hidden.1"))]
    );
    let f = &findings[0];
    assert_eq!(f.evidence["dead"], 2);
    assert_eq!(f.evidence["units"], 20);
    assert_close(num(f, "dead_fraction"), 0.1);
    assert_close(num(f, "dead_fraction_at_init"), 0.0);
    assert_eq!(f.evidence["samples"], SAMPLES);
    assert_close(
        num(f, "train_loss_over_baseline"),
        2.0 * 0.7f64.powi(9) / 10f64.ln(),
    );
    assert_close(num(f, "accuracy"), 0.98);
    assert!(
        f.message.starts_with("hidden.1: 2 of 20 units (10%)"),
        "{}",
        f.message
    );
}

#[test]
fn just_under_half_dead_is_still_advice_even_when_poor() {
    let mut case = Case {
        history: poor_history(),
        ..Case::healthy()
    };
    kill(case.site("hidden.0"), 0..9);
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("dead-units", Severity::Advice, Some("hidden.0"))]
    );
    assert_close(num(&findings[0], "dead_fraction"), 0.45);
}

#[test]
fn half_dead_layer_in_a_fine_model_is_a_warning() {
    let mut case = Case::healthy();
    kill(case.site("hidden.0"), 0..10);
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("dead-units", Severity::Warning, Some("hidden.0"))]
    );
    assert_close(num(&findings[0], "dead_fraction"), 0.5);
    assert_eq!(findings[0].evidence["dead"], 10);
}

#[test]
fn half_dead_layer_in_a_poor_model_is_an_error() {
    // Without an accuracy the loss decides: 52% of ln 10 is poor, 48% is not.
    let poor_by_loss = vec![point(2.0, None), point(1.2, None)];
    let fine_by_loss = vec![point(2.0, None), point(1.1, None)];
    // With one, the accuracy decides, whatever the loss: below 55% is poor.
    let poor_by_accuracy = vec![point(2.0, Some(0.3)), point(0.5, Some(0.54))];
    let fine_by_accuracy = vec![point(2.0, Some(0.3)), point(1.9, Some(0.56))];
    for (history, severity) in [
        (poor_history(), Severity::Error),
        (poor_by_loss, Severity::Error),
        (fine_by_loss, Severity::Warning),
        (poor_by_accuracy, Severity::Error),
        (fine_by_accuracy, Severity::Warning),
    ] {
        let mut case = Case {
            history: history.clone(),
            ..Case::healthy()
        };
        kill(case.site("hidden.1"), 0..10);
        let findings = case.run();
        let f = only(&findings, "dead-units");
        assert_eq!(
            (f.severity, f.layer.as_deref()),
            (severity, Some("hidden.1")),
            "{history:?}"
        );
        let last = history.last().unwrap();
        assert_close(
            num(f, "train_loss_over_baseline"),
            last.train_loss / 10f64.ln(),
        );
        assert_eq!(f.evidence["accuracy"].as_f64(), last.train_accuracy);
    }
}

#[test]
fn dead_units_error_from_the_probe_loss_without_history() {
    let mut case = Case {
        history: Vec::new(),
        initial: None,
        ..Case::healthy()
    };
    case.probe.loss = 2.0;
    kill(case.site("hidden.0"), 0..20);
    let findings = case.run();
    let f = only(&findings, "dead-units");
    assert_eq!(f.severity, Severity::Error);
    assert_close(num(f, "dead_fraction"), 1.0);
    assert!(f.evidence["accuracy"].is_null());
    assert!(f.evidence["dead_fraction_at_init"].is_null());
}

#[test]
fn every_layer_gets_its_own_dead_units_finding() {
    let mut case = Case::healthy();
    kill(case.site("hidden.0"), 0..12);
    kill(case.site("hidden.1"), 5..8);
    assert_eq!(
        summary(&case.run()),
        vec![
            ("dead-units", Severity::Warning, Some("hidden.0")),
            ("dead-units", Severity::Advice, Some("hidden.1")),
        ]
    );
}

#[test]
fn squashing_and_softplus_sites_are_never_dead() {
    for activation in [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softplus,
        Activation::Identity,
    ] {
        let mut case = Case {
            history: poor_history(),
            ..Case::healthy_with(activation)
        };
        for site in &mut case.probe.sites {
            site.pre_max = vec![-1.0; UNITS];
            site.inactive_fraction = vec![1.0; UNITS];
        }
        let findings = case.run();
        assert!(
            !has(&findings, "dead-units"),
            "{activation}: {:#?}",
            summary(&findings)
        );
    }
}

#[test]
fn every_relu_family_site_can_be_dead() {
    for activation in [
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Elu,
        Activation::Selu,
        Activation::Gelu,
        Activation::Silu,
    ] {
        let mut case = Case::healthy_with(activation);
        kill(case.site("hidden.0"), 0..10);
        let findings = case.run();
        assert_eq!(
            summary(&findings),
            vec![("dead-units", Severity::Warning, Some("hidden.0"))],
            "{activation}"
        );
    }
}

#[test]
fn dead_remedies_reset_negative_biases_first_then_lower_a_high_learning_rate() {
    let mut case = Case {
        spec: spec(|s| {
            s.model.bias_init = -1.0;
            s.train.learning_rate = 0.05;
        }),
        initial: None,
        history: poor_history(),
        ..Case::healthy()
    };
    kill(case.site("hidden.0"), 0..15);
    let findings = case.run();
    let f = only(&findings, "dead-units");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(
        remedies(f),
        [
            "model.bias_init=0.0",
            "train.learning_rate=0.001",
            LEAKY,
            BATCH_NORM
        ]
    );
}

#[test]
fn dead_remedies_lower_the_learning_rate_only_when_it_is_high() {
    for (optimizer, lr, expected) in [
        (Optimizer::Adam, 0.01, Some("train.learning_rate=0.001")),
        (Optimizer::Adam, 0.009, None),
        (Optimizer::Sgd, 0.1, Some("train.learning_rate=0.01")),
        (Optimizer::Sgd, 0.09, None),
    ] {
        let mut case = Case {
            spec: spec(|s| {
                s.train.optimizer = optimizer;
                s.train.learning_rate = lr;
            }),
            ..Case::healthy()
        };
        kill(case.site("hidden.1"), 0..4);
        let findings = case.run();
        let f = only(&findings, "dead-units");
        let mut want = Vec::new();
        want.extend(expected.map(str::to_string));
        want.push(LEAKY.to_string());
        want.push(BATCH_NORM.to_string());
        assert_eq!(remedies(f), want, "{optimizer} at {lr}");
    }
}

#[test]
fn units_born_dead_put_the_learning_rate_after_the_activation() {
    // Born with 10 dead, 10 dead now: they did not die in training, so a high learning rate is
    // a later, weaker remedy.
    let mut case = Case {
        spec: spec(|s| s.train.learning_rate = 0.05),
        ..Case::healthy()
    };
    kill(case.site("hidden.1"), 0..10);
    kill(case.initial_site("hidden.1"), 0..10);
    let findings = case.run();
    let f = only(&findings, "dead-units");
    assert_eq!(f.severity, Severity::Warning);
    assert_close(num(f, "dead_fraction_at_init"), 0.5);
    assert!(f.message.ends_with("(born with 50%)"), "{}", f.message);
    assert_eq!(
        remedies(f),
        [LEAKY, "train.learning_rate=0.001", BATCH_NORM]
    );
    // With negative biases, the biases are the cause: no learning-rate remedy at all.
    case.spec = spec(|s| {
        s.train.learning_rate = 0.05;
        s.model.bias_init = -0.5;
    });
    let findings = case.run();
    assert_eq!(
        remedies(only(&findings, "dead-units")),
        ["model.bias_init=0.0", LEAKY, BATCH_NORM]
    );
}

#[test]
fn units_that_died_in_training_are_told_apart_from_those_born_dead() {
    // Born with 20% dead, 50% now: more than half died in training.
    let mut case = Case {
        spec: spec(|s| s.train.learning_rate = 0.05),
        ..Case::healthy()
    };
    kill(case.site("hidden.1"), 0..10);
    kill(case.initial_site("hidden.1"), 0..4);
    assert_eq!(
        remedies(only(&case.run(), "dead-units")),
        ["train.learning_rate=0.001", LEAKY, BATCH_NORM]
    );
}

#[test]
fn dead_remedies_follow_the_activation_and_init() {
    // leaky_relu with a small slope: raise the slope rather than switch to leaky_relu.
    let mut case = Case {
        spec: spec(|s| {
            s.model.activation = Activation::LeakyRelu;
            s.model.init = Init::Normal;
            s.model.batch_norm = true;
        }),
        ..Case::healthy_with(Activation::LeakyRelu)
    };
    kill(case.site("hidden.0"), 0..10);
    assert_eq!(
        remedies(only(&case.run(), "dead-units")),
        ["model.leaky_slope=0.1", "model.init=kaiming_normal"]
    );
    // A slope of 0.1 already: nothing about the activation.
    case.spec = spec(|s| {
        s.model.activation = Activation::LeakyRelu;
        s.model.leaky_slope = 0.1;
    });
    assert_eq!(remedies(only(&case.run(), "dead-units")), [BATCH_NORM]);
}

// ---------------------------------------------------------------------------------------------
// dormant-units
// ---------------------------------------------------------------------------------------------

#[test]
fn a_quarter_of_a_layer_dormant_is_advice() {
    let mut case = Case::healthy();
    // 15 units at 0.4 and 5 at 0.0074: layer mean 0.30185, score 0.0245 <= 0.025.
    quieten(case.site("hidden.0"), 0..5, 0.0074);
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("dormant-units", Severity::Advice, Some("hidden.0"))]
    );
    let f = &findings[0];
    assert_eq!(f.evidence["dormant"], 5);
    assert_eq!(f.evidence["dormant_not_dead"], 5);
    assert_eq!(f.evidence["units"], 20);
    assert_close(num(f, "tau"), 0.025);
    assert_eq!(remedies(f), [LEAKY, BATCH_NORM]);
}

#[test]
fn units_just_above_tau_are_not_dormant() {
    let mut case = Case::healthy();
    // 5 units at 0.0077: layer mean 0.30193, score 0.0255 > 0.025.
    quieten(case.site("hidden.0"), 0..5, 0.0077);
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
}

#[test]
fn a_fifth_of_a_layer_dormant_is_not_reported() {
    let mut case = Case::healthy();
    quieten(case.site("hidden.1"), 0..4, 0.001);
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
}

#[test]
fn dead_units_do_not_count_as_dormant() {
    let mut case = Case::healthy();
    kill(case.site("hidden.1"), 0..10);
    quieten(case.site("hidden.1"), 10..14, 0.001);
    assert_eq!(
        summary(&case.run()),
        vec![("dead-units", Severity::Warning, Some("hidden.1"))]
    );
    quieten(case.site("hidden.1"), 14..15, 0.001);
    let findings = case.run();
    let f = only(&findings, "dormant-units");
    assert_eq!(f.evidence["dormant"], 15);
    assert_eq!(f.evidence["dormant_not_dead"], 5);
}

#[test]
fn dormant_units_stay_advice_in_a_poor_model_and_sigmoid_gets_no_leaky_relu() {
    let mut case = Case {
        history: poor_history(),
        ..Case::healthy_with(Activation::Sigmoid)
    };
    quieten(case.site("hidden.1"), 0..10, 0.002);
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("dormant-units", Severity::Advice, Some("hidden.1"))]
    );
    assert_eq!(remedies(&findings[0]), [BATCH_NORM]);
}

// ---------------------------------------------------------------------------------------------
// saturated-units
// ---------------------------------------------------------------------------------------------

#[test]
fn saturated_units_thresholds_on_a_sigmoid_layer() {
    for (saturated, history, expected) in [
        (4, healthy_history(), None),
        (5, healthy_history(), Some(Severity::Advice)),
        (9, poor_history(), Some(Severity::Advice)),
        (10, healthy_history(), Some(Severity::Warning)),
        (10, poor_history(), Some(Severity::Error)),
    ] {
        let mut case = Case {
            history,
            ..Case::healthy_with(Activation::Sigmoid)
        };
        saturate(case.site("hidden.1"), 0..saturated, 0.95);
        let findings = case.run();
        match expected {
            None => assert!(
                findings.is_empty(),
                "{saturated}: {:#?}",
                summary(&findings)
            ),
            Some(severity) => {
                assert_eq!(
                    summary(&findings),
                    vec![("saturated-units", severity, Some("hidden.1"))],
                    "{saturated} saturated"
                );
                let f = &findings[0];
                assert_eq!(f.evidence["saturated"], saturated);
                assert_eq!(f.evidence["units"], 20);
                assert_close(num(f, "saturated_fraction"), saturated as f64 / 20.0);
                assert_close(
                    num(f, "mean_saturated_input_fraction"),
                    0.95 * saturated as f64 / 20.0,
                );
            }
        }
    }
}

#[test]
fn a_unit_is_saturated_from_ninety_percent_of_its_inputs() {
    let mut case = Case::healthy_with(Activation::Tanh);
    saturate(case.site("hidden.0"), 0..10, 0.9);
    assert_eq!(
        summary(&case.run()),
        vec![("saturated-units", Severity::Warning, Some("hidden.0"))]
    );
    saturate(case.site("hidden.0"), 0..10, 0.89);
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
}

#[test]
fn relu_sites_never_saturate() {
    let mut case = Case {
        history: poor_history(),
        ..Case::healthy()
    };
    for site in &mut case.probe.sites {
        site.saturated_fraction = vec![1.0; UNITS];
    }
    assert!(!has(&case.run(), "saturated-units"));
}

#[test]
fn saturated_remedies_init_first_then_relu_then_batch_norm_then_learning_rate() {
    let mut case = Case {
        spec: spec(|s| {
            s.model.activation = Activation::Sigmoid;
            s.model.init = Init::Normal;
            s.model.init_std = 1.0;
            s.train.learning_rate = 0.05;
        }),
        initial: None,
        history: poor_history(),
        ..Case::healthy_with(Activation::Sigmoid)
    };
    saturate(case.site("hidden.0"), 0..20, 1.0);
    let findings = case.run();
    let f = only(&findings, "saturated-units");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(
        remedies(f),
        [
            "model.init=xavier_uniform",
            TO_RELU,
            BATCH_NORM,
            "train.learning_rate=0.001"
        ]
    );
    // Already on Xavier with batch norm and a modest learning rate: only the switch to ReLU.
    case.spec = spec(|s| {
        s.model.activation = Activation::Sigmoid;
        s.model.init = Init::XavierNormal;
        s.model.batch_norm = true;
    });
    assert_eq!(remedies(only(&case.run(), "saturated-units")), [TO_RELU]);
}

// ---------------------------------------------------------------------------------------------
// vanishing-gradients / exploding-gradients
// ---------------------------------------------------------------------------------------------

#[test]
fn vanishing_gradients_below_1e_minus_3() {
    let mut case = Case::healthy();
    set_gradient_ratio(&mut case.probe, 9e-4);
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("vanishing-gradients", Severity::Warning, Some("hidden.0"))]
    );
    let f = &findings[0];
    assert_close(num(f, "ratio"), 9e-4);
    assert_eq!(f.evidence["first_layer"], "hidden.0");
    assert_eq!(f.evidence["last_layer"], "output");
    assert_close(num(f, "first_grad_rms"), 9e-4 * 0.004);
    assert_close(num(f, "last_grad_rms"), 0.004);
    assert_close(num(f, "first_layer_zero_grad_fraction"), 0.0);
    assert_eq!(
        f.evidence["per_layer_grad_norm"].as_object().unwrap().len(),
        3
    );
    assert_eq!(remedies(f), [BATCH_NORM]);

    case.history = poor_history();
    assert_eq!(
        only(&case.run(), "vanishing-gradients").severity,
        Severity::Error
    );

    set_gradient_ratio(&mut case.probe, 1.1e-3);
    assert!(!has(&case.run(), "vanishing-gradients"));
}

#[test]
fn a_first_layer_starved_by_dead_units_is_not_vanishing() {
    let mut case = Case::healthy();
    set_gradient_ratio(&mut case.probe, 1e-5);
    case.probe.layers[0].zero_grad_fraction = 0.49;
    assert!(has(&case.run(), "vanishing-gradients"));
    case.probe.layers[0].zero_grad_fraction = 0.5;
    let findings = case.run();
    assert!(
        !has(&findings, "vanishing-gradients"),
        "{:#?}",
        summary(&findings)
    );
    assert!(findings.is_empty(), "{:#?}", summary(&findings));
}

#[test]
fn gradient_ratio_needs_three_layers() {
    let mut case = Case {
        probe: probe_with(Activation::Relu, &[UNITS], CLASSES),
        initial: None,
        spec: spec(|s| s.model.hidden = vec![UNITS]),
        ..Case::healthy()
    };
    set_gradient_ratio(&mut case.probe, 1e-6);
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
    set_gradient_ratio(&mut case.probe, 1e6);
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
}

#[test]
fn vanishing_remedies_for_a_sigmoid_net_start_with_relu() {
    let mut case = Case {
        spec: spec(|s| {
            s.model.activation = Activation::Sigmoid;
            s.model.init = Init::Normal;
        }),
        initial: None,
        ..Case::healthy_with(Activation::Sigmoid)
    };
    set_gradient_ratio(&mut case.probe, 1e-4);
    assert_eq!(
        remedies(only(&case.run(), "vanishing-gradients")),
        [TO_RELU, "model.init=xavier_uniform", BATCH_NORM]
    );
}

#[test]
fn exploding_gradients_above_1e3() {
    let mut case = Case::healthy();
    set_gradient_ratio(&mut case.probe, 1e3);
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
    set_gradient_ratio(&mut case.probe, 1.1e3);
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("exploding-gradients", Severity::Warning, Some("hidden.0"))]
    );
    assert_close(num(&findings[0], "ratio"), 1.1e3);
    assert_eq!(
        remedies(&findings[0]),
        ["train.learning_rate=0.0001", BATCH_NORM]
    );
    case.history = poor_history();
    assert_eq!(
        only(&case.run(), "exploding-gradients").severity,
        Severity::Error
    );
}

// ---------------------------------------------------------------------------------------------
// born-dead
// ---------------------------------------------------------------------------------------------

#[test]
fn constant_output_at_init_with_relu_sites_is_an_error() {
    let mut case = Case::healthy();
    kill(case.initial_site("hidden.1"), 0..UNITS);
    let initial = case.initial.as_mut().unwrap();
    initial.output.std = vec![0.0; CLASSES];
    let findings = case.run();
    // The network trained out of it (current probe and history healthy); born-dead still says
    // why the run started badly, and only once (no per-layer finding besides).
    assert_eq!(
        summary(&findings),
        vec![("born-dead", Severity::Error, Some("hidden.1"))]
    );
    let f = &findings[0];
    assert_eq!(
        f.evidence["output_std_at_init"],
        serde_json::json!(vec![0.0; CLASSES])
    );
    assert_eq!(f.evidence["dead_fraction_at_init"]["hidden.0"], 0.0);
    assert_eq!(f.evidence["dead_fraction_at_init"]["hidden.1"], 1.0);
    assert!(
        f.message.ends_with("every unit of hidden.1 is dead"),
        "{}",
        f.message
    );
    assert_eq!(remedies(f), [LEAKY]);
}

#[test]
fn constant_output_without_a_fully_dead_layer_names_no_layer() {
    let mut case = Case::healthy();
    case.initial.as_mut().unwrap().output.std = vec![0.0; CLASSES];
    assert_eq!(
        summary(&case.run()),
        vec![("born-dead", Severity::Error, None)]
    );
    // A tiny spread above 1e-6 of the output's scale (0.1) is not constant.
    case.initial.as_mut().unwrap().output.std = vec![2e-7; CLASSES];
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
}

#[test]
fn constant_output_at_init_of_a_sigmoid_net_is_not_born_dead() {
    let mut case = Case::healthy_with(Activation::Sigmoid);
    case.initial.as_mut().unwrap().output.std = vec![0.0; CLASSES];
    assert!(!has(&case.run(), "born-dead"));
}

#[test]
fn a_layer_half_dead_at_init_is_a_warning() {
    let mut case = Case::healthy();
    kill(case.initial_site("hidden.0"), 0..9);
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
    kill(case.initial_site("hidden.0"), 0..10);
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("born-dead", Severity::Warning, Some("hidden.0"))]
    );
    let f = &findings[0];
    assert_close(num(f, "dead_fraction_at_init"), 0.5);
    assert_close(num(f, "dead_fraction_now"), 0.0);
    assert_eq!(f.evidence["units"], 20);
    // Recovered, so even a poor model only gets a warning.
    case.history = poor_history();
    assert_eq!(only(&case.run(), "born-dead").severity, Severity::Warning);
}

#[test]
fn a_layer_still_dead_after_training_is_an_error_when_poor() {
    let mut case = Case::healthy();
    kill(case.initial_site("hidden.1"), 0..15);
    kill(case.site("hidden.1"), 0..12);
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![
            ("born-dead", Severity::Warning, Some("hidden.1")),
            ("dead-units", Severity::Warning, Some("hidden.1")),
        ]
    );
    assert_close(num(&findings[0], "dead_fraction_now"), 0.6);
    case.history = poor_history();
    assert_eq!(
        summary(&case.run()),
        vec![
            ("born-dead", Severity::Error, Some("hidden.1")),
            ("dead-units", Severity::Error, Some("hidden.1")),
        ]
    );
}

#[test]
fn no_born_dead_without_an_initial_probe() {
    let mut case = Case {
        initial: None,
        history: poor_history(),
        ..Case::healthy()
    };
    kill(case.site("hidden.0"), 0..UNITS);
    case.probe.output.std = vec![0.0; CLASSES];
    let findings = case.run();
    assert!(!has(&findings, "born-dead"), "{:#?}", summary(&findings));
    assert_eq!(only(&findings, "dead-units").severity, Severity::Error);
}

#[test]
fn born_dead_remedies_for_a_deep_narrow_net_with_negative_biases() {
    let widths = [3; 10];
    let probe = probe_with(Activation::Relu, &widths, CLASSES);
    let mut case = Case {
        spec: spec(|s| {
            s.model.hidden = widths.to_vec();
            s.model.bias_init = -0.1;
            s.model.init = Init::XavierUniform;
        }),
        initial: Some(probe.clone()),
        probe,
        history: plateau_history(2.3, Some(0.1)),
        ..Case::healthy()
    };
    kill(case.initial_site("hidden.4"), 0..3);
    case.initial.as_mut().unwrap().output.std = vec![0.0; CLASSES];
    let findings = case.run();
    let f = only(&findings, "born-dead");
    assert_eq!(
        (f.severity, f.layer.as_deref()),
        (Severity::Error, Some("hidden.4"))
    );
    assert_eq!(
        remedies(f),
        [
            "model.bias_init=0.0",
            "model.hidden=[32,32,32,32,32]",
            "model.hidden=[32,32,32,32,32,32,32,32,32,32]",
            "model.init=kaiming_normal",
            LEAKY
        ]
    );
    // Three layers deep is not "deep": no widening.
    case.spec = spec(|s| s.model.hidden = vec![3, 3, 3]);
    assert_eq!(remedies(only(&case.run(), "born-dead")), [LEAKY]);
}

// ---------------------------------------------------------------------------------------------
// output-range-mismatch
// ---------------------------------------------------------------------------------------------

/// 100 targets, `negative` of them at -0.5 and the rest at 0.5.
fn targets(negative: usize) -> Vec<f32> {
    (0..100)
        .map(|i| if i < negative { -0.5 } else { 0.5 })
        .collect()
}

#[test]
fn relu_head_with_ten_percent_negative_targets_is_an_error() {
    let case = Case {
        targets: targets(10),
        ..Case::regression(OutputActivation::Relu)
    };
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("output-range-mismatch", Severity::Error, Some("output"))]
    );
    let f = &findings[0];
    assert_close(num(f, "unreachable_fraction"), 0.1);
    assert_eq!(f.evidence["unreachable"], 10);
    assert_close(num(f, "target_min"), -0.5);
    assert_close(num(f, "target_max"), 0.5);
    assert_eq!(f.evidence["output_activation"], "relu");
    assert_eq!(remedies(f), ["model.output_activation=none"]);
}

#[test]
fn relu_head_with_one_to_ten_percent_negative_targets_is_a_warning() {
    for negative in [1, 9] {
        let case = Case {
            targets: targets(negative),
            ..Case::regression(OutputActivation::Relu)
        };
        assert_eq!(
            summary(&case.run()),
            vec![("output-range-mismatch", Severity::Warning, Some("output"))],
            "{negative}%"
        );
    }
}

#[test]
fn relu_head_with_under_one_percent_negative_targets_is_fine() {
    let mut targets = vec![0.5f32; 201];
    targets[0] = -0.5; // 0.5%
    targets[1] = 0.0; // a relu head can output exactly 0
    let case = Case {
        targets,
        ..Case::regression(OutputActivation::Relu)
    };
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
}

#[test]
fn linear_heads_and_classification_have_no_range_to_miss() {
    let case = Case {
        targets: targets(50),
        ..Case::regression(OutputActivation::None)
    };
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
    // A relu head on a classifier: targets are class labels, not values the head must reach.
    let case = Case {
        spec: spec(|s| s.model.output_activation = OutputActivation::Relu),
        targets: targets(50),
        ..Case::healthy()
    };
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
}

#[test]
fn tanh_head_reaches_only_the_open_interval() {
    let mut case = Case {
        targets: (0..100).map(|i| i as f32 / 50.0 - 0.99).collect(), // -0.99 to 0.99
        ..Case::regression(OutputActivation::Tanh)
    };
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
    // A sine wave's targets hit -1 and 1, which tanh only approaches.
    for y in case.targets.iter_mut().take(10) {
        *y = if *y < 0.0 { -1.0 } else { 1.0 };
    }
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("output-range-mismatch", Severity::Error, Some("output"))]
    );
    assert_close(num(&findings[0], "target_min"), -1.0);
}

#[test]
fn sigmoid_and_softplus_heads_cannot_reach_zero() {
    for head in [OutputActivation::Sigmoid, OutputActivation::Softplus] {
        let mut targets = vec![0.5f32; 100];
        targets[..5].fill(0.0);
        let case = Case {
            targets,
            ..Case::regression(head)
        };
        let findings = case.run();
        let f = only(&findings, "output-range-mismatch");
        assert_eq!(f.severity, Severity::Warning, "{head}");
        assert_eq!(f.evidence["unreachable"], 5);
    }
}

// ---------------------------------------------------------------------------------------------
// init-scale-mismatch
// ---------------------------------------------------------------------------------------------

#[test]
fn init_scale_tolerance_is_three_times_either_way() {
    for (factor, expected) in [
        (2.9, None),
        (3.1, Some(Severity::Advice)),
        (1.0 / 2.9, None),
        (1.0 / 3.1, Some(Severity::Advice)),
    ] {
        let mut case = Case::healthy();
        layer_mut(case.initial.as_mut().unwrap(), "hidden.1").weight_std *= factor;
        let findings = case.run();
        match expected {
            None => assert!(findings.is_empty(), "{factor}: {:#?}", summary(&findings)),
            Some(severity) => {
                assert_eq!(
                    summary(&findings),
                    vec![("init-scale-mismatch", severity, Some("hidden.1"))],
                    "{factor}"
                );
                let off = &findings[0].evidence["layers"];
                assert_eq!(off.as_array().unwrap().len(), 1);
                assert_eq!(off[0]["layer"], "hidden.1");
                assert_close(off[0]["ratio"].as_f64().unwrap(), factor);
                assert_close(num(&findings[0], "tolerance"), 3.0);
                assert_eq!(remedies(&findings[0]), ["model.init=kaiming_normal"]);
            }
        }
    }
}

#[test]
fn init_scale_mismatch_is_a_warning_when_poor_and_names_the_worst_layer() {
    let mut case = Case {
        history: poor_history(),
        ..Case::healthy()
    };
    let initial = case.initial.as_mut().unwrap();
    layer_mut(initial, "hidden.0").weight_std *= 4.0;
    layer_mut(initial, "output").weight_std /= 5.0;
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("init-scale-mismatch", Severity::Warning, Some("output"))]
    );
    let off = findings[0].evidence["layers"].as_array().unwrap().clone();
    assert_eq!(off.len(), 2);
    assert_eq!(off[0]["layer"], "hidden.0");
    assert_eq!(off[1]["layer"], "output");
    assert!(
        findings[0].message.starts_with("2 of 3 layers"),
        "{}",
        findings[0].message
    );
}

#[test]
fn init_scale_looks_only_at_the_initial_weights() {
    // Trained weights drift: the current probe's scale does not matter.
    let mut case = Case::healthy();
    layer_mut(&mut case.probe, "hidden.0").weight_std *= 10.0;
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
    // Without an initial probe there is nothing to compare.
    let mut initial = case.initial.take().unwrap();
    layer_mut(&mut initial, "hidden.0").weight_std *= 10.0;
    assert!(case.run().is_empty());
    // A layer with no expectation is skipped.
    layer_mut(&mut initial, "hidden.0").expected_weight_std = 0.0;
    case.initial = Some(initial);
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
}

#[test]
fn init_scale_remedy_follows_the_activation() {
    for (activation, init) in [
        (Activation::Sigmoid, "model.init=xavier_uniform"),
        (Activation::Selu, "model.init=lecun_normal"),
        (Activation::Gelu, "model.init=kaiming_normal"),
    ] {
        let mut case = Case::healthy_with(activation);
        layer_mut(case.initial.as_mut().unwrap(), "hidden.0").weight_std *= 10.0;
        assert_eq!(
            remedies(only(&case.run(), "init-scale-mismatch")),
            [init],
            "{activation}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// stalled-training
// ---------------------------------------------------------------------------------------------

#[test]
fn a_plateau_while_poor_is_a_warning() {
    let case = Case {
        history: plateau_history(1.5, Some(0.45)),
        ..Case::healthy()
    };
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("stalled-training", Severity::Warning, None)]
    );
    let f = &findings[0];
    assert_eq!(f.evidence["epochs"], 9);
    assert_eq!(f.evidence["window"], 5);
    assert_close(num(f, "relative_improvement"), 0.0);
    assert_close(num(f, "final_train_loss"), 1.5);
    assert_close(num(f, "accuracy"), 0.45);
    assert_close(num(f, "chance_accuracy"), 0.1);
    assert_close(num(f, "baseline_loss"), 10f64.ln());
    // Adam at a modest rate: nothing to suggest beyond the other findings.
    assert!(f.remedies.is_empty());
}

#[test]
fn stall_threshold_is_one_percent_over_the_last_five_epochs() {
    for (improvement, stalled) in [(0.009, true), (0.011, false)] {
        let mut history: Vec<EpochPoint> = [3.0, 2.5, 2.0, 1.5]
            .iter()
            .map(|&l| point(l, Some(0.4)))
            .collect();
        history
            .extend((1..=5).map(|i| point(1.5 * (1.0 - improvement * i as f64 / 5.0), Some(0.4))));
        let case = Case {
            history,
            ..Case::healthy()
        };
        let findings = case.run();
        if stalled {
            let f = only(&findings, "stalled-training");
            assert_eq!(f.severity, Severity::Warning);
            assert_close(num(f, "relative_improvement"), improvement);
        } else {
            assert!(
                findings.is_empty(),
                "{improvement}: {:#?}",
                summary(&findings)
            );
        }
    }
}

#[test]
fn a_hopeless_model_is_an_error_plateau_or_not() {
    // Within 10 points of chance, flat.
    let case = Case {
        history: plateau_history(2.0, Some(0.15)),
        ..Case::healthy()
    };
    assert_eq!(
        summary(&case.run()),
        vec![("stalled-training", Severity::Error, None)]
    );
    // Within 10 points of chance, still falling.
    let case = Case {
        history: (0..10)
            .map(|i| point(2.3 - 0.05 * i as f64, Some(0.15)))
            .collect(),
        ..Case::healthy()
    };
    assert_eq!(
        summary(&case.run()),
        vec![("stalled-training", Severity::Error, None)]
    );
    // Regression: above 90% of the constant predictor's loss.
    let case = Case {
        history: plateau_history(0.95, None),
        ..Case::regression(OutputActivation::None)
    };
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("stalled-training", Severity::Error, None)]
    );
    assert!(findings[0].evidence["accuracy"].is_null());
    // No chance accuracy for a regression: there are no classes to guess among.
    assert!(
        findings[0].evidence.get("chance_accuracy").is_none(),
        "{:#}",
        findings[0].evidence
    );
}

#[test]
fn the_stall_message_says_what_the_loss_did() {
    // The best loss of the last five epochs is 20% above the best before: "rose 20%", not
    // "improved 0%".
    let history = [3.0, 2.0, 1.0, 1.0, 1.2, 1.3, 1.35, 1.4, 1.43]
        .iter()
        .map(|&l| point(l, Some(0.4)))
        .collect();
    let case = Case {
        history,
        ..Case::healthy()
    };
    let findings = case.run();
    let f = only(&findings, "stalled-training");
    assert!(f.message.contains("rose 20%"), "{}", f.message);
    assert!(!f.message.contains("improved"), "{}", f.message);
    // Flat.
    let case = Case {
        history: plateau_history(1.5, Some(0.45)),
        ..Case::healthy()
    };
    let findings = case.run();
    let f = only(&findings, "stalled-training");
    assert!(f.message.contains("stayed flat"), "{}", f.message);
    // Fell 13% but hopeless: says it fell, and why that is still an error.
    let case = Case {
        history: (0..10)
            .map(|i| point(2.3 * 0.97f64.powi(i), Some(0.15)))
            .collect(),
        ..Case::healthy()
    };
    let findings = case.run();
    let f = only(&findings, "stalled-training");
    assert_eq!(f.severity, Severity::Error);
    assert!(f.message.contains("fell"), "{}", f.message);
    assert!(
        f.message.contains("no better than a constant"),
        "{}",
        f.message
    );
}

/// The check's documentation: "error when it ended within 10% of chance accuracy or of the
/// constant predictor's loss" (and "or ended near a constant predictor's loss" as a stall).
#[test]
fn a_classifier_stuck_near_the_constant_predictors_loss_is_an_error() {
    // Flat at 95% of ln 10 with 45% train accuracy: poor, not within 10 points of chance, but
    // within 10% of the constant predictor's loss.
    let case = Case {
        history: plateau_history(0.95 * 10f64.ln(), Some(0.45)),
        ..Case::healthy()
    };
    assert_eq!(
        summary(&case.run()),
        vec![("stalled-training", Severity::Error, None)]
    );
}

#[test]
fn no_stall_for_a_healthy_plateau_or_a_poor_model_still_learning() {
    let case = Case {
        history: plateau_history(0.1, Some(0.98)),
        ..Case::healthy()
    };
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
    let case = Case {
        history: poor_history(),
        ..Case::healthy()
    };
    assert!(case.run().is_empty(), "{:#?}", summary(&case.run()));
    // One epoch is no history.
    let case = Case {
        history: vec![point(2.3, Some(0.1))],
        ..Case::healthy()
    };
    assert!(!has(&case.run(), "stalled-training"));
}

#[test]
fn stall_remedies_follow_the_optimizer() {
    for (optimizer, lr, expected) in [
        (Optimizer::Adam, 0.05, vec!["train.learning_rate=0.001"]),
        (Optimizer::Sgd, 0.2, vec!["train.learning_rate=0.02"]),
        (
            Optimizer::Sgd,
            0.01,
            vec!["train.learning_rate=0.001, train.optimizer=adam"],
        ),
        (Optimizer::Adam, 0.001, vec![]),
    ] {
        let case = Case {
            spec: spec(|s| {
                s.train.optimizer = optimizer;
                s.train.learning_rate = lr;
            }),
            history: plateau_history(1.5, Some(0.45)),
            ..Case::healthy()
        };
        assert_eq!(
            remedies(only(&case.run(), "stalled-training")),
            expected,
            "{optimizer} {lr}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// non-finite
// ---------------------------------------------------------------------------------------------

#[test]
fn nan_in_the_history_is_an_error_and_nothing_else() {
    let case = Case {
        history: vec![
            point(2.0, Some(0.3)),
            point(1.5, Some(0.4)),
            point(f64::NAN, None),
            point(f64::NAN, None),
        ],
        ..Case::healthy()
    };
    let findings = case.run();
    assert_eq!(
        summary(&findings),
        vec![("non-finite", Severity::Error, None)]
    );
    let f = &findings[0];
    assert_eq!(f.evidence["first_non_finite_epoch"], 3);
    assert_close(num(f, "probe_loss"), 0.08);
    assert_close(num(f, "learning_rate"), 0.001);
    assert!(f.message.contains("epoch 3"), "{}", f.message);
    assert_eq!(remedies(f), ["train.learning_rate=0.0001", BATCH_NORM]);
}

#[test]
fn non_finite_probe_statistics_are_an_error() {
    type Break = fn(&mut Probe);
    let breaks: [(&str, Break); 7] = [
        ("loss", |p| p.loss = f64::INFINITY),
        ("site mean", |p| p.sites[0].mean[3] = f64::NAN),
        ("site std", |p| p.sites[1].std[0] = f64::INFINITY),
        ("site max", |p| p.sites[1].max[19] = f64::NAN),
        ("weight std", |p| p.layers[1].weight_std = f64::NAN),
        ("grad norm", |p| p.layers[2].grad_norm = f64::INFINITY),
        ("output mean", |p| p.output.mean[0] = f64::NAN),
    ];
    for (what, break_probe) in breaks {
        let mut case = Case::healthy();
        break_probe(&mut case.probe);
        let findings = case.run();
        assert_eq!(
            summary(&findings),
            vec![("non-finite", Severity::Error, None)],
            "{what}"
        );
        assert!(findings[0].evidence["first_non_finite_epoch"].is_null());
        if what == "loss" {
            assert!(findings[0].evidence["probe_loss"].is_null());
        }
    }
}

/// The check's documentation promises "non-finite activation, output, weight or gradient
/// statistics in the probe"; a NaN largest pre-activation would otherwise hide a dead unit
/// (`NaN <= 0` is false), a NaN mean |output| a dormant one.
#[test]
fn non_finite_in_any_per_unit_or_output_statistic_is_an_error() {
    type Break = fn(&mut Probe);
    let breaks: [(&str, Break); 6] = [
        ("site pre_max", |p| p.sites[0].pre_max[0] = f64::NAN),
        ("site mean_abs", |p| p.sites[0].mean_abs[0] = f64::NAN),
        ("site min", |p| p.sites[0].min[0] = f64::NEG_INFINITY),
        ("output std", |p| p.output.std[0] = f64::NAN),
        ("output max", |p| p.output.max = f64::INFINITY),
        ("first layer grad rms", |p| p.layers[0].grad_rms = f64::NAN),
    ];
    let mut missed = Vec::new();
    for (what, break_probe) in breaks {
        let mut case = Case::healthy();
        break_probe(&mut case.probe);
        if !has(&case.run(), "non-finite") {
            missed.push(what);
        }
    }
    assert!(missed.is_empty(), "non-finite missed: {missed:?}");
}

// ---------------------------------------------------------------------------------------------
// Property: random but valid statistics
// ---------------------------------------------------------------------------------------------

const ACTIVATIONS: [Activation; 10] = [
    Activation::Relu,
    Activation::LeakyRelu,
    Activation::Elu,
    Activation::Selu,
    Activation::Gelu,
    Activation::Silu,
    Activation::Softplus,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Identity,
];

/// A value in `range`, or exactly 0 (thresholds compare with 0).
fn or_zero(range: Range<f64>) -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), range]
}

fn arb_site(name: String) -> impl Strategy<Value = SiteStats> {
    (1usize..=8, prop::sample::select(ACTIVATIONS.to_vec())).prop_flat_map(
        move |(units, activation)| {
            let name = name.clone();
            let fractions = || prop::collection::vec(0.0..=1.0f64, units);
            (
                fractions(),
                prop::collection::vec(prop_oneof![0.0..=1.0f64, Just(1.0), Just(0.9)], units),
                prop::collection::vec(or_zero(-2.0..2.0), units),
                prop::collection::vec(or_zero(0.0..2.0), units),
                prop::collection::vec(or_zero(0.0..2.0), units),
                prop::collection::vec(-2.0..2.0f64, units),
            )
                .prop_map(
                    move |(inactive, saturated, pre_max, mean_abs, std, mean)| SiteStats {
                        name: name.clone(),
                        activation,
                        units,
                        observations: SAMPLES,
                        inactive_fraction: inactive,
                        saturated_fraction: saturated,
                        min: mean.iter().map(|m| m - 1.0).collect(),
                        max: mean.iter().map(|m| m + 1.0).collect(),
                        mean,
                        std,
                        mean_abs,
                        pre_max,
                        pre_histogram: histogram(),
                        post_histogram: histogram(),
                    },
                )
        },
    )
}

/// weight std, expected std, gradient RMS, zero-gradient fraction.
fn arb_layer_numbers() -> impl Strategy<Value = (f64, f64, f64, f64)> {
    (
        (-4.0..1.0f64).prop_map(|e| 10f64.powf(e)),
        prop_oneof![Just(0.0), (-3.0..0.0f64).prop_map(|e| 10f64.powf(e))],
        prop_oneof![Just(0.0), (-9.0..0.0f64).prop_map(|e| 10f64.powf(e))],
        0.0..=1.0f64,
    )
}

fn arb_probe() -> impl Strategy<Value = Probe> {
    (0usize..=4)
        .prop_flat_map(|depth| {
            let sites: Vec<_> = (0..depth)
                .map(|i| arb_site(format!("hidden.{i}")))
                .collect();
            (
                sites,
                prop::collection::vec(arb_layer_numbers(), depth + 1),
                (1usize..=10).prop_flat_map(|outputs| {
                    (
                        prop::collection::vec(-3.0..3.0f64, outputs),
                        prop::collection::vec(or_zero(0.0..3.0), outputs),
                        0.0..=1.0f64,
                    )
                }),
                0.0..5.0f64,
            )
        })
        .prop_map(|(sites, numbers, (mean, std, zero_fraction), loss)| {
            let mut fan_in = INPUTS;
            let mut layers = Vec::new();
            for (i, &(weight_std, expected, grad_rms, zero_grad)) in numbers.iter().enumerate() {
                let (name, units) = match sites.get(i) {
                    Some(s) => (s.name.clone(), s.units),
                    None => ("output".to_string(), mean.len()),
                };
                let mut l = layer(&name, fan_in, units, expected.max(1e-3), grad_rms);
                l.weight_std = weight_std;
                l.expected_weight_std = expected;
                l.zero_grad_fraction = zero_grad;
                layers.push(l);
                fan_in = units;
            }
            // As `probe` computes it.
            let (first, last) = (&layers[0], &layers[layers.len() - 1]);
            let gradient_ratio = if layers.len() > 1 && last.grad_rms > 0.0 {
                first.grad_rms / last.grad_rms
            } else if layers.len() > 1 && first.grad_rms > 0.0 {
                f64::INFINITY
            } else {
                1.0
            };
            Probe {
                samples: SAMPLES,
                sites,
                layers,
                output: OutputStats {
                    min: mean.iter().copied().fold(0.0, f64::min) - 1.0,
                    max: mean.iter().copied().fold(0.0, f64::max) + 1.0,
                    mean,
                    std,
                    zero_fraction,
                },
                loss,
                gradient_ratio,
            }
        })
}

/// A spec, its task and its classes.
fn preset(index: usize) -> (CheckedSpec, Task, usize) {
    let classify = |edit: fn(&mut Spec)| (spec(edit), Task::Classification, CLASSES);
    let regress = |head| {
        let spec = spec(|s| {
            s.data.dataset = DatasetName::Diabetes;
            s.model.output_activation = head;
        });
        (spec, Task::Regression, 0)
    };
    match index {
        0 => classify(|_| {}),
        1 => classify(|s| {
            s.model.bias_init = -1.0;
            s.train.optimizer = Optimizer::Sgd;
            s.train.learning_rate = 0.5;
        }),
        2 => classify(|s| {
            s.model.activation = Activation::Sigmoid;
            s.model.init = Init::Normal;
            s.model.init_std = 1.0;
        }),
        3 => classify(|s| {
            s.model.activation = Activation::LeakyRelu;
            s.model.hidden = vec![3; 6];
            s.model.batch_norm = true;
            s.train.learning_rate = 0.02;
        }),
        4 => classify(|s| s.model.activation = Activation::Selu),
        5 => regress(OutputActivation::Relu),
        6 => regress(OutputActivation::Tanh),
        7 => regress(OutputActivation::Sigmoid),
        _ => regress(OutputActivation::None),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn diagnose_is_total_and_consistent_on_valid_statistics(
        preset_index in 0usize..9,
        probe in arb_probe(),
        initial in prop::option::of(arb_probe()),
        history in prop::collection::vec(
            (0.0..5.0f64, prop::option::of(0.0..=1.0f64), prop::option::of(0.0..=1.0f64)),
            0..12,
        ),
        baseline_loss in 0.01..5.0f64,
        targets in prop::collection::vec(-2.0f32..2.0, 0..40),
    ) {
        let (spec, task, n_classes) = preset(preset_index);
        let history: Vec<EpochPoint> = history
            .into_iter()
            .map(|(loss, train, test)| EpochPoint { test_accuracy: test, ..point(loss, train) })
            .collect();
        let e = Evidence {
            spec: &spec,
            task,
            n_classes,
            probe: &probe,
            initial: initial.as_ref(),
            history: &history,
            baseline_loss,
            targets: &targets,
        };
        let findings = diagnose(&e, &spec.doctor);
        let harm = Harm::assess(&e);

        prop_assert_eq!(
            is_healthy(&findings),
            findings.iter().all(|f| f.severity < Severity::Warning)
        );
        prop_assert!(findings.windows(2).all(|w| w[0].severity >= w[1].severity));
        let mut seen = std::collections::BTreeSet::new();
        for f in &findings {
            prop_assert!(CHECKS.iter().any(|c| c.code == f.code), "undocumented code {}", f.code);
            prop_assert!(seen.insert((f.code.clone(), f.layer.clone())), "duplicate {} {:?}", f.code, f.layer);
            // Every statistic is finite.
            prop_assert_ne!(f.code.as_str(), "non-finite");
            // Severity scales with harm: these rules reach `error` only when the model is poor.
            let harm_gated = ["dead-units", "saturated-units", "vanishing-gradients", "exploding-gradients"];
            if harm_gated.contains(&f.code.as_str()) && f.severity == Severity::Error {
                prop_assert!(harm.poor, "{} is an error in a model that is not poor", f.code);
            }
            if f.code == "dormant-units" {
                prop_assert_eq!(f.severity, Severity::Advice);
            }
            if f.code == "init-scale-mismatch" {
                prop_assert!(f.severity < Severity::Error);
            }
            prop_assert!(serde_json::to_string(f).is_ok());
        }
    }
}

#[test]
fn dead_units_driven_by_the_biases_name_them_as_the_cause_and_reset_them_first() {
    let mut case = Case::healthy();
    case.spec = spec(|s| s.model.bias_init = -3.0);
    kill(case.site("hidden.1"), 0..UNITS);
    let layer = layer_mut(&mut case.probe, "hidden.1");
    layer.bias_mean = -3.0;
    layer.pre_mean = Some(-2.8);
    let findings = case.run();
    let f = only(&findings, "dead-units");
    assert!(f.message.contains("the biases cause it"), "{}", f.message);
    assert_eq!(f.evidence["root_cause"], "bias");
    assert_close(num(f, "bias_mean"), -3.0);
    assert_close(num(f, "weight_contribution_mean"), 0.2);
    assert_close(num(f, "pre_activation_mean"), -2.8);
    assert_eq!(f.remedies[0].label(), "model.bias_init=0.0");
    assert_eq!(
        f.remedies
            .iter()
            .filter(|r| r.change.contains_key("model.bias_init"))
            .count(),
        1
    );
}

#[test]
fn dead_units_driven_by_the_weights_do_not_blame_the_biases() {
    let mut case = Case::healthy();
    kill(case.site("hidden.1"), 0..UNITS);
    let layer = layer_mut(&mut case.probe, "hidden.1");
    // The weights push the layer down (-2.0); its biases barely (-0.1).
    layer.bias_mean = -0.1;
    layer.pre_mean = Some(-2.1);
    let f = only(&case.run(), "dead-units").clone();
    assert!(!f.message.contains("biases"), "{}", f.message);
    assert!(f.evidence.get("root_cause").is_none());
    // Without a measured pre-activation mean (a conv layer), nothing is claimed either.
    let mut case = Case::healthy();
    case.spec = spec(|s| s.model.bias_init = -3.0);
    kill(case.site("hidden.1"), 0..UNITS);
    layer_mut(&mut case.probe, "hidden.1").bias_mean = -3.0;
    let f = only(&case.run(), "dead-units").clone();
    assert!(f.evidence.get("root_cause").is_none());
}
