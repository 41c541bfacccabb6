//! The rules about how the target answers webhooks: forgeries refused (`authentic-webhooks`), tool calls
//! answered (`tool-response`), TwiML valid and in time (`valid-twiml`), redeliveries harmless
//! (`idempotent-webhooks`) and late callbacks not acted on as news (`order-tolerant`).
//!
//! An answer is judged as the target gave it: where the run's fault plan made what the sender got (slow,
//! a 500, unparsable TwiML), the rules read the target's own answer, which the journal keeps.

use std::collections::BTreeMap;

use ringback_sim::ids::CallSid;
use ringback_sim::journal::Party;
use ringback_sim::time::SimDuration;
use ringback_sim::twilio::twiml;
use serde_json::Value;

use super::facts::{Facts, RestAction, RestOp, Webhook};
use super::{Context, Violation, secs, wire};

/// Twilio's TwiML fetch timeout.
const TWIML_TIMEOUT: SimDuration = SimDuration::from_secs(15);

/// `authentic-webhooks`.
pub fn authentic_webhooks(facts: &Facts) -> Vec<Violation> {
    facts
        .webhooks
        .iter()
        .filter(|w| w.to_target() && w.is_forged())
        .filter_map(|w| {
            let answer = match (&w.response, &w.error) {
                (Some(r), _) if (400..500).contains(&r.status) => return None,
                // Nothing listened (the target was down): there was nothing to refuse it with.
                (None, Some(e)) if e.starts_with("connection refused") => return None,
                (Some(r), _) => format!("answered {}", r.status),
                (None, Some(e)) => format!("not answered ({e})"),
                (None, None) => "not answered".to_owned(),
            };
            Some(Violation::new(
                "authentic-webhooks",
                w.at.at,
                format!(
                    "a forged webhook ({}) to {} at {} was {answer}; it must be refused with a 4xx",
                    w.fault.as_deref().unwrap_or_default(),
                    w.url,
                    w.at.at
                ),
                [w.at.seq],
            ))
        })
        .collect()
}

/// What is wrong with the target's own answer to a webhook, given its deadline; `None` when it came in
/// time with a 2xx.
fn late_or_failed(w: &Webhook, deadline: SimDuration) -> Option<String> {
    let Some(response) = w.own_response() else {
        return Some(match &w.error {
            Some(e) => format!("got no answer ({e})"),
            None => "got no answer".to_owned(),
        });
    };
    if let Some(took) = w.own_took().filter(|t| *t > deadline) {
        return Some(format!("was answered after {}, beyond {}", secs(took), secs(deadline)));
    }
    (!(200..300).contains(&response.status)).then(|| format!("was answered HTTP {}", response.status))
}

/// `tool-response`.
pub fn tool_response(facts: &Facts, context: &Context) -> Vec<Violation> {
    let timeout = SimDuration::from_secs_f64(context.tool_timeout_s);
    let mut out = Vec::new();
    for w in facts.webhooks.iter().filter(|w| w.from == Party::Vapi && w.to == Party::Target) {
        if w.is_forged() || w.is_dropped() || w.message_type() != Some("tool-calls") {
            continue;
        }
        let ids = w.tool_call_ids();
        let problem = late_or_failed(w, timeout).or_else(|| {
            let body = w.own_response().map(|r| r.body.as_str()).unwrap_or_default();
            let results = wire::json(body).and_then(|v| v.get("results").and_then(Value::as_array).cloned());
            let Some(results) = results else {
                return Some("was answered without a `results` array".to_owned());
            };
            let answered: Vec<&str> = results.iter().filter_map(|r| r.get("toolCallId")?.as_str()).collect();
            let missing: Vec<&str> =
                ids.iter().map(String::as_str).filter(|id| !answered.contains(id)).collect();
            (!missing.is_empty()).then(|| format!("has no result for {}", missing.join(", ")))
        });
        let Some(problem) = problem else { continue };
        let at = match w.own_took() {
            Some(took) if took <= timeout => w.at.at + took,
            _ => w.at.at + timeout,
        };
        out.push(Violation::new(
            "tool-response",
            at,
            format!(
                "the tool-calls message from session {} at {} ({}) {problem}",
                w.vapi_call().unwrap_or("?"),
                w.at.at,
                ids.join(", ")
            ),
            [w.at.seq],
        ));
    }
    out
}

