//! The journal: everything that happened in a run, in order, stamped with virtual time.
//!
//! The harness judges a run from the journal alone, so anything a rule may need goes in here: every HTTP
//! exchange in either direction, every state transition of a call, conference or session, every event put
//! on the scheduler, and what each caller hears. [`Journal::timeline`] renders it one event per line.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::ids::{CallSid, ConferenceSid, StreamSid};
use crate::time::{SimDuration, SimInstant};

/// Who sent or received an HTTP exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Party {
    /// The fake Twilio.
    Twilio,
    /// The fake Vapi.
    Vapi,
    /// The system under test (an orchestrator), or any other webhook receiver.
    Target,
    /// A client of the fakes' REST APIs that is not a webhook receiver (an SDK, the control API).
    Client,
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Party::Twilio => "twilio",
            Party::Vapi => "vapi",
            Party::Target => "target",
            Party::Client => "client",
        })
    }
}

/// A thing whose state the journal follows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "kebab-case")]
pub enum Entity {
    Call(CallSid),
    Conference(ConferenceSid),
    Stream(StreamSid),
    VapiCall(String),
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entity::Call(sid) => write!(f, "call {sid}"),
            Entity::Conference(sid) => write!(f, "conference {sid}"),
            Entity::Stream(sid) => write!(f, "stream {sid}"),
            Entity::VapiCall(id) => write!(f, "vapi-call {id}"),
        }
    }
}

/// One HTTP request and, once it is known, its response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpExchange {
    pub from: Party,
    pub to: Party,
    pub method: String,
    pub url: String,
    /// The request headers that matter for conformance (signatures, secrets redacted to their shape).
    pub request_headers: Vec<(String, String)>,
    pub request_body: String,
    /// `None` while the exchange is in flight, and forever if it never got a response.
    pub response: Option<HttpResponse>,
    /// Why no response came: `timeout after 15.000s`, `connection refused`, ….
    pub error: Option<String>,
    /// When the response (or the error) arrived.
    pub finished_at: Option<SimInstant>,
    /// Whether the sender acts on the answer as TwiML (a voice URL, a `<Dial action>`, a created call's
    /// `Url`, a `waitUrl`), rather than ignoring it (status callbacks).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expects_twiml: bool,
    /// A fault the run injected into this delivery (`duplicate of #12`, `delayed 8.000s`, `dropped`,
    /// `forged: …`) or into its answer (`answer: slow 20.000s`, `answer: HTTP 500`, `answer: unparsable
    /// TwiML`); absent for ordinary traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// What the target itself answered, and when, if a fault changed what the sender got (`response`,
    /// `error` and `finished_at` are what the sender acted on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_answer: Option<TargetAnswer>,
}

/// The target's own answer to an exchange whose answer a fault changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetAnswer {
    pub at: SimInstant,
    pub response: HttpResponse,
}

impl HttpExchange {
    /// Whether a fault made the answer the sender acted on.
    pub fn answer_faulted(&self) -> bool {
        self.fault.as_deref().is_some_and(|f| f.starts_with(ANSWER_FAULT_PREFIX))
    }
}

/// How an answer fault's description starts.
pub const ANSWER_FAULT_PREFIX: &str = "answer: ";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// What one journal line records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    Http(HttpExchange),
    /// An entity moved from one state to another (`call CA… ringing → in-progress`).
    Transition {
        entity: Entity,
        from: String,
        to: String,
        cause: Option<String>,
    },
    /// A call leg came into being: its first transition, with who calls whom. Renders like a transition.
    CallCreated {
        call: CallSid,
        /// Twilio's `Direction`: `inbound`, `outbound-api`, `outbound-dial`.
        direction: String,
        from: String,
        to: String,
        /// The state it starts in.
        state: String,
        cause: String,
    },
    /// A call joined (`joined`) or left a conference.
    Participant {
        conference: ConferenceSid,
        call: CallSid,
        joined: bool,
    },
    /// The caller said something to the assistant.
    Says {
        call: CallSid,
        text: String,
    },
    /// Answering machine detection decided who answered a call (Twilio's `AnsweredBy`).
    Detection {
        call: CallSid,
        answered_by: String,
    },
    /// Something was put on the scheduler.
    Scheduled {
        due: SimInstant,
        what: String,
    },
    /// What a call's remote party hears from now on (`say "…"`, `wait-music`, `silence`, `bridged CA…`).
    Audio {
        call: CallSid,
        hears: String,
    },
    /// An error Twilio or Vapi would log against a call (Twilio's Notifications: 11200, 12100, …).
    Notification {
        call: Option<CallSid>,
        code: u32,
        message: String,
    },
    /// Anything else worth a line.
    Note {
        text: String,
    },
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub at: SimInstant,
    #[serde(flatten)]
    pub event: Event,
}

