//! Tests of the HTML report on a real diagnosis of a tiny digits network (trained once per
//! test process, in about a second), with a hand-made fix report beside it.

use std::path::Path;
use std::sync::OnceLock;

use nd_remedy::{Candidate, DiagnoseOptions, Judged, LayerHealth, SeedMetrics};

use super::*;

/// Digits, two small ReLU layers, Adam at 0.1: units die, so there are findings to show.
const SPEC: &str = r#"
name = "tiny-digits"
[data]
dataset = "digits"
limit = 400
[model]
hidden = [24, 16]
activation = "relu"
[train]
optimizer = "adam"
learning_rate = 0.1
epochs = 4
batch_size = 32
"#;

/// The run label holds characters HTML must escape.
const RUN_LABEL: &str = "runs/<tiny & \"digits\">";

struct Fixture {
    diagnosis: Diagnosis,
    metrics: Vec<EpochMetrics>,
    health: Vec<EpochHealth>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let spec = nd_spec::Spec::from_toml_str(SPEC, "tiny-digits")
            .and_then(|s| s.check())
            .expect("the test spec is valid");
        let data = nd_data::load(&spec.data, Path::new(".")).expect("digits ship in the binary");
        let device = nd_train::device(spec.train.backend).expect("ndarray is available");
        let trained = nd_train::train(&spec, &data, &device, &mut nd_train::Quiet)
            .expect("the tiny network trains");
        let diagnosis = nd_remedy::diagnose_networks(
            RUN_LABEL,
            &spec,
            &data,
            Some(&trained.initial),
            &trained.network,
            &trained.metrics,
            &DiagnoseOptions::default(),
            &device,
        );
        Fixture {
            diagnosis,
            metrics: trained.metrics,
            health: trained.health,
        }
    })
}

fn outcome(d: &Diagnosis, primary: [f64; 2], dead_scale: f64) -> Outcome {
    Outcome {
        run: d.run.clone(),
        metrics: SeedMetrics {
            seeds: vec![42, 43],
            primary: primary.to_vec(),
            train_loss: vec![1.2, 1.3],
        },
        dead_fraction: d.dead_fraction() * dead_scale,
        layers: d
            .layers
            .iter()
            .map(|l| LayerHealth {
                name: l.name.clone(),
                dead_fraction: l.dead_fraction * dead_scale,
                dormant_fraction: l.dormant as f64 / l.units.max(1) as f64 * dead_scale,
                saturated_fraction: l.saturated_fraction,
            })
            .collect(),
        gradient_ratio: d.gradient_ratio,
        findings: d
            .findings
            .iter()
            .map(|f| (f.code.clone(), f.severity))
            .collect(),
        train_seconds: 0.5,
    }
}

/// A fix with one cured candidate (with a label to escape) and one that did no better.
fn fix_report(d: &Diagnosis) -> FixReport {
    let candidate = |label: &str| Candidate {
        label: label.to_string(),
        changes: vec![("train.learning_rate".into(), "0.001".into())],
        why: "smaller steps".into(),
        from: "dead-units".into(),
        revive: false,
    };
    let mut cured = outcome(d, [0.93, 0.94], 0.0);
    cured.findings.clear();
    FixReport {
        run: d.run.clone(),
        dir: Some("runs/tiny.fix".into()),
        metric: "test_accuracy".into(),
        nothing_to_fix: false,
        original: outcome(d, [0.5, 0.45], 1.0),
        candidates: vec![
            Judged {
                candidate: candidate("train.learning_rate=0.001"),
                outcome: cured,
                verdict: Verdict::Cured,
                gain: 0.46,
                margin: 0.05,
                wins: 2,
                start: Default::default(),
            },
            Judged {
                candidate: candidate("model.init=<odd>"),
                outcome: outcome(d, [0.48, 0.47], 1.0),
                verdict: Verdict::NoBetter,
                gain: 0.0,
                margin: 0.05,
                wins: 1,
                start: Default::default(),
            },
        ],
        best: Some(0),
        fixed_spec: Some("[train]\nlearning_rate = 0.001\n".into()),
        seconds: 3.0,
        imported_metric: None,
        screened: Vec::new(),
        failed: Vec::new(),
        executor: "in-process".into(),
        pruned: Vec::new(),
        budget_spent: None,
        range_tests: Vec::new(),
        submitted: None,
    }
}

