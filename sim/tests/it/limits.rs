//! Twilio's account limits: `POST /Calls` queued at the account's calls per second (with `queue_time`),
//! refused with 22005 when the queue holds more than a day of calls, and REST requests beyond the
//! account's concurrency answered 429 with 20429.

use std::time::Duration;

use ringback_sim::twilio::wire::FormParams;
use ringback_sim::world::{AccountConfig, NumberConfig, TwilioDefaults, World, WorldConfig};
use tokio::io::AsyncWriteExt;

use crate::support::{ACCOUNT, NUMBER, TOKEN};

fn world(twilio: TwilioDefaults) -> World {
    World::new(WorldConfig {
        seed: 3,
        accounts: vec![AccountConfig {
            sid: ACCOUNT,
            auth_token: TOKEN.into(),
            numbers: vec![NumberConfig {
                phone_number: NUMBER.into(),
                voice_url: None,
                voice_method: None,
                voice_fallback_url: None,
                status_callback: None,
            }],
        }],
        twilio,
        ..WorldConfig::default()
    })
    .expect("valid world")
}

fn create_form(to: &str) -> FormParams {
    let body =
        format!("To={}&From={}&Twiml=%3CResponse%2F%3E", to.replace('+', "%2B"), NUMBER.replace('+', "%2B"));
    FormParams::parse(body.as_bytes()).expect("form")
}

/// The simulated second at which each call left the queue (`queued → initiated`).
fn dialed_at(world: &World) -> Vec<String> {
    world
        .journal()
        .timeline()
        .lines()
        .filter(|l| l.contains("queued → initiated"))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn calls_created_at_once_are_dialed_at_the_accounts_calls_per_second() {
    for (cps, queue_times, dials) in [
        (1.0, ["0", "1000", "2000"], ["0.000s", "1.000s", "2.000s"]),
        (4.0, ["0", "250", "500"], ["0.000s", "0.250s", "0.500s"]),
    ] {
        let sim = crate::support::sim(
            world(TwilioDefaults { calls_per_second: cps, ..Default::default() }),
            axum::Router::new(),
        );
        let created: Vec<String> = (0..3)
            .map(|n| {
                let call = sim.with(|w| w.create_call(ACCOUNT, &create_form(&format!("+1555000030{n}"))));
                call.expect("created").queue_time.expect("queue_time")
            })
            .collect();
        assert_eq!(created, queue_times, "queue_time at {cps} CPS");
        crate::support::settle(&sim).await;
        let world = sim.world();
        assert_eq!(dialed_at(&world), dials, "{}", world.journal().timeline());
    }
}

#[tokio::test(start_paused = true)]
async fn a_queue_longer_than_max_queue_s_refuses_the_call_with_22005() {
    let defaults = TwilioDefaults { calls_per_second: 1.0, max_queue_s: 1.5, ..Default::default() };
    let sim = crate::support::sim(world(defaults), axum::Router::new());
    let mut outcomes = Vec::new();
    for n in 0..4 {
        let result = sim.with(|w| w.create_call(ACCOUNT, &create_form(&format!("+1555000030{n}"))));
        outcomes.push(result.map(|c| c.queue_time.unwrap_or_default()).map_err(|e| (e.status, e.code)));
    }
    assert_eq!(outcomes, [Ok("0".to_owned()), Ok("1000".to_owned()), Err((400, 22005)), Err((400, 22005))]);
    // Once the queue has drained, calls are accepted again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = sim.with(|w| w.create_call(ACCOUNT, &create_form("+15550000309")));
    assert_eq!(later.map(|c| c.queue_time).map_err(|e| e.code), Ok(Some("0".to_owned())));
}

#[tokio::test]
async fn requests_beyond_the_accounts_concurrency_get_429_and_are_not_processed() {
    let defaults = TwilioDefaults { max_concurrent_requests: 2, ..Default::default() };
    let (base, sim) = crate::support::serve_over_http(world(defaults), 0.01).await;
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json");
    let address = base.trim_start_matches("http://").to_owned();
    // Two requests whose bodies never finish arriving stay in flight.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nTo="
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        held.push(stream);
    }
    let http = reqwest::Client::new();
    let create = || {
        http.post(format!("{base}{path}"))
            .basic_auth(ACCOUNT.to_string(), Some(TOKEN))
            .form(&[("To", "+15550000301"), ("From", NUMBER), ("Twiml", "<Response/>")])
            .send()
    };
    let mut refused = None;
    for _ in 0..100 {
        let response = create().await.expect("answer");
        if response.status() == 429 {
            refused = Some(response.json::<serde_json::Value>().await.expect("json"));
            break;
        }
        // The held requests may not have reached the server yet.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = refused.expect("a third concurrent request is refused");
    assert_eq!(refused["code"], 20429, "{refused}");
    assert_eq!(refused["status"], 429, "{refused}");
    assert_eq!(sim.with(|w| w.legs().count()), 0, "a refused request creates nothing");
    // Abandoned requests stop counting.
    drop(held);
    let mut created = None;
    for _ in 0..100 {
        let response = create().await.expect("answer");
        if response.status() == 201 {
            created = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(created.is_some(), "requests are accepted again once the held ones are gone");
}
