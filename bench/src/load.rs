//! A small closed-loop HTTP load driver: `connections` keep-alive HTTP/1.1 connections, each sending the
//! same request again as soon as the previous response has been read, for a fixed time after a warm-up.
//! It runs on one thread (a current-thread runtime), so on a two-core machine the server under test has
//! the other core.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// The request to repeat.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: http::Method,
    pub path: String,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub body: Bytes,
}

/// What the driver saw.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Outcome {
    /// Responses during the measured window.
    pub requests: u64,
    /// Responses whose status was not the expected one, and failed requests.
    pub errors: u64,
    pub elapsed_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

impl Outcome {
    pub fn per_s(&self) -> f64 {
        self.requests as f64 / self.elapsed_s
    }
}

/// Sends `request` to `addr` over `connections` connections for `warmup` + `duration`; statuses other
/// than `expect` count as errors.
pub fn drive(
    addr: SocketAddr,
    request: &Request,
    expect: u16,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let start = Instant::now() + warmup;
        let end = start + duration;
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let request = request.clone();
            tasks.push(tokio::spawn(async move { connection(addr, request, expect, start, end).await }));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (mut l, e) = task.await??;
            latencies.append(&mut l);
            errors += e;
        }
        latencies.sort_unstable();
        Ok(Outcome {
            requests: latencies.len() as u64,
            errors,
            elapsed_s: duration.as_secs_f64(),
            p50_us: percentile(&latencies, 0.50),
            p99_us: percentile(&latencies, 0.99),
        })
    })
}

/// The `q` quantile of sorted latencies in nanoseconds, in microseconds.
pub fn percentile(sorted_ns: &[u64], q: f64) -> f64 {
    if sorted_ns.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted_ns.len() as f64 * q).ceil() as usize).clamp(1, sorted_ns.len()) - 1;
    sorted_ns[i] as f64 / 1_000.0
}

/// One connection's loop: latencies (ns) of the responses completed inside `[start, end)`, and errors.
async fn connection(
    addr: SocketAddr,
    request: Request,
    expect: u16,
    start: Instant,
    end: Instant,
) -> anyhow::Result<(Vec<u64>, u64)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let authority = addr.to_string();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(request.path.as_str())
            .header(http::header::HOST, authority.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let req = builder.body(Full::new(request.body.clone()))?;
        sender.ready().await?;
        let ok = match sender.send_request(req).await {
            Ok(response) => {
                let status = response.status().as_u16();
                response.into_body().collect().await.is_ok() && status == expect
            }
            Err(_) => false,
        };
        let done = Instant::now();
        if sent >= start && done < end {
            latencies.push(u64::try_from((done - sent).as_nanos()).unwrap_or(u64::MAX));
            if !ok {
                errors += 1;
            }
        }
        if !ok && sender.is_closed() {
            break;
        }
    }
    Ok((latencies, errors))
}
