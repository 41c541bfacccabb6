//! The Media Streams WebSocket client: what the fake Twilio does for `<Connect><Stream>` or
//! `<Start><Stream>` toward a server that is not in-process (reference §8).
//!
//! It connects to the stream URL and speaks Twilio's protocol: `connected`, `start`, a `media` frame of
//! µ-law silence every frame interval, `dtmf` on command (bidirectional streams only), `mark` echoes once
//! the server's audio queued before the mark has played, and `stop` then a close when told to stop. What
//! the server sends (`media`, `mark`, `clear`) is reported back to the caller.
//!
//! The protocol lives in a pure core (the message builders and [`Session`]), so it is tested with exact
//! strings and no socket; [`run`] is the thin async shell around it. Pacing uses `tokio::time`, so a test
//! with paused time drives it without waiting.

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::ids::{AccountSid, CallSid, StreamSid};

/// How long to wait for the TCP connection and the WebSocket handshake together.
/// **(UNCONFIRMED)**: Twilio does not document it; this is its webhook connect timeout (reference §5).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for the server to answer our close frame after `stop`.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The frame interval used when the caller passes zero: 20 ms, the conventional Media Streams frame.
pub const DEFAULT_FRAME_INTERVAL: Duration = Duration::from_millis(20);

/// µ-law samples per millisecond (8 kHz, one byte per sample).
const BYTES_PER_MS: u64 = 8;

/// µ-law silence.
const MULAW_SILENCE: u8 = 0xFF;

/// One audio direction of a stream, as the `start.tracks` list and each `media.track` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Track {
    /// What the caller says (`track="inbound_track"`).
    Inbound,
    /// What the caller hears (`track="outbound_track"`).
    Outbound,
}

impl Track {
    pub fn as_str(self) -> &'static str {
        match self {
            Track::Inbound => "inbound",
            Track::Outbound => "outbound",
        }
    }
}

/// Everything the client needs to open one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamStart {
    /// `ws://` or `wss://` URL of the server, from `<Stream url>`.
    pub url: String,
    pub account_sid: AccountSid,
    pub call_sid: CallSid,
    pub stream_sid: StreamSid,
    /// The tracks sent, from `<Stream track>`: `inbound_track` → `[Inbound]`, `both_tracks` → both.
    pub tracks: Vec<Track>,
    /// `<Parameter name value/>` children, in document order; they become `start.customParameters`.
    pub custom_parameters: Vec<(String, String)>,
    /// `true` for `<Connect><Stream>`: the server may send audio back, and `dtmf` is forwarded.
    pub bidirectional: bool,
}

/// What the call tells its stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamCommand {
    /// The caller pressed a key (forwarded on bidirectional streams only).
    Dtmf(char),
    /// The stream ends (`<Stop><Stream>`, REST `Status=stopped`, a redirect or a hang-up): send `stop`,
    /// then close. Dropping the command sender does the same.
    Stop,
}

/// What the stream tells the call. The run is over when the report channel closes; its last report is
/// `Closed` if the WebSocket was ever open, `Failed` if it never was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamReport {
    /// The WebSocket handshake succeeded; `connected` and `start` follow.
    Connected,
    /// The server sent a `media` message carrying `bytes` bytes of µ-law audio.
    ServerMedia { bytes: usize },
    /// The server sent a `mark` with this name.
    ServerMark(String),
    /// The server sent `clear`.
    ServerClear,
    /// The WebSocket closed: by the server (`by_server`), or by us after `stop`.
    Closed { by_server: bool, reason: Option<String> },
    /// Something went wrong. Before `Connected` it is the end of the run; after it, it reports a message
    /// from the server that could not be understood, and the stream carries on.
    Failed(String),
}

// ---------------------------------------------------------------------------------------------------------
// Message builders: pure functions producing the exact JSON Twilio sends (reference §8). `serde_json` is
// built with `preserve_order`, so keys come out in the order written here, which is Twilio's.

/// `{"event":"connected","protocol":"Call","version":"1.0.0"}`
pub fn connected_message() -> String {
    json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string()
}

/// The `start` message, always sequence number 1.
pub fn start_message(start: &StreamStart) -> String {
    let stream_sid = start.stream_sid.to_string();
    let tracks: Vec<&str> = start.tracks.iter().map(|t| t.as_str()).collect();
    let mut custom_parameters = Map::new();
    for (name, value) in &start.custom_parameters {
        custom_parameters.insert(name.clone(), Value::String(value.clone()));
    }
    json!({
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": start.account_sid.to_string(),
            "streamSid": stream_sid,
            "callSid": start.call_sid.to_string(),
            "tracks": tracks,
            "customParameters": custom_parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": stream_sid,
    })
    .to_string()
}

