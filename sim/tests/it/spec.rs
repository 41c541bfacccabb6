//! Checks the fake's wire types against Twilio's OpenAPI file, with the validator of `openapi.rs` in
//! Twilio's dialect (`TWILIO`).

use std::path::PathBuf;
use std::sync::OnceLock;

use ringback_sim::ids::{AccountSid, CallSid, ConferenceSid, PhoneNumberSid};
use ringback_sim::twilio::errors::TwilioError;
use ringback_sim::twilio::model::{
    AnsweredBy, CallStatus, ConferenceEndReason, ConferenceStatus, Direction, ParticipantStatus,
};
use ringback_sim::twilio::wire::{
    CallResource, ConferenceResource, FormParams, IncomingPhoneNumberResource, ListRecord, PageRequest,
    ParticipantResource, filters_query, paginate,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::openapi::{Keys, Options, Spec};

// -----------------------------------------------------------------------------------------------------
// Loading the spec
// -----------------------------------------------------------------------------------------------------

/// The vendored copy of Twilio's OpenAPI file, `fixtures/specs/twilio_api_v2010.json` (see its
/// `SOURCE.txt`): in the repository, so the check runs on a clean clone.
pub fn spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/specs/twilio_api_v2010.json")
}

/// The parsed spec, read once per test binary.
pub fn twilio_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = spec_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("cannot read the Twilio spec at {}: {e}; fix spec_path()", path.display())
        });
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
    })
}

// -----------------------------------------------------------------------------------------------------
// Twilio's dialect of the validator
// -----------------------------------------------------------------------------------------------------

/// Stricter than OpenAPI in one way and looser in two, each on purpose:
/// - **Stricter:** an object whose schema lists `properties` must have exactly those keys. Twilio writes
///   every property (null, never omitted), and an extra key in a list page breaks twilio-python
///   ("Page Records can not be deserialized", reference §1).
/// - **Looser:** `null` is accepted where a property is a bare `$ref`. Twilio's generator drops `nullable`
///   next to `$ref`, yet `reason_conference_ended` is documented as `null` while a conference runs.
/// - **Looser:** `pattern`/`minLength`/`maxLength` skip the empty string; the spec's own
///   IncomingPhoneNumber examples write `""` for unset SIDs.
pub const TWILIO: Options<'static> =
    Options { keys: Keys::Exact, null_for_bare_ref: true, empty_strings_unchecked: true };

/// Whether `spec` has `method` (any case) on `path_template` (e.g.
/// `/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json`).
pub fn operation_exists(spec: &Value, method: &str, path_template: &str) -> bool {
    Spec::new(spec, TWILIO).operation_exists(method, path_template)
}

/// Validates a response body against the schema `spec` gives for `method path_template → status`.
/// A response without content in the spec (204) expects `Value::Null`.
pub fn validate_response(
    spec: &Value,
    path_template: &str,
    method: &str,
    status: u16,
    body: &Value,
) -> Result<(), Vec<String>> {
    Spec::new(spec, TWILIO).validate_response(method, path_template, status, body)
}

/// Validates `value` against the component schema `name` (e.g. `api.v2010.account.call`).
pub fn validate_component(spec: &Value, name: &str, value: &Value) -> Result<(), Vec<String>> {
    Spec::new(spec, TWILIO).validate_component(name, value)
}

// -----------------------------------------------------------------------------------------------------
// Samples of the fake's resources
// -----------------------------------------------------------------------------------------------------

const A: &str = "/2010-04-01/Accounts/{AccountSid}";
const DATE: &str = "Thu, 01 Jan 2026 00:00:05 +0000";

fn account() -> AccountSid {
    AccountSid::from_u128(0xac)
}

fn call_sid(n: u128) -> CallSid {
    CallSid::from_u128(n)
}

fn conference_sid() -> ConferenceSid {
    ConferenceSid::from_u128(0xcf)
}

