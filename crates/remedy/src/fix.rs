//! Proving a cure: collect candidate remedies from a diagnosis, re-train each one with the same
//! data, seed and epoch budget, re-diagnose it, and judge it against the original with paired
//! seeds so that seed noise cannot pass for a cure.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use nd_data::Dataset;
pub(crate) use nd_executor::Progress as FixObserver;
use nd_executor::{Executor, Job, JobFailure, Submitted};
use nd_models::Network;
use nd_probe::{Finding, Severity};
use nd_spec::{CheckedSpec, Init, Spec, Task};
use nd_train::{EpochMetrics, PendingRun, Trained};
use serde::{Deserialize, Serialize};

use crate::diagnosis::{diagnose_networks, DiagnoseOptions, Diagnosis};
use crate::RemedyError;

/// One candidate: a set of spec changes and why to try them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// `key=value, key=value`.
    pub label: String,
    /// The changes, `section.key` and TOML value.
    pub changes: Vec<(String, String)>,
    /// Why.
    pub why: String,
    /// The finding that proposed it (`try` for a hand-added one).
    pub from: String,
    /// Recycle the dead and dormant units of an imported model's weights (ReDo) rather than
    /// change its spec.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revive: bool,
}

/// Where a candidate's training started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// A fresh initialization from the seed: the remedy changes the architecture or the
    /// initialization, or the model was trained by this tool.
    #[default]
    Scratch,
    /// An imported model's weights, trained on under the changed spec.
    ImportedWeights,
    /// An imported model's weights with their dead and dormant units recycled.
    Revived,
}

impl Start {
    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            Start::Scratch => "re-trained from scratch",
            Start::ImportedWeights => "kept the imported weights",
            Start::Revived => "imported weights, dormant units recycled",
        }
    }
}

/// Spec keys a remedy may change while keeping an imported model's weights: activations and
/// the training recipe. Any other change (architecture, initialization, bias) re-trains from
/// scratch.
pub fn keeps_weights(candidate: &Candidate) -> bool {
    candidate.changes.iter().all(|(key, _)| {
        matches!(
            key.as_str(),
            "model.activation" | "model.leaky_slope" | "model.output_activation"
        ) || key.starts_with("train.")
    })
}

impl Candidate {
    /// A candidate from `key=value` text, as `--try` takes it (several pairs separated by `,`).
    ///
    /// Refused: empty text, a pair without a key or a value, a key given twice, and keys whose
    /// change would make the comparison with the original unfair ([`fixed_key_reason`]).
    pub fn parse(text: &str) -> Result<Candidate, RemedyError> {
        let bad = |problem: &str| RemedyError::BadChange {
            text: text.to_string(),
            problem: problem.to_string(),
        };
        let mut changes: Vec<(String, String)> = Vec::new();
        for pair in split_changes(text)
            .into_iter()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').ok_or_else(|| bad("no `=`"))?;
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() {
                return Err(bad("a change without a key"));
            }
            if value.is_empty() {
                return Err(bad(&format!("no value for `{key}`")));
            }
            if let Some(reason) = fixed_key_reason(key) {
                return Err(RemedyError::Unfixable {
                    key: key.to_string(),
                    reason,
                });
            }
            if changes.iter().any(|(k, _)| k == key) {
                return Err(bad(&format!("`{key}` is set twice")));
            }
            changes.push((key.to_string(), value.to_string()));
        }
        if changes.is_empty() {
            return Err(bad("it is empty"));
        }
        Ok(Candidate {
            label: text.trim().to_string(),
            changes,
            why: "added by hand".into(),
            from: "try".into(),
            revive: false,
        })
    }

    /// The spec with this candidate's changes, validated.
    pub fn apply(&self, spec: &Spec) -> Result<CheckedSpec, RemedyError> {
        let mut changed = spec.clone();
        for (key, value) in &self.changes {
            changed = changed.apply_change(key, value)?;
        }
        Ok(changed.check()?)
    }

    /// A directory-safe name, e.g. `activation-leaky_relu`: never empty, never a hidden or
    /// special name, at most [`MAX_SLUG_BYTES`] bytes.
    pub fn slug(&self) -> String {
        let mut slug = String::new();
        for (key, value) in &self.changes {
            if !slug.is_empty() {
                slug.push('+');
            }
            let leaf = key.rsplit('.').next().unwrap_or(key);
            slug.push_str(leaf);
            slug.push('-');
            slug.push_str(value);
        }
        let mut slug: String = slug
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        slug.truncate(MAX_SLUG_BYTES);
        if slug.is_empty() || slug.starts_with('.') {
            slug.insert_str(0, "candidate");
        }
        slug
    }
}

impl Candidate {
    /// Rewrites the label from the changes (`key=value, key=value`), after they were edited.
    fn relabel(&mut self) {
        self.label = join_changes(&self.changes);
    }

    /// A directory name not yet in `taken`: the slug, or the slug with `-2`, `-3`, ... when
    /// two candidates clean up the same. The name is added to `taken`.
    pub(crate) fn unique_slug(&self, taken: &mut Vec<String>) -> String {
        let base = self.slug();
        let mut slug = base.clone();
        let mut n = 1;
        while taken.contains(&slug) {
            n += 1;
            slug = format!("{base}-{n}");
        }
        taken.push(slug.clone());
        slug
    }
}

/// `key=value, key=value`.
fn join_changes(changes: &[(String, String)]) -> String {
    changes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The longest candidate directory name ([`Candidate::slug`]).
pub const MAX_SLUG_BYTES: usize = 100;

/// Why a candidate may not change `key`, or `None` when it may. The fixer judges every
/// candidate against the original on the same data, seeds, epoch budget, backend and
/// thresholds; a change to those would compare unlike with unlike.
pub fn fixed_key_reason(key: &str) -> Option<&'static str> {
    if key == "name" {
        Some("candidate runs are named after their changes")
    } else if key.starts_with("data.") || key == "data" {
        Some("every candidate is trained and judged on the original's data; train a new run for other data")
    } else if key == "train.seed" {
        Some("candidates are trained on the original's seeds (use --seeds for more of them)")
    } else if key == "train.epochs" {
        Some("every candidate gets the original's epoch budget, or the comparison is unfair")
    } else if key == "train.backend" {
        Some("use --backend to verify on another backend (the original is re-trained there too)")
    } else if key.starts_with("doctor.") || key == "doctor" {
        Some("the original and the candidates are diagnosed with the same thresholds")
    } else {
        None
    }
}

