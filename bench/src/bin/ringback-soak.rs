//! `ringback-soak`: the heap a finished simulated call keeps, measured with a counting allocator (which is
//! why this is a binary of its own: the allocator would slow every other benchmark).
//!
//! One world in virtual time, its number's webhooks answered in process by a target that says one word
//! and hangs up. Callers dial in batches; each call rings, fetches its TwiML, hears it, hangs up and sends
//! its final status callback. The live heap before the first call and after the last has finished,
//! divided by the number of calls, is the memory per finished call. The journal keeps every line (the
//! world has no way to summarize a finished call's lines).
//!
//! Prints one JSON object.

#![allow(clippy::print_stdout)] // prints its result

use std::alloc::System;
use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use ringback_sim::runtime::{Clock, Sim};
use ringback_sim::time::SimDuration;
use ringback_sim::transport::InMemoryTransport;
use ringback_sim::world::{AccountConfig, NumberConfig, World, WorldConfig};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const NUMBER: &str = "+15550000100";

/// Live heap bytes now.
fn live() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64 + s.bytes_reallocated as i64
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let calls: usize = args
        .iter()
        .position(|a| a == "--calls")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(100_000), |s| s.parse())?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
    let result = runtime.block_on(soak(calls))?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

#[derive(serde::Serialize)]
struct Soak {
    calls: usize,
    journal: &'static str,
    journal_entries: usize,
    heap_growth_bytes: i64,
    bytes_per_call: f64,
    peak_note: &'static str,
}

async fn soak(calls: usize) -> anyhow::Result<Soak> {
    let target = Router::new()
        .route(
            "/voice",
            post(|| async {
                ([(http::header::CONTENT_TYPE, "text/xml")], "<Response><Say>Hello</Say><Hangup/></Response>")
            }),
        )
        .route("/status", post(|| async { http::StatusCode::NO_CONTENT }));
    let transport = InMemoryTransport::new().route("target.test", target);
    let config = WorldConfig {
        seed: 1,
        accounts: vec![AccountConfig {
            sid: "AC00000000000000000000000000000001".parse().map_err(|e| anyhow::anyhow!("{e}"))?,
            auth_token: "token".into(),
            numbers: vec![NumberConfig {
                phone_number: NUMBER.into(),
                voice_url: Some("http://target.test/voice".into()),
                voice_method: None,
                voice_fallback_url: None,
                status_callback: Some("http://target.test/status".into()),
            }],
        }],
        ..WorldConfig::default()
    };
    let world = World::new(config).map_err(anyhow::Error::msg)?;
    let sim = Sim::new(world, Clock::start(1.0), Arc::new(transport));
    let _region = Region::new(GLOBAL);
    let before = live();
    let batch = 1_000;
    let mut placed = 0;
    let mut sids = Vec::with_capacity(calls);
    while placed < calls {
        for i in placed..(placed + batch).min(calls) {
            let from = format!("+1555{:07}", i % 10_000_000);
            sids.push(sim.with(|w| w.place_inbound_call(&from, NUMBER)).map_err(anyhow::Error::msg)?);
        }
        placed = (placed + batch).min(calls);
        let deadline = sim.clock().now() + SimDuration::from_secs(3600);
        if !ringback_sim::runtime::run_until_quiet(&sim, deadline).await {
            anyhow::bail!("the world did not settle after {placed} calls");
        }
    }
    // The list of SIDs is the soak's own, not the world's.
    let growth =
        live() - before - (sids.capacity() * std::mem::size_of::<ringback_sim::ids::CallSid>()) as i64;
    let world = sim.world();
    let finished = sids.iter().filter(|&&sid| world.leg(sid).is_some_and(|l| l.state.is_ended())).count();
    if finished != calls {
        anyhow::bail!("{finished} of {calls} calls finished");
    }
    Ok(Soak {
        calls,
        journal: "retained",
        journal_entries: world.journal().len(),
        heap_growth_bytes: growth,
        bytes_per_call: growth as f64 / calls as f64,
        peak_note: "live heap after every call finished, minus before the first",
    })
}
