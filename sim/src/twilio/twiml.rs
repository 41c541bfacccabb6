//! TwiML parsing into typed verbs, with Twilio's notification codes for documents it cannot run.
//!
//! [`parse`] works in two steps. First it reads the XML into a small tree; every problem there is fatal
//! ([`TwimlError`]: 12100, 12101, 12102, or 11750 for an oversized body). Then it interprets the tree
//! into [`Verb`]s; problems there are never fatal: like Twilio's schema validation (12200), the verb,
//! noun or attribute is ignored, a [`TwimlWarning`] is recorded and execution can continue.
//!
//! Every verb and noun is a plain struct with public fields; those with defaults implement [`Default`]
//! with Twilio's defaults, so tests can build verbs without parsing:
//! `Verb::Dial(Dial { timeout_s: 10, ..Dial::new(Number::new("+15551234567")) })`.

use std::fmt;
use std::ops::RangeInclusive;

use quick_xml::Reader;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesRef, BytesStart, Event};

use super::model::{AmdMode, CallEvent, ConferenceEvent, Method, parse_bool};

/// Document parse failure: not well-formed XML, no root element, or nested too deep (DOC-ERR-12100).
pub const DOCUMENT_PARSE_FAILURE: u32 = 12100;
/// Invalid Twilio Markup XML version (DOC-ERR-12101).
pub const INVALID_XML_VERSION: u32 = 12101;
/// The root element must be `Response` (DOC-ERR-12102).
pub const ROOT_NOT_RESPONSE: u32 = 12102;
/// Schema validation warning: the verb, noun or attribute is ignored (DOC-ERR-12200).
pub const SCHEMA_WARNING: u32 = 12200;
/// TwiML response body too large (DOC-ERR-11750: "the response body is larger than 64 kB").
pub const BODY_TOO_LARGE: u32 = 11750;

/// The largest document [`parse`] accepts, in bytes. Twilio's limit is "64 kB" (DOC-ERR-11750); whether
/// that means 64 000 or 65 536 bytes is not confirmed, so this takes the larger reading.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The deepest element nesting [`parse`] accepts (`<Response>` is level 1). An assumption: Twilio documents
/// no limit, and real TwiML never nests deeper than about five levels.
pub const MAX_DEPTH: usize = 32;
/// The most `<Number>`/`<Client>`/`<Sip>` nouns one `<Dial>` rings ("up to 10"; DOC twiml/number).
pub const MAX_DIAL_ENDPOINTS: usize = 10;
/// What `<Conference>` plays to waiting participants when `waitUrl` is absent (reference §7).
pub const TWILIO_HOLD_MUSIC_URL: &str = "http://twimlets.com/holdmusic?Bucket=com.twilio.music.classical";

// ---------------------------------------------------------------------------------------------------------
// The parsed document
// ---------------------------------------------------------------------------------------------------------

/// A parsed `<Response>`: the verbs to run in order, and what was ignored on the way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    pub verbs: Vec<Verb>,
    /// Twilio's 12200 warnings, in document order.
    pub warnings: Vec<TwimlWarning>,
}

/// One TwiML verb, a direct child of `<Response>`.
// A document holds a handful of verbs and is parsed once per webhook, so the size of `Dial` costs nothing;
// boxing it would make every match and every test that builds one noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    Say(Say),
    Play(Play),
    Pause(Pause),
    Redirect(Redirect),
    Hangup,
    Reject(Reject),
    Gather(Gather),
    Dial(Dial),
    Connect(Connect),
    Start(Start),
    Stop(Stop),
    Enqueue(Enqueue),
    Leave,
}

/// `<Say>`: speak the body text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Say {
    /// The text to speak, with SSML tags removed and surrounding whitespace trimmed.
    pub text: String,
    /// `voice`, e.g. `alice` or `Polly.Joanna`; `None` is Twilio's default voice.
    pub voice: Option<String>,
    /// `language`, e.g. `en-US`; `None` is Twilio's default.
    pub language: Option<String>,
    /// `loop`: how many times to speak; 0 means until the call ends.
    pub loop_count: u32,
}

impl Say {
    pub fn new(text: impl Into<String>) -> Say {
        Say { text: text.into(), ..Say::default() }
    }
}

impl Default for Say {
    fn default() -> Say {
        Say { text: String::new(), voice: None, language: None, loop_count: 1 }
    }
}

/// `<Play>`: play an audio file, or send DTMF tones with `digits`. The parser never produces one with
/// neither.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Play {
    /// The body: the audio URL. `None` when only `digits` is given.
    pub url: Option<String>,
    /// `loop`: how many times to play; 0 means until the call ends.
    pub loop_count: u32,
    /// `digits`: DTMF to play (`0-9`, `A-D`, `*`, `#`, `w`/`W` for a pause).
    pub digits: Option<String>,
}

impl Play {
    pub fn new(url: impl Into<String>) -> Play {
        Play { url: Some(url.into()), ..Play::default() }
    }
}

impl Default for Play {
    fn default() -> Play {
        Play { url: None, loop_count: 1, digits: None }
    }
}

/// `<Pause>`: silence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pause {
    /// `length`, default 1.
    pub length_s: u32,
}

impl Default for Pause {
    fn default() -> Pause {
        Pause { length_s: 1 }
    }
}

/// `<Redirect>`: fetch the body URL and run the document it returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redirect {
    /// The body; may be relative to the current document's URL.
    pub url: String,
    pub method: Method,
}

impl Redirect {
    pub fn new(url: impl Into<String>) -> Redirect {
        Redirect { url: url.into(), method: Method::Post }
    }
}

/// `<Reject>`: refuse an incoming call without answering it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reject {
    pub reason: RejectReason,
}

/// `<Gather>`: collect DTMF digits or speech while the nested prompts play.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gather {
    pub input: GatherInput,
    /// `action`; `None` means the current document's URL.
    pub action: Option<String>,
    pub method: Method,
    /// `timeout`, default 5.
    pub timeout_s: u32,
    /// `finishOnKey`, default `#`; `None` when the attribute is the empty string (no finishing key).
    pub finish_on_key: Option<char>,
    /// `numDigits`: finish after this many digits.
    pub num_digits: Option<u32>,
    /// `actionOnEmptyResult`: request `action` even when nothing was gathered.
    pub action_on_empty_result: bool,
    /// `speechTimeout`; `None` means the `timeout` value applies.
    pub speech_timeout: Option<SpeechTimeout>,
    /// `bargeIn`: input stops the nested prompts (default true (UNCONFIRMED)).
    pub barge_in: bool,
    pub hints: Option<String>,
    pub language: Option<String>,
    pub partial_result_callback: Option<String>,
    pub partial_result_callback_method: Method,
    /// `profanityFilter` (default true (UNCONFIRMED)).
    pub profanity_filter: bool,
    pub speech_model: Option<String>,
    pub enhanced: bool,
    /// `maxSpeechTime` (default 60 (UNCONFIRMED)).
    pub max_speech_time_s: u32,
    /// The nested `<Say>`, `<Play>` and `<Pause>`, played while waiting.
    pub prompts: Vec<GatherPrompt>,
}

impl Default for Gather {
    fn default() -> Gather {
        Gather {
            input: GatherInput::Dtmf,
            action: None,
            method: Method::Post,
            timeout_s: 5,
            finish_on_key: Some('#'),
            num_digits: None,
            action_on_empty_result: false,
            speech_timeout: None,
            barge_in: true,
            hints: None,
            language: None,
            partial_result_callback: None,
            partial_result_callback_method: Method::Post,
            profanity_filter: true,
            speech_model: None,
            enhanced: false,
            max_speech_time_s: 60,
            prompts: Vec::new(),
        }
    }
}

/// A verb nested in `<Gather>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatherPrompt {
    Say(Say),
    Play(Play),
    Pause(Pause),
}

/// `<Gather speechTimeout>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpeechTimeout {
    /// `auto`: stop when the speaker pauses.
    Auto,
    Seconds(u32),
}

/// `<Dial>`: connect the call to another party.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dial {
    /// `action`; `None` means execution continues with the next verb after the dial ends.
    pub action: Option<String>,
    pub method: Method,
    /// `timeout`: how long to ring, default 30.
    pub timeout_s: u32,
    pub caller_id: Option<String>,
    pub answer_on_bridge: bool,
    /// `timeLimit`, default 14400 (four hours).
    pub time_limit_s: u32,
    pub hangup_on_star: bool,
    pub record: DialRecord,
    /// `ringTone`, one of [`RING_TONES`].
    pub ring_tone: Option<String>,
    /// `sequential`: ring the endpoints one after another instead of all at once.
    pub sequential: bool,
    pub recording_status_callback: Option<String>,
    pub recording_status_callback_method: Method,
    pub recording_status_callback_event: Vec<RecordingEvent>,
    pub recording_track: Option<RecordingTrack>,
    pub recording_configuration_id: Option<String>,
    /// `trim`; `None` is Twilio's default.
    pub trim: Option<Trim>,
    pub refer_url: Option<String>,
    pub refer_method: Method,
    /// `events="call-progress-event"`.
    pub call_progress_events: bool,
    /// What to dial: the body text or the nested nouns.
    pub target: DialTarget,
}

impl Dial {
    /// A `<Dial>` of `target` with Twilio's defaults.
    pub fn new(target: impl Into<DialTarget>) -> Dial {
        Dial {
            action: None,
            method: Method::Post,
            timeout_s: 30,
            caller_id: None,
            answer_on_bridge: false,
            time_limit_s: 14_400,
            hangup_on_star: false,
            record: DialRecord::DoNotRecord,
            ring_tone: None,
            sequential: false,
            recording_status_callback: None,
            recording_status_callback_method: Method::Post,
            recording_status_callback_event: vec![RecordingEvent::Completed],
            recording_track: None,
            recording_configuration_id: None,
            trim: None,
            refer_url: None,
            refer_method: Method::Post,
            call_progress_events: false,
            target: target.into(),
        }
    }
}

/// What a `<Dial>` connects to. Endpoints may be mixed; a conference or queue is dialed alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DialTarget {
    /// One to [`MAX_DIAL_ENDPOINTS`] endpoints; the first to answer is bridged and the rest hung up.
    Endpoints(Vec<Endpoint>),
    Conference(Conference),
    Queue(Queue),
}

impl From<Endpoint> for DialTarget {
    fn from(endpoint: Endpoint) -> DialTarget {
        DialTarget::Endpoints(vec![endpoint])
    }
}

impl From<Number> for DialTarget {
    fn from(number: Number) -> DialTarget {
        Endpoint::Number(number).into()
    }
}

impl From<Client> for DialTarget {
    fn from(client: Client) -> DialTarget {
        Endpoint::Client(client).into()
    }
}

impl From<Sip> for DialTarget {
    fn from(sip: Sip) -> DialTarget {
        Endpoint::Sip(sip).into()
    }
}

impl From<Conference> for DialTarget {
    fn from(conference: Conference) -> DialTarget {
        DialTarget::Conference(conference)
    }
}

impl From<Queue> for DialTarget {
    fn from(queue: Queue) -> DialTarget {
        DialTarget::Queue(queue)
    }
}

/// A party a `<Dial>` rings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Number(Number),
    Client(Client),
    Sip(Sip),
}

/// `<Number>`: a phone number; also what a plain-text `<Dial>` body becomes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Number {
    /// The body, as written (not validated as E.164).
    pub number: String,
    /// `url`: whisper TwiML the callee hears before the bridge.
    pub url: Option<String>,
    pub method: Method,
    /// `sendDigits`: DTMF sent once the callee answers.
    pub send_digits: Option<String>,
    pub byoc: Option<String>,
    pub status_callback: LegStatusCallback,
    pub machine_detection: MachineDetection,
}

impl Number {
    pub fn new(number: impl Into<String>) -> Number {
        Number { number: number.into(), ..Number::default() }
    }
}

/// `<Sip>`: a SIP URI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sip {
    /// The body, e.g. `sip:alice@example.com`.
    pub uri: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub url: Option<String>,
    pub method: Method,
    pub status_callback: LegStatusCallback,
    pub machine_detection: MachineDetection,
}

/// `<Client>`: a Voice SDK client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Client {
    /// The body text, or the nested `<Identity>`.
    pub identity: String,
    pub url: Option<String>,
    pub method: Method,
    pub status_callback: LegStatusCallback,
    /// Nested `<Parameter name value/>`, in order.
    pub parameters: Vec<(String, String)>,
}

/// The status-callback subscription of one dialed leg (`<Number>`, `<Sip>`, `<Client>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegStatusCallback {
    /// `statusCallback`.
    pub url: Option<String>,
    /// `statusCallbackEvent`, space separated; default `completed` (reference §7).
    pub events: Vec<CallEvent>,
    /// `statusCallbackMethod`.
    pub method: Method,
}

impl Default for LegStatusCallback {
    fn default() -> LegStatusCallback {
        LegStatusCallback { url: None, events: vec![CallEvent::Completed], method: Method::Post }
    }
}

/// Answering machine detection on a dialed `<Number>` or `<Sip>` (reference §6). The thresholds default
/// to the REST API's defaults (OAI), assumed to be the same for TwiML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineDetection {
    /// `machineDetection`; `None` means no detection, and the other fields have no effect.
    pub mode: Option<AmdMode>,
    /// `machineDetectionTimeout`, 3–60, default 30.
    pub timeout_s: u32,
    /// `machineDetectionSpeechThreshold`, 1000–6000, default 2400.
    pub speech_threshold_ms: u32,
    /// `machineDetectionSpeechEndThreshold`, 500–5000, default 1200.
    pub speech_end_threshold_ms: u32,
    /// `machineDetectionSilenceTimeout`, 2000–10000, default 5000.
    pub silence_timeout_ms: u32,
    /// `amdStatusCallback`.
    pub status_callback: Option<String>,
    /// `amdStatusCallbackMethod`.
    pub status_callback_method: Method,
}

impl Default for MachineDetection {
    fn default() -> MachineDetection {
        MachineDetection {
            mode: None,
            timeout_s: 30,
            speech_threshold_ms: 2400,
            speech_end_threshold_ms: 1200,
            silence_timeout_ms: 5000,
            status_callback: None,
            status_callback_method: Method::Post,
        }
    }
}

