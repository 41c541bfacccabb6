//! The official Vapi server SDKs (`@vapi-ai/server-sdk` and `vapi_server_sdk`) drive the fake Vapi
//! unmodified but for their base URL: `fixtures/sdk/vapi_check.{js,py}` create, fetch and list an
//! assistant; import, fetch and list a Twilio number; create a bypass call and an outbound call, fetch,
//! list and rename calls; `say` and `end-call` on the bypass call's control URL; provoke a 404 and a 401.
//! Both fakes run over HTTP from one world, so the import and the outbound call go through the fake
//! Twilio. These tests assert on what the SDKs observed, on the world afterwards, and check every
//! response the fake Vapi sent the SDKs, and every server message it sent, against Vapi's spec.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use ringback_sim::journal::{Event, HttpExchange, Party};
use ringback_sim::phone::Behaviour;
use ringback_sim::runtime::SharedSim;
use ringback_sim::vapi::DEFAULT_API_KEY;
use ringback_sim::vapi::model::CallStatus;
use ringback_sim::world::{AccountConfig, NumberConfig, WorldConfig};
use serde_json::{Value, json};

use crate::sdk_support::sdk;
use crate::support::{ACCOUNT, Served, TOKEN};
use crate::vapi_spec::{
    strict_vapi, validate_client_inbound_message, validate_server_message, validate_vapi_response,
};

/// Simulated seconds pass 20 times faster than real ones.
const SCALE: f64 = 0.05;

/// The Twilio number the scripts import into Vapi.
const TWILIO_NUMBER: &str = "+15550002000";

/// The customer both calls are for: a person who picks up after 2 s.
const CUSTOMER: &str = "+15558880002";

/// The organization the fake Vapi's resources belong to.
const ORG_ID: &str = "6f1d2c3b-4a59-4e68-8d7c-0b1a2f3e4d5c";

/// The id the scripts ask for to provoke a 404.
const MISSING_CALL: &str = "00000000-0000-4000-8000-000000000000";

/// The control URL's path segment in [`path_template`]'s answer: not an operation of the spec.
const CONTROL: &str = "/{id}/control";

/// Server messages the fake Vapi POSTed to the assistant's `server.url`.
#[derive(Clone, Debug, Default)]
struct Inbox(Arc<Mutex<Vec<Value>>>);

impl Inbox {
    fn messages(&self) -> Vec<Value> {
        self.0.lock().expect("inbox lock").clone()
    }
}

/// A server for the assistant's messages on a loopback port: records each and answers `{}`. Returns its
/// URL.
async fn message_server(inbox: Inbox) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/vapi", listener.local_addr().expect("addr"));
    let router = Router::new()
        .route(
            "/vapi",
            post(|State(inbox): State<Inbox>, axum::Json(message): axum::Json<Value>| async move {
                inbox.0.lock().expect("inbox lock").push(message);
                axum::Json(json!({}))
            }),
        )
        .with_state(inbox);
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// Both fakes over HTTP from one world: the support account owns `TWILIO_NUMBER` (no webhooks yet: the
/// import sets them), `CUSTOMER` answers. A bypass call waits a simulated day for its stream, so that the
/// slow Python SDK reaches the control URL before the deadline can end the call.
async fn fakes() -> Served {
    let mut config = WorldConfig {
        seed: 13,
        accounts: vec![AccountConfig {
            sid: ACCOUNT,
            auth_token: TOKEN.into(),
            numbers: vec![NumberConfig {
                phone_number: TWILIO_NUMBER.into(),
                voice_url: None,
                voice_method: None,
                voice_fallback_url: None,
                status_callback: None,
            }],
        }],
        ..WorldConfig::default()
    };
    config.phones.insert(CUSTOMER.into(), Behaviour::Human { after_s: 2.0 });
    config.vapi.org_id = Some(ORG_ID.into());
    config.vapi.defaults.bypass_connect_timeout_s = 86_400.0;
    crate::support::serve_both_over_http(config, SCALE).await
}

/// One SDK's run: its report, the fakes it ran against, and the server messages they sent.
struct Run {
    sdk_name: &'static str,
    report: Value,
    served: Served,
    inbox: Inbox,
    server_url: String,
}

impl Run {
    fn sim(&self) -> &SharedSim {
        &self.served.sim
    }

    /// Everything `assert!`s print: the report and the journal's timeline.
    fn context(&self) -> String {
        format!(
            "{} reported:\n{}\ntimeline:\n{}",
            self.sdk_name,
            serde_json::to_string_pretty(&self.report).unwrap_or_default(),
            self.sim().world().journal().timeline()
        )
    }
}

