//! Conferences in virtual time: the transfer-with-hold pattern, start and end rules, hold audio, and
//! REST redirects pulling a participant out.

use axum::Router;
use ringback_sim::ids::CallSid;
use ringback_sim::twilio::wire::FormParams;

use crate::support::{self, ACCOUNT, CALLER, NUMBER, Received, param, record};

fn target(received: Received) -> Router {
    Router::new()
        .route(
            "/voice",
            record(
                "/voice",
                r#"<Response><Dial action="/after-conference"><Conference statusCallback="/conference" statusCallbackEvent="start end join leave hold" endConferenceOnExit="true">room-1</Conference></Dial></Response>"#,
            ),
        )
        .route("/after-conference", record("/after-conference", "<Response><Say>Back with the assistant</Say><Pause length=\"30\"/></Response>"))
        .route("/conference", record("/conference", ""))
        .route("/participant-status", record("/participant-status", ""))
        .route("/number-status", record("/number-status", ""))
        .route("/back", record("/back", "<Response><Say>Welcome back</Say><Pause length=\"60\"/></Response>"))
        .with_state(received)
}

fn events(received: &Received) -> Vec<String> {
    received
        .at("/conference")
        .iter()
        .map(|p| param(p, "StatusCallbackEvent").unwrap_or_default().to_owned())
        .collect()
}

fn add_specialist(sim: &ringback_sim::runtime::SharedSim, to: &str) -> CallSid {
    let form = FormParams::from_pairs([
        ("From", NUMBER),
        ("To", to),
        ("StatusCallback", "http://orchestrator.test/participant-status"),
        ("StatusCallbackEvent", "initiated ringing answered completed"),
        ("Timeout", "20"),
    ]);
    let participant = sim.with(|w| w.create_participant(ACCOUNT, "room-1", &form)).expect("participant");
    assert_eq!(participant.status.as_str(), "queued");
    participant.call_sid.expect("call sid")
}

async fn advance(seconds: u64) {
    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
}