/// Whether `w` fetched a conference `waitUrl` or a participant's `holdUrl`, where audio is an answer.
fn is_wait_fetch(facts: &Facts, w: &Webhook) -> bool {
    let Some(leg) = w.call_sid().and_then(|c| facts.leg(c)) else { return false };
    leg.audio
        .iter()
        .filter(|(m, _)| *m < w.at)
        .any(|(_, h)| h.strip_prefix("wait ").or_else(|| h.strip_prefix("hold ")) == Some(w.url.as_str()))
}

/// `valid-twiml`.
pub fn valid_twiml(facts: &Facts) -> Vec<Violation> {
    let mut out = Vec::new();
    for w in facts.webhooks.iter().filter(|w| w.from == Party::Twilio && w.to_target() && w.expects_twiml) {
        if w.is_forged() || w.is_dropped() {
            continue;
        }
        let problem = late_or_failed(w, TWIML_TIMEOUT).or_else(|| {
            let response = w.own_response()?;
            let audio = response.content_type.as_deref().is_some_and(|t| t.trim().starts_with("audio/"));
            if audio {
                return (!is_wait_fetch(facts, w))
                    .then(|| "was answered with audio where TwiML was expected".to_owned());
            }
            twiml::parse(&response.body).err().map(|e| format!("was answered with TwiML Twilio refuses: {e}"))
        });
        let Some(problem) = problem else { continue };
        let at = match w.own_took() {
            Some(took) if took <= TWIML_TIMEOUT => w.at.at + took,
            _ => w.at.at + TWIML_TIMEOUT,
        };
        out.push(Violation::new(
            "valid-twiml",
            at,
            format!(
                "the webhook to {} at {} for call {} {problem}",
                w.url,
                w.at.at,
                w.param("CallSid").unwrap_or("?")
            ),
            [w.at.seq],
        ));
    }
    out
}

/// `idempotent-webhooks`.
pub fn idempotent_webhooks(facts: &Facts) -> Vec<Violation> {
    let mut out = Vec::new();
    // Only conversations that were sent a redelivered webhook are judged.
    let duplicated: Vec<CallSid> = facts
        .webhooks
        .iter()
        .filter(|w| w.to_target() && w.is_duplicate())
        .filter_map(|w| facts.conversation_of_webhook(w))
        .collect();
    for caller in facts.caller_legs().filter(|c| duplicated.contains(&c.sid)) {
        let mine = |r: &&RestAction| r.by_target() && facts.conversation_of_rest(r) == Some(caller.sid);
        // A second dial of the same number while the first leg is still up.
        let mut by_number: BTreeMap<&str, Vec<&RestAction>> = BTreeMap::new();
        for r in facts.rest.iter().filter(mine).filter(|r| r.is_dial() && r.succeeded()) {
            if let Some(to) = r.param("To") {
                by_number.entry(to.trim()).or_default().push(r);
            }
        }
        for (to, dials) in &by_number {
            for pair in dials.windows(2) {
                let first_ended = pair[0]
                    .created_leg()
                    .and_then(|l| facts.leg(l))
                    .and_then(|l| l.ended.as_ref())
                    .is_some_and(|e| e.at < pair[1].at);
                if !first_ended {
                    out.push(Violation::new(
                        "idempotent-webhooks",
                        pair[1].at.at,
                        format!(
                            "the target dialed {to} for caller {} a second time at {} while the first attempt (at {}) was still under way",
                            caller.sid, pair[1].at.at, pair[0].at.at
                        ),
                        [pair[0].at.seq, pair[1].at.seq],
                    ));
                }
            }
        }
        // A second assistant session with no failed transfer in between.
        let creates: Vec<&RestAction> = facts
            .rest
            .iter()
            .filter(mine)
            .filter(|r| r.op == RestOp::VapiCreateCall && r.succeeded())
            .collect();
        let specialists = facts.specialists_of(caller.sid);
        for pair in creates.windows(2) {
            let failed_between = specialists.iter().any(|l| {
                let ends = [l.ended.as_ref().map(|e| e.at), l.detection.as_ref().map(|(m, _)| *m)];
                ends.into_iter().flatten().any(|m| m > pair[0].at && m < pair[1].at)
            });
            if !failed_between {
                out.push(Violation::new(
                    "idempotent-webhooks",
                    pair[1].at.at,
                    format!(
                        "the target created a second assistant session for caller {} at {} with no failed transfer since the one at {}",
                        caller.sid, pair[1].at.at, pair[0].at.at
                    ),
                    [pair[0].at.seq, pair[1].at.seq],
                ));
            }
        }
        // The same redirect twice in a row.
        let redirects: Vec<&RestAction> = facts
            .rest
            .iter()
            .filter(|r| r.by_target() && r.leg() == Some(caller.sid) && r.is_redirect())
            .collect();
        for pair in redirects.windows(2) {
            let place =
                |r: &RestAction| (r.param("Url").map(str::to_owned), r.param("Twiml").map(str::to_owned));
            if place(pair[0]) == place(pair[1]) {
                out.push(Violation::new(
                    "idempotent-webhooks",
                    pair[1].at.at,
                    format!(
                        "the target redirected caller {} to the same place twice, at {} and {}",
                        caller.sid, pair[0].at.at, pair[1].at.at
                    ),
                    [pair[0].at.seq, pair[1].at.seq],
                ));
            }
        }
    }
    out
}