/// Runs `script` against fresh fakes.
async fn run(sdk_name: &'static str, script: &'static str) -> Run {
    let served = fakes().await;
    let inbox = Inbox::default();
    let server_url = message_server(inbox.clone()).await;
    let input = json!({
        "vapi_url": served.vapi_url,
        "api_key": DEFAULT_API_KEY,
        "twilio_account_sid": ACCOUNT.to_string(),
        "twilio_auth_token": TOKEN,
        "twilio_number": TWILIO_NUMBER,
        "customer_number": CUSTOMER,
        "server_url": server_url,
    });
    let sdk = sdk();
    let report = tokio::task::spawn_blocking(move || {
        if script.ends_with(".py") { sdk.python(script, &input) } else { sdk.node(script, &input) }
    })
    .await;
    match report {
        Ok(report) => Run { sdk_name, report, served, inbox, server_url },
        Err(e) => panic!("{script} failed: {e}\n{}", served.sim.world().journal().timeline()),
    }
}

fn is_uuid(value: &Value) -> bool {
    value.as_str().is_some_and(|s| uuid::Uuid::try_parse(s).is_ok())
}

/// Vapi's 401 body, verbatim (reference §1).
fn unauthorized_body() -> Value {
    json!({
        "message": "Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa.",
        "error": "Unauthorized",
        "statusCode": 401,
    })
}

