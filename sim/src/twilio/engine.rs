//! The Twilio side of the world: call legs and their lifecycle, events, and what happens to webhook
//! responses. TwiML execution is in `interp`, conferences in `conferences`, webhook building in
//! `callbacks`.

use std::collections::VecDeque;

use crate::ids::{AccountSid, CallSid, ConferenceSid, PhoneNumberSid, StreamSid};
use crate::journal::Entity;
use crate::phone::{Answerer, Behaviour, PlannedOutcome};
use crate::time::{SimDuration, SimInstant};
use crate::transport::TargetResponse;
use crate::twilio::amd;
use crate::twilio::leg::{LegInput, LegState};
use crate::twilio::model::{
    AmdMode, AnsweredBy, CallEvent, CallStatus, ConferenceEndReason, ConferenceEvent, ConferenceStatus,
    Direction, Method, ParticipantStatus,
};
use crate::twilio::twiml::{Dial, Gather, Verb};
use crate::world::{DeliveryError, World};

/// A URL Twilio will request, with its method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    pub url: String,
    pub method: Method,
}

impl Hook {
    pub fn post(url: impl Into<String>) -> Hook {
        Hook { url: url.into(), method: Method::Post }
    }
}

/// An incoming phone number an account owns.
#[derive(Clone, Debug)]
pub struct IncomingNumber {
    pub sid: PhoneNumberSid,
    pub account: AccountSid,
    pub phone_number: String,
    pub friendly_name: String,
    pub voice_url: Option<String>,
    pub voice_method: Method,
    pub voice_fallback_url: Option<String>,
    pub voice_fallback_method: Method,
    pub status_callback: Option<String>,
    pub status_callback_method: Method,
    pub created_at: SimInstant,
    pub updated_at: SimInstant,
}