fn report(fix: Option<&FixReport>) -> String {
    let f = fixture();
    html_report(&HtmlInput {
        diagnosis: &f.diagnosis,
        metrics: &f.metrics,
        health: &f.health,
        fix,
    })
}

/// Each `<svg>...</svg>` element of the page.
fn svgs(page: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..]
            .find("</svg>")
            .map(|e| start + e + "</svg>".len())
            .expect("every <svg> is closed");
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

/// True when `svg` writes `text` as (part of) the content of a `<text>` element.
fn has_text(svg: &str, text: &str) -> bool {
    svg.split("<text").skip(1).any(|element| {
        let content = element
            .split_once('>')
            .and_then(|(_, after)| after.split_once("</text>"))
            .map(|(content, _)| content)
            .unwrap_or("");
        content.contains(text)
    })
}

fn hidden_layers() -> Vec<String> {
    fixture()
        .diagnosis
        .layers
        .iter()
        .filter(|l| l.name.starts_with("hidden."))
        .map(|l| l.name.clone())
        .collect()
}

#[test]
fn the_report_draws_every_view_with_the_layer_names() {
    let page = report(None);
    let charts = svgs(&page);
    // Layer health, gradients, one histogram pair per site, loss, accuracy, live dead units
    // and live gradients.
    let sites = fixture().diagnosis.probe.sites.len();
    assert!(sites >= 2, "{sites} sites");
    assert_eq!(charts.len(), 2 + sites + 4, "{page}");
    assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count());
    let layers = hidden_layers();
    assert_eq!(layers, ["hidden.0", "hidden.1"]);
    for layer in &layers {
        // The layer bars, the gradient bars, its histograms and both live charts.
        let naming = charts.iter().filter(|svg| has_text(svg, layer)).count();
        assert!(naming >= 5, "{layer} is named in {naming} charts");
    }
    assert!(has_text(charts[0], "dead"), "{}", charts[0]);
    assert!(has_text(charts[0], "dormant"));
    assert!(has_text(charts[0], "saturated"));
    assert!(page.contains("id=\"findings\""));
    assert!(page.contains("<h1>neuron-doctor report</h1>"));
}

#[test]
fn the_findings_show_their_evidence_and_remedies() {
    let page = report(None);
    let d = &fixture().diagnosis;
    assert!(!d.findings.is_empty(), "the tiny broken net has findings");
    for f in &d.findings {
        assert!(
            page.contains(&format!("class=\"finding {}\"", f.severity.as_str())),
            "{}",
            f.code
        );
        assert!(page.contains(&format!("<code>{}</code>", f.code)));
        for r in &f.remedies {
            assert!(page.contains(&escape(&r.label())), "{}", r.label());
        }
    }
    assert!(page.contains("evidence: "));
}

#[test]
fn the_report_is_self_contained() {
    for page in [
        report(None),
        report(Some(&fix_report(&fixture().diagnosis))),
    ] {
        assert!(!page.contains("<script"), "a script");
        assert!(!page.contains("<link"), "a linked resource");
        assert!(!page.contains("<img"), "an image");
        assert!(!page.contains("url("), "a CSS url");
        let without_xmlns = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!without_xmlns.contains("http://"), "a URL");
        assert!(!without_xmlns.contains("https://"), "a URL");
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.trim_end().ends_with("</html>"));
    }
}

#[test]
fn strings_from_the_run_are_escaped() {
    let page = report(Some(&fix_report(&fixture().diagnosis)));
    assert!(page.contains("runs/&lt;tiny &amp; &quot;digits&quot;&gt;"));
    assert!(!page.contains("<tiny"));
    assert!(page.contains("model.init=&lt;odd&gt;"));
    assert!(!page.contains("<odd>"));
}

