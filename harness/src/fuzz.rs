//! `ringback fuzz`: generated scenarios against the reference orchestrator, the first failure shrunk to a
//! minimal scenario that replays as a scenario file.
//!
//! Start at [`fuzz`]. Scenarios come from `ringback_scenarios::generate`, whose model gives every caller
//! an expected outcome; a case fails when a rule breaks or a caller ends otherwise ([`check`]). The
//! generator's random choices come from a ChaCha RNG seeded with the fuzz seed, and every case runs with
//! the same world seed, so a fuzz seed names its whole exploration and its counterexample.

use std::cell::Cell;
use std::fmt::Write as _;

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use ringback_scenarios::Scenario;

use crate::run::{Run, run_reference};

/// How many simplifications shrinking tries at most: each is a run, so this bounds its time.
const MAX_SHRINK_ITERS: u32 = 512;

/// What a fuzz run found.
#[derive(Clone, Debug, PartialEq)]
pub struct FuzzReport {
    /// Generated cases run before stopping (the failing one included; shrinking runs not counted).
    pub cases_run: u32,
    pub failure: Option<Counterexample>,
}

/// The minimal failing scenario shrinking found.
#[derive(Clone, Debug, PartialEq)]
pub struct Counterexample {
    /// The scenario, with `seed` set to the world seed it failed with.
    pub scenario: Scenario,
    /// The world seed (also in `scenario.seed`).
    pub seed: u64,
    /// What went wrong in the minimal scenario: broken rules and callers who ended otherwise.
    pub failure: String,
    /// Simplifications tried while shrinking.
    pub shrink_steps: u32,
    /// The scenario as a file: `ringback run FILE` replays it.
    pub toml: String,
}

/// Runs `cases` generated scenarios against the reference orchestrator, exploring from `seed`; on the
/// first that fails [`check`], shrinks it to a minimal counterexample.
pub fn fuzz(cases: u32, seed: u64) -> FuzzReport {
    fuzz_with(cases, seed, check)
}

/// [`fuzz`] with another verdict on each run: `check` gets the scenario and its run and says what is
/// wrong, if anything.
pub fn fuzz_with(cases: u32, seed: u64, check: impl Fn(&Scenario, &Run) -> Result<(), String>) -> FuzzReport {
    let world_seed = world_seed(seed);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: MAX_SHRINK_ITERS,
        // Time limits would make the counterexample depend on the machine's speed.
        max_shrink_time: 0,
        timeout: 0,
        fork: false,
        verbose: 0,
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &rng_seed(seed)));
    let (cases_run, failing, shrink_steps) = (Cell::new(0u32), Cell::new(false), Cell::new(0u32));
    let result = runner.run(&ringback_scenarios::generate::scenario(), |scenario| {
        if failing.get() {
            shrink_steps.set(shrink_steps.get() + 1);
        } else {
            cases_run.set(cases_run.get() + 1);
        }
        let verdict = run_reference(&scenario.plan(world_seed)).and_then(|run| check(&scenario, &run));
        failing.set(failing.get() || verdict.is_err());
        verdict.map_err(TestCaseError::fail)
    });
    let failure = match result {
        Ok(()) => None,
        Err(TestError::Fail(reason, mut scenario)) => {
            scenario.seed = Some(world_seed);
            let failure = reason.message().to_owned();
            let mut toml = String::new();
            for line in failure.lines() {
                let _ = writeln!(toml, "# {line}");
            }
            toml.push_str(&to_toml(&scenario));
            Some(Counterexample {
                scenario,
                seed: world_seed,
                failure,
                shrink_steps: shrink_steps.get(),
                toml,
            })
        }
        // The generator rejects nothing, so proptest never gives up on it.
        Err(TestError::Abort(reason)) => panic!("the scenario generator gave up: {reason}"),
    };
    FuzzReport { cases_run: cases_run.get(), failure }
}

/// Every rule holds and every caller ends as the scenario expects; otherwise, what broke.
pub fn check(_scenario: &Scenario, run: &Run) -> Result<(), String> {
    let mut problems = Vec::new();
    for v in &run.violations {
        problems.push(format!("{} broken at {}: {}", v.rule, v.at, v.message));
    }
    for caller in run.callers.iter().filter(|c| !c.ok()) {
        problems.push(format!(
            "caller {} expected {} but was {}",
            caller.number,
            caller.expected.as_str(),
            caller.observed.as_str()
        ));
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
}

/// `scenario` as a scenario file, with a header saying how to replay it.
pub fn to_toml(scenario: &Scenario) -> String {
    // A scenario is plain data (strings, numbers, tables): it always serializes.
    let body = toml::to_string(scenario).expect("a scenario serializes to TOML");
    format!("# A scenario generated by `ringback fuzz`. Replay it with `ringback run FILE`.\n{body}")
}

/// The world seed every case runs with: the fuzz seed, kept within TOML's integers (63 bits).
pub(crate) fn world_seed(seed: u64) -> u64 {
    seed & (i64::MAX as u64)
}

/// The ChaCha key for the generator: the seed spread over 32 bytes by SplitMix64.
pub(crate) fn rng_seed(seed: u64) -> [u8; 32] {
    let mut state = seed;
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_reference_orchestrator_survives_a_short_fuzz() {
        let report = fuzz(8, 1);
        assert_eq!(report.cases_run, 8);
        if let Some(c) = &report.failure {
            panic!("{}\n{}", c.failure, c.toml);
        }
    }

    #[test]
    fn a_failure_shrinks_to_a_minimal_scenario_that_replays_from_its_file() {
        let report = fuzz_with(32, 7, |scenario, _| match scenario.callers.iter().find(|g| g.count > 3) {
            Some(g) => Err(format!("a group of {} callers", g.count)),
            None => Ok(()),
        });
        let c = report.failure.expect("a case with more than three callers in a group");
        assert_eq!(c.scenario.callers.len(), 1, "{}", c.toml);
        assert_eq!(c.scenario.callers[0].count, 4, "{}", c.toml);
        assert_eq!(c.scenario.specialists.len(), 1, "{}", c.toml);
        assert!(c.scenario.faults.is_empty() && c.scenario.restart.is_none(), "{}", c.toml);
        assert_eq!(c.failure, "a group of 4 callers");
        assert_eq!(c.scenario.seed, Some(7));
        let back = Scenario::parse(&c.toml, Path::new("counterexample.toml")).expect("the file parses");
        assert_eq!(back, c.scenario);
        assert!(c.toml.contains("ringback run FILE"), "{}", c.toml);
    }

    #[test]
    fn the_same_seed_explores_the_same_cases() {
        let seen = std::cell::RefCell::new(Vec::new());
        let record = |s: &Scenario, _: &Run| {
            seen.borrow_mut().push(s.clone());
            Ok(())
        };
        fuzz_with(3, 42, record);
        let first = seen.replace(Vec::new());
        fuzz_with(3, 42, record);
        assert_eq!(first, seen.into_inner());
    }

    #[test]
    fn a_seed_beyond_toml_integers_still_writes_a_file() {
        assert_eq!(world_seed(u64::MAX), i64::MAX as u64);
        assert_ne!(rng_seed(1), rng_seed(2));
    }
}
