//! ReDo (Sokar et al. 2023): recycle dead and dormant units in a trained network instead of
//! re-training from scratch. Each recycled unit gets fresh incoming weights drawn from the
//! spec's initializer and a zero bias, and its outgoing weights are zeroed so the network's
//! function is unchanged at the moment of recycling; then training continues for a short budget.

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use nd_models::{LayerKind, LayerParams, Network};
use nd_spec::Task;
use serde::{Deserialize, Serialize};

use crate::diagnosis::diagnose_networks;
use crate::fix::{judge, Candidate, FixObserver, FixReport, Original, Outcome, SeedMetrics};
use crate::RemedyError;

/// What recycling did and cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviveInfo {
    /// Units recycled per layer.
    pub recycled: Vec<(String, usize)>,
    /// Conv layers with dormant units that were left alone (only dense layers are recycled).
    pub skipped_conv: Vec<String>,
    /// Epochs of continued training.
    pub epochs: usize,
    /// Wall time of the continued training.
    pub seconds: f64,
    /// Wall time of the original full training, for comparison.
    pub full_train_seconds: f64,
}

/// What [`revive`] gives back.
#[derive(Debug, Clone)]
pub struct Revived {
    /// The revived network judged against the original, as `fix` reports a candidate.
    pub report: FixReport,
    /// What recycling did and cost.
    pub info: ReviveInfo,
    /// The revived network's diagnosis (as born: the run's initial weights).
    pub diagnosis: crate::Diagnosis,
}

/// Recycles the dormant units of `trained` (dormant by the spec's `doctor.dormant_tau`, which
/// includes dead units) and trains `epochs` more epochs.
///
/// `initial` is the original run's network as born: the revived network descends from it, so
/// its diagnosis' born-dead and init-scale findings are about those weights. `options` are the
/// ones the original was diagnosed with, so that both are measured alike.
#[allow(clippy::too_many_arguments)]
pub fn revive(
    original: &Original,
    initial: Option<&Network>,
    trained: &Network,
    epochs: usize,
    options: &crate::DiagnoseOptions,
    device: &Device,
    observer: &mut dyn FixObserver,
) -> Result<Revived, RemedyError> {
    let start = Instant::now();
    let spec = original.spec;
    let Recycled {
        network,
        recycled,
        skipped_conv,
    } = recycle(
        original.spec,
        original.data,
        &original.diagnosis.probe,
        trained,
        spec.train.seed,
        device,
    )?;
    let label = format!(
        "revive {} units, +{epochs} epochs",
        recycled.iter().map(|(_, n)| n).sum::<usize>()
    );
    let mut progress = observer.training(&label);
    let t0 = Instant::now();
    let continued = nd_train::fit(
        network,
        spec,
        original.data,
        device,
        epochs,
        progress.as_mut(),
    )?;
    let seconds = t0.elapsed().as_secs_f64();
    drop(progress);
    let diagnosis = diagnose_networks(
        &label,
        spec,
        original.data,
        initial,
        &continued.network,
        &continued.metrics,
        options,
        device,
    );
    let last = continued.metrics.last();
    let metrics = SeedMetrics {
        seeds: vec![spec.train.seed],
        primary: vec![last.map(|m| m.primary()).unwrap_or(f64::NAN)],
        train_loss: vec![last.map(|m| m.train_loss).unwrap_or(f64::NAN)],
    };
    let original_outcome = Outcome::of(
        original,
        SeedMetrics::of_history(spec.train.seed, &original.diagnosis.metrics),
    );
    let outcome = Outcome::of_diagnosis(label.clone(), &diagnosis, metrics, seconds);
    let candidate = Candidate {
        label: label.clone(),
        changes: Vec::new(),
        why: "recycle dead and dormant units (ReDo) and keep training".into(),
        from: "dormant-units".into(),
        revive: false,
    };
    let judged = judge(
        candidate,
        outcome,
        &original_outcome,
        spec.task() == Task::Regression,
    );
    let cured = judged.verdict >= crate::fix::Verdict::Improved;
    let report = FixReport {
        run: original.dir.display().to_string(),
        dir: None,
        metric: if spec.task() == Task::Regression {
            "test_mse".into()
        } else {
            "test_accuracy".into()
        },
        nothing_to_fix: false,
        original: original_outcome,
        candidates: vec![judged],
        best: cured.then_some(0),
        fixed_spec: None,
        seconds: start.elapsed().as_secs_f64(),
        imported_metric: None,
        screened: Vec::new(),
        failed: Vec::new(),
        executor: "in-process".into(),
        pruned: Vec::new(),
        budget_spent: None,
        range_tests: Vec::new(),
        submitted: None,
    };
    let info = ReviveInfo {
        recycled,
        skipped_conv,
        epochs,
        seconds,
        full_train_seconds: original.train_seconds,
    };
    Ok(Revived {
        report,
        info,
        diagnosis,
    })
}

/// A network with its dormant units recycled.
#[derive(Debug, Clone)]
pub struct Recycled {
    /// The network, its function unchanged at this moment.
    pub network: Network,
    /// Units recycled per layer.
    pub recycled: Vec<(String, usize)>,
    /// Layers with dormant units left alone (conv layers, and layers feeding a conv).
    pub skipped_conv: Vec<String>,
}

