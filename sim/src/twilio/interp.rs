//! The TwiML interpreter: a leg runs its document verb by verb; verbs that take time wait for an event
//! or a webhook response, the others run at once.
//!
//! Twilio semantics followed here (reference `twilio.md` §5, §7): the document running out hangs up; a
//! fetch that fails logs a notification and tries the `FallbackUrl`, then the caller hears the
//! application-error message and the call ends; `<Dial>` without `action` continues with the next verb;
//! a REST redirect interrupts whatever runs, including `<Dial>`, `<Conference>` and `<Connect><Stream>`.

use crate::ids::CallSid;
use crate::journal::Entity;
use crate::phone::Behaviour;
use crate::time::SimDuration;
use crate::transport::TargetResponse;
use crate::twilio::callbacks::Params;
use crate::twilio::engine::{Event, Exec, FetchKind, Hook, Leg, OnAnswer, Remote, Unwind};
use crate::twilio::leg::{LegInput, LegState};
use crate::twilio::model::{CallStatus, DialCallStatus, Direction};
use crate::twilio::twiml::{self, Dial, DialTarget, Verb};
use crate::world::{DeliveryError, Effect, StreamOpen, StreamReport, World};

/// Whether the interpreter goes straight on to the next verb or waits.
enum Flow {
    Next,
    Wait,
}

impl World {
    /// A TwiML fetch finished.
    pub(crate) fn on_twiml(
        &mut self,
        call: CallSid,
        url: String,
        kind: FetchKind,
        outcome: Result<TargetResponse, DeliveryError>,
    ) {
        let failure = match outcome {
            Ok(r) if (200..300).contains(&r.status) => {
                let text = String::from_utf8_lossy(&r.body).into_owned();
                match twiml::parse(&text) {
                    Ok(doc) => {
                        for w in &doc.warnings {
                            self.notify(Some(call), w.code, w.to_string());
                        }
                        self.run_document(call, doc.verbs, Some(url));
                        return;
                    }
                    Err(e) => (e.code, format!("document from {url}: {e}")),
                }
            }
            // Twilio 11200: HTTP retrieval failure (the server answered with an error status).
            Ok(r) => (11200, format!("{url} answered HTTP {}", r.status)),
            // Twilio 11205: HTTP connection failure (no connection, or no response within 15 s).
            Err(DeliveryError::Timeout) => {
                (11205, format!("{url} did not answer within {}s", self.defaults.webhook_timeout_s))
            }
            Err(DeliveryError::Connect(e)) => (11205, format!("{url}: {e}")),
            // Twilio 11750: the TwiML response body is larger than Twilio reads (64 KiB, like a document
            // the parser refuses for its size).
            Err(DeliveryError::TooLarge { limit }) => (
                twiml::BODY_TOO_LARGE,
                format!(
                    "{url} answered more than {limit} bytes; expected at most {} bytes of TwiML",
                    twiml::MAX_DOCUMENT_BYTES
                ),
            ),
            Err(DeliveryError::Other(e)) => (11200, format!("{url}: {e}")),
        };
        let (code, message) = failure;
        self.notify(Some(call), code, message);
        let fallback = self.leg(call).and_then(|l| l.fallback.clone());
        match (kind, fallback) {
            (FetchKind::Voice, Some(fallback)) => {
                let extra = vec![("ErrorCode".to_owned(), code.to_string()), ("ErrorUrl".to_owned(), url)];
                self.fetch_twiml(call, fallback, FetchKind::Fallback, extra);
            }
            _ => self.application_error(call),
        }
    }

    /// The caller hears Twilio's application-error message, then the call ends.
    pub(crate) fn application_error(&mut self, call: CallSid) {
        self.answer_inbound(call);
        let message = self.defaults.application_error_message.clone();
        let length = self.say_length(&message, 1);
        let Some(leg) = self.leg_mut(call) else { return };
        leg.exec = Exec::AppError;
        leg.verbs.clear();
        let generation = leg.generation;
        self.set_hears(call, format!("say \"{message}\""));
        self.schedule(length, Event::VerbDone(call, generation));
    }

