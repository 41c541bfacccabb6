//! `ringback conform` against orchestrators in processes of their own, over real sockets and in real
//! time: the reference orchestrator started from its binary, the example orchestrators in Node and
//! Python (which must pass every MUST rule), the naive one (which must fail with the expected rule ids),
//! and target commands that do not start or never become ready (exit code 2).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A scratch folder of this test's own under `target/tmp`.
fn scratch(name: &str) -> PathBuf {
    let dir = workspace().join("target/tmp/conform").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// What a `ringback conform` run printed, its exit code, and its JSON report.
struct Conformed {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    json: serde_json::Value,
}

impl Conformed {
    /// The ids of the rules each scenario broke, by scenario.
    fn broken(&self) -> Vec<(String, BTreeSet<String>)> {
        self.json["scenarios"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let rules = s["violations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v["rule"].as_str().map(str::to_owned))
                    .collect();
                (s["name"].as_str().unwrap_or_default().to_owned(), rules)
            })
            .collect()
    }
}

fn conform(target: &Path, scenarios: &[&str], out: &Path) -> Conformed {
    let json = out.join("verdicts.json");
    let library = workspace().join("scenarios/library");
    let output = Command::new(env!("CARGO_BIN_EXE_ringback"))
        .arg("conform")
        .arg("--target")
        .arg(target)
        .args(scenarios.iter().map(|s| library.join(format!("{s}.toml"))))
        .arg("--json")
        .arg(&json)
        .arg("--report")
        .arg(out.join("report.md"))
        .arg("--log")
        .arg(out.join("orchestrator.log"))
        .output()
        .expect("ringback runs");
    Conformed {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        json: std::fs::read_to_string(&json)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null),
    }
}

/// The example orchestrators' dependencies, which `cargo xtask sdk-deps` installs. Panics saying so
/// when they are missing: a conformance test that silently skips proves nothing.
fn examples_installed() {
    let target = workspace().join("target/orchestrators");
    let missing: Vec<String> =
        ["node/node_modules/twilio", "naive/node_modules/twilio", "python/venv/bin/python"]
            .iter()
            .map(|p| target.join(p))
            .filter(|p| !p.exists())
            .map(|p| p.display().to_string())
            .collect();
    assert!(missing.is_empty(), "missing {}: run `cargo xtask sdk-deps` first", missing.join(", "));
}

/// Every library scenario that applies to an orchestrator that cannot be restarted: the ones the Node and
/// Python examples are held to.
const MUST_PASS: &[&str] = &[
    "answered-by-a-human",
    "busy-returns-the-caller",
    "caller-hangs-up-before-any-transfer",
    "caller-hangs-up-on-hold",
    "caller-hangs-up-soon-after-coming-back",
    "caller-hangs-up-while-bridged",
    "caller-hangs-up-while-the-specialist-rings",
    "department-fallback-number-answers",
    "department-numbers-all-fail",
    "every-webhook-delivered-twice-answered",
    "every-webhook-delivered-twice-busy",
    "failed-dial-returns-the-caller",
    "fax-is-never-bridged",
    "fifty-concurrent-callers",
    "final-status-arrives-late",
    "final-status-delivered-twice",
    "final-status-dropped",
    "forged-twilio-webhooks-are-refused",
    "forged-vapi-messages-are-refused",
    "lost-final-status-then-the-caller-hangs-up",
    "no-answer-returns-the-caller",
    "number-outside-the-allowlist-is-refused",
    "rejected-call-returns-the-caller",
    "second-request-after-a-failed-transfer",
    "specialist-hangs-up-after-talking-returns-the-caller",
    "specialist-hangs-up-at-once-counts-as-failure",
    "the-callers-own-words-and-keys-come-back-with-them",
    "tool-call-delivered-twice",
    "transfer-requested-twice-in-one-burst",
    "two-callers-hang-up-on-hold-each-on-their-own",
    "two-concurrent-callers-interleaved",
    "unparsable-twiml-on-every-voice-answer-drops-the-caller",
    "voicemail-machine-start-is-never-bridged",
];

fn assert_passes(conformed: &Conformed, what: &str) {
    let broken: Vec<String> = conformed
        .broken()
        .into_iter()
        .filter(|(_, rules)| !rules.is_empty())
        .map(|(name, rules)| format!("{name}: {rules:?}"))
        .collect();
    assert_eq!(
        conformed.code,
        Some(0),
        "{what} should pass every scenario; broken: {broken:?}\nstdout:\n{}\nstderr:\n{}",
        conformed.stdout,
        conformed.stderr
    );
}

