//! `compare`: which activation and initialization for this model and this data, measured. Every
//! setting of the grid is trained (as `fix` trains its candidates: the same data, budget and
//! paired seeds), diagnosed, and set side by side; one is recommended, with the reason.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use nd_data::Dataset;
use nd_executor::{Executor, Job, JobFailure};
use nd_probe::Severity;
use nd_spec::{Activation, CheckedSpec, Init, Task};
use nd_train::{EpochMetrics, PendingRun};
use serde::{Deserialize, Serialize};

use crate::diagnosis::{diagnose_networks, DiagnoseOptions};
use crate::fix::{judge, Candidate, FixObserver, LayerHealth, Outcome, SeedMetrics};
use crate::RemedyError;

/// Which initializations to try.
#[derive(Debug, Clone, PartialEq)]
pub enum Inits {
    /// Each activation with the initializer the field recommends for it (He for the ReLU
    /// family, Glorot for sigmoid and tanh, LeCun for SELU).
    Auto,
    /// Every activation with every one of these.
    Each(Vec<Init>),
}

/// How to compare.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The activations to try.
    pub activations: Vec<Activation>,
    /// The initializations.
    pub inits: Inits,
    /// Seeds per setting (the spec's and the next ones), paired across settings.
    pub seeds: usize,
    /// The metric to reach (accuracy at least, or MSE at most), for "epochs to target".
    pub target: Option<f64>,
    /// How to diagnose each setting.
    pub diagnose: DiagnoseOptions,
    /// Replace an existing compare directory.
    pub force: bool,
    /// Where the trainings run.
    pub executor: Executor,
}

/// One setting of the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    /// `relu + kaiming_normal`.
    pub label: String,
    /// The hidden activation.
    pub activation: Activation,
    /// The initializer.
    pub init: Init,
}

/// What one setting measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingResult {
    /// The setting.
    pub setting: Setting,
    /// The main seed's run directory.
    pub run: String,
    /// The final metric on every seed.
    pub metrics: SeedMetrics,
    /// Per seed: the first epoch at which the metric reached the target (`None`: never).
    pub epochs_to_target: Vec<Option<usize>>,
    /// Per seed: training seconds until then.
    pub seconds_to_target: Vec<Option<f64>>,
    /// Mean seconds per epoch (every seed).
    pub seconds_per_epoch: f64,
    /// The main seed's metric after every epoch.
    pub curve: Vec<f64>,
    /// The main seed's last hidden layer: its saturated fraction during every epoch (live
    /// health, sampled batches), where Glorot and Bengio saw sigmoid saturate first.
    pub top_saturated: Vec<f64>,
    /// Dead fraction over all units that can die, at the end (main seed).
    pub dead_fraction: f64,
    /// Saturated fraction over all sigmoid/tanh units, at the end (main seed).
    pub saturated_fraction: f64,
    /// Per layer at the end (main seed).
    pub layers: Vec<LayerHealth>,
    /// First-to-last gradient ratio at the end (main seed).
    pub gradient_ratio: Option<f64>,
    /// The doctor's findings at or above warning (main seed).
    pub findings: Vec<(String, Severity)>,
}

impl SettingResult {
    /// `healthy`, or the worst severity and its codes.
    pub fn verdict(&self) -> String {
        let worst = self.findings.iter().map(|(_, s)| *s).max();
        match worst {
            None => "healthy".into(),
            Some(severity) => {
                let mut codes: Vec<&str> = Vec::new();
                for (code, _) in self.findings.iter().filter(|(_, s)| *s == severity) {
                    if !codes.contains(&code.as_str()) {
                        codes.push(code);
                    }
                }
                format!("{severity}: {}", codes.join(", "))
            }
        }
    }

    /// Mean epochs to the target over the seeds that reached it, and how many did.
    pub fn mean_epochs_to_target(&self) -> Option<f64> {
        mean_reached(self.epochs_to_target.iter().map(|e| e.map(|e| e as f64)))
    }

    /// Mean seconds to the target over the seeds that reached it.
    pub fn mean_seconds_to_target(&self) -> Option<f64> {
        mean_reached(self.seconds_to_target.iter().copied())
    }
}

