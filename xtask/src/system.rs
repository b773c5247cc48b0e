//! The system packages the checks need beyond Rust, installed where they are missing and this
//! user may (root, or password-less sudo) with Debian's apt:
//!
//! - `mesa-vulkan-drivers` (Mesa's software Vulkan, lavapipe) where no Vulkan driver is
//!   installed: the wgpu tests need an adapter, and a machine without a GPU has none.
//! - `chromium` where neither `chromium` nor `$CHROMIUM` is found: the report check renders in
//!   it (and is skipped without it).
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

/// Whether some Vulkan driver manifest is installed (or the loader is pointed at one).
pub fn has_vulkan_driver() -> bool {
    if ["VK_ICD_FILENAMES", "VK_DRIVER_FILES"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
    {
        return true;
    }
    VULKAN_ICD_DIRS.iter().any(|dir| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
    })
}

/// The packages to install: each with whether it is missing.
fn wanted() -> Vec<(&'static str, bool)> {
    vec![
        (
            "mesa-vulkan-drivers",
            cfg!(target_os = "linux") && !has_vulkan_driver(),
        ),
        ("chromium", crate::report::find_chromium().is_none()),
    ]
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

/// Installs what is missing; never fails the run (see the module's doc).
pub fn ci_step(runner: &mut Runner) {
    let missing: Vec<&str> = wanted()
        .into_iter()
        .filter(|(_, missing)| *missing)
        .map(|(name, _)| name)
        .collect();
    if missing.is_empty() {
        runner.skip(
            "packages",
            "a Vulkan driver and chromium are already installed",
        );
        return;
    }
    let apt = Path::new("/usr/bin/apt-get");
    let root = as_root();
    let (Some(root), true) = (root, apt.is_file()) else {
        runner.skip(
            "packages",
            &format!(
                "{} missing and cannot be installed here (needs apt-get and root or password-less sudo); the wgpu tests need a Vulkan driver, the report check chromium",
                missing.join(", ")
            ),
        );
        return;
    };
    let shown = format!("apt-get install {}", missing.join(" "));
    let _ = runner.run_custom("packages", &shown, "", |_| {
        let run = |args: &[&str]| -> bool {
            let mut command = Command::new(root.first().copied().unwrap_or("apt-get"));
            if !root.is_empty() {
                command.args(&root[1..]).arg("apt-get");
            }
            command
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !run(&["update", "-qq"]) {
            println!("    warning: apt-get update failed; trying the install anyway");
        }
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(&missing);
        if run(&args) {
            Ok(())
        } else {
            println!(
                "    warning: could not install {}; going on",
                missing.join(", ")
            );
            Ok(())
        }
    });
}
