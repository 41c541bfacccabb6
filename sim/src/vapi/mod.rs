//! The fake Vapi: assistants, imported Twilio numbers and calls behind Vapi's REST API, scripted
//! assistant sessions on the caller's Twilio media stream, server messages to the customer's server,
//! live call control and native transfers — performed through the fake Twilio's REST API, as the real
//! Vapi does through real Twilio.
//!
//! Code map:
//! - [`model`]: the resources and their JSON; [`errors`]: Vapi's error bodies.
//! - [`calls`]: `POST/GET/PATCH/DELETE /call`, assistants and phone numbers on the world.
//! - [`twilio_side`]: what Vapi does with Twilio — the `/twilio/*` webhooks, the REST requests it makes.
//! - [`session`]: a call's life once its stream is up: speaking, hearing, the script, timeouts, the end.
//! - [`messages`]: server messages, their destination, authentication and answers.
//! - [`transfer`]: native transfers and live call control.
//! - [`rest`]: the axum router.
//! - [`script`]: how a scenario scripts the assistant (the fake has no language model).
//!
//! Like the fake Twilio, all of it runs on [`World`] without I/O: messages leave as deliveries, timers
//! go on the world's scheduler, and requests to Twilio call the fake Twilio's REST handlers in process
//! (journaled as HTTP exchanges from Vapi to Twilio).

pub mod auth;
pub mod calls;
pub mod errors;
pub mod messages;
pub mod model;
pub mod rest;
pub mod script;
pub mod session;
pub mod transfer;
pub mod twilio_side;

use std::ops::RangeInclusive;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::StreamSid;
use crate::rng::SimRng;
use crate::time::SimDuration;
use crate::world::World;

pub use self::messages::Purpose;
use self::model::{Assistant, PhoneNumber, Store, VapiCall};
use self::script::Script;

/// The key `ringback serve` and world files accept when they name none.
pub const DEFAULT_API_KEY: &str = "ringback-vapi-key";

/// The Vapi behaviours no source pins down, as configurable defaults (see `docs/defaults.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VapiDefaults {
    /// How a call ends when the caller's Twilio leg is redirected away from the stream. UNCONFIRMED:
    /// the references disagree between `customer-ended-call` and `phone-call-provider-closed-websocket`.
    pub redirected_away_ended_reason: String,
    /// How long a bypass call waits for Twilio to connect its stream before it ends with
    /// `phone-call-provider-bypass-enabled-but-no-call-received`. UNCONFIRMED.
    pub bypass_connect_timeout_s: f64,
    /// `type` of a bypass call that names none. The legacy docs say `outboundPhoneCall`.
    pub bypass_call_type: String,
    /// Silence before the call ends with `silence-timed-out` (the current spec no longer carries
    /// `silenceTimeoutSeconds` on assistants; 30 s was its documented default).
    pub silence_timeout_s: f64,
    /// Seconds of speech per word the assistant says.
    pub seconds_per_word: f64,
    /// How long the assistant takes to start answering the caller.
    pub response_delay_s: f64,
    /// The tool result Vapi records when the server does not answer a tool call usably. UNCONFIRMED
    /// beyond one captured artifact.
    pub tool_failure_result: String,
    /// How long a tool call may go unanswered before Vapi tells the server it is hanging (`hang`).
    /// UNCONFIRMED: the docs only say "delayed".
    pub hang_after_s: f64,
    /// How a call ends when a transfer fails and the fallback plan ends the call (or there is none).
    /// UNCONFIRMED.
    pub transfer_failed_ended_reason: String,
    /// How long Vapi lets a callee ring: an outbound call's customer, a warm transfer's destination
    /// (unless `transferPlan.timeout` says otherwise). `TransportConfigurationTwilio.timeout`'s default.
    pub ring_timeout_s: u32,
    /// What a blind transfer says first when the destination sets no `message` (the spec's default).
    pub transfer_message: String,
    /// How an HMAC credential writes its timestamp. UNCONFIRMED (see [`auth::TimestampUnit`]).
    pub hmac_timestamp_unit: auth::TimestampUnit,
    /// Whether a server's `backoffPlan` also retries a message that got no HTTP answer (a refused
    /// connection, a timeout), not only a non-2xx one. UNCONFIRMED: the spec says only "if the request
    /// fails".
    pub backoff_retries_unanswered: bool,
    /// The delay of a `backoffPlan` that gives no `baseDelaySeconds`. UNCONFIRMED: the spec requires the
    /// field and gives its example, 1.
    pub backoff_base_delay_s: f64,
}

