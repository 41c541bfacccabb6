//! Proptest strategies that generate scenarios from the library's model, every caller expecting what the
//! reference orchestrator should make of their call.
//!
//! Start at [`scenario`]. A scenario is drawn as plain choices first (how each phone answers, how many
//! callers dial and when, what they ask for, which webhooks a fault touches, whether the orchestrator
//! restarts), then made concrete by a pure function that works out, from a timing model of the world, when
//! each caller's transfers can end and so what must become of them. Where a drawn time would make the
//! outcome hang on a race (a second request just as the caller comes back, a hang-up after the assistant
//! may already have ended the call, a restart while a webhook that decides something is due), the function
//! moves it to where the outcome is certain or leaves it out, so every generated caller has a definite
//! `expect`. Shrinking works on the choices (no `prop_flat_map`), and every shrunk draw is made concrete
//! again by the same function.
//!
//! The model, per caller (seconds after the caller dials; each moment a span from earliest to latest):
//! - a caller who hangs up expects `caller-left`, and hangs up before the assistant could have ended the
//!   call on its own (its silence timeout);
//! - a request's destination is the first department it names (an assistant's burst of two transfers
//!   starts the first; a number outside the allowlist is refused); with none, the request is refused;
//! - a department's phones are dialed in order: a person who picks up is bridged and stays; a person who
//!   picks up, stays past detection and hangs up later is bridged, then the caller comes back; busy,
//!   failed, rejected, unanswered, voicemail, fax, or a person who hangs up before detection finishes, fail
//!   over to the next phone, and after the last the caller comes back;
//! - a second request is placed either while the first transfer surely still holds the caller (it goes
//!   unheard or is refused as a transfer already under way) or after the caller is surely back with an
//!   assistant and before that assistant's silence timeout (it starts a transfer of its own);
//! - a specialist's dial may wait in the account's calls-per-second queue (at worst behind every other
//!   dial of the scenario), and a lost final status is then found by the watchdog's later looks;
//! - answers land well clear of the ring timeout, and machine detection always finishes before its own
//!   timeout, so no phone's fate depends on a boundary;
//! - where a specialist's final status callback may be lost, nobody hangs up between the failure and the
//!   moment the reference surely knows of it, and no `completed` callback is lost where a bridged
//!   specialist hangs up (two FIXMEs: the timing model does not yet cover those cases; the library holds them).

use proptest::prelude::*;
use ringback_sim::faults::{FaultAction, Sender, WebhookFault};
use ringback_sim::phone::Behaviour;

use crate::{Ask, CallerGroup, Department, Expect, HangUp, OrchestratorOptions, Restart, Scenario};

/// The departments' names, in order.
pub const DEPARTMENTS: [&str; 3] = ["sales", "support", "billing"];
/// The most callers a generated scenario places.
pub const MAX_CALLERS: u32 = 50;
/// Generated numbers outside the allowlist: this prefix and four digits (specialists are `+1555880…`,
/// callers `+1555770…`).
const OUTSIDE_PREFIX: &str = "+1555990";
/// The status callback path of the reference orchestrator's specialist legs (a fault on it can drop the
/// final status, which the orchestrator then learns by asking Twilio).
const SPECIALIST_STATUS: &str = "/twilio/specialist-status";

/// Every generated scenario: valid, with an `expect` for every caller group.
pub fn scenario() -> impl Strategy<Value = Scenario> {
    draw().prop_map(|draw| draw.scenario())
}

/// Seconds from a count of half seconds: generated times are round, so a scenario file reads well.
fn half(n: u32) -> f64 {
    f64::from(n) / 2.0
}

/// Rounds `s` up to a half second.
fn up_to_half(s: f64) -> f64 {
    (s * 2.0).ceil() / 2.0
}

/// The choices a scenario is made from. Departments and times are indices and counts, so that any
/// shrunk combination is still a valid scenario.
#[derive(Clone, Debug)]
struct Draw {
    /// How each department's phones answer.
    departments: Vec<Vec<Behaviour>>,
    groups: Vec<GroupDraw>,
    faults: Vec<WebhookFault>,
    /// When the orchestrator stops and for how long, in half seconds (moved to a quiet moment).
    restart: Option<(u32, u32)>,
    /// `DetectMessageEnd` rather than `Enable`.
    detect_message_end: bool,
}

/// One caller group's choices.
#[derive(Clone, Debug)]
struct GroupDraw {
    /// 0..1000, weighted into 1..=50 callers by [`callers`].
    count: u32,
    /// When the first caller dials, in half seconds.
    at: u32,
    /// Between callers, in tenths of a second.
    stagger: u32,
    /// When the first request comes (half seconds after the earliest moment the assistant surely
    /// listens) and what it asks for.
    first: (u32, Vec<Target>),
    /// A second request: what it asks for, and how long after the first it would like to come (half
    /// seconds; the model moves it out of any race).
    second: Option<(Vec<Target>, u32)>,
    /// When the caller would like to hang up, in half seconds after dialing (the model keeps it before
    /// the call could end on its own).
    hang_up: Option<u32>,
}

/// One destination of a transfer request.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// A department, by position (wrapping round however many the scenario has).
    Department(u8),
    /// A number that is on no allowlist.
    Outside(u16),
}

