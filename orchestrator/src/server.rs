//! The shell around [`crate::machine`]: webhooks in, API calls out, state in the store.
//!
//! Every webhook is authenticated first (Twilio's `X-Twilio-Signature` against the public URL, Vapi's
//! secret or HMAC), then becomes an [`Event`] for one caller. Under one lock the caller's state is
//! loaded, stepped and saved, so events for a caller never interleave; the webhook is answered from the
//! step's [`Reply`]; its [`Action`]s run after the lock is released, and their outcomes come back as
//! events. Only Twilio's voice webhook (and a hold's Dial action) waits for an action, because its
//! answer is the new assistant session's TwiML.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, Notify, OnceCell};

use crate::config::Config;
use crate::http::HttpClient;
use crate::machine::{Action, AnsweredBy, Call, Decision, Event, LegStatus, Outcome, Phase, Reply, Resume};
use crate::store::{Store, StoreError, Write};
use crate::twilio::{TwilioClient, is_valid_signature};
use crate::twiml;
use crate::vapi::{ServerMessage, ToolCall, VapiAuth, VapiClient};

/// The most a webhook body may be. Vapi's messages carry the whole conversation several times over
/// (`artifact.messages`, `messagesOpenAIFormatted`, the transcript) with the assistant and the call, so a
/// long call's `end-of-call-report` runs to hundreds of kilobytes; refusing one would lose what it says.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How often a bridged call's specialist leg is looked up, in case its final callback is lost.
const BRIDGE_CHECK_S: u64 = 30;
/// Extra time after a specialist's ring timeout before the orchestrator asks Twilio about a leg whose
/// final status callback never came.
const WATCHDOG_GRACE_S: u64 = 15;

/// How many times the watchdog looks at a dial that Twilio still says is queued or ringing (an hour at
/// the default ring timeout); a leg queued for longer is left to its callbacks.
const MAX_RING_CHECKS: u32 = 120;
/// Twilio's connection overrides on the hold room's URL: retry twice after a failed connection or a 5xx
/// (twilio.md §5 "connection overrides"; Twilio never sends the fragment).
const HOLD_ROOM_OVERRIDES: &str = "#rc=2&rp=ct,5xx";

/// What one look of the lost-callback watchdog found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Look {
    /// Nothing to wait for any more: the call moved on, or the leg's final status is known now.
    Settled,
    /// The leg may still end without its callback: Twilio says it is queued or ringing, or could not
    /// be asked.
    Unsettled,
}

/// The orchestrator: configuration, API clients and state. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    twilio: TwilioClient,
    vapi: VapiClient,
    vapi_auth: VapiAuth,
    store: Arc<dyn Store>,
    /// Serializes load → step → save. A step takes microseconds; no I/O but the store happens under it.
    lock: Mutex<()>,
    /// Actions under way, for graceful shutdown and for tests that wait until nothing is left to do.
    busy: AtomicUsize,
    idle: Notify,
    /// The assistant's model, fetched once, so a resumed session can be given extra model messages.
    model: OnceCell<Option<Value>>,
    /// Set by [`Orchestrator::halt`]: nothing more is stepped or performed, as after the process died.
    halted: std::sync::atomic::AtomicBool,
}

/// Why an event could not be handled.
#[derive(Debug, thiserror::Error)]
enum HandleError {
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("stored state for {caller} is unreadable: {error}")]
    Corrupt { caller: String, error: serde_json::Error },
}

