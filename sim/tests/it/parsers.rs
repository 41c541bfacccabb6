//! Property tests of every parser of the simulator, on arbitrary input and on mutations of valid input:
//! no panic, and a malformed input gets an error that says where and what was expected (TwiML's line and
//! column, a form's parameter, a JSON field), or over HTTP the vendor's error body with a 4xx. The
//! `fuzz/` targets call the same functions.

use axum::Router;
use proptest::prelude::*;
use proptest::sample::Index;
use ringback_sim::control::ControlRequest;
use ringback_sim::runtime::SharedSim;
use ringback_sim::twilio::twiml;
use ringback_sim::twilio::wire::{FormError, FormParams};
use ringback_sim::vapi::messages::read_tool_results;
use ringback_sim::vapi::transfer::ControlMessage;
use ringback_testkit::{byte_edits, json_value, replace_somewhere};
use serde_json::{Value, json};

use crate::support::{self, ACCOUNT, TOKEN};
use crate::vapi_flows::{ASSISTANT, KEY, PHONE, call};

/// Cases for parsers that are pure functions.
const CHEAP: u32 = 256;
/// Cases for requests through a router (each builds a world).
const HTTP: u32 = 48;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, ..ProptestConfig::default() }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("runtime")
}

// ---- TwiML ----

const TWIML: &[&str] = &[
    r#"<?xml version="1.0" encoding="UTF-8"?><Response><Gather input="dtmf" numDigits="4" timeout="5" action="/g"><Say loop="2">Enter</Say><Pause length="3"/></Gather></Response>"#,
    r#"<Response><Dial timeout="20" timeLimit="600" action="/after"><Number machineDetection="Enable" machineDetectionTimeout="30">+15551234567</Number></Dial></Response>"#,
    r#"<Response><Dial><Conference maxParticipants="10" waitUrl="" startConferenceOnEnter="true">room</Conference></Dial><Play loop="0">https://x/a.mp3</Play></Response>"#,
];

proptest! {
    #![proptest_config(config(CHEAP))]

    #[test]
    fn a_twiml_error_points_at_a_line_and_column_inside_the_document(
        sample in 0..TWIML.len(),
        edits in byte_edits(),
    ) {
        let text = edits.apply_to_text(TWIML[sample]);
        let lines = text.lines().count().max(1);
        match twiml::parse(&text) {
            Ok(doc) => {
                for w in &doc.warnings {
                    prop_assert!(w.line >= 1 && w.line <= lines + 1 && w.column >= 1, "{w} in {text:?}");
                }
            }
            Err(e) => {
                prop_assert!([12100, 12101, 12102, 11750].contains(&e.code), "{e}");
                prop_assert!(e.line >= 1 && e.line <= lines + 1 && e.column >= 1, "{e} in {text:?}");
                prop_assert!(e.message.contains("expected") || e.message.contains("xml"), "{e}");
            }
        }
    }

    #[test]
    fn numbers_in_twiml_attributes_are_read_or_warned_about_never_trusted(
        verb in prop_oneof![
            Just(("Pause", "length")), Just(("Say", "loop")), Just(("Gather", "numDigits")),
            Just(("Gather", "timeout")), Just(("Dial", "timeout")), Just(("Dial", "timeLimit")),
        ],
        value in prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            "[0-9]{10,40}",
            "[-+0-9.eE ]{0,12}",
        ],
    ) {
        let (name, attribute) = verb;
        let body = match name {
            "Dial" => "+15551234567",
            "Pause" => "",
            _ => "hi",
        };
        let text = format!(r#"<Response><{name} {attribute}="{value}">{body}</{name}></Response>"#);
        let doc = twiml::parse(&text).expect("well-formed");
        let trimmed = value.trim();
        let fits = trimmed.parse::<u32>().is_ok() && trimmed.bytes().all(|b| b.is_ascii_digit());
        if !fits {
            prop_assert!(
                doc.warnings.iter().any(|w| w.message.contains(attribute) && w.message.contains("expected")
                    || w.message.contains("must be")),
                "{text}: {:?}", doc.warnings
            );
        }
    }
}

// ---- Form bodies ----

