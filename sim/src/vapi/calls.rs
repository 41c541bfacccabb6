//! The REST resources on the world: assistants, phone numbers and calls, with Vapi's validation.

use serde_json::{Map, Value, json};

use crate::journal::Entity;
use crate::time::{SimDuration, SimInstant};
use crate::vapi::errors::VapiError;
use crate::vapi::model::{
    self, ASSISTANT_PROPERTIES, Assistant, CALL_PROPERTIES, CallStatus, PhoneNumber,
    TWILIO_NUMBER_PROPERTIES, VapiCall, check_properties, check_transfer_modes, object,
};
use crate::vapi::{Event, str_field};
use crate::world::World;

/// A new call's assistant: its id if stored, the inline one as given, and the body the session runs.
type Resolved = (Option<String>, Option<Value>, Map<String, Value>);

/// `GET /call` and friends' query parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    pub pairs: Vec<(String, String)>,
}

impl World {
    // ---------------------------------------------------------------------------------------------
    // Assistants
    // ---------------------------------------------------------------------------------------------

    /// The credentials in a resource the fake was given never reach the journal's bodies.
    fn keep_secrets(&mut self, body: &Map<String, Value>) {
        for secret in crate::journal::json_secrets(&Value::Object(body.clone())) {
            self.journal.keep_secret(&secret);
        }
    }

    pub fn create_assistant(&mut self, body: Value) -> Result<Value, VapiError> {
        self.create_assistant_with_id(object(body)?, None)
    }

    pub(crate) fn create_assistant_with_id(
        &mut self,
        body: Map<String, Value>,
        id: Option<String>,
    ) -> Result<Value, VapiError> {
        self.keep_secrets(&body);
        check_properties(&body, ASSISTANT_PROPERTIES, "")?;
        check_transfer_modes(&body, "")?;
        let id = id.unwrap_or_else(|| self.vapi.new_id());
        if self.vapi.assistants.contains_key(&id) {
            return Err(VapiError::bad_request(format!("Assistant {id} already exists")));
        }
        let assistant = Assistant { id: Some(id.clone()), created_at: self.now, updated_at: self.now, body };
        let json = assistant.to_json(&self.vapi.org_id, self.epoch);
        self.vapi.assistants.insert(id, assistant);
        Ok(json)
    }

    pub fn get_assistant(&self, id: &str) -> Result<Value, VapiError> {
        self.vapi
            .assistants
            .get(id)
            .map(|a| a.to_json(&self.vapi.org_id, self.epoch))
            .ok_or_else(|| VapiError::not_found("Assistant not found"))
    }

    pub fn list_assistants(&self, query: &ListQuery) -> Result<Value, VapiError> {
        let filter = Filter::parse(query, self)?;
        let items: Vec<Value> = self
            .vapi
            .assistants
            .values()
            .rev()
            .filter(|a| filter.keeps(a.created_at, a.updated_at))
            .take(filter.limit)
            .map(|a| a.to_json(&self.vapi.org_id, self.epoch))
            .collect();
        Ok(Value::Array(items))
    }

    pub fn update_assistant(&mut self, id: &str, body: Value) -> Result<Value, VapiError> {
        let body = object(body)?;
        self.keep_secrets(&body);
        check_properties(&body, ASSISTANT_PROPERTIES, "")?;
        check_transfer_modes(&body, "")?;
        let now = self.now;
        let assistant =
            self.vapi.assistants.get_mut(id).ok_or_else(|| VapiError::not_found("Assistant not found"))?;
        assistant.body.extend(body);
        assistant.updated_at = now;
        Ok(assistant.to_json(&self.vapi.org_id, self.epoch))
    }

    pub fn delete_assistant(&mut self, id: &str) -> Result<Value, VapiError> {
        let assistant = self
            .vapi
            .assistants
            .shift_remove(id)
            .ok_or_else(|| VapiError::not_found("Assistant not found"))?;
        Ok(assistant.to_json(&self.vapi.org_id, self.epoch))
    }

    // ---------------------------------------------------------------------------------------------
    // Phone numbers
    // ---------------------------------------------------------------------------------------------

    /// `POST /phone-number` with `provider: "twilio"`: checks the credentials and the number with the
    /// fake Twilio, then points the number's voice URL at `/twilio/inbound_call`, as the real import does.
    pub fn import_number(&mut self, body: Value) -> Result<Value, VapiError> {
        self.import_number_with_id(object(body)?, None, true)
    }

