//! The fake Vapi's HTTP API as an axum router: every route is an operation of Vapi's spec (plus the
//! `/twilio/*` webhooks and the monitor control URL the real service also serves), authenticated with
//! `Authorization: Bearer <private key>`, answering Vapi's JSON and NestJS error bodies. Every exchange
//! is journaled.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use crate::journal::Party;
use crate::runtime::SharedSim;
use crate::twilio::wire::FormParams;
use crate::vapi::calls::ListQuery;
use crate::vapi::errors::VapiError;
use crate::world::World;

/// The fake Vapi over `sim`.
pub fn router(sim: SharedSim) -> Router {
    Router::new()
        .route("/call", post(create_call).get(list_calls))
        .route("/call/{id}", get(get_call).patch(update_call).delete(delete_call))
        .route("/assistant", post(create_assistant).get(list_assistants))
        .route("/assistant/{id}", get(get_assistant).patch(update_assistant).delete(delete_assistant))
        .route("/phone-number", post(create_number).get(list_numbers))
        .route("/phone-number/{id}", get(get_number).patch(update_number))
        .route("/twilio/inbound_call", post(inbound_call))
        .route("/twilio/status", post(twilio_status))
        .route("/twilio/amd", post(twilio_status))
        .route("/{id}/control", post(control))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(sim.clone(), journal))
        .with_state(sim)
}

type Reply = Result<Response, VapiError>;

/// A resource id from the path: every `{id}` of the spec is `format: uuid`, and Vapi (NestJS's
/// `ParseUUIDPipe`) answers 400 before any lookup when it is not one.
struct Id(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Id {
    type Rejection = VapiError;

    async fn from_request_parts(parts: &mut http::request::Parts, state: &S) -> Result<Self, VapiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| VapiError::bad_request(e.body_text()))?;
        match uuid::Uuid::try_parse(&id) {
            Ok(_) => Ok(Id(id)),
            Err(_) => Err(VapiError::bad_request("Validation failed (uuid is expected)")),
        }
    }
}

/// Checks the bearer key, then runs `f` on the world.
fn authed<T>(
    sim: &SharedSim,
    headers: &HeaderMap,
    f: impl FnOnce(&mut World) -> Result<T, VapiError>,
) -> Result<T, VapiError> {
    let key = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    sim.with(|w| {
        if !key.is_some_and(|k| w.vapi.api_keys.iter().any(|known| known == k)) {
            return Err(VapiError::unauthorized());
        }
        f(w)
    })
}

/// A JSON body, or NestJS's 400 for a body that is not JSON. An empty body is `{}`.
pub(crate) fn json(body: &[u8]) -> Result<Value, VapiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(body).map_err(|e| VapiError::bad_request(format!("Unexpected token in JSON: {e}")))
}

fn query(raw: Option<String>) -> Result<ListQuery, VapiError> {
    let params = FormParams::parse(raw.unwrap_or_default().as_bytes())
        .map_err(|e| VapiError::bad_request(format!("malformed query string: {e}")))?;
    Ok(ListQuery { pairs: params.pairs().to_vec() })
}