/// What is wrong with `spec`'s network at initialization, if anything, measured on up to 512
/// training rows (milliseconds): a layer born with at least `doctor.dead_fraction_error` of
/// its units dead, or a sigmoid/tanh layer with at least `doctor.saturated_fraction_error` of
/// its units saturated. Batch-normalized networks are not screened (see the body).
pub fn sick_at_init(
    spec: &CheckedSpec,
    data: &Dataset,
    device: &Device,
) -> Result<Option<String>, RemedyError> {
    // Batch norm re-centres each training batch; at initialization its running statistics are
    // still the identity, so an inference probe would see the un-normalized values and call a
    // network sick that training will not find sick.
    if spec.model.batch_norm {
        return Ok(None);
    }
    let network = nd_train::init_network(spec, data, device)?;
    let options = nd_probe::ProbeOptions {
        limit: Some(512),
        grad_batch: 1,
    };
    let p = nd_probe::probe(&network, &data.train, device, &options);
    let t = &spec.doctor;
    let model = &spec.model;
    let setting = if model.bias_init != 0.0 {
        format!("{} with bias {}", model.activation, model.bias_init)
    } else {
        model.activation.to_string()
    };
    if let Some(site) = p
        .sites
        .iter()
        .find(|s| s.can_die() && s.dead_fraction() >= t.dead_fraction_error)
    {
        return Ok(Some(format!(
            "{setting} is born dead: {} starts with {} of its units dead",
            site.name,
            nd_probe::percent(site.dead_fraction())
        )));
    }
    if let Some(site) = p.sites.iter().find(|s| {
        s.activation.is_squashing() && s.saturated_fraction_of_units() >= t.saturated_fraction_error
    }) {
        return Ok(Some(format!(
            "{setting} is saturated at initialization: {} starts with {} of its units at a flat end",
            site.name,
            nd_probe::percent(site.saturated_fraction_of_units())
        )));
    }
    Ok(None)
}

/// The changes that usually come with a candidate and that it lacks: a zero bias when the
/// spec keeps one far from it, and the initializer matched to the candidate's activation.
fn companions(
    candidate: &Candidate,
    spec: &CheckedSpec,
) -> Result<Vec<(String, String)>, RemedyError> {
    let changed = candidate.apply(spec)?;
    let sets = |key: &str| candidate.changes.iter().any(|(k, _)| k == key);
    let mut out = Vec::new();
    if changed.model.bias_init != 0.0 && !sets("model.bias_init") {
        out.push(("model.bias_init".to_string(), "0.0".to_string()));
    }
    let matched = nd_probe::recommended_init(changed.model.activation);
    let family = |i: Init| match i {
        Init::KaimingNormal | Init::KaimingUniform => 0,
        Init::XavierNormal | Init::XavierUniform => 1,
        Init::LecunNormal => 2,
        Init::Normal | Init::Uniform => 3,
    };
    if family(changed.model.init) != family(matched) && !sets("model.init") {
        out.push(("model.init".to_string(), matched.to_string()));
    }
    Ok(out)
}

/// Screens every candidate that trains from scratch at initialization before its budget is
/// spent: one already sick (born dead, saturated) gets its companion changes
/// ([`companions`]: a zero bias, the matched initializer) when they make it healthy, and is
/// dropped otherwise. Hand-given (`--try`) candidates are trained as given.
pub fn screen(
    candidates: Vec<Candidate>,
    spec: &CheckedSpec,
    data: &Dataset,
    device: &Device,
    warm: bool,
) -> Result<(Vec<Candidate>, Vec<Screened>), RemedyError> {
    let mut kept = Vec::new();
    let mut screened = Vec::new();
    for candidate in candidates {
        if candidate.revive || candidate.from == "try" || (warm && keeps_weights(&candidate)) {
            kept.push(candidate);
            continue;
        }
        let Some(why) = sick_at_init(&candidate.apply(spec)?, data, device)? else {
            kept.push(candidate);
            continue;
        };
        let added = companions(&candidate, spec)?;
        let mut repaired = candidate.clone();
        repaired.changes.extend(added.iter().cloned());
        let healthy =
            !added.is_empty() && sick_at_init(&repaired.apply(spec)?, data, device)?.is_none();
        if healthy {
            let list = join_changes(&added);
            repaired.relabel();
            repaired.why = format!(
                "{}; screened at initialization: {why}, so {list} comes with it",
                repaired.why
            );
            tracing::info!(candidate = %candidate.label, %why, added = %list, "screened: repaired");
            screened.push(Screened {
                label: candidate.label.clone(),
                why,
                added,
            });
            kept.push(repaired);
        } else {
            tracing::info!(candidate = %candidate.label, %why, "screened: dropped");
            screened.push(Screened {
                label: candidate.label.clone(),
                why,
                added: Vec::new(),
            });
        }
    }
    Ok((kept, screened))
}

/// Sets the learning rate of every candidate that changes it (the rules propose a tenth, or
/// Adam's customary 0.001) from the learning-rate range test (Smith 2017) run on the spec as
/// that candidate changes it: the rate where the smoothed loss falls fastest, to two
/// significant digits. A rate given by hand (`--try`) is kept; where the test finds no rate at
/// which the loss falls, the rule's value stays and the reason says so. Candidates that end up
/// the same as the original or as one before them are dropped. Returns the candidates and each
/// range test's curve, under the label of the candidate it set.
pub fn rates_from_lr_find(
    candidates: Vec<Candidate>,
    spec: &CheckedSpec,
    data: &Dataset,
    device: &Device,
) -> Result<(Vec<Candidate>, Vec<RangeTest>), RemedyError> {
    const KEY: &str = "train.learning_rate";
    let mut out: Vec<Candidate> = Vec::new();
    let mut tests = Vec::new();
    let mut seen: Vec<Spec> = vec![spec.spec().clone()];
    for mut candidate in candidates {
        if candidate.from != "try" && candidate.changes.iter().any(|(k, _)| k == KEY) {
            let changed = candidate.apply(spec)?;
            let curve =
                nd_train::lr_find(&changed, data, device, &nd_train::LrFindOptions::default())?;
            match curve.suggested {
                Some(rate) if rate.is_finite() && rate > 0.0 => {
                    // Two significant digits, written as TOML writes the number back.
                    let rate: f64 = format!("{rate:.1e}").parse().expect("a float");
                    let rate = rate.to_string();
                    for (key, value) in &mut candidate.changes {
                        if key == KEY {
                            *value = rate.clone();
                        }
                    }
                    candidate.relabel();
                    candidate.why = format!(
                        "{}; the rate is the range test's (lr-find, Smith 2017): where the smoothed loss fell fastest",
                        candidate.why
                    );
                }
                _ => {
                    candidate.why = format!(
                        "{}; lr-find found no rate at which the loss fell, so the rule's rate stays",
                        candidate.why
                    );
                }
            }
            tests.push(RangeTest {
                candidate: candidate.label.clone(),
                curve,
            });
        }
        let changed = candidate.apply(spec)?.into_inner();
        if seen.contains(&changed) {
            continue;
        }
        seen.push(changed);
        out.push(candidate);
    }
    Ok((out, tests))
}

/// A learning-rate range test the fixer ran to set a candidate's rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeTest {
    /// The candidate whose rate it set, as labelled after.
    pub candidate: String,
    /// The curve (every step's rate, loss and smoothed loss) and what it suggested.
    pub curve: nd_train::LrCurve,
}