    /// Imports a number; `configure` points its Twilio webhooks at the fake (the REST import does; a
    /// world file's numbers keep the webhooks the file gives them).
    pub(crate) fn import_number_with_id(
        &mut self,
        body: Map<String, Value>,
        id: Option<String>,
        configure: bool,
    ) -> Result<Value, VapiError> {
        self.keep_secrets(&body);
        match str_field(&body, "provider") {
            Some("twilio") => {}
            Some(other) => {
                return Err(VapiError::bad_request(format!(
                    "ringback simulates Twilio numbers only; provider `{other}` is not supported"
                )));
            }
            None => return Err(VapiError::invalid(vec!["provider must be one of the following values: byo-phone-number, twilio, vonage, vapi, telnyx".into()])),
        }
        check_properties(&body, TWILIO_NUMBER_PROPERTIES, "")?;
        let mut missing = Vec::new();
        for field in ["number", "twilioAccountSid"] {
            if str_field(&body, field).is_none() {
                missing.push(format!("{field} must be a string"));
            }
        }
        if !missing.is_empty() {
            return Err(VapiError::invalid(missing));
        }
        if str_field(&body, "twilioAuthToken").is_none() {
            return Err(VapiError::bad_request(
                "Twilio credentials are required: `twilioAuthToken` (ringback does not simulate API keys)",
            ));
        }
        if let Some(assistant) = str_field(&body, "assistantId")
            && !self.vapi.assistants.contains_key(assistant)
        {
            return Err(VapiError::bad_request(format!(
                "Couldn't Get Assistant. Assistant {assistant} not found"
            )));
        }
        let id = id.unwrap_or_else(|| self.vapi.new_id());
        let number = PhoneNumber { id: id.clone(), created_at: self.now, updated_at: self.now, body };
        if configure {
            self.point_number_at_vapi(&number)?;
        } else if !self
            .twilio
            .numbers
            .values()
            .any(|n| n.phone_number == number.number() && n.account.to_string() == number.account_sid())
        {
            return Err(VapiError::bad_request(format!(
                "{} is not a number of Twilio account {}",
                number.number(),
                number.account_sid()
            )));
        }
        let json = number.to_json(&self.vapi.org_id, self.epoch);
        self.vapi.numbers.insert(id, number);
        Ok(json)
    }

    pub fn get_number(&self, id: &str) -> Result<Value, VapiError> {
        self.vapi
            .numbers
            .get(id)
            .map(|n| n.to_json(&self.vapi.org_id, self.epoch))
            .ok_or_else(|| VapiError::not_found("Phone Number not found"))
    }

    pub fn list_numbers_vapi(&self, query: &ListQuery) -> Result<Value, VapiError> {
        let filter = Filter::parse(query, self)?;
        Ok(Value::Array(
            self.vapi
                .numbers
                .values()
                .rev()
                .filter(|n| filter.keeps(n.created_at, n.updated_at))
                .take(filter.limit)
                .map(|n| n.to_json(&self.vapi.org_id, self.epoch))
                .collect(),
        ))
    }

    pub fn update_number_vapi(&mut self, id: &str, body: Value) -> Result<Value, VapiError> {
        let body = object(body)?;
        check_properties(&body, TWILIO_NUMBER_PROPERTIES, "")?;
        let now = self.now;
        let number =
            self.vapi.numbers.get_mut(id).ok_or_else(|| VapiError::not_found("Phone Number not found"))?;
        number.body.extend(body);
        number.updated_at = now;
        Ok(number.to_json(&self.vapi.org_id, self.epoch))
    }

    // ---------------------------------------------------------------------------------------------
    // Calls
    // ---------------------------------------------------------------------------------------------

