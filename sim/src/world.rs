//! The world: every account, number, call and conference of one run, its clock, scheduler and journal.
//!
//! The world is sans-IO. Inputs (a REST request, a due event, a webhook's response, a caller's action)
//! mutate it and queue [`Effect`]s; the async shell in [`crate::runtime`] performs them and feeds the
//! results back. Nothing here awaits, sleeps, or reads a clock: `now` is whatever the shell last said.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::faults::FaultAction;
use crate::ids::{AccountSid, CallSid, ConferenceSid, PhoneNumberSid, SidMint, StreamSid};
use crate::journal::{
    ANSWER_FAULT_PREFIX, Entity, Event as JournalEvent, ExchangeId, HttpExchange, HttpResponse, Journal,
    Party, TargetAnswer,
};
use crate::phone::{Behaviour, PhoneBook};
use crate::rng::SimRng;
use crate::sched::{Scheduler, TimerId};
use crate::time::{Epoch, SimDuration, SimInstant};
use crate::transport::{OutboundRequest, TargetResponse};
use crate::twilio::engine::{Conference, IncomingNumber, Leg};
use crate::twilio::signature::{ConnectionOverrides, RetryPolicy};
use crate::vapi::{VapiConfig, VapiState};
use crate::watch::{Then, Watch};

/// The Twilio behaviours no source pins down, as configurable defaults (see `docs/defaults.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioDefaults {
    /// How long Twilio waits for a webhook's response (DOC-ERR-11205: 15 s in total); the default of the
    /// connection overrides `rt` and `tt`.
    pub webhook_timeout_s: f64,
    /// How many times Twilio retries a failed webhook when its URL sets no `rc` (twilio.md: 1).
    pub webhook_retry_count: u8,
    /// Which failures Twilio retries when the URL sets no `rp`: `4xx`, `5xx`, `ct`, `rt` or `all`,
    /// comma separated. UNCONFIRMED: twilio.md gives `ct`, unconfirmed.
    pub webhook_retry_policy: String,
    /// What a caller hears when neither the URL nor the fallback gives usable TwiML. UNCONFIRMED text.
    pub application_error_message: String,
    /// Seconds of audio per `<Play>` loop: the fake does not download media.
    pub play_length_s: f64,
    /// Seconds of speech per word of `<Say>`.
    pub say_seconds_per_word: f64,
    /// Document fetches in a row without a verb that takes time before Twilio gives up on the call.
    /// UNCONFIRMED: Twilio stops redirect loops; the exact limit is not documented.
    pub max_fetches_without_progress: u32,
    /// Participants a conference needs before it starts (one of them with `startConferenceOnEnter`).
    pub conference_start_participants: usize,
    /// How long answering machine detection takes to recognise a person.
    pub amd_human_s: f64,
    /// How long `MachineDetection=Enable` takes to recognise a machine (its speech threshold).
    pub amd_machine_start_s: f64,
    /// How long detection takes to recognise a fax tone.
    pub amd_fax_s: f64,
    /// A REST participant with `MachineDetection` joins as soon as it answers, and the result goes to
    /// `AmdStatusCallback` later. UNCONFIRMED: set `false` to hold the join until detection is done.
    pub participant_joins_before_amd: bool,
    /// The account's calls per second: calls created with `POST /Calls` are queued and dialed at this
    /// rate ("Every Twilio account has 1 CPS by default"; the Call resource: "Calls beyond your account's
    /// CPS limit will be queued and will execute at the CPS rate"), and `queue_time` says how long the
    /// new call waits. `<Dial>` and participant calls are not counted (the Call resource: "Inbound calls
    /// and `<Dial>` calls are not limited by CPS"; participants UNCONFIRMED).
    pub calls_per_second: f64,
    /// How many seconds of queued calls an account may have before `POST /Calls` is refused with 22005
    /// (DOC-ERR-22005: "Twilio will reject requests to place calls that will not be placed within 24
    /// hours"). The HTTP status of that refusal is UNCONFIRMED: 400.
    pub max_queue_s: f64,
    /// REST requests one account may have in flight before the API answers `429` with 20429
    /// (DOC-ERR-20429: "exceeds allowed concurrency"). UNCONFIRMED: the limit is not documented; 100 is
    /// what Twilio's support articles quote.
    pub max_concurrent_requests: usize,
    /// A call placed to one of the world's own Twilio numbers (a `<Dial>` to the number that was called,
    /// say) fails `failed` with SIP 482 Loop Detected. UNCONFIRMED: real Twilio routes such a call back
    /// in as a new inbound call to that number, which the fake does not model; `false` makes the number
    /// ring like any phone of the phone book instead.
    pub own_number_loop_detected: bool,
}

impl Default for TwilioDefaults {
    fn default() -> Self {
        TwilioDefaults {
            webhook_timeout_s: 15.0,
            webhook_retry_count: 1,
            webhook_retry_policy: "ct".into(),
            application_error_message: "We are sorry, an application error has occurred. Goodbye.".into(),
            play_length_s: 5.0,
            say_seconds_per_word: 0.4,
            max_fetches_without_progress: 100,
            conference_start_participants: 2,
            amd_human_s: 2.2,
            amd_machine_start_s: 2.4,
            amd_fax_s: 1.5,
            participant_joins_before_amd: true,
            calls_per_second: 1.0,
            max_queue_s: 86_400.0,
            max_concurrent_requests: 100,
            own_number_loop_detected: true,
        }
    }
}

