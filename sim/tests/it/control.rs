//! The `/_ringback/` control API: a caller dials a Twilio number, presses keys and hangs up; phones are
//! reconfigured; bad input gets a 4xx naming what was expected.

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::support::{self, CALLER, NUMBER, Received};

async fn send(router: &Router, method: &str, uri: &str, body: &str) -> (u16, String) {
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(start_paused = true)]
async fn a_caller_placed_through_the_control_api_reaches_the_voice_url_and_can_press_keys_and_hang_up() {
    let received = Received::default();
    let target = Router::new()
        .route(
            "/voice",
            post(|axum::extract::State(r): axum::extract::State<Received>, body: String| async move {
                r.push("/voice", &body);
                ([("content-type", "text/xml")], r#"<Response><Gather numDigits="1" action="/pressed"><Say>Press 1</Say></Gather></Response>"#)
            }),
        )
        .route(
            "/pressed",
            post(|axum::extract::State(r): axum::extract::State<Received>, body: String| async move {
                r.push("/pressed", &body);
                ([("content-type", "text/xml")], "<Response><Pause length=\"30\"/></Response>")
            }),
        )
        .route("/number-status", post(|| async {}))
        .with_state(received.clone());
    let sim = support::sim(support::world(&[]), target);
    let driver = tokio::spawn(ringback_sim::runtime::drive(sim.clone(), std::future::pending()));
    let control = ringback_sim::control::router(sim.clone());

    let (status, body) =
        send(&control, "POST", "/_ringback/calls", &format!(r#"{{"from": "{CALLER}", "to": "{NUMBER}"}}"#))
            .await;
    assert_eq!(status, 201, "{body}");
    let sid = serde_json::from_str::<serde_json::Value>(&body).expect("json")["call_sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let (status, _) =
        send(&control, "POST", &format!("/_ringback/calls/{sid}/digits"), r#"{"digits": "1"}"#).await;
    assert_eq!(status, 204);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let pressed = received.at("/pressed");
    assert_eq!(support::param(&pressed[0], "Digits"), Some("1"));
    let (status, calls) = send(&control, "GET", "/_ringback/calls", "").await;
    assert_eq!(status, 200);
    let calls: serde_json::Value = serde_json::from_str(&calls).expect("json");
    assert_eq!(calls[0]["call_sid"], sid.as_str());
    assert_eq!((calls[0]["from"].as_str(), calls[0]["status"].as_str()), (Some(CALLER), Some("in-progress")));
    assert_eq!(calls[0]["conference_sid"], serde_json::Value::Null);
    // The caller speaks; no assistant is on this line to hear it, and the timeline says so.
    let (status, body) =
        send(&control, "POST", &format!("/_ringback/calls/{sid}/say"), r#"{"text": "hello?"}"#).await;
    assert_eq!(status, 204, "{body}");

    let (_, before) = send(&control, "GET", "/_ringback/timeline", "").await;
    let (status, _) = send(&control, "POST", &format!("/_ringback/calls/{sid}/hangup"), "").await;
    assert_eq!(status, 204);
    let (_, timeline) = send(&control, "GET", "/_ringback/timeline", "").await;
    assert!(timeline.contains("in-progress → completed (the far end hung up)"), "{timeline}");
    let read = before.lines().count();
    let (_, newer) = send(&control, "GET", &format!("/_ringback/timeline?after={read}"), "").await;
    assert_eq!(newer, timeline.lines().skip(read).map(|l| format!("{l}\n")).collect::<String>());
    assert!(!newer.is_empty());
    assert!(
        timeline.contains("says: hello?") && timeline.contains("no assistant is listening"),
        "{timeline}"
    );
    let (status, body) =
        send(&control, "POST", &format!("/_ringback/calls/{sid}/say"), r#"{"text": "still there?"}"#).await;
    assert!(status == 409 && body.contains("ended"), "a call that has ended says nothing: {status} {body}");
    driver.abort();
}

#[tokio::test]
async fn bad_control_requests_say_what_was_expected() {
    let sim = support::sim(support::world(&[]), Router::new());
    let control = ringback_sim::control::router(sim);
    let (status, body) = send(&control, "POST", "/_ringback/calls", r#"{"from": "+1"}"#).await;
    assert_eq!(status, 400);
    assert!(body.contains("expected {\\\"from\\\", \\\"to\\\"}"), "{body}");
    let (status, body) =
        send(&control, "POST", "/_ringback/calls", r#"{"from": "+1555", "to": "+19999999999"}"#).await;
    assert_eq!(status, 404);
    assert!(body.contains("is not a Twilio number of this world"), "{body}");
    let unknown = "/_ringback/calls/CA00000000000000000000000000000009/say";
    let (status, body) = send(&control, "POST", unknown, r#"{"text": "hi"}"#).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = send(&control, "POST", unknown, r#"{"words": "hi"}"#).await;
    assert!(status == 400 && body.contains("text"), "{status} {body}");
    let (status, body) = send(&control, "POST", "/_ringback/calls/CA123/hangup", "").await;
    assert_eq!(status, 400);
    assert!(body.contains("expected `CA` followed by 32 hex digits"), "{body}");
    let (status, body) =
        send(&control, "PUT", "/_ringback/phones/+15550001", r#"{"answer": "sometimes"}"#).await;
    assert_eq!(status, 400);
    assert!(body.contains("expected a phone behaviour"), "{body}");
    let (status, _) = send(&control, "PUT", "/_ringback/phones/+15550001", r#"{"answer": "busy"}"#).await;
    assert_eq!(status, 204);
    let (status, body) = send(
        &control,
        "POST",
        "/_ringback/calls/CA00000000000000000000000000000001/digits",
        r#"{"digits": "1x"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("`x` is not a phone key"), "{body}");
    // Every request under /_ringback/ is read by the one parser, unknown routes and methods included.
    let (status, body) = send(&control, "DELETE", "/_ringback/calls", "").await;
    assert!(status == 405 && body.contains("expected GET or POST"), "{status} {body}");
    let (status, body) = send(&control, "GET", "/_ringback/nothing/here", "").await;
    assert!(status == 404 && body.contains("\"error\""), "{status} {body}");
}