/// What the SDK observed, step by step.
fn assert_report(run: &Run, error_class: &str) {
    let r = &run.report;
    let context = run.context();
    let vapi = &run.served.vapi_url;

    // (a) The assistant, as created, fetched and listed.
    let assistant = &r["assistant"];
    assert!(is_uuid(&assistant["id"]), "{context}");
    assert_eq!(assistant["name"], "sdk-assistant", "{context}");
    assert_eq!(assistant["first_message"], "Hello from the SDK", "{context}");
    assert_eq!(assistant["model_provider"], "openai", "{context}");
    assert_eq!(assistant["model"], "gpt-4o", "{context}");
    assert_eq!(assistant["server_url"], run.server_url, "{context}");
    assert_eq!(assistant["org_id"], ORG_ID, "{context}");
    assert_eq!(assistant["fetched_id"], assistant["id"], "{context}");
    assert_eq!(assistant["fetched_name"], "sdk-assistant", "{context}");
    assert_eq!(assistant["listed"], json!([assistant["id"]]), "{context}");

    // (b) The imported number, with `provider: "twilio"` everywhere (the Python SDK parses a number
    // without it to None).
    let number = &r["phone_number"];
    assert!(is_uuid(&number["id"]), "{context}");
    assert_eq!(number["provider"], "twilio", "{context}");
    assert_eq!(number["number"], TWILIO_NUMBER, "{context}");
    assert_eq!(number["twilio_account_sid"], ACCOUNT.to_string(), "{context}");
    assert_eq!(number["fetched_id"], number["id"], "{context}");
    assert_eq!(number["fetched_provider"], "twilio", "{context}");
    assert_eq!(number["listed"], json!([number["id"]]), "{context}");
    if let Some(class) = number.get("class") {
        assert_eq!(class, "CreatePhoneNumbersResponse_Twilio", "the Python SDK's union variant: {context}");
    }

    // (c) The bypass call: TwiML that connects a Twilio leg to the fake's stream, and a control URL on it.
    let bypass = &r["bypass_call"];
    let bypass_id = bypass["id"].as_str().unwrap_or_else(|| panic!("no bypass call id: {context}"));
    assert!(is_uuid(&bypass["id"]), "{context}");
    assert_eq!(bypass["is_batch"], false, "{context}");
    assert_eq!(bypass["status"], "queued", "{context}");
    assert_eq!(bypass["type"], "outboundPhoneCall", "{context}");
    assert_eq!(bypass["bypass_enabled"], true, "{context}");
    let ws = vapi.replacen("http", "ws", 1);
    let stream = format!(r#"<Connect><Stream url="{ws}/{bypass_id}/transport"/></Connect>"#);
    let twiml = bypass["twiml"].as_str().unwrap_or_default();
    assert!(twiml.contains("<Connect><Stream url="), "{context}");
    assert!(twiml.contains(&stream), "expected {stream} in the TwiML: {context}");
    assert_eq!(bypass["control_url"], format!("{vapi}/{bypass_id}/control"), "{context}");
    assert_eq!(bypass["listen_url"], format!("{ws}/{bypass_id}/listen"), "{context}");

    // (d) The outbound call, fetched, listed by assistant (newest first) and the bypass call renamed.
    let outbound = &r["outbound_call"];
    let outbound_id = outbound["id"].as_str().unwrap_or_else(|| panic!("no outbound call id: {context}"));
    assert!(is_uuid(&outbound["id"]), "{context}");
    assert_ne!(outbound_id, bypass_id, "{context}");
    assert_eq!(outbound["is_batch"], false, "{context}");
    assert_eq!(outbound["status"], "queued", "{context}");
    assert_eq!(outbound["type"], "outboundPhoneCall", "{context}");
    assert_eq!(outbound["control_url"], format!("{vapi}/{outbound_id}/control"), "{context}");
    assert_eq!(outbound["fetched_id"], outbound_id, "{context}");
    let fetched_status = outbound["fetched_status"].as_str().unwrap_or_default();
    assert!(["queued", "ringing", "in-progress", "ended"].contains(&fetched_status), "{context}");
    assert_eq!(outbound["fetched_assistant_id"], assistant["id"], "{context}");
    assert_eq!(outbound["fetched_phone_number_id"], number["id"], "{context}");
    assert_eq!(outbound["fetched_customer_number"], CUSTOMER, "{context}");
    assert_eq!(r["listed_calls"], json!([outbound_id, bypass_id]), "{context}");
    assert_eq!(r["renamed"], json!({"id": bypass_id, "name": "sdk-renamed"}), "{context}");

    // (e) Live call control, with plain HTTP.
    assert_eq!(r["control"]["say"], json!({"status": 200, "body": {}}), "{context}");
    assert_eq!(r["control"]["end_call"], json!({"status": 200, "body": {}}), "{context}");

    // (f) A plain error of the SDK (neither SDK has a subclass for 401 or 404 on these methods), with
    // Vapi's NestJS body.
    assert_eq!(
        r["missing_call"],
        json!({"class": error_class, "status": 404,
               "body": {"message": "Call not found", "error": "Not Found", "statusCode": 404}}),
        "{context}"
    );
    assert_eq!(
        r["wrong_key"],
        json!({"class": error_class, "status": 401, "body": unauthorized_body()}),
        "{context}"
    );
}

/// The world afterwards: the bypass call ended by the control URL, the outbound call placed through the
/// fake Twilio, the number pointed at the fake Vapi.
async fn assert_world(run: &Run) {
    let context = run.context();
    let (vapi, twilio) = (&run.served.vapi_url, &run.served.twilio_url);
    let bypass_id = run.report["bypass_call"]["id"].as_str().unwrap_or_default();
    let outbound_id = run.report["outbound_call"]["id"].as_str().unwrap_or_default();

    // The bypass call had no Twilio leg, so no stream: `say` had nothing to play on, and `end-call`
    // ended it at once (not the bypass deadline, a simulated day away).
    let leg = {
        let world = run.sim().world();
        let call = world.vapi_call(bypass_id).unwrap_or_else(|| panic!("no bypass call: {context}"));
        assert_eq!(call.status, CallStatus::Ended, "{context}");
        assert_eq!(call.ended_reason.as_deref(), Some("manually-canceled"), "{context}");
        assert!(call.ended_at.is_some(), "{context}");
        assert_eq!(call.stream, None, "{context}");
        assert_eq!(call.twilio_call, None, "{context}");
        assert_eq!(call.name.as_deref(), Some("sdk-renamed"), "{context}");
        assert!(call.bypass, "{context}");
        let outbound = world.vapi_call(outbound_id).unwrap_or_else(|| panic!("no outbound call: {context}"));
        assert!(!outbound.bypass, "{context}");
        outbound.twilio_call.unwrap_or_else(|| panic!("the outbound call has no Twilio leg: {context}"))
    };

    // Vapi's own requests to Twilio, with the imported credentials: the import's lookup and webhook
    // update, and the one outbound call (a bypass call places none).
    let to_twilio: Vec<HttpExchange> = run
        .sim()
        .world()
        .journal()
        .entries()
        .iter()
        .filter_map(|e| match &e.event {
            Event::Http(x) if x.from == Party::Vapi && x.to == Party::Twilio => Some(x.clone()),
            _ => None,
        })
        .collect();
    let accounts = format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}");
    let requests: Vec<(String, String, u16)> = to_twilio
        .iter()
        .map(|x| {
            let path = x.url.split('?').next().unwrap_or_default();
            let path = path.strip_prefix(&accounts).unwrap_or(path);
            let path = if path.starts_with("/IncomingPhoneNumbers/PN") {
                "/IncomingPhoneNumbers/{Sid}.json"
            } else {
                path
            };
            (x.method.clone(), path.to_owned(), x.response.as_ref().map_or(0, |r| r.status))
        })
        .collect();
    let expected = [
        ("GET", "/IncomingPhoneNumbers.json", 200),
        ("POST", "/IncomingPhoneNumbers/{Sid}.json", 200),
        ("POST", "/Calls.json", 201),
    ]
    .map(|(m, p, s)| (m.to_owned(), p.to_owned(), s));
    assert_eq!(requests, expected, "{context}");
    let create = &to_twilio[2];
    let form: Vec<(String, String)> =
        form_urlencoded::parse(create.request_body.as_bytes()).into_owned().collect();
    let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(param("To"), Some(CUSTOMER), "{context}");
    assert_eq!(param("From"), Some(TWILIO_NUMBER), "{context}");
    let stream = format!(r#"<Stream url="{}/{outbound_id}/transport"/>"#, vapi.replacen("http", "ws", 1));
    assert!(param("Twiml").is_some_and(|t| t.contains(&stream)), "{context}");
    assert_eq!(param("StatusCallback"), Some(format!("{vapi}/twilio/status").as_str()), "{context}");
    let created: Value =
        serde_json::from_str(&create.response.as_ref().expect("answered").body).expect("JSON");
    assert_eq!(created["sid"], leg.to_string(), "{context}");

    // What the fake Twilio's own REST API says, over HTTP: the leg Vapi placed, and the number's webhooks.
    let client = reqwest::Client::new();
    let get = |path: String| {
        let request = client.get(format!("{twilio}/2010-04-01/Accounts/{ACCOUNT}/{path}"));
        async move {
            let response = request
                .basic_auth(ACCOUNT.to_string(), Some(TOKEN))
                .send()
                .await
                .expect("fake Twilio answers");
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.expect("JSON")
        }
    };
    let call = get(format!("Calls/{leg}.json")).await;
    assert_eq!(call["to"], CUSTOMER, "{context}");
    assert_eq!(call["from"], TWILIO_NUMBER, "{context}");
    assert_eq!(call["direction"], "outbound-api", "{context}");
    let numbers = get("IncomingPhoneNumbers.json?PhoneNumber=%2B15550002000".to_owned()).await;
    let number = &numbers["incoming_phone_numbers"][0];
    assert_eq!(number["phone_number"], TWILIO_NUMBER, "{context}");
    assert_eq!(number["voice_url"], format!("{vapi}/twilio/inbound_call"), "{context}");
    assert_eq!(number["status_callback"], format!("{vapi}/twilio/status"), "{context}");
}

/// The concrete path of a request to the fake Vapi → its path template in the spec (or [`CONTROL`]).
fn path_template(url: &str) -> Option<&'static str> {
    let path = url.split('?').next()?;
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    Some(match segments.as_slice() {
        ["call"] => "/call",
        ["call", _] => "/call/{id}",
        ["assistant"] => "/assistant",
        ["assistant", _] => "/assistant/{id}",
        ["phone-number"] => "/phone-number",
        ["phone-number", _] => "/phone-number/{id}",
        [id, "control"] if uuid::Uuid::try_parse(id).is_ok() => CONTROL,
        _ => return None,
    })
}

