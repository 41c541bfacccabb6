//! Broken orchestrators for the rules' tests. The base is a naive one that many first attempts look
//! like: it hands the caller to the assistant with Vapi's bypass TwiML and, on a transfer tool call, moves
//! the caller into a conference and dials the specialist into it, with no machine detection, no status
//! callbacks, no signature checks and no way back. Each [`Flaw`] breaks one thing more.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use http::Method;
use ringback::reference::{FakeApis, ORCHESTRATOR_HOST, ORCHESTRATOR_URL};
use ringback_orchestrator::http::{ApiRequest, HttpClient};
use ringback_sim::runtime::{Clock, SharedSim, Sim};
use ringback_sim::time::{SimDuration, SimInstant};
use ringback_sim::transport::InMemoryTransport;
use ringback_sim::world::World;
use serde_json::{Value, json};

use crate::reference::{ACCOUNT, API_KEY, ASSISTANT, NUMBER, PHONE, SALES, SALES_BACKUP, SUPPORT, TOKEN};

/// What the naive orchestrator gets wrong besides its base flaws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flaw {
    /// Only the base flaws.
    None,
    /// Dials whatever number a tool call names.
    DialsAnyNumber,
    /// Answers tool calls without `results`.
    SilentTools,
    /// The specialist's exit ends the conference, and with it the caller's TwiML.
    SpecialistEndsConference,
    /// Sends the specialist to another conference than the caller's.
    WrongRoom,
    /// Puts every caller in the same conference.
    SharedRoom,
    /// Answers the conference's `waitUrl` with TwiML that does not parse.
    BadHoldTwiml,
    /// Hangs the caller up when the assistant asks for a transfer.
    HangsUpCaller,
    /// Has a way back (status callbacks on the specialist; a failure brings the caller to a new
    /// session) but gives the new session nothing of the conversation.
    ReturnsWithoutContext,
    /// As [`Flaw::ReturnsWithoutContext`], and puts the caller back on hold whenever a status callback
    /// says the specialist is initiated or ringing, however late it comes.
    RegressesOnLateCallbacks,
}

impl Flaw {
    fn returns(self) -> bool {
        matches!(self, Flaw::ReturnsWithoutContext | Flaw::RegressesOnLateCallbacks)
    }
}

#[derive(Clone, Debug)]
struct Naive {
    flaw: Flaw,
    apis: Arc<OnceLock<FakeApis>>,
    /// Vapi call id → the caller's CallSid.
    sessions: Arc<Mutex<BTreeMap<String, String>>>,
    /// The caller's CallSid → the number it calls from.
    callers: Arc<Mutex<BTreeMap<String, String>>>,
}

/// Starts `world` with the naive orchestrator (with `flaw`) as its target, in virtual time.
pub(crate) fn start(world: World, flaw: Flaw) -> SharedSim {
    let naive = Naive { flaw, apis: Arc::default(), sessions: Arc::default(), callers: Arc::default() };
    let router = Router::new()
        .route("/twilio/voice", post(voice))
        .route("/twilio/hold", post(hold))
        .route("/twilio/status", post(status))
        .route("/vapi/webhook", post(vapi))
        .with_state(naive.clone());
    // The orchestrator reaches the fakes through the world, and the world reaches the orchestrator: the
    // API client is filled in once the world exists.
    let sim = Sim::new(
        world,
        Clock::start(1.0),
        Arc::new(InMemoryTransport::new().route(ORCHESTRATOR_HOST, router)),
    );
    let _ = naive.apis.set(FakeApis::new(&sim));
    sim
}

/// Runs the world until it has nothing left to do, or `secs` pass.
pub(crate) async fn settle(sim: &SharedSim, secs: u64) {
    // The naive orchestrator answers before it acts; nothing of it outlives a webhook.
    let deadline = SimInstant::ZERO + SimDuration::from_secs(secs);
    ringback::run::settle(sim, SimInstant::ZERO, deadline, || async {}).await;
}

impl Naive {
    async fn send(&self, request: ApiRequest) -> Value {
        let Some(apis) = self.apis.get() else { return Value::Null };
        match apis.send(request).await {
            Ok(response) => serde_json::from_slice(&response.body).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    async fn twilio(&self, path: &str, params: &[(&str, String)]) -> Value {
        let url = format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/{path}");
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"));
        self.send(
            ApiRequest::form(Method::POST, url, params)
                .with_header("Authorization", format!("Basic {basic}")),
        )
        .await
    }

    /// A new assistant session for the caller, in bypass mode: its id and TwiML.
    async fn session(&self, caller: &str) -> (String, String) {
        let from =
            self.callers.lock().unwrap_or_else(|p| p.into_inner()).get(caller).cloned().unwrap_or_default();
        let create = json!({
            "assistantId": ASSISTANT, "phoneNumberId": PHONE, "phoneCallProviderBypassEnabled": true,
            "customer": {"number": from},
        });
        let request = ApiRequest::json(Method::POST, "https://api.vapi.ai/call", &create)
            .with_header("Authorization", format!("Bearer {API_KEY}"));
        let session = self.send(request).await;
        let id = session["id"].as_str().unwrap_or_default().to_owned();
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), caller.to_owned());
        let twiml = session["phoneCallProviderDetails"]["twiml"].as_str().unwrap_or("<Response/>").to_owned();
        (id, twiml)
    }

