//! The rules about each caller's conversation: the target never drops the caller
//! (`caller-never-dropped`), touches only the conversation that asked (`isolation`), dials only allowed
//! numbers (`destination-allowlist`), keeps a waiting caller out of silence (`hold-audio`) and gives a
//! resumed assistant what was said (`context-carryover`).

use std::collections::BTreeSet;

use ringback_sim::ids::CallSid;
use ringback_sim::journal::Party;
use ringback_sim::time::{SimDuration, SimInstant};
use ringback_sim::twilio::twiml::{self, DialTarget, Endpoint, Verb};

use super::facts::{Facts, Leg, Moment, RestOp, Role};
use super::{Context, Violation, secs, wire};

/// Who gave a leg the TwiML it was running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Target,
    Vapi,
}

/// The source of the last TwiML document `call` received before `before`, and the line that shows it.
fn document_source(facts: &Facts, call: CallSid, before: Moment) -> Option<(Source, u64)> {
    let sid = call.to_string();
    let hook = facts
        .webhooks
        .iter()
        .filter(|w| {
            w.at < before
                && w.expects_twiml
                && (w.fault.is_none() || w.answer_faulted())
                && w.param("CallSid") == Some(sid.as_str())
        })
        .filter(|w| w.from == Party::Twilio)
        .map(|w| (w.at, if w.to_target() { Source::Target } else { Source::Vapi }))
        .next_back();
    let rest = facts
        .rest
        .iter()
        .filter(|r| r.at < before && r.leg() == Some(call) && r.is_redirect())
        .map(|r| (r.at, if r.by_target() { Source::Target } else { Source::Vapi }))
        .next_back();
    [hook, rest].into_iter().flatten().max_by_key(|(m, _)| *m).map(|(m, s)| (s, m.seq))
}

/// Whether the last TwiML fetch for `call` before `before` is one whose answer the run's fault plan made
/// (what sent the call to Twilio's application error, then).
fn after_a_faulted_answer(facts: &Facts, call: CallSid, before: Moment) -> bool {
    let sid = call.to_string();
    facts
        .webhooks
        .iter()
        .rfind(|w| {
            w.at < before
                && w.from == Party::Twilio
                && w.expects_twiml
                && !w.is_duplicate()
                && !w.is_forged()
                && w.param("CallSid") == Some(sid.as_str())
        })
        .is_some_and(|w| w.answer_faulted())
}

