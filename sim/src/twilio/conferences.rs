//! Conferences: joining and leaving, the start and end rules, what each participant hears, and the
//! conference status callbacks.
//!
//! Twilio (reference `twilio.md` §7 `<Conference>`, §9): a conference starts once a participant with
//! `startConferenceOnEnter` joins one already there; before that, participants hear the `waitUrl`
//! (default hold music). It ends when the last participant leaves or one with `endConferenceOnExit`
//! leaves; the others drop out and their calls continue with the next verb or their `<Dial action>`.
//! A participant alone in a started conference hears silence: wait music plays only before the start.

use crate::ids::{AccountSid, CallSid, ConferenceSid};
use crate::journal::Entity;
use crate::transport::TargetResponse;
use crate::twilio::callbacks::Params;
use crate::twilio::engine::{Conference, Exec, FetchKind, Hook, Leave, Participant, Purpose};
use crate::twilio::model::{
    CallStatus, ConferenceEndReason, ConferenceEvent, ConferenceStatus, DialCallStatus, Method,
    ParticipantStatus,
};
use crate::twilio::twiml::{self, Dial, Verb};
use crate::world::{DeliveryError, World};

/// Twilio's default `waitUrl`.
pub const DEFAULT_WAIT_URL: &str = "http://twimlets.com/holdmusic?Bucket=com.twilio.music.classical";

/// How a participant enters a conference.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinSettings {
    pub label: Option<String>,
    pub muted: bool,
    pub start_on_enter: bool,
    pub end_on_exit: bool,
    /// `None`: Twilio's default hold music; `Some("")`: silence.
    pub wait_url: Option<String>,
    pub wait_method: Method,
    pub callback: Option<Hook>,
    pub events: Vec<ConferenceEvent>,
}

impl Default for JoinSettings {
    fn default() -> Self {
        JoinSettings {
            label: None,
            muted: false,
            start_on_enter: true,
            end_on_exit: false,
            wait_url: None,
            wait_method: Method::Post,
            callback: None,
            // Twilio: `ConferenceStatusCallbackEvent` defaults to `start end`.
            events: vec![ConferenceEvent::Start, ConferenceEvent::End],
        }
    }
}

impl World {
    /// The live (not completed) conference of `account` named `name`, created if there is none.
    pub(crate) fn conference_named(&mut self, account: AccountSid, name: &str) -> ConferenceSid {
        if let Some(c) = self.twilio.conferences.values().find(|c| {
            c.account == account && c.friendly_name == name && c.status != ConferenceStatus::Completed
        }) {
            return c.sid;
        }
        let sid = self.mint.conference();
        self.twilio.conferences.insert(
            sid,
            Conference {
                sid,
                account,
                friendly_name: name.to_owned(),
                status: ConferenceStatus::Init,
                created_at: self.now,
                updated_at: self.now,
                participants: Default::default(),
                callback: None,
                events: Vec::new(),
                callback_seq: 0,
                ended_reason: None,
                call_ending: None,
            },
        );
        self.transition(Entity::Conference(sid), "none", "init", Some(&format!("\"{name}\"")));
        sid
    }

    /// `<Dial><Conference>`: the leg joins the named conference.
    pub(crate) fn dial_conference(&mut self, call: CallSid, dial: Dial, conference: twiml::Conference) {
        let Some(account) = self.leg(call).map(|l| l.account) else { return };
        let sid = self.conference_named(account, &conference.name);
        let settings = JoinSettings {
            label: conference.participant_label.clone(),
            muted: conference.muted,
            start_on_enter: conference.start_conference_on_enter,
            end_on_exit: conference.end_conference_on_exit,
            wait_url: match &conference.wait_url {
                twiml::WaitUrl::HoldMusic => None,
                twiml::WaitUrl::Silence => Some(String::new()),
                twiml::WaitUrl::Url(u) => Some(self.resolve(call, u)),
            },
            wait_method: conference.wait_method,
            callback: conference
                .status_callback
                .as_ref()
                .map(|u| Hook { url: self.resolve(call, u), method: conference.status_callback_method }),
            events: conference.status_callback_event.clone(),
        };
        if let Some(leg) = self.leg_mut(call) {
            leg.exec = Exec::Conferencing { dial: Box::new(dial), conference: sid };
        }
        self.join(sid, call, settings);
    }