    fn room(&self, caller: &str) -> String {
        if self.flaw == Flaw::SharedRoom { "room".to_owned() } else { format!("room-{caller}") }
    }

    /// Puts the caller on hold in its conference.
    async fn hold_caller(&self, caller: &str) {
        let wait = if self.flaw == Flaw::BadHoldTwiml {
            format!(r#" waitUrl="{ORCHESTRATOR_URL}/twilio/hold""#)
        } else {
            String::new()
        };
        let room = self.room(caller);
        let twiml = format!(
            r#"<Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true"{wait}>{room}</Conference></Dial></Response>"#
        );
        self.twilio(&format!("Calls/{caller}.json"), &[("Twiml", twiml)]).await;
    }

    /// Moves the caller into a conference and dials `number` into it.
    async fn transfer(&self, caller: &str, number: &str) {
        if self.flaw == Flaw::HangsUpCaller {
            self.twilio(&format!("Calls/{caller}.json"), &[("Status", "completed".into())]).await;
            return;
        }
        self.hold_caller(caller).await;
        let specialist_room =
            if self.flaw == Flaw::WrongRoom { "elsewhere".to_owned() } else { self.room(caller) };
        let ends = self.flaw == Flaw::SpecialistEndsConference;
        let specialist_twiml = format!(
            r#"<Response><Dial><Conference endConferenceOnExit="{ends}">{specialist_room}</Conference></Dial></Response>"#
        );
        let mut params =
            vec![("To", number.to_owned()), ("From", NUMBER.to_owned()), ("Twiml", specialist_twiml)];
        if self.flaw.returns() {
            params.push(("StatusCallback", format!("{ORCHESTRATOR_URL}/twilio/status?caller={caller}")));
            for event in ["initiated", "ringing", "answered", "completed"] {
                params.push(("StatusCallbackEvent", event.to_owned()));
            }
        }
        self.twilio("Calls.json", &params).await;
    }

    /// Brings the caller back to a new assistant session.
    async fn return_caller(&self, caller: &str) {
        let (_, twiml) = self.session(caller).await;
        self.twilio(&format!("Calls/{caller}.json"), &[("Twiml", twiml)]).await;
    }
}

fn form(body: &[u8], name: &str) -> String {
    form_urlencoded::parse(body).find(|(n, _)| n == name).map(|(_, v)| v.into_owned()).unwrap_or_default()
}

fn xml(body: String) -> Response {
    ([(CONTENT_TYPE, "text/xml")], body).into_response()
}

/// The voice URL: a Vapi session in bypass mode, and its TwiML.
async fn voice(State(n): State<Naive>, body: Bytes) -> Response {
    let (call, from) = (form(&body, "CallSid"), form(&body, "From"));
    n.callers.lock().unwrap_or_else(|p| p.into_inner()).insert(call.clone(), from);
    let (_, twiml) = n.session(&call).await;
    xml(twiml)
}

/// The specialist's status callbacks: a failure brings the caller back.
async fn status(State(n): State<Naive>, query: axum::extract::RawQuery, body: Bytes) -> Response {
    let query = query.0.unwrap_or_default();
    let caller = form(query.as_bytes(), "caller");
    match form(&body, "CallStatus").as_str() {
        "busy" | "no-answer" | "failed" | "canceled" => n.return_caller(&caller).await,
        "initiated" | "ringing" if n.flaw == Flaw::RegressesOnLateCallbacks => n.hold_caller(&caller).await,
        _ => {}
    }
    axum::http::StatusCode::NO_CONTENT.into_response()
}

/// The conference's wait URL.
async fn hold(State(n): State<Naive>) -> Response {
    if n.flaw == Flaw::BadHoldTwiml {
        return xml("<Response><Play>http://music.test/hold.mp3</Response>".to_owned());
    }
    xml("<Response><Play loop=\"0\">http://music.test/hold.mp3</Play></Response>".to_owned())
}

/// Vapi's server URL: tool calls transfer the caller.
async fn vapi(State(n): State<Naive>, body: Bytes) -> Response {
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let message = &message["message"];
    if message["type"] != "tool-calls" {
        return axum::Json(json!({})).into_response();
    }
    let caller = message["call"]["id"]
        .as_str()
        .and_then(|id| n.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned())
        .unwrap_or_default();
    let mut results = Vec::new();
    for call in message["toolCallList"].as_array().cloned().unwrap_or_default() {
        let arguments = &call["function"]["arguments"];
        let number = match arguments["department"].as_str() {
            Some("sales") => SALES.to_owned(),
            Some("support") => SUPPORT.to_owned(),
            _ => arguments["number"].as_str().unwrap_or_default().to_owned(),
        };
        let allowed = [SALES, SALES_BACKUP, SUPPORT].contains(&number.as_str());
        let result = if allowed || n.flaw == Flaw::DialsAnyNumber {
            n.transfer(&caller, &number).await;
            "Transferring."
        } else {
            "That number is not allowed."
        };
        results.push(json!({"toolCallId": call["id"], "result": result}));
    }
    if n.flaw == Flaw::SilentTools {
        return axum::Json(json!({})).into_response();
    }
    axum::Json(json!({"results": results})).into_response()
}
