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
    conform_with(target, scenarios, out, &[])
}

/// [`conform`] with more arguments, such as `--time-scale`.
fn conform_with(target: &Path, scenarios: &[&str], out: &Path, more: &[&str]) -> Conformed {
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
        .args(more)
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

/// A target file for the reference orchestrator's binary next to this test's, with its state in `out`.
fn reference_target(out: &Path) -> PathBuf {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("ringback-orchestrator")))
        .expect("the test's folder");
    // Cargo builds only this package's binaries for its tests: build the orchestrator's (a no-op when it
    // is up to date), into the same target folder.
    let built = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "ringback-orchestrator", "--bin", "ringback-orchestrator"])
        .current_dir(workspace())
        .status()
        .expect("cargo runs");
    assert!(built.success(), "building ringback-orchestrator failed");
    assert!(binary.exists(), "{} was not built where this test's binary is", binary.display());
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
    file
}

#[test]
fn the_reference_orchestrator_passes_the_library_as_an_external_process() {
    let out = scratch("reference");
    let file = reference_target(&out);
    let conformed = conform(&file, &[], &out);
    assert_passes(&conformed, "the reference orchestrator");
    // Every orchestrator scenario ran, the restarts included; only the vapi-native ones and the one with
    // its own orchestrator options were left out.
    let ran = conformed.json["scenarios"].as_array().map_or(0, Vec::len);
    assert!(ran >= 45, "only {ran} scenarios ran:\n{}", conformed.stdout);
    assert!(conformed.stdout.contains("restart-while-on-hold-still-bridges"), "{}", conformed.stdout);
}

