//! Unit tests of the rules on hand-built journals: each rule fires on the smallest story that breaks it
//! and stays quiet on the nearest story that does not.

use ringback_sim::ids::{CallSid, StreamSid};
use ringback_sim::journal::{Entity, Party};
use ringback_sim::time::{SimDuration, SimInstant};

use super::script::{
    Answer, CALLER, CALLER_NUMBER, CONFERENCE, SALES, SERVICE, SPECIALIST, Script, TWILIO_API, context,
};
use super::{Context, Level, RULES, Violation, evaluate, evaluate_rule, rule};

fn at(s: f64) -> SimInstant {
    SimInstant::ZERO + SimDuration::from_secs_f64(s)
}

fn judge(rule: &str, s: &Script) -> Vec<Violation> {
    evaluate_rule(rule, s.journal(), &context())
}

const STREAM_1: StreamSid = StreamSid::from_u128(1);
const STREAM_2: StreamSid = StreamSid::from_u128(2);

/// A caller with the assistant from second 0, who asks for sales at 5; the target puts them on hold in a
/// conference and dials sales, which is busy at 8 (and the target hears so at once).
fn busy_transfer() -> Script {
    let mut s = Script::new();
    s.at(0.0).caller(CALLER, CALLER_NUMBER);
    s.session("s-1", r#"{"customer":{"number":"+15557770001"}}"#);
    s.stream(STREAM_1, CALLER, "s-1");
    s.at(5.0).says(CALLER, "I need \"sales\"");
    let answer = Answer::Typed(200, "application/json", r#"{"results":[{"toolCallId":"call_1"}]}"#.into());
    s.at(7.0).vapi_message("tool-calls", "s-1", r#","toolCallList":[{"id":"call_1"}]"#, answer, None);
    redirect(&mut s, "<Response><Dial><Conference>room</Conference></Dial></Response>");
    s.transition(Entity::Stream(STREAM_1), "connected", "stopped", Some("the call left <Connect>"));
    s.conference(CONFERENCE, "none", "init");
    s.joins(CONFERENCE, CALLER, true);
    s.hears(CALLER, "wait-music http://twimlets.com/holdmusic");
    let created = Answer::Typed(201, "application/json", format!(r#"{{"sid":"{SPECIALIST}"}}"#));
    let body = format!("To=%2B15550000201&Url=http%3A%2F%2Forchestrator.test%2Fs%3Fcaller%3D{CALLER}");
    s.http(Party::Client, Party::Twilio, "POST", &format!("{TWILIO_API}/Calls.json"), &body, created);
    s.created(SPECIALIST, "outbound-api", SERVICE, SALES, "REST create");
    s.at(8.0).leg(SPECIALIST, "queued", "busy", Some("the far end"));
    s.twilio_hook(
        "/specialist-status",
        &format!("CallSid={SPECIALIST}&CallStatus=busy&SequenceNumber=1"),
        false,
        Answer::Status(204, ""),
        None,
    );
    s
}

/// A REST redirect of the caller by the target.
fn redirect(s: &mut Script, twiml: &str) -> u64 {
    let body = format!("Twiml={}", twiml.replace('<', "%3C").replace('>', "%3E").replace(' ', "+"));
    s.http(
        Party::Client,
        Party::Twilio,
        "POST",
        &format!("{TWILIO_API}/Calls/{CALLER}.json"),
        &body,
        Answer::Status(200, "{}"),
    )
}

/// The target brings the caller back to a new session `id` on `stream`.
fn bring_back(s: &mut Script, id: &str, stream: StreamSid, body: &str) {
    s.session(id, body);
    redirect(
        s,
        &format!(
            "<Response><Connect><Stream url=\"wss://api.vapi.ai/{id}/transport\"/></Connect></Response>"
        ),
    );
    s.joins(CONFERENCE, CALLER, false);
    s.stream(stream, CALLER, id);
}

#[test]
fn the_rules_table_follows_the_spec() {
    let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        [
            "return-on-failure",
            "bridge-on-answer",
            "no-voicemail-bridge",
            "caller-never-dropped",
            "no-orphans",
            "isolation",
            "authentic-webhooks",
            "tool-response",
            "valid-twiml",
            "idempotent-webhooks",
            "destination-allowlist",
            "order-tolerant",
            "hold-audio",
            "context-carryover",
        ]
    );
    let should: Vec<&str> = RULES.iter().filter(|r| r.level == Level::Should).map(|r| r.id).collect();
    assert_eq!(should, ["order-tolerant", "hold-audio", "context-carryover"]);
    assert_eq!(rule("return-on-failure").and_then(|r| r.deadline_s), Some(5.0));
    assert_eq!(rule("valid-twiml").and_then(|r| r.deadline_s), Some(15.0));
    assert_eq!(rule("hold-audio").and_then(|r| r.deadline_s), Some(3.0));
    assert!(rule("no-such-rule").is_none());
    assert!(RULES.iter().all(|r| !r.summary.is_empty() && r.explanation.len() > r.id.len()));
    assert!(evaluate_rule("no-such-rule", busy_transfer().journal(), &context()).is_empty());
}

#[test]
fn a_caller_nobody_brings_back_breaks_return_on_failure_five_seconds_after_the_webhook() {
    let mut s = busy_transfer();
    s.at(60.0).note("the end");
    let v = judge("return-on-failure", &s);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].at, at(13.0));
    assert!(v[0].message.contains("busy") && v[0].message.contains(&CALLER.to_string()), "{}", v[0].message);
    assert!(v[0].lines.len() >= 2, "{v:?}");
}

#[test]
fn a_caller_brought_back_within_five_seconds_keeps_return_on_failure() {
    let mut s = busy_transfer();
    s.at(12.5);
    bring_back(&mut s, "s-2", STREAM_2, "{}");
    assert!(judge("return-on-failure", &s).is_empty());

    let mut late = busy_transfer();
    late.at(13.5);
    bring_back(&mut late, "s-2", STREAM_2, "{}");
    assert_eq!(judge("return-on-failure", &late).len(), 1);
}

#[test]
fn a_returned_caller_moved_away_without_asking_breaks_return_on_failure() {
    let mut s = busy_transfer();
    s.at(9.0);
    bring_back(&mut s, "s-2", STREAM_2, "{}");
    s.at(20.0);
    redirect(&mut s, "<Response><Say>bye</Say></Response>");
    let v = judge("return-on-failure", &s);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].at, at(20.0));

    // The same move is fine once the returned session asked for another transfer.
    let mut asked = busy_transfer();
    asked.at(9.0);
    bring_back(&mut asked, "s-2", STREAM_2, "{}");
    asked.at(15.0).vapi_message("transfer-destination-request", "s-2", "", Answer::Status(200, "{}"), None);
    asked.at(20.0);
    redirect(&mut asked, "<Response><Say>bye</Say></Response>");
    assert!(judge("return-on-failure", &asked).is_empty());
}

