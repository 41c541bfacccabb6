//! `ringback-bench`: the measurements behind `cargo xtask bench` (SPEC §8). `all` runs every one of them,
//! prints the table and writes `BENCHMARKS.md`; the other subcommands run one measurement, or serve a
//! baseline, for a developer who is profiling.
//!
//! Start at [`all`]. [`scenarios`] measures scenario runs in virtual time, [`load`] drives an HTTP
//! server over loopback with keep-alive connections, [`serve`] starts the servers it compares,
//! [`webhooks`] measures the latency the fake Twilio adds to a webhook, `ringback-soak` (a binary of its
//! own) the memory a finished call keeps, and [`report`] renders the table.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool reports on its terminal

mod load;
mod report;
mod scenarios;
mod serve;
mod webhooks;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};

use crate::report::{Figure, Row};

#[derive(Debug, Parser)]
#[command(name = "ringback-bench", about = "ringback's benchmarks (run them all with `cargo xtask bench`)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every measurement; prints the table and writes it with the machine to `--out`.
    All(AllArgs),
    /// Scenario runs per second against the reference orchestrator.
    Scenarios {
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 10_000)]
        generated: usize,
    },
    /// The fake Twilio's Calls create under load (a `ringback serve` started with `--ringback`).
    Http {
        #[arg(long, default_value = "target/release/ringback")]
        ringback: PathBuf,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Webhook latency with `--calls` simulated calls.
    Webhooks {
        #[arg(long, default_value = "target/release/ringback")]
        ringback: PathBuf,
        #[arg(long, default_value_t = 500)]
        calls: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// One library scenario over and over on one thread, for a profiler (`perf record … repeat`).
    Repeat {
        #[arg(long, default_value = "busy-returns-the-caller")]
        scenario: String,
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
    /// A digest of the journals (bodies included) of the library and of generated scenarios (equal before and after an
    /// optimization: it changed nothing observable).
    Digest {
        #[arg(long, default_value_t = 300)]
        generated: usize,
    },
    /// Serve the static wiremock baseline (used by `all` and `http`, in a process of its own).
    #[command(hide = true)]
    Wiremock {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        path: String,
        #[arg(long)]
        status: u16,
        #[arg(long)]
        body_file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct AllArgs {
    /// The release `ringback` binary.
    #[arg(long)]
    ringback: PathBuf,
    /// The release `ringback-soak` binary.
    #[arg(long)]
    soak: PathBuf,
    /// Prism's executable, or nothing with `--no-prism`.
    #[arg(long)]
    prism: Option<PathBuf>,
    /// Why Prism is not available (the row says so).
    #[arg(long)]
    no_prism: Option<String>,
    /// The OpenAPI file of Twilio's API, which Prism mocks.
    #[arg(long)]
    spec: PathBuf,
    /// A library scenario file, for the cold start.
    #[arg(long)]
    scenario: PathBuf,
    /// Where to write the Markdown report.
    #[arg(long)]
    out: PathBuf,
    /// A scratch folder (world files, bodies).
    #[arg(long)]
    scratch: PathBuf,
    /// How ringback was built, for the report.
    #[arg(long, default_value = "cargo build --release")]
    build: String,
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::All(args) => all(&args),
        Command::Scenarios { threads, generated } => {
            let busy = scenarios::busy(threads, Duration::from_secs(2))?;
            println!("busy: {busy:?} {:.0}/s {:.0} µs", busy.runs_per_s(), busy.cpu_us_per_run());
            let library = scenarios::library(threads, 3)?;
            println!("library: {library:?} {:.0}/s {:.0} µs", library.runs_per_s(), library.cpu_us_per_run());
            if generated > 0 {
                let g = scenarios::generated(generated, threads);
                println!("generated: {g:?} {:.0}/s {:.0} µs", g.runs_per_s(), g.cpu_us_per_run());
            }
            Ok(())
        }
        Command::Http { ringback, connections, seconds } => {
            let scratch = std::env::temp_dir();
            let world = serve::world_file(&scratch, "")?;
            let fake = serve::fake_twilio(&ringback, &world)?;
            let (request, _) = calls_create(fake.addr)?;
            let outcome = load::drive(
                fake.addr,
                &request,
                201,
                connections,
                Duration::from_secs(1),
                Duration::from_secs(seconds),
            )?;
            println!("fake: {outcome:?} {:.0}/s", outcome.per_s());
            Ok(())
        }
        Command::Webhooks { ringback, calls, seconds } => {
            let world = serve::world_file(&std::env::temp_dir(), "")?;
            let fake = serve::fake_twilio(&ringback, &world)?;
            let latency = webhooks::measure(fake.addr, calls, PERIOD, Duration::from_secs(seconds))?;
            println!("{latency:?}");
            Ok(())
        }
        Command::Repeat { scenario, seconds } => {
            let plan = scenarios::library_scenario(&scenario)?.plan(scenarios::SEED);
            let started = Instant::now();
            let mut runs = 0u32;
            while started.elapsed() < Duration::from_secs(seconds) {
                ringback::run::run_reference(&plan).map_err(anyhow::Error::msg)?;
                runs += 1;
            }
            println!("{runs} runs, {:.0} µs each", started.elapsed().as_secs_f64() * 1e6 / f64::from(runs));
            Ok(())
        }
        Command::Digest { generated } => {
            print!("{}", scenarios::digest(generated)?);
            Ok(())
        }
        Command::Wiremock { addr, path, status, body_file } => {
            let body =
                std::fs::read(&body_file).with_context(|| format!("reading {}", body_file.display()))?;
            serve::run_wiremock(addr, &path, status, body)
        }
    }
}

/// The mean pause between two webhooks of one simulated call in the latency runs.
const PERIOD: Duration = Duration::from_millis(250);

/// The Calls create request every server gets, and the fake's answer to it (the body wiremock returns).
fn calls_create(fake: SocketAddr) -> Result<(load::Request, Bytes)> {
    let path = format!("/2010-04-01/Accounts/{}/Calls.json", serve::ACCOUNT_SID);
    let body =
        webhooks::form(&[("To", serve::BUSY), ("From", serve::FROM), ("Url", "http://127.0.0.1:9/twiml")]);
    let request = load::Request {
        method: http::Method::POST,
        path,
        headers: vec![
            (http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-www-form-urlencoded")),
            (http::header::AUTHORIZATION, http::HeaderValue::from_str(&webhooks::basic_auth())?),
        ],
        body: Bytes::from(body),
    };
    let sample = load::drive(fake, &request, 201, 1, Duration::ZERO, Duration::from_millis(1))?;
    if sample.errors > 0 {
        bail!("the fake Twilio did not answer Calls create with 201");
    }
    let answer = one_request(fake, &request)?;
    Ok((request, answer))
}

/// One request's response body.
fn one_request(addr: SocketAddr, request: &load::Request) -> Result<Bytes> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        use http_body_util::BodyExt as _;
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(&request.path)
            .header("host", addr.to_string());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response =
            sender.send_request(builder.body(http_body_util::Full::new(request.body.clone()))?).await?;
        Ok(response.into_body().collect().await?.to_bytes())
    })
}

/// Every measurement, in order; a measurement that cannot run says why in its row.
fn all(args: &AllArgs) -> Result<()> {
    std::fs::create_dir_all(&args.scratch)?;
    let mut rows = Vec::new();
    let threads = args.threads;
    eprintln!("ringback-bench: scenarios in virtual time");

    let busy = scenarios::busy(threads, Duration::from_secs(3))?;
    rows.push(Row::scenarios(
        "one busy scenario, repeated",
        &busy,
        Some(report::Budget::at_least(2_000.0, "runs/s")),
    ));
    let library = scenarios::library(threads, 5)?;
    rows.push(Row::library(&library));
    let generated = scenarios::generated(10_000, threads);
    rows.push(Row::generated(&generated));

    eprintln!("ringback-bench: Calls create on loopback");
    let world = serve::world_file(&args.scratch, "")?;
    let (connections, warmup, window) = (16, Duration::from_secs(1), Duration::from_secs(5));
    let fake = serve::fake_twilio(&args.ringback, &world)?;
    let (request, answer) = calls_create(fake.addr)?;
    let fake_load = load::drive(fake.addr, &request, 201, connections, warmup, window)?;
    drop(fake);
    let wiremock = serve::wiremock(&request.path, 201, &answer, &args.scratch)
        .and_then(|server| load::drive(server.addr, &request, 201, connections, warmup, window));
    let prism = match (&args.prism, &args.no_prism) {
        (Some(prism), _) => serve::prism(prism, &args.spec)
            .and_then(|server| load::drive(server.addr, &request, 201, connections, warmup, window))
            .map_err(|e| format!("{e:#}")),
        (None, Some(why)) => Err(why.clone()),
        (None, None) => Err("no Prism given".to_owned()),
    };
    rows.extend(Row::calls_create(&fake_load, wiremock.map_err(|e| format!("{e:#}")), prism));

    eprintln!("ringback-bench: webhook latency");
    for calls in [50, 500] {
        let fake = serve::fake_twilio(&args.ringback, &world)?;
        let latency = webhooks::measure(fake.addr, calls, PERIOD, Duration::from_secs(10));
        rows.push(Row::webhooks(calls, latency.map_err(|e| format!("{e:#}"))));
    }

    eprintln!("ringback-bench: memory soak");
    rows.push(Row::soak("retained", run_soak(&args.soak).map_err(|e| format!("{e:#}"))));
    // FIXME: the world cannot summarize a finished call's journal lines yet (the journal is one ordered
    // record the rules read whole); with every line retained the budget is met, so none was added.
    rows.push(Row::soak(
        "summarized",
        Err("the world has no summarized journal (every line is retained; see the notes)".to_owned()),
    ));

    eprintln!("ringback-bench: cold start");
    rows.push(Row::cold_start(cold_start(&args.ringback, &args.scenario, 10).map_err(|e| format!("{e:#}"))));

    let table = report::table(&rows);
    println!("{table}");
    let markdown = report::markdown(&rows, &report::machine(&args.build), PERIOD);
    std::fs::write(&args.out, markdown).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("ringback-bench: wrote {}", args.out.display());
    Ok(())
}

/// `ringback-soak`'s result.
fn run_soak(soak: &Path) -> Result<serde_json::Value> {
    let out = std::process::Command::new(soak)
        .args(["per-call", "--calls", "100000"])
        .output()
        .with_context(|| format!("starting {}", soak.display()))?;
    if !out.status.success() {
        bail!("{} failed: {}", soak.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The median wall time from starting `ringback run SCENARIO` to its first verdict line, over `n` runs.
fn cold_start(ringback: &Path, scenario: &Path, n: usize) -> Result<Figure> {
    use std::io::BufRead as _;
    let mut times = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let mut child = std::process::Command::new(ringback)
            .arg("run")
            .arg(scenario)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} run", ringback.display()))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let took = started.elapsed();
        // Read the rest, so the child never writes to a closed pipe.
        std::io::copy(&mut reader, &mut std::io::sink())?;
        let status = child.wait()?;
        if line.is_empty() || !status.success() {
            bail!("`ringback run {}` printed no verdict ({status})", scenario.display());
        }
        times.push(took);
    }
    times.sort();
    Ok(Figure { value: times[times.len() / 2].as_secs_f64() * 1e3, unit: "ms" })
}