/// `<Conference>`: join the conference named by the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conference {
    /// The body: the conference's friendly name.
    pub name: String,
    pub muted: bool,
    pub beep: Beep,
    pub start_conference_on_enter: bool,
    pub end_conference_on_exit: bool,
    pub wait_url: WaitUrl,
    pub wait_method: Method,
    /// `maxParticipants`, 2–250, default 250 (OAI).
    pub max_participants: u32,
    pub record: ConferenceRecord,
    pub region: Option<String>,
    /// `trim`; `None` is Twilio's default.
    pub trim: Option<Trim>,
    /// `coach`: the call SID of the participant this one coaches.
    pub coach: Option<String>,
    pub participant_label: Option<String>,
    /// `jitterBufferSize`; `None` is Twilio's default.
    pub jitter_buffer_size: Option<JitterBufferSize>,
    pub status_callback: Option<String>,
    pub status_callback_method: Method,
    /// `statusCallbackEvent`, space separated. Empty when absent: which events Twilio sends then is not
    /// confirmed.
    pub status_callback_event: Vec<ConferenceEvent>,
    pub event_callback_url: Option<String>,
    pub recording_status_callback: Option<String>,
    pub recording_status_callback_method: Method,
    pub recording_status_callback_event: Vec<RecordingEvent>,
}

impl Conference {
    pub fn new(name: impl Into<String>) -> Conference {
        Conference { name: name.into(), ..Conference::default() }
    }
}

impl Default for Conference {
    fn default() -> Conference {
        Conference {
            name: String::new(),
            muted: false,
            beep: Beep::OnEnterAndExit,
            start_conference_on_enter: true,
            end_conference_on_exit: false,
            wait_url: WaitUrl::HoldMusic,
            wait_method: Method::Post,
            max_participants: 250,
            record: ConferenceRecord::DoNotRecord,
            region: None,
            trim: None,
            coach: None,
            participant_label: None,
            jitter_buffer_size: None,
            status_callback: None,
            status_callback_method: Method::Post,
            status_callback_event: Vec::new(),
            event_callback_url: None,
            recording_status_callback: None,
            recording_status_callback_method: Method::Post,
            recording_status_callback_event: vec![RecordingEvent::Completed],
        }
    }
}

/// `<Conference waitUrl>`: what a participant hears before the conference starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum WaitUrl {
    /// The attribute is absent: Twilio's hold music, [`TWILIO_HOLD_MUSIC_URL`].
    #[default]
    HoldMusic,
    /// `waitUrl=""`: silence.
    Silence,
    /// TwiML or audio to fetch with `waitMethod`.
    Url(String),
}

/// `<Queue>` inside `<Dial>`: bridge to the caller at the front of a queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    /// The body: the queue's name.
    pub name: String,
    /// `url`: TwiML played to the dequeued caller before the bridge.
    pub url: Option<String>,
    pub method: Method,
    pub reservation_sid: Option<String>,
    pub post_work_activity_sid: Option<String>,
}

/// `<Enqueue>`: put the caller in the queue named by the body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Enqueue {
    pub name: String,
    pub action: Option<String>,
    pub method: Method,
    /// `waitUrl`; `None` is Twilio's default hold experience.
    pub wait_url: Option<String>,
    pub wait_url_method: Method,
    pub workflow_sid: Option<String>,
}

/// `<Connect><Stream>`: a bidirectional media stream that blocks until the server closes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connect {
    /// `action`: requested when the stream ends; `None` continues with the next verb.
    pub action: Option<String>,
    pub method: Method,
    pub stream: Stream,
}

/// `<Start><Stream>`: fork the call's audio to a WebSocket without blocking.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Start {
    pub action: Option<String>,
    pub method: Method,
    pub stream: Stream,
}

/// `<Stop><Stream name/>`: stop a stream started with `<Start>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stop {
    /// The nested `<Stream name>`. `None` when it has no name; which streams that stops is not confirmed.
    pub stream_name: Option<String>,
}

/// `<Stream>` inside `<Connect>`, `<Start>` or `<Stop>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    /// `url`: the WebSocket URL (`wss://…`; may be relative). Never empty inside a parsed `<Connect>` or
    /// `<Start>`.
    pub url: String,
    pub name: Option<String>,
    pub track: Track,
    pub status_callback: Option<String>,
    pub status_callback_method: Method,
    pub connector_name: Option<String>,
    /// Nested `<Parameter name value/>`, in order; they become `start.customParameters`.
    pub parameters: Vec<(String, String)>,
}

impl Stream {
    pub fn new(url: impl Into<String>) -> Stream {
        Stream { url: url.into(), ..Stream::default() }
    }
}

/// The `ringTone` values `<Dial>` accepts (reference §7).
pub const RING_TONES: &[&str] = &[
    "at", "au", "bg", "br", "be", "ch", "cl", "cn", "cz", "de", "dk", "ee", "es", "fi", "fr", "gr", "hu",
    "il", "in", "it", "lt", "jp", "mx", "my", "nl", "no", "nz", "ph", "pl", "pt", "ru", "se", "sg", "th",
    "uk", "us", "us-old", "tw", "ve", "za",
];

// model.rs's `wire_enum!` is private to that module, and these values are TwiML-only, so this file has its
// own small macro instead of widening model.rs.
macro_rules! attr_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as TwiML spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AttrValue for $name {
            const EXPECTED: &'static str = concat!("one of" $(, " `", $text, "`")+);

            fn parse_attr(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            fn render(&self) -> String {
                self.as_str().to_owned()
            }
        }
    };
}

attr_enum!(
    /// `<Reject reason>`.
    #[derive(Default)]
    RejectReason {
        #[default]
        Rejected = "rejected",
        Busy = "busy",
    }
);

attr_enum!(
    /// `<Gather input>`: which kinds of input to listen for.
    #[derive(Default)]
    GatherInput {
        #[default]
        Dtmf = "dtmf",
        Speech = "speech",
        DtmfAndSpeech = "dtmf speech",
    }
);

attr_enum!(
    /// `<Dial record>`.
    #[derive(Default)]
    DialRecord {
        #[default]
        DoNotRecord = "do-not-record",
        RecordFromAnswer = "record-from-answer",
        RecordFromRinging = "record-from-ringing",
        RecordFromAnswerDual = "record-from-answer-dual",
        RecordFromRingingDual = "record-from-ringing-dual",
    }
);

attr_enum!(
    /// `<Conference record>`.
    #[derive(Default)]
    ConferenceRecord {
        #[default]
        DoNotRecord = "do-not-record",
        RecordFromStart = "record-from-start",
    }
);

attr_enum!(
    /// A `recordingStatusCallbackEvent` subscription.
    RecordingEvent {
        InProgress = "in-progress",
        Completed = "completed",
        Absent = "absent",
    }
);

attr_enum!(
    /// `<Dial recordingTrack>`.
    RecordingTrack {
        Inbound = "inbound",
        Outbound = "outbound",
        Both = "both",
    }
);

attr_enum!(
    /// `trim` on `<Dial>` and `<Conference>`.
    Trim {
        TrimSilence = "trim-silence",
        DoNotTrim = "do-not-trim",
    }
);

attr_enum!(
    /// `<Conference jitterBufferSize>`.
    JitterBufferSize {
        Off = "off",
        Small = "small",
        Medium = "medium",
        Large = "large",
    }
);

attr_enum!(
    /// `<Stream track>`: which audio is sent to the WebSocket.
    #[derive(Default)]
    Track {
        #[default]
        InboundTrack = "inbound_track",
        OutboundTrack = "outbound_track",
        BothTracks = "both_tracks",
    }
);

/// `<Conference beep>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Beep {
    /// `true`: beep when anyone enters or leaves.
    #[default]
    OnEnterAndExit,
    /// `false`.
    Never,
    /// `onEnter`.
    OnEnter,
    /// `onExit`.
    OnExit,
}

impl Beep {
    /// The value as TwiML spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Beep::OnEnterAndExit => "true",
            Beep::Never => "false",
            Beep::OnEnter => "onEnter",
            Beep::OnExit => "onExit",
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Errors and warnings
// ---------------------------------------------------------------------------------------------------------

/// Why a document cannot run at all. Twilio logs it as a notification with `code` and falls back to the
/// `FallbackUrl` or ends the call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code} at line {line}, column {column}: {message}")]
pub struct TwimlError {
    /// [`DOCUMENT_PARSE_FAILURE`], [`INVALID_XML_VERSION`], [`ROOT_NOT_RESPONSE`] or [`BODY_TOO_LARGE`].
    pub code: u32,
    pub message: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
}

/// Something [`parse`] ignored; the rest of the document still runs ([`SCHEMA_WARNING`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwimlWarning {
    pub code: u32,
    pub message: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
}

impl fmt::Display for TwimlWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at line {}, column {}: {}", self.code, self.line, self.column, self.message)
    }
}

/// The 1-based line and character column of byte offset `at` in `src`.
fn line_column(src: &str, at: usize) -> (usize, usize) {
    let before = &src.as_bytes()[..at.min(src.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    // Count characters, not bytes: skip UTF-8 continuation bytes.
    let column = before[line_start..].iter().filter(|&&b| b & 0xC0 != 0x80).count() + 1;
    (line, column)
}

fn error(src: &str, code: u32, at: usize, message: impl Into<String>) -> TwimlError {
    let (line, column) = line_column(src, at);
    TwimlError { code, message: message.into(), line, column }
}

// ---------------------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------------------

/// Parses a TwiML document. Fatal problems are errors; everything Twilio would only warn about is in
/// [`Document::warnings`]. Never panics.
pub fn parse(xml: &str) -> Result<Document, TwimlError> {
    // A byte-order mark is not content; positions are counted after it.
    let src = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let root = read_tree(src)?;
    // Twilio checks the root only once the document is well-formed (a parse failure wins), so this runs
    // after the whole tree is read. XML is case-sensitive: `<response>` is not the root Twilio wants.
    if root.name != "Response" {
        return Err(error(
            src,
            ROOT_NOT_RESPONSE,
            root.at,
            format!("the root element is <{}>; expected <Response>", root.name),
        ));
    }
    let mut d = Diagnostics::default();
    let verbs = response(&mut d, &root);
    Ok(Document { verbs, warnings: d.into_warnings(src) })
}

// ---------------------------------------------------------------------------------------------------------
// Step 1: XML to a tree. Every problem here is fatal.
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Element {
    name: String,
    /// Byte offset of the `<`.
    at: usize,
    attrs: Vec<Attr>,
    children: Vec<Node>,
}

#[derive(Debug)]
struct Attr {
    name: String,
    /// Unescaped and normalized.
    value: String,
    /// Byte offset of the name.
    at: usize,
}

#[derive(Debug)]
enum Node {
    Element(Element),
    /// Adjacent text, CDATA and references, merged.
    Text {
        text: String,
        at: usize,
    },
}

impl Element {
    /// The element's own text (not its descendants'), trimmed.
    fn text(&self) -> String {
        let mut out = String::new();
        for child in &self.children {
            if let Node::Text { text, .. } = child {
                out.push_str(text);
            }
        }
        out.trim().to_owned()
    }

    fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|child| match child {
            Node::Element(el) => Some(el),
            Node::Text { .. } => None,
        })
    }

    fn has_elements(&self) -> bool {
        self.elements().next().is_some()
    }

    /// Text children that are not just whitespace, with their offsets.
    fn stray_text(&self) -> impl Iterator<Item = usize> {
        self.children.iter().filter_map(|child| match child {
            Node::Text { text, at } if !text.trim().is_empty() => Some(*at),
            _ => None,
        })
    }
}

fn read_tree(src: &str) -> Result<Element, TwimlError> {
    let fail = |at: usize, message: String| error(src, DOCUMENT_PARSE_FAILURE, at, message);

    if src.len() > MAX_DOCUMENT_BYTES {
        // Twilio: 11750 "the response body is larger than 64 kB" (DOC-ERR-11750). Point at the first byte
        // over the limit.
        let mut at = MAX_DOCUMENT_BYTES;
        while !src.is_char_boundary(at) {
            at -= 1;
        }
        return Err(error(
            src,
            BODY_TOO_LARGE,
            at,
            format!("the document is {} bytes; expected at most {MAX_DOCUMENT_BYTES}", src.len()),
        ));
    }

    let mut reader = Reader::from_str(src);
    let config = reader.config_mut();
    config.enable_all_checks(true);
    config.trim_text(false);
    config.expand_empty_elements = false;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        // Text is not trimmed by the reader, so every event starts exactly where the previous one ended.
        let at = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                // Twilio: a document that is not valid XML is a 12100 (DOC-ERR-12100).
                let at = usize::try_from(reader.error_position()).unwrap_or(at);
                return Err(fail(at, format!("the document is not well-formed xml: {e}")));
            }
        };
        match event {
            Event::Decl(decl) => {
                // XML 1.0 §2.8: the declaration must be the very first thing; a strict parser rejects even
                // whitespace before it. That Twilio's parser is strict here is an assumption.
                if at != 0 {
                    return Err(fail(
                        at,
                        "the xml declaration must be at the very start of the document".to_owned(),
                    ));
                }
                let version = decl.version().map_err(|_| {
                    fail(at, "the xml declaration has no version; expected version=\"1.0\"".to_owned())
                })?;
                if version.as_ref() != b"1.0" {
                    // Twilio: 12101 "Invalid Twilio Markup XML version" (reference §4).
                    let version_at = offset_in(src, version.as_ref()).unwrap_or(at);
                    return Err(error(
                        src,
                        INVALID_XML_VERSION,
                        version_at,
                        format!(
                            "xml version \"{}\" is not supported; expected version=\"1.0\"",
                            String::from_utf8_lossy(&version)
                        ),
                    ));
                }
            }
            Event::DocType(_) => {
                // An assumption: Twilio documents nothing about DTDs, and refusing them keeps entity
                // expansion out of the simulator.
                return Err(fail(at, "document type declarations are not supported in twiml".to_owned()));
            }
            Event::Start(start) | Event::Empty(start) if stack.len() >= MAX_DEPTH => {
                let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                return Err(fail(
                    at,
                    format!("<{name}> nests deeper than {MAX_DEPTH} elements; expected a flatter document"),
                ));
            }
            Event::Start(start) => {
                let element = element(src, &start, at)?;
                if stack.is_empty() && root.is_some() {
                    return Err(second_root(src, &element));
                }
                stack.push(element);
            }
            Event::Empty(start) => {
                let element = element(src, &start, at)?;
                close(src, &mut stack, &mut root, element)?;
            }
            Event::End(_) => {
                // The reader checks that end tags match their start tags, so this only pops.
                let Some(element) = stack.pop() else {
                    return Err(fail(at, "unexpected end tag; no element is open".to_owned()));
                };
                close(src, &mut stack, &mut root, element)?;
            }
            Event::Text(text) => {
                let text = text
                    .xml10_content()
                    .map_err(|e| fail(at, format!("the document is not well-formed xml: {e}")))?;
                add_text(src, &mut stack, &text, at)?;
            }
            Event::CData(cdata) => {
                let text = cdata
                    .xml10_content()
                    .map_err(|e| fail(at, format!("the document is not well-formed xml: {e}")))?;
                add_text(src, &mut stack, &text, at)?;
            }
            Event::GeneralRef(reference) => {
                let text = resolve_reference(&reference).map_err(|message| fail(at, message))?;
                add_text(src, &mut stack, text.encode_utf8(&mut [0; 4]), at)?;
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        let (line, column) = line_column(src, open.at);
        return Err(fail(
            src.len(),
            format!(
                "the document ended inside <{}> (opened at line {line}, column {column}); expected </{}>",
                open.name, open.name
            ),
        ));
    }
    root.ok_or_else(|| fail(src.len(), "the document has no root element; expected <Response>".to_owned()))
}

