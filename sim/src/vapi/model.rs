//! The fake Vapi's resources — assistants, phone numbers, calls — and their JSON, shaped as the spec's
//! `Assistant`, `TwilioPhoneNumber` and `Call` schemas.
//!
//! Assistants and phone numbers keep the request body they were created from as JSON and read the few
//! fields the simulation needs from it, so everything a client sent comes back as Vapi echoes it.

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::ids::{CallSid, StreamSid};
use crate::rng::SimRng;
use crate::time::{Epoch, SimInstant};
use crate::vapi::errors::VapiError;

/// `CreateAssistantDTO`'s properties, in the spec's order (a test checks them against the spec).
pub const ASSISTANT_PROPERTIES: &[&str] = &[
    "transcriber",
    "model",
    "voice",
    "firstMessage",
    "firstMessageInterruptionsEnabled",
    "firstMessageMode",
    "voicemailDetection",
    "clientMessages",
    "serverMessages",
    "maxDurationSeconds",
    "backgroundSound",
    "modelOutputInMessagesEnabled",
    "transportConfigurations",
    "observabilityPlan",
    "credentials",
    "hooks",
    "name",
    "voicemailMessage",
    "endCallMessage",
    "endCallPhrases",
    "compliancePlan",
    "metadata",
    "backgroundSpeechDenoisingPlan",
    "analysisPlan",
    "artifactPlan",
    "startSpeakingPlan",
    "stopSpeakingPlan",
    "monitorPlan",
    "credentialIds",
    "server",
    "keypadInputPlan",
];

/// `CreateCallDTO`'s properties, plus the hidden ones the real API accepts (reference §2):
/// `phoneCallProviderBypassEnabled` and the legacy `type`.
pub const CALL_PROPERTIES: &[&str] = &[
    "assistantVersion",
    "transport",
    "customers",
    "name",
    "schedulePlan",
    "assistantId",
    "assistant",
    "assistantOverrides",
    "squadId",
    "squad",
    "squadOverrides",
    "workflowId",
    "workflow",
    "workflowOverrides",
    "phoneNumberId",
    "phoneNumber",
    "customerId",
    "customer",
    "phoneCallProviderBypassEnabled",
    "type",
];

/// `CreateTwilioPhoneNumberDTO`'s properties (`UpdateTwilioPhoneNumberDTO` has the same set).
pub const TWILIO_NUMBER_PROPERTIES: &[&str] = &[
    "fallbackDestination",
    "hooks",
    "provider",
    "smsEnabled",
    "number",
    "twilioAccountSid",
    "twilioAuthToken",
    "twilioApiKey",
    "twilioApiSecret",
    "name",
    "assistantId",
    "workflowId",
    "squadId",
    "server",
];

/// The eight `TransferPlan.mode` values of the spec.
pub const TRANSFER_MODES: &[&str] = &[
    "blind-transfer",
    "blind-transfer-add-summary-to-sip-header",
    "warm-transfer-say-message",
    "warm-transfer-say-summary",
    "warm-transfer-twiml",
    "warm-transfer-wait-for-operator-to-speak-first-and-then-say-message",
    "warm-transfer-wait-for-operator-to-speak-first-and-then-say-summary",
    "warm-transfer-experimental",
];

/// An HTTP base URL as a WebSocket one (`https` → `wss`, `http` → `ws`).
pub fn ws_base(http: &str) -> String {
    http.replacen("http", "ws", 1)
}

/// A UUID (version 4 layout) from the run's randomness: Vapi's ids are UUIDs.
pub fn new_id(rng: &mut SimRng) -> String {
    uuid::Builder::from_random_bytes(rng.next_u128().to_le_bytes()).into_uuid().to_string()
}

/// Rejects keys a DTO does not declare, as class-validator's `forbidNonWhitelisted` does.
pub fn check_properties(body: &Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<(), VapiError> {
    let unknown: Vec<String> = body
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("property {prefix}{k} should not exist"))
        .collect();
    if unknown.is_empty() { Ok(()) } else { Err(VapiError::invalid(unknown)) }
}

/// A JSON object body, or the 400 a NestJS app gives for anything else.
pub fn object(value: Value) -> Result<Map<String, Value>, VapiError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(VapiError::bad_request("Request body must be a JSON object")),
    }
}