#[test]
fn the_reference_orchestrator_passes_with_phone_call_control_transfers() {
    let out = scratch("reference-phone-call-control");
    let file = reference_target(&out);
    let text = std::fs::read_to_string(&file).expect("target file");
    let tool =
        "style = \"tool\"\nname = \"transfer_to_specialist\"\narguments = { department = \"{department}\" }";
    assert!(text.contains(tool), "the fixture's [transfer] section changed");
    std::fs::write(&file, text.replace(tool, "style = \"phone-call-control\"")).expect("target file");
    let conformed = conform(
        &file,
        &["busy-returns-the-caller", "caller-hangs-up-on-hold", "number-outside-the-allowlist-is-refused"],
        &out,
    );
    assert_passes(&conformed, "the reference orchestrator with phone-call-control");
    // The transfers were asked for with phone-call-control, not with the custom tool.
    let journals = conformed.json["scenarios"].to_string();
    assert!(
        journals.contains(r#"\"type\":\"phone-call-control\""#),
        "no phone-call-control message was sent"
    );
    assert!(!journals.contains(r#"\"type\":\"tool-calls\""#), "a custom tool was called");
}

#[test]
fn the_node_example_passes_the_library() {
    examples_installed();
    let out = scratch("node");
    // The whole library: every scenario that applies to an orchestrator ringback may not restart.
    let conformed = conform(&workspace().join("fixtures/targets/node.toml"), &[], &out);
    assert_passes(&conformed, "the Node example");
    let ran = conformed.json["scenarios"].as_array().map_or(0, Vec::len);
    assert!(ran >= 40, "only {ran} scenarios ran:\n{}", conformed.stdout);
}

#[test]
fn the_python_example_passes_the_library() {
    examples_installed();
    let out = scratch("python");
    let conformed = conform(&workspace().join("fixtures/targets/python.toml"), &[], &out);
    assert_passes(&conformed, "the Python example");
    let ran = conformed.json["scenarios"].as_array().map_or(0, Vec::len);
    assert!(ran >= 40, "only {ran} scenarios ran:\n{}", conformed.stdout);
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

#[test]
fn ctrl_c_writes_the_verdicts_of_the_scenarios_that_finished() {
    let out = scratch("interrupted");
    let file = reference_target(&out);
    let library = workspace().join("scenarios/library");
    let json = out.join("verdicts.json");
    let child = Command::new(env!("CARGO_BIN_EXE_ringback"))
        .args(["conform", "--target"])
        .arg(&file)
        // Over in 8 s, and in 284 s.
        .arg(library.join("caller-hangs-up-before-any-transfer.toml"))
        .arg(library.join("answered-by-a-human.toml"))
        .arg("--json")
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ringback runs");
    // The first is over at 8 s plus 2 s of quiet; the second runs for minutes. Any moment between is
    // good: 30 s leaves room for a loaded machine.
    std::thread::sleep(std::time::Duration::from_secs(30));
    let interrupted = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(interrupted.success());
    let started = std::time::Instant::now();
    let output = child.wait_with_output().expect("ringback ends");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "it stops soon after Ctrl-C");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("interrupted (Ctrl-C): 1 of 2 scenarios finished"), "{stdout}");
    let verdicts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report")).expect("JSON");
    let scenarios = verdicts["scenarios"].as_array().expect("scenarios");
    assert_eq!(scenarios[0]["passed"], true, "{verdicts}");
    assert!(scenarios[1].to_string().contains("interrupted"), "{}", scenarios[1]);
}

#[test]
fn the_runs_deadline_ends_the_scenarios_still_running_unjudged_and_writes_the_reports() {
    let out = scratch("deadline");
    // In real time, a webhook never answered keeps the scenario going for at least 30 s.
    let target = workspace().join("fixtures/targets/hostile/never-answers.toml");
    let started = std::time::Instant::now();
    let conformed = conform_with(&target, &["answered-by-a-human"], &out, &["--deadline", "3"]);
    let context = format!("stdout:\n{}\nstderr:\n{}", conformed.stdout, conformed.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(25), "{:?}: {context}", started.elapsed());
    assert_eq!(conformed.code, Some(1), "{context}");
    assert!(
        conformed.stdout.contains("the run's deadline of 3 s passed: 0 of 1 scenarios finished"),
        "{context}"
    );
    let error = conformed.json["scenarios"][0]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.starts_with("the run's deadline of 3 s passed at "), "{error}: {context}");
    assert!(out.join("report.md").exists(), "{context}");
}

/// Deliberately hostile orchestrators (`fixtures/orchestrators/hostile`, one target file per mode): each
/// run ends with a verdict, the rules that should break do, and the journal (or, for requests that name
/// no scenario's call, the orchestrator's own log of the answers) shows what Twilio or Vapi would do.
mod hostile {
    use super::*;

    /// What a hostile run left: the scenario's journal as JSON text and the orchestrator's log.
    struct Judged {
        journal: String,
        log: String,
        context: String,
    }

    impl Judged {
        fn shows(&self, pieces: &[&str]) -> &Self {
            for piece in pieces {
                assert!(
                    self.journal.contains(piece),
                    "the journal does not show {piece:?}: {}",
                    self.context
                );
            }
            self
        }

        fn logs(&self, pieces: &[&str]) -> &Self {
            for piece in pieces {
                assert!(self.log.contains(piece), "the orchestrator did not log {piece:?}: {}", self.context);
            }
            self
        }
    }

    /// Runs `answered-by-a-human` against the hostile mode, 5 times faster than real time: it must end
    /// with exit code 1 and exactly `rules` broken.
    fn judge(mode: &str, rules: &[&str]) -> Judged {
        let out = scratch(&format!("hostile-{mode}"));
        let target = workspace().join(format!("fixtures/targets/hostile/{mode}.toml"));
        let started = std::time::Instant::now();
        let conformed = conform_with(&target, &["answered-by-a-human"], &out, &["--time-scale", "0.2"]);
        let log = std::fs::read_to_string(out.join("orchestrator.log")).unwrap_or_default();
        let context = format!(
            "{mode} after {:?}\nstdout:\n{}\nstderr:\n{}\norchestrator log (end):\n{}",
            started.elapsed(),
            conformed.stdout,
            conformed.stderr,
            log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
        );
        assert_eq!(conformed.code, Some(1), "a hostile target fails its scenario: {context}");
        let broken: BTreeSet<String> = conformed.broken().into_iter().flat_map(|(_, r)| r).collect();
        let expected: BTreeSet<String> = rules.iter().map(|r| (*r).to_owned()).collect();
        assert_eq!(broken, expected, "{context}");
        Judged { journal: conformed.json["scenarios"][0]["journal"].to_string(), log, context }
    }

    #[test]
    fn a_voice_webhook_never_answered_times_out_twice_and_the_caller_hears_the_application_error() {
        judge("never-answers", &["caller-never-dropped", "valid-twiml"]).shows(&[
            r#""code":11205"#,
            "did not answer within 15s",
            "application error",
        ]);
    }

    #[test]
    fn a_voice_webhook_answered_after_30_s_is_a_timeout_and_the_late_answer_is_ignored() {
        judge("answers-late", &["caller-never-dropped", "context-carryover", "valid-twiml"])
            .shows(&[r#""code":11205"#, "application error"]);
    }

    #[test]
    fn a_reset_connection_is_an_11200_retrieval_failure() {
        judge("resets", &["caller-never-dropped", "valid-twiml"])
            .shows(&[r#""code":11200"#, "application error"]);
    }

    #[test]
    fn a_10_mb_answer_is_refused_as_11750_without_being_read_whole() {
        judge("answers-10mb", &["caller-never-dropped", "valid-twiml"])
            .shows(&[r#""code":11750"#, "answered more than 1048576 bytes"]);
    }

    #[test]
    fn an_answer_that_is_not_twiml_is_a_12100() {
        judge("garbage-twiml", &["caller-never-dropped", "valid-twiml"]).shows(&[r#""code":12100"#]);
    }

    #[test]
    fn a_redirect_loop_is_stopped_after_100_fetches() {
        judge("redirect-loop", &["caller-never-dropped"])
            .shows(&["too many TwiML fetches without progress (100 in a row)"]);
    }

    #[test]
    fn a_dial_to_the_called_number_fails_as_a_loop() {
        judge("dial-itself", &["caller-never-dropped", "destination-allowlist"])
            .shows(&["one of this world's own Twilio numbers: loop detected"]);
    }

    #[test]
    fn thousands_of_calls_are_queued_at_one_per_second_and_the_run_still_ends() {
        let judged = judge("call-flood", &["bridge-on-answer", "no-orphans"]);
        judged.logs(&["call flood answers by (status, code): {(201, None): 2000}"]);
        // At one call per second, the last of 2,000 calls waits about 2,000 s in the account's queue.
        let longest = judged
            .journal
            .split(r#"\"queue_time\":\""#)
            .skip(1)
            .filter_map(|rest| rest.split('\\').next()?.parse::<u64>().ok())
            .max();
        assert!(
            longest.is_some_and(|ms| ms > 1_900_000),
            "longest queue_time {longest:?}: {}",
            judged.context
        );
    }

    #[test]
    fn unknown_and_foreign_sids_get_twilio_and_vapi_not_found_errors() {
        // Requests about SIDs no scenario knows go to the lobby world: the orchestrator logged the answers.
        judge("foreign-sids", &[]).logs(&[
            r#"GET /Calls/CA00000000000000000000000000000000.json -> 404 {"code":20404"#,
            r#"POST /Calls/CAffffffffffffffffffffffffffffffff.json -> 404 {"code":20404"#,
            r#"POST /Calls/not-a-sid.json -> 404 {"code":20404"#,
            r#"GET /Conferences/CF00000000000000000000000000000000.json -> 404 {"code":20404"#,
            r#"another account -> 401 {"code":20003"#,
            r#"GET /call/<unknown> -> 404 {"message":"Call not found""#,
        ]);
    }

    #[test]
    fn a_tool_result_of_the_wrong_shape_breaks_tool_response() {
        judge("wrong-tool-shape", &["tool-response"]);
    }

    #[test]
    fn a_tool_call_never_answered_breaks_tool_response_after_vapis_timeout() {
        judge("tool-never-answers", &["tool-response"]).shows(&["server did not answer in time"]);
    }
}
