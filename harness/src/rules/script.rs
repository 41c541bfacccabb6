//! Hand-built journals for the rules' unit tests: a few lines of "this happened at second N" that read
//! like a timeline, without running a world.

use ringback_sim::ids::{CallSid, ConferenceSid, StreamSid};
use ringback_sim::journal::{Entity, Event, HttpExchange, HttpResponse, Journal, Party, TargetAnswer};
use ringback_sim::time::{SimDuration, SimInstant};

/// The caller's leg in every script.
pub const CALLER: CallSid = CallSid::from_u128(0xc0);
/// A second caller.
pub const CALLER_2: CallSid = CallSid::from_u128(0xc2);
/// A specialist leg.
pub const SPECIALIST: CallSid = CallSid::from_u128(0x5b);
pub const CONFERENCE: ConferenceSid = ConferenceSid::from_u128(0xcf);
pub const SERVICE: &str = "+15550000100";
pub const CALLER_NUMBER: &str = "+15557770001";
pub const CALLER_2_NUMBER: &str = "+15557770002";
pub const SALES: &str = "+15550000201";
pub const TWILIO_API: &str = "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000001";

/// A journal under construction; every line is stamped with the current second.
#[derive(Debug, Default)]
pub struct Script {
    journal: Journal,
    now: SimInstant,
}