/// A call with every field set, and a fresh one with most of them null.
fn sample_calls() -> Vec<CallResource> {
    let mut full = CallResource::new(account(), call_sid(1), CallStatus::Completed);
    full.set_to("+14158675309");
    full.set_from("+14155550100");
    full.date_created = Some(DATE.into());
    full.date_updated = Some(DATE.into());
    full.parent_call_sid = Some(call_sid(2));
    full.phone_number_sid = Some(PhoneNumberSid::from_u128(3));
    full.start_time = Some(DATE.into());
    full.end_time = Some(DATE.into());
    full.duration = Some("15".into());
    full.price = Some("-0.03000".into());
    full.direction = Some(Direction::OutboundDial);
    full.answered_by = Some(AnsweredBy::MachineEndBeep);
    full.forwarded_from = Some("+14155550101".into());
    full.group_sid = Some(format!("GP{:032x}", 4));
    full.caller_name = Some("alice".into());
    full.queue_time = Some("1000".into());
    full.trunk_sid = Some(format!("TK{:032x}", 5));
    vec![full, CallResource::new(account(), call_sid(6), CallStatus::Queued)]
}

fn sample_conferences() -> Vec<ConferenceResource> {
    let mut ended = ConferenceResource::new(account(), conference_sid(), "room", ConferenceStatus::Completed);
    ended.date_created = Some(DATE.into());
    ended.date_updated = Some(DATE.into());
    ended.reason_conference_ended = Some(ConferenceEndReason::EndOnExitLeft);
    ended.call_sid_ending_conference = Some(call_sid(1));
    let running =
        ConferenceResource::new(account(), ConferenceSid::from_u128(7), "r2", ConferenceStatus::InProgress);
    vec![ended, running]
}

fn sample_participants() -> Vec<ParticipantResource> {
    let mut full =
        ParticipantResource::new(account(), conference_sid(), call_sid(1), ParticipantStatus::Connected);
    full.label = Some("customer".into());
    full.call_sid_to_coach = Some(call_sid(2));
    full.coaching = Some(true);
    full.date_created = Some(DATE.into());
    full.date_updated = Some(DATE.into());
    full.queue_time = Some("1000".into());
    vec![full, ParticipantResource::new(account(), conference_sid(), call_sid(3), ParticipantStatus::Queued)]
}

fn sample_numbers() -> Vec<IncomingPhoneNumberResource> {
    let mut number =
        IncomingPhoneNumberResource::new(account(), PhoneNumberSid::from_u128(1), "+14155550100");
    number.date_created = Some(DATE.into());
    number.date_updated = Some(DATE.into());
    number.voice_url = Some("https://example.com/voice".into());
    number.voice_application_sid = Some(format!("AP{:032x}", 9));
    vec![number]
}

fn to_values<T: Serialize>(records: &[T]) -> Vec<Value> {
    records.iter().map(|r| serde_json::to_value(r).unwrap()).collect()
}

fn assert_valid(path: &str, method: &str, status: u16, body: &Value) {
    if let Err(errors) = validate_response(twilio_spec(), path, method, status, body) {
        panic!(
            "{method} {path} → {status} does not match the spec:\n  {}\nbody: {body:#}",
            errors.join("\n  ")
        );
    }
}

// -----------------------------------------------------------------------------------------------------
// Tests
// -----------------------------------------------------------------------------------------------------

#[test]
fn every_operation_the_fake_serves_is_in_the_spec() {
    let spec = twilio_spec();
    for (method, path) in [
        ("POST", "/Calls.json"),
        ("GET", "/Calls.json"),
        ("GET", "/Calls/{Sid}.json"),
        ("POST", "/Calls/{Sid}.json"),
        ("DELETE", "/Calls/{Sid}.json"),
        ("GET", "/Conferences.json"),
        ("GET", "/Conferences/{Sid}.json"),
        ("POST", "/Conferences/{Sid}.json"),
        ("POST", "/Conferences/{ConferenceSid}/Participants.json"),
        ("GET", "/Conferences/{ConferenceSid}/Participants.json"),
        ("GET", "/Conferences/{ConferenceSid}/Participants/{CallSid}.json"),
        ("POST", "/Conferences/{ConferenceSid}/Participants/{CallSid}.json"),
        ("DELETE", "/Conferences/{ConferenceSid}/Participants/{CallSid}.json"),
        ("POST", "/Calls/{CallSid}/Streams.json"),
        ("POST", "/Calls/{CallSid}/Streams/{Sid}.json"),
        ("GET", "/IncomingPhoneNumbers.json"),
        ("GET", "/IncomingPhoneNumbers/{Sid}.json"),
    ] {
        assert!(operation_exists(spec, method, &format!("{A}{path}")), "{method} {path}");
    }
    assert!(!operation_exists(spec, "DELETE", &format!("{A}/Conferences/{{Sid}}.json")));
    assert!(!operation_exists(spec, "GET", &format!("{A}/Nope.json")));
}