/// An account the fake Twilio accepts, and the numbers it owns at the start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub sid: AccountSid,
    pub auth_token: String,
    #[serde(default)]
    pub numbers: Vec<NumberConfig>,
}

/// A Twilio number an account owns, with its voice webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberConfig {
    pub phone_number: String,
    #[serde(default)]
    pub voice_url: Option<String>,
    #[serde(default)]
    pub voice_method: Option<String>,
    #[serde(default)]
    pub voice_fallback_url: Option<String>,
    #[serde(default)]
    pub status_callback: Option<String>,
}

/// Everything a world starts from: a world file, or a scenario's world section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldConfig {
    pub seed: u64,
    pub epoch: Option<i64>,
    pub accounts: Vec<AccountConfig>,
    pub phones: IndexMap<String, Behaviour>,
    pub twilio: TwilioDefaults,
    pub vapi: VapiConfig,
    /// Faults injected into the webhooks sent to the target.
    pub faults: Vec<crate::faults::WebhookFault>,
}

/// Everything the world can put on its scheduler.
#[derive(Clone, Debug, PartialEq)]
pub enum WorldEvent {
    Twilio(crate::twilio::engine::Event),
    Vapi(crate::vapi::Event),
    /// A webhook between the two fakes (Twilio calling the fake Vapi's `/twilio/…` routes) is answered
    /// in process, as its own step, so neither fake is re-entered.
    Local(DeliveryId),
    /// A webhook held back by a `delay` fault is sent now.
    Delayed(DeliveryId),
    /// A webhook a `drop` fault swallowed fails now, as a refused connection would.
    Dropped(DeliveryId),
    /// A webhook whose sender waited out a backoff goes again.
    Retry(DeliveryId),
    /// An answer a `slow-answer` fault held back reaches the sender now (or the sender gives up now).
    Answer(DeliveryId),
    /// A watched moment came (`Then::Signal`): the shell is told now.
    Signal(u64),
}

impl WorldEvent {
    pub fn describe(&self) -> String {
        match self {
            WorldEvent::Twilio(e) => e.describe(),
            WorldEvent::Vapi(e) => e.describe(),
            WorldEvent::Local(id) => format!("in-process webhook {}", id.0),
            WorldEvent::Delayed(id) => format!("delayed webhook {}", id.0),
            WorldEvent::Dropped(id) => format!("dropped webhook {}", id.0),
            WorldEvent::Retry(id) => format!("webhook {} tried again", id.0),
            WorldEvent::Answer(id) => format!("slow answer to webhook {}", id.0),
            WorldEvent::Signal(id) => format!("signal {id}"),
        }
    }
}

impl From<crate::twilio::engine::Event> for WorldEvent {
    fn from(e: crate::twilio::engine::Event) -> Self {
        WorldEvent::Twilio(e)
    }
}

impl From<crate::vapi::Event> for WorldEvent {
    fn from(e: crate::vapi::Event) -> Self {
        WorldEvent::Vapi(e)
    }
}

/// What to do with a webhook's response, by the fake that sent it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Purpose {
    Twilio(crate::twilio::engine::Purpose),
    Vapi(crate::vapi::Purpose),
    /// A copy a fault added (a duplicate, a forgery): nobody acts on its answer.
    Ignore {
        from: Party,
        timeout: SimDuration,
        expects_twiml: bool,
    },
}

impl Purpose {
    fn sender(&self) -> Party {
        match self {
            Purpose::Twilio(_) => Party::Twilio,
            Purpose::Vapi(_) => Party::Vapi,
            Purpose::Ignore { from, .. } => *from,
        }
    }

    fn expects_twiml(&self) -> bool {
        use crate::twilio::engine::Purpose as P;
        match self {
            Purpose::Twilio(P::Twiml { .. } | P::HoldAudio { .. }) => true,
            Purpose::Twilio(P::Callback { .. }) | Purpose::Vapi(_) => false,
            Purpose::Ignore { expects_twiml, .. } => *expects_twiml,
        }
    }

    /// What a copy of this webhook (a duplicate, a forgery) is for: only journaling its answer.
    fn copy(&self, world: &World) -> Purpose {
        Purpose::Ignore {
            from: self.sender(),
            timeout: self.timeout(world),
            expects_twiml: self.expects_twiml(),
        }
    }

    fn timeout(&self, world: &World) -> SimDuration {
        match self {
            Purpose::Twilio(_) => SimDuration::from_secs_f64(world.defaults.webhook_timeout_s),
            Purpose::Vapi(p) => p.timeout,
            Purpose::Ignore { timeout, .. } => *timeout,
        }
    }
}

impl From<crate::twilio::engine::Purpose> for Purpose {
    fn from(p: crate::twilio::engine::Purpose) -> Self {
        Purpose::Twilio(p)
    }
}

