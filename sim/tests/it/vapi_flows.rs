//! The fake Vapi in whole call flows, in virtual time: a test orchestrator (an in-memory axum app) that
//! creates bypass calls through the fake Vapi's REST API and answers its server messages.

use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::post;
use ringback_sim::ids::CallSid;
use ringback_sim::runtime::SharedSim;
use ringback_sim::vapi::model::TRANSFER_MODES;
use ringback_sim::world::{World, WorldConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{self, ACCOUNT, CALLER, NUMBER, TOKEN};

pub const ASSISTANT: &str = "0b1c5a34-7f31-4c6e-9d4e-1a2b3c4d5e6f";
pub const PHONE: &str = "5d0c9a1e-2b3f-4a5b-8c7d-6e5f4a3b2c1d";
pub const KEY: &str = ringback_sim::vapi::DEFAULT_API_KEY;

/// How the test orchestrator answers a server message (`{}` when it has no answer).
pub type Answer = fn(&Value) -> Value;

/// What the test orchestrator saw and how it answers.
#[derive(Clone, Default)]
pub struct Orchestrator {
    pub sim: Arc<OnceLock<SharedSim>>,
    pub messages: Arc<Mutex<Vec<Value>>>,
    /// The answer to `tool-calls`, given the message.
    pub answer: Arc<Mutex<Option<Answer>>>,
    /// Seconds the orchestrator takes to answer `tool-calls`.
    pub tool_delay_s: Arc<Mutex<u64>>,
    /// How many `tool-calls` messages to fail, and the status they are failed with.
    pub failing_tool_calls: Arc<Mutex<(u32, u16)>>,
    /// When each `tool-calls` message arrived (a retry sends the same body, timestamp included).
    pub tool_calls_at: Arc<Mutex<Vec<tokio::time::Instant>>>,
}

impl Orchestrator {
    pub fn types(&self) -> Vec<String> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .map(|m| m["message"]["type"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    /// Checks every message received against the spec's `ServerMessage` schemas.
    pub fn assert_messages_valid(&self) {
        let messages = self.messages.lock().unwrap();
        assert!(!messages.is_empty(), "no server messages");
        for message in messages.iter() {
            if let Err(errors) = crate::vapi_spec::validate_server_message(message) {
                panic!("{} does not match the spec:\n{}", message["message"]["type"], errors.join("\n"));
            }
        }
    }

    pub fn of_type(&self, kind: &str) -> Vec<Value> {
        self.messages.lock().unwrap().iter().filter(|m| m["message"]["type"] == kind).cloned().collect()
    }
}

/// Sends a request to one of the fakes' routers in process.
pub async fn call(
    router: Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (u16, String) {
    let mut request = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = router.oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

pub async fn vapi(sim: &SharedSim, method: &str, path: &str, body: Value) -> (u16, Value) {
    let router = ringback_sim::vapi::rest::router(sim.clone());
    let auth = format!("Bearer {KEY}");
    let (status, text) = call(
        router,
        method,
        path,
        &[("authorization", &auth), ("content-type", "application/json")],
        body.to_string(),
    )
    .await;
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

pub async fn twilio_update(sim: &SharedSim, leg: CallSid, params: &[(&str, &str)]) -> u16 {
    let router = ringback_sim::twilio::rest::router(sim.clone());
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{ACCOUNT}:{TOKEN}"))
    );
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let uri = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{leg}.json");
    call(
        router,
        "POST",
        &uri,
        &[("authorization", &basic), ("content-type", "application/x-www-form-urlencoded")],
        body,
    )
    .await
    .0
}

fn router(orchestrator: Orchestrator) -> Router {
    Router::new()
        .route(
            "/voice",
            post(|State(o): State<Orchestrator>, body: String| async move {
                let from = form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "From")
                    .map(|(_, v)| v.into_owned());
                let sim = o.sim.get().expect("sim set").clone();
                let (status, created) = vapi(
                    &sim,
                    "POST",
                    "/call",
                    json!({"assistantId": ASSISTANT, "phoneNumberId": PHONE, "customer": {"number": from},
                           "phoneCallProviderBypassEnabled": true}),
                )
                .await;
                assert_eq!(status, 201, "{created}");
                let twiml = created["phoneCallProviderDetails"]["twiml"].as_str().expect("twiml").to_owned();
                ([("content-type", "text/xml")], twiml)
            }),
        )
        .route(
            "/vapi",
            post(|State(o): State<Orchestrator>, axum::Json(message): axum::Json<Value>| async move {
                o.messages.lock().unwrap().push(message.clone());
                if message["message"]["type"] == "tool-calls" {
                    o.tool_calls_at.lock().unwrap().push(tokio::time::Instant::now());
                    let delay = *o.tool_delay_s.lock().unwrap();
                    tokio::time::sleep(std::time::Duration::from_secs(delay)).await;
                    let mut failing = o.failing_tool_calls.lock().unwrap();
                    if failing.0 > 0 {
                        failing.0 -= 1;
                        let status = http::StatusCode::from_u16(failing.1).expect("a status");
                        return (status, axum::Json(json!({"error": "down"})));
                    }
                }
                let answer = *o.answer.lock().unwrap();
                (http::StatusCode::OK, axum::Json(answer.map_or(json!({}), |answer| answer(&message))))
            }),
        )
        .route("/number-status", post(|| async { "" }))
        .with_state(orchestrator)
}

/// A world with the support account and number, an assistant with a server at the test orchestrator,
/// the number imported into Vapi, and `script` (TOML turns) for the assistant.
pub fn world(assistant: Value, script: &str, phones: &[(&str, &str)]) -> World {
    world_at("http://orchestrator.test/voice", assistant, script, phones)
}

/// The same, with the number's voice URL at `voice_url`.
fn world_at(voice_url: &str, assistant: Value, script: &str, phones: &[(&str, &str)]) -> World {
    let mut config: WorldConfig = toml::from_str(&format!(
        r#"
        seed = 7
        [[accounts]]
        sid = "{ACCOUNT}"
        auth_token = "{TOKEN}"
        numbers = [{{ phone_number = "{NUMBER}", voice_url = "{voice_url}", status_callback = "http://orchestrator.test/number-status" }}]
        [[vapi.scripts]]
        assistant = "{ASSISTANT}"
        {script}
        "#
    ))
    .expect("world toml");
    let mut assistant = assistant;
    assistant["id"] = json!(ASSISTANT);
    config.vapi.assistants.push(assistant);
    config.vapi.phone_numbers.push(json!({
        "id": PHONE, "provider": "twilio", "number": NUMBER, "twilioAccountSid": ACCOUNT.to_string(),
        "twilioAuthToken": TOKEN, "assistantId": ASSISTANT,
    }));
    for (number, behaviour) in phones {
        config.phones.insert((*number).into(), support::behaviour(behaviour));
    }
    World::new(config).expect("valid world")
}

pub fn start(world: World) -> (SharedSim, Orchestrator) {
    let orchestrator = Orchestrator::default();
    let sim = support::sim(world, router(orchestrator.clone()));
    orchestrator.sim.set(sim.clone()).ok();
    (sim, orchestrator)
}

/// Says `text` as the caller at simulated second `at`.
pub fn say_at(sim: &SharedSim, leg: CallSid, at: u64, text: &'static str) {
    let sim = sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(at)).await;
        sim.with(|w| w.caller_says(leg, text)).expect("caller speaks");
    });
}

fn lookup_answer(message: &Value) -> Value {
    if message["message"]["type"] != "tool-calls" {
        return json!({});
    }
    let id = &message["message"]["toolCallList"][0]["id"];
    json!({"results": [{"toolCallId": id, "name": "lookup_order", "result": "has shipped"}]})
}

#[tokio::test(start_paused = true)]
async fn a_bypass_call_greets_hears_calls_a_tool_and_ends_when_twilio_redirects_away() {
    let assistant = json!({
        "name": "front-desk",
        "firstMessage": "Hello, how can I help?",
        "model": {"provider": "openai", "model": "gpt-4o", "messages": [{"role": "system", "content": "You help."}],
                  "tools": [{"type": "function", "function": {"name": "lookup_order"}}]},
        "server": {"url": "http://orchestrator.test/vapi", "secret": "s3cret"},
    });
    let script = r#"
        [[vapi.scripts.turns]]
        user = "order"
        say = "Let me check."
        tool_calls = [{ name = "lookup_order", arguments = { order = "42" } }]
        after_tools = "Your order {{result}}."
    "#;
    let (sim, orchestrator) = start(world(assistant, script, &[]));
    *orchestrator.answer.lock().unwrap() = Some(lookup_answer);
    let leg = sim.with(|w| w.place_inbound_call(CALLER, NUMBER)).expect("inbound call");
    say_at(&sim, leg, 5, "Where is my order?");
    let redirect = {
        let sim = sim.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(20)).await;
            twilio_update(&sim, leg, &[("Twiml", "<Response><Say>Goodbye</Say></Response>")]).await
        })
    };
    support::settle(&sim).await;
    assert_eq!(redirect.await.unwrap(), 200);
    let timeline = sim.world().journal().timeline();
    assert_eq!(
        orchestrator.types(),
        [
            "status-update",
            "speech-update",
            "speech-update",
            "conversation-update",
            "speech-update",
            "speech-update",
            "conversation-update",
            "speech-update",
            "speech-update",
            "conversation-update",
            "tool-calls",
            "speech-update",
            "speech-update",
            "conversation-update",
            "status-update",
            "end-of-call-report",
        ],
        "{timeline}"
    );
    orchestrator.assert_messages_valid();
    let tool_calls = &orchestrator.of_type("tool-calls")[0]["message"];
    assert_eq!(tool_calls["toolCallList"][0]["function"]["arguments"], json!({"order": "42"}));
    assert_eq!(tool_calls["toolWithToolCallList"][0]["toolCall"]["id"], tool_calls["toolCallList"][0]["id"]);
    let report = &orchestrator.of_type("end-of-call-report")[0]["message"];
    assert_eq!(report["endedReason"], "customer-ended-call", "{timeline}");
    assert_eq!(
        report["artifact"]["transcript"],
        "AI: Hello, how can I help?\nUser: Where is my order?\nAI: Let me check.\nAI: Your order has shipped.\n"
    );
    let roles: Vec<&str> = report["artifact"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "bot", "user", "bot", "tool_calls", "tool_call_result", "bot"]);
    let world = sim.world();
    let call = world.vapi_calls().next().expect("one vapi call");
    assert_eq!(call.ended_reason.as_deref(), Some("customer-ended-call"));
    assert!(timeline.contains(&format!("call {leg} hears say \"Goodbye\"")), "{timeline}");
    let secret = world.journal().entries().iter().any(|e| format!("{e:?}").contains("x-vapi-secret"));
    assert!(secret, "server messages carry x-vapi-secret");
}