fn mean_reached(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let reached: Vec<f64> = values.flatten().collect();
    (!reached.is_empty()).then(|| reached.iter().sum::<f64>() / reached.len() as f64)
}

/// What `compare` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    /// The spec's name.
    pub name: String,
    /// `test_accuracy` or `test_mse`.
    pub metric: String,
    /// The target, when one was given.
    pub target: Option<f64>,
    /// Epochs per run.
    pub epochs: usize,
    /// Every setting, in grid order.
    pub settings: Vec<SettingResult>,
    /// The recommended setting.
    pub best: Option<usize>,
    /// Why it is recommended.
    pub why: String,
    /// Where the runs are.
    pub dir: String,
    /// Wall time.
    pub seconds: f64,
    /// Trainings that failed (their setting is left out: a paired seed is missing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<JobFailure>,
    /// Where the trainings ran (`in-process`, `local (2 jobs at once)`, `slurm`).
    #[serde(default)]
    pub executor: String,
}

/// The grid: activations in the order given, each with its initializations.
pub fn grid(activations: &[Activation], inits: &Inits) -> Vec<Setting> {
    let mut out = Vec::new();
    for &activation in activations {
        let inits = match inits {
            Inits::Auto => vec![nd_probe::recommended_init(activation)],
            Inits::Each(list) => list.clone(),
        };
        for init in inits {
            out.push(Setting {
                label: format!("{activation} + {init}"),
                activation,
                init,
            });
        }
    }
    out
}

/// `<run>.compare` beside where the spec's runs go.
pub fn compare_dir(runs: &Path, name: &str) -> PathBuf {
    runs.join(format!("{name}.compare"))
}

