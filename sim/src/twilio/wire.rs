//! Twilio's JSON resources, list pages and form parameters, exactly as the spec file writes them.
//!
//! - Resources ([`CallResource`], [`ConferenceResource`], [`ParticipantResource`],
//!   [`IncomingPhoneNumberResource`]) have every property of their OAI schema, in the schema's order.
//!   Nullable properties are `Option`s written as `null`, never omitted (reference §3).
//! - [`ListPage`] is the paging envelope and [`paginate`] the pure paging function (reference §1).
//! - [`FormParams`] parses form bodies and query strings; [`TwilioForm`] and [`TwilioQuery`] are axum
//!   extractors that reject with Twilio's error body, never axum's plain text.
//! - [`formatted`] and [`Endpoint`] render and validate phone numbers.
//!
//! Error bodies live in [`crate::twilio::errors`].

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use axum::extract::{FromRequest, FromRequestParts, Request};
use bytes::Bytes;
use http::header;
use http::request::Parts;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::ids::{AccountSid, CallSid, ConferenceSid, PhoneNumberSid};
use crate::twilio::errors::TwilioError;
use crate::twilio::model::{
    AnsweredBy, CallStatus, ConferenceEndReason, ConferenceStatus, Direction, Method, ParticipantStatus,
};

/// The only API version the fake serves; resources echo it in `api_version`.
pub const API_VERSION: &str = "2010-04-01";

// ---------------------------------------------------------------------------------------------------
// URIs
// ---------------------------------------------------------------------------------------------------

/// `/2010-04-01/Accounts/{account}`: the prefix of every path of the API.
pub fn account_path(account: AccountSid) -> String {
    format!("/{API_VERSION}/Accounts/{account}")
}

/// `/2010-04-01/Accounts/AC…/Calls.json`: the Calls list.
pub fn calls_path(account: AccountSid) -> String {
    format!("{}/Calls.json", account_path(account))
}

/// `/2010-04-01/Accounts/AC…/Calls/CA….json`: a call's `uri`.
pub fn call_uri(account: AccountSid, call: CallSid) -> String {
    format!("{}/Calls/{call}.json", account_path(account))
}

/// `/2010-04-01/Accounts/AC…/Conferences.json`: the Conferences list.
pub fn conferences_path(account: AccountSid) -> String {
    format!("{}/Conferences.json", account_path(account))
}

/// `/2010-04-01/Accounts/AC…/Conferences/CF….json`: a conference's `uri`.
pub fn conference_uri(account: AccountSid, conference: ConferenceSid) -> String {
    format!("{}/Conferences/{conference}.json", account_path(account))
}

/// `/2010-04-01/Accounts/AC…/Conferences/CF…/Participants.json`: a conference's participant list.
pub fn participants_path(account: AccountSid, conference: ConferenceSid) -> String {
    format!("{}/Conferences/{conference}/Participants.json", account_path(account))
}

/// `/2010-04-01/Accounts/AC…/Conferences/CF…/Participants/CA….json`: a participant's `uri`.
pub fn participant_uri(account: AccountSid, conference: ConferenceSid, call: CallSid) -> String {
    format!("{}/Conferences/{conference}/Participants/{call}.json", account_path(account))
}

/// `/2010-04-01/Accounts/AC…/IncomingPhoneNumbers.json`: the account's numbers.
pub fn incoming_phone_numbers_path(account: AccountSid) -> String {
    format!("{}/IncomingPhoneNumbers.json", account_path(account))
}

/// `/2010-04-01/Accounts/AC…/IncomingPhoneNumbers/PN….json`: a number's `uri`.
pub fn incoming_phone_number_uri(account: AccountSid, number: PhoneNumberSid) -> String {
    format!("{}/IncomingPhoneNumbers/{number}.json", account_path(account))
}

// ---------------------------------------------------------------------------------------------------
// Call
// ---------------------------------------------------------------------------------------------------

/// A call as `GET /Calls/{Sid}.json` returns it (OAI `api.v2010.account.call`).
///
/// Dates are RFC 2822 strings (`Epoch::rfc2822`); `duration`, `price` and `queue_time` are strings, as
/// the spec types them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallResource {
    pub sid: Option<CallSid>,
    pub date_created: Option<String>,
    pub date_updated: Option<String>,
    pub parent_call_sid: Option<CallSid>,
    pub account_sid: Option<AccountSid>,
    pub to: Option<String>,
    pub to_formatted: Option<String>,
    pub from: Option<String>,
    pub from_formatted: Option<String>,
    pub phone_number_sid: Option<PhoneNumberSid>,
    pub status: CallStatus,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    /// Whole seconds, as a string; `null` until the call has ended.
    pub duration: Option<String>,
    /// e.g. `"-0.03000"`.
    pub price: Option<String>,
    pub price_unit: Option<String>,
    pub direction: Option<Direction>,
    pub answered_by: Option<AnsweredBy>,
    pub api_version: Option<String>,
    pub forwarded_from: Option<String>,
    /// `GP…`.
    pub group_sid: Option<String>,
    pub caller_name: Option<String>,
    /// Milliseconds, as a string.
    pub queue_time: Option<String>,
    /// `TK…`.
    pub trunk_sid: Option<String>,
    pub uri: Option<String>,
    pub subresource_uris: Option<CallSubresourceUris>,
}

impl CallResource {
    /// A call with its identity, `uri`, `subresource_uris`, `api_version` and `price_unit` filled in and
    /// every other nullable field `null`; the engine sets the rest.
    pub fn new(account: AccountSid, sid: CallSid, status: CallStatus) -> Self {
        CallResource {
            sid: Some(sid),
            date_created: None,
            date_updated: None,
            parent_call_sid: None,
            account_sid: Some(account),
            to: None,
            to_formatted: None,
            from: None,
            from_formatted: None,
            phone_number_sid: None,
            status,
            start_time: None,
            end_time: None,
            duration: None,
            price: None,
            price_unit: Some(String::from("USD")),
            direction: None,
            answered_by: None,
            api_version: Some(String::from(API_VERSION)),
            forwarded_from: None,
            group_sid: None,
            caller_name: None,
            queue_time: None,
            trunk_sid: None,
            uri: Some(call_uri(account, sid)),
            subresource_uris: Some(CallSubresourceUris::new(account, sid)),
        }
    }

    /// Sets `to` and `to_formatted` together.
    pub fn set_to(&mut self, to: &str) {
        self.to = Some(to.to_owned());
        self.to_formatted = Some(formatted(to));
    }

    /// Sets `from` and `from_formatted` together.
    pub fn set_from(&mut self, from: &str) {
        self.from = Some(from.to_owned());
        self.from_formatted = Some(formatted(from));
    }
}

