//! An assistant session: a Vapi call's life once Twilio's stream is up. The assistant greets, hears
//! the caller, answers from its script, calls tools, and ends — by itself, on a timeout, or because
//! the stream went away. Every step feeds the call's artifact (`messages`, `messagesOpenAIFormatted`,
//! `transcript`) and the server messages the assistant subscribes to.

use std::collections::VecDeque;

use serde_json::{Value, json};

use crate::ids::{CallSid, StreamSid};
use crate::journal::Entity;
use crate::time::SimDuration;
use crate::vapi::model::CallStatus;
use crate::vapi::script::{self, ToolInvocation};
use crate::vapi::transfer::Transfer;
use crate::vapi::{Event, seconds, str_field};
use crate::world::{StreamReport, World};

/// What happens once the assistant has said something.
#[derive(Clone, Debug, PartialEq)]
pub enum After {
    Nothing,
    /// Run the tool calls of a script turn.
    Tools(Vec<ToolInvocation>, Option<String>, bool),
    /// Hang up with this endedReason.
    EndCall(String),
    /// Carry out a transfer that was announced.
    Transfer(Box<Transfer>),
}

/// The session's moving parts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Session {
    /// Bumped on every exchange: a silence timer from an older generation is stale.
    pub generation: u64,
    /// What the assistant is saying, and what follows it.
    pub speaking: Option<(String, After)>,
    pub queue: VecDeque<(String, After)>,
    /// The caller's utterances waiting for an answer.
    pub heard: VecDeque<String>,
    /// Script turns already used.
    pub used: Vec<usize>,
    /// Tool calls sent and not yet answered: (toolCallId, name).
    pub tools: Vec<(String, String)>,
    /// Results in, for `{{result}}`.
    pub results: Vec<String>,
    /// Said once every tool answered, and whether the turn then hangs up.
    pub after_tools: Option<(Option<String>, bool)>,
    /// `speech-update` turns so far.
    pub turn: u64,
    pub assistant_muted: bool,
    pub customer_muted: bool,
    /// A transfer in flight.
    pub transfer: Option<Transfer>,
    pub tool_calls_made: u64,
}

impl Session {
    /// The Twilio leg a warm transfer dialed, if one is ringing or up.
    pub fn transfer_leg(&self) -> Option<CallSid> {
        self.transfer.as_ref().and_then(|t| t.leg)
    }
}

