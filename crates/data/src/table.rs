//! Reading a CSV file into a numeric table: gzip, header, cells, labels and the `is_test`
//! column, with an error that names the file, line and column for anything wrong.

use crate::DataError;
use nd_spec::Task;
use std::io::Read;
use std::path::Path;

/// The name of the optional column that fixes the split.
pub(crate) const IS_TEST: &str = "is_test";

/// The largest class id a label may have: far above any real dataset, low enough that a
/// mistaken regression target cannot ask for a million output units.
pub(crate) const MAX_LABEL: usize = 65_535;

/// The numbers of one file, all rows, before the split.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    /// Every column but the target and `is_test`, in file order.
    pub feature_names: Vec<String>,
    /// Row-major, `rows x feature_names.len()`.
    pub features: Vec<f32>,
    /// One per row; for classification a validated class id.
    pub targets: Vec<f32>,
    /// One per row when the file has an `is_test` column.
    pub is_test: Option<Vec<bool>>,
}

/// Reads a user's file, decompressing it when the name ends in `.gz` (or the content is gzip).
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| DataError::Read {
        file: file.clone(),
        source,
    })?;
    let named_gz = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("gz"));
    if named_gz || is_gzip(&bytes) {
        gunzip(&bytes, &file)
    } else {
        Ok(bytes)
    }
}

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Decompresses a whole gzip file (several members are allowed, as `gzip` writes them).
pub(crate) fn gunzip(bytes: &[u8], file: &str) -> Result<Vec<u8>, DataError> {
    if !is_gzip(bytes) {
        return Err(DataError::NotGzip { file: file.into() });
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|source| DataError::CorruptGzip {
            file: file.into(),
            source,
        })?;
    Ok(out)
}

/// A reader of CSV text with or without a UTF-8 byte order mark, rows of any length (the
/// callers check them), no header handling of its own.
fn reader(text: &[u8]) -> csv::Reader<&[u8]> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text)
}

/// The header row's names.
pub(crate) fn header(text: &[u8], file: &str) -> Result<Vec<String>, DataError> {
    let mut record = csv::ByteRecord::new();
    let found = reader(text)
        .read_byte_record(&mut record)
        .map_err(|e| DataError::Csv {
            file: file.into(),
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        })?;
    if !found {
        return Err(DataError::Empty { file: file.into() });
    }
    Ok(record
        .iter()
        .map(|cell| String::from_utf8_lossy(cell).trim().to_string())
        .collect())
}

/// Parses CSV text: a header row, then rows of numbers. `target` names the target column;
/// for classification its values must be class ids (integers `0..=MAX_LABEL`).
pub(crate) fn parse(text: &[u8], file: &str, target: &str, task: Task) -> Result<Table, DataError> {
    let mut reader = reader(text);
    let mut record = csv::ByteRecord::new();
    let csv_error = |e: csv::Error| DataError::Csv {
        file: file.into(),
        line: e.position().map_or(0, |p| p.line()),
        message: e.to_string(),
    };

    if !reader.read_byte_record(&mut record).map_err(csv_error)? {
        return Err(DataError::Empty { file: file.into() });
    }
    let mut lines = LineCounter::new(text);
    let header_line = lines.line_of(&record);
    let header: Vec<String> = record
        .iter()
        .map(|cell| String::from_utf8_lossy(cell).trim().to_string())
        .collect();
    check_duplicates(&header, file, header_line)?;
    let target_index = header
        .iter()
        .position(|name| name == target)
        .ok_or_else(|| missing_column(&header, target, file, header_line))?;
    let is_test_index = header
        .iter()
        .position(|name| name == IS_TEST)
        .filter(|&i| i != target_index);
    let feature_names: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != target_index && Some(i) != is_test_index)
        .map(|(_, name)| name.clone())
        .collect();
    if feature_names.is_empty() {
        return Err(DataError::NoFeatures {
            file: file.into(),
            line: header_line,
            columns: quoted_list(&header),
        });
    }

    let mut features = Vec::new();
    let mut targets = Vec::new();
    let mut is_test = is_test_index.map(|_| Vec::new());
    while reader.read_byte_record(&mut record).map_err(csv_error)? {
        let line = lines.line_of(&record);
        if record.len() != header.len() {
            return Err(DataError::Ragged {
                file: file.into(),
                line,
                expected: header.len(),
                found: record.len(),
            });
        }
        for (index, cell) in record.iter().enumerate() {
            let cell_error = |kind: CellError| kind.into_error(file, line, &header[index], cell);
            let value = parse_number(cell).ok_or_else(|| cell_error(CellError::NotANumber))?;
            if index == target_index {
                if !value.is_finite() {
                    return Err(cell_error(CellError::NotFinite));
                }
                if task == Task::Classification {
                    if let Some(why) = label_problem(value) {
                        return Err(cell_error(CellError::Label(why)));
                    }
                }
                targets.push(value);
            } else if Some(index) == is_test_index {
                let flag = if value == 0.0 {
                    false
                } else if value == 1.0 {
                    true
                } else {
                    return Err(cell_error(CellError::IsTest));
                };
                if let Some(flags) = is_test.as_mut() {
                    flags.push(flag);
                }
            } else {
                if !value.is_finite() {
                    return Err(cell_error(CellError::NotFinite));
                }
                features.push(value);
            }
        }
    }
    if targets.is_empty() {
        return Err(DataError::NoRows { file: file.into() });
    }
    Ok(Table {
        feature_names,
        features,
        targets,
        is_test,
    })
}

