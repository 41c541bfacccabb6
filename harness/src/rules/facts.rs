//! Facts: a run's journal turned into typed call legs, conferences, media streams, assistant sessions,
//! the REST requests sent to the fakes and the webhooks sent to the target. The rules read only these.
//!
//! Building facts never fails: an entry that cannot be read (a SID that does not parse, a body that is
//! not a form or JSON) is skipped or kept as raw text.

use std::collections::BTreeMap;

use ringback_sim::ids::{CallSid, ConferenceSid, StreamSid};
use ringback_sim::journal::{
    ANSWER_FAULT_PREFIX, Entity, Event, HttpExchange, HttpResponse, Journal, Party, TargetAnswer,
};
use ringback_sim::time::{SimDuration, SimInstant};
use serde_json::Value;

use super::{Context, wire};

/// A point in the journal: when, and on which line. Ordered by time, then line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Moment {
    pub at: SimInstant,
    pub seq: u64,
}

impl Moment {
    /// The instant `d` after this moment (on no particular line).
    pub fn plus(self, d: SimDuration) -> SimInstant {
        self.at + d
    }
}

/// A state change of a leg, conference, stream or assistant session.
#[derive(Clone, Debug)]
pub struct Change {
    pub at: Moment,
    pub from: String,
    pub to: String,
    pub cause: Option<String>,
}

/// The statuses a Twilio call leg ends in.
pub const FINAL_STATUSES: [&str; 5] = ["completed", "busy", "no-answer", "failed", "canceled"];

/// How a leg ended.
#[derive(Clone, Debug)]
pub struct Ending {
    pub at: Moment,
    /// `completed`, `busy`, `no-answer`, `failed`, `canceled`.
    pub status: String,
    /// The journaled cause: `the far end`, `REST Status=completed`, `end of TwiML`, `<Hangup>`, ….
    pub cause: String,
}

/// What a leg is to the conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An inbound call to a service number.
    Caller,
    /// An outbound leg placed for that caller's transfer.
    Specialist { caller: CallSid },
    /// Anything else.
    Other,
}

/// One Twilio call leg.
#[derive(Clone, Debug)]
pub struct Leg {
    pub sid: CallSid,
    /// `inbound`, `outbound-api`, `outbound-dial`.
    pub direction: String,
    pub from: String,
    pub to: String,
    pub created: Moment,
    pub created_cause: String,
    /// The leg whose `<Dial>` placed this one.
    pub parent: Option<CallSid>,
    /// The conference a REST participant create placed this leg for.
    pub participant_of: Option<ConferenceSid>,
    pub answered: Option<Moment>,
    pub ended: Option<Ending>,
    /// The first answering machine detection result: its moment and `AnsweredBy`.
    pub detection: Option<(Moment, String)>,
    pub changes: Vec<Change>,
    /// What the leg's party hears from each moment on.
    pub audio: Vec<(Moment, String)>,
    /// What the leg's party said.
    pub says: Vec<(Moment, String)>,
    pub notifications: Vec<(Moment, u32, String)>,
    pub role: Role,
}

impl Leg {
    /// Whether the leg exists and has not ended at `m`.
    pub fn is_up_at(&self, m: Moment) -> bool {
        self.created <= m && self.ended.as_ref().is_none_or(|e| e.at > m)
    }

    /// When the leg stopped ringing (answered or ended), if it did.
    pub fn pending_until(&self) -> Option<Moment> {
        match (self.answered, &self.ended) {
            (Some(a), _) => Some(a),
            (None, Some(e)) => Some(e.at),
            (None, None) => None,
        }
    }

    /// Whether machine detection said a machine or a fax answered.
    pub fn machine_detected(&self) -> bool {
        self.detection.as_ref().is_some_and(|(_, by)| is_machine_answer(by))
    }

    /// Whether a machine or fax answered: detection says so, or the world says the number is one.
    pub fn is_machine(&self, context: &Context) -> bool {
        self.machine_detected() || context.machines.iter().any(|m| m == &self.to)
    }

    /// When a person is known to have answered: the later of the answer and a `human`/`unknown`
    /// detection, or the answer itself when there was no detection and the number is not a machine.
    pub fn human_answer(&self, context: &Context) -> Option<Moment> {
        let answered = self.answered?;
        match &self.detection {
            Some((at, by)) if !is_machine_answer(by) => Some(answered.max(*at)),
            Some(_) => None,
            None if context.machines.iter().any(|m| m == &self.to) => None,
            None => Some(answered),
        }
    }

    /// Whether it was answered and ended within 5 s (SPEC: that counts as a failed attempt).
    pub fn hung_up_at_once(&self) -> bool {
        match (self.answered, &self.ended) {
            (Some(a), Some(e)) => e.at.at - a.at <= SimDuration::from_secs(5),
            _ => false,
        }
    }

    /// The caller this leg was placed for, if it is a specialist leg.
    pub fn caller(&self) -> Option<CallSid> {
        match self.role {
            Role::Specialist { caller } => Some(caller),
            _ => None,
        }
    }
}

/// Whether an `AnsweredBy` value means a machine or a fax.
pub fn is_machine_answer(answered_by: &str) -> bool {
    answered_by.starts_with("machine") || answered_by == "fax"
}

/// A leg's time in a conference.
#[derive(Clone, Debug)]
pub struct Stint {
    pub call: CallSid,
    pub joined: Moment,
    pub left: Option<Moment>,
}

/// One conference.
#[derive(Clone, Debug)]
pub struct Conference {
    pub sid: ConferenceSid,
    pub name: String,
    pub created: Moment,
    pub started: Option<Moment>,
    /// When it completed, and why.
    pub ended: Option<(Moment, String)>,
    pub stints: Vec<Stint>,
}

/// A media stream Twilio opened on a leg.
#[derive(Clone, Debug)]
pub struct Stream {
    pub sid: StreamSid,
    pub call: CallSid,
    pub url: String,
    /// The Vapi call whose transport the URL names.
    pub vapi_call: Option<String>,
    pub opened: Moment,
    pub connected: Option<Moment>,
    /// When it ended, its last state (`closed` by the server, `stopped` by Twilio) and the cause.
    pub ended: Option<(Moment, String, Option<String>)>,
}

impl Stream {
    /// Whether the server (Vapi) closed it, rather than Twilio stopping it.
    pub fn closed_by_server(&self) -> bool {
        self.ended.as_ref().is_some_and(|(_, state, _)| state == "closed")
    }

