//! Whole call flows in virtual time against an in-memory target.

use axum::Router;
use axum::extract::State;
use axum::routing::post;

use crate::support::{self, CALLER, NUMBER, Received, param, record};

fn target(received: Received, voice: &'static str, after: &'static str) -> Router {
    Router::new()
        .route("/voice", record("/voice", voice))
        .route("/after", record("/after", after))
        .route("/status", record("/status", ""))
        .route("/number-status", record("/number-status", ""))
        .with_state(received)
}

#[tokio::test(start_paused = true)]
async fn a_busy_specialist_reaches_the_dial_action_with_busy() {
    let received = Received::default();
    let voice = r#"<Response><Dial action="/after" timeout="20"><Number statusCallback="http://orchestrator.test/status" statusCallbackEvent="initiated ringing answered completed">+15550000200</Number></Dial></Response>"#;
    let after = "<Response><Say>Sorry, nobody is free</Say><Hangup/></Response>";
    let sim = support::sim(
        support::world(&[("+15550000200", r#"{ answer = "busy" }"#)]),
        target(received.clone(), voice, after),
    );
    sim.with(|w| w.place_inbound_call(CALLER, NUMBER)).expect("inbound call");
    support::settle(&sim).await;
    let timeline = sim.world().journal().timeline();
    let statuses: Vec<String> = received
        .at("/status")
        .iter()
        .map(|p| param(p, "CallStatus").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(statuses, ["initiated", "busy"], "{timeline}");
    let after = received.at("/after");
    assert_eq!(after.len(), 1, "{timeline}");
    assert_eq!(param(&after[0], "DialCallStatus"), Some("busy"));
    let number_status = received.at("/number-status");
    assert_eq!(param(&number_status[0], "CallStatus"), Some("completed"), "{timeline}");
}

fn failing_target(received: Received, voice_delay_s: u64, voice_body: &'static str) -> Router {
    Router::new()
        .route(
            "/voice",
            post(move |State(r): State<Received>, body: String| async move {
                r.push("/voice", &body);
                tokio::time::sleep(std::time::Duration::from_secs(voice_delay_s)).await;
                ([("content-type", "text/xml")], voice_body)
            }),
        )
        .route(
            "/fallback",
            post(|State(r): State<Received>, body: String| async move {
                r.push("/fallback", &body);
                ([("content-type", "text/xml")], "<Response><Say>Fallback speaking</Say></Response>")
            }),
        )
        .route(
            "/number-status",
            post(|State(r): State<Received>, body: String| async move {
                r.push("/number-status", &body);
            }),
        )
        .with_state(received)
}

fn world_with_fallback(fallback: bool) -> ringback_sim::world::World {
    let mut config = ringback_sim::world::WorldConfig {
        seed: 7,
        accounts: vec![ringback_sim::world::AccountConfig {
            sid: support::ACCOUNT,
            auth_token: support::TOKEN.into(),
            numbers: vec![ringback_sim::world::NumberConfig {
                phone_number: NUMBER.into(),
                voice_url: Some("http://orchestrator.test/voice".into()),
                voice_method: None,
                voice_fallback_url: fallback.then(|| "http://orchestrator.test/fallback".into()),
                status_callback: Some("http://orchestrator.test/number-status".into()),
            }],
        }],
        ..Default::default()
    };
    config.twilio.webhook_timeout_s = 15.0;
    ringback_sim::world::World::new(config).expect("world")
}

#[tokio::test(start_paused = true)]
async fn unparsable_twiml_logs_12100_and_the_fallback_url_gets_error_code_and_url() {
    let received = Received::default();
    let sim = support::sim(
        world_with_fallback(true),
        failing_target(received.clone(), 0, "<Response><Say>unclosed"),
    );
    let caller = sim.with(|w| w.place_inbound_call(CALLER, NUMBER)).expect("inbound call");
    support::settle(&sim).await;
    let timeline = sim.world().journal().timeline();
    assert!(timeline.contains(&format!("notification 12100 on call {caller}")), "{timeline}");
    let fallback = received.at("/fallback");
    assert_eq!(fallback.len(), 1, "{timeline}");
    assert_eq!(param(&fallback[0], "ErrorCode"), Some("12100"));
    assert_eq!(param(&fallback[0], "ErrorUrl"), Some("http://orchestrator.test/voice"));
    assert!(timeline.contains("hears say \"Fallback speaking\""), "{timeline}");
}

#[tokio::test(start_paused = true)]
async fn a_voice_url_slower_than_15_seconds_gets_11205_and_the_caller_hears_the_application_error() {
    let received = Received::default();
    let sim = support::sim(
        world_with_fallback(false),
        failing_target(received.clone(), 20, "<Response><Hangup/></Response>"),
    );
    let caller = sim.with(|w| w.place_inbound_call(CALLER, NUMBER)).expect("inbound call");
    support::settle(&sim).await;
    let timeline = sim.world().journal().timeline();
    assert!(timeline.contains(&format!("notification 11205 on call {caller}")), "{timeline}");
    assert!(timeline.contains("error: timeout after 15.000s"), "{timeline}");
    assert!(
        timeline.contains("hears say \"We are sorry, an application error has occurred. Goodbye.\""),
        "{timeline}"
    );
    let leg = sim.world().leg(caller).cloned().expect("caller");
    assert_eq!(leg.state.resource_status().as_str(), "completed");
    insta::assert_snapshot!("voice_url_timeout", support::normalized_timeline(&sim));
}

/// An in-process stream server that takes `ws://assistant.test/…` streams, records their start, and
/// hangs up (closes) after it receives a stop or when told to.
#[derive(Debug, Default)]
struct LocalAssistant {
    started: std::sync::Mutex<Vec<String>>,
}

impl ringback_sim::runtime::StreamAttach for LocalAssistant {
    fn attach(
        &self,
        start: ringback_sim::twilio::stream_client::StreamStart,
        mut commands: tokio::sync::mpsc::Receiver<ringback_sim::twilio::stream_client::StreamCommand>,
        reports: tokio::sync::mpsc::Sender<ringback_sim::twilio::stream_client::StreamReport>,
    ) -> Result<
        (),
        (
            ringback_sim::twilio::stream_client::StreamStart,
            tokio::sync::mpsc::Receiver<ringback_sim::twilio::stream_client::StreamCommand>,
            tokio::sync::mpsc::Sender<ringback_sim::twilio::stream_client::StreamReport>,
        ),
    > {
        use ringback_sim::twilio::stream_client::StreamReport;
        if !start.url.starts_with("ws://assistant.test/") {
            return Err((start, commands, reports));
        }
        self.started.lock().expect("lock").push(format!("{} {:?}", start.url, start.custom_parameters));
        tokio::spawn(async move {
            let _ = reports.send(StreamReport::Connected).await;
            // The assistant ends the conversation after 10 simulated seconds by closing the socket.
            tokio::select! {
                _ = commands.recv() => {}
                () = tokio::time::sleep(std::time::Duration::from_secs(10)) => {
                    let _ = reports.send(StreamReport::Closed { by_server: true, reason: None }).await;
                }
            }
        });
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_connect_stream_to_an_in_process_server_attaches_without_a_socket_and_continues_when_it_closes() {
    let received = Received::default();
    let voice = r#"<Response><Connect action="/after"><Stream url="ws://assistant.test/stream"><Parameter name="lang" value="en"/></Stream></Connect></Response>"#;
    let after = "<Response><Say>The assistant hung up</Say></Response>";
    let sim = support::sim(support::world(&[]), target(received.clone(), voice, after));
    let assistant = std::sync::Arc::new(LocalAssistant::default());
    sim.set_stream_attach(assistant.clone());
    sim.with(|w| w.place_inbound_call(CALLER, NUMBER)).expect("inbound call");
    support::settle(&sim).await;
    let timeline = sim.world().journal().timeline();
    assert_eq!(*assistant.started.lock().expect("lock"), [r#"ws://assistant.test/stream [("lang", "en")]"#]);
    assert!(timeline.contains("connecting → connected"), "{timeline}");
    assert_eq!(
        received.at("/after").len(),
        1,
        "<Connect action> is requested when the server closes: {timeline}"
    );
    assert!(timeline.contains("10.000s"), "the stream lasted 10 simulated seconds: {timeline}");
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_a_byte_identical_journal() {
    async fn run() -> String {
        let voice = r#"<Response><Dial action="/after" timeout="20"><Number statusCallback="http://orchestrator.test/status" statusCallbackEvent="initiated ringing answered completed">+15550000200</Number></Dial></Response>"#;
        let sim = support::sim(
            support::world(&[("+15550000200", r#"{ answer = "hang-up", talk_s = 3 }"#)]),
            target(Received::default(), voice, "<Response><Say>Sorry</Say></Response>"),
        );
        sim.with(|w| w.place_inbound_call(CALLER, NUMBER)).expect("inbound call");
        support::settle(&sim).await;
        serde_json::to_string(sim.world().journal()).expect("journal JSON")
    }
    let (first, second) = (run().await, run().await);
    assert!(first.len() > 1_000);
    assert_eq!(first, second);
}
