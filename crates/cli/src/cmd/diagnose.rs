//! `neuron-doctor diagnose`: probe a run and print the findings.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use nd_probe::{Severity, CHECKS};
use nd_remedy::{DiagnoseOptions, SplitName};
use nd_report::Format;

/// Arguments of `diagnose`.
#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// The run directory written by `train` or `import`, or a model file (.onnx, .safetensors,
    /// .pt, .pth) with --data.
    #[arg(required_unless_present = "list_checks")]
    pub run: Option<PathBuf>,
    #[command(flatten)]
    pub import: crate::cmd::import::ImportFlags,
    /// Output: text (tables), json, or markdown.
    #[arg(long, default_value = "text", value_name = "FORMAT")]
    pub format: Format,
    /// Exit 1 when a finding at or above this severity exists (advice | warning | error).
    #[arg(long, default_value = "error", value_name = "SEVERITY")]
    pub fail_on: Severity,
    /// The split to probe (train | test).
    #[arg(long, default_value = "train", value_parser = parse_split)]
    pub split: SplitName,
    /// Probe at most this many rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Rows in the backward pass for gradient statistics.
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub grad_batch: usize,
    /// Probe on this backend instead of the run's (ndarray | flex | wgpu).
    #[arg(long, value_name = "NAME")]
    pub backend: Option<nd_spec::Backend>,
    /// Override a `[doctor]` threshold, e.g. `--threshold dead_fraction_error=0.3` (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub threshold: Vec<String>,
    /// Also write a self-contained HTML report (charts of every layer, the training curves,
    /// the findings) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// List every check with its code and a one-line description, then exit (with
    /// `--format markdown` or `json`: each check's full documentation).
    #[arg(long)]
    pub list_checks: bool,
}

fn parse_split(s: &str) -> Result<SplitName, String> {
    match s {
        "train" => Ok(SplitName::Train),
        "test" => Ok(SplitName::Test),
        _ => Err(format!("`{s}` is not one of train, test")),
    }
}