#[tokio::test(start_paused = true)]
async fn a_caller_waits_with_music_then_is_bridged_when_the_specialist_answers() {
    let received = Received::default();
    let sim = support::sim(
        support::world(&[("+15550000300", r#"{ answer = "human", after_s = 4 }"#)]),
        target(received.clone()),
    );
    let driver = tokio::spawn(ringback_sim::runtime::drive(sim.clone(), std::future::pending()));
    let caller = sim.with(|w| w.place_inbound_call(CALLER, NUMBER)).expect("inbound call");
    advance(1).await;
    assert!(
        sim.world().leg(caller).expect("caller").hears.starts_with("wait-music"),
        "{}",
        sim.world().journal().timeline()
    );
    let specialist = add_specialist(&sim, "+15550000300");
    advance(10).await;
    assert_eq!(events(&received), ["participant-join", "participant-join", "conference-start"]);
    let hears = sim.world().leg(caller).expect("caller").hears.clone();
    assert!(hears.contains(&specialist.to_string()), "the caller hears the specialist: {hears}");
    // The caller hangs up: endConferenceOnExit ends the conference; the specialist's call completes.
    sim.with(|w| w.remote_hangup(caller));
    support::settle(&sim).await;
    driver.abort();
    assert_eq!(
        events(&received),
        ["participant-join", "participant-join", "conference-start", "participant-leave", "conference-end"]
    );
    let end = received.at("/conference").pop().expect("end");
    assert_eq!(param(&end, "ReasonConferenceEnded"), Some("participant-with-end-conference-on-exit-left"));
    let specialist_statuses: Vec<String> = received
        .at("/participant-status")
        .iter()
        .map(|p| param(p, "CallStatus").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(specialist_statuses, ["initiated", "ringing", "in-progress", "completed"]);
    insta::assert_snapshot!("caller_bridged_through_a_conference", support::normalized_timeline(&sim));
}

#[tokio::test(start_paused = true)]
async fn a_busy_specialist_leaves_the_caller_in_the_conference_until_redirected() {
    let received = Received::default();
    let sim =
        support::sim(support::world(&[("+15550000301", r#"{ answer = "busy" }"#)]), target(received.clone()));
    let driver = tokio::spawn(ringback_sim::runtime::drive(sim.clone(), std::future::pending()));
    let caller = sim.with(|w| w.place_inbound_call(CALLER, NUMBER)).expect("inbound call");
    advance(1).await;
    add_specialist(&sim, "+15550000301");
    advance(5).await;
    let statuses: Vec<String> = received
        .at("/participant-status")
        .iter()
        .map(|p| param(p, "CallStatus").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(statuses, ["initiated", "busy"]);
    assert_eq!(events(&received), ["participant-join"], "a busy line never joins");
    // The orchestrator brings the caller back: a REST redirect takes them out of the conference.
    let form = FormParams::from_pairs([("Url", "http://orchestrator.test/back")]);
    sim.with(|w| w.update_call(ACCOUNT, caller, &form)).expect("redirect");
    advance(2).await;
    assert_eq!(events(&received), ["participant-join", "participant-leave", "conference-end"]);
    assert!(
        received.at("/after-conference").is_empty(),
        "a redirect interrupts the <Dial>: no action request"
    );
    let timeline = sim.world().journal().timeline();
    assert!(timeline.contains(&format!("call {caller} hears say \"Welcome back\"")), "{timeline}");
    sim.with(|w| w.remote_hangup(caller));
    support::settle(&sim).await;
    driver.abort();
    insta::assert_snapshot!("busy_specialist_then_redirect_back", support::normalized_timeline(&sim));
}

#[tokio::test(start_paused = true)]
async fn a_participant_leave_callback_carries_the_participant_flags_like_every_participant_event() {
    let received = Received::default();
    let sim = support::sim(
        support::world(&[("+15550000302", r#"{ answer = "human", after_s = 2 }"#)]),
        target(received.clone()),
    );
    let driver = tokio::spawn(ringback_sim::runtime::drive(sim.clone(), std::future::pending()));
    let caller = sim.with(|w| w.place_inbound_call(CALLER, NUMBER)).expect("inbound call");
    advance(1).await;
    let specialist = add_specialist(&sim, "+15550000302");
    advance(6).await;
    let room = sim.world().conference_of(caller).expect("the caller is in the conference").to_string();
    let hold = FormParams::from_pairs([("Hold", "true")]);
    sim.with(|w| w.update_participant(ACCOUNT, &room, &specialist.to_string(), &hold)).expect("hold");
    advance(1).await;
    sim.with(|w| w.delete_participant(ACCOUNT, &room, &specialist.to_string())).expect("kick");
    advance(1).await;
    sim.with(|w| w.remote_hangup(caller));
    support::settle(&sim).await;
    driver.abort();
    let leaves: Vec<Vec<(String, String)>> = received
        .at("/conference")
        .into_iter()
        .filter(|p| param(p, "StatusCallbackEvent") == Some("participant-leave"))
        .collect();
    let flags = |p: &[(String, String)]| -> Vec<Option<String>> {
        [
            "CallSid",
            "Coaching",
            "EndConferenceOnExit",
            "Hold",
            "Muted",
            "StartConferenceOnEnter",
            "ReasonParticipantLeft",
        ]
        .iter()
        .map(|name| param(p, name).map(str::to_owned))
        .collect()
    };
    let some = |values: [&str; 7]| values.map(|v| Some(v.to_owned())).to_vec();
    assert_eq!(leaves.len(), 2, "{}", sim.world().journal().timeline());
    assert_eq!(
        flags(&leaves[0]),
        some([&specialist.to_string(), "false", "false", "true", "false", "true", "participant-kicked"])
    );
    assert_eq!(
        flags(&leaves[1]),
        some([&caller.to_string(), "false", "true", "false", "false", "true", "participant-left"])
    );
}