    /// Whether it was connected at `m`.
    pub fn is_connected_at(&self, m: Moment) -> bool {
        self.connected.is_some_and(|c| c <= m) && self.ended.as_ref().is_none_or(|(e, _, _)| *e > m)
    }
}

/// A Vapi call (an assistant session).
#[derive(Clone, Debug)]
pub struct VapiCall {
    pub id: String,
    pub created: Moment,
    pub created_cause: Option<String>,
    pub changes: Vec<Change>,
    pub in_progress: Option<Moment>,
    /// When it ended, and its `endedReason`.
    pub ended: Option<(Moment, String)>,
    /// The index in [`Facts::rest`] of the `POST /call` that created it.
    pub create_request: Option<usize>,
    /// The Twilio leg it talks with.
    pub leg: Option<CallSid>,
}

impl VapiCall {
    /// Its status at `m` (`none` before it was created).
    pub fn status_at(&self, m: Moment) -> &str {
        self.changes.iter().take_while(|c| c.at <= m).last().map_or("none", |c| c.to.as_str())
    }

    /// Whether it is talking with the caller (`in-progress`) at `m` or at some moment after.
    pub fn in_progress_from(&self, m: Moment) -> bool {
        self.status_at(m) == "in-progress" || self.changes.iter().any(|c| c.at > m && c.to == "in-progress")
    }

    /// When it came back from forwarding a transfer to talking with the caller.
    pub fn resumed(&self) -> impl Iterator<Item = Moment> + '_ {
        self.changes.iter().filter(|c| c.from == "forwarding" && c.to == "in-progress").map(|c| c.at)
    }
}

/// A REST operation on one of the fakes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestOp {
    /// Twilio `POST …/Calls.json`.
    CreateCall,
    /// Twilio `POST …/Calls/{sid}.json`.
    UpdateCall(CallSid),
    /// Twilio `GET …/Calls/{sid}.json`.
    FetchCall(CallSid),
    /// Twilio `DELETE …/Calls/{sid}.json`.
    DeleteCall(CallSid),
    /// Twilio `POST …/Conferences/{sid or name}/Participants.json`.
    CreateParticipant(String),
    /// Twilio `POST …/Conferences/{c}/Participants/{call}.json`.
    UpdateParticipant(String, Option<CallSid>),
    /// Twilio `DELETE …/Conferences/{c}/Participants/{call}.json`.
    RemoveParticipant(String, Option<CallSid>),
    /// Twilio `POST …/Conferences/{sid}.json`.
    UpdateConference(String),
    /// Vapi `POST /call`.
    VapiCreateCall,
    /// Vapi `PATCH /call/{id}`.
    VapiUpdateCall(String),
    /// Vapi `DELETE /call/{id}`.
    VapiDeleteCall(String),
    /// Vapi `POST /{id}/control` (live call control).
    VapiControl(String),
    /// Anything else (lists, fetches of other resources, numbers, assistants).
    Other,
}

/// A request to a fake's REST API: by the target (`Client`) or by the fake Vapi (`Vapi`, to Twilio).
#[derive(Clone, Debug)]
pub struct RestAction {
    pub at: Moment,
    pub by: Party,
    /// Whether the target sent it: a client of the fakes, or in a `vapi-native` run the fake Vapi.
    from_target: bool,
    /// `Twilio` or `Vapi`.
    pub api: Party,
    pub method: String,
    pub url: String,
    pub op: RestOp,
    /// The form body (Twilio) or the query string's pairs.
    pub params: Vec<(String, String)>,
    pub body: String,
    pub json: Option<Value>,
    pub status: Option<u16>,
    pub response: Option<Value>,
}

impl RestAction {
    /// The first value of a form parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        wire::param(&self.params, name)
    }

    /// Whether the target sent it.
    pub fn by_target(&self) -> bool {
        self.from_target
    }

    /// Whether the fake answered 2xx.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// The call leg a Calls or Participants create made (`sid` or `call_sid` of the answer).
    pub fn created_leg(&self) -> Option<CallSid> {
        let r = self.response.as_ref()?;
        let sid = match self.op {
            RestOp::CreateCall => wire::json_str(r, "/sid"),
            RestOp::CreateParticipant(_) => wire::json_str(r, "/call_sid"),
            _ => None,
        }?;
        sid.parse().ok()
    }

    /// The Vapi call a `POST /call` created.
    pub fn created_vapi_call(&self) -> Option<&str> {
        match self.op {
            RestOp::VapiCreateCall => wire::json_str(self.response.as_ref()?, "/id"),
            _ => None,
        }
    }

    /// Whether it creates an outbound leg (a Calls or Participants create).
    pub fn is_dial(&self) -> bool {
        matches!(self.op, RestOp::CreateCall | RestOp::CreateParticipant(_))
    }

    /// The leg an update, fetch or delete is about.
    pub fn leg(&self) -> Option<CallSid> {
        match &self.op {
            RestOp::UpdateCall(sid) | RestOp::FetchCall(sid) | RestOp::DeleteCall(sid) => Some(*sid),
            RestOp::UpdateParticipant(_, sid) | RestOp::RemoveParticipant(_, sid) => *sid,
            _ => None,
        }
    }

    /// Whether it moves a leg to new TwiML (`Url` or `Twiml` on a Calls update).
    pub fn is_redirect(&self) -> bool {
        matches!(self.op, RestOp::UpdateCall(_))
            && (self.param("Url").is_some() || self.param("Twiml").is_some())
    }

    /// Whether it hangs up a leg (`Status=completed|canceled`, or a delete).
    pub fn is_hangup(&self) -> bool {
        match self.op {
            RestOp::UpdateCall(_) => matches!(self.param("Status"), Some("completed" | "canceled")),
            RestOp::DeleteCall(_) => true,
            _ => false,
        }
    }
}

/// A webhook one of the fakes sent (to the target, or Twilio's to the fake Vapi's own URLs).
#[derive(Clone, Debug)]
pub struct Webhook {
    pub at: Moment,
    pub from: Party,
    pub to: Party,
    /// Whether it was sent to the target: an orchestrator, or in a `vapi-native` run the fake Vapi.
    for_target: bool,
    pub url: String,
    /// The form body (Twilio's webhooks).
    pub params: Vec<(String, String)>,
    /// The URL's query pairs.
    pub query: Vec<(String, String)>,
    /// What the rules read of a JSON body (Vapi's messages).
    pub message: Option<wire::VapiMessage>,
    pub expects_twiml: bool,
    pub fault: Option<String>,
    /// What the sender got (an answer fault may have made it).
    pub response: Option<HttpResponse>,
    pub error: Option<String>,
    pub finished_at: Option<SimInstant>,
    /// What the target itself answered, when an answer fault changed what the sender got.
    pub target_answer: Option<TargetAnswer>,
}