#[test]
fn sample_resources_validate_against_their_fetch_create_and_update_schemas() {
    for call in to_values(&sample_calls()) {
        assert_valid(&format!("{A}/Calls.json"), "POST", 201, &call);
        assert_valid(&format!("{A}/Calls/{{Sid}}.json"), "GET", 200, &call);
        assert_valid(&format!("{A}/Calls/{{Sid}}.json"), "POST", 200, &call);
    }
    for conference in to_values(&sample_conferences()) {
        assert_valid(&format!("{A}/Conferences/{{Sid}}.json"), "GET", 200, &conference);
        assert_valid(&format!("{A}/Conferences/{{Sid}}.json"), "POST", 200, &conference);
    }
    for participant in to_values(&sample_participants()) {
        assert_valid(
            &format!("{A}/Conferences/{{ConferenceSid}}/Participants.json"),
            "POST",
            201,
            &participant,
        );
        let one = format!("{A}/Conferences/{{ConferenceSid}}/Participants/{{CallSid}}.json");
        assert_valid(&one, "GET", 200, &participant);
        assert_valid(&one, "POST", 200, &participant);
    }
    for number in to_values(&sample_numbers()) {
        assert_valid(&format!("{A}/IncomingPhoneNumbers/{{Sid}}.json"), "GET", 200, &number);
    }
    assert_valid(&format!("{A}/Calls/{{Sid}}.json"), "DELETE", 204, &Value::Null);
}

fn page_value<T: ListRecord>(records: Vec<T>, page_size: u32) -> Value {
    let request = PageRequest { page_size, page: 0, page_token: None };
    serde_json::to_value(paginate(records, "/x.json", "", &request)).unwrap()
}

#[test]
fn sample_list_pages_validate_against_the_list_schemas() {
    assert_valid(&format!("{A}/Calls.json"), "GET", 200, &page_value(sample_calls(), 1));
    assert_valid(&format!("{A}/Calls.json"), "GET", 200, &page_value(Vec::<CallResource>::new(), 50));
    assert_valid(&format!("{A}/Conferences.json"), "GET", 200, &page_value(sample_conferences(), 50));
    let participants = format!("{A}/Conferences/{{ConferenceSid}}/Participants.json");
    assert_valid(&participants, "GET", 200, &page_value(sample_participants(), 50));
    assert_valid(&format!("{A}/IncomingPhoneNumbers.json"), "GET", 200, &page_value(sample_numbers(), 50));
}

fn schema_property_names(name: &str) -> Vec<String> {
    twilio_spec()["components"]["schemas"][name]["properties"].as_object().unwrap().keys().cloned().collect()
}

fn assert_same_properties<T: Serialize>(schema: &str, sample: &T) {
    let value = serde_json::to_value(sample).unwrap();
    let ours: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    assert_eq!(ours, schema_property_names(schema), "{schema}: properties or their order differ");
}

#[test]
fn each_resource_struct_has_exactly_the_schema_properties_in_order() {
    assert_same_properties("api.v2010.account.call", &sample_calls()[1]);
    assert_same_properties("api.v2010.account.conference", &sample_conferences()[1]);
    assert_same_properties("api.v2010.account.conference.participant", &sample_participants()[1]);
    assert_same_properties("api.v2010.account.incoming_phone_number", &sample_numbers()[0]);
    let capabilities = &twilio_spec()["components"]["schemas"]["api.v2010.account.incoming_phone_number"]["properties"]
        ["capabilities"]["properties"];
    let ours = serde_json::to_value(sample_numbers()[0].capabilities).unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&ours), keys(capabilities));
}

