//! Walks the fake's REST API through a real call flow and checks every exchange against the spec file:
//! each request hits an operation of `twilio_api_v2010.json`, and each success body validates against
//! that operation's response schema. Error bodies have exactly Twilio's four keys.

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::spec::{twilio_spec, validate_response};
use crate::support::{self, ACCOUNT, TOKEN};

/// The spec path template (`/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json`) a concrete path matches.
fn template_for(path: &str) -> Option<String> {
    let spec = twilio_spec();
    let concrete: Vec<&str> = path.split('/').collect();
    let mut best: Option<(usize, String)> = None;
    for template in spec["paths"].as_object()?.keys() {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != concrete.len() {
            continue;
        }
        let mut literal = 0;
        let fits = parts.iter().zip(&concrete).all(|(t, c)| {
            if t.starts_with('{') {
                !t.ends_with(".json") || c.ends_with(".json")
            } else {
                literal += 1;
                t == c
            }
        });
        if fits && best.as_ref().is_none_or(|(n, _)| literal > *n) {
            best = Some((literal, template.clone()));
        }
    }
    best.map(|(_, t)| t)
}

struct Api {
    router: Router,
    checked: Vec<String>,
}

impl Api {
    async fn call(&mut self, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let (uri, body) = if method == "GET" && !form.is_empty() {
            (format!("{path}?{body}"), String::new())
        } else {
            (path.to_owned(), body)
        };
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"));
        let request = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header("authorization", format!("Basic {auth}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("request");
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let value =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
        let template =
            template_for(path).unwrap_or_else(|| panic!("{method} {path} is not a path of the spec"));
        if (200..300).contains(&status) {
            if let Err(errors) = validate_response(twilio_spec(), &template, method, status, &value) {
                panic!("{method} {path} → {status} does not validate:\n{}\n{value:#}", errors.join("\n"));
            }
        } else {
            let keys: Vec<&str> =
                value.as_object().expect("error object").keys().map(String::as_str).collect();
            assert_eq!(keys, ["code", "message", "more_info", "status"], "{method} {path}");
            assert_eq!(value["status"], status);
        }
        self.checked.push(format!("{method} {template} → {status}"));
        (status, value)
    }
}

fn target() -> Router {
    Router::new()
        .route(
            "/conf",
            post(|| async {
                (
                    [("content-type", "text/xml")],
                    "<Response><Dial><Conference>room</Conference></Dial></Response>",
                )
            }),
        )
        .route(
            "/pause",
            post(|| async {
                ([("content-type", "text/xml")], "<Response><Pause length=\"60\"/></Response>")
            }),
        )
}

async fn advance(seconds: u64) {
    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
}

#[tokio::test(start_paused = true)]
async fn every_rest_exchange_of_a_call_flow_is_a_spec_operation_with_a_valid_body() {
    let sim = support::sim(support::world(&[]), target());
    let driver = tokio::spawn(ringback_sim::runtime::drive(sim.clone(), std::future::pending()));
    let mut api = Api { router: ringback_sim::twilio::rest::router(sim.clone()), checked: Vec::new() };
    let a = format!("/2010-04-01/Accounts/{ACCOUNT}");

    let (status, number) = api
        .call(
            "POST",
            &format!("{a}/IncomingPhoneNumbers.json"),
            &[("PhoneNumber", "+15550000900"), ("VoiceUrl", "http://orchestrator.test/pause")],
        )
        .await;
    assert_eq!(status, 201);
    let pn = number["sid"].as_str().expect("sid").to_owned();
    api.call("GET", &format!("{a}/IncomingPhoneNumbers.json"), &[("PhoneNumber", "+15550000900")]).await;
    api.call("GET", &format!("{a}/IncomingPhoneNumbers/{pn}.json"), &[]).await;
    api.call("POST", &format!("{a}/IncomingPhoneNumbers/{pn}.json"), &[("FriendlyName", "desk")]).await;

    let (status, call) = api
        .call(
            "POST",
            &format!("{a}/Calls.json"),
            &[("To", "+15550000901"), ("From", "+15550000900"), ("Url", "http://orchestrator.test/conf")],
        )
        .await;
    assert_eq!(status, 201);
    let ca = call["sid"].as_str().expect("sid").to_owned();
    advance(5).await;
    let (_, fetched) = api.call("GET", &format!("{a}/Calls/{ca}.json"), &[]).await;
    assert_eq!(fetched["status"], "in-progress");
    api.call("GET", &format!("{a}/Calls.json"), &[("Status", "in-progress"), ("PageSize", "1")]).await;

    let (_, conferences) =
        api.call("GET", &format!("{a}/Conferences.json"), &[("FriendlyName", "room")]).await;
    let cf = conferences["conferences"][0]["sid"].as_str().expect("conference").to_owned();
    api.call("GET", &format!("{a}/Conferences/{cf}.json"), &[]).await;
    let (status, participant) = api
        .call(
            "POST",
            &format!("{a}/Conferences/room/Participants.json"),
            &[("From", "+15550000900"), ("To", "+15550000902"), ("Label", "specialist")],
        )
        .await;
    assert_eq!(status, 201);
    let specialist = participant["call_sid"].as_str().expect("call sid").to_owned();
    advance(5).await;
    let (_, listed) = api.call("GET", &format!("{a}/Conferences/{cf}/Participants.json"), &[]).await;
    assert_eq!(listed["participants"].as_array().map(Vec::len), Some(2));
    api.call("GET", &format!("{a}/Conferences/{cf}/Participants/specialist.json"), &[]).await;
    let (_, held) =
        api.call("POST", &format!("{a}/Conferences/{cf}/Participants/{ca}.json"), &[("Hold", "true")]).await;
    assert_eq!(held["hold"], true);
    let (status, _) =
        api.call("DELETE", &format!("{a}/Conferences/{cf}/Participants/{specialist}.json"), &[]).await;
    assert_eq!(status, 204);
    let (_, ended) =
        api.call("POST", &format!("{a}/Conferences/{cf}.json"), &[("Status", "completed")]).await;
    assert_eq!(ended["reason_conference_ended"], "conference-ended-via-api");

    advance(1).await;
    let (status, _) =
        api.call("POST", &format!("{a}/Calls/{ca}.json"), &[("Url", "http://orchestrator.test/pause")]).await;
    assert_eq!(status, 400, "the call hung up when its conference ended");
    let (status, _) = api.call("DELETE", &format!("{a}/Calls/{ca}.json"), &[]).await;
    assert_eq!(status, 204);
    let (status, _) = api.call("GET", &format!("{a}/Calls/{ca}.json"), &[]).await;
    assert_eq!(status, 404);
    let (status, _) = api.call("DELETE", &format!("{a}/IncomingPhoneNumbers/{pn}.json"), &[]).await;
    assert_eq!(status, 204);
    driver.abort();
    // Every operation the router serves was exercised: 18 (method, path) pairs.
    let mut operations: Vec<&str> =
        api.checked.iter().map(|c| c.split(" → ").next().unwrap_or_default()).collect();
    operations.sort_unstable();
    operations.dedup();
    assert_eq!(operations.len(), 18, "{operations:#?}");
}