/// Candidates from the findings' remedies: most severe findings first, each finding's
/// remedies in rank order, deduplicated, without changes that would leave the spec as it is;
/// at most `max`, then the hand-added ones.
pub fn collect_candidates(
    spec: &Spec,
    findings: &[Finding],
    max: usize,
    extra: &[Candidate],
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    let mut seen_specs: Vec<Spec> = vec![spec.clone()];
    // Round-robin over findings so the top candidates answer different findings when they can.
    let actionable: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .collect();
    let pool: Vec<&Finding> = if actionable.is_empty() {
        findings.iter().collect()
    } else {
        actionable
    };
    let depth = pool.iter().map(|f| f.remedies.len()).max().unwrap_or(0);
    let mut ordered = Vec::new();
    for rank in 0..depth {
        for f in &pool {
            if let Some(r) = f.remedies.get(rank) {
                ordered.push((f, r));
            }
        }
    }
    for (finding, remedy) in ordered {
        if out.len() >= max {
            break;
        }
        let changes: Vec<(String, String)> = remedy
            .change
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), value)
            })
            .collect();
        let candidate = Candidate {
            label: remedy.label(),
            changes,
            why: remedy.why.clone(),
            from: finding.code.clone(),
            revive: false,
        };
        let Ok(changed) = candidate.apply(spec) else {
            continue;
        };
        let changed = changed.into_inner();
        if seen_specs.contains(&changed) {
            continue;
        }
        seen_specs.push(changed);
        out.push(candidate);
    }
    out.extend(extra.iter().cloned());
    out
}

/// How a candidate compares with the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Clearly worse on the metric.
    Worse,
    /// Not clearly better.
    NoBetter,
    /// Clearly better, or fewer errors without being worse, but not cured.
    Improved,
    /// No error-level finding left and the metric clearly better.
    Cured,
}

impl Verdict {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Worse => "worse",
            Verdict::NoBetter => "no-better",
            Verdict::Improved => "improved",
            Verdict::Cured => "cured",
        }
    }
}

/// The primary metric of a run over several seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedMetrics {
    /// Seeds, in order; the first is the spec's.
    pub seeds: Vec<u64>,
    /// The primary metric per seed (test accuracy, or test MSE).
    pub primary: Vec<f64>,
    /// Final train loss per seed.
    pub train_loss: Vec<f64>,
}

impl SeedMetrics {
    /// Mean of the primary metric.
    pub fn mean(&self) -> f64 {
        self.primary.iter().sum::<f64>() / self.primary.len().max(1) as f64
    }

    /// Largest distance between two seeds' primary metric.
    pub fn spread(&self) -> f64 {
        let (lo, hi) = self
            .primary
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(*x), hi.max(*x))
            });
        if lo.is_finite() {
            hi - lo
        } else {
            f64::INFINITY
        }
    }
}

/// The side-by-side numbers of one network (original or candidate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The run directory.
    pub run: String,
    /// Per-seed metrics.
    pub metrics: SeedMetrics,
    /// Dead fraction over all relu-family units (main seed).
    pub dead_fraction: f64,
    /// Per layer: name, dead, dormant and saturated fractions.
    pub layers: Vec<LayerHealth>,
    /// First-to-last gradient ratio.
    pub gradient_ratio: Option<f64>,
    /// Codes and severities of the findings that remain.
    pub findings: Vec<(String, Severity)>,
    /// Wall time of the main-seed training.
    pub train_seconds: f64,
}

/// One layer's health in a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerHealth {
    /// Layer name.
    pub name: String,
    /// Dead fraction.
    pub dead_fraction: f64,
    /// Dormant fraction.
    pub dormant_fraction: f64,
    /// Saturated fraction.
    pub saturated_fraction: f64,
}

impl SeedMetrics {
    /// One seed's metrics from a run's last epoch.
    pub fn of_history(seed: u64, last: &Option<EpochMetrics>) -> SeedMetrics {
        SeedMetrics {
            seeds: vec![seed],
            primary: vec![last.as_ref().map(EpochMetrics::primary).unwrap_or(f64::NAN)],
            train_loss: vec![last.as_ref().map(|m| m.train_loss).unwrap_or(f64::NAN)],
        }
    }
}

impl Outcome {
    /// The original's outcome.
    pub fn of(original: &Original, metrics: SeedMetrics) -> Outcome {
        Outcome::of_diagnosis(
            original.dir.display().to_string(),
            original.diagnosis,
            metrics,
            original.train_seconds,
        )
    }

    /// An outcome from a diagnosis.
    pub fn of_diagnosis(
        run: String,
        diagnosis: &Diagnosis,
        metrics: SeedMetrics,
        train_seconds: f64,
    ) -> Outcome {
        Outcome {
            run,
            metrics,
            dead_fraction: diagnosis.dead_fraction(),
            layers: diagnosis
                .layers
                .iter()
                .filter(|l| l.name != "output")
                .map(|l| LayerHealth {
                    name: l.name.clone(),
                    dead_fraction: l.dead_fraction,
                    dormant_fraction: l.dormant as f64 / l.units.max(1) as f64,
                    saturated_fraction: l.saturated_fraction,
                })
                .collect(),
            gradient_ratio: diagnosis.gradient_ratio,
            findings: diagnosis
                .findings
                .iter()
                .map(|f| (f.code.clone(), f.severity))
                .collect(),
            train_seconds,
        }
    }

    /// Error-level findings that remain.
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|(_, s)| *s == Severity::Error)
            .count()
    }
}

/// A judged candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    /// What was tried.
    pub candidate: Candidate,
    /// How it did.
    pub outcome: Outcome,
    /// The verdict.
    pub verdict: Verdict,
    /// Mean primary-metric change against the original (positive = better).
    pub gain: f64,
    /// The margin a gain had to beat.
    pub margin: f64,
    /// Seeds on which the candidate beat the original.
    pub wins: usize,
    /// Where its training started.
    #[serde(default)]
    pub start: Start,
}

/// How `fix` works.
#[derive(Debug, Clone)]
pub struct FixOptions {
    /// Candidates from the findings.
    pub candidates: usize,
    /// Hand-added candidates.
    pub extra: Vec<Candidate>,
    /// Seeds per network (the spec's, then the next ones); at least 1.
    pub seeds: usize,
    /// Diagnosis settings for re-diagnosing candidates.
    pub diagnose: DiagnoseOptions,
    /// Replace an existing fix directory.
    pub force: bool,
    /// Re-train the original's own seed as well, rather than take its metrics from the run:
    /// for a fix verified on another backend than the run was trained on, so that every
    /// number compared comes from the same backend.
    pub retrain_original: bool,
    /// Where the trainings run.
    pub executor: Executor,
    /// Whether to wait for the trainings, submit them and return, or collect a submission.
    pub launch: Launch,
    /// Epoch-equivalents the whole fix may spend. With it, up to [`MAX_HALVING_CANDIDATES`]
    /// candidates are tried by successive halving (each a fraction of the epochs, the better
    /// half kept, the epochs doubled) until `candidates` remain for the full paired-seed runs.
    pub budget: Option<usize>,
}

/// The most candidates successive halving starts from.
pub const MAX_HALVING_CANDIDATES: usize = 8;

/// A candidate successive halving dropped before the full runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pruned {
    /// The candidate.
    pub label: String,
    /// The round that dropped it (1 is the first); 0 when the budget left no room to try it.
    pub round: usize,
    /// Epochs each candidate trained in that round.
    pub epochs: usize,
    /// Its metric at the end of the round (test accuracy or MSE, the spec's seed).
    #[serde(deserialize_with = "nd_probe::null_as_nan")]
    pub metric: f64,
    /// Why, in words.
    pub why: String,
}

/// Whether `fix` waits for its trainings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Launch {
    /// Run them and wait (every executor).
    #[default]
    Wait,
    /// Submit them as a job array and return (Slurm): `fix --no-wait`.
    Submit,
    /// Wait for a submission made earlier and judge it: `fix --collect`; with
    /// `retry_failed`, its failed tasks are submitted again first.
    Collect {
        /// Resubmit the failed tasks (`--retry-failed`).
        retry_failed: bool,
    },
}

