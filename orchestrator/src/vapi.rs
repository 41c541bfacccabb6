//! Vapi, as the orchestrator uses it: creating calls over its REST API (bypass calls whose TwiML the
//! orchestrator hands to Twilio), authenticating the server messages Vapi posts to the orchestrator and
//! reading them ([`ServerMessage`]).
//!
//! Sources: reference vapi.md §1 (bearer API key, NestJS error bodies), §2 (`POST /call`,
//! `phoneCallProviderBypassEnabled`, `phoneCallProviderDetails.twiml`) and §7 (server-message
//! authentication: legacy `x-vapi-secret`, bearer credentials, HMAC credentials with their SPEC defaults).

use std::sync::Arc;

use hmac::{Hmac, Mac};
use http::{HeaderMap, Method};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::http::{ApiError, ApiRequest, ApiResponse, HttpClient, Secret, bearer_auth, body_excerpt};
use crate::machine::Line;

/// Where Vapi's REST API lives.
pub const DEFAULT_API_BASE: &str = "https://api.vapi.ai";

/// The header that carries Vapi's legacy `server.secret` (reference vapi.md §7).
pub const LEGACY_SECRET_HEADER: &str = "x-vapi-secret";

/// An HMAC credential's signature header (SPEC `HMACAuthenticationPlan.signatureHeader` default).
pub const SIGNATURE_HEADER: &str = "x-signature";

/// An HMAC credential's timestamp header (SPEC `HMACAuthenticationPlan.timestampHeader` default).
pub const TIMESTAMP_HEADER: &str = "x-timestamp";

/// A sensible [`VapiAuth::hmac_tolerance_s`]: five minutes, as Svix and Stripe use.
pub const DEFAULT_HMAC_TOLERANCE_S: u64 = 300;

/// A client for Vapi's REST API with one private API key.
#[derive(Clone, Debug)]
pub struct VapiClient {
    http: Arc<dyn HttpClient>,
    /// Without a trailing slash.
    api_base: String,
    api_key: Secret,
}

/// What the orchestrator reads from a created call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedCall {
    /// The Vapi call id (a UUID).
    pub id: String,
    /// `phoneCallProviderDetails.twiml`: the TwiML that bridges a Twilio call to the assistant, present
    /// when the call was created with `phoneCallProviderBypassEnabled: true`.
    pub twiml: Option<String>,
}

impl VapiClient {
    /// A client for `api_base` ([`DEFAULT_API_BASE`] in production; a trailing slash is tolerated) that
    /// authenticates with the private `api_key`.
    pub fn new(http: Arc<dyn HttpClient>, api_base: &str, api_key: Secret) -> Self {
        VapiClient { http, api_base: api_base.trim_end_matches('/').to_owned(), api_key }
    }

    /// Creates a call: `POST /call` with `body` as JSON, such as `{"phoneNumberId", "assistantId",
    /// "customer": {"number"}, "phoneCallProviderBypassEnabled": true, "assistantOverrides"}`.
    pub async fn create_call(&self, body: &serde_json::Value) -> Result<CreatedCall, ApiError> {
        let request = ApiRequest::json(Method::POST, format!("{}/call", self.api_base), body)
            .with_header("Authorization", bearer_auth(self.api_key.expose()))
            .with_header("Accept", "application/json");
        let response = self.http.send(request).await?;
        if !response.is_success() {
            return Err(rejection(&response));
        }
        let call: CallJson = serde_json::from_slice(&response.body)
            .map_err(|e| ApiError::Malformed(format!("a created Vapi call needs a string `id`: {e}")))?;
        Ok(CreatedCall { id: call.id, twiml: call.phone_call_provider_details.and_then(|d| d.twiml) })
    }

