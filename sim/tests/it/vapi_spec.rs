//! Checks Vapi bodies against Vapi's OpenAPI file (`fixtures/specs/vapi-openapi.json`), with the validator
//! of `openapi.rs` in Vapi's dialect, and the helpers other tests use to do the same.
//!
//! # Field guide for the fake Vapi
//!
//! What the spec requires, for the schemas the fake writes or reads. "req" is the schema's `required`;
//! every other property is optional. References: `shared/reference/vapi.md` §n.
//!
//! **Operations** (bearer auth, JSON; `{id}` is `format: uuid`; no `PUT` anywhere):
//! - `POST /call` body `CreateCallDTO` → **201** `Call`, or `CallBatchResponse {results: Call[], errors:
//!   CallBatchError[], subscriptionLimits}` (req `results, errors`) when `customers[]` is given; 400 and 500
//!   are documented without a body (real shape: reference §1).
//! - `GET /call` (query `id, assistantId, phoneNumberId, limit, createdAtGt|Lt|Ge|Le, updatedAtGt|…`) →
//!   200 `Call[]` (a bare array, no paging envelope). `GET /call/{id}` → 200 `Call`. `PATCH /call/{id}`
//!   body `UpdateCallDTO {name ≤40}` → 200 `Call`. `DELETE /call/{id}` body `DeleteCallDTO {ids?}` → 200
//!   `Call`, 503 without a body.
//! - `POST /assistant` body `CreateAssistantDTO` → **201** `Assistant`. `GET /assistant` → 200
//!   `Assistant[]`. `GET /assistant/{id}` → 200, `PATCH` (body `UpdateAssistantDTO`) → 200, `DELETE` → 200
//!   `Assistant` or 409 `AssistantPinnedConflictResponseDTO`.
//! - `POST /phone-number` body: a union picked by `provider`; for Twilio `CreateTwilioPhoneNumberDTO` →
//!   **201** a `PhoneNumber` union (Twilio: `TwilioPhoneNumber`). `GET /phone-number` → 200 array;
//!   `GET`/`DELETE /phone-number/{id}` → 200; `PATCH` body `UpdateTwilioPhoneNumberDTO` (all optional) → 200.
//!   (`ImportTwilioPhoneNumberDTO` is not a request body: it is the inline `phoneNumber` of `CreateCallDTO`
//!   and `Call`.)
//!
//! **Resources**
//! - `Call` req `id, orgId, createdAt, updatedAt` (date-time). `type`: `inboundPhoneCall | outboundPhoneCall
//!   | webCall | vapi.websocketCall`. `status`: `scheduled | queued | ringing | in-progress | forwarding |
//!   ended | not-found | deletion-failed`. `endedReason`: 595 distinct values (`vapi-ended-reasons.txt`).
//!   `phoneCallProvider` `twilio | vonage | vapi | telnyx`; `phoneCallTransport` `sip | pstn`;
//!   `phoneCallProviderId` = the Twilio CallSid. `transport`: union by `provider`, Twilio is `TwilioTransport`
//!   (req `provider: "twilio"`; `conversationType: "voice"`, `accountSid`, `callSid`, `callToken`,
//!   `forwardedFrom`). `monitor: Monitor {listenUrl, controlUrl, monitors}` (no req). `destination`:
//!   `TransferDestinationNumber | Sip`. Also `assistantId, assistant (CreateAssistantDTO), assistantOverrides,
//!   phoneNumberId, phoneNumber (ImportTwilioPhoneNumberDTO), customerId, customer (CreateCustomerDTO:
//!   number 3–40, name ≤40, …), name ≤40, startedAt, endedAt, cost, costs[], artifact, analysis, messages[]`.
//!   Undocumented but real (allowlisted in strict mode, `KNOWN_UNDOCUMENTED`): `phoneCallProviderBypassEnabled`,
//!   `phoneCallProviderDetails` (`{twiml, …}`), `subscriptionLimits`, legacy `transcript`, `recordingUrl`,
//!   `summary`.
//! - `CreateCallDTO`: nothing req. `assistantId | assistant | squadId | … `, `phoneNumberId | phoneNumber`,
//!   `customerId | customer | customers[]`, `assistantOverrides`, `name ≤40`, `schedulePlan`, `transport`.
//!   `phoneCallProviderBypassEnabled` is undocumented (reference §2).
//! - `Assistant` req `id, orgId, createdAt, updatedAt`. `CreateAssistantDTO` and `UpdateAssistantDTO`: nothing
//!   req. Both have `model` (union by `provider`; `OpenAIModel` req `provider: "openai", model` with a
//!   156-value enum incl. `gpt-4o`; tools go in `model.tools[]`), `voice`, `transcriber`, `firstMessage`,
//!   `firstMessageMode` (`assistant-speaks-first | assistant-speaks-first-with-model-generated-message |
//!   assistant-waits-for-user`), `serverMessages[]`/`clientMessages[]` (enums of message types),
//!   `server: Server`, `monitorPlan: MonitorPlan`, `name ≤40`, `metadata`, `maxDurationSeconds` 10–43200.
//! - `TwilioPhoneNumber` req `provider: "twilio", id, orgId, createdAt, updatedAt, number, twilioAccountSid`;
//!   `status` `active | activating | blocked`; `smsEnabled` (default true), `assistantId`, `server`, `name ≤40`,
//!   `fallbackDestination`, `twilioAuthToken`. `CreateTwilioPhoneNumberDTO` req `provider: "twilio", number,
//!   twilioAccountSid`. `ImportTwilioPhoneNumberDTO` req `twilioPhoneNumber, twilioAccountSid` (no `provider`).
//! - `Artifact` (no req): `messages[]` (`UserMessage | SystemMessage | BotMessage | ToolCallMessage |
//!   ToolCallResultMessage`, req `role, message, time, secondsFromStart`, plus `endTime` for user and bot;
//!   tool calls: `role, toolCalls, message, time, secondsFromStart`; results: `role, toolCallId, name, result,
//!   time, secondsFromStart`; `role` is untyped, real values `user | bot | system | tool_calls |
//!   tool_call_result`), `messagesOpenAIFormatted[]` (`OpenAIMessage` req `role, content`), `transcript`,
//!   `recording`, `recordingUrl`, `transfers[]`, `variableValues`, …
//! - `TransferArtifact` (the `artifact.transfers[]` items) req `destination` (`TransferDestinationNumber |
//!   Sip`); `mode` (the `TransferPlan.mode` enum), `status` `connected | no-answer | busy | voicemail | failed
//!   | completed | cancelled`, `transcript`, `messages[]`.
//! - `TransferDestinationNumber` req `type: "number", number` (3–40); `numberE164CheckEnabled`, `extension`
//!   1–10, `callerId ≤40`, `message` (string | `CustomMessage` req `type: "custom-message"`), `description`,
//!   `transferPlan`. `TransferDestinationSip` req `type: "sip", sipUri`; `sipHeaders`, `callerId`.
//!   `TransferDestinationAssistant` req `type: "assistant", assistantName`; `transferMode` `rolling-history |
//!   swap-system-message-in-history | swap-system-message-in-history-and-remove-transfer-tool-messages |
//!   delete-history`.
//! - `TransferPlan` req `mode`: `blind-transfer | blind-transfer-add-summary-to-sip-header |
//!   warm-transfer-say-message | warm-transfer-say-summary | warm-transfer-twiml |
//!   warm-transfer-wait-for-operator-to-speak-first-and-then-say-message |
//!   warm-transfer-wait-for-operator-to-speak-first-and-then-say-summary | warm-transfer-experimental`;
//!   `message`, `timeout` 1–600, `sipVerb` `refer | bye | dial`, `dialTimeout` 1–600, `holdAudioUrl`,
//!   `twiml ≤4096`, `summaryPlan {enabled, messages[], timeoutSeconds 1–60}`, `fallbackPlan`.
//!   `TransferFallbackPlan` req `message` (string | `CustomMessage`); `endCallEnabled` (default true).
//!   `CreateTransferCallToolDTO` (in `model.tools[]`) req `type: "transferCall"`; `destinations[]`, `messages[]`.
//! - `Server` (no req): `url`, `timeoutSeconds` 1–300 (default 20), `credentialId`, `headers`, `backoffPlan`
//!   (`BackoffPlan` req `type: fixed | exponential, maxRetries 0–10, baseDelaySeconds 0–10`). No `secret`: the
//!   legacy `x-vapi-secret` header is outside the spec (reference §7).
//! - `WebhookCredential` req `provider: "webhook", authenticationPlan, id, orgId, createdAt, updatedAt,
//!   authenticationSession` (create: `CreateWebhookCredentialDTO` req `provider, authenticationPlan`).
//!   `authenticationPlan` by `type`: `BearerAuthenticationPlan` req `type: "bearer", token` (`headerName`
//!   default `Authorization`, `bearerPrefixEnabled` default true); `HMACAuthenticationPlan` req `type: "hmac",
//!   secretKey, algorithm: sha256 | sha512 | sha1` (`signatureHeader` default `x-signature`, `timestampHeader`
//!   `x-timestamp`, `payloadFormat` `{timestamp}.{body}`, `signatureEncoding` `hex | base64`, …);
//!   `OAuth2AuthenticationPlan` req `type: "oauth2", url, clientId, clientSecret`.
//! - `MonitorPlan` (no req): `listenEnabled`, `listenAuthenticationEnabled`, `controlEnabled` (default true),
//!   `controlAuthenticationEnabled`, `monitorIds`.
//!
//! **Server messages**, `POST server.url` body `{"message": ServerMessage*}`. Every one may carry
//! `timestamp` (number, epoch ms), `call` (`Call`), `phoneNumber` (a `Create*PhoneNumberDTO` by `provider`),
//! `customer`, `assistant` (`CreateAssistantDTO`), `artifact`, `assistantVersion`, `chat`.
//! - `tool-calls` `ServerMessageToolCalls` req `toolWithToolCallList, toolCallList` (not `type`!).
//!   `toolCallList[]`: `ToolCall` req `id, type, function {name ≤80, arguments}` (`arguments` is an object in
//!   these messages; see `correct`). `toolWithToolCallList[]`: by `type`, e.g. `FunctionToolWithToolCall` req
//!   `type: "function", toolCall`. Response `ServerMessageResponseToolCalls {results?: ToolCallResult[],
//!   error?}`; `ToolCallResult` req `name, toolCallId`, with `result` or `error` (strings), `message`.
//! - `transfer-destination-request` req `type`. Response `{destination?: TransferDestinationAssistant |
//!   Number | Sip, message?: ToolMessageStart | Complete | Failed | Delayed (req type "request-start" | …),
//!   error?}`.
//! - `status-update` req `type, status` (the `Call.status` enum); `endedReason`, `destination`, `messages[]`,
//!   `messagesOpenAIFormatted[]`, `transcript`, `summary`, `inboundPhoneCallDebuggingArtifacts`.
//! - `end-of-call-report` req `type, endedReason, artifact, analysis` (`Analysis`: no req; `summary`,
//!   `structuredData`, `successEvaluation`); `cost`, `costs[]`, `destination`, `startedAt`, `endedAt`.
//! - `conversation-update` req `type, messagesOpenAIFormatted`; `messages[]`.
//! - `speech-update` req `type, status: started | stopped, role: assistant | user`; `turn`.
//! - `hang` req `type`. `transfer-update` req `type`; `destination` (Assistant | Number | Sip),
//!   `toAssistant`, `fromAssistant`, `toStepRecord`, `fromStepRecord`.
//! - `phone-call-control` req `type, request: forward | hang-up`; `destination` (Number | Sip).
//! - Only `assistant-request`, `tool-calls`, `transfer-destination-request` (and handoff, knowledge-base,
//!   voice, endpointing, campaign) have a response schema; the others are answered with any 2xx.
//!
//! **Live call control**, `POST call.monitor.controlUrl` body: one `ClientInboundMessage*`, bare.
//! - `say` (nothing req, not even `type`): `content`, `endCallAfterSpoken`, `interruptionsEnabled`,
//!   `interruptAssistantEnabled`. `add-message` req `type, message` (`OpenAIMessage` req `role: assistant |
//!   function | user | system | tool, content`); `triggerResponseEnabled` (default true). `control` req
//!   `type, control: mute-assistant | unmute-assistant | mute-customer | unmute-customer | say-first-message`.
//!   `end-call` req `type`. `transfer` req `type`; `destination` (Number | Sip), `content`.
//!   `send-transport-message` req `type, message` (`TwilioTransportMessage` req `transport: "twilio", twiml`).
//!
//! **Where the spec is wrong** (corrected in memory by `correct`): `TransferPlan.sipVerb`, `BackoffPlan.type`
//! and `AudioFormat.format` are string enums typed `object`; `serverMessages`/`clientMessages` carry their
//! items' enum on the array; `BackoffPlan.excludedStatusCodes` holds numbers; `ToolCall.function.arguments`
//! is an object in tool-calls messages.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::openapi::{Keys, Options, Spec};