    /// Adds a live leg to a conference.
    pub(crate) fn join(&mut self, sid: ConferenceSid, call: CallSid, settings: JoinSettings) {
        let now = self.now;
        let Some(conf) = self.twilio.conferences.get_mut(&sid) else { return };
        // Twilio: "Only the value set by the first participant to join the conference is used".
        if conf.callback.is_none()
            && conf.participants.is_empty()
            && let Some(hook) = settings.callback.clone()
        {
            conf.callback = Some(hook);
            conf.events = settings.events.clone();
        }
        let participant = conf.participants.entry(call).or_insert_with(|| Participant {
            call,
            label: None,
            muted: false,
            hold: false,
            hold_url: None,
            start_on_enter: true,
            end_on_exit: false,
            beep_on_exit: true,
            wait_url: None,
            wait_method: Method::Post,
            status: ParticipantStatus::Queued,
            created_at: now,
            updated_at: now,
        });
        participant.label = settings.label.or(participant.label.take());
        participant.muted = settings.muted;
        participant.start_on_enter = settings.start_on_enter;
        participant.end_on_exit = settings.end_on_exit;
        participant.wait_url = settings.wait_url;
        participant.wait_method = settings.wait_method;
        participant.status = ParticipantStatus::Connected;
        participant.updated_at = now;
        self.journal
            .record(self.now, crate::journal::Event::Participant { conference: sid, call, joined: true });
        self.conference_callback(sid, "participant-join", ConferenceEvent::Join, Some(call), Vec::new());
        self.maybe_start(sid);
        self.refresh_audio(sid);
    }

    fn maybe_start(&mut self, sid: ConferenceSid) {
        let needed = self.defaults.conference_start_participants.max(1);
        let Some(conf) = self.twilio.conferences.get_mut(&sid) else { return };
        let joined: Vec<&Participant> =
            conf.participants.values().filter(|p| p.status == ParticipantStatus::Connected).collect();
        if conf.status == ConferenceStatus::Init
            && joined.len() >= needed
            && joined.iter().any(|p| p.start_on_enter)
        {
            conf.status = ConferenceStatus::InProgress;
            conf.updated_at = self.now;
            self.transition(Entity::Conference(sid), "init", "in-progress", None);
            self.conference_callback(sid, "conference-start", ConferenceEvent::Start, None, Vec::new());
        }
    }

    /// Journals what each participant hears now.
    pub(crate) fn refresh_audio(&mut self, sid: ConferenceSid) {
        let Some(conf) = self.twilio.conferences.get(&sid) else { return };
        let started = conf.status == ConferenceStatus::InProgress;
        let connected: Vec<CallSid> = conf
            .participants
            .values()
            .filter(|p| p.status == ParticipantStatus::Connected)
            .map(|p| p.call)
            .collect();
        let mut plans = Vec::new();
        for p in conf.participants.values().filter(|p| p.status == ParticipantStatus::Connected) {
            let others: Vec<String> =
                connected.iter().filter(|c| **c != p.call).map(ToString::to_string).collect();
            let hears = if p.hold {
                match &p.hold_url {
                    Some(h) if !h.url.is_empty() => HearsPlan::Fetch(h.clone(), format!("hold {}", h.url)),
                    Some(_) => HearsPlan::Say("silence (on hold)".to_owned()),
                    None => HearsPlan::Say(format!("hold-music {DEFAULT_WAIT_URL}")),
                }
            } else if !started {
                match &p.wait_url {
                    None => HearsPlan::Say(format!("wait-music {DEFAULT_WAIT_URL}")),
                    Some(u) if u.is_empty() => HearsPlan::Say("silence (waiting)".to_owned()),
                    Some(u) => {
                        HearsPlan::Fetch(Hook { url: u.clone(), method: p.wait_method }, format!("wait {u}"))
                    }
                }
            } else if others.is_empty() {
                HearsPlan::Say(format!("silence (alone in conference {sid})"))
            } else {
                HearsPlan::Say(format!("conference {sid} with {}", others.join(", ")))
            };
            plans.push((p.call, hears));
        }
        for (call, plan) in plans {
            match plan {
                HearsPlan::Say(text) => self.set_hears(call, text),
                HearsPlan::Fetch(hook, label) => {
                    let already = self.leg(call).is_some_and(|l| l.hears.starts_with(&label));
                    if !already {
                        self.set_hears(call, label);
                        self.fetch_hold_audio(call, hook);
                    }
                }
            }
        }
    }

