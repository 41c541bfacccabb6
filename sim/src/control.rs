//! The control API under `/_ringback/`: what a developer does by hand with `ringback serve` (and what
//! `ringback call …` uses): dial a Twilio number as a caller, speak as the caller, press keys, hang up,
//! set how a phone behaves, list the calls and the conferences they are in, read the timeline (all of it,
//! or the lines after one already read). JSON in (whatever the `Content-Type`, so plain `curl -d` works) and out;
//! errors are `{"error": "…"}` with a 4xx status.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;

use crate::ids::CallSid;
use crate::phone::Behaviour;
use crate::runtime::SharedSim;

/// The control API over `sim`, to be merged into a fake's router.
pub fn router(sim: SharedSim) -> Router {
    Router::new()
        .route("/_ringback/calls", post(place_call).get(list_calls))
        .route("/_ringback/calls/{sid}/say", post(say))
        .route("/_ringback/calls/{sid}/hangup", post(hang_up))
        .route("/_ringback/calls/{sid}/digits", post(press))
        .route("/_ringback/phones/{number}", put(set_phone))
        .route("/_ringback/timeline", get(timeline))
        .with_state(sim)
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct After {
    /// Only the lines after this journal sequence number.
    #[serde(default)]
    after: u64,
}

/// A refused control request: its status and what was wrong.
#[derive(Debug)]
struct ControlError(StatusCode, String);

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    ControlError(status, message.into()).into_response()
}

fn parse_sid(sid: &str) -> Result<CallSid, ControlError> {
    sid.parse().map_err(|e: crate::ids::InvalidSid| ControlError(StatusCode::BAD_REQUEST, e.to_string()))
}

/// `POST /_ringback/calls {"from": "+1555…", "to": "<a Twilio number>"}`: a caller dials a number.
async fn place_call(State(sim): State<SharedSim>, body: Bytes) -> Response {
    let call: PlaceCall = match serde_json::from_slice(&body) {
        Ok(call) => call,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("expected {{\"from\", \"to\"}}: {e}")),
    };
    match sim.with(|w| w.place_inbound_call(&call.from, &call.to)) {
        Ok(sid) => (StatusCode::CREATED, Json(serde_json::json!({ "call_sid": sid }))).into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, e),
    }
}

/// `GET /_ringback/calls`: every call leg, oldest first, with its status and the conference it is in.
async fn list_calls(State(sim): State<SharedSim>) -> Json<serde_json::Value> {
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
    Json(serde_json::Value::Array(calls))
}

/// `POST /_ringback/calls/{sid}/say {"text": "…"}`: the caller says something to the assistant on the line.
async fn say(State(sim): State<SharedSim>, Path(sid): Path<String>, body: Bytes) -> Response {
    let sid = match parse_sid(&sid) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let words = match serde_json::from_slice::<Words>(&body) {
        Ok(w) if !w.text.trim().is_empty() => w,
        _ => return error(StatusCode::BAD_REQUEST, "expected {\"text\": \"…\"} with something to say"),
    };
    let known = sim.world().leg(sid).is_some();
    match sim.with(|w| w.caller_says(sid, &words.text)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) if !known => error(StatusCode::NOT_FOUND, e),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

/// `POST /_ringback/calls/{sid}/hangup`: the far end of the call hangs up.
async fn hang_up(State(sim): State<SharedSim>, Path(sid): Path<String>) -> Response {
    let sid = match parse_sid(&sid) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let known = sim.with(|w| {
        let known = w.leg(sid).is_some();
        w.remote_hangup(sid);
        known
    });
    if known {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no call {sid}"))
    }
}

/// `POST /_ringback/calls/{sid}/digits {"digits": "1#"}`: the far end presses keys.
async fn press(State(sim): State<SharedSim>, Path(sid): Path<String>, body: Bytes) -> Response {
    let sid = match parse_sid(&sid) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let Ok(Digits { digits }) = serde_json::from_slice(&body) else {
        return error(StatusCode::BAD_REQUEST, "expected {\"digits\": \"…\"} with keys 0-9, *, #, A-D");
    };
    if let Some(bad) = digits.chars().find(|c| !(c.is_ascii_digit() || "*#ABCD".contains(*c))) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{bad}` is not a phone key: expected 0-9, *, #, A-D"),
        );
    }
    let known = sim.with(|w| {
        let known = w.leg(sid).is_some();
        for d in digits.chars() {
            w.press(sid, d);
        }
        known
    });
    if known {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no call {sid}"))
    }
}

/// `PUT /_ringback/phones/{number} {"answer": "busy"}`: how a phone behaves from now on.
async fn set_phone(State(sim): State<SharedSim>, Path(number): Path<String>, body: Bytes) -> Response {
    match serde_json::from_slice::<Behaviour>(&body) {
        Ok(behaviour) => {
            sim.with(|w| w.phones_mut().set(number, behaviour));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            format!("expected a phone behaviour such as {{\"answer\": \"busy\"}}: {}", e),
        ),
    }
}

/// `GET /_ringback/timeline[?after=N]`: the journal, one event per line (only the lines after sequence
/// number `N`, to follow it as it grows).
async fn timeline(State(sim): State<SharedSim>, Query(After { after }): Query<After>) -> String {
    let world = sim.world();
    let mut out = String::new();
    for entry in world.journal().entries().iter().filter(|e| e.seq > after) {
        out.push_str(&crate::journal::TimelineLine(entry).to_string());
        out.push('\n');
    }
    out
}
