//! The soak: thousands of calls with random faults through one long-lived reference orchestrator, in
//! virtual time, every scenario judged, and the heap watched for growth.
//!
//! Scenarios come from the same generator as `ringback fuzz` (specialists that answer, are busy, ring out,
//! are machines; callers who hang up; webhooks duplicated, delayed, reordered and dropped; the orchestrator
//! killed and restarted mid-transfer). Each gets numbers and departments of its own ([`Plan::relabel`])
//! and a world seed of its own, so that no two share a SID. Those drawn for other than the reference's
//! default options (`DetectMessageEnd`) are passed over, since one orchestrator serves them all.
//!
//! They play one after another, each in a fresh world, against **one** orchestrator that lives through
//! the whole soak (its store, its memory of finished calls, its timers), as a deployed orchestrator lives
//! through a day of calls. Its requests to Twilio and Vapi reach the world they name through a
//! [`Front`], as in `ringback conform`; a late request for a world that has gone is answered by the
//! lobby, a world with no calls. When a scenario has been judged, whoever is still on a call hangs up,
//! so that the orchestrator sees every call end.
//!
//! Then the world is dropped and the caller's probe reads the live heap ([`Options::heap`]: a counting
//! allocator lives in the binary, not here). [`Soak::heap_growth`] compares the heap early and late
//! among the samples taken once the orchestrator's memory of finished calls is full: a leak shows as
//! bytes per call.

use std::sync::Arc;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use ringback_orchestrator::store::Store;
use ringback_scenarios::{OrchestratorOptions, Plan, Scenario};
use ringback_sim::ids::CallSid;
use ringback_sim::runtime::{Clock, SharedSim, Sim};
use ringback_sim::time::SimDuration;
use ringback_sim::transport::InMemoryTransport;
use ringback_sim::world::World;

use crate::front::Front;
use crate::reference::{FakeApis, InProcess, ORCHESTRATOR_URL, Slot};
use crate::run::{play, reference_config_with, settle};

/// How long the world and the orchestrator get to wind a scenario down once everyone has hung up.
const HANG_UP_S: u64 = 600;

/// The most heap a soak may gain per call once the orchestrator's memory of finished calls is full, as
/// [`Growth::bytes_per_call`] measures it. An orchestrator that forgot nothing gains about 7 KiB per
/// call; the heap's noise between samples is a few hundred bytes per call either way.
pub const LEAK_BYTES_PER_CALL: f64 = 1024.0;

/// The most calls one soak places: scenario blocks are numbered in 16 bits ([`Plan::relabel`]).
pub const MAX_CALLS: usize = 500_000;

/// How a soak goes.
#[derive(Clone, Copy)]
pub struct Options {
    /// Calls to place, at least: whole scenarios are played until this many callers have dialed.
    pub calls: usize,
    /// Seeds the generator and, through it, every world.
    pub seed: u64,
    /// The orchestrator's bound on finished calls it remembers (its `--max-finished-calls`), small
    /// enough that the soak fills it and then shows whether memory stays flat.
    pub max_finished_calls: usize,
    /// Reads the process's live heap in bytes; `None` takes no samples.
    pub heap: Option<fn() -> u64>,
    /// Called after each scenario with the calls placed so far (a progress line, say).
    pub progress: Option<fn(usize, usize)>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("calls", &self.calls)
            .field("seed", &self.seed)
            .field("max_finished_calls", &self.max_finished_calls)
            .field("heap", &self.heap.is_some())
            .finish_non_exhaustive()
    }
}

/// What a soak saw.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Soak {
    /// Callers who dialed.
    pub calls: usize,
    pub scenarios: usize,
    /// Scenarios whose webhooks were duplicated, delayed, reordered or dropped.
    pub with_faults: usize,
    /// The webhook faults planned, by kind (`duplicate`, `delay`, `drop`, `forge`, …); a fault may touch
    /// more than one webhook of its scenario.
    pub faults: std::collections::BTreeMap<String, usize>,
    /// Scenarios in which the orchestrator was killed and restarted.
    pub with_restart: usize,
    /// Scenarios in which a rule broke or a caller ended otherwise than expected.
    pub failures: Vec<Failure>,
    /// The live heap after each scenario's world was dropped.
    pub heap: Vec<HeapSample>,
    /// Keys in the orchestrator's store at the end (calls it still remembers, and their sessions).
    pub store_keys: usize,
    /// The bytes of those keys and their values.
    pub store_bytes: usize,
    /// Calls in flight at the end by the orchestrator's store (0 when every call was seen to its end).
    pub open_calls: usize,
    pub max_finished_calls: usize,
}