    /// Requests a `waitUrl`/`holdUrl` document; its verbs decide what the participant hears.
    fn fetch_hold_audio(&mut self, call: CallSid, hook: Hook) {
        let Some(leg) = self.leg(call) else { return };
        let (account, generation) = (leg.account, leg.generation);
        let mut params = self.voice_params(call);
        if let Some(conf) = self.conference_of(call) {
            params.push(("ConferenceSid".into(), conf.to_string()));
        }
        let url = hook.url.clone();
        let overrides = self.twilio_retries(&hook.url);
        let request = self.signed_request(account, &hook, params);
        self.deliver_retried(request, Purpose::HoldAudio { call, generation, url }, overrides);
    }

    pub(crate) fn on_hold_audio(
        &mut self,
        call: CallSid,
        url: String,
        outcome: Result<TargetResponse, DeliveryError>,
    ) {
        let heard = match outcome {
            Ok(r) if (200..300).contains(&r.status) => {
                let is_audio = r.content_type.as_deref().is_some_and(|t| t.starts_with("audio/"));
                if is_audio {
                    format!("wait audio {url}")
                } else {
                    match twiml::parse(&String::from_utf8_lossy(&r.body)) {
                        Ok(doc) => {
                            let parts: Vec<String> = doc
                                .verbs
                                .iter()
                                .filter_map(|v| match v {
                                    Verb::Say(s) => Some(format!("say \"{}\"", s.text)),
                                    Verb::Play(p) => {
                                        Some(format!("play {}", p.url.clone().unwrap_or_default()))
                                    }
                                    Verb::Pause(_) => Some("silence".to_owned()),
                                    Verb::Redirect(r) => Some(format!("redirect {}", r.url)),
                                    _ => None,
                                })
                                .collect();
                            if parts.is_empty() {
                                "silence (empty wait document)".to_owned()
                            } else {
                                format!("wait {}", parts.join(", "))
                            }
                        }
                        Err(e) => {
                            self.notify(Some(call), e.code, format!("wait document from {url}: {e}"));
                            "silence (wait document failed)".to_owned()
                        }
                    }
                }
            }
            Ok(r) => {
                self.notify(Some(call), 11200, format!("{url} answered HTTP {}", r.status));
                "silence (wait document failed)".to_owned()
            }
            Err(e) => {
                self.notify(Some(call), 11205, format!("{url}: {e:?}"));
                "silence (wait document failed)".to_owned()
            }
        };
        self.set_hears(call, heard);
    }

    /// The conference a leg is currently in.
    pub fn conference_of(&self, call: CallSid) -> Option<ConferenceSid> {
        self.twilio
            .conferences
            .values()
            .find(|c| {
                c.status != ConferenceStatus::Completed
                    && c.participants.get(&call).is_some_and(|p| p.status == ParticipantStatus::Connected)
            })
            .map(|c| c.sid)
    }

    /// A participant leaves (hung up, redirected, or kicked); the end rules apply.
    pub(crate) fn leave_conference(&mut self, sid: ConferenceSid, call: CallSid, how: Leave) {
        let Some(conf) = self.twilio.conferences.get_mut(&sid) else { return };
        let Some(p) = conf.participants.get(&call) else { return };
        if p.status != ParticipantStatus::Connected {
            conf.participants.shift_remove(&call);
            return;
        }
        self.journal
            .record(self.now, crate::journal::Event::Participant { conference: sid, call, joined: false });
        let reason = match how {
            Leave::Left => "participant-left",
            Leave::Kicked => "participant-kicked",
        };
        // While the participant is still listed, so the callback carries its Hold, Muted, … as every
        // participant event does (reference §7 "Participant events add").
        self.conference_callback(
            sid,
            "participant-leave",
            ConferenceEvent::Leave,
            Some(call),
            vec![("ReasonParticipantLeft".into(), reason.into())],
        );
        let Some(conf) = self.twilio.conferences.get_mut(&sid) else { return };
        let Some(p) = conf.participants.shift_remove(&call) else { return };
        let started = conf.status == ConferenceStatus::InProgress;
        let remaining =
            conf.participants.values().filter(|p| p.status == ParticipantStatus::Connected).count();
        let end = if p.end_on_exit && started {
            Some(match how {
                Leave::Left => ConferenceEndReason::EndOnExitLeft,
                Leave::Kicked => ConferenceEndReason::EndOnExitKicked,
            })
        } else if remaining == 0 {
            Some(match how {
                Leave::Left => ConferenceEndReason::LastLeft,
                Leave::Kicked => ConferenceEndReason::LastKicked,
            })
        } else {
            None
        };
        match end {
            Some(reason) => self.end_conference(sid, reason, Some(call)),
            None => self.refresh_audio(sid),
        }
    }

