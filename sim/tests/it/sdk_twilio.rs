//! The official Twilio SDKs (twilio-python and twilio-node) drive the fake unmodified but for their base
//! URL: `fixtures/sdk/twilio_check.{py,js}` buy a number, follow a call through its callbacks, page the
//! call list, provoke 20404/21220/20003, and run a conference with an added, held and removed participant;
//! these tests assert on the values the SDKs observed, and check every response the fake sent them against
//! the spec.

use ringback_sim::journal::{Event, Party};
use ringback_sim::runtime::SharedSim;
use ringback_sim::world::{AccountConfig, World, WorldConfig};
use serde_json::{Value, json};

use crate::sdk_support::sdk;
use crate::support::{ACCOUNT, TOKEN};

/// Simulated seconds pass 20 times faster than real ones.
const SCALE: f64 = 0.05;

/// The number the scripts buy.
const NUMBER: &str = "+15550001000";

/// A fresh fake Twilio on a loopback port, with one account that owns no numbers yet.
async fn fake_twilio() -> (String, SharedSim) {
    let config = WorldConfig {
        seed: 11,
        accounts: vec![AccountConfig { sid: ACCOUNT, auth_token: TOKEN.into(), numbers: Vec::new() }],
        ..WorldConfig::default()
    };
    crate::support::serve_over_http(World::new(config).expect("world"), SCALE).await
}

/// Runs `script` against a fresh fake and returns its report, and the fake it ran against.
async fn run(script: &'static str) -> (Value, SharedSim) {
    let (base, sim) = fake_twilio().await;
    let input = json!({"base_url": base, "account_sid": ACCOUNT.to_string(), "auth_token": TOKEN});
    let sdk = sdk();
    let report = tokio::task::spawn_blocking(move || {
        if script.ends_with(".py") { sdk.python(script, &input) } else { sdk.node(script, &input) }
    })
    .await;
    match report {
        Ok(report) => (report, sim),
        Err(e) => panic!("{script} failed: {e}\n{}", sim.world().journal().timeline()),
    }
}

/// `/2010-04-01/Accounts/AC…/Calls/CA….json?…` → the spec's path template for it.
fn path_template(url: &str) -> Option<String> {
    let path = url.split('?').next()?;
    let rest = path.strip_prefix("/2010-04-01/Accounts/")?;
    let (_account, rest) = rest.split_once('/')?;
    let segments: Vec<&str> = rest.split('/').collect();
    let tail = match segments.as_slice() {
        [collection] => (*collection).to_owned(),
        ["Conferences", _, "Participants.json"] => "Conferences/{ConferenceSid}/Participants.json".to_owned(),
        ["Conferences", _, "Participants", _] => {
            "Conferences/{ConferenceSid}/Participants/{CallSid}.json".to_owned()
        }
        [collection, _] => format!("{collection}/{{Sid}}.json"),
        _ => return None,
    };
    Some(format!("/2010-04-01/Accounts/{{AccountSid}}/{tail}"))
}

/// Every response the fake sent the SDK: a 2xx matches the spec's schema for its operation exactly, an
/// error is Twilio's error body. Returns the operations seen, as `METHOD template status`.
fn assert_responses_match_the_spec(sdk_name: &str, sim: &SharedSim) -> Vec<String> {
    let spec = crate::spec::twilio_spec();
    let mut seen: Vec<String> = Vec::new();
    for entry in sim.world().journal().entries() {
        let Event::Http(exchange) = &entry.event else { continue };
        if exchange.to != Party::Twilio {
            continue;
        }
        let response = exchange
            .response
            .as_ref()
            .unwrap_or_else(|| panic!("{sdk_name}: {} {} got no response", exchange.method, exchange.url));
        let template = path_template(&exchange.url)
            .unwrap_or_else(|| panic!("{sdk_name} requested {} {}", exchange.method, exchange.url));
        let body: Value = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&response.body).unwrap_or_else(|e| {
                panic!(
                    "{sdk_name}: {} {} answered non-JSON ({e}): {}",
                    exchange.method, exchange.url, response.body
                )
            })
        };
        let what = format!("{} {template} {}", exchange.method, response.status);
        if (200..300).contains(&response.status) {
            if let Err(errors) =
                crate::spec::validate_response(spec, &template, &exchange.method, response.status, &body)
            {
                panic!(
                    "{sdk_name}: {what} does not match the spec:\n  {}\nbody: {body:#}",
                    errors.join("\n  ")
                );
            }
        } else {
            let keys: Vec<&str> =
                body.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
            // Real 401 bodies carry an empty `detail` too (reference §4).
            let expected: &[&str] = if response.status == 401 {
                &["code", "detail", "message", "more_info", "status"]
            } else {
                &["code", "message", "more_info", "status"]
            };
            assert_eq!(keys, expected, "{sdk_name}: {what} error body {body}");
            assert_eq!(body["status"], response.status, "{sdk_name}: {what} error body {body}");
        }
        if !seen.contains(&what) {
            seen.push(what);
        }
    }
    seen.sort();
    seen
}

/// The operations each script performs, as [`assert_responses_match_the_spec`] names them.
const OPERATIONS: [&str; 16] = [
    "DELETE /2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json 204",
    "GET /2010-04-01/Accounts/{AccountSid}/Calls.json 200",
    "GET /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json 200",
    "GET /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json 401",
    "GET /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json 404",
    "GET /2010-04-01/Accounts/{AccountSid}/Conferences.json 200",
    "GET /2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants.json 200",
    "GET /2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json 200",
    "GET /2010-04-01/Accounts/{AccountSid}/Conferences/{Sid}.json 200",
    "GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json 200",
    "POST /2010-04-01/Accounts/{AccountSid}/Calls.json 201",
    "POST /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json 200",
    "POST /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json 400",
    "POST /2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants.json 201",
    "POST /2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json 200",
    "POST /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json 201",
];

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