impl From<crate::vapi::Purpose> for Purpose {
    fn from(p: crate::vapi::Purpose) -> Self {
        Purpose::Vapi(p)
    }
}

/// A webhook in flight.
#[derive(Debug)]
pub(crate) struct Pending {
    exchange: ExchangeId,
    purpose: Purpose,
    timeout: SimDuration,
    /// Kept for in-process deliveries, which the world answers itself.
    request: Option<OutboundRequest>,
    sent_at: SimInstant,
    /// A fault on the answer: what the sender gets instead of the target's.
    answer_fault: Option<FaultAction>,
    /// How Twilio retries it if it fails.
    retry: Option<Retry>,
}

/// How a failed webhook is tried again.
#[derive(Clone, Debug)]
pub(crate) enum RetryPlan {
    /// Twilio: at once, per the URL's connection overrides `rc` and `rp`, while `tt` lasts (the
    /// deadline) (twilio.md §5 "connection overrides").
    Twilio { overrides: ConnectionOverrides, deadline: SimInstant },
    /// Vapi: after the delays of the server's `backoffPlan` (vapi.md §4).
    Vapi(crate::vapi::Backoff),
}

/// A webhook's retries: what is sent again, how many attempts so far, and under which plan.
#[derive(Clone, Debug)]
pub(crate) struct Retry {
    request: OutboundRequest,
    /// Attempts made so far, this one included.
    attempt: u8,
    plan: RetryPlan,
}

impl Retry {
    fn new(request: OutboundRequest, plan: RetryPlan) -> Retry {
        Retry { request, attempt: 1, plan }
    }

    /// How long this attempt may wait for its answer: Twilio's `rt`, within what is left of `tt`; a
    /// Vapi message waits its server's `timeoutSeconds` each time (the purpose's).
    fn timeout(&self, now: SimInstant) -> Option<SimDuration> {
        let RetryPlan::Twilio { overrides, deadline } = &self.plan else { return None };
        let read = SimDuration::from_millis(u64::from(overrides.read_timeout_ms));
        let left = *deadline - now;
        Some(if left.as_micros() < read.as_micros() { left.max(SimDuration::from_millis(1)) } else { read })
    }

    /// Why the outcome is retried under the plan, if it is and attempts are left.
    fn retried(&self, outcome: &Result<TargetResponse, DeliveryError>, now: SimInstant) -> Option<String> {
        match &self.plan {
            RetryPlan::Twilio { overrides, deadline } => {
                if self.attempt > overrides.retry_count || now >= *deadline {
                    return None;
                }
                let RetryPolicy { on_4xx, on_5xx, on_connect_timeout, on_read_timeout } =
                    overrides.retry_policy;
                match outcome {
                    Ok(r) if (400..500).contains(&r.status) && on_4xx => Some(format!("HTTP {}", r.status)),
                    Ok(r) if (500..600).contains(&r.status) && on_5xx => Some(format!("HTTP {}", r.status)),
                    Err(DeliveryError::Connect(e)) if on_connect_timeout => {
                        Some(format!("no connection ({e})"))
                    }
                    Err(DeliveryError::Timeout) if on_read_timeout => Some("no answer in time".to_owned()),
                    _ => None,
                }
            }
            RetryPlan::Vapi(backoff) => {
                if self.attempt > backoff.max_retries {
                    return None;
                }
                match outcome {
                    Ok(r) if (200..300).contains(&r.status) || backoff.excluded.contains(&r.status) => None,
                    Ok(r) => Some(format!("HTTP {}", r.status)),
                    Err(_) if !backoff.unanswered => None,
                    Err(DeliveryError::Timeout) => Some("no answer in time".to_owned()),
                    Err(e) => Some(e.to_string()),
                }
            }
        }
    }

    /// How long after a failed attempt the next goes.
    fn delay(&self) -> SimDuration {
        match &self.plan {
            RetryPlan::Twilio { .. } => SimDuration::ZERO,
            RetryPlan::Vapi(backoff) => backoff.delay(self.attempt),
        }
    }

    /// Who retries, and how many attempts there may be in all.
    fn describe(&self) -> (&'static str, u32) {
        match &self.plan {
            RetryPlan::Twilio { overrides, .. } => ("twilio", u32::from(overrides.retry_count) + 1),
            RetryPlan::Vapi(backoff) => ("vapi", u32::from(backoff.max_retries) + 1),
        }
    }
}

/// A webhook held back by a `delay` fault.
#[derive(Debug)]
struct Delayed {
    request: OutboundRequest,
    purpose: Purpose,
    after: SimDuration,
    retry: Option<Retry>,
}

/// A side effect for the shell to perform.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send a webhook and report the outcome with [`World::complete_delivery`].
    Deliver(Delivery),
    /// Open a media-stream WebSocket to an external server and report with [`World::stream_report`].
    OpenStream(StreamOpen),
    /// Stop a media stream the shell opened.
    StopStream(StreamSid),
    /// Send DTMF on a bidirectional stream.
    StreamDtmf(StreamSid, char),
    /// A watched moment came (see [`crate::watch::Then::Signal`]); nothing to report back.
    Signal(u64),
}