/// 1-based line numbers of records as an editor shows them. The csv reader's own count skips
/// blank lines, so this counts the newlines before each record's first byte instead.
struct LineCounter<'a> {
    text: &'a [u8],
    byte: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a [u8]) -> Self {
        Self {
            text,
            byte: 0,
            line: 1,
        }
    }

    /// Records must be passed in file order.
    fn line_of(&mut self, record: &csv::ByteRecord) -> u64 {
        let Some(start) = record.position().map(|p| p.byte() as usize) else {
            return 0;
        };
        let mut start = start.clamp(self.byte, self.text.len());
        // The reader's position for a record after blank lines is where the blank lines begin.
        while matches!(self.text.get(start), Some(b'\n' | b'\r')) {
            start += 1;
        }
        let newlines = self.text[self.byte..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += newlines as u64;
        self.byte = start;
        self.line
    }
}

/// `f32` parsing as std does it (`1`, `-2.5e3`, `NaN`, `inf`), tolerating spaces around.
///
/// Plain non-negative integers of up to 7 digits (pixel values, class labels: most cells of an
/// image dataset) are read digit by digit: exact in f32 (below 2^24), the same value std gives,
/// and a quarter of the time (MNIST's 7.85 million cells were a tenth of a CNN's `train`).
fn parse_number(cell: &[u8]) -> Option<f32> {
    if (1..=7).contains(&cell.len()) && cell.iter().all(u8::is_ascii_digit) {
        let value = cell
            .iter()
            .fold(0u32, |acc, digit| acc * 10 + u32::from(digit - b'0'));
        return Some(value as f32);
    }
    let text = std::str::from_utf8(cell).ok()?;
    text.parse().ok().or_else(|| text.trim().parse().ok())
}

fn label_problem(value: f32) -> Option<String> {
    if value < 0.0 {
        Some("is negative (class ids are integers from 0)".into())
    } else if value.fract() != 0.0 {
        Some(
            "is not an integer class id (for a real-valued target set data.task = \"regression\")"
                .into(),
        )
    } else if value > MAX_LABEL as f32 {
        Some(format!(
            "is above the largest class id allowed, {MAX_LABEL}"
        ))
    } else {
        None
    }
}

enum CellError {
    NotANumber,
    NotFinite,
    Label(String),
    IsTest,
}

impl CellError {
    fn into_error(self, file: &str, line: u64, column: &str, cell: &[u8]) -> DataError {
        let text = shorten(&String::from_utf8_lossy(cell));
        let (file, column) = (file.to_string(), column.to_string());
        match self {
            CellError::NotANumber => DataError::NotANumber {
                file,
                line,
                column,
                text,
            },
            CellError::NotFinite => {
                let is_nan = text.trim().to_ascii_lowercase().contains("nan");
                DataError::NotFinite {
                    file,
                    line,
                    column,
                    what: if is_nan {
                        "NaN".into()
                    } else {
                        format!("an infinite value ({text:?})")
                    },
                }
            }
            CellError::Label(why) => DataError::LabelOutOfRange {
                file,
                line,
                column,
                text,
                why,
            },
            CellError::IsTest => DataError::BadIsTest { file, line, text },
        }
    }
}

/// Keeps a quoted cell short enough for a one-line message.
fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    if text.chars().count() <= MAX_CHARS {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX_CHARS).collect();
        format!("{head}...")
    }
}

fn check_duplicates(header: &[String], file: &str, line: u64) -> Result<(), DataError> {
    let mut seen = std::collections::HashMap::new();
    for (index, name) in header.iter().enumerate() {
        if let Some(first) = seen.insert(name.as_str(), index) {
            return Err(DataError::DuplicateColumn {
                file: file.into(),
                line,
                column: name.clone(),
                first: first + 1,
                second: index + 1,
            });
        }
    }
    Ok(())
}

