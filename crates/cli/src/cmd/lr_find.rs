//! `neuron-doctor lr-find`: the learning-rate range test on a spec or a run's spec.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use nd_report::Format;
use nd_train::LrFindOptions;

use crate::settings::{self, Overrides};

/// Arguments of `lr-find`.
#[derive(Debug, Args)]
pub struct LrFindArgs {
    /// A model spec (TOML), or a run directory (its `config.toml`).
    pub target: PathBuf,
    /// Optimizer steps from the first rate to the last.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub steps: usize,
    /// The first rate.
    #[arg(long, default_value_t = 1e-7, value_name = "RATE")]
    pub start: f64,
    /// The last rate.
    #[arg(long, default_value_t = 10.0, value_name = "RATE")]
    pub end: f64,
    /// Output: text (a table of the curve) or json (every step).
    #[arg(long, default_value = "text", value_name = "FORMAT")]
    pub format: Format,
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Runs `lr-find`.
pub fn run(args: LrFindArgs) -> anyhow::Result<ExitCode> {
    if args.steps < 10 {
        anyhow::bail!(
            "--steps {}: the range test needs at least 10 steps",
            args.steps
        );
    }
    if !(args.start.is_finite()
        && args.end.is_finite()
        && 0.0 < args.start
        && args.start < args.end)
    {
        anyhow::bail!(
            "--start {} --end {}: rates must be finite, positive, and start below end",
            args.start,
            args.end
        );
    }
    let config = if args.target.is_dir() {
        args.target.join(nd_train::CONFIG_FILE)
    } else {
        args.target.clone()
    };
    let spec = settings::load_spec(&config, &args.overrides)?;
    let data = settings::load_data(&spec, &config.display().to_string())?;
    let device = nd_train::device(spec.train.backend)?;
    let options = LrFindOptions {
        start: args.start,
        end: args.end,
        steps: args.steps,
        ..LrFindOptions::default()
    };
    let curve = nd_train::lr_find(&spec, &data, &device, &options)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&curve)?),
        _ => {
            println!(
                "learning-rate range test: {} ({} {:?} {}, {} optimizer, batch {}), {} steps from {:.0e} to {:.0e}",
                spec.name,
                spec.model.kind,
                spec.model.hidden,
                spec.model.activation,
                spec.train.optimizer,
                spec.train.batch_size,
                curve.points.len(),
                args.start,
                args.end
            );
            let mut table = comfy_table::Table::new();
            table
                .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
                .set_header(vec!["learning rate", "loss", "smoothed loss"]);
            let every = curve.points.len().div_ceil(20).max(1);
            for point in curve.points.iter().step_by(every) {
                table.add_row(vec![
                    format!("{:.2e}", point.learning_rate),
                    format!("{:.4}", point.loss),
                    format!("{:.4}", point.smoothed),
                ]);
            }
            println!("{table}");
            if let Some(why) = &curve.stopped {
                println!("stopped early: {why}");
            }
            match (curve.suggested, curve.lowest) {
                (Some(rate), Some(lowest)) => println!(
                    "suggested learning rate: {rate:.2e} (steepest fall of the smoothed loss; lowest loss at {lowest:.2e}); the spec has {}",
                    spec.train.learning_rate
                ),
                _ => println!(
                    "no suggestion: the smoothed loss never fell between {:.0e} and {:.0e}",
                    args.start, args.end
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