    /// Parses and runs inline TwiML (REST `Twiml`).
    pub(crate) fn load_document(&mut self, call: CallSid, text: &str, url: Option<String>) {
        match twiml::parse(text) {
            Ok(doc) => {
                for w in &doc.warnings {
                    self.notify(Some(call), w.code, w.to_string());
                }
                self.run_document(call, doc.verbs, url);
            }
            Err(e) => {
                self.notify(Some(call), e.code, format!("inline TwiML: {e}"));
                self.application_error(call);
            }
        }
    }

    fn run_document(&mut self, call: CallSid, verbs: Vec<Verb>, url: Option<String>) {
        let Some(leg) = self.leg_mut(call) else { return };
        leg.verbs = verbs.into();
        if url.is_some() {
            leg.doc_url = url;
        }
        leg.exec = Exec::Idle;
        self.run_next(call);
    }

    /// Runs verbs until one has to wait.
    pub(crate) fn run_next(&mut self, call: CallSid) {
        loop {
            let Some(leg) = self.leg_mut(call) else { return };
            if leg.state.is_ended() {
                return;
            }
            let Some(verb) = leg.verbs.pop_front() else {
                // Twilio: when the document runs out, the call hangs up.
                self.end_call(call, CallStatus::Completed, "end of TwiML");
                return;
            };
            match self.exec_verb(call, verb) {
                Flow::Next => continue,
                Flow::Wait => return,
            }
        }
    }

    fn exec_verb(&mut self, call: CallSid, verb: Verb) -> Flow {
        if !matches!(verb, Verb::Redirect(_))
            && let Some(leg) = self.leg_mut(call)
        {
            leg.fetches_in_a_row = 0;
        }
        match verb {
            Verb::Say(say) => {
                self.answer_inbound(call);
                let length = self.say_length(&say.text, say.loop_count);
                self.play(call, format!("say \"{}\"", say.text), length)
            }
            Verb::Play(play) => {
                self.answer_inbound(call);
                let loops = if play.loop_count == 0 { 1000 } else { play.loop_count };
                let length = SimDuration::from_secs_f64(self.defaults.play_length_s * f64::from(loops));
                let what = match (&play.url, &play.digits) {
                    (Some(url), _) if !url.is_empty() => format!("play {url}"),
                    (_, Some(digits)) => format!("dtmf {digits}"),
                    _ => "silence".to_owned(),
                };
                self.play(call, what, length)
            }
            Verb::Pause(pause) => {
                self.answer_inbound(call);
                self.play(call, "silence", SimDuration::from_secs(u64::from(pause.length_s)))
            }
            Verb::Redirect(redirect) => {
                let url = self.resolve(call, &redirect.url);
                self.fetch_twiml(
                    call,
                    Hook { url, method: redirect.method },
                    FetchKind::Redirect,
                    Vec::new(),
                );
                Flow::Wait
            }
            Verb::Hangup => {
                self.end_call(call, CallStatus::Completed, "<Hangup>");
                Flow::Wait
            }
            Verb::Reject(reject) => {
                let pending = self.leg(call).is_some_and(|l| l.state.is_pending());
                if pending {
                    // Twilio's Call resource doc: `no-answer` covers rejected calls; `busy` for reason="busy".
                    let status = if reject.reason == twiml::RejectReason::Busy {
                        CallStatus::Busy
                    } else {
                        CallStatus::NoAnswer
                    };
                    self.end_call(call, status, "<Reject>");
                } else {
                    self.notify(Some(call), 12200, "<Reject> after the call was answered; hanging up");
                    self.end_call(call, CallStatus::Completed, "<Reject>");
                }
                Flow::Wait
            }
            Verb::Gather(gather) => self.start_gather(call, gather),
            Verb::Dial(dial) => self.start_dial(call, dial),
            Verb::Connect(connect) => {
                self.answer_inbound(call);
                let action = connect
                    .action
                    .as_ref()
                    .map(|a| Hook { url: self.resolve(call, a), method: connect.method });
                let stream = connect.stream;
                let sid =
                    self.open_stream(call, &stream.url, stream.parameters.clone(), true, stream.name.clone());
                if let Some(leg) = self.leg_mut(call) {
                    leg.exec = Exec::Streaming { stream: sid, action };
                }
                self.set_hears(call, format!("stream {}", stream.url));
                Flow::Wait
            }
            Verb::Start(start) => {
                let stream = start.stream;
                self.answer_inbound(call);
                self.open_stream(call, &stream.url, stream.parameters.clone(), false, stream.name.clone());
                Flow::Next
            }
            Verb::Stop(stop) => {
                let forks = self.leg(call).map(|l| l.forks.clone()).unwrap_or_default();
                for (sid, name) in forks {
                    if stop.stream_name.is_none() || stop.stream_name == name {
                        self.stop_stream(sid, "<Stop><Stream>");
                    }
                }
                Flow::Next
            }
            Verb::Enqueue(_) | Verb::Leave => {
                self.notify(Some(call), 12200, "queues are not simulated; the verb is skipped");
                Flow::Next
            }
        }
    }