/// What `fix` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixReport {
    /// The original run.
    pub run: String,
    /// Where candidate runs and `fixed.toml` are.
    pub dir: Option<String>,
    /// `accuracy` or `mse`.
    pub metric: String,
    /// True when the original had no warning or error: nothing was re-trained.
    pub nothing_to_fix: bool,
    /// The original.
    pub original: Outcome,
    /// Every candidate, in the order tried.
    pub candidates: Vec<Judged>,
    /// Index of the recommended candidate.
    pub best: Option<usize>,
    /// The recommended spec, as written to `fixed.toml`.
    pub fixed_spec: Option<String>,
    /// Wall time of the whole fix.
    pub seconds: f64,
    /// An imported model: its own metric, as imported, beside the baseline (its weights
    /// trained on under the recipe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_metric: Option<f64>,
    /// Candidates found sick at initialization, before any training: repaired with a
    /// companion change, or dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub screened: Vec<Screened>,
    /// Trainings that failed (their candidate is not judged: a paired seed is missing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<JobFailure>,
    /// Where the trainings ran (`in-process`, `local (2 jobs at once)`, `slurm`).
    #[serde(default)]
    pub executor: String,
    /// Candidates successive halving dropped before the full runs (`--budget`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<Pruned>,
    /// Epoch-equivalents spent, when a budget was given (halving rounds and full runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_spent: Option<usize>,
    /// The learning-rate range tests that set the candidates' rates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub range_tests: Vec<RangeTest>,
    /// Submitted without waiting (`--no-wait`): the job array to collect later; nothing is
    /// judged yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted: Option<Submitted>,
}

/// A candidate screened at initialization and found sick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Screened {
    /// The candidate as proposed.
    pub label: String,
    /// What its initial network showed.
    pub why: String,
    /// The companion changes that made it healthy (empty: it was dropped).
    pub added: Vec<(String, String)>,
}

impl FixReport {
    /// The recommended candidate.
    pub fn best(&self) -> Option<&Judged> {
        self.best.map(|i| &self.candidates[i])
    }

    /// How much was trained: `3 candidates x 2 seeds and the original's other seeds`.
    pub fn executor_summary(&self) -> String {
        let seeds = self.original.metrics.seeds.len().max(1);
        let candidates = self.candidates.len() + self.failed_candidates();
        format!(
            "{candidates} candidate{} x {seeds} seed{}",
            if candidates == 1 { "" } else { "s" },
            if seeds == 1 { "" } else { "s" }
        )
    }

    /// Candidates not judged because a training failed.
    pub fn failed_candidates(&self) -> usize {
        let mut labels: Vec<&str> = self
            .failed
            .iter()
            .filter_map(|f| f.label.rsplit_once(" seed ").map(|(l, _)| l))
            .collect();
        labels.sort_unstable();
        labels.dedup();
        labels.len()
    }

    /// True when a candidate cured the model.
    pub fn cured(&self) -> bool {
        self.best().is_some_and(|b| b.verdict == Verdict::Cured)
    }
}

/// Points failed jobs' logs at where they are once the directory holding them was moved from
/// its temporary name into place.
pub(crate) fn relocate_logs(failed: &mut [JobFailure], temp: &Path, committed: &Path) {
    // The executors write absolute log paths; the directories may be relative.
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (temp, committed) = (absolute(temp), absolute(committed));
    for failure in failed {
        if let Some(log) = &failure.log {
            if let Ok(rest) = Path::new(log).strip_prefix(&temp) {
                failure.log = Some(committed.join(rest).display().to_string());
            }
        }
    }
}

/// `test_mse` or `test_accuracy`.
fn metric_name(regression: bool) -> String {
    if regression {
        "test_mse"
    } else {
        "test_accuracy"
    }
    .into()
}

/// What successive halving works with.
struct Halving {
    budget: usize,
    keep: usize,
    seeds: usize,
    baseline_runs: usize,
    regression: bool,
}

/// What it decided.
struct Halved {
    kept: Vec<Candidate>,
    pruned: Vec<Pruned>,
    spent: usize,
}

/// The rounds of successive halving from `n` candidates down to `keep`: how many train in
/// each round and for how many epochs (the last round a half of `epochs`, the one before a
/// quarter, at least 1), and their cost in epochs.
fn halving_rounds(n: usize, keep: usize, epochs: usize) -> (Vec<(usize, usize)>, usize) {
    let mut counts = Vec::new();
    let mut m = n;
    while m > keep {
        counts.push(m);
        m = m.div_ceil(2).max(keep);
    }
    let rounds = counts.len();
    let plan: Vec<(usize, usize)> = counts
        .into_iter()
        .enumerate()
        .map(|(r, m)| (m, (epochs >> (rounds - r)).max(1)))
        .collect();
    let cost = plan.iter().map(|(m, e)| m * e).sum();
    (plan, cost)
}

/// Successive halving (Jamieson & Talwalkar 2016): as many candidates as the budget allows
/// after the full runs are paid for train a fraction of the epochs on the spec's seed; the
/// better half by the held-out metric is kept and the epochs doubled, until `keep` remain.
#[allow(clippy::too_many_arguments)]
fn halve(
    candidates: Vec<Candidate>,
    h: &Halving,
    original: &Original,
    root: &Path,
    options: &FixOptions,
    device: &Device,
    observer: &mut dyn FixObserver,
) -> Result<Halved, RemedyError> {
    let epochs = original.spec.train.epochs;
    let full = (h.keep.min(candidates.len()) * h.seeds + h.baseline_runs) * epochs;
    if h.budget < full {
        return Err(RemedyError::BudgetTooSmall {
            budget: h.budget,
            needed: full,
        });
    }
    let mut n = candidates.len();
    while n > h.keep && halving_rounds(n, h.keep, epochs).1 > h.budget - full {
        n -= 1;
    }
    let (rounds, cost) = halving_rounds(n, h.keep, epochs);
    let mut alive: Vec<Candidate> = candidates;
    let mut pruned: Vec<Pruned> = alive
        .split_off(n)
        .into_iter()
        .map(|c| Pruned {
            label: c.label,
            round: 0,
            epochs: 0,
            metric: f64::NAN,
            why: format!(
                "not tried: the budget of {} epochs has room for {n} candidates",
                h.budget
            ),
        })
        .collect();
    let seed = original.spec.train.seed;
    for (r, &(_, round_epochs)) in rounds.iter().enumerate() {
        let next = rounds.get(r + 1).map_or(h.keep, |(m, _)| *m);
        let mut jobs = Vec::with_capacity(alive.len());
        let mut slugs = vec!["original".to_string()];
        for candidate in &alive {
            let (start, changed) =
                plan_candidate(candidate, original.spec, original.start.is_some())?;
            let mut s = changed.into_inner();
            s.train.seed = seed;
            s.train.epochs = round_epochs;
            let s = s.check()?;
            let slug = candidate.unique_slug(&mut slugs);
            jobs.push(
                Job::new(
                    format!(
                        "{} ({round_epochs} epochs, round {})",
                        candidate.label,
                        r + 1
                    ),
                    s.clone(),
                    root.join(format!("{slug}@round-{}", r + 1)),
                )
                .starting_from(start_of(start, &s, original, seed, device)?),
            );
        }
        let work = root
            .join(nd_train::JOBS_DIR)
            .join(format!("round-{}", r + 1));
        let results = options
            .executor
            .run(jobs, original.data, device, &work, observer)?;
        let mut scored: Vec<(f64, Candidate, Option<String>)> = Vec::new();
        for (candidate, result) in alive.into_iter().zip(results) {
            let (metric, failure) = match result {
                Ok(path) => {
                    let run = nd_train::Run::open(&path)?;
                    let metric = run.metrics.last().map_or(f64::NAN, EpochMetrics::primary);
                    (metric, None)
                }
                Err(f) => (
                    f64::NAN,
                    Some(format!("its training failed: {}", f.message)),
                ),
            };
            scored.push((metric, candidate, failure));
        }
        // Best first; a NaN (diverged, or failed) last; ties keep the proposal order.
        let key = |m: f64| {
            if m.is_nan() {
                f64::NEG_INFINITY
            } else if h.regression {
                -m
            } else {
                m
            }
        };
        scored.sort_by(|a, b| key(b.0).total_cmp(&key(a.0)));
        let best = scored.first().map_or(f64::NAN, |s| s.0);
        let cut = scored.get(next.saturating_sub(1)).map_or(f64::NAN, |s| s.0);
        alive = Vec::new();
        for (i, (metric, candidate, failure)) in scored.into_iter().enumerate() {
            if i < next {
                alive.push(candidate);
                continue;
            }
            pruned.push(Pruned {
                label: candidate.label,
                round: r + 1,
                epochs: round_epochs,
                metric,
                why: failure.unwrap_or_else(|| {
                    format!("not among the {next} best after {round_epochs} epochs (the last kept {}, the best {})", short(cut, h.regression), short(best, h.regression))
                }),
            });
        }
        tracing::info!(round = r + 1, kept = alive.len(), "halving round");
    }
    Ok(Halved {
        kept: alive,
        pruned,
        spent: cost + full,
    })
}