/// A call's `subresource_uris`, in the order of the spec's examples.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSubresourceUris {
    pub notifications: String,
    pub recordings: String,
    pub payments: String,
    pub events: String,
    pub siprec: String,
    pub streams: String,
    pub transcriptions: String,
    pub user_defined_message_subscriptions: String,
    pub user_defined_messages: String,
}

impl CallSubresourceUris {
    /// `…/Calls/CA…/Notifications.json` and its siblings.
    pub fn new(account: AccountSid, call: CallSid) -> Self {
        let base = format!("{}/Calls/{call}", account_path(account));
        let uri = |name: &str| format!("{base}/{name}.json");
        CallSubresourceUris {
            notifications: uri("Notifications"),
            recordings: uri("Recordings"),
            payments: uri("Payments"),
            events: uri("Events"),
            siprec: uri("Siprec"),
            streams: uri("Streams"),
            transcriptions: uri("Transcriptions"),
            user_defined_message_subscriptions: uri("UserDefinedMessageSubscriptions"),
            user_defined_messages: uri("UserDefinedMessages"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Conference
// ---------------------------------------------------------------------------------------------------

/// A conference (OAI `api.v2010.account.conference`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConferenceResource {
    pub account_sid: Option<AccountSid>,
    pub date_created: Option<String>,
    pub date_updated: Option<String>,
    pub api_version: Option<String>,
    pub friendly_name: Option<String>,
    /// `us1`, `ie1`, …
    pub region: Option<String>,
    pub sid: Option<ConferenceSid>,
    pub status: ConferenceStatus,
    pub uri: Option<String>,
    pub subresource_uris: Option<ConferenceSubresourceUris>,
    /// `null` while the conference is not over.
    pub reason_conference_ended: Option<ConferenceEndReason>,
    pub call_sid_ending_conference: Option<CallSid>,
}

impl ConferenceResource {
    /// A conference with identity, name, `uri`s, `api_version` and region `us1` filled in.
    pub fn new(
        account: AccountSid,
        sid: ConferenceSid,
        friendly_name: &str,
        status: ConferenceStatus,
    ) -> Self {
        ConferenceResource {
            account_sid: Some(account),
            date_created: None,
            date_updated: None,
            api_version: Some(String::from(API_VERSION)),
            friendly_name: Some(friendly_name.to_owned()),
            region: Some(String::from("us1")),
            sid: Some(sid),
            status,
            uri: Some(conference_uri(account, sid)),
            subresource_uris: Some(ConferenceSubresourceUris::new(account, sid)),
            reason_conference_ended: None,
            call_sid_ending_conference: None,
        }
    }
}

/// A conference's `subresource_uris`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceSubresourceUris {
    pub participants: String,
    pub recordings: String,
}

impl ConferenceSubresourceUris {
    pub fn new(account: AccountSid, conference: ConferenceSid) -> Self {
        let base = format!("{}/Conferences/{conference}", account_path(account));
        ConferenceSubresourceUris {
            participants: format!("{base}/Participants.json"),
            recordings: format!("{base}/Recordings.json"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Participant
// ---------------------------------------------------------------------------------------------------

/// A conference participant (OAI `api.v2010.account.conference.participant`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParticipantResource {
    pub account_sid: Option<AccountSid>,
    pub call_sid: Option<CallSid>,
    pub label: Option<String>,
    pub call_sid_to_coach: Option<CallSid>,
    pub coaching: Option<bool>,
    pub conference_sid: Option<ConferenceSid>,
    pub date_created: Option<String>,
    pub date_updated: Option<String>,
    pub end_conference_on_exit: Option<bool>,
    pub muted: Option<bool>,
    pub hold: Option<bool>,
    pub start_conference_on_enter: Option<bool>,
    pub status: ParticipantStatus,
    /// Milliseconds as a string; "only in the response to a create" (reference §3), else `null`.
    pub queue_time: Option<String>,
    pub uri: Option<String>,
}

impl ParticipantResource {
    /// A participant with Twilio's defaults: not coaching, not muted, not on hold,
    /// `start_conference_on_enter` true, `end_conference_on_exit` false.
    pub fn new(
        account: AccountSid,
        conference: ConferenceSid,
        call: CallSid,
        status: ParticipantStatus,
    ) -> Self {
        ParticipantResource {
            account_sid: Some(account),
            call_sid: Some(call),
            label: None,
            call_sid_to_coach: None,
            coaching: Some(false),
            conference_sid: Some(conference),
            date_created: None,
            date_updated: None,
            end_conference_on_exit: Some(false),
            muted: Some(false),
            hold: Some(false),
            start_conference_on_enter: Some(true),
            status,
            queue_time: None,
            uri: Some(participant_uri(account, conference, call)),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// IncomingPhoneNumber
// ---------------------------------------------------------------------------------------------------

/// A number the account owns (OAI `api.v2010.account.incoming_phone_number`).
///
/// SIDs of resources the fake does not model (`AD…`, `RI…`, `AP…`, `TK…`, `BU…`) are plain strings:
/// the spec's own examples put `""` in some of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncomingPhoneNumberResource {
    pub account_sid: Option<AccountSid>,
    pub address_sid: Option<String>,
    pub address_requirements: Option<AddressRequirement>,
    pub api_version: Option<String>,
    pub beta: Option<bool>,
    pub capabilities: Option<PhoneNumberCapabilities>,
    pub date_created: Option<String>,
    pub date_updated: Option<String>,
    pub friendly_name: Option<String>,
    pub identity_sid: Option<String>,
    pub phone_number: Option<String>,
    pub origin: Option<String>,
    pub sid: Option<PhoneNumberSid>,
    pub sms_application_sid: Option<String>,
    pub sms_fallback_method: Option<Method>,
    pub sms_fallback_url: Option<String>,
    pub sms_method: Option<Method>,
    pub sms_url: Option<String>,
    pub status_callback: Option<String>,
    pub status_callback_method: Option<Method>,
    pub trunk_sid: Option<String>,
    pub uri: Option<String>,
    pub voice_receive_mode: Option<VoiceReceiveMode>,
    pub voice_application_sid: Option<String>,
    pub voice_caller_id_lookup: Option<bool>,
    pub voice_fallback_method: Option<Method>,
    pub voice_fallback_url: Option<String>,
    pub voice_method: Option<Method>,
    pub voice_url: Option<String>,
    pub emergency_status: Option<EmergencyStatus>,
    pub emergency_address_sid: Option<String>,
    pub emergency_address_status: Option<EmergencyAddressStatus>,
    pub bundle_sid: Option<String>,
    /// e.g. `in-use`.
    pub status: Option<String>,
    /// e.g. `local`, `mobile`, `toll-free`.
    #[serde(rename = "type")]
    pub number_type: Option<String>,
}

impl IncomingPhoneNumberResource {
    /// A voice-capable local US number as Twilio sells it, with its voice URL unset.
    pub fn new(account: AccountSid, sid: PhoneNumberSid, phone_number: &str) -> Self {
        IncomingPhoneNumberResource {
            account_sid: Some(account),
            address_sid: None,
            address_requirements: Some(AddressRequirement::None),
            api_version: Some(String::from(API_VERSION)),
            beta: Some(false),
            capabilities: Some(PhoneNumberCapabilities { mms: true, sms: true, voice: true, fax: false }),
            date_created: None,
            date_updated: None,
            friendly_name: Some(formatted(phone_number)),
            identity_sid: None,
            phone_number: Some(phone_number.to_owned()),
            origin: Some(String::from("twilio")),
            sid: Some(sid),
            sms_application_sid: None,
            sms_fallback_method: Some(Method::Post),
            sms_fallback_url: None,
            sms_method: Some(Method::Post),
            sms_url: None,
            status_callback: None,
            status_callback_method: Some(Method::Post),
            trunk_sid: None,
            uri: Some(incoming_phone_number_uri(account, sid)),
            voice_receive_mode: Some(VoiceReceiveMode::Voice),
            voice_application_sid: None,
            voice_caller_id_lookup: Some(false),
            voice_fallback_method: Some(Method::Post),
            voice_fallback_url: None,
            voice_method: Some(Method::Post),
            voice_url: None,
            emergency_status: Some(EmergencyStatus::Inactive),
            emergency_address_sid: None,
            emergency_address_status: Some(EmergencyAddressStatus::Unregistered),
            bundle_sid: None,
            status: Some(String::from("in-use")),
            number_type: Some(String::from("local")),
        }
    }
}

/// A number's `capabilities`, in the schema's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumberCapabilities {
    pub mms: bool,
    pub sms: bool,
    pub voice: bool,
    pub fax: bool,
}

/// `address_requirements` (OAI `incoming_phone_number_enum_address_requirement`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressRequirement {
    None,
    Any,
    Local,
    Foreign,
}

/// `voice_receive_mode` (OAI `incoming_phone_number_enum_voice_receive_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoiceReceiveMode {
    Voice,
    Fax,
}

/// `emergency_status` (OAI `incoming_phone_number_enum_emergency_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EmergencyStatus {
    Active,
    Inactive,
}

/// `emergency_address_status` (OAI `incoming_phone_number_enum_emergency_address_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmergencyAddressStatus {
    Registered,
    Unregistered,
    PendingRegistration,
    RegistrationFailure,
    PendingUnregistration,
    UnregistrationFailure,
}

// ---------------------------------------------------------------------------------------------------
// List pages
// ---------------------------------------------------------------------------------------------------

/// A resource that can be listed: the key its page puts the records under, and the SID its page tokens
/// name.
pub trait ListRecord: Serialize {
    /// `calls`, `conferences`, `participants`, `incoming_phone_numbers`.
    const RECORDS_KEY: &'static str;

    /// The SID written after `PA`/`PB` in page tokens (a participant's call SID).
    fn token_sid(&self) -> String;
}

fn sid_text<T: fmt::Display>(sid: Option<T>) -> String {
    sid.map(|s| s.to_string()).unwrap_or_default()
}

impl ListRecord for CallResource {
    const RECORDS_KEY: &'static str = "calls";
    fn token_sid(&self) -> String {
        sid_text(self.sid)
    }
}

impl ListRecord for ConferenceResource {
    const RECORDS_KEY: &'static str = "conferences";
    fn token_sid(&self) -> String {
        sid_text(self.sid)
    }
}

impl ListRecord for ParticipantResource {
    const RECORDS_KEY: &'static str = "participants";
    fn token_sid(&self) -> String {
        sid_text(self.call_sid)
    }
}

impl ListRecord for IncomingPhoneNumberResource {
    const RECORDS_KEY: &'static str = "incoming_phone_numbers";
    fn token_sid(&self) -> String {
        sid_text(self.sid)
    }
}

/// One page of a list, serialized to exactly Twilio's keys: the META_KEYS both SDKs skip, plus the one
/// records key they look for (an extra key breaks twilio-python, reference §1).
#[derive(Clone, Debug, PartialEq)]
pub struct ListPage<T> {
    pub first_page_uri: String,
    pub end: u64,
    pub previous_page_uri: Option<String>,
    pub uri: String,
    pub page_size: u32,
    pub start: u64,
    pub next_page_uri: Option<String>,
    pub page: u64,
    pub records: Vec<T>,
}

impl<T: ListRecord> Serialize for ListPage<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Key order as real Twilio writes it; clients look keys up by name.
        let mut map = serializer.serialize_map(Some(9))?;
        map.serialize_entry("first_page_uri", &self.first_page_uri)?;
        map.serialize_entry("end", &self.end)?;
        map.serialize_entry("previous_page_uri", &self.previous_page_uri)?;
        map.serialize_entry("uri", &self.uri)?;
        map.serialize_entry("page_size", &self.page_size)?;
        map.serialize_entry("start", &self.start)?;
        map.serialize_entry("next_page_uri", &self.next_page_uri)?;
        map.serialize_entry("page", &self.page)?;
        map.serialize_entry(T::RECORDS_KEY, &self.records)?;
        map.end()
    }
}

