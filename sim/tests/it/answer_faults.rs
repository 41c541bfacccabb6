//! Faults on the target's answers (slow, 500, unparsable TwiML) and Twilio's retries under connection
//! overrides: what the fake does is what Twilio does with such an answer, and the journal keeps both
//! what the sender got and what the target said.

use axum::Router;
use ringback_sim::faults::{FaultAction, WebhookFault};
use ringback_sim::journal::{Event, HttpExchange};
use ringback_sim::runtime::SharedSim;
use ringback_sim::world::{AccountConfig, NumberConfig, World, WorldConfig};

use crate::support::{self, CALLER, NUMBER, Received, param, record};

const VOICE: &str = "<Response><Say>Voice speaking</Say></Response>";

fn target(received: Received) -> Router {
    Router::new()
        .route("/voice", record("/voice", VOICE))
        .route("/fallback", record("/fallback", "<Response><Say>Fallback speaking</Say></Response>"))
        .route("/number-status", record("/number-status", ""))
        .with_state(received)
}

/// A world whose number's voice URL is `voice_url` (with its fragment), with a fallback if asked, and
/// `faults` on the webhooks.
fn world(voice_url: &str, fallback: bool, faults: Vec<WebhookFault>) -> World {
    let config = WorldConfig {
        seed: 7,
        accounts: vec![AccountConfig {
            sid: support::ACCOUNT,
            auth_token: support::TOKEN.into(),
            numbers: vec![NumberConfig {
                phone_number: NUMBER.into(),
                voice_url: Some(voice_url.into()),
                voice_method: None,
                voice_fallback_url: fallback.then(|| "http://orchestrator.test/fallback".into()),
                status_callback: Some("http://orchestrator.test/number-status".into()),
            }],
        }],
        faults,
        ..WorldConfig::default()
    };
    World::new(config).expect("world")
}

fn on(path: &str, nth: Option<u32>, action: FaultAction) -> WebhookFault {
    WebhookFault { from: None, path: Some(path.into()), call_status: None, message: None, nth, action }
}

fn exchanges(sim: &SharedSim, path: &str) -> Vec<HttpExchange> {
    let world = sim.world();
    world
        .journal()
        .entries()
        .iter()
        .filter_map(|e| match &e.event {
            Event::Http(x) if x.url.ends_with(path) => Some(x.clone()),
            _ => None,
        })
        .collect()
}

async fn run(world: World) -> (SharedSim, Received, String) {
    let received = Received::default();
    let sim = support::sim(world, target(received.clone()));
    sim.with(|w| w.place_inbound_call(CALLER, NUMBER)).expect("inbound call");
    support::settle(&sim).await;
    let timeline = sim.world().journal().timeline();
    (sim, received, timeline)
}

#[tokio::test(start_paused = true)]
async fn a_500_is_retried_when_the_voice_url_asks_for_it_and_the_retry_is_acted_on() {
    let faults = vec![on("/voice", Some(1), FaultAction::ServerError)];
    let (sim, received, timeline) =
        run(world("http://orchestrator.test/voice#rc=2&rp=5xx", false, faults)).await;
    assert_eq!(received.at("/voice").len(), 2, "{timeline}");
    let voice = exchanges(&sim, "/voice");
    assert_eq!(voice[0].response.as_ref().map(|r| r.status), Some(500), "{timeline}");
    assert_eq!(voice[0].fault.as_deref(), Some("answer: HTTP 500"));
    let target = voice[0].target_answer.as_ref().expect("the target's own answer is kept");
    assert_eq!((target.response.status, target.response.body.as_str()), (200, VOICE));
    assert_eq!(voice[1].fault, None);
    assert!(timeline.contains("twilio retries #2 after HTTP 500 (attempt 2 of 3)"), "{timeline}");
    assert!(timeline.contains("hears say \"Voice speaking\""), "{timeline}");
    assert!(!timeline.contains("notification 11200"), "{timeline}");
    // The retry is the same request: same signature, same idempotency token.
    assert_eq!(voice[0].request_headers, voice[1].request_headers);
}

