//! Running cargo commands as named, timed steps, and the summary of their times.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Why a task stopped: what to print and the exit status to leave with.
#[derive(Debug)]
pub struct Failure {
    /// One line, lowercase, naming the step and the command.
    pub message: String,
    /// What to do about it, when there is something to say.
    pub hint: Option<String>,
    /// 1 when a check failed, 2 when the task could not run at all.
    pub exit_code: u8,
}

/// One cargo invocation of a task.
pub struct Step {
    /// Short name for the header and the summary (`fmt`, `clippy`, ...).
    pub name: &'static str,
    /// Arguments to cargo.
    pub args: &'static [&'static str],
    /// Extra environment variables.
    pub env: &'static [(&'static str, &'static str)],
    /// Printed when the step fails.
    pub hint: &'static str,
}

impl Step {
    /// The command as a person would type it, for headers and messages.
    pub fn display(&self) -> String {
        let env = self
            .env
            .iter()
            .map(|(key, value)| format!("{key}={value:?} "));
        let args = self.args.iter().map(|arg| {
            if arg.contains([' ', '*']) {
                format!(" '{arg}'")
            } else {
                format!(" {arg}")
            }
        });
        env.chain(std::iter::once("cargo".to_string()))
            .chain(args)
            .collect()
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    /// Not run because something it needs is missing (said when it was skipped).
    Skipped,
}

/// Runs steps in the workspace root with the cargo that runs the xtask, and remembers how long
/// each took.
pub struct Runner {
    cargo: OsString,
    root: PathBuf,
    task_start: Instant,
    done: Vec<(&'static str, Duration, Outcome)>,
}

impl Runner {
    /// A runner for the workspace this xtask belongs to.
    pub fn new() -> Runner {
        Runner {
            // cargo sets $CARGO for the programs it runs: the same toolchain runs every step,
            // even under `cargo +nightly xtask`.
            cargo: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            root: workspace_root(),
            task_start: Instant::now(),
            done: Vec::new(),
        }
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A cargo command in the workspace root.
    pub fn cargo_command(&self) -> Command {
        let mut command = Command::new(&self.cargo);
        command.current_dir(&self.root);
        command
    }

    /// Fails with a hint when `cargo <subcommand> --version` does not run, so that a missing
    /// tool is reported before minutes of other steps rather than after them.
    pub fn require(&self, subcommand: &str, install_hint: &str) -> Result<(), Failure> {
        let status = self
            .cargo_command()
            .args([subcommand, "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match status {
            Ok(status) if status.success() => Ok(()),
            _ => Err(Failure {
                message: format!("`cargo {subcommand}` is not available"),
                hint: Some(install_hint.to_string()),
                exit_code: 2,
            }),
        }
    }

    /// Runs `step` with its output going straight to the terminal; prints a header before and
    /// the wall time after.
    pub fn run(&mut self, step: &Step) -> Result<(), Failure> {
        self.run_with(step, &[])
    }

    /// Like [`Runner::run`], with `extra` arguments appended to the step's.
    pub fn run_with(&mut self, step: &Step, extra: &[String]) -> Result<(), Failure> {
        let shown = step.display()
            + &extra
                .iter()
                .map(|arg| format!(" {arg}"))
                .collect::<String>();
        println!("==> {}: {shown}", step.name);
        let start = Instant::now();
        let status = self
            .cargo_command()
            .args(step.args)
            .args(extra)
            .envs(step.env.iter().copied())
            .status();
        let elapsed = start.elapsed();
        let problem = match status {
            Ok(status) if status.success() => None,
            Ok(status) => Some(format!("`{shown}` ended with {status}")),
            Err(error) => Some(format!("could not start `{shown}`: {error}")),
        };
        let outcome = if problem.is_some() {
            Outcome::Failed
        } else {
            Outcome::Passed
        };
        self.done.push((step.name, elapsed, outcome));
        println!(
            "    {}: {} in {}\n",
            step.name,
            outcome.word(),
            format_duration(elapsed)
        );
        match problem {
            None => Ok(()),
            Some(problem) => Err(Failure {
                message: format!("step {} failed: {problem}", step.name),
                hint: (!step.hint.is_empty()).then(|| step.hint.to_string()),
                exit_code: 1,
            }),
        }
    }

    /// Runs a step that is more than one cargo command: `body` does the work and returns what
    /// went wrong, if anything; the header, the timing and the summary entry are as for
    /// [`Runner::run`].
    pub fn run_custom(
        &mut self,
        name: &'static str,
        shown: &str,
        hint: &str,
        body: impl FnOnce(&Runner) -> Result<(), String>,
    ) -> Result<(), Failure> {
        println!("==> {name}: {shown}");
        let start = Instant::now();
        let result = body(self);
        let elapsed = start.elapsed();
        let outcome = if result.is_ok() {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        self.done.push((name, elapsed, outcome));
        println!(
            "    {name}: {} in {}\n",
            outcome.word(),
            format_duration(elapsed)
        );
        result.map_err(|problem| Failure {
            message: format!("step {name} failed: {problem}"),
            hint: (!hint.is_empty()).then(|| hint.to_string()),
            exit_code: 1,
        })
    }

    /// Records a step as skipped, saying why.
    pub fn skip(&mut self, name: &'static str, reason: &str) {
        println!("==> {name}: skipped: {reason}\n");
        self.done.push((name, Duration::ZERO, Outcome::Skipped));
    }

    /// Steps that passed.
    pub fn passed(&self) -> usize {
        self.done
            .iter()
            .filter(|(_, _, outcome)| *outcome == Outcome::Passed)
            .count()
    }

    /// Steps that were skipped.
    pub fn skipped(&self) -> usize {
        self.done
            .iter()
            .filter(|(_, _, outcome)| *outcome == Outcome::Skipped)
            .count()
    }

    /// Prints each step's time and outcome; `not_run` names the planned steps that never ran.
    pub fn summary(&self, not_run: &[&str]) {
        println!("==> summary");
        let width = self
            .done
            .iter()
            .map(|(name, _, _)| name.len())
            .chain(not_run.iter().map(|name| name.len()))
            .chain(std::iter::once("total".len()))
            .max()
            .unwrap_or(0);
        for (name, elapsed, outcome) in &self.done {
            let time = match outcome {
                Outcome::Skipped => "-".to_string(),
                _ => format_duration(*elapsed),
            };
            println!("    {name:<width$}  {time:>8}  {}", outcome.word());
        }
        for name in not_run {
            println!("    {name:<width$}  {:>8}  not run", "-");
        }
        println!(
            "    {:<width$}  {:>8}",
            "total",
            format_duration(self.task_start.elapsed())
        );
    }
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Passed => "ok",
            Outcome::Failed => "FAILED",
            Outcome::Skipped => "skipped",
        }
    }
}

/// The workspace root: the xtask crate sits directly below it.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// `0.4s`, `42.0s`, `3m05s`: seconds with a tenth below a minute, whole seconds above.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        let whole = duration.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_stopwatch() {
        assert_eq!(format_duration(Duration::from_millis(420)), "0.4s");
        assert_eq!(format_duration(Duration::from_millis(59_940)), "59.9s");
        assert_eq!(format_duration(Duration::from_secs(60)), "1m00s");
        assert_eq!(format_duration(Duration::from_secs(185)), "3m05s");
    }

    #[test]
    fn steps_display_as_typed() {
        let step = Step {
            name: "doc",
            args: &["doc", "--workspace", "--no-deps"],
            env: &[("RUSTDOCFLAGS", "-D warnings")],
            hint: "",
        };
        assert_eq!(
            step.display(),
            "RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps"
        );
        let step = Step {
            name: "bench",
            args: &["bench", "--bench", "*"],
            env: &[],
            hint: "",
        };
        assert_eq!(step.display(), "cargo bench --bench '*'");
    }

    #[test]
    fn the_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }
}