impl Default for VapiDefaults {
    fn default() -> Self {
        VapiDefaults {
            redirected_away_ended_reason: "customer-ended-call".into(),
            bypass_connect_timeout_s: 60.0,
            bypass_call_type: "outboundPhoneCall".into(),
            silence_timeout_s: 30.0,
            seconds_per_word: 0.35,
            response_delay_s: 0.5,
            tool_failure_result: "No result returned.".into(),
            hang_after_s: 5.0,
            transfer_failed_ended_reason: "call.in-progress.error-transfer-failed".into(),
            ring_timeout_s: 60,
            transfer_message: "Transferring the call now".into(),
            hmac_timestamp_unit: auth::TimestampUnit::default(),
            backoff_retries_unanswered: true,
            backoff_base_delay_s: 1.0,
        }
    }
}

/// The fake Vapi's part of a world file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VapiConfig {
    /// Private API keys the REST API accepts as `Authorization: Bearer …`.
    pub api_keys: Vec<String>,
    /// Where the fake is reachable: the base of the stream, control and `/twilio/*` URLs it hands out.
    pub public_url: String,
    /// The organization's id; minted from the seed when absent.
    pub org_id: Option<String>,
    /// The organization's server (`org.server`): the last resort for server messages.
    pub server: Option<Value>,
    /// Assistants that exist from the start: `CreateAssistantDTO` objects, with an optional `id`.
    pub assistants: Vec<Value>,
    /// Imported Twilio numbers: `CreateTwilioPhoneNumberDTO` objects, with an optional `id`. Unlike
    /// `POST /phone-number`, these keep the Twilio webhooks the world file gives the number.
    pub phone_numbers: Vec<Value>,
    /// Webhook credentials (`server.credentialId` targets): `{id, authenticationPlan}`.
    pub credentials: Vec<Value>,
    /// What the assistants say and do.
    pub scripts: Vec<Script>,
    pub defaults: VapiDefaults,
}

impl Default for VapiConfig {
    fn default() -> Self {
        VapiConfig {
            api_keys: vec![DEFAULT_API_KEY.into()],
            public_url: "https://api.vapi.ai".into(),
            org_id: None,
            server: None,
            assistants: Vec::new(),
            phone_numbers: Vec::new(),
            credentials: Vec::new(),
            scripts: Vec::new(),
            defaults: VapiDefaults::default(),
        }
    }
}

/// The fake Vapi's state.
#[derive(Debug)]
pub struct VapiState {
    pub(crate) api_keys: Vec<String>,
    pub(crate) public_url: String,
    pub(crate) org_id: String,
    pub(crate) org_server: Option<Value>,
    pub(crate) credentials: Vec<auth::WebhookCredential>,
    pub(crate) scripts: Vec<Script>,
    pub(crate) defaults: VapiDefaults,
    pub(crate) rng: SimRng,
    pub(crate) assistants: Store<Assistant>,
    pub(crate) numbers: Store<PhoneNumber>,
    pub(crate) calls: Store<VapiCall>,
    /// Media streams Twilio opened to the fake, by the Vapi call they carry.
    pub(crate) streams: IndexMap<StreamSid, String>,
}

impl VapiState {
    pub(crate) fn new(config: VapiConfig, mut rng: SimRng) -> Self {
        let org_id = config.org_id.clone().unwrap_or_else(|| model::new_id(&mut rng));
        VapiState {
            api_keys: config.api_keys,
            public_url: config.public_url.trim_end_matches('/').to_owned(),
            org_id,
            org_server: config.server,
            credentials: Vec::new(),
            scripts: config.scripts,
            defaults: config.defaults,
            rng,
            assistants: Store::new(),
            numbers: Store::new(),
            calls: Store::new(),
            streams: IndexMap::new(),
        }
    }

    /// The public URL with its scheme made a WebSocket one (`https` → `wss`): the base of stream and
    /// listen URLs.
    pub fn ws_url(&self) -> String {
        model::ws_base(&self.public_url)
    }