#[test]
fn the_reference_orchestrator_passes_the_library_as_an_external_process() {
    let out = scratch("reference");
    // The binary next to this test's, started as the fixture target file says, with its own state file.
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("ringback-orchestrator")))
        .expect("the test's folder");
    assert!(binary.exists(), "{} is built with the workspace", binary.display());
    let fixture =
        std::fs::read_to_string(workspace().join("fixtures/targets/reference.toml")).expect("fixture");
    let target = fixture
        .replace(
            r#"run = ["release/ringback-orchestrator"]"#,
            &format!("run = [{:?}]", binary.display().to_string()),
        )
        .replace(r#"cwd = "../../target""#, &format!("cwd = {:?}", out.display().to_string()));
    assert_ne!(target, fixture, "the fixture still names the release binary and the target folder");
    let file = out.join("reference.toml");
    std::fs::write(&file, target).expect("target file");
    let conformed = conform(&file, &[], &out);
    assert_passes(&conformed, "the reference orchestrator");
    // Every orchestrator scenario ran, the restarts included; only the vapi-native ones and the one with
    // its own orchestrator options were left out.
    let ran = conformed.json["scenarios"].as_array().map_or(0, Vec::len);
    assert!(ran >= 45, "only {ran} scenarios ran:\n{}", conformed.stdout);
    assert!(conformed.stdout.contains("restart-while-on-hold-still-bridges"), "{}", conformed.stdout);
}

#[test]
fn the_node_example_passes_every_must_rule() {
    examples_installed();
    let out = scratch("node");
    let conformed = conform(&workspace().join("fixtures/targets/node.toml"), MUST_PASS, &out);
    assert_passes(&conformed, "the Node example");
}

#[test]
fn the_python_example_passes_every_must_rule() {
    examples_installed();
    let out = scratch("python");
    let conformed = conform(&workspace().join("fixtures/targets/python.toml"), MUST_PASS, &out);
    assert_passes(&conformed, "the Python example");
}

#[test]
fn the_naive_example_fails_with_the_expected_rule_ids() {
    examples_installed();
    // One conform run per scenario, all at once: with its one global call SID the naive orchestrator
    // moves whichever caller spoke last, so scenarios sharing it would break each other's rules.
    let expected: &[(&str, &[&str])] = &[
        ("busy-returns-the-caller", &["return-on-failure"]),
        ("forged-twilio-webhooks-are-refused", &["authentic-webhooks"]),
        ("voicemail-machine-start-is-never-bridged", &["no-voicemail-bridge"]),
        ("two-concurrent-callers-interleaved", &["isolation"]),
    ];
    let runs: Vec<(&str, &[&str], Conformed, PathBuf)> = std::thread::scope(|scope| {
        let handles: Vec<_> = expected
            .iter()
            .map(|(name, rules)| {
                scope.spawn(move || {
                    let out = scratch(&format!("naive-{name}"));
                    let conformed = conform(&workspace().join("fixtures/targets/naive.toml"), &[name], &out);
                    (*name, *rules, conformed, out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a conform run")).collect()
    });
    for (name, rules, conformed, out) in runs {
        assert_eq!(
            conformed.code,
            Some(1),
            "{name}: stdout:\n{}\nstderr:\n{}",
            conformed.stdout,
            conformed.stderr
        );
        let broken: BTreeSet<String> = conformed.broken().into_iter().flat_map(|(_, r)| r).collect();
        let expected: BTreeSet<String> = rules.iter().map(|r| (*r).to_owned()).collect();
        assert!(broken.is_superset(&expected), "{name} should break {expected:?}; it broke {broken:?}");
        let report = std::fs::read_to_string(out.join("report.md")).expect("the report");
        assert!(report.contains("sequenceDiagram"), "{name}: the report shows the failure: {report}");
    }
}

#[test]
fn a_command_that_does_not_start_is_exit_code_2_and_says_why() {
    let out = scratch("no-such-program");
    let file = out.join("target.toml");
    std::fs::write(
        &file,
        "url = \"http://127.0.0.1:{port}\"\n[command]\nrun = [\"./no-such-orchestrator\"]\nready = \"/healthz\"\n",
    )
    .expect("target file");
    let conformed = conform(&file, &["busy-returns-the-caller"], &out);
    assert_eq!(conformed.code, Some(2), "{}", conformed.stderr);
    assert!(
        conformed.stderr.contains("no-such-orchestrator") && conformed.stderr.contains("did not start"),
        "{}",
        conformed.stderr
    );
    // `ringback run --target FILE` is the same run.
    let run = Command::new(env!("CARGO_BIN_EXE_ringback"))
        .args(["run", "--target"])
        .arg(&file)
        .arg(workspace().join("scenarios/library/busy-returns-the-caller.toml"))
        .output()
        .expect("ringback runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("did not start"), "{stderr}");
}

#[test]
fn a_command_that_never_becomes_ready_is_exit_code_2_with_its_output() {
    let out = scratch("never-ready");
    let file = out.join("target.toml");
    std::fs::write(
        &file,
        "url = \"http://127.0.0.1:{port}\"\n[command]\nrun = [\"sh\", \"-c\", \"echo warming up on $PORT; sleep 30\"]\nready = \"/healthz\"\nready_timeout_s = 1\n",
    )
    .expect("target file");
    let started = std::time::Instant::now();
    let conformed = conform(&file, &["busy-returns-the-caller"], &out);
    assert_eq!(conformed.code, Some(2), "{}", conformed.stderr);
    assert!(conformed.stderr.contains("not ready within 1 s"), "{}", conformed.stderr);
    assert!(
        conformed.stderr.contains("warming up on"),
        "the error shows the command's output: {}",
        conformed.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "the wait has its deadline");
}
