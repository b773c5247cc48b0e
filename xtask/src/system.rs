//! The system packages the checks need beyond Rust, installed where they are missing and this
//! user may (root, or password-less sudo) with Debian's apt:
//!
//! - `mesa-vulkan-drivers` (Mesa's software Vulkan, lavapipe) where lavapipe is not installed:
//!   the wgpu tests need an adapter, a machine without a GPU has none, and a driver manifest
//!   alone (say NVIDIA's, in a container without the GPU) does not prove there is one. Where
//!   a GPU is there, wgpu still prefers it.
//! - `chromium` where neither `chromium` nor `$CHROMIUM` is found: the report check renders in
//!   it (and is skipped without it).
//! - `slurm-wlm` and `munge` where Slurm's programs are missing: the slurm check starts a
//!   one-node cluster with them (and is skipped without them).
//!
//! Where a package cannot be installed the step says so and CI goes on: the wgpu tests then
//! fail with their own one-line "no usable GPU adapter" error, and the report check is skipped.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::step::Runner;

/// Where the Vulkan loader looks for driver manifests (`*.json`) on Linux.
const VULKAN_ICD_DIRS: &[&str] = &[
    "/usr/share/vulkan/icd.d",
    "/usr/local/share/vulkan/icd.d",
    "/etc/vulkan/icd.d",
];

/// Whether Mesa's software Vulkan driver (lavapipe, manifest `lvp_icd.*.json`) is installed.
pub fn has_lavapipe() -> bool {
    VULKAN_ICD_DIRS.iter().any(|dir| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("lvp_icd"))
        })
    })
}

/// The packages to install: each with whether it is missing.
fn wanted() -> Vec<(&'static str, bool)> {
    vec![
        (
            "mesa-vulkan-drivers",
            cfg!(target_os = "linux") && !has_lavapipe(),
        ),
        ("chromium", crate::report::find_chromium().is_none()),
        ("slurm-wlm", !crate::slurm::installed()),
        ("munge", !crate::slurm::installed()),
    ]
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// How to run a command as root: directly, through `sudo -n`, or not at all.
fn as_root() -> Option<Vec<&'static str>> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        return Some(Vec::new());
    }
    let sudo = Command::new("sudo")
        .args(["-n", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    sudo.then(|| vec!["sudo", "-n"])
}

/// Installs what is missing; never fails the run (see the module's doc). Recorded as a step
/// only when something was missing: passed when installed, skipped (saying why) otherwise.
pub fn ci_step(runner: &mut Runner) {
    let missing: Vec<&str> = wanted()
        .into_iter()
        .filter(|(_, missing)| *missing)
        .map(|(name, _)| name)
        .collect();
    if missing.is_empty() {
        println!("==> packages: lavapipe, chromium and Slurm are installed, nothing to do\n");
        return;
    }
    let apt = Path::new("/usr/bin/apt-get");
    let root = as_root();
    let (Some(root), true) = (root, apt.is_file()) else {
        runner.skip(
            "packages",
            &format!(
                "{} missing and cannot be installed here (needs apt-get and root or password-less sudo); the wgpu tests need a Vulkan driver, the report check chromium, the slurm check slurm-wlm and munge",
                missing.join(", ")
            ),
        );
        return;
    };
    // `env` sets the variable past sudo, which resets the environment.
    let run = |args: &[&str]| -> bool {
        let mut command = Command::new(root.first().copied().unwrap_or("env"));
        if !root.is_empty() {
            command.args(&root[1..]).arg("env");
        }
        command
            .args(["DEBIAN_FRONTEND=noninteractive", "apt-get"])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    println!("==> packages: apt-get install {}", missing.join(" "));
    if !run(&["update", "-qq"]) {
        println!("    warning: apt-get update failed; trying the install anyway");
    }
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    if run(&args) {
        let _ = runner.run_custom("packages", "installed", "", |_| Ok(()));
    } else {
        runner.skip(
            "packages",
            &format!(
                "could not install {} (apt-get failed); the wgpu tests need a Vulkan driver, the report check chromium, the slurm check slurm-wlm and munge",
                missing.join(", ")
            ),
        );
    }
}
