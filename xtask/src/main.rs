//! neuron-doctor's project tasks, run as `cargo xtask <task>` (matklad's xtask convention).
//!
//! - `cargo xtask ci` runs every check CI runs, cheapest first, and stops at the first failure.
//! - `cargo xtask bench` runs the criterion benchmarks and sums up their medians.
//! - `cargo xtask slurm` runs `fix` through a one-node Slurm cluster it starts and stops.
//! - `cargo xtask report` renders a real HTML report in headless Chromium and checks it
//!   (`--screenshot`: and saves `docs/report.png`).
//!
//! The crate uses std only, so that `cargo xtask` builds in a second even on a cold cache.
//! It shares the workspace's target directory (burn gives its xtask a separate one): with
//! no dependencies there is nothing to churn, and a second target directory would cost disk
//! and, for the steps it runs, a second build of burn on a 2-core machine.

mod bench;
mod ci;
mod experiments;
mod report;
mod slurm;
mod step;
mod system;

use std::process::ExitCode;

const HELP: &str = "\
cargo xtask: neuron-doctor's project tasks

Usage: cargo xtask <TASK> [ARGS]

Tasks:
  ci             run every CI check, cheapest first, stopping at the first failure:
                   packages apt-get install mesa-vulkan-drivers, chromium, slurm-wlm and munge
                            where missing
                            (as root or with password-less sudo; skipped otherwise)
                   fmt      cargo fmt --all --check
                   clippy   cargo clippy --workspace --all-targets --features wgpu -- -D warnings
                   doc      RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps --features wgpu
                   test     cargo nextest run --workspace --features wgpu
                   doctest  cargo test --workspace --doc --features wgpu
                   report   cargo xtask report (skipped when chromium is not installed)
                   slurm    start a one-node Slurm cluster (config in target/xtask-slurm/),
                            fix the broken demo through it and with --executor local, check
                            that the verdicts and metrics agree, stop the daemons (skipped
                            without Slurm or root)
  bench [-- ARGS]
                 run the criterion benchmarks on flex, ndarray and wgpu
                 (cargo bench -p nd-train --features wgpu --bench '*'),
                 print their medians and where criterion keeps the results; ARGS go to criterion,
                 e.g. `cargo xtask bench -- probe/` to run only the probe benchmarks
  report [--screenshot]
                 build neuron-doctor, train and fix the broken demo spec with --report, open
                 the report in headless Chromium (`chromium`, or $CHROMIUM) and check that it
                 loads and that its SVG charts name the layers; --screenshot also saves
                 docs/report.png (1280 pixels wide) for the README
  experiments [NAME]
                 reproduce the classic results the remedies cite (krizhevsky, glorot, he,
                 lu; all when no NAME) with the release binary and the specs in experiments/,
                 printing the tables the README's claims come from (minutes each on 2 cores)
  slurm          the slurm step of ci alone: a one-node cluster started for the check and
                 stopped after it (needs Slurm installed and root)
  help           print this help (also -h, --help)

Each step prints a `==> step` header and its wall time; a summary of the times ends the run.
Exit status: 0 all steps passed, 1 a step failed, 2 bad usage or a tool is missing.
";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Task {
    Ci,
    Bench { criterion_args: Vec<String> },
    Report { screenshot: bool },
    Experiments { name: Option<String> },
    Slurm,
    Help,
}