    /// `GET /assistant/{id}`: the assistant as Vapi stores it.
    pub async fn get_assistant(&self, id: &str) -> Result<serde_json::Value, ApiError> {
        let url = format!(
            "{}/assistant/{}",
            self.api_base,
            form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        );
        let request = ApiRequest::get(url)
            .with_header("Authorization", bearer_auth(self.api_key.expose()))
            .with_header("Accept", "application/json");
        let response = self.http.send(request).await?;
        if !response.is_success() {
            return Err(rejection(&response));
        }
        serde_json::from_slice(&response.body)
            .map_err(|e| ApiError::Malformed(format!("an assistant is a JSON object: {e}")))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallJson {
    id: String,
    #[serde(default)]
    phone_call_provider_details: Option<ProviderDetails>,
}

#[derive(Deserialize)]
struct ProviderDetails {
    #[serde(default)]
    twiml: Option<String>,
}

/// Vapi's NestJS error body: `{"message": string | [string], "error": "<reason phrase>", "statusCode": N}`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<ErrorMessage>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorMessage {
    One(String),
    /// Validation failures, one per property.
    Many(Vec<String>),
}

fn rejection(response: &ApiResponse) -> ApiError {
    let parsed = serde_json::from_slice::<ErrorBody>(&response.body).ok();
    let message = parsed
        .and_then(|body| match body.message {
            Some(ErrorMessage::One(message)) => Some(message),
            Some(ErrorMessage::Many(messages)) => Some(messages.join("; ")),
            None => body.error,
        })
        .filter(|message| !message.is_empty())
        .unwrap_or_else(|| body_excerpt(response.status, &response.body));
    ApiError::Rejected { status: response.status, code: None, message }
}

/// A server message (`{"message": {"type", "call": {"id"}, …}}`), read for what the orchestrator acts on.
/// Only the envelope and `message.type` are required; everything else is read leniently, as Vapi adds
/// fields over time and sends some only with some types.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerMessage {
    /// `message.type`: `tool-calls`, `status-update`, `end-of-call-report`, …
    pub kind: String,
    /// `message.call.id`, the Vapi call (the orchestrator's assistant session); empty when absent.
    pub session: String,
    /// `message.timestamp` as written (JSON), to tell repeated deliveries of one message apart.
    pub timestamp: String,
    /// The conversation so far (`message.artifact.messages`, or a conversation-update's `messages`):
    /// the caller's and the assistant's lines. `None` when the message carries none.
    pub transcript: Option<Vec<Line>>,
    /// `message.toolCallList` (or the tool calls inside `toolWithToolCallList`).
    pub tool_calls: Vec<ToolCall>,
    /// `message.destination`'s number or SIP URI.
    pub destination: Option<String>,
    /// `message.request` of a `phone-call-control` message (`forward`, `hang-up`).
    pub request: Option<String>,
    /// `message.status` of a `status-update`.
    pub status: Option<String>,
}

/// One tool call of a `tool-calls` message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolCall {
    /// `id`; empty when absent (the result then names no call, and Vapi ignores it).
    pub id: String,
    /// `function.name`.
    pub name: String,
    /// `function.arguments`: an object, or a JSON string of one (OpenAI's wire form); empty when neither.
    pub arguments: Map<String, Value>,
}

/// A server message the orchestrator cannot read: where in the body, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("`{path}` is {found}; expected {expected}")]
    Field { path: &'static str, found: &'static str, expected: &'static str },
}

impl ServerMessage {
    /// Reads a server message's body. Never panics; nesting is bounded by serde_json's recursion limit
    /// and the body's size by the router.
    pub fn parse(body: &[u8]) -> Result<ServerMessage, MessageError> {
        let envelope = read_envelope(body).map_err(|e| MessageError::NotJson(e.to_string()))?;
        ServerMessage::of(&envelope)
    }

    /// Reads a server message from its envelope as JSON.
    fn of(envelope: &Value) -> Result<ServerMessage, MessageError> {
        let field = |path, value: Option<&Value>, expected| MessageError::Field {
            path,
            found: value.map_or("missing", json_type),
            expected,
        };
        let message = match envelope.get("message") {
            Some(message @ Value::Object(_)) => message,
            other => return Err(field("message", other, "the server message object")),
        };
        let kind = match message.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            other => return Err(field("message.type", other, "a string such as \"tool-calls\"")),
        };
        let text = |pointer: &str| message.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
        Ok(ServerMessage {
            kind,
            session: text("/call/id").unwrap_or_default(),
            timestamp: message["timestamp"].to_string(),
            transcript: transcript(message),
            tool_calls: tool_call_list(message)
                .into_iter()
                .map(|call| ToolCall {
                    id: call["id"].as_str().unwrap_or_default().to_owned(),
                    name: call
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    arguments: arguments(call.pointer("/function/arguments")),
                })
                .collect(),
            destination: message.get("destination").and_then(|d| {
                d.get("number").or_else(|| d.get("sipUri")).and_then(Value::as_str).map(str::to_owned)
            }),
            request: text("/request"),
            status: text("/status"),
        })
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `toolCallList`, or the tool calls inside `toolWithToolCallList` of messages that only carry that.
fn tool_call_list(message: &Value) -> Vec<&Value> {
    if let Some(list) = message["toolCallList"].as_array() {
        return list.iter().collect();
    }
    message["toolWithToolCallList"]
        .as_array()
        .map_or_else(Vec::new, |l| l.iter().map(|t| &t["toolCall"]).collect())
}

/// A tool call's arguments: an object, or a JSON string of one (OpenAI's wire form).
fn arguments(value: Option<&Value>) -> Map<String, Value> {
    match value {
        Some(Value::Object(map)) => map.clone(),
        Some(Value::String(text)) => serde_json::from_str(text).unwrap_or_default(),
        _ => Map::new(),
    }
}

/// The conversation in a message's artifact (or a conversation-update's own list): the caller's and the
/// assistant's lines.
fn transcript(message: &Value) -> Option<Vec<Line>> {
    let list = message.pointer("/artifact/messages").or_else(|| message.get("messages"))?.as_array()?;
    let lines = list
        .iter()
        .filter_map(|m| {
            let role = match m["role"].as_str()? {
                "user" => "user",
                "bot" | "assistant" => "assistant",
                _ => return None,
            };
            let text = m["message"].as_str().or_else(|| m["content"].as_str())?;
            Some(Line { role: role.to_owned(), text: text.to_owned() })
        })
        .collect();
    Some(lines)
}

/// How the orchestrator checks that a server message (a webhook POST from Vapi) is authentic. Any one
/// configured method that succeeds is enough:
///
/// - `secret` in `x-vapi-secret` (Vapi's legacy `server.secret`), or as `Authorization: Bearer <secret>`
///   (a bearer webhook credential with the SPEC defaults: header `Authorization`, prefix on);
/// - with `hmac_secret`, an HMAC webhook credential with the SPEC defaults: `x-signature` is the lower-case
///   hex HMAC-SHA256 of `{x-timestamp}.{body}`.
///
/// An empty secret counts as unset, so that an empty header can never authenticate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VapiAuth {
    pub secret: Option<Secret>,
    pub hmac_secret: Option<Secret>,
    /// How far `x-timestamp` may be from now, either way; 0 checks no freshness. See
    /// [`DEFAULT_HMAC_TOLERANCE_S`].
    pub hmac_tolerance_s: u64,
}