/// Every exchange between the SDK and the fake Vapi: a JSON response; a documented one matches the
/// spec's schema for its operation (in the strict dialect too), an undocumented error (the spec documents
/// no 401 or 404) is a NestJS error body; a control request is a valid `ClientInboundMessage` (the control
/// URL is not in the spec). Returns the operations seen, as `METHOD template status`, and how many
/// responses the spec validated.
fn assert_exchanges_match_the_spec(run: &Run) -> (Vec<String>, usize) {
    let name = run.sdk_name;
    let mut seen: Vec<String> = Vec::new();
    let mut validated = 0;
    for entry in run.sim().world().journal().entries() {
        let Event::Http(exchange) = &entry.event else { continue };
        if exchange.from != Party::Client || exchange.to != Party::Vapi {
            continue;
        }
        let (method, url) = (&exchange.method, &exchange.url);
        let response =
            exchange.response.as_ref().unwrap_or_else(|| panic!("{name}: {method} {url} got no response"));
        let template = path_template(url).unwrap_or_else(|| panic!("{name} requested {method} {url}"));
        assert!(
            response.content_type.as_deref().is_some_and(|t| t.starts_with("application/json")),
            "{name}: {method} {url} answered {:?}",
            response.content_type
        );
        let body: Value = serde_json::from_str(&response.body)
            .unwrap_or_else(|e| panic!("{name}: {method} {url} answered non-JSON ({e}): {}", response.body));
        let what = format!("{method} {template} {}", response.status);
        if response.status == 404 {
            assert_eq!(*url, format!("/call/{MISSING_CALL}"), "{name}: {what}");
        }
        if template == CONTROL {
            let request: Value = serde_json::from_str(&exchange.request_body).expect("control body is JSON");
            if let Err(errors) = validate_client_inbound_message(&request) {
                panic!("{name}: {what} sent {request}, not a control message:\n  {}", errors.join("\n  "));
            }
        } else {
            let method = method.to_ascii_lowercase();
            match validate_vapi_response(&method, template, response.status, &body) {
                Ok(()) => {
                    validated += 1;
                    // What the fake writes is held to the strict dialect too: no key the spec lacks
                    // but those Vapi is known to send.
                    if let Err(errors) =
                        strict_vapi().validate_response(&method, template, response.status, &body)
                    {
                        panic!(
                            "{name}: {what} has undocumented keys:\n  {}\nbody: {body:#}",
                            errors.join("\n  ")
                        );
                    }
                }
                Err(errors) if (200..300).contains(&response.status) => panic!(
                    "{name}: {what} does not match Vapi's spec:\n  {}\nbody: {body:#}",
                    errors.join("\n  ")
                ),
                Err(_) => {
                    let keys: Vec<&str> =
                        body.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
                    assert_eq!(keys, ["message", "error", "statusCode"], "{name}: {what} error body {body}");
                    assert_eq!(body["statusCode"], response.status, "{name}: {what} error body {body}");
                }
            }
        }
        if !seen.contains(&what) {
            seen.push(what);
        }
    }
    seen.sort();
    (seen, validated)
}

