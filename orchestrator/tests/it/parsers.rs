//! Property tests of how the orchestrator reads Vapi's server messages, on arbitrary bytes and on
//! mutations of real messages: no panic, a clear error naming the field at fault, and over its router a
//! 400 with that error, never a 5xx. The `vapi_message` fuzz target calls the same function.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;
use ringback_orchestrator::config::Config;
use ringback_orchestrator::http::{ApiRequest, ApiResponse, HttpClient, HttpFuture};
use ringback_orchestrator::server::{MAX_BODY_BYTES, Orchestrator};
use ringback_orchestrator::store::MemoryStore;
use ringback_orchestrator::vapi::{MessageError, ServerMessage};
use ringback_testkit::{byte_edits, json_value, replace_somewhere};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Real server messages, trimmed: the types the orchestrator acts on.
fn messages() -> Vec<Value> {
    let call = json!({"id": "6a5b1c2d-0000-4000-8000-000000000001", "status": "in-progress"});
    let artifact =
        json!({"messages": [{"role": "bot", "message": "Hi"}, {"role": "user", "message": "sales please"}]});
    vec![
        json!({"message": {"type": "tool-calls", "timestamp": 1_700_000_000_000_u64, "call": call, "artifact": artifact,
            "toolCallList": [{"id": "call_abc", "type": "function",
                              "function": {"name": "transfer_to_specialist", "arguments": {"department": "sales"}}}],
            "toolWithToolCallList": [{"type": "function", "toolCall": {"id": "call_abc", "function": {"name": "x", "arguments": "{\"department\":\"sales\"}"}}}]}}),
        json!({"message": {"type": "transfer-destination-request", "timestamp": 1, "call": call,
                           "destination": {"type": "number", "number": "+15550000201"}}}),
        json!({"message": {"type": "phone-call-control", "request": "forward", "call": call,
                           "destination": {"type": "sip", "sipUri": "sip:a@b.test"}}}),
        json!({"message": {"type": "status-update", "status": "ended", "endedReason": "customer-ended-call", "call": call}}),
        json!({"message": {"type": "end-of-call-report", "call": call, "artifact": artifact}}),
        json!({"message": {"type": "conversation-update", "call": call, "messages": [{"role": "assistant", "content": "ok"}]}}),
    ]
}

/// The body a case sends: a real message with one value replaced, perhaps with its bytes edited.
fn body() -> impl Strategy<Value = Vec<u8>> {
    (0..messages().len(), any::<Index>(), json_value(), proptest::option::of(byte_edits())).prop_map(
        |(sample, pick, replacement, edits)| {
            let mut message = messages().swap_remove(sample);
            replace_somewhere(&mut message, pick, replacement);
            let bytes = message.to_string().into_bytes();
            match edits {
                Some(edits) => edits.apply(&bytes),
                None => bytes,
            }
        },
    )
}

fn check_error(body: &[u8], error: &MessageError) -> Result<(), TestCaseError> {
    match error {
        MessageError::NotJson(reason) => {
            prop_assert!(serde_json::from_slice::<Value>(body).is_err(), "{error}");
            prop_assert!(reason.contains("line"), "{error}");
        }
        MessageError::Field { path, expected, .. } => {
            prop_assert!(["message", "message.type"].contains(path), "{error}");
            prop_assert!(!expected.is_empty());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_read_or_refused_with_the_reason(input in proptest::collection::vec(any::<u8>(), 0..128)) {
        if let Err(e) = ServerMessage::parse(&input) {
            check_error(&input, &e)?;
        }
    }

    #[test]
    fn a_mutated_server_message_is_read_or_refused_naming_the_field_at_fault(body in body()) {
        match ServerMessage::parse(&body) {
            Ok(message) => prop_assert!(!message.kind.is_empty() || body.windows(6).any(|w| w == b"\"type\"")),
            Err(e) => check_error(&body, &e)?,
        }
    }
}

/// Answers every API request with a 503, as an unreachable vendor would.
#[derive(Debug)]
struct Unavailable;

impl HttpClient for Unavailable {
    fn send(&self, _request: ApiRequest) -> HttpFuture {
        Box::pin(std::future::ready(Ok(ApiResponse { status: 503, body: Bytes::new() })))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_malformed_server_message_gets_a_400_and_never_a_5xx(body in body()) {
        let config = Config::for_tests("http://orchestrator.test", &["sales=+15550000201"]);
        let orchestrator = Orchestrator::new(config, Arc::new(Unavailable), Arc::new(MemoryStore::new()));
        let request = http::Request::post("/vapi/webhook")
            .header("content-type", "application/json")
            .header("x-vapi-secret", "test-webhook-secret")
            .body(Body::from(body.clone()))
            .expect("request");
        let (status, text) = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(async {
            let response = orchestrator.router().oneshot(request).await.expect("infallible");
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
            (status, String::from_utf8_lossy(&bytes).into_owned())
        });
        let sent = String::from_utf8_lossy(&body);
        prop_assert!(status < 500, "{sent} → {status} {text}");
        match ServerMessage::parse(&body) {
            Ok(_) => prop_assert_eq!(status, 200, "{} → {}", sent, text),
            Err(e) => prop_assert_eq!((status, text), (400, e.to_string())),
        }
    }
}

#[test]
fn a_long_calls_report_is_read_and_a_body_past_the_bound_is_refused() {
    let config = Config::for_tests("http://orchestrator.test", &["sales=+15550000201"]);
    let orchestrator = Orchestrator::new(config, Arc::new(Unavailable), Arc::new(MemoryStore::new()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let post = |transcript: usize| {
        // An end-of-call-report for a call the orchestrator never saw, with a transcript of that size.
        let body = json!({"message": {"type": "end-of-call-report", "endedReason": "customer-ended-call",
            "call": {"id": "vapi-call-1"}, "artifact": {"transcript": "AI: Hello.\n".repeat(transcript / 11)}}});
        let request = http::Request::post("/vapi/webhook")
            .header("content-type", "application/json")
            .header("x-vapi-secret", "test-webhook-secret")
            .body(Body::from(body.to_string()))
            .expect("request");
        runtime.block_on(async {
            orchestrator.router().oneshot(request).await.expect("infallible").status().as_u16()
        })
    };
    assert_eq!(post(1 << 20), 200, "a report of a megabyte, as a long call's can be");
    assert_eq!(post(MAX_BODY_BYTES + 1), 413);
}

#[test]
fn a_message_without_its_type_names_the_field_and_what_was_expected() {
    let error = ServerMessage::parse(br#"{"message": {"type": 7}}"#).expect_err("a number");
    assert_eq!(error.to_string(), "`message.type` is a number; expected a string such as \"tool-calls\"");
    let error = ServerMessage::parse(br#"{"type": "tool-calls"}"#).expect_err("no envelope");
    assert_eq!(error.to_string(), "`message` is missing; expected the server message object");
    let error = ServerMessage::parse(b"{\"message\": ").expect_err("cut short");
    assert!(error.to_string().contains("line 1 column 12"), "{error}");
}