/// A `media` message. `chunk` counts this track's frames from 1; `timestamp_ms` is the audio time since
/// the stream started.
pub fn media_message(
    stream_sid: &StreamSid,
    sequence: u64,
    track: Track,
    chunk: u64,
    timestamp_ms: u64,
    audio: &[u8],
) -> String {
    json!({
        "event": "media",
        "sequenceNumber": sequence.to_string(),
        "media": {
            "track": track.as_str(),
            "chunk": chunk.to_string(),
            "timestamp": timestamp_ms.to_string(),
            "payload": BASE64.encode(audio),
        },
        "streamSid": stream_sid.to_string(),
    })
    .to_string()
}

/// A `dtmf` message: the caller pressed `digit`.
pub fn dtmf_message(stream_sid: &StreamSid, sequence: u64, digit: char) -> String {
    json!({
        "event": "dtmf",
        "streamSid": stream_sid.to_string(),
        "sequenceNumber": sequence.to_string(),
        "dtmf": {"track": "inbound_track", "digit": digit.to_string()},
    })
    .to_string()
}

/// A `mark` message: the server's audio up to its mark `name` has played (or was cleared).
pub fn mark_message(stream_sid: &StreamSid, sequence: u64, name: &str) -> String {
    json!({
        "event": "mark",
        "sequenceNumber": sequence.to_string(),
        "streamSid": stream_sid.to_string(),
        "mark": {"name": name},
    })
    .to_string()
}

/// The `stop` message, sent before Twilio closes the socket.
pub fn stop_message(
    stream_sid: &StreamSid,
    sequence: u64,
    account_sid: &AccountSid,
    call_sid: &CallSid,
) -> String {
    json!({
        "event": "stop",
        "sequenceNumber": sequence.to_string(),
        "stop": {"accountSid": account_sid.to_string(), "callSid": call_sid.to_string()},
        "streamSid": stream_sid.to_string(),
    })
    .to_string()
}

/// A message from the server, as far as Twilio reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerMessage {
    /// Audio to play: the decoded µ-law bytes.
    Media(Vec<u8>),
    Mark(String),
    Clear,
}

/// Reads one text message from the server. An error says what was wrong with it.
pub fn parse_server_message(text: &str) -> Result<ServerMessage, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not json ({e})"))?;
    let event = value.get("event").and_then(Value::as_str).ok_or("no `event` string")?;
    match event {
        "media" => {
            let payload = value
                .pointer("/media/payload")
                .and_then(Value::as_str)
                .ok_or("media without a `media.payload` string")?;
            let audio = BASE64.decode(payload).map_err(|e| format!("media payload is not base64 ({e})"))?;
            Ok(ServerMessage::Media(audio))
        }
        "mark" => {
            let name = value
                .pointer("/mark/name")
                .and_then(Value::as_str)
                .ok_or("mark without a `mark.name` string")?;
            Ok(ServerMessage::Mark(name.to_owned()))
        }
        "clear" => Ok(ServerMessage::Clear),
        other => Err(format!("unknown event `{}`", other.chars().take(40).collect::<String>())),
    }
}

// ---------------------------------------------------------------------------------------------------------
// The sans-IO core.

/// The server's audio waiting to be played on a bidirectional stream, with its marks in order.
///
/// Twilio: media is buffered and played in order; a mark is sent back when the audio queued before it has
/// played, and `clear` empties the buffer and sends back every pending mark.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Playback {
    queue: VecDeque<Queued>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Queued {
    Audio(usize),
    Mark(String),
}

impl Playback {
    pub fn push_audio(&mut self, bytes: usize) {
        if bytes > 0 {
            self.queue.push_back(Queued::Audio(bytes));
        }
    }

    /// Queues a mark; returns it at once when nothing is waiting to be played before it.
    pub fn push_mark(&mut self, name: String) -> Option<String> {
        if self.queue.is_empty() {
            return Some(name);
        }
        self.queue.push_back(Queued::Mark(name));
        None
    }

