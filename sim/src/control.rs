//! The control API under `/_ringback/`: what a developer does by hand with `ringback serve` (and what
//! `ringback call …` uses): dial a Twilio number as a caller, speak as the caller, press keys, hang up,
//! set how a phone behaves, list the calls and the conferences they are in, read the timeline (all of it,
//! or the lines after one already read). JSON in (whatever the `Content-Type`, so plain `curl -d` works) and out;
//! errors are `{"error": "…"}` with a 4xx status.

use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;

use crate::ids::CallSid;
use crate::phone::Behaviour;
use crate::runtime::SharedSim;
use crate::twilio::wire::FormParams;

/// The most keys one `digits` request presses: as many as Twilio's `SendDigits` takes (an assumption
/// that the same bound suits a person at a keypad).
pub const MAX_DIGITS: usize = 32;

/// The control API over `sim`, to be merged into a fake's router. Everything under `/_ringback/` is read
/// by [`ControlRequest::parse`], which holds the one table of routes and methods, then performed.
pub fn router(sim: SharedSim) -> Router {
    Router::new().route("/_ringback/{*request}", any(handle)).with_state(sim)
}

/// One control request, read from its method, path, query and body before anything is done with it.
#[derive(Clone, Debug, PartialEq)]
pub enum ControlRequest {
    /// `POST /_ringback/calls {"from": "+1555…", "to": "<a Twilio number>"}`: a caller dials a number.
    PlaceCall { from: String, to: String },
    /// `GET /_ringback/calls`: every call leg, oldest first, with its status and the conference it is in.
    ListCalls,
    /// `POST /_ringback/calls/{sid}/say {"text": "…"}`: the caller says something to the assistant.
    Say { call: CallSid, text: String },
    /// `POST /_ringback/calls/{sid}/hangup`: the far end of the call hangs up.
    HangUp { call: CallSid },
    /// `POST /_ringback/calls/{sid}/digits {"digits": "1#"}`: the far end presses keys.
    Press { call: CallSid, digits: String },
    /// `PUT /_ringback/phones/{number} {"answer": "busy"}`: how a phone behaves from now on.
    SetPhone { number: String, behaviour: Behaviour },
    /// `GET /_ringback/timeline[?after=N]`: the journal, one event per line (only the lines after
    /// sequence number `N`, to follow it as it grows).
    Timeline { after: u64 },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceCall {
    from: String,
    to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Digits {
    digits: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Words {
    text: String,
}

/// A refused control request: its status and what was wrong, answered as `{"error": "…"}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ControlError {
    pub status: StatusCode,
    pub message: String,
}

impl ControlError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ControlError { status, message: message.into() }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        ControlError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

/// A JSON body as `T`; the error names what was expected and where the body went wrong (serde's line,
/// column and field).
fn body<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, ControlError> {
    serde_json::from_slice(body).map_err(|e| ControlError::bad_request(format!("expected {expected}: {e}")))
}

fn call_sid(segment: &str) -> Result<CallSid, ControlError> {
    segment.parse().map_err(|e: crate::ids::InvalidSid| ControlError::bad_request(e.to_string()))
}

impl ControlRequest {
    /// Reads a control request. Path segments are percent-decoded (`%2B1555…`); bodies are JSON whatever
    /// the `Content-Type`. A malformed request is a 4xx [`ControlError`] that says what was expected.
    /// Never panics.
    pub fn parse(method: &Method, uri: &Uri, body_bytes: &[u8]) -> Result<ControlRequest, ControlError> {
        let path = uri.path();
        let not_found = || ControlError::new(StatusCode::NOT_FOUND, format!("no control route {path}"));
        let segments: Vec<&str> =
            path.strip_prefix("/_ringback/").ok_or_else(not_found)?.split('/').collect();
        let decoded = |segment: &str| {
            percent_encoding::percent_decode_str(segment).decode_utf8().map(|s| s.into_owned()).map_err(
                |_| ControlError::bad_request(format!("`{segment}` is not UTF-8 once percent-decoded")),
            )
        };
        let allow = |allowed: &[Method]| {
            if allowed.contains(method) {
                Ok(())
            } else {
                let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
                Err(ControlError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("{method} {path} is not a control request; expected {}", names.join(" or ")),
                ))
            }
        };
        let request = match segments.as_slice() {
            ["calls"] => {
                allow(&[Method::GET, Method::POST])?;
                if method == Method::GET {
                    return Ok(ControlRequest::ListCalls);
                }
                let PlaceCall { from, to } = body(body_bytes, "{\"from\", \"to\"}")?;
                ControlRequest::PlaceCall { from, to }
            }
            ["calls", sid, "say"] => {
                allow(&[Method::POST])?;
                let call = call_sid(&decoded(sid)?)?;
                let Words { text } = body(body_bytes, "{\"text\": \"…\"}")?;
                if text.trim().is_empty() {
                    return Err(ControlError::bad_request(
                        "`text` is empty; expected {\"text\": \"…\"} with something to say",
                    ));
                }
                ControlRequest::Say { call, text }
            }
            ["calls", sid, "hangup"] => {
                allow(&[Method::POST])?;
                ControlRequest::HangUp { call: call_sid(&decoded(sid)?)? }
            }
            ["calls", sid, "digits"] => {
                allow(&[Method::POST])?;
                let call = call_sid(&decoded(sid)?)?;
                let Digits { digits } = body(body_bytes, "{\"digits\": \"…\"} with keys 0-9, *, #, A-D")?;
                if let Some(bad) = digits.chars().find(|c| !(c.is_ascii_digit() || "*#ABCD".contains(*c))) {
                    return Err(ControlError::bad_request(format!(
                        "`{bad}` is not a phone key: expected 0-9, *, #, A-D in `digits`"
                    )));
                }
                if digits.is_empty() || digits.len() > MAX_DIGITS {
                    return Err(ControlError::bad_request(format!(
                        "`digits` has {} keys; expected 1 to {MAX_DIGITS}",
                        digits.len()
                    )));
                }
                ControlRequest::Press { call, digits }
            }
            ["phones", number] => {
                allow(&[Method::PUT])?;
                let number = decoded(number)?;
                if number.trim().is_empty() {
                    return Err(ControlError::bad_request("the phone number in the path is empty"));
                }
                let behaviour = body(body_bytes, "a phone behaviour such as {\"answer\": \"busy\"}")?;
                ControlRequest::SetPhone { number, behaviour }
            }
            ["timeline"] => {
                allow(&[Method::GET])?;
                let query = FormParams::parse(uri.query().unwrap_or_default().as_bytes())
                    .map_err(|e| ControlError::bad_request(format!("malformed query string: {e}")))?;
                if let Some((name, _)) = query.pairs().iter().find(|(name, _)| name != "after") {
                    return Err(ControlError::bad_request(format!(
                        "unknown query parameter `{name}`; expected only `after`"
                    )));
                }
                let after = match query.get("after") {
                    None => 0,
                    Some(raw) => raw.trim().parse().map_err(|_| {
                        ControlError::bad_request(format!(
                            "`after` is {raw:?}; expected a journal sequence number, 0 or more"
                        ))
                    })?,
                };
                ControlRequest::Timeline { after }
            }
            _ => return Err(not_found()),
        };
        Ok(request)
    }
}

async fn handle(State(sim): State<SharedSim>, method: Method, uri: Uri, body: Bytes) -> Response {
    match ControlRequest::parse(&method, &uri, &body) {
        Ok(request) => perform(&sim, request),
        Err(e) => e.into_response(),
    }
}

/// Does what a request asks.
fn perform(sim: &SharedSim, request: ControlRequest) -> Response {
    let error = |status, message: String| ControlError::new(status, message).into_response();
    match request {
        ControlRequest::PlaceCall { from, to } => match sim.with(|w| w.place_inbound_call(&from, &to)) {
            Ok(sid) => (StatusCode::CREATED, Json(serde_json::json!({ "call_sid": sid }))).into_response(),
            Err(e) => error(StatusCode::NOT_FOUND, e),
        },
        ControlRequest::ListCalls => {
            let world = sim.world();
            let calls: Vec<serde_json::Value> = world
                .legs()
                .map(|leg| {
                    serde_json::json!({
                        "call_sid": leg.sid,
                        "parent_call_sid": leg.parent,
                        "direction": leg.direction.as_str(),
                        "from": leg.from,
                        "to": leg.to,
                        "status": leg.state.resource_status().as_str(),
                        "conference_sid": world.conference_of(leg.sid),
                    })
                })
                .collect();
            Json(serde_json::Value::Array(calls)).into_response()
        }
        ControlRequest::Say { call, text } => {
            let known = sim.world().leg(call).is_some();
            match sim.with(|w| w.caller_says(call, &text)) {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) if !known => error(StatusCode::NOT_FOUND, e),
                Err(e) => error(StatusCode::CONFLICT, e),
            }
        }
        ControlRequest::HangUp { call } => {
            let known = sim.with(|w| {
                let known = w.leg(call).is_some();
                w.remote_hangup(call);
                known
            });
            match known {
                true => StatusCode::NO_CONTENT.into_response(),
                false => error(StatusCode::NOT_FOUND, format!("no call {call}")),
            }
        }
        ControlRequest::Press { call, digits } => {
            let known = sim.with(|w| {
                let known = w.leg(call).is_some();
                for d in digits.chars() {
                    w.press(call, d);
                }
                known
            });
            match known {
                true => StatusCode::NO_CONTENT.into_response(),
                false => error(StatusCode::NOT_FOUND, format!("no call {call}")),
            }
        }
        ControlRequest::SetPhone { number, behaviour } => {
            sim.with(|w| w.phones_mut().set(number, behaviour));
            StatusCode::NO_CONTENT.into_response()
        }
        ControlRequest::Timeline { after } => {
            let world = sim.world();
            let mut out = String::new();
            for entry in world.journal().entries().iter().filter(|e| e.seq > after) {
                out.push_str(&crate::journal::TimelineLine(entry).to_string());
                out.push('\n');
            }
            out.into_response()
        }
    }
}