/// How many callers a group's `count` draw means: three groups in five have one caller, about one in five
/// two, one in twelve three, and the rest spread up to fifty. Monotone, in steps of one, so that shrinking
/// the draw finds the smallest count that still fails.
fn callers(draw: u32) -> u32 {
    match draw {
        0..600 => 1,
        600..780 => 2,
        780..860 => 3,
        860..940 => 4 + (draw - 860) / 20,
        _ => 8 + (draw.min(999) - 940) * 43 / 60,
    }
}

fn draw() -> impl Strategy<Value = Draw> {
    // Callers first: shrinking simplifies in this order, and fewer callers make every later step cheaper.
    let groups = prop::collection::vec(group(), 1..=3);
    let departments = prop::collection::vec(prop::collection::vec(behaviour(), 1..=2), 1..=3);
    let faults = prop_oneof![3 => Just(Vec::new()), 2 => prop::collection::vec(fault(), 1..=2)];
    let restart = prop::option::weighted(0.2, (0u32..=120, 1u32..=30));
    let detect_message_end = prop::bool::weighted(0.2);
    (groups, departments, faults, restart, detect_message_end).prop_map(
        |(groups, departments, faults, restart, detect_message_end)| Draw {
            departments,
            groups,
            faults,
            restart,
            detect_message_end,
        },
    )
}

/// Seconds a phone rings before it is answered or declined: well before the 30 s ring timeout, or well
/// after it (so it is never answered).
fn ring_s() -> impl Strategy<Value = f64> {
    prop_oneof![5 => (1u32..=52).prop_map(half), 1 => (68u32..=80).prop_map(half)]
}

/// How long a specialist who picks up stays on the line: hanging up before machine detection has
/// recognised them (a failed attempt), or after (bridged, then back to the assistant).
fn talk_s() -> impl Strategy<Value = f64> {
    prop_oneof![1 => (1u32..=3).prop_map(half), 3 => (8u32..=180).prop_map(half)]
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        4 => ring_s().prop_map(|after_s| Behaviour::Human { after_s }),
        2 => (ring_s(), (2u32..=40).prop_map(half), any::<bool>())
            .prop_map(|(after_s, greeting_s, beep)| Behaviour::Machine { after_s, greeting_s, beep }),
        1 => ring_s().prop_map(|after_s| Behaviour::Fax { after_s }),
        2 => Just(Behaviour::Busy),
        1 => Just(Behaviour::NoAnswer),
        1 => Just(Behaviour::Fail),
        1 => ring_s().prop_map(|after_s| Behaviour::Reject { after_s }),
        1 => (ring_s(), talk_s()).prop_map(|(after_s, talk_s)| Behaviour::HangUp { after_s, talk_s }),
    ]
}

fn targets() -> impl Strategy<Value = Vec<Target>> {
    let target = prop_oneof![
        6 => (0u8..3).prop_map(Target::Department),
        1 => (0u16..10_000).prop_map(Target::Outside),
    ];
    prop_oneof![
        4 => prop::collection::vec(target.clone(), 1..=1),
        1 => prop::collection::vec(target, 2..=2),
    ]
}

fn group() -> impl Strategy<Value = GroupDraw> {
    (
        0u32..1000,
        0u32..=20,
        0u32..=20,
        (6u32..=30, targets()),
        prop::option::weighted(0.3, (targets(), 2u32..=120)),
        prop::option::weighted(0.3, 1u32..=240),
    )
        .prop_map(|(count, at, stagger, first, second, hang_up)| GroupDraw {
            count,
            at,
            stagger,
            first,
            second,
            hang_up,
        })
}

fn delay() -> impl Strategy<Value = FaultAction> {
    (1u32..=24).prop_map(|h| FaultAction::Delay { delay_s: half(h) })
}

/// Duplicated or forged: harmless to timing, always fair.
fn copy() -> impl Strategy<Value = FaultAction> {
    prop_oneof![Just(FaultAction::Duplicate), Just(FaultAction::Forge)]
}

fn copy_or_delay() -> impl Strategy<Value = FaultAction> {
    prop_oneof![2 => copy(), 1 => delay()]
}

fn any_action() -> impl Strategy<Value = FaultAction> {
    prop_oneof![2 => copy(), 1 => delay(), 1 => Just(FaultAction::Drop)]
}

fn webhook_fault(
    from: Option<Sender>,
    path: Option<&str>,
    call_status: Option<&str>,
    message: Option<&str>,
    action: FaultAction,
) -> WebhookFault {
    WebhookFault {
        from,
        path: path.map(str::to_owned),
        call_status: call_status.map(str::to_owned),
        message: message.map(str::to_owned),
        nth: None,
        action,
    }
}

