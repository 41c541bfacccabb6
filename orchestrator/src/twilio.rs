//! Twilio, as the orchestrator uses it: the REST calls that create, redirect, hang up and fetch calls, and
//! the `X-Twilio-Signature` check on the webhooks Twilio sends.
//!
//! Sources: Twilio's API v2010 (`POST|GET /2010-04-01/Accounts/{AccountSid}/Calls[/{Sid}].json`, form
//! bodies, HTTP Basic auth with the account SID and auth token, errors as `{code, message, more_info,
//! status}`) and the official helper libraries' request validators (PY `twilio/request_validator.py`).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use http::Method;
use serde::Deserialize;
use sha1::Sha1;

use crate::http::{ApiError, ApiRequest, ApiResponse, HttpClient, Secret, basic_auth, body_excerpt};

/// Where Twilio's REST API lives.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// The header that carries a webhook's signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// Twilio: "Call is not in-progress. Cannot redirect." — an update of a call that has ended.
pub const CALL_NOT_IN_PROGRESS: u32 = 21220;

/// Twilio: "The requested resource … was not found".
pub const NOT_FOUND: u32 = 20404;

/// A client for one Twilio account's Calls resource.
#[derive(Clone, Debug)]
pub struct TwilioClient {
    http: Arc<dyn HttpClient>,
    /// Without a trailing slash.
    api_base: String,
    account_sid: String,
    auth_token: Secret,
}

/// The fields of a Twilio Call resource the orchestrator reads.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CallInfo {
    /// `CA…`.
    pub sid: String,
    /// `queued`, `ringing`, `in-progress`, `completed`, `busy`, `failed`, `no-answer` or `canceled`.
    pub status: String,
}

impl TwilioClient {
    /// A client for `account_sid` at `api_base` ([`DEFAULT_API_BASE`] in production; a trailing slash is
    /// tolerated), authenticating with the account's auth token.
    pub fn new(http: Arc<dyn HttpClient>, api_base: &str, account_sid: String, auth_token: Secret) -> Self {
        TwilioClient { http, api_base: api_base.trim_end_matches('/').to_owned(), account_sid, auth_token }
    }

    /// The account this client acts for.
    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    /// Starts an outbound call: `POST …/Calls.json` with `params` as the form, in the order given (`To`,
    /// `From`, `Url` or `Twiml`, `Timeout`, `MachineDetection`, `StatusCallback`, one
    /// `StatusCallbackEvent` per event, …).
    pub async fn create_call(&self, params: &[(&str, String)]) -> Result<CallInfo, ApiError> {
        self.call_request(ApiRequest::form(Method::POST, self.calls_url(None), params)).await
    }

    /// Modifies a live call: `POST …/Calls/{sid}.json` with `Twiml` or `Url` to redirect it, or
    /// `Status=completed` to hang it up. Updating a call that has ended fails with
    /// [`CALL_NOT_IN_PROGRESS`]; see [`ApiError::call_is_over`].
    pub async fn update_call(&self, sid: &str, params: &[(&str, String)]) -> Result<CallInfo, ApiError> {
        self.call_request(ApiRequest::form(Method::POST, self.calls_url(Some(sid)), params)).await
    }

    /// Reads a call: `GET …/Calls/{sid}.json`.
    pub async fn fetch_call(&self, sid: &str) -> Result<CallInfo, ApiError> {
        self.call_request(ApiRequest::get(self.calls_url(Some(sid)))).await
    }

    fn calls_url(&self, sid: Option<&str>) -> String {
        let account = encode_path_segment(&self.account_sid);
        let call = sid.map(|sid| format!("/{}", encode_path_segment(sid))).unwrap_or_default();
        format!("{}/2010-04-01/Accounts/{account}/Calls{call}.json", self.api_base)
    }

    async fn call_request(&self, request: ApiRequest) -> Result<CallInfo, ApiError> {
        let request = request
            .with_header("Authorization", basic_auth(&self.account_sid, self.auth_token.expose()))
            .with_header("Accept", "application/json");
        let response = self.http.send(request).await?;
        if !response.is_success() {
            return Err(rejection(&response));
        }
        serde_json::from_slice(&response.body)
            .map_err(|e| ApiError::Malformed(format!("a Twilio call needs string `sid` and `status`: {e}")))
    }
}

