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

/// What the rules read of a Vapi server message (`{"message": {type, call: {id}, toolCallList, …}}`):
/// its type, its call's id and its tool calls' ids. A message carries the whole call, assistant and
/// artifact, kilobytes the rules never look at, so they are skipped rather than built into a [`Value`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VapiMessage {
    /// `message.type`.
    pub kind: Option<String>,
    /// `message.call.id`.
    pub call_id: Option<String>,
    /// The `id` of each entry of `message.toolCallList` (or, failing that, `message.toolCalls`).
    pub tool_call_ids: Vec<String>,
}

impl VapiMessage {
    /// Reads a body that is JSON; `None` if it is not JSON at all (a form).
    pub fn read(body: &str) -> Option<VapiMessage> {
        // Only the fields read below are built from a well-shaped message; a body of any other shape (a
        // field of another type, a repeated key) is built whole. Either way, one reader reads it.
        let value = match serde_json::from_str::<shape::Envelope>(body) {
            Ok(envelope) => envelope.into_value(),
            Err(_) => json(body)?,
        };
        Some(VapiMessage::of(&value))
    }

    /// Reads a message leniently, as a rule reads what it can.
    fn of(value: &Value) -> VapiMessage {
        let Some(message) = value.get("message") else { return VapiMessage::default() };
        let list = message.get("toolCallList").or_else(|| message.get("toolCalls"));
        VapiMessage {
            kind: json_str(message, "/type").map(str::to_owned),
            call_id: json_str(message, "/call/id").map(str::to_owned),
            tool_call_ids: list
                .and_then(Value::as_array)
                .map(|calls| calls.iter().filter_map(|c| c.get("id")?.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
        }
    }
}

/// The part of a Vapi message that [`VapiMessage::of`] reads; serde skips every other field. A field that
/// is `null` stays `null` (rather than absent), so the reader sees what the whole document would show.
mod shape {
    use serde::{Deserialize, Deserializer};
    use serde_json::{Map, Value};

    #[derive(Debug, Deserialize)]
    pub struct Envelope {
        message: Option<Message>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Message {
        #[serde(rename = "type", default, deserialize_with = "present")]
        kind: Option<Value>,
        call: Option<Call>,
        #[serde(default, deserialize_with = "present")]
        tool_call_list: Option<Value>,
        #[serde(default, deserialize_with = "present")]
        tool_calls: Option<Value>,
    }

    #[derive(Debug, Deserialize)]
    struct Call {
        id: Option<Value>,
    }

    /// A field that is there, even as `null`.
    fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
        Value::deserialize(d).map(Some)
    }

    impl Envelope {
        pub fn into_value(self) -> Value {
            let mut envelope = Map::new();
            if let Some(m) = self.message {
                let mut message = Map::new();
                let mut put = |key: &str, value: Option<Value>| {
                    if let Some(value) = value {
                        message.insert(key.to_owned(), value);
                    }
                };
                put("type", m.kind);
                put(
                    "call",
                    m.call.map(|c| Value::Object(c.id.map(|id| ("id".to_owned(), id)).into_iter().collect())),
                );
                put("toolCallList", m.tool_call_list);
                put("toolCalls", m.tool_calls);
                envelope.insert("message".to_owned(), Value::Object(message));
            }
            Value::Object(envelope)
        }
    }
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
    fn reads_a_vapi_message_well_shaped_or_not() {
        let shaped = r#"{"message":{"type":"tool-calls","call":{"id":"c1","assistant":{}},"artifact":{"messages":[]},
            "toolCallList":[{"id":"t1","function":{}},{"id":"t2"}]}}"#;
        let expected = VapiMessage {
            kind: Some("tool-calls".into()),
            call_id: Some("c1".into()),
            tool_call_ids: vec!["t1".into(), "t2".into()],
        };
        assert_eq!(VapiMessage::read(shaped), Some(expected));
        assert_eq!(VapiMessage::read("CallSid=CA1&CallStatus=busy"), None);
    }

    #[test]
    fn what_is_read_of_a_message_is_what_its_whole_document_shows() {
        let bodies = [
            r#"{"message":{"type":"tool-calls","call":{"id":"c1","orgId":"o"},"toolCallList":[{"id":"t1"},{"id":2},{"id":"t2"}]}}"#,
            r#"{"message":{"type":"tool-calls","toolCallList":null,"toolCalls":[{"id":"t9"}]}}"#,
            r#"{"message":{"type":"tool-calls","toolCallList":{"id":"t1"},"toolCalls":[{"id":"t9"}]}}"#,
            r#"{"message":{"type":"tool-calls","toolCalls":[{"id":"t9"}]}}"#,
            r#"{"message":{"type":7,"call":"c1"}}"#,
            r#"{"message":{"type":null,"call":null}}"#,
            r#"{"message":{"call":{"id":null}}}"#,
            r#"{"message":{"type":"a","type":"b"}}"#,
            r#"{"message":null}"#,
            r#"{"message":"x"}"#,
            "[1,2]",
            "{}",
        ];
        for body in bodies {
            let whole = VapiMessage::of(&json(body).expect("JSON"));
            assert_eq!(VapiMessage::read(body), Some(whole), "{body}");
        }
    }

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
