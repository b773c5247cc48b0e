//! `cargo xtask bench`: the criterion benchmarks, then their medians and where criterion keeps
//! its results.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::step::{Failure, Runner, Step};

/// `--bench '*'` picks the bench targets only: a bare `cargo bench -p nd-train` would also
/// build the library's unit tests in release mode, only to report them as ignored.
const BENCH: Step = Step {
    name: "bench",
    args: &[
        "bench",
        "-p",
        "nd-train",
        "--features",
        "wgpu",
        "--bench",
        "*",
    ],
    env: &[],
    hint: "",
};

/// Runs the benchmarks, passing `criterion_args` to criterion, and sums up what they measured.
pub fn run(criterion_args: &[String]) -> Result<(), Failure> {
    let mut runner = Runner::new();
    let start = SystemTime::now();
    let mut extra = Vec::new();
    if !criterion_args.is_empty() {
        extra.push("--".to_string());
        extra.extend(criterion_args.iter().cloned());
    }
    let result = runner.run_with(&BENCH, &extra);
    runner.summary(&[]);
    result?;

    let dir = criterion_dir(runner.root());
    let mut results = Vec::new();
    collect(&dir, start, &mut results);
    results.sort_by(|a, b| a.id.cmp(&b.id));
    println!("\n==> medians (estimates in {})", dir.display());
    if results.is_empty() {
        println!("    no benchmark wrote results in this run");
    }
    let width = results.iter().map(|r| r.id.len()).max().unwrap_or(0);
    for result in &results {
        let per_element = result
            .elements
            .filter(|&n| n > 0)
            .map(|n| {
                format!(
                    "  {} per element ({n} elements)",
                    format_nanos(result.median_nanos / n as f64)
                )
            })
            .unwrap_or_default();
        println!(
            "    {:<width$}  {:>10}{per_element}",
            result.id,
            format_nanos(result.median_nanos)
        );
    }
    println!(
        "\ncriterion keeps each benchmark's estimates in {}/<group>/<benchmark>/new/estimates.json;",
        dir.display()
    );
    println!("the next run compares against them (`-- --save-baseline NAME` / `-- --baseline NAME` to pin one)");
    Ok(())
}

/// Where criterion writes: `$CRITERION_HOME`, else `criterion/` in `$CARGO_TARGET_DIR`, else
/// (criterion asks `cargo metadata`) the workspace's `target/criterion`. Criterion resolves a
/// relative variable against the bench's working directory, the package's root.
fn criterion_dir(root: &Path) -> PathBuf {
    let bench_cwd = root.join("crates").join("train");
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return bench_cwd.join(home);
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(target) => bench_cwd.join(target).join("criterion"),
        None => root.join("target").join("criterion"),
    }
}

/// One benchmark's result, read back from criterion's files.
struct BenchResult {
    id: String,
    median_nanos: f64,
    elements: Option<u64>,
}

/// Every `new/estimates.json` under `dir` written since `since`.
fn collect(dir: &Path, since: SystemTime, results: &mut Vec<BenchResult>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, since, results);
            continue;
        }
        let is_new_estimate = path.file_name().is_some_and(|n| n == "estimates.json")
            && path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "new");
        let fresh = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified >= since);
        if !(is_new_estimate && fresh) {
            continue;
        }
        let Some(median_nanos) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| number_after(&text, "\"median\":", "\"point_estimate\":"))
        else {
            continue;
        };
        let benchmark =
            std::fs::read_to_string(path.with_file_name("benchmark.json")).unwrap_or_default();
        let id = string_after(&benchmark, "\"full_id\":").unwrap_or_else(|| {
            let bench_dir = path.parent().and_then(Path::parent).unwrap_or(dir);
            bench_dir
                .strip_prefix(dir)
                .unwrap_or(bench_dir)
                .display()
                .to_string()
        });
        let elements =
            number_after(&benchmark, "\"throughput\":", "\"Elements\":").map(|n| n as u64);
        results.push(BenchResult {
            id,
            median_nanos,
            elements,
        });
    }
}

/// The number that follows `key` after the first `section` in `json` (enough JSON for
/// criterion's flat files without a parser dependency).
fn number_after(json: &str, section: &str, key: &str) -> Option<f64> {
    let rest = &json[json.find(section)? + section.len()..];
    let rest = rest[rest.find(key)? + key.len()..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The string value that follows `key` (no escapes: criterion's ids here have none).
fn string_after(json: &str, key: &str) -> Option<String> {
    let rest = json[json.find(key)? + key.len()..]
        .trim_start()
        .strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// `812 ns`, `14.3 µs`, `21.07 ms`, `1.52 s`.
fn format_nanos(nanos: f64) -> String {
    let (value, unit) = if nanos < 1e3 {
        (nanos, "ns")
    } else if nanos < 1e6 {
        (nanos / 1e3, "µs")
    } else if nanos < 1e9 {
        (nanos / 1e6, "ms")
    } else {
        (nanos / 1e9, "s")
    };
    let decimals = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    format!("{value:.decimals$} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shortened from a criterion 0.5 run.
    const ESTIMATES: &str = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":21500000.0,"upper_bound":22600000.0},"point_estimate":22000000.5,"standard_error":280000.1},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":20900000.0,"upper_bound":21300000.0},"point_estimate":21070000.25,"standard_error":101000.0},"median_abs_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":3.5e5,"standard_error":1.0}}"#;
    const BENCHMARK: &str = r#"{"group_id":"epoch","function_id":"digits_mlp_fit","value_str":null,"throughput":{"Elements":1442},"full_id":"epoch/digits_mlp_fit","directory_name":"epoch/digits_mlp_fit","title":"epoch/digits_mlp_fit"}"#;

    #[test]
    fn reads_the_median_not_the_mean_or_its_deviation() {
        assert_eq!(
            number_after(ESTIMATES, "\"median\":", "\"point_estimate\":"),
            Some(21070000.25)
        );
        assert_eq!(
            number_after(ESTIMATES, "\"median_abs_dev\":", "\"point_estimate\":"),
            Some(3.5e5)
        );
        assert_eq!(
            number_after(ESTIMATES, "\"slope\":", "\"point_estimate\":"),
            None
        );
    }

    #[test]
    fn reads_the_id_and_the_throughput() {
        assert_eq!(
            string_after(BENCHMARK, "\"full_id\":").as_deref(),
            Some("epoch/digits_mlp_fit")
        );
        assert_eq!(
            number_after(BENCHMARK, "\"throughput\":", "\"Elements\":"),
            Some(1442.0)
        );
        let no_throughput = r#"{"throughput":null,"full_id":"x"}"#;
        assert_eq!(
            number_after(no_throughput, "\"throughput\":", "\"Elements\":"),
            None
        );
    }

    #[test]
    fn times_carry_their_unit() {
        assert_eq!(format_nanos(812.0), "812 ns");
        assert_eq!(format_nanos(14_300.0), "14.3 µs");
        assert_eq!(format_nanos(21_070_000.0), "21.1 ms");
        assert_eq!(format_nanos(1_520_000_000.0), "1.52 s");
    }
}
