//! The fake Twilio's REST API as an axum router: every route is an operation of the spec file
//! (`/2010-04-01/Accounts/{AccountSid}/…json`), authenticated with HTTP Basic, answering Twilio's JSON
//! and error bodies. Every exchange is journaled.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::ids::{AccountSid, CallSid, PhoneNumberSid};
use crate::journal::Party;
use crate::runtime::SharedSim;
use crate::twilio::errors::TwilioError;
use crate::twilio::wire::{TwilioForm, TwilioQuery};
use crate::world::World;

const A: &str = "/2010-04-01/Accounts/{account}";

/// The REST API over `sim`.
pub fn router(sim: SharedSim) -> Router {
    let routes = Router::new()
        .route(&format!("{A}/Calls.json"), post(create_call).get(list_calls))
        .route(&format!("{A}/Calls/{{sid}}"), get(fetch_call).post(update_call).delete(delete_call))
        .route(&format!("{A}/Conferences.json"), get(list_conferences))
        .route(&format!("{A}/Conferences/{{sid}}"), get(fetch_conference).post(update_conference))
        .route(
            &format!("{A}/Conferences/{{conference}}/Participants.json"),
            post(create_participant).get(list_participants),
        )
        .route(
            &format!("{A}/Conferences/{{conference}}/Participants/{{call}}"),
            get(fetch_participant).post(update_participant).delete(delete_participant),
        )
        .route(&format!("{A}/IncomingPhoneNumbers.json"), post(create_number).get(list_numbers))
        .route(
            &format!("{A}/IncomingPhoneNumbers/{{sid}}"),
            get(fetch_number).post(update_number).delete(delete_number),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    // Outermost first: requests are counted from the moment they arrive (the journal reads the whole
    // body before it passes a request on), then journaled, then refused if they were over the limit.
    routes
        .layer(middleware::from_fn(refuse_over_limit))
        .layer(middleware::from_fn_with_state(sim.clone(), journal))
        .layer(middleware::from_fn_with_state((sim.clone(), InFlight::default()), count_in_flight))
        .with_state(sim)
}

/// The REST requests each account has in flight, for Twilio's concurrency limit.
#[derive(Clone, Default)]
struct InFlight(Arc<Mutex<BTreeMap<String, usize>>>);

/// One request counted in its account's [`InFlight`] until it is answered or abandoned.
struct Counted {
    in_flight: InFlight,
    account: String,
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut counts = self.in_flight.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(n) = counts.get_mut(&self.account) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.account);
            }
        }
    }
}

/// Marks a request that arrives while the account in its path already has `max_concurrent_requests`
/// requests in flight; [`refuse_over_limit`] answers it.
#[derive(Clone, Copy)]
struct OverLimit;

/// Counts each request in its account's requests in flight until its response has been sent.
async fn count_in_flight(
    State((sim, in_flight)): State<(SharedSim, InFlight)>,
    mut request: Request,
    next: Next,
) -> Response {
    let account = request
        .uri()
        .path()
        .strip_prefix("/2010-04-01/Accounts/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let limit = sim.world().defaults.max_concurrent_requests;
    let counted = {
        let mut counts = in_flight.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let n = counts.entry(account.clone()).or_default();
        if *n >= limit {
            None
        } else {
            *n += 1;
            Some(Counted { in_flight: in_flight.clone(), account })
        }
    };
    if counted.is_none() {
        request.extensions_mut().insert(OverLimit);
    }
    let response = next.run(request).await;
    drop(counted);
    response
}

/// `429` with 20429 for a request over its account's concurrency (DOC-ERR-20429): it is not processed.
async fn refuse_over_limit(request: Request, next: Next) -> Response {
    if request.extensions().get::<OverLimit>().is_some() {
        return TwilioError::too_many_requests().into_response();
    }
    next.run(request).await
}

type Reply = Result<Response, TwilioError>;

/// Authenticates, then runs `f` on the world.
fn with_account<T>(
    sim: &SharedSim,
    headers: &HeaderMap,
    account: &str,
    f: impl FnOnce(&mut World, AccountSid) -> Result<T, TwilioError>,
) -> Result<T, TwilioError> {
    let authorization = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    sim.with(|w| {
        let account = w.authenticate(account, authorization)?;
        f(w, account)
    })
}

/// `CA….json` → the SID, or 20404 for the path.
fn json_sid<T: std::str::FromStr>(segment: &str, uri: &http::Uri) -> Result<T, TwilioError> {
    segment
        .strip_suffix(".json")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| TwilioError::not_found(uri.path()))
}

fn json_name(segment: &str, uri: &http::Uri) -> Result<String, TwilioError> {
    segment.strip_suffix(".json").map(str::to_owned).ok_or_else(|| TwilioError::not_found(uri.path()))
}

fn created<T: serde::Serialize>(body: T) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

fn ok<T: serde::Serialize>(body: T) -> Response {
    (StatusCode::OK, Json(body)).into_response()
}

