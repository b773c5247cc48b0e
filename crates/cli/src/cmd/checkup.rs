//! `neuron-doctor checkup`: train, diagnose, fix and verify in one command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use nd_remedy::{DiagnoseOptions, FixOptions, Original};
use nd_report::Format;
use nd_spec::Spec;
use nd_train::PendingRun;

use crate::cmd::fix::{exit_code, print_report, FixFlags};
use crate::progress::{FixProgress, TrainProgress};
use crate::settings::{self, Overrides};

/// The embedded default: a digits classifier with a deliberately broken ReLU setup.
pub const DEFAULT_SPEC: &str = include_str!("../../../../configs/broken/digits-dying-relu.toml");

/// Arguments of `checkup`.
#[derive(Debug, Args)]
pub struct CheckupArgs {
    /// The model spec (TOML), or a model trained elsewhere (.onnx, .safetensors, .pt, .pth)
    /// with --data. Without one: the embedded demo, a ReLU digits classifier whose units die.
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub import: crate::cmd::import::ImportFlags,
    /// The run directory to write (default: runs/NAME); candidates go to RUN.fix/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace existing run and fix directories.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub flags: FixFlags,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Output: text, json (the fix report), or markdown.
    #[arg(long, default_value = "text", value_name = "FORMAT")]
    pub format: Format,
    /// Where to write the HTML report (default: RUN.report.html beside the run directory).
    #[arg(long, value_name = "FILE", conflicts_with = "no_report")]
    pub report: Option<PathBuf>,
    /// Do not write the HTML report.
    #[arg(long)]
    pub no_report: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `runs/NAME` -> `runs/NAME.report.html`.
fn default_report_path(run_dir: &std::path::Path) -> PathBuf {
    let mut name = run_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "run".into());
    name.push(".report.html");
    run_dir.with_file_name(name)
}

/// What step 1 (train or import) leaves for the rest.
struct Step1 {
    run_dir: PathBuf,
    spec: nd_spec::CheckedSpec,
    data: nd_data::Dataset,
    initial: Option<nd_models::Network>,
    network: nd_models::Network,
    history: Vec<nd_train::EpochMetrics>,
    health: Vec<nd_probe::EpochHealth>,
    train_seconds: f64,
}

/// Refuses, before any work, a run, fix directory or default report that may not be replaced.
fn prepare_outputs(
    out: &std::path::Path,
    chosen_report: &Option<PathBuf>,
    args: &CheckupArgs,
) -> anyhow::Result<()> {
    crate::cmd::fix::check_out_dir(out, args.force, "run")?;
    crate::cmd::fix::check_fix_dir(&nd_remedy::fix_dir(out), args.force)?;
    // The default report goes beside the run: an existing file there must be a report too.
    let default_report = default_report_path(out);
    if chosen_report.is_none() && !args.no_report && default_report.exists() {
        crate::cmd::diagnose::check_report_path(&default_report)?;
    }
    Ok(())
}