/// A metric in a sentence: a percentage for accuracy, four decimals for MSE.
fn short(value: f64, regression: bool) -> String {
    if !value.is_finite() {
        "not measured".into()
    } else if regression {
        format!("{value:.4}")
    } else {
        format!("{:.1}%", value * 100.0)
    }
}

/// Where a candidate starts (an imported model's weights, revived or as they are, or a fresh
/// initialization) and its spec (without the imported `[source]` when it trains from scratch).
fn plan_candidate(
    candidate: &Candidate,
    spec: &CheckedSpec,
    imported: bool,
) -> Result<(Start, CheckedSpec), RemedyError> {
    let start = match imported {
        false => Start::Scratch,
        true if candidate.revive => Start::Revived,
        true if keeps_weights(candidate) => Start::ImportedWeights,
        true => Start::Scratch,
    };
    let mut changed = candidate.apply(spec)?;
    if start == Start::Scratch && changed.source.is_some() {
        // Trained from scratch, it no longer descends from the imported file.
        let mut plain = changed.into_inner();
        plain.source = None;
        changed = plain.check()?;
    }
    Ok((start, changed))
}

/// The weights a candidate's training on `seed` starts from: the imported weights (revived, or
/// as they are), or none (a fresh initialization from the seed).
fn start_of(
    start: Start,
    s: &CheckedSpec,
    original: &Original,
    seed: u64,
    device: &Device,
) -> Result<Option<Network>, RemedyError> {
    Ok(match (start, original.start) {
        (Start::Revived, Some(weights)) => Some(
            crate::revive::recycle(
                s,
                original.data,
                &original.diagnosis.probe,
                weights,
                seed,
                device,
            )?
            .network,
        ),
        (Start::ImportedWeights, Some(weights)) => {
            Some(nd_train::init_network(s, original.data, device)?.with_weights_of(weights))
        }
        _ => None,
    })
}

