//! The Calls resource and incoming calls: creating, updating, fetching and listing calls, and a caller
//! dialing a Twilio number.
//!
//! Validation follows the spec file's CreateCall/UpdateCall parameters and the reference notes
//! (`twilio.md` §2.1, §2.3, §4): `To` and `From` required (21201, 21213), one of `Url`/`Twiml`/
//! `ApplicationSid` (21205), `From` owned by the account (21210), redirecting an ended call 21220.

use crate::ids::{AccountSid, CallSid};
use crate::time::SimDuration;
use crate::twilio::conferences::JoinSettings;
use crate::twilio::engine::{Amd, Doc, Event, FetchKind, Hook, Leg, OnAnswer, Remote};
use crate::twilio::errors::TwilioError;
use crate::twilio::leg::LegState;
use crate::twilio::model::{AmdMode, CallEvent, CallStatus, Direction, Method};
use crate::twilio::wire::{self, CallResource, Endpoint, FormParams, ListPage, PageRequest};
use crate::world::World;

/// `Twiml` may be at most this long (spec CreateCall: "max 4000 characters").
const MAX_TWIML: usize = 4_000;

impl World {
    /// Checks HTTP Basic credentials for the account in the path.
    pub fn authenticate(
        &self,
        path_account: &str,
        authorization: Option<&str>,
    ) -> Result<AccountSid, TwilioError> {
        let Some((user, token)) = authorization.and_then(basic_credentials) else {
            return Err(TwilioError::authenticate());
        };
        let Ok(account) = user.parse::<AccountSid>() else { return Err(TwilioError::authenticate()) };
        match self.twilio.accounts.get(&account) {
            Some(expected) if expected.as_bytes() == token.as_bytes() => {}
            _ => return Err(TwilioError::authenticate()),
        }
        if path_account != user {
            // Real Twilio answers 20003 when the credentials do not own the account in the path.
            return Err(TwilioError::authenticate());
        }
        Ok(account)
    }

    /// `POST /Calls.json`.
    pub fn create_call(
        &mut self,
        account: AccountSid,
        form: &FormParams,
    ) -> Result<CallResource, TwilioError> {
        let to = form.get("To").filter(|s| !s.is_empty()).ok_or_else(TwilioError::missing_to)?;
        let from = form.get("From").filter(|s| !s.is_empty()).ok_or_else(TwilioError::missing_from)?;
        let to_endpoint = Endpoint::parse(to).ok_or_else(|| TwilioError::invalid_to(to))?;
        let from_endpoint = Endpoint::parse(from).ok_or_else(|| TwilioError::invalid_from(from))?;
        let doc = document(form)?.ok_or_else(TwilioError::url_required)?;
        let queued_for = self.queue_slot(account)?;
        let phone_number_sid = match &from_endpoint {
            Endpoint::Phone(number) => Some(
                self.twilio
                    .numbers
                    .values()
                    .find(|n| n.account == account && n.phone_number == *number)
                    .map(|n| n.sid)
                    .ok_or_else(|| TwilioError::from_not_verified(from))?,
            ),
            _ => None,
        };
        let timeout = form.get_u32_in("Timeout", 1..=600)?.unwrap_or(60);
        let time_limit = form.get_u32_in("TimeLimit", 1..=86_400)?;
        let (status_callback, status_events) =
            status_callback(form, "StatusCallback", "StatusCallbackMethod", "StatusCallbackEvent")?;
        let fallback = hook(form, "FallbackUrl", "FallbackMethod")?;
        let send_digits = form.get("SendDigits").filter(|s| !s.is_empty());
        let amd = match form.get_enum::<AmdMode>("MachineDetection")? {
            // Spec: "If `SendDigits` is provided, `MachineDetection` is ignored".
            Some(mode) if send_digits.is_none() => {
                let is_async = form.get_bool("AsyncAmd")?.unwrap_or(false);
                Some(Amd {
                    mode,
                    timeout: SimDuration::from_secs(u64::from(
                        form.get_u32_in("MachineDetectionTimeout", 3..=59)?.unwrap_or(30),
                    )),
                    callback: if is_async {
                        hook(form, "AsyncAmdStatusCallback", "AsyncAmdStatusCallbackMethod")?
                    } else {
                        None
                    },
                    blocking: !is_async,
                })
            }
            _ => None,
        };

        let sid = self.mint.call();
        let mut leg = Leg::new(
            sid,
            account,
            Direction::OutboundApi,
            from.to_owned(),
            to_endpoint.to_string(),
            self.now,
        );
        leg.phone_number_sid = phone_number_sid;
        leg.timeout = SimDuration::from_secs(u64::from(timeout));
        leg.time_limit = time_limit.map(|s| SimDuration::from_secs(u64::from(s)));
        leg.status_callback = status_callback;
        leg.status_events = status_events;
        leg.fallback = fallback;
        leg.amd = amd;
        leg.remote = Remote::Phone(self.phone_behaviour(&to_endpoint.to_string()));
        leg.on_answer = Some(OnAnswer::Run(doc));
        leg.queued_for = queued_for;
        self.twilio.calls.insert(sid, leg);
        self.call_created(sid, "queued", "REST create");
        self.twilio.dial_slots.insert(account, self.now + queued_for + self.dial_interval());
        self.schedule(queued_for, Event::Dial(sid));
        Ok(self.call_resource(sid).expect("the call was just created"))
    }

