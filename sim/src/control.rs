//! The control API under `/_ringback/`: what a developer does by hand with `ringback serve` (and, later,
//! what `ringback call …` uses): dial a Twilio number as a caller, press keys, hang up, set how a phone
//! behaves, read the timeline. JSON in (whatever the `Content-Type`, so plain `curl -d` works) and out;
//! errors are `{"error": "…"}` with a 4xx status.

use axum::extract::{Path, State};
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
        .route("/_ringback/calls", post(place_call))
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

/// `GET /_ringback/timeline`: the journal, one event per line.
async fn timeline(State(sim): State<SharedSim>) -> String {
    sim.world().journal().timeline()
}
