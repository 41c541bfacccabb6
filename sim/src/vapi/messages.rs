//! Server messages: what the fake Vapi POSTs to the customer's server during a call, and what it does
//! with the answers.
//!
//! Every message has the real envelope, `{"message": {type, timestamp (epoch ms), …, artifact, call,
//! phoneNumber, customer, assistant}}`, goes to the server chosen with Vapi's precedence (the tool's,
//! for `tool-calls`; then the assistant's, the phone number's, the organization's) if the assistant
//! subscribes to its type, and carries the server's `headers` and authentication.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::time::SimDuration;
use crate::transport::{OutboundRequest, TargetResponse};
use crate::vapi::model::{CallStatus, render_template};
use crate::vapi::script::ToolInvocation;
use crate::world::{DeliveryError, RetryPlan, World};

/// What the assistant's `serverMessages` is when it sets none (the spec's default).
pub const DEFAULT_SERVER_MESSAGES: &[&str] = &[
    "conversation-update",
    "end-of-call-report",
    "function-call",
    "hang",
    "speech-update",
    "status-update",
    "tool-calls",
    "transfer-destination-request",
    "handoff-destination-request",
    "user-interrupted",
    "assistant.started",
];

/// What to do with a server message's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Purpose {
    pub call: String,
    pub timeout: SimDuration,
    pub reply: Reply,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// Nothing is expected back.
    Ignore,
    /// `tool-calls`: a `results` entry per (toolCallId, name).
    ToolCalls(Vec<(String, String)>),
    /// `transfer-destination-request`: a `destination` or an `error`.
    TransferDestination,
}

impl World {
    /// Whether the call's assistant subscribes to `kind`.
    pub(crate) fn subscribes(&self, id: &str, kind: &str) -> bool {
        let Some(call) = self.vapi.calls.get(id) else { return false };
        match call.assistant.get("serverMessages").and_then(Value::as_array) {
            Some(list) => list.iter().any(|m| m == kind),
            None => DEFAULT_SERVER_MESSAGES.contains(&kind),
        }
    }

    /// The server a message goes to: `tool.server`, `assistant.server`, the phone number's server, the
    /// organization's. A server without a `url` does not count.
    pub(crate) fn server_for(&self, id: &str, tool: Option<&Value>) -> Option<Value> {
        let call = self.vapi.calls.get(id)?;
        let has_url = |s: &&Value| s.get("url").and_then(Value::as_str).is_some_and(|u| !u.is_empty());
        let number = call.phone_number_id.as_deref().and_then(|n| self.vapi.numbers.get(n));
        tool.and_then(|t| t.get("server"))
            .filter(has_url)
            .or_else(|| call.assistant.get("server").filter(has_url))
            .or_else(|| number.and_then(|n| n.body.get("server")).filter(has_url))
            .or_else(|| self.vapi.org_server.as_ref().filter(has_url))
            .cloned()
    }

    /// Sends a message that expects no answer, if the assistant subscribes to it.
    pub(crate) fn send_message(&mut self, id: &str, kind: &str, extra: Value) {
        if self.subscribes(id, kind) {
            self.post_message(id, kind, extra, None, Reply::Ignore);
        }
    }

    /// Posts `kind` to the call's server; `false` when there is no server to send it to.
    pub(crate) fn post_message(
        &mut self,
        id: &str,
        kind: &str,
        extra: Value,
        tool: Option<&Value>,
        reply: Reply,
    ) -> bool {
        let Some(server) = self.server_for(id, tool) else {
            // Worth a line only when an answer was needed: an assistant without a server sends nothing.
            if reply != Reply::Ignore {
                self.note(format!("vapi-call {id}: no server URL for {kind}; not sent"));
            }
            return false;
        };
        let url = server["url"].as_str().unwrap_or_default().to_owned();
        let body = Bytes::from(self.envelope(id, kind, extra));
        let headers = self.server_headers(&server, &body, &url);
        let timeout = super::seconds(server.get("timeoutSeconds"), 20.0, 1.0..=300.0);
        let request = OutboundRequest { method: http::Method::POST, url, headers, body };
        let purpose = Purpose { call: id.to_owned(), timeout, reply };
        match super::Backoff::of(&server, &self.vapi.defaults) {
            Some(backoff) => self.deliver_retried(request, purpose, RetryPlan::Vapi(backoff)),
            None => self.deliver(request, purpose),
        };
        true
    }