    /// `POST /Calls/{Sid}.json`.
    pub fn update_call(
        &mut self,
        account: AccountSid,
        sid: CallSid,
        form: &FormParams,
    ) -> Result<CallResource, TwilioError> {
        let leg = self.owned_call(account, sid)?;
        let state = leg.state;
        let inbound_ringing = leg.direction == Direction::Inbound && state == LegState::Ringing;
        let status = match form.get("Status") {
            None => None,
            Some("canceled") => Some(CallStatus::Canceled),
            Some("completed") => Some(CallStatus::Completed),
            Some(other) => return Err(TwilioError::invalid_parameter("Status", other)),
        };
        let doc = document(form)?;
        let (status_callback, _) =
            status_callback(form, "StatusCallback", "StatusCallbackMethod", "StatusCallbackEvent")?;
        let fallback = hook(form, "FallbackUrl", "FallbackMethod")?;
        let time_limit = form.get_u32_in("TimeLimit", 1..=86_400)?;
        if state.is_ended() {
            return Err(TwilioError::call_not_in_progress());
        }
        match status {
            Some(CallStatus::Canceled) => {
                // Spec: `canceled` hangs up queued or ringing calls and "will not affect calls already in
                // progress".
                if state.is_pending() {
                    self.end_call(sid, CallStatus::Canceled, "REST Status=canceled");
                }
                return Ok(self.call_resource(sid).expect("call exists"));
            }
            Some(_) => {
                let status = if state.is_pending() && !inbound_ringing {
                    CallStatus::Canceled
                } else {
                    CallStatus::Completed
                };
                self.end_call(sid, status, "REST Status=completed");
                return Ok(self.call_resource(sid).expect("call exists"));
            }
            None => {}
        }
        if let Some(leg) = self.leg_mut(sid) {
            if fallback.is_some() {
                leg.fallback = fallback;
            }
            // Twilio: "To update a StatusCallback on a Call, it is required to set the Url in the same
            // statement."
            if status_callback.is_some() && doc.is_some() {
                leg.status_callback = status_callback;
            }
            if let Some(limit) = time_limit {
                leg.time_limit = Some(SimDuration::from_secs(u64::from(limit)));
            }
        }
        if let Some(doc) = doc {
            if state != LegState::InProgress && !inbound_ringing {
                return Err(TwilioError::call_not_in_progress());
            }
            self.redirect_call(sid, doc);
        }
        Ok(self.call_resource(sid).expect("call exists"))
    }

    /// `DELETE /Calls/{Sid}.json`: only a call that has ended can be deleted.
    pub fn delete_call(&mut self, account: AccountSid, sid: CallSid) -> Result<(), TwilioError> {
        let leg = self.owned_call(account, sid)?;
        if !leg.state.is_ended() {
            return Err(TwilioError::delete_before_complete());
        }
        self.twilio.calls.shift_remove(&sid);
        self.note(format!("call {sid}: record deleted"));
        Ok(())
    }

