//! Property-generated scenarios against the reference orchestrator: every rule holds and every caller ends
//! as the generator's model says. `PROPTEST_CASES` sets how many (64 by default, to keep CI fast).

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use ringback::fuzz::{check, to_toml};
use ringback::run::{Observed, run_reference};
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

/// FIXME(scenarios/found/lost-final-status-then-the-caller-hangs-up.toml): a busy specialist's status
/// callbacks are lost and the caller hangs up on hold before the reference's watchdog asks Twilio; the rule
/// starts its clock at the failure nobody was told about. The generator keeps away from this window until
/// the rule or the reference changes; this pins today's verdict so that the change is noticed.
#[test]
fn a_lost_final_status_then_a_hang_up_on_hold_breaks_return_on_failure_today() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/found/lost-final-status-then-the-caller-hangs-up.toml");
    let scenario = ringback_scenarios::Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let run = run_reference(&scenario.plan(1)).expect("the run starts");
    let broken: Vec<&str> = run.violations.iter().map(|v| v.rule).collect();
    assert_eq!(broken, ["return-on-failure"], "{:#?}", run.violations);
    assert!(run.callers.iter().all(|c| c.ok()), "{:#?}", run.callers);
}

/// FIXME(scenarios/found/specialist-hangs-up-and-the-completed-callback-is-lost.toml): a bridged specialist
/// hangs up and the `completed` callback is lost; the reference leaves the caller alone in the conference.
/// Within 5 s of answering that breaks `return-on-failure`; after a longer talk no rule notices, only the
/// outcome does. The generator keeps away from it; this pins today's behaviour.
#[test]
fn a_lost_completed_callback_leaves_the_caller_alone_with_nobody_today() {
    let found = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/found");
    for (file, rules) in [
        ("specialist-hangs-up-and-the-completed-callback-is-lost.toml", &["return-on-failure"][..]),
        ("specialist-talks-then-hangs-up-and-the-completed-callback-is-lost.toml", &[][..]),
    ] {
        let scenario =
            ringback_scenarios::Scenario::load(&found.join(file)).unwrap_or_else(|e| panic!("{e}"));
        let run = run_reference(&scenario.plan(1)).expect("the run starts");
        let broken: Vec<&str> = run.violations.iter().map(|v| v.rule).collect();
        assert_eq!(broken, rules, "{file}: {:#?}", run.violations);
        let observed: Vec<Observed> = run.callers.iter().map(|c| c.observed).collect();
        assert_eq!(observed, [Observed::Bridged], "{file}: the caller is still in the conference");
    }
}
