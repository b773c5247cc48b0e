//! neuron-doctor's output: the same diagnosis or fix report as a table for people, JSON for
//! machines (additive only: consumers must tolerate new fields), Markdown for pull requests, or
//! one self-contained HTML page with inline SVG charts (`html_report`).
//!
//! Rendering is pure: every function returns a `String` and never prints.

mod compare;
mod diagnosis;
mod fix;
mod html;

pub use compare::{compare_json, compare_markdown, compare_text};
pub use diagnosis::{diagnosis_json, diagnosis_markdown, diagnosis_text};
pub use fix::{fix_json, fix_markdown, fix_text};
pub use html::{compare_html, html_report, is_report, HtmlInput};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Tables and text for a terminal.
    #[default]
    Text,
    /// One JSON document.
    Json,
    /// Markdown.
    Markdown,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" | "table" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "markdown" | "md" => Ok(Format::Markdown),
            _ => Err(format!("`{s}` is not one of text, json, markdown")),
        }
    }
}

pub(crate) use nd_probe::percent as pct;

pub(crate) fn sci(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if (1e-2..1e3).contains(&x.abs()) {
        format!("{x:.3}")
    } else {
        format!("{x:.2e}")
    }
}