impl IncomingNumber {
    pub fn new(sid: PhoneNumberSid, account: AccountSid, phone_number: String, now: SimInstant) -> Self {
        IncomingNumber {
            sid,
            account,
            friendly_name: crate::twilio::wire::formatted(&phone_number),
            phone_number,
            voice_url: None,
            voice_method: Method::Post,
            voice_fallback_url: None,
            voice_fallback_method: Method::Post,
            status_callback: None,
            status_callback_method: Method::Post,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Who is on the far end of a leg.
#[derive(Clone, Debug, PartialEq)]
pub enum Remote {
    /// A scripted phone Twilio called.
    Phone(Behaviour),
    /// The person who called a Twilio number.
    Caller,
}

/// The document a REST-created call runs when answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Doc {
    Url(Hook),
    Twiml(String),
}

/// What a leg does once it is answered (and, with synchronous AMD, once detection is done).
#[derive(Clone, Debug, PartialEq)]
pub enum OnAnswer {
    Run(Doc),
    /// A `<Dial>` child: bridge to the parent.
    BridgeParent(CallSid),
    /// A REST-created participant: join the conference.
    Join(ConferenceSid, Box<crate::twilio::conferences::JoinSettings>),
}

/// Answering machine detection settings of a leg.
#[derive(Clone, Debug, PartialEq)]
pub struct Amd {
    pub mode: AmdMode,
    pub timeout: SimDuration,
    /// Where results go when detection is asynchronous; `None` means synchronous.
    pub callback: Option<Hook>,
    /// The leg waits for the result before running `on_answer`.
    pub blocking: bool,
}

/// What a leg is doing right now.
#[derive(Clone, Debug, PartialEq)]
pub enum Exec {
    /// Not running TwiML: not answered yet, or driven by another leg.
    Idle,
    /// Waiting for a TwiML document.
    Fetching,
    /// Playing audio (`<Say>`, `<Play>`, `<Pause>`) until a `VerbDone`.
    Playing,
    /// Collecting digits.
    Gathering {
        gather: Box<Gather>,
        digits: String,
    },
    /// Running a `<Dial>` to numbers: its children ring, then one is bridged.
    Dialing {
        dial: Box<Dial>,
        children: Vec<CallSid>,
        bridged: Option<CallSid>,
        bridged_at: Option<SimInstant>,
    },
    /// In a conference through `<Dial><Conference>`.
    Conferencing {
        dial: Box<Dial>,
        conference: ConferenceSid,
    },
    /// A REST-created participant in its conference.
    Participant(ConferenceSid),
    /// Connected to a media stream (`<Connect><Stream>`).
    Streaming {
        stream: StreamSid,
        action: Option<Hook>,
    },
    /// A `<Dial>` child bridged to its parent.
    Bridged(CallSid),
    /// Playing the application-error message before hanging up.
    AppError,
    Done,
}

/// One call leg.
#[derive(Clone, Debug)]
pub struct Leg {
    pub sid: CallSid,
    pub account: AccountSid,
    pub parent: Option<CallSid>,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    pub phone_number_sid: Option<PhoneNumberSid>,
    pub state: LegState,
    pub answered_by: Option<AnsweredBy>,
    pub amd_duration: Option<SimDuration>,
    pub created_at: SimInstant,
    pub updated_at: SimInstant,
    pub started_at: Option<SimInstant>,
    pub ended_at: Option<SimInstant>,
    pub status_callback: Option<Hook>,
    pub status_events: Vec<CallEvent>,
    pub callback_seq: u32,
    pub fallback: Option<Hook>,
    pub timeout: SimDuration,
    pub time_limit: Option<SimDuration>,
    pub amd: Option<Amd>,
    pub remote: Remote,
    pub on_answer: Option<OnAnswer>,
    pub exec: Exec,
    /// Bumped whenever the leg's execution is interrupted or replaced, so late events and responses
    /// meant for the old execution are recognised and dropped.
    pub generation: u64,
    pub verbs: VecDeque<Verb>,
    pub doc_url: Option<String>,
    pub fetches_in_a_row: u32,
    /// Digits the far end pressed that no `<Gather>` has consumed yet.
    pub pressed: String,
    pub forks: Vec<(StreamSid, Option<String>)>,
    pub sip_response_code: Option<u16>,
    /// What the far end hears now, to journal only changes.
    pub hears: String,
    /// How long a `POST /Calls` call waits in the account's queue before it is dialed (`queue_time`).
    pub queued_for: SimDuration,
}

impl Leg {
    /// A leg in `queued` with Twilio's defaults (60 s timeout, `completed` callbacks only).
    pub(crate) fn new(
        sid: CallSid,
        account: crate::ids::AccountSid,
        direction: Direction,
        from: String,
        to: String,
        now: crate::time::SimInstant,
    ) -> Leg {
        Leg {
            sid,
            account,
            parent: None,
            direction,
            from,
            to,
            phone_number_sid: None,
            state: LegState::Queued,
            answered_by: None,
            amd_duration: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            ended_at: None,
            status_callback: None,
            status_events: vec![crate::twilio::model::CallEvent::Completed],
            callback_seq: 0,
            fallback: None,
            timeout: SimDuration::from_secs(60),
            time_limit: None,
            amd: None,
            remote: Remote::Caller,
            on_answer: None,
            exec: Exec::Idle,
            generation: 0,
            verbs: Default::default(),
            doc_url: None,
            fetches_in_a_row: 0,
            pressed: String::new(),
            forks: Vec::new(),
            sip_response_code: None,
            hears: String::new(),
            queued_for: SimDuration::ZERO,
        }
    }

    pub fn duration(&self) -> Option<SimDuration> {
        Some(self.ended_at? - self.started_at?)
    }
}

/// A conference participant.
#[derive(Clone, Debug)]
pub struct Participant {
    pub call: CallSid,
    pub label: Option<String>,
    pub muted: bool,
    pub hold: bool,
    pub hold_url: Option<Hook>,
    pub start_on_enter: bool,
    pub end_on_exit: bool,
    pub beep_on_exit: bool,
    pub wait_url: Option<String>,
    pub wait_method: Method,
    pub status: ParticipantStatus,
    pub created_at: SimInstant,
    pub updated_at: SimInstant,
}

/// A conference.
#[derive(Clone, Debug)]
pub struct Conference {
    pub sid: ConferenceSid,
    pub account: AccountSid,
    pub friendly_name: String,
    pub status: ConferenceStatus,
    pub created_at: SimInstant,
    pub updated_at: SimInstant,
    pub participants: indexmap::IndexMap<CallSid, Participant>,
    pub callback: Option<Hook>,
    pub events: Vec<ConferenceEvent>,
    pub callback_seq: u32,
    pub ended_reason: Option<ConferenceEndReason>,
    pub call_ending: Option<CallSid>,
}

/// Things that happen by themselves at a scheduled time.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Twilio takes a queued call and dials.
    Dial(CallSid),
    Ring(CallSid),
    Answer(CallSid, Answerer, Option<SimDuration>),
    /// The far end signals a failure before answering.
    Fail(CallSid, CallStatus, u16),
    /// The dialer's ring timeout.
    RingTimeout(CallSid),
    /// The far end of an answered leg hangs up.
    RemoteHangup(CallSid),
    AmdDone(CallSid, AnsweredBy, SimDuration),
    /// The audio of the current verb is over.
    VerbDone(CallSid, u64),
    GatherTimeout(CallSid, u64),
    /// A REST `TimeLimit` ran out: the call ends.
    TimeLimit(CallSid),
    /// A `<Dial timeLimit>` ran out: the bridged child is hung up.
    DialTimeLimit(CallSid, u64),
}

impl Event {
    /// The leg the event is about.
    pub fn call(&self) -> CallSid {
        match self {
            Event::Dial(c)
            | Event::Ring(c)
            | Event::Answer(c, ..)
            | Event::Fail(c, ..)
            | Event::RingTimeout(c)
            | Event::RemoteHangup(c)
            | Event::AmdDone(c, ..)
            | Event::VerbDone(c, _)
            | Event::GatherTimeout(c, _)
            | Event::TimeLimit(c)
            | Event::DialTimeLimit(c, _) => *c,
        }
    }

