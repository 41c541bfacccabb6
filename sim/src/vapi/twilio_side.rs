//! What the fake Vapi does with Twilio: the webhooks Twilio sends it (`/twilio/inbound_call`,
//! `/twilio/status`) and the REST requests it makes with an imported number's credentials — placing
//! outbound calls, redirecting a caller's leg, configuring a number on import.
//!
//! Requests to Twilio run the fake Twilio's REST handlers in process and are journaled as HTTP
//! exchanges from Vapi to Twilio, with the form body the real request would carry.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::ids::{AccountSid, CallSid, PhoneNumberSid};
use crate::journal::{HttpExchange, HttpResponse, Party};
use crate::transport::{OutboundRequest, TargetResponse};
use crate::twilio::errors::TwilioError;
use crate::twilio::model::CallStatus as TwilioStatus;
use crate::twilio::wire::FormParams;
use crate::vapi::errors::VapiError;
use crate::vapi::model::{CallStatus, PhoneNumber, VapiCall};
use crate::world::World;

/// Where the journal says Vapi's Twilio requests go: the real API's host, as the real Vapi calls it.
const TWILIO_API: &str = "https://api.twilio.com";

/// A Twilio REST operation the fake Vapi performs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum TwilioOp {
    CreateCall,
    UpdateCall(CallSid),
    ListNumbers,
    UpdateNumber(PhoneNumberSid),
}