/// Why the target is to blame for the end of `caller`'s leg, with the lines that show it; `None` when
/// the caller or the assistant ended it (or it cannot be told).
pub(crate) fn blame(facts: &Facts, caller: &Leg) -> Option<(String, Vec<u64>)> {
    let ended = caller.ended.as_ref()?;
    let cause = ended.cause.as_str();
    if cause.contains("far end") || cause == "ring timeout" {
        return None;
    }
    if cause.starts_with("REST Status=") {
        let request =
            facts.rest.iter().rfind(|r| r.at < ended.at && r.leg() == Some(caller.sid) && r.is_hangup())?;
        return request
            .by_target()
            .then(|| ("the target hung it up through the REST API".to_owned(), vec![request.at.seq]));
    }
    let document_cause = ["<Hangup>", "<Reject>", "end of TwiML", "application error"].contains(&cause);
    if !document_cause {
        let placed = [
            "the conference ended",
            "the conference is over",
            "no longer a participant",
            "participant removed",
            "time limit",
        ];
        return placed.contains(&cause).then(|| (format!("it ended because {cause}"), Vec::new()));
    }
    // The assistant ended the session (Vapi closed the stream), and nothing came between that and the end.
    if let Some(last) = facts
        .streams_on(caller.sid)
        .filter(|s| s.ended.as_ref().is_some_and(|(m, _, _)| *m <= ended.at))
        .last()
        && last.closed_by_server()
        && let Some((closed, _, _)) = &last.ended
    {
        let moved_on = facts.stints_of(caller.sid).iter().any(|(_, s)| s.joined > *closed)
            || facts.streams_on(caller.sid).any(|s| s.opened > *closed);
        let ended_by_target = last.vapi_call.as_deref().is_some_and(|id| {
            facts.rest.iter().any(|r| {
                r.by_target()
                    && r.at <= *closed
                    && match &r.op {
                        RestOp::VapiDeleteCall(v) => v == id,
                        RestOp::VapiControl(v) => v == id && r.body.contains("end-call"),
                        _ => false,
                    }
            })
        });
        // Vapi transferring by itself is the target: its session ending for the transfer's sake (a fallback
        // plan with `endCallEnabled`) is the target dropping the caller; ending it for any other reason
        // (silence, the assistant's own end-call) is the assistant's.
        let session_end =
            last.vapi_call.as_deref().and_then(|id| facts.vapi_calls.get(id)).and_then(|v| v.ended.as_ref());
        if facts.native
            && let Some((_, reason)) = session_end.filter(|(_, reason)| is_transfer_error(reason))
        {
            return Some((
                format!(
                    "Vapi ended the assistant session after the failed transfer ({reason}: a fallbackPlan with \
                     endCallEnabled, Vapi's default), which hung the caller up"
                ),
                vec![closed.seq],
            ));
        }
        if !moved_on && !ended_by_target {
            return None;
        }
        if ended_by_target {
            return Some((
                "the target ended its assistant session, which hung the caller up".to_owned(),
                vec![closed.seq],
            ));
        }
    }
    if cause == "application error" && after_a_faulted_answer(facts, caller.sid, ended.at) {
        // The run's fault plan gave Twilio the unusable answer: a faithful consequence, not the target's.
        return None;
    }
    let (source, line) = document_source(facts, caller.sid, ended.at)?;
    if source != Source::Target {
        return None;
    }
    let why = match cause {
        "end of TwiML" => "the TwiML the target gave it ran out".to_owned(),
        "application error" => {
            let codes: Vec<String> = caller
                .notifications
                .iter()
                .filter(|(m, _, _)| *m <= ended.at)
                .map(|(_, code, _)| code.to_string())
                .collect();
            format!("an application error in the target's TwiML (notifications {})", codes.join(", "))
        }
        other => format!("the target's TwiML said {other}"),
    };
    let mut lines = vec![line];
    lines.extend(caller.notifications.iter().filter(|(m, _, _)| *m <= ended.at).map(|(m, _, _)| m.seq));
    Some((why, lines))
}

/// Whether a Vapi `endedReason` says the call ended because a transfer failed: one of the spec's
/// `call.in-progress.error-…transfer…` reasons (`error-transfer-failed`, `error-warm-transfer-max-duration`,
/// …), not a customer's hang-up around a transfer (`customer-ended-call-during-transfer`).
fn is_transfer_error(reason: &str) -> bool {
    reason.strip_prefix("call.in-progress.error-").is_some_and(|r| r.contains("transfer"))
}

/// `caller-never-dropped`.
pub fn caller_never_dropped(facts: &Facts, context: &Context) -> Vec<Violation> {
    let mut out = Vec::new();
    for caller in facts.caller_legs() {
        let Some(ended) = &caller.ended else { continue };
        if facts.first_human_bridge(caller.sid, context).is_some_and(|(m, _)| m < ended.at) {
            continue;
        }
        let Some((why, mut lines)) = blame(facts, caller) else { continue };
        lines.push(ended.at.seq);
        out.push(Violation::new(
            "caller-never-dropped",
            ended.at.at,
            format!(
                "caller {} ended at {} ({}, {}) before talking with a human specialist: {why}",
                caller.sid, ended.at.at, ended.status, ended.cause
            ),
            lines,
        ));
    }
    out
}

