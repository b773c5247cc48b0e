//! Findings, shaped like compiler diagnostics, and the documented list of checks.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; the model may still be fine.
    Advice,
    /// Likely to hurt; fix it when you can.
    Warning,
    /// It is why the model does not learn.
    Error,
}

impl Severity {
    /// All severities, mildest first.
    pub const ALL: [Severity; 3] = [Severity::Advice, Severity::Warning, Severity::Error];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Advice => "advice",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "advice" => Ok(Severity::Advice),
            "warning" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            _ => Err(format!("`{s}` is not one of advice, warning, error")),
        }
    }
}

/// A concrete change to the spec, with the reason to try it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remedy {
    /// `section.key` to new value (one or more keys that go together).
    pub change: BTreeMap<String, serde_json::Value>,
    /// One line: why this should help.
    pub why: String,
}

impl Remedy {
    /// A one-key remedy.
    pub fn set(key: &str, value: impl Into<serde_json::Value>, why: &str) -> Remedy {
        let mut change = BTreeMap::new();
        change.insert(key.to_string(), value.into());
        Remedy {
            change,
            why: why.to_string(),
        }
    }

    /// Adds another key to the same change.
    pub fn and(mut self, key: &str, value: impl Into<serde_json::Value>) -> Remedy {
        self.change.insert(key.to_string(), value.into());
        self
    }

    /// `key=value, key=value`, as `fix --try` takes them.
    pub fn label(&self) -> String {
        self.change
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One thing the doctor found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code, e.g. `dead-units`.
    pub code: String,
    /// How bad it is.
    pub severity: Severity,
    /// The layer it is about, if one.
    pub layer: Option<String>,
    /// One sentence for people.
    pub message: String,
    /// The numbers behind it.
    pub evidence: serde_json::Value,
    /// Ranked changes to try.
    pub remedies: Vec<Remedy>,
}

/// A documented check: clippy-style What / Why / Example / Remedies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// The finding code.
    pub code: &'static str,
    /// One line for `--list-checks`.
    pub summary: &'static str,
    /// What it detects, and the rule.
    pub what: &'static str,
    /// Why it hurts.
    pub why: &'static str,
    /// A spec that shows it.
    pub example: &'static str,
    /// What to change.
    pub remedies: &'static str,
}