async fn create_call(
    State(sim): State<SharedSim>,
    Path(account): Path<String>,
    headers: HeaderMap,
    TwilioForm(form): TwilioForm,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| w.create_call(a, &form)).map(created)
}

async fn list_calls(
    State(sim): State<SharedSim>,
    Path(account): Path<String>,
    headers: HeaderMap,
    TwilioQuery(q): TwilioQuery,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| w.list_calls(a, &q)).map(ok)
}

async fn fetch_call(
    State(sim): State<SharedSim>,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: http::Uri,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| w.fetch_call(a, json_sid::<CallSid>(&sid, &uri)?)).map(ok)
}

async fn update_call(
    State(sim): State<SharedSim>,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: http::Uri,
    TwilioForm(form): TwilioForm,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| w.update_call(a, json_sid::<CallSid>(&sid, &uri)?, &form))
        .map(ok)
}

async fn delete_call(
    State(sim): State<SharedSim>,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: http::Uri,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| w.delete_call(a, json_sid::<CallSid>(&sid, &uri)?))
        .map(|()| StatusCode::NO_CONTENT.into_response())
}

async fn list_conferences(
    State(sim): State<SharedSim>,
    Path(account): Path<String>,
    headers: HeaderMap,
    TwilioQuery(q): TwilioQuery,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| w.list_conferences(a, &q)).map(ok)
}

async fn fetch_conference(
    State(sim): State<SharedSim>,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: http::Uri,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| w.fetch_conference(a, &json_name(&sid, &uri)?)).map(ok)
}

async fn update_conference(
    State(sim): State<SharedSim>,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: http::Uri,
    TwilioForm(form): TwilioForm,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| w.update_conference(a, &json_name(&sid, &uri)?, &form))
        .map(ok)
}

async fn create_participant(
    State(sim): State<SharedSim>,
    Path((account, conference)): Path<(String, String)>,
    headers: HeaderMap,
    TwilioForm(form): TwilioForm,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| w.create_participant(a, &conference, &form)).map(created)
}

async fn list_participants(
    State(sim): State<SharedSim>,
    Path((account, conference)): Path<(String, String)>,
    headers: HeaderMap,
    TwilioQuery(q): TwilioQuery,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| w.list_participants(a, &conference, &q)).map(ok)
}

async fn fetch_participant(
    State(sim): State<SharedSim>,
    Path((account, conference, call)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: http::Uri,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| {
        w.fetch_participant(a, &conference, &json_name(&call, &uri)?)
    })
    .map(ok)
}

async fn update_participant(
    State(sim): State<SharedSim>,
    Path((account, conference, call)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: http::Uri,
    TwilioForm(form): TwilioForm,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| {
        w.update_participant(a, &conference, &json_name(&call, &uri)?, &form)
    })
    .map(ok)
}

async fn delete_participant(
    State(sim): State<SharedSim>,
    Path((account, conference, call)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: http::Uri,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| {
        w.delete_participant(a, &conference, &json_name(&call, &uri)?)
    })
    .map(|()| StatusCode::NO_CONTENT.into_response())
}

async fn create_number(
    State(sim): State<SharedSim>,
    Path(account): Path<String>,
    headers: HeaderMap,
    TwilioForm(form): TwilioForm,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| w.create_number(a, &form)).map(created)
}

async fn list_numbers(
    State(sim): State<SharedSim>,
    Path(account): Path<String>,
    headers: HeaderMap,
    TwilioQuery(q): TwilioQuery,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| w.list_numbers(a, &q)).map(ok)
}

async fn fetch_number(
    State(sim): State<SharedSim>,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: http::Uri,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| w.fetch_number(a, json_sid::<PhoneNumberSid>(&sid, &uri)?))
        .map(ok)
}

async fn update_number(
    State(sim): State<SharedSim>,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: http::Uri,
    TwilioForm(form): TwilioForm,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| {
        w.update_number(a, json_sid::<PhoneNumberSid>(&sid, &uri)?, &form)
    })
    .map(ok)
}

async fn delete_number(
    State(sim): State<SharedSim>,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: http::Uri,
) -> Reply {
    with_account(&sim, &headers, &account, |w, a| w.delete_number(a, json_sid::<PhoneNumberSid>(&sid, &uri)?))
        .map(|()| StatusCode::NO_CONTENT.into_response())
}

async fn not_found(uri: http::Uri) -> TwilioError {
    TwilioError::not_found(uri.path())
}

async fn method_not_allowed(method: http::Method) -> TwilioError {
    TwilioError::method_not_allowed(method.as_str())
}

/// Records each REST exchange in the journal.
async fn journal(State(sim): State<SharedSim>, request: Request, next: Next) -> Response {
    let too_large = || TwilioError::malformed_request("request body larger than 1 MiB").into_response();
    crate::http_journal::record(&sim, Party::Twilio, too_large, request, next).await
}