/// A fault on the webhooks a conforming orchestrator can be held to survive. Left out on purpose:
/// delaying or dropping the caller's own status callbacks (nothing else tells an orchestrator at once that
/// the caller hung up, and `no-orphans` counts from the hang-up), delaying the specialist's answer fetch
/// or the hold music (`bridge-on-answer` and `hold-audio` count from the answer and the hold, not from
/// the webhook), and dropping a voice webhook, an answer fetch or a tool call (Twilio or Vapi then ends
/// or abandons the step, which is the fault, not the orchestrator).
fn fault() -> impl Strategy<Value = WebhookFault> {
    let sender = prop_oneof![Just(Sender::Twilio), Just(Sender::Vapi)];
    let specialist_status = prop::sample::select(vec![
        "initiated",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "no-answer",
        "failed",
        "canceled",
    ]);
    let caller_status = prop::sample::select(vec!["ringing", "in-progress", "completed"]);
    let informational = prop::sample::select(vec![
        "status-update",
        "end-of-call-report",
        "conversation-update",
        "speech-update",
    ]);
    prop_oneof![
        (prop::option::of(sender), copy())
            .prop_map(|(from, action)| webhook_fault(from, None, None, None, action)),
        copy_or_delay().prop_map(|action| webhook_fault(None, Some("/twilio/voice"), None, None, action)),
        (prop::option::of(specialist_status), any_action()).prop_map(|(status, action)| webhook_fault(
            None,
            Some(SPECIALIST_STATUS),
            status,
            None,
            action
        )),
        (prop::option::of(caller_status), copy()).prop_map(|(status, action)| webhook_fault(
            None,
            Some("/twilio/caller-status"),
            status,
            None,
            action
        )),
        copy_or_delay().prop_map(|action| webhook_fault(
            None,
            Some("/twilio/hold-ended"),
            None,
            None,
            action
        )),
        copy_or_delay().prop_map(|action| webhook_fault(None, None, None, Some("tool-calls"), action)),
        (informational, any_action()).prop_map(|(message, action)| webhook_fault(
            None,
            None,
            None,
            Some(message),
            action
        )),
    ]
}

// ---------------------------------------------------------------------------------------------------
// The timing model.

/// The world's timings the model needs, read from the fakes' defaults where they live.
#[derive(Clone, Copy, Debug)]
struct Timing {
    /// Dialing to the first ring, or to busy or failed.
    setup_s: f64,
    /// Twilio's `Timeout` on each specialist dial (the reference's `ring_timeout_s`).
    ring_timeout_s: f64,
    /// When the reference asks Twilio about a dial whose final status never came (its watchdog: the
    /// ring timeout and 15 s of grace).
    watchdog_s: f64,
    amd_human_s: f64,
    amd_machine_s: f64,
    amd_fax_s: f64,
    /// A Vapi session ends after this much silence.
    silence_s: f64,
    /// The longest an assistant speaks before hearing a request: the reference's longest first message.
    greeting_s: f64,
    /// What one step may add: the assistant's response delay and a short sentence, a REST request, a
    /// stream connecting.
    slack_s: f64,
    /// The longest a specialist's dial may wait in Twilio's queue before it starts: the account places
    /// `calls_per_second` calls a second, so with every dial of the scenario placed at once, the last
    /// waits for all the others.
    queue_s: f64,
}

impl Timing {
    fn of_defaults() -> Timing {
        let twilio = ringback_sim::world::TwilioDefaults::default();
        let vapi = ringback_sim::vapi::VapiDefaults::default();
        let ring_timeout_s = f64::from(OrchestratorOptions::default().ring_timeout_s);
        Timing {
            setup_s: ringback_sim::phone::SETUP.as_secs_f64(),
            ring_timeout_s,
            watchdog_s: ring_timeout_s + 15.0,
            amd_human_s: twilio.amd_human_s,
            amd_machine_s: twilio.amd_machine_start_s,
            amd_fax_s: twilio.amd_fax_s,
            silence_s: vapi.silence_timeout_s,
            greeting_s: 18.0 * vapi.seconds_per_word,
            slack_s: 2.0,
            queue_s: 0.0,
        }
    }

    /// The timing of a scenario that places at most `dials` specialist calls in all, at the account's
    /// calls per second.
    fn with_dials(self, dials: u32) -> Timing {
        let cps = ringback_sim::world::TwilioDefaults::default().calls_per_second;
        let queued = f64::from(dials.saturating_sub(1));
        Timing { queue_s: if cps > 0.0 { queued / cps } else { 0.0 }, ..self }
    }
}

/// What the faults can do to timing: the longest any webhook is delayed, and whether a specialist's
/// status callback can be lost (then the reference learns the outcome from its watchdog).
#[derive(Clone, Copy, Debug)]
struct FaultBounds {
    delay_s: f64,
    drops: bool,
}

impl FaultBounds {
    fn of(faults: &[WebhookFault]) -> FaultBounds {
        let delay_s = faults
            .iter()
            .filter_map(|f| match f.action {
                FaultAction::Delay { delay_s } => Some(delay_s),
                _ => None,
            })
            .fold(0.0, f64::max);
        let drops = faults
            .iter()
            .any(|f| f.action == FaultAction::Drop && f.path.as_deref() == Some(SPECIALIST_STATUS));
        FaultBounds { delay_s, drops }
    }
}

/// The earliest and latest a moment can come, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Span {
    lo: f64,
    hi: f64,
}

impl Span {
    fn new(lo: f64, hi: f64) -> Span {
        Span { lo, hi: hi.max(lo) }
    }

    /// The span with `before` more room before and `after` more after: what may be going on around it.
    fn widen(self, before: f64, after: f64) -> Span {
        Span::new(self.lo - before, self.hi + after)
    }

    fn shift(self, by: f64) -> Span {
        Span::new(self.lo + by, self.hi + by)
    }

    fn contains(self, t: f64) -> bool {
        self.lo <= t && t <= self.hi
    }