// -----------------------------------------------------------------------------------------------------
// The spec and Vapi's dialect
// -----------------------------------------------------------------------------------------------------

/// A file of `fixtures/specs/`, where Vapi's files are vendored (see `vapi-openapi.SOURCE.txt`).
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/specs").join(name)
}

/// The parsed spec with `correct`'s corrections, read once per test binary.
pub fn vapi_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = fixture("vapi-openapi.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("cannot read the Vapi spec at {}: {e}; fix fixture()", path.display())
        });
        let mut spec: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        correct(&mut spec);
        spec
    })
}

/// Fixes, in memory, the places where the spec contradicts what Vapi sends, each with its evidence. A
/// correction whose target has changed panics, so a newer spec that fixes one is noticed.
fn correct(spec: &mut Value) {
    // NestJS's Swagger plugin misplaces two kinds of enums. Some string enums are typed `object`
    // (`TransferPlan.sipVerb`, `BackoffPlan.type`, `AudioFormat.format`): their values, defaults and
    // examples are strings. Arrays of enum values repeat their items' `enum` on the array
    // (`serverMessages`, `clientMessages`): the values are the items'.
    fn misplaced_enums(schema: &mut Value) {
        match schema {
            Value::Object(map) => {
                let strings =
                    map.get("enum").and_then(Value::as_array).is_some_and(|e| e.iter().all(Value::is_string));
                if map.get("type").is_some_and(|t| t == "object") && strings {
                    map.insert("type".into(), "string".into());
                }
                if map.get("type").is_some_and(|t| t == "array")
                    && map.get("enum").is_some()
                    && map.get("enum") == map.get("items").and_then(|i| i.get("enum"))
                {
                    map.remove("enum");
                }
                map.values_mut().for_each(misplaced_enums);
            }
            Value::Array(items) => items.iter_mut().for_each(misplaced_enums),
            _ => {}
        }
    }
    misplaced_enums(&mut spec["components"]["schemas"]);

    // The spec's own example is `[400, 401, 403, 404]`.
    replace(
        spec,
        "/components/schemas/BackoffPlan/properties/excludedStatusCodes/items",
        json!({"type": "object"}),
        json!({"type": "number"}),
    );
    // A JSON object in tool-calls messages (reference §4: a captured payload; Vapi's own example reads
    // `toolCall.function.arguments.department`), a JSON string inside `artifact.messages`.
    let description = "This is the arguments to call the function with";
    replace(
        spec,
        "/components/schemas/ToolCallFunction/properties/arguments",
        json!({"type": "string", "description": description}),
        json!({"oneOf": [{"type": "string"}, {"type": "object"}], "description": description}),
    );
}

