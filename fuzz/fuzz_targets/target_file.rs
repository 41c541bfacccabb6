//! Fuzzes the target file parser (`TargetFile::parse`).
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = ringback::target::TargetFile::parse(text, std::path::Path::new("fuzzed.toml"));
});
