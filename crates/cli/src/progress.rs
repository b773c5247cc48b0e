//! Progress bars for long work, drawn on stderr and hidden when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use nd_models::Network;
use nd_train::{EpochMetrics, Observer};

/// What `train --watch` / `--stop-on` look for in the live health statistics.
#[derive(Debug, Clone)]
pub struct Watch {
    /// Print a warning when a layer crosses a threshold.
    pub warn: bool,
    /// Stop when the live state reaches this severity (on two epochs in a row).
    pub stop_on: Option<nd_probe::Severity>,
    /// Thresholds from the spec.
    pub thresholds: nd_spec::DoctorThresholds,
    /// Classes (0 for regression).
    pub n_classes: usize,
}

/// Shows one bar over all optimizer steps, with the latest epoch's metrics as its message.
pub struct TrainProgress {
    bar: ProgressBar,
    label: String,
    watch: Option<Watch>,
    warned: Vec<String>,
    alarming: Vec<String>,
    strikes: usize,
    /// Why `--stop-on` stopped the run, if it did.
    pub stop_reason: Option<String>,
}

impl TrainProgress {
    /// A bar labelled `label` (e.g. the run's name).
    pub fn new(label: &str, quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix:>32} [{bar:30}] epoch {msg} {elapsed_precise}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        Self {
            bar,
            label: label.to_string(),
            watch: None,
            warned: Vec::new(),
            alarming: Vec::new(),
            strikes: 0,
            stop_reason: None,
        }
    }

    /// Watches the live health statistics.
    pub fn with_watch(mut self, watch: Watch) -> Self {
        self.watch = Some(watch);
        self
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for TrainProgress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// One bar per candidate trained in this process; one bar over all tasks for trainings in
/// other processes or on a cluster (done of total, with running, pending and failed).
pub struct FixProgress {
    quiet: bool,
    tasks: Option<ProgressBar>,
}

impl FixProgress {
    /// Progress, hidden when `quiet`.
    pub fn new(quiet: bool) -> Self {
        Self { quiet, tasks: None }
    }
}

impl nd_remedy::FixObserver for FixProgress {
    fn training(&mut self, label: &str) -> Box<dyn Observer + '_> {
        tracing::info!(candidate = label, "training");
        Box::new(TrainProgress::new(label, self.quiet))
    }

    fn tasks(&mut self, tally: &nd_remedy::Tally) {
        tracing::info!(?tally, "trainings");
        let quiet = self.quiet;
        let bar = self.tasks.get_or_insert_with(|| {
            let bar = if quiet {
                ProgressBar::hidden()
            } else {
                ProgressBar::new(tally.total as u64)
            };
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>32} [{bar:30}] {pos}/{len} done, {msg} {elapsed_precise}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix("trainings");
            bar
        });
        bar.set_length(tally.total as u64);
        bar.set_position((tally.done + tally.failed) as u64);
        bar.set_message(format!(
            "{} running, {} pending, {} failed",
            tally.running, tally.pending, tally.failed
        ));
        if tally.done + tally.failed == tally.total {
            bar.finish_and_clear();
            self.tasks = None;
        }
    }
}

impl Observer for TrainProgress {
    fn start(&mut self, epochs: usize, batches: usize) {
        self.bar.set_length((epochs * batches) as u64);
        self.bar.set_message("1");
    }

    fn batch(&mut self) {
        self.bar.inc(1);
    }

    fn health(&mut self, health: &nd_probe::EpochHealth) {
        let Some(watch) = &self.watch else {
            return;
        };
        let t = &watch.thresholds;
        self.alarming.clear();
        for layer in &health.layers {
            let mut alarms = Vec::new();
            if layer.dead_fraction >= t.dead_fraction_error {
                alarms.push(format!("{:.0}% dead units", layer.dead_fraction * 100.0));
            }
            if layer.saturated_fraction >= t.saturated_fraction_error {
                alarms.push(format!(
                    "{:.0}% saturated units",
                    layer.saturated_fraction * 100.0
                ));
            }
            if alarms.is_empty() {
                continue;
            }
            let line = format!(
                "epoch {}: {} has {}",
                health.epoch,
                layer.name,
                alarms.join(" and ")
            );
            if watch.warn && !self.warned.contains(&layer.name) {
                self.bar.suspend(|| eprintln!("warning: {line}"));
                self.warned.push(layer.name.clone());
            }
            self.alarming.push(line);
        }
    }

    fn epoch(&mut self, m: &EpochMetrics, _network: &Network) -> bool {
        if let Some(watch) = &self.watch {
            if let Some(stop_on) = watch.stop_on {
                let accuracy = match (m.train_accuracy, m.test_accuracy) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let chance = if watch.n_classes > 0 {
                    1.0 / watch.n_classes as f64
                } else {
                    0.0
                };
                let poor = accuracy.is_some_and(|a| a < chance + 0.5 * (1.0 - chance));
                let alarm = !m.is_finite()
                    || (!self.alarming.is_empty() && (poor || stop_on < nd_probe::Severity::Error));
                self.strikes = if alarm { self.strikes + 1 } else { 0 };
                if self.strikes >= 2 || !m.is_finite() {
                    let why = if m.is_finite() {
                        format!("{} (two epochs in a row)", self.alarming.join("; "))
                    } else {
                        format!("epoch {}: the loss is not finite", m.epoch)
                    };
                    self.stop_reason = Some(why);
                    return false;
                }
            }
        }
        let quality = match (m.test_accuracy, m.test_mse) {
            (Some(acc), _) => format!("test acc {:.1}%", acc * 100.0),
            (_, Some(mse)) => format!("test mse {mse:.4}"),
            _ => String::new(),
        };
        self.bar
            .set_message(format!("{} loss {:.4} {quality}", m.epoch, m.train_loss));
        tracing::info!(run = %self.label, epoch = m.epoch, loss = m.train_loss, "epoch");
        true
    }
}