/// `key=value, key=value` split at the commas between changes, not those inside a list value
/// (`model.hidden=[32,32]`).
fn split_changes(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut from) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth <= 0 => {
                parts.push(&text[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[from..]);
    parts
}

/// A spec with another seed.
fn with_seed(spec: &CheckedSpec, seed: u64) -> Result<CheckedSpec, RemedyError> {
    let mut s = spec.spec().clone();
    s.train.seed = seed;
    Ok(s.check()?)
}

/// The fix directory beside a run: `<run>.fix`. A path without a final name (`.`, `..`,
/// `runs/iris/.`) is resolved first, so the fix directory never lands inside the run.
pub fn fix_dir(run_dir: &Path) -> PathBuf {
    let named = matches!(
        run_dir.components().next_back(),
        Some(std::path::Component::Normal(_))
    );
    // `components` drops a trailing `.`, which `with_file_name` would not.
    let trailing_dot = run_dir.to_string_lossy().ends_with("/.");
    let resolved;
    let run_dir = if named && !trailing_dot {
        run_dir
    } else {
        resolved = std::fs::canonicalize(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
        &resolved
    };
    let name = run_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("run");
    run_dir.with_file_name(format!("{name}.fix"))
}

/// Everything `fix` needs about the original.
pub struct Original<'a> {
    /// The run directory (or a label).
    pub dir: &'a Path,
    /// Its spec.
    pub spec: &'a CheckedSpec,
    /// Its data.
    pub data: &'a Dataset,
    /// Its diagnosis.
    pub diagnosis: &'a Diagnosis,
    /// Its training time.
    pub train_seconds: f64,
    /// An imported model's weights. The baseline is then these weights trained on under the
    /// spec's `[train]` recipe (every seed), and the remedies that can keep them
    /// ([`keeps_weights`], and reviving) start from them too.
    pub start: Option<&'a Network>,
}

/// Re-trains the candidates and judges them.
pub fn fix(
    original: &Original,
    options: &FixOptions,
    device: &Device,
    observer: &mut dyn FixObserver,
) -> Result<FixReport, RemedyError> {
    let start = Instant::now();
    let spec = original.spec;
    let regression = spec.task() == Task::Regression;
    let seeds: Vec<u64> = (0..options.seeds.max(1) as u64)
        .map(|i| spec.train.seed.wrapping_add(i))
        .collect();
    let base_metrics = original.diagnosis.metrics.clone();
    let nothing_to_fix = original.diagnosis.healthy && options.extra.is_empty();
    let imported = original.start;
    let candidates = if nothing_to_fix {
        Vec::new()
    } else {
        collect_candidates(
            spec,
            &original.diagnosis.findings,
            if options.budget.is_some() {
                MAX_HALVING_CANDIDATES.max(options.candidates)
            } else {
                options.candidates
            },
            &options.extra,
        )
    };
    // Learning rates are measured, not divided: the range test sets them. Then every
    // candidate is screened at initialization before its budget is spent.
    let (candidates, range_tests) = rates_from_lr_find(candidates, spec, original.data, device)?;
    let (mut candidates, screened) = screen(
        candidates,
        spec,
        original.data,
        device,
        original.start.is_some(),
    )?;
    // An imported model keeps what it learned: recycling its dead and dormant units in place
    // (ReDo) is the first remedy to try when they are what the doctor found.
    if imported.is_some() && !nothing_to_fix {
        let units_found = original
            .diagnosis
            .at_least(Severity::Warning)
            .any(|f| f.code == "dead-units" || f.code == "dormant-units");
        if units_found {
            candidates.insert(
                0,
                Candidate {
                    label: "revive dead and dormant units".into(),
                    changes: Vec::new(),
                    why: "recycle dead and dormant units of the imported weights (ReDo, Sokar et al. 2023) and train on".into(),
                    from: "dead-units".into(),
                    revive: true,
                },
            );
        }
    }
    if imported.is_some() && original.data.test.rows == 0 && !candidates.is_empty() {
        return Err(RemedyError::NoHeldOutRows {
            data: spec
                .data
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| original.data.name.clone()),
        });
    }
    // An imported model has no training to take metrics from: its baseline is re-trained on
    // every seed.
    let retrain_original = options.retrain_original || imported.is_some();
    let mut original_metrics = if retrain_original {
        SeedMetrics {
            seeds: Vec::new(),
            primary: Vec::new(),
            train_loss: Vec::new(),
        }
    } else {
        SeedMetrics::of_history(seeds[0], &base_metrics)
    };
    let retrained_seeds = if retrain_original {
        &seeds[..]
    } else {
        &seeds[1..]
    };
    let dir = fix_dir(original.dir);
    // Where the runs go: a temporary directory, moved into place when everything is judged;
    // for a submission without waiting, the fix directory itself (its tasks outlive this
    // process); for a collection, the directory that submission made.
    let (pending, root) = if candidates.is_empty() {
        (None, None)
    } else {
        match options.launch {
            Launch::Wait => {
                let pending = PendingRun::create(&dir, options.force)?;
                let root = pending.dir().to_path_buf();
                (Some(pending), Some(root))
            }
            Launch::Submit => {
                if !matches!(options.executor, Executor::Slurm { .. }) {
                    return Err(nd_executor::ExecError::NeedsScheduler { what: "--no-wait" }.into());
                }
                // Made only when everything is planned, just before the submission.
                (None, Some(dir.clone()))
            }
            Launch::Collect { .. } => {
                if !nd_executor::Submitted::file(&dir.join(nd_train::JOBS_DIR)).is_file() {
                    return Err(RemedyError::NothingSubmitted { dir });
                }
                (None, Some(dir.clone()))
            }
        }
    };
    // With a budget, successive halving picks the candidates that get the full runs.
    let mut pruned = Vec::new();
    let mut budget_spent = None;
    let candidates = match (options.budget, &root) {
        (Some(budget), Some(root)) => {
            if options.launch != Launch::Wait {
                return Err(RemedyError::BudgetNotWaiting);
            }
            let halved = halve(
                candidates,
                &Halving {
                    budget,
                    keep: options.candidates.max(1),
                    seeds: seeds.len(),
                    baseline_runs: retrained_seeds.len(),
                    regression,
                },
                original,
                root,
                options,
                device,
                observer,
            )?;
            pruned = halved.pruned;
            budget_spent = Some(halved.spent);
            halved.kept
        }
        _ => candidates,
    };
    // Every training is one job: the original's other seeds (for an imported model, its
    // weights trained on under the recipe: the baseline) and each candidate on every seed. The
    // executor runs them, here or in other processes or on a cluster, and each writes a run
    // directory: `<slug>` for a candidate's own seed, `<slug>@seed-N` for the others,
    // `original@seed-N` for the original's.
    let mut jobs = Vec::new();
    let mut planned = Vec::new();
    if let Some(root) = &root {
        for &seed in retrained_seeds {
            let label = match imported {
                Some(_) => format!("imported, trained on, seed {seed}"),
                None => format!("original seed {seed}"),
            };
            jobs.push(
                Job::new(
                    label,
                    with_seed(spec, seed)?,
                    root.join(format!("original@seed-{seed}")),
                )
                .starting_from(imported.cloned()),
            );
        }
        let mut slugs = vec!["original".to_string()];
        for candidate in candidates {
            let (start, changed) = plan_candidate(&candidate, spec, imported.is_some())?;
            // Two candidates whose names clean up the same get their own directories.
            let slug = candidate.unique_slug(&mut slugs);
            for (k, &seed) in seeds.iter().enumerate() {
                let s = with_seed(&changed, seed)?;
                let out = if k == 0 {
                    root.join(&slug)
                } else {
                    root.join(format!("{slug}@seed-{seed}"))
                };
                jobs.push(
                    Job::new(format!("{} seed {seed}", candidate.label), s.clone(), out)
                        .starting_from(start_of(start, &s, original, seed, device)?),
                );
            }
            planned.push((candidate, start, changed, slug));
        }
    }
    let results = match &root {
        None => Vec::new(),
        Some(root) => {
            let work = root.join(nd_train::JOBS_DIR);
            match options.launch {
                Launch::Wait => {
                    options
                        .executor
                        .run(jobs, original.data, device, &work, observer)?
                }
                Launch::Collect { retry_failed } => {
                    options
                        .executor
                        .collect(&jobs, &work, retry_failed, observer)?
                }
                Launch::Submit => {
                    // The tasks outlive this process, so they write into the fix directory
                    // itself: made (replacing an old one only with --force) once the jobs
                    // are planned and Slurm's commands are there.
                    nd_executor::check_slurm()?;
                    PendingRun::create(&dir, options.force)?.commit()?;
                    let submitted = match options.executor.submit(&jobs, &work) {
                        Ok(submitted) => submitted,
                        Err(e) => {
                            // Nothing was submitted: the directory made for it goes.
                            let _ = std::fs::remove_dir_all(root);
                            return Err(e.into());
                        }
                    };
                    return Ok(FixReport {
                        run: original.dir.display().to_string(),
                        dir: Some(root.display().to_string()),
                        metric: metric_name(regression),
                        nothing_to_fix,
                        original: Outcome::of(original, original_metrics),
                        candidates: Vec::new(),
                        best: None,
                        fixed_spec: None,
                        seconds: start.elapsed().as_secs_f64(),
                        imported_metric: None,
                        screened,
                        failed: Vec::new(),
                        executor: options.executor.describe(),
                        pruned,
                        budget_spent,
                        range_tests,
                        submitted: Some(submitted),
                    });
                }
            }
        }
    };
    let mut results = results.into_iter();
    let mut failed = Vec::new();
    // The original with the other seeds: the noise floor every gain must beat. For an imported
    // model, the baseline: its weights trained on under the recipe. Without it nothing can be
    // judged, so a failure here ends the fix.
    let mut baseline_diagnosis = None;
    for &seed in if root.is_some() { retrained_seeds } else { &[] } {
        let path = results
            .next()
            .expect("one result per job")
            .map_err(|mut f| {
                // A waiting fix's directory goes with the error, its logs too: the message
                // keeps the log's last error line.
                if pending.is_some() {
                    f.log = None;
                }
                RemedyError::Baseline(Box::new(f))
            })?;
        let run = nd_train::Run::open(&path)?;
        let trained = run.trained(original.data, device)?;
        push_metrics(&mut original_metrics, seed, &trained);
        if imported.is_some() && baseline_diagnosis.is_none() {
            // Its start is the imported weights, not an initialization: the checks of the
            // network as born do not apply.
            baseline_diagnosis = Some(diagnose_networks(
                &format!("{} (trained on)", original.dir.display()),
                &run.spec,
                original.data,
                None,
                &trained.network,
                &trained.metrics,
                &options.diagnose,
                device,
            ));
        }
    }
    let original_outcome = match &baseline_diagnosis {
        Some(d) => Outcome::of_diagnosis(
            original.dir.display().to_string(),
            d,
            original_metrics,
            original.train_seconds,
        ),
        None => Outcome::of(original, original_metrics),
    };
    let mut judged = Vec::new();
    for (candidate, start, changed, slug) in planned {
        let mut metrics = SeedMetrics {
            seeds: Vec::new(),
            primary: Vec::new(),
            train_loss: Vec::new(),
        };
        let mut main: Option<Trained> = None;
        let mut candidate_failed = false;
        for &seed in &seeds {
            match results.next().expect("one result per job") {
                Ok(path) => {
                    let trained = nd_train::Run::open(&path)?.trained(original.data, device)?;
                    push_metrics(&mut metrics, seed, &trained);
                    if main.is_none() {
                        main = Some(trained);
                    }
                }
                Err(failure) => {
                    tracing::info!(%failure, "a candidate's training failed");
                    failed.push(failure);
                    candidate_failed = true;
                }
            }
        }
        // A candidate missing a paired seed cannot be judged against the original's.
        let Some(trained) = main.filter(|_| !candidate_failed) else {
            continue;
        };
        let label = dir.join(&slug).display().to_string();
        let diagnosis = diagnose_networks(
            &label,
            &changed,
            original.data,
            (start == Start::Scratch).then_some(&trained.initial),
            &trained.network,
            &trained.metrics,
            &options.diagnose,
            device,
        );
        let outcome = Outcome::of_diagnosis(label, &diagnosis, metrics, trained.seconds);
        let mut j = judge(candidate, outcome, &original_outcome, regression);
        j.start = start;
        judged.push(j);
    }
    let best = recommend(&judged);
    // The recommended spec under a name of its own, so that training it as written does not
    // collide with the original run.
    let fixed_spec = best
        .map(|i| -> Result<String, RemedyError> {
            let mut fixed = judged[i].candidate.apply(spec)?.into_inner();
            fixed.name = fixed_name(&spec.name);
            Ok(fixed.check()?.to_toml())
        })
        .transpose()?;
    let mut dir_out = None;
    if let Some(root) = &root {
        let fixed_path = root.join(nd_train::FIXED_SPEC_FILE);
        match &fixed_spec {
            Some(text) => {
                std::fs::write(&fixed_path, text).map_err(|e| nd_train::TrainError::Io {
                    path: dir.join(nd_train::FIXED_SPEC_FILE),
                    source: e,
                })?
            }
            // A collection judged again may have nothing to recommend any more.
            None => {
                let _ = std::fs::remove_file(&fixed_path);
            }
        }
        let committed = match pending {
            Some(pending) => pending.commit()?,
            None => root.clone(),
        };
        relocate_logs(&mut failed, root, &committed);
        dir_out = Some(committed.display().to_string());
    }
    Ok(FixReport {
        run: original.dir.display().to_string(),
        dir: dir_out,
        metric: metric_name(regression),
        nothing_to_fix,
        original: original_outcome,
        candidates: judged,
        best,
        fixed_spec,
        seconds: start.elapsed().as_secs_f64(),
        imported_metric: imported
            .is_some()
            .then(|| base_metrics.as_ref().map(EpochMetrics::primary))
            .flatten(),
        screened,
        failed,
        executor: options.executor.describe(),
        pruned,
        budget_spent,
        range_tests,
        submitted: None,
    })
}