    /// Ends a conference; every remaining participant drops out and goes on with its TwiML.
    pub(crate) fn end_conference(
        &mut self,
        sid: ConferenceSid,
        reason: ConferenceEndReason,
        by: Option<CallSid>,
    ) {
        let Some(conf) = self.twilio.conferences.get_mut(&sid) else { return };
        if conf.status == ConferenceStatus::Completed {
            return;
        }
        let before = conf.status;
        conf.status = ConferenceStatus::Completed;
        conf.ended_reason = Some(reason);
        conf.call_ending = by;
        conf.updated_at = self.now;
        let remaining: Vec<CallSid> = conf.participants.keys().copied().collect();
        conf.participants.clear();
        self.transition(Entity::Conference(sid), before.as_str(), "completed", Some(reason.as_str()));
        let mut extra: Params = vec![
            ("ReasonConferenceEnded".into(), reason.to_string()),
            ("Reason".into(), reason_text(reason).into()),
        ];
        if let Some(by) = by {
            extra.push(("CallSidEndingConference".into(), by.to_string()));
        }
        self.conference_callback(sid, "conference-end", ConferenceEvent::End, None, extra);
        for call in remaining {
            self.dropped_from_conference(call, sid);
        }
    }

    /// A leg that was in a conference that ended (or that kicked it) continues.
    pub(crate) fn dropped_from_conference(&mut self, call: CallSid, sid: ConferenceSid) {
        let Some(leg) = self.leg_mut(call) else { return };
        match std::mem::replace(&mut leg.exec, Exec::Idle) {
            Exec::Conferencing { dial, conference } if conference == sid => {
                self.bump_generation(call);
                // Twilio: after a conference, <Dial action> gets DialCallStatus=completed (no DialCallSid).
                match &dial.action {
                    Some(action) => {
                        let url = self.resolve(call, action);
                        let extra =
                            vec![("DialCallStatus".to_owned(), DialCallStatus::Completed.to_string())];
                        self.fetch_twiml(call, Hook { url, method: dial.method }, FetchKind::Action, extra);
                    }
                    None => self.run_next(call),
                }
            }
            Exec::Participant(conference) if conference == sid => {
                self.end_call(call, CallStatus::Completed, "the conference ended");
            }
            other => {
                leg.exec = other;
            }
        }
    }

    /// A REST-created participant's leg answered: it joins.
    pub(crate) fn participant_answered(&mut self, sid: ConferenceSid, call: CallSid, settings: JoinSettings) {
        let live = self.twilio.conferences.get(&sid).is_some_and(|c| c.status != ConferenceStatus::Completed);
        if !live {
            self.end_call(call, CallStatus::Completed, "the conference is over");
            return;
        }
        if !self.twilio.conferences.get(&sid).is_some_and(|c| c.participants.contains_key(&call)) {
            self.end_call(call, CallStatus::Completed, "no longer a participant");
            return;
        }
        if let Some(leg) = self.leg_mut(call) {
            leg.exec = Exec::Participant(sid);
        }
        self.join(sid, call, settings);
    }

