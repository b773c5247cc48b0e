//! The builtin real datasets: gzip'd CSV files from `fixtures/data/`, embedded in the binary so
//! that the tool works from any directory. See `fixtures/data/README.md` for provenance.

use crate::table::{self, Table};
use crate::DataError;
use nd_spec::{DatasetName, Task};

/// One embedded file and what is known about it.
pub(crate) struct Builtin {
    /// The file's name, used in error messages.
    pub file: &'static str,
    /// The gzip'd CSV.
    pub bytes: &'static [u8],
    /// Classification (`label` column) or regression (`target` column).
    pub task: Task,
    /// `[channels, height, width]` for image datasets.
    pub image: Option<[usize; 3]>,
}

macro_rules! fixture {
    ($file:literal) => {
        (
            $file,
            include_bytes!(concat!("../../../fixtures/data/", $file)) as &'static [u8],
        )
    };
}

/// The embedded file behind a builtin dataset; `None` for synthetic sets and `csv`.
pub(crate) fn builtin(name: DatasetName) -> Option<Builtin> {
    use DatasetName::*;
    use Task::*;
    let ((file, bytes), task, image) = match name {
        Digits => (fixture!("digits.csv.gz"), Classification, Some([1, 8, 8])),
        Iris => (fixture!("iris.csv.gz"), Classification, None),
        Wine => (fixture!("wine.csv.gz"), Classification, None),
        BreastCancer => (fixture!("breast_cancer.csv.gz"), Classification, None),
        Diabetes => (fixture!("diabetes.csv.gz"), Regression, None),
        Mnist => (
            fixture!("mnist_12k.csv.gz"),
            Classification,
            Some([1, 28, 28]),
        ),
        FashionMnist => (
            fixture!("fashion_mnist_7k.csv.gz"),
            Classification,
            Some([1, 28, 28]),
        ),
        Spirals | Sine | Csv => return None,
    };
    Some(Builtin {
        file,
        bytes,
        task,
        image,
    })
}

impl Builtin {
    /// Decompresses and parses the file; the split comes from its `is_test` column.
    pub fn table(&self) -> Result<Table, DataError> {
        let text = table::gunzip(self.bytes, self.file)?;
        let target = match self.task {
            Task::Classification => "label",
            Task::Regression => "target",
        };
        table::parse(&text, self.file, target, self.task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_real_dataset_has_a_file_and_the_others_none() {
        for name in nd_spec::DatasetName::ALL {
            let name: DatasetName = name.parse().unwrap();
            let expected = !matches!(
                name,
                DatasetName::Spirals | DatasetName::Sine | DatasetName::Csv
            );
            assert_eq!(builtin(name).is_some(), expected, "{name}");
        }
    }

    #[test]
    fn embedded_files_are_gzip() {
        let iris = builtin(DatasetName::Iris).unwrap();
        assert!(iris.bytes.starts_with(&[0x1f, 0x8b]));
        let table = iris.table().unwrap();
        assert_eq!(table.targets.len(), 150);
        assert_eq!(table.feature_names[0], "sepal_length_cm");
        assert_eq!(
            table
                .is_test
                .as_ref()
                .map(|t| t.iter().filter(|&&x| x).count()),
            Some(30)
        );
    }
}