fn replace(spec: &mut Value, pointer: &str, was: Value, now: Value) {
    let target = spec.pointer_mut(pointer).unwrap_or_else(|| panic!("correction target {pointer} is gone"));
    assert_eq!(*target, was, "{pointer} changed in the spec; review its correction");
    *target = now;
}

/// Keys Vapi writes that its spec does not list, as `Component.key`: allowed by `strict_vapi`.
pub const KNOWN_UNDOCUMENTED: &[&str] = &[
    // The hidden bypass flag, its TwiML, and the concurrency block of real 201 bodies (reference §2).
    "CreateCallDTO.phoneCallProviderBypassEnabled",
    "Call.phoneCallProviderBypassEnabled",
    "Call.phoneCallProviderDetails",
    "Call.subscriptionLimits",
    // Legacy top-level fields a real GET /call still returned in 2025 (reference §2).
    "Call.transcript",
    "Call.recordingUrl",
    "Call.summary",
    // A copy of `toolCallList` in captured tool-calls messages (reference §4).
    "ServerMessageToolCalls.toolCalls",
];

/// Vapi's dialect: `required` properties present, listed ones valid, unlisted keys ignored. Vapi writes
/// keys its spec omits, and its SDKs keep them (reference §1).
const VAPI: Options<'static> =
    Options { keys: Keys::Open, null_for_bare_ref: false, empty_strings_unchecked: false };

