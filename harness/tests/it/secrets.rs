//! No secret in any report: the auth token, API key and webhook secret the fakes and the orchestrator
//! share cross the wire in headers and bodies, and the journal keeps them only as `<redacted N chars>`.

use std::process::Command;

#[test]
fn no_report_of_the_library_holds_a_credential() {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp/secrets");
    std::fs::create_dir_all(&out).expect("scratch folder");
    let status = Command::new(env!("CARGO_BIN_EXE_ringback"))
        .arg("run")
        .arg("--json")
        .arg(out.join("verdicts.json"))
        .arg("--report")
        .arg(out.join("report.md"))
        .arg("--junit")
        .arg(out.join("junit.xml"))
        .status()
        .expect("ringback runs");
    assert_eq!(status.code(), Some(0));
    use ringback_scenarios::plan as p;
    for file in ["verdicts.json", "report.md", "junit.xml"] {
        let text = std::fs::read_to_string(out.join(file)).expect("the report");
        if file == "verdicts.json" {
            // The JSON keeps every exchange with its bodies: the check is not vacuous.
            assert!(
                text.contains("\\\"secret\\\":\\\"<redacted 23 chars>"),
                "{file} shows where secrets were"
            );
        }
        for secret in [p::AUTH_TOKEN, p::VAPI_API_KEY, p::WEBHOOK_SECRET] {
            assert!(!text.contains(secret), "{file} holds the credential {secret:?}");
        }
    }
}