#[test]
fn a_caller_the_target_hangs_up_breaks_caller_never_dropped_but_one_vapi_hangs_up_does_not() {
    let mut s = busy_transfer();
    let url = format!("{TWILIO_API}/Calls/{CALLER}.json");
    s.at(9.0).http(Party::Client, Party::Twilio, "POST", &url, "Status=completed", Answer::Status(200, "{}"));
    s.leg(CALLER, "in-progress", "completed", Some("REST Status=completed"));
    let v = judge("caller-never-dropped", &s);
    assert_eq!((v.len(), v[0].at), (1, at(9.0)), "{v:?}");

    let mut vapi = busy_transfer();
    vapi.at(9.0).http(
        Party::Vapi,
        Party::Twilio,
        "POST",
        &url,
        "Status=completed",
        Answer::Status(200, "{}"),
    );
    vapi.leg(CALLER, "in-progress", "completed", Some("REST Status=completed"));
    assert!(judge("caller-never-dropped", &vapi).is_empty());
}

#[test]
fn an_application_error_in_the_targets_twiml_breaks_caller_never_dropped_and_valid_twiml() {
    let mut s = Script::new();
    s.at(0.0).created(CALLER, "inbound", CALLER_NUMBER, SERVICE, "dials");
    let hook = s.twilio_hook(
        &format!("/voice?x={CALLER}"),
        &format!("CallSid={CALLER}"),
        true,
        Answer::Status(200, "<Response><Say>"),
        None,
    );
    s.notify(CALLER, 12100);
    s.at(2.0).leg(CALLER, "ringing", "completed", Some("application error"));
    let v = judge("caller-never-dropped", &s);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].lines.contains(&hook) && v[0].message.contains("12100"), "{v:?}");
    let v = judge("valid-twiml", &s);
    assert_eq!((v.len(), v[0].lines.as_slice()), (1, [hook].as_slice()), "{v:?}");
}