    /// `POST /call`. Safe under the SDKs' automatic retries: it never answers a retryable status
    /// (408, 409, 429, 5xx), so a retry can only follow a lost response, which cannot happen in process.
    pub fn create_vapi_call(&mut self, body: Value) -> Result<Value, VapiError> {
        let body = object(body)?;
        check_properties(&body, CALL_PROPERTIES, "")?;
        for unsupported in
            ["squad", "squadId", "workflow", "workflowId", "customers", "schedulePlan", "customerId"]
        {
            if body.contains_key(unsupported) {
                return Err(VapiError::bad_request(format!(
                    "ringback does not simulate `{unsupported}`; use `assistant`/`assistantId` and `customer`"
                )));
            }
        }
        let bypass = match body.get("phoneCallProviderBypassEnabled") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(VapiError::invalid(vec![
                    "phoneCallProviderBypassEnabled must be a boolean value".into(),
                ]));
            }
        };
        let number = match str_field(&body, "phoneNumberId") {
            Some(id) => Some(self.vapi.numbers.get(id).cloned().ok_or_else(|| {
                VapiError::bad_request(format!("Couldn't Get Phone Number. Phone number {id} not found"))
            })?),
            None if body.contains_key("phoneNumber") => {
                return Err(VapiError::bad_request(
                    "ringback does not simulate a transient `phoneNumber`; import it with POST /phone-number",
                ));
            }
            None => None,
        };
        let Some(number) = number else {
            return Err(VapiError::bad_request(
                "Couldn't Get Phone Number. Need Either `phoneNumberId` Or `phoneNumber`.",
            ));
        };
        let customer = match body.get("customer") {
            Some(Value::Object(c)) if c.get("number").and_then(Value::as_str).is_some() => {
                Value::Object(c.clone())
            }
            Some(Value::Object(_)) => {
                return Err(VapiError::bad_request(
                    "Couldn't Get Customer. `customer.number` is required for a phone call.",
                ));
            }
            _ => {
                return Err(VapiError::bad_request(
                    "Couldn't Get Customer. Need Either `customerId` Or `customer`.",
                ));
            }
        };
        let overrides = match body.get("assistantOverrides") {
            None => None,
            Some(Value::Object(o)) => {
                check_transfer_modes(o, "assistantOverrides.")?;
                Some(o.clone())
            }
            Some(_) => return Err(VapiError::invalid(vec!["assistantOverrides must be an object".into()])),
        };
        let (assistant_id, inline, mut assistant) = self.resolve_assistant(&body, &number)?;
        let mut variables = Map::new();
        if let Some(o) = &overrides {
            model::apply_overrides(&mut assistant, o);
            if let Some(Value::Object(v)) = o.get("variableValues") {
                variables.extend(v.clone());
            }
        }
        let kind: &'static str = if bypass {
            match str_field(&body, "type").unwrap_or(&self.vapi.defaults.bypass_call_type) {
                "inboundPhoneCall" => "inboundPhoneCall",
                _ => "outboundPhoneCall",
            }
        } else {
            "outboundPhoneCall"
        };
        let id = self.vapi.new_id();
        let mut call = VapiCall::new(id.clone(), kind, CallStatus::Queued, self.now, &number, customer);
        call.name = str_field(&body, "name").map(str::to_owned);
        call.assistant_id = assistant_id;
        call.assistant = assistant;
        call.inline_assistant = inline;
        call.overrides = overrides.map(Value::Object);
        call.bypass = bypass;
        call.variables.extend(variables);
        if bypass {
            call.provider_details = Some(json!({
                "to": call.customer_number(),
                "from": number.number(),
                "twiml": self.stream_twiml(&id),
            }));
        }
        self.vapi.calls.insert(id.clone(), call);
        self.transition(
            Entity::VapiCall(id.clone()),
            "none",
            "queued",
            Some(if bypass { "POST /call (bypass)" } else { "POST /call" }),
        );
        if bypass {
            let wait = SimDuration::from_secs_f64(self.vapi.defaults.bypass_connect_timeout_s);
            self.schedule(wait, Event::BypassDeadline(id.clone()));
        } else {
            self.place_outbound(&id);
        }
        Ok(self.call_json(&id))
    }

    /// The assistant a new call runs: `assistantId`, the inline `assistant`, or the number's.
    fn resolve_assistant(
        &self,
        body: &Map<String, Value>,
        number: &PhoneNumber,
    ) -> Result<Resolved, VapiError> {
        if let Some(Value::Object(inline)) = body.get("assistant") {
            check_properties(inline, ASSISTANT_PROPERTIES, "assistant.")?;
            check_transfer_modes(inline, "assistant.")?;
            return Ok((None, Some(Value::Object(inline.clone())), inline.clone()));
        }
        let id = str_field(body, "assistantId").or_else(|| str_field(&number.body, "assistantId"));
        match id {
            Some(id) => {
                let assistant = self.vapi.assistants.get(id).ok_or_else(|| {
                    VapiError::bad_request(format!("Couldn't Get Assistant. Assistant {id} not found"))
                })?;
                Ok((Some(id.to_owned()), None, assistant.body.clone()))
            }
            None => Err(VapiError::bad_request(
                "Couldn't Get Assistant. Need Either `assistant` Or `assistantId`.",
            )),
        }
    }

    /// The TwiML that connects a Twilio leg to a call's stream. The exact text Vapi returns is
    /// UNCONFIRMED; this is the shape every source agrees on (reference §2).
    pub(crate) fn stream_twiml(&self, id: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="{}/{id}/transport"/></Connect></Response>"#,
            self.vapi.ws_url()
        )
    }

    pub fn get_vapi_call(&self, id: &str) -> Result<Value, VapiError> {
        if self.vapi.calls.contains_key(id) {
            Ok(self.call_json(id))
        } else {
            Err(VapiError::not_found("Call not found"))
        }
    }

    pub fn list_vapi_calls(&self, query: &ListQuery) -> Result<Value, VapiError> {
        let filter = Filter::parse(query, self)?;
        let get = |name: &str| query.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let (id, assistant, number) = (get("id"), get("assistantId"), get("phoneNumberId"));
        Ok(Value::Array(
            self.vapi
                .calls
                .values()
                .rev()
                .filter(|c| id.is_none_or(|id| c.id == id))
                .filter(|c| assistant.is_none_or(|a| c.assistant_id.as_deref() == Some(a)))
                .filter(|c| number.is_none_or(|n| c.phone_number_id.as_deref() == Some(n)))
                .filter(|c| filter.keeps(c.created_at, c.updated_at))
                .take(filter.limit)
                .map(|c| self.call_json(&c.id))
                .collect(),
        ))
    }

    /// `PATCH /call/{id}`: only `name` (`UpdateCallDTO`).
    pub fn update_vapi_call(&mut self, id: &str, body: Value) -> Result<Value, VapiError> {
        let body = object(body)?;
        check_properties(&body, &["name"], "")?;
        let name = match body.get("name") {
            None => None,
            Some(Value::String(s)) if s.chars().count() <= 40 => Some(s.clone()),
            Some(Value::String(_)) => {
                return Err(VapiError::invalid(vec![
                    "name must be shorter than or equal to 40 characters".into(),
                ]));
            }
            Some(_) => return Err(VapiError::invalid(vec!["name must be a string".into()])),
        };
        let now = self.now;
        let call = self.vapi.calls.get_mut(id).ok_or_else(|| VapiError::not_found("Call not found"))?;
        if name.is_some() {
            call.name = name;
        }
        call.updated_at = now;
        Ok(self.call_json(id))
    }

    /// `DELETE /call/{id}`: deletes the call's data (it does not hang up; Live Call Control does).
    pub fn delete_vapi_call(&mut self, id: &str) -> Result<Value, VapiError> {
        let json = self.get_vapi_call(id)?;
        if !self.vapi.calls[id].is_ended() {
            return Err(VapiError::bad_request(
                "Call is still in progress; end it with Live Call Control first",
            ));
        }
        self.vapi.calls.shift_remove(id);
        Ok(json)
    }

    pub(crate) fn call_json(&self, id: &str) -> Value {
        self.vapi.calls[id].to_json(&self.vapi.org_id, self.epoch, &self.vapi.public_url)
    }
}