fn second_root(src: &str, element: &Element) -> TwimlError {
    error(
        src,
        DOCUMENT_PARSE_FAILURE,
        element.at,
        format!("<{}> follows the root element; expected a single <Response>", element.name),
    )
}

/// Attaches a finished element to its parent, or makes it the root.
fn close(
    src: &str,
    stack: &mut [Element],
    root: &mut Option<Element>,
    element: Element,
) -> Result<(), TwimlError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(element)),
        None if root.is_some() => return Err(second_root(src, &element)),
        None => *root = Some(element),
    }
    Ok(())
}

fn add_text(src: &str, stack: &mut [Element], text: &str, at: usize) -> Result<(), TwimlError> {
    if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
        let message = format!("the text contains the forbidden character {c:?}; expected xml 1.0 characters");
        return Err(error(src, DOCUMENT_PARSE_FAILURE, at, message));
    }
    let Some(parent) = stack.last_mut() else {
        // Outside the root only whitespace (and comments) may appear (XML 1.0 §2.1).
        return match text.trim().is_empty() {
            true => Ok(()),
            false => Err(error(
                src,
                DOCUMENT_PARSE_FAILURE,
                at,
                "text outside the root element; expected the document to be a single <Response>",
            )),
        };
    };
    match parent.children.last_mut() {
        Some(Node::Text { text: previous, .. }) => previous.push_str(text),
        _ => parent.children.push(Node::Text { text: text.to_owned(), at }),
    }
    Ok(())
}

/// `&amp;` and friends, and character references. Other entities are undefined without a DTD, which
/// XML 1.0 §4.1 makes a well-formedness error.
fn resolve_reference(reference: &BytesRef<'_>) -> Result<char, String> {
    let name = String::from_utf8_lossy(reference).into_owned();
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(c)) if is_xml_char(c) => Ok(c),
            _ => Err(format!("'&{name};' is not a valid character reference; expected e.g. &#65; or &#x41;")),
        };
    }
    match name.as_str() {
        "amp" => Ok('&'),
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        _ => Err(format!(
            "'&{name};' is not defined; expected &amp; &lt; &gt; &quot; &apos; or a character reference"
        )),
    }
}

/// XML 1.0 §2.2 `Char`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// XML 1.0 §2.3 `Name`, loosely: enough to refuse `<1>` or `<->`.
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else { return false };
    (first.is_alphabetic() || first == '_' || first == ':')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '\u{B7}'))
}

/// Where `part` (a slice of `src` handed back by the reader) starts in `src`.
fn offset_in(src: &str, part: &[u8]) -> Option<usize> {
    let start = src.as_ptr() as usize;
    let offset = (part.as_ptr() as usize).checked_sub(start)?;
    (offset <= src.len()).then_some(offset)
}

fn element(src: &str, start: &BytesStart<'_>, at: usize) -> Result<Element, TwimlError> {
    let fail = |at: usize, message: String| error(src, DOCUMENT_PARSE_FAILURE, at, message);
    let name = std::str::from_utf8(start.name().as_ref())
        .map_err(|_| fail(at, "an element name is not valid utf-8".to_owned()))?
        .to_owned();
    if !is_xml_name(&name) {
        return Err(fail(at, format!("{name:?} is not a valid element name; expected e.g. <Say>")));
    }
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| {
            // AttrError positions count from the byte after `<`.
            let relative = match e {
                AttrError::ExpectedEq(p)
                | AttrError::ExpectedValue(p)
                | AttrError::UnquotedValue(p)
                | AttrError::ExpectedQuote(p, _)
                | AttrError::Duplicated(p, _) => p,
            };
            fail(
                at + 1 + relative,
                format!("a malformed attribute on <{name}>: {e}; expected name=\"value\""),
            )
        })?;
        let attr_at = offset_in(src, attr.key.as_ref()).unwrap_or(at);
        let key = std::str::from_utf8(attr.key.as_ref())
            .map_err(|_| fail(attr_at, "an attribute name is not valid utf-8".to_owned()))?
            .to_owned();
        if !is_xml_name(&key) {
            return Err(fail(
                attr_at,
                format!("{key:?} is not a valid attribute name on <{name}>; expected e.g. action=\"…\""),
            ));
        }
        let raw = std::str::from_utf8(&attr.value)
            .map_err(|_| fail(attr_at, format!("attribute '{key}' is not valid utf-8")))?;
        if raw.contains('<') {
            // XML 1.0 §3.1 [10]: `<` may not appear in an attribute value.
            return Err(fail(
                attr_at,
                format!("attribute '{key}' contains '<'; expected it escaped as &lt;"),
            ));
        }
        // XML 1.0 §3.3.3: literal line breaks and tabs in a value become spaces; escaped ones stay.
        let normalized = raw.replace("\r\n", " ").replace(['\r', '\n', '\t'], " ");
        let value = quick_xml::escape::unescape(&normalized)
            .map_err(|e| {
                let expected = "expected &amp; &lt; &gt; &quot; &apos; or a character reference";
                fail(attr_at, format!("attribute '{key}' has a bad reference: {e}; {expected}"))
            })?
            .into_owned();
        if let Some(c) = value.chars().find(|&c| !is_xml_char(c)) {
            return Err(fail(
                attr_at,
                format!(
                    "attribute '{key}' contains the forbidden character {c:?}; expected xml 1.0 characters"
                ),
            ));
        }
        attrs.push(Attr { name: key, value, at: attr_at });
    }
    Ok(Element { name, at, attrs, children: Vec::new() })
}

// ---------------------------------------------------------------------------------------------------------
// Step 2: the tree to verbs. Nothing here is fatal: like Twilio's 12200 schema warnings (reference §4,
// DOC-ERR-12200: "misspelled verbs", "incorrect case", "unknown attributes", "unexpected nested
// elements"), the offending part is ignored and the rest runs.
// ---------------------------------------------------------------------------------------------------------

/// The verbs ringback runs, for warnings.
const VERBS: &str = "<Say>, <Play>, <Pause>, <Redirect>, <Hangup>, <Reject>, <Gather>, <Dial>, <Connect>, \
                     <Start>, <Stop>, <Enqueue> or <Leave>";
const VERB_NAMES: &[&str] = &[
    "Say", "Play", "Pause", "Redirect", "Hangup", "Reject", "Gather", "Dial", "Connect", "Start", "Stop",
    "Enqueue", "Leave",
];
/// Real Twilio verbs and nouns that ringback does not simulate. Ignored with a warning that says so
/// (an assumption: Twilio runs them, so a scenario that relies on one needs ringback to grow it).
const UNSIMULATED: &[&str] = &[
    "Record",
    "Refer",
    "Pay",
    "Prompt",
    "Sms",
    "Message",
    "Echo",
    "Application",
    "WhatsApp",
    "Siprec",
    "Transcription",
    "Room",
    "Conversation",
    "ConversationRelay",
    "VirtualAgent",
    "Autopilot",
    "Assistant",
    "Task",
    "Config",
    "AiSession",
];
/// SSML elements `<Say>` may contain; their text is spoken, their markup is dropped.
const SSML: &[&str] = &[
    "break",
    "emphasis",
    "lang",
    "p",
    "phoneme",
    "prosody",
    "s",
    "say-as",
    "sub",
    "w",
    "amazon:domain",
    "amazon:effect",
];

/// Warnings as they are found, by byte offset; [`Diagnostics::into_warnings`] locates them all at once.
#[derive(Default)]
struct Diagnostics {
    found: Vec<(usize, String)>,
}

impl Diagnostics {
    fn warn(&mut self, at: usize, message: impl Into<String>) {
        self.found.push((at, message.into()));
    }

    /// The warnings in document order, with lines and columns. One pass over `src`, however many warnings
    /// there are.
    fn into_warnings(mut self, src: &str) -> Vec<TwimlWarning> {
        // Stable: warnings at the same place keep the order they were found in.
        self.found.sort_by_key(|(at, _)| *at);
        let (mut line, mut column, mut scanned) = (1, 1, 0);
        let mut warnings = Vec::with_capacity(self.found.len());
        for (at, message) in self.found {
            let at = at.min(src.len());
            for &b in &src.as_bytes()[scanned..at] {
                match b {
                    b'\n' => (line, column) = (line + 1, 1),
                    // UTF-8 continuation bytes do not start a character.
                    _ if b & 0xC0 == 0x80 => {}
                    _ => column += 1,
                }
            }
            scanned = at;
            warnings.push(TwimlWarning { code: SCHEMA_WARNING, message, line, column });
        }
        warnings
    }

    /// Warns about an element that may not appear inside `parent`.
    fn not_allowed(&mut self, child: &Element, parent: &Element, expected: &str) {
        let message = if UNSIMULATED.contains(&child.name.as_str()) {
            format!("<{}> inside <{}> is not simulated by ringback and is ignored", child.name, parent.name)
        } else {
            format!(
                "<{}> is not allowed inside <{}> and is ignored; expected {expected}",
                child.name, parent.name
            )
        };
        self.warn(child.at, message);
    }

    /// The element's text, warning about any nested element.
    fn text_only(&mut self, el: &Element) -> String {
        for child in el.elements() {
            self.not_allowed(child, el, "only text");
        }
        el.text()
    }

    /// Warns about any text or element inside an element that takes neither.
    fn empty(&mut self, el: &Element) {
        for at in el.stray_text() {
            self.warn(
                at,
                format!("text inside <{}> is ignored; expected <{}/> to be empty", el.name, el.name),
            );
        }
        for child in el.elements() {
            self.not_allowed(child, el, &format!("<{}/> to be empty", el.name));
        }
    }

    /// Warns about non-blank text inside an element that takes only elements.
    fn no_text(&mut self, el: &Element, expected: &str) {
        for at in el.stray_text() {
            self.warn(at, format!("text inside <{}> is ignored; expected {expected}", el.name));
        }
    }
}

/// A parsed attribute type: how to read it and how to describe it in a warning.
trait AttrValue: Sized {
    const EXPECTED: &'static str;
    fn parse_attr(s: &str) -> Option<Self>;
    fn render(&self) -> String;
}

