//! The Conferences and Participants resources: list, fetch and update conferences; add, update, list and
//! remove participants.
//!
//! Spec notes followed (reference `twilio.md` §2.4–2.6, §9): no REST call creates a conference except
//! CreateParticipant, whose `{ConferenceSid}` may be a friendly name; a participant path's `{CallSid}`
//! may be its label; only live participants are listed; `Hold` plays `HoldUrl` (GET by default).

use crate::ids::{AccountSid, CallSid, ConferenceSid};
use crate::time::SimDuration;
use crate::twilio::calls::hook;
use crate::twilio::conferences::JoinSettings;
use crate::twilio::engine::{Amd, Hook, Leave, Leg, Participant, Remote};
use crate::twilio::errors::TwilioError;
use crate::twilio::model::{
    AmdMode, CallEvent, ConferenceEndReason, ConferenceEvent, ConferenceStatus, Direction, Method,
    ParticipantStatus,
};
use crate::twilio::wire::{
    self, ConferenceResource, Endpoint, FormParams, ListPage, PageRequest, ParticipantResource,
};
use crate::world::World;

impl World {
    fn owned_conference(&self, account: AccountSid, sid: &str) -> Result<ConferenceSid, TwilioError> {
        sid.parse::<ConferenceSid>()
            .ok()
            .filter(|s| self.twilio.conferences.get(s).is_some_and(|c| c.account == account))
            .ok_or_else(|| {
                TwilioError::not_found(&format!(
                    "{}/{sid}.json",
                    wire::conferences_path(account).trim_end_matches(".json")
                ))
            })
    }

    pub fn fetch_conference(
        &self,
        account: AccountSid,
        sid: &str,
    ) -> Result<ConferenceResource, TwilioError> {
        let sid = self.owned_conference(account, sid)?;
        Ok(self.conference_resource(sid).expect("conference exists"))
    }

    /// `GET /Conferences.json` with `FriendlyName`, `Status` and date filters, most recent first.
    pub fn list_conferences(
        &self,
        account: AccountSid,
        query: &FormParams,
    ) -> Result<ListPage<ConferenceResource>, TwilioError> {
        let paging = PageRequest::from_params(query)?;
        let status = match query.get("Status") {
            Some(s) => Some(
                s.parse::<ConferenceStatus>().map_err(|()| TwilioError::invalid_parameter("Status", s))?,
            ),
            None => None,
        };
        let records = self
            .twilio
            .conferences
            .values()
            .rev()
            .filter(|c| c.account == account)
            .filter(|c| query.get("FriendlyName").is_none_or(|n| c.friendly_name == n))
            .filter(|c| status.is_none_or(|s| c.status == s))
            .filter(|c| query.get("DateCreated").is_none_or(|d| self.epoch.date(c.created_at) == d))
            .filter_map(|c| self.conference_resource(c.sid))
            .collect();
        Ok(wire::paginate(records, &wire::conferences_path(account), &wire::filters_query(query), &paging))
    }

    /// `POST /Conferences/{Sid}.json`: `Status=completed` ends it; `AnnounceUrl` plays to everyone.
    pub fn update_conference(
        &mut self,
        account: AccountSid,
        sid: &str,
        form: &FormParams,
    ) -> Result<ConferenceResource, TwilioError> {
        let sid = self.owned_conference(account, sid)?;
        let announce = form.get_url("AnnounceUrl")?.map(str::to_owned);
        match form.get("Status") {
            None => {}
            Some("completed") => self.end_conference(sid, ConferenceEndReason::EndedViaApi, None),
            Some(other) => return Err(TwilioError::invalid_parameter("Status", other)),
        }
        if let Some(url) = announce {
            self.announce(sid, None, &url);
        }
        Ok(self.conference_resource(sid).expect("conference exists"))
    }