/// Trains and diagnoses every setting, then recommends one: the best metric within noise
/// (paired seeds, as `fix` judges), then the fastest to the target, then the healthiest.
pub fn compare(
    spec: &CheckedSpec,
    data: &Dataset,
    dir: &Path,
    options: &CompareOptions,
    device: &Device,
    observer: &mut dyn FixObserver,
) -> Result<CompareReport, RemedyError> {
    let start = Instant::now();
    let regression = spec.task() == Task::Regression;
    let settings = grid(&options.activations, &options.inits);
    let seeds: Vec<u64> = (0..options.seeds.max(1) as u64)
        .map(|i| spec.train.seed.wrapping_add(i))
        .collect();
    let pending = PendingRun::create(dir, options.force)?;
    // Every setting on every seed is one job, run by the executor (here, in other processes
    // or on a cluster); each writes a run: `<slug>` for the spec's seed, `<slug>@seed-N`.
    let mut jobs = Vec::new();
    let mut planned = Vec::new();
    let mut slugs: Vec<String> = Vec::new();
    for setting in settings {
        let candidate = Candidate {
            label: setting.label.clone(),
            changes: vec![
                ("model.activation".into(), setting.activation.to_string()),
                ("model.init".into(), setting.init.to_string()),
            ],
            why: String::new(),
            from: "compare".into(),
            revive: false,
        };
        let changed = candidate.apply(spec)?;
        let slug = candidate.unique_slug(&mut slugs);
        for (k, &seed) in seeds.iter().enumerate() {
            let mut s = changed.spec().clone();
            s.train.seed = seed;
            let out = if k == 0 {
                pending.dir().join(&slug)
            } else {
                pending.dir().join(format!("{slug}@seed-{seed}"))
            };
            jobs.push(Job::new(
                format!("{} seed {seed}", setting.label),
                s.check()?,
                out,
            ));
        }
        planned.push((setting, changed, slug));
    }
    let mut runs = options
        .executor
        .run(
            jobs,
            data,
            device,
            &pending.dir().join(nd_train::JOBS_DIR),
            observer,
        )?
        .into_iter();
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for (setting, changed, slug) in planned {
        let mut metrics = SeedMetrics {
            seeds: Vec::new(),
            primary: Vec::new(),
            train_loss: Vec::new(),
        };
        let mut epochs_to_target = Vec::new();
        let mut seconds_to_target = Vec::new();
        let mut epoch_seconds = Vec::new();
        let mut main = None;
        let mut setting_failed = false;
        for &seed in &seeds {
            let trained = match runs.next().expect("one result per job") {
                Ok(path) => nd_train::Run::open(&path)?.trained(data, device)?,
                Err(failure) => {
                    tracing::info!(%failure, "a setting's training failed");
                    failed.push(failure);
                    setting_failed = true;
                    continue;
                }
            };
            let last = trained.metrics.last();
            metrics.seeds.push(seed);
            metrics
                .primary
                .push(last.map(EpochMetrics::primary).unwrap_or(f64::NAN));
            metrics
                .train_loss
                .push(last.map(|m| m.train_loss).unwrap_or(f64::NAN));
            let reached = options
                .target
                .and_then(|t| first_reaching(&trained.metrics, t, regression));
            epochs_to_target.push(reached);
            seconds_to_target
                .push(reached.map(|e| trained.metrics[..e].iter().map(|m| m.seconds).sum::<f64>()));
            epoch_seconds.extend(trained.metrics.iter().map(|m| m.seconds));
            if main.is_none() {
                main = Some(trained);
            }
        }
        // A setting missing a paired seed cannot be set beside the others.
        let Some(trained) = main.filter(|_| !setting_failed) else {
            continue;
        };
        let label = dir.join(&slug).display().to_string();
        let diagnosis = diagnose_networks(
            &label,
            &changed,
            data,
            Some(&trained.initial),
            &trained.network,
            &trained.metrics,
            &options.diagnose,
            device,
        );
        let saturated: (usize, usize) = diagnosis
            .layers
            .iter()
            .filter(|l| l.name != "output")
            .filter(|_| setting.activation.is_squashing())
            .fold((0, 0), |(s, u), l| (s + l.saturated, u + l.units));
        let outcome = Outcome::of_diagnosis(label.clone(), &diagnosis, metrics.clone(), 0.0);
        results.push(SettingResult {
            setting,
            run: label,
            metrics,
            epochs_to_target,
            seconds_to_target,
            seconds_per_epoch: epoch_seconds.iter().sum::<f64>()
                / epoch_seconds.len().max(1) as f64,
            curve: trained.metrics.iter().map(EpochMetrics::primary).collect(),
            top_saturated: trained
                .health
                .iter()
                .map(|h| {
                    h.layers
                        .iter()
                        .rev()
                        .find(|l| l.name != "output")
                        .map_or(f64::NAN, |l| l.saturated_fraction)
                })
                .collect(),
            dead_fraction: diagnosis.dead_fraction(),
            saturated_fraction: if saturated.1 == 0 {
                0.0
            } else {
                saturated.0 as f64 / saturated.1 as f64
            },
            layers: outcome.layers,
            gradient_ratio: diagnosis.gradient_ratio,
            findings: diagnosis
                .at_least(Severity::Warning)
                .map(|f| (f.code.clone(), f.severity))
                .collect(),
        });
    }
    let temp = pending.dir().to_path_buf();
    let dir_out = pending.commit()?;
    crate::fix::relocate_logs(&mut failed, &temp, &dir_out);
    let (best, why) = recommend(&results, options.target, regression);
    Ok(CompareReport {
        name: spec.name.clone(),
        metric: if regression {
            "test_mse"
        } else {
            "test_accuracy"
        }
        .into(),
        target: options.target,
        epochs: spec.train.epochs,
        settings: results,
        best,
        why,
        dir: dir_out.display().to_string(),
        seconds: start.elapsed().as_secs_f64(),
        failed,
        executor: options.executor.describe(),
    })
}

/// The first epoch (1-based) whose metric reaches `target`.
fn first_reaching(metrics: &[EpochMetrics], target: f64, regression: bool) -> Option<usize> {
    metrics
        .iter()
        .position(|m| {
            let v = m.primary();
            if regression {
                v <= target
            } else {
                v >= target
            }
        })
        .map(|i| i + 1)
}

fn outcome(r: &SettingResult) -> Outcome {
    Outcome {
        run: r.run.clone(),
        metrics: r.metrics.clone(),
        dead_fraction: r.dead_fraction,
        layers: r.layers.clone(),
        gradient_ratio: r.gradient_ratio,
        findings: r.findings.clone(),
        train_seconds: 0.0,
    }
}