    /// The half second `pick` (counted in half seconds from the span's first round moment, wrapping),
    /// or `None` if no round moment fits.
    fn pick(self, pick: u32) -> Option<f64> {
        let lo = up_to_half(self.lo);
        if lo > self.hi {
            return None;
        }
        // A few hundred half seconds at most: the model's spans are bounded.
        let room = ((self.hi - lo) * 2.0).floor().min(f64::from(u16::MAX)) as u32 + 1;
        Some(lo + half(pick % room))
    }
}

/// What a phone does with a transfer's dial, as the reference sees it (seconds after dialing).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Pickup {
    /// A person answers and stays.
    Person { answer_s: f64 },
    /// A person answers, is bridged, and hangs up after `talk_s`: the caller comes back.
    Brief { answer_s: f64, talk_s: f64 },
    /// The attempt fails (busy, failed, declined, unanswered, a machine or a fax, a person gone before
    /// detection finished): at `failed_s` as the rules see it (a machine's or fax's answer, otherwise the
    /// leg's end), known to the reference at `known_s` from the final status callback (`by_status`) or
    /// from detection; the next phone is dialed then.
    Fails { failed_s: f64, known_s: f64, by_status: bool },
}

/// Where a caller is after a step of their story.
#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    /// Talking with a specialist for good.
    Bridged,
    /// With an assistant since `since`; `transferred` once a transfer has brought them back.
    Assistant { since: Span, transferred: bool },
}

impl State {
    /// When the call may end on its own (the assistant's silence timeout), at the earliest.
    fn ends_by_itself_s(self, timing: &Timing) -> f64 {
        match self {
            State::Bridged => f64::INFINITY,
            State::Assistant { since, .. } => since.lo + timing.silence_s,
        }
    }

    fn expect(self) -> Expect {
        match self {
            State::Bridged => Expect::Bridged,
            State::Assistant { transferred: true, .. } => Expect::Returned,
            State::Assistant { transferred: false, .. } => Expect::Refused,
        }
    }
}

/// What a story notes besides the caller's state.
#[derive(Clone, Debug, Default)]
struct Marks {
    /// When something that decides the caller's fate may be under way: a restart must not touch these.
    busy: Vec<Span>,
    /// When the caller must not hang up (see the FIXME in [`Model::transfer`]).
    no_hang_up: Vec<Span>,
}

/// One caller group's story, the same for each of its callers (each has their own departments), in
/// seconds after the caller dials.
#[derive(Clone, Debug)]
struct Story {
    asks: Vec<Ask>,
    hang_up_s: Option<f64>,
    expect: Expect,
    /// When something that decides the caller's fate may be under way: a restart must not touch these.
    busy: Vec<Span>,
    /// When the caller's story is surely over (or settled for good).
    last_s: f64,
}

/// The model for one scenario's draws.
#[derive(Clone, Copy, Debug)]
struct Model<'a> {
    timing: Timing,
    faults: FaultBounds,
    departments: &'a [Vec<Behaviour>],
    detect_message_end: bool,
}

