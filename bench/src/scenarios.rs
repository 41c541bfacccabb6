//! Scenario runs per second against the in-process reference orchestrator, in virtual time: one busy
//! scenario over and over, the whole library as `ringback run` runs it, and generated scenarios as
//! `ringback fuzz` makes them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use ringback_scenarios::{Plan, Scenario};

/// The world seed of every run here (the library's snapshots use it too).
pub const SEED: u64 = 1;

/// How many runs took how long, in wall time and in CPU time of the whole process.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Throughput {
    pub runs: usize,
    pub threads: usize,
    pub wall_s: f64,
    pub cpu_s: f64,
    /// Runs whose callers did not end as expected or that broke a rule (the reference should have none).
    pub failures: usize,
}

impl Throughput {
    pub fn runs_per_s(&self) -> f64 {
        self.runs as f64 / self.wall_s
    }

    pub fn cpu_us_per_run(&self) -> f64 {
        self.cpu_s * 1e6 / self.runs as f64
    }
}

/// CPU time (user + system) this process has used, all threads included, from `/proc/self/stat`
/// (clock ticks of 10 ms: measure over a second or more). `None` off Linux.
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is the first,
    // utime the 12th and stime the 13th (fields 14 and 15 of proc(5)).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux build that matters (it is fixed by the ABI, not by CONFIG_HZ).
    Some(Duration::from_millis(ticks * 10))
}

/// Runs `f` and measures it.
fn measure(threads: usize, f: impl FnOnce() -> (usize, usize)) -> Throughput {
    let cpu = cpu_time().unwrap_or_default();
    let started = Instant::now();
    let (runs, failures) = f();
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_s = cpu_time().unwrap_or_default().saturating_sub(cpu).as_secs_f64();
    Throughput { runs, threads, wall_s, cpu_s, failures }
}

/// Whether the run of `plan` ended as its scenario expects with no rule broken.
fn passes(plan: &Plan) -> bool {
    match ringback::run::run_reference(plan) {
        Ok(run) => run.violations.is_empty() && run.callers.iter().all(|c| c.ok()),
        Err(_) => false,
    }
}

