//! Fuzzes the fake Vapi's reading of a live call control body (`ControlMessage::parse`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = ringback_sim::vapi::transfer::ControlMessage::parse(bytes);
});
