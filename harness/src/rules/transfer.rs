//! The rules about the transfer itself: the caller comes back when it fails (`return-on-failure`), is
//! bridged when a person answers (`bridge-on-answer`) and never with a machine (`no-voicemail-bridge`), and
//! nothing is left behind when the caller goes (`no-orphans`).

use std::collections::BTreeSet;

use ringback_sim::ids::CallSid;
use ringback_sim::time::SimDuration;

use super::facts::{FINAL_STATUSES, Facts, Leg, Moment, RestOp, is_machine_answer};
use super::{Context, Violation, secs, wire};

/// The SPEC's deadline for returning, bridging and cleaning up.
const FIVE_S: SimDuration = SimDuration::from_secs(5);

/// How and when a specialist attempt failed.
#[derive(Debug)]
struct Failure {
    at: Moment,
    what: String,
}

/// Whether the attempt `leg` for `caller` failed: it ended busy/no-answer/failed/canceled, a machine or
/// fax answered it, it completed without ever being bridged, or its person hung up within 5 s.
fn failure(facts: &Facts, leg: &Leg, caller: CallSid, context: &Context) -> Option<Failure> {
    if let Some((at, by)) = &leg.detection
        && is_machine_answer(by)
    {
        return Some(Failure { at: *at, what: format!("answered by {by}") });
    }
    if let Some(answered) = leg.answered
        && leg.detection.is_none()
        && context.machines.contains(&leg.to)
    {
        return Some(Failure { at: answered, what: "answered by a machine (no detection asked)".into() });
    }
    let ended = leg.ended.as_ref()?;
    if ended.status != "completed" {
        return Some(Failure { at: ended.at, what: ended.status.clone() });
    }
    let bridged = !facts.bridges(caller, leg.sid).is_empty();
    match leg.answered {
        _ if !bridged => Some(Failure { at: ended.at, what: "ended without being bridged".into() }),
        Some(answered) if ended.at.at - answered.at <= FIVE_S => Some(Failure {
            at: ended.at,
            what: format!("hung up {} after answering", secs(ended.at.at - answered.at)),
        }),
        _ => None,
    }
}

/// The first thing the target was told that shows the failure: a genuine webhook about the leg with a
/// final status (or `AnsweredBy` a machine), or a fetch of the leg that answered one.
fn revealed(facts: &Facts, leg: &Leg, failure: &Failure) -> Option<Moment> {
    let sid = leg.sid.to_string();
    let hook = facts
        .webhooks
        .iter()
        .filter(|w| w.to_target() && w.trustworthy() && w.at >= failure.at)
        .find(|w| {
            let about_leg = w.param("CallSid") == Some(sid.as_str());
            let final_status = w.param("CallStatus").is_some_and(|s| FINAL_STATUSES.contains(&s));
            let machine = w.param("AnsweredBy").is_some_and(is_machine_answer);
            let dial_action =
                w.param("DialCallSid") == Some(sid.as_str()) && w.param("DialCallStatus").is_some();
            (about_leg && (final_status || machine)) || dial_action
        })
        .map(|w| w.at);
    let fetch = facts
        .rest
        .iter()
        .filter(|r| {
            r.by_target() && r.at >= failure.at && matches!(r.op, RestOp::FetchCall(s) if s == leg.sid)
        })
        .find(|r| {
            let status = r.response.as_ref().and_then(|v| wire::json_str(v, "/status"));
            let by = r.response.as_ref().and_then(|v| wire::json_str(v, "/answered_by"));
            status.is_some_and(|s| FINAL_STATUSES.contains(&s)) || by.is_some_and(is_machine_answer)
        })
        .map(|r| r.at);
    [hook, fetch].into_iter().flatten().min()
}

