//! The reference orchestrator in process against the fake Twilio and fake Vapi, in virtual time: every
//! transfer outcome, a caller who leaves, duplicated and reordered callbacks, forged webhooks, a restart
//! while the caller is on hold, and two callers at once.

use std::time::Duration;

use ringback::reference::{ORCHESTRATOR_URL, Reference};
use ringback_orchestrator::config::Config;
use ringback_sim::ids::{AccountSid, CallSid};
use ringback_sim::runtime::SharedSim;
use ringback_sim::time::{SimDuration, SimInstant};
use ringback_sim::twilio::engine::Leg;
use ringback_sim::vapi::model::{CallStatus as VapiStatus, VapiCall};
use ringback_sim::world::{World, WorldConfig};
use serde_json::{Value, json};

pub(crate) const ACCOUNT: AccountSid = AccountSid::from_u128(0x1);
pub(crate) const TOKEN: &str = "test-auth-token";
pub(crate) const NUMBER: &str = "+15550000100";
pub(crate) const CALLER: &str = "+15557770001";
pub(crate) const CALLER_2: &str = "+15557770002";
pub(crate) const SALES: &str = "+15550000201";
pub(crate) const SALES_BACKUP: &str = "+15550000202";
pub(crate) const SUPPORT: &str = "+15550000301";
pub(crate) const ASSISTANT: &str = "00000000-0000-4000-8000-000000000001";
pub(crate) const PHONE: &str = "00000000-0000-4000-8000-000000000002";
pub(crate) const API_KEY: &str = "test-vapi-key";
const SECRET: &str = "test-webhook-secret";

/// A world whose number sends calls to the orchestrator, whose assistant transfers to sales when the
/// caller asks for it, and whose specialists behave as `phones` says.
pub(crate) fn world(phones: &[(&str, &str)]) -> World {
    World::new(world_config(ORCHESTRATOR_URL, phones)).expect("valid world")
}

/// The world's configuration, with the orchestrator at `orchestrator_url`.
pub(crate) fn world_config(orchestrator_url: &str, phones: &[(&str, &str)]) -> WorldConfig {
    let _ =
        tracing_subscriber::fmt().with_env_filter("ringback_orchestrator=info").with_test_writer().try_init();
    let mut config: WorldConfig = toml::from_str(&format!(
        r#"
        seed = 7
        [[accounts]]
        sid = "{ACCOUNT}"
        auth_token = "{TOKEN}"
        numbers = [{{ phone_number = "{NUMBER}", voice_url = "{orchestrator_url}/twilio/voice" }}]
        [vapi]
        api_keys = ["{API_KEY}"]
        [[vapi.scripts]]
        assistant = "{ASSISTANT}"
        [[vapi.scripts.turns]]
        user = "sales"
        say = "Let me connect you with sales."
        tool_calls = [{{ name = "transfer_to_specialist", arguments = {{ department = "sales" }} }}]
        [[vapi.scripts.turns]]
        user = "nowhere"
        tool_calls = [{{ name = "transfer_to_specialist", arguments = {{ number = "+15559999999" }} }}]
        [[vapi.scripts.turns]]
        user = "twice"
        tool_calls = [
            {{ name = "transfer_to_specialist", arguments = {{ department = "sales" }} }},
            {{ name = "transfer_to_specialist", arguments = {{ department = "support" }} }},
        ]
        [[vapi.scripts.turns]]
        say = "I see."
        "#
    ))
    .expect("world toml");
    config.vapi.assistants.push(json!({
        "id": ASSISTANT,
        "name": "front-desk",
        "firstMessage": "Hello, how can I help?",
        "model": {
            "provider": "openai", "model": "gpt-4o",
            "messages": [{"role": "system", "content": "You answer calls and transfer to specialists."}],
            "tools": [{"type": "function", "function": {"name": "transfer_to_specialist",
                "parameters": {"type": "object", "properties": {"department": {"type": "string"}}}}}],
        },
        "server": {"url": format!("{orchestrator_url}/vapi/webhook"), "secret": SECRET},
    }));
    config.vapi.phone_numbers.push(json!({
        "id": PHONE, "provider": "twilio", "number": NUMBER, "twilioAccountSid": ACCOUNT.to_string(),
        "twilioAuthToken": TOKEN,
    }));
    for (number, table) in phones {
        let b = toml::from_str::<toml::Table>(&format!("b = {table}")).expect("behaviour toml");
        config.phones.insert((*number).into(), b["b"].clone().try_into().expect("behaviour"));
    }
    config
}

