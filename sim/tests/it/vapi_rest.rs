//! The fake Vapi's REST API against Vapi's spec: routes, status codes, bodies and error shapes.

use serde_json::{Value, json};

use crate::vapi_flows::{ASSISTANT, PHONE, start, vapi, world};
use crate::vapi_spec::validate_vapi_response;

fn assert_valid(method: &str, template: &str, status: u16, body: &Value) {
    if let Err(errors) = validate_vapi_response(method, template, status, body) {
        panic!("{method} {template} {status} does not match the spec:\n{}\n{body:#}", errors.join("\n"));
    }
}

#[tokio::test(start_paused = true)]
async fn resources_and_calls_validate_against_their_schemas() {
    let (sim, _) = start(world(json!({"name": "front-desk", "firstMessage": "Hi"}), "", &[]));
    let (status, assistant) = vapi(
        &sim,
        "POST",
        "/assistant",
        json!({"name": "second", "firstMessage": "Hello {{customer.number}}"}),
    )
    .await;
    assert_eq!(status, 201);
    assert_valid("post", "/assistant", 201, &assistant);
    let id = assistant["id"].as_str().unwrap().to_owned();
    let (status, fetched) = vapi(&sim, "GET", &format!("/assistant/{id}"), Value::Null).await;
    assert_eq!((status, &fetched), (200, &assistant));
    let (status, listed) = vapi(&sim, "GET", "/assistant?limit=1", Value::Null).await;
    assert_eq!(status, 200);
    assert_valid("get", "/assistant", 200, &listed);
    assert_eq!(listed.as_array().unwrap().len(), 1, "newest first, limited");
    assert_eq!(listed[0]["id"], id.as_str());
    let (status, patched) =
        vapi(&sim, "PATCH", &format!("/assistant/{id}"), json!({"firstMessage": "Yo"})).await;
    assert_eq!(status, 200);
    assert_eq!(patched["firstMessage"], "Yo");
    assert_eq!(patched["name"], "second");

    let (status, number) = vapi(&sim, "GET", &format!("/phone-number/{PHONE}"), Value::Null).await;
    assert_eq!(status, 200);
    assert_valid("get", "/phone-number/{id}", 200, &number);
    assert_eq!(number["provider"], "twilio");
    assert!(number.get("twilioAuthToken").is_none(), "the auth token is never echoed");

    let (status, call) = vapi(
        &sim,
        "POST",
        "/call",
        json!({"assistantId": ASSISTANT, "phoneNumberId": PHONE, "customer": {"number": "+15557770001"},
               "phoneCallProviderBypassEnabled": true, "assistantOverrides": {"variableValues": {"x": 1}}}),
    )
    .await;
    assert_eq!(status, 201, "{call}");
    assert_valid("post", "/call", 201, &call);
    assert_eq!(call["status"], "queued");
    let twiml = call["phoneCallProviderDetails"]["twiml"].as_str().unwrap();
    let call_id = call["id"].as_str().unwrap();
    assert!(
        twiml.contains(&format!(r#"<Connect><Stream url="wss://api.vapi.ai/{call_id}/transport"/>"#)),
        "{twiml}"
    );
    assert_eq!(call["monitor"]["controlUrl"], format!("https://api.vapi.ai/{call_id}/control"));
    let (status, got) = vapi(&sim, "GET", &format!("/call/{call_id}"), Value::Null).await;
    assert_eq!(status, 200);
    assert_valid("get", "/call/{id}", 200, &got);
    let (status, renamed) = vapi(&sim, "PATCH", &format!("/call/{call_id}"), json!({"name": "first"})).await;
    assert_eq!((status, renamed["name"].as_str()), (200, Some("first")));
    let (status, listed) =
        vapi(&sim, "GET", &format!("/call?assistantId={ASSISTANT}&limit=10"), Value::Null).await;
    assert_eq!(status, 200);
    assert_valid("get", "/call", 200, &listed);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (_, none) =
        vapi(&sim, "GET", "/call?assistantId=00000000-0000-4000-8000-000000000000", Value::Null).await;
    assert_eq!(none, json!([]));
}

#[tokio::test(start_paused = true)]
async fn errors_have_vapis_status_codes_and_nestjs_bodies() {
    let (sim, _) = start(world(json!({"name": "front-desk"}), "", &[]));
    let cases = [
        (
            "GET",
            "/call/not-a-uuid".to_owned(),
            Value::Null,
            400,
            json!("Validation failed (uuid is expected)"),
        ),
        (
            "GET",
            "/call/00000000-0000-4000-8000-000000000000".to_owned(),
            Value::Null,
            404,
            json!("Call not found"),
        ),
        (
            "GET",
            "/assistant/front-desk".to_owned(),
            Value::Null,
            400,
            json!("Validation failed (uuid is expected)"),
        ),
        (
            "PATCH",
            "/phone-number/15550000100".to_owned(),
            json!({}),
            400,
            json!("Validation failed (uuid is expected)"),
        ),
        (
            "POST",
            "/call".to_owned(),
            json!({"metadata": {}}),
            400,
            json!(["property metadata should not exist"]),
        ),
        (
            "POST",
            "/call".to_owned(),
            json!({"assistantId": ASSISTANT}),
            400,
            json!("Couldn't Get Phone Number. Need Either `phoneNumberId` Or `phoneNumber`."),
        ),
        (
            "GET",
            "/call?limit=5000".to_owned(),
            Value::Null,
            400,
            json!(["limit must not be greater than 1000"]),
        ),
        ("GET", "/nowhere".to_owned(), Value::Null, 404, json!("Cannot GET /nowhere")),
    ];
    for (method, path, body, status, message) in cases {
        let (got, reply) = vapi(&sim, method, &path, body).await;
        assert_eq!(got, status, "{method} {path}: {reply}");
        assert_eq!(reply["message"], message, "{method} {path}");
        assert_eq!(reply["statusCode"], status);
    }
    let router = ringback_sim::vapi::rest::router(sim.clone());
    let (status, body) =
        crate::vapi_flows::call(router, "GET", "/call", &[("authorization", "Bearer wrong")], String::new())
            .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        r#"{"message":"Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa.","error":"Unauthorized","statusCode":401}"#
    );
}

#[tokio::test(start_paused = true)]
async fn a_bypass_call_that_twilio_never_connects_ends_with_its_reason() {
    let (sim, _) = start(world(json!({"name": "front-desk"}), "", &[]));
    let (_, call) = vapi(
        &sim,
        "POST",
        "/call",
        json!({"assistantId": ASSISTANT, "phoneNumberId": PHONE, "customer": {"number": "+15557770001"},
               "phoneCallProviderBypassEnabled": true}),
    )
    .await;
    crate::support::settle(&sim).await;
    let (_, call) = vapi(&sim, "GET", &format!("/call/{}", call["id"].as_str().unwrap()), Value::Null).await;
    assert_eq!(call["status"], "ended");
    assert_eq!(call["endedReason"], "phone-call-provider-bypass-enabled-but-no-call-received");
}

#[test]
fn a_world_file_id_that_is_not_a_uuid_is_refused_with_where_it_is() {
    let mut config = ringback_sim::world::WorldConfig::default();
    config.vapi.assistants.push(json!({"id": "front-desk", "name": "front-desk"}));
    let err = ringback_sim::world::World::new(config).expect_err("not a uuid");
    assert!(err.starts_with("vapi.assistants[0].id: expected a UUID"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn lists_filter_by_creation_date() {
    let (sim, _) = start(world(json!({"name": "front-desk"}), "", &[]));
    let created = |query: &'static str| {
        let sim = sim.clone();
        async move { vapi(&sim, "GET", &format!("/assistant?{query}"), Value::Null).await }
    };
    // The world's assistant was created at the epoch, 2026-01-01T00:00:00Z.
    assert_eq!(created("createdAtLe=2026-01-01T00:00:00Z").await.1.as_array().map(Vec::len), Some(1));
    assert_eq!(created("createdAtGt=2026-01-01T00:00:00Z").await.1, json!([]));
    assert_eq!(created("createdAtGe=2025-12-31T23:59:59.999Z").await.1.as_array().map(Vec::len), Some(1));
    let (status, body) = created("createdAtLt=yesterday").await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], json!(["createdAtLt must be a valid ISO 8601 date string"]));
}
