//! The `[executor]` section: where `fix`, `checkup` and `compare` train their candidates.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::SpecError;

named_enum!(
    /// Where candidate trainings run.
    ExecutorKind {
        /// Processes of this binary on this machine, up to `jobs` at once.
        Local = "local",
        /// A Slurm job array: one task per candidate and seed.
        Slurm = "slurm",
    } default Local
);

/// The `[executor]` section. Every key is optional; command-line flags override it.
///
/// ```
/// let spec: nd_spec::Spec = toml::from_str(r#"
///     data = { dataset = "iris" }
///     model = { hidden = [8] }
///     [executor]
///     kind = "slurm"
///     partition = "gpu"
///     time = "00:30:00"
///     gpus_per_task = 1
/// "#).unwrap();
/// assert_eq!(spec.executor.kind, nd_spec::ExecutorKind::Slurm);
/// assert_eq!(spec.executor.partition.as_deref(), Some("gpu"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSpec {
    /// `local` (default) or `slurm`.
    #[serde(default)]
    pub kind: ExecutorKind,
    /// local: trainings at once (default: the number of cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<usize>,
    /// slurm: the partition (`--partition`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// slurm: the account to charge (`--account`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// slurm: each task's time limit, in Slurm's format (`--time`, e.g. `00:30:00`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// slurm: CPUs per task (`--cpus-per-task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_per_task: Option<usize>,
    /// slurm: GPUs per task (`--gpus-per-task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus_per_task: Option<usize>,
    /// slurm: further `sbatch` arguments, each one word (e.g. `["--qos=short", "--mem=8G"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sbatch_args: Vec<String>,
}

impl ExecutorSpec {
    /// True when nothing was set: the section is left out of written specs.
    pub fn is_default(&self) -> bool {
        self == &ExecutorSpec::default()
    }

    /// Checks the values that can be checked without a cluster.
    pub fn check(&self) -> Result<(), SpecError> {
        let bad = |key: &str, value: &str, allowed: &str| {
            SpecError::invalid(&format!("executor.{key}"), value.to_string(), allowed)
        };
        if self.jobs == Some(0) {
            return Err(bad("jobs", "0", "1 or more"));
        }
        if self.cpus_per_task == Some(0) {
            return Err(bad("cpus_per_task", "0", "1 or more"));
        }
        for (key, value) in [
            ("partition", &self.partition),
            ("account", &self.account),
            ("time", &self.time),
        ] {
            if let Some(v) = value {
                if v.trim().is_empty() || v.chars().any(char::is_whitespace) {
                    return Err(bad(key, v, "one word, no spaces"));
                }
            }
        }
        // The executor sets these itself: its logs, exit codes and array depend on them.
        const OWN: &[&str] = &[
            "--output",
            "--error",
            "--array",
            "--chdir",
            "--parsable",
            "--wait",
            "--job-name",
            "-o",
            "-e",
            "-a",
            "-D",
            "-W",
            "-J",
        ];
        if let Some(arg) = self.sbatch_args.iter().find(|a| {
            OWN.iter().any(|own| {
                a.as_str() == *own
                    || a.starts_with(&format!("{own}="))
                    || (own.len() == 2 && a.starts_with(own) && !a.starts_with("--"))
            })
        }) {
            return Err(bad(
                "sbatch_args",
                arg,
                "options other than --output, --error, --array, --chdir, --parsable, --wait and --job-name, which the executor sets itself",
            ));
        }
        if let Some(arg) = self.sbatch_args.iter().find(|a| !a.starts_with('-')) {
            return Err(bad(
                "sbatch_args",
                arg,
                "sbatch options, one per entry, each starting with `-` (e.g. \"--qos=short\")",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbatch_args_that_the_executor_sets_itself_are_refused() {
        let with = |args: &[&str]| ExecutorSpec {
            sbatch_args: args.iter().map(|a| a.to_string()).collect(),
            ..ExecutorSpec::default()
        };
        assert!(with(&["--qos=short", "--mem=8G", "--exclusive", "-Alab"])
            .check()
            .is_ok());
        for own in [
            "--output=x.log",
            "-o",
            "-ox.log",
            "--array=0-3",
            "--wait",
            "-D",
            "--chdir=/",
        ] {
            let err = with(&[own]).check().unwrap_err().to_string();
            assert!(err.contains("executor.sbatch_args"), "{own}: {err}");
        }
        assert!(with(&["qos=short"]).check().is_err());
        assert!(ExecutorSpec {
            jobs: Some(0),
            ..ExecutorSpec::default()
        }
        .check()
        .is_err());
    }
}