pub(crate) fn config(specialists: &[&str]) -> Config {
    let mut config = Config::for_tests(ORCHESTRATOR_URL, specialists);
    config.twilio_account_sid = ACCOUNT.to_string();
    config
}

pub(crate) fn start(phones: &[(&str, &str)]) -> Reference {
    Reference::start(world(phones), config(&["sales=+15550000201", "support=+15550000301"]))
}

/// Places a call from `from` that asks for `request` at simulated second `at`.
pub(crate) fn call_in(r: &Reference, from: &str, at: u64, request: &'static str) -> CallSid {
    let leg = r.sim.with(|w| w.place_inbound_call(from, NUMBER)).expect("inbound call");
    at_second(&r.sim, at, move |w| w.caller_says(leg, request).expect("caller speaks"));
    leg
}

/// Runs `f` on the world at simulated second `at`.
pub(crate) fn at_second(sim: &SharedSim, at: u64, f: impl FnOnce(&mut World) + Send + 'static) {
    let sim = sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(at)).await;
        sim.with(f);
    });
}

/// Runs the world and the orchestrator until neither has anything left to do, or `secs` pass.
pub(crate) async fn settle(r: &Reference, secs: u64) {
    r.settle(SimInstant::ZERO, SimInstant::ZERO + SimDuration::from_secs(secs)).await;
}

pub(crate) fn timeline(r: &Reference) -> String {
    r.sim.world().journal().timeline()
}