impl Orchestrator {
    /// An orchestrator that reaches Twilio and Vapi through `http` and keeps state in `store`.
    pub fn new(config: Config, http: Arc<dyn HttpClient>, store: Arc<dyn Store>) -> Orchestrator {
        let twilio = TwilioClient::new(
            http.clone(),
            &config.twilio_api_url,
            config.twilio_account_sid.clone(),
            config.twilio_auth_token.clone(),
        );
        let vapi = VapiClient::new(http, &config.vapi_api_url, config.vapi_api_key.clone());
        let vapi_auth = VapiAuth {
            secret: config.vapi_webhook_secret.clone(),
            hmac_secret: config.vapi_webhook_hmac_secret.clone(),
            hmac_tolerance_s: config.vapi_webhook_tolerance_s,
        };
        Orchestrator {
            inner: Arc::new(Inner {
                config,
                twilio,
                vapi,
                vapi_auth,
                store,
                lock: Mutex::new(()),
                busy: AtomicUsize::new(0),
                idle: Notify::new(),
                model: OnceCell::new(),
                halted: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The HTTP routes: Twilio's webhooks under `/twilio/`, Vapi's server URL at `/vapi/webhook`, and
    /// `/healthz`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/twilio/voice", post(voice))
            .route("/twilio/caller-status", post(caller_status))
            .route("/twilio/hold-room", post(hold_room))
            .route("/twilio/hold", post(hold_music).get(hold_music))
            .route("/twilio/hold-ended", post(hold_ended))
            .route("/twilio/specialist", post(specialist))
            .route("/twilio/specialist-status", post(specialist_status))
            .route("/vapi/webhook", post(vapi_webhook))
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self.clone())
    }

    /// Takes up what was in flight when the service last stopped: every stored call that has not ended
    /// is stepped with [`Event::Restarted`], and legs whose callbacks may have been missed are looked up.
    pub async fn recover(&self) -> Result<usize, StoreError> {
        let calls = self.inner.store.scan("call/")?;
        let mut resumed = 0;
        for (_, bytes) in calls {
            let Ok(call) = serde_json::from_slice::<Call>(&bytes) else { continue };
            if call.phase == Phase::Ended {
                continue;
            }
            resumed += 1;
            self.dispatch(&call.caller, Event::Restarted).await;
            if matches!(call.phase, Phase::Holding | Phase::Bridged) {
                self.spawn_check(call.caller.clone(), Duration::ZERO, None);
            }
            let current = call
                .transfers
                .len()
                .checked_sub(1)
                .and_then(|t| call.transfers[t].attempts.len().checked_sub(1).map(|a| (t, a)));
            match (call.phase, current) {
                (Phase::Bridged, Some((t, a))) => self.spawn_bridge_watch(call.caller.clone(), t, a),
                // When the dial happened is not stored: the watchdog for a lost final callback starts over.
                (Phase::Holding, Some(attempt)) => {
                    self.spawn_check(call.caller.clone(), self.ring_watch(), Some(attempt))
                }
                _ => {}
            }
        }
        Ok(resumed)
    }

    /// Stops acting, as a killed process would: no event is stepped and no action performed from now on
    /// (requests already on the wire still complete). What is in the store stays for the next start.
    pub fn halt(&self) {
        self.inner.halted.store(true, Ordering::SeqCst);
    }

    fn halted(&self) -> bool {
        self.inner.halted.load(Ordering::SeqCst)
    }

    /// Resolves once no action is under way.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.inner.busy.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Loads the caller's state, steps it and saves it, under the lock. `None` when the caller is
    /// unknown and the event cannot start a conversation.
    async fn apply(&self, caller: &str, event: Event) -> Result<Option<(Decision, Call)>, HandleError> {
        let _guard = self.inner.lock.lock().await;
        if self.halted() {
            return Ok(None);
        }
        // The store may touch the disk (a file store commits with fsync): on a multi-threaded runtime the
        // worker says so, so other tasks move to other threads meanwhile.
        blocking(|| self.step_stored(caller, event))
    }

    /// Load, step, save: the body of [`Orchestrator::apply`].
    fn step_stored(&self, caller: &str, event: Event) -> Result<Option<(Decision, Call)>, HandleError> {
        let store = &self.inner.store;
        let key = format!("call/{caller}");
        let mut call = match store.get(&key)? {
            Some(bytes) => serde_json::from_slice::<Call>(&bytes)
                .map_err(|error| HandleError::Corrupt { caller: caller.to_owned(), error })?,
            None => match &event {
                Event::Incoming { from, to } => Call::new(caller, from.clone(), to.clone()),
                _ => return Ok(None),
            },
        };
        let (phase, session) = (call.phase, call.session.clone());
        let decision = call.step(event);
        // Saved even when nothing but the bounded memories (seen keys, answers) changed.
        let mut batch = vec![Write::Put(key, serde_json::to_vec(&call).expect("state serializes"))];
        if let Some(id) = call.session.as_ref().filter(|id| session.as_ref() != Some(*id)) {
            batch.push(Write::Put(format!("session/{id}"), caller.as_bytes().to_vec()));
        }
        if call.phase == Phase::Ended && phase != Phase::Ended {
            self.retire(&call, &mut batch)?;
        }
        store.apply(batch)?;
        Ok(Some((decision, call)))
    }

    /// Queues a finished call for forgetting, and forgets the oldest beyond the bound.
    fn retire(&self, call: &Call, batch: &mut Vec<Write>) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let finished = store.scan("ended/")?;
        let next =
            finished.last().and_then(|(k, _)| k["ended/".len()..].parse::<u64>().ok()).map_or(0, |n| n + 1);
        batch.push(Write::Put(format!("ended/{next:020}"), call.caller.as_bytes().to_vec()));
        let excess = (finished.len() + 1).saturating_sub(self.inner.config.max_finished_calls);
        for (key, caller) in finished.into_iter().take(excess) {
            let caller = String::from_utf8_lossy(&caller).into_owned();
            if let Some(bytes) = store.get(&format!("call/{caller}"))?
                && let Ok(old) = serde_json::from_slice::<Call>(&bytes)
            {
                for id in old.session.iter().chain(old.transfers.iter().map(|t| &t.session)) {
                    batch.push(Write::Delete(format!("session/{id}")));
                }
            }
            batch.push(Write::Delete(format!("call/{caller}")));
            batch.push(Write::Delete(key));
        }
        Ok(())
    }

    /// Steps the caller with `event`, starts its actions in the background, and returns the reply.
    async fn dispatch(&self, caller: &str, event: Event) -> Option<Reply> {
        let (decision, call) = self.apply_logged(caller, event).await?;
        self.spawn_actions(call, decision.actions);
        decision.reply
    }

    async fn apply_logged(&self, caller: &str, event: Event) -> Option<(Decision, Call)> {
        let kind = event_name(&event);
        match self.apply(caller, event).await {
            Ok(Some((decision, call))) => {
                tracing::debug!(caller, event = kind, phase = ?call.phase, actions = decision.actions.len(), "stepped");
                Some((decision, call))
            }
            Ok(None) => {
                tracing::info!(caller, event = kind, "event for an unknown call ignored");
                None
            }
            Err(e) => {
                tracing::error!(caller, event = kind, error = %e, "event not handled");
                None
            }
        }
    }

    fn spawn_actions(&self, call: Call, actions: Vec<Action>) {
        if actions.is_empty() {
            return;
        }
        let this = self.clone();
        let guard = Busy::new(&self.inner);
        tokio::spawn(async move {
            let _guard = guard;
            this.run(call, actions.into()).await;
        });
    }

    /// Performs actions in order; each outcome is stepped, and what that decides is performed too.
    async fn run(&self, mut call: Call, mut actions: VecDeque<Action>) {
        while let Some(action) = actions.pop_front() {
            if self.halted() {
                return;
            }
            let Some(event) = self.perform(&call, action).await else { continue };
            if let Some((decision, next)) = self.apply_logged(&call.caller, event).await {
                actions.extend(decision.actions);
                call = next;
            }
        }
    }

    /// Performs one action; its outcome, if the machine needs to know it.
    async fn perform(&self, call: &Call, action: Action) -> Option<Event> {
        let inner = &self.inner;
        let caller = call.caller.as_str();
        match action {
            Action::CreateSession { resume } => {
                let body = self.session_body(call, resume.as_ref()).await;
                Some(match inner.vapi.create_call(&body).await {
                    Ok(created) => match created.twiml {
                        Some(twiml) => Event::SessionCreated { id: created.id, twiml },
                        None => {
                            tracing::warn!(
                                caller,
                                "Vapi created a session without phoneCallProviderDetails.twiml"
                            );
                            Event::SessionFailed
                        }
                    },
                    Err(e) => {
                        tracing::warn!(caller, error = %e, "creating the assistant session failed");
                        Event::SessionFailed
                    }
                })
            }
            Action::RedirectCaller { twiml } => {
                let params = [("Twiml", twiml)];
                Some(match inner.twilio.update_call(caller, &params).await {
                    Ok(_) => Event::Redirected,
                    Err(e) if e.call_is_over() => Event::CallerGone,
                    Err(e) => {
                        tracing::warn!(caller, error = %e, "redirecting the caller to the assistant failed");
                        Event::RedirectFailed
                    }
                })
            }
            Action::Hold { transfer, conference } => {
                // A `Url`, not inline `Twiml`: Twilio documents that updating a call's StatusCallback
                // needs the Url in the same request (reference twilio.md, DOC-CALL).
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("caller", caller)
                    .append_pair("transfer", &transfer.to_string())
                    .append_pair("conference", &conference)
                    .finish();
                let public = &inner.config.public_url;
                let room = format!("{public}/twilio/hold-room?{query}");
                // If the hold room cannot be fetched, Twilio would play its application error and end
                // the caller's call. The hold room is the same document however often it is asked for,
                // so Twilio may retry it on a connection failure or a 5xx (connection overrides) and
                // fall back to it once more (FallbackUrl) after a timeout or unusable TwiML.
                let params = [
                    ("Url", format!("{room}{HOLD_ROOM_OVERRIDES}")),
                    ("Method", "POST".to_owned()),
                    ("FallbackUrl", room),
                    ("FallbackMethod", "POST".to_owned()),
                    ("StatusCallback", format!("{public}/twilio/caller-status")),
                    ("StatusCallbackMethod", "POST".to_owned()),
                ];
                Some(match inner.twilio.update_call(caller, &params).await {
                    Ok(_) => Event::Held { transfer },
                    Err(e) if e.call_is_over() => Event::CallerGone,
                    Err(e) => {
                        tracing::warn!(caller, error = %e, "moving the caller into the hold conference failed");
                        Event::HoldFailed { transfer }
                    }
                })
            }
            Action::Dial { transfer, attempt, number } => {
                let public = &inner.config.public_url;
                let query = format!("caller={caller}&transfer={transfer}&attempt={attempt}");
                let from = inner.config.caller_id.clone().unwrap_or_else(|| call.to.clone());
                let mut params = vec![
                    ("To", number),
                    ("From", from),
                    ("Url", format!("{public}/twilio/specialist?{query}")),
                    ("Method", "POST".to_owned()),
                    ("Timeout", inner.config.ring_timeout_s.to_string()),
                    ("MachineDetection", inner.config.machine_detection.clone()),
                    ("StatusCallback", format!("{public}/twilio/specialist-status?{query}")),
                    ("StatusCallbackMethod", "POST".to_owned()),
                ];
                for event in ["initiated", "ringing", "answered", "completed"] {
                    params.push(("StatusCallbackEvent", event.to_owned()));
                }
                let outcome = match inner.twilio.create_call(&params).await {
                    Ok(created) => Event::Dialed { transfer, attempt, leg: created.sid },
                    Err(e) => {
                        tracing::warn!(caller, error = %e, "dialing the specialist failed");
                        Event::DialFailed { transfer, attempt }
                    }
                };
                self.spawn_check(caller.to_owned(), self.ring_watch(), Some((transfer, attempt)));
                Some(outcome)
            }
            Action::HangUp { leg } => {
                if self.leg_has_ended(caller, &leg) {
                    // Its final status arrived while this action waited its turn.
                    return None;
                }
                let params = [("Status", "completed".to_owned())];
                match inner.twilio.update_call(&leg, &params).await {
                    Ok(_) => {}
                    Err(e) if e.call_is_over() => {}
                    Err(e) => tracing::warn!(caller, leg, error = %e, "hanging up a specialist leg failed"),
                }
                None
            }
        }
    }

    /// While the caller is bridged with this attempt's specialist, asks Twilio every
    /// [`BRIDGE_CHECK_S`] whether the specialist's leg has ended: if its `completed` callback is lost,
    /// the caller must not stay alone in a silent conference.
    fn spawn_bridge_watch(&self, caller: String, transfer: usize, attempt: usize) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(BRIDGE_CHECK_S)).await;
                if this.halted() {
                    return;
                }
                let Ok(Some(bytes)) = this.inner.store.get(&format!("call/{caller}")) else { return };
                let Ok(call) = serde_json::from_slice::<Call>(&bytes) else { return };
                let current = call.phase == Phase::Bridged
                    && transfer + 1 == call.transfers.len()
                    && call.transfers[transfer].attempts.len() == attempt + 1;
                let Some(a) = call.transfers.get(transfer).and_then(|t| t.attempts.get(attempt)) else {
                    return;
                };
                let Some(leg) = a.leg.clone().filter(|_| current && !a.status.is_final()) else { return };
                let _guard = Busy::new(&this.inner);
                if this.observe_leg(&caller, transfer, attempt, leg).await.is_some_and(LegStatus::is_final) {
                    return;
                }
            }
        });
    }

    /// How long after a dial the watchdog asks Twilio about a leg whose final callback has not come.
    fn ring_watch(&self) -> Duration {
        Duration::from_secs(u64::from(self.inner.config.ring_timeout_s) + WATCHDOG_GRACE_S)
    }

    /// Whether the latest state already holds a final status for the specialist leg `leg`.
    fn leg_has_ended(&self, caller: &str, leg: &str) -> bool {
        let Ok(Some(bytes)) = self.inner.store.get(&format!("call/{caller}")) else { return false };
        let Ok(call) = serde_json::from_slice::<Call>(&bytes) else { return false };
        call.transfers
            .iter()
            .flat_map(|t| &t.attempts)
            .any(|a| a.leg.as_deref() == Some(leg) && a.status.is_final())
    }

    /// After `after`, asks Twilio about the caller's legs if the state still waits on a callback: a
    /// lost final status callback must not leave the caller on hold for ever. With `attempt`, only if
    /// that dial is still the one the caller waits on, unanswered; and while Twilio says its leg is
    /// still queued or ringing, or does not answer the fetch, asks again every ring timeout: a dial
    /// queued behind the account's calls per second starts ringing late, so its final status can come
    /// long after the first look, and one failed fetch must not end the watch.
    fn spawn_check(&self, caller: String, after: Duration, attempt: Option<(usize, usize)>) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut wait = after;
            // Bounded: a leg Twilio keeps queued or ringing for longer than this is left to its callback.
            for _ in 0..MAX_RING_CHECKS {
                tokio::time::sleep(wait).await;
                match this.check(&caller, attempt).await {
                    Look::Unsettled if attempt.is_some() => {
                        wait = Duration::from_secs(u64::from(this.inner.config.ring_timeout_s));
                    }
                    Look::Unsettled | Look::Settled => return,
                }
            }
        });
    }

    /// One look of [`Orchestrator::spawn_check`].
    async fn check(&self, caller: &str, attempt: Option<(usize, usize)>) -> Look {
        if self.halted() {
            return Look::Settled;
        }
        let Ok(Some(bytes)) = self.inner.store.get(&format!("call/{caller}")) else { return Look::Settled };
        let Ok(call) = serde_json::from_slice::<Call>(&bytes) else { return Look::Settled };
        let waiting = match attempt {
            None => matches!(call.phase, Phase::Holding | Phase::Bridged),
            Some((t, a)) => {
                call.phase == Phase::Holding
                    && t + 1 == call.transfers.len()
                    && call.transfers[t].attempts.len() == a + 1
                    && !call.transfers[t].attempts[a].status.is_final()
            }
        };
        if !waiting {
            return Look::Settled;
        }
        let _guard = Busy::new(&self.inner);
        if let Ok(info) = self.inner.twilio.fetch_call(caller).await
            && let Some(status) = LegStatus::parse(&info.status).filter(|s| s.is_final())
        {
            self.dispatch(caller, Event::CallerStatus { status, key: None }).await;
            return Look::Settled;
        }
        let Some(t) = call.transfers.last() else { return Look::Settled };
        let Some((attempt, a)) = t.attempts.iter().enumerate().next_back() else { return Look::Settled };
        let Some(leg) = a.leg.clone().filter(|_| !a.status.is_final()) else { return Look::Settled };
        match self.observe_leg(caller, call.transfers.len() - 1, attempt, leg).await {
            Some(status) if status.is_final() => Look::Settled,
            // Still queued or ringing; or Twilio did not answer the fetch (a 5xx, a timeout), which says
            // nothing about the leg: look again later rather than leave the caller to a lost callback.
            Some(_) | None => Look::Unsettled,
        }
    }

    /// Asks Twilio for a specialist leg's status and steps the caller with it, as a status callback
    /// without a delivery key would; the status, if Twilio answered.
    async fn observe_leg(
        &self,
        caller: &str,
        transfer: usize,
        attempt: usize,
        leg: String,
    ) -> Option<LegStatus> {
        let info = self.inner.twilio.fetch_call(&leg).await.ok()?;
        let status = LegStatus::parse(&info.status)?;
        let event = Event::SpecialistStatus {
            transfer,
            attempt,
            leg,
            status,
            key: None,
            duration_s: None,
            answered_by: None,
        };
        self.dispatch(caller, event).await;
        Some(status)
    }

    /// The body of `POST /call` for a bypass session: the configured assistant and number, the caller
    /// as customer, and when coming back from a transfer, what happened and what was said.
    async fn session_body(&self, call: &Call, resume: Option<&Resume>) -> Value {
        let config = &self.inner.config;
        let mut body = json!({
            "assistantId": config.vapi_assistant_id,
            "phoneNumberId": config.vapi_phone_number_id,
            "phoneCallProviderBypassEnabled": true,
            "customer": {"number": call.from},
        });
        let Some(resume) = resume else { return body };
        let conversation = resume
            .transcript
            .iter()
            .map(|l| format!("{}: {}", if l.role == "user" { "Caller" } else { "Assistant" }, l.text))
            .collect::<Vec<_>>()
            .join("\n");
        let mut overrides = json!({
            "firstMessage": first_message(resume),
            "variableValues": {
                "transfer_department": resume.department,
                "transfer_outcome": resume.outcome.as_str(),
                "conversation": conversation,
            },
        });
        if let Some(mut model) = self.assistant_model().await {
            let note = format!(
                "The caller was transferred to {} and the transfer ended: {}. You are talking with the \
                 caller again. The conversation before the transfer:\n{conversation}",
                resume.department,
                resume.outcome.as_str()
            );
            let messages = model.entry("messages").or_insert_with(|| json!([]));
            if let Some(list) = messages.as_array_mut() {
                list.push(json!({"role": "system", "content": note}));
                for line in &resume.transcript {
                    let role = if line.role == "user" { "user" } else { "assistant" };
                    list.push(json!({"role": role, "content": line.text}));
                }
            }
            overrides["model"] = Value::Object(model);
        }
        body["assistantOverrides"] = overrides;
        body
    }

    /// The assistant's `model` (provider, model, messages), so that an override keeps them; `None` if
    /// it cannot be read (the resumed session then gets its context through variables only).
    async fn assistant_model(&self) -> Option<Map<String, Value>> {
        let inner = &self.inner;
        let model = inner
            .model
            .get_or_init(|| async {
                match inner.vapi.get_assistant(&inner.config.vapi_assistant_id).await {
                    Ok(assistant) => assistant.get("model").filter(|m| m.get("provider").is_some()).cloned(),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the assistant's model failed; context goes in variables only");
                        None
                    }
                }
            })
            .await;
        model.as_ref().and_then(Value::as_object).cloned()
    }

    /// Checks `X-Twilio-Signature` against the public URL of this request.
    fn twilio_authentic(&self, uri: &Uri, headers: &HeaderMap, params: &[(String, String)]) -> bool {
        let Some(signature) = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let url = format!("{}{path}", self.inner.config.public_url);
        is_valid_signature(self.inner.config.twilio_auth_token.expose(), &url, params, signature)
    }
}