/// The spec in Vapi's lenient dialect.
pub fn vapi() -> Spec<'static> {
    Spec::new(vapi_spec(), VAPI)
}

/// The spec in Vapi's strict dialect: as `vapi()`, but a key the spec does not list is an error unless it
/// is in `KNOWN_UNDOCUMENTED`. For what the fake writes, where a typo should not pass.
pub fn strict_vapi() -> Spec<'static> {
    Spec::new(vapi_spec(), Options { keys: Keys::Closed { known: KNOWN_UNDOCUMENTED }, ..VAPI })
}

// -----------------------------------------------------------------------------------------------------
// Helpers for other tests
// -----------------------------------------------------------------------------------------------------

/// Whether the spec has `method` (any case) on `path_template`, e.g. `("post", "/call")`,
/// `("get", "/call/{id}")`.
pub fn vapi_operation_exists(method: &str, path_template: &str) -> bool {
    vapi().operation_exists(method, path_template)
}

/// Validates `value` against the component schema `name` (e.g. `Call`), ignoring undocumented keys.
pub fn validate_vapi_component(name: &str, value: &Value) -> Result<(), Vec<String>> {
    vapi().validate_component(name, value)
}

/// Validates a response body of `method path_template → status`. The spec documents Vapi's error
/// responses (POST /call 400/500, DELETE /call/{id} 503) without a body, so any body passes for those;
/// their real shape is in reference §1.
pub fn validate_vapi_response(
    method: &str,
    path_template: &str,
    status: u16,
    body: &Value,
) -> Result<(), Vec<String>> {
    let spec = vapi();
    match spec.response_schema(method, path_template, status).map_err(|e| vec![e])? {
        Some(schema) => spec.validate(schema, body),
        None => Ok(()),
    }
}

/// Validates a server message, `{"message": {"type": …, …}}`, against the `ServerMessage*` component its
/// `message.type` names.
pub fn validate_server_message(envelope: &Value) -> Result<(), Vec<String>> {
    let Some(message_type) = envelope["message"]["type"].as_str() else {
        return Err(vec![if envelope["message"].is_object() {
            "$.message: missing `type`, which names the kind of server message".to_owned()
        } else {
            format!("$: expected {{\"message\": {{\"type\": …}}}}, got {envelope}")
        }]);
    };
    let component = union_member("ServerMessage", message_type)?;
    let schema = json!({
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"$ref": format!("#/components/schemas/{component}")}},
    });
    vapi().validate(&schema, envelope)
}

/// Validates the response to a `message_type` server message against its `ServerMessageResponse*`
/// component. The spec wraps that union in `{"messageResponse": …}` only to name it: servers answer the
/// bare object, e.g. `{"results": […]}` (reference §4).
pub fn validate_server_message_response(message_type: &str, body: &Value) -> Result<(), Vec<String>> {
    let component = union_member("ServerMessage", message_type)?;
    let response = component.replacen("ServerMessage", "ServerMessageResponse", 1);
    let expected = union_branches("ServerMessageResponse", "messageResponse");
    if !expected.contains(&response.as_str()) {
        return Err(vec![format!(
            "a `{message_type}` message expects no response body; only these have one: {}",
            expected.join(", ")
        )]);
    }
    vapi().validate_component(&response, body)
}

/// Validates a live call control body, a bare `ClientInboundMessage*` such as `{"type": "say", "content":
/// …}`, against the component its `type` names. The spec wraps the union in `{"message": …}` to name it;
/// the control URL takes the message itself (DOCS:calls/call-features, reference §3).
pub fn validate_client_inbound_message(body: &Value) -> Result<(), Vec<String>> {
    let Some(message_type) = body["type"].as_str() else {
        return Err(vec![format!("$: missing `type`, which names the control message, in {body}")]);
    };
    vapi().validate_component(union_member("ClientInboundMessage", message_type)?, body)
}

/// The components of the union the spec puts in `union.properties.property.oneOf`.
fn union_branches(union: &str, property: &str) -> Vec<&'static str> {
    vapi_spec()["components"]["schemas"][union]["properties"][property]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("the spec's {union}.{property} is no longer a oneOf"))
        .iter()
        .filter_map(|branch| branch["$ref"].as_str()?.rsplit('/').next())
        .collect()
}

/// The member of `union` (`ServerMessage`, `ClientInboundMessage`; the union is in its `message`) whose
/// `type` enum holds `message_type`.
fn union_member(union: &str, message_type: &str) -> Result<&'static str, Vec<String>> {
    let members = union_branches(union, "message");
    let types_of =
        |name: &str| vapi_spec()["components"]["schemas"][name]["properties"]["type"]["enum"].as_array();
    members
        .iter()
        .find(|name| types_of(name).is_some_and(|types| types.iter().any(|t| t == message_type)))
        .copied()
        .ok_or_else(|| {
            let known: Vec<String> =
                members.iter().filter_map(|name| types_of(name)).flatten().map(Value::to_string).collect();
            vec![format!("`{message_type}` is not a {union} type; the spec has {}", known.join(", "))]
        })
}

// -----------------------------------------------------------------------------------------------------
// Real-shaped samples
// -----------------------------------------------------------------------------------------------------