    /// Sends a conference status callback if the conference subscribed to `event`.
    pub(crate) fn conference_callback(
        &mut self,
        sid: ConferenceSid,
        name: &str,
        event: ConferenceEvent,
        call: Option<CallSid>,
        extra: Params,
    ) {
        let Some(conf) = self.twilio.conferences.get_mut(&sid) else { return };
        let Some(hook) = conf.callback.clone() else { return };
        if !conf.events.contains(&event) {
            return;
        }
        let sequence = conf.callback_seq;
        conf.callback_seq += 1;
        let mut params: Params = vec![
            ("AccountSid".into(), conf.account.to_string()),
            ("ConferenceSid".into(), sid.to_string()),
            ("FriendlyName".into(), conf.friendly_name.clone()),
            ("SequenceNumber".into(), sequence.to_string()),
            ("StatusCallbackEvent".into(), name.to_owned()),
            ("Timestamp".into(), self.epoch.rfc2822(self.now)),
        ];
        let account = conf.account;
        if let Some(call) = call {
            let p = conf.participants.get(&call).cloned();
            params.push(("CallSid".into(), call.to_string()));
            if let Some(p) = p {
                params.push(("Coaching".into(), "false".into()));
                params.push(("EndConferenceOnExit".into(), p.end_on_exit.to_string()));
                params.push(("Hold".into(), p.hold.to_string()));
                params.push(("Muted".into(), p.muted.to_string()));
                params.push(("StartConferenceOnEnter".into(), p.start_on_enter.to_string()));
                if let Some(label) = p.label {
                    params.push(("ParticipantLabel".into(), label));
                }
            }
        }
        params.extend(extra);
        let overrides = self.twilio_retries(&hook.url);
        let request = self.signed_request(account, &hook, params);
        self.deliver_retried(
            request,
            Purpose::Callback { call, what: "conference status callback" },
            overrides,
        );
    }

    /// Sets a participant's hold state (REST `Hold`), firing `participant-hold`/`-unhold`.
    pub(crate) fn set_hold(&mut self, sid: ConferenceSid, call: CallSid, hold: bool, hold_url: Option<Hook>) {
        let now = self.now;
        let Some(p) = self.twilio.conferences.get_mut(&sid).and_then(|c| c.participants.get_mut(&call))
        else {
            return;
        };
        let changed = p.hold != hold;
        p.hold = hold;
        if hold_url.is_some() {
            p.hold_url = hold_url;
        }
        p.updated_at = now;
        if changed {
            let name = if hold { "participant-hold" } else { "participant-unhold" };
            self.conference_callback(sid, name, ConferenceEvent::Hold, Some(call), Vec::new());
        }
        self.refresh_audio(sid);
    }

    pub(crate) fn set_muted(&mut self, sid: ConferenceSid, call: CallSid, muted: bool) {
        let now = self.now;
        let Some(p) = self.twilio.conferences.get_mut(&sid).and_then(|c| c.participants.get_mut(&call))
        else {
            return;
        };
        let changed = p.muted != muted;
        p.muted = muted;
        p.updated_at = now;
        if changed {
            let name = if muted { "participant-mute" } else { "participant-unmute" };
            self.conference_callback(sid, name, ConferenceEvent::Mute, Some(call), Vec::new());
        }
    }

    /// An `AnnounceUrl` plays to the conference or a participant; Twilio reports `announcement-end`.
    pub(crate) fn announce(&mut self, sid: ConferenceSid, to: Option<CallSid>, url: &str) {
        let targets: Vec<CallSid> = match to {
            Some(call) => vec![call],
            None => self
                .twilio
                .conferences
                .get(&sid)
                .map(|c| c.participants.keys().copied().collect())
                .unwrap_or_default(),
        };
        for call in &targets {
            self.hear(*call, format!("announcement {url}"));
        }
        self.conference_callback(
            sid,
            "announcement-end",
            ConferenceEvent::Announcement,
            to,
            vec![("AnnounceUrl".into(), url.to_owned())],
        );
    }
}

enum HearsPlan {
    Say(String),
    Fetch(Hook, String),
}

fn reason_text(reason: ConferenceEndReason) -> &'static str {
    match reason {
        ConferenceEndReason::EndedViaApi => "Conference ended via API",
        ConferenceEndReason::EndOnExitLeft => "Participant with endConferenceOnExit left the conference",
        ConferenceEndReason::EndOnExitKicked => {
            "Participant with endConferenceOnExit was kicked from the conference"
        }
        ConferenceEndReason::LastKicked => "Last participant was kicked from the conference",
        ConferenceEndReason::LastLeft => "Last participant left the conference",
    }
}