/// Runs `f`, which may block on the disk, telling a multi-threaded runtime first; on a current-thread
/// runtime (tests, in-process runs with a memory store) it simply runs.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Counts an action under way for [`Orchestrator::idle`].
struct Busy(Arc<Inner>);

impl Busy {
    fn new(inner: &Arc<Inner>) -> Busy {
        inner.busy.fetch_add(1, Ordering::SeqCst);
        Busy(inner.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// What the resumed assistant says first.
fn first_message(resume: &Resume) -> String {
    let department = &resume.department;
    match resume.outcome {
        Outcome::Busy => format!(
            "I'm sorry, the {department} line is busy right now. I'm still here with you. How else can I help?"
        ),
        Outcome::NoAnswer => format!(
            "I'm sorry, nobody from {department} picked up. I'm still here with you. How else can I help?"
        ),
        Outcome::Machine => format!(
            "I'm sorry, I only reached voicemail at {department}. I'm still here with you. How else can I help?"
        ),
        Outcome::Completed => "Welcome back. Is there anything else I can help you with?".to_owned(),
        _ => format!(
            "I'm sorry, I couldn't connect you to {department}. I'm still here with you. How else can I help?"
        ),
    }
}

fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Incoming { .. } => "incoming",
        Event::SessionCreated { .. } => "session-created",
        Event::SessionFailed => "session-failed",
        Event::Redirected => "redirected",
        Event::RedirectFailed => "redirect-failed",
        Event::Transcript { .. } => "transcript",
        Event::TransferRequested { .. } => "transfer-requested",
        Event::Held { .. } => "held",
        Event::HoldFailed { .. } => "hold-failed",
        Event::Dialed { .. } => "dialed",
        Event::DialFailed { .. } => "dial-failed",
        Event::SpecialistStatus { .. } => "specialist-status",
        Event::SpecialistAnswered { .. } => "specialist-answered",
        Event::CallerStatus { .. } => "caller-status",
        Event::CallerGone => "caller-gone",
        Event::HoldEnded { .. } => "hold-ended",
        Event::SessionEnded { .. } => "session-ended",
        Event::Restarted => "restarted",
    }
}

// ---- Twilio webhooks ----

/// A Twilio webhook, authenticated: its form parameters and the URI it was sent to. As an extractor it
/// checks `X-Twilio-Signature` against the public URL and the `AccountSid`, and answers anything else
/// with 403 before a handler runs, so nothing is done for it.
struct TwilioForm {
    params: Vec<(String, String)>,
    uri: Uri,
}

impl TwilioForm {
    fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// `CallSid#SequenceNumber`, which identifies one delivery of a status callback.
    fn delivery_key(&self) -> Option<String> {
        Some(format!("{}#{}", self.get("CallSid")?, self.get("SequenceNumber")?))
    }
}

impl axum::extract::FromRequest<Orchestrator> for TwilioForm {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, o: &Orchestrator) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "webhook body too large").into_response())?;
        // A GET (a `waitUrl` fetched with GET) carries its parameters in the query string, which is part
        // of the signed URL; its body is empty.
        let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let path = parts.uri.path();
        if !o.twilio_authentic(&parts.uri, &parts.headers, &params) {
            tracing::warn!(path, "Twilio webhook with a missing or wrong signature rejected");
            return Err((StatusCode::FORBIDDEN, "invalid X-Twilio-Signature").into_response());
        }
        let form = TwilioForm { params, uri: parts.uri.clone() };
        if form.get("AccountSid").is_some_and(|a| a != o.inner.config.twilio_account_sid) {
            tracing::warn!(path, "Twilio webhook for another account rejected");
            return Err((StatusCode::FORBIDDEN, "webhook for another account").into_response());
        }
        Ok(form)
    }
}

