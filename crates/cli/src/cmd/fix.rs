//! `neuron-doctor fix`: re-train candidate remedies and judge them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use nd_remedy::{Candidate, DiagnoseOptions, FixOptions, FixReport, Launch, Original, ReviveInfo};
use nd_report::Format;

use crate::progress::FixProgress;

/// How to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// Re-train each candidate from scratch with the same seed and budget.
    Retrain,
    /// Recycle dead and dormant units in the trained model (ReDo) and train a little more.
    Revive,
}

/// Options shared by `fix` and `checkup`.
#[derive(Debug, Clone, Args)]
pub struct FixFlags {
    /// Candidates to take from the findings' remedies.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub candidates: usize,
    /// Add a candidate by hand, e.g. --try 'model.activation=leaky_relu' (repeatable; join
    /// changes that go together with commas).
    #[arg(long = "try", value_name = "KEY=VALUE")]
    pub try_: Vec<String>,
    /// Seeds per network: the spec's and the next ones. Gains must beat the seed-to-seed
    /// spread and win on every paired seed.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub seeds: usize,
    /// Epochs the whole fix may spend (every training's epochs added up). With it, up to 8
    /// candidates are tried by successive halving: each trains a fraction of the epochs on the
    /// spec's seed, the better half is kept and the epochs doubled, until --candidates remain
    /// for the full paired-seed runs; the report lists what was pruned when and why.
    #[arg(long, value_name = "EPOCHS")]
    pub budget: Option<usize>,
    #[command(flatten)]
    pub executor: crate::settings::ExecutorFlags,
}

impl FixFlags {
    /// Checks the flags' own values, naming the flag, and parses the `--try` candidates.
    pub fn check(&self) -> anyhow::Result<Vec<Candidate>> {
        if self.seeds == 0 {
            anyhow::bail!("--seeds 0: a verdict needs at least 1 seed per network");
        }
        self.try_
            .iter()
            .map(|t| Candidate::parse(t).map_err(|e| anyhow::anyhow!("--try {t:?}: {e}")))
            .collect()
    }
}

/// Refuses, before any training, a fix directory that exists and may not be replaced: without
/// `--force`, or (with it) when it is not a neuron-doctor fix directory.
pub fn check_fix_dir(fix_dir: &std::path::Path, force: bool) -> anyhow::Result<()> {
    check_out_dir(fix_dir, force, "fix")?;
    // A submission still running would go on writing into its replacement.
    if let Some((job, queued)) = nd_executor::still_queued(&fix_dir.join(nd_train::JOBS_DIR)) {
        if queued > 0 {
            anyhow::bail!(
                "{}: its Slurm job array {job} still has {queued} task(s) queued or running; wait and collect it (fix --collect), or cancel it (scancel {job}) before replacing it",
                fix_dir.display()
            );
        }
    }
    Ok(())
}

/// Refuses, before any work, a `kind` directory (run, fix, compare) that exists and may not be
/// replaced: without `force`, or (with it) when it is not one neuron-doctor wrote.
pub fn check_out_dir(dir: &std::path::Path, force: bool, kind: &str) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(dir).is_ok() {
        nd_train::check_replaceable(dir)?;
        if !force {
            anyhow::bail!(
                "{}: {kind} directory already exists (use --force to replace it)",
                dir.display()
            );
        }
    }
    Ok(())
}

