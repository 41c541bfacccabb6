//! `ringback-soak`: long runs watched with a counting allocator (which is why this is a binary of its
//! own: the allocator would slow every other benchmark).
//!
//! - `ringback-soak per-call [--calls N]`: the heap a finished simulated call keeps. One world in virtual
//!   time, its number's webhooks answered in process by a target that says one word and hangs up.
//!   Callers dial in batches; each call rings, fetches its TwiML, hears it, hangs up and sends its final
//!   status callback. The live heap before the first call and after the last has finished, divided by
//!   the number of calls, is the memory per finished call. The journal keeps every line (the world has
//!   no way to summarize a finished call's lines). Prints one JSON object.
//! - `ringback-soak faults [--calls N] [--seed N] [--max-finished-calls N]`: the hardening soak
//!   (`ringback::soak`): generated scenarios with random faults and restarts through one long-lived
//!   reference orchestrator, every scenario judged, the heap sampled after each. Prints a summary, and
//!   the whole result as JSON with `--json FILE`; exits 1 when a scenario failed or the heap grew.

#![allow(clippy::print_stdout, clippy::print_stderr)] // prints its result

use std::alloc::System;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use clap::{Parser, Subcommand};
use ringback_sim::runtime::{Clock, Sim};
use ringback_sim::time::SimDuration;
use ringback_sim::transport::InMemoryTransport;
use ringback_sim::world::{AccountConfig, NumberConfig, World, WorldConfig};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const NUMBER: &str = "+15550000100";

/// Live heap bytes now (a reallocation's growth counts as allocated, its shrinking as deallocated).
fn live() -> i64 {
    let s = GLOBAL.stats();
    i64::try_from(s.bytes_allocated).unwrap_or(i64::MAX)
        - i64::try_from(s.bytes_deallocated).unwrap_or(i64::MAX)
}

#[derive(Parser)]
#[command(name = "ringback-soak", about = "Long runs watched with a counting allocator")]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// The heap a finished simulated call keeps (`cargo xtask bench`).
    PerCall {
        #[arg(long, default_value_t = 100_000)]
        calls: usize,
    },
    /// Generated scenarios with random faults through one long-lived reference orchestrator
    /// (`cargo xtask soak`).
    Faults {
        #[arg(long, default_value_t = 10_000)]
        calls: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The orchestrator's bound on finished calls it remembers; the heap is judged once twice this
        /// many calls have been placed.
        #[arg(long, default_value_t = 1_000)]
        max_finished_calls: usize,
        /// Writes the whole result (failures, heap samples) as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Args::parse().mode {
        Mode::PerCall { calls } => {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
            let result = runtime.block_on(soak(calls))?;
            println!("{}", serde_json::to_string(&result)?);
        }
        Mode::Faults { calls, seed, max_finished_calls, json } => {
            if !faults(calls, seed, max_finished_calls, json)? {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

/// Runs the hardening soak and reports it; whether it passed.
fn faults(calls: usize, seed: u64, max_finished_calls: usize, json: Option<PathBuf>) -> anyhow::Result<bool> {
    let started = std::time::Instant::now();
    let options = ringback::soak::Options {
        calls,
        seed,
        max_finished_calls,
        heap: Some(|| u64::try_from(live()).unwrap_or(0)),
        progress: Some(|done, wanted| {
            if done * 10 / wanted.max(1) != done.saturating_sub(1) * 10 / wanted.max(1) || done >= wanted {
                eprintln!("ringback-soak: {done} of {wanted} calls");
            }
        }),
    };
    let soak = ringback::soak::soak(&options).map_err(anyhow::Error::msg)?;
    let growth = soak.heap_growth();
    if let Some(path) = &json {
        let body = serde_json::json!({ "soak": soak, "growth": growth });
        std::fs::write(path, serde_json::to_vec_pretty(&body)?)?;
    }
    println!(
        "{} calls in {} scenarios ({} with webhook faults, {} with a restart) in {:.1} s, seed {seed}",
        soak.calls,
        soak.scenarios,
        soak.with_faults,
        soak.with_restart,
        started.elapsed().as_secs_f64()
    );
    let kinds: Vec<String> = soak.faults.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
    println!("webhook faults planned: {}", kinds.join(", "));
    for f in &soak.failures {
        println!("FAIL scenario {} (world seed {}): {}\n{}", f.index, f.seed, f.failure, f.toml);
    }
    println!(
        "{} of {} scenarios failed; the orchestrator ends with {} calls open and {} store keys of {} KiB (it remembers {} finished calls)",
        soak.failures.len(),
        soak.scenarios,
        soak.open_calls,
        soak.store_keys,
        soak.store_bytes / 1024,
        soak.max_finished_calls
    );
    let flat = match growth {
        Some(g) => {
            println!(
                "heap over {} samples after {} calls: median {} KiB early, {} KiB late, {:+.0} bytes per call (at most {} allowed), peak {} KiB",
                g.samples,
                2 * soak.max_finished_calls,
                g.early_bytes / 1024,
                g.late_bytes / 1024,
                g.bytes_per_call,
                ringback::soak::LEAK_BYTES_PER_CALL,
                g.max_bytes / 1024
            );
            g.is_flat()
        }
        None => {
            println!(
                "heap not judged: too few calls after the orchestrator's memory of finished calls filled"
            );
            true
        }
    };
    Ok(soak.passed() && soak.open_calls == 0 && flat)
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
