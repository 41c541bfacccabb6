//! The orchestrator's decisions for one caller: state, events in, actions out. Pure: no I/O, no clock.
//!
//! The shell (`server`) turns webhooks and API results into [`Event`]s, calls [`Call::step`], persists
//! the new state, answers the webhook with the [`Reply`] and performs the [`Action`]s, whose outcomes
//! come back as further events. Everything the shell needs to act is in the action; everything the
//! machine needs to decide is in the event (or already in the state), so every order of events can be
//! tested without a network.
//!
//! The promise: **a caller whose transfer fails comes back to the assistant.** A transfer fails when the
//! specialist's leg ends busy, unanswered, failed or canceled, when a machine or a fax answers, or when
//! the specialist hangs up within [`QUICK_HANG_UP_S`] of answering; a caller whose specialist hangs up
//! later is brought back too, so nobody is left alone in a silent conference.

use serde::{Deserialize, Serialize};

/// A specialist who hangs up within this many seconds of answering did not take the call.
pub const QUICK_HANG_UP_S: u32 = 5;
/// How many times creating an assistant session is tried before giving up.
pub const SESSION_ATTEMPTS: u32 = 3;
/// The most conversation lines kept for context; older ones are dropped first.
pub const TRANSCRIPT_LINES: usize = 40;
/// The longest line kept, in characters.
const LINE_CHARS: usize = 500;
/// The most webhook keys remembered to recognise redeliveries.
const SEEN_KEYS: usize = 128;

/// One caller's conversation, keyed by the caller's Twilio `CallSid`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The caller's `CallSid`.
    pub caller: String,
    /// The caller's number.
    pub from: String,
    /// The Twilio number the caller dialed.
    pub to: String,
    pub phase: Phase,
    /// The TwiML that answered Twilio's voice webhook, repeated if the webhook is delivered again.
    pub greeting: Option<String>,
    /// The current (or last) assistant session: a Vapi call id.
    pub session: Option<String>,
    /// Every transfer, oldest first.
    pub transfers: Vec<Transfer>,
    /// The conversation with earlier sessions.
    pub earlier: Vec<Line>,
    /// The conversation with the current session (during a transfer, the one the caller left), as Vapi
    /// last reported it.
    pub transcript: Vec<Line>,
    /// How many lines that report had before [`TRANSCRIPT_LINES`] cut it: a late, older report is
    /// recognised by having fewer.
    #[serde(default)]
    pub transcript_reported: usize,
    /// Whether a session is being created (a second voice webhook must not create another).
    pub creating: bool,
    /// Failed attempts to create the session being waited for.
    pub session_failures: u32,
    /// Keys of webhooks already handled, newest last; bounded.
    pub seen: Vec<String>,
    /// Answers given to transfer requests, by request key; bounded like `seen`.
    pub answers: Vec<Answer>,
}

/// The answer given to one transfer request, repeated if the request is delivered again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub key: String,
    pub accepted: bool,
    pub text: String,
}

/// Where the caller is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Twilio's voice webhook is waiting for the first assistant session.
    Starting,
    /// Talking with the assistant.
    Assistant,
    /// On hold in the transfer's conference while a specialist is dialed.
    Holding,
    /// In the conference with a specialist.
    Bridged,
    /// Coming back: a new assistant session is being created, then the caller's leg is redirected to it.
    Returning,
    /// The caller has gone.
    Ended,
}

/// A line of the conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// `user` or `assistant`.
    pub role: String,
    pub text: String,
}

/// One transfer: a department's numbers, dialed in order until one answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The assistant session that asked for it.
    pub session: String,
    pub department: String,
    pub numbers: Vec<String>,
    /// The conference the caller waits in.
    pub conference: String,
    /// One per number dialed so far, in order.
    pub attempts: Vec<Attempt>,
    /// Whether the caller's leg has been moved into the conference.
    pub holding: bool,
    /// How the transfer ended, once it has.
    pub outcome: Option<Outcome>,
}

/// One dial of a specialist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub number: String,
    /// The specialist leg's `CallSid`, once Twilio has given it.
    pub leg: Option<String>,
    /// The furthest status seen.
    pub status: LegStatus,
    /// Who answered, when Twilio's detection said.
    pub answered_by: Option<AnsweredBy>,
    /// Whether the specialist was put into the conference.
    pub bridged: bool,
    pub outcome: Option<Outcome>,
}