/// Why a server message does not authenticate. No variant carries a secret or what the sender sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no server-message authentication is configured; set the Vapi server secret or HMAC secret")]
    NotConfigured,
    #[error("the request carries no credential; expected {expected}")]
    Missing { expected: &'static str },
    #[error("the `{header}` header does not carry the configured secret; check the server secret in Vapi")]
    WrongSecret { header: &'static str },
    #[error("the `x-signature` header comes without an `x-timestamp` header; the HMAC signs the timestamp")]
    MissingTimestamp,
    #[error("the `x-timestamp` header is not a count of seconds or milliseconds since the Unix epoch")]
    MalformedTimestamp,
    #[error(
        "the `x-signature` header does not match the body; check the HMAC secret and that the credential signs `{{timestamp}}.{{body}}` with sha256 in hex"
    )]
    BadSignature,
    #[error(
        "the `x-timestamp` ({sent_unix_s} s) is more than {tolerance_s} s from now ({now_unix_s} s); the message is stale or replayed, or a clock is off"
    )]
    StaleTimestamp { sent_unix_s: u64, now_unix_s: u64, tolerance_s: u64 },
}

impl VapiAuth {
    /// Checks the headers and exact body bytes of a server message received at `now_unix_s`. Every
    /// comparison with a secret takes constant time.
    ///
    /// When several credentials are sent and none is valid, the error is about the HMAC signature first,
    /// then `x-vapi-secret`, then `Authorization` (the one most likely added by something else).
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now_unix_s: u64) -> Result<(), AuthError> {
        let secret = self.secret.as_ref().filter(|s| !s.expose().is_empty());
        let hmac_secret = self.hmac_secret.as_ref().filter(|s| !s.expose().is_empty());
        let expected = match (secret, hmac_secret) {
            (None, None) => return Err(AuthError::NotConfigured),
            (Some(_), None) => "`x-vapi-secret` or `Authorization: Bearer`",
            (None, Some(_)) => "`x-signature` and `x-timestamp`",
            (Some(_), Some(_)) => {
                "`x-vapi-secret`, `Authorization: Bearer`, or `x-signature` and `x-timestamp`"
            }
        };
        let mut failures = Vec::new();
        if let (Some(key), Some(signature)) = (hmac_secret, headers.get(SIGNATURE_HEADER)) {
            match self.verify_hmac(key, signature.as_bytes(), headers, body, now_unix_s) {
                Ok(()) => return Ok(()),
                Err(error) => failures.push(error),
            }
        }
        if let Some(secret) = secret {
            if let Some(value) = headers.get(LEGACY_SECRET_HEADER) {
                if secret.matches(value.as_bytes()) {
                    return Ok(());
                }
                failures.push(AuthError::WrongSecret { header: LEGACY_SECRET_HEADER });
            }
            if let Some(value) = headers.get(http::header::AUTHORIZATION) {
                if bearer_token(value.as_bytes()).is_some_and(|token| secret.matches(token)) {
                    return Ok(());
                }
                failures.push(AuthError::WrongSecret { header: "Authorization" });
            }
        }
        Err(failures.into_iter().next().unwrap_or(AuthError::Missing { expected }))
    }

    fn verify_hmac(
        &self,
        key: &Secret,
        signature: &[u8],
        headers: &HeaderMap,
        body: &[u8],
        now_unix_s: u64,
    ) -> Result<(), AuthError> {
        let timestamp = headers.get(TIMESTAMP_HEADER).ok_or(AuthError::MissingTimestamp)?.as_bytes();
        let sent_unix_ms = parse_timestamp_ms(timestamp).ok_or(AuthError::MalformedTimestamp)?;
        // Any byte string, hex or not, goes through the same comparison; a non-hex header simply fails it.
        let claimed = decode_hex(signature).unwrap_or_default();
        let mut mac =
            Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).expect("hmac accepts keys of any length");
        mac.update(timestamp);
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&claimed).map_err(|_| AuthError::BadSignature)?;
        // Only a genuine signature gets a freshness verdict: a replayed message is worth reporting, a
        // forged one is not.
        let now_unix_ms = now_unix_s.saturating_mul(1000);
        let tolerance_ms = self.hmac_tolerance_s.saturating_mul(1000);
        if self.hmac_tolerance_s != 0 && sent_unix_ms.abs_diff(now_unix_ms) > tolerance_ms {
            return Err(AuthError::StaleTimestamp {
                sent_unix_s: sent_unix_ms / 1000,
                now_unix_s,
                tolerance_s: self.hmac_tolerance_s,
            });
        }
        Ok(())
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive (RFC 9110).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