#[tokio::test(start_paused = true)]
async fn a_500_is_not_retried_by_default_it_logs_11200_and_goes_to_the_fallback_url() {
    let faults = vec![on("/voice", Some(1), FaultAction::ServerError)];
    let (_, received, timeline) = run(world("http://orchestrator.test/voice", true, faults)).await;
    assert_eq!(received.at("/voice").len(), 1, "{timeline}");
    assert!(timeline.contains("notification 11200"), "{timeline}");
    let fallback = received.at("/fallback");
    assert_eq!(fallback.len(), 1, "{timeline}");
    assert_eq!(param(&fallback[0], "ErrorCode"), Some("11200"));
    assert!(timeline.contains("hears say \"Fallback speaking\""), "{timeline}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_connection_is_retried_once_by_default() {
    let faults = vec![on("/voice", Some(1), FaultAction::Drop)];
    let (_, received, timeline) = run(world("http://orchestrator.test/voice", false, faults)).await;
    assert_eq!(received.at("/voice").len(), 1, "the dropped attempt never arrived: {timeline}");
    assert!(timeline.contains("(attempt 2 of 2)"), "{timeline}");
    assert!(timeline.contains("hears say \"Voice speaking\""), "{timeline}");
}

#[tokio::test(start_paused = true)]
async fn unparsable_twiml_instead_of_the_answer_is_12100_and_the_application_error() {
    let faults = vec![on("/voice", None, FaultAction::GarbageTwiml)];
    let (sim, _, timeline) = run(world("http://orchestrator.test/voice#rc=3&rp=all", false, faults)).await;
    assert!(timeline.contains("notification 12100"), "{timeline}");
    assert!(timeline.contains("application error has occurred"), "{timeline}");
    assert!(!timeline.contains("twilio retries"), "a 200 is not retried: {timeline}");
    let voice = exchanges(&sim, "/voice");
    assert_eq!(voice.len(), 1);
    assert_eq!(voice[0].target_answer.as_ref().map(|a| a.response.body.as_str()), Some(VOICE));
    assert!(timeline.contains("(the target answered 200 after 0.000s: <Response>"), "{timeline}");
}

#[tokio::test(start_paused = true)]
async fn an_answer_slower_than_15_seconds_is_a_timeout_and_a_faster_one_is_acted_on_late() {
    let slow = |delay_s| vec![on("/voice", None, FaultAction::SlowAnswer { delay_s })];
    let (sim, _, timeline) = run(world("http://orchestrator.test/voice", false, slow(20.0))).await;
    assert!(timeline.contains("error: timeout after 15.000s"), "{timeline}");
    assert!(timeline.contains("notification 11205"), "{timeline}");
    assert!(timeline.contains("application error has occurred"), "{timeline}");
    let voice = exchanges(&sim, "/voice");
    assert_eq!(voice[0].fault.as_deref(), Some("answer: slow 20.000s"));
    assert!(voice[0].target_answer.is_some(), "{timeline}");

    let (sim, _, timeline) = run(world("http://orchestrator.test/voice", false, slow(4.0))).await;
    assert!(timeline.contains("⇒ 200 after 4.000s"), "{timeline}");
    assert!(
        timeline.contains("  4.000s #") && timeline.contains("hears say \"Voice speaking\""),
        "{timeline}"
    );
    assert!(!timeline.contains("notification"), "{timeline}");
    assert_eq!(exchanges(&sim, "/voice")[0].response.as_ref().map(|r| r.body.as_str()), Some(VOICE));
}

#[tokio::test(start_paused = true)]
async fn a_status_callbacks_answer_is_ignored_slow_or_failed() {
    let faults = vec![
        on("/number-status", None, FaultAction::SlowAnswer { delay_s: 30.0 }),
        on("/voice", None, FaultAction::Duplicate),
    ];
    let (_, received, timeline) = run(world("http://orchestrator.test/voice", false, faults)).await;
    assert_eq!(received.at("/number-status").len(), 1, "{timeline}");
    assert!(timeline.contains("notification 15003"), "{timeline}");
    assert!(!timeline.contains("application error"), "{timeline}");
}
