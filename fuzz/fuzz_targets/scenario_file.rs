//! Fuzzes the scenario parser (`Scenario::parse`), and plans what parses.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    // A `[native] tool = "<file>"` is read relative to the scenario; an empty folder keeps it from
    // wandering the disk.
    let path = std::path::Path::new("/nonexistent/fuzzed.toml");
    if let Ok(scenario) = ringback_scenarios::Scenario::parse(text, path) {
        let _ = scenario.plan(1);
    }
});
