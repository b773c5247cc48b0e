//! `neuron-doctor compare`: which activation and initialization for this model and this data,
//! measured under the same data, budget and paired seeds.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use nd_remedy::{CompareOptions, DiagnoseOptions, Inits};
use nd_report::Format;
use nd_spec::{Activation, Init};

use crate::progress::FixProgress;
use crate::settings::{self, Overrides};

/// Arguments of `compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The model spec (TOML): its data, architecture and budget are held fixed.
    pub config: PathBuf,
    /// The activations to try, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "relu,leaky_relu,elu,gelu,tanh,sigmoid",
        value_name = "LIST"
    )]
    pub activation: Vec<Activation>,
    /// `auto`: each activation with its matched initializer (He for the ReLU family, Glorot
    /// for sigmoid and tanh, LeCun for SELU); or a comma-separated list, every activation with
    /// every initializer.
    #[arg(long, default_value = "auto", value_name = "auto|LIST")]
    pub init: String,
    /// Seeds per setting (the spec's and the next ones), the same for every setting.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub seeds: usize,
    /// The test accuracy to reach (or the test MSE to get under), for "epochs to target".
    #[arg(long, value_name = "METRIC")]
    pub target: Option<f64>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Output: text, json, or markdown.
    #[arg(long, default_value = "text", value_name = "FORMAT")]
    pub format: Format,
    /// Also write a self-contained HTML report: every setting's learning curve on one chart,
    /// dead and saturated units per layer side by side.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Where the runs go (default: runs/NAME.compare).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace an existing compare directory.
    #[arg(long)]
    pub force: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub executor: crate::settings::ExecutorFlags,
}

fn parse_inits(text: &str) -> anyhow::Result<Inits> {
    if text.trim() == "auto" {
        return Ok(Inits::Auto);
    }
    let inits = text
        .split(',')
        .map(|t| {
            t.trim()
                .parse::<Init>()
                .map_err(|e| anyhow::anyhow!("--init {text:?}: {e}"))
        })
        .collect::<anyhow::Result<Vec<Init>>>()?;
    if inits.is_empty() {
        anyhow::bail!("--init {text:?}: name at least one initializer, or auto");
    }
    Ok(Inits::Each(inits))
}

/// Runs `compare`.
pub fn run(args: CompareArgs) -> anyhow::Result<ExitCode> {
    if args.seeds == 0 {
        anyhow::bail!("--seeds 0: a comparison needs at least 1 seed per setting");
    }
    if args.activation.is_empty() {
        anyhow::bail!("--activation: name at least one activation");
    }
    if let Some(t) = args.target {
        if !t.is_finite() || t < 0.0 {
            anyhow::bail!("--target {t}: expected a finite metric >= 0");
        }
    }
    let inits = parse_inits(&args.init)?;
    let report_path = args
        .report
        .as_deref()
        .map(crate::cmd::diagnose::check_report_path)
        .transpose()?;
    let spec = settings::load_spec(&args.config, &args.overrides)?;
    let data = settings::load_data(&spec, &args.config.display().to_string())?;
    let dir = match args.out {
        Some(out) => settings::run_dir(Some(out), &spec)?,
        None => nd_remedy::compare_dir(std::path::Path::new("runs"), &spec.name),
    };
    crate::cmd::fix::check_out_dir(&dir, args.force, "compare")?;
    let device = nd_train::device(spec.train.backend)?;
    let options = CompareOptions {
        activations: args.activation,
        inits,
        seeds: args.seeds,
        target: args.target,
        diagnose: DiagnoseOptions::default(),
        force: args.force,
        executor: args.executor.executor(&spec.executor, spec.train.backend)?,
    };
    let report = nd_remedy::compare(
        &spec,
        &data,
        &dir,
        &options,
        &device,
        &mut FixProgress::new(args.quiet),
    )?;
    match args.format {
        Format::Text => print!("{}", nd_report::compare_text(&report)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&nd_report::compare_json(&report))?
        ),
        Format::Markdown => print!("{}", nd_report::compare_markdown(&report)),
    }
    if let Some(path) = &report_path {
        crate::cmd::diagnose::write_report(path, &nd_report::compare_html(&report))?;
        eprintln!("report: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
