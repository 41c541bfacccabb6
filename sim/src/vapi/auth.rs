//! How the fake Vapi authenticates the server messages it sends to a customer's server URL, and how a
//! receiver checks them: the legacy `x-vapi-secret`, a webhook credential's bearer, HMAC or OAuth2 plan,
//! and the `server.headers` that override them.
//!
//! Sources: reference vapi.md §7; SPEC `Server`, `WebhookCredential`, `BearerAuthenticationPlan`,
//! `HMACAuthenticationPlan`, `OAuth2AuthenticationPlan`, `Oauth2AuthenticationSession`;
//! DOCS:server-url/server-authentication.
//!
//! The module is pure: the caller passes the time (epoch milliseconds from the run's clock) and the
//! message id (from the run's seed). Nothing here reads the clock or OS randomness.
//!
//! Choices without a source, each explained where it is made, all **(UNCONFIRMED)**:
//! - the HMAC timestamp is written in whole seconds by default ([`TimestampUnit`]);
//! - `includeTimestamp: false` without a `payloadFormat` signs the body alone ([`HmacPlan::payload_format`]);
//! - the timestamp header is sent whenever the timestamp is signed, even with `includeTimestamp: false`;
//! - every `server.headers` entry replaces a same-named header, not only `Authorization` ([`auth_headers`]);
//! - an empty legacy `secret` sends no header;
//! - an OAuth2 credential sends a token the fake mints ([`WebhookCredential::oauth2_access_token`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

/// The header that carries the legacy `server.secret` (OLDSPEC `Server.secret`; DOCS:customization/
/// custom-transcriber: the legacy field "sends the value as an `x-vapi-secret` HTTP header").
pub const LEGACY_SECRET_HEADER: &str = "x-vapi-secret";

/// The payload an HMAC plan signs when it sets no `payloadFormat` and keeps `includeTimestamp` (SPEC).
pub const DEFAULT_PAYLOAD_FORMAT: &str = "{timestamp}.{body}";

/// The header a bearer plan uses by default (SPEC) and an OAuth2 plan always uses.
const BEARER_HEADER: &str = "Authorization";
const TIMESTAMP: &str = "{timestamp}";
const MESSAGE_ID: &str = "{svix-id}";

/// The authentication fields of a `Server` object: SPEC `Server.credentialId` and `Server.headers`, plus
/// the legacy `secret` that SPEC no longer lists but Vapi still honours. Deserializing a whole `Server`
/// object works; its other fields are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerAuth {
    /// Legacy: sent as [`LEGACY_SECRET_HEADER`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The id of a [`WebhookCredential`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    /// Sent verbatim, after and over the headers above.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
}

/// A webhook credential, as far as authentication reads it (SPEC `WebhookCredential`: `id`,
/// `authenticationPlan`, `authenticationSession`). Its other fields are ignored when deserializing; the
/// credential endpoints own the full REST shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookCredential {
    pub id: String,
    pub authentication_plan: AuthenticationPlan,
    /// For an OAuth2 plan: the token Vapi obtained. A world file may set it to choose the token the fake
    /// sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_session: Option<AuthenticationSession>,
}

/// SPEC `Oauth2AuthenticationSession`, reduced to the one field that reaches the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationSession {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}

/// SPEC `WebhookCredential.authenticationPlan`, discriminated by `type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum AuthenticationPlan {
    #[serde(rename = "bearer")]
    Bearer(BearerPlan),
    #[serde(rename = "hmac")]
    Hmac(HmacPlan),
    #[serde(rename = "oauth2")]
    OAuth2(OAuth2Plan),
}

/// SPEC `BearerAuthenticationPlan`. The legacy `x-vapi-secret` is this plan with `headerName:
/// "X-Vapi-Secret"` and the prefix off (DOCS:server-url/server-authentication).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BearerPlan {
    pub token: String,
    /// SPEC: "Defaults to 'Authorization'".
    #[serde(default = "default_bearer_header")]
    pub header_name: String,
    /// Whether the value is `Bearer <token>` rather than `<token>`. SPEC: "Defaults to true".
    #[serde(default = "yes")]
    pub bearer_prefix_enabled: bool,
}

/// SPEC `HMACAuthenticationPlan`. Every field of the schema is here: each one changes the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HmacPlan {
    pub secret_key: String,
    /// Required by SPEC, so it has no default.
    pub algorithm: HmacAlgorithm,
    /// SPEC: "Defaults to 'x-signature'".
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    /// SPEC: "Defaults to 'x-timestamp'".
    #[serde(default = "default_timestamp_header")]
    pub timestamp_header: String,
    /// Written before the encoded signature, such as `sha256=` (GitHub) or `v1,` (Svix). SPEC gives no
    /// default; none is an empty prefix.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signature_prefix: String,
    /// SPEC: "Whether to include a timestamp in the signature payload. Defaults to true."
    #[serde(default = "yes")]
    pub include_timestamp: bool,
    /// The signed payload, with placeholders; see [`HmacPlan::payload_format`] for the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_format: Option<String>,
    /// The header that carries the message id (`{svix-id}`). SPEC gives no default; none sends no id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id_header: Option<String>,
    /// SPEC: "Defaults to 'hex'".
    #[serde(default)]
    pub signature_encoding: SignatureEncoding,
    /// Whether `secretKey` is standard base64 to decode into the key bytes. SPEC: "Defaults to false".
    #[serde(default)]
    pub secret_is_base64: bool,
}

/// SPEC `HMACAuthenticationPlan.algorithm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    Sha256,
    Sha512,
    Sha1,
}