    /// `{"message": {…}}` with the live call, artifact and parties, serialized.
    fn envelope(&self, id: &str, kind: &str, extra: Value) -> Vec<u8> {
        let call = &self.vapi.calls[id];
        let mut message = Map::new();
        message.insert("timestamp".into(), json!(self.epoch.unix_millis(self.now)));
        message.insert("type".into(), json!(kind));
        if let Value::Object(extra) = extra {
            message.extend(extra);
        }
        if !message.contains_key("artifact") {
            let mut artifact = call.artifact.to_json(&call.variables);
            if let Some(a) = artifact.as_object_mut()
                && call.artifact.transfers.is_empty()
            {
                a.shift_remove("transfers");
            }
            message.insert("artifact".into(), artifact);
        }
        message.insert("call".into(), self.call_json(id));
        if let Some(number) = call.phone_number_id.as_deref().and_then(|n| self.vapi.numbers.get(n)) {
            message.insert("phoneNumber".into(), number.to_json(&self.vapi.org_id, self.epoch));
        }
        if let Some(customer) = &call.customer {
            message.insert("customer".into(), customer.clone());
        }
        // The assistant goes last, written from the call's own map rather than a copy of it.
        message.shift_remove("assistant");
        let assistant = Assistant { fields: &call.assistant, id: call.assistant_id.as_deref() };
        let envelope = Envelope { message: Message { fields: &message, assistant } };
        serde_json::to_vec(&envelope).unwrap_or_default()
    }

    /// `content-type`, then the server's authentication ([`super::auth`]): the legacy `secret` as
    /// `x-vapi-secret`, the credential `credentialId` names, and `headers`, which win.
    fn server_headers(&mut self, server: &Value, body: &[u8], url: &str) -> Vec<(String, String)> {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        let message_id = self.vapi.new_id();
        let auth = match serde_json::from_value::<super::auth::ServerAuth>(server.clone()) {
            Ok(auth) => auth,
            Err(e) => {
                self.note(format!("server message to {url}: unreadable server auth ({e}); sent without"));
                return headers;
            }
        };
        let outgoing = super::auth::Outgoing {
            method: "POST",
            url,
            body,
            now_unix_ms: self.epoch.unix_millis(self.now),
            message_id: &message_id,
            timestamp_unit: self.vapi.defaults.hmac_timestamp_unit,
        };
        match super::auth::auth_headers(&auth, &self.vapi.credentials, &outgoing) {
            Ok(auth) => headers.extend(auth),
            Err(e) => self.note(format!("server message to {url}: {e}; sent without authentication")),
        }
        headers
    }

    /// The `status-update` for the call's current status.
    pub(crate) fn status_update(&mut self, id: &str) {
        let Some(call) = self.vapi.calls.get(id) else { return };
        let mut extra = json!({"status": call.status.as_str()});
        if let Some(reason) = &call.ended_reason {
            extra["endedReason"] = json!(reason);
        }
        if call.status == CallStatus::Forwarding {
            if let Some(d) = &call.destination {
                extra["destination"] = d.clone();
            }
            extra["messages"] = json!(call.artifact.messages);
            extra["messagesOpenAIFormatted"] = json!(call.artifact.openai);
            extra["transcript"] = json!(call.artifact.transcript);
        }
        self.send_message(id, "status-update", extra);
    }

    pub(crate) fn end_of_call_report(&mut self, id: &str) {
        let Some(call) = self.vapi.calls.get(id) else { return };
        let mut extra = json!({
            "endedReason": call.ended_reason,
            "artifact": call.artifact.to_json(&call.variables),
            "analysis": {},
            "cost": 0,
            "costs": [],
        });
        if let Some(at) = call.started_at {
            extra["startedAt"] = json!(self.epoch.iso8601(at));
        }
        if let Some(at) = call.ended_at {
            extra["endedAt"] = json!(self.epoch.iso8601(at));
        }
        if let Some(d) = &call.destination {
            extra["destination"] = d.clone();
        }
        self.send_message(id, "end-of-call-report", extra);
    }

    /// A tool definition of the call's assistant, by function name (`transferCall`/`endCall` tools
    /// without a function answer to their type).
    pub(crate) fn find_tool(&self, id: &str, name: &str) -> Option<Value> {
        let call = self.vapi.calls.get(id)?;
        let tools = call.assistant.get("model").and_then(|m| m.get("tools")).and_then(Value::as_array)?;
        tools
            .iter()
            .find(|t| {
                t.pointer("/function/name").and_then(Value::as_str) == Some(name)
                    || (t.pointer("/function/name").is_none() && t["type"] == name)
            })
            .cloned()
    }