impl ApiError {
    /// Whether Twilio refused because the call is already over: [`CALL_NOT_IN_PROGRESS`] (updating a call
    /// that has ended) or [`NOT_FOUND`] (no such call). A caller trying to bring a leg back can stop.
    pub fn call_is_over(&self) -> bool {
        matches!(self, ApiError::Rejected { code: Some(CALL_NOT_IN_PROGRESS | NOT_FOUND), .. })
    }
}

/// Twilio's error body (legacy format; NODE `RestException` reads the same fields).
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<u32>,
    message: Option<String>,
}

fn rejection(response: &ApiResponse) -> ApiError {
    let parsed = serde_json::from_slice::<ErrorBody>(&response.body).ok();
    let code = parsed.as_ref().and_then(|body| body.code);
    let message = parsed
        .and_then(|body| body.message)
        .filter(|message| !message.is_empty())
        .unwrap_or_else(|| body_excerpt(response.status, &response.body));
    ApiError::Rejected { status: response.status, code, message }
}

/// `segment` percent-encoded for a URL path: a SID from a webhook cannot reach another resource.
fn encode_path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The `X-Twilio-Signature` Twilio sends with a form POST of `params` to `url` (pass no params for a
/// GET, whose parameters are in the URL's query string). `url` is exactly the URL Twilio requested,
/// query string included.
///
/// Twilio: base64 of HMAC-SHA1 keyed with the auth token over the URL followed by every parameter's
/// name and value, sorted by name and then by value, without separators. Like the official validators
/// (PY `sorted(set(values))`), a repeated name-and-value pair counts once.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(signing_mac(auth_token, url, params).finalize().into_bytes())
}

/// Whether `header` is a valid `X-Twilio-Signature` for a form POST of `params` to `url`, compared in
/// constant time.
///
/// Like Twilio's helper libraries, this also accepts the signature computed over the URL without its
/// port or with the scheme's default port added (`https://host/x` and `https://host:443/x`), because
/// Twilio is not consistent about which it signs.
pub fn is_valid_signature(auth_token: &str, url: &str, params: &[(String, String)], header: &str) -> bool {
    let Ok(claimed) = BASE64.decode(header.trim().as_bytes()) else {
        return false;
    };
    // Standard base64 with padding and canonical trailing bits decodes one-to-one, so comparing the
    // decoded bytes is comparing the strings, as the SDKs do; `verify_slice` compares in constant time.
    let mut valid = false;
    for candidate in url_variants(url) {
        valid |= signing_mac(auth_token, &candidate, params).verify_slice(&claimed).is_ok();
    }
    valid
}

fn signing_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("hmac accepts keys of any length");
    mac.update(url.as_bytes());
    // Rust orders strings by Unicode scalar value, as Python's `sorted` does.
    let mut sorted: Vec<(&str, &str)> = params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    sorted.sort_unstable();
    sorted.dedup();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// `url` without its port, and with the scheme's default port when it has none (PY `remove_port`,
/// `add_port`): one of the two is always `url` itself.
fn url_variants(url: &str) -> [String; 2] {
    let Some(parts) = split_port(url) else {
        return [url.to_owned(), url.to_owned()];
    };
    let without = format!("{}{}", parts.head, parts.rest);
    let with = if parts.port.is_empty() {
        let port = if parts.scheme.eq_ignore_ascii_case("https") { "443" } else { "80" };
        format!("{}:{port}{}", parts.head, parts.rest)
    } else {
        url.to_owned()
    };
    [without, with]
}

/// A URL cut around its port.
struct PortSplit<'a> {
    scheme: &'a str,
    /// `scheme://userinfo@host`.
    head: &'a str,
    /// The digits after the host's `:`, or empty.
    port: &'a str,
    /// Path, query and fragment.
    rest: &'a str,
}