    /// `GET /Calls.json` with its filters, most recent first.
    pub fn list_calls(
        &self,
        account: AccountSid,
        query: &FormParams,
    ) -> Result<ListPage<CallResource>, TwilioError> {
        let paging = PageRequest::from_params(query)?;
        let status = match query.get("Status") {
            Some(s) => {
                Some(s.parse::<CallStatus>().map_err(|()| TwilioError::invalid_parameter("Status", s))?)
            }
            None => None,
        };
        let parent = query.get("ParentCallSid");
        let date_filter = |name: &str, value: Option<crate::time::SimInstant>, op: &str| -> bool {
            match (query.get(&format!("{name}{op}")), value) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(want), Some(at)) => {
                    let have = self.epoch.date(at);
                    let want = want.get(..10).unwrap_or(want);
                    match op {
                        "<" => have.as_str() <= want,
                        ">" => have.as_str() >= want,
                        _ => have == want,
                    }
                }
            }
        };
        let records: Vec<CallResource> = self
            .twilio
            .calls
            .values()
            .rev()
            .filter(|l| l.account == account)
            .filter(|l| query.get("To").is_none_or(|to| l.to == to))
            .filter(|l| query.get("From").is_none_or(|from| l.from == from))
            .filter(|l| parent.is_none_or(|p| l.parent.is_some_and(|lp| lp.to_string() == p)))
            .filter(|l| status.is_none_or(|s| l.state.resource_status() == s))
            .filter(|l| ["", "<", ">"].iter().all(|op| date_filter("StartTime", l.started_at, op)))
            .filter(|l| ["", "<", ">"].iter().all(|op| date_filter("EndTime", l.ended_at, op)))
            .filter_map(|l| self.call_resource(l.sid))
            .collect();
        Ok(wire::paginate(records, &wire::calls_path(account), &wire::filters_query(query), &paging))
    }

    /// `GET /Calls/{Sid}.json`.
    pub fn fetch_call(&self, account: AccountSid, sid: CallSid) -> Result<CallResource, TwilioError> {
        self.owned_call(account, sid)?;
        Ok(self.call_resource(sid).expect("call exists"))
    }

    fn owned_call(&self, account: AccountSid, sid: CallSid) -> Result<&Leg, TwilioError> {
        self.leg(sid)
            .filter(|l| l.account == account)
            .ok_or_else(|| TwilioError::not_found(&wire::call_uri(account, sid)))
    }

    /// The call as the REST API shows it.
    pub fn call_resource(&self, sid: CallSid) -> Option<CallResource> {
        let leg = self.leg(sid)?;
        let status = leg.state.resource_status();
        let mut r = CallResource::new(leg.account, sid, status);
        r.date_created = Some(self.epoch.rfc2822(leg.created_at));
        r.date_updated = Some(self.epoch.rfc2822(leg.updated_at));
        r.parent_call_sid = leg.parent;
        r.set_to(&leg.to);
        r.set_from(&leg.from);
        r.phone_number_sid = leg.phone_number_sid;
        r.start_time = leg.started_at.map(|t| self.epoch.rfc2822(t));
        r.end_time = leg.ended_at.map(|t| self.epoch.rfc2822(t));
        r.duration = match (leg.state, leg.duration()) {
            (LegState::Ended(_), Some(d)) => Some(d.as_secs().to_string()),
            (LegState::Ended(_), None) => Some("0".to_owned()),
            _ => None,
        };
        r.direction = Some(leg.direction);
        r.answered_by = leg.answered_by;
        r.queue_time = Some(leg.queued_for.as_millis().to_string());
        Some(r)
    }

    /// The time between two dials of one account's call queue: one over its calls per second (none when
    /// the rate is not a positive number).
    fn dial_interval(&self) -> SimDuration {
        let cps = self.defaults.calls_per_second;
        if cps.is_finite() && cps > 0.0 { SimDuration::from_secs_f64(1.0 / cps) } else { SimDuration::ZERO }
    }

    /// How long a call created now waits in `account`'s queue, or 22005 when the queue holds more than
    /// `max_queue_s` of calls.
    fn queue_slot(&self, account: AccountSid) -> Result<SimDuration, TwilioError> {
        let next = self.twilio.dial_slots.get(&account).copied().unwrap_or(self.now);
        let wait = next.saturating_since(self.now);
        if wait.as_secs_f64() > self.defaults.max_queue_s {
            return Err(TwilioError::call_queue_full());
        }
        Ok(wait)
    }

    /// A caller dials a Twilio number: Twilio creates the inbound leg and requests the number's voice URL.
    pub fn place_inbound_call(&mut self, from: &str, to: &str) -> Result<CallSid, String> {
        let number =
            self.twilio.numbers.values().find(|n| n.phone_number == to).cloned().ok_or_else(|| {
                format!("{to} is not a Twilio number of this world: add it to an account's numbers")
            })?;
        let sid = self.mint.call();
        let mut leg =
            Leg::new(sid, number.account, Direction::Inbound, from.to_owned(), to.to_owned(), self.now);
        leg.phone_number_sid = Some(number.sid);
        leg.state = LegState::Ringing;
        leg.remote = Remote::Caller;
        leg.status_callback =
            number.status_callback.clone().map(|url| Hook { url, method: number.status_callback_method });
        leg.status_events = vec![CallEvent::Completed];
        leg.fallback =
            number.voice_fallback_url.clone().map(|url| Hook { url, method: number.voice_fallback_method });
        self.twilio.calls.insert(sid, leg);
        self.call_created(sid, "ringing", &format!("{from} dials {to}"));
        match number.voice_url.filter(|u| !u.is_empty()) {
            Some(url) => {
                self.fetch_twiml(sid, Hook { url, method: number.voice_method }, FetchKind::Voice, Vec::new())
            }
            None => {
                self.notify(Some(sid), 21205, format!("{to} has no voice URL"));
                self.application_error(sid);
            }
        }
        Ok(sid)
    }

    /// A REST-created participant: an outbound leg that joins `conference` when answered.
    pub(crate) fn dial_participant(
        &mut self,
        mut leg: Leg,
        settings: JoinSettings,
        conference: crate::ids::ConferenceSid,
    ) -> CallSid {
        let sid = leg.sid;
        leg.on_answer = Some(OnAnswer::Join(conference, Box::new(settings)));
        self.twilio.calls.insert(sid, leg);
        self.call_created(sid, "queued", &format!("participant of {conference}"));
        self.schedule(SimDuration::ZERO, Event::Dial(sid));
        sid
    }
}

