//! Runs one scenario against the in-process reference orchestrator, in virtual time, and reads from the
//! journal what became of each caller.

use std::time::Duration;

use ringback_orchestrator::config::Config;
use ringback_scenarios::{CallerPlan, Expect, Plan, PlannedHangUp};
use ringback_sim::ids::CallSid;
use ringback_sim::journal::Journal;
use ringback_sim::runtime::SharedSim;
use ringback_sim::time::{SimDuration, SimInstant};
use ringback_sim::watch::Watch;
use ringback_sim::world::World;

use crate::reference::{ORCHESTRATOR_URL, Reference};
use crate::rules::facts::Facts;
use crate::rules::{CallerContext, Context, Violation};

/// What became of one caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Talking with a specialist when last seen.
    Bridged,
    /// Back with an assistant after a transfer.
    Returned,
    /// Never transferred: no specialist was dialed for them.
    Refused,
    /// Hung up.
    CallerLeft,
    /// Twilio ended the call with its application error.
    Dropped,
    /// With the assistant, a transfer under way or undecided.
    Other,
    /// The caller's call never reached the service.
    NoCall,
}

impl Observed {
    pub fn as_str(self) -> &'static str {
        match self {
            Observed::Bridged => "bridged",
            Observed::Returned => "returned",
            Observed::Refused => "refused",
            Observed::CallerLeft => "caller-left",
            Observed::Dropped => "dropped",
            Observed::Other => "still on a transfer",
            Observed::NoCall => "no call",
        }
    }

    fn satisfies(self, expect: Expect) -> bool {
        matches!(
            (expect, self),
            (Expect::Bridged, Observed::Bridged)
                | (Expect::Returned, Observed::Returned)
                | (Expect::Refused, Observed::Refused)
                | (Expect::CallerLeft, Observed::CallerLeft)
                | (Expect::Dropped, Observed::Dropped)
        )
    }
}

/// One caller's expected and observed outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerOutcome {
    pub number: String,
    pub call: Option<CallSid>,
    pub expected: Expect,
    pub observed: Observed,
}

impl CallerOutcome {
    pub fn ok(&self) -> bool {
        self.observed.satisfies(self.expected)
    }
}

/// A finished run of one scenario.
#[derive(Debug)]
pub struct Run {
    pub journal: Journal,
    pub callers: Vec<CallerOutcome>,
    /// The broken rules that apply to the scenario, in journal order.
    pub violations: Vec<Violation>,
}

/// The reference orchestrator configured for `plan`.
pub fn reference_config(plan: &Plan) -> Config {
    use ringback_scenarios::plan as p;
    let entries: Vec<String> = plan.specialist_entries();
    let entries: Vec<&str> = entries.iter().map(String::as_str).collect();
    let mut config = Config::for_tests(ORCHESTRATOR_URL, &entries);
    config.twilio_account_sid = p::ACCOUNT.to_string();
    config.twilio_auth_token = p::AUTH_TOKEN.to_owned().into();
    config.vapi_api_key = p::VAPI_API_KEY.to_owned().into();
    config.vapi_assistant_id = p::ASSISTANT_ID.to_owned();
    config.vapi_phone_number_id = p::PHONE_NUMBER_ID.to_owned();
    config.vapi_webhook_secret = Some(p::WEBHOOK_SECRET.to_owned().into());
    config.transfer_tool = p::TRANSFER_TOOL.to_owned();
    config.ring_timeout_s = plan.orchestrator.ring_timeout_s;
    config.machine_detection = plan.orchestrator.machine_detection.clone();
    config
}

/// Runs `plan` against the reference orchestrator on a fresh single-threaded runtime with a paused clock:
/// no sockets, no sleeping, the same journal for the same seed.
pub fn run_reference(plan: &Plan) -> Result<Run, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(run_reference_async(plan))
}

async fn run_reference_async(plan: &Plan) -> Result<Run, String> {
    let world = World::new(plan.world_config(ORCHESTRATOR_URL))?;
    let reference = std::sync::Arc::new(Reference::start(world, reference_config(plan)));
    let sim = reference.sim.clone();
    for caller in &plan.callers {
        spawn_caller(&reference, caller.clone());
    }
    if let Some(restart) = plan.restart.clone() {
        let reference = reference.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(restart.at_s)).await;
            reference.stop();
            tokio::time::sleep(Duration::from_secs_f64(restart.down_s)).await;
            reference.restart().await;
        });
    }
    let last_action = plan
        .callers
        .iter()
        .flat_map(|c| {
            std::iter::once(c.dial_at_s).chain(c.requests.iter().map(|r| r.at_s)).chain(c.hang_up_at_s())
        })
        .chain(plan.restart.iter().map(|r| r.at_s + r.down_s))
        .fold(0.0_f64, f64::max);
    let deadline = SimInstant::ZERO + SimDuration::from_secs_f64(plan.duration_s);
    let until_actions = SimInstant::ZERO + SimDuration::from_secs_f64(last_action.min(plan.duration_s));
    reference.settle(until_actions, deadline).await;
    let journal = sim.world().journal().clone();
    let context = context(plan);
    let facts = Facts::new(&journal, &context);
    let callers = plan.callers.iter().map(|c| outcome(&facts, c)).collect();
    let mut violations = crate::rules::evaluate_facts(&facts, &context);
    if let Some(only) = &plan.rules {
        violations.retain(|v| only.iter().any(|id| id == v.rule));
    }
    Ok(Run { journal, callers, violations })
}

