//! The built-in library against the reference orchestrator: every caller ends as the scenario expects and
//! no rule is broken.

use ringback::run::run_reference;

#[test]
fn the_reference_orchestrator_passes_the_whole_library() {
    let mut failures = Vec::new();
    for (name, scenario) in ringback_scenarios::library::scenarios() {
        let scenario = scenario.unwrap_or_else(|e| panic!("{e}"));
        let plan = scenario.plan(1);
        let run = run_reference(&plan).unwrap_or_else(|e| panic!("{name}: {e}"));
        for v in &run.violations {
            failures.push(format!("{name}: {} broken at {}: {}", v.rule, v.at, v.message));
        }
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