impl AttrValue for u32 {
    const EXPECTED: &'static str = "a whole number";
    fn parse_attr(s: &str) -> Option<u32> {
        // Digits only: `+5` and `-0` are not numbers TwiML authors write.
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl AttrValue for String {
    const EXPECTED: &'static str = "text";
    fn parse_attr(s: &str) -> Option<String> {
        Some(s.to_owned())
    }
    fn render(&self) -> String {
        self.clone()
    }
}

impl AttrValue for bool {
    const EXPECTED: &'static str = "`true` or `false`";
    fn parse_attr(s: &str) -> Option<bool> {
        parse_bool(s)
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl AttrValue for Method {
    const EXPECTED: &'static str = "`GET` or `POST`";
    fn parse_attr(s: &str) -> Option<Method> {
        s.parse().ok()
    }
    fn render(&self) -> String {
        self.as_str().to_owned()
    }
}

impl AttrValue for AmdMode {
    const EXPECTED: &'static str = "`Enable` or `DetectMessageEnd`";
    fn parse_attr(s: &str) -> Option<AmdMode> {
        s.parse().ok()
    }
    fn render(&self) -> String {
        self.as_str().to_owned()
    }
}

impl AttrValue for CallEvent {
    const EXPECTED: &'static str = "one of `initiated` `ringing` `answered` `completed`";
    fn parse_attr(s: &str) -> Option<CallEvent> {
        s.parse().ok()
    }
    fn render(&self) -> String {
        self.as_str().to_owned()
    }
}

impl AttrValue for ConferenceEvent {
    const EXPECTED: &'static str =
        "one of `start` `end` `join` `leave` `mute` `hold` `modify` `speaker` `announcement`";
    fn parse_attr(s: &str) -> Option<ConferenceEvent> {
        s.parse().ok()
    }
    fn render(&self) -> String {
        self.as_str().to_owned()
    }
}

impl AttrValue for Beep {
    const EXPECTED: &'static str = "one of `true` `false` `onEnter` `onExit`";
    fn parse_attr(s: &str) -> Option<Beep> {
        match (parse_bool(s), s) {
            (Some(true), _) => Some(Beep::OnEnterAndExit),
            (Some(false), _) => Some(Beep::Never),
            (None, "onEnter") => Some(Beep::OnEnter),
            (None, "onExit") => Some(Beep::OnExit),
            (None, _) => None,
        }
    }
    fn render(&self) -> String {
        self.as_str().to_owned()
    }
}

impl<T: AttrValue> AttrValue for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn parse_attr(s: &str) -> Option<Option<T>> {
        T::parse_attr(s).map(Some)
    }
    fn render(&self) -> String {
        match self {
            Some(value) => value.render(),
            None => "none".to_owned(),
        }
    }
}

/// Reads one element's attributes; [`Attrs::finish`] warns about every attribute nobody asked for.
struct Attrs<'a> {
    d: &'a mut Diagnostics,
    el: &'a Element,
    used: Vec<bool>,
}

impl<'a> Attrs<'a> {
    fn new(d: &'a mut Diagnostics, el: &'a Element) -> Self {
        Attrs { d, el, used: vec![false; el.attrs.len()] }
    }

    fn raw(&mut self, name: &str) -> Option<&'a Attr> {
        let index = self.el.attrs.iter().position(|attr| attr.name == name)?;
        self.used[index] = true;
        Some(&self.el.attrs[index])
    }

    /// A free-text attribute, such as a URL. An empty value counts as absent (an assumption: Twilio
    /// treats `action=""` like no action).
    fn string(&mut self, name: &str) -> Option<String> {
        self.raw(name).map(|attr| attr.value.trim().to_owned()).filter(|value| !value.is_empty())
    }

    /// A typed attribute; a bad value is warned about and replaced by `default`. Twilio validates values
    /// against its schema, so a bad one is a 12200 like an unknown attribute (DOC-ERR-12200); that the verb
    /// then runs with the default is an assumption. Surrounding whitespace is tolerated (an assumption).
    fn value<T: AttrValue>(&mut self, name: &str, default: T) -> T {
        self.checked(name, default, T::EXPECTED, T::parse_attr)
    }

    fn optional<T: AttrValue>(&mut self, name: &str) -> Option<T> {
        self.value(name, None)
    }

    /// A whole number in `range`; out of range counts as a bad value.
    fn number_in(&mut self, name: &str, default: u32, range: RangeInclusive<u32>) -> u32 {
        let expected = format!("a whole number from {} to {}", range.start(), range.end());
        self.checked(name, default, &expected, |s| u32::parse_attr(s).filter(|n| range.contains(n)))
    }

    fn checked<T: AttrValue>(
        &mut self,
        name: &str,
        default: T,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> T {
        let Some(attr) = self.raw(name) else { return default };
        if let Some(value) = parse(attr.value.trim()) {
            return value;
        }
        self.bad_value(attr, expected, &default.render());
        default
    }

    fn bad_value(&mut self, attr: &Attr, expected: &str, default: &str) {
        let message = format!(
            "attribute '{}' on <{}> must be {expected}, found '{}'; using the default ({default})",
            attr.name, self.el.name, attr.value
        );
        self.d.warn(attr.at, message);
    }

    /// A space-separated list, such as `statusCallbackEvent`. Unknown entries are dropped with a warning;
    /// duplicates are dropped silently; an empty result falls back to `default`.
    fn list<T: AttrValue + PartialEq>(&mut self, name: &str, default: Vec<T>) -> Vec<T> {
        let Some(attr) = self.raw(name) else { return default };
        let mut values = Vec::new();
        for word in attr.value.split_whitespace() {
            match T::parse_attr(word) {
                Some(value) if values.contains(&value) => {}
                Some(value) => values.push(value),
                None => {
                    let message = format!(
                        "'{word}' in attribute '{}' on <{}> is ignored; expected {}",
                        attr.name,
                        self.el.name,
                        T::EXPECTED
                    );
                    self.d.warn(attr.at, message);
                }
            }
        }
        if values.is_empty() { default } else { values }
    }

    /// A DTMF string: `0-9`, `A-D`, `*`, `#`, and `w`/`W` for a pause (OAI `SendDigits`).
    fn digits(&mut self, name: &str) -> Option<String> {
        let attr = self.raw(name)?;
        let value = attr.value.trim();
        let valid = |c: char| matches!(c, '0'..='9' | 'A'..='D' | '*' | '#' | 'w' | 'W');
        match value.chars().all(valid) && !value.is_empty() {
            true => Some(value.to_owned()),
            false => {
                self.bad_value(attr, "DTMF digits (0-9, A-D, *, #, w)", "none");
                None
            }
        }
    }

    /// Twilio: unknown or misspelled attributes are 12200 warnings (DOC-ERR-12200; reference §4 quotes
    /// "Attribute 'statusCallbackEvent' is not allowed to appear in element 'Dial'.").
    fn finish(self) {
        for (attr, used) in self.el.attrs.iter().zip(&self.used) {
            // Namespace declarations are XML plumbing, not TwiML attributes.
            if !used && attr.name != "xmlns" && !attr.name.starts_with("xmlns:") {
                let message = format!("unknown attribute '{}' on <{}> is ignored", attr.name, self.el.name);
                self.d.warn(attr.at, message);
            }
        }
    }
}

fn response(d: &mut Diagnostics, root: &Element) -> Vec<Verb> {
    Attrs::new(d, root).finish();
    d.no_text(root, "verbs such as <Say>; text must be inside a verb");
    root.elements().filter_map(|el| verb(d, el, root)).collect()
}

fn verb(d: &mut Diagnostics, el: &Element, parent: &Element) -> Option<Verb> {
    let verb = match el.name.as_str() {
        "Say" => Verb::Say(say(d, el)),
        "Play" => Verb::Play(play(d, el)?),
        "Pause" => Verb::Pause(pause(d, el)),
        "Redirect" => Verb::Redirect(redirect(d, el)?),
        "Hangup" => {
            Attrs::new(d, el).finish();
            d.empty(el);
            Verb::Hangup
        }
        "Reject" => {
            let mut a = Attrs::new(d, el);
            let reason = a.value("reason", RejectReason::Rejected);
            a.finish();
            d.empty(el);
            Verb::Reject(Reject { reason })
        }
        "Gather" => Verb::Gather(gather(d, el)),
        "Dial" => Verb::Dial(dial(d, el)?),
        "Connect" => Verb::Connect(connect(d, el)?),
        "Start" => Verb::Start(start(d, el)?),
        "Stop" => Verb::Stop(stop(d, el)?),
        "Enqueue" => Verb::Enqueue(enqueue(d, el)?),
        "Leave" => {
            Attrs::new(d, el).finish();
            d.empty(el);
            Verb::Leave
        }
        name => {
            // Twilio: misspelled or wrongly cased verbs are 12200 warnings (DOC-ERR-12200).
            match VERB_NAMES.iter().find(|verb| verb.eq_ignore_ascii_case(name)) {
                Some(verb) => d.warn(
                    el.at,
                    format!("unknown verb <{name}> is ignored; verbs are case-sensitive, expected <{verb}>"),
                ),
                None => d.not_allowed(el, parent, VERBS),
            }
            return None;
        }
    };
    Some(verb)
}

fn say(d: &mut Diagnostics, el: &Element) -> Say {
    let mut a = Attrs::new(d, el);
    let voice = a.string("voice");
    let language = a.string("language");
    let loop_count = a.value("loop", 1);
    a.finish();
    let mut text = String::new();
    say_text(d, el, &mut text);
    Say { text: text.trim().to_owned(), voice, language, loop_count }
}

/// Collects the text of `<Say>` and of the SSML inside it.
fn say_text(d: &mut Diagnostics, el: &Element, out: &mut String) {
    for child in &el.children {
        match child {
            Node::Text { text, .. } => out.push_str(text),
            // SSML attributes are not checked: they only shape speech, which the simulator does not make.
            Node::Element(child) if SSML.contains(&child.name.as_str()) => say_text(d, child, out),
            Node::Element(child) => d.not_allowed(child, el, "text or SSML such as <break>"),
        }
    }
}

fn play(d: &mut Diagnostics, el: &Element) -> Option<Play> {
    let mut a = Attrs::new(d, el);
    let loop_count = a.value("loop", 1);
    let digits = a.digits("digits");
    a.finish();
    let url = Some(d.text_only(el)).filter(|url| !url.is_empty());
    if url.is_none() && digits.is_none() {
        // An assumption: Twilio would fail to fetch an empty URL; skipping the verb is the closest
        // non-fatal behaviour.
        d.warn(el.at, "<Play> has neither an audio url nor digits and is ignored; expected <Play>url</Play>");
        return None;
    }
    Some(Play { url, loop_count, digits })
}

fn pause(d: &mut Diagnostics, el: &Element) -> Pause {
    let mut a = Attrs::new(d, el);
    let length_s = a.value("length", 1);
    a.finish();
    d.empty(el);
    Pause { length_s }
}

fn redirect(d: &mut Diagnostics, el: &Element) -> Option<Redirect> {
    let mut a = Attrs::new(d, el);
    let method = a.value("method", Method::Post);
    a.finish();
    let url = d.text_only(el);
    if url.is_empty() {
        // An assumption, as for an empty <Play>.
        d.warn(el.at, "<Redirect> has no url and is ignored; expected <Redirect>url</Redirect>");
        return None;
    }
    Some(Redirect { url, method })
}

fn gather(d: &mut Diagnostics, el: &Element) -> Gather {
    let defaults = Gather::default();
    let mut a = Attrs::new(d, el);
    let gather = Gather {
        input: a.checked("input", defaults.input, GatherInput::EXPECTED, parse_gather_input),
        action: a.string("action"),
        method: a.value("method", defaults.method),
        timeout_s: a.value("timeout", defaults.timeout_s),
        finish_on_key: a
            .checked(
                "finishOnKey",
                FinishOnKey(defaults.finish_on_key),
                FinishOnKey::EXPECTED,
                FinishOnKey::parse_attr,
            )
            .0,
        num_digits: a.checked("numDigits", None, "a whole number of at least 1", |s| {
            u32::parse_attr(s).filter(|&n| n >= 1).map(Some)
        }),
        action_on_empty_result: a.value("actionOnEmptyResult", defaults.action_on_empty_result),
        speech_timeout: a.optional("speechTimeout"),
        barge_in: a.value("bargeIn", defaults.barge_in),
        hints: a.string("hints"),
        language: a.string("language"),
        partial_result_callback: a.string("partialResultCallback"),
        partial_result_callback_method: a.value("partialResultCallbackMethod", Method::Post),
        profanity_filter: a.value("profanityFilter", defaults.profanity_filter),
        speech_model: a.string("speechModel"),
        enhanced: a.value("enhanced", defaults.enhanced),
        max_speech_time_s: a.value("maxSpeechTime", defaults.max_speech_time_s),
        prompts: Vec::new(),
    };
    a.finish();
    d.no_text(el, "<Say>, <Play> or <Pause>; text must be inside <Say>");
    // Reference §7: "Nested <Say>/<Play>/<Pause> play while waiting"; anything else (e.g. <Dial>) is an
    // unexpected nested element, a 12200 warning (DOC-ERR-12200).
    let prompts = el
        .elements()
        .filter_map(|child| match child.name.as_str() {
            "Say" => Some(GatherPrompt::Say(say(d, child))),
            "Play" => play(d, child).map(GatherPrompt::Play),
            "Pause" => Some(GatherPrompt::Pause(pause(d, child))),
            _ => {
                d.not_allowed(child, el, "<Say>, <Play> or <Pause>");
                None
            }
        })
        .collect();
    Gather { prompts, ..gather }
}

/// `input="dtmf speech"`, in either order.
fn parse_gather_input(s: &str) -> Option<GatherInput> {
    let (mut dtmf, mut speech) = (false, false);
    for word in s.split_whitespace() {
        match word {
            "dtmf" => dtmf = true,
            "speech" => speech = true,
            _ => return None,
        }
    }
    match (dtmf, speech) {
        (true, true) => Some(GatherInput::DtmfAndSpeech),
        (true, false) => Some(GatherInput::Dtmf),
        (false, true) => Some(GatherInput::Speech),
        (false, false) => None,
    }
}

impl AttrValue for SpeechTimeout {
    const EXPECTED: &'static str = "`auto` or a whole number of seconds";
    fn parse_attr(s: &str) -> Option<SpeechTimeout> {
        match s {
            "auto" => Some(SpeechTimeout::Auto),
            _ => u32::parse_attr(s).map(SpeechTimeout::Seconds),
        }
    }
    fn render(&self) -> String {
        match self {
            SpeechTimeout::Auto => "auto".to_owned(),
            SpeechTimeout::Seconds(n) => n.to_string(),
        }
    }
}

/// `finishOnKey`: one key, or the empty string for none.
struct FinishOnKey(Option<char>);

impl AttrValue for FinishOnKey {
    const EXPECTED: &'static str = "one of 0-9, `#` or `*`, or empty for none";
    fn parse_attr(s: &str) -> Option<FinishOnKey> {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (None, _) => Some(FinishOnKey(None)),
            (Some(c @ ('0'..='9' | '#' | '*')), None) => Some(FinishOnKey(Some(c))),
            _ => None,
        }
    }
    fn render(&self) -> String {
        self.0.map_or_else(|| "none".to_owned(), String::from)
    }
}

fn dial(d: &mut Diagnostics, el: &Element) -> Option<Dial> {
    let defaults = Dial::new(Number::default());
    let mut a = Attrs::new(d, el);
    let dial = Dial {
        action: a.string("action"),
        method: a.value("method", defaults.method),
        timeout_s: a.value("timeout", defaults.timeout_s),
        caller_id: a.string("callerId"),
        answer_on_bridge: a.value("answerOnBridge", defaults.answer_on_bridge),
        time_limit_s: a.value("timeLimit", defaults.time_limit_s),
        hangup_on_star: a.value("hangupOnStar", defaults.hangup_on_star),
        record: a.value("record", defaults.record),
        ring_tone: a.checked("ringTone", None, "a country code such as `us` or `uk`", |s| {
            RING_TONES.contains(&s).then(|| Some(s.to_owned()))
        }),
        sequential: a.value("sequential", defaults.sequential),
        recording_status_callback: a.string("recordingStatusCallback"),
        recording_status_callback_method: a.value("recordingStatusCallbackMethod", Method::Post),
        recording_status_callback_event: a
            .list("recordingStatusCallbackEvent", defaults.recording_status_callback_event),
        recording_track: a.optional("recordingTrack"),
        recording_configuration_id: a.string("recordingConfigurationId"),
        trim: a.optional("trim"),
        refer_url: a.string("referUrl"),
        refer_method: a.value("referMethod", Method::Post),
        call_progress_events: a.checked("events", false, "`call-progress-event`", |s| {
            (s == "call-progress-event").then_some(true)
        }),
        target: defaults.target,
    };
    a.finish();
    let target = dial_target(d, el)?;
    Some(Dial { target, ..dial })
}

fn dial_target(d: &mut Diagnostics, el: &Element) -> Option<DialTarget> {
    const NOUNS: &str = "<Number>, <Client>, <Sip>, <Conference> or <Queue>";
    if !el.has_elements() {
        // `<Dial>+15551234567</Dial>` is a single <Number> with its defaults.
        let text = el.text();
        if text.is_empty() {
            // An assumption: a <Dial> with nothing to dial is skipped with a warning rather than failing the
            // document; Twilio's exact behaviour is not confirmed.
            d.warn(el.at, format!("<Dial> has nothing to dial and is ignored; expected a number or {NOUNS}"));
            return None;
        }
        return Some(Number::new(text).into());
    }
    d.no_text(el, &format!("either a number as the only content or {NOUNS} nouns"));

    let mut target: Option<DialTarget> = None;
    for child in el.elements() {
        let name = child.name.as_str();
        let is_endpoint = matches!(name, "Number" | "Client" | "Sip");
        if !is_endpoint && !matches!(name, "Conference" | "Queue") {
            d.not_allowed(child, el, NOUNS);
            continue;
        }
        match &mut target {
            None => target = dial_noun(d, child),
            Some(DialTarget::Endpoints(endpoints)) if is_endpoint => {
                if endpoints.len() >= MAX_DIAL_ENDPOINTS {
                    // DOC twiml/number: "up to 10" numbers at once.
                    let message = format!(
                        "<{name}> is ignored; expected at most {MAX_DIAL_ENDPOINTS} endpoints in one <Dial>"
                    );
                    d.warn(child.at, message);
                } else if let Some(DialTarget::Endpoints(more)) = dial_noun(d, child) {
                    endpoints.extend(more);
                }
            }
            // An assumption: Twilio dials a conference or a queue alone; later nouns are ignored.
            Some(_) => d.warn(
                child.at,
                format!("<{name}> is ignored; a <Conference> or <Queue> must be the only noun in its <Dial>"),
            ),
        }
    }
    if target.is_none() {
        d.warn(el.at, format!("<Dial> has nothing to dial and is ignored; expected a number or {NOUNS}"));
    }
    target
}

/// One noun of a `<Dial>`; `None` if it was ignored.
fn dial_noun(d: &mut Diagnostics, el: &Element) -> Option<DialTarget> {
    match el.name.as_str() {
        "Number" => number(d, el).map(DialTarget::from),
        "Client" => client(d, el).map(DialTarget::from),
        "Sip" => sip(d, el).map(DialTarget::from),
        "Conference" => conference(d, el).map(DialTarget::from),
        "Queue" => queue(d, el).map(DialTarget::from),
        _ => None,
    }
}

fn leg_status_callback(a: &mut Attrs<'_>) -> LegStatusCallback {
    let defaults = LegStatusCallback::default();
    LegStatusCallback {
        url: a.string("statusCallback"),
        events: a.list("statusCallbackEvent", defaults.events),
        method: a.value("statusCallbackMethod", defaults.method),
    }
}

fn machine_detection(a: &mut Attrs<'_>) -> MachineDetection {
    let defaults = MachineDetection::default();
    // Ranges from reference §6 (TwiML timeout) and §2.1 (OAI thresholds, assumed to hold for TwiML).
    MachineDetection {
        mode: a.optional("machineDetection"),
        timeout_s: a.number_in("machineDetectionTimeout", defaults.timeout_s, 3..=60),
        speech_threshold_ms: a.number_in(
            "machineDetectionSpeechThreshold",
            defaults.speech_threshold_ms,
            1000..=6000,
        ),
        speech_end_threshold_ms: a.number_in(
            "machineDetectionSpeechEndThreshold",
            defaults.speech_end_threshold_ms,
            500..=5000,
        ),
        silence_timeout_ms: a.number_in(
            "machineDetectionSilenceTimeout",
            defaults.silence_timeout_ms,
            2000..=10_000,
        ),
        status_callback: a.string("amdStatusCallback"),
        status_callback_method: a.value("amdStatusCallbackMethod", defaults.status_callback_method),
    }
}

fn number(d: &mut Diagnostics, el: &Element) -> Option<Number> {
    let mut a = Attrs::new(d, el);
    let url = a.string("url");
    let method = a.value("method", Method::Post);
    let send_digits = a.digits("sendDigits");
    let byoc = a.string("byoc");
    let status_callback = leg_status_callback(&mut a);
    let machine_detection = machine_detection(&mut a);
    a.finish();
    let number = d.text_only(el);
    if number.is_empty() {
        d.warn(
            el.at,
            "<Number> has no phone number and is ignored; expected e.g. <Number>+15551234567</Number>",
        );
        return None;
    }
    Some(Number { number, url, method, send_digits, byoc, status_callback, machine_detection })
}

fn sip(d: &mut Diagnostics, el: &Element) -> Option<Sip> {
    let mut a = Attrs::new(d, el);
    let username = a.string("username");
    let password = a.string("password");
    let url = a.string("url");
    let method = a.value("method", Method::Post);
    let status_callback = leg_status_callback(&mut a);
    let machine_detection = machine_detection(&mut a);
    a.finish();
    let uri = d.text_only(el);
    if uri.is_empty() {
        d.warn(el.at, "<Sip> has no uri and is ignored; expected e.g. <Sip>sip:alice@example.com</Sip>");
        return None;
    }
    Some(Sip { uri, username, password, url, method, status_callback, machine_detection })
}

fn client(d: &mut Diagnostics, el: &Element) -> Option<Client> {
    let mut a = Attrs::new(d, el);
    let url = a.string("url");
    let method = a.value("method", Method::Post);
    let status_callback = leg_status_callback(&mut a);
    a.finish();
    // Reference §7: the identity is the body text, or a nested <Identity> next to <Parameter>s.
    let mut identity = el.text();
    let mut parameters = Vec::new();
    for child in el.elements() {
        match child.name.as_str() {
            "Identity" => {
                Attrs::new(d, child).finish();
                identity = d.text_only(child);
            }
            "Parameter" => parameters.extend(parameter(d, child)),
            _ => d.not_allowed(child, el, "<Identity> or <Parameter>"),
        }
    }
    if identity.is_empty() {
        d.warn(el.at, "<Client> has no identity and is ignored; expected e.g. <Client>alice</Client>");
        return None;
    }
    Some(Client { identity, url, method, status_callback, parameters })
}

fn conference(d: &mut Diagnostics, el: &Element) -> Option<Conference> {
    let defaults = Conference::default();
    let mut a = Attrs::new(d, el);
    // Reference §7: absent is Twilio's hold music, `''` is silence. Only surrounding whitespace is dropped.
    let wait_url = match a.raw("waitUrl").map(|attr| attr.value.trim()) {
        None => WaitUrl::HoldMusic,
        Some("") => WaitUrl::Silence,
        Some(url) => WaitUrl::Url(url.to_owned()),
    };
    let conference = Conference {
        name: String::new(),
        muted: a.value("muted", defaults.muted),
        beep: a.value("beep", defaults.beep),
        start_conference_on_enter: a.value("startConferenceOnEnter", defaults.start_conference_on_enter),
        end_conference_on_exit: a.value("endConferenceOnExit", defaults.end_conference_on_exit),
        wait_url,
        wait_method: a.value("waitMethod", defaults.wait_method),
        max_participants: a.number_in("maxParticipants", defaults.max_participants, 2..=250),
        record: a.value("record", defaults.record),
        region: a.string("region"),
        trim: a.optional("trim"),
        coach: a.string("coach"),
        participant_label: a.string("participantLabel"),
        jitter_buffer_size: a.optional("jitterBufferSize"),
        status_callback: a.string("statusCallback"),
        status_callback_method: a.value("statusCallbackMethod", defaults.status_callback_method),
        status_callback_event: a.list("statusCallbackEvent", defaults.status_callback_event),
        event_callback_url: a.string("eventCallbackUrl"),
        recording_status_callback: a.string("recordingStatusCallback"),
        recording_status_callback_method: a.value("recordingStatusCallbackMethod", Method::Post),
        recording_status_callback_event: a
            .list("recordingStatusCallbackEvent", defaults.recording_status_callback_event),
    };
    a.finish();
    let name = d.text_only(el);
    if name.is_empty() {
        d.warn(
            el.at,
            "<Conference> has no name and is ignored; expected e.g. <Conference>room-1</Conference>",
        );
        return None;
    }
    Some(Conference { name, ..conference })
}

fn queue(d: &mut Diagnostics, el: &Element) -> Option<Queue> {
    let mut a = Attrs::new(d, el);
    let url = a.string("url");
    let method = a.value("method", Method::Post);
    let reservation_sid = a.string("reservationSid");
    let post_work_activity_sid = a.string("postWorkActivitySid");
    a.finish();
    let name = d.text_only(el);
    if name.is_empty() {
        d.warn(el.at, "<Queue> has no name and is ignored; expected e.g. <Queue>support</Queue>");
        return None;
    }
    Some(Queue { name, url, method, reservation_sid, post_work_activity_sid })
}

fn enqueue(d: &mut Diagnostics, el: &Element) -> Option<Enqueue> {
    let mut a = Attrs::new(d, el);
    let action = a.string("action");
    let method = a.value("method", Method::Post);
    let wait_url = a.string("waitUrl");
    let wait_url_method = a.value("waitUrlMethod", Method::Post);
    let workflow_sid = a.string("workflowSid");
    a.finish();
    let name = d.text_only(el);
    if name.is_empty() {
        d.warn(el.at, "<Enqueue> has no queue name and is ignored; expected e.g. <Enqueue>support</Enqueue>");
        return None;
    }
    Some(Enqueue { name, action, method, wait_url, wait_url_method, workflow_sid })
}

fn parameter(d: &mut Diagnostics, el: &Element) -> Option<(String, String)> {
    let mut a = Attrs::new(d, el);
    let name = a.string("name");
    let value = a.raw("value").map(|attr| attr.value.clone()).unwrap_or_default();
    a.finish();
    d.empty(el);
    match name {
        Some(name) => Some((name, value)),
        None => {
            d.warn(
                el.at,
                "<Parameter> has no name and is ignored; expected <Parameter name=\"…\" value=\"…\"/>",
            );
            None
        }
    }
}

fn stream(d: &mut Diagnostics, el: &Element) -> Stream {
    let mut a = Attrs::new(d, el);
    let url = a.string("url").unwrap_or_default();
    let name = a.string("name");
    let track = a.value("track", Track::InboundTrack);
    let status_callback = a.string("statusCallback");
    let status_callback_method = a.value("statusCallbackMethod", Method::Post);
    let connector_name = a.string("connectorName");
    a.finish();
    d.no_text(el, "<Parameter> elements");
    let mut parameters = Vec::new();
    for child in el.elements() {
        match child.name.as_str() {
            "Parameter" => parameters.extend(parameter(d, child)),
            _ => d.not_allowed(child, el, "<Parameter>"),
        }
    }
    Stream { url, name, track, status_callback, status_callback_method, connector_name, parameters }
}

/// The one `<Stream>` inside `<Connect>`, `<Start>` or `<Stop>`; other children are warned about.
fn only_stream<'e>(d: &mut Diagnostics, el: &'e Element) -> Option<&'e Element> {
    d.no_text(el, "a <Stream>");
    let mut found = None;
    for child in el.elements() {
        match (child.name.as_str(), found) {
            ("Stream", None) => found = Some(child),
            // An assumption: one verb starts or stops one stream; Twilio's handling of several is not
            // confirmed.
            ("Stream", Some(_)) => {
                d.warn(child.at, format!("a second <Stream> inside <{}> is ignored; expected one", el.name))
            }
            _ => d.not_allowed(child, el, "<Stream>"),
        }
    }
    if found.is_none() {
        let attribute = if el.name == "Stop" { "name" } else { "url" };
        let name = &el.name;
        d.warn(el.at, format!("<{name}> has no <Stream> and is ignored; expected <{name}><Stream {attribute}=\"…\"/></{name}>"));
    }
    found
}

