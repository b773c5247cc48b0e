//! `neuron-doctor import`: a model trained elsewhere (ONNX, SafeTensors, a PyTorch state_dict)
//! and the data it was trained on, as a run the rest of the tool understands. The same flags
//! let `diagnose` and `checkup` take a model file directly.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use nd_data::Dataset;
use nd_import::{ImportOptions, Imported};
use nd_models::Network;
use nd_spec::{
    Activation, Backend, CheckedSpec, DataSpec, ModelKind, Optimizer, OutputActivation, Spec, Task,
    TrainSpec,
};
use nd_train::{EpochMetrics, PendingRun};

/// How to read a model file and its data, and the recipe `fix` trains it on with.
#[derive(Debug, Clone, Default, Args)]
pub struct ImportFlags {
    /// The data the model was trained on: CSV or CSV.gz with the feature columns, then `label`
    /// (classification) or `target` (regression), and an optional `is_test` column (1 for
    /// held-out rows; without it every row is a training row).
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// The target column, when it is neither `label` nor `target`.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// classification | regression, when the target column's name does not say.
    #[arg(long, value_name = "TASK")]
    pub task: Option<Task>,
    /// Standardize the features (fitted on the train rows). Off by default: the model's own
    /// preprocessing is already in the file.
    #[arg(long)]
    pub standardize: bool,
    /// SafeTensors / state_dict only: the activation after every hidden layer, which such files
    /// do not record (default relu).
    #[arg(long, value_name = "NAME")]
    pub activation: Option<Activation>,
    /// SafeTensors / state_dict only: the activation on the output (default none).
    #[arg(long, value_name = "NAME")]
    pub output_activation: Option<OutputActivation>,
    /// A spec (TOML) whose `[model]` states the architecture (checked against the file's
    /// shapes) and activations, whose `[train]` is the recipe for `fix`, and (for a state_dict
    /// with named layers, `fc1.weight` rather than `0.weight`) whose `[source] layers` lists
    /// the module names in forward order.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
}

/// The recipe `fix` trains an imported model's weights on (flags over `--spec`'s `[train]`).
#[derive(Debug, Clone, Default, Args)]
pub struct RecipeFlags {
    /// Recipe: epochs `fix` trains the imported weights on (default 10).
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Recipe: learning rate (default 0.001).
    #[arg(long, value_name = "LR")]
    pub learning_rate: Option<f64>,
    /// Recipe: optimizer, adam or sgd (default adam).
    #[arg(long, value_name = "NAME")]
    pub optimizer: Option<Optimizer>,
    /// Recipe: batch size (default 64).
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Recipe: seed of the batch order (default 42).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Compute on this backend (ndarray | flex | wgpu; default flex).
    #[arg(long, value_name = "NAME")]
    pub backend: Option<Backend>,
}

/// Epochs of the default recipe: a short budget, since the weights are already trained.
pub const DEFAULT_RECIPE_EPOCHS: usize = 10;

/// An imported model, ready for the rest of the tool.
pub struct Loaded {
    /// The run's spec, with its `[source]`.
    pub spec: CheckedSpec,
    /// The user's data.
    pub data: Dataset,
    /// The imported weights.
    pub network: Network,
    /// What the model measures on the data as imported.
    pub measured: EpochMetrics,
    /// The file read.
    pub imported: Imported,
}

