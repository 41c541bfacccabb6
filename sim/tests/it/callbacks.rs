//! Status callbacks over real sockets: the fake Twilio's REST API on a loopback port, wiremock as the
//! receiving webhook server, and the exact callback sequence for each phone outcome.

use std::time::Duration;

use ringback_sim::runtime::SharedSim;
use ringback_sim::world::{AccountConfig, NumberConfig, World, WorldConfig};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{ACCOUNT, TOKEN, param};

/// Simulated seconds pass 100 times faster than real ones.
const SCALE: f64 = 0.01;

struct Rig {
    base: String,
    sim: SharedSim,
    hooks: MockServer,
    http: reqwest::Client,
}

async fn rig(phones: &[(&str, &str)]) -> Rig {
    let mut config = WorldConfig {
        seed: 1,
        accounts: vec![AccountConfig {
            sid: ACCOUNT,
            auth_token: TOKEN.into(),
            numbers: vec![NumberConfig {
                phone_number: "+15550000100".into(),
                voice_url: None,
                voice_method: None,
                voice_fallback_url: None,
                status_callback: None,
            }],
        }],
        ..WorldConfig::default()
    };
    for (number, table) in phones {
        config.phones.insert((*number).into(), crate::support::behaviour(table));
    }
    let (base, sim) = crate::support::serve_over_http(World::new(config).expect("world"), SCALE).await;
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/twiml"))
        .respond_with(ResponseTemplate::new(200).insert_header("content-type", "text/xml").set_body_string("<Response><Say>Hello from the test, please hold the line while we look into this</Say></Response>"))
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/status"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/amd"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hooks)
        .await;
    Rig { base, sim, hooks, http: reqwest::Client::new() }
}

impl Rig {
    fn calls(&self) -> String {
        format!("{}/2010-04-01/Accounts/{ACCOUNT}/Calls.json", self.base)
    }

    async fn create(&self, to: &str, extra: &[(&str, &str)]) -> serde_json::Value {
        let mut form = vec![
            ("To", to.to_owned()),
            ("From", "+15550000100".to_owned()),
            ("Url", format!("{}/twiml", self.hooks.uri())),
            ("StatusCallback", format!("{}/status", self.hooks.uri())),
        ];
        for e in ["initiated", "ringing", "answered", "completed"] {
            form.push(("StatusCallbackEvent", e.to_owned()));
        }
        form.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let response = self
            .http
            .post(self.calls())
            .basic_auth(ACCOUNT.to_string(), Some(TOKEN))
            .form(&form)
            .send()
            .await
            .expect("create");
        assert_eq!(response.status(), 201);
        response.json().await.expect("json")
    }