    /// Whether `url` is one of the fake's own (so a webhook or stream to it stays in process).
    pub fn owns_url(&self, url: &str) -> bool {
        let ws = self.ws_url();
        [self.public_url.as_str(), ws.as_str()]
            .iter()
            .any(|base| url.strip_prefix(base).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn org_id(&self) -> &str {
        &self.org_id
    }

    pub(crate) fn new_id(&mut self) -> String {
        model::new_id(&mut self.rng)
    }
}

/// Things that happen by themselves at a scheduled time.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Twilio opened a stream to the fake: connect it to its call, or refuse it.
    StreamOpened {
        stream: StreamSid,
        url: String,
    },
    /// Twilio stopped a stream (the leg was redirected away or hung up).
    StreamStopped(StreamSid),
    /// A bypass call's stream never came.
    BypassDeadline(String),
    /// The assistant finished saying something.
    SpeechDone(String),
    /// The assistant answers the oldest utterance it has not answered.
    Respond(String),
    SilenceTimeout(String, u64),
    MaxDuration(String),
    /// Tool calls sent at this count are still unanswered: tell the server the assistant hangs.
    Hang(String, u64),
}

impl Event {
    pub fn describe(&self) -> String {
        match self {
            Event::StreamOpened { stream, .. } => format!("vapi accepts stream {stream}"),
            Event::StreamStopped(stream) => format!("vapi sees stream {stream} stop"),
            Event::BypassDeadline(id) => format!("vapi-call {id}: bypass deadline"),
            Event::SpeechDone(id) => format!("vapi-call {id}: assistant done speaking"),
            Event::Respond(id) => format!("vapi-call {id}: assistant responds"),
            Event::SilenceTimeout(id, _) => format!("vapi-call {id}: silence timeout"),
            Event::MaxDuration(id) => format!("vapi-call {id}: max duration"),
            Event::Hang(id, _) => format!("vapi-call {id}: still waiting for tools?"),
        }
    }
}

impl World {
    /// The world file's assistants and numbers.
    pub(crate) fn load_vapi(&mut self, config: &VapiConfig) -> Result<(), String> {
        for (i, credential) in config.credentials.iter().enumerate() {
            let credential = serde_json::from_value(credential.clone())
                .map_err(|e| format!("vapi.credentials[{i}]: {e}"))?;
            self.vapi.credentials.push(credential);
        }
        for (i, assistant) in config.assistants.iter().enumerate() {
            let mut body =
                assistant.as_object().cloned().ok_or(format!("vapi.assistants[{i}]: expected a table"))?;
            let id = world_file_id(&mut body, &format!("vapi.assistants[{i}]"))?;
            self.create_assistant_with_id(body, id)
                .map_err(|e| format!("vapi.assistants[{i}]: {}", e.message))?;
        }
        for (i, number) in config.phone_numbers.iter().enumerate() {
            let mut body =
                number.as_object().cloned().ok_or(format!("vapi.phone_numbers[{i}]: expected a table"))?;
            let id = world_file_id(&mut body, &format!("vapi.phone_numbers[{i}]"))?;
            self.import_number_with_id(body, id, false)
                .map_err(|e| format!("vapi.phone_numbers[{i}]: {}", e.message))?;
        }
        Ok(())
    }

    /// The fake Vapi's public base URL.
    pub fn vapi_url(&self) -> &str {
        self.vapi.public_url()
    }

    pub fn vapi_call(&self, id: &str) -> Option<&VapiCall> {
        self.vapi.calls.get(id)
    }

    pub fn vapi_calls(&self) -> impl Iterator<Item = &VapiCall> {
        self.vapi.calls.values()
    }

    pub(crate) fn handle_vapi_event(&mut self, event: Event) {
        match event {
            Event::StreamOpened { stream, url } => self.vapi_stream_opened(stream, &url),
            Event::StreamStopped(stream) => self.vapi_stream_stopped(stream),
            Event::BypassDeadline(id) => self.bypass_deadline(&id),
            Event::SpeechDone(id) => self.speech_done(&id),
            Event::Respond(id) => self.respond(&id),
            Event::SilenceTimeout(id, generation) => self.silence_timeout(&id, generation),
            Event::MaxDuration(id) => self.end_vapi_call(&id, "exceeded-max-duration"),
            Event::Hang(id, made) => {
                let waiting = self.vapi.calls.get(&id).is_some_and(|c| {
                    !c.is_ended() && c.session.tool_calls_made == made && !c.session.tools.is_empty()
                });
                if waiting {
                    self.send_message(&id, "hang", serde_json::json!({}));
                }
            }
        }
    }
}

/// The optional `id` of a world file's resource: a UUID, as the API's paths require, or none.
fn world_file_id(body: &mut Map<String, Value>, at: &str) -> Result<Option<String>, String> {
    match body.shift_remove("id") {
        None => Ok(None),
        Some(Value::String(id)) if uuid::Uuid::try_parse(&id).is_ok() => Ok(Some(id)),
        Some(other) => Err(format!(
            "{at}.id: expected a UUID such as \"0b1c5a34-7f31-4c6e-9d4e-1a2b3c4d5e6f\", got {other}"
        )),
    }
}

/// A JSON object's string field.
pub(crate) fn str_field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

/// Seconds from a JSON number, clamped to `bounds`, or a default when absent or not a positive number.
// Vapi's spec bounds these fields (`server.timeoutSeconds` 1-300, `maxDurationSeconds` 10-43200) and the
// real API refuses an assistant outside them. FIXME: the fake does not validate them where assistants
// are created; clamping here keeps a `1e308` from making a timer that never fires.
/// A server's `backoffPlan` (vapi.md §4, SPEC `BackoffPlan`): how the fake Vapi tries a server message
/// again when it fails. Vapi retries nothing by default (`maxRetries` 0, or no plan).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Backoff {
    /// `exponential` doubles the delay after each failure; `fixed` (the default) keeps it.
    pub(crate) exponential: bool,
    /// `maxRetries`, 0–10.
    pub(crate) max_retries: u8,
    /// `baseDelaySeconds`, 0–10 ([`VapiDefaults::backoff_base_delay_s`] when missing).
    pub(crate) base_delay: SimDuration,
    /// `excludedStatusCodes`: answers not retried. Every other non-2xx answer is.
    pub(crate) excluded: Vec<u16>,
    /// Whether a message with no HTTP answer is retried ([`VapiDefaults::backoff_retries_unanswered`]).
    pub(crate) unanswered: bool,
}

