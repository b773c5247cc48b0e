//! `cargo xtask report`: a real HTML report, rendered in headless Chromium and checked for
//! what it must show; with `--screenshot`, also saved as `docs/report.png` for the README.
//!
//! The report comes from the broken demo spec (its second ReLU layer dies), trained and fixed
//! on a small budget (2 seeds, 2 candidates: seconds). The checks read the page as Chromium
//! parsed it (`--dump-dom`), not the file, so a page the browser cannot make sense of fails.
//! `cargo xtask ci` runs the same check last, and skips it, saying so, where Chromium is not
//! installed.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::step::{Failure, Runner};

const NAME: &str = "report";
/// How the binary is built.
pub(crate) const BUILD: &[&str] = &["build", "--workspace", "--tests", "--features", "wgpu"];
/// The spec to train, relative to the workspace root.
const SPEC: &str = "configs/broken/digits-dying-relu.toml";
/// Where the run goes inside the scratch directory: the name the report shows.
const RUN: &str = "runs/digits-dying-relu";
const REPORT: &str = "report.html";
/// Layers the charts must name.
const LAYERS: &[&str] = &["hidden.0", "hidden.1"];
/// The screenshot, relative to the workspace root.
const SCREENSHOT: &str = "docs/report.png";
/// Wide enough for the two-column layout, tall enough for the whole demo report.
const WINDOW: &str = "1280,4000";
/// Chromium normally needs a second or two; a hung browser must not hang CI.
const CHROMIUM_LIMIT: Duration = Duration::from_secs(120);
const INSTALL_HINT: &str =
    "install Debian's `chromium` (`apt-get install chromium`), or set CHROMIUM to a Chromium or Chrome binary";

/// `cargo xtask report [--screenshot]`: here Chromium is required.
pub fn run(screenshot: bool) -> Result<(), Failure> {
    let Some(chromium) = find_chromium() else {
        return Err(Failure {
            message: "chromium not found".into(),
            hint: Some(INSTALL_HINT.into()),
            exit_code: 2,
        });
    };
    let mut runner = Runner::new();
    let result = check(&mut runner, &chromium, screenshot);
    runner.summary(&[]);
    result
}

/// The last step of `cargo xtask ci`: skipped, with the reason, where Chromium is missing, so
/// that a machine without it still passes.
pub fn ci_step(runner: &mut Runner) -> Result<(), Failure> {
    match find_chromium() {
        Some(chromium) => check(runner, &chromium, false),
        None => {
            runner.skip(NAME, &format!("chromium not found ({INSTALL_HINT})"));
            Ok(())
        }
    }
}

/// `$CHROMIUM`, else `chromium` on the `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
}