impl Webhook {
    /// Whether it was sent to the target.
    pub fn to_target(&self) -> bool {
        self.for_target
    }

    /// The first value of a form parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        wire::param(&self.params, name)
    }

    /// `CallSid`.
    pub fn call_sid(&self) -> Option<CallSid> {
        self.param("CallSid")?.parse().ok()
    }

    /// Vapi's `message.type`.
    pub fn message_type(&self) -> Option<&str> {
        self.message.as_ref()?.kind.as_deref()
    }

    /// Vapi's `message.call.id`.
    pub fn vapi_call(&self) -> Option<&str> {
        self.message.as_ref()?.call_id.as_deref()
    }

    /// The ids of a `tool-calls` message's `toolCallList` (or, failing that, `toolCalls`).
    pub fn tool_call_ids(&self) -> Vec<String> {
        self.message.as_ref().map(|m| m.tool_call_ids.clone()).unwrap_or_default()
    }

    /// Whether the fault plan forged this copy.
    pub fn is_forged(&self) -> bool {
        self.fault.as_deref().is_some_and(|f| f.starts_with("forged"))
    }

    /// Whether this is a redelivered copy.
    pub fn is_duplicate(&self) -> bool {
        self.fault.as_deref().is_some_and(|f| f.starts_with("duplicate"))
    }

    /// Whether the fault plan delayed it.
    pub fn is_delayed(&self) -> bool {
        self.fault.as_deref().is_some_and(|f| f.starts_with("delayed"))
    }

    /// Whether the fault plan kept it from the target.
    pub fn is_dropped(&self) -> bool {
        self.fault.as_deref().is_some_and(|f| f.starts_with("dropped"))
    }

    /// Whether the run's fault plan made the answer the sender got (slow, a 500, unparsable TwiML).
    pub fn answer_faulted(&self) -> bool {
        self.fault.as_deref().is_some_and(|f| f.starts_with(ANSWER_FAULT_PREFIX))
    }

    /// The target's own answer: what it said, whatever a fault made of it on the way back.
    pub fn own_response(&self) -> Option<&HttpResponse> {
        self.target_answer.as_ref().map(|a| &a.response).or(self.response.as_ref())
    }

    /// How long the target itself took to answer, if it did.
    pub fn own_took(&self) -> Option<SimDuration> {
        match &self.target_answer {
            Some(a) => Some(a.at - self.at.at),
            None => self.response.as_ref().and(self.took()),
        }
    }

    /// Whether it reached the receiver: it was answered, or it timed out waiting for an answer.
    pub fn delivered(&self) -> bool {
        !self.is_dropped()
            && (self.response.is_some() || self.error.as_deref().is_some_and(|e| e.starts_with("timeout")))
    }

    /// Whether it is genuine and reached the receiver: what a careful target would act on.
    pub fn trustworthy(&self) -> bool {
        self.delivered() && !self.is_forged()
    }

    /// How long the answer took, if there was one.
    pub fn took(&self) -> Option<SimDuration> {
        self.finished_at.map(|f| f - self.at.at)
    }

    /// `SequenceNumber`, on Twilio's status callbacks.
    pub fn sequence_number(&self) -> Option<u64> {
        self.param("SequenceNumber")?.parse().ok()
    }
}

/// An assistant session asking for a transfer: a `tool-calls`, `transfer-destination-request` or
/// `phone-call-control` message to the target, or in a `vapi-native` run the session starting to forward.
#[derive(Clone, Debug)]
pub struct TransferRequest {
    pub at: Moment,
    pub caller: CallSid,
    pub vapi_call: String,
    /// The index in [`Facts::webhooks`] of the message that asked (none for a native transfer).
    pub webhook: Option<usize>,
}

/// The message types by which a session asks for a transfer.
pub const TRANSFER_MESSAGES: [&str; 3] = ["tool-calls", "transfer-destination-request", "phone-call-control"];

/// Everything the rules know about a run.
#[derive(Clone, Debug)]
pub struct Facts {
    /// The fake Vapi is the target (`vapi-native`).
    pub native: bool,
    /// The journal's last line (the end of the run as far as the rules can see).
    pub end: Moment,
    pub legs: BTreeMap<CallSid, Leg>,
    /// Callers, in the order they called.
    pub callers: Vec<CallSid>,
    pub conferences: BTreeMap<ConferenceSid, Conference>,
    /// Media streams, in the order they opened.
    pub streams: Vec<Stream>,
    pub vapi_calls: BTreeMap<String, VapiCall>,
    /// REST requests to the fakes, in journal order.
    pub rest: Vec<RestAction>,
    /// Webhooks, in journal order.
    pub webhooks: Vec<Webhook>,
    /// Transfer requests from the callers' sessions, in journal order.
    pub transfer_requests: Vec<TransferRequest>,
}

impl Facts {
    /// Reads the journal of a run.
    pub fn new(journal: &Journal, context: &Context) -> Facts {
        let mut b = Builder { native: context.vapi_native, ..Builder::default() };
        for entry in journal.entries() {
            let m = Moment { at: entry.at, seq: entry.seq };
            b.end = b.end.max(m);
            b.entry(m, &entry.event);
        }
        b.finish(context)
    }

    /// A leg by SID.
    pub fn leg(&self, sid: CallSid) -> Option<&Leg> {
        self.legs.get(&sid)
    }

    /// The callers' legs, in the order they called.
    pub fn caller_legs(&self) -> impl Iterator<Item = &Leg> {
        self.callers.iter().filter_map(|c| self.legs.get(c))
    }

    /// The specialist legs placed for `caller`, in the order they were created.
    pub fn specialists_of(&self, caller: CallSid) -> Vec<&Leg> {
        let mut legs: Vec<&Leg> = self.legs.values().filter(|l| l.caller() == Some(caller)).collect();
        legs.sort_by_key(|l| l.created);
        legs
    }