const CALL_ID: &str = "019d2ad0-6b3e-7c1a-9f00-0123456789ab";
const CONTROL_URL: &str = "https://phone-call-websocket.aws-us-west-2-backend-production1.vapi.ai/019d2ad0-6b3e-7c1a-9f00-0123456789ab/control";

/// The real outbound `POST /call` 201 body quoted in reference §2 (2026-03), its elisions filled in.
fn created_call() -> Value {
    json!({
        "subscriptionLimits": {"concurrencyBlocked": false, "concurrencyLimit": 10, "remainingConcurrentCalls": 9},
        "id": CALL_ID,
        "assistantId": "7d3ee5f1-0e4f-4b1c-9d0a-4f2b6c1e8a90",
        "phoneNumberId": "5b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
        "type": "outboundPhoneCall",
        "createdAt": "2026-03-24T18:00:00.000Z",
        "updatedAt": "2026-03-24T18:00:00.000Z",
        "orgId": "0c8e6e7a-1b2c-4d3e-8f40-5a6b7c8d9e0f",
        "cost": 0,
        "customer": {"name": "Mayte", "number": "+525512345678"},
        "status": "queued",
        "phoneCallProvider": "twilio",
        "assistantOverrides": {"variableValues": {"name": "Mayte"}},
        "monitor": {
            "listenUrl": "wss://phone-call-websocket.aws-us-west-2-backend-production1.vapi.ai/019d2ad0-6b3e-7c1a-9f00-0123456789ab/listen",
            "controlUrl": CONTROL_URL,
        },
        "transport": {"conversationType": "voice", "provider": "twilio", "accountSid": format!("AC{}", "0".repeat(32))},
    })
}

/// The call as later messages carry it: in progress, with its Twilio CallSid.
fn live_call() -> Value {
    let mut call = created_call();
    call["status"] = json!("in-progress");
    call["startedAt"] = json!("2026-03-24T18:00:03.120Z");
    call["phoneCallProviderId"] = json!(format!("CA{}", "1".repeat(32)));
    call
}

const CALL_TOOL_ID: &str = "call_fzbJ2Qk3NqB6";

/// The tool-calls message captured in reference §4, around a custom `transferToSpecialist` tool.
fn tool_calls_message() -> Value {
    let tool_call = json!({
        "id": CALL_TOOL_ID,
        "type": "function",
        "function": {"name": "transferToSpecialist", "arguments": {"department": "billing"}},
    });
    json!({"message": {
        "type": "tool-calls",
        "timestamp": 1_760_000_000_000_u64,
        "call": live_call(),
        "toolCallList": [tool_call],
        "toolWithToolCallList": [{
            "type": "function",
            "function": {
                "name": "transferToSpecialist",
                "description": "Transfer the caller to a human specialist",
                "parameters": {"type": "object", "properties": {"department": {"type": "string"}}},
            },
            "async": false,
            "server": {"url": "https://orchestrator.example/vapi/tools", "timeoutSeconds": 20},
            "messages": [{"type": "request-start", "content": "One moment"}],
            "toolCall": tool_call,
        }],
        "toolCalls": [tool_call],
        "artifact": {"messages": [], "messagesOpenAIFormatted": []},
        "assistant": {"name": "Riley", "firstMessage": "Hi, this is Riley."},
        "customer": {"number": "+14155550100"},
        "phoneNumber": {
            "provider": "twilio",
            "number": "+14155550199",
            "twilioAccountSid": format!("AC{}", "0".repeat(32)),
        },
    }})
}

/// An end-of-call report after a warm transfer to a busy specialist (reference §4).
fn end_of_call_report() -> Value {
    let specialist = json!({"type": "number", "number": "+14155550123"});
    json!({"message": {
        "type": "end-of-call-report",
        "timestamp": 1_760_000_090_000_u64,
        "endedReason": "customer-ended-call",
        "call": live_call(),
        "startedAt": "2026-03-24T18:00:03.120Z",
        "endedAt": "2026-03-24T18:01:30.000Z",
        "cost": 0.12,
        "costs": [{"type": "transport", "provider": "twilio", "minutes": 1.45, "cost": 0.02}],
        "analysis": {"summary": "The caller asked for billing; the specialist was busy.", "successEvaluation": "true"},
        "artifact": {
            "messages": [
                {"role": "bot", "message": "Hi, this is Riley.", "time": 1_760_000_003_500_u64,
                 "endTime": 1_760_000_005_000_u64, "secondsFromStart": 0.4, "duration": 1.5},
                {"role": "user", "message": "Billing, please.", "time": 1_760_000_006_000_u64,
                 "endTime": 1_760_000_007_000_u64, "secondsFromStart": 2.9, "duration": 1.0},
                {"role": "tool_calls", "message": "", "time": 1_760_000_007_500_u64, "secondsFromStart": 4.4,
                 "toolCalls": [{"id": CALL_TOOL_ID, "type": "function",
                                "function": {"name": "transferCall", "arguments": "{\"destination\":\"+14155550123\"}"}}]},
                {"role": "tool_call_result", "toolCallId": CALL_TOOL_ID, "name": "transferCall",
                 "result": "Transfer failed: busy", "time": 1_760_000_040_000_u64, "secondsFromStart": 36.9},
            ],
            "messagesOpenAIFormatted": [
                {"role": "assistant", "content": "Hi, this is Riley."},
                {"role": "user", "content": "Billing, please."},
            ],
            "transcript": "AI: Hi, this is Riley.\nUser: Billing, please.",
            "transfers": [{"destination": specialist, "mode": "warm-transfer-experimental", "status": "busy"}],
        },
    }})
}