/// `return-on-failure`.
pub fn return_on_failure(facts: &Facts, context: &Context) -> Vec<Violation> {
    let mut out = Vec::new();
    // The streams that brought a caller back, each judged once for "stays there".
    let mut returns: BTreeSet<usize> = BTreeSet::new();
    for caller in facts.caller_legs() {
        let specialists = facts.specialists_of(caller.sid);
        for leg in &specialists {
            let Some(failure) = failure(facts, leg, caller.sid, context) else { continue };
            let reveal = revealed(facts, leg, &failure);
            let Some(from) = reveal else {
                // A lost callback: nothing told the target, so no deadline runs (SPEC: "within 5 s of the
                // first webhook that reveals the failure"). It is charged only if the caller is still
                // waiting, never brought back, when the run ends.
                let back_later = facts
                    .streams
                    .iter()
                    .any(|s| s.call == caller.sid && s.connected.is_some_and(|c| c > failure.at));
                let next_attempt = specialists.iter().any(|l| l.created > leg.created);
                if caller.ended.is_some() || back_later || next_attempt {
                    continue;
                }
                out.push(Violation::new(
                    "return-on-failure",
                    facts.end.at,
                    format!(
                        "the transfer of caller {} to {} (leg {}) failed at {}: {}; no webhook told the target and it never asked Twilio; when the run ended at {} the caller was still waiting, never brought back",
                        caller.sid, leg.to, leg.sid, failure.at.at, failure.what, facts.end.at
                    ),
                    [leg.created.seq, failure.at.seq, facts.end.seq],
                ));
                continue;
            };
            if !caller.is_up_at(from) {
                continue;
            }
            let deadline = from.plus(FIVE_S);
            if caller.ended.as_ref().is_some_and(|e| e.at.at <= deadline) {
                continue;
            }
            let back = facts.streams.iter().position(|s| {
                s.call == caller.sid
                    && s.connected.is_some_and(|c| c.at <= deadline)
                    && (s.is_connected_at(from) || s.connected.is_some_and(|c| c > leg.created))
                    && s.vapi_call
                        .as_ref()
                        .and_then(|id| facts.vapi_calls.get(id))
                        .is_some_and(|v| v.in_progress_from(from))
            });
            if let Some(stream) = back {
                returns.insert(stream);
                continue;
            }
            let next_attempt =
                specialists.iter().any(|l| l.created > leg.created && l.created.at <= deadline);
            let bridged_elsewhere = specialists
                .iter()
                .filter(|l| l.sid != leg.sid && l.human_answer(context).is_some())
                .any(|l| {
                    facts
                        .bridges(caller.sid, l.sid)
                        .iter()
                        .any(|(s, e)| s.at <= deadline && e.is_none_or(|e| e >= from))
                });
            if next_attempt || bridged_elsewhere {
                continue;
            }
            let told = format!("the target heard of it at {} (#{})", from.at, from.seq);
            out.push(Violation::new(
                "return-on-failure",
                deadline,
                format!(
                    "the transfer of caller {} to {} (leg {}) failed at {}: {}; {told}; by {deadline} the caller, still on the line, was neither back with an assistant nor on the way to another specialist",
                    caller.sid, leg.to, leg.sid, failure.at.at, failure.what
                ),
                [leg.created.seq, failure.at.seq, from.seq],
            ));
        }
    }
    for index in returns {
        let Some(stream) = facts.streams.get(index) else { continue };
        let Some(connected) = stream.connected else { continue };
        let until = stream.ended.as_ref().map(|(m, _, _)| *m);
        let moved = facts.rest.iter().find(|r| {
            r.by_target()
                && r.leg() == Some(stream.call)
                && (r.is_redirect() || r.is_hangup())
                && r.at > connected
                && until.is_none_or(|u| r.at < u)
                && !facts.transfer_requests_of(stream.call).any(|t| t.at > connected && t.at < r.at)
        });
        if let Some(r) = moved {
            let what = if r.is_hangup() { "hung up" } else { "redirected" };
            out.push(Violation::new(
                "return-on-failure",
                r.at.at,
                format!(
                    "caller {} came back to assistant session {} at {}, but the target {what} the caller at {} without that session asking for a transfer",
                    stream.call,
                    stream.vapi_call.as_deref().unwrap_or("?"),
                    connected.at,
                    r.at.at
                ),
                [connected.seq, r.at.seq],
            ));
        }
    }
    out
}

