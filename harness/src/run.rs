//! Runs one scenario against the in-process reference orchestrator, in virtual time, and reads from the
//! journal what became of each caller.

use std::sync::Arc;
use std::time::Duration;

use ringback_orchestrator::config::Config;
use ringback_scenarios::plan::SERVICE_NUMBER;
use ringback_scenarios::{CallerPlan, Expect, Plan, PlannedHangUp};
use ringback_sim::ids::CallSid;
use ringback_sim::journal::Journal;
use ringback_sim::runtime::{Clock, SharedSim, Sim};
use ringback_sim::time::{SimDuration, SimInstant};
use ringback_sim::transport::InMemoryTransport;
use ringback_sim::watch::{CallMoment, Watch};
use ringback_sim::world::World;

use crate::reference::{InProcess, ORCHESTRATOR_URL, Reference};
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
    /// Hung up by the target, or by Twilio's application error, before talking with a specialist.
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
    reference_config_with(plan, &plan.specialist_entries())
}

/// The reference orchestrator configured for `plan`, with `entries` (`name=number|…`) as its departments.
pub(crate) fn reference_config_with(plan: &Plan, entries: &[String]) -> Config {
    use ringback_scenarios::plan as p;
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

/// Runs `plan` against its target: the fake Vapi alone for a `vapi-native` plan, else the reference
/// orchestrator.
pub fn run(plan: &Plan) -> Result<Run, String> {
    if plan.native_tool.is_some() { run_native(plan) } else { run_reference(plan) }
}

/// Runs `plan` against the reference orchestrator on a fresh single-threaded runtime with a paused clock:
/// no sockets, no sleeping, the same journal for the same seed.
pub fn run_reference(plan: &Plan) -> Result<Run, String> {
    virtual_time(run_reference_async(plan))
}

/// Runs a `vapi-native` plan: no orchestrator; the fake Vapi transfers by itself with the plan's tool.
/// Virtual time, as [`run_reference`].
pub fn run_native(plan: &Plan) -> Result<Run, String> {
    virtual_time(async {
        let world = World::new(plan.world_config(ORCHESTRATOR_URL))?;
        // Every webhook goes to the fake Vapi, in process; there is no one else to send one to.
        let sim = Sim::new(world, Clock::start(1.0), Arc::new(InMemoryTransport::new()));
        for caller in &plan.callers {
            let _caller = spawn_caller(&sim, caller.clone(), SERVICE_NUMBER, None);
        }
        let (until_actions, deadline) = horizon(plan);
        settle(&sim, until_actions, deadline, || std::future::ready(())).await;
        Ok(judge(plan, &sim, &context(plan, SERVICE_NUMBER)))
    })
}

/// Runs `run` on a fresh single-threaded runtime whose clock is paused: time jumps from timer to timer.
pub(crate) fn virtual_time<T>(
    run: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(run)
}

async fn run_reference_async(plan: &Plan) -> Result<Run, String> {
    let world = World::new(plan.world_config(ORCHESTRATOR_URL))?;
    let reference = Reference::start(world, reference_config(plan));
    Ok(play(plan, &reference.sim, &reference.target).await)
}

/// Plays `plan` in `sim`, whose webhooks reach `target`, until the world and the orchestrator are both
/// idle (or the plan's duration is up), and judges the run. Nothing the plan started outlives the call:
/// a restart whose moment never came and a caller whose script is unfinished are called off.
pub(crate) async fn play(plan: &Plan, sim: &SharedSim, target: &Arc<InProcess>) -> Run {
    // Held while the orchestrator is down, so the run does not settle before it is back.
    let down = Arc::new(tokio::sync::Mutex::new(()));
    let restart_on = plan.restart.as_ref().and_then(|r| r.on.map(|on| (on, r.after_s)));
    let mut tasks = Vec::new();
    if let Some(restart) = plan.restart.clone() {
        let target = target.clone();
        let down = down.clone();
        let mut signals = sim.signals();
        tasks.push(tokio::spawn(async move {
            match restart.at_s {
                Some(at_s) => tokio::time::sleep(Duration::from_secs_f64(at_s)).await,
                // The first caller's call reaching the moment (watched by the world; see `spawn_caller`).
                None if signals.recv().await.is_some() => {}
                None => return,
            }
            let Ok(_down) = down.try_lock() else { return };
            target.stop();
            tokio::time::sleep(Duration::from_secs_f64(restart.down_s)).await;
            target.restart().await;
        }));
    }
    for (i, caller) in plan.callers.iter().enumerate() {
        tasks.push(spawn_caller(sim, caller.clone(), SERVICE_NUMBER, restart_on.filter(|_| i == 0)));
    }
    let (until_actions, deadline) = horizon(plan);
    settle(sim, until_actions, deadline, || {
        let orchestrator = target.orchestrator();
        let down = down.clone();
        async move {
            drop(down.lock().await);
            orchestrator.idle().await;
        }
    })
    .await;
    // Holding `down` waits out a restart under way and keeps one from starting (it only tries the lock),
    // so none is cut short with the orchestrator stopped.
    let _down = down.lock().await;
    tasks.iter().for_each(tokio::task::JoinHandle::abort);
    judge(plan, sim, &context(plan, SERVICE_NUMBER))
}

/// When the scenario's last scripted action happens, and when its run must end.
pub(crate) fn horizon(plan: &Plan) -> (SimInstant, SimInstant) {
    let last_action = plan
        .callers
        .iter()
        .flat_map(|c| {
            std::iter::once(c.dial_at_s)
                .chain(c.requests.iter().map(|r| r.at_s))
                .chain(c.says.iter().chain(&c.presses).map(|(at, _)| *at))
                .chain(c.hang_up_at_s())
        })
        .chain(plan.restart.iter().filter_map(|r| r.at_s.map(|at| at + r.down_s)))
        .fold(0.0_f64, f64::max);
    let deadline = SimInstant::ZERO + SimDuration::from_secs_f64(plan.duration_s);
    let until_actions = SimInstant::ZERO + SimDuration::from_secs_f64(last_action.min(plan.duration_s));
    (until_actions, deadline)
}

/// The run's journal, what became of each caller, and the broken rules that apply.
pub(crate) fn judge(plan: &Plan, sim: &SharedSim, context: &Context) -> Run {
    let journal = sim.world().journal().clone();
    let facts = Facts::new(&journal, context);
    let callers = plan.callers.iter().map(|c| outcome(&facts, c)).collect();
    let mut violations = crate::rules::evaluate_facts(&facts, context);
    if let Some(only) = &plan.rules {
        violations.retain(|v| only.iter().any(|id| id == v.rule));
    }
    Run { journal, callers, violations }
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

/// What the rules know of a run besides its journal; callers dial `service_number`.
pub fn context(plan: &Plan, service_number: &str) -> Context {
    Context {
        service_numbers: vec![service_number.to_owned()],
        callers: plan
            .callers
            .iter()
            .map(|c| CallerContext { number: c.number.clone(), specialists: c.specialists.clone() })
            .collect(),
        allowlist: plan.allowlist(),
        machines: plan.machines(),
        vapi_native: plan.native_tool.is_some(),
        ..Context::default()
    }
}

/// The signal a watched restart moment raises.
pub(crate) const RESTART: u64 = 1;

/// One thing a scripted caller does.
enum Act {
    Say(String),
    Press(String),
    HangUp,
}

/// The caller's script: dial, ask, say, press keys, hang up, each at its time; a hang-up on a moment of the call is the
/// world's to watch for (`World::watch`), so it lands exactly when the journal shows the moment.
///
/// Times are the world's: a world whose clock is scaled (`--time-scale`) plays the script scaled.
pub(crate) fn spawn_caller(
    sim: &SharedSim,
    caller: CallerPlan,
    service_number: &str,
    restart_on: Option<(CallMoment, f64)>,
) -> tokio::task::JoinHandle<()> {
    let sim = sim.clone();
    let service_number = service_number.to_owned();
    tokio::spawn(async move {
        let clock = sim.clock();
        let at = |s: f64| clock.deadline(SimInstant::ZERO + SimDuration::from_secs_f64(s));
        tokio::time::sleep_until(at(caller.dial_at_s)).await;
        let placed = sim.with(|w| {
            let leg = w.place_inbound_call(&caller.number, &service_number)?;
            if let Some(PlannedHangUp::On(moment, after_s)) = caller.hang_up {
                let after = SimDuration::from_secs_f64(after_s);
                w.watch(Watch::new(leg, moment, after, caller.specialists.clone()));
            }
            if let Some((moment, after_s)) = restart_on {
                let after = SimDuration::from_secs_f64(after_s);
                w.watch(Watch::new(leg, moment, after, caller.specialists.clone()).signalling(RESTART));
            }
            Ok::<_, String>(leg)
        });
        let Ok(leg) = placed else { return };
        let mut moments: Vec<(f64, Act)> =
            caller.requests.iter().map(|r| (r.at_s, Act::Say(r.utterance.clone()))).collect();
        moments.extend(caller.says.iter().map(|(at, text)| (*at, Act::Say(text.clone()))));
        moments.extend(caller.presses.iter().map(|(at, digits)| (*at, Act::Press(digits.clone()))));
        moments.extend(caller.hang_up_at_s().map(|t| (t, Act::HangUp)));
        // Stable: what the file lists at the same instant happens in the order above.
        moments.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (when, act) in moments {
            tokio::time::sleep_until(at(when)).await;
            match act {
                // A caller who is not talking to an assistant at that moment is not heard; that is the
                // scenario's business, not an error.
                Act::Say(text) => {
                    let _ = sim.with(|w| w.caller_says(leg, &text));
                }
                Act::Press(digits) => sim.with(|w| digits.chars().for_each(|d| w.press(leg, d))),
                Act::HangUp => sim.with(|w| w.remote_hangup(leg)),
            }
        }
    })
}

/// What the journal's facts say became of `caller`: the last of being bridged with one of its
/// specialists and coming back to an assistant (a new session, or the same one resuming after a native
/// transfer), else hung up, dropped, refused or undecided.
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
    let new_session = facts.streams_on(leg.sid).filter_map(|s| s.connected).skip(1).max();
    let resumed = facts.sessions_of(leg.sid).into_iter().flat_map(|v| v.resumed()).max();
    let returned = new_session.max(resumed);
    let bridged =
        specialists.iter().flat_map(|s| facts.bridges(leg.sid, s.sid)).map(|(start, _)| start).max();
    let hung_up = leg.ended.as_ref().is_some_and(|e| e.cause.starts_with("the far end"));
    let dropped = leg.ended.as_ref().is_some_and(|e| e.cause == "application error")
        || (bridged.is_none() && crate::rules::dropped_by_target(facts, leg).is_some());
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