/// Writes each of `secrets` in `text` as `<redacted N chars>`.
fn scrub(secrets: &[String], text: &mut String) {
    for secret in secrets {
        if text.contains(secret.as_str()) {
            *text = text.replace(secret.as_str(), &format!("<redacted {} chars>", secret.len()));
        }
    }
}

/// The values of a JSON document's credential fields (`secret`, `twilioAuthToken`, `authToken`, `apiKey`,
/// `password`), at any depth.
pub fn json_secrets(value: &serde_json::Value) -> Vec<String> {
    const KEYS: [&str; 5] = ["secret", "twilioAuthToken", "authToken", "apiKey", "password"];
    let mut found = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match v.as_str() {
                        Some(s) if KEYS.contains(&k.as_str()) => found.push(s.to_owned()),
                        _ => stack.push(v),
                    }
                }
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

/// Where a pending HTTP exchange sits, to complete it when its response arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExchangeId(usize);

/// The ordered record of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Journal {
    entries: Vec<Entry>,
    /// Values never written into an exchange's bodies (auth tokens, API keys, webhook secrets): journals
    /// end up in reports.
    #[serde(skip)]
    secrets: Vec<String>,
}

impl Journal {
    pub fn new() -> Self {
        Journal::default()
    }

    pub fn record(&mut self, at: SimInstant, event: Event) {
        let seq = self.entries.len() as u64 + 1;
        self.entries.push(Entry { seq, at, event });
    }

    /// Records a request now; its response is filled in by [`Journal::finish_http`].
    /// From now on, `secret` is written `<redacted N chars>` in every exchange's bodies. Values shorter
    /// than 6 characters are not secrets worth the name, and would match ordinary text.
    pub fn keep_secret(&mut self, secret: &str) {
        if secret.len() >= 6 && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_owned());
        }
    }

    pub fn begin_http(&mut self, at: SimInstant, mut exchange: HttpExchange) -> ExchangeId {
        scrub(&self.secrets, &mut exchange.request_body);
        self.record(at, Event::Http(exchange));
        ExchangeId(self.entries.len() - 1)
    }

    /// The sequence number of an exchange's line.
    pub fn seq_of(&self, id: ExchangeId) -> u64 {
        self.entries.get(id.0).map_or(0, |e| e.seq)
    }

    /// Records what the target itself answered when a fault changed what the sender gets.
    pub fn target_answered(&mut self, id: ExchangeId, answer: TargetAnswer) {
        if let Some(Entry { event: Event::Http(x), .. }) = self.entries.get_mut(id.0) {
            x.target_answer = Some(answer);
        }
    }

    pub fn finish_http(&mut self, id: ExchangeId, at: SimInstant, outcome: Result<HttpResponse, String>) {
        if let Some(Entry { event: Event::Http(x), .. }) = self.entries.get_mut(id.0) {
            x.finished_at = Some(at);
            // The request may have carried a secret the fake learnt only by handling it.
            scrub(&self.secrets, &mut x.request_body);
            match outcome {
                Ok(mut response) => {
                    scrub(&self.secrets, &mut response.body);
                    x.response = Some(response);
                }
                Err(error) => x.error = Some(error),
            }
        }
    }

    pub fn transition(&mut self, at: SimInstant, entity: Entity, from: &str, to: &str, cause: Option<&str>) {
        self.record(
            at,
            Event::Transition {
                entity,
                from: from.to_owned(),
                to: to.to_owned(),
                cause: cause.map(str::to_owned),
            },
        );
    }

    pub fn note(&mut self, at: SimInstant, text: impl Into<String>) {
        self.record(at, Event::Note { text: text.into() });
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// One line per event: `  12.345s #42   call CA… ringing → in-progress`.
    pub fn timeline(&self) -> String {
        let mut out = String::new();
        for entry in &self.entries {
            let _ = writeln!(out, "{}", TimelineLine(entry));
        }
        out
    }
}