/// Arguments of `fix`.
#[derive(Debug, Args)]
pub struct FixArgs {
    /// The run directory written by `train` or `import`. An imported model's fix starts from
    /// its weights: the baseline trains them on under the run's `[train]` recipe, and so do the
    /// remedies that can keep them (reviving dead units, another activation or learning rate);
    /// the others re-train from scratch.
    pub run: PathBuf,
    #[command(flatten)]
    pub flags: FixFlags,
    /// retrain (from scratch, default) or revive (ReDo, in place).
    #[arg(long, value_enum, default_value = "retrain")]
    pub strategy: Strategy,
    /// revive: epochs of continued training (default: a quarter of the run's epochs, at least 1).
    #[arg(long, value_name = "N")]
    pub revive_epochs: Option<usize>,
    /// Diagnose and re-train on this backend instead of the run's (ndarray | flex | wgpu). With
    /// retrain, the original's own seed is re-trained there too: every number compared comes
    /// from one backend.
    #[arg(long, value_name = "NAME")]
    pub backend: Option<nd_spec::Backend>,
    /// Output: text, json, or markdown.
    #[arg(long, default_value = "text", value_name = "FORMAT")]
    pub format: Format,
    /// Also write a self-contained HTML report to FILE: the diagnosis' charts and the original
    /// and every candidate side by side.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Replace an existing RUN.fix directory.
    #[arg(long)]
    pub force: bool,
    /// slurm: submit the trainings as a job array and return; `fix RUN --collect` judges them
    /// later (the same --candidates, --try and --seeds).
    #[arg(long, conflicts_with_all = ["collect", "budget"])]
    pub no_wait: bool,
    /// slurm: judge the trainings `--no-wait` submitted for RUN, waiting for those still queued
    /// or running.
    #[arg(long, conflicts_with = "budget")]
    pub collect: bool,
    /// With --collect: submit the failed tasks again (only those), wait, then judge.
    #[arg(long, requires = "collect")]
    pub retry_failed: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Prints a fix report in `format`.
pub fn print_report(
    report: &FixReport,
    revive: Option<&ReviveInfo>,
    format: Format,
) -> anyhow::Result<()> {
    match format {
        Format::Text => print!("{}", nd_report::fix_text(report, revive)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&nd_report::fix_json(report, revive))?
        ),
        Format::Markdown => print!("{}", nd_report::fix_markdown(report, revive)),
    }
    Ok(())
}

/// The command that collects what `args` submitted: the same candidates and seeds.
fn collect_command(args: &FixArgs) -> String {
    let mut command = format!("neuron-doctor fix {} --collect", args.run.display());
    if args.flags.candidates != 3 {
        command.push_str(&format!(" --candidates {}", args.flags.candidates));
    }
    if args.flags.seeds != 3 {
        command.push_str(&format!(" --seeds {}", args.flags.seeds));
    }
    for t in &args.flags.try_ {
        command.push_str(&format!(" --try '{t}'"));
    }
    if let Some(backend) = args.backend {
        command.push_str(&format!(" --backend {backend}"));
    }
    command
}