fn twiml_response(doc: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], doc).into_response()
}

fn bad_request(what: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("missing or invalid {what}")).into_response()
}

async fn voice(State(o): State<Orchestrator>, form: TwilioForm) -> Response {
    let (Some(caller), Some(from), Some(to)) = (form.get("CallSid"), form.get("From"), form.get("To")) else {
        return bad_request("CallSid, From or To");
    };
    let event = Event::Incoming { from: from.to_owned(), to: to.to_owned() };
    let reply = o.reply_inline(caller, event).await;
    let voice_url = format!("{}/twilio/voice", o.inner.config.public_url);
    twiml_response(match reply {
        Some(Reply::Twiml(doc)) => doc,
        Some(Reply::Unavailable) => twiml::unavailable(),
        _ => twiml::retry(&voice_url),
    })
}

impl Orchestrator {
    /// Steps `event` and, when it asks for a session, creates it before answering: the answer to the
    /// webhook is the session's TwiML. Other actions run in the background as usual.
    async fn reply_inline(&self, caller: &str, event: Event) -> Option<Reply> {
        let (decision, mut call) = self.apply_logged(caller, event).await?;
        let mut reply = decision.reply;
        let mut later = Vec::new();
        let mut pending: VecDeque<Action> = decision.actions.into();
        while let Some(action) = pending.pop_front() {
            let inline = matches!(action, Action::CreateSession { .. } | Action::RedirectCaller { .. });
            if !inline {
                later.push(action);
                continue;
            }
            let _guard = Busy::new(&self.inner);
            let event = match action {
                // The webhook's answer redirects the caller: no REST call needed.
                Action::RedirectCaller { twiml } => {
                    reply = Some(Reply::Twiml(twiml));
                    Event::Redirected
                }
                action => match self.perform(&call, action).await {
                    Some(event) => event,
                    None => continue,
                },
            };
            if let Some((next, state)) = self.apply_logged(caller, event).await {
                if next.reply.is_some() {
                    reply = next.reply;
                }
                pending.extend(next.actions);
                call = state;
            }
        }
        self.spawn_actions(call, later);
        reply
    }
}