impl Model<'_> {
    fn pickup(&self, behaviour: &Behaviour) -> Pickup {
        let t = &self.timing;
        // Every drawn ring time lands well before or well after the ring timeout.
        let answered = |after_s: f64| t.setup_s + after_s < t.ring_timeout_s;
        let ended = |at_s: f64| Pickup::Fails { failed_s: at_s, known_s: at_s, by_status: true };
        let detected = |answer_s: f64, detect_s: f64| Pickup::Fails {
            failed_s: answer_s,
            known_s: answer_s + detect_s,
            by_status: false,
        };
        let unanswered = ended(t.ring_timeout_s + t.setup_s);
        match *behaviour {
            Behaviour::Human { after_s } if answered(after_s) => {
                Pickup::Person { answer_s: t.setup_s + after_s }
            }
            Behaviour::HangUp { after_s, talk_s } if answered(after_s) => {
                if talk_s < t.amd_human_s {
                    ended(t.setup_s + after_s + talk_s)
                } else {
                    Pickup::Brief { answer_s: t.setup_s + after_s, talk_s }
                }
            }
            Behaviour::Machine { after_s, greeting_s, beep } if answered(after_s) => {
                let detect_s = match (self.detect_message_end, beep) {
                    (false, _) => t.amd_machine_s,
                    (true, true) => greeting_s + 0.5,
                    (true, false) => greeting_s + 2.0,
                };
                detected(t.setup_s + after_s, detect_s)
            }
            Behaviour::Fax { after_s } if answered(after_s) => detected(t.setup_s + after_s, t.amd_fax_s),
            Behaviour::Reject { after_s } if answered(after_s) => ended(t.setup_s + after_s),
            Behaviour::Busy | Behaviour::Fail => ended(t.setup_s),
            _ => unanswered,
        }
    }

    /// The department a request transfers to: the first it names (the burst's later tool calls are
    /// refused as a transfer already under way; a number outside the allowlist is refused at once).
    fn destination(&self, targets: &[Target]) -> Option<usize> {
        targets.iter().find_map(|t| match t {
            Target::Department(i) => Some(usize::from(*i) % self.departments.len()),
            Target::Outside(_) => None,
        })
    }

    /// A request heard at `at_s`: the caller's state afterwards, and when the caller has left the
    /// assistant for the hold (if it transfers).
    fn request(&self, at_s: f64, targets: &[Target], before: State, marks: &mut Marks) -> (State, Span) {
        let (t, d) = (&self.timing, self.faults.delay_s);
        // Queued behind a greeting, the response delay and "Let me connect you.", the tool call (maybe
        // delayed), the hold and the first dial.
        let held = Span::new(at_s + 1.5, at_s + t.greeting_s + 2.0 * t.slack_s + d);
        marks.busy.push(Span::new(at_s - 1.0, held.hi + t.slack_s));
        let transferred = matches!(before, State::Assistant { transferred: true, .. });
        match self.destination(targets) {
            None => {
                let since = Span::new(at_s + 1.5, held.hi);
                marks.busy.push(
                    Span::new(since.lo + t.silence_s, since.hi + t.silence_s).widen(1.0, t.slack_s + d),
                );
                (State::Assistant { since, transferred }, held)
            }
            Some(department) => (self.transfer(&self.departments[department], held, marks), held),
        }
    }

    /// A department's phones dialed in order from `dial`.
    fn transfer(&self, phones: &[Behaviour], mut dial: Span, marks: &mut Marks) -> State {
        let (t, d) = (&self.timing, self.faults.delay_s);
        for phone in phones {
            // The dial may wait in the account's queue before Twilio starts it.
            dial.hi += t.queue_s;
            // The dial and its first callbacks.
            marks.busy.push(dial.widen(1.0, t.slack_s + d));
            match self.pickup(phone) {
                Pickup::Fails { failed_s, known_s, by_status } => {
                    let mut revealed = Span::new(dial.lo + known_s, dial.hi + known_s + t.slack_s + d);
                    if self.faults.drops && by_status {
                        // The watchdog looks after the ring timeout and its grace, then again every ring
                        // timeout while a queued leg still rings.
                        let looks_s =
                            if t.queue_s > 0.0 { t.watchdog_s + t.ring_timeout_s } else { t.watchdog_s };
                        revealed.hi = revealed.hi.max(dial.hi + looks_s + t.slack_s);
                    }
                    if self.faults.drops {
                        // FIXME(scenarios/library/lost-final-status-then-the-caller-hangs-up.toml): the rule
                        // no longer charges a failure nothing revealed, so this window could be generated;
                        // the model does not yet say what to expect in it, so nobody hangs up then.
                        marks.no_hang_up.push(Span::new(dial.lo + failed_s + 4.0, revealed.hi + t.slack_s));
                    }
                    marks.busy.push(revealed.widen(1.0, t.slack_s));
                    dial = revealed;
                }
                Pickup::Person { answer_s } => {
                    let bridged =
                        Span::new(dial.lo + answer_s, dial.hi + answer_s + t.amd_human_s + t.slack_s + d);
                    marks.busy.push(bridged.widen(1.0, t.slack_s));
                    return State::Bridged;
                }
                Pickup::Brief { answer_s, talk_s } => {
                    let bridged =
                        Span::new(dial.lo + answer_s, dial.hi + answer_s + t.amd_human_s + t.slack_s + d);
                    marks.busy.push(bridged.widen(1.0, t.slack_s));
                    let gone =
                        Span::new(dial.lo + answer_s + talk_s, dial.hi + answer_s + talk_s + t.slack_s + d);
                    marks.busy.push(gone.widen(1.0, t.slack_s));
                    return self.returned(gone, marks);
                }
            }
        }
        self.returned(dial, marks)
    }

    /// The caller comes back to a new assistant session once the transfer's failure is `revealed`.
    fn returned(&self, revealed: Span, marks: &mut Marks) -> State {
        let (t, d) = (&self.timing, self.faults.delay_s);
        let since = Span::new(revealed.lo, revealed.hi + t.slack_s);
        marks.busy.push(since.widen(1.0, t.greeting_s + t.slack_s + d));
        marks.busy.push(
            Span::new(since.lo + t.silence_s, since.hi + t.greeting_s + t.silence_s)
                .widen(1.0, t.slack_s + d),
        );
        State::Assistant { since, transferred: true }
    }

    /// A group's story.
    fn story(&self, group: &GroupDraw) -> Story {
        let (t, d) = (&self.timing, self.faults.delay_s);
        // Dialing in (the voice webhook maybe delayed), the assistant's session and greeting.
        let connected = Span::new(0.0, t.slack_s + d);
        let mut marks =
            Marks { busy: vec![connected.widen(1.0, t.greeting_s + t.slack_s)], no_hang_up: Vec::new() };
        let start = State::Assistant { since: connected, transferred: false };

        // The first request, once the assistant surely listens; well before its silence timeout.
        let first_s = up_to_half(connected.hi + 1.0) + half(group.first.0) - 3.0;
        let mut asks = vec![Ask { at_s: first_s, transfer_to: self.names(&group.first.1) }];
        let (mut state, held) = self.request(first_s, &group.first.1, start, &mut marks);

        if let Some((targets, gap)) = &group.second {
            let wanted = first_s + half(*gap);
            // While the first transfer surely holds the caller: unheard, or refused as under way.
            let during = match state {
                State::Bridged => Some(Span::new(held.hi + 1.0, held.hi + 60.0)),
                State::Assistant { since, transferred: true } => {
                    Some(Span::new(held.hi + 1.0, since.lo - 2.0))
                }
                State::Assistant { transferred: false, .. } => None,
            }
            .filter(|s| s.lo <= s.hi);
            // With an assistant for sure, before it could give up on the silence.
            let heard = match state {
                State::Bridged => None,
                State::Assistant { since, .. } => {
                    Some(Span::new(since.hi + 1.0, since.lo + t.silence_s - 2.0))
                }
            }
            .filter(|s| up_to_half(s.lo) <= s.hi);
            let at_s =
                if heard.is_some_and(|s| s.contains(wanted)) || during.is_some_and(|s| s.contains(wanted)) {
                    Some(wanted)
                } else {
                    heard.or(during).and_then(|s| s.pick(*gap))
                };
            if let Some(at_s) = at_s {
                asks.push(Ask { at_s, transfer_to: self.names(targets) });
                if heard.is_some_and(|s| s.contains(at_s)) {
                    state = self.request(at_s, targets, state, &mut marks).0;
                } else {
                    marks.busy.push(Span::new(at_s - 1.0, at_s + t.slack_s));
                }
            }
        }

        let hang_up_s = group.hang_up.map(|h| {
            let latest = state.ends_by_itself_s(t) - t.slack_s;
            let wanted = half(h);
            let mut at_s =
                if wanted <= latest { wanted } else { Span::new(0.5, latest).pick(h).unwrap_or(0.5) };
            // Earlier, out of any span where a hang-up must not come; each move is earlier, so this ends.
            while let Some(span) = marks.no_hang_up.iter().find(|s| s.contains(at_s) && at_s > 0.5) {
                at_s = ((span.lo - 1.0) * 2.0).floor().max(1.0) / 2.0;
            }
            at_s
        });
        if let Some(h) = hang_up_s {
            // The caller's leg ends, its status callback, the cleanup of whatever was placed for it.
            marks.busy.push(Span::new(h - 1.0, h + 3.0 * t.slack_s + d));
        }
        let settled = match state {
            State::Bridged => 0.0,
            State::Assistant { since, .. } => since.hi + t.greeting_s + t.silence_s + t.slack_s,
        };
        let last_s = marks.busy.iter().map(|s| s.hi).fold(settled, f64::max);
        let expect = if hang_up_s.is_some() { Expect::CallerLeft } else { state.expect() };
        Story { asks, hang_up_s, expect, busy: marks.busy, last_s }
    }

    fn names(&self, targets: &[Target]) -> Vec<String> {
        targets
            .iter()
            .map(|t| match t {
                Target::Department(i) => DEPARTMENTS[usize::from(*i) % self.departments.len()].to_owned(),
                Target::Outside(n) => format!("{OUTSIDE_PREFIX}{n:04}"),
            })
            .collect()
    }
}