fn check(runner: &mut Runner, chromium: &Path, screenshot: bool) -> Result<(), Failure> {
    let shown = format!(
        "cargo build --workspace --tests --features wgpu; neuron-doctor train {SPEC} && neuron-doctor fix --report {REPORT}; {} --headless --dump-dom{}",
        chromium.display(),
        if screenshot { " and --screenshot" } else { "" }
    );
    runner.run_custom(
        NAME,
        &shown,
        "the scratch directory named above holds the run, the report and chromium's output",
        |runner| {
            let work = std::env::temp_dir().join(format!("nd-xtask-report-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&work);
            std::fs::create_dir_all(&work)
                .map_err(|e| format!("could not create {}: {e}", work.display()))?;
            let result = render_and_check(runner, chromium, &work, screenshot);
            match &result {
                Ok(()) => {
                    let _ = std::fs::remove_dir_all(&work);
                }
                Err(_) => println!("    kept {} for a look", work.display()),
            }
            result
        },
    )
}

fn render_and_check(
    runner: &Runner,
    chromium: &Path,
    work: &Path,
    screenshot: bool,
) -> Result<(), String> {
    let root = runner.root();
    // Built as the test step builds it (whole workspace, test targets, the wgpu feature): the
    // same feature set, so after `cargo xtask ci`'s tests this is a no-op rather than a second
    // build of burn (`-p neuron-doctor` alone leaves out the dev-dependencies, which changes
    // the features of crates burn shares with them). Run alone, it builds the tests too.
    let status = runner
        .cargo_command()
        .args(BUILD)
        .status()
        .map_err(|e| format!("could not start `cargo {}`: {e}", BUILD.join(" ")))?;
    if !status.success() {
        return Err(format!("`cargo {}` ended with {status}", BUILD.join(" ")));
    }
    let binary = target_dir(root)
        .join("debug")
        .join(format!("neuron-doctor{}", std::env::consts::EXE_SUFFIX));
    let spec = root.join(SPEC);
    doctor(
        &binary,
        work,
        &[
            "train".as_ref(),
            spec.as_os_str(),
            "--out".as_ref(),
            RUN.as_ref(),
            "-q".as_ref(),
        ],
        &[0],
    )?;
    // 1 (no cure) still writes a report; only 2 means the doctor failed.
    doctor(
        &binary,
        work,
        &[
            "fix",
            RUN,
            "--seeds",
            "2",
            "--candidates",
            "2",
            "--report",
            REPORT,
            "-q",
        ]
        .map(|a| a.as_ref()),
        &[0, 1],
    )?;
    let report = work.join(REPORT);
    let source = std::fs::read_to_string(&report)
        .map_err(|e| format!("no report at {}: {e}", report.display()))?;
    let url = file_url(&report);
    let profile = work.join("chromium-profile");
    let (dom, log) = chromium_run(chromium, &profile, &["--dump-dom".to_string(), url.clone()])?;
    let problems = check_dom(&dom, &source, &log);
    if !problems.is_empty() {
        let dump = work.join("dom.html");
        let _ = std::fs::write(&dump, &dom);
        let _ = std::fs::write(work.join("chromium.log"), &log);
        return Err(format!(
            "the rendered page (saved as {}) is not right: {}",
            dump.display(),
            problems.join("; ")
        ));
    }
    println!(
        "    chromium rendered {} charts; they name {}",
        dom.matches("<svg").count(),
        LAYERS.join(", ")
    );
    if screenshot {
        let out = root.join(SCREENSHOT);
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("could not create {}: {e}", dir.display()))?;
        }
        let _ = std::fs::remove_file(&out);
        chromium_run(
            chromium,
            &profile,
            &[
                format!("--screenshot={}", out.display()),
                format!("--window-size={WINDOW}"),
                url,
            ],
        )?;
        let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        if bytes == 0 {
            return Err(format!("chromium wrote no screenshot at {}", out.display()));
        }
        println!("    wrote {} ({} KiB)", out.display(), bytes / 1024);
    }
    Ok(())
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the root, where cargo runs),
/// else `target/`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// Runs `neuron-doctor ARGS` in `dir`; an exit code outside `ok` is a failure.
fn doctor(binary: &Path, dir: &Path, args: &[&std::ffi::OsStr], ok: &[i32]) -> Result<(), String> {
    let shown = std::iter::once("neuron-doctor".to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    println!("    {shown}");
    let status = Command::new(binary)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("could not start {}: {e}", binary.display()))?;
    match status.code() {
        Some(code) if ok.contains(&code) => Ok(()),
        _ => Err(format!("`{shown}` ended with {status}")),
    }
}

/// Runs headless Chromium, offline and with a throwaway profile, for at most
/// [`CHROMIUM_LIMIT`]; returns its stdout and stderr.
fn chromium_run(
    chromium: &Path,
    profile: &Path,
    args: &[String],
) -> Result<(String, String), String> {
    let mut flags: Vec<OsString> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
    ]
    .map(OsString::from)
    .to_vec();
    let mut user_data = OsString::from("--user-data-dir=");
    user_data.push(profile);
    flags.push(user_data);
    flags.extend(args.iter().map(OsString::from));
    let mut child = Command::new(chromium)
        .args(&flags)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", chromium.display()))?;
    // Read both pipes while waiting, so a full pipe cannot stall the browser.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > CHROMIUM_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "chromium did not finish within {}s",
                    CHROMIUM_LIMIT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for chromium: {e}")),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(format!(
            "chromium ended with {status}: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    Ok((stdout, stderr))
}