/// Checks every transfer plan an assistant's tools declare: the docs still show mode names the API
/// rejects (`warm-transfer-with-summary` …), and a config using them must fail here as it does there.
pub fn check_transfer_modes(assistant: &Map<String, Value>, prefix: &str) -> Result<(), VapiError> {
    let mut errors = Vec::new();
    let tools = assistant.get("model").and_then(|m| m.get("tools")).and_then(Value::as_array);
    for (t, tool) in tools.into_iter().flatten().enumerate() {
        let destinations = tool.get("destinations").and_then(Value::as_array);
        for (d, destination) in destinations.into_iter().flatten().enumerate() {
            if let Some(mode) = destination.pointer("/transferPlan/mode")
                && !mode.as_str().is_some_and(|m| TRANSFER_MODES.contains(&m))
            {
                errors.push(format!(
                    "{prefix}model.tools.{t}.destinations.{d}.transferPlan.mode must be one of the following values: {}",
                    TRANSFER_MODES.join(", ")
                ));
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(VapiError::invalid(errors)) }
}

/// An assistant: stored (`POST /assistant`, the world file) or transient (inline in `POST /call`).
#[derive(Clone, Debug, PartialEq)]
pub struct Assistant {
    pub id: Option<String>,
    pub created_at: SimInstant,
    pub updated_at: SimInstant,
    pub body: Map<String, Value>,
}

impl Assistant {
    pub fn to_json(&self, org: &str, epoch: Epoch) -> Value {
        let mut out = Map::new();
        if let Some(id) = &self.id {
            out.insert("id".into(), json!(id));
            out.insert("orgId".into(), json!(org));
        }
        out.extend(self.body.clone());
        if self.id.is_some() {
            out.insert("createdAt".into(), json!(epoch.iso8601(self.created_at)));
            out.insert("updatedAt".into(), json!(epoch.iso8601(self.updated_at)));
        }
        Value::Object(out)
    }

    pub fn name(&self) -> Option<&str> {
        self.body.get("name").and_then(Value::as_str)
    }
}

/// A Twilio number imported into Vapi.
#[derive(Clone, Debug, PartialEq)]
pub struct PhoneNumber {
    pub id: String,
    pub created_at: SimInstant,
    pub updated_at: SimInstant,
    pub body: Map<String, Value>,
}

impl PhoneNumber {
    pub fn number(&self) -> &str {
        self.body.get("number").and_then(Value::as_str).unwrap_or_default()
    }

    pub fn account_sid(&self) -> &str {
        self.body.get("twilioAccountSid").and_then(Value::as_str).unwrap_or_default()
    }

    pub fn auth_token(&self) -> &str {
        self.body.get("twilioAuthToken").and_then(Value::as_str).unwrap_or_default()
    }

    pub fn to_json(&self, org: &str, epoch: Epoch) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("orgId".into(), json!(org));
        out.extend(self.body.clone());
        // Vapi never echoes the auth token back.
        out.shift_remove("twilioAuthToken");
        out.shift_remove("twilioApiSecret");
        out.insert("status".into(), json!("active"));
        out.insert("createdAt".into(), json!(epoch.iso8601(self.created_at)));
        out.insert("updatedAt".into(), json!(epoch.iso8601(self.updated_at)));
        Value::Object(out)
    }
}

/// `Call.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallStatus {
    Queued,
    Ringing,
    InProgress,
    Forwarding,
    Ended,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Forwarding => "forwarding",
            CallStatus::Ended => "ended",
        }
    }
}

/// What the call has produced so far: `Artifact` in the spec.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Artifact {
    /// `messages[]`: roles `system`, `bot`, `user`, `tool_calls`, `tool_call_result`.
    pub messages: Vec<Value>,
    /// `messagesOpenAIFormatted[]`: roles `system`, `assistant`, `user`, `tool`.
    pub openai: Vec<Value>,
    /// `AI: …` / `User: …` lines.
    pub transcript: String,
    /// `TransferArtifact` items.
    pub transfers: Vec<Value>,
}

impl Artifact {
    pub fn to_json(&self, variables: &Map<String, Value>) -> Value {
        let mut out = json!({
            "messages": self.messages,
            "messagesOpenAIFormatted": self.openai,
            "transcript": self.transcript,
            "transfers": self.transfers,
        });
        if !variables.is_empty() {
            out["variableValues"] = Value::Object(variables.clone());
        }
        out
    }
}