impl Backoff {
    /// The backoff plan of `server`, or `None` when it retries nothing.
    pub(crate) fn of(server: &Value, defaults: &VapiDefaults) -> Option<Backoff> {
        let plan = server.get("backoffPlan")?;
        let max_retries =
            plan.get("maxRetries").and_then(Value::as_f64).filter(|n| n.is_finite()).unwrap_or(0.0);
        // Within the spec's 0–10, so the cast cannot truncate.
        let max_retries = max_retries.clamp(0.0, 10.0).floor() as u8;
        if max_retries == 0 {
            return None;
        }
        let base =
            plan.get("baseDelaySeconds").and_then(Value::as_f64).filter(|n| n.is_finite()).unwrap_or(1.0);
        let excluded = plan
            .get("excludedStatusCodes")
            .and_then(Value::as_array)
            .map(|codes| {
                codes.iter().filter_map(Value::as_u64).filter_map(|c| u16::try_from(c).ok()).collect()
            })
            .unwrap_or_default();
        Some(Backoff {
            exponential: plan.get("type").and_then(Value::as_str) == Some("exponential"),
            max_retries,
            base_delay: SimDuration::from_secs_f64(if base.is_finite() {
                base.clamp(0.0, 10.0)
            } else {
                1.0
            }),
            excluded,
            unanswered: defaults.backoff_retries_unanswered,
        })
    }

    /// The wait before the attempt after `failed` attempts: the base delay, doubled after each failure
    /// but the first when exponential (UNCONFIRMED: the spec names the types, not the formula).
    pub(crate) fn delay(&self, failed: u8) -> SimDuration {
        if !self.exponential {
            return self.base_delay;
        }
        let doublings = i32::from(failed.saturating_sub(1));
        SimDuration::from_secs_f64(self.base_delay.as_secs_f64() * 2f64.powi(doublings))
    }
}

pub(crate) fn seconds(value: Option<&Value>, default: f64, bounds: RangeInclusive<f64>) -> SimDuration {
    let s = value.and_then(Value::as_f64).filter(|s| *s > 0.0).unwrap_or(default);
    SimDuration::from_secs_f64(s.clamp(*bounds.start(), *bounds.end()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_backoff_plan_is_read_within_the_spec_and_its_gaps_filled_by_the_defaults() {
        let defaults = VapiDefaults::default();
        let of = |plan: Value| Backoff::of(&json!({"url": "http://x", "backoffPlan": plan}), &defaults);
        assert_eq!(Backoff::of(&json!({"url": "http://x"}), &defaults), None, "no plan retries nothing");
        assert_eq!(of(json!({"type": "fixed", "maxRetries": 0, "baseDelaySeconds": 1})), None);
        let plan = of(json!({"type": "exponential", "maxRetries": 99, "baseDelaySeconds": 1e308,
                             "excludedStatusCodes": [400, 70000, "404"]}))
        .expect("a plan");
        assert_eq!((plan.max_retries, plan.base_delay.as_secs_f64(), plan.excluded), (10, 10.0, vec![400]));
        let plan = of(json!({"maxRetries": 2.7})).expect("a plan");
        assert_eq!((plan.max_retries, plan.exponential, plan.base_delay.as_secs_f64()), (2, false, 1.0));
        assert!(plan.unanswered);
        let exponential =
            Backoff { exponential: true, base_delay: SimDuration::from_secs(2), ..plan.clone() };
        let delays: Vec<f64> = (1..=4).map(|failed| exponential.delay(failed).as_secs_f64()).collect();
        assert_eq!(delays, [2.0, 4.0, 8.0, 16.0]);
        assert_eq!(plan.delay(3).as_secs_f64(), 1.0);
    }
}