    /// Plays `bytes` of audio; returns the marks reached, in order.
    pub fn play(&mut self, mut bytes: usize) -> Vec<String> {
        let mut reached = Vec::new();
        loop {
            match self.queue.front_mut() {
                Some(Queued::Mark(_)) => {
                    if let Some(Queued::Mark(name)) = self.queue.pop_front() {
                        reached.push(name);
                    }
                }
                Some(Queued::Audio(left)) if bytes > 0 => {
                    let played = bytes.min(*left);
                    *left -= played;
                    bytes -= played;
                    if *left == 0 {
                        self.queue.pop_front();
                    }
                }
                _ => return reached,
            }
        }
    }

    /// Drops all queued audio; returns every pending mark, in order.
    pub fn clear(&mut self) -> Vec<String> {
        self.queue
            .drain(..)
            .filter_map(|q| match q {
                Queued::Mark(name) => Some(name),
                Queued::Audio(_) => None,
            })
            .collect()
    }
}

/// The protocol state of one open stream: sequence numbers, per-track chunk counters and playback. Every
/// method returns the text messages to send, in order.
#[derive(Clone, Debug)]
pub struct Session {
    start: StreamStart,
    frame_ms: u64,
    next_sequence: u64,
    frames_sent: u64,
    playback: Playback,
}

/// What the shell should do after the server said something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaction {
    pub report: StreamReport,
    pub send: Vec<String>,
}

impl Session {
    pub fn new(start: StreamStart, frame_interval: Duration) -> Self {
        let frame_ms = u64::try_from(frame_interval.as_millis()).unwrap_or(u64::MAX).max(1);
        Session { start, frame_ms, next_sequence: 1, frames_sent: 0, playback: Playback::default() }
    }

    fn sequence(&mut self) -> u64 {
        let n = self.next_sequence;
        self.next_sequence += 1;
        n
    }

    /// `connected` then `start`.
    pub fn open(&mut self) -> Vec<String> {
        let start = start_message(&self.start);
        self.next_sequence = 2;
        vec![connected_message(), start]
    }

    /// One frame interval passed: a `media` frame of silence for every track, then the echoes of the marks
    /// whose audio has now played.
    pub fn tick(&mut self) -> Vec<String> {
        let bytes = self.frame_ms.saturating_mul(BYTES_PER_MS);
        let audio = vec![MULAW_SILENCE; usize::try_from(bytes).unwrap_or(160)];
        let chunk = self.frames_sent + 1;
        let timestamp_ms = self.frames_sent.saturating_mul(self.frame_ms);
        self.frames_sent += 1;
        let mut out = Vec::new();
        for track in self.start.tracks.clone() {
            let sequence = self.sequence();
            out.push(media_message(&self.start.stream_sid, sequence, track, chunk, timestamp_ms, &audio));
        }
        let reached = self.playback.play(audio.len());
        out.extend(reached.iter().map(|name| self.mark(name)));
        out
    }

    fn mark(&mut self, name: &str) -> String {
        let sequence = self.sequence();
        mark_message(&self.start.stream_sid, sequence, name)
    }

    /// The caller pressed `digit`. Twilio: `dtmf` is sent on bidirectional streams only.
    pub fn dtmf(&mut self, digit: char) -> Vec<String> {
        if !self.start.bidirectional {
            return Vec::new();
        }
        let sequence = self.sequence();
        vec![dtmf_message(&self.start.stream_sid, sequence, digit)]
    }

    /// The stream ends: `stop`.
    pub fn stop(&mut self) -> String {
        let sequence = self.sequence();
        stop_message(&self.start.stream_sid, sequence, &self.start.account_sid, &self.start.call_sid)
    }

