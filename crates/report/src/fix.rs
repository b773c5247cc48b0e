//! Rendering a [`FixReport`]: the before/after table with verdicts.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Table};
use nd_probe::Severity;
use nd_remedy::{FixReport, Outcome, ReviveInfo};

use crate::pct;

fn metric_text(report: &FixReport, o: &Outcome) -> String {
    let m = &o.metrics;
    let main = m.primary.first().copied().unwrap_or(f64::NAN);
    let fmt = |x: f64| {
        if report.metric == "test_accuracy" {
            format!("{:.1}%", x * 100.0)
        } else {
            format!("{x:.4}")
        }
    };
    if m.primary.len() > 1 {
        format!(
            "{} (mean {} over {} seeds)",
            fmt(main),
            fmt(m.mean()),
            m.primary.len()
        )
    } else {
        fmt(main)
    }
}

fn findings_text(o: &Outcome) -> String {
    let shown: Vec<String> = o
        .findings
        .iter()
        .filter(|(_, s)| *s >= Severity::Warning)
        .map(|(c, s)| format!("{c} ({s})"))
        .collect();
    if shown.is_empty() {
        "none".into()
    } else {
        shown.join(", ")
    }
}

fn layers_text(o: &Outcome) -> String {
    o.layers
        .iter()
        .map(|l| {
            let mut parts = vec![format!("dead {}", pct(l.dead_fraction))];
            if l.saturated_fraction > 0.0 {
                parts.push(format!("sat {}", pct(l.saturated_fraction)));
            }
            format!("{}: {}", l.name, parts.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The fix report for a terminal.
/// One value of the report's metric: a percentage for accuracy, four decimals for MSE.
fn metric_value(report: &FixReport, value: f64) -> String {
    if !value.is_finite() {
        "not measured".into()
    } else if report.metric == "test_accuracy" {
        format!("{:.1}%", value * 100.0)
    } else {
        format!("{value:.4}")
    }
}

/// Trainings that failed, one line each (task, exit code, log), and that they were not judged.
pub(crate) fn failed_text(failed: &[nd_remedy::JobFailure], what: &str) -> String {
    failed
        .iter()
        .map(|f| format!("[!] a training failed, its {what} is not judged: {f}\n"))
        .collect()
}

/// What successive halving pruned, one line each, and what the budget paid for.
fn pruned_text(report: &FixReport) -> String {
    let mut out: String = report
        .pruned
        .iter()
        .map(|p| {
            if p.round == 0 {
                format!("pruned before round 1: {}: {}\n", p.label, p.why)
            } else {
                format!(
                    "pruned in round {} ({} epochs): {} at {}: {}\n",
                    p.round,
                    p.epochs,
                    p.label,
                    metric_value(report, p.metric),
                    p.why
                )
            }
        })
        .collect();
    if let Some(spent) = report.budget_spent {
        out.push_str(&format!(
            "budget: {spent} epochs spent on successive halving and the full runs\n"
        ));
    }
    out
}

/// The candidates screened at initialization, one line each.
fn screened_text(report: &FixReport) -> String {
    report
        .screened
        .iter()
        .map(|sc| {
            if sc.added.is_empty() {
                format!(
                    "screened at initialization: {}: {}; dropped\n",
                    sc.label, sc.why
                )
            } else {
                let added: Vec<String> = sc.added.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(
                    "screened at initialization: {}: {}; tried with {} instead\n",
                    sc.label,
                    sc.why,
                    added.join(", ")
                )
            }
        })
        .collect()
}

/// The fix report as tables for people.
pub fn fix_text(report: &FixReport, revive: Option<&ReviveInfo>) -> String {
    let mut out = String::new();
    if report.nothing_to_fix {
        out.push_str(&format!(
            "[ok] nothing to fix: {} has no warning or error findings.\n",
            report.run
        ));
        return out;
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "candidate",
        report.metric.as_str(),
        "final train loss",
        "units (dead / saturated)",
        "grad ratio",
        "warnings and errors",
        "verdict",
    ]);
    let row = |name: String, o: &Outcome, verdict: String| {
        vec![
            Cell::new(name),
            Cell::new(metric_text(report, o)),
            Cell::new(
                o.metrics
                    .train_loss
                    .first()
                    .map(|l| format!("{l:.4}"))
                    .unwrap_or_default(),
            ),
            Cell::new(layers_text(o)),
            Cell::new(
                o.gradient_ratio
                    .map(|r| format!("{r:.2e}"))
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::new(findings_text(o)),
            Cell::new(verdict),
        ]
    };
    let original = match report.imported_metric {
        Some(m) => format!(
            "original: imported\n({} as imported: {}),\ntrained on",
            report.metric,
            metric_value(report, m)
        ),
        None => "original".into(),
    };
    table.add_row(row(original, &report.original, "-".into()));
    for (i, j) in report.candidates.iter().enumerate() {
        let best = if report.best == Some(i) { " *" } else { "" };
        let start = if report.imported_metric.is_some() {
            format!("\n{}", j.start.describe())
        } else {
            String::new()
        };
        table.add_row(row(
            format!("{}\n({}){start}", j.candidate.label, j.candidate.from),
            &j.outcome,
            format!(
                "{}{best}\ngain {:+.3} vs margin {:.3}\nwins {}/{}",
                j.verdict.as_str(),
                j.gain,
                j.margin,
                j.wins,
                j.outcome
                    .metrics
                    .primary
                    .len()
                    .min(report.original.metrics.primary.len())
            ),
        ));
    }
    out.push_str(&table.to_string());
    out.push('\n');
    out.push_str(&screened_text(report));
    out.push_str(&pruned_text(report));
    out.push_str(&failed_text(&report.failed, "candidate"));
    if let Some(info) = revive {
        let units: usize = info.recycled.iter().map(|(_, n)| n).sum();
        out.push_str(&format!(
            "revive: recycled {units} units ({}) and trained {} more epochs in {:.1}s; a full re-train took {:.1}s ({:.0}% of it).\n",
            info.recycled.iter().map(|(l, n)| format!("{l}: {n}")).collect::<Vec<_>>().join(", "),
            info.epochs,
            info.seconds,
            info.full_train_seconds,
            100.0 * info.seconds / info.full_train_seconds.max(1e-9)
        ));
        if !info.skipped_conv.is_empty() {
            out.push_str(&format!(
                "not recycled (conv layers): {}\n",
                info.skipped_conv.join(", ")
            ));
        }
    }
    match report.best() {
        Some(best) => {
            out.push_str(&format!(
                "\n{} best: {} ({}: {} -> {}).\n",
                if best.verdict == nd_remedy::Verdict::Cured {
                    "[ok] cured,"
                } else {
                    "[!] improved, not cured;"
                },
                best.candidate.label,
                report.metric,
                metric_text(report, &report.original),
                metric_text(report, &best.outcome),
            ));
            if let Some(dir) = &report.dir {
                out.push_str(&format!(
                    "the fixed spec is {dir}/fixed.toml; candidate runs are in {dir}/\n"
                ));
            }
        }
        None => out.push_str("\n[x] no candidate cured or improved the model.\n"),
    }
    if !report.executor.is_empty() && report.dir.is_some() {
        out.push_str(&format!(
            "trained {} in {:.1}s, {}\n",
            report.executor_summary(),
            report.seconds,
            report.executor
        ));
    }
    out
}

/// The fix report as JSON.
pub fn fix_json(report: &FixReport, revive: Option<&ReviveInfo>) -> serde_json::Value {
    let mut value = serde_json::to_value(report).expect("a fix report serializes");
    if let Some(map) = value.as_object_mut() {
        map.insert("cured".into(), report.cured().into());
        if let Some(info) = revive {
            map.insert(
                "revive".into(),
                serde_json::to_value(info).expect("serializes"),
            );
        }
    }
    value
}

/// The fix report as Markdown.
pub fn fix_markdown(report: &FixReport, revive: Option<&ReviveInfo>) -> String {
    let mut out = format!("## neuron-doctor fix: `{}`\n\n", report.run);
    if report.nothing_to_fix {
        out.push_str("Nothing to fix: no warning or error findings.\n");
        return out;
    }
    out.push_str(&format!(
        "| candidate | {} | dead units | warnings and errors | verdict |\n",
        report.metric
    ));
    out.push_str("|---|---:|---:|---|---|\n");
    let original = match report.imported_metric {
        Some(m) => format!(
            "original: imported ({} as imported), trained on",
            metric_value(report, m)
        ),
        None => "original".into(),
    };
    out.push_str(&format!(
        "| {original} | {} | {} | {} | - |\n",
        metric_text(report, &report.original),
        pct(report.original.dead_fraction),
        findings_text(&report.original)
    ));
    for j in &report.candidates {
        let start = if report.imported_metric.is_some() {
            format!(" ({})", j.start.describe())
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| `{}`{start} | {} | {} | {} | **{}** |\n",
            j.candidate.label,
            metric_text(report, &j.outcome),
            pct(j.outcome.dead_fraction),
            findings_text(&j.outcome),
            j.verdict.as_str()
        ));
    }
    let screened =
        screened_text(report) + &pruned_text(report) + &failed_text(&report.failed, "candidate");
    if !screened.is_empty() {
        out.push('\n');
        out.push_str(&screened);
    }
    if let Some(info) = revive {
        out.push_str(&format!(
            "\nRevive: {} more epochs in {:.1}s against {:.1}s for a full re-train.\n",
            info.epochs, info.seconds, info.full_train_seconds
        ));
    }
    if let Some(best) = report.best() {
        out.push_str(&format!(
            "\nRecommended: `{}` ({}).\n",
            best.candidate.label,
            best.verdict.as_str()
        ));
    }
    out
}
