//! Datasets for neuron-doctor: what a spec's `[data]` section describes, loaded, split into
//! train and test, and scaled.
//!
//! [`load`] is the entry point. It returns a [`Dataset`]: two [`Split`]s of row-major `f32`
//! features with their [`Targets`] (class ids or real values), plus what a model needs to know
//! (feature count, class count, image shape). The sources are
//!
//! * seven builtin **real** datasets (`digits`, `iris`, `wine`, `breast-cancer`, `diabetes`,
//!   `mnist`, `fashion-mnist`), gzip'd CSV files embedded in the binary, each with its fixed
//!   split (see `fixtures/data/README.md` for provenance and licenses);
//! * two synthetic sets, `spirals` and `sine`, generated from a fixed seed;
//! * a user's `csv` file, plain or gzip'd, with a header row.
//!
//! Without an `is_test` column a file is split deterministically, as the shipped fixtures are:
//! classification takes the k-th row of each class (k from 0) as a test row iff `k % 5 == 4`;
//! regression sorts rows by `(target, row index)` and takes rank r iff `r % 5 == 4`.
//! Features are standardized with train statistics (`standardize`), regression targets when
//! `target_scale = "standardize"`. Every problem with a file is a [`DataError`] that names the
//! file, the line and the column.
//!
//! ```
//! let spec = nd_spec::Spec::from_toml_str(
//!     "[data]\ndataset = \"iris\"\n[model]\nhidden = [8]\n",
//!     "example",
//! )
//! .unwrap();
//! let iris = nd_data::load(&spec.data, std::path::Path::new(".")).unwrap();
//! assert_eq!((iris.train.rows, iris.test.rows), (120, 30));
//! assert_eq!((iris.n_features, iris.n_outputs()), (4, 3));
//! assert_eq!(iris.train.row(0).len(), 4);
//! ```

mod builtin;
mod error;
mod prepare;
mod synthetic;
mod table;

pub use error::DataError;

use nd_spec::{DataSpec, DatasetName, TargetScale, Task};
use std::path::Path;

/// A loaded dataset, split and scaled as its spec says.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The builtin or synthetic dataset's name (`digits`, `mnist`, ...), or a CSV file's stem.
    pub name: String,
    /// Classification or regression.
    pub task: Task,
    /// One name per feature column, in file order.
    pub feature_names: Vec<String>,
    /// `feature_names.len()`.
    pub n_features: usize,
    /// Classification: the number of classes (the largest label in either split, plus one);
    /// regression: 0.
    pub n_classes: usize,
    /// `[channels, height, width]` of image datasets (`digits` `[1, 8, 8]`, `mnist` and
    /// `fashion-mnist` `[1, 28, 28]`), whose features are the pixels row-major; `None` otherwise.
    pub image: Option<[usize; 3]>,
    /// The rows to train on.
    pub train: Split,
    /// The held-out rows.
    pub test: Split,
    /// Regression with `target_scale = "standardize"`: the `(mean, std)` fitted on train, so
    /// that `original = scaled * std + mean`.
    pub target_scaling: Option<(f32, f32)>,
}

impl Dataset {
    /// The model's output width: the class count, or 1 for regression.
    pub fn n_outputs(&self) -> usize {
        match self.task {
            Task::Classification => self.n_classes,
            Task::Regression => 1,
        }
    }
}

/// The train or the test rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// How many rows.
    pub rows: usize,
    /// Row-major, `rows x n_features`.
    pub features: Vec<f32>,
    /// One per row.
    pub targets: Targets,
}

impl Split {
    /// The features of one row.
    ///
    /// # Panics
    /// If `index >= rows`.
    pub fn row(&self, index: usize) -> &[f32] {
        let width = self.features.len() / self.rows.max(1);
        &self.features[index * width..(index + 1) * width]
    }
}

/// The targets of a split.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Classification: class ids, `0..n_classes`.
    Classes(Vec<usize>),
    /// Regression: real values, scaled if `target_scaling` is set.
    Values(Vec<f32>),
}