    /// The streams opened on `call`.
    pub fn streams_on(&self, call: CallSid) -> impl Iterator<Item = &Stream> {
        self.streams.iter().filter(move |s| s.call == call)
    }

    /// The assistant sessions that talked with `call`, in the order they were created.
    pub fn sessions_of(&self, call: CallSid) -> Vec<&VapiCall> {
        let mut calls: Vec<&VapiCall> = self.vapi_calls.values().filter(|v| v.leg == Some(call)).collect();
        calls.sort_by_key(|v| v.created);
        calls
    }

    /// The transfer requests from `caller`'s sessions.
    pub fn transfer_requests_of(&self, caller: CallSid) -> impl Iterator<Item = &TransferRequest> {
        self.transfer_requests.iter().filter(move |r| r.caller == caller)
    }

    /// Whether `call` is a caller's leg.
    pub fn is_caller(&self, call: CallSid) -> bool {
        self.legs.get(&call).is_some_and(|l| l.role == Role::Caller)
    }

    /// The caller whose conversation a leg belongs to: the caller itself, or the caller a specialist leg
    /// was placed for.
    pub fn conversation_of(&self, call: CallSid) -> Option<CallSid> {
        match self.legs.get(&call)?.role {
            Role::Caller => Some(call),
            Role::Specialist { caller } => Some(caller),
            Role::Other => None,
        }
    }

    /// The caller whose conversation a webhook is about (by `CallSid`, `DialCallSid` or Vapi call id).
    pub fn conversation_of_webhook(&self, w: &Webhook) -> Option<CallSid> {
        if let Some(c) = w.call_sid().and_then(|c| self.conversation_of(c)) {
            return Some(c);
        }
        if let Some(c) =
            w.param("DialCallSid").and_then(|s| s.parse().ok()).and_then(|c| self.conversation_of(c))
        {
            return Some(c);
        }
        let leg = self.vapi_calls.get(w.vapi_call()?)?.leg?;
        self.conversation_of(leg)
    }

    /// The caller a REST action by the target is about: the leg it updates, fetches or creates, or the
    /// session it creates or controls.
    pub fn conversation_of_rest(&self, r: &RestAction) -> Option<CallSid> {
        if let Some(c) = r.leg().or_else(|| r.created_leg()).and_then(|c| self.conversation_of(c)) {
            return Some(c);
        }
        let id = match &r.op {
            RestOp::VapiCreateCall => r.created_vapi_call()?,
            RestOp::VapiUpdateCall(id) | RestOp::VapiDeleteCall(id) | RestOp::VapiControl(id) => id,
            _ => return None,
        };
        let leg = self.vapi_calls.get(id)?.leg?;
        self.conversation_of(leg)
    }

    /// The times `a` and `b` could hear each other: both in a started conference, or one bridged to the
    /// other by `<Dial>`. Each interval is (start, end), with `None` for "until the end of the run".
    pub fn bridges(&self, a: CallSid, b: CallSid) -> Vec<(Moment, Option<Moment>)> {
        let mut out = Vec::new();
        for conf in self.conferences.values() {
            let Some(started) = conf.started else { continue };
            for sa in conf.stints.iter().filter(|s| s.call == a) {
                for sb in conf.stints.iter().filter(|s| s.call == b) {
                    let start = started.max(sa.joined).max(sb.joined);
                    let end =
                        [sa.left, sb.left, conf.ended.as_ref().map(|(m, _)| *m)].into_iter().flatten().min();
                    if end.is_none_or(|e| e > start) {
                        out.push((start, end));
                    }
                }
            }
        }
        for (parent, child) in [(a, b), (b, a)] {
            let (Some(p), Some(c)) = (self.legs.get(&parent), self.legs.get(&child)) else { continue };
            if c.parent != Some(parent) {
                continue;
            }
            let label = format!("bridged {child}");
            let start = p.audio.iter().find(|(_, h)| *h == label).map(|(m, _)| *m).or(c.answered);
            if let Some(start) = start {
                let end = [p.ended.as_ref().map(|e| e.at), c.ended.as_ref().map(|e| e.at)]
                    .into_iter()
                    .flatten()
                    .min();
                if end.is_none_or(|e| e > start) {
                    out.push((start, end));
                }
            }
        }
        out.sort_by_key(|(s, _)| *s);
        out
    }

    /// The first moment `caller` was bridged with a leg a person answered and stayed on (a person who
    /// hangs up within 5 s of answering is a failed attempt, not a conversation), if it ever was.
    pub fn first_human_bridge(&self, caller: CallSid, context: &Context) -> Option<(Moment, CallSid)> {
        self.legs
            .values()
            .filter(|l| l.sid != caller && l.role != Role::Caller && !l.is_machine(context))
            .filter(|l| l.human_answer(context).is_some() && !l.hung_up_at_once())
            .filter_map(|l| self.bridges(caller, l.sid).first().map(|(s, _)| (*s, l.sid)))
            .min()
    }

    /// The stints of `call` in any conference, with the conference.
    pub fn stints_of(&self, call: CallSid) -> Vec<(&Conference, &Stint)> {
        let mut out: Vec<(&Conference, &Stint)> = self
            .conferences
            .values()
            .flat_map(|c| c.stints.iter().filter(move |s| s.call == call).map(move |s| (c, s)))
            .collect();
        out.sort_by_key(|(_, s)| s.joined);
        out
    }
}

/// Collects facts entry by entry, then links them.
#[derive(Debug, Default)]
struct Builder {
    /// The fake Vapi is the target (`vapi-native`).
    native: bool,
    end: Moment,
    legs: BTreeMap<CallSid, Leg>,
    conferences: BTreeMap<ConferenceSid, Conference>,
    streams: Vec<Stream>,
    vapi_calls: BTreeMap<String, VapiCall>,
    rest: Vec<RestAction>,
    webhooks: Vec<Webhook>,
}