impl World {
    /// Runs a Twilio REST operation with `account`'s credentials and journals it.
    pub(crate) fn twilio_request(
        &mut self,
        account: &str,
        token: &str,
        op: TwilioOp,
        params: &[(&str, &str)],
    ) -> Result<Value, TwilioError> {
        let (method, path) = match op {
            TwilioOp::CreateCall => ("POST", "Calls.json".to_owned()),
            TwilioOp::UpdateCall(sid) => ("POST", format!("Calls/{sid}.json")),
            TwilioOp::ListNumbers => ("GET", "IncomingPhoneNumbers.json".to_owned()),
            TwilioOp::UpdateNumber(sid) => ("POST", format!("IncomingPhoneNumbers/{sid}.json")),
        };
        let encoded = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        let mut url = format!("{TWILIO_API}/2010-04-01/Accounts/{account}/{path}");
        let body = if method == "GET" {
            if !encoded.is_empty() {
                url = format!("{url}?{encoded}");
            }
            String::new()
        } else {
            encoded
        };
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{account}:{token}"))
        );
        let exchange = self.journal.begin_http(
            self.now,
            HttpExchange {
                from: Party::Vapi,
                to: Party::Twilio,
                method: method.to_owned(),
                url,
                request_headers: vec![(
                    "authorization".into(),
                    crate::http_journal::redact_header("authorization", &basic),
                )],
                request_body: body,
                response: None,
                error: None,
                finished_at: None,
                expects_twiml: false,
                fault: None,
                target_answer: None,
            },
        );
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{account}:{token}"))
        );
        let form = FormParams::from_pairs(params.iter().copied());
        let result = self.authenticate(account, Some(&basic)).and_then(|a| self.run_twilio_op(a, op, &form));
        let (status, body) = match &result {
            Ok((status, value)) => (*status, value.to_string()),
            Err(e) => (e.status, serde_json::to_string(e).unwrap_or_default()),
        };
        self.journal.finish_http(
            exchange,
            self.now,
            Ok(HttpResponse { status, content_type: Some("application/json".into()), body }),
        );
        result.map(|(_, value)| value)
    }

    fn run_twilio_op(
        &mut self,
        account: AccountSid,
        op: TwilioOp,
        form: &FormParams,
    ) -> Result<(u16, Value), TwilioError> {
        let json = |v: Result<Value, serde_json::Error>| {
            v.map_err(|e| TwilioError::malformed_request(&e.to_string()))
        };
        match op {
            TwilioOp::CreateCall => Ok((201, json(serde_json::to_value(self.create_call(account, form)?))?)),
            TwilioOp::UpdateCall(sid) => {
                Ok((200, json(serde_json::to_value(self.update_call(account, sid, form)?))?))
            }
            TwilioOp::ListNumbers => {
                Ok((200, json(serde_json::to_value(self.list_numbers(account, form)?))?))
            }
            TwilioOp::UpdateNumber(sid) => {
                Ok((200, json(serde_json::to_value(self.update_number(account, sid, form)?))?))
            }
        }
    }

    /// On import, Vapi finds the number in the Twilio account and sets its webhooks to itself.
    pub(crate) fn point_number_at_vapi(&mut self, number: &PhoneNumber) -> Result<(), VapiError> {
        let (account, token) = (number.account_sid().to_owned(), number.auth_token().to_owned());
        let page = self
            .twilio_request(&account, &token, TwilioOp::ListNumbers, &[("PhoneNumber", number.number())])
            .map_err(|e| VapiError::bad_request(format!("Twilio Error: {}", e.message)))?;
        let sid = page["incoming_phone_numbers"]
            .as_array()
            .and_then(|numbers| numbers.iter().find(|n| n["phone_number"] == number.number()))
            .and_then(|n| n["sid"].as_str())
            .and_then(|s| s.parse::<PhoneNumberSid>().ok())
            .ok_or_else(|| {
                VapiError::bad_request(format!(
                    "Number Not Found on Twilio. {} is not a number of account {account}",
                    number.number()
                ))
            })?;
        let inbound = format!("{}/twilio/inbound_call", self.vapi.public_url);
        let status = format!("{}/twilio/status", self.vapi.public_url);
        self.twilio_request(
            &account,
            &token,
            TwilioOp::UpdateNumber(sid),
            &[
                ("VoiceUrl", &inbound),
                ("VoiceMethod", "POST"),
                ("StatusCallback", &status),
                ("StatusCallbackMethod", "POST"),
            ],
        )
        .map_err(|e| VapiError::bad_request(format!("Twilio Error: {}", e.message)))?;
        Ok(())
    }

    /// The credentials of the number a call was made with.
    fn call_credentials(&self, id: &str) -> Option<(String, String)> {
        let call = self.vapi.calls.get(id)?;
        let number = self.vapi.numbers.get(call.phone_number_id.as_deref()?)?;
        Some((number.account_sid().to_owned(), number.auth_token().to_owned()))
    }

    /// An outbound (non-bypass) call: Vapi asks Twilio to dial the customer with TwiML that connects
    /// the answered leg to the call's stream. Twilio's status callbacks come back to `/twilio/status`.
    pub(crate) fn place_outbound(&mut self, id: &str) {
        let Some(to) = self.vapi.calls.get(id).and_then(|c| c.customer_number()).map(str::to_owned) else {
            return;
        };
        let twiml = self.stream_twiml(id);
        match self.dial_from_number(id, &to, None, &twiml, false, None) {
            Ok(sid) => {
                if let Some(call) = self.vapi.calls.get_mut(id) {
                    call.twilio_call = Some(sid);
                }
            }
            Err(e) => {
                self.note(format!("vapi-call {id}: Twilio refused the call: {e}"));
                self.end_vapi_call(id, "twilio-failed-to-connect-call");
            }
        }
    }

    /// Points a call's Twilio leg at new TwiML (a transfer, `send-transport-message`).
    pub(crate) fn update_leg(
        &mut self,
        id: &str,
        leg: CallSid,
        params: &[(&str, &str)],
    ) -> Result<(), String> {
        let (account, token) = self.call_credentials(id).ok_or("the call has no Twilio credentials")?;
        self.twilio_request(&account, &token, TwilioOp::UpdateCall(leg), params)
            .map(|_| ())
            .map_err(|e| e.message)
    }

    /// Asks Twilio to dial `to` from the call's number (or `caller_id`), with status callbacks to
    /// `/twilio/status`: the customer of an outbound call, or a warm transfer's destination (with
    /// machine detection). `twiml` runs when the callee answers.
    pub(crate) fn dial_from_number(
        &mut self,
        id: &str,
        to: &str,
        caller_id: Option<&str>,
        twiml: &str,
        machine_detection: bool,
        ring_timeout_s: Option<u32>,
    ) -> Result<CallSid, String> {
        let (account, token) = self.call_credentials(id).ok_or("the call has no Twilio credentials")?;
        let call = &self.vapi.calls[id];
        let from = match caller_id {
            Some(c) => c.to_owned(),
            None => {
                self.vapi.numbers[call.phone_number_id.as_deref().unwrap_or_default()].number().to_owned()
            }
        };
        let status = format!("{}/twilio/status", self.vapi.public_url);
        let timeout = ring_timeout_s.unwrap_or(self.vapi.defaults.ring_timeout_s).to_string();
        let mut params = vec![
            ("To", to),
            ("From", from.as_str()),
            ("Twiml", twiml),
            ("StatusCallback", status.as_str()),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("Timeout", timeout.as_str()),
        ];
        let amd = format!("{}/twilio/amd", self.vapi.public_url);
        if machine_detection {
            params.extend([
                ("MachineDetection", "Enable"),
                ("AsyncAmd", "true"),
                ("AsyncAmdStatusCallback", amd.as_str()),
            ]);
        }
        let resource =
            self.twilio_request(&account, &token, TwilioOp::CreateCall, &params).map_err(|e| e.message)?;
        resource["sid"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "Twilio gave no call SID".to_owned())
    }

    /// A webhook from the fake Twilio to one of the fake Vapi's URLs, answered in process.
    pub(crate) fn vapi_twilio_webhook(&mut self, request: &OutboundRequest) -> TargetResponse {
        let path = request.url.strip_prefix(&self.vapi.public_url).unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default().to_owned();
        let form = FormParams::parse(&request.body).unwrap_or_default();
        let (status, content_type, body) = match path.as_str() {
            "/twilio/inbound_call" => match self.inbound_call(&form) {
                Ok(twiml) => (200, "text/xml", twiml),
                Err(e) => (e.status.as_u16(), "application/json", e.body().to_string()),
            },
            "/twilio/status" => {
                self.twilio_status(&form);
                (200, "text/plain", String::new())
            }
            "/twilio/amd" => {
                self.twilio_amd(&form);
                (200, "text/plain", String::new())
            }
            _ => (
                404,
                "application/json",
                VapiError::not_found(format!("Cannot POST {path}")).body().to_string(),
            ),
        };
        TargetResponse { status, content_type: Some(content_type.into()), body: body.into() }
    }

    /// `/twilio/inbound_call`: a new inbound call to an imported number. Only a ringing inbound call
    /// is accepted, as the real route does (reference §8).
    pub fn inbound_call(&mut self, form: &FormParams) -> Result<String, VapiError> {
        let mut errors = Vec::new();
        if form.get("CallStatus") != Some("ringing") {
            errors.push("CallStatus must be one of the following values: ringing".to_owned());
        }
        if !matches!(form.get("Direction"), Some("inbound" | "outbound")) {
            errors.push("Direction must be one of the following values: inbound, outbound".to_owned());
        }
        if !errors.is_empty() {
            return Err(VapiError::invalid(errors));
        }
        let to = form.get("To").unwrap_or_default();
        let number = self
            .vapi
            .numbers
            .values()
            .find(|n| n.number() == to && Some(n.account_sid()) == form.get("AccountSid"))
            .cloned()
            .ok_or_else(|| {
                VapiError::bad_request(format!("Couldn't Get Phone Number. {to} is not imported"))
            })?;
        let assistant_id = super::str_field(&number.body, "assistantId")
            .ok_or_else(|| {
                VapiError::bad_request("Couldn't Get Assistant. The phone number has no `assistantId`")
            })?
            .to_owned();
        let assistant = self
            .vapi
            .assistants
            .get(&assistant_id)
            .ok_or_else(|| {
                VapiError::bad_request(format!("Couldn't Get Assistant. Assistant {assistant_id} not found"))
            })?
            .body
            .clone();
        let id = self.vapi.new_id();
        let customer = json!({"number": form.get("From").unwrap_or_default()});
        let mut call =
            VapiCall::new(id.clone(), "inboundPhoneCall", CallStatus::Ringing, self.now, &number, customer);
        call.assistant_id = Some(assistant_id);
        call.assistant = assistant;
        call.twilio_call = form.get("CallSid").and_then(|s| s.parse().ok());
        self.vapi.calls.insert(id.clone(), call);
        self.transition(
            crate::journal::Entity::VapiCall(id.clone()),
            "none",
            "ringing",
            Some("/twilio/inbound_call"),
        );
        self.status_update(&id);
        Ok(self.stream_twiml(&id))
    }

    /// `/twilio/status`: Twilio's status callbacks for legs Vapi placed.
    fn twilio_status(&mut self, form: &FormParams) {
        let Some(sid) = form.get("CallSid").and_then(|s| s.parse::<CallSid>().ok()) else { return };
        let Some(status) = form.get("CallStatus").and_then(|s| s.parse::<TwilioStatus>().ok()) else {
            return;
        };
        if let Some(id) = self.vapi.calls.values().find(|c| c.twilio_call == Some(sid)).map(|c| c.id.clone())
        {
            self.customer_leg_status(&id, status);
        } else if let Some(id) =
            self.vapi.calls.values().find(|c| c.session.transfer_leg() == Some(sid)).map(|c| c.id.clone())
        {
            self.transfer_leg_status(&id, status, form.get("AnsweredBy"));
        }
    }

    /// `/twilio/amd`: the asynchronous machine detection result for a transfer destination.
    fn twilio_amd(&mut self, form: &FormParams) {
        let Some(sid) = form.get("CallSid").and_then(|s| s.parse::<CallSid>().ok()) else { return };
        let found =
            self.vapi.calls.values().find(|c| c.session.transfer_leg() == Some(sid)).map(|c| c.id.clone());
        if let Some(id) = found {
            self.transfer_detected(&id, form.get("AnsweredBy").unwrap_or("unknown"));
        }
    }

    /// The customer's leg of an outbound call moved on.
    fn customer_leg_status(&mut self, id: &str, status: TwilioStatus) {
        let Some(call) = self.vapi.calls.get(id) else { return };
        if call.is_ended() {
            return;
        }
        let connected = call.stream.is_some();
        match status {
            TwilioStatus::Ringing if call.status == CallStatus::Queued => {
                self.set_vapi_status(id, CallStatus::Ringing, "Twilio: ringing");
            }
            TwilioStatus::Busy => self.end_vapi_call(id, "customer-busy"),
            TwilioStatus::NoAnswer => self.end_vapi_call(id, "customer-did-not-answer"),
            TwilioStatus::Failed => self.end_vapi_call(id, "twilio-failed-to-connect-call"),
            TwilioStatus::Canceled => self.end_vapi_call(id, "manually-canceled"),
            TwilioStatus::Completed if !connected => self.end_vapi_call(id, "customer-ended-call"),
            _ => {}
        }
    }
}