    /// A tool call id as the model provider mints them (`call_` + 24 characters).
    pub(crate) fn tool_call_id(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut bits = self.vapi.rng.next_u128();
        let mut id = String::from("call_");
        for _ in 0..24 {
            id.push(ALPHABET[(bits % ALPHABET.len() as u128) as usize] as char);
            bits /= ALPHABET.len() as u128;
        }
        id
    }

    /// Records tool calls in the artifact, the way the model made them.
    pub(crate) fn record_tool_calls(&mut self, id: &str, calls: &[(String, String, Map<String, Value>)]) {
        let as_string: Vec<Value> = calls
            .iter()
            .map(|(cid, name, args)| {
                json!({"id": cid, "type": "function", "function": {"name": name, "arguments": Value::Object(args.clone()).to_string()}})
            })
            .collect();
        self.add_message(
            id,
            json!({"role": "tool_calls", "toolCalls": as_string, "message": ""}),
            json!({"role": "assistant", "content": "", "tool_calls": as_string}),
        );
    }

    fn record_tool_result(&mut self, id: &str, tool_call_id: &str, name: &str, result: &str) {
        self.add_message(
            id,
            json!({"role": "tool_call_result", "toolCallId": tool_call_id, "name": name, "result": result}),
            json!({"role": "tool", "tool_call_id": tool_call_id, "content": result}),
        );
    }

    /// A script turn's tool calls: custom tools in one `tool-calls` message, `transferCall` and
    /// `endCall` performed by Vapi itself.
    pub(crate) fn call_tools(
        &mut self,
        id: &str,
        tools: Vec<ToolInvocation>,
        after: Option<String>,
        end_call: bool,
    ) {
        let mut custom: Vec<(String, String, Map<String, Value>, Value)> = Vec::new();
        let mut native = Vec::new();
        let mut made = Vec::new();
        for invocation in tools {
            let definition = self
                .find_tool(id, &invocation.name)
                .unwrap_or_else(|| json!({"type": "function", "function": {"name": invocation.name}}));
            let tool_call_id = self.tool_call_id();
            made.push((tool_call_id.clone(), invocation.name.clone(), invocation.arguments.clone()));
            match definition["type"].as_str() {
                Some("transferCall") | Some("endCall") => native.push((invocation, definition)),
                _ => custom.push((tool_call_id, invocation.name, invocation.arguments, definition)),
            }
        }
        self.record_tool_calls(id, &made);
        if let Some(call) = self.vapi.calls.get_mut(id) {
            call.session.tool_calls_made += made.len() as u64;
            call.session.results.clear();
        }
        if !custom.is_empty() {
            self.send_tool_calls(id, custom, after.clone(), end_call);
        }
        for (invocation, definition) in native {
            if definition["type"] == "endCall" {
                self.end_vapi_call(id, "assistant-ended-call");
                return;
            }
            self.start_transfer(id, &definition, &invocation.arguments);
        }
        let waiting = self.vapi.calls.get(id).is_some_and(|c| !c.session.tools.is_empty());
        if !waiting {
            self.tools_answered(id, after, end_call);
        }
    }

    fn send_tool_calls(
        &mut self,
        id: &str,
        custom: Vec<(String, String, Map<String, Value>, Value)>,
        after: Option<String>,
        end_call: bool,
    ) {
        let list: Vec<Value> = custom
            .iter()
            .map(|(cid, name, args, _)| json!({"id": cid, "type": "function", "function": {"name": name, "arguments": args}}))
            .collect();
        let with_list: Vec<Value> = custom
            .iter()
            .zip(&list)
            .map(|((_, _, _, definition), call)| {
                let mut tool = definition.clone();
                if let Some(t) = tool.as_object_mut() {
                    t.insert("toolCall".into(), call.clone());
                }
                tool
            })
            .collect();
        let awaited: Vec<(String, String)> = custom
            .iter()
            .filter(|(_, _, _, d)| d["async"] != true)
            .map(|(cid, name, _, _)| (cid.clone(), name.clone()))
            .collect();
        let extra = json!({"toolCallList": list, "toolWithToolCallList": with_list, "toolCalls": list});
        let tool = custom.first().map(|(_, _, _, d)| d.clone());
        let sent = self.subscribes(id, "tool-calls")
            && self.post_message(id, "tool-calls", extra, tool.as_ref(), Reply::ToolCalls(awaited.clone()));
        if let Some(call) = self.vapi.calls.get_mut(id) {
            call.session.after_tools = Some((after, end_call));
            if sent && !awaited.is_empty() {
                call.session.tools.extend(awaited.iter().cloned());
                let made = call.session.tool_calls_made;
                let after = SimDuration::from_secs_f64(self.vapi.defaults.hang_after_s);
                self.schedule(after, super::Event::Hang(id.to_owned(), made));
            }
        }
        if !sent {
            let failure = self.vapi.defaults.tool_failure_result.clone();
            for (cid, name) in awaited {
                self.record_tool_result(id, &cid, &name, &failure);
            }
        }
    }

