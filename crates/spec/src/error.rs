//! Spec errors: each names the key, the value and what is allowed, on one line.

use std::path::{Path, PathBuf};

/// Why a spec could not be read, parsed or accepted.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("{}: cannot read spec: {source}", path.display())]
    Read {
        /// The spec file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax, a wrong type or an unknown key.
    #[error("{}{line}:{column}: {message}", file.as_ref().map(|p| format!("{}:", p.display())).unwrap_or_default())]
    Parse {
        /// The spec file, when known.
        file: Option<PathBuf>,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A value outside what the key allows.
    #[error(
        "{}`{key}` = {value} is not allowed: expected {allowed}",
        file_prefix(file)
    )]
    Invalid {
        /// `section.key`.
        key: String,
        /// The offending value.
        value: String,
        /// What the key allows.
        allowed: String,
        /// The spec file, when known.
        #[doc(hidden)]
        file: Option<PathBuf>,
    },
    /// A key that must be present is missing.
    #[error("{}`{key}` is required: {why}", file_prefix(file))]
    Missing {
        /// `section.key`.
        key: String,
        /// Why it is needed.
        why: String,
        /// The spec file, when known.
        #[doc(hidden)]
        file: Option<PathBuf>,
    },
    /// A `section.key` that no spec has.
    #[error("unknown key `{key}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownKey {
        /// The key asked for.
        key: String,
        /// The closest valid key.
        suggestion: Option<String>,
    },
}

fn file_prefix(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

impl SpecError {
    pub(crate) fn invalid(key: &str, value: String, allowed: &str) -> Self {
        SpecError::Invalid {
            key: key.to_string(),
            value,
            allowed: allowed.to_string(),
            file: None,
        }
    }

    pub(crate) fn missing(key: &str, why: &str) -> Self {
        SpecError::Missing {
            key: key.to_string(),
            why: why.to_string(),
            file: None,
        }
    }

    /// Attaches the spec file's path to an error that lacks it.
    pub fn in_file(self, path: &Path) -> Self {
        match self {
            SpecError::Parse {
                line,
                column,
                message,
                ..
            } => SpecError::Parse {
                file: Some(path.to_path_buf()),
                line,
                column,
                message,
            },
            SpecError::Invalid {
                key,
                value,
                allowed,
                ..
            } => SpecError::Invalid {
                key,
                value,
                allowed,
                file: Some(path.to_path_buf()),
            },
            SpecError::Missing { key, why, .. } => SpecError::Missing {
                key,
                why,
                file: Some(path.to_path_buf()),
            },
            other => other,
        }
    }

    /// The key the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            SpecError::Invalid { key, .. }
            | SpecError::Missing { key, .. }
            | SpecError::UnknownKey { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Turns toml's error (with the serde path to the failing value) into one line that names
    /// the key: `line:column: message`.
    pub(crate) fn from_toml(
        text: &str,
        err: serde_path_to_error::Error<toml::de::Error>,
    ) -> SpecError {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let (line, column) = match inner.span() {
            Some(span) => line_column(text, span.start),
            None => (1, 1),
        };
        // toml's messages can span several lines ("invalid table header\nduplicate key ..."):
        // keep every part, on one line.
        let raw = inner
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(": ");
        // serde_path_to_error's path is "." at the root.
        let path = if path == "." { String::new() } else { path };
        let message = if let Some(field) = quoted_after(&raw, "unknown field `") {
            // The path already ends with the unknown field when serde got that far; `[trian]`
            // or `[model] hiden = 1` give `trian` and `model.hiden`.
            let full = if path == field || path.ends_with(&format!(".{field}")) {
                path
            } else {
                join_key(&path, &field)
            };
            let mut message = format!("unknown key `{full}`");
            if let Some(s) = crate::closest_key(&full) {
                message.push_str(&format!(" (did you mean `{s}`?)"));
            }
            message
        } else if let Some(field) = quoted_after(&raw, "missing field `") {
            let full = join_key(&path, &field);
            if crate::SECTIONS.contains(&full.as_str()) {
                format!("missing required section `[{full}]`")
            } else {
                format!("missing required key `{full}`")
            }
        } else {
            let message = plain_expected(&raw);
            let key = if path.is_empty() {
                key_at_line(text, line)
            } else {
                Some(path)
            };
            match key {
                Some(key) => format!("`{key}`: {message}"),
                None => message,
            }
        };
        SpecError::Parse {
            file: None,
            line,
            column,
            message,
        }
    }

    /// What a toml/serde message says is expected, for [`SpecError::Invalid`]'s `allowed`:
    /// "one of `relu`, ..." from "unknown variant `relux`, expected one of `relu`, ...".
    pub(crate) fn allowed_from_message(message: &str) -> String {
        let message = plain_expected(message);
        match message.rfind(", expected ") {
            Some(at) => message[at + ", expected ".len()..].to_string(),
            None => message,
        }
    }
}

fn join_key(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// The text between `prefix` and the next backtick, when `message` starts with `prefix`.
fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    Some(rest.split('`').next()?.to_string())
}

/// Rewrites serde's Rust type names at the end of a message into words a spec author knows.
fn plain_expected(message: &str) -> String {
    const PLAIN: &[(&str, &str)] = &[
        ("expected f64", "expected a number"),
        ("expected usize", "expected an integer >= 0"),
        ("expected u64", "expected an integer >= 0"),
        ("expected a sequence", "expected an array"),
        ("expected struct DataSpec", "expected a table"),
        ("expected struct ModelSpec", "expected a table"),
        ("expected struct TrainSpec", "expected a table"),
        ("expected struct DoctorThresholds", "expected a table"),
        ("expected struct Spec", "expected a table"),
    ];
    for (rust, plain) in PLAIN {
        if let Some(head) = message.strip_suffix(rust) {
            return format!("{head}{plain}");
        }
    }
    message.to_string()
}

/// For a syntax error, which has no serde path: the `section.key` written on the error's line,
/// if that line is a `key = value` line.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?.trim();
    let (key, _) = here.split_once('=')?;
    let key = key.trim();
    let bare = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    if !bare(key) {
        return None;
    }
    let section = lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim())
        .filter(|s| bare(s));
    Some(match section {
        Some(section) => format!("{section}.{key}"),
        None => key.to_string(),
    })
}

/// 1-based line and column (in characters) of a byte offset; offsets past the end or inside a
/// character are clamped, so no input can make this panic.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}