/// An `x-timestamp` in milliseconds since the Unix epoch. The header holds seconds, or milliseconds
/// when it has 13 digits (the unit is UNCONFIRMED in the reference: seconds is what Svix-style verifiers
/// expect, milliseconds what Vapi's message envelopes carry).
fn parse_timestamp_ms(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let number: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    if value.len() == 13 { Some(number) } else { number.checked_mul(1000) }
}

/// Hex (either case) as bytes.
fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| {
            let digit = |c: u8| char::from(c).to_digit(16);
            u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()
        })
        .collect()
}

/// A server message's envelope holding only what [`ServerMessage::parse`] reads: `type`, `timestamp`,
/// `call.id`, `status`, `request`, `destination`, the tool calls and the conversation
/// (`artifact.messages`, `messages`). Vapi sends the whole call, assistant, phone number and artifact
/// with every message, kilobytes that would otherwise be built into a tree and dropped unread. A body of
/// any other shape (a field of another type, a repeated key, no `message` object) is read whole, so its
/// errors are the same.
fn read_envelope(body: &[u8]) -> Result<Value, serde_json::Error> {
    match serde_json::from_slice::<shape::Envelope>(body) {
        Ok(shape::Envelope { message: Some(message) }) => {
            let mut envelope = Map::new();
            envelope.insert("message".to_owned(), message.into_value());
            Ok(Value::Object(envelope))
        }
        _ => serde_json::from_slice::<Value>(body),
    }
}

/// The part of a server message that [`read_envelope`] keeps; serde skips every other field. A field that
/// is `null` stays `null` (rather than absent), so [`ServerMessage::of`] sees what the whole document shows.
mod shape {
    use serde::{Deserialize, Deserializer};
    use serde_json::{Map, Value};