    /// The execution generation the event belongs to, for events that only matter to one.
    pub fn generation(&self) -> Option<u64> {
        match self {
            Event::VerbDone(_, g) | Event::GatherTimeout(_, g) | Event::DialTimeLimit(_, g) => Some(*g),
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Event::Dial(c) => format!("dial {c}"),
            Event::Ring(c) => format!("ring {c}"),
            Event::Answer(c, by, _) => format!("answer {c} by {}", describe_answerer(*by)),
            Event::Fail(c, status, sip) => format!("{status} {c} (sip {sip})"),
            Event::RingTimeout(c) => format!("ring timeout {c}"),
            Event::RemoteHangup(c) => format!("far end hangs up {c}"),
            Event::AmdDone(c, by, _) => format!("amd {c} = {by}"),
            Event::VerbDone(c, _) => format!("verb done {c}"),
            Event::GatherTimeout(c, _) => format!("gather timeout {c}"),
            Event::TimeLimit(c) => format!("time limit {c}"),
            Event::DialTimeLimit(c, _) => format!("dial time limit {c}"),
        }
    }
}

/// What a TwiML fetch is for; decides fallback and the request parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchKind {
    /// The call's `Url` or the number's voice URL: the only fetch that falls back to `FallbackUrl`.
    Voice,
    Fallback,
    Redirect,
    Action,
}

/// What to do with a webhook's response.
#[derive(Clone, Debug, PartialEq)]
pub enum Purpose {
    Twiml {
        call: CallSid,
        generation: u64,
        url: String,
        kind: FetchKind,
    },
    /// The response does not matter (status callbacks and the like); failures are logged.
    Callback {
        call: Option<CallSid>,
        what: &'static str,
    },
    /// A conference `waitUrl` or participant `holdUrl` document.
    HoldAudio {
        call: CallSid,
        generation: u64,
        url: String,
    },
}