/// A Twilio call status, in the order a leg moves through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegStatus {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl LegStatus {
    /// Parses Twilio's `CallStatus` spelling.
    pub fn parse(text: &str) -> Option<LegStatus> {
        Some(match text {
            "queued" => LegStatus::Queued,
            "initiated" => LegStatus::Initiated,
            "ringing" => LegStatus::Ringing,
            "in-progress" | "answered" => LegStatus::InProgress,
            "completed" => LegStatus::Completed,
            "busy" => LegStatus::Busy,
            "no-answer" => LegStatus::NoAnswer,
            "failed" => LegStatus::Failed,
            "canceled" => LegStatus::Canceled,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        self >= LegStatus::Completed
    }

    /// Whether a status report moves a leg forward: a final status after a final status, or any status
    /// before the one already seen, is stale.
    fn advances(self, from: LegStatus) -> bool {
        !from.is_final() && self > from
    }
}

/// Twilio's `AnsweredBy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredBy {
    Human,
    Machine,
    Fax,
    /// Detection ran out of time; treated as a person (Twilio's advice: most `unknown`s are people who
    /// said little).
    Unknown,
}

impl AnsweredBy {
    /// Parses `human`, `machine_start`, `machine_end_beep`, `machine_end_silence`, `machine_end_other`,
    /// `fax`, `unknown`.
    pub fn parse(text: &str) -> Option<AnsweredBy> {
        Some(match text {
            "human" => AnsweredBy::Human,
            "fax" => AnsweredBy::Fax,
            "unknown" => AnsweredBy::Unknown,
            t if t.starts_with("machine") => AnsweredBy::Machine,
            _ => return None,
        })
    }

    fn is_person(self) -> bool {
        matches!(self, AnsweredBy::Human | AnsweredBy::Unknown)
    }
}

/// How a transfer (or one attempt of it) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Busy,
    NoAnswer,
    Failed,
    Canceled,
    /// A voicemail or a fax answered.
    Machine,
    /// The specialist answered and hung up within [`QUICK_HANG_UP_S`].
    HungUp,
    /// The specialist talked with the caller, then hung up.
    Completed,
    /// The conference ended under the caller.
    ConferenceEnded,
    /// The caller left.
    CallerLeft,
}

impl Outcome {
    /// The spelling the resumed assistant receives (`{{transfer_outcome}}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Busy => "busy",
            Outcome::NoAnswer => "no-answer",
            Outcome::Failed => "failed",
            Outcome::Canceled => "canceled",
            Outcome::Machine => "voicemail",
            Outcome::HungUp => "hung-up",
            Outcome::Completed => "completed",
            Outcome::ConferenceEnded => "conference-ended",
            Outcome::CallerLeft => "caller-left",
        }
    }

    fn of_final_status(status: LegStatus) -> Outcome {
        match status {
            LegStatus::Busy => Outcome::Busy,
            LegStatus::NoAnswer => Outcome::NoAnswer,
            LegStatus::Canceled => Outcome::Canceled,
            _ => Outcome::Failed,
        }
    }
}

/// A transfer destination the shell resolved against the allowlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub department: String,
    /// Tried in order; never empty.
    pub numbers: Vec<String>,
}

/// Something that happened to the caller's conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Twilio's voice webhook for the incoming call.
    Incoming { from: String, to: String },
    /// An assistant session was created.
    SessionCreated { id: String, twiml: String },
    /// Creating an assistant session failed (the shell logs why).
    SessionFailed,
    /// The caller's leg now runs the returned session's TwiML.
    Redirected,
    /// Redirecting the caller's leg failed for a reason other than the caller having gone.
    RedirectFailed,
    /// The conversation so far with `session`, from a Vapi message.
    Transcript { session: String, lines: Vec<Line> },
    /// The assistant asked for a transfer. `key` identifies the request (a `toolCallId`), so that a
    /// redelivery is recognised; `session` is the Vapi call that asked; `destination` is the allowlist's
    /// answer: where to, or why not.
    TransferRequested { key: String, session: String, destination: Result<Destination, String> },
    /// The caller's leg is in the transfer's conference.
    Held { transfer: usize },
    /// Moving the caller's leg into the conference failed for a reason other than the caller having gone;
    /// the caller is still with the assistant.
    HoldFailed { transfer: usize },
    /// Twilio created the specialist's leg.
    Dialed { transfer: usize, attempt: usize, leg: String },
    /// Twilio refused to create the specialist's leg (the shell logs why).
    DialFailed { transfer: usize, attempt: usize },
    /// A status callback for a specialist's leg; `key` identifies the delivery (`CallSid` and
    /// `SequenceNumber`), `duration_s` is Twilio's `CallDuration` on a final status.
    SpecialistStatus {
        transfer: usize,
        attempt: usize,
        leg: String,
        status: LegStatus,
        key: Option<String>,
        duration_s: Option<u32>,
        answered_by: Option<AnsweredBy>,
    },
    /// Twilio asks what the specialist's answered leg should do, after machine detection.
    SpecialistAnswered { transfer: usize, attempt: usize, leg: String, answered_by: Option<AnsweredBy> },
    /// A status callback for the caller's leg.
    CallerStatus { status: LegStatus, key: Option<String> },
    /// Acting on the caller's leg showed it has ended.
    CallerGone,
    /// The caller's `<Dial><Conference>` ended (Twilio requested the Dial `action`).
    HoldEnded { transfer: usize },
    /// A Vapi call ended (its end-of-call report or final status update).
    SessionEnded { id: String },
    /// The orchestrator restarted: work that was in flight when it stopped is taken up again.
    Restarted,
}