/// What a webhook or REST request got back.
#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16, &'static str),
    Typed(u16, &'static str, String),
    Error(&'static str),
    After(f64, u16, String),
    /// An answer fault: the sender got `got` (a status and body, or `None` for a timeout after 15 s)
    /// while the target itself answered the status and body that follow, at once.
    Faulted(Option<(u16, &'static str)>, u16, String),
}

impl Script {
    pub fn new() -> Script {
        Script::default()
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// From now on lines happen at second `s`.
    pub fn at(&mut self, s: f64) -> &mut Script {
        self.now = SimInstant::ZERO + SimDuration::from_secs_f64(s);
        self
    }

    fn push(&mut self, event: Event) -> u64 {
        self.journal.record(self.now, event);
        self.journal.len() as u64
    }

    pub fn created(&mut self, call: CallSid, direction: &str, from: &str, to: &str, cause: &str) -> u64 {
        let state = if direction == "inbound" { "ringing" } else { "queued" };
        self.push(Event::CallCreated {
            call,
            direction: direction.into(),
            from: from.into(),
            to: to.into(),
            state: state.into(),
            cause: cause.into(),
        })
    }

    /// A caller dials the service number and is answered at once.
    pub fn caller(&mut self, call: CallSid, number: &str) -> u64 {
        self.created(call, "inbound", number, SERVICE, &format!("{number} dials {SERVICE}"));
        self.leg(call, "ringing", "in-progress", None)
    }

    pub fn leg(&mut self, call: CallSid, from: &str, to: &str, cause: Option<&str>) -> u64 {
        self.transition(Entity::Call(call), from, to, cause)
    }

    pub fn transition(&mut self, entity: Entity, from: &str, to: &str, cause: Option<&str>) -> u64 {
        self.push(Event::Transition {
            entity,
            from: from.into(),
            to: to.into(),
            cause: cause.map(str::to_owned),
        })
    }

    pub fn conference(&mut self, conference: ConferenceSid, from: &str, to: &str) -> u64 {
        let cause = (from == "none").then_some("\"room\"");
        self.transition(Entity::Conference(conference), from, to, cause)
    }

    pub fn joins(&mut self, conference: ConferenceSid, call: CallSid, joined: bool) -> u64 {
        self.push(Event::Participant { conference, call, joined })
    }

    pub fn detect(&mut self, call: CallSid, answered_by: &str) -> u64 {
        self.push(Event::Detection { call, answered_by: answered_by.into() })
    }

    pub fn says(&mut self, call: CallSid, text: &str) -> u64 {
        self.push(Event::Says { call, text: text.into() })
    }

    pub fn hears(&mut self, call: CallSid, hears: &str) -> u64 {
        self.push(Event::Audio { call, hears: hears.into() })
    }

    pub fn notify(&mut self, call: CallSid, code: u32) -> u64 {
        self.push(Event::Notification { call: Some(call), code, message: format!("error {code}") })
    }

    pub fn note(&mut self, text: &str) -> u64 {
        self.push(Event::Note { text: text.into() })
    }

    /// A Vapi call comes into being (`POST /call` by the target), and its id.
    pub fn session(&mut self, id: &str, body: &str) -> u64 {
        let response = format!(r#"{{"id":"{id}","status":"queued"}}"#);
        self.http(
            Party::Client,
            Party::Vapi,
            "POST",
            "https://api.vapi.ai/call",
            body,
            Answer::Typed(201, "application/json", response),
        );
        self.transition(Entity::VapiCall(id.into()), "none", "queued", Some("POST /call (bypass)"))
    }

    /// A stream on `call` to session `id` opens and connects; the session goes in-progress.
    pub fn stream(&mut self, sid: StreamSid, call: CallSid, id: &str) -> u64 {
        let cause = format!("call {call} → wss://api.vapi.ai/{id}/transport");
        self.transition(Entity::Stream(sid), "none", "connecting", Some(&cause));
        self.transition(Entity::Stream(sid), "connecting", "connected", None);
        self.transition(Entity::VapiCall(id.into()), "queued", "in-progress", Some("stream connected"))
    }

    pub fn http(
        &mut self,
        from: Party,
        to: Party,
        method: &str,
        url: &str,
        body: &str,
        answer: Answer,
    ) -> u64 {
        self.exchange(from, to, method, url, body, answer, false, None)
    }

    /// A webhook from Twilio to the target, its answer and its fault.
    pub fn twilio_hook(
        &mut self,
        path: &str,
        body: &str,
        twiml: bool,
        answer: Answer,
        fault: Option<&str>,
    ) -> u64 {
        let url = format!("http://orchestrator.test{path}");
        self.exchange(Party::Twilio, Party::Target, "POST", &url, body, answer, twiml, fault)
    }

    /// A Vapi server message to the target.
    pub fn vapi_message(
        &mut self,
        kind: &str,
        session: &str,
        extra: &str,
        answer: Answer,
        fault: Option<&str>,
    ) -> u64 {
        let body = format!(r#"{{"message":{{"type":"{kind}","call":{{"id":"{session}"}}{extra}}}}}"#);
        self.exchange(
            Party::Vapi,
            Party::Target,
            "POST",
            "http://orchestrator.test/vapi/webhook",
            &body,
            answer,
            false,
            fault,
        )
    }

    #[allow(clippy::too_many_arguments)] // a test builder that mirrors the exchange's fields
    fn exchange(
        &mut self,
        from: Party,
        to: Party,
        method: &str,
        url: &str,
        body: &str,
        answer: Answer,
        expects_twiml: bool,
        fault: Option<&str>,
    ) -> u64 {
        let mut target_answer = None;
        let (response, error, finished_at) = match answer {
            Answer::Status(status, body) => {
                (Some(HttpResponse { status, content_type: None, body: body.into() }), None, Some(self.now))
            }
            Answer::Typed(status, content_type, body) => (
                Some(HttpResponse { status, content_type: Some(content_type.into()), body }),
                None,
                Some(self.now),
            ),
            Answer::Error(e) => (None, Some(e.to_owned()), Some(self.now)),
            Answer::After(s, status, body) => (
                Some(HttpResponse { status, content_type: None, body }),
                None,
                Some(self.now + SimDuration::from_secs_f64(s)),
            ),
            Answer::Faulted(got, status, body) => {
                let own = HttpResponse { status, content_type: None, body };
                target_answer = Some(TargetAnswer { at: self.now, response: own });
                match got {
                    Some((status, body)) => (
                        Some(HttpResponse { status, content_type: None, body: body.into() }),
                        None,
                        Some(self.now),
                    ),
                    None => (
                        None,
                        Some("timeout after 15.000s".to_owned()),
                        Some(self.now + SimDuration::from_secs(15)),
                    ),
                }
            }
        };
        self.push(Event::Http(HttpExchange {
            from,
            to,
            method: method.into(),
            url: url.into(),
            request_headers: Vec::new(),
            request_body: body.into(),
            response,
            error,
            finished_at,
            expects_twiml,
            fault: fault.map(str::to_owned),
            target_answer,
        }))
    }
}

/// The context of every script: one service number, one or two callers who may reach sales.
pub fn context() -> super::Context {
    super::Context {
        service_numbers: vec![SERVICE.into()],
        callers: [CALLER_NUMBER, CALLER_2_NUMBER]
            .map(|n| super::CallerContext { number: n.into(), specialists: vec![SALES.into()] })
            .to_vec(),
        allowlist: vec![SALES.into()],
        machines: Vec::new(),
        tool_timeout_s: 20.0,
        vapi_native: false,
    }
}