/// The paging parameters of a list request: `PageSize`, `Page` and `PageToken`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub page_size: u32,
    pub page: u64,
    pub page_token: Option<String>,
}

impl PageRequest {
    pub const DEFAULT_PAGE_SIZE: u32 = 50;
    pub const PAGE_SIZES: RangeInclusive<u32> = 1..=1000;
    /// The names of the paging parameters, which [`filters_query`] leaves out.
    pub const PARAMS: [&'static str; 3] = ["PageSize", "Page", "PageToken"];

    /// Reads the paging parameters; a `PageSize` outside 1..=1000 or a `Page` that is not a number is an
    /// error body.
    pub fn from_params(params: &FormParams) -> Result<Self, TwilioError> {
        let page_size = match params.get("PageSize") {
            None => Self::DEFAULT_PAGE_SIZE,
            Some(raw) => raw
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| Self::PAGE_SIZES.contains(n))
                .ok_or_else(|| TwilioError::invalid_page_size(raw))?,
        };
        let page = match params.get("Page") {
            None => 0,
            Some(raw) => {
                raw.trim().parse::<u64>().map_err(|_| TwilioError::invalid_parameter("Page", raw))?
            }
        };
        let page_token = params.get("PageToken").filter(|t| !t.is_empty()).map(str::to_owned);
        Ok(PageRequest { page_size, page, page_token })
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { page_size: Self::DEFAULT_PAGE_SIZE, page: 0, page_token: None }
    }
}