/// `Url` (with `Method`) or `Twiml`: the document a call runs. Spec: "If both `twiml` and `url` are
/// provided then `twiml` parameter will be ignored".
fn document(form: &FormParams) -> Result<Option<Doc>, TwilioError> {
    if let Some(url) = form.get_url("Url")? {
        let method = form.get_enum::<Method>("Method")?.unwrap_or(Method::Post);
        return Ok(Some(Doc::Url(Hook { url: url.to_owned(), method })));
    }
    match form.get("Twiml") {
        Some(twiml) if twiml.chars().count() > MAX_TWIML => {
            Err(TwilioError::invalid_parameter("Twiml", "longer than 4000 characters"))
        }
        Some(twiml) if !twiml.is_empty() => Ok(Some(Doc::Twiml(twiml.to_owned()))),
        _ => match form.get("ApplicationSid") {
            Some(sid) => Err(TwilioError::invalid_application_sid(sid)),
            None => Ok(None),
        },
    }
}

pub(crate) fn hook(form: &FormParams, url: &str, method: &str) -> Result<Option<Hook>, TwilioError> {
    let Some(u) = form.get_url(url)? else { return Ok(None) };
    let method = form.get_enum::<Method>(method)?.unwrap_or(Method::Post);
    Ok(Some(Hook { url: u.to_owned(), method }))
}

fn status_callback(
    form: &FormParams,
    url: &str,
    method: &str,
    events: &str,
) -> Result<(Option<Hook>, Vec<CallEvent>), TwilioError> {
    let hook = hook(form, url, method)?;
    let mut events = form.get_all_enum::<CallEvent>(events)?;
    if events.is_empty() {
        // Spec: "If no `status_callback_event` is specified, we will send the `completed` status".
        events.push(CallEvent::Completed);
    }
    Ok((hook, events))
}

/// `(user, password)` from an `Authorization: Basic …` header.
pub(crate) fn basic_credentials(header: &str) -> Option<(String, String)> {
    use base64::Engine;
    let encoded = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}
