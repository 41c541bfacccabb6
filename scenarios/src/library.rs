//! The built-in scenario library: `scenarios/library/*.toml`, embedded at build time.

use std::path::{Path, PathBuf};

use crate::{Scenario, ScenarioError};

/// Every library file: its name and its text, in name order.
pub static FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/library.rs"));

/// Where the library lives in the source tree (for messages and for tests that list it).
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("library")
}

/// The library's scenarios, each named by its file stem.
pub fn scenarios() -> Vec<(String, Result<Scenario, ScenarioError>)> {
    FILES
        .iter()
        .map(|(name, text)| {
            let stem = name.trim_end_matches(".toml").to_owned();
            (stem, Scenario::parse(text, &Path::new("scenarios/library").join(name)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_library_scenario_parses_and_plans() {
        assert!(FILES.len() >= 30, "the library holds {} scenarios; SPEC asks for at least 30", FILES.len());
        for (name, scenario) in scenarios() {
            let scenario = scenario.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!scenario.description.is_empty(), "{name} says what it checks");
            let plan = scenario.plan(1);
            ringback_sim::world::World::new(plan.world_config("http://orchestrator.test"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