/// The list filters of a request, re-encoded in their order without the paging parameters: the part of
/// a page URI before `PageSize=`.
pub fn filters_query(params: &FormParams) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params.pairs() {
        if !PageRequest::PARAMS.contains(&name.as_str()) {
            query.append_pair(name, value);
        }
    }
    query.finish()
}

/// Cuts one page out of `records` (already filtered and in list order).
///
/// `path` is the list path (`/2010-04-01/Accounts/AC…/Calls.json`) and `filters` the encoded filter
/// query ([`filters_query`]). Page URIs are relative, as Twilio's are: the SDKs join them to their
/// domain base URL, so they reach the fake.
///
/// Twilio's tokens are `PA<sid>` ("after this record", on `next_page_uri`) and `PB<sid>` ("before this
/// record", on `previous_page_uri`), so a page stays put when records are added meanwhile. A token whose
/// record is unknown (or a request without a token) falls back to `Page × PageSize`.
pub fn paginate<T: ListRecord>(
    records: Vec<T>,
    path: &str,
    filters: &str,
    request: &PageRequest,
) -> ListPage<T> {
    let size = request.page_size.max(1) as usize;
    let nominal = usize::try_from(request.page).unwrap_or(usize::MAX).saturating_mul(size);
    let position = |sid: &str| records.iter().position(|r| r.token_sid() == sid);
    let offset = match request.page_token.as_deref() {
        Some(token) if token.starts_with("PA") => position(&token[2..]).map(|i| i + 1),
        Some(token) if token.starts_with("PB") => position(&token[2..]).map(|i| i.saturating_sub(size)),
        _ => None,
    }
    .unwrap_or(nominal)
    .min(records.len());
    let more_after = offset + size < records.len();
    let page: Vec<T> = records.into_iter().skip(offset).take(size).collect();

    let page_uri = |page: u64, token: Option<String>| {
        let mut uri = String::from(path);
        uri.push('?');
        if !filters.is_empty() {
            uri.push_str(filters);
            uri.push('&');
        }
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("PageSize", &request.page_size.to_string());
        query.append_pair("Page", &page.to_string());
        if let Some(token) = token {
            query.append_pair("PageToken", &token);
        }
        uri.push_str(&query.finish());
        uri
    };

    // Saturating: `Page` is any u64 a request names, and a token can put records on a page that far.
    let start = request.page.saturating_mul(u64::from(request.page_size));
    let end = start.saturating_add((page.len() as u64).saturating_sub(1));
    let next_page_uri = match page.last() {
        Some(last) if more_after => {
            Some(page_uri(request.page.saturating_add(1), Some(format!("PA{}", last.token_sid()))))
        }
        _ => None,
    };
    let previous_page_uri = (request.page > 0)
        .then(|| page_uri(request.page - 1, page.first().map(|first| format!("PB{}", first.token_sid()))));
    ListPage {
        first_page_uri: page_uri(0, None),
        end,
        previous_page_uri,
        uri: page_uri(request.page, request.page_token.clone()),
        page_size: request.page_size,
        start,
        next_page_uri,
        page: request.page,
        records: page,
    }
}

// ---------------------------------------------------------------------------------------------------
// Form parameters
// ---------------------------------------------------------------------------------------------------

/// Why a form body or query string could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("`%` at byte {at} is not followed by two hex digits")]
    BadPercentEncoding { at: usize },
    #[error("the value of `{name}` is not UTF-8 once percent-decoded")]
    NotUtf8 { name: String },
}

impl From<FormError> for TwilioError {
    fn from(error: FormError) -> Self {
        TwilioError::malformed_request(&error.to_string())
    }
}

/// The parameters of an `application/x-www-form-urlencoded` body or a query string: every pair, in
/// order, names and values percent-decoded (`+` is a space).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FormParams {
    pairs: Vec<(String, String)>,
}

impl FormParams {
    /// Decodes `input` strictly: a `%` must start a two-digit escape and every name and value must be
    /// UTF-8, where `form_urlencoded` alone would silently keep or replace bad bytes.
    pub fn parse(input: &[u8]) -> Result<Self, FormError> {
        let mut i = 0;
        while let Some(rel) = input[i..].iter().position(|&b| b == b'%') {
            let at = i + rel;
            let hex = input.get(at + 1..at + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return Err(FormError::BadPercentEncoding { at });
            }
            i = at + 3;
        }
        let mut pairs = Vec::new();
        for piece in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match piece.iter().position(|&b| b == b'=') {
                Some(eq) => (&piece[..eq], &piece[eq + 1..]),
                None => (piece, &b""[..]),
            };
            let name = decode_component(name).ok_or_else(|| FormError::NotUtf8 {
                name: String::from_utf8_lossy(name).chars().take(64).collect(),
            })?;
            let value = decode_component(value).ok_or_else(|| FormError::NotUtf8 { name: name.clone() })?;
            pairs.push((name, value));
        }
        Ok(FormParams { pairs })
    }

    /// Parameters from pairs, e.g. for tests and in-memory webhooks.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        FormParams { pairs: pairs.into_iter().map(|(n, v)| (n.into(), v.into())).collect() }
    }

    /// Every pair, in the order sent.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    /// The first value of `name`.
    // UNCONFIRMED: which of several values of a scalar parameter Twilio uses; the SDKs never repeat one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a list parameter such as `StatusCallbackEvent`. The SDKs repeat the key; the OAI
    /// descriptions say "separate multiple values with a space"; both are accepted, and mixed.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(n, _)| n == name).flat_map(|(_, v)| v.split_whitespace()).collect()
    }

    /// A `true`/`false` parameter (any case); anything else is a 20001 error naming the parameter.
    pub fn get_bool(&self, name: &str) -> Result<Option<bool>, TwilioError> {
        self.get(name)
            .map(|raw| {
                crate::twilio::model::parse_bool(raw.trim())
                    .ok_or_else(|| TwilioError::invalid_parameter(name, raw))
            })
            .transpose()
    }

    /// A boolean read the way UpdateParticipant reads `Muted`: "Anything value other than `true` or
    /// `false` is interpreted as `false`" (OAI).
    pub fn get_bool_lenient(&self, name: &str) -> Option<bool> {
        self.get(name).map(|raw| raw.trim().eq_ignore_ascii_case("true"))
    }

    /// A whole number within `range` (e.g. `Timeout` in 1..=600).
    pub fn get_u32_in(&self, name: &str, range: RangeInclusive<u32>) -> Result<Option<u32>, TwilioError> {
        self.get(name)
            .map(|raw| {
                raw.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| TwilioError::invalid_parameter(name, raw))
            })
            .transpose()
    }

    /// A value of a wire enum (`Method`, `CallStatus`, `AmdMode`, …).
    pub fn get_enum<T: FromStr>(&self, name: &str) -> Result<Option<T>, TwilioError> {
        self.get(name)
            .map(|raw| raw.trim().parse::<T>().map_err(|_| TwilioError::invalid_parameter(name, raw)))
            .transpose()
    }

    /// Every value of a list parameter parsed as a wire enum (see [`FormParams::get_all`]).
    pub fn get_all_enum<T: FromStr>(&self, name: &str) -> Result<Vec<T>, TwilioError> {
        self.get_all(name)
            .into_iter()
            .map(|raw| raw.parse::<T>().map_err(|_| TwilioError::invalid_parameter(name, raw)))
            .collect()
    }

    /// A URL parameter (`Url`, `StatusCallback`, `FallbackUrl`, …): an absolute http(s) URL, else a 21205
    /// error. An empty value counts as absent; read `WaitUrl` with [`FormParams::get`], where `''` means
    /// silence.
    pub fn get_url(&self, name: &str) -> Result<Option<&str>, TwilioError> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(None),
            Some(url) if is_absolute_http_url(url) => Ok(Some(url)),
            Some(url) => Err(TwilioError::invalid_url(name, url)),
        }
    }
}

