//! The `neuron-doctor` binary: parses arguments, calls the library crates, prints, and owns
//! the exit codes (0 healthy / cured, 1 findings or no cure, 2 the tool could not do its job).

mod cmd;
mod progress;
mod settings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Finds out why a neural network stopped learning, and proves the cure.
///
/// Exit codes: 0 healthy (or cured), 1 findings at or above --fail-on (or no cure found),
/// 2 the doctor could not do its job (bad input, I/O).
#[derive(Debug, Parser)]
#[command(name = "neuron-doctor", version, about, long_about = None)]
struct Cli {
    /// More logging on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model spec and save the run (config, initial and final weights, metrics).
    Train(cmd::train::TrainArgs),
    /// Probe a run's every layer and name what is wrong, with evidence and remedies.
    Diagnose(cmd::diagnose::DiagnoseArgs),
    /// Re-train the diagnosis' candidate remedies and show, side by side, which one cures it.
    Fix(cmd::fix::FixArgs),
    /// Train, diagnose, fix and verify in one go (no CONFIG: the embedded broken digits demo).
    Checkup(cmd::checkup::CheckupArgs),
    /// Learning-rate range test (Smith 2017): raise the rate step by step and suggest one.
    LrFind(cmd::lr_find::LrFindArgs),
    /// Read a model trained elsewhere (ONNX, SafeTensors, PyTorch state_dict) with its data into
    /// a run that diagnose and fix understand.
    Import(cmd::import::ImportArgs),
    /// Train a grid of activations and initializations under the same data, budget and seeds,
    /// diagnose each, and recommend one.
    Compare(cmd::compare::CompareArgs),
}

fn main() -> ExitCode {
    restore_sigpipe();
    ensure_runtime_dir();
    // Ctrl-C or a kill: remove what was being written, so no half-written run is left that
    // looks complete, and say so. Finished runs are never touched.
    let _ = ctrlc::set_handler(|| {
        // Slurm tasks still queued or running would go on writing into what is removed next.
        nd_executor::stop_children();
        let cancelled = nd_executor::cancel_submitted();
        if !cancelled.is_empty() {
            eprintln!("interrupted: cancelled Slurm job {}", cancelled.join(", "));
        }
        let removed = nd_train::remove_partial_runs();
        if removed.is_empty() {
            eprintln!("interrupted: nothing was being written");
        } else {
            let names: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
            eprintln!(
                "interrupted: removed the unfinished {} (existing runs are untouched; run the command again to redo it)",
                names.join(", ")
            );
        }
        std::process::exit(130);
    });
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Train(args) => cmd::train::run(args),
        Command::Diagnose(args) => cmd::diagnose::run(args),
        Command::Fix(args) => cmd::fix::run(args),
        Command::Checkup(args) => cmd::checkup::run(args),
        Command::LrFind(args) => cmd::lr_find::run(args),
        Command::Import(args) => cmd::import::run(args),
        Command::Compare(args) => cmd::compare::run(args),
    }
}

/// The error and its causes on one line, without repeating a cause the message already holds.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line.replace('\n', " ")
}

/// Mesa's drivers (the software Vulkan one included) print "XDG_RUNTIME_DIR is invalid or not
/// set" to stderr, several times, in a headless session that has no runtime directory. Give
/// them a private one (mode 0700, as the XDG spec asks) when the session has none; an existing
/// setting is left alone.
fn ensure_runtime_dir() {
    #[cfg(all(unix, feature = "wgpu"))]
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let dir = std::env::temp_dir().join(format!("neuron-doctor-runtime-{uid}"));
        let made = std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(e),
            });
        let private = std::fs::symlink_metadata(&dir).is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0
        });
        if made.is_ok() && private {
            // Before any thread starts: nothing else reads the environment yet.
            std::env::set_var("XDG_RUNTIME_DIR", dir);
        }
    }
}

/// Rust ignores SIGPIPE, so `neuron-doctor ... | head` would panic on the closed pipe; take the
/// default action instead (end quietly), as command-line tools do.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging(verbose: u8) {
    // wgpu logs every graphics API it fails to open while looking for an adapter (no Vulkan
    // driver, no EGL display) as an ERROR, even when another API then works; when none does,
    // the backend's own one-line error says so. Shown from -vv on.
    const GPU_PROBING: &str = "wgpu_hal=off,wgpu_core=off,naga=off";
    let default = match verbose {
        0 => format!("warn,{GPU_PROBING}"),
        1 => format!("info,{GPU_PROBING}"),
        _ => "debug".to_string(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}
