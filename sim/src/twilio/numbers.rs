//! IncomingPhoneNumbers: enough of the resource for an account to own numbers and point their voice
//! webhooks at an orchestrator (create, fetch, list, update, delete).

use crate::ids::{AccountSid, PhoneNumberSid};
use crate::twilio::engine::IncomingNumber;
use crate::twilio::errors::TwilioError;
use crate::twilio::model::Method;
use crate::twilio::wire::{self, FormParams, IncomingPhoneNumberResource, ListPage, PageRequest};
use crate::world::World;

impl World {
    /// `POST /IncomingPhoneNumbers.json`: buys `PhoneNumber`, or a number in `AreaCode`.
    pub fn create_number(
        &mut self,
        account: AccountSid,
        form: &FormParams,
    ) -> Result<IncomingPhoneNumberResource, TwilioError> {
        let number = match (form.get("PhoneNumber"), form.get("AreaCode")) {
            (Some(n), _) if wire::is_e164(n) => n.to_owned(),
            (Some(n), _) => return Err(TwilioError::phone_number_not_valid(n)),
            (None, Some(area)) if area.len() == 3 && area.bytes().all(|b| b.is_ascii_digit()) => {
                let mut candidate = 0u64;
                loop {
                    let n = format!("+1{area}555{:04}", (self.mint.raw() as u64 + candidate) % 10_000);
                    if !self.twilio.numbers.values().any(|x| x.phone_number == n) {
                        break n;
                    }
                    candidate += 1;
                    if candidate > 10_000 {
                        return Err(TwilioError::new(
                            400,
                            21452,
                            format!("No phone numbers found in area code {area}"),
                        ));
                    }
                }
            }
            (None, Some(area)) => return Err(TwilioError::invalid_parameter("AreaCode", area)),
            // Twilio 21421: "PhoneNumber is invalid"; a create needs PhoneNumber or AreaCode.
            (None, None) => {
                return Err(TwilioError::new(400, 21421, "A 'PhoneNumber' or 'AreaCode' is required"));
            }
        };
        if self.twilio.numbers.values().any(|n| n.phone_number == number) {
            // UNCONFIRMED: Twilio 21422 "PhoneNumber is not available".
            return Err(TwilioError::new(400, 21422, format!("Phone number {number} is not available")));
        }
        let sid = self.mint.phone_number();
        let mut n = IncomingNumber::new(sid, account, number, self.now);
        apply_number_params(&mut n, form)?;
        self.twilio.numbers.insert(sid, n);
        self.note(format!("number {sid} bought by {account}"));
        Ok(self.number_resource(sid).expect("the number was just created"))
    }

    /// `POST /IncomingPhoneNumbers/{Sid}.json`.
    pub fn update_number(
        &mut self,
        account: AccountSid,
        sid: PhoneNumberSid,
        form: &FormParams,
    ) -> Result<IncomingPhoneNumberResource, TwilioError> {
        let now = self.now;
        let n = self
            .twilio
            .numbers
            .get_mut(&sid)
            .filter(|n| n.account == account)
            .ok_or_else(|| TwilioError::not_found(&wire::incoming_phone_number_uri(account, sid)))?;
        let mut updated = n.clone();
        apply_number_params(&mut updated, form)?;
        updated.updated_at = now;
        *n = updated;
        Ok(self.number_resource(sid).expect("number exists"))
    }

    pub fn fetch_number(
        &self,
        account: AccountSid,
        sid: PhoneNumberSid,
    ) -> Result<IncomingPhoneNumberResource, TwilioError> {
        self.number_resource(sid)
            .filter(|r| r.account_sid == Some(account))
            .ok_or_else(|| TwilioError::not_found(&wire::incoming_phone_number_uri(account, sid)))
    }

    pub fn delete_number(&mut self, account: AccountSid, sid: PhoneNumberSid) -> Result<(), TwilioError> {
        match self.twilio.numbers.get(&sid) {
            Some(n) if n.account == account => {
                self.twilio.numbers.shift_remove(&sid);
                Ok(())
            }
            _ => Err(TwilioError::not_found(&wire::incoming_phone_number_uri(account, sid))),
        }
    }

    /// `GET /IncomingPhoneNumbers.json`, filtered by `PhoneNumber` (a prefix or pattern match in real
    /// Twilio; the fake matches substrings) and `FriendlyName`.
    pub fn list_numbers(
        &self,
        account: AccountSid,
        query: &FormParams,
    ) -> Result<ListPage<IncomingPhoneNumberResource>, TwilioError> {
        let paging = PageRequest::from_params(query)?;
        let records = self
            .twilio
            .numbers
            .values()
            .filter(|n| n.account == account)
            .filter(|n| query.get("PhoneNumber").is_none_or(|p| n.phone_number.contains(p.trim())))
            .filter(|n| query.get("FriendlyName").is_none_or(|f| n.friendly_name == f))
            .filter_map(|n| self.number_resource(n.sid))
            .collect();
        Ok(wire::paginate(
            records,
            &wire::incoming_phone_numbers_path(account),
            &wire::filters_query(query),
            &paging,
        ))
    }

    pub fn number_resource(&self, sid: PhoneNumberSid) -> Option<IncomingPhoneNumberResource> {
        let n = self.twilio.numbers.get(&sid)?;
        let mut r = IncomingPhoneNumberResource::new(n.account, sid, &n.phone_number);
        r.date_created = Some(self.epoch.rfc2822(n.created_at));
        r.date_updated = Some(self.epoch.rfc2822(n.updated_at));
        r.friendly_name = Some(n.friendly_name.clone());
        r.voice_url = n.voice_url.clone();
        r.voice_method = Some(n.voice_method);
        r.voice_fallback_url = n.voice_fallback_url.clone();
        r.voice_fallback_method = Some(n.voice_fallback_method);
        r.status_callback = n.status_callback.clone();
        r.status_callback_method = Some(n.status_callback_method);
        Some(r)
    }
}

fn apply_number_params(n: &mut IncomingNumber, form: &FormParams) -> Result<(), TwilioError> {
    if let Some(name) = form.get("FriendlyName") {
        n.friendly_name = name.chars().take(64).collect();
    }
    // An empty URL clears it, as the console does.
    let url = |name: &str| -> Result<Option<Option<String>>, TwilioError> {
        match form.get(name) {
            None => Ok(None),
            Some("") => Ok(Some(None)),
            Some(_) => Ok(Some(form.get_url(name)?.map(str::to_owned))),
        }
    };
    if let Some(u) = url("VoiceUrl")? {
        n.voice_url = u;
    }
    if let Some(u) = url("VoiceFallbackUrl")? {
        n.voice_fallback_url = u;
    }
    if let Some(u) = url("StatusCallback")? {
        n.status_callback = u;
    }
    let method = |name: &str| form.get_enum::<Method>(name);
    if let Some(m) = method("VoiceMethod")? {
        n.voice_method = m;
    }
    if let Some(m) = method("VoiceFallbackMethod")? {
        n.voice_fallback_method = m;
    }
    if let Some(m) = method("StatusCallbackMethod")? {
        n.status_callback_method = m;
    }
    Ok(())
}