impl Builder {
    fn entry(&mut self, m: Moment, event: &Event) {
        match event {
            Event::CallCreated { call, direction, from, to, state: _, cause } => {
                let parent = cause.strip_prefix("<Dial> from ").and_then(|s| s.trim().parse().ok());
                let participant_of =
                    cause.strip_prefix("participant of ").and_then(|s| s.trim().parse().ok());
                self.legs.entry(*call).or_insert_with(|| Leg {
                    sid: *call,
                    direction: direction.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    created: m,
                    created_cause: cause.clone(),
                    parent,
                    participant_of,
                    answered: None,
                    ended: None,
                    detection: None,
                    changes: Vec::new(),
                    audio: Vec::new(),
                    says: Vec::new(),
                    notifications: Vec::new(),
                    role: Role::Other,
                });
            }
            Event::Transition { entity, from, to, cause } => {
                self.transition(m, entity, from, to, cause.as_deref())
            }
            Event::Participant { conference, call, joined } => {
                let Some(conf) = self.conferences.get_mut(conference) else { return };
                if *joined {
                    conf.stints.push(Stint { call: *call, joined: m, left: None });
                } else if let Some(stint) =
                    conf.stints.iter_mut().rev().find(|s| s.call == *call && s.left.is_none())
                {
                    stint.left = Some(m);
                }
            }
            Event::Detection { call, answered_by } => {
                if let Some(leg) = self.legs.get_mut(call)
                    && leg.detection.is_none()
                {
                    leg.detection = Some((m, answered_by.clone()));
                }
            }
            Event::Says { call, text } => {
                if let Some(leg) = self.legs.get_mut(call) {
                    leg.says.push((m, text.clone()));
                }
            }
            Event::Audio { call, hears } => {
                if let Some(leg) = self.legs.get_mut(call) {
                    leg.audio.push((m, hears.clone()));
                }
            }
            Event::Notification { call: Some(call), code, message } => {
                if let Some(leg) = self.legs.get_mut(call) {
                    leg.notifications.push((m, *code, message.clone()));
                }
            }
            Event::Http(x) => self.http(m, x),
            Event::Notification { call: None, .. } | Event::Scheduled { .. } | Event::Note { .. } => {}
        }
    }

    fn transition(&mut self, m: Moment, entity: &Entity, from: &str, to: &str, cause: Option<&str>) {
        let change =
            Change { at: m, from: from.to_owned(), to: to.to_owned(), cause: cause.map(str::to_owned) };
        match entity {
            Entity::Call(sid) => {
                let Some(leg) = self.legs.get_mut(sid) else { return };
                if to == "in-progress" && leg.answered.is_none() {
                    leg.answered = Some(m);
                }
                if FINAL_STATUSES.contains(&to) && leg.ended.is_none() {
                    leg.ended = Some(Ending {
                        at: m,
                        status: to.to_owned(),
                        cause: cause.unwrap_or_default().to_owned(),
                    });
                }
                leg.changes.push(change);
            }
            Entity::Conference(sid) => {
                let conf = self.conferences.entry(*sid).or_insert_with(|| Conference {
                    sid: *sid,
                    name: cause.unwrap_or_default().trim_matches('"').to_owned(),
                    created: m,
                    started: None,
                    ended: None,
                    stints: Vec::new(),
                });
                if to == "in-progress" && conf.started.is_none() {
                    conf.started = Some(m);
                }
                if to == "completed" && conf.ended.is_none() {
                    conf.ended = Some((m, cause.unwrap_or_default().to_owned()));
                    for stint in conf.stints.iter_mut().filter(|s| s.left.is_none()) {
                        stint.left = Some(m);
                    }
                }
            }
            Entity::Stream(sid) => {
                if from == "none" {
                    // `call CA… → wss://…`
                    let Some((call, url)) =
                        cause.and_then(|c| c.strip_prefix("call ")).and_then(|c| c.split_once(" → "))
                    else {
                        return;
                    };
                    let Ok(call) = call.trim().parse() else { return };
                    self.streams.push(Stream {
                        sid: *sid,
                        call,
                        url: url.trim().to_owned(),
                        vapi_call: None,
                        opened: m,
                        connected: None,
                        ended: None,
                    });
                    return;
                }
                let Some(stream) = self.streams.iter_mut().rev().find(|s| s.sid == *sid) else { return };
                if to == "connected" {
                    stream.connected.get_or_insert(m);
                } else if stream.ended.is_none() {
                    stream.ended = Some((m, to.to_owned(), cause.map(str::to_owned)));
                }
            }
            Entity::VapiCall(id) => {
                let call = self.vapi_calls.entry(id.clone()).or_insert_with(|| VapiCall {
                    id: id.clone(),
                    created: m,
                    created_cause: cause.map(str::to_owned),
                    changes: Vec::new(),
                    in_progress: None,
                    ended: None,
                    create_request: None,
                    leg: None,
                });
                if to == "in-progress" && call.in_progress.is_none() {
                    call.in_progress = Some(m);
                }
                if to == "ended" && call.ended.is_none() {
                    call.ended = Some((m, cause.unwrap_or_default().to_owned()));
                }
                call.changes.push(change);
            }
        }
    }

    fn http(&mut self, m: Moment, x: &HttpExchange) {
        let webhook = matches!(
            (x.from, x.to),
            (Party::Twilio | Party::Vapi, Party::Target) | (Party::Twilio, Party::Vapi)
        );
        if webhook {
            // A body is JSON (Vapi's messages) or a form (Twilio's webhooks), never both: percent-decoding
            // a JSON message as a form only made pairs nobody asks for.
            let message = wire::VapiMessage::read(&x.request_body);
            let params = if message.is_some() { Vec::new() } else { wire::form_pairs(&x.request_body) };
            self.webhooks.push(Webhook {
                at: m,
                from: x.from,
                to: x.to,
                for_target: x.to == Party::Target || (self.native && x.to == Party::Vapi),
                url: x.url.clone(),
                params,
                query: wire::query_pairs(&x.url),
                message,
                expects_twiml: x.expects_twiml,
                fault: x.fault.clone(),
                response: x.response.clone(),
                error: x.error.clone(),
                finished_at: x.finished_at,
                target_answer: x.target_answer.clone(),
            });
            return;
        }
        if !matches!(x.to, Party::Twilio | Party::Vapi) {
            return;
        }
        let path = wire::path_of(&x.url);
        let op = if x.to == Party::Twilio { twilio_op(&x.method, path) } else { vapi_op(&x.method, path) };
        let mut params = wire::query_pairs(&x.url);
        let json = wire::json(&x.request_body);
        if json.is_none() {
            params.extend(wire::form_pairs(&x.request_body));
        }
        self.rest.push(RestAction {
            at: m,
            by: x.from,
            from_target: x.from == Party::Client || (self.native && x.from == Party::Vapi),
            api: x.to,
            method: x.method.clone(),
            url: x.url.clone(),
            op,
            params,
            body: x.request_body.clone(),
            json,
            status: x.response.as_ref().map(|r| r.status),
            response: x.response.as_ref().and_then(|r| wire::json(&r.body)),
        });
    }

