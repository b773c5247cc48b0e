//! neuron-doctor's eyes: measure every layer of a network, then name what is wrong.
//!
//! - [`probe`] runs one inference pass over a split (per-unit activation statistics reduced on
//!   the device), one backward pass over a probe batch (per-layer gradient norms) and reads
//!   every layer's weights, producing a [`Probe`].
//! - [`diagnose`] is pure: from probes of the network as born and as trained, the training
//!   history and the spec, it returns [`Finding`]s with stable codes ([`CHECKS`]), a
//!   severity scaled by the harm done, the evidence, and ranked [`Remedy`]s (spec changes).
//! - [`HealthAccumulator`] turns batches the trainer already computes into per-epoch
//!   [`EpochHealth`] (dead and saturated fractions, gradient norms) for live monitoring.
//! - [`features`] and [`loss`] turn dataset rows into tensors and score outputs; the trainer
//!   uses the same functions.
//!
//! ```
//! use nd_probe::{Severity, CHECKS};
//! assert!(CHECKS.iter().any(|c| c.code == "dead-units"));
//! assert!(Severity::Error > Severity::Warning);
//! ```

pub mod activations;
mod batch;
mod findings;
mod health;
mod measure;
mod rules;

pub use activations::{Histogram, SiteStats};
pub use batch::{features, host_values, loss};
pub use findings::{check, Check, Finding, Remedy, Severity, CHECKS};
pub use health::{EpochHealth, HealthAccumulator, LayerHealth};
pub use measure::{probe, LayerStats, OutputStats, Probe, ProbeOptions};
/// A fraction as a percentage that never rounds a nonzero share to `0%` or a partial one to
/// `100%`: `1/256` is `0.4%`, `255/256` is `99.6%`, tiny shares are `<0.1%`; a non-finite
/// value is `n/a`.
///
/// ```
/// assert_eq!(nd_probe::percent(0.0), "0%");
/// assert_eq!(nd_probe::percent(1.0 / 256.0), "0.4%");
/// assert_eq!(nd_probe::percent(0.25), "25%");
/// assert_eq!(nd_probe::percent(255.0 / 256.0), "99.6%");
/// assert_eq!(nd_probe::percent(1e-5), "<0.1%");
/// assert_eq!(nd_probe::percent(f64::NAN), "n/a");
/// ```
pub fn percent(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let p = x * 100.0;
    let a = p.abs();
    let sign = if p < 0.0 { "-" } else { "" };
    if a == 0.0 || a == 100.0 || (1.0..=99.0).contains(&a) || a > 100.0 {
        format!("{p:.0}%")
    } else if a < 0.05 {
        format!("{sign}<0.1%")
    } else if a < 1.0 || a < 99.95 {
        format!("{p:.1}%")
    } else {
        format!("{sign}>99.9%")
    }
}

/// serde_json writes a non-finite float as `null`; read it back as NaN.
pub fn null_as_nan<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    use serde::Deserialize;
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// Like [`null_as_nan`] for optional fields: absent is `None`, `null` is `Some(NaN)` (use with
/// `#[serde(default)]`).
pub fn null_as_some_nan<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<f64>, D::Error> {
    use serde::Deserialize;
    Ok(Some(
        Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN),
    ))
}

pub use rules::{diagnose, is_healthy, recommended_init, EpochPoint, Evidence, Harm};