/// Runs `checkup`.
pub fn run(args: CheckupArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    args.overrides.check()?;
    let extra = args.flags.check()?;
    let chosen_report = args
        .report
        .as_deref()
        .map(crate::cmd::diagnose::check_report_path)
        .transpose()?;
    let text = args.format == Format::Text;
    let say = |line: String| {
        if text {
            println!("{line}");
        }
    };
    let model_file = args
        .config
        .as_deref()
        .filter(|p| nd_import::is_model_file(p) && !p.is_dir());
    // Step 1 trains a spec, or imports a model file: either way a run, its data and its
    // networks (an imported model has no initial weights and no history).
    let step1 = match model_file {
        Some(model) => {
            let recipe = crate::cmd::import::RecipeFlags {
                epochs: args.overrides.epochs,
                seed: args.overrides.seed,
                backend: args.overrides.backend,
                ..Default::default()
            };
            let t0 = Instant::now();
            let loaded = crate::cmd::import::load(model, &args.import, &recipe)?;
            let out = settings::run_dir(args.out.clone(), &loaded.spec)?;
            prepare_outputs(&out, &chosen_report, &args)?;
            say(format!(
                "== 1. import: {}\n   measured on {}: {}",
                crate::cmd::import::describe_model(&loaded),
                loaded.data.name,
                crate::cmd::import::describe_metrics(&loaded.measured)
            ));
            let run_dir = crate::cmd::import::write_run(&loaded, Some(out), args.force)?;
            Step1 {
                run_dir,
                initial: None,
                history: vec![loaded.measured.clone()],
                health: Vec::new(),
                train_seconds: t0.elapsed().as_secs_f64(),
                spec: loaded.spec,
                data: loaded.data,
                network: loaded.network,
            }
        }
        None => {
            if args.import.data.is_some() {
                anyhow::bail!("--data goes with a model file (.onnx, .safetensors, .pt, .pth); a spec names its own data");
            }
            let spec = match &args.config {
                Some(path) => settings::load_spec(path, &args.overrides)?,
                None => args
                    .overrides
                    .apply(Spec::from_toml_str(DEFAULT_SPEC, "checkup-default")?)
                    .check()?,
            };
            let origin = args
                .config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "the embedded default spec".into());
            let data = settings::load_data(&spec, &origin)?;
            let out = settings::run_dir(args.out.clone(), &spec)?;
            prepare_outputs(&out, &chosen_report, &args)?;
            let pending = PendingRun::create(&out, args.force)?;
            let device = nd_train::device(spec.train.backend)?;
            say(format!(
                "== 1. train: {} ({} {:?} {}, {} epochs on {}; computing on {})",
                spec.name,
                spec.model.kind,
                spec.model.hidden,
                spec.model.activation,
                spec.train.epochs,
                data.name,
                nd_train::describe(spec.train.backend)?
            ));
            let t0 = Instant::now();
            let mut progress = TrainProgress::new(&spec.name, args.quiet);
            let trained = nd_train::train(&spec, &data, &device, &mut progress)?;
            drop(progress);
            pending.write(&spec, &data, &trained)?;
            let run_dir = pending.commit()?;
            Step1 {
                run_dir,
                initial: Some(trained.initial),
                history: trained.metrics,
                health: trained.health,
                train_seconds: t0.elapsed().as_secs_f64(),
                spec,
                data,
                network: trained.network,
            }
        }
    };
    let Step1 {
        run_dir,
        initial,
        history,
        health,
        train_seconds,
        spec,
        data,
        network,
    } = step1;
    let imported = spec.source.is_some();
    let device = nd_train::device(spec.train.backend)?;
    let default_report = default_report_path(&run_dir);

    say(format!("\n== 2. diagnose: {}", run_dir.display()));
    let t1 = Instant::now();
    let diagnosis = nd_remedy::diagnose_networks(
        &run_dir.display().to_string(),
        &spec,
        &data,
        initial.as_ref(),
        &network,
        &history,
        &DiagnoseOptions::default(),
        &device,
    );
    let diagnose_seconds = t1.elapsed().as_secs_f64();
    if text {
        print!("{}", nd_report::diagnosis_text(&diagnosis));
    }

    say("\n== 3. fix: re-train the remedies with the same data, seed and budget".into());
    let t2 = Instant::now();
    for candidate in &extra {
        candidate
            .apply(&spec)
            .map_err(|e| anyhow::anyhow!("--try {}: {e}", candidate.label))?;
    }
    let original = Original {
        dir: &run_dir,
        spec: &spec,
        data: &data,
        diagnosis: &diagnosis,
        train_seconds,
        start: imported.then_some(&network),
    };
    let options = FixOptions {
        candidates: args.flags.candidates,
        extra,
        seeds: args.flags.seeds,
        diagnose: DiagnoseOptions::default(),
        force: args.force,
        retrain_original: false,
        launch: nd_remedy::Launch::Wait,
        budget: args.flags.budget,
        executor: args
            .flags
            .executor
            .executor(&spec.executor, spec.train.backend)?,
    };
    let report = nd_remedy::fix(
        &original,
        &options,
        &device,
        &mut FixProgress::new(args.quiet),
    )?;
    let fix_seconds = t2.elapsed().as_secs_f64();
    print_report(&report, None, args.format)?;
    let verdict = if report.nothing_to_fix {
        "healthy: nothing to fix".to_string()
    } else if let Some(best) = report.best() {
        let before = report
            .original
            .metrics
            .primary
            .first()
            .copied()
            .unwrap_or(f64::NAN);
        let after = best
            .outcome
            .metrics
            .primary
            .first()
            .copied()
            .unwrap_or(f64::NAN);
        let (b, a) = if report.metric == "test_accuracy" {
            (
                format!("{:.1}%", before * 100.0),
                format!("{:.1}%", after * 100.0),
            )
        } else {
            (format!("{before:.4}"), format!("{after:.4}"))
        };
        format!(
            "{}: {} took {} from {b} to {a}, dead units {:.0}% -> {:.0}%",
            best.verdict.as_str(),
            best.candidate.label,
            report.metric,
            report.original.dead_fraction * 100.0,
            best.outcome.dead_fraction * 100.0
        )
    } else {
        "no cure found among the candidates".to_string()
    };
    let report_path = if args.no_report {
        None
    } else {
        Some(chosen_report.unwrap_or(default_report))
    };
    if let Some(path) = &report_path {
        let html = nd_report::html_report(&nd_report::HtmlInput {
            diagnosis: &diagnosis,
            metrics: if imported { &[] } else { &history },
            health: &health,
            fix: Some(&report),
        });
        crate::cmd::diagnose::write_report(path, &html)?;
    }
    say(format!(
        "\n== verdict: {verdict}\n   time: {} {train_seconds:.1}s, diagnose {diagnose_seconds:.1}s, fix {fix_seconds:.1}s, total {:.1}s",
        if imported { "import" } else { "train" },
        start.elapsed().as_secs_f64()
    ));
    if let Some(path) = &report_path {
        if text {
            say(format!("   report: {}", path.display()));
        } else {
            eprintln!("report: {}", path.display());
        }
    }
    Ok(exit_code(&report))
}