impl World {
    pub(crate) fn handle_event(&mut self, event: Event) {
        match event {
            Event::Dial(call) => {
                if self.leg_input(call, LegInput::Dial, None) {
                    self.start_attempt(call);
                }
            }
            Event::Ring(call) => {
                self.leg_input(call, LegInput::Ring, None);
            }
            Event::Answer(call, by, hang_up_after) => self.on_answer(call, by, hang_up_after),
            Event::Fail(call, status, sip) => {
                if let Some(leg) = self.twilio.calls.get_mut(&call) {
                    leg.sip_response_code = Some(sip);
                }
                self.end_call(call, status, "the far end");
            }
            Event::RingTimeout(call) => {
                if self.leg(call).is_some_and(|l| l.state.is_pending()) {
                    if let Some(leg) = self.twilio.calls.get_mut(&call) {
                        leg.sip_response_code = Some(487);
                    }
                    self.end_call(call, CallStatus::NoAnswer, "ring timeout");
                }
            }
            Event::RemoteHangup(call) => self.remote_hangup(call),
            Event::AmdDone(call, by, after) => self.on_amd_done(call, by, after),
            Event::VerbDone(call, generation) => {
                if self.current(call, generation) {
                    if matches!(self.leg(call).map(|l| &l.exec), Some(Exec::AppError)) {
                        self.end_call(call, CallStatus::Completed, "application error");
                    } else {
                        self.run_next(call);
                    }
                }
            }
            Event::GatherTimeout(call, generation) => {
                if self.current(call, generation) {
                    self.gather_timeout(call);
                }
            }
            Event::TimeLimit(call) => self.end_call(call, CallStatus::Completed, "time limit"),
            Event::DialTimeLimit(call, generation) => {
                if self.current(call, generation) {
                    self.dial_time_limit(call);
                }
            }
        }
    }

    pub(crate) fn on_delivery(&mut self, purpose: Purpose, outcome: Result<TargetResponse, DeliveryError>) {
        match purpose {
            Purpose::Twiml { call, generation, url, kind } => {
                if self.current(call, generation) {
                    self.on_twiml(call, url, kind, outcome);
                } else {
                    self.note(format!(
                        "call {call}: response from {url} arrives after the call moved on; ignored"
                    ));
                }
            }
            Purpose::Callback { call, what } => {
                let failed = match &outcome {
                    Ok(r) if (200..300).contains(&r.status) => None,
                    Ok(r) => Some(format!("{what} answered HTTP {}", r.status)),
                    Err(DeliveryError::Timeout) => Some(format!("{what} timed out")),
                    Err(e) => Some(format!("{what} failed: {e}")),
                };
                if let Some(message) = failed {
                    // Twilio: 15003, "Call Progress: Warning Response to Callback URL".
                    self.notify(call, 15003, message);
                }
            }
            Purpose::HoldAudio { call, generation, url } => {
                if self.current(call, generation) {
                    self.on_hold_audio(call, url, outcome);
                }
            }
        }
    }

    pub fn leg(&self, call: CallSid) -> Option<&Leg> {
        self.twilio.calls.get(&call)
    }

    /// Every call leg, in the order they were created.
    pub fn legs(&self) -> impl Iterator<Item = &Leg> {
        self.twilio.calls.values()
    }

    pub(crate) fn leg_mut(&mut self, call: CallSid) -> Option<&mut Leg> {
        self.twilio.calls.get_mut(&call)
    }