    pub fn conference_resource(&self, sid: ConferenceSid) -> Option<ConferenceResource> {
        let c = self.twilio.conferences.get(&sid)?;
        let mut r = ConferenceResource::new(c.account, sid, &c.friendly_name, c.status);
        r.date_created = Some(self.epoch.rfc2822(c.created_at));
        r.date_updated = Some(self.epoch.rfc2822(c.updated_at));
        r.reason_conference_ended = c.ended_reason;
        r.call_sid_ending_conference = c.call_ending;
        Some(r)
    }

    /// `POST /Conferences/{ConferenceSid}/Participants.json`: dials `To` and joins it when answered.
    pub fn create_participant(
        &mut self,
        account: AccountSid,
        conference: &str,
        form: &FormParams,
    ) -> Result<ParticipantResource, TwilioError> {
        let to = form.get("To").filter(|s| !s.is_empty()).ok_or_else(TwilioError::missing_to)?;
        let from = form.get("From").filter(|s| !s.is_empty()).ok_or_else(TwilioError::missing_from)?;
        let to_endpoint = Endpoint::parse(to).ok_or_else(|| TwilioError::invalid_to(to))?;
        Endpoint::parse(from).ok_or_else(|| TwilioError::invalid_from(from))?;
        let sid = match conference.parse::<ConferenceSid>() {
            Ok(sid) => {
                let c = self
                    .twilio
                    .conferences
                    .get(&sid)
                    .filter(|c| c.account == account)
                    .ok_or_else(TwilioError::conference_not_recognized)?;
                if c.status == ConferenceStatus::Completed {
                    return Err(TwilioError::conference_not_recognized());
                }
                sid
            }
            Err(_) if !conference.is_empty() && conference.chars().count() <= 128 => {
                self.conference_named(account, conference)
            }
            Err(_) => return Err(TwilioError::conference_not_recognized()),
        };
        let bool_param = |name: &str, default: bool| form.get_bool(name).map(|b| b.unwrap_or(default));
        let mut events = form.get_all_enum::<ConferenceEvent>("ConferenceStatusCallbackEvent")?;
        if events.is_empty() {
            events = vec![ConferenceEvent::Start, ConferenceEvent::End];
        }
        let settings = JoinSettings {
            label: form.get("Label").map(str::to_owned),
            muted: bool_param("Muted", false)?,
            start_on_enter: bool_param("StartConferenceOnEnter", true)?,
            end_on_exit: bool_param("EndConferenceOnExit", false)?,
            wait_url: match form.get("WaitUrl") {
                None => None,
                Some("") => Some(String::new()),
                Some(_) => form.get_url("WaitUrl")?.map(str::to_owned),
            },
            wait_method: form.get_enum::<Method>("WaitMethod")?.unwrap_or(Method::Post),
            callback: hook(form, "ConferenceStatusCallback", "ConferenceStatusCallbackMethod")?,
            events,
        };
        let timeout = form.get_u32_in("Timeout", 5..=600)?.unwrap_or(60);
        let mut call_events = form.get_all_enum::<CallEvent>("StatusCallbackEvent")?;
        if call_events.is_empty() {
            call_events.push(CallEvent::Completed);
        }
        let amd = match form.get_enum::<AmdMode>("MachineDetection")? {
            Some(mode) => Some(Amd {
                mode,
                timeout: SimDuration::from_secs(u64::from(
                    form.get_u32_in("MachineDetectionTimeout", 3..=59)?.unwrap_or(30),
                )),
                callback: hook(form, "AmdStatusCallback", "AmdStatusCallbackMethod")?,
                blocking: !self.defaults.participant_joins_before_amd,
            }),
            None => None,
        };
        let call = self.mint.call();
        let mut leg = Leg::new(
            call,
            account,
            Direction::OutboundApi,
            from.to_owned(),
            to_endpoint.to_string(),
            self.now,
        );
        leg.timeout = SimDuration::from_secs(u64::from(timeout));
        leg.status_callback = hook(form, "StatusCallback", "StatusCallbackMethod")?;
        leg.status_events = call_events;
        leg.amd = amd;
        leg.remote = Remote::Phone(self.phone_behaviour(&to_endpoint.to_string()));
        let now = self.now;
        if let Some(c) = self.twilio.conferences.get_mut(&sid) {
            c.participants.insert(
                call,
                Participant {
                    call,
                    label: settings.label.clone(),
                    muted: settings.muted,
                    hold: false,
                    hold_url: None,
                    start_on_enter: settings.start_on_enter,
                    end_on_exit: settings.end_on_exit,
                    beep_on_exit: true,
                    wait_url: settings.wait_url.clone(),
                    wait_method: settings.wait_method,
                    status: ParticipantStatus::Queued,
                    created_at: now,
                    updated_at: now,
                },
            );
            if c.callback.is_none() && c.participants.len() == 1 {
                c.callback = settings.callback.clone();
                c.events = settings.events.clone();
            }
        }
        self.dial_participant(leg, settings, sid);
        let mut r = self.participant_resource(sid, call).expect("participant was just added");
        r.queue_time = Some("0".to_owned());
        Ok(r)
    }