/// Something the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create an assistant session for the caller; `resume` carries the context when coming back.
    CreateSession { resume: Option<Resume> },
    /// Redirect the caller's leg to this TwiML.
    RedirectCaller { twiml: String },
    /// Move the caller's leg into the transfer's conference, on hold.
    Hold { transfer: usize, conference: String },
    /// Dial a specialist into the transfer's conference.
    Dial { transfer: usize, attempt: usize, number: String },
    /// End a specialist's leg.
    HangUp { leg: String },
}

/// What a resumed assistant session is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    pub department: String,
    pub outcome: Outcome,
    pub transcript: Vec<Line>,
}

/// The answer to the webhook that carried the event, when it expects one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Answer Twilio with a session's TwiML.
    Twiml(String),
    /// Ask Twilio to come back shortly (the session is not ready).
    Retry,
    /// Tell the caller the service is unavailable.
    Unavailable,
    /// Put the answering specialist into the conference.
    Join { conference: String },
    /// Hang up the leg that asked.
    HangUp,
    /// A transfer request's answer, for the assistant: accepted or refused, and what to say.
    Transfer { accepted: bool, text: String },
}

/// What a step decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub actions: Vec<Action>,
    pub reply: Option<Reply>,
}

impl Decision {
    fn act(actions: Vec<Action>) -> Decision {
        Decision { actions, reply: None }
    }

    fn reply(reply: Reply) -> Decision {
        Decision { actions: Vec::new(), reply: Some(reply) }
    }
}

impl Call {
    /// A caller who has just dialed in.
    pub fn new(caller: impl Into<String>, from: impl Into<String>, to: impl Into<String>) -> Call {
        Call {
            caller: caller.into(),
            from: from.into(),
            to: to.into(),
            phase: Phase::Starting,
            greeting: None,
            session: None,
            transfers: Vec::new(),
            earlier: Vec::new(),
            transcript: Vec::new(),
            transcript_reported: 0,
            creating: false,
            session_failures: 0,
            seen: Vec::new(),
            answers: Vec::new(),
        }
    }

    /// The transfer under way, if any.
    pub fn current_transfer(&self) -> Option<&Transfer> {
        match self.phase {
            Phase::Holding | Phase::Bridged => self.transfers.last(),
            _ => None,
        }
    }