impl Targets {
    /// How many targets (= rows).
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes(labels) => labels.len(),
            Targets::Values(values) => values.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Loads what a `[data]` section describes. `base_dir` resolves a relative csv `path` (it is
/// the spec file's directory).
///
/// Settings that do not apply to a dataset are ignored (`path`, `target` and `task` outside
/// `csv`, `samples` and `noise` outside the synthetic sets); [`nd_spec::Spec::check`] rejects
/// the first three.
///
/// # Errors
/// A [`DataError`] when the file cannot be read or parsed (naming the file, line and column),
/// when the split leaves a side empty or the training split a single class, or when a setting
/// does not fit the dataset (`target_scale = "standardize"` for classification, `noise` outside
/// what a synthetic set takes, a `csv` dataset without `path` or `target`).
pub fn load(spec: &DataSpec, base_dir: &Path) -> Result<Dataset, DataError> {
    let task = task_of(spec);
    if task == Task::Classification && spec.target_scale == TargetScale::Standardize {
        return Err(DataError::Invalid {
            key: "data.target_scale",
            value: format!("{:?}", spec.target_scale.as_str()),
            reason: format!(
                "dataset {:?} is a classification task; only a regression target can be scaled",
                spec.dataset.as_str()
            ),
        });
    }
    if matches!(spec.dataset, DatasetName::Spirals | DatasetName::Sine)
        && !(spec.noise.is_finite() && spec.noise >= 0.0)
    {
        return Err(DataError::Invalid {
            key: "data.noise",
            value: spec.noise.to_string(),
            reason: "expected a finite number >= 0".into(),
        });
    }

    let (name, file, image, table) = match spec.dataset {
        DatasetName::Spirals => {
            let table = synthetic::spirals(spec.samples, spec.noise);
            ("spirals".to_string(), "spirals".to_string(), None, table)
        }
        DatasetName::Sine => {
            let table = synthetic::sine(spec.samples, spec.noise)?;
            ("sine".to_string(), "sine".to_string(), None, table)
        }
        DatasetName::Csv => {
            let path = spec.path.as_deref().ok_or_else(|| DataError::Invalid {
                key: "data.path",
                value: "(unset)".into(),
                reason: "dataset = \"csv\" needs the file's path".into(),
            })?;
            let target = spec.target.as_deref().ok_or_else(|| DataError::Invalid {
                key: "data.target",
                value: "(unset)".into(),
                reason: "dataset = \"csv\" needs the target column's name".into(),
            })?;
            let path = base_dir.join(path);
            let file = path.display().to_string();
            let text = table::read_file(&path)?;
            let table = table::parse(&text, &file, target, task)?;
            if let Some([c, h, w]) = spec.image {
                let width = table.feature_names.len();
                if c * h * w != width || c * h * w == 0 {
                    return Err(DataError::Invalid {
                        key: "data.image",
                        value: format!("[{c}, {h}, {w}]"),
                        reason: format!("{file} has {width} feature columns, not {c} x {h} x {w}"),
                    });
                }
            }
            (csv_name(&path), file, spec.image, table)
        }
        real => {
            let builtin = builtin::builtin(real).expect("every other dataset is a builtin file");
            let table = builtin.table()?;
            (
                real.as_str().to_string(),
                builtin.file.to_string(),
                builtin.image,
                table,
            )
        }
    };

    let feature_names = table.feature_names.clone();
    let n_features = feature_names.len();
    let n_classes = match task {
        Task::Classification => {
            let seen = table
                .targets
                .iter()
                .fold(0, |max, &label| max.max(label as usize))
                + 1;
            match spec.classes {
                Some(classes) if seen > classes => {
                    return Err(DataError::Invalid {
                        key: "data.classes",
                        value: classes.to_string(),
                        reason: format!(
                            "{file} has label {} but there are {classes} classes (labels 0 to {})",
                            seen - 1,
                            classes.saturating_sub(1)
                        ),
                    })
                }
                Some(classes) => classes,
                None => seen,
            }
        }
        Task::Regression => 0,
    };
    let (mut train, mut test) = prepare::split(table, task, spec.holdout, &file)?;
    prepare::apply_limit(&mut train, spec.limit, n_features);
    if spec.standardize {
        prepare::standardize_features(&mut train, &mut test, n_features);
    }
    let target_scaling = match (task, spec.target_scale) {
        (Task::Regression, TargetScale::Standardize) => {
            prepare::standardize_targets(&mut train, &mut test)
        }
        _ => None,
    };
    Ok(Dataset {
        name,
        task,
        feature_names,
        n_features,
        n_classes,
        image,
        train,
        test,
        target_scaling,
    })
}

/// The column names of a CSV file (plain or gzip'd): its header.
pub fn csv_columns(path: &Path) -> Result<Vec<String>, DataError> {
    let file = path.display().to_string();
    let bytes = table::read_file(path)?;
    table::header(&bytes, &file)
}

/// The task a `[data]` section implies: builtins know theirs, a CSV file's comes from `task`.
pub fn task_of(spec: &DataSpec) -> Task {
    match spec.dataset {
        DatasetName::Diabetes | DatasetName::Sine => Task::Regression,
        DatasetName::Csv => spec.task.unwrap_or_default(),
        _ => Task::Classification,
    }
}

/// `data.csv.gz` and `data.csv` are both called `data`.
fn csv_name(path: &Path) -> String {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let without_gz = file_name
        .strip_suffix(".gz")
        .or_else(|| file_name.strip_suffix(".GZ"))
        .unwrap_or(&file_name);
    Path::new(without_gz)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| without_gz.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

    fn spec(dataset: DatasetName) -> DataSpec {
        DataSpec {
            dataset,
            path: None,
            target: None,
            task: None,
            standardize: true,
            target_scale: TargetScale::None,
            limit: 0,
            samples: 1000,
            noise: 0.1,
            image: None,
            holdout: Default::default(),
            classes: None,
        }
    }

    fn csv_spec(path: &Path, target: &str, task: Task) -> DataSpec {
        DataSpec {
            path: Some(path.to_path_buf()),
            target: Some(target.into()),
            task: Some(task),
            standardize: false,
            ..spec(DatasetName::Csv)
        }
    }

    fn load_builtin(dataset: DatasetName) -> Dataset {
        load(&spec(dataset), Path::new(".")).unwrap()
    }

    fn labels(targets: &Targets) -> &[usize] {
        match targets {
            Targets::Classes(labels) => labels,
            Targets::Values(_) => panic!("expected class ids"),
        }
    }

    fn values(targets: &Targets) -> &[f32] {
        match targets {
            Targets::Values(values) => values,
            Targets::Classes(_) => panic!("expected values"),
        }
    }

    /// Checks the documented shape of a builtin classification dataset.
    fn check_builtin(
        dataset: DatasetName,
        (train_rows, test_rows): (usize, usize),
        n_features: usize,
        n_classes: usize,
        image: Option<[usize; 3]>,
    ) -> Dataset {
        let data = load_builtin(dataset);
        assert_eq!(data.name, dataset.as_str());
        assert_eq!(data.task, Task::Classification);
        assert_eq!((data.train.rows, data.test.rows), (train_rows, test_rows));
        assert_eq!(
            (data.n_features, data.feature_names.len()),
            (n_features, n_features)
        );
        assert_eq!((data.n_classes, data.n_outputs()), (n_classes, n_classes));
        assert_eq!(data.image, image);
        for split in [&data.train, &data.test] {
            assert_eq!(split.features.len(), split.rows * n_features);
            assert_eq!(split.targets.len(), split.rows);
            let labels = labels(&split.targets);
            for class in 0..n_classes {
                assert!(labels.contains(&class), "{dataset}: class {class} missing");
            }
        }
        assert_eq!(data.target_scaling, None);
        data
    }

    /// Column means and population standard deviations in f64.
    fn column_stats(split: &Split, width: usize) -> Vec<(f64, f64)> {
        (0..width)
            .map(|column| {
                let values: Vec<f64> = (0..split.rows)
                    .map(|row| f64::from(split.row(row)[column]))
                    .collect();
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let variance =
                    values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
                (mean, variance.sqrt())
            })
            .collect()
    }

    #[test]
    fn digits_loads_with_its_documented_shape() {
        let digits = check_builtin(DatasetName::Digits, (1442, 355), 64, 10, Some([1, 8, 8]));
        assert_eq!(digits.feature_names[9], "pixel_1_1");
    }

    #[test]
    fn iris_loads_with_its_documented_shape() {
        check_builtin(DatasetName::Iris, (120, 30), 4, 3, None);
    }

    #[test]
    fn wine_loads_with_its_documented_shape() {
        check_builtin(DatasetName::Wine, (144, 34), 13, 3, None);
    }

    #[test]
    fn breast_cancer_loads_with_its_documented_shape() {
        check_builtin(DatasetName::BreastCancer, (456, 113), 30, 2, None);
    }

    #[test]
    fn mnist_loads_with_its_documented_shape() {
        let mnist = check_builtin(
            DatasetName::Mnist,
            (10_000, 2000),
            784,
            10,
            Some([1, 28, 28]),
        );
        // The official split is class-balanced: 1000 per class in train, 200 in test.
        let sevens = labels(&mnist.train.targets)
            .iter()
            .filter(|&&l| l == 7)
            .count();
        assert_eq!(sevens, 1000);
    }

    #[test]
    fn fashion_mnist_loads_with_its_documented_shape() {
        let fashion = check_builtin(
            DatasetName::FashionMnist,
            (6000, 1000),
            784,
            10,
            Some([1, 28, 28]),
        );
        let bags = labels(&fashion.test.targets)
            .iter()
            .filter(|&&l| l == 8)
            .count();
        assert_eq!(bags, 100);
    }

    #[test]
    fn diabetes_loads_as_regression_with_raw_targets() {
        let diabetes = load_builtin(DatasetName::Diabetes);
        assert_eq!(diabetes.task, Task::Regression);
        assert_eq!((diabetes.train.rows, diabetes.test.rows), (354, 88));
        assert_eq!(
            (
                diabetes.n_features,
                diabetes.n_classes,
                diabetes.n_outputs()
            ),
            (10, 0, 1)
        );
        let test = values(&diabetes.test.targets);
        let mean = test.iter().map(|&v| f64::from(v)).sum::<f64>() / test.len() as f64;
        assert!(
            (mean - 152.7).abs() < 0.05,
            "documented test mean 152.7, got {mean}"
        );
        assert!(test.iter().all(|&v| (25.0..=346.0).contains(&v)));
    }

    #[test]
    fn standardize_fits_train_columns_and_only_centres_constant_ones() {
        let digits = load_builtin(DatasetName::Digits);
        let raw = load(
            &DataSpec {
                standardize: false,
                ..spec(DatasetName::Digits)
            },
            Path::new("."),
        )
        .unwrap();
        let mut constant = 0;
        for (column, (mean, std)) in column_stats(&digits.train, 64).into_iter().enumerate() {
            assert!(mean.abs() < 1e-4, "column {column}: mean {mean}");
            if std == 0.0 {
                constant += 1;
            } else {
                assert!((std - 1.0).abs() < 1e-4, "column {column}: std {std}");
            }
        }
        assert!(constant > 0, "digits has always-blank corner pixels");
        // The test split uses the train statistics, so it is not exactly standardized.
        let (test_mean, _) = column_stats(&digits.test, 64)[10];
        assert!(test_mean.abs() > 1e-4);
        assert_eq!(raw.train.row(0).len(), 64);
        assert!(raw
            .train
            .features
            .iter()
            .all(|&v| v.fract() == 0.0 && (0.0..=16.0).contains(&v)));
    }

    #[test]
    fn standardize_false_keeps_raw_values() {
        let iris = load(
            &DataSpec {
                standardize: false,
                ..spec(DatasetName::Iris)
            },
            Path::new("."),
        )
        .unwrap();
        assert_eq!(iris.train.row(0), [5.1, 3.5, 1.4, 0.2]);
        let wine = load_builtin(DatasetName::Wine);
        for (mean, std) in column_stats(&wine.train, 13) {
            assert!(
                mean.abs() < 1e-4 && (std - 1.0).abs() < 1e-4,
                "{mean} {std}"
            );
        }
    }

    #[test]
    fn limit_keeps_the_first_training_rows_and_the_whole_test_split() {
        let limited = load(
            &DataSpec {
                limit: 10,
                standardize: false,
                ..spec(DatasetName::Iris)
            },
            Path::new("."),
        )
        .unwrap();
        let full = load(
            &DataSpec {
                standardize: false,
                ..spec(DatasetName::Iris)
            },
            Path::new("."),
        )
        .unwrap();
        assert_eq!((limited.train.rows, limited.test.rows), (10, 30));
        assert_eq!(limited.train.features, full.train.features[..40]);
        assert_eq!(limited.train.targets.len(), 10);
        assert_eq!(limited.test, full.test);
        let above = load(
            &DataSpec {
                limit: 1000,
                ..spec(DatasetName::Iris)
            },
            Path::new("."),
        )
        .unwrap();
        assert_eq!(above.train.rows, 120);
    }

    #[test]
    fn target_standardize_fits_train_and_records_the_scaling() {
        let scaled = load(
            &DataSpec {
                target_scale: TargetScale::Standardize,
                ..spec(DatasetName::Diabetes)
            },
            Path::new("."),
        )
        .unwrap();
        let raw = load_builtin(DatasetName::Diabetes);
        let (mean, std) = scaled.target_scaling.unwrap();
        assert!(
            (mean - 152.0).abs() < 0.1,
            "documented train mean 152.0, got {mean}"
        );
        let train = values(&scaled.train.targets);
        let train_mean = train.iter().map(|&v| f64::from(v)).sum::<f64>() / train.len() as f64;
        let train_var = train
            .iter()
            .map(|&v| (f64::from(v) - train_mean).powi(2))
            .sum::<f64>()
            / train.len() as f64;
        assert!(train_mean.abs() < 1e-4 && (train_var.sqrt() - 1.0).abs() < 1e-4);
        for (scaled, raw) in values(&scaled.test.targets)
            .iter()
            .zip(values(&raw.test.targets))
        {
            assert!((scaled * std + mean - raw).abs() < 1e-3);
        }
    }

    #[test]
    fn target_standardize_is_an_error_for_classification() {
        let error = load(
            &DataSpec {
                target_scale: TargetScale::Standardize,
                ..spec(DatasetName::Iris)
            },
            Path::new("."),
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("`data.target_scale` = \"standardize\" is not allowed"),
            "{message}"
        );
        assert!(message.contains("classification"), "{message}");
        assert_eq!(error.file(), None);
    }

    #[test]
    fn spirals_are_deterministic_and_split_by_class() {
        let first = load_builtin(DatasetName::Spirals);
        assert_eq!(first, load_builtin(DatasetName::Spirals));
        assert_eq!(
            (first.name.as_str(), first.n_features, first.n_classes),
            ("spirals", 2, 2)
        );
        assert_eq!((first.train.rows, first.test.rows), (800, 200));
        let noisier = load(
            &DataSpec {
                noise: 0.3,
                ..spec(DatasetName::Spirals)
            },
            Path::new("."),
        )
        .unwrap();
        assert_ne!(first.train.features, noisier.train.features);
        let test_ones = labels(&first.test.targets)
            .iter()
            .filter(|&&l| l == 1)
            .count();
        assert_eq!(test_ones, 100);
    }

    #[test]
    fn sine_is_deterministic_with_targets_in_range() {
        let sine = load(
            &DataSpec {
                noise: 0.5,
                ..spec(DatasetName::Sine)
            },
            Path::new("."),
        )
        .unwrap();
        assert_eq!(
            sine,
            load(
                &DataSpec {
                    noise: 0.5,
                    ..spec(DatasetName::Sine)
                },
                Path::new(".")
            )
            .unwrap()
        );
        assert_eq!(
            (sine.task, sine.n_features, sine.n_outputs()),
            (Task::Regression, 1, 1)
        );
        assert_eq!((sine.train.rows, sine.test.rows), (800, 200));
        for split in [&sine.train, &sine.test] {
            assert!(values(&split.targets)
                .iter()
                .all(|v| (-1.0..=1.0).contains(v)));
        }
        let unscaled_x = load(
            &DataSpec {
                standardize: false,
                ..spec(DatasetName::Sine)
            },
            Path::new("."),
        )
        .unwrap();
        assert!(unscaled_x
            .train
            .features
            .iter()
            .all(|x| x.abs() <= std::f32::consts::PI));
    }

    #[test]
    fn synthetic_noise_must_be_finite() {
        let message = load(
            &DataSpec {
                noise: f64::NAN,
                ..spec(DatasetName::Spirals)
            },
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(
            message.starts_with("`data.noise` = NaN is not allowed"),
            "{message}"
        );
    }

    // ---- user CSV files ----

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// Ten rows, classes alternating 0, 1; `x1` is the row index.
    fn ten_rows(is_test: bool) -> String {
        let mut text = String::from(if is_test {
            "x1,x2,label,is_test\n"
        } else {
            "x1,x2,label\n"
        });
        for row in 0..10 {
            let flag = if is_test {
                format!(",{}", u8::from(row < 3))
            } else {
                String::new()
            };
            text.push_str(&format!("{row},{},{}{flag}\n", row * 2, row % 2));
        }
        text
    }

    /// Loads `text` written as `name`, expecting an error; returns its message and the path.
    fn csv_error(name: &str, text: &[u8], target: &str, task: Task) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, name, text);
        let message = load(&csv_spec(&path, target, task), Path::new("."))
            .unwrap_err()
            .to_string();
        (message, path.display().to_string())
    }

    #[test]
    fn csv_without_is_test_is_split_by_class() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir, "points.csv", ten_rows(false).as_bytes());
        // A relative path is resolved against base_dir.
        let data = load(
            &csv_spec(Path::new("points.csv"), "label", Task::Classification),
            dir.path(),
        )
        .unwrap();
        assert_eq!(data.name, "points");
        assert_eq!(data.feature_names, ["x1", "x2"]);
        assert_eq!((data.n_classes, data.image), (2, None));
        // Row 8 is the 5th row of class 0, row 9 the 5th of class 1.
        assert_eq!(data.test.features, [8.0, 16.0, 9.0, 18.0]);
        assert_eq!(data.test.targets, Targets::Classes(vec![0, 1]));
        assert_eq!(data.train.rows, 8);
    }

    #[test]
    fn csv_with_is_test_uses_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "points.csv", ten_rows(true).as_bytes());
        let data = load(
            &csv_spec(&path, "label", Task::Classification),
            Path::new("/elsewhere"),
        )
        .unwrap();
        assert_eq!(data.feature_names, ["x1", "x2"]);
        assert_eq!((data.train.rows, data.test.rows), (7, 3));
        assert_eq!(data.test.features, [0.0, 0.0, 1.0, 2.0, 2.0, 4.0]);
    }

    #[test]
    fn csv_regression_is_split_by_target_rank() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("y,x\n");
        for row in 0..10 {
            text.push_str(&format!("{},{row}\n", 9 - row));
        }
        let path = write(&dir, "reg.csv", text.as_bytes());
        let data = load(&csv_spec(&path, "y", Task::Regression), dir.path()).unwrap();
        assert_eq!((data.task, data.n_classes), (Task::Regression, 0));
        // Targets 4 and 9 have ranks 4 and 9: rows 5 and 0.
        assert_eq!(data.test.targets, Targets::Values(vec![9.0, 4.0]));
        assert_eq!(data.test.features, [0.0, 5.0]);
    }

    #[test]
    fn csv_gzip_loads_like_plain() {
        let dir = tempfile::tempdir().unwrap();
        let plain = write(&dir, "points.csv", ten_rows(false).as_bytes());
        let packed = write(&dir, "points.csv.gz", &gzip(ten_rows(false).as_bytes()));
        let from_plain =
            load(&csv_spec(&plain, "label", Task::Classification), dir.path()).unwrap();
        let from_gzip = load(
            &csv_spec(&packed, "label", Task::Classification),
            dir.path(),
        )
        .unwrap();
        assert_eq!(from_gzip.name, "points");
        assert_eq!(from_plain, from_gzip);
    }

    #[test]
    fn csv_needs_path_and_target() {
        let mut no_path = csv_spec(Path::new("x.csv"), "label", Task::Classification);
        no_path.path = None;
        let message = load(&no_path, Path::new(".")).unwrap_err().to_string();
        assert!(message.starts_with("`data.path`"), "{message}");
        let mut no_target = csv_spec(Path::new("x.csv"), "label", Task::Classification);
        no_target.target = None;
        let message = load(&no_target, Path::new(".")).unwrap_err().to_string();
        assert!(message.starts_with("`data.target`"), "{message}");
    }

    #[test]
    fn error_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.csv");
        let error = load(&csv_spec(&path, "label", Task::Classification), dir.path()).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("{}: cannot read the file", path.display())),
            "{message}"
        );
        assert_eq!(error.file(), Some(path.display().to_string().as_str()));
    }

    #[test]
    fn error_gz_name_without_gzip_content() {
        let (message, file) = csv_error(
            "data.csv.gz",
            ten_rows(false).as_bytes(),
            "label",
            Task::Classification,
        );
        assert!(
            message.starts_with(&format!("{file}: not a gzip file")),
            "{message}"
        );
    }

    #[test]
    fn error_corrupt_gzip() {
        let packed = gzip(ten_rows(false).repeat(50).as_bytes());
        let (message, file) = csv_error(
            "data.csv.gz",
            &packed[..packed.len() / 2],
            "label",
            Task::Classification,
        );
        assert!(
            message.starts_with(&format!("{file}: corrupt gzip data")),
            "{message}"
        );
        let mut flipped = packed.clone();
        let last = flipped.len() - 6; // inside the CRC32 trailer
        flipped[last] ^= 0xff;
        let (message, file) = csv_error("data.csv.gz", &flipped, "label", Task::Classification);
        assert!(
            message.starts_with(&format!("{file}: corrupt gzip data")),
            "{message}"
        );
    }

    #[test]
    fn error_empty_file() {
        let (message, file) = csv_error("data.csv", b"", "label", Task::Classification);
        assert_eq!(
            message,
            format!("{file}: the file is empty (expected a header row and data rows)")
        );
        let (message, _) = csv_error("data.csv.gz", &gzip(b""), "label", Task::Classification);
        assert!(message.contains("the file is empty"), "{message}");
    }

    #[test]
    fn error_header_only() {
        let (message, file) = csv_error("data.csv", b"x1,label\n", "label", Task::Classification);
        assert_eq!(
            message,
            format!("{file}: the file has a header but no data rows")
        );
    }

    #[test]
    fn error_missing_target_column() {
        let (message, file) = csv_error(
            "data.csv",
            ten_rows(false).as_bytes(),
            "class",
            Task::Classification,
        );
        assert_eq!(
            message,
            format!(r#"{file}:1: no column named "class"; the columns are "x1", "x2", "label""#)
        );
    }

    #[test]
    fn error_no_feature_columns() {
        let (message, file) = csv_error(
            "data.csv",
            b"label,is_test\n0,0\n1,1\n",
            "label",
            Task::Classification,
        );
        assert_eq!(
            message,
            format!(r#"{file}:1: no feature columns: the header has only "label", "is_test""#)
        );
    }

    #[test]
    fn error_non_numeric_cell() {
        let (message, file) = csv_error(
            "data.csv",
            b"x1,x2,label\n1,2,0\n3,abc,1\n",
            "label",
            Task::Classification,
        );
        assert_eq!(
            message,
            format!(r#"{file}:3: column "x2": cannot parse "abc" as a number"#)
        );
    }

    #[test]
    fn error_nan_and_infinite_values() {
        let (message, file) = csv_error(
            "data.csv",
            b"x1,label\n1,0\nNaN,1\n",
            "label",
            Task::Classification,
        );
        assert_eq!(
            message,
            format!(r#"{file}:3: column "x1": NaN is not allowed"#)
        );
        let (message, file) = csv_error("data.csv", b"x1,y\n1,2\n2,-inf\n", "y", Task::Regression);
        assert_eq!(
            message,
            format!(r#"{file}:3: column "y": an infinite value ("-inf") is not allowed"#)
        );
    }

    #[test]
    fn error_ragged_row() {
        let (message, file) = csv_error(
            "data.csv",
            b"x1,x2,label\n1,2,0\n3,1\n",
            "label",
            Task::Classification,
        );
        assert_eq!(
            message,
            format!("{file}:3: expected 3 fields (as in the header), found 2")
        );
    }

    #[test]
    fn error_label_out_of_range() {
        let (message, file) = csv_error(
            "data.csv",
            b"x1,label\n1,0\n2,-1\n",
            "label",
            Task::Classification,
        );
        assert!(
            message.starts_with(&format!(
                r#"{file}:3: column "label": label out of range: "-1""#
            )),
            "{message}"
        );
        let (message, file) = csv_error(
            "data.csv",
            b"x1,label\n1,2.5\n",
            "label",
            Task::Classification,
        );
        assert!(
            message.starts_with(&format!(
                r#"{file}:2: column "label": label out of range: "2.5""#
            )),
            "{message}"
        );
    }

    #[test]
    fn error_single_training_class() {
        let text = "x,label,is_test\n1,0,0\n2,0,0\n3,1,1\n";
        let (message, file) = csv_error("data.csv", text.as_bytes(), "label", Task::Classification);
        assert_eq!(
            message,
            format!("{file}: the training split has a single class (label 0); classification needs at least 2 classes")
        );
    }

    #[test]
    fn error_is_test_not_zero_or_one() {
        let text = "x,label,is_test\n1,0,0\n2,1,2\n";
        let (message, file) = csv_error("data.csv", text.as_bytes(), "label", Task::Classification);
        assert_eq!(
            message,
            format!(r#"{file}:3: column "is_test": expected 0 (train) or 1 (test), found "2""#)
        );
    }

    #[test]
    fn error_no_training_or_no_test_rows() {
        let all_test = "x,label,is_test\n1,0,1\n2,1,1\n";
        let (message, file) = csv_error(
            "data.csv",
            all_test.as_bytes(),
            "label",
            Task::Classification,
        );
        assert_eq!(
            message,
            format!("{file}: no training rows (every row has is_test = 1)")
        );
        let all_train = "x,label,is_test\n1,0,0\n2,1,0\n";
        let (message, file) = csv_error(
            "data.csv",
            all_train.as_bytes(),
            "label",
            Task::Classification,
        );
        assert_eq!(
            message,
            format!("{file}: no test rows (every row has is_test = 0)")
        );
        let too_few = "x,label\n1,0\n2,1\n3,0\n";
        let (message, file) = csv_error(
            "data.csv",
            too_few.as_bytes(),
            "label",
            Task::Classification,
        );
        assert!(
            message.starts_with(&format!(
                "{file}: no test rows (3 rows and no is_test column"
            )),
            "{message}"
        );
    }
}