/// A `<Stream>` that must have a url, for `<Connect>` and `<Start>`; also its position.
fn stream_with_url(d: &mut Diagnostics, el: &Element) -> Option<(Stream, usize)> {
    let stream_el = only_stream(d, el)?;
    let stream = stream(d, stream_el);
    if stream.url.is_empty() {
        d.warn(
            stream_el.at,
            format!("<Stream> inside <{}> has no url and is ignored; expected url=\"wss://…\"", el.name),
        );
        return None;
    }
    Some((stream, stream_el.at))
}

fn connect(d: &mut Diagnostics, el: &Element) -> Option<Connect> {
    let mut a = Attrs::new(d, el);
    let action = a.string("action");
    let method = a.value("method", Method::Post);
    a.finish();
    let (mut stream, stream_at) = stream_with_url(d, el)?;
    if stream.track != Track::InboundTrack {
        // Reference §7: "bidirectional supports inbound only".
        d.warn(
            stream_at,
            format!(
                "track '{}' on <Connect><Stream> is ignored; bidirectional streams carry only inbound_track",
                stream.track
            ),
        );
        stream.track = Track::InboundTrack;
    }
    Some(Connect { action, method, stream })
}

fn start(d: &mut Diagnostics, el: &Element) -> Option<Start> {
    let mut a = Attrs::new(d, el);
    let action = a.string("action");
    let method = a.value("method", Method::Post);
    a.finish();
    let (stream, _) = stream_with_url(d, el)?;
    Some(Start { action, method, stream })
}