fn decode_component(raw: &[u8]) -> Option<String> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(raw.get(i + 1..i + 3)?).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    String::from_utf8(bytes).ok()
}

/// Whether `url` is an absolute `http`/`https` URL with a plausible host, as Twilio requires of every
/// URL parameter.
pub fn is_absolute_http_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else { return false };
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return false;
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((v6, after))
                if !v6.is_empty() && v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') =>
            {
                (v6, after.strip_prefix(':'))
            }
            _ => return false,
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let is_ipv6 = host.contains(':');
    let host_ok = is_ipv6
        || (!host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    host_ok && port_ok
}

fn form_content_type(headers: &http::HeaderMap) -> Result<(), TwilioError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(()) };
    let mime = value.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim();
    if mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(())
    } else {
        // UNCONFIRMED: real Twilio's answer to a non-form body; the SDKs always send a form.
        Err(TwilioError::malformed_request(&format!(
            "expected an application/x-www-form-urlencoded body, got {mime}"
        )))
    }
}

/// The form body of a POST, as an axum extractor. Malformed input (wrong content type, bad
/// percent-encoding, non-UTF-8, body too large) is rejected with a Twilio error body, never with axum's
/// plain-text rejection. A missing `Content-Type` is accepted: it parses as a form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TwilioForm(pub FormParams);

impl<S: Send + Sync> FromRequest<S> for TwilioForm {
    type Rejection = TwilioError;

    async fn from_request(request: Request, state: &S) -> Result<Self, TwilioError> {
        form_content_type(request.headers())?;
        let body = Bytes::from_request(request, state).await.map_err(|rejection| {
            let mut error = TwilioError::malformed_request(&rejection.body_text().to_lowercase());
            error.status = rejection.status().as_u16();
            error
        })?;
        Ok(TwilioForm(FormParams::parse(&body)?))
    }
}

/// The query string of a request (list filters and paging), parsed like a form body and rejected the
/// same way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TwilioQuery(pub FormParams);

impl<S: Send + Sync> FromRequestParts<S> for TwilioQuery {
    type Rejection = TwilioError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, TwilioError> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(TwilioQuery(FormParams::parse(query.as_bytes())?))
    }
}

// ---------------------------------------------------------------------------------------------------
// Phone numbers
// ---------------------------------------------------------------------------------------------------

/// How Twilio renders a number in `to_formatted`/`from_formatted` and a number's `friendly_name`:
/// `+14158675309` → `(415) 867-5309` for NANP numbers; anything else unchanged.
pub fn formatted(number: &str) -> String {
    match number.strip_prefix("+1") {
        Some(n) if n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit()) => {
            format!("({}) {}-{}", &n[..3], &n[3..6], &n[6..])
        }
        _ => number.to_owned(),
    }
}

/// Whether `s` is an E.164 number: `+`, then 8 to 15 digits, the first not 0.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else { return false };
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

/// A `To`/`From` endpoint as the spec's endpoint type allows: an E.164 number, `client:name` or
/// `sip:…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Phone(String),
    Client(String),
    Sip(String),
}

impl Endpoint {
    /// The endpoint `s` names, or `None` when Twilio would answer 21211 (`To`) or 21212 (`From`).
    pub fn parse(s: &str) -> Option<Endpoint> {
        let s = s.trim();
        let prefixed = |prefix: &str| {
            s.get(..prefix.len()).filter(|p| p.eq_ignore_ascii_case(prefix)).map(|_| &s[prefix.len()..])
        };
        if let Some(name) = prefixed("client:") {
            (!name.is_empty()).then(|| Endpoint::Client(name.to_owned()))
        } else if let Some(rest) = prefixed("sip:") {
            (!rest.is_empty() && !rest.starts_with('@')).then(|| Endpoint::Sip(s.to_owned()))
        } else {
            is_e164(s).then(|| Endpoint::Phone(s.to_owned()))
        }
    }