/// ReDo's step: every dense unit `probe` finds dormant (by the spec's `doctor.dormant_tau`,
/// dead units included) gets fresh incoming weights from the spec's initializer drawn with
/// `seed`, a zero bias and zeroed outgoing weights, so that the network computes what it
/// computed before while the unit can learn again.
pub fn recycle(
    spec: &nd_spec::CheckedSpec,
    data: &nd_data::Dataset,
    probe: &nd_probe::Probe,
    trained: &Network,
    seed: u64,
    device: &Device,
) -> Result<Recycled, RemedyError> {
    let tau = spec.doctor.dormant_tau;
    // Fresh weights for recycled units come from a network initialized with another seed.
    let fresh = nd_train::init_network_with_seed(spec, data, seed.wrapping_add(0x2ed0), device)?;
    let fresh_params = fresh.layer_params();
    let mut network = trained.clone();
    let mut params = network.layer_params();
    let mut recycled = Vec::new();
    let mut skipped_conv = Vec::new();
    let layers = network.layers().to_vec();
    for (i, site) in probe.sites.iter().enumerate() {
        let units = site.dormant_units(tau);
        if units.is_empty() {
            continue;
        }
        if layers[i].kind == LayerKind::Conv {
            skipped_conv.push(site.name.clone());
            continue;
        }
        let next_is_dense = layers.get(i + 1).is_some_and(|l| l.kind != LayerKind::Conv);
        if !next_is_dense {
            skipped_conv.push(site.name.clone());
            continue;
        }
        let mut incoming = host(&params[i].weight);
        let fresh_in = host(&fresh_params[i].weight);
        let width = layers[i].units;
        let mut bias = params[i].bias.as_ref().map(host1).unwrap_or_default();
        let mut outgoing = host(&params[i + 1].weight);
        let next_width = layers[i + 1].units;
        for &u in &units {
            for row in 0..layers[i].fan_in {
                incoming[row * width + u] = fresh_in[row * width + u];
            }
            if let Some(b) = bias.get_mut(u) {
                *b = 0.0;
            }
            for col in 0..next_width {
                outgoing[u * next_width + col] = 0.0;
            }
        }
        params[i] = LayerParams {
            weight: tensor2(incoming, params[i].weight.dims(), device),
            bias: params[i]
                .bias
                .as_ref()
                .map(|b| tensor1(bias.clone(), b.dims()[0], device)),
        };
        params[i + 1] = LayerParams {
            weight: tensor2(outgoing, params[i + 1].weight.dims(), device),
            bias: params[i + 1].bias.clone(),
        };
        recycled.push((site.name.clone(), units.len()));
    }
    for (i, p) in params.into_iter().enumerate() {
        if recycled.iter().any(|(name, _)| layers[i].name == *name)
            || (i > 0 && recycled.iter().any(|(name, _)| layers[i - 1].name == *name))
        {
            network = network.with_layer_params(i, p);
        }
    }
    Ok(Recycled {
        network,
        recycled,
        skipped_conv,
    })
}

fn host(t: &Tensor<2>) -> Vec<f32> {
    nd_probe::host_values(t.clone())
}

fn host1(t: &Tensor<1>) -> Vec<f32> {
    nd_probe::host_values(t.clone())
}

fn tensor2(values: Vec<f32>, dims: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, dims), device)
}

fn tensor1(values: Vec<f32>, len: usize, device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(values, [len]), device)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use nd_probe::ProbeOptions;
    use nd_spec::{Backend, Spec};

    use super::*;
    use crate::{DiagnoseOptions, SplitName};

    struct Quiet;
    impl FixObserver for Quiet {
        fn training(&mut self, _label: &str) -> Box<dyn nd_train::Observer + '_> {
            Box::new(nd_train::Quiet)
        }
    }

    #[test]
    fn the_revived_network_is_diagnosed_from_the_runs_initial_weights_with_its_options() {
        let spec = Spec::from_toml_str(
            "[data]\ndataset = \"digits\"\n[model]\nhidden = [32, 32]\n[train]\nlearning_rate = 0.1\nepochs = 3\n",
            "t",
        )
        .unwrap()
        .check()
        .unwrap();
        let data = nd_data::load(&spec.data, Path::new(".")).unwrap();
        let device = nd_train::device(Backend::Ndarray).unwrap();
        let trained = nd_train::train(&spec, &data, &device, &mut nd_train::Quiet).unwrap();
        // Not the defaults: the test split, 100 rows, a 64-row gradient batch.
        let options = DiagnoseOptions {
            split: SplitName::Test,
            probe: ProbeOptions {
                limit: Some(100),
                grad_batch: 64,
            },
            thresholds: None,
        };
        let diagnosis = diagnose_networks(
            "t",
            &spec,
            &data,
            Some(&trained.initial),
            &trained.network,
            &trained.metrics,
            &options,
            &device,
        );
        let original = Original {
            dir: Path::new("t"),
            spec: &spec,
            data: &data,
            diagnosis: &diagnosis,
            train_seconds: 1.0,
            start: None,
        };
        let revived = revive(
            &original,
            Some(&trained.initial),
            &trained.network,
            1,
            &options,
            &device,
            &mut Quiet,
        )
        .unwrap();
        // Born from the run's own weights, measured as the original was.
        assert_eq!(revived.diagnosis.initial_probe, diagnosis.initial_probe);
        assert_eq!(revived.diagnosis.data.split, SplitName::Test);
        assert_eq!(revived.diagnosis.data.samples, 100);
    }
}
