//! Parity of the diagnosis across backends: the same weights and data probed on ndarray and on
//! flex or wgpu give the same findings, the same dead, dormant and saturated units, and statistics
//! within [`ATOL`] + [`RTOL`] x magnitude of each other (fractions of inputs: within two
//! inputs' worth).
//!
//! Each network is trained on ndarray, then the very same weights are moved to the other
//! device (`fork`), so any difference is the backends' arithmetic. The wgpu tests need a wgpu
//! adapter (on a machine without a GPU: Mesa's software Vulkan, `apt-get install
//! mesa-vulkan-drivers`) and the `wgpu` feature.

use std::path::Path;

use nd_data::Dataset;
use nd_probe::{Probe, SiteStats};
use nd_spec::{Backend, CheckedSpec, Spec};

use crate::{diagnose_networks, DiagnoseOptions, Diagnosis};

/// Absolute part of the tolerance on every statistic.
const ATOL: f64 = 1e-4;
/// Relative part of the tolerance on every statistic.
const RTOL: f64 = 1e-3;
/// ReDo's dormancy threshold, the specs' default.
const TAU: f64 = 0.025;

fn close(what: &str, a: f64, b: f64) {
    close_within(what, a, b, ATOL);
}

fn close_within(what: &str, a: f64, b: f64, atol: f64) {
    if a.is_nan() && b.is_nan() {
        return;
    }
    let tolerance = atol + RTOL * a.abs().max(b.abs());
    assert!(
        (a - b).abs() <= tolerance,
        "{what}: ndarray {a} vs other backend {b} (tolerance {tolerance:e})"
    );
}

fn all_close(what: &str, a: &[f64], b: &[f64]) {
    all_close_within(what, a, b, ATOL);
}

fn all_close_within(what: &str, a: &[f64], b: &[f64], atol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        close_within(&format!("{what}[{i}]"), *x, *y, atol);
    }
}

fn spec(name: &str) -> CheckedSpec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(name);
    Spec::from_file(&path).unwrap().check().unwrap()
}

/// Trains `name` on ndarray and diagnoses its initial and trained weights on ndarray and on
/// `other`.
fn diagnose_on_both(name: &str, other: Backend) -> (Diagnosis, Diagnosis) {
    let spec = spec(name);
    let data: Dataset = nd_data::load(&spec.data, Path::new(".")).unwrap();
    let cpu = nd_train::device(Backend::Ndarray).unwrap();
    let gpu = nd_train::device(other).unwrap();
    let trained = nd_train::train(&spec, &data, &cpu, &mut nd_train::Quiet).unwrap();
    let options = DiagnoseOptions::default();
    let on_cpu = diagnose_networks(
        name,
        &spec,
        &data,
        Some(&trained.initial),
        &trained.network,
        &trained.metrics,
        &options,
        &cpu,
    );
    let on_gpu = diagnose_networks(
        name,
        &spec,
        &data,
        Some(&trained.initial.clone().fork_initialized(&gpu)),
        &trained.network.clone().fork_initialized(&gpu),
        &trained.metrics,
        &options,
        &gpu,
    );
    (on_cpu, on_gpu)
}

fn assert_same_site(a: &SiteStats, b: &SiteStats, tau: f64) {
    let name = &a.name;
    assert_eq!(a.name, b.name);
    assert_eq!(a.observations, b.observations, "{name}: observations");
    assert_eq!(a.dead_units(), b.dead_units(), "{name}: dead units");
    assert_eq!(
        a.dormant_units(tau),
        b.dormant_units(tau),
        "{name}: dormant"
    );
    assert_eq!(
        a.saturated_units(),
        b.saturated_units(),
        "{name}: saturated units"
    );
    // A fraction of inputs moves by 1/n when one input lands on the other side of its
    // threshold (0, or a saturation bound) through a rounding: allow two such inputs.
    let count = (2.0 / a.observations.max(1) as f64).max(ATOL);
    all_close_within(
        &format!("{name}.inactive"),
        &a.inactive_fraction,
        &b.inactive_fraction,
        count,
    );
    all_close_within(
        &format!("{name}.saturated"),
        &a.saturated_fraction,
        &b.saturated_fraction,
        count,
    );
    all_close(&format!("{name}.mean"), &a.mean, &b.mean);
    all_close(&format!("{name}.std"), &a.std, &b.std);
    all_close(&format!("{name}.mean_abs"), &a.mean_abs, &b.mean_abs);
    all_close(&format!("{name}.min"), &a.min, &b.min);
    all_close(&format!("{name}.max"), &a.max, &b.max);
    all_close(&format!("{name}.pre_max"), &a.pre_max, &b.pre_max);
}