/// `isolation`.
pub fn isolation(facts: &Facts, context: &Context) -> Vec<Violation> {
    let mut out = Vec::new();
    // The target moves a caller only once one of that caller's sessions asked for a transfer.
    for r in facts.rest.iter().filter(|r| r.by_target() && (r.is_redirect() || r.is_hangup())) {
        let Some(call) = r.leg().filter(|c| facts.is_caller(*c)) else { continue };
        if facts.transfer_requests_of(call).any(|t| t.at < r.at) {
            continue;
        }
        out.push(Violation::new(
            "isolation",
            r.at.at,
            format!("the target {} caller {call} at {} though none of that caller's assistant sessions had asked for a transfer", if r.is_hangup() { "hung up" } else { "redirected" }, r.at.at),
            [r.at.seq],
        ));
    }
    // The target dials a specialist only once a caller who may reach that number asked for a transfer.
    for r in facts.rest.iter().filter(|r| r.by_target() && r.is_dial()) {
        let Some(to) = r.param("To").map(str::trim).filter(|to| context.allows(to)) else { continue };
        let asked = facts
            .transfer_requests
            .iter()
            .filter(|t| t.at < r.at)
            .any(|t| facts.leg(t.caller).is_some_and(|c| context.may_reach(&c.from, to)));
        if !asked {
            out.push(Violation::new(
                "isolation",
                r.at.at,
                format!("the target dialed {to} at {} though no caller whose transfers may reach it had asked for a transfer", r.at.at),
                [r.at.seq],
            ));
        }
    }
    // A caller shares a conference only with its own specialists.
    for conf in facts.conferences.values() {
        let mut reported = BTreeSet::new();
        for a in conf.stints.iter().filter(|s| facts.is_caller(s.call)) {
            for b in conf.stints.iter().filter(|s| s.call != a.call) {
                let other_conversation = match facts.leg(b.call).map(|l| l.role) {
                    Some(Role::Caller) => Some(b.call),
                    Some(Role::Specialist { caller }) if caller != a.call => Some(caller),
                    _ => None,
                };
                let Some(other) = other_conversation else { continue };
                let start = a.joined.max(b.joined);
                let end = [a.left, b.left].into_iter().flatten().min();
                if end.is_some_and(|e| e <= start)
                    || !reported.insert((a.call.min(b.call), a.call.max(b.call)))
                {
                    continue;
                }
                let what = if other == b.call {
                    format!("caller {}", b.call)
                } else {
                    format!("leg {} placed for caller {other}", b.call)
                };
                out.push(Violation::new(
                    "isolation",
                    start.at,
                    format!(
                        "caller {} was put in conference {} together with {what} at {}",
                        a.call, conf.sid, start.at
                    ),
                    [a.joined.seq, b.joined.seq],
                ));
            }
        }
    }
    out
}

/// The `<Number>`s a TwiML document dials.
fn dialed_numbers(document: &str) -> Vec<String> {
    let Ok(doc) = twiml::parse(document) else { return Vec::new() };
    let mut out = Vec::new();
    for verb in &doc.verbs {
        if let Verb::Dial(dial) = verb
            && let DialTarget::Endpoints(endpoints) = &dial.target
        {
            for e in endpoints {
                if let Endpoint::Number(n) = e {
                    out.push(n.number.trim().to_owned());
                }
            }
        }
    }
    out
}

/// `destination-allowlist`.
pub fn destination_allowlist(facts: &Facts, context: &Context) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut refuse = |number: &str, at: Moment, how: &str| {
        if !context.allows(number) {
            out.push(Violation::new(
                "destination-allowlist",
                at.at,
                format!(
                    "the target dialed {number}, which is not a configured specialist, at {} ({how})",
                    at.at
                ),
                [at.seq],
            ));
        }
    };
    for r in facts.rest.iter().filter(|r| r.by_target() && r.api == Party::Twilio) {
        if r.is_dial()
            && let Some(to) = r.param("To")
        {
            refuse(to.trim(), r.at, "a REST call create");
        }
        if let Some(doc) = r.param("Twiml") {
            for n in dialed_numbers(doc) {
                refuse(&n, r.at, "TwiML in a REST request");
            }
        }
    }
    for w in facts.webhooks.iter().filter(|w| w.to_target() && w.from == Party::Twilio && !w.is_forged()) {
        let Some(response) = w.response.as_ref().filter(|r| (200..300).contains(&r.status)) else { continue };
        for n in dialed_numbers(&response.body) {
            refuse(&n, w.at, "TwiML answering a webhook");
        }
    }
    out
}

/// `[start, end)` intervals of virtual time.
type Span = (SimInstant, SimInstant);

/// `spans` minus `holes`.
fn subtract(spans: Vec<Span>, holes: &[Span]) -> Vec<Span> {
    let mut out = spans;
    for &(hs, he) in holes {
        out = out
            .into_iter()
            .flat_map(|(s, e)| {
                if he <= s || hs >= e {
                    vec![(s, e)]
                } else {
                    [(s, hs), (he, e)].into_iter().filter(|(a, b)| a < b).collect()
                }
            })
            .collect();
    }
    out
}