proptest! {
    #![proptest_config(config(CHEAP))]

    #[test]
    fn a_malformed_form_body_names_the_byte_or_the_parameter(input in proptest::collection::vec(any::<u8>(), 0..96)) {
        match FormParams::parse(&input) {
            Ok(_) => {}
            Err(FormError::BadPercentEncoding { at }) => prop_assert_eq!(input.get(at), Some(&b'%')),
            Err(FormError::NotUtf8 { name }) => prop_assert!(name.chars().count() <= 64),
        }
    }

    #[test]
    fn a_mutated_form_body_decodes_or_is_refused_with_70002(edits in byte_edits()) {
        let valid = b"To=%2B15557770001&From=%2B15550000100&Url=https%3A%2F%2Fx.test%2Fv&StatusCallbackEvent=initiated+completed";
        let input = edits.apply(valid);
        if let Err(e) = FormParams::parse(&input) {
            let error: ringback_sim::twilio::errors::TwilioError = e.clone().into();
            prop_assert_eq!((error.status, error.code), (400, 70002));
            prop_assert!(error.message.contains(&e.to_string()), "{}", error.message);
        }
    }
}

// ---- The fake Twilio's REST API ----

fn basic() -> String {
    let token =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{ACCOUNT}:{TOKEN}"));
    format!("Basic {token}")
}

/// Asserts a Twilio error body: exactly `code`, `message`, `more_info`, `status` (and the 401's empty
/// `detail`), its status the response's.
fn assert_twilio_error(status: u16, body: &str, request: &str) -> Result<(), TestCaseError> {
    let error: Value = serde_json::from_str(body)
        .map_err(|e| TestCaseError::fail(format!("{request}: {status} body is not JSON ({e}): {body}")))?;
    let mut keys: Vec<&str> =
        error.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    keys.retain(|k| *k != "detail");
    keys.sort_unstable();
    prop_assert_eq!(keys, ["code", "message", "more_info", "status"], "{}: {}", request, body);
    prop_assert_eq!(error["status"].as_u64(), Some(u64::from(status)), "{}: {}", request, body);
    prop_assert!(!error["message"].as_str().unwrap_or_default().is_empty(), "{}: {}", request, body);
    Ok(())
}

fn twilio_router() -> (SharedSim, Router) {
    let sim = support::sim(support::world(&[]), Router::new());
    let router = ringback_sim::twilio::rest::router(sim.clone());
    (sim, router)
}

proptest! {
    #![proptest_config(config(HTTP))]

    #[test]
    fn a_malformed_rest_request_gets_a_twilio_error_body_and_a_4xx(
        route in prop_oneof![
            Just(("POST", "Calls.json")),
            Just(("POST", "Calls/CA00000000000000000000000000000001.json")),
            Just(("GET", "Calls.json")),
            Just(("POST", "Conferences/CF00000000000000000000000000000001/Participants.json")),
            Just(("POST", "IncomingPhoneNumbers.json")),
            Just(("GET", "IncomingPhoneNumbers.json")),
            Just(("DELETE", "Calls/CAxyz.json")),
        ],
        edits in byte_edits(),
        query in prop_oneof![
            Just(String::new()),
            (any::<u64>(), 0u32..2000, "(PA|PB)?[A-Z0-9]{0,34}").prop_map(|(page, size, token)| format!("Page={page}&PageSize={size}&PageToken={token}")),
            "[a-zA-Z=&%0-9+]{0,24}",
        ],
    ) {
        let (method, path) = route;
        let valid = b"To=%2B15557770001&From=%2B15550000100&Url=https%3A%2F%2Fx.test%2Fv&Timeout=20&TimeLimit=60&StatusCallback=https%3A%2F%2Fx.test%2Fs&StatusCallbackEvent=initiated+completed&MachineDetection=Enable&Twiml=%3CResponse%2F%3E";
        let body = String::from_utf8_lossy(&edits.apply(valid)).into_owned();
        let uri = format!("/2010-04-01/Accounts/{ACCOUNT}/{path}?{query}");
        let request = format!("{method} {uri} {body}");
        let auth = basic();
        let (status, text) = runtime().block_on(async {
            let (_sim, router) = twilio_router();
            // Some calls first, so that list requests have pages and tokens to follow.
            for to in ["+15557770001", "+15557770002", "+15557770003"] {
                let body = format!("To={}&From=%2B15550000100&Twiml=%3CResponse%2F%3E", to.replace('+', "%2B"));
                let headers = [("authorization", auth.as_str()), ("content-type", "application/x-www-form-urlencoded")];
                let uri = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json");
                call(router.clone(), "POST", &uri, &headers, body).await;
            }
            let headers = [("authorization", auth.as_str()), ("content-type", "application/x-www-form-urlencoded")];
            call(router, method, &uri, &headers, body.clone()).await
        });
        prop_assert!(status < 500, "{request} → {status} {text}");
        if status >= 400 {
            assert_twilio_error(status, &text, &request)?;
        }
    }
}