    /// Twilio answers an inbound call when its TwiML first does something audible.
    pub(crate) fn answer_inbound(&mut self, call: CallSid) {
        if self.leg(call).is_some_and(|l| l.direction == Direction::Inbound && l.state == LegState::Ringing) {
            self.leg_input(call, LegInput::Answer, None);
        }
    }

    fn play(&mut self, call: CallSid, what: impl Into<String>, length: SimDuration) -> Flow {
        let Some(leg) = self.leg_mut(call) else { return Flow::Wait };
        leg.exec = Exec::Playing;
        let generation = leg.generation;
        self.set_hears(call, what);
        self.schedule(length, Event::VerbDone(call, generation));
        Flow::Wait
    }

    pub(crate) fn say_length(&self, text: &str, loops: u32) -> SimDuration {
        let words = text.split_whitespace().count().max(1) as f64;
        let loops = if loops == 0 { 1000 } else { loops };
        SimDuration::from_secs_f64(words * self.defaults.say_seconds_per_word * f64::from(loops))
    }

    /// Resolves a URL from TwiML against the current document's URL, as Twilio does for relative URLs.
    pub(crate) fn resolve(&self, call: CallSid, url: &str) -> String {
        let base = self.leg(call).and_then(|l| l.doc_url.clone());
        match base.and_then(|b| reqwest::Url::parse(&b).ok()).and_then(|b| b.join(url).ok()) {
            Some(u) => u.to_string(),
            None => url.to_owned(),
        }
    }

    fn start_gather(&mut self, call: CallSid, gather: twiml::Gather) -> Flow {
        self.answer_inbound(call);
        let mut prompt = SimDuration::ZERO;
        let mut heard = Vec::new();
        for prompt_verb in &gather.prompts {
            match prompt_verb {
                twiml::GatherPrompt::Say(say) => {
                    prompt = prompt + self.say_length(&say.text, say.loop_count);
                    heard.push(format!("say \"{}\"", say.text));
                }
                twiml::GatherPrompt::Play(play) => {
                    prompt = prompt
                        + SimDuration::from_secs_f64(
                            self.defaults.play_length_s * f64::from(play.loop_count.max(1)),
                        );
                    heard.push(format!("play {}", play.url.clone().unwrap_or_default()));
                }
                twiml::GatherPrompt::Pause(p) => {
                    prompt = prompt + SimDuration::from_secs(u64::from(p.length_s))
                }
            }
        }
        let timeout = prompt + SimDuration::from_secs(u64::from(gather.timeout_s));
        let Some(leg) = self.leg_mut(call) else { return Flow::Wait };
        let pressed = std::mem::take(&mut leg.pressed);
        leg.exec = Exec::Gathering { gather: Box::new(gather), digits: String::new() };
        let generation = leg.generation;
        self.set_hears(call, if heard.is_empty() { "silence (gather)".to_owned() } else { heard.join(", ") });
        self.schedule(timeout, Event::GatherTimeout(call, generation));
        for digit in pressed.chars() {
            self.press(call, digit);
        }
        Flow::Wait
    }

