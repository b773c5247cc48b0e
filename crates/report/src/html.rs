//! The HTML report: one self-contained page (inline CSS and SVG, no script, nothing fetched)
//! with the diagnosis, its charts, the training history and, after `fix`, the candidates side
//! by side.
//!
//! The charts are drawn by [`charts`] with plotters' SVG backend; this module lays out the page
//! and writes the tables and findings. Every string that comes from a run (names, labels,
//! messages) is escaped.

mod charts;

use std::fmt::Write as _;

use nd_probe::{EpochHealth, Finding, Severity};
use nd_remedy::{Diagnosis, FixReport, Outcome, Verdict};
use nd_train::EpochMetrics;

use crate::{pct, sci};
use charts::HealthStat;

/// What a report shows: a diagnosis, the run's history and, optionally, a fix.
#[derive(Debug, Clone, Copy)]
pub struct HtmlInput<'a> {
    /// The diagnosis of the trained network (with its probes).
    pub diagnosis: &'a Diagnosis,
    /// The run's per-epoch metrics (`Run::metrics` or `Trained::metrics`).
    pub metrics: &'a [EpochMetrics],
    /// The run's live health per epoch (`Run::health` or `Trained::health`; may be empty).
    pub health: &'a [EpochHealth],
    /// The fix comparison, when there is one.
    pub fix: Option<&'a FixReport>,
}

/// An sRGB colour, shared by the charts and the page's CSS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rgb(u8, u8, u8);