/// A webhook to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub request: OutboundRequest,
    pub timeout: SimDuration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId(pub u64);

/// Why a webhook got no usable response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryError {
    Timeout,
    Connect(String),
    /// The response was longer than the sender reads (`transport::MAX_RESPONSE_BYTES`).
    TooLarge {
        limit: usize,
    },
    Other(String),
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryError::Timeout => f.write_str("no answer in time"),
            DeliveryError::Connect(e) | DeliveryError::Other(e) => f.write_str(e),
            DeliveryError::TooLarge { limit } => write!(f, "response larger than {limit} bytes"),
        }
    }
}

/// A stream for the shell to open.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamOpen {
    pub stream: StreamSid,
    pub call: CallSid,
    pub account: AccountSid,
    pub url: String,
    pub parameters: Vec<(String, String)>,
    pub bidirectional: bool,
}

/// What the shell saw on a media stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamReport {
    Connected,
    Closed { by_server: bool },
    Failed(String),
}

/// The fake Twilio's state.
#[derive(Debug, Default)]
pub struct TwilioState {
    pub accounts: IndexMap<AccountSid, String>,
    pub numbers: IndexMap<PhoneNumberSid, IncomingNumber>,
    pub calls: IndexMap<CallSid, Leg>,
    pub conferences: IndexMap<ConferenceSid, Conference>,
    pub streams: IndexMap<StreamSid, CallSid>,
    /// When each account's call queue next dials: `POST /Calls` takes the next free slot at the account's
    /// calls per second.
    pub dial_slots: IndexMap<AccountSid, SimInstant>,
}

/// One run's world.
#[derive(Debug)]
pub struct World {
    pub(crate) now: SimInstant,
    pub(crate) epoch: Epoch,
    pub(crate) defaults: TwilioDefaults,
    pub(crate) journal: Journal,
    pub(crate) sched: Scheduler<WorldEvent>,
    pub(crate) mint: SidMint,
    pub(crate) phones: PhoneBook,
    pub(crate) twilio: TwilioState,
    pub(crate) vapi: VapiState,
    pub(crate) pending: IndexMap<DeliveryId, Pending>,
    /// The timers of each leg's Twilio events, so that dropping a leg's stale timers looks at its own
    /// and not at the whole queue. It may name timers that already fired; a leg's entry goes when the
    /// leg ends.
    pub(crate) leg_timers: std::collections::BTreeMap<CallSid, Vec<TimerId>>,
    next_delivery: u64,
    faults: Vec<(crate::faults::WebhookFault, u32)>,
    /// Webhooks a `delay` fault holds back.
    delayed: IndexMap<DeliveryId, Delayed>,
    /// Webhooks waiting out a backoff before they are tried again.
    retrying: IndexMap<DeliveryId, (Purpose, Retry)>,
    /// Answers a `slow-answer` fault holds back, with what the sender will get.
    held: IndexMap<DeliveryId, (Pending, Result<TargetResponse, DeliveryError>)>,
    /// What scripted callers and the harness wait for (`watch`), and how far the journal has been read for them.
    watches: Vec<Watch>,
    watched_up_to: usize,
    effects: Vec<Effect>,
    seed: u64,
}