/// `bridge-on-answer`.
pub fn bridge_on_answer(facts: &Facts, context: &Context) -> Vec<Violation> {
    let mut out = Vec::new();
    for caller in facts.caller_legs() {
        let specialists = facts.specialists_of(caller.sid);
        for leg in &specialists {
            if leg.is_machine(context) {
                continue;
            }
            let Some(person) = leg.human_answer(context) else { continue };
            if !caller.is_up_at(person) {
                continue;
            }
            let deadline = person.plus(FIVE_S);
            let bridged = |other: &Leg| {
                facts.bridges(caller.sid, other.sid).iter().any(|(s, e)| {
                    s.at <= deadline && e.is_none_or(|e| e.at >= deadline || other.sid == leg.sid)
                })
            };
            if bridged(leg) {
                continue;
            }
            let caller_left = caller.ended.as_ref().is_some_and(|e| e.at.at <= deadline);
            let specialist_left =
                leg.ended.as_ref().is_some_and(|e| e.at.at <= deadline && e.cause.contains("far end"));
            let with_another = specialists
                .iter()
                .any(|l| l.sid != leg.sid && l.human_answer(context).is_some() && bridged(l));
            if caller_left || specialist_left || with_another {
                continue;
            }
            out.push(Violation::new(
                "bridge-on-answer",
                deadline,
                format!(
                    "a person answered specialist leg {} ({}) for caller {} at {}, but by {deadline} the two were not bridged",
                    leg.sid, leg.to, caller.sid, person.at
                ),
                [leg.created.seq, leg.answered.map_or(0, |m| m.seq), person.seq],
            ));
        }
    }
    out
}

/// `no-voicemail-bridge`.
pub fn no_voicemail_bridge(facts: &Facts, context: &Context) -> Vec<Violation> {
    let mut out = Vec::new();
    for caller in facts.caller_legs() {
        for leg in facts.legs.values().filter(|l| l.sid != caller.sid && l.is_machine(context)) {
            let Some((start, _)) = facts.bridges(caller.sid, leg.sid).into_iter().next() else { continue };
            let by = match &leg.detection {
                Some((_, by)) if is_machine_answer(by) => format!("detection said {by}"),
                _ => "a machine answers that number".to_owned(),
            };
            out.push(Violation::new(
                "no-voicemail-bridge",
                start.at,
                format!(
                    "caller {} was bridged at {} with leg {} ({}), which a machine answered ({by})",
                    caller.sid, start.at, leg.sid, leg.to
                ),
                [leg.created.seq, leg.detection.as_ref().map_or(0, |(m, _)| m.seq), start.seq],
            ));
        }
    }
    out
}

/// `no-orphans`.
pub fn no_orphans(facts: &Facts, _context: &Context) -> Vec<Violation> {
    let mut out = Vec::new();
    for caller in facts.caller_legs() {
        let Some(ended) = &caller.ended else { continue };
        let deadline = ended.at.plus(FIVE_S);
        let up_at_deadline = |m: Option<Moment>| m.is_none_or(|m| m.at > deadline);
        let mut left = Vec::new();
        let mut lines = vec![ended.at.seq];
        for leg in facts.specialists_of(caller.sid) {
            if up_at_deadline(leg.ended.as_ref().map(|e| e.at)) {
                let state = leg.changes.last().map_or("queued", |c| c.to.as_str());
                left.push(format!("specialist leg {} ({}, {state})", leg.sid, leg.to));
                lines.push(leg.created.seq);
            }
        }
        let mut seen = BTreeSet::new();
        for (conf, _) in facts.stints_of(caller.sid) {
            if !seen.insert(conf.sid) || !up_at_deadline(conf.ended.as_ref().map(|(m, _)| *m)) {
                continue;
            }
            let inside: Vec<String> = conf
                .stints
                .iter()
                .filter(|s| s.joined.at <= deadline && up_at_deadline(s.left))
                .map(|s| s.call.to_string())
                .collect();
            if !inside.is_empty() {
                left.push(format!("conference {} with {}", conf.sid, inside.join(", ")));
                lines.push(conf.created.seq);
            }
        }
        if left.is_empty() {
            continue;
        }
        out.push(Violation::new(
            "no-orphans",
            deadline,
            format!(
                "caller {} left at {}; at {deadline} there were still {}",
                caller.sid,
                ended.at.at,
                left.join("; ")
            ),
            lines,
        ));
    }
    out
}