/// SPEC `HMACAuthenticationPlan.signatureEncoding`. Hex is lower-case; base64 is the standard alphabet
/// with padding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    #[default]
    Hex,
    Base64,
}

/// SPEC `OAuth2AuthenticationPlan` (client credentials). Recorded so that a configuration using it is
/// accepted; the fake never calls `url`, see [`WebhookCredential::oauth2_access_token`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Plan {
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// How the HMAC timestamp is written, in the timestamp header and in `{timestamp}`: a decimal integer
/// count since the Unix epoch.
///
/// **(UNCONFIRMED)** No source says which unit Vapi uses. The default is [`TimestampUnit::Seconds`]
/// because the plan is explicitly built for Svix-style receivers (`messageIdHeader` "Used for
/// Svix-style webhooks", the `{svix-id}` placeholder), and Svix / Standard Webhooks libraries read the
/// timestamp as whole seconds: with milliseconds a stock verifier rejects every message as out of
/// tolerance. The default `{timestamp}.{body}` is also Stripe's `t.body` scheme, again in seconds.
/// Choose [`TimestampUnit::Milliseconds`] to match the message envelope's `timestamp`, which is epoch
/// milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampUnit {
    #[default]
    Seconds,
    Milliseconds,
}

impl TimestampUnit {
    fn render(self, unix_ms: i64) -> String {
        match self {
            TimestampUnit::Seconds => unix_ms.div_euclid(1000).to_string(),
            TimestampUnit::Milliseconds => unix_ms.to_string(),
        }
    }

    fn to_unix_ms(self, value: i64) -> i64 {
        match self {
            TimestampUnit::Seconds => value.saturating_mul(1000),
            TimestampUnit::Milliseconds => value,
        }
    }
}

/// A server message about to be sent, with what its authentication depends on.
#[derive(Clone, Copy, Debug)]
pub struct Outgoing<'a> {
    /// Upper case, as sent (`POST`); fills `{method}`.
    pub method: &'a str,
    /// Exactly the URL requested; fills `{url}`.
    pub url: &'a str,
    /// Exactly the body bytes sent; fills `{body}`.
    pub body: &'a [u8],
    /// The run's clock, in milliseconds since the Unix epoch.
    pub now_unix_ms: i64,
    /// Fills `{svix-id}` and the plan's `messageIdHeader`. Derive it from the run's seed, one per message,
    /// and keep it across retries: Svix-style receivers deduplicate on it.
    pub message_id: &'a str,
    /// How the HMAC timestamp is written.
    pub timestamp_unit: TimestampUnit,
}

/// Why the headers for a message could not be computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "server.credentialId `{id}` names no webhook credential; add a credential with that id or fix the id"
    )]
    UnknownCredential { id: String },
    #[error(
        "the HMAC plan sets secretIsBase64 but secretKey is not standard base64; encode the key (without a `whsec_` prefix) or set secretIsBase64 to false"
    )]
    SecretNotBase64,
}

/// The headers that authenticate `request` to a server configured with `server`, in the order to send
/// them: `x-vapi-secret` for a legacy secret, then the credential's headers, then `server.headers`.
/// The caller adds `Content-Type` itself.
///
/// SPEC `Server.headers`: "Specifying an Authorization header here will override the authorization
/// provided by the `credentialId`". **(UNCONFIRMED)** generalization: every `server.headers` entry
/// replaces the headers before it with the same name, compared case-insensitively, since a request
/// cannot usefully carry two values for one authentication header.
pub fn auth_headers(
    server: &ServerAuth,
    credentials: &[WebhookCredential],
    request: &Outgoing<'_>,
) -> Result<Vec<(String, String)>, AuthError> {
    let mut headers = Vec::new();
    // (UNCONFIRMED) An empty secret sends nothing, as a JavaScript `if (secret)` would.
    if let Some(secret) = server.secret.as_deref().filter(|s| !s.is_empty()) {
        headers.push((LEGACY_SECRET_HEADER.to_owned(), secret.to_owned()));
    }
    if let Some(id) = &server.credential_id {
        let credential = credentials
            .iter()
            .find(|c| &c.id == id)
            .ok_or_else(|| AuthError::UnknownCredential { id: id.clone() })?;
        headers.extend(credential.headers(request)?);
    }
    headers.retain(|(name, _)| !server.headers.keys().any(|k| k.eq_ignore_ascii_case(name)));
    headers.extend(server.headers.iter().map(|(name, value)| (name.clone(), value.clone())));
    Ok(headers)
}

impl WebhookCredential {
    /// The headers this credential adds to `request`, in order.
    pub fn headers(&self, request: &Outgoing<'_>) -> Result<Vec<(String, String)>, AuthError> {
        Ok(match &self.authentication_plan {
            AuthenticationPlan::Bearer(plan) => vec![(plan.header_name.clone(), plan.header_value())],
            AuthenticationPlan::Hmac(plan) => plan.headers(request)?,
            AuthenticationPlan::OAuth2(_) => {
                vec![(BEARER_HEADER.to_owned(), self.oauth2_header_value())]
            }
        })
    }

    /// The token an OAuth2 credential sends as `Authorization: Bearer <token>`. Vapi fetches it from the
    /// plan's `url` with the client credentials; the fake does not, so this is the session's
    /// `accessToken` when the credential has one, and otherwise `ringback-oauth2-<credential id>`, a
    /// token the fake mints **(UNCONFIRMED: no source; pick it up from here to configure the receiver)**.
    pub fn oauth2_access_token(&self) -> String {
        match self.authentication_session.as_ref().and_then(|s| s.access_token.as_ref()) {
            Some(token) => token.clone(),
            None => format!("ringback-oauth2-{}", self.id),
        }
    }

