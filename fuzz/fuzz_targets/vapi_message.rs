//! Fuzzes the reference orchestrator's reading of a Vapi server message (`ServerMessage::parse`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = ringback_orchestrator::vapi::ServerMessage::parse(bytes);
});