/// The caller's voice webhook, answered `answer` with `fault`, then Twilio's application error.
fn voice_then_application_error(answer: Answer, fault: Option<&str>, code: u32) -> (Script, u64) {
    let mut s = Script::new();
    s.at(0.0).created(CALLER, "inbound", CALLER_NUMBER, SERVICE, "dials");
    let hook = s.twilio_hook("/voice", &format!("CallSid={CALLER}"), true, answer, fault);
    s.at(15.0).notify(CALLER, code);
    s.at(18.0).leg(CALLER, "ringing", "completed", Some("application error"));
    (s, hook)
}

#[test]
fn an_answer_the_fault_plan_made_unusable_breaks_no_rule_but_the_targets_own_bad_answer_does() {
    let good = || "<Response><Say>hi</Say></Response>".to_owned();
    let faults = [
        (Answer::Faulted(Some((200, "<Response><Say>")), 200, good()), "answer: unparsable TwiML", 12100),
        (Answer::Faulted(Some((500, "Internal Server Error")), 200, good()), "answer: HTTP 500", 11200),
        (Answer::Faulted(None, 200, good()), "answer: slow 20.000s", 11205),
    ];
    for (answer, fault, code) in faults {
        let (s, _) = voice_then_application_error(answer, Some(fault), code);
        for rule in ["valid-twiml", "caller-never-dropped"] {
            assert!(judge(rule, &s).is_empty(), "{fault}: {rule}: {:?}", judge(rule, &s));
        }
    }
    // The same fault on an answer that was bad already: the target's own answer is still judged.
    let bad = Answer::Faulted(Some((500, "Internal Server Error")), 200, "<Response><Say>".into());
    let (s, hook) = voice_then_application_error(bad, Some("answer: HTTP 500"), 11200);
    let v = judge("valid-twiml", &s);
    assert_eq!((v.len(), v[0].lines.as_slice()), (1, [hook].as_slice()), "{v:?}");
    assert!(v[0].message.contains("TwiML Twilio refuses"), "{v:?}");
    // And without a fault, the same end is the target's doing.
    let (s, _) = voice_then_application_error(Answer::Status(500, ""), None, 11200);
    assert_eq!(judge("valid-twiml", &s).len(), 1);
    assert_eq!(judge("caller-never-dropped", &s).len(), 1);
}

#[test]
fn a_fallback_answered_badly_by_the_target_is_the_targets_even_after_a_faulted_answer() {
    let (mut s, _) = voice_then_application_error(
        Answer::Faulted(Some((500, "Internal Server Error")), 200, "<Response/>".into()),
        Some("answer: HTTP 500"),
        11200,
    );
    s.at(0.5).twilio_hook(
        "/voice",
        &format!("CallSid={CALLER}&ErrorCode=11200"),
        true,
        Answer::Status(200, "<Say>"),
        None,
    );
    assert_eq!(judge("caller-never-dropped", &s).len(), 1);
    assert_eq!(judge("valid-twiml", &s).len(), 1);
}