    /// Applies `event`: the new state is `self`, what to do is returned.
    pub fn step(&mut self, event: Event) -> Decision {
        match event {
            Event::Incoming { .. } => self.incoming(),
            Event::SessionCreated { id, twiml } => self.session_created(id, twiml),
            Event::SessionFailed => self.session_failed(),
            Event::Redirected => {
                if self.phase == Phase::Returning {
                    self.phase = Phase::Assistant;
                }
                Decision::default()
            }
            Event::RedirectFailed => self.redirect_failed(),
            Event::Transcript { session, lines } => {
                if self.session.as_deref() == Some(session.as_str()) {
                    self.set_transcript(lines);
                }
                Decision::default()
            }
            Event::TransferRequested { key, session, destination } => {
                self.transfer_requested(key, &session, destination)
            }
            Event::Held { transfer } => self.held(transfer),
            Event::HoldFailed { transfer } => {
                if self.phase == Phase::Holding
                    && transfer + 1 == self.transfers.len()
                    && !self.transfers[transfer].holding
                {
                    self.transfers[transfer].outcome = Some(Outcome::Failed);
                    self.phase = Phase::Assistant;
                    self.session = Some(self.transfers[transfer].session.clone());
                }
                Decision::default()
            }
            Event::Dialed { transfer, attempt, leg } => self.dialed(transfer, attempt, leg),
            Event::DialFailed { transfer, attempt } => match self.live_attempt(transfer, attempt) {
                Some(a) if a.outcome.is_none() => {
                    a.status = LegStatus::Failed;
                    self.attempt_failed(transfer, attempt, Outcome::Failed)
                }
                _ => Decision::default(),
            },
            Event::SpecialistStatus { transfer, attempt, leg, status, key, duration_s, answered_by } => {
                if key.is_some_and(|k| !self.first_time(k)) {
                    return Decision::default();
                }
                self.specialist_status(transfer, attempt, leg, status, duration_s, answered_by)
            }
            Event::SpecialistAnswered { transfer, attempt, leg, answered_by } => {
                self.specialist_answered(transfer, attempt, leg, answered_by)
            }
            Event::CallerStatus { status, key } => {
                if key.is_some_and(|k| !self.first_time(k)) || !status.is_final() {
                    return Decision::default();
                }
                self.caller_gone()
            }
            Event::CallerGone => self.caller_gone(),
            Event::HoldEnded { transfer } => self.hold_ended(transfer),
            Event::SessionEnded { id } => {
                // The assistant's conversation is over while the caller was with it: the caller hung
                // up or the assistant ended the call. A session ending because the caller was moved
                // to a transfer is not this: the phase has moved on already.
                if self.phase == Phase::Assistant && self.session.as_deref() == Some(id.as_str()) {
                    self.phase = Phase::Ended;
                }
                Decision::default()
            }
            Event::Restarted => self.restarted(),
        }
    }

    fn incoming(&mut self) -> Decision {
        match (self.phase, &self.greeting) {
            // Twilio delivered the voice webhook again: the same answer, no second session.
            (_, Some(twiml)) => Decision::reply(Reply::Twiml(twiml.clone())),
            (Phase::Starting, None) if self.creating => Decision::reply(Reply::Retry),
            (Phase::Starting, None) if self.session_failures < SESSION_ATTEMPTS => {
                self.creating = true;
                Decision::act(vec![Action::CreateSession { resume: None }])
            }
            (Phase::Starting, None) => Decision::reply(Reply::Unavailable),
            (_, None) => Decision::reply(Reply::Retry),
        }
    }

    fn restarted(&mut self) -> Decision {
        self.creating = false;
        match self.phase {
            // The session being created when the orchestrator stopped may never have been applied.
            Phase::Returning => {
                self.creating = true;
                Decision::act(vec![Action::CreateSession { resume: self.resume() }])
            }
            Phase::Holding => match self.transfers.last() {
                Some(t) if !t.holding => Decision::act(vec![Action::Hold {
                    transfer: self.transfers.len() - 1,
                    conference: t.conference.clone(),
                }]),
                _ => Decision::default(),
            },
            _ => Decision::default(),
        }
    }

    fn session_created(&mut self, id: String, twiml: String) -> Decision {
        self.session_failures = 0;
        self.creating = false;
        match self.phase {
            Phase::Starting => {
                self.session = Some(id);
                self.greeting = Some(twiml.clone());
                self.phase = Phase::Assistant;
                Decision::reply(Reply::Twiml(twiml))
            }
            Phase::Returning => {
                self.session = Some(id);
                self.earlier.append(&mut self.transcript);
                self.transcript_reported = 0;
                let skip = self.earlier.len().saturating_sub(TRANSCRIPT_LINES);
                self.earlier.drain(..skip);
                Decision::act(vec![Action::RedirectCaller { twiml }])
            }
            // The caller left while the session was being created; Vapi ends a bypass session that no
            // call ever reaches on its own.
            _ => Decision::default(),
        }
    }

    fn session_failed(&mut self) -> Decision {
        self.session_failures += 1;
        self.creating = false;
        match self.phase {
            Phase::Starting if self.session_failures < SESSION_ATTEMPTS => Decision::reply(Reply::Retry),
            Phase::Starting => Decision::reply(Reply::Unavailable),
            // The caller stays on hold (hearing music) while the session is tried again.
            Phase::Returning if self.session_failures < SESSION_ATTEMPTS => {
                Decision::act(vec![Action::CreateSession { resume: self.resume() }])
            }
            _ => Decision::default(),
        }
    }