fn assert_report(sdk_name: &str, r: &Value) {
    let context = format!("{sdk_name} reported:\n{}", serde_json::to_string_pretty(r).unwrap_or_default());

    // (a) The bought number is listed under a PhoneNumber filter.
    let number = &r["number"];
    assert!(number["sid"].as_str().is_some_and(|s| s.starts_with("PN") && s.len() == 34), "{context}");
    assert_eq!(number["phone_number"], NUMBER, "{context}");
    assert_eq!(number["listed"], json!([number["sid"]]), "{context}");

    // (b) A call followed to its end through the SDK and through its callbacks.
    let call = &r["call"];
    assert_eq!(call["created_status"], "queued", "{context}");
    assert_eq!(call["completed"], true, "{context}");
    assert_eq!(call["status"], "completed", "{context}");
    assert_eq!(call["from"], NUMBER, "{context}");
    assert_eq!(call["to"], "+15558880001", "{context}");
    assert_eq!(call["direction"], "outbound-api", "{context}");
    assert!(
        call["duration"].as_str().and_then(|d| d.parse::<u32>().ok()).is_some_and(|d| d >= 5),
        "the call lasts at least its 5 s pause: {context}"
    );
    assert_eq!(
        strings(&call["callback_statuses"]),
        ["initiated", "ringing", "in-progress", "completed"],
        "{context}"
    );
    assert_eq!(strings(&call["callback_sequence"]), ["0", "1", "2", "3"], "{context}");

    // (c) Four calls, read two at a time.
    let paging = &r["paging"];
    assert_eq!(paging["page_sizes"], json!([2, 2]), "{context}");
    assert_eq!(paging["pages"], 2, "{context}");
    assert_eq!(paging["total"], 4, "{context}");
    assert_eq!(paging["listed"], 4, "{context}");
    assert_eq!(paging["streamed_unique"], 4, "{context}");

    // (d), (e), (f) Errors arrive as the SDK's RestException with Twilio's status and code.
    assert_eq!(r["missing_call"], json!({"status": 404, "code": 20404}), "{context}");
    assert_eq!(r["update_completed"], json!({"status": 400, "code": 21220}), "{context}");
    assert_eq!(r["wrong_token"], json!({"status": 401, "code": 20003}), "{context}");

    // (g) The conference, its added participant put on hold and removed, and its callbacks.
    let conference = &r["conference"];
    let host = &conference["host_call_sid"];
    let agent = &conference["agent_call_sid"];
    assert!(conference["sid"].as_str().is_some_and(|s| s.starts_with("CF") && s.len() == 34), "{context}");
    assert_eq!(conference["friendly_name"], "sdk-room", "{context}");
    assert_eq!(conference["listed_status"], "init", "{context}");
    assert!(agent.as_str().is_some_and(|s| s.starts_with("CA") && s.len() == 34), "{context}");
    assert_ne!(host, agent, "{context}");
    assert_eq!(conference["participant_created_status"], "queued", "{context}");
    assert_eq!(conference["held"], true, "{context}");
    let mut expected =
        vec![json!({"call_sid": host, "hold": false}), json!({"call_sid": agent, "hold": true})];
    expected.sort_by_key(|p| p["call_sid"].as_str().unwrap_or_default().to_owned());
    assert_eq!(conference["participants"], Value::Array(expected), "{context}");
    assert_eq!(conference["removed"], true, "{context}");
    assert_eq!(
        conference["participants_after_removal"],
        json!([{"call_sid": host, "hold": false}]),
        "{context}"
    );
    assert_eq!(conference["final_status"], "completed", "{context}");
    assert_eq!(
        strings(&conference["events"]),
        [
            "participant-join",
            "participant-join",
            "conference-start",
            "participant-hold",
            "participant-leave",
            "participant-leave",
            "conference-end"
        ],
        "{context}"
    );
    assert_eq!(strings(&conference["event_sequence"]), ["0", "1", "2", "3", "4", "5", "6"], "{context}");
    assert_eq!(strings(&conference["hold_callback_flags"]), ["true"], "{context}");
    assert_eq!(
        conference["leave_callbacks"],
        json!([
            {"CallSid": agent, "Hold": "true", "Muted": "false", "ReasonParticipantLeft": "participant-kicked"},
            {"CallSid": host, "Hold": "false", "Muted": "false", "ReasonParticipantLeft": "participant-left"},
        ]),
        "{context}"
    );
    assert_eq!(
        strings(&conference["agent_callback_statuses"]),
        ["initiated", "ringing", "in-progress", "completed"],
        "the removed participant's own call progress: {context}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_python_drives_numbers_calls_paging_errors_and_conferences_unmodified() {
    let (report, sim) = run("twilio_check.py").await;
    assert_report("twilio-python", &report);
    assert_eq!(assert_responses_match_the_spec("twilio-python", &sim), OPERATIONS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_node_drives_numbers_calls_paging_errors_and_conferences_unmodified() {
    let (report, sim) = run("twilio_check.js").await;
    assert_report("twilio-node", &report);
    assert_eq!(assert_responses_match_the_spec("twilio-node", &sim), OPERATIONS);
}