/// `i64::gt` and friends.
type Compare = fn(&i64, &i64) -> bool;

/// The paging and date filters every list route takes.
struct Filter {
    limit: usize,
    /// (on `createdAt` rather than `updatedAt`, the comparison, the bound in Unix milliseconds).
    bounds: Vec<(bool, Compare, i64)>,
    epoch: crate::time::Epoch,
}

impl Filter {
    fn parse(query: &ListQuery, world: &World) -> Result<Filter, VapiError> {
        let mut filter = Filter { limit: 100, bounds: Vec::new(), epoch: world.epoch };
        let mut errors = Vec::new();
        for (name, value) in &query.pairs {
            match name.as_str() {
                "limit" => match value.parse::<f64>() {
                    Ok(n) if (0.0..=1000.0).contains(&n) => filter.limit = n as usize,
                    Ok(n) if n > 1000.0 => errors.push("limit must not be greater than 1000".to_owned()),
                    Ok(_) => errors.push("limit must not be less than 0".to_owned()),
                    Err(_) => errors
                        .push("limit must be a number conforming to the specified constraints".to_owned()),
                },
                name if name.starts_with("createdAt") || name.starts_with("updatedAt") => {
                    let (created, op) = name.split_at(9);
                    let op: Compare = match op {
                        "Gt" => i64::gt,
                        "Lt" => i64::lt,
                        "Ge" => i64::ge,
                        "Le" => i64::le,
                        _ => continue,
                    };
                    match time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339) {
                        Ok(at) => filter.bounds.push((
                            created == "createdAt",
                            op,
                            (at.unix_timestamp_nanos() / 1_000_000) as i64,
                        )),
                        Err(_) => errors.push(format!("{name} must be a valid ISO 8601 date string")),
                    }
                }
                _ => {}
            }
        }
        if errors.is_empty() { Ok(filter) } else { Err(VapiError::invalid(errors)) }
    }

    fn keeps(&self, created: SimInstant, updated: SimInstant) -> bool {
        self.bounds.iter().all(|&(on_created, op, bound)| {
            op(&self.epoch.unix_millis(if on_created { created } else { updated }), &bound)
        })
    }
}