fn status_update(status: &str) -> Value {
    json!({"message": {"type": "status-update", "status": status, "timestamp": 1_760_000_003_000_u64, "call": live_call()}})
}

fn assert_valid(what: &str, result: Result<(), Vec<String>>) {
    if let Err(errors) = result {
        panic!("{what} does not match Vapi's spec:\n  {}", errors.join("\n  "));
    }
}

/// The errors of `result`, which must have failed.
fn errors_of(what: &str, result: Result<(), Vec<String>>) -> Vec<String> {
    result.err().unwrap_or_else(|| panic!("{what} passed, but it is broken"))
}

fn assert_error_starts_with(errors: &[String], fragment: &str) {
    assert!(errors.iter().any(|e| e.starts_with(fragment)), "no error starting {fragment:?} in {errors:#?}");
}

// -----------------------------------------------------------------------------------------------------
// Tests
// -----------------------------------------------------------------------------------------------------

#[test]
fn every_operation_the_fake_serves_is_in_the_spec() {
    for (method, path) in [
        ("post", "/call"),
        ("get", "/call"),
        ("get", "/call/{id}"),
        ("patch", "/call/{id}"),
        ("delete", "/call/{id}"),
        ("post", "/assistant"),
        ("get", "/assistant"),
        ("get", "/assistant/{id}"),
        ("patch", "/assistant/{id}"),
        ("delete", "/assistant/{id}"),
        ("POST", "/phone-number"),
        ("GET", "/phone-number"),
        ("GET", "/phone-number/{id}"),
        ("PATCH", "/phone-number/{id}"),
        ("DELETE", "/phone-number/{id}"),
    ] {
        assert!(vapi_operation_exists(method, path), "{method} {path}");
    }
    assert!(!vapi_operation_exists("put", "/call/{id}"));
    assert!(!vapi_operation_exists("post", "/call/phone"), "legacy, gone from the spec");
}

#[test]
fn the_real_created_call_passes_and_strict_mode_knows_its_undocumented_keys() {
    let mut call = created_call();
    assert_valid("POST /call 201", validate_vapi_response("post", "/call", 201, &call));
    assert_valid("GET /call/{id} 200", validate_vapi_response("get", "/call/{id}", 200, &call));
    assert_valid("GET /call 200", validate_vapi_response("get", "/call", 200, &json!([call.clone()])));
    assert_valid("strict Call", strict_vapi().validate_component("Call", &call));

    call["phoneCallProviderBypassEnabled"] = json!(true);
    call["phoneCallProviderDetails"] =
        json!({"twiml": "<Response><Connect><Stream url=\"wss://fake/1/transport\"/></Connect></Response>"});
    assert_valid("strict bypass Call", strict_vapi().validate_response("post", "/call", 201, &call));

    call["phoneCallProviderBypasEnabled"] = json!(true);
    call["customer"]["nmber"] = json!("+14155550100");
    assert_valid("lenient Call with typos", validate_vapi_component("Call", &call));
    let errors = errors_of("a Call with typos", strict_vapi().validate_component("Call", &call));
    assert_eq!(
        errors,
        [
            "$.customer: unexpected property `nmber` (not in CreateCustomerDTO)",
            "$: unexpected property `phoneCallProviderBypasEnabled` (not in Call)",
        ]
    );
}

#[test]
fn the_real_tool_calls_message_and_its_response_pass() {
    assert_valid("tool-calls", validate_server_message(&tool_calls_message()));
    assert_valid(
        "strict tool-calls",
        strict_vapi().validate(
            &json!({"$ref": "#/components/schemas/ServerMessageToolCalls"}),
            &tool_calls_message()["message"],
        ),
    );
    let response = json!({"results": [{"toolCallId": CALL_TOOL_ID, "name": "transferToSpecialist", "result": "Transferring you now"}]});
    assert_valid("tool-calls response", validate_server_message_response("tool-calls", &response));
    let failed =
        json!({"results": [{"toolCallId": CALL_TOOL_ID, "name": "transferToSpecialist", "error": "busy"}]});
    assert_valid("tool-calls error response", validate_server_message_response("tool-calls", &failed));

    let nameless = json!({"results": [{"toolCallId": CALL_TOOL_ID, "result": "ok"}]});
    let errors =
        errors_of("a result without name", validate_server_message_response("tool-calls", &nameless));
    assert_eq!(errors, ["$.results[0]: missing required property `name`"]);
}

#[test]
fn status_updates_end_of_call_reports_and_other_messages_pass() {
    for status in ["queued", "ringing", "in-progress", "forwarding"] {
        assert_valid(status, validate_server_message(&status_update(status)));
    }
    let mut ended = status_update("ended");
    ended["message"]["endedReason"] = json!("assistant-forwarded-call");
    assert_valid("status-update ended", validate_server_message(&ended));
    assert_valid("end-of-call-report", validate_server_message(&end_of_call_report()));

    let call = live_call();
    let destination = json!({"type": "number", "number": "+14155550123", "callerId": "+14155550199"});
    for message in [
        json!({"type": "transfer-destination-request", "call": call}),
        json!({"type": "conversation-update", "call": call, "messages": [],
               "messagesOpenAIFormatted": [{"role": "user", "content": "Billing, please."}]}),
        json!({"type": "speech-update", "status": "started", "role": "assistant", "turn": 0, "call": call}),
        json!({"type": "hang", "call": call}),
        json!({"type": "transfer-update", "destination": destination, "call": call}),
        json!({"type": "phone-call-control", "request": "forward", "destination": destination, "call": call}),
        json!({"type": "phone-call-control", "request": "hang-up", "call": call}),
    ] {
        let what = message["type"].to_string();
        assert_valid(&what, validate_server_message(&json!({"message": message})));
    }

    let response = json!({
        "destination": {"type": "number", "number": "+14155550123",
                        "transferPlan": {"mode": "warm-transfer-experimental", "sipVerb": "refer",
                                         "fallbackPlan": {"message": "They're busy; I'm still here.", "endCallEnabled": false}}},
        "message": {"type": "request-start", "content": "Transferring you now"},
    });
    assert_valid(
        "transfer-destination-request response",
        validate_server_message_response("transfer-destination-request", &response),
    );
    let errors =
        errors_of("a status-update response", validate_server_message_response("status-update", &json!({})));
    assert_error_starts_with(&errors, "a `status-update` message expects no response body");
}