/// The operations each script performs, as [`assert_exchanges_match_the_spec`] names them.
const OPERATIONS: [&str; 13] = [
    "GET /assistant 200",
    "GET /assistant/{id} 200",
    "GET /call 200",
    "GET /call/{id} 200",
    "GET /call/{id} 401",
    "GET /call/{id} 404",
    "GET /phone-number 200",
    "GET /phone-number/{id} 200",
    "PATCH /call/{id} 200",
    "POST /assistant 201",
    "POST /call 201",
    "POST /phone-number 201",
    "POST /{id}/control 200",
];

/// The server messages that reached the assistant's server: each valid, and the bypass call's
/// end-of-call report among them, saying how it ended.
async fn assert_server_messages(run: &Run) {
    let bypass_id = run.report["bypass_call"]["id"].clone();
    let is_bypass_report =
        |m: &Value| m["message"]["type"] == "end-of-call-report" && m["message"]["call"]["id"] == bypass_id;
    // Server messages are delivered while the script runs, but not in step with it.
    for _ in 0..100 {
        if run.inbox.messages().iter().any(is_bypass_report) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let messages = run.inbox.messages();
    let context = run.context();
    for message in &messages {
        if let Err(errors) = validate_server_message(message) {
            panic!(
                "{}: a server message does not match Vapi's spec:\n  {}\n{message:#}",
                run.sdk_name,
                errors.join("\n  ")
            );
        }
    }
    let report = messages.iter().find(|m| is_bypass_report(m)).unwrap_or_else(|| {
        panic!("no end-of-call-report for the bypass call among {} messages: {context}", messages.len())
    });
    assert_eq!(report["message"]["endedReason"], "manually-canceled", "{context}");
    assert_eq!(report["message"]["call"]["status"], "ended", "{context}");
}

async fn check(sdk_name: &'static str, script: &'static str, error_class: &str) {
    let run = run(sdk_name, script).await;
    assert_report(&run, error_class);
    assert_world(&run).await;
    let (operations, validated) = assert_exchanges_match_the_spec(&run);
    assert_eq!(operations, OPERATIONS, "{sdk_name}");
    assert!(validated > 0, "{sdk_name}: no response was checked against the spec");
    assert_server_messages(&run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vapi_node_drives_assistants_numbers_calls_control_and_errors_unmodified() {
    check("@vapi-ai/server-sdk", "vapi_check.js", "VapiError").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vapi_python_drives_assistants_numbers_calls_control_and_errors_unmodified() {
    check("vapi_server_sdk", "vapi_check.py", "ApiError").await;
}
