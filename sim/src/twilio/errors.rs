//! Twilio's REST error body `{code, message, more_info, status}` (the 401 adds an empty `detail`) and the
//! codes the fake answers with.
//!
//! Messages are Twilio's own where a source quotes them (reference §4, third-party captures of real
//! responses); those no source confirms are marked `UNCONFIRMED` next to their constructor. The body never
//! carries `type`/`title`: both SDKs switch to their RFC 9457 exception when they see all of `type`,
//! `title`, `status` and `code` (reference §4).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

/// The realm real Twilio names in its `WWW-Authenticate` challenge.
// UNCONFIRMED: the realm text is from memory of real responses; neither SDK reads the header.
pub const AUTH_REALM: &str = "Basic realm=\"Twilio API\"";

/// A REST API error exactly as Twilio writes it on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("twilio error {code} (HTTP {status}): {message}")]
pub struct TwilioError {
    pub code: u32,
    /// Only the 20003 body carries it, empty, as the real one quoted in reference §4 does:
    /// `{"code": 20003, "detail": "", "message": "Authenticate", …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub message: String,
    pub more_info: String,
    pub status: u16,
}

impl TwilioError {
    /// An error with `more_info` pointing at the code's documentation page, as Twilio writes it.
    pub fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        TwilioError {
            code,
            detail: None,
            message: message.into(),
            more_info: format!("https://www.twilio.com/docs/errors/{code}"),
            status,
        }
    }

    /// 20003, 401: the Basic credentials are missing or wrong.
    pub fn authenticate() -> Self {
        TwilioError { detail: Some(String::new()), ..TwilioError::new(401, 20003, "Authenticate") }
    }

    /// 20404, 404: nothing lives at `path` (the request path, e.g.
    /// `/2010-04-01/Accounts/AC…/Calls/CA….json`).
    pub fn not_found(path: &str) -> Self {
        TwilioError::new(404, 20404, format!("The requested resource {path} was not found"))
    }

    /// 20403, 403: the account may not do this (test credentials on anything but `POST /Calls`).
    // UNCONFIRMED: message text.
    pub fn forbidden() -> Self {
        TwilioError::new(403, 20403, "Forbidden")
    }

    /// 20001, 400: a parameter has a value Twilio does not accept (bad boolean, number out of range,
    /// unknown enum value).
    // UNCONFIRMED: no source gives the code or text Twilio uses for a malformed parameter value; 20001
    // is Twilio's generic parameter error.
    pub fn invalid_parameter(name: &str, value: &str) -> Self {
        TwilioError::new(400, 20001, format!("Invalid {name}: {value}"))
    }

    /// 20001, 400: `PageSize` is not an integer in 1..=1000.
    // UNCONFIRMED: code and text; real Twilio rejects out-of-range page sizes (the SDKs dropped their own
    // clamping), but no source quotes the body.
    pub fn invalid_page_size(value: &str) -> Self {
        TwilioError::new(
            400,
            20001,
            format!("Invalid PageSize: {value}. PageSize must be between 1 and 1000"),
        )
    }

    /// 70002, 400: the request body or query string could not be parsed at all (bad percent-encoding,
    /// not UTF-8, not form-encoded).
    // UNCONFIRMED: 70002 "Bad request" is Twilio's documented code for an unparsable request; whether API
    // v2010 uses it is not confirmed.
    pub fn malformed_request(detail: &str) -> Self {
        TwilioError::new(400, 70002, format!("Bad request: {detail}"))
    }

    /// 20004, 405: the path exists but not with this method.
    // UNCONFIRMED: message text.
    pub fn method_not_allowed(method: &str) -> Self {
        TwilioError::new(405, 20004, format!("Method not allowed: {method}"))
    }

    /// 20009, 400: DeleteCall on a call that has not ended. DOC-CALL: "an error will occur if you attempt
    /// to remove a call record for a call that is actively in progress".
    // UNCONFIRMED: the docs give no code; 20009 is Twilio's "cannot delete before complete" error.
    pub fn delete_before_complete() -> Self {
        TwilioError::new(400, 20009, "Cannot delete this resource before it is complete")
    }

    /// 22005: more than a day of calls in the account's queue (DOC-ERR-22005: "Twilio will reject requests
    /// to place calls that will not be placed within 24 hours"). UNCONFIRMED: the HTTP status; 400.
    pub fn call_queue_full() -> Self {
        TwilioError::new(400, 22005, "Call Queue Full")
    }

    /// 20429, 429: too many requests; twilio-node's `autoRetry` backs off and retries.
    // UNCONFIRMED: message text.
    pub fn too_many_requests() -> Self {
        TwilioError::new(429, 20429, "Too Many Requests")
    }

    /// 21201, 400: CreateCall/CreateParticipant without `To`.
    pub fn missing_to() -> Self {
        TwilioError::new(400, 21201, "No 'To' number is specified")
    }

    /// 21213, 400: CreateCall/CreateParticipant without `From`.
    // UNCONFIRMED: text seen only in third-party fakes, worded like 21201.
    pub fn missing_from() -> Self {
        TwilioError::new(400, 21213, "No 'From' number is specified")
    }

    /// 21202, 400: `To` is a premium-rate or special-service number (N11 numbers such as 411, 911).
    // UNCONFIRMED: message text.
    pub fn premium_number(to: &str) -> Self {
        TwilioError::new(400, 21202, format!("The number {to} is a premium number and cannot be called"))
    }

    /// 21205, 400: CreateCall with none of `Url`, `Twiml`, `ApplicationSid`.
    // UNCONFIRMED: text seen only in third-party fakes.
    pub fn url_required() -> Self {
        TwilioError::new(400, 21205, "Url parameter is required.")
    }

    /// 21205, 400: a URL parameter (`Url`, `StatusCallback`, `FallbackUrl`, …) is not an absolute
    /// http(s) URL. A real response quoted by a third party reads `Url is not a valid URL: http://…`.
    // UNCONFIRMED: the same wording for parameters other than `Url`.
    pub fn invalid_url(name: &str, value: &str) -> Self {
        TwilioError::new(400, 21205, format!("{name} is not a valid URL: {value}"))
    }

    /// 21210, 400: `From` is neither a number of the account nor a verified caller ID (and, with test
    /// credentials, anything but `+15005550006`).
    pub fn from_not_verified(from: &str) -> Self {
        TwilioError::new(
            400,
            21210,
            format!(
                "The source phone number provided, {from}, is not yet verified for your account. You may only \
                 make calls from phone numbers that you've verified or purchased from Twilio."
            ),
        )
    }

    /// 21211, 400: `To` is not a valid phone number or endpoint.
    pub fn invalid_to(to: &str) -> Self {
        TwilioError::new(400, 21211, format!("The 'To' number {to} is not a valid phone number."))
    }

    /// 21212, 400: `From` is not a valid phone number (test credentials: `+15005550001`).
    // UNCONFIRMED: message text, worded like 21211.
    pub fn invalid_from(from: &str) -> Self {
        TwilioError::new(400, 21212, format!("The 'From' number {from} is not a valid phone number."))
    }

    /// 21214, 400: `To` cannot be reached (test credentials: `+15005550002`).
    // UNCONFIRMED: message text.
    pub fn to_unreachable(to: &str) -> Self {
        TwilioError::new(400, 21214, format!("'To' phone number {to} cannot be reached"))
    }

    /// 21215, 400: the account's geo permissions do not allow calling `To` (test credentials:
    /// `+15005550003`).
    // UNCONFIRMED: message text.
    pub fn geo_permission(to: &str) -> Self {
        TwilioError::new(
            400,
            21215,
            format!(
                "Account not authorized to call {to}. Perhaps you need to enable some international permissions"
            ),
        )
    }

    /// 21216, 400: `To` is blocked (test credentials: `+15005550004`).
    // UNCONFIRMED: message text.
    pub fn blocked_number(to: &str) -> Self {
        TwilioError::new(400, 21216, format!("Call blocked: {to} is on the block list"))
    }

    /// 21217, 400: the phone number does not appear to be valid (test credentials: `To=+15005550001`).
    // UNCONFIRMED: message text (DOC-ERR-21217 gives only the title).
    pub fn phone_number_not_valid(number: &str) -> Self {
        TwilioError::new(400, 21217, format!("Phone number {number} does not appear to be valid"))
    }

    /// 21218, 400: `ApplicationSid` is not an application of the account.
    // UNCONFIRMED: message text.
    pub fn invalid_application_sid(sid: &str) -> Self {
        TwilioError::new(400, 21218, format!("Invalid ApplicationSid: {sid}"))
    }

    /// 21220, 400: a realtime operation (redirect, new TwiML) on a call that is not in progress.
    pub fn call_not_in_progress() -> Self {
        TwilioError::new(400, 21220, "Call is not in-progress. Cannot redirect.")
    }

    /// 16003, 404: CreateParticipant names a conference that is neither a SID nor a friendly name the
    /// fake knows (DOC-ERR-16003).
    // UNCONFIRMED: the HTTP status; the docs give only the code and title.
    pub fn conference_not_recognized() -> Self {
        TwilioError::new(404, 16003, "Could not recognize conference sid or friendly name")
    }

    /// The HTTP status as a `StatusCode`; an out-of-range status (a bug) becomes 500.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for TwilioError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut response = (status, axum::Json(&self)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(AUTH_REALM));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn serializes_to_exactly_code_message_more_info_status() {
        let body = serde_json::to_string(&TwilioError::call_not_in_progress()).unwrap();
        assert_eq!(
            body,
            r#"{"code":21220,"message":"Call is not in-progress. Cannot redirect.","more_info":"https://www.twilio.com/docs/errors/21220","status":400}"#
        );
    }

    #[test]
    fn not_found_names_the_requested_path() {
        let error = TwilioError::not_found("/2010-04-01/Accounts/AC1/Calls/CA1.json");
        assert_eq!(
            error.message,
            "The requested resource /2010-04-01/Accounts/AC1/Calls/CA1.json was not found"
        );
        assert_eq!((error.code, error.status), (20404, 404));
        assert_eq!(error.more_info, "https://www.twilio.com/docs/errors/20404");
    }

    #[test]
    fn every_constructor_has_a_client_error_status_and_its_docs_link() {
        let all = [
            TwilioError::not_found("/x"),
            TwilioError::forbidden(),
            TwilioError::invalid_parameter("Timeout", "x"),
            TwilioError::invalid_page_size("0"),
            TwilioError::malformed_request("x"),
            TwilioError::method_not_allowed("PUT"),
            TwilioError::delete_before_complete(),
            TwilioError::too_many_requests(),
            TwilioError::call_queue_full(),
            TwilioError::missing_to(),
            TwilioError::missing_from(),
            TwilioError::premium_number("+1411"),
            TwilioError::url_required(),
            TwilioError::invalid_url("Url", "x"),
            TwilioError::from_not_verified("+1"),
            TwilioError::invalid_to("x"),
            TwilioError::invalid_from("x"),
            TwilioError::to_unreachable("x"),
            TwilioError::geo_permission("x"),
            TwilioError::blocked_number("x"),
            TwilioError::phone_number_not_valid("x"),
            TwilioError::invalid_application_sid("x"),
            TwilioError::call_not_in_progress(),
            TwilioError::conference_not_recognized(),
        ];
        for error in all {
            assert!((400..500).contains(&error.status), "{error:?}");
            assert!(error.more_info.ends_with(&error.code.to_string()), "{error:?}");
            let value = serde_json::to_value(&error).unwrap();
            let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, ["code", "message", "more_info", "status"]);
        }
    }

    #[test]
    fn the_401_body_is_the_one_real_twilio_sends_with_an_empty_detail() {
        let error = TwilioError::authenticate();
        assert!((400..500).contains(&error.status));
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"code":20003,"detail":"","message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#
        );
    }

    #[tokio::test]
    async fn the_response_carries_the_status_json_body_and_for_401_a_basic_challenge() {
        let response = TwilioError::authenticate().into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], AUTH_REALM);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: TwilioError = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body, TwilioError::authenticate());

        let response = TwilioError::missing_to().into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(!response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
