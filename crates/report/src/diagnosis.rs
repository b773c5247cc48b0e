//! Rendering a [`Diagnosis`].

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Table};
use nd_probe::{Finding, Severity};
use nd_remedy::Diagnosis;

use crate::{pct, sci};

/// The diagnosis as one JSON document (without the raw probes).
pub fn diagnosis_json(d: &Diagnosis) -> serde_json::Value {
    let mut value = serde_json::to_value(d).expect("a diagnosis serializes");
    if let Some(map) = value.as_object_mut() {
        map.remove("probe");
        map.remove("initial_probe");
    }
    value
}

fn layer_table(d: &Diagnosis) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "layer",
        "activation",
        "units",
        "dead",
        "dormant",
        "saturated",
        "dead at init",
        "grad norm",
        "weight std (expected)",
    ]);
    for row in &d.layers {
        let fraction = |n: usize, f: f64| {
            if n == 0 {
                "0".to_string()
            } else {
                format!("{n} ({})", pct(f))
            }
        };
        table.add_row(vec![
            Cell::new(&row.name),
            Cell::new(&row.activation),
            Cell::new(row.units),
            Cell::new(fraction(row.dead, row.dead_fraction)),
            Cell::new(fraction(
                row.dormant,
                row.dormant as f64 / row.units.max(1) as f64,
            )),
            Cell::new(fraction(row.saturated, row.saturated_fraction)),
            Cell::new(
                row.dead_fraction_at_init
                    .map(pct)
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::new(sci(row.grad_norm)),
            Cell::new(format!(
                "{:.3} ({:.3})",
                row.weight_std, row.expected_weight_std
            )),
        ]);
    }
    table
}

fn marker(s: Severity) -> &'static str {
    match s {
        Severity::Error => "[x]",
        Severity::Warning => "[!]",
        Severity::Advice => "[i]",
    }
}

fn finding_text(f: &Finding, out: &mut String) {
    out.push_str(&format!(
        "{} {}[{}]: {}\n",
        marker(f.severity),
        f.severity,
        f.code,
        f.message
    ));
    if let Some(map) = f.evidence.as_object() {
        let parts: Vec<String> = map
            .iter()
            .filter(|(_, v)| !v.is_null() && !v.is_object() && !v.is_array())
            .map(|(k, v)| match v.as_f64() {
                Some(x) if v.is_f64() => format!("{k}={}", sci(x)),
                _ => format!("{k}={v}"),
            })
            .collect();
        if !parts.is_empty() {
            out.push_str(&format!("    evidence: {}\n", parts.join(", ")));
        }
    }
    for (i, r) in f.remedies.iter().enumerate() {
        out.push_str(&format!("    {}. try {}: {}\n", i + 1, r.label(), r.why));
    }
}

/// What a diagnosis without findings measured, in words, without claiming more: units that
/// never fire or saturate are counted even below the thresholds.
fn measured(d: &Diagnosis) -> String {
    let hidden = || d.layers.iter().filter(|l| l.name != "output");
    let can_die: usize = d
        .probe
        .sites
        .iter()
        .filter(|s| s.can_die())
        .map(|s| s.units)
        .sum();
    let dead: usize = hidden().map(|l| l.dead).sum();
    let saturated: usize = hidden().map(|l| l.saturated).sum();
    let units: usize = hidden().map(|l| l.units).sum();
    let mut parts = Vec::new();
    if can_die > 0 {
        parts.push(if dead == 0 {
            format!("all {can_die} relu-family units fire on some input")
        } else {
            format!(
                "{dead} of {can_die} relu-family units never fire ({}), below the threshold for a finding",
                pct(dead as f64 / can_die as f64)
            )
        });
    }
    if saturated > 0 {
        parts.push(format!(
            "{saturated} of {units} units are saturated ({}), below the threshold for a finding",
            pct(saturated as f64 / units.max(1) as f64)
        ));
    }
    if let Some(ratio) = d.gradient_ratio {
        parts.push(format!(
            "the first layer gets {} times the last layer's gradient per weight",
            sci(ratio)
        ));
    }
    if parts.is_empty() {
        "Nothing measured crossed a threshold.".into()
    } else {
        let mut text = parts.join("; ");
        text[..1].make_ascii_uppercase();
        text.push('.');
        text
    }
}