const SPECIALIST: &str = "+15550000200";

/// A Vapi-owned number (voice URL at the fake Vapi) whose assistant transfers with `mode` when the
/// caller asks for a specialist.
fn native_world(mode: &str, end_call: bool, specialist: &str) -> World {
    let assistant = json!({
        "name": "front-desk",
        "firstMessage": "Hello, how can I help?",
        "server": {"url": "http://orchestrator.test/vapi"},
        "serverMessages": ["status-update", "end-of-call-report", "transfer-update", "tool-calls"],
        "model": {"provider": "openai", "model": "gpt-4o", "tools": [{
            "type": "transferCall",
            "function": {"name": "transfer_to_specialist"},
            "destinations": [{
                "type": "number", "number": SPECIALIST, "message": "Transferring you now.",
                "transferPlan": {"mode": mode, "holdAudioUrl": "https://example.test/hold.mp3",
                                 "fallbackPlan": {"message": "Sorry, nobody is available.", "endCallEnabled": end_call}},
            }],
        }]},
    });
    let script = format!(
        r#"
        [[vapi.scripts.turns]]
        user = "specialist"
        tool_calls = [{{ name = "transfer_to_specialist", arguments = {{ destination = "{SPECIALIST}" }} }}]
        "#
    );
    world_at("https://api.vapi.ai/twilio/inbound_call", assistant, &script, &[(SPECIALIST, specialist)])
}