    fn participant_call(
        &self,
        account: AccountSid,
        conference: &str,
        call: &str,
    ) -> Result<(ConferenceSid, CallSid), TwilioError> {
        let sid = self.owned_conference(account, conference)?;
        let c = &self.twilio.conferences[&sid];
        let found = match call.parse::<CallSid>() {
            Ok(call) => c.participants.get(&call).map(|p| p.call),
            Err(_) => c.participants.values().find(|p| p.label.as_deref() == Some(call)).map(|p| p.call),
        };
        found.map(|call| (sid, call)).ok_or_else(|| {
            TwilioError::not_found(&format!(
                "{}/{call}.json",
                wire::participants_path(account, sid).trim_end_matches(".json")
            ))
        })
    }

    pub fn fetch_participant(
        &self,
        account: AccountSid,
        conference: &str,
        call: &str,
    ) -> Result<ParticipantResource, TwilioError> {
        let (sid, call) = self.participant_call(account, conference, call)?;
        Ok(self.participant_resource(sid, call).expect("participant exists"))
    }

    /// `GET …/Participants.json`, filtered by `Muted`, `Hold`, `Coaching`.
    pub fn list_participants(
        &self,
        account: AccountSid,
        conference: &str,
        query: &FormParams,
    ) -> Result<ListPage<ParticipantResource>, TwilioError> {
        let sid = self.owned_conference(account, conference)?;
        let paging = PageRequest::from_params(query)?;
        let muted = query.get_bool("Muted")?;
        let hold = query.get_bool("Hold")?;
        let coaching = query.get_bool("Coaching")?;
        let records = self.twilio.conferences[&sid]
            .participants
            .values()
            .filter(|p| muted.is_none_or(|m| p.muted == m))
            .filter(|p| hold.is_none_or(|h| p.hold == h))
            .filter(|_| coaching.is_none_or(|c| !c))
            .filter_map(|p| self.participant_resource(sid, p.call))
            .collect();
        Ok(wire::paginate(
            records,
            &wire::participants_path(account, sid),
            &wire::filters_query(query),
            &paging,
        ))
    }