/// The earliest moment at or after `from_s` at which the orchestrator can be down for `down_s` without
/// a busy span (plus a margin either side) overlapping.
fn quiet_at(busy: &mut [Span], from_s: f64, down_s: f64) -> f64 {
    busy.sort_by(|a, b| a.lo.total_cmp(&b.lo));
    let mut at_s = up_to_half(from_s.max(1.0));
    for span in busy.iter() {
        if span.hi < at_s - 1.0 {
            continue;
        }
        if span.lo > at_s + down_s + 3.0 {
            break;
        }
        at_s = up_to_half(span.hi + 1.0);
    }
    at_s
}

impl Draw {
    /// The drawn faults, but for one the reference does not survive today.
    ///
    /// FIXME(scenarios/library/specialist-hangs-up-and-the-completed-callback-is-lost.toml): the reference
    /// now looks a bridged leg up every 30 s, so a lost `completed` callback delays the return by up to
    /// 30 s; the timing model does not account for that yet, so such a drop is made a duplicate in a
    /// scenario where a specialist talks and hangs up.
    fn faults_kept(&self, model: &Model<'_>) -> Vec<WebhookFault> {
        let talks_then_hangs_up = self
            .departments
            .iter()
            .flatten()
            .any(|phone| matches!(model.pickup(phone), Pickup::Brief { .. }));
        let mut faults = self.faults.clone();
        for f in &mut faults {
            let loses_completed = f.action == FaultAction::Drop
                && f.path.as_deref() == Some(SPECIALIST_STATUS)
                && f.call_status.as_deref().is_none_or(|s| s == "completed");
            if talks_then_hangs_up && loses_completed {
                f.action = FaultAction::Duplicate;
            }
        }
        faults
    }

    /// How many callers each group places: as drawn, within [`MAX_CALLERS`] in all, at least one each.
    fn counts(&self) -> Vec<u32> {
        let mut left = MAX_CALLERS;
        let mut counts = Vec::new();
        for (i, group) in self.groups.iter().enumerate() {
            let others_after = u32::try_from(self.groups.len() - i - 1).unwrap_or(0);
            let count = callers(group.count).min(left - others_after);
            left -= count;
            counts.push(count);
        }
        counts
    }