/// The candidate to recommend: the best verdict (improved at least); among those, every
/// candidate whose gain is within the noise of the largest (its margin) counts as just as good,
/// and of those the healthiest wins: the fewest dead and saturated units, then the larger gain.
/// Two remedies that both lift accuracy by 58 points are not told apart by their third
/// decimal; one that leaves a third of a layer dead is the worse cure.
pub fn recommend(judged: &[Judged]) -> Option<usize> {
    let verdict = judged
        .iter()
        .map(|j| j.verdict)
        .filter(|v| *v >= Verdict::Improved)
        .max()?;
    let top = || {
        judged
            .iter()
            .enumerate()
            .filter(move |(_, j)| j.verdict == verdict)
    };
    let (_, leader) = top().max_by(|(_, a), (_, b)| a.gain.total_cmp(&b.gain))?;
    let floor = leader.gain - leader.margin;
    let sick = |j: &Judged| {
        j.outcome
            .layers
            .iter()
            .map(|l| l.dead_fraction.max(l.saturated_fraction))
            .sum::<f64>()
    };
    top()
        .filter(|(_, j)| j.gain >= floor)
        .min_by(|(_, a), (_, b)| sick(a).total_cmp(&sick(b)).then(b.gain.total_cmp(&a.gain)))
        .map(|(i, _)| i)
}

/// The name of the recommended spec: the original's with `-fixed` (once).
fn fixed_name(name: &str) -> String {
    if name.ends_with("-fixed") {
        name.to_string()
    } else {
        format!("{name}-fixed")
    }
}

fn push_metrics(m: &mut SeedMetrics, seed: u64, trained: &Trained) {
    let last = trained.metrics.last();
    m.seeds.push(seed);
    m.primary
        .push(last.map(EpochMetrics::primary).unwrap_or(f64::NAN));
    m.train_loss
        .push(last.map(|l| l.train_loss).unwrap_or(f64::NAN));
}

/// The smallest change in the primary metric that counts, whatever the noise: 1 accuracy
/// point, or 5% of the original's MSE.
fn minimum_gain(original: &SeedMetrics, regression: bool) -> f64 {
    if regression {
        0.05 * original.mean().abs()
    } else {
        0.01
    }
}

