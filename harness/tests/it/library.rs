//! The built-in library against its targets: against the reference orchestrator every caller ends as the
//! scenario expects and no rule is broken; against `vapi-native`, each transfer configuration gets the
//! verdict its fallback plan earns; and what went over the wire matches the scenario's snapshot of the
//! normalized journal (`snapshots/it__library__journal@<scenario>.toml.snap`; review a change with
//! `cargo insta review`, or accept every change with `INSTA_UPDATE=always`).

use std::path::Path;

use ringback::normalize::normalized_timeline;
use ringback::run::{Run, run};
use ringback_scenarios::Scenario;
use ringback_sim::journal::TimelineLine;

/// The seed every library snapshot is taken with.
const SEED: u64 = 1;

#[test]
fn every_library_scenario_ends_as_expected_and_sends_what_its_snapshot_shows() {
    insta::glob!("../../../scenarios/library", "*.toml", check);
}

/// Runs one library scenario against its target: snapshots its normalized journal, then asserts that
/// every caller ended as expected and that no rule broke (for `vapi-native`, see [`native_verdict`]).
fn check(path: &Path) {
    let name = path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into());
    let scenario = Scenario::load(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let plan = scenario.plan(SEED);
    let run = run(&plan).unwrap_or_else(|e| panic!("{name} (seed {SEED}): {e}"));

    // Snapshot first: under `glob!` a changed snapshot is counted, not fatal, so the assertions below
    // still say what went wrong with the run itself.
    insta::with_settings!({ description => scenario.description.trim(), omit_expression => true }, {
        insta::assert_snapshot!("journal", normalized_timeline(&run.journal));
    });
    if let Some(tool) = &plan.native_tool {
        native_verdict(&name, tool, &run);
        return;
    }

    let entries = run.journal.entries();
    let mut failures: Vec<String> = run
        .violations
        .iter()
        .map(|v| {
            let lines = entries.iter().filter(|e| v.lines.contains(&e.seq));
            let lines: Vec<String> = lines.map(|e| format!("    {}", TimelineLine(e))).collect();
            format!("rule {} broken at {}: {}\n{}", v.rule, v.at, v.message, lines.join("\n"))
        })
        .collect();
    failures.extend(run.callers.iter().filter(|c| !c.ok()).map(|c| {
        format!("caller {} expected {} but was {}", c.number, c.expected.as_str(), c.observed.as_str())
    }));
    assert!(
        failures.is_empty(),
        "scenario {name} (seed {SEED}) against the reference orchestrator:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
fn every_library_scenario_gives_a_byte_identical_journal_when_run_twice() {
    for (name, scenario) in ringback_scenarios::library::scenarios() {
        let plan = scenario.unwrap_or_else(|e| panic!("{name}: {e}")).plan(SEED);
        let timeline = || run(&plan).unwrap_or_else(|e| panic!("{name}: {e}")).journal.timeline();
        let (first, second) = (timeline(), timeline());
        if first != second {
            let line = first.lines().zip(second.lines()).position(|(a, b)| a != b).unwrap_or(0);
            panic!(
                "scenario {name} (seed {SEED}) gave two journals that first differ at line {}:\n  {}\n  {}",
                line + 1,
                first.lines().nth(line).unwrap_or("(end)"),
                second.lines().nth(line).unwrap_or("(end)"),
            );
        }
    }
}

/// What Vapi's own transfer earns, read from the tool rather than the file name: a warm mode whose
/// fallback plan keeps the call (`endCallEnabled = false`) brings a caller back from a failed transfer and
/// breaks no rule; a blind mode, or a fallback plan that ends the call, drops them, and exactly
/// `caller-never-dropped` says so. A person answering is bridged either way.
fn native_verdict(name: &str, tool: &serde_json::Value, run: &Run) {
    let plan = &tool["destinations"][0]["transferPlan"];
    let warm = plan["mode"].as_str().is_some_and(|m| m.starts_with("warm-"));
    let keeps_the_call =
        plan.pointer("/fallbackPlan/endCallEnabled") == Some(&serde_json::Value::Bool(false));
    let broken: Vec<&str> = run.violations.iter().map(|v| v.rule).collect();
    let caller = &run.callers[0];
    let expected_bridge = caller.expected == ringback_scenarios::Expect::Bridged;
    if expected_bridge || (warm && keeps_the_call) {
        assert!(broken.is_empty() && caller.ok(), "{name}: {broken:?}, {caller:?}");
    } else {
        assert_eq!(broken, ["caller-never-dropped"], "{name}");
        assert_eq!(caller.observed, ringback::run::Observed::Dropped, "{name}");
    }
}