/// Renders one entry as a timeline line.
#[derive(Debug)]
pub struct TimelineLine<'a>(pub &'a Entry);

impl fmt::Display for TimelineLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Entry { seq, at, event } = self.0;
        write!(f, "{:>10} #{:<5} ", at.to_string(), seq)?;
        match event {
            Event::Http(x) => {
                if let Some(fault) = &x.fault {
                    write!(f, "[{fault}] ")?;
                }
                write!(f, "{} → {} {} {}", x.from, x.to, x.method, x.url)?;
                if !x.request_body.is_empty() {
                    write!(f, " {}", one_line(&x.request_body, 160))?;
                }
                match (&x.response, &x.error) {
                    (Some(r), _) => {
                        let took = x.finished_at.map(|t| t - *at).unwrap_or(SimDuration::ZERO);
                        write!(f, " ⇒ {}", r.status)?;
                        if took >= SimDuration::from_millis(1) {
                            write!(f, " after {took}")?;
                        }
                        if !r.body.is_empty() {
                            write!(f, " {}", one_line(&r.body, 160))?;
                        }
                        Ok(())
                    }
                    (None, Some(e)) => write!(f, " ⇒ error: {e}"),
                    (None, None) => write!(f, " ⇒ (no response)"),
                }?;
                match &x.target_answer {
                    Some(TargetAnswer { at: answered, response: r }) if x.response.as_ref() != Some(r) => {
                        write!(f, " (the target answered {} after {}", r.status, *answered - *at)?;
                        if !r.body.is_empty() {
                            write!(f, ": {}", one_line(&r.body, 80))?;
                        }
                        f.write_str(")")
                    }
                    _ => Ok(()),
                }
            }
            Event::Transition { entity, from, to, cause } => {
                write!(f, "{entity} {from} → {to}")?;
                if let Some(cause) = cause {
                    write!(f, " ({cause})")?;
                }
                Ok(())
            }
            Event::CallCreated { call, state, cause, .. } => {
                write!(f, "call {call} none → {state} ({cause})")
            }
            Event::Participant { conference, call, joined } => {
                write!(f, "conference {conference}: {call} {}", if *joined { "joins" } else { "leaves" })
            }
            Event::Says { call, text } => write!(f, "call {call} says: {text}"),
            Event::Detection { call, answered_by } => {
                write!(f, "call {call}: answering machine detection says {answered_by}")
            }
            Event::Scheduled { due, what } => write!(f, "scheduled at {due}: {what}"),
            Event::Audio { call, hears } => write!(f, "call {call} hears {hears}"),
            Event::Notification { call, code, message } => match call {
                Some(call) => write!(f, "notification {code} on call {call}: {message}"),
                None => write!(f, "notification {code}: {message}"),
            },
            Event::Note { text } => f.write_str(text),
        }
    }
}

/// Collapses whitespace and cuts long bodies so each event stays on one line.
fn one_line(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars + 1));
    let mut last_space = false;
    for (n, c) in text.chars().enumerate() {
        if n >= max_chars {
            out.push('…');
            break;
        }
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_exchanges_are_completed_in_place_and_render_on_one_line() {
        let mut j = Journal::new();
        let id = j.begin_http(
            SimInstant::ZERO,
            HttpExchange {
                from: Party::Twilio,
                to: Party::Target,
                method: "POST".into(),
                url: "http://orchestrator.test/voice".into(),
                request_headers: vec![],
                request_body: "CallSid=CA1&\nCallStatus=ringing".into(),
                response: None,
                error: None,
                finished_at: None,
                expects_twiml: false,
                fault: None,
                target_answer: None,
            },
        );
        j.note(SimInstant::ZERO, "meanwhile");
        let body = "<Response>\n  <Hangup/>\n</Response>";
        let response = HttpResponse { status: 200, content_type: Some("text/xml".into()), body: body.into() };
        j.finish_http(id, SimInstant::from_micros(1_500), Ok(response));
        let timeline = j.timeline();
        let first = timeline.lines().next().expect("a line");
        assert_eq!(
            first,
            "    0.000s #1     twilio → target POST http://orchestrator.test/voice CallSid=CA1& CallStatus=ringing ⇒ 200 after 0.001s <Response> <Hangup/> </Response>"
        );
        assert_eq!(j.len(), 2);
    }
}
