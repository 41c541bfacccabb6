//! The built-in library against the reference orchestrator: every caller ends as the scenario expects.

use ringback::run::run_reference;

#[test]
fn every_library_scenario_ends_as_expected_against_the_reference_orchestrator() {
    let mut failures = Vec::new();
    for (name, scenario) in ringback_scenarios::library::scenarios() {
        let scenario = scenario.unwrap_or_else(|e| panic!("{e}"));
        let plan = scenario.plan(1);
        let run = run_reference(&plan).unwrap_or_else(|e| panic!("{name}: {e}"));
        for caller in run.callers.iter().filter(|c| !c.ok()) {
            failures.push(format!(
                "{name}: caller {} expected {} but was {}",
                caller.number,
                caller.expected.as_str(),
                caller.observed.as_str()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
