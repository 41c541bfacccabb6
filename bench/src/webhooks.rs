//! The latency the fake Twilio adds to a webhook, with many simulated calls live at once.
//!
//! The fake runs as `ringback serve` (real sockets, real time). A target in this process answers every
//! webhook at once with `<Pause length="3600"/>`, so each call sits parked until it is told otherwise.
//! Each simulated call then loops: wait a random pause (uniform, 0 to 2 × `period`), redirect the call
//! with the REST API (`POST /Calls/{Sid}.json Url=…/hook?c=N`), and wait for the fake to fetch that URL
//! from the target. The latency of one webhook is from the moment the client starts sending the
//! redirect to the moment the target's handler sees the fetch: everything the fake does in between
//! (reading and journaling the request, redirecting the call, building and signing the webhook,
//! sending it over its connection pool), plus two loopback hops, which are measured alone for
//! comparison (`GET /ping` to the target from the same client).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::sync::oneshot;

use crate::serve::{ACCOUNT_SID, AUTH_TOKEN, FROM};

const PARK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Pause length="3600"/></Response>"#;

/// What one latency run measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Latency {
    pub calls: usize,
    pub webhooks: usize,
    /// Redirects whose webhook never arrived (within 5 s) or that the fake refused.
    pub errors: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// A bare loopback round trip from the same client to the target, under the same load.
    pub ping_p50_us: f64,
    pub ping_p99_us: f64,
}

/// The target's state: how many calls parked, and who waits for which call's next webhook.
#[derive(Default)]
struct Target {
    parked: std::sync::atomic::AtomicUsize,
    waiting: Mutex<Vec<Option<oneshot::Sender<Instant>>>>,
}

#[derive(serde::Deserialize)]
struct Hook {
    c: usize,
}

fn twiml() -> ([(http::HeaderName, &'static str); 1], &'static str) {
    ([(http::header::CONTENT_TYPE, "text/xml")], PARK)
}

fn target_router(state: Arc<Target>) -> Router {
    Router::new()
        .route(
            "/park",
            post(|State(t): State<Arc<Target>>| async move {
                t.parked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                twiml()
            }),
        )
        .route(
            "/hook",
            post(|State(t): State<Arc<Target>>, Query(h): Query<Hook>| async move {
                let now = Instant::now();
                let waiter =
                    t.waiting.lock().unwrap_or_else(|p| p.into_inner()).get_mut(h.c).and_then(Option::take);
                if let Some(w) = waiter {
                    let _ = w.send(now);
                }
                twiml()
            }),
        )
        .route("/ping", get(|| async { "" }))
        .with_state(state)
}

/// A keep-alive connection to `addr`.
async fn connect(addr: SocketAddr) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends one request and reads the whole answer: its status and body.
async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    method: http::Method,
    addr: SocketAddr,
    path: &str,
    form: Option<String>,
) -> Result<(u16, Bytes)> {
    let mut builder =
        http::Request::builder().method(method).uri(path).header(http::header::HOST, addr.to_string());
    if form.is_some() {
        builder = builder
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::AUTHORIZATION, basic_auth());
    }
    let request = builder.body(Full::new(Bytes::from(form.unwrap_or_default())))?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// `Basic base64(account:token)` for the default account.
pub fn basic_auth() -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    )
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A tiny deterministic RNG for the pauses (xorshift).
struct Pauses(u64);

impl Pauses {
    fn next(&mut self, period: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        period.mul_f64(2.0 * (self.0 % 10_000) as f64 / 10_000.0)
    }
}