    /// Waits (at most 10 s of real time) until the call has ended and its last callback arrived.
    async fn wait_for_end(&self, sid: &str) -> serde_json::Value {
        let url = format!("{}/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json", self.base);
        for _ in 0..1000 {
            let call: serde_json::Value = self
                .http
                .get(&url)
                .basic_auth(ACCOUNT.to_string(), Some(TOKEN))
                .send()
                .await
                .expect("fetch")
                .json()
                .await
                .expect("json");
            let status = call["status"].as_str().unwrap_or_default();
            if ["completed", "busy", "failed", "no-answer", "canceled"].contains(&status)
                && self.sim.world().in_flight() == 0
            {
                return call;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("call {sid} never ended:\n{}", self.sim.world().journal().timeline());
    }

    async fn callbacks(&self, at: &str) -> Vec<Vec<(String, String)>> {
        let requests = self.hooks.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|r| r.url.path() == at)
            .map(|r| form_urlencoded::parse(&r.body).into_owned().collect())
            .collect()
    }
}

fn statuses(callbacks: &[Vec<(String, String)>]) -> Vec<String> {
    callbacks.iter().map(|c| param(c, "CallStatus").unwrap_or_default().to_owned()).collect()
}

fn assert_progress_params(callbacks: &[Vec<(String, String)>], sid: &str) {
    for (n, c) in callbacks.iter().enumerate() {
        assert_eq!(param(c, "CallSid"), Some(sid));
        assert_eq!(param(c, "AccountSid"), Some(ACCOUNT.to_string().as_str()));
        assert_eq!(param(c, "CallbackSource"), Some("call-progress-events"));
        assert_eq!(param(c, "SequenceNumber"), Some(n.to_string().as_str()), "sequence numbers start at 0");
        assert_eq!(param(c, "Direction"), Some("outbound-api"));
        assert_eq!(param(c, "ApiVersion"), Some("2010-04-01"));
        assert!(param(c, "Timestamp").is_some_and(|t| t.ends_with("+0000")), "RFC 2822 timestamp");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_reports_initiated_ringing_in_progress_completed() {
    let rig = rig(&[("+15550000201", r#"{ answer = "human", after_s = 2 }"#)]).await;
    let call = rig.create("+15550000201", &[]).await;
    assert_eq!(call["status"], "queued");
    let sid = call["sid"].as_str().expect("sid");
    let ended = rig.wait_for_end(sid).await;
    assert_eq!(ended["status"], "completed");
    let callbacks = rig.callbacks("/status").await;
    assert_eq!(statuses(&callbacks), ["initiated", "ringing", "in-progress", "completed"]);
    assert_progress_params(&callbacks, sid);
    let completed = callbacks.last().expect("completed");
    assert!(param(completed, "CallDuration").is_some(), "completed carries CallDuration");
    assert_eq!(param(completed, "SipResponseCode"), Some("200"));
    assert_eq!(rig.callbacks("/twiml").await.len(), 1, "the Url was fetched once, on answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_failed_and_no_answer_end_without_ringing_through() {
    let cases = [
        ("+15550000202", r#"{ answer = "busy" }"#, "busy", vec!["initiated", "busy"], "486"),
        ("+15550000203", r#"{ answer = "fail" }"#, "failed", vec!["initiated", "failed"], "503"),
        (
            "+15550000204",
            r#"{ answer = "no-answer" }"#,
            "no-answer",
            vec!["initiated", "ringing", "no-answer"],
            "487",
        ),
    ];
    for (to, behaviour, status, expected, sip) in cases {
        let rig = rig(&[(to, behaviour)]).await;
        let call = rig.create(to, &[("Timeout", "5")]).await;
        let sid = call["sid"].as_str().expect("sid");
        let ended = rig.wait_for_end(sid).await;
        assert_eq!(ended["status"], status);
        let callbacks = rig.callbacks("/status").await;
        assert_eq!(statuses(&callbacks), expected, "{to}");
        assert_progress_params(&callbacks, sid);
        assert_eq!(param(callbacks.last().expect("last"), "SipResponseCode"), Some(sip), "{to}");
        assert!(rig.callbacks("/twiml").await.is_empty(), "an unanswered call never fetches its Url");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_a_ringing_call_reports_canceled() {
    let rig = rig(&[("+15550000205", r#"{ answer = "no-answer" }"#)]).await;
    let call = rig.create("+15550000205", &[]).await;
    let sid = call["sid"].as_str().expect("sid").to_owned();
    let url = format!("{}/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json", rig.base);
    // Wait for ringing (1 simulated second = 10 ms), then cancel.
    for _ in 0..500 {
        if statuses(&rig.callbacks("/status").await).contains(&"ringing".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let updated = rig
        .http
        .post(&url)
        .basic_auth(ACCOUNT.to_string(), Some(TOKEN))
        .form(&[("Status", "canceled")])
        .send()
        .await
        .expect("update");
    assert_eq!(updated.status(), 200);
    let ended = rig.wait_for_end(&sid).await;
    assert_eq!(ended["status"], "canceled");
    assert_eq!(statuses(&rig.callbacks("/status").await), ["initiated", "ringing", "canceled"]);
    let again = rig
        .http
        .post(&url)
        .basic_auth(ACCOUNT.to_string(), Some(TOKEN))
        .form(&[("Url", "http://example.com/x")])
        .send()
        .await
        .expect("update");
    assert_eq!(again.status(), 400);
    let body: serde_json::Value = again.json().await.expect("json");
    assert_eq!(body["code"], 21220);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voicemail_is_answered_and_sync_amd_delays_the_twiml_fetch_with_answered_by() {
    let rig = rig(&[("+15550000206", r#"{ answer = "machine", greeting_s = 6 }"#)]).await;
    let call = rig.create("+15550000206", &[("MachineDetection", "DetectMessageEnd")]).await;
    let sid = call["sid"].as_str().expect("sid");
    let ended = rig.wait_for_end(sid).await;
    assert_eq!(ended["status"], "completed");
    assert_eq!(ended["answered_by"], "machine_end_beep");
    assert_eq!(
        statuses(&rig.callbacks("/status").await),
        ["initiated", "ringing", "in-progress", "completed"]
    );
    let fetches = rig.callbacks("/twiml").await;
    assert_eq!(fetches.len(), 1);
    assert_eq!(param(&fetches[0], "AnsweredBy"), Some("machine_end_beep"));
    assert_eq!(param(&fetches[0], "MachineDetectionDuration"), Some("6500"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_amd_posts_the_result_to_its_callback_after_the_url_was_fetched() {
    let rig = rig(&[("+15550000207", r#"{ answer = "machine" }"#)]).await;
    let hooks = rig.hooks.uri();
    let amd = format!("{hooks}/amd");
    let call = rig
        .create(
            "+15550000207",
            &[("MachineDetection", "Enable"), ("AsyncAmd", "true"), ("AsyncAmdStatusCallback", &amd)],
        )
        .await;
    let sid = call["sid"].as_str().expect("sid");
    rig.wait_for_end(sid).await;
    let fetch = rig.callbacks("/twiml").await;
    assert!(param(&fetch[0], "AnsweredBy").is_none(), "async AMD does not delay nor annotate the fetch");
    let results = rig.callbacks("/amd").await;
    assert_eq!(results.len(), 1);
    assert_eq!(param(&results[0], "AnsweredBy"), Some("machine_start"));
    assert_eq!(param(&results[0], "CallSid"), Some(sid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_redirect_stops_the_media_stream_of_a_connect_and_runs_the_new_document() {
    use futures_util::StreamExt;
    let rig = rig(&[]).await;
    let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind ws");
    let ws_url = format!("ws://{}/media", ws.local_addr().expect("addr"));
    let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    tokio::spawn(async move {
        let (socket, _) = ws.accept().await.expect("accept");
        let mut socket = tokio_tungstenite::accept_async(socket).await.expect("handshake");
        while let Some(Ok(message)) = socket.next().await {
            if let Ok(text) = message.to_text()
                && let Ok(value) = serde_json::from_str::<serde_json::Value>(text)
                && value["event"] != "media"
            {
                let _ = events_tx.send(value);
            }
        }
    });
    let twiml = format!(
        r#"<Response><Connect><Stream url="{ws_url}"><Parameter name="caller" value="ada"/></Stream></Connect></Response>"#
    );
    let form = [("To", "+15550000208".to_owned()), ("From", "+15550000100".to_owned()), ("Twiml", twiml)];
    let response = rig
        .http
        .post(rig.calls())
        .basic_auth(ACCOUNT.to_string(), Some(TOKEN))
        .form(&form)
        .send()
        .await
        .expect("create");
    let call: serde_json::Value = response.json().await.expect("json");
    let sid = call["sid"].as_str().expect("sid").to_owned();
    assert_eq!(next_message(&mut events_rx).await["event"], "connected");
    let start = next_message(&mut events_rx).await;
    assert_eq!(start["event"], "start");
    assert_eq!(start["start"]["callSid"], sid.as_str());
    assert_eq!(start["start"]["customParameters"]["caller"], "ada");
    let url = format!("{}/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json", rig.base);
    let redirect = [("Url", format!("{}/twiml", rig.hooks.uri()))];
    let updated = rig
        .http
        .post(&url)
        .basic_auth(ACCOUNT.to_string(), Some(TOKEN))
        .form(&redirect)
        .send()
        .await
        .expect("update");
    assert_eq!(updated.status(), 200);
    let stop = next_message(&mut events_rx).await;
    assert_eq!(stop["event"], "stop", "Twilio: a redirect ends the stream with a stop message");
    assert_eq!(stop["stop"]["callSid"], sid.as_str());
    rig.wait_for_end(&sid).await;
    assert_eq!(rig.callbacks("/twiml").await.len(), 1, "the new document was fetched");
}

async fn next_message(rx: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>) -> serde_json::Value {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a stream message in time")
        .expect("stream open")
}
