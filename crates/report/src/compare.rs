//! Rendering a [`CompareReport`]: one row per setting, the recommendation and why.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Table};
use nd_remedy::{CompareReport, SettingResult};

use crate::pct;

fn value(report: &CompareReport, v: f64) -> String {
    if !v.is_finite() {
        "NaN".into()
    } else if report.metric == "test_accuracy" {
        format!("{:.1}%", v * 100.0)
    } else {
        format!("{v:.4}")
    }
}

/// `97.3% ± 0.4` over the seeds.
fn metric_cell(report: &CompareReport, r: &SettingResult) -> String {
    let m = &r.metrics;
    let spread = m.spread();
    let spread = if report.metric == "test_accuracy" {
        format!("{:.1}", spread * 100.0)
    } else {
        format!("{spread:.4}")
    };
    if m.primary.len() > 1 {
        format!("{} ± {spread}", value(report, m.mean()))
    } else {
        value(report, m.mean())
    }
}

fn target_cells(report: &CompareReport, r: &SettingResult) -> (String, String) {
    if report.target.is_none() {
        return ("-".into(), "-".into());
    }
    let reached = r.epochs_to_target.iter().filter(|e| e.is_some()).count();
    let of = r.epochs_to_target.len();
    match (r.mean_epochs_to_target(), r.mean_seconds_to_target()) {
        (Some(e), Some(s)) if reached == of => (format!("{e:.1}"), format!("{s:.2}")),
        (Some(e), Some(s)) => (
            format!("{e:.1} ({reached} of {of} seeds)"),
            format!("{s:.2} ({reached} of {of})"),
        ),
        _ => ("never".into(), "never".into()),
    }
}

fn rows(report: &CompareReport) -> (Vec<String>, Vec<Vec<String>>) {
    let target = report
        .target
        .map(|t| value(report, t))
        .unwrap_or_else(|| "target".into());
    let header = vec![
        "setting".to_string(),
        format!("{} (mean ± spread)", report.metric),
        format!("epochs to {target}"),
        format!("seconds to {target}"),
        "s / epoch".into(),
        "dead".into(),
        "saturated".into(),
        "last hidden layer saturated (epoch 1 -> last)".into(),
        "grad ratio".into(),
        "doctor".into(),
    ];
    let rows = report
        .settings
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (epochs, seconds) = target_cells(report, r);
            let best = if report.best == Some(i) { " *" } else { "" };
            vec![
                format!("{}{best}", r.setting.label),
                metric_cell(report, r),
                epochs,
                seconds,
                format!("{:.3}", r.seconds_per_epoch),
                pct(r.dead_fraction),
                pct(r.saturated_fraction),
                match (r.top_saturated.first(), r.top_saturated.last()) {
                    (Some(a), Some(b)) => format!("{} -> {}", pct(*a), pct(*b)),
                    _ => "-".into(),
                },
                r.gradient_ratio
                    .map(|g| format!("{g:.2e}"))
                    .unwrap_or_else(|| "-".into()),
                r.verdict(),
            ]
        })
        .collect();
    (header, rows)
}

fn conclusion(report: &CompareReport) -> String {
    match report.best {
        Some(i) => format!(
            "recommended: {}: {}.",
            report.settings[i].setting.label, report.why
        ),
        None => format!("no recommendation: {}.", report.why),
    }
}

/// The comparison as a table for people.
pub fn compare_text(report: &CompareReport) -> String {
    let (header, rows) = rows(report);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header);
    for row in rows {
        table.add_row(row.into_iter().map(Cell::new).collect::<Vec<_>>());
    }
    format!(
        "{table}\n{}\n{}\n{} settings x {} seeds, {} epochs each, in {:.1}s; runs in {}\n",
        crate::fix::failed_text(&report.failed, "setting"),
        conclusion(report),
        report.settings.len(),
        report.settings.first().map_or(0, |r| r.metrics.seeds.len()),
        report.epochs,
        report.seconds,
        report.dir
    )
}

/// The comparison as Markdown.
pub fn compare_markdown(report: &CompareReport) -> String {
    let (header, rows) = rows(report);
    let mut out = format!("## neuron-doctor compare: `{}`\n\n", report.name);
    out.push_str(&format!("| {} |\n", header.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out.push_str(&format!(
        "\n{}{}\n",
        crate::fix::failed_text(&report.failed, "setting"),
        conclusion(report)
    ));
    out
}

/// The comparison as JSON (the report itself).
pub fn compare_json(report: &CompareReport) -> serde_json::Value {
    serde_json::to_value(report).expect("a compare report serializes")
}
