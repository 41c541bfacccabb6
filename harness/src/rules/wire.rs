//! Reading what went over the wire: form bodies, URL paths and query strings, and the JSON of Vapi's
//! messages, leniently (a rule skips what it cannot read; it never fails on it).

use serde_json::Value;

/// Decodes an `application/x-www-form-urlencoded` body or query string into its pairs, in order
/// (`form_urlencoded`: `+` is a space, a malformed `%` escape is kept as written, bytes that are not UTF-8
/// are replaced).
pub fn form_pairs(input: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(input.as_bytes()).into_owned().collect()
}

/// A URL path segment, percent-decoded as a server routes it (`hold%20CA1` → `hold CA1`; unlike a form
/// value, `+` stays `+`).
pub fn path_segment(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// The path of a URL (`https://api.twilio.com/2010-04-01/…?x=1` → `/2010-04-01/…`); a URL that is already
/// a path (as a server over a socket journals it) is returned without its query.
pub fn path_of(url: &str) -> &str {
    let without_scheme = match url.find("://") {
        Some(at) => {
            let rest = &url[at + 3..];
            match rest.find('/') {
                Some(slash) => &rest[slash..],
                None => "/",
            }
        }
        None => url,
    };
    let end = without_scheme.find(['?', '#']).unwrap_or(without_scheme.len());
    &without_scheme[..end]
}

/// The query string's pairs.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    match url.split_once('?') {
        Some((_, query)) => form_pairs(query.split('#').next().unwrap_or_default()),
        None => Vec::new(),
    }
}

/// The first value of `name` among `pairs`.
pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Parses a body as JSON, if it is JSON.
pub fn json(body: &str) -> Option<Value> {
    serde_json::from_str(body).ok()
}

/// The string at a JSON pointer.
pub fn json_str<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Whether `text` occurs in `body` as written or as a JSON string would escape it.
pub fn mentions(body: &str, text: &str) -> bool {
    if text.is_empty() {
        return false;
    }
    if body.contains(text) {
        return true;
    }
    let escaped = Value::String(text.to_owned()).to_string();
    let inner = escaped.get(1..escaped.len().saturating_sub(1)).unwrap_or_default();
    !inner.is_empty() && body.contains(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms_leniently() {
        let pairs = form_pairs("To=%2B15550000201&Twiml=%3CResponse%2F%3E&x=a+b&bad=%zz&flag");
        assert_eq!(param(&pairs, "To"), Some("+15550000201"));
        assert_eq!(param(&pairs, "Twiml"), Some("<Response/>"));
        assert_eq!(param(&pairs, "x"), Some("a b"));
        assert_eq!(param(&pairs, "bad"), Some("%zz"));
        assert_eq!(param(&pairs, "flag"), Some(""));
        assert_eq!(param(&pairs, "missing"), None);
    }

    #[test]
    fn finds_paths_and_queries_in_full_urls_and_bare_paths() {
        assert_eq!(path_of("https://api.twilio.com/2010-04-01/Calls.json?a=1"), "/2010-04-01/Calls.json");
        assert_eq!(path_of("/call/abc?x"), "/call/abc");
        assert_eq!(path_of("http://host"), "/");
        let q = query_pairs("http://o.test/twilio/specialist?caller=CA1&attempt=0");
        assert_eq!(param(&q, "caller"), Some("CA1"));
    }

    #[test]
    fn finds_words_in_json_bodies_even_when_escaped() {
        assert!(mentions(r#"{"a":"I said \"hi\""}"#, "I said \"hi\""));
        assert!(mentions("plain text", "text"));
        assert!(!mentions("anything", ""));
    }
}
