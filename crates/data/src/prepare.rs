//! From a parsed table to train and test splits: the deterministic split rules, the checks
//! that need the split, `limit`, and the scaling of features and targets fitted on train.

use crate::table::Table;
use crate::{DataError, Split, Targets};
use nd_spec::{Holdout, Task};

/// Whether each row is a test row, by the rules of the shipped fixtures: classification is
/// stratified (the k-th row of each class, k from 0 in file order, is a test row iff
/// `k % 5 == 4`); regression sorts the rows by `(target, row index)` and the row at rank r is a
/// test row iff `r % 5 == 4`.
pub(crate) fn split_flags(task: Task, targets: &[f32]) -> Vec<bool> {
    match task {
        Task::Classification => {
            // Labels are validated class ids, so `as usize` is exact (and maps -0.0 to 0).
            let mut seen = std::collections::HashMap::<usize, usize>::new();
            targets
                .iter()
                .map(|&label| {
                    let k = seen.entry(label as usize).or_insert(0);
                    *k += 1;
                    (*k - 1) % 5 == 4
                })
                .collect()
        }
        Task::Regression => {
            let mut order: Vec<usize> = (0..targets.len()).collect();
            order.sort_by(|&a, &b| targets[a].total_cmp(&targets[b]).then(a.cmp(&b)));
            let mut flags = vec![false; targets.len()];
            for (rank, &row) in order.iter().enumerate() {
                flags[row] = rank % 5 == 4;
            }
            flags
        }
    }
}

/// Splits the rows, checks that both splits have rows (the test split may be empty when
/// `holdout` is `none` and the file has no `is_test` column) and that the training split has
/// two classes. Returns `(train, test)`.
pub(crate) fn split(
    table: Table,
    task: Task,
    holdout: Holdout,
    file: &str,
) -> Result<(Split, Split), DataError> {
    let from_column = table.is_test.is_some();
    let all_train = !from_column && holdout == Holdout::None;
    let flags = table.is_test.unwrap_or_else(|| {
        if all_train {
            vec![false; table.targets.len()]
        } else {
            split_flags(task, &table.targets)
        }
    });
    let width = table.feature_names.len();
    let mut parts = [Part::default(), Part::default()];
    for (row, &is_test) in flags.iter().enumerate() {
        let part = &mut parts[usize::from(is_test)];
        part.features
            .extend_from_slice(&table.features[row * width..(row + 1) * width]);
        part.targets.push(table.targets[row]);
    }
    let [train, test] = parts;
    let rule = match (from_column, task) {
        (true, _) => None,
        (false, Task::Classification) => Some("every 5th row of each class is a test row"),
        (false, Task::Regression) => Some("every 5th row in target order is a test row"),
    };
    if train.targets.is_empty() {
        let detail = match rule {
            None => "every row has is_test = 1".into(),
            Some(_) => "the data has no rows".into(),
        };
        return Err(DataError::NoTrainRows {
            file: file.into(),
            detail,
        });
    }
    if test.targets.is_empty() && !all_train {
        let detail = match rule {
            None => "every row has is_test = 0".into(),
            Some(rule) => format!(
                "{} rows and no is_test column: {rule}, so add rows or an is_test column",
                flags.len()
            ),
        };
        return Err(DataError::NoTestRows {
            file: file.into(),
            detail,
        });
    }
    if task == Task::Classification {
        let first = train.targets[0];
        if train.targets.iter().all(|&label| label == first) {
            return Err(DataError::SingleClass {
                file: file.into(),
                label: first as usize,
            });
        }
    }
    Ok((train.into_split(task, width), test.into_split(task, width)))
}

#[derive(Default)]
struct Part {
    features: Vec<f32>,
    targets: Vec<f32>,
}

impl Part {
    fn into_split(self, task: Task, width: usize) -> Split {
        let rows = self.targets.len();
        debug_assert_eq!(self.features.len(), rows * width);
        let targets = match task {
            // Labels were checked to be integers in 0..=MAX_LABEL when parsed or generated.
            Task::Classification => {
                Targets::Classes(self.targets.iter().map(|&label| label as usize).collect())
            }
            Task::Regression => Targets::Values(self.targets),
        };
        Split {
            rows,
            features: self.features,
            targets,
        }
    }
}