fn stop(d: &mut Diagnostics, el: &Element) -> Option<Stop> {
    Attrs::new(d, el).finish();
    let stream_el = only_stream(d, el)?;
    Some(Stop { stream_name: stream(d, stream_el).name })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a document that must have no warnings and returns its verbs.
    fn verbs(xml: &str) -> Vec<Verb> {
        let doc = parse(xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        assert_eq!(doc.warnings, vec![], "unexpected warnings for\n{xml}");
        doc.verbs
    }

    /// The only verb of `<Response>{body}</Response>`, which must have no warnings.
    fn only(body: &str) -> Verb {
        let mut verbs = verbs(&format!("<Response>{body}</Response>"));
        assert_eq!(verbs.len(), 1, "expected one verb in {body}: {verbs:?}");
        verbs.remove(0)
    }

    fn dial(body: &str) -> Dial {
        match only(body) {
            Verb::Dial(dial) => dial,
            other => panic!("expected a <Dial>, got {other:?}"),
        }
    }

    fn only_number(dial: Dial) -> Number {
        match dial.target {
            DialTarget::Endpoints(mut endpoints) if endpoints.len() == 1 => match endpoints.remove(0) {
                Endpoint::Number(number) => number,
                other => panic!("expected a <Number>, got {other:?}"),
            },
            other => panic!("expected one endpoint, got {other:?}"),
        }
    }

    fn conference(body: &str) -> Conference {
        match dial(body).target {
            DialTarget::Conference(conference) => conference,
            other => panic!("expected a <Conference>, got {other:?}"),
        }
    }

    /// Warnings as `(line, column, message)`, with every warning's code checked.
    fn warnings(xml: &str) -> (Vec<Verb>, Vec<(usize, usize, String)>) {
        let doc = parse(xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        assert!(doc.warnings.iter().all(|w| w.code == SCHEMA_WARNING), "{:?}", doc.warnings);
        let warnings = doc.warnings.into_iter().map(|w| (w.line, w.column, w.message)).collect();
        (doc.verbs, warnings)
    }

    fn err(xml: &str) -> TwimlError {
        match parse(xml) {
            Ok(doc) => panic!("expected an error for\n{xml}\ngot {doc:?}"),
            Err(e) => e,
        }
    }

    // --- verbs and their defaults ---------------------------------------------------------------------

    #[test]
    fn an_empty_response_has_no_verbs() {
        assert_eq!(verbs("<Response/>"), vec![]);
        assert_eq!(verbs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>\n</Response>\n"), vec![]);
    }

    #[test]
    fn say_defaults_to_one_loop_and_twilio_voice() {
        assert_eq!(only("<Say>Hello</Say>"), Verb::Say(Say::new("Hello")));
        assert_eq!(Say::new("x").loop_count, 1);
    }

    #[test]
    fn say_reads_voice_language_and_loop() {
        let say = only(r#"<Say voice="Polly.Joanna" language="en-GB" loop="3">  Hi there  </Say>"#);
        let expected = Say {
            text: "Hi there".into(),
            voice: Some("Polly.Joanna".into()),
            language: Some("en-GB".into()),
            loop_count: 3,
        };
        assert_eq!(say, Verb::Say(expected));
    }

    #[test]
    fn say_speaks_the_text_inside_ssml_and_drops_the_markup() {
        let say = only(r#"<Say>Hello <break time="1s"/><emphasis level="strong">big</emphasis> world</Say>"#);
        assert_eq!(say, Verb::Say(Say::new("Hello big world")));
    }

    #[test]
    fn play_defaults_to_one_loop_and_no_digits() {
        assert_eq!(only("<Play>https://x.test/a.mp3</Play>"), Verb::Play(Play::new("https://x.test/a.mp3")));
    }

    #[test]
    fn play_with_only_digits_has_no_url() {
        let play = only(r#"<Play digits="wwww3#" loop="2"/>"#);
        assert_eq!(play, Verb::Play(Play { url: None, loop_count: 2, digits: Some("wwww3#".into()) }));
    }

    #[test]
    fn pause_defaults_to_one_second() {
        assert_eq!(only("<Pause/>"), Verb::Pause(Pause { length_s: 1 }));
        assert_eq!(only(r#"<Pause length="7"/>"#), Verb::Pause(Pause { length_s: 7 }));
    }

    #[test]
    fn redirect_defaults_to_post() {
        assert_eq!(only("<Redirect>/next</Redirect>"), Verb::Redirect(Redirect::new("/next")));
        let get = only(r#"<Redirect method="get">/next</Redirect>"#);
        assert_eq!(get, Verb::Redirect(Redirect { url: "/next".into(), method: Method::Get }));
    }

    #[test]
    fn hangup_and_leave_take_nothing() {
        assert_eq!(verbs("<Response><Hangup/><Leave></Leave></Response>"), vec![Verb::Hangup, Verb::Leave]);
    }

    #[test]
    fn reject_defaults_to_rejected_and_accepts_busy() {
        assert_eq!(only("<Reject/>"), Verb::Reject(Reject { reason: RejectReason::Rejected }));
        assert_eq!(only(r#"<Reject reason="busy"/>"#), Verb::Reject(Reject { reason: RejectReason::Busy }));
    }

    #[test]
    fn gather_defaults_match_twilio() {
        let Verb::Gather(gather) = only("<Gather/>") else { panic!("expected a <Gather>") };
        assert_eq!(gather, Gather::default());
        assert_eq!(gather.input, GatherInput::Dtmf);
        assert_eq!(gather.action, None);
        assert_eq!(gather.method, Method::Post);
        assert_eq!(gather.timeout_s, 5);
        assert_eq!(gather.finish_on_key, Some('#'));
        assert_eq!(gather.num_digits, None);
        assert!(!gather.action_on_empty_result);
        assert_eq!(gather.speech_timeout, None);
    }

    #[test]
    fn gather_reads_every_attribute_and_its_nested_prompts() {
        let gather = only(
            r#"<Gather input="speech dtmf" action="/g" method="GET" timeout="9" finishOnKey="" numDigits="4"
                       actionOnEmptyResult="true" speechTimeout="auto" bargeIn="false" hints="yes, no"
                       language="fr-FR" partialResultCallback="/p" partialResultCallbackMethod="GET"
                       profanityFilter="false" speechModel="phone_call" enhanced="true" maxSpeechTime="30">
                 <Say>Press a key</Say><Play>https://x.test/a.mp3</Play><Pause length="2"/>
               </Gather>"#,
        );
        let expected = Gather {
            input: GatherInput::DtmfAndSpeech,
            action: Some("/g".into()),
            method: Method::Get,
            timeout_s: 9,
            finish_on_key: None,
            num_digits: Some(4),
            action_on_empty_result: true,
            speech_timeout: Some(SpeechTimeout::Auto),
            barge_in: false,
            hints: Some("yes, no".into()),
            language: Some("fr-FR".into()),
            partial_result_callback: Some("/p".into()),
            partial_result_callback_method: Method::Get,
            profanity_filter: false,
            speech_model: Some("phone_call".into()),
            enhanced: true,
            max_speech_time_s: 30,
            prompts: vec![
                GatherPrompt::Say(Say::new("Press a key")),
                GatherPrompt::Play(Play::new("https://x.test/a.mp3")),
                GatherPrompt::Pause(Pause { length_s: 2 }),
            ],
        };
        assert_eq!(gather, Verb::Gather(expected));
    }

    #[test]
    fn gather_speech_timeout_may_be_seconds() {
        let Verb::Gather(gather) = only(r#"<Gather input="speech" speechTimeout="3" finishOnKey="*"/>"#)
        else {
            panic!("expected a <Gather>")
        };
        assert_eq!(gather.input, GatherInput::Speech);
        assert_eq!(gather.speech_timeout, Some(SpeechTimeout::Seconds(3)));
        assert_eq!(gather.finish_on_key, Some('*'));
    }

    #[test]
    fn plain_text_dial_body_is_a_single_number() {
        let dial = dial("<Dial>\n  +15551234567\n</Dial>");
        assert_eq!(dial, Dial::new(Number::new("+15551234567")));
        assert_eq!(only_number(dial), Number::new("+15551234567"));
    }

    #[test]
    fn dial_defaults_match_twilio() {
        let dial = dial("<Dial>+15551234567</Dial>");
        assert_eq!(dial.action, None);
        assert_eq!(dial.method, Method::Post);
        assert_eq!(dial.timeout_s, 30);
        assert_eq!(dial.caller_id, None);
        assert!(!dial.answer_on_bridge);
        assert_eq!(dial.time_limit_s, 14_400);
        assert!(!dial.hangup_on_star);
        assert_eq!(dial.record, DialRecord::DoNotRecord);
        assert_eq!(dial.ring_tone, None);
        assert!(!dial.sequential);
    }

    #[test]
    fn dial_reads_every_attribute() {
        let dial = dial(
            r#"<Dial action="/after" method="GET" timeout="12" callerId="+15550000000" answerOnBridge="true"
                     timeLimit="60" hangupOnStar="true" record="record-from-answer-dual" ringTone="uk"
                     sequential="true" recordingStatusCallback="/rec" recordingStatusCallbackMethod="GET"
                     recordingStatusCallbackEvent="in-progress completed absent" recordingTrack="both"
                     recordingConfigurationId="RC1" trim="trim-silence" referUrl="/refer" referMethod="GET"
                     events="call-progress-event">+15551234567</Dial>"#,
        );
        let expected = Dial {
            action: Some("/after".into()),
            method: Method::Get,
            timeout_s: 12,
            caller_id: Some("+15550000000".into()),
            answer_on_bridge: true,
            time_limit_s: 60,
            hangup_on_star: true,
            record: DialRecord::RecordFromAnswerDual,
            ring_tone: Some("uk".into()),
            sequential: true,
            recording_status_callback: Some("/rec".into()),
            recording_status_callback_method: Method::Get,
            recording_status_callback_event: vec![
                RecordingEvent::InProgress,
                RecordingEvent::Completed,
                RecordingEvent::Absent,
            ],
            recording_track: Some(RecordingTrack::Both),
            recording_configuration_id: Some("RC1".into()),
            trim: Some(Trim::TrimSilence),
            refer_url: Some("/refer".into()),
            refer_method: Method::Get,
            call_progress_events: true,
            target: Number::new("+15551234567").into(),
        };
        assert_eq!(dial, expected);
    }

    #[test]
    fn number_defaults_to_the_completed_callback_and_no_machine_detection() {
        let number = only_number(dial("<Dial><Number>+15551234567</Number></Dial>"));
        assert_eq!(number, Number::new("+15551234567"));
        assert_eq!(number.status_callback.events, vec![CallEvent::Completed]);
        assert_eq!(number.status_callback.method, Method::Post);
        assert_eq!(number.machine_detection.mode, None);
        assert_eq!(number.machine_detection.timeout_s, 30);
    }

    #[test]
    fn number_reads_callbacks_and_machine_detection() {
        let number = only_number(dial(
            r#"<Dial><Number url="/whisper" method="GET" sendDigits="ww1234#" byoc="BY1"
                       statusCallback="/status" statusCallbackEvent="initiated  ringing answered completed"
                       statusCallbackMethod="GET" machineDetection="DetectMessageEnd" machineDetectionTimeout="10"
                       machineDetectionSpeechThreshold="2000" machineDetectionSpeechEndThreshold="900"
                       machineDetectionSilenceTimeout="3000" amdStatusCallback="/amd"
                       amdStatusCallbackMethod="GET">+15551234567</Number></Dial>"#,
        ));
        let expected = Number {
            number: "+15551234567".into(),
            url: Some("/whisper".into()),
            method: Method::Get,
            send_digits: Some("ww1234#".into()),
            byoc: Some("BY1".into()),
            status_callback: LegStatusCallback {
                url: Some("/status".into()),
                events: vec![
                    CallEvent::Initiated,
                    CallEvent::Ringing,
                    CallEvent::Answered,
                    CallEvent::Completed,
                ],
                method: Method::Get,
            },
            machine_detection: MachineDetection {
                mode: Some(AmdMode::DetectMessageEnd),
                timeout_s: 10,
                speech_threshold_ms: 2000,
                speech_end_threshold_ms: 900,
                silence_timeout_ms: 3000,
                status_callback: Some("/amd".into()),
                status_callback_method: Method::Get,
            },
        };
        assert_eq!(number, expected);
    }

    #[test]
    fn dial_rings_several_endpoints_in_order() {
        let dial = dial(
            r#"<Dial sequential="true"><Number>+15550000001</Number><Client>alice</Client>
               <Sip username="u" password="p" machineDetection="Enable">sip:bob@example.com</Sip></Dial>"#,
        );
        assert!(dial.sequential);
        let sip = Sip {
            uri: "sip:bob@example.com".into(),
            username: Some("u".into()),
            password: Some("p".into()),
            machine_detection: MachineDetection {
                mode: Some(AmdMode::Enable),
                ..MachineDetection::default()
            },
            ..Sip::default()
        };
        let expected = vec![
            Endpoint::Number(Number::new("+15550000001")),
            Endpoint::Client(Client { identity: "alice".into(), ..Client::default() }),
            Endpoint::Sip(sip),
        ];
        assert_eq!(dial.target, DialTarget::Endpoints(expected));
    }

    #[test]
    fn client_takes_its_identity_from_an_identity_element_with_parameters() {
        let dial = dial(
            r#"<Dial><Client url="/w" statusCallback="/s" statusCallbackEvent="answered">
                 <Identity>alice</Identity>
                 <Parameter name="team" value="blue"/>
               </Client></Dial>"#,
        );
        let client = Client {
            identity: "alice".into(),
            url: Some("/w".into()),
            method: Method::Post,
            status_callback: LegStatusCallback {
                url: Some("/s".into()),
                events: vec![CallEvent::Answered],
                method: Method::Post,
            },
            parameters: vec![("team".into(), "blue".into())],
        };
        assert_eq!(dial.target, client.into());
    }

    #[test]
    fn conference_defaults_match_twilio() {
        let conference = conference("<Dial><Conference>room-1</Conference></Dial>");
        assert_eq!(conference, Conference::new("room-1"));
        assert!(!conference.muted);
        assert_eq!(conference.beep, Beep::OnEnterAndExit);
        assert!(conference.start_conference_on_enter);
        assert!(!conference.end_conference_on_exit);
        assert_eq!(conference.wait_url, WaitUrl::HoldMusic);
        assert_eq!(conference.wait_method, Method::Post);
        assert_eq!(conference.max_participants, 250);
        assert_eq!(conference.status_callback_event, vec![]);
    }

    #[test]
    fn conference_wait_url_distinguishes_absent_empty_and_a_url() {
        assert_eq!(conference("<Dial><Conference>r</Conference></Dial>").wait_url, WaitUrl::HoldMusic);
        assert_eq!(
            conference(r#"<Dial><Conference waitUrl="">r</Conference></Dial>"#).wait_url,
            WaitUrl::Silence
        );
        assert_eq!(
            conference(r#"<Dial><Conference waitUrl="/hold">r</Conference></Dial>"#).wait_url,
            WaitUrl::Url("/hold".into())
        );
    }

    #[test]
    fn conference_reads_every_attribute() {
        let conference = conference(
            r#"<Dial><Conference muted="true" beep="onExit" startConferenceOnEnter="false"
                 endConferenceOnExit="true" waitUrl="/hold" waitMethod="GET" maxParticipants="10"
                 record="record-from-start" region="ie1" trim="do-not-trim" coach="CA123"
                 participantLabel="agent" jitterBufferSize="small" statusCallback="/conf"
                 statusCallbackMethod="GET" statusCallbackEvent="start end join leave mute hold modify speaker announcement"
                 eventCallbackUrl="/ev" recordingStatusCallback="/rec" recordingStatusCallbackMethod="GET"
                 recordingStatusCallbackEvent="in-progress">room-1</Conference></Dial>"#,
        );
        let expected = Conference {
            name: "room-1".into(),
            muted: true,
            beep: Beep::OnExit,
            start_conference_on_enter: false,
            end_conference_on_exit: true,
            wait_url: WaitUrl::Url("/hold".into()),
            wait_method: Method::Get,
            max_participants: 10,
            record: ConferenceRecord::RecordFromStart,
            region: Some("ie1".into()),
            trim: Some(Trim::DoNotTrim),
            coach: Some("CA123".into()),
            participant_label: Some("agent".into()),
            jitter_buffer_size: Some(JitterBufferSize::Small),
            status_callback: Some("/conf".into()),
            status_callback_method: Method::Get,
            status_callback_event: ConferenceEvent::ALL.to_vec(),
            event_callback_url: Some("/ev".into()),
            recording_status_callback: Some("/rec".into()),
            recording_status_callback_method: Method::Get,
            recording_status_callback_event: vec![RecordingEvent::InProgress],
        };
        assert_eq!(conference, expected);
    }

    #[test]
    fn conference_beep_accepts_booleans_in_any_case() {
        assert_eq!(conference(r#"<Dial><Conference beep="False">r</Conference></Dial>"#).beep, Beep::Never);
        assert_eq!(
            conference(r#"<Dial><Conference beep="onEnter">r</Conference></Dial>"#).beep,
            Beep::OnEnter
        );
    }

    #[test]
    fn dial_queue_and_enqueue_name_the_queue() {
        let queue = dial(r#"<Dial><Queue url="/about" reservationSid="WR1">support</Queue></Dial>"#).target;
        let expected = Queue {
            name: "support".into(),
            url: Some("/about".into()),
            reservation_sid: Some("WR1".into()),
            ..Queue::default()
        };
        assert_eq!(queue, DialTarget::Queue(expected));
        let enqueue =
            only(r#"<Enqueue action="/left" waitUrl="/wait" waitUrlMethod="GET">support</Enqueue>"#);
        let expected = Enqueue {
            name: "support".into(),
            action: Some("/left".into()),
            wait_url: Some("/wait".into()),
            wait_url_method: Method::Get,
            ..Enqueue::default()
        };
        assert_eq!(enqueue, Verb::Enqueue(expected));
    }

    #[test]
    fn connect_stream_carries_its_parameters_in_order() {
        let connect = only(
            r#"<Connect action="/done" method="GET">
                 <Stream url="wss://x.test/media" name="s1" statusCallback="/st" statusCallbackMethod="GET">
                   <Parameter name="b" value="2"/><Parameter name="a" value="1"/>
                 </Stream>
               </Connect>"#,
        );
        let stream = Stream {
            url: "wss://x.test/media".into(),
            name: Some("s1".into()),
            track: Track::InboundTrack,
            status_callback: Some("/st".into()),
            status_callback_method: Method::Get,
            connector_name: None,
            parameters: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        };
        assert_eq!(
            connect,
            Verb::Connect(Connect { action: Some("/done".into()), method: Method::Get, stream })
        );
    }

    #[test]
    fn start_stream_defaults_to_the_inbound_track_and_stop_names_it() {
        let doc = verbs(
            r#"<Response><Start><Stream url="wss://x.test/fork" name="fork"/></Start>
               <Start><Stream url="wss://x.test/both" track="both_tracks"/></Start>
               <Stop><Stream name="fork"/></Stop></Response>"#,
        );
        let fork = Stream { name: Some("fork".into()), ..Stream::new("wss://x.test/fork") };
        let both = Stream { track: Track::BothTracks, ..Stream::new("wss://x.test/both") };
        let expected = vec![
            Verb::Start(Start { stream: fork, ..Start::default() }),
            Verb::Start(Start { stream: both, ..Start::default() }),
            Verb::Stop(Stop { stream_name: Some("fork".into()) }),
        ];
        assert_eq!(doc, expected);
    }

    #[test]
    fn verbs_run_in_document_order() {
        let doc = verbs("<Response><Say>a</Say><Pause/><Hangup/><Say>b</Say></Response>");
        let expected = vec![
            Verb::Say(Say::new("a")),
            Verb::Pause(Pause::default()),
            Verb::Hangup,
            Verb::Say(Say::new("b")),
        ];
        assert_eq!(doc, expected);
    }

    // --- text: entities, CDATA, whitespace ----------------------------------------------------------------

    #[test]
    fn entities_are_unescaped_in_text_and_attributes() {
        let doc = verbs(
            r#"<Response><Say voice="a&amp;b">Tom &amp; Jerry &lt;3 &quot;x&quot; &apos;y&apos; &#65;&#x42;</Say>
               <Redirect>/next?a=1&amp;b=2</Redirect></Response>"#,
        );
        let say = Say { voice: Some("a&b".into()), ..Say::new("Tom & Jerry <3 \"x\" 'y' AB") };
        assert_eq!(doc, vec![Verb::Say(say), Verb::Redirect(Redirect::new("/next?a=1&b=2"))]);
    }

    #[test]
    fn cdata_text_is_taken_literally() {
        assert_eq!(
            only("<Say><![CDATA[a < b & c]]> and more</Say>"),
            Verb::Say(Say::new("a < b & c and more"))
        );
    }

    #[test]
    fn whitespace_around_text_is_trimmed_but_kept_inside() {
        assert_eq!(only("<Say>\n\t  one  two \r\n</Say>"), Verb::Say(Say::new("one  two")));
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        assert_eq!(
            verbs("\u{feff}<?xml version=\"1.0\"?><Response><Hangup/></Response>"),
            vec![Verb::Hangup]
        );
    }

    #[test]
    fn comments_and_processing_instructions_are_ignored() {
        let doc =
            verbs("<!-- a --><Response><!-- b --><Say>x<!-- c -->y</Say><?pi data?></Response><!-- d -->");
        assert_eq!(doc, vec![Verb::Say(Say::new("xy"))]);
    }

    // --- fatal errors -----------------------------------------------------------------------------------

    #[test]
    fn an_empty_body_is_a_12100_parse_failure() {
        let e = err("");
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 1, 1));
        assert_eq!(e.message, "the document has no root element; expected <Response>");
        let e = err("  \n  <!-- nothing -->\n");
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 3, 1));
    }

    #[test]
    fn non_xml_is_a_12100_parse_failure() {
        let e = err("Internal Server Error");
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 1, 1));
        let e = err(r#"{"twiml": true}"#);
        assert_eq!(e.code, DOCUMENT_PARSE_FAILURE);
    }

    #[test]
    fn a_mismatched_end_tag_is_a_12100_at_the_end_tag() {
        let e = err("<Response>\n  <Say>hi\n  </Play>\n</Response>");
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 3, 3), "{e}");
        assert!(e.message.contains("</Say>"), "{e}");
    }

    #[test]
    fn an_unclosed_element_is_a_12100_at_the_end_of_the_document() {
        let e = err("<Response>\n  <Say>hi</Say>\n");
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 3, 1), "{e}");
        assert_eq!(
            e.message,
            "the document ended inside <Response> (opened at line 1, column 1); expected </Response>"
        );
    }

    #[test]
    fn a_bare_ampersand_is_a_12100() {
        let e = err("<Response>\n  <Say>Tom & Jerry</Say>\n</Response>");
        assert_eq!((e.code, e.line), (DOCUMENT_PARSE_FAILURE, 2), "{e}");
    }

    #[test]
    fn an_undefined_entity_is_a_12100_at_the_reference() {
        let e = err("<Response><Say>a&nbsp;b</Say></Response>");
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 1, 17), "{e}");
        assert!(e.message.contains("&nbsp;"), "{e}");
        let e = err(r#"<Response><Say voice="&nbsp;">x</Say></Response>"#);
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 1, 16), "{e}");
    }

    #[test]
    fn a_bad_or_forbidden_character_is_a_12100() {
        assert_eq!(err("<Response><Say>&#0;</Say></Response>").code, DOCUMENT_PARSE_FAILURE);
        assert_eq!(err("<Response><Say>&#xZZ;</Say></Response>").code, DOCUMENT_PARSE_FAILURE);
        let e = err("<Response><Say>a\u{0}b</Say></Response>");
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 1, 16), "{e}");
    }

    #[test]
    fn malformed_attributes_are_a_12100_at_the_attribute() {
        // Where the `=` should be.
        let e = err("<Response><Dial hangupOnStar>+1</Dial></Response>");
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 1, 29), "{e}");
        let e = err(r#"<Response><Say loop=2>x</Say></Response>"#);
        assert_eq!(e.code, DOCUMENT_PARSE_FAILURE, "{e}");
        let e = err(r#"<Response><Say loop="1" loop="2">x</Say></Response>"#);
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 1, 25), "{e}");
    }

    #[test]
    fn text_outside_the_root_is_a_12100() {
        let e = err("<Response/>\ntrailing");
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 1, 12), "{e}");
    }

    #[test]
    fn a_second_root_element_is_a_12100() {
        let e = err("<Response/>\n<Response/>");
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 2, 1), "{e}");
    }

    #[test]
    fn a_root_other_than_response_is_a_12102() {
        let e = err("<?xml version=\"1.0\"?>\n<Reply><Say>x</Say></Reply>");
        assert_eq!((e.code, e.line, e.column), (ROOT_NOT_RESPONSE, 2, 1));
        assert_eq!(e.message, "the root element is <Reply>; expected <Response>");
    }

    #[test]
    fn the_root_name_is_case_sensitive() {
        assert_eq!(err("<response></response>").code, ROOT_NOT_RESPONSE);
    }

    #[test]
    fn a_malformed_document_is_a_12100_even_with_the_wrong_root() {
        assert_eq!(err("<Reply><Say></Reply>").code, DOCUMENT_PARSE_FAILURE);
    }

    #[test]
    fn an_xml_version_other_than_1_0_is_a_12101_at_the_version() {
        let e = err("<?xml version=\"1.1\"?><Response/>");
        assert_eq!((e.code, e.line, e.column), (INVALID_XML_VERSION, 1, 16), "{e}");
        assert_eq!(e.message, "xml version \"1.1\" is not supported; expected version=\"1.0\"");
    }

    #[test]
    fn an_xml_declaration_must_come_first() {
        let e = err("\n<?xml version=\"1.0\"?><Response/>");
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 2, 1), "{e}");
        let e = err("<?xml encoding=\"UTF-8\"?><Response/>");
        assert_eq!(e.code, DOCUMENT_PARSE_FAILURE, "{e}");
    }

    #[test]
    fn a_doctype_is_a_12100() {
        let e = err("<!DOCTYPE Response [<!ENTITY x \"y\">]><Response><Say>&x;</Say></Response>");
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 1, 1), "{e}");
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_a_12100_at_the_first_element_too_deep() {
        let ok = format!(
            "<Response>{}{}</Response>",
            "<Say>".repeat(MAX_DEPTH - 1),
            "</Say>".repeat(MAX_DEPTH - 1)
        );
        assert!(parse(&ok).is_ok());
        let deep =
            format!("<Response>{}{}</Response>", "<Say>".repeat(MAX_DEPTH), "</Say>".repeat(MAX_DEPTH));
        let e = err(&deep);
        let column = "<Response>".len() + "<Say>".len() * (MAX_DEPTH - 1) + 1;
        assert_eq!((e.code, e.line, e.column), (DOCUMENT_PARSE_FAILURE, 1, column), "{e}");
    }

    #[test]
    fn a_body_over_64_kib_is_an_11750() {
        let padding = " ".repeat(MAX_DOCUMENT_BYTES);
        let e = err(&format!("<Response>{padding}</Response>"));
        assert_eq!((e.code, e.line, e.column), (BODY_TOO_LARGE, 1, MAX_DOCUMENT_BYTES + 1));
        let fits = format!("<Response>{}</Response>", " ".repeat(MAX_DOCUMENT_BYTES - 21));
        assert!(parse(&fits).is_ok());
    }

    #[test]
    fn errors_display_their_code_and_position() {
        let e = TwimlError { code: 12100, message: "boom".into(), line: 3, column: 7 };
        assert_eq!(e.to_string(), "12100 at line 3, column 7: boom");
        let w = TwimlWarning { code: 12200, message: "meh".into(), line: 1, column: 2 };
        assert_eq!(w.to_string(), "12200 at line 1, column 2: meh");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let e = err("<Response><Say>é&bogus;</Say></Response>");
        assert_eq!((e.line, e.column), (1, 17), "{e}");
    }

    // --- warnings ---------------------------------------------------------------------------------------

    #[test]
    fn an_unknown_verb_is_a_12200_warning_and_is_skipped() {
        let (verbs, warnings) = warnings("<Response>\n  <Shout>hi</Shout>\n  <Hangup/>\n</Response>");
        assert_eq!(verbs, vec![Verb::Hangup]);
        let message = "<Shout> is not allowed inside <Response> and is ignored; expected <Say>, <Play>, <Pause>, \
                       <Redirect>, <Hangup>, <Reject>, <Gather>, <Dial>, <Connect>, <Start>, <Stop>, <Enqueue> or \
                       <Leave>";
        assert_eq!(warnings, vec![(2, 3, message.to_owned())]);
    }

    #[test]
    fn a_wrongly_cased_verb_is_a_warning_that_names_the_right_case() {
        let (verbs, warnings) = warnings("<Response><say>hi</say></Response>");
        assert_eq!(verbs, vec![]);
        let message = "unknown verb <say> is ignored; verbs are case-sensitive, expected <Say>";
        assert_eq!(warnings, vec![(1, 11, message.to_owned())]);
    }

    #[test]
    fn a_twilio_verb_ringback_does_not_simulate_is_a_warning() {
        let (verbs, warnings) = warnings("<Response><Record/><Hangup/></Response>");
        assert_eq!(verbs, vec![Verb::Hangup]);
        let message = "<Record> inside <Response> is not simulated by ringback and is ignored";
        assert_eq!(warnings, vec![(1, 11, message.to_owned())]);
    }

    #[test]
    fn an_unknown_attribute_is_a_warning_at_the_attribute() {
        let (verbs, warnings) = warnings(r#"<Response><Say colour="red">hi</Say></Response>"#);
        assert_eq!(verbs, vec![Verb::Say(Say::new("hi"))]);
        assert_eq!(warnings, vec![(1, 16, "unknown attribute 'colour' on <Say> is ignored".to_owned())]);
    }

    #[test]
    fn attributes_are_case_sensitive() {
        let (verbs, warnings) = warnings(r#"<Response><Dial TimeOut="5">+1</Dial></Response>"#);
        assert_eq!(verbs, vec![Verb::Dial(Dial::new(Number::new("+1")))]);
        assert_eq!(warnings, vec![(1, 17, "unknown attribute 'TimeOut' on <Dial> is ignored".to_owned())]);
    }

    #[test]
    fn a_status_callback_event_on_dial_is_an_unknown_attribute() {
        // The parser message Twilio users quote for 12200 (reference §4).
        let (_, warnings) =
            warnings(r#"<Response><Dial statusCallbackEvent="answered">+1</Dial></Response>"#);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].2, "unknown attribute 'statusCallbackEvent' on <Dial> is ignored");
    }

    #[test]
    fn a_bad_attribute_value_falls_back_to_the_default_with_a_warning() {
        let (verbs, warnings) = warnings(
            "<Response><Dial timeout=\"soon\" method=\"PUT\" record=\"yes\" hangupOnStar=\"1\">+1</Dial></Response>",
        );
        assert_eq!(verbs, vec![Verb::Dial(Dial::new(Number::new("+1")))]);
        let messages: Vec<_> = warnings.into_iter().map(|(_, column, message)| (column, message)).collect();
        assert_eq!(
            messages,
            vec![
                (17, "attribute 'timeout' on <Dial> must be a whole number, found 'soon'; using the default (30)".to_owned()),
                (32, "attribute 'method' on <Dial> must be `GET` or `POST`, found 'PUT'; using the default (POST)".to_owned()),
                (
                    45,
                    "attribute 'record' on <Dial> must be one of `do-not-record` `record-from-answer` \
                     `record-from-ringing` `record-from-answer-dual` `record-from-ringing-dual`, found 'yes'; using the \
                     default (do-not-record)"
                        .to_owned()
                ),
                (58, "attribute 'hangupOnStar' on <Dial> must be `true` or `false`, found '1'; using the default (false)".to_owned()),
            ]
        );
    }

    #[test]
    fn out_of_range_numbers_fall_back_to_the_default() {
        let (verbs, warnings) = warnings(
            r#"<Response><Dial><Conference maxParticipants="500">r</Conference></Dial>
               <Dial><Number machineDetectionTimeout="2">+1</Number></Dial></Response>"#,
        );
        assert_eq!(
            verbs,
            vec![Verb::Dial(Dial::new(Conference::new("r"))), Verb::Dial(Dial::new(Number::new("+1")))]
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].2.contains("a whole number from 2 to 250"), "{warnings:?}");
        assert!(warnings[1].2.contains("a whole number from 3 to 60"), "{warnings:?}");
    }

    #[test]
    fn an_unknown_status_callback_event_is_dropped_with_a_warning() {
        let (verbs, warnings) = warnings(
            r#"<Response><Dial><Number statusCallbackEvent="ringing hungup ringing">+1</Number></Dial></Response>"#,
        );
        let Verb::Dial(dial) = &verbs[0] else { panic!("expected a <Dial>") };
        assert_eq!(only_number(dial.clone()).status_callback.events, vec![CallEvent::Ringing]);
        assert_eq!(warnings.len(), 1);
        assert_eq!(
            warnings[0].2,
            "'hungup' in attribute 'statusCallbackEvent' on <Number> is ignored; expected one of `initiated` \
             `ringing` `answered` `completed`"
        );
    }

    #[test]
    fn a_dial_inside_gather_is_a_warning_and_is_skipped() {
        let (verbs, warnings) =
            warnings("<Response>\n<Gather>\n  <Say>hi</Say>\n  <Dial>+1</Dial>\n</Gather>\n</Response>");
        let gather = Gather { prompts: vec![GatherPrompt::Say(Say::new("hi"))], ..Gather::default() };
        assert_eq!(verbs, vec![Verb::Gather(gather)]);
        let message =
            "<Dial> is not allowed inside <Gather> and is ignored; expected <Say>, <Play> or <Pause>";
        assert_eq!(warnings, vec![(4, 3, message.to_owned())]);
    }

    #[test]
    fn a_dial_with_no_target_is_a_warning_and_is_skipped() {
        let (verbs, warnings) = warnings("<Response><Dial timeout=\"5\">  </Dial><Hangup/></Response>");
        assert_eq!(verbs, vec![Verb::Hangup]);
        let message = "<Dial> has nothing to dial and is ignored; expected a number or <Number>, <Client>, <Sip>, \
                       <Conference> or <Queue>";
        assert_eq!(warnings, vec![(1, 11, message.to_owned())]);
    }

    #[test]
    fn a_dial_whose_only_noun_is_ignored_has_no_target() {
        let (verbs, warnings) = warnings("<Response><Dial><Number/></Dial></Response>");
        assert_eq!(verbs, vec![]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].2.starts_with("<Dial> has nothing to dial"), "{warnings:?}");
        assert!(warnings[1].2.starts_with("<Number> has no phone number"), "{warnings:?}");
    }

    #[test]
    fn a_conference_is_dialed_alone() {
        let (verbs, warnings) = warnings(
            "<Response><Dial><Conference>r</Conference><Number>+1</Number><Queue>q</Queue></Dial></Response>",
        );
        assert_eq!(verbs, vec![Verb::Dial(Dial::new(Conference::new("r")))]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert_eq!(
            warnings[0].2,
            "<Number> is ignored; a <Conference> or <Queue> must be the only noun in its <Dial>"
        );
    }

    #[test]
    fn a_dial_rings_at_most_ten_endpoints() {
        let numbers: String = (0..12).map(|i| format!("<Number>+1555000{i:04}</Number>")).collect();
        let (verbs, warnings) = warnings(&format!("<Response><Dial>{numbers}</Dial></Response>"));
        let Verb::Dial(Dial { target: DialTarget::Endpoints(endpoints), .. }) = &verbs[0] else {
            panic!("expected endpoints: {verbs:?}")
        };
        assert_eq!(endpoints.len(), MAX_DIAL_ENDPOINTS);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[test]
    fn text_beside_dial_nouns_is_a_warning() {
        let (verbs, warnings) = warnings("<Response><Dial>+1<Number>+2</Number></Dial></Response>");
        assert_eq!(verbs, vec![Verb::Dial(Dial::new(Number::new("+2")))]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!((warnings[0].0, warnings[0].1), (1, 17));
    }

    #[test]
    fn text_directly_inside_response_is_a_warning() {
        let (verbs, warnings) = warnings("<Response>Hello<Hangup/></Response>");
        assert_eq!(verbs, vec![Verb::Hangup]);
        let message =
            "text inside <Response> is ignored; expected verbs such as <Say>; text must be inside a verb";
        assert_eq!(warnings, vec![(1, 11, message.to_owned())]);
    }

    #[test]
    fn a_nested_element_in_a_text_verb_is_a_warning() {
        let (verbs, warnings) =
            warnings("<Response><Play>u<Say>x</Say></Play><Hangup>bye</Hangup></Response>");
        assert_eq!(verbs, vec![Verb::Play(Play::new("u")), Verb::Hangup]);
        assert_eq!(
            warnings,
            vec![
                (1, 18, "<Say> is not allowed inside <Play> and is ignored; expected only text".to_owned()),
                (1, 45, "text inside <Hangup> is ignored; expected <Hangup/> to be empty".to_owned()),
            ]
        );
    }

    #[test]
    fn empty_bodies_that_need_a_url_or_name_are_warnings() {
        let (verbs, warnings) = warnings(
            "<Response><Play/><Redirect/><Enqueue/><Dial><Conference/></Dial><Connect/>\
             <Start><Stream/></Start><Stop/></Response>",
        );
        assert_eq!(verbs, vec![]);
        assert_eq!(warnings.len(), 8, "{warnings:?}");
    }

    #[test]
    fn connect_streams_only_the_inbound_track() {
        let (verbs, warnings) = warnings(
            r#"<Response><Connect><Stream url="wss://x" track="both_tracks"/></Connect></Response>"#,
        );
        assert_eq!(
            verbs,
            vec![Verb::Connect(Connect { stream: Stream::new("wss://x"), ..Connect::default() })]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!((warnings[0].0, warnings[0].1), (1, 20));
    }

    #[test]
    fn warnings_come_in_document_order() {
        let (_, warnings) = warnings(
            r#"<Response x="1"><Gather bogus="1"><Dial/></Gather><Say y="2">a</Say>text</Response>"#,
        );
        let positions: Vec<_> = warnings.iter().map(|(line, column, _)| (*line, *column)).collect();
        let mut sorted = positions.clone();
        sorted.sort();
        assert_eq!(positions, sorted);
        assert_eq!(positions.len(), 5, "{warnings:?}");
    }

    #[test]
    fn namespace_declarations_are_not_unknown_attributes() {
        let doc = verbs(r#"<Response xmlns="http://www.twilio.com/twiml"><Hangup/></Response>"#);
        assert_eq!(doc, vec![Verb::Hangup]);
    }

    #[test]
    fn a_document_full_of_warnings_stays_within_the_size_limit_and_is_fast() {
        // Thousands of warnings on one long line: locating them must not rescan the document each time.
        let attrs: String = (0..3000).map(|i| format!(" a{i}=\"\"")).collect();
        let verbs: String = (0..1500).map(|_| "<X/>").collect();
        let xml = format!("<Response{attrs}>{verbs}</Response>");
        assert!(xml.len() <= MAX_DOCUMENT_BYTES);
        let doc = parse(&xml).unwrap();
        assert_eq!(doc.warnings.len(), 4500);
        assert_eq!(doc.warnings[4499].column, xml.len() - "<X/></Response>".len() + 1);
    }

    // --- never panics -------------------------------------------------------------------------------------

    const SAMPLES: &[&str] = &[
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say voice="alice" loop="2">Hi &amp; bye</Say></Response>"#,
        r#"<Response><Gather input="dtmf speech" numDigits="1" action="/g"><Say>Press 1</Say><Pause/></Gather></Response>"#,
        r#"<Response><Dial action="/a" timeout="10"><Number statusCallbackEvent="initiated completed" machineDetection="Enable">+15551234567</Number><Client><Identity>a</Identity><Parameter name="k" value="v"/></Client></Dial></Response>"#,
        r#"<Response><Dial><Conference waitUrl="" beep="onEnter" statusCallbackEvent="start end">room</Conference></Dial></Response>"#,
        r#"<Response><Connect><Stream url="wss://x/y"><Parameter name="a" value="b"/></Stream></Connect><Start><Stream url="wss://z" name="n"/></Start><Stop><Stream name="n"/></Stop></Response>"#,
        "<Response><Play digits=\"1w2\"/><Redirect method=\"GET\">/r</Redirect><Reject reason=\"busy\"/><Enqueue>q</Enqueue><Leave/><Hangup/><![CDATA[x]]></Response>",
    ];

    /// Characters that make XML interesting to break.
    const SPICE: &[char] =
        &['<', '>', '/', '&', ';', '"', '\'', '=', ' ', '\n', '!', '?', '[', ']', '#', 'x', 'é', '\0'];

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 256, ..Default::default() })]

        #[test]
        fn arbitrary_strings_never_panic(input in "\\PC{0,200}") {
            let _ = parse(&input);
        }

        #[test]
        fn arbitrary_xmlish_strings_never_panic(input in "[<>/&;\"'= a-zA-Z0-9!?#\\[\\]\n-]{0,120}") {
            let _ = parse(&input);
        }

        #[test]
        fn mutated_valid_documents_never_panic(
            sample in 0..SAMPLES.len(),
            edits in proptest::collection::vec((0usize..3, proptest::prelude::any::<proptest::sample::Index>(), 0..SPICE.len(), 1usize..8), 1..6),
        ) {
            let mut chars: Vec<char> = SAMPLES[sample].chars().collect();
            for (kind, at, spice, len) in edits {
                let at = at.index(chars.len() + 1);
                match kind {
                    0 => chars.insert(at, SPICE[spice]),
                    1 => { chars.drain(at..(at + len).min(chars.len())); }
                    _ => {
                        let copy: Vec<char> = chars[at..(at + len).min(chars.len())].to_vec();
                        chars.splice(at..at, copy);
                    }
                }
            }
            let input: String = chars.into_iter().collect();
            let _ = parse(&input);
        }
    }
}