#[derive(Deserialize)]
struct Leg {
    caller: String,
    transfer: usize,
    #[serde(default)]
    attempt: usize,
}

async fn caller_status(State(o): State<Orchestrator>, form: TwilioForm) -> Response {
    let (Some(caller), Some(status)) =
        (form.get("CallSid"), form.get("CallStatus").and_then(LegStatus::parse))
    else {
        return bad_request("CallSid or CallStatus");
    };
    o.dispatch(caller, Event::CallerStatus { status, key: form.delivery_key() }).await;
    StatusCode::NO_CONTENT.into_response()
}

async fn hold_music(State(o): State<Orchestrator>, _authentic: TwilioForm) -> Response {
    twiml_response(twiml::hold_music(&o.inner.config.hold_music_url))
}

/// The caller's TwiML while on hold: the transfer's conference, with hold music until a specialist
/// starts it, and the Dial action that brings the caller back if it ends under them.
#[derive(Deserialize)]
struct Room {
    caller: String,
    transfer: usize,
    conference: String,
}

async fn hold_room(
    State(o): State<Orchestrator>,
    Query(room): Query<Room>,
    _authentic: TwilioForm,
) -> Response {
    let public = &o.inner.config.public_url;
    let action = format!("{public}/twilio/hold-ended?caller={}&transfer={}", room.caller, room.transfer);
    twiml_response(twiml::hold(&room.conference, &format!("{public}/twilio/hold"), &action))
}