    /// Every tool of the turn has answered: say what follows, or hang up.
    fn tools_answered(&mut self, id: &str, after: Option<String>, end_call: bool) {
        let Some(call) = self.vapi.calls.get(id) else { return };
        if call.is_ended() || call.session.transfer.is_some() {
            return;
        }
        let mut variables = call.variables.clone();
        variables.insert("result".into(), json!(call.session.results.first().cloned().unwrap_or_default()));
        let then = if end_call {
            super::session::After::EndCall("assistant-ended-call".into())
        } else {
            super::session::After::Nothing
        };
        match after {
            Some(text) => self.say(id, render_template(&text, &variables), then),
            None if end_call => self.end_vapi_call(id, "assistant-ended-call"),
            None => self.arm_silence(id),
        }
    }

    /// A server message's answer (or its failure) came back.
    pub(crate) fn on_vapi_delivery(
        &mut self,
        purpose: Purpose,
        outcome: Result<TargetResponse, DeliveryError>,
    ) {
        let Purpose { call: id, reply, .. } = purpose;
        let body = match &outcome {
            Ok(r) if (200..300).contains(&r.status) => Some(&r.body[..]),
            Ok(r) => {
                self.note(format!("vapi-call {id}: server answered HTTP {}", r.status));
                None
            }
            Err(DeliveryError::Timeout) => {
                self.note(format!("vapi-call {id}: server did not answer in time"));
                None
            }
            Err(e @ DeliveryError::TooLarge { .. }) => {
                self.note(format!("vapi-call {id}: server answered a {e}"));
                None
            }
            Err(e) => {
                self.note(format!("vapi-call {id}: server unreachable: {e}"));
                None
            }
        };
        match reply {
            Reply::Ignore => {}
            Reply::ToolCalls(awaited) => {
                let answers = body.map(|b| read_tool_results(b, &awaited));
                self.tool_results(&id, &awaited, answers)
            }
            Reply::TransferDestination => {
                let body = body.and_then(|b| serde_json::from_slice::<Value>(b).ok());
                self.transfer_destination_answer(&id, body)
            }
        }
    }

    /// Records each awaited tool call's result: the server's `result` (or `error`), or Vapi's failure
    /// text when the answer is missing, late or malformed.
    fn tool_results(
        &mut self,
        id: &str,
        awaited: &[(String, String)],
        answers: Option<Result<Vec<Result<String, ToolAnswerError>>, ToolAnswerError>>,
    ) {
        let failure = self.vapi.defaults.tool_failure_result.clone();
        let answers = match answers {
            Some(Ok(answers)) => answers,
            Some(Err(e)) => {
                self.note(format!("vapi-call {id}: tool-calls answer unusable: {e}"));
                Vec::new()
            }
            None => Vec::new(),
        };
        for (i, (tool_call_id, name)) in awaited.iter().enumerate() {
            let text = match answers.get(i) {
                Some(Ok(text)) => text.clone(),
                Some(Err(e)) => {
                    self.note(format!("vapi-call {id}: tool-calls answer: {e}"));
                    failure.clone()
                }
                None => failure.clone(),
            };
            self.record_tool_result(id, tool_call_id, name, &text);
            if let Some(call) = self.vapi.calls.get_mut(id) {
                call.session.tools.retain(|(c, _)| c != tool_call_id);
                call.session.results.push(text);
            }
        }
        let done = self.vapi.calls.get(id).is_some_and(|c| c.session.tools.is_empty());
        if done {
            let (after, end_call) = self
                .vapi
                .calls
                .get_mut(id)
                .and_then(|c| c.session.after_tools.take())
                .unwrap_or((None, false));
            self.tools_answered(id, after, end_call);
        }
    }
}