/// A scenario that did not pass.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Failure {
    /// Its place in the soak, from 0.
    pub index: usize,
    /// The world seed it ran with.
    pub seed: u64,
    /// What broke.
    pub failure: String,
    /// The scenario as a file (its own numbers, before the soak relabelled them): `ringback run FILE`
    /// replays it alone, without the orchestrator's memory of the scenarios before it.
    pub toml: String,
}

/// The live heap after a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HeapSample {
    /// Calls placed so far.
    pub calls: usize,
    pub bytes: u64,
}

/// How the heap moved once the orchestrator's memory of finished calls was full.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Growth {
    /// Samples compared: those taken once twice the orchestrator's bound of calls had been placed.
    pub samples: usize,
    /// The median heap over the first third of them, and over the last third.
    pub early_bytes: u64,
    pub late_bytes: u64,
    /// The largest heap among them.
    pub max_bytes: u64,
    /// What the medians moved by, per call placed between the thirds' middles: a leak's bytes per call.
    pub bytes_per_call: f64,
}

impl Growth {
    /// Whether the heap stayed flat: it gained at most [`LEAK_BYTES_PER_CALL`] per call.
    pub fn is_flat(&self) -> bool {
        self.bytes_per_call <= LEAK_BYTES_PER_CALL
    }
}

impl Soak {
    /// Whether every scenario passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The heap's trend once the orchestrator remembers as many finished calls as it may (twice its bound
    /// placed, so the first calls forgotten are behind us); `None` with fewer than 9 such samples.
    ///
    /// Medians, not a fitted line: one heap sample can be high for reasons that pass (a large scenario's
    /// timers still pending), and a slope through it would call that growth.
    pub fn heap_growth(&self) -> Option<Growth> {
        let warm = 2 * self.max_finished_calls;
        let steady: Vec<HeapSample> = self.heap.iter().copied().filter(|s| s.calls >= warm).collect();
        if steady.len() < 9 {
            return None;
        }
        let third = steady.len() / 3;
        let (early, late) = (&steady[..third], &steady[steady.len() - third..]);
        let median = |samples: &[HeapSample]| {
            let mut bytes: Vec<u64> = samples.iter().map(|s| s.bytes).collect();
            bytes.sort_unstable();
            bytes[bytes.len() / 2]
        };
        let (early_bytes, late_bytes) = (median(early), median(late));
        let calls = late[late.len() / 2].calls.saturating_sub(early[early.len() / 2].calls).max(1);
        #[allow(clippy::cast_precision_loss)] // heap sizes and call counts far below 2^52
        let bytes_per_call = (late_bytes as f64 - early_bytes as f64) / calls as f64;
        Some(Growth {
            samples: steady.len(),
            early_bytes,
            late_bytes,
            max_bytes: steady.iter().map(|s| s.bytes).max().unwrap_or(0),
            bytes_per_call,
        })
    }
}

/// Plays generated scenarios against one reference orchestrator until `options.calls` callers have
/// dialed. An `Err` is a soak that could not run (a size out of bounds, a runtime that would not start);
/// scenarios that fail are in [`Soak::failures`].
pub fn soak(options: &Options) -> Result<Soak, String> {
    if options.calls == 0 || options.calls > MAX_CALLS {
        return Err(format!("a soak places 1 to {MAX_CALLS} calls, not {}", options.calls));
    }
    if options.max_finished_calls == 0 {
        return Err("the orchestrator must remember at least 1 finished call".into());
    }
    crate::run::virtual_time(play_all(options))
}

/// One generated scenario, made concrete for its place in the soak.
struct Planned {
    scenario: Scenario,
    seed: u64,
    plan: Plan,
}

/// The soak's scenarios, in order, each made when it is wanted (a soak of many thousand calls does not
/// hold them all); the same seed makes the same ones.
struct Scenarios {
    runner: TestRunner,
    seed: u64,
    made: usize,
    calls: usize,
    wanted: usize,
}