/// What `--no-wait` submitted, and how to judge it later.
fn print_submitted(
    report: &FixReport,
    submitted: &nd_remedy::Submitted,
    collect: &str,
    format: Format,
) -> anyhow::Result<ExitCode> {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&nd_report::fix_json(report, None))?
        ),
        Format::Text | Format::Markdown => println!(
            "submitted {} trainings as Slurm job array {} (job files and logs in {}/jobs/);\nwhen they are done: {collect}",
            submitted.tasks,
            submitted.job_id,
            report.dir.as_deref().unwrap_or_default(),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// The exit code of a fix: 0 cured or nothing to fix, 1 otherwise.
pub fn exit_code(report: &FixReport) -> ExitCode {
    if report.nothing_to_fix || report.cured() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Runs `fix`.
pub fn run(args: FixArgs) -> anyhow::Result<ExitCode> {
    let report_path = args
        .report
        .as_deref()
        .map(crate::cmd::diagnose::check_report_path)
        .transpose()?;
    let extra = args.flags.check()?;
    if args.revive_epochs == Some(0) {
        anyhow::bail!("--revive-epochs 0: revived units need at least 1 epoch of training");
    }
    let mut run = nd_train::Run::open(&args.run)?;
    if args.strategy == Strategy::Revive && (args.no_wait || args.collect) {
        anyhow::bail!(
            "--no-wait and --collect are for --strategy retrain: revive trains in this process"
        );
    }
    if args.strategy == Strategy::Retrain && !args.collect {
        check_fix_dir(&nd_remedy::fix_dir(&args.run), args.force)?;
    }
    // Verified on another backend than the run was trained on: the original is re-trained
    // there too, so that no comparison mixes backends.
    let moved = args
        .backend
        .is_some_and(|backend| backend != run.spec.train.backend);
    if let Some(backend) = args.backend {
        // The candidates are re-trained, and their config.toml written, with this backend.
        let mut spec = run.spec.spec().clone();
        spec.train.backend = backend;
        run.spec = spec.check()?;
    }
    for candidate in &extra {
        candidate
            .apply(&run.spec)
            .map_err(|e| anyhow::anyhow!("--try {}: {e}", candidate.label))?;
    }
    let device = nd_train::device(run.spec.train.backend)?;
    let data = crate::settings::load_data(
        &run.spec,
        &args.run.join(nd_train::CONFIG_FILE).display().to_string(),
    )?;
    // The run is already open and its data loaded: diagnose the networks directly rather than
    // through `diagnose_run`, which would read the run and load the data a second time.
    // An imported run has no initial weights; its weights are where its fix starts.
    let initial = if run.is_imported() {
        None
    } else {
        Some(run.network(nd_train::Stage::Initial, &data, &device)?)
    };
    let trained = run.network(nd_train::Stage::Final, &data, &device)?;
    // One set of options for the original and everything re-diagnosed against it.
    let diagnose_options = DiagnoseOptions::default();
    let diagnosis = nd_remedy::diagnose_networks(
        &args.run.display().to_string(),
        &run.spec,
        &data,
        initial.as_ref(),
        &trained,
        &nd_remedy::history_of(&run),
        &diagnose_options,
        &device,
    );
    let original = Original {
        dir: &args.run,
        spec: &run.spec,
        data: &data,
        diagnosis: &diagnosis,
        train_seconds: run.summary.seconds,
        start: run.is_imported().then_some(&trained),
    };
    // What --no-wait submitted, only Slurm can collect.
    let mut executor_flags = args.flags.executor.clone();
    if args.collect && executor_flags.executor.is_none() {
        executor_flags.executor = Some(nd_spec::ExecutorKind::Slurm);
    }
    let executor = executor_flags.executor(&run.spec.executor, run.spec.train.backend)?;
    let mut progress = FixProgress::new(args.quiet);
    match args.strategy {
        Strategy::Retrain => {
            let options = FixOptions {
                candidates: args.flags.candidates,
                extra,
                seeds: args.flags.seeds,
                diagnose: diagnose_options.clone(),
                force: args.force,
                retrain_original: moved,
                executor,
                budget: args.flags.budget,
                launch: if args.no_wait {
                    Launch::Submit
                } else if args.collect {
                    Launch::Collect {
                        retry_failed: args.retry_failed,
                    }
                } else {
                    Launch::Wait
                },
            };
            let report = nd_remedy::fix(&original, &options, &device, &mut progress)?;
            if let Some(submitted) = &report.submitted {
                return print_submitted(&report, submitted, &collect_command(&args), args.format);
            }
            print_report(&report, None, args.format)?;
            write_html(report_path.as_deref(), &run, &diagnosis, &report)?;
            Ok(exit_code(&report))
        }
        Strategy::Revive => {
            let epochs = args
                .revive_epochs
                .unwrap_or((run.spec.train.epochs / 4).max(1));
            let nd_remedy::Revived { report, info, .. } = nd_remedy::revive(
                &original,
                initial.as_ref(),
                &trained,
                epochs,
                &diagnose_options,
                &device,
                &mut progress,
            )?;
            print_report(&report, Some(&info), args.format)?;
            write_html(report_path.as_deref(), &run, &diagnosis, &report)?;
            Ok(if report.cured() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// Writes the `--report` HTML file, when one was asked for, and says where on stderr.
fn write_html(
    path: Option<&std::path::Path>,
    run: &nd_train::Run,
    diagnosis: &nd_remedy::Diagnosis,
    report: &FixReport,
) -> anyhow::Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    let html = nd_report::html_report(&nd_report::HtmlInput {
        diagnosis,
        metrics: &run.metrics,
        health: &run.health,
        fix: Some(report),
    });
    crate::cmd::diagnose::write_report(path, &html)?;
    eprintln!("report: {}", path.display());
    Ok(())
}