/// A Vapi call.
#[derive(Clone, Debug, PartialEq)]
pub struct VapiCall {
    pub id: String,
    pub kind: &'static str,
    pub status: CallStatus,
    pub ended_reason: Option<String>,
    pub created_at: SimInstant,
    pub updated_at: SimInstant,
    pub started_at: Option<SimInstant>,
    pub ended_at: Option<SimInstant>,
    pub name: Option<String>,
    /// The assistant the call runs: the stored one (with `assistantId`) or the inline one.
    pub assistant_id: Option<String>,
    /// The assistant with `assistantOverrides` applied: what the session follows.
    pub assistant: Map<String, Value>,
    /// The inline assistant as given, echoed as `assistant`.
    pub inline_assistant: Option<Value>,
    pub overrides: Option<Value>,
    pub phone_number_id: Option<String>,
    pub customer: Option<Value>,
    pub bypass: bool,
    pub provider_details: Option<Value>,
    /// The caller's Twilio leg, once known.
    pub twilio_call: Option<CallSid>,
    pub account_sid: Option<String>,
    /// The media stream the session runs on.
    pub stream: Option<StreamSid>,
    pub destination: Option<Value>,
    pub artifact: Artifact,
    pub variables: Map<String, Value>,
    /// The assistant session running on the stream.
    pub session: crate::vapi::session::Session,
}

impl VapiCall {
    /// A call made with an imported `number` for `customer`, with nothing else known yet. The variables
    /// Vapi fills in by itself (`{{customer.number}}`, `{{phoneNumber.number}}`) are set.
    pub fn new(
        id: String,
        kind: &'static str,
        status: CallStatus,
        now: SimInstant,
        number: &PhoneNumber,
        customer: Value,
    ) -> VapiCall {
        let mut variables = Map::new();
        variables.insert("customer".into(), customer.clone());
        variables.insert("phoneNumber".into(), json!({"number": number.number()}));
        VapiCall {
            id,
            kind,
            status,
            ended_reason: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            ended_at: None,
            name: None,
            assistant_id: None,
            assistant: Map::new(),
            inline_assistant: None,
            overrides: None,
            phone_number_id: Some(number.id.clone()),
            customer: Some(customer),
            bypass: false,
            provider_details: None,
            twilio_call: None,
            account_sid: Some(number.account_sid().to_owned()),
            stream: None,
            destination: None,
            artifact: Artifact::default(),
            variables,
            session: Default::default(),
        }
    }

    pub fn is_ended(&self) -> bool {
        self.status == CallStatus::Ended
    }

    pub fn to_json(&self, org: &str, epoch: Epoch, public_url: &str) -> Value {
        let mut out = Map::new();
        let mut put = |k: &str, v: Value| {
            out.insert(k.to_owned(), v);
        };
        put("id", json!(self.id));
        put("orgId", json!(org));
        put("type", json!(self.kind));
        put("createdAt", json!(epoch.iso8601(self.created_at)));
        put("updatedAt", json!(epoch.iso8601(self.updated_at)));
        put("status", json!(self.status.as_str()));
        if let Some(reason) = &self.ended_reason {
            put("endedReason", json!(reason));
        }
        if let Some(at) = self.started_at {
            put("startedAt", json!(epoch.iso8601(at)));
        }
        if let Some(at) = self.ended_at {
            put("endedAt", json!(epoch.iso8601(at)));
        }
        if let Some(name) = &self.name {
            put("name", json!(name));
        }
        if let Some(id) = &self.assistant_id {
            put("assistantId", json!(id));
        }
        if let Some(assistant) = &self.inline_assistant {
            put("assistant", assistant.clone());
        }
        if let Some(overrides) = &self.overrides {
            put("assistantOverrides", overrides.clone());
        }
        if let Some(id) = &self.phone_number_id {
            put("phoneNumberId", json!(id));
        }
        if let Some(customer) = &self.customer {
            put("customer", customer.clone());
        }
        put("phoneCallProvider", json!("twilio"));
        put("phoneCallTransport", json!("pstn"));
        if let Some(sid) = self.twilio_call {
            put("phoneCallProviderId", json!(sid.to_string()));
        }
        if self.bypass {
            put("phoneCallProviderBypassEnabled", json!(true));
        }
        if let Some(details) = &self.provider_details {
            put("phoneCallProviderDetails", details.clone());
        }
        let mut transport = json!({"conversationType": "voice", "provider": "twilio"});
        if let Some(account) = &self.account_sid {
            transport["accountSid"] = json!(account);
        }
        if let Some(sid) = self.twilio_call {
            transport["callSid"] = json!(sid.to_string());
        }
        put("transport", transport);
        put("monitor", self.monitor(public_url));
        if let Some(destination) = &self.destination {
            put("destination", destination.clone());
        }
        put("cost", json!(0));
        if self.is_ended() {
            put("artifact", self.artifact.to_json(&self.variables));
            put("messages", json!(self.artifact.messages));
        }
        Value::Object(out)
    }