    fn finish(self, context: &Context) -> Facts {
        let Builder { native, end, mut legs, conferences, mut streams, mut vapi_calls, rest, webhooks } =
            self;

        // Callers: inbound legs to a service number (every inbound leg when no service number is given).
        let mut callers: Vec<&Leg> = legs
            .values()
            .filter(|l| l.direction == "inbound")
            .filter(|l| context.service_numbers.is_empty() || context.service_numbers.contains(&l.to))
            .collect();
        callers.sort_by_key(|l| l.created);
        let callers: Vec<CallSid> = callers.iter().map(|l| l.sid).collect();
        for c in &callers {
            if let Some(leg) = legs.get_mut(c) {
                leg.role = Role::Caller;
            }
        }

        // Sessions: their create request, the stream that carried them, the leg they talked with.
        for (i, r) in rest.iter().enumerate() {
            if let Some(call) = r.created_vapi_call().and_then(|id| vapi_calls.get_mut(id))
                && call.create_request.is_none()
            {
                call.create_request = Some(i);
            }
        }
        for stream in &mut streams {
            stream.vapi_call = vapi_calls.keys().find(|id| stream.url.contains(id.as_str())).cloned();
        }
        let ids: Vec<String> = vapi_calls.keys().cloned().collect();
        for id in ids {
            let leg = session_leg(&id, &streams, &rest, &webhooks, &legs, &callers, &vapi_calls);
            if let Some(call) = vapi_calls.get_mut(&id) {
                call.leg = leg;
            }
        }

        // Transfer requests from the callers' sessions.
        let mut transfer_requests = Vec::new();
        for (i, w) in webhooks.iter().enumerate() {
            if w.from != Party::Vapi || w.to != Party::Target || !w.trustworthy() {
                continue;
            }
            if !w.message_type().is_some_and(|t| TRANSFER_MESSAGES.contains(&t)) {
                continue;
            }
            let Some(id) = w.vapi_call() else { continue };
            let Some(caller) = vapi_calls.get(id).and_then(|v| v.leg).filter(|l| callers.contains(l)) else {
                continue;
            };
            transfer_requests.push(TransferRequest {
                at: w.at,
                caller,
                vapi_call: id.to_owned(),
                webhook: Some(i),
            });
        }
        if native {
            for (id, call) in &vapi_calls {
                let Some(caller) = call.leg.filter(|l| callers.contains(l)) else { continue };
                for change in call.changes.iter().filter(|c| c.to == "forwarding") {
                    transfer_requests.push(TransferRequest {
                        at: change.at,
                        caller,
                        vapi_call: id.clone(),
                        webhook: None,
                    });
                }
            }
            transfer_requests.sort_by_key(|r| r.at);
        }

        // Specialist legs: every outbound leg, placed for one caller.
        let outbound: Vec<CallSid> = legs
            .values()
            .filter(|l| l.direction.starts_with("outbound") && l.role == Role::Other)
            .map(|l| l.sid)
            .collect();
        for sid in outbound {
            let Some(leg) = legs.get(&sid) else { continue };
            let caller = attribute(leg, &legs, &callers, &rest, &conferences, &transfer_requests, context);
            if let (Some(caller), Some(leg)) = (caller, legs.get_mut(&sid)) {
                leg.role = Role::Specialist { caller };
            }
        }

        Facts {
            native,
            end,
            legs,
            callers,
            conferences,
            streams,
            vapi_calls,
            rest,
            webhooks,
            transfer_requests,
        }
    }
}

/// The Twilio REST operation a method and path name.
fn twilio_op(method: &str, path: &str) -> RestOp {
    let Some(at) = path.find("/Accounts/") else { return RestOp::Other };
    let rest = &path[at + "/Accounts/".len()..];
    let segments: Vec<&str> = rest.split('/').skip(1).map(|s| s.strip_suffix(".json").unwrap_or(s)).collect();
    let sid = |s: &str| s.parse::<CallSid>().ok();
    match (method, segments.as_slice()) {
        ("POST", ["Calls"]) => RestOp::CreateCall,
        ("POST", ["Calls", s]) => sid(s).map_or(RestOp::Other, RestOp::UpdateCall),
        ("GET", ["Calls", s]) => sid(s).map_or(RestOp::Other, RestOp::FetchCall),
        ("DELETE", ["Calls", s]) => sid(s).map_or(RestOp::Other, RestOp::DeleteCall),
        ("POST", ["Conferences", c, "Participants"]) => RestOp::CreateParticipant(wire::path_segment(c)),
        ("POST", ["Conferences", c, "Participants", p]) => {
            RestOp::UpdateParticipant(wire::path_segment(c), sid(p))
        }
        ("DELETE", ["Conferences", c, "Participants", p]) => {
            RestOp::RemoveParticipant(wire::path_segment(c), sid(p))
        }
        ("POST", ["Conferences", c]) => RestOp::UpdateConference(wire::path_segment(c)),
        _ => RestOp::Other,
    }
}

/// The Vapi REST operation a method and path name.
fn vapi_op(method: &str, path: &str) -> RestOp {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["call"]) => RestOp::VapiCreateCall,
        ("PATCH", ["call", id]) => RestOp::VapiUpdateCall((*id).to_owned()),
        ("DELETE", ["call", id]) => RestOp::VapiDeleteCall((*id).to_owned()),
        ("POST", [id, "control"]) => RestOp::VapiControl((*id).to_owned()),
        _ => RestOp::Other,
    }
}