    /// The far end of `call` presses a key.
    pub fn press(&mut self, call: CallSid, digit: char) {
        let Some(leg) = self.leg_mut(call) else { return };
        match &mut leg.exec {
            Exec::Gathering { gather, digits } => {
                let finish = gather.finish_on_key.is_some_and(|k| k == digit);
                if !finish {
                    digits.push(digit);
                }
                let full = gather.num_digits.is_some_and(|n| digits.chars().count() >= n as usize);
                if finish || full {
                    let key = finish.then_some(digit);
                    self.submit_gather(call, key);
                }
            }
            Exec::Dialing { dial, bridged: Some(child), .. } if dial.hangup_on_star && digit == '*' => {
                let child = *child;
                self.end_call(child, CallStatus::Completed, "hangupOnStar");
            }
            Exec::Streaming { stream, .. } => {
                let stream = *stream;
                if self.vapi.streams.contains_key(&stream) {
                    self.note(format!("call {call}: the assistant hears DTMF {digit}"));
                    return;
                }
                self.push_effect(Effect::StreamDtmf(stream, digit));
            }
            _ => leg.pressed.push(digit),
        }
    }

    pub(crate) fn gather_timeout(&mut self, call: CallSid) {
        let Some(Exec::Gathering { gather, digits }) = self.leg(call).map(|l| &l.exec) else { return };
        if digits.is_empty() && !gather.action_on_empty_result {
            // Twilio: with no input, <Gather> falls through to the next verb.
            self.run_next(call);
        } else {
            self.submit_gather(call, None);
        }
    }

    fn submit_gather(&mut self, call: CallSid, finished_on_key: Option<char>) {
        let Some(leg) = self.leg_mut(call) else { return };
        let Exec::Gathering { gather, digits } = std::mem::replace(&mut leg.exec, Exec::Idle) else { return };
        let doc_url = leg.doc_url.clone().unwrap_or_default();
        self.bump_generation(call);
        let url = gather.action.as_deref().map(|a| self.resolve(call, a)).unwrap_or(doc_url);
        let mut extra: Params = vec![("Digits".into(), digits)];
        extra.push(("FinishedOnKey".into(), finished_on_key.map(String::from).unwrap_or_default()));
        self.fetch_twiml(call, Hook { url, method: gather.method }, FetchKind::Action, extra);
    }

