//! Property-generated scenarios against the reference orchestrator: every rule holds and every caller ends
//! as the generator's model says. `PROPTEST_CASES` sets how many (64 by default, to keep CI fast).

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use ringback::fuzz::{check, to_toml};
use ringback::run::run_reference;
use ringback_scenarios::generate;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // Each shrinking step is a run; a bound keeps a failure's report quick.
        max_shrink_iters: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/properties.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_reference_orchestrator_keeps_every_rule_on_generated_scenarios(scenario in generate::scenario()) {
        let run = run_reference(&scenario.plan(1)).map_err(TestCaseError::fail)?;
        if let Err(failure) = check(&scenario, &run) {
            return Err(TestCaseError::fail(format!("{failure}\n\n{}", to_toml(&scenario))));
        }
    }
}