#[test]
fn a_tool_call_answered_in_time_is_judged_as_answered_whatever_the_fault_made_of_it() {
    let list = r#","toolCallList":[{"id":"a"}]"#;
    let results = || r#"{"results":[{"toolCallId":"a"}]}"#.to_owned();
    let mut s = Script::new();
    s.at(1.0).vapi_message(
        "tool-calls",
        "s",
        list,
        Answer::Faulted(None, 200, results()),
        Some("answer: slow 25.000s"),
    );
    s.at(2.0).vapi_message(
        "tool-calls",
        "s",
        list,
        Answer::Faulted(Some((500, "")), 200, results()),
        Some("answer: HTTP 500"),
    );
    assert!(judge("tool-response", &s).is_empty(), "{:?}", judge("tool-response", &s));
    s.at(3.0).vapi_message(
        "tool-calls",
        "s",
        list,
        Answer::Faulted(Some((500, "")), 200, "{}".into()),
        Some("answer: HTTP 500"),
    );
    let v = judge("tool-response", &s);
    assert_eq!((v.len(), v[0].at), (1, at(3.0)), "{v:?}");
    assert!(v[0].message.contains("without a `results` array"), "{v:?}");
}

#[test]
fn the_assistant_ending_the_call_is_not_a_drop() {
    let mut s = busy_transfer();
    s.at(9.0);
    bring_back(&mut s, "s-2", STREAM_2, r#"{"said":"I need \"sales\""}"#);
    s.at(40.0).transition(Entity::VapiCall("s-2".into()), "in-progress", "ended", Some("silence-timed-out"));
    s.transition(Entity::Stream(STREAM_2), "connected", "closed", Some("by the server"));
    s.leg(CALLER, "in-progress", "completed", Some("end of TwiML"));
    assert!(judge("caller-never-dropped", &s).is_empty());
    assert!(judge("no-orphans", &s).is_empty());
    assert!(evaluate(s.journal(), &context()).is_empty(), "{:?}", evaluate(s.journal(), &context()));
}

#[test]
fn a_specialist_still_ringing_after_the_caller_left_breaks_no_orphans() {
    let mut s = Script::new();
    s.at(0.0).caller(CALLER, CALLER_NUMBER);
    s.created(SPECIALIST, "outbound-api", SERVICE, SALES, "REST create");
    s.at(1.0).leg(SPECIALIST, "queued", "ringing", None);
    s.at(3.0).leg(CALLER, "in-progress", "completed", Some("the far end hung up"));
    s.at(7.0).leg(SPECIALIST, "ringing", "canceled", Some("REST Status=canceled"));
    assert!(judge("no-orphans", &s).is_empty());

    let mut slow = Script::new();
    slow.at(0.0).caller(CALLER, CALLER_NUMBER);
    slow.created(SPECIALIST, "outbound-api", SERVICE, SALES, "REST create");
    slow.at(3.0).leg(CALLER, "in-progress", "completed", Some("the far end hung up"));
    slow.at(9.0).leg(SPECIALIST, "queued", "canceled", Some("REST Status=canceled"));
    let v = judge("no-orphans", &slow);
    assert_eq!((v.len(), v[0].at), (1, at(8.0)), "{v:?}");
}

#[test]
fn a_machine_bridged_by_dial_breaks_no_voicemail_bridge() {
    let mut s = Script::new();
    s.at(0.0).caller(CALLER, CALLER_NUMBER);
    s.created(SPECIALIST, "outbound-dial", SERVICE, SALES, &format!("<Dial> from {CALLER}"));
    s.at(3.0).leg(SPECIALIST, "ringing", "in-progress", None);
    s.hears(CALLER, &format!("bridged {SPECIALIST}"));
    s.at(5.0).detect(SPECIALIST, "machine_end_beep");
    let v = judge("no-voicemail-bridge", &s);
    assert_eq!((v.len(), v[0].at), (1, at(3.0)), "{v:?}");
    assert!(v[0].message.contains("machine_end_beep"));
    assert!(judge("bridge-on-answer", &s).is_empty(), "a machine is never owed a bridge");
}

#[test]
fn a_person_left_unbridged_breaks_bridge_on_answer_unless_they_hang_up() {
    let story = |hang_up: bool| {
        let mut s = Script::new();
        s.at(0.0).caller(CALLER, CALLER_NUMBER);
        s.created(SPECIALIST, "outbound-api", SERVICE, SALES, "REST create");
        s.at(3.0).leg(SPECIALIST, "ringing", "in-progress", None);
        s.at(4.0).detect(SPECIALIST, "human");
        if hang_up {
            s.at(6.0).leg(SPECIALIST, "in-progress", "completed", Some("the far end hung up"));
        }
        s.at(30.0).note("the end");
        s
    };
    let v = judge("bridge-on-answer", &story(false));
    assert_eq!((v.len(), v[0].at), (1, at(9.0)), "{v:?}");
    assert!(judge("bridge-on-answer", &story(true)).is_empty());
}

#[test]
fn tool_calls_answered_late_or_incompletely_break_tool_response() {
    let list = r#","toolCallList":[{"id":"a"},{"id":"b"}]"#;
    let mut s = Script::new();
    s.at(1.0).vapi_message(
        "tool-calls",
        "s",
        list,
        Answer::After(25.0, 200, r#"{"results":[{"toolCallId":"a"},{"toolCallId":"b"}]}"#.into()),
        None,
    );
    s.at(2.0).vapi_message(
        "tool-calls",
        "s",
        list,
        Answer::Status(200, r#"{"results":[{"toolCallId":"a"}]}"#),
        None,
    );
    s.at(3.0).vapi_message(
        "tool-calls",
        "s",
        list,
        Answer::Status(200, r#"{"results":[{"toolCallId":"a"},{"toolCallId":"b"}]}"#),
        Some("duplicate of #2"),
    );
    s.at(4.0).vapi_message(
        "tool-calls",
        "s",
        list,
        Answer::Status(403, ""),
        Some("forged: no Vapi secret or signature"),
    );
    let v = judge("tool-response", &s);
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!(v[0].at, at(2.0));
    assert!(v[0].message.contains("no result for b"), "{}", v[0].message);
    assert_eq!(v[1].at, at(21.0));
    let patient = Context { tool_timeout_s: 30.0, ..context() };
    assert_eq!(evaluate_rule("tool-response", s.journal(), &patient).len(), 1);
}

#[test]
fn audio_is_an_answer_only_to_a_wait_url() {
    let mut s = Script::new();
    s.at(0.0).caller(CALLER, CALLER_NUMBER);
    let hold = "http://orchestrator.test/hold";
    s.hears(CALLER, &format!("wait {hold}"));
    let call = format!("CallSid={CALLER}");
    s.twilio_hook("/hold", &call, true, Answer::Typed(200, "audio/mpeg", String::new()), None);
    s.twilio_hook("/voice", &call, true, Answer::Typed(200, "audio/mpeg", String::new()), None);
    s.twilio_hook("/voice", &call, true, Answer::Status(500, ""), None);
    s.twilio_hook("/voice", &call, true, Answer::Error("timeout after 15.000s"), None);
    s.twilio_hook(
        "/voice",
        &call,
        true,
        Answer::Status(200, "oops"),
        Some("forged: wrong X-Twilio-Signature"),
    );
    s.twilio_hook("/status", &call, false, Answer::Status(200, "oops"), None);
    s.twilio_hook(
        "/voice",
        &call,
        true,
        Answer::Status(200, "<Response><Pause/></Response>"),
        Some("duplicate of #3"),
    );
    let v = judge("valid-twiml", &s);
    let when: Vec<SimInstant> = v.iter().map(|v| v.at).collect();
    assert_eq!(when, [at(0.0), at(0.0), at(15.0)], "{v:?}");
}

#[test]
fn a_forged_webhook_must_be_refused() {
    let mut s = Script::new();
    let forged = Some("forged: wrong X-Twilio-Signature");
    s.at(1.0).twilio_hook("/voice", "", true, Answer::Status(403, ""), forged);
    s.at(2.0).twilio_hook("/voice", "", true, Answer::Status(200, "<Response/>"), forged);
    s.at(3.0).twilio_hook("/voice", "", true, Answer::Error("timeout after 15.000s"), forged);
    s.at(4.0).twilio_hook("/voice", "", true, Answer::Status(200, "<Response/>"), None);
    // The target was down (a restart): the forgery never reached it, so it had nothing to refuse.
    let refused = Answer::Error("connection refused: nothing answers at orchestrator.test");
    s.at(5.0).twilio_hook("/voice", "", true, refused, forged);
    let when: Vec<SimInstant> = judge("authentic-webhooks", &s).iter().map(|v| v.at).collect();
    assert_eq!(when, [at(2.0), at(3.0)]);
}

#[test]
fn a_number_outside_the_allowlist_in_twiml_breaks_destination_allowlist() {
    let mut s = Script::new();
    s.at(0.0).caller(CALLER, CALLER_NUMBER);
    let call = format!("CallSid={CALLER}");
    s.twilio_hook(
        "/voice",
        &call,
        true,
        Answer::Status(200, "<Response><Dial>+15559999999</Dial></Response>"),
        None,
    );
    s.at(1.0).twilio_hook(
        "/voice",
        &call,
        true,
        Answer::Status(200, "<Response><Dial><Number>+15550000201</Number></Dial></Response>"),
        None,
    );
    s.at(2.0);
    redirect(&mut s, "<Response><Dial><Number>+15558888888</Number></Dial></Response>");
    let when: Vec<SimInstant> = judge("destination-allowlist", &s).iter().map(|v| v.at).collect();
    assert_eq!(when, [at(0.0), at(2.0)]);
}

#[test]
fn a_late_callback_acted_on_as_news_breaks_order_tolerant() {
    let story = |fresh_news: bool| {
        let mut s = busy_transfer();
        s.at(9.0);
        bring_back(&mut s, "s-2", STREAM_2, "{}");
        let late = format!("CallSid={SPECIALIST}&CallStatus=ringing&SequenceNumber=0");
        s.at(12.0).twilio_hook("/specialist-status", &late, false, Answer::Status(204, ""), None);
        if fresh_news {
            s.at(12.5).vapi_message("tool-calls", "s-2", "", Answer::Status(200, r#"{"results":[]}"#), None);
        }
        s.at(13.0);
        redirect(&mut s, "<Response><Dial><Conference>room</Conference></Dial></Response>");
        s
    };
    let v = judge("order-tolerant", &story(false));
    assert_eq!((v.len(), v[0].at), (1, at(13.0)), "{v:?}");
    assert!(judge("order-tolerant", &story(true)).is_empty());
}

#[test]
fn silence_while_the_specialist_rings_breaks_hold_audio() {
    let story = |hears: &str| {
        let mut s = Script::new();
        s.at(0.0).caller(CALLER, CALLER_NUMBER);
        s.at(5.0).created(SPECIALIST, "outbound-api", SERVICE, SALES, "REST create");
        s.at(6.0).hears(CALLER, hears);
        s.at(20.0).leg(SPECIALIST, "queued", "no-answer", Some("ring timeout"));
        s.at(25.0).leg(CALLER, "in-progress", "completed", Some("the far end hung up"));
        s
    };
    let v = judge("hold-audio", &story("silence (alone in conference CF1)"));
    assert_eq!((v.len(), v[0].at), (1, at(9.0)), "{v:?}");
    assert!(judge("hold-audio", &story("wait-music http://twimlets.com/holdmusic")).is_empty());
}

#[test]
fn a_resumed_session_without_the_callers_words_breaks_context_carryover() {
    let mut bare = busy_transfer();
    bare.at(9.0);
    bring_back(&mut bare, "s-2", STREAM_2, r#"{"assistantOverrides":{"firstMessage":"Sorry."}}"#);
    let v = judge("context-carryover", &bare);
    assert_eq!((v.len(), v[0].at), (1, at(9.0)), "{v:?}");

    let mut carried = busy_transfer();
    carried.at(9.0);
    bring_back(&mut carried, "s-2", STREAM_2, r#"{"messages":[{"content":"Caller: I need \"sales\""}]}"#);
    assert!(judge("context-carryover", &carried).is_empty());

    let mut controlled = busy_transfer();
    controlled.at(9.0);
    bring_back(&mut controlled, "s-2", STREAM_2, "{}");
    let body =
        r#"{"type":"add-message","message":{"role":"system","content":"They said: I need \"sales\""}}"#;
    controlled.http(
        Party::Client,
        Party::Vapi,
        "POST",
        "https://api.vapi.ai/s-2/control",
        body,
        Answer::Status(200, "{}"),
    );
    assert!(judge("context-carryover", &controlled).is_empty());
}

#[test]
fn redelivered_webhooks_that_double_the_work_break_idempotent_webhooks() {
    let mut s = busy_transfer();
    s.at(8.0).twilio_hook(
        "/specialist-status",
        &format!("CallSid={SPECIALIST}&CallStatus=busy&SequenceNumber=1"),
        false,
        Answer::Status(204, ""),
        Some("duplicate of #20"),
    );
    s.at(9.0);
    bring_back(&mut s, "s-2", STREAM_2, "{}");
    assert!(judge("idempotent-webhooks", &s).is_empty());
    s.session("s-3", r#"{"customer":{"number":"+15557770001"}}"#);
    let v = judge("idempotent-webhooks", &s);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("second assistant session"), "{}", v[0].message);
}

#[test]
fn a_caller_put_with_another_callers_specialist_breaks_isolation() {
    let other = CallSid::from_u128(0xc2);
    let mut s = busy_transfer();
    s.at(9.0).caller(other, super::script::CALLER_2_NUMBER);
    s.joins(CONFERENCE, other, true);
    let v = judge("isolation", &s);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains(&other.to_string()));
}

#[test]
fn moving_a_caller_who_never_asked_breaks_isolation() {
    let mut s = Script::new();
    s.at(0.0).caller(CALLER, CALLER_NUMBER);
    s.at(3.0);
    redirect(&mut s, "<Response><Pause/></Response>");
    let v = judge("isolation", &s);
    assert_eq!((v.len(), v[0].at), (1, at(3.0)), "{v:?}");
}

#[test]
fn violations_come_in_time_order_then_rule_order() {
    let mut s = Script::new();
    let forged = Some("forged: wrong X-Twilio-Signature");
    s.at(1.0).vapi_message(
        "tool-calls",
        "s",
        r#","toolCallList":[{"id":"a"}]"#,
        Answer::Status(500, ""),
        None,
    );
    s.at(2.0).twilio_hook("/voice", "", false, Answer::Status(200, ""), forged);
    s.vapi_message("tool-calls", "s", r#","toolCallList":[{"id":"a"}]"#, Answer::Status(500, ""), None);
    let order: Vec<(SimInstant, &str)> =
        evaluate(s.journal(), &context()).iter().map(|v| (v.at, v.rule)).collect();
    assert_eq!(
        order,
        [(at(1.0), "tool-response"), (at(2.0), "authentic-webhooks"), (at(2.0), "tool-response")]
    );
}