    pub fn is_phone(&self) -> bool {
        matches!(self, Endpoint::Phone(_))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Phone(n) => f.write_str(n),
            Endpoint::Client(name) => write!(f, "client:{name}"),
            Endpoint::Sip(uri) => f.write_str(uri),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountSid {
        "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap()
    }

    fn call_sid(n: u128) -> CallSid {
        CallSid::from_u128(n)
    }

    fn conference() -> ConferenceSid {
        "CFaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap()
    }

    fn calls(n: u128) -> Vec<CallResource> {
        (1..=n).map(|i| CallResource::new(account(), call_sid(i), CallStatus::Completed)).collect()
    }

    mod resources {
        use super::*;

        #[test]
        fn a_new_call_serializes_every_property_in_spec_order_with_nulls() {
            let mut call = CallResource::new(account(), call_sid(0xaa), CallStatus::Queued);
            call.set_to("+14158675309");
            call.set_from("client:alice");
            call.direction = Some(Direction::OutboundApi);
            call.date_created = Some(String::from("Thu, 01 Jan 2026 00:00:00 +0000"));
            let json = serde_json::to_string_pretty(&call).unwrap();
            let a = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls/CA000000000000000000000000000000aa";
            let expected = format!(
                r#"{{
  "sid": "CA000000000000000000000000000000aa",
  "date_created": "Thu, 01 Jan 2026 00:00:00 +0000",
  "date_updated": null,
  "parent_call_sid": null,
  "account_sid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "to": "+14158675309",
  "to_formatted": "(415) 867-5309",
  "from": "client:alice",
  "from_formatted": "client:alice",
  "phone_number_sid": null,
  "status": "queued",
  "start_time": null,
  "end_time": null,
  "duration": null,
  "price": null,
  "price_unit": "USD",
  "direction": "outbound-api",
  "answered_by": null,
  "api_version": "2010-04-01",
  "forwarded_from": null,
  "group_sid": null,
  "caller_name": null,
  "queue_time": null,
  "trunk_sid": null,
  "uri": "{a}.json",
  "subresource_uris": {{
    "notifications": "{a}/Notifications.json",
    "recordings": "{a}/Recordings.json",
    "payments": "{a}/Payments.json",
    "events": "{a}/Events.json",
    "siprec": "{a}/Siprec.json",
    "streams": "{a}/Streams.json",
    "transcriptions": "{a}/Transcriptions.json",
    "user_defined_message_subscriptions": "{a}/UserDefinedMessageSubscriptions.json",
    "user_defined_messages": "{a}/UserDefinedMessages.json"
  }}
}}"#
            );
            assert_eq!(json, expected);
        }

        #[test]
        fn a_conference_writes_null_reason_while_in_progress() {
            let conf = ConferenceResource::new(account(), conference(), "room", ConferenceStatus::InProgress);
            let json = serde_json::to_string(&conf).unwrap();
            let c = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Conferences/CFaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            assert_eq!(
                json,
                format!(
                    r#"{{"account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","date_created":null,"date_updated":null,"api_version":"2010-04-01","friendly_name":"room","region":"us1","sid":"CFaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","status":"in-progress","uri":"{c}.json","subresource_uris":{{"participants":"{c}/Participants.json","recordings":"{c}/Recordings.json"}},"reason_conference_ended":null,"call_sid_ending_conference":null}}"#
                )
            );
        }

        #[test]
        fn a_participant_has_twilio_defaults_and_its_uri_under_the_conference() {
            let p = ParticipantResource::new(account(), conference(), call_sid(1), ParticipantStatus::Queued);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(
                json,
                r#"{"account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","call_sid":"CA00000000000000000000000000000001","label":null,"call_sid_to_coach":null,"coaching":false,"conference_sid":"CFaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","date_created":null,"date_updated":null,"end_conference_on_exit":false,"muted":false,"hold":false,"start_conference_on_enter":true,"status":"queued","queue_time":null,"uri":"/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Conferences/CFaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Participants/CA00000000000000000000000000000001.json"}"#
            );
        }

