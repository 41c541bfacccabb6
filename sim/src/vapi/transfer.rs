//! Native transfers (`transferCall` tools, control `transfer`) and live call control.
//!
//! How the real Vapi drives Twilio during a transfer is UNCONFIRMED beyond its outcomes (reference §6);
//! the fake does it the way those outcomes imply, through the fake Twilio's REST API:
//! - **blind** modes: the caller's leg is updated to a `<Dial>` of the destination. The stream stops and
//!   the call ends `assistant-forwarded-call`; Vapi never learns whether anyone answered.
//! - **warm** modes: the caller stays on the stream (on hold) while Vapi dials the destination with
//!   machine detection and TwiML that tells the operator the message or summary and puts them in a
//!   conference. A human answers: the caller's leg joins that conference and the call ends
//!   `assistant-forwarded-call`. Busy, no answer, a machine, a failure: the destination leg is hung up,
//!   the transfer is recorded with that status, and the fallback plan decides — say its message, then end
//!   the call (`endCallEnabled`, the default) or keep the assistant talking.
//! - **assistant** destinations swap the assistant inside the same call.
//! - With `phone-call-control` subscribed, Vapi only tells the server (`request: "forward"`).

use serde_json::{Map, Value, json};

use crate::ids::CallSid;
use crate::twilio::model::CallStatus as TwilioStatus;
use crate::vapi::errors::VapiError;
use crate::vapi::messages::Reply;
use crate::vapi::model::{CallStatus, TRANSFER_MODES, object, render_template};
use crate::vapi::session::After;
use crate::vapi::str_field;
use crate::world::World;

/// A transfer being carried out.
#[derive(Clone, Debug, PartialEq)]
pub struct Transfer {
    pub destination: Value,
    pub mode: String,
    /// The destination's Twilio leg (warm modes).
    pub leg: Option<CallSid>,
    /// The caller has been handed over: the stream's end means the transfer, not a hang-up.
    pub forwarded: bool,
    /// Its entry in `artifact.transfers`.
    pub index: usize,
}

impl World {
    /// The assistant called a `transferCall` tool.
    pub(crate) fn start_transfer(&mut self, id: &str, tool: &Value, arguments: &Map<String, Value>) {
        let destinations = tool.get("destinations").and_then(Value::as_array).cloned().unwrap_or_default();
        let asked = arguments.get("destination").and_then(Value::as_str);
        let destination = match asked {
            Some(asked) => destinations
                .iter()
                .find(|d| d["number"] == asked || d["sipUri"] == asked || d["assistantName"] == asked)
                .cloned()
                .or_else(|| destinations.is_empty().then(|| json!({"type": "number", "number": asked}))),
            None if destinations.len() == 1 => destinations.first().cloned(),
            None => None,
        };
        if self.subscribes(id, "phone-call-control") {
            let mut request = json!({"request": "forward"});
            if let Some(destination) = destination {
                request["destination"] = destination;
            }
            self.post_message(id, "phone-call-control", request, None, Reply::Ignore);
            self.note(format!("vapi-call {id}: phone-call-control subscribed; the server transfers"));
            return;
        }
        match destination {
            Some(destination) => self.perform_transfer(id, destination, None),
            None if destinations.is_empty() => {
                let sent = self.subscribes(id, "transfer-destination-request")
                    && self.post_message(
                        id,
                        "transfer-destination-request",
                        json!({}),
                        None,
                        Reply::TransferDestination,
                    );
                if !sent {
                    self.note(format!(
                        "vapi-call {id}: no destination and no server to ask; not transferred"
                    ));
                }
            }
            None => self.note(format!(
                "vapi-call {id}: transfer to {:?} is not one of the tool's destinations; not transferred",
                asked.unwrap_or_default()
            )),
        }
    }

