//! Micro benchmarks (divan) of one scenario run against the reference orchestrator in virtual time, and
//! of its parts: planning, running, judging. `cargo bench -p ringback-bench` runs them; `cargo xtask
//! bench` measures throughput on its own (`ringback-bench scenarios`).

use ringback_scenarios::{Plan, Scenario};

fn main() {
    divan::main();
}

fn library(name: &str) -> Scenario {
    ringback_scenarios::library::scenarios()
        .into_iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, s)| s.ok())
        .unwrap_or_else(|| panic!("library scenario {name}"))
}

/// One scenario, run and judged.
#[divan::bench(args = ["busy-returns-the-caller", "answered-by-a-human", "restart-while-on-hold-still-bridges", "fifty-concurrent-callers"])]
fn run_reference(bencher: divan::Bencher, name: &str) {
    let plan: Plan = library(name).plan(1);
    bencher.bench(|| ringback::run::run_reference(divan::black_box(&plan)).map(|r| r.violations.len()));
}

/// A scenario made concrete.
#[divan::bench]
fn plan(bencher: divan::Bencher) {
    let scenario = library("busy-returns-the-caller");
    bencher.bench(|| divan::black_box(&scenario).plan(1));
}

/// The rules judged over a finished run's journal.
#[divan::bench]
fn judge(bencher: divan::Bencher) {
    let plan = library("busy-returns-the-caller").plan(1);
    let run = ringback::run::run_reference(&plan).expect("the scenario runs");
    let context = ringback::run::context(&plan, ringback_scenarios::plan::SERVICE_NUMBER);
    bencher.bench(|| {
        let facts = ringback::rules::facts::Facts::new(divan::black_box(&run.journal), &context);
        ringback::rules::evaluate_facts(&facts, &context).len()
    });
}