fn assert_same_probe(a: &Probe, b: &Probe, tau: f64) {
    assert_eq!(a.samples, b.samples);
    assert_eq!(a.sites.len(), b.sites.len());
    for (x, y) in a.sites.iter().zip(&b.sites) {
        assert_same_site(x, y, tau);
    }
    for (x, y) in a.layers.iter().zip(&b.layers) {
        let name = &x.name;
        close(&format!("{name}.weight_std"), x.weight_std, y.weight_std);
        close(&format!("{name}.weight_norm"), x.weight_norm, y.weight_norm);
        close(&format!("{name}.grad_norm"), x.grad_norm, y.grad_norm);
        close(
            &format!("{name}.bias_grad_norm"),
            x.bias_grad_norm,
            y.bias_grad_norm,
        );
        close(
            &format!("{name}.zero_grad_fraction"),
            x.zero_grad_fraction,
            y.zero_grad_fraction,
        );
    }
    all_close("output.mean", &a.output.mean, &b.output.mean);
    all_close("output.std", &a.output.std, &b.output.std);
    close("output.min", a.output.min, b.output.min);
    close("output.max", a.output.max, b.output.max);
    close("loss", a.loss, b.loss);
    close("gradient_ratio", a.gradient_ratio, b.gradient_ratio);
}

/// Same findings (code, severity, layer), same per-layer counts, statistics within tolerance.
fn assert_same_diagnosis(a: &Diagnosis, b: &Diagnosis, tau: f64) {
    let findings = |d: &Diagnosis| {
        d.findings
            .iter()
            .map(|f| (f.code.clone(), f.severity, f.layer.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(findings(a), findings(b), "findings");
    assert_eq!(a.healthy, b.healthy);
    for (x, y) in a.layers.iter().zip(&b.layers) {
        assert_eq!(
            (x.dead, x.dormant, x.saturated),
            (y.dead, y.dormant, y.saturated),
            "{}: dead, dormant, saturated",
            x.name
        );
    }
    assert_same_probe(&a.probe, &b.probe, tau);
    assert_same_probe(
        a.initial_probe.as_ref().unwrap(),
        b.initial_probe.as_ref().unwrap(),
        tau,
    );
}

#[test]
fn flex_diagnoses_dead_units_like_ndarray() {
    let (cpu, other) = diagnose_on_both("broken/digits-dying-relu.toml", Backend::Flex);
    assert!(cpu.findings.iter().any(|f| f.code == "dead-units"));
    assert!(cpu.layers.iter().any(|l| l.dead > 0));
    assert_same_diagnosis(&cpu, &other, TAU);
}

#[test]
fn flex_diagnoses_saturated_units_like_ndarray() {
    let (cpu, other) = diagnose_on_both("broken/digits-saturated-sigmoid.toml", Backend::Flex);
    assert!(cpu.findings.iter().any(|f| f.code == "saturated-units"));
    assert!(cpu.layers.iter().any(|l| l.saturated > 0));
    assert_same_diagnosis(&cpu, &other, TAU);
}

#[test]
fn flex_diagnoses_a_cnn_like_ndarray() {
    let (cpu, other) = diagnose_on_both("digits-cnn.toml", Backend::Flex);
    assert_same_diagnosis(&cpu, &other, TAU);
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_diagnoses_dead_units_like_ndarray() {
    let (cpu, other) = diagnose_on_both("broken/digits-dying-relu.toml", Backend::Wgpu);
    assert!(cpu.findings.iter().any(|f| f.code == "dead-units"));
    assert!(cpu.layers.iter().any(|l| l.dead > 0));
    assert_same_diagnosis(&cpu, &other, TAU);
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_diagnoses_saturated_units_like_ndarray() {
    let (cpu, other) = diagnose_on_both("broken/digits-saturated-sigmoid.toml", Backend::Wgpu);
    assert!(cpu.findings.iter().any(|f| f.code == "saturated-units"));
    assert!(cpu.layers.iter().any(|l| l.saturated > 0));
    assert_same_diagnosis(&cpu, &other, TAU);
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_diagnoses_a_cnn_like_ndarray() {
    let (cpu, other) = diagnose_on_both("digits-cnn.toml", Backend::Wgpu);
    assert_same_diagnosis(&cpu, &other, TAU);
}