    fn start_dial(&mut self, call: CallSid, dial: Dial) -> Flow {
        let endpoints = match &dial.target {
            DialTarget::Endpoints(endpoints) if !endpoints.is_empty() => endpoints.clone(),
            DialTarget::Endpoints(_) => {
                self.notify(Some(call), 12200, "<Dial> has nothing to dial; skipped");
                return Flow::Next;
            }
            DialTarget::Conference(conference) => {
                let conference = conference.clone();
                self.answer_inbound(call);
                self.dial_conference(call, dial, conference);
                return Flow::Wait;
            }
            DialTarget::Queue(_) => {
                self.notify(Some(call), 12200, "<Queue> is not simulated; the <Dial> is skipped");
                return Flow::Next;
            }
        };
        if !dial.answer_on_bridge {
            self.answer_inbound(call);
        }
        let Some(parent) = self.leg(call).cloned() else { return Flow::Wait };
        let caller_id = dial.caller_id.clone().unwrap_or_else(|| parent.from.clone());
        let timeout = SimDuration::from_secs(u64::from(dial.timeout_s));
        let mut children = Vec::new();
        for endpoint in endpoints {
            let (to, callback, detection) = match endpoint {
                twiml::Endpoint::Number(n) => (n.number, n.status_callback, Some(n.machine_detection)),
                twiml::Endpoint::Sip(s) => (s.uri, s.status_callback, Some(s.machine_detection)),
                twiml::Endpoint::Client(c) => (format!("client:{}", c.identity), c.status_callback, None),
            };
            let child = self.mint.call();
            let behaviour = self.phone_behaviour(&to);
            let mut leg =
                Leg::new(child, parent.account, Direction::OutboundDial, caller_id.clone(), to, self.now);
            leg.parent = Some(call);
            leg.state = LegState::Queued;
            leg.timeout = timeout;
            leg.remote = Remote::Phone(behaviour);
            leg.on_answer = Some(OnAnswer::BridgeParent(call));
            if let Some(url) = &callback.url {
                leg.status_callback = Some(Hook { url: self.resolve(call, url), method: callback.method });
                leg.status_events = callback.events.clone();
            }
            if let Some((mode, detection)) = detection.and_then(|d| Some((d.mode?, d))) {
                // <Number machineDetection> results go to amdStatusCallback; the callee is bridged at
                // once (the fake treats TwiML AMD as asynchronous).
                leg.amd = Some(crate::twilio::engine::Amd {
                    mode,
                    timeout: SimDuration::from_secs(u64::from(detection.timeout_s)),
                    callback: detection.status_callback.as_ref().map(|u| Hook {
                        url: self.resolve(call, u),
                        method: detection.status_callback_method,
                    }),
                    blocking: false,
                });
            }
            self.twilio.calls.insert(child, leg);
            self.call_created(child, "queued", &format!("<Dial> from {call}"));
            // Twilio: <Dial> children skip `queued` and go straight to initiated.
            self.leg_input(child, LegInput::Dial, None);
            self.start_attempt(child);
            children.push(child);
        }
        if let Some(leg) = self.leg_mut(call) {
            leg.exec = Exec::Dialing { dial: Box::new(dial), children, bridged: None, bridged_at: None };
        }
        self.set_hears(call, "ringback");
        Flow::Wait
    }

    pub(crate) fn phone_behaviour(&self, number: &str) -> Behaviour {
        self.phones.behaviour(number)
    }

    /// A `<Dial>` child answered: bridge it, hang up the others.
    pub(crate) fn child_answered(&mut self, parent: CallSid, child: CallSid) {
        let now = self.now;
        let ok = matches!(self.leg(parent).map(|l| (&l.exec, l.state.is_ended())), Some((Exec::Dialing { bridged: None, children, .. }, false)) if children.contains(&child));
        if !ok {
            self.end_call(child, CallStatus::Completed, "nobody is waiting for this leg");
            return;
        }
        let Some(leg) = self.leg_mut(parent) else { return };
        let Exec::Dialing { children, bridged, bridged_at, dial } = &mut leg.exec else { return };
        *bridged = Some(child);
        *bridged_at = Some(now);
        let others: Vec<CallSid> = children.iter().copied().filter(|c| *c != child).collect();
        let limit = SimDuration::from_secs(u64::from(dial.time_limit_s));
        let generation = leg.generation;
        for other in others {
            self.detach_child(other);
            self.end_call(other, CallStatus::Canceled, "another leg answered");
        }
        self.answer_inbound(parent);
        if let Some(leg) = self.leg_mut(child) {
            leg.exec = Exec::Bridged(parent);
        }
        self.set_hears(parent, format!("bridged {child}"));
        self.set_hears(child, format!("bridged {parent}"));
        self.schedule(limit, Event::DialTimeLimit(parent, generation));
    }

