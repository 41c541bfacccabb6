//! `X-Twilio-Signature`: signing the webhooks the fake sends, validating signatures the way the official
//! SDK validators do, and stripping the `#…` connection overrides from a webhook URL before it is used.
//!
//! Twilio (reference §10; PY `twilio/request_validator.py`, NODE `src/webhooks/webhooks.ts`): the signed
//! string is the full URL followed, for a form POST, by every parameter name and value with the names
//! sorted and the values of a repeated name sorted and deduplicated. The signature is the base64 of
//! HMAC-SHA1 keyed with the auth token. A JSON body is signed through its hash instead: the URL carries
//! `bodySHA256=<hex sha256 of the body>` and no parameters are appended.
//!
//! Sorting is by Rust string order (Unicode scalar values), which is what Python's `sorted` does. Node sorts
//! by UTF-16 code units, which disagrees only between characters above U+FFFF and those in U+E000–U+FFFF.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// The query parameter that carries the hex SHA-256 of a JSON body.
pub const BODY_SHA256_PARAM: &str = "bodySHA256";

/// The signature of a form POST to `url` with `params` (pass an empty slice for a GET, whose parameters are
/// already in the URL's query string). `url` must be exactly the URL requested, without a fragment.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// A JSON request ready to send: the URL to call (carrying `bodySHA256`) and its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedJson {
    pub url: String,
    pub signature: String,
}

/// Signs a request whose body is JSON: appends `bodySHA256=<hex sha256 of body>` to `url`'s query and signs
/// the resulting URL with no parameters.
pub fn sign_json(auth_token: &str, url: &str, body: &[u8]) -> SignedJson {
    let url = url_with_body_sha256(url, body);
    let signature = sign(auth_token, &url, &[]);
    SignedJson { url, signature }
}

/// `url` with `bodySHA256=<hex sha256 of body>` appended to its query string.
pub fn url_with_body_sha256(url: &str, body: &[u8]) -> String {
    let separator = match url.find('?') {
        None => "?",
        Some(q) if q + 1 == url.len() || url.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{url}{separator}{BODY_SHA256_PARAM}={}", sha256_hex(body))
}

/// Whether `signature` is what Twilio would send for a form POST (or a GET, with no `params`) to `url`.
///
/// Like both official validators, this accepts a signature computed over the URL with its port removed or
/// with the scheme's default port (`:443`, `:80`) added, because Twilio's back end is not consistent about
/// it. The comparison is constant-time.
pub fn validate(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(expected) = BASE64.decode(signature.as_bytes()) else {
        return false;
    };
    // `verify_slice` compares in constant time. Base64 decoding with padding and canonical trailing bits
    // is one-to-one, so comparing the decoded bytes is comparing the header strings, as the SDKs do.
    let mut any = false;
    for candidate in [without_port(url), with_default_port(url)] {
        any |= mac(auth_token, &candidate, params).verify_slice(&expected).is_ok();
    }
    any
}

/// Whether a JSON request to `url` with `body` carries a valid `signature`: the signature must validate for
/// the URL alone and the URL's `bodySHA256` must be the body's hash (PY `validate` with a `str` body, NODE
/// `validateRequestWithBody`).
pub fn validate_json(auth_token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    let Some(claimed) = query_param(url, BODY_SHA256_PARAM) else {
        return false;
    };
    let hash_ok = constant_time_eq(claimed.as_bytes(), sha256_hex(body).as_bytes());
    let signature_ok = validate(auth_token, url, &[], signature);
    hash_ok & signature_ok
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("hmac accepts keys of any length");
    mac.update(url.as_bytes());
    let mut sorted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, value) in params {
        sorted.entry(name).or_default().insert(value);
    }
    for (name, values) in sorted {
        for value in values {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
    }
    mac
}

fn sha256_hex(body: &[u8]) -> String {
    Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // The length is not secret: both sides are fixed-size hashes when the input is honest.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The first value of query parameter `name` in `url`, percent-decoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    let (_, query) = url.split_once('?')?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A URL split around its authority's port, without normalizing anything (NODE `splitUrl`).
struct UrlParts<'a> {
    /// `scheme://userinfo@host`
    head: &'a str,
    /// `:port`, or empty.
    port: &'a str,
    /// Path, query and fragment.
    rest: &'a str,
    scheme: &'a str,
}

fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    let authority_start = scheme_end + 3;
    let authority_end =
        url[authority_start..].find(['/', '?', '#']).map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_and_port = &authority[host_start..];
    // A colon starts the port only after the closing bracket of an IPv6 literal.
    let search_from = host_and_port.rfind(']').map_or(0, |i| i + 1);
    let port_start =
        host_and_port[search_from..].find(':').map(|i| authority_start + host_start + search_from + i);
    let head_end = port_start.unwrap_or(authority_end);
    Some(UrlParts {
        head: &url[..head_end],
        port: &url[head_end..authority_end],
        rest: &url[authority_end..],
        scheme,
    })
}