/// `file://` URL of an absolute path, with the characters a URL cannot hold escaped.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                url.push(byte as char)
            }
            other => url.push_str(&format!("%{other:02X}")),
        }
    }
    url
}

/// The contents of every SVG `<text>` element (the only `<text>` elements a page has).
fn svg_texts(dom: &str) -> Vec<&str> {
    dom.split("<text")
        .skip(1)
        .filter_map(|element| {
            let (_, after) = element.split_once('>')?;
            Some(after.split_once("</text>")?.0)
        })
        .collect()
}

/// What is wrong with the page Chromium rendered (`dom`) from `source`; empty when nothing.
fn check_dom(dom: &str, source: &str, log: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if !dom.contains("<h1>neuron-doctor report</h1>") || !dom.trim_end().ends_with("</html>") {
        problems.push("chromium did not dump the whole page".to_string());
    }
    let charts = dom.matches("<svg").count();
    let written = source.matches("<svg").count();
    if charts < 4 {
        problems.push(format!("{charts} svg charts, expected at least 4"));
    }
    if charts != written {
        problems.push(format!(
            "the file has {written} svg charts but the browser made {charts} of them"
        ));
    }
    let texts = svg_texts(dom);
    for layer in LAYERS {
        let naming = texts.iter().filter(|t| t.contains(layer)).count();
        if naming == 0 {
            problems.push(format!("no chart names the layer {layer}"));
        }
    }
    if !dom.contains("id=\"fix\"") || !texts.iter().any(|t| t.contains("original")) {
        problems.push("the fix comparison is missing".to_string());
    }
    if dom.contains("class=\"chart-error\"") {
        problems.push("a chart could not be drawn".to_string());
    }
    if dom.contains("<script") {
        problems.push("the page has a script".to_string());
    }
    if dom.contains(" src=") || dom.contains(" href=") {
        problems.push("the page loads something".to_string());
    }
    let without_namespace = dom.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    if without_namespace.contains("http://") || without_namespace.contains("https://") {
        problems.push("the page holds a URL".to_string());
    }
    // With --enable-logging, console messages (errors included) come out as CONSOLE lines.
    for line in log.lines().filter(|l| l.contains("CONSOLE")) {
        problems.push(format!("console: {}", line.trim()));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &str = "<svg width=\"580\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"1\">hidden.0</text><text x=\"2\">hidden.1</text><text>original</text></svg>";

    fn page(svgs: usize) -> String {
        format!(
            "<!DOCTYPE html><html><head></head><body><main><h1>neuron-doctor report</h1><section id=\"fix\">{}</section></main></body></html>",
            SVG.repeat(svgs)
        )
    }

    #[test]
    fn a_good_page_passes() {
        let dom = page(5);
        assert_eq!(
            check_dom(&dom, &dom, "[1:1:WARNING:dbus] noise"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn missing_charts_layers_and_fix_are_named() {
        let dom = page(2)
            .replace("hidden.1", "hidden.9")
            .replace("id=\"fix\"", "");
        let problems = check_dom(&dom, &page(3), "").join("\n");
        assert!(
            problems.contains("2 svg charts, expected at least 4"),
            "{problems}"
        );
        assert!(problems.contains("file has 3 svg charts"), "{problems}");
        assert!(problems.contains("hidden.1"), "{problems}");
        assert!(!problems.contains("hidden.0"), "{problems}");
        assert!(problems.contains("fix comparison"), "{problems}");
    }

    #[test]
    fn scripts_urls_and_console_errors_fail() {
        let dom = page(4).replace(
            "</main>",
            "<script>x()</script><a href=\"https://example.com\">x</a></main>",
        );
        let problems = check_dom(&dom, &dom, "[1:1:INFO:CONSOLE(3)] \"Uncaught\"").join("\n");
        assert!(problems.contains("script"), "{problems}");
        assert!(problems.contains("loads something"), "{problems}");
        assert!(problems.contains("holds a URL"), "{problems}");
        assert!(problems.contains("console: "), "{problems}");
    }

    #[test]
    fn file_urls_escape_what_urls_cannot_hold() {
        assert_eq!(
            file_url(Path::new("/tmp/a b/report#1.html")),
            "file:///tmp/a%20b/report%231.html"
        );
    }
}
