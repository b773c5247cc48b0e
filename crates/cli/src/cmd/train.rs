//! `neuron-doctor train`: train a spec and save the run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use nd_train::PendingRun;

use crate::progress::TrainProgress;
use crate::settings::{self, Overrides};

/// Arguments of `train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The model spec (TOML).
    pub config: PathBuf,
    /// The run directory to write (default: runs/<name>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace an existing run directory.
    #[arg(long)]
    pub force: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Runs `train`.
pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let spec = settings::load_spec(&args.config, &args.overrides)?;
    let data = settings::load_data(&spec)?;
    let out = settings::run_dir(args.out, &spec);
    let pending = PendingRun::create(&out, args.force)?;
    let device = nd_train::device(spec.train.backend)?;
    let mut progress = TrainProgress::new(&spec.name, args.quiet);
    let trained = nd_train::train(&spec, &data, &device, &mut progress)?;
    progress.finish();
    pending.write(&spec, &data, &trained)?;
    let dir = pending.commit()?;
    let last = trained.metrics.last();
    let quality = match last.map(|m| (m.test_accuracy, m.test_mse)) {
        Some((Some(acc), _)) => format!("test accuracy {:.1}%", acc * 100.0),
        Some((_, Some(mse))) => format!("test MSE {mse:.4}"),
        _ => "no finished epoch".into(),
    };
    println!(
        "trained {} on {} for {} epochs in {:.1}s: {quality}",
        spec.name,
        data.name,
        trained.metrics.len(),
        trained.seconds
    );
    if let Some(why) = &trained.stopped_early {
        println!("stopped early: {why}");
    }
    println!("run saved to {}", dir.display());
    Ok(ExitCode::SUCCESS)
}