    /// `monitor.listenUrl` and `monitor.controlUrl`, served by the fake at `/{id}/listen|control`.
    pub fn monitor(&self, public_url: &str) -> Value {
        let ws = ws_base(public_url);
        json!({
            "listenUrl": format!("{ws}/{}/listen", self.id),
            "controlUrl": format!("{public_url}/{}/control", self.id),
        })
    }

    /// The customer's number, if the call has one.
    pub fn customer_number(&self) -> Option<&str> {
        self.customer.as_ref().and_then(|c| c.get("number")).and_then(Value::as_str)
    }
}

/// Merges `assistantOverrides` into an assistant: objects merge key by key (so `variableValues` or
/// `model.messages` replace only what they name), anything else replaces.
pub fn apply_overrides(assistant: &mut Map<String, Value>, overrides: &Map<String, Value>) {
    for (key, value) in overrides {
        if key == "variableValues" {
            continue;
        }
        match (assistant.get_mut(key), value) {
            (Some(Value::Object(base)), Value::Object(over)) if key != "server" => {
                for (k, v) in over {
                    base.insert(k.clone(), v.clone());
                }
            }
            _ => {
                assistant.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Fills `{{ name }}` placeholders from `variables` (LiquidJS-style, the subset Vapi documents for
/// `variableValues`); unknown names render empty, as Liquid does.
pub fn render_template(text: &str, variables: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = rest[start + 2..start + end].trim();
        let value = name.split('.').try_fold(None::<&Value>, |at, part| {
            let next = match at {
                None => variables.get(part),
                Some(v) => v.get(part),
            };
            next.map(Some)
        });
        match value.flatten() {
            Some(Value::String(s)) => out.push_str(s),
            Some(v) => out.push_str(&v.to_string()),
            None => {}
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Stores keyed by id, in creation order.
pub type Store<T> = IndexMap<String, T>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_properties_are_named() {
        let body = json!({"assistantId": "a", "metadata": {}}).as_object().cloned().unwrap();
        let err = check_properties(&body, CALL_PROPERTIES, "").unwrap_err();
        assert_eq!(err.message, json!(["property metadata should not exist"]));
    }

    #[test]
    fn stale_transfer_mode_names_are_rejected() {
        let assistant = json!({"model": {"tools": [{"type": "transferCall", "destinations": [
            {"type": "number", "number": "+15550000200", "transferPlan": {"mode": "warm-transfer-with-summary"}}
        ]}]}});
        let err = check_transfer_modes(assistant.as_object().unwrap(), "").unwrap_err();
        let text = err.message[0].as_str().unwrap();
        assert!(text.starts_with("model.tools.0.destinations.0.transferPlan.mode must be one of"), "{text}");
    }

    #[test]
    fn overrides_merge_objects_and_replace_the_rest() {
        let mut assistant = json!({"firstMessage": "Hi", "model": {"provider": "openai", "model": "gpt-4o"}})
            .as_object()
            .cloned()
            .unwrap();
        let overrides = json!({"firstMessage": "Welcome back", "model": {"messages": [{"role": "system", "content": "x"}]}});
        apply_overrides(&mut assistant, overrides.as_object().unwrap());
        assert_eq!(assistant["firstMessage"], "Welcome back");
        assert_eq!(assistant["model"]["provider"], "openai");
        assert_eq!(assistant["model"]["messages"][0]["content"], "x");
    }

    #[test]
    fn templates_render_known_variables_and_drop_unknown_ones() {
        let vars = json!({"name": "Ada", "transfer": {"outcome": "busy"}}).as_object().cloned().unwrap();
        assert_eq!(render_template("Hi {{ name }}, {{transfer.outcome}}{{ nope }}.", &vars), "Hi Ada, busy.");
        assert_eq!(render_template("unclosed {{ x", &vars), "unclosed {{ x");
    }
}