/// Parks `calls` calls on the fake at `fake`, then measures webhook latency for `duration`.
pub fn measure(fake: SocketAddr, calls: usize, period: Duration, duration: Duration) -> Result<Latency> {
    // The target gets a thread of its own, as an external orchestrator would be another process.
    let state = Arc::new(Target::default());
    *state.waiting.lock().unwrap_or_else(|p| p.into_inner()) = (0..calls).map(|_| None).collect();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let target_addr = listener.local_addr()?;
    let router = target_router(state.clone());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let target = std::thread::spawn(move || -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await?;
            Ok(())
        })
    });

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = runtime.block_on(async {
        let calls_path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json");
        let park = format!("http://{target_addr}/park");
        // Place the calls; every callee answers (an unknown number answers as a person after 2 s).
        let mut sids = Vec::with_capacity(calls);
        let mut setup = connect(fake).await?;
        for i in 0..calls {
            let to = format!("+1555200{i:04}");
            let body = form(&[("To", &to), ("From", FROM), ("Url", &park)]);
            let (status, body) = send(&mut setup, http::Method::POST, fake, &calls_path, Some(body)).await?;
            if status != 201 {
                bail!("creating call {i}: {status} {}", String::from_utf8_lossy(&body));
            }
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            sids.push(v["sid"].as_str().context("a created call has a sid")?.to_owned());
        }
        let parking = Instant::now();
        while state.parked.load(std::sync::atomic::Ordering::Relaxed) < calls {
            if parking.elapsed() > Duration::from_secs(30) {
                bail!(
                    "only {} of {calls} calls answered and parked",
                    state.parked.load(std::sync::atomic::Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let start = Instant::now();
        let end = start + duration;
        let mut tasks = Vec::new();
        for (i, sid) in sids.into_iter().enumerate() {
            let state = state.clone();
            tasks.push(tokio::spawn(async move {
                call_loop(fake, target_addr, i, sid, state, period, end).await
            }));
        }
        // The ping loop runs alongside, at the same pace as one call.
        let ping = tokio::spawn(async move {
            let mut sender = connect(target_addr).await?;
            let mut pauses = Pauses(0x9e37_79b9_7f4a_7c15);
            let mut latencies = Vec::new();
            while Instant::now() < end {
                tokio::time::sleep(pauses.next(period / 4)).await;
                let sent = Instant::now();
                send(&mut sender, http::Method::GET, target_addr, "/ping", None).await?;
                latencies.push(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
            }
            anyhow::Ok(latencies)
        });
        let (mut latencies, mut errors) = (Vec::new(), 0);
        for task in tasks {
            let (mut l, e) = task.await??;
            latencies.append(&mut l);
            errors += e;
        }
        let mut pings = ping.await??;
        latencies.sort_unstable();
        pings.sort_unstable();
        Ok(Latency {
            calls,
            webhooks: latencies.len(),
            errors,
            p50_us: crate::load::percentile(&latencies, 0.50),
            p99_us: crate::load::percentile(&latencies, 0.99),
            max_us: latencies.last().map_or(f64::NAN, |&n| n as f64 / 1_000.0),
            ping_p50_us: crate::load::percentile(&pings, 0.50),
            ping_p99_us: crate::load::percentile(&pings, 0.99),
        })
    });
    let _ = stop_tx.send(());
    let _ = target.join();
    result
}

/// One simulated call: redirect, wait for the webhook, pause, again, until `end`.
async fn call_loop(
    fake: SocketAddr,
    target: SocketAddr,
    i: usize,
    sid: String,
    state: Arc<Target>,
    period: Duration,
    end: Instant,
) -> Result<(Vec<u64>, usize)> {
    let mut sender = connect(fake).await?;
    let path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json");
    let body = form(&[("Url", &format!("http://{target}/hook?c={i}"))]);
    let mut pauses = Pauses(0x2545_f491_4f6c_dd1d ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let (mut latencies, mut errors) = (Vec::new(), 0);
    loop {
        tokio::time::sleep(pauses.next(period)).await;
        if Instant::now() >= end {
            break;
        }
        let (tx, rx) = oneshot::channel();
        if let Some(slot) = state.waiting.lock().unwrap_or_else(|p| p.into_inner()).get_mut(i) {
            *slot = Some(tx);
        }
        let sent = Instant::now();
        let (status, _) = send(&mut sender, http::Method::POST, fake, &path, Some(body.clone())).await?;
        match tokio::time::timeout(Duration::from_secs(5), rx).await {
            Ok(Ok(arrived)) if status == 200 => {
                latencies.push(
                    u64::try_from(arrived.saturating_duration_since(sent).as_nanos()).unwrap_or(u64::MAX),
                );
            }
            _ => errors += 1,
        }
    }
    Ok((latencies, errors))
}
