//! `cargo xtask ci`: every check CI runs, cheapest first, stopping at the first failure.
//! The HTML report in headless Chromium is skipped where Chromium is missing; the last, a `fix`
//! through a one-node Slurm cluster started for it, where Slurm cannot be installed.
//!
//! Every cargo step builds the workspace with the `wgpu` feature: the wgpu backend is compiled,
//! linted and tested, and one feature set means burn is built once per kind of build (turning
//! a feature on or off rebuilds burn's heavy crates). A first step installs the system
//! packages the tests need (a Vulkan driver, chromium) where it can.

use crate::step::{Failure, Runner, Step};
use crate::{report, slurm, system};

/// The checks, in order: a formatting slip fails in a second, before clippy and the tests
/// compile burn.
const STEPS: &[Step] = &[
    Step {
        name: "fmt",
        args: &["fmt", "--all", "--check"],
        env: &[],
        hint: "run `cargo fmt --all` to format the code",
    },
    Step {
        name: "clippy",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            "wgpu",
            "--",
            "-D",
            "warnings",
        ],
        env: &[],
        hint: "fix the warnings above; `cargo clippy --workspace --all-targets` lists them",
    },
    // No second clippy pass without wgpu: turning a feature off re-checks all of burn (4 min
    // on the slowest CI machine seen). The code only that build compiles is kept to two
    // one-line stubs (`crates/train/src/device.rs`); the message they return is compiled,
    // linted and tested in this build.
    Step {
        name: "doc",
        args: &["doc", "--workspace", "--no-deps", "--features", "wgpu"],
        env: &[("RUSTDOCFLAGS", "-D warnings")],
        hint: "fix the rustdoc warnings above (broken intra-doc links, unclosed HTML tags, ...)",
    },
    // nextest runs every test in its own process: burn's ndarray random generator is one
    // global for the whole process, so seeded tests running as threads of one process disturb
    // each other's draws.
    Step {
        name: "test",
        args: &["nextest", "run", "--workspace", "--features", "wgpu"],
        env: &[],
        hint: "rerun one failing test with `cargo nextest run -p <crate> <test name>`",
    },
    // nextest does not run doctests.
    Step {
        name: "doctest",
        args: &["test", "--workspace", "--doc", "--features", "wgpu"],
        env: &[],
        hint: "",
    },
];

/// Runs [`STEPS`]; on a failure prints the summary so far and returns the failure.
pub fn run() -> Result<(), Failure> {
    let mut runner = Runner::new();
    runner.require("fmt", "install rustfmt: `rustup component add rustfmt`")?;
    runner.require("clippy", "install clippy: `rustup component add clippy`")?;
    runner.require(
        "nextest",
        "install cargo-nextest: `cargo install cargo-nextest --locked` (or a prebuilt binary from https://nexte.st)",
    )?;
    system::ci_step(&mut runner);
    for (index, step) in STEPS.iter().enumerate() {
        if let Err(failure) = runner.run(step) {
            let mut not_run: Vec<&str> = STEPS[index + 1..].iter().map(|s| s.name).collect();
            not_run.extend(["report", "slurm"]);
            runner.summary(&not_run);
            return Err(failure);
        }
    }
    let report = report::ci_step(&mut runner);
    if report.is_err() {
        runner.summary(&["slurm"]);
        return report;
    }
    let slurm = slurm::ci_step(&mut runner);
    runner.summary(&[]);
    slurm?;
    match runner.skipped() {
        0 => println!("\nall {} checks passed", runner.passed()),
        skipped => println!(
            "\nall {} checks that could run passed; {skipped} skipped (see above)",
            runner.passed()
        ),
    }
    Ok(())
}