async fn hold_ended(State(o): State<Orchestrator>, Query(leg): Query<Leg>, form: TwilioForm) -> Response {
    let status = form.get("CallStatus").and_then(LegStatus::parse);
    if status.is_some_and(LegStatus::is_final) {
        // Twilio asks the Dial action of a caller who hung up too; the answer is ignored.
        o.dispatch(&leg.caller, Event::CallerStatus { status: LegStatus::Completed, key: None }).await;
        return twiml_response(twiml::empty());
    }
    let reply = o.reply_inline(&leg.caller, Event::HoldEnded { transfer: leg.transfer }).await;
    twiml_response(match reply {
        Some(Reply::Twiml(doc)) => doc,
        // Nothing to come back to yet: wait a moment and ask again, rather than let the call end.
        _ => twiml::retry(&format!(
            "{}{}",
            o.inner.config.public_url,
            form.uri.path_and_query().map_or("", |p| p.as_str())
        )),
    })
}

async fn specialist(State(o): State<Orchestrator>, Query(leg): Query<Leg>, form: TwilioForm) -> Response {
    let Some(sid) = form.get("CallSid") else { return bad_request("CallSid") };
    let event = Event::SpecialistAnswered {
        transfer: leg.transfer,
        attempt: leg.attempt,
        leg: sid.to_owned(),
        answered_by: form.get("AnsweredBy").and_then(AnsweredBy::parse),
    };
    twiml_response(match o.dispatch(&leg.caller, event).await {
        Some(Reply::Join { conference }) => {
            o.spawn_bridge_watch(leg.caller.clone(), leg.transfer, leg.attempt);
            twiml::join(&conference)
        }
        _ => twiml::hang_up(),
    })
}