    #[derive(Debug, Deserialize)]
    pub struct Envelope {
        pub message: Option<Message>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Message {
        #[serde(rename = "type", default, deserialize_with = "present")]
        kind: Option<Value>,
        #[serde(default, deserialize_with = "present")]
        timestamp: Option<Value>,
        call: Option<Call>,
        #[serde(default, deserialize_with = "present")]
        status: Option<Value>,
        #[serde(default, deserialize_with = "present")]
        request: Option<Value>,
        #[serde(default, deserialize_with = "present")]
        destination: Option<Value>,
        #[serde(default, deserialize_with = "present")]
        tool_call_list: Option<Value>,
        #[serde(default, deserialize_with = "present")]
        tool_with_tool_call_list: Option<Value>,
        artifact: Option<Artifact>,
        #[serde(default, deserialize_with = "present")]
        messages: Option<Value>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Call {
        #[serde(default, deserialize_with = "present")]
        id: Option<Value>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Artifact {
        #[serde(default, deserialize_with = "present")]
        messages: Option<Value>,
    }

    /// A field that is there, even as `null`.
    fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
        Value::deserialize(d).map(Some)
    }

    impl Message {
        pub fn into_value(self) -> Value {
            let mut m = Map::new();
            let mut put = |key: &str, value: Option<Value>| {
                if let Some(value) = value {
                    m.insert(key.to_owned(), value);
                }
            };
            put("type", self.kind);
            put("timestamp", self.timestamp);
            put("call", self.call.map(|c| object("id", c.id)));
            put("status", self.status);
            put("request", self.request);
            put("destination", self.destination);
            put("toolCallList", self.tool_call_list);
            put("toolWithToolCallList", self.tool_with_tool_call_list);
            put("artifact", self.artifact.map(|a| object("messages", a.messages)));
            put("messages", self.messages);
            Value::Object(m)
        }
    }

    fn object(key: &str, value: Option<Value>) -> Value {
        Value::Object(value.map(|v| (key.to_owned(), v)).into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use serde_json::json;

    use super::*;
    use crate::http::ReqwestClient;
    use crate::http::tests::FakeApi;

    #[test]
    fn an_envelope_keeps_what_the_orchestrator_reads_and_nothing_else() {
        let body = json!({"message": {
            "timestamp": 1767225600123_u64, "type": "tool-calls", "status": "in-progress",
            "toolCallList": [{"id": "t1", "function": {"name": "transfer", "arguments": {"department": "sales"}}}],
            "artifact": {"messages": [{"role": "user", "message": "sales please"}], "transcript": "long"},
            "call": {"id": "c1", "orgId": "o1", "assistant": {"model": {}}},
            "assistant": {"firstMessage": "Hello"}, "phoneNumber": {"id": "p1"}, "customer": {"number": "+1"},
        }});
        let read = read_envelope(body.to_string().as_bytes()).expect("JSON");
        let mut expected = body.clone();
        for unread in ["assistant", "phoneNumber", "customer"] {
            expected["message"].as_object_mut().map(|m| m.shift_remove(unread));
        }
        expected["message"]["artifact"] = json!({"messages": [{"role": "user", "message": "sales please"}]});
        expected["message"]["call"] = json!({"id": "c1"});
        assert_eq!(read, expected);
    }

    #[test]
    fn what_is_read_of_a_message_is_what_its_whole_document_shows() {
        let bodies = [
            r#"{"message":{"type":"tool-calls","timestamp":1,"call":{"id":"c1","x":{}},"toolCallList":[{"id":"t1","function":{"name":"f","arguments":"{}"}}],
               "artifact":{"messages":[{"role":"user","message":"hi"}],"transcript":"t"}}}"#,
            r#"{"message":{"type":"tool-calls","toolCallList":null,"toolWithToolCallList":[{"toolCall":{"id":"t9"}}]}}"#,
            r#"{"message":{"type":"end-of-call-report","artifact":{"messages":null},"messages":[{"role":"user","message":"a"}]}}"#,
            r#"{"message":{"type":"end-of-call-report","artifact":null,"messages":[{"role":"bot","message":"b"}]}}"#,
            r#"{"message":{"type":"status-update","status":null,"timestamp":null,"call":{"id":null}}}"#,
            r#"{"message":{"type":"phone-call-control","request":"forward","destination":{"sipUri":"sip:a@b"}}}"#,
            r#"{"message":{"type":"status-update","call":"c1","status":"ended"}}"#,
            r#"{"message":{"type":"a","type":"b"}}"#,
            r#"{"message":{"type":7}}"#,
            r#"{"message":null}"#,
            r#"{"other":1}"#,
            "[1,2]",
        ];
        for body in bodies {
            let whole = ServerMessage::of(&serde_json::from_str(body).expect("JSON"));
            assert_eq!(ServerMessage::parse(body.as_bytes()), whole, "{body}");
        }
        assert!(matches!(ServerMessage::parse(b"CallSid=CA1"), Err(MessageError::NotJson(_))));
    }

    const KEY: &str = "4f6c-private-key";
    const CALL_ID: &str = "019d2ad0-6c1e-7aa3-9d0e-3f0b8a6c2b11";
    const BODY: &[u8] =
        br#"{"message":{"type":"status-update","status":"in-progress","timestamp":1767225600123}}"#;
    /// 2026-01-01T00:00:00Z.
    const NOW_S: u64 = 1_767_225_600;

    fn client(api: &FakeApi) -> VapiClient {
        let http = Arc::new(ReqwestClient::new(std::time::Duration::from_secs(5)).unwrap());
        VapiClient::new(http, &format!("{}/", api.base_url), Secret::from(KEY))
    }

    fn bypass_body() -> serde_json::Value {
        json!({
            "phoneNumberId": "0b4b5c2e-1d7f-4a8e-9a51-6b1c0e2d3f40",
            "phoneCallProviderBypassEnabled": true,
            "customer": {"number": "+15005550006"},
            "assistantId": "6f2a1c3e-5b4d-4e8f-a9b0-c1d2e3f4a5b6",
            "assistantOverrides": {"variableValues": {"returning": "yes"}}
        })
    }

    #[tokio::test]
    async fn create_call_posts_json_with_the_bearer_key_and_reads_the_bypass_twiml() {
        let twiml = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://api.vapi.ai/019d2ad0/transport"/></Connect></Response>"#;
        let answer = json!({
            "subscriptionLimits": {"concurrencyBlocked": false},
            "id": CALL_ID, "orgId": "o", "createdAt": "2026-01-01T00:00:00.000Z",
            "type": "inboundPhoneCall", "status": "queued", "phoneCallProviderBypassEnabled": true,
            "phoneCallProviderDetails": {"to": "+15005550006", "from": "+15005550001", "twiml": twiml},
            "monitor": {"controlUrl": "https://phone-call-websocket.example/019d2ad0/control"}
        });
        let api = FakeApi::start(201, answer.to_string()).await;
        let call = client(&api).create_call(&bypass_body()).await.unwrap();
        assert_eq!(call, CreatedCall { id: CALL_ID.to_owned(), twiml: Some(twiml.to_owned()) });
        let request = api.request();
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.uri, "/call");
        assert_eq!(request.header("authorization"), Some("Bearer 4f6c-private-key"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.json(), bypass_body());
    }

    #[tokio::test]
    async fn a_call_without_provider_details_has_no_twiml() {
        let api = FakeApi::start(201, json!({"id": CALL_ID, "status": "queued"}).to_string()).await;
        let call = client(&api).create_call(&json!({"assistantId": "a"})).await.unwrap();
        assert_eq!(call, CreatedCall { id: CALL_ID.to_owned(), twiml: None });
    }

    #[tokio::test]
    async fn a_wrong_key_is_rejected_with_vapis_message() {
        let api = FakeApi::start(
            401,
            r#"{"message":"Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa.","error":"Unauthorized","statusCode":401}"#,
        )
        .await;
        let error = client(&api).create_call(&bypass_body()).await.unwrap_err();
        assert_eq!(
            error,
            ApiError::Rejected {
                status: 401,
                code: None,
                message: "Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa.".into()
            }
        );
    }

    #[tokio::test]
    async fn validation_messages_are_joined() {
        let api = FakeApi::start(
            400,
            r#"{"message":["property metadata should not exist","customer.number must be a string"],"error":"Bad Request","statusCode":400}"#,
        )
        .await;
        let error = client(&api).create_call(&json!({"metadata": {}})).await.unwrap_err();
        assert_eq!(
            error,
            ApiError::Rejected {
                status: 400,
                code: None,
                message: "property metadata should not exist; customer.number must be a string".into()
            }
        );
    }

    #[tokio::test]
    async fn an_error_without_a_message_falls_back_to_its_reason_or_text() {
        let api = FakeApi::start(500, r#"{"error":"Internal Server Error","statusCode":500}"#).await;
        let error = client(&api).create_call(&json!({})).await.unwrap_err();
        assert_eq!(
            error,
            ApiError::Rejected { status: 500, code: None, message: "Internal Server Error".into() }
        );
        let api = FakeApi::start(502, "").await;
        let error = client(&api).create_call(&json!({})).await.unwrap_err();
        assert_eq!(error, ApiError::Rejected { status: 502, code: None, message: "bad gateway".into() });
    }

    #[tokio::test]
    async fn a_created_call_without_an_id_is_malformed() {
        let api = FakeApi::start(201, r#"{"results":[],"errors":[]}"#).await;
        let error = client(&api).create_call(&json!({})).await.unwrap_err();
        assert!(matches!(&error, ApiError::Malformed(m) if m.contains("`id`")), "{error:?}");
    }

    #[test]
    fn the_client_future_can_be_spawned_and_its_debug_hides_the_key() {
        fn assert_send<T: Send>(_: &T) {}
        let http = Arc::new(ReqwestClient::new(std::time::Duration::from_secs(1)).unwrap());
        let vapi = VapiClient::new(http, DEFAULT_API_BASE, Secret::from(KEY));
        assert_send(&vapi.create_call(&json!({})));
        assert!(!format!("{vapi:?}").contains(KEY));
    }

    fn headers(list: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in list {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn secret_only() -> VapiAuth {
        VapiAuth { secret: Some(Secret::from("shh")), ..VapiAuth::default() }
    }

    fn hmac_only() -> VapiAuth {
        VapiAuth {
            hmac_secret: Some(Secret::from("s3cr3t-key")),
            hmac_tolerance_s: DEFAULT_HMAC_TOLERANCE_S,
            ..VapiAuth::default()
        }
    }

    fn sign(key: &str, timestamp: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn nothing_configured_authenticates_nothing() {
        let auth = VapiAuth::default();
        assert_eq!(
            auth.verify(&headers(&[("x-vapi-secret", "")]), BODY, NOW_S),
            Err(AuthError::NotConfigured)
        );
        let empty = VapiAuth { secret: Some(Secret::from("")), hmac_secret: Some(Secret::from("")), ..auth };
        assert_eq!(
            empty.verify(&headers(&[("x-vapi-secret", "")]), BODY, NOW_S),
            Err(AuthError::NotConfigured)
        );
    }

    #[test]
    fn the_legacy_secret_header_authenticates() {
        assert_eq!(secret_only().verify(&headers(&[("X-Vapi-Secret", "shh")]), BODY, NOW_S), Ok(()));
        assert_eq!(
            secret_only().verify(&headers(&[("x-vapi-secret", "shhh")]), BODY, NOW_S),
            Err(AuthError::WrongSecret { header: "x-vapi-secret" })
        );
    }

    #[test]
    fn a_bearer_credential_authenticates_with_the_prefix_only() {
        let auth = secret_only();
        assert_eq!(auth.verify(&headers(&[("authorization", "Bearer shh")]), BODY, NOW_S), Ok(()));
        assert_eq!(auth.verify(&headers(&[("authorization", "bearer shh")]), BODY, NOW_S), Ok(()));
        let wrong = Err(AuthError::WrongSecret { header: "Authorization" });
        assert_eq!(auth.verify(&headers(&[("authorization", "shh")]), BODY, NOW_S), wrong);
        assert_eq!(auth.verify(&headers(&[("authorization", "Bearer shh ")]), BODY, NOW_S), wrong);
        assert_eq!(auth.verify(&headers(&[("authorization", "Basic c2hoOg==")]), BODY, NOW_S), wrong);
    }

    #[test]
    fn a_missing_credential_says_what_was_expected() {
        let error = secret_only().verify(&HeaderMap::new(), BODY, NOW_S).unwrap_err();
        assert_eq!(error, AuthError::Missing { expected: "`x-vapi-secret` or `Authorization: Bearer`" });
        // A signature the configuration does not use is no credential.
        let signed = headers(&[("x-signature", "00"), ("x-timestamp", "1")]);
        assert!(matches!(secret_only().verify(&signed, BODY, NOW_S), Err(AuthError::Missing { .. })));
        let error = hmac_only().verify(&headers(&[("x-vapi-secret", "shh")]), BODY, NOW_S).unwrap_err();
        assert_eq!(error, AuthError::Missing { expected: "`x-signature` and `x-timestamp`" });
    }

    #[test]
    fn an_hmac_signature_over_timestamp_and_body_authenticates() {
        let timestamp = NOW_S.to_string();
        let signature = sign("s3cr3t-key", &timestamp, BODY);
        let good = headers(&[("x-timestamp", &timestamp), ("x-signature", &signature)]);
        assert_eq!(hmac_only().verify(&good, BODY, NOW_S), Ok(()));
        // Upper-case hex is the same signature.
        let upper = headers(&[("x-timestamp", &timestamp), ("x-signature", &signature.to_uppercase())]);
        assert_eq!(hmac_only().verify(&upper, BODY, NOW_S), Ok(()));
        assert_eq!(hmac_only().verify(&good, b"{}", NOW_S), Err(AuthError::BadSignature));
        let other_key = VapiAuth { hmac_secret: Some(Secret::from("other")), ..hmac_only() };
        assert_eq!(other_key.verify(&good, BODY, NOW_S), Err(AuthError::BadSignature));
        let retimed = headers(&[("x-timestamp", &(NOW_S + 1).to_string()), ("x-signature", &signature)]);
        assert_eq!(hmac_only().verify(&retimed, BODY, NOW_S), Err(AuthError::BadSignature));
    }

    #[test]
    fn an_hmac_signature_must_be_fresh_unless_the_tolerance_is_zero() {
        let sent = NOW_S - 301;
        let stale = headers(&[
            ("x-timestamp", &sent.to_string()),
            ("x-signature", &sign("s3cr3t-key", &sent.to_string(), BODY)),
        ]);
        assert_eq!(
            hmac_only().verify(&stale, BODY, NOW_S),
            Err(AuthError::StaleTimestamp { sent_unix_s: sent, now_unix_s: NOW_S, tolerance_s: 300 })
        );
        assert_eq!(hmac_only().verify(&stale, BODY, NOW_S - 1), Ok(()));
        let future = NOW_S + 301;
        let ahead = headers(&[
            ("x-timestamp", &future.to_string()),
            ("x-signature", &sign("s3cr3t-key", &future.to_string(), BODY)),
        ]);
        assert!(matches!(hmac_only().verify(&ahead, BODY, NOW_S), Err(AuthError::StaleTimestamp { .. })));
        let no_check = VapiAuth { hmac_tolerance_s: 0, ..hmac_only() };
        assert_eq!(no_check.verify(&stale, BODY, NOW_S), Ok(()));
        assert_eq!(no_check.verify(&ahead, BODY, 0), Ok(()));
    }

    #[test]
    fn a_millisecond_timestamp_of_13_digits_is_accepted() {
        let sent_ms = "1767225600123";
        let signed =
            headers(&[("x-timestamp", sent_ms), ("x-signature", &sign("s3cr3t-key", sent_ms, BODY))]);
        assert_eq!(hmac_only().verify(&signed, BODY, NOW_S), Ok(()));
        assert_eq!(
            hmac_only().verify(&signed, BODY, NOW_S + 301),
            Err(AuthError::StaleTimestamp { sent_unix_s: NOW_S, now_unix_s: NOW_S + 301, tolerance_s: 300 })
        );
    }

    #[test]
    fn a_missing_or_malformed_timestamp_is_reported() {
        let signature = sign("s3cr3t-key", "", BODY);
        let without = headers(&[("x-signature", &signature)]);
        assert_eq!(hmac_only().verify(&without, BODY, NOW_S), Err(AuthError::MissingTimestamp));
        for bad in ["", "-1", "+1767225600", "2026-01-01T00:00:00Z", "99999999999999999999999"] {
            let malformed = headers(&[("x-timestamp", bad), ("x-signature", &sign("s3cr3t-key", bad, BODY))]);
            assert_eq!(
                hmac_only().verify(&malformed, BODY, NOW_S),
                Err(AuthError::MalformedTimestamp),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_non_hex_signature_is_a_bad_signature() {
        let timestamp = NOW_S.to_string();
        for bad in ["", "abc", "zz", "sha256=00"] {
            let sent = headers(&[("x-timestamp", &timestamp), ("x-signature", bad)]);
            assert_eq!(hmac_only().verify(&sent, BODY, NOW_S), Err(AuthError::BadSignature), "{bad:?}");
        }
    }

    #[test]
    fn any_configured_method_is_enough_and_failures_name_the_signature_first() {
        let both = VapiAuth { secret: Some(Secret::from("shh")), ..hmac_only() };
        let timestamp = NOW_S.to_string();
        let signature = sign("s3cr3t-key", &timestamp, BODY);
        // A proxy's own Authorization does not spoil a valid signature.
        let signed = headers(&[
            ("authorization", "Bearer proxy-token"),
            ("x-timestamp", &timestamp),
            ("x-signature", &signature),
        ]);
        assert_eq!(both.verify(&signed, BODY, NOW_S), Ok(()));
        let legacy = headers(&[("x-signature", "00"), ("x-timestamp", &timestamp), ("x-vapi-secret", "shh")]);
        assert_eq!(both.verify(&legacy, BODY, NOW_S), Ok(()));
        let all_wrong = headers(&[
            ("authorization", "Bearer nope"),
            ("x-vapi-secret", "nope"),
            ("x-signature", "00"),
            ("x-timestamp", &timestamp),
        ]);
        assert_eq!(both.verify(&all_wrong, BODY, NOW_S), Err(AuthError::BadSignature));
        let secrets_wrong = headers(&[("authorization", "Bearer nope"), ("x-vapi-secret", "nope")]);
        assert_eq!(
            both.verify(&secrets_wrong, BODY, NOW_S),
            Err(AuthError::WrongSecret { header: "x-vapi-secret" })
        );
    }

    #[test]
    fn a_non_utf8_header_is_refused_without_panicking() {
        let mut map = HeaderMap::new();
        map.insert(LEGACY_SECRET_HEADER, HeaderValue::from_bytes(b"sh\xffh").unwrap());
        map.insert(http::header::AUTHORIZATION, HeaderValue::from_bytes(b"Bearer \xff").unwrap());
        map.insert(SIGNATURE_HEADER, HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        map.insert(TIMESTAMP_HEADER, HeaderValue::from_bytes(b"\xff").unwrap());
        let both = VapiAuth { secret: Some(Secret::from("shh")), ..hmac_only() };
        assert_eq!(both.verify(&map, BODY, NOW_S), Err(AuthError::MalformedTimestamp));
    }

    #[test]
    fn no_error_message_contains_a_secret() {
        let both = VapiAuth { secret: Some(Secret::from("shh-secret")), ..hmac_only() };
        assert!(!format!("{both:?}").contains("shh-secret") && !format!("{both:?}").contains("s3cr3t"));
        let wrong = headers(&[("x-vapi-secret", "shh-secreT")]);
        let error = both.verify(&wrong, BODY, NOW_S).unwrap_err();
        assert!(!error.to_string().contains("shh"), "{error}");
    }

    proptest::proptest! {
        #[test]
        fn any_signed_body_verifies_and_any_change_to_it_does_not(
            key in "[ -~]{1,40}",
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            offset_s in 0u64..=300,
            milliseconds in proptest::bool::ANY,
            junk in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
        ) {
            let auth = VapiAuth { hmac_secret: Some(Secret::from(key.as_str())), ..hmac_only() };
            let sent_s = NOW_S - offset_s;
            let timestamp = if milliseconds { (sent_s * 1000 + 999).to_string() } else { sent_s.to_string() };
            let signature = sign(&key, &timestamp, &body);
            let sent = headers(&[("x-timestamp", &timestamp), ("x-signature", &signature)]);
            proptest::prop_assert_eq!(auth.verify(&sent, &body, NOW_S), Ok(()));
            let mut other = body.clone();
            other.push(b'x');
            proptest::prop_assert_eq!(auth.verify(&sent, &other, NOW_S), Err(AuthError::BadSignature));
            if let Ok(value) = HeaderValue::from_bytes(&junk) {
                let mut forged = sent.clone();
                forged.insert(SIGNATURE_HEADER, value);
                let _ = auth.verify(&forged, &body, NOW_S);
            }
        }
    }
}