    /// Moves a leg to a new execution generation and drops the timers of the old one, so a stale
    /// `<Pause>` or dial time limit neither fires nor keeps the world busy.
    pub(crate) fn bump_generation(&mut self, call: CallSid) {
        let Some(leg) = self.twilio.calls.get_mut(&call) else { return };
        leg.generation += 1;
        let (current, ended) = (leg.generation, leg.state.is_ended());
        // Only this leg's own timers can be stale; `leg_timers` names them (and some that already fired).
        let mut kept = Vec::new();
        for id in self.leg_timers.remove(&call).unwrap_or_default() {
            let keep = match self.sched.get(id) {
                None => continue,
                Some(crate::world::WorldEvent::Twilio(e)) => {
                    e.call() != call || (!ended && e.generation().is_none_or(|g| g == current))
                }
                Some(_) => true,
            };
            if keep {
                kept.push(id);
            } else {
                self.sched.cancel(id);
            }
        }
        if !kept.is_empty() {
            self.leg_timers.insert(call, kept);
        }
    }

    /// The leg exists, is live, and has not moved on since `generation`.
    pub(crate) fn current(&self, call: CallSid, generation: u64) -> bool {
        self.leg(call).is_some_and(|l| !l.state.is_ended() && l.generation == generation)
    }

    /// Logs a Twilio notification (error or warning) against a call.
    pub(crate) fn notify(&mut self, call: Option<CallSid>, code: u32, message: impl Into<String>) {
        let message = message.into();
        self.journal.record(self.now, crate::journal::Event::Notification { call, code, message });
    }

    /// What the far end of `call` hears, journaled when it changes.
    pub(crate) fn set_hears(&mut self, call: CallSid, hears: impl Into<String>) {
        let hears = hears.into();
        let Some(leg) = self.twilio.calls.get_mut(&call) else { return };
        if leg.hears != hears {
            leg.hears.clone_from(&hears);
            self.hear(call, hears);
        }
    }

    /// Feeds the leg's status machine and fires the matching status callback.
    pub(crate) fn leg_input(&mut self, call: CallSid, input: LegInput, cause: Option<&str>) -> bool {
        let now = self.now;
        let Some(leg) = self.twilio.calls.get_mut(&call) else { return false };
        let before = leg.state;
        let Ok((after, progress)) = before.step(input) else { return false };
        leg.state = after;
        leg.updated_at = now;
        match after {
            LegState::InProgress => leg.started_at = Some(now),
            LegState::Ended(_) => leg.ended_at = Some(now),
            _ => {}
        }
        self.transition(Entity::Call(call), state_name(before), state_name(after), cause);
        if let Some(progress) = progress {
            self.status_callback(call, progress.event, progress.call_status);
        }
        true
    }

    /// Starts dialing a leg to a phone: schedules its script against the leg's ring timeout.
    pub(crate) fn start_attempt(&mut self, call: CallSid) {
        let Some(leg) = self.leg(call) else { return };
        let Remote::Phone(behaviour) = &leg.remote else { return };
        let plan = behaviour.plan();
        let timeout = leg.timeout;
        let to = leg.to.clone();
        if self.defaults.own_number_loop_detected
            && self.twilio.numbers.values().any(|n| n.phone_number == to)
        {
            self.note(format!("{call} dials {to}, one of this world's own Twilio numbers: loop detected"));
            self.schedule(crate::phone::SETUP, Event::Fail(call, CallStatus::Failed, 482));
            return;
        }
        if let Some(ring_at) = plan.ring_at.filter(|t| *t < timeout) {
            self.schedule(ring_at, Event::Ring(call));
        }
        match plan.outcome {
            PlannedOutcome::Answer { at, by, hang_up_after } if at < timeout => {
                self.schedule(at, Event::Answer(call, by, hang_up_after));
            }
            PlannedOutcome::Busy { at } if at < timeout => {
                self.schedule(at, Event::Fail(call, CallStatus::Busy, 486));
            }
            PlannedOutcome::Fail { at } if at < timeout => {
                self.schedule(at, Event::Fail(call, CallStatus::Failed, 503));
            }
            // Twilio's Call resource doc: `no-answer` covers "no answer, or rejected".
            PlannedOutcome::Decline { at } if at < timeout => {
                self.schedule(at, Event::Fail(call, CallStatus::NoAnswer, 603));
            }
            _ => {
                self.schedule(timeout, Event::RingTimeout(call));
            }
        }
    }