fn created(body: Value) -> Response {
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn create_call(State(sim): State<SharedSim>, headers: HeaderMap, body: Bytes) -> Reply {
    authed(&sim, &headers, |w| w.create_vapi_call(json(&body)?)).map(created)
}

async fn list_calls(State(sim): State<SharedSim>, headers: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    authed(&sim, &headers, |w| w.list_vapi_calls(&query(q)?)).map(ok)
}

async fn get_call(State(sim): State<SharedSim>, Id(id): Id, headers: HeaderMap) -> Reply {
    authed(&sim, &headers, |w| w.get_vapi_call(&id)).map(ok)
}

async fn update_call(State(sim): State<SharedSim>, Id(id): Id, headers: HeaderMap, body: Bytes) -> Reply {
    authed(&sim, &headers, |w| w.update_vapi_call(&id, json(&body)?)).map(ok)
}

async fn delete_call(State(sim): State<SharedSim>, Id(id): Id, headers: HeaderMap) -> Reply {
    authed(&sim, &headers, |w| w.delete_vapi_call(&id)).map(ok)
}

async fn create_assistant(State(sim): State<SharedSim>, headers: HeaderMap, body: Bytes) -> Reply {
    authed(&sim, &headers, |w| w.create_assistant(json(&body)?)).map(created)
}

async fn list_assistants(State(sim): State<SharedSim>, headers: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    authed(&sim, &headers, |w| w.list_assistants(&query(q)?)).map(ok)
}

async fn get_assistant(State(sim): State<SharedSim>, Id(id): Id, headers: HeaderMap) -> Reply {
    authed(&sim, &headers, |w| w.get_assistant(&id)).map(ok)
}

async fn update_assistant(
    State(sim): State<SharedSim>,
    Id(id): Id,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    authed(&sim, &headers, |w| w.update_assistant(&id, json(&body)?)).map(ok)
}

async fn delete_assistant(State(sim): State<SharedSim>, Id(id): Id, headers: HeaderMap) -> Reply {
    authed(&sim, &headers, |w| w.delete_assistant(&id)).map(ok)
}

async fn create_number(State(sim): State<SharedSim>, headers: HeaderMap, body: Bytes) -> Reply {
    authed(&sim, &headers, |w| w.import_number(json(&body)?)).map(created)
}

async fn list_numbers(State(sim): State<SharedSim>, headers: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    authed(&sim, &headers, |w| w.list_numbers_vapi(&query(q)?)).map(ok)
}

async fn get_number(State(sim): State<SharedSim>, Id(id): Id, headers: HeaderMap) -> Reply {
    authed(&sim, &headers, |w| w.get_number(&id)).map(ok)
}

async fn update_number(State(sim): State<SharedSim>, Id(id): Id, headers: HeaderMap, body: Bytes) -> Reply {
    authed(&sim, &headers, |w| w.update_number_vapi(&id, json(&body)?)).map(ok)
}

/// Twilio's voice webhook for imported numbers (form-encoded, no bearer: Twilio calls it).
async fn inbound_call(State(sim): State<SharedSim>, body: Bytes) -> Reply {
    let form =
        FormParams::parse(&body).map_err(|e| VapiError::bad_request(format!("malformed form body: {e}")))?;
    let twiml = sim.with(|w| w.inbound_call(&form))?;
    Ok(([(http::header::CONTENT_TYPE, "text/xml")], twiml).into_response())
}

/// Twilio's status callbacks arrive in process; over HTTP the route only acknowledges them.
async fn twilio_status() -> StatusCode {
    StatusCode::OK
}

/// `monitor.controlUrl`. Unauthenticated unless the assistant's `monitorPlan` turns
/// `controlAuthenticationEnabled` on, as the spec's `MonitorPlan` says.
async fn control(State(sim): State<SharedSim>, Id(id): Id, headers: HeaderMap, body: Bytes) -> Reply {
    let needs_key = sim.with(|w| {
        w.vapi_call(&id).is_some_and(|c| {
            c.assistant.get("monitorPlan").and_then(|p| p.get("controlAuthenticationEnabled"))
                == Some(&Value::Bool(true))
        })
    });
    let run = |w: &mut World| w.control_call(&id, json(&body)?);
    if needs_key { authed(&sim, &headers, run) } else { sim.with(run) }.map(ok)
}

async fn not_found(method: http::Method, uri: http::Uri) -> VapiError {
    VapiError::not_found(format!("Cannot {method} {}", uri.path()))
}

async fn journal(State(sim): State<SharedSim>, request: Request, next: Next) -> Response {
    let too_large = || VapiError::bad_request("request entity too large").into_response();
    crate::http_journal::record(&sim, Party::Vapi, too_large, request, next).await
}