/// Runs `work(i)` for i in `0..n` on `threads` threads; how many returned false.
fn parallel(n: usize, threads: usize, work: impl Fn(usize) -> bool + Sync) -> usize {
    let next = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    if !work(i) {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    failures.into_inner()
}

/// The library scenario `name`.
pub fn library_scenario(name: &str) -> anyhow::Result<Scenario> {
    let (_, scenario) = ringback_scenarios::library::scenarios()
        .into_iter()
        .find(|(n, _)| n == name)
        .ok_or_else(|| anyhow::anyhow!("no library scenario `{name}`"))?;
    Ok(scenario?)
}

/// `busy-returns-the-caller` over and over on `threads` threads for about `min_time`.
pub fn busy(threads: usize, min_time: Duration) -> anyhow::Result<Throughput> {
    let plan = library_scenario("busy-returns-the-caller")?.plan(SEED);
    // Calibrate a batch size that takes about `min_time`, then time that batch.
    let probe = Instant::now();
    let mut probes = 0;
    while probe.elapsed() < min_time / 10 || probes < 3 {
        passes(&plan);
        probes += 1;
    }
    let per_run = probe.elapsed().as_secs_f64() / f64::from(probes);
    let n = ((min_time.as_secs_f64() * threads as f64 / per_run) as usize).max(threads);
    Ok(measure(threads, || (n, parallel(n, threads, |_| passes(&plan)))))
}

/// Every library scenario that applies to the reference orchestrator once, parsed and planned, on
/// `threads` threads (as `ringback run` does with `--jobs threads`; it skips the `vapi-native` ones, which
/// run against the fake Vapi alone); the median of `passes` passes.
pub fn library(threads: usize, passes_wanted: usize) -> anyhow::Result<Throughput> {
    let mut results = Vec::new();
    for _ in 0..passes_wanted.max(1) {
        results.push(measure(threads, || {
            let mut scenarios = ringback_scenarios::library::scenarios();
            scenarios.retain(|(_, s)| s.as_ref().is_err() || s.as_ref().is_ok_and(|s| s.native.is_none()));
            let n = scenarios.len();
            let failures = parallel(n, threads, |i| match &scenarios[i].1 {
                Ok(scenario) => passes(&scenario.plan(SEED)),
                Err(_) => false,
            });
            (n, failures)
        }));
    }
    results.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    Ok(results.swap_remove(results.len() / 2))
}

/// `n` scenarios drawn from the generator (as `ringback fuzz` draws them), each made concrete, run and
/// checked, on `threads` threads: each thread draws its share from its own seeded RNG.
pub fn generated(n: usize, threads: usize) -> Throughput {
    measure(threads, || {
        let drawn = AtomicUsize::new(0);
        let failures = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for t in 0..threads.max(1) {
                let (drawn, failures) = (&drawn, &failures);
                scope.spawn(move || {
                    let mut runner = runner(t as u8);
                    let strategy = ringback_scenarios::generate::scenario();
                    while drawn.fetch_add(1, Ordering::Relaxed) < n {
                        let Ok(tree) = strategy.new_tree(&mut runner) else {
                            failures.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        let scenario = tree.current();
                        let verdict = ringback::run::run_reference(&scenario.plan(SEED))
                            .and_then(|run| ringback::fuzz::check(&scenario, &run));
                        if let Err(why) = verdict {
                            failures.fetch_add(1, Ordering::Relaxed);
                            // Enough to replay it: `ringback run FILE` with the scenario below.
                            eprintln!(
                                "ringback-bench: a generated scenario failed (world seed {SEED}):\n{why}\n{}",
                                ringback::fuzz::to_toml(&scenario)
                            );
                        }
                    }
                });
            }
        });
        (n, failures.into_inner())
    })
}

/// A proptest runner whose draws are fixed by `seed`.
pub fn runner(seed: u8) -> TestRunner {
    let config = Config { rng_algorithm: RngAlgorithm::ChaCha, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]))
}

/// `n` generated scenarios drawn from `seed`, for determinism checks and micro benchmarks.
pub fn draw(n: usize, seed: u8) -> Vec<Scenario> {
    let mut runner = runner(seed);
    let strategy = ringback_scenarios::generate::scenario();
    (0..n).filter_map(|_| strategy.new_tree(&mut runner).ok().map(|t| t.current())).collect()
}

/// A digest of the full timelines of every library scenario and of `generated` generated scenarios:
/// equal digests before and after an optimization mean it changed nothing anyone can observe.
pub fn digest(generated: usize) -> anyhow::Result<String> {
    let mut plans: Vec<(String, Plan)> = Vec::new();
    for (name, scenario) in ringback_scenarios::library::scenarios() {
        plans.push((name, scenario?.plan(SEED)));
    }
    for (i, scenario) in draw(generated, 7).into_iter().enumerate() {
        plans.push((format!("generated #{i}"), scenario.plan(SEED)));
    }
    let mut out = String::new();
    for (name, plan) in plans {
        let run = ringback::run::run_reference(&plan).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        // The whole journal, bodies and headers included, not only its timeline.
        let entries = serde_json::to_string(run.journal.entries())?;
        let text = format!(
            "{}\n{entries}\n{:?}\n{:?}",
            run.journal.timeline(),
            run.callers,
            run.violations.iter().map(|v| (v.rule, v.at.to_string(), &v.message)).collect::<Vec<_>>()
        );
        out.push_str(&format!("{:016x} {} ({} lines)\n", fnv(text.as_bytes()), name, run.journal.len()));
    }
    Ok(out)
}

/// FNV-1a, 64 bits: a stable hash (std's hashers are seeded per process).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