fn without_port(url: &str) -> String {
    match split_url(url) {
        Some(parts) => format!("{}{}", parts.head, parts.rest),
        None => url.to_owned(),
    }
}

fn with_default_port(url: &str) -> String {
    match split_url(url) {
        Some(parts) if parts.port.is_empty() => {
            let port = if parts.scheme.eq_ignore_ascii_case("https") { ":443" } else { ":80" };
            format!("{}{port}{}", parts.head, parts.rest)
        }
        _ => url.to_owned(),
    }
}

/// Twilio's per-webhook connection settings, written as a URL fragment such as `#ct=2000&rc=3&rp=all`
/// (reference §5 "connection overrides"; DOC webhooks-connection-overrides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionOverrides {
    /// `ct`: how long to wait for the TCP connection. Default 5000, range 100–10000.
    pub connect_timeout_ms: u32,
    /// `rt`: how long to wait for the first response byte, and between packets. Default 15000, 100–15000.
    pub read_timeout_ms: u32,
    /// `tt`: the total time for every attempt together. Default 15000, range 100–15000.
    pub total_time_ms: u32,
    /// `rc`: how many times to retry a failed attempt. Default 1, range 0–5.
    pub retry_count: u8,
    /// `rp`: which failures are retried.
    pub retry_policy: RetryPolicy,
}

impl Default for ConnectionOverrides {
    fn default() -> Self {
        ConnectionOverrides {
            connect_timeout_ms: 5000,
            read_timeout_ms: 15000,
            total_time_ms: 15000,
            retry_count: 1,
            retry_policy: RetryPolicy::default(),
        }
    }
}

/// The failures a webhook attempt is retried after (`rp=4xx,5xx,ct,rt` or `rp=all`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub on_4xx: bool,
    pub on_5xx: bool,
    pub on_connect_timeout: bool,
    pub on_read_timeout: bool,
}

impl RetryPolicy {
    pub const ALL: RetryPolicy =
        RetryPolicy { on_4xx: true, on_5xx: true, on_connect_timeout: true, on_read_timeout: true };
    const NONE: RetryPolicy =
        RetryPolicy { on_4xx: false, on_5xx: false, on_connect_timeout: false, on_read_timeout: false };
}

impl Default for RetryPolicy {
    /// Retry connect timeouts only. The reference marks this default **(UNCONFIRMED)**.
    fn default() -> Self {
        RetryPolicy { on_connect_timeout: true, ..RetryPolicy::NONE }
    }
}

/// Splits a configured webhook URL into the URL to request and sign (everything before `#`) and the
/// connection overrides its fragment carries. Twilio never sends the fragment to the server.
///
/// Unknown keys (`e`, `sni`, anything else) are ignored. A value that is not a number keeps the default; a
/// number outside the documented range is clamped into it. **(UNCONFIRMED)**: the docs give the ranges but
/// not what Twilio does with a value outside them.
pub fn strip_connection_overrides(url: &str) -> (&str, ConnectionOverrides) {
    connection_overrides_over(url, ConnectionOverrides::default())
}