    /// Removes a child from its parent's dial, so ending it does not finish the dial.
    pub(crate) fn detach_child(&mut self, child: CallSid) {
        let parent = self.leg(child).and_then(|l| l.parent);
        if let Some(Exec::Dialing { children, .. }) =
            parent.and_then(|p| self.leg_mut(p)).map(|l| &mut l.exec)
        {
            children.retain(|c| *c != child);
        }
        if let Some(leg) = self.leg_mut(child) {
            leg.on_answer = None;
            if matches!(leg.exec, Exec::Bridged(_)) {
                leg.exec = Exec::Idle;
            }
        }
    }

    /// A `<Dial>` child ended: if it was the last one ringing, or the bridged one, the dial is over.
    pub(crate) fn child_ended(&mut self, child: CallSid) {
        let Some(parent) = self.leg(child).and_then(|l| l.parent) else { return };
        let child_status = self.leg(child).map(|l| l.state.resource_status());
        let Some(leg) = self.leg(parent) else { return };
        let Exec::Dialing { children, bridged, bridged_at, .. } = &leg.exec else { return };
        if !children.contains(&child) {
            return;
        }
        let bridged = *bridged;
        let bridged_at = *bridged_at;
        if bridged == Some(child) {
            let duration = bridged_at.map(|t| self.now - t);
            self.finish_dial(parent, DialCallStatus::Completed, Some(child), duration);
            return;
        }
        let remaining: Vec<CallSid> = children
            .iter()
            .copied()
            .filter(|c| *c != child && self.leg(*c).is_some_and(|l| !l.state.is_ended()))
            .collect();
        if bridged.is_none() && remaining.is_empty() {
            let status = match child_status {
                Some(CallStatus::Busy) => DialCallStatus::Busy,
                Some(CallStatus::Failed) => DialCallStatus::Failed,
                Some(CallStatus::Canceled) => DialCallStatus::Canceled,
                _ => DialCallStatus::NoAnswer,
            };
            self.finish_dial(parent, status, Some(child), None);
        }
    }

    pub(crate) fn dial_time_limit(&mut self, parent: CallSid) {
        if let Some(Exec::Dialing { bridged: Some(child), .. }) = self.leg(parent).map(|l| &l.exec) {
            let child = *child;
            self.end_call(child, CallStatus::Completed, "<Dial timeLimit>");
        }
    }

    /// The dial is over for a live parent: request `action`, or go on with the next verb.
    fn finish_dial(
        &mut self,
        parent: CallSid,
        status: DialCallStatus,
        child: Option<CallSid>,
        duration: Option<SimDuration>,
    ) {
        let Some(leg) = self.leg_mut(parent) else { return };
        let Exec::Dialing { dial, .. } = std::mem::replace(&mut leg.exec, Exec::Idle) else { return };
        self.bump_generation(parent);
        self.set_hears(parent, "silence");
        match &dial.action {
            Some(action) => {
                let url = self.resolve(parent, action);
                let extra = dial_params(status, child, duration);
                self.fetch_twiml(parent, Hook { url, method: dial.method }, FetchKind::Action, extra);
            }
            None => self.run_next(parent),
        }
    }

    /// The caller hung up during a `<Dial>` with `action`: the request is sent, its answer not run.
    pub(crate) fn dial_action_after_hangup(
        &mut self,
        parent: CallSid,
        dial: &Dial,
        status: DialCallStatus,
        child: Option<CallSid>,
        duration: Option<SimDuration>,
    ) {
        let Some(action) = &dial.action else { return };
        let url = self.resolve(parent, action);
        let mut params = self.voice_params(parent);
        params.extend(dial_params(status, child, duration));
        self.send_callback(parent, &Hook { url, method: dial.method }, params, "dial action after hangup");
    }

