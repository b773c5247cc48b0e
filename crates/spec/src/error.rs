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
    #[error("{}`{key}` = {value} is not allowed: expected {allowed}", file_prefix(file))]
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
    file.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default()
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
                key, value, allowed, ..
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
        let raw = inner.message().trim().to_string();
        let mut message = raw.lines().next().unwrap_or("").to_string();
        if let Some(field) = unknown_field(&raw) {
            let full = if path == "." || path.is_empty() {
                field.clone()
            } else {
                format!("{path}.{field}")
            };
            message = format!("unknown key `{full}`");
            if let Some(s) = crate::closest_key(&full) {
                message.push_str(&format!(" (did you mean `{s}`?)"));
            }
        } else if path != "." && !path.is_empty() {
            message = format!("`{path}`: {message}");
        }
        SpecError::Parse {
            file: None,
            line,
            column,
            message,
        }
    }
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, column)
}