/// The leg a session talked with: the leg its stream was on; else a leg whose TwiML (a REST update or a
/// webhook's answer) named it; else the one caller up at its creation whose number it was created for.
fn session_leg(
    id: &str,
    streams: &[Stream],
    rest: &[RestAction],
    webhooks: &[Webhook],
    legs: &BTreeMap<CallSid, Leg>,
    callers: &[CallSid],
    vapi_calls: &BTreeMap<String, VapiCall>,
) -> Option<CallSid> {
    if let Some(s) = streams.iter().find(|s| s.vapi_call.as_deref() == Some(id)) {
        return Some(s.call);
    }
    let named = |text: &str| text.contains(id);
    for r in rest {
        if let RestOp::UpdateCall(sid) = r.op
            && (r.param("Twiml").is_some_and(named) || r.param("Url").is_some_and(named))
        {
            return Some(sid);
        }
    }
    for w in webhooks {
        if let (Some(sid), Some(response)) = (w.call_sid(), &w.response)
            && named(&response.body)
        {
            return Some(sid);
        }
    }
    let call = vapi_calls.get(id)?;
    let create = rest.get(call.create_request?)?;
    let number = wire::json_str(create.json.as_ref()?, "/customer/number")?;
    let mut up =
        callers.iter().filter_map(|c| legs.get(c)).filter(|l| l.from == number && l.is_up_at(create.at));
    match (up.next(), up.next()) {
        (Some(only), None) => Some(only.sid),
        _ => None,
    }
}