    fn oauth2_header_value(&self) -> String {
        format!("Bearer {}", self.oauth2_access_token())
    }
}

impl BearerPlan {
    fn header_value(&self) -> String {
        if self.bearer_prefix_enabled { format!("Bearer {}", self.token) } else { self.token.clone() }
    }
}

impl HmacPlan {
    /// The payload format in force. SPEC's default is `{timestamp}.{body}`; **(UNCONFIRMED)** with
    /// `includeTimestamp: false` and no explicit format the body alone is signed, which is what makes the
    /// GitHub-style `sha256=` prefix that SPEC cites as an example usable.
    ///
    /// Placeholders, replaced in one left-to-right pass so that text in the body is never replaced:
    /// `{body}`, `{timestamp}` (see [`TimestampUnit`]), `{method}`, `{url}` and `{svix-id}` (the
    /// message id, see [`Outgoing::message_id`]). Anything else, such as `{other}`, stays as written.
    pub fn payload_format(&self) -> &str {
        match &self.payload_format {
            Some(format) => format,
            None if self.include_timestamp => DEFAULT_PAYLOAD_FORMAT,
            None => "{body}",
        }
    }

    /// Whether the timestamp header is sent: when `includeTimestamp` says so, and **(UNCONFIRMED)** also
    /// whenever the payload signs `{timestamp}`, since a receiver could not check the signature without it.
    fn sends_timestamp(&self) -> bool {
        self.include_timestamp || self.payload_format().contains(TIMESTAMP)
    }

    fn signs_message_id(&self) -> bool {
        self.payload_format().contains(MESSAGE_ID)
    }

    /// Message id, timestamp, signature: the order Svix sends them in.
    fn headers(&self, request: &Outgoing<'_>) -> Result<Vec<(String, String)>, AuthError> {
        let key = self.key().ok_or(AuthError::SecretNotBase64)?;
        let timestamp = request.timestamp_unit.render(request.now_unix_ms);
        let signature = self.signature(
            &key,
            &Placeholders {
                body: request.body,
                timestamp: &timestamp,
                method: request.method,
                url: request.url,
                message_id: request.message_id,
            },
        );
        let mut headers = Vec::new();
        if let Some(name) = &self.message_id_header {
            headers.push((name.clone(), request.message_id.to_owned()));
        }
        if self.sends_timestamp() {
            headers.push((self.timestamp_header.clone(), timestamp));
        }
        headers.push((self.signature_header.clone(), signature));
        Ok(headers)
    }

    /// The key bytes, or `None` when `secretIsBase64` is set and `secretKey` is not standard base64.
    fn key(&self) -> Option<Vec<u8>> {
        if self.secret_is_base64 {
            BASE64.decode(&self.secret_key).ok()
        } else {
            Some(self.secret_key.as_bytes().to_vec())
        }
    }

    /// The signature header's value: the prefix and the encoded HMAC of the filled-in payload format.
    fn signature(&self, key: &[u8], values: &Placeholders<'_>) -> String {
        let payload = values.fill(self.payload_format());
        let mac = match self.algorithm {
            HmacAlgorithm::Sha1 => hmac::<Hmac<Sha1>>(key, &payload),
            HmacAlgorithm::Sha256 => hmac::<Hmac<Sha256>>(key, &payload),
            HmacAlgorithm::Sha512 => hmac::<Hmac<Sha512>>(key, &payload),
        };
        let encoded = match self.signature_encoding {
            SignatureEncoding::Hex => mac.iter().map(|b| format!("{b:02x}")).collect(),
            SignatureEncoding::Base64 => BASE64.encode(&mac),
        };
        format!("{}{encoded}", self.signature_prefix)
    }
}

fn default_bearer_header() -> String {
    BEARER_HEADER.to_owned()
}

fn default_signature_header() -> String {
    "x-signature".to_owned()
}

fn default_timestamp_header() -> String {
    "x-timestamp".to_owned()
}

fn yes() -> bool {
    true
}

fn hmac<M: Mac + KeyInit>(key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("hmac accepts keys of any length");
    mac.update(payload);
    mac.finalize().into_bytes().to_vec()
}

/// The values of a payload format's placeholders.
struct Placeholders<'a> {
    body: &'a [u8],
    timestamp: &'a str,
    method: &'a str,
    url: &'a str,
    message_id: &'a str,
}

impl Placeholders<'_> {
    /// `format` with every known placeholder replaced, in one pass.
    fn fill(&self, format: &str) -> Vec<u8> {
        let values: [(&str, &[u8]); 5] = [
            ("{body}", self.body),
            (TIMESTAMP, self.timestamp.as_bytes()),
            ("{method}", self.method.as_bytes()),
            ("{url}", self.url.as_bytes()),
            (MESSAGE_ID, self.message_id.as_bytes()),
        ];
        let mut payload = Vec::with_capacity(format.len() + self.body.len());
        let mut rest = format;
        while let Some(open) = rest.find('{') {
            payload.extend_from_slice(&rest.as_bytes()[..open]);
            let tail = &rest[open..];
            match values.iter().find(|(name, _)| tail.starts_with(name)) {
                Some((name, value)) => {
                    payload.extend_from_slice(value);
                    rest = &tail[name.len()..];
                }
                None => {
                    payload.push(b'{');
                    rest = &tail[1..];
                }
            }
        }
        payload.extend_from_slice(rest.as_bytes());
        payload
    }
}

/// A server message as a receiver got it.
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// Names are matched case-insensitively; the first of repeated names counts.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// How a verifier judges an HMAC timestamp.
#[derive(Clone, Copy, Debug)]
pub struct Freshness {
    /// The receiver's clock, in milliseconds since the Unix epoch.
    pub now_unix_ms: i64,
    /// How the timestamp is written; must match the sender's.
    pub timestamp_unit: TimestampUnit,
    /// How far the timestamp may be from `now_unix_ms`, in either direction. Svix uses five minutes.
    pub tolerance_ms: u64,
}