        #[test]
        fn an_incoming_phone_number_writes_type_and_nested_capabilities() {
            let sid: PhoneNumberSid = "PNaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap();
            let number = IncomingPhoneNumberResource::new(account(), sid, "+18089255327");
            let value = serde_json::to_value(&number).unwrap();
            assert_eq!(
                value["capabilities"],
                serde_json::json!({"mms": true, "sms": true, "voice": true, "fax": false})
            );
            assert_eq!(value["type"], "local");
            assert_eq!(value["friendly_name"], "(808) 925-5327");
            assert_eq!(value["voice_url"], serde_json::Value::Null);
            assert_eq!(value["emergency_address_status"], "unregistered");
            assert_eq!(value["emergency_status"], "Inactive");
            assert_eq!(
                value["uri"],
                "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/IncomingPhoneNumbers/PNaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json"
            );
            assert_eq!(value.as_object().unwrap().len(), 35);
        }
    }

    mod paging {
        use super::*;

        const PATH: &str = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls.json";

        fn request(page_size: u32, page: u64, token: Option<&str>) -> PageRequest {
            PageRequest { page_size, page, page_token: token.map(str::to_owned) }
        }

        fn sids(page: &ListPage<CallResource>) -> Vec<u128> {
            page.records.iter().map(|c| c.sid.unwrap().as_u128()).collect()
        }

        #[test]
        fn the_envelope_has_exactly_the_meta_keys_and_the_records_key() {
            let page = paginate(calls(1), PATH, "", &PageRequest::default());
            let value = serde_json::to_value(&page).unwrap();
            let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                [
                    "first_page_uri",
                    "end",
                    "previous_page_uri",
                    "uri",
                    "page_size",
                    "start",
                    "next_page_uri",
                    "page",
                    "calls"
                ]
            );
        }

        #[test]
        fn an_empty_list_is_one_page_with_start_and_end_zero() {
            let page =
                paginate(Vec::<CallResource>::new(), PATH, "Status=completed", &PageRequest::default());
            assert_eq!((page.start, page.end, page.page, page.page_size), (0, 0, 0, 50));
            assert_eq!(page.uri, format!("{PATH}?Status=completed&PageSize=50&Page=0"));
            assert_eq!(page.first_page_uri, page.uri);
            assert_eq!((page.next_page_uri, page.previous_page_uri), (None, None));
            assert!(page.records.is_empty());
        }

        #[test]
        fn the_first_page_links_to_the_next_with_a_pa_token_of_its_last_record() {
            let page = paginate(calls(5), PATH, "", &request(2, 0, None));
            assert_eq!(sids(&page), [1, 2]);
            assert_eq!((page.start, page.end), (0, 1));
            assert_eq!(page.previous_page_uri, None);
            assert_eq!(
                page.next_page_uri.as_deref(),
                Some(format!("{PATH}?PageSize=2&Page=1&PageToken=PA{}", call_sid(2)).as_str())
            );
        }

        #[test]
        fn a_middle_page_follows_its_token_and_links_both_ways() {
            let token = format!("PA{}", call_sid(2));
            let page = paginate(calls(5), PATH, "To=%2B123", &request(2, 1, Some(&token)));
            assert_eq!(sids(&page), [3, 4]);
            assert_eq!((page.start, page.end, page.page), (2, 3, 1));
            assert_eq!(page.uri, format!("{PATH}?To=%2B123&PageSize=2&Page=1&PageToken={token}"));
            assert_eq!(page.first_page_uri, format!("{PATH}?To=%2B123&PageSize=2&Page=0"));
            assert_eq!(
                page.previous_page_uri,
                Some(format!("{PATH}?To=%2B123&PageSize=2&Page=0&PageToken=PB{}", call_sid(3)))
            );
            assert_eq!(
                page.next_page_uri,
                Some(format!("{PATH}?To=%2B123&PageSize=2&Page=2&PageToken=PA{}", call_sid(4)))
            );
        }

        #[test]
        fn the_last_page_has_no_next_page_uri() {
            let page = paginate(calls(5), PATH, "", &request(2, 2, Some(&format!("PA{}", call_sid(4)))));
            assert_eq!(sids(&page), [5]);
            assert_eq!((page.start, page.end), (4, 4));
            assert_eq!(page.next_page_uri, None);
            assert!(page.previous_page_uri.is_some());
        }

        #[test]
        fn a_full_last_page_has_no_next_page_uri() {
            let page = paginate(calls(4), PATH, "", &request(2, 1, None));
            assert_eq!(sids(&page), [3, 4]);
            assert_eq!(page.next_page_uri, None);
        }

        #[test]
        fn a_pb_token_pages_backwards_from_its_record() {
            let page = paginate(calls(5), PATH, "", &request(2, 0, Some(&format!("PB{}", call_sid(3)))));
            assert_eq!(sids(&page), [1, 2]);
        }

        #[test]
        fn a_page_token_keeps_the_page_stable_when_records_are_inserted_before_it() {
            let mut records = calls(5);
            records.insert(0, CallResource::new(account(), call_sid(99), CallStatus::Queued));
            let page = paginate(records, PATH, "", &request(2, 1, Some(&format!("PA{}", call_sid(2)))));
            assert_eq!(sids(&page), [3, 4]);
        }

        #[test]
        fn an_unknown_token_falls_back_to_page_arithmetic() {
            let page = paginate(calls(5), PATH, "", &request(2, 1, Some("PAnothing")));
            assert_eq!(sids(&page), [3, 4]);
        }

        #[test]
        fn a_page_past_the_end_is_empty_and_links_back() {
            let page = paginate(calls(3), PATH, "", &request(2, 7, None));
            assert!(page.records.is_empty());
            assert_eq!((page.start, page.end), (14, 14));
            assert_eq!(page.next_page_uri, None);
            assert_eq!(page.previous_page_uri, Some(format!("{PATH}?PageSize=2&Page=6")));
        }

        #[test]
        fn page_size_defaults_to_50_and_must_be_within_1_to_1000() {
            let parse = |q: &str| PageRequest::from_params(&FormParams::parse(q.as_bytes()).unwrap());
            assert_eq!(parse("").unwrap(), PageRequest::default());
            assert_eq!(parse("PageSize=1").unwrap().page_size, 1);
            assert_eq!(parse("PageSize=1000&Page=3").unwrap(), request(1000, 3, None));
            for bad in ["PageSize=0", "PageSize=1001", "PageSize=-1", "PageSize=ten", "PageSize="] {
                let error = parse(bad).unwrap_err();
                assert_eq!((error.status, error.code), (400, 20001), "{bad}");
                assert!(error.message.contains("PageSize"), "{bad}: {}", error.message);
            }
            assert_eq!(parse("Page=x").unwrap_err().code, 20001);
        }

        #[test]
        fn filters_are_reencoded_in_order_without_the_paging_params() {
            let params = FormParams::parse(
                b"Status=completed&PageSize=2&To=%2B123456789&StartTime%3E=2008-01-02&Page=1",
            )
            .unwrap();
            assert_eq!(filters_query(&params), "Status=completed&To=%2B123456789&StartTime%3E=2008-01-02");
        }

        #[test]
        fn records_keys_match_the_spec_list_responses() {
            assert_eq!(CallResource::RECORDS_KEY, "calls");
            assert_eq!(ConferenceResource::RECORDS_KEY, "conferences");
            assert_eq!(ParticipantResource::RECORDS_KEY, "participants");
            assert_eq!(IncomingPhoneNumberResource::RECORDS_KEY, "incoming_phone_numbers");
        }
    }

    mod forms {
        use super::*;
        use crate::twilio::model::CallEvent;

        #[test]
        fn pairs_keep_their_order_and_decode_plus_and_percent() {
            let params = FormParams::parse(
                b"To=%2B14158675309&Twiml=%3CResponse%3E%3CSay%3Ehi+there%3C%2FSay%3E%3C%2FResponse%3E&Empty=&Bare",
            )
            .unwrap();
            let names: Vec<&str> = params.pairs().iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["To", "Twiml", "Empty", "Bare"]);
            assert_eq!(params.get("To"), Some("+14158675309"));
            assert_eq!(params.get("Twiml"), Some("<Response><Say>hi there</Say></Response>"));
            assert_eq!(params.get("Empty"), Some(""));
            assert_eq!(params.get("Bare"), Some(""));
            assert_eq!(params.get("to"), None);
        }

        #[test]
        fn list_params_accept_repeated_keys_and_space_separated_values() {
            let repeated =
                FormParams::parse(b"StatusCallbackEvent=initiated&StatusCallbackEvent=ringing").unwrap();
            let spaced = FormParams::parse(b"StatusCallbackEvent=initiated+ringing").unwrap();
            let mixed =
                FormParams::parse(b"StatusCallbackEvent=initiated%20ringing&StatusCallbackEvent=answered")
                    .unwrap();
            assert_eq!(repeated.get_all("StatusCallbackEvent"), ["initiated", "ringing"]);
            assert_eq!(spaced.get_all("StatusCallbackEvent"), ["initiated", "ringing"]);
            assert_eq!(
                mixed.get_all_enum::<CallEvent>("StatusCallbackEvent").unwrap(),
                [CallEvent::Initiated, CallEvent::Ringing, CallEvent::Answered]
            );
            let bad = FormParams::parse(b"StatusCallbackEvent=initiated+hungup").unwrap();
            let error = bad.get_all_enum::<CallEvent>("StatusCallbackEvent").unwrap_err();
            assert_eq!(error.message, "Invalid StatusCallbackEvent: hungup");
        }

        #[test]
        fn typed_getters_name_the_parameter_in_their_errors() {
            let params =
                FormParams::parse(b"Record=TRUE&Muted=yes&Timeout=601&Method=get&Status=done").unwrap();
            assert_eq!(params.get_bool("Record").unwrap(), Some(true));
            assert_eq!(params.get_bool("Absent").unwrap(), None);
            assert_eq!(params.get_bool("Muted").unwrap_err().message, "Invalid Muted: yes");
            assert_eq!(params.get_bool_lenient("Muted"), Some(false));
            assert_eq!(params.get_u32_in("Timeout", 1..=600).unwrap_err().message, "Invalid Timeout: 601");
            assert_eq!(params.get_u32_in("Timeout", 1..=1000).unwrap(), Some(601));
            assert_eq!(params.get_enum::<Method>("Method").unwrap(), Some(Method::Get));
            assert_eq!(params.get_enum::<CallStatus>("Status").unwrap_err().message, "Invalid Status: done");
        }

        #[test]
        fn url_params_must_be_absolute_http_urls() {
            let params = FormParams::parse(
                b"Url=https%3A%2F%2Fexample.com%2Fvoice%3Fa%3D1&StatusCallback=localhost%2Fcb&FallbackUrl=&Bad=ftp%3A%2F%2Fx",
            )
            .unwrap();
            assert_eq!(params.get_url("Url").unwrap(), Some("https://example.com/voice?a=1"));
            assert_eq!(params.get_url("FallbackUrl").unwrap(), None);
            assert_eq!(params.get_url("Missing").unwrap(), None);
            let error = params.get_url("StatusCallback").unwrap_err();
            assert_eq!(
                (error.code, error.message.as_str()),
                (21205, "StatusCallback is not a valid URL: localhost/cb")
            );
            assert_eq!(params.get_url("Bad").unwrap_err().code, 21205);
        }

        #[test]
        fn absolute_http_urls_are_recognized() {
            for good in [
                "http://127.0.0.1:8080/voice",
                "HTTPS://Example.com",
                "https://user:pass@example.com/x#frag",
                "http://[::1]:9000/",
                "http://my_host.local/x",
            ] {
                assert!(is_absolute_http_url(good), "{good}");
            }
            for bad in [
                "",
                "example.com",
                "/voice",
                "http://",
                "http:///x",
                "http://a b.com",
                "http://x:99999",
                "mailto:x@y",
                "http://a..b",
            ] {
                assert!(!is_absolute_http_url(bad), "{bad}");
            }
        }

        #[test]
        fn malformed_percent_encoding_and_non_utf8_are_errors() {
            assert_eq!(FormParams::parse(b"To=%2").unwrap_err(), FormError::BadPercentEncoding { at: 3 });
            assert_eq!(FormParams::parse(b"To=%zz").unwrap_err(), FormError::BadPercentEncoding { at: 3 });
            assert_eq!(
                FormParams::parse(b"To=%FF").unwrap_err(),
                FormError::NotUtf8 { name: String::from("To") }
            );
            assert!(matches!(FormParams::parse(b"\xff=1").unwrap_err(), FormError::NotUtf8 { .. }));
            let error: TwilioError = FormParams::parse(b"a=%").unwrap_err().into();
            assert_eq!((error.status, error.code), (400, 70002));
        }

        #[tokio::test]
        async fn the_form_extractor_rejects_with_a_twilio_body() {
            let post = |content_type: Option<&str>, body: &'static [u8]| {
                let mut builder = http::Request::post("/x");
                if let Some(ct) = content_type {
                    builder = builder.header(header::CONTENT_TYPE, ct);
                }
                builder.body(axum::body::Body::from(body)).unwrap()
            };
            let ok = TwilioForm::from_request(
                post(Some("application/x-www-form-urlencoded; charset=utf-8"), b"To=%2B1"),
                &(),
            )
            .await
            .unwrap();
            assert_eq!(ok.0.get("To"), Some("+1"));
            assert!(TwilioForm::from_request(post(None, b""), &()).await.unwrap().0.is_empty());
            let bad =
                TwilioForm::from_request(post(Some("application/x-www-form-urlencoded"), b"To=%G1"), &())
                    .await;
            assert_eq!(bad.unwrap_err().code, 70002);
            let json = TwilioForm::from_request(post(Some("application/json"), b"{}"), &()).await;
            assert_eq!(json.unwrap_err().status, 400);
        }

        #[tokio::test]
        async fn the_query_extractor_decodes_filters() {
            let request = http::Request::get("/x?StartTime%3E=2008-01-02&Status=completed").body(()).unwrap();
            let (mut parts, ()) = request.into_parts();
            let TwilioQuery(params) = TwilioQuery::from_request_parts(&mut parts, &()).await.unwrap();
            assert_eq!(params.get("StartTime>"), Some("2008-01-02"));
            let request = http::Request::get("/x?a=%").body(()).unwrap();
            let (mut parts, ()) = request.into_parts();
            assert_eq!(TwilioQuery::from_request_parts(&mut parts, &()).await.unwrap_err().code, 70002);
        }

        proptest::proptest! {
            #[test]
            fn parsing_arbitrary_bytes_never_panics(input in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
                let _ = FormParams::parse(&input);
            }

            #[test]
            fn encoded_pairs_round_trip(pairs in proptest::collection::vec(("[A-Za-z<>]{1,8}", "\\PC{0,12}"), 0..6)) {
                let mut encoder = form_urlencoded::Serializer::new(String::new());
                for (name, value) in &pairs {
                    encoder.append_pair(name, value);
                }
                let params = FormParams::parse(encoder.finish().as_bytes()).unwrap();
                proptest::prop_assert_eq!(params, FormParams::from_pairs(pairs));
            }
        }
    }

    mod phone_numbers {
        use super::*;

        #[test]
        fn nanp_numbers_are_formatted_like_twilio_and_others_are_unchanged() {
            assert_eq!(formatted("+14158675309"), "(415) 867-5309");
            assert_eq!(formatted("+442071838750"), "+442071838750");
            assert_eq!(formatted("+1415867530"), "+1415867530");
            assert_eq!(formatted("client:alice"), "client:alice");
        }

        #[test]
        fn e164_is_a_plus_and_8_to_15_digits() {
            assert!(is_e164("+14158675309"));
            assert!(is_e164("+12345678"));
            assert!(is_e164("+123456789012345"));
            for bad in ["14158675309", "+1234567", "+1234567890123456", "+1 415 867 5309", "+0123456789", "+"]
            {
                assert!(!is_e164(bad), "{bad}");
            }
        }

        #[test]
        fn endpoints_are_numbers_clients_or_sip_uris() {
            assert_eq!(Endpoint::parse("+14158675309"), Some(Endpoint::Phone(String::from("+14158675309"))));
            assert_eq!(Endpoint::parse("client:alice"), Some(Endpoint::Client(String::from("alice"))));
            assert_eq!(
                Endpoint::parse("sip:alice@example.com"),
                Some(Endpoint::Sip(String::from("sip:alice@example.com")))
            );
            for bad in ["client:", "sip:", "4158675309", "alice", ""] {
                assert_eq!(Endpoint::parse(bad), None, "{bad}");
            }
            assert_eq!(Endpoint::parse("client:bob").unwrap().to_string(), "client:bob");
        }
    }
}