/// Turns the arguments after `cargo xtask` into a task, or says what is wrong with them.
fn parse(args: &[String]) -> Result<Task, String> {
    let Some((first, rest)) = args.split_first() else {
        return Ok(Task::Help);
    };
    match first.as_str() {
        "help" | "-h" | "--help" => Ok(Task::Help),
        "ci" => match rest.first() {
            None => Ok(Task::Ci),
            Some(flag) if flag == "-h" || flag == "--help" => Ok(Task::Help),
            Some(extra) => Err(format!("`ci` takes no arguments, got {extra:?}")),
        },
        "bench" => match rest.split_first() {
            None => Ok(Task::Bench {
                criterion_args: Vec::new(),
            }),
            Some((flag, _)) if flag == "-h" || flag == "--help" => Ok(Task::Help),
            Some((dashes, criterion_args)) if dashes == "--" => Ok(Task::Bench {
                criterion_args: criterion_args.to_vec(),
            }),
            Some((extra, _)) => Err(format!(
                "`bench` passes arguments to criterion after `--`, got {extra:?} (try `cargo xtask bench -- {extra}`)"
            )),
        },
        "report" => match rest {
            [] => Ok(Task::Report { screenshot: false }),
            [flag] if flag == "-h" || flag == "--help" => Ok(Task::Help),
            [flag] if flag == "--screenshot" => Ok(Task::Report { screenshot: true }),
            [extra, ..] => Err(format!(
                "`report` takes only --screenshot, got {extra:?}"
            )),
        },
        "experiments" => match rest {
            [] => Ok(Task::Experiments { name: None }),
            [flag] if flag == "-h" || flag == "--help" => Ok(Task::Help),
            [name] if experiments::names().contains(&name.as_str()) => Ok(Task::Experiments {
                name: Some(name.clone()),
            }),
            [name] => Err(format!(
                "no experiment named {name:?}; the experiments are {}",
                experiments::names().join(", ")
            )),
            [_, extra, ..] => Err(format!("`experiments` takes one NAME, got also {extra:?}")),
        },
        "slurm" => match rest.first() {
            None => Ok(Task::Slurm),
            Some(flag) if flag == "-h" || flag == "--help" => Ok(Task::Help),
            Some(extra) => Err(format!("`slurm` takes no arguments, got {extra:?}")),
        },
        other => Err(format!("unknown task {other:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = match parse(&args) {
        Ok(task) => task,
        Err(problem) => {
            eprintln!("error: {problem}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    let result = match task {
        Task::Help => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Task::Ci => ci::run(),
        Task::Bench { criterion_args } => bench::run(&criterion_args),
        Task::Report { screenshot } => report::run(screenshot),
        Task::Experiments { name } => experiments::run(name.as_deref()),
        Task::Slurm => slurm::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            if let Some(hint) = &failure.hint {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(failure.exit_code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn no_task_and_help_flags_print_help() {
        for words in [
            &[][..],
            &["help"],
            &["-h"],
            &["--help"],
            &["ci", "--help"],
            &["bench", "-h"],
        ] {
            assert_eq!(parse(&args(words)), Ok(Task::Help), "{words:?}");
        }
    }

    #[test]
    fn ci_takes_no_arguments() {
        assert_eq!(parse(&args(&["ci"])), Ok(Task::Ci));
        let error = parse(&args(&["ci", "--fast"])).unwrap_err();
        assert!(error.contains("--fast"), "{error}");
    }

    #[test]
    fn bench_forwards_what_follows_the_dashes_to_criterion() {
        assert_eq!(
            parse(&args(&["bench"])),
            Ok(Task::Bench {
                criterion_args: vec![]
            })
        );
        assert_eq!(
            parse(&args(&["bench", "--", "probe/", "--sample-size", "20"])),
            Ok(Task::Bench {
                criterion_args: args(&["probe/", "--sample-size", "20"])
            })
        );
        let error = parse(&args(&["bench", "probe/"])).unwrap_err();
        assert!(error.contains("cargo xtask bench -- probe/"), "{error}");
    }

    #[test]
    fn report_takes_only_the_screenshot_flag() {
        assert_eq!(
            parse(&args(&["report"])),
            Ok(Task::Report { screenshot: false })
        );
        assert_eq!(
            parse(&args(&["report", "--screenshot"])),
            Ok(Task::Report { screenshot: true })
        );
        assert_eq!(parse(&args(&["report", "--help"])), Ok(Task::Help));
        let error = parse(&args(&["report", "--open"])).unwrap_err();
        assert!(error.contains("--open"), "{error}");
    }

    #[test]
    fn unknown_tasks_are_named() {
        let error = parse(&args(&["lint"])).unwrap_err();
        assert!(error.contains("\"lint\""), "{error}");
    }
}