fn split_port(url: &str) -> Option<PortSplit<'_>> {
    let (scheme, after_scheme) = url.split_once("://")?;
    let authority_start = scheme.len() + 3;
    let authority_len = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_len];
    let authority_end = authority_start + authority_len;
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    // In an IPv6 literal (`[::1]:8080`) only a colon after the closing bracket starts the port.
    let search_from =
        authority[host_start..].rfind(']').map_or(host_start, |bracket| host_start + bracket + 1);
    let colon = authority[search_from..].find(':').map(|i| authority_start + search_from + i);
    let head_end = colon.unwrap_or(authority_end);
    Some(PortSplit {
        scheme,
        head: &url[..head_end],
        port: colon.map_or("", |colon| &url[colon + 1..authority_end]),
        rest: &url[authority_end..],
    })
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;
    use crate::http::ReqwestClient;
    use crate::http::tests::FakeApi;

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
    const CALL: &str = "CAfedcba9876543210fedcba9876543210";
    const TOKEN: &str = "auth-token-123";

    fn call_json(status: &str) -> String {
        format!(
            r#"{{"account_sid":"{ACCOUNT}","answered_by":null,"api_version":"2010-04-01","sid":"{CALL}","status":"{status}","direction":"outbound-api","to":"+15005550006","from":"+15005550001","uri":"/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json"}}"#
        )
    }

    fn client(api: &FakeApi) -> TwilioClient {
        let http = Arc::new(ReqwestClient::new(std::time::Duration::from_secs(5)).unwrap());
        TwilioClient::new(http, &format!("{}/", api.base_url), ACCOUNT.to_owned(), Secret::from(TOKEN))
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[tokio::test]
    async fn create_call_posts_the_form_in_order_with_basic_auth() {
        let api = FakeApi::start(201, call_json("queued")).await;
        let params = [
            ("To", "+15005550006".to_owned()),
            ("From", "+15005550001".to_owned()),
            ("Url", "https://orchestrator.example/twiml?leg=specialist&x=1".to_owned()),
            ("Timeout", "20".to_owned()),
            ("MachineDetection", "Enable".to_owned()),
            ("StatusCallback", "https://orchestrator.example/status".to_owned()),
            ("StatusCallbackEvent", "ringing".to_owned()),
            ("StatusCallbackEvent", "answered".to_owned()),
            ("StatusCallbackEvent", "completed".to_owned()),
        ];
        let call = client(&api).create_call(&params).await.unwrap();
        assert_eq!(call, CallInfo { sid: CALL.to_owned(), status: "queued".to_owned() });
        let request = api.request();
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.uri, format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json"));
        assert_eq!(request.header("authorization"), Some(basic_auth(ACCOUNT, TOKEN).as_str()));
        assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
        let sent: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        assert_eq!(request.form(), sent);
    }

    #[tokio::test]
    async fn update_call_posts_to_the_call_and_reads_its_new_status() {
        let api = FakeApi::start(200, call_json("in-progress")).await;
        let twiml = r#"<Response><Dial><Conference>room & co</Conference></Dial></Response>"#;
        let call = client(&api).update_call(CALL, &[("Twiml", twiml.to_owned())]).await.unwrap();
        assert_eq!(call.status, "in-progress");
        let request = api.request();
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.uri, format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json"));
        assert_eq!(request.form(), pairs(&[("Twiml", twiml)]));
        assert_eq!(request.header("authorization"), Some(basic_auth(ACCOUNT, TOKEN).as_str()));
    }

    #[tokio::test]
    async fn fetch_call_gets_the_call_without_a_body() {
        let api = FakeApi::start(200, call_json("completed")).await;
        let call = client(&api).fetch_call(CALL).await.unwrap();
        assert_eq!(call.status, "completed");
        let request = api.request();
        assert_eq!(request.method, Method::GET);
        assert_eq!(request.uri, format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json"));
        assert!(request.body.is_empty());
        assert_eq!(request.header("authorization"), Some(basic_auth(ACCOUNT, TOKEN).as_str()));
    }

    #[tokio::test]
    async fn a_sid_cannot_escape_its_path_segment() {
        let api = FakeApi::start(200, call_json("completed")).await;
        client(&api).fetch_call("../Conferences/CF1?x=1#y").await.unwrap();
        assert_eq!(
            api.request().uri,
            format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/..%2FConferences%2FCF1%3Fx%3D1%23y.json")
        );
    }

    #[tokio::test]
    async fn redirecting_a_completed_call_is_rejected_with_21220_and_the_call_is_over() {
        let api = FakeApi::start(
            400,
            r#"{"code": 21220, "message": "Call is not in-progress. Cannot redirect.", "more_info": "https://www.twilio.com/docs/errors/21220", "status": 400}"#,
        )
        .await;
        let error =
            client(&api).update_call(CALL, &[("Url", "https://x.example/".into())]).await.unwrap_err();
        assert_eq!(
            error,
            ApiError::Rejected {
                status: 400,
                code: Some(21220),
                message: "Call is not in-progress. Cannot redirect.".to_owned()
            }
        );
        assert!(error.call_is_over());
    }

    #[tokio::test]
    async fn an_unknown_call_is_rejected_with_20404_and_the_call_is_over() {
        let api = FakeApi::start(
            404,
            r#"{"code": 20404, "message": "The requested resource /2010-04-01/Accounts/AC1/Calls/CA1.json was not found", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}"#,
        )
        .await;
        let error = client(&api).fetch_call(CALL).await.unwrap_err();
        assert!(matches!(error, ApiError::Rejected { status: 404, code: Some(20404), .. }), "{error:?}");
        assert!(error.call_is_over());
    }

    #[tokio::test]
    async fn bad_credentials_are_rejected_with_20003_and_the_call_is_not_over() {
        let api = FakeApi::start(
            401,
            r#"{"code": 20003, "detail": "", "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}"#,
        )
        .await;
        let error = client(&api).create_call(&[("To", "+15005550006".into())]).await.unwrap_err();
        assert_eq!(
            error,
            ApiError::Rejected { status: 401, code: Some(20003), message: "Authenticate".into() }
        );
        assert!(!error.call_is_over());
    }

    #[tokio::test]
    async fn a_non_json_error_body_is_still_a_rejection_with_its_text() {
        let api = FakeApi::start(503, "<html><body>Service Unavailable</body></html>").await;
        let error = client(&api).fetch_call(CALL).await.unwrap_err();
        assert_eq!(
            error,
            ApiError::Rejected {
                status: 503,
                code: None,
                message: "<html><body>Service Unavailable</body></html>".into()
            }
        );
        assert!(!error.call_is_over());
    }

    #[tokio::test]
    async fn a_success_without_sid_or_status_is_malformed() {
        let api = FakeApi::start(200, r#"{"sid": "CA1"}"#).await;
        let error = client(&api).fetch_call(CALL).await.unwrap_err();
        assert!(matches!(&error, ApiError::Malformed(m) if m.contains("status")), "{error:?}");
        let api = FakeApi::start(201, "created").await;
        let error = client(&api).create_call(&[]).await.unwrap_err();
        assert!(matches!(error, ApiError::Malformed(_)), "{error:?}");
    }

    #[tokio::test]
    async fn an_unreachable_api_is_a_transport_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let http = Arc::new(ReqwestClient::new(std::time::Duration::from_secs(2)).unwrap());
        let twilio = TwilioClient::new(http, &base, ACCOUNT.to_owned(), Secret::from(TOKEN));
        let error = twilio.fetch_call(CALL).await.unwrap_err();
        assert!(matches!(error, ApiError::Transport(crate::http::HttpError::Connect { .. })), "{error:?}");
        assert!(!error.call_is_over());
    }

    #[test]
    fn the_client_futures_can_be_spawned_and_its_debug_hides_the_token() {
        fn assert_send<T: Send>(_: &T) {}
        let http = Arc::new(ReqwestClient::new(std::time::Duration::from_secs(1)).unwrap());
        let twilio = TwilioClient::new(http, DEFAULT_API_BASE, ACCOUNT.to_owned(), Secret::from(TOKEN));
        assert_send(&twilio.create_call(&[]));
        assert_send(&twilio.update_call(CALL, &[]));
        assert_send(&twilio.fetch_call(CALL));
        let printed = format!("{twilio:?}");
        assert!(!printed.contains(TOKEN), "{printed}");
        assert_eq!(
            twilio.calls_url(None),
            format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls.json")
        );
    }

    /// Twilio's documented example (docs "Webhooks security"), checked against PY `RequestValidator`.
    fn documented_example() -> (&'static str, Vec<(String, String)>) {
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        ("https://mycompany.com/myapp.php?foo=1&bar=2", params)
    }

    #[test]
    fn the_signature_matches_twilios_documented_example() {
        let (url, params) = documented_example();
        assert_eq!(signature("12345", url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(is_valid_signature("12345", url, &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        // Parameter order on the wire does not matter.
        let reversed: Vec<_> = params.iter().rev().cloned().collect();
        assert!(is_valid_signature("12345", url, &reversed, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    }

    #[test]
    fn a_signature_over_another_url_params_or_token_is_invalid() {
        let (url, params) = documented_example();
        let valid = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
        assert!(!is_valid_signature("12346", url, &params, valid));
        assert!(!is_valid_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=3", &params, valid));
        let mut more = params.clone();
        more.push(("Extra".into(), "1".into()));
        assert!(!is_valid_signature("12345", url, &more, valid));
        assert!(!is_valid_signature("12345", url, &params[1..], valid));
    }

    #[test]
    fn a_malformed_signature_header_is_invalid_without_panicking() {
        let (url, params) = documented_example();
        for header in ["", "***", "0/KCTR6DLpKmkAf8muzZqo1nDgQ", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=x", "é"] {
            assert!(!is_valid_signature("12345", url, &params, header), "{header:?}");
        }
    }

    #[test]
    fn the_signature_is_valid_with_the_default_port_added_or_removed() {
        let (_, params) = documented_example();
        // PY `RequestValidator.compute_signature` over the URL with the port.
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(signature("12345", with_port, &params), "EpDEmp1PyjDYp77YxYU3GILBWzE=");
        // Twilio signed without the port; the server sees it with (or the other way round).
        assert!(is_valid_signature("12345", with_port, &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        let without_port = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(is_valid_signature("12345", without_port, &params, "EpDEmp1PyjDYp77YxYU3GILBWzE="));
        // Port 80 is https' default only in name: it is not added for https.
        let signed_80 = signature("12345", "https://mycompany.com:80/myapp.php?foo=1&bar=2", &params);
        assert!(!is_valid_signature("12345", without_port, &params, &signed_80));
    }

    #[test]
    fn repeated_names_are_signed_sorted_by_value_and_deduplicated() {
        let url = "https://example.com/status";
        let a = pairs(&[("B", "2"), ("A", "z"), ("A", "y"), ("A", "y")]);
        let b = pairs(&[("A", "y"), ("B", "2"), ("A", "z")]);
        assert_eq!(signature("t", url, &a), signature("t", url, &b));
        let mut mac = Hmac::<Sha1>::new_from_slice(b"t").unwrap();
        mac.update(b"https://example.com/statusAyAzB2");
        assert_eq!(signature("t", url, &a), BASE64.encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn url_variants_cover_every_port_shape() {
        let variants = url_variants;
        assert_eq!(
            variants("https://h/x?a=1"),
            ["https://h/x?a=1".to_owned(), "https://h:443/x?a=1".to_owned()]
        );
        assert_eq!(variants("http://h:80/x"), ["http://h/x".to_owned(), "http://h:80/x".to_owned()]);
        assert_eq!(variants("http://h:8080"), ["http://h".to_owned(), "http://h:8080".to_owned()]);
        assert_eq!(
            variants("https://u:p@h?q"),
            ["https://u:p@h?q".to_owned(), "https://u:p@h:443?q".to_owned()]
        );
        assert_eq!(
            variants("http://[::1]:3000/x"),
            ["http://[::1]/x".to_owned(), "http://[::1]:3000/x".to_owned()]
        );
        assert_eq!(variants("http://[::1]/x"), ["http://[::1]/x".to_owned(), "http://[::1]:80/x".to_owned()]);
        assert_eq!(variants("not a url"), ["not a url".to_owned(), "not a url".to_owned()]);
    }

    proptest::proptest! {
        #[test]
        fn any_signature_validates_for_its_own_request_and_never_panics(
            token in "\\PC{0,20}",
            host in "[a-z]{1,10}",
            port in proptest::option::of(1u16..),
            path in "[/a-zA-Z0-9?&=:@\\[\\]]{0,20}",
            params in proptest::collection::vec(("\\PC{0,8}", "\\PC{0,8}"), 0..6),
            junk in "\\PC{0,40}",
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let url = format!("https://{host}{port}/{path}");
            let signed = signature(&token, &url, &params);
            proptest::prop_assert!(is_valid_signature(&token, &url, &params, &signed));
            let _ = is_valid_signature(&token, &junk, &params, &junk);
        }
    }
}