    /// Opens a media stream for `call` and journals it.
    fn open_stream(
        &mut self,
        call: CallSid,
        url: &str,
        parameters: Vec<(String, String)>,
        bidirectional: bool,
        name: Option<String>,
    ) -> crate::ids::StreamSid {
        let stream = self.mint.stream();
        let account = self.leg(call).map(|l| l.account).unwrap_or(crate::ids::AccountSid::from_u128(0));
        self.twilio.streams.insert(stream, call);
        if !bidirectional && let Some(leg) = self.leg_mut(call) {
            leg.forks.push((stream, name));
        }
        self.transition(Entity::Stream(stream), "none", "connecting", Some(&format!("call {call} → {url}")));
        if self.vapi.owns_url(url) {
            // The fake Vapi's stream URL: connected in process, as its own step.
            self.vapi.streams.insert(stream, String::new());
            self.schedule(
                SimDuration::ZERO,
                crate::vapi::Event::StreamOpened { stream, url: url.to_owned() },
            );
            return stream;
        }
        self.push_effect(Effect::OpenStream(StreamOpen {
            stream,
            call,
            account,
            url: url.to_owned(),
            parameters,
            bidirectional,
        }));
        stream
    }

    /// The shell reports on a media stream it runs.
    pub fn stream_report(&mut self, stream: crate::ids::StreamSid, report: StreamReport) {
        let Some(&call) = self.twilio.streams.get(&stream) else { return };
        match report {
            StreamReport::Connected => {
                self.transition(Entity::Stream(stream), "connecting", "connected", None)
            }
            StreamReport::Closed { .. } | StreamReport::Failed(_) => {
                if let StreamReport::Failed(reason) = &report {
                    // Twilio 31920: Stream - WebSocket - Handshake Error.
                    self.notify(Some(call), 31920, format!("stream {stream}: {reason}"));
                }
                self.twilio.streams.shift_remove(&stream);
                self.transition(Entity::Stream(stream), "connected", "closed", Some("by the server"));
                let Some(leg) = self.leg_mut(call) else { return };
                leg.forks.retain(|(s, _)| *s != stream);
                if let Exec::Streaming { stream: s, action } = &leg.exec
                    && *s == stream
                {
                    let action = action.clone();
                    leg.exec = Exec::Idle;
                    self.bump_generation(call);
                    // Twilio: when the server closes the socket, <Connect> continues with its action
                    // URL, or the next verb.
                    match action {
                        Some(hook) => self.fetch_twiml(call, hook, FetchKind::Action, Vec::new()),
                        None => self.run_next(call),
                    }
                }
            }
        }
    }

    /// REST `Url`/`Twiml` on a live call: interrupt whatever runs and start the new document.
    pub(crate) fn redirect_call(&mut self, call: CallSid, doc: crate::twilio::engine::Doc) {
        let Some(leg) = self.leg_mut(call) else { return };
        let exec = std::mem::replace(&mut leg.exec, Exec::Idle);
        leg.verbs.clear();
        leg.fetches_in_a_row = 0;
        self.bump_generation(call);
        self.note(format!("call {call}: redirected by the REST API"));
        self.unwind(call, exec, Unwind::Redirected);
        match doc {
            crate::twilio::engine::Doc::Url(hook) => {
                self.fetch_twiml(call, hook, FetchKind::Voice, Vec::new())
            }
            crate::twilio::engine::Doc::Twiml(text) => self.load_document(call, &text, None),
        }
    }
}

fn dial_params(status: DialCallStatus, child: Option<CallSid>, duration: Option<SimDuration>) -> Params {
    let mut p: Params = vec![("DialCallStatus".into(), status.to_string())];
    if let Some(child) = child {
        p.push(("DialCallSid".into(), child.to_string()));
    }
    if let Some(d) = duration {
        p.push(("DialCallDuration".into(), d.as_secs().to_string()));
    }
    p.push(("DialBridged".into(), (status == DialCallStatus::Completed && duration.is_some()).to_string()));
    p
}