    /// The concrete scenario, every caller's expectation worked out by the model.
    fn scenario(&self) -> Scenario {
        // Each caller dials at most every phone of a department for each of two requests.
        let counts = self.counts();
        let phones = self.departments.iter().map(Vec::len).max().unwrap_or(0);
        let dials = counts.iter().sum::<u32>() * 2 * u32::try_from(phones).unwrap_or(u32::MAX);
        let mut model = Model {
            timing: Timing::of_defaults().with_dials(dials),
            faults: FaultBounds::of(&self.faults),
            departments: &self.departments,
            detect_message_end: self.detect_message_end,
        };
        let faults = self.faults_kept(&model);
        model.faults = FaultBounds::of(&faults);
        let mut callers_in = Vec::new();
        let mut busy = Vec::new();
        let mut last_s = 0.0_f64;
        for (group, &count) in self.groups.iter().zip(&counts) {
            let story = model.story(group);
            let (at_s, stagger_s) = (half(group.at), f64::from(group.stagger) / 10.0);
            for k in 0..count {
                let dial_s = at_s + f64::from(k) * stagger_s;
                busy.extend(story.busy.iter().map(|s| s.shift(dial_s)));
                last_s = last_s.max(dial_s + story.last_s);
            }
            callers_in.push(CallerGroup {
                count,
                at_s,
                stagger_s,
                asks: story.asks,
                says: Vec::new(),
                presses: Vec::new(),
                hang_up: story.hang_up_s.map(|at_s| HangUp::At { at_s }),
                expect: Some(story.expect),
            });
        }
        let restart = self.restart.map(|(at, down)| {
            let down_s = half(down);
            Restart::at(quiet_at(&mut busy, half(at), down_s), down_s)
        });
        if let Some(r) = &restart {
            last_s = last_s.max(r.at_s.unwrap_or(0.0) + r.down_s + 60.0);
        }
        // The scenario's own expectation is the first group's; groups say theirs only when it differs.
        let expect = callers_in[0].expect.unwrap_or(Expect::Bridged);
        for group in &mut callers_in {
            if group.expect == Some(expect) {
                group.expect = None;
            }
        }
        let total: u32 = callers_in.iter().map(|g| g.count).sum();
        let description = format!(
            "Generated: {total} caller(s) in {} group(s), {} department(s), {} fault(s){}.",
            callers_in.len(),
            self.departments.len(),
            self.faults.len(),
            if restart.is_some() { ", a restart" } else { "" }
        );
        Scenario {
            description,
            seed: None,
            duration_s: (((last_s + 60.0) / 10.0).ceil() * 10.0).max(300.0),
            expect,
            specialists: self
                .departments
                .iter()
                .zip(DEPARTMENTS)
                .map(|(phones, name)| Department {
                    name: name.to_owned(),
                    phones: phones.clone(),
                    numbers: Vec::new(),
                })
                .collect(),
            callers: callers_in,
            faults,
            restart,
            rules: None,
            orchestrator: OrchestratorOptions {
                machine_detection: if self.detect_message_end { "DetectMessageEnd" } else { "Enable" }
                    .to_owned(),
                ..OrchestratorOptions::default()
            },
            native: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::test_runner::{Config, TestRunner};

    use super::*;

    fn runner(cases: u32) -> TestRunner {
        TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
    }

    #[test]
    fn generated_scenarios_are_valid_and_plan_into_valid_worlds() {
        runner(256)
            .run(&scenario(), |s| {
                let text = toml::to_string(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
                Scenario::parse(&text, Path::new("generated.toml"))
                    .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
                let total: u32 = s.callers.iter().map(|g| g.count).sum();
                prop_assert!((1..=MAX_CALLERS).contains(&total));
                let plan = s.plan(1);
                ringback_sim::world::World::new(plan.world_config("http://orchestrator.test"))
                    .map_err(TestCaseError::fail)?;
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn generated_scenarios_round_trip_through_toml() {
        runner(256)
            .run(&scenario(), |s| {
                let text = toml::to_string(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let back = Scenario::parse(&text, Path::new("generated.toml"))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(back, s, "{}", text);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn the_generator_reaches_every_outcome_fault_restart_and_second_request() {
        use proptest::strategy::ValueTree;
        let mut runner = TestRunner::deterministic();
        let strategy = scenario();
        let (mut expects, mut faults, mut restarts, mut second_asks, mut large) = (Vec::new(), 0, 0, 0, 0);
        for _ in 0..500 {
            let s = strategy.new_tree(&mut runner).expect("no rejections").current();
            for g in &s.callers {
                let expect = g.expect.unwrap_or(s.expect);
                if !expects.contains(&expect) {
                    expects.push(expect);
                }
                second_asks += usize::from(g.asks.len() > 1);
            }
            faults += usize::from(!s.faults.is_empty());
            restarts += usize::from(s.restart.is_some());
            large += usize::from(s.callers.iter().map(|g| g.count).sum::<u32>() > 10);
        }
        assert_eq!(expects.len(), 4, "{expects:?}");
        assert!((100..=300).contains(&faults), "{faults} of 500 with faults");
        assert!((40..=160).contains(&restarts), "{restarts} of 500 with a restart");
        assert!(second_asks >= 50, "{second_asks} groups with a second request");
        assert!((10..=150).contains(&large), "{large} of 500 with more than ten callers");
    }

    #[test]
    fn every_library_scenario_round_trips_through_toml() {
        for (name, scenario) in crate::library::scenarios() {
            let scenario = scenario.unwrap_or_else(|e| panic!("{e}"));
            let text = toml::to_string(&scenario).unwrap_or_else(|e| panic!("{name}: {e}"));
            let back = Scenario::parse(&text, Path::new(&name)).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, scenario, "{name}:\n{text}");
        }
    }

    #[test]
    fn caller_counts_are_weighted_towards_one_and_step_by_one() {
        assert_eq!((callers(0), callers(599), callers(600), callers(780), callers(860)), (1, 1, 2, 3, 4));
        assert_eq!((callers(939), callers(940), callers(999)), (7, 8, MAX_CALLERS));
        for draw in 1..1000 {
            assert!((0..=1).contains(&(callers(draw) - callers(draw - 1))), "{draw}");
        }
    }

    fn model(departments: &[Vec<Behaviour>]) -> Model<'_> {
        Model {
            timing: Timing::of_defaults(),
            faults: FaultBounds { delay_s: 0.0, drops: false },
            departments,
            detect_message_end: false,
        }
    }

    fn group(first: Vec<Target>, second: Option<(Vec<Target>, u32)>, hang_up: Option<u32>) -> GroupDraw {
        GroupDraw { count: 0, at: 0, stagger: 0, first: (10, first), second, hang_up }
    }

    fn sales() -> Target {
        Target::Department(0)
    }

    #[test]
    fn the_first_phone_a_person_answers_decides_the_transfer() {
        let departments =
            vec![vec![Behaviour::Busy, Behaviour::Human { after_s: 4.0 }], vec![Behaviour::NoAnswer]];
        let m = model(&departments);
        assert_eq!(m.story(&group(vec![sales()], None, None)).expect, Expect::Bridged);
        let support = Target::Department(1);
        assert_eq!(m.story(&group(vec![support], None, None)).expect, Expect::Returned);
        // A burst starts the first department it names; a number outside the allowlist is refused.
        assert_eq!(m.story(&group(vec![Target::Outside(1), support], None, None)).expect, Expect::Returned);
        assert_eq!(m.story(&group(vec![Target::Outside(1)], None, None)).expect, Expect::Refused);
    }

    #[test]
    fn a_specialist_who_talks_then_hangs_up_returns_the_caller_and_a_quick_one_fails_over() {
        let departments = vec![vec![
            Behaviour::HangUp { after_s: 2.0, talk_s: 1.0 },
            Behaviour::HangUp { after_s: 2.0, talk_s: 20.0 },
            Behaviour::Human { after_s: 2.0 },
        ]];
        let m = model(&departments);
        assert_eq!(
            m.pickup(&departments[0][0]),
            Pickup::Fails { failed_s: 4.0, known_s: 4.0, by_status: true }
        );
        assert_eq!(m.story(&group(vec![sales()], None, None)).expect, Expect::Returned);
    }

    #[test]
    fn a_second_request_is_moved_out_of_the_race_with_the_first_transfers_end() {
        let departments = vec![vec![Behaviour::Busy], vec![Behaviour::Human { after_s: 3.0 }]];
        let m = model(&departments);
        let support = Target::Department(1);
        // Sales is busy: the caller is back within seconds, so a request 1 s later would race the return;
        // it is moved to when the caller is surely back, and support answers.
        let story = m.story(&group(vec![sales()], Some((vec![support], 2)), None));
        assert_eq!(story.expect, Expect::Bridged);
        assert!(story.asks[1].at_s > story.asks[0].at_s + 4.0, "{:?}", story.asks);
        // Support answers first: a later request changes nothing.
        let story = m.story(&group(vec![support], Some((vec![sales()], 60)), None));
        assert_eq!(story.expect, Expect::Bridged);
    }

    #[test]
    fn a_hang_up_comes_before_the_assistant_could_end_the_call() {
        let departments = vec![vec![Behaviour::Busy]];
        let m = model(&departments);
        let story = m.story(&group(vec![sales()], None, Some(240)));
        assert_eq!(story.expect, Expect::CallerLeft);
        let hang_up_s = story.hang_up_s.expect("hangs up");
        assert!(hang_up_s < 5.0 + 2.0 + 30.0, "{hang_up_s}");
    }

    #[test]
    fn while_a_lost_final_status_is_unknown_to_the_reference_nobody_hangs_up() {
        let departments = vec![vec![Behaviour::Busy]];
        let mut m = model(&departments);
        // Asked at 5 s, held from 6.5 s, busy from 7.5 s: without a lost callback the caller may hang up
        // at 30 s, back with the assistant; with one, only before the failure.
        assert_eq!(m.story(&group(vec![sales()], None, Some(60))).hang_up_s, Some(30.0));
        m.faults.drops = true;
        assert_eq!(m.story(&group(vec![sales()], None, Some(60))).hang_up_s, Some(10.5));
    }

    #[test]
    fn a_restart_waits_for_a_quiet_moment() {
        let mut busy = vec![Span::new(0.0, 10.0), Span::new(2.0, 3.0), Span::new(12.0, 50.0)];
        assert_eq!(quiet_at(&mut busy, 0.0, 5.0), 51.0);
        let mut busy = vec![Span::new(0.0, 10.0), Span::new(30.0, 50.0)];
        assert_eq!(quiet_at(&mut busy, 0.0, 5.0), 11.0);
    }
}