/// The union of `spans`, sorted.
fn union(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort();
    let mut out: Vec<Span> = Vec::new();
    for (s, e) in spans {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// `hold-audio`.
pub fn hold_audio(facts: &Facts) -> Vec<Violation> {
    const LIMIT: SimDuration = SimDuration::from_secs(3);
    let mut out = Vec::new();
    let end = facts.end.at;
    for caller in facts.caller_legs() {
        let caller_end = caller.ended.as_ref().map_or(end, |e| e.at.at);
        let specialists = facts.specialists_of(caller.sid);
        let ringing = union(
            specialists.iter().map(|l| (l.created.at, l.pending_until().map_or(end, |m| m.at))).collect(),
        );
        let streams: Vec<Span> = facts
            .streams_on(caller.sid)
            .filter(|s| s.vapi_call.is_some())
            .filter_map(|s| Some((s.connected?.at, s.ended.as_ref().map_or(end, |(m, _, _)| m.at))))
            .collect();
        for (i, (m, hears)) in caller.audio.iter().enumerate() {
            if !hears.starts_with("silence") {
                continue;
            }
            let until = caller.audio.get(i + 1).map_or(caller_end, |(n, _)| n.at).min(caller_end);
            let during: Vec<Span> =
                ringing.iter().map(|&(s, e)| (s.max(m.at), e.min(until))).filter(|(s, e)| s < e).collect();
            let waiting = subtract(during, &streams);
            let Some(&(s, e)) = waiting.iter().find(|(s, e)| *e - *s > LIMIT) else { continue };
            let leg =
                specialists.iter().find(|l| l.created.at <= s && l.pending_until().is_none_or(|p| p.at > s));
            out.push(Violation::new(
                "hold-audio",
                s + LIMIT,
                format!(
                    "caller {} heard {hears} for {} from {s} while specialist leg {} rang",
                    caller.sid,
                    secs(e - s),
                    leg.map_or_else(|| "?".to_owned(), |l| l.sid.to_string())
                ),
                [m.seq, leg.map_or(0, |l| l.created.seq)],
            ));
        }
    }
    out
}

/// `context-carryover`.
pub fn context_carryover(facts: &Facts) -> Vec<Violation> {
    let mut out = Vec::new();
    for caller in facts.caller_legs() {
        let sessions = facts.sessions_of(caller.sid);
        for (i, session) in sessions.iter().enumerate().skip(1) {
            let Some(create) =
                session.create_request.and_then(|r| facts.rest.get(r)).filter(|r| r.by_target())
            else {
                continue;
            };
            let earlier: Vec<&str> =
                caller.says.iter().filter(|(m, _)| *m < create.at).map(|(_, t)| t.as_str()).collect();
            if earlier.is_empty() || sessions[..i].is_empty() {
                continue;
            }
            let carried = |body: &str| earlier.iter().any(|u| wire::mentions(body, u));
            let later =
                facts.rest.iter().filter(|r| r.by_target() && r.api == Party::Vapi && r.at > create.at).any(
                    |r| {
                        let about = match &r.op {
                            RestOp::VapiControl(id) | RestOp::VapiUpdateCall(id) => id == &session.id,
                            _ => r.url.contains(&session.id),
                        };
                        about && carried(&r.body)
                    },
                );
            if carried(&create.body) || later {
                continue;
            }
            out.push(Violation::new(
                "context-carryover",
                create.at.at,
                format!(
                    "assistant session {} created for caller {} at {} carries none of the caller's earlier words (\"{}\")",
                    session.id,
                    caller.sid,
                    create.at.at,
                    earlier.join("\", \"")
                ),
                [create.at.seq],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_vapi_transfer_errors_are_the_transfer_ending_the_call() {
        for reason in
            ["call.in-progress.error-transfer-failed", "call.in-progress.error-warm-transfer-max-duration"]
        {
            assert!(super::is_transfer_error(reason), "{reason}");
        }
        for reason in ["customer-ended-call-during-transfer", "silence-timed-out", "assistant-forwarded-call"]
        {
            assert!(!super::is_transfer_error(reason), "{reason}");
        }
    }
}