/// Runs the world and whatever the target is doing (`idle` resolves when the target has nothing under
/// way) until neither has anything left, but not before `not_before` (callers still to act) and not past
/// `deadline`; whether it settled before the deadline.
pub async fn settle<F: std::future::Future<Output = ()>>(
    sim: &SharedSim,
    not_before: SimInstant,
    deadline: SimInstant,
    idle: impl Fn() -> F,
) -> bool {
    for _ in 0..100_000 {
        let quiet = ringback_sim::runtime::run_until_quiet(sim, deadline).await;
        idle().await;
        let now = sim.clock().now();
        if !quiet || now >= deadline {
            return false;
        }
        if now < not_before {
            // Quiet for now, but a caller will act later: let the clock move to it.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        tokio::task::yield_now().await;
        let world = sim.world();
        if world.is_quiescent() && !world.has_effects() {
            return true;
        }
    }
    false
}

/// What the rules know of a run besides its journal.
pub fn context(plan: &Plan) -> Context {
    Context {
        service_numbers: vec![ringback_scenarios::plan::SERVICE_NUMBER.to_owned()],
        callers: plan
            .callers
            .iter()
            .map(|c| CallerContext { number: c.number.clone(), specialists: c.specialists.clone() })
            .collect(),
        allowlist: plan.allowlist(),
        machines: plan.machines(),
        ..Context::default()
    }
}

/// The caller's script: dial, ask, hang up, each at its time; a hang-up on a moment of the call is the
/// world's to watch for (`World::hang_up_on`), so it lands exactly when the journal shows the moment.
fn spawn_caller(reference: &std::sync::Arc<Reference>, caller: CallerPlan) {
    let sim = reference.sim.clone();
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        tokio::time::sleep_until(start + Duration::from_secs_f64(caller.dial_at_s)).await;
        let placed = sim.with(|w| {
            let leg = w.place_inbound_call(&caller.number, ringback_scenarios::plan::SERVICE_NUMBER)?;
            if let Some(PlannedHangUp::On(moment, after_s)) = caller.hang_up {
                let after = SimDuration::from_secs_f64(after_s);
                w.hang_up_on(Watch::new(leg, moment, after, caller.specialists.clone()));
            }
            Ok::<_, String>(leg)
        });
        let Ok(leg) = placed else { return };
        let mut moments: Vec<(f64, Option<String>)> =
            caller.requests.iter().map(|r| (r.at_s, Some(r.utterance.clone()))).collect();
        moments.extend(caller.hang_up_at_s().map(|t| (t, None)));
        moments.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (when, what) in moments {
            tokio::time::sleep_until(start + Duration::from_secs_f64(when)).await;
            match what {
                // A caller who is not talking to an assistant at that moment is not heard; that is the
                // scenario's business, not an error.
                Some(text) => {
                    let _ = sim.with(|w| w.caller_says(leg, &text));
                }
                None => sim.with(|w| w.remote_hangup(leg)),
            }
        }
    });
}

/// What the journal's facts say became of `caller`: the last of being bridged with one of its
/// specialists and coming back to a new assistant session, else hung up, refused or undecided.
pub fn outcome(facts: &Facts, caller: &CallerPlan) -> CallerOutcome {
    let Some(leg) = facts.caller_legs().find(|l| l.from == caller.number) else {
        return CallerOutcome {
            number: caller.number.clone(),
            call: None,
            expected: caller.expect,
            observed: Observed::NoCall,
        };
    };
    let specialists = facts.specialists_of(leg.sid);
    let returned = facts.streams_on(leg.sid).filter_map(|s| s.connected).skip(1).max();
    let bridged =
        specialists.iter().flat_map(|s| facts.bridges(leg.sid, s.sid)).map(|(start, _)| start).max();
    let hung_up = leg.ended.as_ref().is_some_and(|e| e.cause.starts_with("the far end"));
    let dropped = leg.ended.as_ref().is_some_and(|e| e.cause == "application error");
    let observed = match (bridged, returned) {
        _ if dropped => Observed::Dropped,
        _ if caller.expect == Expect::CallerLeft && hung_up => Observed::CallerLeft,
        (Some(b), r) if r.is_none_or(|r| b > r) => Observed::Bridged,
        (_, Some(_)) => Observed::Returned,
        _ if hung_up => Observed::CallerLeft,
        _ if specialists.is_empty() => Observed::Refused,
        _ => Observed::Other,
    };
    CallerOutcome { number: caller.number.clone(), call: Some(leg.sid), expected: caller.expect, observed }
}