/// Reads `model` and the flags' data into a checked spec, the data, the network and its
/// measured metrics. Nothing is written.
pub fn load(model: &Path, flags: &ImportFlags, recipe: &RecipeFlags) -> anyhow::Result<Loaded> {
    let data_path = flags.data.as_deref().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: a model file needs the data it was trained on: give --data FILE.csv",
            model.display()
        )
    })?;
    let user_spec = flags
        .spec
        .as_deref()
        .map(|p| -> anyhow::Result<CheckedSpec> {
            Ok(Spec::from_file(p)?.check().map_err(|e| e.in_file(p))?)
        })
        .transpose()?;
    let columns = nd_data::csv_columns(data_path)?;
    let (target, task) = target_and_task(&columns, flags, data_path)?;
    let features = columns
        .iter()
        .filter(|c| **c != target && c.as_str() != "is_test")
        .count();
    let (activation, output_activation) = match &user_spec {
        Some(s) => (
            Some((s.model.activation, s.model.leaky_slope)),
            Some(s.model.output_activation),
        ),
        None => (flags.activation.map(|a| (a, 0.01)), flags.output_activation),
    };
    let imported = nd_import::import(
        model,
        &ImportOptions {
            activation,
            output_activation,
            layer_order: user_spec
                .as_ref()
                .and_then(|s| s.source.as_ref())
                .map(|s| s.layers.clone())
                .unwrap_or_default(),
            features: Some(features),
        },
    )?;
    if features != imported.lowered.inputs {
        anyhow::bail!(
            "{}: {features} feature columns, but {} takes {} inputs",
            data_path.display(),
            model.display(),
            imported.lowered.inputs
        );
    }
    let outputs = imported.lowered.outputs;
    if task == Task::Regression && outputs != 1 {
        anyhow::bail!(
            "{}: {outputs} outputs, but the target {target:?} is a single regression value",
            model.display()
        );
    }
    let data_spec = DataSpec {
        standardize: flags.standardize,
        ..DataSpec::imported(
            std::fs::canonicalize(data_path).unwrap_or_else(|_| data_path.to_path_buf()),
            &target,
            task,
            Some(outputs),
        )
    };
    let mut train = user_spec
        .as_ref()
        .map(|s| s.train.clone())
        .unwrap_or_else(|| TrainSpec {
            epochs: DEFAULT_RECIPE_EPOCHS,
            ..TrainSpec::default()
        });
    if let Some(epochs) = recipe.epochs {
        if epochs == 0 {
            anyhow::bail!("--epochs 0: the recipe needs at least 1 epoch");
        }
        train.epochs = epochs;
    }
    if let Some(lr) = recipe.learning_rate {
        train.learning_rate = lr;
    }
    if let Some(o) = recipe.optimizer {
        train.optimizer = o;
    }
    if let Some(b) = recipe.batch_size {
        train.batch_size = b;
    }
    if let Some(seed) = recipe.seed {
        train.seed = seed;
    }
    if let Some(b) = recipe.backend {
        train.backend = b;
    }
    let name = model
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("imported");
    let name = match model
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|p| p.to_str())
    {
        // `models/digits/model.onnx` is `digits`, not `model`.
        Some(parent) if name == "model" => parent.to_string(),
        _ => name.to_string(),
    };
    if let (Some(user), Some(path)) = (&user_spec, &flags.spec) {
        imported.check_spec(&user.model, path)?;
    }
    let mut spec = imported.spec(
        &name,
        data_spec,
        user_spec.as_ref().map(|s| &s.model),
        train,
        user_spec
            .as_ref()
            .map(|s| s.doctor.clone())
            .unwrap_or_default(),
    )?;
    // Where its candidates train travels with the run, as for a run trained here.
    if let Some(user) = &user_spec {
        spec.executor = user.executor.clone();
    }
    let spec = spec
        .check()
        .map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
    let data =
        crate::settings::load_data(&spec, &data_path.display().to_string()).map_err(|e| {
            match e.downcast_ref::<nd_data::DataError>() {
                // Said in the model's terms: its outputs are the classes.
                Some(nd_data::DataError::Invalid {
                    key: "data.classes",
                    reason,
                    ..
                }) => anyhow::anyhow!(
                    "{} (the classes are {}'s {outputs} outputs)",
                    reason.replace(" but there are ", ", outside the "),
                    model.display()
                ),
                _ => e,
            }
        })?;
    let device = nd_train::device(spec.train.backend)?;
    let network = imported.network(&spec, &device)?;
    let measured = nd_train::measure(&network, &data, &device);
    Ok(Loaded {
        spec,
        data,
        network,
        measured,
        imported,
    })
}