    /// `POST …/Participants/{CallSid}.json`: `Hold`, `HoldUrl`, `Muted`, `AnnounceUrl`,
    /// `EndConferenceOnExit`, `WaitUrl`.
    pub fn update_participant(
        &mut self,
        account: AccountSid,
        conference: &str,
        call: &str,
        form: &FormParams,
    ) -> Result<ParticipantResource, TwilioError> {
        let (sid, call) = self.participant_call(account, conference, call)?;
        // Spec: for `Muted`, "Anything value other than `true` or `false` is interpreted as `false`".
        let muted = form.get("Muted").map(|_| form.get_bool_lenient("Muted").unwrap_or(false));
        let hold = form.get_bool("Hold")?;
        let hold_url = match form.get("HoldUrl") {
            None => None,
            Some("") => Some(Hook { url: String::new(), method: Method::Get }),
            // Spec: `HoldMethod` defaults to GET.
            Some(_) => form.get_url("HoldUrl")?.map(|u| Hook {
                url: u.to_owned(),
                method: form.get_enum::<Method>("HoldMethod").ok().flatten().unwrap_or(Method::Get),
            }),
        };
        let announce = form.get_url("AnnounceUrl")?.map(str::to_owned);
        let end_on_exit = form.get_bool("EndConferenceOnExit")?;
        let wait_url = form.get_url("WaitUrl")?.map(str::to_owned);
        if let Some(p) = self.twilio.conferences.get_mut(&sid).and_then(|c| c.participants.get_mut(&call)) {
            if let Some(e) = end_on_exit {
                p.end_on_exit = e;
            }
            if wait_url.is_some() {
                p.wait_url = wait_url;
            }
        }
        if let Some(m) = muted {
            self.set_muted(sid, call, m);
        }
        match hold {
            Some(h) => self.set_hold(sid, call, h, hold_url),
            None if hold_url.is_some() => {
                if let Some(p) =
                    self.twilio.conferences.get_mut(&sid).and_then(|c| c.participants.get_mut(&call))
                {
                    p.hold_url = hold_url;
                }
            }
            None => {}
        }
        if let Some(url) = announce {
            self.announce(sid, Some(call), &url);
        }
        self.conference_callback(sid, "participant-modify", ConferenceEvent::Modify, Some(call), Vec::new());
        Ok(self.participant_resource(sid, call).expect("participant exists"))
    }

    /// `DELETE …/Participants/{CallSid}.json`: kicks the participant; its call goes on with its TwiML.
    pub fn delete_participant(
        &mut self,
        account: AccountSid,
        conference: &str,
        call: &str,
    ) -> Result<(), TwilioError> {
        let (sid, call) = self.participant_call(account, conference, call)?;
        let joined = self.twilio.conferences[&sid]
            .participants
            .get(&call)
            .is_some_and(|p| p.status == ParticipantStatus::Connected);
        if joined {
            self.leave_conference(sid, call, Leave::Kicked);
            self.dropped_from_conference(call, sid);
        } else {
            // Not answered yet: the dial-out is abandoned.
            if let Some(c) = self.twilio.conferences.get_mut(&sid) {
                c.participants.shift_remove(&call);
            }
            if let Some(leg) = self.leg_mut(call) {
                leg.on_answer = None;
            }
            self.end_call(call, crate::twilio::model::CallStatus::Canceled, "participant removed");
        }
        Ok(())
    }

    pub fn participant_resource(
        &self,
        conference: ConferenceSid,
        call: CallSid,
    ) -> Option<ParticipantResource> {
        let c = self.twilio.conferences.get(&conference)?;
        let p = c.participants.get(&call)?;
        let status = match (p.status, self.leg(call).map(|l| l.state)) {
            (ParticipantStatus::Queued, Some(crate::twilio::leg::LegState::Initiated)) => {
                ParticipantStatus::Connecting
            }
            (ParticipantStatus::Queued, Some(crate::twilio::leg::LegState::Ringing)) => {
                ParticipantStatus::Ringing
            }
            (status, _) => status,
        };
        let mut r = ParticipantResource::new(c.account, conference, call, status);
        r.label = p.label.clone();
        r.date_created = Some(self.epoch.rfc2822(p.created_at));
        r.date_updated = Some(self.epoch.rfc2822(p.updated_at));
        r.end_conference_on_exit = Some(p.end_on_exit);
        r.muted = Some(p.muted);
        r.hold = Some(p.hold);
        r.start_conference_on_enter = Some(p.start_on_enter);
        Some(r)
    }
}