impl Scenarios {
    fn new(seed: u64, wanted: usize) -> Scenarios {
        let config = RunnerConfig { rng_algorithm: RngAlgorithm::ChaCha, ..RunnerConfig::default() };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &crate::fuzz::rng_seed(seed));
        Scenarios { runner: TestRunner::new_with_rng(config, rng), seed, made: 0, calls: 0, wanted }
    }
}

impl Iterator for Scenarios {
    type Item = Result<Planned, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.calls >= self.wanted {
            return None;
        }
        // One orchestrator serves them all, with the reference's default options (a deployment does not
        // change its machine detection between calls): scenarios drawn for other options are passed over.
        let scenario = loop {
            let scenario = match ringback_scenarios::generate::scenario().new_tree(&mut self.runner) {
                Ok(tree) => tree.current(),
                Err(e) => return Some(Err(format!("the scenario generator: {e}"))),
            };
            if scenario.orchestrator == OrchestratorOptions::default() {
                break scenario;
            }
        };
        self.made += 1;
        let Ok(block) = u16::try_from(self.made) else {
            return Some(Err(format!("a soak numbers at most {} scenarios", u16::MAX)));
        };
        // Distinct worlds draw distinct SIDs.
        let seed = crate::fuzz::world_seed(self.seed ^ u64::from(block).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut plan = scenario.plan(seed);
        plan.relabel(block);
        self.calls += plan.callers.len();
        Some(Ok(Planned { scenario, seed, plan }))
    }
}

async fn play_all(options: &Options) -> Result<Soak, String> {
    // One orchestrator for every scenario: it knows every scenario's departments, as a deployment knows
    // its own (a first pass makes them all and keeps only the departments).
    let mut first = None;
    let mut entries = Vec::new();
    for planned in Scenarios::new(options.seed, options.calls) {
        let planned = planned?;
        entries.extend(planned.plan.specialist_entries());
        first.get_or_insert(planned.plan);
    }
    let first = first.ok_or("no scenario to play")?;
    let mut config = reference_config_with(&first, &entries);
    config.max_finished_calls = options.max_finished_calls;
    drop(entries);
    let lobby = {
        let mut plan = first;
        plan.callers.clear();
        plan.phones.clear();
        plan.faults.clear();
        Sim::new(
            World::new(plan.world_config(ORCHESTRATOR_URL))?,
            Clock::start(1.0),
            Arc::new(InMemoryTransport::new()),
        )
    };
    let front = Front::new(lobby);
    let slot = Slot::default();
    let target = Arc::new(InProcess::start(config, FakeApis::behind(&front), slot.clone()));

    let mut soak = Soak { max_finished_calls: options.max_finished_calls, ..Soak::default() };
    for (index, planned) in Scenarios::new(options.seed, options.calls).enumerate() {
        let Planned { scenario, seed, plan } = planned?;
        let world =
            World::new(plan.world_config(ORCHESTRATOR_URL)).map_err(|e| format!("scenario {index}: {e}"))?;
        let sim = Sim::new(world, Clock::start(1.0), Arc::new(target.transport()));
        let member = front.join(sim.clone(), plan.numbers());
        let run = play(&plan, &sim, &target).await;
        everyone_hangs_up(&sim, &target).await;
        front.leave(&member);
        if let Err(failure) = crate::fuzz::check(&scenario, &run) {
            let mut scenario = scenario;
            scenario.seed = Some(seed);
            soak.failures.push(Failure { index, seed, failure, toml: crate::fuzz::to_toml(&scenario) });
        }
        soak.calls += plan.callers.len();
        soak.scenarios += 1;
        soak.with_faults += usize::from(!plan.faults.is_empty());
        for fault in &plan.faults {
            let kind = serde_json::to_value(&fault.action).ok();
            let kind = kind.as_ref().and_then(|v| v["action"].as_str()).unwrap_or("other");
            *soak.faults.entry(kind.to_owned()).or_default() += 1;
        }
        soak.with_restart += usize::from(plan.restart.is_some());
        drop((run, member, sim));
        if let Some(heap) = options.heap {
            soak.heap.push(HeapSample { calls: soak.calls, bytes: heap() });
        }
        if let Some(progress) = options.progress {
            progress(soak.calls, options.calls);
        }
    }
    target.orchestrator().idle().await;
    let store = target.store();
    let kept = store.scan("").map_err(|e| e.to_string())?;
    soak.store_keys = kept.len();
    soak.store_bytes = kept.iter().map(|(k, v)| k.len() + v.len()).sum();
    let ended = store.count("ended/").map_err(|e| e.to_string())?;
    soak.open_calls = store.count("call/").map_err(|e| e.to_string())?.saturating_sub(ended);
    Ok(soak)
}