/// The target column and the task: `--target`/`--task` when given, else `label`
/// (classification) or `target` (regression) from the header.
fn target_and_task(
    columns: &[String],
    flags: &ImportFlags,
    data: &Path,
) -> anyhow::Result<(String, Task)> {
    let target = match &flags.target {
        Some(t) => t.clone(),
        None => ["label", "target"]
            .into_iter()
            .find(|name| columns.iter().any(|c| c == name))
            .map(str::to_string)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no `label` or `target` column; name the target with --target",
                    data.display()
                )
            })?,
    };
    if !columns.contains(&target) {
        anyhow::bail!("{}: no column named {target:?}", data.display());
    }
    let task = match (flags.task, target.as_str()) {
        (Some(task), _) => task,
        (None, "label") => Task::Classification,
        (None, "target") => Task::Regression,
        (None, other) => anyhow::bail!(
            "{}: is {other:?} a class label or a value? say --task classification or --task regression",
            data.display()
        ),
    };
    Ok((target, task))
}

/// `classification: train accuracy 97.1%, test accuracy 97.2%` or the MSEs.
pub fn describe_metrics(m: &EpochMetrics) -> String {
    let pct = |v: Option<f64>| match v {
        Some(v) if v.is_finite() => format!("{:.1}%", v * 100.0),
        _ => "not measured".into(),
    };
    if m.train_accuracy.is_some() {
        format!(
            "train accuracy {}, test accuracy {}",
            pct(m.train_accuracy),
            pct(m.test_accuracy)
        )
    } else {
        let mse = |v: f64| {
            if v.is_finite() {
                format!("{v:.4}")
            } else {
                "not measured".into()
            }
        };
        format!(
            "train MSE {}, test MSE {}",
            mse(m.train_loss),
            mse(m.test_mse.unwrap_or(f64::NAN))
        )
    }
}

/// One line on what was imported.
pub fn describe_model(loaded: &Loaded) -> String {
    let m = &loaded.spec.model;
    let shape = match m.kind {
        ModelKind::Mlp => format!("mlp {:?}", m.hidden),
        ModelKind::Cnn => format!("cnn {:?} + dense {:?}", m.hidden, m.dense),
    };
    let assumed = if loaded.imported.format.weights_only() {
        " (activations assumed: the file holds weights only)"
    } else {
        ""
    };
    format!(
        "{} ({}): {shape}, {} hidden, output {}{assumed}",
        loaded.imported.path.display(),
        loaded.imported.format.as_str(),
        m.activation,
        m.output_activation,
    )
}

/// Arguments of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The model file: .onnx, .safetensors, .pt or .pth (a state_dict).
    pub model: PathBuf,
    #[command(flatten)]
    pub flags: ImportFlags,
    #[command(flatten)]
    pub recipe: RecipeFlags,
    /// The run directory to write (default: runs/NAME).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace an existing run directory.
    #[arg(long)]
    pub force: bool,
}

/// Writes an imported model's run.
pub fn write_run(loaded: &Loaded, out: Option<PathBuf>, force: bool) -> anyhow::Result<PathBuf> {
    let out = crate::settings::run_dir(out, &loaded.spec)?;
    let pending = PendingRun::create(&out, force)?;
    pending.write_imported(
        &loaded.spec,
        &loaded.data,
        &loaded.network,
        &loaded.measured,
    )?;
    Ok(pending.commit()?)
}

/// Runs `import`.
pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    // Refuse an unusable --out before reading anything.
    if let Some(out) = &args.out {
        crate::cmd::fix::check_out_dir(out, args.force, "run")?;
    }
    let loaded = load(&args.model, &args.flags, &args.recipe)?;
    let dir = write_run(&loaded, args.out, args.force)?;
    println!("imported {}", describe_model(&loaded));
    println!(
        "measured on {} ({} train, {} test rows): {}",
        loaded.data.name,
        loaded.data.train.rows,
        loaded.data.test.rows,
        describe_metrics(&loaded.measured)
    );
    println!(
        "run saved to {} (diagnose it, or fix it with a {}-epoch recipe)",
        dir.display(),
        loaded.spec.train.epochs
    );
    Ok(ExitCode::SUCCESS)
}