async fn specialist_status(
    State(o): State<Orchestrator>,
    Query(leg): Query<Leg>,
    form: TwilioForm,
) -> Response {
    let (Some(sid), Some(status)) = (form.get("CallSid"), form.get("CallStatus").and_then(LegStatus::parse))
    else {
        return bad_request("CallSid or CallStatus");
    };
    let event = Event::SpecialistStatus {
        transfer: leg.transfer,
        attempt: leg.attempt,
        leg: sid.to_owned(),
        status,
        key: form.delivery_key(),
        duration_s: form.get("CallDuration").and_then(|d| d.parse().ok()),
        answered_by: form.get("AnsweredBy").and_then(AnsweredBy::parse),
    };
    o.dispatch(&leg.caller, event).await;
    StatusCode::NO_CONTENT.into_response()
}

// ---- Vapi server messages ----

async fn vapi_webhook(State(o): State<Orchestrator>, headers: HeaderMap, body: Bytes) -> Response {
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if let Err(e) = o.inner.vapi_auth.verify(&headers, &body, now_s) {
        tracing::warn!(error = %e, "Vapi message rejected");
        return (StatusCode::FORBIDDEN, "unauthenticated server message").into_response();
    }
    let message = match ServerMessage::parse(&body) {
        Ok(message) => message,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable Vapi message refused");
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
    };
    let session = message.session.clone();
    let caller = o.caller_of(&session);
    if let (Some(caller), Some(lines)) = (&caller, message.transcript.clone()) {
        o.dispatch(caller, Event::Transcript { session: session.clone(), lines }).await;
    }
    let answer = match message.kind.as_str() {
        "tool-calls" => o.tool_calls(&message, caller.as_deref(), &session).await,
        "transfer-destination-request" => {
            let key = format!("destination-request:{session}:{}", message.timestamp);
            let requested = message.destination.as_deref();
            match o.transfer(caller.as_deref(), &session, key, requested).await {
                (true, _) => json!({"error": "One moment, I'm connecting you."}),
                (false, text) => json!({"error": text}),
            }
        }
        "phone-call-control" => {
            if message.request.as_deref() == Some("forward") {
                let key = format!("phone-call-control:{session}:{}", message.timestamp);
                let requested = message.destination.as_deref();
                o.transfer(caller.as_deref(), &session, key, requested).await;
            }
            json!({})
        }
        "end-of-call-report" => {
            if let Some(caller) = &caller {
                o.dispatch(caller, Event::SessionEnded { id: session }).await;
            }
            json!({})
        }
        "status-update" if message.status.as_deref() == Some("ended") => {
            if let Some(caller) = &caller {
                o.dispatch(caller, Event::SessionEnded { id: session }).await;
            }
            json!({})
        }
        _ => json!({}),
    };
    axum::Json(answer).into_response()
}

impl Orchestrator {
    /// The caller whose session `session` is (or was).
    fn caller_of(&self, session: &str) -> Option<String> {
        if session.is_empty() {
            return None;
        }
        match self.inner.store.get(&format!("session/{session}")) {
            Ok(found) => found.map(|b| String::from_utf8_lossy(&b).into_owned()),
            Err(e) => {
                tracing::error!(error = %e, "state store unreadable");
                None
            }
        }
    }

    /// Answers a `tool-calls` message: a result for every tool call, transfers started for ours.
    async fn tool_calls(&self, message: &ServerMessage, caller: Option<&str>, session: &str) -> Value {
        let mut results = Vec::new();
        for ToolCall { id, name, arguments } in &message.tool_calls {
            let text = if *name == self.inner.config.transfer_tool {
                let requested = ["department", "destination", "number", "phoneNumber"]
                    .iter()
                    .find_map(|k| arguments.get(*k).and_then(Value::as_str));
                self.transfer(caller, session, format!("tool-call:{id}"), requested).await.1
            } else {
                format!("This service does not handle the tool `{name}`.")
            };
            results.push(json!({"toolCallId": id, "name": name, "result": text}));
        }
        json!({"results": results})
    }

    /// Asks the machine for a transfer; whether it was accepted and what the assistant is told.
    async fn transfer(
        &self,
        caller: Option<&str>,
        session: &str,
        key: String,
        requested: Option<&str>,
    ) -> (bool, String) {
        let Some(caller) = caller else {
            return (false, "This call is not one this service placed; it cannot be transferred.".to_owned());
        };
        let destination = self.inner.config.specialists.resolve(requested);
        let event = Event::TransferRequested { key, session: session.to_owned(), destination };
        match self.dispatch(caller, event).await {
            Some(Reply::Transfer { accepted, text }) => (accepted, text),
            _ => (false, "The transfer could not be started.".to_owned()),
        }
    }
}