/// Judges a candidate against the original with paired seeds.
///
/// Seed `i` of the candidate is compared with seed `i` of the original (same data, same split,
/// same budget). The gain is the mean paired difference of the primary metric (sign flipped for
/// MSE, so positive is better). It is *clear* when the candidate wins on every paired seed and
/// the gain beats the margin: the larger of `minimum_gain` (1 accuracy point, or 5% of the MSE) and twice the standard error of
/// the paired differences (roughly a one-sided paired t-test; with one seed, three times the
/// minimum).
pub fn judge(
    candidate: Candidate,
    outcome: Outcome,
    original: &Outcome,
    regression: bool,
) -> Judged {
    let sign = if regression { -1.0 } else { 1.0 };
    let a = &original.metrics;
    let b = &outcome.metrics;
    let pairs = a.primary.len().min(b.primary.len());
    let better = |x: f64, y: f64| if regression { x < y } else { x > y };
    let sanitize = |x: f64| {
        if x.is_finite() {
            x
        } else if regression {
            f64::INFINITY
        } else {
            0.0
        }
    };
    let wins = (0..pairs)
        .filter(|&i| better(sanitize(b.primary[i]), sanitize(a.primary[i])))
        .count();
    let losses = (0..pairs)
        .filter(|&i| better(sanitize(a.primary[i]), sanitize(b.primary[i])))
        .count();
    let mean = |m: &SeedMetrics| {
        m.primary.iter().map(|x| sanitize(*x)).sum::<f64>() / m.primary.len().max(1) as f64
    };
    let gain = sign * (mean(b) - mean(a));
    // Paired seeds: the per-seed differences' spread is the noise floor.
    let diffs: Vec<f64> = (0..pairs)
        .map(|i| sign * (sanitize(b.primary[i]) - sanitize(a.primary[i])))
        .filter(|d| d.is_finite())
        .collect();
    let margin = if diffs.len() >= 2 {
        let n = diffs.len() as f64;
        let mean_diff = diffs.iter().sum::<f64>() / n;
        let sd = (diffs.iter().map(|d| (d - mean_diff).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        minimum_gain(a, regression).max(2.0 * sd / n.sqrt())
    } else {
        // One seed gives no noise estimate: demand three times the minimum.
        3.0 * minimum_gain(a, regression)
    };
    let gain = if gain.is_finite() {
        gain
    } else if gain > 0.0 {
        f64::MAX
    } else {
        f64::MIN
    };
    let clearly_better = gain > margin && wins == pairs;
    let clearly_worse = -gain > margin && losses == pairs;
    let verdict = if clearly_better && outcome.errors() == 0 {
        Verdict::Cured
    } else if clearly_better
        || (outcome.errors() < original.errors() && !clearly_worse && gain >= 0.0)
    {
        Verdict::Improved
    } else if clearly_worse {
        Verdict::Worse
    } else {
        Verdict::NoBetter
    };
    Judged {
        candidate,
        outcome,
        verdict,
        gain,
        margin,
        wins,
        start: Start::Scratch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(verdict: Verdict, gain: f64, margin: f64, dead: f64) -> Judged {
        Judged {
            candidate: Candidate::parse("model.activation=tanh").unwrap(),
            outcome: Outcome {
                run: String::new(),
                metrics: SeedMetrics {
                    seeds: vec![1],
                    primary: vec![0.9],
                    train_loss: vec![0.1],
                },
                dead_fraction: dead,
                layers: vec![LayerHealth {
                    name: "hidden.0".into(),
                    dead_fraction: dead,
                    dormant_fraction: dead,
                    saturated_fraction: 0.0,
                }],
                gradient_ratio: None,
                findings: Vec::new(),
                train_seconds: 1.0,
            },
            verdict,
            gain,
            margin,
            wins: 1,
            start: Start::Scratch,
        }
    }

    #[test]
    fn learning_rate_remedies_take_the_range_tests_rate_and_hand_given_ones_stay() {
        let spec = Spec::from_toml_str(
            "[data]\ndataset = \"digits\"\n[model]\nhidden = [32]\n[train]\nlearning_rate = 0.5\nepochs = 2\nbackend = \"ndarray\"\n",
            "t",
        )
        .unwrap()
        .check()
        .unwrap();
        let data = nd_data::load(&spec.data, Path::new(".")).unwrap();
        let device = nd_train::device(nd_spec::Backend::Ndarray).unwrap();
        let rule = Candidate {
            label: "train.learning_rate=0.001".into(),
            changes: vec![("train.learning_rate".into(), "0.001".into())],
            why: "smaller steps".into(),
            from: "dead-units".into(),
            revive: false,
        };
        let by_hand = Candidate::parse("train.learning_rate=0.003").unwrap();
        let (out, tests) = rates_from_lr_find(vec![rule, by_hand], &spec, &data, &device).unwrap();
        // The rule's candidate was set by a range test, whose curve is kept; the hand-given
        // rate was not.
        assert_eq!(tests.len(), 1);
        assert_eq!(tests[0].candidate, out[0].label);
        assert!(tests[0].curve.points.len() > 10);
        let curve =
            nd_train::lr_find(&spec, &data, &device, &nd_train::LrFindOptions::default()).unwrap();
        let suggested = curve.suggested.expect("digits has a falling loss");
        let expected = format!("{suggested:.1e}")
            .parse::<f64>()
            .unwrap()
            .to_string();
        assert_eq!(
            out[0].changes,
            [("train.learning_rate".to_string(), expected.clone())]
        );
        assert_eq!(out[0].label, format!("train.learning_rate={expected}"));
        assert!(out[0].why.contains("lr-find"), "{}", out[0].why);
        assert_eq!(out[1].changes[0].1, "0.003");
    }

    #[test]
    fn a_list_value_s_commas_do_not_split_the_changes() {
        let c = Candidate::parse("model.hidden=[32, 32,32], model.activation=elu").unwrap();
        assert_eq!(
            c.changes,
            [
                ("model.hidden".to_string(), "[32, 32,32]".to_string()),
                ("model.activation".to_string(), "elu".to_string())
            ]
        );
    }

    #[test]
    fn a_candidate_born_sick_gets_its_companion_change_or_is_dropped() {
        let spec = Spec::from_toml_str(
            "[data]\ndataset = \"digits\"\n[model]\nhidden = [32, 32]\nbias_init = -10.0\n[train]\nepochs = 1\nbackend = \"ndarray\"\n",
            "t",
        )
        .unwrap()
        .check()
        .unwrap();
        let data = nd_data::load(&spec.data, Path::new(".")).unwrap();
        let device = nd_train::device(nd_spec::Backend::Ndarray).unwrap();
        let why = sick_at_init(&spec, &data, &device).unwrap();
        assert!(
            why.as_deref()
                .is_some_and(|w| w.contains("relu with bias -10 is born dead")),
            "{why:?}"
        );
        let leaky = Candidate {
            from: "dead-units".into(),
            ..Candidate::parse("model.activation=leaky_relu").unwrap()
        };
        let reset = Candidate {
            from: "dead-units".into(),
            ..Candidate::parse("model.bias_init=0.0").unwrap()
        };
        let (kept, screened) =
            screen(vec![leaky, reset.clone()], &spec, &data, &device, false).unwrap();
        // Leaky ReLU with the bias kept is born dead too: it comes with a zero bias.
        assert_eq!(screened.len(), 1, "{screened:?}");
        assert_eq!(
            screened[0].added,
            [("model.bias_init".to_string(), "0.0".to_string())]
        );
        assert_eq!(
            kept[0].label,
            "model.activation=leaky_relu, model.bias_init=0.0"
        );
        assert!(
            kept[0].why.contains("screened at initialization"),
            "{}",
            kept[0].why
        );
        // The bias reset is healthy at birth and passes as it is.
        assert_eq!(kept[1], reset);
    }

    #[test]
    fn the_healthiest_of_cures_within_noise_is_recommended() {
        // The demo's case: two cures 0.576 up, one leaving 34% of its units dead.
        let all = [
            judged(Verdict::Cured, 0.5761, 0.03, 0.34),
            judged(Verdict::Cured, 0.5759, 0.03, 0.0),
            judged(Verdict::Cured, 0.50, 0.03, 0.0),
        ];
        assert_eq!(recommend(&all), Some(1));
        // A clearly larger gain wins whatever its health.
        let all = [
            judged(Verdict::Cured, 0.70, 0.03, 0.34),
            judged(Verdict::Cured, 0.50, 0.03, 0.0),
        ];
        assert_eq!(recommend(&all), Some(0));
        // A better verdict beats a healthier one; nothing below improved is recommended.
        let all = [
            judged(Verdict::Improved, 0.60, 0.03, 0.0),
            judged(Verdict::Cured, 0.55, 0.03, 0.30),
            judged(Verdict::Worse, 0.0, 0.03, 0.0),
        ];
        assert_eq!(recommend(&all), Some(1));
        assert_eq!(
            recommend(&[judged(Verdict::NoBetter, 0.0, 0.03, 0.0)]),
            None
        );
    }
}