    fn redirect_failed(&mut self) -> Decision {
        if self.phase != Phase::Returning {
            return Decision::default();
        }
        self.session_failures += 1;
        match &self.session {
            Some(_) if self.session_failures < SESSION_ATTEMPTS => {
                // A new session: the one whose TwiML failed to apply may already have given up.
                Decision::act(vec![Action::CreateSession { resume: self.resume() }])
            }
            _ => Decision::default(),
        }
    }

    fn set_transcript(&mut self, lines: Vec<Line>) {
        // Compared with the length reported, not the length kept: once a conversation is longer than
        // TRANSCRIPT_LINES, an older report is still longer than what is kept.
        if lines.len() < self.transcript_reported {
            // Messages are posted concurrently: an older report arrived after a newer one.
            return;
        }
        self.transcript_reported = lines.len();
        let skip = lines.len().saturating_sub(TRANSCRIPT_LINES);
        self.transcript = lines
            .into_iter()
            .skip(skip)
            .map(|mut line| {
                if let Some((cut, _)) = line.text.char_indices().nth(LINE_CHARS) {
                    line.text.truncate(cut);
                }
                line
            })
            .collect();
    }

    fn transfer_requested(
        &mut self,
        key: String,
        session: &str,
        destination: Result<Destination, String>,
    ) -> Decision {
        if let Some(answer) = self.answers.iter().find(|a| a.key == key) {
            // Vapi delivered the tool call again: the same answer, nothing done twice.
            return Decision::reply(Reply::Transfer { accepted: answer.accepted, text: answer.text.clone() });
        }
        let (accepted, text, actions) = match (self.phase, destination) {
            (Phase::Ended, _) => (false, "The caller has already hung up.".to_owned(), Vec::new()),
            (Phase::Assistant, _) if self.session.as_deref() != Some(session) => {
                (false, "This conversation is no longer connected to the caller.".to_owned(), Vec::new())
            }
            (Phase::Holding | Phase::Bridged | Phase::Returning | Phase::Starting, _) => {
                (false, "A transfer is already under way for this caller.".to_owned(), Vec::new())
            }
            (Phase::Assistant, Err(refusal)) => (false, refusal, Vec::new()),
            (Phase::Assistant, Ok(destination)) => {
                let transfer = self.transfers.len();
                let conference = format!("{}-transfer-{}", self.caller, transfer + 1);
                let text = format!(
                    "Transferring the caller to {}. They will hear hold music until a specialist answers.",
                    destination.department
                );
                self.transfers.push(Transfer {
                    session: session.to_owned(),
                    department: destination.department,
                    numbers: destination.numbers,
                    conference: conference.clone(),
                    attempts: Vec::new(),
                    holding: false,
                    outcome: None,
                });
                self.phase = Phase::Holding;
                // The caller leaves this session for the conference; what was said in it is kept, and
                // moves to `earlier` when a new session replaces it (`session_created`): if the hold
                // fails, the caller stays with this session, whose next report repeats those lines.
                self.session = None;
                (true, text, vec![Action::Hold { transfer, conference }])
            }
        };
        self.answers.push(Answer { key, accepted, text: text.clone() });
        if self.answers.len() > SEEN_KEYS {
            self.answers.remove(0);
        }
        Decision { actions, reply: Some(Reply::Transfer { accepted, text }) }
    }

    fn held(&mut self, transfer: usize) -> Decision {
        if self.phase != Phase::Holding || transfer + 1 != self.transfers.len() {
            return Decision::default();
        }
        let t = &mut self.transfers[transfer];
        if t.holding {
            return Decision::default();
        }
        t.holding = true;
        self.dial_next(transfer)
    }

    /// Dials the transfer's next number.
    fn dial_next(&mut self, transfer: usize) -> Decision {
        let t = &mut self.transfers[transfer];
        let attempt = t.attempts.len();
        let number = t.numbers[attempt].clone();
        t.attempts.push(Attempt {
            number: number.clone(),
            leg: None,
            status: LegStatus::Queued,
            answered_by: None,
            bridged: false,
            outcome: None,
        });
        Decision::act(vec![Action::Dial { transfer, attempt, number }])
    }

