//! The `[doctor]` section: thresholds the diagnosis rules use, with documented defaults.

use serde::{Deserialize, Serialize};

use crate::SpecError;

/// Thresholds for the diagnosis. Every field has a default chosen so that healthy, well-trained
/// models come out clean (see the README's findings reference for the reasoning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DoctorThresholds {
    /// A layer with at least this fraction of dead units gets a `dead-units` finding (advice).
    pub dead_fraction_warning: f64,
    /// At or above this fraction the finding is a warning, and an error when the harm shows
    /// (a stalled or poor run, or a layer almost wholly dead).
    pub dead_fraction_error: f64,
    /// ReDo's tau: a unit is dormant when its mean |output| over its layer's average is <= tau.
    pub dormant_tau: f64,
    /// A layer with at least this fraction of saturated units gets a `saturated-units` finding.
    pub saturated_fraction_warning: f64,
    /// At or above this fraction the finding is a warning, and an error when the harm shows.
    pub saturated_fraction_error: f64,
    /// First-to-last layer gradient norm ratio below this is `vanishing-gradients`.
    pub vanishing_ratio: f64,
    /// First-to-last layer gradient norm ratio above this is `exploding-gradients`.
    pub exploding_ratio: f64,
    /// Weight std off its He/Xavier/LeCun expectation by more than this factor is
    /// `init-scale-mismatch`.
    pub init_scale_tolerance: f64,
    /// Loss that has not improved for this many epochs is `stalled-training`.
    pub stall_epochs: usize,
    /// Relative loss improvement below which an epoch counts as no progress.
    pub stall_min_improvement: f64,
}

impl Default for DoctorThresholds {
    fn default() -> Self {
        Self {
            dead_fraction_warning: 0.10,
            dead_fraction_error: 0.50,
            dormant_tau: 0.025,
            saturated_fraction_warning: 0.25,
            saturated_fraction_error: 0.50,
            vanishing_ratio: 1e-3,
            exploding_ratio: 1e3,
            init_scale_tolerance: 3.0,
            stall_epochs: 5,
            stall_min_improvement: 0.01,
        }
    }
}

impl DoctorThresholds {
    /// Validates every threshold; [`Spec::check`](crate::Spec::check) calls this.
    pub fn check(&self) -> Result<(), SpecError> {
        let fractions = [
            ("doctor.dead_fraction_warning", self.dead_fraction_warning),
            ("doctor.dead_fraction_error", self.dead_fraction_error),
            (
                "doctor.saturated_fraction_warning",
                self.saturated_fraction_warning,
            ),
            (
                "doctor.saturated_fraction_error",
                self.saturated_fraction_error,
            ),
            ("doctor.dormant_tau", self.dormant_tau),
            ("doctor.stall_min_improvement", self.stall_min_improvement),
        ];
        for (key, value) in fractions {
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                return Err(SpecError::invalid(
                    key,
                    value.to_string(),
                    "a number in [0, 1]",
                ));
            }
        }
        if self.dead_fraction_error < self.dead_fraction_warning {
            return Err(SpecError::invalid(
                "doctor.dead_fraction_error",
                self.dead_fraction_error.to_string(),
                "at least doctor.dead_fraction_warning",
            ));
        }
        if self.saturated_fraction_error < self.saturated_fraction_warning {
            return Err(SpecError::invalid(
                "doctor.saturated_fraction_error",
                self.saturated_fraction_error.to_string(),
                "at least doctor.saturated_fraction_warning",
            ));
        }
        // A healthy network's ratio is near 1: a vanishing threshold at or above 1, or an
        // exploding one at or below 1, would flag every network.
        if !(self.vanishing_ratio.is_finite()
            && self.vanishing_ratio > 0.0
            && self.vanishing_ratio < 1.0)
        {
            return Err(SpecError::invalid(
                "doctor.vanishing_ratio",
                self.vanishing_ratio.to_string(),
                "a number in (0, 1)",
            ));
        }
        if !(self.exploding_ratio.is_finite() && self.exploding_ratio > 1.0) {
            return Err(SpecError::invalid(
                "doctor.exploding_ratio",
                self.exploding_ratio.to_string(),
                "a finite number > 1",
            ));
        }
        if !(self.init_scale_tolerance.is_finite() && self.init_scale_tolerance > 1.0) {
            return Err(SpecError::invalid(
                "doctor.init_scale_tolerance",
                self.init_scale_tolerance.to_string(),
                "a factor > 1",
            ));
        }
        if self.stall_epochs < 2 || self.stall_epochs > 100_000 {
            return Err(SpecError::invalid(
                "doctor.stall_epochs",
                self.stall_epochs.to_string(),
                "from 2 to 100000",
            ));
        }
        Ok(())
    }
}