#[test]
fn control_messages_pass() {
    for body in [
        json!({"type": "say", "content": "Welcome to Vapi, this message was injected during the call.", "endCallAfterSpoken": false}),
        json!({"type": "add-message", "message": {"role": "system", "content": "The specialist is busy."}, "triggerResponseEnabled": true}),
        json!({"type": "control", "control": "mute-assistant"}),
        json!({"type": "end-call"}),
        json!({"type": "transfer", "destination": {"type": "number", "number": "+14155550123"}, "content": "Transferring you now"}),
        json!({"type": "send-transport-message", "message": {"transport": "twilio", "twiml": "<Response><Hangup/></Response>"}}),
    ] {
        assert_valid(&body["type"].to_string(), validate_client_inbound_message(&body));
    }
}

#[test]
fn broken_messages_fail_with_the_path_and_what_was_expected() {
    let errors = errors_of("status bogus", validate_server_message(&status_update("bogus")));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_error_starts_with(&errors, r#"$.message.status: "bogus" is not one of ["scheduled", "queued""#);

    let mut report = end_of_call_report();
    report["message"]["endedReason"] = json!("specialist-was-busy");
    let errors = errors_of("endedReason", validate_server_message(&report));
    assert_error_starts_with(&errors, r#"$.message.endedReason: "specialist-was-busy" is not one of ["#);
    assert!(errors[0].ends_with("(627 values)"), "{errors:#?}");

    report["message"]["artifact"]["transfers"][0]["status"] = json!("no_answer");
    report["message"]["timestamp"] = json!("1760000090000");
    report["message"]["call"].as_object_mut().unwrap().remove("id");
    report["message"].as_object_mut().unwrap().remove("analysis");
    let errors = errors_of("broken end-of-call-report", validate_server_message(&report));
    for fragment in [
        "$.message.timestamp: expected \"number\", got \"1760000090000\"",
        "$.message.call: missing required property `id`",
        "$.message.artifact.transfers[0].status: \"no_answer\" is not one of",
        "$.message: missing required property `analysis`",
    ] {
        assert_error_starts_with(&errors, fragment);
    }

    let errors = errors_of(
        "a Call without id",
        validate_vapi_response("get", "/call/{id}", 200, &{
            let mut call = created_call();
            call.as_object_mut().unwrap().remove("id");
            call
        }),
    );
    // The 201 body is a union of Call and CallBatchResponse: both branches are explained.
    let batch = errors_of(
        "a 201 without id",
        validate_vapi_response("post", "/call", 201, &{
            let mut call = created_call();
            call.as_object_mut().unwrap().remove("id");
            call
        }),
    );
    assert_eq!(errors, ["$: missing required property `id`"]);
    assert_eq!(
        batch,
        ["$: matches no `oneOf` branch: [Call] $: missing required property `id`; \
          [CallBatchResponse] $: missing required property `results` (+1 more)"]
    );
}

#[test]
fn unions_name_the_branch_that_was_meant_or_explain_every_branch() {
    let mut message = status_update("forwarding");
    message["message"]["destination"] = json!({"type": "phone", "number": "+14155550123"});
    let errors = errors_of("destination type", validate_server_message(&message));
    assert_eq!(errors, [r#"$.message.destination.type: "phone" is not one of ["number", "sip"]"#]);

    message["message"]["destination"] = json!({"type": "number", "number": "+1"});
    let errors = errors_of("destination number", validate_server_message(&message));
    assert_eq!(errors, ["$.message.destination.number: `+1` has 2 characters, expected 3 to 40"]);

    let plan = json!({"mode": "warm-transfer-experimental", "fallbackPlan": {"message": 42}});
    let errors = errors_of("fallback message", validate_vapi_component("TransferPlan", &plan));
    assert_eq!(
        errors,
        ["$.fallbackPlan.message: matches no `oneOf` branch: [#0 string] $.fallbackPlan.message: expected \
          \"string\", got 42; [CustomMessage] $.fallbackPlan.message: expected \"object\", got 42"]
    );

    let errors =
        errors_of("unknown type", validate_server_message(&json!({"message": {"type": "function-call"}})));
    assert_error_starts_with(
        &errors,
        "`function-call` is not a ServerMessage type; the spec has \"assistant-request\"",
    );
    let errors = errors_of("no type", validate_server_message(&json!({"message": {"status": "queued"}})));
    assert_eq!(errors, ["$.message: missing `type`, which names the kind of server message"]);
    let errors =
        errors_of("control", validate_client_inbound_message(&json!({"type": "control", "control": "mute"})));
    assert_error_starts_with(&errors, r#"$.control: "mute" is not one of ["mute-assistant""#);
}

#[test]
fn the_ended_reasons_file_is_the_call_ended_reason_enum() {
    let path = fixture("vapi-ended-reasons.txt");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let file: Vec<Value> = text.lines().map(Value::from).collect();
    let schemas = &vapi_spec()["components"]["schemas"];
    let call = &schemas["Call"]["properties"]["endedReason"]["enum"];
    assert_eq!(call.as_array().unwrap(), &file, "regenerate {} from the spec", path.display());
    for message in ["ServerMessageStatusUpdate", "ServerMessageEndOfCallReport"] {
        assert_eq!(&schemas[message]["properties"]["endedReason"]["enum"], call, "{message}");
    }
    for reason in [
        "assistant-forwarded-call",
        "customer-ended-call",
        "customer-busy",
        "customer-did-not-answer",
        "voicemail",
        "phone-call-provider-closed-websocket",
        "call.in-progress.error-transfer-failed",
        "phone-call-provider-bypass-enabled-but-no-call-received",
    ] {
        assert!(file.contains(&Value::from(reason)), "{reason}");
    }
}

#[test]
fn the_spec_corrections_accept_what_vapi_sends() {
    let plan = json!({"mode": "blind-transfer", "sipVerb": "dial"});
    assert_valid("sipVerb", validate_vapi_component("TransferPlan", &plan));
    let backoff = json!({"type": "exponential", "maxRetries": 3, "baseDelaySeconds": 1, "excludedStatusCodes": [400, 401]});
    assert_valid(
        "backoffPlan",
        validate_vapi_component("Server", &json!({"url": "https://x.example", "backoffPlan": backoff})),
    );
    let call = |arguments: Value| json!({"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}});
    assert_valid("object arguments", validate_vapi_component("ToolCall", &call(json!({"a": 1}))));
    assert_valid("string arguments", validate_vapi_component("ToolCall", &call(json!("{\"a\":1}"))));
    assert!(validate_vapi_component("ToolCall", &call(json!(1))).is_err());
}

#[test]
fn assistants_and_twilio_phone_numbers_pass() {
    let transfer_tool = json!({
        "type": "transferCall",
        "destinations": [{
            "type": "number",
            "number": "+14155550123",
            "message": "Transferring you to billing.",
            "transferPlan": {"mode": "warm-transfer-experimental",
                             "fallbackPlan": {"message": "They're busy; I'm still here.", "endCallEnabled": false}},
        }],
    });
    let create = json!({
        "name": "Riley",
        "firstMessage": "Hi, this is Riley.",
        "firstMessageMode": "assistant-speaks-first",
        "model": {"provider": "openai", "model": "gpt-4o", "temperature": 0.3,
                  "messages": [{"role": "system", "content": "You route callers."}],
                  "tools": [transfer_tool]},
        "voice": {"provider": "11labs", "voiceId": "burt"},
        "transcriber": {"provider": "deepgram", "model": "nova-2", "language": "en"},
        "serverMessages": ["tool-calls", "status-update", "end-of-call-report", "transfer-destination-request"],
        "server": {"url": "https://orchestrator.example/vapi", "timeoutSeconds": 20},
        "monitorPlan": {"controlEnabled": true, "listenEnabled": true},
    });
    assert_valid("CreateAssistantDTO", validate_vapi_component("CreateAssistantDTO", &create));
    assert_valid(
        "UpdateAssistantDTO",
        validate_vapi_component("UpdateAssistantDTO", &json!({"firstMessage": "Hello again."})),
    );
    let mut assistant = create.clone();
    for (key, value) in [
        ("id", json!("7d3ee5f1-0e4f-4b1c-9d0a-4f2b6c1e8a90")),
        ("orgId", json!("0c8e6e7a-1b2c-4d3e-8f40-5a6b7c8d9e0f")),
        ("createdAt", json!("2026-03-24T17:00:00.000Z")),
        ("updatedAt", json!("2026-03-24T17:00:00.000Z")),
    ] {
        assistant[key] = value;
    }
    assert_valid(
        "POST /assistant 201",
        strict_vapi().validate_response("post", "/assistant", 201, &assistant),
    );
    assert_valid(
        "GET /assistant/{id} 200",
        validate_vapi_response("get", "/assistant/{id}", 200, &assistant),
    );

    let mut bad = create;
    bad["model"]["tools"][0]["destinations"][0]["transferPlan"]["mode"] = json!("warm-transfer-with-summary");
    let errors = errors_of("a stale mode", validate_vapi_component("CreateAssistantDTO", &bad));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_error_starts_with(
        &errors,
        r#"$.model.tools[0].destinations[0].transferPlan.mode: "warm-transfer-with-summary" is not one of"#,
    );

    let account = format!("AC{}", "0".repeat(32));
    let import = json!({"provider": "twilio", "number": "+14155550199", "twilioAccountSid": account,
                        "twilioAuthToken": "token", "name": "Main line"});
    let create_body = &vapi_spec()["paths"]["/phone-number"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    assert_valid("POST /phone-number body", strict_vapi().validate(create_body, &import));
    let mut number = import;
    for (key, value) in [
        ("id", json!("5b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9")),
        ("orgId", json!("0c8e6e7a-1b2c-4d3e-8f40-5a6b7c8d9e0f")),
        ("createdAt", json!("2026-03-24T17:00:00.000Z")),
        ("updatedAt", json!("2026-03-24T17:00:00.000Z")),
        ("status", json!("active")),
        ("assistantId", json!("7d3ee5f1-0e4f-4b1c-9d0a-4f2b6c1e8a90")),
    ] {
        number[key] = value;
    }
    assert_valid(
        "POST /phone-number 201",
        strict_vapi().validate_response("post", "/phone-number", 201, &number),
    );
    assert_valid(
        "GET /phone-number 200",
        validate_vapi_response("get", "/phone-number", 200, &json!([number])),
    );
}
