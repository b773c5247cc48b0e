//! Data errors: each is one line that names the file and, where there is one, the line
//! (1-based, the header is line 1) and the column.

/// Why a dataset could not be loaded.
///
/// `file` is the path as resolved (a user's CSV), the embedded file's name (a builtin dataset)
/// or the dataset's name (a synthetic set).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file is missing or cannot be read.
    #[error("{file}: cannot read the file: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The name ends in `.gz` but the content is not gzip.
    #[error("{file}: not a gzip file (the name ends in .gz but the content does not start with the gzip magic bytes)")]
    NotGzip {
        /// The file.
        file: String,
    },
    /// The gzip stream is truncated or damaged.
    #[error("{file}: corrupt gzip data: {source}")]
    CorruptGzip {
        /// The file.
        file: String,
        /// The decoder's error.
        source: std::io::Error,
    },
    /// Nothing in the file, not even a header.
    #[error("{file}: the file is empty (expected a header row and data rows)")]
    Empty {
        /// The file.
        file: String,
    },
    /// A header and no data rows.
    #[error("{file}: the file has a header but no data rows")]
    NoRows {
        /// The file.
        file: String,
    },
    /// The header has no column with the target's name.
    #[error("{file}:{line}: no column named {column:?}{hint}; the columns are {available}")]
    MissingColumn {
        /// The file.
        file: String,
        /// The header's line.
        line: u64,
        /// The column asked for.
        column: String,
        /// A close spelling that exists, as ` (did you mean "Label"?)`, or empty.
        hint: String,
        /// A few of the header's columns.
        available: String,
    },
    /// The header has no column besides the target (and `is_test`).
    #[error("{file}:{line}: no feature columns: the header has only {columns}")]
    NoFeatures {
        /// The file.
        file: String,
        /// The header's line.
        line: u64,
        /// The header's columns.
        columns: String,
    },
    /// Two header cells have the same name.
    #[error("{file}:{line}: column {column:?} appears twice (fields {first} and {second})")]
    DuplicateColumn {
        /// The file.
        file: String,
        /// The header's line.
        line: u64,
        /// The repeated name.
        column: String,
        /// 1-based field of the first occurrence.
        first: usize,
        /// 1-based field of the second occurrence.
        second: usize,
    },
    /// A cell that is not a number.
    #[error("{file}:{line}: column {column:?}: cannot parse {text:?} as a number")]
    NotANumber {
        /// The file.
        file: String,
        /// The row's line.
        line: u64,
        /// The column.
        column: String,
        /// The cell, shortened if long.
        text: String,
    },
    /// A NaN or infinite cell.
    #[error("{file}:{line}: column {column:?}: {what} is not allowed")]
    NotFinite {
        /// The file.
        file: String,
        /// The row's line.
        line: u64,
        /// The column.
        column: String,
        /// `NaN` or `an infinite value ("inf")`.
        what: String,
    },
    /// A row with more or fewer fields than the header.
    #[error("{file}:{line}: expected {expected} fields (as in the header), found {found}")]
    Ragged {
        /// The file.
        file: String,
        /// The row's line.
        line: u64,
        /// The header's field count.
        expected: usize,
        /// This row's field count.
        found: usize,
    },
    /// A classification label that is not a non-negative integer (or is absurdly large).
    #[error("{file}:{line}: column {column:?}: label out of range: {text:?} {why}")]
    LabelOutOfRange {
        /// The file.
        file: String,
        /// The row's line.
        line: u64,
        /// The target column.
        column: String,
        /// The cell.
        text: String,
        /// What is wrong with it.
        why: String,
    },
    /// An `is_test` cell other than 0 or 1.
    #[error("{file}:{line}: column \"is_test\": expected 0 (train) or 1 (test), found {text:?}")]
    BadIsTest {
        /// The file.
        file: String,
        /// The row's line.
        line: u64,
        /// The cell.
        text: String,
    },
    /// Every training row has the same label.
    #[error("{file}: the training split has a single class (label {label}); classification needs at least 2 classes")]
    SingleClass {
        /// The file.
        file: String,
        /// The only label.
        label: usize,
    },
    /// The split left no training rows.
    #[error("{file}: no training rows ({detail})")]
    NoTrainRows {
        /// The file.
        file: String,
        /// Why.
        detail: String,
    },
    /// The split left no test rows.
    #[error("{file}: no test rows ({detail})")]
    NoTestRows {
        /// The file.
        file: String,
        /// Why.
        detail: String,
    },
    /// The CSV reader failed (should not happen on an in-memory buffer).
    #[error("{file}:{line}: invalid csv: {message}")]
    Csv {
        /// The file.
        file: String,
        /// The line the reader had reached.
        line: u64,
        /// The reader's message.
        message: String,
    },
    /// A `[data]` setting this dataset cannot take.
    #[error("`{key}` = {value} is not allowed: {reason}")]
    Invalid {
        /// `section.key`.
        key: &'static str,
        /// The value as written in a spec.
        value: String,
        /// Why, and what would work.
        reason: String,
    },
}

impl DataError {
    /// The file (or builtin/synthetic dataset) the error is about; `None` for a setting error.
    pub fn file(&self) -> Option<&str> {
        use DataError::*;
        match self {
            Read { file, .. }
            | NotGzip { file }
            | CorruptGzip { file, .. }
            | Empty { file }
            | NoRows { file }
            | MissingColumn { file, .. }
            | NoFeatures { file, .. }
            | DuplicateColumn { file, .. }
            | NotANumber { file, .. }
            | NotFinite { file, .. }
            | Ragged { file, .. }
            | LabelOutOfRange { file, .. }
            | BadIsTest { file, .. }
            | SingleClass { file, .. }
            | NoTrainRows { file, .. }
            | NoTestRows { file, .. }
            | Csv { file, .. } => Some(file),
            Invalid { .. } => None,
        }
    }

    /// The 1-based line the error is about (the header is line 1), where there is one.
    pub fn line(&self) -> Option<u64> {
        use DataError::*;
        match self {
            MissingColumn { line, .. }
            | NoFeatures { line, .. }
            | DuplicateColumn { line, .. }
            | NotANumber { line, .. }
            | NotFinite { line, .. }
            | Ragged { line, .. }
            | LabelOutOfRange { line, .. }
            | BadIsTest { line, .. }
            | Csv { line, .. } => Some(*line),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_lowercase_line_without_a_period() {
        let errors = [
            DataError::NotANumber {
                file: "data.csv".into(),
                line: 14,
                column: "x3".into(),
                text: "abc".into(),
            },
            DataError::NotFinite {
                file: "data.csv".into(),
                line: 7,
                column: "label".into(),
                what: "NaN".into(),
            },
            DataError::Empty {
                file: "e.csv".into(),
            },
        ];
        let texts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            texts[0],
            r#"data.csv:14: column "x3": cannot parse "abc" as a number"#
        );
        assert_eq!(
            texts[1],
            r#"data.csv:7: column "label": NaN is not allowed"#
        );
        for text in &texts {
            assert!(!text.contains('\n') && !text.ends_with('.'), "{text}");
        }
        assert_eq!(errors[0].file(), Some("data.csv"));
        assert_eq!(errors[0].line(), Some(14));
        assert_eq!(errors[2].line(), None);
    }
}