/// Runs a caller who asks for a specialist and stays on the line; returns the Vapi call's endedReason,
/// its transfer statuses, the caller leg's hears-lines and the orchestrator.
async fn native_transfer(
    mode: &str,
    end_call: bool,
    specialist: &str,
) -> (String, Vec<Value>, String, Orchestrator) {
    let (sim, orchestrator) = start(native_world(mode, end_call, specialist));
    let leg = sim.with(|w| w.place_inbound_call(CALLER, NUMBER)).expect("inbound call");
    say_at(&sim, leg, 5, "I need a specialist");
    support::settle(&sim).await;
    let timeline = sim.world().journal().timeline();
    orchestrator.assert_messages_valid();
    let reports = orchestrator.of_type("end-of-call-report");
    assert_eq!(reports.len(), 1, "{timeline}");
    let report = &reports[0]["message"];
    let transfers = report["artifact"]["transfers"].as_array().cloned().unwrap_or_default();
    (report["endedReason"].as_str().unwrap_or_default().to_owned(), transfers, timeline, orchestrator)
}

#[tokio::test(start_paused = true)]
async fn a_blind_transfer_hands_the_caller_over_and_never_learns_the_outcome() {
    let cases = ["blind-transfer", "blind-transfer-add-summary-to-sip-header"].into_iter().flat_map(|m| {
        [(m, r#"{ answer = "hang-up", after_s = 3, talk_s = 30 }"#), (m, r#"{ answer = "busy" }"#)]
    });
    for (mode, specialist) in cases {
        let (reason, transfers, timeline, _) = native_transfer(mode, false, specialist).await;
        assert_eq!(reason, "assistant-forwarded-call", "{timeline}");
        assert_eq!(transfers.len(), 1);
        assert_eq!(transfers[0]["mode"], mode);
        assert!(transfers[0].get("status").is_none(), "blind: Vapi does not observe the result");
        assert!(
            timeline.contains("vapi → twilio POST https://api.twilio.com/2010-04-01/Accounts/"),
            "{timeline}"
        );
        assert!(timeline.contains("(<Dial> from"), "the caller's leg dials the specialist:\n{timeline}");
    }
}

#[tokio::test(start_paused = true)]
async fn every_warm_mode_bridges_a_human_and_falls_back_on_busy_no_answer_and_voicemail() {
    let cases = [
        (r#"{ answer = "hang-up", after_s = 3, talk_s = 30 }"#, "connected", "assistant-forwarded-call"),
        (r#"{ answer = "busy" }"#, "busy", "silence-timed-out"),
        (r#"{ answer = "no-answer" }"#, "no-answer", "silence-timed-out"),
        (
            r#"{ answer = "machine", after_s = 2, greeting_s = 5, beep = true }"#,
            "voicemail",
            "silence-timed-out",
        ),
    ];
    let modes = TRANSFER_MODES.iter().filter(|m| m.starts_with("warm-"));
    assert_eq!(modes.clone().count(), 6);
    for (mode, (specialist, status, ended)) in modes.flat_map(|m| cases.map(|c| (*m, c))) {
        let (reason, transfers, timeline, orchestrator) = native_transfer(mode, false, specialist).await;
        assert_eq!(transfers[0]["mode"], mode);
        assert_eq!(transfers[0]["status"], status, "{specialist}\n{timeline}");
        assert_eq!(reason, ended, "{specialist}\n{timeline}");
        if status != "connected" {
            assert!(timeline.contains("hears assistant: Sorry, nobody is available."), "{timeline}");
            let statuses: Vec<Value> = orchestrator
                .of_type("status-update")
                .iter()
                .map(|m| m["message"]["status"].clone())
                .collect();
            assert_eq!(
                statuses,
                ["ringing", "in-progress", "forwarding", "in-progress", "ended"],
                "{timeline}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_fallback_plan_that_ends_the_call_hangs_up_after_its_message() {
    let (reason, transfers, timeline, _) =
        native_transfer("warm-transfer-experimental", true, r#"{ answer = "busy" }"#).await;
    assert_eq!(transfers[0]["status"], "busy");
    assert_eq!(reason, "call.in-progress.error-transfer-failed", "{timeline}");
}

#[tokio::test(start_paused = true)]
async fn stale_transfer_mode_names_from_the_docs_are_rejected_with_a_400() {
    let (sim, _) = start(native_world("blind-transfer", false, r#"{ answer = "busy" }"#));
    let (status, body) = vapi(
        &sim,
        "POST",
        "/assistant",
        json!({"model": {"provider": "openai", "model": "gpt-4o", "tools": [{"type": "transferCall", "destinations": [
            {"type": "number", "number": SPECIALIST, "transferPlan": {"mode": "warm-transfer-with-summary"}}]}]}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "Bad Request");
    assert!(body["message"][0].as_str().unwrap().contains("transferPlan.mode must be one of"), "{body}");
}

/// The bypass flow of the first test with a tool server behind `server` that answers `tool-calls` after
/// `delay_s` and fails the first `failing.0` of them with status `failing.1`: the world, what the server
/// saw, and the end-of-call report.
async fn tool_flow(server: Value, delay_s: u64, failing: (u32, u16)) -> (SharedSim, Orchestrator, Value) {
    let assistant = json!({
        "firstMessage": "Hello.",
        "model": {"provider": "openai", "model": "gpt-4o", "tools": [{"type": "function", "function": {"name": "lookup_order"}}]},
        "server": server,
    });
    let script = r#"
        [[vapi.scripts.turns]]
        tool_calls = [{ name = "lookup_order" }]
        after_tools = "It {{result}}."
        end_call = true
    "#;
    let (sim, orchestrator) = start(world(assistant, script, &[]));
    *orchestrator.answer.lock().unwrap() = Some(lookup_answer);
    *orchestrator.tool_delay_s.lock().unwrap() = delay_s;
    *orchestrator.failing_tool_calls.lock().unwrap() = failing;
    let leg = sim.with(|w| w.place_inbound_call(CALLER, NUMBER)).expect("inbound call");
    say_at(&sim, leg, 3, "Where is my order?");
    support::settle(&sim).await;
    orchestrator.assert_messages_valid();
    let report = orchestrator.of_type("end-of-call-report")[0]["message"].clone();
    (sim, orchestrator, report)
}

/// [`tool_flow`] with a server that answers after `delay_s` and never fails.
async fn slow_tool(delay_s: u64) -> (Orchestrator, Value) {
    let (_, orchestrator, report) =
        tool_flow(json!({"url": "http://orchestrator.test/vapi"}), delay_s, (0, 200)).await;
    (orchestrator, report)
}

#[tokio::test(start_paused = true)]
async fn a_slow_tool_server_gets_a_hang_message_and_a_timed_out_one_a_failed_result() {
    let (orchestrator, report) = slow_tool(8).await;
    let types = orchestrator.types();
    let tool_calls = types.iter().position(|t| t == "tool-calls").expect("tool-calls sent");
    assert!(types[tool_calls..].contains(&"hang".to_owned()), "{types:?}");
    assert_eq!(report["endedReason"], "assistant-ended-call");
    assert!(
        report["artifact"]["transcript"].as_str().unwrap().ends_with("AI: It has shipped.\n"),
        "{report}"
    );

    let (_, report) = slow_tool(25).await;
    let results: Vec<&Value> = report["artifact"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool_call_result")
        .collect();
    assert_eq!(results[0]["result"], "No result returned.", "past server.timeoutSeconds (20 s)");
}

/// A tool server that fails its first `failures` tool-calls with `status`, behind `server` (a backoff plan
/// or none): the instants (s) the tool-calls message reached it, the tool's result in the report, and the
/// journal's retry notes.
async fn failing_tool(server: Value, failures: u32, status: u16) -> (Vec<f64>, Value, Vec<String>) {
    let (sim, orchestrator, report) = tool_flow(server, 0, (failures, status)).await;
    let arrivals = orchestrator.tool_calls_at.lock().unwrap().clone();
    let sent: Vec<f64> = arrivals.iter().map(|t| t.duration_since(arrivals[0]).as_secs_f64()).collect();
    let result = report["artifact"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool_call_result")
        .map_or(Value::Null, |m| m["result"].clone());
    let notes = sim
        .world()
        .journal()
        .entries()
        .iter()
        .filter_map(|e| match &e.event {
            ringback_sim::journal::Event::Note { text } if text.contains("retries") => Some(text.clone()),
            _ => None,
        })
        .collect();
    (sent, result, notes)
}

#[tokio::test(start_paused = true)]
async fn a_failed_server_message_is_retried_as_the_backoff_plan_says() {
    let url = "http://orchestrator.test/vapi";
    let fixed = json!({"url": url, "backoffPlan": {"type": "fixed", "maxRetries": 2, "baseDelaySeconds": 2}});
    let (sent, result, notes) = failing_tool(fixed.clone(), 2, 500).await;
    assert_eq!(sent, [0.0, 2.0, 4.0], "{notes:?}");
    assert_eq!(result, "has shipped");
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].starts_with("vapi retries #")
            && notes[0].ends_with("after HTTP 500, in 2.000s (attempt 2 of 3)"),
        "{notes:?}"
    );

    // Out of retries: the last failure is the result.
    let (sent, result, _) = failing_tool(fixed, 3, 500).await;
    assert_eq!(sent.len(), 3);
    assert_eq!(result, "No result returned.");

    let exponential =
        json!({"url": url, "backoffPlan": {"type": "exponential", "maxRetries": 3, "baseDelaySeconds": 1}});
    let (sent, result, _) = failing_tool(exponential, 3, 503).await;
    assert_eq!(sent, [0.0, 1.0, 3.0, 7.0]);
    assert_eq!(result, "has shipped");

    // An excluded status is final at once; so is any failure without a plan (Vapi's default).
    let excluded = json!({"url": url, "backoffPlan": {"type": "fixed", "maxRetries": 2, "baseDelaySeconds": 1,
                                                      "excludedStatusCodes": [404]}});
    let (sent, _, notes) = failing_tool(excluded, 1, 404).await;
    assert_eq!((sent.len(), notes.len()), (1, 0));
    let (sent, _, notes) = failing_tool(json!({"url": url}), 1, 500).await;
    assert_eq!((sent.len(), notes.len()), (1, 0));
    let none = json!({"url": url, "backoffPlan": {"type": "fixed", "maxRetries": 0, "baseDelaySeconds": 1}});
    assert_eq!(failing_tool(none, 1, 500).await.0.len(), 1);
}

/// A Vapi-owned number whose assistant has a `transferCall` tool without destinations, with
/// `server_messages` subscribed; the caller asks for a specialist at 5 s.
async fn server_decides(server_messages: Value, answer: Answer) -> (Orchestrator, String, String) {
    let assistant = json!({
        "firstMessage": "Hello.",
        "server": {"url": "http://orchestrator.test/vapi"},
        "serverMessages": server_messages,
        "model": {"provider": "openai", "model": "gpt-4o", "tools": [{"type": "transferCall"}]},
    });
    let script = r#"
        [[vapi.scripts.turns]]
        user = "specialist"
        tool_calls = [{ name = "transferCall" }]
    "#;
    let world = world_at(
        "https://api.vapi.ai/twilio/inbound_call",
        assistant,
        script,
        &[(SPECIALIST, r#"{ answer = "hang-up", after_s = 3, talk_s = 30 }"#)],
    );
    let (sim, orchestrator) = start(world);
    *orchestrator.answer.lock().unwrap() = Some(answer);
    let leg = sim.with(|w| w.place_inbound_call(CALLER, NUMBER)).expect("inbound call");
    say_at(&sim, leg, 5, "A specialist, please");
    support::settle(&sim).await;
    orchestrator.assert_messages_valid();
    let timeline = sim.world().journal().timeline();
    let reason = sim.world().vapi_calls().next().and_then(|c| c.ended_reason.clone()).unwrap_or_default();
    (orchestrator, reason, timeline)
}

fn destination_answer(message: &Value) -> Value {
    if message["message"]["type"] != "transfer-destination-request" {
        return json!({});
    }
    let answer = json!({"destination": {"type": "number", "number": SPECIALIST}});
    crate::vapi_spec::validate_server_message_response("transfer-destination-request", &answer)
        .expect("the test's answer is what the spec expects");
    answer
}

#[tokio::test(start_paused = true)]
async fn a_transfer_tool_without_destinations_asks_the_server_and_transfers_where_it_says() {
    let (orchestrator, reason, timeline) =
        server_decides(json!(["transfer-destination-request", "end-of-call-report"]), destination_answer)
            .await;
    assert_eq!(orchestrator.types(), ["transfer-destination-request", "end-of-call-report"], "{timeline}");
    assert_eq!(reason, "assistant-forwarded-call", "{timeline}");
    assert!(timeline.contains("(<Dial> from"), "the caller's leg dials what the server named:\n{timeline}");
}

#[tokio::test(start_paused = true)]
async fn with_phone_call_control_vapi_only_tells_the_server_and_keeps_the_call() {
    let (orchestrator, reason, timeline) =
        server_decides(json!(["phone-call-control", "end-of-call-report"]), |_| json!({})).await;
    assert_eq!(orchestrator.types(), ["phone-call-control", "end-of-call-report"], "{timeline}");
    let control = &orchestrator.of_type("phone-call-control")[0]["message"];
    assert_eq!(control["request"], "forward");
    assert!(control.get("destination").is_none(), "no destination is known: none is sent, not null");
    assert_eq!(reason, "silence-timed-out", "Vapi did not transfer:\n{timeline}");
    assert!(!timeline.contains("(<Dial> from"), "{timeline}");
}