/// [`strip_connection_overrides`] over `base` instead of the documented defaults: a key the fragment
/// does not set (or sets to something unreadable) keeps `base`'s value.
pub fn connection_overrides_over(url: &str, base: ConnectionOverrides) -> (&str, ConnectionOverrides) {
    let Some((url, fragment)) = url.split_once('#') else {
        return (url, base);
    };
    let mut overrides = base;
    for (key, value) in form_urlencoded::parse(fragment.as_bytes()) {
        let number = || value.trim().parse::<u32>().ok();
        match key.as_ref() {
            "ct" => {
                overrides.connect_timeout_ms =
                    number().map_or(base.connect_timeout_ms, |n| n.clamp(100, 10_000))
            }
            "rt" => {
                overrides.read_timeout_ms = number().map_or(base.read_timeout_ms, |n| n.clamp(100, 15_000))
            }
            "tt" => overrides.total_time_ms = number().map_or(base.total_time_ms, |n| n.clamp(100, 15_000)),
            "rc" => overrides.retry_count = number().map_or(base.retry_count, |n| n.min(5) as u8),
            "rp" => overrides.retry_policy = RetryPolicy::parse(&value).unwrap_or(base.retry_policy),
            _ => {}
        }
    }
    (url, overrides)
}

impl RetryPolicy {
    /// `4xx,5xx,ct,rt` or `all`; `None` when nothing in it is a known policy.
    pub fn parse(value: &str) -> Option<RetryPolicy> {
        let mut policy = RetryPolicy::NONE;
        for part in value.split(',').map(str::trim) {
            match part {
                "4xx" => policy.on_4xx = true,
                "5xx" => policy.on_5xx = true,
                "ct" => policy.on_connect_timeout = true,
                "rt" => policy.on_read_timeout = true,
                "all" => policy = RetryPolicy::ALL,
                _ => {}
            }
        }
        (policy != RetryPolicy::NONE).then_some(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn twilio_doc_params() -> Vec<(String, String)> {
        p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ])
    }