/// Serves `orchestrator` on `listener` until `shutdown` resolves, then waits (at most `drain`) for the
/// actions under way to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    orchestrator: Orchestrator,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    axum::serve(listener, orchestrator.router()).with_graceful_shutdown(shutdown).await?;
    if tokio::time::timeout(drain, orchestrator.idle()).await.is_err() {
        tracing::warn!("stopped with actions still under way; they resume from the store on the next start");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use tower::ServiceExt;

    use super::*;
    use crate::http::{ApiRequest, ApiResponse, HttpFuture};
    use crate::machine::Call;
    use crate::store::MemoryStore;

    const PUBLIC: &str = "http://orchestrator.test";
    const CALLER: &str = "CA00000000000000000000000000000c01";

    /// Answers every API request as Twilio would a call update, and keeps the requests.
    #[derive(Debug, Default)]
    struct Recorder(StdMutex<Vec<ApiRequest>>);

    impl HttpClient for Recorder {
        fn send(&self, request: ApiRequest) -> HttpFuture {
            self.0.lock().expect("lock").push(request);
            let body = format!(r#"{{"sid":"{CALLER}","status":"in-progress"}}"#);
            Box::pin(std::future::ready(Ok(ApiResponse { status: 200, body: Bytes::from(body) })))
        }
    }

    const LEG: &str = "CA00000000000000000000000000000d01";

    /// Answers a fetch of [`LEG`] from a script (then `busy`), everything else as [`Recorder`] does.
    #[derive(Debug, Default)]
    struct Scripted {
        leg: StdMutex<std::collections::VecDeque<(u16, &'static str)>>,
        fetches_of_leg: StdMutex<u32>,
    }

    impl HttpClient for Scripted {
        fn send(&self, request: ApiRequest) -> HttpFuture {
            let (status, body) = if request.url.contains(LEG) && request.method == http::Method::GET {
                *self.fetches_of_leg.lock().expect("lock") += 1;
                let (status, state) = self.leg.lock().expect("lock").pop_front().unwrap_or((200, "busy"));
                (status, format!(r#"{{"sid":"{LEG}","status":"{state}"}}"#))
            } else {
                (200, format!(r#"{{"sid":"{CALLER}","status":"in-progress","id":"session-2"}}"#))
            };
            Box::pin(std::future::ready(Ok(ApiResponse { status, body: Bytes::from(body) })))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_keeps_looking_when_twilio_does_not_answer_its_fetch() {
        let http = Arc::new(Scripted::default());
        http.leg.lock().expect("lock").extend([(503, "unused"), (200, "ringing")]);
        let store = Arc::new(MemoryStore::new());
        let config = Config::for_tests(PUBLIC, &["sales=+15550000201"]);
        let o = Orchestrator::new(config, http.clone(), store.clone());
        let mut call = Call::new(CALLER, "+15557770001", "+15550000100");
        call.phase = Phase::Holding;
        call.session = Some("session-1".into());
        call.transfers.push(crate::machine::Transfer {
            session: "session-1".into(),
            department: "sales".into(),
            numbers: vec!["+15550000201".into()],
            conference: "room-1".into(),
            attempts: vec![crate::machine::Attempt {
                number: "+15550000201".into(),
                leg: Some(LEG.into()),
                status: LegStatus::Ringing,
                answered_by: None,
                bridged: false,
                outcome: None,
            }],
            holding: true,
            outcome: None,
        });
        let stored = serde_json::to_vec(&call).expect("serializes");
        store.apply(vec![Write::Put(format!("call/{CALLER}"), stored)]).expect("stored");

        o.spawn_check(CALLER.into(), Duration::from_secs(45), Some((0, 0)));
        // The first look finds Twilio down (503), the second the leg still ringing, the third busy.
        tokio::time::sleep(Duration::from_secs(45 + 30 + 30 + 1)).await;
        o.idle().await;
        assert_eq!(*http.fetches_of_leg.lock().expect("lock"), 3);
        let bytes = store.get(&format!("call/{CALLER}")).expect("read").expect("kept");
        let call: Call = serde_json::from_slice(&bytes).expect("parses");
        assert_eq!(call.transfers[0].attempts[0].status, LegStatus::Busy, "{call:?}");
    }

    fn orchestrator(http: Arc<Recorder>) -> Orchestrator {
        let config = Config::for_tests(PUBLIC, &["sales=+15550000201"]);
        Orchestrator::new(config, http, Arc::new(MemoryStore::new()))
    }

    #[tokio::test]
    async fn the_hold_room_is_asked_for_with_retries_and_itself_as_the_fallback_url() {
        let http = Arc::new(Recorder::default());
        let o = orchestrator(http.clone());
        let call = Call::new(CALLER, "+15557770001", "+15550000100");
        let action = Action::Hold { transfer: 0, conference: "room-1".into() };
        assert!(matches!(o.perform(&call, action).await, Some(Event::Held { transfer: 0 })));
        let sent = http.0.lock().expect("lock");
        let form: Vec<(String, String)> = form_urlencoded::parse(&sent[0].body).into_owned().collect();
        let get = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let room = format!("{PUBLIC}/twilio/hold-room?caller={CALLER}&transfer=0&conference=room-1");
        assert_eq!(get("Url"), Some(format!("{room}#rc=2&rp=ct,5xx").as_str()));
        assert_eq!(get("FallbackUrl"), Some(room.as_str()));
        assert_eq!(get("FallbackMethod"), Some("POST"));
    }

    #[tokio::test]
    async fn the_hold_room_answers_twilios_fallback_request_with_the_same_document() {
        let o = orchestrator(Arc::new(Recorder::default()));
        let path = format!("/twilio/hold-room?caller={CALLER}&transfer=0&conference=room-1");
        let ask = |extra: &[(&str, &str)]| {
            let mut params: Vec<(String, String)> = vec![
                ("AccountSid".into(), "AC00000000000000000000000000000001".into()),
                ("CallSid".into(), CALLER.into()),
                ("CallStatus".into(), "in-progress".into()),
            ];
            params.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
            let signature = crate::twilio::signature("test-auth-token", &format!("{PUBLIC}{path}"), &params);
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
            axum::http::Request::post(path.as_str())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-twilio-signature", signature)
                .body(axum::body::Body::from(body))
                .expect("request")
        };
        let text = |response: Response| async move {
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
            (status, String::from_utf8_lossy(&body).into_owned())
        };
        let first = text(o.router().oneshot(ask(&[])).await.expect("answered")).await;
        let error_url = format!("{PUBLIC}{path}");
        let fallback = ask(&[("ErrorCode", "12100"), ("ErrorUrl", error_url.as_str())]);
        let again = text(o.router().oneshot(fallback).await.expect("answered")).await;
        assert_eq!(first.0, StatusCode::OK);
        assert!(first.1.contains("<Conference") && first.1.contains("room-1"), "{}", first.1);
        assert_eq!(again, first);
    }
}