/// The caller an outbound leg was placed for. In order: the leg whose `<Dial>` placed it; the one caller
/// whose CallSid the create request names (in its `Url`, `StatusCallback`, …); the one caller in the
/// conference a participant create placed it in; the caller up at its creation whose transfers may reach
/// its number and who asked for a transfer most recently; the only caller up.
fn attribute(
    leg: &Leg,
    legs: &BTreeMap<CallSid, Leg>,
    callers: &[CallSid],
    rest: &[RestAction],
    conferences: &BTreeMap<ConferenceSid, Conference>,
    requests: &[TransferRequest],
    context: &Context,
) -> Option<CallSid> {
    if let Some(parent) = leg.parent.filter(|p| callers.contains(p)) {
        return Some(parent);
    }
    if let Some(create) = rest.iter().find(|r| r.is_dial() && r.created_leg() == Some(leg.sid)) {
        let mut named = callers.iter().filter(|c| {
            let sid = c.to_string();
            create.params.iter().any(|(_, v)| v.contains(&sid)) || create.url.contains(&sid)
        });
        if let (Some(only), None) = (named.next(), named.next()) {
            return Some(*only);
        }
    }
    if let Some(conf) = leg.participant_of.and_then(|c| conferences.get(&c)) {
        let mut inside = conf
            .stints
            .iter()
            .filter(|s| {
                callers.contains(&s.call) && s.joined <= leg.created && s.left.is_none_or(|l| l > leg.created)
            })
            .map(|s| s.call);
        if let (Some(only), None) = (inside.next(), inside.next()) {
            return Some(only);
        }
    }
    let up: Vec<&Leg> =
        callers.iter().filter_map(|c| legs.get(c)).filter(|c| c.is_up_at(leg.created)).collect();
    let may_reach: Vec<&Leg> = up.iter().copied().filter(|c| context.may_reach(&c.from, &leg.to)).collect();
    let latest_request =
        |c: &&Leg| requests.iter().filter(|r| r.caller == c.sid && r.at <= leg.created).map(|r| r.at).max();
    if let Some(best) =
        may_reach.iter().filter(|c| latest_request(c).is_some()).max_by_key(|c| latest_request(c))
    {
        return Some(best.sid);
    }
    if let Some(first) = may_reach.first() {
        return Some(first.sid);
    }
    match up.as_slice() {
        [only] => Some(only.sid),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use ringback_sim::ids::StreamSid;
    use ringback_sim::journal::{Entity, Party};

    use super::super::script::{
        Answer, CALLER, CALLER_2, CALLER_2_NUMBER, CALLER_NUMBER, CONFERENCE, SALES, SERVICE, SPECIALIST,
        Script, TWILIO_API, context,
    };
    use super::*;

    fn at(s: f64) -> SimInstant {
        SimInstant::ZERO + SimDuration::from_secs_f64(s)
    }

    fn tool_calls(s: &mut Script, session: &str, fault: Option<&str>) -> u64 {
        let list = r#","toolCallList":[{"id":"call_1"}]"#;
        let answer =
            Answer::Typed(200, "application/json", r#"{"results":[{"toolCallId":"call_1"}]}"#.into());
        s.vapi_message("tool-calls", session, list, answer, fault)
    }

    #[test]
    fn a_rest_dialed_leg_belongs_to_the_caller_its_request_names() {
        let mut s = Script::new();
        s.at(0.0).caller(CALLER, CALLER_NUMBER);
        s.caller(CALLER_2, CALLER_2_NUMBER);
        let body = format!(
            "To=%2B15550000201&From=%2B15550000100&Url=http%3A%2F%2Fo.test%2Fs%3Fcaller%3D{CALLER_2}"
        );
        let answer = Answer::Typed(201, "application/json", format!(r#"{{"sid":"{SPECIALIST}"}}"#));
        s.at(5.0).http(
            Party::Client,
            Party::Twilio,
            "POST",
            &format!("{TWILIO_API}/Calls.json"),
            &body,
            answer,
        );
        s.created(SPECIALIST, "outbound-api", SERVICE, SALES, "REST create");
        s.at(6.0).leg(SPECIALIST, "queued", "ringing", None);
        s.at(9.0).leg(SPECIALIST, "ringing", "in-progress", None);
        s.at(11.0).detect(SPECIALIST, "machine_start");
        s.at(12.0).leg(SPECIALIST, "in-progress", "completed", Some("<Hangup>"));
        let facts = Facts::new(s.journal(), &context());

        assert_eq!(facts.callers, [CALLER, CALLER_2]);
        let leg = facts.leg(SPECIALIST).expect("the specialist leg");
        assert_eq!(leg.role, Role::Specialist { caller: CALLER_2 });
        assert_eq!(leg.answered.map(|m| m.at), Some(at(9.0)));
        assert_eq!(leg.pending_until().map(|m| m.at), Some(at(9.0)));
        assert!(leg.machine_detected() && leg.is_machine(&context()));
        assert_eq!(leg.human_answer(&context()), None);
        let ended = leg.ended.as_ref().expect("ended");
        assert_eq!(
            (ended.status.as_str(), ended.cause.as_str(), ended.at.at),
            ("completed", "<Hangup>", at(12.0))
        );
        let dial = &facts.rest[0];
        assert_eq!(dial.op, RestOp::CreateCall);
        assert_eq!(dial.param("To"), Some(SALES));
        assert_eq!(dial.created_leg(), Some(SPECIALIST));
        assert!(dial.by_target() && dial.is_dial() && dial.succeeded());
        assert_eq!(facts.specialists_of(CALLER_2).len(), 1);
        assert!(facts.specialists_of(CALLER).is_empty());
    }

    #[test]
    fn a_leg_no_request_names_belongs_to_the_caller_who_asked_last() {
        let mut s = Script::new();
        s.at(0.0).caller(CALLER, CALLER_NUMBER);
        s.session("s-1", "{}");
        s.stream(StreamSid::from_u128(1), CALLER, "s-1");
        s.caller(CALLER_2, CALLER_2_NUMBER);
        s.session("s-2", "{}");
        s.stream(StreamSid::from_u128(2), CALLER_2, "s-2");
        s.at(5.0);
        tool_calls(&mut s, "s-2", None);
        s.at(6.0);
        tool_calls(&mut s, "s-1", None);
        s.at(6.5).created(SPECIALIST, "outbound-api", SERVICE, SALES, "REST create");
        let facts = Facts::new(s.journal(), &context());
        assert_eq!(facts.leg(SPECIALIST).map(|l| l.role), Some(Role::Specialist { caller: CALLER }));
        assert_eq!(facts.transfer_requests.len(), 2);
    }

    #[test]
    fn conferences_bridge_only_once_started() {
        let mut s = Script::new();
        s.at(0.0).caller(CALLER, CALLER_NUMBER);
        s.created(SPECIALIST, "outbound-api", SERVICE, SALES, "REST create");
        s.at(1.0).conference(CONFERENCE, "none", "init");
        s.joins(CONFERENCE, CALLER, true);
        s.at(3.0).joins(CONFERENCE, SPECIALIST, true);
        s.at(4.0).conference(CONFERENCE, "init", "in-progress");
        s.at(9.0).joins(CONFERENCE, CALLER, false);
        s.at(10.0).conference(CONFERENCE, "in-progress", "completed");
        let facts = Facts::new(s.journal(), &context());
        let bridges = facts.bridges(CALLER, SPECIALIST);
        assert_eq!(bridges.len(), 1);
        assert_eq!((bridges[0].0.at, bridges[0].1.map(|m| m.at)), (at(4.0), Some(at(9.0))));
        let conf = &facts.conferences[&CONFERENCE];
        assert_eq!(conf.name, "room");
        assert_eq!(conf.ended.as_ref().map(|(m, _)| m.at), Some(at(10.0)));
        assert_eq!(
            conf.stints.iter().find(|st| st.call == SPECIALIST).and_then(|st| st.left).map(|m| m.at),
            Some(at(10.0))
        );
        assert_eq!(facts.stints_of(CALLER).len(), 1);
    }

    #[test]
    fn a_stream_ties_a_session_to_the_leg_it_carries() {
        let mut s = Script::new();
        s.at(0.0).caller(CALLER, CALLER_NUMBER);
        s.session("s-1", r#"{"customer":{"number":"+15557770001"}}"#);
        s.stream(StreamSid::from_u128(1), CALLER, "s-1");
        s.at(7.0);
        tool_calls(&mut s, "s-1", None);
        tool_calls(&mut s, "s-1", Some("forged: no Vapi secret or signature"));
        s.at(9.0).transition(
            Entity::Stream(StreamSid::from_u128(1)),
            "connected",
            "closed",
            Some("by the server"),
        );
        let facts = Facts::new(s.journal(), &context());
        let sessions = facts.sessions_of(CALLER);
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].create_request, Some(0));
        assert!(sessions[0].in_progress.is_some());
        let stream = &facts.streams[0];
        assert_eq!(stream.vapi_call.as_deref(), Some("s-1"));
        assert!(stream.closed_by_server());
        let connected = stream.connected.expect("connected");
        assert!(stream.is_connected_at(connected) && !stream.is_connected_at(facts.end));
        assert_eq!(facts.transfer_requests.len(), 1, "the forged copy asks for nothing");
        assert_eq!(facts.webhooks[1].tool_call_ids(), ["call_1"]);
        assert!(facts.webhooks[1].is_forged() && !facts.webhooks[1].trustworthy());
    }

    #[test]
    fn a_dial_child_belongs_to_its_parent_and_is_bridged_when_the_parent_hears_it() {
        let mut s = Script::new();
        s.at(0.0).caller(CALLER, CALLER_NUMBER);
        s.at(2.0).created(
            SPECIALIST,
            "outbound-dial",
            SERVICE,
            "+15559999999",
            &format!("<Dial> from {CALLER}"),
        );
        s.at(4.0).leg(SPECIALIST, "ringing", "in-progress", None);
        s.hears(CALLER, &format!("bridged {SPECIALIST}"));
        let facts = Facts::new(s.journal(), &context());
        let leg = facts.leg(SPECIALIST).expect("leg");
        assert_eq!((leg.parent, leg.role), (Some(CALLER), Role::Specialist { caller: CALLER }));
        let bridges = facts.bridges(CALLER, SPECIALIST);
        assert_eq!((bridges.len(), bridges[0].0.at, bridges[0].1), (1, at(4.0), None));
        assert_eq!(facts.first_human_bridge(CALLER, &context()).map(|(_, l)| l), Some(SPECIALIST));
    }

    #[test]
    fn odd_entries_are_skipped_without_a_panic() {
        let mut s = Script::new();
        s.at(0.0).leg(CALLER, "ringing", "in-progress", None);
        s.transition(Entity::Stream(StreamSid::from_u128(1)), "none", "connecting", Some("garbage"));
        s.transition(Entity::Stream(StreamSid::from_u128(2)), "connected", "closed", None);
        s.joins(CONFERENCE, CALLER, true);
        s.detect(CALLER, "human");
        s.http(Party::Client, Party::Twilio, "POST", "not a url", "%%%=&&=", Answer::Status(400, "{oops"));
        s.twilio_hook("/voice", "\u{0}\u{1}", true, Answer::Error("connection refused"), None);
        s.vapi_message("tool-calls", "", "", Answer::Status(200, "not json"), None);
        s.note("anything");
        let facts = Facts::new(s.journal(), &context());
        assert!(facts.legs.is_empty() && facts.streams.is_empty() && facts.conferences.is_empty());
        assert_eq!(facts.rest[0].op, RestOp::Other);
        assert_eq!(facts.webhooks.len(), 2);
        assert!(!facts.webhooks[0].delivered());
        let _ = super::super::evaluate(s.journal(), &context());
        let _ = super::super::evaluate(&Journal::new(), &super::super::Context::default());
    }
}
