//! `ringback run --target vapi-native`: scenarios with a `[native]` transferCall tool run against the fake
//! Vapi alone; the others are skipped, and a run with nothing for its target is bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch folder under the test's target directory, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

fn ringback(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringback")).args(args).output().expect("ringback runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// A scenario whose tool lives in `tool.json` next to it, as a user would keep their Vapi configuration.
const SCENARIO: &str = r#"
description = "my transfer tool, a busy sales line"
expect = "returned"
[[specialists]]
name = "sales"
numbers = ["+14155550100"]
phones = [{ answer = "busy" }]
[[callers]]
asks = [{ transfer_to = ["sales"] }]
[native]
tool = "tool.json"
"#;

fn tool(end_call: bool) -> String {
    format!(
        r#"{{
  "type": "transferCall",
  "function": {{ "name": "transfer_to_sales" }},
  "destinations": [{{
    "type": "number", "number": "+14155550100", "message": "Connecting you to sales.",
    "transferPlan": {{ "mode": "warm-transfer-say-message",
                      "fallbackPlan": {{ "message": "Sales is busy.", "endCallEnabled": {end_call} }} }}
  }}]
}}"#
    )
}

#[test]
fn a_tool_file_that_keeps_the_call_returns_the_caller_and_one_that_ends_it_is_caught() {
    let dir = scratch("native-tool-file");
    std::fs::write(dir.join("busy.toml"), SCENARIO).expect("scenario written");

    std::fs::write(dir.join("tool.json"), tool(false)).expect("tool written");
    let kept = ringback(&["run", "--target", "vapi-native", dir.to_str().expect("utf-8")]);
    assert_eq!(kept.status.code(), Some(0), "{}", text(&kept));
    assert!(text(&kept).contains("PASS  busy"), "{}", text(&kept));

    std::fs::write(dir.join("tool.json"), tool(true)).expect("tool written");
    let report = dir.join("report.md");
    let ended = ringback(&[
        "run",
        "--target",
        "vapi-native",
        dir.to_str().expect("utf-8"),
        "--report",
        report.to_str().expect("utf-8"),
    ]);
    assert_eq!(ended.status.code(), Some(1), "{}", text(&ended));
    let out = text(&ended);
    assert!(
        out.contains("caller-never-dropped") && out.contains("expected returned but was dropped"),
        "{out}"
    );
    let report = std::fs::read_to_string(report).expect("report written");
    assert!(report.contains("endCallEnabled"), "the report says why:\n{report}");
}

#[test]
fn targets_run_only_their_own_scenarios() {
    let dir = scratch("native-and-orchestrator");
    std::fs::write(dir.join("native.toml"), SCENARIO).expect("scenario written");
    std::fs::write(dir.join("tool.json"), tool(false)).expect("tool written");
    let folder = dir.to_str().expect("utf-8");

    let reference = ringback(&["run", folder]);
    assert_eq!(reference.status.code(), Some(2), "{}", text(&reference));
    assert!(text(&reference).contains("--target vapi-native"), "{}", text(&reference));

    let library = ringback(&["run", "--target", "vapi-native"]);
    let out = text(&library);
    assert!(
        out.contains("vapi-native-warm-transfer-say-message-busy-without-end-call-returns-the-caller"),
        "{out}"
    );
    assert!(out.contains("skipped") && out.contains("orchestrator scenario(s)"), "{out}");
    assert!(!out.contains("busy-returns-the-caller"), "orchestrator scenarios are not run:\n{out}");
}

#[test]
fn a_bad_tool_file_or_an_unknown_target_is_bad_input() {
    let dir = scratch("native-bad-tool");
    std::fs::write(dir.join("busy.toml"), SCENARIO).expect("scenario written");
    std::fs::write(dir.join("tool.json"), "{\n  \"type\": \"transferCall\",\n  \"destinations\": [,]\n}")
        .expect("tool written");
    let bad = ringback(&["run", "--target", "vapi-native", dir.to_str().expect("utf-8")]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        text(&bad).contains("tool.json:3:"),
        "the error names the file, line and column:\n{}",
        text(&bad)
    );

    let unknown = ringback(&["run", "--target", "nowhere.toml"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(text(&unknown).contains("nowhere.toml"), "{}", text(&unknown));
}