/// Every check the doctor runs, in the order they are documented.
pub const CHECKS: &[Check] = &[
    Check {
        code: "dead-units",
        summary: "relu-family units that never activate on any input",
        what: "Counts units whose pre-activation is <= 0 for every probed input (for a conv layer, every pixel of every input). Advice from doctor.dead_fraction_warning (10%) of a layer; warning from doctor.dead_fraction_error (50%); error when that many are dead and the model is poor (train or test accuracy less than halfway from chance to perfect; without an accuracy, train loss above half of the best constant prediction's).",
        why: "A dead ReLU unit outputs 0 and passes back a zero gradient, so it never learns again; a layer of them starves every layer below it. A few percent dead is normal for a healthy ReLU net trained with Adam.",
        example: "configs/broken/digits-dying-relu.toml: Adam at learning rate 0.1 (100x the usual) knocks most units of the second hidden layer into ReLU's dead zone, and test accuracy stalls below 50%.",
        remedies: "model.bias_init = 0 when biases start negative; a lower train.learning_rate when units died during training; model.activation = leaky_relu; He initialization; batch norm. Or recycle the units: fix --strategy revive.",
    },
    Check {
        code: "dormant-units",
        summary: "units whose activity is a tiny fraction of their layer's (ReDo)",
        what: "ReDo's score (Sokar et al. 2023): a unit's mean |output| divided by its layer's average; dormant when the score <= doctor.dormant_tau (0.025). Advice when at least 25% of a layer is dormant but not dead.",
        why: "Dormant units contribute almost nothing to the next layer and learn slowly; the network is effectively smaller than its spec.",
        example: "A ReLU MLP trained for long with a high learning rate.",
        remedies: "fix --strategy revive re-initializes their incoming weights and zeroes their outgoing weights; leaky_relu; batch norm.",
    },
    Check {
        code: "saturated-units",
        summary: "sigmoid or tanh units stuck at their flat ends",
        what: "A unit is saturated when, on at least 90% of inputs, a sigmoid output is below 0.01 or above 0.99, or a tanh |output| is above 0.99. Thresholds on the fraction of saturated units as for dead-units (25% advice, 50% warning, error with a poor model).",
        why: "The derivative of a saturated sigmoid or tanh is nearly 0, so gradients through it vanish (Glorot & Bengio 2010).",
        example: "configs/broken/digits-saturated-sigmoid.toml: a 5-layer sigmoid MLP with N(0, 1) weights.",
        remedies: "Xavier initialization for sigmoid/tanh; model.activation = relu with He initialization (ReLU does not saturate; Krizhevsky et al. 2012 saw it train six times faster than tanh, `cargo xtask experiments krizhevsky` measures it here); batch norm.",
    },
    Check {
        code: "vanishing-gradients",
        summary: "the first layer gets almost no gradient compared with the last",
        what: "The ratio of the first layer's weight-gradient RMS to the output layer's, on a backward pass over a probe batch (512 rows), is below doctor.vanishing_ratio (1e-3), and the first layer's gradient is not simply zero from dead units. Warning; error when the model is poor.",
        why: "The early layers stop learning, so the network behaves like a shallow one on fixed random features.",
        example: "A deep sigmoid MLP with a poor initialization.",
        remedies: "relu with He initialization; Xavier initialization for sigmoid/tanh; batch norm.",
    },
    Check {
        code: "exploding-gradients",
        summary: "the first layer's gradient dwarfs the last layer's",
        what: "The first-to-last gradient RMS ratio is above doctor.exploding_ratio (1e3). Warning; error when the model is poor.",
        why: "Steps that are right for the last layer throw the first layers around; training diverges or oscillates.",
        example: "A deep MLP with N(0, 1) weights.",
        remedies: "A lower learning rate; He or Xavier initialization; batch norm.",
    },
    Check {
        code: "born-dead",
        summary: "units, or the whole network, dead at initialization",
        what: "Probes the initial weights: an error when the output is the same for every input (nothing reaches the head, Lu et al. 2019); a warning when a layer starts with at least doctor.dead_fraction_error of its units dead, an error when it is still dead after training and the model is poor.",
        why: "A network born dead gets no gradient through its dead layers and cannot start learning, whatever the optimizer.",
        example: "configs/broken/digits-born-dead.toml: a deep, narrow ReLU net (10 layers of width 3).",
        remedies: "model.bias_init = 0 when biases start negative; fewer, wider layers (half the depth, at least 32 wide), or the same depth widened to 32; He initialization; leaky_relu (not reliable alone).",
    },
    Check {
        code: "output-range-mismatch",
        summary: "the output activation cannot reach the regression targets",
        what: "Regression only: the fraction of training targets outside what model.output_activation can produce (relu: >= 0, softplus: > 0, sigmoid: (0, 1), tanh: (-1, 1)). Warning from 1% of targets, error from 10%.",
        why: "The loss can never go below the error on the unreachable targets; with a relu head the gradient is also 0 wherever the head is clipped.",
        example: "configs/broken/diabetes-relu-head.toml: standardized (half negative) targets with a relu head.",
        remedies: "model.output_activation = none (a linear head).",
    },
    Check {
        code: "init-scale-mismatch",
        summary: "initial weights far from the He/Xavier/LeCun scale",
        what: "Compares each layer's initial weight std with the std He (relu family), Glorot (sigmoid, tanh, identity) or LeCun (selu) recommend for its fan-in, fan-out and activation; reports layers off by more than doctor.init_scale_tolerance (3x). Advice; warning when the model is poor.",
        why: "Too small and signals shrink layer by layer (vanishing); too large and they blow up or saturate (exploding, saturated units).",
        example: "model.init = \"normal\" with init_std = 1.0 on a sigmoid net.",
        remedies: "model.init = kaiming_normal (relu family), xavier_uniform (sigmoid, tanh), lecun_normal (selu).",
    },
    Check {
        code: "stalled-training",
        summary: "the loss stopped falling while the model is still poor",
        what: "From metrics.jsonl: the train loss improved by less than doctor.stall_min_improvement (1%) over the last doctor.stall_epochs (5) epochs, or ended near a constant predictor's loss, while the model is poor. Warning; error when it ended within 10% of chance accuracy or of the constant predictor's loss.",
        why: "More epochs will not help: something in the setup stops learning.",
        example: "Any of the broken configs.",
        remedies: "Follow the other findings; otherwise adjust the learning rate.",
    },
    Check {
        code: "non-finite",
        summary: "NaN or infinite loss, activations, weights or gradients",
        what: "Any non-finite loss in the history, or non-finite activation, output, weight or gradient statistics in the probe. Always an error.",
        why: "Once a NaN appears every weight it touches becomes NaN; the model is lost.",
        example: "train.learning_rate = 10 with SGD.",
        remedies: "A lower learning rate; He or Xavier initialization; batch norm.",
    },
];

/// The check with this code.
pub fn check(code: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--list-checks` shows these examples to users: a config they name must be in the repo,
    /// and what it says about its training must match the config's own header.
    #[test]
    fn list_checks_examples_name_configs_that_exist_and_agree_with_them() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for c in CHECKS {
            let Some(path) = c
                .example
                .split(':')
                .next()
                .filter(|p| p.starts_with("configs/"))
            else {
                continue;
            };
            let text = std::fs::read_to_string(root.join(path))
                .unwrap_or_else(|e| panic!("{}: example {path}: {e}", c.code));
            if c.example.contains("Adam") {
                assert!(text.contains("optimizer = \"adam\""), "{}: {path}", c.code);
            }
            if let Some(lr) = c.example.split("learning rate ").nth(1) {
                let lr = lr.split_whitespace().next().unwrap();
                assert!(
                    text.contains(&format!("learning_rate = {lr}")),
                    "{}: {path}",
                    c.code
                );
            }
        }
    }
}
