//! `cargo xtask experiments [NAME]`: the classic results the remedies cite, reproduced here
//! with the release binary. Each experiment is a spec in `experiments/` and the commands
//! below; what they print is what the README's table of claims reports.

use std::process::Command;

use crate::step::{Failure, Runner};

/// One experiment: its name and the commands it runs (`neuron-doctor` is the release binary,
/// `cargo` the workspace's cargo).
struct Experiment {
    name: &'static str,
    claim: &'static str,
    commands: &'static [&'static [&'static str]],
}

const OUT: &str = "target/experiments";

const EXPERIMENTS: &[Experiment] = &[
    Experiment {
        name: "krizhevsky",
        claim: "Krizhevsky et al. 2012: ReLU reaches a given error about six times faster than tanh",
        commands: &[&[
            "neuron-doctor", "compare", "experiments/krizhevsky-relu-vs-tanh.toml",
            "--activation", "relu,tanh", "--init", "auto", "--seeds", "3", "--target", "0.8",
            "--format", "markdown", "--out", "target/experiments/krizhevsky", "--force", "-q",
        ]],
    },
    Experiment {
        name: "glorot",
        claim: "Glorot & Bengio 2010: a deep sigmoid MLP saturates with the standard init; Xavier and tanh train",
        commands: &[&[
            "neuron-doctor", "compare", "experiments/glorot-sigmoid.toml",
            "--activation", "sigmoid,tanh", "--init", "uniform,xavier_uniform", "--seeds", "3",
            "--target", "0.9", "--format", "markdown", "--out", "target/experiments/glorot",
            "--force", "-q",
        ]],
    },
    Experiment {
        name: "he",
        claim: "He et al. 2015: a 30-layer ReLU net stalls with Xavier and trains with He",
        commands: &[
            &[
                "neuron-doctor", "compare", "experiments/he-30-layers.toml", "--activation",
                "relu", "--init", "lecun_normal,kaiming_normal", "--seeds", "3", "--target",
                "0.9", "--format", "markdown", "--out", "target/experiments/he", "--force", "-q",
            ],
            &[
                "neuron-doctor", "train", "experiments/he-30-layers.toml", "--out",
                "target/experiments/he30-run", "--force", "-q",
            ],
            &["neuron-doctor", "diagnose", "target/experiments/he30-run", "--format", "markdown"],
            &[
                "neuron-doctor", "fix", "target/experiments/he30-run", "--format", "markdown",
                "--force", "-q",
            ],
        ],
    },
    Experiment {
        name: "lu",
        claim: "Lu et al. 2019: deep, narrow ReLU nets are born dead more often with depth, less with width",
        commands: &[&[
            "cargo", "run", "--release", "-q", "-p", "nd-remedy", "--example", "born_dead", "--",
            "200",
        ]],
    },
];

/// The names, for help and errors.
pub fn names() -> Vec<&'static str> {
    EXPERIMENTS.iter().map(|e| e.name).collect()
}

/// Runs one experiment (or all), printing each command's output.
pub fn run(only: Option<&str>) -> Result<(), Failure> {
    let chosen: Vec<&Experiment> = EXPERIMENTS
        .iter()
        .filter(|e| only.is_none_or(|n| n == e.name))
        .collect();
    if chosen.is_empty() {
        return Err(Failure {
            message: format!(
                "no experiment named {:?}; the experiments are {}",
                only.unwrap_or(""),
                names().join(", ")
            ),
            hint: None,
            exit_code: 2,
        });
    }
    let mut runner = Runner::new();
    let root = runner.root().to_path_buf();
    std::fs::create_dir_all(root.join(OUT)).map_err(|e| Failure {
        message: format!("cannot create {OUT}: {e}"),
        hint: None,
        exit_code: 2,
    })?;
    runner.run_custom("build", "cargo build --release -p neuron-doctor", "", |r| {
        let status = r
            .cargo_command()
            .args(["build", "--release", "-p", "neuron-doctor"])
            .status()
            .map_err(|e| e.to_string())?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("cargo build exited with {status}"))
    })?;
    let binary = root.join("target/release/neuron-doctor");
    for experiment in chosen {
        runner.run_custom(experiment.name, experiment.claim, "", |r| {
            for command in experiment.commands {
                let (program, args) = command.split_first().expect("a command");
                println!("$ {}", command.join(" "));
                let mut cmd = if *program == "cargo" {
                    r.cargo_command()
                } else {
                    Command::new(&binary)
                };
                let status = cmd
                    .args(args)
                    .current_dir(&root)
                    .status()
                    .map_err(|e| e.to_string())?;
                // `diagnose` and `fix` exit 1 when they find something: that is their answer.
                if status.code().is_none_or(|c| c > 1) {
                    return Err(format!("{} exited with {status}", command.join(" ")));
                }
                println!();
            }
            Ok(())
        })?;
    }
    runner.summary(&[]);
    Ok(())
}