// ---- The fake Vapi: REST bodies, live call control, tool results ----

/// Asserts Vapi's NestJS error body: `message` (a string or strings), `error`, `statusCode`.
fn assert_vapi_error(status: u16, body: &str, request: &str) -> Result<(), TestCaseError> {
    let error: Value = serde_json::from_str(body)
        .map_err(|e| TestCaseError::fail(format!("{request}: {status} body is not JSON ({e}): {body}")))?;
    prop_assert_eq!(error["statusCode"].as_u64(), Some(u64::from(status)), "{}: {}", request, body);
    prop_assert!(error["error"].is_string(), "{}: {}", request, body);
    let message_ok = match &error["message"] {
        Value::String(s) => !s.is_empty(),
        Value::Array(all) => !all.is_empty() && all.iter().all(Value::is_string),
        _ => false,
    };
    prop_assert!(message_ok, "{}: {}", request, body);
    Ok(())
}

/// A world with an assistant and an imported number; `(sim, router, id of a live call)`.
async fn vapi_world() -> (SharedSim, Router, String) {
    let world = crate::vapi_flows::world(json!({"name": "front-desk", "firstMessage": "Hi"}), "", &[]);
    let sim = support::sim(world, Router::new());
    let router = ringback_sim::vapi::rest::router(sim.clone());
    let auth = format!("Bearer {KEY}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let body = json!({"assistantId": ASSISTANT, "phoneNumberId": PHONE, "customer": {"number": "+15557770001"},
                      "phoneCallProviderBypassEnabled": true});
    let (status, created) = call(router.clone(), "POST", "/call", &headers, body.to_string()).await;
    assert_eq!(status, 201, "{created}");
    let id = serde_json::from_str::<Value>(&created).expect("json")["id"].as_str().expect("id").to_owned();
    (sim, router, id)
}

fn valid_vapi_body(route: usize) -> Value {
    match route {
        0 => json!({"assistantId": ASSISTANT, "phoneNumberId": PHONE, "customer": {"number": "+15557770002"},
                    "phoneCallProviderBypassEnabled": true, "assistantOverrides": {"variableValues": {"x": 1}}}),
        1 => {
            json!({"name": "second", "firstMessage": "Hello", "model": {"provider": "openai", "model": "gpt-4o",
                    "tools": [{"type": "transferCall", "destinations": [{"type": "number", "number": "+15550000201",
                    "transferPlan": {"mode": "warm-transfer-say-message", "message": "hi"}}]}]},
                    "server": {"url": "https://x.test/vapi", "timeoutSeconds": 20}})
        }
        2 => json!({"provider": "twilio", "number": "+15550000999", "twilioAccountSid": ACCOUNT.to_string(),
                    "twilioAuthToken": TOKEN, "assistantId": ASSISTANT}),
        3 => json!({"name": "renamed", "metadata": {"a": 1}}),
        _ => {
            json!({"type": "transfer", "destination": {"type": "number", "number": "+15550000201"}, "content": "hold on"})
        }
    }
}

