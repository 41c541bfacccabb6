//! Property tests of the scenario parser on arbitrary text and on mutations of the library's files: no
//! panic, an error at the file's line and column (or naming the key at fault), and a scenario that parses
//! plans into a world of bounded size. The `scenario_file` fuzz target calls the same function.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use ringback_scenarios::{FileError, MAX_CALLERS, MAX_PHONES, Scenario, library};
use ringback_testkit::byte_edits;

fn parse(text: &str) -> Result<Scenario, FileError> {
    Scenario::parse(text, Path::new("fuzzed.toml"))
}

/// Checks an error's place: a line and column inside the text, or the whole file for a problem that is
/// not at one key.
fn check_error(text: &str, e: &FileError) -> Result<(), TestCaseError> {
    prop_assert!(e.to_string().starts_with("fuzzed.toml"), "{e}");
    prop_assert!(!e.message.is_empty());
    if e.line > 0 {
        prop_assert!(e.line <= text.lines().count() + 1 && e.column >= 1, "{e} in {text:?}");
    } else {
        // A checked problem that opens with a key names one the file does not write (a default).
        if let Some(key) = e.message.strip_prefix('`').and_then(|m| m.split('`').next()) {
            prop_assert!(ringback_scenarios::locate(text, key).is_none(), "{e} is not placed:\n{text}");
        }
    }
    Ok(())
}

/// A parsed scenario plans into a world the simulator accepts or refuses, within the bounds.
fn check_plan(scenario: &Scenario) -> Result<(), TestCaseError> {
    let plan = scenario.plan(1);
    prop_assert!(plan.callers.len() <= MAX_CALLERS as usize);
    prop_assert!(plan.phones.len() as u64 <= MAX_PHONES);
    let _ = ringback_sim::world::World::new(plan.world_config("http://orchestrator.test"));
    Ok(())
}

/// TOML values a scenario's numbers and names trip on.
fn toml_value() -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        Just(toml::Value::Integer(1_000_000_000)),
        any::<f64>().prop_map(toml::Value::Float),
        prop_oneof![Just(f64::INFINITY), Just(f64::NAN), Just(-1.0), Just(1e300)]
            .prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
        "[a-z+0-9_ -]{0,10}".prop_map(toml::Value::String),
        Just(toml::Value::Array(Vec::new())),
        Just(toml::Value::Table(toml::Table::new())),
    ]
}

/// Every path to a value in `table`, as (keys and indices).
fn leaves(value: &toml::Value, here: Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        toml::Value::Table(t) => t.iter().for_each(|(k, v)| {
            let mut path = here.clone();
            path.push(k.clone());
            leaves(v, path, out);
        }),
        toml::Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| {
            let mut path = here.clone();
            path.push(i.to_string());
            leaves(v, path, out);
        }),
        _ => {}
    }
    out.push(here);
}