    /// The server answered a `transfer-destination-request`.
    pub(crate) fn transfer_destination_answer(&mut self, id: &str, body: Option<Value>) {
        let body = body.unwrap_or(Value::Null);
        if let Some(destination) = body.get("destination").filter(|d| d.is_object()) {
            let message = body.pointer("/message/content").and_then(Value::as_str).map(str::to_owned);
            self.perform_transfer(id, destination.clone(), message);
        } else if let Some(error) = body.get("error").and_then(Value::as_str) {
            let error = error.to_owned();
            self.say(id, error, After::Nothing);
        } else {
            self.note(format!(
                "vapi-call {id}: transfer-destination-request answered without `destination` or `error`"
            ));
            self.arm_silence(id);
        }
    }

    /// Transfers the call to `destination`; `message` overrides the destination's own.
    pub(crate) fn perform_transfer(&mut self, id: &str, destination: Value, message: Option<String>) {
        let Some(call) = self.vapi.calls.get(id) else { return };
        if call.is_ended() || call.session.transfer.is_some() {
            self.note(format!("vapi-call {id}: a transfer is already under way; ignored"));
            return;
        }
        let mode = destination
            .pointer("/transferPlan/mode")
            .and_then(Value::as_str)
            .unwrap_or("blind-transfer")
            .to_owned();
        if !TRANSFER_MODES.contains(&mode.as_str()) {
            self.note(format!("vapi-call {id}: transferPlan.mode {mode:?} is not a mode; not transferred"));
            return;
        }
        let message = message.or_else(|| match destination.get("message") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(m) => m.get("content").and_then(Value::as_str).map(str::to_owned),
            None => Some(self.vapi.defaults.transfer_message.clone()),
        });
        let message = message.map(|m| render_template(&m, &call.variables)).filter(|m| !m.is_empty());
        let kind = destination["type"].as_str().unwrap_or("number").to_owned();
        let call = self.vapi.calls.get_mut(id).expect("checked above");
        let index = call.artifact.transfers.len();
        call.artifact.transfers.push(json!({"destination": destination, "mode": mode}));
        call.destination = Some(destination.clone());
        let transfer =
            Transfer { destination: destination.clone(), mode, leg: None, forwarded: false, index };
        call.session.transfer = Some(transfer.clone());
        if kind == "assistant" {
            self.swap_assistant(id, &destination, message);
            return;
        }
        self.set_vapi_status(id, CallStatus::Forwarding, "transfer");
        self.send_message(id, "transfer-update", json!({"destination": destination}));
        match message {
            Some(text) => self.say(id, text, After::Transfer(Box::new(transfer))),
            None => self.carry_out_transfer(id, transfer),
        }
    }

    /// After the transfer message: hand the caller over (blind) or dial the destination (warm).
    pub(crate) fn carry_out_transfer(&mut self, id: &str, transfer: Transfer) {
        let Some(call) = self.vapi.calls.get(id) else { return };
        let Some(leg) = call.twilio_call else { return };
        if call.is_ended() {
            return;
        }
        let destination = &transfer.destination;
        let caller_id = destination
            .get("callerId")
            .and_then(Value::as_str)
            .map(|c| render_template(c, &call.variables))
            .or_else(|| call.customer_number().map(str::to_owned));
        if transfer.mode.starts_with("blind-transfer") {
            let noun = match destination.get("sipUri").and_then(Value::as_str) {
                Some(uri) => format!("<Sip>{}</Sip>", xml(uri)),
                None => {
                    format!("<Number>{}</Number>", xml(destination["number"].as_str().unwrap_or_default()))
                }
            };
            let caller_id = caller_id.map(|c| format!(r#" callerId="{}""#, xml(&c))).unwrap_or_default();
            let twiml = format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial{caller_id}>{noun}</Dial></Response>"#
            );
            self.mark_forwarded(id);
            if let Err(e) = self.update_leg(id, leg, &[("Twiml", &twiml)]) {
                self.note(format!("vapi-call {id}: blind transfer failed: {e}"));
                self.transfer_failed(id, "failed");
            }
            return;
        }
        // Warm: the operator hears the message, summary or TwiML, then waits in a conference.
        let to = destination
            .get("number")
            .or_else(|| destination.get("sipUri"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let plan = destination.get("transferPlan").cloned().unwrap_or(Value::Null);
        let briefing = match transfer.mode.as_str() {
            "warm-transfer-twiml" => {
                plan["twiml"].as_str().map(|t| strip_response(t).to_owned()).unwrap_or_default()
            }
            m if m.ends_with("summary") || m == "warm-transfer-experimental" => {
                format!("<Say>{}</Say>", xml(&self.summary(id)))
            }
            _ => plan["message"].as_str().map(|m| format!("<Say>{}</Say>", xml(m))).unwrap_or_default(),
        };
        let twiml = transfer_room(id, &briefing);
        if let Some(url) = plan.get("holdAudioUrl").and_then(Value::as_str) {
            self.hear(leg, format!("hold audio {url}"));
        } else {
            self.hear(leg, "hold audio (Vapi default)");
        }
        let from = destination.get("callerId").and_then(Value::as_str).map(str::to_owned);
        // `transferPlan.timeout` (1–600 s) bounds the wait for the operator; the fake lets it bound the ring.
        let ring = plan.get("timeout").and_then(Value::as_u64).map(|t| t.clamp(1, 600) as u32);
        match self.dial_from_number(id, &to, from.as_deref(), &twiml, true, ring) {
            Ok(sid) => {
                if let Some(t) = self.vapi.calls.get_mut(id).and_then(|c| c.session.transfer.as_mut()) {
                    t.leg = Some(sid);
                }
            }
            Err(e) => {
                self.note(format!("vapi-call {id}: could not dial {to}: {e}"));
                self.transfer_failed(id, "failed");
            }
        }
    }

    /// A deterministic stand-in for the summary a model would write.
    fn summary(&self, id: &str) -> String {
        let transcript =
            self.vapi.calls.get(id).map(|c| c.artifact.transcript.replace('\n', " ")).unwrap_or_default();
        format!("Summary of the call so far: {}", transcript.trim())
    }

    fn mark_forwarded(&mut self, id: &str) {
        if let Some(t) = self.vapi.calls.get_mut(id).and_then(|c| c.session.transfer.as_mut()) {
            t.forwarded = true;
        }
    }

    /// Twilio's status callback for a warm transfer's destination leg.
    pub(crate) fn transfer_leg_status(&mut self, id: &str, status: TwilioStatus, answered_by: Option<&str>) {
        let Some(call) = self.vapi.calls.get(id) else { return };
        let Some(transfer) = call.session.transfer.clone() else { return };
        if transfer.forwarded {
            return;
        }
        match status {
            // Answered: machine detection decides (`/twilio/amd`).
            TwilioStatus::InProgress => {
                if let Some(by) = answered_by {
                    self.transfer_detected(id, by);
                }
            }
            TwilioStatus::Busy => self.transfer_failed(id, "busy"),
            TwilioStatus::NoAnswer => self.transfer_failed(id, "no-answer"),
            TwilioStatus::Failed | TwilioStatus::Canceled | TwilioStatus::Completed => {
                self.transfer_failed(id, "failed")
            }
            _ => {}
        }
    }

    /// Machine detection says who answered a warm transfer's destination.
    pub(crate) fn transfer_detected(&mut self, id: &str, answered_by: &str) {
        let Some(transfer) = self.vapi.calls.get(id).and_then(|c| c.session.transfer.clone()) else { return };
        if transfer.forwarded {
            return;
        }
        if answered_by.starts_with("machine") || answered_by == "fax" {
            self.transfer_failed(id, "voicemail");
        } else {
            self.bridge_transfer(id, &transfer);
        }
    }

    /// The operator is a human: put the caller in the operator's conference.
    fn bridge_transfer(&mut self, id: &str, transfer: &Transfer) {
        let Some(leg) = self.vapi.calls.get(id).and_then(|c| c.twilio_call) else { return };
        let twiml = transfer_room(id, "");
        self.set_transfer_status(id, transfer.index, "connected");
        self.mark_forwarded(id);
        if let Err(e) = self.update_leg(id, leg, &[("Twiml", &twiml)]) {
            self.note(format!("vapi-call {id}: could not bridge the caller: {e}"));
        }
    }

    fn set_transfer_status(&mut self, id: &str, index: usize, status: &str) {
        if let Some(entry) = self.vapi.calls.get_mut(id).and_then(|c| c.artifact.transfers.get_mut(index)) {
            entry["status"] = json!(status);
        }
    }

    /// The transfer did not reach a human: hang up the destination, then the fallback plan.
    fn transfer_failed(&mut self, id: &str, status: &str) {
        let Some(call) = self.vapi.calls.get_mut(id) else { return };
        let Some(transfer) = call.session.transfer.take() else { return };
        call.destination = None;
        self.set_transfer_status(id, transfer.index, status);
        if let Some(leg) = transfer.leg {
            self.hang_up_transfer_leg(id, leg);
        }
        self.note(format!("vapi-call {id}: transfer {status}"));
        let plan = transfer.destination.pointer("/transferPlan/fallbackPlan").cloned();
        self.set_vapi_status_back(id);
        let reason = self.vapi.defaults.transfer_failed_ended_reason.clone();
        match plan {
            Some(plan) => {
                let message = match plan.get("message") {
                    Some(Value::String(s)) => s.clone(),
                    Some(m) => m.get("content").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    None => String::new(),
                };
                let end = plan.get("endCallEnabled").and_then(Value::as_bool).unwrap_or(true);
                let then = if end { After::EndCall(reason) } else { After::Nothing };
                if message.is_empty() {
                    self.after_speech(id, then);
                } else {
                    self.say(id, message, then);
                }
            }
            None => self.end_vapi_call(id, &reason),
        }
    }

    /// Back from `forwarding` to `in-progress` once a transfer failed and the assistant keeps the call.
    fn set_vapi_status_back(&mut self, id: &str) {
        if let Some(leg) = self.vapi.calls.get(id).and_then(|c| c.twilio_call) {
            self.hear(leg, "assistant (transfer over)");
        }
        self.set_vapi_status(id, CallStatus::InProgress, "transfer failed");
    }

    /// Ends a destination leg Vapi dialed: cancel while it rings, complete once up.
    pub(crate) fn hang_up_transfer_leg(&mut self, id: &str, leg: CallSid) {
        let Some(state) = self.twilio.calls.get(&leg).map(|l| l.state) else { return };
        if state.is_ended() {
            return;
        }
        let status = if state == crate::twilio::leg::LegState::InProgress { "completed" } else { "canceled" };
        if let Err(e) = self.update_leg(id, leg, &[("Status", status)]) {
            self.note(format!("vapi-call {id}: could not hang up {leg}: {e}"));
        }
    }

    /// An `assistant` destination: the same call continues with another assistant.
    fn swap_assistant(&mut self, id: &str, destination: &Value, message: Option<String>) {
        let name = destination["assistantName"].as_str().unwrap_or_default();
        let found = self.vapi.assistants.values().find(|a| a.name() == Some(name)).cloned();
        let Some(next) = found else {
            self.note(format!("vapi-call {id}: no assistant named {name:?}; not transferred"));
            if let Some(call) = self.vapi.calls.get_mut(id) {
                call.session.transfer = None;
                call.destination = None;
            }
            return;
        };
        let index = self.vapi.calls[id].session.transfer.as_ref().map(|t| t.index).unwrap_or_default();
        let from = self.vapi.calls[id].assistant.clone();
        self.send_message(
            id,
            "transfer-update",
            json!({"destination": destination, "toAssistant": next.body, "fromAssistant": from}),
        );
        self.set_transfer_status(id, index, "completed");
        let call = self.vapi.calls.get_mut(id).expect("exists");
        call.assistant = next.body.clone();
        call.assistant_id = next.id.clone();
        call.session.transfer = None;
        call.session.used.clear();
        let first = str_field(&next.body, "firstMessage").map(str::to_owned);
        if let Some(text) = message {
            self.say(id, text, After::Nothing);
        }
        if let Some(text) = first {
            let text = render_template(&text, &self.vapi.calls[id].variables);
            self.say(id, text, After::Nothing);
        }
    }

    /// `POST {monitor.controlUrl}`: one `ClientInboundMessage`, read with [`ControlMessage::from_json`]
    /// once the call is known to be live.
    pub fn control_call(&mut self, id: &str, body: Value) -> Result<Value, VapiError> {
        let body = object(body)?;
        let call = self.vapi.calls.get(id).ok_or_else(|| VapiError::not_found("Call not found"))?;
        if call.is_ended() {
            return Err(VapiError::bad_request("Call has ended"));
        }
        match ControlMessage::from_json(body)? {
            ControlMessage::Say { content, end_call_after_spoken } => {
                let then = if end_call_after_spoken {
                    After::EndCall("assistant-ended-call-after-message-spoken".into())
                } else {
                    After::Nothing
                };
                self.say(id, content, then);
            }
            ControlMessage::AddMessage { role, content, trigger_response } => {
                if trigger_response && role == "user" {
                    if let Some(leg) = self.vapi.calls[id].twilio_call {
                        self.note(format!("control add-message as the user on {leg}"));
                    }
                    self.hear_user(id, &content);
                } else {
                    let artifact_role = match role.as_str() {
                        "assistant" => "bot",
                        other => other,
                    };
                    self.add_message(
                        id,
                        json!({"role": artifact_role, "message": content}),
                        json!({"role": role, "content": content}),
                    );
                    self.conversation_update(id);
                }
            }
            ControlMessage::EndCall => self.end_vapi_call(id, "manually-canceled"),
            ControlMessage::Transfer { destination, content } => {
                self.perform_transfer(id, destination, content);
            }
            ControlMessage::Control(control) => {
                let call = self.vapi.calls.get_mut(id).expect("exists");
                match control {
                    Control::MuteAssistant => call.session.assistant_muted = true,
                    Control::UnmuteAssistant => call.session.assistant_muted = false,
                    Control::MuteCustomer => call.session.customer_muted = true,
                    Control::UnmuteCustomer => call.session.customer_muted = false,
                    Control::SayFirstMessage => {
                        if let Some(text) = str_field(&call.assistant, "firstMessage").map(str::to_owned) {
                            let text = render_template(&text, &call.variables);
                            self.say(id, text, After::Nothing);
                        }
                    }
                }
            }
            ControlMessage::SendTransportMessage { twiml } => {
                let leg = self.vapi.calls[id]
                    .twilio_call
                    .ok_or_else(|| VapiError::bad_request("Call has no Twilio leg yet"))?;
                self.update_leg(id, leg, &[("Twiml", &twiml)]).map_err(VapiError::bad_request)?;
            }
        }
        Ok(json!({}))
    }
}

/// One live call control message (`ClientInboundMessage`), as read from the body posted to
/// `monitor.controlUrl`, before anything is done with it.
#[derive(Clone, Debug, PartialEq)]
pub enum ControlMessage {
    /// `say`: the assistant says `content`, then hangs up if asked to.
    Say { content: String, end_call_after_spoken: bool },
    /// `add-message`: a message in the conversation; as the user with `triggerResponseEnabled`, the
    /// assistant answers it.
    AddMessage { role: String, content: String, trigger_response: bool },
    /// `end-call`.
    EndCall,
    /// `transfer` to a `number` or `sip` destination; `content` overrides its message.
    Transfer { destination: Value, content: Option<String> },
    /// `control`.
    Control(Control),
    /// `send-transport-message` with Twilio TwiML for the caller's leg.
    SendTransportMessage { twiml: String },
}

/// What a `control` message does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    MuteAssistant,
    UnmuteAssistant,
    MuteCustomer,
    UnmuteCustomer,
    SayFirstMessage,
}

impl ControlMessage {
    /// Reads a control body: a JSON object, else Vapi's 400. Never panics.
    pub fn parse(body: &[u8]) -> Result<ControlMessage, VapiError> {
        let value = super::rest::json(body)?;
        ControlMessage::from_json(object(value)?)
    }

    /// Reads a control message; a bad one is Vapi's validation error, which names the field and the
    /// values it takes (class-validator's wording).
    pub fn from_json(body: Map<String, Value>) -> Result<ControlMessage, VapiError> {
        let invalid = |message: &str| VapiError::invalid(vec![message.to_owned()]);
        let kind = str_field(&body, "type").unwrap_or_default();
        let message = match kind {
            "say" => ControlMessage::Say {
                content: str_field(&body, "content")
                    .ok_or_else(|| invalid("content must be a string"))?
                    .to_owned(),
                end_call_after_spoken: body
                    .get("endCallAfterSpoken")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            },
            "add-message" => {
                let message = body
                    .get("message")
                    .and_then(Value::as_object)
                    .ok_or_else(|| invalid("message must be an object"))?;
                let role = str_field(message, "role").unwrap_or_default().to_owned();
                if !["assistant", "function", "user", "system", "tool"].contains(&role.as_str()) {
                    return Err(invalid(
                        "message.role must be one of the following values: assistant, function, user, system, tool",
                    ));
                }
                ControlMessage::AddMessage {
                    role,
                    content: str_field(message, "content").unwrap_or_default().to_owned(),
                    trigger_response: body
                        .get("triggerResponseEnabled")
                        .and_then(Value::as_bool)
                        .unwrap_or(true),
                }
            }
            "end-call" => ControlMessage::EndCall,
            "transfer" => {
                let destination = body
                    .get("destination")
                    .filter(|d| d.is_object())
                    .cloned()
                    .ok_or_else(|| invalid("destination must be an object"))?;
                if !matches!(destination["type"].as_str(), Some("number" | "sip")) {
                    return Err(invalid("destination.type must be one of the following values: number, sip"));
                }
                ControlMessage::Transfer {
                    destination,
                    content: str_field(&body, "content").map(str::to_owned),
                }
            }
            "control" => ControlMessage::Control(match str_field(&body, "control").unwrap_or_default() {
                "mute-assistant" => Control::MuteAssistant,
                "unmute-assistant" => Control::UnmuteAssistant,
                "mute-customer" => Control::MuteCustomer,
                "unmute-customer" => Control::UnmuteCustomer,
                "say-first-message" => Control::SayFirstMessage,
                _ => {
                    return Err(invalid(
                        "control must be one of the following values: mute-assistant, unmute-assistant, mute-customer, unmute-customer, say-first-message",
                    ));
                }
            }),
            "send-transport-message" => {
                let message = body.get("message").cloned().unwrap_or(Value::Null);
                if message["transport"] != "twilio" {
                    return Err(invalid(
                        "message.transport must be one of the following values: twilio, vapi.sip",
                    ));
                }
                let twiml =
                    message["twiml"].as_str().ok_or_else(|| invalid("message.twiml must be a string"))?;
                ControlMessage::SendTransportMessage { twiml: twiml.to_owned() }
            }
            other => {
                return Err(VapiError::invalid(vec![format!(
                    "type must be one of the following values: say, add-message, control, end-call, transfer, send-transport-message (got {other:?})"
                )]));
            }
        };
        Ok(message)
    }
}

/// TwiML that plays `before` (TwiML verbs), then joins the warm-transfer conference of call `id`, where
/// the operator waits and the caller is brought in. Either side leaving ends it.
fn transfer_room(id: &str, before: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response>{before}<Dial><Conference beep="false" endConferenceOnExit="true">vapi-transfer-{id}</Conference></Dial></Response>"#
    )
}

/// Escapes text for an XML attribute or element.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `<Response>…</Response>` → its inside, so a plan's TwiML can be followed by the conference.
fn strip_response(twiml: &str) -> &str {
    let inner = twiml.trim();
    let inner = inner.strip_prefix(r#"<?xml version="1.0" encoding="UTF-8"?>"#).unwrap_or(inner).trim();
    inner.strip_prefix("<Response>").and_then(|s| s.strip_suffix("</Response>")).unwrap_or(inner)
}