    fn on_answer(&mut self, call: CallSid, by: Answerer, hang_up_after: Option<SimDuration>) {
        if !self.leg(call).is_some_and(|l| l.state.is_pending()) {
            return;
        }
        self.leg_input(call, LegInput::Answer, None);
        if let Some(after) = hang_up_after {
            self.schedule(after, Event::RemoteHangup(call));
        }
        let Some(leg) = self.leg(call) else { return };
        match leg.amd.clone() {
            Some(amd) => {
                let (answered_by, after) = amd::detect(by, amd.mode, amd.timeout, &self.defaults);
                self.schedule(after, Event::AmdDone(call, answered_by, after));
                if !amd.blocking {
                    self.after_answer(call);
                }
            }
            None => self.after_answer(call),
        }
    }

    fn on_amd_done(&mut self, call: CallSid, by: AnsweredBy, after: SimDuration) {
        let Some(leg) = self.twilio.calls.get_mut(&call) else { return };
        if leg.state.is_ended() {
            return;
        }
        leg.answered_by = Some(by);
        leg.amd_duration = Some(after);
        let Some(amd) = leg.amd.clone() else { return };
        self.journal.record(self.now, crate::journal::Event::Detection { call, answered_by: by.to_string() });
        if let Some(hook) = amd.callback {
            let params = vec![
                ("CallSid".to_owned(), call.to_string()),
                ("AccountSid".to_owned(), self.leg(call).map(|l| l.account.to_string()).unwrap_or_default()),
                ("AnsweredBy".to_owned(), by.to_string()),
                ("MachineDetectionDuration".to_owned(), after.as_millis().to_string()),
            ];
            self.send_callback(call, &hook, params, "amd status callback");
        }
        if amd.blocking {
            self.after_answer(call);
        }
    }

    /// The leg is answered (and detection, if blocking, is done): do what it was created for.
    fn after_answer(&mut self, call: CallSid) {
        let Some(leg) = self.twilio.calls.get_mut(&call) else { return };
        let Some(on_answer) = leg.on_answer.take() else { return };
        if let Some(limit) = leg.time_limit {
            self.schedule(limit, Event::TimeLimit(call));
        }
        match on_answer {
            OnAnswer::Run(Doc::Url(hook)) => self.fetch_twiml(call, hook, FetchKind::Voice, Vec::new()),
            OnAnswer::Run(Doc::Twiml(text)) => self.load_document(call, &text, None),
            OnAnswer::BridgeParent(parent) => self.child_answered(parent, call),
            OnAnswer::Join(conference, settings) => self.participant_answered(conference, call, *settings),
        }
    }

    /// The far end of `call` hangs up.
    pub fn remote_hangup(&mut self, call: CallSid) {
        let Some(leg) = self.leg(call) else { return };
        let status =
            if leg.state == LegState::InProgress { CallStatus::Completed } else { CallStatus::Canceled };
        self.end_call(call, status, "the far end hung up");
    }

    /// Ends a leg with `status` and unwinds whatever it was doing.
    pub(crate) fn end_call(&mut self, call: CallSid, status: CallStatus, cause: &str) {
        let Some(leg) = self.leg(call) else { return };
        if leg.state.is_ended() {
            return;
        }
        // An answered leg can only complete.
        let status = if leg.state == LegState::InProgress { CallStatus::Completed } else { status };
        let exec =
            self.leg_mut(call).map(|l| std::mem::replace(&mut l.exec, Exec::Done)).unwrap_or(Exec::Done);
        // A REST participant that never answered is no longer listed in its conference.
        if let Some(OnAnswer::Join(conference, _)) = self.leg_mut(call).and_then(|l| l.on_answer.take())
            && let Some(c) = self.twilio.conferences.get_mut(&conference)
        {
            c.participants.shift_remove(&call);
        }
        if let Some(leg) = self.leg_mut(call) {
            leg.verbs.clear();
            if leg.sip_response_code.is_none() {
                leg.sip_response_code = Some(if status == CallStatus::Completed { 200 } else { 487 });
            }
        }
        self.leg_input(call, LegInput::End(status), Some(cause));
        self.bump_generation(call);
        self.set_hears(call, "nothing (call ended)");
        self.unwind(call, exec, Unwind::Ended);
        let forks: Vec<StreamSid> =
            self.leg(call).map(|l| l.forks.iter().map(|(s, _)| *s).collect()).unwrap_or_default();
        for stream in forks {
            self.stop_stream(stream, "call ended");
        }
        self.child_ended(call);
    }