fn slot<'a>(value: &'a mut toml::Value, path: &[String]) -> Option<&'a mut toml::Value> {
    path.iter().try_fold(value, |v, key| match v {
        toml::Value::Table(t) => t.get_mut(key),
        toml::Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
        _ => None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_is_refused_at_a_line_and_column(text in "\\PC{0,160}") {
        match parse(&text) {
            Ok(scenario) => check_plan(&scenario)?,
            Err(e) => check_error(&text, &e)?,
        }
    }

    #[test]
    fn a_library_file_with_bytes_spliced_deleted_or_duplicated_parses_or_is_refused_where_it_breaks(
        file in 0..library::FILES.len(),
        edits in byte_edits(),
    ) {
        let text = edits.apply_to_text(library::FILES[file].1);
        match parse(&text) {
            Ok(scenario) => check_plan(&scenario)?,
            Err(e) => check_error(&text, &e)?,
        }
    }

    #[test]
    fn a_library_file_with_a_value_replaced_parses_within_bounds_or_is_refused_at_the_key(
        file in 0..library::FILES.len(),
        pick in any::<Index>(),
        replacement in toml_value(),
    ) {
        let mut document: toml::Value = toml::from_str(library::FILES[file].1).expect("library TOML");
        let mut paths = Vec::new();
        leaves(&document, Vec::new(), &mut paths);
        let path = &paths[pick.index(paths.len())];
        if let Some(value) = slot(&mut document, path) {
            *value = replacement;
        }
        let Ok(text) = toml::to_string(&document) else { return Ok(()) };
        match parse(&text) {
            Ok(scenario) => check_plan(&scenario)?,
            Err(e) => check_error(&text, &e)?,
        }
    }
}

#[test]
fn numbers_that_would_make_a_run_huge_or_timeless_are_refused_at_their_key() {
    let base = "expect = \"returned\"\n[[specialists]]\nname = \"sales\"\nphones = [{ answer = \"busy\" }]\n";
    let cases = [
        ("[[callers]]\ncount = 1000000000\n", 6, "expected 1 to 1000"),
        ("[[callers]]\ncount = 1000\n[[callers]]\ncount = 1000\n", 5, "2000 callers"),
        ("[[callers]]\nat_s = inf\n", 6, "`callers[0].at_s` is inf"),
        ("[[callers]]\nstagger_s = nan\n", 6, "`callers[0].stagger_s` is NaN"),
        (
            "[[callers]]\nasks = [{ at_s = -1.0, transfer_to = [\"sales\"] }]\n",
            6,
            "`callers[0].asks[0].at_s` is -1",
        ),
        ("[[callers]]\n[orchestrator]\nring_timeout_s = 0\n", 7, "expected 5 to 600"),
        ("[[callers]]\n[orchestrator]\nmachine_detection = \"Maybe\"\n", 7, "\"DetectMessageEnd\""),
        ("[[callers]]\n[[faults]]\nnth = 0\naction = \"drop\"\n", 7, "`faults[0].nth` is 0"),
        ("[[callers]]\n[[faults]]\naction = \"delay\"\ndelay_s = inf\n", 8, "`faults[0].delay_s` is inf"),
        ("[[callers]]\nsays = [{ at_s = 1, text = \"hi\" }]\n", 0, ""),
    ];
    for (rest, line, expected) in cases {
        let text = format!("{base}{rest}");
        match parse(&text) {
            Err(e) => {
                assert!(e.message.contains(expected), "{text}\n→ {e}");
                assert_eq!(e.line, line, "{text}\n→ {e}");
            }
            Ok(_) => assert_eq!(line, 0, "{text} parsed"),
        }
    }
    let phones = "{ answer = \"busy\" }, ".repeat(11);
    let text = format!(
        "expect = \"returned\"\n[[specialists]]\nname = \"sales\"\nphones = [{phones}]\n[[callers]]\ncount = 1000\n"
    );
    let e = parse(&text).expect_err("11,000 phones");
    assert!(e.message.contains("11000 in all") && e.line == 2, "{e}");
    let e = parse(&format!("{}[[callers]]\n", base.replace("\"busy\" }", "\"human\", after_s = inf }")))
        .expect_err("never answers");
    assert!(e.message.contains("`specialists[0].phones[0].after_s` is inf"), "{e}");
    let says = "{ at_s = 1, text = \"hi\" }, ".repeat(101);
    let e = parse(&format!("{base}[[callers]]\nsays = [{says}]\n")).expect_err("a long script");
    assert!(e.message.contains("101 times") && e.line == 5, "{e}");
}

#[test]
fn a_tool_file_that_never_ends_is_refused_before_it_fills_memory() {
    let text = "expect = \"returned\"\n[[specialists]]\nname = \"sales\"\nphones = [{ answer = \"busy\" }]\n\
                [[callers]]\n[native]\ntool = \"/dev/zero\"\n";
    let e = Scenario::parse(text, Path::new("/tmp/s.toml")).expect_err("not a tool");
    assert!(e.message.contains("larger than 1048576 bytes"), "{e}");
}