impl World {
    /// A world built from `config`. Errors name what is wrong in it.
    pub fn new(config: WorldConfig) -> Result<World, String> {
        let rng = SimRng::new(config.seed);
        let mut world = World {
            now: SimInstant::ZERO,
            epoch: config.epoch.map(Epoch).unwrap_or_default(),
            defaults: config.twilio,
            journal: Journal::new(),
            sched: Scheduler::default(),
            mint: SidMint::new(rng.derive("sids")),
            phones: PhoneBook::default(),
            twilio: TwilioState::default(),
            vapi: VapiState::new(config.vapi.clone(), rng.derive("vapi")),
            pending: IndexMap::new(),
            leg_timers: std::collections::BTreeMap::new(),
            next_delivery: 0,
            faults: config.faults.iter().cloned().map(|f| (f, 0)).collect(),
            delayed: IndexMap::new(),
            retrying: IndexMap::new(),
            held: IndexMap::new(),
            watches: Vec::new(),
            watched_up_to: 0,
            effects: Vec::new(),
            seed: config.seed,
        };
        for (number, behaviour) in config.phones {
            world.phones.set(number, behaviour);
        }
        for account in config.accounts {
            if world.twilio.accounts.insert(account.sid, account.auth_token).is_some() {
                return Err(format!("account {} is listed twice", account.sid));
            }
            for number in account.numbers {
                world.add_number(account.sid, number)?;
            }
        }
        for token in world.twilio.accounts.values().cloned().collect::<Vec<_>>() {
            world.journal.keep_secret(&token);
        }
        for key in &config.vapi.api_keys {
            world.journal.keep_secret(key);
        }
        for secret in config.vapi.server.iter().flat_map(crate::journal::json_secrets) {
            world.journal.keep_secret(&secret);
        }
        world.load_vapi(&config.vapi)?;
        Ok(world)
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn now(&self) -> SimInstant {
        self.now
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn journal_mut(&mut self) -> &mut Journal {
        &mut self.journal
    }

    pub fn phones_mut(&mut self) -> &mut PhoneBook {
        &mut self.phones
    }

    /// Moves the clock forward; time never goes back.
    pub fn advance_to(&mut self, now: SimInstant) {
        if now > self.now {
            self.now = now;
        }
    }

    /// When the next scheduled event is due.
    pub fn next_due(&self) -> Option<SimInstant> {
        self.sched.next_due()
    }

    /// Nothing scheduled, no webhook in flight and no media stream open: the world will not change by
    /// itself.
    pub fn is_quiescent(&self) -> bool {
        self.sched.is_empty()
            && self.pending.is_empty()
            && self.twilio.streams.is_empty()
            && !(self.watched_up_to < self.journal.len() && self.watches.iter().any(Watch::armed))
    }

    /// Whether `id` names something of this world: a call or conference SID, a conference's friendly
    /// name, or a Vapi call id. How a front serving many worlds on one port tells whose a request is.
    pub fn knows(&self, id: &str) -> bool {
        if let Ok(sid) = id.parse::<CallSid>() {
            return self.twilio.calls.contains_key(&sid);
        }
        if let Ok(sid) = id.parse::<ConferenceSid>() {
            return self.twilio.conferences.contains_key(&sid);
        }
        self.vapi.calls.contains_key(id) || self.twilio.conferences.values().any(|c| c.friendly_name == id)
    }

    /// A webhook is in flight, held back by a fault, or its answer is: something may still reach the
    /// target.
    pub fn deliveries_outstanding(&self) -> bool {
        !(self.pending.is_empty()
            && self.delayed.is_empty()
            && self.held.is_empty()
            && self.retrying.is_empty())
    }

    /// Every call placed so far has ended (and at least one was placed).
    pub fn calls_ended(&self) -> bool {
        !self.twilio.calls.is_empty() && self.twilio.calls.values().all(|leg| leg.state.is_ended())
    }

    /// Webhooks sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Runs every event due by now, in order.
    pub fn fire_due(&mut self) {
        self.watch_journal();
        while let Some((_, event)) = self.sched.pop_due(self.now) {
            match event {
                WorldEvent::Twilio(event) => self.handle_event(event),
                WorldEvent::Vapi(event) => self.handle_vapi_event(event),
                WorldEvent::Local(id) => self.answer_locally(id),
                WorldEvent::Delayed(id) => {
                    if let Some(Delayed { request, purpose, after, retry }) = self.delayed.shift_remove(&id) {
                        self.send(id, request, purpose, Some(format!("delayed {after}")), None, retry);
                    }
                }
                WorldEvent::Retry(id) => {
                    if let Some((purpose, retry)) = self.retrying.shift_remove(&id) {
                        self.attempt(id, retry.request.clone(), purpose, Some(retry));
                    }
                }
                WorldEvent::Dropped(id) => {
                    let error = DeliveryError::Connect("dropped by the run's fault plan".into());
                    self.complete_delivery(id, Err(error));
                }
                WorldEvent::Answer(id) => {
                    if let Some((pending, outcome)) = self.held.shift_remove(&id) {
                        self.finish_delivery(pending, outcome);
                    }
                }
                WorldEvent::Signal(id) => self.push_effect(Effect::Signal(id)),
            }
            self.watch_journal();
        }
    }

    /// Watches the journal for `watch`'s moment; `after` it comes, the caller hangs up or the signal is
    /// raised (`watch.then`).
    pub fn watch(&mut self, watch: Watch) {
        self.watches.push(watch);
    }

    /// Reads the journal lines no watch has seen yet; a watch whose moment came schedules its hang-up or signal,
    /// counted from the line that shows the moment.
    fn watch_journal(&mut self) {
        if !self.watches.iter().any(Watch::armed) {
            self.watched_up_to = self.journal.len();
            return;
        }
        while self.watched_up_to < self.journal.len() {
            let entry = self.journal.entries()[self.watched_up_to].clone();
            self.watched_up_to += 1;
            let mut fired = Vec::new();
            for watch in self.watches.iter_mut().filter(|w| w.armed()) {
                if watch.sees(&entry.event) {
                    fired.push((watch.call, watch.then, entry.at + watch.after, watch.describe()));
                }
            }
            for (call, then, due, what) in fired {
                let after = due - self.now;
                match then {
                    Then::HangUp => {
                        self.note(format!("call {call}: the caller hangs up {what}"));
                        self.schedule(after, crate::twilio::engine::Event::RemoteHangup(call));
                    }
                    Then::Signal(id) => {
                        self.note(format!("call {call}: signal {id} {what}"));
                        self.schedule(after, WorldEvent::Signal(id));
                    }
                }
            }
        }
    }

    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    pub fn has_effects(&self) -> bool {
        !self.effects.is_empty()
    }

    pub(crate) fn schedule(&mut self, after: SimDuration, event: impl Into<WorldEvent>) -> TimerId {
        let event = event.into();
        let due = self.now + after;
        self.journal.record(self.now, JournalEvent::Scheduled { due, what: event.describe() });
        let call = match &event {
            WorldEvent::Twilio(e) => Some(e.call()),
            _ => None,
        };
        let id = self.sched.schedule(due, event);
        if let Some(call) = call {
            self.leg_timers.entry(call).or_default().push(id);
        }
        id
    }

    pub(crate) fn transition(&mut self, entity: Entity, from: &str, to: &str, cause: Option<&str>) {
        self.journal.transition(self.now, entity, from, to, cause);
    }

    /// Journals a new call leg (which must already exist) in its first state.
    pub(crate) fn call_created(&mut self, call: CallSid, state: &str, cause: &str) {
        let Some(leg) = self.twilio.calls.get(&call) else { return };
        let event = crate::journal::Event::CallCreated {
            call,
            direction: leg.direction.as_str().to_owned(),
            from: leg.from.clone(),
            to: leg.to.clone(),
            state: state.to_owned(),
            cause: cause.to_owned(),
        };
        self.journal.record(self.now, event);
    }

    pub(crate) fn hear(&mut self, call: CallSid, hears: impl Into<String>) {
        self.journal.record(self.now, JournalEvent::Audio { call, hears: hears.into() });
    }

    pub(crate) fn note(&mut self, text: impl Into<String>) {
        self.journal.note(self.now, text);
    }

    /// Queues a webhook; `purpose` says what to do with its response and which fake sends it. Webhooks to
    /// the target go through the run's fault plan first.
    pub(crate) fn deliver(&mut self, request: OutboundRequest, purpose: impl Into<Purpose>) -> DeliveryId {
        let id = self.next_id();
        self.attempt(id, request, purpose.into(), None);
        id
    }

    /// Queues a webhook that its sender tries again as `plan` says if it fails.
    pub(crate) fn deliver_retried(
        &mut self,
        request: OutboundRequest,
        purpose: impl Into<Purpose>,
        plan: RetryPlan,
    ) -> DeliveryId {
        let id = self.next_id();
        let retry = Retry::new(request.clone(), plan);
        self.attempt(id, request, purpose.into(), Some(retry));
        id
    }

    /// Twilio's retry plan for a webhook to `url`: its connection overrides over the world's defaults,
    /// `tt` counted from now.
    pub(crate) fn twilio_retries(&self, url: &str) -> RetryPlan {
        let overrides = self.connection_overrides(url);
        let deadline = self.now + SimDuration::from_millis(u64::from(overrides.total_time_ms));
        RetryPlan::Twilio { overrides, deadline }
    }

    /// The connection overrides of a Twilio webhook URL over the world's defaults.
    pub(crate) fn connection_overrides(&self, url: &str) -> ConnectionOverrides {
        let timeout_ms = (self.defaults.webhook_timeout_s * 1000.0).round().clamp(100.0, 15_000.0) as u32;
        let base = ConnectionOverrides {
            read_timeout_ms: timeout_ms,
            total_time_ms: timeout_ms,
            retry_count: self.defaults.webhook_retry_count.min(5),
            retry_policy: RetryPolicy::parse(&self.defaults.webhook_retry_policy).unwrap_or_default(),
            ..ConnectionOverrides::default()
        };
        crate::twilio::signature::connection_overrides_over(url, base).1
    }

    /// One attempt at a webhook, through the fault plan.
    fn attempt(&mut self, id: DeliveryId, request: OutboundRequest, purpose: Purpose, retry: Option<Retry>) {
        let sender = purpose.sender();
        let fault = if self.vapi.owns_url(&request.url) { None } else { self.fault_for(sender, &request) };
        match fault {
            None => {
                self.send(id, request, purpose, None, None, retry);
            }
            Some(FaultAction::Duplicate) => {
                let (copy, copy_purpose) = (request.clone(), purpose.copy(self));
                let first = self.send(id, request, purpose, None, None, retry);
                let seq = self.journal.seq_of(first);
                let extra = self.next_id();
                self.send(extra, copy, copy_purpose, Some(format!("duplicate of #{seq}")), None, None);
            }
            Some(FaultAction::Delay { delay_s }) => {
                let after = SimDuration::from_secs_f64(delay_s.max(0.0));
                self.delayed.insert(id, Delayed { request, purpose, after, retry });
                self.schedule(after, WorldEvent::Delayed(id));
            }
            Some(FaultAction::Drop) => {
                self.send_nowhere(id, request, purpose, retry);
                self.schedule(SimDuration::ZERO, WorldEvent::Dropped(id));
            }
            Some(FaultAction::Forge) => {
                let (forged, why) = crate::faults::forge(sender, request.clone());
                let copy_purpose = purpose.copy(self);
                self.send(id, request, purpose, None, None, retry);
                let extra = self.next_id();
                self.send(extra, forged, copy_purpose, Some(why.to_owned()), None, None);
            }
            Some(answer) => {
                let what = match &answer {
                    FaultAction::SlowAnswer { delay_s } => {
                        format!("slow {}", SimDuration::from_secs_f64(delay_s.max(0.0)))
                    }
                    FaultAction::ServerError => "HTTP 500".to_owned(),
                    _ => "unparsable TwiML".to_owned(),
                };
                self.send(
                    id,
                    request,
                    purpose,
                    Some(format!("{ANSWER_FAULT_PREFIX}{what}")),
                    Some(answer),
                    retry,
                );
            }
        }
    }

    fn next_id(&mut self) -> DeliveryId {
        let id = DeliveryId(self.next_delivery);
        self.next_delivery += 1;
        id
    }

    /// The action of the first fault that takes this webhook, counting matches for `nth`.
    fn fault_for(&mut self, sender: Party, request: &OutboundRequest) -> Option<FaultAction> {
        for (fault, seen) in &mut self.faults {
            if !fault.matches(sender, request) {
                continue;
            }
            *seen += 1;
            if fault.nth.is_none_or(|n| n == *seen) {
                return Some(fault.action.clone());
            }
        }
        None
    }

    /// Journals the exchange and hands it to the shell (or answers it in process).
    fn send(
        &mut self,
        id: DeliveryId,
        request: OutboundRequest,
        purpose: Purpose,
        fault: Option<String>,
        answer_fault: Option<FaultAction>,
        retry: Option<Retry>,
    ) -> ExchangeId {
        let local = self.vapi.owns_url(&request.url);
        let from = purpose.sender();
        let timeout =
            retry.as_ref().and_then(|r| r.timeout(self.now)).unwrap_or_else(|| purpose.timeout(self));
        let exchange = self.begin_exchange(from, local, &request, fault, purpose.expects_twiml());
        let sent_at = self.now;
        let pending = |request| Pending { exchange, purpose, timeout, request, sent_at, answer_fault, retry };
        if local {
            self.pending.insert(id, pending(Some(request)));
            self.schedule(SimDuration::ZERO, WorldEvent::Local(id));
        } else {
            self.pending.insert(id, pending(None));
            self.effects.push(Effect::Deliver(Delivery { id, request, timeout }));
        }
        exchange
    }

    /// Journals an exchange that a `drop` fault keeps from the target.
    fn send_nowhere(
        &mut self,
        id: DeliveryId,
        request: OutboundRequest,
        purpose: Purpose,
        retry: Option<Retry>,
    ) {
        let from = purpose.sender();
        let timeout =
            retry.as_ref().and_then(|r| r.timeout(self.now)).unwrap_or_else(|| purpose.timeout(self));
        let exchange =
            self.begin_exchange(from, false, &request, Some("dropped".to_owned()), purpose.expects_twiml());
        let sent_at = self.now;
        let pending =
            Pending { exchange, purpose, timeout, request: None, sent_at, answer_fault: None, retry };
        self.pending.insert(id, pending);
    }

    fn begin_exchange(
        &mut self,
        from: Party,
        local: bool,
        request: &OutboundRequest,
        fault: Option<String>,
        expects_twiml: bool,
    ) -> ExchangeId {
        self.journal.begin_http(
            self.now,
            HttpExchange {
                from,
                to: if local { Party::Vapi } else { Party::Target },
                method: request.method.to_string(),
                url: request.url.clone(),
                request_headers: request
                    .headers
                    .iter()
                    .filter(|(name, _)| journaled_header(name))
                    .map(|(name, value)| (name.clone(), crate::http_journal::redact_header(name, value)))
                    .collect(),
                request_body: String::from_utf8_lossy(&request.body).into_owned(),
                response: None,
                error: None,
                finished_at: None,
                expects_twiml,
                fault,
                target_answer: None,
            },
        )
    }

    /// The shell reports a webhook's outcome. An answer fault changes what the sender gets here (the
    /// target's own answer stays in the journal); the sender then acts on it.
    pub fn complete_delivery(&mut self, id: DeliveryId, outcome: Result<TargetResponse, DeliveryError>) {
        let Some(mut pending) = self.pending.shift_remove(&id) else { return };
        let outcome = match (pending.answer_fault.take(), outcome) {
            (Some(fault), Ok(answer)) => {
                let response = journaled_response(&answer);
                self.journal.target_answered(pending.exchange, TargetAnswer { at: self.now, response });
                match fault {
                    FaultAction::SlowAnswer { delay_s } => {
                        let arrives = self.now + SimDuration::from_secs_f64(delay_s.max(0.0));
                        let gives_up = pending.sent_at + pending.timeout;
                        let (at, outcome) = if arrives <= gives_up {
                            (arrives, Ok(answer))
                        } else {
                            (gives_up, Err(DeliveryError::Timeout))
                        };
                        let after = at - self.now;
                        self.held.insert(id, (pending, outcome));
                        self.schedule(after, WorldEvent::Answer(id));
                        return;
                    }
                    FaultAction::ServerError => Ok(TargetResponse {
                        status: 500,
                        content_type: Some("text/plain; charset=utf-8".into()),
                        body: bytes::Bytes::from_static(b"Internal Server Error"),
                    }),
                    _ => Ok(TargetResponse {
                        status: 200,
                        content_type: Some("text/xml".into()),
                        body: bytes::Bytes::from_static(crate::faults::GARBAGE_TWIML.as_bytes()),
                    }),
                }
            }
            (_, outcome) => outcome,
        };
        self.finish_delivery(pending, outcome);
    }

    /// Journals what the sender got and lets it act: Twilio retries a failed attempt as the webhook's
    /// connection overrides say, and otherwise handles the outcome.
    fn finish_delivery(&mut self, pending: Pending, outcome: Result<TargetResponse, DeliveryError>) {
        let Pending { exchange, purpose, timeout, retry, .. } = pending;
        let journaled = match &outcome {
            Ok(r) => Ok(journaled_response(r)),
            Err(DeliveryError::Timeout) => Err(format!("timeout after {timeout}")),
            Err(e) => Err(e.to_string()),
        };
        self.journal.finish_http(exchange, self.now, journaled);
        if let Some(retry) = retry
            && let Some(why) = retry.retried(&outcome, self.now)
        {
            let delay = retry.delay();
            let next = Retry { attempt: retry.attempt + 1, ..retry };
            let seq = self.journal.seq_of(exchange);
            let (who, attempts) = next.describe();
            let after = if delay == SimDuration::ZERO { String::new() } else { format!(", in {delay}") };
            // Twilio: a failed attempt is retried per `rc`/`rp` within `tt` (connection overrides), at once
            // (UNCONFIRMED). Vapi: per the server's backoff plan. The retry carries the same request,
            // idempotency token and signature included.
            self.note(format!(
                "{who} retries #{seq} after {why}{after} (attempt {} of {attempts})",
                next.attempt
            ));
            let id = self.next_id();
            if delay == SimDuration::ZERO {
                self.attempt(id, next.request.clone(), purpose, Some(next));
            } else {
                self.retrying.insert(id, (purpose, next));
                self.schedule(delay, WorldEvent::Retry(id));
            }
            return;
        }
        match purpose {
            Purpose::Twilio(purpose) => self.on_delivery(purpose, outcome),
            Purpose::Vapi(purpose) => self.on_vapi_delivery(purpose, outcome),
            // A duplicate or forged copy: its answer is only journaled.
            Purpose::Ignore { .. } => {}
        }
    }

    /// Answers a webhook addressed to the fake Vapi in process.
    fn answer_locally(&mut self, id: DeliveryId) {
        let Some(request) = self.pending.get_mut(&id).and_then(|p| p.request.take()) else { return };
        let response = self.vapi_twilio_webhook(&request);
        self.complete_delivery(id, Ok(response));
    }

    pub(crate) fn push_effect(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    pub(crate) fn add_number(
        &mut self,
        account: AccountSid,
        number: NumberConfig,
    ) -> Result<PhoneNumberSid, String> {
        if self.twilio.numbers.values().any(|n| n.phone_number == number.phone_number) {
            return Err(format!("number {} is owned twice", number.phone_number));
        }
        let sid = self.mint.phone_number();
        let mut n = IncomingNumber::new(sid, account, number.phone_number, self.now);
        n.voice_url = number.voice_url;
        if let Some(m) = number.voice_method {
            n.voice_method = m.parse().map_err(|()| format!("voice_method `{m}`: expected GET or POST"))?;
        }
        n.voice_fallback_url = number.voice_fallback_url;
        n.status_callback = number.status_callback;
        self.twilio.numbers.insert(sid, n);
        Ok(sid)
    }
}

fn journaled_response(r: &TargetResponse) -> HttpResponse {
    HttpResponse {
        status: r.status,
        content_type: r.content_type.clone(),
        body: String::from_utf8_lossy(&r.body).into_owned(),
    }
}

/// Headers worth keeping in the journal: what conformance rules and a reader need.
fn journaled_header(name: &str) -> bool {
    [
        "x-twilio-signature",
        "content-type",
        "i-twilio-idempotency-token",
        "x-vapi-secret",
        "x-vapi-signature",
        "authorization",
        "x-signature",
        "x-timestamp",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_world_file_declares_accounts_numbers_and_phones() {
        let config: WorldConfig = toml::from_str(
            r#"
            seed = 7
            [[accounts]]
            sid = "AC00000000000000000000000000000001"
            auth_token = "secret"
            numbers = [{ phone_number = "+15550000100", voice_url = "http://orchestrator.test/voice" }]
            [phones]
            "+15550000200" = { answer = "busy" }
            "#,
        )
        .expect("valid world");
        let world = World::new(config).expect("consistent world");
        assert_eq!(world.twilio.numbers.len(), 1);
        assert_eq!(world.phones.behaviour("+15550000200"), Behaviour::Busy);
    }

    #[test]
    fn a_number_owned_twice_is_refused_with_its_name() {
        let number = NumberConfig {
            phone_number: "+15550000100".into(),
            voice_url: None,
            voice_method: None,
            voice_fallback_url: None,
            status_callback: None,
        };
        let config = WorldConfig {
            accounts: vec![AccountConfig {
                sid: AccountSid::from_u128(1),
                auth_token: "t".into(),
                numbers: vec![number.clone(), number],
            }],
            ..WorldConfig::default()
        };
        assert_eq!(World::new(config).expect_err("duplicate"), "number +15550000100 is owned twice");
    }
}