proptest! {
    #![proptest_config(config(HTTP))]

    #[test]
    fn a_malformed_vapi_request_gets_vapis_error_body_and_a_4xx(
        route in 0usize..5,
        pick in any::<Index>(),
        replacement in json_value(),
        edits in proptest::option::of(byte_edits()),
    ) {
        let mut value = valid_vapi_body(route);
        replace_somewhere(&mut value, pick, replacement);
        let body = match &edits {
            Some(edits) => edits.apply_to_text(&value.to_string()),
            None => value.to_string(),
        };
        let (status, text, request) = runtime().block_on(async {
            let (_sim, router, live) = vapi_world().await;
            let (method, path) = match route {
                0 => ("POST", "/call".to_owned()),
                1 => ("POST", "/assistant".to_owned()),
                2 => ("POST", "/phone-number".to_owned()),
                3 => ("PATCH", format!("/call/{live}")),
                _ => ("POST", format!("/{live}/control")),
            };
            let auth = format!("Bearer {KEY}");
            let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
            let (status, text) = call(router, method, &path, &headers, body.clone()).await;
            (status, text, format!("{method} {path} {body}"))
        });
        prop_assert!(status < 500, "{request} → {status} {text}");
        if status >= 400 {
            assert_vapi_error(status, &text, &request)?;
        }
    }
}

proptest! {
    #![proptest_config(config(CHEAP))]

    #[test]
    fn a_control_message_is_read_or_refused_naming_its_field(
        kind in prop_oneof![
            proptest::sample::select(vec!["say", "add-message", "end-call", "transfer", "control", "send-transport-message"])
                .prop_map(str::to_owned),
            "[a-z-]{0,10}",
        ],
        fields in proptest::collection::vec(
            (prop_oneof![Just("content"), Just("message"), Just("destination"), Just("control"),
                         Just("endCallAfterSpoken"), Just("triggerResponseEnabled"), Just("role")], json_value()),
            0..4),
    ) {
        let mut body = json!({"type": kind});
        for (name, value) in fields {
            body[name] = value;
        }
        match ControlMessage::parse(body.to_string().as_bytes()) {
            Ok(_) => {}
            Err(e) => {
                prop_assert_eq!(e.status.as_u16(), 400);
                let text = e.message.to_string();
                let named = ["type", "content", "message", "destination", "control"].iter().any(|f| text.contains(f));
                prop_assert!(named && text.contains("must"), "{body} → {text}");
            }
        }
    }

    #[test]
    fn arbitrary_control_bodies_never_panic(input in proptest::collection::vec(any::<u8>(), 0..128)) {
        if let Err(e) = ControlMessage::parse(&input) {
            prop_assert_eq!(e.status.as_u16(), 400);
        }
    }

    #[test]
    fn a_tool_calls_answer_gives_each_call_its_result_or_names_the_path_at_fault(
        pick in any::<Index>(),
        replacement in json_value(),
        edits in proptest::option::of(byte_edits()),
    ) {
        let awaited = [("call_a".to_owned(), "lookup".to_owned()), ("call_b".to_owned(), "transfer".to_owned())];
        let mut answer = json!({"results": [
            {"toolCallId": "call_a", "name": "lookup", "result": "shipped"},
            {"toolCallId": "call_b", "name": "transfer", "error": "no such department"},
        ]});
        replace_somewhere(&mut answer, pick, replacement);
        let body = match &edits {
            Some(edits) => edits.apply(answer.to_string().as_bytes()),
            None => answer.to_string().into_bytes(),
        };
        match read_tool_results(&body, &awaited) {
            Ok(results) => {
                prop_assert_eq!(results.len(), awaited.len());
                for e in results.iter().filter_map(|r| r.as_ref().err()) {
                    prop_assert!(e.path.starts_with("results"), "{e}");
                }
            }
            Err(e) => prop_assert!(e.path == "$" || e.path == "results", "{e}"),
        }
    }
}

// ---- The control API ----