/// `order-tolerant`.
pub fn order_tolerant(facts: &Facts) -> Vec<Violation> {
    const WINDOW: SimDuration = SimDuration::from_secs(2);
    let mut out = Vec::new();
    // A webhook is late when it was delayed, or when an earlier one for the same leg and URL path
    // carried a higher SequenceNumber: one pass, keeping the highest number seen per leg and path.
    let mut highest: BTreeMap<(Option<CallSid>, &str), u64> = BTreeMap::new();
    let mut late: Vec<&Webhook> = Vec::new();
    for w in facts.webhooks.iter().filter(|w| w.trustworthy()) {
        let key = (w.call_sid(), wire::path_of(&w.url));
        let sequence = w.sequence_number();
        let overtaken = sequence.is_some_and(|n| highest.get(&key).is_some_and(|&m| m > n));
        if w.from == Party::Twilio && w.to_target() && (w.is_delayed() || overtaken) {
            late.push(w);
        }
        if let Some(n) = sequence {
            let seen = highest.entry(key).or_insert(n);
            *seen = (*seen).max(n);
        }
    }
    for w in late {
        let Some(caller) = facts.conversation_of_webhook(w) else { continue };
        let fresh_since = |r: &RestAction| {
            facts.webhooks.iter().any(|f| {
                f.at > w.at
                    && f.at < r.at
                    && f.trustworthy()
                    && !f.is_delayed()
                    && f.to_target()
                    && facts.conversation_of_webhook(f) == Some(caller)
            })
        };
        let streaming = |r: &RestAction| {
            facts.streams_on(caller).any(|s| s.vapi_call.is_some() && s.is_connected_at(r.at))
        };
        let action = facts
            .rest
            .iter()
            .filter(|r| r.by_target() && r.at > w.at && r.at.at <= w.at.at + WINDOW)
            .find_map(|r| {
                if facts.conversation_of_rest(r) != Some(caller) || fresh_since(r) {
                    return None;
                }
                if r.leg() == Some(caller) && r.is_redirect() && streaming(r) {
                    return Some((r, "redirected the caller, who was already with an assistant"));
                }
                if r.op == RestOp::VapiCreateCall && streaming(r) {
                    return Some((r, "created another assistant session for a caller already with one"));
                }
                let to = r.param("To").map(str::trim);
                let redial = r.is_dial()
                    && facts
                        .specialists_of(caller)
                        .iter()
                        .any(|l| Some(l.to.as_str()) == to && l.is_up_at(r.at) && l.created < r.at);
                redial.then_some((r, "dialed a number whose leg for this caller was still up"))
            });
        let Some((r, what)) = action else { continue };
        out.push(Violation::new(
            "order-tolerant",
            r.at.at,
            format!(
                "after a late status callback for {} ({}) at {}, the target {what} at {}",
                w.param("CallSid").unwrap_or("?"),
                w.param("CallStatus").unwrap_or("?"),
                w.at.at,
                r.at.at
            ),
            [w.at.seq, r.at.seq],
        ));
    }
    out
}
