//! Fuzzes the fake Vapi's reading of a server's answer to `tool-calls` (`read_tool_results`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let awaited = [("call_a".to_owned(), "lookup".to_owned()), ("call_b".to_owned(), "transfer".to_owned())];
    let _ = ringback_sim::vapi::messages::read_tool_results(bytes, &awaited);
});