#[test]
fn list_pages_have_exactly_the_list_response_properties() {
    let spec = twilio_spec();
    for (path, value) in [
        ("/Calls.json", page_value(sample_calls(), 50)),
        ("/Conferences.json", page_value(sample_conferences(), 50)),
        ("/Conferences/{ConferenceSid}/Participants.json", page_value(sample_participants(), 50)),
        ("/IncomingPhoneNumbers.json", page_value(sample_numbers(), 50)),
    ] {
        let schema = &spec["paths"][format!("{A}{path}")]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"]["properties"];
        let mut theirs: Vec<&String> = schema.as_object().unwrap().keys().collect();
        let mut ours: Vec<&String> = value.as_object().unwrap().keys().collect();
        theirs.sort();
        ours.sort();
        assert_eq!(ours, theirs, "{path}");
    }
}

/// Every example the spec gives for `method path → status`.
fn examples(method: &str, path: &str, status: u16) -> Vec<(String, Value)> {
    let content = &twilio_spec()["paths"][format!("{A}{path}")][method]["responses"][status.to_string()]["content"]
        ["application/json"];
    content["examples"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, example)| (format!("{method} {path} {name}"), example["value"].clone()))
        .collect()
}

fn assert_round_trips<T: Serialize + DeserializeOwned>(label: &str, value: &Value) {
    let parsed: T =
        serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{label}: {e}\n{value:#}"));
    assert_eq!(&serde_json::to_value(parsed).unwrap(), value, "{label}");
}

#[test]
fn the_spec_examples_pass_the_validator_and_round_trip_through_our_structs() {
    let single: [(&str, &str, u16); 10] = [
        ("post", "/Calls.json", 201),
        ("get", "/Calls/{Sid}.json", 200),
        ("post", "/Calls/{Sid}.json", 200),
        ("get", "/Conferences/{Sid}.json", 200),
        ("post", "/Conferences/{Sid}.json", 200),
        ("post", "/Conferences/{ConferenceSid}/Participants.json", 201),
        ("get", "/Conferences/{ConferenceSid}/Participants/{CallSid}.json", 200),
        ("post", "/Conferences/{ConferenceSid}/Participants/{CallSid}.json", 200),
        ("get", "/IncomingPhoneNumbers/{Sid}.json", 200),
        ("post", "/IncomingPhoneNumbers.json", 201),
    ];
    for (method, path, status) in single {
        for (label, value) in examples(method, path, status) {
            assert_valid(&format!("{A}{path}"), method, status, &value);
            if path.starts_with("/Calls") {
                assert_round_trips::<CallResource>(&label, &value);
            } else if path.contains("Participants") {
                assert_round_trips::<ParticipantResource>(&label, &value);
            } else if path.starts_with("/Conferences") {
                assert_round_trips::<ConferenceResource>(&label, &value);
            } else {
                assert_round_trips::<IncomingPhoneNumberResource>(&label, &value);
            }
        }
    }
    for (path, key) in [
        ("/Calls.json", "calls"),
        ("/Conferences.json", "conferences"),
        ("/Conferences/{ConferenceSid}/Participants.json", "participants"),
        ("/IncomingPhoneNumbers.json", "incoming_phone_numbers"),
    ] {
        for (label, value) in examples("get", path, 200) {
            assert_valid(&format!("{A}{path}"), "get", 200, &value);
            for (i, record) in value[key].as_array().unwrap().iter().enumerate() {
                let label = format!("{label} #{i}");
                match key {
                    "calls" => assert_round_trips::<CallResource>(&label, record),
                    "conferences" => assert_round_trips::<ConferenceResource>(&label, record),
                    "participants" => assert_round_trips::<ParticipantResource>(&label, record),
                    _ => assert_round_trips::<IncomingPhoneNumberResource>(&label, record),
                }
            }
        }
    }
}

/// The page the spec's example `label` shows, computed by `paginate` from records whose SIDs put the
/// example's page tokens in the right places.
fn assert_paging_reproduces<T: ListRecord>(example: &Value, records: Vec<T>) {
    let uri = example["uri"].as_str().unwrap();
    let (path, query) = uri.split_once('?').unwrap();
    let params = FormParams::parse(query.as_bytes()).unwrap();
    let request = PageRequest::from_params(&params).unwrap();
    let page = serde_json::to_value(paginate(records, path, &filters_query(&params), &request)).unwrap();
    for key in
        ["first_page_uri", "previous_page_uri", "uri", "next_page_uri", "page", "page_size", "start", "end"]
    {
        assert_eq!(page[key], example[key], "{key}");
    }
}

#[test]
fn paging_reproduces_the_spec_examples_for_a_middle_page() {
    let conferences = |digits: &[char]| {
        digits
            .iter()
            .map(|d| {
                let sid: ConferenceSid = format!("CF{}", d.to_string().repeat(32)).parse().unwrap();
                ConferenceResource::new(account(), sid, "room", ConferenceStatus::InProgress)
            })
            .collect::<Vec<_>>()
    };
    let example = examples("get", "/Conferences.json", 200)
        .into_iter()
        .find(|(l, _)| l.ends_with("readNext"))
        .unwrap()
        .1;
    assert_paging_reproduces(&example, conferences(&['a', 'b', 'c', 'd', 'e', 'f', '1']));

    let example = examples("get", "/Calls.json", 200)
        .into_iter()
        .find(|(l, _)| l.ends_with("readFullPage2"))
        .unwrap()
        .1;
    let calls =
        ["CA1", "CAdeadbeefdeadbeefdeadbeefdeadbeef", "CAa", "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0", "CA2"]
            .into_iter()
            .map(|sid| {
                let sid: CallSid = match sid {
                    "CA1" => call_sid(1),
                    "CA2" => call_sid(2),
                    "CAa" => format!("CA{}", "a".repeat(32)).parse().unwrap(),
                    full => full.parse().unwrap(),
                };
                CallResource::new(account(), sid, CallStatus::Completed)
            })
            .collect();
    assert_paging_reproduces(&example, calls);
}

#[test]
fn the_validator_reports_what_is_wrong() {
    let spec = twilio_spec();
    let mut call = serde_json::to_value(&sample_calls()[0]).unwrap();
    let object = call.as_object_mut().unwrap();
    object.remove("price");
    object.insert("extra".into(), Value::Bool(true));
    object.insert("duration".into(), Value::from(15));
    object.insert("status".into(), Value::from("initiated"));
    object.insert("date_created".into(), Value::from("2026-01-01T00:00:00Z"));
    object.insert("sid".into(), Value::from("CA123"));
    let errors = validate_component(spec, "api.v2010.account.call", &call).unwrap_err();
    let expected = [
        "$.sid: `CA123`",
        "$.date_created: `2026-01-01T00:00:00Z` is not an RFC 2822 date",
        "$.status: \"initiated\" is not one of",
        "$.duration: expected \"string\", got 15",
        "$: missing property `price`",
        "$: unexpected property `extra`",
    ];
    for fragment in expected {
        assert!(
            errors.iter().any(|e| e.starts_with(fragment)),
            "no error starting {fragment:?} in {errors:#?}"
        );
    }

    let mut participant = serde_json::to_value(&sample_participants()[0]).unwrap();
    participant["muted"] = Value::from("false");
    let errors =
        validate_component(spec, "api.v2010.account.conference.participant", &participant).unwrap_err();
    assert_eq!(errors, ["$.muted: expected \"boolean\", got \"false\""]);

    let page = page_value(sample_calls(), 50);
    let errors =
        validate_response(spec, &format!("{A}/Calls.json"), "GET", 200, &serde_json::json!({"page": null}))
            .unwrap_err();
    assert!(errors.contains(&"$.page: null, but the schema is not nullable".to_owned()), "{errors:#?}");
    assert!(validate_response(spec, &format!("{A}/Calls.json"), "GET", 201, &page).is_err());
    assert!(validate_response(spec, &format!("{A}/Calls/{{Sid}}.json"), "DELETE", 204, &page).is_err());
}

#[test]
fn error_bodies_are_not_mistaken_for_rfc_9457_problems() {
    let body = serde_json::to_value(TwilioError::not_found("/x")).unwrap();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["code", "message", "more_info", "status"]);
}
