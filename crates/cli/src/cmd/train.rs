//! `neuron-doctor train`: train a spec and save the run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use nd_train::PendingRun;

use crate::progress::{TrainProgress, Watch};
use crate::settings::{self, Overrides};

/// Arguments of `train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The model spec (TOML).
    pub config: PathBuf,
    /// The run directory to write (default: runs/NAME).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace an existing run directory.
    #[arg(long)]
    pub force: bool,
    /// Start from these weights (a `.bpk` of the spec's architecture, e.g. another run's
    /// final.bpk) instead of a fresh initialization; they become the run's initial.bpk.
    #[arg(long, value_name = "FILE")]
    pub init_from: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Warn on stderr as soon as a layer crosses a threshold (e.g. half its units dead).
    #[arg(long)]
    pub watch: bool,
    /// End a hopeless run early, saving what it has: `error` stops when a layer is past its
    /// threshold and the model is poor, `warning` when a layer is past its threshold, two
    /// epochs in a row (or at once on a non-finite loss).
    #[arg(long, value_name = "SEVERITY")]
    pub stop_on: Option<nd_probe::Severity>,
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Runs `train`.
pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let spec = settings::load_spec(&args.config, &args.overrides)?;
    let data = settings::load_data(&spec, &args.config.display().to_string())?;
    let out = settings::run_dir(args.out, &spec)?;
    let pending = PendingRun::create(&out, args.force)?;
    let device = nd_train::device(spec.train.backend)?;
    let mut progress = TrainProgress::new(&spec.name, args.quiet);
    if args.watch || args.stop_on.is_some() {
        progress = progress.with_watch(Watch {
            warn: args.watch,
            stop_on: args.stop_on,
            thresholds: spec.doctor.clone(),
            n_classes: data.n_classes,
        });
    }
    let start = match &args.init_from {
        Some(file) => Some(nd_train::init_network(&spec, &data, &device)?.load_weights(file)?),
        None => None,
    };
    let trained = nd_train::train_from(&spec, &data, start, &device, &mut progress)?;
    progress.finish();
    pending.write(&spec, &data, &trained)?;
    let dir = pending.commit()?;
    let last = trained.metrics.last();
    let quality = match last.map(|m| (m.test_accuracy, m.test_mse)) {
        Some((Some(acc), _)) => format!("test accuracy {:.1}%", acc * 100.0),
        Some((_, Some(mse))) => format!("test MSE {mse:.4}"),
        _ => "no finished epoch".into(),
    };
    let on = nd_train::describe(spec.train.backend)?;
    println!(
        "trained {} on {} for {} epochs in {:.1}s on {on}: {quality}",
        spec.name,
        data.name,
        trained.metrics.len(),
        trained.seconds
    );
    match (&progress.stop_reason, &trained.stopped_early) {
        (Some(why), _) => println!("stopped early by --stop-on: {why}"),
        (None, Some(why)) => println!("stopped early: {why}"),
        _ => {}
    }
    println!("run saved to {}", dir.display());
    // A run ended by --stop-on is a failed run for a pipeline, though it is saved.
    Ok(if progress.stop_reason.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
