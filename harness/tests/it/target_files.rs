//! Property tests of the target file parser on arbitrary text and on mutations of the annotated target
//! files in `fixtures/targets/`: no panic, and an error at the file's line and column or naming the key at
//! fault. The `target_file` fuzz target calls the same function.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use ringback::target::{TargetError, TargetFile};
use ringback_testkit::byte_edits;

fn fixtures() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/targets");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures/targets")
        .chain(std::fs::read_dir(root.join("hostile")).expect("fixtures/targets/hostile"))
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files.into_iter().map(|path| (path.clone(), std::fs::read_to_string(&path).expect("readable"))).collect()
}

fn check_error(text: &str, e: &TargetError) -> Result<(), TestCaseError> {
    prop_assert!(e.to_string().starts_with("fuzzed.toml"), "{e}");
    prop_assert!(!e.message.is_empty());
    if e.line > 0 {
        prop_assert!(e.line <= text.lines().count() + 1 && e.column >= 1, "{e} in {text:?}");
    } else if let Some(key) = e.message.strip_prefix('`').and_then(|m| m.split('`').next()) {
        prop_assert!(ringback_scenarios::locate(text, key).is_none(), "{e} is not placed:\n{text}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_is_a_target_or_refused_at_a_line_and_column(text in "\\PC{0,160}") {
        if let Err(e) = TargetFile::parse(&text, Path::new("fuzzed.toml")) {
            check_error(&text, &e)?;
        }
    }

    #[test]
    fn a_fixture_target_file_with_bytes_spliced_deleted_or_duplicated_parses_or_is_refused_where_it_breaks(
        pick in any::<Index>(),
        edits in byte_edits(),
    ) {
        let files = fixtures();
        let (_, valid) = &files[pick.index(files.len())];
        let text = edits.apply_to_text(valid);
        if let Err(e) = TargetFile::parse(&text, Path::new("fuzzed.toml")) {
            check_error(&text, &e)?;
        }
    }
}

#[test]
fn every_fixture_target_file_parses() {
    for (path, text) in fixtures() {
        TargetFile::parse(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn a_checked_problem_is_placed_at_its_key() {
    let text = "url = \"http://127.0.0.1:9\"\n\n[specialists]\nsales = [\"+1555\", \"5550100\"]\n";
    let e = TargetFile::parse(text, Path::new("t.toml")).expect_err("not E.164");
    assert_eq!((e.line, e.column), (4, 1), "{e}");
    assert!(e.to_string().starts_with("t.toml:4:1: `specialists.sales` has \"5550100\""), "{e}");
}