    /// Leaves whatever `exec` was doing, because the leg ended or is being redirected.
    pub(crate) fn unwind(&mut self, call: CallSid, exec: Exec, why: Unwind) {
        match exec {
            Exec::Dialing { dial, children, bridged, bridged_at } => {
                for child in children {
                    let status =
                        if Some(child) == bridged { CallStatus::Completed } else { CallStatus::Canceled };
                    self.detach_child(child);
                    self.end_call(child, status, "the parent left the dial");
                }
                if why == Unwind::Ended {
                    // The caller hung up during the <Dial>: Twilio still requests the action URL; the
                    // call is over, so whatever it answers is not executed.
                    let dial_status = match bridged {
                        Some(_) => crate::twilio::model::DialCallStatus::Completed,
                        None => crate::twilio::model::DialCallStatus::Canceled,
                    };
                    let duration = bridged_at.map(|t| self.now - t);
                    self.dial_action_after_hangup(call, &dial, dial_status, bridged, duration);
                }
            }
            Exec::Conferencing { conference, .. } | Exec::Participant(conference) => {
                self.leave_conference(conference, call, Leave::Left);
            }
            Exec::Streaming { stream, .. } => self.stop_stream(stream, "the call left <Connect>"),
            // A bridged child redirected away ends its parent's dial; when it ends, `end_call` does.
            Exec::Bridged(_) if why == Unwind::Redirected => self.child_ended(call),
            Exec::Bridged(_)
            | Exec::Idle
            | Exec::Fetching
            | Exec::Playing
            | Exec::Gathering { .. }
            | Exec::AppError
            | Exec::Done => {}
        }
    }

    /// Stops a stream and journals it.
    pub(crate) fn stop_stream(&mut self, stream: StreamSid, cause: &str) {
        if self.twilio.streams.shift_remove(&stream).is_some() {
            // Twilio: the stream gets a `stop` message, then the socket closes.
            self.transition(Entity::Stream(stream), "connected", "stopped", Some(cause));
            if self.vapi.streams.contains_key(&stream) {
                self.schedule(SimDuration::ZERO, crate::vapi::Event::StreamStopped(stream));
            } else {
                self.push_effect(crate::world::Effect::StopStream(stream));
            }
        }
        for leg in self.twilio.calls.values_mut() {
            leg.forks.retain(|(s, _)| *s != stream);
        }
    }
}

/// Why a leg leaves what it was doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unwind {
    Ended,
    Redirected,
}

/// How a participant leaves a conference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Leave {
    Left,
    Kicked,
}

/// Who answers, for a journal line: `human`, `fax`, `machine (8.000s greeting, beep)`.
fn describe_answerer(by: crate::phone::Answerer) -> String {
    match by {
        crate::phone::Answerer::Human => "human".into(),
        crate::phone::Answerer::Fax => "fax".into(),
        crate::phone::Answerer::Machine { greeting, beep } => {
            format!("machine ({greeting} greeting, {})", if beep { "beep" } else { "no beep" })
        }
    }
}

pub(crate) fn state_name(state: LegState) -> &'static str {
    match state {
        LegState::Queued => "queued",
        LegState::Initiated => "initiated",
        LegState::Ringing => "ringing",
        LegState::InProgress => "in-progress",
        LegState::Ended(status) => status.as_str(),
    }
}
