//! Webhooks the fake Twilio sends: voice requests for TwiML, status callbacks, all signed.
//!
//! Parameter names and values follow the reference notes (`twilio.md` §5, §7, §10): the standard voice
//! parameters on every request, `CallbackSource`/`SequenceNumber`/`Timestamp` on call progress events
//! (sequence numbers start at 0 per call), `X-Twilio-Signature` over the URL and the sorted parameters.

use bytes::Bytes;

use crate::ids::CallSid;
use crate::transport::OutboundRequest;
use crate::twilio::engine::{FetchKind, Hook, Purpose};
use crate::twilio::model::{CallEvent, Method};
use crate::twilio::signature;
use crate::world::World;

pub(crate) type Params = Vec<(String, String)>;

impl World {
    /// The parameters Twilio sends on every request about a call.
    pub(crate) fn voice_params(&self, call: CallSid) -> Params {
        let Some(leg) = self.leg(call) else { return Vec::new() };
        let mut p: Params = vec![
            ("AccountSid".into(), leg.account.to_string()),
            ("ApiVersion".into(), "2010-04-01".into()),
            ("CallSid".into(), call.to_string()),
            ("CallStatus".into(), leg.state.resource_status().to_string()),
            ("Called".into(), leg.to.clone()),
            ("Caller".into(), leg.from.clone()),
            ("Direction".into(), leg.direction.to_string()),
            ("From".into(), leg.from.clone()),
            ("To".into(), leg.to.clone()),
        ];
        if let Some(parent) = leg.parent {
            p.push(("ParentCallSid".into(), parent.to_string()));
        }
        if let Some(by) = leg.answered_by {
            p.push(("AnsweredBy".into(), by.to_string()));
        }
        p
    }

    /// Fires the status callback for a progress event if the leg subscribed to it.
    pub(crate) fn status_callback(&mut self, call: CallSid, event: CallEvent, call_status: &str) {
        let Some(leg) = self.twilio.calls.get_mut(&call) else { return };
        let Some(hook) = leg.status_callback.clone() else { return };
        if !leg.status_events.contains(&event) {
            return;
        }
        let sequence = leg.callback_seq;
        leg.callback_seq += 1;
        let mut params = self.voice_params(call);
        set(&mut params, "CallStatus", call_status);
        params.push(("CallbackSource".into(), "call-progress-events".into()));
        params.push(("SequenceNumber".into(), sequence.to_string()));
        params.push(("Timestamp".into(), self.epoch.rfc2822(self.now)));
        if let Some(leg) = self.leg(call) {
            if let Some(code) = leg.sip_response_code.filter(|_| event == CallEvent::Completed) {
                params.push(("SipResponseCode".into(), code.to_string()));
            }
            if event == CallEvent::Completed {
                let secs = leg.duration().map(|d| d.as_secs()).unwrap_or(0);
                params.push(("CallDuration".into(), secs.to_string()));
                // Twilio: `Duration` is the billed duration in minutes, rounded up.
                params.push(("Duration".into(), secs.div_ceil(60).to_string()));
            }
        }
        self.send_callback(call, &hook, params, "status callback");
    }

    /// Sends a webhook whose response does not matter.
    pub(crate) fn send_callback(&mut self, call: CallSid, hook: &Hook, params: Params, what: &'static str) {
        let Some(account) = self.leg(call).map(|l| l.account) else { return };
        let overrides = self.twilio_retries(&hook.url);
        let request = self.signed_request(account, hook, params);
        self.deliver_retried(request, Purpose::Callback { call: Some(call), what }, overrides);
    }

    /// Requests TwiML for `call`; the response continues the call in `on_twiml`.
    pub(crate) fn fetch_twiml(&mut self, call: CallSid, hook: Hook, kind: FetchKind, extra: Params) {
        let Some(leg) = self.twilio.calls.get_mut(&call) else { return };
        leg.fetches_in_a_row += 1;
        let too_many = leg.fetches_in_a_row > self.defaults.max_fetches_without_progress;
        leg.exec = crate::twilio::engine::Exec::Fetching;
        let generation = leg.generation;
        let account = leg.account;
        if too_many {
            self.notify(
                Some(call),
                11200,
                format!(
                    "too many TwiML fetches without progress ({} in a row); ending the call",
                    self.defaults.max_fetches_without_progress
                ),
            );
            self.application_error(call);
            return;
        }
        let mut params = self.voice_params(call);
        if let Some(leg) = self.leg(call).filter(|_| kind == FetchKind::Voice)
            && let Some(after) = leg.amd_duration
        {
            params.push(("MachineDetectionDuration".into(), after.as_millis().to_string()));
        }
        params.extend(extra);
        // The URL Twilio requests (and reports as `ErrorUrl`, and resolves relative URLs against): without
        // the connection overrides, which only Twilio reads.
        let url = signature::strip_connection_overrides(&hook.url).0.to_owned();
        let overrides = self.twilio_retries(&hook.url);
        let request = self.signed_request(account, &hook, params);
        self.deliver_retried(request, Purpose::Twiml { call, generation, url, kind }, overrides);
    }

    /// A request to `hook` signed with `account`'s auth token, as Twilio sends it.
    pub(crate) fn signed_request(
        &mut self,
        account: crate::ids::AccountSid,
        hook: &Hook,
        params: Params,
    ) -> OutboundRequest {
        let token = self.twilio.accounts.get(&account).cloned().unwrap_or_default();
        // Connection overrides (`#ct=…`) are for Twilio, never sent nor signed.
        let url = signature::strip_connection_overrides(&hook.url).0.to_owned();
        let idempotency = format!("{:032x}", self.mint.raw());
        let mut headers = vec![
            ("I-Twilio-Idempotency-Token".to_owned(), idempotency),
            ("User-Agent".to_owned(), "TwilioProxy/1.1".to_owned()),
        ];
        match hook.method {
            Method::Post => {
                let body =
                    form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
                headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
                headers.push(("X-Twilio-Signature".into(), signature::sign(&token, &url, &params)));
                OutboundRequest { method: http::Method::POST, url, headers, body: Bytes::from(body) }
            }
            Method::Get => {
                let query =
                    form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
                let sep = if url.contains('?') { '&' } else { '?' };
                let full = format!("{url}{sep}{query}");
                headers.push(("X-Twilio-Signature".into(), signature::sign(&token, &full, &[])));
                OutboundRequest { method: http::Method::GET, url: full, headers, body: Bytes::new() }
            }
        }
    }
}

fn set(params: &mut Params, name: &str, value: &str) {
    match params.iter_mut().find(|(k, _)| k == name) {
        Some((_, v)) => value.clone_into(v),
        None => params.push((name.into(), value.into())),
    }
}
