//! `X-Twilio-Signature` agrees with the official validators both ways: what the fake signs, twilio-python
//! and twilio-node accept; what they sign, the fake's `validate` accepts.

use ringback_sim::twilio::signature::{sign, sign_json, validate, validate_json};
use serde_json::{Value, json};

use crate::sdk_support::sdk;

const TOKEN: &str = "9f2a0c1d4e5b6a7f8091a2b3c4d5e6f7";

struct Case {
    what: &'static str,
    url: &'static str,
    params: Vec<(String, String)>,
}

fn case(what: &'static str, url: &'static str, params: &[(&str, &str)]) -> Case {
    Case { what, url, params: params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect() }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "a status callback",
            "https://example.com/status",
            &[
                ("AccountSid", "AC00000000000000000000000000000000"),
                ("CallSid", "CA0123456789abcdef0123456789abcdef"),
                ("CallStatus", "completed"),
                ("From", "+15005550006"),
                ("To", "+14155551212"),
            ],
        ),
        case(
            "a GET with its parameters in the query",
            "https://example.com/voice?CallSid=CA1&Digits=12%23",
            &[],
        ),
        case(
            "repeated names",
            "https://example.com/hook",
            &[
                ("StatusCallbackEvent", "ringing"),
                ("b", "2"),
                ("StatusCallbackEvent", "answered"),
                ("a", "1"),
            ],
        ),
        case("a repeated identical pair", "https://example.com/hook", &[("x", "1"), ("x", "1"), ("x", "0")]),
        case(
            "empty values and names",
            "https://example.com/hook",
            &[("Digits", ""), ("", "v"), ("Caller", "")],
        ),
        case(
            "unicode names and values",
            "https://example.com/hook",
            &[("Body", "héllo 日本 😀"), ("Ünïcode", "ß"), ("SpeechResult", "¿qué?"), ("Body", "a&b=c")],
        ),
        case(
            "a query string and form parameters",
            "https://example.com/app.php?foo=1&bar=two%20words",
            &[("Digits", "1234"), ("From", "+12349013030")],
        ),
        case("an explicit non-default port", "http://127.0.0.1:8080/voice", &[("CallSid", "CA1")]),
        case("an explicit default https port", "https://example.com:443/voice?x=1", &[("CallSid", "CA1")]),
        case(
            "a path with encoded characters",
            "https://example.com/a%20b/c?q=%E6%97%A5",
            &[("To", "+1 (415) 555")],
        ),
    ]
}

fn pairs(params: &[(String, String)]) -> Value {
    Value::Array(params.iter().map(|(k, v)| json!([k, v])).collect())
}

/// The URL the receiving side sees: the same, or with the default port added or removed.
fn as_received(url: &str) -> Vec<String> {
    let mut urls = vec![url.to_owned()];
    if url.contains(":443/") {
        urls.push(url.replace(":443/", "/"));
    } else if let Some(rest) = url.strip_prefix("https://example.com/") {
        urls.push(format!("https://example.com:443/{rest}"));
    }
    urls
}

fn validity(answers: &Value) -> Vec<bool> {
    answers
        .as_array()
        .expect("a list of answers")
        .iter()
        .map(|a| a["valid"].as_bool().expect("a valid flag"))
        .collect()
}

#[test]
fn the_official_validators_accept_what_the_fake_signs() {
    let sdk = sdk();
    let mut questions = Vec::new();
    let mut labels = Vec::new();
    for c in cases() {
        let signature = sign(TOKEN, c.url, &c.params);
        for url in as_received(c.url) {
            questions.push(
                json!({"token": TOKEN, "url": url, "params": pairs(&c.params), "signature": signature}),
            );
            labels.push(format!("{} at {url}", c.what));
        }
        // A control: a wrong token must be rejected, or the check proves nothing.
        let forged = sign("not-the-token", c.url, &c.params);
        questions
            .push(json!({"token": TOKEN, "url": c.url, "params": pairs(&c.params), "signature": forged}));
        labels.push(format!("{} signed with the wrong token (must be rejected)", c.what));
    }
    let expected: Vec<bool> = labels.iter().map(|l| !l.ends_with("(must be rejected)")).collect();
    let questions = Value::Array(questions);
    for (sdk_name, answers) in [
        ("twilio-python", sdk.python("signature_check.py", &questions)),
        ("twilio-node", sdk.node("signature_check.js", &questions)),
    ] {
        let got = validity(&answers);
        let wrong: Vec<&String> = labels
            .iter()
            .zip(got.iter().zip(&expected))
            .filter(|(_, (g, e))| g != e)
            .map(|(l, _)| l)
            .collect();
        assert!(wrong.is_empty(), "{sdk_name} disagrees with the fake on: {wrong:#?}");
    }
}

#[test]
fn the_fake_accepts_and_reproduces_what_the_official_libraries_sign() {
    let sdk = sdk();
    let cases = cases();
    let questions = Value::Array(
        cases.iter().map(|c| json!({"token": TOKEN, "url": c.url, "params": pairs(&c.params)})).collect(),
    );
    for (sdk_name, answers) in [
        ("twilio-python", sdk.python("signature_check.py", &questions)),
        ("twilio-node", sdk.node("signature_check.js", &questions)),
    ] {
        for (c, answer) in cases.iter().zip(answers.as_array().expect("a list of answers")) {
            let theirs = answer["signature"].as_str().expect("a signature");
            assert_eq!(sign(TOKEN, c.url, &c.params), theirs, "{sdk_name} signs {} differently", c.what);
            for url in as_received(c.url) {
                assert!(
                    validate(TOKEN, &url, &c.params, theirs),
                    "the fake rejects {sdk_name}'s {} at {url}",
                    c.what
                );
            }
        }
    }
}

#[test]
fn json_bodies_are_signed_through_body_sha256_as_the_official_validators_expect() {
    let sdk = sdk();
    let body = r#"{"event":"ringing","caller":"+15005550006","note":"héllo"}"#;
    let signed = sign_json(TOKEN, "https://example.com/json-hook?x=1", body.as_bytes());
    let tampered = body.replace("ringing", "answered");
    let questions = json!([
        {"token": TOKEN, "url": signed.url, "params": [], "body": body, "signature": signed.signature},
        {"token": TOKEN, "url": signed.url, "params": [], "body": tampered, "signature": signed.signature},
    ]);
    assert_eq!(validity(&sdk.python("signature_check.py", &questions)), [true, false], "twilio-python");
    assert_eq!(validity(&sdk.node("signature_check.js", &questions)), [true, false], "twilio-node");

    // The other way: twilio-python signs the URL with the hash; the fake validates URL and body.
    let theirs =
        sdk.python("signature_check.py", &json!([{"token": TOKEN, "url": signed.url, "params": []}]));
    let theirs = theirs[0]["signature"].as_str().expect("a signature");
    assert!(validate_json(TOKEN, &signed.url, body.as_bytes(), theirs));
    assert!(!validate_json(TOKEN, &signed.url, tampered.as_bytes(), theirs));
}