impl Rgb {
    fn css(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

fn verdict_color(verdict: Verdict) -> Rgb {
    match verdict {
        Verdict::Cured => Rgb(27, 127, 59),
        Verdict::Improved => Rgb(21, 101, 192),
        Verdict::NoBetter => Rgb(110, 110, 110),
        Verdict::Worse => Rgb(198, 40, 40),
    }
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text`, cut to `max` characters with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

const STYLE: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #222; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1220px; margin: 0 auto; padding: 20px 20px 40px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #d8dbe0; }
h3 { font-size: 15px; margin: 0 0 2px; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 13.5px; }
header .run { margin: 0 0 10px; color: #555; }
.status { display: inline-block; padding: 4px 12px; border-radius: 14px; font-weight: 600; color: #fff; }
.status.ok { background: #1b7f3b; }
.status.bad { background: #c62828; }
.status.warn { background: #b26a00; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 14px 0 0; }
dl.summary dt { color: #555; }
dl.summary dd { margin: 0; }
table { border-collapse: collapse; background: #fff; width: 100%; font-size: 14px; }
th, td { border: 1px solid #d8dbe0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eceef2; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.hot { color: #c62828; font-weight: 600; }
.findings { display: grid; gap: 10px; }
.finding { background: #fff; border: 1px solid #d8dbe0; border-left: 6px solid #888; border-radius: 4px; padding: 8px 12px; }
.finding.error { border-left-color: #c62828; background: #fdf1f0; }
.finding.warning { border-left-color: #d08700; background: #fff8e6; }
.finding.advice { border-left-color: #1565c0; background: #f0f5fc; }
.finding .head { font-weight: 600; }
.finding .sev { text-transform: uppercase; font-size: 12px; letter-spacing: .04em; padding: 1px 6px; border-radius: 3px; color: #fff; margin-right: 6px; }
.finding.error .sev { background: #c62828; }
.finding.warning .sev { background: #d08700; }
.finding.advice .sev { background: #1565c0; }
.finding .evidence { color: #444; margin: 4px 0; word-break: break-word; }
.finding ol { margin: 4px 0 0; padding-left: 22px; }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 14px; }
.charts .wide { grid-column: 1 / -1; }
figure { margin: 0; background: #fff; border: 1px solid #d8dbe0; border-radius: 6px; padding: 10px 10px 6px; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { color: #555; font-size: 13.5px; margin-bottom: 6px; }
.note { color: #555; }
.chart-error { color: #c62828; }
.verdict { font-weight: 600; }
footer { margin-top: 30px; color: #777; font-size: 13px; }
@media (max-width: 900px) { .charts { grid-template-columns: 1fr; } }
"#;

/// The tag every report this crate writes carries in its `<head>`.
const GENERATOR_TAG: &str = "<meta name=\"generator\" content=\"neuron-doctor ";

/// True when `bytes` (a file's start is enough: the first 4 KiB are read) are an HTML report
/// written by [`html_report`]. Writers overwrite only such files.
pub fn is_report(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    String::from_utf8_lossy(head).contains(GENERATOR_TAG)
}

/// The whole report as one HTML document.
pub fn html_report(input: &HtmlInput) -> String {
    let d = input.diagnosis;
    let mut page = String::with_capacity(256 * 1024);
    let title = format!("neuron-doctor: {}", d.run);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"neuron-doctor {}\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&title)
    );
    summary(&mut page, input);
    findings(&mut page, d);
    layers(&mut page, d);
    activations(&mut page, d);
    training(&mut page, input);
    if let Some(report) = input.fix {
        fix(&mut page, report);
    }
    let _ = write!(
        page,
        "<footer>Written by neuron-doctor {}. This page is self-contained: no scripts, nothing \
         loaded from elsewhere.</footer>\n</main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    page
}

/// The `compare` report as one HTML document: the table, every setting's learning curve on
/// one chart, and the dead and saturated fractions per layer side by side.
pub fn compare_html(report: &nd_remedy::CompareReport) -> String {
    let mut page = String::with_capacity(128 * 1024);
    let title = format!("neuron-doctor compare: {}", report.name);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"neuron-doctor {}\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <header><h1>{}</h1><p class=\"run\">{} settings, {} epochs, runs in <code>{}</code></p></header>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&title),
        escape(&title),
        report.settings.len(),
        report.epochs,
        escape(&report.dir)
    );
    let recommended = match report.best {
        Some(i) => format!(
            "recommended: {}: {}",
            report.settings[i].setting.label, report.why
        ),
        None => format!("no recommendation: {}", report.why),
    };
    let _ = write!(
        page,
        "<section><h2>Settings</h2>\n<p><span class=\"verdict\">{}</span></p>\n",
        escape(&recommended)
    );
    page.push_str("<table>\n<thead><tr><th>setting</th><th>metric (mean ± spread)</th><th>epochs to target</th><th>s / epoch</th><th>dead</th><th>saturated</th><th>grad ratio</th><th>doctor</th></tr></thead>\n<tbody>\n");
    for (i, r) in report.settings.iter().enumerate() {
        let m = r.metrics.mean();
        let (m, spread) = if report.metric == "test_accuracy" {
            (
                format!("{:.1}%", m * 100.0),
                format!("{:.1}", r.metrics.spread() * 100.0),
            )
        } else {
            (format!("{m:.4}"), format!("{:.4}", r.metrics.spread()))
        };
        let _ = writeln!(
            page,
            "<tr><td>{}{}</td><td class=\"num\">{m} ± {spread}</td><td class=\"num\">{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&r.setting.label),
            if report.best == Some(i) { " (recommended)" } else { "" },
            r.mean_epochs_to_target().map_or("never".to_string(), |e| format!("{e:.1}")),
            r.seconds_per_epoch,
            pct(r.dead_fraction),
            pct(r.saturated_fraction),
            r.gradient_ratio.map_or("-".to_string(), |g| format!("{g:.2e}")),
            escape(&r.verdict()),
        );
    }
    page.push_str("</tbody>\n</table>\n</section>\n<section><h2>Learning curves</h2>\n<div class=\"charts\">\n");
    figure(
        &mut page,
        "wide",
        "Test metric per epoch, every setting",
        "The spec's seed of each setting, after every epoch.",
        &charts::compare_curves(report),
    );
    figure(
        &mut page,
        "wide",
        "Dead units per layer at the end",
        "Share of each layer's units that never fire on the probed split.",
        &charts::compare_layers(report, false),
    );
    figure(
        &mut page,
        "wide",
        "Saturated units per layer at the end",
        "Share of each layer's sigmoid or tanh units stuck at either end.",
        &charts::compare_layers(report, true),
    );
    let _ = write!(
        page,
        "</div>\n</section>\n<footer>Written by neuron-doctor {}. This page is self-contained: no scripts, nothing \
         loaded from elsewhere.</footer>\n</main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    page
}

/// `<figure>` around a chart with its title and a line on how to read it.
fn figure(page: &mut String, class: &str, title: &str, caption: &str, svg: &str) {
    let class = if class.is_empty() {
        String::new()
    } else {
        format!(" class=\"{class}\"")
    };
    let _ = write!(
        page,
        "<figure{class}>\n<h3>{}</h3>\n<figcaption>{}</figcaption>\n{svg}\n</figure>\n",
        escape(title),
        escape(caption)
    );
}

fn count(d: &Diagnosis, severity: Severity) -> usize {
    d.findings.iter().filter(|f| f.severity == severity).count()
}

fn summary(page: &mut String, input: &HtmlInput) {
    let d = input.diagnosis;
    let (class, status) = if d.healthy {
        let advice = count(d, Severity::Advice);
        let status = if advice == 0 {
            "healthy: no findings".to_string()
        } else {
            format!("healthy: {advice} advice, no warnings or errors")
        };
        ("ok", status)
    } else {
        let errors = count(d, Severity::Error);
        let warnings = count(d, Severity::Warning);
        (
            if errors > 0 { "bad" } else { "warn" },
            format!("not healthy: {errors} error(s), {warnings} warning(s)"),
        )
    };
    let _ = write!(
        page,
        "<header>\n<h1>neuron-doctor report</h1>\n<p class=\"run mono\">{}</p>\n\
         <span class=\"status {class}\">{}</span>\n",
        escape(&d.run),
        escape(&status)
    );
    let m = &d.model;
    let split = serde_json::to_value(d.data.split)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let mut rows: Vec<(&str, String)> = vec![
        (
            "model",
            format!(
                "{} {:?} {}, {} init, output {}, {} parameters",
                m.kind, m.hidden, m.activation, m.init, m.output_activation, m.parameters
            ),
        ),
        (
            "probed",
            format!(
                "{} {split} split, {} samples",
                d.data.dataset, d.data.samples
            ),
        ),
    ];
    let last = d.metrics.as_ref().or(input.metrics.last());
    if let Some(last) = last {
        let mut parts = vec![format!(
            "epoch {}: train loss {}, test loss {}",
            last.epoch,
            sci(last.train_loss),
            sci(last.test_loss)
        )];
        if let Some(a) = last.train_accuracy {
            parts.push(format!("train accuracy {:.1}%", a * 100.0));
        }
        if let Some(a) = last.test_accuracy {
            parts.push(format!("test accuracy {:.1}%", a * 100.0));
        }
        if let Some(mse) = last.test_mse {
            parts.push(format!("test MSE {mse:.4}"));
        }
        rows.push(("final metrics", parts.join(", ")));
    }
    if let Some(ratio) = d.gradient_ratio {
        rows.push((
            "gradient ratio",
            format!("{} (first-to-last layer, per weight)", sci(ratio)),
        ));
    }
    if let Some(report) = input.fix {
        rows.push(("fix", fix_headline(report)));
    }
    page.push_str("<dl class=\"summary\">\n");
    for (key, value) in rows {
        let _ = writeln!(page, "<dt>{key}</dt><dd>{}</dd>", escape(&value));
    }
    page.push_str("</dl>\n</header>\n");
}

/// The evidence object as `key=value, ...` (numbers shortened as in the text report).
fn evidence_text(f: &Finding) -> String {
    let Some(map) = f.evidence.as_object() else {
        return String::new();
    };
    map.iter()
        .filter(|(_, v)| !v.is_null() && !v.is_object() && !v.is_array())
        .map(|(k, v)| match v.as_f64() {
            Some(x) if v.is_f64() => format!("{k}={}", sci(x)),
            _ => match v.as_str() {
                Some(s) => format!("{k}={s}"),
                None => format!("{k}={v}"),
            },
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn findings(page: &mut String, d: &Diagnosis) {
    page.push_str("<section id=\"findings\">\n<h2>Findings</h2>\n");
    if d.findings.is_empty() {
        page.push_str(
            "<p class=\"note\">No findings: every unit fires, gradients flow, and the loss fell.</p>\n",
        );
        page.push_str("</section>\n");
        return;
    }
    page.push_str("<div class=\"findings\">\n");
    for f in &d.findings {
        let severity = f.severity.as_str();
        let location = f
            .layer
            .as_ref()
            .map(|l| format!(" <code>{}</code>", escape(l)))
            .unwrap_or_default();
        let _ = write!(
            page,
            "<div class=\"finding {severity}\">\n<div class=\"head\"><span class=\"sev\">{severity}</span>\
             <code>{}</code>{location}</div>\n<div>{}</div>\n",
            escape(&f.code),
            escape(&f.message)
        );
        let evidence = evidence_text(f);
        if !evidence.is_empty() {
            let _ = writeln!(
                page,
                "<div class=\"evidence mono\">evidence: {}</div>",
                escape(&evidence)
            );
        }
        if !f.remedies.is_empty() {
            page.push_str("<ol>\n");
            for r in &f.remedies {
                let _ = writeln!(
                    page,
                    "<li>try <code>{}</code>: {}</li>",
                    escape(&r.label()),
                    escape(&r.why)
                );
            }
            page.push_str("</ol>\n");
        }
        page.push_str("</div>\n");
    }
    page.push_str("</div>\n</section>\n");
}

fn layers(page: &mut String, d: &Diagnosis) {
    page.push_str(
        "<section id=\"layers\">\n<h2>Layers</h2>\n<table>\n<thead><tr><th>layer</th>\
         <th>activation</th><th>units</th><th>dead</th><th>dormant</th><th>saturated</th>\
         <th>dead at init</th><th>grad norm</th><th>weight std (expected)</th></tr></thead>\n<tbody>\n",
    );
    let cell = |n: usize, f: f64| {
        if n == 0 {
            "0".to_string()
        } else {
            format!("{n} ({})", pct(f))
        }
    };
    for row in &d.layers {
        // A share of a layer worth a warning stands out in red.
        let hot = |fraction: f64| if fraction >= 0.1 { "num hot" } else { "num" };
        let _ = writeln!(
            page,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"{}\">{}</td><td class=\"num\">{}</td><td class=\"{}\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.3} ({:.3})</td></tr>",
            escape(&row.name),
            escape(&row.activation),
            row.units,
            hot(row.dead_fraction),
            cell(row.dead, row.dead_fraction),
            cell(row.dormant, row.dormant as f64 / row.units.max(1) as f64),
            hot(row.saturated_fraction),
            cell(row.saturated, row.saturated_fraction),
            row.dead_fraction_at_init
                .map(pct)
                .unwrap_or_else(|| "-".into()),
            sci(row.grad_norm),
            row.weight_std,
            row.expected_weight_std
        );
    }
    page.push_str("</tbody>\n</table>\n<div class=\"charts\" style=\"margin-top:14px\">\n");
    figure(
        page,
        "",
        "Dead, dormant and saturated units per layer",
        "Share of each layer's units: dead (never active on any probed input), dormant \
         (activity a tiny fraction of the layer's), saturated (stuck at a flat end), and dead \
         at initialization.",
        &charts::layer_health(d),
    );
    figure(
        page,
        "",
        "Gradient norm per layer",
        "L2 norm of each layer's weight gradient on the probe batch, as trained and at \
         initialization (log scale; a zero is written at the floor).",
        &charts::gradient_norms(&d.probe, d.initial_probe.as_ref()),
    );
    page.push_str("</div>\n</section>\n");
}

fn activations(page: &mut String, d: &Diagnosis) {
    page.push_str(
        "<section id=\"activations\">\n<h2>Activations</h2>\n<p class=\"note\">Histograms of \
         every value at each activation site over the probed inputs (all units together): \
         before the activation function, and after it. The grey line marks zero.</p>\n\
         <div class=\"charts\">\n",
    );
    for site in &d.probe.sites {
        let activation = d
            .layers
            .iter()
            .find(|l| l.name == site.name)
            .map(|l| l.activation.clone())
            .unwrap_or_else(|| "activation".into());
        figure(
            page,
            "",
            &site.name,
            &format!("{} units, {activation}", site.units),
            &charts::activation_histograms(
                &site.name,
                &activation,
                &site.pre_histogram,
                &site.post_histogram,
            ),
        );
    }
    page.push_str("</div>\n</section>\n");
}

fn training(page: &mut String, input: &HtmlInput) {
    page.push_str("<section id=\"training\">\n<h2>Training</h2>\n<div class=\"charts\">\n");
    figure(
        page,
        "",
        "Loss per epoch",
        "Mean loss over each split, in inference mode, after every epoch.",
        &charts::loss_curves(input.metrics),
    );
    let regression = input.metrics.iter().all(|m| m.test_accuracy.is_none())
        && input.metrics.iter().any(|m| m.test_mse.is_some());
    figure(
        page,
        "",
        if regression {
            "Test MSE per epoch"
        } else {
            "Accuracy per epoch"
        },
        if regression {
            "Mean squared error on the test split (in the scaled target's units)."
        } else {
            "Share of rows classified right, after every epoch."
        },
        &charts::metric_curves(input.metrics),
    );
    figure(
        page,
        "",
        "Dead units per layer, live",
        "Share of each layer's units that never fired on the batches sampled during the \
         epoch (live health statistics).",
        &charts::health_lines(input.health, HealthStat::Dead),
    );
    figure(
        page,
        "",
        "Gradient norm per layer, live",
        "Weight gradient L2 norm per layer, averaged over the batches sampled during the \
         epoch (log scale).",
        &charts::health_lines(input.health, HealthStat::GradNorm),
    );
    let saturates = input
        .health
        .iter()
        .flat_map(|h| &h.layers)
        .any(|l| l.saturated_fraction > 0.0);
    if saturates {
        figure(
            page,
            "",
            "Saturated units per layer, live",
            "Share of each layer's units saturated on the batches sampled during the epoch.",
            &charts::health_lines(input.health, HealthStat::Saturated),
        );
    }
    page.push_str("</div>\n</section>\n");
}

/// The metric of a network as the fix tables show it: the spec's seed, and the mean over seeds.
fn metric_cell(report: &FixReport, o: &Outcome) -> String {
    let format = |x: f64| {
        if report.metric == "test_accuracy" {
            format!("{:.1}%", x * 100.0)
        } else {
            format!("{x:.4}")
        }
    };
    let main = o.metrics.primary.first().copied().unwrap_or(f64::NAN);
    if o.metrics.primary.len() > 1 {
        format!(
            "{} (mean {} over {} seeds)",
            format(main),
            format(o.metrics.mean()),
            o.metrics.primary.len()
        )
    } else {
        format(main)
    }
}

/// One line: what the fix found.
fn fix_headline(report: &FixReport) -> String {
    if report.nothing_to_fix {
        return "nothing to fix: no warning or error findings".into();
    }
    match report.best() {
        Some(best) => format!(
            "{}: {} ({} {} -> {})",
            best.verdict.as_str(),
            best.candidate.label,
            report.metric,
            metric_cell(report, &report.original),
            metric_cell(report, &best.outcome)
        ),
        None => "no candidate cured or improved the model".into(),
    }
}

fn fix(page: &mut String, report: &FixReport) {
    let _ = write!(
        page,
        "<section id=\"fix\">\n<h2>Fix: the remedies, re-trained and judged</h2>\n\
         <p><span class=\"verdict\">{}</span></p>\n",
        escape(&fix_headline(report))
    );
    page.push_str(
        "<table>\n<thead><tr><th>network</th><th>proposed by</th><th>metric</th>\
         <th>final train loss</th><th>dead units</th><th>per layer (dead / dormant / saturated)</th>\
         <th>warnings and errors</th><th>verdict</th></tr></thead>\n<tbody>\n",
    );
    let row = |page: &mut String, name: &str, from: &str, o: &Outcome, verdict: String| {
        let layers = o
            .layers
            .iter()
            .map(|l| {
                format!(
                    "<code>{}</code> {} / {} / {}",
                    escape(&l.name),
                    pct(l.dead_fraction),
                    pct(l.dormant_fraction),
                    pct(l.saturated_fraction)
                )
            })
            .collect::<Vec<_>>()
            .join("<br>");
        let findings = o
            .findings
            .iter()
            .filter(|(_, s)| *s >= Severity::Warning)
            .map(|(c, s)| format!("{} ({s})", escape(c)))
            .collect::<Vec<_>>();
        let findings = if findings.is_empty() {
            "none".to_string()
        } else {
            findings.join(", ")
        };
        let _ = writeln!(
            page,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{layers}</td><td>{findings}</td>\
             <td>{verdict}</td></tr>",
            escape(name),
            escape(from),
            escape(&metric_cell(report, o)),
            o.metrics
                .train_loss
                .first()
                .map(|l| format!("{l:.4}"))
                .unwrap_or_default(),
            pct(o.dead_fraction),
        );
    };
    row(page, "original", "-", &report.original, "-".into());
    for (i, j) in report.candidates.iter().enumerate() {
        let wins_of = j
            .outcome
            .metrics
            .primary
            .len()
            .min(report.original.metrics.primary.len());
        let verdict = format!(
            "<span class=\"verdict\" style=\"color:{}\">{}{}</span><br>gain {:+.3} vs margin {:.3}<br>wins {}/{wins_of}",
            verdict_color(j.verdict).css(),
            j.verdict.as_str(),
            if report.best == Some(i) { " (best)" } else { "" },
            j.gain,
            j.margin,
            j.wins,
        );
        let from = if report.imported_metric.is_some() {
            format!("{}; {}", j.candidate.from, j.start.describe())
        } else {
            j.candidate.from.clone()
        };
        row(page, &j.candidate.label, &from, &j.outcome, verdict);
    }
    page.push_str("</tbody>\n</table>\n");
    if let Some(dir) = &report.dir {
        let fixed = if report.fixed_spec.is_some() {
            format!(
                "; the fixed spec is <code>{}/fixed.toml</code>",
                escape(dir)
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            page,
            "<p class=\"note\">Candidate runs are in <code>{}/</code>{fixed}.</p>",
            escape(dir)
        );
    }
    if let Some(spec) = &report.fixed_spec {
        let _ = writeln!(
            page,
            "<details><summary>the fixed spec</summary><pre class=\"mono\">{}</pre></details>",
            escape(spec)
        );
    }
    page.push_str("<div class=\"charts\" style=\"margin-top:14px\">\n");
    figure(
        page,
        "wide",
        &format!("{}: original and candidates", report.metric),
        "Each network re-trained with the same data, seed and budget; extra seeds are paired. \
         The verdict needs the gain to beat the seed-to-seed spread and to win on every seed.",
        &charts::fix_metric(report),
    );
    figure(
        page,
        "wide",
        "Dead units: original and candidates",
        "Share of units that never activate, over all relu-family units and per layer.",
        &charts::fix_dead(report),
    );
    if !report.range_tests.is_empty() {
        figure(
            page,
            "wide",
            "Learning-rate range tests (lr-find)",
            "The spec as each candidate changes it, trained from its seeded start while the rate \
             rises step by step; the ring marks the suggested rate, where the smoothed loss falls \
             fastest, which the candidate was given.",
            &charts::range_tests(report),
        );
    }
    page.push_str("</div>\n</section>\n");
}

#[cfg(test)]
mod tests;