/// The diagnosis for a terminal: a summary line, the per-layer table, then the findings.
pub fn diagnosis_text(d: &Diagnosis) -> String {
    let mut out = String::new();
    let metric = match &d.metrics {
        Some(m) => match (m.test_accuracy, m.test_mse) {
            (Some(a), _) => format!(", test accuracy {}", pct(a)),
            (_, Some(mse)) => format!(", test MSE {mse:.4}"),
            _ => String::new(),
        },
        None => String::new(),
    };
    out.push_str(&format!(
        "{}: {} {:?} {} ({} parameters) on {} {} split, {} samples{metric}\n",
        d.run,
        d.model.kind,
        d.model.hidden,
        d.model.activation,
        d.model.parameters,
        d.data.dataset,
        serde_json::to_value(d.data.split)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        d.data.samples
    ));
    out.push_str(&layer_table(d).to_string());
    out.push('\n');
    match d.gradient_ratio {
        Some(ratio) => out.push_str(&format!(
            "first-to-last layer gradient ratio (per weight): {}\n",
            sci(ratio)
        )),
        None if d.layers.len() > 1 => out.push_str(
            "first-to-last layer gradient ratio (per weight): not measurable (non-finite or zero gradients)\n",
        ),
        None => {}
    }
    out.push('\n');
    if d.findings.is_empty() {
        out.push_str(&format!("[ok] healthy: no findings. {}\n", measured(d)));
        skipped_text(d, &mut out);
        return out;
    }
    for f in &d.findings {
        finding_text(f, &mut out);
    }
    out.push('\n');
    if d.healthy {
        out.push_str("healthy: only advice, no warnings or errors.\n");
    } else {
        let errors = d
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        let warnings = d
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count();
        let model_file = std::path::Path::new(&d.run)
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "onnx" | "safetensors" | "pt" | "pth"));
        let next = if model_file {
            format!(
                "`neuron-doctor checkup {} --data DATA` imports it, re-trains the remedies from its weights and shows which one cures it",
                d.run
            )
        } else {
            format!(
                "`neuron-doctor fix {}` re-trains the remedies and shows which one cures it",
                d.run
            )
        };
        out.push_str(&format!(
            "not healthy: {errors} error(s), {warnings} warning(s). {next}.\n"
        ));
    }
    skipped_text(d, &mut out);
    out
}

/// The checks that could not run, grouped by reason.
fn skipped_text(d: &Diagnosis, out: &mut String) {
    let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
    for s in &d.skipped {
        match reasons.iter_mut().find(|(r, _)| *r == s.reason) {
            Some((_, codes)) => codes.push(&s.code),
            None => reasons.push((&s.reason, vec![&s.code])),
        }
    }
    for (reason, codes) in reasons {
        out.push_str(&format!("not checked: {} ({reason}).\n", codes.join(", ")));
    }
}

/// The diagnosis as Markdown, for reports and pull requests.
pub fn diagnosis_markdown(d: &Diagnosis) -> String {
    let mut out = format!("## neuron-doctor: `{}`\n\n", d.run);
    out.push_str(&format!(
        "**{}**: {} `{:?}` {} on {} ({} samples)\n\n",
        if d.healthy { "healthy" } else { "not healthy" },
        d.model.kind,
        d.model.hidden,
        d.model.activation,
        d.data.dataset,
        d.data.samples
    ));
    out.push_str("| layer | activation | units | dead | dormant | saturated | grad norm | weight std (expected) |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
    for r in &d.layers {
        out.push_str(&format!(
            "| {} | {} | {} | {} ({}) | {} | {} | {} | {:.3} ({:.3}) |\n",
            r.name,
            r.activation,
            r.units,
            r.dead,
            pct(r.dead_fraction),
            r.dormant,
            r.saturated,
            sci(r.grad_norm),
            r.weight_std,
            r.expected_weight_std
        ));
    }
    out.push('\n');
    if d.findings.is_empty() {
        out.push_str("No findings.\n");
    }
    for f in &d.findings {
        out.push_str(&format!(
            "- **{}** `{}`{}: {}\n",
            f.severity,
            f.code,
            f.layer
                .as_ref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default(),
            f.message
        ));
        for r in &f.remedies {
            out.push_str(&format!("  - try `{}`: {}\n", r.label(), r.why));
        }
    }
    out
}