impl World {
    /// Twilio opened a stream to `url` (`wss://…/{id}/transport`): connect it to its call or refuse.
    pub(crate) fn vapi_stream_opened(&mut self, stream: StreamSid, url: &str) {
        if !self.twilio.streams.contains_key(&stream) {
            self.vapi.streams.shift_remove(&stream);
            return;
        }
        let id = url.rsplit('/').nth(1).unwrap_or_default().to_owned();
        let accepted = self.vapi.calls.get(&id).is_some_and(|c| !c.is_ended() && c.stream.is_none())
            && url.ends_with("/transport");
        if !accepted {
            self.vapi.streams.shift_remove(&stream);
            self.stream_report(
                stream,
                StreamReport::Failed(format!("vapi refused the stream: no call waits on {url}")),
            );
            return;
        }
        self.vapi.streams.insert(stream, id.clone());
        self.stream_report(stream, StreamReport::Connected);
        let leg = self.twilio.streams.get(&stream).copied();
        let call = self.vapi.calls.get_mut(&id).expect("checked above");
        call.stream = Some(stream);
        if call.twilio_call.is_none() {
            call.twilio_call = leg;
        }
        call.started_at = Some(self.now);
        self.set_vapi_status(&id, CallStatus::InProgress, "stream connected");
        let call = &self.vapi.calls[&id];
        let max = seconds(call.assistant.get("maxDurationSeconds"), 600.0, 10.0..=43_200.0);
        let system: Vec<String> = call
            .assistant
            .get("model")
            .and_then(|m| m.get("messages"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|m| m["role"] == "system")
            .filter_map(|m| m["content"].as_str().map(str::to_owned))
            .collect();
        for content in system {
            let rendered = super::model::render_template(&content, &self.vapi.calls[&id].variables);
            self.add_message(
                &id,
                json!({"role": "system", "message": rendered}),
                json!({"role": "system", "content": rendered}),
            );
        }
        self.schedule(max, Event::MaxDuration(id.clone()));
        let call = &self.vapi.calls[&id];
        let mode = str_field(&call.assistant, "firstMessageMode").unwrap_or("assistant-speaks-first");
        let first = str_field(&call.assistant, "firstMessage").map(str::to_owned);
        match (mode, first) {
            ("assistant-waits-for-user", _) | (_, None) => self.arm_silence(&id),
            (_, Some(text)) => {
                let text = super::model::render_template(&text, &self.vapi.calls[&id].variables);
                self.say(&id, text, After::Nothing);
            }
        }
    }

    /// Twilio stopped the stream: the leg was redirected away or hung up.
    pub(crate) fn vapi_stream_stopped(&mut self, stream: StreamSid) {
        let Some(id) = self.vapi.streams.shift_remove(&stream) else { return };
        let Some(call) = self.vapi.calls.get_mut(&id) else { return };
        if call.stream != Some(stream) {
            return;
        }
        call.stream = None;
        if call.is_ended() {
            return;
        }
        let leg_ended =
            call.twilio_call.and_then(|leg| self.twilio.calls.get(&leg)).is_none_or(|l| l.state.is_ended());
        let reason = match &self.vapi.calls[&id].session.transfer {
            Some(t) if t.forwarded => "assistant-forwarded-call".to_owned(),
            _ if leg_ended => "customer-ended-call".to_owned(),
            _ => self.vapi.defaults.redirected_away_ended_reason.clone(),
        };
        self.end_vapi_call(&id, &reason);
    }

    /// Twilio never connected a bypass call's stream.
    pub(crate) fn bypass_deadline(&mut self, id: &str) {
        if self.vapi.calls.get(id).is_some_and(|c| c.stream.is_none() && !c.is_ended()) {
            self.end_vapi_call(id, "phone-call-provider-bypass-enabled-but-no-call-received");
        }
    }

    /// The caller on Twilio leg `leg` says `text`. Whoever is on the line with them hears it: the
    /// assistant if the leg streams to a Vapi call.
    pub fn caller_says(&mut self, leg: CallSid, text: &str) -> Result<(), String> {
        let l = self.twilio.calls.get(&leg).ok_or_else(|| format!("no call {leg}"))?;
        if l.state.is_ended() {
            return Err(format!("call {leg} has ended"));
        }
        let event = crate::journal::Event::Says { call: leg, text: text.to_owned() };
        self.journal.record(self.now, event);
        let id = self
            .vapi
            .calls
            .values()
            .find(|c| c.twilio_call == Some(leg) && c.stream.is_some() && !c.is_ended())
            .map(|c| c.id.clone());
        match id {
            Some(id) => self.hear_user(&id, text),
            None => self.note(format!("call {leg}: no assistant is listening")),
        }
        Ok(())
    }

    pub(crate) fn hear_user(&mut self, id: &str, text: &str) {
        let Some(call) = self.vapi.calls.get_mut(id) else { return };
        if call.session.customer_muted {
            self.note(format!("vapi-call {id}: customer muted; not heard"));
            return;
        }
        call.session.generation += 1;
        call.session.heard.push_back(text.to_owned());
        let turn = call.session.turn;
        call.session.turn += 1;
        self.send_message(id, "speech-update", json!({"status": "started", "role": "user", "turn": turn}));
        self.send_message(id, "speech-update", json!({"status": "stopped", "role": "user", "turn": turn}));
        let duration = self.speech_length(text);
        self.add_message(
            id,
            json!({"role": "user", "message": text, "duration": duration.as_millis(), "endTime": self.epoch.unix_millis(self.now)}),
            json!({"role": "user", "content": text}),
        );
        self.conversation_update(id);
        let delay = SimDuration::from_secs_f64(self.vapi.defaults.response_delay_s);
        self.schedule(delay, Event::Respond(id.to_owned()));
    }

    /// The assistant answers the oldest utterance it has not answered, from its script.
    pub(crate) fn respond(&mut self, id: &str) {
        let Some(call) = self.vapi.calls.get_mut(id) else { return };
        if call.is_ended() {
            return;
        }
        let Some(utterance) = call.session.heard.pop_front() else { return };
        let name = str_field(&call.assistant, "name").map(str::to_owned);
        let script = script::find(&self.vapi.scripts, call.assistant_id.as_deref(), name.as_deref());
        let turn = script.and_then(|s| {
            s.turns.iter().enumerate().find(|(i, t)| !call.session.used.contains(i) && t.matches(&utterance))
        });
        let Some((index, turn)) = turn else {
            self.note(format!("vapi-call {id}: the script has no answer to {utterance:?}"));
            self.arm_silence(id);
            return;
        };
        let turn = turn.clone();
        call.session.used.push(index);
        let after = After::Tools(turn.tool_calls.clone(), turn.after_tools.clone(), turn.end_call);
        match turn.say {
            Some(text) => {
                let text = super::model::render_template(&text, &call.variables);
                self.say(id, text, after);
            }
            None => self.after_speech(id, after),
        }
    }

    /// The assistant says `text`, after whatever it is already saying.
    pub(crate) fn say(&mut self, id: &str, text: String, then: After) {
        let Some(call) = self.vapi.calls.get_mut(id) else { return };
        if call.is_ended() {
            return;
        }
        if call.session.speaking.is_some() {
            call.session.queue.push_back((text, then));
            return;
        }
        if call.session.assistant_muted {
            self.note(format!("vapi-call {id}: assistant muted; not saying {text:?}"));
            self.after_speech(id, then);
            return;
        }
        call.session.speaking = Some((text.clone(), then));
        call.session.generation += 1;
        let turn = call.session.turn;
        call.session.turn += 1;
        if let Some(leg) = call.twilio_call {
            self.hear(leg, format!("assistant: {text}"));
        }
        self.send_message(
            id,
            "speech-update",
            json!({"status": "started", "role": "assistant", "turn": turn}),
        );
        let length = self.speech_length(&text);
        // One speech at a time: the next starts from `speech_done`, so this event is never stale.
        self.schedule(length, Event::SpeechDone(id.to_owned()));
    }

    pub(crate) fn speech_done(&mut self, id: &str) {
        let Some(call) = self.vapi.calls.get_mut(id) else { return };
        let Some((text, then)) = call.session.speaking.take() else { return };
        let turn = call.session.turn.saturating_sub(1);
        let length = self.speech_length(&text);
        self.send_message(
            id,
            "speech-update",
            json!({"status": "stopped", "role": "assistant", "turn": turn}),
        );
        self.add_message(
            id,
            json!({"role": "bot", "message": text, "duration": length.as_millis(), "endTime": self.epoch.unix_millis(self.now), "source": ""}),
            json!({"role": "assistant", "content": text}),
        );
        self.conversation_update(id);
        self.after_speech(id, then);
        if let Some(call) = self.vapi.calls.get_mut(id)
            && call.session.speaking.is_none()
            && let Some((text, then)) = call.session.queue.pop_front()
        {
            self.say(id, text, then);
        }
    }

    pub(crate) fn after_speech(&mut self, id: &str, then: After) {
        match then {
            After::Nothing => self.arm_silence(id),
            After::EndCall(reason) => self.end_vapi_call(id, &reason),
            After::Tools(tools, after, end_call) => {
                if tools.is_empty() {
                    match (after, end_call) {
                        (_, true) => self.end_vapi_call(id, "assistant-ended-call"),
                        _ => self.arm_silence(id),
                    }
                } else {
                    self.call_tools(id, tools, after, end_call);
                }
            }
            After::Transfer(transfer) => self.carry_out_transfer(id, *transfer),
        }
    }

    /// (Re)starts the silence timer.
    pub(crate) fn arm_silence(&mut self, id: &str) {
        let Some(call) = self.vapi.calls.get(id) else { return };
        if call.is_ended() {
            return;
        }
        let generation = call.session.generation;
        let after = SimDuration::from_secs_f64(self.vapi.defaults.silence_timeout_s);
        self.schedule(after, Event::SilenceTimeout(id.to_owned(), generation));
    }

    pub(crate) fn silence_timeout(&mut self, id: &str, generation: u64) {
        let Some(call) = self.vapi.calls.get(id) else { return };
        let busy = call.session.speaking.is_some()
            || !call.session.tools.is_empty()
            || call.session.transfer.is_some();
        if call.session.generation == generation && !busy && call.status == CallStatus::InProgress {
            self.end_vapi_call(id, "silence-timed-out");
        }
    }

    pub(crate) fn speech_length(&self, text: &str) -> SimDuration {
        let words = text.split_whitespace().count().max(1) as f64;
        SimDuration::from_secs_f64(words * self.vapi.defaults.seconds_per_word)
    }

    /// Appends to the artifact: one `messages[]` entry (stamped here) and its OpenAI form.
    pub(crate) fn add_message(&mut self, id: &str, mut message: Value, openai: Value) {
        let now_ms = self.epoch.unix_millis(self.now);
        let Some(call) = self.vapi.calls.get_mut(id) else { return };
        let started = call.started_at.unwrap_or(self.now);
        let from_start = self.now.saturating_since(started).as_secs_f64();
        let role = message["role"].as_str().unwrap_or_default().to_owned();
        let text = message["message"].as_str().unwrap_or_default().to_owned();
        if let Some(m) = message.as_object_mut() {
            let duration = m.get("duration").and_then(Value::as_i64).unwrap_or(0);
            m.insert("time".into(), json!(now_ms - duration));
            m.insert("secondsFromStart".into(), json!(from_start - duration as f64 / 1000.0));
        }
        call.artifact.messages.push(message);
        call.artifact.openai.push(openai);
        match role.as_str() {
            "bot" => call.artifact.transcript.push_str(&format!("AI: {text}\n")),
            "user" => call.artifact.transcript.push_str(&format!("User: {text}\n")),
            _ => {}
        }
    }

    pub(crate) fn conversation_update(&mut self, id: &str) {
        let Some(call) = self.vapi.calls.get(id) else { return };
        let extra = json!({
            "messages": call.artifact.messages,
            "messagesOpenAIFormatted": call.artifact.openai,
        });
        self.send_message(id, "conversation-update", extra);
    }

    /// Moves the call to `status`, journals it and tells the server.
    pub(crate) fn set_vapi_status(&mut self, id: &str, status: CallStatus, cause: &str) {
        let Some(call) = self.vapi.calls.get_mut(id) else { return };
        if call.status == status || call.is_ended() {
            return;
        }
        let from = call.status.as_str();
        call.status = status;
        call.updated_at = self.now;
        self.transition(Entity::VapiCall(id.to_owned()), from, status.as_str(), Some(cause));
        self.status_update(id);
    }

    /// Ends the call: its stream closes (Twilio's leg moves on to its next verb), the server gets the
    /// final `status-update`, then the `end-of-call-report`.
    pub fn end_vapi_call(&mut self, id: &str, reason: &str) {
        let Some(call) = self.vapi.calls.get_mut(id) else { return };
        if call.is_ended() {
            return;
        }
        let from = call.status.as_str();
        call.status = CallStatus::Ended;
        call.ended_reason = Some(reason.to_owned());
        call.ended_at = Some(self.now);
        call.updated_at = self.now;
        call.session.speaking = None;
        call.session.queue.clear();
        let stream = call.stream.take();
        let transfer_leg = call.session.transfer.as_ref().filter(|t| !t.forwarded).and_then(|t| t.leg);
        self.transition(Entity::VapiCall(id.to_owned()), from, "ended", Some(reason));
        if let Some(stream) = stream
            && self.vapi.streams.shift_remove(&stream).is_some()
        {
            self.stream_report(stream, StreamReport::Closed { by_server: true });
        }
        if let Some(leg) = transfer_leg {
            self.hang_up_transfer_leg(id, leg);
        }
        self.status_update(id);
        self.end_of_call_report(id);
    }
}