/// Prints every check: one line each, or (markdown) the full What / Why / Example / Remedies.
pub fn list_checks(format: Format) {
    if format == Format::Json {
        let checks: Vec<serde_json::Value> = CHECKS
            .iter()
            .map(|c| {
                serde_json::json!({
                    "code": c.code,
                    "summary": c.summary,
                    "what": c.what,
                    "why": c.why,
                    "example": c.example,
                    "remedies": c.remedies,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&checks).expect("checks serialize")
        );
        return;
    }
    if format == Format::Markdown {
        for c in CHECKS {
            println!("### `{}`\n\n{}.\n", c.code, c.summary);
            println!("- **What it does:** {}", c.what);
            println!("- **Why it hurts:** {}", c.why);
            println!("- **Example:** {}", c.example);
            println!("- **Remedies:** {}\n", c.remedies);
        }
        return;
    }
    let width = CHECKS.iter().map(|c| c.code.len()).max().unwrap_or(0);
    for c in CHECKS {
        println!("{:width$}  {}", c.code, c.summary);
    }
}

/// Runs `diagnose`.
pub fn run(args: DiagnoseArgs) -> anyhow::Result<ExitCode> {
    if args.list_checks {
        list_checks(args.format);
        return Ok(ExitCode::SUCCESS);
    }
    if args.limit == Some(0) {
        anyhow::bail!("--limit 0: probe at least 1 row");
    }
    if args.grad_batch == 0 {
        anyhow::bail!("--grad-batch 0: the gradient probe needs at least 1 row");
    }
    let report = args.report.as_deref().map(check_report_path).transpose()?;
    let dir = args.run.expect("clap requires RUN unless --list-checks");
    let probe = nd_probe::ProbeOptions {
        limit: args.limit,
        grad_batch: args.grad_batch,
    };
    let (diagnosis, metrics, health) = if nd_import::is_model_file(&dir) && !dir.is_dir() {
        // A model file: imported in memory, nothing written.
        let recipe = crate::cmd::import::RecipeFlags {
            backend: args.backend,
            ..Default::default()
        };
        let loaded = crate::cmd::import::load(&dir, &args.import, &recipe)?;
        let thresholds = crate::settings::thresholds(&loaded.spec, &args.threshold)?;
        let device = nd_train::device(loaded.spec.train.backend)?;
        let options = DiagnoseOptions {
            split: args.split,
            probe,
            thresholds: Some(thresholds),
        };
        if args.split == SplitName::Test && loaded.data.test.rows == 0 {
            anyhow::bail!(
                "--split test: {} has no held-out rows (no is_test column)",
                loaded
                    .spec
                    .data
                    .path
                    .as_deref()
                    .unwrap_or(Path::new("the data"))
                    .display()
            );
        }
        let diagnosis = nd_remedy::diagnose_networks(
            &dir.display().to_string(),
            &loaded.spec,
            &loaded.data,
            None,
            &loaded.network,
            std::slice::from_ref(&loaded.measured),
            &options,
            &device,
        );
        (diagnosis, Vec::new(), Vec::new())
    } else {
        if args.import.data.is_some() {
            anyhow::bail!(
                "--data {}: {} is a run directory, which knows its data; --data goes with a model file",
                args.import.data.as_deref().unwrap_or(Path::new("")).display(),
                dir.display()
            );
        }
        let run = nd_train::Run::open(&dir)?;
        let thresholds = crate::settings::thresholds(&run.spec, &args.threshold)?;
        let device = nd_train::device(args.backend.unwrap_or(run.spec.train.backend))?;
        let options = DiagnoseOptions {
            split: args.split,
            probe,
            thresholds: Some(thresholds),
        };
        let data = crate::settings::load_data(
            &run.spec,
            &dir.join(nd_train::CONFIG_FILE).display().to_string(),
        )?;
        let diagnosis = nd_remedy::diagnose_opened(&run, &data, &options, &device)?;
        (diagnosis, run.metrics, run.health)
    };
    match args.format {
        Format::Text => print!("{}", nd_report::diagnosis_text(&diagnosis)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&nd_report::diagnosis_json(&diagnosis))?
        ),
        Format::Markdown => print!("{}", nd_report::diagnosis_markdown(&diagnosis)),
    }
    if let Some(path) = &report {
        let html = nd_report::html_report(&nd_report::HtmlInput {
            diagnosis: &diagnosis,
            metrics: &metrics,
            health: &health,
            fix: None,
        });
        write_report(path, &html)?;
        eprintln!("report: {}", path.display());
    }
    let failing = diagnosis.at_least(args.fail_on).next().is_some();
    Ok(if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Checks a `--report` path before any work is done: it must name a file in an existing
/// directory, outside every run and fix directory, and an existing file there must be a report
/// neuron-doctor wrote (anything else would be lost when the report replaces it).
pub fn check_report_path(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_dir() {
        anyhow::bail!("--report {}: is a directory", path.display());
    }
    if path.file_name().is_none() {
        anyhow::bail!("--report {}: not a file name", path.display());
    }
    let dir = report_dir(path);
    if !dir.is_dir() {
        anyhow::bail!(
            "--report {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    if let Some(run) = nd_train::enclosing_run(dir) {
        anyhow::bail!(
            "--report {}: inside the run directory {}, whose files are the run's own; write the report beside it",
            path.display(),
            run.display()
        );
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => {
            let head =
                read_head(path).map_err(|e| anyhow::anyhow!("--report {}: {e}", path.display()))?;
            if !nd_report::is_report(&head) {
                anyhow::bail!(
                    "--report {}: the file exists and is not a neuron-doctor report; refusing to overwrite it",
                    path.display()
                );
            }
        }
        Ok(_) => anyhow::bail!(
            "--report {}: exists and is not a plain file; refusing to overwrite it",
            path.display()
        ),
        Err(_) => {}
    }
    Ok(path.to_path_buf())
}

/// The first 4 KiB of a file.
fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(4096)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// The directory a report goes to (`.` for a bare file name).
fn report_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Writes an HTML report atomically: into a hidden temporary file beside `path`, then renamed
/// over it, so a report that exists is complete.
pub fn write_report(path: &Path, html: &str) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("--report {}: not a file name", path.display()))?;
    let temporary = report_dir(path).join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::write(&temporary, html).and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        anyhow::bail!("--report {}: {error}", path.display());
    }
    Ok(())
}