/// `{"message": …}`, serialized without building it as one [`Value`].
struct Envelope<'a> {
    message: Message<'a>,
}

impl serde::Serialize for Envelope<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("message", &self.message)?;
        map.end()
    }
}

/// A message's fields, then `assistant`.
struct Message<'a> {
    fields: &'a Map<String, Value>,
    assistant: Assistant<'a>,
}

impl serde::Serialize for Message<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.fields.len() + 1))?;
        for (key, value) in self.fields {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry("assistant", &self.assistant)?;
        map.end()
    }
}

/// The call's assistant with its `id`: in the place of an `id` it already has, else last.
struct Assistant<'a> {
    fields: &'a Map<String, Value>,
    id: Option<&'a str>,
}

impl serde::Serialize for Assistant<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let has_id = self.fields.contains_key("id");
        let extra = usize::from(self.id.is_some() && !has_id);
        let mut map = serializer.serialize_map(Some(self.fields.len() + extra))?;
        for (key, value) in self.fields {
            match self.id {
                Some(id) if key == "id" => map.serialize_entry(key, id)?,
                _ => map.serialize_entry(key, value)?,
            }
        }
        if let Some(id) = self.id.filter(|_| !has_id) {
            map.serialize_entry("id", id)?;
        }
        map.end()
    }
}

/// Why a `tool-calls` answer (or one of its entries) gives no result: the JSON path at fault and what was
/// expected there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{path}` {problem}")]
pub struct ToolAnswerError {
    /// Where in the answer, as a JSON path: `results`, `results[2].result`; `$` for the whole body.
    pub path: String,
    pub problem: String,
}

/// Reads a server's answer to a `tool-calls` message: for each awaited `(toolCallId, name)`, in order,
/// the text the model is given (the entry's `result`, a non-string result as JSON, or its `error`), or
/// why there is none, in which case Vapi gives the model its failure text. Never panics; the answer's
/// size was bounded by the transport.
// Vapi: `ToolCallResult` is `{toolCallId, name, result?, error?}` with `result` and `error` strings
// (reference vapi.md §5, the spec; `name` is required there but the docs' examples omit it, so it is not
// needed here). A `result` of another JSON type is passed on as its JSON text: UNCONFIRMED leniency the
// fake has always had, rather than refusing it.
pub fn read_tool_results(
    body: &[u8],
    awaited: &[(String, String)],
) -> Result<Vec<Result<String, ToolAnswerError>>, ToolAnswerError> {
    let fail = |path: &str, problem: String| ToolAnswerError { path: path.to_owned(), problem };
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| fail("$", format!("is not JSON ({e}); expected {{\"results\": [...]}}")))?;
    let results = match body.get("results") {
        Some(Value::Array(results)) => results,
        Some(other) => {
            return Err(fail(
                "results",
                format!("is {}; expected an array of {{toolCallId, result}}", json_type(other)),
            ));
        }
        None if body.is_object() => {
            return Err(fail("results", "is missing; expected an array of {toolCallId, result}".into()));
        }
        None => return Err(fail("$", format!("is {}; expected an object with `results`", json_type(&body)))),
    };
    let answer = |tool_call_id: &str| {
        let Some(i) = results.iter().position(|e| e["toolCallId"] == tool_call_id) else {
            return Err(fail("results", format!("has no entry whose `toolCallId` is {tool_call_id:?}")));
        };
        let entry = &results[i];
        match (entry.get("result"), entry.get("error")) {
            (Some(Value::String(s)), _) => Ok(s.clone()),
            (Some(v), _) if !v.is_null() => Ok(v.to_string()),
            (_, Some(Value::String(error))) => Ok(error.clone()),
            (_, Some(error)) if !error.is_null() => Err(fail(
                &format!("results[{i}].error"),
                format!("is {}; expected a string", json_type(error)),
            )),
            _ => Err(fail(&format!("results[{i}]"), "has neither `result` nor `error`".into())),
        }
    };
    Ok(awaited.iter().map(|(tool_call_id, _)| answer(tool_call_id)).collect())
}

/// A JSON value's type, as an error names it.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