    fn dialed(&mut self, transfer: usize, attempt: usize, leg: String) -> Decision {
        let Some(a) = self.transfers.get_mut(transfer).and_then(|t| t.attempts.get_mut(attempt)) else {
            return Decision::default();
        };
        let revealed = a.leg.is_none();
        if revealed {
            a.leg = Some(leg.clone());
        }
        // The caller left, or the attempt was given up, while Twilio was creating the leg. Only if the
        // leg was unknown until now: one known then was hung up by whatever gave the attempt up, or by
        // the status callback that revealed it (`specialist_status`).
        let abandoned = a.outcome.is_some() && !a.status.is_final();
        if revealed && (self.phase == Phase::Ended || abandoned) {
            return Decision::act(vec![Action::HangUp { leg }]);
        }
        Decision::default()
    }

    /// The attempt, if it is the one the caller is waiting on.
    fn live_attempt(&mut self, transfer: usize, attempt: usize) -> Option<&mut Attempt> {
        if !matches!(self.phase, Phase::Holding | Phase::Bridged) || transfer + 1 != self.transfers.len() {
            return None;
        }
        let t = &mut self.transfers[transfer];
        if attempt + 1 != t.attempts.len() {
            return None;
        }
        t.attempts.get_mut(attempt)
    }

    fn specialist_status(
        &mut self,
        transfer: usize,
        attempt: usize,
        leg: String,
        status: LegStatus,
        duration_s: Option<u32>,
        answered_by: Option<AnsweredBy>,
    ) -> Decision {
        let Some(a) = self.transfers.get_mut(transfer).and_then(|t| t.attempts.get_mut(attempt)) else {
            return Decision::default();
        };
        let revealed = a.leg.is_none();
        if revealed {
            a.leg = Some(leg.clone());
        }
        if a.answered_by.is_none() {
            a.answered_by = answered_by;
        }
        if revealed && a.outcome.is_some() && !a.status.is_final() && !status.is_final() {
            // The attempt was given up (the caller left) before Twilio's answer to the Dial came back, and
            // this callback overtook it: the leg is known now, so it is hung up now (and `dialed` will not
            // hang it up a second time).
            if status.advances(a.status) {
                a.status = status;
            }
            return Decision::act(vec![Action::HangUp { leg }]);
        }
        if !status.advances(a.status) {
            // Late or out of order: never move a leg backwards.
            return Decision::default();
        }
        a.status = status;
        if !status.is_final() {
            return Decision::default();
        }
        let outcome = if a.bridged {
            if duration_s.is_some_and(|d| d < QUICK_HANG_UP_S) { Outcome::HungUp } else { Outcome::Completed }
        } else if status == LegStatus::Completed {
            // Answered but never bridged: detection found a machine (and the leg was told to hang up),
            // or the far end hung up before detection finished, or the join never happened.
            match a.answered_by {
                Some(by) if !by.is_person() => Outcome::Machine,
                Some(_) => Outcome::Failed,
                None => Outcome::HungUp,
            }
        } else {
            Outcome::of_final_status(status)
        };
        if a.outcome.is_some() {
            // Already decided (a machine detected at answer time); the leg has now ended as asked.
            return Decision::default();
        }
        if self.live_attempt(transfer, attempt).is_none() {
            return Decision::default();
        }
        self.attempt_failed(transfer, attempt, outcome)
    }

    fn specialist_answered(
        &mut self,
        transfer: usize,
        attempt: usize,
        leg: String,
        answered_by: Option<AnsweredBy>,
    ) -> Decision {
        let holding = self.phase == Phase::Holding;
        let Some(a) = self.live_attempt(transfer, attempt) else {
            // Nobody is waiting for this specialist any more (the caller left, or another attempt is
            // current): the leg hangs up at once.
            return Decision::reply(Reply::HangUp);
        };
        if a.leg.is_none() {
            a.leg = Some(leg);
        }
        if !holding && a.bridged && answered_by.or(a.answered_by).is_none_or(AnsweredBy::is_person) {
            // Twilio retried the fetch (the first answer timed out): the leg runs whichever answer
            // arrives, so it gets the same one; `HangUp` would cut off the specialist talking with the
            // caller. Nothing changes: the leg joins its conference once. (Not if a machine has been
            // reported for it since: never Join a machine.)
            let conference = self.transfers[transfer].conference.clone();
            return Decision::reply(Reply::Join { conference });
        }
        if a.outcome.is_some() || !holding {
            return Decision::reply(Reply::HangUp);
        }
        a.answered_by = answered_by.or(a.answered_by);
        if a.status < LegStatus::InProgress {
            a.status = LegStatus::InProgress;
        }
        match a.answered_by {
            Some(by) if !by.is_person() => {
                let mut decision = self.attempt_failed(transfer, attempt, Outcome::Machine);
                // The leg hangs up through its own TwiML, not through the API.
                decision.actions.retain(|action| !matches!(action, Action::HangUp { .. }));
                decision.reply = Some(Reply::HangUp);
                decision
            }
            _ => {
                a.bridged = true;
                self.phase = Phase::Bridged;
                let conference = self.transfers[transfer].conference.clone();
                Decision::reply(Reply::Join { conference })
            }
        }
    }