/// The body of the first request whose URL ends with `suffix`.
fn request_to(r: &Reference, suffix: &str) -> String {
    let world = r.sim.world();
    world
        .journal()
        .entries()
        .iter()
        .find_map(|e| match &e.event {
            ringback_sim::journal::Event::Http(x) if x.url.ends_with(suffix) => Some(x.request_body.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The answers the orchestrator gave to Vapi messages and Twilio webhooks, in order.
fn answers(r: &Reference) -> String {
    let world = r.sim.world();
    world
        .journal()
        .entries()
        .iter()
        .filter_map(|e| match &e.event {
            ringback_sim::journal::Event::Http(x) if x.url.starts_with(ORCHESTRATOR_URL) => {
                x.response.as_ref().map(|r| r.body.clone())
            }
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn specialist_legs(r: &Reference, number: &str) -> Vec<Leg> {
    r.sim.world().legs().filter(|l| l.to == number).cloned().collect()
}

fn vapi_calls(r: &Reference) -> Vec<VapiCall> {
    r.sim.world().vapi_calls().cloned().collect()
}

fn conference_of(r: &Reference, leg: CallSid) -> Option<ringback_sim::ids::ConferenceSid> {
    r.sim.world().conference_of(leg)
}

/// The caller is back with a second, live assistant session that knows what happened.
fn assert_returned(r: &Reference, caller: CallSid, outcome: &str) {
    let calls: Vec<VapiCall> = vapi_calls(r).into_iter().filter(|c| c.twilio_call == Some(caller)).collect();
    assert_eq!(calls.len(), 2, "one session before the transfer, one after:\n{}", timeline(r));
    let resumed = &calls[1];
    // The resumed session took the caller's stream; the caller stays with it until it ends (here, when
    // the scripted caller falls silent).
    assert!(resumed.started_at.is_some(), "the resumed session connected:\n{}", timeline(r));
    let caller_end = r.sim.world().leg(caller).and_then(|l| l.ended_at);
    assert!(
        resumed.status != VapiStatus::Ended || caller_end >= resumed.ended_at,
        "the caller stayed until the assistant ended the call:\n{}",
        timeline(r)
    );
    let overrides = resumed.overrides.clone().unwrap_or(Value::Null);
    assert_eq!(overrides["variableValues"]["transfer_outcome"], outcome, "{overrides:#}");
    assert_eq!(overrides["variableValues"]["transfer_department"], "sales", "{overrides:#}");
    let conversation = overrides["variableValues"]["conversation"].as_str().unwrap_or_default();
    assert!(conversation.contains("Caller: I need sales"), "the earlier words are carried: {overrides:#}");
    let model_messages = overrides["model"]["messages"].as_array().cloned().unwrap_or_default();
    assert!(
        model_messages.iter().any(|m| m["content"] == "I need sales"),
        "the model gets the conversation too: {overrides:#}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_human_specialist_is_bridged_with_the_caller() {
    let r = start(&[(SALES, r#"{ answer = "human", after_s = 4 }"#)]);
    let caller = call_in(&r, CALLER, 5, "I need sales");
    settle(&r, 300).await;
    let legs = specialist_legs(&r, SALES);
    assert_eq!(legs.len(), 1, "{}", timeline(&r));
    let world = r.sim.world();
    let conference = world.conference_of(caller);
    assert!(conference.is_some(), "caller in a conference:\n{}", timeline(&r));
    assert_eq!(world.conference_of(legs[0].sid), conference, "specialist in the caller's conference");
    assert_eq!(legs[0].answered_by.map(|a| a.as_str()), Some("human"));
    drop(world);
    assert_eq!(vapi_calls(&r).len(), 1, "no second session for a bridged caller");
    let dial = request_to(&r, "/Calls.json");
    assert!(
        dial.contains("MachineDetection=Enable"),
        "specialists are dialed with machine detection: {dial}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_busy_specialist_returns_the_caller_to_the_assistant() {
    let r = start(&[(SALES, r#"{ answer = "busy" }"#)]);
    let caller = call_in(&r, CALLER, 5, "I need sales");
    settle(&r, 300).await;
    assert_returned(&r, caller, "busy");
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_specialist_returns_the_caller_after_the_ring_timeout() {
    let r = start(&[(SALES, r#"{ answer = "no-answer" }"#)]);
    let caller = call_in(&r, CALLER, 5, "I need sales");
    settle(&r, 300).await;
    assert_returned(&r, caller, "no-answer");
    let dial = request_to(&r, "/Calls.json");
    assert!(dial.contains("Timeout=30"), "the configured ring timeout is asked of Twilio: {dial}");
}

#[tokio::test(start_paused = true)]
async fn voicemail_is_never_bridged_and_the_caller_returns() {
    let r = start(&[(SALES, r#"{ answer = "machine", after_s = 3, greeting_s = 8 }"#)]);
    let caller = call_in(&r, CALLER, 5, "I need sales");
    settle(&r, 300).await;
    assert_returned(&r, caller, "voicemail");
    let legs = specialist_legs(&r, SALES);
    assert!(legs[0].state.is_ended(), "the voicemail leg is hung up:\n{}", timeline(&r));
    assert!(
        !timeline(&r).contains(&format!("{} joins", legs[0].sid)),
        "the machine never joined the conference:\n{}",
        timeline(&r)
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_dial_returns_the_caller() {
    let r = start(&[(SALES, r#"{ answer = "fail" }"#)]);
    let caller = call_in(&r, CALLER, 5, "I need sales");
    settle(&r, 300).await;
    assert_returned(&r, caller, "failed");
}

#[tokio::test(start_paused = true)]
async fn a_specialist_who_hangs_up_at_once_counts_as_a_failure() {
    let r = start(&[(SALES, r#"{ answer = "hang-up", after_s = 3, talk_s = 1 }"#)]);
    let caller = call_in(&r, CALLER, 5, "I need sales");
    settle(&r, 300).await;
    assert_returned(&r, caller, "hung-up");
}

#[tokio::test(start_paused = true)]
async fn a_busy_first_number_falls_back_to_the_second_before_returning() {
    let r = Reference::start(
        world(&[(SALES, r#"{ answer = "busy" }"#), (SALES_BACKUP, r#"{ answer = "human", after_s = 2 }"#)]),
        config(&["sales=+15550000201|+15550000202"]),
    );
    let caller = call_in(&r, CALLER, 5, "I need sales");
    settle(&r, 300).await;
    let backup = specialist_legs(&r, SALES_BACKUP);
    assert_eq!(backup.len(), 1, "{}", timeline(&r));
    assert_eq!(conference_of(&r, backup[0].sid), conference_of(&r, caller), "{}", timeline(&r));
    assert_eq!(vapi_calls(&r).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_caller_who_hangs_up_on_hold_leaves_no_specialist_ringing() {
    let r = start(&[(SALES, r#"{ answer = "no-answer" }"#)]);
    let caller = call_in(&r, CALLER, 5, "I need sales");
    at_second(&r.sim, 15, move |w| w.remote_hangup(caller));
    settle(&r, 300).await;
    let legs = specialist_legs(&r, SALES);
    assert_eq!(legs.len(), 1, "{}", timeline(&r));
    let ended = legs[0].ended_at.expect("the specialist leg ended");
    let gone = r.sim.world().leg(caller).and_then(|l| l.ended_at).expect("caller gone");
    assert!(
        ended <= gone + SimDuration::from_secs(5),
        "the ringing leg is canceled within 5 s:\n{}",
        timeline(&r)
    );
    assert_eq!(vapi_calls(&r).len(), 1, "nobody to bring back");
}

#[tokio::test(start_paused = true)]
async fn a_number_outside_the_allowlist_is_refused_and_never_dialed() {
    let r = start(&[]);
    let caller = call_in(&r, CALLER, 5, "put me through to nowhere");
    settle(&r, 120).await;
    assert!(r.sim.world().legs().all(|l| l.sid == caller), "nothing dialed:\n{}", timeline(&r));
    assert!(answers(&r).contains("is not a department or number"), "{}", answers(&r));
}

#[tokio::test(start_paused = true)]
async fn two_transfers_in_one_burst_start_one_transfer() {
    let r = start(&[(SALES, r#"{ answer = "human", after_s = 2 }"#), (SUPPORT, r#"{ answer = "human" }"#)]);
    call_in(&r, CALLER, 5, "put me through twice");
    settle(&r, 300).await;
    let dialed = specialist_legs(&r, SALES).len() + specialist_legs(&r, SUPPORT).len();
    assert_eq!(dialed, 1, "{}", timeline(&r));
    assert!(answers(&r).contains("already under way"), "{}", answers(&r));
}

#[tokio::test(start_paused = true)]
async fn two_concurrent_callers_are_transferred_independently() {
    let r = start(&[(SALES, r#"{ answer = "busy" }"#), (SUPPORT, r#"{ answer = "human" }"#)]);
    let first = call_in(&r, CALLER, 5, "I need sales");
    let second = call_in(&r, CALLER_2, 6, "I need sales");
    settle(&r, 300).await;
    assert_returned(&r, first, "busy");
    assert_returned(&r, second, "busy");
    assert_eq!(specialist_legs(&r, SALES).len(), 2, "one dial per caller:\n{}", timeline(&r));
}

#[tokio::test(start_paused = true)]
async fn a_forged_twilio_webhook_is_refused_and_changes_nothing() {
    use tower::ServiceExt as _;
    let r = start(&[]);
    let before = timeline(&r);
    let request = http::Request::post("/twilio/voice")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", "bm90IGEgc2lnbmF0dXJl")
        .body(axum::body::Body::from(format!(
            "CallSid=CA{:032x}&From=%2B15550001&To=%2B15550002&AccountSid={ACCOUNT}",
            9
        )))
        .expect("request");
    let response = r.orchestrator().router().oneshot(request).await.expect("answered");
    assert_eq!(response.status(), 403);
    r.orchestrator().idle().await;
    assert_eq!(timeline(&r), before, "no API call was made");
    assert!(vapi_calls(&r).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_vapi_message_without_the_secret_is_refused_and_starts_no_transfer() {
    use tower::ServiceExt as _;
    let r = start(&[(SALES, r#"{ answer = "human" }"#)]);
    call_in(&r, CALLER, 500, "never");
    settle(&r, 10).await;
    let session = vapi_calls(&r)[0].id.clone();
    let forged = json!({"message": {"type": "tool-calls", "call": {"id": session},
        "toolCallList": [{"id": "call_forged", "type": "function",
            "function": {"name": "transfer_to_specialist", "arguments": {"department": "sales"}}}]}});
    for secret in [None, Some("wrong")] {
        let mut request = http::Request::post("/vapi/webhook").header("content-type", "application/json");
        if let Some(secret) = secret {
            request = request.header("x-vapi-secret", secret);
        }
        let request = request.body(axum::body::Body::from(forged.to_string())).expect("request");
        let response = r.orchestrator().router().oneshot(request).await.expect("answered");
        assert_eq!(response.status(), 403);
    }
    r.orchestrator().idle().await;
    assert!(specialist_legs(&r, SALES).is_empty(), "{}", timeline(&r));
    assert_eq!(vapi_calls(&r).len(), 1);
    // The same message with the secret, while the session is still live, does transfer: what kept the
    // forgeries out was the secret.
    let genuine = http::Request::post("/vapi/webhook")
        .header("content-type", "application/json")
        .header("x-vapi-secret", SECRET)
        .body(axum::body::Body::from(forged.to_string()))
        .expect("request");
    assert_eq!(r.orchestrator().router().oneshot(genuine).await.expect("answered").status(), 200);
    settle(&r, 90).await;
    assert_eq!(specialist_legs(&r, SALES).len(), 1, "{}", timeline(&r));
}

#[tokio::test(start_paused = true)]
async fn a_restart_while_the_caller_is_on_hold_still_bridges_them() {
    let r = start(&[(SALES, r#"{ answer = "human", after_s = 20 }"#)]);
    let caller = call_in(&r, CALLER, 5, "I need sales");
    settle(&r, 12).await;
    assert_eq!(specialist_legs(&r, SALES).len(), 1, "dialing when the orchestrator stops:\n{}", timeline(&r));
    r.stop();
    settle(&r, 16).await;
    r.restart().await;
    settle(&r, 300).await;
    let legs = specialist_legs(&r, SALES);
    assert_eq!(legs.len(), 1, "no second dial after the restart:\n{}", timeline(&r));
    assert_eq!(conference_of(&r, legs[0].sid), conference_of(&r, caller), "{}", timeline(&r));
}

#[tokio::test(start_paused = true)]
async fn a_restart_that_misses_the_busy_callback_still_returns_the_caller() {
    let r = start(&[(SALES, r#"{ answer = "no-answer" }"#)]);
    let caller = call_in(&r, CALLER, 5, "I need sales");
    settle(&r, 12).await;
    r.stop();
    // The no-answer callback comes at about 40 s and is refused: nobody is listening.
    settle(&r, 60).await;
    r.restart().await;
    settle(&r, 300).await;
    assert_returned(&r, caller, "no-answer");
}

/// A world with `faults` (TOML inline tables) on the webhooks to the orchestrator.
pub(crate) fn world_with_faults(phones: &[(&str, &str)], faults: &[&str]) -> World {
    let mut config = world_config(ORCHESTRATOR_URL, phones);
    for fault in faults {
        let t = toml::from_str::<toml::Table>(&format!("f = {fault}")).expect("fault toml");
        config.faults.push(t["f"].clone().try_into().expect("fault"));
    }
    World::new(config).expect("valid world")
}

#[tokio::test(start_paused = true)]
async fn every_webhook_delivered_twice_changes_nothing() {
    let world = world_with_faults(&[(SALES, r#"{ answer = "busy" }"#)], &[r#"{ action = "duplicate" }"#]);
    let r = Reference::start(world, config(&["sales=+15550000201"]));
    let caller = call_in(&r, CALLER, 5, "I need sales");
    settle(&r, 300).await;
    assert!(timeline(&r).contains("[duplicate of #"), "the duplicates are journaled:\n{}", timeline(&r));
    assert_eq!(specialist_legs(&r, SALES).len(), 1, "one dial:\n{}", timeline(&r));
    assert_returned(&r, caller, "busy");
}

#[tokio::test(start_paused = true)]
async fn status_callbacks_late_and_out_of_order_never_move_a_call_backwards() {
    // The specialist's `initiated` and `ringing` arrive after its final `busy`.
    let late = |status: &str| {
        format!(
            r#"{{ path = "/twilio/specialist-status", call_status = "{status}", action = "delay", delay_s = 8 }}"#
        )
    };
    let (initiated, ringing) = (late("initiated"), late("ringing"));
    let world = world_with_faults(&[(SALES, r#"{ answer = "busy", after_s = 2 }"#)], &[&initiated, &ringing]);
    let r = Reference::start(world, config(&["sales=+15550000201"]));
    let caller = call_in(&r, CALLER, 5, "I need sales");
    settle(&r, 300).await;
    assert!(timeline(&r).contains("[delayed 8.000s]"), "{}", timeline(&r));
    assert_returned(&r, caller, "busy");
    assert_eq!(specialist_legs(&r, SALES).len(), 1, "{}", timeline(&r));
}

#[tokio::test(start_paused = true)]
async fn forged_copies_of_every_webhook_are_refused() {
    let world = world_with_faults(&[(SALES, r#"{ answer = "busy" }"#)], &[r#"{ action = "forge" }"#]);
    let r = Reference::start(world, config(&["sales=+15550000201"]));
    let caller = call_in(&r, CALLER, 5, "I need sales");
    settle(&r, 300).await;
    let world = r.sim.world();
    let forged: Vec<_> = world
        .journal()
        .entries()
        .iter()
        .filter_map(|e| match &e.event {
            ringback_sim::journal::Event::Http(x)
                if x.fault.as_deref().is_some_and(|f| f.starts_with("forged")) =>
            {
                Some(x.clone())
            }
            _ => None,
        })
        .collect();
    drop(world);
    assert!(forged.len() > 10, "{}", timeline(&r));
    for x in &forged {
        assert_eq!(x.response.as_ref().map(|r| r.status), Some(403), "{} {}", x.url, x.request_body);
    }
    assert_returned(&r, caller, "busy");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_final_status_callback_is_recovered_by_asking_twilio() {
    let world = world_with_faults(
        &[(SALES, r#"{ answer = "no-answer" }"#)],
        &[r#"{ path = "/twilio/specialist-status", call_status = "no-answer", action = "drop" }"#],
    );
    let r = Reference::start(world, config(&["sales=+15550000201"]));
    let caller = call_in(&r, CALLER, 5, "I need sales");
    settle(&r, 300).await;
    assert!(timeline(&r).contains("[dropped]"), "{}", timeline(&r));
    assert_returned(&r, caller, "no-answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_real_sockets_a_busy_specialist_returns_the_caller() {
    use ringback_orchestrator::http::ReqwestClient;
    use ringback_orchestrator::server::{Orchestrator, serve};
    use ringback_orchestrator::store::MemoryStore;
    use ringback_sim::runtime::{Clock, Sim};
    use std::sync::Arc;

    // Real time, scaled: a simulated second takes 50 ms.
    const SCALE: f64 = 0.05;
    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let (twilio, vapi, orch) = (bind().await.unwrap(), bind().await.unwrap(), bind().await.unwrap());
    let base = |l: &tokio::net::TcpListener| format!("http://{}", l.local_addr().unwrap());
    let (twilio_url, vapi_url, orch_url) = (base(&twilio), base(&vapi), base(&orch));

    let mut world = world_config(&orch_url, &[(SALES, r#"{ answer = "busy" }"#)]);
    world.vapi.public_url = vapi_url.clone();
    let transport = ringback_sim::transport::HttpTransport::new(SCALE).expect("client");
    let sim = Sim::new(World::new(world).expect("world"), Clock::start(SCALE), Arc::new(transport));
    let (twilio_router, vapi_router) =
        (ringback_sim::twilio::rest::router(sim.clone()), ringback_sim::vapi::rest::router(sim.clone()));
    tokio::spawn(async move { axum::serve(twilio, twilio_router).await });
    tokio::spawn(async move { axum::serve(vapi, vapi_router).await });
    tokio::spawn(ringback_sim::runtime::drive(sim.clone(), std::future::pending()));

    let mut config = Config::for_tests(&orch_url, &["sales=+15550000201"]);
    config.twilio_account_sid = ACCOUNT.to_string();
    config.twilio_api_url = twilio_url;
    config.vapi_api_url = vapi_url;
    let http = ReqwestClient::new(Duration::from_secs(5)).expect("client");
    let orchestrator = Orchestrator::new(config, Arc::new(http), Arc::new(MemoryStore::new()));
    tokio::spawn(serve(orch, orchestrator, std::future::pending(), Duration::from_secs(1)));

    let caller = sim.with(|w| w.place_inbound_call(CALLER, NUMBER)).expect("inbound call");
    tokio::time::sleep(Duration::from_secs_f64(5.0 * SCALE)).await;
    sim.with(|w| w.caller_says(caller, "I need sales")).expect("caller speaks");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let connected = sim.world().vapi_calls().filter(|c| c.started_at.is_some()).count();
        if connected == 2 {
            break;
        }
        let timeline = sim.world().journal().timeline();
        assert!(tokio::time::Instant::now() < deadline, "the caller never came back:\n{timeline}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls: Vec<VapiCall> = sim.world().vapi_calls().cloned().collect();
    let overrides = calls[1].overrides.clone().unwrap_or(Value::Null);
    assert_eq!(overrides["variableValues"]["transfer_outcome"], "busy", "{overrides:#}");
    assert_eq!(calls[1].twilio_call, Some(caller));
}