/// Why a received message does not authenticate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the request has no `{name}` header; the sender must add it")]
    MissingHeader { name: String },
    #[error("the `{header}` header does not carry the expected secret or token; check the credential")]
    WrongSecret { header: String },
    #[error(
        "the `{header}` signature does not match; check the secret, algorithm, encoding, prefix and payload format"
    )]
    BadSignature { header: String },
    #[error(
        "the `{header}` header is `{value}`, not an integer timestamp; send epoch seconds or milliseconds"
    )]
    MalformedTimestamp { header: String, value: String },
    #[error(
        "the timestamp ({sent_unix_ms} ms) is more than {tolerance_ms} ms from now ({now_unix_ms} ms); the message is stale or replayed, or the clocks or timestamp units disagree"
    )]
    StaleTimestamp { sent_unix_ms: i64, now_unix_ms: i64, tolerance_ms: u64 },
    #[error(
        "the payload format signs {{svix-id}} but the plan has no messageIdHeader to carry it; set messageIdHeader"
    )]
    NoMessageIdHeader,
    #[error(
        "the HMAC plan sets secretIsBase64 but secretKey is not standard base64; encode the key (without a `whsec_` prefix) or set secretIsBase64 to false"
    )]
    SecretNotBase64,
}

/// Checks the legacy `x-vapi-secret` header.
pub fn verify_secret(secret: &str, request: &Received<'_>) -> Result<(), VerifyError> {
    expect_header(request.headers, LEGACY_SECRET_HEADER, secret)
}

/// Checks that `request` carries `credential`'s authentication: the bearer or OAuth2 header, or for an
/// HMAC plan a fresh timestamp (when one is sent) and a signature over the body as received.
pub fn verify_credential(
    credential: &WebhookCredential,
    request: &Received<'_>,
    freshness: &Freshness,
) -> Result<(), VerifyError> {
    match &credential.authentication_plan {
        AuthenticationPlan::Bearer(plan) => {
            expect_header(request.headers, &plan.header_name, &plan.header_value())
        }
        AuthenticationPlan::OAuth2(_) => {
            expect_header(request.headers, BEARER_HEADER, &credential.oauth2_header_value())
        }
        AuthenticationPlan::Hmac(plan) => verify_hmac(plan, request, freshness),
    }
}

fn verify_hmac(plan: &HmacPlan, request: &Received<'_>, freshness: &Freshness) -> Result<(), VerifyError> {
    let key = plan.key().ok_or(VerifyError::SecretNotBase64)?;
    let signature = required_header(request.headers, &plan.signature_header)?;
    let message_id = if plan.signs_message_id() {
        let name = plan.message_id_header.as_deref().ok_or(VerifyError::NoMessageIdHeader)?;
        required_header(request.headers, name)?
    } else {
        ""
    };
    let timestamp = if plan.sends_timestamp() {
        let value = required_header(request.headers, &plan.timestamp_header)?;
        check_fresh(&plan.timestamp_header, value, freshness)?;
        value
    } else {
        ""
    };
    let expected = plan.signature(
        &key,
        &Placeholders { body: request.body, timestamp, method: request.method, url: request.url, message_id },
    );
    if constant_time_eq(signature.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature { header: plan.signature_header.clone() })
    }
}

fn check_fresh(header: &str, value: &str, freshness: &Freshness) -> Result<(), VerifyError> {
    let malformed = || VerifyError::MalformedTimestamp { header: header.to_owned(), value: value.to_owned() };
    let sent = value.parse::<i64>().map_err(|_| malformed())?;
    let sent_unix_ms = freshness.timestamp_unit.to_unix_ms(sent);
    if sent_unix_ms.abs_diff(freshness.now_unix_ms) > freshness.tolerance_ms {
        return Err(VerifyError::StaleTimestamp {
            sent_unix_ms,
            now_unix_ms: freshness.now_unix_ms,
            tolerance_ms: freshness.tolerance_ms,
        });
    }
    Ok(())
}

fn expect_header(headers: &[(String, String)], name: &str, expected: &str) -> Result<(), VerifyError> {
    let value = required_header(headers, name)?;
    if constant_time_eq(value.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(VerifyError::WrongSecret { header: name.to_owned() })
    }
}