    /// An attempt ended without a lasting bridge: try the next number, or bring the caller back.
    fn attempt_failed(&mut self, transfer: usize, attempt: usize, outcome: Outcome) -> Decision {
        let bridged_before = self.phase == Phase::Bridged;
        let t = &mut self.transfers[transfer];
        let a = &mut t.attempts[attempt];
        a.outcome = Some(outcome);
        let mut actions = Vec::new();
        if let Some(leg) = a.leg.clone().filter(|_| !a.status.is_final()) {
            actions.push(Action::HangUp { leg });
        }
        if !bridged_before && attempt + 1 < t.numbers.len() {
            self.phase = Phase::Holding;
            let mut next = self.dial_next(transfer);
            actions.append(&mut next.actions);
            return Decision::act(actions);
        }
        self.transfers[transfer].outcome = Some(outcome);
        self.phase = Phase::Returning;
        self.session_failures = 0;
        actions.push(Action::CreateSession { resume: self.resume() });
        Decision::act(actions)
    }

    fn hold_ended(&mut self, transfer: usize) -> Decision {
        if !matches!(self.phase, Phase::Holding | Phase::Bridged) || transfer + 1 != self.transfers.len() {
            return Decision::default();
        }
        // The conference ended under the caller, who is still on the line: bring them back. Any
        // specialist still ringing is hung up.
        let t = &mut self.transfers[transfer];
        let mut actions: Vec<Action> = t
            .attempts
            .iter()
            .filter(|a| !a.status.is_final())
            .filter_map(|a| a.leg.clone())
            .map(|leg| Action::HangUp { leg })
            .collect();
        for a in t.attempts.iter_mut().filter(|a| a.outcome.is_none()) {
            a.outcome = Some(Outcome::ConferenceEnded);
        }
        t.outcome.get_or_insert(Outcome::ConferenceEnded);
        self.phase = Phase::Returning;
        self.session_failures = 0;
        actions.push(Action::CreateSession { resume: self.resume() });
        Decision::act(actions)
    }

    fn caller_gone(&mut self) -> Decision {
        if self.phase == Phase::Ended {
            return Decision::default();
        }
        self.phase = Phase::Ended;
        let mut actions = Vec::new();
        if let Some(t) = self.transfers.last_mut() {
            for a in &mut t.attempts {
                if let Some(leg) = a.leg.clone().filter(|_| !a.status.is_final()) {
                    actions.push(Action::HangUp { leg });
                }
                a.outcome.get_or_insert(Outcome::CallerLeft);
            }
            t.outcome.get_or_insert(Outcome::CallerLeft);
        }
        Decision::act(actions)
    }

    /// What the resumed session is told: the last transfer's department and outcome, and the
    /// conversation so far.
    fn resume(&self) -> Option<Resume> {
        let t = self.transfers.last()?;
        // The last TRANSCRIPT_LINES of both: until a new session is created, the left one's lines are
        // still in `transcript`.
        let skip = (self.earlier.len() + self.transcript.len()).saturating_sub(TRANSCRIPT_LINES);
        let transcript = self.earlier.iter().chain(&self.transcript).skip(skip).cloned().collect();
        Some(Resume {
            department: t.department.clone(),
            outcome: t.outcome.unwrap_or(Outcome::Failed),
            transcript,
        })
    }

    /// Records a webhook key; false if it was seen before.
    fn first_time(&mut self, key: String) -> bool {
        if self.seen.contains(&key) {
            return false;
        }
        self.seen.push(key);
        if self.seen.len() > SEEN_KEYS {
            self.seen.remove(0);
        }
        true
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