/// The end of a judged scenario's day: whoever is still on a call hangs up, and the world and the
/// orchestrator settle, so the orchestrator sees every call end (and may forget it) and the world's
/// media streams close.
async fn everyone_hangs_up(sim: &SharedSim, target: &Arc<InProcess>) {
    sim.with(|w| {
        let live: Vec<CallSid> = w.legs().filter(|l| !l.state.is_ended()).map(|l| l.sid).collect();
        live.into_iter().for_each(|sid| w.remote_hangup(sid));
    });
    let now = sim.clock().now();
    let deadline = now + SimDuration::from_secs(HANG_UP_S);
    settle(sim, now, deadline, || {
        let orchestrator = target.orchestrator();
        async move { orchestrator.idle().await }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soak_with(heap: impl Fn(usize) -> u64) -> Soak {
        let heap = (1..=400).map(|i| HeapSample { calls: i * 5, bytes: heap(i * 5) }).collect();
        Soak { max_finished_calls: 100, heap, ..Soak::default() }
    }

    #[test]
    fn a_heap_that_keeps_a_kibibyte_and_a_half_per_call_is_growth() {
        let growth = soak_with(|calls| 2_000_000 + 1_536 * calls as u64).heap_growth().expect("samples");
        assert!((growth.bytes_per_call - 1_536.0).abs() < 1.0, "{growth:?}");
        assert!(!growth.is_flat());
    }

    #[test]
    fn a_flat_heap_with_passing_spikes_is_flat() {
        // Every 7th sample is 8 MB high, as after a large scenario whose timers were still pending.
        let growth =
            soak_with(
                |calls| if calls % 35 == 0 { 10_000_000 } else { 2_000_000 + (calls as u64 % 3) * 50_000 },
            )
            .heap_growth()
            .expect("samples");
        assert!(growth.is_flat(), "{growth:?}");
        assert_eq!(growth.max_bytes, 10_000_000);
    }

    #[test]
    fn the_heap_is_judged_only_after_the_warm_up() {
        let soak = soak_with(|calls| if calls < 200 { 0 } else { 1_000_000 });
        let growth = soak.heap_growth().expect("samples");
        assert_eq!(growth.samples, 361);
        assert!(growth.bytes_per_call.abs() < f64::EPSILON);
        let short = Soak { heap: soak.heap[..45].to_vec(), ..soak };
        assert_eq!(short.heap_growth(), None);
    }

    #[test]
    fn a_soak_out_of_bounds_is_refused() {
        let options = Options { calls: 0, seed: 1, max_finished_calls: 10, heap: None, progress: None };
        assert!(soak(&options).unwrap_err().contains("1 to"));
        let options = Options { calls: 10, max_finished_calls: 0, ..options };
        assert!(soak(&options).unwrap_err().contains("at least 1"));
    }

    #[test]
    fn the_same_seed_plays_the_same_scenarios() {
        let made =
            |seed| -> Vec<Plan> { Scenarios::new(seed, 60).map(|p| p.expect("a scenario").plan).collect() };
        assert_eq!(made(3), made(3));
        assert_ne!(made(3), made(4));
        let plans = made(3);
        assert!(plans.iter().map(|p| p.callers.len()).sum::<usize>() >= 60);
        // Each scenario has a world seed and numbers of its own.
        let seeds: std::collections::BTreeSet<u64> = plans.iter().map(|p| p.seed).collect();
        assert_eq!(seeds.len(), plans.len());
        let own: Vec<std::collections::BTreeSet<String>> =
            plans.iter().map(|p| p.numbers().collect()).collect();
        let all: std::collections::BTreeSet<&String> = own.iter().flatten().collect();
        assert_eq!(all.len(), own.iter().map(std::collections::BTreeSet::len).sum::<usize>());
    }
}
