//! Shared helpers for the integration tests: finding the official SDKs that `cargo xtask sdk-deps`
//! installs into `target/sdk/`, and asking them questions over stdin/stdout.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the official SDKs and their driver scripts are. Build one with [`sdk`].
#[derive(Debug)]
pub struct Sdk {
    /// The venv's interpreter, with `twilio` and `vapi_server_sdk` installed.
    pub python: PathBuf,
    /// `node_modules` with `twilio` and `@vapi-ai/server-sdk`.
    pub node_modules: PathBuf,
    /// `fixtures/sdk/`, where the driver scripts live.
    pub fixtures: PathBuf,
}

/// The installed SDKs. Panics, saying how to install them, when they are missing: a compatibility test
/// that silently skips proves nothing.
pub fn sdk() -> Sdk {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target/sdk");
    let sdk = Sdk {
        python: target.join("venv/bin/python"),
        node_modules: target.join("node/node_modules"),
        fixtures: root.join("fixtures/sdk"),
    };
    let mut missing: Vec<String> = [
        &sdk.python,
        &sdk.node_modules.join("twilio"),
        &sdk.node_modules.join("@vapi-ai/server-sdk"),
        &sdk.fixtures,
    ]
    .into_iter()
    .filter(|path| !path.exists())
    .map(|path| path.display().to_string())
    .collect();
    // The PyPI distributions `twilio` and `vapi_server_sdk` install the packages `twilio` and `vapi`.
    for package in ["twilio", "vapi"] {
        if !python_package_installed(&target.join("venv"), package) {
            missing.push(format!("the Python package `{package}` in {}", target.join("venv").display()));
        }
    }
    assert!(
        missing.is_empty(),
        "the official SDKs are not installed (missing: {}): run `cargo xtask sdk-deps` first",
        missing.join(", ")
    );
    sdk
}

/// Whether `venv/lib/python3.*/site-packages/<package>/` exists. A look at the files, not an import: the
/// Vapi SDK takes seconds to import.
fn python_package_installed(venv: &Path, package: &str) -> bool {
    std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .any(|python| python.path().join("site-packages").join(package).join("__init__.py").is_file())
}

impl Sdk {
    /// Runs `fixtures/sdk/<script>` under the venv's Python with `input` as JSON on stdin, and parses the
    /// JSON it prints.
    pub fn python(&self, script: &str, input: &serde_json::Value) -> serde_json::Value {
        let mut cmd = Command::new(&self.python);
        cmd.arg(self.fixtures.join(script));
        run_json(cmd, script, input)
    }

    /// Runs `fixtures/sdk/<script>` under `node`, resolving packages from the installed `node_modules`,
    /// with `input` as JSON on stdin, and parses the JSON it prints.
    pub fn node(&self, script: &str, input: &serde_json::Value) -> serde_json::Value {
        let mut cmd = Command::new("node");
        cmd.arg(self.fixtures.join(script)).env("NODE_PATH", &self.node_modules);
        run_json(cmd, script, input)
    }
}

fn run_json(mut cmd: Command, script: &str, input: &serde_json::Value) -> serde_json::Value {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}; is it installed and on PATH?"));
    let stdin = child.stdin.take().expect("stdin is piped");
    let body = input.to_string();
    // Write from another thread so a child that answers while still reading cannot deadlock us.
    let writer = std::thread::spawn(move || {
        let mut stdin = stdin;
        stdin.write_all(body.as_bytes())
    });
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("waiting for {script}: {e}"));
    writer.join().expect("stdin writer thread").unwrap_or_else(|e| panic!("writing to {script}: {e}"));
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed something that is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