    // Expected values computed with twilio-python 9.13.0:
    // RequestValidator("12345").compute_signature(url, params), with a MultiDict for repeated names.
    #[test]
    fn signs_a_form_post_as_the_python_sdk_does() {
        assert_eq!(sign(TOKEN, URL, &twilio_doc_params()), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }

    #[test]
    fn signs_a_get_over_the_url_alone() {
        assert_eq!(sign(TOKEN, URL, &[]), "zYQTYrRWXE7LtzbG4PfP7/bkkGo=");
    }

    #[test]
    fn sorts_names_and_repeated_values_and_drops_duplicate_pairs() {
        let params = p(&[("b", "2"), ("a", "z"), ("a", "y"), ("a", "z"), ("c", "")]);
        assert_eq!(sign(TOKEN, URL, &params), "0L5kXW5nNgeVbqvUao7JJlcEy4c=");
        let reordered = p(&[("a", "y"), ("c", ""), ("a", "z"), ("b", "2")]);
        assert_eq!(sign(TOKEN, URL, &params), sign(TOKEN, URL, &reordered));
    }

    #[test]
    fn signs_a_json_body_through_its_hash() {
        let signed = sign_json(TOKEN, "https://example.com/hook?x=1", br#"{"a":1}"#);
        assert_eq!(
            signed.url,
            "https://example.com/hook?x=1&bodySHA256=015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
        );
        assert_eq!(signed.signature, "6isBK+OOTaockK5te8cJd2prCmI=");
        assert!(validate_json(TOKEN, &signed.url, br#"{"a":1}"#, &signed.signature));
        assert!(!validate_json(TOKEN, &signed.url, br#"{"a":2}"#, &signed.signature));
        assert!(!validate_json(TOKEN, "https://example.com/hook?x=1", br#"{"a":1}"#, &signed.signature));
    }

    #[test]
    fn appends_body_sha256_with_the_right_separator() {
        let hash = sha256_hex(b"");
        assert_eq!(url_with_body_sha256("https://a/b", b""), format!("https://a/b?bodySHA256={hash}"));
        assert_eq!(url_with_body_sha256("https://a/b?", b""), format!("https://a/b?bodySHA256={hash}"));
        assert_eq!(
            url_with_body_sha256("https://a/b?x=1&", b""),
            format!("https://a/b?x=1&bodySHA256={hash}")
        );
    }

    #[test]
    fn validates_with_or_without_the_default_port() {
        let params = twilio_doc_params();
        let signature = sign(TOKEN, URL, &params);
        assert!(validate(TOKEN, URL, &params, &signature));
        assert!(validate(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", &params, &signature));
        let with_port = sign(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", &params);
        assert!(validate(TOKEN, URL, &params, &with_port));
        let http = sign(TOKEN, "http://127.0.0.1/hook", &[]);
        assert!(validate(TOKEN, "http://127.0.0.1:80/hook", &[], &http));
    }

    #[test]
    fn accepts_a_signature_over_the_url_without_its_explicit_port() {
        // Both SDKs remove any port, not only a default one.
        let signature = sign(TOKEN, "http://127.0.0.1/hook", &[]);
        assert!(validate(TOKEN, "http://127.0.0.1:8080/hook", &[], &signature));
        let signature = sign(TOKEN, "http://127.0.0.1:8080/hook", &[]);
        assert!(validate(TOKEN, "http://127.0.0.1:8080/hook", &[], &signature));
        assert!(!validate(TOKEN, "http://127.0.0.1:8081/hook", &[], &signature));
    }

    #[test]
    fn rejects_wrong_tokens_params_and_garbage() {
        let params = twilio_doc_params();
        let signature = sign(TOKEN, URL, &params);
        assert!(!validate("other", URL, &params, &signature));
        assert!(!validate(TOKEN, URL, &params[1..], &signature));
        assert!(!validate(TOKEN, URL, &params, ""));
        assert!(!validate(TOKEN, URL, &params, "not base64!"));
        assert!(!validate(TOKEN, URL, &params, &signature[..signature.len() - 2]));
    }

    #[test]
    fn splits_urls_around_the_port_without_normalizing() {
        assert_eq!(
            without_port("https://user:pw@h.example:8443/p?q=:1#f"),
            "https://user:pw@h.example/p?q=:1#f"
        );
        assert_eq!(
            with_default_port("https://user:pw@h.example/p?q=:1"),
            "https://user:pw@h.example:443/p?q=:1"
        );
        assert_eq!(with_default_port("HTTP://h"), "HTTP://h:80");
        assert_eq!(without_port("http://[::1]:8080/x"), "http://[::1]/x");
        assert_eq!(with_default_port("http://[::1]/x"), "http://[::1]:80/x");
        assert_eq!(without_port("not a url"), "not a url");
    }

    #[test]
    fn strips_the_fragment_and_reads_connection_overrides() {
        let (url, o) = strip_connection_overrides("https://x.example/y?a=1#ct=2000&rc=3&rp=all&e=ashburn");
        assert_eq!(url, "https://x.example/y?a=1");
        assert_eq!(
            o,
            ConnectionOverrides {
                connect_timeout_ms: 2000,
                retry_count: 3,
                retry_policy: RetryPolicy::ALL,
                ..ConnectionOverrides::default()
            }
        );
        let (url, o) = strip_connection_overrides("https://x.example/y");
        assert_eq!((url, o), ("https://x.example/y", ConnectionOverrides::default()));
    }

    #[test]
    fn connection_overrides_default_and_clamp_like_the_documented_ranges() {
        let d = ConnectionOverrides::default();
        assert_eq!(
            (d.connect_timeout_ms, d.read_timeout_ms, d.total_time_ms, d.retry_count),
            (5000, 15000, 15000, 1)
        );
        assert_eq!(d.retry_policy, RetryPolicy { on_connect_timeout: true, ..RetryPolicy::NONE });
        let (_, o) = strip_connection_overrides("http://h/#ct=5&rt=99999&tt=abc&rc=9&rp=5xx,rt");
        assert_eq!(o.connect_timeout_ms, 100);
        assert_eq!(o.read_timeout_ms, 15000);
        assert_eq!(o.total_time_ms, 15000);
        assert_eq!(o.retry_count, 5);
        assert_eq!(o.retry_policy, RetryPolicy { on_5xx: true, on_read_timeout: true, ..RetryPolicy::NONE });
        let (_, o) = strip_connection_overrides("http://h/#rp=bogus");
        assert_eq!(o.retry_policy, RetryPolicy::default());
    }
}