/// Keeps the first `limit` training rows (0 keeps all).
pub(crate) fn apply_limit(train: &mut Split, limit: usize, width: usize) {
    if limit == 0 || limit >= train.rows {
        return;
    }
    train.rows = limit;
    train.features.truncate(limit * width);
    match &mut train.targets {
        Targets::Classes(labels) => labels.truncate(limit),
        Targets::Values(values) => values.truncate(limit),
    }
}

/// Mean and standard deviation (population, as scikit-learn's `StandardScaler`) of values,
/// computed in f64. The deviation is `None` for a constant column, which is then only centred.
fn mean_std<'a>(values: impl Iterator<Item = &'a f32> + Clone) -> (f64, Option<f64>) {
    let (mut sum, mut count) = (0.0f64, 0usize);
    let (mut low, mut high) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in values.clone() {
        sum += f64::from(v);
        count += 1;
        low = low.min(v);
        high = high.max(v);
    }
    let mean = sum / count.max(1) as f64;
    if low >= high {
        return (mean, None);
    }
    let squares: f64 = values.map(|&v| (f64::from(v) - mean).powi(2)).sum();
    (mean, Some((squares / count as f64).sqrt()))
}

/// Scales each feature column to zero mean and unit variance with statistics of `train`,
/// applied to both splits; a constant column is only centred.
pub(crate) fn standardize_features(train: &mut Split, test: &mut Split, width: usize) {
    if width == 0 {
        return;
    }
    let (mut sums, mut lows, mut highs) = (
        vec![0.0f64; width],
        vec![f32::INFINITY; width],
        vec![f32::NEG_INFINITY; width],
    );
    // Row by row, so the passes walk memory in order even for 784-wide images.
    for row in train.features.chunks_exact(width) {
        for (column, &v) in row.iter().enumerate() {
            sums[column] += f64::from(v);
            lows[column] = lows[column].min(v);
            highs[column] = highs[column].max(v);
        }
    }
    let count = train.rows.max(1) as f64;
    let means: Vec<f64> = sums.iter().map(|sum| sum / count).collect();
    let mut squares = vec![0.0f64; width];
    for row in train.features.chunks_exact(width) {
        for (column, &v) in row.iter().enumerate() {
            squares[column] += (f64::from(v) - means[column]).powi(2);
        }
    }
    let scales: Vec<f64> = (0..width)
        .map(|column| {
            if lows[column] >= highs[column] {
                1.0
            } else {
                (squares[column] / count).sqrt()
            }
        })
        .collect();
    for split in [train, test] {
        for row in split.features.chunks_exact_mut(width) {
            for (column, v) in row.iter_mut().enumerate() {
                *v = ((f64::from(*v) - means[column]) / scales[column]) as f32;
            }
        }
    }
}

