//! The harness every integration test uses: a fresh temporary directory, the real
//! `neuron-doctor` binary run inside it, and small readers for what it writes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The files every run directory holds.
pub const RUN_FILES: [&str; 5] = [
    "config.toml",
    "final.bpk",
    "initial.bpk",
    "metrics.jsonl",
    "summary.json",
];

/// The repository's `configs/` directory, where the documented example specs live.
const CONFIGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs");

/// The absolute path of a spec under `configs/`, e.g. `config("broken/digits-dying-relu.toml")`.
pub fn config(name: &str) -> String {
    let path = Path::new(CONFIGS).join(name);
    assert!(path.is_file(), "no spec {}", path.display());
    path.display().to_string()
}

/// A temporary directory, removed when the test ends, in which the binary runs.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    /// A new, empty directory.
    pub fn new() -> TestDir {
        let dir = tempfile::Builder::new()
            .prefix("neuron-doctor-test-")
            .tempdir()
            .expect("create a temporary directory");
        TestDir { dir }
    }

    /// The directory's absolute path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `rel` inside the directory.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    /// A command for the binary, run in this directory, with a logging setup that cannot add
    /// lines to stderr.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_neuron-doctor"));
        cmd.args(args)
            .current_dir(self.path())
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE");
        cmd
    }

    /// Runs the binary with `args` and waits for it.
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run neuron-doctor")
    }

    /// Runs the binary and asserts its exit code, showing its output when the code differs.
    pub fn expect(&self, args: &[&str], code: i32) -> Output {
        let out = self.cmd(args);
        assert_code(&out, code, args);
        out
    }

    /// `train CONFIG --out OUT -q` plus `extra`, which must succeed.
    pub fn train(&self, config: &str, out: &str, extra: &[&str]) -> Output {
        let mut args = vec!["train", config, "--out", out, "-q"];
        args.extend_from_slice(extra);
        self.expect(&args, 0)
    }

    /// Writes `contents` to `rel`, creating parent directories.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent directories");
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// The bytes of `rel`.
    pub fn read_bytes(&self, rel: &str) -> Vec<u8> {
        let path = self.join(rel);
        fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// The text of `rel`.
    pub fn read(&self, rel: &str) -> String {
        String::from_utf8(self.read_bytes(rel)).expect("utf-8 file")
    }

    /// `rel` parsed as one JSON document.
    pub fn read_json(&self, rel: &str) -> Value {
        serde_json::from_str(&self.read(rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
    }

    /// `rel` parsed as JSON lines, one value per non-empty line.
    pub fn read_jsonl(&self, rel: &str) -> Vec<Value> {
        self.read(rel)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{rel}: {l:?} is not JSON: {e}"))
            })
            .collect()
    }

    /// The sorted names in `rel` (`""` for the directory itself), hidden ones included.
    pub fn entries(&self, rel: &str) -> Vec<String> {
        let path = self.join(rel);
        let mut names: Vec<String> = fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("list {}: {e}", path.display()))
            .map(|e| {
                e.expect("directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// Asserts that `rel` is a complete run: it holds the five documented files (later
    /// versions may add more; the format is additive).
    pub fn assert_run(&self, rel: &str) {
        let entries = self.entries(rel);
        for file in RUN_FILES {
            assert!(
                entries.iter().any(|e| e == file),
                "{rel} lacks {file}: {entries:?}"
            );
        }
    }

    /// Asserts that no temporary `.NAME.partial-PID` directory (or its `.old` twin) is left
    /// anywhere below the directory.
    pub fn assert_no_partial(&self) {
        let mut stack = vec![self.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).expect("list directory") {
                let entry = entry.expect("directory entry");
                let name = entry.file_name().to_string_lossy().into_owned();
                assert!(
                    !name.contains(".partial") && !name.ends_with(".old"),
                    "left behind: {}",
                    entry.path().display()
                );
                if entry.file_type().expect("file type").is_dir() {
                    stack.push(entry.path());
                }
            }
        }
    }
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stdout parsed as one JSON document.
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            stdout(out),
            stderr(out)
        )
    })
}

/// Asserts the exit code, showing the command's output when it differs.
pub fn assert_code(out: &Output, code: i32, args: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "neuron-doctor {}\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        stdout(out),
        stderr(out)
    );
}

/// Asserts the contract for bad input: exit 2, and stderr is one line that starts with
/// `error:`, contains every one of `names`, and is not a panic.
pub fn assert_bad_input(out: &Output, names: &[&str]) {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2\n--- stdout\n{}\n--- stderr\n{err}",
        stdout(out)
    );
    assert!(
        !err.contains("panicked"),
        "a panic, not an error message:\n{err}"
    );
    let line = err.trim_end_matches('\n');
    assert!(!line.contains('\n'), "stderr is not one line:\n{err}");
    assert!(
        line.starts_with("error: "),
        "stderr does not start with `error: `:\n{err}"
    );
    for name in names {
        assert!(line.contains(name), "stderr does not name {name:?}:\n{err}");
    }
}

/// The findings of a diagnosis as `(code, severity, layer)`; layer is `""` for none.
pub fn findings(diagnosis: &Value) -> Vec<(String, String, String)> {
    diagnosis["findings"]
        .as_array()
        .expect("findings is an array")
        .iter()
        .map(|f| {
            (
                f["code"].as_str().expect("code").to_string(),
                f["severity"].as_str().expect("severity").to_string(),
                f["layer"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The layer named `name` of a diagnosis.
pub fn layer<'a>(diagnosis: &'a Value, name: &str) -> &'a Value {
    diagnosis["layers"]
        .as_array()
        .expect("layers is an array")
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no layer {name} in {diagnosis:#}"))
}

/// A number field, with a message that names it when it is missing.
pub fn num(value: &Value, field: &str) -> f64 {
    value[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {value:#}"))
}