proptest! {
    #![proptest_config(config(CHEAP))]

    #[test]
    fn a_control_request_is_read_or_refused_with_a_4xx_that_says_why(
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE")],
        path in prop_oneof![
            Just("/_ringback/calls".to_owned()),
            Just("/_ringback/timeline".to_owned()),
            "/_ringback/calls/[A-Za-z0-9%]{0,36}/(say|hangup|digits|nope)",
            "/_ringback/phones/[+%0-9A-F]{0,14}",
            "/_ringback/timeline\\?[a-z=0-9&%-]{0,16}",
            "/[a-z_/]{0,20}",
        ],
        body in prop_oneof![
            json_value().prop_map(|v| v.to_string().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..48),
            Just(br#"{"from": "+15557770001", "to": "+15550000100"}"#.to_vec()),
            Just(br#"{"digits": "12#"}"#.to_vec()),
            Just(br#"{"answer": "machine", "after_s": 1e308, "greeting_s": -5}"#.to_vec()),
        ],
    ) {
        let Ok(uri) = path.parse::<http::Uri>() else { return Ok(()) };
        let method: http::Method = method.parse().expect("method");
        if let Err(e) = ControlRequest::parse(&method, &uri, &body) {
            prop_assert!(e.status.is_client_error(), "{method} {path}: {e}");
            prop_assert!(!e.message.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(config(HTTP))]

    #[test]
    fn a_malformed_control_request_gets_an_error_body_and_a_4xx(
        route in prop_oneof![
            Just(("POST", "/_ringback/calls")),
            Just(("POST", "/_ringback/calls/CA00000000000000000000000000000001/digits")),
            Just(("POST", "/_ringback/calls/CA00000000000000000000000000000001/say")),
            Just(("PUT", "/_ringback/phones/%2B15550000201")),
            Just(("GET", "/_ringback/timeline?after=x")),
        ],
        body in json_value(),
    ) {
        let (method, path) = route;
        let (status, text) = runtime().block_on(async {
            let sim = support::sim(support::world(&[]), Router::new());
            let router = ringback_sim::control::router(sim);
            call(router, method, path, &[("content-type", "application/json")], body.to_string()).await
        });
        prop_assert!(status < 500, "{method} {path} {body} → {status} {text}");
        if status >= 400 {
            let error: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
            prop_assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()), "{text}");
        }
    }
}

#[test]
fn the_control_api_says_what_is_wrong_with_a_request() {
    let parse = |method: &str, uri: &str, body: &str| {
        ControlRequest::parse(&method.parse().expect("method"), &uri.parse().expect("uri"), body.as_bytes())
            .expect_err(uri)
            .to_string()
    };
    let timeline = parse("GET", "/_ringback/timeline?after=x", "");
    assert!(timeline.contains("`after`") && timeline.contains("sequence number"), "{timeline}");
    let extra = parse("GET", "/_ringback/timeline?from=3", "");
    assert!(extra.contains("`from`"), "{extra}");
    let digits =
        parse("POST", "/_ringback/calls/CA00000000000000000000000000000001/digits", r#"{"digits": "1x"}"#);
    assert!(digits.contains("`x`"), "{digits}");
    let many = "1".repeat(ringback_sim::control::MAX_DIGITS + 1);
    let long = parse(
        "POST",
        "/_ringback/calls/CA00000000000000000000000000000001/digits",
        &format!(r#"{{"digits": "{many}"}}"#),
    );
    assert!(long.contains("expected 1 to 32"), "{long}");
    let place = parse("POST", "/_ringback/calls", r#"{"from": "+1", "too": "+2"}"#);
    assert!(place.contains("too") && place.contains("line 1"), "{place}");
    assert!(parse("DELETE", "/_ringback/calls", "").starts_with("405"));
}

#[tokio::test(start_paused = true)]
async fn a_list_request_for_the_last_possible_page_with_a_token_is_answered() {
    // Page=u64::MAX with a token that finds a record that has more after it used to overflow `page + 1`.
    let (_sim, router) = twilio_router();
    let auth = basic();
    let headers = [("authorization", auth.as_str()), ("content-type", "application/x-www-form-urlencoded")];
    let calls = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json");
    for to in ["%2B15557770001", "%2B15557770002", "%2B15557770003"] {
        let body = format!("To={to}&From=%2B15550000100&Twiml=%3CResponse%2F%3E");
        call(router.clone(), "POST", &calls, &headers, body).await;
    }
    let (_, listed) = call(router.clone(), "GET", &calls, &headers, String::new()).await;
    let listed: Value = serde_json::from_str(&listed).expect("json");
    let first = listed["calls"][0]["sid"].as_str().expect("a call");
    let uri = format!("{calls}?PageSize=1&Page={}&PageToken=PA{first}", u64::MAX);
    let (status, body) = call(router, "GET", &uri, &headers, String::new()).await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(page["calls"].as_array().map(Vec::len), Some(1), "{body}");
}
