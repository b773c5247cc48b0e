//! Progress bars for long work, drawn on stderr and hidden when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use nd_models::Network;
use nd_train::{EpochMetrics, Observer};

/// Shows one bar over all optimizer steps, with the latest epoch's metrics as its message.
pub struct TrainProgress {
    bar: ProgressBar,
    label: String,
}

impl TrainProgress {
    /// A bar labelled `label` (e.g. the run's name).
    pub fn new(label: &str, quiet: bool) -> Self {
        let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
        bar.set_style(
            ProgressStyle::with_template("{prefix:>32} [{bar:30}] epoch {msg} {elapsed_precise}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        Self {
            bar,
            label: label.to_string(),
        }
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

/// One bar per candidate training.
pub struct FixProgress {
    /// Hide the bars.
    pub quiet: bool,
}

impl nd_remedy::FixObserver for FixProgress {
    fn training(&mut self, label: &str) -> Box<dyn Observer + '_> {
        tracing::info!(candidate = label, "training");
        Box::new(TrainProgress::new(label, self.quiet))
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

    fn epoch(&mut self, m: &EpochMetrics, _network: &Network) -> bool {
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