#[test]
fn the_fix_section_appears_only_with_a_fix() {
    let plain = report(None);
    assert!(!plain.contains("id=\"fix\""));
    let fix = fix_report(&fixture().diagnosis);
    let page = report(Some(&fix));
    assert!(page.contains("id=\"fix\""));
    assert_eq!(svgs(&page).len(), svgs(&plain).len() + 2);
    let section = &page[page.find("id=\"fix\"").expect("fix section")..];
    assert!(section.contains("train.learning_rate=0.001"));
    assert!(section.contains(">cured (best)<"), "{section}");
    assert!(section.contains("no-better"));
    assert!(section.contains("runs/tiny.fix/fixed.toml"));
    let charts = svgs(section);
    assert_eq!(charts.len(), 2);
    // The metric chart names every network and writes its verdict.
    for name in [
        "original",
        "train.learning_rate=0.001",
        "model.init=&lt;odd&gt;",
    ] {
        assert!(has_text(charts[0], name), "{name} in {}", charts[0]);
    }
    assert!(has_text(charts[0], "cured (best)"));
    assert!(has_text(charts[0], "93.0%"));
    // The dead-unit chart has a bar per layer.
    for layer in hidden_layers() {
        assert!(has_text(charts[1], &layer), "{layer}");
    }
    assert!(has_text(charts[1], "all units"));
}

#[test]
fn the_range_tests_that_set_the_rates_are_plotted_with_the_suggestion_ringed() {
    let mut fix = fix_report(&fixture().diagnosis);
    let points: Vec<nd_train::LrPoint> = (0..60)
        .map(|i| {
            let rate = 1e-6 * 10f64.powf(i as f64 / 10.0);
            // Falls fastest near 1e-3, then blows up.
            let loss =
                2.3 - (rate.log10() + 6.0).min(3.0) * 0.5 + (rate.log10() + 1.0).max(0.0) * 4.0;
            nd_train::LrPoint {
                learning_rate: rate,
                loss,
                smoothed: loss,
            }
        })
        .collect();
    fix.range_tests = vec![nd_remedy::RangeTest {
        candidate: "train.learning_rate=0.001".into(),
        curve: nd_train::LrCurve {
            points,
            suggested: Some(1e-3),
            lowest: Some(1e-2),
            stopped: None,
        },
    }];
    let page = report(Some(&fix));
    let section = &page[page.find("id=\"fix\"").expect("fix section")..];
    assert!(section.contains("Learning-rate range tests (lr-find)"));
    let charts = svgs(section);
    assert_eq!(charts.len(), 3);
    let chart = charts[2];
    assert!(has_text(chart, "train.learning_rate=0.001"), "{chart}");
    assert!(has_text(chart, "learning rate"));
    assert!(chart.contains("<circle"), "the suggested rate is ringed");
    assert!(chart.contains("<polyline"), "the curve is drawn");
    // Without range tests there is no such chart.
    let plain = report(Some(&fix_report(&fixture().diagnosis)));
    assert!(!plain.contains("Learning-rate range tests"));
}

#[test]
fn a_run_without_history_or_finite_numbers_still_renders() {
    let mut d = fixture().diagnosis.clone();
    d.metrics = None;
    d.initial_probe = None;
    for layer in &mut d.probe.layers {
        layer.grad_norm = f64::NAN;
    }
    d.probe.layers[0].grad_norm = 0.0;
    for site in &mut d.probe.sites {
        site.pre_histogram.counts.iter_mut().for_each(|c| *c = 0);
        site.post_histogram.low = f64::NAN;
    }
    let page = html_report(&HtmlInput {
        diagnosis: &d,
        metrics: &[],
        health: &[],
        fix: None,
    });
    if let Some(at) = page.find("class=\"chart-error\"") {
        panic!("a chart failed: {}", &page[at..at + 200]);
    }
    assert!(page.contains("no live health recorded"));
    assert!(page.contains("no epochs recorded"));
    assert!(page.contains("no finite values"));
    let charts = svgs(&page);
    assert!(has_text(charts[1], "NaN"), "{}", charts[1]);
}

#[test]
fn a_regression_run_shows_its_mse() {
    let f = fixture();
    let metrics: Vec<EpochMetrics> = f
        .metrics
        .iter()
        .map(|m| EpochMetrics {
            train_accuracy: None,
            test_accuracy: None,
            test_mse: Some(m.test_loss),
            ..m.clone()
        })
        .collect();
    let page = html_report(&HtmlInput {
        diagnosis: &f.diagnosis,
        metrics: &metrics,
        health: &f.health,
        fix: None,
    });
    assert!(page.contains("Test MSE per epoch"));
    assert!(svgs(&page).iter().any(|svg| has_text(svg, "test MSE")));
}

#[test]
fn escaping_covers_markup_and_quotes() {
    assert_eq!(
        escape(r#"<a href="x">&'"#),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    );
    assert_eq!(shorten("abcdef", 4), "abc…");
    assert_eq!(shorten("abc", 4), "abc");
}