    /// The server sent a text message. On a one-way (`<Start>`) stream, what the server sends is reported
    /// but not played.
    pub fn on_server_text(&mut self, text: &str) -> Reaction {
        let message = match parse_server_message(text) {
            Ok(message) => message,
            Err(why) => {
                let report =
                    StreamReport::Failed(format!("unreadable message from the stream server: {why}"));
                return Reaction { report, send: Vec::new() };
            }
        };
        let bidirectional = self.start.bidirectional;
        match message {
            ServerMessage::Media(audio) => {
                if bidirectional {
                    self.playback.push_audio(audio.len());
                }
                Reaction { report: StreamReport::ServerMedia { bytes: audio.len() }, send: Vec::new() }
            }
            ServerMessage::Mark(name) => {
                let echo = if bidirectional { self.playback.push_mark(name.clone()) } else { None };
                let send = echo.map(|n| self.mark(&n)).into_iter().collect();
                Reaction { report: StreamReport::ServerMark(name), send }
            }
            ServerMessage::Clear => {
                let pending = if bidirectional { self.playback.clear() } else { Vec::new() };
                let send = pending.iter().map(|n| self.mark(n)).collect();
                Reaction { report: StreamReport::ServerClear, send }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The async shell.

/// Runs one stream to its end: connects to `start.url`, speaks the protocol until a [`StreamCommand::Stop`]
/// (or the command sender is dropped) or until the server closes, and reports what happens on `reports`.
/// Never panics; every failure becomes a report.
pub async fn run(
    start: StreamStart,
    mut commands: mpsc::Receiver<StreamCommand>,
    reports: mpsc::Sender<StreamReport>,
    frame_interval: Duration,
) {
    let frame_interval = if frame_interval.is_zero() { DEFAULT_FRAME_INTERVAL } else { frame_interval };
    let report = |r: StreamReport| {
        let reports = reports.clone();
        async move {
            // Nobody listening is not a reason to stop streaming.
            let _ = reports.send(r).await;
        }
    };

    let url = start.url.clone();
    let mut ws =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(url.as_str())).await {
            Ok(Ok((ws, _response))) => ws,
            Ok(Err(e)) => return report(StreamReport::Failed(connect_error(&url, &e))).await,
            Err(_) => {
                let why =
                    format!("could not connect to stream url `{url}` within {}s", CONNECT_TIMEOUT.as_secs());
                return report(StreamReport::Failed(why)).await;
            }
        };
    report(StreamReport::Connected).await;

    let mut session = Session::new(start, frame_interval);
    for text in session.open() {
        if let Err(e) = ws.send(Message::text(text)).await {
            return report(closed_by_server(Some(format!("sending failed: {e}")))).await;
        }
    }

    let mut ticker = tokio::time::interval(frame_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    // Decide first, then act.
    enum Action {
        Send(Vec<String>),
        React(Reaction),
        Stop,
        ServerClosed(Option<String>),
    }
    loop {
        let action = tokio::select! {
            _ = ticker.tick() => Action::Send(session.tick()),
            command = commands.recv() => match command {
                Some(StreamCommand::Dtmf(digit)) => Action::Send(session.dtmf(digit)),
                Some(StreamCommand::Stop) | None => Action::Stop,
            },
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => Action::React(session.on_server_text(text.as_str())),
                Some(Ok(Message::Binary(_))) => Action::React(binary_frame()),
                Some(Ok(Message::Close(frame))) => Action::ServerClosed(close_reason(frame)),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Action::Send(Vec::new()),
                Some(Err(e)) => Action::ServerClosed(Some(format!("connection failed: {e}"))),
                None => Action::ServerClosed(Some("connection dropped without a close frame".into())),
            },
        };
        let send = match action {
            Action::Send(send) => send,
            Action::React(Reaction { report: r, send }) => {
                report(r).await;
                send
            }
            Action::Stop => {
                let stop = session.stop();
                // Twilio: `stop`, then close the socket.
                let _ = ws.send(Message::text(stop)).await;
                let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                let _ = ws.send(Message::Close(Some(frame))).await;
                // Wait for the server's close frame: then the handshake is done and the socket can go.
                let answered =
                    async { while !matches!(ws.next().await, Some(Ok(Message::Close(_))) | None) {} };
                let _ = tokio::time::timeout(CLOSE_GRACE, answered).await;
                return report(StreamReport::Closed { by_server: false, reason: None }).await;
            }
            Action::ServerClosed(reason) => {
                // Answer the close handshake. No `stop` after the server closed: **(UNCONFIRMED)**, the
                // reference only says the call moves on.
                let _ = ws.close(None).await;
                return report(closed_by_server(reason)).await;
            }
        };
        for text in send {
            if let Err(e) = ws.send(Message::text(text)).await {
                return report(closed_by_server(Some(format!("sending failed: {e}")))).await;
            }
        }
    }
}

fn binary_frame() -> Reaction {
    let why = "unreadable message from the stream server: a binary frame, expected json text";
    Reaction { report: StreamReport::Failed(why.into()), send: Vec::new() }
}

fn closed_by_server(reason: Option<String>) -> StreamReport {
    StreamReport::Closed { by_server: true, reason }
}

fn close_reason(frame: Option<CloseFrame>) -> Option<String> {
    let frame = frame?;
    if !frame.reason.is_empty() {
        Some(frame.reason.as_str().to_owned())
    } else if frame.code == CloseCode::Normal {
        None
    } else {
        Some(format!("close code {}", u16::from(frame.code)))
    }
}

fn connect_error(url: &str, e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::error::{Error, UrlError};
    match e {
        Error::Url(UrlError::TlsFeatureNotEnabled) => {
            format!(
                "could not connect to stream url `{url}`: this build has no tls for wss://, use a ws:// url"
            )
        }
        other => format!("could not connect to stream url `{url}`: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(bidirectional: bool) -> StreamStart {
        StreamStart {
            url: "ws://127.0.0.1:1/stream".into(),
            account_sid: AccountSid::from_u128(0xa),
            call_sid: CallSid::from_u128(0xc),
            stream_sid: StreamSid::from_u128(0x5),
            tracks: vec![Track::Inbound],
            custom_parameters: vec![("k".into(), "v".into()), ("lang".into(), "fr".into())],
            bidirectional,
        }
    }

    const AC: &str = "AC0000000000000000000000000000000a";
    const CA: &str = "CA0000000000000000000000000000000c";
    const MZ: &str = "MZ00000000000000000000000000000005";

    #[test]
    fn builds_connected_exactly() {
        assert_eq!(connected_message(), r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#);
    }

    #[test]
    fn builds_start_exactly() {
        assert_eq!(
            start_message(&start(true)),
            format!(
                r#"{{"event":"start","sequenceNumber":"1","start":{{"accountSid":"{AC}","streamSid":"{MZ}","callSid":"{CA}","tracks":["inbound"],"customParameters":{{"k":"v","lang":"fr"}},"mediaFormat":{{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}},"streamSid":"{MZ}"}}"#
            )
        );
    }

    #[test]
    fn builds_media_dtmf_mark_and_stop_exactly() {
        let mz = StreamSid::from_u128(5);
        assert_eq!(
            media_message(&mz, 3, Track::Inbound, 1, 5, &[0xFF, 0xFF, 0xFF]),
            format!(
                r#"{{"event":"media","sequenceNumber":"3","media":{{"track":"inbound","chunk":"1","timestamp":"5","payload":"////"}},"streamSid":"{MZ}"}}"#
            )
        );
        assert_eq!(
            dtmf_message(&mz, 5, '1'),
            format!(
                r#"{{"event":"dtmf","streamSid":"{MZ}","sequenceNumber":"5","dtmf":{{"track":"inbound_track","digit":"1"}}}}"#
            )
        );
        assert_eq!(
            mark_message(&mz, 4, "my label"),
            format!(
                r#"{{"event":"mark","sequenceNumber":"4","streamSid":"{MZ}","mark":{{"name":"my label"}}}}"#
            )
        );
        assert_eq!(
            stop_message(&mz, 5, &AccountSid::from_u128(0xa), &CallSid::from_u128(0xc)),
            format!(
                r#"{{"event":"stop","sequenceNumber":"5","stop":{{"accountSid":"{AC}","callSid":"{CA}"}},"streamSid":"{MZ}"}}"#
            )
        );
    }

    #[test]
    fn numbers_sequences_from_start_and_chunks_per_frame() {
        let mut s = Session::new(
            StreamStart { tracks: vec![Track::Inbound, Track::Outbound], ..start(true) },
            Duration::from_millis(20),
        );
        let open = s.open();
        assert_eq!(open.len(), 2);
        assert!(!open[0].contains("sequenceNumber"));
        assert!(open[1].contains(r#""sequenceNumber":"1""#));
        let first = s.tick();
        let second = s.tick();
        let fields = |m: &str| {
            let v: Value = serde_json::from_str(m).unwrap();
            (
                v["sequenceNumber"].as_str().unwrap().to_owned(),
                v["media"]["track"].as_str().unwrap().to_owned(),
                v["media"]["chunk"].as_str().unwrap().to_owned(),
                v["media"]["timestamp"].as_str().unwrap().to_owned(),
                BASE64.decode(v["media"]["payload"].as_str().unwrap()).unwrap(),
            )
        };
        let (seq, track, chunk, ts, audio) = fields(&first[0]);
        assert_eq!((seq.as_str(), track.as_str(), chunk.as_str(), ts.as_str()), ("2", "inbound", "1", "0"));
        assert_eq!(audio, vec![0xFF; 160]);
        let (seq, track, chunk, ts, _) = fields(&first[1]);
        assert_eq!((seq.as_str(), track.as_str(), chunk.as_str(), ts.as_str()), ("3", "outbound", "1", "0"));
        let (seq, _, chunk, ts, _) = fields(&second[0]);
        assert_eq!((seq.as_str(), chunk.as_str(), ts.as_str()), ("4", "2", "20"));
        assert!(
            s.dtmf('#')[0].contains(r##""sequenceNumber":"6","dtmf":{"track":"inbound_track","digit":"#"}"##)
        );
        assert!(s.stop().contains(r#""sequenceNumber":"7""#));
    }

    #[test]
    fn sends_dtmf_only_on_bidirectional_streams() {
        let mut s = Session::new(start(false), Duration::from_millis(20));
        s.open();
        assert!(s.dtmf('1').is_empty());
    }

    #[test]
    fn echoes_a_mark_once_the_audio_before_it_has_played() {
        let mut s = Session::new(start(true), Duration::from_millis(20));
        s.open();
        let media = format!(
            r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"{}"}}}}"#,
            BASE64.encode([0x7Fu8; 200])
        );
        assert_eq!(
            s.on_server_text(&media),
            Reaction { report: StreamReport::ServerMedia { bytes: 200 }, send: vec![] }
        );
        let mark = format!(r#"{{"event":"mark","streamSid":"{MZ}","mark":{{"name":"greeting"}}}}"#);
        assert_eq!(
            s.on_server_text(&mark),
            Reaction { report: StreamReport::ServerMark("greeting".into()), send: vec![] }
        );
        assert_eq!(s.tick().len(), 1, "160 of 200 bytes played: no echo yet");
        let out = s.tick();
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], mark_message(&StreamSid::from_u128(5), 4, "greeting"));
        // With nothing queued, a mark comes straight back.
        let now = s.on_server_text(&mark);
        assert_eq!(now.send, vec![mark_message(&StreamSid::from_u128(5), 5, "greeting")]);
    }

    #[test]
    fn clear_returns_pending_marks_and_drops_audio() {
        let mut s = Session::new(start(true), Duration::from_millis(20));
        s.open();
        let media = format!(
            r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"{}"}}}}"#,
            BASE64.encode([0u8; 1600])
        );
        s.on_server_text(&media);
        s.on_server_text(r#"{"event":"mark","mark":{"name":"a"}}"#);
        s.on_server_text(&media);
        s.on_server_text(r#"{"event":"mark","mark":{"name":"b"}}"#);
        let cleared = s.on_server_text(r#"{"event":"clear","streamSid":"x"}"#);
        assert_eq!(cleared.report, StreamReport::ServerClear);
        assert_eq!(
            cleared.send,
            vec![
                mark_message(&StreamSid::from_u128(5), 2, "a"),
                mark_message(&StreamSid::from_u128(5), 3, "b")
            ]
        );
        assert_eq!(s.tick().len(), 1, "nothing left to echo");
    }

    #[test]
    fn reports_garbage_without_stopping() {
        let mut s = Session::new(start(true), Duration::from_millis(20));
        for garbage in [
            "",
            "{",
            "[]",
            r#"{"event":1}"#,
            r#"{"event":"media"}"#,
            r#"{"event":"media","media":{"payload":"!!"}}"#,
            r#"{"event":"dance"}"#,
        ] {
            let r = s.on_server_text(garbage);
            assert!(
                matches!(&r.report, StreamReport::Failed(why) if why.starts_with("unreadable message")),
                "{garbage}: {r:?}"
            );
            assert!(r.send.is_empty());
        }
    }

    #[test]
    fn a_one_way_stream_reports_but_does_not_play_server_audio() {
        let mut s = Session::new(start(false), Duration::from_millis(20));
        s.open();
        let r = s.on_server_text(r#"{"event":"mark","mark":{"name":"m"}}"#);
        assert_eq!(r, Reaction { report: StreamReport::ServerMark("m".into()), send: vec![] });
    }

    #[test]
    fn playback_plays_in_order() {
        let mut p = Playback::default();
        assert_eq!(p.push_mark("now".into()), Some("now".into()));
        p.push_audio(100);
        assert_eq!(p.push_mark("a".into()), None);
        assert_eq!(p.push_mark("b".into()), None);
        p.push_audio(100);
        assert_eq!(p.push_mark("c".into()), None);
        assert_eq!(p.play(99), Vec::<String>::new());
        assert_eq!(p.play(1), vec!["a", "b"]);
        assert_eq!(p.play(500), vec!["c"]);
        assert_eq!(p, Playback::default());
    }
    // Over real sockets: a tiny tokio-tungstenite server on 127.0.0.1:0 plays the customer's stream server.

    use tokio::net::TcpListener;
    use tokio_tungstenite::{WebSocketStream, accept_async};

    type Server = WebSocketStream<tokio::net::TcpStream>;

    struct Harness {
        server: Server,
        commands: mpsc::Sender<StreamCommand>,
        reports: mpsc::Receiver<StreamReport>,
        client: tokio::task::JoinHandle<()>,
    }

    async fn connect(start: StreamStart, frame_interval: Duration) -> Harness {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/media", listener.local_addr().unwrap());
        let (commands, command_rx) = mpsc::channel(8);
        let (report_tx, reports) = mpsc::channel(256);
        let client = tokio::spawn(run(StreamStart { url, ..start }, command_rx, report_tx, frame_interval));
        let (tcp, _) = listener.accept().await.unwrap();
        let server = accept_async(tcp).await.unwrap();
        Harness { server, commands, reports, client }
    }

    async fn next_text(server: &mut Server) -> String {
        loop {
            match server.next().await.expect("the client closed early").expect("a websocket message") {
                Message::Text(text) => return text.as_str().to_owned(),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    async fn next_json(server: &mut Server) -> Value {
        serde_json::from_str(&next_text(server).await).unwrap()
    }

    async fn all_reports(mut reports: mpsc::Receiver<StreamReport>) -> Vec<StreamReport> {
        let mut all = Vec::new();
        while let Some(r) = reports.recv().await {
            all.push(r);
        }
        all
    }

    #[tokio::test]
    async fn streams_to_a_real_server_and_stops_on_command() {
        let mut h = connect(start(true), Duration::from_millis(5)).await;

        assert_eq!(
            next_text(&mut h.server).await,
            r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#
        );
        let start_msg = next_json(&mut h.server).await;
        assert_eq!(start_msg["event"], "start");
        assert_eq!(start_msg["sequenceNumber"], "1");
        assert_eq!(start_msg["streamSid"], MZ);
        assert_eq!(start_msg["start"]["accountSid"], AC);
        assert_eq!(start_msg["start"]["streamSid"], MZ);
        assert_eq!(start_msg["start"]["callSid"], CA);
        assert_eq!(start_msg["start"]["tracks"], json!(["inbound"]));
        assert_eq!(start_msg["start"]["customParameters"], json!({"k": "v", "lang": "fr"}));
        assert_eq!(
            start_msg["start"]["mediaFormat"],
            json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
        );

        let mut sequence = 1;
        for chunk in 1..=3u64 {
            let media = next_json(&mut h.server).await;
            sequence += 1;
            assert_eq!(media["event"], "media");
            assert_eq!(media["sequenceNumber"], sequence.to_string());
            assert_eq!(media["streamSid"], MZ);
            assert_eq!(media["media"]["track"], "inbound");
            assert_eq!(media["media"]["chunk"], chunk.to_string());
            assert_eq!(media["media"]["timestamp"], ((chunk - 1) * 5).to_string());
            assert_eq!(BASE64.decode(media["media"]["payload"].as_str().unwrap()).unwrap(), vec![0xFF; 40]);
        }

        h.commands.send(StreamCommand::Dtmf('7')).await.unwrap();
        let dtmf = loop {
            let m = next_json(&mut h.server).await;
            sequence += 1;
            assert_eq!(m["sequenceNumber"], sequence.to_string(), "sequence numbers go up by one: {m}");
            if m["event"] == "dtmf" {
                break m;
            }
            assert_eq!(m["event"], "media");
        };
        assert_eq!(dtmf["dtmf"], json!({"track": "inbound_track", "digit": "7"}));
        assert_eq!(dtmf["streamSid"], MZ);

        h.commands.send(StreamCommand::Stop).await.unwrap();
        let stop = loop {
            let m = next_json(&mut h.server).await;
            sequence += 1;
            assert_eq!(m["sequenceNumber"], sequence.to_string(), "sequence numbers go up by one: {m}");
            if m["event"] == "stop" {
                break m;
            }
        };
        assert_eq!(
            stop,
            json!({"event": "stop", "sequenceNumber": sequence.to_string(), "stop": {"accountSid": AC, "callSid": CA}, "streamSid": MZ})
        );
        match h.server.next().await {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Normal),
            other => panic!("expected a close frame after stop, got {other:?}"),
        }
        while h.server.next().await.is_some() {}

        h.client.await.unwrap();
        assert_eq!(
            all_reports(h.reports).await,
            [StreamReport::Connected, StreamReport::Closed { by_server: false, reason: None }]
        );
    }

    #[tokio::test]
    async fn reports_what_the_server_sends_and_when_it_closes_first() {
        let mut h = connect(start(true), Duration::from_millis(5)).await;
        next_text(&mut h.server).await;
        next_text(&mut h.server).await;
        let media = format!(
            r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"{}"}}}}"#,
            BASE64.encode([0x7Fu8; 80])
        );
        h.server.send(Message::text(media)).await.unwrap();
        h.server
            .send(Message::text(r#"{"event":"mark","streamSid":"x","mark":{"name":"said hello"}}"#))
            .await
            .unwrap();
        h.server.send(Message::text("this is not json")).await.unwrap();
        h.server.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
        // The echo of the mark arrives once the 80 bytes have played, after a media frame or two.
        let echo = loop {
            let m = next_json(&mut h.server).await;
            if m["event"] == "mark" {
                break m;
            }
        };
        assert_eq!(echo["mark"]["name"], "said hello");
        h.server.send(Message::text(r#"{"event":"clear","streamSid":"x"}"#)).await.unwrap();
        h.server.close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye".into() })).await.unwrap();
        while h.server.next().await.is_some() {}

        h.client.await.unwrap();
        let reports = all_reports(h.reports).await;
        assert_eq!(
            reports[..3],
            [
                StreamReport::Connected,
                StreamReport::ServerMedia { bytes: 80 },
                StreamReport::ServerMark("said hello".into())
            ]
        );
        assert!(
            matches!(&reports[3], StreamReport::Failed(why) if why.starts_with("unreadable message from the stream server: not json")),
            "{reports:?}"
        );
        assert!(
            matches!(&reports[4], StreamReport::Failed(why) if why.contains("a binary frame")),
            "{reports:?}"
        );
        assert_eq!(
            reports[5..],
            [StreamReport::ServerClear, StreamReport::Closed { by_server: true, reason: Some("bye".into()) }]
        );
    }

    #[tokio::test]
    async fn reports_a_server_that_drops_the_connection() {
        let mut h = connect(start(false), Duration::from_millis(5)).await;
        next_text(&mut h.server).await;
        drop(h.server);
        h.client.await.unwrap();
        let reports = all_reports(h.reports).await;
        assert_eq!(reports[0], StreamReport::Connected);
        assert!(
            matches!(reports.last(), Some(StreamReport::Closed { by_server: true, reason: Some(_) })),
            "{reports:?}"
        );
    }

    async fn run_alone(url: String) -> Vec<StreamReport> {
        let (_commands, command_rx) = mpsc::channel(1);
        let (report_tx, reports) = mpsc::channel(8);
        run(StreamStart { url, ..start(true) }, command_rx, report_tx, Duration::ZERO).await;
        all_reports(reports).await
    }

    #[tokio::test]
    async fn reports_a_refused_connection_and_a_bad_url() {
        let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        for url in
            [format!("ws://127.0.0.1:{port}/gone"), "not a url".to_owned(), "http://127.0.0.1/x".to_owned()]
        {
            let reports = run_alone(url.clone()).await;
            assert!(
                matches!(&reports[..], [StreamReport::Failed(why)] if why.starts_with("could not connect to stream url")),
                "{url}: {reports:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_wss_url_whose_server_does_not_speak_tls_fails_to_connect() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            // Accept, then hang up without a TLS handshake.
            let _ = listener.accept().await;
        });
        let reports = run_alone(format!("wss://{addr}/media")).await;
        assert!(
            matches!(&reports[..], [StreamReport::Failed(why)] if why.starts_with("could not connect to stream url")),
            "{reports:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_on_a_server_that_never_answers_the_handshake() {
        // The kernel accepts the TCP connection into the backlog; nobody ever answers the upgrade. With paused
        // time the runtime jumps straight to the timeout.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let reports = run_alone(format!("ws://{}/media", listener.local_addr().unwrap())).await;
        assert!(
            matches!(&reports[..], [StreamReport::Failed(why)] if why.contains("within 10s")),
            "{reports:?}"
        );
        drop(listener);
    }
}