/// The setting to recommend, and why: the best mean metric; every setting the leader does not
/// clearly beat on the paired seeds (as `fix` judges a cure: the gain beats the margin on every
/// seed) counts as just as good; of those the fastest to the target in training seconds (when
/// one was given and reached; within 10% counts as as fast), then the healthiest (fewest dead
/// and saturated units), then the better metric.
pub fn recommend(
    results: &[SettingResult],
    target: Option<f64>,
    regression: bool,
) -> (Option<usize>, String) {
    let score = |r: &SettingResult| {
        let m = r.metrics.mean();
        match (m.is_finite(), regression) {
            (false, _) => f64::NEG_INFINITY,
            (true, true) => -m,
            (true, false) => m,
        }
    };
    let Some((leader, _)) = results
        .iter()
        .enumerate()
        .max_by(|a, b| score(a.1).total_cmp(&score(b.1)))
    else {
        return (None, "nothing was compared".into());
    };
    if !score(&results[leader]).is_finite() {
        return (None, "no setting trained to a finite metric".into());
    }
    let lead = outcome(&results[leader]);
    let tied: Vec<usize> = (0..results.len())
        .filter(|&i| {
            if i == leader {
                return true;
            }
            let probe = Candidate {
                label: String::new(),
                changes: Vec::new(),
                why: String::new(),
                from: String::new(),
                revive: false,
            };
            let j = judge(probe, lead.clone(), &outcome(&results[i]), regression);
            !(j.gain > j.margin
                && j.wins
                    == results[i]
                        .metrics
                        .primary
                        .len()
                        .min(lead.metrics.primary.len()))
        })
        .collect();
    let sick = |r: &SettingResult| r.dead_fraction + r.saturated_fraction;
    // Fastest: the least training time to the target (what a user waits for; epochs alone
    // hide an activation that costs more per epoch). Within 10% of the fastest counts as as
    // fast: the clock is shared and noisy.
    let seconds = |r: &SettingResult| r.mean_seconds_to_target().unwrap_or(f64::INFINITY);
    let fastest = tied
        .iter()
        .map(|&i| seconds(&results[i]))
        .fold(f64::INFINITY, f64::min);
    let timed = target.is_some() && fastest.is_finite();
    let quick: Vec<usize> = if timed {
        tied.iter()
            .copied()
            .filter(|&i| seconds(&results[i]) <= fastest * 1.1)
            .collect()
    } else {
        tied.clone()
    };
    let best = *quick
        .iter()
        .min_by(|&&a, &&b| {
            let (a, b) = (&results[a], &results[b]);
            sick(a)
                .total_cmp(&sick(b))
                .then(score(b).total_cmp(&score(a)))
        })
        .expect("the leader is tied with itself");
    let r = &results[best];
    let fmt = |v: f64| {
        if regression {
            format!("{v:.4}")
        } else {
            format!("{:.1}%", v * 100.0)
        }
    };
    let mut why = if best == leader {
        format!("the best mean metric ({})", fmt(r.metrics.mean()))
    } else {
        format!(
            "within noise of the best mean metric ({} against {} for {})",
            fmt(r.metrics.mean()),
            fmt(results[leader].metrics.mean()),
            results[leader].setting.label
        )
    };
    let others = |set: &[usize]| {
        set.iter()
            .filter(|&&i| i != best)
            .map(|&i| results[i].setting.label.as_str())
            .collect::<Vec<_>>()
    };
    let as_good = others(&tied);
    let as_fast = others(&quick);
    if !as_good.is_empty() {
        if timed && as_fast.len() < as_good.len() {
            why.push_str(&format!(
                "; of the settings as good ({}), the fastest to {} ({:.2}s, {:.1} epochs)",
                as_good.join(", "),
                fmt(target.expect("timed")),
                seconds(r),
                r.mean_epochs_to_target().unwrap_or(f64::NAN)
            ));
        }
        if !as_fast.is_empty() {
            why.push_str(&format!(
                "; of the settings as good{} ({}), the healthiest ({} dead or saturated units)",
                if timed { " and as fast" } else { "" },
                as_fast.join(", "),
                nd_probe::percent(sick(r))
            ));
        }
    }
    (Some(best), why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(
        label: &str,
        primary: [f64; 3],
        epochs: [Option<usize>; 3],
        dead: f64,
    ) -> SettingResult {
        SettingResult {
            setting: Setting {
                label: label.into(),
                activation: Activation::Relu,
                init: Init::KaimingNormal,
            },
            run: String::new(),
            metrics: SeedMetrics {
                seeds: vec![1, 2, 3],
                primary: primary.to_vec(),
                train_loss: vec![0.1; 3],
            },
            epochs_to_target: epochs.to_vec(),
            seconds_to_target: epochs.iter().map(|e| e.map(|e| e as f64)).collect(),
            seconds_per_epoch: 1.0,
            curve: Vec::new(),
            top_saturated: Vec::new(),
            dead_fraction: dead,
            saturated_fraction: 0.0,
            layers: Vec::new(),
            gradient_ratio: None,
            findings: Vec::new(),
        }
    }

    #[test]
    fn the_grid_pairs_each_activation_with_its_matched_init_or_every_init() {
        let auto = grid(
            &[Activation::Relu, Activation::Tanh, Activation::Selu],
            &Inits::Auto,
        );
        let inits: Vec<Init> = auto.iter().map(|s| s.init).collect();
        assert_eq!(
            inits,
            [Init::KaimingNormal, Init::XavierUniform, Init::LecunNormal]
        );
        let each = grid(
            &[Activation::Relu, Activation::Tanh],
            &Inits::Each(vec![Init::XavierUniform, Init::KaimingNormal]),
        );
        assert_eq!(each.len(), 4);
        assert_eq!(each[1].label, "relu + kaiming_normal");
    }

    #[test]
    fn within_noise_the_faster_then_the_healthier_setting_is_recommended() {
        // b is as good as a within noise and reaches the target sooner; c is clearly worse.
        let results = [
            result("a", [0.95, 0.96, 0.95], [Some(5), Some(6), Some(5)], 0.0),
            result("b", [0.951, 0.955, 0.952], [Some(2), Some(2), Some(3)], 0.0),
            result("c", [0.80, 0.81, 0.79], [None, None, None], 0.0),
        ];
        let (best, why) = recommend(&results, Some(0.9), false);
        assert_eq!(best, Some(1), "{why}");
        assert!(why.contains("fastest"), "{why}");
        // As fast within 10% and as good: the healthier one, and the reason says so.
        let mut even = results.clone();
        even[0].seconds_to_target = vec![Some(2.0); 3];
        even[1].seconds_to_target = vec![Some(2.1); 3];
        even[1].dead_fraction = 0.2;
        let (best, why) = recommend(&even, Some(0.9), false);
        assert_eq!(best, Some(0), "{why}");
        assert!(
            why.contains("healthiest") && !why.contains("fastest"),
            "{why}"
        );
        // Without a target: the healthier of the two.
        let mut results = results;
        results[0].dead_fraction = 0.3;
        let (best, why) = recommend(&results, None, false);
        assert_eq!(best, Some(1), "{why}");
        // A clearly better setting wins whatever its speed.
        let clear = [
            result("a", [0.99, 0.99, 0.99], [Some(9), Some(9), Some(9)], 0.5),
            result("b", [0.90, 0.91, 0.90], [Some(1), Some(1), Some(1)], 0.0),
        ];
        assert_eq!(recommend(&clear, Some(0.85), false).0, Some(0));
    }

    #[test]
    fn epochs_to_target_counts_from_one_and_regression_targets_are_ceilings() {
        let m = |v: f64| EpochMetrics {
            epoch: 0,
            train_loss: 1.0,
            test_loss: 1.0,
            train_accuracy: None,
            test_accuracy: None,
            test_mse: Some(v),
            seconds: 1.0,
        };
        let history = [m(0.9), m(0.5), m(0.3)];
        assert_eq!(first_reaching(&history, 0.5, true), Some(2));
        assert_eq!(first_reaching(&history, 0.1, true), None);
    }
}
