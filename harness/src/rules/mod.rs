//! The conformance rules (SPEC §5), judged from a run's journal alone.
//!
//! Start at [`evaluate`]. The journal is first read into [`facts::Facts`] (legs, conferences, streams,
//! assistant sessions, the target's REST requests, the webhooks it was sent); each rule is then a small
//! function over those facts and the run's [`Context`] (what the scenario says about the world). [`RULES`]
//! lists the rules in the SPEC's order, each with how ringback judges it, in plain words.
//!
//! A run is judged as it stands at its last journal line: what is still pending then (a leg ringing, a
//! caller on hold) is taken to stay that way, so the harness runs every scenario until the world is quiet.

mod catalog;
mod conversation;
pub mod facts;
#[cfg(test)]
mod script;
#[cfg(test)]
mod tests;
mod transfer;
mod webhooks;
pub mod wire;

use ringback_sim::journal::Journal;
use ringback_sim::time::SimInstant;

pub use catalog::RULES;

use facts::Facts;

/// How binding a rule is: a broken MUST fails the run, a broken SHOULD is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Must,
    Should,
}

impl Level {
    /// `MUST` or `SHOULD`, as the SPEC writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        }
    }
}

/// One conformance rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rule {
    /// The stable id (a contract: reports, JUnit and scripts use it).
    pub id: &'static str,
    pub level: Level,
    /// The deadline in virtual seconds, where the rule has one (`tool-response` uses the run's
    /// [`Context::tool_timeout_s`]; this is Vapi's default).
    pub deadline_s: Option<f64>,
    /// What the orchestrator must do, as the SPEC says it.
    pub summary: &'static str,
    /// How ringback judges it from the journal, in plain words.
    pub explanation: &'static str,
}

/// The rule with id `id`.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// What the harness knows about a run besides the journal (all of it from the scenario).
#[derive(Clone, Debug, PartialEq)]
pub struct Context {
    /// The Twilio numbers callers dial; an inbound leg to one of them is a caller. When empty, every
    /// inbound leg is a caller.
    pub service_numbers: Vec<String>,
    /// The callers the scenario places, by number.
    pub callers: Vec<CallerContext>,
    /// Every configured specialist number.
    pub allowlist: Vec<String>,
    /// Numbers a voicemail machine or a fax answers in this world.
    pub machines: Vec<String>,
    /// The Vapi server timeout for tool calls (`server.timeoutSeconds`, 20 by default).
    pub tool_timeout_s: f64,
    /// The target is the fake Vapi itself (`vapi-native`): what it asks of the fake Twilio and what the
    /// fake Twilio tells it are the target's requests and webhooks.
    pub vapi_native: bool,
}

impl Default for Context {
    fn default() -> Context {
        Context {
            service_numbers: Vec::new(),
            callers: Vec::new(),
            allowlist: Vec::new(),
            machines: Vec::new(),
            tool_timeout_s: 20.0,
            vapi_native: false,
        }
    }
}

impl Context {
    /// Whether a transfer of the caller calling from `caller_number` may reach `number`: it is one of
    /// that caller's specialists, or, for a caller the context does not list, on the allowlist.
    pub fn may_reach(&self, caller_number: &str, number: &str) -> bool {
        let number = number.trim();
        match self.callers.iter().find(|c| c.number == caller_number) {
            Some(c) => c.specialists.iter().any(|s| s == number),
            None => self.allows(number),
        }
    }

    /// Whether `number` is on the allowlist.
    pub fn allows(&self, number: &str) -> bool {
        self.allowlist.iter().any(|s| s == number.trim())
    }
}

/// One caller of the scenario.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallerContext {
    /// The number the caller calls from.
    pub number: String,
    /// The specialist numbers this caller's transfers may reach.
    pub specialists: Vec<String>,
}

/// A rule broken in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule's id.
    pub rule: &'static str,
    /// When it broke (for a missed deadline: the deadline).
    pub at: SimInstant,
    /// What happened, naming calls and times.
    pub message: String,
    /// The journal lines (sequence numbers) that show it, ascending.
    pub lines: Vec<u64>,
}

impl Violation {
    fn new(
        rule: &'static str,
        at: SimInstant,
        message: String,
        lines: impl IntoIterator<Item = u64>,
    ) -> Self {
        let mut lines: Vec<u64> = lines.into_iter().filter(|l| *l > 0).collect();
        lines.sort_unstable();
        lines.dedup();
        Violation { rule, at, message, lines }
    }
}

/// Judges a run by every rule. Violations come ordered by time, then by the rules' order.
pub fn evaluate(journal: &Journal, context: &Context) -> Vec<Violation> {
    evaluate_facts(&Facts::new(journal, context), context)
}

/// Why the target, not the caller or the assistant, ended `caller`'s leg (the judgement behind
/// `caller-never-dropped`, whether or not the caller had talked with a specialist by then).
pub fn dropped_by_target(facts: &Facts, caller: &facts::Leg) -> Option<String> {
    conversation::blame(facts, caller).map(|(why, _)| why)
}

/// The same, over facts already read from the journal.
pub fn evaluate_facts(facts: &Facts, context: &Context) -> Vec<Violation> {
    let mut out: Vec<Violation> = RULES.iter().flat_map(|r| judge(r.id, facts, context)).collect();
    sort(&mut out);
    out
}

/// Judges a run by one rule (nothing for an unknown id), ordered by time.
pub fn evaluate_rule(rule: &str, journal: &Journal, context: &Context) -> Vec<Violation> {
    let facts = Facts::new(journal, context);
    let mut out = judge(rule, &facts, context);
    sort(&mut out);
    out
}

fn sort(violations: &mut [Violation]) {
    let position = |id: &str| RULES.iter().position(|r| r.id == id).unwrap_or(usize::MAX);
    violations.sort_by(|a, b| {
        (a.at, position(a.rule), &a.lines, &a.message).cmp(&(b.at, position(b.rule), &b.lines, &b.message))
    });
}

fn judge(rule: &str, facts: &Facts, context: &Context) -> Vec<Violation> {
    match rule {
        "return-on-failure" => transfer::return_on_failure(facts, context),
        "bridge-on-answer" => transfer::bridge_on_answer(facts, context),
        "no-voicemail-bridge" => transfer::no_voicemail_bridge(facts, context),
        "caller-never-dropped" => conversation::caller_never_dropped(facts, context),
        "no-orphans" => transfer::no_orphans(facts, context),
        "isolation" => conversation::isolation(facts, context),
        "authentic-webhooks" => webhooks::authentic_webhooks(facts),
        "tool-response" => webhooks::tool_response(facts, context),
        "valid-twiml" => webhooks::valid_twiml(facts),
        "idempotent-webhooks" => webhooks::idempotent_webhooks(facts),
        "destination-allowlist" => conversation::destination_allowlist(facts, context),
        "order-tolerant" => webhooks::order_tolerant(facts),
        "hold-audio" => conversation::hold_audio(facts),
        "context-carryover" => conversation::context_carryover(facts),
        _ => Vec::new(),
    }
}

/// Seconds as the rules' messages write them.
fn secs(d: ringback_sim::time::SimDuration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