fn required_header<'h>(headers: &'h [(String, String)], name: &str) -> Result<&'h str, VerifyError> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
        .ok_or_else(|| VerifyError::MissingHeader { name: name.to_owned() })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // The length is not secret: an honest signature has a fixed length for its plan.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const BODY: &[u8] =
        br#"{"message":{"type":"status-update","status":"ringing","timestamp":1767225600123}}"#;
    /// 2026-01-01T00:00:00.123Z.
    const NOW_MS: i64 = 1_767_225_600_123;
    const URL: &str = "https://example.com/vapi?x=1";
    const MESSAGE_ID: &str = "msg_0001";

    fn outgoing(unit: TimestampUnit) -> Outgoing<'static> {
        Outgoing {
            method: "POST",
            url: URL,
            body: BODY,
            now_unix_ms: NOW_MS,
            message_id: MESSAGE_ID,
            timestamp_unit: unit,
        }
    }

    fn credential(plan: serde_json::Value) -> WebhookCredential {
        serde_json::from_value(json!({"id": "cred_1", "authenticationPlan": plan})).unwrap()
    }

    fn hmac_credential(fields: serde_json::Value) -> WebhookCredential {
        let mut plan = json!({"type": "hmac", "secretKey": "s3cr3t-key", "algorithm": "sha256"});
        plan.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        credential(plan)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn with_credential(id: &str) -> ServerAuth {
        ServerAuth { credential_id: Some(id.to_owned()), ..ServerAuth::default() }
    }

    fn received<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> Received<'a> {
        Received { method: "POST", url: URL, headers, body }
    }

    fn fresh(now_unix_ms: i64) -> Freshness {
        Freshness { now_unix_ms, timestamp_unit: TimestampUnit::Seconds, tolerance_ms: 300_000 }
    }

    #[test]
    fn plans_deserialize_with_the_spec_defaults() {
        let bearer = credential(json!({"type": "bearer", "token": "t"}));
        assert_eq!(
            bearer.authentication_plan,
            AuthenticationPlan::Bearer(BearerPlan {
                token: "t".into(),
                header_name: "Authorization".into(),
                bearer_prefix_enabled: true,
            })
        );
        let hmac = hmac_credential(json!({}));
        assert_eq!(
            hmac.authentication_plan,
            AuthenticationPlan::Hmac(HmacPlan {
                secret_key: "s3cr3t-key".into(),
                algorithm: HmacAlgorithm::Sha256,
                signature_header: "x-signature".into(),
                timestamp_header: "x-timestamp".into(),
                signature_prefix: String::new(),
                include_timestamp: true,
                payload_format: None,
                message_id_header: None,
                signature_encoding: SignatureEncoding::Hex,
                secret_is_base64: false,
            })
        );
        let oauth2 = credential(json!({
            "type": "oauth2", "url": "https://auth.example.com/token", "clientId": "c", "clientSecret": "s"
        }));
        assert!(matches!(
            oauth2.authentication_plan,
            AuthenticationPlan::OAuth2(OAuth2Plan { scope: None, .. })
        ));
    }

    #[test]
    fn plans_missing_required_fields_or_with_unknown_types_are_rejected() {
        let parse = |plan| serde_json::from_value::<AuthenticationPlan>(plan);
        assert!(parse(json!({"type": "hmac", "secretKey": "k"})).is_err());
        assert!(parse(json!({"type": "hmac", "secretKey": "k", "algorithm": "md5"})).is_err());
        assert!(parse(json!({"type": "bearer"})).is_err());
        assert!(parse(json!({"type": "oauth2", "url": "u", "clientId": "c"})).is_err());
        assert!(parse(json!({"type": "basic", "token": "t"})).is_err());
    }

    #[test]
    fn a_whole_server_object_reads_as_server_auth() {
        let server: ServerAuth = serde_json::from_value(json!({
            "url": "https://example.com/vapi", "timeoutSeconds": 20, "credentialId": "cred_1",
            "headers": {"X-B": "2", "X-A": "1"}
        }))
        .unwrap();
        assert_eq!(server.credential_id.as_deref(), Some("cred_1"));
        assert_eq!(server.headers.keys().collect::<Vec<_>>(), ["X-B", "X-A"]);
    }

    #[test]
    fn a_bearer_plan_sends_its_token_with_or_without_the_prefix() {
        let standard = credential(json!({"type": "bearer", "token": "tok"}));
        assert_eq!(
            standard.headers(&outgoing(TimestampUnit::Seconds)).unwrap(),
            pairs(&[("Authorization", "Bearer tok")])
        );
        // DOCS:server-url/server-authentication: the legacy-compatible credential.
        let legacy = credential(json!({
            "type": "bearer", "token": "tok", "headerName": "X-Vapi-Secret", "bearerPrefixEnabled": false
        }));
        assert_eq!(
            legacy.headers(&outgoing(TimestampUnit::Seconds)).unwrap(),
            pairs(&[("X-Vapi-Secret", "tok")])
        );
    }

    #[test]
    fn a_legacy_secret_is_sent_as_x_vapi_secret_unless_empty() {
        let server = ServerAuth { secret: Some("shh".into()), ..ServerAuth::default() };
        let headers = auth_headers(&server, &[], &outgoing(TimestampUnit::Seconds)).unwrap();
        assert_eq!(headers, pairs(&[("x-vapi-secret", "shh")]));
        let empty = ServerAuth { secret: Some(String::new()), ..ServerAuth::default() };
        assert_eq!(auth_headers(&empty, &[], &outgoing(TimestampUnit::Seconds)).unwrap(), []);
    }

    #[test]
    fn an_oauth2_plan_sends_the_session_token_or_one_minted_from_the_credential_id() {
        let plan = json!({"type": "oauth2", "url": "https://auth.example.com/token", "clientId": "c", "clientSecret": "s"});
        let minted = credential(plan.clone());
        assert_eq!(
            minted.headers(&outgoing(TimestampUnit::Seconds)).unwrap(),
            pairs(&[("Authorization", "Bearer ringback-oauth2-cred_1")])
        );
        let session: WebhookCredential = serde_json::from_value(json!({
            "id": "cred_1", "authenticationPlan": plan, "authenticationSession": {"accessToken": "at-123"}
        }))
        .unwrap();
        assert_eq!(
            session.headers(&outgoing(TimestampUnit::Seconds)).unwrap(),
            pairs(&[("Authorization", "Bearer at-123")])
        );
    }

    // Expected signatures computed with Python 3's hmac module, e.g.
    //   hmac.new(b"s3cr3t-key", b"1767225600." + BODY, hashlib.sha256).hexdigest()
    // with base64.b64encode(...digest()) for base64; the first and the sha512/base64 rows were
    // cross-checked with `printf '%s' <payload> | openssl dgst -sha256 -hmac s3cr3t-key` (and `-sha512
    // -binary | base64`). BODY and the timestamps are the constants above.
    #[test]
    fn hmac_signatures_match_independently_computed_vectors() {
        let cases = [
            // Defaults: sha256, hex, "{timestamp}.{body}", seconds.
            (
                json!({}),
                TimestampUnit::Seconds,
                "8a867b3320910ebf35bed72c52da2087a8f90641f90b7c62e9c1049ccd39524d",
            ),
            (
                json!({}),
                TimestampUnit::Milliseconds,
                "db352b5536aaab94118fe1278f7cd2f7188e0a9e228ca59fc4b8a935e90eca4e",
            ),
            (
                json!({"algorithm": "sha1", "includeTimestamp": false, "signaturePrefix": "sha1="}),
                TimestampUnit::Seconds,
                "sha1=9379c505435e57884dfe5dc1e11fb445d183513b",
            ),
            (
                json!({"algorithm": "sha1", "signatureEncoding": "base64"}),
                TimestampUnit::Seconds,
                "rD8g7Z17fQIAM9trnijPnxHMidQ=",
            ),
            (
                json!({"algorithm": "sha512", "signaturePrefix": "sha512="}),
                TimestampUnit::Seconds,
                "sha512=66f5ca41c18a81825dc7a4abbd781571842535c6d0a8bff2045f21b28547d8a570fda10d23886815a3464dbc56dc585ceaf6f8220a1d615a38bb4ca5a1ac9070",
            ),
            (
                json!({"algorithm": "sha512", "signatureEncoding": "base64", "includeTimestamp": false}),
                TimestampUnit::Seconds,
                "Q1HXa3PVBwpZFU8dWw+ymFKW+dhDYDwQHFawoBg19Bmuc1DeV+pOml98tVcT/AIgjQEc1pOlFDScaZmPvPt8Gg==",
            ),
            // Key bytes 00 01 "binary" fe ff.
            (
                json!({"algorithm": "sha1", "secretKey": "AAFiaW5hcnn+/w==", "secretIsBase64": true}),
                TimestampUnit::Seconds,
                "7e5e4ba7e4cea0c71fadb8327ccb73a8107c8ebc",
            ),
            // Payload b"POST https://example.com/vapi?x=1\n1767225600\n" + BODY.
            (
                json!({"payloadFormat": "{method} {url}\n{timestamp}\n{body}"}),
                TimestampUnit::Seconds,
                "d8a8fcd1fcf097b6a94b9cf9c8ff36ac669399976c4de5aa5d1de6f05828726c",
            ),
        ];
        for (fields, unit, expected) in cases {
            let headers = hmac_credential(fields.clone()).headers(&outgoing(unit)).unwrap();
            let signature = required_header(&headers, "x-signature").unwrap();
            assert_eq!(signature, expected, "plan fields {fields}, {unit:?}");
        }
    }

    #[test]
    fn hmac_headers_carry_the_timestamp_in_the_chosen_unit() {
        let headers = hmac_credential(json!({})).headers(&outgoing(TimestampUnit::Seconds)).unwrap();
        assert_eq!(
            headers,
            pairs(&[
                ("x-timestamp", "1767225600"),
                ("x-signature", "8a867b3320910ebf35bed72c52da2087a8f90641f90b7c62e9c1049ccd39524d"),
            ])
        );
        let headers = hmac_credential(json!({})).headers(&outgoing(TimestampUnit::Milliseconds)).unwrap();
        assert_eq!(required_header(&headers, "x-timestamp").unwrap(), "1767225600123");
    }

    #[test]
    fn without_include_timestamp_no_timestamp_is_sent_unless_the_format_signs_one() {
        let headers = hmac_credential(json!({"includeTimestamp": false}))
            .headers(&outgoing(TimestampUnit::Seconds))
            .unwrap();
        assert_eq!(headers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), ["x-signature"]);
        let headers =
            hmac_credential(json!({"includeTimestamp": false, "payloadFormat": "{timestamp}:{body}"}))
                .headers(&outgoing(TimestampUnit::Seconds))
                .unwrap();
        assert_eq!(required_header(&headers, "x-timestamp").unwrap(), "1767225600");
    }

    // The Standard Webhooks / Svix published test vector (secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,
    // id msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp 1614265330, body {"test": 2432232314}), reproduced with
    // Python: base64.b64encode(hmac.new(base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    // b'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}', hashlib.sha256).digest()).
    // A Svix-style plan with the default seconds therefore verifies with a stock Svix library.
    #[test]
    fn a_svix_style_plan_reproduces_the_standard_webhooks_vector() {
        let svix = hmac_credential(json!({
            "secretKey": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "secretIsBase64": true,
            "signatureEncoding": "base64", "signaturePrefix": "v1,",
            "payloadFormat": "{svix-id}.{timestamp}.{body}",
            "signatureHeader": "svix-signature", "timestampHeader": "svix-timestamp", "messageIdHeader": "svix-id"
        }));
        let request = Outgoing {
            body: br#"{"test": 2432232314}"#,
            now_unix_ms: 1_614_265_330_000,
            message_id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
            ..outgoing(TimestampUnit::Seconds)
        };
        assert_eq!(
            svix.headers(&request).unwrap(),
            pairs(&[
                ("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
                ("svix-timestamp", "1614265330"),
                ("svix-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
            ])
        );
    }

    // Python: hmac.new(b"s3cr3t-key", b'{nope}|{"a":"{timestamp}"}', hashlib.sha256).hexdigest().
    #[test]
    fn placeholders_are_replaced_once_and_unknown_ones_stay() {
        let plan = hmac_credential(json!({"payloadFormat": "{nope}|{body}"}));
        let request = Outgoing { body: br#"{"a":"{timestamp}"}"#, ..outgoing(TimestampUnit::Seconds) };
        let headers = plan.headers(&request).unwrap();
        assert_eq!(
            required_header(&headers, "x-signature").unwrap(),
            "b8ce01a694af84927a7b1f45a482bf72c61af9f88c7b7c7e3ba283cd4ba93cba"
        );
    }

    #[test]
    fn an_authorization_in_server_headers_overrides_the_credential() {
        let credentials = [credential(json!({"type": "bearer", "token": "tok"}))];
        let server = ServerAuth {
            secret: Some("shh".into()),
            credential_id: Some("cred_1".into()),
            headers: [("X-Team", "blue"), ("authorization", "Bearer mine")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        };
        let headers = auth_headers(&server, &credentials, &outgoing(TimestampUnit::Seconds)).unwrap();
        assert_eq!(
            headers,
            pairs(&[("x-vapi-secret", "shh"), ("X-Team", "blue"), ("authorization", "Bearer mine")])
        );
        let without = ServerAuth { headers: IndexMap::new(), ..server };
        let headers = auth_headers(&without, &credentials, &outgoing(TimestampUnit::Seconds)).unwrap();
        assert_eq!(headers, pairs(&[("x-vapi-secret", "shh"), ("Authorization", "Bearer tok")]));
    }

    #[test]
    fn an_unknown_credential_or_a_bad_base64_secret_is_an_error() {
        let request = outgoing(TimestampUnit::Seconds);
        assert_eq!(
            auth_headers(&with_credential("cred_missing"), &[], &request),
            Err(AuthError::UnknownCredential { id: "cred_missing".into() })
        );
        let bad = hmac_credential(
            json!({"secretKey": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "secretIsBase64": true}),
        );
        assert_eq!(
            auth_headers(&with_credential("cred_1"), std::slice::from_ref(&bad), &request),
            Err(AuthError::SecretNotBase64)
        );
        let headers = pairs(&[("x-timestamp", "1767225600"), ("x-signature", "00")]);
        assert_eq!(
            verify_credential(&bad, &received(&headers, BODY), &fresh(NOW_MS)),
            Err(VerifyError::SecretNotBase64)
        );
    }

    #[test]
    fn every_plan_verifies_what_it_signed() {
        let plans = [
            json!({"type": "bearer", "token": "tok"}),
            json!({"type": "bearer", "token": "tok", "headerName": "X-Vapi-Secret", "bearerPrefixEnabled": false}),
            json!({"type": "oauth2", "url": "https://auth.example.com/token", "clientId": "c", "clientSecret": "s"}),
            json!({"type": "hmac", "secretKey": "k", "algorithm": "sha1"}),
            json!({"type": "hmac", "secretKey": "k", "algorithm": "sha512", "includeTimestamp": false}),
            json!({
                "type": "hmac", "secretKey": "AAFiaW5hcnn+/w==", "secretIsBase64": true, "algorithm": "sha256",
                "signatureEncoding": "base64", "signaturePrefix": "v1,", "messageIdHeader": "webhook-id",
                "payloadFormat": "{svix-id}.{timestamp}.{method}.{url}.{body}"
            }),
        ];
        for plan in plans {
            let credential = credential(plan.clone());
            let headers = auth_headers(
                &with_credential("cred_1"),
                std::slice::from_ref(&credential),
                &outgoing(TimestampUnit::Seconds),
            )
            .unwrap();
            assert_eq!(
                verify_credential(&credential, &received(&headers, BODY), &fresh(NOW_MS)),
                Ok(()),
                "{plan}"
            );
        }
    }

    #[test]
    fn the_verifier_names_a_missing_header() {
        let hmac = hmac_credential(json!({}));
        let headers = hmac.headers(&outgoing(TimestampUnit::Seconds)).unwrap();
        let no_timestamp: Vec<_> = headers.iter().filter(|(n, _)| n != "x-timestamp").cloned().collect();
        assert_eq!(
            verify_credential(&hmac, &received(&no_timestamp, BODY), &fresh(NOW_MS)),
            Err(VerifyError::MissingHeader { name: "x-timestamp".into() })
        );
        assert_eq!(
            verify_credential(&hmac, &received(&headers[..1], BODY), &fresh(NOW_MS)),
            Err(VerifyError::MissingHeader { name: "x-signature".into() })
        );
        let bearer = credential(json!({"type": "bearer", "token": "tok"}));
        assert_eq!(
            verify_credential(&bearer, &received(&[], BODY), &fresh(NOW_MS)),
            Err(VerifyError::MissingHeader { name: "Authorization".into() })
        );
        assert_eq!(
            verify_secret("shh", &received(&[], BODY)),
            Err(VerifyError::MissingHeader { name: "x-vapi-secret".into() })
        );
    }

    #[test]
    fn the_verifier_rejects_a_wrong_secret_or_token() {
        assert_eq!(verify_secret("shh", &received(&pairs(&[("X-Vapi-Secret", "shh")]), BODY)), Ok(()));
        assert_eq!(
            verify_secret("shh", &received(&pairs(&[("x-vapi-secret", "nope")]), BODY)),
            Err(VerifyError::WrongSecret { header: "x-vapi-secret".into() })
        );
        let bearer = credential(json!({"type": "bearer", "token": "tok"}));
        let unprefixed = pairs(&[("authorization", "tok")]);
        assert_eq!(
            verify_credential(&bearer, &received(&unprefixed, BODY), &fresh(NOW_MS)),
            Err(VerifyError::WrongSecret { header: "Authorization".into() })
        );
    }

    #[test]
    fn the_verifier_rejects_a_signature_over_other_bytes_or_with_another_key() {
        let hmac = hmac_credential(json!({}));
        let headers = hmac.headers(&outgoing(TimestampUnit::Seconds)).unwrap();
        let bad = Err(VerifyError::BadSignature { header: "x-signature".into() });
        assert_eq!(verify_credential(&hmac, &received(&headers, b"{}"), &fresh(NOW_MS)), bad);
        let other_key = hmac_credential(json!({"secretKey": "other"}));
        assert_eq!(verify_credential(&other_key, &received(&headers, BODY), &fresh(NOW_MS)), bad);
        let mut retimed = headers.clone();
        retimed[0].1 = "1767225601".into();
        assert_eq!(verify_credential(&hmac, &received(&retimed, BODY), &fresh(NOW_MS)), bad);
    }

    #[test]
    fn the_verifier_rejects_a_stale_future_or_malformed_timestamp() {
        let hmac = hmac_credential(json!({}));
        let headers = hmac.headers(&outgoing(TimestampUnit::Seconds)).unwrap();
        let sent_unix_ms = 1_767_225_600_000;
        assert_eq!(
            verify_credential(&hmac, &received(&headers, BODY), &fresh(sent_unix_ms + 300_000)),
            Ok(())
        );
        for now_unix_ms in [sent_unix_ms + 300_001, sent_unix_ms - 300_001] {
            assert_eq!(
                verify_credential(&hmac, &received(&headers, BODY), &fresh(now_unix_ms)),
                Err(VerifyError::StaleTimestamp { sent_unix_ms, now_unix_ms, tolerance_ms: 300_000 })
            );
        }
        // A sender writing milliseconds to a receiver expecting seconds looks like the far future.
        let millis = hmac.headers(&outgoing(TimestampUnit::Milliseconds)).unwrap();
        assert!(matches!(
            verify_credential(&hmac, &received(&millis, BODY), &fresh(NOW_MS)),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        let mut malformed = headers.clone();
        malformed[0].1 = "2026-01-01T00:00:00Z".into();
        assert_eq!(
            verify_credential(&hmac, &received(&malformed, BODY), &fresh(NOW_MS)),
            Err(VerifyError::MalformedTimestamp {
                header: "x-timestamp".into(),
                value: "2026-01-01T00:00:00Z".into()
            })
        );
    }

    #[test]
    fn the_verifier_needs_the_message_id_the_format_signs() {
        let no_header = hmac_credential(json!({"payloadFormat": "{svix-id}.{body}"}));
        let headers = no_header.headers(&outgoing(TimestampUnit::Seconds)).unwrap();
        assert_eq!(
            verify_credential(&no_header, &received(&headers, BODY), &fresh(NOW_MS)),
            Err(VerifyError::NoMessageIdHeader)
        );
        let with_header =
            hmac_credential(json!({"payloadFormat": "{svix-id}.{body}", "messageIdHeader": "x-id"}));
        let headers = with_header.headers(&outgoing(TimestampUnit::Seconds)).unwrap();
        assert_eq!(required_header(&headers, "x-id").unwrap(), MESSAGE_ID);
        let without_id: Vec<_> = headers.iter().filter(|(n, _)| n != "x-id").cloned().collect();
        assert_eq!(
            verify_credential(&with_header, &received(&without_id, BODY), &fresh(NOW_MS)),
            Err(VerifyError::MissingHeader { name: "x-id".into() })
        );
    }

    proptest::proptest! {
        #[test]
        fn any_hmac_plan_verifies_its_own_signature_and_not_another_body(
            secret in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            secret_is_base64 in proptest::bool::ANY,
            algorithm in proptest::sample::select(vec!["sha1", "sha256", "sha512"]),
            encoding in proptest::sample::select(vec!["hex", "base64"]),
            prefix in "[a-z0-9=,]{0,8}",
            include_timestamp in proptest::bool::ANY,
            format in proptest::option::of("[{}a-z.:-]{0,12}(\\{body\\}|\\{timestamp\\}|\\{svix-id\\}|\\{url\\}|\\{method\\})[{}a-z.:-]{0,12}"),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            now_unix_ms in 0i64..4_000_000_000_000,
            milliseconds in proptest::bool::ANY,
        ) {
            let secret_key = if secret_is_base64 {
                BASE64.encode(&secret)
            } else {
                String::from_utf8_lossy(&secret).into_owned()
            };
            let mut plan = json!({
                "type": "hmac", "secretKey": secret_key, "secretIsBase64": secret_is_base64,
                "algorithm": algorithm, "signatureEncoding": encoding, "signaturePrefix": prefix,
                "includeTimestamp": include_timestamp, "messageIdHeader": "x-id"
            });
            // Both default formats sign the body.
            let signs_body = format.as_deref().is_none_or(|f| f.contains("{body}"));
            if let Some(format) = format {
                plan["payloadFormat"] = json!(format);
            }
            let credential = credential(plan);
            let unit = if milliseconds { TimestampUnit::Milliseconds } else { TimestampUnit::Seconds };
            let request = Outgoing { body: &body, now_unix_ms, timestamp_unit: unit, ..outgoing(unit) };
            let headers = credential.headers(&request).unwrap();
            let freshness = Freshness { now_unix_ms, timestamp_unit: unit, tolerance_ms: 1000 };
            proptest::prop_assert_eq!(verify_credential(&credential, &received(&headers, &body), &freshness), Ok(()));
            let mut other = body.clone();
            other.push(b' ');
            let tampered = verify_credential(&credential, &received(&headers, &other), &freshness);
            proptest::prop_assert_eq!(tampered.is_ok(), !signs_body);
        }
    }
}