/// Scales regression targets to zero mean and unit deviation fitted on `train`; returns the
/// `(mean, std)` applied (`std` is 1 for a constant target, which is only centred).
pub(crate) fn standardize_targets(train: &mut Split, test: &mut Split) -> Option<(f32, f32)> {
    let Targets::Values(values) = &train.targets else {
        return None;
    };
    let (mean, std) = mean_std(values.iter());
    let std = std.unwrap_or(1.0);
    for split in [train, test] {
        if let Targets::Values(values) = &mut split.targets {
            for v in values {
                *v = ((f64::from(*v) - mean) / std) as f32;
            }
        }
    }
    Some((mean as f32, std as f32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(targets: &[f32], is_test: Option<Vec<bool>>) -> Table {
        Table {
            feature_names: vec!["a".into()],
            features: (0..targets.len()).map(|i| i as f32).collect(),
            targets: targets.to_vec(),
            is_test,
        }
    }

    #[test]
    fn classification_split_counts_within_each_class() {
        // Class 0 is rows 0, 2, 4, ...; class 1 is rows 1, 3, 5, ...
        let targets: Vec<f32> = (0..20).map(|i| (i % 2) as f32).collect();
        let flags = split_flags(Task::Classification, &targets);
        let test_rows: Vec<usize> = (0..20).filter(|&i| flags[i]).collect();
        assert_eq!(test_rows, [8, 9, 18, 19]);
    }

    #[test]
    fn regression_split_follows_target_rank_then_row() {
        // Ranks by (target, row): row 5 (0.0) r0, row 4 (1.0) r1, row 0 (2.0) r2,
        // row 2 (2.0) r3, row 1 (3.0) r4 -> test, row 3 (5.0) r5.
        let flags = split_flags(Task::Regression, &[2.0, 3.0, 2.0, 5.0, 1.0, 0.0]);
        assert_eq!(flags, [false, true, false, false, false, false]);
    }

    #[test]
    fn split_moves_features_with_their_rows() {
        let (train, test) = split(
            table(&[0.0, 1.0, 1.0, 0.0], Some(vec![false, true, false, true])),
            Task::Classification,
            Holdout::Rule,
            "f",
        )
        .unwrap();
        assert_eq!(train.features, [0.0, 2.0]);
        assert_eq!(test.features, [1.0, 3.0]);
        assert_eq!(test.targets, Targets::Classes(vec![1, 0]));
        assert_eq!(train.targets, Targets::Classes(vec![0, 1]));
    }

    #[test]
    fn holdout_none_keeps_every_row_for_training_unless_the_file_says_otherwise() {
        let targets = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        let (train, test) = split(
            table(&targets, None),
            Task::Classification,
            Holdout::None,
            "f",
        )
        .unwrap();
        assert_eq!((train.rows, test.rows), (12, 0));
        // The rule would hold rows out, and an is_test column always wins.
        let (train, test) = split(
            table(&targets, None),
            Task::Classification,
            Holdout::Rule,
            "f",
        )
        .unwrap();
        assert_eq!((train.rows, test.rows), (10, 2));
        let mut flags = vec![false; 12];
        flags[11] = true;
        let (train, test) = split(
            table(&targets, Some(flags)),
            Task::Classification,
            Holdout::None,
            "f",
        )
        .unwrap();
        assert_eq!((train.rows, test.rows), (11, 1));
    }

    #[test]
    fn limit_keeps_the_first_training_rows() {
        let mut train = Split {
            rows: 3,
            features: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            targets: Targets::Values(vec![1.0, 2.0, 3.0]),
        };
        apply_limit(&mut train, 2, 2);
        assert_eq!(train.rows, 2);
        assert_eq!(train.features, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(train.targets, Targets::Values(vec![1.0, 2.0]));
        apply_limit(&mut train, 0, 2);
        assert_eq!(train.rows, 2);
    }

    #[test]
    fn a_constant_column_is_only_centred() {
        let mut train = Split {
            rows: 3,
            features: vec![0.1, 1.0, 0.1, 2.0, 0.1, 3.0],
            targets: Targets::Values(vec![0.0; 3]),
        };
        let mut test = Split {
            rows: 1,
            features: vec![1.1, 2.0],
            targets: Targets::Values(vec![0.0]),
        };
        standardize_features(&mut train, &mut test, 2);
        assert_eq!(train.features[0], 0.0);
        assert!((test.features[0] - 1.0).abs() < 1e-6);
        let std = (2.0f64 / 3.0).sqrt();
        assert!((f64::from(train.features[1]) + 1.0 / std).abs() < 1e-6);
        assert_eq!(test.features[1], 0.0);
    }

    #[test]
    fn a_constant_target_is_only_centred() {
        let mut train = Split {
            rows: 2,
            features: vec![],
            targets: Targets::Values(vec![4.0, 4.0]),
        };
        let mut test = train.clone();
        assert_eq!(standardize_targets(&mut train, &mut test), Some((4.0, 1.0)));
        assert_eq!(test.targets, Targets::Values(vec![0.0, 0.0]));
    }
}