/// The first few names, quoted, for a one-line message.
fn quoted_list(names: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut list = names
        .iter()
        .take(SHOWN)
        .map(|name| format!("{name:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        list.push_str(&format!(", ... ({} in all)", names.len()));
    }
    list
}

fn missing_column(header: &[String], target: &str, file: &str, line: u64) -> DataError {
    let available = quoted_list(header);
    let hint = header
        .iter()
        .find(|name| name.eq_ignore_ascii_case(target))
        .map(|name| format!(" (did you mean {name:?}?)"))
        .unwrap_or_default();
    DataError::MissingColumn {
        file: file.into(),
        line,
        column: target.into(),
        hint,
        available,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str, task: Task) -> Result<Table, DataError> {
        parse(text.as_bytes(), "t.csv", "y", task)
    }

    fn error(text: &str, task: Task) -> String {
        parse_str(text, task).unwrap_err().to_string()
    }

    #[test]
    fn splits_features_target_and_is_test() {
        let table = parse_str("a,y,b,is_test\n1,0,2,0\n3,1,4.5,1\n", Task::Classification).unwrap();
        assert_eq!(table.feature_names, ["a", "b"]);
        assert_eq!(table.features, [1.0, 2.0, 3.0, 4.5]);
        assert_eq!(table.targets, [0.0, 1.0]);
        assert_eq!(table.is_test, Some(vec![false, true]));
        assert_eq!(table.targets.len(), 2);
    }

    #[test]
    fn tolerates_bom_crlf_spaces_quotes_and_blank_lines() {
        let text = "\u{feff}\"a\", y\r\n 1.5 ,\"2\"\r\n\r\n3,1\r\n";
        let table = parse_str(text, Task::Classification).unwrap();
        assert_eq!(table.feature_names, ["a"]);
        assert_eq!(table.features, [1.5, 3.0]);
        assert_eq!(table.targets, [2.0, 1.0]);
        assert_eq!(table.is_test, None);
    }

    #[test]
    fn line_numbers_count_the_header_and_blank_lines() {
        let message = error("a,y\n1,0\n\n2,x\n", Task::Classification);
        assert_eq!(
            message,
            r#"t.csv:4: column "y": cannot parse "x" as a number"#
        );
        let message = error(
            "\r\na,y\r\n1,0\r\n\r\n\r\n2,0\r\n3\r\n",
            Task::Classification,
        );
        assert_eq!(
            message,
            "t.csv:7: expected 2 fields (as in the header), found 1"
        );
        let message = error("\n\na,b\n1,0\n", Task::Classification);
        assert!(message.starts_with("t.csv:3: no column named"), "{message}");
    }

    #[test]
    fn regression_targets_may_be_any_finite_number() {
        let table = parse_str("a,y\n1,-2.5\n2,1e3\n", Task::Regression).unwrap();
        assert_eq!(table.targets, [-2.5, 1000.0]);
    }

    #[test]
    fn labels_must_be_class_ids() {
        let negative = error("a,y\n1,0\n1,-1\n", Task::Classification);
        assert!(
            negative.starts_with(r#"t.csv:3: column "y": label out of range: "-1" is negative"#),
            "{negative}"
        );
        let fraction = error("a,y\n1,2.5\n", Task::Classification);
        assert!(
            fraction.contains(r#"label out of range: "2.5" is not an integer"#),
            "{fraction}"
        );
        assert!(fraction.contains("data.task"), "{fraction}");
        let huge = error("a,y\n1,70000\n", Task::Classification);
        assert!(
            huge.contains("label out of range") && huge.contains("65535"),
            "{huge}"
        );
    }

    #[test]
    fn infinite_cells_are_named() {
        let message = error("a,y\ninf,0\n", Task::Classification);
        assert_eq!(
            message,
            r#"t.csv:2: column "a": an infinite value ("inf") is not allowed"#
        );
        let overflow = error("a,y\n1e39,0\n", Task::Classification);
        assert!(overflow.contains("infinite value (\"1e39\")"), "{overflow}");
    }

    #[test]
    fn integer_cells_parse_as_std_parses_them() {
        for cell in [
            "0", "7", "255", "0255", "1234567", "12345678", "9999999", " 5", "5 ", "-3", "1e3",
            "2.5",
        ] {
            let std: Option<f32> = cell.trim().parse().ok();
            assert_eq!(parse_number(cell.as_bytes()), std, "{cell:?}");
        }
    }

    #[test]
    fn long_cells_are_shortened() {
        let cell = "z".repeat(100);
        let message = error(&format!("a,y\n{cell},0\n"), Task::Classification);
        assert!(
            message.contains(&format!("\"{}...\"", "z".repeat(40))),
            "{message}"
        );
        assert!(message.len() < 120, "{message}");
    }

    #[test]
    fn duplicate_columns_are_rejected() {
        let message = error("a,y,a\n1,0,2\n", Task::Classification);
        assert_eq!(
            message,
            r#"t.csv:1: column "a" appears twice (fields 1 and 3)"#
        );
    }

    #[test]
    fn a_missing_target_suggests_a_near_spelling() {
        let message = error("a,Y\n1,0\n", Task::Classification);
        assert_eq!(
            message,
            r#"t.csv:1: no column named "y" (did you mean "Y"?); the columns are "a", "Y""#
        );
        let many: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        let message = error(&format!("{}\n", many.join(",")), Task::Classification);
        assert!(message.ends_with(r#""c7", ... (20 in all)"#), "{message}");
    }

    #[test]
    fn gunzip_rejects_plain_bytes() {
        let error = gunzip(b"a,y\n", "x.csv.gz").unwrap_err();
        assert!(matches!(error, DataError::NotGzip { .. }), "{error}");
    }
}
